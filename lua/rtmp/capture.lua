-- rtmp.capture: the RTMP connections in a pcap or pcapng file.
--
--   local capture = require "rtmp.capture"
--   local cap = assert(capture.open("session.pcapng"))
--   for _, conn in ipairs(cap.conns) do
--     print(conn.id, conn.client, conn.server, conn.rtmp)
--     for _, e in ipairs(capture.messages(conn)) do ... end
--   end
--
-- Every TCP connection in the file, on any port, is put back together
-- per direction (rtmp.pcap.flow: segments in sequence order,
-- retransmissions and overlaps once, holes skipped and counted in
-- conn.gaps).  The client is the side that sent the SYN, or, when the
-- capture began after it, the side that sent the first byte.  A connection looks like RTMP (conn.rtmp) when the client's
-- first byte is 3 or 6 and the server answered.
local rtmp = require "rtmp"
local tap = require "rtmp.tap"

local M = {}

local function key(a, ap, b, bp)
  return a .. "|" .. ap .. "|" .. b .. "|" .. bp
end

local function endpoint(addr, port)
  if addr:find(":", 1, true) then return "[" .. addr .. "]:" .. port end
  return addr .. ":" .. port
end

-- A connection from its first packet.  Directions are "a" (the first
-- packet's sender) and "b" until the client is known.
local function new_conn(cap, pkt)
  local c = {
    id = #cap.conns + 1,
    a = endpoint(pkt.src, pkt.sport), b = endpoint(pkt.dst, pkt.dport),
    start = pkt.time, finish = pkt.time,
    flows = { a = rtmp.pcap.flow(), b = rtmp.pcap.flow() },
    raw = {},                 -- { t, side = "a"|"b", data }
    syn_from = nil,           -- "a" or "b": the side that sent a SYN without ACK
    closed = false,
    packets = 0,
  }
  cap.conns[#cap.conns + 1] = c
  return c
end

local function add_bytes(c, side, when, data)
  if #data > 0 then
    c.raw[#c.raw + 1] = { t = when - c.start, side = side, data = data }
  end
end

-- Which side is the client, once everything is read.
local function settle(c)
  -- the SYN's sender, else (the capture began later) whoever sent the first byte
  local client = c.syn_from or (c.raw[1] and c.raw[1].side) or "a"
  local server = client == "a" and "b" or "a"
  c.client, c.server = c[client], c[server]
  c.chunks = {}
  local sent = { c2s = 0, s2c = 0 }
  local firstbyte = {}
  for _, r in ipairs(c.raw) do
    local dir = r.side == client and "c2s" or "s2c"
    c.chunks[#c.chunks + 1] = { t = r.t, dir = dir, data = r.data }
    sent[dir] = sent[dir] + #r.data
    firstbyte[dir] = firstbyte[dir] or r.data:byte(1)
  end
  c.bytes = sent
  c.gaps = c.flows.a:gaps() + c.flows.b:gaps()
  c.rtmp = (firstbyte.c2s == 3 or firstbyte.c2s == 6) and sent.c2s >= 1537 and sent.s2c > 0
  -- no SYN and no C0: the capture began after the connection did
  c.midstream = not c.syn_from and firstbyte.c2s ~= 3 and firstbyte.c2s ~= 6 and sent.c2s > 0
  c.flows, c.raw, c.a, c.b, c.syn_from = nil, nil, nil, nil, nil
end

-- capture.open(path) -> cap | nil, err.  cap.conns: the TCP connections
-- in order of their first packet (see the module comment for fields).
function M.open(path)
  local pc, err = rtmp.pcap.open(path)
  if not pc then return nil, err end
  local cap = { path = path, conns = {} }
  local live = {}   -- key -> conn, for both orders of the endpoints
  local n = 0
  while true do
    local pkt, perr = pc:next()
    if not pkt then
      if perr then pc:close() return nil, perr end
      break
    end
    n = n + 1
    local k = key(pkt.src, pkt.sport, pkt.dst, pkt.dport)
    local c = live[k]
    -- a fresh SYN on a finished connection's endpoints starts a new one
    if c and pkt.syn and not pkt.ack_flag and c.closed then c = nil end
    if not c then
      c = new_conn(cap, pkt)
      live[k] = c
      live[key(pkt.dst, pkt.dport, pkt.src, pkt.sport)] = c
    end
    local side = (endpoint(pkt.src, pkt.sport) == c.a) and "a" or "b"
    if pkt.syn and not pkt.ack_flag then c.syn_from = c.syn_from or side end
    if pkt.fin or pkt.rst then c.closed = true end
    c.finish = pkt.time
    c.packets = c.packets + 1
    add_bytes(c, side, pkt.time, c.flows[side]:add(pkt.seq, pkt.syn, pkt.payload))
  end
  cap.skipped = pc:skipped()   -- frames cut short by the capture's snap length
  pc:close()
  for _, c in ipairs(cap.conns) do
    for _, side in ipairs({ "a", "b" }) do
      add_bytes(c, side, c.finish, c.flows[side]:flush())
    end
    settle(c)
  end
  cap.packets = n
  return cap
end

-- capture.messages(conn) -> the messages of both directions in the order
-- they were completed: { dir, t, msg, chunk_size, index }.  list.handshake
-- holds each direction's handshake kind; list.error why decoding stopped.
function M.messages(conn)
  local t = tap.new()
  local list = {}
  for _, ch in ipairs(conn.chunks) do
    for _, e in ipairs(t:feed(ch.dir, ch.data, ch.t)) do
      list[#list + 1] = e
    end
  end
  list.handshake = t.handshake
  list.error = t.error
  return list
end

-- The RTMP connections of cap, or the one numbered n.
function M.rtmp_conns(cap)
  local out = {}
  for _, c in ipairs(cap.conns) do
    if c.rtmp then out[#out + 1] = c end
  end
  return out
end

return M
