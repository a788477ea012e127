-- rtmp.parse_url: the pieces of an rtmp:// URL, and tcUrl as clients send it.

local rtmp = require "rtmp"

describe("rtmp.parse_url", function()
  local function parts(url)
    local u, err = rtmp.parse_url(url)
    assert(u, err)
    return { u.host, u.port, u.app, u.path, u.tc_url }
  end

  it("splits host, port, app and the rest", function()
    assert.are.same({ "example.com", "1935", "live", "stream", "rtmp://example.com/live" },
      parts("rtmp://example.com/live/stream"))
    assert.are.same({ "10.0.0.1", "1936", "app", "inst/name", "rtmp://10.0.0.1:1936/app" },
      parts("rtmp://10.0.0.1:1936/app/inst/name"))
    assert.are.same({ "::1", "19350", "live", "x", "rtmp://[::1]:19350/live" },
      parts("rtmp://[::1]:19350/live/x"))
  end)

  it("keeps a query on the app when it comes before any other slash", function()
    assert.are.same({ "h", "1935", "live?token=1", "", "rtmp://h/live?token=1" },
      parts("rtmp://h/live?token=1"))
  end)

  it("accepts a URL without a path (empty app)", function()
    assert.are.same({ "h", "1935", "", "", "rtmp://h" }, parts("rtmp://h"))
    assert.are.same({ "h", "99", "", "", "rtmp://h:99" }, parts("rtmp://h:99"))
    assert.are.same({ "h", "1935", "", "", "rtmp://h/" }, parts("rtmp://h/"))
  end)

  it("takes rtmps:// apart the same, TLS on and port 443 by default (as ffmpeg and librtmp)", function()
    assert.are.same({ "example.com", "443", "live", "stream", "rtmps://example.com/live" },
      parts("rtmps://example.com/live/stream"))
    assert.are.same({ "::1", "1936", "app", "x", "rtmps://[::1]:1936/app" }, parts("rtmps://[::1]:1936/app/x"))
    assert.is_true(rtmp.parse_url("rtmps://h/live").tls)
    assert.is_false(rtmp.parse_url("rtmp://h/live").tls)
  end)

  it("refuses what is not an rtmp URL, with a message", function()
    for _, bad in ipairs({ "http://h/live", "rtmp://", "rtmp:///live", "rtmp://[::1/live", "rtmps://", "rtmpt://h/live",
        "rtmps:/h/live" }) do
      local u, err = rtmp.parse_url(bad)
      assert.is_nil(u, bad)
      assert.is_string(err, bad)
    end
  end)
end)
