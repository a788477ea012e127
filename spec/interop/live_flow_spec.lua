-- The live server's command flow, seen by a player written with our own
-- client role (in this process) while ffmpeg publishes: the order of the
-- replies, what a late joiner gets first, unpublish, and BadName.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local function media(c, from)
  local out = {}
  for i = (from or 0) + 1, #c.msgs do
    local m = c.msgs[i]
    if m.type == 8 or m.type == 9 or (m.type == 18 and m.name ~= "|RtmpSampleAccess") then
      out[#out + 1] = m
    end
  end
  return out
end

describe("live server flow", function()
  local srv
  before_each(function() srv = H.luartmp_start() end)
  after_each(function()
    H.cleanup()
  end)

  it("answers play with StreamBegin, Play.Reset, Play.Start, |RtmpSampleAccess, then PublishNotify and media", function()
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    assert.are.equal(1, sid)
    c:play(sid, "flow")
    assert(c:wait(function() return c:find{ name = "|RtmpSampleAccess" } end, 5))
    local _, i_begin = c:find{ type_name = "user_control", event_name = "stream_begin", stream_id = sid }
    local _, i_reset = c:find{ name = "onStatus", code = "NetStream.Play.Reset" }
    local _, i_start = c:find{ name = "onStatus", code = "NetStream.Play.Start" }
    local access, i_access = c:find{ name = "|RtmpSampleAccess" }
    assert.truthy(i_begin and i_reset and i_start)
    assert.is_true(i_begin < i_reset and i_reset < i_start and i_start < i_access)
    assert.are.equal(sid, access.stream)

    local pub = H.ffmpeg_publish(srv.url("live/flow"))
    assert(c:wait(function() return #media(c) >= 60 end, 15), "no media reached the player")
    assert.truthy(c:find{ name = "onStatus", code = "NetStream.Play.PublishNotify" })
    local m = media(c)
    -- metadata first, without @setDataFrame; sequence headers before any frame
    assert.are.equal("onMetaData", m[1].name)
    local first_video
    for _, x in ipairs(m) do if x.type == 9 then first_video = x break end end
    assert.is_true(first_video.sequence_header)
    for _, x in ipairs(m) do assert.are.equal(sid, x.stream) end
    c:close()
    H.kill(pub)
  end)

  it("gives a late joiner metadata, sequence headers, then media from a keyframe", function()
    local pub = H.ffmpeg_publish(srv.url("live/late"))
    assert(H.wait_until(function() return srv.count("publish", "late") > 0 end, 10))
    -- join in the middle of a GOP (2 s GOPs: 3.1 s in is 1.1 s past a keyframe)
    C.wait_until(function() return false end, 3.1)
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:play(sid, "late")
    assert(c:wait(function() return #media(c) >= 20 end, 10))
    local m = media(c)
    assert.are.equal("onMetaData", m[1].name)
    local saw_vheader, saw_aheader = false, false
    local first_frame
    for _, x in ipairs(m) do
      if x.sequence_header then
        if x.type == 9 then saw_vheader = true else saw_aheader = true end
      elseif x.type == 9 then
        first_frame = x
        break
      end
    end
    assert.is_true(saw_vheader and saw_aheader, "sequence headers before frames")
    assert.is_true(first_frame.keyframe, "the first video frame is a keyframe")
    assert.is_true(first_frame.timestamp >= 1900, "it is the GOP's keyframe, not the stream's first")
    c:close()
    H.kill(pub)
  end)

  it("sends StreamEOF and UnpublishNotify to players when the publisher stops", function()
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:play(sid, "eof")
    local pub = H.spawn(string.format("ffmpeg -nostdin -v error -re -i %s -t 2 -c copy -f flv %s",
      H.fixture_flv(), srv.url("live/eof")), { name = "ffmpeg-short" })
    assert(c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" } end, 15))
    assert.are.equal(0, H.wait_exit(pub, 5))
    local eof, i_eof = c:find{ type_name = "user_control", event_name = "stream_eof" }
    assert.truthy(eof)
    assert.are.equal(sid, eof.stream_id)
    local _, i_notify = c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" }
    assert.is_true(i_eof < i_notify)
    assert.is_true(#media(c) > 50)
    c:close()
  end)

  it("refuses a second publisher of a name with NetStream.Publish.BadName", function()
    local pub = H.ffmpeg_publish(srv.url("live/taken"))
    assert(H.wait_until(function() return srv.count("publish", "taken") > 0 end, 10))
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:publish(sid, "taken")
    local bad = c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Publish.BadName" } end, 5)
    assert.truthy(bad)
    assert.are.equal("error", bad.args[2].level)
    c:close()
    -- a real encoder gives up too, and the first publisher goes on
    local second = H.spawn(string.format("ffmpeg -nostdin -v error -re -i %s -t 2 -c copy -f flv %s",
      H.fixture_flv(), srv.url("live/taken")), { name = "ffmpeg-second" })
    local rc = H.wait_exit(second, 10)
    assert.is_not.equal(0, rc)
    assert.is_nil(H.exited(pub), "the first publisher is still publishing")
    H.kill(pub)
  end)

  it("lets a new publisher take over a name when the script says so", function()
    H.cleanup()
    srv = H.luartmp_start{ script = "spec/interop/takeover.lua" }
    local first = C.connect(srv.url("live"))
    local sid1 = first:create_stream()
    first:publish(sid1, "swap")
    assert(first:wait(function() return first:find{ code = "NetStream.Publish.Start" } end, 5))
    local second = C.connect(srv.url("live"))
    local sid2 = second:create_stream()
    second:publish(sid2, "swap")
    assert(second:wait(function() return second:find{ code = "NetStream.Publish.Start" } end, 5))
    assert(first:wait(function() return first.closed end, 5), "the old publisher is closed")
    second:close()
  end)
end)
