-- spec/support/chromium.lua: headless Debian Chromium for the browser
-- specs, driven over the DevTools protocol by spec/support/cdp_page.js
-- (node and the `ws` package of tools/node; tools/deps.sh installs them).
--
--   local C = require "support.chromium"
--   local why = C.missing()               -- nil, or why no browser test can run here
--   local devtools = C.start{ "--allow-file-access-from-files" }
--   local value = C.until_value(devtools, url, "window.done", 30)

local H = require "support.helpers"
local json = require "dkjson"

local fmt, q = string.format, H.shquote

local C = {}

C.BIN = "/usr/bin/chromium"
C.WS = "tools/node/node_modules/ws/package.json"
--- How to install what tools/node lacks (ws, mpegts.js).
C.NODE_INSTALL = "tools/deps.sh: npm ci --prefix tools/node"

--- Why the browser specs cannot run here, or nil. `files`: more files
--- they need, { path = "what to say when it is missing" }.
function C.missing(files)
  if not H.file_size(C.BIN) then return "chromium is not installed (tools/deps.sh installs it)" end
  if H.exec("command -v node >/dev/null 2>&1") ~= 0 then return "node is not installed" end
  if not H.file_size(C.WS) then return "ws is missing in tools/node (" .. C.NODE_INSTALL .. ")" end
  for path, why in pairs(files or {}) do
    if not H.file_size(path) then return why end
  end
end

--- Start headless Chromium (muted, autoplay without a gesture) with a
--- DevTools port, plus the command-line `flags` given; returns the port.
--- H.cleanup() stops it.
function C.start(flags)
  local devtools = H.free_port()
  H.spawn(fmt("%s --headless=new --no-sandbox --disable-gpu --autoplay-policy=no-user-gesture-required " ..
    "--mute-audio %s --remote-debugging-port=%d --user-data-dir=%s about:blank", C.BIN,
    table.concat(flags or {}, " "), devtools, q(H.mkdir(H.tmpname("chromium")))), { name = "chromium" })
  return devtools
end

--- Open `url` in the browser on `devtools` and wait (up to `timeout`
--- seconds) until the page's JavaScript expression `expr` gives a value
--- (not null, undefined or false); returns that value decoded from JSON.
function C.until_value(devtools, url, expr, timeout)
  local rc, out = H.run(fmt("node spec/support/cdp_page.js %d %s --until %s %d", devtools, q(url), q(expr),
    timeout), timeout + 15)
  assert(rc == 0, "cdp_page.js: " .. out)
  -- the value line, wherever node's own warnings (merged in) fall
  local text = ("\n" .. out):match("\nvalue=([^\n]*)")
  assert(text, "cdp_page.js printed: " .. out)
  return (json.decode(text))
end

return C
