-- rtmp.bind: which recorded message answers which request.
--
--   local capture = require "rtmp.capture"
--   local bind = require "rtmp.bind"
--   local list = capture.messages(conn)
--   local handlers = bind.server(list, conn)   -- the server's answers, per client request
--   local steps = bind.client(list, conn)      -- the client's sends, awaits and receives
--
-- The one place that decides it (scripts/tools/capture2lua.lua and
-- lua/rtmp/profile.lua both use it).  The rules (issue 16, point 1):
--
-- * A `_result`/`_error` answers the request with its txn (the latest one
--   with that txn not answered yet, else the latest one with that txn).
-- * A call named "on" .. X with txn 0 (onFCPublish, onFCUnpublish,
--   onFCSubscribe) answers the latest request named X.
-- * An `onStatus` on stream S answers the latest non-optional command on
--   S, unless the peer closed S since (closeStream on S, deleteStream(S)):
--   then it answers that close.
-- * Media (audio, video, aggregates) and data messages on stream S belong
--   to the latest play or publish on S (never to a pause or a seek); after
--   them, messages the rules would give to an earlier request (an onStatus
--   on S included) follow the play/publish instead, until the next
--   non-optional request (the recording was sending its stream then).
-- * Anything else (control messages, user control events, unsolicited
--   calls such as onBWDone, `_checkbw`, `|RtmpSampleAccess`) belongs to the
--   latest non-optional request before it.
-- * Optional requests (bind.optional: messages a different peer may or may
--   not send) only ever get their own replies, by txn or by name.
-- * What the played side sent before any request it can belong to is
--   `opening`.

local _M = {}

local ipairs = ipairs
local type = type
local max = math.max

---------------------------------------------------------------------------
-- What a different peer may or may not send
---------------------------------------------------------------------------

local OPTIONAL_TYPES = {
  window_ack_size = true, set_chunk_size = true, ack = true, set_peer_bandwidth = true,
  abort = true, data = true, data3 = true,
}
local OPTIONAL_EVENTS = {
  set_buffer_length = true, ping_request = true, ping_response = true, buffer_empty = true,
  buffer_ready = true,
}
local OPTIONAL_COMMANDS = {
  _checkbw = true, getStreamLength = true, FCSubscribe = true, FCUnsubscribe = true,
  releaseStream = true, receiveAudio = true, receiveVideo = true, FCPublish = true,
  FCUnpublish = true, closeStream = true, deleteStream = true,
}
_M.OPTIONAL_COMMANDS = OPTIONAL_COMMANDS

local MEDIA = { audio = true, video = true, aggregate = true }
local COMMAND = { command = true, command3 = true }
local DATA = { data = true, data3 = true }
local CONTROL = { set_chunk_size = true, abort = true, ack = true, user_control = true,
                  window_ack_size = true, set_peer_bandwidth = true }

--- bind.is_media(msg) -> true for audio, video and aggregates.
function _M.is_media(msg) return MEDIA[msg.type_name] == true end

--- bind.is_control(msg) -> true for protocol control and user control messages.
function _M.is_control(msg) return CONTROL[msg.type_name] == true end

--- bind.optional(msg) -> true when a different peer may or may not send
--- msg: it never gates anything and gets only its own replies.
function _M.optional(msg)
  local tn = msg.type_name
  if OPTIONAL_TYPES[tn] then return true end
  if tn == "user_control" then return OPTIONAL_EVENTS[msg.event_name] == true end
  if COMMAND[tn] then return OPTIONAL_COMMANDS[msg.name] == true end
  return false
end

--- bind.name(msg) -> the NAME of a message's handler key: the command or
--- data name, the user control event name (or number), else nil.
function _M.name(msg)
  local tn = msg.type_name
  if tn == "user_control" then return msg.event_name or msg.event end
  if (COMMAND[tn] or DATA[tn]) and type(msg.name) == "string" then return msg.name end
  return nil
end

--- bind.key_of(type_name, name) -> the key of that pair: "command connect", "ack".
function _M.key_of(tn, n)
  if n ~= nil then return tn .. " " .. tostring(n) end
  return tn
end

--- bind.key(msg) -> "command connect", "user_control set_buffer_length", "ack", ...
function _M.key(msg)
  return _M.key_of(msg.type_name or tostring(msg.type), _M.name(msg))
end

-- The `code` of a command's info object (its second argument), if any.
local function info_code(msg)
  local info = msg.args and msg.args[2]
  if type(info) == "table" and type(info.code) == "string" then return info.code end
  return nil
end
_M.info_code = info_code

local function is_reply(msg)
  return COMMAND[msg.type_name] and (msg.name == "_result" or msg.name == "_error")
end

-- deleteStream(S) names its stream in its third value.
local function closes_stream(msg)
  if not COMMAND[msg.type_name] then return nil end
  if msg.name == "closeStream" and (msg.stream or 0) ~= 0 then return msg.stream end
  if msg.name == "deleteStream" then
    local v = msg.args and msg.args[2]
    if type(v) == "number" then return math.tointeger(v) end
  end
  return nil
