-- rtmp.flow: the runtime behind the scripts capture2lua writes
-- (docs/FLOW.md is the reference).
--
-- A script is one table given to flow.server (it plays a recorded server)
-- or flow.client (a recorded client).  Two runtimes, chosen by what the
-- table holds:
--
-- Handlers and steps (the default format, issue 16):
--
--   return flow.server {
--     media = "flow.flv",
--     on { "command", "connect", txn = 1,                       -- a request...
--       send { "command", csid = 3, values = { "_result", 1,    -- ...and its answers,
--           obj{ {"fmsVer", "FMS/3,0,1,123"} }, obj{ {"code", "NetConnection.Connect.Success"} } } },
--       send { "command", csid = 3, at = 0.012, values = { "onBWDone", 0, null } },  -- at: s after it
--     },
--     on { "command", "play", txn = 4, stream = 1,
--       media { from = 1, to = 250, stream = 1, csid = { audio = 6, video = 7 }, at = 0.1,
--               times = { 0, 0, 40, ... } },
--       close { at = 4.2 },
--     },
--   }
--
-- The server answers each request with the handler for its (type, name),
-- the n-th request of a kind with the n-th handler, each handler on its
-- own timeline: nothing waits for a particular peer message.  The client
-- runs send / await / receive / media / close top to bottom, each wait
-- bounded by a timeout, and its exit status says whether the script's
-- outcome was reached.
--
-- Strict (capture2lua --strict; any script with an `expect` entry):
--
--   return flow.server {
--     expect { "command", "connect", txn = 1 },                  -- the peer sends this
--     send { "command", csid = 3, values = { "_result", 1, { fmsVer = "FMS/3,0,1,123" } } },
--     expect { "command", "play", txn = 4 },
--     media { from = 1, to = 250, stream = 1, csid = { audio = 6, video = 7 } },
--   }
--
-- The runtime walks the `expect` steps in order.  A peer message that
-- matches the next one sends that step's replies.  A command or data
-- message that matches a later step skips the steps between (logged);
-- acknowledgements, pings, Set Buffer Length and media never need a step.
-- A `_result`/`_error` reply carries the recorded txn of the command it
-- answers; the live peer's txn for that command is put in its place.
--
-- Format notes beyond the agreed format (small, all optional):
-- outcome.sent = { audio, video } (what a publisher sends, checked like
-- outcome.media); receive { ..., stream = S }; await { NAME } for a
-- command or data NAME other than _result/_error/onStatus; send, media
-- and close entries outside any `on` in a server script run at the
-- handshake.  The recorded stream id a createStream reply gave is found
-- from the script (the first stream id used after that createStream),
-- so awaits need no extra field.
--
-- Only the public API is used (rtmp.listen, rtmp.connect with handlers,
-- rtmp.timer, rtmp.now, rtmp.flv, conn methods), and `rtmp` is looked up
-- when used, so the deterministic replay harness can stand in for it.

local _M = {}

local fmt = string.format
local unpack = table.unpack

local function R() return require "rtmp" end
local bind = require "rtmp.bind"   -- the keys and codes the generator wrote the script by

-- Message type numbers a script may use for a type name.
local NUMBERED = { [1] = "set_chunk_size", [2] = "abort", [3] = "ack", [4] = "user_control",
    [5] = "window_ack_size", [6] = "set_peer_bandwidth", [8] = "audio", [9] = "video",
    [15] = "data3", [17] = "command3", [18] = "data", [20] = "command" }

---------------------------------------------------------------------------
-- What a script is written with
---------------------------------------------------------------------------

_M.null = R().null
_M.undefined = R().undefined
_M.unsupported = R().amf0.unsupported

-- `at = S`: seconds (capture times), checked where the entry is written.
local function check_at(t, what)
    local at = t.at
    if at ~= nil and (type(at) ~= "number" or at < 0 or at ~= at) then
        error(fmt("%s: at = %s is not a number of seconds >= 0", what, tostring(at)), 3)
    end
end

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
    check_at(t, "send")
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
    check_at(t, "media")
    if t.times ~= nil and type(t.times) ~= "table" then
        error("media: times = { ms, ... } expected", 2)
    end
    t.kind = "media"
    return t
end

local ACTION = { send = true, media = true, close = true }

