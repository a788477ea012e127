-- spb_nolimit.lua: a live server whose Set Peer Bandwidth (type 6) has no
-- limit-type byte: a 4-byte body (the window) instead of 5.
--
-- Reproduces: servers and relays that write Set Peer Bandwidth like Window
-- Acknowledgement Size (4 bytes), which the RTMP 1.0 spec does not allow
-- (5.4.5: window, then the limit type).  A client that reads the fifth byte
-- without checking the length reads past the message.  Everything else is
-- scripts/live.lua: only the connect reply's control messages change.
--
-- Run it:  build/luartmp --listen 1935 scripts/quirks/spb_nolimit.lua
--
-- What real peers did with it (spec/interop/quirks_spec.lua, docs/QUIRKS.md):
-- ffmpeg and rtmpdump read the 4 bytes and go on (rtmpdump -V logs
-- "client BW = 2500000 255"); GStreamer's rtmp2src and rtmp2sink log
-- "can't parse protocol control message" at level ERROR, ignore the
-- message, and play / publish normally.

local live = require "live"

live.replies.controls = function(conn)
    conn:set_window_ack_size(live.config.window)
    conn:set_peer_bandwidth(live.config.peer_bandwidth, false) -- the quirk: no limit-type byte
    conn:set_chunk_size(live.config.chunk_size)
    conn:log("info", "Set Peer Bandwidth sent without its limit type")
end

live.start()
