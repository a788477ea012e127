-- capture2lua's generator (scripts/tools/capture2lua.lua) and the flow
-- runtime (lua/rtmp/flow.lua) without sockets: sessions recorded between
-- two socket-free rtmp.session objects, turned into scripts, and the
-- scripts run by the replay harness (lua/rtmp/replay.lua) against
-- recordings in which the live peer differs from the recorded one.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;scripts/?.lua;" .. package.path
local rtmp = require "rtmp"
local capture = require "rtmp.capture"
local replay = require "rtmp.replay"
local c2l = require "tools.capture2lua"

local null = rtmp.null
local tmpfiles = {}
local function tmpname(suffix)
  local p = os.tmpname() .. (suffix or "")
  tmpfiles[#tmpfiles + 1] = p
  return p
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Record a conversation: `script(c, s, pump)` drives a client and a
-- server session; returns a capture connection (the shape rtmp.capture
-- gives) holding what each side sent, 10 ms apart.
local function record(script)
  local c = rtmp.session{ role = "client", plain_handshake = true }
  local s = rtmp.session{ role = "server", plain_handshake = true }
  local chunks, t = {}, 0
  local function pump()
    for _ = 1, 4 do
      local out = c:output()
      if #out > 0 then
        t = t + 0.01
        chunks[#chunks + 1] = { t = t, dir = "c2s", data = out }
        assert(s:feed(out))
      end
      out = s:output()
      if #out > 0 then
        t = t + 0.01
        chunks[#chunks + 1] = { t = t, dir = "s2c", data = out }
        assert(c:feed(out))
      end
    end
  end
  pump()
  assert(c.ready and s.ready)
  script(c, s, pump)
  pump()
  return { id = 1, client = "127.0.0.1:50000", server = "127.0.0.1:1935", start = 1795525371,
           rtmp = true, gaps = 0, chunks = chunks, bytes = {} }
end

local VIDEO = "\23\1\0\0\0" .. string.rep("v", 700)
local AUDIO = "\175\1" .. string.rep("a", 90)

-- A player's session: the client's txns start at `txn0`; with `extra`
-- it sends a command the recording did not have.
local function play_session(txn0, extra, skip_create)
  return record(function(c, s, pump)
    c:command(nil, "connect", txn0, { app = "live", tcUrl = "rtmp://127.0.0.1/live" })
    pump()
    s:set_window_ack_size(2500000)
    s:set_peer_bandwidth(2500000, "dynamic")
    s:set_chunk_size(300)
    s:command(nil, "_result", txn0, { fmsVer = "FMS/3,0,1,123", capabilities = 31 },
      { code = "NetConnection.Connect.Success", data = rtmp.amf0.ecma{ { "version", "3,5,1,516" } },
        list = rtmp.amf0.array{}, when = rtmp.amf0.date(1700000000000, 60) })
    pump()
    if extra then c:command(nil, "hello", txn0 + 10, null); pump() end
    if not skip_create then
      c:command(nil, "createStream", txn0 + 1, null)
      pump()
      s:command(nil, "_result", txn0 + 1, null, 1)
      pump()
    end
    c:command({ csid = 8, stream = 1 }, "play", txn0 + 2, null, "cam", -2000)
    c:user_control("set_buffer_length", 1, 3000)
    pump()
    s:user_control("stream_begin", 1)
    s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Start" })
    s:data({ csid = 5, stream = 1 }, "onMetaData", rtmp.amf0.ecma{ { "width", 320 }, { "height", 240 } })
    for i = 0, 2 do
      s:send({ type = "video", csid = 7, stream = 1, timestamp = i * 40 }, VIDEO)
      s:send({ type = "audio", csid = 6, stream = 1, timestamp = i * 40 + 5 }, AUDIO)
    end
    s:send({ type = "video", csid = 9, stream = 1, timestamp = 120 }, VIDEO)
    -- no literal for an AMF3 object with sealed members: kept as bytes
    s:command3({ csid = 3 }, "onCaps", 0, null,
      rtmp.amf3.value(rtmp.amf3.typed("Caps", { { "level", 3 } }, { "level" })))
    s:ack(999)
    s:user_control("ping_request", 77)
    pump()
    -- the client's media, then the server's answer to nothing but media
    for i = 0, 2 do c:send({ type = "audio", csid = 4, stream = 1, timestamp = i * 20 }, AUDIO) end
    pump()
    s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Stop" })
    pump()
  end)
end

-- The out/in command lines of a replay trace: { "out _result 11", ... }.
local function commands(trace, dir)
  local out = {}
  for _, line in ipairs(trace) do
    local d, body = line:match(" (%a+) csid=%S+ fmt=%S+ type=command%S* .- body=(.*)$")
    if d == dir then out[#out + 1] = body end
  end
  return out
end

describe("capture2lua generator --strict", function()
  teardown(function() for _, p in ipairs(tmpfiles) do os.remove(p) end end)

  local conn = play_session(1)
  local list = capture.messages(conn)
  local flv = tmpname(".flv")
  local text, info = c2l.generate(conn, list, { side = "server", strict = true, capture = "unit",
                                                media_path = flv, media_ref = flv })

  it("writes a script that loads, with each peer message an expect and the replies after it", function()
    assert.truthy(load(text, "generated", "t"))
    assert.is_nil(info.error)
    local function has(s) assert.truthy(text:find(s, 1, true), "missing: " .. s .. "\n" .. text) end
    has('expect { "command", "connect", txn = 1 },\n  send { "window_ack_size", window = 2500000 },\n' ..
        '  send { "set_peer_bandwidth", window = 2500000, limit = 2 },\n' ..
        '  send { "set_chunk_size", chunk_size = 300 },')
    has('{"data", ecma{{"version", "3,5,1,516"}}},')
    has('{"list", array{}},')
    has('{"when", flow.date(1700000000000, 60)},')
    has('expect { "command", "createStream", txn = 2 },\n  send { "command", csid = 3, values = { "_result", 2, null, 1 } },')
    has('expect { "command", "play", txn = 3 },\n  send { "user_control", event = "stream_begin", stream_id = 1 },')
    has('send { "data", csid = 5, stream = 1, values = { "onMetaData",\n      ecma{{"width", 320}, {"height", 240}},\n  } },')
    -- media: one range per csid layout, the FLV holds them with their timestamps
    has('media { from = 1, to = 6, stream = 1, csid = { audio = 6, video = 7 } },  -- 6 messages, ts 0..85 ms')
    has('media { from = 7, to = 7, stream = 1, csid = { video = 9 } },')
    has('send { 17, csid = 3, payload = "\\x00\\x02\\x00\\x06onCaps')
    has('-- send { "ack", sequence = 999 },  -- auto: the engine acknowledges by itself')
    has('send { "user_control", event = "ping_request", ping_time = 77 },')
    -- Set Buffer Length is no step; the client's media is one before the answer to it
    assert.falsy(text:find('expect { "user_control", "set_buffer_length"', 1, true))
    has('expect { "media", count = 3 },\n  send { "command", csid = 5, stream = 1, values = { "onStatus", 0,\n' ..
        '      null,\n      obj{{"code", "NetStream.Play.Stop"}},\n  } },')
    local r = assert(rtmp.flv.open(flv))
    local ts = {}
    while true do
      local m = r:read()
      if not m then break end
      ts[#ts + 1] = m.type .. "@" .. m.timestamp
    end
    r:close()
    assert.same({ "9@0", "8@5", "9@40", "8@45", "9@80", "8@85", "9@120" }, ts)
  end)

  it("gives the same text for the same recording", function()
    local again = c2l.generate(conn, capture.messages(conn), { side = "server", strict = true, capture = "unit",
      media_path = tmpname(".flv"), media_ref = flv })
    assert.equal(text, again)
  end)

  it("writes values as literals that load back to the same values", function()
    local values = { 0.1, -0.0, 1 / 0, -1 / 0, 2^53 + 2, 1e-300, "a\0b\"\\\n\255é", true,
      { ["end"] = 1, ["a b"] = "x", k = { 1, 2, { z = null } } }, rtmp.undefined }
    for _, v in ipairs(values) do
      local s = assert(c2l.lit(v))
      local back = load("return " .. s, "lit", "t", { null = null, undefined = rtmp.undefined,
                                                       obj = rtmp.amf0.object })()
      assert.equal(rtmp.amf0.encode(v), rtmp.amf0.encode(back), s)
    end
    local nan = assert(c2l.lit(0 / 0))
    assert.equal("0/0", nan)
    assert.equal('"\\x00\\x01"', c2l.quote("\0\1"))
  end)

  it("plays the server side to a client whose txns differ, with the live txns", function()
    local script = tmpname(".lua")
    write(script, text)
    local live = play_session(11, true)     -- txns 11, 12, 13 and an extra command
    local res = assert(replay.run{ capture = { live }, script = script, args = { "--fast" } })
    assert.same({}, res.errors)
    local out = commands(res.trace, "out")
    assert.truthy(out[1]:find('^{"_result", 11, {'), out[1])
    assert.equal('{"_result", 12, rtmp.null, 1}', out[2])
    assert.truthy(out[3]:find("NetStream.Play.Start", 1, true), out[3])
    assert.truthy(out[4]:find('^{"onCaps", 0, rtmp.null, nil %-%-%[%[amf3 value'), out[4])  -- sent as bytes
    assert.truthy(out[5]:find("NetStream.Play.Stop", 1, true), out[5])
    assert.equal(5, #out)
    -- the media went out from the FLV on the recorded chunk streams
    local csids = {}
    for _, line in ipairs(res.trace) do
      local csid, typ = line:match(" out csid=(%d+) fmt=%S+ type=(%a+) ")
      if typ == "video" or typ == "audio" then csids[#csids + 1] = typ .. csid end
    end
    assert.same({ "video7", "audio6", "video7", "audio6", "video7", "audio6", "video9" }, csids)
  end)

  it("skips to a later step when the live client leaves a command out", function()
    local script = tmpname(".lua")
    write(script, text)
    local live = play_session(1, false, true)   -- no createStream
    local res = assert(replay.run{ capture = { live }, script = script, args = { "--fast" } })
    assert.same({}, res.errors)
    local out = commands(res.trace, "out")
    assert.truthy(out[1]:find('^{"_result", 1, {'), out[1])
    assert.truthy(out[2]:find("NetStream.Play.Start", 1, true), out[2])   -- no _result for createStream
    assert.equal(4, #out)
  end)

  it("paces the media by its timestamps on the (virtual) clock", function()
    local script = tmpname(".lua")
    write(script, text)
    local res = assert(replay.run{ capture = { play_session(1) }, script = script, keep_open = true,
                                   limit = 5 })
    assert.same({}, res.errors)
    local first, got = nil, {}
    for _, line in ipairs(res.trace) do
      local t, typ, ts = line:match("^(%S+) conn=%d+ out csid=%d+ fmt=%S+ type=(%a+) stream=1 ts=(%d+) ")
      if typ == "video" or typ == "audio" then
        first = first or tonumber(t)
        got[#got + 1] = string.format("%d@%d", ts, math.floor((tonumber(t) - first) * 1000 + 0.5))
      end
    end
    assert.same({ "0@0", "5@5", "40@40", "45@45", "80@80", "85@85", "120@120" }, got)
  end)

  it("lists every connection, RTMP or not, with the client's commands", function()
    local http = { id = 2, client = "127.0.0.1:50001", server = "127.0.0.1:80", rtmp = false,
                   gaps = 0, bytes = { c2s = 18, s2c = 0 },
                   chunks = { { t = 0, dir = "c2s", data = "GET / HTTP/1.0\r\n\r\n" } } }
    local rconn = play_session(1)
    rconn.bytes = { c2s = 4000, s2c = 5000 }
    local lines = c2l.list_lines({ conns = { rconn, http } })
    assert.same({
      "1  127.0.0.1:50000 -> 127.0.0.1:1935  c2s 4000 bytes  s2c 5000 bytes  RTMP  connect createStream play",
      "2  127.0.0.1:50001 -> 127.0.0.1:80  c2s 18 bytes  s2c 0 bytes  not RTMP",
    }, lines)
  end)

  it("plays the client side: the recorded client's commands, in order, to the recorded server", function()
    local script = tmpname(".lua")
    local cflv = tmpname(".flv")
    local ctext = c2l.generate(conn, list, { side = "client", strict = true, capture = "unit",
      media_path = cflv, media_ref = cflv, url = "rtmp://127.0.0.1/live" })
    write(script, ctext)
    local res = assert(replay.run{ capture = { conn }, script = script, args = { "--linger", "1" } })
    assert.same({}, res.errors)
    assert.is_nil(res.exit)     -- every step reached: no exit status 1
    local recorded = {}
    for _, e in ipairs(list) do
      if e.dir == "c2s" and e.msg.type_name == "command" then
        recorded[#recorded + 1] = rtmp.trace_line(e.msg, { dir = "in", time = 0 }):match("body=(.*)$")
      end
    end
    assert.same(recorded, commands(res.trace, "out"))
    assert.equal(3, #recorded)
  end)
end)
