-- rtmp.argv: the command line of every Lua tool, parsed one way.
--
--   local argv = require "rtmp.argv"
--   local cmd = argv.new{
--     usage = "usage: luartmp scripts/tools/x.lua [options] CAPTURE\n\noptions:\n",
--     options = {
--       { "connection", "integer", arg = "N", help = "only connection N" },
--       { "from-start", help = "times since the connection's first packet" },
--       { "raw", "string", n = 2, arg = "C S", help = "two raw files" },
--       { "out", "string", short = "o", arg = "FILE", help = "write to FILE" },
--     },
--     after = "\nExit status: 0, 1 when ..., 2 for a usage error.\n",
--   }
--   local o, pos = cmd:run(arg)      -- --help: usage, exit 0; bad usage: exit 2
--   if #pos ~= 1 then cmd:fail("one capture file expected") end
--
-- cmd:parse(args) -> o, pos | nil, message is the same without exiting;
-- cmd:usage() the whole help (usage, the option lines made from the
-- options, after); cmd:fail(message) prints "<name>: <message>" and
-- "Try '<name> --help'." on stderr and exits 2, the name being `prog`
-- or the script's file name (argv.progname()).
--
-- An option is { name, kind, ... }:
--   name     the long name: "from-start" is spelled --from-start; a name of
--            one letter is spelled -o only.  The key of its value in `o`.
--   kind     "flag" (the default: no value, o[name] = true), "string",
--            "number", "integer", a list of allowed strings, or a function
--            (value) -> converted value | nil, what is wanted
--   short    a one-letter alias: short = "o" adds -o
--   arg      the value's name in the help ("N", "FILE", "C S")
--   n        the number of values it takes (default 1); above 1, o[name]
--            is the list of them
--   min, max bounds of a "number" or "integer" (min defaults to 0)
--   optional the value only as --name=VALUE; a bare --name gives true
--   many     repeatable: o[name] is the list of the values given, in order
--   help     its help text; "\n" starts a line indented under the first
--
-- Values come as --name VALUE or --name=VALUE (-o VALUE for short
-- spellings); a value taken from the next argument may not begin with
-- "--" (`--out --fast` lacks its value).  Options may come anywhere; "--"
-- ends them, and what follows is positional, as is "-".  An option
-- given twice (not `many`) keeps its last value.  -h and --help are
-- always known: o.help = true, and parsing stops there.

local fmt = string.format
local concat = table.concat

local _M = {}

local Cmd = {}
Cmd.__index = Cmd

local KINDS = { flag = true, string = true, number = true, integer = true }
local COUNT = { "one", "two", "three", "four" }

-- "--name" or "-o"
local function spelling(name)
  return #name == 1 and ("-" .. name) or ("--" .. name)
end

-- The value `v` (a string) of option `opt` converted, or nil and the
-- usage message.
local function convert(opt, v)
  local kind = opt.kind
  if kind == "string" then return v end
  local shown = opt.spelled
  if type(kind) == "table" then
    for _, allowed in ipairs(kind) do
      if v == allowed then return v end
    end
    return nil, fmt("bad %s '%s' (want %s)", shown, v, concat(kind, ", "))
  end
  if type(kind) == "function" then
    local x, want = kind(v)
    if x == nil then return nil, fmt("bad %s '%s' (want %s)", shown, v, tostring(want)) end
    return x
  end
  -- "number" or "integer"
  local x = tonumber(v)
  if x and kind == "integer" then x = math.tointeger(x) end
  if not x or x ~= x or x == math.huge or x == -math.huge
      or (opt.min and x < opt.min) or (opt.max and x > opt.max) then
    local what = kind == "integer" and "an integer" or "a number"
    if opt.min and opt.max then
      what = fmt("%s from %s to %s", what, opt.min, opt.max)
    elseif opt.min then
      what = fmt("%s >= %s", what, opt.min)
    elseif opt.max then
      what = fmt("%s <= %s", what, opt.max)
    end
    return nil, fmt("bad %s '%s' (want %s)", shown, v, what)
  end
  return x
end

