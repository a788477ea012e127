-- The live server with commands whose handlers misbehave on purpose, for
-- spec/badinput/contain_spec.lua (contained scripts, docs/CONTAIN.md):
--
--   raise          raises a Lua error
--   spin           loops forever
--   spin_pcall     loops forever inside pcall, itself in an endless loop
--   hog            allocates without end (a table of fresh strings)
--   hog_once       asks for one string far larger than any budget
--   spin_timer     starts a timer whose function loops forever; answers _result
--   spin_repeat    starts a repeating timer (every 50 ms) whose function logs
--                  "repeat tick" and loops forever; answers _result
--   spin_spawned   spawns a coroutine that sleeps, then loops forever; answers _result
--   lenient        sets this connection's on_error to "drop"; answers _result
--   whoami         answers _result with { id = conn.id, peer = conn.peer, on_error = conn.on_error }
--   memory         answers _result with the Lua heap size in KiB
--
--   luartmp --listen 127.0.0.1:PORT --script-instructions N --script-memory BYTES \
--           spec/badinput/contain_server.lua [SETTING=VALUE ...]
--
-- Each SETTING=VALUE argument (script_instructions=1e6, on_error=drop) is
-- passed to rtmp.listen through live.start: the per-server settings.

local rtmp = require "rtmp"
local live = require "live"
local null = rtmp.null
local commands = live.commands

local function answer(conn, msg, value)
    conn:command({ stream = msg.stream }, "_result", msg.txn, null, value)
end

function commands.raise(conn, msg)
    error("raise: raised on purpose by contain_server.lua (txn " .. tostring(msg.txn) .. ")")
end

local function spin_forever()
    local n = 0
    while true do n = n + 1 end
end

function commands.spin(conn, msg)
    spin_forever()
end

function commands.spin_pcall(conn, msg)
    while true do pcall(spin_forever) end
end

local function hog_forever()
    local hoard = {} -- garbage once the budget stops the loop
    while true do hoard[#hoard + 1] = string.rep("x", 65536) .. #hoard end
end

function commands.hog(conn, msg)
    hog_forever()
end

function commands.hog_once(conn, msg)
    local huge = string.rep("y", 1 << 30)
    conn:log("info", "got %d bytes", #huge)
end

function commands.spin_timer(conn, msg)
    rtmp.timer(0.01, function() spin_forever() end)
    answer(conn, msg, "timer started")
end

function commands.spin_repeat(conn, msg)
    rtmp.timer(0.01, function()
        rtmp.log.info("repeat tick")
        spin_forever()
    end, 0.05)
    answer(conn, msg, "repeating timer started")
end

function commands.spin_spawned(conn, msg)
    rtmp.spawn(function()
        rtmp.sleep(0.01)
        spin_forever()
    end)
    answer(conn, msg, "coroutine spawned")
end

function commands.lenient(conn, msg)
    conn.on_error = "drop"
    answer(conn, msg, conn.on_error)
end

function commands.whoami(conn, msg)
    answer(conn, msg, { id = conn.id, peer = conn.peer, on_error = conn.on_error })
end

function commands.memory(conn, msg)
    collectgarbage()
    answer(conn, msg, collectgarbage("count"))
end

local settings = {}
for _, a in ipairs{ ... } do
    local k, v = a:match("^([%w_]+)=(.*)$")
    assert(k, "SETTING=VALUE expected: " .. a)
    settings[k] = tonumber(v) or v
end
live.start(settings)
