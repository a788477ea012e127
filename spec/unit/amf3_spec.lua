-- The AMF3 codec through rtmp.amf3, and AMF3 inside AMF0 (marker 0x11).
-- Golden bytes are built here (a U29 writer in Lua, hex written by hand
-- from the AMF 3 specification, January 2013, sections cited), each
-- checked both ways: decoded Lua values, and the exact bytes the encoder
-- gives back.  Then reference tables, every error path, nesting limits
-- and a seeded mutation run.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local A = require "support.amfcase"
local amf0, amf3 = rtmp.amf0, rtmp.amf3
local null, undefined = rtmp.null, rtmp.undefined

local pack, char, rep = string.pack, string.char, string.rep

local function hex(s) return (s:gsub(".", function(c) return ("%02x "):format(c:byte()) end)) end
local function unhex(h) return (h:gsub("%s+", ""):gsub("..", function(b) return char(tonumber(b, 16)) end)) end

-- §1.3.1: U29, 7 bits per byte with a continuation bit, the 4th byte whole.
local function u29(v)
  assert(v >= 0 and v < 2 ^ 29)
  if v < 0x80 then return char(v) end
  if v < 0x4000 then return char(v >> 7 | 0x80, v & 0x7F) end
  if v < 0x200000 then return char(v >> 14 | 0x80, (v >> 7) & 0x7F | 0x80, v & 0x7F) end
  return char(v >> 22 | 0x80, (v >> 15) & 0x7F | 0x80, (v >> 8) & 0x7F | 0x80, v & 0xFF)
