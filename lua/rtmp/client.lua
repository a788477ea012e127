-- rtmp.client: the coroutine client API, on top of the callback API
-- rtmp.connect(url, handlers).
--
--   local nc = assert(rtmp.connect("rtmp://127.0.0.1/live"))   -- inside a coroutine
--   -- over TLS: rtmps://, the certificate verified against the system store
--   -- and tls.ca (docs/TLS.md)
--   local nc = assert(rtmp.connect("rtmps://example.com/live", { tls = { ca = "ca.pem" } }))
--   local ns = assert(nc:create_stream())
--   assert(ns:publish("name"))
--   ns:send(msg) ...
--   nc:close()
--
-- A call that waits for the peer (connect, call, create_stream, publish,
-- play, read, rtmp.sleep) yields the running coroutine; the loop resumes it
-- from a handler or a timer when the answer, the timeout or the close
-- arrives.  Nothing here blocks the loop.  Runtime failures return
-- nil, message; misuse raises.
local rtmp = require "rtmp"

local _M = {}

local null = rtmp.null
local unpack, pack = table.unpack, table.pack

local HANDLER_NAMES = { "on_open", "on_handshake", "on_message", "on_close" }
-- opts fields that are ours, not connection settings
local OWN = { app = true, tc_url = true, flash_ver = true, swf_url = true, page_url = true,
              args = true, properties = true, timeout = true, max_queue = true, caps = true }

_M.default_timeout = 10
_M.default_max_queue = 4096
_M.flash_ver = "LNX 9,0,124,2"

-- ---- coroutines ----

local spawned = setmetatable({}, { __mode = "k" })

-- An error in a coroutine resumed from the loop: the main script's ends
-- the program (luartmp reports it and exits 1); others are logged.
local function report(co, err)
    local tb = debug.traceback(co, tostring(err))
    if co == debug.getregistry()["rtmp.main"] then
        io.stderr:write("luartmp: ", tb, "\n")
        io.stderr:flush()
        rtmp.shutdown("script error")
        rtmp.stop()
    else
        rtmp.log.error("%s", (spawned[co] and "spawned coroutine: " or "coroutine: ") .. tb)
    end
end

-- Resume co if it is suspended; an error is reported, never raised.
function _M.resume(co, ...)
    if coroutine.status(co) ~= "suspended" then return false end
    local ok, err = coroutine.resume(co, ...)
    if not ok then report(co, err) end
    return ok
end

local function need_coroutine(what)
    local _, main = coroutine.running()
    if main or not coroutine.isyieldable() then
        error(what .. " waits for the network and must run inside a coroutine "
              .. "(the luartmp main script, or rtmp.spawn)", 3)
    end
end

-- A waiter: wake(w, ...) hands values to the coroutine blocked in wait(w).
local function wake(w, ...)
    if w.vals then return end
    w.vals = pack(...)
    if w.timer then w.timer:stop() end
    if w.co then _M.resume(w.co) end
end

local function wait(w, timeout)
    if not w.vals then
        w.co = coroutine.running()
        if timeout and timeout > 0 then
            w.timer = rtmp.timer(timeout, function() wake(w, nil, "timeout") end)
        end
        repeat coroutine.yield() until w.vals
    end
    return unpack(w.vals, 1, w.vals.n)
end

-- rtmp.spawn(fn, ...) -> coroutine: runs fn(...) now, in a new coroutine.
function _M.spawn(fn, ...)
    assert(type(fn) == "function", "rtmp.spawn: function expected")
    local co = coroutine.create(fn)
    spawned[co] = true
    _M.resume(co, ...)
    return co
end

-- rtmp.sleep(seconds): yields; the loop keeps running.
function _M.sleep(seconds)
    assert(type(seconds) == "number" and seconds >= 0, "rtmp.sleep: seconds >= 0 expected")
    need_coroutine("rtmp.sleep")
    local w = {}
    rtmp.timer(seconds, function() wake(w, true) end)
    return wait(w)
end

-- ---- status objects ----

local function info_of(msg)
    local v = msg.values
    local info = v and v[4]
    if type(info) == "table" then return info end
end

-- "Code: description" (or the command name when no info object came).
local function status_error(msg)
    local info = info_of(msg)
    if not info then return tostring(msg.name) end
    local code = tostring(info.code or msg.name)
    if info.description ~= nil then return code .. ": " .. tostring(info.description) end
    return code
end

-- ---- net connections ----

local NC = {}
NC.__index = NC
local NS = {}
NS.__index = NS

local EOF_CODES = {
    ["NetStream.Play.Stop"] = true, ["NetStream.Play.UnpublishNotify"] = true,
    ["NetStream.Play.Complete"] = true,
}

