-- The coroutine client API (rtmp.connect without handlers) against real
-- peers: nginx-rtmp, an `ffmpeg -listen 1` server, our own live server
-- (another luartmp process), with ffmpeg players and publishers on the
-- other side and ffprobe counting what was decoded.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local H = require "support.helpers"

local F = H.FIXTURE

-- Run fn in a coroutine (rtmp.spawn) and the loop until it returns.
local function co_run(fn, timeout)
  local res
  rtmp.spawn(function() res = table.pack(pcall(fn)) end)
  local deadline = rtmp.now() + (timeout or 30)
  while not res and rtmp.now() < deadline do rtmp.run(0.02) end
  assert(res, "the client coroutine did not finish in time")
  assert(res[1], res[2])
  return table.unpack(res, 2, res.n)
end

-- The fixture's tags as message objects (rtmp.flv) for ns:send.
local function fixture_msgs()
  local out = {}
  local r = assert(rtmp.flv.open(H.fixture_flv()))
  while true do
    local m, err = r:read()
    if not m then assert(not err, err) break end
    out[#out + 1] = m
  end
  r:close()
  return out
end

-- Publish msgs on ns, paced at `speed` times real time (nil: at once).
local function send_all(ns, msgs, speed)
  local t0 = rtmp.now()
  for _, m in ipairs(msgs) do
    if speed then
      local wait = t0 + m.timestamp / 1000 / speed - rtmp.now()
      if wait > 0 then rtmp.sleep(wait) end
    end
    assert(ns:send(m))
  end
end

-- Connect, create a stream, publish `name`, send the fixture, close.
local function publish_fixture(url, name, speed)
  local nc = assert(rtmp.connect(url))
  local ns = assert(nc:create_stream())
  assert(ns:publish(name))
  send_all(ns, fixture_msgs(), speed)
  rtmp.sleep(0.2)
  ns:close()
  rtmp.sleep(0.1)
  nc:close()
end

-- Write the messages read to an FLV file with rtmp.flv.
local function flv_write(path, msgs)
  local w = assert(rtmp.flv.create(path))
  for _, m in ipairs(msgs) do assert(w:write(m)) end
  assert(w:close())
  return w
end

-- Play `name` from url with our client until eof; returns the audio,
-- video and onMetaData messages read and how the read loop ended.
local function play_until_end(ns, timeout)
  local msgs = {}
  while true do
    local m, err = ns:read(timeout or 10)
    if not m then return msgs, err end
    if m.type == 8 or m.type == 9 or (m.type == 18 and m.name == "onMetaData") then
      msgs[#msgs + 1] = m
    end
  end
end

-- AVC NALU packets (not the sequence header, not FFmpeg's end-of-sequence tag)
local function video_frames(msgs)
  local n = 0
  for _, m in ipairs(msgs) do
    if m.type == 9 and m.payload:byte(2) == 1 then n = n + 1 end
  end
  return n
end

describe("client API interop", function()
  after_each(function() H.cleanup() end)

  it("publishes to nginx-rtmp; an ffmpeg player decodes every frame", function()
    local srv = H.nginx_start()
    local out = H.tmpname("nginx-pub") .. ".flv"
    local player = H.ffmpeg_play(srv.url("live/cl"), out, 2)
    assert(H.wait_until(function() return srv.count("play", "cl") > 0 end, 10), "the player did not start")
    co_run(function() publish_fixture(srv.url("live"), "cl", 8) end)
    assert(H.wait_exit(player, 15), "the ffmpeg player did not end")
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(player))
    assert.are.equal("h264", info.video.codec)
    assert.are.equal("aac", info.audio.codec)
    assert.are.equal(1, srv.count("publish", "cl"))
  end)

  it("plays from nginx-rtmp while ffmpeg publishes; the recorded FLV decodes fully", function()
    local srv = H.nginx_start()
    local out = H.tmpname("nginx-play") .. ".flv"
    local msgs, ended = co_run(function()
      local nc = assert(rtmp.connect(srv.url("live")))
      local ns = assert(nc:create_stream())
      assert(ns:play("fp"))
      H.ffmpeg_publish(srv.url("live/fp"))
      local got, why = play_until_end(ns, 10)
      nc:close()
      return got, why
    end, 40)
    assert.are.equal("eof", ended)
    assert.are.equal(F.frames, video_frames(msgs))
    local w = flv_write(out, msgs)
    assert.is_true(math.abs(w.duration - F.seconds * 1000) < 100, "duration " .. w.duration)
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames)
    assert.are.equal(F.width, info.video.width)
    assert.are.equal("aac", info.audio.codec)
  end)

  it("publishes to an ffmpeg -listen 1 server, which records every frame", function()
    local port = H.free_port()
    local out = H.tmpname("listen") .. ".flv"
    local ff = H.spawn(string.format("ffmpeg -nostdin -hide_banner -v info -listen 1 -i rtmp://127.0.0.1:%d/app/name -c copy -f flv -y %s",
      port, H.shquote(out)), { name = "ffmpeg-listen" })
    assert(H.wait_port(port, 10, ff))
    co_run(function() publish_fixture(string.format("rtmp://127.0.0.1:%d/app", port), "name") end)
    assert.are.equal(0, H.wait_exit(ff, 15), H.output(ff))
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames)
    assert.are.equal("aac", info.audio.codec)
  end)

  it("publishes to our live server; an ffmpeg player decodes every frame", function()
    local srv = H.luartmp_start()
    local out = H.tmpname("live-pub") .. ".flv"
    local player = H.ffmpeg_play(srv.url("live/ours"), out, 2)
    assert(H.wait_until(function() return srv.count("play", "ours") > 0 end, 10), "the player did not start")
    co_run(function() publish_fixture(srv.url("live"), "ours", 8) end)
    assert(H.wait_exit(player, 15), "the ffmpeg player did not end")
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(player))
    assert.are.equal(1, srv.count("publish", "ours"))
  end)

  it("gets NetStream.Publish.BadName from our live server for a name already published", function()
    local srv = H.luartmp_start()
    local ok, err = co_run(function()
      local nc1 = assert(rtmp.connect(srv.url("live")))
      local ns1 = assert(nc1:create_stream())
      assert(ns1:publish("taken"))
      local nc2 = assert(rtmp.connect(srv.url("live")))
      local ns2 = assert(nc2:create_stream())
      local r, e = ns2:publish("taken")
      nc2:close()
      nc1:close()
      return r, e
    end)
    assert.is_nil(ok)
    assert.are.equal("NetStream.Publish.BadName: taken is already publishing.", err)
  end)

  it("gets a clear error from an app nginx-rtmp does not have, and from a closed port", function()
    local srv = H.nginx_start()
    local nc, err = co_run(function() return rtmp.connect(srv.url("nosuchapp")) end)
    assert.is_nil(nc)
    -- nginx-rtmp logs "application not found" and closes, with no _error
    assert.are.equal("closed: peer closed the connection", err)
    local port = H.free_port()
    nc, err = co_run(function() return rtmp.connect("rtmp://127.0.0.1:" .. port .. "/live") end)
    assert.is_nil(nc)
    assert.truthy(err:match("^closed: .+"), err)
  end)

  it("ns:read returns nil, closed promptly when the upstream is killed mid-play", function()
    local srv = H.nginx_start()
    local got, err = co_run(function()
      local nc = assert(rtmp.connect(srv.url("live")))
      local ns = assert(nc:create_stream())
      assert(ns:play("k"))
      H.ffmpeg_publish(srv.url("live/k"))
      local n = 0
      while n < 20 do
        assert(ns:read(10))
        n = n + 1
      end
      H.signal(srv.proc, "KILL")
      -- what was queued, then "closed" (not "timeout": the 10 s read deadline)
      local m, e
      repeat m, e = ns:read(10) until not m
      return n, e
    end, 40)
    assert.are.equal(20, got)
    assert.are.equal("closed", err)
  end)
end)