-- The option table checked and completed (misuse raises, at the
-- caller's caller).
local function check_option(opt, i)
  if type(opt) ~= "table" or type(opt[1]) ~= "string" or opt[1] == "" or opt[1]:find("[=%s]")
      or opt[1]:sub(1, 1) == "-" then
    error(fmt("argv: option %d: want { \"name\", kind, ... }", i), 3)
  end
  local o = {}
  for k, v in pairs(opt) do o[k] = v end
  o.name, o.kind = opt[1], opt[2] or "flag"
  if not (KINDS[o.kind] or type(o.kind) == "table" or type(o.kind) == "function") then
    error(fmt("argv: option '%s': unknown kind '%s'", o.name, tostring(o.kind)), 3)
  end
  if o.short ~= nil and (type(o.short) ~= "string" or #o.short ~= 1 or o.short == "-") then
    error(fmt("argv: option '%s': short wants one letter", o.name), 3)
  end
  o.n = o.n or 1
  if math.type(o.n) ~= "integer" or o.n < 1 then
    error(fmt("argv: option '%s': n wants an integer >= 1", o.name), 3)
  end
  if o.kind == "flag" and (o.n > 1 or o.optional) then
    error(fmt("argv: option '%s': a flag takes no value", o.name), 3)
  end
  if (o.kind == "number" or o.kind == "integer") and o.min == nil then o.min = 0 end
  o.spelled = spelling(o.name)
  return o
end

--- argv.new{ options = {...}, usage = text, after = text, prog = name }
--- -> a command line.  usage: the text --help prints before the option
--- lines (the usage line and any prose); after: the text after them;
--- prog: the name in messages (default: the script's file name).
function _M.new(t)
  if type(t) ~= "table" or type(t.options) ~= "table" then
    error("argv.new: want { options = { ... }, usage = text }", 2)
  end
  local cmd = setmetatable({ options = {}, by_spelling = {}, usage_text = t.usage or "",
                             after = t.after or "", prog = t.prog }, Cmd)
  local function add(spelled, opt)
    if cmd.by_spelling[spelled] or spelled == "-h" or spelled == "--help" then
      error(fmt("argv.new: %s defined twice", spelled), 3)
    end
    cmd.by_spelling[spelled] = opt
  end
  for i, raw in ipairs(t.options) do
    local opt = check_option(raw, i)
    cmd.options[#cmd.options + 1] = opt
    add(opt.spelled, opt)
    if opt.short then add("-" .. opt.short, opt) end
  end
  return cmd
end

--- cmd:parse(args) -> o, positionals | nil, message.  o.help is true
--- when -h or --help came (the rest is not read).
function Cmd:parse(args)
  if type(args) ~= "table" then error("argv: parse wants a table of strings", 2) end
  local o, pos = {}, {}
  local i, n = 1, #args
  while i <= n do
    local a = args[i]
    if type(a) ~= "string" then error(fmt("argv: argument %d is not a string", i), 2) end
    if a == "--" then
      for k = i + 1, n do pos[#pos + 1] = args[k] end
      break
    elseif a == "-h" or a == "--help" then
      o.help = true
      return o, pos
    elseif a:sub(1, 1) ~= "-" or a == "-" then
      pos[#pos + 1] = a
    else
      local spelled, inline = a:match("^(%-%-[^=]+)=(.*)$")
      spelled = spelled or a
      local opt = self.by_spelling[spelled]
      if not opt then return nil, fmt("unknown option '%s'", a) end
      local value
      if opt.kind == "flag" then
        if inline then return nil, fmt("option '%s' takes no value", spelled) end
        value = true
      elseif opt.optional then
        value = inline or true
      elseif opt.n > 1 then
        if inline then
          return nil, fmt("option '%s' takes %s values, not one with '='", spelled, COUNT[opt.n] or opt.n)
        end
        value = {}
        for k = 1, opt.n do
          local v = args[i + k]
          if v == nil or v:sub(1, 2) == "--" then
            return nil, fmt("option '%s' needs %s values%s", spelled, COUNT[opt.n] or opt.n,
              opt.arg and (": " .. opt.arg) or "")
          end
          local x, err = convert(opt, v)
          if x == nil then return nil, err end
          value[k] = x
        end
        i = i + opt.n
      else
        local v = inline
        if not v then
          v = args[i + 1]
          if v == nil or v:sub(1, 2) == "--" then return nil, fmt("option '%s' needs a value", spelled) end
          i = i + 1
        end
        local err
        value, err = convert(opt, v)
        if value == nil then return nil, err end
      end
      if opt.many then
        local list = o[opt.name] or {}
        list[#list + 1] = value
        o[opt.name] = list
      else
        o[opt.name] = value
      end
    end
    i = i + 1
  end
  return o, pos
end

-- The help's first column for one option.
local function left(opt)
  local s = opt.short and ("-" .. opt.short .. ", " .. opt.spelled) or opt.spelled
  local meta = opt.arg
  if not meta and type(opt.kind) == "table" then meta = concat(opt.kind, "|") end
  if not meta and opt.kind ~= "flag" then meta = opt.kind == "string" and "VALUE" or "N" end
  if meta then s = s .. (opt.optional and ("[=" .. meta .. "]") or (" " .. meta)) end
  return s
end

local WIDE = 20   -- a first column wider than this puts the help on the next line

--- cmd:options_text() -> the option lines of the help, -h/--help last.
function Cmd:options_text()
  local rows = {}
  for _, opt in ipairs(self.options) do rows[#rows + 1] = { left(opt), opt.help or "" } end
  rows[#rows + 1] = { "-h, --help", "this help" }
  local width = 0
  for _, r in ipairs(rows) do
    if #r[1] <= WIDE and #r[1] > width then width = #r[1] end
  end
  local indent = string.rep(" ", 2 + width + 2)
  local out = {}
  for _, r in ipairs(rows) do
    local first, help = "  " .. r[1], r[2]:gsub("\n", "\n" .. indent)
    if #r[1] > width then
      out[#out + 1] = first .. "\n" .. indent .. help
    else
      out[#out + 1] = first .. string.rep(" ", width - #r[1] + 2) .. help
    end
  end
  return concat(out, "\n") .. "\n"
end

--- cmd:usage() -> the whole help: usage, the option lines, after.
function Cmd:usage()
  return self.usage_text .. self:options_text() .. self.after
end

--- cmd:name() -> the name in messages: prog, else the script's file name.
function Cmd:name()
  return self.prog or _M.progname()
end

--- cmd:fail(message): "<name>: <message>\nTry '<name> --help'." on
--- stderr, exit 2: how every tool reports bad usage.
function Cmd:fail(msg)
  local name = self:name()
  io.stderr:write(fmt("%s: %s\nTry '%s --help'.\n", name, msg, name))
  io.stderr:flush()
  os.exit(2)
end

--- cmd:run(args) -> o, positionals: cmd:parse, except that --help
--- writes the usage on stdout and exits 0, and a usage error exits 2
--- (cmd:fail).
function Cmd:run(args)
  local o, pos = self:parse(args or {})
  if not o then self:fail(pos) end
  if o.help then
    io.stdout:write(self:usage())
    io.stdout:flush()
    os.exit(0)
  end
  return o, pos
end

--- argv.progname() -> the running script's file name ("publish.lua").
function _M.progname()
  return ((arg and arg[0] or "luartmp"):match("[^/]+$"))
end

return _M
