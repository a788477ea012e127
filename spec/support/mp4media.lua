-- spec/support/mp4media.lua: the MP4 test clips (spec/unit/mp4_spec.lua,
-- spec/interop/mp4_spec.lua, spec/interop/mp4_browser_spec.lua), made at
-- test time with Debian's ffmpeg 5.1 encoders and cached in
-- build/test-tmp: 1 s (3 s for the -3s clips) of testsrc2 at 160x120,
-- 25 fps, a keyframe every 12 frames, and a 440 Hz sine.  Together the
-- clips hold every codec rtmp.mp4 reads and writes.
--
--   local M = require "support.mp4media"
--   local path, clip = M.clip("hevc-opus")   -- clip.video, clip.audio: ffprobe's codec names
--   M.packets(path, 0)                        -- ffprobe's packets of stream 0

local H = require "support.helpers"
local rtmp = require "rtmp"

local q, fmt = H.shquote, string.format

local M = {}

M.FPS, M.SECONDS, M.GOP = 25, 1, 12
M.PUBLISH = "scripts/client/publish.lua"

local VIDEO = {
  h264 = "-c:v libx264 -preset veryfast -pix_fmt yuv420p",
  -- closed GOPs: a player joining at a keyframe decodes all it gets (x265's open GOP leaves RASL frames after it)
  hevc = "-c:v libx265 -preset ultrafast -pix_fmt yuv420p -x265-params " ..
    "log-level=none:keyint=12:min-keyint=12:scenecut=0:open-gop=0",
  av1 = "-c:v libaom-av1 -cpu-used 8 -usage realtime -pix_fmt yuv420p",
  vp9 = "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -pix_fmt yuv420p",
}
local AUDIO = {
  aac = { "-c:a aac -b:a 48k", 44100 },
  opus = { "-c:a libopus -b:a 32k", 48000 },
  flac = { "-c:a flac -strict -2", 44100 },
  ac3 = { "-c:a ac3 -b:a 96k", 48000 },
  eac3 = { "-c:a eac3 -b:a 96k", 48000 },
  mp3 = { "-c:a libmp3lame -b:a 64k", 44100 },
}

--- The clips: name -> { video = ffprobe codec or nil, audio = ..., extra ffmpeg options,
--- seconds (default M.SECONDS) }.
M.CLIPS = {
  ["h264-aac"] = { video = "h264", audio = "aac" },
  ["hevc-opus"] = { video = "hevc", audio = "opus" },
  ["av1-flac"] = { video = "av1", audio = "flac" },
  ["vp9-ac3"] = { video = "vp9", audio = "ac3" },
  ["h264-mp3"] = { video = "h264", audio = "mp3" },
  ["eac3"] = { audio = "eac3" },
  -- fragmented input: a moof (two trafs) per keyframe, data offsets from the moof
  ["h264-aac-frag"] = { video = "h264", audio = "aac", extra = "-movflags +frag_keyframe+empty_moov+default_base_moof" },
  -- two video tracks (ffmpeg -map 0:v -map 1:v), keyframes together
  ["h264x2"] = { video = "h264", video2 = "h264" },
  -- two video tracks of two codecs (ManyTracksManyCodecs)
  ["h264-hevc"] = { video = "h264", video2 = "hevc" },
  -- what Chromium decodes in software (mp4_browser_spec), long enough for several fragments
  ["av1-opus-3s"] = { video = "av1", audio = "opus", seconds = 3 },
  ["vp9-flac-3s"] = { video = "vp9", audio = "flac", seconds = 3 },
  ["h264-aac-3s"] = { video = "h264", audio = "aac", seconds = 3 },
}

local function command(clip, out)
  local inputs, maps, codecs = {}, {}, {}
  local n = 0
  if clip.video then
    inputs[#inputs + 1] = fmt("-f lavfi -i testsrc2=size=160x120:rate=%d", M.FPS)
    maps[#maps + 1] = fmt("-map %d:v", n)
    n = n + 1
    if clip.video2 then
      inputs[#inputs + 1] = fmt("-f lavfi -i testsrc=size=128x96:rate=%d", M.FPS)
      maps[#maps + 1] = fmt("-map %d:v", n)
      n = n + 1
    end
    if clip.video2 and clip.video2 ~= clip.video then   -- a codec per stream: -c:v:0 ... -c:v:1 ...
      codecs[#codecs + 1] = VIDEO[clip.video]:gsub("-c:v ", "-c:v:0 ") .. " " .. VIDEO[clip.video2]:gsub("-c:v ", "-c:v:1 ")
    else
      codecs[#codecs + 1] = VIDEO[clip.video]
    end
    codecs[#codecs] = codecs[#codecs] .. fmt(" -g %d -keyint_min %d", M.GOP, M.GOP)
  end
  if clip.audio then
    local a = AUDIO[clip.audio]
    inputs[#inputs + 1] = fmt("-f lavfi -i sine=frequency=440:sample_rate=%d", a[2])
    maps[#maps + 1] = fmt("-map %d:a", n)
    codecs[#codecs + 1] = a[1]
  end
  return fmt("ffmpeg -nostdin -v error -y %s %s -t %d %s %s -f mp4 %s", table.concat(inputs, " "),
    table.concat(maps, " "), clip.seconds or M.SECONDS, table.concat(codecs, " "), clip.extra or "", q(out))
end

--- The path of clip `name` (made once: the name holds a digest of the
--- ffmpeg command, so a changed recipe makes a new file), and the clip's
--- description.
function M.clip(name)
  local clip = assert(M.CLIPS[name], "no clip " .. tostring(name))
  local path = fmt("build/test-tmp/mp4-%s-%s.mp4", name, rtmp.sha256(command(clip, "OUT")):sub(1, 8))
  if not H.file_size(path) then
    H.mkdir("build/test-tmp")
    local tmp = path .. ".tmp" .. math.random(1e6)
    local rc, out = H.run(command(clip, tmp) .. " && mv " .. q(tmp) .. " " .. q(path), 120)
    assert(rc == 0, "ffmpeg could not make " .. name .. ": " .. out)
  end
  return path, clip
end

--- Start scripts/client/publish.lua sending the MP4 `path` to `url` in
--- real time (`opts`: more of its options, e.g. "--type record"); returns
--- the process.
function M.publish(url, path, opts)
  return H.spawn(fmt("%s %s %s %s %s", q(H.luartmp), M.PUBLISH, opts or "", q(path), q(url)),
    { name = "publish" })
end

--- Wait for publish.lua processes: each ends 0 with nothing on stderr.
function M.wait_publishers(list)
  for _, p in ipairs(list) do
    local rc, out = H.wait_exit(p, 30), H.output(p)
    assert(rc == 0 and out == "", fmt("%s ended %s: %s", p.cmd, tostring(rc), out))
  end
end

--- Start scripts/live.lua recording every stream to
--- `dir`/APP/NAME.mp4 (record_format "mp4"); returns the server (H.luartmp_start).
function M.record_server(dir)
  local script = H.tmpname("record_mp4.lua")
  H.write_file(script, "local live = require 'live'\nlive.start{ record_dir = arg[1], record_format = 'mp4' }\n")
  return H.luartmp_start{ script = script, args = { dir } }
end

--- ffprobe's duration of `file` (the format's, in seconds).
function M.duration(file)
  local _, out = H.run("ffprobe -v error -show_entries format=duration -of csv=p=0 " .. q(file), 30)
  return tonumber(out:match("[%d.]+"))
end

--- ffprobe's packets of stream `index` of `file`: { dts, pts, size, key, hash (sha256 hex) }.
function M.packets(file, index)
  local _, out = H.run(fmt("ffprobe -v error -select_streams %d -show_packets -show_data_hash SHA256 " ..
    "-show_entries packet=dts,pts,flags,size,data_hash -of compact %s", index, q(file)), 60)
  local lines = {}
  for line in out:gmatch("[^\n]+") do         -- side data continues a packet on lines of its own
    if line:match("^packet|") then lines[#lines + 1] = line
    elseif #lines > 0 then lines[#lines] = lines[#lines] .. line end
  end
  local list = {}
  for _, line in ipairs(lines) do
    local p = {}
    for k, v in line:gmatch("|([%w_]+)=([^|]*)") do p[k] = v end
    list[#list + 1] = { dts = tonumber(p.dts), pts = tonumber(p.pts), size = tonumber(p.size),
                        key = p.flags:sub(1, 1) == "K", hash = p.data_hash:match("SHA256:(%x+)") }
  end
  return list
end

--- ffprobe's streams of `file`, in order: { codec, kind, frames (decoded, -count_frames),
--- packets (-count_packets), width, height, sample_rate, channels, extradata (bytes or nil) }.
function M.streams(file)
  local _, out = H.run("ffprobe -v error -count_frames -count_packets -show_streams -show_data " .. q(file), 120)
  local list, s = {}, nil
  local in_extra
  for line in out:gmatch("[^\n]*") do
    if line == "[STREAM]" then
      s = { extra = {} }
      list[#list + 1] = s
    elseif line == "[/STREAM]" then
      s.extradata = #s.extra > 0 and table.concat(s.extra) or nil
      s = nil
    elseif s then
      local k, v = line:match("^([%w_]+)=(.*)$")
      if k then
        in_extra = k == "extradata"
        if k == "codec_name" then s.codec = v
        elseif k == "codec_type" then s.kind = v
        elseif k == "nb_read_frames" then s.frames = tonumber(v)
        elseif k == "nb_read_packets" then s.packets = tonumber(v)
        elseif k == "width" then s.width = tonumber(v)
        elseif k == "height" then s.height = tonumber(v)
        elseif k == "sample_rate" then s.sample_rate = tonumber(v)
        elseif k == "channels" then s.channels = tonumber(v)
        end
      elseif in_extra then
        -- "00000010: 0000 00    ...   ..." : the hex columns are 11 .. 50
        local hex = line:match("^%x%x%x%x%x%x%x%x: ") and line:sub(11, 50):gsub(" ", "")
        if hex then s.extra[#s.extra + 1] = (hex:gsub("%x%x", function(h)
          return string.char(tonumber(h, 16)) end)) end
      end
    end
  end
  return list
end

return M
