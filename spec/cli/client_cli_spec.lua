-- The client scripts' command lines: --help, usage errors (exit 2), the
-- progress line (on a terminal, with --progress, never otherwise).
local H = require "support.helpers"
local q, fmt = H.shquote, string.format

local PUBLISH, PLAY = "scripts/client/publish.lua", "scripts/client/play.lua"

local function run(script, args, timeout)
  return H.run(q(H.luartmp) .. " " .. script .. " " .. args, timeout or 20)
end

describe("client scripts' command line", function()
  after_each(H.cleanup)

  it("print their usage with --help and exit 0", function()
    local rc, out = run(PUBLISH, "--help")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("usage: luartmp scripts/client/publish.lua [options] file.flv rtmp://", 1, true), out)
    for _, opt in ipairs{ "--fast", "--loop N", "--type TYPE", "--progress" } do
      assert.truthy(out:find(opt, 1, true), opt)
    end
    rc, out = run(PLAY, "-h")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("usage: luartmp scripts/client/play.lua [options] rtmp://", 1, true), out)
    for _, opt in ipairs{ "--duration S", "--frames N", "--timeout S", "--progress" } do
      assert.truthy(out:find(opt, 1, true), opt)
    end
  end)

  it("exit 2 with one message and a hint on bad usage", function()
    local cases = {
      { PUBLISH, "", "need a file and a URL" },
      { PUBLISH, "a.flv", "need a file and a URL" },
      { PUBLISH, "a.flv rtmp://h/live/x extra", "too many arguments" },
      { PUBLISH, "--bogus a.flv rtmp://h/live/x", "unknown option '--bogus'" },
      { PUBLISH, "-x a.flv rtmp://h/live/x", "unknown option '-x'" },
      { PUBLISH, "--loop two a.flv rtmp://h/live/x", "bad --loop 'two'" },
      { PUBLISH, "--loop 1.5 a.flv rtmp://h/live/x", "bad --loop '1.5'" },
      { PUBLISH, "--type vod a.flv rtmp://h/live/x", "bad --type 'vod' (want live, record, append)" },
      { PUBLISH, "--fast=yes a.flv rtmp://h/live/x", "option '--fast' takes no value" },
      { PUBLISH, "a.flv http://h/live/x", "bad URL 'http://h/live/x'" },
      { PUBLISH, "a.flv rtmp://h/live", "bad URL 'rtmp://h/live'" },
      { PUBLISH, "a.flv rtmp://h", "bad URL 'rtmp://h'" },
      { PLAY, "", "need a URL" },
      { PLAY, "--frames", "option '--frames' needs a value" },
      { PLAY, "--duration -1 rtmp://h/live/x -", "bad --duration '-1' (want a number >= 0)" },
      { PLAY, "--duration=soon rtmp://h/live/x -", "bad --duration 'soon'" },
      { PLAY, "rtmp://h/live/x a.flv b.flv", "too many arguments" },
      { PLAY, "rtmp:/h/live/x -", "bad URL" },
    }
    for _, c in ipairs(cases) do
      local rc, out = run(c[1], c[2])
      local prog = c[1]:match("[^/]+$")
      assert.are.equal(2, rc, c[2] .. ": " .. out)
      assert.truthy(out:find(prog .. ": " .. c[3], 1, true), c[2] .. ": " .. out)
      assert.truthy(out:find("Try '" .. prog .. " --help'.", 1, true), out)
      assert.are.equal(2, H.count_plain(out, "\n"), c[2] .. ": " .. out)
    end
  end)

  it("play.lua refuses to write FLV to a terminal", function()
    if H.exec("command -v script >/dev/null") ~= 0 then return pending("no script(1)") end
    local rc, out = H.run(fmt("script -qec %s /dev/null", q(q(H.luartmp) .. " " .. PLAY .. " rtmp://127.0.0.1:1/live/x")), 20)
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("stdout is a terminal", 1, true), out)
  end)

  it("show progress on a terminal or with --progress, and print nothing otherwise", function()
    local file = H.fixture_flv()
    local srv = H.luartmp_start()
    local url = srv.url("live/progress")
    -- not a terminal: nothing but the exit status
    local rc, out = run(PUBLISH, "--fast " .. q(file) .. " " .. q(url))
    assert.are.equal(0, rc, out)
    assert.are.equal("", out)
    -- --progress into a pipe: one line per update, the last one with the
    -- whole file's bytes and its last timestamp
    rc, out = run(PUBLISH, "--fast --progress " .. q(file) .. " " .. q(url))
    assert.are.equal(0, rc, out)
    local last = out:match("([^\n]*)\n$")
    assert.truthy(last and last:match("^publish [%d.]+ [kM]?B  00:00:0[78]%.%d%d%d  %d+ kbit/s$"), out)
    assert.is_nil(out:find("\r", 1, true), "no carriage return outside a terminal")
    -- a terminal (script(1) gives it a pty): updated in place with \r
    if H.exec("command -v script >/dev/null") ~= 0 then return end
    local cmd = fmt("%s %s %s %s", q(H.luartmp), PUBLISH, q(file), q(url))
    rc, out = H.run(fmt("timeout 3 script -qec %s /dev/null", q(cmd)), 20)
    -- 8 s of media in real time: interrupted after about 3 s, progress seen
    assert.truthy(H.count_plain(out, "\r") >= 3, out)
    assert.truthy(out:find("\rpublish [%d.]+ [kM]?B  00:00:0%d%.%d%d%d  %d+ kbit/s\27%[K"), out)
  end)
end)
