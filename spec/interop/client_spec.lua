-- luartmp in the client role against nginx-rtmp: the handshake (our digest
-- C1 against a server that checks it) and the `connect` command, as seen by
-- both sides.

local H = require "support.helpers"

describe("luartmp client against nginx-rtmp", function()
  after_each(function() H.cleanup() end)

  it("completes the handshake and connect, and reads the _result", function()
    local srv = H.nginx_start()
    local url = srv.url("live")
    local rc, out = H.run(string.format("%s spec/interop/client_connect.lua %s 10",
      H.shquote(H.luartmp), H.shquote(url)), 30)
    assert.are.equal(0, rc, "client_connect.lua exit status; output:\n" .. out)
    assert.is_truthy(out:find("handshake ", 1, true), "no handshake line:\n" .. out)
    assert.is_truthy(out:find("\nresult NetConnection.Connect.Success\n", 1, true)
      or out:find("^result NetConnection.Connect.Success\n"), "no Connect.Success:\n" .. out)

    -- nginx saw our connect with the fields we sent.
    local log = srv.log()
    assert.is_truthy(log:find("connect: app='live'", 1, true), "nginx did not log our connect:\n" .. log)
    assert.is_truthy(log:find("flashver='LNX 9,0,124,2'", 1, true), "flashVer not as sent:\n" .. log)
    assert.is_truthy(log:find("tc_url='" .. url .. "'", 1, true), "tcUrl not as sent:\n" .. log)
    -- and saw the client leave without a protocol error.
    assert.is_nil(log:find("%[error%]"), "nginx logged an error:\n" .. log)
    local src, slog = srv.stop()
    assert.are.equal(0, src, "nginx exit status; log:\n" .. slog)
  end)

  it("reports a refused connection instead of hanging", function()
    local port = H.free_port() -- nothing listens there
    local rc, out = H.run(string.format("%s spec/interop/client_connect.lua rtmp://127.0.0.1:%d/live 5",
      H.shquote(H.luartmp), port), 30)
    assert.are_not.equal(0, rc, "exit status for a refused connection; output:\n" .. out)
    assert.is_truthy(out:find("closed", 1, true), "no 'closed' line:\n" .. out)
  end)
end)
