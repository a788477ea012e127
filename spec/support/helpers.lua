-- Helpers for the integration specs (spec/interop, spec/badinput).
--
-- busted 2 has no sockets and no async: everything here works through
-- processes (sh, coreutils, the real peers) and polling with deadlines.
-- Every process a test starts is registered; `H.cleanup()` (run it in
-- after_each) stops whatever is still running, also when the test failed.
--
--   local H = require "support.helpers"
--
-- Paths are relative to the repository root (tools/test.sh runs there).

local system = require "system"

local H = {}

local fmt = string.format

--- The luartmp executable under test: $LUARTMP, else build/luartmp.
H.luartmp = os.getenv("LUARTMP") or "build/luartmp"

--- True when the specs run inside an ASan/UBSan build (LUARTMP_ASAN=1).
H.asan = os.getenv("LUARTMP_ASAN") == "1"

--- True when the servers the specs start run under valgrind
--- (tools/valgrind.sh sets LUARTMP to its wrapper).
H.valgrind = (os.getenv("LUARTMP") or ""):find("valgrind", 1, true) ~= nil

--- The FLV fixture's shape: what every comparison is measured against.
H.FIXTURE = {
  seconds = 8, fps = 25, gop = 50, width = 320, height = 240,
  frames = 200,                 -- seconds * fps
  audio_frames = 346,           -- 8 s of 44.1 kHz AAC
  video_codec = "h264", audio_codec = "aac",
  -- Frames a player may miss at the end of the stream: the last ones are
  -- in flight when the publisher closes; a correct server delivers them,
  -- but a player that tears down on the unpublish notification may not
  -- write the last one or two. More than that is a real loss. Audio: the
  -- same edge in time (2 video frames = 80 ms ~ 4 AAC frames).
  tail_slack = 2, audio_slack = 4,
}

---------------------------------------------------------------------------
-- Small utilities
---------------------------------------------------------------------------

--- A process's resident memory in KB (VmRSS), or nil once it is gone.
function H.rss_kb(pid)
  local s = H.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+) kB"))
end

--- `path` made absolute: a relative one is under the current directory
--- (the top of the tree, where tools/test.sh runs the specs).
local cwd
function H.abspath(path)
  if path:sub(1, 1) == "/" then return path end
  if not cwd then
    local p = io.popen("pwd")
    cwd = p:read("l")
    p:close()
  end
  return cwd .. "/" .. path
end

--- Quote a string for sh: 'it''s' -> 'it'\''s'.
function H.shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local q = H.shquote

--- Sleep for `seconds` (fractions allowed), without a subprocess.
function H.sleep(seconds)
  system.sleep(seconds)
end

--- Monotonic clock in seconds (for deadlines and elapsed times).
function H.now()
  return system.monotime()
end

--- Read a whole file; nil when it does not exist.
function H.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Write `data` to `path` (binary), replacing it.
function H.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

--- Size of a file in bytes, or nil when missing.
function H.file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

--- Run a shell command, wait for it; returns its exit code (number).
function H.exec(cmd)
  local ok, how, code = os.execute(cmd)
  if how == "signal" then return 128 + code end
  return code or (ok and 0 or 1)
end

