-- Reloading the live server without dropping (rtmp.reload on SIGHUP,
-- lua/rtmp/reload.lua; docs/RELOAD.md).
--
-- A user script in a directory of its own requires live (scripts/live.lua,
-- loaded again from scripts/ on each reload) and sets on_play.  ffmpeg
-- publishes the fixture in real time to an ffmpeg, an rtmpdump and a
-- GStreamer player that started before it; meanwhile two SIGHUPs: the
-- first with a syntax error in the script (refused, logged with its file
-- and line; a new player is still let in by the running on_play), the
-- second with an on_play that refuses (a new player is refused, and sees
-- why).  The three players get every frame of the publish, and the HTTP
-- API (--http) answers on across the reloads with its counters kept.

local H = require "support.helpers"
local F = H.FIXTURE

local fmt = string.format

-- Frames a player may miss at the end (H.FIXTURE says why), and the
-- fixture's AAC frames.
local TAIL_SLACK, AUDIO_SLACK, AUDIO_FRAMES = F.tail_slack, F.audio_slack, F.audio_frames

-- The user's script: on_play logs its version, then `decide` (Lua) runs.
local function user_script(version, decide)
  return fmt([[
local live = require "live"
live.hooks.on_play = function(conn, app, name)
  conn:log("info", "on_play %s %%s", name)
  %s
end
live.start()
]], version, decide or "")
end

-- A player that reads one second of url and ends: its exit status and output.
local function probe_player(url)
  local p = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -rw_timeout 4000000 -i %s -t 1 -c copy -f null -",
    H.shquote(url)), { name = "ffmpeg-probe" })
  return H.wait_exit(p, 15), H.output(p)
end

-- luartmp_connections_closed_total of the live server's /metrics (--http).
local function closed_total(base)
  local rc, out = H.run(fmt("curl -s -m 5 %s/metrics", base), 10)
  assert(rc == 0, "GET /metrics: " .. out)
  return tonumber(out:match("\nluartmp_connections_closed_total (%d+)"))
end

local function assert_between(lo, hi, n, what)
  assert(n and n >= lo and n <= hi, fmt("%s: %s, expected %d..%d", what, tostring(n), lo, hi))
end

