-- The message trace against real peers: ffmpeg publishes to
-- `luartmp --trace=FILE scripts/live.lua` and another ffmpeg plays; the
-- trace file lists both connections' messages in both directions, with the
-- codecs the fixture holds, and tshark's decoding of the same session
-- names the same commands in the same order.
local H = require "support.helpers"
local rtmp = require "rtmp"

-- One trace line into its fields (docs/TRACE.md).
local function parse(line)
  local t, conn, dir, csid, fmt, typ, stream, ts, len, body = line:match(
    "^(%d+%.%d+) conn=(%d+) (%a+) csid=(%S+) fmt=(%S+) type=(%S+) stream=(%S+) ts=(%S+) len=(%d+) body=(.*)$")
  assert(t, "not a trace line: " .. line)
  local fn = assert(load("return " .. body, "body", "t", { rtmp = rtmp }))
  return { time = tonumber(t), conn = tonumber(conn), dir = dir, csid = tonumber(csid), fmt = tonumber(fmt),
           type = typ, stream = tonumber(stream), ts = tonumber(ts), len = tonumber(len), body = fn() }
end

local function read_trace(path)
  local out = {}
  for line in (H.read_file(path) or ""):gmatch("[^\n]+") do out[#out + 1] = parse(line) end
  return out
end

-- Command and data names in order, per connection and direction: from
-- the trace ({ [conn] = { in = {...}, out = {...} } }).
local function trace_names(lines)
  local by = {}
  for _, m in ipairs(lines) do
    if m.type == "command" or m.type == "data" then
      by[m.conn] = by[m.conn] or { ["in"] = {}, out = {} }
      local list = by[m.conn][m.dir]
      -- tshark separates messages with "|", so it cannot show the "|" that
      -- begins "|RtmpSampleAccess": compare without it
      list[#list + 1] = (m.body[1]:gsub("^|", ""))
    end
  end
  return by
end

-- The same from tshark, per client port: each RTMP packet's Info column
-- lists its messages separated by "|", commands and data as name(args).
local function tshark_names(file, port)
  local rc, out = H.run(string.format("tshark -r %s -d tcp.port==%d,rtmpt -Y rtmpt -T fields "
    .. "-E separator=/t -e tcp.srcport -e tcp.dstport -e _ws.col.Info 2>/dev/null", H.shquote(file), port), 60)
  assert(rc == 0, out)
  local by = {}
  for line in out:gmatch("[^\n]+") do
    local src, dst, info = line:match("^(%d+)\t(%d+)\t(.*)$")
    if src then
      src, dst = tonumber(src), tonumber(dst)
      local client = src ~= port and src or dst
      by[client] = by[client] or { ["in"] = {}, out = {} }
      local list = by[client][src == client and "in" or "out"]
      for item in (info .. "|"):gmatch("([^|]*)|") do
        local name = item:match("^%s*([%w_@]+)%(")
        if name then list[#list + 1] = name end
      end
    end
  end
  return by
end

-- Per-connection name lists as sorted strings, to compare two sets of
-- connections whatever their keys.
local function signatures(by)
  local out = {}
  for _, d in pairs(by) do
    out[#out + 1] = table.concat(d["in"], ",") .. " / " .. table.concat(d.out, ",")
  end
  table.sort(out)
  return out
end

describe("trace (interop)", function()
  after_each(H.cleanup)

  it("luartmp --trace writes to the log at any log level; --trace=PATH to the file", function()
    local script = H.tmpname("trace-session.lua")
    H.write_file(script, [[
local rtmp = require "rtmp"
local s = rtmp.session{ role = "server" }
s:ack(5)
s:command(nil, "onStatus", 0, rtmp.null, { code = "x" })
]])
    local rc, out = H.run(H.shquote(H.luartmp) .. " --log-level error --trace " .. H.shquote(script) .. " 2>&1", 20)
    assert.equal(0, rc, out)
    assert.matches(" trace conn=0 out csid=2 fmt=0 type=ack stream=0 ts=0 len=4 body={sequence=5}\n", out, 1, true)
    assert.matches(' trace conn=0 out csid=3 fmt=0 type=command stream=0 ts=0 len=35 body={"onStatus", 0, rtmp.null, {code="x"}}\n',
                   out, 1, true)
    local path = H.tmpname("trace-session.log")
    rc, out = H.run(H.shquote(H.luartmp) .. " --trace=" .. H.shquote(path) .. " " .. H.shquote(script) .. " 2>&1", 20)
    assert.equal(0, rc, out)
    assert.equal("", out)
    local lines = read_trace(path)
    assert.equal(2, #lines)
    assert.same({ sequence = 5 }, lines[1].body)
    assert.same({ "onStatus", 0, rtmp.null, { code = "x" } }, lines[2].body)
  end)

  it("lists an ffmpeg publish and play in both directions, as tshark decodes them", function()
    local path = H.tmpname("trace.log")
    local srv = H.luartmp_start({ log_level = "info", extra = { "--trace=" .. path } })
    local cap = H.tshark_start(srv.port)
    local url = srv.url("live/traced")
    local pub = H.ffmpeg_publish(url)
    assert.is_true(H.wait_until(function() return srv.count("publish", "traced") > 0 end, 15))
    local out = H.tmpname("trace-play.flv")
    local player = H.ffmpeg_play(url, out)
    -- wait until the player's connection was sent a few video frames
    local lines
    assert.is_true(H.wait_until(function()
      lines = read_trace(path)
      local players = {}
      for _, m in ipairs(lines) do
        if m.dir == "in" and m.type == "command" and m.body[1] == "play" then players[m.conn] = 0 end
        if players[m.conn] and m.dir == "out" and m.type == "video" then players[m.conn] = players[m.conn] + 1 end
      end
      for _, n in pairs(players) do if n >= 20 then return true end end
    end, 20, 0.2))
    H.kill(player)
    H.kill(pub)
    H.sleep(0.3)
    cap.stop()
    srv.stop()
    lines = read_trace(path)

    -- the two connections, told apart by what they asked for
    local pconn, qconn
    for _, m in ipairs(lines) do
      if m.dir == "in" and m.type == "command" and m.body[1] == "publish" then pconn = m.conn end
      if m.dir == "in" and m.type == "command" and m.body[1] == "play" then qconn = m.conn end
    end
    assert.is_truthy(pconn)
    assert.is_truthy(qconn)
    assert.are_not.equal(pconn, qconn)

    local function find(conn, dir, pred)
      for i, m in ipairs(lines) do
        if m.conn == conn and m.dir == dir and pred(m) then return m, i end
      end
    end
    local function cmd(name) return function(m) return m.type == "command" and m.body[1] == name end end

    -- publisher: connect, createStream, publish, metadata, media in order
    local connect, i1 = find(pconn, "in", cmd("connect"))
    assert.equal("live", connect.body[3].app)
    assert.equal(0, connect.stream)
    local _, i2 = find(pconn, "in", cmd("createStream"))
    local publish, i3 = find(pconn, "in", cmd("publish"))
    assert.equal("traced", publish.body[4])
    assert.equal(rtmp.null, publish.body[3])
    local meta, i4 = find(pconn, "in", function(m) return m.type == "data" and m.body[2] == "onMetaData" end)
    assert.equal(320, meta.body[3].width)
    local vseq, i5 = find(pconn, "in", function(m) return m.type == "video" end)
    assert.same({ codec = "avc", frame = "key", packet = "seq" }, vseq.body)
    local aseq = find(pconn, "in", function(m) return m.type == "audio" end)
    assert.same({ codec = "aac", rate = 44100, bits = 16, channels = 2, packet = "seq" }, aseq.body)
    assert.is_true(i1 < i2 and i2 < i3 and i3 < i4 and i4 < i5)
    assert.is_truthy(find(pconn, "in", function(m) return m.type == "video" and m.body.packet == "nalu" end))
    assert.is_truthy(find(pconn, "in", function(m) return m.type == "audio" and m.body.packet == "raw" end))
    -- what the server said to it
    local result = find(pconn, "out", cmd("_result"))
    assert.equal("NetConnection.Connect.Success", result.body[4].code)
    assert.is_truthy(find(pconn, "out", function(m)
      return m.type == "command" and m.body[1] == "onStatus" and m.body[4].code == "NetStream.Publish.Start" end))
    assert.is_truthy(find(pconn, "out", function(m) return m.type == "window_ack_size" end))

    -- player: its commands in, the stream out (metadata and media, fanned out)
    assert.is_truthy(find(qconn, "in", cmd("connect")))
    local play = find(qconn, "in", cmd("play"))
    assert.equal("traced", play.body[4])
    assert.is_truthy(find(qconn, "out", function(m)
      return m.type == "command" and m.body[1] == "onStatus" and m.body[4].code == "NetStream.Play.Start" end))
    assert.is_truthy(find(qconn, "out", function(m) return m.type == "data" and m.body[1] == "onMetaData" end))
    local v = find(qconn, "out", function(m) return m.type == "video" and m.body.packet == "nalu" end)
    assert.equal("avc", v.body.codec)
    assert.equal(play.stream, v.stream)
    assert.is_truthy(find(qconn, "out", function(m) return m.type == "audio" and m.body.codec == "aac" end))

    -- tshark: the same command and data names in the same order, per
    -- connection and direction
    local ts = signatures(tshark_names(cap.file, srv.port))
    assert.equal(2, #ts)
    assert.same(signatures(trace_names(lines)), ts)
  end)
end)
