-- rtmp.http.request (docs/HTTP.md): libcurl on luartmp's loop, against a
-- real HTTP(S) server started by the test (spec/support/http_server.py):
-- what the server receives, what the script gets back, each failure with
-- its clear reason, and a request that waits without stopping RTMP.
local H = require "support.helpers"
local C = require "support.client"
local HS = require "support.http"
local T = require "support.tls"
local rtmp = require "rtmp"
local json = require "dkjson"

local fmt, q = string.format, H.shquote

-- Run fn in a coroutine on the loop; wait for it to end (at most timeout
-- seconds); returns what it returned.
local run = C.run

local function request(t, timeout) return run(function() return rtmp.http.request(t) end, timeout) end

describe("rtmp.http.request", function()
  local web
  before_each(function() web = HS.start() end)
  after_each(function()
    local left = rtmp.http.pending()
    H.cleanup()
    assert.are.equal(0, left, "requests left in flight")
  end)

  it("sends a GET and gets status, reason, headers and body", function()
    local res, err = request{ url = web.url("/echo?a=1&b=%20x") }
    assert(res, err)
    assert.are.equal(200, res.status)
    assert.are.equal("OK", res.reason)
    assert.are.equal("application/json", res.headers["content-type"])
    assert.are.equal("yes", res.headers["x-echo"])
    assert.are.equal("a, b", res.headers["x-multi"], "a repeated header is joined")
    local echo = json.decode(res.body)
    assert.are.equal("GET", echo.method)
    assert.are.equal("/echo", echo.path)
    assert.are.equal("a=1&b=%20x", echo.query)
    local got = web.requests()
    assert.are.equal(1, #got)
    assert.are.equal("GET", got[1].method)
    assert.are.equal("", got[1].body)
  end)

  it("sends a POST with the script's headers and body, byte for byte", function()
    local body = "call=publish&name=cam&bin=" .. string.char(0, 1, 2, 255) .. string.rep("z", 5000)
    local res, err = request{ url = web.url("/echo"), method = "POST", body = body,
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Token"] = "t0k", ["X-Number"] = 7 } }
    assert(res, err)
    assert.are.equal(200, res.status)
    local got = web.requests()[1]
    assert.are.equal("POST", got.method)
    assert.are.equal("application/x-www-form-urlencoded", got.headers["content-type"])
    assert.are.equal("t0k", got.headers["x-token"])
    assert.are.equal("7", got.headers["x-number"])
    assert.are.equal(tostring(#body), got.headers["content-length"])
    assert.is_nil(got.headers["expect"], "no Expect: 100-continue wait")
    assert.are.equal(body:gsub(".", function(c) return fmt("%02x", c:byte()) end), got.body_hex)
    local fields = HS.fields(got)
    assert.are.equal("publish", fields.call)
    assert.are.equal("cam", fields.name)
  end)

  it("sends PUT, DELETE and HEAD, and a body with a method other than POST", function()
    for _, m in ipairs{ "PUT", "DELETE", "PATCH" } do
      local res, err = request{ url = web.url("/echo"), method = m, body = m .. "-body" }
      assert(res, err)
      local echo = json.decode(res.body)
      assert.are.equal(m, echo.method)
      assert.are.equal(m .. "-body", echo.body)
    end
    local res = assert(request{ url = web.url("/echo"), method = "HEAD" })
    assert.are.equal(200, res.status)
    assert.are.equal("", res.body)
    assert.are.equal("HEAD", web.requests()[4].method)
  end)

  it("returns every status as a response, and follows redirects only when asked", function()
    for _, code in ipairs{ 201, 204, 400, 403, 404, 500, 503 } do
      local res, err = request{ url = web.url("/status/" .. code) }
      assert(res, err)
      assert.are.equal(code, res.status)
      if code ~= 204 then assert.are.equal("status " .. code, res.body) end
    end
    local res = assert(request{ url = web.url("/status/302?location=rtmp://origin.example/live/cam") })
    assert.are.equal(302, res.status)
    assert.are.equal("rtmp://origin.example/live/cam", res.headers.location)
    local to = web.url("/echo")
    res = assert(request{ url = web.url("/status/307?location=" .. to), redirects = 2 })
    assert.are.equal(200, res.status)
    assert.are.equal("/echo", json.decode(res.body).path)
  end)

  it("fails with a clear reason: timeout, refused, unknown host, not http", function()
    local t0 = rtmp.now()
    local res, err, code = request{ url = web.url("/slow?delay=4"), timeout = 1 }
    local took = rtmp.now() - t0
    assert.is_nil(res)
    assert.are.equal("TIMEOUT", code)
    assert.truthy(err:find("^timeout: no complete response within 1 s"), err)
    assert.is_true(took >= 0.9 and took < 2.5, "took " .. took)

    local closed_port = H.free_port()
    res, err, code = request{ url = fmt("http://127.0.0.1:%d/", closed_port) }
    assert.is_nil(res)
    assert.are.equal("IO", code)
    assert.truthy(err:find("^connection refused: "), err)

    res, err, code = request{ url = "http://no-such-host.invalid/x" }
    assert.is_nil(res)
    assert.are.equal("IO", code)
    assert.truthy(err:find("^cannot resolve host: "), err)
    assert.truthy(err:find("no-such-host.invalid", 1, true), err)

    res, err, code = request{ url = "rtmp://127.0.0.1/live" }
    assert.is_nil(res)
    assert.are.equal("INVAL", code)
    assert.are.equal("not an http:// or https:// URL: 'rtmp://127.0.0.1/live'", err)
  end)

  it("bounds the response body: max_body, 1 MiB by default (http_max_body)", function()
    local bound = rtmp.settings.http_max_body.default
    assert.are.equal(1024 * 1024, bound)
    local res, err, code = request{ url = web.url("/big?bytes=" .. bound) }
    assert(res, err)
    assert.are.equal(bound, #res.body)
    res, err, code = request{ url = web.url("/big?bytes=" .. (bound + 1)) }
    assert.is_nil(res)
    assert.are.equal("MSG_TOO_LONG", code)
    assert.are.equal(fmt("response body over %d bytes (max_body)", bound), err)
    res = assert(request{ url = web.url("/big?bytes=1000"), max_body = 1000 })
    assert.are.equal(1000, #res.body)
    res, err, code = request{ url = web.url("/big?bytes=1001"), max_body = 1000 }
    assert.is_nil(res)
    assert.are.equal("MSG_TOO_LONG", code)
  end)

  it("raises for misuse: outside a coroutine, unknown or mistyped fields, line breaks", function()
    -- a timer's function runs outside any coroutine (as a handler does)
    local outside
    rtmp.timer(0, function() outside = table.pack(pcall(rtmp.http.request, { url = web.url("/") })) end)
    assert(C.wait_until(function() return outside end, 2))
    assert.is_false(outside[1])
    assert.are.equal("rtmp.http.request waits for the response and must run inside a coroutine "
      .. "(the luartmp main script, rtmp.spawn, an rtmp.app event)", outside[2])
    local function err_of(t)
      return run(function()
        local ok, e = pcall(rtmp.http.request, t)
        assert(not ok, "no error")
        return e
      end)
    end
    assert.truthy(err_of{ url = web.url("/"), tiemout = 3 }:find("unknown field 'tiemout'", 1, true))
    assert.truthy(err_of{ url = 5 }:find("url must be a string", 1, true))
    assert.truthy(err_of{ url = web.url("/"), method = "get" }:find("upper-case HTTP method", 1, true))
    assert.truthy(err_of{ url = web.url("/"), headers = { ["X-A"] = "1\r\nX-Injected: 2" } }
      :find("without line breaks", 1, true))
    assert.truthy(err_of{ url = web.url("/"), timeout = -1 }:find("http_timeout must be", 1, true))
    assert.are.equal(0, #web.requests(), "nothing was sent")
  end)

  it("cancels: req:cancel() and a closed coroutine; the callback never runs", function()
    local called = false
    local req = rtmp.http.start({ url = web.url("/slow?delay=1") }, function() called = true end)
    assert.is_true(req:active())
    assert(C.wait_until(function() return #web.requests() == 1 end, 5))
    assert.are.equal(1, rtmp.http.pending())
    req:cancel()
    assert.is_false(req:active())
    assert.are.equal(0, rtmp.http.pending())
    local resumed = false
    local co = coroutine.create(function()
      rtmp.http.request{ url = web.url("/slow?delay=1") }
      resumed = true
    end)
    assert(coroutine.resume(co))
    assert.are.equal("suspended", coroutine.status(co))
    assert(C.wait_until(function() return #web.requests() == 2 end, 5))
    assert.are.equal(1, rtmp.http.pending())
    assert(coroutine.close(co))
    assert.are.equal(0, rtmp.http.pending(), "closing the coroutine cancelled its request")
    -- both requests reached the server; neither answer reaches the script
    C.wait_until(function() return false end, 2)
    assert.is_false(called)
    assert.is_false(resumed)
  end)

  it("does not stop the loop: a player keeps receiving frames while a request waits 2 s", function()
    local live = H.luartmp_start{ log_level = "info" }
    H.ffmpeg_publish(live.url("live/loop"))
    assert(H.wait_until(function() return live.count("publish", "loop") > 0 end, 10), live.log())
    local c = C.player(live.url("live"), "loop")
    local function frames() return c:count{ type = 9 } end
    local during, res, err
    rtmp.spawn(function()
      local before = frames()
      res, err = rtmp.http.request{ url = web.url("/slow?delay=2") }
      during = frames() - before
    end)
    assert(C.wait_until(function() return during end, 10), "the request did not end")
    assert(res, err)
    assert.are.equal("slow", res.body)
    -- 25 frames a second: about 50 arrived while the request waited
    assert.is_true(during >= 40, "frames received during the request: " .. during)
    c:close()
  end)

  describe("over HTTPS", function()
    local tls_web, certs
    before_each(function()
      certs = T.certs()
      tls_web = HS.start{ tls = true }
    end)

    it("verifies the server against tls.ca, refuses an unknown issuer, and insecure skips it", function()
      local res, err = request{ url = tls_web.url("/echo", "localhost"), tls = { ca = certs.ca } }
      assert(res, err)
      assert.are.equal(200, res.status)
      assert.are.equal("/echo", json.decode(res.body).path)
      res, err = request{ url = tls_web.url("/echo", "127.0.0.1"), tls = { ca = certs.ca } }
      assert(res, err) -- the certificate names the address too

      local code
      res, err, code = request{ url = tls_web.url("/echo", "localhost") }
      assert.is_nil(res)
      assert.are.equal("IO", code)
      assert.truthy(err:find("^TLS: "), err)
      assert.truthy(err:lower():find("certificate", 1, true), err)

      res, err = request{ url = tls_web.url("/echo", "localhost"), tls = { insecure = true } }
      assert(res, err)
      assert.are.equal(200, res.status)
      -- only the two verified requests and the insecure one got through
      assert.are.equal(3, #tls_web.requests())
    end)

    it("takes --tls-ca from rtmp.options, as rtmp.connect does", function()
      rtmp.options.tls = { ca = certs.ca }
      local ok, res, err = pcall(request, { url = tls_web.url("/echo", "localhost") })
      rtmp.options.tls = nil
      assert(ok, res)
      assert(res, err)
      assert.are.equal(200, res.status)
    end)

    it("works in a server with rtmps:// listeners: --tls-cert and the rest are theirs, not the request's", function()
      -- rtmp.options.tls as `luartmp --tls-cert F --tls-key K --tls-ciphersuites S --tls-ca CA` leaves it
      rtmp.options.tls = { cert = certs.cert, key = certs.key, ciphersuites = "TLS_AES_256_GCM_SHA384",
                           ca = certs.ca }
      local ok, res, err = pcall(request, { url = tls_web.url("/echo", "localhost") })
      local own_ok, own_err = run(function()
        -- even the value the command line gave: the request's own tls takes no key
        return pcall(rtmp.http.request, { url = tls_web.url("/echo", "localhost"), tls = { key = certs.key } })
      end)
      rtmp.options.tls = nil
      assert(ok, res)
      assert(res, err)
      assert.are.equal(200, res.status)
      assert.is_false(own_ok)
      assert.truthy(tostring(own_err):find("tls takes ca and insecure here (key is for RTMP)", 1, true), own_err)
      assert.are.equal(1, #tls_web.requests())
    end)
  end)

  it("luartmp: a request in flight at SIGINT is cancelled and the process ends at once", function()
    local script = H.tmpname("http-inflight") .. ".lua"
    H.write_file(script, table.concat({
      'local rtmp = require "rtmp"',
      'local app = require "rtmp.app"',
      'app.new{}:listen()',
      'rtmp.spawn(function()',
      '  rtmp.log.info("request starts")',
      fmt('  local res, err = rtmp.http.request{ url = %q, timeout = 60 }', web.url("/slow?delay=30")),
      '  rtmp.log.info("request ended: %s", tostring(res or err))',
      'end)', "" }, "\n"))
    local srv = H.luartmp_start{ script = script, log_level = "info" }
    assert(H.wait_until(function() return #web.requests() == 1 end, 10), srv.log())
    local t0 = H.now()
    H.signal(srv.proc, "INT")
    local rc = H.wait_exit(srv.proc, 5)
    assert.are.equal(0, rc, srv.log())
    assert.is_true(H.now() - t0 < 3)
    local log = srv.log()
    assert.truthy(log:find("http: 1 request in flight cancelled", 1, true), log)
    assert.is_nil(log:find("request ended", 1, true), log)
  end)
end)
