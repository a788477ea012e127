-- spec/support/nms.lua: node-media-server 4 (tools/node, npm: a second
-- RTMP implementation that reads Enhanced RTMP) as a peer of the specs.
--
--   local NMS = require "support.nms"
--   local srv = NMS.start()     -- { name, port, url(path), log(), stop() }, like H.nginx_start's
local H = require "support.helpers"

local q, fmt = H.shquote, string.format

local M = {}

M.APP = "tools/node/node_modules/node-media-server/bin/app.js"

--- Whether node and node-media-server are there (tools/deps.sh installs them).
function M.available()
  return H.file_size(M.APP) ~= nil and H.exec("command -v node >/dev/null 2>&1") == 0
end

--- Start node-media-server on 127.0.0.1 with a config of its own in a
--- fresh directory (it writes its generated secret back there): RTMP on a
--- free port, HTTP on another (it always listens), no web console, no
--- recording, no auth.  Waits for the RTMP port.
function M.start()
  assert(M.available(), "node-media-server is missing: run tools/deps.sh (" .. M.APP .. ")")
  local port, http = H.free_port(), H.free_port()
  while http == port do http = H.free_port() end
  local dir = H.mkdir(H.tmpname("nms"))
  local conf = dir .. "/config.json"
  H.write_file(conf, fmt([[
{ "bind": "127.0.0.1", "notify": { "url": "" },
  "store": { "path": "%s/data", "maxHistory": 100 },
  "auth": { "play": false, "publish": false, "secret": "" },
  "rtmp": { "port": %d }, "http": { "port": %d },
  "webadmin": { "enable": false }, "record": { "auto": false, "path": "%s/record" } }
]], dir, port, http, dir))
  local proc = H.spawn(fmt("node %s -c %s", q(M.APP), q(conf)), { name = "nms" })
  local ok, why = H.wait_port(port, 20, proc)
  assert(ok, why)
  local srv = { name = "node-media-server", port = port, dir = dir, proc = proc }
  function srv.url(path) return fmt("rtmp://127.0.0.1:%d/%s", port, path or "live") end
  function srv.log() return H.output(proc) end
  function srv.stop() return H.kill(proc, 5), srv.log() end
  return srv
end

return M
