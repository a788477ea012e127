-- Profiles of recorded servers (lua/rtmp/profile.lua, capture2lua
-- --profile): a session with a real server is captured at test time
-- (dumpcap on lo), the profile is generated from it and run with
-- build/luartmp; ffmpeg publishes to it while ffmpeg, rtmpdump,
-- GStreamer and play.lua play at once.  Every player must get every
-- frame (live.lua serves the media), and what the profile server says to
-- a peer of the same kind must be what the recorded server said: the same
-- messages, values, key order and order (captured again and compared).

local H = require "support.helpers"
local C = require "support.capture"
local T = require "support.client"
local capture = require "rtmp.capture"
local profile = require "rtmp.profile"
local bind = require "rtmp.bind"
local rtmp = require "rtmp"

local fmt, q = string.format, H.shquote

local SECONDS = 2
local NAME = "prof"

-- The first SECONDS of the fixture, and the frames a player that saw it all decodes.
local cut
local function fixture()
  if cut then return cut end
  local out = H.tmpname("profile-fixture.flv")
  local rc, log = H.run(fmt("ffmpeg -nostdin -v error -i %s -t %d -c copy -f flv -y %s",
    q(H.fixture_flv()), SECONDS, q(out)), 30)
  assert(rc == 0, log)
  local info = assert(H.probe(out))
  cut = { file = out, video = info.video.frames, audio = info.audio.frames }
  return cut
end

local function publish(url)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -re -i %s -c copy -f flv %s",
    q(fixture().file), q(url)), { name = "ffmpeg-publish" })
end

local function wait_exit(p, timeout)
  local rc = H.wait_exit(p, timeout or 20)
  assert(rc, p.name .. " did not end: " .. H.output(p))
  return rc
end

local function video_frames(file)
  local info = H.probe(file)
  return info and info.video and info.video.frames or 0
end

local function is_metadata(m)
  local v = m.values
  return (m.type_name == "data" or m.type_name == "data3") and v
    and (v[1] == "onMetaData" or (v[1] == "@setDataFrame" and v[2] == "onMetaData"))
end

