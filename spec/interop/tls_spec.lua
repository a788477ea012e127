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

-- What rtmp2src saved in `file` against the fixture: every video and
-- audio frame, the same bytes in the same order (per type: flvmux
-- interleaves the two again).  One exception is
-- GStreamer's, not the server's: rtmp2src (1.22) passes each message to
-- its streaming thread through a one-message slot, and the cleanup after
-- StreamEOF ends its network loop empties that slot (gstrtmp2src.c), so
-- the stream's very last message is saved only when the streaming thread
-- took it first (about one run in eight; from nginx-rtmp too, see
-- capture_matrix_spec).  Only that message may be missing.
local function assert_rtmp2src_frames(label, file)
  local want, got = H.packets(H.fixture_flv()), H.packets(file)
  local function of(list, kind)
    local out = {}
    for _, p in ipairs(list) do if p.type == kind then out[#out + 1] = p.hash end end
    return out
  end
  assert.are.same(of(want, "video"), of(got, "video"), label .. ": video frames")
  local want_audio, got_audio = of(want, "audio"), of(got, "audio")
  if #got_audio == #want_audio - 1 and want[#want].type == "audio" then
    table.remove(want_audio)   -- the last message of the stream, dropped by rtmp2src at StreamEOF
  end
  assert.are.same(want_audio, got_audio, label .. ": audio frames")
end

-- No warning in a luartmp log about TLS or a failed write (ffmpeg's
-- publisher may end with a reset: "read: Connection reset").
local function assert_no_tls_warning(log)
  for line in log:gmatch("[^\n]*warn conn=[^\n]*") do
    assert.falsy(line:find("TLS", 1, true) or line:find("close: write", 1, true), log)
  end
end

-- A late joiner spawned late_at s into the publish starts at a keyframe
-- no later than its join, and has every frame from there: whole GOPs, at
-- least those that began after it asked, within a second of its spawn.
local function assert_late_joiner(label, file, late_at)
  assert.are.equal("K_", H.first_video_flags(file), label)
  local gop_s = F.gop / F.fps
  local info = assert(H.probe(file), label)
  local most = F.frames - math.max(0, math.floor((late_at - 1) / gop_s)) * F.gop
  local least = F.frames - math.ceil((late_at + 1) / gop_s) * F.gop
  assert(info.video.frames >= least and info.video.frames <= most and info.video.frames % F.gop == 0,
    fmt("%s at %.1f s: %s frames, want whole GOPs from %d to %d", label, late_at, tostring(info.video.frames),
      least, most))
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
    -- a late TLS joiner 3 s in (mid-GOP): the cached GOP goes out as TLS records first
    assert(H.wait_until(function() return H.now() - pub.started >= 3 end, 10))
    local late_file = H.tmpname("tls-late.flv")
    local late = H.ffmpeg_play(srv.tls_url("live/both"), late_file, 4)
    local late_at = H.now() - pub.started
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher: " .. H.output(pub))
    assert.are.equal(0, H.wait_exit(tls_player, 15), "TLS player: " .. H.output(tls_player))
    assert.are.equal(0, H.wait_exit(plain_player, 15), "plain player: " .. H.output(plain_player))
    assert.are.equal(0, H.wait_exit(late, 15), "late TLS player: " .. H.output(late))
    assert_every_frame("TLS player", tls_file, fixture_audio_frames())
    assert_every_frame("plain player", plain_file, fixture_audio_frames())
    assert_late_joiner("late TLS joiner", late_file, late_at)
    -- the log says what each TLS connection negotiated, and that no plain one has TLS
    local log = srv.log()
    local tls_lines = H.count_plain(log, " TLS: TLSv1.")
    assert.are.equal(3, tls_lines, log)
    -- the listener's order: AES-128-GCM first, whatever ffmpeg (GnuTLS) prefers
    assert.are.equal(3, H.count_plain(log, " TLS: TLSv1.3 TLS_AES_128_GCM_SHA256,"), log)
    assert.truthy(log:find("SNI localhost", 1, true), log)
    assert.truthy(log:find("listening on 127.0.0.1:" .. srv.tls_port .. " (rtmps: TLS)", 1, true), log)
    assert.are.equal(0, srv.stop())
  end)

  it("choose the cipher, AES-128-GCM first by default, and as --tls-ciphersuites and --tls-ciphers say", function()
    -- openssl s_client offers OpenSSL's order (AES-256-GCM, ChaCha20, AES-128-GCM), so the server's is seen
    local function negotiated(srv, ...)
      local rc, out = H.run(fmt("openssl s_client -connect 127.0.0.1:%d -servername localhost %s </dev/null 2>&1",
        srv.tls_port, table.concat({ ... }, " ")), 20)
      assert.are.equal(0, rc, out)
      return out:match("New, (TLSv[%d.]+), Cipher is (%S+)")
    end
    local srv = T.luartmp_start()
    assert.are.same({ "TLSv1.3", "TLS_AES_128_GCM_SHA256" }, { negotiated(srv) })
    assert.are.same({ "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256" }, { negotiated(srv, "-tls1_2") })
    -- the rest of OpenSSL's DEFAULT is still there after it
    assert.are.same({ "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305" },
      { negotiated(srv, "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305") })
    assert.are.same({ "TLSv1.2", "ECDHE-RSA-AES256-SHA384" }, { negotiated(srv, "-tls1_2 -cipher ECDHE-RSA-AES256-SHA384") })
    -- the client's order when it alone offers what is left
    assert.are.same({ "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256" },
      { negotiated(srv, "-ciphersuites TLS_CHACHA20_POLY1305_SHA256") })
    local log = srv.log()
    assert.truthy(log:find(" TLS: TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256, SNI localhost", 1, true), log)
    local mine = T.luartmp_start{ extra = { "--tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
      "--tls-ciphers", "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384" } }
    assert.are.same({ "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256" }, { negotiated(mine) })
    assert.are.same({ "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305" }, { negotiated(mine, "-tls1_2") })
    -- a suite the listener does not take is not negotiated: the handshake fails
    local rc, out = H.run(fmt("openssl s_client -connect 127.0.0.1:%d -ciphersuites TLS_AES_128_GCM_SHA256 "
      .. "-tls1_3 </dev/null 2>&1", mine.tls_port), 20)
    assert.are_not.equal(0, rc, out)
    assert.truthy(out:find("handshake failure", 1, true), out)
    -- and ffmpeg gets the listener's first
    local pub = H.ffmpeg_publish(mine.tls_url("live/chacha"))
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), H.output(pub))
    log = mine.log()
    assert.truthy(log:find(" TLS: TLSv1.3 TLS_CHACHA20_POLY1305_SHA256, SNI localhost", 1, true), log)
    -- "" on the command line: no TLS 1.3 at all
    local no13 = T.luartmp_start{ extra = { "--tls-ciphersuites", "" } }
    assert.are.same({ "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256" }, { negotiated(no13) })
    assert.are.equal(0, srv.stop())
    assert.are.equal(0, mine.stop())
    assert.are.equal(0, no13.stop())
  end)

  it("seal TLS 1.3 records themselves for every suite (ffmpeg, GnuTLS, decrypts every frame), and leave them to "
    .. "OpenSSL with --tls-openssl-records and on TLS 1.2", function()
    local variants = {
      { name = "aes128", extra = {}, says = "sealed by luartmp" },
      { name = "aes256", extra = { "--tls-ciphersuites", "TLS_AES_256_GCM_SHA384" }, says = "sealed by luartmp",
        cipher = "TLS_AES_256_GCM_SHA384" },
      { name = "chacha", extra = { "--tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256" }, says = "sealed by luartmp",
        cipher = "TLS_CHACHA20_POLY1305_SHA256" },
      { name = "openssl", extra = { "--tls-openssl-records" },
        says = "by SSL_write (no kTLS send; not sealed by luartmp: asked for (tls.openssl_records))" },
      { name = "tls12", extra = { "--tls-ciphersuites", "" },
        says = "by SSL_write (no kTLS send; not sealed by luartmp: not TLS 1.3)" },
    }
    local ktls = (H.read_file("/proc/sys/net/ipv4/tcp_available_ulp") or ""):find("tls", 1, true)
    for _, v in ipairs(variants) do -- players first, on every server at once
      v.srv = T.luartmp_start{ extra = v.extra }
      v.file = H.tmpname("records-" .. v.name .. ".flv")
      v.player = H.ffmpeg_play(v.srv.tls_url("live/" .. v.name), v.file, 4)
    end
    for _, v in ipairs(variants) do
      assert(H.wait_until(function() return v.srv.count("play", v.name) >= 1 end, 15), v.srv.log())
      v.pub = H.ffmpeg_publish(v.srv.tls_url("live/" .. v.name))
    end
    for _, v in ipairs(variants) do
      assert.are.equal(0, H.wait_exit(v.pub, F.seconds + 15), v.name .. " publisher: " .. H.output(v.pub))
      assert.are.equal(0, H.wait_exit(v.player, 15), v.name .. " player: " .. H.output(v.player))
      assert_every_frame(v.name .. " player", v.file, fixture_audio_frames())
      local log = v.srv.log()
      -- the player and the publisher, each saying who makes its output records (the kernel, where it
      -- has the tls ULP and OpenSSL takes it, instead of luartmp)
      local says = H.count_plain(log, "output TLS records of up to 16 KiB " .. v.says)
      if ktls and v.says == "sealed by luartmp" then says = says + H.count_plain(log, "output kTLS send") end
      assert.are.equal(2, says, log)
      if v.cipher then assert.are.equal(2, H.count_plain(log, " TLS: TLSv1.3 " .. v.cipher .. ","), log) end
      -- nothing failed on our side of TLS
      assert_no_tls_warning(log)
      assert.are.equal(0, v.srv.stop())
    end
  end)

  it("seal ahead for many TLS players at once (18 on time among plain ones, 4 late with a GOP each): every frame",
    function()
    -- records are sealed for a window of up to 16 dirty connections in
    -- one go before any is written (docs/TLS.md, "The I/O"): 18 TLS
    -- players are more than a window holds, the plain players are in the
    -- same dirty list, and the late joiners' cached GOPs fill the window's
    -- buffer sooner (what the players receive is checked, not the windows)
    local srv = T.luartmp_start()
    local players = {}
    for i = 1, 20 do
      local tls = i % 10 ~= 0 -- 18 TLS, 2 plain
      local file = H.tmpname(fmt("many-%d.flv", i))
      local url = tls and srv.tls_url("live/many") or srv.url("live/many")
      players[i] = { tls = tls, file = file, proc = H.ffmpeg_play(url, file, 4) }
    end
    assert(H.wait_event(srv, "play", "many", 19, 20), "the players did not reach play:\n" .. srv.log())
    local pub = H.ffmpeg_publish(srv.tls_url("live/many"))
    assert(H.wait_until(function() return H.now() - pub.started >= 3 end, 10))
    local late = {}
    for i = 1, 4 do
      local file = H.tmpname(fmt("many-late-%d.flv", i))
      late[i] = { file = file, proc = H.ffmpeg_play(srv.tls_url("live/many"), file, 4), at = H.now() - pub.started }
    end
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher: " .. H.output(pub))
    for i, p in ipairs(players) do
      local label = fmt("%s player %d", p.tls and "TLS" or "plain", i)
      assert.are.equal(0, H.wait_exit(p.proc, 15), label .. ": " .. H.output(p.proc))
      assert_every_frame(label, p.file, fixture_audio_frames())
    end
    for i, p in ipairs(late) do
      local label = "late TLS player " .. i
      assert.are.equal(0, H.wait_exit(p.proc, 15), label .. ": " .. H.output(p.proc))
      assert_late_joiner(label, p.file, p.at)
    end
    local log = srv.log()
    -- 22 TLS players and the publisher (with the kernel's tls ULP, kTLS send instead of our records)
    assert.are.equal(23, H.count_plain(log, "output TLS records of up to 16 KiB sealed by luartmp")
      + H.count_plain(log, "output kTLS send"), log)
    assert_no_tls_warning(log)
    assert.are.equal(0, srv.stop())
  end)

  it("number their first record after OpenSSL's session tickets: openssl s_client decrypts the RTMP handshake's "
    .. "answer after a full handshake (two tickets) and on a resumed session (one)", function()
    local srv = T.luartmp_start()
    local sess, c0c1 = H.tmpname("tls-session"), H.tmpname("c0c1")
    local marker = "luartmp-sequence-check-"
    -- C0, then C1 with a zero version: the simple handshake, whose S2 echoes C1 (marker included)
    H.write_file(c0c1, "\3" .. string.pack(">I4I4", 0, 0) .. (marker .. string.rep("x", 1528)):sub(1, 1528))
    local function s_client(extra) -- stdin stays open 2 s: S0S1S2 and the tickets arrive meanwhile
      local _, out = H.run(fmt("(cat %s; sleep 2) | openssl s_client -connect 127.0.0.1:%d -servername localhost "
        .. "-tls1_3 %s 2>&1", q(c0c1), srv.tls_port, extra), 20)
      return out
    end
    local out = s_client("-sess_out " .. q(sess))
    assert.truthy(out:find("New, TLSv1.3", 1, true), out)
    assert.truthy(out:find(marker, 1, true), out) -- S2, decrypted: the first record's number was right
    out = s_client("-sess_in " .. q(sess))
    assert.truthy(out:find("Reused, TLSv1.3", 1, true), out)
    assert.truthy(out:find(marker, 1, true), out)
    assert.falsy(out:find("alert", 1, true), out)
    -- a client that asks for records of at most 512 bytes gets OpenSSL's (ours are up to 16 KiB)
    out = s_client("-maxfraglen 512")
    assert.truthy(out:find(marker, 1, true), out)
    local log = srv.log()
    assert.are.equal(2, H.count_plain(log, "output TLS records of up to 16 KiB sealed by luartmp"), log)
    assert.are.equal(1, H.count_plain(log, "not sealed by luartmp: the peer's max_fragment_length"), log)
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

-- GStreamer's rtmp2 elements trust the system's CAs only (GIO), not ours:
-- they are told to check all but the issuer, so the name and the dates are
-- still verified.
local GST_FLAGS = "tls-validation-flags=bad-identity+not-activated+expired+revoked+insecure+generic-error"

-- GStreamer publishing `file` to `url` (rtmp2sink), at the file's pace.
local function gst_publish(url, file)
  return H.spawn(fmt("gst-launch-1.0 filesrc location=%s ! flvdemux name=d d.video ! queue ! h264parse ! "
    .. "flvmux name=m streamable=true ! rtmp2sink location=%s %s d.audio ! queue ! aacparse ! m.",
    q(file), q(url), GST_FLAGS), { name = "gst-publish" })
end

-- GStreamer playing `url` (rtmp2src) into the FLV file `out`; it ends at the
-- stream's end (EOS), the file complete.
local function gst_record(url, out)
  return H.spawn(fmt("gst-launch-1.0 -e rtmp2src location=%s %s ! flvdemux name=d d.video ! queue ! h264parse ! "
    .. "flvmux name=m ! filesink location=%s d.audio ! queue ! aacparse ! m.", q(url), GST_FLAGS, q(out)),
    { name = "gst-play" })
end

describe("GStreamer over rtmps://", function()
  after_each(function() H.cleanup() end)

  it("rtmp2sink publishes and rtmp2src plays through luartmp's TLS listener, every frame", function()
    local srv = T.luartmp_start()
    local gst_out, ff_out = H.tmpname("gst-play.flv"), H.tmpname("ffmpeg-play.flv")
    local gst_player = gst_record(srv.tls_url("live/gst"), gst_out)
    local ff_player = H.ffmpeg_play(srv.tls_url("live/gst"), ff_out, 4)
    assert(H.wait_until(function() return srv.count("play", "gst") >= 2 end, 15), srv.log())
    local pub = gst_publish(srv.tls_url("live/gst"), H.fixture_flv())
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "rtmp2sink: " .. H.output(pub))
    assert.are.equal(0, H.wait_exit(gst_player, 15), "rtmp2src: " .. H.output(gst_player))
    assert.are.equal(0, H.wait_exit(ff_player, 15), "ffmpeg: " .. H.output(ff_player))
    assert_every_frame("rtmp2src", gst_out)
    assert_rtmp2src_frames("rtmp2src", gst_out)
    assert_every_frame("ffmpeg after rtmp2sink", ff_out, fixture_audio_frames())
    assert.are.equal(3, H.count_plain(srv.log(), "SNI localhost"), srv.log())
  end)

  it("rtmp2sink refuses a certificate for another name", function()
    local srv = T.luartmp_start{ cert = T.certs().wrong }
    local pub = gst_publish(srv.tls_url("live/wrong"), H.fixture_flv())
    assert.are_not.equal(0, H.wait_exit(pub, 15), H.output(pub))
    assert.are.equal(0, srv.count("publish", "wrong"))
    -- (GIO drops the connection without an alert: the server logs how it ended)
    assert.truthy(srv.log():find("warn conn=%d+ peer=127%.0%.0%.1:%d+ close: TLS handshake: "), srv.log())
  end)
end)

describe("rtmps:// connections", function()
  after_each(function() H.cleanup() end)

  it("publish.lua and play.lua go through a TLS front (stunnel4) to nginx-rtmp, verified with --tls-ca", function()
    local c = T.certs()
    local nginx = H.nginx_start()
    local front = T.stunnel_start(nginx.port)
    local url = front.url("live/fronted")
    local out = H.tmpname("play-through-front.flv")
    local player = H.spawn(fmt("%s --tls-ca %s scripts/client/play.lua --timeout 10 %s %s", q(H.luartmp), q(c.ca),
      q(url), q(out)), { name = "play" })
    assert(H.wait_until(function() return nginx.count("play", "fronted") >= 1 end, 15),
      "play.lua did not reach play through the front:\n" .. H.output(player) .. front.log())
    local rc, text = H.run(fmt("%s --tls-ca %s scripts/client/publish.lua %s %s", q(H.luartmp), q(c.ca),
      q(H.fixture_flv()), q(url)), F.seconds + 20)
    assert.are.equal(0, rc, text)
    assert.are.equal(0, H.wait_exit(player, 15), H.output(player))
    assert_every_frame("play.lua through the TLS front", out, fixture_audio_frames())
    assert.are.equal(1, nginx.count("publish", "fronted"))
  end)

  it("rtmp.connect over rtmps:// shows what TLS negotiated in conn.tls, and false on a plain connection", function()
    local c = T.certs()
    local srv = T.luartmp_start()
    local script = H.tmpname("tls-fields") .. ".lua"
    H.write_file(script, [[
      local rtmp = require "rtmp"
      local tls_url, plain_url, ca = ...
      local nc = assert(rtmp.connect(tls_url, { tls = { ca = ca } }))
      local t = nc.conn.tls
      print("tls", t.handshake, t.version, t.cipher ~= nil, t.sni, t.peer_verified, t.ktls_send ~= nil,
        t.records == (t.ktls_send and "kernel" or "luartmp"))
      print("url", nc.conn.url, nc.conn.tc_url)
      nc:close()
      local plain = assert(rtmp.connect(plain_url))
      print("plain", plain.conn.tls)
      plain:close()
      -- the IP address: no SNI (RFC 6066), the certificate checked for the address
      local ip = assert(rtmp.connect((tls_url:gsub("localhost", "127.0.0.1")), { tls = { ca = ca } }))
      print("ip", ip.conn.tls.sni == "", ip.conn.tls.peer_verified)
      ip:close()
      -- insecure: connected, not verified
      local ins = assert(rtmp.connect(tls_url, { tls = { insecure = true } }))
      print("insecure", ins.conn.tls.peer_verified)
      ins:close()
      -- tls.sni: the name sent and verified instead of the URL's host (here an address)
      local ip_url = tls_url:gsub("localhost", "127.0.0.1")
      local named = assert(rtmp.connect(ip_url, { tls = { ca = ca, sni = "localhost" } }))
      print("sni", named.conn.tls.sni, named.conn.tls.peer_verified)
      named:close()
      print("sni wrong", select(2, rtmp.connect(ip_url, { tls = { ca = ca, sni = "other.example" } })))
    ]])
    local rc, out = H.run(fmt("%s %s %s %s %s", q(H.luartmp), q(script), q(srv.tls_url("live")), q(srv.url("live")),
      q(c.ca)), 20)
    assert.are.equal(0, rc, out)
    -- records: who makes our output records (luartmp on TLS 1.3, unless the kernel does)
    assert.truthy(out:find("tls\ttrue\tTLSv1.3\ttrue\tlocalhost\ttrue\ttrue\ttrue\n", 1, true), out)
    -- tcUrl keeps the scheme, as ffmpeg sends it
    assert.truthy(out:find("url\t" .. srv.tls_url("live") .. "\t" .. srv.tls_url("live") .. "\n", 1, true), out)
    assert.truthy(out:find("plain\tfalse\n", 1, true), out)
    assert.truthy(out:find("ip\ttrue\ttrue\n", 1, true), out)
    assert.truthy(out:find("insecure\tfalse\n", 1, true), out)
    assert.truthy(out:find("sni\tlocalhost\ttrue\n", 1, true), out)
    assert.truthy(out:find("sni wrong\tclosed: TLS handshake: certificate verify failed: hostname mismatch "
      .. "(certificate /CN=localhost, wanted other.example)\n", 1, true), out)
    -- the server saw the SNI of the first and no SNI from the address
    local log = srv.log()
    assert.truthy(log:find("SNI localhost", 1, true), log)
    assert.truthy(log:find("SNI none", 1, true), log)
    assert.truthy(log:find("SNI other.example", 1, true) == nil, "a refused connection logs no completed handshake")
  end)
end)

describe("relays and the proxy over rtmps://", function()
  after_each(function() H.cleanup() end)

  -- An ffmpeg player on `play_url` (from before the publisher starts, once
  -- `srv` logged it), the fixture published to `pub_url`: the player gets
  -- every frame.
  local function through(srv, name, play_url, pub_url)
    local out = H.tmpname(name .. ".flv")
    local player = H.ffmpeg_play(play_url, out, 3)
    assert(H.wait_until(function() return srv.count("play", name) >= 1 end, 15),
      "the player did not reach play:\n" .. srv.log())
    local pub = H.ffmpeg_publish(pub_url)
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 20), "publisher: " .. H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 20), "player: " .. H.output(player))
    assert_every_frame(name, out, fixture_audio_frames())
  end

  it("push to nginx-rtmp behind a TLS front, verified with --tls-ca", function()
    local c = T.certs()
    local nginx = H.nginx_start()
    local front = T.stunnel_start(nginx.port)
    local srv = H.luartmp_start{ script = "spec/interop/relay_live.lua", args = { "push", front.url("live") },
                                 extra = { "--tls-ca", c.ca } }
    through(nginx, "pushed", nginx.url("live/pushed"), srv.url("live/pushed"))
    assert.truthy(srv.log():find("certificate verified", 1, true), srv.log())
  end)

  it("pull from a luartmp origin's rtmps:// listener, with --tls-insecure", function()
    local origin = T.luartmp_start()
    local edge = H.luartmp_start{ script = "spec/interop/relay_live.lua", args = { "pull", origin.tls_url("live") },
                                  extra = { "--tls-insecure" } }
    through(edge, "pulled", edge.url("live/pulled"), origin.url("live/pulled"))
    assert.truthy(edge.log():find("certificate NOT verified (insecure)", 1, true), edge.log())
    assert.truthy(origin.log():find("SNI localhost", 1, true), origin.log())
  end)

  it("the proxy: a TLS listener in front of a plain upstream (message mode), and a plain one in front of "
    .. "a TLS upstream (byte-faithful)", function()
    local c = T.certs()
    local nginx = H.nginx_start()
    -- TLS in, plain out
    local port = H.free_port()
    local p1 = H.spawn(fmt("%s --log-level debug --listen rtmps://127.0.0.1:%d --tls-cert %s --tls-key %s "
      .. "scripts/proxy.lua --upstream %s", q(H.luartmp), port, q(c.cert), q(c.key), q(nginx.url(""))),
      { name = "proxy-tls-in" })
    assert(H.wait_port(port, 10, p1))
    through(nginx, "tls_in", nginx.url("live/tls_in"), fmt("rtmps://localhost:%d/live/tls_in", port))
    -- plain in, TLS out (through stunnel to nginx), bytes unchanged
    local front = T.stunnel_start(nginx.port)
    local port2 = H.free_port()
    local p2 = H.spawn(fmt("%s --log-level debug --tls-ca %s scripts/proxy.lua --faithful --listen 127.0.0.1:%d "
      .. "--upstream %s", q(H.luartmp), q(c.ca), port2, q(front.url(""))), { name = "proxy-tls-out" })
    assert(H.wait_port(port2, 10, p2))
    through(nginx, "tls_out", nginx.url("live/tls_out"), fmt("rtmp://127.0.0.1:%d/live/tls_out", port2))
    assert.truthy(H.output(p1):find("TLS: TLSv1", 1, true), H.output(p1))
    assert.truthy(H.output(p2):find("certificate verified", 1, true), H.output(p2))
  end)

  it("the proxy says why it cannot listen, in one line", function()
    local rc, out = H.run(fmt("%s scripts/proxy.lua --upstream rtmp://127.0.0.1:1 --listen rtmps://127.0.0.1:%d",
      q(H.luartmp), H.free_port()), 10)
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("^proxy.lua: listen rtmps://127.0.0.1:%d+: an rtmps:// listener needs a certificate and its key"),
      out)
    assert.falsy(out:find("traceback", 1, true), out)
  end)
