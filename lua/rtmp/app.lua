-- rtmp.app: RTMP's NetConnection and NetStream on top of the per-message
-- level, as events.
--
--   local app = require "rtmp.app"
--   local server = app.new{
--     on_publish = function(conn, ns)
--       if ns.params.key ~= "s3cret" then return false, "bad key" end
--     end,
--     on_media = function(conn, ns, msg) players:send(msg) end,
--   }
--   server:listen{ listen = "1935" }
--
-- The app answers connect, createStream, releaseStream, FCPublish,
-- FCUnpublish, publish, play, pause, seek, receiveAudio, receiveVideo,
-- closeStream, deleteStream, getStreamLength and _checkbw with the standard
-- replies, keeps each connection's stream ids (conn.streams), and turns
-- what happens into events: on_connect, on_publish, on_unpublish, on_play,
-- on_stop, on_media, on_data, on_call (any other command) and on_close.
-- on_connect, on_publish, on_play and on_call decide: `false, reason
-- [, code]` refuses. Each runs in a coroutine of its own and may wait
-- (rtmp.sleep, rtmp.http.request): the connection's input is held
-- meanwhile, up to config.hook_timeout seconds (then
-- config.hook_timeout_verdict decides); a close meanwhile cancels it.
-- Every reply is a replaceable function in app.replies, every command
-- handler one in app.commands, every message type's handler one in
-- app.messages (the per-message level).  An app made with a kept state
-- (app.new{ state = rtmp.keep(name) }) survives rtmp.reload: each load
-- makes a new app, and the connections and listening servers go on with
-- the newest from their next message.  docs/APP.md has it all.
local rtmp = require "rtmp"
local caps = require "rtmp.caps"
local reload = require "rtmp.reload"

local _M = {}

local null = rtmp.null
local log = rtmp.log
local traceback = debug.traceback
local pack, unpack = table.pack, table.unpack
local type, pairs, tonumber, tostring = type, pairs, tonumber, tostring
local tointeger = math.tointeger
local resume, create, co_status, co_close = coroutine.resume, coroutine.create, coroutine.status, coroutine.close

--- What connect announces, unless the app's config says otherwise.
_M.defaults = {
    chunk_size = 4096,        -- our outgoing chunk size, sent after connect
    window = 2500000,         -- Window Acknowledgement Size we announce
    peer_bandwidth = 2500000, -- Set Peer Bandwidth we announce (limit type dynamic)
    hook_timeout = 5,         -- seconds a deciding event (connect, publish, play, call) may wait; 0: no bound
    hook_timeout_verdict = "refuse", -- what one that waits longer decides: "refuse" (fail closed) or "allow"
}

--- app.caps() -> what a server of luartmp announces of Enhanced RTMP in
--- connect's _result (rtmp.caps.announce's argument): it forwards every
--- FourCC the media model knows, and capsEx is rtmp.caps's (Reconnect,
--- Multitrack, ModEx, TimestampNanoOffset; without Reconnect when
--- rtmp.caps.reconnect is false).
--- Each app starts with its own copy as app.caps (false: announce nothing).
function _M.caps()
    return { forward = true }
end

-- ---- names ----

-- Percent-decoding of a query component.
local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- app.split_name("cam?key=a&x=1") -> "cam", "key=a&x=1", { key = "a", x = "1" };
--- nil when the name is not a string.
function _M.split_name(s)
    if type(s) ~= "string" then return nil end
    local name, query = s:match("^([^?]*)%??(.*)$")
    local params = {}
    for k, v in query:gmatch("([^&=]+)=?([^&]*)") do params[unescape(k)] = unescape(v) end
    return name, query, params
end

--- app.is_metadata(msg) -> where "onMetaData" is among msg's values (1,
--- or 2 after "@setDataFrame"), or nil when msg does not set metadata.
function _M.is_metadata(msg)
    local values = msg.values
    if not values then return nil end
    local first = values[1] == "@setDataFrame" and 2 or 1
    if values[first] == "onMetaData" then return first end
end

