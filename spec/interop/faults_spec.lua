-- Faults (issue 7, item 6): a publisher killed with kill -9.
--
-- ffmpeg publishes the fixture to scripts/live.lua; two players watch it:
-- our client (rtmp.connect in this process, every message stamped with the
-- wall clock as it arrives) and ffmpeg.  dumpcap records the server port,
-- so what ffmpeg received, and when, is read back from the capture.  Then
-- the publisher gets SIGKILL:
--   - each player receives User Control StreamEOF and onStatus
--     NetStream.Play.UnpublishNotify within 1 s of the kill;
--   - a new ffmpeg publisher of the same name is accepted at once
--     (NetStream.Publish.Start);
--   - our client, still connected and still subscribed, receives
--     NetStream.Play.PublishNotify and the new publisher's media.
-- ffmpeg as a player ends by itself at UnpublishNotify (its RTMP client
-- treats it as the end of the stream), so a fresh ffmpeg player checks
-- that the republished stream plays.

local H = require "support.helpers"
local CAP = require "support.capture"
local rtmp = require "rtmp"
local capture = require "rtmp.capture"
local system = require "system"

local fmt = string.format
local null = rtmp.null
local FLASH_VER = "faults_spec 1,0" -- tells our client's connection apart in the capture

-- Our player: every message with its arrival time (epoch seconds).
local function play_client(url, name)
  local self = { msgs = {}, closed = false }
  local conn = assert(rtmp.connect(url, {
    on_handshake = function(conn)
      conn:command(nil, "connect", 1, { app = conn.app, tcUrl = conn.tc_url, flashVer = FLASH_VER,
        fpad = false, capabilities = 15, audioCodecs = 3191, videoCodecs = 252, videoFunction = 1 })
    end,
    on_message = function(conn, msg)
      self.msgs[#self.msgs + 1] = { msg = msg, t = system.gettime() }
      if msg.name == "_result" and msg.txn == 1 then
        conn:command(nil, "createStream", 2, null)
      elseif msg.name == "_result" and msg.txn == 2 then
        self.sid = math.tointeger(msg.args[2])
        conn:command({ stream = self.sid, csid = 8 }, "play", 0, null, name, -2)
      end
    end,
    on_close = function(_, reason) self.closed = reason end,
  }))
  self.conn = conn
  -- The first entry after index `from` matching pred(msg), and its index.
  function self.find(pred, from)
    for i = (from or 0) + 1, #self.msgs do
      if pred(self.msgs[i].msg) then return self.msgs[i], i end
    end
  end
  return self
end

local function wait_for(cond, timeout)
  local deadline = H.now() + (timeout or 5)
  repeat
    local v = cond()
    if v then return v end
    rtmp.run(0.02)
  until H.now() > deadline
  return cond()
end

local function is_status(code)
  return function(m)
    return m.name == "onStatus" and type(m.args) == "table" and type(m.args[2]) == "table"
      and m.args[2].code == code
  end
end

local function is_eof(m)
  return m.type == 4 and m.event_name == "stream_eof"
end

local function is_video(m) return m.type == 9 end

describe("a publisher killed with kill -9 (live.lua)", function()
  after_each(function() H.cleanup() end)

  it("players get StreamEOF and UnpublishNotify within 1 s; the name can be published again at once", function()
    local srv = H.luartmp_start{}
    local cap = CAP.start(srv.port, { name = "faults" })
    local url = srv.url("live/fault")

    local pub = H.ffmpeg_publish(url)
    assert(H.wait_until(function() return srv.count("publish", "fault") >= 1 end, 10),
      "the publisher did not reach publish:\n" .. srv.log())
    local me = play_client(srv.url("live"), "fault")
    local ff_file = H.tmpname("faults-ffmpeg-player.flv")
    local ff = H.ffmpeg_play(url, ff_file, 4)
    assert(wait_for(function() return srv.count("play", "fault") >= 2 end, 10),
      "the players did not reach play:\n" .. srv.log())
    -- both players have media flowing before the kill
    assert(wait_for(function() return me.find(is_video) end, 10), "our player got no video")
    assert(wait_for(function() return (H.file_size(ff_file) or 0) > 20000 end, 10),
      "ffmpeg's player wrote no media:\n" .. H.output(ff))
    assert.is_nil(H.exited(pub), "the publisher ended too early")

    local before_kill = #me.msgs
    local t_kill = system.gettime()
    H.signal(pub, "KILL")

    -- our player: StreamEOF and UnpublishNotify, each within 1 s
    assert(wait_for(function() return me.find(is_status("NetStream.Play.UnpublishNotify"), before_kill) end, 3),
      "our player got no UnpublishNotify:\n" .. srv.log())
    local eof = me.find(is_eof, before_kill)
    local unpub = me.find(is_status("NetStream.Play.UnpublishNotify"), before_kill)
    assert(eof, "our player got no StreamEOF")
    assert.equal(me.sid, eof.msg.stream_id)
    assert(eof.t - t_kill < 1.0, fmt("StreamEOF %.3f s after the kill", eof.t - t_kill))
    assert(unpub.t - t_kill < 1.0, fmt("UnpublishNotify %.3f s after the kill", unpub.t - t_kill))
    assert.is_false(me.closed)
    assert.equal(137, H.wait_exit(pub, 5))

    -- a new publisher of the same name, at once
    local t_repub = system.gettime()
    local pub2 = H.ffmpeg_publish(url)
    assert(wait_for(function() return srv.count("publish", "fault") >= 2 end, 10),
      "the second publisher was not accepted:\n" .. srv.log())
    assert.is_nil(srv.log():find("refused", 1, true), "a refusal in the log:\n" .. srv.log())
    -- our player, still connected: PublishNotify, then the new media
    local notify, ni = nil, nil
    assert(wait_for(function()
      notify, ni = me.find(is_status("NetStream.Play.PublishNotify"), before_kill)
      return notify and me.find(is_video, ni)
    end, 10), "our player got no media from the new publisher")
    assert.is_false(me.closed)

    -- ffmpeg's player ended by itself at UnpublishNotify; a fresh one plays the new stream
    assert(wait_for(function() return H.exited(ff) end, 10), "ffmpeg's player did not end after the unpublish")
    assert.equal(0, H.exited(ff), H.output(ff))
    local ff2_file = H.tmpname("faults-ffmpeg-player2.flv")
    local ff2 = H.ffmpeg_play(url, ff2_file, 4)
    assert(wait_for(function() return (H.file_size(ff2_file) or 0) > 20000 end, 10),
      "the fresh ffmpeg player got no media:\n" .. H.output(ff2))
    H.kill(ff2, 5)
    local info = assert(H.probe(ff2_file))
    assert(info.video and info.video.frames > 0, "no decodable video in " .. ff2_file)
    H.kill(pub2, 5)
    me.conn:close("test done")
    rtmp.run(0.1)

    -- what ffmpeg's player received, from the capture
    local path = CAP.stop(cap)
    local file = assert(capture.open(path))
    local ff_conn, pub2_conn
    for _, conn in ipairs(file.conns) do
      if conn.rtmp then
        local list = capture.messages(conn)
        local connect, plays, publishes
        for _, e in ipairs(list) do
          if e.dir == "c2s" and e.msg.name == "connect" then connect = e.msg end
          if e.dir == "c2s" and e.msg.name == "play" then plays = true end
          if e.dir == "c2s" and e.msg.name == "publish" then publishes = e end
        end
        local fv = connect and type(connect.args[1]) == "table" and connect.args[1].flashVer
        local start = conn.start + (list[1] and list[1].t or 0)
        if plays and fv ~= FLASH_VER and not ff_conn then ff_conn = { conn = conn, list = list } end
        if publishes and start >= t_repub - 0.5 then pub2_conn = { conn = conn, list = list, publish = publishes } end
      end
    end
    assert(ff_conn, "ffmpeg's play connection is not in the capture")
    local ff_eof, ff_unpub
    for _, e in ipairs(ff_conn.list) do
      local t = ff_conn.conn.start + e.t
      if e.dir == "s2c" and t >= t_kill then
        if not ff_eof and is_eof(e.msg) then ff_eof = t end
        if not ff_unpub and is_status("NetStream.Play.UnpublishNotify")(e.msg) then ff_unpub = t end
      end
    end
    assert(ff_eof, "ffmpeg's player was sent no StreamEOF after the kill")
    assert(ff_unpub, "ffmpeg's player was sent no UnpublishNotify after the kill")
    assert(ff_eof - t_kill < 1.0, fmt("StreamEOF to ffmpeg %.3f s after the kill", ff_eof - t_kill))
    assert(ff_unpub - t_kill < 1.0, fmt("UnpublishNotify to ffmpeg %.3f s after the kill", ff_unpub - t_kill))

    -- the second publisher: Publish.Start as the answer to its publish
    assert(pub2_conn, "the second publisher's connection is not in the capture")
    local started
    for _, e in ipairs(pub2_conn.list) do
      if e.dir == "s2c" and e.t >= pub2_conn.publish.t and is_status("NetStream.Publish.Start")(e.msg) then
        started = e
        break
      end
      assert.is_falsy(e.dir == "s2c" and is_status("NetStream.Publish.BadName")(e.msg), "BadName")
    end
    assert(started, "no NetStream.Publish.Start for the second publisher")
    assert(started.t - pub2_conn.publish.t < 0.5,
      fmt("Publish.Start %.3f s after the publish command", started.t - pub2_conn.publish.t))
    srv.stop()
  end)
end)
