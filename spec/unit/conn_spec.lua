-- The socket-free connection (core/conn.c) through rtmp.session on a
-- clock the spec passes in: the handshake, connect and idle deadlines
-- fire at the right times and s.deadline says when; idle is reset by a
-- whole message and by output the peer takes, not by a trickle; an
-- undecodable connect is delivered, then closes the connection; a
-- protocol error closes it with its reason.  core/net.c and the replay
-- drive this same code (badinput/connect_spec.lua, limits_spec.lua and
-- replay_spec.lua see it through them).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local amf0 = rtmp.amf0

-- A client and a server session, both started at t0.
local function pair(t0, settings)
  local c = rtmp.session({ role = "client", handshake_seed = 1 }, t0)
  local st = { role = "server", handshake_seed = 2 }
  for k, v in pairs(settings or {}) do st[k] = v end
  return c, rtmp.session(st, t0)
end

-- The whole handshake at time t; the server takes C0C1 and C2 then, and
-- the client takes the server's S0S1S2 (the server's output, taken at t).
local function handshake(c, s, t)
  assert(s:feed(c:output(), t))
  assert(c:feed(s:output(t), t))
  assert(s:feed(c:output(), t))
  assert.is_true(s.ready)
end

-- A command message's chunks on csid 3 (type 20, or 17 with its format byte).
local function command_bytes(body, type)
  if type == 17 then body = "\0" .. body end
  return rtmp.writer():write{ csid = 3, type = type or 20, stream = 0, timestamp = 0, payload = body }
end

-- An AMF0 value: n objects, each holding the next under key "a", then null.
local function nested(n)
  local v = "\5"
  for _ = 1, n do v = "\3" .. string.pack(">s2", "a") .. v .. "\0\0\9" end
  return v
end

