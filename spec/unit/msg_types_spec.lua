-- AMF3 command and data messages (types 17 and 15): the format byte 0
-- before AMF0 values, written by conn:command3/data3 (or hdr.type 17/15)
-- and skipped when decoding.
local T = require "support.msgs"
local rtmp = require "rtmp"

describe("AMF3 command and data messages", function()
  it("are written with the format byte 0 before the AMF0 values", function()
    local s = T.session()
    assert(s:command3(nil, "hello", 2, rtmp.null, "x"))
    assert(s:command({ type = 17, csid = 4 }, "again", 3))
    assert(s:data3(nil, "onTextData", 1))
    assert(s:data({ type = "data3" }))
    local r = rtmp.reader{}
    local got = assert(r:feed(s:output()))
    assert.are.equal(4, #got)
    assert.are.same({ 17, 3 }, { got[1].type, got[1].csid })
    assert.are.equal(T.hex("\0" .. T.str("hello") .. T.num(2) .. T.null .. T.str("x")), T.hex(got[1].payload))
    assert.are.same({ 17, 4 }, { got[2].type, got[2].csid })
    assert.are.equal(T.hex("\0" .. T.str("again") .. T.num(3)), T.hex(got[2].payload))
    assert.are.same({ 15, 5 }, { got[3].type, got[3].csid })
    assert.are.equal(T.hex("\0" .. T.str("onTextData") .. T.num(1)), T.hex(got[3].payload))
    assert.are.equal("\0", got[4].payload)
    -- type 20 / 18 stay without it
    assert(s:command(nil, "plain", 4))
    assert.are.equal(T.hex(T.str("plain") .. T.num(4)), T.hex(assert(r:feed(s:output()))[1].payload))
    assert.has_error(function() s:command3(nil) end)
  end)

  it("carry AMF3 values through the switch marker 0x11, both ways", function()
    local s = T.session()
    assert(s:command3(nil, "x", 0, rtmp.null, rtmp.amf3.bytearray("\1\2\3")))
    local sent = assert(rtmp.reader{}:feed(s:output()))[1].payload
    -- format byte, "x", 0, null, then 0x11 and an AMF3 ByteArray (0x0C, U29 3 << 1 | 1)
    assert.are.equal(T.hex("\0" .. T.str("x") .. T.num(0) .. T.null .. "\x11\x0C\x07\1\2\3"), T.hex(sent))
    local body = "\0" .. T.str("call") .. T.num(1) .. T.null .. "\x11\x04\x05" .. "\x11\x06\x07abc" .. sent:sub(-6)
    local m = T.feed_split(T.chunked{ { csid = 3, type = 17, stream = 0, timestamp = 0, payload = body } }, 4096)[1]
    assert.is_nil(m.decode_error)
    assert.are.equal(5, m.args[2])
    assert.are.equal("integer", math.type(m.args[2]))
    assert.are.equal("abc", m.args[3])
    assert.are.equal("bytearray", rtmp.amf3.type(m.args[4]))
    assert.are.equal("\1\2\3", m.args[4].data)
  end)

  it("decode at every split size with name, txn, args and values", function()
    local body17 = "\0" .. T.str("call") .. T.num(5) .. T.null .. T.str("arg")
    local body15 = "\0" .. T.str("onMeta") .. T.num(1)
    local bytes = T.chunked{
      { csid = 3, type = 17, stream = 0, timestamp = 0, payload = body17 },
      { csid = 5, type = 15, stream = 1, timestamp = 40, payload = body15 },
    }
    T.every_split(bytes, function(msgs, size)
      assert.are.equal(2, #msgs, "split size " .. size)
      local c, d = msgs[1], msgs[2]
      assert.are.same({ "command3", "call", 5.0, "arg" }, { c.type_name, c.name, c.txn, c.args[2] })
      assert.are.equal(rtmp.null, c.args[1])
      assert.are.same({ "data3", "onMeta", 2 }, { d.type_name, d.name, d.values.n })
    end)
  end)
end)
