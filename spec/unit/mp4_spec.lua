-- rtmp.mp4: the reader against ffprobe on clips ffmpeg makes (every codec,
-- a fragmented file, two video tracks): tracks, configuration records,
-- every sample's bytes, times and sync flag; the RTMP messages made from
-- them (legacy and enhanced headers, multitrack) read back by the media
-- model; the fragmented writer byte by byte (boxes walked here) and
-- round trips that keep every sample's bytes; MP4 files built with
-- string.pack and spoiled one way at a time (cut at every length, sizes
-- past their parent, sample tables whose counts lie) give errors that
-- name the box, never a crash or a read past the end.
local H = require "support.helpers"
local M = require "support.mp4media"
local rtmp = require "rtmp"
local pack, unpack = string.pack, string.unpack

-- ---- boxes, by hand ----

local function box(t, ...) local b = table.concat({ ... }); return pack(">I4", 8 + #b) .. t .. b end
local function full(t, v, f, ...) return box(t, pack(">B I3", v, f), ...) end
local MATRIX = pack(">i4i4i4 i4i4i4 i4i4i4", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
local AVCC = "\1\100\0\31\255\225\0\4gB\192\10\1\0\4h\206\60\128"

-- The top-level boxes of s (or of a box body): { { type, body, at } }.
local function boxes(s, from, to)
  local list, pos = {}, from or 1
  to = to or #s
  while pos <= to do
    local size, t = unpack(">I4 c4", s, pos)
    list[#list + 1] = { type = t, body = s:sub(pos + 8, pos + size - 1), at = pos - 1 }
    pos = pos + size
  end
  return list
end
local function child(b, t)
  for _, c in ipairs(boxes(b)) do if c.type == t then return c.body end end
end
local function types(list)
  local t = {}
  for i, b in ipairs(list) do t[i] = b.type end
  return table.concat(t, " ")
end

-- A one-track H.264 file: moov first, then the mdat with the samples.
-- o: sizes (default 10, 20, 30), delta (40), stss, spoil = function(parts)
-- changing parts (tables by box name) before they are joined.
local function small_mp4(o)
  o = o or {}
  local sizes = o.sizes or { 10, 20, 30 }
  local n = #sizes
  local function build(data_at)
    local p = {}
    p.stsd = full("stsd", 0, 0, pack(">I4", 1), box("avc1", ("\0"):rep(6), pack(">I2", 1), ("\0"):rep(16),
      pack(">I2 I2 I4 I4 I4 I2", 160, 120, 0x480000, 0x480000, 0, 1), ("\0"):rep(32), pack(">I2 i2", 24, -1),
      box("avcC", AVCC)))
    p.stts = full("stts", 0, 0, pack(">I4 I4 I4", 1, n, o.delta or 40))
    p.stss = full("stss", 0, 0, pack(">I4 I4", 1, 1))
    local sz = { pack(">I4 I4", 0, n) }
    for i = 1, n do sz[#sz + 1] = pack(">I4", sizes[i]) end
    p.stsz = full("stsz", 0, 0, table.concat(sz))
    p.stsc = full("stsc", 0, 0, pack(">I4 I4 I4 I4", 1, 1, n, 1))
    p.stco = full("stco", 0, 0, pack(">I4 I4", 1, data_at))
    if o.spoil then o.spoil(p) end
    local stbl = box("stbl", p.stsd, p.stts, p.stss, p.stsz, p.stsc, p.stco)
    local minf = box("minf", full("vmhd", 0, 1, ("\0"):rep(8)), stbl)
    local mdia = box("mdia", full("mdhd", 0, 0, pack(">I4 I4 I4 I4 I2 I2", 0, 0, 1000, 40 * n, 0x55C4, 0)),
      full("hdlr", 0, 0, pack(">I4", 0), "vide", ("\0"):rep(12), "v\0"), minf)
    local tkhd = full("tkhd", 0, 3, pack(">I4 I4 I4 I4 I4", 0, 0, 1, 0, 40 * n), ("\0"):rep(8),
      pack(">I2 I2 I2 I2", 0, 0, 0, 0), MATRIX, pack(">I4 I4", 160 << 16, 120 << 16))
    local mvhd = full("mvhd", 0, 0, pack(">I4 I4 I4 I4 I4 I2", 0, 0, 1000, 40 * n, 0x10000, 0x100),
      ("\0"):rep(10), MATRIX, ("\0"):rep(24), pack(">I4", 2))
    return box("ftyp", "isom", pack(">I4", 0x200), "isom"), box("moov", mvhd, box("trak", tkhd, mdia))
  end
  local ftyp, moov = build(0)
  local data = {}
  for i = 1, n do data[i] = string.char(i):rep(sizes[i]) end
  data = table.concat(data)
  ftyp, moov = build(#ftyp + #moov + 8)
  return ftyp .. moov .. box("mdat", data), data
end

local function file_of(bytes, name)
  local path = H.tmpname(name or "x.mp4")
  H.write_file(path, bytes)
  return path
end

-- Every sample of an open reader (nil, err, code on an error).
local function samples(r)
  local list = {}
  while true do
    local s, err, code = r:read()
    if not s then
      if err then return nil, err, code end
      return list
    end
    list[#list + 1] = s
  end
end

-- Open and read a whole file: the samples, or nil, err, code from
-- whichever failed.
local function read_all(path, opts)
  local r, err, code = rtmp.mp4.open(path, opts)
  if not r then return nil, err, code end
  local list, rerr, rcode = samples(r)
  r:close()
  return list, rerr, rcode
end

describe("rtmp.mp4 reader", function()
  it("reads a file built by hand: the track, its avcC, every sample where the tables put it", function()
    local bytes, data = small_mp4()
    local path = file_of(bytes)
    local r = assert(rtmp.mp4.open(path))
    assert.are.equal(1, #r.tracks)
    local t = r.tracks[1]
    assert.same({ "video", "avc1", "avc1", 1000, 160, 120, AVCC, AVCC },
      { t.kind, t.codec, t.entry, t.timescale, t.width, t.height, t.box, t.config })
    assert.are.equal(0.12, r.duration)
    assert.is_false(r.fragmented)
    local list = assert(samples(r))
    local at = #bytes - #data
    local want = {
      { track = 1, dts = 0, cts = 0, duration = 40, key = true, offset = at, size = 10, data = ("\1"):rep(10) },
      { track = 1, dts = 40, cts = 0, duration = 40, key = false, offset = at + 10, size = 20, data = ("\2"):rep(20) },
      { track = 1, dts = 80, cts = 0, duration = 40, key = false, offset = at + 30, size = 30, data = ("\3"):rep(30) },
    }
    for i, s in ipairs(list) do s.time = nil; assert.same(want[i], s) end
    assert.are.equal(3, #list)
    r:close()
  end)

  it("gives an error, never a sample past the end, for the file cut at every length", function()
    local bytes = small_mp4()
    local codes = {}
    for len = 0, #bytes - 1 do
      local list, err, code = read_all(file_of(bytes:sub(1, len), "cut.mp4"))
      assert.is_nil(list, "a prefix of " .. len .. " bytes read whole")
      assert.is_string(err)
      codes[code] = true
    end
    assert.same({ MP4_TRUNCATED = true, MP4_NO_MOOV = true }, codes)
  end)

  local function spoiled(spoil)
    return read_all(file_of((small_mp4{ spoil = spoil }), "spoiled.mp4"))
  end

  it("refuses sample tables whose counts lie, naming the box", function()
    -- stsz says 4 samples, stts 3
    local _, err, code = spoiled(function(p)
      p.stsz = full("stsz", 0, 0, pack(">I4 I4 I4 I4 I4 I4", 0, 4, 10, 20, 30, 1))
    end)
    assert.are.equal("MP4_TABLE", code)
    assert.matches("stts box at offset %d+", err)
    -- stts claims 1000 entries in a 12-byte box
    _, err, code = spoiled(function(p) p.stts = full("stts", 0, 0, pack(">I4 I4 I4", 1000, 3, 40)) end)
    assert.are.equal("MP4_TABLE", code)
    assert.matches("stts box", err)
    -- stsc: 3 samples per chunk from chunk 2, but there is one chunk
    _, _, code = spoiled(function(p) p.stsc = full("stsc", 0, 0, pack(">I4 I4 I4 I4", 1, 2, 3, 1)) end)
    assert.are.equal("MP4_TABLE", code)
    -- stsc: chunks of 1 sample, so 2 samples have no chunk
    _, _, code = spoiled(function(p) p.stsc = full("stsc", 0, 0, pack(">I4 I4 I4 I4", 1, 1, 1, 1)) end)
    assert.are.equal("MP4_TABLE", code)
    -- stss names sample 7 of 3
    _, _, code = spoiled(function(p) p.stss = full("stss", 0, 0, pack(">I4 I4", 1, 7)) end)
    assert.are.equal("MP4_TABLE", code)
    -- the chunk lies past the end of the file: found when its sample is read
    local list, e2, c2 = spoiled(function(p) p.stco = full("stco", 0, 0, pack(">I4 I4", 1, 1 << 30)) end)
    assert.is_nil(list)
    assert.are.equal("MP4_TRUNCATED", c2)
    assert.is_string(e2)
  end)

  it("refuses box sizes below their header or past the box holding them", function()
    local _, err, code = spoiled(function(p) p.stts = pack(">I4", 4) .. "stts" .. p.stts:sub(9) end)
    assert.are.equal("MP4_BOX", code)
    assert.matches("stts box", err)
    _, _, code = spoiled(function(p) p.stco = pack(">I4", 4096) .. p.stco:sub(5) end)
    assert.are.equal("MP4_BOX", code)
    local bytes = small_mp4()
    _, err, code = read_all(file_of(pack(">I4", 4) .. bytes:sub(5)))
    assert.are.equal("MP4_BOX", code)
    assert.matches("ftyp box at offset 0", err)
    _, _, code = read_all(file_of(bytes:sub(1, 20) .. pack(">I4", #bytes) .. bytes:sub(25)))
    assert.are.equal("MP4_TRUNCATED", code)
  end)

  it("says when there is no moov, and keeps the moov under max_box", function()
    local _, err, code = read_all(file_of(box("ftyp", "isom\0\0\2\0") .. box("mdat", "abc")))
    assert.are.equal("MP4_NO_MOOV", code)
    assert.matches("without a movie box", err)
    local bytes = small_mp4()
    _, err, code = read_all(file_of(bytes), { max_box = 100 })
    assert.are.equal("MP4_LIMIT", code)
    assert.matches("moov box", err)
    assert.is_truthy(read_all(file_of(bytes), { max_box = 1000 }))
  end)

  -- Each clip against ffprobe: tracks, configuration, every packet.
  local function check_clip(name)
    local path = M.clip(name)
    local streams = M.streams(path)
    local r = assert(rtmp.mp4.open(path))
    assert.are.equal(#streams, #r.tracks)
    local fragmented = r.fragmented
    local list = assert(samples(r))
    for i, t in ipairs(r.tracks) do
      local st = streams[i]
      assert.are.equal(st.kind, t.kind, name)
      if t.kind == "video" then
        assert.same({ st.width, st.height }, { t.width, t.height })
      elseif t.codec == ".mp3" then                       -- no configuration: the entry's template channels
        assert.are.equal(st.sample_rate, t.sample_rate)
      else
        assert.same({ st.sample_rate, st.channels }, { t.sample_rate, t.channels })
      end
      -- the configuration: what ffmpeg takes as extradata, or the box
      if t.codec == "fLaC" then
        assert.are.equal("fLaC", t.config:sub(1, 4))
        assert.are.equal(st.extradata, t.config:sub(9, 42))          -- STREAMINFO
      elseif t.codec == "vp09" then
        local file = H.read_file(path)
        local at = assert(file:find("vpcC", 1, true))       -- the box's content after its FullBox header
        assert.are.equal(file:sub(at + 8, at + unpack(">I4", file, at - 4) - 5), t.config)
      elseif t.codec == "ac-3" or t.codec == "ec-3" or t.codec == ".mp3" then
        assert.are.equal("", t.config)
      else
        assert.are.equal(st.extradata, t.config, name .. " " .. t.codec)
      end
      local pk = M.packets(path, i - 1)
      local mine = {}
      for _, s in ipairs(list) do
        if s.track == i then
          mine[#mine + 1] = { dts = s.dts + t.shift, pts = s.dts + s.cts + t.shift, size = s.size, key = s.key,
                              hash = rtmp.sha256(s.data) }
        end
      end
      assert.are.equal(#pk, #mine, name .. " track " .. i)
      assert.same(pk, mine)
    end
    r:close()
    return fragmented
  end

  for _, name in ipairs{ "h264-aac", "hevc-opus", "av1-flac", "vp9-ac3", "h264-mp3", "eac3" } do
    it("reads " .. name .. " as ffprobe does: tracks, configuration, every packet's bytes, times and flags", function()
      check_clip(name)
    end)
  end

  it("reads fragmented input (moof per keyframe, two trafs, base is moof) as ffprobe does", function()
    assert.is_true(check_clip("h264-aac-frag"))
  end)

  it("reads two video tracks, RTMP ids 0 and 1", function()
    check_clip("h264x2")
    local r = assert(rtmp.mp4.open((M.clip("h264x2"))))
    assert.same({ 0, 1 }, { r.tracks[1].rtmp_id, r.tracks[2].rtmp_id })
    r:close()
  end)

  it("keeps times in range when a fragment's decode time lies past 2^63 microseconds (a fuzz finding)", function()
    local r = assert(rtmp.mp4.open("spec/fuzz/mp4/decode-time-microseconds-overflow"))
    local n = 0
    for m in r:messages() do
      assert.is_true(math.type(m.timestamp) == "integer" and m.timestamp >= 0 and m.timestamp <= 0xFFFFFFFF)
      n = n + 1
    end
    assert.is_nil(r.error)
    r:close()
    assert.is_true(n > 3)
  end)

  it("reads two video tracks of two codecs", function()
    check_clip("h264-hevc")
  end)

  it("refuses a trun whose sample count runs past its box", function()
    local file = H.read_file((M.clip("h264-aac-frag")))
    local at = assert(file:find("trun", 1, true))
    local spoilt = file:sub(1, at + 7) .. pack(">I4", 1 << 20) .. file:sub(at + 12)
    local _, err, code = read_all(file_of(spoilt))
    assert.are.equal("MP4_TABLE", code)
    assert.matches("trun box at offset " .. (at - 5), err)
  end)
end)

describe("rtmp.mp4 reader messages", function()
  -- Every message of a file.
  local function messages(path, opts)
    local r = assert(rtmp.mp4.open(path))
    local list = {}
    local it = r:messages(opts)
    while true do
      local m, err = it()
      assert.is_nil(err)
      if not m then break end
      list[#list + 1] = m
    end
    r:close()
    return list
  end

  it("sends metadata, sequence headers, then frames in legacy form for H.264 and AAC", function()
    local list = messages((M.clip("h264-aac")))
    assert.are.equal(18, list[1].type)
    assert.same({ "@setDataFrame", "onMetaData" }, { list[1].values[1], list[1].values[2] })
    local meta = list[1].values[3]
    assert.same({ 160, 120, 7, 10, 44100 }, { meta.width, meta.height, meta.videocodecid, meta.audiocodecid,
      meta.audiosamplerate })
    assert.same({ 9, 0, true, "avc1", 7 }, { list[2].type, list[2].timestamp, list[2].sequence_header,
      list[2].codec, list[2].codec_id })
    assert.same({ 8, true, "mp4a", 10 }, { list[3].type, list[3].sequence_header, list[3].codec, list[3].codec_id })
    local r = assert(rtmp.mp4.open((M.clip("h264-aac"))))
    assert.are.equal(r.tracks[1].config, list[2].payload:sub(6))
    assert.are.equal(r.tracks[2].config, list[3].payload:sub(3))
    local n, keys, last = { [8] = 0, [9] = 0 }, 0, 0
    for i = 4, #list do
      local m = list[i]
      assert.is_nil(m.decode_error)
      assert.is_false(m.sequence_header)
      n[m.type] = n[m.type] + 1
      if m.keyframe then keys = keys + 1 end
      assert.is_true(m.timestamp + 1 >= last, "timestamps go forward")
      last = m.timestamp
    end
    assert.same({ [8] = #M.packets(r.path, 1), [9] = M.FPS * M.SECONDS }, n)
    assert.are.equal(3, keys)
    r:close()
  end)

  it("sends HEVC, AV1, VP9, Opus, FLAC, AC-3, E-AC-3 in Enhanced RTMP, MP3 legacy unless asked", function()
    local want = { ["hevc-opus"] = { "hvc1", "Opus" }, ["av1-flac"] = { "av01", "fLaC" },
                   ["vp9-ac3"] = { "vp09", "ac-3" }, ["eac3"] = { nil, "ec-3" } }
    for name, codecs in pairs(want) do
      local seen = {}
      for _, m in ipairs(messages((M.clip(name)))) do
        if m.type == 8 or m.type == 9 then
          assert.is_nil(m.decode_error)
          assert.is_nil(m.codec_id, "an enhanced header")
          seen[m.type] = seen[m.type] or m.codec
        end
      end
      assert.same(codecs, { seen[9], seen[8] }, name)
    end
    local legacy, enhanced = messages((M.clip("h264-mp3"))), messages((M.clip("h264-mp3")), { enhanced = true })
    for _, m in ipairs(legacy) do
      if m.type == 8 then assert.same({ ".mp3", 2, false }, { m.codec, m.codec_id, m.sequence_header }) end
    end
    for _, m in ipairs(enhanced) do
      if m.type == 8 or m.type == 9 then assert.is_nil(m.codec_id) end
    end
    assert.are.equal(#legacy, #enhanced)
  end)

  it("sends two video tracks as ManyTracks messages, both tracks' frames in one message", function()
    local list = messages((M.clip("h264x2")))
    local r = assert(rtmp.mp4.open((M.clip("h264x2"))))
    local seq = list[2]
    assert.same({ 9, "many_tracks", true }, { seq.type, seq.multitrack, seq.sequence_header })
    assert.same({ 0, 1 }, { seq.tracks[1].id, seq.tracks[2].id })
    assert.are.equal(#r.tracks[1].config, seq.tracks[1].size)
    local per = { [0] = 0, [1] = 0 }
    for i = 3, #list do
      assert.are.equal("many_tracks", list[i].multitrack)
      for _, t in ipairs(list[i].tracks) do per[t.id] = per[t.id] + 1 end
    end
    assert.same({ [0] = M.FPS, [1] = M.FPS }, per)
    assert.are.equal(M.FPS, #list - 2, "frames of the same time go together")
    r:close()
  end)

  it("sends an H.264 and an HEVC track as ManyTracksManyCodecs messages", function()
    local list = messages((M.clip("h264-hevc")))
    local seq = list[2]
    assert.same({ "many_tracks_many_codecs", true }, { seq.multitrack, seq.sequence_header })
    assert.same({ { 0, "avc1" }, { 1, "hvc1" } },
      { { seq.tracks[1].id, seq.tracks[1].codec }, { seq.tracks[2].id, seq.tracks[2].codec } })
    -- frames: one codec's alone in ManyTracks, both together in ManyTracksManyCodecs
    local per = {}
    for i = 3, #list do
      local codecs = {}
      for _, t in ipairs(list[i].tracks) do
        per[t.codec] = (per[t.codec] or 0) + 1
        codecs[t.codec] = true
      end
      assert.are.equal(codecs.avc1 and codecs.hvc1 and "many_tracks_many_codecs" or "many_tracks", list[i].multitrack)
    end
    assert.same({ avc1 = M.FPS, hvc1 = M.FPS }, per)
  end)
end)

describe("rtmp.mp4 writer", function()
  local function msg(t, ts, payload) return rtmp.message({ type = t, timestamp = ts }, payload) end
  local SEQ = "\23\0\0\0\0" .. AVCC
  local function frame(key, n, cts) return string.char(key and 0x17 or 0x27, 1) .. pack(">i3", cts or 0)
    .. ("f"):rep(n) end

  it("writes ftyp, moov with mvex, then a moof and mdat at each keyframe, byte for byte", function()
    local path = H.tmpname("w.mp4")
    local w = assert(rtmp.mp4.writer(path))
    assert(w:write(msg("data", 0, rtmp.amf0.encode("@setDataFrame", "onMetaData", { width = 320, height = 240 }))))
    assert(w:write(msg(9, 0, SEQ)))
    local gop = { { true, 11, 0 }, { false, 12, 80 }, { false, 13, -40 }, { true, 14, 0 }, { false, 15, 0 } }
    local written = {}
    for i, f in ipairs(gop) do
      assert(w:write(msg(9, (i - 1) * 40, frame(f[1], f[2], f[3]))))
      written[i] = w.bytes
    end
    assert.same({ 0, 0, 0 }, { table.unpack(written, 1, 3) }, "nothing before the second keyframe")
    assert.are.equal(written[4], written[5], "the second fragment waits for the end")
    assert(w:close())
    assert.same({ 2, 5, 0 }, { w.fragments, w.samples, w.dropped })
    local file = H.read_file(path)
    assert.are.equal(#file, w.bytes)
    local top = boxes(file)
    assert.are.equal(written[4], #top[1].body + #top[2].body + #top[3].body + #top[4].body + 32)
    assert.are.equal("ftyp moov moof mdat moof mdat", types(top))
    local moov = top[2].body
    assert.are.equal("mvhd trak mvex", types(boxes(moov)))
    local stsd = child(child(child(child(child(moov, "trak"), "mdia"), "minf"), "stbl"), "stsd")
    local avc1 = stsd:sub(9)
    assert.are.equal("avc1", avc1:sub(5, 8))
    local width, height = unpack(">I2 I2", avc1, 8 + 24 + 1)
    assert.same({ 320, 240 }, { width, height })
    assert.are.equal(box("avcC", AVCC), avc1:sub(8 + 78 + 1))
    -- the first fragment: three samples of 11, 12, 13 bytes, 3600 ticks apart, offsets at 90 kHz
    local traf = child(top[3].body, "traf")
    assert.are.equal(pack(">I4 I8", 0x01000000, 0), child(traf, "tfdt"))
    local trun = child(traf, "trun")
    local flags, count, off = unpack(">I4 I4 I4", trun)
    assert.same({ 0x01000F01, 3, #top[3].body + 8 + 8 }, { flags, count, off })
    local entries = { unpack(">I4I4I4i4 I4I4I4i4 I4I4I4i4", trun, 13) }
    assert.same({ 3600, 11, 0x02000000, 0, 3600, 12, 0x01010000, 80 * 90, 3600, 13, 0x01010000, -40 * 90 },
      { table.unpack(entries, 1, 12) })
    assert.are.equal(("f"):rep(11 + 12 + 13), top[4].body)
    -- the last one: the end takes the duration before it
    local trun2 = child(child(top[5].body, "traf"), "trun")
    local _, n2, _, d1, s1, f1, c1, d2, s2 = unpack(">I4 I4 I4 I4I4I4i4 I4I4", trun2)
    assert.same({ 2, 3600, 14, 0x02000000, 0, 3600, 15 }, { n2, d1, s1, f1, c1, d2, s2 })
    -- and it reads back
    local list = assert(read_all(path))
    assert.are.equal(5, #list)
    assert.same({ 0, 3600, 7200, 10800, 14400 }, { list[1].dts, list[2].dts, list[3].dts, list[4].dts, list[5].dts })
  end)

  it("drops frames before a track's sequence start and non-key video before its first keyframe", function()
    local path = H.tmpname("drop.mp4")
    local w = assert(rtmp.mp4.writer(path))
    assert(w:write(msg(9, 0, frame(true, 5))))
    assert(w:write(msg(9, 0, SEQ)))
    assert(w:write(msg(9, 40, frame(false, 5))))
    assert(w:write(msg(9, 80, frame(true, 5))))
    assert(w:close())
    assert.same({ 2, 1 }, { w.dropped, w.samples })
  end)

  it("refuses a sequence start that is no configuration record, and stays usable", function()
    local w = assert(rtmp.mp4.writer(H.tmpname("bad.mp4")))
    local ok, err, code = w:write(msg(9, 0, "\23\0\0\0\0\0\1\2"))
    assert.same({ nil, "MP4_CONFIG" }, { ok, code })
    assert.matches("configuration", err)
    ok, err, code = w:write(msg(9, 0, "\x97"))
    assert.same({ nil, "MEDIA_TRUNCATED" }, { ok, code })
    assert(w:write(msg(9, 0, SEQ)))
    assert(w:write(msg(9, 0, frame(true, 5))))
    assert(w:close())
    assert.are.equal(1, w.samples)
  end)

  it("hands the bytes to a sink, and stops at the sink's error", function()
    local parts = {}
    local w = assert(rtmp.mp4.writer(function(b) parts[#parts + 1] = b; return true end))
    local same = H.tmpname("same.mp4")
    local fw = assert(rtmp.mp4.writer(same))
    for _, m in ipairs{ msg(9, 0, SEQ), msg(9, 0, frame(true, 5)), msg(9, 40, frame(true, 6)) } do
      assert(w:write(m))
      assert(fw:write(m))
    end
    assert(w:close())
    assert(fw:close())
    assert.are.equal(2, #parts)
    assert.are.equal(H.read_file(same), table.concat(parts))
    local bad = assert(rtmp.mp4.writer(function() return nil, "disk full" end))
    assert(bad:write(msg(9, 0, SEQ)))
    assert(bad:write(msg(9, 0, frame(true, 5))))
    assert.same({ nil, "disk full" }, { bad:write(msg(9, 40, frame(true, 5))) })
  end)

  it("cuts audio-only files every fragment_ms", function()
    local path = H.tmpname("audio.mp4")
    local w = assert(rtmp.mp4.writer(path, { fragment_ms = 100 }))
    assert(w:write(msg(8, 0, "\xAF\0\18\16")))        -- AAC LC, 44.1 kHz, stereo
    for i = 0, 20 do assert(w:write(msg(8, i * 23, "\xAF\1" .. ("a"):rep(9)))) end
    assert(w:close())
    assert.are.equal(21, w.samples)
    assert.is_true(w.fragments >= 4 and w.fragments <= 5, "fragments: " .. w.fragments)
    local stsd = child(child(child(child(child(boxes(H.read_file(path))[2].body, "trak"), "mdia"), "minf"), "stbl"),
      "stsd")
    local mp4a = child(stsd:sub(9), "mp4a")                 -- after the version, flags and entry count
    local channels, bits, rate = unpack(">I2 I2 xxxx I4", mp4a, 17)
    assert.same({ 2, 16, 44100 << 16 }, { channels, bits, rate })
  end)

  -- Every clip: messages -> writer -> reader: the same samples, byte for byte.
  for _, name in ipairs{ "h264-aac", "hevc-opus", "av1-flac", "vp9-ac3", "h264-mp3", "eac3", "h264x2", "h264-hevc" } do
    it("round-trips " .. name .. ": configurations, picture sizes, every sample's bytes; ffprobe decodes them", function()
      local src = M.clip(name)
      local r = assert(rtmp.mp4.open(src))
      local out = H.tmpname(name .. "-out.mp4")
      local w = assert(rtmp.mp4.writer(out))
      for m in r:messages{ metadata = false } do assert(w:write(m)) end   -- sizes from the configurations
      assert.is_nil(r.error)
      assert(w:close())
      r:close()
      assert.same({ 0, 0 }, { w.dropped, w.late })
      -- the same configuration records, and the same samples
      local function configs(path)
        local rr = assert(rtmp.mp4.open(path))
        local c = {}
        for i, t in ipairs(rr.tracks) do   -- (MP3 has no configuration: the original's channels are a template)
          c[i] = { t.kind, t.codec, t.config, t.sample_rate, t.codec ~= ".mp3" and t.channels or nil, t.width, t.height }
        end
        rr:close()
        return c
      end
      assert.same(configs(src), configs(out))
      local a, b = assert(read_all(src)), assert(read_all(out))
      local function per_track(list)
        local t = {}
        for _, s in ipairs(list) do
          t[s.track] = t[s.track] or {}
          table.insert(t[s.track], rtmp.sha256(s.data))
        end
        return t
      end
      assert.same(per_track(a), per_track(b))
      -- every packet of the original decodes in the output (the original's edit
      -- list may hide an encoder's priming frame: RTMP carries no edit list)
      local sa, sb = M.streams(src), M.streams(out)
      assert.are.equal(#sa, #sb)
      for i = 1, #sa do
        assert.same({ sa[i].codec, sa[i].packets }, { sb[i].codec, sb[i].frames }, name .. " stream " .. i)
      end
    end)
  end
end)
