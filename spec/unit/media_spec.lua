-- The media model (core/media.c) as scripts see it: msg.codec,
-- msg.packet, msg.keyframe, msg.sequence_header, msg.tracks / msg.track
-- and the other media fields of audio and video message objects.
--
-- Golden vectors (spec/support/media_vectors.lua) are built with
-- string.pack from the layouts of the FLV spec (legacy headers) and
-- Enhanced RTMP v2 (ExVideoTagHeader, ExAudioTagHeader, ModEx,
-- Multitrack, command frames), each with the fields it must give.  Each
-- vector is checked on rtmp.message and after the chunk layer: chunked by
-- hand at every chunk size from 1 to past its length and fed to a server
-- session whole, and at a few chunk sizes split in two at every position.  Malformed headers give decode_error
-- and never a read past the end (the fuzz target and ASan runs cover the
-- reads; here, the answers).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local pack = string.pack
local vectors = require "support.media_vectors"
local V, B = vectors.valid, vectors.malformed
local AUDIO, VIDEO = vectors.AUDIO, vectors.VIDEO
local legacy_video, legacy_audio, ex_video, ex_audio = vectors.legacy_video, vectors.legacy_audio,
  vectors.ex_video, vectors.ex_audio
local nano, multitrack, si24 = vectors.nano, vectors.multitrack, vectors.si24

---------------------------------------------------------------------------
-- Checking
---------------------------------------------------------------------------
local FIELDS = { "codec", "codec_id", "packet", "command", "nano_offset", "multitrack", "decode_error" }
local FLAGS = { "keyframe", "sequence_header", "sequence_end" }

-- The media fields of message object m, as one table (tracks whole).
local function fields(m)
  local got = {}
  for _, k in ipairs(FIELDS) do got[k] = m[k] end
  for _, k in ipairs(FLAGS) do got[k] = m[k] end
  got.tracks = m.tracks
  got.track = m.track
  return got
end

local function expected(v)
  local want = {}
  for _, k in ipairs(FIELDS) do want[k] = v.want[k] end
  for _, k in ipairs(FLAGS) do want[k] = v.want[k] or false end
  if v.want.tracks then
    want.tracks = {}
    for i, t in ipairs(v.want.tracks) do
      want.tracks[i] = { id = t.id, codec = t.codec, size = t.size, cts = t.cts, packet = want.packet,
                         keyframe = want.keyframe, sequence_header = want.sequence_header }
    end
    want.track = want.tracks[1]
  end
  return want
end

local function check(m, v, where)
  local got, want = fields(m), expected(v)
  if not v.want.tracks then got.tracks, got.track = nil, nil end
  assert.same(want, got, v.name .. (where and (" (" .. where .. ")") or ""))
  assert.are.equal(v.type, m.type)
  assert.are.equal(v.payload, m.payload)
end

-- A server session after the plain handshake (a client session drives it).
local function server()
  local cli = rtmp.session{ role = "client", plain_handshake = true }
  local srv = rtmp.session{ role = "server", plain_handshake = true }
  for _ = 1, 4 do
    local a = cli:output()
    if #a > 0 then assert(srv:feed(a)) end
    local b = srv:output()
    if #b > 0 then assert(cli:feed(b)) end
  end
  assert.is_true(srv.ready)
  return srv
end

