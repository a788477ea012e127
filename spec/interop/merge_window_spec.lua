-- The write-merging window (--merge-window): media for players waits up to
-- the window and goes out in one write, so a player sees it in bursts;
-- nothing is lost, and commands are not delayed.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

-- Arrival times (loop clock) of the media messages a player receives.
local function play_and_time(url, seconds)
  local c = C.connect(url)
  local sid = c:create_stream()
  local t_play = rtmp.now()
  c:play(sid, "merge")
  local status = c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Play.Start" } end, 5)
  local status_delay = rtmp.now() - t_play
  local times, frames = {}, 0
  local seen = 0
  C.wait_until(function()
    for i = seen + 1, #c.msgs do
      local m = c.msgs[i]
      if m.type == 8 or m.type == 9 then
        times[#times + 1] = rtmp.now()
        if m.type == 9 and not m.sequence_header then frames = frames + 1 end
      end
    end
    seen = #c.msgs
    return false
  end, seconds)
  c:close()
  return times, frames, status and status_delay
end

-- Share of gaps between consecutive arrivals that are "inside a burst"
-- (< 5 ms) or "between bursts" (> 150 ms), and the number of bursts.
local function burstiness(times)
  local clear, bursts = 0, 1
  for i = 2, #times do
    local gap = times[i] - times[i - 1]
    if gap < 0.005 or gap > 0.150 then clear = clear + 1 end
    if gap > 0.150 then bursts = bursts + 1 end
  end
  return clear / math.max(1, #times - 1), bursts
end

describe("write-merging window", function()
  after_each(H.cleanup)

  it("delivers media in bursts a window apart, every frame, with commands answered at once", function()
    local srv = H.luartmp_start{ extra = { "--merge-window", "0.3" } }
    local pub = H.ffmpeg_publish(srv.url("live/merge"))
    assert(H.wait_until(function() return srv.count("publish", "merge") > 0 end, 10))
    local times, frames, status_delay = play_and_time(srv.url("live"), 3)
    assert.truthy(status_delay, "play was answered")
    assert.is_true(status_delay < 0.1, "commands are not held by the window: " .. status_delay)
    -- 3 s at 25 fps from a keyframe: about 75 frames, plus the cached GOP start
    assert.is_true(frames >= 60, "frames received: " .. frames)
    local share, bursts = burstiness(times)
    assert.is_true(share >= 0.9, string.format("%.0f%% of gaps are inside or between bursts", share * 100))
    assert.is_true(bursts >= 6 and bursts <= 14, "bursts in 3 s with a 0.3 s window: " .. bursts)
    H.kill(pub)
  end)

  it("gives an ffmpeg player every frame through the window", function()
    local srv = H.luartmp_start{ extra = { "--merge-window", "0.3" } }
    local out = H.tmpname("merged.flv")
    local player = H.ffmpeg_play(srv.url("live/whole"), out, 4)
    assert(H.wait_until(function() return srv.count("play", "whole") > 0 end, 10))
    local pub = H.ffmpeg_publish(srv.url("live/whole"))
    assert.are.equal(0, H.wait_exit(pub, H.FIXTURE.seconds + 12))
    assert.are.equal(0, H.wait_exit(player, 15), H.output(player))
    local info = assert(H.probe(out))
    -- the player closes on the unpublish notice, so the last frame or two may miss its file
    assert.is_true(info.video.frames >= H.FIXTURE.frames - 2, "video frames: " .. info.video.frames)
    assert.are.equal("h264", info.video.codec)
  end)

  it("writes each message at once without a window", function()
    local srv = H.luartmp_start()
    local pub = H.ffmpeg_publish(srv.url("live/merge"))
    assert(H.wait_until(function() return srv.count("publish", "merge") > 0 end, 10))
    local times, frames = play_and_time(srv.url("live"), 3)
    assert.is_true(frames >= 60, "frames received: " .. frames)
    local _, bursts = burstiness(times)
    local share = burstiness(times)
    -- paced media at 25 fps + 43 audio/s arrives every ~15-40 ms: no bursts
    assert.is_true(share < 0.6, string.format("%.0f%% of gaps look bursty", share * 100))
    assert.is_true(bursts < 4, "bursts: " .. bursts)
    H.kill(pub)
  end)
end)
