-- spec/support/media_vectors.lua: golden audio and video message bodies
-- built with string.pack from the layouts of the FLV spec (legacy
-- headers) and Enhanced RTMP v2 (ExVideoTagHeader, ExAudioTagHeader,
-- ModEx, Multitrack, command frames), each with the media fields a
-- script must see (spec/unit/media_spec.lua), and malformed ones.  Also
-- the fuzz seeds of fuzz_media (fuzz/seeds.lua).
local amf0 = require("rtmp").amf0

local _M = {}

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
local COLOR = amf0.encode("colorInfo", { colorConfig = { bitDepth = 10, colorPrimaries = 9 } })

-- A track as expected (packet, keyframe, sequence_header come from the message).
local function T(id, codec, size, cts) return { id = id, codec = codec, size = size, cts = cts or 0 } end

-- name, type, payload, expected fields (nil fields must be nil; booleans default false).
local V = {}
_M.valid = V
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
local E = { -- the decode_error messages (the error table's)
  empty = "audio or video message without a header byte",
  truncated = "audio or video header cut short",
  modex_size = "ModEx data runs past the end of the message",
  modex = "ModEx TimestampOffsetNano shorter than 3 bytes or over 999999 ns",
  packet = "reserved or misplaced enhanced RTMP packet type",
  multitrack = "reserved enhanced RTMP multitrack type",
  track_size = "multitrack track size runs past the end of the message",
  tracks = "more tracks in one message than the media model holds (16)",
}
local B = {} -- malformed vectors
_M.malformed = B
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


-- The builders, for specs that make more bodies.
_M.AUDIO, _M.VIDEO = AUDIO, VIDEO
_M.legacy_video, _M.legacy_audio, _M.ex_video, _M.ex_audio = legacy_video, legacy_audio, ex_video, ex_audio
_M.modex, _M.nano, _M.multitrack, _M.si24 = modex, nano, multitrack, si24

return _M
