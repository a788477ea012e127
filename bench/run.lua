-- bench/run.lua: the benchmark suite behind `make bench`.
--
-- Starts luartmp's live server and nginx-rtmp (worker_processes 1,
-- chunk_size 4096) one at a time on loopback, drives each with the same
-- loader (build/bench/rtmp-loader) and the same source FLV, alternating
-- the two servers over repeated runs, and writes medians and ratios into
-- the generated section of docs/BENCHMARKS.md.
--
--   lua5.4 bench/run.lua [--quick] [--repeats N] [--tls-pairs N] [--only NAME,...] [--baseline REV]
--
-- --quick runs one repeat of a reduced suite (a smoke test of the
-- machinery); names for --only: fanout, merge, latency, setup, idle,
-- ingest, hook, micro, tls, cluster.  --baseline REV builds luartmp at
-- git revision REV in a worktree and runs it as a third server in the
-- fan-out, setup and ingest comparisons: "no slower than before" is then
-- measured in the same run, on the same machine.
local json = require "dkjson"

local fmt = string.format
local ROOT = "."
local BUILD = "build/bench"
local LOADER = BUILD .. "/rtmp-loader"
local MICRO = BUILD .. "/micro"
local LUARTMP = "build/luartmp"
local DOC = "docs/BENCHMARKS.md"

-- the command line (rtmp.argv: plain Lua, found under lua/)
package.path = "lua/?.lua;" .. package.path
local opts
do
  local cmd = require("rtmp.argv").new{
    prog = "bench/run.lua",
    usage = "usage: lua5.4 bench/run.lua [--quick] [--repeats N] [--tls-pairs N] [--only NAME,...] [--baseline REV]\n",
    options = {
      { "quick", help = "one repeat of a reduced suite (a smoke test of the machinery)" },
      { "repeats", "integer", min = 1, arg = "N", help = "runs of each measurement (default 3; 1 with --quick)" },
      { "tls-pairs", "integer", min = 1, arg = "N",
        help = "TLS and plain run pairs of the RTMPS section at 100 players (default 11; 1 with --quick)" },
      { "only", "string", arg = "NAME,...",
        help = "only these: fanout, merge, latency, setup, idle, ingest, hook, micro, tls, cluster" },
      { "baseline", "string", arg = "REV",
        help = "also run luartmp built at git revision REV in the fan-out, setup and ingest comparisons" },
    },
  }
  local o, pos = cmd:run(arg)
  if pos[1] then cmd:fail("unexpected argument '" .. pos[1] .. "'") end
  opts = { quick = o.quick or false, repeats = o.repeats or (o.quick and 1 or 3), baseline = o.baseline }
  opts.tls_pairs = o["tls-pairs"] or (o.quick and 1 or 11)
  if o.only then
    opts.only = {}
    for name in o.only:gmatch("[^,]+") do opts.only[name] = true end
  end
end

local function log(...) io.stderr:write(fmt(...), "\n") end

local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end

local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local function sleep(s) sh(fmt("sleep %.3f", s)) end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local tmp = capture("mktemp -d /tmp/luartmp-bench.XXXXXX")

-- Local TCP ports in use (from /proc/net/tcp{,6}): { [port] = listening }.
local function ports_in_use()
  local used = {}
  for _, f in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
    for line in (read_file(f) or ""):gmatch("[^\n]+") do
      local port, state = line:match("^%s*%d+:%s+%x+:(%x+)%s+%x+:%x+%s+(%x+)")
      if port then
        local p = tonumber(port, 16)
        used[p] = used[p] or state == "0A"
      end
    end
  end
  return used
end

local function free_port()
  local used = ports_in_use()
  for _ = 1, 200 do
    local port = math.random(20000, 60000)
    if used[port] == nil then return port end
  end
  error("no free port")
end

local function wait_port(port, timeout)
  for _ = 1, timeout * 20 do
    if ports_in_use()[port] then return true end
    sleep(0.05)
  end
  return false
end

-- ---- the source: H.264/AAC at ~2.5 Mbit/s, 2 s GOP, made offline ----

local SOURCE = BUILD .. "/source.flv"
local SOURCE_CMD = "ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=1280x720:rate=30 "
  .. "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 30 "
  .. "-c:v libx264 -preset veryfast -b:v 2300k -maxrate 2500k -bufsize 5000k -g 60 -keyint_min 60 "
  .. "-sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -y " .. SOURCE

local function make_source()
  if read_file(SOURCE) then return end
  log("generating %s", SOURCE)
  assert(sh(SOURCE_CMD) == 0, "ffmpeg could not make the source")
end

-- ---- servers ----

