-- The chunk layer through rtmp.reader / rtmp.writer / rtmp.chunk_fmt0.
--
-- Reader fixtures are bytes built here with string.pack, independently of
-- the C writer, each with the message log it must produce.  Every fixture
-- is fed whole, in two pieces split at every position, and in pieces of
-- every size from 1 (byte at a time) to its length: the log must not
-- depend on how the bytes arrive.  Writer tests compare exact bytes with
-- the same builders, check the header format chosen for typical
-- sequences, and round-trip through the reader.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local pack = string.pack
local EXT = 0xFFFFFF
local MiB = 1024 * 1024

---------------------------------------------------------------------------
-- Byte builders
---------------------------------------------------------------------------

-- Basic header; form forces 1, 2 or 3 bytes (default: the shortest).
local function basic(fmt, csid, form)
  form = form or (csid < 64 and 1 or csid < 320 and 2 or 3)
  if form == 1 then return pack("B", fmt << 6 | csid) end
  if form == 2 then return pack("BB", fmt << 6, csid - 64) end
  return pack("<BI2", fmt << 6 | 1, csid - 64)
end

-- A 3-byte timestamp field, and the extended field that follows it.
local function ts3(v) return v >= EXT and EXT or v end
local function extf(v) return v >= EXT and pack(">I4", v) or "" end

local function h0(csid, ts, len, mtype, sid, form)
  return basic(0, csid, form) .. pack(">I3 I3 B <I4", ts3(ts), len, mtype, sid) .. extf(ts)
end
local function h1(csid, d, len, mtype) return basic(1, csid) .. pack(">I3 I3 B", ts3(d), len, mtype) .. extf(d) end
local function h2(csid, d) return basic(2, csid) .. pack(">I3", ts3(d)) .. extf(d) end
local function h3(csid, ext, form) return basic(3, csid, form) .. (ext and pack(">I4", ext) or "") end

