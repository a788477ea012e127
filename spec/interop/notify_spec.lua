-- nginx-rtmp's notifications in the live server (scripts/notify.lua,
-- docs/NOTIFY.md), held to nginx-rtmp itself: the same authorisation
-- backend (spec/support/http_server.py: a key checked in the stream's
-- query string, every POST recorded) behind real nginx-rtmp
-- (libnginx-mod-rtmp, notify_method post) and behind luartmp, the same
-- ffmpeg actions against each, and the recorded notifications compared
-- field by field; redirects, update refusals and record_done against
-- both; a slow backend that holds only the stream it decides.
local H = require "support.helpers"
local C = require "support.client"
local HS = require "support.http"
local rtmp = require "rtmp"

local fmt, q = string.format, H.shquote

local KINDS = { "nginx-rtmp", "luartmp" }
local ALL = { "on_connect", "on_disconnect", "on_publish", "on_play", "on_publish_done", "on_play_done", "on_done",
              "on_update" }
local SRV_EVENTS = { on_connect = true, on_disconnect = true } -- nginx-rtmp: server{}, the rest application{}
local SLACK = 2 -- video frames still in flight when a publisher leaves (relay_spec.lua, live_spec.lua)

local abs = H.abspath

-- A 2 s cut of the fixture and its frame counts.
local short
local function short_file()
  if short then return short end
  local path = H.tmpname("notify-2s.flv")
  local rc, out = H.run(fmt("ffmpeg -nostdin -v error -i %s -t 2 -c copy -f flv -y %s", q(H.fixture_flv()), q(path)))
  assert(rc == 0, out)
  local info = assert(H.probe(path))
  short = { path = path, video = info.video.frames, audio = info.audio.frames }
  return short
end

local LIVE = [[
local live = require "live"
local update, record_dir, method = ...
live.config.notify_update_timeout = tonumber(update)
if record_dir ~= "" then live.config.record_dir = record_dir end
live.start{ notify_method = method }
]]

