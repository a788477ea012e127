-- proxy/drop_spb.lua: the client never sees the server's Set Peer
-- Bandwidth (to test a client without one, or a server that sends a
-- strange one).
--
--   luartmp scripts/proxy.lua --upstream rtmp://origin:1935 --hooks scripts/proxy/drop_spb.lua
return {
    server = function(msg, ctx)
        if msg.type_name == "set_peer_bandwidth" then
            ctx.to:log("info", "proxy: dropped Set Peer Bandwidth %d (limit %s)", msg.window or -1,
                tostring(msg.limit))
            return nil
        end
        return msg
    end,
}
