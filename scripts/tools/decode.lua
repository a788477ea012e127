-- tools/decode.lua: every RTMP message in a capture, one trace line each.
--
--   luartmp scripts/tools/decode.lua capture.pcapng [--connection N] [--from-start]
--   luartmp scripts/tools/decode.lua --raw CLIENT_FILE SERVER_FILE
--
-- Reads pcap or pcapng (rtmp.capture: TCP put back together on any port,
-- out of GTP-U, GRE and VXLAN tunnels, both directions decoded), or with
-- --raw the two files of Wireshark's "Follow TCP Stream -> Save as Raw"
-- (one direction each, no timing: every time is 0).  Lines have the trace
-- format (docs/TRACE.md) as seen from the server: "in" is what the client
-- sent, "out" what the server sent; the time is the capture's (epoch
-- seconds), or with --from-start seconds since the connection's first
-- packet.  conn= is the connection's number in the capture.  An aggregate
-- message is printed as its sub-messages, each body followed by
-- --[[aggregate K/N]].  Without --connection every RTMP connection is
-- printed in turn, each after a comment line naming its endpoints.  A TLS
-- connection (RTMPS) is listed with what its cleartext handshake
-- negotiated (SNI, ALPN, versions, cipher suite); the RTMP inside is
-- encrypted, which is said on stderr, with how to capture it decodably.
-- Exit status: 0, 1 when the capture cannot be read or a connection
-- stopped decoding or is TLS, 2 for a usage error.
local rtmp = require "rtmp"
local capture = require "rtmp.capture"
local argv = require "rtmp.argv"

local fmt = string.format

local cmd = argv.new{
  usage = [[
usage: luartmp scripts/tools/decode.lua CAPTURE [--connection N] [--from-start]
       luartmp scripts/tools/decode.lua --raw CLIENT_FILE SERVER_FILE [--from-start]

Print every RTMP message of a pcap/pcapng capture as a trace line.
]],
  options = {
    capture.RAW_OPTION,
    { "connection", "integer", arg = "N", help = "only connection N (numbers as the first column of --list)" },
    { "from-start", help = "times in seconds since the connection's first packet" },
    { "list", help = "list the TCP connections and stop" },
  },
}

local o, pos = cmd:run(arg)
local raw = o.raw
if raw and #pos ~= 0 then cmd:fail("--raw takes the place of the capture file") end
if not raw and #pos ~= 1 then cmd:fail("one capture file expected (or --raw CLIENT_FILE SERVER_FILE)") end

local cap, err = capture.open_input{ path = pos[1], raw = raw }
if not cap then
  io.stderr:write("decode.lua: ", err, "\n")
  os.exit(1)
end
local source = cap.path

-- One line per connection (also the comment line above its messages).
local function describe(c)
  local notes = {}
  if c.encap then notes[#notes + 1] = "in " .. c.encap end
  if c.gaps > 0 then notes[#notes + 1] = fmt("%d bytes missing", c.gaps) end
  if c.handshake_missing then notes[#notes + 1] = "no handshake in the capture"
  elseif c.midstream then notes[#notes + 1] = "began before the capture" end
  if c.raw_pair then notes[#notes + 1] = "raw streams, no timing" end
  if c.tls then notes[#notes + 1] = capture.tls_summary(c) .. "; encrypted" end
  return fmt("%d %s -> %s %s %d/%d bytes%s", c.id, c.client, c.server,
    c.rtmp and "rtmp" or c.tls and "tls" or "not-rtmp", c.bytes.c2s, c.bytes.s2c,
    #notes > 0 and (" (" .. table.concat(notes, "; ") .. ")") or "")
end

if o.list then
  for _, c in ipairs(cap.conns) do print(describe(c)) end
  os.exit(0)
end

-- the RTMP connections, and the TLS ones, which are reported
local conns = {}
for _, c in ipairs(cap.conns) do
  if c.rtmp or c.tls then conns[#conns + 1] = c end
end
if o.connection then
  local c = cap.conns[o.connection]
  if not c then cmd:fail("no connection " .. o.connection .. " in " .. source) end
  conns = { c }
end
if #conns == 0 then
  io.stderr:write("decode.lua: no RTMP connection in ", source, "\n")
  os.exit(1)
end

local status = 0
for _, c in ipairs(conns) do
  if not o.connection then print("-- " .. describe(c)) end
  local list = capture.messages(c)   -- for TLS: none, and list.error says why
  for dir, n in pairs(list.skipped or {}) do
    if n > 0 then
      io.stderr:write(fmt("decode.lua: connection %d: %d bytes of the %s skipped before the first chunk header\n",
        c.id, n, dir == "c2s" and "client's stream" or "server's stream"))
    end
  end
  for _, e in ipairs(list) do
    local opts = { dir = e.dir == "c2s" and "in" or "out", conn = c.id,
                   time = o["from-start"] and e.t or c.start + e.t }
    if e.msg.type == 22 then
      local subs, why = e.msg:split()
      if subs then
        for k, m in ipairs(subs) do
          print(fmt("%s --[[aggregate %d/%d]]", rtmp.trace_line(m, opts), k, #subs))
        end
      else
        print(fmt("%s --[[aggregate that does not split: %s]]", rtmp.trace_line(e.msg, opts), why))
      end
    else
      print(rtmp.trace_line(e.msg, opts))
    end
  end
  if list.error then
    io.stderr:write(fmt("decode.lua: connection %d: %s\n", c.id, list.error))
    status = 1
  end
end
os.exit(status)