-- Chunk bytes built by hand: a fmt 0 header on csid, stream sid, then
-- the payload cut at cs with fmt 3 continuation headers.
local function chunks(csid, mtype, sid, ts, payload, cs)
  local out = { pack(">B I3 I3 B <I4", csid, ts, #payload, mtype, sid), payload:sub(1, cs) }
  for i = cs + 1, #payload, cs do
    out[#out + 1] = string.char(0xC0 | csid)
    out[#out + 1] = payload:sub(i, i + cs - 1)
  end
  return table.concat(out)
end
local function chunked(mtype, ts, payload, cs) return chunks(6, mtype, 1, ts, payload, cs) end
-- Set Chunk Size to cs, itself chunked at the size in force (cur).
local function set_chunk_size(cs, cur) return chunks(2, 1, 0, 0, pack(">I4", cs), cur) end

-- Feed pieces; the messages delivered, in order.
local function feed(s, pieces)
  local got = {}
  for _, p in ipairs(pieces) do
    for _, m in ipairs(assert(s:feed(p))) do got[#got + 1] = m end
  end
  s:output()
  return got
end

describe("media model", function()
  it("gives each golden vector's fields on rtmp.message", function()
    for _, v in ipairs(V) do check(rtmp.message({ type = v.type, timestamp = 0 }, v.payload), v) end
  end)

  it("gives malformed headers a decode_error and what the header still says", function()
    for _, v in ipairs(B) do check(rtmp.message({ type = v.type, timestamp = 0 }, v.payload), v) end
  end)

  it("delivers each vector through the chunk layer at every chunk size", function()
    local s = server()
    local ts, cur = 0, 128
    for _, v in ipairs(V) do
      for cs = 1, #v.payload + 1 do
        ts = ts + 1
        local msgs = feed(s, { set_chunk_size(cs, cur), chunked(v.type, ts, v.payload, cs) })
        cur = cs
        assert.are.equal(2, #msgs, v.name .. " at chunk size " .. cs)
        check(msgs[2], v, "chunk size " .. cs)
      end
    end
  end)

  it("delivers each vector through the chunk layer split at every position", function()
    local s = server()
    local ts, cur = 0, 128
    for _, v in ipairs(V) do
      for _, cs in ipairs{ 1, 7, 128 } do
        assert(s:feed(set_chunk_size(cs, cur)))
        cur = cs
        local bytes = chunked(v.type, ts, v.payload, cs)
        for k = 0, #bytes do
          ts = ts + 1
          local b = chunked(v.type, ts, v.payload, cs)
          local msgs = feed(s, { b:sub(1, k), b:sub(k + 1) })
          assert.are.equal(1, #msgs, v.name .. " split at " .. k)
          check(msgs[1], v, "chunk size " .. cs .. ", split at " .. k)
        end
      end
    end
  end)

  it("gives the same fields to sub-messages of an aggregate and to FLV tags read back", function()
    local msgs = {}
    for i, v in ipairs(V) do msgs[i] = rtmp.message({ type = v.type, timestamp = i }, v.payload) end
    local parts = assert(rtmp.aggregate(msgs):split())
    assert.are.equal(#V, #parts)
    for i, v in ipairs(V) do check(parts[i], v, "aggregate") end

    local path = os.tmpname()
    local w = assert(rtmp.flv.create(path))
    for _, m in ipairs(msgs) do assert(w:write(m)) end
    assert(w:close())
    local r = assert(rtmp.flv.open(path))
    for _, v in ipairs(V) do
      local m = assert(r:read())
      check(m, v, "FLV")
    end
    r:close()
    os.remove(path)
  end)

  it("traces media from the same model: enhanced audio, ModEx, multitrack, commands, reserved ids, faults", function()
    local srv = server()
    local f = io.tmpfile()
    assert.is_true(srv:trace(true, f))
    local bodies = {
      legacy_audio(12, 0) .. "abc",                                        -- reserved sound formats: by number
      legacy_audio(13, 0) .. "abc",
      "\x90Opus\0\0",                                                     -- enhanced audio SequenceStart
      ex_audio(5) .. multitrack(1, 1) .. "Opus" .. "\0" .. pack(">I3", 1) .. "a" .. "\4" .. pack(">I3", 2) .. "bc",
      ex_video(1, 7) .. nano(5000, 6) .. multitrack(0, 1) .. "avc1" .. "\3" .. si24(0) .. "xy",
      ex_video(5, 1) .. "\0",                                               -- enhanced command frame
      legacy_video(5, 7) .. "\1",                                           -- legacy command frame
      ex_video(1, 1) .. "av",                                              -- FourCC cut short
      legacy_audio(10),                                                    -- AAC without its packet type
    }
    local types = { AUDIO, AUDIO, AUDIO, AUDIO, VIDEO, VIDEO, VIDEO, VIDEO, AUDIO }
    for i, b in ipairs(bodies) do assert(srv:feed(chunked(types[i], 0, b, 128))) end
    f:seek("set")
    local got = {}
    for line in f:lines() do got[#got + 1] = line:match("body=(.*)$") end
    assert.same({
      '{codec=12, rate=5512, bits=16, channels=2}',
      '{codec=13, rate=5512, bits=16, channels=2}',
      '{codec="Opus", packet="seq_start"}',
      '{codec="Opus", packet="coded_frames", multitrack="many_tracks", tracks={{id=0, codec="Opus", size=1}, {id=4, codec="Opus", size=2}}}',
      '{codec="avc1", frame="key", packet="coded_frames", nano_offset=5000, multitrack="one_track", tracks={{id=3, codec="avc1", size=2}}}',
      '{codec=nil, frame="command", packet="command", command=0}',
      '{codec="avc", frame="command", command=1}',
      '{codec=nil, frame="key", packet=1, decode_error="MEDIA_TRUNCATED"}',
      '{codec="aac", rate=44100, bits=16, channels=2, decode_error="MEDIA_TRUNCATED"}',
    }, got)
    for _, body in ipairs(got) do assert(load("return " .. body, "body", "t", {})) end
  end)

  it("gives the FLV writer its frames and composition times in every form", function()
    local function duration(tags)
      local path = os.tmpname()
      local w = assert(rtmp.flv.create(path))
      for _, t in ipairs(tags) do assert(w:write{ type = t[1], timestamp = t[2], payload = t[3] }) end
      local d = w.duration
      assert(w:close())
      -- appending reads each tag's head again: the same answer
      local a = assert(rtmp.flv.create(path, { append = true }))
      local again = a.duration
      assert(a:close())
      os.remove(path)
      assert.are.equal(d, again, "duration after reopening for append")
      return d
    end
    -- frames at 0 and 40 with composition times 0 and 80: the latest presentation is 120, the step 40
    assert.are.equal(160, duration{
      { "video", 0, ex_video(1, 0) .. "hvc1" .. "\1\2" },
      { "video", 0, ex_video(1, 1) .. "hvc1" .. si24(0) .. "k" },
      { "video", 40, ex_video(1, 7) .. nano(10, 6) .. multitrack(1, 1) .. "hvc1" .. "\0" .. pack(">I3", 4) .. si24(80) .. "i" },
      { "video", 80, ex_video(1, 2) .. "hvc1" },              -- SequenceEnd: not a frame
      { "video", 90, ex_video(5, 1) .. "\0" },                -- command: not a frame
    })
    assert.are.equal(160, duration{
      { "video", 0, legacy_video(1, 7) .. "\0" .. si24(0) .. "c" },
      { "video", 0, legacy_video(1, 7) .. "\1" .. si24(0) .. "k" },
      { "video", 40, legacy_video(2, 7) .. "\1" .. si24(80) .. "i" },
      { "video", 80, legacy_video(1, 7) .. "\2" .. si24(0) },
    })
  end)

  it("leaves fields that are not media alone on other message types", function()
    local m = rtmp.message({ type = "data" }, rtmp.amf0.encode("onMetaData", {}))
    assert.is_false(m.keyframe)
    assert.is_false(m.sequence_header)
    assert.is_nil(m.codec)
    assert.is_nil(m.tracks)
    assert.is_nil(m.decode_error)
  end)
end)
