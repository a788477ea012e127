-- The coroutine client API (lua/rtmp/client.lua) against servers in this
-- process: the live server (scripts/live.lua) and small rtmp.listen servers
-- that answer the way a test needs (refusals, silence, a drop).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local live = require "live"
local null = rtmp.null

local LUARTMP = os.getenv("LUARTMP") or "build/luartmp"

-- Run fn(...) in a coroutine (rtmp.spawn) and the loop until it returns;
-- returns what fn returned.  An error in fn fails the test.
local function co_run(fn, timeout)
  local res
  rtmp.spawn(function() res = table.pack(pcall(fn)) end)
  local deadline = rtmp.now() + (timeout or 10)
  while not res and rtmp.now() < deadline do rtmp.run(0.02) end
  assert(res, "the coroutine did not finish in time")
  assert(res[1], res[2])
  return table.unpack(res, 2, res.n)
end

-- Let the loop run for a moment (pending closes, queued output).
local function settle(seconds)
  local t = rtmp.now() + (seconds or 0.1)
  while rtmp.now() < t do rtmp.run(0.02) end
end

local live_port, live_servers
local function live_url()
  if not live_port then
    live_servers = live.start{ listen = "127.0.0.1:0" }
    live_port = live_servers[1].port
  end
  return "rtmp://127.0.0.1:" .. live_port .. "/live"
end

