-- play.lua: play an RTMP stream into an FLV or MP4 file, or to stdout.
--
--   luartmp scripts/client/play.lua [options] rtmp://host[:port]/app/name [out.flv | out.mp4 | -]
--   luartmp scripts/client/play.lua rtmp://127.0.0.1/live/cam - | ffplay -
--
-- Writes every audio, video and data message of the stream as an FLV tag
-- (to a name ending in .mp4: as fragmented MP4, one track per kind and
-- track id), timestamps shifted so the file starts at 0. Ends with a
-- complete file when the stream ends (StreamEOF, unpublish, Play.Stop),
-- the connection closes, SIGINT/SIGTERM arrives, --duration/--frames is
-- reached, or no media came for --idle seconds.  Announces Enhanced RTMP
-- in connect when writing MP4 or with --enhanced (rtmp.caps).
-- See docs/CLIENT_SCRIPTS.md.

local rtmp = require "rtmp"
local cli = require "client.cli"

local fmt = string.format

local cmd = require("rtmp.argv").new{
  usage = [[
usage: luartmp scripts/client/play.lua [options] rtmp://host[:port]/app/name [out.flv | out.mp4 | -]

Plays a stream and writes it as FLV to out.flv, as fragmented MP4 to a
name ending in .mp4 (Enhanced RTMP codecs and multitrack too), or as FLV
to stdout with "-" (the default), e.g. for "| ffplay -".  An rtmps:// URL goes over TLS;
TLS options go to luartmp, before the script: luartmp --tls-ca FILE (or
--tls-insecure) scripts/client/play.lua ... (docs/TLS.md).

options:
]],
  options = {
    { "duration", "number", arg = "S", help = "stop after S seconds of media (by the stream's timestamps)" },
    { "frames", "integer", arg = "N", help = "stop after N video frames" },
    { "timeout", "number", arg = "S", help = "give up when connect, createStream or play get no answer\n" ..
                                             "within S seconds (default 10), or when no media comes for\n" ..
                                             "S seconds once playing (default: wait as long as it takes)" },
    { "idle", "number", arg = "S", help = "end (exit 0) when no media came for S seconds once it\n" ..
                                          "began: for servers that do not say when a stream ends" },
    { "enhanced", help = "announce Enhanced RTMP in connect (every FourCC luartmp can\n" ..
                         "write; implied by an .mp4 output)" },
    { "progress", help = "show the progress line even when stderr is not a terminal" },
  },
  after = [[

A progress line (bytes received, media time, bitrate) is shown on stderr
when it is a terminal.  Exit status: 0 the stream was written (it ended, a
limit was reached, --idle passed, or the connection closed after media),
1 failed (the reason on stderr), 2 bad usage.
]],
}

local o, pos = cmd:run(arg)
if #pos < 1 then cmd:fail("need a URL") end
if #pos > 2 then cmd:fail("too many arguments") end
local target, uerr = cli.stream_url(pos[1])
if not target then cmd:fail(uerr) end
local out_path = pos[2] or "-"
if out_path == "-" and rtmp.isatty(1) then
  cmd:fail("stdout is a terminal: give a file name, or pipe the output (| ffplay -)")
end

