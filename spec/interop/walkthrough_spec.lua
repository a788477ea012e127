-- The README's walk-through "From a capture to a running script", run as
-- written: only the ports (nginx-rtmp's, the script's), the file names
-- and the luartmp executable are replaced.
local H = require "support.helpers"
local A = require "support.agree"

local fmt, q = string.format, H.shquote

describe("README walk-through", function()
  after_each(H.cleanup)

  it("captures ffmpeg publishing to nginx-rtmp, decodes it, serves the server side to GStreamer, edits it, replays it", function()
    local readme = assert(H.read_file("README.md"))
    local block = assert(readme:match("## From a capture to a running script.-```sh\n(.-)```"),
      "no walk-through in README.md")
    local ng = H.nginx_start()
    local port = H.free_port()
    local dir = H.tmpname("walk")
    H.mkdir(dir)
    local input = dir .. "/input.flv"
    local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y -i %s -t 4 -c copy -f flv %s", q(H.fixture_flv()), q(input)), 30)
    assert.are.equal(0, rc, out)
    local n
    local function sub(pat, rep)
      block, n = block:gsub(pat, rep)
      assert.is_true(n > 0, "the walk-through no longer has " .. pat)
    end
    sub("1935", tostring(ng.port))
    sub("1936", tostring(port))
    sub("input%.flv", q(input))
    sub("session%.pcapng", q(dir .. "/session.pcapng"))
    sub("fake_nginx%.lua", q(dir .. "/fake_nginx.lua"))
    block = "\n" .. block
    sub("\nluartmp ", "\n" .. q(H.luartmp) .. " ")
    local script = dir .. "/walk.sh"
    H.write_file(script, block)
    rc, out = H.run("sh " .. q(script), 120)
    -- WALK_PRINT=1: show what the walk-through printed and the script (for README's sample)
    if os.getenv("WALK_PRINT") then io.stderr:write(out, "\n", H.read_file(dir .. "/fake_nginx.lua") or "", "\n") end
    assert.are.equal(0, rc, out)
    -- 2: the connection list and the commands
    assert.truthy(out:match("\n?1 127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:" .. ng.port .. " rtmp %d+/%d+ bytes\n"), out)
    assert.truthy(out:find('type=command stream=1 ts=0 len=33 body={"publish", 5, rtmp.null, "cam", "live"}', 1, true), out)
    -- 3: GStreamer (never recorded) published to the generated script
    assert.truthy(out:find("GStreamer published to the script\n", 1, true), out)
    -- 4: after the edit it refused
    assert.truthy(out:find("Server error: Start publishing", 1, true), out)
    assert.truthy(out:find("ffmpeg refused, exit status %d+\n"), out)
    -- 5: the replay's line for the one connection
    assert.truthy(out:find("conn=1 role=server recorded=1 peer=127%.0%.0%.1:%d+ bytes=%d+ in=%d+ out=7 sha256=%x+ " ..
      'closed="peer closed the connection"'), out)
    -- the capture itself decodes as tshark decodes it
    A.check(dir .. "/session.pcapng", 20)
  end)
end)
