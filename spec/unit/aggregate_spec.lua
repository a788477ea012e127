-- Aggregate messages (type 22): payloads built by hand, fed through a
-- socket-free session at every split size, split into sub-messages with
-- timestamps adjusted as RTMP 1.0 7.1.6, nginx-rtmp and FFmpeg do
-- (aggregate + (own - first)); strict and lenient reading; rebuilt with
-- rtmp.aggregate byte for byte.
local T = require "support.msgs"
local rtmp = require "rtmp"
local pack = string.pack

-- One sub-message: FLV-tag-like header, data, back pointer (11 + size),
-- or the back pointer given.
local function sub(mtype, ts, data, sid, backptr)
  return pack(">B I3 I3 B I3", mtype, #data, ts & 0xFFFFFF, ts >> 24, sid or 0) .. data
    .. pack(">I4", backptr or (11 + #data))
end

local avc_seq = "\x17\0\0\0\0\1\100\0\31\255"
local aac_seq = "\xAF\0\18\16"
local inter = "\x27\1\0\0\0" .. ("v"):rep(200)
local cue = T.str("onCuePoint") .. T.str("x")
local subs = {
  sub(9, 500, avc_seq, 5),
  sub(8, 500, aac_seq, 5),
  sub(9, 540, inter, 5),
  sub(18, 560, cue, 5),
}
local payload = table.concat(subs)

-- Sub-messages as plain tables.
local function log(msgs)
  local t = {}
  for i, m in ipairs(msgs) do
    t[i] = { type = m.type, timestamp = m.timestamp, stream = m.stream, csid = m.csid,
             length = m.length, payload = m.payload, keyframe = m.keyframe,
             sequence_header = m.sequence_header, name = m.name }
  end
  return t
end

local function agg_message(p, ts, sid)
  return { csid = 7, type = 22, stream = sid or 1, timestamp = ts or 1000, payload = p }
end

local function split_one(p, ts, opts)
  local m = T.feed_split(T.chunked{ agg_message(p, ts) }, 4096)[1]
  assert.are.equal("aggregate", m.type_name)
  return m:split(opts)
end

describe("aggregate messages", function()
  it("split at every split size into sub-messages with adjusted timestamps and the aggregate's stream", function()
    local want = {
      { type = 9, timestamp = 1000, stream = 1, csid = 7, length = #avc_seq, payload = avc_seq,
        keyframe = true, sequence_header = true },
      { type = 8, timestamp = 1000, stream = 1, csid = 7, length = #aac_seq, payload = aac_seq,
        keyframe = false, sequence_header = true },
      { type = 9, timestamp = 1040, stream = 1, csid = 7, length = #inter, payload = inter,
        keyframe = false, sequence_header = false },
      { type = 18, timestamp = 1060, stream = 1, csid = 7, length = #cue, payload = cue,
        keyframe = false, sequence_header = false, name = "onCuePoint" },
    }
    local bytes = T.chunked{ agg_message(payload, 1000), agg_message(payload, 1000) }
    T.every_split(bytes, function(msgs, size)
      assert.are.equal(2, #msgs, "split size " .. size)
      for _, m in ipairs(msgs) do
        assert.are.equal(22, m.type)
        assert.are.same(want, log(assert(m:split())), "split size " .. size)
        assert.are.same(want, log(assert(m:split{ strict = true })), "split size " .. size)
      end
    end)
  end)

  it("adjusts across the extended-timestamp byte and modulo 2^32", function()
    local p = sub(9, 0x00FFFFF0, inter) .. sub(9, 0x01000005, inter) .. sub(8, 0x00FFFFF0, aac_seq)
    local got = assert(split_one(p, 100))
    assert.are.same({ 100, 121, 100 }, { got[1].timestamp, got[2].timestamp, got[3].timestamp })
    p = sub(9, 0xFFFFFFF0, inter) .. sub(9, 0x10, inter)
    got = assert(split_one(p, 10))
    assert.are.same({ 10, 42 }, { got[1].timestamp, got[2].timestamp })
  end)

  it("rebuilds the same payload with rtmp.aggregate, and the aggregate carries the first timestamp", function()
    local p = sub(9, 500, avc_seq) .. sub(8, 500, aac_seq) .. sub(9, 540, inter) .. sub(18, 560, cue)
    local msgs = assert(split_one(p, 500))
    local a = rtmp.aggregate(msgs)
    assert.are.equal(22, a.type)
    assert.are.equal(500, a.timestamp)
    assert.are.equal(1, a.stream)
    assert.are.equal(T.hex(p), T.hex(a.payload))
    local b = rtmp.aggregate(msgs, { timestamp = 90, stream = 3 })
    assert.are.same({ 90, 3 }, { b.timestamp, b.stream })
    -- what a receiver makes of it: the original times shifted by 90 - 500
    local again = assert(split_one(b.payload, b.timestamp))
    assert.are.same({ 90, 90, 130, 150 }, { again[1].timestamp, again[2].timestamp,
                                            again[3].timestamp, again[4].timestamp })
  end)

  it("reports every truncation; lenient reading accepts only a missing last back pointer", function()
    local bounds, off = { [0] = 0 }, 0
    for i, s in ipairs(subs) do off = off + #s; bounds[off] = i end
    for cut = 1, #payload - 1 do
      local p = payload:sub(1, cut)
      local strict, serr, scode = split_one(p, 1000, { strict = true })
      local lenient, lerr, lcode = split_one(p, 1000)
      if bounds[cut] then
        assert.are.equal(bounds[cut], #strict, "cut " .. cut)
        assert.are.equal(bounds[cut], #lenient, "cut " .. cut)
      elseif bounds[cut + 4] then
        assert.is_nil(strict, "cut " .. cut)
        assert.are.equal("AGG_TRUNCATED", scode)
        assert.are.equal(bounds[cut + 4], #lenient, "cut " .. cut .. ": " .. tostring(lerr))
      else
        assert.is_nil(strict, "cut " .. cut)
        assert.is_nil(lenient, "cut " .. cut)
        assert.are.equal("AGG_TRUNCATED", scode)
        assert.are.equal("AGG_TRUNCATED", lcode)
        assert.truthy(lerr:find("runs past the end", 1, true), lerr)
      end
    end
  end)

  it("checks back pointers only when strict", function()
    local p = sub(9, 0, inter, 0, 7) .. sub(8, 0, aac_seq)
    local got, err, code = split_one(p, 0, { strict = true })
    assert.is_nil(got)
    assert.are.equal("AGG_BACKPTR", code)
    assert.truthy(err:find("sub-message 1", 1, true), err)
    assert.are.equal(2, #assert(split_one(p, 0)))
  end)

  it("never recurses into a nested aggregate", function()
    local inner = sub(9, 0, inter)
    local p = sub(9, 0, inter) .. sub(22, 0, inner)
    for _, opts in ipairs{ {}, { strict = true } } do
      local got, err, code = split_one(p, 0, opts)
      assert.is_nil(got)
      assert.are.equal("AGG_NESTED", code)
      assert.truthy(err:find("sub-message 2", 1, true), err)
    end
    assert.has_error(function() rtmp.aggregate{ rtmp.message({ type = 22 }, inner) } end)
  end)

  it("refuses control messages inside when strict, skips them when lenient", function()
    local p = sub(9, 0, inter) .. sub(1, 0, pack(">I4", 64)) .. sub(8, 20, aac_seq)
    local got, err, code = split_one(p, 0, { strict = true })
    assert.is_nil(got)
    assert.are.equal("AGG_CONTROL", code)
    assert.truthy(err:find("sub-message 2 at byte " .. (11 + #inter + 4), 1, true), err)
    -- lenient: skipped, and still counted in positions
    local nested = p .. sub(22, 0, "")
    got, err = split_one(nested, 0)
    assert.is_nil(got)
    assert.truthy(err:find("sub-message 4 at byte " .. #p, 1, true), err)
    got = assert(split_one(p, 0))
    assert.are.same({ 9, 8 }, { got[1].type, got[2].type })
    assert.are.equal(20, got[2].timestamp)
  end)

  it("an empty aggregate splits into nothing; a bad sub-message size is truncation", function()
    assert.are.same({}, assert(split_one("", 0)))
    local _, _, code = split_one(pack(">B I3 I3 B I3", 9, 0xFFFFFF, 0, 0, 0) .. "abc", 0)
    assert.are.equal("AGG_TRUNCATED", code)
  end)

  it("is sent as one type 22 message and misuse raises", function()
    local s = T.session()
    local msgs = assert(split_one(payload, 1000))
    assert(s:send({ stream = 1 }, rtmp.aggregate(msgs)))
    local got = assert(rtmp.reader{}:feed(s:output()))
    assert.are.equal(1, #got)
    assert.are.same({ 22, 1, 1000 }, { got[1].type, got[1].stream, got[1].timestamp })
    assert.are.equal(#payload, #got[1].payload)
    assert.has_error(function() rtmp.aggregate{} end)
    assert.has_error(function() rtmp.aggregate{ "not a message" } end)
    assert.has_error(function() rtmp.message({ type = "video" }, "x"):split() end)
  end)
end)

describe("aggregate splitting of mutated payloads", function()
  it("splits or reports an error for 3000 mutations, never a crash", function()
    math.randomseed(22)
    local s = T.session()
    local w = rtmp.writer()
    local ok, failed = 0, 0
    for _ = 1, 3000 do
      local b = { payload:byte(1, -1) }
      for _ = 1, math.random(1, 4) do b[math.random(#b)] = math.random(0, 255) end
      local m = assert(s:feed(w:write(agg_message(string.char(table.unpack(b))))))[1]
      for _, opts in ipairs{ {}, { strict = true } } do
        local got, err, code = m:split(opts)
        if got then
          ok = ok + 1
          for _, sm in ipairs(got) do assert.is_true(sm.type ~= 22) end
        else
          failed = failed + 1
          assert.is_string(err)
          assert.truthy(code:match("^AGG_"), code)
        end
      end
    end
    assert.is_true(ok > 0 and failed > 0, ok .. " split, " .. failed .. " refused")
  end)
end)