end
local B = {}
function B.vr(s) return u29(#s << 1 | 1) .. s end           -- §1.3.2 UTF-8-vr, inline
function B.sref(i) return u29(i << 1) end                   -- string reference
function B.str(s) return "\6" .. B.vr(s) end                -- §3.8
function B.int(i) return "\4" .. u29(i & 0x1FFFFFFF) end    -- §3.6
function B.dbl(d) return pack(">Bd", 5, d) end              -- §3.7
function B.oref(m, i) return char(m) .. u29(i << 1) end     -- object reference
function B.date(ms) return "\8\1" .. pack(">d", ms) end     -- §3.10
-- §3.11: dense count, associative pairs up to the empty string, dense values
function B.arr(dense, assoc)
  local out = { "\9", u29(#dense << 1 | 1) }
  for i = 1, #(assoc or {}), 2 do out[#out + 1] = B.vr(assoc[i]) .. assoc[i + 1] end
  out[#out + 1] = "\1"
  for _, v in ipairs(dense) do out[#out + 1] = v end
  return table.concat(out)
end
-- §3.12: an anonymous dynamic object with inline traits (0x0B, class "")
function B.obj(members)
  local out = { "\10\11\1" }
  for i = 1, #members, 2 do out[#out + 1] = B.vr(members[i]) .. members[i + 1] end
  out[#out + 1] = "\1"
  return table.concat(out)
end

local function decode_ok(s, depth)
  local v, msg, code = amf3.decode(s, depth)
  assert(v, ("decode failed: %s (%s) on %s"):format(tostring(msg), tostring(code), hex(s:sub(1, 80))))
  return v
end

local function assert_roundtrip(s)
  local v = decode_ok(s)
  assert.are.equal(hex(s), hex(amf3.encode(table.unpack(v, 1, v.n))))
  return v
end

local function assert_fails(s, want, depth)
  local v, msg, code = amf3.decode(s, depth)
  assert.is_nil(v, "decode should fail on " .. hex(s:sub(1, 64)))
  assert.are.equal(want, code, msg)
  assert.truthy(msg:find(" at byte %d+$"), msg)
  -- the core's skip agrees
  local n, _, vcode = amf3.validate(s, depth)
  assert.is_nil(n)
  if want ~= "AMF_EXTERNALIZABLE" then assert.are.equal(want, vcode) end
  return msg
end

-- One value of every type, as a real encoder writes it.
local AC = "flex.messaging.io.ArrayCollection"
local SINGLE = {
  undefined = "\0",
  null = "\1",
  ["false"] = "\2",
  ["true"] = "\3",
  int_0 = "\4\0",
  int_127 = "\4\127",
  int_128 = unhex "04 81 00",
  int_16383 = unhex "04 ff 7f",
  int_16384 = unhex "04 81 80 00",
  int_2097151 = unhex "04 ff ff 7f",
  int_2097152 = unhex "04 80 c0 80 00",
  int_max = unhex "04 bf ff ff ff",          -- 2^28-1
  int_minus_1 = unhex "04 ff ff ff ff",
  int_min = unhex "04 c0 80 80 00",          -- -2^28
  double = B.dbl(1.5),
  double_integral = B.dbl(1.0),
  double_big = B.dbl(2 ^ 28),
  string_empty = "\6\1",
  string = B.str("hello"),
  string_long = B.str(rep("x", 70000)),
  xmldoc = "\7" .. B.vr("<a/>"),
  date = B.date(1700000000000),
  array_empty = "\9\1\1",
  array_dense = B.arr{ B.int(1), B.str("two"), "\1", "\0" },
  array_assoc = B.arr({ B.int(2), B.int(3) }, { "a", B.int(1), "n", B.str("member n") }),
  array_assoc_only = B.arr({}, { "z", "\3", "a", "\2" }),
  object_empty = B.obj{},
  object = B.obj{ "b", B.int(2), "a", B.str("x") },
  object_sorted = B.obj{ "a", B.int(1), "b", B.int(2) },
  -- typed, 2 sealed members, not dynamic: traits U29 (2 << 4) | 3 = 0x23
  typed_sealed = "\10\35" .. B.vr("Foo") .. B.vr("x") .. B.vr("y") .. B.int(1) .. B.int(2),
  -- typed, 1 sealed, dynamic: (1 << 4) | 8 | 3 = 0x1b
  typed_dynamic = "\10\27" .. B.vr("Bar") .. B.vr("s") .. B.int(1) .. B.vr("d") .. B.int(2) .. "\1",
  -- anonymous, sealed only (class ""): 0x13
  anon_sealed = "\10\19\1" .. B.vr("k") .. "\3",
  xml = "\11" .. B.vr("<x>e4x</x>"),
  bytearray = "\12" .. B.vr("\0\1\2\255"),
  bytearray_empty = "\12\1",
  vector_int = "\13" .. u29(3 << 1 | 1) .. "\0" .. pack(">i4i4i4", 1, -2, 2147483647),
  vector_int_fixed = "\13" .. u29(1 << 1 | 1) .. "\1" .. pack(">i4", -2147483648),
  vector_uint = "\14" .. u29(2 << 1 | 1) .. "\0" .. pack(">I4I4", 4294967295, 0),
  vector_double = "\15" .. u29(2 << 1 | 1) .. "\0" .. pack(">dd", 0.5, -1e300),
  vector_object = "\16" .. u29(2 << 1 | 1) .. "\1" .. B.vr("Foo") .. B.int(1) .. B.str("a"),
  vector_object_empty = "\16\1\0\1",
  dictionary = "\17" .. u29(2 << 1 | 1) .. "\0" .. B.str("k") .. B.int(1) .. B.int(2) .. B.str("v"),
  dictionary_weak = "\17" .. u29(1 << 1 | 1) .. "\1" .. B.obj{} .. "\3",
  -- externalizable (0x07), body one AMF3 value (registered by default)
  external = "\10\7" .. B.vr(AC) .. B.arr{ B.int(1), B.int(2) },
}

describe("rtmp.amf3", function()
  describe("golden bytes", function()
    it("U29 integers at every length boundary (§1.3.1, §3.6)", function()
      local cases = {
        { 0, "04 00" }, { 127, "04 7f" }, { 128, "04 81 00" }, { 16383, "04 ff 7f" },
        { 16384, "04 81 80 00" }, { 2097151, "04 ff ff 7f" }, { 2097152, "04 80 c0 80 00" },
        { 268435455, "04 bf ff ff ff" }, { -1, "04 ff ff ff ff" }, { -268435456, "04 c0 80 80 00" },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(c[2] .. " ", hex(amf3.encode(c[1])))
        local v = decode_ok(unhex(c[2]))[1]
        assert.are.equal(c[1], v)
        assert.are.equal("integer", math.type(v))
      end
    end)

    it("integers outside 29 bits and floats become doubles (§3.7)", function()
      assert.are.equal(hex(B.dbl(2 ^ 28)), hex(amf3.encode(1 << 28)))
      assert.are.equal(hex(B.dbl(-(2 ^ 28) - 1)), hex(amf3.encode(-(1 << 28) - 1)))
      assert.are.equal(hex(B.dbl(1.0)), hex(amf3.encode(1.0)))
      local v = decode_ok(B.dbl(1.0))[1]
      assert.are.equal("float", math.type(v))
      assert.are.equal("double", amf3.type(v))
      assert.are.equal("integer", amf3.type(1))
      assert.are.equal("double", amf3.type(1 << 40))
    end)

    it("scalars, strings and sentinels", function()
      assert.are.equal(hex("\0\1\2\3\1"), hex(amf3.encode(undefined, null, false, true, nil)))
      assert.are.equal(hex(B.str("hello")), hex(amf3.encode("hello")))
      assert.are.equal(hex("\6\1"), hex(amf3.encode("")))
      local v = decode_ok("\0\1\2\3")
      assert.are.equal(undefined, v[1])
      assert.are.equal(null, v[2])
      assert.is_false(v[3])
      assert.is_true(v[4])
    end)

    it("map every type to the documented Lua values", function()
      local v
      v = decode_ok(SINGLE.xmldoc)[1]
      assert.are.equal("xmldoc", amf3.type(v)); assert.are.equal("<a/>", v.xml)
      v = decode_ok(SINGLE.xml)[1]
      assert.are.equal("xml", amf3.type(v)); assert.are.equal("<x>e4x</x>", v.xml)
      v = decode_ok(SINGLE.date)[1]
      assert.are.equal("date", amf3.type(v)); assert.are.equal(1700000000000, v.time); assert.is_nil(v.tz)
      v = decode_ok(SINGLE.bytearray)[1]
      assert.are.equal("bytearray", amf3.type(v)); assert.are.equal("\0\1\2\255", v.data)
      v = decode_ok(SINGLE.array_dense)[1]
      assert.are.equal("array", amf3.type(v))
      assert.are.same({ 1, "two", null, undefined, n = 4 }, v)
      v = decode_ok(SINGLE.array_assoc)[1]
      assert.are.equal(2, v[1]); assert.are.equal(3, v[2]); assert.are.equal(1, v.a)
      assert.are.equal("member n", v.n)
      assert.are.equal(2, getmetatable(v).__n)
      assert.is_nil(getmetatable(v).__keys)  -- "a", "n" came sorted
      v = decode_ok(SINGLE.object)[1]
      assert.are.equal("object", amf3.type(v))
      assert.are.equal(2, v.b); assert.are.equal("x", v.a)
      assert.are.same({ "b", "a" }, getmetatable(v).__keys)
      assert.is_nil(getmetatable(decode_ok(SINGLE.object_sorted)[1]).__keys)
      v = decode_ok(SINGLE.typed_sealed)[1]
      local mt = getmetatable(v)
      assert.are.equal("typed", mt.__amf); assert.are.equal("Foo", mt.__class)
      assert.are.same({ "x", "y" }, mt.__sealed); assert.is_false(mt.__dynamic)
      assert.are.equal(1, v.x); assert.are.equal(2, v.y)
      v = decode_ok(SINGLE.typed_dynamic)[1]
      mt = getmetatable(v)
      assert.are.same({ "s" }, mt.__sealed); assert.is_nil(mt.__dynamic)
      assert.are.equal(1, v.s); assert.are.equal(2, v.d)
      v = decode_ok(SINGLE.vector_int)[1]
      assert.are.equal("vector_int", amf3.type(v)); assert.are.same({ 1, -2, 2147483647, n = 3 }, v)
      assert.is_nil(getmetatable(v).__fixed)
      assert.is_true(getmetatable(decode_ok(SINGLE.vector_int_fixed)[1]).__fixed)
      assert.are.same({ 4294967295, 0, n = 2 }, decode_ok(SINGLE.vector_uint)[1])
      v = decode_ok(SINGLE.vector_double)[1]
      assert.are.same({ 0.5, -1e300, n = 2 }, v); assert.are.equal("float", math.type(v[1]))
      v = decode_ok(SINGLE.vector_object)[1]
      assert.are.equal("Foo", getmetatable(v).__type); assert.is_true(getmetatable(v).__fixed)
      assert.are.same({ 1, "a", n = 2 }, v)
      v = decode_ok(SINGLE.dictionary)[1]
      assert.are.equal("dictionary", amf3.type(v))
      assert.are.same({ { "k", 1 }, { 2, "v" } }, v)
      assert.is_true(getmetatable(decode_ok(SINGLE.dictionary_weak)[1]).__weak)
      v = decode_ok(SINGLE.external)[1]
      assert.are.equal("external", amf3.type(v)); assert.are.equal(AC, getmetatable(v).__class)
      assert.are.same({ 1, 2, n = 2 }, v.value)
    end)

    it("constructors build what the decoder gives", function()
      assert.are.equal(hex(SINGLE.typed_sealed),
        hex(amf3.encode(amf3.typed("Foo", { { "x", 1 }, { "y", 2 } }, { "x", "y" }, false))))
      assert.are.equal(hex(SINGLE.xml), hex(amf3.encode(amf3.xml("<x>e4x</x>"))))
      assert.are.equal(hex(SINGLE.xmldoc), hex(amf3.encode(amf3.xmldoc("<a/>"))))
      assert.are.equal(hex(SINGLE.bytearray), hex(amf3.encode(amf3.bytearray("\0\1\2\255"))))
      assert.are.equal(hex(SINGLE.date), hex(amf3.encode(amf3.date(1700000000000))))
      assert.are.equal(hex(SINGLE.vector_int), hex(amf3.encode(amf3.vector("int", { 1, -2, 2147483647 }))))
      assert.are.equal(hex(SINGLE.vector_object),
        hex(amf3.encode(amf3.vector("object", { 1, "a" }, true, "Foo"))))
      assert.are.equal(hex(SINGLE.dictionary), hex(amf3.encode(amf3.dictionary{ { "k", 1 }, { 2, "v" } })))
      assert.are.equal(hex(SINGLE.external), hex(amf3.encode(amf3.external(AC, { 1, 2 }))))
      assert.are.equal(hex(SINGLE.array_dense), hex(amf3.encode(amf3.array{ 1, "two", null, undefined })))
      -- a plain table that is not a sequence: anonymous dynamic object, keys sorted
      assert.are.equal(hex(B.obj{ "a", B.int(1), "b", B.str("x") }), hex(amf3.encode{ b = "x", a = 1 }))
      -- an AMF0 ECMA array: an associative-only array
      assert.are.equal(hex(B.arr({}, { "w", B.int(1), "h", B.int(2) })),
        hex(amf3.encode(amf0.ecma{ { "w", 1 }, { "h", 2 } })))
    end)
  end)

  describe("round trips decode -> encode", function()
    for name, s in pairs(SINGLE) do
      it("give the same bytes: " .. name, function()
        assert_roundtrip(s)
        if name ~= "external" then  -- the core skips no externalizable body
          assert.are.equal(1, amf3.validate(s))
        end
      end)
    end

    it("share one context among the values of one call", function()
      -- the same string at top level twice: the second is a reference
      local s = B.str("hi") .. "\6" .. B.sref(0)
      assert.are.equal(hex(s), hex(amf3.encode("hi", "hi")))
      local v = assert_roundtrip(s)
      assert.are.equal("hi", v[2])
      local t = { k = 1 }
      local two = amf3.encode(t, t)
      assert.are.equal(hex(B.obj{ "k", B.int(1) } .. B.oref(10, 0)), hex(two))
      local d = assert_roundtrip(two)
      assert.are.equal(d[1], d[2])
      assert.are.equal(2, amf3.validate(two))
      assert_fails(B.str("hi") .. "\6" .. B.sref(1), "AMF_REFERENCE")
    end)
  end)

  describe("reference tables", function()
    it("strings: a repeated non-empty string is a reference, empty ones never are (§1.3.2)", function()
      local s = B.arr{ B.str("abc"), "\6" .. B.sref(0), "\6\1", "\6\1" }
      local v = assert_roundtrip(s)[1]
      assert.are.same({ "abc", "abc", "", "", n = 4 }, v)
      assert.are.equal(hex(s), hex(amf3.encode{ "abc", "abc", "", "" }))
      -- keys and class names share the table with values
      local o = unhex("0a 0b 01 07 61 62 63 06 00 01")
      assert.are.equal(hex(o), hex(amf3.encode{ abc = "abc" }))
      assert_roundtrip(o)
      -- an encoder that repeats a string inline is read, but written back
      -- with a reference (docs/AMF.md: not byte-exact)
      local inline = B.obj{ "abc", B.str("abc") }
      assert.are.equal("abc", decode_ok(inline)[1].abc)
      assert.are.equal(hex(o), hex(amf3.encode(decode_ok(inline)[1])))
    end)

    it("traits: equal traits are written as a reference (§3.12)", function()
      local s = unhex("09 05 01" .. " 0a 0b 01 03 61 04 01 01" .. " 0a 01 00 04 02 01")
      local v = assert_roundtrip(s)[1]
      assert.are.equal(1, v[1].a); assert.are.equal(2, v[2].a)
      assert.are.equal(hex(s), hex(amf3.encode{ { a = 1 }, { a = 2 } }))
      -- typed objects of one class
      local t1 = amf3.typed("P", { { "x", 1 } }, { "x" }, false)
      local t2 = amf3.typed("P", { { "x", 2 } }, { "x" }, false)
      local e = amf3.encode{ t1, t2 }
      assert.are.equal(hex(unhex("09 05 01 0a 13 03 50 03 78 04 01 0a 01 04 02")), hex(e))
      assert_roundtrip(e)
    end)

    it("objects: a table met again is a reference, cycles included (§3.11, §3.12)", function()
      local self = unhex "0a 0b 01 09 73 65 6c 66 0a 00 01"
      local v = assert_roundtrip(self)[1]
      assert.are.equal(v, v.self)
      local t = {}
      t.self = t
      assert.are.equal(hex(self), hex(amf3.encode(t)))
      local arr = unhex "09 03 01 09 00"     -- an array holding itself
      local a = assert_roundtrip(arr)[1]
      assert.are.equal(a, a[1])
      local shared = { k = 1 }
      local s2 = amf3.encode{ shared, shared, amf3.date(5), amf3.bytearray("b") }
      local d = assert_roundtrip(s2)[1]
      assert.are.equal(d[1], d[2])
      assert.are.equal(hex(B.obj{ "k", B.int(1) }), hex(s2:sub(4, 3 + #B.obj{ "k", B.int(1) })))
      assert.are.equal(hex("\10\2"), hex(s2:sub(4 + #B.obj{ "k", B.int(1) }, 5 + #B.obj{ "k", B.int(1) })))
      -- dates, XML and byte arrays enter the object table too
      local s3 = B.arr{ B.date(1), B.oref(8, 1), "\12" .. B.vr("x"), B.oref(12, 2) }
      local w = assert_roundtrip(s3)[1]
      assert.are.equal(w[1], w[2]); assert.are.equal(w[3], w[4])
    end)

    it("nested references resolve to enclosing values while they are read", function()
      local s = B.arr{ B.obj{ "up", B.oref(9, 0), "me", B.oref(10, 1) } }
      local v = assert_roundtrip(s)[1]
      assert.are.equal(v, v[1].up); assert.are.equal(v[1], v[1].me)
    end)

    it("reject indexes past the tables", function()
      assert_fails("\6" .. B.sref(0), "AMF_REFERENCE")
      assert_fails(B.arr{ B.str("a"), "\6" .. B.sref(1) }, "AMF_REFERENCE")
      assert_fails(B.oref(10, 0), "AMF_REFERENCE")
      assert_fails(B.arr{ B.oref(9, 1) }, "AMF_REFERENCE")
      assert_fails("\10\5", "AMF_REFERENCE")                    -- traits 1 of 0
      assert_fails(B.arr{ B.obj{}, "\10" .. u29(1 << 2 | 1) }, "AMF_REFERENCE")
      assert_fails(B.oref(8, 3), "AMF_REFERENCE")
    end)
  end)

  describe("externalizable objects", function()
    it("fail without a handler, naming the class", function()
      local s = "\10\7" .. B.vr("com.example.Secret") .. "\4\1"
      local msg = assert_fails(s, "AMF_EXTERNALIZABLE")
      assert.truthy(msg:find("com.example.Secret", 1, true), msg)
      assert.truthy(msg:find("at byte 0", 1, true), msg)
      assert.has_error(function() amf3.encode(amf3.external("com.example.Secret", 1)) end)
    end)

    it("read one AMF3 value with the \"value\" handler, references shared with the outside", function()
      amf3.register("com.example.Box", "value")
      local s = B.arr{ B.str("in"), "\10\7" .. B.vr("com.example.Box") .. "\6" .. B.sref(0) }
      local v = assert_roundtrip(s)[1]
      assert.are.equal("in", v[2].value)
      amf3.register("com.example.Box", nil)
      assert_fails(s, "AMF_EXTERNALIZABLE")
    end)

    it("use read/write handlers for any other body", function()
      amf3.register("com.example.Pair", {
        read = function(bytes, pos)
          local a, b, next = string.unpack(">i2i2", bytes, pos)
          return { a, b }, next
        end,
        write = function(v) return string.pack(">i2i2", v[1], v[2]) end,
      })
      local s = "\10\7" .. B.vr("com.example.Pair") .. pack(">i2i2", 7, -3) .. B.int(5)
      local v = assert_roundtrip(s)
      assert.are.equal(7, v[1].value[1]); assert.are.equal(-3, v[1].value[2]); assert.are.equal(5, v[2])
      amf3.register("com.example.Pair", {
        read = function() error("bad body") end, write = function() return "" end,
      })
      assert_fails(s, "AMF_EXTERNALIZABLE")
      amf3.register("com.example.Pair", nil)
      assert.has_error(function() amf3.register("x", "other") end)
      assert.has_error(function() amf3.register("x", { read = print }) end)
    end)
  end)

  describe("malformed input", function()
    it("shares one Lua string among references to a long string", function()
      -- 20,000 one-byte references to a 60,000-byte string: no copy each
      local long = rep("L", 60000)
      local s = "\9" .. u29(20000 << 1 | 1) .. "\1" .. B.str(long) .. rep("\6\0", 19999)
      collectgarbage()
      local before = collectgarbage("count")
      local v = decode_ok(s)[1]
      assert.are.equal(20000, v.n)
      assert.are.equal(long, v[20000])
      assert.is_true(collectgarbage("count") - before < 4096, "decoding copied the string per reference")
    end)

    it("fails cleanly at every truncation of every fixture", function()
      for name, s in pairs(SINGLE) do
        if #s < 2000 then
          for cut = 0, #s - 1 do
            local v, msg, code = amf3.decode(s:sub(1, cut))
            if cut == 0 then
              assert.are.equal(0, v.n)
            else
              assert.is_nil(v, name .. " cut at " .. cut)
              assert.are.equal("AMF_TRUNCATED", code, name .. " cut at " .. cut .. ": " .. tostring(msg))
            end
          end
        end
      end
    end)

    it("checks counts and lengths against the bytes left before looping or allocating", function()
      local t0 = os.clock()
      local big = u29(0x0FFFFFFF << 1 | 1)
      assert_fails("\9" .. big .. "\1\1\1", "AMF_TRUNCATED")          -- dense count
      assert_fails("\13" .. big .. "\0" .. rep("\0", 16), "AMF_TRUNCATED")  -- vector<int>
      assert_fails("\15" .. big .. "\0" .. rep("\0", 16), "AMF_TRUNCATED")
      assert_fails("\16" .. big .. "\0\1" .. rep("\1", 16), "AMF_TRUNCATED")
      assert_fails("\17" .. big .. "\0" .. rep("\1", 16), "AMF_TRUNCATED")   -- dictionary
      assert_fails("\17" .. u29(3 << 1 | 1) .. "\0" .. "\1\1\1\1\1", "AMF_TRUNCATED")  -- 3 pairs, 5 bytes
      assert_fails("\12" .. big .. "abc", "AMF_TRUNCATED")               -- byte array
      assert_fails("\6" .. big .. "abc", "AMF_TRUNCATED")                -- string
      assert_fails("\11" .. big .. "abc", "AMF_TRUNCATED")               -- XML
      -- 2^25-1 sealed member names claimed by a few bytes
      assert_fails("\10" .. u29((0x1FFFFFF << 4) | 3) .. "\1\3a\3b", "AMF_TRUNCATED")
      -- a traits reference whose sealed values are missing
      assert_fails(B.arr{ "\10\35\3F\3x\3y\4\1\4\2", "\10\1\4\1" }, "AMF_TRUNCATED")
      assert.is_true(os.clock() - t0 < 1)
    end)

    it("rejects unknown markers", function()
      for _, m in ipairs{ 0x12, 0x20, 0xFF } do
        assert_fails(char(m), "AMF_MARKER")
        assert_fails(B.arr{ char(m) }, "AMF_MARKER")
      end
    end)

    it("raises for values with no AMF3 form", function()
      assert.has_error(function() amf3.encode(print) end)
      assert.has_error(function() amf3.encode(amf0.unsupported) end)
      assert.has_error(function() amf3.encode{ [true] = 1 } end)
      assert.has_error(function() amf3.encode(amf3.vector("int", { 1.5 })) end)
      assert.has_error(function() amf3.encode(amf3.vector("uint", { -1 })) end)
      assert.has_error(function() amf3.encode(amf3.typed("S", { { "x", 1 }, { "extra", 2 } }, { "x" }, false)) end)
      assert.has_error(function() amf3.vector("bad", {}) end)
    end)

    it("survives seeded random mutations; decode and the core's skip agree", function()
      local seeds = {}
      for _, s in pairs(SINGLE) do if #s < 200 then seeds[#seeds + 1] = s end end
      table.sort(seeds)
      seeds[#seeds + 1] = unhex("09 05 01 0a 0b 01 03 61 04 01 01 0a 01 00 04 02 01")
      seeds[#seeds + 1] = unhex "0a 0b 01 09 73 65 6c 66 0a 00 01"
      local rnd = A.rng(4242)
      local decoded = 0
      for round = 1, 4000 do
        local m = A.mutate(seeds[round % #seeds + 1], rnd, 3, true)
        local ok, v, msg, code = pcall(amf3.decode, m)
        assert(ok, "decode raised on " .. hex(m) .. ": " .. tostring(v))
        local n, _, vcode = amf3.validate(m)
        if v then
          decoded = decoded + 1
          -- (the core cannot skip an externalizable body: no handlers there)
          if vcode ~= "AMF_EXTERNALIZABLE" then assert.are.equal(v.n, n, hex(m)) end
          local again = amf3.encode(table.unpack(v, 1, v.n))
          assert.are.equal(v.n, decode_ok(again).n)
        else
          assert.truthy(code:match("^AMF_"), code)
          if code ~= "AMF_EXTERNALIZABLE" and vcode ~= "AMF_EXTERNALIZABLE" then
            assert.are.equal(code, vcode, hex(m))
          end
        end
      end
      assert.is_true(decoded > 0)
    end)
  end)

  describe("nesting depth", function()
    local function nested_arrays(n) return rep("\9\3\1", n) .. "\1" end
    -- as Flash writes them: inline traits once, then traits references
    local function nested_objects(n) return "\10\11\1\3k" .. rep("\10\1\0", n - 1) .. "\1" .. rep("\1", n) end

    it("accepts max_depth container levels and fails one past them", function()
      assert_roundtrip(nested_arrays(32))
      assert_fails(nested_arrays(33), "AMF_DEPTH")
      decode_ok(nested_arrays(5), 5)
      assert_fails(nested_arrays(6), "AMF_DEPTH", 5)
      assert_roundtrip(nested_objects(32))
      assert_fails(nested_objects(33), "AMF_DEPTH")
      -- leaves take no level: a date or byte array inside 32 arrays
      decode_ok(rep("\9\3\1", 32) .. B.date(0))
      decode_ok(B.int(1), 0)
      assert_fails("\9\1\1", "AMF_DEPTH", 0)
      local t = {}
      local root = t
      for _ = 2, 32 do t[1] = {}; t = t[1] end
      -- 31 arrays around an empty table (an empty object)
      assert.are.equal(hex(rep("\9\3\1", 31) .. "\10\11\1\1"), hex(amf3.encode(root)))
      t[1] = { 1 }
      assert.has_error(function() amf3.encode(root) end)
    end)

    it("stops 100,000 nested containers of every kind without a crash", function()
      local n = 100000
      assert_fails(nested_arrays(n), "AMF_DEPTH")
      assert_fails(nested_objects(n), "AMF_DEPTH")
      assert_fails(rep("\16\3\0\1", n) .. "\1", "AMF_DEPTH")
      assert_fails(rep("\17\3\0\1", n) .. "\1", "AMF_DEPTH")
      assert_fails(rep("\9\3\1", n), "AMF_DEPTH")
    end)
  end)

  describe("inside AMF0 (marker 0x11)", function()
    local CONNECT3 = pack(">Bs2", 2, "connect") .. pack(">Bd", 0, 1)
      .. "\17" .. B.obj{ "app", B.str("live"), "objectEncoding", B.int(3) }
      .. "\17" .. B.str("extra")
      .. pack(">Bs2", 2, "amf0 string")

    it("decode transparently and re-encode with the switches where they were", function()
      local v = amf0.decode(CONNECT3)
      assert.are.equal(5, v.n)
      assert.are.equal("live", v[3].app)
      assert.are.equal(3, v[3].objectEncoding)
      assert.are.equal("extra", v[4])
      assert.are.same({ [3] = true, [4] = true }, getmetatable(v).__amf3)
      assert.are.equal(hex(CONNECT3), hex(amf0.encode_values(v)))
      assert.are.equal(5, amf0.validate(CONNECT3))
    end)

    it("record switched members and elements in their container", function()
      local s = "\3" .. pack(">s2", "k") .. "\17" .. B.str("hi") .. pack(">s2", "j") .. pack(">Bd", 0, 2) .. "\0\0\9"
        .. pack(">BI4", 10, 2) .. "\17\4\5" .. "\5"
      local v = amf0.decode(s)
      assert.are.equal("hi", v[1].k)
      assert.is_true(getmetatable(v[1]).__amf3.k)
      assert.are.equal(5, v[2][1])
      assert.are.equal(hex(s), hex(amf0.encode(v[1], v[2])))
      assert.are.equal(hex(s), hex(amf0.encode_values(v)))
    end)

    it("write rtmp.amf3.value(v) and the kinds AMF0 cannot express switched", function()
      assert.are.equal(hex("\17\4\5"), hex(amf0.encode(amf3.value(5))))
      assert.are.equal(hex("\17" .. B.obj{ "a", B.int(1) }), hex(amf0.encode(amf3.value{ a = 1 })))
      assert.are.equal(hex("\17\12\3x"), hex(amf0.encode(amf3.bytearray("x"))))
      assert.are.equal(hex("\3\0\1v\17\13\3\0\0\0\0\1\0\0\9"),
        hex(amf0.encode(amf0.object{ { "v", amf3.vector("int", { 1 }) } })))
      -- the wrapper is transparent inside AMF3
      assert.are.equal(hex(B.int(5)), hex(amf3.encode(amf3.value(5))))
    end)

    it("carry the AMF3 reference tables from one switch to the next in one body", function()
      -- strings: the second switch refers to the first one's string
      local s = "\17" .. B.str("hi") .. pack(">Bd", 0, 5) .. "\17\6" .. B.sref(0)
      assert.are.equal(hex(s), hex(amf0.encode(amf3.value("hi"), 5, amf3.value("hi"))))
      local v = amf0.decode(s)
      assert.are.same({ "hi", 5, "hi", n = 3 }, v)
      assert.are.equal(hex(s), hex(amf0.encode_values(v)))
      assert.are.equal(3, amf0.validate(s))
      -- objects: one table at two switched positions
      local t = { a = 1 }
      local o = amf0.encode("call", 0, amf3.value(t), amf3.value(t))
      assert.are.equal(hex(pack(">Bs2", 2, "call") .. pack(">Bd", 0, 0) .. "\17" .. B.obj{ "a", B.int(1) }
        .. "\17" .. B.oref(10, 0)), hex(o))
      local d = amf0.decode(o)
      assert.are.equal(d[3], d[4])
      assert.are.equal(hex(o), hex(amf0.encode_values(d)))
      -- traits and nested members too
      local m = amf0.encode(amf3.value{ { x = 1 } }, amf3.value{ { x = 2 } })
      assert.are.equal(hex("\17" .. B.arr{ B.obj{ "x", B.int(1) } } .. "\17" .. B.arr{ "\10\1\0\4\2\1" }), hex(m))
      assert.are.equal(hex(m), hex(amf0.encode_values(amf0.decode(m))))
      -- a reference past what the body has seen fails
      local bad = "\17" .. B.str("hi") .. "\17\6" .. B.sref(1)
      local x, _, code = amf0.decode(bad)
      assert.is_nil(x); assert.are.equal("AMF_REFERENCE", code)
      local n, _, vcode = amf0.validate(bad)
      assert.is_nil(n); assert.are.equal("AMF_REFERENCE", vcode)
      -- each message (decode or encode call) starts a new context
      assert.are.equal(hex("\17" .. B.str("hi")), hex(amf0.encode(amf3.value("hi"))))
    end)

    it("count nesting across the switch", function()
      local function s(levels0, levels3)
        return rep("\3\0\1k", levels0) .. "\17" .. rep("\9\3\1", levels3) .. "\1" .. rep("\0\0\9", levels0)
      end
      assert.truthy(amf0.decode(s(20, 12)))
      local v, _, code = amf0.decode(s(20, 13))
      assert.is_nil(v); assert.are.equal("AMF_DEPTH", code)
      assert.are.equal(1, amf0.validate(s(20, 12)))
      assert.is_nil(amf0.validate(s(20, 13)))
      local ok = pcall(amf0.decode, s(1, 100000))
      assert.is_true(ok)
    end)

    it("reach scripts transparently in AMF3 command (17) and data (15) messages", function()
      local srv = rtmp.session{ role = "server" }
      local c1 = pack(">I4 I4", 0, 0) .. rep("\x5a", 1528)
      assert(srv:feed("\3" .. c1))
      assert(srv:feed(srv:output():sub(2, 1537)))
      assert.is_true(srv.ready)
      local function chunk0(csid, mtype, body)
        assert(#body <= 128)
        return pack(">B I3 I3 B <I4", csid, 0, #body, mtype, 0) .. body
      end
      -- the format byte 0, then AMF0 with switched values, as Flash Player
      -- sends commands with objectEncoding 3
      local msgs = assert(srv:feed(chunk0(3, 17, "\0" .. CONNECT3)))
      assert.are.equal(1, #msgs)
      local m = msgs[1]
      assert.is_nil(m.decode_error)
      assert.are.equal("connect", m.name)
      assert.are.equal(1, m.txn)
      assert.are.equal("live", m.args[1].app)
      assert.are.equal("extra", m.args[2])
      assert.are.equal("amf0 string", m.args[3])
      assert.are.equal(hex(CONNECT3), hex(amf0.encode_values(m.values)))
      local data = pack(">Bs2", 2, "onTextData") .. "\17" .. B.obj{ "text", B.str("hello") }
      msgs = assert(srv:feed(chunk0(5, 15, "\0" .. data)))
      assert.are.equal("onTextData", msgs[1].name)
      assert.are.equal("hello", msgs[1].values[2].text)
      -- and a script sends switched values with conn:command or as type 17
      assert(srv:command(nil, "_result", 1, null, amf3.value{ level = "status" }))
      local out = srv:output()
      assert.truthy(out:find("\5\17" .. B.obj{ "level", B.str("status") }, 1, true), hex(out))
      assert(srv:send({ type = 17, csid = 3 }, "\0" .. amf0.encode("onBWDone", 0, null, amf3.value(7))))
      assert.truthy(srv:output():find("\0" .. pack(">Bs2", 2, "onBWDone"), 1, true))
      -- a bad reference inside the switch: decode_error, the message still comes
      msgs = assert(srv:feed(chunk0(5, 15, "\0" .. pack(">Bs2", 2, "x") .. "\17\6\2")))
      assert.are.equal(1, #msgs)
      assert.truthy(msgs[1].decode_error)
      srv:close()
    end)

    it("survive seeded mutations of bodies with switches; decode and the core's skip agree", function()
      local seeds = {
        CONNECT3,
        amf0.encode("call", 0, amf3.value{ { x = 1 }, "s" }, amf3.value{ { x = 2 }, "s" }),
        amf0.encode(amf0.object{ { "a", amf3.bytearray("xy") }, { "b", amf3.vector("int", { 1, 2 }) } }),
        amf0.encode(amf0.array{ amf3.value(1), amf3.dictionary{ { "k", "v" } }, amf3.xml("<a/>") }),
      }
      local rnd = A.rng(777)
      local decoded = 0
      for round = 1, 3000 do
        local m = A.mutate(seeds[round % #seeds + 1], rnd, 3)
        local ok, v, _, code = pcall(amf0.decode, m)
        assert(ok, "decode raised on " .. hex(m) .. ": " .. tostring(v))
        local n, _, vcode = amf0.validate(m)
        if v then
          decoded = decoded + 1
          if vcode ~= "AMF_EXTERNALIZABLE" then assert.are.equal(v.n, n, hex(m)) end
          local again = amf0.encode_values(v)
          assert.are.equal(v.n, amf0.decode(again).n)
        elseif code ~= "AMF_EXTERNALIZABLE" and vcode ~= "AMF_EXTERNALIZABLE" then
          assert.are.equal(code, vcode, hex(m))
        end
      end
      assert.is_true(decoded > 0)
    end)

    it("fail cleanly on a switch with nothing or garbage after it", function()
      local v, msg, code = amf0.decode(pack(">Bd", 0, 1) .. "\17")
      assert.is_nil(v); assert.are.equal("AMF_TRUNCATED", code)
      assert.truthy(msg:find("at byte 10", 1, true), msg)
      v, _, code = amf0.decode("\17\255")
      assert.are.equal("AMF_MARKER", code)
      v, msg, code = amf0.decode(pack(">Bd", 0, 1) .. "\17\10\7\3X")
      assert.are.equal("AMF_EXTERNALIZABLE", code)
      assert.are.equal("AMF3 externalizable class without a handler (X) at byte 10", msg)
    end)
  end)
end)