describe("a socket-free connection on a clock passed in", function()
  it("ends a handshake that is not done handshake_timeout after its start, bytes or not", function()
    local c, s = pair(100)
    assert.are.equal(110, s.deadline)
    assert.are.same({}, s:feed(c:output():sub(1, 700), 101))  -- half of C0C1
    assert.are.equal(110, s.deadline)  -- absolute: the bytes do not move it
    assert.is_nil(s:tick(109.999))
    assert.is_false(s.closed)
    assert.are.equal("handshake timeout", s:tick(110))
    assert.are.equal("handshake timeout", s.closed)
    assert.is_nil(s.deadline)
    local msgs, err, code = s:feed("\0", 111)
    assert.is_nil(msgs)
    assert.are.equal("closed", err)
    assert.are.equal("CLOSED", code)
  end)

  it("waits connect_timeout after the handshake for a connect, whatever else the peer sends", function()
    local c, s = pair(0)
    handshake(c, s, 2)
    assert.are.equal(12, s.deadline)  -- the connect deadline, before the idle one (62)
    c:set_window_ack_size(5000)
    local msgs = assert(s:feed(c:output(), 5))
    assert.are.equal(1, #msgs)
    assert.are.equal(12, s.deadline)
    assert.is_nil(s:tick(11.5))
    assert.are.equal("connect timeout", s:tick(12))
  end)

  it("runs only the idle deadline once connect arrives, reset by whole messages and by output taken", function()
    local c, s = pair(0)
    handshake(c, s, 1)
    c:command(nil, "connect", 1, { app = "live" })
    local msgs = assert(s:feed(c:output(), 3))
    assert.are.equal("connect", msgs[1].name)
    assert.are.equal(63, s.deadline)             -- 60 s after the connect
    c:command(nil, "long", 2, rtmp.null, string.rep("x", 300))
    local long = c:output()
    assert.are.same({}, s:feed(long:sub(1, 100), 20))  -- part of a message: not alive
    assert.are.equal(63, s.deadline)
    s:command(nil, "_result", 1, rtmp.null)
    assert.is_true(#s:output(30) > 0)             -- the peer took our output at 30
    assert.are.equal(90, s.deadline)
    assert.are.equal(1, #assert(s:feed(long:sub(101), 40)))  -- the rest: a whole message
    assert.are.equal(100, s.deadline)
    assert.is_nil(s:tick(99.99))
    assert.are.equal("idle timeout", s:tick(100))
    assert.are.equal("idle timeout", s.closed)
  end)

  it("takes its deadlines from the settings; a client has no connect deadline; 0 turns one off", function()
    local c, s = pair(10, { handshake_timeout = 3, connect_timeout = 0, idle_timeout = 20 })
    assert.are.equal(13, s.deadline)
    handshake(c, s, 11)
    assert.are.equal(31, s.deadline)  -- no connect deadline: idle from the handshake
    assert.are.equal(71, c.deadline)  -- the client's defaults: idle 60 s after its last whole input
    local quiet = rtmp.session({ role = "server", handshake_timeout = 0, idle_timeout = 0 }, 5)
    assert.is_nil(quiet.deadline)
    assert.is_nil(quiet:tick(1e9))
    assert.is_false(quiet.closed)
  end)

  it("counts a connect whose body decodes at the nesting limit, in AMF0 and AMF3 commands", function()
    for _, type in ipairs{ 20, 17 } do
      local c, s = pair(0)
      handshake(c, s, 1)
      local msgs = assert(s:feed(command_bytes(amf0.encode("connect", 1) .. nested(32), type), 2))
      assert.are.equal("connect", msgs[1].name)
      assert.is_nil(msgs[1].decode_error)
      assert.is_false(s.closed)
      assert.are.equal(62, s.deadline)  -- the connect deadline is over: idle
    end
  end)

  it("delivers an undecodable connect, then closes: the rest of the read is not read", function()
    for _, type in ipairs{ 20, 17 } do
      local c, s = pair(0)
      handshake(c, s, 1)
      c:set_window_ack_size(5000)
      local after = c:output()
      local msgs = assert(s:feed(command_bytes(amf0.encode("connect", 1) .. nested(33), type) .. after, 2))
      assert.are.equal(1, #msgs)
      assert.are.equal(type, msgs[1].type)  -- the connect, which has no name: its body did not decode
      assert.are.equal("AMF nesting too deep", msgs[1].decode_error)
      assert.are.equal("undecodable connect: AMF nesting too deep", s.closed)
      assert.is_nil(s.deadline)
      -- the owner's answer still goes out after the close (net.c: during the linger)
      s:command(nil, "_error", 1, rtmp.null, { code = "NetConnection.Connect.Rejected" })
      assert.is_truthy(s:output(2):find("NetConnection.Connect.Rejected", 1, true))
      local none, err = s:feed(after, 3)
      assert.is_nil(none)
      assert.are.equal("closed", err)
    end
  end)

  it("closes a truncated connect as undecodable, and lets an undecodable command after connect be", function()
    local c, s = pair(0)
    handshake(c, s, 1)
    local cut = amf0.encode("connect", 1) .. "\3" .. string.pack(">s2", "app") .. "\2\0\9li"
    assert(s:feed(command_bytes(cut), 2))
    assert.are.equal("undecodable connect: AMF value truncated", s.closed)

    c, s = pair(0)
    handshake(c, s, 1)
    c:command(nil, "connect", 1, { app = "live" })
    assert(s:feed(c:output(), 2))
    local msgs = assert(s:feed(command_bytes(amf0.encode("connect", 2) .. nested(40)), 3))
    assert.are.equal("AMF nesting too deep", msgs[1].decode_error)
    assert.is_false(s.closed)  -- only the first connect decides
    assert.are.equal(63, s.deadline)
  end)

  it("closes on a protocol error with its message, marked as the handshake's before it ends", function()
    local s = rtmp.session({ role = "server" }, 0)
    local msgs, err, code = s:feed("\9" .. string.rep("\0", 1536), 1)
    assert.is_nil(msgs)
    assert.are.equal("unsupported handshake version", err)
    assert.are.equal("HS_VERSION", code)
    assert.are.equal("handshake: unsupported handshake version", s.closed)

    local c
    c, s = pair(0)
    handshake(c, s, 1)
    msgs, err = s:feed("\67\0\0\0\0\0\5\20", 2)  -- fmt 1 on a chunk stream nothing started
    assert.is_nil(msgs)
    assert.are.equal(err, s.closed)
    assert.is_nil(s.closed:find("handshake:", 1, true))
  end)
end)
