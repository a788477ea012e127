-- luartmp as an RTMP client: connect to a server, complete the handshake
-- and `connect`, print the result, exit.
--
--   luartmp spec/interop/client_connect.lua rtmp://127.0.0.1:1935/live [timeout]
--
-- Prints "handshake <kind>" when the handshake is done, then one line
--   "result <code>"   for a _result (e.g. NetConnection.Connect.Success), or
--   "error <code>"    for an _error, or
--   "closed <reason>" / "timeout" when neither came.
-- Exits 0 only for a _result.

local rtmp = require "rtmp"

local url = arg and arg[1]
if not url then
  io.stderr:write("usage: client_connect.lua rtmp://host:port/app [timeout]\n")
  os.exit(2)
end
local timeout = tonumber(arg[2]) or 10

local outcome -- "result", "error", "closed", "timeout"
local sent = false

local function finish(what, detail, conn)
  if outcome then return end
  outcome = what
  print(what .. (detail and (" " .. tostring(detail)) or ""))
  io.stdout:flush()
  if conn and not conn.closed then conn:close() end
  rtmp.stop()
end

local function send_connect(conn)
  if sent then return end
  sent = true
  print("handshake " .. tostring(conn.handshake))
  local u = rtmp.parse_url and rtmp.parse_url(url)
  local app = (u and u.app) or url:match("^rtmp://[^/]+/([^/]+)")
  assert(conn:command(nil, "connect", 1, {
    app = app, tcUrl = (u and u.tc_url) or url, flashVer = "LNX 9,0,124,2", fpad = false,
    capabilities = 15, audioCodecs = 3191, videoCodecs = 252, videoFunction = 1,
  }))
end

-- The information object of a _result/_error: the 4th AMF value (after
-- name, transaction id and the command object).
local function info_code(msg)
  local info = msg.values and msg.values[4]
  return type(info) == "table" and info.code or nil
end

local conn, err = rtmp.connect(url, {
  on_handshake = send_connect,
  on_connect = send_connect,  -- the name this hook had in early drafts
  on_message = function(c, msg)
    if msg.name == "_result" and msg.txn == 1 then
      finish("result", info_code(msg), c)
    elseif msg.name == "_error" and msg.txn == 1 then
      finish("error", info_code(msg), c)
    end
  end,
  on_close = function(c, reason)
    finish("closed", reason)
  end,
})
if not conn then
  print("closed " .. tostring(err))
  os.exit(1, true)
end

local timer = rtmp.timer(timeout, function() finish("timeout", nil, conn) end)
rtmp.run()
if timer.stop then timer:stop() end
os.exit(outcome == "result" and 0 or 1, true)
