-- Passthrough connections (the setting passthrough = true): byte pipes
-- with no RTMP session in the way, as the byte-faithful proxy uses them.
-- Both ends in this process, over loopback.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

-- Every byte value, then some more: what goes in must come out.
local function blob(n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = string.char((i * 7 + i // 256) % 256) end
  return table.concat(t)
end

describe("passthrough connections", function()
  it("carry bytes unchanged both ways, queued before connecting too, with no handshake and no deadline for it", function()
    local at_server, at_client, events = {}, {}, {}
    local up = blob(70000) -- more than one read buffer
    local down = "\3" .. blob(1536)
    local srv = assert(rtmp.listen{ listen = "127.0.0.1:0", passthrough = true, handshake_timeout = 0.1,
      on_handshake = function() events[#events + 1] = "server handshake" end,
      on_message = function() events[#events + 1] = "server message" end,
      on_data = function(conn, bytes)
        at_server[#at_server + 1] = bytes
        if #table.concat(at_server) == #up then assert(conn:raw(down)) end
      end })
    local closed
    local conn = assert(rtmp.connect("rtmp://127.0.0.1:" .. srv.port, { passthrough = true, handshake_timeout = 0.1,
      on_handshake = function() events[#events + 1] = "client handshake" end,
      on_data = function(c, bytes)
        at_client[#at_client + 1] = bytes
        if #table.concat(at_client) == #down then c:close("done") end
      end,
      on_close = function(_, reason) closed = reason end }))
    assert.is_true(conn:raw(up:sub(1, 3)))     -- while still connecting
    assert.are.equal(3, conn.pending)
    rtmp.run(0.3)                               -- longer than the handshake deadline
    assert.is_nil(closed, "no handshake deadline")
    assert.are.equal(0, conn.pending, "written once connected")
    assert.is_true(conn:raw(up:sub(4)))
    rtmp.run(2)
    srv:close()
    assert.are.equal("done", closed)
    assert.is_true(table.concat(at_server) == up, "server got the client's bytes unchanged")
    assert.is_true(table.concat(at_client) == down, "client got the server's bytes unchanged")
    assert.are.same({}, events, "no RTMP handler ran")
  end)

  it("still close an idle connection", function()
    local reason
    local srv = assert(rtmp.listen{ listen = "127.0.0.1:0", passthrough = true, idle_timeout = 0.2,
      on_close = function(_, r) reason = r end })
    local conn = assert(rtmp.connect("rtmp://127.0.0.1:" .. srv.port, { passthrough = true, idle_timeout = 0,
      on_close = function() end }))
    rtmp.run(1.5)
    srv:close()
    assert.are.equal("idle timeout", reason)
    assert.is_true(conn.closed, "the client saw the close")
  end)

  it("close a connection whose queue passes max_output, as a slow reader", function()
    local reason, got_before_close
    local srv = assert(rtmp.listen{ listen = "127.0.0.1:0", passthrough = true,
      on_close = function(_, r) reason = r end })
    local conn = assert(rtmp.connect("rtmp://127.0.0.1:" .. srv.port, { passthrough = true, max_output = 1000,
      on_close = function(_, r) got_before_close = r end }))
    assert.is_true(conn:raw(blob(1000)))
    local ok, err = conn:raw("x")
    assert.is_nil(ok)
    assert.are.equal("output queue full", err)
    assert.are.same({ nil, "closed" }, { conn:raw("y") })
    rtmp.run(1)
    srv:close()
    assert.are.equal("output queue over 1000 bytes (slow reader)", got_before_close)
    assert.truthy(reason, "the server side closed too")
  end)

end)
