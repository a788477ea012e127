-- record_flows.lua: (re)record the flows under spec/flows/ with real peers
-- on loopback, then store what replaying each one gives (the trace and the
-- sha256 of every connection's output) in spec/flows/<name>.trace and
-- spec/flows/flows.lua.  spec/unit/replay_spec.lua replays them and
-- compares.  Run from the repository root (after make):
--
--   LUA_PATH="./?.lua;./lua/?.lua;./scripts/?.lua;./spec/?.lua;;" LUA_CPATH="build/?.so;;" \
--     lua5.4 spec/support/record_flows.lua [--expect-only] [name ...]
--
-- --expect-only keeps the captures and only recomputes the expectations
-- (after a deliberate change of a script's or the engine's output).
-- See docs/REPLAY.md.
local H = require "support.helpers"
local C = require "support.capture"
local replay = require "rtmp.replay"
local F = require "support.replay_flv"

local fmt, q = string.format, H.shquote
local DIR = "spec/flows"

-- The media every flow carries: 2 s of 64x64 testsrc at 10 fps, H.264
-- GOP 10, AAC mono 16 kbit/s (about 10 KB).
local tiny
local function tiny_flv()
  if tiny then return tiny end
  tiny = H.tmpname("tiny.flv")
  local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x64:rate=10 " ..
    "-f lavfi -i sine=frequency=440:sample_rate=22050 -t 2 -c:v libx264 -preset veryfast -g 10 " ..
    "-keyint_min 10 -sc_threshold 0 -b:v 40k -pix_fmt yuv420p -c:a aac -b:a 16k -ac 1 -f flv %s",
    q(tiny)), 60)
  assert(rc == 0, "ffmpeg could not make the tiny FLV: " .. out)
  return tiny
end

local function publish_ffmpeg(url)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v error -re -i %s -c copy -f flv %s",
    q(tiny_flv()), q(url)), { name = "ffmpeg-publish" })
end

local function publish_gst(url)
  return H.spawn(fmt("gst-launch-1.0 -q filesrc location=%s ! flvdemux name=d " ..
    "d.video ! queue ! h264parse ! mux. d.audio ! queue ! aacparse ! mux. " ..
    "flvmux name=mux streamable=true ! rtmp2sink location=%s",
    q(tiny_flv()), q(url)), { name = "gst-publish" })
end

local function play_ffmpeg(url)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v error -rw_timeout 3000000 -i %s -c copy -f flv -y %s",
    q(url), q(H.tmpname("ffmpeg-play.flv"))), { name = "ffmpeg-play" })
end

local function play_rtmpdump(url)
  return H.spawn(fmt("rtmpdump -q -v -r %s -o %s", q(url), q(H.tmpname("rtmpdump.flv"))), { name = "rtmpdump" })
end

local function play_gst(url)
  return H.spawn(fmt("gst-launch-1.0 -q rtmp2src location=%s ! fakesink", q(url)), { name = "gst-play" })
end

local function play_luartmp(url)
  return H.spawn(fmt("%s scripts/client/play.lua --timeout 5 %s %s", q(H.luartmp), q(url),
    q(H.tmpname("play.flv"))), { name = "luartmp-play" })
end

-- A publisher and a player against nginx-rtmp; the player starts `delay`
-- seconds after the publisher; both are stopped once the publisher ends.
local function nginx_pair(publish, play, delay)
  return function()
    local srv = H.nginx_start()
    local cap = C.start(srv.port, { name = "flow" })
    local url = srv.url("live/tiny")
    local pub = publish(url)
    H.sleep(delay)
    local player = play(url)
    assert(H.wait_exit(pub, 20), "the publisher did not end")
    H.sleep(1)
    H.kill(player, 3)
    local path = C.stop(cap)
    srv.stop()
    return path
  end
end

-- luartmp itself (scripts/live.lua) serving ffmpeg's stream to an ffmpeg
-- and an rtmpdump player: replaying it into live.lua must give, after the
-- handshake, the bytes the real server sent.
local function luartmp_live()
  local srv = H.luartmp_start{ log_level = "error" }
  local cap = C.start(srv.port, { name = "flow" })
  local url = srv.url("live/tiny")
  local pub = publish_ffmpeg(url)
  H.sleep(0.7)
  local p1 = play_ffmpeg(url)
  local p2 = play_rtmpdump(url)
  assert(H.wait_exit(pub, 20), "the publisher did not end")
  H.sleep(1)
  H.kill(p1, 3)
  H.kill(p2, 3)
  local path = C.stop(cap)
  srv.stop()
  return path
end

