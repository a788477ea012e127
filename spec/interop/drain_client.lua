-- A client of drain_spec.lua: what a drained server tells it.
--
--   luartmp spec/interop/drain_client.lua URL NAME|- follow|stay SECONDS
--
-- Connects with luartmp's client API (follow: announcing capsEx Reconnect
-- and following a ReconnectRequest; stay: neither), plays NAME (- : no
-- stream), and prints one line per onStatus it gets on stream 0
-- ("status CODE TCURL"), then at the end "end SECONDS WHY URL": seconds
-- since connect, why it ended (the close reason, "eof" or "time") and the
-- URL it is connected to then.
local rtmp = require "rtmp"

local url, name, mode, seconds = arg[1], arg[2], arg[3], tonumber(arg[4])
assert(url and name and (mode == "follow" or mode == "stay") and seconds, "usage: URL NAME|- follow|stay SECONDS")

local function say(...)
  io.stdout:write(string.format(...), "\n")
  io.stdout:flush()
end

local nc = assert(rtmp.connect(url, { reconnect = mode == "follow" }))
local t0 = rtmp.now()
nc.on_message = function(_, msg)
  if msg.name == "onStatus" and msg.stream == 0 then
    local info = msg.values[4]
    say("status %s %s", tostring(info.code), tostring(info.tcUrl))
  end
end
local why = "time"
if name ~= "-" then
  local ns = assert(nc:create_stream())
  assert(ns:play(name))
  while rtmp.now() - t0 < seconds do
    local msg, err = ns:read(0.1)
    if not msg and err ~= "timeout" then
      why = err == "closed" and tostring(nc.closed) or err
      break
    end
  end
else
  while rtmp.now() - t0 < seconds and not nc.closed do rtmp.sleep(0.05) end
  if nc.closed then why = nc.closed end
end
say("end %.2f %s %s", rtmp.now() - t0, why, nc.url)
if not nc.closed then nc:close() end
os.exit(0)
