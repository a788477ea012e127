-- bench/lua_call.lua: what the Lua side costs per command message.
--
--   build/luartmp bench/lua_call.lua [N]
--   build/luartmp bench/lua_call.lua --layer session|session_read|reader [N]
--
-- Builds N (default 200000) AMF0 commands
-- rtmp.amf0.encode("FCPublish", txn, rtmp.null, "key"), each in one fmt 0
-- chunk (csid 3, stream 0, chunk size 128), and feeds them in 64 KiB
-- pieces (as the network layer reads) to:
--   - rtmp.session{ role = "server" } after a plain handshake: s:feed
--     returns the array of message objects (payload copied into a buffer,
--     AMF decoded into Lua: name, txn, values, args);
--   - the same, with the script reading msg.name and msg.txn of each
--     message, as an on_message handler would to dispatch;
--   - rtmp.reader(): the chunk layer alone, one Lua table per message
--     with the payload as a string;
-- and takes the C figures for the same bytes from build/bench/micro
-- --small (the bare C reader, and a C server session with an empty
-- message callback) when that binary exists.
--
-- Each layer is measured in a fresh luartmp process (this script run
-- with --layer NAME): in one process the figures drift by up to 40%
-- with the state the earlier layers left in the C heap.  Each figure is
-- the best of REPS repetitions after a warm-up (wall clock, garbage
-- collection included: it is part of the cost; a full collection runs
-- before each repetition).  A table goes to stderr, JSON to stdout.

local rtmp = require "rtmp"

local now = rtmp.now
local concat = table.concat
local fmt = string.format

local LAYERS = { "session", "session_read", "reader" }
local layer, N
do
  local cmd = require("rtmp.argv").new{
    prog = "bench/lua_call.lua",
    usage = "usage: luartmp bench/lua_call.lua [--layer NAME] [N]\n\n"
      .. "What the Lua side costs per command message, N commands (default 200000).\n\noptions:\n",
    options = {
      { "layer", LAYERS, arg = "NAME",
        help = "measure this layer alone and print its microseconds per message\n(the parent runs each in a fresh process)" },
    },
  }
  local o, pos = cmd:run(arg)
  if #pos > 1 then cmd:fail("unexpected argument '" .. pos[2] .. "'") end
  N = pos[1] and tonumber(pos[1])
  if pos[1] and (not N or N < 1 or N % 1 ~= 0) then cmd:fail("N: a positive integer expected, got '" .. pos[1] .. "'") end
  layer = o.layer
end
N = N or 200000
local READ = 65536
local REPS = 3
local CHUNK_SIZE = 128

