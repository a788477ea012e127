-- rtmp.tap: a passive decoder for both directions of one RTMP connection.
--
--   local tap = require "rtmp.tap"
--   local t = tap.new()
--   for _, e in ipairs(t:feed("c2s", bytes, time)) do
--     print(e.dir, e.t, e.chunk_size, rtmp.trace_line(e.msg, { dir = "in", time = e.t }))
--   end
--
-- It sees the bytes a client ("c2s") and a server ("s2c") sent, as a
-- capture or a byte-faithful proxy does, and never answers.  Each
-- direction skips its handshake (version byte, 1536-byte C1/S1 and
-- C2/S2; what kind of handshake it was is in t.handshake[dir]), then a
-- chunk reader applies that sender's own Set Chunk Size and Abort and
-- gives whole messages, each decoded as on_message gets it.  The reader
-- is lenient where real peers are: a new chunk stream may start with fmt
-- 1-3, extended timestamps on fmt 3 chunks are detected, messages up to
-- 16 MiB.  A direction that stops decoding sets t.error[dir] (and
-- t.error) and ignores the rest of its bytes.
local rtmp = require "rtmp"

local M = {}

local HS_LEN = 1 + 1536 + 1536 -- C0 C1 C2, or S0 S1 S2

M.reader_opts = {
  max_message = 16 * 1024 * 1024 - 1, max_chunk_streams = 65600,
  accept_fresh_fmt = true, ext_ts_fmt3 = "detect", auto_chunk_size = true,
}

local Tap = {}
Tap.__index = Tap

function M.new(opts)
  opts = opts or {}
  local t = setmetatable({
    hs_left = { c2s = HS_LEN, s2c = HS_LEN },
    hs_bytes = { c2s = "", s2c = "" },
    handshake = {},
    readers = {},
    error = nil,
    errors = {},
    count = 0,
    reader_opts = opts.reader_opts or M.reader_opts,
  }, Tap)
  return t
end

-- What kind of C1/S1 the first 1537 bytes of dir hold.
local function handshake_kind(dir, c0c1)
  local version = c0c1:byte(1)
  local info = { version = version, kind = "unknown" }
  if version ~= 3 then
    info.kind = version == 6 and "encrypted" or "unknown"
    return info
  end
  local ok, kind = pcall(function()
    if dir == "c2s" then
      local hs = rtmp.handshake("server")
      assert(hs:feed(c0c1))
      return hs:peer_kind()
    end
    local hs = rtmp.handshake("client", { plain = true })
    hs:start()
    assert(hs:feed(c0c1))
    return hs:peer_kind()
  end)
  if ok and kind then info.kind = kind end
  return info
end

local function fail(t, dir, why)
  t.errors[dir] = why
  t.error = t.error or (dir .. ": " .. why)
end

-- Feed bytes sent in direction dir ("c2s" or "s2c") at time `when`;
-- returns the messages they completed, in order.
function Tap:feed(dir, data, when)
  assert(dir == "c2s" or dir == "s2c", "direction must be \"c2s\" or \"s2c\"")
  local out = {}
  if self.errors[dir] or #data == 0 then return out end
  local left = self.hs_left[dir]
  if left > 0 then
    local take = math.min(left, #data)
    if not self.handshake[dir] then
      local got = self.hs_bytes[dir] .. data:sub(1, take)
      self.hs_bytes[dir] = got
      if #got >= 1537 then
        self.handshake[dir] = handshake_kind(dir, got:sub(1, 1537))
        self.hs_bytes[dir] = nil
        if self.handshake[dir].version ~= 3 then
          fail(self, dir, string.format("handshake version %d is not plain RTMP", self.handshake[dir].version))
          return out
        end
      end
    end
    left = left - take
    self.hs_left[dir] = left
    data = data:sub(take + 1)
    if left > 0 or #data == 0 then return out end
  end
  local r = self.readers[dir]
  if not r then
    r = rtmp.reader(self.reader_opts)
    self.readers[dir] = r
  end
  local size = r:chunk_size()
  local list, err, code, delivered = r:feed(data)
  if not list then
    list = delivered or {}
    fail(self, dir, string.format("%s (%s)", err, code))
  end
  for _, m in ipairs(list) do
    local msg = rtmp.message({ csid = m.csid, fmt = m.fmt, type = m.type, stream = m.stream,
                               timestamp = m.timestamp }, m.payload)
    self.count = self.count + 1
    out[#out + 1] = { dir = dir, t = when, msg = msg, chunk_size = size, index = self.count }
    if m.type == 1 and msg.chunk_size then size = msg.chunk_size end
  end
  return out
end

return M
