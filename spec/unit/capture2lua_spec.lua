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
local fmt = string.format
local convo = require "support.convo"
local tmpname, write = convo.tmpname, convo.write

-- Record a conversation: `script(c, s, pump)` drives a client and a
-- server session; returns a capture connection (the shape rtmp.capture
-- gives) holding what each side sent, 10 ms apart.
local function record(script)
  local c, s, pump, chunks = convo.pair()
  script(c, s, pump)
  pump()
  return convo.conn(chunks)
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
  teardown(convo.cleanup)

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

---------------------------------------------------------------------------
-- The default (handler) format: the generated text loaded with a recording
-- `flow` table standing in for rtmp.flow, so the assertions are on the
-- handlers and actions a runtime would get.
---------------------------------------------------------------------------

-- A recording like record(), but every pump's output carries the time given
-- (seconds): what a side sent in one pump went in one burst.
local function record_at(script, closed_by, close_t)
  local c, s, pump, chunks = convo.pair(0)
  script(c, s, pump)
  pump(chunks[#chunks].t)
  return convo.conn(chunks, { closed_by = closed_by, close_t = close_t })
end

-- The flow stand-in: constructors return tagged tables, server/client the spec.
local function fake_flow()
  local f = { null = null, undefined = rtmp.undefined, unsupported = rtmp.amf0.unsupported,
              obj = rtmp.amf0.object, ecma = rtmp.amf0.ecma, date = rtmp.amf0.date,
              amf3 = rtmp.amf3.value }
  function f.array(t) t.n = t.n or #t; return setmetatable(t, { __amf = "array" }) end
  function f.typed(class, t) return setmetatable(t, { __amf = "typed", __class = class }) end
  for _, k in ipairs({ "on", "send", "media", "close", "await", "receive", "expect" }) do
    f[k] = function(t) t.kind = k; return t end
  end
  function f.server(spec) spec.side = "server"; return spec end
  function f.client(spec) spec.side = "client"; return spec end
  return f
end

local function load_script(text)
  local fl = fake_flow()
  local env = setmetatable({ require = function(n)
    if n == "rtmp.flow" then return fl end
    return require(n)
  end }, { __index = _G })
  local chunk = assert(load(text, "generated", "t", env))
  return chunk()
end

local function gen(conn, side, extra)
  local flv = tmpname(".flv")
  local opts = { side = side or "server", capture = "unit", media_path = flv, media_ref = flv,
                 url = "rtmp://127.0.0.1/live" }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local text, info = c2l.generate(conn, capture.messages(conn), opts)
  return load_script(text), text, info, flv
end

-- The handlers of a server spec by key "TYPE NAME" (n-th: list).
local function handlers(spec)
  local by = {}
  for _, h in ipairs(spec) do
    assert.equal("on", h.kind)
    local k = h[1] .. (h[2] ~= nil and (" " .. tostring(h[2])) or "")
    by[k] = by[k] or {}
    by[k][#by[k] + 1] = h
  end
  return by
end

-- The actions of a handler (its table entries after TYPE and NAME).
local function actions(h)
  local out = {}
  for _, a in ipairs(h) do
    if type(a) == "table" then out[#out + 1] = a end
  end
  return out
end

-- The actions of a handler as short strings: "send _result 1", "media 1..3", "close".
local function acts(h)
  local out = {}
  for _, a in ipairs(actions(h)) do
    if a.kind == "send" then
      local v = a.values
      local what = v and (tostring(v[1]) .. (type(v[2]) == "number" and (" " .. v[2]) or ""))
        or (a.event and tostring(a.event)) or tostring(a[1])
      if v and v[1] == "onStatus" then what = "onStatus " .. tostring(v[4]["code"]) end
      out[#out + 1] = "send " .. what
    elseif a.kind == "media" then
      out[#out + 1] = fmt("media %d..%d", a.from, a.to)
    else
      out[#out + 1] = a.kind
    end
  end
  return out
end

local VIDEO_KEY = "\23\1\0\0\0" .. string.rep("k", 300)

describe("capture2lua handler scripts", function()
  teardown(convo.cleanup)

  it("binds connect's _result to connect though the recorded client's Window Ack Size came before it", function()
    -- Flash Player's order: connect, Window Ack Size, then the server's answer
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      c:set_window_ack_size(2500000)
      pump(0.05)
      s:set_window_ack_size(5000000)
      s:command(nil, "_result", 1, rtmp.amf0.object{ { "fmsVer", "FMS/3,0,1,123" } },
        rtmp.amf0.object{ { "level", "status" }, { "code", "NetConnection.Connect.Success" } })
      pump(0.09)
      s:command(nil, "onBWDone", 0, null)
      pump(0.10)
    end)
    local spec = gen(conn)
    local by = handlers(spec)
    assert.same({ "send 5000000", "send _result 1", "send onBWDone 0" }, (function()
      local a = acts(by["command connect"][1])
      a[1] = "send " .. actions(by["command connect"][1])[1].window
      return a
    end)())
    local h = actions(by["command connect"][1])
    assert.equal(1, by["command connect"][1].txn)
    assert.equal("0.040", fmt("%.3f", h[1].at))          -- 0.09 - 0.05, the burst's time
    assert.is_nil(h[2].at)                                -- went with it
    assert.equal("0.050", fmt("%.3f", h[3].at))
    local w = by["window_ack_size"][1]
    assert.is_true(w.optional)
    assert.equal(0, #acts(w))
  end)

  it("binds createStream's _result to createStream, not after the client's _checkbw", function()
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      pump(0.01)
      s:command(nil, "_result", 1, rtmp.amf0.object{ { "fmsVer", "FMS/3,0,1,123" } }, null)
      s:command(nil, "onBWDone", 0, null, 8192)
      pump(0.02)
      c:command(nil, "createStream", 2, null)
      c:command(nil, "_checkbw", 3, null)
      pump(0.03)
      s:command(nil, "_result", 2, null, 1)
      pump(0.04)
      c:command({ csid = 8, stream = 1 }, "play", 4, null, "tiny", -2)
      pump(0.05)
      s:user_control("stream_begin", 1)
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Start" })
      pump(0.06)
    end)
    local by = handlers(gen(conn))
    assert.same({ "send _result 2" }, acts(by["command createStream"][1]))
    local cb = by["command _checkbw"][1]
    assert.is_true(cb.optional)
    assert.same({}, acts(cb))
    assert.same({ "send _result 1", "send onBWDone 0" }, acts(by["command connect"][1]))
    assert.same({ "send stream_begin", "send onStatus NetStream.Play.Start" }, acts(by["command play"][1]))
    assert.equal(1, by["command play"][1].stream)
  end)

  it("puts the media that followed a recorded pause(false) in the play handler, with the end", function()
    -- FMS 3.0.3: play, pause(true), pause(false), then the media, StreamEOF and Play.Stop
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "vod" })
      pump(0.01)
      s:command(nil, "_result", 1, { fmsVer = "FMS/3,0,3,51" }, null)
      c:command(nil, "createStream", 2, null)
      pump(0.02)
      s:command(nil, "_result", 2, null, 1)
      c:command({ csid = 8, stream = 1 }, "play", 3, null, "clip", 0)
      pump(0.03)
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Start" })
      pump(0.035)
      c:command({ csid = 8, stream = 1 }, "pause", 4, null, true, 0)
      pump(0.04)
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Pause.Notify" })
      pump(0.045)
      c:command({ csid = 8, stream = 1 }, "pause", 5, null, false, 0)
      pump(0.05)
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Unpause.Notify" })
      pump(0.06)
      for i = 0, 4 do
        s:send({ type = "video", csid = 7, stream = 1, timestamp = i * 100 }, VIDEO)
        pump(0.1 + i * 0.1)
      end
      s:user_control("stream_eof", 1)
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Stop" })
      pump(0.7)
    end, "server", 0.75)
    local spec, text = gen(conn)
    local by = handlers(spec)
    local play = actions(by["command play"][1])
    assert.same({ "send onStatus NetStream.Play.Start", "media 1..5", "send stream_eof",
                  "send onStatus NetStream.Play.Stop", "close" }, acts(by["command play"][1]), text)
    assert.same({ "send onStatus NetStream.Pause.Notify" }, acts(by["command pause"][1]))
    assert.same({ "send onStatus NetStream.Unpause.Notify" }, acts(by["command pause"][2]))
    -- media: at from the play request (0.03), per-tag times from the capture
    local m = play[2]
    assert.equal("0.070", fmt("%.3f", m.at))
    assert.same({ 0, 100, 200, 300, 400 }, m.times)
    assert.equal("0.670", fmt("%.3f", play[3].at))
    assert.equal("0.720", fmt("%.3f", play[5].at))        -- close { at = 0.75 - 0.03 }
    assert.is_nil(spec.idle)
  end)

  it("gives the client's close an idle timeout instead", function()
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      pump(0.01)
      s:command(nil, "_result", 1, null, null)
      pump(0.02)
    end, "client", 0.5)
    local spec = gen(conn)
    assert.equal(10, spec.idle)
    for _, h in ipairs(spec) do
      for _, a in ipairs(actions(h)) do assert.not_equal("close", a.kind) end
    end
  end)

  it("sends a 14-byte user control event 8 (FMS) byte for byte, in both modes", function()
    local body = "\0\8" .. string.pack(">I4 I4 I4", 1, 0x11223344, 7)
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      pump(0.01)
      s:command(nil, "_result", 1, null, null)
      s:send({ type = 4, csid = 2 }, body)
      s:user_control("stream_begin", 0)
      pump(0.02)
    end)
    local spec, text = gen(conn)
    local h = actions(handlers(spec)["command connect"][1])
    assert.equal("user_control", h[2][1])
    assert.equal(8, h[2].event)
    assert.equal(14, #h[2].payload)
    assert.equal(body, h[2].payload, text)
    assert.equal("stream_begin", h[3].event)            -- the standard one keeps its fields
    assert.is_nil(h[3].payload)
    -- --strict: a raw type 4 send, and the replay puts the same 14 bytes on the wire
    local flv = tmpname(".flv")
    local stext = c2l.generate(conn, capture.messages(conn), { side = "server", strict = true,
      capture = "unit", media_path = flv, media_ref = flv })
    local script = tmpname(".lua")
    write(script, stext)
    local res = assert(replay.run{ capture = { conn }, script = script, args = { "--fast" } })
    assert.same({}, res.errors)
    local lens = {}
    for _, line in ipairs(res.trace) do
      local len = line:match(" out csid=%d+ fmt=%S+ type=user_control .- len=(%d+)")
      if len then lens[#lens + 1] = tonumber(len) end
    end
    assert.same({ 14, 6 }, lens)
  end)

  it("splits aggregates into the companion FLV, never into the script", function()
    local function sub(mtype, ts, data)
      return string.pack(">B I3 I3 B I3", mtype, #data, ts & 0xFFFFFF, ts >> 24, 0) .. data
        .. string.pack(">I4", 11 + #data)
    end
    local agg = sub(9, 0, VIDEO_KEY) .. sub(8, 0, AUDIO) .. sub(9, 40, VIDEO) .. sub(8, 45, AUDIO)
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      pump(0.01)
      s:command(nil, "_result", 1, null, null)
      c:command({ csid = 8, stream = 1 }, "play", 2, null, "x", -2)
      pump(0.02)
      s:send({ type = 22, csid = 7, stream = 1, timestamp = 1000 }, agg)
      pump(0.03)
      s:send({ type = 22, csid = 7, stream = 1, timestamp = 1080 }, agg)
      pump(0.13)
    end)
    for _, strict in ipairs({ false, true }) do
      local spec, text, info, flv = gen(conn, "server", { strict = strict })
      assert.falsy(text:find("payload", 1, true), text)
      assert.falsy(text:find("kkkk", 1, true))
      assert.equal(8, info.media_tags)
      local r = assert(rtmp.flv.open(flv))
      local got = {}
      while true do
        local m = r:read()
        if not m then break end
        got[#got + 1] = m.type .. "@" .. m.timestamp
      end
      r:close()
      assert.same({ "9@1000", "8@1000", "9@1040", "8@1045", "9@1080", "8@1080", "9@1120", "8@1125" }, got)
      if not strict then
        local m = actions(handlers(spec)["command play"][1])[1]
        assert.equal("media", m.kind)
        assert.same({ 1, 8 }, { m.from, m.to })
        assert.same({ 0, 0, 0, 0, 100, 100, 100, 100 }, m.times)   -- capture times, not timestamps
      end
    end
  end)

  it("keeps the recorded key order of objects and ECMA arrays", function()
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      pump(0.01)
      s:command(nil, "_result", 1, rtmp.amf0.object{ { "zeta", 1 }, { "alpha", 2 }, { "mid", 3 } },
        rtmp.amf0.object{ { "level", "status" }, { "code", "NetConnection.Connect.Success" },
          { "data", rtmp.amf0.ecma{ { "version", "3,5,7,7009" }, { "build", 1 } } } })
      pump(0.02)
    end)
    local spec, text = gen(conn)
    assert.truthy(text:find('obj{{"zeta", 1}, {"alpha", 2}, {"mid", 3}}', 1, true), text)
    assert.truthy(text:find('{"data", ecma{{"version", "3,5,7,7009"}, {"build", 1}}},', 1, true), text)
    -- what the script encodes is what was recorded, byte for byte
    local s = actions(handlers(spec)["command connect"][1])[1]
    local sent = rtmp.amf0.encode(table.unpack(s.values, 1, 4))
    local recorded
    for _, e in ipairs(capture.messages(conn)) do
      if e.dir == "s2c" and e.msg.name == "_result" then recorded = e.msg.payload end
    end
    assert.equal(recorded, sent)
    -- the round-trip check compares key order
    assert.is_false(c2l.same(rtmp.amf0.object{ { "a", 1 }, { "b", 2 } },
      rtmp.amf0.object{ { "b", 2 }, { "a", 1 } }, 0))
    assert.is_true(c2l.same(rtmp.amf0.object{ { "a", 1 }, { "b", 2 } }, { a = 1, b = 2 }, 0))
  end)

  it("writes one empty handler for a run of the same optional message with nothing answered", function()
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live" })
      pump(0.01)
      s:command(nil, "_result", 1, null, null)
      pump(0.02)
      for i = 1, 5 do c:ack(i * 1000); pump(0.02 + i / 100) end
    end)
    local spec = gen(conn)
    local by = handlers(spec)
    assert.equal(1, #by["ack"])
    assert.is_true(by["ack"][1].optional)
  end)

  it("writes the client side as sends, awaits for what a server must answer, receive and outcome", function()
    local conn = record_at(function(c, s, pump)
      c:command(nil, "connect", 1, { app = "live", tcUrl = "rtmp://127.0.0.1/live" })
      pump(0.01)
      s:set_window_ack_size(2500000)
      s:command(nil, "_result", 1, null, { code = "NetConnection.Connect.Success" })
      pump(0.05)
      c:set_window_ack_size(2500000)
      c:command(nil, "createStream", 2, null)
      c:command(nil, "getStreamLength", 3, null, "cam")
      pump(0.06)
      s:command(nil, "_result", 2, null, 1)
      s:command(nil, "_result", 3, null, 0)
      pump(0.08)
      c:command({ csid = 8, stream = 1 }, "play", 4, null, "cam", -2000)
      pump(0.09)
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Reset" })
      s:command({ csid = 5, stream = 1 }, "onStatus", 0, null, { code = "NetStream.Play.Start" })
      pump(0.10)
      for i = 0, 3 do
        s:send({ type = "video", csid = 7, stream = 1, timestamp = i * 40 }, VIDEO)
        s:send({ type = "audio", csid = 6, stream = 1, timestamp = i * 40 }, AUDIO)
        pump(0.2 + i * 0.04)
      end
      c:command({ csid = 3 }, "deleteStream", 5, null, 1)
      pump(0.5)
    end, "client", 0.6)
    local spec = gen(conn, "client")
    assert.equal("client", spec.side)
    assert.equal(10, spec.timeout)
    assert.same({ "NetConnection.Connect.Success", "NetStream.Play.Reset", "NetStream.Play.Start" },
      spec.outcome.codes)
    assert.same({ audio = 4, video = 4 }, spec.outcome.media)
    local steps = {}
    for _, st in ipairs(spec) do
      if st.kind == "send" then
        steps[#steps + 1] = "send " .. (st.values and st.values[1] or st[1])
      elseif st.kind == "await" then
        steps[#steps + 1] = "await " .. st[1] .. " " .. tostring(st.txn or st.stream)
      elseif st.kind == "receive" then
        steps[#steps + 1] = fmt("receive %d/%d", st.audio, st.video)
      else
        steps[#steps + 1] = st.kind
      end
    end
    assert.same({ "send connect", "await _result 1", "send window_ack_size", "send createStream",
      "send getStreamLength", "await _result 2", "send play", "await onStatus 1", "receive 4/4",
      "send deleteStream", "close" }, steps)
    assert.equal("NetStream.Play.Reset", spec[8].code)
    assert.equal("0.010", fmt("%.3f", spec[3].at))         -- sent at 0.06, the reply came at 0.05
    assert.equal("0.180", fmt("%.3f", spec[10].at))        -- after the last media (0.32)
    assert.equal("0.280", fmt("%.3f", spec[11].at))        -- closed at 0.6, also after 0.32
  end)

  it("refuses to write a script from what does not decode", function()
    local list = { { dir = "c2s", t = 0, msg = rtmp.message({ csid = 53, fmt = 2, type = 0, stream = 0,
      timestamp = 12314602 }, "xyz"), index = 1 } }
    local why = c2l.undecodable(list)
    assert.truthy(why and why:find("not RTMP", 1, true), why)
    assert.truthy(c2l.undecodable({ error = "s2c: bad chunk" }):find("bad chunk", 1, true))
    assert.is_nil(c2l.undecodable(capture.messages(play_session(1))))
  end)
end)

-- The committed captures of real peers (spec/flows/*.pcapng).
describe("capture2lua handler scripts from real captures", function()
  teardown(convo.cleanup)

  local function conn_of(file, id)
    local cap = assert(capture.open("spec/flows/" .. file))
    return cap.conns[id or 1]
  end

  it("ffmpeg -listen serving ffmpeg: each answer in its request's handler, the media in play's", function()
    local conn = conn_of("ffmpeg_listen_serves_play_lua.pcapng")
    local spec, text, info = gen(conn)
    local by = handlers(spec)
    assert.same({ "send window_ack_size", "send set_peer_bandwidth", "send stream_begin",
      "send set_chunk_size", "send _result 1", "send onBWDone 0" }, (function()
      local a = acts(by["command connect"][1])
      for i, h in ipairs(actions(by["command connect"][1])) do
        if h[1] ~= "command" then a[i] = "send " .. (h.event or h[1]) end
      end
      return a
    end)())
    assert.same({ "send _result 2" }, acts(by["command createStream"][1]))
    local play = by["command play"][1]
    local media = 0
    for _, a in ipairs(actions(play)) do
      if a.kind == "media" then media = media + (a.to - a.from + 1) end
    end
    -- every audio/video message ffmpeg sent, the last frame included
    local recorded = 0
    for _, e in ipairs(capture.messages(conn)) do
      if e.dir == "s2c" and (e.msg.type_name == "audio" or e.msg.type_name == "video") then
        recorded = recorded + 1
      end
    end
    assert.equal(recorded, media, text)
    assert.equal(recorded, info.media_tags)
    -- ffmpeg's own end of the stream it served goes with the play too
    local a = acts(play)
    if a[#a] == "close" then a[#a] = nil end
    assert.same({ "send FCUnpublish 1", "send deleteStream 2" }, { a[#a - 1], a[#a] }, text)
  end)

  it("nginx-rtmp serving a player: Play.Stop answers the player's deleteStream", function()
    local conn = conn_of("nginx_serves_play_lua.pcapng", 2)
    local by = handlers(gen(conn))
    local a = acts(by["command play"][1])
    assert.equal("send stream_eof", a[#a])
    assert.same({ "send onStatus NetStream.Play.Stop" }, acts(by["command deleteStream"][1]))
    assert.is_true(by["command deleteStream"][1].optional)
    assert.is_true(by["user_control set_buffer_length"][1].optional)
  end)

  it("the client side of a publisher to nginx-rtmp waits for connect, createStream and publish only", function()
    local conn = conn_of("nginx_serves_play_lua.pcapng", 1)
    local spec = gen(conn, "client")
    local awaits, media = {}, 0
    for _, st in ipairs(spec) do
      if st.kind == "await" then awaits[#awaits + 1] = st[1] .. " " .. tostring(st.txn or st.stream) end
      if st.kind == "media" then media = media + st.to - st.from + 1 end
    end
    assert.same({ "_result 1", "_result 4", "onStatus 1" }, awaits)
    assert.same({ "NetConnection.Connect.Success", "NetStream.Publish.Start" }, spec.outcome.codes)
    assert.equal(spec.outcome.sent.audio + spec.outcome.sent.video, media)
    assert.truthy(media > 0)
  end)
end)
