-- rtmp.flow: the runtime behind the scripts capture2lua writes.
--
-- A generated script is one table: options, then the recorded conversation
-- as a flat list of steps, read top to bottom.
--
--   local flow = require "rtmp.flow"
--   local expect, send, media, null = flow.expect, flow.send, flow.media, flow.null
--   return flow.server {
--     media = "flow.flv",
--     expect { "command", "connect", txn = 1 },                  -- the peer sends this
--     send { "window_ack_size", csid = 2, window = 2500000 },     -- we answer with these
--     send { "command", csid = 3, values = { "_result", 1, { fmsVer = "FMS/3,0,1,123" } } },
--     expect { "command", "play", txn = 4 },
--     media { from = 1, to = 250, stream = 1, csid = { audio = 6, video = 7 } },
--   }
--
-- flow.server(spec) listens and plays the recorded server to every client;
-- flow.client(spec) connects and plays the recorded client.  Both read the
-- script's arguments (`arg`, or spec.args); see docs/CAPTURE2LUA.md.
--
-- Matching: the runtime walks the `expect` steps in order.  A peer message
-- that matches the next one sends that step's replies.  A command or data
-- message that matches a later step skips the steps between (logged);
-- acknowledgements, pings, Set Buffer Length and media never need a step.
-- A `_result`/`_error` reply carries the recorded txn of the command it
-- answers; the live peer's txn for that command is put in its place.
--
-- Only the public API is used (rtmp.listen, rtmp.connect with handlers,
-- rtmp.timer, rtmp.now, rtmp.flv, conn methods), and `rtmp` is looked up
-- when used, so the deterministic replay harness can stand in for it.

local _M = {}

local fmt = string.format
local unpack = table.unpack

local function R() return require "rtmp" end

---------------------------------------------------------------------------
-- What a script is written with
---------------------------------------------------------------------------

_M.null = R().null
_M.undefined = R().undefined
_M.unsupported = R().amf0.unsupported

--- expect { WHAT [, NAME] [, txn = N] [, code = C] [, count = N] }: a
--- message from the peer. WHAT is a type name ("command", "data",
--- "set_chunk_size", "user_control", ...) or "media" (wait for `count`
--- audio/video messages); NAME is the command or data name, or the user
--- control event name; `code` the `code` of a command's info object
--- (onStatus, _result, _error).
function _M.expect(t)
    if type(t) ~= "table" or type(t[1]) ~= "string" then
        error("expect: want { type_name [, name] ... }", 2)
    end
    return { kind = "expect", what = t[1], name = t[2], txn = t.txn, count = t.count, code = t.code }
end

--- send { TYPE, csid = , stream = , timestamp = , values = {...} | fields }:
--- one message we send. TYPE is a type name or number.
function _M.send(t)
    if type(t) ~= "table" or (type(t[1]) ~= "string" and math.type(t[1]) ~= "integer") then
        error("send: want { type_name, ... }", 2)
    end
    t.kind = "send"
    return t
end

--- media { from = I, to = J, stream = S, csid = { audio = A, video = V } }:
--- tags I..J of the companion FLV (numbered from 1), sent with their
--- timestamps on stream S.
function _M.media(t)
    if type(t) ~= "table" or math.type(t.from) ~= "integer" or math.type(t.to) ~= "integer" then
        error("media: want { from = first tag, to = last tag, ... }", 2)
    end
    t.kind = "media"
    return t
end

-- Value constructors for what a plain table cannot say.
local function kind(t, k, extra)
    local mt = { __amf = k }
    for key, v in pairs(extra or {}) do mt[key] = v end
    return setmetatable(t, mt)
end

--- ecma{ k = v, ... }: an ECMA array (onMetaData).
function _M.ecma(t) return kind(t, "ecma") end
--- array{ v1, v2, ... }: a strict array (needed when empty).
function _M.array(t) t.n = t.n or #t; return kind(t, "array") end
--- date(ms [, tz]).
function _M.date(ms, tz) return kind({ time = ms, tz = tz or 0 }, "date") end
--- typed("Class", { k = v }).
function _M.typed(class, t) return kind(t, "typed", { __class = class }) end
--- amf3(v): v written switched to AMF3.
function _M.amf3(v) return R().amf3.value(v) end

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------

