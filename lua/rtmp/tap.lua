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
--
-- A capture may begin after the handshake, or in the middle of a
-- message.  tap.new{ handshake = "auto" } decides per direction from its
-- first bytes: a version byte (3 or 6) that does not also read as a
-- plausible chunk header starts a handshake; anything else is chunk data
-- without one (t.handshake_missing[dir]).  Such a direction is held until
-- t:finish() (or until 1 MiB + 64 KiB are held), then decoded from the
-- first plausible chunk
-- header: a fmt 0 or fmt 1 header with a known type, a length that fits
-- the type and, for fmt 0, a small message stream id, from which a fresh
-- reader decodes the messages that follow (three, or all there are)
-- without an error or an impossible message, at chunk size 128 or, when
-- that fails, a common one or one the data suggests (the distance to the
-- next fmt 3 header of that chunk stream).  The bytes before it are
-- skipped and counted (t.skipped[dir]).  A chunk stream whose first chunk
-- after that point is fmt 2 or 3 has no length the tap could know: the
-- messages before it are kept and decoding starts again at the next
-- plausible header (the bytes in between count as skipped).
local rtmp = require "rtmp"

local byte, sub, unpack = string.byte, string.sub, string.unpack

local M = {}

local HS_LEN = 1 + 1536 + 1536 -- C0 C1 C2, or S0 S1 S2
local PROBE_WINDOW = 64 * 1024  -- bytes a start candidate is checked against
local MAX_SKIP = 1024 * 1024    -- how far a start is looked for
-- Chunk sizes tried when 128 does not decode: what real peers set.
local CHUNK_SIZES = { 128, 4096, 60000, 65536, 1024, 2048, 8192, 16384, 32768, 256, 512, 1400, 1536, 5000 }

M.reader_opts = {
  max_message = 16 * 1024 * 1024 - 1, max_chunk_streams = 65600,
  accept_fresh_fmt = true, ext_ts_fmt3 = "detect", auto_chunk_size = true,
}

local Tap = {}
Tap.__index = Tap

