-- http_api.lua: live.lua's HTTP side (docs/HTTP.md): with --http ADDR (or
-- live.config.http) the live server answers on ADDR
--   GET /metrics       Prometheus text format (connections, streams,
--                      publishers, players, bytes, per-stream bitrate and
--                      players, frames dropped for slow players, hook latency)
--   GET /api/streams   JSON, nginx-rtmp's stat page as the model
--   GET /api/clients   JSON, every RTMP connection and HTTP-FLV/WS-FLV player
--   GET|POST /api/drop?app=&name=[&clientid=]   disconnect the publisher of
--                      app/name, or that client of it, RTMP or HTTP (nginx-rtmp's
--                      control module: the body is the number dropped)
--   GET /APP/NAME.flv  HTTP-FLV of the stream (with Upgrade: websocket,
--                      WS-FLV), from its group: ?enhanced=1 for a player
--                      that takes Enhanced RTMP's codecs (else a legacy one)
--   GET /, /www/...    the player page (scripts/www/) and mpegts.js
-- Attached by live.lua like record.lua and relay.lua:
--   require("http_api").attach(live)
-- and from a script: http_api.routes(live) -> the routes, to add your own
-- and pass to rtmp.http.listen.

local rtmp = require "rtmp"

local M = {}

local format, concat, sort = string.format, table.concat, table.sort
local pairs, ipairs, type, tostring, tonumber = pairs, ipairs, type, tostring, tonumber

-- ---- JSON (what the API writes: strings, numbers, booleans, arrays, objects) ----

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

