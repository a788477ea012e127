-- rtmp.replay: run a script against a recorded session with no sockets
-- and a virtual clock.  The same recording, script and seed give the same
-- output bytes on every run.
--
--   local replay = require "rtmp.replay"
--   local res = assert(replay.run{ capture = "flow.pcapng", script = "scripts/live.lua" })
--   for _, c in ipairs(res.conns) do print(c.id, c.peer, #c.output, replay.sha256(c.output)) end
--   io.write(table.concat(res.trace, "\n"), "\n")
--
-- The script runs unmodified: while it runs, `require "rtmp"` gives a
-- virtual module whose listen, connect, timer, now, run, stop, shutdown,
-- group, spawn and sleep work on socket-free sessions (rtmp.session) and
-- a clock that jumps from one event to the next.  Everything else is the
-- real module.  A server script (it called rtmp.listen) gets each
-- recorded connection's client-to-server bytes at their recorded times;
-- a client script gets, for its n-th rtmp.connect, the server-to-client
-- bytes of the n-th recorded connection, at their times after the
-- connect.  See docs/REPLAY.md.
local rtmp = require "rtmp"

local _M = {}

local fmt, concat, unpack, pack = string.format, table.concat, table.unpack, table.pack

_M.default_seed = 1           -- handshake_seed of every replayed connection
_M.HANDSHAKE_OUT = 3073       -- bytes of handshake either role sends (C0+C1+C2, S0+S1+S2)
_M.max_events_per_instant = 1000000  -- then the replay stops (result.timed_out = "runaway")

--- sha256(bytes) -> 64 lowercase hex digits (libcrypto's, rtmp.sha256).
_M.sha256 = rtmp.sha256

---------------------------------------------------------------------------
-- Trace lines
---------------------------------------------------------------------------

-- A trace line for msg (docs/TRACE.md format) at virtual time t.
local function trace_line(msg, dir, id, t, chunk_fmt)
  if rtmp.trace_line then
    return rtmp.trace_line(msg, { dir = dir, conn = id, time = t, fmt = chunk_fmt })
  end
  -- without the binding's formatter: the header fields only
  return fmt("%.6f conn=%d %s csid=%d fmt=%d type=%s stream=%d ts=%d len=%d", t, id, dir, msg.csid,
    chunk_fmt or msg.fmt or -1, tostring(msg.type_name or msg.type), msg.stream, msg.timestamp, msg.length)
end

---------------------------------------------------------------------------
-- The event queue: a binary heap ordered by (time, sequence).
---------------------------------------------------------------------------

local function before(a, b)
  if a.t ~= b.t then return a.t < b.t end
  return a.seq < b.seq
end

local function heap_push(h, ev)
  local n = #h + 1
  h[n] = ev
  while n > 1 do
    local p = n // 2
    if not before(h[n], h[p]) then break end
    h[n], h[p] = h[p], h[n]
    n = p
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and before(h[l], h[m]) then m = l end
    if r <= n and before(h[r], h[m]) then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

---------------------------------------------------------------------------
-- A replay: the virtual loop, connections, timers, groups.
---------------------------------------------------------------------------

local R = {}
R.__index = R

-- Schedule fn at virtual time t (events at the same time run in the
-- order they were scheduled).  Returns the event (ev.cancelled stops it).
function R:at(t, fn)
  self.seq = self.seq + 1
  local ev = { t = t, seq = self.seq, fn = fn }
  heap_push(self.queue, ev)
  return ev
end

function R:log_error(fmtstr, ...)
  local line = fmt(fmtstr, ...)
  self.errors[#self.errors + 1] = line
  if not self.quiet then rtmp.log.error("replay: %s", line) end
end

-- Run the loop until nothing is left, rtmp.stop(), the time limit, or
-- `untilt` (virtual time) when given.  Returns true when stopped.
function R:loop(untilt)
  while not self.stopped do
    local ev = self.queue[1]
    if not ev then break end
    if untilt and ev.t > untilt then
      self.now = untilt
      break
    end
    if ev.t > math.max(self.input_end, self.started_at) + self.grace then
      self.timed_out = true
      break
    end
    heap_pop(self.queue)
    -- a script that keeps scheduling at the same instant (rtmp.timer(0, ...)
    -- re-armed from itself) would never let the clock move
    if ev.t == self.now then
      self.same_instant = (self.same_instant or 0) + 1
      if self.same_instant > _M.max_events_per_instant then
        self.timed_out = "runaway"
        break
      end
    else
      self.same_instant = 0
    end
    if not ev.cancelled then
      if ev.t > self.now then self.now = ev.t end
      ev.fn()
      if not self.exiting then self:mark_written() end
    end
  end
  return self.stopped
end

-- xpcall(fn, debug.traceback, ...) where fn cannot yield: the net layer
-- calls handlers from C, outside any coroutine, so a handler that waits
-- (rtmp.sleep, nc:call) must fail as it does there, even when the replay
-- itself runs inside a coroutine (luartmp's main script, busted).  A
-- string.gsub callback is a C call boundary with no continuation.
local function call_unyieldable(fn, ...)
  local args, res = pack(...), nil
  string.gsub("x", "x", function()
    res = pack(xpcall(fn, debug.traceback, unpack(args, 1, args.n)))
  end)
  return unpack(res, 1, res.n)
end

-- Call fn(...) as the net layer calls a handler: errors are logged with a
-- traceback and close conn (when given).  Returns true when it ran.
function R:call(conn, what, fn, ...)
  local ok, err = call_unyieldable(fn, ...)
  if not ok then
    if self.exiting and tostring(err):find(self.EXIT, 1, true) then return false end
    local first = tostring(err):match("^[^\n]*")
    self:log_error("script error in %s: %s", what, tostring(err))
    if conn then self:close_conn(conn, "script error: " .. first:sub(1, 180)) end
  end
  return ok
end

-- ---- connections ----

local CONN = {}   -- metatable of the virtual connections
local state = setmetatable({}, { __mode = "k" })  -- conn -> its state

-- Fields a connection answers itself (as lua/l_net.c does).
local OWN_FIELDS = { id = true, peer = true, role = true, closed = true }

local method_cache = {}  -- session method name -> wrapper(conn, ...)

local function session_method(name, fn)
  local w = method_cache[name]
  if not w then
    w = function(conn, ...)
      local st = state[conn]
      if not st or st.closing then return nil, "closed" end
      local r = pack(fn(st.s, ...))
      st.replay:drain(conn)
      return unpack(r, 1, r.n)
    end
    method_cache[name] = w
  end
  return w
end

local conn_methods = {}

function conn_methods.close(conn, reason)
  local st = state[conn]
  if not st.closing then st.replay:close_conn(conn, reason or "closed by the script") end
  return true
end

function conn_methods.log(conn, level, fmtstr, ...)
  local st = state[conn]
  local f = rtmp.log[level]
  if not f then error("bad log level '" .. tostring(level) .. "'", 2) end
  f("conn=%d peer=%s %s", st.id, st.peer, fmt(fmtstr, ...))
end

function conn_methods.trace()
  return true  -- the replay writes its own trace (virtual times)
end

-- conn:forward(stream_id [, group]): the session's, with the core's group
-- behind the virtual one.
function conn_methods.forward(conn, sid, group)
  local st = state[conn]
  if st.closing then return nil, "closed" end
  st.forwards[sid] = group
  return st.s:forward(sid, group and group.g)
end

CONN.__index = function(conn, k)
  local st = state[conn]
  local m = conn_methods[k]
  if m then return m end
  if OWN_FIELDS[k] then
    if k == "closed" then return st.closing end
    return st[k]
  end
  if k == "pending" then
    -- queued and not yet written: written at the end of each loop iteration
    local n = st.s and st.s.pending or 0
    for i = (st.written or 0) + 1, #st.out do n = n + #st.out[i] end
    return n
  end
  local v = st.fields[k]
  if v ~= nil then return v end
  local s = st.s
  if not s then return nil end
  local sv = s[k]
  if type(sv) == "function" then return session_method(k, sv) end
  return sv
end

CONN.__newindex = function(conn, k, v)
  state[conn].fields[k] = v
end

CONN.__tostring = function(conn)
  local st = state[conn]
  return fmt("rtmp.conn(%d %s%s)", st.id, st.peer, st.closing and " closed" or "")
end

-- Fields of rtmp.listen / rtmp.connect settings the replay does not
-- pass on to its sessions: where to listen, and the trace (the replay
-- writes its own, with virtual times).
local NOT_SETTINGS = { listen = true, trace = true }

-- The rtmp.session settings for a connection made by rtmp.listen or
-- rtmp.connect with `handlers`: the replay's rtmp.options, then the
-- handlers' settings, with the replay's seed unless they give one.  The
-- session reads them as rtmp.listen does (lua/l_settings.c), defaults and
-- deadlines included.
function R:settings(role, handlers)
  local settings = { handshake_seed = self.seed }
  for _, t in ipairs{ self.options, handlers } do
    for k, v in pairs(t) do
      if not NOT_SETTINGS[k] and type(v) ~= "function" then settings[k] = v end
    end
  end
  settings.role = role
  return settings
end

function R:new_conn(role, handlers, peer, fields)
  local settings = self:settings(role, handlers)
  self.nconns = self.nconns + 1
  local conn = setmetatable({}, CONN)
  local st = {
    replay = self, id = self.nconns, role = role, peer = peer, handlers = handlers,
    fields = fields or {}, closing = false, out = {}, sent = 0, forwards = {},
    s = rtmp.session(settings, self.now),  -- the core's connection: deadlines, connect, closing
    reader = rtmp.reader{ max_message = 0x7fffffff, accept_fresh_fmt = true },
  }
  state[conn] = st
  self.by_session[st.s] = conn
  local rec = { id = st.id, role = role, peer = peer, conn = conn, out = st.out, messages_in = 0,
                messages_out = 0 }
  st.rec = rec
  self.result.conns[#self.result.conns + 1] = rec
  self.open[conn] = true
  self:arm_deadline(conn)
  return conn, st
end

function R:trace(line)
  self.result.trace[#self.result.trace + 1] = line
end

-- Move what conn's session queued into its output, and trace the
-- messages in it (the bytes after the handshake, decoded as the peer
-- would: our own Set Chunk Size applies from the next message).
function R:drain(conn)
  local st = state[conn]
  if not st or not st.s then return end
  local bytes = st.s:output(self.now)  -- the virtual socket takes it all: not idle
  if #bytes == 0 then return end
  st.out[#st.out + 1] = bytes
  local skip = _M.HANDSHAKE_OUT - st.sent
  st.sent = st.sent + #bytes
  if skip >= #bytes then return end
  if skip > 0 then bytes = bytes:sub(skip + 1) end
  if st.reader_failed then return end
  local msgs, err = st.reader:feed(bytes)
  if not msgs then
    st.reader_failed = true
    self:trace(fmt("%.6f conn=%d out undecodable: %s", self.now, st.id, tostring(err)))
    return
  end
  for _, m in ipairs(msgs) do
    local msg = rtmp.message({ type = m.type, csid = m.csid, stream = m.stream, timestamp = m.timestamp },
                             m.payload)
    st.rec.messages_out = st.rec.messages_out + 1
    self:trace(trace_line(msg, "out", st.id, self.now, m.fmt))
  end
end

-- The connection's next deadline (handshake, connect, idle: the core's,
-- as core/net.c arms them), on the virtual clock.
function R:arm_deadline(conn)
  local st = state[conn]
  if st.deadline then st.deadline.cancelled = true end
  local t = st.s.deadline
  if not t then return end
  st.deadline = self:at(t, function()
    st.deadline = nil
    if st.closing then return end
    local reason = st.s:tick(self.now)
    if reason then return self:close_conn(conn, reason) end
    self:arm_deadline(conn)
  end)
end

-- Close conn: its output stays as it is, on_close runs at once (after
-- the current handler, as the net layer's deferred close does).
function R:close_conn(conn, reason)
  local st = state[conn]
  if st.closing then return end
  st.closing = true
  self:drain(conn)
  if st.deadline then st.deadline.cancelled = true end
  st.rec.closed = reason
  self:trace(fmt("%.6f conn=%d close reason=%s", self.now, st.id, reason))
  self:at(self.now, function()
    self.open[conn] = nil
    local h = st.handlers.on_close
    if h then self:call(nil, "on_close", h, conn, reason) end
    self:drain_all()
    st.s:close()
    st.s = nil
  end)
end

-- The end of a loop iteration: the net layer writes what was queued.
function R:mark_written()
  for _, c in ipairs(self.result.conns) do
    local st = state[c.conn]
    if self.open[c.conn] then self:drain(c.conn) end
    st.written = #st.out
  end
end

-- os.exit: the process ends before the loop writes what the current
-- iteration queued; that output is dropped (and said so in the trace).
function R:drop_unwritten()
  for _, c in ipairs(self.result.conns) do
    local st = state[c.conn]
    if self.open[c.conn] then self:drain(c.conn) end
    local n = 0
    for i = #st.out, (st.written or 0) + 1, -1 do
      n = n + #st.out[i]
      st.out[i] = nil
    end
    if n > 0 then
      c.unwritten = n
      self:trace(fmt("%.6f conn=%d exit unwritten=%d", self.now, st.id, n))
    end
  end
end

function R:drain_all()
  for _, c in ipairs(self.result.conns) do
    if self.open[c.conn] then self:drain(c.conn) end
  end
end

-- Bytes from the peer, as one read of the socket.  The net layer calls
-- on_handshake and on_message from inside the session's feed, as each
-- completes, before it parses the bytes after it; feeding the read one
-- byte at a time gives the script the same view (a handler's reply comes
-- before what the engine answers to a later message of the read, an
-- automatic behaviour switched off in a handler is off for the rest of
-- the read, a close stops the read).  With opts.fast the read goes in
-- whole: far fewer calls, the messages of one read all decoded first.
function R:input(conn, bytes)
  local st = state[conn]
  if st.closing then return end
  local n, step = #bytes, self.fast and #bytes or 1
  local i = 1
  while i <= n and not st.closing do
    local piece = step == 1 and bytes:sub(i, i) or bytes:sub(i, i + step - 1)
    i = i + step
    local msgs, err = st.s:feed(piece, self.now)
    if not st.ready and st.s.ready then
      st.ready = true
      self:trace(fmt("%.6f conn=%d handshake peer=%s", self.now, st.id, tostring(st.s.handshake)))
      local h = st.handlers.on_handshake
      self:drain(conn)
      if h then self:call(conn, "on_handshake", h, conn) end
      self:drain(conn)
    end
    if not msgs then  -- a protocol error: the core closed the session with the reason
      self:close_conn(conn, st.s.closed or tostring(err))
      break
    end
    local forwarded = msgs.forwarded or {}
    for i, msg in ipairs(msgs) do
      if st.closing then break end
      st.rec.messages_in = st.rec.messages_in + 1
      self:trace(trace_line(msg, "in", st.id, self.now, msg.fmt))
      local h = st.handlers.on_message
      self:drain(conn)
      if forwarded[i] then  -- conn:forward: the group fanned it out during the feed
        local g = st.forwards[msg.stream]
        if g then g:drain() end
      elseif h then
        self:call(conn, "on_message", h, conn, msg)
      end
      self:drain_all()
    end
    -- the core closed it after the messages it returned (an undecodable
    -- connect, once the script had answered it)
    if not st.closing and st.s.closed then self:close_conn(conn, st.s.closed) end
  end
  self:drain(conn)
  self:arm_deadline(conn)
end

-- Feed a recorded direction of rec (a capture connection) to conn, each
-- chunk at t0 + its time.  The peer closes when the recording saw the
-- connection end (rec.closed: a FIN or RST; at rec.finish, its last
-- packet), or, for connections without those fields, after the last
-- chunk; never with opts.keep_open.
function R:feed_recorded(conn, rec, dir, t0)
  local last = 0
  for _, ch in ipairs(rec.chunks) do
    if ch.t > last then last = ch.t end
    if ch.dir == dir then
      self:at(t0 + ch.t, function() self:input(conn, ch.data) end)
    end
  end
  if rec.finish and rec.start and rec.finish - rec.start > last then last = rec.finish - rec.start end
  if self.input_end < t0 + last then self.input_end = t0 + last end
  if not self.keep_open and rec.closed ~= false then
    self:at(t0 + last, function() self:close_conn(conn, "peer closed the connection") end)
  end
end

-- ---- the virtual rtmp module ----

local TIMER = {}
TIMER.__index = TIMER
function TIMER:stop()
  if self.ev then self.ev.cancelled = true end
  self.ev = nil
  return true
end
function TIMER:active() return self.ev ~= nil end

-- rtmp.group over the virtual connections: the core's group (fan-out,
-- slow-reader policy, late-join cache) holding their sessions, on the
-- virtual clock.  This wrapper only turns connections into sessions and
-- back, and writes the trace of what a call queued, member by member.
local GROUP = {}
GROUP.__index = GROUP
GROUP.__len = function(g) return g.g:count() end

-- The session of an open virtual connection (nil once it is gone).
local function session_of(conn)
  local st = state[conn]
  if not st then error("connection expected", 3) end
  return st.s
end

-- What the group queued: traced per member, in the group's order.
function GROUP:drain()
  for _, s in ipairs(self.g:members()) do
    local conn = self.replay.by_session[s]
    if conn then self.replay:drain(conn) end
  end
end

function GROUP:add(conn, sid)
  local s = session_of(conn)
  if not s then return nil, "closed" end
  local ok, err = self.g:add(s, sid)
  self.replay:drain(conn)  -- a late joiner's cache
  return ok, err
end
function GROUP:remove(conn)
  local s = session_of(conn)
  return s and self.g:remove(s) or false
end
function GROUP:has(conn)
  local s = session_of(conn)
  return s and self.g:has(s) or false
end
function GROUP:count() return self.g:count() end
function GROUP:members()
  local out = {}
  for _, s in ipairs(self.g:members()) do out[#out + 1] = self.replay.by_session[s] end
  return out
end
function GROUP:clear() return self.g:clear() end
function GROUP:send(msg, hdr)
  local n = self.g:send(msg, hdr)
  self:drain()
  return n
end
function GROUP:metadata(msg, hdr)
  local n = self.g:metadata(msg, hdr)
  self:drain()
  return n
end
function GROUP:reset() return self.g:reset() end
function GROUP:cached() return self.g:cached() end
-- (no HTTP player joins a replay's group: these list and end none)
function GROUP:http_players() return self.g:http_players() end
function GROUP:end_http(reason, id) return self.g:end_http(reason, id) end

local SERVER = {}
SERVER.__index = SERVER
function SERVER:close() self.closed = true return true end

-- The virtual module for one replay.
function R:module()
  local v = setmetatable({}, { __index = rtmp })
  local replay = self
  v.options = self.options

  function v.now() return replay.now end

  function v.timer(after, fn, every)
    assert(type(after) == "number" and after >= 0, "rtmp.timer: seconds >= 0 expected")
    assert(type(fn) == "function", "rtmp.timer: function expected")
    local t = setmetatable({}, TIMER)
    local function fire()
      if every and every > 0 then
        t.ev = replay:at(replay.now + every, fire)
      else
        t.ev = nil
      end
      replay:call(nil, "timer", fn, t)
      replay:drain_all()
    end
    t.ev = replay:at(replay.now + after, fire)
    return t
  end

  function v.group(opts)
    local o = { clock = function() return replay.now end }
    for k, val in pairs(opts or {}) do
      if k ~= "clock" then o[k] = val end
    end
    return setmetatable({ g = rtmp.group(o), replay = replay }, GROUP)
  end

  function v.listen(opts)
    assert(type(opts) == "table", "rtmp.listen: options table expected")
    rtmp.session(replay:settings("server", opts)):close()  -- bad settings raise here, as rtmp.listen does
    local srv = setmetatable({ handlers = opts, port = replay.server_port }, SERVER)
    replay.listeners[#replay.listeners + 1] = srv
    if #replay.listeners == 1 then replay:serve(srv) end
    return srv
  end

  function v.connect(url, opts)
    if opts == nil or (type(opts) == "table" and not (opts.on_open or opts.on_handshake
        or opts.on_message or opts.on_close or opts.on_data)) then
      return replay.client.connect(url, opts)
    end
    return replay:connect(url, opts)
  end

  function v.spawn(fn, ...) return replay.client.spawn(fn, ...) end
  function v.sleep(s) return replay.client.sleep(s) end

  function v.run(seconds)
    return replay:loop(seconds and replay.now + seconds or nil)
  end

  function v.stop()
    replay.stopped = true
  end

  function v.shutdown(reason)
    for _, l in ipairs(replay.listeners) do l.closed = true end
    for _, c in ipairs(replay.result.conns) do
      if replay.open[c.conn] then replay:close_conn(c.conn, reason or "shutdown") end
    end
  end

  function v.handle_signals() return true end

  return v
end

-- Server script: accept each recorded connection at its recorded start.
function R:serve(srv)
  local first
  for _, rec in ipairs(self.recorded) do
    if not first or rec.start < first then first = rec.start end
  end
  for _, rec in ipairs(self.recorded) do
    local t0 = rec.start - first
    for _, ch in ipairs(rec.chunks) do
      if t0 + ch.t > self.input_end then self.input_end = t0 + ch.t end
    end
    if rec.finish and t0 + rec.finish - rec.start > self.input_end then
      self.input_end = t0 + rec.finish - rec.start
    end
    self:at(t0, function()
      if srv.closed then return end
      local conn, st = self:new_conn("server", srv.handlers, rec.client)
      st.rec.recorded = rec.id
      local h = srv.handlers.on_open
      if h then self:call(conn, "on_open", h, conn) end
      self:drain(conn)
      self:feed_recorded(conn, rec, "c2s", t0)
    end)
  end
end

-- Client script: the n-th connect gets the n-th recorded connection.
function R:connect(url, opts)
  local parsed, err = rtmp.parse_url(url)
  if not parsed then return nil, err end
  rtmp.session(self:settings("client", opts)):close()  -- bad settings raise here
  self.nconnect = self.nconnect + 1
  local rec = self.recorded[self.nconnect]
  local fields = { url = url, app = parsed.app, path = parsed.path, tc_url = parsed.tc_url }
  local conn, st = self:new_conn("client", opts, parsed.host .. ":" .. parsed.port, fields)
  self:drain(conn)  -- C0C1
  if rec then
    st.rec.recorded = rec.id
    self:feed_recorded(conn, rec, "s2c", self.now)
  else
    self:close_conn(conn, "connect: no recorded connection")
  end
  return conn
end

---------------------------------------------------------------------------
-- Running a script
---------------------------------------------------------------------------

-- The recorded connections: from a capture path, a capture object or a
-- list of connections.
local function recorded_conns(capture)
  if type(capture) == "string" then
    local cap, err = require("rtmp.capture").open(capture)
    if not cap then return nil, err end
    return cap.conns
  end
  if type(capture) == "table" and capture.conns then return capture.conns end
  if type(capture) == "table" then return capture end
  return nil, "capture path or connections expected"
end

-- Standard libraries that stay in package.loaded while the script runs.
local KEEP = { _G = true, coroutine = true, debug = true, io = true, math = true, os = true,
               package = true, string = true, table = true, utf8 = true }

--- replay.run(opts) -> result | nil, err.  opts:
---   capture     path of a capture file, a capture (rtmp.capture.open), or its conns
---   script      path of the script; args = { ... } its arguments
---   connection  use only this recorded connection (its id)
---   seed        handshake_seed of every connection [replay.default_seed]
---   limit       stop the virtual clock this many seconds after the last
---               recorded byte [120: past the default idle timeout]
---   keep_open   do not close a connection when its recording ends
---   fast        feed each recorded read whole instead of a byte at a time
---               (see R:input: faster, handlers see a read's messages
---               only after all of it was decoded)
---   options     rtmp.options the script sees [{}]
---   quiet       do not log script errors (they are in result.errors) and
---               keep what the script writes to io.stderr in result.stderr [true]
--- result: conns = { { id, role, peer, recorded (capture conn id), output
--- (the bytes written: after os.exit, what the last loop iteration queued
--- is not), unwritten (those bytes' count, or nil), closed (reason or
--- nil), messages_in, messages_out }, ... },
--- trace (lines), errors, stderr, exit (os.exit code or nil), time (the
--- virtual clock at the end), timed_out (true: stopped by the limit;
--- "runaway": a million events at one virtual instant).
function _M.run(opts)
  assert(type(opts) == "table", "replay.run: options table expected")
  assert(type(opts.script) == "string", "replay.run: script path expected")
  local recorded, rerr = recorded_conns(opts.capture)
  if not recorded then return nil, rerr end
  local list = {}
  for _, rec in ipairs(recorded) do
    if (not opts.connection or rec.id == opts.connection) and rec.rtmp ~= false then
      list[#list + 1] = rec
    end
  end
  if opts.connection and #list == 0 then
    return nil, fmt("no RTMP connection %s in the capture", tostring(opts.connection))
  end
  local chunk, lerr = loadfile(opts.script)
  if not chunk then return nil, lerr end

  local self = setmetatable({
    queue = {}, seq = 0, now = 0, stopped = false, grace = opts.limit or 120, input_end = 0, started_at = 0,
    recorded = list, listeners = {}, open = {}, nconns = 0, nconnect = 0,
    by_session = setmetatable({}, { __mode = "k" }),  -- session -> its virtual connection
    seed = opts.seed or _M.default_seed, keep_open = opts.keep_open, fast = opts.fast,
    options = opts.options or {}, quiet = opts.quiet ~= false, errors = {},
    EXIT = "rtmp.replay: os.exit",
    result = { conns = {}, trace = {} },
  }, R)
  local server = list[1] and list[1].server
  self.server_port = server and tonumber(server:match(":(%d+)$")) or 1935
  local vrtmp = self:module()

  -- swap in the virtual module, a fresh copy of every Lua module, arg, os.exit
  local loaded = package.loaded
  local saved = {}
  for k, v in pairs(loaded) do saved[k] = v end
  for k in pairs(saved) do
    if not KEEP[k] then loaded[k] = nil end
  end
  loaded.rtmp = vrtmp
  local reg = debug.getregistry()
  local saved_main, saved_arg, saved_exit = reg["rtmp.main"], arg, os.exit
  local saved_level = rtmp.log.level()
  if self.quiet then rtmp.log.level("error") end
  -- what the script writes to io.stderr goes to result.stderr when quiet
  local saved_stderr = io.stderr
  local errtext = {}
  if self.quiet then
    local fake = {}
    function fake.write(f, ...)
      for _, v in ipairs({ ... }) do errtext[#errtext + 1] = tostring(v) end
      return f
    end
    function fake.flush() return true end
    function fake.setvbuf() return true end
    function fake.close() return true end
    io.stderr = fake
  end

  local function restore()
    for k in pairs(loaded) do
      if not KEEP[k] then loaded[k] = nil end
    end
    for k, v in pairs(saved) do loaded[k] = v end
    reg["rtmp.main"], arg, os.exit = saved_main, saved_arg, saved_exit
    rtmp.log.level(saved_level)
    io.stderr = saved_stderr
  end

  local ok, err = pcall(function()
    self.client = require "rtmp.client"
    local script_args = opts.args or {}
    local a = { [0] = opts.script }
    for i, v in ipairs(script_args) do a[i] = v end
    arg = a
    os.exit = function(code)
      if self.exit == nil then
        self.exit = code == nil and 0 or (code == true and 0) or (code == false and 1) or code
      end
      self.stopped = true
      self.exiting = true
      if coroutine.isyieldable() then
        while true do coroutine.yield() end
      end
      error(self.EXIT, 0)
    end
    local co = coroutine.create(chunk)
    reg["rtmp.main"] = co
    local rok, rerr2 = coroutine.resume(co, unpack(script_args))
    if not rok and not (self.exiting and tostring(rerr2):find(self.EXIT, 1, true)) then
      self:log_error("script: %s", debug.traceback(co, tostring(rerr2)))
      self.result.script_error = tostring(rerr2)
    end
    self:drain_all()
    self.started_at = self.now
    self:loop()
    -- a script left waiting (or parked by os.exit) ends here: nothing may
    -- resume it later, nor see it suspended (client/cli.lua's interrupt
    -- sentinel runs its handler, which exits, when the main coroutine is)
    if coroutine.status(co) == "suspended" then coroutine.close(co) end
    if self.exiting then self:drop_unwritten() end
  end)
  restore()
  if not ok then return nil, "replay: " .. tostring(err) end

  local res = self.result
  for _, c in ipairs(res.conns) do
    c.output = concat(c.out)
    c.out, c.conn = nil, nil
  end
  res.errors = self.errors
  res.stderr = concat(errtext)
  res.exit = self.exit
  res.time = self.now
  res.timed_out = self.timed_out
  return res
end

--- replay.summary(result) -> text: one line per connection, with the
--- sha256 of its output.
function _M.summary(res)
  local lines = {}
  for _, c in ipairs(res.conns) do
    lines[#lines + 1] = fmt("conn=%d role=%s recorded=%s peer=%s bytes=%d in=%d out=%d sha256=%s closed=%s%s",
      c.id, c.role, tostring(c.recorded), c.peer, #c.output, c.messages_in, c.messages_out,
      _M.sha256(c.output), c.closed and fmt("%q", c.closed) or "no",
      c.unwritten and fmt(" unwritten=%d", c.unwritten) or "")
  end
  return concat(lines, "\n")
end

return _M
