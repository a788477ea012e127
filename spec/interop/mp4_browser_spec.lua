-- A browser reads luartmp's MP4 recordings (docs/MP4.md, issue 18 point
-- 3): 3 s clips Chromium decodes in software (AV1 + Opus and VP9 + FLAC,
-- Enhanced RTMP on the wire; H.264 + AAC, the legacy forms) are published
-- with publish.lua to live.lua, which records each as MP4 (record_format
-- "mp4") while play.lua writes what it gets to .mp4.  Headless Chromium
-- (spec/support/chromium.lua, cdp_page.js --until) plays every original
-- and every written file at once in <video> elements of a file:// page
-- (spec/support/mp4_videos.html) to its end; what a viewer notices must be
-- what the original gives: no error, `ended`, a decoded frame for each
-- video packet of the original (getVideoPlaybackQuality; Chromium counts
-- exactly the packets of a file played whole, the original included), the
-- same compressed bytes through the audio and video decoders
-- (webkitAudioDecodedByteCount, webkitVideoDecodedByteCount), the picture
-- size, and the same last picture (8x6 luma averages read back through a
-- canvas).  HEVC is not tested: Chromium decodes it only in hardware,
-- which headless Chromium here has not.
local H = require "support.helpers"
local M = require "support.mp4media"
local C = require "support.chromium"

local fmt = string.format

local CLIPS = { "av1-opus-3s", "vp9-flac-3s", "h264-aac-3s" }

-- The recording's duration may exceed the original's: RTMP gives the
-- stream from its first decode time, so a recording presents from the
-- first frame's composition offset (B-frames) and keeps the audio
-- priming the original's edit lists hide (H.264 + AAC: 0.099 s more).
-- At most three frame intervals.
local DURATION_SLACK = 3 / M.FPS

-- The file:// URL of `path` (absolute, or under the tree), percent-encoded for a query.
local function file_url(path)
  path = H.abspath(path)
  return ("file://" .. path):gsub("[^%w/._~:-]", function(c) return fmt("%%%02X", c:byte()) end)
end

describe("MP4 recordings in headless Chromium", function()
  after_each(H.cleanup)

  local why = C.missing()
  if why then
    pending("a browser plays MP4 recordings: " .. why)
    return
  end

  it("plays what record.lua and play.lua wrote as it plays the original: AV1+Opus, VP9+FLAC, H.264+AAC", function()
    local clips = {}
    for i, name in ipairs(CLIPS) do clips[i] = (M.clip(name)) end
    local dir = H.mkdir(H.tmpname("rec"))
    local srv = M.record_server(dir)
    local players, played = {}, {}
    for i, name in ipairs(CLIPS) do
      played[i] = H.tmpname("played-" .. name .. ".mp4")
      players[i] = H.spawn(fmt("%s scripts/client/play.lua %s %s", H.shquote(H.luartmp),
        H.shquote(srv.url("live/" .. name)), H.shquote(played[i])), { name = "play" })
    end
    for _, name in ipairs(CLIPS) do
      assert(H.wait_until(function() return srv.count("play", name) >= 1 end, 10), srv.log())
    end
    local pubs = {}
    for i, name in ipairs(CLIPS) do pubs[i] = M.publish(srv.url("live/" .. name), clips[i], "--type record") end
    M.wait_publishers(pubs)
    local files = {}
    for i, name in ipairs(CLIPS) do
      assert.are.equal(0, H.wait_exit(players[i], 20), H.output(players[i]))
      local recorded = fmt("%s/live/%s.mp4", dir, name)
      assert(H.wait_until(function() return H.count_plain(srv.log(), "record " .. recorded .. " closed") >= 1 end,
        10), srv.log())
      files[#files + 1] = { name = name, kind = "original", path = clips[i] }
      files[#files + 1] = { name = name, kind = "recorded", path = recorded }
      files[#files + 1] = { name = name, kind = "played", path = played[i] }
    end
    assert.is_nil(srv.log():find("%[error%]"), srv.log())

    -- every file at once, in one page
    local args = {}
    for i, f in ipairs(files) do args[i] = "v=" .. file_url(f.path) end
    local page = file_url("spec/support/mp4_videos.html") .. "?" .. table.concat(args, "&")
    local devtools = C.start{ "--allow-file-access-from-files" }
    local results = C.until_value(devtools, page, "window.mp4Results", 30)
    assert.are.equal(#files, #results)

    local original
    for i, f in ipairs(files) do
      local r, what = results[i], f.kind .. " " .. f.name
      if f.kind == "original" then
        local streams = M.streams(f.path)
        original = { r = r, duration = M.duration(f.path) }
        for _, s in ipairs(streams) do original[s.kind] = s end
      end
      local want, o = original.video, original.r
      assert.is_nil(r.error, what)
      assert.is_true(r.ended, what)
      assert.are.equal(want.packets, r.totalVideoFrames, what .. ": decoded frames")
      assert.same({ want.width, want.height }, { r.width, r.height }, what)
      assert.is_true(r.audioBytes > 0, what .. ": no audio decoded")
      -- Chromium's duration is ffprobe's
      local d = M.duration(f.path)
      assert.is_true(math.abs(r.duration - d) < 0.002, fmt("%s: duration %s, ffprobe %s", what, r.duration, d))
      -- the last picture: the test pattern (bright and dark)
      assert.is_table(r.last, what .. ": the canvas could not be read")
      assert.is_true(math.max(table.unpack(r.last)) - math.min(table.unpack(r.last)) > 100, what)
      if f.kind ~= "original" then -- what the recording and the played file give, the original's
        assert.same({ o.audioBytes, o.videoBytes }, { r.audioBytes, r.videoBytes }, what .. ": bytes decoded")
        assert.is_true(r.duration >= original.duration - 0.002 and r.duration <= original.duration + DURATION_SLACK,
          fmt("%s: duration %s, the original's %s", what, r.duration, original.duration))
        for k, y in ipairs(r.last) do
          assert.is_true(math.abs(y - o.last[k]) <= 2, fmt("%s: last picture, block %d: %d, the original's %d",
            what, k, y, o.last[k]))
        end
      end
    end
  end)
end)
