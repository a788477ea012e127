-- live.lua: the default luartmp script, a live server.
--
-- One publisher per stream name, any number of players.  Players that
-- join late get the cached metadata and sequence headers, then the media
-- from the last keyframe.  Media is handed to a C group that chunks each
-- message once and queues the same bytes to every player: Lua runs once
-- per published message, never once per player.
--
-- Run it:      luartmp [--listen 1935] scripts/live.lua
-- Reuse it:    local live = require "live"
--              live.hooks.on_publish = function(conn, app, name) ... end
--              live.start{ listen = "1935", takeover = true }
--
-- Every command handler is in live.commands and can be replaced; hooks
-- (on_connect, on_publish, on_play, on_close) accept or refuse.

local rtmp = require "rtmp"
local relay = require "relay" -- push and pull relays (config.push, config.pull)

local null = rtmp.null
local log = rtmp.log
local record = require "record" -- publish(name, "record"/"append") to FLV files (config.record_dir)

local M = {
    config = {
        chunk_size = 4096,        -- our outgoing chunk size, announced after connect
        window = 2500000,         -- Window Acknowledgement Size we announce
        peer_bandwidth = 2500000, -- Set Peer Bandwidth we announce (limit type dynamic)
        record_dir = false,       -- where publish type record/append writes <app>/<name>.flv (false: off)
        takeover = false,         -- a second publisher of a name replaces the first (else BadName)
        gop_max_bytes = 32 * 1024 * 1024, -- stop caching a GOP past this size
        push = false,             -- URLs (or function(app, name) -> URLs) to republish each published stream to
        pull = false,             -- URL (or function(app, name) -> URL) to play a stream nobody publishes here from
        relay = {},               -- relay settings: retry_min, retry_max, retry_factor, timeout (see relay.lua)
        -- Slow and stalled players (docs/SLOW.md): each player's queue is bounded in bytes and
        -- in media time; past a bound, non-key video is dropped until the next keyframe, then
        -- whole GOPs (audio and video; sequence headers and metadata always go), and a player
        -- over a bound for max_queue_stall seconds is disconnected, each step logged.
        max_queue_bytes = 4 * 1024 * 1024, -- bytes queued to a player (0: no bound)
        max_queue_time = 10,      -- seconds of media queued to a player (0: no bound)
        max_queue_stall = 30,     -- seconds over a bound before the player is closed (0: never)
        send_buffer = 0,          -- SO_SNDBUF of each connection (0: the kernel's autotuning,
                                  -- up to 4 MiB of kernel memory per stalled player)
    },
    hooks = {},     -- on_connect(conn, msg), on_publish(conn, app, name), on_play(conn, app, name),
                    -- on_close(conn, reason): return false, "reason" to refuse;
                    -- on_media(conn, msg, stream): each published audio/video message
                    -- before it is cached and fanned out; return false to drop it
    commands = {},  -- command name -> function(conn, msg)
    streams = {},   -- "app/name" -> stream
    replies = {},   -- what the server says, each piece replaceable (a profile,
                    -- docs/QUIRKS.md); the stream state is kept by the commands:
                    -- controls(conn), result(conn, msg, app, encoding): connect;
                    -- createStream(conn, msg, sid); publish(conn, msg, sid, name);
                    -- play(conn, msg, sid, name, send_cache): call send_cache()
                    -- where the cached metadata and media go (else they follow);
                    -- publish_notify(conn, sid, name), unpublish_notify(conn, sid,
                    -- name): to a player when its stream's publisher comes or goes;
                    -- deleteStream(conn, msg, sid, role), closeStream(conn, msg,
                    -- sid, role): role "publish", "play" or nil (the stream did
                    -- neither) -- sent after the stream was left
}

local commands, hooks, config, streams, replies = M.commands, M.hooks, M.config, M.streams, M.replies

-- ---- replies ----

local function status(level, code, description, extra)
    local info = { level = level, code = code, description = description }
    for k, v in pairs(extra or {}) do info[k] = v end
    return info
end

local function on_status(conn, sid, level, code, description, extra)
    return conn:command({ stream = sid, csid = 5 }, "onStatus", 0, null, status(level, code, description, extra))
end

local function result(conn, msg, ...)
    return conn:command({ stream = msg.stream }, "_result", msg.txn, ...)
end

local function call_error(conn, msg, code, description)
    if msg.txn and msg.txn > 0 then
        return conn:command({ stream = msg.stream }, "_error", msg.txn, null, status("error", code, description))
    end
end

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

-- A stream name without its query string ("key?token=..." -> "key").
local function stream_name(s)
    if type(s) ~= "string" then return nil end
    return (s:match("^([^?]*)"))
end

-- ---- streams ----

