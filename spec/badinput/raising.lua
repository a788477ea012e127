-- The live server with one extra command, "boom", whose handler raises a
-- Lua error. spec/badinput/badinput_spec.lua sends it by hand to check that
-- a script error is logged (connection id, peer, error, traceback) and
-- closes only the connection it came from.
--
--   luartmp --listen 127.0.0.1:PORT spec/badinput/raising.lua

local live = require "live"

function live.commands.boom(conn, msg)
  error("boom: raised on purpose by raising.lua (txn " .. tostring(msg.txn) .. ")")
end

live.start()
