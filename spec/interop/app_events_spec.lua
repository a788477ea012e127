-- rtmp.app's events, refusals and waiting events (docs/APP.md), seen by a
-- client on the wire: a server script on rtmp.app logs each event it gets
-- and refuses or waits by stream name; luartmp's own client (in this
-- process) reads the replies, and ffmpeg publishes and plays through
-- live.lua with a publish hook that waits.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local fmt, q = string.format, H.shquote
local null = rtmp.null

local SERVER = [[
local rtmp = require "rtmp"
local app = require "rtmp.app"
local server = app.new{
  on_connect = function(conn, name, msg)
    conn:log("info", "event on_connect app=%s", name)
    if name == "closed" then return false, "no such app" end
    if name == "slow" then rtmp.sleep(0.5) end
  end,
  on_publish = function(conn, ns)
    conn:log("info", "event on_publish %s sid=%d type=%s key=%s x=%s query=%s", ns.name, ns.id, ns.type,
      tostring(ns.params.key), tostring(ns.params.x), ns.query)
    if ns.name == "denied" then return false, "not you" end
    if ns.name == "taken" then return false, "taken", "NetStream.Publish.BadName" end
    if ns.name == "slow" then rtmp.sleep(0.5) end
  end,
  on_unpublish = function(conn, ns, reason) conn:log("info", "event on_unpublish %s reason=%s", ns.name, reason) end,
  on_play = function(conn, ns)
    -- a name without a query: "" and a shared empty params table, read-only
    local wrote, why = pcall(function() ns.params.x = 1 end)
    conn:log("info", "event on_play %s sid=%d start=%s query=%q params=%s wrote=%s (%s)", ns.name, ns.id,
      tostring(ns.start), ns.query, tostring(next(ns.params)), tostring(wrote), tostring(why))
    if ns.name == "missing" then return false, "missing here" end
    if ns.name == "forbidden" then return false, "not for you", "NetStream.Play.Failed" end
    ns:send(rtmp.message({ type = "data" }, rtmp.amf0.encode("onHello", ns.name)))
    ns:defer(function() conn:data({ stream = ns.id }, "onDeferred", ns.name) end)
  end,
  on_stop = function(conn, ns, reason) conn:log("info", "event on_stop %s reason=%s", ns.name, reason) end,
  on_media = function(conn, ns, msg) conn:log("info", "event on_media %s type=%d len=%d", ns.name, msg.type, msg.length) end,
  on_data = function(conn, ns, msg) conn:log("info", "event on_data %s %s", ns.name, tostring(msg.name)) end,
  on_call = function(conn, msg)
    conn:log("info", "event on_call %s", msg.name)
    if msg.name == "sum" then return conn:command(nil, "_result", msg.txn, null, msg.args[2] + msg.args[3]) end
    if msg.name == "nope" then return false, "nope refused" end
  end,
  on_close = function(conn, reason) conn:log("info", "event on_close %s", reason) end,
}
server:listen()
]]

local function start_server()
  local script = H.tmpname("app-events") .. ".lua"
  H.write_file(script, SERVER)
  return H.luartmp_start{ script = script, log_level = "info" }
end

