-- RTMPS: TLS on luartmp's listeners and connections (docs/TLS.md), with
-- real peers on loopback: ffmpeg (its tls protocol, GnuTLS), GStreamer
-- (rtmp2, GIO's TLS), and luartmp's own client through a TLS front
-- (stunnel4) to nginx-rtmp.  Certificates are made at test time
-- (spec/support/tls.lua): a CA, a server certificate for localhost and
-- 127.0.0.1, an expired one, one for another name, a self-signed one.

local H = require "support.helpers"
local T = require "support.tls"
local F = H.FIXTURE

local q = H.shquote
local fmt = string.format

-- Every frame of the fixture, counted by ffprobe in what a player wrote.
local function assert_every_frame(label, file, audio_frames)
  assert.is_truthy(H.file_size(file), label .. ": nothing written to " .. file)
  local info, err = H.probe(file)
  assert(info, label .. ": ffprobe failed: " .. tostring(err))
  assert(info.video and info.audio, label .. ": streams missing in " .. file .. "\n" .. (info.log or ""))
  assert.are.equal(F.video_codec, info.video.codec, label)
  assert.are.equal(F.frames, info.video.frames, label .. ": video frames")
  if audio_frames then assert.are.equal(audio_frames, info.audio.frames, label .. ": audio frames") end
  return info
end

local fixture_audio
-- The fixture's own audio frame count (what every player must get).
local function fixture_audio_frames()
  if not fixture_audio then fixture_audio = assert(H.probe(H.fixture_flv())).audio.frames end
  return fixture_audio
end

describe("rtmps:// listeners", function()
  after_each(function() H.cleanup() end)

  it("serve ffmpeg publishing and playing over TLS, next to a plain listener in the same process", function()
    local srv = T.luartmp_start()
    local tls_file, plain_file = H.tmpname("tls-play.flv"), H.tmpname("plain-play.flv")
    -- players first (they wait for the stream), one on each listener
    local tls_player = H.ffmpeg_play(srv.tls_url("live/both"), tls_file, 4)
    local plain_player = H.ffmpeg_play(srv.url("live/both"), plain_file, 4)
    assert(H.wait_until(function() return srv.count("play", "both") >= 2 end, 15),
      "the players did not reach play:\n" .. srv.log())
    local pub = H.ffmpeg_publish(srv.tls_url("live/both"))
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher: " .. H.output(pub))
    assert.are.equal(0, H.wait_exit(tls_player, 15), "TLS player: " .. H.output(tls_player))
    assert.are.equal(0, H.wait_exit(plain_player, 15), "plain player: " .. H.output(plain_player))
    assert_every_frame("TLS player", tls_file, fixture_audio_frames())
    assert_every_frame("plain player", plain_file, fixture_audio_frames())
    -- the log says what each TLS connection negotiated, and that no plain one has TLS
    local log = srv.log()
    local tls_lines = H.count_plain(log, " TLS: TLSv1.")
    assert.are.equal(2, tls_lines, log)
    assert.truthy(log:find("SNI localhost", 1, true), log)
    assert.truthy(log:find("listening on 127.0.0.1:" .. srv.tls_port .. " (rtmps: TLS)", 1, true), log)
    assert.are.equal(0, srv.stop())
  end)

  it("present a certificate ffmpeg verifies against the CA, for localhost and for 127.0.0.1", function()
    local c = T.certs()
    local srv = T.luartmp_start()
    for _, host in ipairs({ "localhost", "127.0.0.1" }) do
      local name = "verified_" .. host:gsub("%.", "_")
      local file = H.tmpname(name .. ".flv")
      -- tls_verify and ca_file are options of ffmpeg's tls protocol, which rtmps:// opens
      local player = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -tls_verify 1 -ca_file %s -rw_timeout 4000000 "
        .. "-i %s -c copy -f flv -y %s", q(c.ca), q(srv.tls_url("live/" .. name, host)), q(file)), { name = "ffmpeg-play" })
      assert(H.wait_until(function() return srv.count("play", name) >= 1 end, 15), srv.log())
      local pub = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -re -i %s -c copy -f flv -tls_verify 1 -ca_file %s %s",
        q(H.fixture_flv()), q(c.ca), q(srv.tls_url("live/" .. name, host))), { name = "ffmpeg-publish" })
      assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), host .. ": " .. H.output(pub))
      assert.are.equal(0, H.wait_exit(player, 15), host .. ": " .. H.output(player))
      assert_every_frame(host, file, fixture_audio_frames())
    end
    -- and a CA that did not sign it makes ffmpeg refuse the connection
    local pub = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -i %s -c copy -f flv -tls_verify 1 -ca_file %s %s",
      q(H.fixture_flv()), q(c.self_signed), q(srv.tls_url("live/refused"))), { name = "ffmpeg-publish" })
    assert.are_not.equal(0, H.wait_exit(pub, 15))
    assert.are.equal(0, srv.count("publish", "refused"))
  end)
end)
