-- record.lua: the live server's recorder.  A stream published with type
-- "record" or "append" is written to <record_dir>/<app>/<name>.flv while
-- live.config.record_dir is set (nil or false: recording off, the
-- default), and the file is closed when the publisher stops.  With
-- live.config.record_format = "mp4" (default "flv") the file is
-- <name>.mp4, fragmented MP4 (rtmp.mp4.writer): what an Enhanced RTMP
-- stream holds (HEVC, AV1, VP9, Opus, FLAC, AC-3, E-AC-3, multitrack) in
-- a file ffprobe and browsers read.
--
--   local live = require "live"
--   live.config.record_dir = "/var/lib/luartmp"
--   live.config.record_format = "mp4"      -- or live.start{ record_format = "mp4" }
--   live.start()
--
-- "record" starts a new file (replacing an old one), "append" continues
-- an existing FLV after its last tag (or starts it); an MP4 is not
-- appended to: "append" replaces it as "record" does (logged).  The file begins
-- with what a decoder needs first: the metadata and sequence headers the
-- publisher sends at its start, then video from its first keyframe.
-- Timestamps are moved so the recording starts at 0.
--
-- scripts/live.lua attaches it (record.attach(live)): it follows live's
-- streams through live.watch.  A recorder alone (the format from the
-- name: .mp4 or FLV):
--   local rec = assert(record.open("out.flv", false))
--   rec:write(msg) ... rec:close()

local rtmp = require "rtmp"

local log = rtmp.log

local M = {}

local Recorder = {}
Recorder.__index = Recorder

-- A path component from a name a client chose: only letters, digits,
-- "-", "_" and "." (anything else becomes "_"), never "" or a leading
-- dot, so no name can leave the directory.
local function safe(s)
  s = tostring(s):gsub("[^%w%-_%.]", "_")
  if s == "" or s:sub(1, 1) == "." then s = "_" .. s end
  return s
end

-- The recording formats: record_format -> file extension.
local FORMATS = { flv = ".flv", mp4 = ".mp4" }

--- The file a stream of app/name is recorded into under dir (format:
--- "flv", the default, or "mp4").
function M.path(dir, app, name, format)
  return dir .. "/" .. safe(app) .. "/" .. safe(name) .. (FORMATS[format or "flv"] or error("record: no format "
    .. tostring(format), 2))
end

local function is_mp4(path) return path:lower():sub(-4) == ".mp4" end

--- Open a recorder writing to path, FLV or (a name ending in .mp4)
--- fragmented MP4 (append: continue an FLV file) -> recorder or nil, err.
--- Missing directories are created.
function M.open(path, append)
  local w, err
  if is_mp4(path) then
    w, err = rtmp.mp4.writer(path, { mkdir = true })
  else
    w, err = rtmp.flv.create(path, { append = append, mkdir = true })
  end
  if not w then return nil, err end
  return setmetatable({ w = w, path = path, base = nil, keyframe = false, messages = 0 }, Recorder)
end

-- The recording time of a message at ts: from the first media message on.
function Recorder:time(ts)
  if not self.base then return 0 end
  return ts >= self.base and ts - self.base or 0
end

--- Write one published message (audio, video, data or aggregate).
--- Returns true, or nil, err (the recorder is then closed).
function Recorder:write(msg)
  if not self.w then return nil, "closed" end
  local t = msg.type
  if t == 22 then
    local subs, err = msg:split()
    if not subs then return true end -- live.lua logs and drops it too
    for _, m in ipairs(subs) do
      local ok, werr = self:write(m)
      if not ok then return nil, werr end
    end
    return true
  end
  if t == 8 or t == 9 then
    if t == 9 and not msg.sequence_header then
      if not msg.keyframe and not self.keyframe then return true end -- wait for a keyframe
      self.keyframe = true
    end
    if not self.base then self.base = msg.timestamp end
  elseif t ~= 18 and t ~= 15 then
    return true
  end
  local ok, err, code = self.w:write(msg, self:time(msg.timestamp))
  if not ok and code ~= nil and code ~= "IO" then
    -- a message the MP4 writer cannot take (a configuration that does not
    -- parse): that message only
    log.warn("record %s: message at %d ms not recorded: %s", self.path, msg.timestamp, err)
    return true
  end
  if not ok then
    log.error("record %s: %s; recording stopped", self.path, err)
    self:close()
    return nil, err
  end
  self.messages = self.messages + 1
  return true
end

--- Close the file (patching its header and metadata) -> true or nil, err.
function Recorder:close()
  local w = self.w
  if not w then return true end
  self.w = nil
  local ok, err = w:close()
  if ok then
    log.info("record %s closed: %d bytes, %d ms", self.path, w.bytes, w.duration)
  else
    log.error("record %s: %s", self.path, err)
  end
  return ok, err
end

-- ---- the live server's streams ----

-- live stream -> its recorder, kept across reloads (a recording goes on)
local recorders = rtmp.keep("record", function() return { recorders = setmetatable({}, { __mode = "k" }) } end).recorders
local done_fns = {} -- this load's: who registers again on a reload

--- record.on_done(fn): fn(s, path) each time the recording of live stream s
--- is closed (notify.lua's on_record_done).
function M.on_done(fn) done_fns[#done_fns + 1] = fn end

--- A stream s was published with type mode ("live", "record", "append").
function M.published(live, s, mode)
  local dir = live.config.record_dir
  if not dir or (mode ~= "record" and mode ~= "append") then return end
  M.unpublished(s)
  local format = live.config.record_format or "flv"
  if not FORMATS[format] then
    log.error("record %s: record_format %q is neither \"flv\" nor \"mp4\"; not recorded", s.key, tostring(format))
    return
  end
  local path = M.path(dir, s.app, s.name, format)
  if mode == "append" and format == "mp4" then
    log.warn("record %s: an MP4 recording is not appended to: %s starts again", s.key, path)
  end
  local rec, err = M.open(path, mode == "append")
  if not rec then
    log.error("record %s: %s", s.key, err)
    return
  end
  recorders[s] = rec
  log.info("record %s to %s (%s)", s.key, path, mode)
end

--- Each message published on s.
function M.write(s, msg)
  local rec = recorders[s]
  if rec and not rec:write(msg) then recorders[s] = nil end
end

--- The publisher of s stopped.
function M.unpublished(s)
  local rec = recorders[s]
  if rec then
    recorders[s] = nil
    rec:close()
    for i = 1, #done_fns do done_fns[i](s, rec.path) end
  end
end

--- record.attach(live): record live's streams published with type
--- "record" or "append" (the publishing NetStream's type), in
--- live.config.record_format (made a setting live.start takes: "flv").
function M.attach(live)
  if live.config.record_format == nil then live.config.record_format = "flv" end
  live.watch{
    publish = function(s, source) M.published(live, s, source.type) end,
    message = M.write,
    unpublish = M.unpublished,
  }
end

return M
