-- A hook file for proxy_spec.lua: the server's first Window Ack Size
-- reaches the client 0.2 s late (what the server sent after it waits
-- behind it), and after the server's connect _result the client also gets
-- a command the server never sent (onProxyNote), built by the hook.  A
-- hook file loaded before this one may have delayed the _result: the hook
-- still sees it, inside the delay.
local proxy = ...
local rtmp = require "rtmp"

return {
    server = function(msg, ctx)
        if msg.type_name == "window_ack_size" and not ctx.state.window_delayed then
            ctx.state.window_delayed = true
            return proxy.delay(0.2, msg)
        end
        if msg.type == 20 and msg.name == "_result" and msg.txn == 1 then
            local note = rtmp.message({ type = "command", csid = msg.csid, stream = 0, timestamp = msg.timestamp },
                rtmp.amf0.encode("onProxyNote", 0, rtmp.null, { upstream = ctx.upstream.peer }))
            return { msg, note }
        end
        return msg
    end,
}
