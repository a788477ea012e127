-- tools/replay.lua: run a script against a recorded session, with no
-- sockets and a virtual clock (rtmp.replay), and print what it sent.
--
--   luartmp scripts/tools/replay.lua CAPTURE SCRIPT [script args] [--connection N] [--out FILE]
--   luartmp scripts/tools/replay.lua --raw CLIENT_FILE SERVER_FILE SCRIPT [script args]
--   luartmp scripts/tools/replay.lua flow.pcapng scripts/live.lua --out live.trace
--   luartmp scripts/tools/replay.lua flow.pcapng scripts/client/play.lua --connection 2 \
--       -- rtmp://127.0.0.1/live/cam /tmp/out.flv
--
-- Prints one line per connection the script had: its id, role, the
-- recorded connection it replayed, its peer, the bytes it sent, the
-- messages in and out, the sha256 of those bytes and why it closed.  The
-- same capture, script, arguments and seed give the same lines every run.
-- --out FILE writes the trace (every message in and out, virtual times).
-- See docs/REPLAY.md.
local replay = require "rtmp.replay"
local capture = require "rtmp.capture"
local argv = require "rtmp.argv"

local cmd = argv.new{
  usage = [[
usage: luartmp scripts/tools/replay.lua CAPTURE SCRIPT [script args] [options] [-- script args]
       luartmp scripts/tools/replay.lua --raw CLIENT_FILE SERVER_FILE SCRIPT [...]

Replays a recorded session (pcap/pcapng) into SCRIPT with no sockets and a
virtual clock; prints one line per connection with the sha256 of the bytes
the script sent.  A server script (it calls rtmp.listen) gets the clients'
bytes of every recorded RTMP connection; a client script gets, for its n-th
rtmp.connect, the server's bytes of the n-th one.

options:
]],
  options = {
    capture.RAW_OPTION,
    { "connection", "integer", arg = "N", help = "replay only recorded connection N (decode.lua --list numbers them)" },
    { "out", "string", arg = "FILE", help = "write the trace of every message in and out to FILE (\"-\": stdout)" },
    { "seed", "integer", arg = "N", help = "handshake seed of every connection (default 1)" },
    { "limit", "number", arg = "S", help = "stop the virtual clock S seconds after the last recorded\nbyte (default 120)" },
    { "keep-open", help = "do not close connections when their recording ends" },
    { "fast", help = "feed each recorded read whole, not a byte at a time (faster\n" ..
                     "on big captures; handlers then see a read's messages only\n" ..
                     "after all of it was decoded)" },
    { "log", help = "show the script's log and errors (quiet by default)" },
  },
  after = [[

Raw files have no timing: every recorded byte of them comes at once.
Everything after "--" goes to the script unread (the script's own options
go there).  Exit status: 0, 1 when the capture or the script cannot be
read, 2 for a usage error.
]],
}

local o, pos = cmd:run(arg)
local raw = o.raw
local source
if raw then
  if #pos < 1 then cmd:fail("a script expected") end
  local cap, cerr = capture.open_raw(raw[1], raw[2])
  if not cap then
    io.stderr:write("replay.lua: ", tostring(cerr), "\n")
    os.exit(1)
  end
  source = cap
  table.insert(pos, 1, false)
else
  if #pos < 2 then cmd:fail("a capture and a script expected (or --raw CLIENT_FILE SERVER_FILE and a script)") end
  source = pos[1]
end

local script = pos[2]
local args = { table.unpack(pos, 3) }
local res, err = replay.run{ capture = source, script = script, args = args, connection = o.connection,
                             seed = o.seed, limit = o.limit, keep_open = o["keep-open"], quiet = not o.log,
                             fast = o.fast }
if not res then
  io.stderr:write("replay.lua: ", tostring(err), "\n")
  os.exit(1)
end

io.stdout:write(replay.summary(res), "\n")
if res.exit ~= nil then io.stdout:write("script exit status ", tostring(res.exit), "\n") end
if res.script_error then io.stdout:write("script error: ", res.script_error, "\n") end
if #res.conns == 0 then
  io.stdout:write("no connection: the script neither listened nor connected, or the capture has no RTMP\n")
end
if o.out then
  local text = table.concat(res.trace, "\n") .. "\n"
  if o.out == "-" then
    io.stdout:write(text)
  else
    local f, ferr = io.open(o.out, "wb")
    if not f then
      io.stderr:write("replay.lua: ", tostring(ferr), "\n")
      os.exit(1)
    end
    f:write(text)
    f:close()
  end
end
io.stdout:flush()
os.exit(0)
