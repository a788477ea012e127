-- Trace lines (docs/TRACE.md) read back, for the specs:
--
--   local T = require "support.tracelines"
--   T.parse(line)   -> { time, conn, dir, csid, fmt, type, stream, ts, len,
--                        body (the loaded constructor), text (the body as written) }
--   T.by_conn(text) -> { [conn] = { in = { rest, ... }, out = { rest, ... } } }
--                      where rest is a line without its time, conn= and
--                      direction: "csid=... fmt=... type=... ... body=..."
local rtmp = require "rtmp"

local T = {}

--- One line into its fields (the grammar of docs/TRACE.md); raises on a
--- line of another shape or a body that does not load.
function T.parse(line)
  local t, conn, dir, csid, fmt, typ, stream, ts, len, body = line:match(
    "^(%d+%.%d+) conn=(%d+) (%a+) csid=(%S+) fmt=(%S+) type=(%S+) stream=(%S+) ts=(%S+) len=(%d+) body=(.*)$")
  assert(t, "not a trace line: " .. line)
  local value = assert(load("return " .. body, "body", "t", { rtmp = rtmp }))()
  return { time = tonumber(t), conn = tonumber(conn), dir = dir, csid = tonumber(csid), fmt = tonumber(fmt),
           type = typ, stream = tonumber(stream), ts = tonumber(ts), len = tonumber(len), body = value,
           text = body }
end

--- The lines of a trace file's text by connection and direction, each
--- without its time, conn= and direction, in order.
function T.by_conn(text)
  local by = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local conn, dir, rest = line:match("^%d+%.%d+ conn=(%d+) (%a+) (.*)$")
    assert(conn, "not a trace line: " .. line)
    conn = tonumber(conn)
    by[conn] = by[conn] or { ["in"] = {}, out = {} }
    table.insert(by[conn][dir], rest)
  end
  return by
end

return T