local function start_nginx(port)
  local dir = fmt("%s/nginx-%d", tmp, port)
  sh("mkdir -p " .. dir)
  write_file(dir .. "/nginx.conf", table.concat({
    "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;",
    "daemon off;", "master_process off;", "worker_processes 1;",
    "worker_rlimit_nofile 200000;",
    fmt("error_log %s/error.log warn;", dir), fmt("pid %s/nginx.pid;", dir),
    "events { worker_connections 20000; }",
    "rtmp { server {",
    fmt("  listen 127.0.0.1:%d;", port),
    "  chunk_size 4096;",
    "  application live { live on; }",
    "} }", "" }, "\n"))
  local pid = capture(fmt("sh -c 'ulimit -n 200000 2>/dev/null; nginx -c %s/nginx.conf -p %s/ >%s/out.log 2>&1 & echo $!'",
    dir, dir, dir))
  return tonumber(pid), "nginx -c nginx.conf  (worker_processes 1, chunk_size 4096, live on)"
end

-- luartmp's live server (or `script`); root: the tree whose build and
-- scripts run (default: this one); level: --log-level (default error).
local function start_luartmp(port, extra, script, root, level)
  script, level = script or "scripts/live.lua", level or "error"
  local pid = capture(fmt("sh -c 'ulimit -n 200000 2>/dev/null; cd %s && exec %s --listen 127.0.0.1:%d --log-level %s %s %s >%s/luartmp-%d.log 2>&1 & echo $!'",
    root or ".", LUARTMP, port, level, extra or "", script, tmp, port))
  return tonumber(pid), fmt("luartmp --listen 127.0.0.1:PORT --log-level %s %s %s", level, extra or "", script)
end

local SERVERS = {
  { name = "luartmp", start = function(port) return start_luartmp(port) end },
  { name = "nginx-rtmp", start = start_nginx },
}