local function get_stream(app, name, create)
    local key = app .. "/" .. name
    local s = streams[key]
    if not s and create then
        s = { key = key, app = app, name = name, players = rtmp.group(), gop = {}, gop_bytes = 0 }
        streams[key] = s
    end
    return s
end

local function forget_if_unused(s)
    if not s.publisher and s.players:count() == 0 then
        streams[s.key] = nil
    end
end

local function clear_cache(s)
    s.metadata, s.video_header, s.audio_header = nil, nil, nil
    s.gop, s.gop_bytes = {}, 0
end

-- Call send(msg) for what a player needs to start decoding: metadata,
-- sequence headers, and the current GOP from its keyframe on.
function M.each_cached(s, send)
    if s.metadata then send(s.metadata) end
    if s.video_header then send(s.video_header) end
    if s.audio_header then send(s.audio_header) end
    for i = 1, #s.gop do send(s.gop[i]) end
end

local function send_cache(s, conn, sid)
    M.each_cached(s, function(msg) conn:send({ stream = sid }, msg) end)
end

local function unpublish(conn, sid, s)
    conn.streams[sid] = nil
    if s.publisher ~= conn then return end
    s.publisher, s.publisher_sid = nil, nil
    record.unpublished(s)
    log.info("unpublish %s", s.key)
    for _, p in ipairs(s.players:members()) do
        local psid = p.playing and p.playing[s.key]
        if psid then replies.unpublish_notify(p, psid, s.name) end
    end
    relay.unpublished(s)
    clear_cache(s)
    forget_if_unused(s)
end
M.unpublish = unpublish

local function stop_playing(conn, sid, s)
    conn.streams[sid] = nil
    conn.playing[s.key] = nil
    s.players:remove(conn)
    forget_if_unused(s)
    relay.left(s)
end

-- Leave whatever conn does on stream id sid; returns the role it had
-- ("publish", "play"), or the one it had before an earlier closeStream,
-- or nil.
local function close_stream(conn, sid)
    local entry = conn.streams and conn.streams[sid]
    if type(entry) ~= "table" then return conn.left and conn.left[sid] end
    if entry.role == "publish" then
        unpublish(conn, sid, entry.stream)
    else
        stop_playing(conn, sid, entry.stream)
    end
    conn.left = conn.left or {}
    conn.left[sid] = entry.role
    return entry.role
end

-- ---- commands ----

function commands.connect(conn, msg)
    local obj = msg.args[1]
    local app = type(obj) == "table" and obj.app or ""
    app = stream_name(app) or ""
    app = app:gsub("/+$", "")
    if hooks.on_connect then
        local ok, err = hooks.on_connect(conn, msg, app)
        if ok == false then
            conn:command(nil, "_error", msg.txn, null,
                status("error", "NetConnection.Connect.Rejected", err or "Connection rejected."))
            conn:close("connect rejected: " .. tostring(err))
            return
        end
    end
    conn.app = app
    conn.streams = conn.streams or {}  -- stream id -> true (created) or { role =, stream = }
    conn.playing = conn.playing or {}  -- "app/name" -> stream id it plays on
    conn.next_sid = conn.next_sid or 1
    replies.controls(conn)
    replies.result(conn, msg, app, type(obj) == "table" and tonumber(obj.objectEncoding) or 0)
    conn:log("info", "connect app=%s", app)
end

-- The control messages sent on connect, before the _result.
function replies.controls(conn)
    conn:set_window_ack_size(config.window)
    conn:set_peer_bandwidth(config.peer_bandwidth, "dynamic")
    conn:set_chunk_size(config.chunk_size)
end

-- The connect _result (and whatever a profile sends with it).
function replies.result(conn, msg, app, encoding)
    conn:command(nil, "_result", msg.txn,
        { fmsVer = "FMS/3,0,1,123", capabilities = 31.0 },
        status("status", "NetConnection.Connect.Success", "Connection succeeded.", { objectEncoding = encoding }))
end

function commands.createStream(conn, msg)
    if not conn.app then return call_error(conn, msg, "NetConnection.Call.Failed", "connect first") end
    local sid = conn.next_sid
    conn.next_sid = sid + 1
    conn.streams[sid] = true -- created, not yet publishing or playing
    replies.createStream(conn, msg, sid)
end

function replies.createStream(conn, msg, sid)
    result(conn, msg, null, sid)
end

function commands.releaseStream(conn, msg)
    result(conn, msg, null)
end

function commands.FCPublish(conn, msg)
    local name = stream_name(msg.args[2]) or ""
    conn:command(nil, "onFCPublish", 0, null, status("status", "NetStream.Publish.Start", name))
end

function commands.FCUnpublish(conn, msg)
    local name = stream_name(msg.args[2]) or ""
    conn:command(nil, "onFCUnpublish", 0, null, status("status", "NetStream.Unpublish.Success", name))
end

