-- live.lua: the default luartmp script, a live server: one publisher per
-- stream name, any number of players; a late player gets the metadata and
-- sequence headers, then the media from the last keyframe.
--
--   luartmp [--listen 1935] scripts/live.lua, or from a script of yours:
--   local live = require "live"
--   live.hooks.on_publish = function(conn, app, name) ... end
--   live.start{ listen = "1935", takeover = true }
--
-- The policy only: streams by app and name, takeover, a core group per
-- stream (rtmp.group: fan-out, late-join cache, slow players) and what goes
-- through Lua.  Commands, replies, stream ids and listening are rtmp.app's
-- (docs/APP.md): live.app, with live.replies and live.commands to replace
-- one answer.  record.lua and relay.lua follow the streams (live.watch);
-- hold.lua keeps a pull relay's stream while its upstream is away.
--
-- rtmp.reload (SIGHUP) runs this file again: the streams, the connections'
-- tables and the listening servers are kept (rtmp.keep "live"); config,
-- hooks, watchers and the app's functions are this load's, and the
-- connections go on with them from their next message (docs/RELOAD.md).

local rtmp = require "rtmp"
local app = require "rtmp.app"
local caps = require "rtmp.caps"
local hold = require "hold"

-- what outlives a load: the streams and the app's connections and servers
local kept = rtmp.keep("live", function() return { streams = {}, app = {} } end)

local log, verdict = rtmp.log, app.verdict