local function close_streams(nc)
    for _, ns in pairs(nc.streams) do
        ns:_push(false, "closed")
        if ns.status_w then wake(ns.status_w, nil, "closed: " .. nc.closed) end
    end
end

local function on_close(nc, reason)
    nc.closed = reason or "closed"
    for _, w in ipairs(nc.close_waiters) do wake(w, true) end
    local pending = nc.pending
    nc.pending = {}
    for _, w in pairs(pending) do wake(w, nil, "closed: " .. nc.closed) end
    close_streams(nc)
end

local function on_command(nc, msg)
    local name = msg.name
    if name == "_result" or name == "_error" then
        local w = nc.pending[msg.txn]
        if w then
            nc.pending[msg.txn] = nil
            wake(w, msg)
        end
    elseif name == "onStatus" then
        local ns = nc.streams[msg.stream]
        if ns then return ns:_status(msg) end
        local info = info_of(msg)
        -- a refusal as onStatus on stream 0 while connecting
        if msg.stream == 0 and info and info.level == "error" and nc.pending[1] then
            local w = nc.pending[1]
            nc.pending[1] = nil
            wake(w, msg)
        end
    end
end

local function on_message(nc, msg)
    if nc.on_message then nc.on_message(nc, msg) end
    local t = msg.type
    if t == 20 or t == 17 then
        return on_command(nc, msg)
    end
    if t == 4 then -- User Control: the event names its stream
        local ns = msg.event_name == "stream_eof" and nc.streams[msg.stream_id]
        -- FMS sends StreamEOF between Play.Reset and Play.Start: a play
        -- ends at StreamEOF only once it has started
        if ns and ns.playing and ns.started then ns:_push(false, "eof") end
        return
    end
    local ns = nc.streams[msg.stream]
    if not ns and msg.stream == 0 then
        -- FFmpeg's server (-listen 1) sends the media on stream 0: give it to
        -- the stream that plays, when exactly one does
        for _, s in pairs(nc.streams) do
            if s.playing then
                if ns then return end
                ns = s
            end
        end
    end
    if not ns then return end
    if t == 8 or t == 9 or t == 18 or t == 15 then
        ns:_push(msg)
    elseif t == 22 then
        local subs = msg:split()
        for _, sub in ipairs(subs or {}) do ns:_push(sub) end
    end
end

-- Send a command with a fresh transaction id and wait for its answer:
-- the _result / _error message, or nil, err.
function NC:_request(hdr, name, ...)
    if self.closed then return nil, "closed: " .. self.closed end
    need_coroutine("nc:" .. name)
    self.txn = self.txn + 1
    local txn = self.txn
    local w = {}
    self.pending[txn] = w
    local ok, err = self.conn:command(hdr, name, txn, ...)
    if not ok then
        self.pending[txn] = nil
        return nil, err
    end
    local msg, werr = wait(w, self.timeout)
    self.pending[txn] = nil
    return msg, werr
end

-- nc:call(name, ...) -> the _result values after the command object, or nil, err.
function NC:call(name, ...)
    assert(type(name) == "string", "nc:call: command name expected")
    local msg, err = self:_request(nil, name, null, ...)
    if not msg then return nil, err end
    if msg.name ~= "_result" then return nil, status_error(msg) end
    local v = msg.values
    return unpack(v, 4, v.n)
end

-- nc:create_stream() -> ns or nil, err
function NC:create_stream()
    local msg, err = self:_request(nil, "createStream", null)
    if not msg then return nil, err end
    if msg.name ~= "_result" then return nil, status_error(msg) end
    local id = math.tointeger(msg.values[4])
    if not id or id < 0 then return nil, "createStream: no stream id in the _result" end
    local ns = setmetatable({ nc = self, id = id, queue = {}, head = 1, tail = 0, dropped = 0,
                              max_queue = self.max_queue }, NS)
    self.streams[id] = ns
    return ns
end

