-- Cluster mode of the live server (scripts/cluster.lua, docs/CLUSTER.md):
-- three luartmp live nodes started with --cluster-redis and
-- --cluster-node, Debian's redis-server as the stream directory and
-- HAProxy (TCP mode, health checks) in front, all on loopback ports the
-- test picks (spec/support/cluster.lua).  ffmpeg publishes and plays;
-- after kill -9 of the publisher's node, ffmpeg and GStreamer players on
-- the other nodes go on by themselves (their pulls hold the stream).
-- Tiers: an origin the encoder publishes to and three edges behind
-- HAProxy (roundrobin), six ffmpeg players through it; /metrics of each
-- edge shows its two players and one upstream, the origin's one player
-- per edge (not the six), and every player gets every frame.
--
-- The media: 5 s of H.264/AAC with one keyframe at its start (a GOP as
-- long as the clip), so a player or an edge that joins while it plays
-- gets it whole from the late-join cache: every frame is counted, not
-- just the ones after the join.

local H = require "support.helpers"
local CL = require "support.cluster"
local R = require "support.redis"
local C = require "support.client"
local F = H.FIXTURE

local fmt, q = string.format, H.shquote
local TAIL_SLACK, AUDIO_SLACK = F.tail_slack, F.audio_slack -- in flight when the publisher leaves (H.FIXTURE)
local TTL = 3

