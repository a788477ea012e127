-- rtmp.http.listen (docs/HTTP.md): the HTTP server on luartmp's loop,
-- against real peers started by the test (curl, and a raw socket peer in
-- python3 for what curl will not send): routes, query and body as the
-- handler sees them, the bytes on the wire, keep-alive, pipelining, and
-- each refusal (404, 500, 501, 431, 413, 408) with its status.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"
local R = require "support.http_raw"

local fmt, q = string.format, H.shquote

-- Run the peer command in the background while the loop serves; its
-- stdout once it has exited.
local function peer(cmd, timeout)
  local p = H.spawn(cmd, { name = "peer" })
  assert(C.wait_until(function() return H.exited(p) end, timeout or 15), "peer did not end: " .. cmd)
  return H.read_file(p.out) or "", H.exited(p), H.read_file(p.err) or ""
end

-- Send raw bytes (spec/support/http_raw.lua) while the loop serves; what
-- came back and whether the server closed.
local function raw(port, bytes, drip, wait)
  local p = R.start(port, bytes, { drip = drip, wait = wait })
  assert(C.wait_until(function() return H.exited(p) end, 30), "raw peer did not end")
  return p.result()
end

local responses = R.responses

describe("rtmp.http.listen", function()
  local srv, seen
  before_each(function()
    seen = {}
    srv = assert(rtmp.http.listen{ listen = "127.0.0.1:0", request_timeout = 1, max_body = 4096,
      routes = {
        ["/echo"] = function(req)
          seen[#seen + 1] = req
          return 200, { ["Content-Type"] = "text/plain", ["X-Method"] = req.method },
            fmt("%s %s q=%s b=%d", req.method, req.path, tostring(req.query.name), #req.body)
        end,
        ["/files/*"] = function(req) return 200, nil, "file " .. req.path end,
        ["/files/deep/*"] = function(req) return 200, nil, "deep " .. req.path end,
        ["/boom"] = function() error("the handler fails") end,
        ["/nostatus"] = function() return "ok" end,
      } })
  end)
  after_each(function()
    srv:close()
    H.cleanup()
  end)

  it("answers a GET with the handler's status, headers and body; the handler gets path and decoded query", function()
    local out = peer(fmt("curl -s -i 'http://127.0.0.1:%d/echo?name=a%%20b&x=1'", srv.port))
    local r = responses(out)
    assert.are.equal(1, #r, out)
    assert.are.equal(200, r[1].status)
    assert.are.equal("text/plain", r[1].headers["content-type"])
    assert.are.equal("GET", r[1].headers["x-method"])
    assert.are.equal("GET /echo q=a b b=0", r[1].body)
    assert.are.equal("a b", seen[1].query.name)
    assert.are.equal("1", seen[1].query.x)
    assert.are.equal("/echo?name=a%20b&x=1", seen[1].url)
    assert.matches("^curl/", seen[1].headers["user-agent"])
    assert.matches("^127%.0%.0%.1:%d+$", seen[1].peer)
  end)

  it("hands a POST body to the handler byte for byte, plain and chunked", function()
    local body = string.char(0, 1, 2, 255) .. string.rep("z", 3000)
    local f = H.tmpname("body.bin")
    H.write_file(f, body)
    local out = peer(fmt("curl -s 'http://127.0.0.1:%d/echo' --data-binary @%s", srv.port, q(f)))
    assert.are.equal("POST /echo q=nil b=3004", out)
    assert.are.equal(body, seen[1].body)
    out = peer(fmt("curl -s 'http://127.0.0.1:%d/echo' -H 'Transfer-Encoding: chunked' --data-binary @%s",
      srv.port, q(f)))
    assert.are.equal("POST /echo q=nil b=3004", out)
    assert.are.equal(body, seen[2].body)
  end)

  it("routes by exact path, else the longest prefix ending in *, else 404", function()
    local out = peer(fmt("curl -s http://127.0.0.1:%d/files/a.txt http://127.0.0.1:%d/files/deep/b "
      .. "-w ' %%{http_code}\\n' http://127.0.0.1:%d/nothing/here", srv.port, srv.port, srv.port))
    assert.matches("^file /files/a%.txt", out)
    assert.matches("deep /files/deep/b", out)
    assert.matches("404 Not Found\n 404", out)
  end)

  it("keeps the connection alive between requests and answers pipelined requests in order", function()
    peer(fmt("curl -s http://127.0.0.1:%d/echo?name=1 http://127.0.0.1:%d/echo?name=2", srv.port, srv.port))
    assert.are.equal(2, #seen)
    assert.are.equal(seen[1].id, seen[2].id, "one connection for both")
    local req = "GET /echo?name=%d HTTP/1.1\r\nHost: x\r\n\r\n"
    local out, state = raw(srv.port, fmt(req, 1) .. fmt(req, 2)
      .. "GET /echo?name=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local r = responses(out)
    assert.are.equal(3, #r, out)
    for i = 1, 3 do assert.are.equal("GET /echo q=" .. i .. " b=0", r[i].body) end
    assert.are.equal("close", r[3].headers.connection)
    assert.are.equal("closed", state)
  end)

  it("answers 500 for a handler that raises or returns no status, and goes on serving", function()
    local out = peer(fmt("curl -s -w ' %%{http_code}' http://127.0.0.1:%d/boom http://127.0.0.1:%d/nostatus "
      .. "http://127.0.0.1:%d/echo", srv.port, srv.port, srv.port))
    assert.are.equal("500 Internal Server Error\n 500500 Internal Server Error\n 500GET /echo q=nil b=0 200", out)
  end)

  it("refuses an unknown method (501), a header past 16 KiB (431), a body past max_body (413), "
    .. "slow headers (408), malformed requests (400), and closes", function()
    local cases = {
      { "FOO /echo HTTP/1.1\r\nHost: x\r\n\r\n", 501 },
      { "PROPFIND /echo HTTP/1.1\r\nHost: x\r\n\r\n", 501 },
      { "GET /echo HTTP/1.1\r\nX-Big: " .. string.rep("a", 20000) .. "\r\n\r\n", 431 },
      { "GET /echo HTTP/1.1\r\nX-Big: " .. string.rep("a", 1024 * 1024) .. "\r\n\r\n", 431 },
      { "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" .. string.rep("b", 5000), 413 },
      { "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" .. string.rep("b", 5000) .. "\r\n0\r\n\r\n", 413 },
      { "GET /echo HTTP/1.1\r\nNo Colon Here\r\n\r\n", 400 },
      { "GET /echo XTTP/1.1\r\n\r\n", 400 },
      { "GET /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400 },
    }
    for _, case in ipairs(cases) do
      local out, state = raw(srv.port, case[1])
      local r = responses(out)
      assert.are.equal(1, #r, case[1]:sub(1, 40) .. ": " .. out)
      assert.are.equal(case[2], r[1].status, case[1]:sub(1, 40))
      assert.are.equal("close", r[1].headers.connection)
      assert.are.equal("closed", state, case[1]:sub(1, 40))
    end
    assert.are.equal(0, #seen, "no refused request reached the handler")
    -- a header sent a byte every 0.1 s is not whole within request_timeout = 1
    local t0 = H.now()
    local out, state = raw(srv.port, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " .. string.rep("s", 40) .. "\r\n\r\n", 1)
    local r = responses(out)
    assert.are.equal(408, r[1] and r[1].status, out)
    assert.are.equal("closed", state)
    assert.is_true(H.now() - t0 < 3)
    assert.are.equal(0, #seen)
  end)

  it("closes an idle keep-alive connection after idle_timeout", function()
    local s2 = assert(rtmp.http.listen{ listen = "127.0.0.1:0", idle_timeout = 0.5,
      handler = function() return 204 end })
    local t0 = H.now()
    local out, state = raw(s2.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 5)
    s2:close()
    assert.are.equal(204, responses(out)[1].status)
    assert.are.equal("closed", state)
    assert.is_true(H.now() - t0 < 3, "closed by the server, not by the peer's wait")
  end)

  it("refuses misuse and reports an address that cannot be bound", function()
    assert.has_error(function() rtmp.http.listen{ listen = "127.0.0.1:0" } end)
    assert.has_error(function() rtmp.http.listen{ listen = "127.0.0.1:0", handler = print, bogus = 1 } end)
    local s, err = rtmp.http.listen{ listen = "127.0.0.1:" .. srv.port, handler = print }
    assert.is_nil(s)
    assert.matches("Address already in use", err)
  end)
end)
