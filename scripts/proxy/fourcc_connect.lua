-- proxy/fourcc_connect.lua: announce Enhanced RTMP codecs upstream.  The
-- client's connect command object gets a fourCcList (Enhanced RTMP v1:
-- the FourCCs of the codecs it can handle) when it has none.
--
--   luartmp scripts/proxy.lua --upstream rtmp://origin:1935 \
--       --hooks scripts/proxy/fourcc_connect.lua [--set fourcc=av01,vp09,hvc1]
local proxy, params = ...

local list = {}
for cc in (params.fourcc or "av01,vp09,hvc1"):gmatch("[^,]+") do list[#list + 1] = cc end

return {
    client = function(msg, ctx)
        if msg.type ~= 20 or msg.name ~= "connect" then return msg end
        local values = msg.values
        local obj = values[3]
        if type(obj) ~= "table" or obj.fourCcList ~= nil then return msg end
        obj.fourCcList = list -- a Lua array: an AMF0 strict array
        return proxy.rebuild(msg, values)
    end,
}
