-- Live streaming with real peers: ffmpeg publishes the FLV fixture in real
-- time; ffmpeg, rtmpdump and GStreamer play it, some subscribed before the
-- publisher starts and some joining late; tshark watches the wire.
--
-- The server under test is a parameter. The same spec runs against
-- nginx-rtmp, which proves the harness (and the tolerances below) on a
-- server we did not write, and against luartmp's live server
-- (scripts/live.lua), which is what we ship.

local H = require "support.helpers"
local F = H.FIXTURE

local SERVERS = { "nginx-rtmp", "luartmp" }

-- Frames a player may miss at the end of the stream (H.FIXTURE says why).
local TAIL_SLACK, AUDIO_SLACK = F.tail_slack, F.audio_slack

-- Which keyframe a late joiner may start at. It was spawned `elapsed`
-- seconds after the publisher; the publisher's media clock then stood
-- within [elapsed - 1, elapsed] (-re paces at real time, after a connect
-- that takes well under 1 s), and the player subscribes within 1 s of its
-- spawn. A server with a GOP cache starts it at the last keyframe before
-- that point; one without waits for the next. Returns the smallest and
-- largest number of video frames it may then receive (whole GOPs from a
-- keyframe to the end, minus the tail slack).
local function late_range(elapsed)
  local gop_s = F.gop / F.fps
  local kmin = math.max(0, math.floor((elapsed - 1) / gop_s))
  local kmax = math.ceil((elapsed + 1) / gop_s)
  return F.frames - kmax * F.gop - TAIL_SLACK, F.frames - kmin * F.gop
end

-- Assert that a recording decodes as the fixture's codecs and size, and
-- return its video and audio frame counts.
local function assert_recording(label, file)
  assert.is_truthy(H.file_size(file), label .. ": no recording at " .. file)
  local info, err = H.probe(file)
  assert(info, label .. ": ffprobe failed: " .. tostring(err))
  assert(info.video, label .. ": no video stream in " .. file .. "\n" .. info.log)
  assert(info.audio, label .. ": no audio stream in " .. file .. "\n" .. info.log)
  assert.are.equal(F.video_codec, info.video.codec, label .. ": video codec")
  assert.are.equal(F.audio_codec, info.audio.codec, label .. ": audio codec")
  assert.are.equal(F.width, info.video.width, label .. ": width")
  assert.are.equal(F.height, info.video.height, label .. ": height")
  return info.video.frames, info.audio.frames
end

local function assert_between(lo, hi, n, what)
  assert(n and n >= lo and n <= hi,
    string.format("%s: %s, expected %d..%d", what, tostring(n), lo, hi))
end

-- Wait until the publisher's media clock reaches `t` seconds (its spawn time
-- is the reference), then return the actual elapsed time.
local function at(pub, t)
  local d = pub.started + t - H.now()
  if d > 0 then H.sleep(d) end
  return H.now() - pub.started
end

