-- Bounded memory and deadlines (docs/LIMITS.md), against a live luartmp
-- server:
--   - 1,000 peers that each declare a 16 MiB message, send 100 bytes of it
--     and stall cost what docs/LIMITS.md says (the server's own accounting,
--     conn.memory and conn.buffered, and its RSS), while an ffmpeg pair
--     streams the fixture through the same server, every frame arriving;
--   - conn.buffered and conn.memory follow a partial message's bytes, in
--     process;
--   - the handshake, connect and idle deadlines are absolute: peers that
--     trickle bytes are closed on time, with the reason in the log; a
--     player that only receives media is not cut by the idle deadline;
--   - max_per_address refuses connections past the cap, logging the address,
--     and counts a closed connection's socket while it lingers;
--   - out of descriptors (prlimit), the server ends the oldest lingering
--     sockets to make room, or stops accepting for a while (one warning,
--     no spinning) until a connection ends; ffmpeg publishes afterwards.
--
-- The hostile peers are passthrough connections of our own client (the
-- in-process rtmp module, or spec/badinput/limits_peers.lua inside
-- luartmp) that speak RTMP by hand.

local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"
local F = H.FIXTURE

local fmt, pack = string.format, string.pack

-- What docs/LIMITS.md documents (x86-64, glibc).
local FIXED = 2560          -- a connection after its handshake, no partial message, nothing queued
local MIN_BUF = 256         -- a partial message's first buffer
local RSS_PER_CONN = 8192   -- RSS per connection beyond the bytes it sent (C state, handshake, Lua, malloc)

-- The last "memory ..." report of spec/badinput/limits_server.lua, as a table.
local function report(srv)
  local last
  for line in srv.log():gmatch("[^\n]*memory conns=[^\n]*") do last = line end
  if not last then return nil end
  local r = {}
  for k, v in last:gmatch("([%w_]+)=(%d+)") do r[k] = tonumber(v) end
  return r
end

-- Resident and data-segment sizes of a process (bytes). VmData counts
-- what was allocated even where it was never touched, so a buffer sized
-- by a declared length shows there even when RSS would not see it.
local function vm_bytes(pid)
  local s = H.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+) kB")) * 1024, tonumber(s:match("VmData:%s*(%d+) kB")) * 1024
end

