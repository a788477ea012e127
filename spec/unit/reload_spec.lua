-- rtmp.reload and rtmp.keep in this process (lua/rtmp/reload.lua,
-- docs/RELOAD.md): a main script and a module of its own in a temporary
-- directory, loaded again; a failing load is refused and changes nothing
-- the running script uses; kept state (a timer) goes on.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local reload = require "rtmp.reload"
local H = require "support.helpers"
local C = require "support.client"

-- Run fn in a coroutine (the client API waits) and the loop until it ends; its error fails the test.
local function client(fn)
  local ok, err = C.run(function() return pcall(fn) end)
  assert(ok, err)
end

-- The main script: requires its module, counts its runs in a kept table
-- and makes the module's handler the running one when the load is kept.
local MAIN = [[
local rtmp = require "rtmp"
local mod = require "%s"
local state = rtmp.keep("%s", function() return { runs = 0 } end)
state.runs = state.runs + 1
require("rtmp.reload").commit(function() state.handler = mod.handler end)
]]

local seq = 0
-- A fresh directory with main.lua and <name>.lua (source mod), on
-- package.path; returns the main path, the module's path and name, and the
-- kept state's name.
local function scripts(mod)
  seq = seq + 1
  local dir = H.mkdir(H.tmpname("reload-unit"))
  local name, key = "reload_unit_mod" .. seq, "reload_unit" .. seq
  local main = dir .. "/main.lua"
  H.write_file(main, MAIN:format(name, key))
  H.write_file(dir .. "/" .. name .. ".lua", mod)
  package.path = dir .. "/?.lua;" .. package.path
  reload.main(main)
  return main, dir .. "/" .. name .. ".lua", name, key
end