-- nc:close([reason]): close the connection.  Inside a coroutine it waits
-- until the connection is gone (at most 5 s) and then until its socket is
-- closed: the linger writes what is still queued (closeStream,
-- deleteStream, the end of a stream) and ends when the server has closed
-- too, or at the `linger` setting's time.  So a script may exit right
-- after without losing its last bytes.
function NC:close(reason)
    if self.closed then return true end
    self.conn:close(reason)
    local _, main = coroutine.running()
    if not main and coroutine.isyieldable() then
        if not self.closed then
            local w = {}
            self.close_waiters[#self.close_waiters + 1] = w
            wait(w, 5)
        end
        -- on_close runs before the socket is handed to the linger: look
        -- once the loop has gone on
        repeat _M.sleep(0.01) until not self.conn.lingering
    end
    return true
end

-- ---- net streams ----

-- Queue a message (or false, "eof" / "closed") for ns:read.
function NS:_push(msg, marker)
    if not msg then
        if self.queue[self.tail] == marker and self.tail >= self.head then return end
        if marker == "eof" and self.at_eof then return end
        if marker == "eof" then self.at_eof = true end
    else
        self.at_eof = false
        if self.playing then self.started = true end -- media: the play has begun
    end
    local item = msg or marker
    if self.tail - self.head + 1 >= self.max_queue and msg then
        self.queue[self.head] = nil   -- full: the oldest message goes
        self.head = self.head + 1
        self.dropped = self.dropped + 1
    end
    self.tail = self.tail + 1
    self.queue[self.tail] = item
    if self.read_w then
        local w = self.read_w
        self.read_w = nil
        wake(w, true)
    end
end

function NS:_status(msg)
    local info = info_of(msg) or {}
    self.last_status = info
    local code = info.code
    if code == "NetStream.Play.Start" and self.playing then self.started = true end
    if EOF_CODES[code] and self.playing then self:_push(false, "eof") end
    local w = self.status_w
    if not w then return end
    if code == w.want then
        self.status_w = nil
        wake(w, true)
    elseif info.level == "error" or (w.fail and code and code:find(w.fail, 1, true)) then
        self.status_w = nil
        wake(w, nil, status_error(msg))
    end
end

-- Send a stream command and wait for the onStatus `want`.
function NS:_command_status(want, fail, name, ...)
    local nc = self.nc
    if nc.closed then return nil, "closed: " .. nc.closed end
    if self.closed then return nil, "closed" end
    need_coroutine("ns:" .. name)
    local w = { want = want, fail = fail }
    self.status_w = w
    local ok, err = nc.conn:command({ stream = self.id, csid = 8 }, name, 0, null, ...)
    if not ok then
        self.status_w = nil
        return nil, err
    end
    local r, werr = wait(w, nc.timeout)
    if self.status_w == w then self.status_w = nil end
    return r, werr
end

-- ns:publish(name [, "live"|"record"|"append"]) -> true or nil, err
function NS:publish(name, kind)
    assert(type(name) == "string", "ns:publish: stream name expected")
    kind = kind or "live"
    assert(kind == "live" or kind == "record" or kind == "append", "ns:publish: kind must be live, record or append")
    local ok, err = self:_command_status("NetStream.Publish.Start", "NetStream.Publish.", "publish", name, kind)
    if ok then self.publishing = name end
    return ok, err
end

-- ns:play(name [, start [, duration [, reset]]]) -> true or nil, err
function NS:play(name, start, duration, reset)
    assert(type(name) == "string", "ns:play: stream name expected")
    local nc = self.nc
    if not nc.closed then nc.conn:user_control("set_buffer_length", self.id, 3000) end
    self.playing, self.started = name, false
    local ok, err
    if reset ~= nil then
        ok, err = self:_command_status("NetStream.Play.Start", "NetStream.Play.StreamNotFound", "play", name,
                                       start or -2, duration or -1, reset and true or false)
    elseif duration ~= nil then
        ok, err = self:_command_status("NetStream.Play.Start", "NetStream.Play.StreamNotFound", "play", name,
                                       start or -2, duration)
    else
        ok, err = self:_command_status("NetStream.Play.Start", "NetStream.Play.StreamNotFound", "play", name,
                                       start or -2)
    end
    if not ok then self.playing, self.started = nil, nil end
    return ok, err
end

-- ns:read([timeout]) -> the next audio/video/data message, or nil, "eof" |
-- "closed" | "timeout".
function NS:read(timeout)
    while true do
        if self.head <= self.tail then
            local item = self.queue[self.head]
            self.queue[self.head] = nil
            self.head = self.head + 1
            if type(item) == "string" then return nil, item end
            return item
        end
        if self.closed or self.nc.closed then return nil, "closed" end
        need_coroutine("ns:read")
        local w = {}
        self.read_w = w
        local ok, err = wait(w, timeout)
        if self.read_w == w then self.read_w = nil end
        if not ok then return nil, err end
    end
end

-- AMF0 strings "onMetaData" and "@setDataFrame" as they start a data body
local ONMETADATA = "\2\0\10onMetaData"
local SETDATAFRAME = "\2\0\13@setDataFrame"

-- ns:send(msg) -> true or nil, err: a message object (from a FLV reader or
-- on_message) or a table { type =, timestamp =, payload = } on this stream.
function NS:send(msg)
    local nc = self.nc
    if nc.closed then return nil, "closed: " .. nc.closed end
    if self.closed then return nil, "closed" end
    local t = msg.type
    local hdr = { stream = self.id, timestamp = msg.timestamp or 0, type = t }
    if type(msg) == "table" then
        local payload = msg.payload
        assert(type(payload) == "string", "ns:send: payload string expected")
        if t == 18 and payload:sub(1, 13) == ONMETADATA then payload = SETDATAFRAME .. payload end
        return nc.conn:send(hdr, payload)
    end
    if t == 18 and msg.name == "onMetaData" then
        local v = msg.values
        if v then return nc.conn:data(hdr, "@setDataFrame", unpack(v, 1, v.n)) end
    end
    return nc.conn:send(hdr, msg)
end

-- ns:pause(paused, ms) and ns:seek(ms): sent, not waited for.
function NS:pause(paused, ms)
    if self.nc.closed then return nil, "closed: " .. self.nc.closed end
    return self.nc.conn:command({ stream = self.id, csid = 8 }, "pause", 0, null, paused and true or false,
                                ms or 0)
end

function NS:seek(ms)
    if self.nc.closed then return nil, "closed: " .. self.nc.closed end
    return self.nc.conn:command({ stream = self.id, csid = 8 }, "seek", 0, null, ms or 0)
end

-- ns:close(): closeStream on the stream, then deleteStream.
function NS:close()
    if self.closed then return true end
    self.closed = true
    local nc = self.nc
    nc.streams[self.id] = nil
    local ok, err = true, nil
    if not nc.closed then
        -- queued before any waiter runs: a reader woken below may close the connection
        nc.conn:command({ stream = self.id, csid = 8 }, "closeStream", 0, null)
        ok, err = nc.conn:command(nil, "deleteStream", 0, null, self.id)
    end
    if self.read_w then wake(self.read_w, nil, "closed") end
    if self.status_w then wake(self.status_w, nil, "closed") end
    return ok, err
end

-- ---- connect ----

-- rtmp.connect(url [, opts]) without handler functions: connect, send
-- `connect`, wait for its answer.  -> nc or nil, err
function _M.connect(url, opts)
    assert(type(url) == "string", "rtmp.connect: URL expected")
    opts = opts or {}
    assert(type(opts) == "table", "rtmp.connect: options table expected")
    for _, k in ipairs(HANDLER_NAMES) do
        assert(opts[k] == nil, "rtmp.client.connect: handler " .. k .. " given (use the callback API)")
    end
    need_coroutine("rtmp.connect")
    local parsed, perr = rtmp.parse_url(url)
    if not parsed then return nil, perr end
    local nc = setmetatable({ txn = 1, pending = {}, close_waiters = {}, streams = {}, url = url,
                              timeout = opts.timeout or _M.default_timeout,
                              max_queue = opts.max_queue or _M.default_max_queue }, NC)
    -- Enhanced RTMP capabilities for the connect object (rtmp.caps.announce)
    local announced = opts.caps and require("rtmp.caps").announce(opts.caps) or {}
    local w = {}
    nc.pending[1] = w
    local handlers = {}
    for k, v in pairs(opts) do
        if not OWN[k] then handlers[k] = v end
    end
    handlers.on_handshake = function(conn)
        local obj = {
            app = opts.app or conn.app, tcUrl = opts.tc_url or conn.tc_url,
            flashVer = opts.flash_ver or _M.flash_ver, swfUrl = opts.swf_url, pageUrl = opts.page_url,
            fpad = false, capabilities = 15, audioCodecs = 3191, videoCodecs = 252, videoFunction = 1,
        }
        for k, v in pairs(announced) do obj[k] = v end
        for k, v in pairs(opts.properties or {}) do obj[k] = v end
        local extra = opts.args or {}
        conn:command(nil, "connect", 1, obj, unpack(extra, 1, extra.n or #extra))
    end
    handlers.on_message = function(_, msg) on_message(nc, msg) end
    handlers.on_close = function(_, reason) on_close(nc, reason) end
    local conn, err = rtmp.connect(url, handlers)
    if not conn then return nil, "closed: " .. tostring(err) end
    nc.conn = conn
    local msg, werr = wait(w, nc.timeout)
    nc.pending[1] = nil
    if not msg then
        if werr == "timeout" then conn:close("connect timed out") end
        return nil, werr
    end
    if msg.name ~= "_result" then
        local e = status_error(msg)
        conn:close("connect refused")
        return nil, e
    end
    nc.info = info_of(msg)
    -- what the server announced of Enhanced RTMP in its properties (nil: nothing)
    nc.caps = require("rtmp.caps").parse(msg.values and msg.values[3])
    return nc
end

return _M
