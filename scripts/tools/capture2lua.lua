-- capture2lua.lua: turn one RTMP connection of a pcap/pcapng capture into
-- a Lua script that plays one side of it again (see docs/CAPTURE2LUA.md).
--
--   luartmp scripts/tools/capture2lua.lua CAPTURE --list
--   luartmp scripts/tools/capture2lua.lua CAPTURE [--connection N] [--side server|client]
--           [--media FILE] [-o FILE]
--
-- The script it writes runs on lua/rtmp/flow.lua: for each message the
-- other side sent (an `expect` step) the messages the played side sent
-- next, in order, as `send { ... }` lines with their values as Lua
-- literals; audio and video go to a companion FLV referred to by tag
-- ranges (`media { from, to, ... }`).
--
-- Used as a module (require "tools.capture2lua") it returns the
-- generator: M.generate(conn, list, opts) -> text, info.

local rtmp = require "rtmp"

local fmt = string.format
local concat = table.concat

local M = {}

local USAGE = [[
usage: luartmp capture2lua.lua CAPTURE [--list] [--connection N] [--side server|client]
                                [--media FILE] [-o FILE]
  --list          one line per TCP connection: id, endpoints, bytes, RTMP or not, commands
  --connection N  the connection to convert (default: the first RTMP connection)
  --side S        the side the script plays: server (default) or client
  --media FILE    the companion FLV for audio/video (default: next to -o FILE, or
                  CAPTURE-cN-SIDE.flv in the current directory)
  -o FILE         write the script to FILE (default: standard output)
]]

---------------------------------------------------------------------------
-- Lua literals for AMF values (the rules of docs/TRACE.md, without limits)
---------------------------------------------------------------------------

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function quote(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    return fmt("\\x%02X", c:byte())
  end) .. '"'
end
M.quote = quote

local function number(v, amf3)
  if math.type(v) == "integer" then return fmt("%d", v) end
  if v ~= v then return "0/0" end
  if v == math.huge then return "1/0" end
  if v == -math.huge then return "-1/0" end
  if v == math.floor(v) and math.abs(v) < 2^53 then
    if v == 0 and 1 / v < 0 then return "-0.0" end
    -- an AMF3 double must stay a float; an AMF0 number is one anyway
    return fmt(amf3 and "%d.0" or "%d", math.tointeger(v))
  end
  for p = 14, 17 do
    local s = fmt("%." .. p .. "g", v)
    if tonumber(s) == v then return s end
  end
  return fmt("%.17g", v)
end

