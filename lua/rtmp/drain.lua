-- rtmp.drain: stop a server without dropping its clients, and take over
-- the streams that move in.  docs/DRAIN.md.
--
--   luartmp --drain-to rtmp://other:1935/live [--drain-timeout 30]
--   rtmp.drain{ to = "rtmp://other:1935/live", timeout = 30 }
--
-- The leaving side (rtmp.drain, and SIGTERM with --drain-to): stop
-- accepting, send Enhanced RTMP's NetConnection.Connect.ReconnectRequest
-- (app.reconnect_request) to every client connection that announced
-- capsEx Reconnect in connect (conn.caps; the others get nothing), wait
-- until the clients have left or the timeout has passed, then close what
-- is left and end rtmp.run.  A client that follows (luartmp's client API,
-- lua/rtmp/client.lua) moves at a keyframe with nothing lost or doubled.
--
-- The arriving side (drain.adopt(live), for scripts/live.lua): a
-- publisher that moves here while a pull relay feeds its stream from the
-- server it left takes the stream over at its first keyframe, after the
-- relay has brought everything before it, so that players here read
-- every frame once and never see the stream end.
local rtmp = require "rtmp"
local app = require "rtmp.app"

local _M = {}

local log = rtmp.log
local type, ipairs, tostring = type, ipairs, tostring

--- How long a publisher that moved here waits for the pull relay to bring
--- the frames before its first keyframe (s), and how much of its own it
--- holds meanwhile (bytes); past either it takes the stream over at once.
_M.handover_timeout = 10
_M.handover_bytes = 64 * 1024 * 1024

local draining -- the drain under way: { to, deadline, timer }

