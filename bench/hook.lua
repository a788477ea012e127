-- The live server with a Lua hook on every published media message (it
-- counts bytes and keyframes): what `make bench` compares with the plain
-- live server to price a per-message Lua hook.
local live = require "live"
local bytes, keyframes = 0, 0
live.hooks.on_media = function(conn, msg)
    bytes = bytes + msg.length
    if msg.keyframe then keyframes = keyframes + 1 end
end
live.start()