-- --baseline REV: luartmp at REV (its files from git archive, built in
-- the run's directory), the third server of the measurements that
-- compare against it (fanout, latency, setup, ingest)
local BASELINE -- { rev = short hash, root = its tree }
local function want(name) return not opts.only or opts.only[name] end
if opts.baseline and (want("fanout") or want("latency") or want("setup") or want("ingest")) then
  local rev = capture("git rev-parse --short " .. opts.baseline .. "^{commit}")
  assert(rev:match("^%x+$"), "--baseline: not a revision: " .. opts.baseline .. " (" .. rev .. ")")
  local root = tmp .. "/baseline"
  log("building the baseline luartmp %s in %s", rev, root)
  assert(sh(fmt("mkdir -p %s && git archive %s | tar -x -C %s", root, rev, root)) == 0, "--baseline: git archive failed")
  assert(sh(fmt("make -C %s all >%s/baseline-build.log 2>&1", root, tmp)) == 0,
    "--baseline: the build of " .. rev .. " failed: " .. tmp .. "/baseline-build.log")
  BASELINE = { rev = rev, root = root }
  SERVERS[3] = { name = "baseline", start = function(port)
    local pid, shown = start_luartmp(port, nil, nil, root)
    return pid, shown:gsub("^luartmp", "luartmp@" .. rev)
  end }
end

local function stop(pid)
  sh(fmt("kill -TERM %d 2>/dev/null", pid))
  for _ = 1, 50 do
    if sh(fmt("kill -0 %d 2>/dev/null", pid)) ~= 0 then return end
    sleep(0.1)
  end
  sh(fmt("kill -KILL %d 2>/dev/null", pid))
end

-- Run the loader against a fresh server; returns its JSON result.
local commands = {}
local failures = 0 -- loader runs that gave no result
-- The loader's command against the server at port (pid), and the same
-- as the doc shows it (no port or pid).
local function loader_cmd(port, pid, loader_args)
  local cmd = fmt("%s --url rtmp://127.0.0.1:%d/live/bench --server-pid %d --json %s", LOADER, port, pid, loader_args)
  return cmd, (cmd:gsub("127%.0%.0%.1:%d+/", "127.0.0.1:PORT/"):gsub("%-%-server%-pid %d+", "--server-pid PID"))
end
local function run_loader(server, loader_args, start)
  local port = free_port()
  local pid, server_cmd = (start or server.start)(port)
  assert(wait_port(port, 10), server.name .. " did not listen")
  local cmd, shown = loader_cmd(port, pid, loader_args)
  commands[#commands + 1] = { server = server.name, server_cmd = server_cmd, loader = shown }
  log("[%s] %s", server.name, cmd)
  local out = capture("ulimit -n 200000 2>/dev/null; " .. cmd .. " 2>" .. tmp .. "/loader.err")
  stop(pid)
  local res = json.decode(out:match("{.*}") or "")
  if not res then
    log("loader output unusable:\n%s\n%s", out, read_file(tmp .. "/loader.err") or "")
    failures = failures + 1
    return nil
  end
  return res
end

local function median(list)
  local t = {}
  for _, v in ipairs(list) do if type(v) == "number" then t[#t + 1] = v end end
  if #t == 0 then return nil end
  table.sort(t)
  local m = (#t + 1) // 2
  if #t % 2 == 1 then return t[m] end
  return (t[m] + t[m + 1]) / 2
end

-- Run `loader_args` on luartmp and nginx-rtmp (and the baseline, with
-- `base`) `repeats` times, rotating the order, and return
-- { [server] = { results... } }.
local function compare(loader_args, starts, base)
  local list = { SERVERS[1], SERVERS[2], base and SERVERS[3] or nil }
  local results = {}
  for _, s in ipairs(list) do results[s.name] = {} end
  for r = 1, opts.repeats do
    for k = 0, #list - 1 do
      local s = list[(r - 1 + k) % #list + 1]
      local res = run_loader(s, loader_args, starts and starts[s.name])
      if res then table.insert(results[s.name], res) end
    end
  end
  return results
end

local function field(res, path)
  local v = res
  for k in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[k]
  end
  return v
end

local function med(results, path, f)
  local vals = {}
  for _, res in ipairs(results) do
    local v = field(res, path)
    if f and v then v = f(res, v) end
    vals[#vals + 1] = v
  end
  return median(vals)
end

local function num(v, digits)
  if v == nil then return "n/a" end
  return fmt("%." .. (digits or 2) .. "f", v)
end

local function ratio(a, b)
  if not a or not b or b == 0 then return "n/a" end
  local r = a / b
  return fmt(r < 0.1 and "%.3fx" or "%.2fx", r)
end

-- ---- the suite ----

make_source()

local sections = {}
local function section(title, header, rows, note)
  local out = { "### " .. title, "" }
  if note then out[#out + 1] = note; out[#out + 1] = "" end
  out[#out + 1] = "| " .. table.concat(header, " | ") .. " |"
  out[#out + 1] = "|" .. string.rep("---|", #header)
  for _, r in ipairs(rows) do out[#out + 1] = "| " .. table.concat(r, " | ") .. " |" end
  out[#out + 1] = ""
  sections[#sections + 1] = table.concat(out, "\n")
end

local WINDOW = opts.quick and 5 or 10
-- fan-out players join after the publisher's GOP cache has cycled twice
-- (the source's GOP is 2 s): the RSS growth measured is then the players'
local WARMUP = 5

-- --baseline: rows of the section comparing this build with the baseline
local vs_baseline = {}
local function against(measure, r, path, f, digits)
  if not BASELINE then return end
  local now, was, nginx = med(r.luartmp, path, f), med(r.baseline, path, f), med(r["nginx-rtmp"], path, f)
  vs_baseline[#vs_baseline + 1] = { measure, num(now, digits), num(was, digits), ratio(now, was), ratio(now, nginx),
    ratio(was, nginx) }
end

local function cpu_per_gb(res) return res.bytes > 0 and res.cpu_seconds / (res.bytes / 1e9) or nil end
local function rss_per_player(res)
  return res.players > 0 and (res.rss_kb - res.rss_before_kb) / res.players or nil
end

local fanout_cache = {}
local function fanout(n, starts, key)
  key = key or tostring(n)
  if not fanout_cache[key] then
    fanout_cache[key] = compare(fmt("--flv %s --players %d --duration %d --warmup %d", SOURCE, n, WINDOW, WARMUP),
      starts, true)
  end
  return fanout_cache[key]
end

if want("fanout") then
  local rows = {}
  for _, n in ipairs(opts.quick and { 100, 1000 } or { 100, 500, 1000, 2000 }) do
    local r = fanout(n)
    local L, N = r.luartmp, r["nginx-rtmp"]
    local lc, nc = med(L, "cpu_seconds", cpu_per_gb), med(N, "cpu_seconds", cpu_per_gb)
    local lr, nr = med(L, "rss_kb", rss_per_player), med(N, "rss_kb", rss_per_player)
    rows[#rows + 1] = { tostring(n), num(lc), num(nc), ratio(lc, nc), num(lr, 1), num(nr, 1), ratio(lr, nr),
      num(med(L, "behind"), 0), num(med(N, "behind"), 0) }
    against(fmt("fan-out CPU s/GB, N = %d", n), r, "cpu_seconds", cpu_per_gb)
    against(fmt("fan-out KB RSS per player, N = %d", n), r, "rss_kb", rss_per_player, 1)
  end
  section("Fan-out: one publisher, N players",
    { "N", "luartmp CPU s/GB", "nginx CPU s/GB", "ratio", "luartmp KB RSS/player", "nginx KB RSS/player",
      "ratio", "luartmp behind", "nginx behind" }, rows,
    fmt("Server CPU-seconds (user+system) per GB delivered to players in the measurement window; RSS growth from before the first player (%d s after the publish began) to the end, per player; players behind = lag over 1 s or under 95 %% of the messages.", WARMUP))
end

-- Repeated runs of one server variant.
local function repeat_runs(server, args)
  local list = {}
  for _ = 1, opts.repeats do
    local res = run_loader(server, args)
    if res then list[#list + 1] = res end
  end
  return list
end

if want("merge") then
  local rows = {}
  local n = opts.quick and 100 or 1000
  local nginx = fanout(n)["nginx-rtmp"] -- nginx-rtmp has no such window: its immediate figures
  local nc = med(nginx, "cpu_seconds", cpu_per_gb)
  for _, w in ipairs(opts.quick and { 0.3 } or { 0.1, 0.3 }) do
    local variant = { name = "luartmp", start = function(port) return start_luartmp(port, fmt("--merge-window %.1f", w)) end }
    local L = repeat_runs(variant, fmt("--flv %s --players %d --duration %d --warmup %d", SOURCE, n, WINDOW, WARMUP))
    local lc = med(L, "cpu_seconds", cpu_per_gb)
    rows[#rows + 1] = { tostring(n), fmt("%.0f ms", w * 1000), num(lc), num(nc), ratio(lc, nc),
      num(med(L, "latency_ms.p99"), 1), num(med(L, "behind"), 0) }
  end
  section("Fan-out with a write-merging window (luartmp --merge-window; nginx-rtmp as it is)",
    { "N", "window", "luartmp CPU s/GB", "nginx CPU s/GB", "ratio", "luartmp latency p99 ms", "luartmp behind" }, rows)
end

if want("latency") then
  local rows = {}
  for _, n in ipairs(opts.quick and { 1, 100 } or { 1, 100, 1000 }) do
    local r = fanout(n)
    local L, N = r.luartmp, r["nginx-rtmp"]
    for _, p in ipairs{ "p50", "p99", "max" } do
      local l, x = med(L, "latency_ms." .. p), med(N, "latency_ms." .. p)
      rows[#rows + 1] = { tostring(n), p, num(l, 2), num(x, 2), ratio(l, x) }
    end
    if n == 1000 then against("latency p99 ms, N = 1000", r, "latency_ms.p99") end
  end
  section("End-to-end latency, publisher write to player read (ms)",
    { "N", "", "luartmp", "nginx-rtmp", "ratio" }, rows)
end

-- RTMPS fan-out: the same players over TLS (loader --tls, no verification)
-- to an rtmps:// listener, next to the plain figures of the fan-out above;
-- whether the connections' output went through kernel TLS (one writev of
-- shared buffers) or TLS records, from luartmp's log line per connection.
if want("tls") then
  local cert, key = tmp .. "/tls.pem", tmp .. "/tls.key"
  assert(sh(fmt("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=localhost "
    .. ">/dev/null 2>&1", key, cert)) == 0, "openssl could not make the bench certificate")
  local logs = {}
  local variant = { name = "luartmp", start = function(port)
    local plain = free_port() -- live.lua's default listener, unused; the loader goes to `port`
    logs[#logs + 1] = fmt("%s/luartmp-%d.log", tmp, plain)
    local pid, shown = start_luartmp(plain, fmt("--listen rtmps://127.0.0.1:%d --tls-cert %s --tls-key %s",
      port, cert, key), nil, nil, "info")
    -- shown as the other commands are: the port the loader uses and the run's files by name
    shown = shown:gsub("rtmps://127%.0%.0%.1:%d+", "rtmps://127.0.0.1:PORT"):gsub(tmp:gsub("%p", "%%%0"), "TMP")
    return pid, shown
  end }
  -- What encrypting alone costs: every byte a player gets is encrypted
  -- once for it, so CPU s/GB over TLS is at least plain's plus 1 / the
  -- cipher's speed (openssl speed, 16 KiB records, one core).
  local EVP = { TLS_AES_256_GCM_SHA384 = "aes-256-gcm", TLS_AES_128_GCM_SHA256 = "aes-128-gcm",
    TLS_CHACHA20_POLY1305_SHA256 = "chacha20-poly1305" }
  local speeds = {}
  local function cipher_cost(name) -- s/GB, or nil
    local evp = EVP[name] or (name or ""):match("AES256%-GCM") and "aes-256-gcm"
      or (name or ""):match("AES128%-GCM") and "aes-128-gcm" or nil
    if not evp then return nil end
    if speeds[evp] == nil then
      local kb = capture(fmt("openssl speed -seconds 3 -bytes 16384 -evp %s 2>/dev/null | tail -1", evp)):match("([%d.]+)k%s*$")
      speeds[evp] = kb and 1e9 / (tonumber(kb) * 1000) or false
      commands[#commands + 1] = { server = "-", server_cmd = "-", loader = fmt("openssl speed -seconds 3 -bytes 16384 -evp %s", evp) }
    end
    return speeds[evp] or nil
  end
  -- A TLS and a plain server at once, each with its own loader: whatever
  -- slows the machine (the host under a VM) then slows both, where
  -- alternated runs meet it one at a time. Four processes share the
  -- cores, so the CPU figures are not the alternated ones; their ratio is
  -- what this is for. Returns the two loader results, or nil.
  local function run_at_once(args, k)
    -- one server listening before the other's port is picked: no collision
    local tport = free_port()
    local tpid, tshown = variant.start(tport)
    local up = wait_port(tport, 10)
    local pport = free_port()
    local ppid, pshown = SERVERS[1].start(pport)
    up = up and wait_port(pport, 10)
    sh(fmt("rm -f %s/at-once-*", tmp))
    local res = {}
    if not up then
      log("at-once run: a server did not listen")
    else
      local cmds, shown = {}, {}
      for i, s in ipairs({ { "tls", tport, tpid, "--tls " }, { "plain", pport, ppid, "" } }) do
        local cmd
        cmd, shown[i] = loader_cmd(s[2], s[3], s[4] .. args)
        cmds[i] = fmt("%s >%s/at-once-%s.json 2>%s/at-once-%s.err", cmd, tmp, s[1], tmp, s[1])
      end
      log("[at once] %s & %s", cmds[1], cmds[2])
      commands[#commands + 1] = { server = "both", server_cmd = tshown .. "` and `" .. pshown,
        loader = shown[1] .. " & " .. shown[2] }
      local a, b = k % 2 == 1 and 1 or 2, k % 2 == 1 and 2 or 1 -- which loader starts first, alternated
      sh(fmt("ulimit -n 200000 2>/dev/null; %s & %s & wait", cmds[a], cmds[b]))
      for _, name in ipairs({ "tls", "plain" }) do
        res[name] = json.decode((read_file(fmt("%s/at-once-%s.json", tmp, name)) or ""):match("{.*}") or "")
      end
    end
    stop(tpid)
    stop(ppid)
    if not (res.tls and res.plain) then
      log("at-once run unusable: %s / %s", read_file(tmp .. "/at-once-tls.err") or "", read_file(tmp .. "/at-once-plain.err") or "")
      failures = failures + 1
      return nil
    end
    return res.tls, res.plain
  end
  -- a TLS run's CPU per GB over its plain partner's, into list (and the
  -- log); a pair without both figures is a failure of the run
  local function add_ratio(list, label, k, t, p)
    local tg, pg = t and t.cpu_seconds and cpu_per_gb(t), p and p.cpu_seconds and cpu_per_gb(p)
    if tg and pg then
      list[#list + 1] = tg / pg
      log("  %s %d: TLS %.2f, plain %.2f CPU s/GB: %.2fx", label, k, tg, pg, tg / pg)
    elseif t and p then -- (a run without a result was counted where it failed)
      log("  %s %d: no CPU per GB from one side (nothing delivered?)", label, k)
      failures = failures + 1
    end
  end
  local rows = {}
  for _, n in ipairs(opts.quick and { 100 } or { 100, 1000 }) do
    local r = fanout(n)
    -- TLS and plain runs alternate (the plain ones of their own, not the
    -- fan-out section's): the machine's speed drifts over minutes, and the
    -- ratio is what this section is for
    local args = fmt("--flv %s --players %d --duration %d --warmup %d", SOURCE, n, WINDOW, WARMUP)
    -- Each TLS run is also divided by the plain run next to it: the
    -- spread of those ratios says how far one run's ratio can be trusted.
    -- One pair's ratio scatters by some 20 % on a shared host, so at 100
    -- players (where the 1.3x goal of docs/TLS.md is judged) the section
    -- takes --tls-pairs pairs, enough to put the medians within a few
    -- per cent; at 1000 players, --repeats.
    -- At 100 players each alternated pair is followed by one run both at
    -- once (1000 players twice over would be more than the two loaders
    -- can take on this machine), so that both kinds meet the same hours.
    local T, P, paired, together = {}, {}, {}, {}
    local pairs_wanted = n == 100 and opts.tls_pairs or opts.repeats
    for k = 1, pairs_wanted do
      local t, p
      for j = 0, 1 do
        if (k + j) % 2 == 0 then
          t = run_loader(variant, "--tls " .. args)
          T[#T + 1] = t
        else
          p = run_loader(SERVERS[1], args)
          P[#P + 1] = p
        end
      end
      add_ratio(paired, "pair", k, t, p)
      if n == 100 then add_ratio(together, "at once", k, run_at_once(args, k)) end
    end
    table.sort(paired)
    table.sort(together)
    local tc = med(T, "cpu_seconds", cpu_per_gb)
    local lc, nc = med(P, "cpu_seconds", cpu_per_gb), med(r["nginx-rtmp"], "cpu_seconds", cpu_per_gb)
    local ktls, records, sealed, cipher = 0, 0, 0, nil
    for _, path in ipairs(logs) do
      local text = read_file(path) or ""
      for _ in text:gmatch("output kTLS send") do ktls = ktls + 1 end
      for _ in text:gmatch("output TLS records") do records = records + 1 end
      for _ in text:gmatch("output TLS records of up to 16 KiB sealed by luartmp") do sealed = sealed + 1 end
      cipher = cipher or text:match("TLS: %S+ (%S+),")
    end
    logs = {}
    local floor = cipher_cost(cipher)
    local function spread(list) -- "(n of N)" when pairs were lost
      if #list == 0 then return "-" end
      return fmt("%s (%.2f-%.2f)%s", ratio(median(list), 1), list[1], list[#list],
        #list < pairs_wanted and fmt(", %d of %d pairs", #list, pairs_wanted) or "")
    end
    rows[#rows + 1] = { tostring(n), num(tc), num(lc), num(nc), ratio(tc, lc), spread(paired), spread(together),
      ratio(tc, nc),
      fmt("%d of %d", ktls, ktls + records), fmt("%d of %d", sealed, ktls + records), num(med(T, "behind"), 0),
      cipher or "n/a", num(floor),
      ratio(floor and lc and lc + floor, lc) }
  end
  section("RTMPS fan-out: one publisher, N players over TLS",
    { "N", "luartmp TLS CPU s/GB", "luartmp plain CPU s/GB", "nginx CPU s/GB (plain)", "TLS/plain",
      "TLS/plain, run by run: median (range)", "TLS/plain, both at once: median (range)", "TLS/nginx",
      "connections on kTLS send", "records sealed by luartmp", "TLS behind", "cipher", "cipher alone s/GB",
      "lowest TLS/plain it allows" }, rows,
    "The fan-out above over rtmps:// (OpenSSL; the loader's players and publisher speak TLS without verification), "
    .. fmt("its runs alternated with as many plain ones (%s; ", opts.quick
      and fmt("%d pair%s", opts.tls_pairs, opts.tls_pairs == 1 and "" or "s")
      or fmt("%d pairs at 100 players, %d at 1000", opts.tls_pairs, opts.repeats))
    .. "the plain column: theirs; TLS/plain divides the medians, "
    .. "the column after it each TLS run by the plain run next to it; at 100 players each pair is followed by "
    .. "one run both at once, a TLS and a plain server each with its own loader, so that whatever slows the "
    .. "machine slows both: its TLS figure divided by its plain one; the kTLS and records counts cover every "
    .. "TLS server of the section). "
    .. "nginx-rtmp has no RTMPS: its plain figures from the fan-out section. Without kTLS (the kernel's `tls` ULP) "
    .. "output goes as TLS records of up to 16 KiB, encrypted in user space: on TLS 1.3 sealed by luartmp from the "
    .. "shared buffers (docs/TLS.md). Cipher alone: 1 / `openssl speed` of the negotiated cipher on 16 KiB "
    .. "records, on one core; every byte a player gets is encrypted once for that player, in user space or in the "
    .. "kernel, so TLS/plain cannot go below (plain + cipher alone) / plain on this CPU.")
end

if want("setup") then
  -- Setup times at concurrency 1 (nginx-rtmp stalls ~44 ms twice per setup
  -- waiting for delayed ACKs, so many cycles take long there); RSS drift
  -- over many cycles at concurrency 64, one run each.
  local lat_cycles = opts.quick and 200 or 500
  local r = compare(fmt("--flv %s --cycles %d --concurrency 1", SOURCE, lat_cycles))
  local L, N = r.luartmp, r["nginx-rtmp"]
  local rows = {}
  for _, m in ipairs{ { "connect to play onStatus p50 (ms)", "setup_status_ms.p50" },
                      { "connect to play onStatus p99 (ms)", "setup_status_ms.p99" },
                      { "connect to first media p50 (ms)", "setup_media_ms.p50" },
                      { "connect to first media p99 (ms)", "setup_media_ms.p99" } } do
    local l, x = med(L, m[2]), med(N, m[2])
    rows[#rows + 1] = { m[1] .. fmt(", %d cycles one at a time", lat_cycles), num(l, 2), num(x, 2), ratio(l, x) }
  end
  local cycles = opts.quick and 2000 or 100000
  local saved = opts.repeats
  opts.repeats = 1
  local d = compare(fmt("--flv %s --cycles %d --concurrency 64", SOURCE, cycles), nil, true)
  opts.repeats = saved
  local drift = function(res) return res.rss_kb - res.rss_before_kb end
  local ls, ns = med(d.luartmp, "setups_per_s"), med(d["nginx-rtmp"], "setups_per_s")
  rows[#rows + 1] = { fmt("setups per second, %d cycles 64 at a time", cycles), num(ls, 0), num(ns, 0), ratio(ls, ns) }
  against(fmt("setups per second, %d cycles 64 at a time", cycles), d, "setups_per_s", nil, 0)
  local ld, nd = med(d.luartmp, "rss_kb", drift), med(d["nginx-rtmp"], "rss_kb", drift)
  rows[#rows + 1] = { fmt("RSS drift over those %d cycles (KB)", cycles), num(ld, 0), num(nd, 0), ratio(ld, nd) }
  section("Connection setup (connect, handshake, connect, createStream, play, first media, close; one publisher streaming)",
    { "measure", "luartmp", "nginx-rtmp", "ratio" }, rows,
    "RSS drift includes the publisher's GOP cache filling at the start (luartmp keeps one; nginx-rtmp does not).")
end

if want("idle") then
  local n = opts.quick and 1000 or 5000
  local rows = {}
  for _, stage in ipairs{ "tcp", "connect", "play" } do
    -- luartmp closes connections that do not finish the handshake within
    -- 10 s by default; give idle sockets nginx-rtmp's 60 s here
    local r = compare(fmt("--idle %d --stage %s --duration 3 --ramp 2000", n, stage),
      { luartmp = function(port) return start_luartmp(port, "--handshake-timeout 60") end })
    local l, x = med(r.luartmp, "rss_kb", rss_per_player), med(r["nginx-rtmp"], "rss_kb", rss_per_player)
    rows[#rows + 1] = { stage, num(l, 2), num(x, 2), ratio(l, x) }
  end
  section(fmt("Memory per idle connection, N = %d (KB of server RSS each)", n),
    { "stage", "luartmp", "nginx-rtmp", "ratio" }, rows,
    "tcp: connected only; connect: after connect's _result; play: playing a stream nobody publishes.")
end

if want("ingest") then
  local rows = {}
  for _, m in ipairs(opts.quick and { 50 } or { 50, 200 }) do
    local r = compare(fmt("--flv %s --publishers %d --duration %d", SOURCE, m, WINDOW), nil, true)
    local L, N = r.luartmp, r["nginx-rtmp"]
    local per = function(res) return res.cpu_seconds / (res.window_s > 0 and res.window_s or 1) * 100 end
    local l, x = med(L, "cpu_seconds", per), med(N, "cpu_seconds", per)
    local lr, nr = med(L, "rss_kb", function(res) return (res.rss_kb - res.rss_before_kb) / m end),
                   med(N, "rss_kb", function(res) return (res.rss_kb - res.rss_before_kb) / m end)
    rows[#rows + 1] = { tostring(m), num(l, 1), num(x, 1), ratio(l, x), num(lr, 0), num(nr, 0), ratio(lr, nr) }
    against(fmt("ingest CPU %%, M = %d", m), r, "cpu_seconds", per, 1)
  end
  section("Ingest: M publishers, no players",
    { "M", "luartmp CPU %", "nginx CPU %", "ratio", "luartmp KB RSS/publisher", "nginx KB RSS/publisher", "ratio" }, rows)
end

if want("hook") then
  -- luartmp alone, with and without a Lua hook on every published media
  -- message (bench/hook.lua), alternated
  local n = opts.quick and 100 or 1000
  local args = fmt("--flv %s --players %d --duration %d --warmup %d", SOURCE, n, WINDOW, WARMUP)
  local runs = { plain = {}, hook = {} }
  local variant = {
    plain = { name = "luartmp", start = function(port) return start_luartmp(port) end },
    hook = { name = "luartmp", start = function(port) return start_luartmp(port, "", "bench/hook.lua") end },
  }
  for r = 1, opts.repeats do
    for _, v in ipairs((r % 2 == 1) and { "plain", "hook" } or { "hook", "plain" }) do
      local res = run_loader(variant[v], args)
      if res then table.insert(runs[v], res) end
    end
  end
  local p, h = med(runs.plain, "cpu_seconds", cpu_per_gb), med(runs.hook, "cpu_seconds", cpu_per_gb)
  section(fmt("A Lua hook on every published media message (N = %d players)", n),
    { "live.lua", "live.lua + on_media hook", "extra CPU" },
    { { num(p) .. " CPU s/GB", num(h) .. " CPU s/GB", (p and h) and fmt("%+.1f %%", (h / p - 1) * 100) or "n/a" } },
    "The hook runs once per published message (about 75 a second here), never per player.")
end

if want("micro") and read_file(MICRO) then
  local out = capture(MICRO .. " 2>/dev/null")
  local res = json.decode(out:match("{.*}") or "")
  if res and res.chunk then
    local rows = {}
    for _, c in ipairs(res.chunk) do
      rows[#rows + 1] = { tostring(c.chunk_size), num(c.reader_mb_s, 0), num(c.memcpy_mb_s, 0),
        num(c.ratio, 2), num(c.allocs_per_msg, 3), num(c.writer_mb_s, 0) }
    end
    section("Chunk layer (bench/micro.c, one core)",
      { "chunk size", "reader MB/s", "memcpy MB/s", "reader/memcpy", "allocations/message", "fmt0 writer MB/s" }, rows)
    commands[#commands + 1] = { server = "-", server_cmd = "-", loader = MICRO }
  end
  local lua_out = capture(LUARTMP .. " bench/lua_call.lua 2>/dev/null")
  local lres = json.decode(lua_out:match("{.*}") or "")
  if lres and lres.lua_call then
    local c = lres.lua_call
    section("The Lua side of a command message (microseconds per message)",
      { "rtmp.session (chunks + message object + AMF to Lua)", "rtmp.reader (chunks to Lua tables)", "C reader only" },
      { { num(c.session_us_per_msg, 3), num(c.reader_us_per_msg, 3), num(c.c_reader_us_per_msg, 3) } })
    commands[#commands + 1] = { server = "-", server_cmd = "-", loader = LUARTMP .. " bench/lua_call.lua" }
  end
end

if want("cluster") then -- 1 origin + 3 edges against one node alone (bench/cluster.lua)
  dofile("bench/cluster.lua"){ opts = opts, SOURCE = SOURCE, LOADER = LOADER, LUARTMP = LUARTMP, tmp = tmp,
    free_port = free_port, wait_port = wait_port, sh = sh, capture = capture, sleep = sleep, read_file = read_file,
    stop = stop, section = section, num = num, median = median, log = log, commands = commands,
    fail = function() failures = failures + 1 end }
end

if BASELINE and #vs_baseline > 0 then
  section(fmt("Against luartmp %s, in the same run", BASELINE.rev),
    { "measure", "luartmp now", "luartmp " .. BASELINE.rev, "now / " .. BASELINE.rev, "now / nginx",
      BASELINE.rev .. " / nginx" }, vs_baseline,
    fmt("`--baseline %s`: luartmp built at %s ran as a third server, rotated with the two others in the same "
      .. "measurements (medians of the same repeats; the setups per second row is one run of each, in the order "
      .. "luartmp, nginx-rtmp, %s).", opts.baseline, BASELINE.rev, BASELINE.rev))
end

-- ---- the report ----

local function machine()
  local cpu = capture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"):gsub("^%s+", "")
  return table.concat({
    fmt("- Date: %s", os.date("!%Y-%m-%d %H:%M UTC")),
    fmt("- CPU: %s, %s cores; memory %s", cpu, capture("nproc"), capture("free -h | awk '/Mem:/{print $2}'")),
    fmt("- Kernel: %s", capture("uname -sr")),
    fmt("- luartmp %s; %s; libnginx-mod-rtmp %s", capture(LUARTMP .. " --version"),
      capture("nginx -v"):gsub("nginx version: ", ""),
      capture("dpkg-query -W -f='${Version}' libnginx-mod-rtmp")),
    fmt("- Source: %s", SOURCE_CMD),
    fmt("- Repeats: %d per measurement%s, servers alternated, medians shown%s", opts.repeats,
      want("tls") and fmt(" (RTMPS at 100 players: %d TLS/plain pair%s)", opts.tls_pairs, opts.tls_pairs == 1 and "" or "s") or "",
      opts.quick and " (--quick: a reduced suite)" or ""),
  }, "\n")
end

local function command_list()
  local seen, out = {}, {}
  for _, c in ipairs(commands) do
    local line = fmt("- `%s`  (server: `%s`)", c.loader, c.server_cmd)
    if not seen[line] then seen[line] = true; out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

local generated = table.concat({
  "<!-- bench:begin (generated by `make bench`; edit outside these markers) -->",
  "## Latest run", "", machine(), "",
  table.concat(sections, "\n"),
  "### Commands", "", command_list(), "",
  "<!-- bench:end -->",
}, "\n")

local doc = read_file(DOC) or "# Benchmarks\n\n<!-- bench:begin -->\n<!-- bench:end -->\n"
local before, after = doc:match("^(.-)<!%-%- bench:begin.-<!%-%- bench:end %-%->(.*)$")
if not before then before, after = doc .. "\n", "" end
write_file(DOC, before .. generated .. after)
sh("rm -rf " .. tmp)
log("wrote %s", DOC)
if failures > 0 then
  log("%d loader run(s) failed: see above", failures)
  os.exit(1)
end