end)

describe("TLS errors", function()
  after_each(function() H.cleanup() end)

  -- Run a Lua script with luartmp and its arguments: exit status, output.
  local function lua_run(text, ...)
    local script = H.tmpname("tls-errors") .. ".lua"
    H.write_file(script, text)
    local args = { q(H.luartmp), q(script) }
    for _, a in ipairs({ ... }) do args[#args + 1] = q(a) end
    return H.run(table.concat(args, " "), 30)
  end

  -- Each URL given: "<url>\t<result of rtmp.connect>" (the error a script gets).
  local CONNECT_EACH = [[
    local rtmp = require "rtmp"
    local ca = ...
    for i = 2, select("#", ...) do
      local url = select(i, ...)
      local nc, err = rtmp.connect(url, { tls = { ca = ca }, timeout = 5 })
      print(url .. "\t" .. (nc and "connected" or err))
      if nc then nc:close() end
    end
  ]]

  it("a plain client on the TLS port and a TLS client on the plain port are closed, saying so, while "
    .. "the process serves others", function()
    local c = T.certs()
    local srv = T.luartmp_start()
    -- a TLS publisher and player keep going meanwhile
    local out = H.tmpname("meanwhile.flv")
    local player = H.ffmpeg_play(srv.tls_url("live/meanwhile"), out, 4)
    assert(H.wait_until(function() return srv.count("play", "meanwhile") >= 1 end, 15), srv.log())
    local pub = H.ffmpeg_publish(srv.tls_url("live/meanwhile"))
    assert(H.wait_until(function() return srv.count("publish", "meanwhile") >= 1 end, 15), srv.log())

    local plain_on_tls = fmt("rtmp://127.0.0.1:%d/live", srv.tls_port)
    local tls_on_plain = fmt("rtmps://127.0.0.1:%d/live", srv.port)
    local rc, text = lua_run(CONNECT_EACH, c.ca, plain_on_tls, tls_on_plain, srv.tls_url("live"))
    assert.are.equal(0, rc, text)
    -- what the client sees: the server ended it; a server that is not TLS
    assert.truthy(text:find(plain_on_tls .. "\tclosed: peer closed the connection\n", 1, true), text)
    assert.truthy(text:find(tls_on_plain .. "\tclosed: TLS handshake: the server closed the connection without "
      .. "answering (not an rtmps:// port?)\n", 1, true), text)
    assert.truthy(text:find(srv.tls_url("live") .. "\tconnected\n", 1, true), text)
    -- what the server logs: connection id, peer, reason
    local log = srv.log()
    assert.truthy(log:find("warn conn=%d+ peer=127%.0%.0%.1:%d+ close: plain RTMP on a TLS port %(first byte 0x03, "
      .. "not a TLS handshake%): the client must use rtmps://"), log)
    assert.truthy(log:find("warn conn=%d+ peer=127%.0%.0%.1:%d+ close: a TLS handshake on a plain RTMP port %(first "
      .. "byte 0x16%): this listener is rtmp://, not rtmps://"), log)
    -- ffmpeg as the plain client on the TLS port fails too
    local ff = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -rw_timeout 3000000 -i %s -f null -",
      q(plain_on_tls .. "/meanwhile")), { name = "ffmpeg-plain" })
    assert.are_not.equal(0, H.wait_exit(ff, 15))
    assert.are.equal(2, H.count_plain(srv.log(), "close: plain RTMP on a TLS port"), srv.log())

    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), H.output(player))
    assert_every_frame("the player meanwhile", out, fixture_audio_frames())
    assert.are.equal(0, srv.stop())
  end)

  it("a record no key opens closes the connection, and what was queued for it never goes out in the clear", function()
    -- C0C1 and the bad record in one write: S0S1S2 is queued when the bad record fails the read
    local srv = T.luartmp_start()
    local rc, out = H.run(fmt("python3 spec/support/tls_bad_record.py %d", srv.tls_port), 30)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("^sealed %d+"), out)
    assert(H.wait_until(function() return srv.log():find("close: read: TLS: ", 1, true) end, 5), srv.log())
    assert.are.equal(0, srv.stop())
  end)

  it("a bad certificate: self-signed, expired, for another name; the verify error string is the reason", function()
    local c = T.certs()
    local self_srv = T.luartmp_start{ cert = c.self_signed }
    local expired_srv = T.luartmp_start{ cert = c.expired }
    local wrong_srv = T.luartmp_start{ cert = c.wrong }
    local urls = { self_srv.tls_url("live"), expired_srv.tls_url("live"), wrong_srv.tls_url("live"),
                   wrong_srv.tls_url("live", "127.0.0.1") }
    local rc, text = lua_run(CONNECT_EACH, c.ca, table.unpack(urls))
    assert.are.equal(0, rc, text)
    local want = {
      "closed: TLS handshake: certificate verify failed: self-signed certificate (certificate /CN=localhost)",
      "closed: TLS handshake: certificate verify failed: certificate has expired (certificate /CN=localhost)",
      "closed: TLS handshake: certificate verify failed: hostname mismatch (certificate /CN=wrong.example, "
        .. "wanted localhost)",
      "closed: TLS handshake: certificate verify failed: IP address mismatch (certificate /CN=wrong.example, "
        .. "wanted 127.0.0.1)",
    }
    for i, url in ipairs(urls) do
      assert.truthy(text:find(url .. "\t" .. want[i] .. "\n", 1, true), want[i] .. " in:\n" .. text)
    end
    -- the client's log line carries its connection id and the server's address
    assert.truthy(text:find("warn conn=%d+ peer=127%.0%.0%.1:" .. expired_srv.tls_port
      .. " close: TLS handshake: certificate verify failed: certificate has expired"), text)
    -- each server logs the alert the client sent
    assert.truthy(self_srv.log():find("close: TLS handshake: the peer's TLS alert: tlsv1 alert unknown ca", 1, true))
    assert.truthy(expired_srv.log():find("close: TLS handshake: the peer's TLS alert: sslv3 alert certificate expired",
      1, true))
    assert.truthy(wrong_srv.log():find("close: TLS handshake: the peer's TLS alert: sslv3 alert bad certificate", 1, true))
    -- without the CA, the system store does not know ours; --tls-insecure takes any
    rc, text = lua_run([[
      local rtmp = require "rtmp"
      local url = ...
      print("store", select(2, rtmp.connect(url, { timeout = 5 })))
      local nc = rtmp.connect(url, { tls = { insecure = true }, timeout = 5 })
      print("insecure", nc and nc.conn.tls.version)
      if nc then nc:close() end
    ]], self_srv.tls_url("live"))
    assert.are.equal(0, rc, text)
    assert.truthy(text:find("store\tclosed: TLS handshake: certificate verify failed: self-signed certificate", 1, true),
      text)
    assert.truthy(text:find("insecure\tTLSv1.3\n", 1, true), text)
  end)

  it("a certificate, key or CA file that does not load, an rtmps:// address without them, an address in use: "
    .. "nil and the reason, or one line and exit 1 from the command line", function()
    local c = T.certs()
    local rc, text = lua_run([[
      local rtmp = require "rtmp"
      local cert, key, ca = ...
      local function try(t) print(select(2, rtmp.listen(t))) end
      try{ listen = "rtmps://127.0.0.1:0", tls = { cert = "/nonexistent/cert.pem", key = key } }
      try{ listen = "rtmps://127.0.0.1:0", tls = { cert = cert, key = "/nonexistent/key.pem" } }
      try{ listen = "rtmps://127.0.0.1:0", tls = { cert = key, key = key } }
      try{ listen = "rtmps://127.0.0.1:0", tls = { cert = cert, key = cert } }
      try{ listen = "rtmps://127.0.0.1:0" }
      try{ listen = "rtmps://127.0.0.1:0/live", tls = { cert = cert, key = key } }
      try{ listen = "rtmps://127.0.0.1:0", tls = { cert = cert, key = key, ciphersuites = "TLS_AES_999" } }
      try{ listen = "rtmps://127.0.0.1:0", tls = { cert = cert, key = key, ciphers = "NOTHING-SUCH" } }
      print(select(2, rtmp.connect("rtmps://127.0.0.1:1/live", { tls = { ca = "/nonexistent/ca.pem" } })))
      print(pcall(rtmp.listen, { listen = "rtmps://127.0.0.1:0", tls = { cert = cert, key = key, kye = 1 } }))
      print(pcall(rtmp.listen, { listen = "rtmps://127.0.0.1:0", tls = "yes" }))
      print(pcall(rtmp.listen, { listen = "rtmps://127.0.0.1:0", tls = { cert = 5, key = key } }))
      local srv = assert(rtmp.listen{ listen = "rtmps://127.0.0.1:0", tls = { cert = cert, key = key } })
      print(srv.tls, srv.port > 0)
      srv:close()
    ]], c.cert, c.key, c.ca)
    assert.are.equal(0, rc, text)
    for _, line in ipairs({
      "listen rtmps://127.0.0.1:0: TLS certificate '/nonexistent/cert.pem': No such file or directory\n",
      "listen rtmps://127.0.0.1:0: TLS key '/nonexistent/key.pem': No such file or directory\n",
      "listen rtmps://127.0.0.1:0: TLS certificate '" .. c.key .. "': not a PEM certificate (no start line)\n",
      "listen rtmps://127.0.0.1:0: TLS key '" .. c.cert .. "': not a PEM private key",
      "listen rtmps://127.0.0.1:0: an rtmps:// listener needs a certificate and its key (docs/TLS.md)\n",
      "bad listen address 'rtmps://127.0.0.1:0/live' (want PORT, HOST:PORT or [V6]:PORT; after rtmps:// for TLS)\n",
      "listen rtmps://127.0.0.1:0: TLS ciphersuites 'TLS_AES_999': not one TLS 1.3 suite OpenSSL has\n",
      "listen rtmps://127.0.0.1:0: TLS ciphers 'NOTHING-SUCH': not one TLS 1.2 cipher OpenSSL has\n",
      "TLS CA file '/nonexistent/ca.pem': No such file or directory\n",
      "unknown TLS setting 'kye' (want cert, key, ciphersuites, ciphers, ca, sni, insecure or openssl_records)",
      "tls must be a table { cert =, key =, ciphersuites =, ciphers =, ca =, sni =, insecure =, openssl_records = }, not yes",
      "tls.cert must be a string, not 5",
      "true\ttrue\n",
    }) do
      assert.truthy(text:find(line, 1, true), line .. " in:\n" .. text)
    end
    -- the command line: the live server never starts, one line, no traceback
    local busy = H.luartmp_start()
    for args, line in pairs({
      ["--listen 127.0.0.1:" .. busy.port .. " --listen 127.0.0.1:%d"] =
        "luartmp: listen 127.0.0.1:" .. busy.port .. ": Address already in use\n",
      ["--listen rtmps://127.0.0.1:%d"] = "luartmp: listen rtmps://127.0.0.1:%d: an rtmps:// listener needs a "
        .. "certificate and its key (docs/TLS.md)\n",
      ["--listen rtmps://127.0.0.1:%d --tls-cert /nonexistent.pem --tls-key /nonexistent.key"] =
        "luartmp: listen rtmps://127.0.0.1:%d: TLS certificate '/nonexistent.pem': No such file or directory\n",
      ["--listen rtmps://127.0.0.1:%d --tls-cert " .. q(c.cert) .. " --tls-key " .. q(c.key)
        .. " --tls-ciphersuites TLS_AES_999"] =
        "luartmp: listen rtmps://127.0.0.1:%d: TLS ciphersuites 'TLS_AES_999': not one TLS 1.3 suite OpenSSL has\n",
      ["--listen 127.0.0.1:%d --listen rtmpx://127.0.0.1:1"] =
        "luartmp: bad listen address 'rtmpx://127.0.0.1:1' (want PORT, HOST:PORT or [V6]:PORT; after rtmps:// for TLS)\n",
      -- one port for both listeners: each address alone could be bound
      ["--listen 127.0.0.1:%d --listen rtmps://127.0.0.1:%d --tls-cert " .. q(c.cert) .. " --tls-key " .. q(c.key)] =
        "luartmp: listen 127.0.0.1:%d: Address already in use\n",
      -- a bare port is every address: taken on one (IPv4), it is not served on the others (IPv6) alone
      ["--listen 127.0.0.1:%d --listen %d"] = "luartmp: listen 0.0.0.0:%d: Address already in use\n",
    }) do
      local port = H.free_port()
      local out
      rc, out = H.run(q(H.luartmp) .. " " .. args:gsub("%%d", port) .. " scripts/live.lua", 10)
      assert.are.equal(1, rc, out)
      assert.are.equal((line:gsub("%%d", port)), out)
    end
    -- a file the process may not read (as an unprivileged user, when we are root)
    if not select(2, H.run("id -u", 5)):match("^0\n") then return end
    local private = H.tmpname("private.key")
    assert.are.equal(0, H.exec(fmt("cp %s %s && chmod 600 %s", q(c.key), q(private), q(private))))
    rc, text = H.run(fmt("su nobody -s /bin/sh -c %s", q(fmt("%s --listen rtmps://127.0.0.1:%d --tls-cert %s "
      .. "--tls-key %s scripts/live.lua", q(H.luartmp), H.free_port(), q(c.cert), q(private)))), 10)
    if text:find("Permission denied", 1, true) and text:find("TLS key", 1, true) then
      assert.are.equal(1, rc, text)
      assert.truthy(text:find("TLS key '" .. private .. "': Permission denied\n", 1, true), text)
    else
      pending("nobody cannot run " .. H.luartmp .. " here: " .. text)
    end
  end)
