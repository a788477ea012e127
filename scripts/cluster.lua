-- cluster.lua: cluster mode of the live server (docs/CLUSTER.md).  Nodes
-- share a stream directory in Redis: a publish registers app/name -> this
-- node, a heartbeat keeps the entry alive, and a play of a stream nobody
-- publishes here pulls it from the node the directory names, through
-- relay.lua's pull (one upstream per stream per node, stopped when the
-- last player leaves, retried with backoff, the directory asked again
-- before each attempt).
--
--   luartmp --cluster-redis redis://127.0.0.1:6379 --cluster-node rtmp://10.0.0.1:1935 scripts/live.lua
--   live.config.cluster = { redis = URL, node = URL, ttl = 10, heartbeat = ttl / 3, prefix = "luartmp:" }
--
-- The directory: the key prefix..app.."/"..name holds the URL of the node
-- whose publisher feeds the stream, with a TTL (ttl seconds) that the
-- node's heartbeat renews every `heartbeat` seconds while the entry is still
-- its own.  A publish of a name another node holds is refused
-- (NetStream.Publish.BadName), or with live.config.takeover overwrites the
-- entry; the old node's next heartbeat finds the entry no longer its own
-- and ends its publisher.  Unpublish deletes the entry at once (if still
-- ours).  A node that dies stops renewing; its entries expire within ttl.
-- Redis down: the node keeps serving what it has, logs, and the client
-- reconnects with backoff; on every (re)connect every local publish is
-- registered again at once.
--
-- A node's pull plays rtmp://NODE/APP/NAME?luartmp_cluster_pull=1; a node
-- answers such a play only for a stream its own publisher feeds (else
-- NetStream.Play.StreamNotFound: the puller asks the directory again after
-- its backoff), so a pull never feeds another pull, and no two nodes pull
-- from each other.
--
-- scripts/live.lua attaches it (cluster.attach(live)); it wraps live.app's
-- on_publish and on_play (a publish is registered before the inner
-- handlers decide, and let go if they refuse it) and sets live.config.pull.

local rtmp = require "rtmp"
local relay = require "relay"

local log = rtmp.log
-- what outlives a reload (rtmp.keep, docs/RELOAD.md):
-- the Redis client, the local publishers' entries, the node whose heartbeat runs
local kept = rtmp.keep("cluster", function() return { owned = {} } end)
local fmt = string.format
local pairs, type, tostring = pairs, type, tostring
local pack, unpack = table.pack, table.unpack

local M = {}

--- live.config.cluster's fields (ttl's default is --cluster-ttl's: rtmp.settings).
M.defaults = {
    redis = false,     -- the directory: redis://HOST:PORT (over --cluster-redis)
    node = false,      -- this node as the others reach it: rtmp://HOST:PORT (over --cluster-node)
    ttl = false,       -- seconds an entry lives after its last heartbeat (over --cluster-ttl)
    heartbeat = false, -- seconds between heartbeats (default ttl / 3)
    prefix = "luartmp:", -- of every directory key
}

--- The query parameter that marks a node's pull at the node it pulls from.
M.PULL_MARK = "luartmp_cluster_pull"

-- Claim an entry: KEYS[1] the key, ARGV node, ttl (ms), "1" to take it
-- from another node.  Answers "OK" (ours now), or the node that holds it.
local CLAIM = [[
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] or ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'OK'
end
return v
]]

-- Delete an entry if it is still ARGV[1]'s: 1, else 0.
local RELEASE = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

-- A setting of the cluster: live.config.cluster, else the command line.
local function setting(t, k)
    if t[k] ~= nil and t[k] ~= false then return t[k] end
    return rtmp.options["cluster_" .. k]
end

-- ---- one node ----

local N = {}
N.__index = N

-- Whether the stream's publisher is one of this node's own (not a pull).
local function local_publisher(s)
    return s and s.publisher and not s.publisher.relay and s.publisher or nil
end

-- The directory's key of "app/name".
function N:key(stream) return self.prefix .. stream end

-- Claim app/name ("app/name" key) for this node: "ours", or "taken" and
-- the node holding it, or "down" and why (Redis unreachable).
function N:claim(key, takeover)
    local v, err = self.r:command("EVAL", CLAIM, 1, self:key(key), self.node,
        tostring(math.floor(self.ttl * 1000 + 0.5)), takeover and "1" or "0")
    if v == "OK" then return "ours" end
    if type(v) == "string" then return "taken", v end
    return "down", tostring(err)