-- One message: its first header, then the payload cut at chunk size cs
-- with fmt 3 continuation headers (carrying ext when given).
local function chunks(first, csid, payload, cs, ext)
  local out = { first, payload:sub(1, cs) }
  for i = cs + 1, #payload, cs do
    out[#out + 1] = h3(csid, ext)
    out[#out + 1] = payload:sub(i, i + cs - 1)
  end
  return table.concat(out)
end

-- n bytes of a pattern that depends on seed (never starts with 01 00 00 00).
local function data(n, seed)
  seed = seed or 1
  if n == 0 then return "" end
  local t = {}
  for i = 1, math.min(n, 257) do t[i] = string.char((i * (2 * seed + 1) + seed * 31 + 0x20) % 256) end
  local unit = table.concat(t)
  return unit:rep(n // #unit + 1):sub(1, n)
end

-- Minimal AMF0 for a realistic connect.
local function amf_str(s) return pack(">B s2", 2, s) end
local function amf_num(n) return pack(">B d", 0, n) end
local function amf_obj(pairs_)
  local t = { "\3" }
  for _, p in ipairs(pairs_) do t[#t + 1] = pack(">s2", p[1]) .. p[2] end
  t[#t + 1] = "\0\0\9"
  return table.concat(t)
end

-- An expected message.
local function M(csid, fmt, mtype, stream, ts, payload)
  return { csid = csid, fmt = fmt, type = mtype, stream = stream, timestamp = ts,
           length = #payload, payload = payload }
end

local function control(mtype, value) return h0(2, 0, 4, mtype, 0) .. pack(">I4", value) end
local function control_msg(mtype, value) return M(2, 0, mtype, 0, 0, pack(">I4", value)) end

---------------------------------------------------------------------------
-- Feeding
---------------------------------------------------------------------------

-- Feed pieces to a new reader; the log is every message, then
-- { error = CODE } if feed failed.
local function run(opts, pieces)
  local r = rtmp.reader(opts)
  local log = {}
  for _, p in ipairs(pieces) do
    local msgs, _, code, partial = r:feed(p)
    if not msgs then
      for _, m in ipairs(partial) do log[#log + 1] = m end
      log[#log + 1] = { error = code }
      break
    end
    for _, m in ipairs(msgs) do log[#log + 1] = m end
  end
  return log, r
end

-- The same log whole, split in two at every position, and in pieces of
-- every size (size 1 is byte at a time).
local function every_split(opts, bytes, expected)
  assert.same(expected, (run(opts, { bytes })), "whole")
  for k = 0, #bytes do
    assert.same(expected, (run(opts, { bytes:sub(1, k), bytes:sub(k + 1) })), "split at " .. k)
  end
  for size = 1, #bytes do
    local pieces = {}
    for i = 1, #bytes, size do pieces[#pieces + 1] = bytes:sub(i, i + size - 1) end
    assert.same(expected, (run(opts, pieces)), "pieces of " .. size)
  end
end

---------------------------------------------------------------------------
-- Reader fixtures
---------------------------------------------------------------------------

describe("chunk reader", function()
  it("reads a publish start: Set Chunk Size 4096, then connect in one chunk", function()
    local connect = amf_str("connect") .. amf_num(1) .. amf_obj{
      { "app", amf_str("live") }, { "type", amf_str("nonprivate") },
      { "flashVer", amf_str("FMLE/3.0 (compatible; FMSc/1.0)") },
      { "swfUrl", amf_str("rtmp://127.0.0.1:1935/live") },
      { "tcUrl", amf_str("rtmp://127.0.0.1:1935/live") },
    }
    assert.is_true(#connect > 128)  -- one chunk only at the new size
    local bytes = control(1, 4096) .. h0(3, 0, #connect, 20, 0) .. connect
      .. control(5, 2500000)
    every_split(nil, bytes, {
      control_msg(1, 4096),
      M(3, 0, 20, 0, 0, connect),
      control_msg(5, 2500000),
    })
    local _, r = run(nil, { bytes })
    assert.equal(4096, r:chunk_size())
    assert.equal(0, r:buffered())
    -- without automatic application the size stays, and the connect is
    -- still incomplete after 128 bytes of it
    local msgs
    r = rtmp.reader{ auto_chunk_size = false }
    msgs = assert(r:feed(control(1, 4096) .. h0(3, 0, #connect, 20, 0) .. connect:sub(1, 128)))
    assert.equal(1, #msgs)
    assert.equal(128, r:chunk_size())
    assert.is_true(r:buffered() >= 128)
  end)

  it("reassembles interleaved audio (csid 4) and video (csid 6) split across chunks", function()
    local V, V2 = data(300, 1), data(50, 2)
    local A1, A2, A3 = data(10, 3), data(10, 4), data(10, 5)
    local bytes = h0(6, 1000, 300, 9, 1) .. V:sub(1, 128)
      .. h0(4, 1000, 10, 8, 1) .. A1
      .. h3(6) .. V:sub(129, 256)
      .. h2(4, 23) .. A2
      .. h3(6) .. V:sub(257, 300)
      .. h3(4) .. A3
      .. h1(6, 40, 50, 9) .. V2
    every_split(nil, bytes, {
      M(4, 0, 8, 1, 1000, A1),
      M(4, 2, 8, 1, 1023, A2),
      M(6, 0, 9, 1, 1000, V),
      M(4, 3, 8, 1, 1046, A3),
      M(6, 1, 9, 1, 1040, V2),
    })
  end)

  it("decompresses fmt 1, 2 and 3 headers, zero-length messages included", function()
    local bytes = h0(5, 100, 5, 8, 1) .. "aaaaa"
      .. h2(5, 20) .. "bbbbb"
      .. h3(5) .. "ccccc"
      .. h1(5, 30, 7, 9) .. "ddddddd"
      .. h3(5) .. "eeeeeee"
      -- a fmt 3 right after a fmt 0 repeats the fmt 0 timestamp as delta
      .. h0(7, 40, 2, 18, 3) .. "ff"
      .. h3(7) .. "gg"
      -- zero-length messages: fmt 0, then fmt 2 and fmt 3 repeating them
      .. h0(3, 0, 0, 20, 0)
      .. h2(3, 5)
      .. h3(3)
      .. h1(3, 1, 3, 20) .. "end"
    every_split(nil, bytes, {
      M(5, 0, 8, 1, 100, "aaaaa"),
      M(5, 2, 8, 1, 120, "bbbbb"),
      M(5, 3, 8, 1, 140, "ccccc"),
      M(5, 1, 9, 1, 170, "ddddddd"),
      M(5, 3, 9, 1, 200, "eeeeeee"),
      M(7, 0, 18, 3, 40, "ff"),
      M(7, 3, 18, 3, 80, "gg"),
      M(3, 0, 20, 0, 0, ""),
      M(3, 2, 20, 0, 5, ""),
      M(3, 3, 20, 0, 10, ""),
      M(3, 1, 20, 0, 11, "end"),
    })
  end)

  it("reads every basic header form: csid 2, 63, 64, 319, 320, 65599", function()
    local P = {}
    local bytes = {}
    local expected = {}
    for i, csid in ipairs{ 2, 63, 64, 319, 320, 65599 } do
      P[i] = data(130, i)
      bytes[#bytes + 1] = chunks(h0(csid, i, 130, 9, 1), csid, P[i], 128)
      expected[#expected + 1] = M(csid, 0, 9, 1, i, P[i])
    end
    -- csid 64 also in the 3-byte form, mixing forms within one message
    local Q = data(130, 9)
    bytes[#bytes + 1] = h0(64, 50, 130, 8, 1, 3) .. Q:sub(1, 128) .. h3(64, nil, 2) .. Q:sub(129)
    expected[#expected + 1] = M(64, 0, 8, 1, 50, Q)
    -- 320 and 65599 continue with fmt 1 and fmt 2 headers
    bytes[#bytes + 1] = h1(320, 10, 3, 8) .. "xyz" .. h2(65599, 10) .. data(128, 7) .. h3(65599) .. "!!"
    expected[#expected + 1] = M(320, 1, 8, 1, 15, "xyz")
    expected[#expected + 1] = M(65599, 2, 9, 1, 16, data(128, 7) .. "!!")
    every_split(nil, table.concat(bytes), expected)
  end)

  it("reads csid 64 written in the 3-byte form", function()
    local bytes = pack("<BI2", 0x01, 0) .. pack(">I3 I3 B <I4", 0, 1, 8, 1) .. "z"
    assert.same({ M(64, 0, 8, 1, 0, "z") }, (run(nil, { bytes })))
  end)

  it("applies Set Chunk Size from the very next byte", function()
    local P, Q = data(120, 1), data(200, 2)
    local bytes = control(1, 50) .. chunks(h0(3, 0, 120, 20, 0), 3, P, 50)
      .. control(1, 200) .. h0(5, 7, 200, 18, 1) .. Q
      .. control(1, 1) .. h0(4, 9, 3, 8, 1) .. "x" .. h3(4) .. "y" .. h3(4) .. "z"
    every_split(nil, bytes, {
      control_msg(1, 50),
      M(3, 0, 20, 0, 0, P),
      control_msg(1, 200),
      M(5, 0, 18, 1, 7, Q),
      control_msg(1, 1),
      M(4, 0, 8, 1, 9, "xyz"),
    })
  end)

  it("drops the partial message on Abort; the chunk stream then starts afresh", function()
    local V, W = data(300, 1), data(10, 2)
    local bytes = h0(6, 0, 300, 9, 1) .. V:sub(1, 128)
      .. control(2, 6)
      .. h1(6, 40, 10, 9) .. W
    every_split(nil, bytes, {
      control_msg(2, 6),
      M(6, 1, 9, 1, 40, W),
    })
    local _, r = run(nil, { bytes })
    assert.equal(0, r:buffered())
    -- not applied, the new length in the middle of the message is an error
    assert.same({ control_msg(2, 6), { error = "LENGTH_CHANGED" } },
      (run({ auto_chunk_size = false }, { bytes })))
  end)

  it("holds at most 64 KiB more than the bytes of a long message that stalls", function()
    local r = rtmp.reader{ max_message = 16 * 1024 * 1024 }
    r:set_chunk_size(16 * 1024 * 1024)
    local piece = string.rep("v", 1024 * 1024)
    assert.same({}, assert(r:feed(h0(6, 0, 16 * 1024 * 1024 - 1, 9, 1))))
    for mib = 1, 9 do
      assert.same({}, assert(r:feed(piece)))
      local held, got = r:buffered(), mib * 1024 * 1024
      assert.is_true(held >= got and held <= got + 64 * 1024, mib .. " MiB sent, " .. held .. " held")
    end
    -- small messages still grow by doubling from 256 bytes
    local r2 = rtmp.reader()
    assert.same({}, assert(r2:feed(h0(6, 0, 100000, 9, 1) .. string.rep("w", 100))))
    assert.equal(256, r2:buffered())
  end)

  it("r:abort from outside skips the rest of a chunk that is arriving", function()
    local V = data(300, 1)
    local r = rtmp.reader()
    assert.same({}, assert(r:feed(h0(6, 0, 300, 9, 1) .. V:sub(1, 100))))
    assert.is_true(r:buffered() >= 100)
    assert.is_true(r:abort(6))
    assert.equal(0, r:buffered())
    local msgs = assert(r:feed(V:sub(101, 128) .. h0(4, 1, 2, 8, 1) .. "ok"))
    assert.same({ M(4, 0, 8, 1, 1, "ok") }, msgs)
    assert.is_true(r:abort(9))  -- unknown csid: nothing to do
  end)

  describe("extended timestamps", function()
    local T = 0x1000000
    local X, Y = data(130, 1), data(130, 2)
    local Z = h0(4, 5, 3, 8, 1) .. "abc"
    -- X: fmt 0 at T (extended) in two chunks; Y: fmt 3 starting a new
    -- message (delta T, so 2T); Z: a small message on another csid.
    local function fixture(with)
      local e = with and T or nil
      return h0(6, T, 130, 9, 1) .. X:sub(1, 128) .. h3(6, e) .. X:sub(129)
        .. h3(6, e) .. Y:sub(1, 128) .. h3(6, e) .. Y:sub(129)
        .. Z
    end
    local good = {
      M(6, 0, 9, 1, T, X),
      M(6, 3, 9, 1, 2 * T, Y),
      M(4, 0, 8, 1, 5, "abc"),
    }

    it("detect reads fmt 3 chunks with and without the repeated field", function()
      every_split(nil, fixture(true), good)
      every_split({ ext_ts_fmt3 = "detect" }, fixture(false), good)
    end)

    it("spec reads the field on every fmt 3 chunk", function()
      every_split({ ext_ts_fmt3 = "spec" }, fixture(true), good)
    end)

    it("never reads peers that omit the field", function()
      every_split({ ext_ts_fmt3 = "never" }, fixture(false), good)
    end)

    it("a mode that does not match the peer misreads the stream", function()
      -- never, field present: the field's first 2 bytes end X's payload
      local bytes = h0(6, T, 130, 9, 1) .. X:sub(1, 128) .. h3(6, T) .. X:sub(129)
      every_split({ ext_ts_fmt3 = "never" }, bytes, { M(6, 0, 9, 1, T, X:sub(1, 128) .. "\1\0") })
      -- spec, field absent: X's last 2 bytes and 2 of Z are taken as the
      -- field, then 2 more bytes of Z as payload
      bytes = h0(6, T, 130, 9, 1) .. X:sub(1, 128) .. h3(6) .. X:sub(129) .. Z
      every_split({ ext_ts_fmt3 = "spec" }, bytes, { M(6, 0, 9, 1, T, X:sub(1, 128) .. Z:sub(3, 4)) })
    end)

    it("handles 0xFFFFFF exactly and extended deltas on fmt 1, 2 and 3", function()
      local D = 0x1234567
      local P = data(200, 3)
      local function bytes(with)
        local e = with and D or nil
        return h0(8, EXT, 4, 8, 1) .. "aaaa"
          .. h2(8, D) .. "bbbb"
          .. h3(8, e) .. "cccc"
          .. h1(8, D, 200, 9) .. P:sub(1, 128) .. h3(8, e) .. P:sub(129)
          .. h2(8, 1) .. data(200, 4):sub(1, 128) .. h3(8) .. data(200, 4):sub(129)
      end
      local expected = {
        M(8, 0, 8, 1, EXT, "aaaa"),
        M(8, 2, 8, 1, EXT + D, "bbbb"),
        M(8, 3, 8, 1, EXT + 2 * D, "cccc"),
        M(8, 1, 9, 1, EXT + 3 * D, P),
        M(8, 2, 9, 1, EXT + 3 * D + 1, data(200, 4)),
      }
      every_split(nil, bytes(true), expected)
      every_split({ ext_ts_fmt3 = "spec" }, bytes(true), expected)
      every_split(nil, bytes(false), expected)
      every_split({ ext_ts_fmt3 = "never" }, bytes(false), expected)
    end)

    it("wraps timestamps modulo 2^32", function()
      local bytes = h0(3, 0xFFFFFFFF, 1, 8, 1) .. "a" .. h2(3, 1) .. "b" .. h3(3) .. "c"
      every_split(nil, bytes, {
        M(3, 0, 8, 1, 0xFFFFFFFF, "a"),
        M(3, 2, 8, 1, 0, "b"),
        M(3, 3, 8, 1, 1, "c"),
      })
    end)
  end)

  describe("limits", function()
    it("refuses a message longer than max_message when its header is read", function()
      local r = rtmp.reader{ max_message = 1000 }
      local msgs, msg, code, partial = r:feed(h0(3, 0, 1001, 9, 1))
      assert.is_nil(msgs)
      assert.equal("message longer than the limit", msg)
      assert.equal("MSG_TOO_LONG", code)
      assert.same({}, partial)
      assert.equal(0, r:buffered())
      -- the error is sticky
      local again, _, code2 = r:feed(h0(4, 0, 1, 8, 1) .. "x")
      assert.is_nil(again)
      assert.equal("MSG_TOO_LONG", code2)
      -- exactly the limit is fine, and fmt 1 is checked the same way
      local P = data(1000)
      every_split({ max_message = 1000 }, chunks(h0(3, 0, 1000, 9, 1), 3, P, 128)
        .. h1(3, 1, 1001, 9),
        { M(3, 0, 9, 1, 0, P), { error = "MSG_TOO_LONG" } })
    end)

    it("defaults to 8 MiB", function()
      assert.same({ { error = "MSG_TOO_LONG" } }, (run(nil, { h0(3, 0, 8 * MiB + 1, 9, 1) })))
      assert.same({}, (run(nil, { h0(3, 0, 8 * MiB, 9, 1) })))
    end)

    it("allocates by bytes received, not by the declared length", function()
      local r = rtmp.reader{ max_message = 32 * MiB }
      assert(r:set_chunk_size(0x7FFFFFFF))
      assert.same({}, assert(r:feed(h0(6, 0, 16 * MiB - 1, 9, 1) .. data(100))))
      assert.is_true(r:buffered() >= 100 and r:buffered() <= 256, "buffered " .. r:buffered())
      -- growth follows the bytes and stays within twice what arrived
      for _ = 1, 100 do assert(r:feed(data(1000))) end
      local held = r:buffered()
      assert.is_true(held >= 100100 and held <= 2 * 100100, "buffered " .. held)
      -- the buffer never grows past the declared length
      local r2 = rtmp.reader()
      assert(r2:feed(h0(6, 0, 300, 9, 1) .. data(128) .. h3(6) .. data(128) .. h3(6) .. data(43)))
      assert.is_true(r2:buffered() >= 299 and r2:buffered() <= 300, "buffered " .. r2:buffered())
      assert.equal(1, #assert(r2:feed("x")))
      assert.equal(0, r2:buffered())
    end)

    it("reuses one spare buffer of at most 64 KiB between messages", function()
      local r = rtmp.reader{ max_message = 32 * MiB }
      assert(r:set_chunk_size(0x7FFFFFFF))
      -- a 60000-byte message leaves its buffer as the spare, not counted while idle
      assert.same({}, assert(r:feed(h0(6, 0, 60000, 9, 1) .. data(60000 - 1))))
      assert.equal(1, #assert(r:feed("x")))
      assert.equal(0, r:buffered())
      -- the next message starts in it: a hostile declaration holds at most 64 KiB more
      assert.same({}, assert(r:feed(h0(6, 0, 16 * MiB - 1, 9, 1) .. data(100))))
      assert.equal(60000, r:buffered())
      -- past the spare, growth follows the bytes again
      for _ = 1, 100 do assert(r:feed(data(1000))) end
      assert.is_true(r:buffered() <= 2 * 100100 + 64 * 1024, "buffered " .. r:buffered())
      -- a buffer over 64 KiB is not kept
      local r2 = rtmp.reader{ max_message = 32 * MiB }
      assert(r2:set_chunk_size(0x7FFFFFFF))
      assert(r2:feed(h0(6, 0, 200000, 9, 1) .. data(199999)))
      assert.equal(1, #assert(r2:feed("x")))
      assert.same({}, assert(r2:feed(h0(6, 0, 16 * MiB - 1, 9, 1) .. data(100))))
      assert.is_true(r2:buffered() <= 256, "buffered " .. r2:buffered())
    end)

    it("limits the number of chunk streams", function()
      local bytes = h0(3, 0, 1, 8, 1) .. "a" .. h0(4, 0, 1, 8, 1) .. "b" .. h0(5, 0, 1, 8, 1) .. "c"
        .. h2(3, 1) .. "d" .. h0(6, 0, 1, 8, 1) .. "e"
      every_split({ max_chunk_streams = 3 }, bytes, {
        M(3, 0, 8, 1, 0, "a"), M(4, 0, 8, 1, 0, "b"), M(5, 0, 8, 1, 0, "c"),
        M(3, 2, 8, 1, 1, "d"), { error = "TOO_MANY_CSID" },
      })
      -- the default is 64
      local many = {}
      for csid = 2, 65 do many[#many + 1] = h0(csid, 0, 1, 8, 1) .. "x" end
      assert.equal(64, #assert(rtmp.reader():feed(table.concat(many))))
      many[#many + 1] = h0(66, 0, 1, 8, 1) .. "x"
      local log = run(nil, { table.concat(many) })
      assert.same({ error = "TOO_MANY_CSID" }, log[#log])
      assert.equal(65, #log)
    end)

    it("refuses a length change in the middle of a message (CVE-2016-10191)", function()
      local V = data(300)
      every_split(nil, h0(4, 0, 300, 9, 1) .. V:sub(1, 128) .. h1(4, 0, 200, 9) .. V:sub(129, 200),
        { { error = "LENGTH_CHANGED" } })
      every_split(nil, h0(4, 0, 300, 9, 1) .. V:sub(1, 128) .. h0(4, 0, 100, 9, 1),
        { { error = "LENGTH_CHANGED" } })
      -- the same length continues the message (the header's fields ignored)
      every_split(nil, h0(4, 7, 300, 9, 1) .. V:sub(1, 128) .. h1(4, 3, 300, 9) .. V:sub(129, 256)
        .. h2(4, 5) .. V:sub(257),
        { M(4, 0, 9, 1, 7, V) })
    end)

    it("refuses a new chunk stream that starts without fmt 0", function()
      every_split(nil, h0(3, 0, 1, 8, 1) .. "a" .. h1(4, 5, 3, 8) .. "xyz",
        { M(3, 0, 8, 1, 0, "a"), { error = "FRESH_CSID" } })
      assert.same({ { error = "FRESH_CSID" } }, (run(nil, { h2(4, 5) })))
      assert.same({ { error = "FRESH_CSID" } }, (run(nil, { h3(4) })))
      -- accepted on request, the missing fields being zero
      every_split({ accept_fresh_fmt = true }, h1(4, 5, 3, 8) .. "xyz" .. h3(4) .. "uvw",
        { M(4, 1, 8, 0, 5, "xyz"), M(4, 3, 8, 0, 10, "uvw") })
    end)

    it("keeps the chunk size within the configured range", function()
      local r = rtmp.reader{ min_chunk_size = 128, max_chunk_size = 65536 }
      local ok, msg, code = r:set_chunk_size(127)
      assert.is_nil(ok)
      assert.equal("chunk size out of range", msg)
      assert.equal("CHUNK_SIZE", code)
      assert.is_nil((r:set_chunk_size(65537)))
      assert.equal(128, r:chunk_size())
      assert.is_true(r:set_chunk_size(65536))
      assert.equal(65536, r:chunk_size())
      -- a peer's Set Chunk Size outside it fails the feed
      assert.same({ control_msg(1, 65537), { error = "CHUNK_SIZE" } },
        (run({ max_chunk_size = 65536 }, { control(1, 65537) })))
      assert.same({ control_msg(1, 0x80000000), { error = "CHUNK_SIZE" } },
        (run(nil, { control(1, 0x80000000) })))
      assert.same({ control_msg(1, 0), { error = "CHUNK_SIZE" } }, (run(nil, { control(1, 0) })))
      assert.is_nil((rtmp.reader():set_chunk_size(0)))
      assert.is_true(rtmp.reader():set_chunk_size(0x7FFFFFFF))
    end)

    it("raises on bad options", function()
      assert.has_error(function() rtmp.reader{ ext_ts_fmt3 = "sometimes" } end)
      assert.has_error(function() rtmp.reader{ max_message = -1 } end)
      assert.has_error(function() rtmp.reader{ max_chunk_size = 0 } end)
      assert.has_error(function() rtmp.reader(5) end)
    end)
  end)

  it("closes idempotently, through close, __close and __gc", function()
    local r = rtmp.reader()
    r:close()
    r:close()
    assert.has_error(function() r:feed("x") end)
    assert.matches("closed", tostring(r))
    do
      local r2 <close> = rtmp.reader()
      assert(r2:feed(h0(3, 0, 1, 8, 1)))
    end
    local w = rtmp.writer()
    w:close()
    w:close()
    assert.has_error(function() w:write{ csid = 3, type = 8 } end)
    collectgarbage()
  end)
end)

---------------------------------------------------------------------------
-- Writer
---------------------------------------------------------------------------

-- Write msgs with a new writer at chunk size cs; returns the bytes of each.
local function write_all(cs, msgs)
  local w = rtmp.writer()
  assert(w:set_chunk_size(cs))
  local out = {}
  for i, m in ipairs(msgs) do out[i] = w:write(m) end
  return out, w
end

-- Reader log of bytes at chunk size cs, fed in pieces of size piece.
local function read_back(cs, bytes, opts, piece)
  local r = rtmp.reader(opts)
  assert(r:set_chunk_size(cs))
  local log = {}
  piece = piece or #bytes
  for i = 1, math.max(#bytes, 1), piece do
    local msgs, err, code, partial = r:feed(bytes:sub(i, i + piece - 1))
    if not msgs then
      for _, m in ipairs(partial) do log[#log + 1] = m end
      log[#log + 1] = { error = code, message = err }
      break
    end
    for _, m in ipairs(msgs) do log[#log + 1] = m end
  end
  return log
end

local function fmts(log)
  local t = {}
  for i, m in ipairs(log) do t[i] = m.fmt end
  return t
end

-- Messages as the reader reports them (fmt left out).
local function strip(log)
  local t = {}
  for i, m in ipairs(log) do
    t[i] = { csid = m.csid, type = m.type, stream = m.stream, timestamp = m.timestamp, payload = m.payload }
  end
  return t
end

local function as_written(msgs)
  local t = {}
  for i, m in ipairs(msgs) do
    t[i] = { csid = m.csid, type = m.type, stream = m.stream or 0, timestamp = m.timestamp or 0,
             payload = m.payload or "" }
  end
  return t
end

describe("chunk writer", function()
  it("writes the exact bytes of a chunked message", function()
    local w = rtmp.writer()
    assert.equal(128, w:chunk_size())
    assert.equal(h0(3, 0, 2, 20, 0) .. "ab", w:write{ csid = 3, type = 20, payload = "ab" })
    local V = data(300)
    assert.equal(chunks(h0(6, 1000, 300, 9, 1), 6, V, 128),
      w:write{ csid = 6, type = 9, stream = 1, timestamp = 1000, payload = V })
    assert.equal(chunks(h1(6, 40, 300, 8), 6, V, 128),
      w:write{ csid = 6, type = 8, stream = 1, timestamp = 1040, payload = V })
    assert.equal(h0(7, 0, 0, 4, 0), w:write{ csid = 7, type = 4 })
    -- every basic header form, also on continuation chunks
    for _, csid in ipairs{ 2, 63, 64, 319, 320, 65599 } do
      assert.equal(chunks(h0(csid, 1, 130, 9, 1), csid, data(130), 128),
        w:write{ csid = csid, type = 9, stream = 1, timestamp = 1, payload = data(130) })
    end
    -- extended timestamps: on fmt 0 and repeated on every continuation
    assert.equal(chunks(h0(9, 0x1000000, 300, 9, 1), 9, V, 128, 0x1000000),
      w:write{ csid = 9, type = 9, stream = 1, timestamp = 0x1000000, payload = V })
    assert.equal(chunks(h0(10, EXT, 300, 9, 1), 10, V, 128, EXT),
      w:write{ csid = 10, type = 9, stream = 1, timestamp = EXT, payload = V })
    assert.equal(chunks(h0(11, EXT - 1, 300, 9, 1), 11, V, 128),
      w:write{ csid = 11, type = 9, stream = 1, timestamp = EXT - 1, payload = V })
  end)

  it("compresses headers like real peers", function()
    local function seq(msgs) return fmts(read_back(128, table.concat((write_all(128, msgs))))) end
    local function audio(ts, o)
      o = o or {}
      return { csid = 4, type = o.type or 8, stream = o.stream or 1, timestamp = ts, payload = o.payload or data(6) }
    end
    -- same-length audio every 23 ms: fmt 3 after the second message
    assert.same({ 0, 2, 3, 3, 3 }, seq{ audio(0), audio(23), audio(46), audio(69), audio(92) })
    -- irregular spacing: fmt 2
    assert.same({ 0, 2, 2, 3 }, seq{ audio(0), audio(23), audio(47), audio(71) })
    -- video of varying length: fmt 1; same length and delta again: fmt 3
    assert.same({ 0, 1, 1, 3, 1 }, seq{
      audio(0, { type = 9, payload = data(10) }), audio(40, { type = 9, payload = data(20) }),
      audio(80, { type = 9, payload = data(30) }), audio(120, { type = 9, payload = data(30) }),
      audio(160, { type = 9, payload = data(31) }) })
    -- type change: fmt 1; stream change: fmt 0; time going back: fmt 0
    assert.same({ 0, 1, 0, 0, 2 }, seq{ audio(0), audio(10, { type = 9 }), audio(20, { type = 9, stream = 2 }),
      audio(5, { type = 9, stream = 2 }), audio(6, { type = 9, stream = 2 }) })
    -- never fmt 3 right after fmt 0, even when the delta equals the timestamp
    assert.same({ 0, 2, 3 }, seq{ audio(40), audio(80), audio(120) })
    -- a note (message sent as shared fmt 0 bytes) counts as a fmt 0
    local w = rtmp.writer()
    local first = { csid = 6, type = 9, stream = 1, timestamp = 1000, payload = data(20) }
    local shared = rtmp.chunk_fmt0(128, first)
    assert.equal(h0(6, 1000, 20, 9, 1) .. data(20), shared)
    assert.is_true(w:note{ csid = 6, type = 9, stream = 1, timestamp = 1000, length = 20 })
    local nxt = w:write{ csid = 6, type = 9, stream = 1, timestamp = 1040, payload = data(20) }
    assert.equal(h2(6, 40) .. data(20), nxt)
    assert.same({ 0, 2 }, fmts(read_back(128, shared .. nxt)))
  end)

  it("writes a forced fmt as asked and keeps what a reader infers", function()
    local w = rtmp.writer()
    local a = { csid = 4, type = 8, stream = 1, timestamp = 0, payload = "aa" }
    local out = { w:write(a) }
    -- a fmt 0 where fmt 3 would do
    out[2] = w:write{ csid = 4, type = 8, stream = 1, timestamp = 10, payload = "bb", fmt = 0 }
    assert.equal(h0(4, 10, 2, 8, 1) .. "bb", out[2])
    out[3] = w:write{ csid = 4, type = 8, stream = 1, timestamp = 20, payload = "cc", fmt = 2 }
    assert.equal(h2(4, 10) .. "cc", out[3])
    -- a fmt 3 whose timestamp disagrees: the reader repeats the delta (10)
    out[4] = w:write{ csid = 4, type = 8, stream = 1, timestamp = 99, payload = "dd", fmt = 3 }
    assert.equal(h3(4) .. "dd", out[4])
    -- the writer now believes 30, so 40 is the same delta again
    out[5] = w:write{ csid = 4, type = 8, stream = 1, timestamp = 40, payload = "ee" }
    assert.equal(h3(4) .. "ee", out[5])
    local log = read_back(128, table.concat(out))
    assert.same({ 0, 0, 2, 3, 3 }, fmts(log))
    assert.same({ 0, 10, 20, 30, 40 }, { log[1].timestamp, log[2].timestamp, log[3].timestamp,
      log[4].timestamp, log[5].timestamp })
    -- fmt 1 on a fresh chunk stream, as relays do
    local w2 = rtmp.writer()
    local b = w2:write{ csid = 5, type = 8, stream = 7, timestamp = 5, payload = "xyz", fmt = 1 }
    assert.equal(h1(5, 5, 3, 8) .. "xyz", b)
    assert.same({ { error = "FRESH_CSID", message = "new chunk stream does not start with a fmt 0 header" } },
      read_back(128, b))
    assert.same({ M(5, 1, 8, 0, 5, "xyz") }, read_back(128, b, { accept_fresh_fmt = true }))
  end)

  it("round-trips every chunk size and message length", function()
    for _, cs in ipairs{ 1, 2, 127, 128, 129, 4096, 65536 } do
      local msgs = {}
      local ts = 0
      for i, len in ipairs{ 0, 1, cs - 1, cs, cs + 1, 200000 } do
        ts = ts + 33
        msgs[#msgs + 1] = { csid = 3 + i % 3, type = 9, stream = 1, timestamp = ts, payload = data(len, i) }
      end
      local bytes = table.concat((write_all(cs, msgs)))
      local want = as_written(msgs)
      assert.same(want, strip(read_back(cs, bytes)), "chunk size " .. cs)
      assert.same(want, strip(read_back(cs, bytes, nil, 4093)), "chunk size " .. cs .. " in pieces")
    end
  end)

  it("round-trips timestamps across 0xFFFFFF with small and large deltas", function()
    local function run_seq(tss, len)
      local msgs = {}
      for i, ts in ipairs(tss) do
        msgs[i] = { csid = 6, type = 9, stream = 1, timestamp = ts, payload = data(len, i) }
      end
      local bytes = table.concat((write_all(128, msgs)))
      local want = as_written(msgs)
      for _, mode in ipairs{ "detect", "spec" } do
        for _, piece in ipairs{ #bytes, 1, 7 } do
          local log = read_back(128, bytes, { ext_ts_fmt3 = mode }, piece)
          assert.same(want, strip(log), mode .. " in pieces of " .. piece)
        end
      end
      return fmts(read_back(128, bytes)), bytes
    end
    -- deltas of 1 through the 24-bit boundary
    assert.same({ 0, 2, 3, 3, 3, 3 },
      (run_seq({ 0xFFFFFD, 0xFFFFFE, 0xFFFFFF, 0x1000000, 0x1000001, 0x1000002 }, 300)))
    -- deltas of 0xFFFFFF and more: extended on fmt 2 and on fmt 3
    local f, bytes = run_seq({ 0, EXT, 2 * EXT, 0xFFFFFFFF }, 300)
    assert.same({ 0, 2, 3, 2 }, f)
    local w = rtmp.writer()
    local V = data(300, 2)
    assert.equal(chunks(h2(6, EXT), 6, V, 128, EXT), select(2, w:write{ csid = 6, type = 9, stream = 1, payload = data(300, 1) },
      w:write{ csid = 6, type = 9, stream = 1, timestamp = EXT, payload = V }))
    assert.equal(chunks(h3(6, EXT), 6, V, 128, EXT),
      w:write{ csid = 6, type = 9, stream = 1, timestamp = 2 * EXT, payload = V })
    -- a reader that ignores the repeated field misreads these bytes
    local never = read_back(128, bytes, { ext_ts_fmt3 = "never" })
    assert.equal(data(300, 1), never[1].payload)   -- no extended field yet
    assert.is_true(#never < 4 or never[2].payload ~= data(300, 2))
    -- wrapping past 2^32 goes back in time: fmt 0
    assert.same({ 0, 0, 2 }, (run_seq({ 0xFFFFFFFF, 0, 1 }, 5)))
  end)

  it("chunk_fmt0 gives the same bytes as a fresh writer", function()
    for _, cs in ipairs{ 1, 128, 4096 } do
      for _, m in ipairs{
        { csid = 6, type = 9, stream = 1, timestamp = 40, payload = data(5000) },
        { csid = 4, type = 8, stream = 1, timestamp = 0x1234567, payload = data(300) },
        { csid = 400, type = 18, stream = 2, timestamp = 0, payload = "" },
      } do
        local w = rtmp.writer()
        assert(w:set_chunk_size(cs))
        assert.equal(w:write(m), rtmp.chunk_fmt0(cs, m))
      end
    end
  end)

  it("checks its arguments", function()
    local w = rtmp.writer()
    assert.has_error(function() w:write{ type = 8 } end)
    assert.has_error(function() w:write{ csid = 1, type = 8 } end)
    assert.has_error(function() w:write{ csid = 65600, type = 8 } end)
    assert.has_error(function() w:write{ csid = 3 } end)
    assert.has_error(function() w:write{ csid = 3, type = 8, fmt = 4 } end)
    assert.has_error(function() w:write{ csid = 3, type = 8, payload = 5 } end)
    assert.has_error(function() w:write{ csid = 3, type = 8, timestamp = -1 } end)
    assert.has_error(function() rtmp.chunk_fmt0(0, { csid = 3, type = 8 }) end)
    local ok, _, code = w:set_chunk_size(0)
    assert.is_nil(ok)
    assert.equal("CHUNK_SIZE", code)
    assert.is_nil((w:set_chunk_size(0x80000000)))
    assert.is_true(w:set_chunk_size(0x7FFFFFFF))
    assert.equal(0x7FFFFFFF, w:chunk_size())
  end)
end)
