-- Loopback captures for the specs: dumpcap writes the packets of one TCP
-- port to a pcapng file under the spec's temp dir (removed by H.cleanup).
--
--   local C = require "support.capture"
--   local cap = C.start(port)          -- returns once dumpcap captures
--   ... run the peers ...
--   local path = C.stop(cap)           -- dumpcap flushed and stopped
local H = require "support.helpers"

local C = {}
-- A 64 MiB kernel buffer (-B): at the default 2 MiB dumpcap drops loopback
-- packets of a full-speed publish, and a capture with holes cannot be decoded.
local fmt, q = string.format, H.shquote
local seq = 0

function C.start(port, opts)
  opts = opts or {}
  seq = seq + 1
  local file = H.tmpname(fmt("%s-%d-%d.pcapng", opts.name or "capture", port, seq))
  local filter = opts.filter and fmt("(%s) or udp port %d", opts.filter, port) or H.capture_filter(port)
  local proc = H.spawn(fmt("dumpcap -q -B 64 -i lo -f %s -w %s", q(filter), q(file)), { name = "dumpcap" })
  assert(H.capture_ready(proc, file, port))
  return { proc = proc, file = file, port = port }
end

-- Stop after the last packets had time to reach the capture; returns the
-- path.  Every capture is also checked against tshark (support.agree):
-- our decoder and its RTMP dissector must list the same messages, unless
-- opts.agree is false (then say why at the call).
function C.stop(cap, opts)
  H.sleep(0.3)
  H.kill(cap.proc, 10)
  assert(H.file_size(cap.file) and H.file_size(cap.file) > 0, "empty capture " .. cap.file)
  if not (opts and opts.agree == false) then
    require("support.agree").check(cap.file)
  end
  return cap.file
end

return C
