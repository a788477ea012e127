-- The AMF0 codec through rtmp.amf0: golden bytes built here with
-- string.pack for every type, decode -> encode round trips, every
-- truncation of every fixture, hostile counts and lengths, deep nesting,
-- references, and a seeded mutation run that must never crash.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local A = require "support.amfcase"
local amf0 = rtmp.amf0
local null, undefined = rtmp.null, rtmp.undefined

local pack, char, rep = string.pack, string.char, string.rep

-- Byte builders, independent of the C code.
local B = {}
function B.num(v) return pack(">Bd", 0, v) end
function B.bool(v) return pack(">BB", 1, v and 1 or 0) end
function B.str(s) return pack(">Bs2", 2, s) end
function B.lstr(s) return pack(">Bs4", 12, s) end
B.null, B.undef, B.unsupported = "\5", "\6", "\13"
B.END = "\0\0\9"
function B.ref(i) return pack(">BI2", 7, i) end
function B.xml(s) return pack(">Bs4", 15, s) end
function B.date(ms, tz) return pack(">Bdi2", 11, ms, tz) end
-- props: a flat list key1, bytes1, key2, bytes2, ...
local function props(list)
  local out = {}
  for i = 1, #list, 2 do out[#out + 1] = pack(">s2", list[i]) .. list[i + 1] end
  return table.concat(out)
end
function B.obj(list) return "\3" .. props(list) .. B.END end
function B.ecma(count, list, noend) return pack(">BI4", 8, count) .. props(list) .. (noend and "" or B.END) end
function B.typed(cls, list) return pack(">Bs2", 16, cls) .. props(list) .. B.END end
function B.arr(items, count) return pack(">BI4", 10, count or #items) .. table.concat(items) end

local function hex(s) return (s:gsub(".", function(c) return ("%02x "):format(c:byte()) end)) end

local function decode_ok(s, depth)
  local v, msg, code = amf0.decode(s, depth)
  assert(v, ("decode failed: %s (%s) on %s"):format(tostring(msg), tostring(code), hex(s)))
  return v
end

-- encode_values keeps the switches to AMF3 recorded on the values table;
-- for values without any it is the same as amf0.encode(table.unpack(v)).
local function reencode(v)
  local s = amf0.encode_values(v)
  if not getmetatable(v) then assert(s == amf0.encode(table.unpack(v, 1, v.n))) end
  return s
end

local function assert_roundtrip(s)
  local v = decode_ok(s)
  local again = reencode(v)
  assert.are.equal(hex(s), hex(again))
  return v
end

local function assert_fails(s, want_code, depth)
  local v, msg, code = amf0.decode(s, depth)
  assert.is_nil(v, "decode should fail on " .. hex(s:sub(1, 64)))
  assert.are.equal(want_code, code)
  assert.is_string(msg)
  assert.truthy(msg:find(" at byte %d+$"), msg)
  return msg
end

-- The connect command as ffmpeg sends it when publishing.
local CONNECT = B.str("connect") .. B.num(1) .. B.obj{
  "app", B.str("live"),
  "type", B.str("nonprivate"),
  "flashVer", B.str("FMLE/3.0 (compatible; Lavf60.16.100)"),
  "tcUrl", B.str("rtmp://127.0.0.1:1935/live"),
}

-- The server's reply: _result, txn, properties, information.
local CONNECT_RESULT = B.str("_result") .. B.num(1)
  .. B.obj{ "fmsVer", B.str("FMS/3,0,1,123"), "capabilities", B.num(31) }
  .. B.obj{ "level", B.str("status"), "code", B.str("NetConnection.Connect.Success"),
            "description", B.str("Connection succeeded."), "objectEncoding", B.num(0) }

-- onMetaData as ffmpeg's FLV muxer writes it (ECMA array, count 13 while
-- fewer entries follow).
local METADATA = B.str("@setDataFrame") .. B.str("onMetaData") .. B.ecma(13, {
  "duration", B.num(0), "width", B.num(320), "height", B.num(240),
  "videodatarate", B.num(0), "framerate", B.num(25), "videocodecid", B.num(7),
  "encoder", B.str("Lavf60.16.100"), "filesize", B.num(0),
})

