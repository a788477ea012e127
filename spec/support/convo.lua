-- Conversations recorded between two socket-free rtmp.session objects, in
-- the shape rtmp.capture gives a connection, for the specs of the capture
-- tools and the flow runtime (no socket, no capture file); and temporary
-- files those specs remove.
local rtmp = require "rtmp"

local M = {}

--- M.pair() -> c, s, pump, chunks: a client and a server session (plain
--- handshake, done) joined by pump(t), which passes each side's output to
--- the other until both are quiet and records it in chunks
--- ({ t, dir = "c2s"|"s2c", data }). t: the capture time of what this
--- pump carries; nil: each chunk 10 ms after the one before.
function M.pair(t0)
  local c = rtmp.session{ role = "client", plain_handshake = true }
  local s = rtmp.session{ role = "server", plain_handshake = true }
  local chunks, last = {}, 0
  local function take(dir, out, t, into)
    if #out == 0 then return end
    last = t or (last + 0.01)
    chunks[#chunks + 1] = { t = last, dir = dir, data = out }
    assert(into:feed(out))
  end
  local function pump(t)
    for _ = 1, 4 do
      take("c2s", c:output(), t, s)
      take("s2c", s:output(), t, c)
    end
  end
  pump(t0)
  assert(c.ready and s.ready)
  return c, s, pump, chunks
end

--- M.conn(chunks [, extra]) -> a connection as rtmp.capture gives one
--- (extra: more fields, e.g. closed_by and close_t).
function M.conn(chunks, extra)
  local conn = { id = 1, client = "127.0.0.1:50000", server = "127.0.0.1:1935", start = 1795525371,
                 rtmp = true, gaps = 0, chunks = chunks, bytes = {} }
  for k, v in pairs(extra or {}) do conn[k] = v end
  return conn
end

local tmpfiles = {}

--- M.tmpname([suffix]) -> a temporary path, removed by M.cleanup().
function M.tmpname(suffix)
  local p = os.tmpname() .. (suffix or "")
  tmpfiles[#tmpfiles + 1] = p
  return p
end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function M.cleanup()
  for _, p in ipairs(tmpfiles) do os.remove(p) end
  tmpfiles = {}
end

return M
