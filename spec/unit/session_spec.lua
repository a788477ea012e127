-- The engine's control-message defaults, seen through a socket-free
-- session: bytes in, messages and reply bytes out.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

-- One fmt 0 chunk (the payload fits in one chunk).
local function chunk0(csid, ts, mtype, sid, payload)
  return string.pack(">B I3 I3 B <I4", csid, ts, #payload, mtype, sid) .. payload
end

local function control(mtype, payload) return chunk0(2, 0, mtype, 0, payload) end
local function user_control(event, ...) return control(4, string.pack(">I2", event) .. string.pack((">I4"):rep(select("#", ...)), ...)) end

-- Parse output bytes made of single-chunk fmt 0/1 messages on csid 2
-- at chunk size 128 (what the session writes for control messages).
local function control_messages(bytes)
  local out, pos, last = {}, 1, {}
  while pos <= #bytes do
    local b = bytes:byte(pos)
    local fmt, csid = b >> 6, b & 0x3F
    pos = pos + 1
    local m = { csid = csid, fmt = fmt }
    if fmt == 0 then
      m.ts, m.len, m.type, m.stream, pos = string.unpack(">I3 I3 B <I4", bytes, pos)
    elseif fmt == 1 then
      m.ts, m.len, m.type, pos = string.unpack(">I3 I3 B", bytes, pos)
    elseif fmt == 2 then
      m.ts, pos = string.unpack(">I3", bytes, pos)
      m.len, m.type = last.len, last.type
    else
      m.len, m.type = last.len, last.type
    end
    m.payload = bytes:sub(pos, pos + m.len - 1)
    pos = pos + m.len
    out[#out + 1] = m
    last = m
  end
  return out
end

local function handshaken(opts)
  opts = opts or {}
  opts.role = "server"
  local s = rtmp.session(opts)
  local c1 = string.pack(">I4 I4", 0, 0) .. string.rep("\x5a", 1528)
  assert(s:feed("\3" .. c1))
  local s012 = s:output()
  assert.are.equal(3073, #s012)
  assert.are.equal(3, s012:byte(1))
  assert.are.equal(c1, s012:sub(1538), "plain C1: S2 echoes C1")
  assert(s:feed(s012:sub(2, 1537))) -- C2 = echo of S1
  assert.is_true(s.ready)
  return s
end

describe("session defaults", function()
  it("answers PingRequest with PingResponse carrying the same timestamp", function()
    local s = handshaken()
    local msgs = assert(s:feed(user_control(6, 123456)))
    assert.are.equal(1, #msgs)
    assert.are.equal("user_control", msgs[1].type_name)
    assert.are.equal("ping_request", msgs[1].event_name)
    assert.are.equal(123456, msgs[1].ping_time)
    assert.is_true(msgs[1].applied.ping)
    local out = control_messages(s:output())
    assert.are.equal(1, #out)
    assert.are.equal(2, out[1].csid)
    assert.are.equal(4, out[1].type)
    assert.are.equal(string.pack(">I2 I4", 7, 123456), out[1].payload)
  end)

  it("does not answer pings when the script switches that off", function()
    local s = handshaken()
    assert.is_false(s:auto("ping", false))
    local msgs = assert(s:feed(user_control(6, 99)))
    assert.is_nil(msgs[1].applied)
    assert.are.equal("", s:output())
  end)

  it("applies Set Chunk Size from the next byte on", function()
    local s = handshaken()
    local big = string.rep("x", 300)
    -- Set Chunk Size 4096, then a 300-byte message in ONE chunk, in one feed
    local msgs = assert(s:feed(control(1, string.pack(">I4", 4096)) .. chunk0(3, 0, 20, 0, big)))
    assert.are.equal(2, #msgs)
    assert.are.equal(4096, msgs[1].chunk_size)
    assert.is_true(msgs[1].applied.chunk_size)
    assert.are.equal(300, msgs[2].length)
    assert.are.equal(4096, s.in_chunk_size)
  end)

  it("leaves the chunk size alone when chunk_size is off", function()
    local s = handshaken{ auto = { chunk_size = false } }
    local msgs = assert(s:feed(control(1, string.pack(">I4", 4096))))
    assert.are.equal(4096, msgs[1].chunk_size)
    assert.is_nil(msgs[1].applied)
    assert.are.equal(128, s.in_chunk_size)
  end)

  it("records Window Ack Size and Set Peer Bandwidth, with or without the limit byte", function()
    local s = handshaken()
    local msgs = assert(s:feed(control(5, string.pack(">I4", 5000000))
      .. control(6, string.pack(">I4 B", 1234567, 2))))
    assert.are.equal(5000000, msgs[1].window)
    assert.is_true(msgs[1].applied.window)
    assert.are.equal(5000000, s.ack_window)
    assert.are.equal(1234567, s.peer_bandwidth)
    assert.are.equal(2, s.peer_bandwidth_limit)
    msgs = assert(s:feed(control(6, string.pack(">I4", 7654321))))
    assert.are.equal(7654321, msgs[1].window)
    assert.is_nil(msgs[1].limit)
    assert.are.equal(7654321, s.peer_bandwidth)
    assert.is_nil(s.peer_bandwidth_limit)
  end)

  it("acknowledges every window of bytes, exactly at the window", function()
    local s = handshaken()
    -- the sequence counts bytes after the handshake: 16 bytes of Window Ack Size
    assert(s:feed(control(5, string.pack(">I4", 1000))))
    assert.are.equal("", s:output())
    -- 20 messages of 128 bytes (140 on the wire) in one feed
    local data = {}
    for i = 1, 20 do data[i] = chunk0(4, i, 8, 1, string.rep("a", 128)) end
    assert(s:feed(table.concat(data)))
    local acks = control_messages(s:output())
    assert.are.equal(2, #acks) -- 2816 bytes: windows end at 1000 and 2000
    for i, a in ipairs(acks) do
      assert.are.equal(3, a.type)
      assert.are.equal(1000 * i, string.unpack(">I4", a.payload))
    end
    assert.are.equal(2000, s.last_ack_sent)
  end)

  it("wraps the acknowledgement sequence number at 2^32", function()
    local s = handshaken{ bytes_in_start = 2^32 - 600, ack_window = 1000 }
    local data = {}
    for i = 1, 10 do data[i] = chunk0(4, i, 8, 1, string.rep("a", 128)) end
    assert(s:feed(table.concat(data)))
    local acks = control_messages(s:output())
    assert.are.equal(1, #acks)
    -- 600 bytes short of 2^32; the window ends 400 bytes past the wrap
    assert.are.equal(400, string.unpack(">I4", acks[1].payload))
  end)

  it("sends no acknowledgement when ack is off", function()
    local s = handshaken{ ack_window = 100, auto = { ack = false } }
    assert(s:feed(chunk0(4, 0, 8, 1, string.rep("a", 128))))
    assert.are.equal("", s:output())
  end)

  it("decodes commands within the configured AMF nesting depth, and reports deeper ones", function()
    local nested = rtmp.amf0.encode("deep", 0, { a = { b = { c = 1 } } }) -- three levels
    local s = handshaken{ max_amf_depth = 3 }
    local msgs = assert(s:feed(chunk0(3, 0, 20, 0, nested)))
    assert.are.equal("deep", msgs[1].name)
    assert.are.equal(1, msgs[1].args[1].a.b.c)
    s = handshaken{ max_amf_depth = 2 }
    msgs = assert(s:feed(chunk0(3, 0, 20, 0, nested)))
    assert.are.equal(1, #msgs, "the message is still delivered")
    assert.is_nil(msgs[1].values)
    assert.truthy(msgs[1].decode_error:find("nesting", 1, true))
  end)

  it("sends control messages on csid 2 and switches its own chunk size after Set Chunk Size", function()
    local s = handshaken()
    assert(s:set_chunk_size(4096))
    assert(s:set_window_ack_size(2500000))
    assert(s:set_peer_bandwidth(2500000, false))
    local out = control_messages(s:output())
    assert.are.equal(3, #out)
    assert.are.same({ 1, 5, 6 }, { out[1].type, out[2].type, out[3].type })
    assert.are.equal(string.pack(">I4", 4096), out[1].payload)
    assert.are.equal(4, #out[3].payload, "limit byte left out on request")
    assert.are.equal(4096, s.out_chunk_size)
  end)
end)
