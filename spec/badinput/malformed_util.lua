-- Support for spec/badinput/malformed_spec.lua: raw bytes to a live
-- luartmp server, and what the server's log says about them.
--
-- Two ways to reach the server:
--   - M.bash(port, steps): a bash /dev/tcp connection driven step by step
--     (send, send byte by byte, read S0+S1 and answer with C2, pause), for
--     the bytes before and during the handshake;
--   - M.open(port): an in-process connection (rtmp.connect: our client
--     handshake), then exact bytes with conn:raw and real commands, read
--     back as decoded messages, for everything after the handshake.
-- Either way M knows our local port, which is how the connection is found
-- in the server's log ("conn=ID peer=127.0.0.1:LPORT ...").
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local M = {}
local fmt = string.format
local q = H.shquote

---------------------------------------------------------------------------
-- Bytes
---------------------------------------------------------------------------

--- The basic header of a chunk: fmt and csid in the shortest form
--- (csid 2..63 one byte, 64..319 two, 320..65599 three).
function M.basic(f, csid)
  if csid < 64 then return string.char((f << 6) | csid) end
  if csid < 320 then return string.char(f << 6, csid - 64) end
  return string.char((f << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8)
end

--- One chunk. h: fmt (0-3), csid, ts (timestamp or delta; 0xFFFFFF and
--- above are written extended), len, type, stream (message stream id),
--- ext (true: put 4 extended-timestamp bytes, value h.ext_value or ts,
--- after a fmt 3 header too). body: the chunk's payload bytes.
function M.chunk(h, body)
  local f = h.fmt or 0
  local t = { M.basic(f, h.csid) }
  local ts = h.ts or 0
  local extended = ts >= 0xFFFFFF
  if f <= 2 then t[#t + 1] = string.pack(">I3", extended and 0xFFFFFF or ts) end
  if f <= 1 then t[#t + 1] = string.pack(">I3 B", h.len or #(body or ""), h.type or 20) end
  if f == 0 then t[#t + 1] = string.pack("<I4", h.stream or 0) end
  if extended or h.ext then t[#t + 1] = string.pack(">I4", h.ext_value or ts) end
  t[#t + 1] = body or ""
  return table.concat(t)
end

--- A whole message chunked at `size` (default 128) on csid, fmt 0 first,
--- fmt 3 continuations (with the extended timestamp repeated when the
--- first header had one, as the spec says).
function M.message(csid, mtype, stream, ts, payload, size)
  size = size or 128
  local t = { M.chunk({ fmt = 0, csid = csid, ts = ts, len = #payload, type = mtype, stream = stream },
    payload:sub(1, size)) }
  local at = size + 1
  while at <= #payload do
    t[#t + 1] = M.chunk({ fmt = 3, csid = csid, ext = ts >= 0xFFFFFF, ext_value = ts },
      payload:sub(at, at + size - 1))
    at = at + size
  end
  return table.concat(t)
end

--- A control message (csid 2, stream 0) with the given body.
function M.control(mtype, body)
  return M.chunk({ fmt = 0, csid = 2, len = #body, type = mtype }, body)
end

--- An AMF0 command whose body is the AMF0 bytes `body`, chunked at `size`
--- (default 128), on csid 10: not csid 3, where our own writer sends its
--- commands with headers compressed against what it sent before.
function M.command(body, size)
  return M.message(10, 20, 0, 0, body, size)
end

--- AMF0 bytes of an object with the given { {key, amf0 bytes}, ... }.
function M.amf0_object(pairs_)
  local t = { "\3" }
  for _, kv in ipairs(pairs_) do t[#t + 1] = string.pack(">s2", kv[1]) .. kv[2] end
  t[#t + 1] = "\0\0\9"
  return table.concat(t)
end

--- AMF0 string value.
function M.amf0_string(s) return string.pack(">B s2", 2, s) end

--- The AMF0 body of a connect to `app` (built here byte by byte,
--- independent of the code under test), and the offsets at which its
--- values end: a prefix ending there is a complete run of values.
function M.connect_body(app, port)
  local name = H.amf0("connect")
  local txn = H.amf0(1)
  local obj = M.amf0_object{
    { "app", M.amf0_string(app) },
    { "type", M.amf0_string("nonprivate") },
    { "flashVer", M.amf0_string("LNX 9,0,124,2") },
    { "tcUrl", M.amf0_string(fmt("rtmp://127.0.0.1:%d/%s", port or 1935, app)) },
    { "fpad", H.amf0(false) },
    { "capabilities", H.amf0(15) },
  }
  local body = name .. txn .. obj
  return body, { [#name] = true, [#name + #txn] = true, [#body] = true }
end

--- The AMF0 body of a connect whose command object (level 1) nests
--- objects `levels` deep, each closed, with app `app` (32 levels is the
--- server's limit, max_amf_depth).
function M.nested_connect(levels, app)
  local inner = "\5"
  for _ = 2, levels do inner = "\3" .. string.pack(">s2", "a") .. inner .. "\0\0\9" end
  local obj = "\3" .. string.pack(">s2", "app") .. M.amf0_string(app) ..
    string.pack(">s2", "deep") .. inner .. "\0\0\9"
  return H.amf0("connect", 1) .. obj
end

--- The AMF0 bodies of connects (transaction id `txn`, default 1) of
--- 100,000 levels of objects (about 400 KB) and of strict arrays (about
--- 500 KB), never closed.
function M.deep_connects(txn)
  local head = H.amf0("connect", txn or 1)
  return head .. ("\3\0\1a"):rep(100000), head .. ("\10\0\0\0\1"):rep(100000)
end

---------------------------------------------------------------------------
-- Our local ports (how the server's log names our connections)
---------------------------------------------------------------------------

local my_pid
local function pid()
  if not my_pid then my_pid = (H.read_file("/proc/self/stat") or ""):match("^(%d+)") end
  return my_pid
end

--- Local ports of this process's TCP connections to 127.0.0.1:`port`, as
--- a set.
function M.my_ports(port)
  local inodes = {}
  local p = io.popen("ls -l /proc/" .. pid() .. "/fd 2>/dev/null")
  for ino in p:read("a"):gmatch("socket:%[(%d+)%]") do inodes[ino] = true end
  p:close()
  local ports = {}
  for line in (H.read_file("/proc/net/tcp") or ""):gmatch("[^\n]+") do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    if #f >= 10 and inodes[f[10]] then
      local rport = tonumber((f[3] or ""):match(":(%x+)$") or "", 16)
      local lport = tonumber((f[2] or ""):match(":(%x+)$") or "", 16)
      if rport == port and lport then ports[lport] = true end
    end
  end
  return ports
end

---------------------------------------------------------------------------
-- In-process connections
---------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

--- Connect to the server on `port` (our client handshake), wait for the
--- handshake to complete. Returns a handle: conn (the rtmp connection),
--- msgs (messages received), closed (reason, once closed), lport.
--- opts: app (for the URL; default "live"), timeout.
function M.open(port, opts)
  opts = opts or {}
  local before = M.my_ports(port)
  local self = setmetatable({ msgs = {}, closed = false, port = port }, Conn)
  local conn, err = rtmp.connect(fmt("rtmp://127.0.0.1:%d/%s", port, opts.app or "live"), {
    on_handshake = function() self.ready = true end,
    on_message = function(_, msg) self.msgs[#self.msgs + 1] = msg end,
    on_close = function(_, reason) self.closed = reason end,
  })
  assert(conn, err)
  self.conn = conn
  assert(C.wait_until(function() return self.ready or self.closed end, opts.timeout or 5),
    "handshake did not complete")
  assert(self.ready, "closed during the handshake: " .. tostring(self.closed))
  for lp in pairs(M.my_ports(port)) do
    if not before[lp] then self.lport = lp end
  end
  assert(self.lport, "could not find our local port")
  self.peer = "127.0.0.1:" .. self.lport
  return self
end

--- Open `n` connections at once (our client handshake); returns the
--- handles (no lport each) and the set of their local ports.
function M.open_many(port, n)
  local before = M.my_ports(port)
  local list = {}
  for i = 1, n do
    local self = setmetatable({ msgs = {}, closed = false, port = port }, Conn)
    self.conn = assert(rtmp.connect(fmt("rtmp://127.0.0.1:%d/live", port), {
      on_handshake = function() self.ready = true end,
      on_message = function(_, msg) self.msgs[#self.msgs + 1] = msg end,
      on_close = function(_, reason) self.closed = reason end,
    }))
    list[i] = self
  end
  assert(C.wait_until(function()
    for _, c in ipairs(list) do if not (c.ready or c.closed) then return false end end
    return true
  end, 20), "handshakes did not complete")
  local ports = {}
  for lp in pairs(M.my_ports(port)) do
    if not before[lp] then ports[#ports + 1] = lp end
  end
  return list, ports
end

--- Send exact bytes.
function Conn:raw(bytes)
  assert(self.conn:raw(bytes))
end

--- Send connect (through our writer: real chunking) and wait for the
--- answer; returns the _result or _error message, or nil.
function Conn:connect(app, timeout)
  self.conn:command(nil, "connect", 1, { app = app or "live", tcUrl = "rtmp://127.0.0.1/" .. (app or "live"),
    flashVer = "LNX 9,0,124,2", capabilities = 15 })
  return self:wait(function()
    return self:find{ name = "_result", txn = 1 } or self:find{ name = "_error", txn = 1 }
  end, timeout)
end

--- A command with transaction id txn, through our writer.
function Conn:call(name, txn, ...)
  assert(self.conn:command(nil, name, txn, ...))
end

--- Run the loop until fn() is truthy or the connection closed (then nil)
--- or `timeout` (default 5) seconds pass.
function Conn:wait(fn, timeout)
  local v = C.wait_until(function() return fn() or self.closed end, timeout or 5)
  if v == self.closed and not fn() then return nil end
  return v
end

--- Wait until the server closed the connection; returns true if it did.
function Conn:wait_closed(timeout)
  return C.wait_until(function() return self.closed end, timeout or 5) and true or false
end

Conn.find = C.find

--- Run a round trip: call a command the live server answers (createStream
--- before connect gets _error; releaseStream gets _result) and wait for
--- its answer. Returns the answer (the connection still reads in step),
--- or nil.
function Conn:ping(txn, timeout)
  txn = txn or 900
  self:call("releaseStream", txn, rtmp.null, "nothing")
  return self:wait(function()
    return self:find{ name = "_result", txn = txn } or self:find{ name = "_error", txn = txn }
  end, timeout)
end

function Conn:close()
  if not self.conn.closed then self.conn:close("test done") end
  C.wait_until(function() return self.closed end, 2)
end

---------------------------------------------------------------------------
-- bash /dev/tcp connections, step by step
---------------------------------------------------------------------------

--- Connect to 127.0.0.1:`port` with bash, in the background, and run
--- `steps` in order:
---   { send = bytes }               write them at once
---   { trickle = bytes, gap = s }   one write(2) per byte, `gap` s apart
---   { s0s1 = true }                read S0+S1 (1537 bytes)
---   { c2 = true }                  send C2 = the S1 read before
---   { c2 = "trickle" }             the same, one write(2) per byte
---   { s2 = true }                  read S2 (1536 bytes)
---   { sleep = s }
--- then read what the server sends until it closes or `wait` s pass (our
--- side stays open and silent meanwhile). Returns a handle for M.finish.
function M.bash_start(port, steps, wait)
  wait = wait or 3
  local base = H.tmpname("mraw")
  local lines = {
    "trap '' PIPE", -- a write to a closed socket fails (EPIPE) instead of killing bash
    fmt("exec 3<>/dev/tcp/127.0.0.1/%d || exit 99", port),
    "ino=$(readlink /proc/$$/fd/3); ino=${ino#socket:[}; ino=${ino%]}",
    [[echo "lport=$(awk -v i="$ino" '$10 == i { split($2, a, ":"); print a[2] }' /proc/net/tcp)"]],
  }
  for i, st in ipairs(steps) do
    local f = fmt("%s.%d", base, i)
    if st.send then
      H.write_file(f, st.send)
      lines[#lines + 1] = fmt("cat %s >&3 2>/dev/null", q(f))
    elseif st.trickle then
      H.write_file(f, st.trickle)
      -- each byte as \ooo for printf (a shell variable cannot hold NUL)
      lines[#lines + 1] = fmt([[for b in $(od -An -v -to1 %s); do printf "\\$b" >&3 2>/dev/null || break; %s done]],
        q(f), (st.gap and st.gap > 0) and fmt("sleep %s;", st.gap) or "")
    elseif st.s0s1 then
      lines[#lines + 1] = fmt([[head -c 1537 <&3 >%s.s0s1; [ "$(wc -c <%s.s0s1)" -eq 1537 ] || echo "short=%d"]],
        q(base), q(base), i)
    elseif st.c2 == "trickle" then
      lines[#lines + 1] = fmt([[for b in $(tail -c 1536 %s.s0s1 | od -An -v -to1); do printf "\\$b" >&3 2>/dev/null || break; done]],
        q(base))
    elseif st.c2 then
      lines[#lines + 1] = fmt("tail -c 1536 %s.s0s1 >&3", q(base))
    elseif st.s2 then
      lines[#lines + 1] = fmt([[head -c 1536 <&3 >%s.s2; [ "$(wc -c <%s.s2)" -eq 1536 ] || echo "short=%d"]],
        q(base), q(base), i)
    elseif st.sleep then
      lines[#lines + 1] = fmt("sleep %s", st.sleep)
    end
  end
  lines[#lines + 1] = "echo steps=done"
  lines[#lines + 1] = fmt("timeout %s cat <&3 >%s.out; echo \"rc=$?\"", wait, q(base))
  H.write_file(base .. ".sh", table.concat(lines, "\n") .. "\n")
  local proc = H.spawn("bash " .. q(base .. ".sh"), { name = "mraw-bash" })
  return { proc = proc, base = base, wait = wait, t0 = H.now() }
end

--- Wait for a M.bash_start connection to end. Returns { lport, closed
--- (the server closed within the time), elapsed (s from the start),
--- received (bytes after the steps), steps_ok (every read step got its
--- bytes), out }.
function M.finish(h)
  local rc = H.wait_exit(h.proc, h.wait + 60)
  local elapsed = H.now() - h.t0
  local out = H.read_file(h.proc.out) or ""
  local lport = out:match("lport=(%x+)")
  return {
    rc = rc, out = out, elapsed = elapsed,
    connected = rc ~= 99,
    closed = tonumber(out:match("rc=(%d+)")) == 0,
    steps_ok = out:find("steps=done", 1, true) ~= nil and not out:find("short=", 1, true),
    lport = lport and tonumber(lport, 16),
    received = H.read_file(h.base .. ".out") or "",
  }
end

--- M.bash_start then M.finish.
function M.bash(port, steps, wait)
  return M.finish(M.bash_start(port, steps, wait))
end

---------------------------------------------------------------------------
-- The server
---------------------------------------------------------------------------

--- Start `$LUARTMP --listen 127.0.0.1:PORT --log-level debug
--- --handshake-timeout S scripts/live.lua` as H.luartmp_start does, with
--- the environment `env` (a string of NAME=value words) in front. Returns
--- the same server object (port, proc, url, log, count, stop).
function M.server_start(handshake_timeout, env)
  return H.luartmp_start{ handshake_timeout = handshake_timeout, env = env }
end

---------------------------------------------------------------------------
-- The server's log
---------------------------------------------------------------------------

-- The id of the newest connection from 127.0.0.1:`lport` in `log` (local
-- ports are reused over a run: the last "accepted" line is ours).
local function conn_id(log, lport)
  local peer = " peer=127.0.0.1:" .. lport .. " accepted"
  local id
  for line in log:gmatch("[^\n]+") do
    if line:sub(-#peer) == peer then id = line:match(" conn=(%d+) ") end
  end
  return id
end

--- The log lines of the newest connection from 127.0.0.1:`lport` (the
--- part after "peer=... "), and its conn id.
function M.lines(srv, lport)
  local log = srv.log()
  local id = conn_id(log, lport)
  local list = {}
  if not id then return list end
  for line in log:gmatch("[^\n]+") do
    local cid, rest = line:match(" conn=(%d+) peer=%S+ (.*)$")
    if cid == id then list[#list + 1] = rest end
  end
  return list, id
end

--- The close line of that connection: its reason (without the byte
--- counts) and level, waiting up to `timeout` s for it; nil if none.
function M.close_reason(srv, lport, timeout)
  return C.wait_until(function()
    local log = srv.log()
    local id = conn_id(log, lport)
    if not id then return nil end
    for line in log:gmatch("[^\n]+") do
      local level, cid, reason = line:match(" (%a+) conn=(%d+) peer=%S+ close: (.-) %(in %d+ bytes, out %d+ bytes%)$")
      if cid == id then return { reason = reason, level = level, id = id } end
    end
  end, timeout or 5)
end

--- How many of that connection's log lines contain `text`.
function M.count(srv, lport, text)
  local n = 0
  for _, l in ipairs(M.lines(srv, lport)) do
    if l:find(text, 1, true) then n = n + 1 end
  end
  return n
end

--- Stop the server (SIGTERM) and check how it ended: exit status 0, and
--- no sanitizer report (an ASan/UBSan build, LeakSanitizer's at exit
--- included) and no script error in its log. Returns the log.
function M.stop_clean(srv)
  local rc, log = srv.stop()
  assert(rc == 0, "luartmp exit status after SIGTERM: " .. tostring(rc) .. "; log:\n" .. log)
  assert(not log:find("Sanitizer", 1, true), "sanitizer report in the server's log:\n" .. log)
  assert(not log:find("runtime error:", 1, true), "UBSan report in the server's log:\n" .. log)
  assert(not log:find("script error", 1, true), "a script error in the server's log:\n" .. log)
  return log
end

--- The server's resident set size in KiB (VmRSS).
function M.rss_kib(proc)
  local s = H.read_file("/proc/" .. proc.pid .. "/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

return M
