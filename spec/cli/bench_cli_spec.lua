-- bench/lua_call.lua's command line, through rtmp.argv like every Lua tool:
-- --help, usage errors (exit 2, one message and a hint), one layer alone.
local H = require "support.helpers"
local q = H.shquote

local SCRIPT = "bench/lua_call.lua"

local function run(args)
  return H.run(q(H.luartmp) .. " " .. SCRIPT .. " " .. args, 60)
end

describe("bench/lua_call.lua's command line", function()
  after_each(H.cleanup)

  it("prints its usage with --help and exits 0", function()
    local rc, out = run("--help")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("usage: luartmp bench/lua_call.lua [--layer NAME] [N]", 1, true), out)
    assert.truthy(out:find("--layer NAME", 1, true), out)
  end)

  it("exits 2 with one message and a hint on bad usage", function()
    for _, c in ipairs{
      { "--layer nope", "bad --layer 'nope' (want session, session_read, reader)" },
      { "--layer", "option '--layer' needs a value" },
      { "many", "N: a positive integer expected, got 'many'" },
      { "10 20", "unexpected argument '20'" },
      { "--bogus", "unknown option '--bogus'" },
    } do
      local rc, out = run(c[1])
      assert.are.equal(2, rc, c[1] .. ": " .. out)
      assert.truthy(out:find("bench/lua_call.lua: " .. c[2], 1, true), c[1] .. ": " .. out)
      assert.truthy(out:find("Try 'bench/lua_call.lua --help'.", 1, true), out)
    end
  end)

  it("measures one layer alone: its microseconds per message", function()
    local rc, out = run("--layer reader 2000")
    assert.are.equal(0, rc, out)
    local us = tonumber(out:match("^%s*([%d.]+)%s*$"))
    assert.is_truthy(us and us > 0, out)
  end)
end)
