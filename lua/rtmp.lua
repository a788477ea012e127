-- rtmp: the module scripts require.  Its C part is rtmp.core (lua/rtmp.c and
-- the binding, docs/ARCHITECTURE.md); this file adds what is written in Lua:
-- rtmp.spawn, rtmp.sleep and the coroutine form of rtmp.connect, from
-- rtmp.client (lua/rtmp/client.lua, loaded when first used).  C never loads a
-- Lua module: this file is where the two meet.  `require "rtmp"` and
-- `require "rtmp.core"` give the same table.
local core = require "rtmp.core"

if core.spawn then return core end -- loaded already (package.loaded was emptied)

local require, type, ipairs, error = require, type, ipairs, error

local connect = core.connect -- the callback form (l_conn.c)

-- The handlers that make rtmp.connect's second argument a callback table.
local HANDLERS = { "on_open", "on_handshake", "on_message", "on_close", "on_data" }

local function has_handlers(t)
  for _, name in ipairs(HANDLERS) do
    if type(t[name]) == "function" then return true end
  end
  return false
end

--- rtmp.connect(url, handlers) -> conn | nil, err.  With handler functions:
--- the callback form, handlers.on_handshake(conn) after the handshake, then
--- on_message for every message and on_close(conn, reason) at the end.
--- Without (no table, or settings only): rtmp.client.connect, the coroutine
--- API, which waits for the connect _result.
function core.connect(url, opts)
  if type(url) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got " .. type(url) .. ")", 2)
  end
  if opts == nil or (type(opts) == "table" and not has_handlers(opts)) then
    return require("rtmp.client").connect(url, opts)
  end
  return connect(url, opts)
end

--- rtmp.spawn(fn, ...) -> coroutine: run fn in a coroutine resumed by the loop.
function core.spawn(...) return require("rtmp.client").spawn(...) end

--- rtmp.sleep(seconds): wait without blocking the loop (inside a coroutine).
function core.sleep(...) return require("rtmp.client").sleep(...) end

--- rtmp.http.request{ url =, ... } -> response | nil, err, code: an HTTP(S)
--- request that waits in the calling coroutine (lua/rtmp/http.lua, which
--- replaces this stub when loaded).
function core.http.request(...) return require("rtmp.http").request(...) end

--- rtmp.redis.connect(url [, opts]) -> client | nil, err: a Redis client
--- whose r:command(...) waits in the calling coroutine (lua/rtmp/redis.lua,
--- which replaces this stub when loaded).
function core.redis.connect(...) return require("rtmp.redis").connect(...) end

--- rtmp.drain{ to =, timeout = }: stop accepting, ask the clients to
--- reconnect elsewhere, close the rest at the timeout (rtmp.drain,
--- lua/rtmp/drain.lua).
function core.drain(...) return require("rtmp.drain").drain(...) end

--- rtmp.reload() -> true | nil, err: the main script loaded again in this
--- process, connections and kept state untouched; rtmp.keep(name [, init])
--- -> the same table on every load (lua/rtmp/reload.lua, docs/RELOAD.md).
function core.reload(...) return require("rtmp.reload").reload(...) end
function core.keep(...) return require("rtmp.reload").keep(...) end

-- luartmp --drain-to: SIGTERM drains instead of shutting down
if core.options.drain_to then
  core.on_sigterm(function() return require("rtmp.drain").sigterm() end)
end

return core
