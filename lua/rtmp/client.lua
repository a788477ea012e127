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
              args = true, properties = true, timeout = true, max_queue = true, caps = true,
              reconnect = true }

_M.default_timeout = 10
_M.default_max_queue = 4096
_M.flash_ver = "LNX 9,0,124,2"

-- ---- coroutines ----

local spawned = setmetatable({}, { __mode = "k" })

-- An error in a coroutine resumed from the loop: the main script's ends
-- the program (luartmp reports it and exits 1); others are logged.  An
-- rtmp.fail error is its message alone, without a traceback.
local function report(co, err)
    local tb = rtmp.failure(err) or debug.traceback(co, tostring(err))
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

-- Enhanced RTMP's request to move (see "ReconnectRequest" below)
local RECONNECT = "NetConnection.Connect.ReconnectRequest"
local note_sent, switch_point, note_read, coded -- what a move needs to know of a stream

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
    if nc.moving and not nc.old_gone then return nc:_old_closed(reason or "closed") end
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
        if msg.stream == 0 and info and info.code == RECONNECT then return nc:_reconnect_request(info) end
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
    if self.moving then self:_move_failed(nil) end
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

-- A message (or false, "eof" / "closed") of the connection for ns:read;
-- while the connection moves, what the old and the new one say meet here
-- (see "ReconnectRequest" below).
function NS:_push(msg, marker)
    if self.sink then return self.sink:_from_next(msg, marker) end
    if self.nc.moving and self.playing and not self.switched then return self:_from_old(msg, marker) end
    return self:_enqueue(msg, marker)
end

-- Queue a message (or false, "eof" / "closed") for ns:read.
function NS:_enqueue(msg, marker)
    if not msg then
        if self.queue[self.tail] == marker and self.tail >= self.head then return end
        if marker == "eof" and self.at_eof then return end
        if marker == "eof" then self.at_eof = true end
        self.read_after = nil -- what follows is another stream
    else
        local after = self.read_after
        if after and after[msg.type] and coded(msg) then
            if msg.timestamp <= after[msg.type] then return end -- read before a move
            after[msg.type] = nil
        end
        self.at_eof = false
        if self.playing then self.started = true end -- media: the play has begun
        if self.playing then note_read(self, msg) end
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
    if ok then self.publishing, self.kind = name, kind end
    return ok, err
end

-- ns:play(name [, start [, duration [, reset]]]) -> true or nil, err
function NS:play(name, start, duration, reset)
    assert(type(name) == "string", "ns:play: stream name expected")
    local nc = self.nc
    if not nc.closed then nc.conn:user_control("set_buffer_length", self.id, 3000) end
    self.playing, self.started = name, false
    self.play_args = pack(name, start, duration, reset)
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

-- msg on stream id of conn.
local function send_on(conn, id, msg)
    local t = msg.type
    local hdr = { stream = id, timestamp = msg.timestamp or 0, type = t }
    if type(msg) == "table" then
        local payload = msg.payload
        assert(type(payload) == "string", "ns:send: payload string expected")
        if t == 18 and payload:sub(1, 13) == ONMETADATA then payload = SETDATAFRAME .. payload end
        return conn:send(hdr, payload)
    end
    if t == 18 and msg.name == "onMetaData" then
        local v = msg.values
        if v then return conn:data(hdr, "@setDataFrame", unpack(v, 1, v.n)) end
    end
    return conn:send(hdr, msg)
end

-- ns:send(msg) -> true or nil, err: a message object (from a FLV reader or
-- on_message) or a table { type =, timestamp =, payload = } on this stream.
-- While the connection moves (ReconnectRequest), it goes on the new one
-- from the next keyframe on.
function NS:send(msg)
    local nc = self.nc
    if self.closed then return nil, "closed" end
    local nxt = self.next
    if nxt then
        if self.switched then return send_on(nxt.nc.conn, nxt.id, msg) end
        note_sent(self, msg)
        if self.next_ready and (nc.old_gone or switch_point(self, msg)) then return self:_switch_send(msg) end
    elseif nc.moving or self.publishing then
        note_sent(self, msg)
    end
    if nc.closed then return nil, "closed: " .. nc.closed end
    if nc.old_gone then return nil, "closed: " .. nc.old_gone end
    return send_on(nc.conn, self.id, msg)
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
    if self.next then self.next:close() end
    if self.read_w then wake(self.read_w, nil, "closed") end
    if self.status_w then wake(self.status_w, nil, "closed") end
    return ok, err
end

