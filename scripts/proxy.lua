-- proxy.lua: a recording RTMP proxy.  Listens, connects upstream for
-- every connection it accepts, relays both directions and traces them.
--
-- Run it:      luartmp scripts/proxy.lua --upstream rtmp://origin:1935 [--listen ADDR]
--                  [--trace[=PATH]] [--hooks FILE]... [--set NAME=VALUE]... [--faithful]
-- Either side may be TLS: --listen rtmps://ADDR (with luartmp's --tls-cert
-- and --tls-key), --upstream rtmps://origin (with luartmp's --tls-ca, or
-- --tls-insecure).
-- Reuse it:    local proxy = require "proxy"
--              proxy.add_hooks{ client = function(msg, ctx) ... end }
--              proxy.start{ upstream = "rtmp://origin:1935", listen = "1936" }
--
-- Two modes:
-- - message mode (default): the proxy runs one RTMP session with the
--   client and one with the upstream server (handshake, chunking) and
--   relays every message with its csid, message stream id and timestamp,
--   through per-direction hooks that may rewrite, drop, insert or delay
--   messages.  Each side's Set Chunk Size is applied by the session that
--   receives it and becomes the proxy's outgoing chunk size on the other
--   leg; Window Ack Size, Set Peer Bandwidth, pings and every other
--   message are relayed; Acknowledgements and Aborts belong to one TCP
--   leg and are not (each session acknowledges what it receives itself,
--   at the window its peer announced, and not before one).
-- - byte-faithful mode (--faithful): no handshake, no chunking: the bytes
--   read from one socket are written unchanged to the other (passthrough
--   connections), and a copy is decoded with rtmp.tap to trace it.
--
-- Hooks (message mode): hooks.client(msg, ctx) sees each message the
-- client sent, hooks.server(msg, ctx) each message the upstream server
-- sent.  Return the message (possibly a new one, see M.rebuild), nil or
-- false to drop it, an array of messages to send several, or
-- M.delay(seconds, what) to send `what` (a message, an array or nil)
-- later; later messages in that direction wait behind it, in order.

local rtmp = require "rtmp"
local argv = require "rtmp.argv"

local log = rtmp.log
local fmt = string.format
local unpack = string.unpack

local M = {
    config = {
        upstream = nil,     -- rtmp[s]://host[:port][/...]: where every connection is relayed
        listen = nil,       -- address, rtmps:// for TLS (default: luartmp --listen, else 1935)
        trace = nil,        -- true (the log), a path, or nil (luartmp --trace decides)
        faithful = false,   -- byte-faithful mode
    },
    params = {},            -- --set NAME=VALUE, for hook files
    hooks = { client = {}, server = {} }, -- arrays of functions, run in order
    pairs = {},             -- open pairs, by client connection
}

-- Messages that belong to one TCP leg: never relayed.
local LEG_LOCAL = { [2] = true, [3] = true } -- Abort, Acknowledgement

---------------------------------------------------------------------------
-- Hooks API
---------------------------------------------------------------------------

--- Add hooks: t.client and/or t.server, functions (msg, ctx).  Hooks of
--- one direction run in the order they were added, each on what the
--- previous one returned.
function M.add_hooks(t)
    if type(t) ~= "table" then error("hooks: table expected", 2) end
    for _, dir in ipairs{ "client", "server" } do
        local f = t[dir]
        if f ~= nil then
            if type(f) ~= "function" then error("hooks." .. dir .. ": function expected", 2) end
            table.insert(M.hooks[dir], f)
        end
    end
end

local DELAY = {} -- metatable of delay markers

--- A hook's result that sends `what` (a message, an array of messages, or
--- nil) `seconds` from now; the direction's later messages wait behind it.
function M.delay(seconds, what)
    if type(seconds) ~= "number" or seconds < 0 then error("delay: seconds >= 0 expected", 2) end
    return setmetatable({ seconds = seconds, what = what }, DELAY)
end

--- A new message with msg's header (type, csid, stream, timestamp) and
--- the AMF values `values` (an array, with n or not), for commands and
--- data (types 20, 18, and 17, 15 with their format byte).  It is decoded
--- like a received one (name, txn, values, args), for the hooks after.
function M.rebuild(msg, values)
    local body = rtmp.amf0.encode_values(values)
    if msg.type == 17 or msg.type == 15 then body = "\0" .. body end
    return rtmp.message({ type = msg.type, csid = msg.csid, stream = msg.stream,
                          timestamp = msg.timestamp }, body)