-- The clip and its frame counts (ffprobe's), made once per run of this file.
local media
local function clip()
  if media then return media end
  local path = H.tmpname("cluster-5s.flv")
  local rc, out = H.run(fmt("ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=%dx%d:rate=%d "
    .. "-f lavfi -i sine=frequency=440:sample_rate=44100 -t 5 -c:v libx264 -preset veryfast -g 1000 "
    .. "-pix_fmt yuv420p -c:a aac -b:a 64k -f flv -y %s", F.width, F.height, F.fps, q(path)), 60)
  assert(rc == 0, "ffmpeg could not make the clip: " .. out)
  local info = assert(H.probe(path))
  assert(info.video and info.audio and info.video.frames == 5 * F.fps, "bad clip: " .. info.log)
  media = { path = path, video = info.video.frames, audio = info.audio.frames }
  return media
end

-- A recording's video and audio frames, checked to be the clip whole.
local function assert_whole(label, file)
  local m = clip()
  assert.is_truthy(H.file_size(file), label .. ": no recording at " .. file)
  local info, err = H.probe(file)
  assert(info and info.video and info.audio, label .. ": " .. tostring(err or info.log))
  assert.are.equal(F.video_codec, info.video.codec, label)
  local v, a = info.video.frames, info.audio.frames
  assert(v >= m.video - TAIL_SLACK and v <= m.video,
    fmt("%s: %d video frames, the clip has %d", label, v, m.video))
  assert(a >= m.audio - AUDIO_SLACK and a <= m.audio,
    fmt("%s: %d audio frames, the clip has %d", label, a, m.audio))
end

local function lines(log, pattern)
  local t = {}
  for line in log:gmatch("[^\n]+") do if line:find(pattern) then t[#t + 1] = line end end
  return t
end

local function logs(nodes)
  local t = {}
  for i, n in ipairs(nodes) do t[#t + 1] = fmt("---- node %d (%s):\n%s", i, n.node_url, n.log()) end
  return table.concat(t, "\n")
end

-- The lines of node's log where its pull of path from origin (a node)
-- starts playing.
local function pulls(node, origin, path)
  return lines(node.log(), "relay pull " .. path .. " <%- " .. origin.node_url:gsub("%p", "%%%0") .. "/"
    .. path:gsub("%p", "%%%0") .. "%?luartmp_cluster_pull=1: playing")
end

-- redis-server and n nodes on it (--cluster-ttl TTL; opts: CL.node's):
-- redis, the list of nodes, then each node.
local function start(n, opts)
  local redis, nodes = R.start(), {}
  for i = 1, n do nodes[i] = CL.node(redis, { ttl = TTL, script = opts and opts.script }) end
  return redis, nodes, table.unpack(nodes)
end

describe("cluster", function()
  after_each(H.cleanup)

  it("registers a publish in Redis and serves it on the other nodes over one upstream per node", function()
    local m = clip()
    local redis, nodes, A, B, E = start(3)
    local key = CL.key("live/test")

    local pub = H.ffmpeg_publish(A.url("live/test"), m.path)
    assert(H.wait_until(function() return CL.get(redis, key) end, 5), "no directory entry:\n" .. logs{ A })
    assert.are.equal(A.node_url, CL.get(redis, key))
    local ttl = CL.pttl(redis, key)
    assert(ttl > 0 and ttl <= TTL * 1000, "the entry's TTL: " .. tostring(ttl))

    -- two players on B, one on E, while the clip's one GOP plays
    local outs, players = {}, {}
    for i, n in ipairs{ B, B, E } do
      outs[i] = H.tmpname(fmt("cluster-play%d.flv", i))
      players[i] = H.ffmpeg_play(n.url("live/test"), outs[i])
    end
    assert(H.wait_until(function()
      return A.stream_metric("luartmp_stream_players", "live", "test") == 2
        and B.stream_metric("luartmp_stream_players", "live", "test") == 2
    end, 5), "not two edge pulls at A and two players at B:\n" .. logs(nodes))
    -- B: two players, one upstream; A: one player per edge (their pulls)
    assert.are.equal(1, B.stream_metric("luartmp_stream_upstreams", "live", "test"))
    assert.are.equal(1, E.stream_metric("luartmp_stream_upstreams", "live", "test"))
    assert.are.equal(0, A.stream_metric("luartmp_stream_upstreams", "live", "test"))
    assert.are.equal(1, #pulls(B, A, "live/test"), B.log())
    -- the heartbeat renews the entry
    H.sleep(TTL / 3 + 0.3)
    assert(CL.pttl(redis, key) > TTL * 1000 * 2 / 3 - 400, "not renewed: " .. tostring(CL.pttl(redis, key)))

    assert.are.equal(0, H.wait_exit(pub, 15), H.output(pub))
    -- unpublish deletes the entry at once
    assert(H.wait_until(function() return CL.get(redis, key) == nil end, 2), "the entry outlived its publisher")
    for i, p in ipairs(players) do
      assert.are.equal(0, H.wait_exit(p, 15), H.output(p))
      assert_whole(fmt("player %d", i), outs[i])
    end
    -- the last player gone, B's upstream stops
    assert(H.wait_until(function() return #lines(B.log(), "relay pull live/test.*stopped") == 1 end, 5),
      "B's pull did not stop:\n" .. B.log())
    assert(H.wait_until(function() return A.metrics()["luartmp_connections"] == 0 end, 5),
      "edge pulls still open at A:\n" .. A.log())
  end)

  it("serves six players spread by HAProxy (roundrobin) over three edges of one origin: each edge's /metrics "
    .. "shows its players and one upstream, the origin's one player per edge", function()
    local m = clip()
    local redis, nodes, O, E1, E2, E3 = start(4)
    local edges = { E1, E2, E3 }
    local lb = CL.haproxy(edges, { balance = "roundrobin" }) -- the edges only: the encoder goes to O
    local key = CL.key("live/tier")
    local pub = H.ffmpeg_publish(O.url("live/tier"), m.path)
    assert(H.wait_until(function() return CL.get(redis, key) == O.node_url end, 5), "no entry for O:\n" .. O.log())

    -- six players through HAProxy while the clip's one GOP plays
    local outs, players = {}, {}
    for i = 1, 6 do
      outs[i] = H.tmpname(fmt("cluster-tier-play%d.flv", i))
      players[i] = H.ffmpeg_play(lb.url("live/tier"), outs[i])
    end
    -- /metrics of the four nodes: the stream's players and upstreams on each
    local L = '{app="live",name="tier"}'
    local function figures()
      local o = O.metrics()
      local f = { players = o["luartmp_stream_players" .. L] or 0, upstreams = o["luartmp_stream_upstreams" .. L] or 0,
        all_players = o.luartmp_players, connections = o.luartmp_connections, edges = {},
        total = 0, with = 0, fed = 0, ups = 0 } -- edge players, edges with players, those fed, edge upstreams
      for i, e in ipairs(edges) do
        local t = e.metrics()
        local n, up = t["luartmp_stream_players" .. L] or 0, t["luartmp_stream_upstreams" .. L] or 0
        f.edges[i] = { players = n, upstreams = up }
        f.total, f.ups = f.total + n, f.ups + up
        if n > 0 then f.with = f.with + 1 end
        if n > 0 and up == 1 then f.fed = f.fed + 1 end
      end
      local t = {}
      for i, e in ipairs(f.edges) do t[i] = fmt("E%d %d players %d upstreams", i, e.players, e.upstreams) end
      f.text = fmt("origin %d players of the stream (%d in all, %d connections, %d upstreams); %s", f.players,
        f.all_players, f.connections, f.upstreams, table.concat(t, ", "))
      return f
    end
    local f
    assert(H.wait_until(function()
      f = figures()
      return f.total == 6 and f.fed == f.with and f.players == f.with
    end, 5, 0.2), "not six players on edges fed by one upstream each: " .. (f and f.text or "") .. "\n" .. logs(nodes))
    print("cluster tiers: " .. f.text)
    -- roundrobin: two players on each edge, fed by one upstream from O
    for _, e in ipairs(f.edges) do
      assert.are.equal(2, e.players, f.text)
      assert.are.equal(1, e.upstreams, f.text)
    end
    -- O serves the three pulls, not the six players: its players are the
    -- edges', its connections those and the publisher's
    assert.are.equal(3, f.players, f.text)
    assert.are.equal(3, f.all_players, f.text)
    assert.are.equal(4, f.connections, f.text)
    assert.are.equal(0, f.upstreams, f.text)

    assert.are.equal(0, H.wait_exit(pub, 15), H.output(pub))
    for i, p in ipairs(players) do
      assert.are.equal(0, H.wait_exit(p, 15), H.output(p))
      assert_whole(fmt("player %d", i), outs[i])
    end
    -- in the logs: each edge's two plays and one pull from O; O's three plays
    for _, e in ipairs(edges) do
      assert.are.equal(2, e.count("play", "tier"), e.log())
      assert.are.equal(1, #pulls(e, O, "live/tier"), e.log())
    end
    assert.are.equal(3, O.count("play", "tier"), O.log())
    -- the players gone, the edges' upstreams stop and O has no connection left
    assert(H.wait_until(function()
      f = figures()
      return f.total == 0 and f.ups == 0 and f.connections == 0
    end, 5, 0.2), "upstreams or connections left: " .. f.text)
    H.kill(lb.proc)
  end)

  it("refuses a publish of a name live on another node (BadName) and never pulls from itself", function()
    local m = clip()
    local redis, nodes, A, B = start(2)
    local key = CL.key("live/dup")
    local pub = CL.publish(A.url("live/dup"), m.path)
    assert(H.wait_until(function() return CL.get(redis, key) end, 5), "no directory entry:\n" .. A.log())

    local c = C.connect(B.url("live"))
    c:publish(c:create_stream(), "dup")
    assert(c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Publish.BadName" } end, 5),
      "no BadName: " .. table.concat(c:status_codes(), ", ") .. "\n" .. B.log())
    assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Publish.Start" })
    assert.are.equal(1, #lines(B.log(), "publish live/dup refused: published on " .. A.node_url:gsub("%p", "%%%0")))
    assert.are.equal(A.node_url, CL.get(redis, key)) -- still A's
    c:close()

    -- a play of a node's pull mark where the stream is not published: refused
    local p = C.connect(B.url("live"))
    p:play(p:create_stream(), "dup?luartmp_cluster_pull=1")
    assert(p:wait(function() return p:find{ name = "onStatus", code = "NetStream.Play.StreamNotFound" } end, 5),
      "a pull's play of a stream B does not publish: " .. table.concat(p:status_codes(), ", "))
    p:close()

    -- a player on B: one pull from A; when it leaves, the pull stops and A has no player left
    local out = H.tmpname("cluster-dup-play.flv")
    local player = H.ffmpeg_play(B.url("live/dup"), out)
    assert(H.wait_until(function() return A.stream_metric("luartmp_stream_players", "live", "dup") == 1 end, 5),
      "no pull at A:\n" .. B.log())
    assert(H.wait_until(function() return (H.file_size(out) or 0) > 20000 end, 10), H.output(player))
    H.kill(player)
    assert(H.wait_until(function() return A.stream_metric("luartmp_stream_players", "live", "dup") == 0 end, 5),
      "B's pull outlived its last player:\n" .. B.log())
    assert.are.equal(1, #lines(B.log(), "relay pull live/dup.*stopped %(no players left%)"), B.log())
    H.kill(pub)
  end)

  it("with takeover, a publish on another node takes the name: the old node ends its publisher and its "
    .. "player gets the stream from the new one", function()
    local m = clip()
    local script = H.tmpname("takeover-node") .. ".lua"
    H.write_file(script, 'local live = require "live"\nlive.config.takeover = true\nlive.start()\n')
    local redis, nodes, A, B = start(2, { script = script })
    local key = CL.key("live/to")
    local first = CL.publish(A.url("live/to"), m.path)
    assert(H.wait_until(function() return CL.get(redis, key) == A.node_url end, 5), "no entry for A:\n" .. A.log())
    local c = C.connect(A.url("live"))
    c:play(c:create_stream(), "to")
    assert(c:wait(function() return c:count{ type = 9 } >= 10 end, 10), "no video on A:\n" .. A.log())

    local second = CL.publish(B.url("live/to"), m.path)
    assert(H.wait_until(function() return CL.get(redis, key) == B.node_url end, 5), "B did not take it:\n" .. B.log())
    -- A's next heartbeat finds the entry B's and ends its publisher (ffmpeg exits)
    assert(H.wait_exit(first, TTL), "A's publisher still runs:\n" .. A.log())
    assert.are.equal(1, #lines(A.log(), "live/to is now published on " .. B.node_url:gsub("%p", "%%%0")), A.log())
    -- A's player stays; A pulls the stream from B
    assert(c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" } end, 5),
      "A's player was not told the publisher left")
    local _, at = c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" }
    assert(c:wait(function()
      local n = 0
      for i = at + 1, #c.msgs do if c.msgs[i].type == 9 then n = n + 1 end end
      return n >= 25
    end, 10), "no video from B on A:\n" .. A.log())
    assert.are.equal(1, A.stream_metric("luartmp_stream_upstreams", "live", "to"))
    assert.are.equal(B.node_url, CL.get(redis, key)) -- A never wrote it back
    c:close()
    H.kill(second)
  end)

  it("survives kill -9 of the publisher's node: the publisher lands on another node through HAProxy, "
    .. "ffmpeg and GStreamer players on the others go on by themselves", function()
    local m = clip()
    local redis, nodes = start(3)
    local lb = CL.haproxy(nodes)
    local key = CL.key("live/fo")
    local loop = CL.publish(lb.url("live/fo"), m.path, { reconnect = true })
    local origin_url = H.wait_until(function() return CL.get(redis, key) end, 10)
    assert(origin_url, "no directory entry:\n" .. logs(nodes))
    local origin, others = nil, {}
    for _, n in ipairs(nodes) do
      if n.node_url == origin_url then origin = n else others[#others + 1] = n end
    end
    assert(origin, "the entry names no node: " .. origin_url)

    -- on each other node an ffmpeg and a GStreamer player, decoding; on the
    -- first the test client too, for what goes on the wire
    local players = {}
    for _, n in ipairs(others) do H.decoders(n.url("live/fo"), " on " .. n.node_url, players, 30) end
    local c = C.connect(others[1].url("live"))
    c:play(c:create_stream(), "fo")
    local function outputs()
      local t = {}
      for _, p in ipairs(players) do t[#t + 1] = "---- " .. p.name .. ":\n" .. H.output(p.proc):sub(-1500) end
      return table.concat(t, "\n")
    end
    assert(C.wait_until(function() return H.fewest_frames(players) >= 25 and c:count{ type = 9 } >= 25 end, 15),
      "no video on the other nodes:\n" .. outputs() .. "\n" .. logs(nodes))

    local _, mark = H.fewest_frames(players)
    local seen = #c.msgs
    local killed = H.now()
    H.signal(origin.proc, "KILL")
    H.wait_exit(origin.proc, 5)
    -- the publisher is back on a surviving node, and every player decodes again
    assert(C.wait_until(function()
      local v = CL.get(redis, key)
      return v and v ~= origin_url and H.fewest_frames(players, mark) >= 50
    end, TTL + 20), "no resume:\n" .. H.output(loop) .. "\n" .. outputs() .. "\n" .. logs(others))
    local new_origin = CL.get(redis, key)
    assert.are_not.equal(origin_url, new_origin)
    for _, p in ipairs(players) do
      assert.is_nil(H.exited(p.proc), p.name .. " exited:\n" .. H.output(p.proc))
      -- ffmpeg takes the new source's timestamps and metadata as the same stream's
      assert.is_nil(H.output(p.proc):find("[Nn]on.monoton"), H.output(p.proc))
      assert.is_nil(H.output(p.proc):find("New %a+ stream"), H.output(p.proc))
      local gap = p.tl.stall(killed)
      print(fmt("cluster failover: %s: %.2f s without a decoded frame (kill -9 of %s, ttl %d s, the publisher "
        .. "now on %s)", p.name, gap, origin_url, TTL, new_origin))
      -- the entry expires within TTL; the pull's next attempt comes within retry_max (TTL in cluster mode)
      assert(gap < TTL + TTL + 3, fmt("%s: a gap of %.2f s", p.name, gap))
    end
    -- on the wire: the stream never ended for the players; after the gap the
    -- video goes on from a keyframe, its timestamps on from where they were
    assert.is_false(c.closed)
    assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" })
    local last, header, first_after
    for i, msg in ipairs(c.msgs) do
      if msg.type == 9 then
        assert(not last or msg.timestamp >= last, fmt("video timestamp %d after %d", msg.timestamp, last or 0))
        last = msg.timestamp
        if i > seen and msg.sequence_header then header = header or i
        elseif header and not first_after then first_after = msg end
      end
    end
    assert(header, "no new sequence header after the kill")
    assert.is_true(first_after.keyframe, "the first video frame of the new source is not a keyframe")
    c:close()
    for _, p in ipairs(players) do H.kill(p.proc) end
    H.kill(loop)
  end)

  it("keeps streams flowing while Redis restarts, and the heartbeats rebuild the directory", function()
    local m = clip()
    local redis, nodes, A, B, E = start(3)
    local key = CL.key("live/rr")
    local pub = CL.publish(A.url("live/rr"), m.path)
    assert(H.wait_until(function() return CL.get(redis, key) end, 5), "no directory entry:\n" .. A.log())
    local c = C.connect(B.url("live"))
    c:play(c:create_stream(), "rr")
    local function videos() return c:count{ type = 9 } end
    assert(c:wait(function() return videos() >= 25 end, 10), "no video through B:\n" .. B.log())

    redis:kill()
    local mark = videos()
    -- Redis gone: B's player goes on over the pull it has
    assert(c:wait(function() return videos() >= mark + 50 end, 5), "the stream stopped with Redis:\n" .. B.log())
    redis:restart()
    assert(c:wait(function() return CL.get(redis, key) == A.node_url end, TTL + 3),
      "the entry did not come back:\n" .. A.log())
    assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Play.UnpublishNotify" })
    -- a new player on a node that had none pulls through the rebuilt directory
    local out = H.tmpname("cluster-rr-play.flv")
    local player = H.ffmpeg_play(E.url("live/rr"), out)
    assert(H.wait_until(function() return (H.file_size(out) or 0) > 20000 end, 10), H.output(player) .. E.log())
    H.kill(player)
    c:close()
    H.kill(pub)
  end)
end)