for _, kind in ipairs(SERVERS) do
  describe("live server " .. kind, function()
    after_each(function() H.cleanup() end)

    it("relays one publisher to ffmpeg, rtmpdump and GStreamer players, early and late", function()
      local fixture = H.fixture_flv()
      local srv = H.server_start(kind)
      local cap = H.tshark_start(srv.port)
      local url = srv.url("live/test")

      -- Players subscribed before the publisher starts. ffmpeg players end
      -- by themselves 4 s after the media stops (rw_timeout) and close
      -- their FLV properly; the publisher starts well within those 4 s.
      local early = {
        ff1 = { file = H.tmpname("early-ffmpeg1.flv") },
        ff2 = { file = H.tmpname("early-ffmpeg2.flv") },
        dump = { file = H.tmpname("early-rtmpdump.flv") },
      }
      early.ff1.proc = H.ffmpeg_play(url, early.ff1.file, 4)
      early.ff2.proc = H.ffmpeg_play(url, early.ff2.file, 4)
      early.dump.proc = H.rtmpdump_play(url, early.dump.file)
      local gst = H.gst_play(url)
      assert(H.wait_until(function() return srv.count("play", "test") >= 4 end, 15),
        "the four early players did not all reach play:\n" .. srv.log())

      local pub = H.ffmpeg_publish(url, fixture)

      -- Late joiners: ffmpeg 3 s in (mid-GOP), rtmpdump 5 s in (mid-GOP).
      local late_ff = { file = H.tmpname("late-ffmpeg.flv") }
      late_ff.elapsed = at(pub, 3.0)
      late_ff.proc = H.ffmpeg_play(url, late_ff.file, 4)
      local late_dump = { file = H.tmpname("late-rtmpdump.flv") }
      late_dump.elapsed = at(pub, 5.0)
      late_dump.proc = H.rtmpdump_play(url, late_dump.file)

      -- The publisher sends 8 s of media in real time, then leaves.
      local prc = H.wait_exit(pub, F.seconds + 12)
      assert.are.equal(0, prc, "publisher exit status; its output:\n" .. H.output(pub))

      -- ffmpeg players end on their own; rtmpdump is stopped once its file
      -- has stopped growing; GStreamer ends at the unpublish (EOS) or is
      -- stopped after the same quiet time.
      for _, p in ipairs{ early.ff1, early.ff2, late_ff } do
        local rc = H.wait_exit(p.proc, 15)
        assert.are.equal(0, rc, p.file .. ": ffmpeg player exit status; output:\n" .. H.output(p.proc))
      end
      H.wait_quiet(early.dump.file, 1.5, 10)
      H.wait_quiet(late_dump.file, 1.5, 10)
      H.kill(early.dump.proc)
      H.kill(late_dump.proc)
      H.wait_until(function() return H.exited(gst) end, 3)
      local gst_frames = H.gst_frames(gst)
      H.kill(gst)

      -- Every early player got the whole stream.
      for _, name in ipairs{ "ff1", "ff2", "dump" } do
        local e = early[name]
        local v, a = assert_recording("early " .. name, e.file)
        assert_between(F.frames - TAIL_SLACK, F.frames, v, "early " .. name .. " video frames")
        assert_between(F.audio_frames - AUDIO_SLACK, F.audio_frames, a, "early " .. name .. " audio frames")
      end
      assert_between(F.frames - TAIL_SLACK, F.frames, gst_frames,
        "GStreamer decoded video frames; its output:\n" .. H.output(gst):sub(-2000))

      -- Late joiners start at a keyframe and get whole GOPs to the end.
      for label, p in pairs{ ["late ffmpeg"] = late_ff, ["late rtmpdump"] = late_dump } do
        local v = assert_recording(label, p.file)
        assert.are.equal("K_", H.first_video_flags(p.file), label .. ": first video packet is a keyframe")
        local lo, hi = late_range(p.elapsed)
        assert_between(lo, hi, v, string.format("%s (joined at %.2fs) video frames", label, p.elapsed))
      end

      -- The wire: RTMP throughout, nothing malformed, the whole command flow.
      assert.are.equal(0, cap.stop(), "tshark exit status; output:\n" .. H.output(cap.proc))
      local wire = H.tshark_decode(cap.file, srv.port)
      assert(wire.frames > 100, "tshark decoded only " .. wire.frames .. " RTMP packets")
      assert.are.equal(0, wire.malformed, "malformed packets:\n" .. table.concat(wire.errors, "\n"))
      for _, s in ipairs{ "connect", "_result", "createStream", "publish", "play", "onStatus",
                          "NetConnection.Connect.Success", "NetStream.Publish.Start",
                          "NetStream.Play.Start" } do
        assert(wire.strings[s], "not on the wire: " .. s)
      end
      for _, t in ipairs{ 1, 4, 5, 6, 8, 9, 18, 20 } do
        assert(wire.types[t], "no RTMP message of type " .. t .. " on the wire")
      end

      -- A graceful stop: SIGTERM, exit status 0.
      local rc, log = srv.stop()
      assert.are.equal(0, rc, kind .. " exit status after SIGTERM; log:\n" .. log)
      if kind == "luartmp" then
        assert.is_nil(log:find("script error", 1, true), "script error in the log:\n" .. log)
        assert.are.equal(1, H.count_plain(log, " publish live/test"), "one publish in the log")
      end
    end)
  end)
end