-- --name VALUE / --name=VALUE / --flag; the rest positional.
local function parse_args(argv, spec)
    local o, pos = {}, {}
    local i = 1
    while argv[i] ~= nil do
        local a = argv[i]
        if a:sub(1, 2) == "--" and #a > 2 then
            local name, val = a:match("^%-%-([^=]+)=(.*)$")
            name = name or a:sub(3)
            local k = spec[name]
            if not k then error(fmt("unknown option '%s'", a), 0) end
            if k == "flag" then
                o[name] = true
            else
                if not val then
                    i = i + 1
                    val = argv[i]
                    if val == nil then error(fmt("option '--%s' needs a value", name), 0) end
                end
                if k == "number" then
                    val = tonumber(val)
                    if not val or val < 0 then error(fmt("bad --%s", name), 0) end
                end
                o[name] = val
            end
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    return o, pos
end

-- The directory of the script that called flow.server/flow.client: the
-- first Lua file up the stack other than this one; `return flow.server{}`
-- is a tail call that leaves no frame, so then the script's arg[0].
local function script_dir()
    local here = debug.getinfo(1, "S").source
    for level = 2, 20 do
        local info = debug.getinfo(level, "St")
        if not info then break end
        local src = info.source or ""
        if src == here and info.istailcall then break end
        if src ~= here and src:sub(1, 1) == "@" then
            return src:sub(2):match("^(.*)/[^/]*$") or "."
        end
    end
    local a0 = arg and arg[0]
    if type(a0) == "string" then return a0:match("^(.*)/[^/]*$") or "." end
    return nil
end

-- A relative media path is taken next to the script when the file is
-- there, else from the current directory.
local function resolve(path, dir)
    if not path or path:sub(1, 1) == "/" or not dir then return path end
    local p = dir .. "/" .. path
    local f = io.open(p, "rb")
    if f then f:close(); return p end
    return path
end

