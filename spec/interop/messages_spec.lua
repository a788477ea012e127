-- Message types seen from the other side: aggregates (type 22) that a
-- luartmp script sends are decoded frame by frame by ffmpeg and rtmpdump
-- and tag by tag by tshark; aggregates published into scripts/live.lua
-- reach an ffmpeg player (and a late joiner, from the GOP cache) as plain
-- audio and video; tshark decodes the shared-object and AMF3 command/data
-- messages we send.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local SECONDS = 3   -- of the fixture, per test
local BATCH = 5     -- messages per aggregate

-- The fixture's tags up to SECONDS, as message objects, and what a player
-- must decode from them.
local function fixture_messages()
  local msgs, video, audio = {}, 0, 0
  for _, t in ipairs(C.flv_tags(H.fixture_flv())) do
    if t.timestamp > SECONDS * 1000 then break end
    local m = rtmp.message({ type = t.type, timestamp = t.timestamp }, t.data)
    msgs[#msgs + 1] = m
    if t.type == 9 and not m.sequence_header then video = video + 1 end
    if t.type == 8 and not m.sequence_header then audio = audio + 1 end
  end
  return msgs, video, audio
end

-- A server that answers connect, createStream and play, then sends the
-- fixture's first SECONDS: the metadata as a plain data message (as FMS
-- does; FFmpeg's reader does not finish opening a stream until it has seen
-- a plain audio, video or onMetaData message, aggregates do not count),
-- then everything else as aggregates of BATCH messages, paced.
local AGG_SERVER = [=[
local rtmp = require "rtmp"
local path, seconds, batch = ...
seconds, batch = tonumber(seconds), tonumber(batch)
local f = assert(io.open(path, "rb"))
local s = f:read("a")
f:close()
local msgs, frames = {}, 0
local pos = string.unpack(">I4", s, 6) + 5
while pos + 11 <= #s do
  local t, size, ts, tsx = string.unpack(">B I3 I3 B", s, pos)
  ts = ts | (tsx << 24)
  if ts > seconds * 1000 then break end
  local m = rtmp.message({ type = t, timestamp = ts }, s:sub(pos + 11, pos + 10 + size))
  msgs[#msgs + 1] = m
  if t == 9 and not m.sequence_header then frames = frames + 1 end
  pos = pos + 15 + size
end
local function play(conn, sid)
  conn:user_control("stream_begin", sid)
  conn:command({ stream = sid, csid = 5 }, "onStatus", 0, rtmp.null,
    { level = "status", code = "NetStream.Play.Start", description = "aggregates" })
  assert(msgs[1].type == 18)
  conn:send({ stream = sid, csid = 5 }, msgs[1])
  local i, sent = 2, 0
  rtmp.timer(0.05, function(t)
    if conn.closed then t:stop() return end
    local group = {}
    for k = i, math.min(i + batch - 1, #msgs) do group[#group + 1] = msgs[k] end
    i = i + #group
    assert(conn:send({ stream = sid }, rtmp.aggregate(group)))
    sent = sent + 1
    if i > #msgs then
      t:stop()
      rtmp.log.info("sent %d aggregates holding %d messages, %d video frames", sent, #msgs - 1, frames)
    end
  end, 0.05)
end
rtmp.listen{ listen = rtmp.options.listen, on_message = function(conn, msg)
  if msg.name == "connect" then
    conn:set_chunk_size(4096)
    conn:command(nil, "_result", msg.txn, { fmsVer = "FMS/3,5,7,7009" },
      { level = "status", code = "NetConnection.Connect.Success" })
  elseif msg.name == "createStream" then
    conn:command(nil, "_result", msg.txn, rtmp.null, 1)
  elseif msg.name == "play" then
    play(conn, msg.stream)
  end
end }
]=]

-- Timestamps of the AVC frames (packet type 1) among FLV tags: no
-- sequence header, no end-of-sequence tag (FFmpeg's muxer adds one).
local function video_times(tags)
  local t = {}
  for _, tag in ipairs(tags) do
    local b1, b2 = tag.data:byte(1, 2)
    if tag.type == 9 and (b1 & 0x0F) == 7 and b2 == 1 then t[#t + 1] = tag.timestamp end
  end
  return t
end

describe("aggregate messages", function()
  after_each(H.cleanup)

  it("sent by a script: ffmpeg and rtmpdump decode every frame, tshark every tag", function()
    local script = H.tmpname("aggsrv") .. ".lua"
    H.write_file(script, AGG_SERVER)
    local srv = H.luartmp_start{ script = script, args = { H.fixture_flv(), tostring(SECONDS), tostring(BATCH) } }
    local cap = H.tshark_start(srv.port)
    local msgs, video, audio = fixture_messages()
    local out_ff, out_rd = H.tmpname("agg-ffmpeg.flv"), H.tmpname("agg-rtmpdump.flv")
    local ff = H.ffmpeg_play(srv.url("app/x"), out_ff, 3)
    local rd = H.rtmpdump_play(srv.url("app/x"), out_rd)
    assert(H.wait_until(function()
      return select(2, srv.log():gsub("sent %d+ aggregates", "")) >= 2
    end, 20), srv.log())
    H.wait_exit(ff, 15)
    H.wait_quiet(out_rd, 1.5, 10)
    H.kill(rd)
    cap.stop()
    local n_agg = tonumber(srv.log():match("sent (%d+) aggregates"))
    assert.are.equal(math.ceil((#msgs - 1) / BATCH), n_agg)

    for name, out in pairs{ ffmpeg = out_ff, rtmpdump = out_rd } do
      local info = assert(H.probe(out))
      assert.are.equal(video, info.video and info.video.frames, name .. " video frames")
      assert.are.equal(audio, info.audio and info.audio.frames, name .. " audio frames")
    end

    -- Timestamps as FFmpeg rebuilt them from the aggregates: from the
    -- second aggregate on, exactly the source's (the first starts at 0,
    -- where FFmpeg's reader mis-steps; see core/aggregate.h).
    local src = {}
    for _, m in ipairs(msgs) do
      src[#src + 1] = { type = m.type, timestamp = m.timestamp, data = m.payload }
    end
    local want, got = video_times(src), video_times(C.flv_tags(out_ff))
    assert.are.equal(#want, #got)
    local first_agg_end = msgs[1 + BATCH].timestamp
    for i = 1, #want do
      if want[i] > first_agg_end then
        assert.are.equal(want[i], got[i], "ffmpeg: video frame " .. i)
      end
    end
    -- librtmp adjusts them as the spec says: every frame on its time.
    assert.are.same(want, video_times(C.flv_tags(out_rd)), "rtmpdump's timestamps")

    -- tshark's own aggregate dissector: every tag's type, size and back
    -- pointer, in both players' streams.
    local rc, lines = H.run(string.format("tshark -r %s -d tcp.port==%d,rtmpt -Y 'rtmpt.header.typeid == 0x16' " ..
      "-T fields -E separator=/t -e rtmpt.tag.type -e rtmpt.tag.datasize -e rtmpt.tag.tagsize 2>/dev/null",
      cap.file, srv.port), 60)
    assert.are.equal(0, rc)
    local tags, seen = 0, {}
    for line in lines:gmatch("[^\n]+") do
      local types, sizes, backs = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
      local ts, ss, bs = {}, {}, {}
      for v in types:gmatch("%d+") do ts[#ts + 1] = tonumber(v) end
      for v in sizes:gmatch("%d+") do ss[#ss + 1] = tonumber(v) end
      for v in backs:gmatch("%d+") do bs[#bs + 1] = tonumber(v) end
      assert.are.equal(#ts, #ss)
      assert.are.equal(#ts, #bs)
      for k = 1, #ts do
        seen[ts[k]] = true
        assert.are.equal(ss[k] + 11, bs[k], "back pointer of tag " .. k .. " in " .. line)
      end
      tags = tags + #ts
    end
    assert.are.equal(2 * (#msgs - 1), tags, "tags tshark found in the aggregates to both players")
    assert.are.same({ [8] = true, [9] = true }, seen)
    assert.are.equal(0, H.tshark_decode(cap.file, srv.port).malformed)
  end)

  it("published into live.lua: a player gets every frame, a late joiner the GOP from its keyframe", function()
    local srv = H.luartmp_start()
    local msgs, video, audio = fixture_messages()
    local out1, out2 = H.tmpname("aggpub1.flv"), H.tmpname("aggpub2.flv")
    local p1 = H.ffmpeg_play(srv.url("live/agg"), out1, 3)
    assert(H.wait_until(function() return srv.count("play", "agg") >= 1 end, 10))
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:publish(sid, "agg")
    assert(c:wait(function() return c:find{ code = "NetStream.Publish.Start" } end, 5))
    local i = 1
    while i <= #msgs do
      local group = {}
      for k = i, math.min(i + BATCH - 1, #msgs) do group[#group + 1] = msgs[k] end
      i = i + #group
      assert(c.conn:send({ stream = sid }, rtmp.aggregate(group)))
      rtmp.run(0.02)
    end
    -- a nested aggregate is dropped with a warning; the publisher stays
    local inner = string.pack(">B I3 I3 B I3", 9, 1, 0, 0, 0) .. "\x27" .. string.pack(">I4", 12)
    local nested = string.pack(">B I3 I3 B I3", 22, #inner, 0, 0, 0) .. inner .. string.pack(">I4", 11 + #inner)
    assert(c.conn:send({ type = "aggregate", stream = sid }, nested))
    assert(c:wait(function() return srv.log():find("aggregate dropped: aggregate message inside an aggregate", 1, true) end, 5))
    assert.is_false(c.conn.closed)
    -- the late joiner: frames from the last keyframe sent
    local gop = 0
    for _, m in ipairs(msgs) do
      if m.type == 9 and m.keyframe and not m.sequence_header then gop = 0 end
      if m.type == 9 and not m.sequence_header then gop = gop + 1 end
    end
    local p2 = H.ffmpeg_play(srv.url("live/agg"), out2, 3)
    assert(c:wait(function() return H.exited(p1) and H.exited(p2) end, 20))
    c:close()
    local info = assert(H.probe(out1))
    assert.are.equal(video, info.video and info.video.frames, "first player's video frames")
    assert.are.equal(audio, info.audio and info.audio.frames, "first player's audio frames")
    local late = assert(H.probe(out2))
    assert.are.equal(gop, late.video and late.video.frames, "late joiner's video frames")
    assert.are.equal("K_", H.first_video_flags(out2))
  end)
end)

describe("shared-object and AMF3 messages", function()
  after_each(H.cleanup)

  it("are decoded by tshark (types, names) and by our client (events)", function()
    local script = H.tmpname("sosrv") .. ".lua"
    H.write_file(script, [=[
local rtmp = require "rtmp"
local so = rtmp.shared_object{ name = "room", version = 2, persistent = true, events = {
  { type = "use_success" },
  { type = "change", key = "color", value = "red" },
  { type = "status", code = "SharedObject.Hello", level = "status" },
  { type = "send_message", name = "soChat", args = { "hello" } },
} }
rtmp.log.info("so body %d bytes", #so)
rtmp.listen{ listen = rtmp.options.listen, on_message = function(conn, msg)
  if msg.name == "connect" then
    conn:command(nil, "_result", msg.txn, { fmsVer = "x" }, { code = "NetConnection.Connect.Success" })
    conn:send({ type = "shared_object" }, so)
    conn:send({ type = "shared_object3" }, rtmp.shared_object{ amf3 = true, name = "room3",
      events = { { type = "clear" } } })
    conn:command3(nil, "onCustom3", 0, rtmp.null, "payload3")
    conn:data3({ stream = 0 }, "onData3", 1)
  end
end }
]=])
    local srv = H.luartmp_start{ script = script }
    local cap = H.tshark_start(srv.port)
    H.sleep(0.5) -- a short exchange: let the capture settle before and after
    local c = C.connect(srv.url("app"))
    assert(c:wait(function() return c:find{ name = "onData3" } end, 5))
    c:close()
    H.sleep(0.5)
    cap.stop()

    local so = assert(c:find{ type = 19 }).so
    assert.are.same({ "room", 2, true }, { so.name, so.version, so.persistent })
    assert.are.same({ "use_success", "change", "status", "send_message" },
      { so.events[1].type_name, so.events[2].type_name, so.events[3].type_name, so.events[4].type_name })
    assert.are.same({ "color", "red", "SharedObject.Hello", "soChat", "hello" },
      { so.events[2].key, so.events[2].value, so.events[3].code, so.events[4].name, so.events[4].args[1] })
    assert.are.equal("room3", assert(c:find{ type = 16 }).so.name)
    assert.are.equal("payload3", assert(c:find{ type = 17 }).args[2])

    local d = H.tshark_decode(cap.file, srv.port)
    assert.are.equal(0, d.malformed, table.concat(d.errors, "\n"))
    for _, t in ipairs{ 0x13, 0x10, 0x11, 0x0f } do assert.is_true(d.types[t], "type " .. t) end
    for _, s in ipairs{ "onCustom3", "payload3", "onData3" } do assert.is_true(d.strings[s], s) end
    -- tshark 4.0 names the shared-object messages but does not dissect
    -- their events: check what it does show, type and body size.
    local rc, out = H.run(string.format("tshark -r %s -d tcp.port==%d,rtmpt -Y 'rtmpt.header.typeid == 0x13 || " ..
      "rtmpt.header.typeid == 0x10' -T fields -e rtmpt.header.bodysize -e _ws.col.Info 2>/dev/null",
      cap.file, srv.port), 60)
    assert.are.equal(0, rc)
    local size = tonumber(srv.log():match("so body (%d+) bytes"))
    assert.truthy(out:find(tostring(size), 1, true), out)
    assert.truthy(out:find("AMF0 Shared Object", 1, true), out)
    assert.truthy(out:find("AMF3 Shared Object", 1, true), out)
  end)
end)
