-- rtmp.argv: the one command-line parser of the Lua tools (spellings,
-- values, bounds, multi-value and repeatable options, "--", the help's
-- option lines, and what a tool's process does on --help and bad usage).
local argv = require "rtmp.argv"
local H = require "support.helpers"
local q, fmt = H.shquote, string.format

local function cmd(options, extra)
  local t = { options = options }
  for k, v in pairs(extra or {}) do t[k] = v end
  return argv.new(t)
end

describe("rtmp.argv", function()
  local tool = cmd{
    { "connection", "integer", arg = "N", help = "only connection N" },
    { "from-start", help = "times since the first packet" },
    { "limit", "number", arg = "S", help = "stop after S seconds" },
    { "out", "string", short = "o", arg = "FILE", help = "write to FILE" },
    { "raw", "string", n = 2, arg = "CLIENT_FILE SERVER_FILE", help = "two raw files" },
    { "side", { "server", "client" }, help = "the side played" },
    { "hooks", "string", many = true, arg = "FILE", help = "a hook file\n(repeatable)" },
    { "trace", "string", optional = true, arg = "PATH", help = "trace" },
    { "level", "integer", min = 1, max = 9, arg = "L", help = "a level" },
    { "o2", "number", min = -1, arg = "X", help = "may be negative" },
  }

  -- each case { args, message }: parse says nil and exactly that message
  local function refused(cases)
    for _, c in ipairs(cases) do
      local o, err = tool:parse(c[1])
      assert.is_nil(o, table.concat(c[1], " "))
      assert.are.equal(c[2], err)
    end
  end

  it("takes --name VALUE and --name=VALUE, flags, short spellings, positionals anywhere", function()
    local o, pos = tool:parse{ "a.pcap", "--connection", "3", "--from-start", "--limit=2.5", "-o", "x.lua", "b" }
    assert.are.same({ connection = 3, ["from-start"] = true, limit = 2.5, out = "x.lua" }, o)
    assert.are.same({ "a.pcap", "b" }, pos)
    assert.are.equal("integer", math.type(o.connection))
    o = assert(tool:parse{ "--out", "y" })
    assert.are.equal("y", o.out)
    -- "-" is a positional (stdout, stdin), an empty value is a value
    o, pos = tool:parse{ "-", "--out=" }
    assert.are.same({ "-" }, pos)
    assert.are.equal("", o.out)
  end)

  it("ends options at --: what follows is positional, however it looks", function()
    local o, pos = tool:parse{ "--side", "client", "--", "--from-start", "-o", "--" }
    assert.are.same({ side = "client" }, o)
    assert.are.same({ "--from-start", "-o", "--" }, pos)
  end)

  it("takes several values for a multi-value option, a list for a repeatable one", function()
    local o, pos = tool:parse{ "--raw", "c.raw", "s.raw", "--hooks", "a.lua", "--from-start", "--hooks=b.lua", "p" }
    assert.are.same({ "c.raw", "s.raw" }, o.raw)
    assert.are.same({ "a.lua", "b.lua" }, o.hooks)
    assert.are.same({ "p" }, pos)
    -- the last of an option given twice (not repeatable) counts
    o = assert(tool:parse{ "--limit", "1", "--limit", "2" })
    assert.are.equal(2, o.limit)
  end)

  it("takes an optional value only with =", function()
    local o, pos = tool:parse{ "--trace", "file" }
    assert.is_true(o.trace)
    assert.are.same({ "file" }, pos)
    o = assert(tool:parse{ "--trace=/tmp/t" })
    assert.are.equal("/tmp/t", o.trace)
  end)

  it("checks numbers against their bounds (>= 0 unless said otherwise)", function()
    assert.are.equal(0, (tool:parse{ "--limit", "0" }).limit)
    assert.are.equal(9, (tool:parse{ "--level", "9" }).level)
    assert.are.equal(-1, (tool:parse{ "--o2", "-1" }).o2)
    assert.are.equal(7, (tool:parse{ "--connection", "7.0" }).connection)
    local cases = {
      { { "--limit", "-1" }, "bad --limit '-1' (want a number >= 0)" },
      { { "--limit=soon" }, "bad --limit 'soon' (want a number >= 0)" },
      { { "--limit", "1e999" }, "bad --limit '1e999' (want a number >= 0)" },
      { { "--limit", "nan" }, "bad --limit 'nan' (want a number >= 0)" },
      { { "--connection", "1.5" }, "bad --connection '1.5' (want an integer >= 0)" },
      { { "--connection", "1e300" }, "bad --connection '1e300' (want an integer >= 0)" },
      { { "--level", "0" }, "bad --level '0' (want an integer from 1 to 9)" },
      { { "--level", "10" }, "bad --level '10' (want an integer from 1 to 9)" },
      { { "--o2", "-2" }, "bad --o2 '-2' (want a number >= -1)" },
      { { "--side", "both" }, "bad --side 'both' (want server, client)" },
    }
    refused(cases)
  end)

  it("says what is wrong, naming the option", function()
    local cases = {
      { { "--bogus" }, "unknown option '--bogus'" },
      { { "--bogus=3" }, "unknown option '--bogus=3'" },
      { { "-x", "a" }, "unknown option '-x'" },
      { { "---" }, "unknown option '---'" },
      { { "--from-start=yes" }, "option '--from-start' takes no value" },
      { { "--connection" }, "option '--connection' needs a value" },
      { { "-o" }, "option '-o' needs a value" },
      -- a value from the next argument may not look like an option
      { { "--out", "--from-start" }, "option '--out' needs a value" },
      { { "--raw", "c.raw" }, "option '--raw' needs two values: CLIENT_FILE SERVER_FILE" },
      { { "--raw", "c.raw", "--from-start" }, "option '--raw' needs two values: CLIENT_FILE SERVER_FILE" },
      { { "--raw=c.raw", "s.raw" }, "option '--raw' takes two values, not one with '='" },
    }
    refused(cases)
  end)

  it("knows -h and --help, and stops reading there", function()
    for _, a in ipairs{ "-h", "--help" } do
      local o = assert(tool:parse{ "--limit", "1", a, "--bogus" })
      assert.is_true(o.help)
    end
    -- after "--" it is an argument like any other
    local o, pos = tool:parse{ "--", "--help" }
    assert.is_nil(o.help)
    assert.are.same({ "--help" }, pos)
  end)

  it("writes the option lines of the help from the options", function()
    local c = cmd({
      { "connection", "integer", arg = "N", help = "only connection N" },
      { "side", { "server", "client" }, help = "the side played\n(default: server)" },
      { "trace", "string", optional = true, arg = "PATH", help = "trace" },
      { "out", "string", short = "o", arg = "FILE", help = "write to FILE" },
      { "raw", "string", n = 2, arg = "CLIENT_FILE SERVER_FILE", help = "two raw files" },
      { "fast", help = "no pacing" },
    }, { usage = "usage: x.lua [options] IN\n\noptions:\n", after = "\nExit status 0.\n" })
    assert.are.equal(table.concat({
      "usage: x.lua [options] IN",
      "",
      "options:",
      "  --connection N        only connection N",
      "  --side server|client  the side played",
      "                        (default: server)",
      "  --trace[=PATH]        trace",
      "  -o, --out FILE        write to FILE",
      "  --raw CLIENT_FILE SERVER_FILE",
      "                        two raw files",
      "  --fast                no pacing",
      "  -h, --help            this help",
      "",
      "Exit status 0.",
      "" }, "\n"), c:usage())
  end)

  it("refuses a malformed option table (misuse raises)", function()
    assert.has_error(function() argv.new{} end, "argv.new: want { options = { ... }, usage = text }")
    assert.has_error(function() cmd{ { "x", "float" } } end, "argv: option 'x': unknown kind 'float'")
    assert.has_error(function() cmd{ { "--x" } } end, "argv: option 1: want { \"name\", kind, ... }")
    assert.has_error(function() cmd{ { "x" }, { "y", short = "x" } } end, "argv.new: -x defined twice")
    assert.has_error(function() cmd{ { "help" } } end, "argv.new: --help defined twice")
    assert.has_error(function() cmd{ { "x", n = 2 } } end, "argv: option 'x': a flag takes no value")
    assert.has_error(function() tool:parse("--x") end, "argv: parse wants a table of strings")
  end)
end)

describe("a tool's command line", function()
  after_each(H.cleanup)

  -- a script that parses its arguments with cmd:run and prints what it got
  local function script()
    local path = H.tmpname("argv_tool.lua")
    H.write_file(path, [[
local argv = require "rtmp.argv"
local cmd = argv.new{
  usage = "usage: luartmp argv_tool.lua [options] FILE\n",
  options = { { "count", "integer", arg = "N", help = "how many" } },
  after = "Exit status 0.\n",
}
local o, pos = cmd:run(arg)
if #pos ~= 1 then cmd:fail("one file expected") end
print("count=" .. tostring(o.count) .. " file=" .. pos[1])
]])
    return path
  end

  it("prints the usage and exits 0 on --help; one message and a hint, exit 2, on bad usage", function()
    local s = script()
    local function run(args) return H.run(fmt("%s %s %s", q(H.luartmp), q(s), args), 20) end
    local rc, out = run("--count 2 f")
    assert.are.equal(0, rc, out)
    assert.are.equal("count=2 file=f\n", out)
    rc, out = run("-h")
    assert.are.equal(0, rc, out)
    assert.are.equal("usage: luartmp argv_tool.lua [options] FILE\n" ..
                     "  --count N   how many\n" ..
                     "  -h, --help  this help\n" ..
                     "Exit status 0.\n", out)
    for _, c in ipairs{ { "--count x f", "bad --count 'x' (want an integer >= 0)" },
                        { "--what f", "unknown option '--what'" },
                        { "", "one file expected" } } do
      rc, out = run(c[1])
      assert.are.equal(2, rc, out)
      local name = s:match("[^/]+$")
      assert.are.equal(fmt("%s: %s\nTry '%s --help'.\n", name, c[2], name), out)
    end
  end)
end)
