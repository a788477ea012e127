-- notify.lua: nginx-rtmp's notifications for the live server.  Each event
-- with a URL is POSTed there as application/x-www-form-urlencoded, with the
-- fields nginx-rtmp's notify module sends, and its answer has nginx-rtmp's
-- meaning, so an authorisation backend written for nginx-rtmp works
-- unchanged (docs/NOTIFY.md):
--
--   luartmp --notify on_publish=http://auth/publish --notify on_play=http://auth/play scripts/live.lua
--   live.config.notify = { on_publish = "http://auth/publish", on_done = "http://auth/done" }
--
-- on_connect, on_publish, on_play wait for the answer (the connection's
-- input held, within rtmp.app's hook_timeout): 2xx allows; 3xx with a
-- Location redirects (rtmp:// or rtmps://: a publish is also pushed there,
-- a play pulled from there, by a relay; another Location renames the stream,
-- or the app for on_connect); any other status, or no answer, closes the
-- connection, as nginx-rtmp does.  on_update repeats every
-- notify_update_timeout seconds while a stream publishes or plays (a refusal
-- closes it); on_publish_done, on_play_done, on_done, on_record_done and
-- on_disconnect are sent and not waited for.
--
-- scripts/live.lua attaches it (notify.attach(live)); it wraps live.app's
-- events, so it asks before live.hooks and live.lua's own policy, as the
-- notify module runs before nginx-rtmp's live module.

local rtmp = require "rtmp"
local app = require "rtmp.app"
local record = require "record"

local log = rtmp.log
local fmt, concat = string.format, table.concat
local pack, unpack = table.pack, table.unpack
local type, pairs, ipairs, tostring, tointeger = type, pairs, ipairs, tostring, math.tointeger

local M = {}

--- The events, as nginx-rtmp's directives name them.
M.EVENTS = { "on_connect", "on_disconnect", "on_publish", "on_play", "on_publish_done", "on_play_done",
             "on_done", "on_record_done", "on_update" }
local KNOWN = {}
for _, e in ipairs(M.EVENTS) do KNOWN[e] = true end

--- live.config fields notify adds (nginx-rtmp's directives of the same names).
M.defaults = {
    notify = false,               -- { on_publish = URL, ... } (over --notify EVENT=URL)
    notify_method = "post",       -- "post" (a form body) or "get" (the form as the query string)
    notify_update_timeout = 30,   -- seconds between on_update calls (0: none)
    notify_update_strict = false, -- on_update: anything but 2xx closes (else 3xx passes too)
}

-- What nginx-rtmp keeps of the connect command's strings (ngx_rtmp_connect_t):
-- flashVer in 32 bytes, the rest in 256.
local MAX_FLASHVER, MAX_NAME = 31, 255

-- ---- forms ----

-- Percent-encode all but the unreserved characters (what nginx's
-- NGX_ESCAPE_ARGS escapes decodes to the same values).
local function escape(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(c) return fmt("%%%02X", c:byte()) end))
end

-- The form of fields ({ name, value } in order), then the stream's own
-- query string as it came (nginx-rtmp appends it unchanged).
local function form(fields, args)
    local parts = {}
    for i, f in ipairs(fields) do parts[i] = f[1] .. "=" .. escape(f[2]) end
    local s = concat(parts, "&")
    if args and args ~= "" then s = s .. "&" .. args end
    return s
end

local function cut(s, n)
    if type(s) ~= "string" then return "" end
    return #s > n and s:sub(1, n) or s
end

-- An AMF number as nginx-rtmp prints it (a C cast to uint32_t).
local function u32(x)
    if type(x) ~= "number" or x ~= x then return 0 end
    local n = tointeger(x >= 0 and math.floor(x) or math.ceil(x))
    return n and n & 0xFFFFFFFF or 0
end

-- The client's address without its port (nginx's addr_text).
local function addr(conn)
    local peer = conn.peer or ""
    return peer:match("^%[(.*)%]:%d+$") or peer:match("^(.*):%d+$") or peer
end

-- ---- the notifier of one live server ----

local N = {}
N.__index = N

-- The URL of event (live.config.notify over --notify), or nil.
function N:url(event)
    local t = self.live.config.notify
    if t then
        if type(t) ~= "table" then error("live.config.notify must be a table { on_publish = URL, ... }", 0) end
        for k, v in pairs(t) do
            if not KNOWN[k] then error("live.config.notify: no event " .. tostring(k) .. " (want one of "
                .. concat(M.EVENTS, ", ") .. ")", 0) end
            if v and type(v) ~= "string" then error("live.config.notify." .. k .. " must be a URL", 0) end
        end
        if t[event] ~= nil then return t[event] or nil end
    end
    return self.cli[event]
