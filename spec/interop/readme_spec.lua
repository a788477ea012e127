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

  it("has a publish script that sends a file an ffmpeg player receives whole", function()
    local readme = assert(H.read_file("README.md"))
    local code = assert(readme:match("```lua\n(%-%- publish%.lua: .-)```"), "no publish script in README.md")
    local script = H.tmpname("readme-publish") .. ".lua"
    H.write_file(script, code)
    -- a 2 s cut of the fixture: the script publishes in real time
    local file = H.tmpname("readme-2s") .. ".flv"
    local rc, out = H.run(string.format("ffmpeg -nostdin -v error -y -i %s -t 2 -c copy -f flv %s",
      H.shquote(H.fixture_flv()), H.shquote(file)), 30)
    assert.are.equal(0, rc, out)
    local sent = H.probe(file)
    local srv = H.luartmp_start()
    local rec = H.tmpname("readme-play") .. ".flv"
    local player = H.ffmpeg_play(srv.url("live/readme"), rec, 3)
    assert(H.wait_until(function() return srv.count("play", "readme") > 0 end, 10), srv.log())
    rc, out = H.run(string.format("%s %s %s %s readme", H.shquote(H.luartmp), H.shquote(script),
      H.shquote(file), H.shquote(srv.url("live"))), 30)
    assert.are.equal(0, rc, "the README's publish script failed:\n" .. out)
    H.wait_exit(player, 15)
    local got = H.probe(rec)
    assert.are.equal(sent.video.frames, got.video and got.video.frames, "video frames played")
    assert.are.equal(sent.audio.frames, got.audio and got.audio.frames, "audio frames played")
    srv.stop()
  end)
end)
