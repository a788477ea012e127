-- echo_chunk_size.lua: a live server that answers every Set Chunk Size it
-- receives by setting its own outgoing chunk size to the same value.
--
-- Imitates: ffmpeg's RTMP client when publishing, which sends every Set
-- Chunk Size it receives straight back and then chunks at that size
-- (PROTOCOL.md, interop trap 3), here on the server side.  Chunk size is
-- per direction, so nothing obliges a peer to do this; the profile shows
-- what happens when one does, and when both sides do.
--
-- Run it:  build/luartmp --listen 1935 scripts/quirks/echo_chunk_size.lua [mode] [size]
--   mode "differs" (default): echo a size only when it differs from ours,
--        so two echoing peers settle after one round;
--   mode "always": echo every Set Chunk Size, as ffmpeg does;
--   size: the chunk size announced after connect (default 4096, as live.lua).
-- Each echo is logged: "echo chunk size N (peer's #k)".
--
-- What real peers did with it (spec/interop/quirks_spec.lua, docs/QUIRKS.md):
-- an ffmpeg publisher echoes our 4096; in "differs" mode that ends it, in
-- "always" mode the two sides bounce Set Chunk Size back and forth for as
-- long as ffmpeg publishes.  An ffmpeg player still decodes the stream.

local live = require "live"

local mode = arg and arg[1] or "differs"
if mode ~= "differs" and mode ~= "always" then
    error("mode must be \"differs\" or \"always\", not " .. tostring(mode))
end
live.config.chunk_size = math.tointeger(tonumber(arg and arg[2])) or live.config.chunk_size

-- the per-message level beneath rtmp.app: a handler for one message type
local messages = live.app.messages
messages.set_chunk_size = function(conn, msg)
    if not msg.chunk_size then return messages.default(conn, msg) end
    conn.peer_chunk_sizes = (conn.peer_chunk_sizes or 0) + 1
    if mode == "always" or msg.chunk_size ~= conn.out_chunk_size then
        conn:set_chunk_size(msg.chunk_size)
        conn:log("info", "echo chunk size %d (peer's #%d)", msg.chunk_size, conn.peer_chunk_sizes)
    else
        conn:log("info", "peer's chunk size %d equals ours: no echo (peer's #%d)",
            msg.chunk_size, conn.peer_chunk_sizes)
    end
end

live.start()