-- The luartmp publish client sends the synthetic FLV (support/replay_flv)
-- to nginx-rtmp in real time.
local function publish_lua_to_nginx()
  local srv = H.nginx_start()
  local cap = C.start(srv.port, { name = "flow" })
  local pub = H.spawn(fmt("%s scripts/client/publish.lua %s %s", q(H.luartmp),
    q(F.write(H.tmpname("synth.flv"))), q(srv.url("live/synth"))), { name = "luartmp-publish" })
  assert(H.wait_exit(pub, 20) == 0, "publish.lua failed: " .. H.output(pub))
  local path = C.stop(cap)
  srv.stop()
  return path
end

-- ffmpeg -listen 1 serving the tiny FLV; the luartmp play client plays it.
local function ffmpeg_listen_play()
  local port = H.free_port()
  local cap = C.start(port, { name = "flow" })
  local url = fmt("rtmp://127.0.0.1:%d/live/tiny", port)
  local srv = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v error -re -i %s -c copy -f flv -listen 1 %s",
    q(tiny_flv()), q(url)), { name = "ffmpeg-listen" })
  assert(H.wait_port(port, 10, srv))
  local player = play_luartmp(url)
  assert(H.wait_exit(player, 20), "the player did not end")
  H.kill(srv, 3)
  return C.stop(cap)
end

-- The flows: how each is recorded, and what replays it.  Server flows
-- replay scripts/live.lua with the clients' bytes; client flows replay
-- scripts/client/play.lua with the server's bytes of one connection.
local FLOWS = {
  { name = "ffmpeg_publish_rtmpdump_play",
    about = "ffmpeg publishes, rtmpdump plays 0.7 s later (both against nginx-rtmp); replayed into live.lua",
    record = nginx_pair(publish_ffmpeg, play_rtmpdump, 0.7),
    script = "scripts/live.lua" },
  { name = "gst_publish_ffmpeg_play",
    about = "GStreamer rtmp2sink publishes, ffmpeg plays 0.7 s later (against nginx-rtmp); replayed into live.lua",
    record = nginx_pair(publish_gst, play_ffmpeg, 0.7),
    script = "scripts/live.lua" },
  { name = "ffmpeg_publish_gst_play",
    about = "ffmpeg publishes, GStreamer rtmp2src plays 0.7 s later (against nginx-rtmp); replayed into live.lua",
    record = nginx_pair(publish_ffmpeg, play_gst, 0.7),
    script = "scripts/live.lua" },
  { name = "luartmp_live_serves_ffmpeg_rtmpdump",
    about = "luartmp live.lua serves ffmpeg's stream to ffmpeg and rtmpdump players; replayed into live.lua, " ..
            "whose output after the handshake must equal what the real server sent",
    record = luartmp_live, fidelity = true,
    script = "scripts/live.lua" },
  { name = "nginx_serves_play_lua",
    about = "nginx-rtmp serves a stream ffmpeg publishes to the luartmp play client; replayed into play.lua " ..
            "with nginx's bytes of the player's connection (2)",
    record = nginx_pair(publish_ffmpeg, play_luartmp, 0.5),
    script = "scripts/client/play.lua", args = { "rtmp://$SERVER/live/tiny", "$OUT" }, connection = 2,
    fidelity = true },
  { name = "nginx_takes_publish_lua",
    about = "the luartmp publish client sends a synthetic FLV to nginx-rtmp in real time; replayed into " ..
            "publish.lua (same file), whose output after the handshake must equal what it really sent",
    record = publish_lua_to_nginx, fidelity = true,
    script = "scripts/client/publish.lua", args = { "$FLV", "rtmp://$SERVER/live/synth" } },
  { name = "ffmpeg_listen_serves_play_lua",
    about = "ffmpeg -listen 1 serves the tiny FLV to the luartmp play client; replayed into play.lua " ..
            "with ffmpeg's bytes",
    record = ffmpeg_listen_play,
    script = "scripts/client/play.lua", args = { "rtmp://$SERVER/live/tiny", "$OUT" }, fidelity = true },
}

-- What replaying a flow gives: { trace = text, conns = { { id, recorded,
-- bytes, sha256, closed } } }, or nil, err.  out: the path for "$OUT".
local function expectation(flow, capture, out)
  local cap, cerr = require("rtmp.capture").open(capture)
  if not cap then return nil, cerr end
  local server = cap.conns[flow.connection or 1].server
  local args = {}
  for i, a in ipairs(flow.args or {}) do
    args[i] = a == "$OUT" and out or a == "$FLV" and F.write(H.tmpname("synth.flv"))
      or a:gsub("%$SERVER", server)
  end
  local res, err = replay.run{ capture = capture, script = flow.script, args = args,
                               connection = flow.connection }
  if not res then return nil, err end
  local conns = {}
  for _, c in ipairs(res.conns) do
    conns[#conns + 1] = { id = c.id, recorded = c.recorded, bytes = #c.output,
                          sha256 = replay.sha256(c.output), closed = c.closed }
  end
  return { trace = table.concat(res.trace, "\n") .. "\n", conns = conns, res = res, exit = res.exit,
           stderr = res.stderr }
