-- MP4 in and out through real servers: publish.lua sends each test clip
-- (every codec rtmp.mp4 carries, two video tracks as multitrack) to
-- luartmp's live server while play.lua writes what it gets as MP4, and
-- record.lua records it as MP4; ffprobe decodes the outputs, codec by
-- codec, and counts every packet of the original as a decoded frame.
-- Debian's ffmpeg 5.1 speaks no Enhanced RTMP: writing the enhanced
-- streams back to MP4 is how they are checked.  The legacy forms go to
-- nginx-rtmp and come back through ffmpeg.
local H = require "support.helpers"
local M = require "support.mp4media"

local q, fmt = H.shquote, string.format

local PUBLISH, PLAY = M.PUBLISH, "scripts/client/play.lua"

-- The clips sent, each under its own stream name; opts: publish.lua options.
local RUNS = {
  { clip = "h264-aac" }, { clip = "hevc-opus" }, { clip = "av1-flac" }, { clip = "vp9-ac3" },
  { clip = "h264-mp3" }, { clip = "eac3" }, { clip = "h264x2" }, { clip = "h264-hevc" },
  { clip = "h264-aac", name = "h264-aac-enhanced", opts = "--enhanced" },
}

-- `out` decodes as the clip: the same streams, codec by codec, each with
-- a decoded frame for every packet of the original.
local function same_media(out, clip_path, what)
  local want, got = M.streams(clip_path), M.streams(out)
  local w, g = {}, {}
  for i, s in ipairs(want) do w[i] = { s.kind, s.codec, s.packets } end
  for i, s in ipairs(got) do g[i] = { s.kind, s.codec, s.frames } end
  assert.same(w, g, what)
end

local function wait_log(srv, text, n)
  local ok = H.wait_until(function() return H.count_plain(srv.log(), text) >= (n or 1) end, 20)
  assert(ok, fmt("%s never logged %q:\n%s", srv.name, text, srv.log()))
end

describe("MP4 through RTMP", function()
  after_each(H.cleanup)

  it("publish.lua of every codec to live.lua, play.lua writes MP4 that ffprobe decodes frame for frame", function()
    local srv = H.luartmp_start()
    local players, outs = {}, {}
    for i, run in ipairs(RUNS) do
      run.name = run.name or run.clip
      outs[i] = H.tmpname("played-" .. run.name .. ".mp4")
      players[i] = H.spawn(fmt("%s %s %s %s", q(H.luartmp), PLAY, q(srv.url("live/" .. run.name)), q(outs[i])),
        { name = "play" })
    end
    for _, run in ipairs(RUNS) do wait_log(srv, " play live/" .. run.name) end
    local pubs = {}
    for i, run in ipairs(RUNS) do pubs[i] = M.publish(srv.url("live/" .. run.name), (M.clip(run.clip)), run.opts) end
    M.wait_publishers(pubs)
    for i, run in ipairs(RUNS) do
      assert.are.equal(0, H.wait_exit(players[i], 20), H.output(players[i]))
      same_media(outs[i], (M.clip(run.clip)), run.name)
    end
    assert.is_nil(srv.log():find("%[error%]"), srv.log())
  end)

  it("record.lua with record_format = \"mp4\" records every codec and both tracks of a multitrack stream", function()
    local dir = H.mkdir(H.tmpname("rec"))
    local srv = M.record_server(dir)
    local pubs = {}
    for i, run in ipairs(RUNS) do
      run.name = run.name or run.clip
      pubs[i] = M.publish(srv.url("live/" .. run.name), (M.clip(run.clip)), "--type record " .. (run.opts or ""))
    end
    M.wait_publishers(pubs)
    for _, run in ipairs(RUNS) do wait_log(srv, fmt("record %s/live/%s.mp4 closed", dir, run.name)) end
    for _, run in ipairs(RUNS) do
      same_media(fmt("%s/live/%s.mp4", dir, run.name), (M.clip(run.clip)), "recorded " .. run.name)
    end
    local tracks = M.streams(dir .. "/live/h264x2.mp4")
    assert.same({ { "video", 160, 120 }, { "video", 128, 96 } },
      { { tracks[1].kind, tracks[1].width, tracks[1].height }, { tracks[2].kind, tracks[2].width, tracks[2].height } })
    assert.is_nil(srv.log():find("%[error%]"), srv.log())
  end)

  it("a late play.lua gets both tracks' configurations of a ManyTracksManyCodecs stream first: all it got decodes", function()
    local srv = H.luartmp_start()
    local pub = M.publish(srv.url("live/late"), (M.clip("h264-hevc")), "--loop 3")
    wait_log(srv, " publish live/late")
    H.sleep(1.3)
    local out = H.tmpname("late.mp4")
    local player = H.spawn(fmt("%s %s %s %s", q(H.luartmp), PLAY, q(srv.url("live/late")), q(out)), { name = "play" })
    M.wait_publishers({ pub })
    assert.are.equal(0, H.wait_exit(player, 20), H.output(player))
    local got = M.streams(out)
    assert.same({ { "video", "h264" }, { "video", "hevc" } }, { { got[1].kind, got[1].codec }, { got[2].kind, got[2].codec } })
    for i = 1, 2 do
      assert.is_true(got[i].packets > 0 and got[i].packets < 3 * M.FPS, "packets: " .. tostring(got[i].packets))
      assert.are.equal(got[i].packets, got[i].frames, "every packet decodes")
    end
  end)

  it("publish.lua of an H.264/AAC MP4 to nginx-rtmp in the legacy forms: ffmpeg reads every frame back", function()
    local srv = H.nginx_start()
    local out = H.tmpname("from-nginx.flv")
    local player = H.ffmpeg_play(srv.url("live/mp4"), out, 1.5)
    assert(H.wait_until(function() return srv.count("play", "mp4") >= 1 end, 10), srv.log())
    local p = M.publish(srv.url("live/mp4"), (M.clip("h264-aac")))
    M.wait_publishers({ p })
    assert.is_truthy(H.wait_exit(player, 15), "ffmpeg player did not end")
    same_media(out, (M.clip("h264-aac")), "through nginx-rtmp")
  end)

  it("publish.lua says which tracks RTMP cannot carry, and fails on a file that is no MP4 inside", function()
    local srv = H.luartmp_start()
    local bad = H.tmpname("bad.mp4")
    H.write_file(bad, "\0\0\0\16ftypisom\0\0\2\0" .. "\0\0\0\8mdat")
    local rc, out = H.run(fmt("%s %s %s %s", q(H.luartmp), PUBLISH, q(bad), q(srv.url("live/bad"))), 20)
    assert.are.equal(1, rc)
    assert.matches("publish.lua: .*bad.mp4: MP4 file without a movie box %(moov%)", out)
    local mp4v = H.tmpname("mp4v.mp4")
    local mrc, mout = H.run(fmt("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=64x48:rate=10 " ..
      "-f lavfi -i sine -map 0:v -map 1:a -t 0.5 -c:v mpeg4 -c:a aac %s", q(mp4v)), 60)
    assert(mrc == 0, mout)
    rc, out = H.run(fmt("%s %s --fast %s %s", q(H.luartmp), PUBLISH, q(mp4v), q(srv.url("live/mp4v"))), 20)
    assert.are.equal(0, rc, out)
    assert.matches("video track 1 %(mp4v%) is not sent: RTMP cannot carry it", out)
  end)
end)