-- The open connections accepted by this process's servers.
local function accepted()
    local list = {}
    for _, conn in ipairs(rtmp.connections()) do
        if conn.role == "server" then list[#list + 1] = conn end
    end
    return list
end

--- drain.capable(conn) -> whether the client announced capsEx Reconnect
--- in its connect (it follows a ReconnectRequest).
function _M.capable(conn)
    local caps = conn.caps
    return caps ~= nil and caps.caps_ex.reconnect == true
end

-- The end: close what is left, end rtmp.run.
local function finish(why)
    local d = draining
    if d.timer then d.timer:stop() end
    local left = #accepted()
    if left > 0 then
        log.info("drain: %s: closing the %d connection(s) left", why, left)
    else
        log.info("drain: %s", why)
    end
    rtmp.shutdown(why)
    rtmp.stop()
end

--- rtmp.drain([t]) -> true, or nil, err (draining already): t.to, the URL
--- clients are asked to reconnect to (absolute, or relative to each
--- client's tcUrl; default rtmp.options.drain_to; none: each its own
--- tcUrl, the same address), t.timeout (s, default
--- rtmp.options.drain_timeout, else the setting's default), t.description
--- (the request's text).  Returns once the requests are sent; the loop
--- goes on until the clients have left or the timeout, then rtmp.run ends.
function _M.drain(t)
    if t ~= nil and type(t) ~= "table" then error("rtmp.drain: table expected", 2) end
    t = t or {}
    local opts = rtmp.options
    local to = t.to or opts.drain_to
    local timeout = t.timeout or opts.drain_timeout or rtmp.settings.drain_timeout.default
    if to ~= nil and type(to) ~= "string" then error("rtmp.drain: to must be a URL", 2) end
    if to and to:match("^%a[%w+.-]*:") and not rtmp.parse_url(to) then
        error("rtmp.drain: to is not an rtmp[s]:// URL: " .. to, 2)
    end
    if type(timeout) ~= "number" or timeout < 0 then error("rtmp.drain: timeout must be seconds >= 0", 2) end
    if draining then return nil, "draining already" end
    draining = { to = to, deadline = rtmp.now() + timeout }
    rtmp.stop_listening()
    local description = t.description or "The server is shutting down."
    local asked, others = 0, 0
    for _, conn in ipairs(accepted()) do
        if _M.capable(conn) then
            app.reconnect_request(conn, { tc_url = to, description = description })
            conn:log("info", "drain: asked to reconnect to %s", to or "its own tcUrl")
            asked = asked + 1
        else
            others = others + 1
        end
    end
    log.info("drain: not accepting; %d client(s) asked to reconnect to %s, %d that cannot; closing what is "
             .. "left in %g s", asked, to or "their own tcUrl", others, timeout)
    local d = draining
    local function check()
        if #accepted() == 0 then return finish("every client left") end
        if rtmp.now() >= d.deadline then return finish("timeout") end
    end
    d.timer = rtmp.timer(math.min(0.05, timeout), check, 0.05)
    return true
end

--- drain.sigterm(): what SIGTERM does with luartmp --drain-to: the drain;
--- during one, the shutdown at once (as SIGINT).
function _M.sigterm()
    if draining then
        log.info("drain: SIGTERM again: shutting down now")
        rtmp.shutdown("shutdown")
        return rtmp.stop()
    end
    return _M.drain()
end

--- drain.draining() -> whether a drain is under way.
function _M.draining() return draining ~= nil end

-- ---- the arriving side ----

-- A coded audio or video frame.
local function coded(m)
    local p = m.packet
    return p == "coded_frames" or p == "coded_frames_x"
end

-- live stream -> its handover; here, not in adopt, so a handover under
-- way goes on when live.lua is loaded again (rtmp.reload) and adopts anew
local pending = setmetatable({}, { __mode = "k" })

--- drain.adopt(live): a publisher of a stream that a pull relay of live
--- feeds (scripts/relay.lua: the stream is played from the server the
--- publisher leaves) takes the stream over without its players seeing an
--- end: its publish is accepted and its messages held; the relay's go on
--- until its frame of the kind of the publisher's first keyframe (a stream
--- without video: its first audio frame) at that timestamp or later, or
--- until the relay's stream ends (the publisher left the other server);
--- then the publisher's held messages follow, less the frames the relay
--- brought, and it publishes the stream from here on.  Past
--- drain.handover_timeout or drain.handover_bytes it takes over at once.
--- The relays of live do not follow a ReconnectRequest of their upstream:
--- the publisher comes here, or the relay pulls again.
function _M.adopt(live)
    local server, hooks, streams = live.app, live.hooks, live.streams
    local orig = { on_publish = server.on_publish, on_media = server.on_media, on_data = server.on_data,
                   on_unpublish = server.on_unpublish, unpublish = live.unpublish, feed = live.feed }

    -- the relays: no move of their own
    live.watch{ publish = function(_, source)
        local link = source.relay
        if link and link.nc then link.nc.reconnect = false end
    end }

    -- The relay's part has ended: the publisher's held messages, then it.
    local function take_over(s, h, why)
        if pending[s] ~= h then return end
        pending[s] = nil
        h.timer:stop()
        local ns = h.ns
        ns.handover = nil
        if ns.conn.closed or ns.left then return end
        ns.conn:log("info", "publish %s: takes the stream over from the pull relay (%s)", s.key, why)
        ns.live = s
        live.publish(s, ns) -- the relay stops at its next message (a local publisher took it)
        local last = h.relay_ts
        for _, m in ipairs(h.held) do
            local t = m.type
            if not ((t == 8 or t == 9) and coded(m) and last[t] and m.timestamp <= last[t]) then
                orig.feed(s, m, ns.conn)
            end
        end
    end

    server.on_publish = function(conn, ns)
        local s = streams[ns.app .. "/" .. ns.name]
        local old = s and s.publisher
        if not (old and old.relay) or pending[s] then return orig.on_publish(conn, ns) end
        local ok, err, code = app.verdict(hooks.on_publish, conn, ns.app, ns.name)
        if not ok then return false, err, code end
        if pending[s] or s.publisher ~= old then return orig.on_publish(conn, ns) end
        local h = { ns = ns, held = {}, bytes = 0, relay_ts = {} }
        h.timer = rtmp.timer(_M.handover_timeout, function() take_over(s, h, "timeout") end)
        pending[s], ns.handover = h, s
        conn:log("info", "publish %s: a pull relay feeds it: taking over at the first keyframe", s.key)
    end

    -- the publisher's messages while its handover waits
    local function hold(conn, ns, msg)
        local s = ns.handover
        local h = s and pending[s]
        if not h then return false end
        h.held[#h.held + 1] = msg
        h.bytes = h.bytes + msg.length
        local t = msg.type
        if t == 9 then h.video = true end -- a sequence header says so too
        if not h.cut and (t == 8 or t == 9) and coded(msg) and (t == 9 and msg.keyframe or t == 8 and not h.video) then
            h.cut, h.cut_type = msg.timestamp, t
        end
        if h.bytes > _M.handover_bytes then take_over(s, h, "held " .. h.bytes .. " bytes") end
        return true
    end
    server.on_media = function(conn, ns, msg)
        if not hold(conn, ns, msg) then return orig.on_media(conn, ns, msg) end
    end
    server.on_data = function(conn, ns, msg)
        if not hold(conn, ns, msg) then return orig.on_data(conn, ns, msg) end
    end
    server.on_unpublish = function(conn, ns)
        local s = ns.handover
        if s and pending[s] then
            pending[s].timer:stop()
            pending[s], ns.handover = nil, nil
        end
        return orig.on_unpublish(conn, ns)
    end

    -- the relay's messages while a handover waits: up to the cut
    live.feed = function(s, msg, conn)
        local h = pending[s]
        local src = s.publisher
        if h and src and src.relay and src.conn == conn then
            local t = msg.type
            if (t == 8 or t == 9) and coded(msg) then
                if h.cut and t == h.cut_type and msg.timestamp >= h.cut then
                    return take_over(s, h, "the relay reached the publisher's first keyframe")
                end
                h.relay_ts[t] = msg.timestamp
            end
        end
        return orig.feed(s, msg, conn)
    end
    -- the relay's stream ended (the publisher left the other server)
    live.unpublish = function(s, source)
        local h = pending[s]
        if h and s.publisher == source and source.relay then
            return take_over(s, h, "the relay's stream ended")
        end
        return orig.unpublish(s, source)
    end
    return live
end

return _M
