-- tools/decode.lua: every RTMP message in a capture, one trace line each.
--
--   luartmp scripts/tools/decode.lua capture.pcapng [--connection N] [--from-start]
--
-- Reads pcap or pcapng (rtmp.capture: TCP put back together on any port,
-- both directions decoded).  Lines have the trace format (docs/TRACE.md)
-- as seen from the server: "in" is what the client sent, "out" what the
-- server sent; the time is the capture's (epoch seconds), or with
-- --from-start seconds since the connection's first packet.  conn= is the
-- connection's number in the capture.  Without --connection every RTMP
-- connection is printed in turn, each after a comment line naming its
-- endpoints.  Exit status: 0, 1 when the capture cannot be read or a
-- connection stopped decoding, 2 for a usage error.
local rtmp = require "rtmp"
local capture = require "rtmp.capture"
local cli = require "client.cli"

local usage = [[
usage: luartmp scripts/tools/decode.lua CAPTURE [--connection N] [--from-start]

Print every RTMP message of a pcap/pcapng capture as a trace line.
  --connection N   only connection N (numbers as the first column of --list)
  --from-start     times in seconds since the connection's first packet
  --list           list the TCP connections and stop
]]

local o, pos = cli.parse(arg or {}, { connection = "count", ["from-start"] = "flag", list = "flag" }, usage)
if #pos ~= 1 then cli.usage_error("one capture file expected") end

local cap, err = capture.open(pos[1])
if not cap then
  io.stderr:write("decode.lua: ", err, "\n")
  os.exit(1)
end

local function describe(c)
  return string.format("%d %s -> %s %s %d/%d bytes%s%s", c.id, c.client, c.server,
    c.rtmp and "rtmp" or "not-rtmp", c.bytes.c2s, c.bytes.s2c,
    c.gaps > 0 and string.format(" (%d bytes missing)", c.gaps) or "",
    c.midstream and " (began before the capture)" or "")
end

if o.list then
  for _, c in ipairs(cap.conns) do print(describe(c)) end
  os.exit(0)
end

local conns = capture.rtmp_conns(cap)
if o.connection then
  local c = cap.conns[o.connection]
  if not c then cli.usage_error("no connection " .. o.connection .. " in " .. pos[1]) end
  conns = { c }
end
if #conns == 0 then
  io.stderr:write("decode.lua: no RTMP connection in ", pos[1], "\n")
  os.exit(1)
end

local status = 0
for _, c in ipairs(conns) do
  if not o.connection then print("-- " .. describe(c)) end
  local list = capture.messages(c)
  for _, e in ipairs(list) do
    print(rtmp.trace_line(e.msg, { dir = e.dir == "c2s" and "in" or "out", conn = c.id,
                                   time = o["from-start"] and e.t or c.start + e.t }))
  end
  if list.error then
    io.stderr:write(string.format("decode.lua: connection %d: %s\n", c.id, list.error))
    status = 1
  end
end
os.exit(status)
