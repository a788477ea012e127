-- Push and pull relays of the live server (scripts/relay.lua), with real
-- peers: ffmpeg publishing and playing, nginx-rtmp as the other server,
-- and two luartmp instances as origin and edge (with the edge script
-- exactly as docs/RELAY.md prints it).
--
-- Expected frame counts: the media is a 4 s cut of the fixture (starting at
-- a keyframe; its frame counts are measured with ffprobe, not assumed). Players
-- subscribe before anyone publishes, so a relay that loses nothing delivers
-- every frame; the last ones may still be in flight when the publisher
-- leaves (as in live_spec.lua: at most 2 video frames, and the same 80 ms of
-- audio, 4 AAC frames). A relay connection that is up before the first
-- keyframe loses nothing at the start either: what arrived before it was
-- publishing is sent from the cache (metadata, sequence headers, the GOP).

local H = require "support.helpers"
local F = H.FIXTURE

local TAIL_SLACK, AUDIO_SLACK = F.tail_slack, F.audio_slack

local fmt = string.format

-- The 4 s media file and its frame counts, made once per run of this file.
local media
local function media_file()
  if media then return media end
  local path = H.tmpname("relay-4s.flv")
  local rc, out = H.run(fmt("ffmpeg -nostdin -v error -i %s -t 4 -c copy -f flv -y %s",
    H.shquote(H.fixture_flv()), H.shquote(path)), 60)
  assert(rc == 0, "ffmpeg could not cut the fixture: " .. out)
  local info = assert(H.probe(path))
  assert(info.video and info.audio, "bad cut: " .. info.log)
  -- about 4 s at 25 fps (a stream copy cut ends a little after the mark)
  assert(info.video.frames >= 4 * F.fps and info.video.frames <= 4 * F.fps + 5,
    "the 4 s cut has " .. tostring(info.video.frames) .. " video frames")
  media = { path = path, video = info.video.frames, audio = info.audio.frames }
  return media
end

-- A recording's video and audio frame counts, after checking it decodes as
-- the fixture's codecs.
local function recorded(label, file)
  assert.is_truthy(H.file_size(file), label .. ": no recording at " .. file)
  local info, err = H.probe(file)
  assert(info, label .. ": ffprobe failed: " .. tostring(err))
  assert(info.video and info.audio, label .. ": missing a stream:\n" .. info.log)
  assert.are.equal(F.video_codec, info.video.codec, label .. ": video codec")
  assert.are.equal(F.audio_codec, info.audio.codec, label .. ": audio codec")
  return info.video.frames, info.audio.frames
end

local function assert_between(lo, hi, n, what)
  assert(n and n >= lo and n <= hi, fmt("%s: %s, expected %d..%d", what, tostring(n), lo, hi))
end

local function assert_whole(label, file)
  local m = media_file()
  local v, a = recorded(label, file)
  assert_between(m.video - TAIL_SLACK, m.video, v, label .. " video frames")
  assert_between(m.audio - AUDIO_SLACK, m.audio, a, label .. " audio frames")
end

