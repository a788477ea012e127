-- Hooks that wait (docs/APP.md, "Events that wait"): a deciding event
-- past hook_timeout is decided by hook_timeout_verdict, nothing is sent
-- before the decision, the publisher's input is held with a bound (reading
-- paused: the kernel's socket buffers), and a connection that closes while
-- its hook waits cancels the hook and the HTTP request it waits on.
-- luartmp's own client (in this process) reads the replies on the wire.
local H = require "support.helpers"
local C = require "support.client"
local HS = require "support.http"
local rtmp = require "rtmp"

local fmt = string.format
local null = rtmp.null

-- A server on rtmp.app whose on_publish / on_play wait `wait` seconds
-- (names: "sleepy" sleeps; "web" asks the slow HTTP server), counting the
-- media it gets; config from the arguments.
local SERVER = [[
local rtmp = require "rtmp"
local app = require "rtmp.app"
local timeout, verdict, wait, web = ...
local media = 0
local server = app.new{
  config = { hook_timeout = tonumber(timeout), hook_timeout_verdict = verdict, recv_buffer = 65536 },
  on_publish = function(conn, ns)
    conn:log("info", "hook waits for %s (bytes_in %d)", ns.name, conn.bytes_in)
    if ns.name == "web" then
      local res, err = rtmp.http.request{ url = web, timeout = 30 }
      conn:log("info", "hook got its answer for %s: %s", ns.name, tostring(res and res.status or err))
    else
      rtmp.sleep(tonumber(wait))
    end
    conn:log("info", "hook returns for %s (bytes_in %d)", ns.name, conn.bytes_in)
  end,
  on_play = function(conn, ns)
    conn:log("info", "hook waits for play %s", ns.name)
    rtmp.sleep(tonumber(wait))
    conn:log("info", "hook returns for play %s", ns.name)
  end,
  on_media = function(conn, ns, msg) media = media + 1 end,
  on_unpublish = function(conn, ns) conn:log("info", "media received %d", media) end,
  on_close = function(conn, reason)
    conn:log("info", "closed; http requests in flight %d", rtmp.http.pending())
  end,
}
server:listen()
]]

local function start(timeout, verdict, wait, web)
  local script = H.tmpname("hook-timeout") .. ".lua"
  H.write_file(script, SERVER)
  return H.luartmp_start{ script = script, log_level = "debug",
    args = { tostring(timeout), verdict, tostring(wait), web or "" } }
end

-- The first onStatus on stream sid.
local function first_status(c, sid)
  return c:wait(function() return c:find{ name = "onStatus", stream = sid } end, 10)
end

-- A client that sends cmd ("publish", "play") of name: the first onStatus
-- it gets, how long after the command, and the client.
local function ask(srv, cmd, name)
  local c = C.connect(srv.url("live"))
  local sid = c:create_stream()
  local t0 = rtmp.now()
  c[cmd](c, sid, name)
  local m = first_status(c, sid)
  assert(m, "no onStatus: " .. srv.log())
  return m, rtmp.now() - t0, c
end

