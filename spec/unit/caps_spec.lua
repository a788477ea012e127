-- rtmp.caps: the Enhanced RTMP v2 connect capabilities luartmp announces
-- (from rtmp.media.codecs: the media model's codecs and rtmp.mp4's table)
-- and what it reads of a peer's, through AMF0 bytes as they go on the wire.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;" .. package.path
local rtmp = require "rtmp"
local caps = require "rtmp.caps"

local amf0 = rtmp.amf0

-- v through the wire: encoded as AMF0 and decoded again, as a peer gets it
local function wire(v)
  return assert(amf0.decode(amf0.encode(v)))[1]
end

-- Whether rtmp.mp4's writer takes a track of codec fourcc: it is given
-- an Enhanced RTMP SequenceStart (whose configuration may be malformed:
-- MP4_CONFIG still means the codec is one it writes; MP4_CODEC that it
-- is not).
local function mp4_writes(fourcc, kind)
  local out = os.tmpname()
  local w = assert(rtmp.mp4.writer(out))
  local ok, _, code = w:write(rtmp.message({ type = kind, timestamp = 0 }, "\144" .. fourcc .. "\0\0\0\0"))
  w:close()
  os.remove(out)
  return ok ~= nil or code ~= "MP4_CODEC"
end

describe("rtmp.caps", function()
  it("announces what luartmp can do, derived from the media model and rtmp.mp4's table", function()
    local codecs = rtmp.media.codecs
    local with_fourcc, in_mp4 = {}, {}
    for _, c in ipairs(codecs) do
      if c.fourcc then
        with_fourcc[#with_fourcc + 1] = c.fourcc
        if c.mp4 then in_mp4[#in_mp4 + 1] = c.fourcc end
      end
    end
    -- the live server: forward for every FourCC, in the media model's order
    local server = wire(caps.announce{ forward = true })
    assert.same(with_fourcc, { table.unpack(server.fourCcList, 1, server.fourCcList.n) })
    for _, fcc in ipairs(with_fourcc) do
      local kind = caps.luartmp[fcc].kind
      local map = kind == "video" and server.videoFourCcInfoMap or server.audioFourCcInfoMap
      assert.are.equal(4, map[fcc], fcc)
    end
    assert.are.equal(1 | 2 | 4 | 8, server.capsEx)   -- Reconnect | Multitrack | ModEx | TimestampNanoOffset
    -- a player writing MP4: decode for what rtmp.mp4 writes, nothing else
    local player = wire(caps.announce{ decode = true })
    assert.same(in_mp4, { table.unpack(player.fourCcList, 1, player.fourCcList.n) })
    assert.is_nil(player.videoFourCcInfoMap.vvc1)  -- the media model knows it, MP4 here does not
    assert.are.equal(1, player.videoFourCcInfoMap.hvc1)
    -- a publisher: encode for the file's FourCCs luartmp can send; another is left out
    local pub = wire(caps.announce{ encode = { "Opus", "hvc1", "vvc1", "abcd" } })
    assert.same({ "hvc1", "Opus" }, { table.unpack(pub.fourCcList, 1, pub.fourCcList.n) })
    assert.same({ hvc1 = 2 }, pub.videoFourCcInfoMap)
    assert.same({ Opus = 2 }, pub.audioFourCcInfoMap)
    -- nothing of a kind: its map is left out
    local audio_only = wire(caps.announce{ encode = { "fLaC" } })
    assert.is_nil(audio_only.videoFourCcInfoMap)
    -- capsEx as asked, and without Reconnect for a process that neither sends nor follows ReconnectRequest
    assert.are.equal(2, wire(caps.announce{ forward = true, caps_ex = { "multitrack" } }).capsEx)
    caps.reconnect = false
    local without = wire(caps.announce{ forward = true }).capsEx
    caps.reconnect = true
    assert.are.equal(2 | 4 | 8, without)
  end)

  it("says decode for exactly the FourCCs the MP4 writer takes", function()
    local n = 0
    for _, fcc in ipairs(caps.fourccs) do
      local row = caps.luartmp[fcc]
      assert.are.equal(mp4_writes(fcc, row.kind), row.decode, fcc)
      assert.is_true(row.forward)
      n = n + 1
    end
    assert.is_true(n >= 12)
    assert.is_false(caps.luartmp.vvc1.decode)   -- the media model reads VVC; MP4 here does not carry it
  end)

  it("reads a peer's announcement into fields; what is malformed is left out and said, never raised", function()
    local c, problems = caps.parse(wire{
      fourCcList = { "av01", "hvc1", "*" },
      videoFourCcInfoMap = amf0.object{ { "*", 4 }, { "vp09", 1 | 2 } },
      audioFourCcInfoMap = amf0.ecma{ { "Opus", 1 } },
      capsEx = 1 | 2,
    })
    assert.same({}, problems)
    assert.same({ "av01", "hvc1", "*" }, c.fourccs)
    assert.same({ decode = true, encode = true, forward = false }, c.video.vp09)
    assert.same({ decode = true, encode = false, forward = false }, c.audio.Opus)
    assert.same({ reconnect = true, multitrack = true }, c.caps_ex)
    assert.are.equal(3, c.caps_ex_mask)
    assert.is_true(caps.can(c, "av01", "forward"))     -- the "*" entry
    assert.is_true(caps.can(c, "vp09", "encode"))
    assert.is_false(caps.can(c, "Opus", "encode"))
    assert.is_true(caps.can(c, "ac-3"))                -- "*" in fourCcList
    assert.is_false(caps.legacy(c))

    -- a legacy client (ffmpeg 5.1's connect object): nothing announced
    local legacy = wire{ app = "live", flashVer = "LNX 9,0,124,2", tcUrl = "rtmp://x/live", fpad = false,
      capabilities = 15, audioCodecs = 4071, videoCodecs = 252, videoFunction = 1 }
    assert.is_nil(caps.parse(legacy))
    assert.is_true(caps.legacy(nil))
    assert.is_false(caps.can(nil, "hvc1"))
    -- capsEx alone is an announcement, but of no FourCC: still a legacy player
    local only_ex = caps.parse(wire{ capsEx = 2 })
    assert.same({ multitrack = true }, only_ex.caps_ex)
    assert.is_true(caps.legacy(only_ex))

    -- wrong types and entries
    local bad, why = caps.parse(wire{
      fourCcList = { "hvc1", 7, "toolong", "av01" },
      videoFourCcInfoMap = "hvc1",
      audioFourCcInfoMap = amf0.object{ { "Opus", "x" }, { "mp4a", 1 }, { "fLaC", -1 } },
      capsEx = "all",
    })
    assert.same({ "hvc1", "av01" }, bad.fourccs)
    assert.same({}, bad.video)
    assert.same({ mp4a = { decode = true, encode = false, forward = false } }, bad.audio)
    assert.are.equal(0, bad.caps_ex_mask)
    table.sort(why)
    assert.same({
      "audioFourCcInfoMap: entry Opus is no FourCC with a mask",
      "audioFourCcInfoMap: entry fLaC is no FourCC with a mask",
      "capsEx is not a number",
      "fourCcList: entry 2 is no FourCC",
      "fourCcList: entry 3 is no FourCC",
      "videoFourCcInfoMap is not an object",
    }, why)
    assert.is_nil((caps.parse("connect")))
  end)

  it("refuses misuse", function()
    assert.has_error(function() caps.announce("all") end, "caps.announce: table expected")
    assert.has_error(function() caps.announce{ decode = "yes" } end,
      "caps.announce: decode must be true or a list of FourCCs")
    assert.has_error(function() caps.announce{ forward = true, caps_ex = { "everything" } } end,
      "caps: no capsEx flag everything")
    assert.has_error(function() caps.can({ fourccs = {}, video = {}, audio = {} }, "hvc1", "play") end,
      "caps.can: no capability play")
  end)
end)
