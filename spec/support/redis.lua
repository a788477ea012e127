-- A real redis-server for a spec, on a free 127.0.0.1 port, with nothing
-- saved to disk (--save "" --appendonly no) and its own directory in the
-- run directory; stopped by H.cleanup() (after_each) like every process
-- the specs start, or by srv:stop().
--
--   local R = require "support.redis"
--   local srv = R.start()                  -- waits until it listens
--   srv.url                                 -- "redis://127.0.0.1:PORT"
--   srv:cli("GET", "k")                     -- redis-cli's answer, trimmed ("" for a nil)
--   srv:kill()                              -- SIGKILL, waits for the end
--   srv:restart()                           -- a fresh server on the same port
--   C.run(function() return r:command("GET", "k") end)   -- support.client: in a coroutine on the loop
--
-- R.start{ port = P, password = "pw", debug = true, unixsocket = true }:
-- a given port, a password (requirepass), DEBUG allowed from loopback
-- (Redis 7 refuses it by default), a Unix socket too (srv.socket, its
-- absolute path).
local H = require "support.helpers"

local fmt, q = string.format, H.shquote

local R = {}
R.__index = R


local function launch(self)
  local args = {
    "redis-server", "--save", q(""), "--appendonly", "no", "--port", self.port,
    "--bind", "127.0.0.1", "--dir", q(self.dir), "--daemonize", "no",
  }
  if self.password then args[#args + 1] = "--requirepass " .. q(self.password) end
  if self.debug then args[#args + 1] = "--enable-debug-command local" end
  if self.socket then args[#args + 1] = "--unixsocket " .. q(self.socket) .. " --unixsocketperm 700" end
  self.proc = H.spawn(table.concat(args, " "), { name = "redis-server" })
  local ok, err = H.wait_port(self.port, 10, self.proc)
  assert(ok, err)
end

--- Start a server; returns it once it accepts connections.
function R.start(opts)
  opts = opts or {}
  local self = setmetatable({
    port = opts.port or H.free_port(),
    password = opts.password,
    debug = opts.debug,
  }, R)
  self.dir = H.mkdir(H.tmpname("redis"))
  if opts.unixsocket then -- an absolute path: unix:/path
    self.socket = H.abspath(self.dir) .. "/redis.sock"
  end
  self.url = fmt("redis://%s127.0.0.1:%d", self.password and (":" .. self.password .. "@") or "", self.port)
  launch(self)
  return self
end

--- redis-cli's answer to one command (raw output, trailing newline cut).
function R:cli(...)
  local args = {}
  for i = 1, select("#", ...) do args[i] = q(tostring(select(i, ...))) end
  local auth = self.password and ("-a " .. q(self.password) .. " --no-auth-warning ") or ""
  local code, out = H.run(fmt("redis-cli -h 127.0.0.1 -p %d %s--raw %s", self.port, auth, table.concat(args, " ")), 10)
  assert(code == 0, "redis-cli failed: " .. out)
  return (out:gsub("\n$", ""))
end

--- SIGSTOP / SIGCONT: the server alive (its port accepts) but silent.
function R:pause() H.signal(self.proc, "STOP") end
function R:resume() H.signal(self.proc, "CONT") end

--- SIGKILL the server and wait until it is gone (and its port free).
function R:kill()
  H.signal(self.proc, "KILL")
  H.wait_exit(self.proc, 10)
  assert(H.wait_until(function() return not H.port_listening(self.port) end, 10), "port still listening")
end

--- Stop it (SIGTERM, then SIGKILL).
function R:stop()
  H.kill(self.proc, 3)
end

--- A new server on the same port (and directory), after kill or stop.
function R:restart()
  launch(self)
end

return R
