-- rtmp.http: outgoing HTTP(S) requests that wait in the calling coroutine.
--
--   local res, err = rtmp.http.request{ url = "http://auth.local/check", method = "POST",
--     headers = { ["Content-Type"] = "application/json" }, body = "{}", timeout = 2 }
--   if not res then return false, err end          -- "timeout: ...", "connection refused: ..."
--   if res.status ~= 200 then return false, res.body end
--
-- rtmp.http.request(t) -> { status, reason, headers, body } | nil, err, code
-- takes rtmp.http.start's fields (lua/l_http.c: url, method, headers, body,
-- timeout, max_body, redirects, tls = { ca, insecure }) and yields until
-- the response, a failure or the timeout; the loop runs meanwhile.  A
-- coroutine closed while it waits (coroutine.close: rtmp.app does so to a
-- hook whose connection closed, or that ran past hook_timeout) cancels
-- its request.  Outside a coroutine it raises.  docs/HTTP.md.
local core = require "rtmp.core"
local client = require "rtmp.client"

local http = core.http
local start, resume = http.start, client.resume
local running, yield, isyieldable = coroutine.running, coroutine.yield, coroutine.isyieldable
local type, pcall, error = type, pcall, error

function http.request(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'request' (table expected, got " .. type(t) .. ")", 2)
  end
  local co, main = running()
  if main or not isyieldable() then
    error("rtmp.http.request waits for the response and must run inside a coroutine "
          .. "(the luartmp main script, rtmp.spawn, an rtmp.app event)", 2)
  end
  local done, res, err, code
  local ok, req, err0, code0 = pcall(start, t, function(r, e, c)
    done, res, err, code = true, r, e, c
    resume(co)
  end)
  if not ok then error(req, 2) end
  if not req then return nil, err0, code0 end
  local _ <close> = req -- a coroutine closed while it waits cancels the request
  while not done do yield() end
  if res then return res end
  return nil, err, code
end

return http
