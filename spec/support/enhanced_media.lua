-- spec/support/enhanced_media.lua: a stream of hand-built media messages
-- in every form of the media model (spec/support/media_vectors.lua: the
-- legacy headers, then ExVideoTagHeader / ExAudioTagHeader with every
-- FourCC and packet type, ModEx TimestampOffsetNano, Multitrack OneTrack,
-- ManyTracks, ManyTracksManyCodecs, command frames), followed by two
-- large Enhanced RTMP messages that span many chunks: an hvc1 ManyTracks
-- keyframe of 3 tracks (about 70 kB) and a ModEx + av01 coded frame
-- (20 kB).  40 ms apart.
--
-- As a module (require "support.enhanced_media"): M.messages() ->
-- { { type, timestamp, payload, want, enhanced }, ... } (want: the media
-- fields a script must see, nil for the two large ones).
--
-- As a luartmp script:
--   luartmp spec/support/enhanced_media.lua publish rtmp://host:port/app NAME
--       publishes the messages and closes (exit 0 when all were sent);
--   luartmp spec/support/enhanced_media.lua play rtmp://host:port/app NAME OUT COUNT
--       plays NAME (announcing fourCcList {"*"}), prints "playing" on
--       stderr once Play.Start came, and writes each audio and video
--       message it receives to OUT as string.pack(">B I4 s4", type,
--       timestamp, payload), until COUNT of them (exit 0) or 10 s with
--       nothing (exit 1).
local V = require "support.media_vectors"

local M = {}
local pack = string.pack

local function data(n, seed)
  local t = {}
  for i = 1, n do t[i] = string.char((i * 31 + seed * 7) % 256) end
  return table.concat(t)
end

function M.messages()
  local out = {}
  local ts = 0
  local function add(mtype, payload, want)
    local b = payload:byte(1) or 0
    local enhanced = (mtype == V.VIDEO and b & 0x80 ~= 0) or (mtype == V.AUDIO and b >> 4 == 9)
    out[#out + 1] = { type = mtype, timestamp = ts, payload = payload, want = want, enhanced = enhanced }
    ts = ts + 40
  end
  for _, v in ipairs(V.valid) do add(v.type, v.payload, v.want) end
  local tracks = {}
  for id = 0, 2 do
    local frame = data(23000 + id * 100, id + 1)
    tracks[#tracks + 1] = string.char(id) .. pack(">I3", 3 + #frame) .. V.si24(id * 40) .. frame
  end
  add(V.VIDEO, V.ex_video(1, 6) .. V.multitrack(1, 1) .. "hvc1" .. table.concat(tracks))
  add(V.VIDEO, V.ex_video(2, 7) .. V.nano(250000, 1) .. "av01" .. data(20000, 9))
  return out
end

if ... ~= "support.enhanced_media" then
  local rtmp = require "rtmp"
  local mode, url, name, outpath, count = ...
  if mode == "publish" then
    local nc = assert(rtmp.connect(url))
    local ns = assert(nc:create_stream())
    assert(ns:publish(name))
    for _, m in ipairs(M.messages()) do assert(ns:send(m)) end
    rtmp.sleep(0.3)
    ns:close()
    nc:close()
  elseif mode == "play" then
    count = assert(tonumber(count), "COUNT expected")
    local nc = assert(rtmp.connect(url, { properties = { fourCcList = { "*" } } }))
    local ns = assert(nc:create_stream())
    assert(ns:play(name))
    io.stderr:write("playing\n")
    local f = assert(io.open(outpath, "wb"))
    local got = 0
    while got < count do
      local msg, err = ns:read(10)
      if not msg then
        io.stderr:write("ended after ", got, " media messages: ", tostring(err), "\n")
        f:close()
        os.exit(1)
      end
      if msg.type == 8 or msg.type == 9 then
        f:write(pack(">B I4 s4", msg.type, msg.timestamp, msg.payload))
        got = got + 1
      end
    end
    f:close()
    io.stderr:write("received ", got, " media messages\n")
    nc:close()
  else
    error("usage: enhanced_media.lua publish URL NAME | play URL NAME OUT COUNT")
  end
end

return M
