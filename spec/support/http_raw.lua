-- A raw HTTP peer for the server specs (spec/support/http_raw.py in the
-- background): bytes sent all at once or a few at a time, everything the
-- server answered, and whether it closed.
local H = require "support.helpers"

local fmt, q = string.format, H.shquote

local R = {}

--- R.start(port, bytes, { drip = N, wait = S, pause = S }) -> process with
--- p.result() -> what came back, "closed" | "open" (once it has exited).
function R.start(port, bytes, opts)
  opts = opts or {}
  local inp, out = H.tmpname("raw.in"), H.tmpname("raw.out")
  H.write_file(inp, bytes)
  local p = H.spawn(fmt("python3 spec/support/http_raw.py %d %s %s %d %g %g", port, q(inp), q(out),
    opts.drip or 0, opts.wait or 3, opts.pause or 0), { name = "http-raw" })
  function p.result()
    return H.read_file(out) or "", (H.read_file(out .. ".state") or ""):match("%a+")
  end
  return p
end

--- R.responses(s) -> { { status, headers = { lower-case name = value }, body } } in order.
function R.responses(s)
  local list, pos = {}, 1
  while pos <= #s do
    local head_end = s:find("\r\n\r\n", pos, true)
    if not head_end then break end
    local head = s:sub(pos, head_end - 1)
    local r = { status = tonumber(head:match("^HTTP/1%.1 (%d%d%d)")), headers = {} }
    for k, v in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do r.headers[k:lower()] = v end
    local len = tonumber(r.headers["content-length"] or 0)
    r.body = s:sub(head_end + 4, head_end + 3 + len)
    list[#list + 1] = r
    pos = head_end + 4 + len
  end
  return list
end

return R
