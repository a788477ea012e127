-- Raw sending (conn:begin / m:chunk / conn:send_chunks / conn:abort), the
-- writer's extended-timestamp option and the per-connection tolerances
-- (conn:option), on socket-free sessions: exact bytes out, re-read by the
-- chunk reader or by a second session.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local pack = string.pack

-- A client and a server session, handshaken with each other.
local function pair(server_opts)
  local c = rtmp.session{ role = "client" }
  local opts = server_opts or {}
  opts.role = "server"
  local s = rtmp.session(opts)
  for _ = 1, 4 do
    assert(s:feed(c:output()))
    assert(c:feed(s:output()))
  end
  assert.is_true(c.ready and s.ready)
  return c, s
end

-- Basic header for a csid under 64.
local function basic(fmt, csid) return string.char(fmt << 6 | csid) end

local function payload(n)
  local t = {}
  for i = 1, n do t[i] = string.char(i % 251) end
  return table.concat(t)
end

describe("raw sending: chunk by chunk", function()
  it("writes each chunk with the size and fmt asked, and the reader sees one message", function()
    local c = pair()
    local p = payload(20)
    local m = c:begin({ type = "video", csid = 7, stream = 1, timestamp = 1000 }, p)
    assert.are.equal(20, m:remaining())
    assert.is_false(m:done())
    assert.is_true(m:chunk(8))
    assert.is_true(m:chunk{ size = 5 })
    assert.is_true(m:rest())
    assert.is_true(m:done())
    assert.are.equal(0, m:remaining())
    local want = basic(0, 7) .. pack(">I3 I3 B <I4", 1000, 20, 9, 1) .. p:sub(1, 8)
              .. basic(3, 7) .. p:sub(9, 13)
              .. basic(3, 7) .. p:sub(14, 20)
    assert.are.equal(want, c:output())
    -- a reader only reassembles it at the sizes announced: 8, then 5, then 7
    local r = rtmp.reader()
    assert(r:set_chunk_size(8))
    local got = assert(r:feed(want:sub(1, 12 + 8)))
    assert.are.equal(0, #got)
    r:set_chunk_size(5)
    got = assert(r:feed(want:sub(21, 26)))
    assert.are.equal(0, #got)
    r:set_chunk_size(7)
    got = assert(r:feed(want:sub(27)))
    assert.are.equal(1, #got)
    assert.are.same({ csid = 7, fmt = 0, type = 9, stream = 1, timestamp = 1000, length = 20, payload = p },
      { csid = got[1].csid, fmt = got[1].fmt, type = got[1].type, stream = got[1].stream,
        timestamp = got[1].timestamp, length = got[1].length, payload = got[1].payload })
  end)

  it("interleaves two chunk streams and a Set Chunk Size between chunks; the peer's session reassembles both", function()
    local c, s = pair()
    local v, a = payload(300), payload(200):reverse()
    local mv = c:begin({ type = "video", csid = 7, stream = 1, timestamp = 40 }, v)
    local ma = c:begin({ type = "audio", csid = 6, stream = 1, timestamp = 41 }, a)
    assert(mv:chunk())          -- 128 bytes at the default chunk size
    assert(ma:chunk())
    assert(c:set_chunk_size(50))
    assert(mv:chunk())          -- now 50
    assert(ma:chunk())
    assert(ma:rest())
    assert(mv:rest())
    assert.are.equal(50, c.out_chunk_size)
    local msgs = assert(s:feed(c:output()))
    local seen = {}
    for _, m in ipairs(msgs) do seen[#seen + 1] = m.type_name end
    assert.are.same({ "set_chunk_size", "audio", "video" }, seen)
    assert.are.equal(a, msgs[2].payload)
    assert.are.equal(41, msgs[2].timestamp)
    assert.are.equal(v, msgs[3].payload)
    assert.are.equal(40, msgs[3].timestamp)
  end)

  it("the interleaved bytes give the same messages fed at every split size", function()
    local c = pair()
    local v, a = payload(300), payload(200):reverse()
    local mv = c:begin({ type = "video", csid = 7, stream = 1, timestamp = 0x1000000 }, v)
    local ma = c:begin({ type = "audio", csid = 6, stream = 1, timestamp = 41 }, a)
    assert(mv:chunk())
    assert(ma:chunk{ fmt = 0, ext_ts = true })
    assert(c:set_chunk_size(50))
    assert(mv:chunk{ fmt = 2 })
    assert(c:abort(9))
    assert(ma:rest())
    assert(mv:rest{ ext_ts = true })
    local bytes = c:output()
    local function summary(msgs)
      local t = {}
      for _, m in ipairs(msgs) do
        t[#t + 1] = table.concat({ m.type_name, m.csid, m.timestamp, m.length, m.payload }, "/")
      end
      return t
    end
    local _, s = pair()
    local want = summary(assert(s:feed(bytes)))
    assert.are.equal(4, #want)
    for step = 1, #bytes do
      local _, s2 = pair()
      local got = {}
      for i = 1, #bytes, step do
        for _, m in ipairs(assert(s2:feed(bytes:sub(i, i + step - 1)))) do got[#got + 1] = m end
      end
      assert.are.same(want, summary(got), "split " .. step)
    end
  end)

  it("sends a 'wrong' fmt on a continuation chunk and makes the next automatic header fmt 0", function()
    local c = pair()
    assert(c:send({ type = 9, csid = 9, stream = 1, timestamp = 10 }, "uvwxyz"))
    assert(c:send({ type = 9, csid = 9, stream = 1, timestamp = 20 }, "uvwxyz"))
    c:output()
    assert(c:send_chunks({ type = 9, csid = 9, stream = 1, timestamp = 30 }, "abcdef",
      { 2, { size = 2, fmt = 1 }, { size = 2, fmt = 0 } }))
    -- first chunk: fmt 3 (same length, type and delta), then the forced
    -- headers repeating the message's delta or timestamp
    assert.are.equal(basic(3, 9) .. "ab" .. basic(1, 9) .. pack(">I3 I3 B", 10, 6, 9) .. "cd"
      .. basic(0, 9) .. pack(">I3 I3 B <I4", 30, 6, 9, 1) .. "ef", c:output())
    -- next automatic header on csid 9: fmt 0 although fmt 3 would fit
    assert(c:send({ type = 9, csid = 9, stream = 1, timestamp = 40 }, "abcdef"))
    assert.are.equal(0, c:output():byte(1) >> 6)
  end)

  it("forces a fmt on the first chunk and the extended-timestamp form of a small timestamp", function()
    local c = pair()
    local m = c:begin({ type = 8, csid = 6, stream = 1, timestamp = 5 }, "hello")
    assert(m:chunk{ fmt = 0, ext_ts = true })
    assert.are.equal(basic(0, 6) .. pack(">I3 I3 B <I4 >I4", 0xFFFFFF, 5, 8, 1, 5) .. "hello", c:output())
  end)

  it("sends an empty message as one chunk", function()
    local c = pair()
    local m = c:begin({ type = 18, csid = 5 }, "")
    assert.is_false(m:done())
    assert(m:chunk())
    assert.is_true(m:done())
    assert.are.equal(basic(0, 5) .. pack(">I3 I3 B <I4", 0, 0, 18, 0), c:output())
  end)

  it("forwards a received message chunk by chunk", function()
    local c, s = pair()
    assert(c:send({ type = "video", csid = 7, stream = 1, timestamp = 77 }, payload(150)))
    local got = assert(s:feed(c:output()))[1]
    local m = s:begin({ csid = 4 }, got)
    assert(m:rest())
    local back = assert(c:feed(s:output()))[1]
    assert.are.same({ 4, 9, 1, 77, payload(150) }, { back.csid, back.type, back.stream, back.timestamp, back.payload })
  end)

  it("raises on misuse and reports a closed session", function()
    local c = pair()
    local m = c:begin({ type = 9, csid = 7 }, "ab")
    assert.has_error(function() m:chunk{ fmt = 4 } end)
    assert.has_error(function() m:chunk(0) end)
    assert.has_error(function() m:chunk{ ext_ts = 1 } end)
    assert.has_error(function() c:begin({ csid = 7 }, "ab") end)       -- no type
    assert.has_error(function() c:begin({ type = 9, csid = 1 }, "ab") end)
    assert(m:rest())
    assert.has_error(function() m:chunk() end)
    assert.has_error(function() c:send_chunks({ type = 9, csid = 7 }, "ab", { 1, 1, 1 }) end)
    local m2 = c:begin({ type = 9, csid = 7 }, "abc")
    c:close()
    local ok, err = m2:chunk()
    assert.is_nil(ok)
    assert.are.equal("closed", err)
  end)
end)

describe("raw sending: Abort and acknowledgements", function()
  it("conn:abort sends type 2 on csid 2; the peer drops the partial message and the next header is fmt 0", function()
    local c, s = pair()
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = 0 }, payload(300)))
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = 40 }, payload(300)))
    assert(s:feed(c:output()))
    local m = c:begin({ type = 9, csid = 7, stream = 1, timestamp = 80 }, payload(300))
    assert(m:chunk())
    assert(c:abort(7))
    local out = c:output()
    local abort = basic(0, 2) .. pack(">I3 I3 B <I4 >I4", 0, 4, 2, 0, 7)
    assert.are.equal(abort, out:sub(-#abort))
    local msgs = assert(s:feed(out))
    assert.are.equal(1, #msgs)
    assert.are.equal("abort", msgs[1].type_name)
    assert.are.equal(7, msgs[1].abort_csid)
    assert.is_true(msgs[1].applied.abort)
    -- the next message on csid 7 starts with fmt 0 and arrives whole
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = 120 }, payload(300)))
    out = c:output()
    assert.are.equal(0, out:byte(1) >> 6)
    msgs = assert(s:feed(out))
    assert.are.equal(1, #msgs)
    assert.are.equal(120, msgs[1].timestamp)
    assert.are.equal(payload(300), msgs[1].payload)
  end)

  it("with auto ack off, no Acknowledgement goes out; conn:ack sends any sequence number", function()
    local c, s = pair{ ack_window = 1000 }
    assert.is_false(s:auto("ack", false))
    assert(c:send({ type = 9, csid = 7, stream = 1 }, payload(3000)))
    assert(s:feed(c:output()))
    assert.are.equal("", s:output())
    assert(s:ack(0xDEADBEEF))
    local ack = s:output()
    assert.are.equal(basic(0, 2) .. pack(">I3 I3 B <I4 >I4", 0, 4, 3, 0, 0xDEADBEEF), ack)
    assert.are.equal(0xDEADBEEF, s.last_ack_sent)
    assert.are.equal(0xDEADBEEF, assert(c:feed(ack))[1].sequence)
    -- on again: the next window's worth of bytes is acknowledged
    s:auto("ack", true)
    assert(c:send({ type = 9, csid = 7, stream = 1 }, payload(3000)))
    assert(s:feed(c:output()))
    local msgs = assert(c:feed(s:output()))
    assert.are.equal("ack", msgs[1].type_name)
  end)

  it("with auto ping off, the script answers a PingRequest itself", function()
    local c, s = pair()
    s:auto("ping", false)
    assert(c:user_control("ping_request", 4242))
    local msgs = assert(s:feed(c:output()))
    assert.is_nil(msgs[1].applied)
    assert.are.equal("", s:output())
    assert(s:user_control("ping_response", msgs[1].ping_time + 1))
    local back = assert(c:feed(s:output()))
    assert.are.equal("ping_response", back[1].event_name)
    assert.are.equal(4243, back[1].ping_time)
  end)
end)

describe("extended timestamps on fmt 3 chunks", function()
  local TS = 0x1000000  -- needs the extended field

  local function send_big(c)
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = TS }, payload(300)))
    return c:output()
  end

  it("repeats the 4 bytes by default and leaves them out with send_ext_ts_fmt3 = false", function()
    local c = pair()
    assert.is_true(c:option("send_ext_ts_fmt3"))
    local spec = send_big(c)
    local ext = pack(">I4", TS)
    assert.are.equal(basic(0, 7) .. pack(">I3 I3 B <I4", 0xFFFFFF, 300, 9, 1) .. ext .. payload(128)
      .. basic(3, 7) .. ext .. payload(300):sub(129, 256) .. basic(3, 7) .. ext .. payload(300):sub(257),
      spec)
    local c2 = pair()
    assert.is_false(c2:option("send_ext_ts_fmt3", false))
    local quirk = send_big(c2)
    assert.are.equal(basic(0, 7) .. pack(">I3 I3 B <I4", 0xFFFFFF, 300, 9, 1) .. ext .. payload(128)
      .. basic(3, 7) .. payload(300):sub(129, 256) .. basic(3, 7) .. payload(300):sub(257),
      quirk)
    -- what each reading rule makes of each
    for mode, results in pairs{ spec = { true, false }, never = { false, true }, detect = { true, true } } do
      for i, bytes in ipairs{ spec, quirk } do
        local r = rtmp.reader{ ext_ts_fmt3 = mode }
        local got = r:feed(bytes .. basic(0, 3) .. pack(">I3 I3 B <I4", 0, 1, 20, 0) .. "\5")
        local ok = got and got[1] and got[1].length == 300 and got[1].payload == payload(300)
          and got[1].timestamp == TS
        assert.are.equal(results[i], ok and true or false, mode .. " reading " .. (i == 1 and "spec" or "quirk"))
      end
    end
  end)

  it("chooses per chunk with ext_ts", function()
    local c = pair()
    local m = c:begin({ type = 9, csid = 7, stream = 1, timestamp = TS }, payload(300))
    assert(m:chunk())
    assert(m:chunk{ ext_ts = false })
    assert(m:chunk{ ext_ts = true })
    local ext = pack(">I4", TS)
    assert.are.equal(basic(0, 7) .. pack(">I3 I3 B <I4", 0xFFFFFF, 300, 9, 1) .. ext .. payload(128)
      .. basic(3, 7) .. payload(300):sub(129, 256) .. basic(3, 7) .. ext .. payload(300):sub(257),
      c:output())
  end)

  it("a message sent as fmt 3 follows the option too", function()
    local c = pair()
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = TS }, "a"))
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = 2 * TS }, "b"))  -- fmt 2, delta TS
    c:output()
    c:option("send_ext_ts_fmt3", false)
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = 3 * TS }, "c"))  -- fmt 3
    assert.are.equal(basic(3, 7) .. "c", c:output())
    c:option("send_ext_ts_fmt3", true)
    assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = 4 * TS }, "d"))
    assert.are.equal(basic(3, 7) .. pack(">I4", TS) .. "d", c:output())
  end)