describe("rtmp.reload on SIGHUP", function()
  after_each(function() H.cleanup() end)

  it("keeps three players of a live publish while a broken and a refusing script are loaded", function()
    local fixture = H.fixture_flv()
    local dir = H.mkdir(H.tmpname("reload-script"))
    local script = dir .. "/main.lua"
    H.write_file(script, user_script("v1"))
    local hport = H.free_port()
    local base = "http://127.0.0.1:" .. hport
    local srv = H.luartmp_start{ script = script, log_level = "info", extra = { "--http", "127.0.0.1:" .. hport } }
    local url = srv.url("live/test")
    local reload = srv.reload

    local ff = { file = H.tmpname("reload-ffmpeg.flv") }
    local dump = { file = H.tmpname("reload-rtmpdump.flv") }
    ff.proc = H.ffmpeg_play(url, ff.file, 4)
    dump.proc = H.rtmpdump_play(url, dump.file)
    local gst = H.gst_play(url)
    assert(H.wait_until(function() return srv.count("play", "test") >= 3 end, 15),
      "the three players did not all reach play:\n" .. srv.log())
    local pub = H.ffmpeg_publish(url, fixture)
    assert(H.wait_until(function() return H.count_plain(srv.log(), "publish live/test") > 0 end, 5), srv.log())

    -- 1: a syntax error: refused with its file and line, nothing loaded
    H.write_file(script, user_script("v2", "local broken = = 1"))
    reload("reload refused: ")
    local log = srv.log()
    assert(H.count_plain(log, "reload refused: " .. script .. ":4: unexpected symbol near '='") > 0,
      "the refusal names the file and line:\n" .. log)
    local v1 = H.count_plain(srv.log(), "on_play v1 test")
    assert.are.equal(3, v1, "the three players passed on_play v1")
    local rc, out = probe_player(url)
    assert.are.equal(0, rc, "a player after the refused reload is let in; its output:\n" .. out)
    assert.are.equal(v1 + 1, H.count_plain(srv.log(), "on_play v1 test"), "the running on_play decided")
    assert.are.equal(0, H.count_plain(srv.log(), "on_play v2"))
    local closed = closed_total(base)
    assert(closed and closed >= 1, "the first new player's connection is counted closed")

    -- 2: an on_play that refuses: new players are refused from now on
    H.write_file(script, user_script("v3", 'return false, "closed to new players"'))
    reload("reloaded " .. script)
    log = srv.log()
    assert(log:match("reloaded [^\n]* %(modules again: [^\n]*live"), "live.lua was loaded again:\n" .. log)
    rc, out = probe_player(url)
    assert.are_not.equal(0, rc, "a player after the second reload is refused; its output:\n" .. out)
    assert(H.count_plain(out, "closed to new players") > 0, "ffmpeg says why it was refused:\n" .. out)
    assert.are.equal(1, H.count_plain(srv.log(), "on_play v3 test"), "the new on_play decided")
    -- the HTTP API goes on (same server, kept counters: one more closed)
    assert(H.wait_until(function() return closed_total(base) == closed + 1 end, 3),
      "/metrics after the reload: connections closed " .. tostring(closed_total(base)) .. ", want " .. closed + 1)

    -- the publish ends; the three players end (ffmpeg by itself, rtmpdump
    -- and GStreamer once their output is quiet)
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 12), "publisher exit status:\n" .. H.output(pub))
    assert.are.equal(0, H.wait_exit(ff.proc, 15), "ffmpeg player exit status:\n" .. H.output(ff.proc))
    H.wait_quiet(dump.file, 1.5, 10)
    H.kill(dump.proc)
    H.wait_until(function() return H.exited(gst) end, 3)
    local gst_frames = H.gst_frames(gst)
    H.kill(gst)
    assert(srv.alive(), "luartmp ended:\n" .. srv.log())

    for label, file in pairs{ ffmpeg = ff.file, rtmpdump = dump.file } do
      local info = assert(H.probe(file))
      assert(info.video and info.audio, label .. ": no video or audio in " .. file .. "\n" .. info.log)
      assert_between(F.frames - TAIL_SLACK, F.frames, info.video.frames, label .. " video frames")
      assert_between(AUDIO_FRAMES - AUDIO_SLACK, AUDIO_FRAMES, info.audio.frames, label .. " audio frames")
    end
    assert_between(F.frames - TAIL_SLACK, F.frames, gst_frames,
      "GStreamer decoded video frames; its output:\n" .. H.output(gst):sub(-2000))
    assert.are.equal(1, H.count_plain(srv.log(), "reloaded " .. script))
    assert.are.equal(1, H.count_plain(srv.log(), "reload refused: "))
  end)

  it("a cluster node reloaded while it publishes keeps renewing its directory entry; its players and the "
    .. "other node's go on", function()
    local CL = require "support.cluster"
    local TTL = 2
    local redis = require("support.redis").start()
    local A, B = CL.node(redis, { ttl = TTL, log_level = "info" }), CL.node(redis, { ttl = TTL, log_level = "info" })
    local key = CL.key("live/rl")
    local pub = H.ffmpeg_publish(A.url("live/rl"), H.fixture_flv())
    assert(H.wait_until(function() return CL.get(redis, key) == A.node_url end, 5), "no entry for A:\n" .. A.log())
    local players = H.decoders(A.url("live/rl"), " on A")
    H.decoders(B.url("live/rl"), " on B (a pull)", players)
    assert(H.wait_until(function() return H.fewest_frames(players) >= 25 end, 10), "no video:\n" .. B.log())

    local _, mark = H.fewest_frames(players)
    local at = H.now()
    H.signal(A.proc, "HUP")
    assert(H.wait_until(function() H.fewest_frames(players) return H.count_plain(A.log(), "reloaded ") > 0 end, 5),
      "no reload:\n" .. A.log())
    -- past a TTL after the reload the entry is still A's, renewed by the new load's heartbeat
    local lowest, renewed = math.huge, false
    H.wait_until(function()
      H.fewest_frames(players)
      local ttl = CL.pttl(redis, key)
      if ttl > lowest + 100 then renewed = true end
      lowest = math.min(lowest, ttl)
      return H.now() > at + TTL * 1.5
    end, TTL * 2)
    assert.are.equal(A.node_url, CL.get(redis, key))
    assert.is_true(renewed, "the entry's TTL was not renewed after the reload")
    assert(H.wait_until(function() return H.fewest_frames(players, mark) >= 75 end, 5), "the players stopped")
    for _, p in ipairs(players) do
      assert.is_nil(H.exited(p.proc), p.name .. " exited:\n" .. H.output(p.proc))
      local gap = p.tl.stall(at)
      assert(gap < 1, fmt("%s: %.2f s without a frame across the reload", p.name, gap))
    end
    assert.are.equal(0, H.count_plain(A.log(), "reload refused"), A.log())
    H.kill(pub)
  end)
end)