-- One encoding of every type, each a single value.
local SINGLE = {
  number = B.num(1.5),
  number_negative_zero = B.num(-0.0),
  number_huge = B.num(1.7976931348623157e308),
  number_inf = B.num(math.huge),
  boolean_true = B.bool(true),
  boolean_false = B.bool(false),
  string_empty = B.str(""),
  string = B.str("hello"),
  string_65535 = B.str(rep("s", 65535)),
  long_string = B.lstr(rep("L", 65536)),
  null = B.null,
  undefined = B.undef,
  unsupported = B.unsupported,
  object_empty = B.obj{},
  object = B.obj{ "b", B.num(2), "a", B.str("x"), "c", B.null },
  object_sorted = B.obj{ "a", B.num(1), "b", B.num(2) },
  object_empty_key = B.obj{ "", B.num(1) },
  object_nested = B.obj{ "inner", B.obj{ "deep", B.obj{ "k", B.bool(true) } } },
  ecma = B.ecma(2, { "x", B.num(1), "y", B.num(2) }),
  ecma_count_low = B.ecma(0, { "duration", B.num(9), "width", B.num(640) }),
  ecma_count_high = B.ecma(10, { "a", B.num(1) }),
  ecma_count_max = B.ecma(0xFFFFFFFF, {}),
  ecma_unsorted = B.ecma(3, { "z", B.num(1), "a", B.num(2), "m", B.undef }),
  strict_array = B.arr{ B.num(1), B.str("two"), B.null, B.undef, B.bool(false) },
  strict_array_empty = B.arr{},
  strict_array_nested = B.arr{ B.arr{ B.num(1) }, B.obj{ "k", B.num(2) } },
  date = B.date(1700000000000, 0),
  date_tz = B.date(-1.5, -300),
  typed = B.typed("flex.messaging.io.ArrayCollection", { "source", B.arr{ B.num(1) }, "length", B.num(1) }),
  typed_empty = B.typed("", {}),
  -- AMF 0 spec §2.17: xml-document-marker, U32 length, UTF-8
  xmldoc = B.xml("<doc><a x=\"1\"/></doc>"),
  xmldoc_empty = B.xml(""),
  -- §3.1: avmplus-object-marker then one AMF 3 value
  switched_object = "\17\10\11\1\3a\4\1\1",
  switched_string = "\17\6\5hi",
}