end

--- notify:enabled() -> whether any event has a URL (live.config.notify
--- or --notify): without one, nothing is followed per connection.
function N:enabled()
    for event in pairs(KNOWN) do if self:url(event) then return true end end
    return false
end

-- The fields every notification starts with (nginx-rtmp's
-- ngx_rtmp_netcall_http_format_session), then `more`.
function N:session(conn, more)
    local i = self.info[conn] or {} -- none: connected while no event had a URL
    local f = { { "app", i.app or cut(conn.app or "", MAX_NAME) }, { "flashver", i.flashver or "" }, { "swfurl", i.swfurl or "" },
                { "tcurl", i.tcurl or "" }, { "pageurl", i.pageurl or "" }, { "addr", addr(conn) },
                { "clientid", tostring(conn.id) } }
    for _, x in ipairs(more) do f[#f + 1] = x end
    return f
end

-- rtmp.http.request's table for event's notification.
function N:request(event, url, fields, args)
    local body = form(fields, args)
    local t = { url = url, headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } }
    local method = self.live.config.notify_method
    if method == "get" then
        t.method = "GET"
        t.url = url .. (url:find("?", 1, true) and "&" or "?") .. body
    elseif method == "post" then
        t.method, t.body = "POST", body
    else
        error('live.config.notify_method must be "post" or "get", not ' .. tostring(method), 0)
    end
    return t
end

-- A notification nothing waits for (done, record_done, disconnect).
function N:send(conn, event, fields, args)
    local url = self:url(event)
    if not url then return end
    local id = conn.id
    local req, err = rtmp.http.start(self:request(event, url, fields, args), function(res, why)
        if not res then
            log.warn("conn=%s notify %s %s: %s", tostring(id), event, url, why)
        else
            log.debug("conn=%s notify %s %s: %d", tostring(id), event, url, res.status)
        end
    end)
    if not req then log.warn("conn=%s notify %s %s: %s", tostring(id), event, url, err) end
end

-- A notification whose answer decides (on_connect, on_publish, on_play):
-- "allow", or "redirect" and the Location, or nil and why it refuses
-- (the connection is then closed, as nginx-rtmp closes it).
function N:ask(conn, event, url, fields, args)
    local res, err = rtmp.http.request(self:request(event, url, fields, args))
    local why
    if not res then
        why = err
    else
        local class = res.status // 100
        conn:log("info", "notify %s %s: %d%s", event, url, res.status,
            res.headers.location and (" Location " .. res.headers.location) or "")
        if class == 2 then return "allow" end
        if class == 3 then
            -- nginx-rtmp: a 3xx without Location allows as is
            if res.headers.location and res.headers.location ~= "" then return "redirect", res.headers.location end
            return "allow"
        end
        why = "HTTP " .. res.status
    end
    conn:log("info", "notify %s refused (%s): the connection is closed, as nginx-rtmp does", event, why)
    conn:close("notify " .. event .. ": " .. why)
    return nil, why
end

local function is_relay(url) return url:lower():match("^rtmps?://") ~= nil end

-- The app a connect redirect gave conn, on its streams too.
function N:rename_app(conn, ns)
    local i = self.info[conn]
    if i and i.app_moved then
        conn.app = i.app
        ns.app = i.app
    end
end

-- ---- on_update ----