end)

describe("conn:option: tolerances changed on a running session", function()
  it("reads and sets each option, and refuses unknown names and values", function()
    local c = pair()
    assert.are.equal("detect", c:option("ext_ts_fmt3"))
    assert.are.equal("spec", c:option("ext_ts_fmt3", "spec"))
    assert.are.equal("spec", c:option("ext_ts_fmt3"))
    assert.is_false(c:option("accept_fresh_fmt"))
    assert.is_true(c:option("accept_fresh_fmt", true))
    assert.has_error(function() c:option("nonsense") end)
    assert.has_error(function() c:option("ext_ts_fmt3", "sometimes") end)
    assert.has_error(function() c:option("accept_fresh_fmt", 1) end)
    local s2 = rtmp.session{ role = "server", ext_ts_fmt3 = "never", accept_fresh_fmt = true }
    assert.are.equal("never", s2:option("ext_ts_fmt3"))
    assert.is_true(s2:option("accept_fresh_fmt"))
  end)

  it("accept_fresh_fmt switched on mid-session lets a new csid start with fmt 1", function()
    local fresh = basic(1, 20) .. pack(">I3 I3 B", 5, 2, 9) .. "hi"
    local _, s = pair()
    local ok, _, code = s:feed(fresh)
    assert.is_nil(ok)
    assert.are.equal("FRESH_CSID", code)
    local _, s2 = pair()
    assert(s2:feed(basic(0, 3) .. pack(">I3 I3 B <I4", 0, 1, 20, 0) .. "\5"))
    s2:option("accept_fresh_fmt", true)
    local msgs = assert(s2:feed(fresh))
    assert.are.equal("hi", msgs[1].payload)
    assert.are.equal(5, msgs[1].timestamp)
  end)

  it("ext_ts_fmt3 switched mid-session applies from the next chunk header", function()
    local marker = basic(0, 3) .. pack(">I3 I3 B <I4", 0, 1, 20, 0) .. "\5"
    local c, s = pair()
    c:option("send_ext_ts_fmt3", false)
    local function big(ts)
      assert(c:send({ type = 9, csid = 7, stream = 1, timestamp = ts }, payload(300)))
      return c:output()
    end
    -- "detect" (the default) reads the quirky stream whole
    local msgs = assert(s:feed(big(0x1000000) .. marker))
    assert.are.equal(2, #msgs)
    assert.are.equal(payload(300), msgs[1].payload)
    -- switched to "spec", the next such message is misread
    s:option("ext_ts_fmt3", "spec")
    local got = s:feed(big(0x2000000) .. marker)
    assert.is_false(got ~= nil and #got == 2 and got[1].payload == payload(300))
    -- and a session switched to "never" reads it whole
    local c2, s2 = pair()
    c2:option("send_ext_ts_fmt3", false)
    s2:option("ext_ts_fmt3", "never")
    assert(c2:send({ type = 9, csid = 7, stream = 1, timestamp = 0x1000000 }, payload(300)))
    msgs = assert(s2:feed(c2:output()))
    assert.are.equal(1, #msgs)
    assert.are.equal(payload(300), msgs[1].payload)
  end)
end)

describe("Set Peer Bandwidth reply (auto bandwidth_reply)", function()
  local function spb(window, limit)
    local body = pack(">I4", window) .. (limit and string.char(limit) or "")
    return basic(0, 2) .. pack(">I3 I3 B <I4", 0, #body, 6, 0) .. body
  end

  it("is off by default: the message is recorded, nothing is sent", function()
    local _, s = pair()
    assert.is_false(s:auto("bandwidth_reply"))
    local msgs = assert(s:feed(spb(5000, 0)))
    assert.are.same({ bandwidth = true }, msgs[1].applied)
    assert.are.equal(5000, s.peer_bandwidth)
    assert.are.equal("", s:output())
  end)

  it("answers with Window Ack Size when the limit in effect changes, per limit type", function()
    local c, s = pair()
    assert.is_true(s:auto("bandwidth_reply", true))
    local function was() -- the Window Ack Size values s sent, as c reads them
      local out = {}
      for _, m in ipairs(assert(c:feed(s:output()))) do
        if m.type_name == "window_ack_size" then out[#out + 1] = m.window end
      end
      return out
    end
    local msgs = assert(s:feed(spb(4000, 2)))              -- first, dynamic: sets 4000
    assert.is_true(msgs[1].applied.bandwidth_reply)
    assert.are.same({ 4000 }, was())
    msgs = assert(s:feed(spb(5000, 0)))                    -- hard: 5000
    assert.is_true(msgs[1].applied.bandwidth_reply)
    assert.are.same({ 5000 }, was())
    assert.are.equal(5000, s.window_sent)
    msgs = assert(s:feed(spb(5000, 0)))                    -- same: no reply
    assert.is_nil(msgs[1].applied.bandwidth_reply)
    assert.are.same({}, was())
    assert(s:feed(spb(9000, 1)))                           -- soft, larger: min stays 5000
    assert.are.same({}, was())
    assert(s:feed(spb(3000, 1)))                           -- soft, smaller: 3000
    assert.are.same({ 3000 }, was())
    assert(s:feed(spb(7000, 2)))                           -- dynamic after soft: ignored
    assert.are.same({}, was())
    assert(s:feed(spb(8000)))                              -- no limit byte: taken as hard
    assert.are.same({ 8000 }, was())
    assert(s:feed(spb(6000, 2)))                           -- dynamic after hard: as hard
    assert.are.same({ 6000 }, was())
  end)
end)
