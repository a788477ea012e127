-- The AMF bytes real peers send, seen from a luartmp script: for every
-- command or data message print one line
--
--   MSG <type_name> <name> <same|DIFFERENT> <dump of the values>
--
-- where same means rtmp.amf0.encode_values(msg.values) reproduced the
-- message body byte for byte.  Used by amf_peers_spec.lua.
--
--   luartmp --listen 127.0.0.1:PORT amf_peers.lua server
--       answers connect, createStream and publish (so ffmpeg goes on to
--       send @setDataFrame), then prints what arrives;
--   luartmp amf_peers.lua client rtmp://127.0.0.1:PORT/live
--       connects, creates a stream, publishes "amf", prints the replies
--       and exits after the publish onStatus.

local rtmp = require "rtmp"
local amf0, null = rtmp.amf0, rtmp.null

local mode, url = ...

-- A canonical text form of a decoded value (tables: kind, then keys sorted).
local function dump(v, depth)
  depth = depth or 0
  if depth > 8 then return "..." end
  local t = type(v)
  if v == null then return "null" end
  if v == rtmp.undefined then return "undefined" end
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    return math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  end
  if t ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. dump(v[k], depth + 1) end
  return (amf0.type(v) or "?") .. "{" .. table.concat(parts, ",") .. "}"
end

local function report(msg)
  if not msg.values then
    if msg.decode_error then print("MSG " .. msg.type_name .. " ? DECODE_ERROR " .. msg.decode_error) end
    return
  end
  local body = msg.payload
  if msg.type == 17 or msg.type == 15 then body = body:sub(2) end
  local again = amf0.encode_values(msg.values)
  local vals = {}
  for i = 1, msg.values.n do vals[i] = dump(msg.values[i]) end
  print(string.format("MSG %s %s %s %s", msg.type_name, tostring(msg.name),
    again == body and "same" or "DIFFERENT", table.concat(vals, " ")))
  io.stdout:flush()
end

if mode == "server" then
  rtmp.listen{
    on_message = function(conn, msg)
      if msg.type_name ~= "command" and msg.type_name ~= "data"
        and msg.type_name ~= "command3" and msg.type_name ~= "data3" then return end
      report(msg)
      if msg.name == "connect" then
        conn:command(nil, "_result", msg.txn, { fmsVer = "FMS/3,0,1,123", capabilities = 31 },
          { level = "status", code = "NetConnection.Connect.Success", description = "ok" })
      elseif msg.name == "createStream" then
        conn:command(nil, "_result", msg.txn, null, 1)
      elseif msg.name == "publish" then
        conn:command({ stream = msg.stream }, "onStatus", 0, null,
          { level = "status", code = "NetStream.Publish.Start", description = "go" })
      elseif msg.name and msg.txn and msg.txn > 0 then
        conn:command(nil, "_result", msg.txn, null, null)
      end
    end,
  }
elseif mode == "client" then
  local done = false
  local conn, err = rtmp.connect(url, {
    on_handshake = function(c)
      c:command(nil, "connect", 1, amf0.object{ { "app", c.app }, { "type", "nonprivate" },
        { "flashVer", "FMLE/3.0 (compatible; luartmp)" }, { "tcUrl", c.tc_url } })
    end,
    on_message = function(c, msg)
      if msg.type_name ~= "command" and msg.type_name ~= "data" then return end
      report(msg)
      if msg.name == "_result" and msg.txn == 1 then
        c:command(nil, "createStream", 2, null)
      elseif msg.name == "_result" and msg.txn == 2 then
        c:command({ stream = msg.args[2] }, "publish", 0, null, "amf", "live")
      elseif msg.name == "onStatus" then
        done = true
        c:close()
        rtmp.stop()
      end
    end,
    on_close = function() if not done then rtmp.stop() end end,
  })
  assert(conn, err)
  rtmp.timer(10, function() rtmp.stop() end)
else
  error("usage: amf_peers.lua server|client URL")
end
