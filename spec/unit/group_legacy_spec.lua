-- core/group.c's two member classes and its cache of track configurations,
-- through socket-free sessions: a group member (a server session) per
-- player and a client session reading what it was sent.  Legacy members
-- (players that announced no Enhanced RTMP FourCC) get, under the group's
-- legacy = "legacy" policy, audio and video in their legacy form only; a
-- late joiner gets what its class may of the cache; each configuration
-- stays cached until the tracks it configures are all configured again.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local member = require "support.member"

local pack = string.pack

-- Message bodies, as FLV tag bodies (FLV 10.1 annex E; Enhanced RTMP v2).
local B = {
  avc_seq = pack("BB i3", 0x17, 0, 0) .. "avcC",             -- legacy AVC sequence header
  avc_key = pack("BB i3", 0x17, 1, 0) .. "key",              -- legacy AVC keyframe
  avc_inter = pack("BB i3", 0x27, 1, 0) .. "inter",          -- legacy AVC inter frame
  aac_seq = pack("BB", 0xAF, 0) .. "\18\16",                  -- legacy AAC sequence header
  aac_raw = pack("BB", 0xAF, 1) .. "aac",                     -- legacy AAC frame
  hvc_seq = pack("B", 0x90) .. "hvc1" .. "hvcC",              -- enhanced: key, SequenceStart
  hvc_key = pack("B", 0x91) .. "hvc1" .. pack("i3", 0) .. "hkey",  -- key, CodedFrames
  opus_seq = pack("B", 0x90) .. "Opus" .. "OpusHead",         -- ExAudioTagHeader SequenceStart
  opus_raw = pack("B", 0x91) .. "Opus" .. "opus",             -- ExAudioTagHeader CodedFrames
  -- enhanced avc1 (a codec with a legacy form, sent enhanced): not a legacy form
  avc1_inter = pack("B", 0xA3) .. "avc1" .. "x",              -- inter, CodedFramesX
}

