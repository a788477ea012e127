-- Contained scripts (docs/CONTAIN.md): a handler that raises, loops
-- forever or allocates without end affects only its own connection (or,
-- with on_error = "drop", only its own message); it is logged with the
-- connection id, the peer and a traceback, and the server keeps serving.
--
-- The server is build/luartmp running spec/badinput/contain_server.lua (the
-- live server plus misbehaving commands) with small budgets.  An ffmpeg
-- publisher/player pair streams the fixture through it the whole time: at
-- the end the player must have every frame.  The misbehaving commands come
-- from our client (support.client), which asks the server who it is
-- (command whoami: conn id and peer address) to find its lines in the log.

local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"
local F = H.FIXTURE

local fmt = string.format
local null = rtmp.null

local INSTRUCTIONS = 2000000
local MEMORY = "48M"

-- A connected client and its { id, peer } as the server sees them.
local function client(srv)
  local c = C.connect(srv.url("live"))
  local txn = c:call(nil, "whoami", null)
  local res = assert(c:wait(function() return c:find{ name = "_result", txn = txn } end, 5),
    "no answer to whoami")
  local me = res.args[2]
  c.id, c.peer = math.tointeger(me.id), me.peer
  return c
end

-- Send command `name`; returns its transaction id.
local function send(c, name)
  return c:call(nil, name, null)
end

-- The log text from the first line mentioning "conn=ID peer=PEER <what>"
-- to the next line that starts with a timestamp (a multi-line entry: the
-- error and its traceback), or nil.
local function entry(log, c, what)
  local head = fmt("conn=%d peer=%s %s", c.id, c.peer, what)
  local s = log:find(head, 1, true)
  if not s then return nil end
  local e = log:find("\n%d%d%d%d%-%d%d%-%d%d ", s) or #log + 1
  return log:sub(s, e - 1)
end