-- A client of support.client whose on_handshake is ours (for pipelining).
local function raw_client(url, on_handshake)
  local c = setmetatable({ msgs = {}, closed = false, txn = 10 }, C)
  c.conn = assert(rtmp.connect(url, {
    on_handshake = on_handshake,
    on_message = function(_, msg) c.msgs[#c.msgs + 1] = msg end,
    on_close = function(_, reason) c.closed = reason end,
  }))
  return c
end

local function connect_cmd(conn)
  conn:command(nil, "connect", 1, { app = conn.app, tcUrl = conn.tc_url, flashVer = "LNX 9,0,124,2" })
end

local function status_of(c, code)
  local m = c:wait(function() return c:find{ name = "onStatus", code = code } end, 5)
  assert(m, "no " .. code .. " among " .. table.concat(c:status_codes(), ", "))
  return m.args[2]
end

describe("rtmp.app", function()
  local srv
  before_each(function() srv = start_server() end)
  after_each(function() H.cleanup() end)

  it("refuses a connect with _error NetConnection.Connect.Rejected, then closes", function()
    local c = raw_client(srv.url("closed"), connect_cmd)
    local err = c:wait(function() return c:find{ name = "_error", txn = 1 } end, 5)
    assert.truthy(err, "no _error")
    assert.are.equal("NetConnection.Connect.Rejected", err.args[2].code)
    assert.are.equal("no such app", err.args[2].description)
    assert(c:wait(function() return c.closed end, 5), "the server did not close")
    assert.is_nil(c:find{ name = "_result" })
    assert.truthy(srv.log():find("close: connect rejected: no such app", 1, true), srv.log())
  end)

  it("holds what a connection sends while on_connect waits, then answers in order", function()
    local t0
    local c = raw_client(srv.url("slow"), function(conn)
      t0 = rtmp.now()
      connect_cmd(conn)
      conn:command(nil, "createStream", 2, null) -- pipelined: sent before any answer
    end)
    local second = c:wait(function() return c:find{ name = "_result", txn = 2 } end, 5)
    assert.truthy(second, "no answer to createStream")
    local first, i1 = c:find{ name = "_result", txn = 1 }
    local _, i2 = c:find{ name = "_result", txn = 2 }
    assert.truthy(first, "no answer to connect")
    assert.is_true(i1 < i2, "connect answered first")
    assert.are.equal(1, math.tointeger(second.args[2]))
    assert.is_true(rtmp.now() - t0 >= 0.45, "the answers waited for on_connect")
    c:close()
  end)

  it("refuses publish and play with the statuses real servers send", function()
    local c = C.connect(srv.url("live"))
    local cases = {
      { "publish", "denied", "NetStream.Publish.Denied", "not you" },
      { "publish", "taken", "NetStream.Publish.BadName", "taken" },
      { "publish", "", "NetStream.Publish.BadName", "No stream name." },
      { "play", "missing", "NetStream.Play.StreamNotFound", "missing here" },
      { "play", "forbidden", "NetStream.Play.Failed", "not for you" },
      { "play", "", "NetStream.Play.StreamNotFound", "No stream name." },
    }
    for _, case in ipairs(cases) do
      local sid = c:create_stream()
      c[case[1]](c, sid, case[2])
      local info = status_of(c, case[3])
      assert.are.equal("error", info.level)
      assert.are.equal(case[4], info.description)
      local m = c:find{ name = "onStatus", code = case[3] }
      assert.are.equal(sid, m.stream)
      c.msgs = {}
    end
    assert.is_false(c.closed, "refusals leave the connection open")
    c:close()
  end)

  it("gives each event its stream; what on_play sends follows the play reply", function()
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c.conn:command({ stream = sid, csid = 8 }, "publish", 0, null, "cam?key=k1&x=%41b", "record")
    status_of(c, "NetStream.Publish.Start")
    c.conn:data({ stream = sid, csid = 4 }, "@setDataFrame", "onMetaData", { width = 2 })
    c.conn:send({ type = "video", stream = sid }, "\23\0\0\0\0")
    c.conn:command({ stream = sid, csid = 8 }, "closeStream", 0, null)
    local p = c:create_stream()
    c:play(p, "hello")
    c:wait(function() return c:find{ name = "onHello" } end, 5)
    local _, i_start = c:find{ name = "onStatus", code = "NetStream.Play.Start" }
    local _, i_access = c:find{ name = "|RtmpSampleAccess" }
    local hello, i_hello = c:find{ name = "onHello" }
    assert.truthy(i_start and i_access and hello)
    local deferred, i_deferred = c:find{ name = "onDeferred" }
    assert.truthy(deferred)
    assert.is_true(i_start < i_access and i_access < i_hello and i_hello < i_deferred)
    assert.are.equal(p, hello.stream)
    -- a call the app does not know goes to on_call
    local t = c:call(nil, "sum", null, 2, 3)
    local r = c:wait(function() return c:find{ name = "_result", txn = t } end, 5)
    assert.are.equal(5, r.args[2])
    t = c:call(nil, "nope", null)
    local e = c:wait(function() return c:find{ name = "_error", txn = t } end, 5)
    assert.are.equal("NetConnection.Call.Failed", e.args[2].code)
    assert.are.equal("nope refused", e.args[2].description)
    c:close()
    assert(H.wait_until(function() return srv.log():find("event on_close", 1, true) end, 5))
    local want = {
      "event on_connect app=live",
      "event on_publish cam sid=1 type=record key=k1 x=Ab query=key=k1&x=%41b",
      "event on_data cam @setDataFrame",   -- as sent: app.metadata takes @setDataFrame off when asked
      "event on_media cam type=9 len=5",
      "event on_unpublish cam reason=closeStream",
      'event on_play hello sid=2 start=-2.0 query="" params=nil wrote=false (',
      ": ns.params: the stream name had no query; this empty table is shared and read-only)",
      "event on_call sum",
      "event on_call nope",
      "event on_stop hello reason=peer closed the connection",
      "event on_close peer closed the connection",
    }
    local log, at = srv.log(), 0
    for _, line in ipairs(want) do
      local pos = log:find(line, at + 1, true)
      assert(pos, "no '" .. line .. "' after position " .. at .. " in:\n" .. log)
      at = pos
    end
  end)

  it("live.lua: a connection publishing a name again on another stream is refused with BadName", function()
    local live = H.luartmp_start{ log_level = "info" }
    local c = raw_client(live.url("live"), function(conn)
      connect_cmd(conn)
      conn:command(nil, "createStream", 2, null)
      conn:command(nil, "createStream", 3, null)
    end)
    local r2 = c:wait(function() return c:find{ name = "_result", txn = 2 } end, 5)
    local r3 = c:wait(function() return c:find{ name = "_result", txn = 3 } end, 5)
    assert(r2 and r3, live.log())
    local s1, s2 = math.tointeger(r2.args[2]), math.tointeger(r3.args[2])
    assert.are_not.equal(s1, s2)
    c.conn:command({ stream = s1 }, "publish", 4, null, "twice", "live")
    assert.are.equal("status", status_of(c, "NetStream.Publish.Start").level)
    c.conn:command({ stream = s2 }, "publish", 5, null, "twice", "live")
    assert.are.equal("error", status_of(c, "NetStream.Publish.BadName").level)
    -- the first publish taken, the second refused, in live.lua's log
    assert.are.equal(2, live.count("publish", "twice"), live.log())
    assert.are.equal(1, H.count_plain(live.log(), "publish live/twice refused: already publishing"), live.log())
    assert.is_false(c.closed)
    c:close()
  end)

  it("lets a live.lua publish hook wait without losing what ffmpeg sends meanwhile", function()
    local script = H.tmpname("slow-hook") .. ".lua"
    H.write_file(script, table.concat({
      'local rtmp = require "rtmp"',
      'local live = require "live"',
      'live.hooks.on_publish = function(conn, app, name)',
      '  conn:log("info", "hook waits for %s", name)',
      '  rtmp.sleep(0.7)',
      '  conn:log("info", "hook accepts %s", name)',
      'end',
      'live.start()', "" }, "\n"))
    local live = H.luartmp_start{ script = script, log_level = "info" }
    local cut = H.tmpname("app-2s.flv")
    local rc, out = H.run(fmt("ffmpeg -nostdin -v error -i %s -t 2 -c copy -f flv -y %s", q(H.fixture_flv()), q(cut)), 30)
    assert.are.equal(0, rc, out)
    local sent = assert(H.probe(cut))
    local file = H.tmpname("app-wait.flv")
    local player = H.ffmpeg_play(live.url("live/w"), file, 4)
    assert(H.wait_until(function() return live.count("play", "w") > 0 end, 10), live.log())
    local pub = H.ffmpeg_publish(live.url("live/w"), cut)
    assert.are.equal(0, H.wait_exit(pub, 20), H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), H.output(player))
    local log = live.log()
    local waits, accepts, publish = log:find("hook waits for w", 1, true), log:find("hook accepts w", 1, true),
      log:find("publish live/w", 1, true)
    assert(waits and accepts and publish and waits < accepts and accepts < publish, log)
    local got = assert(H.probe(file))
    assert.are.equal(sent.video.frames, got.video and got.video.frames, "video frames played")
    assert.are.equal(sent.audio.frames, got.audio and got.audio.frames, "audio frames played")
  end)
end)
