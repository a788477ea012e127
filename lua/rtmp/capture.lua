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
-- capture began after it, the side that sent the first byte.  A
-- connection looks like RTMP (conn.rtmp) when the client's first byte is
-- 3 or 6 (and does not read as a chunk header) and the server answered,
-- or, when its handshake is not in the capture (conn.handshake_missing),
-- when either direction holds chunk data that decodes (rtmp.tap.probe).
--
-- A connection whose client begins with a TLS record (RTMPS: 0x16 0x03
-- ..., where RTMP begins with its version byte 3), or, when the capture
-- began later, whose both directions are runs of TLS records, is TLS
-- (conn.tls, and conn.rtmp is false): conn.tls.client and conn.tls.server
-- are the hellos read from the cleartext handshake (rtmp.pcap.tls: SNI,
-- ALPN, versions offered; the version, cipher suite and group chosen) or
-- the alert sent in their place; conn.tls.midstream is true when the
-- capture holds no hello.  What follows is encrypted: capture.tls_reason
-- says so, with what was negotiated and how to get a capture that
-- decodes, and capture.messages(conn) gives no message and that reason
-- as list.error.
--
-- Other fields of a connection: conn.encap, the tunnels its packets came
-- through ("GTP-U teid=0x1a2b", "GRE key=0x5", "VXLAN vni=42", nested ones
-- joined by " / "; the server's direction in parentheses when it differs;
-- nil when none); conn.closed_by, "client" or "server", the side whose FIN
-- or RST came first (nil: neither was captured) and conn.close_t, its time
-- in seconds after the connection's first packet.
--
-- capture.open_raw(client_file, server_file) reads the two files that
-- Wireshark's "Follow TCP Stream -> Save as Raw" writes (one direction's
-- bytes each, no timing) as a capture of one connection (conn.raw_pair).
local rtmp = require "rtmp"
local tap = require "rtmp.tap"

local fmt = string.format

-- The first four bytes of pcap (both byte orders, micro- and nanosecond)
-- and pcapng files.
local PCAP_MAGIC = { ["\xa1\xb2\xc3\xd4"] = true, ["\xd4\xc3\xb2\xa1"] = true, ["\xa1\xb2\x3c\x4d"] = true,
                     ["\x4d\x3c\xb2\xa1"] = true, ["\x0a\x0d\x0d\x0a"] = true }


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
    closed_side = nil,        -- "a" or "b": whose FIN or RST came first
    encaps = {},              -- side -> the tunnels of its first packet
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