-- spec (a table from the script) -> { steps = { [0] = opening sends,
-- { expect = e, sends = {...} }, ... }, ... }
local function compile(spec)
    local steps = { [0] = { sends = {} } }
    local cur = steps[0]
    for i, e in ipairs(spec) do
        if type(e) ~= "table" or not e.kind then
            error(fmt("flow: entry %d is not an expect, send or media", i), 3)
        end
        if e.kind == "expect" then
            cur = { expect = e, sends = {} }
            steps[#steps + 1] = cur
        else
            cur.sends[#cur.sends + 1] = e
        end
    end
    return steps
end

---------------------------------------------------------------------------
-- Matching
---------------------------------------------------------------------------

local MEDIA = { audio = true, video = true, aggregate = true }
-- Peer messages that never need a step: they are skipped when they do not
-- match the next one.
local function tolerated(msg)
    if MEDIA[msg.type_name] or msg.type_name == "ack" then return true end
    if msg.type_name == "user_control" then
        local e = msg.event_name
        return e == "ping_request" or e == "ping_response" or e == "set_buffer_length"
            or e == "buffer_empty" or e == "buffer_ready"
    end
    return false
end

--- flow.tolerated(msg) -> true for the peer messages that never need a
--- step (media, acknowledgements, pings, buffer events): capture2lua.lua
--- leaves them out of the steps it writes, the runtime lets them pass.
_M.tolerated = tolerated

-- The `code` of a command's info object (its second argument), if any.
local function info_code(msg)
    local info = msg.args and msg.args[2]
    return type(info) == "table" and type(info.code) == "string" and info.code or nil
end

-- strict_txn (the client side, which sends the recorded txns): a
-- _result or _error must carry the step's txn.
local function matches(e, msg, strict_txn)
    if e.what == "media" then return false end
    if strict_txn and e.txn ~= nil and msg.txn ~= nil and msg.txn ~= e.txn
            and (msg.name == "_result" or msg.name == "_error") then
        return false
    end
    if e.what ~= msg.type_name and e.what ~= msg.type then return false end
    if e.name == nil then return true end
    if msg.type_name == "user_control" then
        return e.name == msg.event_name or e.name == msg.event
    end
    if e.code ~= nil and e.code ~= info_code(msg) then return false end
    return e.name == msg.name
end

-- A short description of a message or an expect, for the log.
local function describe(m)
    if m.kind == "expect" then
        if m.what == "media" then return fmt("%d media messages", m.count or 0) end
        local s = m.name and fmt("%s %s", m.what, tostring(m.name)) or m.what
        return m.code and fmt("%s %s", s, m.code) or s
    end
    local name = m.name
    if m.type_name == "user_control" then name = m.event_name or m.event end
    local s = name and fmt("%s %s", m.type_name, tostring(name)) or tostring(m.type_name)
    local code = info_code(m)
    return code and fmt("%s %s", s, code) or s
end

---------------------------------------------------------------------------
-- One connection being played
---------------------------------------------------------------------------

local Player = {}
Player.__index = Player

local function new_player(f, conn)
    local p = setmetatable({
        f = f, conn = conn, steps = f.steps, i = 1, txns = {}, queue = {}, head = 1,
        busy = false, media_seen = 0, tag = 1, reader = nil, timer = nil, closed = false,
    }, Player)
    return p
end

function Player:log(level, ...)
    self.conn:log(level, ...)
end

-- Queue a step's sends and start sending.
function Player:fire(j, msg)
    local st = self.steps[j]
    local e = st.expect
    if e and e.txn ~= nil and msg and msg.txn ~= nil then self.txns[e.txn] = msg.txn end
    self.i = j + 1
    self.media_seen = 0
    if j > 0 then
        self:log("info", "flow step %d/%d: got %s, %d to send", j, #self.steps, describe(e),
            #st.sends)
    end
    for _, s in ipairs(st.sends) do self.queue[#self.queue + 1] = s end
    self:pump()
    if self.i > #self.steps and self.f.on_steps_done then self.f.on_steps_done(self) end
end

-- A message from the peer.
function Player:message(msg)
    local steps = self.steps
    local i = self.i
    if self.f.save and (MEDIA[msg.type_name] or msg.name == "onMetaData"
            or msg.name == "@setDataFrame") then
        local ok, err = self.f.save:write(msg)
        if not ok and err ~= nil then self:log("warn", "flow: cannot save: %s", tostring(err)) end
    end
    if self.f.on_peer_message then self.f.on_peer_message(self, msg) end
    if i > #steps then
        if not tolerated(msg) then
            self:log("info", "flow: %s after the last step", describe(msg))
        end
        return
    end
    local e = steps[i].expect
    if e.what == "media" and MEDIA[msg.type_name] then
        self.media_seen = self.media_seen + 1
        if self.media_seen >= (e.count or 0) then self:fire(i, msg) end
        return
    end
    if matches(e, msg, self.f.strict_txn) then return self:fire(i, msg) end
    if tolerated(msg) then return end
    local strong = msg.type_name == "command" or msg.type_name == "command3"
        or msg.type_name == "data" or msg.type_name == "data3"
    if strong then
        for j = i + 1, #steps do
            if matches(steps[j].expect, msg, self.f.strict_txn) then
                self:log("warn", "flow: got %s at step %d: skipped steps %d..%d (expected %s)",
                    describe(msg), i, i, j - 1, describe(e))
                return self:fire(j, msg)
            end
        end
    end
    self:log("warn", "flow: unexpected %s at step %d (expected %s)", describe(msg), i, describe(e))
end

-- The values of a command or data send, with the live txn in a reply.
function Player:values(s)
    local v = s.values or {}
    local n = v.n or #v
    if (s[1] == "command" or s[1] == "command3") and (v[1] == "_result" or v[1] == "_error")
            and self.txns[v[2]] ~= nil then
        local c = { n = n }
        for k = 1, n do c[k] = v[k] end
        c[2] = self.txns[v[2]]
        v = c
    end
    if self.f.rewrite then v = self.f.rewrite(self, s, v) or v end
    return v, n
end

local NUMBERED = { [1] = "set_chunk_size", [2] = "abort", [3] = "ack", [4] = "user_control",
    [5] = "window_ack_size", [6] = "set_peer_bandwidth", [8] = "audio", [9] = "video",
    [15] = "data3", [17] = "command3", [18] = "data", [20] = "command" }

-- Send one `send` entry now.
function Player:send_one(s)
    local conn = self.conn
    local rtmp = R()
    local t = s[1]
    if math.type(t) == "integer" and NUMBERED[t] and s.payload == nil then t = NUMBERED[t] end
    local hdr = { csid = s.csid, stream = s.stream or 0, timestamp = s.timestamp or 0 }
    local ok, err
    if t == "set_chunk_size" then
        ok, err = conn:set_chunk_size(s.chunk_size)
    elseif t == "window_ack_size" then
        ok, err = conn:set_window_ack_size(s.window)
    elseif t == "set_peer_bandwidth" then
        local limit = s.limit
        if limit == nil then limit = false end
        ok, err = conn:set_peer_bandwidth(s.window, limit)
    elseif t == "ack" then
        ok, err = conn:ack(s.sequence)
    elseif t == "abort" then
        ok, err = conn:abort(s.abort_csid)
    elseif t == "user_control" then
        local a = s.stream_id or s.ping_time
        if a ~= nil and s.buffer_length ~= nil then
            ok, err = conn:user_control(s.event, a, s.buffer_length)
        else
            ok, err = conn:user_control(s.event, a)
        end
    elseif s.payload == nil and (t == "command" or t == "data" or t == "command3" or t == "data3") then
        local v, n = self:values(s)
        if s.chunk and s.chunk ~= conn.out_chunk_size then
            local body = rtmp.amf0.encode(unpack(v, 1, n))
            if t == "command3" or t == "data3" then body = "\0" .. body end
            hdr.type = t
            ok, err = self:send_chunked(hdr, body, s.chunk)
        else
            ok, err = conn[t](conn, hdr, unpack(v, 1, n))
        end
    elseif s.payload ~= nil then
        hdr.type = t
        if s.chunk and s.chunk ~= conn.out_chunk_size then
            ok, err = self:send_chunked(hdr, s.payload, s.chunk)
        else
            ok, err = conn:send(hdr, s.payload)
        end
    else
        error(fmt("flow: cannot send %s without a payload", tostring(t)))
    end
    if not ok then self:log("warn", "flow: send %s: %s", tostring(t), tostring(err)) end
    return ok
end

-- A message chunked at `size` whatever our announced chunk size is (what
-- the recorded peer did).
function Player:send_chunked(hdr, payload, size)
    local sizes = {}
    for k = 1, math.max(1, (#payload + size - 1) // size) do sizes[k] = size end
    return self.conn:send_chunks(hdr, payload, sizes)
end

-- Send queued entries in order; a media range takes time and holds the
-- entries after it.
function Player:pump()
    while not self.busy and not self.closed and self.head <= #self.queue do
        local s = self.queue[self.head]
        self.head = self.head + 1
        if s.kind == "media" then
            self:start_media(s)
        else
            self:send_one(s)
        end
    end
end

function Player:open_media()
    local rtmp = R()
    if not self.f.media then
        self:log("error", "flow: the script sends media but no media file is set")
        return nil
    end
    local r, err = rtmp.flv.open(self.f.media)
    if not r then self:log("error", "flow: %s", tostring(err)) end
    self.reader, self.tag = r, 1
    return r
end

local CSID = { [8] = 6, [9] = 7, [18] = 5 }
local TYPE = { [8] = "audio", [9] = "video", [18] = "data" }

function Player:start_media(m)
    local rtmp = R()
    if m.from < self.tag and self.reader then self.reader:close(); self.reader = nil end
    local r = self.reader or self:open_media()
    if not r then return end
    while self.tag < m.from do
        local msg = r:read()
        if not msg then break end
        self.tag = self.tag + 1
    end
    self.busy = true
    local csids = m.csid or {}
    local sent = 0
    local function step()
        self.timer = nil
        if self.closed then return end
        local batch = 0
        while self.tag <= m.to do
            if (self.conn.pending or 0) > 4 * 1024 * 1024 or batch >= 200 then
                self.timer = rtmp.timer(0.005, step)
                return
            end
            local msg, err = r:read()
            if not msg then
                if err then self:log("warn", "flow: media: %s", tostring(err)) end
                self.tag = m.to + 1
                break
            end
            -- one media clock per connection, across ranges: the first tag
            -- sent fixes it; a timestamp going back starts it again
            local clock = self.clock
            if not clock or msg.timestamp < clock.ts0 then
                clock = { t0 = rtmp.now(), ts0 = msg.timestamp }
                self.clock = clock
            end
            if not self.f.fast then
                local wait = clock.t0 + (msg.timestamp - clock.ts0) / 1000 - rtmp.now()
                if wait > 0.001 then
                    -- not due yet: keep the tag read and send it from a timer
                    self.timer = rtmp.timer(wait, function()
                        self.timer = nil
                        if self.closed then return end
                        self:send_media(msg, m, csids)
                        self.tag = self.tag + 1
                        sent = sent + 1
                        step()
                    end)
                    return
                end
            end
            self:send_media(msg, m, csids)
            self.tag = self.tag + 1
            sent = sent + 1
            batch = batch + 1
        end
        self:log("info", "flow: sent media tags %d..%d (%d messages)", m.from, m.to, sent)
        self.busy = false
        self:pump()
    end
    step()
end

function Player:send_media(msg, m, csids)
    local tn = TYPE[msg.type] or msg.type
    local hdr = { type = msg.type, stream = m.stream or 1, timestamp = msg.timestamp,
                  csid = csids[tn] or CSID[msg.type] or 6 }
    local ok, err = self.conn:send(hdr, msg.payload)
    if not ok then self:log("warn", "flow: media: %s", tostring(err)) end
end

function Player:close_down(reason)
    if self.closed then return end
    self.closed = true
    if self.timer then self.timer:stop(); self.timer = nil end
    if self.reader then self.reader:close(); self.reader = nil end
    if self.i <= #self.steps then
        self:log("warn", "flow: connection ended at step %d of %d (expected %s): %s", self.i,
            #self.steps, describe(self.steps[self.i].expect), tostring(reason))
    else
        self:log("info", "flow: connection ended after the last step: %s", tostring(reason))
    end
end

---------------------------------------------------------------------------
-- Sides
---------------------------------------------------------------------------

local SERVER_USAGE = [[
usage: luartmp FLOW.lua [--listen ADDR] [--once] [--fast] [--media FILE]
  --listen ADDR  where to listen (default: luartmp's --listen, 1935)
  --once         stop after the first connection ends (exit status 1 if it
                 ended before the last step)
  --fast         send media as fast as possible (default: paced by timestamps)
  --media FILE   the companion FLV (default: the one the script names)
]]

local CLIENT_USAGE = [[
usage: luartmp FLOW.lua [URL] [--save FILE] [--duration S] [--linger S] [--fast] [--media FILE]
  URL            rtmp://host[:port]/app (default: the recorded server)
  --save FILE    write the audio, video and metadata received to an FLV file
  --duration S   close the connection S seconds after connecting
  --linger S     after the last step, close once the server is silent S seconds (default 2)
  --fast         send media as fast as possible (default: paced by timestamps)
  --media FILE   the companion FLV (default: the one the script names)
Exit status 1 when the connection ends before the last step.
]]

local function setup(spec, optspec, usage, level)
    if type(spec) ~= "table" then error("flow: want a table", level) end
    local argv = spec.args or arg or {}
    for _, a in ipairs(argv) do
        if a == "-h" or a == "--help" then io.stdout:write(usage); os.exit(0) end
    end
    local ok, o, pos = pcall(parse_args, argv, optspec)
    if not ok then
        io.stderr:write("flow: ", tostring(o), "\n", usage)
        os.exit(2)
    end
    local f = {
        spec = spec, steps = compile(spec), opts = o, pos = pos, fast = o.fast or spec.fast,
        players = {}, done = 0,
    }
    local dir = spec.dir or script_dir()
    f.media = o.media or resolve(spec.media, dir)
    return f
end

local function settings(spec)
    local s = {}
    for k, v in pairs(spec.settings or {}) do s[k] = v end
    if spec.handshake == "plain" and s.plain_handshake == nil then s.plain_handshake = true end
    return s
end

--- flow.server(spec) -> f: listens (`--listen`, else luartmp's --listen)
--- and plays the recorded server to every client that connects. f.server
--- is the server; f.players the connections' states.
function _M.server(spec)
    local f = setup(spec, { listen = "string", once = "flag", fast = "flag", media = "string" },
        SERVER_USAGE, 3)
    local rtmp = R()
    local handlers = settings(spec)
    handlers.listen = f.opts.listen or spec.listen
    handlers.on_handshake = function(conn)
        local p = new_player(f, conn)
        f.players[conn] = p
        conn:log("info", "flow: playing the server side, %d steps", #f.steps)
        p:fire(0)
    end
    handlers.on_message = function(conn, msg)
        local p = f.players[conn]
        if p then p:message(msg) end
    end
    handlers.on_close = function(conn, reason)
        local p = f.players[conn]
        if p then p:close_down(reason) end
        f.players[conn] = nil
        f.done = f.done + 1
        if spec.on_close then spec.on_close(conn, reason) end
        if f.opts.once and f.server then
            f.server:close()
            -- the exit status says whether the client went through every step
            if not (p and p.i > #p.steps) then os.exit(1) end
        end
    end
    local server, err = rtmp.listen(handlers)
    if not server then error("flow: listen: " .. tostring(err), 0) end
    f.server = server
    rtmp.log.info("flow: server side listening on port %s, %d steps", tostring(server.port),
        #f.steps)
    return f
end

--- flow.client(spec) -> f: connects to URL (the first argument, else
--- spec.url) and plays the recorded client. f.conn is the connection.
function _M.client(spec)
    local f = setup(spec, { save = "string", duration = "number", linger = "number",
                            fast = "flag", media = "string" }, CLIENT_USAGE, 3)
    local rtmp = R()
    local url = f.pos[1] or spec.url
    if not url then error("flow: no URL (give one as the first argument)", 0) end
    local given = f.pos[1] ~= nil
    f.strict_txn = true
    if f.opts.save then
        local w, err = rtmp.flv.create(f.opts.save)
        if not w then error("flow: " .. tostring(err), 0) end
        f.save = w
    end
    local linger = f.opts.linger or spec.linger or 2
    local p
    local last = rtmp.now()
    local timers = {}
    local function finish(reason)
        for _, t in ipairs(timers) do t:stop() end
        if f.conn and not f.conn.closed then f.conn:close(reason) end
    end
    -- The connect command goes to the URL we were given.
    if given then
        f.rewrite = function(pl, s, v)
            if s[1] == "command" and v[1] == "connect" and type(v[3]) == "table" then
                local c = { n = v.n or #v }
                for k = 1, c.n do c[k] = v[k] end
                local obj = {}
                for k, x in pairs(v[3]) do obj[k] = x end
                obj.tcUrl = pl.conn.tc_url
                if pl.conn.app and pl.conn.app ~= "" then obj.app = pl.conn.app end
                c[3] = obj
                return c
            end
        end
    end
    f.on_peer_message = function() last = rtmp.now() end
    f.on_steps_done = function()
        local function check(t)
            local idle = rtmp.now() - last
            if idle >= linger then
                if t then t:stop() end
                finish("flow done")
            end
        end
        timers[#timers + 1] = rtmp.timer(linger, check, math.max(0.1, linger / 4))
    end
    local handlers = settings(spec)
    handlers.on_handshake = function(conn)
        p = new_player(f, conn)
        f.player = p
        conn:log("info", "flow: playing the client side, %d steps", #f.steps)
        p:fire(0)
    end
    handlers.on_message = function(conn, msg)
        if p then p:message(msg) end
    end
    handlers.on_close = function(conn, reason)
        if p then p:close_down(reason) else
            rtmp.log.error("flow: %s: %s", url, tostring(reason))
        end
        for _, t in ipairs(timers) do t:stop() end
        if f.save then f.save:close() end
        f.closed = reason
        if spec.on_close then spec.on_close(conn, reason) end
        -- the exit status says whether the server went through every step
        if not (p and p.i > #p.steps) then os.exit(1) end
    end
    local conn, err = rtmp.connect(url, handlers)
    if not conn then error(fmt("flow: connect %s: %s", url, tostring(err)), 0) end
    f.conn = conn
    if f.opts.duration then
        timers[#timers + 1] = rtmp.timer(f.opts.duration, function() finish("duration") end)
    end
    return f
end

return _M
