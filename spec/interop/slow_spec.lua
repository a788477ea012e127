-- Slow and stalled readers (docs/SLOW.md): each player's queue is bounded
-- in bytes and media time; past a bound group:send drops non-key video,
-- then whole GOPs (never sequence headers or metadata), and a player over
-- a bound for max_queue_stall seconds is disconnected.
--
-- The stalled player is spec/interop/slow_stall.lua, a luartmp client with
-- a 4 KiB socket receive buffer (recv_buffer) that plays and then stops
-- reading (conn:pause_reading) until told to go on; the server side fixes
-- its SO_SNDBUF (send_buffer) so that the kernel does not soak up
-- megabytes first.
--
-- Part 1 drives group:send in this process with synthetic frames and reads
-- the policy through conn:queue() and on_close.  Part 2 is the issue's
-- scenario against scripts/live.lua in its own process, scaled down: 100
-- players (98 counting clients in one luartmp process, one ffmpeg, one
-- stalled), an ffmpeg publisher, bounds of 256 KiB / 1 s and a 3 s stall
-- (the issue's 60 s stall with a few MiB of growth, in an 8 s stream);
-- then the same scenario with the policy off, to show that the memory
-- assertion measures what it claims.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local H = require "support.helpers"

local fmt = string.format
local null = rtmp.null
local STALL = "spec/interop/slow_stall.lua"

-- Start the stalled player; resume(p) makes it read again.
local function stall_player(port, stall_after)
  local resume = H.tmpname("stall-resume")
  local p = H.spawn(fmt("%s %s %d live s %s %s", H.shquote(H.luartmp), STALL, port, stall_after or 0,
    H.shquote(resume)), { name = "stall" })
  p.resume_file = resume
  return p
end
local function resume(p) H.write_file(p.resume_file, "go\n") end

---------------------------------------------------------------------------
-- Part 1: the policy, message by message
---------------------------------------------------------------------------

-- Run the loop until fn() is true (returns its value) or timeout seconds pass.
local function pump_until(fn, timeout)
  local deadline = H.now() + (timeout or 10)
  repeat
    local v = fn()
    if v then return v end
    rtmp.run(0.02)
  until H.now() > deadline
  return fn()
end

-- A minimal server: connect, createStream, play -> the group.
local function server(settings)
  local S = { group = rtmp.group(), by_port = {}, closed = {} }
  settings.listen = "127.0.0.1:0"
  settings.on_message = function(conn, msg)
    if msg.name == "connect" then
      conn:command(nil, "_result", msg.txn, { fmsVer = "FMS/3,0,1,123" },
        { level = "status", code = "NetConnection.Connect.Success" })
    elseif msg.name == "createStream" then
      conn:command(nil, "_result", msg.txn, null, 1)
    elseif msg.name == "play" then
      conn:command({ stream = msg.stream, csid = 5 }, "onStatus", 0, null,
        { level = "status", code = "NetStream.Play.Start" })
      S.group:add(conn, msg.stream)
      S.by_port[tonumber(conn.peer:match(":(%d+)$"))] = conn
    end
  end
  settings.on_close = function(conn, reason) S.closed[conn] = reason end
  S.srv = assert(rtmp.listen(settings))
  return S
end

-- Start slow_stall.lua against S (reads for stall_after seconds, then
-- stops) and return its process and the server's connection for it.
local function player(S, stall_after)
  local p = stall_player(S.srv.port, stall_after)
  local port = pump_until(function()
    return tonumber((H.read_file(p.out) or ""):match("playing port=(%d+)"))
  end, 10)
  assert(port, "the stalled player did not play: " .. H.output(p))
  local conn = assert(pump_until(function() return S.by_port[port] end, 5))
  if stall_after and stall_after > 0 then return p, conn end
  pump_until(function() return (H.read_file(p.out) or ""):find("stalled", 1, true) end, 5)
  return p, conn
end

local function video(ts, kind, size)
  local b0 = kind == "inter" and "\x27" or "\x17" -- frame type inter / key, codec AVC
  local b1 = kind == "seq" and "\0" or "\1"       -- sequence header / NALU
  return rtmp.message({ type = 9, timestamp = ts }, b0 .. b1 .. "\0\0\0" .. string.rep("v", size or 20000))
end
local function audio(ts, seq)
  return rtmp.message({ type = 8, timestamp = ts }, "\xaf" .. (seq and "\0" or "\1") .. string.rep("a", 200))
end
local META = rtmp.message({ type = 18, timestamp = 0 }, rtmp.amf0.encode("onMetaData", { width = 320 }))

-- group:send and one short loop run (the output is written).
local function send(S, msg)
  local n = S.group:send(msg)
  rtmp.run(0.01)
  return n
end

describe("slow readers: the queue policy", function()
  local S
  after_each(function()
    if S then S.srv:close() end
    S = nil
    rtmp.shutdown("test over")
    H.cleanup()
  end)

  it("drops non-key video, then whole GOPs, never headers or metadata, and closes a reader stalled past max_queue_stall", function()
    S = server{ max_queue_bytes = 64 * 1024, max_queue_time = 0, max_queue_stall = 1.5, send_buffer = 4096 }
    local hp, healthy = player(S, 600)   -- reads all along
    local sp, stalled = player(S, 0)     -- never reads after play
    assert.are.equal(2, send(S, video(0, "seq", 40)))
    assert.are.equal(2, send(S, audio(0, true)))
    assert.are.equal(2, send(S, META))
    assert.are.equal(2, send(S, video(0, "key")))
    -- inter frames: the stalled queue passes 64 KiB, then every inter frame is dropped for it
    local reached = {}
    for i = 1, 10 do reached[i] = send(S, video(40 * i, "inter")) end
    local first_drop
    for i = 1, 10 do
      if reached[i] == 1 and not first_drop then first_drop = i end
      if first_drop then assert.are.equal(1, reached[i], "inter frame " .. i .. " after the first drop") end
    end
    assert.truthy(first_drop, "some inter frame was dropped: " .. table.concat(reached, ","))
    assert.is_true(first_drop >= 3, "the first frames fit under 64 KiB: " .. table.concat(reached, ","))
    local q = stalled:queue()
    assert.are.equal("drop_inter", q.state)
    assert.are.equal(11 - first_drop, q.dropped)
    assert.is_true(q.bytes > 64 * 1024, "queue " .. q.bytes)
    -- audio while the bytes bound is passed: whole GOPs go, audio with them
    assert.are.equal(1, send(S, audio(420)))
    assert.are.equal("drop_gop", stalled:queue().state)
    -- sequence headers and metadata still reach everyone
    assert.are.equal(2, send(S, video(440, "seq", 40)))
    assert.are.equal(2, send(S, audio(440, true)))
    assert.are.equal(2, send(S, META))
    -- a keyframe that finds the queue still over is dropped too
    assert.are.equal(1, send(S, video(440, "key")))
    q = stalled:queue()
    assert.are.equal("drop_gop", q.state)
    assert.are.equal(13 - first_drop, q.dropped)
    local hq = healthy:queue()
    assert.are.equal("ok", hq.state)
    assert.are.equal(0, hq.dropped)
    -- over the bound for max_queue_stall: the next offer closes it
    rtmp.run(1.6)
    assert.is_nil(S.closed[stalled])
    assert.are.equal(1, send(S, video(480, "inter")))
    local reason = pump_until(function() return S.closed[stalled] end, 2)
    assert.truthy(reason)
    assert.truthy(reason:match("^slow reader: over the queue bounds for 1%.%d s %(queue %d+ bytes"), reason)
    assert.truthy(reason:find(fmt("dropped %d messages", 13 - first_drop), 1, true), reason)
    assert.is_nil(S.closed[healthy])
    -- the stalled client, reading again, finds the connection closed
    resume(sp)
    assert.truthy(H.wait_until(function() return H.output(sp):find("eof after", 1, true) end, 10), H.output(sp))
    H.kill(hp)
  end)

  it("lets a reader that caught up rejoin at the next keyframe; conn:queue changes the bounds of one connection", function()
    S = server{ max_queue_bytes = 64 * 1024, max_queue_time = 0, max_queue_stall = 0, send_buffer = 4096 }
    local rp, reader = player(S, 0)
    assert.has_error(function() reader:queue{ max_queue_time = -1 } end)
    local q = reader:queue{ max_queue_stall = 0 }
    assert.are.same({ 65536, 0, 0, "ok", 0 }, { q.max_queue_bytes, q.max_queue_time, q.max_queue_stall, q.state, q.dropped })
    assert.are.equal(1, send(S, video(0, "key")))
    local dropped = 0
    for i = 1, 8 do dropped = dropped + (1 - send(S, video(40 * i, "inter"))) end
    assert.is_true(dropped > 0)
    assert.are.equal("drop_inter", reader:queue().state)
    resume(rp) -- reads again
    assert.truthy(pump_until(function() return reader.pending == 0 end, 10), "the queue drained")
    -- under the bound now, but an inter frame cannot be decoded before the next keyframe
    assert.are.equal(0, send(S, video(360, "inter")))
    assert.are.equal(1, send(S, video(400, "key")))
    assert.are.equal("ok", reader:queue().state)
    assert.are.equal(1, send(S, video(440, "inter")))
    assert.are.equal(dropped + 1, reader:queue().dropped)
    H.kill(rp, 1)
  end)

  it("bounds the media time queued: audio goes on while only the time bound is passed, the next keyframe is dropped", function()
    S = server{ max_queue_bytes = 0, max_queue_time = 1, max_queue_stall = 0, send_buffer = 4096 }
    local _, stalled = player(S, 0)
    local reached = {}
    for i = 0, 60 do reached[i] = send(S, video(40 * i, i == 0 and "key" or "inter", 1000)) end
    for i = 0, 24 do -- less than 1 s of media in all: never over
      assert.are.equal(1, reached[i], "frame at " .. 40 * i .. " ms")
    end
    assert.are.equal(0, reached[60])
    local q = stalled:queue()
    assert.are.equal("drop_inter", q.state)
    assert.is_true(q.time > 1, "time " .. q.time)
    assert.are.equal(1, send(S, audio(2400)))
    assert.are.equal(0, send(S, video(2440, "key", 1000)))
    assert.are.equal("drop_gop", stalled:queue().state)
  end)

  it("takes a jump in the publisher's timestamps for a jump, not for a player 4.6 hours behind", function()
    S = server{ max_queue_bytes = 0, max_queue_time = 1, max_queue_stall = 0, send_buffer = 4096 }
    local _, stalled = player(S, 0)
    -- a few frames the stalled player keeps unsent, then the publisher's
    -- clock leaps by 0xFFFFFF ms (as a 24-bit wrap looks to a player)
    for i = 0, 15 do assert.are.equal(1, send(S, video(40 * i, i == 0 and "key" or "inter", 20000))) end
    assert.is_true(stalled:queue().bytes > 100000, "frames wait unsent")
    for i = 0, 3 do
      assert.are.equal(1, send(S, video(0xFFFFFF + 40 * i, "inter", 1000)), "frame " .. i .. " after the jump")
    end
    local q = stalled:queue()
    assert.are.equal("ok", q.state)
    assert.is_true(q.time < 1, "time " .. q.time)
  end)

  it("tells frames from decoder configuration in enhanced RTMP and legacy HEVC too", function()
    S = server{ max_queue_bytes = 16 * 1024, max_queue_time = 0, max_queue_stall = 0, send_buffer = 4096 }
    local _, stalled = player(S, 0)
    for i = 0, 5 do send(S, video(40 * i, i == 0 and "key" or "inter")) end
    send(S, audio(240))
    assert.are.equal("drop_gop", stalled:queue().state)
    local function msg(t, bytes) return rtmp.message({ type = t, timestamp = 280 }, bytes .. string.rep("x", 100)) end
    local kept = {
      msg(9, "\x90hvc1"),                 -- enhanced video: key, SequenceStart
      msg(9, "\x92hvc1"),                 -- SequenceEnd
      msg(9, "\x94hvc1"),                 -- Metadata
      msg(9, "\x96"),                     -- Multitrack
      msg(9, "\x57\x01"),                 -- video info/command frame (legacy AVC)
      msg(9, "\x1c\x00\0\0\0"),          -- legacy HEVC (codec 12) sequence header
      msg(8, "\x90Opus"),                 -- enhanced audio: SequenceStart
      msg(8, "\xaf\x00"),                 -- AAC sequence header
      msg(9, "\x97\2\0\0\1\x00hvc1"),     -- ModEx TimestampOffsetNano, then SequenceStart
      msg(9, "\x96\x10avc1\0\0\0\x64"),   -- Multitrack ManyTracks SequenceStart (one track: the 100 x)
      msg(8, "\x95\x04Opus\0\1\0"),        -- Multitrack OneTrack MultichannelConfig
      msg(9, "\x98avc1"),                 -- malformed: reserved packet type 8
    }
    for i, m in ipairs(kept) do assert.are.equal(1, send(S, m), "kept " .. i) end
    local dropped = {
      msg(9, "\x91hvc1"),                 -- enhanced: key, CodedFrames
      msg(9, "\xa3hvc1"),                 -- enhanced: inter, CodedFramesX
      msg(9, "\x1c\x01\0\0\0"),          -- legacy HEVC keyframe
      msg(8, "\x91Opus"),                 -- enhanced audio: CodedFrames
      msg(8, "\x2f"),                     -- MP3
      msg(9, "\x97\2\0\0\1\x01hvc1\0\0\0"), -- ModEx TimestampOffsetNano, then key CodedFrames
      msg(9, "\xa6\x13avc1\0\0\0\x64"),   -- Multitrack ManyTracks inter CodedFramesX
      msg(8, "\x95\x01Opus\0"),           -- Multitrack OneTrack audio CodedFrames
    }
    local before = stalled:queue().dropped
    for i, m in ipairs(dropped) do assert.are.equal(0, send(S, m), "dropped " .. i) end
    assert.are.equal(before + #dropped, stalled:queue().dropped)
  end)
end)

---------------------------------------------------------------------------
-- Part 2: 100 players against the live server, one stalls
---------------------------------------------------------------------------

-- An 8 s stream of about 4 Mbit/s (noise keeps x264 from compressing it
-- away), 25 fps, 1 s GOP, AAC; made once per build directory.
local function fixture()
  local path = "build/test-tmp/slow-640x360-25fps-g25-8s.flv"
  H.mkdir("build/test-tmp")
  if not H.file_size(path) then
    local tmp = path .. ".tmp" .. math.random(1e6)
    local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 " ..
      "-f lavfi -i sine=frequency=440:sample_rate=44100 -t 8 -vf noise=alls=30:allf=t " ..
      "-c:v libx264 -preset ultrafast -g 25 -keyint_min 25 -sc_threshold 0 -b:v 4M -maxrate 4M " ..
      "-bufsize 1M -pix_fmt yuv420p -c:a aac -b:a 64k -f flv %s && mv %s %s", tmp, tmp, path), 120)
    assert(rc == 0, "ffmpeg could not make the fixture: " .. out)
  end
  return path
