-- live.lua logging what each connection announced (conn.caps), for
-- spec/interop/caps_spec.lua and enhanced_live_spec.lua.
local live = require "live"
local function flags(map)
  local t = {}
  for fcc, f in pairs(map) do
    t[#t + 1] = fcc .. ":" .. (f.decode and "d" or "") .. (f.encode and "e" or "") .. (f.forward and "f" or "")
  end
  table.sort(t)
  return table.concat(t, ",")
end
live.hooks.on_connect = function(conn)
  local c = conn.caps
  if not c then return conn:log("info", "caps legacy") end
  conn:log("info", "caps fourccs=%s video=%s audio=%s ex=%d", table.concat(c.fourccs, ","), flags(c.video),
    flags(c.audio), c.caps_ex_mask)
end
-- arg[1]: live.config.legacy_players; arg[2] "audio": legacy players get audio only (hooks.on_legacy_media)
if arg[2] == "audio" then
  live.hooks.on_legacy_media = function(conn, msg) return msg.type == 8 end
end
-- arg[3] "reconnect": 0.2 s after its connect, each connection is asked to
-- reconnect elsewhere (conn:reconnect_request, Enhanced RTMP)
if arg[3] == "reconnect" then
  local rtmp = require "rtmp"
  local on_connect = live.hooks.on_connect
  live.hooks.on_connect = function(conn, ...)
    rtmp.timer(0.2, function()
      if not conn.closed then
        conn:reconnect_request{ tc_url = "rtmp://127.0.0.1:1/other", description = "moving to other" }
      end
    end)
    return on_connect(conn, ...)
  end
end
live.start{ legacy_players = arg[1] }
