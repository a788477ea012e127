-- slow_stall.lua: an RTMP player that stops reading (spec/interop/slow_spec.lua).
--
--   luartmp spec/interop/slow_stall.lua PORT APP STREAM STALL_AFTER RESUME_FILE [RCVBUF]
--
-- Connects to 127.0.0.1:PORT with a small socket receive buffer (RCVBUF
-- bytes, default 4096, set before connecting so the TCP window stays
-- small: the `recv_buffer` setting), plays APP/STREAM, prints "playing
-- port=P" (P: its local port, which the server logs as the peer's),
-- reads whatever comes for STALL_AFTER more seconds, prints "stalled
-- after N bytes" and stops reading (conn:pause_reading): the kernel
-- buffers fill and the server's queue for this player grows.  Once
-- RESUME_FILE exists it reads again until the server's close (the close
-- waits behind the unread bytes) and prints "eof after N bytes".
local rtmp = require "rtmp"

local port, app, stream, stall_after, resume_file, rcvbuf = ...
stall_after = tonumber(stall_after) or 0
rcvbuf = tonumber(rcvbuf) or 4096

local function say(...)
  io.stdout:write(string.format(...), "\n")
  io.stdout:flush()
end

local nc = assert(rtmp.connect(string.format("rtmp://127.0.0.1:%s/%s", port, app),
  { recv_buffer = rcvbuf, idle_timeout = 0 }))
local ns = assert(nc:create_stream())
local conn = nc.conn
assert(ns:play(stream))
say("playing port=%s", conn.local_addr:match(":(%d+)$"))
local total = conn.bytes_in

local until_ = rtmp.now() + stall_after
while rtmp.now() < until_ do
  local msg, err = ns:read(until_ - rtmp.now())
  if not msg and err ~= "timeout" then error("closed before the stall: " .. tostring(err)) end
  total = conn.bytes_in
end
conn:pause_reading(true)
say("stalled after %d bytes", total)

while not io.open(resume_file, "r") do rtmp.sleep(0.05) end
conn:pause_reading(false)
while true do
  local msg, err = ns:read(30)
  if not msg and err ~= "eof" then break end
  total = conn.bytes_in or total
end
say("eof after %d bytes", total)
os.exit(0)
