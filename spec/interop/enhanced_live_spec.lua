-- Enhanced RTMP v2 through live servers (docs/ENHANCED.md): players that
-- announced no FourCC get what live.lua's legacy policy or hook says; a
-- late joiner of a two-track (ManyTracks) stream gets each track's
-- configuration and the GOP first; node-media-server 4, a second
-- implementation, ingests luartmp's HEVC and AV1 publish and luartmp's
-- player plays them back.
-- What arrived is checked the only way this machine can (Debian's ffmpeg
-- 5.1 reads no Enhanced RTMP): written to MP4 by play.lua and compared
-- with the clip packet by packet (ffprobe's SHA-256 of each), every packet
-- decoded.
local H = require "support.helpers"
local M = require "support.mp4media"
local NMS = require "support.nms"

local q, fmt = H.shquote, string.format

local PUBLISH, PLAY = "scripts/client/publish.lua", "scripts/client/play.lua"

local function luartmp(script, args, name)
  return H.spawn(fmt("%s %s %s", q(H.luartmp), script, args), { name = name })
end

-- The packets' hashes of stream `index` of `file`, from packet `from` on.
local function hashes(file, index, from)
  local list = {}
  for i, p in ipairs(M.packets(file, index)) do
    if i >= (from or 1) then list[#list + 1] = p.hash end
  end
  return list
end

-- `got` holds the packets of `want`, stream by stream, from the first
-- (or, for a late joiner, from where its packets begin in `want`: a
-- keyframe), and ffprobe decodes each of them.
local function same_packets(got, want, what, late)
  local ws, gs = M.streams(want), M.streams(got)
  assert.are.equal(#ws, #gs, what .. ": streams")
  for i = 1, #ws do
    local g = hashes(got, i - 1)
    assert.is_true(#g > 0, what .. ": no packet in stream " .. i)
    local w = hashes(want, i - 1)
    local from = 1
    if late then
      from = #w - #g + 1
      assert.is_true(from >= 1, what .. ": more packets than sent")
      assert.is_true(M.packets(want, i - 1)[from].key, what .. ": stream " .. i .. " does not begin at a keyframe")
    end
    assert.same(hashes(want, i - 1, from), g, what .. ": stream " .. i)
    assert.are.equal(ws[i].codec, gs[i].codec, what)
    assert.are.equal(gs[i].packets, gs[i].frames, what .. ": stream " .. i .. " decodes every packet")
  end
end

-- An HEVC/AAC MP4 (publish.lua sends the HEVC enhanced, the AAC legacy),
-- made from two clips without encoding again.
local function hevc_aac()
  local out = H.tmpname("hevc-aac.mp4")
  local rc, o = H.run(fmt("ffmpeg -nostdin -v error -y -i %s -i %s -map 0:v -map 1:a -c copy -f mp4 %s",
    q((M.clip("hevc-opus"))), q((M.clip("h264-aac"))), q(out)), 60)
  assert(rc == 0, o)
  return out
end

-- The streams of `file` as { kind, codec, frames decoded, packets }.
local function streams(file)
  local list = {}
  for i, st in ipairs(M.streams(file)) do list[i] = { st.kind, st.codec, st.frames, st.packets } end
  return list
end

-- live.lua with legacy_players = policy (and, with hook "audio", legacy
-- players get audio only), a capable player (play.lua to MP4) and a legacy
-- one (ffmpeg 5.1) from the start, a legacy one joining 1.5 s in, while
-- publish.lua sends clip (video, then audio) 3 times.  The capable player
-- gets it all, every packet decoded; the legacy ones its audio alone, the
-- one from the start every frame, the late one the configuration first
-- (every packet decodes) and the frames from where it joined.
local function legacy_run(policy, hook, clip)
  local want = streams(clip)
  local srv = H.luartmp_start{ script = "spec/interop/caps_server.lua", args = { policy, hook }, log_level = "info" }
  local cap, ff, late = H.tmpname("cap.mp4"), H.tmpname("legacy.flv"), H.tmpname("legacy-late.flv")
  local p_cap = luartmp(PLAY, fmt("%s %s", q(srv.url("live/l")), q(cap)), "play")
  local p_ff = H.ffmpeg_play(srv.url("live/l"), ff, 5)
  assert(H.wait_until(function() return srv.count("play", "l") >= 2 end, 10), srv.log())
  local pub = luartmp(PUBLISH, fmt("--loop 3 %s %s", q(clip), q(srv.url("live/l"))), "publish")
  H.sleep(1.5)
  local p_late = H.ffmpeg_play(srv.url("live/l"), late, 5)
  assert.are.equal(0, H.wait_exit(pub, 30), H.output(pub))
  assert.are.equal(0, H.wait_exit(p_cap, 20), H.output(p_cap))
  for _, p in ipairs({ p_ff, p_late }) do assert.is_truthy(H.wait_exit(p, 20), "ffmpeg did not end") end
  local log = srv.log()
  assert.are.equal(2, H.count_plain(log, "caps legacy"), log)
  local video, audio = want[1], want[2]
  local all = { { "video", video[2], 3 * video[4], 3 * video[4] }, { "audio", audio[2], 3 * audio[4], 3 * audio[4] } }
  assert.same(all, streams(cap))
  assert.same({ all[2] }, streams(ff))
  local got = streams(late)
  assert.are.equal(1, #got)
  assert.same({ "audio", audio[2] }, { got[1][1], got[1][2] })
  assert.are.equal(got[1][4], got[1][3])
  assert.is_true(got[1][4] > 0 and got[1][4] < 3 * audio[4], tostring(got[1][4]))
end

describe("Enhanced RTMP v2 through live servers", function()
  after_each(H.cleanup)

  it("legacy_players = \"legacy\": ffmpeg 5.1 gets the legacy AAC of an HEVC/AAC stream, live and late; play.lua to MP4 all", function()
    -- (the enhanced HEVC would make ffmpeg 5.1 fail: "Video codec (1) is not implemented")
    legacy_run("legacy", nil, hevc_aac())
  end)

  it("hooks.on_legacy_media decides per message instead (here: audio only), for live and late legacy players", function()
    legacy_run("all", "audio", (M.clip("h264-aac")))
  end)

  it("a late joiner of a ManyTracks stream gets both tracks' configuration first and decodes both", function()
    local srv = H.luartmp_start()
    local clip = M.clip("h264x2")
    local full, late = H.tmpname("x2-full.mp4"), H.tmpname("x2-late.mp4")
    local p_full = luartmp(PLAY, fmt("%s %s", q(srv.url("live/x2")), q(full)), "play-full")
    assert(H.wait_until(function() return srv.count("play", "x2") >= 1 end, 10), srv.log())
    -- 4 s of the clip (keyframes every 12 frames, at 25 fps): the late
    -- player joins inside it, when the group has cached a GOP
    local pub = luartmp(PUBLISH, fmt("--loop 4 %s %s", q(clip), q(srv.url("live/x2"))), "publish")
    H.sleep(1.7)
    local p_late = luartmp(PLAY, fmt("%s %s", q(srv.url("live/x2")), q(late)), "play-late")
    assert.are.equal(0, H.wait_exit(pub, 30), H.output(pub))
    for _, p in ipairs({ p_full, p_late }) do assert.are.equal(0, H.wait_exit(p, 20), H.output(p)) end
    assert.truthy(srv.log():find("late join: %d+ cached messages"), srv.log())
    -- the full player got the publisher's loops; the late one their tail
    same_packets(late, full, "late joiner", true)
    local got = M.streams(late)
    assert.same({ { "video", 160, 120 }, { "video", 128, 96 } },
      { { got[1].kind, got[1].width, got[1].height }, { got[2].kind, got[2].width, got[2].height } })
    -- and fewer than the whole: it did join late
    assert.is_true(M.streams(full)[1].packets > got[1].packets)
    assert.are.equal(4 * M.FPS * M.SECONDS, M.streams(full)[1].packets)
  end)

  it("node-media-server 4 ingests luartmp's HEVC and AV1 publish; play.lua plays each back from it to MP4", function()
    local nms = NMS.start()
    for _, name in ipairs({ "hevc-opus", "av1-flac" }) do
      local clip = M.clip(name)
      local out = H.tmpname("from-nms-" .. name .. ".mp4")
      -- node-media-server says nothing when a stream ends: --idle ends the player
      local player = luartmp(PLAY, fmt("--idle 3 %s %s", q(nms.url("live/" .. name)), q(out)), "play")
      assert(H.wait_until(function() return nms.log():find("start play /live/" .. name, 1, true) end, 10),
        nms.log())
      local rc, pout = H.run(fmt("%s %s %s %s", q(H.luartmp), PUBLISH, q(clip), q(nms.url("live/" .. name))), 30)
      assert.are.equal(0, rc, pout)
      assert.are.equal("", pout)
      assert.are.equal(0, H.wait_exit(player, 20), H.output(player))
      same_packets(out, clip, "through node-media-server: " .. name)
    end
    assert.is_nil(nms.log():find("ERROR", 1, true), nms.log())
  end)
end)