--- app.metadata(msg) -> the onMetaData message players get (without
--- @setDataFrame, timestamp 0), or nil when msg does not set metadata.
function _M.metadata(msg)
    local first = _M.is_metadata(msg)
    if not first then return nil end
    local values = msg.values
    return rtmp.message({ type = "data", timestamp = 0 }, rtmp.amf0.encode(unpack(values, first, values.n)))
end

-- ---- replies ----

local function status(level, code, description, extra)
    local info = { level = level, code = code, description = description }
    for k, v in pairs(extra or {}) do info[k] = v end
    return info
end

--- app.on_status(conn, sid, level, code, description [, extra]): an onStatus
--- on stream sid (csid 5), extra fields added to the info object.
function _M.on_status(conn, sid, level, code, description, extra)
    return conn:command({ stream = sid, csid = 5 }, "onStatus", 0, null, status(level, code, description, extra))
end
local on_status = _M.on_status

--- app.reconnect_request(conn [, { tc_url =, description = }]): Enhanced
--- RTMP's NetConnection.Connect.ReconnectRequest, an onStatus on stream 0:
--- the client should reconnect to tc_url (absolute, or relative to its own
--- tcUrl; none: its own) and go on there.  Sent to any client: whether it
--- follows is what it announced (conn.caps.caps_ex.reconnect).  A
--- connection of an app has it as a method: conn:reconnect_request{...}.
function _M.reconnect_request(conn, t)
    t = t or {}
    if type(t) ~= "table" then error("app.reconnect_request: table expected", 2) end
    if t.tc_url ~= nil and type(t.tc_url) ~= "string" then error("app.reconnect_request: tc_url must be a string", 2) end
    return conn:command(nil, "onStatus", 0, null, status("status", "NetConnection.Connect.ReconnectRequest",
        t.description, { tcUrl = t.tc_url }))
end

local function result(conn, msg, ...)
    return conn:command({ stream = msg.stream }, "_result", msg.txn, ...)
end

local function ignore() end

-- The standard replies; app.new gives each app its own copy to replace.
local REPLIES = {}

-- The control messages sent on connect, before the _result.
function REPLIES.controls(conn, config)
    conn:set_window_ack_size(config.window)
    conn:set_peer_bandwidth(config.peer_bandwidth, "dynamic")
    conn:set_chunk_size(config.chunk_size)
end

-- announced: the server's Enhanced RTMP capabilities (caps.announce of
-- app.caps) when the client announced its own (conn.caps), else nil.
function REPLIES.result(conn, msg, app, encoding, announced)
    local props = { fmsVer = "FMS/3,0,1,123", capabilities = 31.0 }
    for k, v in pairs(announced or {}) do props[k] = v end
    conn:command(nil, "_result", msg.txn, props,
        status("status", "NetConnection.Connect.Success", "Connection succeeded.", { objectEncoding = encoding }))
end

function REPLIES.connect_rejected(conn, msg, reason)
    conn:command(nil, "_error", msg.txn, null,
        status("error", "NetConnection.Connect.Rejected", reason or "Connection rejected."))
end

-- _error NetConnection.Call.Failed to a caller that waits (txn > 0).
function REPLIES.call_failed(conn, msg, description)
    if msg.txn and msg.txn > 0 then
        return conn:command({ stream = msg.stream }, "_error", msg.txn, null,
            status("error", "NetConnection.Call.Failed", description))
    end
end

function REPLIES.createStream(conn, msg, sid) result(conn, msg, null, sid) end
function REPLIES.releaseStream(conn, msg) result(conn, msg, null) end
function REPLIES.getStreamLength(conn, msg) result(conn, msg, null, 0) end

function REPLIES.FCPublish(conn, msg, name)
    conn:command(nil, "onFCPublish", 0, null, status("status", "NetStream.Publish.Start", name))
end

function REPLIES.FCUnpublish(conn, msg, name)
    conn:command(nil, "onFCUnpublish", 0, null, status("status", "NetStream.Unpublish.Success", name))
end

-- A publish or play refused: onStatus of level error on its stream.
function REPLIES.refused(conn, msg, sid, code, description)
    on_status(conn, sid, "error", code, description)
