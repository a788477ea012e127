-- slow_server.lua: the live server with the slow-reader bounds given on the
-- command line (spec/interop/slow_spec.lua).
--
--   luartmp --listen ADDR spec/interop/slow_server.lua MAX_BYTES MAX_TIME MAX_STALL SEND_BUFFER
local live = require "live"
local c = live.config
c.max_queue_bytes, c.max_queue_time, c.max_queue_stall, c.send_buffer =
  assert(tonumber(arg[1])), assert(tonumber(arg[2])), assert(tonumber(arg[3])), assert(tonumber(arg[4]))
live.start()
