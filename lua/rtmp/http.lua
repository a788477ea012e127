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
local await = require "rtmp.await"

local http = core.http
local start, call = http.start, await.call
local type, error = type, error

local WAITS = "rtmp.http.request waits for the response"

function http.request(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'request' (table expected, got " .. type(t) .. ")", 2)
  end
  local res, err, code = call(WAITS, function(done) return start(t, done) end)
  return res, err, code -- not a tail call: await.call's errors name request's caller
end

return http