-- The stream name of a publish or play, once the hook agrees; else the
-- refusal has been sent and nil is returned.
local function admit(conn, msg, hook, nameless_code, denied_code)
    local name = stream_name(msg.args[2])
    if not conn.app or not name or name == "" then
        on_status(conn, msg.stream, "error", nameless_code, "No stream name.")
        return nil
    end
    if hook then
        local ok, err = hook(conn, conn.app, name)
        if ok == false then
            on_status(conn, msg.stream, "error", denied_code, err or "Denied.")
            return nil
        end
    end
    return name
end

function commands.publish(conn, msg)
    local sid = msg.stream
    local name = admit(conn, msg, hooks.on_publish, "NetStream.Publish.BadName", "NetStream.Publish.Denied")
    if not name then return end
    local s = get_stream(conn.app, name, true)
    if s.publisher and s.publisher ~= conn then
        if not config.takeover then
            conn:log("info", "publish %s refused: already publishing", s.key)
            return on_status(conn, sid, "error", "NetStream.Publish.BadName", s.name .. " is already publishing.")
        end
        local old = s.publisher
        unpublish(old, s.publisher_sid, s)
        old:close("replaced by a new publisher of " .. s.key)
        s = get_stream(conn.app, name, true)
    end
    s.publisher, s.publisher_sid = conn, sid
    conn.streams[sid] = { role = "publish", stream = s }
    record.published(M, s, msg.args[3])
    replies.publish(conn, msg, sid, name)
    conn:log("info", "publish %s", s.key)
    relay.published(M, s)
    -- players already waiting for this name
    for _, p in ipairs(s.players:members()) do
        replies.publish_notify(p, p.playing[s.key], name)
    end
end

function replies.publish(conn, msg, sid, name)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "status", "NetStream.Publish.Start", name .. " is now published.", { details = name })
end

function replies.publish_notify(conn, sid, name)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "status", "NetStream.Play.PublishNotify", name .. " is now published.")
end

function replies.unpublish_notify(conn, sid, name)
    conn:user_control("stream_eof", sid)
    on_status(conn, sid, "status", "NetStream.Play.UnpublishNotify", name .. " is now unpublished.")
end

function commands.play(conn, msg)
    local sid = msg.stream
    local name = admit(conn, msg, hooks.on_play, "NetStream.Play.StreamNotFound", "NetStream.Play.Failed")
    if not name then return end
    local s = get_stream(conn.app, name, true)
    conn.streams[sid] = { role = "play", stream = s }
    conn.playing[s.key] = sid
    local cached = false
    replies.play(conn, msg, sid, name, function()
        if not cached then cached = true; send_cache(s, conn, sid) end
    end)
    if not cached then send_cache(s, conn, sid) end
    s.players:add(conn, sid)
    conn:log("info", "play %s%s", s.key, s.publisher and "" or " (waiting for a publisher)")
    relay.wanted(M, s)
end

function replies.play(conn, msg, sid, name, send_cache)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "status", "NetStream.Play.Reset", "Playing and resetting " .. name .. ".", { details = name })
    on_status(conn, sid, "status", "NetStream.Play.Start", "Started playing " .. name .. ".", { details = name })
    conn:data({ stream = sid }, "|RtmpSampleAccess", true, true)
    send_cache()
end

function commands.deleteStream(conn, msg)
    local sid = tonumber(msg.args[2])
    if not sid then return end
    sid = math.tointeger(sid) or sid
    local role = close_stream(conn, sid)
    if conn.left then conn.left[sid] = nil end
    replies.deleteStream(conn, msg, sid, role)
end

function commands.closeStream(conn, msg)
    replies.closeStream(conn, msg, msg.stream, close_stream(conn, msg.stream))
end

local function ignore() end
replies.deleteStream = ignore
replies.closeStream = ignore

function commands.getStreamLength(conn, msg)
    result(conn, msg, null, 0)
end

-- Live streams cannot pause or seek; acknowledge so clients go on.
function commands.pause(conn, msg)
    local paused = msg.args[2]
    on_status(conn, msg.stream, "status", paused and "NetStream.Pause.Notify" or "NetStream.Unpause.Notify",
        paused and "Paused live stream." or "Unpaused live stream.")
end

commands.receiveAudio = ignore
commands.receiveVideo = ignore
commands.FCSubscribe = ignore
commands.FCUnsubscribe = ignore
commands._checkbw = ignore

-- ---- media and data from publishers ----

local function publishing(conn, msg)
    local entry = conn.streams and conn.streams[msg.stream]
    if type(entry) == "table" and entry.role == "publish" then return entry.stream end
end

