-- rtmp.await: an operation with a callback (the binding's forms:
-- rtmp.http.start, r:send), waited for in the calling coroutine.
--
--   local await = require "rtmp.await"
--   return await.call("r:command waits for the reply", function(done)
--     return send(self, done, ...)       -- a handle, or nil, err, code at once
--   end)
--
-- await.call(what, begin) -> what done(...) got.  begin(done) starts the
-- operation and returns a handle whose __close cancels it, or nil, err,
-- code when it failed at once (returned as they are, without waiting);
-- done(...) is called once, from the loop, with the outcome, and resumes
-- the coroutine.  A coroutine closed while it waits closes the handle
-- (rtmp.app closes a hook's coroutine when its connection closed or it
-- ran past hook_timeout).  Outside a coroutine, and when begin raises, it
-- raises at the level of whoever called the caller of await.call:
-- "<what> and must run inside a coroutine (...)".
local client = require "rtmp.client"

local _M = {}

local resume = client.resume
local running, yield, isyieldable = coroutine.running, coroutine.yield, coroutine.isyieldable
local pack, unpack = table.pack, table.unpack
local pcall, error = pcall, error

function _M.call(what, begin)
  local co, main = running()
  if main or not isyieldable() then
    error(what .. " and must run inside a coroutine "
          .. "(the luartmp main script, rtmp.spawn, an rtmp.app event)", 3)
  end
  local out
  local ok, handle, err, code = pcall(begin, function(...)
    out = pack(...)
    resume(co)
  end)
  if not ok then error(handle, 3) end
  if not handle then return nil, err, code end
  local _ <close> = handle
  while not out do yield() end
  return unpack(out, 1, out.n)
end

return _M
