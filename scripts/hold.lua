-- hold.lua: a live stream held while its source is away (scripts/live.lua).
--
-- A source that stops for a while (a pull relay whose upstream connection
-- dropped: relay.lua) leaves its stream held: no publisher, the players
-- stay, told nothing, with the late-join cache.  The next source that
-- feeds it (the relay's next session, or a local publisher of the name)
-- goes on with it: a new cache, video from its first keyframe, and audio
-- and video shifted so that its first frame lands at the players' last
-- timestamp plus the time held (docs/RELAY.md, Hold).  live.lua calls
-- these; the stream's fields are s.held (while held: its source, since
-- when, the last timestamp), s.resume (the next source's shift) and
-- s.last (live.feed: the last audio or video timestamp sent); relay.lua
-- reads s.held.source.

local rtmp = require "rtmp"

local M = {}

--- hold.start(s, source) (live.hold): source, which feeds s, stops for a
--- while: s is held (no publisher; its players stay, told nothing) until a
--- source feeds s again (live.publish) or source unpublishes it.  Nothing
--- if source does not feed s.
function M.start(s, source)
    if s.publisher ~= source then return end
    s.publisher, s.held = nil, { source = source, since = rtmp.now(), last = s.last }
end

--- hold.resume(s) -> whether s was held (its players were told nothing):
--- the source that publishes it now goes on where the held one stopped.
function M.resume(s)
    local held = s.held
    if not held then return false end
    s.held = nil
    s.resume = { at = (held.last or 0) + math.floor((rtmp.now() - held.since) * 1000), key = true }
    s.players:reset()
    return true
end

--- hold.release(s, source): source unpublishes s: a hold of it ends, with
--- source its publisher again, for live.unpublish to end the stream; and
--- when source is s's publisher, its shift (s.resume) ends.
function M.release(s, source)
    if s.held and s.held.source == source then s.publisher, s.held = source, nil end
    if s.publisher == source then s.resume = nil end
end

--- hold.stamp(s, msg) -> the header for an audio or video message of a
--- resumed stream's source (its timestamp shifted), or false: a video
--- frame before the first keyframe, dropped.  Data keeps its own timestamp
--- (ffmpeg takes metadata at 0 only).
function M.stamp(s, msg)
    local r = s.resume
    if r.key and msg.type == 9 and (msg.packet or ""):find("^coded_frames") then
        if not msg.keyframe then return false end
        r.key = nil
    end
    r.shift = r.shift or r.at - msg.timestamp
    return { timestamp = math.max(0, msg.timestamp + r.shift) % 0x100000000 }
end

return M
