-- The media model (core/media.c) as scripts see it: msg.codec,
-- msg.packet, msg.keyframe, msg.sequence_header, msg.tracks / msg.track
-- and the other media fields of audio and video message objects.
--
-- Golden vectors are built here with string.pack from the layouts of the
-- FLV spec (legacy headers) and Enhanced RTMP v2 (ExVideoTagHeader,
-- ExAudioTagHeader, ModEx, Multitrack, command frames), each with the
-- fields it must give.  Each vector is checked on rtmp.message and after
-- the chunk layer: chunked by hand at every chunk size from 1 to past its
-- length and fed to a server session whole, and at a few chunk sizes
-- split in two at every position.  Malformed headers give decode_error
-- and never a read past the end (the fuzz target and ASan runs cover the
-- reads; here, the answers).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local pack = string.pack
local AUDIO, VIDEO = 8, 9

-- Byte builders: byte 0 of each form.
local function legacy_video(frame, codec) return string.char(frame << 4 | codec) end
local function legacy_audio(format, rate, bits16, stereo)
  return string.char(format << 4 | (rate or 3) << 2 | (bits16 == false and 0 or 2) | (stereo == false and 0 or 1))
end
local function ex_video(frame, pt) return string.char(0x80 | frame << 4 | pt) end
local function ex_audio(pt) return string.char(0x90 | pt) end
-- ModEx: size-1 in a UI8 (UI8 255 then UI16 size-1 when the size is 256 or more),
-- the data, then TTTT PPPP.
local function modex(data, modex_type, next_pt)
  local n = #data
  local size = n < 256 and pack("B", n - 1) or pack(">B I2", 255, n - 1)
  return size .. data .. string.char(modex_type << 4 | next_pt)
end
local function nano(ns, next_pt) return modex(pack(">I3", ns), 0, next_pt) end
local function multitrack(mode, pt) return string.char(mode << 4 | pt) end
local function si24(v) return pack(">i3", v) end

-- n bytes of a pattern (codec data stand-ins).
local function data(n, seed)
  local t = {}
  for i = 1, n do t[i] = string.char((i * 7 + (seed or 1) * 13) % 256) end
  return table.concat(t)
end

local AVCC, HVCC, VVCC = "\1\100\0\31\255\225\0\4gB\192\10", "\1\1\96\0\0\0\144\0\0\0\0\0", "\255\0\1\2"
local VPCC, AV1C = "\1\0\0\0\10\128\0\0", "\129\8\12\0"
local ASC, OPUSHEAD, FLACINFO = "\18\16", "OpusHead\1\2\56\1\128\187\0\0\0\0\0", "fLaC\0\0\0\34" .. data(34, 5)
local COLOR = rtmp.amf0.encode("colorInfo", { colorConfig = { bitDepth = 10, colorPrimaries = 9 } })

-- A track as expected (packet, keyframe, sequence_header come from the message).
local function T(id, codec, size, cts) return { id = id, codec = codec, size = size, cts = cts or 0 } end

