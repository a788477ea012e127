-- The luartmp command line: options, scripts, exit codes.
local H = require "support.helpers"
local q = H.shquote

local function run(args, timeout)
  return H.run(q(H.luartmp) .. " " .. args, timeout or 10)
end

describe("luartmp command line", function()
  after_each(H.cleanup)

  it("prints help and version and exits 0", function()
    local rc, out = run("--help")
    assert.are.equal(0, rc)
    assert.truthy(out:find("usage: luartmp", 1, true))
    assert.truthy(out:find("--listen", 1, true))
    rc, out = run("--version")
    assert.are.equal(0, rc)
    assert.truthy(out:match("^luartmp %d+%.%d+%.%d+"))
  end)

  it("rejects unknown options and bad values with a message and exit 2", function()
    local rc, out = run("--bogus")
    assert.are.equal(2, rc)
    assert.truthy(out:find("unknown option '--bogus'", 1, true))
    rc, out = run("--log-level loud")
    assert.are.equal(2, rc)
    assert.truthy(out:find("bad log level 'loud'", 1, true))
    rc, out = run("--handshake-timeout soon")
    assert.are.equal(2, rc)
    rc, out = run("--listen")
    assert.are.equal(2, rc)
    assert.truthy(out:find("needs a value", 1, true))
  end)

  it("runs a script with its arguments and exits 0 when nothing is left to do", function()
    local script = H.tmpname("args") .. ".lua"
    H.write_file(script, [[
      local rtmp = require "rtmp"
      print(arg[0]:match("[^/]+$"), table.concat({ ... }, ","), arg[1], rtmp.version)
      rtmp.timer(0.05, function() print("timer fired") end)
    ]])
    local rc, out = run(q(script) .. " one two")
    assert.are.equal(0, rc)
    assert.truthy(out:find("args.lua\tone,two\tone\t", 1, true), out)
    assert.truthy(out:find("timer fired", 1, true))
  end)

  it("reports a failing script with its traceback and exits 1", function()
    local script = H.tmpname("fails") .. ".lua"
    H.write_file(script, "local function f() error('broken on purpose') end\nf()\n")
    local rc, out = run(q(script))
    assert.are.equal(1, rc)
    assert.truthy(out:find("broken on purpose", 1, true))
    assert.truthy(out:find("stack traceback", 1, true))
    rc, out = run(q(H.tmpname("missing") .. ".lua"))
    assert.are.equal(1, rc)
    assert.truthy(out:find("cannot open", 1, true))
  end)

  it("fails clearly when the live server cannot listen", function()
    local rc, out = run("--listen 127.0.0.1:notaport scripts/live.lua")
    assert.are.equal(1, rc)
    assert.truthy(out:find("127.0.0.1:notaport", 1, true), out)
    -- a port already taken
    local srv = H.luartmp_start()
    rc, out = run("--listen 127.0.0.1:" .. srv.port .. " scripts/live.lua")
    assert.are.equal(1, rc)
    assert.truthy(out:find("Address already in use", 1, true), out)
    -- --http on a port taken: checked only when the script listens, and still one line, no traceback
    rc, out = run("--listen 127.0.0.1:" .. H.free_port() .. " --http 127.0.0.1:" .. srv.port .. " scripts/live.lua")
    assert.are.equal(1, rc)
    local line = "luartmp: --http 127.0.0.1:" .. srv.port .. ": listen 127.0.0.1:" .. srv.port .. ": Address already in use\n"
    assert.truthy(out:sub(-#line) == line, out)
    assert.falsy(out:find("traceback", 1, true), out)
    -- the same from a quirk profile, which calls live.start() itself
    rc, out = run("--listen 127.0.0.1:" .. H.free_port() .. " --http 127.0.0.1:" .. srv.port .. " scripts/quirks/fms.lua")
    assert.are.equal(1, rc)
    assert.truthy(out:sub(-#line) == line, out)
    assert.falsy(out:find("traceback", 1, true), out)
  end)

  it("ends with rtmp.fail's message alone and exit 1 (early, late, from live.start); caught it reads as the message; a reload it fails is refused", function()
    local script = H.tmpname("fail") .. ".lua"
    H.write_file(script, [[
      local rtmp = require "rtmp"
      io.stdout:setvbuf("no") -- (in order with stderr)
      local ok, err = pcall(rtmp.fail, "caught " .. 1)
      print(ok, tostring(err), err.message, type(err), rtmp.failure(err), "read: " .. err)
      print(rtmp.failure("a string"), rtmp.failure(setmetatable({ message = "m" }, {})), select(2, pcall(rtmp.fail, 42)))
      if arg[1] == "late" then rtmp.sleep(0.02) end
      rtmp.fail("cannot go on: " .. arg[1])
      print("not reached")
    ]])
    for _, when in ipairs({ "early", "late" }) do
      local rc, out = run(q(script) .. " " .. when)
      assert.are.equal(1, rc)
      assert.are.equal("false\tcaught 1\tcaught 1\ttable\tcaught 1\tread: caught 1\n"
        .. "nil\tnil\t42\n"
        .. "luartmp: cannot go on: " .. when .. "\n", out)
    end
    -- in a spawned coroutine: logged as the message alone, the program goes on
    H.write_file(script, [[
      local rtmp = require "rtmp"
      rtmp.spawn(function() rtmp.sleep(0.01); rtmp.fail("spawned gave up") end)
      rtmp.sleep(0.05)
      print("main goes on")
    ]])
    local rc, out = run(q(script))
    assert.are.equal(0, rc)
    assert.truthy(out:find("spawned coroutine: spawned gave up", 1, true), out)
    assert.truthy(out:find("main goes on", 1, true), out)
    assert.falsy(out:find("traceback", 1, true), out)
    -- live.start's own: a script that names a port in use itself (luartmp checks only --listen)
    local srv = H.luartmp_start()
    H.write_file(script, [[
      local live = require "live"
      live.start{ listen = "127.0.0.1:]] .. srv.port .. [[" }
    ]])
    rc, out = run(q(script))
    assert.are.equal(1, rc)
    assert.are.equal("luartmp: listen 127.0.0.1:" .. srv.port .. ": Address already in use\n", out)
    -- a reload it fails is refused, with the message, and the process goes on
    H.write_file(script, [[
      local rtmp = require "rtmp"
      io.stdout:setvbuf("no")
      local loads = rtmp.keep("loads", { n = 0 })
      loads.n = loads.n + 1
      if loads.n == 2 then rtmp.fail("second load refused") end
      if loads.n == 1 then rtmp.timer(0.02, function() print("reload:", rtmp.reload()) end) end
    ]])
    rc, out = run(q(script))
    assert.are.equal(0, rc)
    assert.truthy(out:find("reload refused: second load refused", 1, true), out)
    assert.truthy(out:find("reload:\tnil\tsecond load refused\n", 1, true), out)
  end)

  it("listens on IPv4 and IPv6 for a bare port, and shuts down on SIGTERM with exit 0", function()
    local port = H.free_port()
    local p = H.spawn(q(H.luartmp) .. " --listen " .. port .. " scripts/live.lua", { name = "luartmp-any" })
    assert(H.wait_port(port, 10, p))
    local log = H.wait_until(function()
      local s = H.read_file(p.err) or ""
      return s:find("listening on [::]:" .. port, 1, true) and s
    end, 5)
    assert.truthy(log, "an IPv6 listener")
    assert.truthy(log:find("listening on 0.0.0.0:" .. port, 1, true))
    -- a publisher over IPv6 loopback
    local rc = H.run(string.format("ffmpeg -nostdin -v error -i %s -t 1 -c copy -f flv rtmp://[::1]:%d/live/v6",
      H.fixture_flv(), port), 20)
    assert.are.equal(0, rc)
    assert.truthy((H.read_file(p.err) or ""):find("peer=[::1]:", 1, true))
    assert.are.equal(0, H.kill(p, 5))
    assert.truthy(H.read_file(p.err):find("shutting down", 1, true))
  end)

  it("gives SIGTERM back to the shutdown when a script sets rtmp.on_sigterm(nil), and ends after it", function()
    local script = H.tmpname("term_nil.lua")
    H.write_file(script, [[
local rtmp = require "rtmp"
rtmp.handle_signals()
rtmp.on_sigterm(function() print("caught") end)
rtmp.on_sigterm(nil)
local pid = assert(tonumber(io.open("/proc/self/stat"):read("l"):match("^(%d+)")))
rtmp.timer(0.05, function() os.execute("kill -TERM " .. pid) end)
rtmp.timer(2, function() print("still running") end)
print("stopped", rtmp.run(3))
]])
    -- then luartmp's own rtmp.handle_signals and loop: a second call is harmless
    local code, out = run(q(script))
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("still running", 1, true), out)
    assert.truthy(out:find("stopped\ttrue", 1, true), out)
    assert.truthy(out:find("signal 15: shutting down", 1, true), out)
    assert.is_nil(out:find("caught", 1, true), out)
  end)
end)
