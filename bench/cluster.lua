-- bench/cluster.lua: the "cluster" section of bench/run.lua (issue 20's
-- tiers): N players of one stream served by one live node alone, against
-- the same N spread over 3 edges that pull the stream from 1 origin
-- (cluster mode: redis-server as the directory, scripts/cluster.lua).
-- Both layouts are measured the same way: ffmpeg publishes the source to
-- the node (the origin) in real time; three players-only loaders
-- (build/bench/rtmp-loader with no --flv) play N/3 each, against the node
-- itself or against one edge each; the servers' CPU time is read from
-- /proc during the loaders' measurement window.  Reported: the origin's
-- CPU seconds per GB delivered to the players, its CPU share, and how many
-- players one core of the origin's CPU serves at that rate (N divided by
-- the cores the origin used), with the edges' CPU alongside.
--
--   lua5.4 bench/run.lua --only cluster [--quick]
--
-- run.lua calls the chunk this file returns with its helpers (b): opts,
-- SOURCE, LOADER, LUARTMP, tmp, free_port, wait_port, sh, capture, sleep,
-- read_file, stop, section, num, ratio, median, log, commands, fail.
return function(b)
  local fmt = string.format
  local json = require "dkjson"
  local HZ = tonumber(b.capture("getconf CLK_TCK")) or 100
  local WINDOW = b.opts.quick and 6 or 12

  -- user + system CPU seconds of a process so far
  local function cpu(pid)
    local stat = b.read_file(fmt("/proc/%d/stat", pid)) or ""
    local rest = stat:match("%) (.*)$") or ""
    local f = {}
    for w in rest:gmatch("%S+") do f[#f + 1] = w end
    -- f[1] is field 3 of the line (the state): utime is field 14, stime 15
    return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / HZ
  end

  local function background(cmd, out)
    return tonumber(b.capture(fmt("sh -c 'ulimit -n 200000 2>/dev/null; %s >%s 2>&1 & echo $!'", cmd, out)))
  end

  local function node(port, extra)
    local pid = background(fmt("%s --listen 127.0.0.1:%d --log-level error %s scripts/live.lua", b.LUARTMP, port,
      extra or ""), fmt("%s/cluster-node-%d.log", b.tmp, port))
    assert(b.wait_port(port, 10), "luartmp did not listen on " .. port)
    return pid
  end

  -- One layout: players on `play_ports` (N/3 each), publisher on port `origin`;
  -- returns { origin_cpu_s, edges_cpu_s, seconds, bytes_per_s }.
  local function measure(n, origin, play_ports, pids)
    local url = function(port) return fmt("rtmp://127.0.0.1:%d/live/bench", port) end
    local pub = background(fmt("ffmpeg -nostdin -v error -re -stream_loop -1 -i %s -c copy -f flv %s", b.SOURCE,
      url(origin)), b.tmp .. "/cluster-ffmpeg.log")
    b.sleep(2)
    local outs, loaders = {}, {}
    for i, port in ipairs(play_ports) do
      outs[i] = fmt("%s/cluster-loader-%d.json", b.tmp, i)
      local cmd = fmt("%s --url %s --players %d --duration %d --json", b.LOADER, url(port), n // #play_ports, WINDOW)
      loaders[i] = background(cmd, outs[i])
      b.commands[#b.commands + 1] = { server = "luartmp cluster", server_cmd = "see bench/cluster.lua",
        loader = cmd:gsub("127%.0%.0%.1:%d+/", "127.0.0.1:PORT/") }
    end
    -- inside the loaders' window: after the warmup (2 s) and the ramp (500 players/s)
    b.sleep(2 + n / #play_ports / 500 + 1)
    local t1, c1 = b.capture("date +%s.%N"), {}
    for k, pid in pairs(pids) do c1[k] = cpu(pid) end
    b.sleep(WINDOW - 3)
    local t2, c2 = b.capture("date +%s.%N"), {}
    for k, pid in pairs(pids) do c2[k] = cpu(pid) end
    for _, pid in ipairs(loaders) do
      for _ = 1, 100 do
        if b.sh(fmt("kill -0 %d 2>/dev/null", pid)) ~= 0 then break end
        b.sleep(0.2)
      end
    end
    b.stop(pub)
    local bytes_per_s, playing = 0, 0
    for _, out in ipairs(outs) do
      local res = json.decode((b.read_file(out) or ""):match("{.*}") or "")
      if not res or not res.bytes or not res.window_s or res.window_s <= 0 then
        b.log("cluster: loader output unusable:\n%s", b.read_file(out) or "")
        b.fail()
        return nil
      end
      bytes_per_s = bytes_per_s + res.bytes / res.window_s
      playing = playing + (res.playing or 0)
    end
    local seconds = tonumber(t2) - tonumber(t1)
    local edges = 0
    for k in pairs(pids) do if k ~= "origin" then edges = edges + (c2[k] - c1[k]) end end
    return { origin = c2.origin - c1.origin, edges = edges, seconds = seconds, bytes_per_s = bytes_per_s,
             playing = playing }
  end

  local function alone(n)
    local port = b.free_port()
    local pid = node(port)
    local r = measure(n, port, { port, port, port }, { origin = pid })
    b.stop(pid)
    return r
  end

  local function tiers(n)
    local rport = b.free_port()
    local redis = background(fmt("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no", rport),
      b.tmp .. "/cluster-redis.log")
    assert(b.wait_port(rport, 10), "redis-server did not listen")
    local ports, pids = {}, {}
    for i = 1, 4 do
      ports[i] = b.free_port()
      pids[i == 1 and "origin" or ("edge" .. (i - 1))] = node(ports[i], fmt(
        "--cluster-redis redis://127.0.0.1:%d --cluster-node rtmp://127.0.0.1:%d", rport, ports[i]))
    end
    local r = measure(n, ports[1], { ports[2], ports[3], ports[4] }, pids)
    for _, pid in pairs(pids) do b.stop(pid) end
    b.stop(redis)
    return r
  end

  local rows = {}
  for _, n in ipairs(b.opts.quick and { 30 } or { 300, 1500 }) do
    local results = { alone = {}, tiers = {} }
    for rep = 1, b.opts.repeats do
      for _, layout in ipairs((rep % 2 == 1) and { "alone", "tiers" } or { "tiers", "alone" }) do
        local r = (layout == "alone" and alone or tiers)(n)
        if r then table.insert(results[layout], r) end
      end
    end
    for _, layout in ipairs{ "alone", "tiers" } do
      local list = results[layout]
      local function m(f)
        local v = {}
        for _, r in ipairs(list) do v[#v + 1] = f(r) end
        return b.median(v)
      end
      local per_gb = m(function(r) return r.bytes_per_s > 0 and (r.origin / r.seconds) / (r.bytes_per_s / 1e9) or nil end)
      local share = m(function(r) return r.origin / r.seconds end)
      local edges = m(function(r) return r.edges / r.seconds end)
      rows[#rows + 1] = {
        tostring(n), layout == "alone" and "1 node alone" or "1 origin + 3 edges",
        b.num(per_gb), b.num(share and share * 100, 1),
        share and share > 0 and b.num(n / share, 0) or "n/a",
        layout == "alone" and "-" or b.num(edges and edges * 100, 1),
        b.num(m(function(r) return r.bytes_per_s * 8 / 1e6 end), 0),
        b.num(m(function(r) return r.playing end), 0),
      }
    end
  end
  b.section("Cluster tiers: N players of one stream, one node alone or 1 origin + 3 edges (cluster mode)",
    { "N", "layout", "origin CPU s/GB", "origin CPU %", "players per origin core", "edges CPU % (sum)",
      "Mbit/s to players", "playing" }, rows,
    "ffmpeg publishes the source to the node (the origin); three players-only loaders play N/3 each, on the node "
    .. "itself or on one edge each (edges pull the stream from the origin through the Redis directory, "
    .. "scripts/cluster.lua). CPU from /proc during the loaders' window; players per origin core: N over the "
    .. "cores the origin used. bench/cluster.lua.")
end
