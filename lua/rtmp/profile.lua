-- rtmp.profile: a profile of a recorded RTMP server for the live server.
--
--   local capture = require "rtmp.capture"
--   local profile = require "rtmp.profile"
--   local text, info = profile.generate(conn, capture.messages(conn), { capture = path })
--
-- The text is a script in the style of scripts/quirks/fms.lua: it requires
-- scripts/live.lua, replaces the replies the recorded server gave (the
-- pieces of live.replies and the handlers in live.commands: those of
-- rtmp.app, the application layer under live.lua), and starts the live
-- server.  Run with it, luartmp answers connect, createStream,
-- publish, play and the rest with the recorded values (fmsVer,
-- capabilities, descriptions, data, clientid style), in the recorded
-- order, with the recorded unsolicited messages (window, bandwidth, chunk
-- size, onBWDone, StreamBegin, |RtmpSampleAccess, ...), while live.lua
-- keeps serving the real media to any number of publishers and players.
--
-- Which recorded message answers which request is rtmp.bind's decision;
-- AMF literals and the standard control bodies are rtmp.literal's.
-- What the recording does not show keeps rtmp.app's and live.lua's behaviour.
local rtmp = require "rtmp"
local bind = require "rtmp.bind"
local app = require "rtmp.app"

local _M = {}

local fmt = string.format
local concat = table.concat
local ipairs, pairs, type = ipairs, pairs, type

local literal = require "rtmp.literal"

local COMMAND = { command = true, command3 = true }
local DATA = { data = true, data3 = true }

-- Requests whose reply is a piece of live.replies (rtmp.app keeps their state).
local STATEFUL = { connect = true, createStream = true, publish = true, play = true,
                   deleteStream = true, closeStream = true }
-- play2 and the like have no live handler: they are left to live.lua.
local UNSUPPORTED = { play2 = true }

-- Placeholders for values that differ per connection; they travel
-- through the literal writer as strings and become expressions after.
local MARK = "\1"
local function mark(what) return MARK .. what .. MARK end
local function mark_lit(what) return literal.quote(mark(what)) end   -- how it reads in a literal
local function mark_raw(what) return (literal.quote(mark(what)):sub(2, -2)) end

-- The stream name of a request ("name?query" -> "name"), or nil.
local function stream_name(msg)
  return (app.split_name(msg and msg.args and msg.args[2]))
end

-- `s` with whole-word occurrences of `name` replaced by the name mark.
local function mark_name(s, name)
  if not name or name == "" or not s:find(name, 1, true) then return s end
  local pat = "%f[%w_]" .. name:gsub("%p", "%%%0") .. "%f[^%w_]"
  return (s:gsub(pat, mark("N")))
end

-- A copy of a decoded AMF value with the per-connection values marked:
-- ctx = { name = recorded stream name, encoding = recorded objectEncoding
-- or nil, sid = recorded stream id to mark (top-level numbers), top }.
local function marked(v, ctx, depth, key)
  local tv = type(v)
  if tv == "string" then return mark_name(v, ctx.name) end
  if tv == "number" then
    if key == "objectEncoding" and ctx.encoding then return mark("E") end
    if key == "clientid" then return mark("C") end
    if depth == 0 and ctx.sid and v == ctx.sid then return mark("S") end
    return v
  end
  if tv ~= "table" or depth > 32 then return v end
  local out = {}
  for k, x in pairs(v) do
    local mk = type(k) == "string" and k or nil
    local mv = marked(x, ctx, depth + 1, mk)
    if mk == "clientid" and type(x) == "string" then mv = mark("C") end
    out[k] = mv
  end
  return setmetatable(out, getmetatable(v))
end

-- Replace the marks in a literal by the expressions of the generated code.
local function unmark(text)
  text = text:gsub(mark_lit("E"), "encoding")
  text = text:gsub(mark_lit("C"), "clientid(conn)")
  text = text:gsub(mark_lit("S"), "sid")
  text = text:gsub(mark_raw("N"), '" .. name .. "')
  text = text:gsub('"" %.%. ', ""):gsub(' %.%. ""', "")
  return text