-- What the server said on a connection, comparable across runs: every
-- message but media, metadata (live.lua sends the publisher's own) and
-- what the engine sends by itself (acknowledgements, pings), as its type,
-- csid, stream and decoded body (values in wire order).
local function server_says(list)
  local out = {}
  for _, e in ipairs(list) do
    local m = e.msg
    if e.dir == "s2c" and not bind.is_media(m) and not is_metadata(m) and m.type_name ~= "ack"
        and not (m.type_name == "user_control"
                 and (m.event_name == "ping_request" or m.event_name == "ping_response")) then
      local line = rtmp.trace_line(m, { dir = "out", time = 0 })
      out[#out + 1] = fmt("%s csid=%d stream=%d %s", m.type_name, m.csid, m.stream or 0,
        line:match("body=(.*)$") or "")
    end
  end
  return out
end

-- The RTMP connections of a capture with their messages, and the one whose
-- client sent the command `name` (publish, play), the first of them.
local function sessions(path)
  local cap = assert(capture.open(path))
  local out = {}
  for _, c in ipairs(capture.rtmp_conns(cap)) do
    out[#out + 1] = { conn = c, list = capture.messages(c) }
  end
  return out
end

local function sent_command(s, name)
  for _, e in ipairs(s.list) do
    if e.dir == "c2s" and e.msg.name == name then return true end
  end
  return false
end

local function session_with(all, name)
  for _, s in ipairs(all) do
    if sent_command(s, name) then return s end
  end
  error("no connection sent " .. name)
end

-- Generate a profile from the sessions (main first), write it, return its path.
local function write_profile(all, main, path)
  local also = {}
  for _, s in ipairs(all) do
    if s ~= main then also[#also + 1] = s end
  end
  local text = profile.generate(main.conn, main.list, { capture = path, also = also })
  local file = H.tmpname("profile.lua")
  H.write_file(file, text)
  return file, text
end

-- Run the profile; an ffmpeg player first (the one compared), then
-- rtmpdump, GStreamer and play.lua; then ffmpeg publishes.  Returns the
-- capture of it all and each player's decoded video frames.
local function serve(script)
  local srv = H.luartmp_start{ script = script, log_level = "info" }
  local cap = C.start(srv.port)
  local url = srv.url("live/" .. NAME)
  local out_ff, out_rd, out_pl = H.tmpname("p-ffmpeg.flv"), H.tmpname("p-rtmpdump.flv"), H.tmpname("p-play.flv")
  local ff = H.ffmpeg_play(url, out_ff)
  assert(H.wait_until(function() return srv.count("play", NAME) == 1 end, 10), srv.log())
  local rd = H.rtmpdump_play(url, out_rd)
  local gst = H.gst_play(url)
  local pl = H.spawn(fmt("%s scripts/client/play.lua --timeout 10 %s %s", q(H.luartmp), q(url), q(out_pl)),
    { name = "play" })
  assert(H.wait_until(function() return srv.count("play", NAME) == 4 end, 10),
    "players did not subscribe: " .. srv.log())
  local pub = publish(url)
  assert.are.equal(0, wait_exit(pub, 30), H.output(pub))
  local got = {}
  got.pl_rc = wait_exit(pl, 20)
  wait_exit(ff, 20)
  -- rtmpdump ends on Play.Stop or UnpublishNotify; a server that only sends
  -- StreamEOF (nginx-rtmp, so its profile too) leaves it waiting: stop it
  -- once its file is complete
  H.wait_quiet(out_rd, 2, 20)
  got.rtmpdump_ended = H.exited(rd)
  H.kill(rd)
  H.wait_until(function() return H.gst_frames(gst) >= fixture().video end, 5)
  H.kill(gst)
  got.ffmpeg, got.rtmpdump, got.play = video_frames(out_ff), video_frames(out_rd), video_frames(out_pl)
  got.gst = H.gst_frames(gst)
  got.logs = { ffmpeg = H.output(ff), rtmpdump = H.output(rd), play = H.output(pl), gst = H.output(gst) }
  local file = C.stop(cap)
  local rc, log = srv.stop()
  got.server_rc, got.server_log = rc, log
  return file, got
end

local function assert_every_frame(got)
  local want = fixture().video
  assert.are.equal(0, got.pl_rc, got.logs.play)
  assert.are.equal(want, got.ffmpeg, "ffmpeg player: " .. got.logs.ffmpeg)
  assert.are.equal(want, got.rtmpdump, "rtmpdump: " .. got.logs.rtmpdump)
  assert.are.equal(want, got.play, "play.lua: " .. got.logs.play)
  assert.are.equal(want, got.gst, "GStreamer decoded frames: " .. got.logs.gst)
end

local function assert_same(recorded, replayed, what)
  local a, b = server_says(recorded.list), server_says(replayed.list)
  assert(#a >= 5, what .. ": too little recorded: " .. table.concat(a, "\n"))
  assert.are.same(a, b, what)
  return a
end

local function has(lines, pat)
  for _, l in ipairs(lines) do
    if l:find(pat) then return true end
  end
  return false
end

describe("profile of a recorded server", function()
  after_each(H.cleanup)

  it("nginx-rtmp: the profile answers ffmpeg's publish and play as nginx did, and serves every player", function()
    -- record: an ffmpeg player waiting, then ffmpeg publishing
    local nginx = H.nginx_start()
    local cap = C.start(nginx.port)
    local url = nginx.url("live/" .. NAME)
    local out0 = H.tmpname("nginx-ffmpeg.flv")
    local player = H.ffmpeg_play(url, out0)
    assert(H.wait_until(function() return nginx.count("play", NAME) == 1 end, 10), nginx.log())
    local pub = publish(url)
    assert.are.equal(0, wait_exit(pub, 30), H.output(pub))
    wait_exit(player, 20)
    assert.are.equal(fixture().video, video_frames(out0), "the recorded player")
    local recorded_file = C.stop(cap)
    nginx.stop()

    local rec = sessions(recorded_file)
    local rec_pub, rec_play = session_with(rec, "publish"), session_with(rec, "play")
    local script, text = write_profile(rec, rec_pub, recorded_file)
    assert.is_truthy(text:find('require "live"', 1, true))

    local file, got = serve(script)
    assert_every_frame(got)
    local now = sessions(file)
    -- the ffmpeg player connected first, the publisher is the one that published
    local now_play, now_pub = now[1], session_with(now, "publish")
    assert.is_true(sent_command(now_play, "play"))
    local says_pub = assert_same(rec_pub, now_pub, "to the ffmpeg publisher")
    local says_play = assert_same(rec_play, now_play, "to the ffmpeg player")
    -- nginx's values (live.lua says otherwise: 2500000, "... is now published.")
    assert.is_true(has(says_pub, '^window_ack_size csid=2 stream=0 {window=5000000}'), table.concat(says_pub, "\n"))
    assert.is_true(has(says_pub, '^set_peer_bandwidth .*window=5000000, limit=2'))
    assert.is_true(has(says_pub, '^set_chunk_size .*chunk_size=4096'))
    assert.is_true(has(says_pub, 'fmsVer="FMS/3,0,1,123", capabilities=31'))
    assert.is_true(has(says_pub, 'description="Start publishing"'))
    assert.is_true(has(says_play, 'description="Start live"'))
    assert.is_false(has(says_play, "Play.Reset"))
  end)

  it("an FMS-like server (fms.lua): ECMA data, clientid per connection, key order and FMS's play order", function()
    -- record our test client against scripts/quirks/fms.lua: connect, createStream, play
    local fms = H.luartmp_start{ script = "scripts/quirks/fms.lua", log_level = "info" }
    local cap = C.start(fms.port)
    local c = T.connect(fms.url("live"))
    local sid = c:create_stream()
    c:play(sid, "rec")
    assert(T.wait_until(function() return c:find{ name = "|RtmpSampleAccess" } end, 5), "no play reply")
    c:close()
    local recorded_file = C.stop(cap)
    fms.stop()
    local rec = sessions(recorded_file)
    local script = write_profile(rec, rec[1], recorded_file)

    local srv = H.luartmp_start{ script = script, log_level = "info" }
    local function session(name)
      local cl = T.connect(srv.url("live"))
      assert(T.wait_until(function() return cl:find{ name = "onBWDone" } end, 5), "no onBWDone")
      local s = cl:create_stream()
      local from = #cl.msgs
      cl:play(s, name)
      assert(T.wait_until(function() return cl:find({ name = "|RtmpSampleAccess" }, from) end, 5))
      local order = {}
      for i = from + 1, #cl.msgs do
        local m = cl.msgs[i]
        if m.type == 4 and m.stream_id == s then order[#order + 1] = m.event_name
        elseif m.name == "onStatus" then order[#order + 1] = m.args[2].code .. " " .. m.args[2].description
        elseif m.name then order[#order + 1] = m.name end
      end
      cl:close()
      return cl, order
    end
    local a, order = session("one")
    local b = session("two")
    local res = a:find{ name = "_result", txn = 1 }
    local props, info = res.args[1], res.args[2]
    assert.are.same({ "fmsVer", "capabilities", "mode" }, getmetatable(props).__keys)
    assert.are.equal("FMS/3,5,7,7009", props.fmsVer)
    assert.are.same({ "level", "code", "description", "data", "clientid", "objectEncoding" },
      getmetatable(info).__keys)
    assert.are.equal("ecma", rtmp.amf0.type(info.data))
    assert.are.equal("3,5,7,7009", info.data.version)
    local other = b:find{ name = "_result", txn = 1 }.args[2]
    assert.are.equal("number", type(info.clientid))
    assert.are.equal("number", type(other.clientid))
    assert.are_not.equal(info.clientid, other.clientid)
    -- the play: FMS's order, the live stream name in the descriptions
    assert.are.same({ "stream_begin", "NetStream.Play.Reset Playing and resetting one.", "stream_eof",
      "stream_begin", "NetStream.Play.Start Started playing one.", "|RtmpSampleAccess" }, order)
    srv.stop()
  end)

  it("ffmpeg -listen: the profile answers an ffmpeg player as ffmpeg's server did, and serves every player", function()
    local port = H.free_port()
    local cap = C.start(port)
    local url = fmt("rtmp://127.0.0.1:%d/live/%s", port, NAME)
    local server = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -re -i %s -c copy -f flv -listen 1 %s",
      q(fixture().file), q(url)), { name = "ffmpeg-listen" })
    assert(H.wait_port(port, 10, server))
    local out0 = H.tmpname("listen-ffmpeg.flv")
    local player = H.ffmpeg_play(url, out0)
    wait_exit(server, 30)
    wait_exit(player, 20)
    assert.are.equal(fixture().video, video_frames(out0), "the recorded player")
    local recorded_file = C.stop(cap)

    local rec = sessions(recorded_file)
    local rec_play = session_with(rec, "play")
    local script = write_profile(rec, rec_play, recorded_file)

    local file, got = serve(script)
    assert_every_frame(got)
    local now = sessions(file)
    local now_play = now[1]
    assert.is_true(sent_command(now_play, "play"))
    local says = assert_same(rec_play, now_play, "to the ffmpeg player")
    -- ffmpeg's server: chunk size 128, StreamBegin 0 and onBWDone with connect
    assert.is_true(has(says, '^set_chunk_size .*chunk_size=128'), table.concat(says, "\n"))
    assert.is_true(has(says, '"onBWDone", 0, rtmp.null, 8192'))
    assert.is_true(has(says, 'description="playing stream"'))
  end)
end)
