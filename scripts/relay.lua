-- relay.lua: push and pull relays for the live server (scripts/live.lua).
--
-- A push relay republishes a stream published here to another server; a
-- pull relay plays a stream from another server when a player asks for a
-- name nobody publishes here, and feeds it into the live server's normal
-- fan-out (GOP cache, late joiners), so any number of players share one
-- upstream connection.  Each relay is one client connection that walks
-- connect -> createStream -> publish/play with the callback API, and starts
-- over with exponential backoff when the upstream refuses or drops.
--
-- Configured through live.config (see docs/RELAY.md):
--   push  = { "rtmp://host[:port]/app[/name]", ... }  or function(app, name) -> url or list
--   pull  = "rtmp://host[:port]/app"                     or function(app, name) -> url or nil
--   relay = { retry_min = 1, retry_max = 30, retry_factor = 2, timeout = 10, chunk_size = 4096 }
-- A URL path after the app names the upstream stream; without one the
-- local name is used.

local rtmp = require "rtmp"

local null = rtmp.null
local log = rtmp.log

local M = {
    defaults = {
        retry_min = 1,       -- first delay before reconnecting (s)
        retry_max = 30,      -- the delay doubles up to this (s)
        retry_factor = 2,    -- growth of the delay after each failed attempt
        timeout = 10,        -- an attempt that is not publishing/playing after this is a failure (s)
        chunk_size = 4096,   -- our outgoing chunk size towards the upstream
    },
}

local function setting(live, k)
    local r = live.config.relay
    if type(r) == "table" and r[k] ~= nil then return r[k] end
    return M.defaults[k]
end

-- The info object of an onStatus / _result / _error.
local function info_of(msg)
    local info = msg.values and msg.values[4]
    if type(info) == "table" then return info end
    return {}
end

local function describe(info)
    local s = tostring(info.code or "?")
    if info.description and info.description ~= "" then s = s .. ": " .. tostring(info.description) end
    return s
end

-- ---- one upstream link ----

local Link = {}
Link.__index = Link

local function new_link(live, s, mode, url)
    local u, err = rtmp.parse_url(url)
    if not u then return nil, err end
    local name = (u.path and u.path ~= "") and u.path or s.name
    local l = setmetatable({ live = live, s = s, mode = mode, url = url, u = u, name = name,
        attempt = 0, delay = setting(live, "retry_min") }, Link)
    l.label = string.format("relay %s %s %s %s/%s", mode, s.key, mode == "push" and "->" or "<-",
        u.tc_url, name)
    return l
end

-- Should this link (still) be connected?
function Link:wanted()
    if self.stopped then return false end
    local s = self.s
    if self.mode == "push" then return s.publisher ~= nil and s.relay_pushes ~= nil end
    return s.relay_pull == self and s.players:count() > 0
        and (s.publisher == nil or s.publisher == self.conn)
end

function Link:start()
    self.timer = nil
    if not self:wanted() then return end
    self.attempt = self.attempt + 1
    self.ready = false
    local link = self
    local conn, err = rtmp.connect(self.url, {
        on_handshake = function(c) if link.conn == c then link:on_handshake(c) end end,
        on_message = function(c, msg) if link.conn == c then link:on_message(c, msg) end end,
        on_close = function(c, reason) if link.conn == c then link:lost(c, "closed: " .. tostring(reason)) end end,
    })
    if not conn then return self:retry("connect: " .. tostring(err)) end
    if conn.closed then return self:retry("closed") end
    self.conn = conn
    self.deadline = rtmp.timer(setting(self.live, "timeout"), function()
        if link.conn == conn and not link.ready then link:fail("timeout before " .. link.mode .. " started") end
    end)
end

function Link:on_handshake(c)
    c:set_chunk_size(setting(self.live, "chunk_size"))
    c:command(nil, "connect", 1, {
        app = self.u.app, type = "nonprivate", tcUrl = self.u.tc_url,
        flashVer = self.mode == "push" and "FMLE/3.0 (compatible; luartmp relay)" or "LNX 9,0,124,2",
        fpad = false, capabilities = 15.0, audioCodecs = 3191.0, videoCodecs = 252.0, videoFunction = 1.0,
    })
end

