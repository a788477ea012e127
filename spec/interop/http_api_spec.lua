-- luartmp scripts/live.lua --http ADDR (scripts/http_api.lua, docs/HTTP.md):
-- while ffmpeg publishes and ffmpeg and rtmpdump play, /metrics passes
-- promtool check metrics and counts them, /api/streams and /api/clients
-- describe them as nginx-rtmp's stat page does, /api/drop disconnects a
-- player and then the publisher; HTTP-FLV players of names nobody
-- publishes wait and are forgotten when they leave, share the RTMP ids,
-- are dropped by id and with their stream, and count in the totals.
local H = require "support.helpers"
local C = require "support.client"
local json = require "dkjson"

local fmt, q = string.format, H.shquote

local function get(url)
  local rc, out = H.run(fmt("curl -s -m 5 -w '\\n%%{http_code}' %s", q(url)), 10)
  local body, code = out:match("^(.*)\n(%d+)$")
  return tonumber(code), body
end

local function metric(text, name, labels)
  local pat = "\n" .. name:gsub("_", "_") .. (labels and labels:gsub("[%p]", "%%%0") or "") .. " ([%d%.e+-]+)"
  return tonumber(("\n" .. text):match(pat))
end

describe("live.lua --http", function()
  local srv, base
  before_each(function()
    local hport = H.free_port()
    srv = H.luartmp_start{ extra = { "--http", "127.0.0.1:" .. hport }, log_level = "info" }
    base = fmt("http://127.0.0.1:%d", hport)
    assert(H.wait_port(hport, 10), "no HTTP listener")
  end)
  after_each(function() H.cleanup() end)

  it("serves metrics, streams and clients of a live stream, and drops a player then the publisher", function()
    local flv = H.fixture_flv()
    local pub = H.spawn(fmt("ffmpeg -nostdin -v error -re -stream_loop -1 -i %s -c copy -f flv %s",
      q(flv), q(srv.url("live/cam"))), { name = "ffmpeg-pub" })
    assert(H.wait_until(function() return srv.count("publish", "cam") > 0 end, 10), srv.log())
    local play = H.spawn(fmt("ffmpeg -nostdin -v error -i %s -c copy -f flv -y %s",
      q(srv.url("live/cam")), q(H.tmpname("play.flv"))), { name = "ffmpeg-play" })
    local dump = H.spawn(fmt("rtmpdump -q -v -r %s -o %s", q(srv.url("live/cam")), q(H.tmpname("dump.flv"))),
      { name = "rtmpdump" })
    assert(H.wait_until(function() return srv.count("play", "cam") >= 2 end, 10), srv.log())
    H.sleep(2.5) -- bitrates are sampled each second

    local code, text = get(base .. "/metrics")
    assert.are.equal(200, code)
    local mf = H.tmpname("metrics.txt")
    H.write_file(mf, text)
    local rc, out = H.run("promtool check metrics < " .. q(mf), 20)
    assert.are.equal(0, rc, out .. "\n" .. text)
    assert.are.equal(3, metric(text, "luartmp_connections"))
    assert.are.equal(1, metric(text, "luartmp_streams"))
    assert.are.equal(1, metric(text, "luartmp_publishers"))
    assert.are.equal(2, metric(text, "luartmp_players"))
    assert.are.equal(2, metric(text, "luartmp_stream_players", '{app="live",name="cam"}'))
    assert.is_true(metric(text, "luartmp_stream_in_bytes_per_second", '{app="live",name="cam"}') > 1000, text)
    assert.is_true(metric(text, "luartmp_stream_out_bytes_per_second", '{app="live",name="cam"}') > 2000, text)
    assert.is_true(metric(text, "luartmp_received_bytes_total") > 50000)
    assert.is_true(metric(text, "luartmp_sent_bytes_total") > 100000)
    assert.are.equal(0, metric(text, "luartmp_dropped_frames_total"))
    assert.are.equal(1, metric(text, "luartmp_hook_duration_seconds_count", '{hook="on_publish"}'))
    assert.are.equal(2, metric(text, "luartmp_hook_duration_seconds_count", '{hook="on_play"}'))
    assert.are.equal(3, metric(text, "luartmp_hook_duration_seconds_bucket", '{hook="on_connect",le="+Inf"}'))

    local code2, body = get(base .. "/api/streams")
    assert.are.equal(200, code2)
    local st = assert(json.decode(body), body)
    assert.are.equal(1, #st.streams)
    local s = st.streams[1]
    assert.are.equal("live", s.app)
    assert.are.equal("cam", s.name)
    assert.is_true(s.publishing)
    assert.are.equal(3, s.nclients)
    assert.is_true(s.time >= 2)
    assert.is_true(s.bw_in > 10000 and s.bytes_in > 50000)
    assert.are.equal(H.FIXTURE.width, s.codec.video.width)
    assert.are.equal(H.FIXTURE.height, s.codec.video.height)
    assert.are.equal(7, s.codec.video.codec) -- AVC
    assert.are.equal(10, s.codec.audio.codec) -- AAC
    local publisher
    for _, c in ipairs(s.clients) do if c.publishing then publisher = c end end
    assert(publisher, body)
    assert.matches("^127%.0%.0%.1:%d+$", publisher.addr)
    assert.matches("^FMLE/", publisher.flashver) -- ffmpeg's librtmp-compatible flashVer

    local code3, cbody = get(base .. "/api/clients")
    assert.are.equal(200, code3)
    local cl = assert(json.decode(cbody), cbody).clients
    assert.are.equal(3, #cl)
    local players = {}
    for _, c in ipairs(cl) do
      if c.role == "player" then players[#players + 1] = c end
      assert.are.equal("live/cam", c.stream)
      assert.are.equal("live", c.app)
      assert.are.equal(0, c.dropped)
    end
    assert.are.equal(2, #players)
    local flashvers = players[1].flashver .. " " .. players[2].flashver
    assert.matches("LNX", flashvers) -- ffmpeg's and rtmpdump's

    -- drop one player by its client id (POST, as nginx-rtmp's control module takes it)
    local victim = players[1]
    local rc4, dropped = H.run(fmt("curl -s -m 5 -d 'app=live&name=cam&clientid=%d' %s", victim.id,
      q(base .. "/api/drop")), 10)
    assert.are.equal("1", dropped)
    assert(H.wait_until(function()
      local _, b = get(base .. "/api/clients")
      return #json.decode(b).clients == 2
    end, 5), "the player is still connected")
    assert.matches("dropped through /api/drop", srv.log())
    -- then the publisher (GET, no clientid): its ffmpeg ends
    local code5, n = get(base .. "/api/drop?app=live&name=cam")
    assert.are.equal(200, code5)
    assert.are.equal("1", n)
    assert(H.wait_exit(pub, 10), "the publisher's ffmpeg did not end")
    local _, m2 = get(base .. "/metrics")
    assert.are.equal(0, metric(m2, "luartmp_publishers"))
    assert.are.equal("0", select(2, get(base .. "/api/drop?app=live&name=nobody")))
    assert.are.equal(400, (get(base .. "/api/drop?app=live")))
    H.kill(play); H.kill(dump)
  end)

  it("HTTP-FLV players: unknown names wait and are forgotten, one id sequence, dropped by id and name, counted", function()
    local function streams_now() return metric(select(2, get(base .. "/metrics")), "luartmp_streams") end
    -- 200 players of names nobody publishes: each waits (its stream is made), then closes
    local urls = {}
    for i = 1, 200 do urls[i] = q(fmt("%s/live/r%d_%d.flv", base, i, math.random(1e9))) end
    local many = H.spawn("curl -s -m 3 --parallel --parallel-immediate --parallel-max 200 " .. table.concat(urls, " "),
      { name = "curl-many" })
    assert(H.wait_until(function() return (streams_now() or 0) >= 150 end, 10), "the waiting players' streams")
    assert(H.wait_exit(many, 15), "curl did not end")
    assert(H.wait_until(function() return streams_now() == 0 end, 5),
      "live.streams keeps the streams of players that left: " .. tostring(streams_now()))
    -- a name no RTMP client could play: 400, and no stream made
    local c1, b1 = get(base .. "/live/%01x.flv")
    assert.are.equal(400, c1, b1)
    assert.are.equal(400, (get(base .. "/live/a%3Fb.flv")))
    assert.are.equal(0, streams_now())

    local pub = H.spawn(fmt("ffmpeg -nostdin -v error -re -stream_loop -1 -i %s -c copy -f flv %s",
      q(H.fixture_flv()), q(srv.url("live/cam"))), { name = "ffmpeg-pub" })
    assert(H.wait_until(function() return srv.count("publish", "cam") > 0 end, 10), srv.log())
    local hurl = base .. "/live/cam.flv"
    local a_file, b_file = H.tmpname("a.flv"), H.tmpname("b.flv")
    local a = H.spawn(fmt("curl -s -N -o %s %s", q(a_file), q(hurl)), { name = "curl-a" })
    assert(H.wait_until(function() return H.count_plain(srv.log(), "HTTP-FLV stream") >= 1 end, 10), srv.log())
    H.sleep(1)

    -- the totals grow with the HTTP-FLV player, the only player
    local _, m1 = get(base .. "/metrics")
    H.sleep(2)
    local _, m2 = get(base .. "/metrics")
    local mf = H.tmpname("metrics2.txt")
    H.write_file(mf, m2)
    local rc, out = H.run("promtool check metrics < " .. q(mf), 20)
    assert.are.equal(0, rc, out .. "\n" .. m2)
    assert.are.equal(1, metric(m2, "luartmp_stream_players", '{app="live",name="cam"}'))
    local got_in = metric(m2, "luartmp_received_bytes_total") - metric(m1, "luartmp_received_bytes_total")
    local sent = metric(m2, "luartmp_sent_bytes_total") - metric(m1, "luartmp_sent_bytes_total")
    assert.is_true(got_in > 10000, "received " .. got_in)
    assert.is_true(sent > got_in / 2, fmt("sent %d bytes while receiving %d", sent, got_in))

    -- /api/clients: the publisher and the player, ids of one sequence (the
    -- 200 HTTP connections above took 1..200: the RTMP publisher came after)
    local function clients()
      return assert(json.decode(select(2, get(base .. "/api/clients")))).clients
    end
    local b = H.spawn(fmt("curl -s -N -o %s %s", q(b_file), q(hurl)), { name = "curl-b" })
    assert(H.wait_until(function() return #clients() == 3 end, 10), srv.log())
    local cl = clients()
    assert.are.same({ "rtmp", "http-flv", "http-flv" }, { cl[1].protocol, cl[2].protocol, cl[3].protocol })
    assert.is_true(cl[1].id > 200 and cl[2].id > cl[1].id and cl[3].id > cl[2].id,
      fmt("ids %d %d %d", cl[1].id, cl[2].id, cl[3].id))

    -- drop the first HTTP-FLV player by its id: its response ends, the other's goes on
    local victim = cl[2].id
    assert.are.equal("1", select(2, get(fmt("%s/api/drop?app=live&name=cam&clientid=%d", base, victim))))
    assert(H.wait_exit(a, 5), "the dropped player's response did not end")
    assert.is_true(H.file_size(a_file) > 10000)
    assert(H.wait_until(function() return #clients() == 2 end, 5))
    assert.is_nil(H.exited(b))
    assert.are_not.equal(victim, clients()[2].id)
    -- by app and name: the publisher, and with the stream the HTTP player's response
    assert.are.equal("1", select(2, get(base .. "/api/drop?app=live&name=cam")))
    assert(H.wait_exit(pub, 10), "the publisher's ffmpeg did not end")
    assert(H.wait_exit(b, 5), "the HTTP-FLV response did not end with the stream")
    assert.is_true(H.file_size(b_file) > 0)
    assert(H.wait_until(function() return streams_now() == 0 end, 5))
  end)
end)

describe("live.lua's HTTP API turned on by a reload", function()
  after_each(function() H.cleanup() end)

  it("lists a connection from before the reload without what its connect said, one from after with it", function()
    local hport = H.free_port()
    local base = fmt("http://127.0.0.1:%d", hport)
    local srv = H.live_applied_on_reload("http-later", [[
      live.config.http = ...
    ]], { "127.0.0.1:" .. hport })
    local a = C.connect(srv.url("live"))
    assert.are.equal(0, get(base .. "/api/clients"), "an HTTP listener before the reload")
    srv.apply_by_reload()
    assert(H.wait_port(hport, 10), "no HTTP listener after the reload:\n" .. srv.log())
    local b = C.connect(srv.url("live"))
    local code, body = get(base .. "/api/clients")
    assert.are.equal(200, code, body)
    local by_addr = {} -- the server's peer address of a client is its local address
    for _, c in ipairs(assert(json.decode(body), body).clients) do by_addr[c.addr] = c end
    local before, after = by_addr[a.conn.local_addr], by_addr[b.conn.local_addr]
    assert(before and after, body)
    assert.are.equal("connected", before.role)
    assert.are.equal("live", before.app)
    assert.is_nil(before.flashver)
    assert.is_nil(before.tcurl)
    assert.are.equal("LNX 9,0,124,2", after.flashver)
    assert.matches("^rtmp://127%.0%.0%.1:%d+/live$", after.tcurl)
    a:close()
    b:close()
  end)
end)