end)

describe("a TLS player that stops reading", function()
  after_each(function() H.cleanup() end)

  it("blocks the server's TLS writes for 3 s (4 KiB socket buffers both ends), then gets every frame", function()
    local server_script = H.tmpname("slow-tls-server") .. ".lua"
    H.write_file(server_script, [[
      local live = require "live"
      live.start{ send_buffer = 4096 }   -- the server's socket takes 4 KiB at a time
    ]])
    local client_script = H.tmpname("slow-tls-client") .. ".lua"
    H.write_file(client_script, [[
      local rtmp = require "rtmp"
      local url, out = ...
      local nc = assert(rtmp.connect(url, { tls = { insecure = true }, recv_buffer = 4096 }))
      local ns = assert(nc:create_stream())
      assert(ns:play("slowtls"))
      local w = assert(rtmp.flv.create(out))
      local videos = 0
      while true do
        local msg = ns:read()
        if not msg then break end
        if msg.type == 8 or msg.type == 9 or msg.type == 18 then assert(w:write(msg)) end
        if msg.type == 9 then
          videos = videos + 1
          if videos == 25 then   -- a second in: stop reading for 3 s
            nc.conn:pause_reading(true)
            rtmp.sleep(3)
            nc.conn:pause_reading(false)
          end
        end
      end
      w:close()
      nc:close()
      print("videos", videos)
    ]])
    local srv = T.luartmp_start{ script = server_script }
    local out = H.tmpname("slow-tls.flv")
    local player = H.spawn(fmt("%s %s %s %s", q(H.luartmp), q(client_script), q(srv.tls_url("live")), q(out)),
      { name = "slow-tls-player" })
    assert(H.wait_until(function() return srv.count("play", "slowtls") >= 1 end, 15), srv.log() .. H.output(player))
    local pub = H.ffmpeg_publish(srv.url("live/slowtls"))
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 20), H.output(player))
    assert_every_frame("the player that stopped reading", out, fixture_audio_frames())
    assert.falsy(srv.log():find("warn conn=%d+ [^\n]* close: write"), srv.log())
  end)

  it("closed as a slow reader while its records are half sent: the socket lingers, sends them and close_notify, "
    .. "and the server goes on serving the publisher", function()
    local server_script = H.tmpname("drop-tls-server") .. ".lua"
    H.write_file(server_script, [[
      local live = require "live"
      live.start{ send_buffer = 4096, max_output = 65536 }
    ]])
    local client_script = H.tmpname("drop-tls-client") .. ".lua"
    H.write_file(client_script, [[
      local rtmp = require "rtmp"
      local url = ...
      local nc = assert(rtmp.connect(url, { tls = { insecure = true }, recv_buffer = 4096 }))
      local ns = assert(nc:create_stream())
      assert(ns:play("droptls"))
      local videos, paused = 0, false
      while true do
        local msg = ns:read()
        if not msg then break end
        if msg.type == 9 then videos = videos + 1 end
        if videos == 10 and not paused then -- stop reading until the server gives up on us
          paused = true
          nc.conn:pause_reading(true)
          rtmp.sleep(4)
          nc.conn:pause_reading(false)
        end
      end
      print("videos", videos)
    ]])
    local srv = T.luartmp_start{ script = server_script }
    local player = H.spawn(fmt("%s %s %s", q(H.luartmp), q(client_script), q(srv.tls_url("live"))),
      { name = "drop-tls-player" })
    assert(H.wait_until(function() return srv.count("play", "droptls") >= 1 end, 15), srv.log() .. H.output(player))
    local pub = H.ffmpeg_publish(srv.url("live/droptls"))
    assert(H.wait_until(function() return srv.log():find("output queue over 65536 bytes (slow reader)", 1, true) end,
      F.seconds + 10), srv.log())
    assert.are.equal(0, H.wait_exit(player, 20), H.output(player))
    -- the publisher streamed to its end, and the server is still there to stop cleanly (it aborted before)
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), H.output(pub))
    assert.truthy(srv.log():find("unpublish live/droptls", 1, true), srv.log())
    assert.are.equal(0, srv.stop())
  end)
