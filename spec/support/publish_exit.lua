-- Run by spec/interop/close_spec.lua as
--   luartmp spec/support/publish_exit.lua FILE.flv rtmp://host:port/app NAME
-- Publishes every tag of FILE at once (a 4 KiB send buffer keeps most of
-- it queued), asks the server to acknowledge every 16 KiB, closes and
-- exits the process right after nc:close() returns: whatever reaches the
-- server got there before the exit.
local rtmp = require "rtmp"
local file, url, name = ...

rtmp.spawn(function()
  local nc = assert(rtmp.connect(url, { send_buffer = 4096 }))
  assert(nc.conn:set_window_ack_size(16 * 1024))
  local ns = assert(nc:create_stream())
  assert(ns:publish(name))
  local r = assert(rtmp.flv.open(file))
  while true do
    local m, err = r:read()
    if not m then assert(not err, err) break end
    assert(ns:send(m))
  end
  r:close()
  io.stderr:write(("queued %d bytes\n"):format(nc.conn.pending))
  ns:close()
  nc:close()
  os.exit(0)
end)