describe("rtmp.amf0", function()
  describe("golden bytes", function()
    it("encodes the connect command the way ffmpeg sends it", function()
      local s = amf0.encode("connect", 1, amf0.object{
        { "app", "live" },
        { "type", "nonprivate" },
        { "flashVer", "FMLE/3.0 (compatible; Lavf60.16.100)" },
        { "tcUrl", "rtmp://127.0.0.1:1935/live" },
      })
      assert.are.equal(hex(CONNECT), hex(s))
    end)

    it("decodes the connect command and keeps its key order", function()
      local v = decode_ok(CONNECT)
      assert.are.equal(3, v.n)
      assert.are.equal("connect", v[1])
      assert.are.equal(1, v[2])
      assert.is_true(math.type(v[2]) == "float")
      local o = v[3]
      assert.are.equal("live", o.app)
      assert.are.equal("nonprivate", o.type)
      assert.are.equal("rtmp://127.0.0.1:1935/live", o.tcUrl)
      assert.are.same({ "app", "type", "flashVer", "tcUrl" }, getmetatable(o).__keys)
      assert.are.equal("object", amf0.type(o))
      assert.are.equal(hex(CONNECT), hex(reencode(v)))
    end)

    it("encodes a _result reply built from constructors", function()
      local s = amf0.encode("_result", 1,
        amf0.object{ { "fmsVer", "FMS/3,0,1,123" }, { "capabilities", 31 } },
        amf0.object{ { "level", "status" }, { "code", "NetConnection.Connect.Success" },
                     { "description", "Connection succeeded." }, { "objectEncoding", 0 } })
      assert.are.equal(hex(CONNECT_RESULT), hex(s))
    end)

    it("writes the keys of a plain table sorted byte-wise", function()
      local s = amf0.encode{ level = "status", code = "C", description = "D" }
      assert.are.equal(hex(B.obj{ "code", B.str("C"), "description", B.str("D"), "level", B.str("status") }), hex(s))
    end)

    it("writes numbers as big-endian doubles, integers included", function()
      assert.are.equal(hex("\0\63\240\0\0\0\0\0\0"), hex(amf0.encode(1)))
      assert.are.equal(hex(B.num(-2.5)), hex(amf0.encode(-2.5)))
      assert.are.equal(hex(B.num(2 ^ 53)), hex(amf0.encode(math.tointeger(2 ^ 53))))
      local nan = amf0.encode(0 / 0)
      assert.are.equal(9, #nan)
      local v = decode_ok(nan)
      assert.is_true(v[1] ~= v[1])
    end)

    it("writes booleans, null, undefined and nil", function()
      assert.are.equal(hex("\1\1\1\0\5\6\5"), hex(amf0.encode(true, false, null, undefined, nil)))
    end)

    it("switches to a long string above 65535 bytes", function()
      assert.are.equal(hex(B.str(rep("a", 65535)):sub(1, 30)), hex(amf0.encode(rep("a", 65535)):sub(1, 30)))
      assert.are.equal(3 + 65535, #amf0.encode(rep("a", 65535)))
      local long = amf0.encode(rep("b", 65536))
      assert.are.equal(B.lstr(rep("b", 65536)), long)
      assert.are.equal(12, long:byte(1))
    end)

    it("decodes a long string with short content as a string", function()
      local v = decode_ok(B.lstr("hi"))
      assert.are.equal("hi", v[1])
      assert.are.equal("string", amf0.type(v[1]))
    end)

    it("reads any nonzero boolean byte as true", function()
      assert.is_true(decode_ok("\1\2")[1])
    end)

    it("encodes dates, typed objects, ECMA and strict arrays", function()
      assert.are.equal(hex(B.date(1700000000000, -60)), hex(amf0.encode(amf0.date(1700000000000, -60))))
      assert.are.equal(hex(B.date(5, 0)), hex(amf0.encode(amf0.date(5))))
      assert.are.equal(hex(B.typed("Point", { "y", B.num(2), "x", B.num(1) })),
        hex(amf0.encode(amf0.typed("Point", { { "y", 2 }, { "x", 1 } }))))
      assert.are.equal(hex(B.ecma(2, { "w", B.num(1), "h", B.num(2) })),
        hex(amf0.encode(amf0.ecma{ { "w", 1 }, { "h", 2 } })))
      assert.are.equal(hex(B.arr{ B.num(1), B.str("a"), B.null }), hex(amf0.encode{ 1, "a", null }))
      assert.are.equal(hex(B.arr{ B.num(1), B.null, B.num(3) }), hex(amf0.encode(amf0.array{ 1, nil, 3, n = 3 })))
      assert.are.equal(hex(B.arr{}), hex(amf0.encode(amf0.array{})))
    end)

    it("encodes an empty or mixed plain table as an object", function()
      assert.are.equal(hex(B.obj{}), hex(amf0.encode({})))
      assert.are.equal(hex(B.obj{ "1", B.num(10), "2", B.num(20), "x", B.bool(true) }),
        hex(amf0.encode{ 10, 20, x = true }))
      -- a sequence with a hole is not a sequence
      assert.are.equal(hex(B.obj{ "1", B.num(1), "3", B.num(3) }), hex(amf0.encode{ [1] = 1, [3] = 3 }))
    end)

    it("writes __keys first, then the other keys sorted, skipping nil ones", function()
      local o = amf0.object{ { "z", 1 }, { "a", 2 }, { "m", 3 } }
      o.a = nil
      o.b, o.aa = 4, 5
      assert.are.equal(hex(B.obj{ "z", B.num(1), "m", B.num(3), "aa", B.num(5), "b", B.num(4) }),
        hex(amf0.encode(o)))
    end)

    it("keeps a {key, nil} pair as null", function()
      assert.are.equal(hex(B.obj{ "a", B.null, "b", B.num(1) }), hex(amf0.encode(amf0.object{ { "a", nil }, { "b", 1 } })))
    end)

    it("encodes nothing as the empty string", function()
      assert.are.equal("", amf0.encode())
      local v = decode_ok("")
      assert.are.equal(0, v.n)
    end)
  end)

  describe("decoded values", function()
    it("map every type", function()
      local v = decode_ok(B.num(2) .. B.bool(true) .. B.str("s") .. B.null .. B.undef .. B.unsupported
        .. B.obj{ "k", B.num(1) } .. B.ecma(1, { "e", B.num(1) }) .. B.arr{ B.num(1), B.num(2) }
        .. B.date(10, 2) .. B.typed("C", { "f", B.num(1) }) .. B.lstr("long"))
      assert.are.equal(12, v.n)
      local types = {}
      for i = 1, v.n do types[i] = amf0.type(v[i]) end
      assert.are.same({ "number", "boolean", "string", "null", "undefined", "unsupported",
                        "object", "ecma", "array", "date", "typed", "string" }, types)
      assert.are.equal(null, v[4])
      assert.are.equal(undefined, v[5])
      assert.are.equal(amf0.unsupported, v[6])
      assert.are.equal(1, v[7].k)
      assert.are.equal(1, v[8].e)
      assert.are.same({ 1, 2, n = 2 }, v[9])
      assert.are.equal(10, v[10].time)
      assert.are.equal(2, v[10].tz)
      assert.are.equal("C", getmetatable(v[11]).__class)
      assert.are.equal(1, v[11].f)
    end)

    it("map an XML document to { xml = text } and back", function()
      local v = assert_roundtrip(B.str("x") .. SINGLE.xmldoc .. B.num(1))
      assert.are.equal("xmldoc", amf0.type(v[2]))
      assert.are.equal("<doc><a x=\"1\"/></doc>", v[2].xml)
      assert.are.equal(hex(SINGLE.xmldoc), hex(amf0.encode(amf0.xmldoc("<doc><a x=\"1\"/></doc>"))))
      -- not a complex value: it takes no place in the reference table
      local s = B.obj{ "a", B.xml("<a/>"), "self", B.ref(0) }
      local o = assert_roundtrip(s)[1]
      assert.are.equal(o, o.self)
      assert.are.equal(1, amf0.validate(s))
      assert.has_error(function() amf0.encode(setmetatable({}, getmetatable(amf0.xmldoc("")))) end)
    end)

    it("keep null and undefined in array positions", function()
      local v = decode_ok(B.arr{ B.null, B.num(1), B.undef })[1]
      assert.are.equal(3, #v)
      assert.are.equal(null, v[1])
      assert.are.equal(undefined, v[3])
    end)

    it("leave __keys out when the keys came sorted", function()
      local v = decode_ok(SINGLE.object_sorted)[1]
      assert.is_nil(getmetatable(v).__keys)
      assert.are.equal("object", getmetatable(v).__amf)
    end)

    it("keep the declared ECMA count only when it differs", function()
      assert.is_nil(getmetatable(decode_ok(SINGLE.ecma)[1]).__count)
      assert.are.equal(0, getmetatable(decode_ok(SINGLE.ecma_count_low)[1]).__count)
      assert.are.equal(10, getmetatable(decode_ok(SINGLE.ecma_count_high)[1]).__count)
      assert.are.equal(0xFFFFFFFF, getmetatable(decode_ok(SINGLE.ecma_count_max)[1]).__count)
    end)

    it("decode onMetaData from an FLV muxer with a wrong ECMA count", function()
      local v = assert_roundtrip(METADATA)
      assert.are.equal("onMetaData", v[2])
      assert.are.equal(320, v[3].width)
      assert.are.equal("Lavf60.16.100", v[3].encoder)
      assert.are.equal(13, getmetatable(v[3]).__count)
    end)
  end)

  describe("round trips decode -> encode", function()
    for name, s in pairs(SINGLE) do
      it("give the same bytes: " .. name, function()
        assert_roundtrip(s)
      end)
    end

    it("give the same bytes for the whole sequence of fixtures", function()
      local names = {}
      for name in pairs(SINGLE) do names[#names + 1] = name end
      table.sort(names)
      local parts = {}
      for _, name in ipairs(names) do parts[#parts + 1] = SINGLE[name] end
      local v = assert_roundtrip(table.concat(parts))
      assert.are.equal(#names, v.n)
    end)

    it("give the same bytes for commands and metadata", function()
      assert_roundtrip(CONNECT)
      assert_roundtrip(CONNECT_RESULT)
      assert_roundtrip(METADATA)
    end)

    it("reproduce an ECMA array that ends with the input and no end marker", function()
      local s = B.str("onMetaData") .. B.ecma(2, { "a", B.num(1), "b", B.num(2) }, true)
      local v = assert_roundtrip(s)
      assert.is_true(getmetatable(v[2]).__noend)
      assert.are.equal(2, v[2].b)
    end)

    it("keep modifications of decoded tables", function()
      local v = decode_ok(CONNECT)
      v[3].app = "other"
      local again = decode_ok(reencode(v))
      assert.are.equal("other", again[3].app)
      assert.are.same({ "app", "type", "flashVer", "tcUrl" }, getmetatable(again[3]).__keys)
    end)
  end)

  describe("references", function()
    local A = B.obj{ "name", B.str("a") }

    it("decode as the same table", function()
      local v = decode_ok(A .. B.obj{ "x", B.ref(0), "y", B.ref(1) })
      assert.are.equal(v[1], v[2].x)
      assert.are.equal(v[2], v[2].y)
      assert.are.equal("a", v[2].x.name)
    end)

    it("count objects, typed objects, ECMA and strict arrays in the order they begin", function()
      -- index: 0 outer array, 1 object, 2 ECMA, 3 typed, 4 inner array; dates do not count
      local s = B.arr{
        B.obj{ "k", B.date(1, 0) },
        B.ecma(0, {}),
        B.typed("T", {}),
        B.arr{ B.ref(0), B.ref(1), B.ref(2), B.ref(3), B.ref(4) },
      }
      local v = assert_roundtrip(s)[1]
      local inner = v[4]
      assert.are.equal(v, inner[1])
      assert.are.equal(v[1], inner[2])
      assert.are.equal(v[2], inner[3])
      assert.are.equal(v[3], inner[4])
      assert.are.equal(inner, inner[5])
      assert_fails(B.arr{ B.obj{ "k", B.date(1, 0) }, B.ref(2) }, "AMF_REFERENCE")
    end)

    it("round-trip, self references included", function()
      assert_roundtrip(A .. B.obj{ "x", B.ref(0) })
      assert_roundtrip(B.obj{ "self", B.ref(0), "n", B.num(1) })
      assert_roundtrip(B.arr{ A, B.ref(1), B.ref(0) })
      assert_roundtrip(B.ecma(1, { "me", B.ref(0) }))
    end)

    it("span the values of one message", function()
      local v = decode_ok(A .. B.ref(0))
      assert.are.equal(v[1], v[2])
      -- between top-level values nothing records the reference, so the
      -- table is written out again
      assert.are.equal(hex(A .. A), hex(reencode(v)))
    end)

    it("out of range fail with AMF_REFERENCE", function()
      assert_fails(B.ref(0), "AMF_REFERENCE")
      assert_fails(A .. B.ref(1), "AMF_REFERENCE")
      assert_fails(B.obj{ "x", B.ref(1) }, "AMF_REFERENCE")
      assert_fails(B.obj{ "x", B.ref(0xFFFF) }, "AMF_REFERENCE")
      local msg = assert_fails(A .. B.ref(7), "AMF_REFERENCE")
      assert.truthy(msg:find("at byte " .. #A, 1, true), msg)
    end)

    it("are not invented by encode: a table met twice is written twice", function()
      local t = { level = "status" }
      local once = amf0.encode(t)
      assert.are.equal(hex(once .. once), hex(amf0.encode(t, t)))
      assert.are.equal(hex(B.obj{ "a", once, "b", once }), hex(amf0.encode{ a = t, b = t }))
    end)
  end)

  describe("malformed input", function()
    -- Decode s cut to cut bytes: an AMF_TRUNCATED error naming an offset
    -- inside the prefix, or (only an ECMA array, which may end with the
    -- input at an entry boundary) that shorter array, encoding to itself.
    local function check_cut(name, s, cut)
      local prefix = s:sub(1, cut)
      local ok, v, msg, code = pcall(amf0.decode, prefix)
      assert(ok, name .. ": decode raised: " .. tostring(v))
      if v then
        assert(name:match("^ecma"), ("%s cut at %d decoded"):format(name, cut))
        assert.is_true(getmetatable(v[1]).__noend)
        assert.are.equal(hex(prefix), hex(reencode(v)))
      else
        assert.are.equal("AMF_TRUNCATED", code)
        local at = tonumber(msg:match("at byte (%d+)$"))
        assert(at and at <= cut, ("%s cut at %d: bad offset in %q"):format(name, cut, msg))
      end
    end

    it("fails at every truncation of every fixture", function()
      for name, s in pairs(SINGLE) do
        for cut = 1, #s - 1 do
          -- the 64 KiB strings: every cut near either end, a stride between
          if #s < 1024 or cut < 100 or cut > #s - 100 or cut % 997 == 0 then
            check_cut(name, s, cut)
          end
        end
      end
    end)

    it("accepts an ECMA array cut just before its end marker only at the end of input", function()
      local s = SINGLE.ecma
      local v = decode_ok(s:sub(1, #s - 3))
      assert.is_true(getmetatable(v[1]).__noend)
      assert_fails(B.obj{ "e", s:sub(1, #s - 3) }, "AMF_TRUNCATED")
    end)

    it("fails or decodes to itself at every cut of a command sequence", function()
      local boundaries = {}
      local pos = 0
      for _, part in ipairs{ B.str("connect"), B.num(1), SINGLE.object, SINGLE.strict_array, SINGLE.date } do
        pos = pos + #part
        boundaries[pos] = true
      end
      local s = B.str("connect") .. B.num(1) .. SINGLE.object .. SINGLE.strict_array .. SINGLE.date
      local succeeded = 0
      for cut = 1, #s do
        local prefix = s:sub(1, cut)
        local v, msg, code = amf0.decode(prefix)
        if v then
          succeeded = succeeded + 1
          assert(boundaries[cut], "decoded a prefix that ends inside a value: " .. cut)
          assert.are.equal(hex(prefix), hex(reencode(v)))
        else
          assert(not boundaries[cut], "failed at a value boundary: " .. cut .. " " .. msg)
          assert.are.equal("AMF_TRUNCATED", code)
        end
      end
      assert.are.equal(5, succeeded)
    end)

    it("rejects reserved and unknown markers", function()
      for _, m in ipairs{ 4, 9, 14, 18, 0x7F, 0xFF } do
        local msg = assert_fails(char(m), "AMF_MARKER")
        assert.truthy(msg:find("at byte 0", 1, true))
        assert_fails(B.num(1) .. B.obj{ "k", char(m) .. "\0\0\0\0" }, "AMF_MARKER")
      end
      -- an XML document longer than the input, a switch with no value
      assert_fails(B.arr{ B.num(1), "\15\0\0\0\2x" }, "AMF_TRUNCATED")
      assert_fails(B.arr{ B.num(1), "\17" }, "AMF_TRUNCATED")
    end)

    it("names the offset of the failing item", function()
      local s = B.str("connect") .. B.num(1) .. "\3" .. pack(">s2", "app") .. "\2\0\9abc"
      local msg = assert_fails(s, "AMF_TRUNCATED")
      assert.are.equal("AMF value truncated at byte " .. (#B.str("connect") + 9 + 1 + 5), msg)
    end)

    it("checks hostile counts and lengths before using them", function()
      local t0 = os.clock()
      -- strict array of 2^32-1 elements with 5 bytes left: the count is
      -- refused before any element is read (the error names the array)
      local msg = assert_fails(pack(">BI4", 10, 0xFFFFFFFF) .. "\5\5\5\5\5", "AMF_TRUNCATED")
      assert.are.equal("AMF value truncated at byte 0", msg)
      msg = assert_fails(B.num(1) .. pack(">BI4", 10, 6) .. "\5\5\5\5\5", "AMF_TRUNCATED")
      assert.are.equal("AMF value truncated at byte 9", msg)
      decode_ok(pack(">BI4", 10, 5) .. "\5\5\5\5\5")
      -- ECMA array claiming 2^32-1 entries: the count is only a hint, the
      -- bytes decide, so a partial entry fails and nothing loops
      assert_fails(pack(">BI4", 8, 0xFFFFFFFF) .. "\0\1a\0\0", "AMF_TRUNCATED")
      assert_fails(pack(">BI4", 8, 0xFFFFFFFF) .. "\0\1", "AMF_TRUNCATED")
      -- (a bare header at the end of the input is an ECMA array whose end
      -- marker was left out: empty, the count kept)
      local e = decode_ok(pack(">BI4", 8, 0xFFFFFFFF))[1]
      assert.is_nil(next(e))
      assert.are.equal(0xFFFFFFFF, getmetatable(e).__count)
      -- string lengths past the end
      assert_fails(pack(">BI4", 12, 0xFFFFFFFF) .. "abcd", "AMF_TRUNCATED")
      assert_fails(pack(">BI2", 2, 0xFFFF) .. "abc", "AMF_TRUNCATED")
      assert_fails("\3" .. pack(">I2", 0xFFFF) .. "k", "AMF_TRUNCATED")
      assert_fails(pack(">BI2", 16, 0xFFFF) .. "Cls", "AMF_TRUNCATED")
      -- nested strict arrays each claiming 2^32-1
      assert_fails(rep(pack(">BI4", 10, 0xFFFFFFFF), 3), "AMF_TRUNCATED")
      assert.is_true(os.clock() - t0 < 1)
    end)

    it("treats an empty key before a value as a property named \"\"", function()
      local v = decode_ok(B.obj{ "", B.num(7) })
      assert.are.equal(7, v[1][""])
      assert_fails("\3\0\0", "AMF_TRUNCATED")
      assert_fails("\3\0", "AMF_TRUNCATED")
    end)

    it("rejects a non-empty key followed by an object end", function()
      assert_fails("\3\0\1k\9", "AMF_MARKER")
    end)

    it("survives seeded random mutations of valid encodings", function()
      local seeds = { CONNECT, CONNECT_RESULT, METADATA, SINGLE.typed, SINGLE.strict_array_nested,
                      SINGLE.object_nested, B.arr{ B.obj{ "s", B.ref(0) }, B.ref(1) } }
      local rnd = A.rng(12345)
      local decoded = 0
      for round = 1, 3000 do
        local m = A.mutate(seeds[round % #seeds + 1], rnd, 4)
        local ok, v, msg, code = pcall(amf0.decode, m)
        assert(ok, "decode raised on " .. hex(m) .. ": " .. tostring(v))
        if v then
          decoded = decoded + 1
          -- what decodes must encode again (no cycle: references become
          -- references) and decode to the same shape
          local again = reencode(v)
          assert.are.equal(v.n, decode_ok(again).n)
        else
          assert.is_string(msg)
          assert.truthy(code:match("^AMF_"), code)
        end
      end
      assert.is_true(decoded > 0)
    end)
  end)

  describe("nesting depth", function()
    local function nested_objects(n)
      return rep("\3\0\1k", n) .. "\5" .. rep(B.END, n)
    end

    it("accepts max_depth levels and fails with AMF_DEPTH past them", function()
      assert_roundtrip(nested_objects(32))
      assert_fails(nested_objects(33), "AMF_DEPTH")
      decode_ok(nested_objects(16), 16)
      assert_fails(nested_objects(17), "AMF_DEPTH", 16)
      decode_ok(B.num(1), 0)
      assert_fails(B.obj{}, "AMF_DEPTH", 0)
      decode_ok(nested_objects(500), 500)
      assert_fails(rep(pack(">BI4", 10, 1), 33) .. "\5", "AMF_DEPTH")
      decode_ok(rep(pack(">BI4", 10, 1), 32) .. "\5")
    end)

    it("stops 100,000 nested containers of every kind without a crash", function()
      local n = 100000
      assert_fails(nested_objects(n), "AMF_DEPTH")
      assert_fails(rep(pack(">BI4", 10, 1), n) .. "\5", "AMF_DEPTH")
      assert_fails(rep(pack(">BI4", 8, 1) .. "\0\1k", n) .. "\5", "AMF_DEPTH")
      assert_fails(rep(pack(">Bs2", 16, "C") .. "\0\1k", n) .. "\5", "AMF_DEPTH")
      -- also cut short: the depth error comes before the truncation
      assert_fails(rep("\3\0\1k", n), "AMF_DEPTH")
      local ok, msg = pcall(amf0.decode, nested_objects(10), 100000)
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("out of range"))
    end)

    it("raises when encoding tables nested past the limit", function()
      local function nest(n)
        local t = {}
        local root = t
        for _ = 2, n do t.k = {}; t = t.k end
        return root
      end
      assert.are.equal(hex(rep("\3\0\1k", 31) .. B.obj{} .. rep(B.END, 31)), hex(amf0.encode(nest(32))))
      local ok, err = pcall(amf0.encode, nest(33))
      assert.is_false(ok)
      assert.truthy(err:find("nested deeper than 32"), err)
      ok = pcall(amf0.encode, nest(100000))
      assert.is_false(ok)
    end)
  end)

  describe("encoding errors", function()
    it("raise for values with no AMF0 form", function()
      assert.has_error(function() amf0.encode(print) end)
      assert.has_error(function() amf0.encode(coroutine.create(print)) end)
      assert.has_error(function() amf0.encode(io.stdout) end)
      assert.has_error(function() amf0.encode{ [true] = 1 } end)
      assert.has_error(function() amf0.encode{ k = print } end)
      assert.has_error(function() amf0.encode{ [rep("k", 65536)] = 1 } end)
      assert.has_error(function() amf0.encode(amf0.typed(rep("C", 65536), {})) end)
      assert.has_error(function() amf0.encode(setmetatable({ time = "x" }, getmetatable(amf0.date(0)))) end)
      assert.has_error(function() amf0.date(0, 40000) end)
    end)

    it("raise for a cycle", function()
      local t = { name = "loop" }
      t.self = t
      local ok, err = pcall(amf0.encode, t)
      assert.is_false(ok)
      assert.truthy(err:find("cycle"), err)
      local a = { 1 }
      a[2] = { a }
      assert.has_error(function() amf0.encode(a) end)
    end)
  end)

  describe("constructors and sentinels", function()
    it("build ordered tables", function()
      local o = amf0.object{ { "b", 1 }, { "a", 2 }, c = 3 }
      assert.are.equal("object", amf0.type(o))
      assert.are.same({ "b", "a" }, getmetatable(o).__keys)
      assert.are.equal(3, o.c)
      assert.are.equal("ecma", amf0.type(amf0.ecma{}))
      assert.are.equal("array", amf0.type(amf0.array{}))
      assert.are.equal("date", amf0.type(amf0.date(0)))
      local t = amf0.typed("Cls", { { "x", 1 } })
      assert.are.equal("typed", amf0.type(t))
      assert.are.equal("Cls", getmetatable(t).__class)
      assert.has_error(function() amf0.object{ { 1, 2 } } end)
      assert.has_error(function() amf0.object{ "notapair" } end)
    end)

    it("type() names every value", function()
      assert.are.equal("number", amf0.type(1))
      assert.are.equal("boolean", amf0.type(false))
      assert.are.equal("string", amf0.type(""))
      assert.are.equal("null", amf0.type(null))
      assert.are.equal("null", amf0.type(nil))
      assert.are.equal("undefined", amf0.type(undefined))
      assert.are.equal("object", amf0.type({}))
      assert.are.equal("array", amf0.type({ 1 }))
      assert.is_nil(amf0.type(print))
    end)

    it("are unique, printable, and shared with the binding", function()
      assert.are_not.equal(null, undefined)
      assert.are.equal("rtmp.null", tostring(null))
      assert.are.equal("rtmp.undefined", tostring(undefined))
      assert.are.equal(rtmp.null, decode_ok("\5")[1])
      assert.are.equal(rtmp.undefined, decode_ok("\6")[1])
      assert.are.equal(hex("\5\6\13"), hex(amf0.encode(null, undefined, amf0.unsupported)))
    end)
  end)
end)