-- The stream's last media timestamp as far as the server knows it (the
-- newest message of its late-join cache; 0 before any).
local function timestamp(ns)
    local s = ns.live
    if not s or not s.players then return 0 end
    local cached = s.players:cached()
    local last = cached[#cached]
    return last and u32(last.timestamp) or 0
end

-- Every notify_update_timeout seconds while ns publishes or plays:
-- update_publish / update_play; a refusal closes the connection.
function N:start_updates(conn, ns, kind)
    local every = self.live.config.notify_update_timeout
    if not self:url("on_update") or type(every) ~= "number" or every <= 0 then return end
    local u = { started = rtmp.now() }
    self.updates[ns] = u
    local function tick()
        if self.updates[ns] ~= u or conn.closed then return end
        local url = self:url("on_update")
        if not url then return end
        local fields = self:session(conn, { { "call", "update_" .. kind },
            { "time", tostring(math.floor(rtmp.now() - u.started)) }, { "timestamp", tostring(timestamp(ns)) },
            { "name", ns.notify_name } })
        local req, err = rtmp.http.start(self:request("on_update", url, fields, ns.notify_args), function(res, why)
            u.req = nil
            if self.updates[ns] ~= u then return end
            local class = res and res.status // 100
            local strict = self.live.config.notify_update_strict
            if class == 2 or (class == 3 and not strict) then
                u.timer = rtmp.timer(every, tick)
                return
            end
            why = why or ("HTTP " .. res.status)
            self.updates[ns] = nil
            conn:log("info", "notify on_update refused (%s): the connection is closed, as nginx-rtmp does", why)
            conn:close("notify on_update: " .. why)
        end)
        if not req then
            self.updates[ns] = nil
            conn:log("warn", "notify on_update %s: %s", url, err)
            return
        end
        u.req = req
    end
    u.timer = rtmp.timer(every, tick)
end

function N:stop_updates(ns)
    local u = self.updates[ns]
    self.updates[ns] = nil
    if not u then return end
    if u.timer then u.timer:stop() end
    if u.req then u.req:cancel() end
end

-- ---- the live server's events ----

function N:wrap(server)
    local on_connect, on_publish, on_play = server.on_connect, server.on_publish, server.on_play
    local on_unpublish, on_stop, on_close = server.on_unpublish, server.on_stop, server.on_close

    function server.on_connect(conn, app_name, msg)
        if not self:enabled() then
            if on_connect then return on_connect(conn, app_name, msg) end
            return
        end
        local obj = type(msg.args[1]) == "table" and msg.args[1] or {}
        local _, query = app.split_name(type(obj.app) == "string" and obj.app or "")
        local i = { app = cut(app_name, MAX_NAME), flashver = cut(obj.flashVer, MAX_FLASHVER),
                    swfurl = cut(obj.swfUrl, MAX_NAME), tcurl = cut(obj.tcUrl, MAX_NAME),
                    pageurl = cut(obj.pageUrl, MAX_NAME), args = cut(query, MAX_NAME) }
        self.info[conn] = i
        local url = self:url("on_connect")
        if url then
            -- ngx_rtmp_notify_connect_create: epoch, no clientid
            local fields = { { "app", i.app }, { "flashver", i.flashver }, { "swfurl", i.swfurl },
                { "tcurl", i.tcurl }, { "pageurl", i.pageurl }, { "addr", addr(conn) },
                { "epoch", tostring(math.floor(rtmp.now() * 1000) % 4294967296) }, { "call", "connect" } }
            local verdict, loc = self:ask(conn, "on_connect", url, fields, i.args)
            if not verdict then return false, "notify on_connect: " .. loc end
            if verdict == "redirect" then -- nginx-rtmp: the app is renamed
                conn:log("info", "notify on_connect: app %s renamed %s", i.app, loc)
                i.app, i.app_moved = cut(loc, MAX_NAME), true
            end
        end
        if on_connect then return on_connect(conn, app_name, msg) end
    end

    -- publish and play: ask, then rename or relay, then live.lua's own
    local function open(conn, ns, event, inner, more, kind, relays)
        self:rename_app(conn, ns)
        if not self:enabled() then -- nothing to ask; a redirect's relay from before is forgotten
            relays[ns.app .. "/" .. ns.name] = nil
            return inner(conn, ns)
        end
        ns.notify_name, ns.notify_args = cut(ns.name, MAX_NAME), cut(ns.query, MAX_NAME)
        local url, relay_url = self:url(event), nil
        if url then
            local verdict, loc = self:ask(conn, event, url, self:session(conn, more(ns)), ns.notify_args)
            if not verdict then return false, "notify " .. event .. ": " .. loc end
            if verdict == "redirect" then
                if is_relay(loc) then
                    relay_url = loc
                    conn:log("info", "notify %s: %s %s %s", event, kind == "publish" and "push" or "pull",
                        ns.name, loc)
                else -- nginx-rtmp: the stream is renamed
                    conn:log("info", "notify %s: %s renamed %s", event, ns.name, loc)
                    ns.name = cut(loc, MAX_NAME)
                end
            end
        end
        relays[ns.app .. "/" .. ns.name] = relay_url
        local r = pack(inner(conn, ns))
        if r[1] == false or conn.closed then return unpack(r, 1, r.n) end
        self.accepted[ns] = true
        if kind == "publish" then
            self.publishers[ns.live or ns] = ns
            -- a push relay reads each message in Lua
            if relay_url and ns.forwarding then ns:forward() end
        end
        self:start_updates(conn, ns, kind)
        return unpack(r, 1, r.n)
    end

    function server.on_publish(conn, ns)
        return open(conn, ns, "on_publish", on_publish, function(s)
            return { { "call", "publish" }, { "name", s.notify_name }, { "type", s.type } }
        end, "publish", self.push)
    end

    function server.on_play(conn, ns)
        return open(conn, ns, "on_play", on_play, function(s)
            return { { "call", "play" }, { "name", s.notify_name }, { "start", tostring(u32(s.start)) },
                     { "duration", tostring(u32(s.duration)) }, { "reset", s.reset and "1" or "0" } }
        end, "play", self.pull)
    end

    -- a stream ends: its *_done, then done (nginx-rtmp's close_stream)
    local function done(conn, ns, call)
        self:stop_updates(ns)
        if not self.accepted[ns] then return end
        self.accepted[ns] = nil
        local name = { { "call", call }, { "name", ns.notify_name } }
        self:send(conn, "on_" .. call, self:session(conn, name), ns.notify_args)
        self:send(conn, "on_done", self:session(conn, { { "call", "done" }, { "name", ns.notify_name } }),
            ns.notify_args)
    end

    function server.on_unpublish(conn, ns, reason)
        done(conn, ns, "publish_done")
        local r = pack(on_unpublish and on_unpublish(conn, ns, reason))
        local s = ns.live or ns
        if self.publishers[s] == ns then self.publishers[s] = nil end -- after record.lua closed its file
        return unpack(r, 1, r.n)
    end

    function server.on_stop(conn, ns, reason)
        done(conn, ns, "play_done")
        if on_stop then return on_stop(conn, ns, reason) end
    end

    function server.on_close(conn, reason)
        local i = self.info[conn]
        if i then -- connected: ngx_rtmp_notify_disconnect_create (the app again, the connect's args)
            self:send(conn, "on_disconnect", self:session(conn, { { "call", "disconnect" }, { "app", i.app } }),
                i.args)
        end
        if on_close then return on_close(conn, reason) end
    end
end

-- record.lua closed the recording of live stream s at path.
function N:record_done(s, path)
    local ns = self.publishers[s]
    if not ns or ns.conn == nil then return end
    self:send(ns.conn, "on_record_done", self:session(ns.conn, { { "call", "record_done" }, { "recorder", "" },
        { "name", ns.notify_name }, { "path", path } }), ns.notify_args)
end

-- --notify EVENT=URL entries (rtmp.options.notify) as { event = URL }.
local function parse_cli(list)
    local t = {}
    for _, entry in ipairs(list or {}) do
        local event, url = tostring(entry):match("^([%w_]+)=(.+)$")
        if not event or not KNOWN[event] then
            error("--notify " .. tostring(entry) .. ": want EVENT=URL, EVENT one of " .. concat(M.EVENTS, ", "), 0)
        end
        t[event] = url
    end
    return t
end

--- notify.attach(live): send live's events to the URLs of
--- live.config.notify and --notify.  Redirects to rtmp:// use a relay.lua
--- of its own (pushes and pulls by URL per stream, next to live.config's).
function M.attach(live)
    local config = live.config
    for k, v in pairs(M.defaults) do
        if config[k] == nil then config[k] = v end
    end
    -- what follows connections and streams is kept across reloads
    local kept = rtmp.keep("notify", function()
        return {
            info = setmetatable({}, { __mode = "k" }),       -- conn -> what its connect said
            accepted = setmetatable({}, { __mode = "k" }),   -- ns -> true while it publishes or plays
            publishers = setmetatable({}, { __mode = "k" }), -- live stream -> its publishing ns
            updates = setmetatable({}, { __mode = "k" }),    -- ns -> its on_update timer and request
            push = {}, pull = {},                            -- "app/name" -> the URL a redirect gave
        }
    end)
    local self = setmetatable({ live = live, cli = parse_cli(rtmp.options.notify) }, N)
    for k, v in pairs(kept) do self[k] = v end
    self:wrap(live.app)
    record.on_done(function(s, path) self:record_done(s, path) end)
    -- the relays of redirects: a second relay.lua whose push and pull are
    -- the URLs the answers gave, over live's other relay settings
    local relay = assert(loadfile(assert(package.searchpath("relay", package.path))))("notify.relay")
    local rconfig = setmetatable({
        push = function(a, name) return self.push[a .. "/" .. name] end,
        pull = function(a, name) return self.pull[a .. "/" .. name] end,
    }, { __index = config })
    relay.attach(setmetatable({ config = rconfig }, { __index = live }))
    M.notifier = self
    return self
end

return M