-- The command stream, cut in READ-byte pieces.
local function build(n)
  local parts = {}
  local null, encode, chunk = rtmp.null, rtmp.amf0.encode, rtmp.chunk_fmt0
  for i = 1, n do
    local payload = encode("FCPublish", 5 + (i - 1) % 1000, null, "key")
    parts[i] = chunk(CHUNK_SIZE, { csid = 3, type = 20, stream = 0, timestamp = 0, payload = payload })
  end
  local all = concat(parts)
  local pieces = {}
  for off = 1, #all, READ do
    pieces[#pieces + 1] = all:sub(off, off + READ - 1)
  end
  return pieces, #all, #parts[1]
end

-- A server session past a plain handshake with a plain client.
local function server_session()
  local s = rtmp.session{ role = "server" }
  local hs = rtmp.handshake("client", { plain = true })
  assert(s:feed(hs:start()))
  local consumed, c2 = hs:feed(s:output())
  assert(consumed and hs:done(), "client handshake did not finish")
  assert(s:feed(c2))
  assert(s.ready, "server session not ready after the handshake")
  return s
end

-- Feed every piece to obj; visit(msgs) sees each result.  Returns the
-- seconds taken and the messages delivered.
local function feed_all(obj, pieces, visit)
  local count = 0
  local t0 = now()
  for i = 1, #pieces do
    local msgs, err = obj:feed(pieces[i])
    if not msgs then error("feed failed: " .. tostring(err)) end
    if visit then visit(msgs) end
    count = count + #msgs
  end
  return now() - t0, count
end

local function best_of(make, pieces, visit, drain)
  local obj = make()
  feed_all(obj, pieces, visit)               -- warm-up
  local best = math.huge
  for _ = 1, REPS do
    if drain then drain(obj) end
    collectgarbage()
    local t, count = feed_all(obj, pieces, visit)
    if count ~= N then error(fmt("expected %d messages, got %d", N, count)) end
    if t < best then best = t end
  end
  obj:close()
  return best / N * 1e6
end

-- How a handler dispatches: the name and the transaction id of each.
local sink = 0
local function read_fields(msgs)
  for i = 1, #msgs do
    local m = msgs[i]
    if m.name == "FCPublish" then sink = sink + m.txn end
  end
end

local function drain(s) s:output() end    -- acknowledgements it queued


local layers = {
  session = function(pieces) return best_of(server_session, pieces, nil, drain) end,
  session_read = function(pieces) return best_of(server_session, pieces, read_fields, drain) end,
  reader = function(pieces) return best_of(function() return rtmp.reader() end, pieces) end,
}

if layer then                              -- child: one layer, one number
  local run = layers[layer]
  print(fmt("%.6f", run((build(N)))))
  return
end

-- Parent: each layer in a fresh process of the same interpreter.
local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local lowest = 0
while arg[lowest - 1] do lowest = lowest - 1 end
local interp = arg[lowest]
local function measure(name)
  local p = io.popen(fmt("%s %s --layer %s %d", shell_quote(interp), shell_quote(arg[0]), name, N))
  local out = p:read("a")
  local ok = p:close()
  local v = tonumber(out)
  if not ok or not v then error(fmt("layer %s failed: %s", name, out)) end
  return v
end

-- The C figures, from micro --small in the interpreter's build directory
-- (build/luartmp -> build/bench/micro), else in ./build/bench.
local function c_figures(interp)
  local exe
  for _, cand in ipairs{ (interp:match("^(.*)/[^/]*$") or ".") .. "/bench/micro", "build/bench/micro" } do
    local f = io.open(cand, "rb")
    if f then f:close(); exe = cand; break end
  end
  if not exe then return nil, "build/bench/micro not built (make bench-build)" end
  local p = io.popen(shell_quote(exe) .. " --small 2>/dev/null")
  local out = p:read("a")
  p:close()
  local r = tonumber(out:match('"c_reader_us_per_msg":%s*([%d.eE+-]+)'))
  local s = tonumber(out:match('"c_session_us_per_msg":%s*([%d.eE+-]+)'))
  if not r then return nil, exe .. " --small gave no figures" end
  return { reader = r, session = s, source = exe .. " --small" }
end

local _, total, msg_bytes = build(1)
total = total * N
local session_us = measure("session")
local session_read_us = measure("session_read")
local reader_us = measure("reader")
local c, why = c_figures(interp)

local function json_num(v) return v and fmt("%.4f", v) or "null" end
local lua_side = c and c.session and session_us - c.session

io.stderr:write(fmt("%d commands of %d bytes (%.1f MB) in %d-byte pieces, best of %d, one process per layer\n",
  N, msg_bytes, total / 1e6, READ, REPS))
io.stderr:write(fmt("  rtmp.session s:feed         %8.3f us/msg\n", session_us))
io.stderr:write(fmt("  ... and read name, txn      %8.3f us/msg\n", session_read_us))
io.stderr:write(fmt("  rtmp.reader r:feed          %8.3f us/msg\n", reader_us))
if c then
  io.stderr:write(fmt("  C reader (micro --small)    %8.4f us/msg\n", c.reader))
  io.stderr:write(fmt("  C session (micro --small)   %8.4f us/msg\n", c.session or 0))
  io.stderr:write(fmt("  Lua side per command        %8.3f us/msg (session s:feed - C session)\n", lua_side or 0))
else
  io.stderr:write("  C figures: " .. why .. "\n")
end

print(fmt('{ "lua_call": { "messages": %d, "msg_bytes": %d, "session_us_per_msg": %s, '
  .. '"session_read_us_per_msg": %s, "reader_us_per_msg": %s, "c_reader_us_per_msg": %s, '
  .. '"c_session_us_per_msg": %s, "lua_side_us_per_msg": %s, "c_source": %s } }',
  N, msg_bytes, json_num(session_us), json_num(session_read_us), json_num(reader_us),
  json_num(c and c.reader), json_num(c and c.session), json_num(lua_side),
  c and fmt("%q", c.source) or "null"))