describe("rtmp.reload", function()
  teardown(function() rtmp.on_sighup(nil) end) -- reload.main set it

  it("loads the scripts again, and a load that fails leaves the running ones", function()
    local main, modfile, name, key = scripts('return { handler = function() return "v1" end }')
    assert.are.same({ true }, { rtmp.reload() })
    local state = rtmp.keep(key)
    assert.are.equal(1, state.runs)
    assert.are.equal("v1", state.handler())
    local v1 = package.loaded[name]

    -- a run error in the module: refused with its file and line
    H.write_file(modfile, 'local x = 1\nerror("no database configured")\nreturn {}')
    local ok, err = rtmp.reload()
    assert.is_nil(ok)
    assert.are.equal(modfile .. ":2: no database configured", err)
    assert.are.equal(1, state.runs, "the main script stopped at its require")
    assert.are.equal("v1", state.handler(), "the running handler stays")
    assert.are.equal(v1, package.loaded[name], "package.loaded as it was")

    -- a syntax error: refused before anything runs
    H.write_file(modfile, 'return { handler = function() return "v2" end')
    ok, err = rtmp.reload()
    assert.is_nil(ok)
    assert.matches("^" .. modfile:gsub("%p", "%%%0") .. ":1: ", err)
    assert.are.equal(1, state.runs, "nothing ran")
    assert.are.equal("v1", state.handler())

    -- fixed: the new handler from now on, the kept state the same table
    H.write_file(modfile, 'return { handler = function() return "v3" end }')
    assert.is_true(rtmp.reload())
    assert.are.equal(state, rtmp.keep(key))
    assert.are.equal(2, state.runs)
    assert.are.equal("v3", state.handler())
    assert.are_not.equal(v1, package.loaded[name])

    -- and a main script that fails itself
    H.write_file(main, H.read_file(main) .. "\nlocal t = nil\nt.x = 1\n")
    ok, err = rtmp.reload()
    assert.is_nil(ok)
    assert.matches("main%.lua:8: attempt to index a nil value", err)
    assert.are.equal("v3", state.handler())
  end)

  it("keeps a timer made in a kept table running across loads, once", function()
    local main = scripts("return { handler = function() end }")
    H.write_file(main, [[
local rtmp = require "rtmp"
local k = rtmp.keep("reload_unit_timer", function()
  local t = { fired = 0, made = 0 }
  t.made = t.made + 1
  t.timer = rtmp.timer(0.01, function() t.fired = t.fired + 1 end, 0.01)
  return t
end)
k.loads = (k.loads or 0) + 1
]])
    assert.is_true(rtmp.reload())
    local k = rtmp.keep("reload_unit_timer")
    local timer = k.timer
    rtmp.run(0.1)
    local before = k.fired
    assert.is_true(before > 0)
    assert.is_true(rtmp.reload())
    assert.is_true(rtmp.reload())
    rtmp.run(0.1)
    assert.are.equal(3, k.loads)
    assert.are.equal(1, k.made, "made once")
    assert.are.equal(timer, k.timer)
    assert.is_true(k.timer:active())
    assert.is_true(k.fired > before, "still firing")
    k.timer:stop()
  end)

  it("reloads on SIGHUP, from the loop", function()
    local main = scripts("return { handler = function() end }")
    H.write_file(main, 'local k = require("rtmp").keep("reload_unit_hup"); k.loads = (k.loads or 0) + 1\n')
    local pid = assert(tonumber((H.read_file("/proc/self/stat") or ""):match("^(%d+)")))
    H.exec("kill -HUP " .. pid)
    local k = rtmp.keep("reload_unit_hup")
    assert.is_nil(k.loads, "not inside the signal: in the loop")
    H.wait_until(function() rtmp.run(0.05); return k.loads == 1 end, 3, 0.01)
    assert.are.equal(1, k.loads)
  end)

  it("gives SIGHUP its default action back with rtmp.on_sighup(nil): the process ends", function()
    local script = H.tmpname("hup_nil.lua")
    H.write_file(script, [[
local rtmp = require "rtmp"
rtmp.on_sighup(function() print("caught") end)
rtmp.on_sighup(nil)
local pid = assert(tonumber(io.open("/proc/self/stat"):read("l"):match("^(%d+)")))
os.execute("kill -HUP " .. pid)
rtmp.run(0.3)
print("still here")
]])
    local code, out = H.run(H.shquote(H.luartmp) .. " " .. H.shquote(script), 10)
    assert.are.equal(128 + 1, code, out) -- ended by SIGHUP (1)
    assert.is_nil(out:find("caught", 1, true), out)
    assert.is_nil(out:find("still here", 1, true), out)
  end)

  it("hands an open connection's next message to the app of the newest kept load", function()
    local main = scripts("return {}")
    local src = [[
local rtmp = require "rtmp"
local app = require "rtmp.app"
local server = app.new{ state = rtmp.keep("reload_unit_app") }
function server.on_call(conn, msg) return false, "%s" end
%s
rtmp.keep("reload_unit_listened").servers = { server:listen{ listen = "%s" } }
]]
    H.write_file(main, src:format("v1", "", "127.0.0.1:0"))
    assert.is_true(rtmp.reload())
    local listened = rtmp.keep("reload_unit_listened")
    local srv = listened.servers[1]
    local nc
    local answers = {}
    local function ask() answers[#answers + 1] = select(2, nc:call("which")) end
    client(function()
      nc = assert(rtmp.connect("rtmp://127.0.0.1:" .. srv.port .. "/app"))
      ask()
    end)
    -- another address in the new script: the same server (it needs a restart)
    H.write_file(main, src:format("v2", "", "127.0.0.1:1"))
    assert.is_true(rtmp.reload())
    assert.are.equal(srv, listened.servers[1])
    client(ask)
    H.write_file(main, src:format("v3", 'error("not this one")', "127.0.0.1:0"))
    assert.is_nil(rtmp.reload())
    client(ask)
    client(function() nc:close() end)
    assert.are.same({ "NetConnection.Call.Failed: v1", "NetConnection.Call.Failed: v2",
                      "NetConnection.Call.Failed: v2" }, answers)
    srv:close()
  end)

  it("keeps live.lua's recording of a publish going across a reload of live.lua", function()
    local main = scripts("return {}")
    local rec = main:match("^(.*)/") .. "/rec"
    H.write_file(main, ([[
local live = require "live"
live.config.record_dir = %q
require("rtmp").keep("reload_unit_live").port = live.start{ listen = "127.0.0.1:0" }[1].port
]]):format(rec))
    -- live.lua and its modules are script modules: <root>/scripts (luartmp
    -- sets root when busted runs in it, LUARTMP_ASAN; lua5.4 here: the project)
    local root = rtmp.options.root
    rtmp.options.root = root or "."
    finally(function() rtmp.options.root = root end)
    assert.is_true(rtmp.reload())
    local live1 = package.loaded.live
    local url = "rtmp://127.0.0.1:" .. rtmp.keep("reload_unit_live").port .. "/live"
    local nc, ns
    local function frame(ts, key) return { type = 9, timestamp = ts, payload = (key and "\23" or "\39") .. "\1\0\0\0" .. ("f"):rep(500) } end
    client(function()
      nc = assert(rtmp.connect(url))
      ns = assert(nc:create_stream())
      assert(ns:publish("cam", "record"))
      assert(ns:send({ type = 9, timestamp = 0, payload = "\23\0\0\0\0\1\100\0\31\255\225" }))
      for i = 0, 9 do assert(ns:send(frame(i * 40, i == 0))) end
      rtmp.sleep(0.1)
    end)
    assert.is_true(rtmp.reload())
    assert.are_not.equal(live1, package.loaded.live, "live.lua was loaded again")
    client(function()
      for i = 10, 19 do assert(ns:send(frame(i * 40))) end
      rtmp.sleep(0.1)
      ns:close()
      nc:close()
      rtmp.sleep(0.1)
    end)
    -- one file: the sequence header and the 20 frames, in order
    local r = assert(rtmp.flv.open(rec .. "/live/cam.flv"))
    local stamps = {}
    while true do
      local m = r:read()
      if not m then break end
      if m.type == 9 and not m.sequence_header then stamps[#stamps + 1] = m.timestamp end
    end
    local want = {}
    for i = 0, 19 do want[#want + 1] = i * 40 end
    assert.are.same(want, stamps)
    for _, srv in ipairs(rtmp.keep("live").app.servers) do srv:close() end
  end)

  it("refuses misuse", function()
    assert.has_error(function() rtmp.keep(42) end, "rtmp.keep: name must be a string")
    assert.has_error(function() rtmp.keep("reload_unit_bad", function() return 1 end) end,
      "rtmp.keep: init must be a table or return one")
    assert.has_error(function() reload.commit("x") end, "reload.commit: function expected")
  end)
end)