-- Close lines of the server log: { id, peer, reason }.
local function closes(srv)
  local list = {}
  for line in srv.log():gmatch("[^\n]+") do
    local id, peer, reason = line:match(" conn=(%d+) peer=(%S+) close: (.-) %(in %d+ bytes")
    if id then list[#list + 1] = { id = id, peer = peer, reason = reason, line = line } end
  end
  return list
end

-- Raw RTMP pieces, built here independently of the code under test.
local function c0c1()
  local t = { "\3", pack(">I4I4", 0, 0) }
  for i = 1, 1528 // 8 do t[#t + 1] = pack("<I8", (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) end
  return table.concat(t)
end
local function chunk0(csid, length, mtype, stream, body)
  return pack(">B I3 I3 B <I4", csid, 0, length, mtype, stream) .. (body or "")
end
local CONNECT = (function()
  local body = pack(">B s2", 2, "connect") .. pack(">B d", 0, 1)
    .. "\3" .. pack(">s2 B s2", "app", 2, "live") .. "\0\0\9"
  return chunk0(3, #body, 20, 0, body)
end)()
local WINDOW = chunk0(2, 4, 5, 0, pack(">I4", 2500000)) -- Window Ack Size: a whole message

-- An in-process passthrough peer of 127.0.0.1:port. Fields: conn, t0
-- (connect time), hs_at (handshake done, opts.handshake), closed_at,
-- reason, got (bytes received).
local function peer(port, opts)
  opts = opts or {}
  local p = { t0 = rtmp.now(), got = "" }
  local conn, err = rtmp.connect("rtmp://127.0.0.1:" .. port .. "/live", {
    passthrough = true, idle_timeout = 0,
    on_data = function(conn, bytes)
      p.got = p.got .. bytes
      if opts.handshake and not p.hs_at and #p.got >= 1537 then
        conn:raw(p.got:sub(2, 1537)) -- C2 = S1
        p.hs_at = rtmp.now()
        if opts.after_handshake then opts.after_handshake(p) end
      end
    end,
    on_close = function(_, reason) p.closed_at, p.reason = rtmp.now(), reason end,
  })
  assert(conn, err)
  p.conn = conn
  if opts.handshake then conn:raw(c0c1()) end
  return p
end

-- Call fn every `every` seconds while p is open.
local function every(p, seconds, fn)
  local t
  t = rtmp.timer(seconds, function()
    if p.closed_at or p.conn.closed then t:stop() return end
    fn()
  end, seconds)
  return t
end

describe("memory held for stalled peers", function()
  teardown(function() H.cleanup() end)

  it("1,000 peers declaring 16 MiB each cost what they sent plus a constant, and the pair streams on", function()
    -- max_message 16 MiB: the declarations are accepted (with the default
    -- 8 MiB they would be refused at the header), so each reader holds a
    -- partial message.
    local srv = H.luartmp_start{ script = "spec/badinput/limits_server.lua",
      args = { "max_message=16777216" }, log_level = "info" }
    assert.are.equal("luartmp", (H.read_file("/proc/" .. srv.proc.pid .. "/comm") or ""):match("%S+"),
      "the spawned pid is not the server itself")
    local player_file = H.tmpname("limits-player.flv")
    local player = H.ffmpeg_play(srv.url("live/lim"), player_file, 4)
    assert(H.wait_until(function() return srv.count("play", "lim") >= 1 end, 10), srv.log())
    local pub = H.ffmpeg_publish(srv.url("live/lim"))
    assert(H.wait_until(function() return srv.count("publish", "lim") >= 1 end, 10), srv.log())
    H.sleep(1) -- the GOP cache and the pair's buffers settle
    local before, before_data = vm_bytes(srv.proc.pid)
    local base = assert(report(srv), "no memory report:\n" .. srv.log())

    local peers = H.spawn(fmt("%s spec/badinput/limits_peers.lua %d 1000", H.shquote(H.luartmp), srv.port),
      { name = "limits-peers" })
    local sent = H.wait_until(function()
      return tonumber((H.read_file(peers.out) or ""):match("stalled 1000 (%d+)"))
    end, 20)
    assert(sent, "the peers did not all stall:\n" .. H.output(peers))
    local r = H.wait_until(function()
      local r = report(srv)
      return r and r.idle == 1000 and r.idle_in >= 1000 * sent and r
    end, 10)
    assert(r, "the server does not hold the 1000 stalled connections; last report: "
      .. tostring((srv.log():match(".*(memory conns=[^\n]*)"))))
    local after, after_data = vm_bytes(srv.proc.pid)

    -- The server's accounting: each holds the 100 bytes of its partial
    -- message in a buffer of max(256, 2 x 100), and the rest is the fixed
    -- per-connection state.
    assert(r.idle_buffered >= 1000 * 100 and r.idle_buffered <= 1000 * math.max(MIN_BUF, 2 * 100),
      fmt("partial messages hold %d bytes for 1000 peers", r.idle_buffered))
    assert(r.idle_max <= FIXED + math.max(MIN_BUF, 2 * 100),
      fmt("one stalled connection holds %d bytes (documented: at most %d)", r.idle_max, FIXED + MIN_BUF))
    -- The process: RSS per stalled peer within what it sent plus the
    -- documented constant.
    local per_peer, data_per_peer = (after - before) / 1000, (after_data - before_data) / 1000
    print(fmt("\n  limits: %d peers, %d bytes sent each; per peer: RSS %+.0f, VmData %+.0f, Lua heap %+d bytes; "
      .. "conn.memory %d max, %.0f mean", 1000, sent, per_peer, data_per_peer, (r.lua - base.lua) // 1000,
      r.idle_max, r.idle_memory / r.idle))
    -- (Under ASan the process's sizes are the sanitizer's: shadow memory, quarantine.)
    assert(H.asan or per_peer <= sent + RSS_PER_CONN,
      fmt("RSS grew %.0f bytes per stalled peer, over %d sent + %d", per_peer, sent, RSS_PER_CONN))
    assert(H.asan or data_per_peer <= sent + RSS_PER_CONN,
      fmt("VmData grew %.0f bytes per stalled peer, over %d sent + %d", data_per_peer, sent, RSS_PER_CONN))
    assert.is_falsy((H.read_file(peers.out) or ""):find("closed", 1, true), "the server closed stalled peers early")

    -- Gone with the peers.
    H.kill(peers)
    assert(H.wait_until(function() local x = report(srv) return x and x.idle == 0 and x end, 10),
      "the stalled connections were not all closed")

    -- Meanwhile the pair streamed every frame.
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher:\n" .. H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), "player:\n" .. H.output(player))
    local info = assert(H.probe(player_file))
    assert.are.equal(F.video_codec, info.video and info.video.codec)
    assert.are.equal(F.audio_codec, info.audio and info.audio.codec)
    assert.are.equal(F.frames, info.video.frames, "video frames received by the player")
    -- Every connection ended by the peer's doing, none by a limit. ffmpeg
    -- ends a publication with FCUnpublish and deleteStream and closes at
    -- once, unread, the server's onFCUnpublish reply: its kernel answers
    -- with a reset, no FIN (tshark shows it), and depending on when the
    -- server reads (a loaded machine makes it likelier) the publisher's
    -- end is logged as that reset.
    local publisher = srv.log():match(" conn=(%d+) peer=%S+ publish live/lim")
    for _, c in ipairs(closes(srv)) do
      if c.id == publisher and c.reason == "read: Connection reset by peer" then
        c.reason = "peer closed the connection"
      end
      assert.are.equal("peer closed the connection", c.reason, c.line)
    end
    local rc, log = srv.stop()
    assert.are.equal(0, rc, log)
  end)
end)

describe("conn.memory and conn.buffered", function()
  it("follow a partial message's bytes and drop the handshake state when it is done", function()
    local sconn, got = nil, {}
    local srv = assert(rtmp.listen{ listen = "127.0.0.1:0", idle_timeout = 0,
      on_open = function(conn) sconn = conn end,
      on_message = function(_, msg) got[#got + 1] = msg end })
    local p = peer(srv.port)
    p.conn:raw(c0c1())
    assert(C.wait_until(function() return #p.got >= 1 + 2 * 1536 end, 5), "no S0 S1 S2")
    assert.is_false(sconn.ready)
    assert(sconn.memory >= 3 * 1536, fmt("handshake state not counted: %d", sconn.memory))
    p.conn:raw(p.got:sub(2, 1537))
    assert(C.wait_until(function() return sconn.ready end, 5))
    assert(sconn.memory < 3 * 1536, fmt("handshake state still counted: %d", sconn.memory))
    assert.are.equal(0, sconn.buffered)

    -- Set Chunk Size 1 MiB (the reader's chunk-stream table appears), then
    -- a 10000-byte video message in ten pieces.
    p.conn:raw(chunk0(2, 4, 1, 0, pack(">I4", 1 << 20)))
    assert(C.wait_until(function() return #got == 1 end, 5))
    local fixed = sconn.memory
    assert(fixed <= FIXED, fmt("a connection after its handshake holds %d bytes", fixed))
    local body = string.rep("0123456789", 1000)
    local base_in = sconn.bytes_in
    p.conn:raw(chunk0(4, #body, 9, 1))
    for i = 1, 10 do
      p.conn:raw(body:sub(1000 * (i - 1) + 1, 1000 * i))
      local want_in = base_in + 12 + 1000 * i
      assert(C.wait_until(function() return sconn.bytes_in == want_in end, 5))
      if i < 10 then
        local received = 1000 * i
        local b, m = sconn.buffered, sconn.memory
        assert(b >= received and b <= math.max(MIN_BUF, 2 * received),
          fmt("%d payload bytes received, %d buffered", received, b))
        assert.are.equal(fixed + b, m, fmt("memory with %d buffered (fixed %d)", b, fixed))
      end
    end
    assert(C.wait_until(function() return #got == 2 end, 5))
    assert.are.equal(body, got[2].payload)
    assert.are.equal(0, sconn.buffered)
    -- The delivered message's buffer is kept for the next one (at most 64 KiB).
    assert(sconn.memory - fixed >= #body and sconn.memory - fixed <= 65536,
      fmt("memory %d after the message (fixed %d)", sconn.memory, fixed))
    p.conn:close()
    srv:close()
    C.wait_until(function() return sconn.closed and p.closed_at end, 2)
  end)
end)

describe("max_amf_message", function()
  it("is a setting of rtmp.listen", function()
    local reasons = {}
    local function try(settings)
      settings.listen, settings.idle_timeout = "127.0.0.1:0", 0
      settings.on_close = function(_, reason) reasons[#reasons + 1] = reason end
      local srv = assert(rtmp.listen(settings))
      local p = peer(srv.port, { handshake = true, after_handshake = function(p)
        p.conn:raw(chunk0(3, 2 << 20, 20, 0, pack(">B s2", 2, "x")))
      end })
      C.wait_until(function() return p.closed_at end, 0.5)
      local refused = p.closed_at ~= nil
      p.conn:close()
      srv:close()
      C.wait_until(function() return p.closed_at and #reasons > 0 end, 2)
      return refused, table.remove(reasons)
    end
    local refused, reason = try{}
    assert.is_true(refused)
    assert.are.equal("message longer than the limit", reason)
    refused, reason = try{ max_amf_message = 3 << 20 }
    assert.is_false(refused, reason)
  end)
end)

describe("deadlines against scripts/live.lua", function()
  local srv, pub, player, player_file

  setup(function()
    srv = H.luartmp_start{ handshake_timeout = 3, idle_timeout = 3, extra = { "--connect-timeout", "2" } }
    -- A pair streams the fixture meanwhile: a player only receives media
    -- (and ffmpeg sends no Acknowledgement at this bitrate), and must not
    -- be cut by the 3 s idle deadline.
    player_file = H.tmpname("deadline-player.flv")
    player = H.ffmpeg_play(srv.url("live/dl"), player_file, 4)
    assert(H.wait_until(function() return srv.count("play", "dl") >= 1 end, 10), srv.log())
    pub = H.ffmpeg_publish(srv.url("live/dl"))
    assert(H.wait_until(function() return srv.count("publish", "dl") >= 1 end, 10), srv.log())
  end)
  teardown(function() H.cleanup() end)

  -- The close lines with `reason` in the server log.
  local function closed_for(reason)
    local n = 0
    for _, c in ipairs(closes(srv)) do if c.reason == reason then n = n + 1 end end
    return n
  end

  it("closes a handshake trickled one byte a second at the handshake deadline", function()
    local hello, n = c0c1(), 0
    local p = peer(srv.port)
    every(p, 1, function() n = n + 1 p.conn:raw(hello:sub(n, n)) end)
    assert(C.wait_until(function() return p.closed_at end, 8), "still open after 8 s")
    local t = p.closed_at - p.t0
    assert(t > 2.5 and t < 4.5, fmt("closed after %.2f s, deadline 3 s", t))
    assert(n >= 2, "the peer did not trickle")
    assert(H.wait_until(function() return closed_for("handshake timeout") == 1 end, 2), srv.log())
  end)

  it("closes a connection that sends whole messages but no connect at the connect deadline", function()
    local n = 0
    local p = peer(srv.port, { handshake = true, after_handshake = function(p)
      every(p, 0.5, function() n = n + 1 p.conn:raw(WINDOW) end)
    end })
    assert(C.wait_until(function() return p.closed_at end, 8), "still open after 8 s")
    local t = p.closed_at - p.hs_at
    assert(t > 1.5 and t < 3.2, fmt("closed %.2f s after the handshake, deadline 2 s", t))
    assert(n >= 2, "the peer sent no message")
    assert(H.wait_until(function() return closed_for("connect timeout") == 1 end, 2), srv.log())
  end)

  it("closes a connection trickling a message one byte at a time at the idle deadline", function()
    local n = 0
    local p = peer(srv.port, { handshake = true, after_handshake = function(p)
      p.conn:raw(CONNECT)
      p.conn:raw(chunk0(4, 1 << 20, 9, 1)) -- a 1 MiB video message...
      every(p, 0.5, function() n = n + 1 p.conn:raw("v") end) -- ...two bytes a second
    end })
    assert(C.wait_until(function() return p.closed_at end, 8), "still open after 8 s")
    assert.is_truthy(p.got:find("NetConnection.Connect.Success", 1, true), "connect was not answered")
    local t = p.closed_at - p.hs_at
    assert(t > 2.5 and t < 4.5, fmt("closed %.2f s after connect, idle deadline 3 s", t))
    assert(n >= 4, "the peer did not trickle")
    assert(H.wait_until(function() return closed_for("idle timeout") == 1 end, 2), srv.log())
  end)

  it("refuses a command declared longer than max_amf_message (1 MiB) at its header, not a video message", function()
    local video = peer(srv.port, { handshake = true, after_handshake = function(p)
      p.conn:raw(CONNECT)
      p.conn:raw(chunk0(4, 2 << 20, 9, 1, string.rep("v", 100)))
    end })
    local cmd = peer(srv.port, { handshake = true, after_handshake = function(p)
      p.conn:raw(CONNECT)
      p.conn:raw(chunk0(3, 2 << 20, 20, 0, pack(">B s2", 2, "x") .. string.rep("c", 90)))
    end })
    assert(C.wait_until(function() return cmd.closed_at end, 3), "the 2 MiB command was not refused")
    assert(cmd.closed_at - cmd.hs_at < 1.5, fmt("refused only after %.2f s", cmd.closed_at - cmd.hs_at))
    assert.is_truthy(cmd.got:find("NetConnection.Connect.Success", 1, true), "connect was not answered")
    assert(H.wait_until(function() return closed_for("message longer than the limit") == 1 end, 2), srv.log())
    assert.is_nil(video.closed_at, "the 2 MiB video message was refused")
    video.conn:close()
    C.wait_until(function() return video.closed_at end, 2)
  end)

  it("meanwhile kept the player that only receives media, every frame arriving", function()
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher:\n" .. H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), "player:\n" .. H.output(player))
    local info = assert(H.probe(player_file))
    assert.are.equal(F.frames, info.video and info.video.frames, "video frames received by the player")
    assert.are.equal(1, closed_for("handshake timeout"))
    assert.are.equal(1, closed_for("connect timeout"))
    assert.are.equal(1, closed_for("idle timeout"))
    local rc, log = srv.stop()
    assert.are.equal(0, rc, log)
  end)
end)

describe("max_per_address", function()
  teardown(function() H.cleanup() end)

  it("refuses connections past the cap at once, logging the address, and accepts again below it", function()
    local srv = H.luartmp_start{ extra = { "--max-per-address", "3" } }
    local ps = {}
    for i = 1, 3 do ps[i] = peer(srv.port) end
    C.wait_until(function() return false end, 0.3)
    local extra = peer(srv.port)
    assert(C.wait_until(function() return extra.closed_at end, 3), "the 4th connection was not closed")
    assert(extra.closed_at - extra.t0 < 1, fmt("closed only after %.2f s", extra.closed_at - extra.t0))
    local refused = srv.log():match("[^\n]* refused (127%.0%.0%.1:%d+): 3 connections open from 127%.0%.0%.1 "
      .. "%(max_per_address 3%)")
    assert(refused, "no refusal line in the log:\n" .. srv.log())
    for i = 1, 3 do assert.is_nil(ps[i].closed_at, "connection " .. i .. " was closed") end

    -- One leaves: the next one is accepted (and stays open).
    ps[1].conn:close()
    assert(C.wait_until(function() return #closes(srv) == 1 end, 3), srv.log())
    local again = peer(srv.port)
    C.wait_until(function() return again.closed_at end, 1)
    assert.is_nil(again.closed_at, "a connection below the cap was closed")
    assert.are.equal(1, H.count_plain(srv.log(), " refused "))
    for _, p in ipairs{ ps[2], ps[3], again } do p.conn:close() end
    C.wait_until(function() return #closes(srv) == 4 end, 3)
    local rc, log = srv.stop()
    assert.are.equal(0, rc, log)
  end)

  it("is a setting of rtmp.listen", function()
    local accepted = 0
    local srv = assert(rtmp.listen{ listen = "127.0.0.1:0", max_per_address = 1,
      on_open = function() accepted = accepted + 1 end })
    local a = peer(srv.port)
    C.wait_until(function() return accepted == 1 end, 2)
    local b = peer(srv.port)
    assert(C.wait_until(function() return b.closed_at end, 2), "the second connection was not refused")
    assert.are.equal(1, accepted)
    assert.is_nil(a.closed_at)
    a.conn:close()
    srv:close()
    C.wait_until(function() return a.closed_at end, 2)
    assert.has_error(function() rtmp.listen{ listen = "127.0.0.1:0", max_per_address = -1 } end)
    assert.has_error(function() rtmp.listen{ listen = "127.0.0.1:0", max_per_address = 1.5 } end)
  end)
end)

-- Peers that never read (so never see the server's close) and never
-- close: their sockets linger on the server after its deadline closes them.
local function deaf_peers(port, n)
  local ps = {}
  for i = 1, n do
    ps[i] = peer(port)
    ps[i].conn:pause_reading(true)
  end
  return ps
end

local function close_all(ps)
  for _, p in ipairs(ps) do p.conn:close() end
  C.wait_until(function()
    for _, p in ipairs(ps) do if not p.closed_at then return false end end
    return true
  end, 5)
end

-- ffmpeg publishes the fixture as fast as it can: its exit status and output.
local function ffmpeg_publishes(srv, name)
  local ff = H.ffmpeg_publish(srv.url("live/" .. name), nil, { fast = true })
  return H.wait_exit(ff, 30), H.output(ff)
end

-- CPU seconds a process has used (user + system).
local function cpu_seconds(pid)
  local stat = assert(H.read_file("/proc/" .. pid .. "/stat"))
  local fields = {}
  for f in stat:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = f end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- utime, stime in clock ticks (USER_HZ 100)
end

describe("lingering sockets", function()
  teardown(function() H.cleanup() end)

  it("count in max_per_address until they end", function()
    local srv = H.luartmp_start{ handshake_timeout = 1, extra = { "--max-per-address", "2" } }
    local ps = deaf_peers(srv.port, 2)
    assert(H.wait_until(function() return #closes(srv) == 2 end, 5), srv.log())
    assert.are.equal(2, H.count_plain(srv.log(), "close: handshake timeout"), srv.log())
    -- closed by the server, both sockets still linger: the address is full
    local third = peer(srv.port)
    assert(C.wait_until(function() return third.closed_at end, 3), "a third connection was accepted")
    assert.is_truthy(srv.log():find("2 connections open from 127.0.0.1 (max_per_address 2)", 1, true), srv.log())
    -- one peer closes: its linger ends, and a real publisher gets in
    ps[1].conn:close()
    assert(C.wait_until(function()
      return H.count_plain(srv.log(), "socket closed (peer closed)") == 1 end, 5), srv.log())
    local rc, out = ffmpeg_publishes(srv, "afterlinger")
    assert.are.equal(0, rc, out .. "\n" .. srv.log())
    assert.are.equal(1, srv.count("publish", "afterlinger"), srv.log())
    assert.are.equal(1, H.count_plain(srv.log(), " refused "), srv.log())
    close_all(ps)
    srv.stop()
  end)
end)

describe("out of descriptors", function()
  teardown(function() H.cleanup() end)

  -- 60 peers against a server allowed 48 descriptors: about 40 fit.
  local LIMIT, PEERS = 48, 60
  -- Under valgrind a connection that accept() takes past the limit is
  -- closed by valgrind itself, which then reports EMFILE: peers are lost
  -- before the server sees them.
  local UNDER_VALGRIND = "valgrind closes what accept() takes past the descriptor limit"

  it("ends the oldest lingering sockets to make room for new connections", function()
    if H.valgrind then return pending(UNDER_VALGRIND) end
    local srv = H.luartmp_start{ env = "prlimit --nofile=" .. LIMIT .. ":" .. LIMIT, handshake_timeout = 1 }
    local ps = deaf_peers(srv.port, PEERS)
    -- every peer is accepted in the end, the late ones in place of lingers
    assert(H.wait_until(function() return #closes(srv) == PEERS end, 15), srv.log())
    local ended = H.count_plain(srv.log(), "socket closed (its descriptor is needed)")
    assert.is_true(ended >= PEERS - LIMIT, srv.log())
    local rc, out = ffmpeg_publishes(srv, "room")
    assert.are.equal(0, rc, out .. "\n" .. srv.log())
    assert.are.equal(1, srv.count("publish", "room"), srv.log())
    assert.is_true(H.count_plain(srv.log(), "socket closed (its descriptor is needed)") > ended, srv.log())
    close_all(ps)
    srv.stop()
  end)

  it("stops accepting without spinning while every descriptor is held, then accepts again", function()
    if H.valgrind then return pending(UNDER_VALGRIND) end
    -- no lingers (--linger 0): open connections hold every descriptor
    -- until their handshake deadline (2 s) closes them
    local srv = H.luartmp_start{ env = "prlimit --nofile=" .. LIMIT .. ":" .. LIMIT, handshake_timeout = 2,
      extra = { "--linger", "0" } }
    local cpu0 = cpu_seconds(srv.proc.pid)
    local ps = deaf_peers(srv.port, PEERS)
    local starved = H.wait_until(function()
      return srv.log():match("warn accept: Too many open files: (%d+) connections open, none lingering")
    end, 5)
    assert(starved, srv.log())
    assert.is_true(tonumber(starved) >= 30 and tonumber(starved) < LIMIT, srv.log())
    H.sleep(1.5) -- starved for most of this
    -- a spinning loop would burn the whole 1.5 s; a paused one next to nothing
    local burnt = cpu_seconds(srv.proc.pid) - cpu0
    assert.is_true(burnt < 0.5, fmt("%.2f CPU seconds while out of descriptors", burnt))
    assert(H.wait_until(function() return #closes(srv) == PEERS end, 15), srv.log())
    assert.is_truthy(srv.log():find("info accept: accepting again after %d+%.%d s without descriptors"), srv.log())
    -- one warning per starved spell, not one per try
    assert.is_true(H.count_plain(srv.log(), "warn accept:") <= 3, srv.log())
    local rc, out = ffmpeg_publishes(srv, "after")
    assert.are.equal(0, rc, out .. "\n" .. srv.log())
    assert.are.equal(1, srv.count("publish", "after"), srv.log())
    close_all(ps)
    srv.stop()
  end)
end)

describe("docs/LIMITS.md examples", function()
  teardown(function() H.cleanup() end)

  -- The Lua example of docs/LIMITS.md that starts with `-- NAME`, written
  -- to a file (edit(text) may adjust it).
  local function example(name, edit)
    local doc = assert(H.read_file("docs/LIMITS.md"))
    local code = doc:match("```lua\n(%-%- " .. name:gsub("%.", "%%.") .. ":.-)```")
    assert(code, "no example " .. name .. " in docs/LIMITS.md")
    local path = H.tmpname(name)
    H.write_file(path, edit and edit(code) or code)
    return path
  end

  it("capped.lua refuses a fifth connection from one address", function()
    local srv = H.luartmp_start{ script = example("capped.lua") }
    local ps = {}
    for i = 1, 4 do ps[i] = peer(srv.port) end
    C.wait_until(function() return false end, 0.3)
    local fifth = peer(srv.port)
    assert(C.wait_until(function() return fifth.closed_at end, 3), "the fifth connection was not refused")
    assert.is_truthy(srv.log():find(" connections open from 127.0.0.1 (max_per_address 4)", 1, true), srv.log())
    for i = 1, 4 do assert.is_nil(ps[i].closed_at) ps[i].conn:close() end
    C.wait_until(function() return #closes(srv) == 4 end, 3)
    srv.stop()
  end)

  it("memwatch.lua logs what the connections hold", function()
    local srv = H.luartmp_start{ script = example("memwatch.lua", function(code)
      return (code:gsub("rtmp%.timer%(10,", "rtmp.timer(0.2,"):gsub("end, 10%)", "end, 0.2)"))
    end) }
    local p = peer(srv.port, { handshake = true, after_handshake = function(p)
      p.conn:raw(CONNECT)
      p.conn:raw(chunk0(4, 1 << 20, 9, 1, string.rep("v", 100)))
    end })
    local line = C.wait_until(function()
      return srv.log():match("info (1 connections hold %d+ bytes %(256 in partial messages%))")
    end, 5)
    assert(line, srv.log())
    local bytes = tonumber(line:match("hold (%d+)"))
    assert(bytes > 256 and bytes <= FIXED + 256, line)
    p.conn:close()
    C.wait_until(function() return p.closed_at end, 2)
    srv.stop()
  end)
end)