end

-- Which side of the capture closed the connection, from the played side's view.
local function closed(conn, played)
  local by = conn and conn.closed_by
  if by == nil then return nil end
  local side = played == "s2c" and "server" or "client"
  return by == side and "played" or "peer", conn.close_t
end

---------------------------------------------------------------------------
-- The server side
---------------------------------------------------------------------------

--- bind.server(list, conn) -> handlers. list: capture.messages(conn).
--- handlers: in recorded order, one per client message other than media:
---   { key, type_name, name, txn, stream, optional, t, msg, e,
---     actions = { { e = server entry, at = seconds after the request }, ... } }
--- plus handlers.opening (actions before any request, `at` from the first
--- message), handlers.closed_by ("played", "peer" or nil: unknown) and,
--- when the server closed, handlers.close = { handler = index or nil
--- (opening), at = seconds }.
function _M.server(list, conn)
  local handlers = {}
  local opening = {}
  handlers.opening = opening
  local t0 = list[1] and list[1].t or 0
  local by_txn = {}         -- txn -> { handler indexes in order }
  local answered = {}       -- handler index -> true once a _result/_error went to it
  local by_name = {}        -- command name -> latest handler index
  local on_stream = {}      -- stream -> latest non-optional command handler on it
  local closing = {}        -- stream -> latest closeStream/deleteStream handler for it
  local av = {}             -- stream -> latest play/publish handler on it
  local cur                 -- latest non-optional request (or where media re-anchored)

  local function add(h, e)
    local t = h and h.t or t0
    local a = { e = e, at = max(0, (e.t or 0) - t) }
    local acts = h and h.actions or opening
    acts[#acts + 1] = a
  end

  for _, e in ipairs(list) do
    local msg = e.msg
    local tn = msg.type_name
    if e.dir == "c2s" then
      if not MEDIA[tn] then
        local h = { key = _M.key(msg), type_name = tn, name = _M.name(msg), txn = msg.txn,
                    stream = msg.stream or 0, optional = _M.optional(msg), t = e.t or 0,
                    msg = msg, e = e, actions = {} }
        handlers[#handlers + 1] = h
        local i = #handlers
        h.index = i
        if COMMAND[tn] then
          if msg.txn ~= nil then
            local l = by_txn[msg.txn] or {}
            l[#l + 1] = i
            by_txn[msg.txn] = l
          end
          if type(msg.name) == "string" then by_name[msg.name] = i end
          if not h.optional and h.stream ~= 0 then on_stream[h.stream] = i end
          local s = closes_stream(msg)
          if s then closing[s] = i end
          if msg.name == "play" or msg.name == "play2" or msg.name == "publish" then
            av[h.stream] = i
            closing[h.stream] = nil
          end
        end
        if not h.optional then cur = i end
      end
    else
      local target
      local stream = msg.stream or 0
      if is_reply(msg) and msg.txn ~= nil and by_txn[msg.txn] then
        local l = by_txn[msg.txn]
        for k = #l, 1, -1 do
          if not answered[l[k]] then target = l[k]; break end
        end
        target = target or l[#l]
        answered[target] = true
      elseif COMMAND[tn] and type(msg.name) == "string" and msg.name:match("^on%u")
          and (msg.txn or 0) == 0 and by_name[msg.name:sub(3)] then
        target = by_name[msg.name:sub(3)]
      elseif COMMAND[tn] and msg.name == "onStatus" and stream ~= 0 then
        local a, c = on_stream[stream], closing[stream]
        if c and (not a or c > a) then target = c else target = a end
        target = target or cur
      elseif (MEDIA[tn] or DATA[tn]) and stream ~= 0 and av[stream] then
        target = av[stream]
        -- media re-anchors: what follows it goes with the play/publish, not
        -- with a pause or seek that came before it
        if MEDIA[tn] then
          cur = target
          on_stream[stream] = target
        end
      else
        target = cur
      end
      add(target and handlers[target], e)
    end
  end

  local by, ct = closed(conn, "s2c")
  handlers.closed_by = by
  if by == "played" then
    local h = cur and handlers[cur]
    local base = h and h.t or t0
    handlers.close = { handler = cur, at = max(0, (ct or base) - base) }
  end
  return handlers
end

---------------------------------------------------------------------------
-- The client side
---------------------------------------------------------------------------

-- Requests whose reply a client must wait for, and those it never waits for.
local MUST = { connect = true, createStream = true, publish = true, play = true, play2 = true }
local NEVER = OPTIONAL_COMMANDS

-- Messages the engine sends by itself.
local function auto(msg)
  return msg.type_name == "ack"
      or (msg.type_name == "user_control" and msg.event_name == "ping_response")
end
_M.auto = auto

local function media_kind(msg)
  if msg.type_name == "audio" or msg.type_name == "video" then return msg.type_name end
  return nil
end

-- Counts of audio and video in a media message (aggregates split).
local function count_media(msg, into)
  if msg.type_name == "aggregate" then
    local ok, subs = pcall(msg.split, msg)
    if ok and type(subs) == "table" then
      for _, s in ipairs(subs) do
        if s.type == 8 then into.audio = into.audio + 1
        elseif s.type == 9 then into.video = into.video + 1 end
      end
    end
    return
  end
  local k = media_kind(msg)
  if k then into[k] = into[k] + 1 end
end
_M.count_media = count_media

--- bind.client(list, conn) -> steps. list: capture.messages(conn).
--- steps, in order:
---   { kind = "send", e = client entry, at = seconds after the previous
---     await/receive completed (or the first message), auto = true for
---     what the engine sends by itself (acknowledgements, ping answers),
---     media = true for audio/video/aggregates }
---   { kind = "await", e = the server's reply entry, request = the
---     client's request entry, name = "_result"|"_error"|"onStatus"|...,
---     txn = recorded txn (replies by txn), stream = recorded stream
---     (onStatus), code = the reply's code or nil }
---   { kind = "receive", audio = A, video = V }   media received since the last step
---   { kind = "close", at = seconds }              the recorded client closed here
--- plus steps.outcome = { codes = { ... }, received = { audio, video },
--- sent = { audio, video } } and steps.closed_by ("played"/"peer"/nil).
function _M.client(list, conn)
  local steps = {}
  local t0
  for _, e in ipairs(list) do
    if e.dir == "c2s" then t0 = e.t or 0; break end
  end
  t0 = t0 or 0
  local base = t0                 -- when the previous await/receive completed
  local received = { audio = 0, video = 0 }
  local sent = { audio = 0, video = 0 }
  local pending = {}              -- client requests waiting for their reply
  local ready = {}                -- awaits to insert before the next client send
  local media = { audio = 0, video = 0 }
  local last_media_t
  local codes, seen_code = {}, {}
  local function code(c)
    if c and not seen_code[c] then seen_code[c] = true; codes[#codes + 1] = c end
  end
  local last_send_index = 0       -- index (in steps) of the latest non-auto send

  local function flush_awaits()
    for _, a in ipairs(ready) do
      steps[#steps + 1] = a
      base = max(base, a.e.t or base)
    end
    ready = {}
  end
  local function flush_receive()
    if media.audio + media.video > 0 then
      steps[#steps + 1] = { kind = "receive", audio = media.audio, video = media.video }
      base = max(base, last_media_t or base)
      media = { audio = 0, video = 0 }
    end
  end

  for _, e in ipairs(list) do
    local msg = e.msg
    local tn = msg.type_name
    if e.dir == "c2s" then
      if auto(msg) then
        steps[#steps + 1] = { kind = "send", e = e, at = max(0, (e.t or 0) - base), auto = true }
      else
        flush_awaits()
        if not CONTROL[tn] then flush_receive() end
        local s = { kind = "send", e = e, at = max(0, (e.t or 0) - base), media = MEDIA[tn] }
        steps[#steps + 1] = s
        last_send_index = #steps
        if MEDIA[tn] then count_media(msg, sent) end
        if COMMAND[tn] and type(msg.name) == "string" and not NEVER[msg.name] then
          pending[#pending + 1] = { e = e, msg = msg, must = MUST[msg.name], step = #steps,
                                    name = msg.name }
        end
      end
    else
      if MEDIA[tn] then
        count_media(msg, received)
        count_media(msg, media)
        last_media_t = e.t
      elseif COMMAND[tn] then
        -- is it the reply to a pending request?
        for k, p in ipairs(pending) do
          local match
          if is_reply(msg) and p.msg.txn ~= nil and msg.txn == p.msg.txn
              and not (p.name == "publish" or p.name == "play" or p.name == "play2") then
            match = true
          elseif msg.name == "onStatus" and (p.name == "publish" or p.name == "play"
              or p.name == "play2") and (msg.stream or 0) == (p.msg.stream or 0) then
            match = true
          end
          if match then
            table.remove(pending, k)
            -- the recorded client waited for it when it sent nothing between
            if p.must or last_send_index == p.step then
              local a = { kind = "await", e = e, request = p.e, name = msg.name,
                          code = info_code(msg) }
              if msg.name == "onStatus" then a.stream = msg.stream or 0 else a.txn = msg.txn end
              ready[#ready + 1] = a
              code(a.code)
              p.awaited = a
            end
            break
          end
        end
        -- onStatus codes that come with an awaited one count as outcomes too
        if msg.name == "onStatus" then
          for _, a in ipairs(ready) do
            if a.stream ~= nil and a.stream == (msg.stream or 0) then code(info_code(msg)) end
          end
        end
      end
    end
  end
  flush_awaits()
  flush_receive()
  local by, ct = closed(conn, "c2s")
  steps.closed_by = by
  if by == "played" then
    steps[#steps + 1] = { kind = "close", at = max(0, (ct or base) - base) }
  end
  steps.outcome = { codes = codes, received = received, sent = sent }
  return steps
end

return _M
