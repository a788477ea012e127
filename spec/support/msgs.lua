-- Support for the message-type specs (sharedobj, aggregate, messages):
-- socket-free sessions, fixtures fed at every split size, message logs.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local M = {}

-- A server session past a plain handshake.
function M.session(opts)
  opts = opts or {}
  opts.role = opts.role or "server"
  local s = rtmp.session(opts)
  local c1 = string.pack(">I4 I4", 0, 0) .. string.rep("\x5a", 1528)
  assert(s:feed("\3" .. c1))
  local s012 = s:output()
  assert(s:feed(s012:sub(2, 1537)))
  assert(s.ready, "handshake did not complete")
  return s
end

-- The chunked bytes of messages { {csid=, type=, stream=, timestamp=, payload=}, ... }
-- at the default chunk size (128), headers compressed as real peers do.
function M.chunked(msgs)
  local w = rtmp.writer()
  local out = {}
  for _, m in ipairs(msgs) do out[#out + 1] = w:write(m) end
  return table.concat(out)
end

-- Feed `bytes` to a fresh session in pieces of `size` bytes; returns every
-- message it delivered, in order (raises on a feed error).
function M.feed_split(bytes, size)
  local s = M.session()
  local got = {}
  for i = 1, #bytes, size do
    local msgs = assert(s:feed(bytes:sub(i, i + size - 1)))
    for _, m in ipairs(msgs) do got[#got + 1] = m end
  end
  s:close()
  return got
end

-- For every split size 1..#bytes, call check(messages, size).
function M.every_split(bytes, check)
  for size = 1, #bytes do check(M.feed_split(bytes, size), size) end
end

-- AMF0 encodings written out by hand (independent of the binding).
function M.num(v) return string.pack(">B d", 0, v) end
function M.str(s) return string.pack(">B s2", 2, s) end
function M.bool(b) return string.pack(">B B", 1, b and 1 or 0) end
M.null = "\5"

-- An unmarked string (2-byte length), as shared-object keys are written.
function M.key(s) return string.pack(">s2", s) end

-- Hex of a string, for readable failures.
function M.hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

return M
