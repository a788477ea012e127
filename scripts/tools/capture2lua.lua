-- capture2lua.lua: turn one RTMP connection of a capture into a Lua script
-- that plays one side of it again (see docs/CAPTURE2LUA.md; the runtime is
-- lua/rtmp/flow.lua, docs/FLOW.md).
--
--   luartmp scripts/tools/capture2lua.lua CAPTURE --list
--   luartmp scripts/tools/capture2lua.lua CAPTURE [--connection N] [--side server|client]
--           [--strict] [--media FILE] [-o FILE]
--   luartmp scripts/tools/capture2lua.lua --raw CLIENT_FILE SERVER_FILE [...]
--   luartmp scripts/tools/capture2lua.lua CAPTURE --profile [-o FILE]
--
-- Default ("handler" mode, the format of issue 16): a server script is a
-- set of handlers keyed by what the client asks (`on { "command",
-- "connect", ... }`), each holding the recorded server's answers with
-- their capture times (`at`); a client script is its sends, the replies it
-- waits for (`await`), the media it receives (`receive`) and its outcome.
-- Which recorded message answers which request is decided by
-- lua/rtmp/bind.lua.  `--strict` writes the literal transcript (`expect`
-- and `send` steps in recorded order) instead.
--
-- Both modes: objects and ECMA arrays as obj{ {"k", v}, ... } /
-- ecma{ {"k", v}, ... } in wire order; user control events that are not
-- the standard layout go out as their bytes; aggregates are split into
-- the companion FLV; every values list is checked (loaded, encoded and
-- decoded again it gives the same values, key order included) or kept as
-- its bytes.
--
-- Format notes beyond docs/FLOW.md (kept small): `outcome.sent` gives the
-- audio/video counts a generated publisher sends; `outcome.codes` is the
-- set of status codes that count as the recorded outcome (every code the
-- recorded server sent with an awaited reply, e.g. Play.Reset and
-- Play.Start).
--
-- Used as a module (require "tools.capture2lua") it returns the
-- generator: M.generate(conn, list, opts) -> text, info.

local rtmp = require "rtmp"
local bind = require "rtmp.bind"

local fmt = string.format
local concat = table.concat
local pack = string.pack

local M = {}

-- The command line (rtmp.argv); the --raw option is the capture's.
local function command(capture)
  return require("rtmp.argv").new{
    prog = "capture2lua",
    usage = [[
usage: luartmp capture2lua.lua CAPTURE [--list] [--connection N] [--side server|client]
                                [--strict] [--profile] [--media FILE] [-o FILE]
       luartmp capture2lua.lua --raw CLIENT_FILE SERVER_FILE [options]
]],
    options = {
      { "list", help = "one line per TCP connection: id, endpoints, bytes, RTMP or not,\n" ..
                       "encapsulation, commands" },
      { "connection", "integer", arg = "N", help = "the connection to convert (default: the first RTMP connection)" },
      { "side", { "server", "client" }, help = "the side the script plays: server (default) or client" },
      { "strict", help = "the literal transcript (expect/send in recorded order), byte-exact replay\n" ..
                         "of the recorded peer, instead of handlers" },
      { "profile", help = "a profile of the recorded server for the live server (scripts/live.lua)" },
      capture.RAW_OPTION,
      { "media", "string", arg = "FILE", help = "the companion FLV for audio/video (default: next to -o FILE, or\n" ..
                                                "CAPTURE-cN-SIDE.flv in the current directory)" },
      { "o", "string", arg = "FILE", help = "write the script to FILE (default: standard output)" },
    },
    after = [[
exit status: 0 written; 1 the input cannot be read or decoded (nothing written);
2 usage error
]],
  }
end

-- AMF values and control bodies as Lua literals: rtmp.literal (shared with
-- the profile generator, lua/rtmp/profile.lua).
local literal = require "rtmp.literal"
local quote, number, lit, object_keys = literal.quote, literal.number, literal.lit, literal.object_keys
local values_lit, standard_body = literal.values, literal.standard_body
M.quote, M.lit, M.object_keys, M.same, M.values_lit = quote, lit, object_keys, literal.same, values_lit

---------------------------------------------------------------------------
-- Lines of the script
---------------------------------------------------------------------------

local AMF_TYPES = { command = true, data = true, command3 = true, data3 = true }
local MEDIA = { audio = true, video = true }

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