local function json(v, out)
    local t = type(v)
    if t == "table" then
        if v[1] ~= nil or next(v) == nil and getmetatable(v) == M.array then
            out[#out + 1] = "["
            for i, x in ipairs(v) do
                if i > 1 then out[#out + 1] = "," end
                json(x, out)
            end
            out[#out + 1] = "]"
        else
            local keys = {}
            for k in pairs(v) do keys[#keys + 1] = tostring(k) end
            sort(keys)
            out[#out + 1] = "{"
            for i, k in ipairs(keys) do
                if i > 1 then out[#out + 1] = "," end
                json(k, out)
                out[#out + 1] = ":"
                json(v[k], out)
            end
            out[#out + 1] = "}"
        end
    elseif t == "string" then
        out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c)
            return escapes[c] or format("\\u%04x", c:byte())
        end) .. '"'
    elseif t == "number" then
        out[#out + 1] = (v ~= v or v == math.huge or v == -math.huge) and "null"
            or math.type(v) == "integer" and tostring(v) or format("%.17g", v)
    elseif t == "boolean" then
        out[#out + 1] = tostring(v)
    else
        out[#out + 1] = "null"
    end
    return out
end
M.array = {} -- metatable of an empty table written as []
local function array(t) return setmetatable(t, M.array) end
function M.json(v) return concat(json(v, {})) end

-- ---- what the API follows ----

-- kept across reloads (rtmp.reload): the counters go on, the server stays
local kept = rtmp.keep("http_api", function()
    return {
        started = rtmp.now(),
        clients = setmetatable({}, { __mode = "k" }), -- conn -> { flashver, swfurl, tcurl, pageurl, since }
        closed = { bytes_in = 0, bytes_out = 0, dropped = 0, connections = 0 },
        rates = {}, -- stream key -> { t, bytes_in, bytes_out, bw_in, bw_out }
        hooks = {}, -- hook name -> { counts per bucket, sum, count }
    }
end)
local started, clients, closed, rates, hooks = kept.started, kept.clients, kept.closed, kept.rates, kept.hooks
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

local function observe(name, seconds)
    local h = hooks[name]
    if not h then
        h = { sum = 0, count = 0 }
        for i = 1, #BUCKETS do h[i] = 0 end
        hooks[name] = h
    end
    for i = 1, #BUCKETS do if seconds <= BUCKETS[i] then h[i] = h[i] + 1 end end
    h.sum, h.count = h.sum + seconds, h.count + 1
end

-- (a connection of rtmp.replay, a socket-free session, has no queue)
local function dropped_of(conn)
    local q = conn.closed == false and conn.queue and conn:queue()
    return q and q.dropped or 0
end

-- The stream's publisher connection (nil for a relay's or none).
local function publisher_conn(s) return s.publisher and s.publisher.conn end

-- Bytes the stream took in (its publisher's) and sent (its players', HTTP ones too).
local function stream_bytes(s)
    local pc = publisher_conn(s)
    local bin = pc and pc.bytes_in or 0
    local bout = 0
    for conn in pairs(s.viewers) do bout = bout + (conn.bytes_out or 0) end
    for _, p in ipairs(s.players:http_players()) do bout = bout + p.bytes_out end
    return bin, bout
end

-- Bitrates from a sample every second.
local function sample(live)
    local now = rtmp.now()
    for key, s in pairs(live.streams) do
        local bin, bout = stream_bytes(s)
        local r = rates[key]
        if r and now > r.t then
            r.bw_in = math.max(0, (bin - r.bytes_in) * 8 / (now - r.t))
            r.bw_out = math.max(0, (bout - r.bytes_out) * 8 / (now - r.t))
        end
        r = r or { bw_in = 0, bw_out = 0 }
        r.t, r.bytes_in, r.bytes_out = now, bin, bout
        rates[key] = r
    end
    for key in pairs(rates) do if not live.streams[key] then rates[key] = nil end end
end

-- ---- the answers ----

local function client_info(live, conn)
    local c = clients[conn] or {}
    local role, stream
    for key, s in pairs(live.streams) do
        if publisher_conn(s) == conn then role, stream = "publisher", key end
        if s.viewers[conn] then role, stream = role or "player", stream or key end
    end
    return {
        id = conn.id, addr = conn.peer, flashver = c.flashver, swfurl = c.swfurl, tcurl = c.tcurl,
        pageurl = c.pageurl, app = conn.app, time = c.since and rtmp.now() - c.since or 0,
        bytes_in = conn.bytes_in or 0, bytes_out = conn.bytes_out or 0, dropped = dropped_of(conn),
        publishing = role == "publisher", stream = stream, role = role or "connected", protocol = "rtmp",
    }
end

-- An HTTP player of stream s as /api lists clients: its id is its HTTP
-- connection's ("http N" in the log), protocol "http-flv" or "ws-flv".
local function http_client_info(s, p)
    return { id = p.id, addr = p.addr, app = s.app, bytes_in = 0, bytes_out = p.bytes_out, dropped = p.dropped,
             publishing = false, stream = s.key, role = "player", protocol = p.websocket and "ws-flv" or "http-flv" }
end

-- Codec information from the stream's cached metadata (onMetaData).
local function codec_info(s)
    for _, msg in ipairs(s.players:cached()) do
        local values = msg.type == 18 and msg.values
        if values then
            for _, v in ipairs(values) do
                if type(v) == "table" and (v.width or v.videocodecid or v.audiocodecid) then
                    return {
                        video = (v.width or v.videocodecid) and { width = v.width, height = v.height,
                            frame_rate = v.framerate, codec = v.videocodecid, data_rate = v.videodatarate } or nil,
                        audio = v.audiocodecid and { codec = v.audiocodecid, sample_rate = v.audiosamplerate,
                            channels = v.stereo == nil and nil or (v.stereo and 2 or 1),
                            data_rate = v.audiodatarate } or nil,
                    }
                end
            end
        end
    end
    return nil
end

function M.streams(live)
    local list = {}
    local keys = {}
    for key in pairs(live.streams) do keys[#keys + 1] = key end
    sort(keys)
    for _, key in ipairs(keys) do
        local s = live.streams[key]
        local r = rates[key] or { bw_in = 0, bw_out = 0 }
        local bin, bout = stream_bytes(s)
        local members = array({})
        local pc = publisher_conn(s)
        if pc then members[#members + 1] = client_info(live, pc) end
        for conn in pairs(s.viewers) do members[#members + 1] = client_info(live, conn) end
        for _, p in ipairs(s.players:http_players()) do members[#members + 1] = http_client_info(s, p) end
        list[#list + 1] = {
            app = s.app, name = s.name, time = s.since and rtmp.now() - s.since or 0,
            bw_in = r.bw_in, bw_out = r.bw_out, bytes_in = bin, bytes_out = bout,
            nclients = #members, players = s.players:count(), publishing = s.publisher ~= nil,
            codec = codec_info(s), clients = members,
        }
    end
    return { uptime = rtmp.now() - started, streams = array(list) }
end

function M.clients(live)
    local list = {}
    for _, conn in ipairs(rtmp.connections()) do
        if conn.role == "server" then list[#list + 1] = client_info(live, conn) end
    end
    for _, s in pairs(live.streams) do
        for _, p in ipairs(s.players:http_players()) do list[#list + 1] = http_client_info(s, p) end
    end
    sort(list, function(a, b) return a.id < b.id end) -- one id sequence for RTMP and HTTP
    return { clients = array(list) }
end

-- Prometheus's text format: a label value escaped.
local function label(v) return (tostring(v):gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" })) end

function M.metrics(live)
    local out = {}
    local function metric(name, kind, help, samples)
        out[#out + 1] = format("# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
        for _, sm in ipairs(samples) do
            out[#out + 1] = format("%s%s %s\n", name, sm[2] or "", format("%.17g", sm[1]))
        end
    end
    local conns = 0
    local bin, bout, dropped = closed.bytes_in, closed.bytes_out, closed.dropped
    for _, conn in ipairs(rtmp.connections()) do
        if conn.role == "server" then
            conns = conns + 1
            bin, bout, dropped = bin + (conn.bytes_in or 0), bout + (conn.bytes_out or 0), dropped + dropped_of(conn)
        end
    end
    local nstreams, publishers, players = 0, 0, 0
    local per_players, per_in, per_out, per_dropped, per_up = {}, {}, {}, {}, {}
    local keys = {}
    for key in pairs(live.streams) do keys[#keys + 1] = key end
    sort(keys)
    for _, key in ipairs(keys) do
        local s = live.streams[key]
        local l = format('{app="%s",name="%s"}', label(s.app), label(s.name))
        local r = rates[key] or { bw_in = 0, bw_out = 0 }
        local sd = 0
        for conn in pairs(s.viewers) do sd = sd + dropped_of(conn) end
        for _, p in ipairs(s.players:http_players()) do
            sd = sd + p.dropped
            bout, dropped = bout + p.bytes_out, dropped + p.dropped
        end
        nstreams = nstreams + 1
        if s.publisher then publishers = publishers + 1 end
        players = players + s.players:count()
        per_players[#per_players + 1] = { s.players:count(), l }
        per_in[#per_in + 1] = { r.bw_in / 8, l }
        per_out[#per_out + 1] = { r.bw_out / 8, l }
        per_dropped[#per_dropped + 1] = { sd, l }
        per_up[#per_up + 1] = { s.publisher and s.publisher.relay and 1 or 0, l } -- a pull relay's connection
    end
    metric("luartmp_uptime_seconds", "gauge", "Seconds since the live server started.", { { rtmp.now() - started } })
    metric("luartmp_connections", "gauge", "Open RTMP connections.", { { conns } })
    metric("luartmp_connections_closed_total", "counter", "RTMP connections closed.", { { closed.connections } })
    metric("luartmp_streams", "gauge", "Live streams (published or waited for).", { { nstreams } })
    metric("luartmp_publishers", "gauge", "Streams with a publisher.", { { publishers } })
    metric("luartmp_players", "gauge", "Players of every stream.", { { players } })
    metric("luartmp_received_bytes_total", "counter", "Bytes read from RTMP connections.", { { bin } })
    metric("luartmp_sent_bytes_total", "counter", "Bytes written to RTMP connections and HTTP-FLV and WS-FLV players.",
        { { bout } })
    metric("luartmp_dropped_frames_total", "counter",
        "Audio and video frames dropped for slow players (their queue over its bound).", { { dropped } })
    metric("luartmp_stream_players", "gauge", "Players of the stream.", per_players)
    metric("luartmp_stream_in_bytes_per_second", "gauge", "Bytes per second from the stream's publisher (1 s sample).", per_in)
    metric("luartmp_stream_out_bytes_per_second", "gauge", "Bytes per second to the stream's players (1 s sample).", per_out)
    metric("luartmp_stream_dropped_frames", "gauge", "Frames dropped for the stream's slow players now open.",
        per_dropped)
    metric("luartmp_stream_upstreams", "gauge", "Upstream connections feeding the stream (a pull relay's).", per_up)
    out[#out + 1] = "# HELP luartmp_hook_duration_seconds Time an application hook took to decide "
        .. "(waits included).\n# TYPE luartmp_hook_duration_seconds histogram\n"
    local names = {}
    for name in pairs(hooks) do names[#names + 1] = name end
    sort(names)
    for _, name in ipairs(names) do
        local h = hooks[name]
        for i, le in ipairs(BUCKETS) do
            out[#out + 1] = format('luartmp_hook_duration_seconds_bucket{hook="%s",le="%s"} %d\n', name,
                format("%g", le), h[i])
        end
        out[#out + 1] = format('luartmp_hook_duration_seconds_bucket{hook="%s",le="+Inf"} %d\n', name, h.count)
        out[#out + 1] = format('luartmp_hook_duration_seconds_sum{hook="%s"} %.17g\n', name, h.sum)
        out[#out + 1] = format('luartmp_hook_duration_seconds_count{hook="%s"} %d\n', name, h.count)
    end
    return concat(out)
end

--- http_api.drop(live, app, name[, clientid]) -> how many connections
--- were closed: the publisher of app/name, or the client clientid of it
--- (its publisher or a player: RTMP, HTTP-FLV or WS-FLV, one id sequence).
function M.drop(live, app_name, name, clientid)
    local s = live.streams[app_name .. "/" .. name]
    if not s then return 0 end
    local victims = {}
    local pc = publisher_conn(s)
    if clientid then
        if pc and pc.id == clientid then victims[1] = pc end
        for conn in pairs(s.viewers) do if conn.id == clientid then victims[#victims + 1] = conn end end
    elseif pc then
        victims[1] = pc
    end
    for _, conn in ipairs(victims) do conn:close("dropped through /api/drop") end
    local http = clientid and s.players:end_http("dropped through /api/drop", clientid) or 0
    return #victims + http
end

local JSON = { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-cache" }
local TEXT = { ["Content-Type"] = "text/plain" }

-- ---- HTTP-FLV, WS-FLV and the page ----

local FLV = { ["Content-Type"] = "video/x-flv", ["Cache-Control"] = "no-cache",
              ["Access-Control-Allow-Origin"] = "*" }

--- http_api.flv(live, req, app, name) -> the answer streaming app/name's
--- group as FLV (HTTP-FLV, or WS-FLV for a WebSocket request). A player
--- that joins before the publisher waits for it, as an RTMP one (the
--- stream is made: live.stream); the stream's end (unpublish) ends the
--- answer, and a stream nobody publishes is forgotten when its last
--- player leaves. 400 for an app or name no RTMP client could play: empty
--- segments, ".", "..", control characters, "?".
function M.flv(live, req, app_name, name)
    for seg in (app_name .. "/" .. name .. "/"):gmatch("([^/]*)/") do
        if seg == "" or seg == "." or seg == ".." or seg:find("[%c?]") then
            return 400, TEXT, "bad stream name\n"
        end
    end
    local s = live.stream(app_name, name)
    -- the slow-reader settings are live.config's (over rtmp.options), as its RTMP players'
    return 200, FLV, s.players, setmetatable({ legacy = req.query.enhanced ~= "1", on_close = function(_, bytes, dropped)
        closed.bytes_out, closed.dropped = closed.bytes_out + bytes, closed.dropped + dropped
        live.forget_if_unused(s)
    end }, { __index = live.config })
end

-- Where the page and mpegts.js are: scripts/www next to this file, and
-- mpegts.js from tools/node (tools/deps.sh installs it there).
local here = (package.searchpath("http_api", package.path) or "scripts/http_api.lua"):match("^(.-)[^/]*$")
M.www = here .. "www/"
M.mpegts = { here .. "../tools/node/node_modules/mpegts.js/dist/mpegts.js",
             "/usr/share/javascript/mpegts.js/mpegts.js", "/usr/share/nodejs/mpegts.js/dist/mpegts.js" }
local TYPES = { html = "text/html; charset=utf-8", js = "text/javascript", css = "text/css", map = "application/json" }

local function file_answer(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local data = f:read("a")
    f:close()
    return 200, { ["Content-Type"] = TYPES[path:match("%.(%w+)$")] or "application/octet-stream",
                  ["Cache-Control"] = "no-cache" }, data
end

--- http_api.www_file(path) -> the answer for a file of the page (/www/NAME).
function M.www_file(path)
    local rel = path:match("^/www/(.+)$")
    if not rel or rel:find("..", 1, true) or rel:find("//", 1, true) then return 404, TEXT, "not found\n" end
    if rel == "mpegts.js" or rel == "mpegts.js.map" then
        for _, candidate in ipairs(M.mpegts) do
            local st, h, body = file_answer(rel == "mpegts.js" and candidate or candidate .. ".map")
            if st then return st, h, body end
        end
        return 404, TEXT, "mpegts.js is not installed: run tools/deps.sh (npm ci --prefix tools/node), "
            .. "or put mpegts.js in one of: " .. concat(M.mpegts, ", ") .. "\n"
    end
    local st, h, body = file_answer(M.www .. rel)
    if st then return st, h, body end
    return 404, TEXT, "not found\n"
end

--- http_api.routes(live) -> the routes table for rtmp.http.listen.
function M.routes(live)
    return {
        ["/metrics"] = function() return 200, { ["Content-Type"] = "text/plain; version=0.0.4" }, M.metrics(live) end,
        ["/api/streams"] = function() return 200, JSON, M.json(M.streams(live)) end,
        ["/api/clients"] = function() return 200, JSON, M.json(M.clients(live)) end,
        ["/api/drop"] = function(req)
            if req.method ~= "GET" and req.method ~= "POST" then return 405, { Allow = "GET, POST" } end
            local q = req.query
            if req.method == "POST" and (req.headers["content-type"] or ""):find("x-www-form-urlencoded", 1, true) then
                for k, v in req.body:gmatch("([^&=]+)=([^&]*)") do q[k] = q[k] or v end
            end
            local clientid = q.clientid and tonumber(q.clientid)
            if not q.app or not q.name or (q.clientid and not clientid) then
                return 400, { ["Content-Type"] = "text/plain" }, "want app, name and optionally clientid\n"
            end
            return 200, { ["Content-Type"] = "text/plain" }, tostring(M.drop(live, q.app, q.name, clientid))
        end,
        ["/www/*"] = function(req) return M.www_file(req.path) end,
        ["/*"] = function(req) -- the page, and /APP/NAME.flv
            if req.path == "/" or req.path == "/index.html" then return M.www_file("/www/index.html") end
            local app_name, name = req.path:match("^/(.+)/([^/]+)%.flv$")
            if app_name then return M.flv(live, req, app_name, name) end
            return 404, TEXT, "not found\n"
        end,
    }
end

--- http_api.attach(live): follow live's connections and hooks; with
--- live.config.http or --http ADDR, listen there once live starts.
function M.attach(live)
    local server = live.app
    -- what a client said at connect (nginx-rtmp's stat fields), and when;
    -- only while the API is served (a connection from before a reload
    -- that turned it on is listed without them)
    local on_connect = server.on_connect
    server.on_connect = function(conn, app_name, msg, ...)
        local obj = msg and msg.args and msg.args[1]
        if not kept.server then -- no API: nothing to keep
        elseif type(obj) == "table" then
            clients[conn] = { flashver = obj.flashVer, swfurl = obj.swfUrl, tcurl = obj.tcUrl,
                              pageurl = obj.pageUrl, since = rtmp.now() }
        else
            clients[conn] = { since = rtmp.now() }
        end
        local t0 = rtmp.now()
        local r = table.pack(on_connect(conn, app_name, msg, ...))
        observe("on_connect", rtmp.now() - t0)
        return table.unpack(r, 1, r.n)
    end
    for _, name in ipairs({ "on_publish", "on_play" }) do
        local fn = server[name]
        server[name] = function(...)
            local t0 = rtmp.now()
            local r = table.pack(fn(...))
            observe(name, rtmp.now() - t0)
            return table.unpack(r, 1, r.n)
        end
    end
    local on_close = server.on_close
    server.on_close = function(conn, reason)
        closed.connections = closed.connections + 1
        closed.bytes_in = closed.bytes_in + (conn.bytes_in or 0)
        closed.bytes_out = closed.bytes_out + (conn.bytes_out or 0)
        return on_close(conn, reason)
    end
    live.watch{
        publish = function(s) s.since = rtmp.now() end,
        play = function(s, ns) local c = clients[ns.conn]; if c then c.playing = s.key end end,
        stop = function(s, ns)
            closed.dropped = closed.dropped + dropped_of(ns.conn)
        end,
        -- HTTP-FLV answers end with the stream (rtmp.replay's groups have no HTTP players)
        unpublish = function(s) s.players:end_http("unpublished") end,
    }
    local start = live.start
    live.config.http = live.config.http or false
    live.start = function(opts)
        local servers = start(opts)
        local addr = live.config.http or rtmp.options.http
        if addr and kept.server then -- a reload: the same server, this load's routes from its commit
            if kept.addr ~= addr then
                rtmp.log.warn("--http: listening on %s; %s needs a restart", tostring(kept.addr), tostring(addr))
            end
            local routes = M.routes(live)
            require("rtmp.reload").commit(function()
                kept.options.routes = routes
                kept.timer:stop()
                kept.timer = rtmp.timer(1, function() sample(live) end, 1)
            end)
        elseif addr then
            local options = { listen = addr, routes = M.routes(live) } -- the server reads routes from it
            local srv, err = rtmp.http.listen(options)
            if not srv then rtmp.fail("--http " .. tostring(addr) .. ": " .. tostring(err)) end
            kept.server, kept.addr, kept.options = srv, addr, options
            kept.timer = rtmp.timer(1, function() sample(live) end, 1)
        end
        M.server, M.timer = kept.server, kept.timer
        return servers
    end
end

return M
