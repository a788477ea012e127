-- The handler runtime of lua/rtmp/flow.lua (docs/FLOW.md) without
-- sockets: scripts in the generated format, written by hand, run by the
-- replay harness (lua/rtmp/replay.lua) against conversations recorded
-- between two socket-free rtmp.session objects, on a virtual clock.  The
-- server side gets the recorded client's bytes at their recorded times;
-- the client side gets the recorded server's.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;scripts/?.lua;" .. package.path
local rtmp = require "rtmp"
local replay = require "rtmp.replay"
local flow = require "rtmp.flow"

local null = rtmp.null
local fmt = string.format

local convo = require "support.convo"
local tmpname, write = convo.tmpname, convo.write

-- A script file: the standard header, then `body` (a Lua chunk).
local HEADER = [[
local flow = require "rtmp.flow"
local on, send, media, close = flow.on, flow.send, flow.media, flow.close
local await, receive = flow.await, flow.receive
local null, obj, ecma = flow.null, flow.obj, flow.ecma
]]
local function script(body)
  local p = tmpname(".lua")
  write(p, HEADER .. body)
  return p
end

-- Record a conversation between a client and a server session:
-- `steps` is a list of { t = seconds, fn = function(c, s) }, each run at
-- its time (then both sides' output is exchanged). Returns a capture
-- connection (the shape rtmp.capture gives).
local function record(steps)
  local c, s, pump, chunks = convo.pair(0.001)
  for _, st in ipairs(steps) do
    st.fn(c, s)
    pump(st.t)
  end
  return convo.conn(chunks)
end

-- The messages a replay's connection sent: { { t, type, stream, ts, len, body }, ... }
-- (t: seconds after the first message out).
local function out_messages(res)
  local list, t0 = {}, nil
  for _, line in ipairs(res.trace) do
    local t, typ, stream, ts, len, body = line:match(
      "^(%S+) conn=%d+ out csid=%d+ fmt=%S+ type=(%S+) stream=(%d+) ts=(%d+) len=(%d+) body=(.*)$")
    if t then
      t0 = t0 or tonumber(t)
      list[#list + 1] = { t = tonumber(t), type = typ, stream = tonumber(stream), ts = tonumber(ts),
                          len = tonumber(len), body = body }
    end
  end
  return list
end

-- Bodies of the commands sent, in order.
local function commands(res)
  local out = {}
  for _, m in ipairs(out_messages(res)) do
    if m.type == "command" then out[#out + 1] = m.body end
  end
  return out
end

local function find(list, pat)
  for i, m in ipairs(list) do
    if (m.body or m):find(pat, 1, true) then return i, m end
  end
end

-- An FLV of `n` video tags 40 ms apart (and an audio tag after each).
local function make_flv(n)
  local path = tmpname(".flv")
  local w = assert(rtmp.flv.create(path))
  for i = 0, n - 1 do
    assert(w:write(rtmp.message({ type = "video", timestamp = i * 40 },
      (i == 0 and "\23\0" or "\39\1") .. "\0\0\0" .. string.rep("v", 50))))
    assert(w:write(rtmp.message({ type = "audio", timestamp = i * 40 + 5 }, "\175\1" .. string.rep("a", 20))))
  end
  assert(w:close())
  return path
end

local PLAYER = [[
return flow.server {
  on { "command", "connect", txn = 1,
    send { "window_ack_size", window = 5000000 },
    send { "command", csid = 3, values = { "_result", 1,
        obj{ {"fmsVer", "FMS/3,0,1,123"}, {"capabilities", 31}, {"mode", 1} },
        obj{ {"level", "status"}, {"code", "NetConnection.Connect.Success"} } } },
    send { "command", csid = 3, at = 0.5, values = { "onBWDone", 0, null } },
  },
  on { "command", "_checkbw", txn = 3, optional = true,
    send { "command", csid = 3, values = { "_result", 3, null } },
  },
  on { "command", "createStream", txn = 2,
    send { "command", csid = 3, values = { "_result", 2, null, 1 } },
  },
  on { "command", "play", txn = 4, stream = 1,
    send { "user_control", event = "stream_begin", stream_id = 1 },
    send { "command", csid = 5, stream = 1, values = { "onStatus", 0, null,
        obj{ {"level", "status"}, {"code", "NetStream.Play.Start"} } } },
  },
  on { "user_control", "set_buffer_length", optional = true },
}
]]

describe("flow handler runtime, server side", function()
  teardown(convo.cleanup)

  it("answers each request with its own handler, in the order they come, with the live txns", function()
    -- the live client sends Window Ack Size first, never _checkbw, and other txns
    local live = record{
      { t = 0.01, fn = function(c) c:set_window_ack_size(2500000) end },
      { t = 0.02, fn = function(c) c:command(nil, "connect", 7, { app = "live" }) end },
      { t = 0.03, fn = function(c) c:command(nil, "createStream", 8, null) end },
      { t = 0.04, fn = function(c)
          c:command({ csid = 8, stream = 1 }, "play", 9, null, "cam", -2000)
          c:user_control("set_buffer_length", 1, 3000)
        end },
    }
    local res = assert(replay.run{ capture = { live }, script = script(PLAYER), args = { "--fast" } })
    assert.same({}, res.errors)
    local out = commands(res)
    assert.equal(4, #out, table.concat(out, "\n"))
    assert.truthy(out[1]:find('^{"_result", 7, {fmsVer="FMS/3,0,1,123", capabilities=31, mode=1}'), out[1])
    assert.equal('{"onBWDone", 0, rtmp.null}', out[2])
    assert.equal('{"_result", 8, rtmp.null, 1}', out[3])
    assert.truthy(out[4]:find('^{"onStatus", 0, rtmp.null, {level="status", code="NetStream.Play.Start"}'), out[4])
  end)

  it("keeps each handler's actions on its own timeline (at: after the request arrived)", function()
    local live = record{
      { t = 0.10, fn = function(c) c:command(nil, "connect", 1, { app = "live" }) end },
      { t = 0.20, fn = function(c) c:command(nil, "createStream", 2, null) end },
    }
    local res = assert(replay.run{ capture = { live }, script = script(PLAYER), keep_open = true, limit = 3 })
    assert.same({}, res.errors)
    local msgs = out_messages(res)
    local _, result = find(msgs, '"_result", 1,')
    local _, bw = find(msgs, '"onBWDone"')
    local _, cs = find(msgs, '"_result", 2,')
    assert.truthy(result and bw and cs)
    -- onBWDone waits 0.5 s after connect; createStream's reply does not wait for it
    assert.near(0.5, bw.t - result.t, 0.002)
    assert.near(0.1, cs.t - result.t, 0.002)
    assert.is_true(cs.t < bw.t)
    -- the Window Ack Size without `at` went with the _result
    local i = find(msgs, "window=5000000")
    assert.equal(result.t, msgs[i].t)

    local fast = assert(replay.run{ capture = { live }, script = script(PLAYER), args = { "--fast" } })
    local fm = out_messages(fast)
    local _, r2 = find(fm, '"_result", 1,')
    local _, b2 = find(fm, '"onBWDone"')
    assert.equal(r2.t, b2.t)   -- --fast: no waits
  end)

  it("runs the n-th handler for the n-th request of a kind, then the last one again", function()
    local s = script([[
return flow.server {
  on { "command", "connect", txn = 1, send { "command", values = { "_result", 1, null, null } } },
  on { "command", "ask", txn = 2, send { "command", values = { "_result", 2, null, "first" } } },
  on { "command", "ask", txn = 3, send { "command", values = { "_result", 3, null, "second" } } },
}
]])
    local live = record{
      { t = 0.01, fn = function(c) c:command(nil, "connect", 1, { app = "x" }) end },
      { t = 0.02, fn = function(c) c:command(nil, "ask", 5, null) end },
      { t = 0.03, fn = function(c) c:command(nil, "ask", 6, null) end },
      { t = 0.04, fn = function(c) c:command(nil, "ask", 9, null) end },
      { t = 0.05, fn = function(c) c:command(nil, "unknown", 10, null) end },
    }
    local res = assert(replay.run{ capture = { live }, script = s, args = { "--fast" } })
    assert.same({}, res.errors)
    assert.same({ '{"_result", 1, rtmp.null, rtmp.null}', '{"_result", 5, rtmp.null, "first"}',
                  '{"_result", 6, rtmp.null, "second"}', '{"_result", 9, rtmp.null, "second"}' },
                commands(res))
  end)

  it("sends media at the per-tag times after the request, and as fast as the queue allows with --fast", function()
    local flv = make_flv(5)
    local s = script(fmt([[
return flow.server {
  media = %q,
  on { "command", "play", txn = 4, stream = 1,
    send { "command", csid = 5, stream = 1, values = { "onStatus", 0, null, obj{ {"code", "NetStream.Play.Start"} } } },
    media { from = 1, to = 6, stream = 1, csid = { audio = 4, video = 6 }, at = 0.2,
            times = { 0, 0, 1000, 1000, 1500, 2500 } },
    send { "user_control", event = "stream_eof", stream_id = 1, at = 3 },
    close { at = 3.5 },
  },
}
]], flv))
    local live = record{
      { t = 0.05, fn = function(c) c:command({ csid = 8, stream = 1 }, "play", 4, null, "cam") end },
    }
    local res = assert(replay.run{ capture = { live }, script = s, keep_open = true, limit = 10 })
    assert.same({}, res.errors)
    local msgs = out_messages(res)
    local _, status = find(msgs, "NetStream.Play.Start")
    local got = {}
    for _, m in ipairs(msgs) do
      if m.type == "video" or m.type == "audio" then
        got[#got + 1] = fmt("%s%d@%d", m.type, m.ts, math.floor((m.t - status.t) * 1000 + 0.5))
      end
    end
    -- the two first tags together at 0.2 s (the recording sent them together), then the times
    assert.same({ "video0@200", "audio5@200", "video40@1200", "audio45@1200", "video80@1700",
                  "audio85@2700" }, got)
    local i, eof = find(msgs, "stream_eof")
    assert.truthy(i, "no StreamEOF")
    assert.near(3.0, eof.t - status.t, 0.002)
    assert.equal("flow: closed as recorded", res.conns[1].closed)
    local closed
    for _, line in ipairs(res.trace) do closed = closed or tonumber(line:match("^(%S+) conn=1 close ")) end
    assert.near(3.5, closed - status.t, 0.002)

    local fast = assert(replay.run{ capture = { live }, script = s, args = { "--fast" }, keep_open = true,
                                    limit = 10 })
    local fm = out_messages(fast)
    local first, last
    for _, m in ipairs(fm) do
      if m.type == "video" or m.type == "audio" then first = first or m.t; last = m.t end
    end
    assert.truthy(first)
    assert.is_true(last - first < 0.05, "fast media spread over " .. (last - first) .. " s")
  end)

  it("sends a user control payload byte for byte (FMS's 14-byte event 8)", function()
    local body = "\0\8" .. "\0\0\0\1" .. "\0\0\0\0\0\0\0\42"
    local s = script(fmt([[
return flow.server {
  on { "command", "connect", txn = 1,
    send { "user_control", event = 8, payload = %q },
    send { "user_control", event = "stream_begin", stream_id = 0 },
  },
}
]], body))
    local live = record{ { t = 0.01, fn = function(c) c:command(nil, "connect", 1, { app = "x" }) end } }
    local res = assert(replay.run{ capture = { live }, script = s, args = { "--fast" } })
    assert.same({}, res.errors)
    local lens = {}
    for _, m in ipairs(out_messages(res)) do
      if m.type == "user_control" then lens[#lens + 1] = m.len end
    end
    assert.same({ 14, 6 }, lens)
    -- and the bytes themselves: the session's output holds the body after its chunk header
    local output = res.conns[1].output
    assert.truthy(output:find(string.pack(">I3", 14) .. "\4" .. "\0\0\0\0" .. body, 1, true))
  end)

  it("--once: exit status 1 naming the request the client never sent, 0 when it sent them all", function()
    local missing = record{
      { t = 0.01, fn = function(c) c:command(nil, "connect", 1, { app = "live" }) end },
      { t = 0.02, fn = function(c) c:command(nil, "createStream", 2, null) end },
    }
    local res = assert(replay.run{ capture = { missing }, script = script(PLAYER), args = { "--fast", "--once" } })
    assert.equal(1, res.exit)
    assert.truthy(res.stderr:find("flow: the client never sent command play (entry 4)", 1, true), res.stderr)
    local all = record{
      { t = 0.01, fn = function(c) c:command(nil, "connect", 1, { app = "live" }) end },
      { t = 0.02, fn = function(c) c:command(nil, "createStream", 2, null) end },
      { t = 0.03, fn = function(c) c:command({ stream = 1 }, "play", 4, null, "cam") end },
    }
    res = assert(replay.run{ capture = { all }, script = script(PLAYER), args = { "--fast", "--once" } })
    assert.is_nil(res.exit)
    assert.equal("", res.stderr)
  end)

  it("closes once the peer was silent `idle` seconds after every reply", function()
    local s = script([[
return flow.server {
  idle = 2,
  on { "command", "connect", txn = 1,
    send { "command", values = { "_result", 1, null, null } },
    send { "command", at = 1, values = { "onBWDone", 0, null } },
  },
}
]])
    local live = record{ { t = 0.01, fn = function(c) c:command(nil, "connect", 1, { app = "x" }) end } }
    local res = assert(replay.run{ capture = { live }, script = s, keep_open = true, limit = 30 })
    assert.same({}, res.errors)
    assert.equal("flow: peer idle", res.conns[1].closed)
    local closed
    for _, line in ipairs(res.trace) do closed = closed or tonumber(line:match("^(%S+) conn=1 close ")) end
    local _, bw = find(out_messages(res), "onBWDone")
    -- silent from the last reply (1 s after the request) for 2 s
    assert.near(2, closed - bw.t, 0.01)
  end)
end)

describe("flow handler runtime, client side", function()
  -- A recorded server's answers to a player: createStream gives stream
  -- `sid`; `eof_first`: StreamEOF between Play.Reset and Play.Start (FMS).
  local function server_session(sid, opts)
    opts = opts or {}
    return record{
      { t = 0.05, fn = function(_, s)
          s:command(nil, "_result", 1, { fmsVer = "FMS/3,5,7,7009" },
            rtmp.amf0.object{ { "level", "status" }, { "code", "NetConnection.Connect.Success" } })
        end },
      { t = 0.10, fn = function(_, s) s:command(nil, "_result", 2, null, sid) end },
      { t = 0.15, fn = function(_, s)
          s:command({ csid = 5, stream = sid }, "onStatus", 0, null,
            { level = opts.level or "status", code = opts.code or "NetStream.Play.Reset" })
          if opts.eof_first then s:user_control("stream_eof", sid) end
        end },
      { t = 0.20, fn = function(_, s)
          if opts.code then return end
          s:command({ csid = 5, stream = sid }, "onStatus", 0, null,
            { level = "status", code = "NetStream.Play.Start" })
          for i = 0, (opts.frames or 10) - 1 do
            s:send({ type = "video", csid = 7, stream = sid, timestamp = i * 40 }, "\39\1\0\0\0vvvv")
          end
        end },
      { t = 0.30, fn = function(_, s)
          if opts.code then return end
          s:user_control("stream_eof", sid)
        end },
    }
  end

  local CLIENT = [[
return flow.client {
  url = "rtmp://127.0.0.1/live",
  timeout = 3,
  outcome = { codes = { "NetConnection.Connect.Success", "NetStream.Play.Start" },
              media = { audio = 0, video = 10 }, tolerance = 0.1 },
  send { "command", csid = 3, values = { "connect", 1, obj{ {"app", "live"}, {"tcUrl", "rtmp://127.0.0.1/live"} } } },
  await { "_result", txn = 1 },
  send { "command", csid = 3, values = { "createStream", 2, null } },
  await { "_result", txn = 2 },
  send { "command", csid = 8, stream = 1, values = { "play", 3, null, "cam", -2000 } },
  send { "user_control", event = "set_buffer_length", stream_id = 1, buffer_length = 3000 },
  await { "onStatus", stream = 1, code = "NetStream.Play.Start" },
  receive { audio = 0, video = 10 },
  send { "command", csid = 8, stream = 1, values = { "deleteStream", 4, null, 1 } },
}
]]

  it("reaches the outcome: sends on the live stream id its createStream reply gave", function()
    local res = assert(replay.run{ capture = { server_session(5, { eof_first = true }) },
                                   script = script(CLIENT) })
    assert.same({}, res.errors)
    assert.is_nil(res.exit)
    assert.equal("", res.stderr)
    local msgs = out_messages(res)
    local _, play = find(msgs, '"play", 3,')
    assert.equal(5, play.stream)
    local _, del = find(msgs, '"deleteStream"')
    assert.equal('{"deleteStream", 4, rtmp.null, 5}', del.body)
    local _, sbl = find(msgs, "set_buffer_length")
    assert.truthy(sbl.body:find("stream_id=5", 1, true), sbl.body)
    -- the connect object keeps its key order
    local _, connect = find(msgs, '"connect"')
    assert.truthy(connect.body:find('{app="live", tcUrl=', 1, true), connect.body)
    assert.equal("flow: done", res.conns[1].closed)
  end)

  it("exits 1 naming the step when an awaited reply never comes", function()
    local rec = record{
      { t = 0.05, fn = function(_, s)
          s:command(nil, "_result", 1, null, { level = "status", code = "NetConnection.Connect.Success" })
        end },
    }
    local res = assert(replay.run{ capture = { rec }, script = script(CLIENT), keep_open = true })
    assert.equal(1, res.exit)
    assert.equal("flow: step 4 (await _result txn 2 after createStream): timed out after 3 s\n", res.stderr)
  end)

  it("exits 1 naming the step when the server refuses the play", function()
    local res = assert(replay.run{ capture = { server_session(1, { code = "NetStream.Play.StreamNotFound",
      level = "error" }) }, script = script(CLIENT) })
    assert.equal(1, res.exit)
    assert.equal("flow: step 7 (await onStatus on stream 1 NetStream.Play.Start after play): " ..
                 "got NetStream.Play.StreamNotFound\n", res.stderr)
  end)

  it("passes over a status the outcome does not list, and names it when nothing else comes", function()
    local res = assert(replay.run{ capture = { server_session(1, { code = "NetStream.Play.Reset" }) },
                                   script = script(CLIENT), keep_open = true })
    assert.equal(1, res.exit)
    assert.equal("flow: step 7 (await onStatus on stream 1 NetStream.Play.Start after play): " ..
                 "timed out after 3 s (got NetStream.Play.Reset)\n", res.stderr)
  end)

  it("exits 1 when the media falls short of the recorded count", function()
    local res = assert(replay.run{ capture = { server_session(1, { frames = 5 }) }, script = script(CLIENT) })
    assert.equal(1, res.exit)
    assert.truthy(res.stderr:find("^flow: step 8 %(receive 0 audio, 10 video%): StreamEOF with 0 audio, 5 video received"),
      res.stderr)
    -- within the tolerance (9 of 10) is the outcome
    res = assert(replay.run{ capture = { server_session(1, { frames = 9 }) }, script = script(CLIENT) })
    assert.is_nil(res.exit, res.stderr)
  end)
end)

describe("flow handler runtime, both sides", function()
  it("client: --duration judges the receive under way and names it", function()
    local steps = {
      { t = 0.05, fn = function(_, s)
          s:command(nil, "_result", 1, null, { level = "status", code = "NetConnection.Connect.Success" })
        end },
    }
    for i = 0, 19 do   -- a frame every 0.1 s from 0.2 s on
      steps[#steps + 1] = { t = 0.2 + i * 0.1, fn = function(_, s)
        s:send({ type = "video", csid = 7, stream = 1, timestamp = i * 100 }, "\39\1\0\0\0vvvv")
      end }
    end
    local s = script([[
return flow.client {
  url = "rtmp://127.0.0.1/live",
  outcome = { codes = { "NetConnection.Connect.Success" }, media = { video = 20 } },
  send { "command", csid = 3, values = { "connect", 1, obj{ {"app", "live"} } } },
  await { "_result", txn = 1 },
  receive { video = 20 },
}
]])
    local res = assert(replay.run{ capture = { record(steps) }, script = s, args = { "--duration", "0.75" } })
    assert.equal(1, res.exit)
    assert.truthy(res.stderr:find("^flow: step 3 %(receive 0 audio, 20 video%): stopped by %-%-duration after " ..
      "0.75 s with 0 audio, 6 video received %(want 0, 18"), res.stderr)
    -- without it the run reaches the outcome
    res = assert(replay.run{ capture = { record(steps) }, script = s })
    assert.is_nil(res.exit, res.stderr)
  end)

  it("server: an AMF3 connect (Flash with objectEncoding 3) finds the AMF0 handler", function()
    local s = script([[
return flow.server {
  on { "command", "connect", txn = 1, send { "command", values = { "_result", 1, null, null } } },
}
]])
    local live = record{ { t = 0.01, fn = function(c) c:command3(nil, "connect", 1, { app = "x" }) end } }
    local res = assert(replay.run{ capture = { live }, script = s, args = { "--fast" } })
    assert.same({ '{"_result", 1, rtmp.null, rtmp.null}' }, commands(res))
  end)
end)

describe("flow constructors", function()
  it("obj and ecma keep the given key order; ecma still takes a plain table", function()
    local o = flow.obj{ { "zeta", 1 }, { "alpha", "a" }, { "mid", true } }
    assert.equal(rtmp.amf0.encode(rtmp.amf0.object{ { "zeta", 1 }, { "alpha", "a" }, { "mid", true } }),
                 rtmp.amf0.encode(o))
    local bytes = rtmp.amf0.encode(o)
    assert.is_true(bytes:find("zeta", 1, true) < bytes:find("alpha", 1, true))
    local e = flow.ecma{ { "width", 320 }, { "duration", 8 } }
    local eb = rtmp.amf0.encode(e)
    assert.equal(8, eb:byte(1))
    assert.is_true(eb:find("width", 1, true) < eb:find("duration", 1, true))
    local plain = rtmp.amf0.encode(flow.ecma{ width = 320, duration = 8 })
    assert.equal(8, plain:byte(1))
    assert.is_true(plain:find("duration", 1, true) < plain:find("width", 1, true))   -- sorted
  end)

  it("refuses malformed entries with a clear message", function()
    assert.has_error(function() flow.on{} end, "on: want { type_name [, name], actions... }")
    assert.has_error(function() flow.on{ "command", "x", 5 } end, "on: entry 3 is not a send, media or close")
    assert.has_error(function() flow.await{ "_result" } end, "await: a _result needs txn = N")
    assert.has_error(function() flow.send{ "command", at = -1 } end,
      "send: at = -1 is not a number of seconds >= 0")
    assert.has_error(function() flow.receive{ video = "x" } end, "receive: video = x is not a count")
  end)
end)