-- ---- ReconnectRequest (Enhanced RTMP v2) ----
--
-- A server asks a client that announced capsEx Reconnect to move with
-- onStatus NetConnection.Connect.ReconnectRequest on stream 0 (tcUrl:
-- where, absolute or relative to ours; none: the same).  The connection
-- then moves under its user (nc and its streams stay the same objects): a
-- new connection to that tcUrl with the same settings, each publishing or
-- playing stream again there under the same name, and a switch at a
-- keyframe, so that every frame goes (or is read) once:
--   publishing: the messages go on the old connection until the new one
--     publishes; the next video keyframe (a stream without video: the next
--     audio frame) and all that follows go on the new one, after the last
--     metadata and sequence headers sent (stamped with its timestamp); then
--     the old stream and connection close.
--   playing: the new one's messages are held from its first keyframe
--     (timestamp T) on; the old one's are read until its first frame of
--     that kind at T or later, its end of stream (its publisher moved) or
--     its close; then the held ones, less any frame at or before the last
--     one read of its kind and any sequence header or metadata equal to
--     the last one read; then the old connection closes.
-- "Once" is by timestamps: per kind (audio, video), the coded frames read
-- are strictly increasing, none left out.  That needs both servers to
-- carry the publisher's timestamps (luartmp does; a server that starts
-- each player at 0 does not).  A move that fails (the new connection or
-- its publish/play refused, no keyframe within the timeout) is logged and
-- the old connection goes on.  rtmp.connect(url, { reconnect = false })
-- neither announces nor follows it.


--- client.resolve_url(base, ref) -> URL: a ReconnectRequest's tcUrl (ref:
--- "rtmp://host/app", "//host/app", "/app" or "app") resolved against the
--- tcUrl of the connection (base), as RFC 3986 resolves a reference
--- (without dot segments); base itself when ref is none.
function _M.resolve_url(base, ref)
    if type(ref) ~= "string" or ref == "" then return base end
    if ref:match("^%a[%w+.-]*:") then return ref end
    local scheme, authority, path = base:match("^(%a[%w+.-]*:)//([^/?#]*)([^?#]*)")
    if not scheme then return ref end
    if ref:sub(1, 2) == "//" then return scheme .. ref end
    if ref:sub(1, 1) == "/" then return scheme .. "//" .. authority .. ref end
    if ref:sub(1, 1) == "?" then return scheme .. "//" .. authority .. path .. ref end
    return scheme .. "//" .. authority .. (path:match("^(.*/)") or "/") .. ref
end

local function log_conn(nc, level, fmt, ...)
    local conn = nc.conn
    rtmp.log[level]("conn=%s " .. fmt, tostring(conn and conn.id), ...)
end

-- A coded audio or video frame (not a sequence header, end or command).
function coded(m)
    local p = m.packet
    return p == "coded_frames" or p == "coded_frames_x"
end

-- m as a message object, for its media fields (ns:send takes tables too).
local function as_message(m)
    if type(m) == "table" then
        return rtmp.message({ type = m.type, timestamp = m.timestamp or 0 }, m.payload)
    end
    return m
end

local function is_metadata(m)
    if m.type ~= 18 then return false end
    local p = m.payload
    return p:sub(1, 13) == ONMETADATA or p:sub(1, 29) == SETDATAFRAME .. ONMETADATA
end

-- What a sequence header configures: its kind and tracks.
local function header_key(m)
    local ids = {}
    for i, t in ipairs(m.tracks or {}) do ids[i] = tostring(t.id) .. "/" .. tostring(t.codec) end
    return m.type .. ":" .. table.concat(ids, ",")
end