end

function REPLIES.publish(conn, msg, sid, name)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "status", "NetStream.Publish.Start", name .. " is now published.", { details = name })
end

-- start(): where the stream's media may begin (what on_play sent with
-- ns:send goes there); the app calls it after the reply if it did not.
function REPLIES.play(conn, msg, sid, name, start)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "status", "NetStream.Play.Reset", "Playing and resetting " .. name .. ".", { details = name })
    on_status(conn, sid, "status", "NetStream.Play.Start", "Started playing " .. name .. ".", { details = name })
    conn:data({ stream = sid }, "|RtmpSampleAccess", true, true)
    start()
end

-- To a player when a publisher of its stream comes or goes: the server's
-- policy decides when (live.lua: when a publisher starts or stops).
function REPLIES.publish_notify(conn, sid, name)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "status", "NetStream.Play.PublishNotify", name .. " is now published.")
end

function REPLIES.unpublish_notify(conn, sid, name)
    conn:user_control("stream_eof", sid)
    on_status(conn, sid, "status", "NetStream.Play.UnpublishNotify", name .. " is now unpublished.")
end

-- Live streams cannot pause: acknowledged so clients go on.
function REPLIES.pause(conn, msg, sid, paused)
    on_status(conn, sid, "status", paused and "NetStream.Pause.Notify" or "NetStream.Unpause.Notify",
        paused and "Paused live stream." or "Unpaused live stream.")
end

-- role: "publish", "play" or nil (the stream did neither); sent after the
-- stream was left.  seek: nothing, as nginx-rtmp's live streams.
REPLIES.deleteStream = ignore
REPLIES.closeStream = ignore
REPLIES.seek = ignore

-- ---- events in coroutines ----

local held = setmetatable({}, { __mode = "k" })  -- conn -> messages held while its event waits
local waiting = setmetatable({}, { __mode = "k" }) -- conn -> { co, name, timer }: its deciding event that waits
local App = {}
App.__index = App

local function report(conn, what, err)
    if conn.closed then
        log.error("conn=%s script error in %s: %s", tostring(conn.id), what, tostring(err))
    else
        conn:log("error", "script error in %s: %s", what, tostring(err))
    end
end