end

---------------------------------------------------------------------------
-- One recorded message as a line of Lua
---------------------------------------------------------------------------

-- The header table of a message: its csid, and its stream (the live stream
-- id when it is the recorded one of the request).
local function hdr_lit(msg, ctx)
  local f = { fmt("csid = %d", msg.csid or 3) }
  local s = msg.stream or 0
  if ctx.sid and s == ctx.sid and s ~= 0 then
    f[#f + 1] = "stream = sid"
  elseif s ~= 0 then
    f[#f + 1] = fmt("stream = %d", s)
  end
  return "{ " .. concat(f, ", ") .. " }"
end

-- Lines (without indent) sending msg, or nil and why it is left out.
local function message_lines(msg, ctx)
  local tn = msg.type_name
  if msg.decode_error then
    return { fmt("conn:send({ type = %d, csid = %d%s }, %s)", msg.type, msg.csid or 3,
      (msg.stream or 0) ~= 0 and fmt(", stream = %d", msg.stream) or "", literal.quote(msg.payload)) }
  end
  if tn == "set_chunk_size" then
    return { fmt("conn:set_chunk_size(%d)", msg.chunk_size) }
  elseif tn == "window_ack_size" then
    return { fmt("conn:set_window_ack_size(%d)", msg.window) }
  elseif tn == "set_peer_bandwidth" then
    return { fmt("conn:set_peer_bandwidth(%d, %s)", msg.window, msg.limit and tostring(msg.limit) or "false") }
  elseif tn == "ack" then
    return nil, "an acknowledgement (the engine sends its own)"
  elseif tn == "abort" then
    return nil, "an Abort"
  elseif tn == "user_control" then
    local ev = msg.event_name
    if ev == "ping_response" then return nil, "a ping response (the engine answers pings)" end
    if ev and literal.standard_body(msg) == msg.payload then
      local args = { literal.quote(ev) }
      if msg.stream_id then
        args[#args + 1] = (ctx.sid and msg.stream_id == ctx.sid and ctx.sid ~= 0) and "sid"
          or tostring(msg.stream_id)
      end
      if msg.ping_time then args[#args + 1] = tostring(msg.ping_time) end
      if msg.buffer_length then args[#args + 1] = tostring(msg.buffer_length) end
      return { "conn:user_control(" .. concat(args, ", ") .. ")" }
    end
    -- an event of another length, or unknown: its bytes as recorded
    return { fmt("conn:send({ type = 4, csid = %d }, %s)  -- user control event %s, %d bytes",
      msg.csid or 2, literal.quote(msg.payload), tostring(msg.event), msg.length or #msg.payload) }
  elseif COMMAND[tn] or DATA[tn] then
    local vals = msg.values
    local n = vals.n or #vals
    local parts = {}
    local first = 1
    if COMMAND[tn] then
      parts[1] = literal.quote(tostring(vals[1]))
      if ctx.txn ~= nil and vals[2] == ctx.txn and (vals[1] == "_result" or vals[1] == "_error") then
        parts[2] = "msg.txn"
      else
        local s = literal.lit(vals[2])
        parts[2] = s or "0"
      end
      first = 3
    end
    local vctx = { name = ctx.name, encoding = ctx.encoding, sid = ctx.mark_sid }
    for i = first, n do
      local mv = marked(vals[i], vctx, 0, nil)
      local s, why = literal.lit(mv)
      if not s then
        return { fmt("conn:send({ type = %d, csid = %d%s }, %s)  -- values without a literal: %s",
          msg.type, msg.csid or 3, (msg.stream or 0) ~= 0 and fmt(", stream = %d", msg.stream) or "",
          literal.quote(msg.payload), why) }
      end
      parts[#parts + 1] = unmark(s)
    end
    local fn = ({ command = "command", command3 = "command3", data = "data", data3 = "data3" })[tn]
    return { fmt("conn:%s(%s, %s)", fn, hdr_lit(msg, ctx), concat(parts, ", ")) }
  end
  return { fmt("conn:send({ type = %d, csid = %d%s }, %s)  -- %s as recorded", msg.type, msg.csid or 3,
    (msg.stream or 0) ~= 0 and fmt(", stream = %d", msg.stream) or "", literal.quote(msg.payload),
    tostring(tn)) }
end

-- A short description of a recorded message, for comments.
local function describe(msg)
  local tn = msg.type_name or tostring(msg.type)
  if COMMAND[tn] or DATA[tn] then
    local info = msg.args and msg.args[2]
    local code = type(info) == "table" and type(info.code) == "string" and (" " .. info.code) or ""
    return fmt("%s %s%s", tn, tostring(msg.name), code)
  end
  if tn == "user_control" then return "user_control " .. tostring(msg.event_name or msg.event) end
  return tn
end

---------------------------------------------------------------------------
-- Handlers: which recorded answers go where
---------------------------------------------------------------------------

local function is_media(msg) return bind.is_media(msg) end

-- A data message that is the stream's metadata (the cache sends live's own).
local function is_metadata(msg)
  return DATA[msg.type_name] and app.is_metadata(msg) ~= nil or false
end

-- The roles of the recorded streams (publish or play), in recorded order.
local function stream_roles(handlers)
  local role, at = {}, {}
  for i, h in ipairs(handlers) do
    local msg = h.msg
    if COMMAND[h.type_name] and msg then
      if msg.name == "publish" then role[h.stream] = "publish"
      elseif msg.name == "play" then role[h.stream] = "play" end
      if msg.name == "deleteStream" or msg.name == "closeStream" then
        local s = msg.name == "closeStream" and h.stream or math.tointeger(msg.args and msg.args[2])
        at[i] = { sid = s, role = s and role[s] }
      end
    end
  end
  return at
end

-- The recorded stream id a createStream got (from its _result), or nil.
local function created_sid(h)
  for _, a in ipairs(h.actions) do
    local m = a.e.msg
    if m.name == "_result" and m.txn == h.txn then
      local v = m.values and m.values[4]
      return math.tointeger(v)
    end
  end
end

-- Emit the actions `acts` as indented lines of `out`; ctx as message_lines.
local function emit(out, acts, ctx, indent, info)
  for _, a in ipairs(acts) do
    local msg = a.e.msg
    local lines, why = message_lines(msg, ctx)
    local when = fmt("[+%.3f s]", a.at or 0)
    if lines then
      out[#out + 1] = fmt("%s-- %s %s", indent, when, describe(msg))
      for _, l in ipairs(lines) do out[#out + 1] = indent .. l end
      info.messages = info.messages + 1
    else
      out[#out + 1] = fmt("%s-- %s %s: left out, %s", indent, when, describe(msg), why)
    end
  end
end

-- Split a play's actions: before the stream's first media or metadata (the
-- reply), where that media goes (the cache), and after its last media
-- (what the server said when the stream ended).
local function split_play(acts)
  local first, last
  for i, a in ipairs(acts) do
    local m = a.e.msg
    if is_media(m) or is_metadata(m) then
      first = first or i
      last = i
    end
  end
  if not first then return acts, nil, {}, {} end
  local pre, during, post = {}, {}, {}
  for i, a in ipairs(acts) do
    local m = a.e.msg
    if i < first then pre[#pre + 1] = a
    elseif i <= last then
      if not (is_media(m) or DATA[m.type_name]) then during[#during + 1] = a end
    else post[#post + 1] = a end
  end
  return pre, first, during, post
end

--- profile.generate(conn, list, opts) -> text, info.
--- conn: a connection of rtmp.capture; list: capture.messages(conn).
--- opts: capture (the path, for the header), also (a list of { conn =,
--- list = } of more connections of the same server: a request the first
--- did not make is taken from them, e.g. play from a player's connection
--- when conn published).
--- info: { replaced = { names in order }, messages = N, connections = N }.
function _M.generate(conn, list, opts)
  if type(conn) ~= "table" or type(list) ~= "table" then
    error("profile.generate: conn and its message list expected", 2)
  end
  opts = opts or {}
  local info = { replaced = {}, messages = 0, connections = 0, skipped = {} }
  local sources = { { conn = conn, list = list } }
  for _, o in ipairs(opts.also or {}) do sources[#sources + 1] = o end

  -- the first recorded handler of each kind, over all connections
  local chosen, order = {}, {}
  local published = {}       -- stream name -> when (capture time) it was first published
  local openings
  local recorded_client_encoding = {}
  for _, src in ipairs(sources) do
    local handlers = bind.server(src.list, src.conn)
    info.connections = info.connections + 1
    local roles = stream_roles(handlers)
    if not openings and #(handlers.opening or {}) > 0 then openings = handlers.opening end
    for i, h in ipairs(handlers) do
      if h.name == "publish" and stream_name(h.msg) then
        local t, n = (src.conn.start or 0) + (h.t or 0), stream_name(h.msg)
        if not published[n] or t < published[n] then published[n] = t end
      end
      if COMMAND[h.type_name] and type(h.name) == "string" and h.msg and not h.msg.decode_error then
        local key = h.name
        local r = roles[i]
        if (h.name == "deleteStream" or h.name == "closeStream") then key = h.name .. ":" .. tostring(r and r.role) end
        if UNSUPPORTED[h.name] then
          info.skipped[#info.skipped + 1] = h.name
        elseif h.name:match("^_") and (h.name == "_result" or h.name == "_error") then
          -- a client answering the server's call: nothing to reply
        elseif not chosen[key] then
          local closes = handlers.close and handlers.close.handler == i
          chosen[key] = { h = h, role = r and r.role, closes = closes, conn = src.conn }
          order[#order + 1] = key
          if h.name == "connect" then
            local obj = h.msg.args and h.msg.args[1]
            recorded_client_encoding[h] = type(obj) == "table" and tonumber(obj.objectEncoding) or 0
          end
        end
      end
    end
  end

  local body = {}
  local function out(s) body[#body + 1] = s end
  local I = "    "
  local function section(h, title)
    out("")
    out(fmt("-- %s: the recorded %s (txn %s, stream %d) at %.3f s", title, describe(h.msg),
      type(h.txn) == "number" and fmt("%g", h.txn) or "none", h.stream or 0, h.t or 0))
  end

  -- what the server sent before any request: right after the handshake
  if openings then
    out("")
    out("-- What the recorded server sent right after the handshake, before any request.")
    out("local function opening(conn)")
    emit(body, openings, {}, I, info)
    out("end")
  end

  for _, key in ipairs(order) do
    local c = chosen[key]
    local h, name = c.h, c.h.name
    local rname = stream_name(h.msg)
    local close_line = c.closes and (I .. 'conn:close("the recorded server closed here")') or nil
    info.replaced[#info.replaced + 1] = key
    if name == "connect" then
      local enc_rec = nil
      for _, a in ipairs(h.actions) do
        local m = a.e.msg
        if m.name == "_result" and m.txn == h.txn then
          local i2 = m.args and m.args[2]
          if type(i2) == "table" and i2.objectEncoding ~= nil
              and tonumber(i2.objectEncoding) == recorded_client_encoding[h] then
            enc_rec = true
          end
        end
      end
      section(h, "connect")
      out("-- The controls went with the reply, in the recorded order.")
      out("replies.controls = function() end")
      out("replies.result = function(conn, msg, app, encoding)")
      emit(body, h.actions, { txn = h.txn, encoding = enc_rec, name = nil }, I, info)
      if close_line then out(close_line) end
      out("end")
    elseif name == "createStream" then
      local rsid = created_sid(h)
      section(h, "createStream")
      out("replies.createStream = function(conn, msg, sid)")
      emit(body, h.actions, { txn = h.txn, sid = rsid, mark_sid = rsid }, I, info)
      if close_line then out(close_line) end
      out("end")
    elseif name == "publish" then
      section(h, "publish")
      out("replies.publish = function(conn, msg, sid, name)")
      local acts = {}
      for _, a in ipairs(h.actions) do
        if not is_media(a.e.msg) then acts[#acts + 1] = a end
      end
      emit(body, acts, { txn = h.txn, sid = h.stream, name = rname }, I, info)
      if close_line then out(close_line) end
      out("end")
    elseif name == "play" then
      local pre, cache_at, during, post = split_play(h.actions)
      local ctx = { txn = h.txn, sid = h.stream, name = rname }
      -- a player that waited for its publisher: what came when it arrived
      local t_play = (c.conn.start or 0) + (h.t or 0)
      local t_pub = rname and published[rname]
      local notify
      if t_pub and t_pub > t_play then
        local before = {}
        notify = {}
        for _, a in ipairs(pre) do
          if t_play + (a.at or 0) < t_pub then before[#before + 1] = a else notify[#notify + 1] = a end
        end
        pre = before
      end
      section(h, "play")
      out("replies.play = function(conn, msg, sid, name, send_cache)")
      emit(body, pre, ctx, I, info)
      if cache_at then
        out(I .. "send_cache()  -- here the recording sent the stream: metadata, headers, media")
      end
      if #during > 0 then
        out(I .. "-- sent while the media flowed (not repeated):")
        for _, a in ipairs(during) do out(fmt("%s--   [+%.3f s] %s", I, a.at or 0, describe(a.e.msg))) end
      end
      out("end")
      if notify then
        out("")
        out(fmt("-- The player waited for its publisher (%.3f s); when it came, the recorded server sent:",
          t_pub - t_play))
        out("replies.publish_notify = function(conn, sid, name)")
        if #notify == 0 then out(I .. "-- nothing") end
        emit(body, notify, ctx, I, info)
        out("end")
        info.replaced[#info.replaced + 1] = "publish_notify"
      elseif cache_at then
        -- the recorded player found its stream there: it never got a notice
        out("")
        out("-- The recorded player's stream was there when it played; a player that waits")
        out("-- for its publisher here gets no notice when it comes, as the recorded one got none.")
        out("replies.publish_notify = function(conn, sid, name) end")
        info.replaced[#info.replaced + 1] = "publish_notify"
      end
      if #post > 0 then
        out("")
        out("-- When the stream ended, the recorded server sent its player:")
        out("replies.unpublish_notify = function(conn, sid, name)")
        emit(body, post, ctx, I, info)
        if close_line then out(close_line) end
        out("end")
        info.replaced[#info.replaced + 1] = "unpublish_notify"
      end
    elseif name == "deleteStream" or name == "closeStream" then
      local rsid = name == "closeStream" and h.stream or math.tointeger(h.msg.args and h.msg.args[2])
      section(h, name)
      out(fmt("-- (on a stream that did %s)", c.role and ("a " .. c.role) or "neither publish nor play"))
      out(fmt("local %s_%s = function(conn, msg, sid)", name, c.role or "none"))
      emit(body, h.actions, { txn = h.txn, sid = rsid, name = nil }, I, info)
      if close_line then out(close_line) end
      out("end")
    else
      section(h, name)
      if #h.actions == 0 then out("-- The recorded server did not answer it.") end
      out(fmt("commands[%s] = function(conn, msg)", literal.quote(name)))
      if rname then out(I .. "local name = stream_name(msg)") end
      emit(body, h.actions, { txn = h.txn, sid = h.stream, name = rname }, I, info)
      if close_line then out(close_line) end
      out("end")
    end
  end

  -- deleteStream / closeStream by the role of the stream
  for _, name in ipairs({ "deleteStream", "closeStream" }) do
    local roles = {}
    for _, key in ipairs(order) do
      local r = key:match("^" .. name .. ":(.*)$")
      if r then roles[#roles + 1] = r end
    end
    if #roles > 0 then
      out("")
      out(fmt("replies.%s = function(conn, msg, sid, role)", name))
      for _, r in ipairs(roles) do
        if r == "nil" then
          out(fmt("%sif role == nil then return %s_none(conn, msg, sid) end", I, name))
        else
          out(fmt("%sif role == %s then return %s_%s(conn, msg, sid) end", I, literal.quote(r), name, r))
        end
      end
      out("end")
    end
  end

  -- the header
  local h = {}
  local function H(s) h[#h + 1] = s end
  H(fmt("-- A profile of the RTMP server recorded in %s,", opts.capture or "a capture"))
  local conns = {}
  for _, src in ipairs(sources) do
    conns[#conns + 1] = fmt("%s (%s -> %s)", tostring(src.conn.id), tostring(src.conn.client),
      tostring(src.conn.server))
  end
  H(fmt("-- connection%s %s, written by lua/rtmp/profile.lua (capture2lua --profile).",
    #conns > 1 and "s" or "", concat(conns, ", ")))
  H("--")
  H("-- scripts/live.lua serves the media (any number of publishers and players);")
  H("-- what the recorded server said replaces rtmp.app's replies below: the same")
  H("-- values, in the same order, with the same unsolicited messages. The live")
  H("-- connection's transaction ids, stream ids, stream names, objectEncoding and a")
  H("-- clientid of the recorded style take the recorded ones' places. `[+T s]` is")
  H("-- when the recording sent a message after the request. Requests the recording")
  H("-- did not show keep rtmp.app's answers (docs/APP.md).")
  H("--")
  H("-- Run it:  luartmp --listen 1935 THIS.lua")
  H("")
  H('local rtmp = require "rtmp"')
  H('local flow = require "rtmp.flow"')
  H('local live = require "live"')
  H('local app = require "rtmp.app"')
  H("")
  H("local null, undefined = rtmp.null, rtmp.undefined")
  H("local obj, ecma = rtmp.amf0.object, rtmp.amf0.ecma  -- { {key, value}, ... }: keys in order")
  H("local array = flow.array")
  H("local replies, commands = live.replies, live.commands")
  H("")
  H("-- The stream name of a request (\"name?query\" -> \"name\").")
  H("local function stream_name(msg)")
  H("    return app.split_name(msg.args and msg.args[2]) or \"\"")
  H("end")
  -- the clientid style
  local style = _M.clientid_style(sources)
  H("")
  H("-- A clientid per connection, in the recorded style (" .. style.note .. ").")
  H("local next_id = " .. fmt("%d", style.start))
  H("local function clientid(conn)")
  H("    if not conn.profile_clientid then")
  H("        next_id = next_id + 1")
  if style.kind == "number" then
    H("        conn.profile_clientid = next_id * 1.0")
  else
    H(fmt("        conn.profile_clientid = string.format(%s, next_id)", literal.quote(style.format)))
  end
  H("    end")
  H("    return conn.profile_clientid")
  H("end")
  local tail = { "" }
  if openings then
    tail[#tail + 1] = "live.start{ on_handshake = opening }"
  else
    tail[#tail + 1] = "live.start()"
  end
  local text = concat(h, "\n") .. "\n" .. concat(body, "\n") .. "\n" .. concat(tail, "\n") .. "\n"
  local ok, err = load(text, "=profile", "t", setmetatable({}, { __index = _G }))
  if not ok then error("profile.generate: the generated profile does not load: " .. tostring(err), 0) end
  return text, info
end

--- profile.clientid_style(sources) -> { kind = "number"|"string", start, format, note }:
--- the clientid values the recorded server gave (a number, or a string of
--- digits, hex or letters of some length) as a pattern to make new ones.
function _M.clientid_style(sources)
  for _, src in ipairs(sources) do
    for _, e in ipairs(src.list) do
      local m = e.msg
      if e.dir == "s2c" and COMMAND[m.type_name] and m.args then
        for _, a in ipairs({ m.args[1], m.args[2] }) do
          local id = type(a) == "table" and rawget(a, "clientid")
          if type(id) == "number" then
            return { kind = "number", start = math.floor(id), note = fmt("recorded: %s", tostring(id)) }
          elseif type(id) == "string" then
            local n = #id
            if id:match("^%d+$") then
              return { kind = "string", start = tonumber(id) or 0, format = "%0" .. n .. "d",
                       note = fmt("recorded: %q, %d digits", id, n) }
            end
            return { kind = "string", start = 0, format = "%0" .. n .. "x",
                     note = fmt("recorded: %q, %d characters; here hex", id, n) }
          end
        end
      end
    end
  end
  return { kind = "number", start = 0, note = "none recorded" }
end

return _M