--- Run `cmd` under coreutils `timeout` (SIGTERM after `timeout` seconds,
--- SIGKILL 2 s later). Returns exit code (124 on timeout) and the combined
--- stdout+stderr text.
function H.run(cmd, timeout)
  timeout = timeout or 30
  local p = assert(io.popen(fmt("timeout -k 2 %s sh -c %s 2>&1 </dev/null", timeout, q(cmd)), "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  if how == "signal" then code = 128 + code end
  return code, out
end

--- Poll `fn` until it returns a truthy value or `timeout` seconds pass.
--- Returns fn's value, or nil on timeout.
function H.wait_until(fn, timeout, interval)
  local deadline = H.now() + (timeout or 10)
  interval = interval or 0.05
  while true do
    local v = fn()
    if v then return v end
    if H.now() >= deadline then return nil end
    H.sleep(interval)
  end
end

--- Wait until the log of `srv` (H.luartmp_start, H.nginx_start) shows
--- more `event`s ("play", "publish") of stream `name` than `before`
--- (srv.count); true, or nil after `timeout` seconds (default 10).
function H.wait_event(srv, event, name, before, timeout)
  return H.wait_until(function() return srv.count(event, name) > before end, timeout or 10)
end

--- Occurrences of the plain string `needle` in `text`.
function H.count_plain(text, needle)
  local n, i = 0, 1
  while true do
    local s, e = text:find(needle, i, true)
    if not s then return n end
    n, i = n + 1, e + 1
  end
end

--- mkdir -p
function H.mkdir(path)
  assert(H.exec("mkdir -p " .. q(path)) == 0, "mkdir failed: " .. path)
  return path
end

local run_dir
--- The per-run temporary directory, $LUARTMP_TEST_DIR or
--- build/test-tmp/run-<pid>-<start time> (created on first use; left in
--- place afterwards for post-mortems; only the 5 most recent run
--- directories are kept).
function H.tmpdir()
  if not run_dir and os.getenv("LUARTMP_TEST_DIR") then
    -- chosen by tools/test.sh, which looks through it afterwards
    run_dir = H.mkdir(os.getenv("LUARTMP_TEST_DIR"))
  end
  if not run_dir then
    H.exec("ls -dt build/test-tmp/run-* 2>/dev/null | tail -n +5 | xargs -r rm -rf")
    -- busted reloads this module for every spec file (insulation), so the
    -- run is named after the process: its pid and start time (field 22 of
    -- /proc/self/stat, the 20th after the command name).
    local stat = H.read_file("/proc/self/stat") or ""
    local fields = {}
    for w in (stat:match("%) (.*)$") or ""):gmatch("%S+") do fields[#fields + 1] = w end
    run_dir = fmt("build/test-tmp/run-%s-%s", stat:match("^(%d+)") or "0",
      fields[20] or tostring(math.random(1e9)))
    H.mkdir(run_dir)
  end
  return run_dir
end

local name_seq
--- A fresh path in the run directory: <tmpdir>/<n>-<name>, n counting up
--- across the spec files of the run.
function H.tmpname(name)
  if not name_seq then
    name_seq = 0
    local p = io.popen("ls " .. q(H.tmpdir()))
    for entry in p:lines() do
      local n = tonumber(entry:match("^(%d+)%-"))
      if n and n > name_seq then name_seq = n end
    end
    p:close()
  end
  name_seq = name_seq + 1
  return fmt("%s/%03d-%s", H.tmpdir(), name_seq, name)
end

---------------------------------------------------------------------------
-- TCP ports (through /proc/net/tcp and tcp6: no sockets in busted)
---------------------------------------------------------------------------

-- Local ports in /proc/net/tcp{,6}: returns { [port] = state_hex } with
-- every socket; a port in state "0A" is listening.
local function proc_net_ports()
  local ports = {}
  for _, file in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
    local text = H.read_file(file) or ""
    for lport, st in text:gmatch("\n%s*%d+: %x+:(%x+) %x+:%x+ (%x%x)") do
      local port = tonumber(lport, 16)
      if st == "0A" or not ports[port] then ports[port] = st end
    end
  end
  return ports
end

local handed_out = {}
-- Ports 20000-31999, or this shard's slice of them ($LUARTMP_TEST_SHARD
-- "K N", set by tools/test.sh). Shards can draw the same random numbers:
-- Lua seeds math.random with the time and the Lua state's address, and
-- under ASan (busted inside the ASan luartmp) that address is the same
-- in every process; some specs also seed it with fixed numbers. Without
-- slices two shards picked the same port at the same moment (nginx:
-- "bind() ... Address already in use").
local port_lo, port_n = 20000, 12000
do
  local k, n = (os.getenv("LUARTMP_TEST_SHARD") or ""):match("^(%d+) (%d+)$")
  k, n = tonumber(k), tonumber(n)
  if k and n and n > 0 and k < n then
    port_n = port_n // n
    port_lo = port_lo + k * port_n
  end
end
--- A TCP port on 127.0.0.1 that no socket uses now (any state), chosen at
--- random below the kernel's ephemeral range (in this test shard's slice)
--- and never returned twice in one run.
function H.free_port()
  local used = proc_net_ports()
  for _ = 1, 1000 do
    local port = math.random(port_lo, port_lo + port_n - 1)
    if not used[port] and not handed_out[port] then
      handed_out[port] = true
      return port
    end
  end
  error("no free TCP port found")
end

--- True when some socket listens on `port` (IPv4 or IPv6).
function H.port_listening(port)
  return proc_net_ports()[port] == "0A"
end

--- Wait until `port` accepts connections (a listening socket exists), at
--- most `timeout` seconds. If `proc` is given and exits first, stop early.
--- Returns true, or false and a reason.
function H.wait_port(port, timeout, proc)
  local ok = H.wait_until(function()
    if H.port_listening(port) then return true end
    if proc and H.exited(proc) then return "exited" end
  end, timeout or 10)
  if ok == true then return true end
  if ok == "exited" then
    return false, fmt("%s exited (status %s) before listening on %d: %s", proc.name,
      tostring(H.exited(proc)), port, H.read_file(proc.err) or "")
  end
  return false, fmt("nothing listens on port %d after %ss", port, timeout or 10)
end

---------------------------------------------------------------------------
-- Background processes
---------------------------------------------------------------------------

local procs = {}

--- Start `cmd` (a shell command line) in the background, stdout and stderr
--- to files in the run directory, stdin from /dev/null. A wrapper shell
--- waits for it and records its exit status, so `H.exited` can report it.
--- Returns a process object { name, pid, out, err, rcfile, started }.
--- opts: name (for file names and messages), out/err (paths).
function H.spawn(cmd, opts)
  opts = opts or {}
  local name = opts.name or cmd:match("^%S+"):match("[^/]+$")
  local base = H.tmpname(name:gsub("[^%w%-_.]", "_"))
  local p = {
    name = name, cmd = cmd,
    out = opts.out or (base .. ".out"), err = opts.err or (base .. ".err"),
    rcfile = base .. ".rc", pidfile = base .. ".pid",
  }
  local wrapper = fmt("%s >%s 2>%s </dev/null & echo $! >%s.tmp && mv %s.tmp %s; wait $!; echo $? >%s",
    cmd, q(p.out), q(p.err), q(p.pidfile), q(p.pidfile), q(p.pidfile), q(p.rcfile))
  assert(H.exec(fmt("sh -c %s >/dev/null 2>&1 </dev/null &", q(wrapper))) == 0)
  local pid = H.wait_until(function()
    local s = H.read_file(p.pidfile)
    return s and tonumber(s:match("%d+"))
  end, 10)
  assert(pid, "could not start: " .. cmd)
  p.pid = pid
  p.started = H.now()
  procs[#procs + 1] = p
  return p
end

--- The exit status of a spawned process (128+N when killed by signal N),
--- or nil while it runs.
function H.exited(p)
  local s = H.read_file(p.rcfile)
  return s and tonumber(s:match("%d+"))
end

--- Wait at most `timeout` seconds for a spawned process to end; returns its
--- exit status, or nil if it is still running.
function H.wait_exit(p, timeout)
  return H.wait_until(function() return H.exited(p) end, timeout or 10)
end

--- Send a signal ("TERM", "KILL", "INT", ...) to a spawned process.
function H.signal(p, sig)
  if not H.exited(p) then
    H.exec(fmt("kill -%s %d 2>/dev/null", sig, p.pid))
  end
end

--- Stop a spawned process: SIGTERM, then SIGKILL after `grace` seconds
--- (default 5). Returns its exit status (143 for an unhandled SIGTERM,
--- 137 for SIGKILL).
function H.kill(p, grace)
  local rc = H.exited(p)
  if rc then return rc end
  H.signal(p, "TERM")
  rc = H.wait_exit(p, grace or 5)
  if rc then return rc end
  H.signal(p, "KILL")
  return H.wait_exit(p, 5) or 137
end

--- Stop every process started since the last cleanup (newest first).
--- Call from after_each so a failing test leaves nothing behind.
function H.cleanup()
  local list = procs
  procs = {}
  for i = #list, 1, -1 do
    H.kill(list[i], 3)
  end
end

--- stdout and stderr of a spawned process, as text.
function H.output(p)
  return (H.read_file(p.out) or "") .. (H.read_file(p.err) or "")
end

---------------------------------------------------------------------------
-- Media: the FLV fixture and ffprobe
---------------------------------------------------------------------------

--- Decode `file` fully with ffprobe. Returns
--- { video = { codec, width, height, frames }, audio = { codec, frames } }
--- (a missing stream is nil), or nil and ffprobe's output.
--- `frames` is ffprobe's nb_read_frames: frames actually decoded.
function H.probe(file)
  local rc, out = H.run("ffprobe -v error -count_frames " ..
    "-show_entries stream=codec_type,codec_name,width,height,nb_read_frames -of compact " .. q(file), 60)
  local info = {}
  for line in out:gmatch("[^\n]+") do
    if line:match("^stream|") then
      local s = {}
      for k, v in line:gmatch("|([%w_]+)=([^|]*)") do s[k] = v end
      local t = { codec = s.codec_name, frames = tonumber(s.nb_read_frames),
                  width = tonumber(s.width), height = tonumber(s.height) }
      if s.codec_type == "video" and not info.video then info.video = t end
      if s.codec_type == "audio" and not info.audio then info.audio = t end
    end
  end
  if rc ~= 0 and not info.video and not info.audio then return nil, out end
  info.log = out
  return info
end

--- Flags of the first video packet of `file` ("K_" for a keyframe), or nil.
function H.first_video_flags(file)
  local _, out = H.run("ffprobe -v error -select_streams v:0 -show_entries packet=flags " ..
    "-read_intervals %+#1 -of compact " .. q(file), 30)
  return out:match("packet|flags=(%S+)")
end

--- The packets of `file` in file order, as { type = "video"|"audio", hash = CRC32 of the data }.
function H.packets(file)
  local rc, out = H.run("ffprobe -v error -show_data_hash CRC32 -show_entries packet=codec_type,data_hash " ..
    "-of csv=p=0 " .. q(file), 60)
  local list = {}
  for kind, hash in out:gmatch("(%a+),CRC32:(%x+)") do list[#list + 1] = { type = kind, hash = hash } end
  assert(rc == 0 and #list > 0, "ffprobe found no packets in " .. file .. ": " .. out)
  return list
end

local fixture
--- The H.264/AAC FLV fixture (testsrc2 320x240 at 25 fps, 2 s GOP, sine
--- audio, 8 s), generated with ffmpeg once and cached in build/test-tmp;
--- checked with ffprobe once per run. Returns its path.
function H.fixture_flv()
  if fixture then return fixture end
  local F = H.FIXTURE
  local path = fmt("build/test-tmp/fixture-h264-aac-%dx%d-%dfps-g%d-%ds.flv",
    F.width, F.height, F.fps, F.gop, F.seconds)
  H.mkdir("build/test-tmp")
  if not H.file_size(path) then
    local tmp = path .. ".tmp" .. math.random(1e6)
    local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y " ..
      "-f lavfi -i testsrc2=size=%dx%d:rate=%d -f lavfi -i sine=frequency=440:sample_rate=44100 " ..
      "-t %d -c:v libx264 -preset veryfast -g %d -keyint_min %d -sc_threshold 0 -pix_fmt yuv420p " ..
      "-c:a aac -b:a 64k -f flv %s && mv %s %s",
      F.width, F.height, F.fps, F.seconds, F.gop, F.gop, q(tmp), q(tmp), q(path)), 120)
    assert(rc == 0, "ffmpeg could not make the fixture: " .. out)
  end
  local info = assert(H.probe(path))
  assert(info.video and info.video.frames == F.frames and info.audio and info.audio.codec == "aac",
    "bad fixture " .. path .. ": " .. (info.log or ""))
  fixture = path
  return path
end

---------------------------------------------------------------------------
-- Servers under test: nginx-rtmp and luartmp
---------------------------------------------------------------------------

--- Start nginx with the RTMP module on a free port (application "live",
--- chunk size 4096), config and logs in a fresh directory. Returns
--- { name = "nginx-rtmp", port, dir, proc, url(path), log(), stop() }.
--- stop() sends SIGTERM and returns exit status and the error log.
--- opts: server, live (lists of directives added to the server block and
--- to application live: notify's on_publish ..., record ...).
function H.nginx_start(opts)
  opts = opts or {}
  local port = H.free_port()
  local dir = H.mkdir(H.tmpname("nginx"))
  local adir = H.abspath(dir)
  local conf = adir .. "/nginx.conf"
  H.write_file(conf, table.concat({
    "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;",
    "daemon off;",
    "master_process off;",
    "worker_processes 1;",
    fmt("error_log %s/error.log info;", adir),
    fmt("pid %s/nginx.pid;", adir),
    "events {}",
    "rtmp {",
    "  server {",
    fmt("    listen 127.0.0.1:%d;", port),
    "    chunk_size 4096;",
    table.concat(opts.server or {}, "\n"),
    "    application live { live on; " .. table.concat(opts.live or {}, " ") .. " }",
    "  }",
    "}", "" }, "\n"))
  local proc = H.spawn(fmt("nginx -c %s -p %s/", q(conf), q(adir)), { name = "nginx" })
  local ok, why = H.wait_port(port, 10, proc)
  assert(ok, why)
  local srv = { name = "nginx-rtmp", port = port, dir = dir, proc = proc }
  function srv.url(path) return fmt("rtmp://127.0.0.1:%d/%s", port, path or "live") end
  function srv.log() return H.read_file(adir .. "/error.log") or "" end
  -- How many times the log shows `event` ("play", "publish") of stream `name`.
  function srv.count(event, name)
    return H.count_plain(srv.log(), fmt("%s: name='%s'", event, name))
  end
  function srv.stop()
    local rc = H.kill(proc, 5)
    return rc, srv.log()
  end
  srv.alive = function() return not H.exited(proc) end
  return srv
end

--- Start `$LUARTMP --listen 127.0.0.1:PORT --log-level debug SCRIPT ARGS`
--- (opts: port [a free one], script [scripts/live.lua], args {}, log_level, handshake_timeout,
--- idle_timeout, extra {options}, env: a "VAR=value ..." prefix for the
--- command), logs (stderr) to a file; waits for the
--- port. Returns { name = "luartmp", port, proc, url(path), log(), stop(), reload() }.
--- stop() sends SIGTERM and returns the exit status (0 = graceful) and the
--- log text.
function H.luartmp_start(opts)
  opts = opts or {}
  assert(H.file_size(H.luartmp), "the luartmp executable is missing: " .. H.luartmp ..
    " (run make, or set LUARTMP)")
  local port = opts.port or H.free_port()
  local cmd = { opts.env or "", q(H.luartmp), "--listen", "127.0.0.1:" .. port,
                "--log-level", opts.log_level or "debug" }
  if opts.handshake_timeout then
    cmd[#cmd + 1] = "--handshake-timeout " .. opts.handshake_timeout
  end
  if opts.idle_timeout then cmd[#cmd + 1] = "--idle-timeout " .. opts.idle_timeout end
  for _, o in ipairs(opts.extra or {}) do cmd[#cmd + 1] = q(o) end
  cmd[#cmd + 1] = q(opts.script or "scripts/live.lua")
  for _, a in ipairs(opts.args or {}) do cmd[#cmd + 1] = q(a) end
  local proc = H.spawn(table.concat(cmd, " "), { name = "luartmp" })
  local ok, why = H.wait_port(port, 10, proc)
  assert(ok, why)
  local srv = { name = "luartmp", port = port, proc = proc }
  function srv.url(path) return fmt("rtmp://127.0.0.1:%d/%s", port, path or "live") end
  function srv.log() return H.read_file(proc.err) or "" end
  -- How many times the log shows `event` ("play", "publish") of stream
  -- `name` (scripts/live.lua logs "play APP/NAME").
  function srv.count(event, name)
    return H.count_plain(srv.log(), fmt(" %s live/%s", event, name))
  end
  function srv.stop()
    local rc = H.kill(proc, 10)
    return rc, srv.log()
  end
  -- SIGHUP, then wait (up to timeout, default 5 s) for one more `want`
  -- line (default "reloaded ") in the log.
  function srv.reload(want, timeout)
    want = want or "reloaded "
    local before = H.count_plain(srv.log(), want)
    H.signal(proc, "HUP")
    assert(H.wait_until(function() return H.count_plain(srv.log(), want) > before end, timeout or 5),
      "no '" .. want .. "' after SIGHUP:\n" .. srv.log())
  end
  srv.alive = function() return not H.exited(proc) end
  return srv
end

--- A live server (H.luartmp_start, log level info) whose script runs the
--- Lua source `apply` (with `live` and the strings of `args` as `...` in
--- scope) only once srv.apply_by_reload() has made the flag file the
--- script checks and reloaded it (srv.reload): a setting turned on by a
--- reload.
function H.live_applied_on_reload(name, apply, args)
  local flag = H.tmpname(name .. "-on")
  local script = H.tmpname(name) .. ".lua"
  H.write_file(script, fmt([[
local live = require "live"
local flag = ...
local f = io.open(flag)
if f then
  f:close()
  local function apply(live, ...)
%s
  end
  apply(live, select(2, ...))
end
live.start()
]], apply))
  local list = { flag }
  for _, a in ipairs(args or {}) do list[#list + 1] = a end
  local srv = H.luartmp_start{ script = script, log_level = "info", args = list }
  function srv.apply_by_reload()
    H.write_file(flag, "")
    srv.reload("reloaded " .. script, 10)
  end
  return srv
end

--- Start the server named `kind` ("nginx-rtmp" or "luartmp").
function H.server_start(kind, opts)
  if kind == "nginx-rtmp" then return H.nginx_start(opts) end
  return H.luartmp_start(opts)
end

---------------------------------------------------------------------------
-- Peers
---------------------------------------------------------------------------

--- The ffmpeg command line that publishes `file` (default: the fixture)
--- to `url` (-c copy), in real time (-re), or as fast as it can with
--- opts.fast; over and over (-stream_loop -1) with opts.loop.
function H.ffmpeg_publish_cmd(url, file, opts)
  opts = opts or {}
  return fmt("ffmpeg -nostdin -hide_banner -v info %s%s-i %s -c copy -f flv %s", opts.fast and "" or "-re ",
    opts.loop and "-stream_loop -1 " or "", q(file or H.fixture_flv()), q(url))
end

--- Start ffmpeg publishing (H.ffmpeg_publish_cmd's options).
function H.ffmpeg_publish(url, file, opts)
  return H.spawn(H.ffmpeg_publish_cmd(url, file, opts), { name = "ffmpeg-publish" })
end

--- Start ffmpeg recording `url` into `out` (-c copy). It ends by itself
--- `rw_timeout` seconds (default 4) after the media stops, which closes
--- the FLV properly; a player started before the publisher must therefore
--- see it start within that time.
function H.ffmpeg_play(url, out, rw_timeout)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -rw_timeout %d -i %s -c copy -f flv -y %s",
    math.floor((rw_timeout or 4) * 1e6), q(url), q(out)), { name = "ffmpeg-play" })
end

--- Start ffmpeg decoding the video of `url` (to -f null), reporting its
--- decoded frames ten times a second (-progress); count them with
--- H.ffmpeg_frames(proc). It ends `rw_timeout` seconds (default 4) after
--- the media stops.
function H.ffmpeg_decode(url, rw_timeout)
  local progress = H.tmpname("ffmpeg-progress.txt")
  local p = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -rw_timeout %d -i %s -map 0:v -f null - " ..
    "-progress %s -stats_period 0.1", math.floor((rw_timeout or 4) * 1e6), q(url), q(progress)),
    { name = "ffmpeg-decode" })
  p.progress = progress
  return p
end

--- Video frames a H.ffmpeg_decode process decoded so far (its last report).
function H.ffmpeg_frames(p)
  local n = 0
  for v in (H.read_file(p.progress) or ""):gmatch("frame=(%d+)") do n = tonumber(v) end
  return n
end

--- A player's decoded frames over time: tl.sample() (call it often)
--- notes when count() grew; tl.stall(from) -> the longest time without a
--- new frame among those that end after `from` (H.now() time): seconds,
--- the last frame before it and the first after it (nil when no frame came
--- after `from`); tl.count(), the frames so far.
function H.frame_timeline(count)
  local tl, last, times = {}, 0, {}
  function tl.sample()
    local n = count()
    if n > last then last = n; times[#times + 1] = H.now() end
    return n
  end
  function tl.count() return last end
  function tl.stall(from)
    local best, a, b = nil, nil, nil
    for i = 2, #times do
      if times[i] > from and (not best or times[i] - times[i - 1] > best) then
        best, a, b = times[i] - times[i - 1], times[i - 1], times[i]
      end
    end
    return best, a, b
  end
  return tl
end

--- Start an ffmpeg (H.ffmpeg_decode, rw_timeout) and a GStreamer
--- (H.gst_play) player of `url`, each { name (label: "ffmpeg on ..."),
--- proc, tl (its H.frame_timeline) }, appended to `list` (returned; a new
--- one without it).
function H.decoders(url, label, list, rw_timeout)
  list = list or {}
  local f, g = H.ffmpeg_decode(url, rw_timeout), H.gst_play(url)
  list[#list + 1] = { name = "ffmpeg" .. label, proc = f, tl = H.frame_timeline(function() return H.ffmpeg_frames(f) end) }
  list[#list + 1] = { name = "GStreamer" .. label, proc = g, tl = H.frame_timeline(function() return H.gst_frames(g) end) }
  return list
end

--- Sample the timelines of `players` (H.decoders'): the fewest frames one
--- of them decoded since `since` (the counts of an earlier call), and the
--- counts now.
function H.fewest_frames(players, since)
  local n, counts = math.huge, {}
  for i, p in ipairs(players) do
    counts[i] = p.tl.sample()
    n = math.min(n, counts[i] - (since and since[i] or 0))
  end
  return n, counts
end

--- Start rtmpdump recording the live stream `url` into `out`.
function H.rtmpdump_play(url, out)
  return H.spawn(fmt("rtmpdump -r %s -v -o %s", q(url), q(out)), { name = "rtmpdump" })
end

--- Start GStreamer (rtmp2src ! flvdemux ! h264parse ! avdec_h264 !
--- fakesink): every decoded video frame is one "chain" line in its stdout;
--- count them with H.gst_frames(proc).
function H.gst_play(url)
  return H.spawn(fmt("gst-launch-1.0 rtmp2src location=%s ! flvdemux name=d d.video ! queue ! " ..
    "h264parse ! avdec_h264 ! fakesink silent=false sync=false -v", q(url)), { name = "gst" })
end

--- Decoded video frames a H.gst_play process printed so far.
function H.gst_frames(p)
  local n = 0
  for _ in (H.read_file(p.out) or ""):gmatch("fakesink0: last%-message = chain") do n = n + 1 end
  return n
end

--- Wait until a file stops growing: its size unchanged for `quiet` seconds
--- (default 1.5), at most `timeout` seconds. Returns the final size.
function H.wait_quiet(path, quiet, timeout)
  quiet = quiet or 1.5
  local last, since = -1, H.now()
  H.wait_until(function()
    local n = H.file_size(path) or 0
    if n ~= last then last, since = n, H.now() end
    return H.now() - since >= quiet
  end, timeout or 20, 0.1)
  return last
end

---------------------------------------------------------------------------
-- tshark
---------------------------------------------------------------------------

--- Wait until a capture started with the filter H.capture_filter(port)
--- really captures: "Capturing on" is printed before packets are taken
--- (on a loaded machine a connection made right after it was missed), so
--- UDP datagrams go to the port (nothing listens for UDP there; the TCP
--- decoders ignore them) until the file grows. True, or nil and a reason.
function H.capture_ready(proc, file, port)
  local ok = H.wait_until(function()
    return (H.read_file(proc.err) or ""):find("Capturing on", 1, true) or H.exited(proc)
  end, 20)
  if not ok or H.exited(proc) then return nil, "capture did not start: " .. H.output(proc) end
  local size0 = H.file_size(file) or 0
  ok = H.wait_until(function()
    H.exec(fmt("bash -c 'echo ready > /dev/udp/127.0.0.1/%d' 2>/dev/null", port))
    return (H.file_size(file) or 0) > size0
  end, 20, 0.2)
  if not ok then return nil, "the capture took no packet: " .. H.output(proc) end
  return true
end

--- The capture filter for a port: its TCP traffic, and the UDP datagrams
--- H.capture_ready sends.
function H.capture_filter(port)
  return fmt("tcp port %d or udp port %d", port, port)
end

--- Start a capture on `lo` of `tcp port PORT` into a pcapng in the run
--- directory; returns once the capture takes packets (H.capture_ready).
--- Returns { proc, file, port, stop() }; stop() ends it cleanly (SIGTERM)
--- and waits for the file to be complete.
function H.tshark_start(port)
  local file = H.tmpname(fmt("capture-%d.pcapng", port))
  local proc = H.spawn(fmt("tshark -B 64 -i lo -f %s -w %s", q(H.capture_filter(port)), q(file)),
    { name = "tshark" })
  assert(H.capture_ready(proc, file, port))
  local cap = { proc = proc, file = file, port = port }
  function cap.stop()
    -- tshark and its dumpcap child flush and close the file on SIGTERM.
    local rc = H.kill(proc, 10)
    return rc
  end
  return cap
end

--- Decode a capture as RTMP (tcp.port==PORT as rtmpt). Returns
--- { frames (packets decoded as RTMP), malformed (malformed packets or
--- expert errors), strings (set of every AMF string seen), types (set of
--- RTMP message type ids), errors (the offending packets' summary lines) }.
--- Unless opts.agree is false (say why at the call), the capture is also
--- checked with support/agree.lua: our decoder lists the same messages.
function H.tshark_decode(file, port, opts)
  if not (opts and opts.agree == false) then
    require("support.agree").check(file)
  end
  local base = fmt("tshark -r %s -d tcp.port==%d,rtmpt ", q(file), port)
  local res = { strings = {}, types = {}, frames = 0, malformed = 0 }
  local _, bad = H.run(base .. "-Y '_ws.malformed || _ws.expert.severity == error' 2>/dev/null", 60)
  res.errors = {}
  for line in bad:gmatch("[^\n]+") do
    res.errors[#res.errors + 1] = line
  end
  res.malformed = #res.errors
  local rc, out = H.run(base .. "-Y rtmpt -T fields -E separator=/t -e rtmpt.header.typeid " ..
    "-e amf.string 2>/dev/null", 60)
  assert(rc == 0, "tshark -r failed: " .. out)
  for line in out:gmatch("[^\n]+") do
    res.frames = res.frames + 1
    local types, strings = line:match("^([^\t]*)\t?(.*)$")
    for t in (types or ""):gmatch("[^,]+") do res.types[tonumber(t)] = true end
    -- AMF strings may contain commas (flashVer "LNX 9,0,124,2"); keys and
    -- command names do not, which is all the specs look for.
    for s in (strings or ""):gmatch("[^,]+") do res.strings[s] = true end
  end
  return res
end

---------------------------------------------------------------------------
-- Raw bytes to a server (bash's /dev/tcp: no netcat needed)
---------------------------------------------------------------------------

--- A plain (version 3, non-digest) C0+C1: C1 is time 0, four zero bytes,
--- then 1528 pseudo-random bytes.
function H.plain_c0c1()
  local t = { "\3", string.pack(">I4I4", 0, 0) }
  for i = 1, 1528 // 8 do t[#t + 1] = string.pack("<I8", (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) end
  return table.concat(t)
end

--- Send raw bytes to 127.0.0.1:`port` and read what the server sends back
--- until it closes the connection or `wait` seconds pass (default 3). Our
--- side stays open (and silent) after sending, so only the server can end
--- the exchange early.
--- opts.handshake = true first runs a plain handshake (C0+C1, read S0+S1,
--- send C2 = S1, read S2), then sends `data`.
--- Returns { connected, closed (the server closed within the time),
--- elapsed (seconds from connecting to the end), lport (our local port, to
--- find the connection in the server's log), bytes and received (what came
--- back after the handshake), handshake_ok }.
function H.raw_send(port, data, opts)
  opts = opts or {}
  local wait = opts.wait or 3
  local infile = H.tmpname("raw.in")
  local outfile = H.tmpname("raw.out")
  local hsdir = H.tmpname("raw.hs")
  H.write_file(infile, data)
  local hs = ""
  if opts.handshake then
    H.write_file(hsdir .. ".c0c1", H.plain_c0c1())
    -- head -c reads no more than asked, so S2 and what follows stay unread.
    hs = string.format([[
cat %s >&3
head -c 1537 <&3 >%s.s0s1
[ "$(wc -c <%s.s0s1)" -eq 1537 ] || { echo "hs=short"; exit 98; }
tail -c 1536 %s.s0s1 >&3
head -c 1536 <&3 >%s.s2
[ "$(wc -c <%s.s2)" -eq 1536 ] || { echo "hs=short"; exit 98; }
echo "hs=ok"
]], q(hsdir .. ".c0c1"), q(hsdir), q(hsdir), q(hsdir), q(hsdir), q(hsdir))
  end
  -- Our local port: the inode of fd 3, looked up in /proc/net/tcp.
  -- The reader (timeout cat) runs in the background while the writer sends
  -- the file; then the shell waits for the reader, keeping fd 3 open: cat
  -- ends with status 0 when the server closes, 124 when `wait` runs out.
  local script = string.format([[
exec 3<>/dev/tcp/127.0.0.1/%d || exit 99
ino=$(readlink /proc/$$/fd/3); ino=${ino#socket:[}; ino=${ino%%]}
echo "lport=$(awk -v i="$ino" '$10 == i { split($2, a, ":"); print a[2] }' /proc/net/tcp)"
%s
timeout %s cat <&3 >%s & r=$!
cat %s >&3 2>/dev/null
wait $r; echo "rc=$?"]], port, hs, wait, q(outfile), q(infile))
  local t0 = H.now()
  local rc, out = H.run("bash -c " .. q(script), wait + 20)
  local elapsed = H.now() - t0
  local cat_rc = tonumber(out:match("rc=(%d+)"))
  local lport = out:match("lport=(%x+)")
  return {
    rc = rc, out = out, elapsed = elapsed,
    connected = rc ~= 99,
    handshake_ok = out:find("hs=ok", 1, true) ~= nil,
    closed = cat_rc == 0,
    lport = lport and tonumber(lport, 16),
    bytes = H.file_size(outfile) or 0,
    received = H.read_file(outfile) or "",
  }
end

--- One RTMP chunk with a type 0 header on chunk stream `csid` (2..63):
--- timestamp, declared message length `length`, message type, message
--- stream id, followed by `body` (which may be shorter than declared).
function H.chunk_fmt0(csid, timestamp, length, mtype, stream, body)
  return string.pack(">B I3 I3 B <I4", csid, timestamp, length, mtype, stream) .. (body or "")
end

--- AMF0 encoding of a few values (string, number, boolean, nil as null),
--- enough to build commands by hand, independent of the code under test.
function H.amf0(...)
  local t = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" then t[#t + 1] = string.pack(">B s2", 2, v)
    elseif type(v) == "number" then t[#t + 1] = string.pack(">B d", 0, v)
    elseif type(v) == "boolean" then t[#t + 1] = string.pack(">B B", 1, v and 1 or 0)
    elseif v == nil then t[#t + 1] = "\5"
    else error("H.amf0: unsupported value " .. type(v), 2) end
  end
  return table.concat(t)
end

return H