-- name, type, payload, expected fields (nil fields must be nil; booleans default false).
local V = {}
local function vec(name, mtype, payload, want) V[#V + 1] = { name = name, type = mtype, payload = payload, want = want } end

---------------------------------------------------------------------------
-- Legacy headers
---------------------------------------------------------------------------
vec("legacy AVC sequence header", VIDEO, legacy_video(1, 7) .. "\0" .. si24(0) .. AVCC,
  { codec = "avc1", codec_id = 7, packet = "seq_start", keyframe = true, sequence_header = true,
    tracks = { T(0, "avc1", #AVCC) } })
vec("legacy AVC keyframe NALU with a composition time", VIDEO, legacy_video(1, 7) .. "\1" .. si24(80) .. data(50),
  { codec = "avc1", codec_id = 7, packet = "coded_frames", keyframe = true, tracks = { T(0, "avc1", 50, 80) } })
vec("legacy AVC inter frame, negative composition time", VIDEO, legacy_video(2, 7) .. "\1" .. si24(-33) .. data(20),
  { codec = "avc1", codec_id = 7, packet = "coded_frames", tracks = { T(0, "avc1", 20, -33) } })
vec("legacy AVC generated keyframe (frame type 4)", VIDEO, legacy_video(4, 7) .. "\1" .. si24(0) .. data(9),
  { codec = "avc1", codec_id = 7, packet = "coded_frames", keyframe = true, tracks = { T(0, "avc1", 9) } })
vec("legacy AVC end of sequence", VIDEO, legacy_video(1, 7) .. "\2" .. si24(0),
  { codec = "avc1", codec_id = 7, packet = "seq_end", keyframe = true, sequence_end = true,
    tracks = { T(0, "avc1", 0) } })
vec("legacy HEVC (codec id 12) sequence header", VIDEO, legacy_video(1, 12) .. "\0" .. si24(0) .. HVCC,
  { codec = "hvc1", codec_id = 12, packet = "seq_start", keyframe = true, sequence_header = true,
    tracks = { T(0, "hvc1", #HVCC) } })
vec("legacy HEVC inter frame", VIDEO, legacy_video(2, 12) .. "\1" .. si24(40) .. data(30),
  { codec = "hvc1", codec_id = 12, packet = "coded_frames", tracks = { T(0, "hvc1", 30, 40) } })
vec("legacy VP6 keyframe (no packet type)", VIDEO, legacy_video(1, 4) .. data(25),
  { codec = "vp6", codec_id = 4, packet = "coded_frames", keyframe = true, tracks = { T(0, "vp6", 25) } })
vec("legacy H.263 disposable frame", VIDEO, legacy_video(3, 2) .. data(12),
  { codec = "h263", codec_id = 2, packet = "coded_frames", tracks = { T(0, "h263", 12) } })
vec("legacy video command frame (frame type 5): one UI8, no payload", VIDEO, legacy_video(5, 7) .. "\1",
  { codec = "avc1", codec_id = 7, packet = "command", command = 1, tracks = {} })
vec("legacy AAC sequence header", AUDIO, legacy_audio(10) .. "\0" .. ASC,
  { codec = "mp4a", codec_id = 10, packet = "seq_start", sequence_header = true, tracks = { T(0, "mp4a", #ASC) } })
vec("legacy AAC raw", AUDIO, legacy_audio(10) .. "\1" .. data(40),
  { codec = "mp4a", codec_id = 10, packet = "coded_frames", tracks = { T(0, "mp4a", 40) } })
vec("legacy MP3", AUDIO, legacy_audio(2, 3, true, true) .. data(30),
  { codec = ".mp3", codec_id = 2, packet = "coded_frames", tracks = { T(0, ".mp3", 30) } })
vec("legacy MP3 8 kHz (format 14)", AUDIO, legacy_audio(14, 0, true, false) .. data(10),
  { codec = ".mp3", codec_id = 14, packet = "coded_frames", tracks = { T(0, ".mp3", 10) } })
vec("legacy Speex", AUDIO, legacy_audio(11, 1, true, false) .. data(8),
  { codec = "speex", codec_id = 11, packet = "coded_frames", tracks = { T(0, "speex", 8) } })
vec("legacy reserved sound format 12: no codec name, the id", AUDIO, legacy_audio(12) .. data(6),
  { codec_id = 12, packet = "coded_frames", tracks = { T(0, nil, 6) } })

---------------------------------------------------------------------------
-- ExVideoTagHeader: every FourCC and packet type
---------------------------------------------------------------------------
for _, c in ipairs{ { "avc1", AVCC }, { "hvc1", HVCC }, { "vvc1", VVCC } } do
  local fourcc, config = c[1], c[2]
  vec(fourcc .. " SequenceStart", VIDEO, ex_video(1, 0) .. fourcc .. config,
    { codec = fourcc, packet = "seq_start", keyframe = true, sequence_header = true, tracks = { T(0, fourcc, #config) } })
  vec(fourcc .. " CodedFrames (SI24 composition time)", VIDEO, ex_video(1, 1) .. fourcc .. si24(-40) .. data(33),
    { codec = fourcc, packet = "coded_frames", keyframe = true, tracks = { T(0, fourcc, 33, -40) } })
  vec(fourcc .. " CodedFramesX (no composition time)", VIDEO, ex_video(2, 3) .. fourcc .. data(21),
    { codec = fourcc, packet = "coded_frames_x", tracks = { T(0, fourcc, 21) } })
  vec(fourcc .. " SequenceEnd", VIDEO, ex_video(1, 2) .. fourcc,
    { codec = fourcc, packet = "seq_end", keyframe = true, sequence_end = true, tracks = { T(0, fourcc, 0) } })
end
for _, c in ipairs{ { "vp08", VPCC }, { "vp09", VPCC }, { "av01", AV1C } } do
  local fourcc, config = c[1], c[2]
  vec(fourcc .. " SequenceStart", VIDEO, ex_video(1, 0) .. fourcc .. config,
    { codec = fourcc, packet = "seq_start", keyframe = true, sequence_header = true, tracks = { T(0, fourcc, #config) } })
  vec(fourcc .. " CodedFrames (no composition time)", VIDEO, ex_video(2, 1) .. fourcc .. data(17),
    { codec = fourcc, packet = "coded_frames", tracks = { T(0, fourcc, 17) } })
  vec(fourcc .. " generated keyframe", VIDEO, ex_video(4, 1) .. fourcc .. data(5),
    { codec = fourcc, packet = "coded_frames", keyframe = true, tracks = { T(0, fourcc, 5) } })
end
vec("hvc1 Metadata (colorInfo)", VIDEO, ex_video(1, 4) .. "hvc1" .. COLOR,
  { codec = "hvc1", packet = "metadata", keyframe = true, tracks = { T(0, "hvc1", #COLOR) } })
vec("Metadata with frame type 5 is metadata, not a command", VIDEO, ex_video(5, 4) .. "av01" .. COLOR,
  { codec = "av01", packet = "metadata", tracks = { T(0, "av01", #COLOR) } })
vec("av01 MPEG2TSSequenceStart", VIDEO, ex_video(1, 5) .. "av01" .. "\128\4\1\2\3\4",
  { codec = "av01", packet = "mpeg2ts_seq_start", keyframe = true, sequence_header = true, tracks = { T(0, "av01", 6) } })
vec("an unlisted FourCC keeps its bytes", VIDEO, ex_video(2, 1) .. "xyz9" .. data(4),
  { codec = "xyz9", packet = "coded_frames", tracks = { T(0, "xyz9", 4) } })

---------------------------------------------------------------------------
-- ExAudioTagHeader: every FourCC and packet type
---------------------------------------------------------------------------
for _, c in ipairs{ { "mp4a", ASC }, { "Opus", OPUSHEAD }, { "fLaC", FLACINFO }, { "ac-3", "" }, { "ec-3", "" }, { ".mp3", "" } } do
  local fourcc, config = c[1], c[2]
  vec(fourcc .. " SequenceStart", AUDIO, ex_audio(0) .. fourcc .. config,
    { codec = fourcc, packet = "seq_start", sequence_header = true, tracks = { T(0, fourcc, #config) } })
  vec(fourcc .. " CodedFrames", AUDIO, ex_audio(1) .. fourcc .. data(27),
    { codec = fourcc, packet = "coded_frames", tracks = { T(0, fourcc, 27) } })
end
vec("Opus SequenceStart as in issue 17 (\\x90Opus\\0\\0)", AUDIO, "\x90Opus\0\0",
  { codec = "Opus", packet = "seq_start", sequence_header = true, tracks = { T(0, "Opus", 2) } })
vec("Opus SequenceEnd", AUDIO, ex_audio(2) .. "Opus",
  { codec = "Opus", packet = "seq_end", sequence_end = true, tracks = { T(0, "Opus", 0) } })
vec("MultichannelConfig native (UI32 channel flags)", AUDIO, ex_audio(4) .. "Opus" .. pack(">B B I4", 1, 6, 0x3F),
  { codec = "Opus", packet = "multichannel_config", sequence_header = true, tracks = { T(0, "Opus", 6) } })
vec("MultichannelConfig custom (channel map)", AUDIO, ex_audio(4) .. "mp4a" .. pack("B B B B B", 2, 3, 0, 1, 3),
  { codec = "mp4a", packet = "multichannel_config", sequence_header = true, tracks = { T(0, "mp4a", 5) } })
vec("MultichannelConfig unspecified", AUDIO, ex_audio(4) .. "fLaC" .. pack("B B", 0, 2),
  { codec = "fLaC", packet = "multichannel_config", sequence_header = true, tracks = { T(0, "fLaC", 2) } })

---------------------------------------------------------------------------
-- ModEx (TimestampOffsetNano, repeated, 16-bit size), before other packet types
---------------------------------------------------------------------------
vec("ModEx TimestampOffsetNano before avc1 CodedFrames", VIDEO,
  ex_video(1, 7) .. nano(500000, 1) .. "avc1" .. si24(20) .. data(15),
  { codec = "avc1", packet = "coded_frames", keyframe = true, nano_offset = 500000, tracks = { T(0, "avc1", 15, 20) } })
vec("ModEx repeated: an unknown type (skipped), then TimestampOffsetNano", VIDEO,
  ex_video(2, 7) .. modex("\9", 5, 7) .. nano(999999, 3) .. "hvc1" .. data(11),
  { codec = "hvc1", packet = "coded_frames_x", nano_offset = 999999, tracks = { T(0, "hvc1", 11) } })
vec("ModEx with a 16-bit size (300 bytes of data) before SequenceStart", VIDEO,
  ex_video(1, 7) .. modex(pack(">I3", 7) .. data(297), 0, 0) .. "av01" .. AV1C,
  { codec = "av01", packet = "seq_start", keyframe = true, sequence_header = true, nano_offset = 7,
    tracks = { T(0, "av01", #AV1C) } })
vec("ModEx of 256 bytes (the 16-bit form at its boundary)", AUDIO,
  ex_audio(7) .. modex(data(256), 3, 1) .. "mp4a" .. data(3),
  { codec = "mp4a", packet = "coded_frames", tracks = { T(0, "mp4a", 3) } })
vec("audio ModEx TimestampOffsetNano before Opus SequenceStart", AUDIO,
  ex_audio(7) .. nano(123, 0) .. "Opus" .. OPUSHEAD,
  { codec = "Opus", packet = "seq_start", sequence_header = true, nano_offset = 123,
    tracks = { T(0, "Opus", #OPUSHEAD) } })

---------------------------------------------------------------------------
-- Multitrack: OneTrack, ManyTracks, ManyTracksManyCodecs
---------------------------------------------------------------------------
vec("video multitrack OneTrack avc1 CodedFrames", VIDEO,
  ex_video(1, 6) .. multitrack(0, 1) .. "avc1" .. "\3" .. si24(40) .. data(19),
  { codec = "avc1", packet = "coded_frames", keyframe = true, multitrack = "one_track",
    tracks = { T(3, "avc1", 19, 40) } })
vec("audio multitrack ManyTracks Opus CodedFrames", AUDIO,
  ex_audio(5) .. multitrack(1, 1) .. "Opus" .. "\0" .. pack(">I3", 7) .. data(7, 1) .. "\1" .. pack(">I3", 0)
    .. "\2" .. pack(">I3", 4) .. data(4, 2),
  { codec = "Opus", packet = "coded_frames", multitrack = "many_tracks",
    tracks = { T(0, "Opus", 7), T(1, "Opus", 0), T(2, "Opus", 4) } })
vec("video multitrack ManyTracks hvc1 CodedFrames: each track's own composition time", VIDEO,
  ex_video(2, 6) .. multitrack(1, 1) .. "hvc1" .. "\0" .. pack(">I3", 13) .. si24(10) .. data(10)
    .. "\1" .. pack(">I3", 8) .. si24(-20) .. data(5),
  { codec = "hvc1", packet = "coded_frames", multitrack = "many_tracks",
    tracks = { T(0, "hvc1", 10, 10), T(1, "hvc1", 5, -20) } })
vec("video multitrack ManyTracksManyCodecs SequenceStart", VIDEO,
  ex_video(1, 6) .. multitrack(2, 0) .. "avc1" .. "\0" .. pack(">I3", #AVCC) .. AVCC
    .. "hvc1" .. "\1" .. pack(">I3", #HVCC) .. HVCC .. "av01" .. "\7" .. pack(">I3", #AV1C) .. AV1C,
  { codec = "avc1", packet = "seq_start", keyframe = true, sequence_header = true, multitrack = "many_tracks_many_codecs",
    tracks = { T(0, "avc1", #AVCC), T(1, "hvc1", #HVCC), T(7, "av01", #AV1C) } })
vec("audio multitrack ManyTracksManyCodecs MultichannelConfig", AUDIO,
  ex_audio(5) .. multitrack(2, 4) .. "Opus" .. "\0" .. pack(">I3", 6) .. pack(">B B I4", 1, 2, 3)
    .. "mp4a" .. "\1" .. pack(">I3", 2) .. pack("B B", 0, 1),
  { codec = "Opus", packet = "multichannel_config", sequence_header = true,
    multitrack = "many_tracks_many_codecs", tracks = { T(0, "Opus", 6), T(1, "mp4a", 2) } })
vec("ModEx before Multitrack", VIDEO,
  ex_video(1, 7) .. nano(42, 6) .. multitrack(0, 0) .. "vp09" .. "\5" .. VPCC,
  { codec = "vp09", packet = "seq_start", keyframe = true, sequence_header = true, nano_offset = 42,
    multitrack = "one_track", tracks = { T(5, "vp09", #VPCC) } })
do
  local many = {}
  for id = 0, 15 do many[#many + 1] = string.char(id) .. pack(">I3", 2) .. data(2, id) end
  local tracks = {}
  for id = 0, 15 do tracks[#tracks + 1] = T(id, "mp4a", 2) end
  vec("16 tracks (the model's bound)", AUDIO, ex_audio(5) .. multitrack(1, 1) .. "mp4a" .. table.concat(many),
    { codec = "mp4a", packet = "coded_frames", multitrack = "many_tracks", tracks = tracks })
end

---------------------------------------------------------------------------
-- Command frames
---------------------------------------------------------------------------
vec("enhanced command frame StartSeek: no FourCC, no body", VIDEO, ex_video(5, 1) .. "\0",
  { packet = "command", command = 0, tracks = {} })
vec("enhanced command frame EndSeek after a ModEx", VIDEO, ex_video(5, 7) .. nano(5, 0) .. "\1",
  { packet = "command", command = 1, nano_offset = 5, tracks = {} })

---------------------------------------------------------------------------
-- Malformed headers: decode_error, and what the header still says
---------------------------------------------------------------------------
local E = {
  empty = "audio or video message without a header byte",
  truncated = "audio or video header cut short",
  modex_size = "ModEx data runs past the end of the message",
  modex = "ModEx TimestampOffsetNano shorter than 3 bytes or over 999999 ns",
  packet = "reserved or misplaced enhanced RTMP packet type",
  multitrack = "reserved enhanced RTMP multitrack type",
  track_size = "multitrack track size runs past the end of the message",
  tracks = "more tracks in one message than the media model holds (16)",
}
local B = {} -- malformed vectors: checked on rtmp.message only (a session delivers them the same way)
local function bad(name, mtype, payload, want) B[#B + 1] = { name = name, type = mtype, payload = payload, want = want } end
bad("empty audio body", AUDIO, "", { decode_error = E.empty, tracks = {} })
bad("empty video body", VIDEO, "", { decode_error = E.empty, tracks = {} })
bad("audio FourCC cut short", AUDIO, "\x90Opu", { decode_error = E.truncated, tracks = {} })
bad("video FourCC cut short", VIDEO, ex_video(1, 1) .. "av", { keyframe = true, decode_error = E.truncated, tracks = {} })
bad("ManyTracksManyCodecs: a track's FourCC cut short", VIDEO, ex_video(1, 6) .. multitrack(2, 0) .. "avc",
  { keyframe = true, packet = "seq_start", sequence_header = true, multitrack = "many_tracks_many_codecs",
    decode_error = E.truncated, tracks = {} })
bad("a track size past the end", AUDIO, ex_audio(5) .. multitrack(1, 1) .. "Opus" .. "\0" .. pack(">I3", 100) .. data(5),
  { codec = "Opus", packet = "coded_frames", multitrack = "many_tracks", decode_error = E.track_size, tracks = {} })
bad("the second track's size past the end", VIDEO,
  ex_video(2, 6) .. multitrack(1, 3) .. "vp09" .. "\0" .. pack(">I3", 2) .. "ab" .. "\1" .. pack(">I3", 3) .. "ab",
  { codec = "vp09", packet = "coded_frames_x", multitrack = "many_tracks", decode_error = E.track_size,
    tracks = { T(0, "vp09", 2) } })
bad("a track size cut short", VIDEO, ex_video(2, 6) .. multitrack(1, 1) .. "vp09" .. "\0" .. "\0\0",
  { codec = "vp09", packet = "coded_frames", multitrack = "many_tracks", decode_error = E.truncated, tracks = {} })
bad("ManyTracks with no track", AUDIO, ex_audio(5) .. multitrack(1, 1) .. "Opus",
  { codec = "Opus", packet = "coded_frames", multitrack = "many_tracks", decode_error = E.truncated, tracks = {} })
bad("a ModEx size past the end", VIDEO, ex_video(1, 7) .. "\9" .. "abc", { keyframe = true, decode_error = E.modex_size, tracks = {} })
bad("a ModEx 16-bit size past the end", VIDEO, ex_video(1, 7) .. "\255\1\0" .. data(100),
  { keyframe = true, decode_error = E.modex_size, tracks = {} })
bad("a ModEx 16-bit size cut short", AUDIO, ex_audio(7) .. "\255\1", { decode_error = E.truncated, tracks = {} })
bad("a ModEx without its type byte", AUDIO, ex_audio(7) .. "\2" .. "abc", { decode_error = E.truncated, tracks = {} })
bad("TimestampOffsetNano of 2 bytes", VIDEO, ex_video(2, 7) .. modex("\1\2", 0, 1) .. "avc1" .. si24(0),
  { decode_error = E.modex, tracks = {} })
bad("TimestampOffsetNano over 999999", VIDEO, ex_video(2, 7) .. nano(1000000, 1) .. "avc1" .. si24(0),
  { decode_error = E.modex, tracks = {} })
bad("reserved video packet type 8", VIDEO, ex_video(1, 8) .. "avc1", { keyframe = true, decode_error = E.packet, tracks = {} })
bad("reserved audio packet type 3", AUDIO, ex_audio(3) .. "Opus", { decode_error = E.packet, tracks = {} })
bad("Multitrack inside Multitrack", VIDEO, ex_video(1, 6) .. multitrack(0, 6) .. "avc1" .. "\0",
  { keyframe = true, multitrack = "one_track", decode_error = E.packet, tracks = {} })
bad("ModEx as the tracks' packet type", AUDIO, ex_audio(5) .. multitrack(0, 7) .. "Opus" .. "\0",
  { multitrack = "one_track", decode_error = E.packet, tracks = {} })
bad("reserved multitrack type 3", VIDEO, ex_video(1, 6) .. multitrack(3, 1) .. "avc1",
  { keyframe = true, decode_error = E.multitrack, tracks = {} })
bad("avc1 CodedFrames without its composition time", VIDEO, ex_video(1, 1) .. "avc1" .. "\0",
  { codec = "avc1", packet = "coded_frames", keyframe = true, decode_error = E.truncated, tracks = {} })
bad("MultichannelConfig custom map cut short", AUDIO, ex_audio(4) .. "Opus" .. pack("B B B", 2, 4, 0),
  { codec = "Opus", packet = "multichannel_config", sequence_header = true, decode_error = E.truncated, tracks = {} })
bad("MultichannelConfig native flags cut short", AUDIO, ex_audio(4) .. "Opus" .. pack("B B I2", 1, 2, 3),
  { codec = "Opus", packet = "multichannel_config", sequence_header = true, decode_error = E.truncated, tracks = {} })
bad("enhanced command frame without its command", VIDEO, ex_video(5, 1), { decode_error = E.truncated, tracks = {} })
bad("legacy command frame without its command", VIDEO, legacy_video(5, 7), { codec = "avc1", codec_id = 7, decode_error = E.truncated, tracks = {} })
bad("legacy AAC without its packet type", AUDIO, legacy_audio(10), { codec = "mp4a", codec_id = 10, decode_error = E.truncated, tracks = {} })
bad("legacy AVC without its packet type", VIDEO, legacy_video(1, 7), { codec = "avc1", codec_id = 7, keyframe = true, decode_error = E.truncated, tracks = {} })
do
  local many = {}
  for id = 0, 16 do many[#many + 1] = string.char(id) .. pack(">I3", 1) .. "x" end
  bad("17 tracks", AUDIO, ex_audio(5) .. multitrack(1, 1) .. "mp4a" .. table.concat(many),
    { codec = "mp4a", packet = "coded_frames", multitrack = "many_tracks", decode_error = E.tracks })
end

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

  it("leaves fields that are not media alone on other message types", function()
    local m = rtmp.message({ type = "data" }, rtmp.amf0.encode("onMetaData", {}))
    assert.is_false(m.keyframe)
    assert.is_false(m.sequence_header)
    assert.is_nil(m.codec)
    assert.is_nil(m.tracks)
    assert.is_nil(m.decode_error)
  end)
end)
