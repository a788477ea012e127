-- The event loop as scripts see it: time, timers, and a loop that has not
-- run for a while (a script that blocked, a test that slept).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local system = require "system"

describe("loop", function()
  it("rtmp.now() follows the clock even when the loop has not run", function()
    rtmp.run(0.01)
    local before = rtmp.now()
    system.sleep(0.3)
    assert.is_true(rtmp.now() - before >= 0.29)
  end)

  it("counts a timer's delay from when it is started, not from the last loop wakeup", function()
    rtmp.run(0.01)
    system.sleep(0.3) -- the loop's cached time is now 0.3 s old
    local started = rtmp.now()
    local fired
    rtmp.timer(0.2, function() fired = rtmp.now() end)
    rtmp.run(1)
    assert.truthy(fired)
    assert.is_true(fired - started >= 0.19, "fired after " .. (fired - started))
  end)

  it("repeats timers until stopped, and rtmp.run returns when nothing is left", function()
    local n = 0
    local t
    t = rtmp.timer(0.01, function()
      n = n + 1
      if n == 3 then t:stop() end
    end, 0.01)
    assert.is_true(t:active())
    local t0 = rtmp.now()
    local stopped = rtmp.run(2)
    assert.is_true(rtmp.now() - t0 < 1, "returned as soon as the timer stopped")
    assert.are.equal(3, n)
    assert.is_false(t:active())
    assert.is_false(stopped, "ended because nothing was left, not by rtmp.stop")
  end)

  it("logs a failing timer callback and goes on", function()
    local ok_after = false
    rtmp.timer(0.01, function() error("timer failure on purpose") end)
    rtmp.timer(0.03, function() ok_after = true end)
    rtmp.run(1)
    assert.is_true(ok_after)
  end)

  it("gives a client connection its whole handshake deadline after a pause", function()
    local srv = assert(rtmp.listen{ listen = "127.0.0.1:0" })
    system.sleep(0.3)
    local done, reason
    local conn = assert(rtmp.connect("rtmp://127.0.0.1:" .. srv.port .. "/live", {
      handshake_timeout = 0.25,
      on_handshake = function(c) done = true; c:close("enough") end,
      on_close = function(_, r) reason = r end,
    }))
    rtmp.run(1)
    assert.is_true(done, "handshake completed")
    assert.are.equal("enough", reason)
    assert.is_true(conn.closed)
    srv:close()
  end)
end)
