-- A player that traces what it receives: luartmp's client API plays a
-- stream with its own trace on (settings `trace = PATH`), so every message
-- the server sent it is written as received, formatted from the whole
-- message; it stops after `want` video messages of at least `big` bytes.
--
--   luartmp spec/interop/trace_player.lua rtmp://127.0.0.1:PORT/live NAME TRACE [want [big]]
--
-- Exits 0 when it read them, 1 (with the reason on stderr) when the stream
-- ended, closed or stayed silent for 15 s first.
local rtmp = require "rtmp"

local url, name, trace = arg[1], arg[2], arg[3]
local want, big = tonumber(arg[4]) or 2, tonumber(arg[5]) or 200000
if not (url and name and trace) then
  io.stderr:write("usage: trace_player.lua URL NAME TRACE [want [big]]\n")
  os.exit(2)
end

local nc = assert(rtmp.connect(url, { trace = trace }))
local ns = assert(nc:create_stream())
assert(ns:play(name))
local n = 0
while n < want do
  local msg, err = ns:read(15)
  if not msg then
    io.stderr:write("read: ", err, "\n")
    os.exit(1, true)
  end
  if msg.type == 9 and msg.length >= big then n = n + 1 end
end
nc:close()