local function on_data(conn, msg)
    local s = publishing(conn, msg)
    if not s or not msg.values then return end
    record.write(s, msg)
    local values = msg.values
    local first = 1
    if values[1] == "@setDataFrame" then first = 2 end
    if values[first] ~= "onMetaData" then
        s.players:send(msg)
        relay.forward(s, msg)
        return
    end
    -- Cache the metadata as players must see it: without @setDataFrame.
    local payload = rtmp.amf0.encode(table.unpack(values, first, values.n))
    s.metadata = rtmp.message({ type = "data", timestamp = 0 }, payload)
    s.players:send(s.metadata)
    relay.forward(s, s.metadata)
end

local function on_media(conn, msg)
    local s = publishing(conn, msg)
    if not s then return end
    if hooks.on_media and hooks.on_media(conn, msg, s) == false then return end
    if msg.length == 0 then return end -- no codec byte, no frame: nothing to cache or forward
    record.write(s, msg)
    if msg.sequence_header then
        if msg.type == 9 then s.video_header = msg else s.audio_header = msg end
    elseif msg.type == 9 and msg.keyframe then
        s.gop, s.gop_bytes = { msg }, msg.length
    elseif #s.gop > 0 then
        if s.gop_bytes + msg.length <= config.gop_max_bytes then
            s.gop[#s.gop + 1] = msg
            s.gop_bytes = s.gop_bytes + msg.length
        end
    end
    s.players:send(msg)
    relay.forward(s, msg)
end

-- A published aggregate (type 22): split, and each sub-message goes the
-- way it would have gone alone (on_media hook, GOP cache, fan-out; or the
-- data path), so players and late joiners get plain audio and video.
local function on_aggregate(conn, msg)
    if not publishing(conn, msg) then return end
    local subs, err = msg:split()
    if not subs then
        conn:log("warn", "aggregate dropped: %s", err)
        return
    end
    for _, m in ipairs(subs) do
        local t = m.type
        if t == 8 or t == 9 then
            on_media(conn, m)
        elseif t == 18 or t == 15 then
            on_data(conn, m)
        end
    end
end

-- ---- dispatch ----

function M.on_message(conn, msg)
    local kind = msg.type_name
    if kind == "audio" or kind == "video" then
        return on_media(conn, msg)
    elseif kind == "aggregate" then
        return on_aggregate(conn, msg)
    elseif kind == "command" or kind == "command3" then
        if msg.decode_error then
            conn:log("warn", "undecodable command: %s", msg.decode_error)
            -- a caller waiting for an answer gets one when its name and
            -- transaction id are readable
            local name, txn = command_head(msg)
            if txn then
                call_error(conn, { stream = msg.stream, txn = txn }, "NetConnection.Call.Failed",
                    "Undecodable " .. name .. ": " .. msg.decode_error .. ".")
            end
            return
        end
        if type(msg.name) ~= "string" or math.type(msg.txn) == nil then
            conn:log("warn", "malformed command: %s", type(msg.name) ~= "string" and "no command name"
                or "no transaction id")
            return
        end
        local handler = commands[msg.name]
        if handler then
            return handler(conn, msg)
        end
        conn:log("debug", "no handler for command %s", tostring(msg.name))
        return call_error(conn, msg, "NetConnection.Call.Failed", "Method not found (" .. tostring(msg.name) .. ").")
    elseif msg.decode_error then
        -- data, protocol control, shared objects: dropped, and said why
        conn:log("warn", "undecodable %s: %s", kind, msg.decode_error)
    elseif kind == "data" or kind == "data3" then
        return on_data(conn, msg)
    end
    -- protocol control: the engine already applied its defaults
end

function M.on_close(conn, reason)
    if conn.streams then
        local sids = {}
        for sid in pairs(conn.streams) do sids[#sids + 1] = sid end
        for _, sid in ipairs(sids) do close_stream(conn, sid) end
    end
    if hooks.on_close then hooks.on_close(conn, reason) end
end

-- Start listening.  opts: listen address (default: --listen, else 1935),
-- takeover, and any rtmp.listen setting.
function M.start(opts)
    opts = opts or {}
    for k, v in pairs(opts) do
        if config[k] ~= nil then config[k] = v end
    end
    local addrs = opts.listen or rtmp.options.listen or "1935"
    if type(addrs) ~= "table" then addrs = { addrs } end
    local servers = {}
    for _, addr in ipairs(addrs) do
        local settings = {}
        for k, v in pairs(opts) do settings[k] = v end
        settings.listen = addr
        for _, k in ipairs({ "max_queue_bytes", "max_queue_time", "max_queue_stall", "send_buffer" }) do
            settings[k] = config[k]
        end
        settings.on_message = M.on_message
        settings.on_close = M.on_close
        local srv, err = rtmp.listen(settings)
        if not srv then error(err, 2) end
        servers[#servers + 1] = srv
    end
    return servers
end

if ... ~= "live" then -- run as the main script, not required as a module
    M.start()
end
return M
