-- Run by spec/interop/close_spec.lua as `luartmp [--linger S] linger_probe.lua`:
-- how long a closed connection's socket is held when its peer neither
-- reads nor closes. Byte pipes: the server writes 4 MiB and closes; the
-- client never reads and writes a byte every 50 ms. While the socket
-- lingers the server reads and drops them; once it is closed, the next
-- byte meets a reset and the client's connection fails. Prints
-- "held SECONDS: REASON" (the client's close reason), or "no reset".
local rtmp = require "rtmp"

local closed_at
local server = assert(rtmp.listen{ listen = "127.0.0.1:0", passthrough = true, send_buffer = 4096,
  on_open = function(conn)
    conn:raw(string.rep("x", 4 << 20))
    conn:close("sent")
    closed_at = rtmp.now()
  end })
local ticker, client
local function done(msg)
  print(msg)
  io.stdout:flush()
  ticker:stop()
  server:close()
  rtmp.stop()
end
client = assert(rtmp.connect(("rtmp://127.0.0.1:%d"):format(server.port), { passthrough = true,
  recv_buffer = 4096,
  on_close = function(_, reason) done(("held %.3f: %s"):format(rtmp.now() - closed_at, reason)) end }))
client:pause_reading(true)
ticker = rtmp.timer(0.05, function() if not client.closed then client:raw("a") end end, 0.05)
rtmp.timer(10, function() done("no reset") end)