function Link:on_message(c, msg)
    local kind = msg.type_name
    if kind == "command" or kind == "command3" then
        local name = msg.name
        if name == "_result" and msg.txn == 1 then
            if self.mode == "push" then
                c:command(nil, "releaseStream", 2, null, self.name)
                c:command(nil, "FCPublish", 3, null, self.name)
            end
            c:command(nil, "createStream", 4, null)
        elseif name == "_error" and msg.txn == 1 then
            self:fail("connect refused: " .. describe(info_of(msg)))
        elseif name == "_result" and msg.txn == 4 then
            local sid = math.tointeger(msg.args[2])
            if not sid then return self:fail("createStream: no stream id") end
            self.sid = sid
            if self.mode == "push" then
                c:command({ stream = sid, csid = 8 }, "publish", 5, null, self.name, "live")
            else
                c:command({ stream = sid, csid = 8 }, "play", 5, null, self.name, -2000.0)
                c:user_control("set_buffer_length", sid, 3000)
            end
        elseif name == "_error" and msg.txn == 4 then
            self:fail("createStream refused: " .. describe(info_of(msg)))
        elseif name == "onStatus" then
            self:on_status(c, info_of(msg))
        end
    elseif self.mode == "pull" and self.sid and msg.stream == self.sid then
        if kind == "audio" or kind == "video" or kind == "aggregate" then
            if self.s.publisher == c then self.live.on_message(c, msg) end
        elseif kind == "data" or kind == "data3" then
            -- our own play answer already sent |RtmpSampleAccess to the players
            if msg.name ~= "|RtmpSampleAccess" and self.s.publisher == c then self.live.on_message(c, msg) end
        end
    end
end

function Link:on_status(c, info)
    local code = info.code
    if self.mode == "push" then
        if code == "NetStream.Publish.Start" then
            self:up()
            self:send_cache()
        elseif info.level == "error" then
            self:fail(describe(info))
        end
        return
    end
    if code == "NetStream.Play.Start" or code == "NetStream.Play.PublishNotify" then
        if not self.ready then self:up() end
        self:take_stream(c)
    elseif code == "NetStream.Play.UnpublishNotify" or code == "NetStream.Play.Stop" then
        -- the upstream publisher left; our players are told, we stay subscribed
        self:drop_stream(c)
    elseif info.level == "error" then
        self:fail(describe(info))
    end
end

function Link:up()
    self.ready = true
    if self.deadline then self.deadline:stop(); self.deadline = nil end
    log.info("%s: %s (attempt %d)", self.label, self.mode == "push" and "publishing" or "playing", self.attempt)
    self.attempt, self.delay = 0, setting(self.live, "retry_min")
end

-- Pull: become the publisher of the local stream (if nobody else is).
function Link:take_stream(c)
    local s = self.s
    if s.publisher and s.publisher ~= c then return self:stop("a local publisher took " .. s.key) end
    if s.publisher == c then return end
    c.app = s.app
    c.streams = { [self.sid] = { role = "publish", stream = s } }
    s.publisher, s.publisher_sid = c, self.sid
    for _, p in ipairs(s.players:members()) do
        local psid = p.playing and p.playing[s.key]
        if psid then p:user_control("stream_begin", psid) end
    end
end

function Link:drop_stream(c)
    if c.streams and self.sid and self.s.publisher == c then
        self.live.unpublish(c, self.sid, self.s)
    end
end

-- Push: what a late player would get (metadata, sequence headers, GOP),
-- so the upstream can decode from the first message it receives.
function Link:send_cache()
    local s, c = self.s, self.conn
    if s.metadata then self:forward(s.metadata) end
    if s.video_header then c:send({ stream = self.sid }, s.video_header) end
    if s.audio_header then c:send({ stream = self.sid }, s.audio_header) end
    for i = 1, #s.gop do c:send({ stream = self.sid }, s.gop[i]) end
end

-- Push: one published message. Metadata goes out as @setDataFrame, the way
-- encoders publish it.
function Link:forward(msg)
    if not self.ready or not self.conn then return end
    local t = msg.type
    if t == 18 then
        local values = rtmp.amf0.decode(msg.payload)
        if values and values[1] == "onMetaData" then
            self.conn:data({ stream = self.sid }, "@setDataFrame", table.unpack(values, 1, values.n))
            return
        end
    end
    self.conn:send({ stream = self.sid }, msg)