-- A long object or ECMA array value, one pair a line (nil: keep it on one).
local function break_object(v, indent)
  if type(v) ~= "table" then return nil end
  local mt = getmetatable(v) or {}
  local kind = mt.__amf or rtmp.amf0.type(v)
  if (kind ~= "object" and kind ~= "ecma") or next(mt.__amf3 or {}) then return nil end
  local out = { indent .. (kind == "ecma" and "ecma{" or "obj{") }
  for _, k in ipairs(object_keys(v)) do
    local s = type(k) == "string" and lit(v[k], 1, false)
    if not s then return nil end
    out[#out + 1] = indent .. "  {" .. quote(k) .. ", " .. s .. "},"
  end
  out[#out + 1] = indent .. "},"
  return out
end

-- A `send { ... }` for one message (lines). opts: chunk (N), at (text),
-- named_raw (a user control event as its bytes: `send { "user_control",
-- event = N, payload = ... }`; else `send { 4, payload = ... }`).
local function send_lines(msg, indent, opts)
  opts = opts or {}
  local tn = msg.type_name
  local extra = (opts.chunk and fmt(", chunk = %d", opts.chunk) or "")
    .. (opts.at and (", at = " .. opts.at) or "")
  local function raw(why)
    if tn == "user_control" and opts.named_raw then
      return { fmt('%ssend { "user_control", event = %d, %s%s, payload = %s },  -- %d bytes (%s)',
        indent, msg.event or 0, hdr_fields(msg), extra, quote(msg.payload), #msg.payload, why) }
    end
    return { fmt('%ssend { %d, %s%s, payload = %s },  -- %s (%s)', indent, msg.type,
      hdr_fields(msg), extra, quote(msg.payload), tn or "?", why) }
  end
  if msg.decode_error then return raw("did not decode: " .. tostring(msg.decode_error)) end
  local line
  if tn == "set_chunk_size" or tn == "window_ack_size" or tn == "set_peer_bandwidth"
      or tn == "ack" or tn == "abort" or tn == "user_control" then
    local want = standard_body(msg)
    if want ~= msg.payload then
      return raw(tn == "user_control" and "not the standard layout of its event" or "not the standard layout")
    end
  end
  if tn == "set_chunk_size" then
    line = fmt('send { "set_chunk_size", chunk_size = %d%s }', msg.chunk_size, extra)
  elseif tn == "window_ack_size" then
    line = fmt('send { "window_ack_size", window = %d%s }', msg.window, extra)
  elseif tn == "set_peer_bandwidth" then
    line = fmt('send { "set_peer_bandwidth", window = %d%s%s }', msg.window,
      msg.limit and fmt(", limit = %d", msg.limit) or "", extra)
  elseif tn == "ack" then
    line = fmt('send { "ack", sequence = %d%s }', msg.sequence, extra)
  elseif tn == "abort" then
    line = fmt('send { "abort", abort_csid = %d%s }', msg.abort_csid, extra)
  elseif tn == "user_control" then
    local f = { fmt('send { "user_control", event = %s', quote(msg.event_name)) }
    if msg.stream_id then f[#f + 1] = fmt("stream_id = %d", msg.stream_id) end
    if msg.ping_time then f[#f + 1] = fmt("ping_time = %d", msg.ping_time) end
    if msg.buffer_length then f[#f + 1] = fmt("buffer_length = %d", msg.buffer_length) end
    line = concat(f, ", ") .. extra .. " }"
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

-- The companion FLV, opened on first use.
local function media_writer(opts, info)
  if info.writer then return info.writer end
  local w, err = rtmp.flv.create(opts.media_path)
  if not w then error(fmt("capture2lua: %s", tostring(err)), 0) end
  info.writer, info.tags = w, 0
  return w
end

local FLV_TYPES = { [8] = "audio", [9] = "video", [18] = "data" }

-- Write a media message to the companion FLV, aggregates split into their
-- sub-messages.  Returns the tags written: { { type_name, csid, stream, timestamp }, ... },
-- or nil and why (an aggregate that does not split).
local function write_media(opts, info, msg)
  local w = media_writer(opts, info)
  local subs
  if msg.type_name == "aggregate" then
    local ok, s = pcall(msg.split, msg)
    if not ok or type(s) ~= "table" then return nil, "the aggregate does not split: " .. tostring(s) end
    subs = s
    info.aggregates = (info.aggregates or 0) + 1
  else
    subs = { msg }
  end
  local tags = {}
  for _, m in ipairs(subs) do
    local tn = FLV_TYPES[m.type]
    if tn then
      local ok, err = w:write({ type = m.type, timestamp = m.timestamp, payload = m.payload })
      if not ok then error(fmt("capture2lua: writing %s: %s", opts.media_path, tostring(err)), 0) end
      info.tags = info.tags + 1
      info.media_tags = info.media_tags + 1
      tags[#tags + 1] = { type_name = tn, csid = msg.csid, stream = msg.stream or 0,
                          timestamp = m.timestamp, n = info.tags }
    end
  end
  return tags
end

-- Where a recorded sender chunked a message at a size it had not announced
-- (the runtime then chunks it at that size): entry -> size.
local function odd_chunks(list, dir)
  local need, chunk = {}, 128
  for _, e in ipairs(list) do
    if e.dir == dir then
      local msg = e.msg
      if e.chunk_size and e.chunk_size ~= chunk and (msg.length or 0) > math.min(chunk, e.chunk_size)
          and not bind.is_media(msg) then
        need[e] = e.chunk_size
      end
      if msg.type_name == "set_chunk_size" and msg.chunk_size then chunk = msg.chunk_size end
    end
  end
  return need
end

---------------------------------------------------------------------------
-- --strict: the literal transcript
---------------------------------------------------------------------------

-- Peer messages that never make a step: the strict runtime lets them pass.
local tolerated = require("rtmp.flow").tolerated

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
  local code = AMF_TYPES[tn] and bind.info_code(msg)
  if (tn == "command" or tn == "command3") and code then f[#f + 1] = "code = " .. quote(code) end
  return "expect { " .. concat(f, ", ") .. " },"
end

-- A `media { ... }` line; open: the entry goes on (its `times` follow).
local function media_line(I, run, extra, open)
  local cs = {}
  for _, k in ipairs({ "audio", "video", "data" }) do
    if run.csid[k] then cs[#cs + 1] = fmt("%s = %d", k, run.csid[k]) end
  end
  return fmt("%smedia { from = %d, to = %d, stream = %d, csid = { %s }%s%s  -- %d messages, ts %d..%d ms",
    I, run.from, run.to, run.stream, concat(cs, ", "), extra or "", open and "," or " },",
    run.to - run.from + 1, run.ts0, run.ts1)
end

local function generate_strict(conn, list, opts, info)
  local side = opts.side
  local ours = side == "server" and "s2c" or "c2s"
  local peer_name = side == "server" and "client" or "server"
  local body = {}
  local I = "  "
  local function out(s) body[#body + 1] = s end
  local chunks = odd_chunks(list, ours)

  local run                       -- the media range being built
  local peer_media = 0            -- peer audio/video since the last step or send
  local function flush_run()
    if not run then return end
    out(media_line(I, run))
    run = nil
  end
  local function note_peer_media()
    if peer_media > 0 then
      out(fmt("%s-- (the %s sent %d audio/video messages here)", I, peer_name, peer_media))
      info.peer_media = info.peer_media + peer_media
      peer_media = 0
    end
  end
  local function expect_media()
    if peer_media > 0 then
      info.steps = info.steps + 1
      out("")
      out(fmt("%s-- the %s sent %d audio/video messages", I, peer_name, peer_media))
      out(fmt('%sexpect { "media", count = %d },', I, peer_media))
      info.peer_media = info.peer_media + peer_media
      peer_media = 0
    end
  end

  for _, e in ipairs(list) do
    local msg = e.msg
    local tn = msg.type_name
    if e.dir ~= ours then
      if MEDIA[tn] or tn == "aggregate" then
        flush_run()
        peer_media = peer_media + 1
      elseif tolerated(msg) then
        flush_run()
      else
        flush_run()
        note_peer_media()
        info.steps = info.steps + 1
        out("")
        out(fmt("%s-- [%.3f s] %s: %s", I, e.t or 0, peer_name, trace_form(msg)))
        out(I .. expect_line(msg))
      end
    else
      local note = auto_note(msg)
      if note then
        flush_run()
        for _, l in ipairs(send_lines(msg, I)) do out(l) end
        info.auto = info.auto + 1
      elseif MEDIA[tn] or tn == "aggregate" then
        expect_media()
        local tags, why = write_media(opts, info, msg)
        if not tags then
          flush_run()
          for _, l in ipairs(send_lines(msg, I, { chunk = chunks[e] })) do out(l .. "  -- " .. why) end
          info.sends = info.sends + 1
        end
        for _, tag in ipairs(tags or {}) do
          local k = tag.type_name
          if run and (run.stream ~= tag.stream or (run.csid[k] and run.csid[k] ~= tag.csid)) then
            flush_run()
          end
          if not run then
            run = { from = tag.n, to = tag.n, stream = tag.stream, csid = {},
                    ts0 = tag.timestamp, ts1 = tag.timestamp }
          end
          run.to = tag.n
          run.csid[k] = tag.csid
          run.ts1 = tag.timestamp
        end
      else
        flush_run()
        expect_media()
        for _, l in ipairs(send_lines(msg, I, { chunk = chunks[e] })) do out(l) end
        info.sends = info.sends + 1
      end
    end
  end
  flush_run()
  note_peer_media()

  local h = {}
  local function H(s) h[#h + 1] = s end
  H(fmt("-- Each `expect` is a message the %s sent; the `send` lines after it are what the", peer_name))
  H(fmt("-- %s sent next, in order, until the %s's next message (--strict: the literal", side, peer_name))
  H("-- transcript). Edit a value, delete or add a line. The txn of a _result/_error is the")
  H(fmt("-- recorded txn of the command it answers: the live %s's txn is put in its place.", peer_name))
  H("-- Control messages go on csid 2 with timestamp 0. `-- send` lines are what the engine")
  H("-- sends by itself (acknowledgements, ping answers).")
  if info.media_tags > 0 then
    H(fmt("-- `media` sends tags FROM..TO of %s (numbered from 1) with their timestamps,", opts.media_ref))
    H("-- paced in real time (--fast: at once).")
  end
  return body, h, "local expect, send, media = flow.expect, flow.send, flow.media"
end

---------------------------------------------------------------------------
-- Handler mode: timing helpers
---------------------------------------------------------------------------

local function secs(x) return fmt("%.3f", x) end

-- Writes the actions of one timeline: sends with `at` only where the time
-- changes (what went in one burst goes together), media runs with `at` and
-- per-tag `times`.  opts: media/info for the FLV, chunks, indent.
local function timeline(out, items, ctx)
  local I = ctx.indent
  local prev = "0.000"
  local after_media = false
  local run
  local function flush_run()
    if not run then return end
    local at = secs(run.at)
    local times = {}
    for k, t in ipairs(run.times) do times[k] = fmt("%d", math.floor((t - run.at) * 1000 + 0.5)) end
    local extra = ""
    if at ~= prev or after_media then extra = ", at = " .. at end
    out(media_line(I, run, extra, true))
    -- times, wrapped
    local cur = I .. "  times = { "
    for k, s in ipairs(times) do
      local piece = s .. (k < #times and ", " or "")
      if #cur + #piece > WIDTH then out((cur:gsub("%s+$", ""))); cur = I .. "    " end
      cur = cur .. piece
    end
    out(cur .. " } },")
    prev = secs(run.last)
    after_media = true
    ctx.info.media_runs = (ctx.info.media_runs or 0) + 1
    run = nil
  end
  for _, a in ipairs(items) do
    if a.close then
      flush_run()
      out(fmt("%sclose { at = %s },  -- the recorded %s closed the connection here", I,
        secs(a.at), ctx.side))
    elseif a.kind == "await" or a.kind == "receive" then
      flush_run()
      out(I .. a.line)
      prev = "0.000"
      after_media = false
    else
      local e = a.e
      local msg = e.msg
      if bind.is_media(msg) then
        local tags, why = write_media(ctx.opts, ctx.info, msg)
        if not tags then
          flush_run()
          for _, l in ipairs(send_lines(msg, I, { at = secs(a.at), named_raw = true })) do
            out(l .. "  -- " .. why)
          end
        end
        for _, tag in ipairs(tags or {}) do
          local k = tag.type_name
          if run and (run.stream ~= tag.stream or (run.csid[k] and run.csid[k] ~= tag.csid)) then
            flush_run()
          end
          if not run then
            run = { from = tag.n, to = tag.n, stream = tag.stream, csid = {}, at = a.at,
                    times = {}, ts0 = tag.timestamp, ts1 = tag.timestamp }
          end
          run.to = tag.n
          run.csid[k] = tag.csid
          run.ts1 = tag.timestamp
          run.times[#run.times + 1] = a.at
          run.last = a.at
        end
      else
        flush_run()
        local at = secs(a.at)
        local give = (at ~= prev or after_media) and at or nil
        local lines = send_lines(msg, I, { chunk = ctx.chunks[e], at = give, named_raw = true })
        for _, l in ipairs(lines) do out(l) end
        if not auto_note(msg) then
          prev = at
          after_media = false
          ctx.info.sends = ctx.info.sends + 1
        else
          ctx.info.auto = ctx.info.auto + 1
        end
      end
    end
  end
  flush_run()
end

---------------------------------------------------------------------------
-- Handler mode: the server side
---------------------------------------------------------------------------

-- The `on { ... }` head of a handler.
local function on_head(h)
  local f = { quote(h.type_name or "unknown") }
  if h.name ~= nil then
    f[#f + 1] = type(h.name) == "string" and quote(h.name) or tostring(h.name)
  end
  if (h.type_name == "command" or h.type_name == "command3") and type(h.txn) == "number" then
    f[#f + 1] = "txn = " .. number(h.txn)
  end
  if (h.stream or 0) ~= 0 then f[#f + 1] = "stream = " .. h.stream end
  if h.optional then f[#f + 1] = "optional = true" end
  return "on { " .. concat(f, ", ")
end

-- Handlers worth writing: of a run of empty handlers with the same key
-- after its last non-empty one, only the first (the n-th live message runs
-- the n-th handler, past the last the last again: the rest change nothing).
local function kept_handlers(handlers)
  local last_full, seen_empty_after = {}, {}
  for i, h in ipairs(handlers) do
    if #h.actions > 0 or h.closes then last_full[h.key] = i end
  end
  local keep = {}
  for i, h in ipairs(handlers) do
    local lf = last_full[h.key] or 0
    if i <= lf then
      keep[#keep + 1] = h
    elseif not seen_empty_after[h.key] then
      seen_empty_after[h.key] = true
      keep[#keep + 1] = h
    end
  end
  return keep
end


-- The header's line on the companion FLV, for either side.
local function media_note(H, info, opts)
  if info.media_tags > 0 then
    H(fmt("-- `media` sends tags FROM..TO of %s (numbered from 1), tag k `times[k]` ms after", opts.media_ref))
    H("-- `at` (real time; --fast: at once).")
  end
end

local function generate_server(conn, list, opts, info)
  local handlers = bind.server(list, conn)
  local body = {}
  local function out(s) body[#body + 1] = s end
  local ctx = { indent = "    ", opts = opts, info = info, chunks = odd_chunks(list, "s2c"),
                side = "server" }
  if handlers.close then
    local h = handlers[handlers.close.handler or 1]
    if h then h.closes = handlers.close.at end
  end
  -- what the server sent before any request goes with the first one
  if #handlers.opening > 0 and handlers[1] then
    local first = handlers[1]
    for k = #handlers.opening, 1, -1 do
      table.insert(first.actions, 1, { e = handlers.opening[k].e, at = 0 })
    end
    first.opening = #handlers.opening
  end
  if #handlers == 0 and #handlers.opening > 0 then
    out("  -- the server sent messages but the client made no request: nothing to answer")
  end
  local keep = kept_handlers(handlers)
  info.handlers = #keep
  for _, h in ipairs(keep) do
    out("")
    out(fmt("  -- [%.3f s] client: %s", h.t or 0, trace_form(h.msg)))
    if h.opening then
      out(fmt("  -- (the first %d sends: what the server sent before this request)", h.opening))
    end
    local items = {}
    for _, a in ipairs(h.actions) do items[#items + 1] = a end
    if h.closes then items[#items + 1] = { close = true, at = h.closes } end
    if #items == 0 then
      out("  " .. on_head(h) .. " },")
    else
      out("  " .. on_head(h) .. ",")
      timeline(out, items, ctx)
      out("  },")
    end
  end
  local h = {}
  local function H(s) h[#h + 1] = s end
  H("-- One `on` per message the client sent, in recorded order: the server's answers to it,")
  H("-- `at` seconds after it arrived (what has no `at` went with the line before it). The")
  H("-- n-th live message of a kind runs the n-th `on` of that kind (then the last again);")
  H("-- `optional = true`: a message another client may not send, it never holds anything")
  H("-- back. A _result/_error carries the recorded txn of its request: the live txn is put")
  H("-- in its place. `-- send` lines are what the engine sends by itself.")
  media_note(H, info, opts)
  if handlers.closed_by == "played" then
    H("-- The recorded server closed the connection (`close`).")
  elseif handlers.closed_by == "peer" then
    H("-- The recorded client closed the connection: `idle` closes it once the client is silent.")
  end
  local fields = {}
  if handlers.closed_by == "peer" then fields[#fields + 1] = "  idle = 10," end
  return body, h, "local on, send, media, close = flow.on, flow.send, flow.media, flow.close", fields
end

---------------------------------------------------------------------------
-- Handler mode: the client side
---------------------------------------------------------------------------

local function generate_client(conn, list, opts, info)
  local steps = bind.client(list, conn)
  local body = {}
  local function out(s) body[#body + 1] = s end
  local ctx = { indent = "  ", opts = opts, info = info, chunks = odd_chunks(list, "c2s"),
                side = "client" }
  local items = {}
  local awaits = 0
  for _, s in ipairs(steps) do
    if s.kind == "send" then
      items[#items + 1] = { e = s.e, at = s.at }
    elseif s.kind == "await" then
      local f = { quote(s.name) }
      if s.txn ~= nil then f[#f + 1] = "txn = " .. number(s.txn) end
      if s.stream ~= nil then f[#f + 1] = "stream = " .. s.stream end
      if s.code then f[#f + 1] = "code = " .. quote(s.code) end
      local req = s.request.msg
      items[#items + 1] = { kind = "await", line = fmt("await { %s },  -- the reply to %s",
        concat(f, ", "), tostring(req.name)) }
      awaits = awaits + 1
    elseif s.kind == "receive" then
      items[#items + 1] = { kind = "receive", line = fmt("receive { audio = %d, video = %d },",
        s.audio, s.video) }
    elseif s.kind == "close" then
      items[#items + 1] = { close = true, at = s.at }
    end
  end
  info.steps = #steps
  info.awaits = awaits
  timeline(out, items, ctx)
  local oc = steps.outcome
  local codes = {}
  for _, c in ipairs(oc.codes) do codes[#codes + 1] = quote(c) end
  local fields = { "  timeout = 10," }
  local of = { fmt("codes = { %s }", concat(codes, ", ")) }
  if oc.received.audio + oc.received.video > 0 then
    of[#of + 1] = fmt("media = { audio = %d, video = %d }", oc.received.audio, oc.received.video)
  end
  if oc.sent.audio + oc.sent.video > 0 then
    of[#of + 1] = fmt("sent = { audio = %d, video = %d }", oc.sent.audio, oc.sent.video)
  end
  of[#of + 1] = "tolerance = 0.1"
  fields[#fields + 1] = "  outcome = { " .. concat(of, ",\n              ") .. " },"
  local h = {}
  local function H(s) h[#h + 1] = s end
  H("-- The recorded client's messages in order (`at`: seconds after the previous await or")
  H("-- receive completed; what has no `at` went with the line before it), waiting where it")
  H("-- must (`await`: the reply to connect, createStream, publish, play) and for the media")
  H("-- it received (`receive`). The exit status says whether `outcome` was reached: the")
  H("-- awaited replies' codes, the media counts within `tolerance`. `-- send` lines are what")
  H("-- the engine sends by itself.")
  media_note(H, info, opts)
  return body, h,
    "local send, await, receive, media, close = flow.send, flow.await, flow.receive, flow.media, flow.close",
    fields
end

---------------------------------------------------------------------------
-- The script
---------------------------------------------------------------------------

-- What the connection's audio and video are, for the header, per
-- sender: the codecs (FourCCs) per type in order of appearance, and the
-- Enhanced RTMP forms (the media model's fields: no legacy codec id,
-- ModEx nano offsets, multitrack modes, command frames).  ours: the
-- direction the script sends ("c2s" or "s2c").  Lines (none without media).
local function media_summary(list, ours)
  local by = {}
  for _, e in ipairs(list) do
    local m = e.msg
    local tn = m.type_name
    if MEDIA[tn] and (m.length or 0) > 0 then
      local d = by[e.dir]
      if not d then
        d = { n = 0, enhanced = 0, nano = 0, command = 0, codecs = { audio = {}, video = {} }, seen = {},
              modes = {}, mode_list = {} }
        by[e.dir] = d
      end
      d.n = d.n + 1
      if m.codec and not d.seen[tn .. "/" .. m.codec] then
        d.seen[tn .. "/" .. m.codec] = true
        d.codecs[tn][#d.codecs[tn] + 1] = m.codec
      end
      if m.codec_id == nil then
        d.enhanced = d.enhanced + 1
        if m.nano_offset then d.nano = d.nano + 1 end
        if m.packet == "command" then d.command = d.command + 1 end
        local mt = m.multitrack
        if mt then
          if not d.modes[mt] then d.mode_list[#d.mode_list + 1] = mt end
          d.modes[mt] = (d.modes[mt] or 0) + 1
        end
      end
    end
  end
  local out = {}
  for _, dir in ipairs({ "c2s", "s2c" }) do
    local d = by[dir]
    if d then
      local kinds = {}
      for _, tn in ipairs({ "video", "audio" }) do
        if #d.codecs[tn] > 0 then kinds[#kinds + 1] = tn .. " " .. concat(d.codecs[tn], " ") end
      end
      out[#out + 1] = fmt("-- The %s's media (%s): %d messages%s.", dir == "c2s" and "client" or "server",
        dir == ours and "sent from the companion FLV, byte for byte" or "the peer's", d.n,
        #kinds > 0 and (", " .. concat(kinds, "; ")) or "")
      if d.enhanced > 0 then
        local forms = {}
        if d.nano > 0 then forms[#forms + 1] = fmt("%d with a ModEx nanosecond offset", d.nano) end
        for _, mt in ipairs(d.mode_list) do forms[#forms + 1] = fmt("%d multitrack %s", d.modes[mt], mt) end
        if d.command > 0 then forms[#forms + 1] = fmt("%d command frames", d.command) end
        out[#out + 1] = fmt("--   Enhanced RTMP: %d of them%s.", d.enhanced,
          #forms > 0 and (" (" .. concat(forms, ", ") .. ")") or "")
      end
    end
  end
  return out
end
M.media_summary = media_summary

-- generate(conn, list, opts) -> text, info. opts: side ("server" or
-- "client"), strict (the transcript), capture (path shown), media_path
-- (where the FLV goes), media_ref (how the script names it), url (client).
function M.generate(conn, list, opts)
  local side = opts.side or "server"
  if side ~= "server" and side ~= "client" then error("side must be server or client", 2) end
  opts.side = side
  local info = { steps = 0, sends = 0, auto = 0, media_tags = 0, peer_media = 0, tags = 0,
                 handlers = 0 }
  local body, about, locals, fields
  if opts.strict then
    body, about, locals = generate_strict(conn, list, opts, info)
  elseif side == "server" then
    body, about, locals, fields = generate_server(conn, list, opts, info)
  else
    body, about, locals, fields = generate_client(conn, list, opts, info)
  end
  if list.error then
    body[#body + 1] = ""
    body[#body + 1] = "  -- decoding stopped here: " .. tostring(list.error):gsub("\n", " ")
    info.error = list.error
  end
  if info.writer then info.writer:close(); info.writer = nil end

  local hs = list.handshake or {}
  local function kind(d) return hs[d] and hs[d].kind or "?" end
  local played = side == "server" and conn.server or conn.client
  local h = {}
  local function H(s) h[#h + 1] = s end
  H(fmt("-- The %s side of RTMP connection %d in %s,", side, conn.id, opts.capture or "?"))
  H(fmt("-- written by scripts/tools/capture2lua.lua%s. Client %s, server %s, first packet %s UTC;",
    opts.strict and " --strict" or "", conn.client, conn.server,
    os.date("!%Y-%m-%d %H:%M:%S", math.floor(conn.start or 0))))
  if opts.strict then
    H(fmt("-- handshake: client %s, server %s. %d steps, %d messages to send, %d media messages.",
      kind("c2s"), kind("s2c"), info.steps, info.sends, info.media_tags))
  elseif side == "server" then
    H(fmt("-- handshake: client %s, server %s. %d handlers, %d messages to send, %d media messages.",
      kind("c2s"), kind("s2c"), info.handlers, info.sends, info.media_tags))
  else
    H(fmt("-- handshake: client %s, server %s. %d steps, %d messages to send, %d media messages.",
      kind("c2s"), kind("s2c"), info.steps, info.sends, info.media_tags))
  end
  for _, l in ipairs(media_summary(list, side == "server" and "s2c" or "c2s")) do H(l) end
  if (conn.gaps or 0) > 0 then
    H(fmt("-- The capture misses %d bytes of this connection: messages after a hole may be lost.",
      conn.gaps))
  end
  if conn.raw_pair then
    H("-- Read from a raw stream pair, which holds no times: every `at` is 0 (as --fast).")
  end
  if list.handshake_missing then
    H("-- The capture starts after the handshake: decoded from the first message.")
  end
  if (info.aggregates or 0) > 0 then
    H(fmt("-- %d aggregate messages were split into their sub-messages in the companion FLV.",
      info.aggregates))
  end
  H("--")
  if side == "server" then
    H("-- Run:   luartmp THIS.lua [--listen ADDR] [--once] [--fast] [--media FILE]" ..
      (opts.strict and "" or " [--idle S]"))
    H(fmt("--        (recorded at %s), then point the client at rtmp://ADDR/...", played))
  elseif opts.strict then
    H("-- Run:   luartmp THIS.lua [URL] [--save FILE] [--duration S] [--linger S] [--fast]")
    H("--        (URL defaults to the recorded server's tcUrl)")
  else
    H("-- Run:   luartmp THIS.lua [URL] [--save FILE] [--timeout S] [--duration S] [--fast]")
    H("--        (URL defaults to the recorded server's tcUrl)")
  end
  H("--")
  for _, l in ipairs(about) do H(l) end
  H("")
  H('local flow = require "rtmp.flow"')
  H(locals)
  H("local null, undefined, ecma, array, obj = flow.null, flow.undefined, flow.ecma, flow.array, flow.obj")
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
  for _, f in ipairs(fields or {}) do H(f) end
  local text = concat(h, "\n") .. "\n" .. concat(body, "\n") .. "\n}\n"
  return text, info
end

-- The recorded client's tcUrl (from its connect command), if any.
function M.recorded_url(list)
  for _, e in ipairs(list) do
    if e.dir == "c2s" and e.msg.name == "connect" then
      local o = e.msg.args and e.msg.args[1]
      if type(o) == "table" and type(o.tcUrl) == "string" then return o.tcUrl end
      return nil
    end
  end
end

-- Why a decoded list cannot make a script (nil when it can).
function M.undecodable(list)
  if list.error then return "decoding failed: " .. tostring(list.error) end
  if #list == 0 then return "no RTMP message in the connection" end
  for _, e in ipairs(list) do
    local m = e.msg
    if m.type_name == "unknown" or m.type_name == nil then
      return fmt("message %d (%s, %.3f s) has type %d, which is not RTMP: the bytes are not at a " ..
        "message boundary (a capture that starts mid-connection?)", e.index or 0, e.dir, e.t or 0,
        m.type or -1)
    end
  end
  return nil
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
    lines[#lines + 1] = fmt("%d  %s -> %s  c2s %d bytes  s2c %d bytes  %s%s%s%s", c.id, c.client,
      c.server, c.bytes and c.bytes.c2s or 0, c.bytes and c.bytes.s2c or 0,
      c.rtmp and "RTMP" or c.tls and ("TLS (" .. capture.tls_summary(c) .. "; encrypted)") or "not RTMP",
      c.encap and ("  in " .. tostring(c.encap)) or "",
      (c.gaps or 0) > 0 and fmt("  (%d bytes missing)", c.gaps) or "",
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

local function open_input(capture, o, path)
  if o.raw then
    if capture.open_input then return capture.open_input{ raw = o.raw } end
    if capture.open_raw then return capture.open_raw(o.raw[1], o.raw[2]) end
    return nil, "--raw: this build's rtmp.capture cannot read raw stream pairs (no open_raw)"
  end
  if capture.open_input then return capture.open_input{ path = path } end
  return capture.open(path)
end

local function main(argv)
  local capture = require "rtmp.capture"
  local cmd = command(capture)
  local o, pos = cmd:run(argv)
  if o.raw then
    if #pos ~= 0 then cmd:fail("--raw takes the place of the capture file") end
  elseif #pos ~= 1 then
    cmd:fail("want one capture file")
  end
  local side = o.side or "server"
  if o.profile and (o.strict or side ~= "server") then
    cmd:fail("--profile describes the recorded server: no --strict, no --side client")
  end
  local path = o.raw and (o.raw[1] .. "+" .. o.raw[2]) or pos[1]
  local cap, err = open_input(capture, o, pos[1])
  if not cap then fail(tostring(err)) end
  if o.list then
    for _, l in ipairs(M.list_lines(cap)) do io.stdout:write(l, "\n") end
    return
  end
  local conn
  if o.connection then
    conn = cap.conns[o.connection]
    if not conn then fail(fmt("no connection %s in %s (%d connections)", o.connection, path, #cap.conns)) end
  else
    local n, tls = 0, nil
    for _, c in ipairs(cap.conns) do
      if c.rtmp then
        n = n + 1
        conn = conn or c
      end
      tls = tls or (c.tls and c)
    end
    -- only TLS: say what it negotiated, and why there is nothing to convert
    if not conn and tls then conn = tls end
    if not conn then fail(fmt("no RTMP connection in %s (%d TCP connections)", path, #cap.conns)) end
    if n > 1 then
      io.stderr:write(fmt("capture2lua: %d RTMP connections in %s; converting %d (--list shows them, " ..
        "--connection N picks one)\n", n, path, conn.id))
    end
  end
  local list = capture.messages(conn)
  if list.handshake_missing then
    io.stderr:write(fmt("capture2lua: connection %d: the capture starts after the handshake; " ..
      "decoded from the first message\n", conn.id))
  end
  for _, dir in ipairs({ "c2s", "s2c" }) do
    local n = type(list.skipped) == "table" and list.skipped[dir] or 0
    if n > 0 then
      io.stderr:write(fmt("capture2lua: connection %d: skipped %d bytes of the %s's stream to " ..
        "find its first message\n", conn.id, n, dir == "c2s" and "client" or "server"))
    end
  end
  local why = capture.tls_reason(conn) or M.undecodable(list)
  if why then fail(fmt("connection %d (%s -> %s): %s; nothing written", conn.id,
    tostring(conn.client), tostring(conn.server), why)) end

  if o.profile then
    local ok, profile = pcall(require, "rtmp.profile")
    if not ok or type(profile) ~= "table" or type(profile.generate) ~= "function" then
      fail("--profile is not available: lua/rtmp/profile.lua (the profile generator) is missing")
    end
    -- the other RTMP connections to the same server fill in requests this
    -- one did not make (a publisher's capture with a player beside it)
    local also = {}
    for _, c in ipairs(cap.conns) do
      if c ~= conn and c.rtmp and c.server == conn.server then
        also[#also + 1] = { conn = c, list = capture.messages(c) }
      end
    end
    local text, pinfo = profile.generate(conn, list, { capture = path, also = also })
    if not text then fail("--profile: " .. tostring(pinfo)) end
    if o.o then
      local f, ferr = io.open(o.o, "wb")
      if not f then fail(tostring(ferr)) end
      f:write(text)
      f:close()
    else
      io.stdout:write(text)
    end
    io.stderr:write(fmt("capture2lua: connection %d (%s -> %s): a profile of the server from %d " ..
      "connection(s), %d recorded messages, replacing %s%s\n", conn.id, conn.client, conn.server,
      pinfo.connections or 1, pinfo.messages or 0, concat(pinfo.replaced or {}, " "),
      o.o and (" in " .. o.o) or ""))
    return
  end

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
    side = side, strict = o.strict, capture = path, media_path = media_path, media_ref = media_ref,
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
  local what
  if o.strict then
    what = fmt("%d steps, %d sends", info.steps, info.sends)
  elseif side == "server" then
    what = fmt("%d handlers, %d sends", info.handlers, info.sends)
  else
    what = fmt("%d steps (%d awaits), %d sends", info.steps, info.awaits or 0, info.sends)
  end
  io.stderr:write(fmt("capture2lua: connection %d (%s -> %s), %s side%s: %s, %d media tags%s\n",
    conn.id, conn.client, conn.server, side, o.strict and " (--strict)" or "", what,
    info.media_tags, info.media_tags > 0 and (" in " .. media_path) or ""))
end

if ... == "tools.capture2lua" then return M end
main(arg or { ... })
