-- An HTTP-FLV / WS-FLV client for the specs: spec/support/flv_client.py in
-- the background (its options in that file: --http, --delay, --stall,
-- --ping, --early-ping, --version, --send big|unmasked, --after, --timeout).
local H = require "support.helpers"

local fmt, q = string.format, H.shquote

--- flv_client(port, path, out, opts) -> process with p.state(): the
--- OUT.state line as a table (status, frames, ping, close, reason, end, version;
--- numbers as numbers), once it has exited.
return function(port, path, out, opts)
  local p = H.spawn(fmt("python3 spec/support/flv_client.py %d %s %s %s", port, q(path), q(out), opts or ""),
    { name = "flv-client" })
  function p.state()
    local t = {}
    for k, v in (H.read_file(out .. ".state") or ""):gmatch("(%w+)=(%S*)") do t[k] = tonumber(v) or v end
    return t
  end
  return p
end