-- The output: rtmp.flv.create for a file (duration and header patched on
-- close); for stdout, which cannot seek back, the tags are written here,
-- the header announcing audio and video.
local function stdout_writer()
  local w, out = { bytes = 0 }, io.stdout
  local function put(s)
    local ok, err = out:write(s)
    if not ok then return nil, "stdout: " .. tostring(err) end
    w.bytes = w.bytes + #s
    return true
  end
  local header_ok, herr = put("FLV\1\5\0\0\0\9\0\0\0\0")
  if not header_ok then return nil, herr end
  function w:write(m)
    local payload = m.payload
    if m.type == 18 and payload:sub(1, 16) == "\2\0\13@setDataFrame" then
      payload = payload:sub(17)        -- stored as onMetaData, as FLV files have it
    end
    local ts = m.timestamp
    local ok, err = put(string.pack(">B I3 I3 B I3", m.type, #payload, ts & 0xFFFFFF, (ts >> 24) & 0xFF, 0)
      .. payload .. string.pack(">I4", #payload + 11))
    if not ok then return nil, err end
    out:flush()
    return true
  end
  function w:close() out:flush() return true end
  return w
end

-- A name ending in .mp4 gets fragmented MP4 (rtmp.mp4.writer: a fragment
-- at each keyframe, Enhanced RTMP codecs and multitrack as MP4 tracks).
local MP4_OUT = out_path ~= "-" and out_path:lower():match("%.mp4$") ~= nil
local writer, err
if out_path == "-" then
  writer, err = stdout_writer()
elseif MP4_OUT then
  writer, err = rtmp.mp4.writer(out_path)
else
  writer, err = rtmp.flv.create(out_path)
end
if not writer then cli.fail(fmt("%s: %s", out_path, err)) end

local base                           -- the stream's first media timestamp, once known

-- Fail: close the output; a file that got no media is removed.
local function abort(msg)
  writer:close()
  if out_path ~= "-" and not base then os.remove(out_path) end
  cli.fail(msg)
end

-- Enhanced RTMP in connect (rtmp.caps): an MP4 can hold every codec the
-- writer knows (CanDecode: it reads their configuration); an FLV stores
-- any message as it came (CanForward).  Without, the server may treat
-- this player as a legacy one (live.config.legacy_players).
local caps
if MP4_OUT then caps = { decode = true } elseif o.enhanced then caps = { forward = true } end

local nc
nc, err = rtmp.connect(target.url, { app = target.app, timeout = o.timeout or 10, caps = caps })
if not nc then abort(fmt("%s: %s", pos[1], err)) end
local ns
ns, err = nc:create_stream()
if not ns then abort(fmt("%s: createStream: %s", pos[1], err)) end
local ok
ok, err = ns:play(target.name)
if not ok then abort(fmt("%s: %s", pos[1], err)) end

local media_ms, frames = 0, 0
local bytes0, bytes = nc.conn.bytes_in, 0
local progress = cli.progress("play", function()
  if not nc.conn.closed then bytes = nc.conn.bytes_in - bytes0 end   -- else the last count
  return bytes, media_ms
end, o.progress)

-- Timestamps: the first audio or video frame that is not a sequence header
-- becomes 0; what comes before it (metadata, sequence headers) is written
-- at 0, and nothing goes below 0.
local limit_ms = o.duration and o.duration * 1000
local why                            -- why the loop ended
local pending = {}                   -- messages before base is known

local function write(m, ts)
  if ts ~= m.timestamp then
    m = rtmp.message({ type = m.type, timestamp = ts, stream = 0 }, m.payload)
  end
  local wok, werr = writer:write(m)
  if not wok then
    progress.stop()
    if out_path == "-" and tostring(werr):find("Broken pipe", 1, true) then
      -- the reader (ffplay ...) went away: the end, not a failure
      nc:close()
      os.exit(0)
    end
    cli.fail(out_path == "-" and werr or fmt("%s: %s", out_path, werr))
  end
end

while true do
  -- once media came, --idle ends the stream quietly where --timeout fails
  local wait, quiet = o.timeout, false
  if base and o.idle and (not wait or o.idle < wait) then wait, quiet = o.idle, true end
  local msg, rerr = ns:read(wait)
  if not msg then
    why = (rerr == "timeout" and quiet) and "idle" or rerr
    break
  end
  local t = msg.type
  -- |RtmpSampleAccess is the server's permission note, not stream content
  if t == 8 or t == 9 or (t == 18 and msg.name ~= "|RtmpSampleAccess") then
    if not base and (t == 8 or t == 9) and not msg.sequence_header then
      base = msg.timestamp
      for _, m in ipairs(pending) do write(m, 0) end
      pending = nil
    end
    if not base then
      pending[#pending + 1] = msg
    else
      local ts = math.max(0, msg.timestamp - base)
      if limit_ms and ts >= limit_ms and (t == 8 or t == 9) then
        why = "duration"
        break
      end
      write(msg, ts)
      media_ms = math.max(media_ms, ts)
      if t == 9 and not msg.sequence_header then
        frames = frames + 1
        if o.frames and frames >= o.frames then
          why = "frames"
          break
        end
      end
    end
  end
end

-- Write what is held back (a stream with headers but no frames).
for _, m in ipairs(pending or {}) do write(m, 0) end
progress.stop()
if why == "timeout" then
  abort(fmt("%s: no media for %s s", pos[1], tostring(o.timeout)))
elseif why == "closed" and not base then
  abort(fmt("%s: connection closed before any media", pos[1]))
elseif why == "eof" and not base then
  abort(fmt("%s: the stream ended before any media", pos[1]))
elseif why ~= "eof" and why ~= "closed" and why ~= "duration" and why ~= "frames" and why ~= "idle" then
  abort(fmt("%s: %s", pos[1], tostring(why)))
end
local cok, cerr = writer:close()
if not cok then cli.fail(fmt("%s: %s", out_path, cerr)) end
if not nc.conn.closed then
  ns:close()
  nc:close()
end
os.exit(0)