-- Multitrack video: mode 0 OneTrack, 1 ManyTracks, 2 ManyTracksManyCodecs,
-- packet p for the tracks, tracks = { { id, data [, fourcc] } }.
local function multitrack(frame, mode, p, fourcc, tracks)
  local out = { pack("BB", 0x80 | frame << 4 | 6, mode << 4 | p) }
  if mode ~= 2 then out[#out + 1] = fourcc end
  for _, t in ipairs(tracks) do
    if mode == 2 then out[#out + 1] = t[3] end
    out[#out + 1] = string.char(t[1])
    if mode ~= 0 then out[#out + 1] = pack(">I3", #t[2]) end
    out[#out + 1] = t[2]
  end
  return table.concat(out)
end

local function video(body, ts) return rtmp.message({ type = "video", timestamp = ts or 0 }, body) end
local function audio(body, ts) return rtmp.message({ type = "audio", timestamp = ts or 0 }, body) end

-- A member of group g (support.member), legacy or not: join() adds it,
-- got() -> the audio, video and data payloads it received since the last call.
local function player(g, legacy)
  local m = member()
  return {
    join = function() assert.is_true(g:add(m.server, 1, legacy)) end,
    got = function()
      local list = {}
      for _, msg in ipairs(m.received()) do
        if msg.type == 8 or msg.type == 9 or msg.type == 18 then list[#list + 1] = msg.payload end
      end
      return list
    end,
  }
end

-- The payloads of the cache, in a joiner's order.
local function cached(g)
  local list = {}
  for _, m in ipairs((g:cached())) do list[#list + 1] = m.payload end
  return list
end

describe("group: legacy members", function()
  it("with legacy = \"legacy\" get audio and video in their legacy form only; capable members get all", function()
    local g = rtmp.group{ cache = true, legacy = "legacy" }
    local cap, leg = player(g, false), player(g, true)
    cap.join()
    leg.join()
    local meta = rtmp.message({ type = "data" }, rtmp.amf0.encode("onMetaData", { width = 160 }))
    g:metadata(meta)
    local sent = {
      { audio(B.aac_seq), 2 }, { video(B.avc_seq), 2 }, { video(B.hvc_seq), 1 }, { audio(B.opus_seq), 1 },
      { video(B.avc_key, 40), 2 }, { video(B.hvc_key, 40), 1 }, { audio(B.aac_raw, 41), 2 },
      { audio(B.opus_raw, 41), 1 }, { video(B.avc1_inter, 80), 1 },
      { video(multitrack(2, 1, 1, "avc1", { { 0, "t0" }, { 1, "t1" } }), 80), 1 },
    }
    local all, legacy = { meta.payload }, { meta.payload }
    for _, s in ipairs(sent) do
      assert.are.equal(s[2], g:send(s[1]), s[1].payload)
      all[#all + 1] = s[1].payload
      if s[2] == 2 then legacy[#legacy + 1] = s[1].payload end
    end
    assert.same(all, cap.got())
    assert.same(legacy, leg.got())
    -- late joiners: the cache as their class may have it
    local cap2, leg2 = player(g, false), player(g, true)
    cap2.join()
    leg2.join()
    assert.same(cached(g), cap2.got())
    -- the metadata, the legacy configurations, and of the GOP (from the
    -- HEVC keyframe on, the newest keyframe) the legacy AAC frame
    assert.same({ meta.payload, B.aac_seq, B.avc_seq, B.aac_raw }, leg2.got())
  end)

  it("with legacy = \"all\" (the default) get everything; the caller may decide instead, and the cache keeps it", function()
    for _, policy in ipairs({ "all", "legacy" }) do
      local g = rtmp.group{ cache = true, legacy = policy ~= "all" and policy or nil }
      local cap, leg = player(g, false), player(g, true)
      cap.join()
      leg.join()
      assert.are.equal(policy == "all" and 2 or 1, g:send(video(B.hvc_seq)))
      assert.are.equal(policy == "all" and 2 or 1, g:send(video(B.hvc_key, 40)))
      -- the caller's decision: a legacy AAC frame not to legacy members, an Opus one to them
      assert.are.equal(1, g:send(audio(B.aac_raw, 41), nil, false))
      assert.are.equal(2, g:send(audio(B.opus_raw, 42), nil, true))
      assert.same({ B.hvc_seq, B.hvc_key, B.aac_raw, B.opus_raw }, cap.got())
      local legacy_got = policy == "all" and { B.hvc_seq, B.hvc_key, B.opus_raw } or { B.opus_raw }
      assert.same(legacy_got, leg.got())
      local late = player(g, true)
      late.join()
      assert.same(legacy_got, late.got(), policy)
    end
  end)

  it("refuses a policy it does not know", function()
    assert.has_error(function() rtmp.group{ legacy = "some" } end,
      'rtmp.group: legacy must be "all" or "legacy", not some')
  end)
end)

describe("group cache: track configurations", function()
  it("keeps each (track id, codec)'s newest configuration until a newer one configures it again", function()
    local g = rtmp.group{ cache = true }
    local both = video(multitrack(1, 1, 0, "avc1", { { 0, "A0" }, { 1, "A1" } }))
    g:send(both)
    -- track 0 again, alone: track 1's stays in the first message, the newer comes last
    local t0 = video(multitrack(1, 0, 0, "avc1", { { 0, "B0" } }))
    g:send(t0)
    assert.same({ both.payload, t0.payload }, cached(g))
    -- and again: it replaces the one of track 0 alone
    local t0b = video(multitrack(1, 0, 0, "avc1", { { 0, "C0" } }))
    g:send(t0b)
    assert.same({ both.payload, t0b.payload }, cached(g))
    -- both tracks again: both older ones go
    local both2 = video(multitrack(1, 1, 0, "avc1", { { 1, "D1" }, { 0, "D0" } }))
    g:send(both2)
    assert.same({ both2.payload }, cached(g))
    -- ManyTracksManyCodecs: another codec on track 1 is another (track id, codec)
    local mixed = video(multitrack(1, 2, 0, nil, { { 0, "E0", "avc1" }, { 1, "E1", "hvc1" } }))
    g:send(mixed)
    assert.same({ both2.payload, mixed.payload }, cached(g))
    local h1 = video(multitrack(1, 0, 0, "hvc1", { { 1, "F1" } }))
    g:send(h1)
    assert.same({ both2.payload, mixed.payload, h1.payload }, cached(g))
    local mixed2 = video(multitrack(1, 2, 0, nil, { { 1, "G1", "hvc1" }, { 0, "G0", "avc1" } }))
    g:send(mixed2)
    assert.same({ both2.payload, mixed2.payload }, cached(g))
    -- legacy and enhanced headers of one codec configure the same track; audio is apart from video
    local aac = audio(B.aac_seq)
    g:send(aac)
    g:send(video(B.avc_seq))
    assert.same({ both2.payload, mixed2.payload, aac.payload, B.avc_seq }, cached(g))
    local mp4a = audio(pack("B", 0x90) .. "mp4a" .. "\18\16")
    g:send(mp4a)
    assert.same({ both2.payload, mixed2.payload, B.avc_seq, mp4a.payload }, cached(g))
    -- the 1 MiB bound still holds (spec/unit/group_cache_spec.lua), and a reset forgets them
    g:reset()
    assert.same({}, cached(g))
  end)
end)
