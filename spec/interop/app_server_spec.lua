-- What rtmp.app gives every server on it (docs/APP.md) beyond the events:
-- app:listen on several addresses with the listen settings of the app's
-- config, ns:forward (a publishing stream fanned out in C, ended by the
-- app with the stream), and app.verdict (a server's own hooks, as
-- live.lua's).  Servers run as luartmp processes; luartmp's own client
-- (in this process) publishes, plays and reads what arrives.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local null = rtmp.null

-- An app server: one group every player joins; "fwd" publishers are
-- forwarded in C, any other publisher's media goes through on_media; a
-- data message "stopForward" ends its stream's forwarding.  The app's
-- config has a connect timeout of 0.5 s (the command line's default: 10).
-- arg[1]: a free port it tries to listen on together with one in use.
local SERVER = [[
local rtmp = require "rtmp"
local app = require "rtmp.app"
local g = rtmp.group()
local server = app.new{
  config = { connect_timeout = 0.5 },
  on_publish = function(conn, ns)
    if ns.name == "fwd" then ns:forward(g) end
  end,
  on_unpublish = function(conn, ns, reason) conn:log("info", "event on_unpublish %s sid=%d %s", ns.name, ns.id, reason) end,
  on_play = function(conn, ns)
    local ok, err = pcall(ns.forward, ns, g)
    conn:log("info", "forward on a play: %s", ok and "taken" or err)
    ns:defer(function() g:add(conn, ns.id) end)
  end,
  on_media = function(conn, ns, msg)
    conn:log("info", "event on_media %s %s", ns.name, msg.payload:sub(6))
    g:send(msg)
  end,
  on_data = function(conn, ns, msg)
    if msg.name == "stopForward" then ns:forward() end
  end,
}
local servers = { server:listen() }  -- each --listen
rtmp.log.info("listening on %d addresses", #servers)
local srv, err = server:listen{ listen = { "127.0.0.1:" .. arg[1], rtmp.options.listen[1] } }
rtmp.log.info("second listen: %s, %s", tostring(srv), tostring(err))
]]

-- live.lua with hooks of its own (called through app.verdict).
local LIVE = [[
local rtmp = require "rtmp"
local live = require "live"
local doomed = true
live.hooks.on_publish = function(conn, app, name)
  if name == "nokey" then return false, "no key" end
  if name == "doomed" and doomed then -- the first one's connection is closed while the hook waits; the hook says yes
    doomed = false
    rtmp.timer(0.2, function() conn:close("closed while the hook waited") end)
    rtmp.sleep(0.5)
  end
end
live.hooks.on_play = function(conn, app, name)
  if name == "gone" then return false, "gone for good", "NetStream.Play.Failed" end
end
live.start()
]]

-- luartmp running `code`, listening on its port and on a second one.
local function start(name, code, args)
  local script = H.tmpname(name) .. ".lua"
  H.write_file(script, code)
  local second = H.free_port()
  local srv = H.luartmp_start{ script = script, log_level = "info", args = args,
                               extra = { "--listen", "127.0.0.1:" .. second } }
  assert(H.wait_port(second, 10, srv.proc))
  srv.url2 = function(path) return string.format("rtmp://127.0.0.1:%d/%s", second, path) end
  return srv
end

-- The info object of the onStatus `code` client c gets (within 5 s).
local function status_of(c, code)
  local m = c:wait(function() return c:find{ name = "onStatus", code = code } end, 5)
  return assert(m, "no " .. code .. " among " .. table.concat(c:status_codes(), ", ")).args[2]
end

-- A new stream of client c that plays or publishes `name`, once started.
local function open(c, role, name)
  local sid = c:create_stream()
  c[role](c, sid, name)
  status_of(c, role == "play" and "NetStream.Play.Start" or "NetStream.Publish.Start")
  return sid
end

-- A video message (inter frame, AVC NALU) whose payload ends with `tag`.
local function video(c, sid, tag)
  assert(c.conn:send({ type = "video", stream = sid }, "\39\1\0\0\0" .. tag))
end

local function got_video(c, tag)
  for _, m in ipairs(c.msgs) do
    if m.type == 9 and m.payload == "\39\1\0\0\0" .. tag then return m end
  end
end

describe("rtmp.app servers", function()
  after_each(function() H.cleanup() end)

  it("listen on each address with the config's settings; ns:forward fans out in C until the stream ends", function()
    local busy = H.free_port()
    local srv = start("app-server", SERVER, { tostring(busy) })
    assert(C.wait_until(function() return srv.log():find("second listen", 1, true) end, 5), srv.log())
    local log = srv.log()
    assert.truthy(log:find("listening on 2 addresses", 1, true), log)
    -- a list with an address in use: nil, err, and the address before it closed again
    assert.truthy(log:find("second listen: nil, ", 1, true), log)
    assert.is_false(H.port_listening(busy), "the first address of a failed listen is closed again")

    -- the config's connect_timeout (0.5 s) closes a connection that sends no connect
    local raw = H.raw_send(srv.port, "", { handshake = true, wait = 4 })
    assert.is_true(raw.handshake_ok, raw.out)
    assert.is_true(raw.closed, raw.out)
    assert.is_true(raw.elapsed < 3, "closed after " .. raw.elapsed .. " s")
    assert(C.wait_until(function() return srv.log():find("close: connect timeout", 1, true) end, 5), srv.log())

    local pub = C.connect(srv.url("app"))
    local player = C.connect(srv.url2("app"))  -- the second address serves the same app
    open(player, "play", "any")
    assert.truthy(srv.log():find("forward on a play: .*not a publishing stream"), srv.log())

    local s1 = open(pub, "publish", "fwd")
    video(pub, s1, "A")
    assert(player:wait(function() return got_video(player, "A") end, 5), "the player got A")
    -- ns:forward() ends it: the next frame goes through on_media
    pub.conn:data({ stream = s1, csid = 4 }, "stopForward")
    video(pub, s1, "B")
    assert(player:wait(function() return got_video(player, "B") end, 5), "the player got B")

    -- a second forwarded stream: closeStream ends its forwarding with it
    local s2 = pub:create_stream()
    pub:publish(s2, "fwd")
    assert(pub:wait(function()
      local n = 0
      for _, c in ipairs(pub:status_codes()) do if c == "NetStream.Publish.Start" then n = n + 1 end end
      return n == 2
    end, 5), table.concat(pub:status_codes(), ", "))
    video(pub, s2, "C")
    assert(player:wait(function() return got_video(player, "C") end, 5), "the player got C")
    pub.conn:command({ stream = s2, csid = 8 }, "closeStream", 0, null)
    video(pub, s2, "D")
    video(pub, s1, "E")  -- after D on the same connection: once E is there, D had its chance
    assert(player:wait(function() return got_video(player, "E") end, 5), "the player got E")
    assert.is_nil(got_video(player, "D"), "media of a closed stream is not forwarded")

    pub:close()
    player:close()
    log = srv.log()
    assert.truthy(log:find("event on_unpublish fwd sid=2 closeStream", 1, true), log)
    -- forwarded frames never reached Lua; the others did
    assert.is_nil(log:find("event on_media fwd A", 1, true), log)
    assert.is_nil(log:find("event on_media fwd C", 1, true), log)
    assert.is_nil(log:find("event on_media fwd D", 1, true), log)
    assert.truthy(log:find("event on_media fwd B", 1, true), log)
    assert.truthy(log:find("event on_media fwd E", 1, true), log)
  end)

  it("live.lua: hooks refuse through app.verdict, a close while one waits refuses, every --listen serves", function()
    local srv = start("live-hooks", LIVE)

    local c = C.connect(srv.url2("live"))
    local sid = c:create_stream()
    c:publish(sid, "nokey")
    assert.are.equal("no key", status_of(c, "NetStream.Publish.Denied").description)
    sid = c:create_stream()
    c:play(sid, "gone")
    assert.are.equal("gone for good", status_of(c, "NetStream.Play.Failed").description)

    -- a publisher whose connection closes while the hook waits never becomes
    -- the publisher: the next one of the name is not refused
    local doomed = C.connect(srv.url("live"))
    doomed:publish(doomed:create_stream(), "doomed")
    assert(doomed:wait(function() return doomed.closed end, 5), "the server closed it")
    C.wait_until(function() return false end, 0.5)  -- past the hook's wait
    local pub = C.connect(srv.url("live"))
    local ps = open(pub, "publish", "doomed")
    assert.are.equal(1, srv.count("publish", "doomed"), srv.log())

    -- the publisher on the first address, a player on the second
    local player = C.connect(srv.url2("live"))
    open(player, "play", "doomed")
    video(pub, ps, "F")
    assert(player:wait(function() return got_video(player, "F") end, 5), "the player got F")
    pub:close()
    player:close()
    c:close()
  end)

  it("live.lua with takeover: a name taken by another stream of its connection gets no more media from the old one", function()
    local srv = H.luartmp_start{ script = "spec/interop/takeover.lua", log_level = "info" }
    local player = C.connect(srv.url("live"))
    open(player, "play", "twice")
    local pub = C.connect(srv.url("live"))
    local s1 = open(pub, "publish", "twice")
    video(pub, s1, "G")
    assert(player:wait(function() return got_video(player, "G") end, 5), "the player got G")
    local s2 = pub:create_stream()
    pub:publish(s2, "twice")
    assert(C.wait_until(function() return srv.count("publish", "twice") == 2 end, 5), srv.log())
    video(pub, s1, "H")  -- the old stream, still open
    video(pub, s2, "I")
    assert(player:wait(function() return got_video(player, "I") end, 5), "the player got I")
    assert.is_nil(got_video(player, "H"), "the replaced stream's media reached the player")
    assert.is_false(pub.closed)
    pub:close()
    player:close()
  end)
end)