--- on { TYPE [, NAME] [, txn = N] [, stream = S] [, optional = true],
--- actions... }: a handler (server side) for a message the peer sends;
--- the actions (send, media, close) run in order on the request's own
--- timeline. TYPE is a type name (or number), NAME the command or data
--- name, or the user control event.
function _M.on(t)
    if type(t) ~= "table" or (type(t[1]) ~= "string" and math.type(t[1]) ~= "integer") then
        error("on: want { type_name [, name], actions... }", 2)
    end
    local what = t[1]
    if math.type(what) == "integer" then what = NUMBERED[what] or tostring(what) end
    local h = { kind = "on", what = what, txn = t.txn, stream = t.stream,
                optional = t.optional and true or false, actions = {} }
    local first = 2
    if type(t[2]) == "string" or math.type(t[2]) == "integer" then h.name, first = t[2], 3 end
    local n = 0
    for k in pairs(t) do if math.type(k) == "integer" and k > n then n = k end end
    for i = first, n do
        local a = t[i]
        if type(a) ~= "table" or not ACTION[a.kind] then
            error(fmt("on: entry %d is not a send, media or close", i), 2)
        end
        h.actions[#h.actions + 1] = a
    end
    return h
end

--- await { NAME [, txn = N] [, stream = S] [, code = C] } (client side):
--- wait for the reply `_result`/`_error` with the live txn of recorded txn
--- N, or an onStatus (or another command or data NAME) on the live stream
--- of recorded stream S.
function _M.await(t)
    if type(t) ~= "table" or type(t[1]) ~= "string" then
        error("await: want { name [, txn = N] [, stream = S] [, code = C] }", 2)
    end
    if (t[1] == "_result" or t[1] == "_error") and t.txn == nil then
        error("await: a " .. t[1] .. " needs txn = N", 2)
    end
    return { kind = "await", name = t[1], txn = t.txn, stream = t.stream, code = t.code }
end

--- receive { audio = A, video = V [, stream = S] } (client side): wait for
--- that much media (within the outcome's tolerance), the stream's end, or
--- the timeout with no media.
function _M.receive(t)
    if type(t) ~= "table" then error("receive: want { audio = A, video = V }", 2) end
    for _, k in ipairs({ "audio", "video" }) do
        local v = t[k]
        if v ~= nil and (math.type(v) ~= "integer" or v < 0) then
            error(fmt("receive: %s = %s is not a count", k, tostring(v)), 2)
        end
    end
    return { kind = "receive", audio = t.audio or 0, video = t.video or 0, stream = t.stream }
end

--- close { [at = S] }: close the connection (after what was queued is
--- written).
function _M.close(t)
    t = t or {}
    if type(t) ~= "table" then error("close: want { [at = seconds] }", 2) end
    check_at(t, "close")
    return { kind = "close", at = t.at }
end

-- Value constructors for what a plain table cannot say.
local function kind(t, k, extra)
    local mt = { __amf = k }
    for key, v in pairs(extra or {}) do mt[key] = v end
    return setmetatable(t, mt)
end

--- ecma{ {"k", v}, ... }: an ECMA array (onMetaData) with its keys in
--- that order (rtmp.amf0.ecma); ecma{ k = v, ... } still works (keys
--- sorted when written).
function _M.ecma(t)
    if type(t) == "table" and type(rawget(t, 1)) == "table" then return R().amf0.ecma(t) end
    return kind(t, "ecma")
end
--- obj{ {"k1", v1}, {"k2", v2}, ... }: an AMF object with its keys in that
--- order (rtmp.amf0.object).
function _M.obj(t) return R().amf0.object(t or {}) end
--- array{ v1, v2, ... }: a strict array (needed when empty).
function _M.array(t) t.n = t.n or #t; return kind(t, "array") end
--- date(ms [, tz]).
function _M.date(ms, tz) return kind({ time = ms, tz = tz or 0 }, "date") end
--- typed("Class", { k = v }).
function _M.typed(class, t) return kind(t, "typed", { __class = class }) end
--- amf3(v): v written switched to AMF3.
function _M.amf3(v) return R().amf3.value(v) end

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
local info_code = bind.info_code

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

-- A message chunked at `size` whatever our announced chunk size is (what
-- the recorded peer did).
local function send_chunked(conn, hdr, payload, size)
    local sizes = {}
    for k = 1, math.max(1, (#payload + size - 1) // size) do sizes[k] = size end
    return conn:send_chunks(hdr, payload, sizes)
end

-- Send one `send` entry now on owner.conn: owner:values(s) gives the AMF
-- values (with the live txn), owner:live_stream(S) the live stream id of a
-- recorded one. A `payload` always goes out byte for byte.
local function send_entry(owner, s)
    local conn = owner.conn
    local rtmp = R()
    local t = s[1]
    if math.type(t) == "integer" and NUMBERED[t] and s.payload == nil then t = NUMBERED[t] end
    local hdr = { csid = s.csid, stream = owner:live_stream(s.stream or 0), timestamp = s.timestamp or 0 }
    local ok, err
    if s.payload ~= nil then
        hdr.type = t
        if s.chunk and s.chunk ~= conn.out_chunk_size then
            ok, err = send_chunked(conn, hdr, s.payload, s.chunk)
        else
            ok, err = conn:send(hdr, s.payload)
        end
    elseif t == "set_chunk_size" then
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
        local a = s.ping_time
        if s.stream_id ~= nil then a = owner:live_stream(s.stream_id) end
        if a ~= nil and s.buffer_length ~= nil then
            ok, err = conn:user_control(s.event, a, s.buffer_length)
        else
            ok, err = conn:user_control(s.event, a)
        end
    elseif t == "command" or t == "data" or t == "command3" or t == "data3" then
        local v, n = owner:values(s)
        if s.chunk and s.chunk ~= conn.out_chunk_size then
            local body = rtmp.amf0.encode(unpack(v, 1, n))
            if t == "command3" or t == "data3" then body = "\0" .. body end
            hdr.type = t
            ok, err = send_chunked(conn, hdr, body, s.chunk)
        else
            ok, err = conn[t](conn, hdr, unpack(v, 1, n))
        end
    else
        error(fmt("flow: cannot send %s without a payload", tostring(t)))
    end
    if not ok then owner:log("warn", "flow: send %s: %s", tostring(t), tostring(err)) end
    return ok
end

function Player:live_stream(s) return s end

-- Send one `send` entry now.
function Player:send_one(s)
    return send_entry(self, s)
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
-- The handler runtime (a script with no `expect` entry; docs/FLOW.md)
---------------------------------------------------------------------------

local MAX_PENDING = 4 * 1024 * 1024   -- media waits while more output than this is queued
local FAMILY = { command = "command3", command3 = "command", data = "data3", data3 = "data" }
local AMF_TYPES = { command = true, command3 = true, data = true, data3 = true }

-- The (type name, name) a peer message is matched by (rtmp.bind's keys).
local function msg_key(msg)
    return msg.type_name or tostring(msg.type), bind.name(msg)
end

local key_of = bind.key_of

-- The info object's code and level of a command or data message
-- (onStatus, _result, _error: the object after the command object;
-- data such as onPlayStatus: the first argument).
local function status_of(msg)
    local info
    if msg.args then info = msg.args[2] elseif msg.values then info = msg.values[2] end
    if type(info) ~= "table" then return nil end
    local code, level = rawget(info, "code"), rawget(info, "level")
    return type(code) == "string" and code or nil, type(level) == "string" and level or nil
end

-- What one connection shares on both sides: timers that die with it, the
-- companion FLV's readers, sending.
local Live = {}
Live.__index = Live

local function new_live(cls, f, conn)
    return setmetatable({ f = f, conn = conn, timers = {}, readers = {}, pool = {}, closed = false,
        sent = { audio = 0, video = 0 }, sm = {} }, cls)
end

function Live:log(level, ...) self.conn:log(level, ...) end

-- The live id of a recorded message stream id (the client maps the ids
-- its createStream replies gave; the server's recorded ids stand).
function Live:live_stream(s)
    if s == nil then return nil end
    return self.sm[s] or s
end

-- fn() after `secs` seconds, unless the connection ended by then.
function Live:after(secs, fn)
    local t = R().timer(secs, function(tm)
        self.timers[tm] = nil
        if not self.closed then fn() end
    end)
    self.timers[t] = true
    return t
end

function Live:cancel(t)
    if t then t:stop(); self.timers[t] = nil end
end

function Live:stop_all()
    self.closed = true
    for t in pairs(self.timers) do t:stop() end
    self.timers = {}
    for e in pairs(self.readers) do e.r:close() end
    self.readers, self.pool = {}, {}
end

-- The values of a command or data send: the live txn in a reply to the
-- request being handled, live stream ids, the connect object's URL.
function Live:values(s)
    local v = s.values or {}
    local n = v.n or #v
    local c
    local function copy()
        if not c then
            c = { n = n }
            for k = 1, n do c[k] = v[k] end
        end
        return c
    end
    if s[1] == "command" or s[1] == "command3" then
        local sub = self.subst
        if sub and (v[1] == "_result" or v[1] == "_error") and v[2] == sub[1] then copy()[2] = sub[2] end
        if v[1] == "deleteStream" and type(v[4]) == "number" and self.sm[v[4]] then
            copy()[4] = self.sm[v[4]] * 1.0
        end
        if v[1] == "connect" and self.url_given and type(v[3]) == "table" then
            local o = setmetatable({}, getmetatable(v[3]))
            for k, x in pairs(v[3]) do o[k] = x end
            o.tcUrl = self.conn.tc_url
            if self.conn.app and self.conn.app ~= "" then o.app = self.conn.app end
            copy()[3] = o
        end
    end
    return c or v, n
end

-- A reader of the companion FLV whose next tag is `from` (numbered from
-- 1): an idle one not past it, else a new one.
function Live:reader_at(from)
    local best, bi
    for i, e in ipairs(self.pool) do
        if e.pos <= from and (not best or e.pos > best.pos) then best, bi = e, i end
    end
    if best then
        table.remove(self.pool, bi)
    else
        if not self.f.media then
            self:log("error", "flow: the script sends media but no media file is set")
            return nil
        end
        local r, err = R().flv.open(self.f.media)
        if not r then
            self:log("error", "flow: %s", tostring(err))
            return nil
        end
        best = { r = r, pos = 1 }
        self.readers[best] = true
    end
    while best.pos < from do
        local msg, err = best.r:read()
        if not msg then
            self:log("warn", "flow: media: %s has no tag %d%s", tostring(self.f.media), from,
                err and (": " .. tostring(err)) or "")
            self.readers[best] = nil
            best.r:close()
            return nil
        end
        best.pos = best.pos + 1
    end
    return best
end

function Live:send_media(msg, stream, csids)
    local tn = TYPE[msg.type] or msg.type
    local hdr = { type = msg.type, stream = stream, timestamp = msg.timestamp,
                  csid = csids[tn] or CSID[msg.type] or 6 }
    local ok, err = self.conn:send(hdr, msg.payload)
    if not ok then
        self:log("warn", "flow: media: %s", tostring(err))
    elseif self.sent[tn] then
        self.sent[tn] = self.sent[tn] + 1
    end
end

-- media { from, to, stream, csid, times }: tag k at base + times[k-from+1]
-- ms (without times: its timestamp's distance from the range's first);
-- --fast: at once. Either way never more than MAX_PENDING queued. done()
-- when the range was sent.
function Live:play_media(m, base, done)
    local rtmp = R()
    local e = self:reader_at(m.from)
    if not e then return done() end
    local csids = m.csid or {}
    local stream = self:live_stream(m.stream or 1)
    local times, fast = m.times, self.f.fast
    local k, sent, first_ts, held = m.from, 0, nil, nil
    local function step()
        local batch = 0
        while k <= m.to do
            if self.closed then return end
            if (self.conn.pending or 0) > MAX_PENDING or batch >= 200 then
                self:after(0.005, step)
                return
            end
            local msg = held
            held = nil
            if not msg then
                local err
                msg, err = e.r:read()
                if not msg then
                    self:log("warn", "flow: media: %s ends before tag %d%s", tostring(self.f.media), k,
                        err and (": " .. tostring(err)) or "")
                    self.readers[e] = nil
                    e.r:close()
                    e = nil
                    break
                end
                e.pos = e.pos + 1
            end
            first_ts = first_ts or msg.timestamp
            if not fast then
                local off = times and times[k - m.from + 1]
                off = off and off / 1000 or (msg.timestamp - first_ts) / 1000
                local wait = base + off - rtmp.now()
                if wait > 0.001 then
                    held = msg
                    self:after(wait, step)
                    return
                end
            end
            self:send_media(msg, stream, csids)
            k = k + 1
            sent = sent + 1
            batch = batch + 1
        end
        if e then self.pool[#self.pool + 1] = e end
        self:log("info", "flow: sent media tags %d..%d (%d messages)", m.from, m.to, sent)
        done()
    end
    step()
end

-- Run `actions` (send, media, close) in order on a timeline that starts at
-- t0: an action with `at` waits until t0 + at, one without goes with the
-- one before. subst = { recorded txn, live txn } for the replies. done()
-- at the end.
function Live:run(actions, t0, subst, done)
    local rtmp = R()
    local i, due = 1, 0
    local function step()
        while i <= #actions do
            if self.closed then return end
            local a = actions[i]
            if a.at ~= nil then due = a.at end
            if not self.f.fast then
                local wait = t0 + due - rtmp.now()
                if wait > 0.001 then
                    self:after(wait, step)
                    return
                end
            end
            i = i + 1
            if a.kind == "send" then
                self.subst = subst
                send_entry(self, a)
                self.subst = nil
            elseif a.kind == "media" then
                return self:play_media(a, t0 + due, step)
            else
                self:log("info", "flow: closing the connection where the recording did")
                self.conn:close("flow: closed as recorded")
                return
            end
        end
        if done then done() end
    end
    step()
end

---------------------------------------------------------------------------
-- Server side: handlers
---------------------------------------------------------------------------

-- spec -> f.handlers[key] = { on, ... } (script order), f.ons (every
-- `on`), f.opening (top-level actions: sent at the handshake).
local function compile_handlers(spec, f)
    f.handlers, f.ons, f.opening = {}, {}, {}
    for i, e in ipairs(spec) do
        if type(e) ~= "table" or not e.kind then
            error(fmt("flow: entry %d is not an on, send, media or close", i), 0)
        end
        if e.kind == "on" then
            e.index = i
            local k = key_of(e.what, e.name)
            local list = f.handlers[k]
            if not list then list = {}; f.handlers[k] = list end
            list[#list + 1] = e
            f.ons[#f.ons + 1] = e
        elseif ACTION[e.kind] then
            f.opening[#f.opening + 1] = e
        else
            error(fmt("flow: entry %d (%s) has no place in a server script", i, e.kind), 0)
        end
    end
end

local Served = setmetatable({}, { __index = Live })
Served.__index = Served

local function describe_on(h)
    return h.name ~= nil and fmt("%s %s", h.what, tostring(h.name)) or h.what
end

function Served:start()
    local rtmp = R()
    self.seen, self.ran, self.unhandled = {}, {}, {}
    self.running, self.last_in = 0, rtmp.now()
    self.conn:log("info", "flow: playing the server side, %d handlers", #self.f.ons)
    if #self.f.opening > 0 then self:begin(self.f.opening, nil) end
    local idle = self.f.idle
    if idle then
        local every = math.max(0.05, math.min(1, idle / 4))
        local function check()
            if self.running > 0 then return self:after(every, check) end
            local left = math.max(self.last_in, self.done_at or 0) + idle - rtmp.now()
            if left > 0.001 then return self:after(left, check) end
            self:log("info", "flow: the peer was silent %g s after the last reply: closing", idle)
            self.conn:close("flow: peer idle")
        end
        self:after(every, check)
    end
end

-- Run actions as one handler (counted while they run).
function Served:begin(actions, subst)
    local rtmp = R()
    self.running = self.running + 1
    self:run(actions, rtmp.now(), subst, function()
        self.running = self.running - 1
        self.done_at = rtmp.now()
    end)
end

function Served:message(msg)
    self.last_in = R().now()
    local tn, name = msg_key(msg)
    if MEDIA[tn] then return end
    local handlers = self.f.handlers
    local key = key_of(tn, name)
    local list = handlers[key]
    if not list and FAMILY[tn] then list = handlers[key_of(FAMILY[tn], name)] end
    if not list and name ~= nil then list = handlers[tn] end
    if not list then
        if not self.unhandled[key] then
            self.unhandled[key] = true
            self:log("info", "flow: no handler for %s", key)
        end
        return
    end
    local n = (self.seen[list] or 0) + 1
    self.seen[list] = n
    local h = list[math.min(n, #list)]
    self.ran[h] = true
    self:log("info", "flow: got %s (#%d): handler at entry %d, %d actions", describe(msg), n, h.index,
        #h.actions)
    local subst
    if h.txn ~= nil and msg.txn ~= nil then subst = { h.txn, msg.txn } end
    self:begin(h.actions, subst)
end

-- The non-optional handlers that never ran.
function Served:missing()
    local out = {}
    for _, h in ipairs(self.f.ons) do
        if not h.optional and not self.ran[h] then out[#out + 1] = h end
    end
    return out
end

local function serve_handlers(f, handlers)
    handlers.on_handshake = function(conn)
        local s = new_live(Served, f, conn)
        f.players[conn] = s
        s:start()
    end
    handlers.on_message = function(conn, msg)
        local s = f.players[conn]
        if s and not s.closed then s:message(msg) end
    end
    handlers.on_close = function(conn, reason)
        local s = f.players[conn]
        f.players[conn] = nil
        f.done = f.done + 1
        local missing = {}
        if s then
            s:stop_all()
            missing = s:missing()
            local names = {}
            for _, h in ipairs(missing) do names[#names + 1] = describe_on(h) end
            if #names > 0 then
                conn:log("info", "flow: connection ended (%s); never asked: %s", tostring(reason),
                    table.concat(names, ", "))
            else
                conn:log("info", "flow: connection ended (%s); every request answered", tostring(reason))
            end
        end
        if f.spec.on_close then f.spec.on_close(conn, reason) end
        if f.opts.once and f.server then
            f.server:close()
            if not s then
                io.stderr:write(fmt("flow: the connection ended before its handshake: %s\n",
                    tostring(reason)))
                os.exit(1)
            elseif #missing > 0 then
                local names = {}
                for _, h in ipairs(missing) do
                    names[#names + 1] = fmt("%s (entry %d)", describe_on(h), h.index)
                end
                io.stderr:write(fmt("flow: the client never sent %s\n", table.concat(names, ", ")))
                os.exit(1)
            end
        end
    end
end

---------------------------------------------------------------------------
-- Client side: steps
---------------------------------------------------------------------------

local STEP = { send = true, media = true, close = true, await = true, receive = true }
local BLOCKING = { await = true, receive = true, media = true }

-- What a step is, for the log and the failure line.
local function step_text(steps, i)
    local e = steps[i]
    if e.kind == "send" then
        local v = e.values
        if v and type(v[1]) == "string" then return fmt("send %s %s", tostring(e[1]), v[1]) end
        return fmt("send %s", tostring(e[1]))
    elseif e.kind == "media" then
        return fmt("media tags %d..%d", e.from, e.to)
    elseif e.kind == "receive" then
        return fmt("receive %d audio, %d video", e.audio, e.video)
    elseif e.kind == "close" then
        return "close"
    end
    -- await: after the request it answers
    local after
    for j = i - 1, 1, -1 do
        local s = steps[j]
        local v = s.kind == "send" and s.values
        if v and type(v[1]) == "string" and (s[1] == "command" or s[1] == "command3") then
            if e.txn ~= nil and v[2] == e.txn then after = v[1]; break end
            if e.txn == nil and (e.stream == nil or (s.stream or 0) == e.stream) then after = v[1]; break end
        end
    end
    local what
    if e.txn ~= nil then
        what = fmt("await %s txn %s", e.name, tostring(e.txn))
    elseif e.stream ~= nil then
        what = fmt("await %s on stream %s", e.name, tostring(e.stream))
    else
        what = fmt("await %s", e.name)
    end
    if e.code then what = what .. " " .. e.code end
    return after and (what .. " after " .. after) or what
end

-- spec -> f.steps, f.creates[txn] = the recorded stream id its
-- createStream reply gave: the first stream id used after it that no
-- earlier createStream took.
local function compile_steps(spec, f)
    local steps, creates, order, taken = {}, {}, {}, {}
    for i, e in ipairs(spec) do
        if type(e) ~= "table" or not STEP[e.kind] then
            error(fmt("flow: entry %d is not a send, media, await, receive or close", i), 0)
        end
        steps[#steps + 1] = e
        local v = e.kind == "send" and e.values
        if v and v[1] == "createStream" and v[2] ~= nil then order[#order + 1] = { txn = v[2] } end
        local s = e.stream
        if s and s ~= 0 and not taken[s] then
            for _, c in ipairs(order) do
                if c.sid == nil then c.sid, taken[s] = s, true; break end
            end
        end
    end
    for _, c in ipairs(order) do if c.sid then creates[c.txn] = c.sid end end
    f.steps, f.creates = steps, creates
    f.awaited = {}
    for _, e in ipairs(steps) do if e.kind == "await" then f.awaited[e.name] = true end end
end

local Driver = setmetatable({}, { __index = Live })
Driver.__index = Driver

function Driver:start()
    local rtmp = R()
    self.i, self.base, self.due = 1, rtmp.now(), 0
    self.replies, self.statuses = {}, {}
    self.got = { audio = 0, video = 0 }
    local spec = self.f.spec
    self.outcome = spec.outcome or {}
    self.tolerance = self.outcome.tolerance or 0.1
    self.conn:log("info", "flow: playing the client side, %d steps", #self.f.steps)
    self:advance()
end

function Driver:accepted(code)
    if code == nil then return false end
    for _, c in ipairs(self.outcome.codes or {}) do if c == code then return true end end
    return false
end

function Driver:enough(n, want)
    return n >= math.floor(want * (1 - self.tolerance) + 1e-9)
end

-- Stop with exit status 1: one line naming step i and the reason.
function Driver:fail(i, reason)
    if self.finished then return end
    self.finished = true
    if i then
        self.failure = fmt("flow: step %d (%s): %s", i, step_text(self.f.steps, i), reason)
    else
        self.failure = "flow: " .. reason
    end
    self:log("debug", "%s", self.failure)
    self:end_conn()
end

-- After the last step: the media counts of the outcome decide the exit
-- status (each awaited reply's code was checked when it came).
function Driver:finish()
    if self.finished then return end
    local f, out = self.f, self.outcome
    local function check(counts, want, kind)
        if type(want) ~= "table" then return true end
        for _, t in ipairs({ "audio", "video" }) do
            if want[t] and not self:enough(counts[t], want[t]) then
                local step
                for j, e in ipairs(f.steps) do if e.kind == kind then step = j end end
                self:fail(step, fmt("%s %d audio, %d video; the recording %s %d audio, %d video " ..
                    "(tolerance %g %%)", kind == "receive" and "received" or "sent", counts.audio,
                    counts.video, kind == "receive" and "received" or "sent", want.audio or 0,
                    want.video or 0, self.tolerance * 100))
                return false
            end
        end
        return true
    end
    if not check(self.got, out.media, "receive") then return end
    if not check(self.sent, out.sent, "media") then return end
    self.finished = true
    self:log("info", "flow: outcome reached (%d audio, %d video received; %d audio, %d video sent)",
        self.got.audio, self.got.video, self.sent.audio, self.sent.video)
    self:end_conn()
end

function Driver:end_conn()
    if self.conn.closed or self.closed then return self:exit() end
    self.conn:close(self.failure and "flow: outcome not reached" or "flow: done")
end

-- The connection is gone: stop everything and end the process's part.
function Driver:exit()
    if self.exited then return end
    self.exited = true
    self:stop_all()
    local f = self.f
    if f.save then f.save:close(); f.save = nil end
    if self.failure then
        io.stderr:write(self.failure, "\n")
        os.exit(1)
    end
end

-- Steps from self.i on, until one has to wait.
function Driver:advance()
    local rtmp = R()
    local steps = self.f.steps
    while not self.finished and not self.closed and not self.halt do
        local i = self.i
        local e = steps[i]
        if not e then return self:finish() end
        if e.kind == "await" then
            self.waiting = e
            if not self:check_await() then
                self.step_timer = self:after(self.timeout, function()
                    local passed = self.passed and #self.passed > 0
                        and fmt(" (got %s)", table.concat(self.passed, ", ")) or ""
                    self:fail(self.i, fmt("timed out after %g s%s", self.timeout, passed))
                end)
            end
            return
        elseif e.kind == "receive" then
            self.receiving = e
            self.last_media = rtmp.now()
            if not self:check_receive() then self:arm_receive() end
            return
        end
        if e.at ~= nil then self.due = e.at end
        if not self.f.fast then
            local wait = self.base + self.due - rtmp.now()
            if wait > 0.001 then
                self:after(wait, function() self:advance() end)
                return
            end
        end
        self.i = i + 1
        if e.kind == "send" then
            self:note_send(e)
            send_entry(self, e)
        elseif e.kind == "media" then
            return self:play_media(e, self.base + self.due, function() self:advance() end)
        else
            return self:finish()
        end
    end
end

-- A blocking step is over: the next `at`s count from now.
function Driver:step_done()
    self:cancel(self.step_timer)
    self.step_timer = nil
    self.waiting, self.receiving, self.passed = nil, nil, nil
    self.i = self.i + 1
    self.base, self.due = R().now(), 0
    self:advance()
end

-- A request is sent: replies to it are new (older statuses on its stream
-- answered something else).
function Driver:note_send(e)
    local v = e.values
    if (e[1] == "command" or e[1] == "command3") and v and v[1] ~= nil then
        local live = self:live_stream(e.stream or 0)
        local keep = {}
        for _, m in ipairs(self.statuses) do
            if m.stream ~= live then keep[#keep + 1] = m end
        end
        self.statuses = keep
    end
end

-- Is the awaited reply here? Completes or fails the step when it is.
-- With outcome.codes, a reply's code must be one of them: a status that
-- is not (Play.Reset where the recording had none) is passed over, an
-- error or a _result/_error that is not fails the step.
function Driver:check_await()
    local e = self.waiting
    if not e then return false end
    local codes = self.outcome.codes
    if e.name == "_result" or e.name == "_error" then
        local r = self.replies[e.txn]
        if not r then return false end
        self.replies[e.txn] = nil
        local code = status_of(r)
        local ok
        if codes and code ~= nil then ok = self:accepted(code) else ok = r.name == e.name end
        if not ok then
            self:fail(self.i, fmt("got %s%s", r.name, code and (" " .. code) or ""))
            return true
        end
        self:log("info", "flow: step %d: %s %s", self.i, r.name, code or "")
        self:step_done()
        return true
    end
    local live = self:live_stream(e.stream)
    local pick
    local idx = 1
    while idx <= #self.statuses do
        local m = self.statuses[idx]
        if m.name == e.name and (live == nil or m.stream == live) then
            local code, level = status_of(m)
            if code == e.code or self:accepted(code) or (not codes and e.code == nil) then
                pick = idx
                break
            end
            if level == "error" or not codes then
                -- an error the outcome does not list; or, with no codes to go
                -- by, the first status of any code
                if level == "error" then
                    table.remove(self.statuses, idx)
                    self:fail(self.i, fmt("got %s", code or "an error status"))
                    return true
                end
                pick = idx
                break
            end
            table.remove(self.statuses, idx)
            self.passed = self.passed or {}
            self.passed[#self.passed + 1] = code or "a status with no code"
        else
            idx = idx + 1
        end
    end
    if not pick then return false end
    local m = table.remove(self.statuses, pick)
    self:log("info", "flow: step %d: %s %s", self.i, m.name, status_of(m) or "")
    self:step_done()
    return true
end

function Driver:check_receive()
    local e = self.receiving
    if not e then return false end
    if self.got.audio >= e.audio and self.got.video >= e.video then
        self:step_done()
        return true
    end
    if self.ended then
        self:judge_receive(self.ended)
        return true
    end
    return false
end

function Driver:judge_receive(why)
    local e = self.receiving
    if self:enough(self.got.audio, e.audio) and self:enough(self.got.video, e.video) then
        self:log("info", "flow: step %d: %s with %d audio, %d video", self.i, why, self.got.audio,
            self.got.video)
        self:step_done()
    else
        self:fail(self.i, fmt("%s with %d audio, %d video received (want %d, %d: the recorded %d, %d " ..
            "less %g %%)", why, self.got.audio, self.got.video,
            math.floor(e.audio * (1 - self.tolerance) + 1e-9),
            math.floor(e.video * (1 - self.tolerance) + 1e-9), e.audio, e.video, self.tolerance * 100))
    end
end

-- The receive's clock: `timeout` s with no media ends it; so does one
-- quiet second once the counts are within the tolerance.
function Driver:arm_receive()
    local rtmp = R()
    local e = self.receiving
    local function tick()
        self.step_timer = nil
        if self.receiving ~= e then return end
        local quiet = rtmp.now() - self.last_media
        if quiet >= self.timeout then
            return self:judge_receive(fmt("no media for %g s", self.timeout))
        end
        if quiet >= 1 and self:enough(self.got.audio, e.audio) and self:enough(self.got.video, e.video) then
            return self:judge_receive("media stopped")
        end
        self.step_timer = self:after(math.min(0.25, self.timeout - quiet), tick)
    end
    self.step_timer = self:after(0.25, tick)
end

local ENDS = { ["NetStream.Play.Stop"] = true, ["NetStream.Play.UnpublishNotify"] = true,
               ["NetStream.Play.Complete"] = true }

function Driver:message(msg)
    local f = self.f
    local tn = msg.type_name
    if MEDIA[tn] or msg.name == "onMetaData" or msg.name == "@setDataFrame" then
        if f.save then
            local ok, err = f.save:write(msg)
            if not ok and err ~= nil then self:log("warn", "flow: cannot save: %s", tostring(err)) end
        end
    end
    if tn == "audio" or tn == "video" then
        self.got[tn] = self.got[tn] + 1
        self.started, self.last_media = true, R().now()
    elseif tn == "aggregate" then
        local subs = msg:split()
        for _, s in ipairs(subs or {}) do
            local t = s.type_name
            if t == "audio" or t == "video" then self.got[t] = self.got[t] + 1 end
        end
        self.started, self.last_media = true, R().now()
    elseif tn == "user_control" then
        if msg.event_name == "stream_eof" and self.started then self.ended = "StreamEOF" end
    elseif AMF_TYPES[tn] then
        local code = status_of(msg)
        if code == "NetStream.Play.Start" then self.started = true end
        if code and ENDS[code] and self.started then self.ended = code end
        if msg.name == "_result" or msg.name == "_error" then
            if msg.txn ~= nil then
                local sid = f.creates[msg.txn]
                local live = msg.args and msg.args[2]
                if sid and msg.name == "_result" and math.type(live) then
                    self.sm[sid] = math.tointeger(live) or live
                    if self.sm[sid] ~= sid then
                        self:log("info", "flow: recorded stream %s is stream %s here", tostring(sid),
                            tostring(self.sm[sid]))
                    end
                end
                self.replies[msg.txn] = msg
            end
        elseif msg.name and f.awaited[msg.name] then
            self.statuses[#self.statuses + 1] = { name = msg.name, stream = msg.stream, msg = msg,
                args = msg.args, values = msg.values }
        end
    end
    if self.waiting then
        self:check_await()
    elseif self.receiving then
        self:check_receive()
    end
end

-- The connection ended before the steps did.
function Driver:stopped(why)
    if self.finished then return end
    self.halt = true
    if self.receiving then
        self:judge_receive(why)
        if self.finished then return end
    end
    local steps = self.f.steps
    for j = self.i, #steps do
        if BLOCKING[steps[j].kind] then return self:fail(j, why) end
    end
    self:finish()
end

local function drive_steps(f, url, handlers)
    local rtmp = R()
    local d
    handlers.on_handshake = function(conn)
        d = new_live(Driver, f, conn)
        d.url_given = f.pos[1] ~= nil
        d.timeout = f.timeout
        f.player = d
        d:start()
    end
    handlers.on_message = function(conn, msg)
        if d and not d.closed and not d.finished then d:message(msg) end
    end
    handlers.on_close = function(conn, reason)
        if f.spec.on_close then f.spec.on_close(conn, reason) end
        f.closed = reason
        if f.duration_timer then f.duration_timer:stop() end
        if not d then
            if f.save then f.save:close() end
            io.stderr:write(fmt("flow: %s: %s\n", url, tostring(reason)))
            os.exit(1)
        end
        d.closed = true
        d:stopped(fmt("the connection ended: %s", tostring(reason)))
        d:exit()
    end
    local conn, err = rtmp.connect(url, handlers)
    if not conn then
        io.stderr:write(fmt("flow: connect %s: %s\n", url, tostring(err)))
        os.exit(1)
    end
    f.conn = conn
    if f.opts.duration then
        f.duration_timer = rtmp.timer(f.opts.duration, function()
            f.duration_timer = nil
            if not d then return conn:close("flow: --duration") end
            if d.closed then return end
            d:stopped(fmt("stopped by --duration after %g s", f.opts.duration))
        end)
    end
end

---------------------------------------------------------------------------
-- Sides
---------------------------------------------------------------------------

-- The command lines of the four runtimes (rtmp.argv).
local LISTEN = { "listen", "string", arg = "ADDR", help = "where to listen (default: luartmp's --listen, 1935)" }
local MEDIA = { "media", "string", arg = "FILE", help = "the companion FLV (default: the one the script names)" }
local SAVE = { "save", "string", arg = "FILE", help = "write the audio, video and metadata received to an FLV file" }
local STRICT_FAST = { "fast", help = "send media as fast as possible (default: paced by timestamps)" }
local CLIENT_URL = "  URL: rtmp://host[:port]/app (default: the recorded server)\n"

local SERVER_CMD = {
    usage = "usage: luartmp FLOW.lua [--listen ADDR] [--once] [--fast] [--media FILE]\n",
    options = {
        LISTEN,
        { "once", help = "stop after the first connection ends (exit status 1 if it\n" ..
                         "ended before the last step)" },
        STRICT_FAST,
        MEDIA,
    },
}

local CLIENT_CMD = {
    usage = "usage: luartmp FLOW.lua [URL] [--save FILE] [--duration S] [--linger S] [--fast] [--media FILE]\n" ..
        CLIENT_URL,
    options = {
        SAVE,
        { "duration", "number", arg = "S", help = "close the connection S seconds after connecting" },
        { "linger", "number", arg = "S",
          help = "after the last step, close once the server is silent S seconds (default 2)" },
        STRICT_FAST,
        MEDIA,
    },
    after = "Exit status 1 when the connection ends before the last step.\n",
}

local HANDLER_SERVER_CMD = {
    usage = "usage: luartmp FLOW.lua [--listen ADDR] [--once] [--fast] [--media FILE] [--idle S]\n",
    options = {
        LISTEN,
        { "once", help = "stop after the first connection ends: exit status 0 when the\n" ..
                         "client sent every request the script needs, else 1" },
        { "fast", help = "no waits: replies and media at once (default: the recorded times)" },
        MEDIA,
        { "idle", "number", arg = "S", help = "once every reply is out, close when the client was silent S s\n" ..
                                              "(default: the script's idle, if any)" },
    },
}

local HANDLER_CLIENT_CMD = {
    usage = "usage: luartmp FLOW.lua [URL] [--save FILE] [--timeout S] [--duration S] [--fast] [--media FILE]\n" ..
        CLIENT_URL,
    options = {
        SAVE,
        { "timeout", "number", arg = "S", help = "seconds to wait for each awaited reply, and for media (default:\n" ..
                                                 "the script's timeout, else 10)" },
        { "duration", "number", arg = "S", help = "stop S seconds after connecting" },
        { "fast", help = "no waits: requests and media at once (default: the recorded times)" },
        MEDIA,
    },
    after = "Exit status 0 when the recorded outcome was reached, 1 (with one line naming\n" ..
            "the step and the reason) when not.\n",
}

local function setup(spec, cmdspec, level, compile_fn)
    if type(spec) ~= "table" then error("flow: want a table", level) end
    local cmd = require("rtmp.argv").new(cmdspec)
    local o, pos = cmd:run(spec.args or arg or {})
    local f = { spec = spec, cmd = cmd, opts = o, pos = pos, fast = o.fast or spec.fast, players = {}, done = 0 }
    if compile_fn then compile_fn(spec, f) else f.steps = compile(spec) end
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

-- The strict runtime: expect steps walked in order.
local function strict_server(spec)
    local f = setup(spec, SERVER_CMD, 3)
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

local function strict_client(spec)
    local f = setup(spec, CLIENT_CMD, 3)
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

-- A script with an `expect` entry is a strict one (capture2lua --strict).
local function is_strict(spec)
    if type(spec) ~= "table" then return false end
    for _, e in ipairs(spec) do
        if type(e) == "table" and e.kind == "expect" then return true end
    end
    return false
end

--- flow.server(spec) -> f: listens (`--listen`, else luartmp's --listen)
--- and plays the recorded server to every client that connects: the
--- handler runtime, or the strict one for a script of `expect` steps.
--- f.server is the server; f.players the connections' states.
function _M.server(spec)
    if is_strict(spec) then return strict_server(spec) end
    local f = setup(spec, HANDLER_SERVER_CMD, 3, compile_handlers)
    local rtmp = R()
    f.idle = f.opts.idle or spec.idle
    if f.idle ~= nil and (type(f.idle) ~= "number" or f.idle <= 0) then f.idle = nil end
    local handlers = settings(spec)
    handlers.listen = f.opts.listen or spec.listen
    serve_handlers(f, handlers)
    local server, err = rtmp.listen(handlers)
    if not server then error("flow: listen: " .. tostring(err), 0) end
    f.server = server
    rtmp.log.info("flow: server side listening on port %s, %d handlers", tostring(server.port),
        #f.ons)
    return f
end

--- flow.client(spec) -> f: connects to URL (the first argument, else
--- spec.url) and plays the recorded client: the step runtime, or the
--- strict one for a script of `expect` steps. f.conn is the connection.
function _M.client(spec)
    if is_strict(spec) then return strict_client(spec) end
    local f = setup(spec, HANDLER_CLIENT_CMD, 3, compile_steps)
    local rtmp = R()
    local url = f.pos[1] or spec.url
    if not url then f.cmd:fail("no URL (give one as the first argument)") end
    f.timeout = f.opts.timeout or spec.timeout or 10
    if f.opts.save then
        local w, err = rtmp.flv.create(f.opts.save)
        if not w then
            io.stderr:write(fmt("flow: --save: %s\n", tostring(err)))
            os.exit(1)
        end
        f.save = w
    end
    drive_steps(f, url, settings(spec))
    return f
end

return _M
