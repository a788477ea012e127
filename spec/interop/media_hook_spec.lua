-- live.lua's on_media hook sees each published message once (not once per
-- player) and can drop messages.
local H = require "support.helpers"

describe("live.lua on_media hook", function()
  after_each(H.cleanup)

  it("runs once per published message whatever the number of players, and drops what it refuses", function()
    local script = H.tmpname("hook") .. ".lua"
    H.write_file(script, [[
      local live = require "live"
      local rtmp = require "rtmp"
      local calls = 0
      live.hooks.on_media = function(conn, msg)
        calls = calls + 1
        if msg.type == 8 then return false end -- drop audio
      end
      rtmp.timer(0.5, function() rtmp.log.info("hook calls %d", calls) end, 0.5)
      live.start()
    ]])
    local srv = H.luartmp_start{ script = script }
    local out1, out2 = H.tmpname("hook1.flv"), H.tmpname("hook2.flv")
    local p1 = H.ffmpeg_play(srv.url("live/h"), out1, 4)
    local p2 = H.ffmpeg_play(srv.url("live/h"), out2, 4)
    assert(H.wait_until(function() return srv.count("play", "h") >= 2 end, 10))
    local pub = H.spawn(string.format("ffmpeg -nostdin -v error -re -i %s -t 3 -c copy -f flv %s",
      H.fixture_flv(), srv.url("live/h")), { name = "ffmpeg-hook" })
    assert.are.equal(0, H.wait_exit(pub, 15))
    H.wait_exit(p1, 15)
    H.wait_exit(p2, 15)
    -- the count is logged every 0.5 s: wait for a line that includes the
    -- publisher's last messages (players may leave before the next tick)
    local function logged_calls()
      local calls = 0
      for n in srv.log():gmatch("hook calls (%d+)") do calls = tonumber(n) end
      return calls
    end
    H.wait_until(function() return logged_calls() >= 190 end, 3)
    local calls = logged_calls()
    -- 3 s of the fixture: 75 video + ~130 audio messages, once each
    assert.is_true(calls >= 190 and calls <= 230, "hook calls: " .. calls)
    for _, f in ipairs{ out1, out2 } do
      local info = assert(H.probe(f))
      assert.truthy(info.video, "video reached the player")
      assert.is_nil(info.audio, "audio was dropped by the hook")
    end
  end)
end)