-- Every such entry of connection c, in order.
local function entries(log, c, what)
  local list, from = {}, 1
  local head = fmt("conn=%d peer=%s %s", c.id, c.peer, what)
  while true do
    local s = log:find(head, from, true)
    if not s then return list end
    local e = log:find("\n%d%d%d%d%-%d%d%-%d%d ", s) or #log + 1
    list[#list + 1] = log:sub(s, e - 1)
    from = e
  end
end

-- Wait for the script error entry of connection c in the log.
local function wait_entry(srv, c, what)
  local text = H.wait_until(function() return entry(srv.log(), c, what) end, 5)
  assert(text, fmt("no '%s' entry for conn=%d peer=%s in the log:\n%s", what, c.id, c.peer, srv.log()))
  return text
end

describe("contained scripts on a live luartmp server", function()
  local srv, pub, player, player_file

  setup(function()
    srv = H.luartmp_start{ script = "spec/badinput/contain_server.lua",
      extra = { "--script-instructions", tostring(INSTRUCTIONS), "--script-memory", MEMORY } }
    player_file = H.tmpname("contain-player.flv")
    player = H.ffmpeg_play(srv.url("live/pair"), player_file, 4)
    assert(H.wait_until(function() return srv.count("play", "pair") >= 1 end, 10),
      "the pair's player did not reach play:\n" .. srv.log())
    pub = H.ffmpeg_publish(srv.url("live/pair"))
    assert(H.wait_until(function() return srv.count("publish", "pair") >= 1 end, 10),
      "the pair's publisher did not reach publish:\n" .. srv.log())
  end)

  teardown(function() H.cleanup() end)

  -- The pair is still streaming and a new client is served.
  local function assert_still_serving()
    assert.is_nil(H.exited(pub), "the publisher ended early:\n" .. H.output(pub))
    assert.is_nil(H.exited(player), "the player ended early:\n" .. H.output(player))
    local c = client(srv)
    assert.is_truthy(c.id > 0)
    c:close()
    -- the pair's two connections were never closed
    local log = srv.log()
    for line in log:gmatch("[^\n]+") do
      local id = line:match(" conn=(%d+) .* play live/pair") or line:match(" conn=(%d+) .* publish live/pair")
      if id then
        assert.is_nil(log:find(" conn=" .. id .. " peer=%S+ close: "), "the pair's conn=" .. id .. " was closed")
      end
    end
  end

  -- Send `cmd`; the server must close that connection only, logging the
  -- error (containing `err`) with a traceback through `frame`.
  local function expect_closed(cmd, err, frame)
    local c = client(srv)
    send(c, cmd)
    assert(c:wait(function() return c.closed end, 5), cmd .. ": the server did not close the connection")
    local text = wait_entry(srv, c, "script error in on_message: ")
    assert(text:find(err, 1, true), fmt("%s: expected %q in the log entry:\n%s", cmd, err, text))
    if frame then
      assert(text:find("stack traceback:", 1, true), "no traceback:\n" .. text)
      assert(text:find(frame, 1, true), fmt("traceback without %q:\n%s", frame, text))
    end
    local close = wait_entry(srv, c, "close: ")
    assert(close:find("close: script error: ", 1, true), close)
    assert_still_serving()
    return text
  end

  it("a handler that raises closes its connection only, logged with conn id, peer and traceback", function()
    -- the lines of commands.raise and of its error call in the server script
    local n, fline, eline = 0, nil, nil
    for line in io.lines("spec/badinput/contain_server.lua") do
      n = n + 1
      if line:find("^function commands.raise") then fline = n end
      if line:find('error("raise:', 1, true) then eline = n end
    end
    expect_closed("raise", fmt("contain_server.lua:%d: raise: raised on purpose", eline),
      fmt("in function <spec/badinput/contain_server.lua:%d>", fline))
  end)

  it("a handler that loops forever is stopped by the instruction budget", function()
    expect_closed("spin", fmt("instruction budget exceeded (%d instructions)", INSTRUCTIONS),
      "in upvalue 'spin_forever'")
  end)

  it("a pcall in the script does not swallow the budget", function()
    expect_closed("spin_pcall", "instruction budget exceeded", "contain_server.lua")
  end)

  it("a handler that allocates without end is stopped by the memory budget; the memory comes back", function()
    local probe = client(srv)
    local function heap_kib()
      local txn = send(probe, "memory")
      local res = assert(probe:wait(function() return probe:find{ name = "_result", txn = txn } end, 5))
      return res.args[2]
    end
    local before = heap_kib()
    expect_closed("hog", "memory budget exceeded", "in upvalue 'hog_forever'")
    local after = heap_kib()
    -- 48 MiB were taken and dropped; the heap is back near where it was
    -- (the pair's GOP cache moves meanwhile: a few hundred KiB).
    assert(after < before + 4096, fmt("heap %.0f KiB before, %.0f KiB after", before, after))
    probe:close()
  end)

  it("one allocation past the budget fails at once: a memory error, said so in the log", function()
    expect_closed("hog_once", "not enough memory (the script memory budget is 50331648 bytes")
  end)

  it("a timer that loops forever is stopped; the connection that started it is not touched", function()
    local c = client(srv)
    local txn = send(c, "spin_timer")
    assert(c:wait(function() return c:find{ name = "_result", txn = txn } end, 5))
    local text = H.wait_until(function()
      local log = srv.log()
      local s = log:find("script error in timer: [^\n]*instruction budget exceeded")
      return s and log:sub(s, s + 400)
    end, 5)
    assert(text, "no timer error in the log:\n" .. srv.log())
    assert(text:find("in upvalue 'spin_forever'", 1, true), text)
    local again = send(c, "whoami")
    assert(c:wait(function() return c:find{ name = "_result", txn = again } end, 5), "no answer after the timer")
    assert.is_false(c.closed)
    c:close()
    assert_still_serving()
  end)

  it("a repeating timer whose function fails is stopped after the first failure", function()
    local c = client(srv)
    local txn = send(c, "spin_repeat")
    assert(c:wait(function() return c:find{ name = "_result", txn = txn } end, 5))
    assert(H.wait_until(function()
      return srv.log():find("repeating timer stopped after a script error", 1, true)
    end, 5), "the repeating timer was not stopped:\n" .. srv.log())
    -- ten more periods: no second tick
    c:wait(function() return false end, 0.5)
    assert.equal(1, H.count_plain(srv.log(), "repeat tick"))
    c:close()
    assert_still_serving()
  end)

  it("a coroutine the loop resumes is stopped the same way and logged", function()
    local c = client(srv)
    local txn = send(c, "spin_spawned")
    assert(c:wait(function() return c:find{ name = "_result", txn = txn } end, 5))
    local text = H.wait_until(function()
      local log = srv.log()
      local s = log:find("spawned coroutine: [^\n]*instruction budget exceeded")
      return s and log:sub(s, s + 400)
    end, 5)
    assert(text, "no coroutine error in the log:\n" .. srv.log())
    assert(text:find("in upvalue 'spin_forever'", 1, true), text)
    local again = send(c, "whoami")
    assert(c:wait(function() return c:find{ name = "_result", txn = again } end, 5))
    c:close()
    assert_still_serving()
  end)

  it("conn.on_error = 'drop': each failing message is dropped, the connection goes on", function()
    local c = client(srv)
    local txn = send(c, "lenient")
    local res = assert(c:wait(function() return c:find{ name = "_result", txn = txn } end, 5))
    assert.equal("drop", res.args[2])
    for _, cmd in ipairs{ "raise", "spin", "hog" } do
      send(c, cmd)
      local after = send(c, "whoami")
      res = c:wait(function() return c:find{ name = "_result", txn = after } end, 5)
      assert(res, cmd .. ": no answer to the next command")
      assert.equal("drop", res.args[2].on_error)
    end
    assert.is_false(c.closed)
    local log = srv.log()
    local dropped = entries(log, c, "script error in on_message (on_error = drop: connection kept): ")
    assert.equal(3, #dropped, log)
    for i, err in ipairs{ "raise: raised on purpose", "instruction budget exceeded", "memory budget exceeded" } do
      assert(dropped[i]:find(err, 1, true), fmt("entry %d lacks %q:\n%s", i, err, dropped[i]))
      assert(dropped[i]:find("stack traceback:", 1, true), dropped[i])
    end
    assert.is_nil(entry(log, c, "close: "), "the lenient connection was closed")
    c:close()
    assert_still_serving()
  end)

  it("the pair streamed through all of it: the player has every frame", function()
    assert(H.wait_exit(pub, 20), "the publisher did not finish")
    assert.equal(0, H.exited(pub), H.output(pub))
    assert(H.wait_exit(player, 20), "the player did not finish")
    local info = assert(H.probe(player_file))
    assert.equal(F.frames, info.video and info.video.frames)
  end)
end)

describe("per-server containment settings (rtmp.listen script_instructions, on_error)", function()
  local srv

  setup(function()
    -- no command-line budget: the script's rtmp.listen settings alone
    srv = H.luartmp_start{ script = "spec/badinput/contain_server.lua",
      args = { "script_instructions=500000", "on_error=drop" } }
  end)

  teardown(function() H.cleanup() end)

  it("the server's settings apply to its connections", function()
    local c = client(srv)
    local txn = send(c, "whoami")
    local res = assert(c:wait(function() return c:find{ name = "_result", txn = txn } end, 5))
    assert.equal("drop", res.args[2].on_error)
    send(c, "spin")
    local after = send(c, "whoami")
    assert(c:wait(function() return c:find{ name = "_result", txn = after } end, 5), "no answer after spin")
    local text = wait_entry(srv, c, "script error in on_message (on_error = drop: connection kept): ")
    assert(text:find("instruction budget exceeded (500000 instructions)", 1, true), text)
    assert(text:find("stack traceback:", 1, true), text)
    c:close()
  end)
end)

describe("docs/CONTAIN.md", function()
  teardown(function() H.cleanup() end)

  it("the first example runs as described: spin is dropped, the connection answers the next command", function()
    local doc = assert(H.read_file("docs/CONTAIN.md"))
    local code = assert(doc:match("```lua\n(.-)```"), "no lua example in docs/CONTAIN.md")
    local dir = H.mkdir(H.tmpname("contain-doc"))
    H.write_file(dir .. "/budget.lua", code)
    local srv = H.luartmp_start{ script = dir .. "/budget.lua" }
    local c = C.connect(srv.url("live"))
    send(c, "spin")
    local sid = c:create_stream() -- waits for the _result
    assert.equal(1, sid)
    assert.is_false(c.closed)
    local text = H.wait_until(function()
      local log = srv.log()
      local s = log:find("script error in on_message (on_error = drop: connection kept): ", 1, true)
      return s and log:sub(s, s + 700)
    end, 5)
    assert(text, "no script error in the log:\n" .. srv.log())
    assert(text:find("budget.lua:6: instruction budget exceeded (1000000 instructions)", 1, true), text)
    -- Lua shortens long chunk names in tracebacks ("...dir/budget.lua")
    assert(text:find("budget%.lua:6: in function <[^>\n]*/budget%.lua:5>"), text)
    c:close()
  end)
end)

describe("luartmp command line", function()
  it("refuses bad containment options with status 2", function()
    for _, args in ipairs{ "--script-memory 12Q", "--script-memory -5", "--script-instructions x",
                           "--script-instructions -1", "--on-error maybe" } do
      local rc, out = H.run(H.shquote(H.luartmp) .. " " .. args .. " scripts/live.lua", 10)
      assert.equal(2, rc, args .. ": " .. out)
      assert(out:find("bad %-%-"), args .. ": " .. out)
    end
  end)

  it("a client script's main coroutine resumed by the loop runs under the budget too", function()
    local dir = H.mkdir(H.tmpname("contain-main"))
    H.write_file(dir .. "/main.lua", [[
      local rtmp = require "rtmp"
      rtmp.sleep(0.01)   -- from here on the loop resumes this coroutine (a timer)
      while true do end]])
    local rc, out = H.run(H.shquote(H.luartmp) .. " --script-instructions 1e6 " .. dir .. "/main.lua", 10)
    assert.equal(1, rc, out)
    assert(out:find("main.lua:3: instruction budget exceeded (1000000 instructions)", 1, true), out)
  end)

  it("rtmp.options carries --script-instructions and --on-error to scripts", function()
    local dir = H.mkdir(H.tmpname("contain-opts"))
    H.write_file(dir .. "/opts.lua", [[
      local rtmp = require "rtmp"
      print(rtmp.options.script_instructions, rtmp.options.on_error)]])
    local rc, out = H.run(H.shquote(H.luartmp) .. " --script-instructions 2e6 --on-error drop " .. dir .. "/opts.lua", 10)
    assert.equal(0, rc, out)
    assert.equal("2000000\tdrop", out:match("[^\n]+"))
  end)
end)
