-- A publisher that works the chunk layer's corners, for decoder_agree_spec:
--   luartmp spec/interop/agree_client.lua rtmp://127.0.0.1:PORT/live name
-- chunk stream ids with 1-, 2- and 3-byte basic headers (5, 64, 319, 320,
-- 65599), Set Chunk Size changes (1, 77, 128, 4096, 65536), two messages
-- interleaved chunk by chunk, timestamps below, at and past 0xFFFFFF
-- (extended timestamps, repeated on fmt 3 chunks), header compression
-- (fmt 1, 2 and 3 first chunks).
local rtmp = require "rtmp"
local url, name = ...

local nc = assert(rtmp.connect(url))
local ns = assert(nc:create_stream())
assert(ns:publish(name))
local conn = nc.conn
local sid = ns.id

local function body(tag, n)
  return tag .. string.rep(string.char(#tag % 200 + 32), n - #tag)
end

conn:data({ csid = 5, stream = sid }, "@setDataFrame", "onMetaData", { width = 64, height = 64 })
local ts = 0
for _, size in ipairs({ 1, 77, 128, 4096, 65536, 300 }) do
  conn:set_chunk_size(size)
  for _, csid in ipairs({ 4, 64, 319, 320, 65599 }) do
    ts = ts + 40
    conn:send({ csid = csid, stream = sid, timestamp = ts, type = "video" }, "\39\1" .. body("v", 700))
    conn:send({ csid = csid, stream = sid, timestamp = ts + 1, type = "video" }, "\39\1" .. body("w", 700))
  end
end
-- two messages interleaved chunk by chunk, each past the 24-bit timestamp
conn:set_chunk_size(100)
for _, base in ipairs({ 0xFFFFFE, 0xFFFFFF, 0x1000000 }) do
  local a = conn:begin({ csid = 6, stream = sid, timestamp = base, type = "video" }, "\23\1" .. body("x", 950))
  local b = conn:begin({ csid = 7, stream = sid, timestamp = base, type = "audio" }, "\175\1" .. body("y", 420))
  while not (a:done() and b:done()) do
    if not a:done() then a:chunk() end
    if not b:done() then b:chunk() end
  end
end
-- the same header again: fmt 3 first chunks; same length, new delta: fmt 2
for i = 1, 3 do
  conn:send({ csid = 9, stream = sid, timestamp = 0x1000000 + i * 40, type = "video" }, "\39\1" .. body("z", 50))
end
conn:command({ csid = 3 }, "FCUnpublish", 9, rtmp.null, name)
rtmp.sleep(0.3)
nc:close()