-- The relay log lines of a luartmp log.
local function relay_lines(log, pattern)
  local t = {}
  for line in log:gmatch("[^\n]+") do
    if line:find(" relay ", 1, true) and (not pattern or line:find(pattern)) then t[#t + 1] = line end
  end
  return t
end

-- The script in docs/RELAY.md's ```lua block that starts with "-- NAME:".
local function doc_script(name)
  local doc = assert(H.read_file("docs/RELAY.md"))
  for block in doc:gmatch("```lua\n(.-)```") do
    if block:find("^%-%- " .. name:gsub("%.", "%%.") .. ":") then return block end
  end
  error("docs/RELAY.md has no " .. name)
end

-- An origin (the live server) on port, and ffmpeg publishing file there
-- in a loop as live/test: the origin's process, the publisher's.
local function origin_on(port, file)
  local p = H.spawn(fmt("%s --listen 127.0.0.1:%d --log-level debug scripts/live.lua", H.shquote(H.luartmp), port),
    { name = "luartmp-origin" })
  assert(H.wait_port(port, 10, p))
  return p, H.ffmpeg_publish(fmt("rtmp://127.0.0.1:%d/live/test", port), file, { loop = true })
end

describe("relays", function()
  after_each(function() H.cleanup() end)

  it("pushes a stream published here to nginx-rtmp, where an ffmpeg player receives all of it", function()
    local m = media_file()
    local ngx = H.nginx_start()
    local srv = H.luartmp_start{ script = "spec/interop/relay_live.lua", args = { "push", ngx.url("live") } }
    local out = H.tmpname("push-play.flv")
    local player = H.ffmpeg_play(ngx.url("live/test"), out, 3)
    assert(H.wait_until(function() return ngx.count("play", "test") >= 1 end, 15),
      "the player did not reach nginx:\n" .. ngx.log())

    local pub = H.ffmpeg_publish(srv.url("live/test"), m.path)
    assert.are.equal(0, H.wait_exit(pub, 20), "publisher exit status:\n" .. H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), "player exit status:\n" .. H.output(player))
    assert_whole("nginx player", out)

    -- nginx saw one publish of that name, from our relay's connect.
    local nlog = ngx.log()
    assert.are.equal(1, ngx.count("publish", "test"), nlog)
    -- (nginx logs the first 32 bytes of flashVer)
    assert.is_truthy(nlog:find("flashver='FMLE/3.0 (compatible; luartmp", 1, true), nlog)
    local log = srv.log()
    assert.are.equal(1, #relay_lines(log, "publishing %(attempt 1%)"), log)
    assert(H.wait_until(function() return #relay_lines(srv.log(), "stopped %(unpublished%)") == 1 end, 5),
      "the push did not stop with the publisher:\n" .. srv.log())
    assert.are.equal(0, #relay_lines(srv.log(), " retry "), srv.log())
    assert.is_nil(nlog:find("%[error%]"), nlog)
  end)

  it("pulls a stream from nginx-rtmp for two ffmpeg players over one upstream connection", function()
    local m = media_file()
    local ngx = H.nginx_start()
    local srv = H.luartmp_start{ script = "spec/interop/relay_live.lua", args = { "pull", ngx.url("live") } }
    local outs, players = { H.tmpname("pull-play1.flv"), H.tmpname("pull-play2.flv") }, {}
    for i, out in ipairs(outs) do players[i] = H.ffmpeg_play(srv.url("live/test"), out, 3) end
    assert(H.wait_until(function() return srv.count("play", "test") >= 2 and ngx.count("play", "test") >= 1 end, 15),
      "players or the pull did not start:\n" .. srv.log() .. "\n" .. ngx.log())

    local pub = H.ffmpeg_publish(ngx.url("live/test"), m.path)
    assert.are.equal(0, H.wait_exit(pub, 20), "publisher exit status:\n" .. H.output(pub))
    for i, p in ipairs(players) do
      assert.are.equal(0, H.wait_exit(p, 15), "player exit status:\n" .. H.output(p))
      assert_whole("player " .. i, outs[i])
    end
    -- one upstream play for both players, ended when the last one left;
    -- nginx's StreamEOF at the end of the publisher became our unpublish
    assert.are.equal(1, ngx.count("play", "test"), ngx.log())
    assert.is_truthy(srv.log():find("unpublish live/test", 1, true), srv.log())
    assert(H.wait_until(function() return #relay_lines(srv.log(), "stopped %(no players left%)") == 1 end, 5),
      "the pull did not stop after the players:\n" .. srv.log())
    assert.are.equal(1, #relay_lines(srv.log(), "playing %(attempt 1%)"), srv.log())
  end)

  it("forms an origin and an edge from two luartmp instances, with the edge script of docs/RELAY.md", function()
    local m = media_file()
    local origin = H.luartmp_start()
    local edge_lua = H.tmpname("edge.lua")
    H.write_file(edge_lua, doc_script("edge.lua"))
    local edge = H.luartmp_start{ script = edge_lua, args = { fmt("rtmp://127.0.0.1:%d", origin.port) } }
    local outs, players = { H.tmpname("edge-play1.flv"), H.tmpname("edge-play2.flv") }, {}
    for i, out in ipairs(outs) do players[i] = H.ffmpeg_play(edge.url("live/test"), out, 4) end
    assert(H.wait_until(function() return edge.count("play", "test") >= 2 and origin.count("play", "test") >= 1 end, 15),
      "players or the pull did not start:\n" .. edge.log() .. "\n" .. origin.log())

    local pub = H.ffmpeg_publish(origin.url("live/test"), m.path)
    -- a late joiner 1.5 s in (mid-GOP) is served from the edge's GOP cache:
    -- it starts at a keyframe, the first (0 s) or, at the latest, the second (2 s)
    local d = pub.started + 1.5 - H.now()
    if d > 0 then H.sleep(d) end
    local late_out = H.tmpname("edge-late.flv")
    local late = H.ffmpeg_play(edge.url("live/test"), late_out, 4)
    assert.are.equal(0, H.wait_exit(pub, 20), "publisher exit status:\n" .. H.output(pub))
    for i, p in ipairs(players) do
      assert.are.equal(0, H.wait_exit(p, 15), "player exit status:\n" .. H.output(p))
      assert_whole("edge player " .. i, outs[i])
    end
    assert.are.equal(0, H.wait_exit(late, 15), "late player exit status:\n" .. H.output(late))
    local lv = recorded("late edge player", late_out)
    assert_between(m.video - F.gop - TAIL_SLACK, m.video, lv, "late edge player video frames")
    assert.are.equal("K_", H.first_video_flags(late_out))
    -- the origin served one player, the edge, for the three players there
    assert.are.equal(1, origin.count("play", "test"), origin.log())
    assert.are.equal(1, origin.count("publish", "test"), origin.log())
    -- the origin's unpublish reached the edge's players through the relay
    assert.is_truthy(edge.log():find("unpublish live/test", 1, true), edge.log())
    assert(H.wait_until(function() return #relay_lines(edge.log(), "stopped %(no players left%)") == 1 end, 5),
      "the edge's pull did not stop after the players:\n" .. edge.log())
    local rc, olog = origin.stop()
    assert.are.equal(0, rc, olog)
    local erc, elog = edge.stop()
    assert.are.equal(0, erc, elog)
  end)

  it("logs an upstream's refusal (NetStream.Publish.BadName) and retries with growing delays", function()
    local m = media_file()
    local up = H.luartmp_start()
    local direct = H.ffmpeg_publish(up.url("live/test"), m.path, { loop = true })
    assert(H.wait_until(function() return up.count("publish", "test") == 1 end, 10), up.log())
    local srv = H.luartmp_start{ script = "spec/interop/relay_live.lua",
      args = { "push", up.url("live"), "retry_min=0.2", "retry_max=0.4" } }
    local pub = H.ffmpeg_publish(srv.url("live/test"), m.path, { loop = true })
    assert(H.wait_until(function() return #relay_lines(srv.log(), " retry ") >= 3 end, 10),
      "not three retries:\n" .. srv.log())
    local lines = relay_lines(srv.log(), " retry ")
    for i, delay in ipairs{ "0.2", "0.4", "0.4" } do
      assert.is_truthy(lines[i]:find(": NetStream.Publish.BadName: test is already publishing.; retry "
        .. (i + 1) .. " in " .. delay .. "s", 1, true), lines[i])
    end
    assert.are.equal(0, #relay_lines(srv.log(), "publishing %(attempt"), srv.log())
    -- the upstream kept its own publisher and refused ours each time
    assert.are.equal(1, H.count_plain(up.log(), " publish live/test\n"), up.log())
    assert.is_truthy(H.count_plain(up.log(), "publish live/test refused: already publishing") >= 3, up.log())
    H.kill(pub)
    H.kill(direct)
  end)

  it("with hold = 0, ends the stream when the upstream is killed and pulls again for a player that stays, "
    .. "whose stream resumes", function()
    -- The player is the in-process test client: unlike ffmpeg it stays
    -- subscribed after NetStream.Play.UnpublishNotify. Waiting pumps its loop.
    -- hold = 0: no hold (cluster_spec has the players that the hold keeps).
    local C = require "support.client"
    local m = media_file()
    local up_port = H.free_port()
    local function start_origin() return origin_on(up_port, m.path) end
    local origin, pub = start_origin()
    local edge = H.luartmp_start{ script = "spec/interop/relay_live.lua",
      args = { "pull", fmt("rtmp://127.0.0.1:%d/live", up_port), "retry_min=0.3", "retry_max=0.6", "hold=0" } }
    local c = C.connect(edge.url("live"))
    local sid = c:create_stream()
    c:play(sid, "test")
    local function videos(from)
      local t = {}
      for i = (from or 0) + 1, #c.msgs do
        if c.msgs[i].type == 9 then t[#t + 1] = c.msgs[i] end
      end
      return t
    end
    assert(C.wait_until(function() return #videos() >= 25 end, 10), "no video through the edge:\n" .. edge.log())

    H.signal(origin, "KILL")
    -- the drop is logged, then refused connects with growing delays
    assert(C.wait_until(function()
      return #relay_lines(edge.log(), "Connection refused; retry 3 in 0%.6s") == 1 end, 5),
      "no growing retries:\n" .. edge.log())
    local lines = relay_lines(edge.log(), " retry ")
    assert.is_truthy(lines[1]:find("closed: peer closed the connection; retry 1 in 0.3s", 1, true), lines[1])
    assert.is_truthy(lines[2]:find("Connection refused; retry 2 in 0.6s", 1, true), lines[2])
    -- the player was told the stream ended, and is still connected
    assert.is_truthy(c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" }, edge.log())
    assert.is_false(c.closed)
    H.wait_exit(pub, 5)

    local mark = #c.msgs
    origin, pub = start_origin()
    assert(C.wait_until(function() return #relay_lines(edge.log(), "playing %(attempt") == 2 end, 5),
      "no resume:\n" .. edge.log())
    assert(C.wait_until(function() return #videos(mark) >= 25 end, 10),
      "no video after the resume:\n" .. edge.log())
    -- the resumed stream starts as a new one: sequence header, then a keyframe
    local after = videos(mark)
    assert.is_true(after[1].sequence_header, "first video after the resume is not the AVC sequence header")
    assert.is_true(after[2].keyframe, "second video after the resume is not a keyframe")
    assert.are.equal(1, edge.count("play", "test"), "one player only")
    c:close()
    H.kill(pub)
  end)

  it("holds a pulled stream while its upstream is away: ffmpeg and GStreamer players go on when it is back; "
    .. "past hold the players are told it ended", function()
    local C = require "support.client"
    local m = media_file()
    local up_port = H.free_port()
    local origin, pub = origin_on(up_port, m.path)
    local edge = H.luartmp_start{ script = "spec/interop/relay_live.lua",
      args = { "pull", fmt("rtmp://127.0.0.1:%d/live", up_port), "retry_min=0.3", "retry_max=0.6", "hold=3" } }
    local players = H.decoders(edge.url("live/test"), "", nil, 10)
    local c = C.connect(edge.url("live"))
    c:play(c:create_stream(), "test")
    assert(C.wait_until(function() return H.fewest_frames(players) >= 25 end, 15),
      "no video through the edge:\n" .. edge.log())

    -- the upstream dies and comes back within hold: the players go on
    local _, mark = H.fewest_frames(players)
    local killed = H.now()
    H.signal(origin, "KILL")
    H.wait_exit(pub, 5)
    C.wait_until(function() H.fewest_frames(players) return H.now() > killed + 1 end, 2)
    origin, pub = origin_on(up_port, m.path)
    assert(C.wait_until(function() return H.fewest_frames(players, mark) >= 50 end, 10),
      "the players did not go on:\n" .. edge.log())
    for _, p in ipairs(players) do
      assert.is_nil(H.exited(p.proc), p.name .. " exited:\n" .. H.output(p.proc))
      -- the new upstream's timestamps (from 0) go on from the old ones (ffmpeg warns at each going back)
      assert.is_nil(H.output(p.proc):find("[Nn]on.monoton"), H.output(p.proc))
      local gap = p.tl.stall(killed)
      print(fmt("relay hold: %s: %.2f s without a decoded frame (upstream killed, started again 1 s later)", p.name, gap))
      assert(gap < 1 + 0.6 + 2, fmt("%s: a gap of %.2f s", p.name, gap))
    end
    assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" })
    assert.are.equal(1, #relay_lines(edge.log(), "holding live/test for its players up to 3s"), edge.log())

    -- it dies for longer than hold: then the players are told the stream ended
    killed = H.now()
    H.signal(origin, "KILL")
    assert(C.wait_until(function()
      return c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" } end, 3 + 2),
      "no UnpublishNotify after hold:\n" .. edge.log())
    local after = H.now() - killed
    assert(after > 3 - 0.3, fmt("UnpublishNotify %.2f s after the kill, before the hold's end", after))
    assert.are.equal(1, #relay_lines(edge.log(), "nothing fed live/test for 3s: unpublished"), edge.log())
    assert.is_false(c.closed)
    c:close()
    H.kill(pub)
  end)

  it("retries an absent or killed upstream with growing delays and resumes when it is back", function()
    local m = media_file()
    local up_port = H.free_port() -- nothing listens there yet
    local up_url = fmt("rtmp://127.0.0.1:%d/live", up_port)
    local srv = H.luartmp_start{ script = "spec/interop/relay_live.lua",
      args = { "push", up_url, "retry_min=0.2", "retry_max=0.8", "timeout=5" } }
    local pub = H.ffmpeg_publish(srv.url("live/test"), m.path, { loop = true })

    -- 1. absent: refused connects, delays 0.2, 0.4, 0.8 then capped at 0.8
    assert(H.wait_until(function() return #relay_lines(srv.log(), " retry ") >= 5 end, 15),
      "not five retries:\n" .. srv.log())
    local delays = {}
    for _, line in ipairs(relay_lines(srv.log(), " retry ")) do
      assert.is_truthy(line:find("Connection refused", 1, true), line)
      delays[#delays + 1] = line:match("retry %d+ in ([%d.]+)s")
    end
    assert.are.same({ "0.2", "0.4", "0.8", "0.8", "0.8" }, { table.unpack(delays, 1, 5) })

    local function start_upstream()
      local p = H.spawn(fmt("%s --listen 127.0.0.1:%d --log-level debug scripts/live.lua",
        H.shquote(H.luartmp), up_port), { name = "luartmp-upstream" })
      assert(H.wait_port(up_port, 10, p))
      return p
    end
    local function playing_count() return #relay_lines(srv.log(), ": publishing %(attempt") end

    -- 2. the upstream appears: the relay publishes there within one delay
    local up = start_upstream()
    local out1 = H.tmpname("backoff-play1.flv")
    local player1 = H.ffmpeg_play(fmt("%s/test", up_url), out1, 3)
    assert(H.wait_until(function() return playing_count() == 1 end, 5), "no resume:\n" .. srv.log())
    assert(H.wait_until(function() return (H.file_size(out1) or 0) > 50000 end, 10),
      "the upstream's player got nothing:\n" .. H.output(player1) .. "\n" .. H.read_file(up.err))

    -- 3. the upstream is killed: the delay starts again at retry_min
    local before = #relay_lines(srv.log(), " retry ")
    H.signal(up, "KILL")
    H.wait_exit(up, 5)
    assert(H.wait_until(function() return #relay_lines(srv.log(), " retry ") > before end, 5),
      "the drop was not noticed:\n" .. srv.log())
    local first = relay_lines(srv.log(), " retry ")[before + 1]
    assert.is_truthy(first:find("retry %d+ in 0%.2s"), first)
    H.wait_exit(player1, 10)

    -- 4. it comes back: the relay publishes again and a new player decodes
    -- from a keyframe (the relay sent the cached GOP first)
    up = start_upstream()
    local out2 = H.tmpname("backoff-play2.flv")
    local player2 = H.ffmpeg_play(fmt("%s/test", up_url), out2, 3)
    assert(H.wait_until(function() return playing_count() == 2 end, 5), "no second resume:\n" .. srv.log())
    assert(H.wait_until(function() return (H.file_size(out2) or 0) > 50000 end, 10),
      "the second upstream's player got nothing:\n" .. H.output(player2))
    H.kill(player2)
    for i, out in ipairs{ out1, out2 } do
      local v = recorded("upstream player " .. i, out)
      assert(v > 0, "upstream player " .. i .. " decoded no video")
    end
    assert.are.equal("K_", H.first_video_flags(out2))
    H.kill(pub)
  end)
end)
