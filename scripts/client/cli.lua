-- client/cli.lua: what the command-line clients (publish.lua, play.lua)
-- share: the stream URL, the progress line, exiting.  Their options are
-- parsed by rtmp.argv (usage errors: a message and a hint on stderr,
-- exit 2); runtime failures print one line and exit 1 (cli.fail).

local rtmp = require "rtmp"
local argv = require "rtmp.argv"

local fmt = string.format

local _M = {}

-- The engine's own log lines (a connection closing, ...) would repeat what
-- the one-line error says: below "error" only when asked for with
-- luartmp --log-level (any level but the default, info).
if rtmp.log.level() == "info" then rtmp.log.level("error") end

-- The script's name for messages ("publish.lua").
local progname = argv.progname
_M.progname = progname

--- Split a stream URL rtmp[s]://host[:port]/app/name into what rtmp.connect
--- and publish/play take: { url (rtmp[s]://host:port/app), app, name }, or
--- nil, err. The app is the first path segment, the name the rest
--- (FFmpeg's convention, as rtmp.parse_url).
function _M.stream_url(url)
  local u, err = rtmp.parse_url(url)
  if not u then return nil, fmt("bad URL '%s': %s", url, err) end
  if u.app == "" or u.path == "" then
    return nil, fmt("bad URL '%s' (want rtmp[s]://host[:port]/app/name: no stream name)", url)
  end
  return { url = u.tc_url, app = u.app, name = u.path, host = u.host, port = u.port }
end

-- "1.5 MB", "830 kB", "512 B"
local function size(n)
  if n >= 1e9 then return fmt("%.2f GB", n / 1e9) end
  if n >= 1e6 then return fmt("%.1f MB", n / 1e6) end
  if n >= 1e3 then return fmt("%.0f kB", n / 1e3) end
  return fmt("%d B", n)
end

-- media time in ms -> "00:01:02.345"
local function clock(ms)
  ms = math.max(0, math.floor(ms))
  return fmt("%02d:%02d:%02d.%03d", ms // 3600000, ms // 60000 % 60, ms // 1000 % 60, ms % 1000)
end
_M.clock = clock

--- A progress line on stderr, rewritten in place every `every` seconds
--- (default 0.5) from `sample()` -> bytes, media_ms. Shown when stderr is
--- a terminal, or when `force`. Returns { stop() } (stop ends the line).
--- The bitrate is measured over the last interval (the final line: the
--- whole run).
function _M.progress(label, sample, force, every)
  local p = { active = force or rtmp.isatty(2) }
  every = every or 0.5
  if not p.active then
    function p.stop() end
    function p.abandon() end
    return p
  end
  local tty = rtmp.isatty(2)
  local start = rtmp.now()
  local last_bytes, last_t, shown = 0, start, false
  local function show(final)
    local bytes, ms = sample()
    local now = rtmp.now()
    -- the last interval's bitrate; on the final line, the whole run's
    local dt = final and now - start or now - last_t
    local rate = dt > 0 and (bytes - (final and 0 or last_bytes)) * 8 / dt / 1000 or 0
    last_bytes, last_t = bytes, now
    local line = fmt("%s %s  %s  %.0f kbit/s", label, size(bytes), clock(ms), rate)
    -- On a terminal the line is rewritten in place; elsewhere (--progress
    -- into a file or pipe) each update is its own line.
    if tty then
      io.stderr:write("\r", line, "\27[K", final and "\n" or "")
    else
      io.stderr:write(line, "\n")
    end
    io.stderr:flush()
    shown = true
  end
  local timer = rtmp.timer(every, function() show(false) end, every)
  -- end the line without touching the loop (when interrupted)
  function p.abandon()
    if shown and tty then io.stderr:write("\n") end
    shown = false
  end
  function p.stop()
    if timer then
      timer:stop()
      timer = nil
      show(true)
    end
  end
  p.shown = function() return shown end
  return p
end

--- Run fn() when the program ends while the main script still waits on
--- the network: SIGINT or SIGTERM stopped the loop (luartmp closes every
--- connection, then the Lua state; fn runs as the state closes and may
--- print and os.exit). Not after the script ended or failed.
function _M.on_interrupt(fn)
  local main = debug.getregistry()["rtmp.main"]
  _M.sentinel = setmetatable({}, { __gc = function()
    if main and coroutine.status(main) == "suspended" then fn() end
  end })
end

--- One line "<prog>: <msg>" on stderr (newlines in msg flattened), exit 1.
function _M.fail(msg)
  msg = tostring(msg):gsub("[\r\n]+", " ")
  io.stderr:write(fmt("%s: %s\n", progname(), msg))
  io.stderr:flush()
  os.exit(1)
end

return _M
