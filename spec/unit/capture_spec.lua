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
local function record_session()
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