-- The messages that arrived while an event of conn waited, in order.
local function release(self, conn)
    local q = held[conn]
    held[conn] = nil
    if not q or conn.closed then return end
    if conn.pause_reading then conn:pause_reading(false) end
    if #q > 0 then
        local bytes = 0
        for i = 1, #q do bytes = bytes + q[i].length end
        conn:log("debug", "%d messages (%d bytes) held while an event waited: handled now", #q, bytes)
    end
    for i = 1, #q do
        if conn.closed then return end -- a message before closed it: the rest is moot
        local again = held[conn]
        if again then -- an event waits again: the rest waits with it
            for j = i, #q do again[#again + 1] = q[j] end
            return
        end
        local ok, err = xpcall(_M.current(self).handlers.on_message, traceback, conn, q[i])
        if not ok then
            report(conn, "on_message", err)
            return conn:close("script error: " .. tostring(err):match("^[^\n]*"))
        end
    end
end

-- An event that waited has returned (r: xpcall's results): go on with k.
local function finish(self, name, conn, k, r)
    if not r[1] then
        report(conn, name, r[2])
        if k and not conn.closed then conn:close("script error in " .. name) end
    elseif k and not conn.closed then
        local ok, err = xpcall(k, traceback, unpack(r, 2, r.n))
        if not ok then
            report(conn, name, err)
            conn:close("script error in " .. name)
        end
    end
    if k then release(self, conn) end
end

-- The app's hook_timeout and hook_timeout_verdict (config, over _M.defaults).
local function hook_limits(self)
    local t, v = self.config.hook_timeout, self.config.hook_timeout_verdict
    if type(t) ~= "number" or t < 0 then
        error("app config: hook_timeout must be a number of seconds >= 0 (0: no bound), not " .. tostring(t), 0)
    end
    if v ~= "refuse" and v ~= "allow" then
        error('app config: hook_timeout_verdict must be "refuse" or "allow", not ' .. tostring(v), 0)
    end
    return t, v
end

-- The deciding event `name` of conn, coroutine co, waits: past
-- hook_timeout it is decided by hook_timeout_verdict, logged, and the
-- coroutine closed (what it waits on, an HTTP request, is cancelled).
local function bound(self, name, conn, k, co)
    local limit, verdict = hook_limits(self)
    local w = { co = co, name = name }
    waiting[conn] = w
    if limit == 0 then return end
    w.timer = rtmp.timer(limit, function()
        if waiting[conn] ~= w then return end
        waiting[conn] = nil
        local allow = verdict == "allow"
        conn:log("warn", "%s did not return within %g s: %s (hook_timeout_verdict = %s)", name, limit,
            allow and "allowed" or "refused", verdict)
        if co_status(co) == "suspended" then co_close(co) end
        finish(self, name, conn, k, allow and pack(true)
            or pack(true, false, name .. " did not decide within " .. limit .. " s"))
    end)
end

-- Call event `name` with (conn, ...) in a coroutine, then k(its results).
-- An event that returns without waiting is an ordinary call: k runs now
-- and an error is raised here.  One that waits holds conn's input (k ~=
-- nil: a deciding event) until it returns or hook_timeout decides; k then
-- runs unless conn closed meanwhile (which cancels the event: on_close).
local function run(self, name, conn, k, ...)
    local fn = self[name]
    if not fn then
        if k then return k() end
        return
    end
    local waited, co = false, nil
    co = create(function(...)
        local r = pack(xpcall(fn, traceback, ...))
        if waited then
            local w = waiting[conn]
            if k and (not w or w.co ~= co) then return end -- decided by hook_timeout already
            if w then
                waiting[conn] = nil
                if w.timer then w.timer:stop() end
            end
            return finish(self, name, conn, k, r)
        end
        return r
    end)
    local _, r = resume(co, conn, ...)
    if co_status(co) ~= "dead" then
        waited = true
        if k then
            if not held[conn] then
                held[conn] = {}
                if conn.pause_reading then conn:pause_reading(true) end
            end
            bound(self, name, conn, k, co)
        end
        return
    end
    if not r[1] then error(r[2], 0) end
    if k then return k(unpack(r, 2, r.n)) end
end

--- app.verdict(hook, conn, ...) -> true, or false [, reason, code]: what
--- hook(conn, ...), a script's own hook called from an event, decided
--- (none: yes).  `false, reason [, code]` refuses, and so does conn
--- closing while the hook waited.
function _M.verdict(hook, conn, ...)
    if not hook then return true end
    local ok, reason, code = hook(conn, ...)
    if ok == false then return false, reason, code end
    return not conn.closed
end

-- ---- net streams ----

local NS = {}
NS.__index = NS

-- A name without a query (most of them): its stream reads query and
-- params from here, so a player's table keeps to 8 hash slots.  The
-- empty params are shared, hence read-only.
NS.query = ""
NS.params = setmetatable({}, { __newindex = function()
    error("ns.params: the stream name had no query; this empty table is shared and read-only", 2)
end })

-- The header ns:send gives conn:send, { stream = sid }: one table per
-- stream id up to 64, shared by every stream with that id (conn:send
-- only reads it); a stream with a higher id keeps its own.
local HDRS = {}
local function hdr_of(ns)
    local sid = ns.id
    local h = HDRS[sid] or ns.hdr
    if h then return h end
    h = { stream = sid }
    if math.type(sid) == "integer" and sid >= 0 and sid <= 64 then HDRS[sid] = h else ns.hdr = h end
    return h
end

--- ns:send(msg): a message (a received one, or rtmp.message) on this stream.
--- During on_play, what is sent waits for the play reply's start.
function NS:send(msg)
    local q = self.pending
    if q then
        q[#q + 1] = msg
        return true
    end
    return self.conn:send(hdr_of(self), msg)
end

--- ns:defer(fn): fn() runs where the play reply lets the media begin
--- (with what ns:send queued, in order); at once outside on_play.
function NS:defer(fn)
    local q = self.pending
    if q then
        q[#q + 1] = fn
    else
        fn()
    end
end

--- ns:forward(group): the audio and video of this publishing stream go to
--- group (rtmp.group) in C, with no Lua and no on_media, until the stream
--- ends; ns:forward() ends it sooner (conn:forward).
function NS:forward(group)
    if self.role ~= "publish" then error("ns:forward: not a publishing stream", 2) end
    self.forwarding = group or nil
    return self.conn:forward(self.id, group)
end

local function start(ns)
    local q = ns.pending
    if not q then return end
    ns.pending = nil
    for i = 1, #q do
        local x = q[i]
        if type(x) == "function" then x() else ns.conn:send(hdr_of(ns), x) end
    end
end

local function new_stream(conn, sid, role, msg)
    local name, query, params = _M.split_name(msg.args[2])
    local ns = setmetatable({ conn = conn, id = sid, role = role, app = conn.app, name = name }, NS)
    if query and query ~= "" then ns.query, ns.params = query, params end
    return ns
end

-- Leave what conn does on stream id sid (on_unpublish / on_stop with
-- reason); returns the role it had, or the one it had before an earlier
-- closeStream, or nil.
local function leave(self, conn, sid, reason)
    local streams = conn.streams
    local ns = streams and streams[sid]
    if type(ns) ~= "table" then
        local left = self.left[conn]
        return left and left[sid]
    end
    streams[sid] = true
    local left = self.left[conn]
    if not left then
        left = {}
        self.left[conn] = left
    end
    left[sid] = ns.role
    ns.left = reason
    if ns.forwarding and not conn.closed then ns:forward() end
    run(self, ns.role == "publish" and "on_unpublish" or "on_stop", conn, nil, ns, reason)
    return ns.role
end

local function publishing(conn, msg)
    local streams = conn.streams
    local ns = streams and streams[msg.stream]
    if ns and ns ~= true and ns.role == "publish" then return ns end
end

-- ---- commands ----

-- The name and transaction id at the head of a command whose body did
-- not decode as a whole (a string, then a number), or nil.
local function command_head(msg)
    local p = msg.payload
    local at = msg.type == 17 and 2 or 1 -- AMF3 commands start with a format byte
    if p:byte(at) ~= 2 then return nil end
    local ok, name, pos = pcall(string.unpack, ">s2", p, at + 1)
    if not ok or p:byte(pos) ~= 0 then return nil end
    local ok2, txn = pcall(string.unpack, ">d", p, pos + 1)
    if not ok2 then return nil end
    return name, txn
end

-- The command handlers of app `self` (each function(conn, msg)).
local function commands_of(self)
    local replies, c = self.replies, {}

    function c.connect(conn, msg)
        local obj = msg.args[1]
        local app = _M.split_name(type(obj) == "table" and obj.app or "") or ""
        app = app:gsub("/+$", "")
        -- what the client announced of Enhanced RTMP (nil: nothing, a legacy client)
        local problems
        conn.caps, problems = caps.parse(obj)
        for i = 1, #problems do conn:log("warn", "connect: Enhanced RTMP capabilities: %s", problems[i]) end
        conn.reconnect_request = _M.reconnect_request -- conn:reconnect_request{ tc_url =, description = }
        run(self, "on_connect", conn, function(ok, reason)
            if ok == false then
                replies.connect_rejected(conn, msg, reason)
                return conn:close("connect rejected: " .. tostring(reason))
            end
            conn.app = app
            conn.streams = conn.streams or {} -- stream id -> true (created) or its NetStream
            replies.controls(conn, self.config)
            -- the server's own capabilities, to a client that announced its own
            local announced = conn.caps and self.caps and caps.announce(self.caps) or nil
            replies.result(conn, msg, app, type(obj) == "table" and tonumber(obj.objectEncoding) or 0, announced)
            conn:log("info", "connect app=%s", app)
        end, app, msg)
    end

    function c.createStream(conn, msg)
        if not conn.app then return replies.call_failed(conn, msg, "connect first") end
        local sid = (self.next_sid[conn] or 1)
        self.next_sid[conn] = sid + 1
        conn.streams[sid] = true
        replies.createStream(conn, msg, sid)
    end

    function c.releaseStream(conn, msg) replies.releaseStream(conn, msg) end
    function c.getStreamLength(conn, msg) replies.getStreamLength(conn, msg) end
    function c.FCPublish(conn, msg) replies.FCPublish(conn, msg, _M.split_name(msg.args[2]) or "") end
    function c.FCUnpublish(conn, msg) replies.FCUnpublish(conn, msg, _M.split_name(msg.args[2]) or "") end

    -- publish and play: a name, then the event's decision; a stream id
    -- that publishes or plays already leaves that first
    local function open(conn, msg, role, event, nameless, refused, why)
        local sid = msg.stream
        local ns = new_stream(conn, sid, role, msg)
        if not conn.app or not ns.name or ns.name == "" then
            return replies.refused(conn, msg, sid, nameless, "No stream name.")
        end
        local a3 = msg.args[3]
        if role == "publish" then
            ns.type = type(a3) == "string" and a3 or "live"
        else
            ns.start, ns.duration, ns.reset = a3, msg.args[4], msg.args[5]
            ns.pending = {}
        end
        if type(conn.streams[sid]) == "table" then leave(self, conn, sid, role) end
        run(self, event, conn, function(ok, reason, code)
            if ok == false then return replies.refused(conn, msg, sid, code or refused, reason or why) end
            conn.streams[sid] = ns
            if role == "publish" then return replies.publish(conn, msg, sid, ns.name) end
            replies.play(conn, msg, sid, ns.name, function() start(ns) end)
            start(ns)
        end, ns)
    end

    function c.publish(conn, msg)
        open(conn, msg, "publish", "on_publish", "NetStream.Publish.BadName", "NetStream.Publish.Denied", "Denied.")
    end

    function c.play(conn, msg)
        open(conn, msg, "play", "on_play", "NetStream.Play.StreamNotFound", "NetStream.Play.StreamNotFound",
            "Stream not found.")
    end

    function c.deleteStream(conn, msg)
        local sid = tonumber(msg.args[2])
        if not sid then return end
        sid = tointeger(sid) or sid
        local role = leave(self, conn, sid, "deleteStream")
        local left = self.left[conn]
        if left then left[sid] = nil end
        if conn.streams then conn.streams[sid] = nil end
        replies.deleteStream(conn, msg, sid, role)
    end

    function c.closeStream(conn, msg)
        replies.closeStream(conn, msg, msg.stream, leave(self, conn, msg.stream, "closeStream"))
    end

    function c.pause(conn, msg)
        local ns = conn.streams and conn.streams[msg.stream]
        local paused = msg.args[2] and true or false
        if type(ns) == "table" then ns.paused = paused end
        replies.pause(conn, msg, msg.stream, paused)
    end

    function c.seek(conn, msg) replies.seek(conn, msg, msg.stream, msg.args[2]) end

    -- what a player wants: kept on its stream (ns.audio, ns.video)
    local function receive(kind)
        return function(conn, msg)
            local ns = conn.streams and conn.streams[msg.stream]
            if type(ns) == "table" then ns[kind] = msg.args[2] ~= false end
        end
    end
    c.receiveAudio = receive("audio")
    c.receiveVideo = receive("video")
    c.FCSubscribe = ignore
    c.FCUnsubscribe = ignore
    c._checkbw = ignore
    return c
end

-- ---- messages ----

-- The message handlers of app `self` by type name (each function(conn, msg)).
local function messages_of(self)
    local m, commands, replies = {}, self.commands, self.replies

    local function media(conn, msg)
        local ns = publishing(conn, msg)
        local ev = ns and self.on_media
        if ev then return ev(conn, ns, msg) end
    end

    local function data(conn, msg)
        if msg.decode_error then
            return conn:log("warn", "undecodable %s: %s", msg.type_name, msg.decode_error)
        end
        local ns = publishing(conn, msg)
        local ev = ns and msg.values and self.on_data
        if ev then return ev(conn, ns, msg) end
    end

    local function command(conn, msg)
        if msg.decode_error then
            conn:log("warn", "undecodable command: %s", msg.decode_error)
            -- a caller waiting for an answer gets one when its name and
            -- transaction id are readable
            local name, txn = command_head(msg)
            if txn then
                replies.call_failed(conn, { stream = msg.stream, txn = txn },
                    "Undecodable " .. name .. ": " .. msg.decode_error .. ".")
            end
            return
        end
        local name = msg.name
        if type(name) ~= "string" or math.type(msg.txn) == nil then
            return conn:log("warn", "malformed command: %s", type(name) ~= "string" and "no command name"
                or "no transaction id")
        end
        local handler = commands[name]
        if handler then return handler(conn, msg) end
        if self.on_call then
            return run(self, "on_call", conn, function(ok, reason)
                if ok == false then replies.call_failed(conn, msg, reason or "Call failed.") end
            end, msg)
        end
        conn:log("debug", "no handler for command %s", name)
        return replies.call_failed(conn, msg, "Method not found (" .. name .. ").")
    end

    -- protocol control and the rest: the engine applied its defaults
    function m.default(conn, msg)
        if msg.decode_error then conn:log("warn", "undecodable %s: %s", msg.type_name, msg.decode_error) end
    end

    m.audio, m.video = media, media
    m.data, m.data3 = data, data
    m.command, m.command3 = command, command

    -- an aggregate: each sub-message the way it would have gone alone
    function m.aggregate(conn, msg)
        if not publishing(conn, msg) then return end
        local subs, err = msg:split()
        if not subs then return conn:log("warn", "aggregate dropped: %s", err) end
        for i = 1, #subs do
            local sub = subs[i]
            local t = sub.type
            if t == 8 or t == 9 then media(conn, sub) elseif t == 18 or t == 15 then data(conn, sub) end
        end
    end
    return m
end

-- ---- the app ----

--- app.new(t) -> app: t holds the events (on_connect, ...; set or changed
--- later as fields) and optionally config (chunk_size, window,
--- peer_bandwidth: _M.defaults fill what it lacks; and rtmp.listen settings
--- for app:listen) and caps (the Enhanced RTMP capabilities its _result
--- states to a client that announced its own; default app.caps()).  After
--- connect, conn.caps is what the client announced (rtmp.caps.parse; nil
--- for a legacy client).  The app has replies,
--- commands and messages (each replaceable), handlers ({ on_message,
--- on_close } for rtmp.listen) and app:listen(settings).
---
--- With t.state (a table kept across loads: rtmp.keep), the app's
--- connection tables are the state's, its listening servers too (a
--- second app:listen returns them), and the app becomes the state's
--- current one (state.app) when the load that made it is kept
--- (rtmp.reload's commit): its servers' connections go on with it from
--- their next message.
function _M.new(t)
    if t ~= nil and type(t) ~= "table" then error("app.new: table expected", 2) end
    local self = setmetatable(t or {}, App)
    local config = self.config or {}
    for k, v in pairs(_M.defaults) do
        if config[k] == nil then config[k] = v end
    end
    self.config = config
    if self.caps == nil then self.caps = _M.caps() end
    local state = self.state
    if state ~= nil and type(state) ~= "table" then error("app.new: state must be a table (rtmp.keep)", 2) end
    state = state or {}
    state.next_sid = state.next_sid or setmetatable({}, { __mode = "k" }) -- conn -> its next stream id
    state.left = state.left or setmetatable({}, { __mode = "k" })         -- conn -> { sid -> role before closeStream }
    self.next_sid, self.left = state.next_sid, state.left
    local replies = {}
    for k, v in pairs(REPLIES) do replies[k] = v end
    local controls = REPLIES.controls
    replies.controls = function(conn) return controls(conn, self.config) end
    self.replies = replies
    self.commands = commands_of(self)
    self.messages = messages_of(self)

    local messages = self.messages
    local function on_message(conn, msg)
        local q = held[conn]
        if q then
            q[#q + 1] = msg
            return
        end
        local h = messages[msg.type_name] or messages.default
        return h(conn, msg)
    end

    local function on_close(conn, reason)
        held[conn] = nil
        -- a deciding event still waiting is cancelled with what it waits on
        local w = waiting[conn]
        if w then
            waiting[conn] = nil
            if w.timer then w.timer:stop() end
            if co_status(w.co) == "suspended" then
                log.info("conn=%s %s cancelled: the connection closed (%s)", tostring(conn.id), w.name,
                    tostring(reason))
                co_close(w.co)
            end
        end
        local streams = conn.streams
        if streams then
            local sids = {}
            for sid, ns in pairs(streams) do
                if ns ~= true then sids[#sids + 1] = sid end
            end
            -- one stream's failing event does not keep the others (or
            -- on_close) from running: each is reported and the rest go on
            for i = 1, #sids do
                local ok, err = xpcall(leave, traceback, self, conn, sids[i], reason)
                if not ok then report(conn, "closing stream " .. tostring(sids[i]), err) end
            end
        end
        local ok, err = xpcall(run, traceback, self, "on_close", conn, nil, reason)
        if not ok then report(conn, "on_close", err) end
    end
    self.handlers = { on_message = on_message, on_close = on_close }
    if self.state then
        -- what the listening servers call: the state's current app
        state.handlers = state.handlers or {
            on_message = function(conn, msg) return state.app.handlers.on_message(conn, msg) end,
            on_close = function(conn, reason) return state.app.handlers.on_close(conn, reason) end,
        }
        reload.commit(function() state.app = self end)
    end
    return self
end

--- app.current(a) -> the app that handles a's connections now: with a
--- kept state, the newest load's (state.app); else a itself.
function _M.current(a)
    local state = a.state
    return state and state.app or a
end

-- The addresses of a listen, as a list.
local function addresses(s)
    local addrs = s.listen or rtmp.options.listen or rtmp.settings.listen.default
    if type(addrs) ~= "table" then addrs = { addrs } end
    return addrs
end

local function addresses_text(addrs)
    local list = {}
    for i = 1, #addrs do list[i] = tostring(addrs[i]) end
    return table.concat(list, " ")
end

--- app:listen([settings]) -> server, ... (one per address) or nil, err:
--- rtmp.listen with the app's handlers on each address of settings.listen
--- (one, or a list; default: config.listen, else --listen, else 1935).
--- settings: any of rtmp.listen's but on_message and on_close; a setting
--- it lacks comes from the app's config when set there (not false).
--- With a kept state that listens already (an earlier load's), the same
--- servers: an address that changed is logged, it needs a restart.
function App:listen(settings)
    local s = {}
    for k, v in pairs(settings or {}) do s[k] = v end
    if s.on_message or s.on_close then
        error("app:listen: on_message and on_close are the app's (see app.messages, on_close)", 2)
    end
    local config = self.config
    for name in pairs(rtmp.settings) do
        local k = name:match("^[^.]*") -- "tls.cert" is read from the table tls
        if s[k] == nil and config[k] then s[k] = config[k] end
    end
    local addrs = addresses(s)
    if #addrs == 0 then error("app:listen: no address", 2) end
    local state = self.state
    if state and state.servers then
        local was, now = addresses_text(state.addrs), addresses_text(addrs)
        if was ~= now then
            log.warn("app:listen: listening on %s; %s needs a restart (a reload keeps the servers)", was, now)
        end
        return unpack(state.servers)
    end
    local handlers = state and state.handlers or self.handlers
    s.on_message, s.on_close = handlers.on_message, handlers.on_close
    local servers = {}
    for i = 1, #addrs do
        local one = {}  -- rtmp.listen keeps its table: one each
        for k, v in pairs(s) do one[k] = v end
        one.listen = addrs[i]
        local srv, err = rtmp.listen(one)
        if not srv then
            for j = 1, #servers do servers[j]:close() end
            return nil, err
        end
        servers[i] = srv
    end
    if state then state.servers, state.addrs = servers, addrs end
    return unpack(servers)
end

return _M
