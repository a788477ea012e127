-- The README's opening example is a real, working server: run it as
-- written (only the port changed) and publish to it with ffmpeg.
local H = require "support.helpers"

describe("README example", function()
  after_each(H.cleanup)

  it("runs, logs what ffmpeg sends, and refuses the publish", function()
    local readme = assert(H.read_file("README.md"))
    local code = assert(readme:match("```lua\n(.-)```"), "no Lua example in README.md")
    local port = H.free_port()
    local script = H.tmpname("readme-echo") .. ".lua"
    local replaced
    code, replaced = code:gsub("127%.0%.0%.1:1935", "127.0.0.1:" .. port)
    assert.are.equal(1, replaced, "the example listens on 127.0.0.1:1935")
    H.write_file(script, code)
    local srv = H.spawn(H.shquote(H.luartmp) .. " " .. H.shquote(script), { name = "readme-echo" })
    assert(H.wait_port(port, 10, srv))
    local rc, out = H.run(string.format("ffmpeg -nostdin -v error -re -i %s -t 2 -c copy -f flv rtmp://127.0.0.1:%d/live/x",
      H.fixture_flv(), port), 20)
    assert.are_not.equal(0, rc, "ffmpeg's publish was refused")
    local log = H.read_file(srv.err)
    for _, want in ipairs{ "command csid=3 stream=0", "connect", "createStream", "publish",
                           "gone: " } do
      assert.truthy(log:find(want, 1, true), "log lacks '" .. want .. "':\n" .. log)
    end
    assert.are.equal(0, H.kill(srv, 5))
  end)
end)
