-- A small synthetic FLV for the replay flows, the same bytes on every
-- call: onMetaData, AVC and AAC sequence headers, then 2 s of made-up
-- frames (video at 10 fps with a keyframe each second, audio every 46 ms).
-- The payloads only look like H.264 and AAC (servers that relay without
-- decoding, such as nginx-rtmp and scripts/live.lua, take them).
--
--   local F = require "support.replay_flv"
--   F.write(path)
local rtmp = require "rtmp"

local F = {}

local function tag(kind, ts, body)
  return string.pack(">B I3 I3 B I3", kind, #body, ts & 0xFFFFFF, (ts >> 24) & 0xFF, 0) .. body
    .. string.pack(">I4", #body + 11)
end

-- Deterministic filler bytes.
local function filler(n, seed)
  local t, x = {}, seed
  for i = 1, n do
    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    t[i] = string.char((x >> 16) & 0xFF)
  end
  return table.concat(t)
end

--- The FLV file's bytes.
function F.bytes()
  local tags = {}
  local meta = rtmp.amf0.encode("onMetaData", rtmp.amf0.ecma{ duration = 2.0, width = 64.0, height = 64.0,
    framerate = 10.0, videocodecid = 7.0, audiocodecid = 10.0, audiosamplerate = 22050.0 })
  tags[#tags + 1] = { 0, 0, 18, meta }
  tags[#tags + 1] = { 0, 1, 9, "\23\0\0\0\0" .. "\1\66\192\10\255\225\0\4\103\66\192\10\1\0\4\104\206\60\128" }
  tags[#tags + 1] = { 0, 2, 8, "\175\0\19\136" }
  local seq = 3
  for i = 0, 19 do
    local key = i % 10 == 0
    local size = key and 600 or 40 + (i * 37) % 120
    seq = seq + 1
    tags[#tags + 1] = { i * 100, seq, 9, (key and "\23\1\0\0\0" or "\39\1\0\0\0")
      .. string.pack(">I4", size) .. filler(size, i + 1) }
  end
  for j = 0, 43 do
    seq = seq + 1
    tags[#tags + 1] = { j * 46, seq, 8, "\175\1" .. filler(60 + (j * 13) % 40, 1000 + j) }
  end
  table.sort(tags, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
  local out = { "FLV\1\5\0\0\0\9\0\0\0\0" }
  for _, t in ipairs(tags) do out[#out + 1] = tag(t[3], t[1], t[4]) end
  return table.concat(out)
end

--- Write the file to path.
function F.write(path)
  local f = assert(io.open(path, "wb"))
  f:write(F.bytes())
  f:close()
  return path
end

return F
