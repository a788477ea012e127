-- A server at the per-message level for spec/badinput/connect_spec.lua:
-- what the engine does around connect, whatever the script answers.
--   connect to app "denied":       refused (_error, NetConnection.Connect.Rejected),
--                                  then the script closes the connection;
--   connect to app "refused-open": refused the same way, the connection kept;
--   any other connect:             accepted (_result);
--   releaseStream:                 answered (_result), a round trip;
--   a command whose body does not decode: not answered at all.
local rtmp = require "rtmp"

local null = rtmp.null

local function status(level, code, description)
  return { level = level, code = code, description = description }
end

rtmp.listen{
  on_message = function(conn, msg)
    if msg.type_name ~= "command" or msg.decode_error then return end
    if msg.name == "connect" then
      local app = type(msg.args[1]) == "table" and msg.args[1].app
      if app == "denied" or app == "refused-open" then
        conn:command(nil, "_error", msg.txn, null, status("error", "NetConnection.Connect.Rejected", "not on the list"))
        if app == "denied" then conn:close("connect rejected: not on the list") end
        return
      end
      conn:command(nil, "_result", msg.txn, null, status("status", "NetConnection.Connect.Success", "ok"))
    elseif msg.name == "releaseStream" then
      conn:command(nil, "_result", msg.txn, null)
    end
  end,
}
