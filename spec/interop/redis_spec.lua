-- rtmp.redis (docs/REDIS.md): hiredis on luartmp's loop against a real
-- redis-server started by the test (spec/support/redis.lua): the replies a
-- script gets, what redis-cli sees of what it wrote, commands from several
-- coroutines at once, and the failures: Redis down, killed and restarted,
-- a command past its timeout, a coroutine closed while it waits.
local H = require "support.helpers"
local C = require "support.client"
local R = require "support.redis"
local rtmp = require "rtmp"

local fmt = string.format
local null = rtmp.redis.null

local run = C.run

local clients = {}
local function connect(url, opts)
  local r, err = rtmp.redis.connect(url, opts)
  if r then clients[#clients + 1] = r end
  return r, err
end

local function connected(r, timeout)
  return C.wait_until(function() return r:connected() end, timeout or 5)
end

describe("rtmp.redis", function()
  local srv

  after_each(function()
    for _, r in ipairs(clients) do
      assert.are.equal(0, r:pending(), "commands left in flight")
      r:close()
    end
    clients = {}
    H.cleanup()
  end)

  describe("against a running server", function()
    before_each(function() srv = R.start{ debug = true } end)

    it("resolves a host name once, when the client is made; one that does not resolve is nil, err", function()
      local r = assert(connect(fmt("redis://localhost:%d", srv.port)))
      assert(connected(r))
      assert.are.equal(fmt("localhost:%d", srv.port), r:address())
      assert.are.equal("PONG", run(function() return r:command("PING") end))
      local bad, err = connect("redis://no-such-host.invalid:6379")
      assert.is_nil(bad)
      assert.truthy(err:find("cannot resolve Redis host 'no-such-host.invalid'", 1, true), err)
    end)

    it("answers SET, GET, EXPIRE, TTL, DEL, INCR and MGET with Lua values", function()
      local r = assert(connect(srv.url, { name = "spec" }))
      assert.is_false(r:connected(), "connects in the background")
      assert(connected(r))
      assert.are.equal(fmt("127.0.0.1:%d", srv.port), r:address())
      run(function()
        assert.are.equal("OK", r:command("SET", "k", "v1", "EX", 100))
        assert.are.equal("v1", r:command("GET", "k"))
        assert.are.equal(1, r:command("EXPIRE", "k", 50))
        local ttl = r:command("TTL", "k")
        assert.are.equal("number", type(ttl))
        assert.is_true(math.type(ttl) == "integer" and ttl > 40 and ttl <= 50, tostring(ttl))
        assert.are.equal(1, r:command("INCR", "n"))
        assert.are.equal(5, r:command("INCRBY", "n", 4))
        local bytes = "a\0b\r\n" .. string.rep("\255", 3000)
        assert.are.equal("OK", r:command("SET", "bin", bytes))
        assert.are.equal(bytes, r:command("GET", "bin"), "binary-safe both ways")
        local v = r:command("MGET", "k", "missing", "n")
        assert.are.same({ "v1", null, "5" }, v)
        assert.are.equal(3, #v, "a nil element keeps the array's length")
        assert.are.equal(null, r:command("GET", "missing"))
        assert.are.equal("rtmp.redis.null", tostring(null))
        assert.are.equal(1, r:command("DEL", "k"))
        assert.are.equal(0, r:command("DEL", "k"))
        assert.are.same({}, r:command("KEYS", "nothing:*"))
        assert.are.equal("PONG", r:command("PING"))
        assert.are.equal(2, r:command("RPUSH", "list", 1.5, 7))
        assert.are.same({ "1.5", "7" }, r:command("LRANGE", "list", 0, -1))
      end)
      -- what another client (redis-cli) sees of what we wrote
      assert.are.equal("", srv:cli("GET", "k"))
      assert.are.equal("5", srv:cli("GET", "n"))
      assert.are.equal("3005", srv:cli("STRLEN", "bin"))
      assert.are.equal("1.5\n7", srv:cli("LRANGE", "list", 0, -1))
      -- and we see what it wrote
      srv:cli("SET", "from-cli", "hello")
      assert.are.equal("hello", run(function() return r:command("GET", "from-cli") end))
    end)

    it("returns Redis's error replies as nil, the text, \"redis\", and goes on", function()
      local r = assert(connect(srv.url))
      assert(connected(r))
      run(function()
        assert.are.equal("OK", r:command("SET", "word", "abc"))
        local v, err, kind = r:command("INCR", "word")
        assert.is_nil(v)
        assert.are.equal("ERR value is not an integer or out of range", err)
        assert.are.equal("REDIS", kind)
        v, err, kind = r:command("GET")
        assert.is_nil(v)
        assert.truthy(err:find("^ERR wrong number of arguments"), err)
        assert.are.equal("REDIS", kind)
        v, err, kind = r:command("NOSUCHCOMMAND", "x")
        assert.is_nil(v)
        assert.truthy(err:find("^ERR unknown command"), err)
        -- an error inside an array (MULTI/EXEC): { false, text }
        assert.are.equal("OK", r:command("MULTI"))
        assert.are.equal("QUEUED", r:command("INCR", "word"))
        assert.are.equal("QUEUED", r:command("SET", "after", "1"))
        local res = r:command("EXEC")
        assert.are.same({ { false, "ERR value is not an integer or out of range" }, "OK" }, res)
        assert.are.equal("abc", r:command("GET", "word"), "the connection still works")
      end)
      assert.are.equal("1", srv:cli("GET", "after"))
    end)

    it("runs commands from several coroutines at once, each getting its own reply", function()
      local r = assert(connect(srv.url))
      assert(connected(r))
      local N, results, done = 30, {}, 0
      for i = 1, N do
        rtmp.spawn(function()
          local n = assert(r:command("INCR", "counter"))
          assert(r:command("SET", "key:" .. i, "value " .. i))
          results[i] = { n = n, v = r:command("GET", "key:" .. i) }
          done = done + 1
        end)
      end
      assert.are.equal(N, r:pending(), "all first commands in flight together")
      assert(C.wait_until(function() return done == N end, 5))
      local seen = {}
      for i = 1, N do
        assert.are.equal("value " .. i, results[i].v)
        assert.is_nil(seen[results[i].n], "each INCR answered once")
        seen[results[i].n] = true
        assert.is_true(results[i].n >= 1 and results[i].n <= N)
      end
      assert.are.equal(tostring(N), srv:cli("GET", "counter"))
      assert.are.equal("value 17", srv:cli("GET", "key:17"))
    end)

    it("ends a command past command_timeout with nil, \"timeout\", \"io\", and drops its late reply", function()
      local r = assert(connect(srv.url, { command_timeout = 0.3 }))
      assert(connected(r))
      run(function()
        assert.are.equal("OK", r:command("SET", "k", "kept"))
        local t0 = rtmp.now()
        local v, err, kind = r:command("DEBUG", "SLEEP", "1")
        local took = rtmp.now() - t0
        assert.is_nil(v)
        assert.are.equal("timeout", err)
        assert.are.equal("TIMEOUT", kind)
        assert.is_true(took >= 0.25 and took < 0.8, "took " .. took)
        -- a command behind the sleeping one waits as long, and times out too
        assert.are.same({ n = 3, nil, "timeout", "TIMEOUT" }, table.pack(r:command("GET", "k")))
        rtmp.sleep(1.1 - (rtmp.now() - t0))
        -- the late "OK" of DEBUG SLEEP (and "kept" of the GET) are not this GET's answer
        assert.are.equal("other", r:command("GET", "k2") == null and "other")
        assert.are.equal("kept", r:command("GET", "k"))
      end)
      assert.is_true(r:connected())
    end)

    it("drops the reply of a coroutine closed while it waits, and goes on", function()
      local r = assert(connect(srv.url))
      assert(connected(r))
      local after = false
      local co = coroutine.create(function()
        r:command("SET", "closed-while-waiting", "written")
        after = true
      end)
      assert(coroutine.resume(co))
      assert.are.equal("suspended", coroutine.status(co))
      assert.are.equal(1, r:pending())
      assert(coroutine.close(co))
      assert.are.equal(0, r:pending(), "closing the coroutine cancelled its command")
      -- the reply arrives later and is dropped; the loop and the client go on
      assert.are.equal("PONG", run(function() return r:command("PING") end))
      assert.is_false(after)
      assert.are.equal("written", srv:cli("GET", "closed-while-waiting"), "the command itself was sent")
    end)

    it("ends the commands in flight with \"closed\" when the client closes", function()
      local r = assert(connect(srv.url))
      assert(connected(r))
      local got = {}
      for i = 1, 3 do
        rtmp.spawn(function() got[i] = table.pack(r:command("GET", "x")) end)
      end
      r:close()
      for i = 1, 3 do
        assert.are.same({ n = 3, nil, "closed", "CLOSED" }, got[i])
      end
      assert.is_false(r:connected())
      assert.are.same({ n = 3, nil, "closed", "CLOSED" }, table.pack(run(function() return r:command("GET", "x") end)))
      r:close() -- again: nothing
    end)

    it("runs on_connect at once when already connected, and selects the URL's database", function()
      local r = assert(connect(srv.url .. "/3"))
      assert(connected(r))
      local calls = {}
      r:on_connect(function(c) calls[#calls + 1] = c == r and c:connected() end)
      assert.are.same({ true }, calls)
      run(function() assert.are.equal("OK", r:command("SET", "in-db3", "yes")) end)
      assert.are.equal("", srv:cli("GET", "in-db3"))
      assert.are.equal("yes", srv:cli("-n", 3, "GET", "in-db3"))
    end)
  end)

  it("authenticates with the URL's password, and says why a wrong one fails", function()
    srv = R.start{ password = "s3cret" }
    local r = assert(connect(srv.url))
    assert(connected(r))
    run(function() assert.are.equal("OK", r:command("SET", "auth", "ok")) end)
    assert.are.equal("ok", srv:cli("GET", "auth"))
    local bad = assert(connect(fmt("redis://:wrong@127.0.0.1:%d", srv.port), { retry_min = 0.05, retry_max = 0.1 }))
    local v, err, kind
    local function ping(c) return run(function() return c:command("PING") end) end
    assert(C.wait_until(function()
      v, err, kind = ping(bad)
      return err and err:find("WRONGPASS", 1, true)
    end, 3), err)
    assert.is_nil(v)
    assert.are.equal("IO", kind)
    assert.truthy(err:find("^not connected: 127.0.0.1:" .. srv.port .. ": WRONGPASS"), err)
    assert.is_false(bad:connected())
    local none = assert(connect(fmt("redis://127.0.0.1:%d", srv.port), { retry_min = 0.05, retry_max = 0.1 }))
    assert(C.wait_until(function()
      v, err = ping(none)
      return err and err:find("NOAUTH", 1, true)
    end, 3), err)
  end)

  it("fails at once while Redis is down, reconnects with backoff when it is back", function()
    local port = H.free_port()
    local ups, downs = 0, {}
    local r = assert(connect(fmt("redis://127.0.0.1:%d", port),
      { retry_min = 0.05, retry_max = 0.2, retry_factor = 2, name = "spec" }))
    r:on_connect(function() ups = ups + 1 end)
    rtmp.run(0.1)
    -- nothing listens: every command fails at once, without waiting
    local t0 = rtmp.now()
    local v, err, kind = run(function() return r:command("GET", "k") end)
    assert.is_true(rtmp.now() - t0 < 0.1)
    assert.is_nil(v)
    assert.are.equal("IO", kind)
    assert.are.equal(fmt("not connected: 127.0.0.1:%d: Connection refused", port), err)
    assert.are.equal(0, ups)

    srv = R.start{ port = port }
    assert(connected(r, 2), "connected once Redis is up")
    assert(C.wait_until(function() return ups == 1 end, 1))
    run(function() assert.are.equal("OK", r:command("SET", "k", "before")) end)

    -- killed: the command in flight and the next ones fail, saying why
    local inflight
    rtmp.spawn(function() inflight = table.pack(r:command("BLPOP", "never", 0)) end)
    rtmp.run(0.05)
    srv:kill()
    assert(C.wait_until(function() return inflight end, 3))
    assert.is_nil(inflight[1])
    assert.are.equal("IO", inflight[3])
    assert.truthy(inflight[2]:find(fmt("^not connected: connection to 127.0.0.1:%d lost: ", port)), inflight[2])
    assert.is_false(r:connected())
    v, err, kind = run(function() return r:command("GET", "k") end)
    assert.is_nil(v)
    assert.truthy(err:find("^not connected: "), err)
    rtmp.run(0.5) -- several attempts: the backoff reaches retry_max

    -- back on the same port: the client reconnects by itself, on_connect again
    local t1 = rtmp.now()
    srv:restart()
    assert(connected(r, 2), "reconnected")
    assert.is_true(rtmp.now() - t1 < 0.2 + 0.5, "within retry_max of the restart")
    assert(C.wait_until(function() return ups == 2 end, 1))
    run(function()
      assert.are.equal(null, r:command("GET", "k"), "a fresh server: the data went with the old one")
      assert.are.equal("OK", r:command("SET", "k", "after"))
    end)
    assert.are.equal("after", srv:cli("GET", "k"))
  end)

  it("logs each attempt (debug) with a growing wait, a lost connection (warn), a regained one (info)", function()
    local port = H.free_port()
    local script = H.tmpname("redis_log.lua")
    H.write_file(script, [[
      local rtmp = require "rtmp"
      local r = assert(rtmp.redis.connect(arg[1], { retry_min = 0.05, retry_max = 0.2, name = "logspec" }))
      r:on_connect(function(c)
        io.stdout:write("up ", tostring(c:connected()), " ", tostring(c:command("INCR", "ups")), "\n")
        io.stdout:flush()
      end)
    ]])
    local p = H.spawn(fmt("%s --log-level debug %s redis://127.0.0.1:%d", H.shquote(H.luartmp),
      H.shquote(script), port), { name = "luartmp-redis" })
    local function log() return H.read_file(p.err) or "" end
    assert(H.wait_until(function() return H.count_plain(log(), "(attempt 6)") > 0 end, 5), log())
    -- the waits between attempts: 0.05, 0.1, 0.2, then 0.2 (retry_max)
    local at = {}
    for hh, mm, ss, n in log():gmatch("(%d%d):(%d%d):(%d%d%.%d%d%d) debug redis logspec: connecting to 127%.0%.0%.1:%d+ %(attempt (%d+)%)") do
      at[tonumber(n)] = tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
    end
    for n = 1, 6 do assert(at[n], "attempt " .. n .. " logged:\n" .. log()) end
    local gaps = {}
    for n = 2, 6 do gaps[n - 1] = at[n] - at[n - 1] end
    assert.is_true(gaps[1] >= 0.04 and gaps[1] < 0.15, "first wait " .. gaps[1])
    assert.is_true(gaps[2] > gaps[1] and gaps[3] > gaps[2], table.concat(gaps, " "))
    assert.is_true(gaps[4] >= 0.18 and gaps[5] < 0.35, "capped at retry_max: " .. table.concat(gaps, " "))
    assert.truthy(log():find(fmt("debug redis logspec: connecting to 127.0.0.1:%d failed: Connection refused", port), 1, true), log())

    srv = R.start{ port = port }
    assert(H.wait_until(function() return (H.read_file(p.out) or ""):find("up true 1\n", 1, true) end, 3), log())
    assert.truthy(log():find(fmt("info redis logspec: connected to 127.0.0.1:%d", port), 1, true), log())
    srv:kill()
    assert(H.wait_until(function()
      return log():find(fmt("warn redis logspec: connection to 127.0.0.1:%d lost: Server closed the connection", port), 1, true)
    end, 3), log())
    srv:restart()
    assert(H.wait_until(function() return (H.read_file(p.out) or ""):find("up true 1\nup true 1\n", 1, true) end, 3),
      "on_connect ran again on the fresh server: " .. (H.read_file(p.out) or "") .. log())
    assert.truthy(log():find(fmt("info redis logspec: connection to 127.0.0.1:%d regained", port), 1, true), log())
    assert.is_nil(H.exited(p), "still running")
  end)

  it("closes from inside a reply and from on_connect without harm", function()
    srv = R.start()
    -- closed by a coroutine a reply resumed, with other commands in flight
    local r = assert(connect(srv.url))
    assert(connected(r))
    local got = {}
    rtmp.spawn(function()
      got.first = r:command("PING")
      r:close()
    end)
    for i = 1, 3 do rtmp.spawn(function() got[i] = table.pack(r:command("INCR", "c")) end) end
    assert(C.wait_until(function() return got[3] end, 3))
    assert.are.equal("PONG", got.first)
    for i = 1, 3 do assert.are.same({ n = 3, nil, "closed", "CLOSED" }, got[i]) end
    -- closed by on_connect, as soon as the connection is up
    local r2 = assert(connect(srv.url))
    local ran = false
    r2:on_connect(function(c) ran = true; c:close() end)
    assert(C.wait_until(function() return ran end, 3))
    rtmp.run(0.1)
    assert.is_false(r2:connected())
    -- the server saw both clients go, and still serves a new one
    local r3 = assert(connect(srv.url))
    assert(connected(r3))
    assert.are.equal("PONG", run(function() return r3:command("PING") end))
    local list = srv:cli("CLIENT", "LIST")
    assert.are.equal(2, select(2, list:gsub("[^\n]+", "")), "r3 and redis-cli only: " .. list)
  end)

  it("bounds an attempt with connect_timeout and a command with command_timeout on a silent server", function()
    srv = R.start()
    srv:pause() -- the kernel still accepts: the handshake's PING gets no answer
    local r = assert(connect(srv.url, { connect_timeout = 0.3, command_timeout = 0.3, retry_min = 0.05, retry_max = 0.1 }))
    local v, err, kind
    assert(C.wait_until(function()
      v, err, kind = run(function() return r:command("PING") end)
      return err and err:find("connect_timeout", 1, true)
    end, 3), err)
    assert.are.equal(fmt("not connected: 127.0.0.1:%d: no connection within 0.3 s (connect_timeout)", srv.port), err)
    assert.are.equal("IO", kind)
    srv:resume()
    assert(connected(r, 3), "connected once the server answers")
    srv:pause()
    local t0 = rtmp.now()
    assert.are.same({ n = 3, nil, "timeout", "TIMEOUT" }, table.pack(run(function() return r:command("GET", "k") end)))
    assert.is_true(rtmp.now() - t0 < 0.8)
    assert.is_true(r:connected(), "a silent server is not a lost connection")
    srv:resume()
    assert.are.equal("PONG", run(function() return r:command("PING") end))
  end)

  it("connects over a Unix socket", function()
    srv = R.start{ unixsocket = true }
    local r = assert(connect("unix:" .. srv.socket))
    assert(connected(r))
    assert.are.equal(srv.socket, r:address())
    run(function() assert.are.equal("OK", r:command("SET", "via", "unix")) end)
    assert.are.equal("unix", srv:cli("GET", "via"))
  end)

  it("refuses a bad URL with nil, err, and misuse with an error", function()
    for url, why in pairs{
      ["http://127.0.0.1:6379"] = "want redis://",
      ["redis://"] = "no host",
      ["redis://127.0.0.1:0"] = "port must be 1 to 65535",
      ["redis://127.0.0.1:99999"] = "port must be 1 to 65535",
      ["redis://127.0.0.1:6379/x"] = "database must be a number",
      ["rediss://127.0.0.1"] = "TLS (rediss://) is not supported",
      ["unix:relative"] = "want unix:/path",
    } do
      local r, err = rtmp.redis.connect(url)
      assert.is_nil(r, url)
      assert.truthy(err:find(fmt("bad Redis URL '%s': ", url), 1, true), err)
      assert.truthy(err:find(why, 1, true), err)
    end
    assert.has_error(function() rtmp.redis.connect("redis://127.0.0.1", { timeout = 1 }) end)
    assert.has_error(function() rtmp.redis.connect("redis://127.0.0.1", { retry_min = 2, retry_max = 1 }) end)
    assert.has_error(function() rtmp.redis.connect("redis://127.0.0.1", { command_timeout = "soon" }) end)
    local r = assert(connect("redis://127.0.0.1:" .. H.free_port()))
    -- a timer's function runs outside any coroutine (as a handler does)
    local outside
    rtmp.timer(0, function() outside = table.pack(pcall(r.command, r, "PING")) end)
    assert(C.wait_until(function() return outside end, 2))
    assert.is_false(outside[1])
    assert.truthy(outside[2]:find("r:command waits for the reply and must run inside a coroutine", 1, true),
      outside[2])
    run(function()
      local ok2, err2 = pcall(r.command, r, "SET", "k", {})
      assert.is_false(ok2)
      assert.truthy(err2:find("argument 3 of the command is a table", 1, true), err2)
    end)
  end)
end)
