-- luartmp's command-line settings: made from the one settings table
-- (lua/l_settings.c), so each option, its --help line and the value
-- scripts see in rtmp.options agree with rtmp.settings.
local H = require "support.helpers"
local q = H.shquote

local function run(args, timeout)
  return H.run(q(H.luartmp) .. " " .. args, timeout or 10)
end

-- A script printing one line per setting with a command-line spelling:
-- "cli name default type", and then "name=value" for each rtmp.options
-- entry that is a setting.
local PRINT = [[
  local rtmp = require "rtmp"
  local names = {}
  for name in pairs(rtmp.settings) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local s = rtmp.settings[name]
    if s.cli then print(s.cli, name, tostring(s.default), s.type) end
  end
  for _, name in ipairs(names) do
    local v = rtmp.options[name]
    if v ~= nil then print(name .. "=" .. tostring(v) .. " " .. (math.type(v) or type(v))) end
  end
]]

describe("luartmp command-line settings", function()
  after_each(H.cleanup)

  local script
  before_each(function()
    script = H.tmpname("settings") .. ".lua"
    H.write_file(script, PRINT)
  end)

  it("--help has a line for each, with the default rtmp.settings gives", function()
    local rc, out = run(q(script))
    assert.are.equal(0, rc, out)
    local rc2, help = run("--help")
    assert.are.equal(0, rc2)
    local n = 0
    for cli, _, default, kind in out:gmatch("(%-%-[%w%-]+)\t([%w_.]+)\t(%S+)\t(%S+)\n") do
      n = n + 1
      -- the option's block: from its line to the next option
      local block = help:match("\n  " .. cli:gsub("%-", "%%-") .. " .-\n  %-")
      assert.is_string(block, cli)
      local shown = block:gsub(":%s+", ":"):gsub("%s+", " "):match("%(default ([^;)]+)")
      if kind == "bytes" then
        local v, unit = tonumber(default), ""
        for _, u in ipairs({ "K", "M", "G" }) do
          if v >= 1024 and v % 1024 == 0 then v, unit = v // 1024, u end
        end
        default = string.format("%d%s", v, unit)
      elseif kind == "string" or kind == "strings" then   -- a file, URLs: none unless given; TLS ciphers: ours
        if default == "nil" then default = "none" end
      elseif kind == "boolean" then  -- a flag (--tls-insecure)
        default = default == "true" and "on" or "off"
      elseif kind ~= "choice" then
        default = string.format("%g", tonumber(default))
      end
      assert.are.equal(default, shown, cli)
    end
    assert.are.equal(29, n)
    for _, cli in ipairs({ "--handshake-timeout", "--connect-timeout", "--idle-timeout", "--max-per-address",
        "--linger", "--merge-window", "--script-instructions", "--on-error", "--max-output", "--max-message",
        "--max-queue-bytes", "--max-queue-time", "--max-queue-stall", "--tls-cert", "--tls-key", "--tls-ciphersuites",
        "--tls-ciphers", "--tls-ca",
        "--tls-insecure", "--tls-openssl-records", "--drain-to", "--drain-timeout", "--http-timeout", "--http-max-body", "--http", "--notify",
        "--cluster-redis", "--cluster-node", "--cluster-ttl" }) do
      assert.truthy(help:find("\n  " .. cli .. " ", 1, true), cli)
    end
  end)

  it("puts the TLS options in rtmp.options.tls, --tls-insecure a flag without a value", function()
    local tls_script = H.tmpname("tls-options") .. ".lua"
    H.write_file(tls_script, [[
      local rtmp = require "rtmp"
      local t = rtmp.options.tls or {}
      print(tostring(t.cert), tostring(t.key), tostring(t.ca), tostring(t.insecure))
    ]])
    local rc, out = run("--tls-cert c.pem --tls-key=k.pem --tls-ca ca.pem --tls-insecure " .. q(tls_script))
    assert.are.equal(0, rc, out)
    assert.are.equal("c.pem\tk.pem\tca.pem\ttrue\n", out)
    rc, out = run("--tls-insecure=yes " .. q(tls_script))
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("option '--tls-insecure' takes no value", 1, true), out)
    rc, out = run("--tls-cert '' " .. q(tls_script))
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("bad --tls-cert '' (want a string)", 1, true), out)
  end)

  it("puts each value in rtmp.options, typed as the setting takes it", function()
    local rc, out = run("--idle-timeout 2.5 --max-per-address=3 --max-output 64K --max-message 2M --on-error drop "
      .. "--merge-window 0.25 --script-instructions 1e6 --max-queue-bytes 1G " .. q(script))
    assert.are.equal(0, rc, out)
    for _, line in ipairs({ "idle_timeout=2.5 float", "max_per_address=3 integer", "max_output=65536 integer",
        "max_message=2097152 integer", "on_error=drop string", "merge_window=0.25 float",
        "script_instructions=1000000 integer", "max_queue_bytes=1073741824 integer" }) do
      assert.truthy(out:find(line, 1, true), line .. " in:\n" .. out)
    end
  end)

  it("refuses a value outside a setting's bounds, saying what it wants, with exit 2", function()
    for args, msg in pairs({
      ["--merge-window 6"] = "bad --merge-window '6' (want seconds, 0 to 5)",
      ["--idle-timeout -1"] = "bad --idle-timeout '-1' (want seconds >= 0)",
      ["--max-per-address 1.5"] = "bad --max-per-address '1.5' (want a whole number >= 0)",
      ["--max-output 12X"] = "bad --max-output '12X' (want bytes >= 0, with an optional K, M or G)",
      ["--max-message 5G"] = "bad --max-message '5G' (want bytes, 0 to 4294967295, with an optional K, M or G)",
      ["--on-error ignore"] = "bad --on-error 'ignore' (want close or drop)",
    }) do
      local rc, out = run(args .. " " .. q(script))
      assert.are.equal(2, rc, args)
      assert.truthy(out:find(msg, 1, true), out)
    end
  end)

  it("--max-message bounds what a publisher may send: ffmpeg's keyframes close it", function()
    local srv = H.luartmp_start({ extra = { "--max-message", "1000" } })
    local pub = H.ffmpeg_publish(srv.url("live/big"), H.fixture_flv(), { fast = true })
    assert.truthy(H.wait_exit(pub, 20), "ffmpeg ended")
    local log = H.wait_until(function()
      local s = srv.log()
      return s:find("message longer than the limit", 1, true) and s
    end, 5)
    assert.truthy(log, srv.log())
    -- the same server with the default (8 MiB) takes the whole stream
    local srv2 = H.luartmp_start()
    local pub2 = H.ffmpeg_publish(srv2.url("live/big"), H.fixture_flv(), { fast = true })
    assert.are.equal(0, H.wait_exit(pub2, 20))
    assert.falsy(srv2.log():find("message longer than the limit", 1, true))
  end)
end)