-- Publishing: remember what a new connection needs first (the last
-- metadata, the last sequence header of each kind and track), and
-- whether the stream has video.
function note_sent(ns, msg)
    local t = msg.type
    if t ~= 8 and t ~= 9 and t ~= 18 then return end
    local m = as_message(msg)
    if t == 18 then
        if is_metadata(m) then ns.sent_meta = m end
        return
    end
    if t == 9 then ns.has_video = true end
    if m.sequence_header then
        ns.sent_headers = ns.sent_headers or {}
        local key = header_key(m)
        if not ns.sent_headers[key] then ns.sent_headers[#ns.sent_headers + 1] = key end
        ns.sent_headers[key] = m
    end
end

-- Where a publisher's stream may move: a video keyframe, or without video
-- an audio frame.
function switch_point(ns, msg)
    local m = as_message(msg)
    if not coded(m) then return false end
    if ns.has_video then return m.type == 9 and m.keyframe end
    return m.type == 8
end

-- Playing: what was read, for the switch.
function note_read(ns, m)
    local t = m.type
    if t == 9 or t == 8 then
        if t == 9 then ns.saw_video = true end
        if coded(m) then
            ns.read_ts = ns.read_ts or {}
            ns.read_ts[t] = m.timestamp
        elseif m.sequence_header then
            ns.read_headers = ns.read_headers or {}
            ns.read_headers[header_key(m)] = m.payload
        end
    elseif t == 18 and is_metadata(m) then
        ns.read_meta = m.payload
    end
end

-- The publisher's switch: the headers, then msg, on the new stream.
function NS:_switch_send(msg)
    local nxt, nc = self.next, self.nc
    local conn, id, ts = nxt.nc.conn, nxt.id, msg.timestamp or 0
    local first = {}
    if self.sent_meta then first[1] = self.sent_meta end
    for _, key in ipairs(self.sent_headers or {}) do first[#first + 1] = self.sent_headers[key] end
    for _, m in ipairs(first) do
        local ok, err = send_on(conn, id, { type = m.type, timestamp = ts, payload = m.payload })
        if not ok then return nil, err end
    end
    self.switched = true
    local ok, err = send_on(conn, id, msg)
    log_conn(nc, "info", "stream %s moved at %s %d ms", tostring(self.publishing), msg.type == 9 and "keyframe" or "frame", ts)
    nc:_stream_switched()
    return ok, err
end

-- Playing, while moving: the old connection's part.
function NS:_from_old(msg, marker)
    if self.old_done then return end
    if not msg then
        self.old_end = marker
        return self:_old_finished()
    end
    local cut = self.cut
    if cut and msg.type == self.cut_type and coded(msg) and msg.timestamp >= cut then
        return self:_old_finished()
    end
    return self:_enqueue(msg)
end

-- Playing, while moving: the new connection's part (self: the user's stream).
function NS:_from_next(msg, marker)
    if self.switched then return self:_enqueue(msg, marker) end
    if not msg then
        if marker == "closed" then self.nc:_move_failed("the new connection closed") end
        return
    end
    local t = msg.type
    if not self.cut then
        if (t == 8 or t == 9) and coded(msg) then
            local want = self.saw_video and 9 or 8
            -- a frame before the first keyframe: the old connection reads it
            if t ~= want or (t == 9 and not msg.keyframe) then return end
            self.cut, self.cut_type = msg.timestamp, t
        elseif t == 18 and msg.name == "|RtmpSampleAccess" then
            return
        end
    end
    self.held = self.held or {}
    self.held[#self.held + 1] = msg
    if self.cut and self.old_done then return self:_switch_read() end
end

function NS:_old_finished()
    self.old_done = true
    if self.cut then return self:_switch_read() end
end

-- Playing: from the old connection's messages to the new one's.
function NS:_switch_read()
    self.switched = true
    local held = self.held or {}
    self.held = nil
    local read_ts, headers = self.read_ts or {}, self.read_headers or {}
    -- the frames the old connection read are not read again, also when
    -- the new one, behind it, brings them after the switch (_enqueue)
    self.read_after = { [8] = read_ts[8], [9] = read_ts[9] }
    for _, m in ipairs(held) do
        local t, keep = m.type, true
        if (t == 8 or t == 9) and m.sequence_header then
            keep = headers[header_key(m)] ~= m.payload
        elseif t == 18 and is_metadata(m) then
            keep = self.read_meta ~= m.payload
        end
        if keep then self:_enqueue(m) end
    end
    log_conn(self.nc, "info", "stream %s moved at %d ms", tostring(self.playing), self.cut)
    self.nc:_stream_switched()
end

-- onStatus NetConnection.Connect.ReconnectRequest on stream 0.
function NC:_reconnect_request(info)
    self.reconnect_info = info
    if not self.reconnect or self.moving or self.closed then
        return log_conn(self, "info", "%s not followed", RECONNECT)
    end
    local url = _M.resolve_url(self.tc_url, info.tcUrl)
    if not rtmp.parse_url(url) then
        return log_conn(self, "warn", "%s to %s: not an rtmp[s]:// URL", RECONNECT, tostring(url))
    end
    log_conn(self, "info", "%s: moving to %s%s", RECONNECT, url,
             info.description ~= nil and " (" .. tostring(info.description) .. ")" or "")
    self.moving = url
    _M.spawn(function() self:_move(url) end)
end

-- The move: connect, then each stream again on the new connection.
function NC:_move(url)
    local opts = {}
    for k, v in pairs(self.opts) do opts[k] = v end
    opts.app, opts.tc_url = url:match("^%a[%w+.-]*://[^/]*/?(.*)$"), url
    local new, err = _M.connect(url, opts)
    if self.moving ~= url then
        if new then new:close("move abandoned") end
        return
    end
    if not new then return self:_move_failed("connect: " .. tostring(err)) end
    self.next = new
    local waiting = false
    for _, ns in pairs(self.streams) do
        if ns.publishing or ns.playing then
            local nns, serr = new:create_stream()
            if not nns then return self:_move_failed("createStream: " .. tostring(serr)) end
            nns.sink, ns.next = ns, nns
            local ok, perr
            if ns.publishing then
                ok, perr = nns:publish(ns.publishing, ns.kind)
            else
                waiting = true
                ok, perr = nns:play(unpack(ns.play_args, 1, ns.play_args.n))
            end
            if self.moving ~= url then return end
            if not ok then return self:_move_failed(tostring(perr)) end
            ns.next_ready = true
        end
    end
    if not waiting and not next(self.streams) then return self:_stream_switched() end
    if self.old_gone then -- players whose old connection ended first switch when the keyframe comes
        for _, ns in pairs(self.streams) do if ns.playing and not ns.old_done then ns:_old_finished() end end
    end
    if waiting then
        rtmp.timer(self.timeout, function()
            if self.moving == url then self:_move_failed("no keyframe on the new connection in " .. self.timeout .. " s") end
        end)
    end
end

-- The old connection closed while moving: its part has ended.
function NC:_old_closed(reason)
    self.old_gone = reason
    local pending = self.pending
    self.pending = {}
    for _, w in pairs(pending) do wake(w, nil, "closed: " .. reason) end
    for _, ns in pairs(self.streams) do
        if ns.playing and ns.next_ready and not ns.switched then ns:_from_old(false, "closed") end
    end
end

-- A stream switched; once every one has, the new connection is nc's.
function NC:_stream_switched()
    for _, ns in pairs(self.streams) do
        if ns.next and not ns.switched then return end
    end
    local new, old = self.next, self.conn
    log_conn(self, "info", "moved to %s (conn=%s)", self.moving, tostring(new.conn.id))
    -- the old connection says nothing more to nc
    self.route.nc = setmetatable({ pending = {}, close_waiters = {}, streams = {}, txn = 0 }, NC)
    if not self.old_gone then
        for _, ns in pairs(self.streams) do
            if ns.next then
                old:command({ stream = ns.id, csid = 8 }, "closeStream", 0, null)
                old:command(nil, "deleteStream", 0, null, ns.id)
            end
        end
        old:close("moved to " .. self.moving)
    end
    local streams = {}
    for _, ns in pairs(self.streams) do
        local nns = ns.next
        if nns then
            ns.id = nns.id
            streams[ns.id] = ns
        end
        ns.next, ns.next_ready, ns.switched, ns.cut, ns.cut_type, ns.old_done, ns.old_end = nil
    end
    for k in pairs({ conn = 1, txn = 1, pending = 1, info = 1, caps = 1, url = 1, tc_url = 1, opts = 1,
                     route = 1 }) do
        self[k] = new[k]
    end
    self.streams, new.streams = streams, {}
    self.route.nc = self
    self.moving, self.next, self.old_gone = nil, nil, nil
    if new.closed then on_close(self, new.closed) end
end

-- The move failed (why, or nil: given up by nc:close): the old
-- connection goes on, or, gone, ends nc.
function NC:_move_failed(why)
    local new = self.next
    if why then log_conn(self, "warn", "%s: not moved to %s: %s", RECONNECT, tostring(self.moving), why) end
    self.moving, self.next = nil, nil
    if new then
        new.route.nc = setmetatable({ pending = {}, close_waiters = {}, streams = {}, txn = 0 }, NC)
        new.conn:close("move failed")
    end
    for _, ns in pairs(self.streams) do
        local marker = ns.old_end
        ns.next, ns.next_ready, ns.switched, ns.cut, ns.cut_type, ns.old_done, ns.old_end, ns.held = nil
        if marker then ns:_enqueue(false, marker) end
    end
    local gone = self.old_gone
    self.old_gone = nil
    if gone then on_close(self, gone) end
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
                              max_queue = opts.max_queue or _M.default_max_queue,
                              opts = opts, reconnect = opts.reconnect ~= false }, NC)
    -- the connection's events go to route.nc: nc, or after a move, the
    -- connection it moved from (see "ReconnectRequest")
    local route = { nc = nc }
    nc.route = route
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
        if nc.reconnect then -- it follows NetConnection.Connect.ReconnectRequest
            obj.capsEx = ((math.tointeger(obj.capsEx or 0) or 0) | require("rtmp.caps").CAPS_EX.reconnect) + 0.0
        elseif obj.capsEx then -- opts.caps announced it, but this connection does not follow one
            obj.capsEx = ((math.tointeger(obj.capsEx) or 0) & ~require("rtmp.caps").CAPS_EX.reconnect) + 0.0
        end
        for k, v in pairs(opts.properties or {}) do obj[k] = v end
        nc.tc_url = obj.tcUrl
        local extra = opts.args or {}
        conn:command(nil, "connect", 1, obj, unpack(extra, 1, extra.n or #extra))
    end
    handlers.on_message = function(_, msg) on_message(route.nc, msg) end
    handlers.on_close = function(_, reason) on_close(route.nc, reason) end
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
