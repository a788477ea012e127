-- The live server recording published streams, for flv_spec.lua:
--
--   luartmp --listen PORT spec/interop/record_live.lua DIR
--
-- publish(name, "record" | "append") writes DIR/<app>/<name>.flv.
local live = require "live"

live.config.record_dir = assert(arg[1], "usage: record_live.lua DIR")
live.start()
