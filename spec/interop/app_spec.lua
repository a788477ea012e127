-- README.md's "A server in 40 lines" (a live server on rtmp.app) run
-- exactly as printed, only its port changed: ffmpeg publishes with bad
-- keys (refused) and the good one, ffmpeg asks for a name nobody publishes
-- (refused) and plays the published one from the middle (its frames
-- counted with ffprobe), and the server logs each keyframe.
local H = require "support.helpers"
local F = H.FIXTURE

local fmt, q = string.format, H.shquote

local TAIL_SLACK = F.tail_slack -- frames still in flight when the publisher leaves (H.FIXTURE)

local function readme_server()
  local readme = assert(H.read_file("README.md"))
  return assert(readme:match("\n## A server in 40 lines\n.-```lua\n(.-)```"),
    "README.md has no Lua block under 'A server in 40 lines'")
end

describe("README's server on rtmp.app", function()
  after_each(H.cleanup)

  it("is a complete server in at most 40 lines", function()
    local code = readme_server()
    local _, lines = code:gsub("\n", "")
    assert.is_true(lines <= 40, "the server has " .. lines .. " lines")
    assert.truthy(code:find('require "rtmp.app"', 1, true))
  end)

  it("takes a publish only with its key, plays only what is published, logs each keyframe", function()
    local code, n = readme_server():gsub("127%.0%.0%.1:1935", "127.0.0.1:" .. H.free_port())
    assert.are.equal(1, n, "the server listens on 127.0.0.1:1935")
    local port = tonumber(code:match("127%.0%.0%.1:(%d+)"))
    local script = H.tmpname("keyed") .. ".lua"
    H.write_file(script, code)
    local srv = H.spawn(q(H.luartmp) .. " " .. q(script), { name = "keyed" })
    assert(H.wait_port(port, 10, srv))
    local url = fmt("rtmp://127.0.0.1:%d/live/", port)
    local function log() return H.read_file(srv.err) or "" end

    -- a wrong key, no key, a name with no key at all: refused
    for _, target in ipairs{ "cam?key=wrong", "cam", "nokey?key=s3cret" } do
      local rc, out = H.run(fmt("ffmpeg -nostdin -hide_banner -v error -re -i %s -t 2 -c copy -f flv %s",
        q(H.fixture_flv()), q(url .. target)), 20)
      assert.are_not.equal(0, rc, target .. " was not refused:\n" .. out)
      assert.truthy(out:find("Server error: bad key", 1, true), target .. ":\n" .. out)
    end
    -- a name nobody publishes: refused
    local rc, out = H.run(fmt("ffmpeg -nostdin -hide_banner -v error -rw_timeout 3000000 -i %s -c copy -f flv -y %s",
      q(url .. "cam"), q(H.tmpname("nothing.flv"))), 20)
    assert.are_not.equal(0, rc, "the play was not refused:\n" .. out)
    assert.truthy(out:find("Server error: cam is not published", 1, true), out)
    assert.is_nil(log():find("keyframe", 1, true), "nothing was published:\n" .. log())

    -- the key: published in real time; a player joins after the second keyframe
    local pub = H.ffmpeg_publish(url .. "cam?key=s3cret")
    assert(H.wait_until(function() return log():find("keyframe cam ts=2000", 1, true) end, 15), log())
    local file = H.tmpname("keyed-play.flv")
    local player = H.ffmpeg_play(url .. "cam", file, 4)
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 12), H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), H.output(player))
    local text = log()
    for ts = 0, F.seconds * 1000 - 1, F.gop * 1000 // F.fps do
      assert.are.equal(1, H.count_plain(text, fmt("keyframe cam ts=%d\n", ts)), "keyframe " .. ts .. ":\n" .. text)
    end

    -- the GOP the player joined: keyframes logged before its connect (the last one)
    local at = 0
    for pos in text:gmatch("()connect app=live") do at = pos end
    local _, k = text:sub(1, at):gsub("keyframe cam ts=", "")
    k = k - 1
    local info = assert(H.probe(file))
    assert(info.video and info.audio, "the player got video and audio:\n" .. info.log)
    assert.are.equal(F.video_codec, info.video.codec)
    assert.are.equal(F.audio_codec, info.audio.codec)
    assert.are.equal("K_", H.first_video_flags(file), "the player starts at a keyframe")
    local most, least = F.frames - k * F.gop, F.frames - (k + 1) * F.gop - TAIL_SLACK
    assert(info.video.frames >= least and info.video.frames <= most,
      fmt("video frames %d, expected %d..%d (joined in GOP %d)", info.video.frames, least, most, k))
    assert.truthy(text:find("close: unpublished", 1, true), "the player was let go with its publisher")
    assert.are.equal(0, H.kill(srv, 5))
  end)
end)
