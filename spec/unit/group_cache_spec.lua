-- The late-join cache of core/group.c: what a publisher can make it hold.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;" .. package.path
local rtmp = require "rtmp"

-- An Enhanced RTMP v2 multitrack (OneTrack) video SequenceStart for track
-- `id`: frame type 1, packet Multitrack; OneTrack of SequenceStart, avc1.
local function track_config(id, size)
  return rtmp.message({ type = "video", stream = 1 },
    string.pack("BB", 0x96, 0x00) .. "avc1" .. string.char(id) .. string.rep("c", size))
end

describe("group cache", function()
  it("holds each track's configuration, but not past 1 MiB of them together", function()
    local g = rtmp.group{ cache = true }
    assert.is_true(track_config(0, 10).sequence_header)
    for id = 0, 31 do g:send(track_config(id, 100 * 1024)) end
    local cached, bytes = g:cached()
    -- 100 KiB each: ten fit under 1 MiB, the rest are not cached
    assert.are.equal(10, #cached)
    assert.is_true(bytes <= 1024 * 1024, tostring(bytes))
    for i, msg in ipairs(cached) do assert.are.equal(i - 1, msg.track.id) end
    -- a newer configuration of a cached track still replaces the older
    g:send(track_config(3, 50 * 1024))
    cached, bytes = g:cached()
    assert.are.equal(10, #cached)
    assert.are.equal(9 * 100 * 1024 + 50 * 1024 + 10 * 7, bytes)
  end)
end)
