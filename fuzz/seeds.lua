-- fuzz/seeds.lua OUT STREAMS_DIR FLV: write the seed corpora (called by
-- fuzz/seeds.sh, which captured STREAMS_DIR/<n>.txt with tshark's
-- follow,tcp,raw and made FLV with ffmpeg).
local rtmp = require "rtmp"
local amf0, amf3 = rtmp.amf0, rtmp.amf3
local out, streams, flv_path = arg[1], arg[2], arg[3]

local counts = {}
local function put(target, name, bytes)
  os.execute("mkdir -p '" .. out .. "/" .. target .. "'")
  local f = assert(io.open(out .. "/" .. target .. "/" .. name, "wb"))
  f:write(bytes)
  f:close()
  counts[target] = (counts[target] or 0) + 1
end

local function unhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end

-- tshark -z follow,tcp,raw: the first node's bytes at the left margin, the
-- second's indented by a tab, one hex line per segment.
local function read_follow(path)
  local c2s, s2c = {}, {}
  for line in io.lines(path) do
    local tab, hex = line:match("^(\t?)(%x+)$")
    if hex and #hex % 2 == 0 then
      local t = tab == "" and c2s or s2c
      t[#t + 1] = unhex(hex)
    end
  end
  return table.concat(c2s), table.concat(s2c)
end

local HS = 1 + 2 * 1536
local cfg = "\0\1\2\3\4"  -- chunk/handshake/dispatch targets: config byte and split seed

-- The messages of a chunk stream (after the handshake), as the reader
-- gives them.
local function messages(bytes)
  local r = rtmp.reader{}
  local list = r:feed(bytes) or {}
  return list
end

local n = 0
for file in io.popen("ls '" .. streams .. "'"):lines() do
  local c2s, s2c = read_follow(streams .. "/" .. file)
  if #c2s > HS and #s2c > HS then
    n = n + 1
    local id = "conn" .. n
    -- handshake: server role gets the client's C0C1C2, client role the server's S0S1S2
    put("handshake", id .. "-server", "\0" .. "\1\2\3\4" .. c2s:sub(1, HS))
    put("handshake", id .. "-client", "\1" .. "\1\2\3\4" .. s2c:sub(1, HS))
    put("handshake", id .. "-server-split", "\0" .. "\9\8\7\6" .. c2s:sub(1, HS + 200))
    -- chunk: each direction's chunk stream, the first 16 KiB and the first 2 KiB
    for dir, bytes in pairs{ c2s = c2s, s2c = s2c } do
      local chunks = bytes:sub(HS + 1)
      put("chunk", id .. "-" .. dir .. "-16k", cfg .. chunks:sub(1, 16384))
      put("chunk", id .. "-" .. dir .. "-2k", cfg .. chunks:sub(1, 2048))
      put("chunk", id .. "-" .. dir .. "-2k-detect-fresh", "\4\5\6\7\8" .. chunks:sub(1, 2048))
      -- amf0: every command and data body; media: the first audio and
      -- video bodies (sequence headers, frames), byte 0 naming the type
      local media = 0
      for i, m in ipairs(messages(chunks)) do
        if m.type == 20 or m.type == 18 or m.type == 19 then
          put("amf0", string.format("%s-%s-%d-type%d", id, dir, i, m.type), m.payload)
        elseif (m.type == 8 or m.type == 9) and media < 12 then
          media = media + 1
          put("media", string.format("%s-%s-%d-type%d", id, dir, i, m.type),
            (m.type == 9 and "\1" or "\0") .. m.payload:sub(1, 1024))
        end
      end
    end
    -- dispatch: the client's whole stream (handshake included) and, after
    -- our own handshake prefix, its chunk stream
    put("dispatch", id .. "-raw", "\0\1\2\3\4" .. c2s:sub(1, 12288))
    put("dispatch", id .. "-raw-4pieces", "\6\1\2\3\4" .. c2s:sub(1, 12288))
    put("dispatch", id .. "-chunks", "\1\1\2\3\4" .. c2s:sub(HS + 1, HS + 8192))
  end
end
assert(n > 0, "no RTMP connection in the capture")

-- AMF values our encoders write: every kind of the mapping.
local null, undefined = rtmp.null, rtmp.undefined
local values0 = {
  { "connect", 1, amf0.object{ { "app", "live" }, { "tcUrl", "rtmp://h/live" }, { "fpad", false } } },
  { "onMetaData", amf0.ecma{ { "duration", 2.0 }, { "width", 160 }, { "encoder", "Lavf" } } },
  { "_result", 1, null, amf0.object{ { "level", "status" }, { "code", "NetStream.Play.Start" } } },
  { amf0.array{ 1, "two", true, undefined, amf0.date(1e12, 60) } },
  { amf0.typed("com.example.T", { { "a", 1 }, { "b", amf0.xmldoc("<x/>") } }) },
  { amf3.value(amf3.array{ 1, 2, 3 }), amf3.value(amf3.bytearray("\0\1")) },
}
for i, v in ipairs(values0) do put("amf0", "encoded-" .. i, amf0.encode(table.unpack(v))) end
put("amf0", "long-string", "\x0C\0\0\0\5hello")
-- A reference: the same table twice is written as a reference.
local shared = amf0.object{ { "k", 1 } }
put("amf0", "encoded-ref", amf0.encode(amf0.array{ shared, shared }))

local values3 = {
  { 1, -1, 2 ^ 28, 1.5, "str", "str", true, false, null, undefined },
  { amf3.array{ 1, "a", { x = 1 } }, amf3.date(1e12) },
  { amf3.typed("com.example.P", { { "x", 1 }, { "y", 2 } }, { "x", "y" }, true) },
  { amf3.typed("com.example.P", { { "x", 1 } }, { "x" }), amf3.typed("com.example.P", { { "x", 2 } }, { "x" }) },
  { amf3.xml("<a/>"), amf3.xmldoc("<b/>"), amf3.bytearray("\1\2\3") },
  { amf3.vector("int", { 1, -2, 3 }, true), amf3.vector("uint", { 1, 2 }), amf3.vector("double", { 0.5 }) },
  { amf3.vector("object", { { a = 1 }, { a = 2 } }, false, "com.example.O") },
  { amf3.dictionary({ { "k", 1 }, { 2, "v" } }, true) },
  { amf3.external("flex.messaging.io.ArrayCollection", amf3.array{ 1, 2 }) },
}
for i, v in ipairs(values3) do put("amf3", "encoded-" .. i, amf3.encode(table.unpack(v))) end
local obj = { a = 1 }
put("amf3", "encoded-refs", amf3.encode(amf3.array{ obj, obj, "s", "s" }))

-- flv: the start of the file (header, metadata, sequence headers, the
-- first frames) and a small file written by rtmp.flv.create
local f = assert(io.open(flv_path, "rb"))
local whole = f:read("a")
f:close()
put("flv", "ffmpeg-8k", whole:sub(1, 8192))
-- the specs' FLV fixture, when a test run made it (spec/support/helpers.lua)
for fixture in io.popen("ls build/test-tmp/fixture-*.flv 2>/dev/null"):lines() do
  local ff = assert(io.open(fixture, "rb"))
  put("flv", "fixture-8k", ff:read(8192))
  ff:close()
  break
end
put("flv", "ffmpeg-1k", whole:sub(1, 1024))
local tmp = os.tmpname()
local w = assert(rtmp.flv.create(tmp))
assert(w:write{ type = "data", timestamp = 0, payload = amf0.encode("@setDataFrame", "onMetaData",
  amf0.ecma{ { "duration", 0 }, { "filesize", 0 } }) })
assert(w:write{ type = "audio", timestamp = 0, payload = "\xAF\0\x12\x10" })
assert(w:write{ type = "video", timestamp = 0, payload = "\x17\0\0\0\0\1\2\3" })
assert(w:write{ type = "video", timestamp = 40, payload = "\x27\1\0\0\0\4\5" })
assert(w:close())
f = assert(io.open(tmp, "rb"))
put("flv", "written", f:read("a"))
f:close()
os.remove(tmp)

-- media: the golden vectors of spec/unit/media_spec.lua, valid and
-- malformed (byte 0: 0 audio, 1 video)
local vectors = require "spec.support.media_vectors"
for _, list in ipairs{ vectors.valid, vectors.malformed } do
  for _, v in ipairs(list) do
    put("media", (v.name:gsub("[^%w]+", "-"):gsub("^%-", ""):gsub("%-$", "")), (v.type == 9 and "\1" or "\0") .. v.payload)
  end
end

for t, c in pairs(counts) do io.write(t, " ", c, " seeds\n") end