end

-- One hook over a list of items: messages go through it; a delay's
-- messages too, staying inside the delay.  Returns the new list.
local function apply_hook(hook, items, ctx)
    local out = {}
    for _, item in ipairs(items) do
        if getmetatable(item) == DELAY then
            local what = item.what
            if what ~= nil then
                local list = (type(what) == "table" and getmetatable(what) == nil) and what or { what }
                item.what = apply_hook(hook, list, ctx)
            end
            out[#out + 1] = item
        else
            local r = hook(item, ctx)
            if r then
                if getmetatable(r) == DELAY or type(r) ~= "table" then
                    out[#out + 1] = r
                else
                    for _, x in ipairs(r) do out[#out + 1] = x end
                end
            end
        end
    end
    return out
end

-- Run a direction's hooks on msg; returns an array of messages and delay
-- markers, in order.
local function run_hooks(list, msg, ctx)
    local items = { msg }
    for _, hook in ipairs(list) do
        items = apply_hook(hook, items, ctx)
    end
    return items
end

---------------------------------------------------------------------------
-- Message mode
---------------------------------------------------------------------------

-- Send one message on the leg's outgoing connection.
local function deliver(leg, msg)
    local to = leg.to
    if msg.type == 1 then -- Set Chunk Size: becomes ours on this leg
        local size = msg.chunk_size or (#msg.payload >= 4 and unpack(">I4", msg.payload) & 0x7FFFFFFF)
        if size and size > 0 then return to:set_chunk_size(size) end
        return true
    end
    return to:send({ csid = msg.csid, stream = msg.stream, timestamp = msg.timestamp }, msg)
end

-- Send what is queued on the leg, up to the first pending delay.
local function pump(leg)
    while not leg.held and leg.head <= leg.tail do
        local item = leg.queue[leg.head]
        leg.queue[leg.head] = nil
        leg.head = leg.head + 1
        if getmetatable(item) == DELAY then
            leg.held = rtmp.timer(item.seconds, function()
                leg.held = nil
                if leg.closed then return end
                local what = item.what
                if what ~= nil then
                    -- the delayed messages go first, before what queued meanwhile
                    local list = (type(what) == "table" and getmetatable(what) == nil) and what or { what }
                    for i = #list, 1, -1 do
                        leg.head = leg.head - 1
                        leg.queue[leg.head] = list[i]
                    end
                end
                pump(leg)
            end)
        else
            local ok, err = deliver(leg, item)
            if not ok then
                leg.from:log("warn", "proxy: relaying %s failed: %s", tostring(item), tostring(err))
                return
            end
        end
    end
end

local function enqueue(leg, items)
    for _, item in ipairs(items) do
        leg.tail = leg.tail + 1
        leg.queue[leg.tail] = item
    end
    pump(leg)
end

local function new_leg(dir, hooks)
    return { dir = dir, hooks = hooks, queue = {}, head = 1, tail = 0 }
end

-- One message received on a leg.
local function relay(leg, msg)
    if LEG_LOCAL[msg.type] then return end
    local items = #leg.hooks > 0 and run_hooks(leg.hooks, msg, leg.ctx) or { msg }
    if #items > 0 then enqueue(leg, items) end
end

local function close_pair(p, reason)
    for _, leg in ipairs{ p.c2s, p.s2c } do
        leg.closed = true
        if leg.held then leg.held:stop(); leg.held = nil end
    end
    if not p.client.closed then p.client:close(reason) end
    if p.upstream and not p.upstream.closed then p.upstream:close(reason) end
end

-- The settings both legs share.
local function leg_settings()
    return {
        trace = M.config.trace,
        -- pings are answered end to end; acknowledgements, chunk sizes,
        -- aborts, windows and bandwidth are applied by each leg's session
        auto = { ping = false },
        -- each leg acknowledges only once its peer announced a window (as
        -- the peer at the other end is asked to by the same, relayed,
        -- Window Ack Size), never at a window of our own
        ack_window = 0,
    }
end

local function message_mode_open(client)
    local p = { client = client, state = {} }
    M.pairs[client] = p
    p.c2s = new_leg("c2s", M.hooks.client)
    p.s2c = new_leg("s2c", M.hooks.server)
    local settings = leg_settings()
    settings.on_message = function(_, msg) relay(p.s2c, msg) end
    settings.on_close = function(_, reason) close_pair(p, "upstream: " .. reason) end
    local up, err = rtmp.connect(M.config.upstream, settings)
    if not up then
        client:log("warn", "proxy: upstream %s: %s", M.config.upstream, err)
        client:close("upstream: " .. tostring(err))
        return
    end
    p.upstream = up
    client:log("info", "proxy: conn=%d -> upstream conn=%d %s", client.id, up.id, up.peer)
    p.c2s.from, p.c2s.to = client, up
    p.s2c.from, p.s2c.to = up, client
    local ctx = { client = client, upstream = up, state = p.state, proxy = M }
    p.c2s.ctx = setmetatable({ dir = "c2s", from = client, to = up }, { __index = ctx })
    p.s2c.ctx = setmetatable({ dir = "s2c", from = up, to = client }, { __index = ctx })
end

---------------------------------------------------------------------------
-- Byte-faithful mode
---------------------------------------------------------------------------

-- Where faithful-mode trace lines go: a file (appended) or stderr.
local trace_out
local function trace_writer()
    if trace_out ~= nil then return trace_out end
    local where = M.config.trace
    if where == nil then where = rtmp.options.trace end
    if type(where) == "string" then
        local f, err = io.open(where, "a")
        if not f then
            log.warn("proxy: cannot open trace file %s: %s", where, tostring(err))
            trace_out = false
        else
            f:setvbuf("line")
            trace_out = f
        end
    elseif where then
        trace_out = io.stderr
    else
        trace_out = false
    end
    return trace_out
end

-- Decode a copy of bytes that went `dir` and trace each message on both
-- legs: the client leg sees c2s as "in", the upstream leg as "out".
local function faithful_trace(p, dir, bytes)
    if not p.tap then return end
    local entries = p.tap:feed(dir, bytes, rtmp.now())
    local out = trace_writer()
    if out then
        for _, e in ipairs(entries) do
            local time = e.t
            local c_dir = dir == "c2s" and "in" or "out"
            local u_dir = dir == "c2s" and "out" or "in"
            out:write(rtmp.trace_line(e.msg, { dir = c_dir, conn = p.client.id, time = time }), "\n")
            if p.upstream then
                out:write(rtmp.trace_line(e.msg, { dir = u_dir, conn = p.upstream.id, time = time }), "\n")
            end
        end
    end
    p.count = p.count + #entries
    if p.tap.error and not p.tap_error_logged then
        p.tap_error_logged = true
        p.client:log("warn", "proxy: stopped decoding the copy: %s (bytes are still relayed)",
            tostring(p.tap.error))
    end
end

local function faithful_open(client)
    local tap = require "rtmp.tap"
    local p = { client = client, tap = tap.new(), count = 0, c2s = {}, s2c = {} }
    M.pairs[client] = p
    local up, err = rtmp.connect(M.config.upstream, {
        passthrough = true,
        on_data = function(_, bytes)
            p.client:raw(bytes)
            faithful_trace(p, "s2c", bytes)
        end,
        on_close = function(_, reason) close_pair(p, "upstream: " .. reason) end,
    })
    if not up then
        client:log("warn", "proxy: upstream %s: %s", M.config.upstream, err)
        client:close("upstream: " .. tostring(err))
        return
    end
    p.upstream = up
    client:log("info", "proxy: conn=%d -> upstream conn=%d %s (byte-faithful)", client.id, up.id, up.peer)
end

---------------------------------------------------------------------------
-- Starting
---------------------------------------------------------------------------

--- Start listening.  opts: upstream (required), listen, trace, faithful,
--- and any rtmp.listen setting.  Returns the server, or nil and why it
--- could not listen.
function M.start(opts)
    opts = opts or {}
    local own = { upstream = true, listen = true, trace = true, faithful = true }
    for k, v in pairs(opts) do
        if own[k] then M.config[k] = v end
    end
    local up = M.config.upstream
    if type(up) ~= "string" then error("proxy: no upstream URL", 2) end
    local u, err = rtmp.parse_url(up)
    if not u then error("proxy: bad upstream URL '" .. up .. "': " .. err, 2) end
    local settings = M.config.faithful and { passthrough = true } or leg_settings()
    for k, v in pairs(opts) do
        if not own[k] then settings[k] = v end
    end
    settings.listen = M.config.listen or rtmp.options.listen or "1935"
    if type(settings.listen) == "table" then settings.listen = settings.listen[1] end
    if M.config.faithful then
        settings.on_open = faithful_open
        settings.on_data = function(client, bytes)
            local p = M.pairs[client]
            if not p or not p.upstream then return end
            p.upstream:raw(bytes)
            faithful_trace(p, "c2s", bytes)
        end
    else
        settings.on_open = message_mode_open
        settings.on_message = function(client, msg)
            local p = M.pairs[client]
            if p and p.upstream then relay(p.c2s, msg) end
        end
    end
    settings.on_close = function(client, reason)
        local p = M.pairs[client]
        M.pairs[client] = nil
        if p then close_pair(p, "client: " .. reason) end
    end
    local srv, lerr = rtmp.listen(settings)
    if not srv then return nil, lerr end
    log.info("proxy: %s -> %s (%s mode)", settings.listen, up, M.config.faithful and "byte-faithful" or "message")
    return srv
end

--- Load a hook file: a Lua chunk called with (proxy, params) that returns
--- a table { client = fn, server = fn } (or adds hooks itself and returns
--- nothing).
function M.load_hooks(path)
    local chunk, err = loadfile(path)
    if not chunk then return nil, err end
    local ok, t = pcall(chunk, M, M.params)
    if not ok then return nil, t end
    if t ~= nil then M.add_hooks(t) end
    return true
end

---------------------------------------------------------------------------
-- Command line
---------------------------------------------------------------------------

-- "NAME=VALUE" as { NAME, VALUE } (the kind of --set, rtmp.argv)
local function name_value(v)
    local k, x = v:match("^([%w_]+)=(.*)$")
    if not k then return nil, "NAME=VALUE" end
    return { k, x }
end

local cmd = argv.new{
    prog = "proxy.lua",
    usage = [[
usage: luartmp scripts/proxy.lua --upstream rtmp://HOST[:PORT] [options]

Accepts RTMP connections and relays each one to the upstream server,
both directions, tracing every message.

]],
    options = {
        { "upstream", "string", arg = "URL", help = "the server every connection is relayed to (required;\n" ..
                                                   "rtmps:// for TLS)" },
        { "listen", "string", arg = "ADDR", help = "where to listen, rtmps://ADDR for TLS (default:\n" ..
                                                 "luartmp --listen, else 1935)" },
        { "trace", "string", arg = "PATH", optional = true,
          help = "trace every message on both legs (to the log, or PATH)" },
        { "faithful", help = "forward bytes unchanged; decode a copy for the trace" },
        { "hooks", "string", arg = "FILE", many = true,
          help = "load hook functions from FILE (repeatable; message mode)" },
        { "set", name_value, arg = "NAME=VALUE", many = true,
          help = "a parameter for hook files (proxy.params.NAME)" },
    },
}

function M.main(args)
    local o, pos = cmd:run(args)
    if pos[1] then cmd:fail(fmt("unknown argument '%s'", pos[1])) end
    M.config.upstream = o.upstream or M.config.upstream
    M.config.listen = o.listen or M.config.listen
    if o.trace ~= nil then M.config.trace = o.trace end
    if o.faithful then M.config.faithful = true end
    for _, kv in ipairs(o.set or {}) do M.params[kv[1]] = kv[2] end
    local hook_files = o.hooks or {}
    if not M.config.upstream then cmd:fail("--upstream URL is required") end
    if not rtmp.parse_url(M.config.upstream) then
        cmd:fail(fmt("bad --upstream '%s' (want rtmp[s]://host[:port])", M.config.upstream))
    end
    if M.config.faithful and #hook_files > 0 then
        cmd:fail("--hooks needs message mode: the byte-faithful mode changes nothing")
    end
    for _, f in ipairs(hook_files) do
        local ok, err = M.load_hooks(f)
        if not ok then
            io.stderr:write(fmt("proxy.lua: hooks %s: %s\n", f, err))
            os.exit(1)
        end
    end
    local srv, err = M.start()
    if not srv then
        io.stderr:write(fmt("proxy.lua: %s\n", err))
        os.exit(1)
    end
end

if ... ~= "proxy" then -- run as the main script, not required as a module
    M.main(arg or {})
end
return M