local M = {
    config = {
        record_dir = false,       -- where publish type record/append writes <app>/<name>.flv (false: off)
        takeover = false,         -- a second publisher of a name replaces the first (else BadName)
        gop_max_bytes = false,    -- stop caching a GOP past this size (false: rtmp.group's 32 MiB)
        push = false,             -- URLs (or function(app, name) -> URLs) to republish each published stream to
        pull = false,             -- URL (or function(app, name) -> URL) to play a stream nobody publishes here from
        relay = {},               -- relay settings: retry_min, retry_max, retry_factor, timeout (see relay.lua)
        legacy_players = "all",   -- what a player that announced no Enhanced RTMP FourCC gets: "all", or
                                  -- "legacy" (audio and video in their legacy form only: docs/ENHANCED.md)
        -- and rtmp.app's: chunk_size, window, peer_bandwidth, any rtmp.listen setting
        -- (slow players: max_queue_bytes, max_queue_time, max_queue_stall; docs/SLOW.md)
    },
    hooks = {},     -- on_connect(conn, msg, app), on_publish(conn, app, name), on_play(conn, app, name):
                    -- return false, "reason" [, status code] to refuse (they may wait: rtmp.sleep, a
                    -- request); on_media(conn, msg, stream): each published audio/video message
                    -- before it is cached and fanned out, false drops it (set it before the
                    -- publish: without it media bypasses Lua); on_legacy_media(conn, msg, stream):
                    -- whether players that announced no FourCC get that message too (over
                    -- config.legacy_players; the same rule: media then goes through Lua);
                    -- on_close(conn, reason)
    streams = kept.streams, -- "app/name" -> stream: key, app, name, players (a group with the late-join
                    -- cache), viewers (conn -> its NetStream), publisher (a NetStream, or a relay's)
    watchers = { publish = {}, unpublish = {}, message = {}, play = {}, stop = {} },
}
local BUILTIN -- message watchers of record.lua and relay.lua (set once they attach)

local server = app.new{ config = M.config, state = kept.app }
M.app, M.replies, M.commands = server, server.replies, server.commands
local config, hooks, streams, watchers, replies = M.config, M.hooks, M.streams, M.watchers, server.replies

--- live.watch{ publish = fn(s, source), unpublish = fn(s), message = fn(s, msg),
--- play = fn(s, ns), stop = fn(s, ns) }: follow every stream.
function M.watch(t)
    for event, fn in pairs(t) do
        local list = watchers[event] or error("live.watch: no event " .. tostring(event), 2)
        list[#list + 1] = fn
    end
end

local function emit(list, ...) for i = 1, #list do list[i](...) end end

-- ---- streams ----

--- live.stream(app, name) -> the stream app/name, made (with no publisher,
--- for a player that waits) when live has none; live.forget_if_unused(s)
--- once a player leaves it.
local function get_stream(app_name, name)
    local key = app_name .. "/" .. name
    local s = streams[key]
    if not s then
        local players = rtmp.group{ cache = true, gop_max_bytes = config.gop_max_bytes or nil,
                                    legacy = config.legacy_players }
        s = { key = key, app = app_name, name = name, players = players, viewers = {} }
        streams[key] = s
    end
    return s
end

-- (s may be forgotten already, and its key another stream's: an HTTP player's end)
local function forget_if_unused(s)
    if not s.publisher and s.players:count() == 0 and streams[s.key] == s then streams[s.key] = nil end
end
M.stream, M.forget_if_unused = get_stream, forget_if_unused

--- live.publish(s, source): source feeds s from now on: a publishing
--- NetStream of live.app, or another (a relay's: any table with conn).
--- On a held stream (live.hold) it goes on where the held source stopped.
function M.publish(s, source)
    local resumed = hold.resume(s) -- (its players were told nothing)
    s.publisher = source
    emit(watchers.publish, s, source)
    if resumed then return end
    for p, ns in pairs(s.viewers) do replies.publish_notify(p, ns.id, s.name) end
end

--- live.hold(s, source): source, which feeds s, stops for a while (a pull
--- relay whose upstream connection dropped): s has no publisher, its
--- players stay, told nothing, until a source feeds it again (a local
--- publisher too) or source unpublishes it (hold.lua).
M.hold = hold.start

--- live.unpublish(s, source): source no longer feeds s (nothing if it did not).
function M.unpublish(s, source)
    hold.release(s, source) -- (a hold of it ends)
    if s.publisher ~= source then return end
    s.publisher = nil
    log.info("unpublish %s", s.key)
    for p, ns in pairs(s.viewers) do replies.unpublish_notify(p, ns.id, s.name) end
    emit(watchers.unpublish, s)
    s.players:reset()
    forget_if_unused(s)
end

--- live.feed(s, msg, conn): one message of s's publisher (conn): audio and
--- video to the cache and the players, data (metadata as players get it) too.
function M.feed(s, msg, conn)
    local t = msg.type
    if t == 8 or t == 9 then
        local hdr = s.resume and hold.stamp(s, msg) -- after a hold: the timestamps go on
        if hdr == false then return end
        if hooks.on_media and hooks.on_media(conn, msg, s) == false then return end
        if msg.length == 0 then return end -- no codec byte, no frame: nothing to cache or forward
        local legacy -- nil: the group's policy (config.legacy_players) decides in C
        if hooks.on_legacy_media then legacy = hooks.on_legacy_media(conn, msg, s) ~= false end
        s.players:send(msg, hdr, legacy)
        s.last = hdr and hdr.timestamp or msg.timestamp -- where a hold's next source goes on
    elseif (t == 18 or t == 15) and msg.values then
        local meta = app.metadata(msg)
        if meta then s.players:metadata(meta) else s.players:send(msg) end
    else
        return
    end
    emit(watchers.message, s, msg)
end

-- ---- the app's events ----

function server.on_connect(conn, app_name, msg) return verdict(hooks.on_connect, conn, msg, app_name) end

function server.on_publish(conn, ns)
    local ok, err, code = verdict(hooks.on_publish, conn, ns.app, ns.name)
    if not ok then return false, err, code end
    local s = get_stream(ns.app, ns.name)
    local old = s.publisher
    -- another connection, or another stream of this one, publishing the name
    if old and (old.conn ~= conn or old.id ~= ns.id) then
        if not config.takeover then
            conn:log("info", "publish %s refused: already publishing", s.key)
            return false, s.name .. " is already publishing.", "NetStream.Publish.BadName"
        end
        M.unpublish(s, old)
        if old.conn ~= conn then old.conn:close("replaced by a new publisher of " .. s.key)
        else old:forward() end -- the old stream stays open: its media stop here
        s = get_stream(ns.app, ns.name)
    end
    ns.live = s
    conn:log("info", "publish %s", s.key)
    M.publish(s, ns)
    -- nothing reads each message in Lua: the core fans media out and caches it
    if not (hooks.on_media or hooks.on_legacy_media or config.record_dir or config.push
            or #watchers.message > BUILTIN or s.resume) then -- (a held stream's shift is Lua's)
        ns:forward(s.players)
    end
end

function server.on_unpublish(conn, ns) if ns.live then M.unpublish(ns.live, ns) end end

function server.on_play(conn, ns)
    local ok, err, code = verdict(hooks.on_play, conn, ns.app, ns.name)
    if not ok then return false, err, code end
    local s = get_stream(ns.app, ns.name)
    ns.live = s
    s.viewers[conn] = ns
    conn:log("info", "play %s%s", s.key, s.publisher and "" or " (waiting for a publisher)")
    ns:defer(function() -- after the play reply: the group sends its cache on add
        -- a player that announced no FourCC is a legacy one (config.legacy_players)
        s.players:add(conn, ns.id, caps.legacy(conn.caps))
        emit(watchers.play, s, ns) -- watchers see the player in the group
    end)
end

function server.on_stop(conn, ns)
    local s = ns.live
    if not s or s.viewers[conn] ~= ns then return end
    s.viewers[conn] = nil
    s.players:remove(conn)
    forget_if_unused(s)
    emit(watchers.stop, s, ns)
end

function server.on_media(conn, ns, msg)
    local s = ns.live
    if s and s.publisher == ns then return M.feed(s, msg, conn) end
end
server.on_data = server.on_media

function server.on_close(conn, reason) if hooks.on_close then hooks.on_close(conn, reason) end end

--- live.start([opts]) -> servers: listen (live.app:listen) on opts.listen,
--- an address or a list (default: --listen, else 1935); opts may hold any
--- live.config or rtmp.listen setting.  On a reload, the servers of the
--- first start (the address and rtmp.listen settings need a restart).
--- An address that cannot be listened on raises rtmp.fail (luartmp: one
--- line), as does an --http address (http_api.lua).
function M.start(opts)
    opts = opts or {}
    for k, v in pairs(opts) do
        if config[k] ~= nil then config[k] = v end
    end
    local servers = { server:listen(opts) }
    if not servers[1] then rtmp.fail(servers[2]) end -- (luartmp: one line)
    return servers
end

require("record").attach(M) -- publish(name, "record"/"append") to FLV files (config.record_dir)
require("relay").attach(M)  -- push and pull relays (config.push, config.pull)
require("rtmp.drain").adopt(M) -- a publisher moving here (a drain elsewhere) takes over from the pull relay
require("cluster").attach(M) -- --cluster-redis URL --cluster-node URL: a stream directory in Redis (config.cluster)
require("http_api").attach(M) -- --http ADDR: /metrics, /api/*, HTTP-FLV (config.http)
require("notify").attach(M) -- nginx-rtmp's notifications (config.notify, --notify EVENT=URL)
BUILTIN = #watchers.message -- theirs read messages only when configured (record_dir, push)

if ... ~= "live" then -- run as the main script, not required as a module
    -- A listener that cannot listen now (1935 without --listen, an --http
    -- address, a port taken since luartmp's check) fails with rtmp.fail:
    -- luartmp ends with one line, as its own check does; on a reload
    -- (SIGHUP) the reload is refused and the running server kept.
    M.start()
end
return M
