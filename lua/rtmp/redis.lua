-- rtmp.redis: Redis commands that wait in the calling coroutine, on the
-- loop (hiredis's async API, core/net_redis.c; the binding lua/l_redis.c).
--
--   local r = assert(rtmp.redis.connect("redis://127.0.0.1:6379/0", { name = "cluster" }))
--   r:on_connect(function(r) ... end)            -- in its own coroutine, on every (re)connection
--   local ok, err, code = r:command("SET", "k", "v", "EX", 10)   -- "OK"
--   local v = r:command("GET", "missing")        -- rtmp.redis.null
--   local n, err, code = r:command("INCR", "k")  -- nil, "ERR value is not an integer ...", "REDIS"
--
-- rtmp.redis.connect(url [, opts]) -> client | nil, err returns at once;
-- the client connects in the background and again, with backoff, whenever
-- the connection goes.  r:command(...) -> reply | nil, err, code yields
-- until the reply: code "REDIS" for Redis's error reply ("ERR ..."), else
-- the core's error name as rtmp.http.request gives it: "IO" for "not
-- connected: ..." (at once while there is no connection, or the
-- connection lost before the reply), "TIMEOUT", "CLOSED".  A
-- coroutine closed while it waits drops its reply (rtmp.await).  Outside
-- a coroutine r:command raises.  docs/REDIS.md.
local core = require "rtmp.core"
local client = require "rtmp.client"
local await = require "rtmp.await"

local redis = core.redis
local methods = redis.client -- the clients' method table (l_redis.c)
local new, send, connected = redis.new, methods.send, methods.connected
local spawn, call = client.spawn, await.call
local pack, unpack = table.pack, table.unpack
local type, pcall, error = type, pcall, error

local WAITS = "rtmp.redis: r:command waits for the reply"

-- client -> its on_connect functions
local handlers = setmetatable({}, { __mode = "k" })

-- The binding's news of the connection: up runs every on_connect function.
local function on_state(r, up)
  if not up then return end
  local list = handlers[r]
  if not list then return end
  for i = 1, #list do spawn(list[i], r) end
end

--- rtmp.redis.connect(url [, opts]) -> client | nil, err
--- url: redis://[[user]:password@]host[:port][/db] or unix:/path.
--- opts: connect_timeout, command_timeout, retry_min, retry_max,
--- retry_factor (seconds; core/net_redis.h has the defaults), name (logs).
function redis.connect(url, opts)
  if type(url) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got " .. type(url) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'connect' (table expected, got " .. type(opts) .. ")", 2)
  end
  local ok, r, err = pcall(new, url, opts, on_state)
  if not ok then error(r, 2) end
  return r, err
end

--- r:command(name, arg...) -> reply | nil, err, code (inside a coroutine;
--- a coroutine closed while it waits drops the reply)
function methods:command(...)
  local args = pack(...)
  local v, err, code = call(WAITS, function(done) return send(self, done, unpack(args, 1, args.n)) end)
  return v, err, code -- not a tail call: await.call's errors name command's caller
end

--- r:on_connect(fn) -> r: fn(r) runs in its own coroutine each time the
--- connection is made (again), and at once when it is up already.
function methods:on_connect(fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'on_connect' (function expected, got " .. type(fn) .. ")", 2)
  end
  local list = handlers[self]
  if not list then
    list = {}
    handlers[self] = list
  end
  list[#list + 1] = fn
  if connected(self) then spawn(fn, self) end
  return self
end

return redis