-- tap.new([opts]): opts.handshake true (default: each direction begins
-- with its handshake), false (neither does) or "auto" (decided per
-- direction, see above); opts.chunk_size: a direction without handshake
-- starts with chunk data at its first byte, at this chunk size (no
-- probe, nothing held: for a caller that found the start with
-- tap.probe); opts.reader_opts replaces M.reader_opts.
function M.new(opts)
  opts = opts or {}
  local hs = opts.handshake
  if hs == nil then hs = true end
  if hs ~= true and hs ~= false and hs ~= "auto" then
    error("tap.new: handshake must be true, false or \"auto\"", 2)
  end
  local t = setmetatable({
    mode = { c2s = hs == true and "handshake" or hs == false and "headless" or nil,
             s2c = hs == true and "handshake" or hs == false and "headless" or nil },
    held = { c2s = {}, s2c = {} },       -- headless bytes not decoded yet: { data, t }
    held_len = { c2s = 0, s2c = 0 },
    handshake_missing = {},
    skipped = { c2s = 0, s2c = 0 },
    hs_left = { c2s = HS_LEN, s2c = HS_LEN },
    hs_bytes = { c2s = "", s2c = "" },
    handshake = {},
    readers = {},
    error = nil,
    errors = {},
    count = 0,
    reader_opts = opts.reader_opts or M.reader_opts,
    start_cs = opts.chunk_size,
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

---------------------------------------------------------------------------
-- Where chunk data begins when the handshake is not in the capture
---------------------------------------------------------------------------

-- The payload length each message type allows: { min, max }.
local LENGTHS = {
  [1] = { 4, 4 }, [2] = { 4, 4 }, [3] = { 4, 4 }, [4] = { 2, 64 }, [5] = { 4, 4 }, [6] = { 5, 5 },
  [8] = { 1, 0xFFFFFF }, [9] = { 1, 0xFFFFFF }, [15] = { 1, 1 << 20 }, [16] = { 1, 1 << 20 },
  [17] = { 1, 1 << 20 }, [18] = { 1, 1 << 20 }, [19] = { 1, 1 << 20 }, [20] = { 1, 1 << 20 },
  [22] = { 11, 0xFFFFFF },
}
local MAX_STREAM = 0xFFFF   -- message stream ids real servers hand out are small

-- Whether a fmt 0 or fmt 1 chunk header that a reader could start with
-- begins at byte i of data: its basic header, a known type, a length the
-- type allows, for fmt 0 a small stream id (stream 0 for control).
local function plausible_header(data, i)
  local b = byte(data, i)
  if not b then return false end
  local fmt, csid, h = b >> 6, b & 0x3F, i + 1
  if fmt > 1 then return false end
  if csid == 0 then h = h + 1 elseif csid == 1 then h = h + 2 elseif csid < 2 then return false end
  local need = fmt == 0 and 11 or 7
  if #data < h + need - 1 then return false end
  local len = (byte(data, h + 3) << 16) | (byte(data, h + 4) << 8) | byte(data, h + 5)
  local typ = byte(data, h + 6)
  local lim = LENGTHS[typ]
  if not lim or len < lim[1] or len > lim[2] then return false end
  if fmt == 0 then
    local stream = unpack("<I4", data, h + 7)
    if stream > MAX_STREAM or (typ <= 6 and stream ~= 0) then return false end
  end
  return true
end
M.plausible_header = plausible_header

-- Whether a decoded message could have been sent: a known type, a length
-- its type allows, a body that decodes.
local function sane_message(m, msg)
  local lim = LENGTHS[m.type]
  if not lim or m.length < lim[1] or m.length > lim[2] then return false end
  if msg and msg.decode_error and m.type ~= 8 and m.type ~= 9 and m.type ~= 22 then return false end
  return true
end

local function new_reader(t, cs)
  local r = rtmp.reader(t.reader_opts)
  if cs ~= 128 then r:set_chunk_size(cs) end
  return r
end

-- Whether decoding data from byte i at chunk size cs gives `want`
-- sane messages (or, when the window holds fewer, every one there is,
-- at least one) without an error.
local function decodes_from(t, data, i, cs, want)
  local window = sub(data, i, i + PROBE_WINDOW - 1)
  local r = new_reader(t, cs)
  local list = r:feed(window)
  r:close()
  if not list or #list == 0 then return false end
  for k, m in ipairs(list) do
    if k > want then break end
    local ok, msg = pcall(rtmp.message, { csid = m.csid, fmt = m.fmt, type = m.type, stream = m.stream,
                                          timestamp = m.timestamp }, m.payload)
    if not ok or not sane_message(m, msg) then return false end
  end
  return #list >= want or #window < PROBE_WINDOW
end

-- Chunk sizes to try for a candidate header at i: the common ones, then
-- every distance at which a fmt 3 header of the same chunk stream
-- (0xC0 | csid) follows the header, when the message is longer than 128.
local function sizes_for(data, i)
  local b = byte(data, i)
  local csid = b & 0x3F
  local list = { table.unpack(CHUNK_SIZES) }
  if csid < 2 or b >> 6 ~= 0 and b >> 6 ~= 1 then return list end
  local hdr = (b >> 6 == 0) and 12 or 8
  local len = (byte(data, i + 4) << 16) | (byte(data, i + 5) << 8) | byte(data, i + 6)
  if len <= 128 then return list end
  local known, cont = {}, 0xC0 | csid
  for _, cs in ipairs(CHUNK_SIZES) do known[cs] = true end
  local first = i + hdr
  for d = 1, math.min(len - 1, PROBE_WINDOW) do
    if byte(data, first + d) == cont and not known[d] then list[#list + 1] = d end
  end
  return list
end

-- probe(data [, from]) -> the 1-based index where chunk data plausibly
-- starts and the chunk size it decodes at, or nil when none does in the
-- first MAX_SKIP bytes from `from`.
function M.probe(data, from, t)
  t = t or { reader_opts = M.reader_opts }
  from = from or 1
  local last = math.min(#data, from + MAX_SKIP - 1)
  for i = from, last do
    if plausible_header(data, i) then
      for _, cs in ipairs(sizes_for(data, i)) do
        if decodes_from(t, data, i, cs, 3) then return i, cs end
      end
    end
  end
  return nil
end

-- Messages out of a reader's list, numbered and timed.  In a direction
-- without handshake, a message of no known type (a chunk stream whose
-- first chunk after the start was fmt 2 or 3 reads as type 0, length 0)
-- ends the list: returns false and what came before it is delivered.
local function deliver(self, dir, list, when, size, out)
  for _, m in ipairs(list) do
    if self.mode[dir] == "headless" and not LENGTHS[m.type] then return false end
    local msg = rtmp.message({ csid = m.csid, fmt = m.fmt, type = m.type, stream = m.stream,
                               timestamp = m.timestamp }, m.payload)
    self.count = self.count + 1
    out[#out + 1] = { dir = dir, t = when, msg = msg, chunk_size = size, index = self.count }
    if m.type == 1 and msg.chunk_size then size = msg.chunk_size end
  end
  return true
end

-- Chunk bytes through dir's reader.  Returns false, having delivered the
-- messages before it, at a reader error or an impossible message; in a
-- direction with a handshake that stops the direction (t.error).
local function read_chunks(self, dir, data, when, out)
  local r = self.readers[dir]
  local size = r:chunk_size()
  local list, err, code, delivered = r:feed(data)
  if not list then
    deliver(self, dir, delivered or {}, when, size, out)
    if self.mode[dir] ~= "headless" then fail(self, dir, string.format("%s (%s)", err, code)) end
    return false, string.format("%s (%s)", err, code)
  end
  if not deliver(self, dir, list, when, size, out) then
    return false, "a chunk stream whose first chunk after the start was fmt 2 or 3 (its length is unknown)"
  end
  return true
end

local MAX_RESYNC = 64

-- Where the last sane message ends when `data` is read from `start` at
-- chunk size cs, reading bulk up to byte a and then a byte at a time to
-- byte b (the run in which decoding went wrong).  start - 1 when none.
local function last_good_end(self, data, start, cs, a, b)
  local r = new_reader(self, cs)
  if a > start then r:feed(sub(data, start, a - 1)) end
  local good = a - 1
  for p = a, b do
    local list = r:feed(sub(data, p, p))
    if not list then break end
    local bad = false
    for _, m in ipairs(list) do
      if not LENGTHS[m.type] then bad = true break end
    end
    if bad then break end
    if #list > 0 then good = p end
  end
  r:close()
  return good
end

-- Decode the bytes held for a headless direction: find the start, skip
-- what is before it, then read the held runs in order (each keeps its
-- time).  Where decoding goes wrong (a chunk stream first seen with a fmt
-- 2 or 3 header, a reader error), the messages before are kept, and
-- decoding starts again at the next plausible chunk header after the last
-- sane message, with a fresh reader; the bytes passed over count as skipped.
local function release(self, dir, out)
  local runs = self.held[dir]
  self.held[dir], self.held_len[dir] = nil, 0
  local parts, pos = {}, 1
  for k, run in ipairs(runs) do
    parts[k] = run[1]
    run.a, run.b = pos, pos + #run[1] - 1
    pos = run.b + 1
  end
  local data = table.concat(parts)
  local from, skipped, resyncs = 1, 0, 0
  while from <= #data do
    local start, cs = M.probe(data, from, self)
    if not start then
      skipped = skipped + #data - from + 1
      if from == 1 then
        fail(self, dir, string.format("no plausible chunk header in the first %d bytes: the capture began " ..
          "inside this direction's stream and nothing could be decoded", math.min(#data, MAX_SKIP)))
      else
        fail(self, dir, string.format("no plausible chunk header in the last %d bytes", #data - from + 1))
      end
      break
    end
    skipped = skipped + start - from
    self.readers[dir] = new_reader(self, cs)
    local bad, why
    for k, run in ipairs(runs) do
      if run.b >= start then
        local ok, err = read_chunks(self, dir, run.a >= start and run[1] or sub(run[1], start - run.a + 1), run[2], out)
        if not ok then bad, why = k, err break end
      end
    end
    if not bad then break end
    resyncs = resyncs + 1
    if resyncs > MAX_RESYNC then
      fail(self, dir, string.format("%s; stopped after %d new starts", why, MAX_RESYNC))
      break
    end
    local good = last_good_end(self, data, start, cs, math.max(runs[bad].a, start), runs[bad].b)
    from = good >= start and good + 1 or start + 1
  end
  self.skipped[dir] = skipped
end

-- has_handshake(first_bytes) -> whether a direction beginning with these
-- bytes begins with its handshake: a version byte (3 or 6) that does not
-- also read as a plausible chunk header; nil when too few bytes to tell.
function M.has_handshake(data)
  local b = byte(data, 1)
  if b ~= 3 and b ~= 6 then return false end
  if #data < 16 then return nil end
  return not plausible_header(data, 1)
end

-- Bytes of a direction that M.probe may look at.
M.PROBE_BYTES = MAX_SKIP + PROBE_WINDOW

local function decide(self, dir, data)
  local hs = M.has_handshake(data)
  if hs == nil then return nil end
  return hs and "handshake" or "headless"
end

-- Feed bytes sent in direction dir ("c2s" or "s2c") at time `when`;
-- returns the messages they completed, in order.
function Tap:feed(dir, data, when)
  assert(dir == "c2s" or dir == "s2c", "direction must be \"c2s\" or \"s2c\"")
  local out = {}
  if self.errors[dir] or #data == 0 then return out end
  if not self.mode[dir] then
    local held = self.held[dir]
    held[#held + 1] = { data, when }
    self.held_len[dir] = self.held_len[dir] + #data
    local parts = {}
    for k, run in ipairs(held) do parts[k] = run[1] end
    local mode = decide(self, dir, table.concat(parts))
    if not mode then return out end
    self.mode[dir] = mode
    if mode == "handshake" then
      self.held[dir], self.held_len[dir] = {}, 0
      for _, run in ipairs(held) do
        for _, e in ipairs(self:feed(dir, run[1], run[2])) do out[#out + 1] = e end
      end
      return out
    end
    self.handshake_missing[dir] = true
    if self.held_len[dir] >= PROBE_WINDOW + MAX_SKIP then release(self, dir, out) end
    return out
  end
  if self.mode[dir] == "headless" then
    self.handshake_missing[dir] = true
    if self.start_cs and self.held[dir] then
      self.held[dir] = nil
      self.readers[dir] = new_reader(self, self.start_cs)
    end
    if self.held[dir] then
      local held = self.held[dir]
      held[#held + 1] = { data, when }
      self.held_len[dir] = self.held_len[dir] + #data
      self.handshake_missing[dir] = true
      if self.held_len[dir] >= PROBE_WINDOW + MAX_SKIP then release(self, dir, out) end
    else
      read_chunks(self, dir, data, when, out)
    end
    return out
  end
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
  if not self.readers[dir] then self.readers[dir] = rtmp.reader(self.reader_opts) end
  read_chunks(self, dir, data, when, out)
  return out
end

-- The end of the bytes: decode what a headless direction still holds
-- (and a direction too short to decide, as chunk data).  Returns the
-- messages that completed.
function Tap:finish()
  local out = {}
  for _, dir in ipairs({ "c2s", "s2c" }) do
    if not self.mode[dir] and self.held[dir] and #self.held[dir] > 0 then
      self.mode[dir] = "headless"
      self.handshake_missing[dir] = true
    end
    if self.mode[dir] == "headless" and self.held[dir] and not self.errors[dir] then
      release(self, dir, out)
    end
  end
  return out
end

return M
