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

local USAGE = [[
usage: luartmp scripts/tools/replay.lua CAPTURE SCRIPT [script args] [options] [-- script args]
       luartmp scripts/tools/replay.lua --raw CLIENT_FILE SERVER_FILE SCRIPT [...]

Replays a recorded session (pcap/pcapng) into SCRIPT with no sockets and a
virtual clock; prints one line per connection with the sha256 of the bytes
the script sent.  A server script (it calls rtmp.listen) gets the clients'
bytes of every recorded RTMP connection; a client script gets, for its n-th
rtmp.connect, the server's bytes of the n-th one.

options:
  --raw C S        instead of CAPTURE, the two raw files Wireshark's "Follow TCP
                   Stream" saves (C: the client's bytes, S: the server's); they
                   have no timing, so every recorded byte comes at once
  --connection N   replay only recorded connection N (decode.lua --list numbers them)
  --out FILE       write the trace of every message in and out to FILE ("-": stdout)
  --seed N         handshake seed of every connection (default 1)
  --limit S        stop the virtual clock S seconds after the last recorded byte (default 120)
  --keep-open      do not close connections when their recording ends
  --fast           feed each recorded read whole, not a byte at a time (faster
                   on big captures; handlers then see a read's messages only
                   after all of it was decoded)
  --log            show the script's log and errors (quiet by default)
  -h, --help       this help

Everything after "--" goes to the script unread.  Exit status: 0, 1 when
the capture or the script cannot be read, 2 for a usage error.
]]

local function usage_error(msg)
  io.stderr:write("replay.lua: ", msg, "\nTry 'replay.lua --help'.\n")
  os.exit(2)
end

local argv, raw = capture.take_raw_arg(arg or {})
if not argv then usage_error(raw) end
local o, pos = {}, {}
local VALUED = { connection = "count", out = "string", seed = "count", limit = "number" }
local i = 1
while i <= #argv do
  local a = argv[i]
  if a == "--" then
    for k = i + 1, #argv do pos[#pos + 1] = argv[k] end
    break
  elseif a == "-h" or a == "--help" then
    io.stdout:write(USAGE)
    os.exit(0)
  elseif a == "--keep-open" or a == "--log" or a == "--fast" then
    o[a:sub(3)] = true
  elseif a:sub(1, 2) == "--" and VALUED[(a:match("^%-%-([^=]+)"))] then
    local name, val = a:match("^%-%-([^=]+)=(.*)$")
    name = name or a:sub(3)
    if not val then
      i = i + 1
      val = argv[i]
      if not val then usage_error("option '--" .. name .. "' needs a value") end
    end
    if VALUED[name] ~= "string" then
      local v = tonumber(val)
      if not v or v < 0 or (VALUED[name] == "count" and v ~= math.floor(v)) then
        usage_error("bad --" .. name .. " '" .. val .. "'")
      end
      val = VALUED[name] == "count" and math.tointeger(v) or v
    end
    o[name] = val
  else
    pos[#pos + 1] = a
  end
  i = i + 1
end
local source
if raw then
  if #pos < 1 then usage_error("a script expected") end
  local cap, cerr = capture.open_raw(raw[1], raw[2])
  if not cap then
    io.stderr:write("replay.lua: ", tostring(cerr), "\n")
    os.exit(1)
  end
  source = cap
  table.insert(pos, 1, false)
else
  if #pos < 2 then usage_error("a capture and a script expected (or --raw CLIENT_FILE SERVER_FILE and a script)") end
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
