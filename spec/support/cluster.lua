-- A cluster of luartmp live servers on loopback, as docs/CLUSTER.md runs
-- one: redis-server as the stream directory, live nodes started with
-- --cluster-redis and --cluster-node (and --http for /metrics), HAProxy
-- in TCP mode in front of them with health checks.  Every process goes
-- through support.helpers (H.spawn), so H.cleanup() stops them.
--
--   local CL = require "support.cluster"
--   local redis = require("support.redis").start()
--   local a = CL.node(redis, { ttl = 3 })          -- H.luartmp_start's server + http, node_url, metrics()
--   CL.get(redis, CL.key("live/cam")), CL.pttl(redis, ...)  -- the directory's entry, its TTL
--   local lb = CL.haproxy({ a, b, c })             -- { port, url(path), cfg, proc }
--   CL.haproxy({ a, b, c }, { balance = "roundrobin" })  -- docs/CLUSTER.md's leastconn otherwise
local H = require "support.helpers"

local CL = {}
local fmt, q = string.format, H.shquote

--- The directory's key of app/name (scripts/cluster.lua's default prefix).
function CL.key(path) return "luartmp:" .. path end

--- The directory's entry of key in redis (support.redis), or nil.
function CL.get(redis, key)
  local v = redis:cli("GET", key)
  if v == "" then return nil end
  return v
end

--- key's time to live in milliseconds (-2: no key, -1: no expiry).
function CL.pttl(redis, key) return tonumber(redis:cli("PTTL", key)) end

--- Start a live node of the cluster (scripts/live.lua) on a free port:
--- opts.ttl (--cluster-ttl), opts.extra (more options), opts.script
--- (instead of scripts/live.lua). Returns
--- H.luartmp_start's server plus node_url, http (its /metrics address)
--- and metrics() -> { ["name{labels}"] = value }.
function CL.node(redis, opts)
  opts = opts or {}
  local port, http = H.free_port(), H.free_port()
  local node_url = fmt("rtmp://127.0.0.1:%d", port)
  local extra = { "--cluster-redis", redis.url, "--cluster-node", node_url, "--http", "127.0.0.1:" .. http }
  if opts.ttl then extra[#extra + 1] = "--cluster-ttl"; extra[#extra + 1] = tostring(opts.ttl) end
  for _, o in ipairs(opts.extra or {}) do extra[#extra + 1] = o end
  local srv = H.luartmp_start{ port = port, extra = extra, log_level = opts.log_level, script = opts.script }
  assert(H.wait_port(http, 10, srv.proc))
  srv.node_url, srv.http = node_url, http
  function srv.metrics()
    local rc, out = H.run(fmt("curl -s -m 5 http://127.0.0.1:%d/metrics", http), 10)
    assert(rc == 0, "GET /metrics: " .. out)
    local t = {}
    for name, value in out:gmatch("\n?([%w_]+%b{}) (%S+)") do t[name] = tonumber(value) end
    for name, value in out:gmatch("\n([%w_]+) (%S+)") do t[name] = tonumber(value) end
    return t, out
  end
  --- A per-stream figure of /metrics (0 when the stream is not listed).
  function srv.stream_metric(metric, app, name)
    return srv.metrics()[fmt('%s{app="%s",name="%s"}', metric, app, name)] or 0
  end
  return srv
end

--- The HAProxy configuration of docs/CLUSTER.md for nodes (a list of
--- { port }) with the frontend on `port`; balance: the backend's
--- algorithm ("leastconn", the documented one, when nil).
function CL.haproxy_cfg(port, nodes, balance)
  local lines = {
    "global",
    "  maxconn 1024",
    "defaults",
    "  mode tcp",
    "  timeout connect 1s",
    "  timeout client 1m",
    "  timeout server 1m",
    "  retries 2",
    "  option redispatch",
    "frontend rtmp",
    fmt("  bind 127.0.0.1:%d", port),
    "  default_backend nodes",
    "backend nodes",
    "  balance " .. (balance or "leastconn"),
    "  option tcp-check",
  }
  for i, n in ipairs(nodes) do
    lines[#lines + 1] = fmt("  server node%d 127.0.0.1:%d check inter 500ms fall 2 rise 1", i, n.port)
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Start HAProxy in front of nodes; opts.balance: CL.haproxy_cfg's.
--- Returns { port, url(path), cfg, proc }.
function CL.haproxy(nodes, opts)
  local lb = { port = H.free_port() }
  lb.cfg = H.tmpname("haproxy.cfg")
  H.write_file(lb.cfg, CL.haproxy_cfg(lb.port, nodes, opts and opts.balance))
  lb.proc = H.spawn(fmt("haproxy -f %s -db", q(lb.cfg)), { name = "haproxy" })
  assert(H.wait_port(lb.port, 10, lb.proc))
  function lb.url(path) return fmt("rtmp://127.0.0.1:%d/%s", lb.port, path or "live") end
  return lb
end

--- Start ffmpeg publishing `file` to url, looped, in real time; with
--- opts.reconnect, again and again: when it exits (its server died, or
--- refused it) it starts over after opts.pause seconds (0.2), as OBS
--- reconnects. H.kill stops it (and the ffmpeg the loop runs).
function CL.publish(url, file, opts)
  opts = opts or {}
  if not opts.reconnect then return H.ffmpeg_publish(url, file, { loop = true }) end
  local ffmpeg = H.ffmpeg_publish_cmd(url, file, { loop = true })
  local path = H.tmpname("publish-loop.sh")
  H.write_file(path, fmt([[
trap 'kill $child 2>/dev/null; exit 0' TERM INT
while :; do
  %s &
  child=$!
  wait $child
  echo "ffmpeg exited: $?"
  sleep %s
done
]], ffmpeg, tostring(opts.pause or 0.2)))
  return H.spawn("sh " .. q(path), { name = "publish-loop" })
end

return CL
