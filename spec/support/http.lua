-- The HTTP peer of the specs: spec/support/http_server.py started on a
-- port the test picks, every request it got readable as Lua tables.
--
--   local HS = require "support.http"
--   local web = HS.start{ key = "s3cret", redirect = { name = "rtmp://..." }, tls = true }
--   web.url("/echo")        -- "http://127.0.0.1:PORT/echo" (https:// with tls)
--   web.requests()          -- { { method, path, query, headers, body, fields = { {k, v}, ... } }, ... }
local H = require "support.helpers"
local json = require "dkjson"

local HS = {}
local fmt, q = string.format, H.shquote

--- Start the server; opts: key (what the backend wants as the stream's
--- `key` argument), redirect ({ name = Location }), refuse_update (a name
--- prefix whose updates are refused), tls (true: HTTPS with the test
--- certificate of support.tls).
function HS.start(opts)
  opts = opts or {}
  local port = H.free_port()
  local log = H.tmpname("http-requests") .. ".jsonl"
  H.write_file(log, "")
  local args = { "python3", "spec/support/http_server.py", tostring(port), q(log) }
  if opts.key then args[#args + 1] = "--key " .. q(opts.key) end
  for name, loc in pairs(opts.redirect or {}) do args[#args + 1] = "--redirect " .. q(name .. "=" .. loc) end
  if opts.refuse_update then args[#args + 1] = "--refuse-update " .. q(opts.refuse_update) end
  if opts.tls then
    local c = require("support.tls").certs()
    args[#args + 1] = fmt("--tls %s %s", q(c.cert), q(c.key))
  end
  local proc = H.spawn(table.concat(args, " "), { name = "http-server" })
  local ok, why = H.wait_port(port, 10, proc)
  assert(ok, why)
  local web = { port = port, proc = proc, log = log }
  local scheme = opts.tls and "https" or "http"
  function web.url(path, host) return fmt("%s://%s:%d%s", scheme, host or "127.0.0.1", port, path or "/") end
  function web.requests()
    local list = {}
    for line in (H.read_file(log) or ""):gmatch("[^\n]+") do list[#list + 1] = json.decode(line) end
    return list
  end
  return web
end

--- The fields of a recorded form request as { name = value } (the last
--- value of a repeated name) and as the list of names in order.
function HS.fields(req)
  local map, names = {}, {}
  for _, pair in ipairs(req.fields or {}) do
    map[pair[1]] = pair[2]
    names[#names + 1] = pair[1]
  end
  return map, names
end

return HS
