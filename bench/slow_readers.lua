-- bench/slow_readers.lua: the slow-reader scenario of docs/SLOW.md at full length,
-- outside make test (it takes about two minutes):
--   make && LUA_PATH="./?.lua;./lua/?.lua;./scripts/?.lua;./spec/?.lua;;" LUA_CPATH="build/?.so;;" lua5.4 bench/slow_readers.lua
-- live.lua with its default slow-reader settings, 100 players (98 counting luartmp
-- players, 1 ffmpeg, 1 that stops reading right after Play.Start and never
-- reads again), a 64 s 4 Mbit/s stream published by ffmpeg -re.
local H = require "support.helpers"
local fmt, q = string.format, H.shquote
local flv = "build/test-tmp/slow-640x360-25fps-g25-64s.flv"
if not H.file_size(flv) then
  local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 " ..
    "-f lavfi -i sine=frequency=440:sample_rate=44100 -t 64 -vf noise=alls=30:allf=t " ..
    "-c:v libx264 -preset ultrafast -g 25 -keyint_min 25 -sc_threshold 0 -b:v 4M -maxrate 4M " ..
    "-bufsize 1M -pix_fmt yuv420p -c:a aac -b:a 64k -f flv %s", flv), 600)
  assert(rc == 0, out)
end
local srv = H.luartmp_start{ log_level = "info" }
local players = H.spawn(fmt("%s spec/interop/slow_players.lua %s s 98 %s", q(H.luartmp), srv.url("live"), flv), { name = "players" })
local out = H.tmpname("slow60-ffmpeg.flv")
local ff = H.ffmpeg_play(srv.url("live/s"), out, 6)
local resume = H.tmpname("resume")
local stall = H.spawn(fmt("%s spec/interop/slow_stall.lua %d live s 0 %s", q(H.luartmp), srv.port, q(resume)), { name = "stall" })
assert(H.wait_until(function() return H.output(stall):match("stalled after") end, 20), H.output(stall))
assert(H.wait_until(function() return H.output(players):find("ready 98", 1, true) end, 30), H.output(players))
local function rss() return tonumber((H.read_file(fmt("/proc/%d/status", srv.proc.pid)) or ""):match("VmRSS:%s*(%d+)")) end
local rss0, rmax = rss(), rss()
local t0 = H.now()
local pub = H.ffmpeg_publish(srv.url("live/s"), flv)
repeat H.sleep(0.2); rmax = math.max(rmax, rss() or 0) until H.exited(pub) or H.now() - t0 > 120
print("publisher exit", H.exited(pub), "seconds", H.now() - t0)
H.wait_exit(players, 30); H.wait_exit(ff, 30)
local text = H.output(players)
local expected = text:match("expected (video=%d+ audio=%d+ digest=%x+)")
local good = 0
for i, got in text:gmatch("player (%d+) ([^\n]*)") do if got == expected then good = good + 1 end end
print("expected", expected, "players with every frame:", good, "of 98")
local probe = H.probe(out)
print("ffmpeg player video frames", probe.video and probe.video.frames)
print(fmt("server RSS before %d KB, peak %d KB, growth %d KB", rss0, rmax, rmax - rss0))
for line in srv.log():gmatch("[^\n]+") do
  if line:find("slow", 1, true) or line:find("queue", 1, true) then print(line:sub(1, 240)) end
end
H.cleanup()
