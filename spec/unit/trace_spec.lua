-- The message trace (conn:trace, the trace setting) on socket-free
-- sessions: the exact line for each kind of message in both directions,
-- bounded output for hostile values, and parsing the lines back.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

-- One fmt 0 chunk (the payload fits in one chunk at size 128).
local function chunk0(csid, ts, mtype, sid, payload)
  return string.pack(">B I3 I3 B <I4", csid, ts, #payload, mtype, sid) .. payload
end

-- A client and a server session through the plain handshake; the client
-- traces into a temporary file.
local function pair(trace_server)
  local f = io.tmpfile()
  local cli = rtmp.session{ role = "client", plain_handshake = true }
  local srv = rtmp.session{ role = "server", plain_handshake = true }
  local function pump()
    local msgs = {}
    for _ = 1, 6 do
      local a = cli:output()
      if #a > 0 then for _, m in ipairs(assert(srv:feed(a))) do msgs[#msgs + 1] = m end end
      local b = srv:output()
      if #b > 0 then assert(cli:feed(b)) end
    end
    return msgs
  end
  pump()
  assert.is_true((trace_server and srv or cli):trace(true, f))
  return cli, srv, pump, f
end

-- The lines written so far, without the time field.
local function lines(f)
  f:seek("set")
  local out = {}
  for line in f:lines() do
    local t, rest = line:match("^(%d+%.%d%d%d%d%d%d) (.*)$")
    assert.is_truthy(t, line)
    out[#out + 1] = rest
  end
  return out
end

-- One line into its fields (the documented grammar).
local function parse(line)
  local t, conn, dir, csid, fmt, typ, stream, ts, len, body = line:match(
    "^(%d+%.%d+) conn=(%d+) (%a+) csid=(%S+) fmt=(%S+) type=(%S+) stream=(%S+) ts=(%S+) len=(%d+) body=(.*)$")
  assert.is_truthy(t, line)
  local value = assert(load("return " .. body, "body", "t", { rtmp = rtmp }))()
  return { time = tonumber(t), conn = tonumber(conn), dir = dir, csid = tonumber(csid), fmt = tonumber(fmt),
           type = typ, stream = tonumber(stream), ts = tonumber(ts), len = tonumber(len), body = value }
end

describe("trace", function()
  it("writes one exact line per command, control and media message sent", function()
    local cli, _, _, f = pair()
    cli:command(nil, "connect", 1, { app = "live" }, rtmp.null)
    cli:set_chunk_size(4096)
    cli:user_control("ping_request", 123)
    cli:send({ type = "video", stream = 1, timestamp = 40 }, "\x17\1\0\0\0abc")
    cli:send({ type = "audio", stream = 1, timestamp = 40 }, "\xAF\0\x12\x10")
    cli:data({ stream = 1 }, "@setDataFrame", "onMetaData", { width = 640, duration = 1.5 })
    cli:raw("xyz")
    assert.same({
      'conn=0 out csid=3 fmt=0 type=command stream=0 ts=0 len=36 body={"connect", 1, {app="live"}, rtmp.null}',
      'conn=0 out csid=2 fmt=0 type=set_chunk_size stream=0 ts=0 len=4 body={chunk_size=4096}',
      'conn=0 out csid=2 fmt=1 type=user_control stream=0 ts=0 len=6 body={event=6, event_name="ping_request", ping_time=123}',
      'conn=0 out csid=7 fmt=0 type=video stream=1 ts=40 len=8 body={codec="avc", frame="key", packet="nalu"}',
      'conn=0 out csid=6 fmt=0 type=audio stream=1 ts=40 len=4 body={codec="aac", rate=44100, bits=16, channels=2, packet="seq"}',
      'conn=0 out csid=5 fmt=0 type=data stream=1 ts=0 len=68 body={"@setDataFrame", "onMetaData", {duration=1.5, width=640}}',
      'conn=0 out csid=- fmt=- type=raw stream=- ts=- len=3 body={}',
    }, lines(f))
  end)

  it("traces messages received, with the fmt of their first chunk", function()
    local _, srv, _, f = pair(true)
    local amf = rtmp.amf0.encode("onStatus", 0, rtmp.null, { code = "NetStream.Play.Start" })
    assert(srv:feed(chunk0(2, 0, 5, 0, string.pack(">I4", 2500000))
             .. chunk0(4, 0, 20, 1, amf)
             .. chunk0(9, 0, 9, 1, "\x17\0")
             .. string.pack(">B I3 I3 B", (1 << 6) | 9, 33, 2, 9) .. "\x27\1"
             .. chunk0(2, 0, 4, 0, string.pack(">I2 I4", 0, 1))))
    local got = lines(f)
    assert.same({
      'conn=0 in csid=2 fmt=0 type=window_ack_size stream=0 ts=0 len=4 body={window=2500000}',
      'conn=0 in csid=4 fmt=0 type=command stream=1 ts=0 len=' .. #amf
        .. ' body={"onStatus", 0, rtmp.null, {code="NetStream.Play.Start"}}',
      'conn=0 in csid=9 fmt=0 type=video stream=1 ts=0 len=2 body={codec="avc", frame="key", packet="seq"}',
      'conn=0 in csid=9 fmt=1 type=video stream=1 ts=33 len=2 body={codec="avc", frame="inter", packet="nalu"}',
      'conn=0 in csid=2 fmt=0 type=user_control stream=0 ts=0 len=6 body={event=0, event_name="stream_begin", stream_id=1}',
    }, got)
  end)

  it("traces both directions of one session, the automatic replies included", function()
    local _, srv, _, f = pair(true)
    srv:feed(chunk0(2, 0, 4, 0, string.pack(">I2 I4", 6, 777)))
    assert.same({
      'conn=0 in csid=2 fmt=0 type=user_control stream=0 ts=0 len=6 body={event=6, event_name="ping_request", ping_time=777}',
      'conn=0 out csid=2 fmt=0 type=user_control stream=0 ts=0 len=6 body={event=7, event_name="ping_response", ping_time=777}',
    }, lines(f))
  end)

  it("names the unknown: message types by number, enhanced video by FourCC, undecodable bodies", function()
    local _, srv, _, f = pair(true)
    assert(srv:feed(chunk0(3, 0, 7, 0, "ab")
             .. chunk0(7, 0, 9, 1, "\x90hvc1\1\2")
             .. chunk0(3, 0, 20, 0, "\2\0\5ab")))
    assert.same({
      'conn=0 in csid=3 fmt=0 type=7 stream=0 ts=0 len=2 body={}',
      'conn=0 in csid=7 fmt=0 type=video stream=1 ts=0 len=7 body={codec="hvc1", frame="key", packet="seq_start"}',
      'conn=0 in csid=3 fmt=0 type=command stream=0 ts=0 len=5 body={decode_error="AMF_TRUNCATED at byte 0"}',
    }, lines(f))
  end)

  it("keeps lines bounded and loadable for hostile values", function()
    local _, srv, _, f = pair(true)
    -- 60 nested objects, a 100 kB string, 5000 properties
    local deep = ("\3\0\1k"):rep(60) .. "\5" .. ("\0\0\9"):rep(60)
    local long = "\12" .. string.pack(">I4", 100000) .. ("A"):rep(100000)
    local props = { "\3" }
    for i = 1, 5000 do props[#props + 1] = string.pack(">s2", "p" .. i) .. "\0" .. string.pack(">d", i) end
    props[#props + 1] = "\0\0\9"
    local body = rtmp.amf0.encode("x", 1) .. deep .. long .. table.concat(props)
    srv:set_chunk_size(4096)
    srv:feed(chunk0(2, 0, 1, 0, string.pack(">I4", 65536)))
    local hdr = string.pack(">B I3 I3 B <I4", 3, 0, #body, 20, 0)
    local chunks, pos = { hdr }, 1
    while pos <= #body do
      if pos > 1 then chunks[#chunks + 1] = "\xC3" end
      chunks[#chunks + 1] = body:sub(pos, pos + 65535)
      pos = pos + 65536
    end
    assert(srv:feed(table.concat(chunks)))
    local got = lines(f)
    local line = got[#got]
    assert.is_true(#line < 4096, "line of " .. #line .. " bytes")
    local m = parse("0.000000 " .. line)
    assert.equal("command", m.type)
    assert.equal(#body, m.len)
    assert.equal("x", m.body[1])
    -- the deep value stops at the depth bound, the string at 200 bytes
    local v, levels = m.body[3], 0
    while type(v) == "table" and v.k do v, levels = v.k, levels + 1 end
    assert.equal(8, levels)
    assert.truthy(line:find("bytes deeper", 1, true))
    assert.equal(("A"):rep(200), m.body[4])
    assert.truthy(line:find('--[[+99800 bytes]]', 1, true))
    -- the properties are cut with a marker, the constructor still whole
    assert.truthy(line:find("--[[cut]]", 1, true))
    assert.equal(1, m.body[5].p1)
  end)

  it("escapes bytes so every line stays one line and loads back", function()
    local cli, _, _, f = pair()
    local s = "a\"b\\c\nd\0e\255"
    cli:command(nil, "x", 0, { [s] = s, ["end"] = true, [""] = false })
    local got = lines(f)
    assert.equal(1, #got)
    local m = parse("0.000000 " .. got[1])
    assert.same({ "x", 0, { [s] = s, ["end"] = true, [""] = false } }, m.body)
  end)

  it("parses back: every field, numbers, null and undefined", function()
    local cli, _, _, f = pair()
    local obj = { a = 0.1, b = -2, c = 1e300, d = "é", e = { 1, 2, 3 } }
    cli:command({ csid = 8, stream = 3, timestamp = 1000 }, "play", 4, rtmp.null, "name", -2000, rtmp.undefined, obj)
    local m = parse("0.000000 " .. lines(f)[1])
    assert.same({ conn = 0, dir = "out", csid = 8, fmt = 0, type = "command", stream = 3, ts = 1000 },
                { conn = m.conn, dir = m.dir, csid = m.csid, fmt = m.fmt, type = m.type, stream = m.stream, ts = m.ts })
    assert.equal(rtmp.null, m.body[3])
    assert.equal(rtmp.undefined, m.body[6])
    assert.same({ "play", 4, rtmp.null, "name", -2000, rtmp.undefined, obj }, m.body)
  end)

  it("switches off, and appends to a path shared by sessions", function()
    local path = os.tmpname()
    local a = rtmp.session{ role = "server", trace = path }
    local b = rtmp.session{ role = "server" }
    assert.is_true(b:trace(path))
    a:ack(1)
    b:ack(2)
    assert.is_true(a:trace(false))
    a:ack(3)
    local fh = assert(io.open(path))
    local text = fh:read("a")
    fh:close()
    os.remove(path)
    local got = {}
    for line in text:gmatch("[^\n]+") do got[#got + 1] = parse(line).body.sequence end
    assert.same({ 1, 2 }, got)
  end)

  it("reports a path it cannot open and rejects other values", function()
    local s = rtmp.session{ role = "server" }
    local ok, err = s:trace("/nonexistent-dir/x/trace.log")
    assert.is_nil(ok)
    assert.matches("cannot open trace file", err)
    assert.has_error(function() s:trace({}) end)
  end)

  it("traces group fan-out, chunked once for all members, with the whole payload", function()
    local path = os.tmpname()
    local group, sent = rtmp.group(), 0
    local payload = "\x17\1\0\0\0" .. ("v"):rep(5000)   -- 40 chunks at size 128
    local srv = assert(rtmp.listen{
      listen = "127.0.0.1:0", trace = path,
      on_handshake = function(conn)
        group:add(conn, 1)
        sent = group:send(rtmp.message({ type = "video", timestamp = 0x1000000 }, payload))
      end,
    })
    local cli = assert(rtmp.connect("rtmp://127.0.0.1:" .. srv.port .. "/live", {
      on_message = function(conn, msg)
        if msg.type == 9 then
          assert.equal(payload, msg.payload)
          conn:close()
          srv:close()
        end
      end,
    }))
    rtmp.run(5)
    assert.equal(1, sent)
    assert.is_true(cli.closed)
    local fh = assert(io.open(path))
    local text = fh:read("a")
    fh:close()
    os.remove(path)
    local m = parse(text:match("[^\n]+"))
    assert.same({ dir = "out", csid = 7, fmt = 0, type = "video", stream = 1, ts = 0x1000000, len = #payload },
                { dir = m.dir, csid = m.csid, fmt = m.fmt, type = m.type, stream = m.stream, ts = m.ts, len = m.len })
    assert.same({ codec = "avc", frame = "key", packet = "nalu" }, m.body)
  end)

  it("traces a message sent chunk by chunk once, at its first chunk", function()
    local cli, _, _, f = pair()
    local o = cli:begin({ type = "video", stream = 1, timestamp = 5 }, "\x27\1" .. ("z"):rep(300))
    o:chunk(100)
    o:rest()
    assert.same({
      'conn=0 out csid=7 fmt=0 type=video stream=1 ts=5 len=302 body={codec="avc", frame="inter", packet="nalu"}',
    }, lines(f))
  end)
end)
