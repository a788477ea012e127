-- The live server with relays, for relay_spec.lua:
--
--   luartmp --listen PORT spec/interop/relay_live.lua push|pull URL [key=value ...]
--
-- push: republish every published stream to URL (rtmp://host:port/app);
-- pull: play a stream nobody publishes here from URL (same app and name).
-- key=value pairs set live.config.relay (retry_min, retry_max, timeout).

local live = require "live"

local mode, url = arg[1], arg[2]
assert(mode == "push" or mode == "pull", "usage: relay_live.lua push|pull URL [key=value ...]")
assert(url, "no URL")
for i = 3, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  live.config.relay[k] = tonumber(v) or v
end
live.config[mode] = url
live.start()
