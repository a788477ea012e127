-- proxy/rename_key.lua: publish and play under another stream name
-- upstream.  The stream name in the client's releaseStream, FCPublish,
-- publish, play, FCSubscribe and FCUnpublish is rewritten; a query string
-- ("key?token=...") is kept.
--
--   luartmp scripts/proxy.lua --upstream rtmp://origin:1935 \
--       --hooks scripts/proxy/rename_key.lua --set rename=cam1=studio,cam2=lobby
--
-- --set rename=OLD=NEW[,OLD=NEW...]; without it every name gets "_proxied"
-- appended.
local proxy, params = ...

local map
if params.rename then
    map = {}
    for old, new in params.rename:gmatch("([^,=]+)=([^,]+)") do map[old] = new end
end

local function rename(name)
    local base, query = name:match("^([^?]*)(.*)$")
    local new
    if map then new = map[base] else new = base .. "_proxied" end
    if not new then return nil end
    return new .. query
end

-- Commands whose 4th value (after name, txn, null) is a stream name.
local NAMED = { releaseStream = true, FCPublish = true, FCUnpublish = true, publish = true,
                play = true, FCSubscribe = true }

return {
    client = function(msg, ctx)
        if msg.type ~= 20 or not NAMED[msg.name] then return msg end
        local values = msg.values
        local new = type(values[4]) == "string" and rename(values[4])
        if not new then return msg end
        ctx.from:log("info", "proxy: %s %s -> %s", msg.name, values[4], new)
        values[4] = new
        return proxy.rebuild(msg, values)
    end,
}