end

local rss_kb = H.rss_kb

local BOUND = { bytes = 256 * 1024, time = 1, stall = 3, send_buffer = 65536 }
local RSS_LIMIT_KB = 2048 -- "a few MiB" for the issue's scenario, scaled down

-- Start the live server with `bounds` (bytes 0 and time 0: no policy), the
-- stalled player, `counting` luartmp players, one ffmpeg player; publish
-- the fixture with ffmpeg; sample the server's RSS from just before the
-- publisher starts until it is done.  Returns what the test checks.
local function scenario(bounds, counting)
  local flv = fixture()
  local srv = H.luartmp_start{ script = "spec/interop/slow_server.lua", log_level = "info",
    args = { tostring(bounds.bytes), tostring(bounds.time), tostring(bounds.stall), tostring(bounds.send_buffer) } }
  local r = { srv = srv }
  if counting > 0 then
    r.players = H.spawn(fmt("%s spec/interop/slow_players.lua %s s %d %s", H.shquote(H.luartmp),
      srv.url("live"), counting, flv), { name = "players" })
  end
  r.out = H.tmpname("slow-ffmpeg.flv")
  r.ffmpeg = H.ffmpeg_play(srv.url("live/s"), r.out, 6)
  r.stall = stall_player(srv.port, 0)
  r.port = tonumber(H.wait_until(function() return H.output(r.stall):match("stalled after") and H.output(r.stall):match("port=(%d+)") end, 20))
  assert(r.port, "stalled player: " .. H.output(r.stall))
  assert(H.wait_until(function() return srv.count("play", "s") == counting + 2 end, 20),
    "players did not all play: " .. srv.count("play", "s"))
  if r.players then
    assert(H.wait_until(function() return H.output(r.players):find("ready " .. counting, 1, true) end, 20), H.output(r.players))
  end
  r.rss0 = rss_kb(srv.proc.pid)
  r.rss_max = r.rss0
  local pub = H.ffmpeg_publish(srv.url("live/s"), flv)
  repeat
    H.sleep(0.1)
    r.rss_max = math.max(r.rss_max, rss_kb(srv.proc.pid) or 0)
  until H.exited(pub) or H.now() - pub.started > 30
  assert.are.equal(0, H.exited(pub), H.output(pub))
  r.stalled_peer = "peer=127.0.0.1:" .. r.port
  return r