-- The first n bytes (all with n nil) of one direction's chunks.
local function leading(chunks, dir, n)
  local parts, got = {}, 0
  for _, ch in ipairs(chunks) do
    if ch.dir == dir then
      parts[#parts + 1] = ch.data
      got = got + #ch.data
      if n and got >= n then break end
    end
  end
  local s = table.concat(parts)
  return n and s:sub(1, n) or s
end

-- Bytes of each direction the TLS hellos are looked for in.
local TLS_BYTES = 64 * 1024

-- conn.tls from conn.chunks, or nil when the connection is not TLS: the
-- client's first bytes are a hello (or an alert), or the first record of
-- a hello cut short by the end of the capture; else (the capture began
-- after the handshake) both directions are runs of whole TLS records
-- from their first byte, at least two in all.
local function tls_of(c)
  local cb, sb = leading(c.chunks, "c2s", TLS_BYTES), leading(c.chunks, "s2c", TLS_BYTES)
  local ch, cerr = rtmp.pcap.tls(cb)
  local started = ch or (ch == false and cb:byte(1) == 22 and cb:byte(2) == 3)
  if not started then
    if #cb + #sb == 0 then return nil end
    local cw, sw = rtmp.pcap.tls_walk(cb), rtmp.pcap.tls_walk(sb)
    if cw.bytes < #cb or sw.bytes < #sb or cw.records + sw.records < 2 then return nil end
    return { midstream = true, records = { c2s = cw, s2c = sw } }
  end
  local t = { client = ch or nil }
  if not ch then t.client_error = cerr or "the capture ends inside the client's hello" end
  local sh, serr = rtmp.pcap.tls(sb)
  if sh then t.server = sh
  elseif #sb == 0 then t.server_error = "the server sent nothing"
  elseif sh == false then t.server_error = "the capture ends inside the server's hello"
  else t.server_error = serr end
  return t
end

-- conn.rtmp, conn.handshake_missing (or conn.tls) from conn.chunks.
local function recognise(c)
  -- a client too short to tell (under 16 bytes) counts as no handshake
  local hs = tap.has_handshake(leading(c.chunks, "c2s", 16))
  c.tls = not hs and tls_of(c) or nil
  if c.tls then
    c.rtmp, c.handshake_missing = false, false
  elseif hs then
    c.rtmp, c.handshake_missing = c.bytes.c2s >= 1537 and c.bytes.s2c > 0, false
  else
    -- no handshake: RTMP when either direction holds chunk data that decodes
    local found = tap.probe(leading(c.chunks, "c2s", tap.PROBE_BYTES))
      or tap.probe(leading(c.chunks, "s2c", tap.PROBE_BYTES))
    c.rtmp, c.handshake_missing = found ~= nil, found ~= nil
  end
  return hs
end

-- Which side is the client, once everything is read.
local function settle(c)
  -- the SYN's sender, else (the capture began later) whoever sent the first byte
  local client = c.syn_from or (c.raw[1] and c.raw[1].side) or "a"
  local server = client == "a" and "b" or "a"
  c.client, c.server = c[client], c[server]
  c.chunks = {}
  local sent = { c2s = 0, s2c = 0 }
  for _, r in ipairs(c.raw) do
    local dir = r.side == client and "c2s" or "s2c"
    c.chunks[#c.chunks + 1] = { t = r.t, dir = dir, data = r.data }
    sent[dir] = sent[dir] + #r.data
  end
  c.bytes = sent
  c.gaps = c.flows.a:gaps() + c.flows.b:gaps()
  local hs = recognise(c)
  -- no SYN and no C0 (or TLS hello): the capture began after the connection did
  c.midstream = not c.syn_from and not hs and sent.c2s > 0 and not (c.tls and not c.tls.midstream)
  if c.closed_side then c.closed_by = c.closed_side == client and "client" or "server" end
  local ec, es = c.encaps[client], c.encaps[server]
  c.encap = ec or es
  if ec and es and ec ~= es then c.encap = fmt("%s (server: %s)", ec, es) end
  c.flows, c.raw, c.a, c.b, c.syn_from, c.closed_side, c.encaps = nil, nil, nil, nil, nil, nil, nil
end

-- capture.open(path) -> cap | nil, err.  cap.conns: the TCP connections
-- in order of their first packet (see the module comment for fields).
function M.open(path)
  local head = io.open(path, "rb")
  if head then
    local magic = head:read(4) or ""
    head:close()
    if not PCAP_MAGIC[magic] then
      return nil, fmt("%s: not a pcap or pcapng file (for the two files Wireshark's \"Follow TCP Stream\" " ..
        "saves as raw, one per direction, use --raw CLIENT_FILE SERVER_FILE)", path)
    end
  end
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
    if (pkt.fin or pkt.rst) and not c.closed then
      c.closed, c.closed_side, c.close_t = true, side, pkt.time - c.start
    end
    if c.encaps[side] == nil then c.encaps[side] = pkt.encap or false end
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

---------------------------------------------------------------------------
-- Raw stream pairs
---------------------------------------------------------------------------

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  if not data then return nil, path .. ": cannot read" end
  return data
end

-- One direction cut after the messages it holds: { data, msgs } pieces,
-- each ending where its last message ends (a leading handshake or the
-- bytes skipped before the first chunk header are pieces of their own).
-- A probe tap is fed a block ahead; a block that completes two messages
-- or more is fed to the cutting tap a byte at a time.
local BLOCK = 4096
local function pieces(data, dir, hs)
  local out, from = {}, 1
  local opts = { handshake = hs }
  if hs then
    local hl = dir == "c2s" and 1537 or 3073   -- C0 C1 (C2 goes with what follows), S0 S1 S2
    out[1] = { data = data:sub(1, hl), msgs = {} }
    from = hl + 1
  else
    local start, cs = tap.probe(data)
    if not start then return { { data = data, msgs = {} } } end
    if start > 1 then out[1] = { data = data:sub(1, start - 1), msgs = {} } end
    from, opts.chunk_size = start, cs
  end
  local ahead, cut = tap.new(opts), tap.new(opts)
  if hs then
    ahead:feed(dir, out[1].data, 0)
    cut:feed(dir, out[1].data, 0)
  end
  local piece_from = from
  local function close_piece(upto, msgs)
    out[#out + 1] = { data = data:sub(piece_from, upto), msgs = msgs }
    piece_from = upto + 1
  end
  local pos = from
  while pos <= #data do
    local last = math.min(#data, pos + BLOCK - 1)
    local block = data:sub(pos, last)
    local n = #ahead:feed(dir, block, 0)
    if n < 2 then
      local got = cut:feed(dir, block, 0)
      if #got > 0 then
        local msgs = {}
        for k, e in ipairs(got) do msgs[k] = e.msg end
        close_piece(last, msgs)
      end
    else
      for k = pos, last do
        local got = cut:feed(dir, data:sub(k, k), 0)
        if #got > 0 then
          local msgs = {}
          for j, e in ipairs(got) do msgs[j] = e.msg end
          close_piece(k, msgs)
        end
      end
    end
    pos = last + 1
  end
  if piece_from <= #data then close_piece(#data, {}) end
  return out
end

local ANSWERED_BY_STATUS = { play = true, play2 = true, publish = true, pause = true, seek = true }
-- Client commands after which the server usually sends nothing more of
-- its own accord: whatever it still has to send went before them.
local CLOSING = { closeStream = true, deleteStream = true, FCUnpublish = true }

-- Whether server message r answers client message q: the _result or
-- _error of its transaction, an onStatus on its stream for play, publish
-- and the like (or on the stream a deleteStream names), onFCPublish for
-- FCPublish and the like.
local function answers(r, q)
  if not (r.name and q.name and r.values and q.values) then return false end
  local txn = q.values[2]
  if (r.name == "_result" or r.name == "_error") and type(txn) == "number" and txn > 0 then
    return r.values[2] == txn
  end
  if r.name == "on" .. q.name then return true end
  if r.name ~= "onStatus" then return false end
  if ANSWERED_BY_STATUS[q.name] then return r.stream == q.stream end
  -- closeStream on its stream, deleteStream and FCUnpublish naming one
  return CLOSING[q.name] and (r.stream == q.stream and q.stream ~= 0 or r.stream == q.values[4]) or false
end

-- The two directions as chunks in a plausible order (no timing: every
-- chunk at t = 0): the client's C0 C1, the server's handshake, then each
-- client message followed, when the server answered it, by the server's
-- messages up to that answer.  A client acknowledgement places the
-- server's bytes it counts before it; a closing command (closeStream,
-- deleteStream, FCUnpublish) comes after what the server sent before its
-- answers to the rest; the server's remaining messages go last.
local function interleave(cdata, sdata, hs)
  local C, S = pieces(cdata, "c2s", hs), pieces(sdata, "s2c", hs)
  local chunks = {}
  local sent_s = 0     -- server bytes placed so far
  local function add(dir, p)
    if #p.data > 0 then chunks[#chunks + 1] = { t = 0, dir = dir, data = p.data } end
    if dir == "s2c" then sent_s = sent_s + #p.data end
  end
  local ci, si = 1, 1
  if hs and C[1] then
    add("c2s", C[1])
    if S[1] then add("s2c", S[1]) end
    ci, si = 2, 2
  end
  -- the first server piece at or after si answering a client message
  -- of pieces ci0.. (first message index m0 in piece ci0)
  local function answer_index(q)
    for k = si, #S do
      for _, r in ipairs(S[k].msgs) do
        if answers(r, q) then return k end
      end
    end
  end
  while ci <= #C do
    local p = C[ci]
    for _, q in ipairs(p.msgs) do
      if q.type_name == "ack" and q.sequence then
        while si <= #S and sent_s + #S[si].data <= q.sequence do add("s2c", S[si]) si = si + 1 end
      elseif q.name and CLOSING[q.name] then
        local stop = #S + 1
        for k = ci, #C do
          for _, later in ipairs(C[k].msgs) do
            local j = answer_index(later)
            if j and j < stop then stop = j end
          end
        end
        while si < stop do add("s2c", S[si]) si = si + 1 end
      end
    end
    ci = ci + 1
    add("c2s", p)
    for _, q in ipairs(p.msgs) do
      local j = answer_index(q)
      if j then
        for k = si, j do add("s2c", S[k]) end
        si = j + 1
      end
    end
  end
  for k = si, #S do add("s2c", S[k]) end
  return chunks
end

-- capture.open_raw(client_file, server_file) -> cap | nil, err.  The two
-- files Wireshark's "Follow TCP Stream -> Save as Raw" writes for one
-- connection, one per direction: cap.conns holds one connection (id 1,
-- client and server shown as the file names, conn.raw_pair = true).  The
-- files have no timing: every chunk is at t = 0, in the order of
-- `interleave` above, so tools pace nothing.
function M.open_raw(client_file, server_file)
  if type(client_file) ~= "string" or type(server_file) ~= "string" then
    error("capture.open_raw: two file names expected", 2)
  end
  local cdata, cerr = read_all(client_file)
  if not cdata then return nil, cerr end
  local sdata, serr = read_all(server_file)
  if not sdata then return nil, serr end
  if #cdata == 0 and #sdata == 0 then
    return nil, fmt("%s and %s are both empty", client_file, server_file)
  end
  local hs = tap.has_handshake(cdata:sub(1, 16)) and true or false
  local c = {
    id = 1, client = client_file, server = server_file, start = 0, finish = 0, packets = 0,
    gaps = 0, raw_pair = true, bytes = { c2s = #cdata, s2c = #sdata },
  }
  c.chunks = interleave(cdata, sdata, hs)
  recognise(c)
  c.midstream = not hs and #cdata > 0
  return { path = client_file .. " " .. server_file, conns = { c }, packets = 0, skipped = 0, raw_pair = true }
end

-- capture.open_input(opts) -> cap | nil, err: opts.raw = { client_file,
-- server_file } (capture.open_raw) or opts.path (capture.open): what a
-- tool's "CAPTURE" or "--raw CLIENT_FILE SERVER_FILE" names.
function M.open_input(opts)
  if type(opts) ~= "table" then error("capture.open_input: options table expected", 2) end
  if opts.raw then
    if type(opts.raw) ~= "table" or #opts.raw ~= 2 then
      error("capture.open_input: raw = { client_file, server_file } expected", 2)
    end
    return M.open_raw(opts.raw[1], opts.raw[2])
  end
  if type(opts.path) ~= "string" then error("capture.open_input: path or raw expected", 2) end
  return M.open(opts.path)
end

-- capture.RAW_OPTION: the option (rtmp.argv) of every tool that reads
-- a capture for "--raw CLIENT_FILE SERVER_FILE" in its place: o.raw =
-- { client_file, server_file }, for capture.open_input{ raw = o.raw }.
M.RAW_OPTION = { "raw", "string", n = 2, arg = "CLIENT_FILE SERVER_FILE",
  help = "instead of a capture: the two files Wireshark's \"Follow TCP\n" ..
         "Stream -> Save as Raw\" writes (the client's bytes, the server's)" }

-- capture.messages(conn) -> the messages of both directions in the order
-- they were completed: { dir, t, msg, chunk_size, index }.  list.handshake
-- holds each direction's handshake kind; list.error why decoding stopped.
-- When the connection's handshake is not in the capture
-- (conn.handshake_missing), each direction is decoded from its first
-- plausible chunk header (rtmp.tap): list.skipped = { c2s = n, s2c = n }
-- holds the bytes skipped before it, list.handshake_missing is true.
function M.messages(conn)
  if conn.tls then
    return { error = M.tls_reason(conn), tls = true, handshake = {}, skipped = { c2s = 0, s2c = 0 } }
  end
  -- (a connection found not to be RTMP: decided per direction, for the
  -- reason; one built by hand without conn.rtmp starts with its handshake)
  local hs = true
  if conn.handshake_missing then hs = false elseif conn.rtmp == false then hs = "auto" end
  local t = tap.new{ handshake = hs }
  local list = {}
  -- the tap is given each chunk's index for its time, so that messages
  -- of a direction decoded only at the end (no handshake) take their
  -- place among the other direction's
  local chunks = conn.chunks
  for i, ch in ipairs(chunks) do
    for _, e in ipairs(t:feed(ch.dir, ch.data, i)) do
      list[#list + 1] = e
    end
  end
  local rest = t:finish()
  if #rest > 0 then
    for _, e in ipairs(rest) do list[#list + 1] = e end
    local order = {}
    for i, e in ipairs(list) do order[e] = i end
    table.sort(list, function(x, y)
      if x.t ~= y.t then return x.t < y.t end
      return order[x] < order[y]
    end)
  end
  for _, e in ipairs(list) do e.t = chunks[e.t].t end
  list.handshake = t.handshake
  list.handshake_missing = conn.handshake_missing or nil
  list.skipped = t.skipped
  list.error = t.error
  return list
end

---------------------------------------------------------------------------
-- TLS
---------------------------------------------------------------------------

local function names(list)
  local out = {}
  for k, v in ipairs(list or {}) do out[k] = tostring(v) end
  return table.concat(out, " ")
end

local function alert_text(h)
  return fmt("alert %s (%s)", h.alert, tostring(h.level))
end

-- capture.tls_summary(conn) -> what a TLS connection (conn.tls)
-- negotiated, as one line: the server's choice first ("server chose TLS
-- 1.3, TLS_AES_256_GCM_SHA384, group x25519"), then what the client
-- offered ("client offered SNI localhost, ALPN rtmp, versions TLS 1.3 TLS
-- 1.2, 29 cipher suites").  nil for a connection that is not TLS.
function M.tls_summary(conn)
  local t = conn.tls
  if not t then return nil end
  if t.midstream then
    return "the capture began after the TLS handshake: what was negotiated is not in it"
  end
  local parts = {}
  local sh, ch = t.server, t.client
  if sh and sh.hello == "server" then
    local s = "server chose " .. sh.version .. ", " .. sh.cipher_name
    if sh.group then s = s .. ", group " .. sh.group end
    if sh.alpn then s = s .. ", ALPN " .. names(sh.alpn) end
    if sh.hello_retry then s = s .. " (a HelloRetryRequest: the client's second hello is not shown)" end
    parts[#parts + 1] = s
  elseif sh and sh.alert then
    parts[#parts + 1] = "the server answered with " .. alert_text(sh)
  else
    parts[#parts + 1] = "no ServerHello: " .. tostring(t.server_error or "the server sent something else")
  end
  if ch and ch.hello == "client" then
    local c = { "SNI " .. (ch.sni or "none") }
    c[#c + 1] = "ALPN " .. (ch.alpn and names(ch.alpn) or "none")
    c[#c + 1] = "versions " .. (ch.versions and names(ch.versions) or ("up to " .. ch.version))
    c[#c + 1] = fmt("%d cipher suites", ch.ciphers_total)
    parts[#parts + 1] = "client offered " .. table.concat(c, ", ")
  elseif ch and ch.alert then
    parts[#parts + 1] = "the client sent " .. alert_text(ch)
  else
    parts[#parts + 1] = "no ClientHello: " .. tostring(t.client_error)
  end
  return table.concat(parts, "; ")
end

-- What to do instead, for every tool that meets a TLS connection.
M.TLS_ADVICE = "for a capture that decodes, capture on the plain side of the TLS front (between " ..
  "stunnel or nginx and the RTMP server), or between luartmp and its peer with TLS off (rtmp:// " ..
  "instead of rtmps://)"

-- capture.tls_reason(conn) -> why a TLS connection cannot be decoded,
-- with what it negotiated and what to do instead; nil when not TLS.
function M.tls_reason(conn)
  if not conn.tls then return nil end
  return fmt("TLS: %s. The RTMP inside (RTMPS) is encrypted and cannot be decoded from this capture; %s",
    M.tls_summary(conn), M.TLS_ADVICE)
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