-- A server whose on_message is `answer(conn, msg, srv)`; srv.msgs records
-- every command it received.
local function test_server(answer)
  local srv = { msgs = {} }
  srv.server = assert(rtmp.listen{
    listen = "127.0.0.1:0",
    on_message = function(conn, msg)
      if msg.name then srv.msgs[#srv.msgs + 1] = msg end
      if answer then answer(conn, msg, srv) end
    end,
  })
  srv.url = "rtmp://127.0.0.1:" .. srv.server.port .. "/app/inst"
  return srv
end

local function accept_connect(conn, msg)
  if msg.name == "connect" then
    conn:command(nil, "_result", msg.txn, { fmsVer = "FMS/3,0,1,123", capabilities = 31 },
      { level = "status", code = "NetConnection.Connect.Success", description = "ok" })
    return true
  elseif msg.name == "createStream" then
    conn:command(nil, "_result", msg.txn, null, 1)
    return true
  end
end

-- Media to publish: metadata, AVC sequence header, a keyframe, frames, audio.
local function media()
  return {
    { type = 18, timestamp = 0, payload = rtmp.amf0.encode("onMetaData", { width = 320, height = 240 }) },
    { type = 9, timestamp = 0, payload = "\23\0\0\0\0" .. "\1\100\0\31\255\225" },
    { type = 8, timestamp = 0, payload = "\175\0\18\16" },
    { type = 9, timestamp = 0, payload = "\23\1\0\0\0" .. ("k"):rep(3000) },
    { type = 8, timestamp = 23, payload = "\175\1" .. ("a"):rep(200) },
    { type = 9, timestamp = 40, payload = "\39\1\0\0\0" .. ("p"):rep(700) },
    { type = 9, timestamp = 0x1234567, payload = "\39\1\0\0\0" .. ("x"):rep(70000) },
  }
end

-- got[1] is |RtmpSampleAccess; got[2..] must be media() as it was sent:
-- same types, timestamps and payloads, the metadata (sent as
-- @setDataFrame) arriving as onMetaData with its values.
local function assert_relayed(got)
  for i, m in ipairs(media()) do
    local r = got[i + 1]
    assert.are.equal(m.type, r.type)
    assert.are.equal(m.timestamp, r.timestamp)
    if m.type == 18 then
      assert.are.equal("onMetaData", r.name)
      assert.are.equal(320, r.values[2].width)
      assert.are.equal(240, r.values[2].height)
    else
      assert.are.equal(m.payload, r.payload)
    end
  end
end

describe("client API", function()
  after_each(function() settle(0.05) end)
  teardown(function()
    for _, srv in ipairs(live_servers or {}) do srv:close() end
    settle(0.1)
  end)

  it("publishes to the live server; a player reads the same messages, then eof", function()
    local url, name = live_url(), "s" .. math.random(1e9)
    local got, ended = {}, {}
    co_run(function()
      local pnc = assert(rtmp.connect(url))
      local pns = assert(pnc:create_stream())
      assert.is_true(pns:play(name))
      local nc = assert(rtmp.connect(url))
      assert.are.equal("NetConnection.Connect.Success", nc.info.code)
      local ns = assert(nc:create_stream())
      assert.is_number(ns.id)
      assert.is_true(ns:publish(name))
      for _, m in ipairs(media()) do assert.is_true(ns:send(m)) end
      -- the reader, in its own coroutine, while this one waits
      local done = false
      rtmp.spawn(function()
        while true do
          local m, err = pns:read(5)
          if not m then ended[#ended + 1] = err break end
          got[#got + 1] = m
        end
        done = true
      end)
      rtmp.sleep(0.2)
      assert.is_true(ns:close())
      while not done do rtmp.sleep(0.02) end
      nc:close()
      pnc:close()
    end)
    assert.are.same({ "eof" }, ended)
    -- the live server sends |RtmpSampleAccess first, then what was published
    assert.are.equal("|RtmpSampleAccess", got[1].name)
    assert.are.equal(#media() + 1, #got)
    assert_relayed(got)
  end)

  it("forwards message objects it reads (relay): payloads and data values arrive unchanged", function()
    local url, a, b = live_url(), "a" .. math.random(1e9), "b" .. math.random(1e9)
    local got = {}
    co_run(function()
      local src = assert(rtmp.connect(url))
      local sns = assert(src:create_stream())
      assert(sns:play(a))
      local dst = assert(rtmp.connect(url))
      local dns = assert(dst:create_stream())
      assert(dns:publish(b))
      local out = assert(rtmp.connect(url))
      local ons = assert(out:create_stream())
      assert(ons:play(b))
      local pub = assert(rtmp.connect(url))
      local pns = assert(pub:create_stream())
      assert(pns:publish(a))
      for _, m in ipairs(media()) do assert(pns:send(m)) end
      -- relay a -> b: every message object read is sent on
      for _ = 1, #media() + 1 do
        local m = assert(sns:read(5))
        if m.name ~= "|RtmpSampleAccess" then assert.is_true(dns:send(m)) end
      end
      for _ = 1, #media() + 1 do got[#got + 1] = assert(ons:read(5)) end
      for _, nc in ipairs{ src, dst, out, pub } do nc:close() end
    end)
    assert_relayed(got)
  end)

  it("gives NetStream.Publish.BadName for a name already published on the live server", function()
    local url, name = live_url(), "busy" .. math.random(1e9)
    local ok, err = co_run(function()
      local nc1 = assert(rtmp.connect(url))
      local ns1 = assert(nc1:create_stream())
      assert(ns1:publish(name))
      local nc2 = assert(rtmp.connect(url))
      local ns2 = assert(nc2:create_stream())
      local r, e = ns2:publish(name)
      nc1:close()
      nc2:close()
      return r, e
    end)
    assert.is_nil(ok)
    assert.are.equal("NetStream.Publish.BadName: " .. name .. " is already publishing.", err)
  end)

  it("sends the connect object and extra arguments the options ask for", function()
    local srv = test_server(accept_connect)
    co_run(function()
      local nc = assert(rtmp.connect(srv.url, {
        app = "app/inst", tc_url = "rtmp://example.com/app/inst", flash_ver = "FMLE/3.0", swf_url = "http://x/p.swf",
        page_url = "http://x/", properties = { objectEncoding = 0, custom = "c" },
        args = { "token", 42 },
      }))
      nc:close()
    end)
    local c = srv.msgs[1]
    assert.are.equal("connect", c.name)
    assert.are.equal(1, c.txn)
    local obj = c.args[1]
    assert.are.equal("app/inst", obj.app)
    assert.are.equal("rtmp://example.com/app/inst", obj.tcUrl)
    assert.are.equal("FMLE/3.0", obj.flashVer)
    assert.are.equal("http://x/p.swf", obj.swfUrl)
    assert.are.equal("http://x/", obj.pageUrl)
    assert.are.equal("c", obj.custom)
    assert.are.equal(0, obj.objectEncoding)
    assert.are.equal("token", c.args[2])
    assert.are.equal(42, c.args[3])
    -- without app/tc_url: the URL's first path segment and tcUrl
    co_run(function() assert(rtmp.connect(srv.url)):close() end)
    assert.are.equal("app", srv.msgs[2].args[1].app)
    assert.are.equal("rtmp://127.0.0.1:" .. srv.server.port .. "/app", srv.msgs[2].args[1].tcUrl)
    srv.server:close()
  end)

  it("returns the _error code and description of a refused connect", function()
    local srv = test_server(function(conn, msg)
      if msg.name == "connect" then
        conn:command(nil, "_error", msg.txn, null,
          { level = "error", code = "NetConnection.Connect.Rejected", description = "go away" })
      end
    end)
    local nc, err = co_run(function() return rtmp.connect(srv.url) end)
    assert.is_nil(nc)
    assert.are.equal("NetConnection.Connect.Rejected: go away", err)
    srv.server:close()
  end)

  it("fails with closed: when nobody listens, and with timeout when the server is silent", function()
    local port = test_server().server
    local p = port.port
    port:close()
    local nc, err = co_run(function() return rtmp.connect("rtmp://127.0.0.1:" .. p .. "/app") end)
    assert.is_nil(nc)
    assert.truthy(err:match("^closed: "), err)

    local srv = test_server() -- completes the handshake, never answers connect
    nc, err = co_run(function() return rtmp.connect(srv.url, { timeout = 0.3 }) end)
    assert.is_nil(nc)
    assert.are.equal("timeout", err)
    srv.server:close()
  end)

  it("nc:call returns the _result values, or the _error as code: description", function()
    local srv = test_server(function(conn, msg)
      if accept_connect(conn, msg) then return end
      if msg.name == "add" then
        conn:command(nil, "_result", msg.txn, null, msg.args[2] + msg.args[3], "sum")
      elseif msg.name == "nope" then
        conn:command(nil, "_error", msg.txn, null,
          { level = "error", code = "NetConnection.Call.Failed", description = "Method not found (nope)." })
      end
    end)
    local a, b, err1, err2 = co_run(function()
      local nc = assert(rtmp.connect(srv.url))
      local x, y = nc:call("add", 2, 3)
      local n, e = nc:call("nope")
      nc:close()
      return x, y, n, e
    end)
    assert.are.equal(5, a)
    assert.are.equal("sum", b)
    assert.is_nil(err1)
    assert.are.equal("NetConnection.Call.Failed: Method not found (nope).", err2)
    srv.server:close()
  end)

  it("sends play with start, duration and reset; pause, seek and close on the stream", function()
    local srv = test_server(function(conn, msg)
      if accept_connect(conn, msg) then return end
      if msg.name == "play" then
        conn:command({ stream = msg.stream }, "onStatus", 0, null,
          { level = "status", code = "NetStream.Play.Reset", description = "r" })
        conn:command({ stream = msg.stream }, "onStatus", 0, null,
          { level = "status", code = "NetStream.Play.Start", description = "s" })
      end
    end)
    co_run(function()
      local nc = assert(rtmp.connect(srv.url))
      local ns = assert(nc:create_stream())
      assert.is_true(ns:play("movie", 1500, 2000, false))
      assert.is_true(ns:pause(true, 1700))
      assert.is_true(ns:seek(3000))
      assert.is_true(ns:close())
      rtmp.sleep(0.1)
      nc:close()
    end)
    local by = {}
    for _, m in ipairs(srv.msgs) do by[m.name] = m end
    assert.are.same({ "movie", 1500, 2000, false }, { table.unpack(by.play.args, 2, 5) })
    assert.are.equal(1, by.play.stream)
    assert.are.same({ true, 1700 }, { by.pause.args[2], by.pause.args[3] })
    assert.are.equal(3000, by.seek.args[2])
    assert.are.equal(1, by.closeStream.stream)
    assert.are.equal(1, by.deleteStream.args[2])
    srv.server:close()
  end)

  it("play refused: the onStatus error; a dropped connection: read gives closed", function()
    local player_conn
    local srv = test_server(function(conn, msg)
      if accept_connect(conn, msg) then return end
      if msg.name == "play" and msg.args[2] == "missing" then
        conn:command({ stream = msg.stream }, "onStatus", 0, null,
          { level = "error", code = "NetStream.Play.StreamNotFound", description = "no such stream" })
      elseif msg.name == "play" then
        conn:command({ stream = msg.stream }, "onStatus", 0, null,
          { level = "status", code = "NetStream.Play.Start", description = "s" })
        conn:send({ type = "video", stream = msg.stream, timestamp = 5 }, "\23\1\0\0\0frame")
        player_conn = conn
      end
    end)
    local r1, e1, m, r2, e2, r3, e3 = co_run(function()
      local nc = assert(rtmp.connect(srv.url))
      local ns = assert(nc:create_stream())
      local a, b = ns:play("missing")
      local ns2 = assert(nc:create_stream())
      assert(ns2:play("there"))
      local msg = ns2:read(5)
      local c, d = ns2:read(0.2)           -- nothing more yet
      rtmp.timer(0.1, function() player_conn:close("upstream gone") end)
      local e, f = ns2:read(5)
      return a, b, msg, c, d, e, f
    end)
    assert.is_nil(r1)
    assert.are.equal("NetStream.Play.StreamNotFound: no such stream", e1)
    assert.are.equal(9, m.type)
    assert.are.equal(5, m.timestamp)
    assert.are.equal("\23\1\0\0\0frame", m.payload)
    assert.is_nil(r2)
    assert.are.equal("timeout", e2)
    assert.is_nil(r3)
    assert.are.equal("closed", e3)
    srv.server:close()
  end)

  it("a StreamEOF before Play.Start (FMS's order) does not end the play; one after it does", function()
    local srv = test_server(function(conn, msg)
      if accept_connect(conn, msg) then return end
      if msg.name == "play" then
        local sid = msg.stream
        local function status(code)
          conn:command({ stream = sid, csid = 5 }, "onStatus", 0, null,
            { level = "status", code = code, description = code })
        end
        conn:user_control("stream_begin", sid)
        status("NetStream.Play.Reset")
        conn:user_control("stream_eof", sid)
        conn:user_control("stream_begin", sid)
        status("NetStream.Play.Start")
        conn:data({ stream = sid }, "|RtmpSampleAccess", true, true)
        conn:send({ type = "video", stream = sid, timestamp = 40 }, "\23\1\0\0\0frame")
        conn:user_control("stream_eof", sid)
      end
    end)
    local ok, first, second, e2 = co_run(function()
      local nc = assert(rtmp.connect(srv.url))
      local ns = assert(nc:create_stream())
      local r = ns:play("fms")
      local a = ns:read(5)
      local b = ns:read(5)
      local c, d = ns:read(5)
      nc:close()
      return r, (a and a.name) or a, b, d or c
    end)
    assert.is_true(ok)
    assert.are.equal("|RtmpSampleAccess", first)
    assert.are.equal(9, second.type)
    assert.are.equal("\23\1\0\0\0frame", second.payload)
    assert.are.equal("eof", e2)
    srv.server:close()
  end)

  it("bounds the read queue: the oldest messages go first", function()
    local srv = test_server(function(conn, msg)
      if accept_connect(conn, msg) then return end
      if msg.name == "play" then
        conn:command({ stream = msg.stream }, "onStatus", 0, null,
          { level = "status", code = "NetStream.Play.Start", description = "s" })
        for i = 1, 20 do
          conn:send({ type = "audio", stream = msg.stream, timestamp = i }, "\175\1" .. i)
        end
      end
    end)
    local ts, dropped = co_run(function()
      local nc = assert(rtmp.connect(srv.url, { max_queue = 5 }))
      local ns = assert(nc:create_stream())
      assert(ns:play("x"))
      rtmp.sleep(0.2)
      local t = {}
      for _ = 1, 5 do t[#t + 1] = assert(ns:read(1)).timestamp end
      nc:close()
      return t, ns.dropped
    end)
    assert.are.same({ 16, 17, 18, 19, 20 }, ts)
    assert.are.equal(15, dropped)
    srv.server:close()
  end)

  it("keeps the callback API when handlers are given, and needs a coroutine without", function()
    local srv = test_server(accept_connect)
    local ready, r1, r2
    -- a handler runs outside any coroutine: the waiting calls raise there
    local conn = assert(rtmp.connect(srv.url, { on_handshake = function()
      ready = true
      r1 = table.pack(pcall(rtmp.connect, srv.url))
      r2 = table.pack(pcall(rtmp.sleep, 0.1))
    end }))
    assert.are.equal("client", conn.role)
    settle(0.2)
    assert.is_true(ready)
    conn:close()
    for _, r in ipairs{ r1, r2 } do
      assert.is_false(r[1])
      assert.truthy(r[2]:find("must run inside a coroutine", 1, true), r[2])
    end
    srv.server:close()
  end)

  it("rtmp.sleep lets the loop run; spawned coroutines interleave", function()
    local order = {}
    co_run(function()
      rtmp.spawn(function() rtmp.sleep(0.1) order[#order + 1] = "b" end)
      rtmp.spawn(function() rtmp.sleep(0.05) order[#order + 1] = "a" end)
      order[#order + 1] = "start"
      rtmp.sleep(0.2)
      order[#order + 1] = "end"
    end)
    assert.are.same({ "start", "a", "b", "end" }, order)
  end)
end)

describe("luartmp main script as a coroutine", function()
  local function run(script)
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local p = io.popen(LUARTMP .. " " .. path .. " 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    os.remove(path)
    return tonumber(out:match("rc=(%d+)%s*$")), out
  end

  it("runs a script that waits (rtmp.sleep) to its end, and exits 0", function()
    local rc, out = run([[
      local rtmp = require "rtmp"
      print("one")
      rtmp.sleep(0.05)
      print("two")
    ]])
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("one\ntwo\n", 1, true), out)
  end)

  it("reports an error raised after a wait with its traceback and exits 1", function()
    local rc, out = run([[
      local rtmp = require "rtmp"
      rtmp.timer(30, function() end)    -- would keep the loop alive
      rtmp.sleep(0.05)
      error("failed after waiting")
    ]])
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("failed after waiting", 1, true), out)
    assert.truthy(out:find("stack traceback", 1, true), out)
  end)

  it("still runs a script that calls rtmp.run() itself", function()
    local rc, out = run([[
      local rtmp = require "rtmp"
      rtmp.timer(0.05, function() print("fired") end)
      rtmp.run()
      print("after run")
    ]])
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("fired\nafter run\n", 1, true), out)
  end)
end)
