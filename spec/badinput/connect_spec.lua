-- An undecodable connect (issue 17), against a live luartmp server: the
-- script answers it (scripts/live.lua: _error, NetConnection.Call.Failed,
-- "Undecodable connect: REASON."), then the engine closes the connection
-- at once, logging `close: undecodable connect: REASON` at warn level with
-- the connection id and the peer's address. (Before, the connect deadline
-- took it for a connect and the connection stayed until the idle timeout,
-- 60 s.) The server keeps its default deadlines (connect 10 s, idle 60 s),
-- so a close within two seconds is this rule and no deadline.
--
-- What stays as it was, also checked here: an undecodable command other
-- than connect, and any undecodable command once a connect decoded, gets
-- its _error and the connection stays; a connect that decodes and is
-- refused by the script goes as the script says.
--
-- docs/MALFORMED.md lists these outcomes; spec/badinput/malformed_spec.lua
-- covers AMF at the nesting limit and the truncations of a valid connect.

local H = require "support.helpers"
local C = require "support.client"
local M = require "badinput.malformed_util"
local rtmp = require "rtmp"

local fmt = string.format

describe("an undecodable connect", function()
  local srv

  setup(function()
    srv = H.luartmp_start{} -- scripts/live.lua
  end)

  teardown(function() H.cleanup() end)

  -- The server's close line for our connection from local port `lport`:
  -- warn, with the connection id and our address, and the reason
  -- "undecodable connect: <why>".
  local function expect_closed_for(server, lport, why)
    local c = M.close_reason(server, lport, 5)
    assert(c, fmt("no close line for 127.0.0.1:%s:\n%s", tostring(lport), server.log():sub(-3000)))
    assert.are.equal("undecodable connect: " .. why, c.reason)
    assert.are.equal("warn", c.level)
    assert.is_truthy(server.log():find(fmt(" warn conn=%s peer=127.0.0.1:%d close: undecodable connect: %s (in ",
      c.id, lport, why), 1, true))
    return c
  end

  -- The _error answers (NetConnection.Call.Failed) our in-process
  -- connection c received for transaction id txn.
  local function errors_for(c, txn)
    local t = {}
    for _, m in ipairs(c.msgs) do
      if m.name == "_error" and m.txn == txn then
        assert.are.equal("NetConnection.Call.Failed", m.args[2].code)
        t[#t + 1] = m.args[2].description
      end
    end
    return t
  end

  -- The connection is open and in step: a round trip is answered.
  local function expect_alive(c, txn)
    assert(c:ping(txn), fmt("no answer on %s (closed: %s); its log:\n%s", c.peer, tostring(c.closed),
      table.concat(M.lines(srv, c.lport), "\n")))
    assert.is_false(c.closed)
  end

  it("answers 100,000 nested objects with _error on the wire, then closes the connection at once", function()
    local deep_obj = M.deep_connects()
    -- bash's /dev/tcp: a plain handshake, the connect chunked at 128, then
    -- our side stays open and reads until the server closes (or 10 s)
    local r = H.raw_send(srv.port, M.command(deep_obj), { handshake = true, wait = 10 })
    assert.is_true(r.handshake_ok, r.out)
    assert.is_true(r.closed, "the server kept the connection open for 10 s:\n" .. r.out)
    assert(r.elapsed < 2.5, fmt("closed only after %.2f s", r.elapsed))
    -- what the server sent before closing: exactly one _error for
    -- transaction 1, nothing else answering the connect
    local msgs, err = rtmp.reader():feed(r.received)
    assert(msgs, err)
    local answers = {}
    for _, m in ipairs(msgs) do
      if m.type == 20 then answers[#answers + 1] = assert(rtmp.amf0.decode(m.payload)) end
    end
    assert.are.equal(1, #answers, "commands from the server")
    local v = answers[1]
    assert.are.equal("_error", v[1])
    assert.are.equal(1, v[2])
    assert.are.equal("error", v[4].level)
    assert.are.equal("NetConnection.Call.Failed", v[4].code)
    assert.are.equal("Undecodable connect: AMF nesting too deep.", v[4].description)
    expect_closed_for(srv, r.lport, "AMF nesting too deep")
    assert.are.equal(1, M.count(srv, r.lport, "undecodable command: AMF nesting too deep"))
  end)

  it("closes each form at once after its _error: AMF3 command, one level over, behind a switch, cut short", function()
    local body = M.connect_body("live", srv.port)
    -- an AMF3 object nesting `n` levels (dynamic, no class), after the switch marker
    local amf3 = "\1"
    for _ = 1, 40 do amf3 = "\10\11\1\3a" .. amf3 .. "\1" end
    local cases = {
      { "33 levels", 20, M.nested_connect(33, "depth33"), "AMF nesting too deep" },
      { "33 levels, AMF3 command (type 17)", 17, "\0" .. M.nested_connect(33, "depth33"), "AMF nesting too deep" },
      { "100,000 strict arrays", 20, select(2, M.deep_connects()), "AMF nesting too deep" },
      { "40 AMF3 levels after 0x11", 20, H.amf0("connect", 1) .. "\17" .. amf3, "AMF nesting too deep" },
      { "the command object cut short", 20, body:sub(1, #body - 5), "AMF value truncated" },
      { "a strict array declaring 2^32-1 elements", 20,
        H.amf0("connect", 1) .. "\10\255\255\255\255" .. ("\5"):rep(40), "AMF value truncated" },
    }
    for _, case in ipairs(cases) do
      local name, mtype, bytes, why = table.unpack(case)
      local c = M.open(srv.port)
      local t0 = H.now()
      c:raw(M.message(10, mtype, 0, 0, bytes))
      assert(c:wait_closed(5), name .. ": the server kept the connection open")
      local elapsed = H.now() - t0
      assert(elapsed < 2, fmt("%s: closed only after %.2f s", name, elapsed))
      assert.are.same({ "Undecodable connect: " .. why .. "." }, errors_for(c, 1), name)
      assert.is_nil(c:find{ name = "_result" }, name)
      expect_closed_for(srv, c.lport, why)
    end
  end)

  it("closes a connect cut inside its transaction id, which nobody can answer", function()
    local c = M.open(srv.port)
    c:raw(M.command(H.amf0("connect") .. "\0\63\240\0"))
    assert(c:wait_closed(5), "the server kept the connection open")
    assert.are.equal(0, #c.msgs, "the server sent something")
    expect_closed_for(srv, c.lport, "AMF value truncated")
  end)

  it("answers and keeps a connect whose AMF3 values refer to each other or hold an ArrayCollection", function()
    -- connect, 1, then three values switched to AMF3 (0x11), one AMF3
    -- context for the message: the command object { app = "live" }; a
    -- reference to the string "live" (string table: "app" 0, "live" 1); a
    -- flex.messaging.io.ArrayCollection (externalizable, its body an empty
    -- array: the binding has its handler built in)
    local body = H.amf0("connect", 1) ..
      "\17\10\11\1" .. "\7app" .. "\6\9live" .. "\1" ..
      "\17\6\2" ..
      "\17\10\7" .. string.char(33 << 1 | 1) .. "flex.messaging.io.ArrayCollection" .. "\9\1\1"
    local c = M.open(srv.port)
    c:raw(M.command(body))
    assert(c:wait(function() return c:find{ name = "_result", txn = 1 } end), "connect not answered with _result")
    assert.are.equal(1, M.count(srv, c.lport, "connect app=live"))
    local closed = M.close_reason(srv, c.lport, 0.5)
    assert.is_nil(closed, "closed by the server: " .. tostring(closed and closed.reason))
    expect_alive(c, 904)
    assert.are.equal(0, M.count(srv, c.lport, "undecodable"))
    c:close()
  end)

  it("keeps every other undecodable command's connection: before connect and after it", function()
    local c = M.open(srv.port)
    -- before connect: another command (its object cut short) gets its
    -- _error; the connection stays (awaiting its connect: the next test
    -- sees that deadline)
    c:raw(M.command(H.amf0("createStream", 2, nil) .. "\3\0\1a"))
    assert(c:wait(function() return #errors_for(c, 2) == 1 end), "no _error for the undecodable createStream")
    assert.are.same({ "Undecodable createStream: AMF value truncated." }, errors_for(c, 2))
    expect_alive(c, 901)
    local res = c:connect("live")
    assert(res and res.name == "_result", "connect after an undecodable command was not answered with _result")
    -- after connect: an undecodable connect and an undecodable call, each
    -- answered, the connection kept
    local deep_obj = M.deep_connects(5)
    c:raw(M.command(deep_obj))
    c:raw(M.command(H.amf0("call", 6, nil) .. "\10\255\255\255\255"))
    assert(c:wait(function() return #errors_for(c, 5) + #errors_for(c, 6) == 2 end), "the two _error answers")
    assert.are.same({ "Undecodable connect: AMF nesting too deep." }, errors_for(c, 5))
    assert.are.same({ "Undecodable call: AMF value truncated." }, errors_for(c, 6))
    expect_alive(c, 902)
    local closed = M.close_reason(srv, c.lport, 0.5)
    assert.is_nil(closed, "closed")
    c:close()
  end)

  it("leaves a connect that decodes to the script, and closes an undecodable one it does not answer", function()
    -- connect_server.lua: refuses app "denied" (and closes), "refused-open"
    -- (and keeps the connection), answers nothing undecodable; a 1 s
    -- connect deadline
    local s2 = H.luartmp_start{ script = "spec/badinput/connect_server.lua", extra = { "--connect-timeout", "1" } }
    local a = M.open(s2.port)
    local res = a:connect("denied")
    assert(res and res.name == "_error", "the refused connect was not answered with _error")
    assert.are.equal("NetConnection.Connect.Rejected", res.args[2].code)
    assert(a:wait_closed(3), "the script's close did not happen")
    local ca = assert(M.close_reason(s2, a.lport, 5))
    assert.are.equal("connect rejected: not on the list", ca.reason)
    assert.are.equal("info", ca.level)
    -- refused and kept: a connect all the same, past the connect deadline, in step
    local b = M.open(s2.port)
    res = b:connect("refused-open")
    assert(res and res.name == "_error", "the refused connect was not answered with _error")
    assert.is_nil(C.wait_until(function() return b.closed end, 2), "closed: " .. tostring(b.closed))
    assert(b:ping(903), "no answer after the refused connect")
    b:close()
    -- an undecodable connect the script leaves unanswered: closed at once all the same
    local d = M.open(s2.port)
    d:raw(M.command(M.nested_connect(33, "depth33")))
    assert(d:wait_closed(3), "the server kept the connection open")
    assert.are.equal(0, #d.msgs, "the script answered")
    expect_closed_for(s2, d.lport, "AMF nesting too deep")
    -- an undecodable command that is no connect leaves the connect
    -- awaited: the connection meets its deadline
    local e = M.open(s2.port)
    e:raw(M.command(H.amf0("createStream", 2, nil) .. "\3\0\1a"))
    assert(e:wait_closed(3), "no connect timeout")
    local ce = assert(M.close_reason(s2, e.lport, 5))
    assert.are.equal("connect timeout", ce.reason)
    M.stop_clean(s2)
  end)

  it("still serves a fresh ffmpeg publish and player afterwards", function()
    local out = H.tmpname("after-undecodable.flv")
    local player = H.ffmpeg_play(srv.url("live/after"), out, 4)
    assert(H.wait_until(function() return srv.count("play", "after") >= 1 end, 10),
      "the player did not reach play:\n" .. srv.log():sub(-2000))
    local pub = H.ffmpeg_publish(srv.url("live/after"))
    assert.are.equal(0, H.wait_exit(pub, H.FIXTURE.seconds + 20), "publisher:\n" .. H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 20), "player:\n" .. H.output(player))
    local info = assert(H.probe(out))
    assert.are.equal(H.FIXTURE.frames, info.video and info.video.frames, "video frames the player received")
    M.stop_clean(srv)
  end)
end)