-- A server of `kind` sending each of o.events (default ALL) to url: nginx
-- with notify's directives, luartmp's live.lua with --notify EVENT=URL.
-- o.update: notify_update_timeout (s, default 1); o.record_dir.
local function start(kind, url, o)
  o = o or {}
  local events = o.events or ALL
  if kind == "nginx-rtmp" then
    local server, live = { "notify_method post;" }, {}
    for _, e in ipairs(events) do
      local line = fmt("%s %s;", e, url)
      if SRV_EVENTS[e] then server[#server + 1] = line else live[#live + 1] = line end
    end
    live[#live + 1] = fmt("notify_update_timeout %ds;", o.update or 1)
    if o.record_dir then
      H.mkdir(o.record_dir)
      live[#live + 1] = "record all;"
      live[#live + 1] = fmt("record_path %s;", abs(o.record_dir))
    end
    return H.nginx_start{ server = server, live = live }
  end
  local script = H.tmpname("notify-live") .. ".lua"
  H.write_file(script, LIVE)
  local extra = {}
  for _, e in ipairs(events) do
    extra[#extra + 1] = "--notify"
    extra[#extra + 1] = e .. "=" .. url
  end
  return H.luartmp_start{ script = script, log_level = "info", extra = extra,
    args = { tostring(o.update or 1), o.record_dir or "", o.method or "post" } }
end

-- The recorded notifications whose call is `call` (all without).
local function calls(web, call)
  local t = {}
  for _, r in ipairs(web.requests()) do
    if not call or HS.fields(r).call == call then t[#t + 1] = r end
  end
  return t
end

-- A notification as comparable text: its fields in order, the values that
-- depend on the run (connection numbers, clocks, the server's port, a
-- recording's path) replaced.
local VARIES = { clientid = true, epoch = true, time = true, timestamp = true, path = true }
local function canon(r)
  local parts = {}
  for _, f in ipairs(r.fields) do
    local k, v = f[1], f[2]
    if VARIES[k] then v = "*" end
    if k == "tcurl" then v = v:gsub(":%d+/", ":PORT/") end
    parts[#parts + 1] = k .. "=" .. v
  end
  return r.method .. " " .. tostring(r.headers["content-type"]) .. " " .. table.concat(parts, "&")
end

local function sorted(list)
  table.sort(list)
  return list
end

-- Whether the FLV `out` a player wrote has at least `want` video frames.
local function assert_frames(label, out, want, of)
  local info = H.probe(out)
  local got = info and info.video and info.video.frames or 0
  assert(got >= want, fmt("%s: %d of %d video frames", label, got, of))
end

-- Play `play_url` into a file, wait for `ready()`, publish the short
-- media to `pub_url`; both end well and the player got `want` frames.
local function play_while_publishing(label, play_url, ready, pub_url, want)
  local m = short_file()
  local out = H.tmpname("notify-relayed.flv")
  local player = H.ffmpeg_play(play_url, out, 4)
  assert(H.wait_until(ready, 10), label .. ": not ready to publish")
  local pub = H.ffmpeg_publish(pub_url, m.path)
  assert.are.equal(0, H.wait_exit(pub, 30), H.output(pub))
  assert.are.equal(0, H.wait_exit(player, 30), H.output(player))
  assert_frames(label, out, want, m.video)
end

describe("notify", function()
  after_each(function() H.cleanup() end)

  it("an auth backend written for nginx-rtmp works unchanged, and gets what nginx-rtmp sends", function()
    local m = short_file()
    local seen = {}
    for _, kind in ipairs(KINDS) do
      local web = HS.start{ key = "s3cret" }
      local srv = start(kind, web.url("/notify"))
      -- a player first (right key), then the publisher (right key)
      local out = H.tmpname("notify-play.flv")
      local player = H.ffmpeg_play(srv.url("live/cam?key=s3cret&x=1"), out, 3)
      assert(H.wait_until(function() return #calls(web, "play") == 1 end, 10), kind .. ": no play notification")
      local pub = H.ffmpeg_publish(srv.url("live/cam?key=s3cret&x=1"), m.path)
      assert.are.equal(0, H.wait_exit(pub, 30), kind .. ": " .. H.output(pub))
      assert.are.equal(0, H.wait_exit(player, 30), kind .. ": " .. H.output(player))
      assert_frames(kind .. " player", out, m.video - SLACK, m.video)
      -- a wrong key: the connection is closed (ffmpeg fails)
      local bad = H.ffmpeg_publish(srv.url("live/cam?key=bad"), m.path)
      assert.are_not.equal(0, H.wait_exit(bad, 20), kind .. ": a publish with a wrong key went through")
      local badplay = H.ffmpeg_play(srv.url("live/cam?key=bad"), H.tmpname("notify-bad.flv"), 2)
      assert.are_not.equal(0, H.wait_exit(badplay, 20), kind .. ": a play with a wrong key went through")
      -- four connections: each ends with its disconnect
      assert(H.wait_until(function() return #calls(web, "disconnect") == 4 end, 10),
        kind .. ": " .. #calls(web, "disconnect") .. " disconnects")
      H.sleep(0.5)
      local rec = { all = {}, updates = {}, count = {} }
      for _, r in ipairs(web.requests()) do
        local call = HS.fields(r).call
        rec.count[call] = (rec.count[call] or 0) + 1
        if call:find("^update") then rec.updates[canon(r)] = true else rec.all[#rec.all + 1] = canon(r) end
      end
      seen[kind] = rec
      srv.stop()
    end
    local ngx, lr = seen["nginx-rtmp"], seen["luartmp"]
    -- what nginx-rtmp sent: the reference
    for call, n in pairs{ connect = 4, play = 2, publish = 2, publish_done = 1, play_done = 1, done = 2,
                          disconnect = 4 } do
      assert.are.equal(n, ngx.count[call], "nginx-rtmp " .. call)
      assert.are.equal(n, lr.count[call], "luartmp " .. call)
    end
    assert.are.same(sorted(ngx.all), sorted(lr.all))
    local nu, lu = {}, {}
    for k in pairs(ngx.updates) do nu[#nu + 1] = k end
    for k in pairs(lr.updates) do lu[#lu + 1] = k end
    assert.are.same(sorted(nu), sorted(lu))
    assert.are.equal(2, #lu, "update_publish and update_play: " .. table.concat(lu, "\n"))
    -- a sample of what they are, spelt out
    local publish = "POST application/x-www-form-urlencoded app=live&flashver=FMLE/3.0 (compatible; Lavf"
    local found = false
    for _, r in ipairs(lr.all) do
      if r:find(publish, 1, true) and r:find("&clientid=*&call=publish&name=cam&type=live&key=s3cret&x=1", 1, true) then
        found = true
      end
    end
    assert.is_true(found, table.concat(lr.all, "\n"))
  end)

  it("a refused publish or play closes the connection with no status, as nginx-rtmp does", function()
    for _, kind in ipairs(KINDS) do
      local web = HS.start{ key = "s3cret" }
      local srv = start(kind, web.url("/notify"), { events = { "on_publish", "on_play" } })
      for _, cmd in ipairs{ "publish", "play" } do
        local c = C.connect(srv.url("live"))
        local sid = c:create_stream()
        c[cmd](c, sid, "cam?key=nope")
        assert(c:wait(function() return c.closed end, 10), kind .. " " .. cmd .. ": not closed")
        assert.are.same({}, c:status_codes(), kind .. " " .. cmd)
      end
      assert.are.equal(1, #calls(web, "publish"))
      assert.are.equal(1, #calls(web, "play"))
    end
  end)

  it("a 3xx to rtmp:// pushes a publish there and pulls a play from there; another Location renames", function()
    local m = short_file()
    for _, kind in ipairs(KINDS) do
      -- luartmp's relays lose nothing (a push starts with the cache); the
      -- test asks nginx-rtmp only that its redirect took effect: its push
      -- starts with what comes after the relay connected
      local relayed = kind == "luartmp" and m.video - SLACK or 1
      local origin = H.luartmp_start{ log_level = "info" }
      local web = HS.start{ key = "s3cret", redirect = {
        pushme = origin.url("live/pushed"), pullme = origin.url("live/src"), renamed = "other" } }
      local srv = start(kind, web.url("/notify"), { events = { "on_publish", "on_play" } })
      -- publish redirect: pushed to the origin
      play_while_publishing(kind .. " push", origin.url("live/pushed"),
        function() return origin.count("play", "pushed") > 0 end, srv.url("live/pushme?key=s3cret"), relayed)
      -- play redirect: pulled from the origin
      play_while_publishing(kind .. " pull", srv.url("live/pullme?key=s3cret"),
        function() return origin.count("play", "src") > 0 end, origin.url("live/src"), relayed)
      -- a Location that is no rtmp:// URL: the stream's new name
      play_while_publishing(kind .. " rename", srv.url("live/other?key=s3cret"), function()
        for _, r in ipairs(calls(web, "play")) do if HS.fields(r).name == "other" then return true end end
      end, srv.url("live/renamed?key=s3cret"), m.video - SLACK)
      srv.stop()
      origin.stop()
    end
  end)

  it("an on_update the backend refuses closes the stream's connection", function()
    for _, kind in ipairs(KINDS) do
      local web = HS.start{ key = "s3cret", refuse_update = "cut" }
      local srv = start(kind, web.url("/notify"), { events = { "on_publish", "on_update" }, update = 1 })
      local t0 = H.now()
      local pub = H.ffmpeg_publish(srv.url("live/cut?key=s3cret"))  -- 8 s of media
      local rc = H.wait_exit(pub, 20)
      assert.are_not.equal(0, rc, kind .. ": the publisher was not cut off")
      assert.is_true(H.now() - t0 < 5, kind .. ": cut off after " .. (H.now() - t0) .. " s")
      local up = calls(web, "update_publish")
      assert.are.equal(1, #up, kind)
      local f = HS.fields(up[1])
      assert.are.equal("cut", f.name)
      assert.are.equal("1", f.time)
      assert.truthy(tonumber(f.timestamp) > 0, kind .. ": timestamp " .. f.timestamp)
    end
  end)

  it("on_record_done: the recording's path, with the fields nginx-rtmp sends", function()
    local m = short_file()
    local names = {}
    for _, kind in ipairs(KINDS) do
      local web = HS.start{ key = "s3cret" }
      local dir = H.mkdir(H.tmpname("notify-rec"))
      local srv = start(kind, web.url("/notify"), { events = { "on_record_done" }, record_dir = dir })
      local url = srv.url("live/rec?key=s3cret")
      -- nginx-rtmp records every stream (record all); luartmp one published with type record
      local pub = kind == "nginx-rtmp" and H.ffmpeg_publish(url, m.path)
        or H.spawn(fmt("%s scripts/client/publish.lua --type record %s %s", q(H.luartmp), q(m.path), q(url)),
                   { name = "publish-lua" })
      assert.are.equal(0, H.wait_exit(pub, 30), H.output(pub))
      assert(H.wait_until(function() return #calls(web, "record_done") == 1 end, 10), kind .. ": no record_done")
      local r = calls(web, "record_done")[1]
      local f, order = HS.fields(r)
      names[kind] = table.concat(order, ",")
      assert.are.equal("rec", f.name)
      assert.are.equal("", f.recorder)
      assert.are.equal("s3cret", f.key)
      assert.truthy(f.path:find("rec%.flv$"), f.path)
      assert_frames(kind .. " recording " .. f.path, f.path, m.video - SLACK, m.video)
    end
    assert.are.equal(names["nginx-rtmp"], names["luartmp"])
    assert.are.equal("app,flashver,swfurl,tcurl,pageurl,addr,clientid,call,recorder,name,path,key", names.luartmp)
  end)

  it("a slow backend holds only the publish it decides: a player of another stream keeps receiving", function()
    local web = HS.start()
    local srv = start("luartmp", web.url("/slow?delay=2"), { events = { "on_publish" } })
    H.ffmpeg_publish(srv.url("live/a"))
    assert(H.wait_until(function() return srv.count("publish", "a") > 0 end, 10), srv.log())
    local c = C.player(srv.url("live"), "a")
    local function video() return c:count{ type = 9 } end
    local b = C.connect(srv.url("live"))
    local bsid = b:create_stream()
    local before, t0 = video(), rtmp.now()
    b:publish(bsid, "b")
    assert(b:wait(function() return b:find{ name = "onStatus", code = "NetStream.Publish.Start" } end, 10),
      srv.log())
    local waited, during = rtmp.now() - t0, video() - before
    assert.is_true(waited >= 1.9, "the publish waited " .. waited .. " s")
    assert.is_true(during >= 40, "the other stream's player got " .. during .. " frames meanwhile")
    b:close()
    c:close()
  end)

  it("notify_method get: the same fields in the query string", function()
    local web = HS.start{ key = "s3cret" }
    local srv = start("luartmp", web.url("/notify?from=luartmp"), { events = { "on_publish" }, method = "get" })
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:publish(sid, "cam?key=s3cret")
    assert(c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Publish.Start" } end, 10))
    local r = web.requests()[1]
    assert.are.equal("GET", r.method)
    assert.are.equal("", r.body)
    local f, order = HS.fields(r)
    assert.are.equal("from,app,flashver,swfurl,tcurl,pageurl,addr,clientid,call,name,type,key", table.concat(order, ","))
    assert.are.equal("publish", f.call)
    assert.are.equal("s3cret", f.key)
    c:close()
  end)

  it("nothing is sent while no event has a URL; after a reload gives one, a connection from before is "
    .. "sent with its app and gets no on_disconnect", function()
    local web = HS.start()
    local srv = H.live_applied_on_reload("notify-later", [[
      local url = ...
      live.config.notify = { on_connect = url, on_publish = url, on_publish_done = url, on_done = url,
                             on_disconnect = url }
    ]], { web.url("/notify") })
    local function started(c)
      return c:wait(function() return c:find{ name = "onStatus", code = "NetStream.Publish.Start" } end, 10)
    end
    -- no URL: a publish goes through (and nothing is sent for it: the list below)
    local a = C.connect(srv.url("live"))
    a:publish(a:create_stream(), "before")
    assert(started(a), srv.log())
    local b = C.connect(srv.url("live"))
    local bsid = b:create_stream()
    srv.apply_by_reload()
    -- b connected before the reload and publishes after it; c connects after it
    b:publish(bsid, "after")
    assert(started(b), srv.log())
    local c = C.connect(srv.url("live"))
    c:publish(c:create_stream(), "new")
    assert(started(c), srv.log())
    a:close()
    b:close()
    c:close()
    assert(H.wait_until(function() return #calls(web, "disconnect") == 1 end, 10), srv.log())
    H.sleep(0.3)
    local got = {}
    for _, r in ipairs(web.requests()) do
      local f = HS.fields(r)
      got[#got + 1] = fmt("%s %s app=%s flashver=%s tcurl=%s", f.call, f.name or "-", f.app, f.flashver,
        f.tcurl and (f.tcurl:gsub(":%d+/", ":PORT/")) or "-")
    end
    table.sort(got)
    local tc = "rtmp://127.0.0.1:PORT/live"
    assert.are.same(sorted{
      "connect - app=live flashver=LNX 9,0,124,2 tcurl=" .. tc,
      "publish after app=live flashver= tcurl=",                 -- connected before: its app, nothing else
      "publish new app=live flashver=LNX 9,0,124,2 tcurl=" .. tc,
      "publish_done after app=live flashver= tcurl=",
      "publish_done new app=live flashver=LNX 9,0,124,2 tcurl=" .. tc,
      "done after app=live flashver= tcurl=",
      "done new app=live flashver=LNX 9,0,124,2 tcurl=" .. tc,
      "disconnect - app=live flashver=LNX 9,0,124,2 tcurl=" .. tc, -- c only: a and b connected before
    }, got)
  end)

  it("--notify takes EVENT=URL, repeatable; anything else stops luartmp with a clear message", function()
    for _, bad in ipairs{ "bogus=http://127.0.0.1/x", "on_publish", "on_publish=" } do
      local rc, out = H.run(fmt("%s --notify %s scripts/live.lua", q(H.luartmp), q(bad)), 10)
      assert.are_not.equal(0, rc, bad)
      assert.truthy(out:find("--notify " .. bad .. ": want EVENT=URL, EVENT one of on_connect", 1, true)
        or out:find("bad --notify", 1, true), out)
    end
  end)
end)