end)

describe("TLS 1.3 KeyUpdate", function()
  after_each(function() H.cleanup() end)

  local pipe_bin
  -- spec/support/tls_pipe.c, compiled once per run: a one-connection TLS
  -- pipe asking its TLS peer for new keys every `interval` seconds.
  local function pipe_start(mode, target, interval, c)
    if not pipe_bin then
      pipe_bin = H.tmpname("tls_pipe")
      local rc, out = H.run(fmt("cc -O1 -o %s spec/support/tls_pipe.c -lssl -lcrypto 2>&1", q(pipe_bin)), 60)
      assert(rc == 0, "cc: " .. out)
    end
    local port = H.free_port()
    local p = H.spawn(fmt("%s %s %d %d %s %s", q(pipe_bin), mode, port, target, interval,
      c and (q(c.cert) .. " " .. q(c.key)) or ""), { name = "tls_pipe" })
    assert(H.wait_port(port, 10, p))
    return p, port
  end

  -- "key_updates sent=N received=M ..." of a finished pipe
  local function counts(p)
    local text = H.read_file(p.out) or ""
    local s, r = text:match("key_updates sent=(%d+) received=(%d+)")
    assert(s, "tls_pipe said: " .. text .. H.output(p))
    return tonumber(s), tonumber(r)
  end

  -- `player` (started, writing `out`) plays live/`name` of `srv` through
  -- `pipe`: publish the fixture, then every frame must have arrived and
  -- `who` must have answered every request for new keys (but the last,
  -- which may cross the end).
  local function rekeyed(srv, name, player, pipe, out, who)
    assert(H.wait_until(function() return srv.count("play", name) >= 1 end, 15), srv.log() .. H.output(player))
    local pub = H.ffmpeg_publish(srv.url("live/" .. name))
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), H.output(player))
    assert.are.equal(0, H.wait_exit(pipe, 10), H.output(pipe))
    assert_every_frame(who .. ", its keys changed", out, fixture_audio_frames())
    local sent, received = counts(pipe)
    assert.is_true(sent >= 10, "KeyUpdates sent: " .. sent)
    assert.is_true(received >= sent - 1, fmt("%s answered %d of %d", who, received, sent))
  end

  it("the server answers every request and the TLS player gets every frame (ffmpeg behind a pipe)", function()
    local srv = T.luartmp_start()
    local pipe, port = pipe_start("client", srv.tls_port, 0.5)
    local out = H.tmpname("keyupdate-play.flv")
    local player = H.ffmpeg_play(fmt("rtmp://127.0.0.1:%d/live/rekey", port), out, 3)
    rekeyed(srv, "rekey", player, pipe, out, "the server")
  end)

  it("luartmp's client answers too, and play.lua gets every frame", function()
    local c = T.certs()
    local srv = H.luartmp_start()
    local pipe, port = pipe_start("server", srv.port, 0.5, c)
    local out = H.tmpname("keyupdate-client.flv")
    local player = H.spawn(fmt("%s --tls-ca %s scripts/client/play.lua --timeout 10 rtmps://localhost:%d/live/rekey2 %s",
      q(H.luartmp), q(c.ca), port, q(out)), { name = "play" })
    rekeyed(srv, "rekey2", player, pipe, out, "play.lua")
  end)
end)
