-- Fuzz regressions.  Every input under spec/fuzz/<target>/ once made a
-- fuzz target (fuzz/fuzz_<target>.c) fail; the same target sources, built
-- with a plain main() from the normal objects (make fuzz-replay-build),
-- replay them here with all their checks: whole against split feeding,
-- decode -> encode -> decode stability, reading back what was written.
-- Under `make asan` (LUARTMP_ASAN=1) the runner is built from the ASan
-- objects.  Then each bug the fuzzers found, as a script sees it, with
-- bytes built by hand.
local H = require "support.helpers"
local rtmp = require "rtmp"
local amf0 = rtmp.amf0
local pack = string.pack

local TARGETS = require "support.fuzz_targets"

local function key(s) return pack(">s2", s) end

local asan = os.getenv("LUARTMP_ASAN") == "1"
local build = asan and "build-asan" or "build"
local make = "make -s -f Makefile -f fuzz/fuzz.mk BUILD=" .. build
  .. (asan and " OPT='-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined'" or "")
  .. " fuzz-replay-build"

local function inputs(target)
  local list = {}
  local p = io.popen("ls -A spec/fuzz/" .. target .. " 2>/dev/null")
  for name in p:lines() do list[#list + 1] = name end
  p:close()
  return list
end

-- One well-formed input per target, built here, so each runner's checks
-- also run on bytes that take the whole path (a target may have no
-- regression input yet).
local function sample(target)
  local w = rtmp.writer()
  local chunks = w:write{ csid = 3, type = 20, stream = 0, timestamp = 0,
      payload = amf0.encode("connect", 1, amf0.object{ { "app", "live" } }) }
    .. w:write{ csid = 6, type = 8, stream = 1, timestamp = 0x1000000, payload = ("\xAF\1"):rep(200) }
    .. w:write{ csid = 6, type = 8, stream = 1, timestamp = 0x1000020, payload = "\xAF\1" }
  if target == "handshake" then return "\0\1\2\3\4\3" .. ("\0"):rep(2 * 1536) .. chunks end
  if target == "chunk" then return "\0\1\2\3\4" .. chunks end
  if target == "amf0" then return amf0.encode("connect", 1, amf0.object{ { "app", "live" } }, rtmp.null) end
  if target == "amf3" then return rtmp.amf3.encode(rtmp.amf3.array{ 1, "a", { x = 1.5 } }, "a") end
  if target == "flv" then
    return "FLV\1\5" .. pack(">I4I4", 9, 0) .. pack(">BI3I3BI3", 8, 2, 40, 0, 0) .. "\xAF\1" .. pack(">I4", 13)
  end
  if target == "media" then  -- video (byte 0 odd): ModEx, then multitrack ManyTracks avc1 CodedFrames
    return "\1\x97\2\0\1\2\x06\x11avc1\0" .. pack(">I3", 5) .. "\0\0\40ab" .. "\1" .. pack(">I3", 3) .. "\0\0\0"
  end
  if target == "mp4" then  -- an ftyp box, then a moov holding only an empty mvhd
    return pack(">I4c4c4I4c4", 20, "ftyp", "isom", 0, "isom") .. pack(">I4c4I4c4", 16, "moov", 8, "mvhd")
  end
  if target == "tlsinfo" then  -- a handshake record whose ClientHello is cut short
    return "\22\3\1\0\9" .. "\1\0\0\40\3\3" .. ("\0"):rep(3)
  end
  return "\3\1\2\3\4" .. chunks  -- dispatch: after a handshake prefix, in 2 pieces
end

describe("fuzz regression inputs", function()
  local built, build_out
  setup(function()
    local rc
    rc, build_out = H.run(make, 300)
    built = rc == 0
  end)

  for _, target in ipairs(TARGETS) do
    it("replay through fuzz_" .. target .. " with its checks", function()
      assert(built, "the replay runner did not build: " .. tostring(build_out))
      local files = inputs(target)
      local extra = H.tmpname("fuzz-sample-" .. target)
      local f = assert(io.open(extra, "wb"))
      f:write(sample(target))
      f:close()
      local rc, out = H.run(string.format("%s/fuzz-replay/fuzz_%s %s %s", build, target, H.shquote(extra),
        #files > 0 and "spec/fuzz/" .. target or ""), 120)
      assert.are.equal(0, rc, out)
      assert.truthy(out:find((#files + 1) .. " inputs ok", 1, true), out)
    end)
  end

  it("regression inputs are small files with plain names", function()
    for _, target in ipairs(TARGETS) do
      for _, name in ipairs(inputs(target)) do
        assert.truthy(name:match("^[%w%-_.]+$"), "odd file name spec/fuzz/" .. target .. "/" .. name)
        assert.truthy(H.file_size("spec/fuzz/" .. target .. "/" .. name) <= 65536, "large input " .. name)
      end
    end
  end)
end)

describe("fuzz findings as a script sees them", function()
  -- fuzz_amf0: an ECMA array (or object) that repeats a key keeps the
  -- last value; decode used to keep the first occurrence's AMF3-switch
  -- mark, so encode_values wrote the AMF0 string as switched AMF3.
  it("a repeated key loses the AMF3 switch of its first value", function()
    local bytes = "\8" .. pack(">I4", 2) .. key("a") .. "\17\4\1" .. key("a") .. "\2" .. key("x") .. "\0\0\9"
    local v = assert(amf0.decode(bytes))
    assert.are.equal("x", v[1].a)
    local want = "\8" .. pack(">I4", 1) .. key("a") .. "\2" .. key("x") .. "\0\0\9"
    assert.are.equal(want, amf0.encode_values(v))
  end)

  -- ... and its place in the key order: the value is the last one read,
  -- so it is written where that one was.  Here that value is an ECMA
  -- array without its end marker (the end of the input): written first,
  -- as the first occurrence's place had it, it swallowed the keys after it.
  it("a repeated key takes the place of its last value", function()
    local bytes = "\8" .. pack(">I4", 3) .. key("b") .. "\0" .. pack(">d", 1) .. key("a") .. "\0" .. pack(">d", 2)
      .. key("b") .. "\8" .. pack(">I4", 0)
    local v = assert(amf0.decode(bytes))
    local out = amf0.encode_values(v)
    assert.are.equal("\8" .. pack(">I4", 2) .. key("a") .. "\0" .. pack(">d", 2) .. key("b") .. "\8" .. pack(">I4", 0),
      out)
    local again = assert(amf0.decode(out))
    assert.are.equal(2, again[1].a)
    assert.are.equal("ecma", rtmp.amf0.type(again[1].b))
    assert.are.equal(out, amf0.encode_values(again))
  end)

  -- The first of those inputs also made the AMF3 encoder write an AMF0
  -- ECMA array's empty key as the empty string that ends AMF3 members:
  -- one value became three.  An empty member key has no AMF3 form.
  it("an empty member key raises when encoded as AMF3", function()
    local assoc = rtmp.amf3.array{ 5 }
    assoc[""] = 1  -- an array's associative part
    for _, t in ipairs{ amf0.ecma{ { "", 1 } }, rtmp.amf3.object{ { "", 1 } }, assoc } do
      local ok, err = pcall(rtmp.amf3.encode, t)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("empty key", 1, true), err)
    end
    assert.are.equal("\3" .. key("") .. "\0" .. pack(">d", 1) .. "\0\0\9", amf0.encode(amf0.object{ { "", 1 } }))
  end)

  -- fuzz_amf0 and fuzz_amf3: X, 30 objects deep, is the first value of
  -- key a; a reference to it 20 objects down key a's second value (or
  -- key b's) brings it back there.  The repeated key keeps its last
  -- value, so the only place left for X is under the reference: written
  -- again, it nests 51 deep.  decode used to accept it and encode raised.
  -- Now decode fails with AMF_DEPTH at the end of the input; the same
  -- reference where X keeps its first place decodes and round-trips.
  local OBJ3 = "\10\11\1"  -- AMF3 object, inline dynamic anonymous traits
  local function str3(s) return string.char(#s * 2 + 1) .. s end
  local function chain3(n, inner)
    for _ = 1, n do inner = OBJ3 .. str3("c") .. inner .. "\1" end
    return inner
  end
  local function chain0(n, inner)
    for _ = 1, n do inner = "\3" .. key("c") .. inner .. "\0\0\9" end
    return inner
  end

  local function too_deep(decode, bytes)
    local v, err, code = decode(bytes)
    assert.are.equal("AMF_DEPTH", code)  -- first: v may have a million values to print
    assert.truthy(err:find("at byte " .. #bytes .. "$"), err)
    assert.is_true(v == nil)
  end

  it("AMF3: a reference to a value its repeated key dropped cannot nest past the limit", function()
    local amf3 = rtmp.amf3
    local X, Y = chain3(30, "\4\1"), chain3(20, "\10\2")  -- Y's innermost c: a reference to object 1, X
    too_deep(amf3.decode, OBJ3 .. str3("a") .. X .. str3("a") .. Y .. "\1")
    assert.are.equal(1, amf3.validate(OBJ3 .. str3("a") .. X .. str3("a") .. Y .. "\1"))  -- the bytes' own nesting
    for _, ok in ipairs{
      OBJ3 .. str3("a") .. X .. str3("b") .. Y .. "\1",                  -- X keeps its first place
      OBJ3 .. str3("a") .. X .. str3("a") .. chain3(1, "\10\2") .. "\1", -- X dropped, back 1 deeper: 32
    } do
      local v = assert(amf3.decode(ok))
      local out = amf3.encode(v[1])
      assert.are.equal(out, amf3.encode(assert(amf3.decode(out))[1]))
    end
    too_deep(amf3.decode, OBJ3 .. str3("a") .. X .. str3("a") .. chain3(2, "\10\2") .. "\1")  -- 33
    -- after more top-level values than a Lua stack holds (the check writes them one by one)
    too_deep(amf3.decode, OBJ3 .. str3("a") .. X .. str3("a") .. Y .. "\1" .. ("\4\1"):rep(1100000) .. "\10\0")
  end)

  it("AMF0: a reference to a value its repeated key dropped cannot nest past the limit", function()
    local X, Y = chain0(30, "\0" .. pack(">d", 1)), chain0(20, "\7" .. pack(">I2", 1))  -- reference 1: X
    too_deep(amf0.decode, "\3" .. key("a") .. X .. key("a") .. Y .. "\0\0\9")
    local kept = "\3" .. key("a") .. X .. key("b") .. Y .. "\0\0\9"
    local v = assert(amf0.decode(kept))
    assert.are.equal(kept, amf0.encode_values(v))
    -- through a session, as a script gets a command: decode_error, the message still delivered
    local s = rtmp.session{ role = "server" }
    local body = amf0.encode("cmd", 1) .. "\3" .. key("a") .. X .. key("a") .. Y .. "\0\0\9"
    local chunks = rtmp.writer():write{ csid = 3, type = 20, stream = 0, timestamp = 0, payload = body }
    local msgs = assert(s:feed("\3" .. ("\0"):rep(2 * 1536) .. chunks))
    assert.are.equal(1, #msgs)
    assert.are.equal(#body, msgs[1].length)
    assert.are.equal("AMF nesting too deep", msgs[1].decode_error)
    s:close()
  end)

  -- fuzz_flv: a data tag of size 0 reached the AMF0 reader with a NULL
  -- body (UBSan: pointer arithmetic on NULL); it is an empty data message.
  it("an FLV data tag of size 0 is a data message with no values", function()
    local file = H.tmpname("empty-data.flv")
    local f = assert(io.open(file, "wb"))
    f:write("FLV\1\5" .. pack(">I4I4", 9, 0)
      .. pack(">BI3I3BI3", 18, 0, 0, 0, 0) .. pack(">I4", 11)
      .. pack(">BI3I3BI3", 8, 2, 40, 0, 0) .. "\xAF\1" .. pack(">I4", 13))
    f:close()
    local r = assert(rtmp.flv.open(file))
    local m = assert(r:read())
    assert.are.same({ 18, 0, "", 0 }, { m.type, m.length, m.payload, m.values.n })
    assert.is_nil(m.decode_error)
    local a = assert(r:read())
    assert.are.same({ 8, 40, "\xAF\1" }, { a.type, a.timestamp, a.payload })
    assert.is_nil(r:read())
    r:close()
  end)

  it("an empty AMF0 data message through a session is delivered with no values", function()
    local s = rtmp.session{ role = "server" }
    local msgs = assert(s:feed("\3" .. ("\0"):rep(2 * 1536) .. "\5" .. pack(">I3I3B<I4", 0, 0, 18, 1)))
    assert.are.equal(1, #msgs)
    assert.are.same({ 18, 0, 1, 0 }, { msgs[1].type, msgs[1].length, msgs[1].stream, msgs[1].values.n })
    assert.is_nil(msgs[1].decode_error)
    s:close()
  end)
end)