end

-- Let go of key's entry if it is still ours and no local publisher has
-- it (in a coroutine of its own, from the next turn of the loop: a
-- publisher taking the stream over here meanwhile keeps it).
function N:release(key)
    rtmp.spawn(function()
        rtmp.sleep(0)
        if self.owned[key] then return end
        local v, err = self.r:command("EVAL", RELEASE, 1, self:key(key), self.node)
        if v == nil then log.warn("cluster: could not delete %s%s: %s", self.prefix, key, tostring(err))
        elseif v == 1 then log.info("cluster: %s%s deleted", self.prefix, key) end
    end)
end

-- Our publisher of key lost its entry to node `other`: end it (its
-- unpublish then lets our players pull from there).
function N:lost(key, other)
    local ns = self.owned[key]
    if not ns then return end
    log.warn("cluster: %s is now published on %s: ending the publisher here", key, other)
    if ns.conn and not ns.conn.closed then
        ns.conn:close("the stream " .. key .. " is published on " .. other .. " now")
    end
end

-- Renew (or register again) every entry of a local publisher.
function N:refresh(why)
    local keys = {}
    for key in pairs(self.owned) do keys[#keys + 1] = key end
    for _, key in ipairs(keys) do
        if self.owned[key] then
            local verdict, other = self:claim(key, false)
            if verdict == "taken" then
                self:lost(key, other)
            elseif verdict == "down" then
                if not self.down then log.warn("cluster: directory unreachable (%s): %s", why, other) end
                self.down = true
                return
            end
        end
    end
    if self.down and #keys > 0 then log.info("cluster: directory reachable again, %d entries renewed", #keys) end
    self.down = false
end

function N:heartbeat()
    while kept.node == self do
        rtmp.sleep(self.every)
        if kept.node ~= self then break end -- a reload's node took over
        if self.r:connected() then
            self:refresh("heartbeat")
        elseif not self.down then
            log.warn("cluster: directory unreachable: serving on, registering again when it is back")
            self.down = true
        end
    end
end

-- live.config.pull: the node the directory names for app/name, as the URL
-- of its stream; nil, why while there is none (the relay retries).
function N:upstream(app_name, name)
    local key = app_name .. "/" .. name
    local v, err = self.r:command("GET", self:key(key))
    if v == nil then return nil, "cluster directory: " .. tostring(err) end
    if type(v) ~= "string" then return nil, key .. " is not in the cluster directory" end
    if v == self.node then return nil, "the cluster directory names this node for " .. key end
    return fmt("%s/%s/%s?%s=1", v:gsub("/+$", ""), app_name, name, M.PULL_MARK)
end

-- ---- the live server's events ----

function N:wrap(live)
    local server = live.app
    local on_publish, on_play = server.on_publish, server.on_play

    function server.on_publish(conn, ns)
        if not self.r then return on_publish(conn, ns) end
        local key = ns.app .. "/" .. ns.name
        local verdict, other = self:claim(key, live.config.takeover)
        if verdict == "taken" then
            conn:log("info", "publish %s refused: published on %s", key, other)
            return false, ns.name .. " is already publishing on " .. other .. ".", "NetStream.Publish.BadName"
        elseif verdict == "down" then
            conn:log("warn", "publish %s: cluster directory unreachable (%s): accepted, registered "
                .. "when it is back", key, other)
        end
        local r = pack(on_publish(conn, ns))
        if r[1] == false and verdict == "ours" then self:release(key) end
        return unpack(r, 1, r.n)
    end

    function server.on_play(conn, ns)
        if self.r and ns.params and ns.params[M.PULL_MARK] then
            local key = ns.app .. "/" .. ns.name
            if not local_publisher(live.streams[key]) then
                conn:log("info", "play %s refused: a cluster pull, and no publisher of it here", key)
                return false, key .. " is not published on this node.", "NetStream.Play.StreamNotFound"
            end
        end
        return on_play(conn, ns)
    end

    live.watch{
        publish = function(s, source)
            if self.r and not source.relay then self.owned[s.key] = source end
        end,
        unpublish = function(s)
            local ns = self.owned[s.key]
            if not ns or s.publisher == ns then return end
            self.owned[s.key] = nil
            self:release(s.key)
            rtmp.timer(0, function() if not self.owned[s.key] then self:left(s) end end)
        end,
    }
end

-- Our publisher of s left.  Other nodes' pulls of it are closed a moment
-- later (unless it is published here again), so they ask the directory;
-- our own players pull it from wherever it is published now.
function N:left(s)
    local live = self.live
    rtmp.timer(1, function()
        if local_publisher(live.streams[s.key]) then return end
        for conn, ns in pairs(s.viewers) do
            if ns.params and ns.params[M.PULL_MARK] and not conn.closed then
                conn:close("cluster pull of " .. s.key .. ": its publisher left this node")
            end
        end
    end)
    if live.streams[s.key] == s and s.players:count() > 0 then relay.wanted(live, s) end
end

-- Start: connect to the directory, heartbeat, pull through it.
function N:start()
    local t = self.live.config.cluster
    local url, node = setting(t, "redis"), setting(t, "node")
    if not url and not node then return end
    if not url or not node then
        error("cluster mode wants both the directory (--cluster-redis, live.config.cluster.redis) and this "
            .. "node's URL (--cluster-node, live.config.cluster.node)", 0)
    end
    local u = rtmp.parse_url(node)
    if not u or u.app ~= "" and u.app ~= nil then
        error("--cluster-node " .. tostring(node) .. ": want rtmp://HOST:PORT (this node, no app)", 0)
    end
    self.node = node:gsub("/+$", "")
    self.ttl = setting(t, "ttl") or rtmp.settings.cluster_ttl.default
    self.every = t.heartbeat or self.ttl / 3
    self.prefix = t.prefix or M.defaults.prefix
    if type(self.ttl) ~= "number" or self.ttl <= 0 or type(self.every) ~= "number" or self.every <= 0
        or self.every >= self.ttl then
        error("live.config.cluster: want ttl > heartbeat > 0 (seconds), not ttl " .. tostring(self.ttl)
            .. ", heartbeat " .. tostring(self.every), 0)
    end
    if self.live.config.pull then
        error("cluster mode pulls through the directory: live.config.pull must stay unset", 0)
    end
    -- this load's node takes the heartbeat over (and the client, when the directory changed)
    -- only once the load is kept: a reload refused after live.start leaves the running one
    self.r = kept.r
    require("rtmp.reload").commit(function()
        local r = kept.r -- after a reload: the client of the first load
        if not r or kept.url ~= url then
            local err
            r, err = rtmp.redis.connect(url, { name = "cluster" })
            if not r then error("--cluster-redis " .. tostring(url) .. ": " .. tostring(err), 0) end
            if kept.r then kept.r:close() end
            kept.r, kept.url = r, url
            r:on_connect(function()
                log.info("cluster: directory %s connected; node %s", url, kept.node.node)
                kept.node:refresh("reconnected")
            end)
        end
        self.r, kept.node = r, self
        rtmp.spawn(function() self:heartbeat() end)
        log.info("cluster: node %s, directory %s, ttl %gs, heartbeat %gs", self.node, url, self.ttl, self.every)
    end)
    self.live.config.pull = function(app_name, name) return self:upstream(app_name, name) end
    -- the pulls' defaults here: a dead node's entry is gone within ttl, and the encoder that
    -- comes back is found at the next attempt (retry_max: ttl); the players wait for both
    local relay_cfg = self.live.config.relay
    if type(relay_cfg) == "table" then
        if relay_cfg.retry_max == nil then relay_cfg.retry_max = self.ttl end
        if relay_cfg.hold == nil then relay_cfg.hold = 2 * self.ttl + relay_cfg.retry_max end
    end
end

--- cluster.attach(live): cluster mode for live when live.config.cluster
--- (or --cluster-redis and --cluster-node) says so, from live.start on.
function M.attach(live)
    local config = live.config
    config.cluster = config.cluster or {}
    for k, v in pairs(M.defaults) do
        if config.cluster[k] == nil then config.cluster[k] = v end
    end
    local self = setmetatable({ live = live, owned = kept.owned }, N) -- owned: "app/name" -> our publisher
    self:wrap(live)
    local start = live.start
    live.start = function(opts)
        if opts and opts.cluster then config.cluster = opts.cluster end
        if opts and opts.relay then config.relay = opts.relay end -- before the cluster's defaults
        self:start()
        return start(opts)
    end
    M.node = self
    return self
end

return M
