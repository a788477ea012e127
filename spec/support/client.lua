-- A small test client on top of rtmp.connect: it records every message it
-- receives and lets a spec wait, with a deadline, for a condition.
--
--   local C = require "support.client"
--   local c = C.connect("rtmp://127.0.0.1:PORT/live")   -- handshake + connect
--   local sid = c:create_stream()
--   c:play(sid, "name")
--   c:wait(function() return c:find{ name = "onStatus" } end, 5)
local rtmp = require "rtmp"

local C = {}
C.__index = C

-- Run the loop until cond() is true or `timeout` seconds pass; returns
-- cond()'s value or nil, "timeout".
function C.wait_until(cond, timeout)
  local deadline = rtmp.now() + (timeout or 5)
  repeat
    local v = cond()
    if v then return v end
    rtmp.run(0.02)
  until rtmp.now() > deadline
  local v = cond()
  if v then return v end
  return nil, "timeout"
end

function C:wait(cond, timeout) return C.wait_until(cond, timeout) end

-- Run fn in a coroutine on the loop (rtmp.spawn: where rtmp.http.request,
-- r:command and rtmp.sleep may wait) until it returns (within `timeout`
-- seconds, default 10); returns what it returned.
function C.run(fn, timeout)
  local out
  rtmp.spawn(function() out = table.pack(fn()) end)
  assert(C.wait_until(function() return out end, timeout or 10), "the coroutine did not end")
  return table.unpack(out, 1, out.n)
end

-- The first received message (after index `from`) whose fields match `want`.
function C:find(want, from)
  for i = (from or 0) + 1, #self.msgs do
    local m, ok = self.msgs[i], true
    for k, v in pairs(want) do
      local have = m[k]
      if k == "code" then have = m.args and type(m.args[2]) == "table" and m.args[2].code end
      if have ~= v then ok = false break end
    end
    if ok then return m, i end
  end
end

-- Connect, handshake, send `connect` and wait for its _result.
function C.connect(url, opts)
  opts = opts or {}
  local self = setmetatable({ msgs = {}, closed = false, txn = 1 }, C)
  local conn, err = rtmp.connect(url, {
    on_handshake = function(conn)
      conn:command(nil, "connect", 1, {
        app = conn.app, tcUrl = conn.tc_url, flashVer = "LNX 9,0,124,2",
        fpad = false, capabilities = 15, audioCodecs = 3191, videoCodecs = 252, videoFunction = 1,
      })
    end,
    on_message = function(_, msg) self.msgs[#self.msgs + 1] = msg end,
    on_close = function(_, reason) self.closed = reason end,
  })
  assert(conn, err)
  self.conn = conn
  local res = C.wait_until(function() return self:find{ name = "_result", txn = 1 } end, opts.timeout or 5)
  assert(res, "no _result for connect")
  return self
end

-- How many received messages match `want` (fields, as for find).
function C:count(want)
  local n, at = 0, 0
  while true do
    local _, i = self:find(want, at)
    if not i then return n end
    n, at = n + 1, i
  end
end

-- A player of stream `name` at `url` (rtmp://host:port/app) that has
-- received some video already (frames: how many, default 10).
function C.player(url, name, frames)
  local c = C.connect(url)
  local sid = c:create_stream()
  c:play(sid, name)
  assert(c:wait(function() return c:count{ type = 9 } > (frames or 10) end, 10), "the player got no video")
  return c
end

-- A command with a fresh transaction id; returns the id.
function C:call(hdr, name, ...)
  self.txn = self.txn + 1
  assert(self.conn:command(hdr, name, self.txn, ...))
  return self.txn
end

function C:create_stream()
  local txn = self:call(nil, "createStream", rtmp.null)
  local res = assert(C.wait_until(function() return self:find{ name = "_result", txn = txn } end, 5))
  return math.tointeger(res.args[2])
end

function C:play(sid, name)
  self.conn:command({ stream = sid, csid = 8 }, "play", 0, rtmp.null, name, -2)
end

function C:publish(sid, name)
  self.conn:command({ stream = sid, csid = 8 }, "publish", 0, rtmp.null, name, "live")
end

-- The onStatus codes received so far, in order.
function C:status_codes()
  local codes = {}
  for _, m in ipairs(self.msgs) do
    if m.name == "onStatus" then codes[#codes + 1] = m.args[2].code end
  end
  return codes
end

function C:close()
  if self.conn and not self.conn.closed then self.conn:close("test done") end
  C.wait_until(function() return self.closed end, 2)
end

-- FLV tags of a file, as { type =, timestamp =, data = } (enough of FLV
-- for tests: header, tags, previous-tag sizes).
function C.flv_tags(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  assert(s:sub(1, 3) == "FLV", "not an FLV file")
  local pos = string.unpack(">I4", s, 6) + 5 -- header, then PreviousTagSize0
  local tags = {}
  while pos + 11 <= #s do
    local ttype, size, ts, tsx = string.unpack(">B I3 I3 B", s, pos)
    local data = s:sub(pos + 11, pos + 10 + size)
    if #data < size then break end
    tags[#tags + 1] = { type = ttype, timestamp = ts | (tsx << 24), data = data }
    pos = pos + 11 + size + 4
  end
  return tags
end

return C