end

describe("slow readers: 100 players and one that stops reading (live.lua)", function()
  after_each(function() H.cleanup() end)

  it("drops and then disconnects the stalled player, the other 99 get every frame, server memory stays bounded", function()
    local r = scenario(BOUND, 98)
    -- the counting players: every audio and video message, in order
    assert.truthy(H.wait_exit(r.players, 20), "the counting players did not finish")
    local text = H.output(r.players)
    local expected = text:match("expected (video=%d+ audio=%d+ digest=%x+)")
    assert.truthy(expected, text)
    local n = 0
    for i, got in text:gmatch("player (%d+) ([^\n]*)") do
      assert.are.equal(expected, got, "player " .. i)
      n = n + 1
    end
    assert.are.equal(98, n, text)
    -- the ffmpeg player decoded every frame of the file
    assert.truthy(H.wait_exit(r.ffmpeg, 15), "ffmpeg player did not finish")
    local want, got = assert(H.probe(fixture())), assert(H.probe(r.out))
    assert.are.equal(want.video.frames, got.video.frames)
    assert.are.equal(want.audio.frames, got.audio.frames)
    -- the server: drop lines and the disconnect for the stalled player only
    local log = r.srv.log()
    local mine, others = {}, {}
    for line in log:gmatch("[^\n]+") do
      if line:find("slow reader", 1, true) then
        if line:find(r.stalled_peer, 1, true) then mine[#mine + 1] = line else others[#others + 1] = line end
      end
    end
    assert.are.same({}, others)
    assert.truthy(log:match("warn conn=%d+ " .. r.stalled_peer:gsub("%.", "%%.") .. " slow reader: queue %d+ bytes, [%d.]+ s of media %(bounds 262144 bytes, 1%.00 s%): dropping"), log)
    local close = log:match(r.stalled_peer:gsub("%.", "%%.") .. " close: (slow reader: over the queue bounds for 3%.%d s[^\n]*)")
    assert.truthy(close, log)
    local qbytes = assert(tonumber(close:match("queue (%d+) bytes")))
    local dropped_bytes = assert(tonumber(close:match("dropped %d+ messages, (%d+) bytes")))
    -- the queue passed the bound by at most the message that crossed it
    local largest = 0
    local fr = assert(rtmp.flv.open(fixture()))
    for m in function() return fr:read() end do largest = math.max(largest, m.length) end
    fr:close()
    assert.is_true(qbytes <= BOUND.bytes + largest + 64, close .. "; largest frame " .. largest)
    -- the stalled client finds the connection closed once it reads again
    resume(r.stall)
    assert.truthy(H.wait_until(function() return H.output(r.stall):find("eof after", 1, true) end, 10), H.output(r.stall))
    -- memory: bounded, though more was dropped than the limit allows
    local growth = r.rss_max - r.rss0
    print(fmt("\nslow_spec: 100 players, RSS %d KB before publishing, peak %d KB (+%d KB); stalled player: queue %d bytes at the close, %d bytes dropped; each counting player: %s\n%s",
      r.rss0, r.rss_max, growth, qbytes, dropped_bytes, expected, table.concat(mine, "\n")))
    -- (ASan's quarantine keeps freed memory: RSS says nothing under it)
    assert.is_true(H.asan or growth <= RSS_LIMIT_KB, "server RSS grew by " .. growth .. " KB")
    assert.is_true(dropped_bytes > 2 * BOUND.bytes, "dropped " .. dropped_bytes)
    r.srv.stop()
  end)

  it("without the policy the same stall makes the server hold the stream (the memory assertion can fail)", function()
    local r = scenario({ bytes = 0, time = 0, stall = 0, send_buffer = BOUND.send_buffer }, 0)
    local growth = r.rss_max - r.rss0
    local log = r.srv.log()
    print(fmt("\nslow_spec: no policy, RSS %d KB before publishing, peak %d KB (+%d KB)", r.rss0, r.rss_max, growth))
    assert.falsy(log:find("slow reader", 1, true), log)
    assert.is_true(H.asan or growth > RSS_LIMIT_KB, "server RSS grew by " .. growth .. " KB only")
    r.srv.stop()
  end)
end)
