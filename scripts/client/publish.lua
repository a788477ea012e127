-- publish.lua: publish an FLV or MP4 file to an RTMP server.
--
--   luartmp scripts/client/publish.lua [options] file.flv|file.mp4 rtmp://host[:port]/app/name
--
-- Sends the file's tags (an MP4: its samples as RTMP messages, rtmp.mp4:
-- legacy headers for H.264, AAC, MP3, Enhanced RTMP for the rest, several
-- tracks of a kind as multitrack messages) in real time (each at its
-- timestamp, measured on the loop's clock, as ffmpeg -re does), or as
-- fast as the connection takes them (--fast). Exits 0 once the whole
-- file (every loop) is sent and the stream is closed; otherwise one line
-- on stderr and exit 1.
-- See docs/CLIENT_SCRIPTS.md.

local rtmp = require "rtmp"
local cli = require "client.cli"

local fmt = string.format

local cmd = require("rtmp.argv").new{
  usage = [[
usage: luartmp scripts/client/publish.lua [options] file.flv rtmp://host[:port]/app/name
       luartmp scripts/client/publish.lua [options] file.mp4 rtmp://host[:port]/app/name

Publishes an FLV file (H.264/AAC or any codec FLV carries) or an MP4
(H.264, HEVC, AV1, VP9, AAC, Opus, FLAC, AC-3, E-AC-3, MP3; Enhanced RTMP
where the codec needs it) to an RTMP server, in real time by default.
An rtmps:// URL goes over TLS; TLS options go to luartmp, before the
script: luartmp --tls-ca FILE (or --tls-insecure)
scripts/client/publish.lua ... (docs/TLS.md).

options:
]],
  options = {
    { "fast", help = "send as fast as the connection takes it (no pacing)" },
    { "loop", "integer", arg = "N", help = "send the file N times in all, timestamps continuing\n" ..
                                          "(0 = loop until interrupted; default 1)" },
    { "type", { "live", "record", "append" }, arg = "TYPE",
      help = "publishing type: live (default), record or append" },
    { "timeout", "number", arg = "S", help = "give up when the server has not answered connect,\n" ..
                                             "createStream or publish within S seconds (default 10)" },
    { "progress", help = "show the progress line even when stderr is not a terminal" },
    { "enhanced", help = "an MP4's H.264, AAC and MP3 in Enhanced RTMP headers too\n" ..
                         "(default: the legacy ones every server knows)" },
  },
  after = [[

A progress line (bytes sent, media time, bitrate) is shown on stderr when
it is a terminal.  Exit status: 0 published, 1 failed (the reason on
stderr), 2 bad usage.
]],
}

local o, pos = cmd:run(arg)
if #pos ~= 2 then
  cmd:fail(#pos < 2 and "need a file and a URL" or "too many arguments")
end
local path = pos[1]
local target, uerr = cli.stream_url(pos[2])
if not target then cmd:fail(uerr) end
local loops = o.loop or 1
local pub_type = o.type or "live"

-- Output queued on the connection beyond this waits (--fast, or a slow
-- link): the engine closes a connection whose queue passes max_output.
local MAX_PENDING = 1 << 20

-- "path: reason" (the reader's messages may name the file already)
local function file_error(e)
  e = tostring(e)
  if e:sub(1, #path + 1) == path .. ":" then return e end
  return path .. ": " .. e
end

-- The file: an MP4 (by its ftyp box) is read with rtmp.mp4, anything
-- else as FLV.  Both give message objects through :read().
local function is_mp4()
  local f = io.open(path, "rb")
  local head = f and f:read(8) or ""
  if f then f:close() end
  return head:sub(5, 8) == "ftyp"
end
local MP4 = is_mp4()

local function open_file()
  if not MP4 then return rtmp.flv.open(path) end
  local r, oerr = rtmp.mp4.open(path)
  if not r then return nil, oerr end
  local next_message = r:messages{ enhanced = o.enhanced }
  return { tracks = r.tracks, read = function() return next_message() end, close = function() r:close() end }
end

local reader, err = open_file()
if not reader then cli.fail(file_error(err)) end

-- An MP4's tracks RTMP cannot carry are said once; the codecs it sends
-- are announced in connect (Enhanced RTMP: fourCcList and the info maps,
-- CanEncode, and capsEx; rtmp.caps).
local fourccs = {}
if MP4 then
  local seen = {}
  for _, t in ipairs(reader.tracks) do
    if not t.codec then
      io.stderr:write(fmt("%s: %s: %s track %d (%s) is not sent: RTMP cannot carry it\n", cli.progname(), path,
        t.kind, t.id, t.entry))
    elseif not seen[t.codec] then
      seen[t.codec] = true
      fourccs[#fourccs + 1] = t.codec
    end
  end
  if #fourccs == 0 then cli.fail(fmt("%s: no audio or video track RTMP can carry", path)) end
end

local media_ms = 0                   -- the highest timestamp sent
local progress                       -- the progress line, once publishing

-- Interrupted (SIGINT/SIGTERM): with --loop 0 that is the normal end;
-- otherwise the file was not sent whole.
cli.on_interrupt(function()
  if progress then progress.abandon() end
  if loops == 0 then os.exit(0) end
  io.stderr:write(fmt("%s: interrupted at %s of media\n", cli.progname(), cli.clock(media_ms)))
  os.exit(1)
end)

local nc
nc, err = rtmp.connect(target.url, { app = target.app, timeout = o.timeout or 10,
  flash_ver = "FMLE/3.0 (compatible; luartmp)", caps = MP4 and { encode = fourccs } or nil })
if not nc then cli.fail(fmt("%s: %s", pos[2], err)) end
local ns
ns, err = nc:create_stream()
if not ns then cli.fail(fmt("%s: createStream: %s", pos[2], err)) end
local ok
ok, err = ns:publish(target.name, pub_type)
if not ok then cli.fail(fmt("%s: %s", pos[2], err)) end

local bytes0, bytes = nc.conn.bytes_out, 0
progress = cli.progress("publish", function()
  if not nc.conn.closed then bytes = nc.conn.bytes_out - bytes0 end   -- else the last count
  return bytes, media_ms
end, o.progress)

local function failed(msg)
  progress.stop()
  cli.fail(msg)
end

-- Pacing: the tag with timestamp ts is due at t0 + (ts - ts0) / 1000.
local t0, ts0

-- Wait until the connection takes more (bounded queue), then until the
-- message is due (unless --fast).
local function wait_for(ts)
  while not nc.conn.closed and nc.conn.pending > MAX_PENDING do rtmp.sleep(0.005) end
  if o.fast then return end
  if not t0 then t0, ts0 = rtmp.now(), ts end
  local wait = t0 + (ts - ts0) / 1000 - rtmp.now()
  if wait > 0.001 then rtmp.sleep(wait) end
end

-- Loops: the next pass starts one frame interval after the last timestamp
-- of this one. Metadata goes once; a sequence header is sent again only
-- when it differs from the last one sent of its type.
local offset = 0                     -- added to the file's timestamps this pass
local last_seq = {}                  -- [type] = payload of the last sequence header sent
local meta_sent = false
local pass = 1
local first_ts, max_ts               -- this pass, file timestamps
local v_first, v_last, v_count       -- video frames of pass 1, for the frame interval

while true do
  local msg, rerr = reader:read()
  if not msg then
    if rerr then failed(file_error(rerr)) end
    reader:close()
    if not first_ts then failed(fmt("%s: no audio, video or data tag", path)) end
    if loops ~= 0 and pass >= loops then break end
    -- the gap to the next pass: the mean video frame interval, else 40 ms
    local gap = 40
    if v_count and v_count > 1 and v_last > v_first then
      gap = math.max(1, (v_last - v_first) // (v_count - 1))
    end
    offset = offset + (max_ts - first_ts) + gap
    pass, first_ts, max_ts = pass + 1, nil, nil
    reader, rerr = open_file()
    if not reader then failed(file_error(rerr)) end
  elseif msg.type == 8 or msg.type == 9 or msg.type == 18 then
    local ts = msg.timestamp
    first_ts = first_ts and math.min(first_ts, ts) or ts
    max_ts = max_ts and math.max(max_ts, ts) or ts
    if pass == 1 and msg.type == 9 and not msg.sequence_header then
      v_first = v_first or ts
      v_last, v_count = ts, (v_count or 0) + 1
    end
    local send = true
    if msg.type == 18 and msg.name == "onMetaData" then
      send = not meta_sent
      meta_sent = true
    elseif msg.sequence_header then
      local payload = msg.payload
      send = last_seq[msg.type] ~= payload
      last_seq[msg.type] = payload
    end
    if send then
      local out_ts = ts + offset
      if offset ~= 0 then
        msg = { type = msg.type, timestamp = out_ts & 0xFFFFFFFF, payload = msg.payload }
      end
      wait_for(out_ts)
      local sok, serr = ns:send(msg)
      if not sok then failed(fmt("%s: connection %s", pos[2], serr)) end
      media_ms = math.max(media_ms, out_ts)
    end
  end
end

-- Let the queue drain before closing, so the server gets the whole file.
local deadline = rtmp.now() + 10
while not nc.conn.closed and nc.conn.pending > 0 and rtmp.now() < deadline do rtmp.sleep(0.01) end
if nc.conn.closed then failed(fmt("%s: connection closed before the end", pos[2])) end
if nc.conn.pending > 0 then
  failed(fmt("%s: the server took no more for 10 s (%d bytes unsent)", pos[2], nc.conn.pending))
end
progress.stop()
ns:close()
nc:close()
os.exit(0)
