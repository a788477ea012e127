-- Capture reading (rtmp.pcap, core/tcpflow.c, rtmp.capture, rtmp.tap) on
-- pcap files written here: a real session between two socket-free
-- sessions, its bytes cut into TCP segments under several link types,
-- then reordered, retransmitted, overlapped or lost.  The decoded
-- message list must equal what the sessions themselves delivered.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;" .. package.path
local rtmp = require "rtmp"
local capture = require "rtmp.capture"
local tap = require "rtmp.tap"

local pack = string.pack
local tmpfiles = {}

local function tmpname()
  local p = os.tmpname()
  tmpfiles[#tmpfiles + 1] = p
  return p
end

-- A session recorded as the byte runs each side sent, in order, with
-- what each side received as messages (the ground truth).
local function record_session(opts)
  opts = opts or {}
  local c = rtmp.session{ role = "client" }
  local s = rtmp.session{ role = "server" }
  local runs, got = {}, { c2s = {}, s2c = {} }
  local function pump()
    for _ = 1, 4 do
      local out = c:output()
      if #out > 0 then
        runs[#runs + 1] = { dir = "c2s", data = out }
        for _, m in ipairs(assert(s:feed(out))) do got.c2s[#got.c2s + 1] = m end
      end
      out = s:output()
      if #out > 0 then
        runs[#runs + 1] = { dir = "s2c", data = out }
        for _, m in ipairs(assert(c:feed(out))) do got.s2c[#got.s2c + 1] = m end
      end
    end
  end
  pump()
  assert(c.ready and s.ready)
  c:command(nil, "connect", 1, { app = "live", tcUrl = "rtmp://127.0.0.1/live" })
  pump()
  s:set_window_ack_size(2500000)
  s:set_chunk_size(300)
  s:command(nil, "_result", 1, { fmsVer = "FMS/3,0,1,123" }, { code = "NetConnection.Connect.Success" })
  pump()
  c:set_chunk_size(1000)
  c:command(nil, "createStream", 2, rtmp.null)
  pump()
  -- interleaved media on two chunk streams, one past the 24-bit timestamp
  local big = string.rep("v", 2500)
  local m1 = c:begin({ type = "video", csid = 6, stream = 1, timestamp = 0xFFFFFF + 5 }, "\23\1" .. big)
  local m2 = c:begin({ type = "audio", csid = 4, stream = 1, timestamp = 0xFFFFFE }, "\175\1" .. string.rep("a", 1500))
  while not (m1:done() and m2:done()) do
    if not m1:done() then m1:chunk() end
    if not m2:done() then m2:chunk() end
  end
  pump()
  s:user_control("stream_begin", 1)
  s:command({ stream = 1, csid = 5 }, "onStatus", 0, rtmp.null, { code = "NetStream.Publish.Start" })
  pump()
  if opts.aggregate then
    local subs = {
      rtmp.message({ type = 9, stream = 1, timestamp = 40 }, "\23\1\0\0\0" .. string.rep("k", 300)),
      rtmp.message({ type = 8, stream = 1, timestamp = 40 }, "\175\1" .. string.rep("a", 50)),
      rtmp.message({ type = 9, stream = 1, timestamp = 80 }, "\39\1\0\0\0" .. string.rep("i", 90)),
    }
    assert(s:send({ stream = 1, csid = 7 }, rtmp.aggregate(subs)))
    pump()
  end
  return runs, got
end

local function be32(n) return pack(">I4", n) end

-- A TCP/IP frame for linktype (1 Ethernet, 276 SLL2, 0 null, 101 raw
-- IPv6) from a (src port) to b.
local function frame(linktype, from_client, seq, ack, flags, payload)
  local sport, dport = 40000, 1935
  if not from_client then sport, dport = dport, sport end
  local tcp = pack(">I2I2I4I4BBI2I2I2", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) .. payload
  if linktype == 101 then
    local a = string.rep("\0", 15) .. "\1"
    local b = string.rep("\0", 15) .. "\2"
    if not from_client then a, b = b, a end
    return pack(">I4I2BB", 6 << 28, #tcp, 6, 64) .. a .. b .. tcp
  end
  local a, b = "\127\0\0\1", "\127\0\0\2"
  if not from_client then a, b = b, a end
  local ip = pack(">BBI2I2I2BBI2", 0x45, 0, 20 + #tcp, 0, 0x4000, 64, 6, 0) .. a .. b .. tcp
  if linktype == 1 then
    return string.rep("\0", 12) .. "\8\0" .. ip .. (#ip < 46 and string.rep("\0", 46 - #ip) or "")
  elseif linktype == 276 then
    return pack(">I2I2I4I2BB", 0x0800, 0, 1, 772, 0, 6) .. string.rep("\0", 8) .. ip
  elseif linktype == 0 then
    return pack("<I4", 2) .. ip
  end
  error("linktype " .. linktype)
end

local SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08

-- Cut the runs into segments of at most `mss` bytes; returns a list of
-- { from_client, seq, flags, payload } with a SYN handshake first unless
-- opts.no_syn.
local function segments(runs, mss, opts)
  opts = opts or {}
  local isn = { c2s = 0xFFFFF000, s2c = 1000 } -- the client's wraps past 2^32
  local next_seq = { c2s = (isn.c2s + 1) % 2^32, s2c = isn.s2c + 1 }
  local list = {}
  if not opts.no_syn then
    list[#list + 1] = { true, isn.c2s, SYN, "" }
    list[#list + 1] = { false, isn.s2c, SYN | ACK, "" }
    list[#list + 1] = { true, next_seq.c2s, ACK, "" }
  end
  for _, r in ipairs(runs) do
    local i = 1
    while i <= #r.data do
      local part = r.data:sub(i, i + mss - 1)
      list[#list + 1] = { r.dir == "c2s", next_seq[r.dir], ACK | PSH, part }
      next_seq[r.dir] = (next_seq[r.dir] + #part) % 2^32
      i = i + #part
    end
  end
  list[#list + 1] = { true, next_seq.c2s, FIN | ACK, "" }
  return list
end

local function write_pcap(path, linktype, segs)
  local out = { pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 262144, linktype) }
  for i, sg in ipairs(segs) do
    local f = frame(linktype, sg[1], sg[2], 0, sg[3], sg[4])
    out[#out + 1] = pack("<I4I4I4I4", 1795525371, i * 1000, #f, #f) .. f
  end
  local fh = assert(io.open(path, "wb"))
  fh:write(table.concat(out))
  fh:close()
  return path
end

-- The decoded list as comparable strings, per direction.
local function decoded(list)
  local t = { c2s = {}, s2c = {} }
  for _, e in ipairs(list) do
    local m = e.msg
    t[e.dir][#t[e.dir] + 1] = table.concat({ m.type, m.csid, m.stream, m.timestamp, m.length, m.payload }, "|")
  end
  return t
end

local function truth(got)
  local t = { c2s = {}, s2c = {} }
  for dir, list in pairs(got) do
    for _, m in ipairs(list) do
      t[dir][#t[dir] + 1] = table.concat({ m.type, m.csid, m.stream, m.timestamp, m.length, m.payload }, "|")
    end
  end
  return t
end

local function only_conn(path)
  local cap = assert(capture.open(path))
  assert.are.equal(1, #cap.conns)
  return cap.conns[1]
end

describe("rtmp.capture", function()
  local runs, got
  setup(function() runs, got = record_session() end)
  teardown(function() for _, p in ipairs(tmpfiles) do os.remove(p) end end)

  for _, lt in ipairs({ 1, 276, 0, 101 }) do
    it("decodes every message of both directions from link type " .. lt, function()
      local c = only_conn(write_pcap(tmpname(), lt, segments(runs, 1400)))
      assert.is_true(c.rtmp)
      assert.are.equal(0, c.gaps)
      if lt == 101 then
        assert.are.equal("[::1]:40000", c.client)
        assert.are.equal("[::2]:1935", c.server)
      else
        assert.are.equal("127.0.0.1:40000", c.client)
        assert.are.equal("127.0.0.2:1935", c.server)
      end
      local list = capture.messages(c)
      assert.is_nil(list.error)
      -- rtmp.session clients send a digest C1; the server answers in kind
      assert.are.equal("digest1", list.handshake.c2s.kind)
      assert.are.equal("digest1", list.handshake.s2c.kind)
      assert.are.same(truth(got), decoded(list))
    end)
  end

  it("puts reordered, duplicated and overlapping segments back in order", function()
    local segs = segments(runs, 300)
    local mixed = {}
    for i = 1, #segs, 3 do     -- swap pairs, send some twice, resend overlapping halves
      local a, b, c = segs[i], segs[i + 1], segs[i + 2]
      if b then mixed[#mixed + 1] = b end
      mixed[#mixed + 1] = a
      if c then
        mixed[#mixed + 1] = c
        if #c[4] > 10 then
          local half = #c[4] // 2
          mixed[#mixed + 1] = { c[1], (c[2] + half) % 2^32, c[3], c[4]:sub(half + 1) .. "" }
        end
        mixed[#mixed + 1] = c
      end
    end
    local cn = only_conn(write_pcap(tmpname(), 1, mixed))
    assert.are.equal(0, cn.gaps)
    local list = capture.messages(cn)
    assert.is_nil(list.error)
    assert.are.same(truth(got), decoded(list))
  end)

  it("takes the first sender for the client when the capture starts after the SYN", function()
    local segs = segments(runs, 1400, { no_syn = true })
    -- the first packet in the file is a bare ACK from the server
    table.insert(segs, 1, { false, 1001, ACK, "" })
    local c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.are.equal("127.0.0.1:40000", c.client)
    assert.are.same(truth(got), decoded(capture.messages(c)))
  end)

  it("counts a hole that never fills and reports where decoding stopped", function()
    local segs = segments(runs, 200)
    -- lose one client segment after the handshake
    local lost
    for i, sg in ipairs(segs) do
      if sg[1] and #sg[4] > 0 and i > 40 then lost = table.remove(segs, i) break end
    end
    local c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.are.equal(#lost[4], c.gaps)
    local list = capture.messages(c)
    local d = decoded(list)
    -- the server's direction is whole
    assert.are.same(truth(got).s2c, d.s2c)
    assert.is_true(#d.c2s < #truth(got).c2s)
  end)

  it("lists several connections and marks the one that is not RTMP", function()
    local segs = segments(runs, 1400)
    local path = tmpname()
    local http = { { true, 5, SYN, "" }, { true, 6, ACK | PSH, "GET / HTTP/1.0\r\n\r\n" } }
    local out = { pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1) }
    local function add(list, sport)
      for i, sg in ipairs(list) do
        local f = frame(1, sg[1], sg[2], 0, sg[3], sg[4])
        if sport then f = f:sub(1, 34) .. pack(">I2", sport) .. f:sub(37) end
        out[#out + 1] = pack("<I4I4I4I4", 1795525371, i, #f, #f) .. f
      end
    end
    add(http, 50000)
    add(segs)
    local fh = assert(io.open(path, "wb"))
    fh:write(table.concat(out))
    fh:close()
    local cap = assert(capture.open(path))
    assert.are.equal(2, #cap.conns)
    assert.are.equal("127.0.0.1:50000", cap.conns[1].client)
    assert.is_false(cap.conns[1].rtmp)
    assert.is_true(cap.conns[2].rtmp)
    assert.are.equal(1, #capture.rtmp_conns(cap))
  end)

  it("gives each message the chunk size its sender used", function()
    local c = only_conn(write_pcap(tmpname(), 1, segments(runs, 1400)))
    local sizes = {}
    for _, e in ipairs(capture.messages(c)) do
      if e.msg.type_name == "command" or e.msg.type_name == "video" then
        sizes[#sizes + 1] = e.dir .. ":" .. (e.msg.name or e.msg.type_name) .. "@" .. e.chunk_size
      end
    end
    assert.are.same({ "c2s:connect@128", "s2c:_result@300", "c2s:createStream@1000", "c2s:video@1000",
                      "s2c:onStatus@300" }, sizes)
  end)

  it("skips and counts a frame cut short by the snap length", function()
    local segs = segments(runs, 1400)
    local out = { pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1) }
    local snapped = frame(1, true, 12345, 0, ACK | PSH, "xxxx")
    out[#out + 1] = pack("<I4I4I4I4", 1795525371, 0, 30, #snapped) .. snapped:sub(1, 30) -- ends inside the IP header
    for i, sg in ipairs(segs) do
      local f = frame(1, sg[1], sg[2], 0, sg[3], sg[4])
      out[#out + 1] = pack("<I4I4I4I4", 1795525371, i * 1000, #f, #f) .. f
    end
    local path = tmpname()
    local fh = assert(io.open(path, "wb"))
    fh:write(table.concat(out))
    fh:close()
    local pc = assert(rtmp.pcap.open(path))
    local n = 0
    while pc:next() do n = n + 1 end
    assert.are.equal(#segs, n)
    assert.are.equal(1, pc:skipped())
    pc:close()
    local cap = assert(capture.open(path))
    assert.are.equal(1, cap.skipped)
    assert.are.same(truth(got), decoded(capture.messages(cap.conns[1])))
  end)

  it("refuses a file that is not a capture, with the reason", function()
    local p = tmpname()
    local fh = assert(io.open(p, "wb"))
    fh:write("not a capture at all")
    fh:close()
    local cap, err = capture.open(p)
    assert.is_nil(cap)
    assert.matches(p, err, 1, true)
  end)
end)

describe("rtmp.tap", function()
  it("stops a direction whose handshake is not plain RTMP and says why", function()
    local t = tap.new()
    assert.are.same({}, t:feed("c2s", "\6" .. string.rep("\0", 1536), 0))
    assert.matches("handshake version 6", t.error, 1, true)
    assert.are.same({}, t:feed("c2s", string.rep("\0", 5000), 1))
  end)

  it("decodes bytes fed one at a time the same as whole", function()
    local runs = record_session()
    local whole, single = tap.new(), tap.new()
    local a, b = {}, {}
    for _, r in ipairs(runs) do
      for _, e in ipairs(whole:feed(r.dir, r.data, 0)) do a[#a + 1] = e.msg.payload end
      for i = 1, #r.data do
        for _, e in ipairs(single:feed(r.dir, r.data:sub(i, i), 0)) do b[#b + 1] = e.msg.payload end
      end
    end
    assert.is_true(#a > 8)
    assert.are.same(a, b)
  end)
end)

describe("rtmp.pcap.flow", function()
  it("gives up a hole once the bytes waiting behind it pass the bound", function()
    local f = rtmp.pcap.flow(10)
    assert.are.equal("ab", f:add(100, false, "ab"))
    assert.are.equal("", f:add(110, false, "0123456"))   -- 6 bytes missing before it
    assert.are.equal(7, f:pending())
    assert.are.equal("0123456789ABC", f:add(117, false, "789ABC"))
    assert.are.equal(8, f:gaps())
    assert.are.equal("", f:add(102, false, "late"))      -- too late: already skipped
  end)
end)

---------------------------------------------------------------------------
-- Inputs: tunnels, raw stream pairs, captures without the handshake
---------------------------------------------------------------------------

local function be16(n) return pack(">I2", n) end

-- Outer headers, built here byte by byte.
local function ipv4(proto, payload, src, dst)
  return pack(">BBI2I2I2BBI2", 0x45, 0, 20 + #payload, 0, 0x4000, 64, proto, 0) ..
    (src or "\10\0\0\1") .. (dst or "\10\0\0\2") .. payload
end
local function ipv6(proto, payload)
  return pack(">I4I2BB", 6 << 28, #payload, proto, 64) .. string.rep("\0", 15) .. "\1" ..
    string.rep("\0", 15) .. "\2" .. payload
end
local function udp(dport, payload) return pack(">I2I2I2I2", 40001, dport, 8 + #payload, 0) .. payload end
local function ether(ethertype, payload)
  return "\2\0\0\0\0\2\2\0\0\0\0\1" .. be16(ethertype) .. payload
end
-- GTP-U G-PDU; opts.seq adds the optional 4 bytes, opts.ext a list of
-- extension header contents (each padded to a multiple of 4 with its
-- length and next-type bytes).
local function gtpu(teid, inner, opts)
  opts = opts or {}
  local flags, opt = 0x30, ""
  if opts.seq or opts.ext then
    flags = flags | (opts.seq and 0x02 or 0) | (opts.ext and 0x04 or 0)
    local exts = opts.ext or {}
    opt = pack(">I2B", opts.seq or 0, 0) .. string.char(#exts > 0 and 0x85 or 0)
    for k, content in ipairs(exts) do
      local body = content .. string.rep("\0", (4 - (#content + 2) % 4) % 4)
      opt = opt .. string.char((#body + 2) // 4) .. body .. string.char(k < #exts and 0x85 or 0)
    end
  end
  local rest = opt .. inner
  return pack(">BBI2I4", flags, 255, #rest, teid) .. rest
end
local function gre(proto, inner, opts)
  opts = opts or {}
  local flags, extra = 0, ""
  if opts.csum then flags = flags | 0x8000; extra = extra .. "\0\0\0\0" end
  if opts.key then flags = flags | 0x2000; extra = extra .. pack(">I4", opts.key) end
  if opts.seq then flags = flags | 0x1000; extra = extra .. pack(">I4", opts.seq) end
  return pack(">I2I2", flags, proto) .. extra .. inner
end
local function vxlan(vni, frame_) return pack(">BBI2I4", 0x08, 0, 0, vni << 8) .. frame_ end

-- A pcap of Ethernet frames.
local function write_frames(path, frames)
  local out = { pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1) }
  for i, f in ipairs(frames) do
    out[#out + 1] = pack("<I4I4I4I4", 1795525371, i * 1000, #f, #f) .. f
  end
  local fh = assert(io.open(path, "wb"))
  fh:write(table.concat(out))
  fh:close()
  return path
end

-- The session's segments, each inner IPv4 packet wrapped by wrap(ip, from_client).
local function tunnelled(runs, wrap)
  local frames = {}
  for _, sg in ipairs(segments(runs, 1400)) do
    local ip = frame(1, sg[1], sg[2], 0, sg[3], sg[4]):sub(15)
    frames[#frames + 1] = wrap(ip, sg[1])
  end
  return frames
end

describe("rtmp.capture inputs", function()
  local runs, got
  setup(function() runs, got = record_session() end)
  teardown(function() for _, p in ipairs(tmpfiles) do os.remove(p) end end)

  local cases = {
    { "GTP-U", "GTP-U teid=0x1a2b (server: GTP-U teid=0x3c4d)", function(ip, up)
        return ether(0x0800, ipv4(17, udp(2152, gtpu(up and 0x1a2b or 0x3c4d, ip)))) end },
    { "GTP-U with a sequence number and extension headers", "GTP-U teid=0x7", function(ip, up)
        return ether(0x0800, ipv4(17, udp(2152, gtpu(7, ip, { seq = 99, ext = { "\1\2", "\3\4\5\6\7\8" } })))) end },
    { "GRE with checksum, key and sequence, over IPv6", "GRE key=0x2a", function(ip)
        return ether(0x86DD, ipv6(47, gre(0x0800, ip, { csum = true, key = 42, seq = 5 }))) end },
    { "plain GRE", "GRE", function(ip) return ether(0x0800, ipv4(47, gre(0x0800, ip))) end },
    { "VXLAN", "VXLAN vni=42", function(ip)
        return ether(0x0800, ipv4(17, udp(4789, vxlan(42, ether(0x0800, ip))))) end },
    { "VXLAN inside GRE inside GTP-U", "GTP-U teid=0x9 / GRE key=0x1 / VXLAN vni=5", function(ip)
        local v = ipv4(17, udp(4789, vxlan(5, ether(0x0800, ip))))
        return ether(0x0800, ipv4(17, udp(2152, gtpu(9, ipv4(47, gre(0x0800, v, { key = 1 })))))) end },
  }
  for _, case in ipairs(cases) do
    it("takes the TCP out of " .. case[1] .. " and names the tunnel in conn.encap", function()
      local c = only_conn(write_frames(tmpname(), tunnelled(runs, case[3])))
      assert.is_true(c.rtmp)
      assert.are.equal(case[2], c.encap)
      assert.are.equal("127.0.0.1:40000", c.client)   -- the inner addresses
      local list = capture.messages(c)
      assert.is_nil(list.error)
      assert.are.same(truth(got), decoded(list))
    end)
  end

  it("stops at five nested tunnels, and counts a GTP-U packet cut short", function()
    local function deep(ip)
      for _ = 1, 5 do ip = ipv4(47, gre(0x0800, ip)) end
      return ether(0x0800, ip)
    end
    local path = write_frames(tmpname(), tunnelled(runs, deep))
    assert.are.equal(0, #assert(capture.open(path)).conns)
    local frames = tunnelled(runs, function(ip) return ether(0x0800, ipv4(17, udp(2152, gtpu(1, ip)))) end)
    -- a GTP length past the captured bytes: the IP and UDP lengths are cut to match
    local short = frames[5]
    frames[5] = short:sub(1, 14 + 20 + 8 + 8 + 10)
    frames[5] = frames[5]:sub(1, 16) .. be16(#frames[5] - 14) .. frames[5]:sub(19, 38) ..
      be16(#frames[5] - 34) .. frames[5]:sub(41)
    local cap = assert(capture.open(write_frames(tmpname(), frames)))
    assert.are.equal(1, cap.skipped)
    assert.are.equal("GTP-U teid=0x1", cap.conns[1].encap)
  end)

  it("says which side closed first, and when", function()
    local segs = segments(runs, 1400)     -- ends with the client's FIN
    local c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.are.equal("client", c.closed_by)
    assert.is_true(math.abs(c.close_t - (#segs - 1) * 0.001) < 1e-6, tostring(c.close_t))
    -- a server reset before the client's FIN
    table.insert(segs, #segs, { false, 0, 0x04, "" })
    c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.are.equal("server", c.closed_by)
    assert.is_true(math.abs(c.close_t - (#segs - 2) * 0.001) < 1e-6, tostring(c.close_t))
    -- no FIN or RST in the file: unknown
    table.remove(segs) table.remove(segs)
    c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.is_nil(c.closed_by)
    assert.is_nil(c.close_t)
  end)

  -- Each direction's bytes as one string.
  local function streams()
    local t = { c2s = {}, s2c = {} }
    for _, r in ipairs(runs) do t[r.dir][#t[r.dir] + 1] = r.data end
    return table.concat(t.c2s), table.concat(t.s2c)
  end
  local function write(data)
    local p = tmpname()
    local fh = assert(io.open(p, "wb"))
    fh:write(data)
    fh:close()
    return p
  end

  it("reads a raw stream pair: every message, each reply after its request, no timing", function()
    local cdata, sdata = streams()
    local cfile, sfile = write(cdata), write(sdata)
    local cap = assert(capture.open_raw(cfile, sfile))
    assert.are.equal(1, #cap.conns)
    local c = cap.conns[1]
    assert.are.equal(1, c.id)
    assert.is_true(c.raw_pair and c.rtmp)
    assert.are.equal(cfile, c.client)
    assert.are.equal(sfile, c.server)
    assert.are.same({ c2s = #cdata, s2c = #sdata }, c.bytes)
    for _, ch in ipairs(c.chunks) do assert.are.equal(0, ch.t) end
    local list = capture.messages(c)
    assert.is_nil(list.error)
    assert.are.same(truth(got), decoded(list))
    -- requests before their answers
    local order = {}
    for _, e in ipairs(list) do
      if e.msg.name then order[#order + 1] = e.dir .. ":" .. e.msg.name end
    end
    assert.are.same({ "c2s:connect", "s2c:_result", "c2s:createStream", "s2c:onStatus" }, order)
    -- open_input names the same thing
    local again = assert(capture.open_input{ raw = { cfile, sfile } })
    assert.are.same(decoded(list), decoded(capture.messages(again.conns[1])))
  end)

  it("says a raw file is no capture and points to --raw; --raw wants two files", function()
    local cdata = streams()
    local p = write(cdata)
    local cap, err = capture.open(p)
    assert.is_nil(cap)
    assert.matches("not a pcap or pcapng file", err, 1, true)
    assert.matches("--raw CLIENT_FILE SERVER_FILE", err, 1, true)
    -- the option every capture tool parses (rtmp.argv)
    local cmd = require("rtmp.argv").new{ options = { capture.RAW_OPTION, { "list" } } }
    local o, rest = cmd:parse({ "--raw", "a", "b", "--list" })
    assert.are.same({}, rest)
    assert.are.same({ raw = { "a", "b" }, list = true }, o)
    local none, why = cmd:parse({ "--raw", "a" })
    assert.is_nil(none)
    assert.matches("needs two values: CLIENT_FILE SERVER_FILE", why, 1, true)
    local _, e2 = capture.open_raw(p, p .. ".missing")
    assert.matches(".missing", e2, 1, true)
  end)

  it("decodes a capture that starts right after the handshake from its first message", function()
    local cdata, sdata = streams()
    local segs = segments({ { dir = "c2s", data = cdata:sub(3074) }, { dir = "s2c", data = sdata:sub(3074) } },
      1400, { no_syn = true })
    local c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.is_true(c.rtmp)
    assert.is_true(c.handshake_missing)
    local list = capture.messages(c)
    assert.is_nil(list.error)
    assert.is_true(list.handshake_missing)
    assert.are.same({ c2s = 0, s2c = 0 }, list.skipped)
    assert.are.same(truth(got), decoded(list))
  end)

  it("resynchronises a capture that starts mid-message and says how much it skipped", function()
    local cdata, sdata = streams()
    -- the client's stream from inside connect (chunk size 128), the
    -- server's from inside the first _result (chunk size 300)
    local c_start, s_start = 3074 + 60, 3074 + 40
    local segs = segments({ { dir = "c2s", data = cdata:sub(c_start) }, { dir = "s2c", data = sdata:sub(s_start) } },
      1400, { no_syn = true })
    local c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.is_true(c.rtmp and c.handshake_missing)
    local list = capture.messages(c)
    local d, want = decoded(list), truth(got)
    -- what is decoded is the tail of what was sent, from the next message on
    for _, dir in ipairs({ "c2s", "s2c" }) do
      assert.is_true(#d[dir] >= 2 and #d[dir] < #want[dir], dir .. " " .. #d[dir])
      local off = #want[dir] - #d[dir]
      for i = 1, #d[dir] do assert.are.equal(want[dir][off + i], d[dir][i]) end
    end
    -- the bytes skipped are exactly those up to the end of the message
    -- the cut fell into (found by feeding the whole stream a byte at a time)
    local function end_after(data, from)
      local r = rtmp.reader(tap.reader_opts)
      for i = 1, #data do
        if #assert(r:feed(data:sub(i, i))) > 0 and i >= from then return i end
      end
    end
    local cfrom, sfrom = c_start - 3074 + 1, s_start - 3074 + 1   -- the cut, in the post-handshake stream
    assert.are.equal(end_after(cdata:sub(3074), cfrom) - cfrom + 1, list.skipped.c2s)
    assert.are.equal(end_after(sdata:sub(3074), sfrom) - sfrom + 1, list.skipped.s2c)
  end)

  it("gives a clear error for bytes with no chunk header in them", function()
    local junk = {}
    for i = 1, 3000 do junk[i] = string.char(0x80 | (i * 37 % 64)) end   -- fmt 2 basic headers only
    local segs = segments({ { dir = "c2s", data = table.concat(junk) }, { dir = "s2c", data = table.concat(junk) } },
      1400, { no_syn = true })
    local c = only_conn(write_pcap(tmpname(), 1, segs))
    assert.is_false(c.rtmp)
    local list = capture.messages(c)
    assert.are.equal(0, #list)
    assert.matches("no plausible chunk header", list.error, 1, true)
  end)
end)

describe("decode.lua and flowdiff.lua output", function()
  teardown(function() for _, p in ipairs(tmpfiles) do os.remove(p) end end)
  local luartmp = os.getenv("LUARTMP") or "build/luartmp"

  local function run(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return rc, out:gsub("rc=%d+%s*$", "")
  end

  it("decode.lua prints an aggregate as its sub-messages, each marked", function()
    local runs = record_session({ aggregate = true })
    local path = write_pcap(tmpname(), 1, segments(runs, 1400))
    local rc, out = run(string.format("%s scripts/tools/decode.lua %s --from-start", luartmp, path))
    assert.are.equal(0, rc, out)
    local marked = {}
    for line in out:gmatch("[^\n]+") do
      assert.is_nil(line:find("type=aggregate", 1, true), line)
      local typ, ts, len, k, n = line:match("type=(%a+) stream=1 ts=(%d+) len=(%d+) body=.* %-%-%[%[aggregate (%d)/(%d)%]%]$")
      if typ then marked[#marked + 1] = table.concat({ typ, ts, len, k, n }, " ") end
    end
    assert.are.same({ "video 40 305 1 3", "audio 40 52 2 3", "video 80 95 3 3" }, marked)
    -- the body still loads as Lua
    local body = out:match("(body={codec=\"avc\"[^\n]*aggregate 1/3%]%])")
    assert.truthy(load("return " .. body:sub(6)))
  end)

  it("decode.lua --raw reads a stream pair; a raw file alone exits 1 naming --raw", function()
    local runs = record_session()
    local t = { c2s = {}, s2c = {} }
    for _, r in ipairs(runs) do t[r.dir][#t[r.dir] + 1] = r.data end
    local cf, sf = tmpname(), tmpname()
    assert(io.open(cf, "wb")):write(table.concat(t.c2s)):close()
    assert(io.open(sf, "wb")):write(table.concat(t.s2c)):close()
    local rc, out = run(string.format("%s scripts/tools/decode.lua --raw %s %s", luartmp, cf, sf))
    assert.are.equal(0, rc, out)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^0%.000000 conn=1 ") then n = n + 1 end
    end
    local want = 0
    for _, m in pairs(select(2, record_session())) do want = want + #m end
    assert.are.equal(want, n)
    rc, out = run(string.format("%s scripts/tools/decode.lua %s", luartmp, cf))
    assert.are.equal(1, rc)
    assert.matches("--raw CLIENT_FILE SERVER_FILE", out, 1, true)
    rc, out = run(string.format("%s scripts/tools/decode.lua --raw %s", luartmp, cf))
    assert.are.equal(2, rc)
  end)

  it("flowdiff compares media of one timestamp as a set, and still sees a real difference", function()
    package.path = "scripts/?.lua;" .. package.path
    local flowdiff = require "tools.flowdiff"
    local function line(typ, ts, len)
      return string.format("1.000000 conn=1 in csid=%d fmt=0 type=%s stream=1 ts=%d len=%d body={}",
        typ == "audio" and 4 or 6, typ, ts, len)
    end
    local a = table.concat({ line("video", 0, 40), line("audio", 0, 7), line("video", 40, 900) }, "\n")
    local b = table.concat({ line("audio", 0, 7), line("video", 0, 40), line("video", 40, 900) }, "\n")
    local c = table.concat({ line("audio", 0, 7), line("video", 40, 900), line("video", 0, 40) }, "\n")
    for _, opts in ipairs({ {}, { media = true } }) do
      assert.are.same(flowdiff.lines_of(a, opts), flowdiff.lines_of(b, opts))
    end
    -- a video at 40 before the one at 0 is a difference in --media mode
    assert.are_not.same(flowdiff.lines_of(a, { media = true }), flowdiff.lines_of(c, { media = true }))
    -- folded: the types in order of the time each first appears at
    local d = table.concat({ line("audio", 0, 7), line("video", 40, 900) }, "\n")
    local e = table.concat({ line("video", 0, 40), line("audio", 40, 7) }, "\n")
    assert.are.same({ "media audio video" }, flowdiff.lines_of(d))
    assert.are.same({ "media video audio" }, flowdiff.lines_of(e))
  end)
end)

describe("rtmp.tap without a handshake", function()
  -- chunk headers by hand: fmt 0 and a bare fmt 2 (timestamp delta only)
  local function fmt0(csid, ts, mtype, stream, body)
    return string.char(csid) .. pack(">I3I3B<I4", ts, #body, mtype, stream) .. body
  end
  local function audio(i) return fmt0(4, i * 20, 8, 1, "\175\1" .. string.rep(string.char(i), 8)) end

  it("starts again after a chunk stream whose first chunk is fmt 2, counting the bytes passed over", function()
    local fresh_fmt2 = string.char(0x80 | 6) .. pack(">I3", 40) .. string.rep("\255", 50)
    local data = audio(1) .. audio(2) .. audio(3) .. fresh_fmt2 ..
      fmt0(5, 0, 18, 1, "\2\0\3onX\5") .. audio(4) .. audio(5) .. audio(6)
    local t = tap.new{ handshake = false }
    assert.are.same({}, t:feed("c2s", data, 7))
    local list = t:finish()
    assert.is_nil(t.error)
    local seen = {}
    for _, e in ipairs(list) do
      assert.are.equal(7, e.t)
      seen[#seen + 1] = e.msg.type_name .. (e.msg.name and (":" .. e.msg.name) or "") .. "@" .. e.msg.timestamp
    end
    assert.are.same({ "audio@20", "audio@40", "audio@60", "data:onX@0", "audio@80", "audio@100", "audio@120" }, seen)
    assert.are.equal(#fresh_fmt2, t.skipped.c2s)
    assert.is_true(t.handshake_missing.c2s)
  end)

  it("auto: a version byte that reads as connect's chunk header is chunk data, not a handshake", function()
    local connect = fmt0(3, 0, 20, 0, "\2\0\7connect\0\63\240\0\0\0\0\0\0\5")
    assert.is_false(tap.has_handshake(connect))
    assert.is_true(tap.has_handshake("\3" .. string.rep("\0", 1536)))
    local t = tap.new{ handshake = "auto" }
    t:feed("c2s", connect .. audio(1) .. audio(2), 0)
    local list = t:finish()
    assert.are.equal(3, #list)
    assert.are.equal("connect", list[1].msg.name)
  end)
end)