describe("hook_timeout", function()
  after_each(function() H.cleanup() end)

  it("refuses (fail closed, the default) a publish whose hook has not returned, and nothing comes before", function()
    local srv = start(1, "refuse", 3)
    local m, took, c = ask(srv, "publish", "sleepy")
    assert.is_true(took >= 0.9, "the decision came after the timeout, not at " .. took)
    assert.is_true(took < 2.5, "the decision came at the timeout, not at " .. took)
    assert.are.equal("NetStream.Publish.Denied", m.args[2].code)
    assert.are.equal("on_publish did not decide within 1 s", m.args[2].description)
    assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Publish.Start" })
    -- the hook was cancelled: it never goes on after its sleep
    c:wait(function() return false end, 2.5)
    local log = srv.log()
    assert.truthy(log:find("conn=%d+ peer=[%d.:]+ on_publish did not return within 1 s: refused " ..
      "%(hook_timeout_verdict = refuse%)"), log)
    assert.is_nil(log:find("hook returns for sleepy", 1, true), log)
    assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Publish.Start" })
    assert.is_false(c.closed, "a refusal by status leaves the connection open")
    c:close()
  end)

  it("allows a publish (hook_timeout_verdict = allow) and refuses a play the same way, at the timeout", function()
    for _, case in ipairs{
      { "allow", "publish", "NetStream.Publish.Start", nil, "on_publish did not return within 1 s: allowed" },
      { "refuse", "play", "NetStream.Play.StreamNotFound", "on_play did not decide within 1 s",
        "on_play did not return within 1 s: refused" },
    } do
      local verdict, cmd, code, description, line = table.unpack(case, 1, 5)
      local srv = start(1, verdict, 3)
      local m, took, c = ask(srv, cmd, "sleepy")
      assert.are.equal(code, m.args[2].code)
      assert.are.equal(description, description and m.args[2].description)
      assert.is_true(took >= 0.9 and took < 2.5, "decided at " .. took)
      assert.is_nil(c:find{ name = "onStatus", code = "NetStream.Play.Start" })
      assert.truthy(srv.log():find(line .. " (hook_timeout_verdict = " .. verdict .. ")", 1, true), srv.log())
      c:close()
    end
  end)

  it("a hook that returns in time decides as before", function()
    local srv = start(2, "refuse", 0.5)
    local m, _, c = ask(srv, "publish", "sleepy")
    assert.are.equal("NetStream.Publish.Start", m.args[2].code)
    c:wait(function() return false end, 2.2)
    assert.is_nil(srv.log():find("did not return", 1, true), srv.log())
    c:close()
  end)

  it("holds a pipelining publisher's media while the hook waits: reading paused, bounded, nothing lost", function()
    local srv = start(10, "refuse", 2)
    -- a client that sends its media right after publish, without waiting
    -- for Publish.Start, and more than the kernel's buffers hold
    local c = C.connect(srv.url("live"), {})
    local sid = c:create_stream()
    local frame = string.rep("\7", 50 * 1024)
    local n = 300 -- 15 MB
    c:publish(sid, "sleepy")
    c.conn:send({ type = "video", stream = sid, timestamp = 0 }, "\23\0\0\0\0\1\2\3\4")
    for i = 1, n do
      assert(c.conn:send({ type = "video", stream = sid, timestamp = i * 40 },
        (i == 1 and "\23\1\0\0\0" or "\39\1\0\0\0") .. frame))
    end
    local total = c.conn.pending
    assert.is_true(total > 15e6, "queued " .. total)
    -- while the hook sleeps, the server reads almost nothing of it
    c:wait(function() return false end, 1.5)
    local taken = c.conn.bytes_out
    local log = srv.log()
    local before, after
    assert(c:wait(function()
      log = srv.log()
      before = tonumber(log:match("hook waits for sleepy %(bytes_in (%d+)%)"))
      after = tonumber(log:match("hook returns for sleepy %(bytes_in (%d+)%)"))
      return before and after
    end, 5), log)
    assert.is_true(taken < total / 3, fmt("the socket took %d of %d bytes while the hook waited", taken, total))
    -- the server read at most one more read buffer (64 KiB) after pausing
    assert.is_true(after - before <= 65536, fmt("read while paused: %d bytes", after - before))
    local held = tonumber(log:match("(%d+) messages %(%d+ bytes%) held while an event waited"))
    local held_bytes = tonumber(log:match("%d+ messages %((%d+) bytes%) held while an event waited"))
    assert(held and held_bytes, log)
    assert.is_true(held_bytes <= 65536, "held " .. held_bytes .. " bytes")
    -- then everything arrives, in order
    local m = first_status(c, sid)
    assert.are.equal("NetStream.Publish.Start", m.args[2].code)
    assert(c:wait(function() return c.conn.pending == 0 end, 20), "the rest was not taken")
    c.conn:command({ stream = sid, csid = 8 }, "closeStream", 0, null)
    assert(c:wait(function() return srv.log():find("media received", 1, true) end, 10), srv.log())
    assert.are.equal(n + 1, tonumber(srv.log():match("media received (%d+)")))
    c:close()
  end)

  it("a connection that closes while its hook waits cancels the hook and its HTTP request", function()
    local web = HS.start()
    local srv = start(20, "refuse", 0, web.url("/slow?delay=6"))
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:publish(sid, "web")
    assert(C.wait_until(function() return #web.requests() == 1 end, 5), srv.log())
    c:close()
    assert(C.wait_until(function() return srv.log():find("closed; http requests in flight", 1, true) end, 5))
    local log = srv.log()
    assert.truthy(log:find("conn=%d+ on_publish cancelled: the connection closed"), log)
    assert.are.equal("0", log:match("closed; http requests in flight (%d+)"), log)
    H.sleep(6.5) -- past the slow answer: nothing of the hook runs
    log = srv.log()
    assert.is_nil(log:find("hook got its answer", 1, true), log)
    assert.is_nil(log:find("script error", 1, true), log)
    assert.is_true(srv.alive())
  end)
end)
