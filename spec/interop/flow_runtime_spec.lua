-- The handler runtime of lua/rtmp/flow.lua (docs/FLOW.md) against real
-- peers: scripts in the generated format, written by hand, run by
-- build/luartmp.  Server scripts answer ffmpeg (publish and play),
-- rtmpdump and GStreamer; client scripts play from nginx-rtmp and from
-- scripts/live.lua while ffmpeg publishes, and their exit status says
-- whether the recorded outcome was reached.

local H = require "support.helpers"

local fmt = string.format
local q = H.shquote

local HEADER = [[
local flow = require "rtmp.flow"
local on, send, media, close = flow.on, flow.send, flow.media, flow.close
local await, receive = flow.await, flow.receive
local null, undefined, obj = flow.null, flow.undefined, flow.obj
]]

local function script(name, body)
  local p = H.tmpname(name)
  H.write_file(p, HEADER .. body)
  return p
end

-- The connect handler of every server script: FMS-like replies, and the
-- onBWDone that makes ffmpeg and rtmpdump send _checkbw.
local CONNECT = [[
  on { "command", "connect", txn = 1,
    send { "window_ack_size", window = 5000000 },
    send { "set_peer_bandwidth", window = 5000000, limit = 2 },
    send { "set_chunk_size", chunk_size = 4096 },
    send { "command", csid = 3, values = { "_result", 1,
        obj{ {"fmsVer", "FMS/3,0,1,123"}, {"capabilities", 31} },
        obj{ {"level", "status"}, {"code", "NetConnection.Connect.Success"},
             {"description", "Connection succeeded."}, {"objectEncoding", 0} } } },
    send { "command", csid = 3, at = 0.01, values = { "onBWDone", 0, null } },
  },
  on { "command", "_checkbw", txn = 3, optional = true,
    send { "command", csid = 3, values = { "_result", 3, null } },
  },
  on { "command", "createStream", txn = 2,
    send { "command", csid = 3, values = { "_result", 2, null, 1 } },
  },
]]

-- A server that plays the fixture to one player; `ending` is what follows
-- the media in the play handler, `extra` more script fields.
local function player_server(ending, extra)
  return script("player_server.lua", fmt([[
return flow.server {
  media = %q,
  %s
%s
  on { "command", "getStreamLength", optional = true },
  on { "command", "play", txn = 4, stream = 1,
    send { "user_control", event = "stream_begin", stream_id = 1 },
    send { "command", csid = 5, stream = 1, values = { "onStatus", 0, null,
        obj{ {"level", "status"}, {"code", "NetStream.Play.Start"}, {"description", "Start live"} } } },
    send { "data", csid = 5, stream = 1, values = { "|RtmpSampleAccess", true, true } },
    media { from = 1, to = 550, stream = 1, csid = { audio = 6, video = 7, data = 5 }, at = 0.05 },
    send { "user_control", event = "stream_eof", stream_id = 1 },
%s
  },
  on { "user_control", "set_buffer_length", optional = true },
}
]], H.fixture_flv(), extra or "", CONNECT, ending))
end

local STOP = [[
    send { "command", csid = 5, stream = 1, values = { "onStatus", 0, null,
        obj{ {"level", "status"}, {"code", "NetStream.Play.Stop"} } } },
]]

