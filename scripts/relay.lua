-- relay.lua: push and pull relays for the live server (scripts/live.lua).
--
-- A push relay republishes a stream published here to another server; a
-- pull relay plays a stream from another server when a player asks for a
-- name nobody publishes here, and feeds it into the live server's normal
-- fan-out (GOP cache, late joiners), so any number of players share one
-- upstream connection.  Each relay is one client connection that walks
-- connect -> createStream -> publish/play, and starts
-- over with exponential backoff when the upstream refuses or drops.  It is
-- written on the coroutine client API (rtmp.connect without handlers).
--
-- Configured through live.config (see docs/RELAY.md):
--   push  = { "rtmp://host[:port]/app[/name]", ... }  or function(app, name) -> url or list
--   pull  = "rtmp://host[:port]/app"                     or function(app, name) -> url or nil
--           (a function is asked again before each attempt, in the relay's coroutine: it may
--           wait, e.g. on a directory; nil, why fails that attempt, nil alone ends the pull)
--   relay = { retry_min = 1, retry_max = 30, retry_factor = 2, timeout = 10, chunk_size = 4096,
--             hold = 10, tls = { ca =, insecure =, sni = } }
-- rtmps:// URLs relay over TLS (the tls settings over luartmp's --tls-ca
-- and --tls-insecure).
-- A URL path after the app names the upstream stream; without one the
-- local name is used.  scripts/live.lua attaches it (relay.attach(live)):
-- it follows live's streams through live.watch, and a pull feeds one
-- with live.publish, live.feed and live.unpublish.  A pull whose upstream
-- connection drops (not an upstream's end of stream: its publisher left)
-- holds the stream for its players (live.hold, scripts/hold.lua) up to
-- `hold` seconds, for its next attempt or a local publisher to go on with
-- it; then unpublishes.

local rtmp = require "rtmp"

local null = rtmp.null
local log = rtmp.log

-- the links of live's streams, kept across reloads (a link's coroutine goes
-- on); an instance of its own (notify.lua's) is loaded with another name
local kept = rtmp.keep((... or "relay") .. ".links", function()
    return { pushes = setmetatable({}, { __mode = "k" }), pulls = setmetatable({}, { __mode = "k" }) }
end)
local pushes = kept.pushes -- live stream -> its push links
local pulls = kept.pulls   -- live stream -> its pull link

local M = {
    defaults = {
        retry_min = 1,       -- first delay before reconnecting (s)
        retry_max = 30,      -- the delay doubles up to this (s)
        retry_factor = 2,    -- growth of the delay after each failed attempt
        timeout = 10,        -- an attempt that is not publishing/playing after this is a failure (s)
        chunk_size = 4096,   -- our outgoing chunk size towards the upstream
        hold = 10,           -- a pull's upstream connection dropped: its players wait this long (s)
        tls = nil,           -- rtmps:// upstreams: { ca =, insecure =, sni = } (rtmp.connect's)
    },
}

local function setting(live, k)
    local r = live.config.relay
    if type(r) == "table" and r[k] ~= nil then return r[k] end
    return M.defaults[k]
end

-- ---- one upstream link ----
--
-- Each link runs in its own coroutine (rtmp.spawn): connect, create a
-- stream, publish or play, then stay there until the connection ends; then
-- sleep the backoff delay and start over, as long as the link is wanted.

local Link = {}
Link.__index = Link

-- Point link l at url (its upstream from now on); nil, err for a bad URL.
local function aim(l, url)
    local u, err = rtmp.parse_url(url)
    if not u then return nil, err end
    l.url, l.u = url, u
    l.name = (u.path and u.path ~= "") and u.path or l.s.name
    l.label = string.format("relay %s %s %s %s/%s", l.mode, l.s.key, l.mode == "push" and "->" or "<-",
        u.tc_url, l.name)
    return l
end

-- A link to url, or (a pull) to what resolve() answers before each attempt.
local function new_link(live, s, mode, url, resolve)
    local l = setmetatable({ live = live, s = s, mode = mode, resolve = resolve,
        attempt = 0, delay = setting(live, "retry_min") }, Link)
    if resolve then
        l.label = string.format("relay %s %s", mode, s.key)
        return l
    end
    return aim(l, url)
end

-- Should this link (still) be connected?
function Link:wanted()
    if self.stopped then return false end
    local s = self.s
    if self.mode == "push" then return s.publisher ~= nil end
    return pulls[s] == self and s.players:count() > 0
        and (s.publisher == nil or s.publisher == self.source)
end

function Link:start()
    local link = self
    rtmp.spawn(function() link:run() end)
end

function Link:run()
    while self:wanted() do
        self.attempt = self.attempt + 1
        local reason = self:session()
        self:down()
        if reason == nil then break end
        if not self:wanted() then
            log.info("%s: %s; not retrying (no longer needed)", self.label, reason)
            break
        end
        local delay = self.delay
        log.warn("%s: %s; retry %d in %.1fs", self.label, reason, self.attempt + 1, delay)
        self.delay = math.min(delay * setting(self.live, "retry_factor"), setting(self.live, "retry_max"))
        rtmp.sleep(delay)
    end
    if self.mode == "pull" and pulls[self.s] == self then pulls[self.s] = nil end
end

-- One attempt, from connect to the end of the connection; returns why it ended.
function Link:session()
    if self.resolve then -- the upstream, asked again: nil, why fails the attempt; nil ends the pull
        local done, url, why = pcall(self.resolve)
        if not done then return "pull function: " .. tostring(url) end
        if not url then
            if why ~= nil then return tostring(why) end
            self.stopped = true -- no pull (quietly, as when the first answer is nil)
            if self.attempt > 1 then log.info("%s: stopped (no upstream)", self.label) end
            return nil
        end
        local ok, err = aim(self, url)
        if not ok then return "bad URL " .. tostring(url) .. ": " .. tostring(err) end
    end
    local nc, err = rtmp.connect(self.url, {
        timeout = setting(self.live, "timeout"),
        flash_ver = self.mode == "push" and "FMLE/3.0 (compatible; luartmp relay)" or nil,
        properties = self.mode == "push" and { type = "nonprivate" } or nil,
        tls = setting(self.live, "tls"),
    })
    if not nc then return err end
    self.nc, self.conn = nc, nc.conn
    if not self:wanted() then return "no longer needed" end
    nc.conn:set_chunk_size(setting(self.live, "chunk_size"))
    if self.mode == "push" then
        nc.conn:command(nil, "releaseStream", 0, null, self.name)
        nc.conn:command(nil, "FCPublish", 0, null, self.name)
    end
    local ns
    ns, err = nc:create_stream()
    if not ns then return "createStream: " .. tostring(err) end
    self.ns = ns
    if self.mode == "push" then
        local ok
        ok, err = ns:publish(self.name, "live")
        if not ok then return err end
        self:up()
        self:send_cache()
        -- nothing is expected back on a published stream: wait for its end
        local msg, why
        repeat msg, why = ns:read() until not msg
        return why == "closed" and ("closed: " .. tostring(nc.closed or "stream closed")) or tostring(why)
    end
    local ok
    ok, err = ns:play(self.name, -2000)
    if not ok then return err end
    self:up()
    self:take_stream()
    while true do
        local msg, why = ns:read()
        if msg then
            self:feed(msg)
        elseif why == "eof" then
            -- the upstream publisher left; our players are told, we stay subscribed
            self:drop_stream()
        else
            return "closed: " .. tostring(nc.closed or why)
        end
    end
end

function Link:up()
    log.info("%s: %s (attempt %d)", self.label, self.mode == "push" and "publishing" or "playing", self.attempt)
    self.ready = true
    self.attempt, self.delay = 0, setting(self.live, "retry_min")
end

-- The session ended: let go of its connection (a pull still wanted holds
-- its stream, if it fed it).
function Link:down()
    local nc = self.nc
    self.ready = false
    if self.mode == "pull" then
        local hold = setting(self.live, "hold")
        if self.source and hold > 0 and self:wanted() then self:hold(hold)
        elseif self.source then self:drop_stream() end -- (a held one waits for its timer)
    end
    self.nc, self.ns, self.conn = nil, nil, nil
    if nc and not nc.closed then nc:close("relay attempt ended") end
end

-- Pull: become the publisher of the local stream (if nobody else is).
function Link:take_stream()
    local s = self.s
    if not self.conn or (self.source and s.publisher == self.source) then return end
    if s.publisher then return self:stop("a local publisher took " .. s.key) end
    self.source, self.held = { conn = self.conn, id = self.ns.id, relay = self }, nil
    self.live.publish(s, self.source) -- a held stream goes on (live.hold)
end

-- Pull: its stream ends here (a held one too).
function Link:drop_stream()
    local source = self.source or self.held
    self.source, self.held = nil, nil
    if source then self.live.unpublish(self.s, source) end
end

-- Pull: the upstream connection dropped: the players keep the stream
-- (live.hold) for the next attempt or a local publisher, up to `seconds`.
function Link:hold(seconds)
    local s, source = self.s, self.source
    self.source, self.held = nil, source
    self.live.hold(s, source)
    log.info("%s: holding %s for its players up to %gs", self.label, s.key, seconds)
    rtmp.timer(seconds, function()
        if self.held == source then self.held = nil end
        if s.held and s.held.source == source then
            log.warn("%s: nothing fed %s for %gs: unpublished", self.label, s.key, seconds)
            self.live.unpublish(s, source)
        end
    end)
end

-- Pull: one message from the upstream into the live server's fan-out.
-- After an end of stream, the next media means the upstream publishes again.
function Link:feed(msg)
    if msg.type == 18 or msg.type == 15 then
        -- our own play answer already sent |RtmpSampleAccess to the players
        if msg.name == "|RtmpSampleAccess" then return end
    end
    local s = self.s
    if not self.source or s.publisher ~= self.source then self:take_stream() end
    if self.source and s.publisher == self.source then self.live.feed(s, msg, self.conn) end
end

-- Push: what a late player would get (metadata, sequence headers, GOP),
-- so the upstream can decode from the first message it receives.
function Link:send_cache()
    local cached = self.s.players:cached() -- (the stream's group: live.lua)
    for i = 1, #cached do self:forward(cached[i]) end
end

-- Push: one published message. The cached metadata (onMetaData, as players
-- get it) goes out as @setDataFrame onMetaData, the way encoders publish it.
function Link:forward(msg)
    local ns = self.ready and self.ns
    if not ns then return end
    if msg.type == 18 and not msg.values then
        ns:send({ type = 18, timestamp = msg.timestamp, payload = msg.payload })
    else
        ns:send(msg)
    end
end

function Link:stop(reason)
    if self.stopped then return end
    self.stopped = true
    log.info("%s: stopped (%s)", self.label, reason)
    if self.mode == "pull" and pulls[self.s] == self then pulls[self.s] = nil end
    local nc, ns = self.nc, self.ns
    if self.mode == "pull" then self:drop_stream() end
    if nc and not nc.closed then
        -- leave the way encoders and players do, then close (the session's
        -- coroutine, waiting in ns:read, then sees the close)
        if self.ready and self.mode == "push" then nc.conn:command(nil, "FCUnpublish", 0, null, self.name) end
        if ns then ns:close() end
        nc:close(reason)
    end
end

-- ---- live's streams ----

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
    local links = {}
    pushes[s] = links
    for _, url in ipairs(list) do
        local l, err = new_link(live, s, "push", url)
        if l then
            links[#links + 1] = l
            l:start()
        else
            log.warn("relay push %s: bad URL %s: %s", s.key, tostring(url), tostring(err))
        end
    end
end

-- Its publisher left: stop them.
function M.unpublished(s)
    local links = pushes[s]
    if not links then return end
    pushes[s] = nil
    for _, l in ipairs(links) do l:stop("unpublished") end
end

-- A published audio, video or data message, as published.
function M.forward(s, msg)
    local links = pushes[s]
    if not links then return end
    for i = 1, #links do links[i]:forward(msg) end
end

-- A player joined a stream nobody publishes here: pull it, once.
function M.wanted(live, s)
    if s.publisher or pulls[s] or not live.config.pull then return end
    local url, resolve = live.config.pull, nil
    if type(url) == "function" then
        local fn = url
        resolve = function()
            local u, name = fn(s.app, s.name)
            if type(u) ~= "string" then return nil, name end
            if name then u = u:gsub("/+$", "") .. "/" .. name end
            return u
        end
    elseif type(url) ~= "string" then
        return
    end
    local l, err = new_link(live, s, "pull", url, resolve)
    if not l then
        log.warn("relay pull %s: bad URL %s: %s", s.key, url, tostring(err))
        return
    end
    pulls[s] = l
    l:start()
end

-- A player left: the last one ends the pull.
function M.left(s)
    local l = pulls[s]
    if l and s.players:count() == 0 then l:stop("no players left") end
end

--- relay.attach(live): push what is published on live (not what a pull
--- feeds), pull what its players want.
function M.attach(live)
    live.watch{
        publish = function(s, source) if not source.relay then M.published(live, s) end end,
        unpublish = M.unpublished,
        message = M.forward,
        play = function(s) M.wanted(live, s) end,
        stop = M.left,
    }
end

return M
