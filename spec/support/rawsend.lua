-- Support for spec/interop/raw_spec.lua: an in-process server that plays
-- the FLV fixture to a real player in a way the spec chooses (chunk by
-- chunk, interleaved, with Set Chunk Size changes...), a client flow for
-- publishing/idling, an nginx-rtmp with extra directives, and tshark
-- field extraction.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local R = {}
local fmt = string.format

-- Messages of the fixture: { type, timestamp, data } in file order.
function R.fixture_tags()
  if not R.tags then R.tags = C.flv_tags(H.fixture_flv()) end
  return R.tags
end

-- Start an in-process server on a free port. opts.on_play(conn, sid) is
-- called once the player's play was answered (srv.player is then that
-- connection); opts.settings go to
-- rtmp.listen; opts.on_message(conn, msg) sees every message first
-- (return true to stop the default handling). Returns { port, url(path),
-- conns (in accept order), closed (conn -> reason), close() }.
function R.serve(opts)
  local srv = { conns = {}, closed = {} }
  local settings = { listen = "127.0.0.1:0" }
  for k, v in pairs(opts.settings or {}) do settings[k] = v end
  settings.on_open = function(conn)
    srv.conns[#srv.conns + 1] = conn
    if opts.on_open then opts.on_open(conn) end
  end
  settings.on_close = function(conn, reason) srv.closed[conn] = reason end
  settings.on_message = function(conn, msg)
    if opts.on_message and opts.on_message(conn, msg) then return end
    if msg.name == "connect" then
      conn:set_window_ack_size(2500000)
      conn:set_peer_bandwidth(2500000, "dynamic")
      conn:command(nil, "_result", msg.txn, { fmsVer = "FMS/3,0,1,123", capabilities = 31 },
        { level = "status", code = "NetConnection.Connect.Success", description = "ok", objectEncoding = 0 })
    elseif msg.name == "createStream" then
      conn:command(nil, "_result", msg.txn, rtmp.null, 1)
    elseif msg.name == "releaseStream" or msg.name == "FCPublish" then
      conn:command(nil, "_result", msg.txn, rtmp.null)
    elseif msg.name == "publish" then
      conn:user_control("stream_begin", msg.stream)
      conn:command({ stream = msg.stream, csid = 5 }, "onStatus", 0, rtmp.null,
        { level = "status", code = "NetStream.Publish.Start", description = "go" })
    elseif msg.name == "play" then
      conn:user_control("stream_begin", msg.stream)
      conn:command({ stream = msg.stream, csid = 5 }, "onStatus", 0, rtmp.null,
        { level = "status", code = "NetStream.Play.Start", description = "go" })
      if opts.on_play then opts.on_play(conn, msg.stream) end
      srv.player = conn
    end
  end
  local server = assert(rtmp.listen(settings))
  srv.server = server
  srv.port = server.port
  function srv.url(path) return fmt("rtmp://127.0.0.1:%d/%s", srv.port, path or "live/raw") end
  function srv.close()
    for _, c in ipairs(srv.conns) do if not c.closed then c:close("test done") end end
    server:close()
    C.wait_until(function()
      for _, c in ipairs(srv.conns) do if not c.closed then return false end end
      return true
    end, 2)
  end
  return srv
end

-- Run the loop until the player's play was answered (srv.player) and
-- every byte queued on that connection is written, then close it (the
-- player then ends its recording). Never call it from a handler: it runs
-- the loop.
function R.drain_and_close(srv, p, timeout)
  C.wait_until(function() return srv.player or H.exited(p) end, timeout or 20)
  local conn = srv.player
  if not conn then return end
  C.wait_until(function() return conn.closed or conn.pending == 0 end, timeout or 20)
  if not conn.closed then conn:close("all sent") end
end

-- Run the loop while a spawned process runs, at most `timeout` seconds.
function R.loop_until_exit(p, timeout)
  return C.wait_until(function() return H.exited(p) end, timeout or 30)
end

-- Start nginx-rtmp like H.nginx_start, with `extra` directives added to
-- the server block (e.g. "ping 1s; ping_timeout 1s;").
function R.nginx_start(extra)
  local port = H.free_port()
  local dir = H.mkdir(H.tmpname("nginx-raw"))
  local adir = H.abspath(dir)
  local conf = adir .. "/nginx.conf"
  H.write_file(conf, table.concat({
    "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;",
    "daemon off;", "master_process off;", "worker_processes 1;",
    fmt("error_log %s/error.log debug;", adir),
    fmt("pid %s/nginx.pid;", adir),
    "events {}",
    "rtmp {", "  server {",
    fmt("    listen 127.0.0.1:%d;", port),
    "    " .. (extra or ""),
    "    application live { live on; }",
    "  }", "}", "" }, "\n"))
  local proc = H.spawn(fmt("nginx -c %s -p %s/", H.shquote(conf), H.shquote(adir)), { name = "nginx" })
  assert(H.wait_port(port, 10, proc))
  local srv = { port = port, proc = proc }
  function srv.url(path) return fmt("rtmp://127.0.0.1:%d/%s", port, path or "live") end
  function srv.log() return H.read_file(adir .. "/error.log") or "" end
  return srv
end

-- Stop a capture once its file has stopped growing (dumpcap writes with
-- a delay; stopping at once can lose the last packets).
function R.capture_stop(cap)
  H.wait_quiet(cap.file, 1, 10)
  return cap.stop()
end

-- tshark's RTMP fields for every packet of a capture: a list of rows, one
-- per decoded packet, each a table field -> list of values (strings, in
-- the order tshark prints them). Only packets sent by `src_port` when
-- given.
function R.tshark_fields(file, port, fields, src_port)
  local cmd = { fmt("tshark -r %s -d tcp.port==%d,rtmpt -Y %s -T fields -E separator=/t -E occurrence=a",
    H.shquote(file), port, H.shquote(src_port and ("rtmpt && tcp.srcport==" .. src_port) or "rtmpt")) }
  for _, f in ipairs(fields) do cmd[#cmd + 1] = "-e " .. f end
  local rc, out = H.run(table.concat(cmd, " ") .. " 2>/dev/null", 120)
  assert(rc == 0, "tshark failed: " .. out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local row, i = {}, 0
    for col in (line .. "\t"):gmatch("([^\t]*)\t") do
      i = i + 1
      local vals = {}
      for v in col:gmatch("[^,]+") do vals[#vals + 1] = v end
      row[fields[i]] = vals
    end
    rows[#rows + 1] = row
  end
  return rows
end

-- All values of one field over rows, flattened in order.
function R.values(rows, field)
  local out = {}
  for _, r in ipairs(rows) do
    for _, v in ipairs(r[field] or {}) do out[#out + 1] = v end
  end
  return out
end

return R