end

-- The attempt failed: close the connection and try again later.
function Link:fail(reason)
    local c = self.conn
    if c and not c.closed then
        self.conn = nil
        c:close(reason)
    end
    self:lost(c, reason)
end

-- The connection is gone (closed by us, by the upstream, or never opened).
function Link:lost(c, reason)
    if self.deadline then self.deadline:stop(); self.deadline = nil end
    if self.conn == c then self.conn = nil end
    if c and self.mode == "pull" then self:drop_stream(c) end
    self.ready = false
    if self.stopped then return end
    self:retry(reason)
end

function Link:retry(reason)
    if self.timer then return end
    if not self:wanted() then
        log.info("%s: %s; not retrying (no longer needed)", self.label, reason)
        if self.mode == "pull" and self.s.relay_pull == self then self.s.relay_pull = nil end
        return
    end
    local delay = self.delay
    log.warn("%s: %s; retry %d in %.1fs", self.label, reason, self.attempt + 1, delay)
    self.delay = math.min(delay * setting(self.live, "retry_factor"), setting(self.live, "retry_max"))
    local link = self
    self.timer = rtmp.timer(delay, function() link:start() end)
end

function Link:stop(reason)
    if self.stopped then return end
    self.stopped = true
    if self.timer then self.timer:stop(); self.timer = nil end
    if self.deadline then self.deadline:stop(); self.deadline = nil end
    local c = self.conn
    self.conn = nil
    if c then
        if self.mode == "pull" then self:drop_stream(c) end
        if not c.closed then
            -- leave the way encoders and players do, then close
            if self.ready and self.mode == "push" then
                c:command(nil, "FCUnpublish", 6, null, self.name)
            end
            if self.sid then c:command({ stream = self.sid, csid = 8 }, "deleteStream", 7, null, self.sid) end
            c:close(reason)
        end
    end
    log.info("%s: stopped (%s)", self.label, reason)
    if self.mode == "pull" and self.s.relay_pull == self then self.s.relay_pull = nil end
end

-- ---- what live.lua calls ----

-- A list of URLs from a config value (a string, a list, or a function of
-- app and name returning either).
local function urls(v, app, name)
    if type(v) == "function" then v = v(app, name) end
    if type(v) == "string" then return { v } end
    if type(v) == "table" then return v end
    return {}
end

-- A stream started publishing here: start its push relays.
function M.published(live, s)
    local list = urls(live.config.push, s.app, s.name)
    if #list == 0 then return end
    s.relay_pushes = {}
    for _, url in ipairs(list) do
        local l, err = new_link(live, s, "push", url)
        if l then
            s.relay_pushes[#s.relay_pushes + 1] = l
            l:start()
        else
            log.warn("relay push %s: bad URL %s: %s", s.key, tostring(url), tostring(err))
        end
    end
end

-- Its publisher left: stop them.
function M.unpublished(s)
    local pushes = s.relay_pushes
    if not pushes then return end
    s.relay_pushes = nil
    for _, l in ipairs(pushes) do l:stop("unpublished") end
end

-- A published audio, video or data message (metadata as players get it).
function M.forward(s, msg)
    local pushes = s.relay_pushes
    if not pushes then return end
    for i = 1, #pushes do pushes[i]:forward(msg) end
end

-- A player joined a stream nobody publishes here: pull it, once.
function M.wanted(live, s)
    if s.publisher or s.relay_pull or not live.config.pull then return end
    local url, name = live.config.pull, nil
    if type(url) == "function" then url, name = url(s.app, s.name) end
    if type(url) ~= "string" then return end
    if name then url = url:gsub("/+$", "") .. "/" .. name end
    local l, err = new_link(live, s, "pull", url)
    if not l then
        log.warn("relay pull %s: bad URL %s: %s", s.key, url, tostring(err))
        return
    end
    s.relay_pull = l
    l:start()
end

-- A player left: the last one ends the pull.
function M.left(s)
    local l = s.relay_pull
    if l and s.players:count() == 0 then l:stop("no players left") end
end

return M