local function key_lit(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  if type(k) == "string" then return "[" .. quote(k) .. "]" end
  return nil
end

-- The keys of an object in wire order (__keys), then the others sorted.
local function object_keys(t)
  local mt = getmetatable(t) or {}
  local out, seen = {}, {}
  for _, k in ipairs(mt.__keys or {}) do
    if rawget(t, k) ~= nil and not seen[k] then out[#out + 1] = k; seen[k] = true end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do out[#out + 1] = k end
  return out
end

-- lit(v) -> text, or nil and why when the value has no literal here.
local lit
lit = function(v, depth, amf3)
  depth = depth or 0
  if depth > 32 then return nil, "nested too deep" end
  local tv = type(v)
  if v == nil then return "nil" end
  if v == rtmp.null then return "null" end
  if v == rtmp.undefined then return "undefined" end
  if v == rtmp.amf0.unsupported then return "flow.unsupported" end
  if tv == "boolean" then return tostring(v) end
  if tv == "number" then return number(v, amf3) end
  if tv == "string" then return quote(v) end
  if tv ~= "table" then return nil, "a " .. tv end
  local mt = getmetatable(v) or {}
  local kind = mt.__amf or rtmp.amf0.type(v)
  local sw = mt.__amf3 or {}
  local function item(x, k)
    local s, why = lit(x, depth + 1, amf3 or sw[k])
    if s and sw[k] and not amf3 then s = "flow.amf3(" .. s .. ")" end
    return s, why
  end
  if kind == "array" then
    local n = v.n or mt.__n or #v
    for k in pairs(v) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) and k ~= "n" then
        return nil, "an array with named keys"
      end
    end
    if n == 0 then return "array{}" end
    local parts = {}
    for k = 1, n do
      local s, why = item(v[k], k)
      if not s then return nil, why end
      parts[k] = s
    end
    return "{" .. concat(parts, ", ") .. "}"
  elseif kind == "object" or kind == "ecma" or kind == "typed" then
    if kind == "typed" and (mt.__sealed or mt.__dynamic == false or amf3) then
      return nil, "an AMF3 object with traits"
    end
    local parts = {}
    for _, k in ipairs(object_keys(v)) do
      local kl = key_lit(k)
      if not kl then return nil, "a non-string key" end
      local s, why = item(v[k], k)
      if not s then return nil, why end
      parts[#parts + 1] = kl .. "=" .. s
    end
    local body = "{" .. concat(parts, ", ") .. "}"
    if kind == "ecma" then return "ecma" .. body end
    if kind == "typed" then return fmt("flow.typed(%s, %s)", quote(mt.__class or ""), body) end
    return body
  elseif kind == "date" then
    return fmt("flow.date(%s, %s)", number(v.time or 0), number(v.tz or 0))
  end
  return nil, "an AMF value of kind " .. tostring(kind)
end
M.lit = lit

-- Deep equality of decoded AMF values, by value and kind (key order aside).
local function same(a, b, depth)
  if depth > 40 then return false end
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return a == b or (a ~= a and b ~= b) end
  if type(a) ~= "table" then return a == b end
  if rtmp.amf0.type(a) ~= rtmp.amf0.type(b) then return false end
  for k, x in pairs(a) do
    if not same(x, b[k], depth + 1) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- The values of a command/data message as Lua literals, checked: the
-- literals, loaded and encoded again, decode to the same values.
local function values_lit(msg)
  local vals = msg.values
  if msg.decode_error or not vals then return nil, msg.decode_error or "no values" end
  local n = vals.n or #vals
  local top = (getmetatable(vals) or {}).__amf3 or {}
  local parts = {}
  for i = 1, n do
    local s, why = lit(vals[i], 0, false)
    if not s then return nil, why end
    if top[i] then s = "flow.amf3(" .. s .. ")" end
    parts[i] = s
  end
  -- check
  local flow = require "rtmp.flow"
  local env = { null = rtmp.null, undefined = rtmp.undefined, ecma = flow.ecma,
                array = flow.array, flow = flow }
  local chunk = load("return {" .. concat(parts, ", ") .. "}", "values", "t", env)
  local ok, back = pcall(chunk)
  if not ok then return nil, "does not load: " .. tostring(back) end
  local okenc, bytes = pcall(rtmp.amf0.encode, table.unpack(back, 1, n))
  if not okenc then return nil, "does not encode: " .. tostring(bytes) end
  local a = rtmp.amf0.decode(bytes)
  local body = msg.payload
  if msg.type == 17 or msg.type == 15 then body = body:sub(2) end
  local b = rtmp.amf0.decode(body)
  if not a or not b or (a.n or #a) ~= (b.n or #b) or not same(a, b, 0) then
    return nil, "values do not survive a round trip"
  end
  return parts
end

---------------------------------------------------------------------------
-- Lines of the script
---------------------------------------------------------------------------

local AMF_TYPES = { command = true, data = true, command3 = true, data3 = true }
local MEDIA = { audio = true, video = true }

-- Peer messages that never make a step (flow.lua skips them as well).
-- Peer messages that never become a step: the runtime lets them pass.
local tolerated = require("rtmp.flow").tolerated

-- Messages of the played side that the engine sends by itself.
local function auto_note(msg)
  if msg.type_name == "ack" then return "auto: the engine acknowledges by itself" end
  if msg.type_name == "user_control" and msg.event_name == "ping_response" then
    return "auto: the engine answers pings by itself"
  end
end

-- The trace form of a message (without time and direction), bounded.
local function trace_form(msg)
  local ok, line = pcall(rtmp.trace_line, msg, { dir = "in", time = 0 })
  if not ok or not line then return fmt("type=%s len=%d", tostring(msg.type_name), msg.length or 0) end
  line = line:match("^%S+ conn=%S+ in (.*)$") or line
  if #line > 240 then line = line:sub(1, 236) .. " ..." end
  return (line:gsub("\n", " "))
end

local function hdr_fields(msg)
  local f = { fmt("csid = %d", msg.csid) }
  if (msg.stream or 0) ~= 0 then f[#f + 1] = fmt("stream = %d", msg.stream) end
  if (msg.timestamp or 0) ~= 0 then f[#f + 1] = fmt("timestamp = %d", msg.timestamp) end
  return concat(f, ", ")
end

local WIDTH = 100

-- A long object or ECMA array value, one field a line (nil: keep it on one).
local function break_object(v, indent)
  if type(v) ~= "table" then return nil end
  local mt = getmetatable(v) or {}
  local kind = mt.__amf or rtmp.amf0.type(v)
  if (kind ~= "object" and kind ~= "ecma") or next(mt.__amf3 or {}) then return nil end
  local out = { indent .. (kind == "ecma" and "ecma{" or "{") }
  for _, k in ipairs(object_keys(v)) do
    local kl, s = key_lit(k), lit(v[k], 1, false)
    if not kl or not s then return nil end
    out[#out + 1] = indent .. "  " .. kl .. " = " .. s .. ","
  end
  out[#out + 1] = indent .. "},"
  return out
end

-- A `send { ... }` for one message (lines), or a commented one.
local function send_lines(msg, chunk, indent)
  local tn = msg.type_name
  local extra = chunk and fmt(", chunk = %d", chunk) or ""
  local function raw(why)
    return { fmt('%ssend { %d, %s%s, payload = %s },  -- %s (%s)', indent, msg.type,
      hdr_fields(msg), extra, quote(msg.payload), tn or "?", why) }
  end
  if msg.decode_error then return raw("did not decode: " .. tostring(msg.decode_error)) end
  local line
  if tn == "set_chunk_size" then
    line = fmt('send { "set_chunk_size", chunk_size = %d }', msg.chunk_size)
  elseif tn == "window_ack_size" then
    line = fmt('send { "window_ack_size", window = %d }', msg.window)
  elseif tn == "set_peer_bandwidth" then
    line = fmt('send { "set_peer_bandwidth", window = %d%s }', msg.window,
      msg.limit and fmt(", limit = %d", msg.limit) or "")
  elseif tn == "ack" then
    line = fmt('send { "ack", sequence = %d }', msg.sequence)
  elseif tn == "abort" then
    line = fmt('send { "abort", abort_csid = %d }', msg.abort_csid)
  elseif tn == "user_control" then
    local ev = msg.event_name and quote(msg.event_name) or tostring(msg.event)
    local f = { fmt('send { "user_control", event = %s', ev) }
    if msg.stream_id then f[#f + 1] = fmt("stream_id = %d", msg.stream_id) end
    if msg.ping_time then f[#f + 1] = fmt("ping_time = %d", msg.ping_time) end
    if msg.buffer_length then f[#f + 1] = fmt("buffer_length = %d", msg.buffer_length) end
    line = concat(f, ", ") .. " }"
  elseif AMF_TYPES[tn] then
    local parts, why = values_lit(msg)
    if not parts then return raw(why) end
    local head = fmt('send { "%s", %s%s, values = {', tn, hdr_fields(msg), extra)
    local one = head .. " " .. concat(parts, ", ") .. " } },"
    if #indent + #one <= WIDTH then return { indent .. one } end
    -- a command's name and txn on the first line, a data message's name
    local first = (tn == "command" or tn == "command3") and math.min(2, #parts) or 1
    local out = { indent .. head .. " " .. concat(parts, ", ", 1, first) .. "," }
    local sub = indent .. "    "
    for i = first + 1, #parts do
      local lines = #sub + #parts[i] > WIDTH and break_object(msg.values[i], sub)
      if lines then
        for _, l in ipairs(lines) do out[#out + 1] = l end
      else
        out[#out + 1] = sub .. parts[i] .. ","
      end
    end
    out[#out + 1] = indent .. "} },"
    return out
  else
    return raw("sent as bytes")
  end
  local note = auto_note(msg)
  if note then return { fmt("%s-- %s,  -- %s", indent, line, note) } end
  return { indent .. line .. "," }
end

local function expect_line(msg)
  local tn = msg.type_name
  local name
  if tn == "user_control" then
    name = msg.event_name and quote(msg.event_name) or tostring(msg.event)
  elseif AMF_TYPES[tn] and type(msg.name) == "string" then
    name = quote(msg.name)
  end
  local f = { quote(tn or tostring(msg.type)) }
  if name then f[#f + 1] = name end
  if (tn == "command" or tn == "command3") and msg.txn and msg.txn ~= 0 then
    f[#f + 1] = "txn = " .. number(msg.txn)
  end
  local info = AMF_TYPES[tn] and msg.args and msg.args[2]
  if (tn == "command" or tn == "command3") and type(info) == "table" and type(info.code) == "string" then
    f[#f + 1] = "code = " .. quote(info.code)
  end
  return "expect { " .. concat(f, ", ") .. " },"
end

-- The companion FLV, opened on first use.
local function media_writer(opts, info)
  if info.writer then return info.writer end
  local w, err = rtmp.flv.create(opts.media_path)
  if not w then error(fmt("capture2lua: %s", tostring(err)), 0) end
  info.writer, info.tags = w, 0
  return w
end

-- generate(conn, list, opts) -> text, info. opts: side ("server" or
-- "client"), capture (path shown), media_path (where the FLV goes),
-- media_ref (how the script names it).
function M.generate(conn, list, opts)
  local side = opts.side or "server"
  if side ~= "server" and side ~= "client" then error("side must be server or client", 2) end
  local ours = side == "server" and "s2c" or "c2s"
  local peer_name = side == "server" and "client" or "server"
  local info = { steps = 0, sends = 0, auto = 0, media_tags = 0, peer_media = 0 }
  local body = {}
  local I = "  "
  local function out(s) body[#body + 1] = s end

  local chunk = 128               -- our outgoing chunk size as the runtime will have it
  local run                       -- the media range being built
  local peer_media = 0            -- peer audio/video since the last step or send
  local last_peer                 -- the last tolerated peer message type, for comments
  local function flush_run()
    if not run then return end
    local cs = {}
    for _, k in ipairs({ "audio", "video" }) do
      if run.csid[k] then cs[#cs + 1] = fmt("%s = %d", k, run.csid[k]) end
    end
    out(fmt("%smedia { from = %d, to = %d, stream = %d, csid = { %s } },  -- %d messages, ts %d..%d ms",
      I, run.from, run.to, run.stream, concat(cs, ", "), run.to - run.from + 1, run.ts0, run.ts1))
    run = nil
  end
  local function note_peer_media()
    if peer_media > 0 then
      out(fmt("%s-- (the %s sent %d audio/video messages here)", I, peer_name, peer_media))
      info.peer_media = info.peer_media + peer_media
      peer_media = 0
    end
  end

  for _, e in ipairs(list) do
    local msg = e.msg
    local tn = msg.type_name
    if e.dir ~= ours then
      -- the peer
      if MEDIA[tn] or tn == "aggregate" then
        flush_run()
        peer_media = peer_media + 1
      elseif tolerated(msg) then
        flush_run()
        last_peer = tn
      else
        flush_run()
        note_peer_media()
        info.steps = info.steps + 1
        out("")
        out(fmt("%s-- [%.3f s] %s: %s", I, e.t or 0, peer_name, trace_form(msg)))
        out(I .. expect_line(msg))
      end
    else
      -- the played side
      local note = auto_note(msg)
      if note then
        flush_run()
        for _, l in ipairs(send_lines(msg, nil, I)) do out(l) end
        info.auto = info.auto + 1
      elseif MEDIA[tn] then
        if peer_media > 0 then
          info.steps = info.steps + 1
          out("")
          out(fmt("%s-- the %s sent %d audio/video messages", I, peer_name, peer_media))
          out(fmt('%sexpect { "media", count = %d },', I, peer_media))
          info.peer_media = info.peer_media + peer_media
          peer_media = 0
        end
        local w = media_writer(opts, info)
        local ok, err = w:write(msg)
        if not ok then error(fmt("capture2lua: writing %s: %s", opts.media_path, tostring(err)), 0) end
        info.tags = info.tags + 1
        info.media_tags = info.media_tags + 1
        local stream = msg.stream or 0
        if run and (run.stream ~= stream or (run.csid[tn] and run.csid[tn] ~= msg.csid)) then
          flush_run()
        end
        if not run then
          run = { from = info.tags, to = info.tags, stream = stream, csid = {},
                  ts0 = msg.timestamp, ts1 = msg.timestamp }
        end
        run.to = info.tags
        run.csid[tn] = msg.csid
        run.ts1 = msg.timestamp
      else
        flush_run()
        if peer_media > 0 then
          info.steps = info.steps + 1
          out("")
          out(fmt("%s-- the %s sent %d audio/video messages", I, peer_name, peer_media))
          out(fmt('%sexpect { "media", count = %d },', I, peer_media))
          info.peer_media = info.peer_media + peer_media
          peer_media = 0
        end
        local c = nil
        if e.chunk_size and e.chunk_size ~= chunk and (msg.length or 0) > math.min(chunk, e.chunk_size) then
          c = e.chunk_size
        end
        for _, l in ipairs(send_lines(msg, c, I)) do out(l) end
        info.sends = info.sends + 1
        if tn == "set_chunk_size" and msg.chunk_size then chunk = msg.chunk_size end
      end
    end
  end
  flush_run()
  note_peer_media()
  if list.error then
    out("")
    out(I .. "-- decoding stopped here: " .. tostring(list.error):gsub("\n", " "))
    info.error = list.error
  end
  if info.writer then info.writer:close() end

  -- the header
  local hs = list.handshake or {}
  local function kind(d) return hs[d] and hs[d].kind or "?" end
  local played = side == "server" and conn.server or conn.client
  local h = {}
  local function H(s) h[#h + 1] = s end
  local cap = opts.capture or "?"
  H(fmt("-- The %s side of RTMP connection %d in %s,", side, conn.id, cap))
  H(fmt("-- written by scripts/tools/capture2lua.lua. Client %s, server %s, first packet %s UTC;",
    conn.client, conn.server, os.date("!%Y-%m-%d %H:%M:%S", math.floor(conn.start or 0))))
  H(fmt("-- handshake: client %s, server %s. %d steps, %d messages to send, %d media messages.",
    kind("c2s"), kind("s2c"), info.steps, info.sends, info.media_tags))
  if (conn.gaps or 0) > 0 then
    H(fmt("-- The capture misses %d bytes of this connection: messages after a hole may be lost.",
      conn.gaps))
  end
  H("--")
  if side == "server" then
    H("-- Run:   luartmp THIS.lua [--listen ADDR] [--once] [--fast] [--media FILE]")
    H(fmt("--        (recorded at %s), then point the client at rtmp://ADDR/...", played))
  else
    H("-- Run:   luartmp THIS.lua [URL] [--save FILE] [--duration S] [--linger S] [--fast]")
    H("--        (URL defaults to the recorded server's tcUrl)")
  end
  H("--")
  H(fmt("-- Each `expect` is a message the %s sent; the `send` lines after it are what the", peer_name))
  H(fmt("-- %s sent next, in order, until the %s's next message. Edit a value, delete or add a", side, peer_name))
  H("-- line. The txn of a _result/_error is the recorded txn of the command it answers: the")
  H(fmt("-- live %s's txn is put in its place. Control messages go on csid 2 with timestamp 0.", peer_name))
  H("-- `-- send` lines are what the engine sends by itself (acknowledgements, ping answers).")
  if info.media_tags > 0 then
    H(fmt("-- `media` sends tags FROM..TO of %s (numbered from 1) with their timestamps,", opts.media_ref))
    H("-- paced in real time (--fast: at once).")
  end
  H("")
  H('local flow = require "rtmp.flow"')
  H("local expect, send, media = flow.expect, flow.send, flow.media")
  H("local null, undefined, ecma, array = flow.null, flow.undefined, flow.ecma, flow.array")
  H("")
  H(fmt("return flow.%s {", side))
  if side == "server" then
    H(fmt("  listen = nil,  -- recorded: %s; --listen ADDR or luartmp --listen set it", played))
  else
    H(fmt("  url = %s,", quote(opts.url or ("rtmp://" .. conn.server .. "/"))))
  end
  if info.media_tags > 0 then H(fmt("  media = %s,", quote(opts.media_ref))) end
  local ourhs = side == "server" and kind("s2c") or kind("c2s")
  if ourhs == "plain" then H('  handshake = "plain",') end
  local text = concat(h, "\n") .. "\n" .. concat(body, "\n") .. "\n}\n"
  return text, info
end

-- The recorded client's tcUrl (from its connect command), if any.
function M.recorded_url(list)
  for _, e in ipairs(list) do
    if e.dir == "c2s" and e.msg.name == "connect" then
      local obj = e.msg.args and e.msg.args[1]
      if type(obj) == "table" and type(obj.tcUrl) == "string" then return obj.tcUrl end
      return nil
    end
  end
end

---------------------------------------------------------------------------
-- --list
---------------------------------------------------------------------------

function M.list_lines(cap)
  local capture = require "rtmp.capture"
  local lines = {}
  for _, c in ipairs(cap.conns) do
    local names = {}
    if c.rtmp then
      local seen = 0
      for _, e in ipairs(capture.messages(c)) do
        if e.dir == "c2s" and (e.msg.type_name == "command" or e.msg.type_name == "command3")
            and e.msg.name then
          seen = seen + 1
          if seen > 8 then names[#names + 1] = "..."; break end
          names[#names + 1] = e.msg.name
        end
      end
    end
    lines[#lines + 1] = fmt("%d  %s -> %s  c2s %d bytes  s2c %d bytes  %s%s%s", c.id, c.client,
      c.server, c.bytes and c.bytes.c2s or 0, c.bytes and c.bytes.s2c or 0,
      c.rtmp and "RTMP" or "not RTMP", (c.gaps or 0) > 0 and fmt("  (%d bytes missing)", c.gaps) or "",
      #names > 0 and ("  " .. concat(names, " ")) or "")
  end
  return lines
end

---------------------------------------------------------------------------
-- Command line
---------------------------------------------------------------------------

local function fail(msg, code)
  io.stderr:write("capture2lua: ", msg, "\n")
  os.exit(code or 1)
end

local function main(argv)
  local o, pos = {}, {}
  local i = 1
  while argv[i] ~= nil do
    local a = argv[i]
    local name, val = a:match("^%-%-([^=]+)=(.*)$")
    name = name or (a:match("^%-%-(.+)$")) or (a == "-o" and "o") or (a == "-h" and "help")
    if name == "help" then io.stdout:write(USAGE); os.exit(0) end
    if name == "list" then
      o.list = true
    elseif name == "connection" or name == "side" or name == "media" or name == "o" then
      if not val then
        i = i + 1
        val = argv[i]
        if val == nil then fail(fmt("option '%s' needs a value\n%s", a, USAGE), 2) end
      end
      o[name] = val
    elseif name then
      fail(fmt("unknown option '%s'\n%s", a, USAGE), 2)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if #pos ~= 1 then fail("want one capture file\n" .. USAGE, 2) end
  local side = o.side or "server"
  if side ~= "server" and side ~= "client" then fail("--side must be server or client", 2) end
  local capture = require "rtmp.capture"
  local path = pos[1]
  local cap, err = capture.open(path)
  if not cap then fail(tostring(err)) end
  if o.list then
    for _, l in ipairs(M.list_lines(cap)) do io.stdout:write(l, "\n") end
    return
  end
  local conn
  if o.connection then
    local n = math.tointeger(tonumber(o.connection))
    conn = n and cap.conns[n]
    if not conn then fail(fmt("no connection %s in %s (%d connections)", o.connection, path, #cap.conns)) end
  else
    local n = 0
    for _, c in ipairs(cap.conns) do
      if c.rtmp then
        n = n + 1
        conn = conn or c
      end
    end
    if not conn then fail(fmt("no RTMP connection in %s (%d TCP connections)", path, #cap.conns)) end
    if n > 1 then
      io.stderr:write(fmt("capture2lua: %d RTMP connections in %s; converting %d (--list shows them, " ..
        "--connection N picks one)\n", n, path, conn.id))
    end
  end
  local list = capture.messages(conn)
  local base = (path:match("([^/]+)$") or path):gsub("%.pcapng$", ""):gsub("%.pcap$", "")
  local media_path = o.media
  if not media_path then
    if o.o then
      media_path = o.o:gsub("%.lua$", "") .. ".flv"
    else
      media_path = fmt("%s-c%d-%s.flv", base, conn.id, side)
    end
  end
  -- the script names the FLV relative to itself when they share a directory
  local media_ref = media_path
  if o.o then
    local sdir = o.o:match("^(.*)/[^/]*$") or "."
    local mdir, mfile = media_path:match("^(.*)/([^/]*)$")
    mdir, mfile = mdir or ".", mfile or media_path
    if mdir == sdir then media_ref = mfile end
  end
  local text, info = M.generate(conn, list, {
    side = side, capture = path, media_path = media_path, media_ref = media_ref,
    url = M.recorded_url(list),
  })
  if o.o then
    local f, ferr = io.open(o.o, "wb")
    if not f then fail(tostring(ferr)) end
    f:write(text)
    f:close()
  else
    io.stdout:write(text)
  end
  io.stderr:write(fmt("capture2lua: connection %d (%s -> %s), %s side: %d steps, %d sends, %d media tags%s%s\n",
    conn.id, conn.client, conn.server, side, info.steps, info.sends, info.media_tags,
    info.media_tags > 0 and (" in " .. media_path) or "",
    info.error and ("; decoding stopped: " .. tostring(info.error)) or ""))
end

if ... == "tools.capture2lua" then return M end
main(arg or { ... })