end

local function lua_string(s) return fmt("%q", s) end

local function write_manifest(entries)
  local out = { "-- Written by spec/support/record_flows.lua: the recorded flows and what",
                "-- replaying each one must give.  Do not edit by hand.", "return {" }
  for _, e in ipairs(entries) do
    out[#out + 1] = "  {"
    out[#out + 1] = fmt("    name = %s,", lua_string(e.name))
    out[#out + 1] = fmt("    about = %s,", lua_string(e.about))
    out[#out + 1] = fmt("    capture = %s, trace = %s,", lua_string(e.capture), lua_string(e.trace))
    out[#out + 1] = fmt("    script = %s,", lua_string(e.script))
    if e.args then
      local a = {}
      for i, v in ipairs(e.args) do a[i] = lua_string(v) end
      out[#out + 1] = fmt("    args = { %s },", table.concat(a, ", "))
    end
    if e.connection then out[#out + 1] = fmt("    connection = %d,", e.connection) end
    if e.fidelity then out[#out + 1] = "    fidelity = true," end
    if e.exit then out[#out + 1] = fmt("    exit = %d,", e.exit) end
    out[#out + 1] = fmt("    stderr = %s,", lua_string(e.stderr or ""))
    out[#out + 1] = "    conns = {"
    for _, c in ipairs(e.conns) do
      out[#out + 1] = fmt("      { id = %d, recorded = %s, bytes = %d, sha256 = %s, closed = %s },",
        c.id, tostring(c.recorded), c.bytes, lua_string(c.sha256), c.closed and lua_string(c.closed) or "nil")
    end
    out[#out + 1] = "    },"
    out[#out + 1] = "  },"
  end
  out[#out + 1] = "}"
  H.write_file(DIR .. "/flows.lua", table.concat(out, "\n") .. "\n")
end

-- main
local cmd = require("rtmp.argv").new{
  usage = "usage: lua5.4 spec/support/record_flows.lua [--expect-only] [name ...]\n\noptions:\n",
  options = {
    { "expect-only", help = "keep the captures, only recompute the expectations" },
  },
}
local o, names = cmd:run(arg)
local expect_only, wanted = o["expect-only"] == true, {}
for _, a in ipairs(names) do wanted[a] = true end
H.mkdir(DIR)
local old = {}
local okm, manifest = pcall(dofile, DIR .. "/flows.lua")
if okm then for _, e in ipairs(manifest) do old[e.name] = e end end

local entries = {}
local failed = false
for _, flow in ipairs(FLOWS) do
  local capture = fmt("%s/%s.pcapng", DIR, flow.name)
  if next(wanted) and not wanted[flow.name] then
    if old[flow.name] then entries[#entries + 1] = old[flow.name] end
  else
    if not expect_only then
      io.stderr:write(fmt("recording %s ...\n", flow.name))
      local ok, path = pcall(flow.record)
      H.cleanup()
      if not ok then
        io.stderr:write(fmt("  %s: recording failed: %s\n", flow.name, tostring(path)))
        failed = true
        path = nil
      end
      if path then assert(H.exec(fmt("cp %s %s", q(path), q(capture))) == 0) end
    end
    local e, err = expectation(flow, capture, H.tmpname(flow.name .. ".flv"))
    if not e then
      io.stderr:write(fmt("  %s: replay failed: %s\n", flow.name, tostring(err)))
      failed = true
    else
      H.write_file(fmt("%s/%s.trace", DIR, flow.name), e.trace)
      for _, c in ipairs(e.conns) do
        io.stderr:write(fmt("  conn %d (recorded %s): %d bytes sha256 %s closed %s\n", c.id,
          tostring(c.recorded), c.bytes, c.sha256, tostring(c.closed)))
      end
      for _, x in ipairs(e.res.errors) do io.stderr:write("  script error: " .. x .. "\n") end
      entries[#entries + 1] = { name = flow.name, about = flow.about, capture = capture,
        trace = fmt("%s/%s.trace", DIR, flow.name), script = flow.script, args = flow.args,
        connection = flow.connection, conns = e.conns, exit = e.exit, stderr = e.stderr,
        fidelity = flow.fidelity }
    end
  end
end
write_manifest(entries)
os.exit(failed and 1 or 0)