-- The server's log lines that begin with "flow:".
local function flow_lines(srv)
  local out = {}
  for line in srv.log():gmatch("[^\n]+") do
    local l = line:match(" (flow: .*)$")
    if l then out[#out + 1] = l end
  end
  return out
end

local function has_line(lines, pat)
  for _, l in ipairs(lines) do if l:find(pat, 1, true) then return true end end
  return false
end

describe("flow server scripts answer real clients", function()
  after_each(H.cleanup)

  it("plays every frame to ffmpeg, answering connect whatever comes before it", function()
    local srv = H.luartmp_start{ script = player_server(STOP), args = { "--once", "--fast" } }
    local out = H.tmpname("ffmpeg.flv")
    local p = H.ffmpeg_play(srv.url("live/x"), out)
    assert.equal(0, H.wait_exit(p, 30), H.output(p))
    local info = assert(H.probe(out))
    assert.equal(H.FIXTURE.frames, info.video.frames)
    assert.is_true(info.audio.frames > 300, info.log)
    -- --once: the client sent every request that is not optional
    assert.equal(0, H.wait_exit(srv.proc, 10), srv.log())
    local lines = flow_lines(srv)
    assert.is_true(has_line(lines, "every request answered"), srv.log())
    -- ffmpeg sends Window Ack Size after the _result: it gates nothing
    assert.is_true(has_line(lines, "no handler for window_ack_size"), srv.log())
    assert.is_true(has_line(lines, "got command _checkbw"), srv.log())
  end)

  it("plays every frame to rtmpdump and closes once it goes silent (idle)", function()
    local srv = H.luartmp_start{ script = player_server("", "idle = 1,"), args = { "--once", "--fast" } }
    local out = H.tmpname("rtmpdump.flv")
    local p = H.rtmpdump_play(srv.url("live/x"), out)
    -- rtmpdump hangs at the end of the stream unless the server closes
    assert.is_not_nil(H.wait_exit(p, 30), "rtmpdump did not end")
    local info = assert(H.probe(out))
    assert.equal(H.FIXTURE.frames, info.video.frames)
    assert.equal(0, H.wait_exit(srv.proc, 10), srv.log())
    assert.is_true(has_line(flow_lines(srv), "the peer was silent 1 s after the last reply: closing"),
      srv.log())
  end)

  it("closes where the recording did: ffmpeg, which waits for more, ends with every frame", function()
    local srv = H.luartmp_start{ script = player_server("    close { at = 0.3 },\n"),
                                 args = { "--once", "--fast" } }
    local out = H.tmpname("ffmpeg-closed.flv")
    local p = H.ffmpeg_play(srv.url("live/x"), out, 30)   -- its own read timeout would take 30 s
    local t0 = H.now()
    assert.equal(0, H.wait_exit(p, 20), H.output(p))
    assert.is_true(H.now() - t0 < 15)
    assert.equal(H.FIXTURE.frames, assert(H.probe(out)).video.frames)
    assert.equal(0, H.wait_exit(srv.proc, 10), srv.log())
    assert.is_true(has_line(flow_lines(srv), "closing the connection where the recording did"), srv.log())
  end)

  it("plays to GStreamer, which never sends _checkbw", function()
    local srv = H.luartmp_start{ script = player_server("    close { at = 0.5 },\n"),
                                 args = { "--once", "--fast" } }
    local p = H.gst_play(srv.url("live/x"))
    assert.equal(0, H.wait_exit(srv.proc, 30), srv.log())
    H.wait_exit(p, 10)
    assert.equal(H.FIXTURE.frames, H.gst_frames(p))
    assert.is_false(has_line(flow_lines(srv), "got command _checkbw"), srv.log())
  end)

  it("takes ffmpeg's publish; --once names a request a client left out", function()
    local s = script("publish_server.lua", fmt([[
return flow.server {
%s
  on { "command", "releaseStream", txn = 2, optional = true,
    send { "command", csid = 3, values = { "_result", 2, null, undefined } } },
  on { "command", "FCPublish", optional = true,
    send { "command", csid = 3, values = { "onFCPublish", 0, null,
        obj{ {"code", "NetStream.Publish.Start"}, {"description", "x"} } } } },
  on { "command", "publish", txn = 5, stream = 1,
    send { "command", csid = 5, stream = 1, values = { "onStatus", 0, null,
        obj{ {"level", "status"}, {"code", "NetStream.Publish.Start"}, {"description", "go"} } } },
  },
  on { "command", "FCUnpublish", optional = true },
  on { "command", "deleteStream", optional = true },
  on { "data", "@setDataFrame", optional = true },
  on { "command", "seek" },
}
]], CONNECT))
    -- ffmpeg never seeks: the exit status names it
    local srv = H.luartmp_start{ script = s, args = { "--once" } }
    local p = H.ffmpeg_publish(srv.url("live/key"), nil, { fast = true })
    assert.equal(0, H.wait_exit(p, 30), H.output(p))
    assert.equal(1, H.wait_exit(srv.proc, 10), srv.log())
    assert.truthy(srv.log():find("flow: the client never sent command seek (entry 10)", 1, true), srv.log())
    local lines = flow_lines(srv)
    assert.is_true(has_line(lines, "got command publish"), srv.log())
  end)

  -- Arrival times of the video messages at a luartmp client, from its trace.
  local function video_arrivals(trace)
    local out = {}
    for line in (H.read_file(trace) or ""):gmatch("[^\n]+") do
      local t, ts = line:match("^(%S+) conn=%d+ in csid=%d+ fmt=%S+ type=video stream=%d+ ts=(%d+) ")
      if t then out[#out + 1] = { t = tonumber(t), ts = tonumber(ts) } end
    end
    return out
  end

  local TIMED = [[
  on { "command", "play", txn = 4, stream = 1,
    send { "command", csid = 5, stream = 1, values = { "onStatus", 0, null,
        obj{ {"level", "status"}, {"code", "NetStream.Play.Start"} } } },
    media { from = 1, to = 8, stream = 1, csid = { audio = 6, video = 7, data = 5 }, at = 0.1,
            times = { 0, 0, 0, 0, 1000, 1000, 2000, 2000 } },
    send { "user_control", event = "stream_eof", stream_id = 1 },
  },
]]
  local PLAYER = [[
return flow.client {
  url = "rtmp://127.0.0.1/live",
  timeout = 5,
  outcome = { codes = { "NetConnection.Connect.Success", "NetStream.Play.Start" },
              media = { audio = %d, video = %d }, tolerance = 0.1 },
  send { "command", csid = 3, values = { "connect", 1, obj{ {"app", "live"}, {"flashVer", "LNX 9,0,124,2"},
      {"tcUrl", "rtmp://127.0.0.1/live"}, {"fpad", false}, {"capabilities", 15}, {"audioCodecs", 4071},
      {"videoCodecs", 252}, {"videoFunction", 1} } } },
  await { "_result", txn = 1 },
  send { "window_ack_size", window = 2500000 },
  send { "command", csid = 3, values = { "createStream", 2, null } },
  await { "_result", txn = 2 },
  send { "command", csid = 8, stream = 1, values = { "play", 4, null, %q, -2000 } },
  send { "user_control", event = "set_buffer_length", stream_id = 1, buffer_length = 3000 },
  await { "onStatus", stream = 1, code = "NetStream.Play.Start" },
  receive { audio = %d, video = %d },
  send { "command", csid = 8, stream = 1, values = { "deleteStream", 5, null, 1 } },
}
]]
  local function player_client(name, audio, video)
    return script("player_client.lua", fmt(PLAYER, audio, video, name, audio, video))
  end

  it("sends media at its recorded times (1 s apart arrives >= 0.8 s apart), --fast at once", function()
    local s = script("timed_server.lua", fmt("return flow.server {\n  media = %q,\n%s%s}\n",
      H.fixture_flv(), CONNECT, TIMED))
    local client = player_client("x", 2, 4)
    for _, fast in ipairs({ false, true }) do
      local srv = H.luartmp_start{ script = s, args = fast and { "--once", "--fast" } or { "--once" } }
      local trace = H.tmpname("client.trace")
      local rc, out = H.run(fmt("%s --trace=%s %s %s", q(H.luartmp), q(trace), q(client), q(srv.url("live"))), 30)
      assert.equal(0, rc, out)
      local v = video_arrivals(trace)
      assert.equal(4, #v, H.read_file(trace))
      assert.same({ 0, 0, 40, 80 }, { v[1].ts, v[2].ts, v[3].ts, v[4].ts })
      if fast then
        assert.is_true(v[4].t - v[1].t < 0.3, fmt("fast: %.3f s", v[4].t - v[1].t))
      else
        assert.is_true(v[3].t - v[2].t >= 0.8, fmt("%.3f s", v[3].t - v[2].t))
        assert.is_true(v[4].t - v[3].t >= 0.8, fmt("%.3f s", v[4].t - v[3].t))
        assert.is_true(v[2].t - v[1].t < 0.3, fmt("sent together, arrived %.3f s apart", v[2].t - v[1].t))
      end
      H.wait_exit(srv.proc, 10)
    end
  end)
end)

describe("flow client scripts reach the recorded outcome", function()
  after_each(H.cleanup)

  local PLAYER = [[
return flow.client {
  url = "rtmp://127.0.0.1/live",
  timeout = 5,
  outcome = { codes = { "NetConnection.Connect.Success", "NetStream.Play.Start" },
              media = { audio = 150, video = 100 }, tolerance = 0.1 },
  send { "command", csid = 3, values = { "connect", 1, obj{ {"app", "live"}, {"flashVer", "LNX 9,0,124,2"},
      {"tcUrl", "rtmp://127.0.0.1/live"}, {"fpad", false}, {"capabilities", 15}, {"audioCodecs", 4071},
      {"videoCodecs", 252}, {"videoFunction", 1} } } },
  await { "_result", txn = 1 },
  send { "window_ack_size", window = 2500000 },
  send { "command", csid = 3, values = { "createStream", 2, null } },
  await { "_result", txn = 2 },
  send { "command", csid = 8, stream = 1, values = { "getStreamLength", 3, null, %q } },
  send { "command", csid = 8, stream = 1, values = { "play", 4, null, %q, -2000 } },
  send { "user_control", event = "set_buffer_length", stream_id = 1, buffer_length = 3000 },
  await { "onStatus", stream = 1, code = "NetStream.Play.Start" },
  receive { audio = 150, video = 100 },
  send { "command", csid = 8, stream = 1, values = { "deleteStream", 5, null, 1 }, at = 0.1 },
  close { at = 0.2 },
}
]]

  -- Tags of the fixture in its first `ms` milliseconds, and the video and
  -- audio frames among them (sequence headers left out).
  local function fixture_tags(ms)
    local rtmp = require "rtmp"
    local r = assert(rtmp.flv.open(H.fixture_flv()))
    local n, video, audio = 0, 0, 0
    while true do
      local m = r:read()
      if not m or m.timestamp >= ms then break end
      n = n + 1
      if not m.sequence_header then
        if m.type == 9 then video = video + 1 elseif m.type == 8 then audio = audio + 1 end
      end
    end
    r:close()
    return n, video, audio
  end

  local PUBLISHER = [[
return flow.client {
  url = "rtmp://127.0.0.1/live",
  media = %q,
  timeout = 5,
  outcome = { codes = { "NetConnection.Connect.Success", "NetStream.Publish.Start" },
              sent = { audio = %d, video = %d }, tolerance = 0 },
  send { "command", csid = 3, values = { "connect", 1, obj{ {"app", "live"}, {"type", "nonprivate"},
      {"flashVer", "FMLE/3.0 (compatible; Lavf59.27.100)"}, {"tcUrl", "rtmp://127.0.0.1/live"} } } },
  await { "_result", txn = 1 },
  send { "command", csid = 3, values = { "releaseStream", 2, null, %q } },
  send { "command", csid = 3, values = { "FCPublish", 3, null, %q } },
  send { "command", csid = 3, values = { "createStream", 4, null } },
  await { "_result", txn = 4 },
  send { "command", csid = 4, stream = 1, values = { "publish", 5, null, %q, "live" } },
  await { "onStatus", stream = 1, code = "NetStream.Publish.Start" },
  media { from = 1, to = %d, stream = 1, csid = { audio = 4, video = 6, data = 4 } },
  send { "command", csid = 3, values = { "FCUnpublish", 6, null, %q }, at = 0.1 },
  send { "command", csid = 3, values = { "deleteStream", 7, null, 1 } },
}
]]

  for _, kind in ipairs({ "nginx-rtmp", "luartmp" }) do
    it("publishes to " .. kind .. " at the recorded pace: an ffmpeg player decodes every frame", function()
      local srv = H.server_start(kind)
      local n, video, audio = fixture_tags(2000)
      local player_out = H.tmpname("played.flv")
      local player = H.ffmpeg_play(srv.url("live/pub"), player_out, 3)
      -- the player must be there before the first frame: nginx-rtmp keeps no GOP
      assert(H.wait_event(srv, "play", "pub", 0, 10), srv.log())
      H.sleep(0.2)
      -- sent: the frames and one sequence header each
      local s = script("publisher.lua", fmt(PUBLISHER, H.fixture_flv(), audio + 1, video + 1, "pub", "pub",
        "pub", n, "pub"))
      local t0 = H.now()
      local rc, out = H.run(fmt("%s %s %s", q(H.luartmp), q(s), q(srv.url("live"))), 30)
      assert.equal(0, rc, out)
      assert.is_true(H.now() - t0 >= 1.8, "paced by the timestamps: " .. (H.now() - t0))
      assert.equal(0, H.wait_exit(player, 20), H.output(player))
      local info = assert(H.probe(player_out))
      assert.equal(video, info.video.frames, info.log)
      assert.equal(audio, info.audio.frames, info.log)
    end)
  end

  for _, kind in ipairs({ "nginx-rtmp", "luartmp" }) do
    it("plays from " .. kind .. " while ffmpeg publishes: exit 0, the media saved; a missing stream: exit 1", function()
      local srv = H.server_start(kind)
      local pub = H.ffmpeg_publish(srv.url("live/cam"))
      assert.is_true(H.wait_until(function() return srv.count("publish", "cam") > 0 end, 10) ~= nil,
        srv.log())
      H.sleep(0.5)
      local s = script("client.lua", fmt(PLAYER, "cam", "cam"))
      local saved = H.tmpname("saved.flv")
      local rc, out = H.run(fmt("%s %s %s --save %s", q(H.luartmp), q(s), q(srv.url("live")), q(saved)), 30)
      assert.equal(0, rc, out)
      local info = assert(H.probe(saved))
      assert.is_true(info.video.frames >= 90, info.log)
      assert.is_true(info.audio.frames >= 135, info.log)

      -- a stream nobody publishes: the step that did not complete, and why
      local none = script("client_none.lua", fmt(PLAYER, "nosuch", "nosuch"))
      rc, out = H.run(fmt("%s --log-level warn %s %s --timeout 2", q(H.luartmp), q(none), q(srv.url("live"))), 30)
      assert.equal(1, rc, out)
      local line = out:match("(flow: step %d+ [^\n]*)")
      assert.truthy(line, out)
      assert.truthy(line:find("^flow: step 10 %(receive 150 audio, 100 video%): no media for 2 s")
        or line:find("^flow: step 9 %(await onStatus on stream 1 NetStream.Play.Start after play%)"), line)
      H.kill(pub)
    end)
  end
end)
