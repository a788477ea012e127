-- proxy/slow_connect.lua: the server's answer to connect reaches the
-- client late (a slow or distant origin), everything after it in order.
--
--   luartmp scripts/proxy.lua --upstream rtmp://origin:1935 \
--       --hooks scripts/proxy/slow_connect.lua --set delay=2.5
local proxy, params = ...

local delay = tonumber(params.delay or "1") or 1

return {
    server = function(msg, ctx)
        if msg.type == 20 and msg.name == "_result" and msg.txn == 1 and not ctx.state.connected then
            ctx.state.connected = true
            return proxy.delay(delay, msg)
        end
        return msg
    end,
}
