-- The digest handshake against real peers, both roles.
--
-- Client side: our client sends a digest C1 (layout 1) and checks the
-- server's S1 digest and S2 signature (conn.handshake = what S1 was,
-- conn.handshake_verified = whether S2 answered our C1).
-- Server side: ffmpeg's player and librtmp in its FP9 mode check our S1
-- digest and S2 signature and give up when they do not match (ffmpeg
-- rtmpproto.c rtmp_handshake: "Server response validating failed",
-- "Signature mismatch" when reading, with a server version byte >= 3;
-- librtmp handshake.h HandShake: "Couldn't verify the server digest",
-- "Server not genuine Adobe!"), so a session that goes on to `play` is a
-- verified one.  rtmpdump uses its FP9 (digest) handshake only with
-- --swfhash/--swfsize; plain otherwise.

local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"

local fmt = string.format
local q = H.shquote

-- A live server that logs what each client's handshake was.
local function start_server(plain)
  local script = H.tmpname("hs-server.lua")
  H.write_file(script, table.concat({
    'local live = require "live"',
    'live.start{ plain_handshake = ' .. tostring(plain) .. ',',
    '  on_handshake = function(conn)',
    '    conn:log("info", "handshake kind=%s verified=%s", conn.handshake, tostring(conn.handshake_verified))',
    '  end }', "" }, "\n"))
  return H.luartmp_start{ script = script, log_level = "info" }
end

-- The peer-port-tagged handshake lines of a luartmp log, in order.
local function handshakes(log)
  local t = {}
  for kind, verified in log:gmatch("handshake kind=(%S+) verified=(%S+)") do
    t[#t + 1] = kind .. " " .. verified
  end
  return t
end

-- A client that plays `url` until the server logged the play, then is stopped.
local function play_until_logged(srv, cmd, name, n)
  local p = H.spawn(cmd, { name = name })
  local ok = H.wait_until(function()
    return H.count_plain(srv.log(), " play live/hs") >= n or H.exited(p)
  end, 10)
  H.kill(p)
  assert(ok and H.count_plain(srv.log(), " play live/hs") >= n,
    name .. " did not get to play: " .. H.output(p) .. "\n" .. srv.log())
  return H.output(p)
end

local SWF = fmt("-w %s -x 12345", string.rep("ab", 32)) -- any hash and size: librtmp's FP9 handshake

describe("digest handshake", function()
  after_each(function()
    rtmp.shutdown("test done")
    H.cleanup()
  end)

  it("handshake_verified without sockets: kept after the handshake, false for a digest C1 echoed by a plain server", function()
    local function pair(server_opts)
      local c = rtmp.session{ role = "client" }
      local s = rtmp.session(server_opts)
      for _ = 1, 4 do
        local out = c:output()
        if #out > 0 then assert(s:feed(out)) end
        out = s:output()
        if #out > 0 then assert(c:feed(out)) end
      end
      assert.is_true(c.ready and s.ready)
      return c, s
    end
    local c, s = pair{ role = "server" }
    assert.are.same({ "digest1", true, "digest1", true },
      { c.handshake, c.handshake_verified, s.handshake, s.handshake_verified })
    c, s = pair{ role = "server", plain_handshake = true }
    assert.are.same({ "plain", false, "digest1", true },
      { c.handshake, c.handshake_verified, s.handshake, s.handshake_verified })
  end)

  it("our client to nginx-rtmp: a digest S1 that verifies; a plain client gets a plain answer", function()
    local ngx = H.nginx_start()
    local c = C.connect(ngx.url("live"))
    assert.are.equal("digest1", c.conn.handshake)
    assert.is_true(c.conn.handshake_verified)
    c:close()

    local plain = {}
    local conn = assert(rtmp.connect(ngx.url("live"), {
      plain_handshake = true,
      on_handshake = function(cn) plain.kind, plain.verified = cn.handshake, cn.handshake_verified; cn:close() end,
    }))
    assert.is_truthy(C.wait_until(function() return plain.kind end, 5))
    assert.are.equal("client", conn.role)
    assert.are.equal("plain", plain.kind)     -- nginx answers a plain C1 the old way
    assert.is_true(plain.verified)            -- and S2 echoes our C1

    local log = ngx.log()
    assert.are.equal(2, H.count_plain(log, "client connected"), log)
    assert.is_nil(log:find("handshake", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)

  it("our client to ffmpeg -listen 1: a plain S1 and an echoed S2; our publish is recorded", function()
    local port = H.free_port()
    local out = H.tmpname("listen.flv")
    local ff = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v debug -listen 1 -i rtmp://127.0.0.1:%d/live/hs " ..
      "-c copy -f flv -y %s", port, q(out)), { name = "ffmpeg-listen" })
    assert(H.wait_port(port, 10, ff))

    local c = C.connect(fmt("rtmp://127.0.0.1:%d/live", port))
    -- ffmpeg's server does not sign S1 and echoes C1 as S2, so our digest
    -- C1 got no digest answer: detected as plain, not verified
    assert.are.equal("plain", c.conn.handshake)
    assert.is_false(c.conn.handshake_verified)
    local sid = c:create_stream()
    c:publish(sid, "hs")
    assert.is_truthy(c:wait(function() return c:find{ code = "NetStream.Publish.Start" } end, 5),
      "no Publish.Start: " .. H.output(ff))
    local sent = 0
    for _, t in ipairs(C.flv_tags(H.fixture_flv())) do
      if t.timestamp > 1000 then break end
      if t.type == 8 or t.type == 9 or t.type == 18 then
        assert(c.conn:send({ type = t.type, stream = sid, timestamp = t.timestamp }, t.data))
        if t.type == 9 and t.data:byte(2) ~= 0 then sent = sent + 1 end
      end
    end
    c.conn:command({ stream = sid, csid = 8 }, "deleteStream", 0, rtmp.null, sid)
    C.wait_until(function() return c.conn.pending == 0 end, 5)
    c:close()
    assert(H.wait_exit(ff, 10), "ffmpeg -listen did not end: " .. H.output(ff))

    local info = assert(H.probe(out))
    assert.are.equal("h264", info.video.codec)
    assert.are.equal(sent, info.video.frames)
  end)

  it("our server to ffmpeg and rtmpdump: each checks our digest S1/S2 and plays", function()
    local srv = start_server(false)
    local url = srv.url("live/hs")
    local fflog = play_until_logged(srv, fmt("ffmpeg -nostdin -hide_banner -v debug -i %s -f null -", q(url)),
      "ffmpeg-play", 1)
    -- ffmpeg read our version byte (>= 3) and so validated S1 and S2
    assert.is_truthy(fflog:find("Server version 13.14.10.13", 1, true), fflog)
    assert.is_nil(fflog:find("Server response validating failed", 1, true), fflog)
    assert.is_nil(fflog:find("Signature mismatch", 1, true), fflog)

    local rdfp9 = play_until_logged(srv, fmt("rtmpdump -V %s -r %s -v -o /dev/null", SWF, q(url)), "rtmpdump-fp9", 2)
    assert.is_truthy(rdfp9:find("HandShake: Client digest offset:", 1, true), rdfp9) -- its FP9 handshake
    assert.is_truthy(rdfp9:find("Genuine Adobe Flash Media Server", 1, true), rdfp9)
    local rdplain = play_until_logged(srv, fmt("rtmpdump -V -r %s -v -o /dev/null", q(url)), "rtmpdump", 3)
    assert.is_nil(rdplain:find("Genuine Adobe", 1, true), rdplain)

    -- what each client sent, as the server saw it
    assert.are.same({ "digest1 true", "digest1 true", "plain true" }, handshakes(srv.log()))
  end)

  it("our server with plain_handshake = true: ffmpeg and rtmpdump (FP9) fall back and play", function()
    local srv = start_server(true)
    local url = srv.url("live/hs")
    local fflog = play_until_logged(srv, fmt("ffmpeg -nostdin -hide_banner -v debug -i %s -f null -", q(url)),
      "ffmpeg-play", 1)
    -- a zero version byte: ffmpeg does not look for a digest
    assert.is_truthy(fflog:find("Server version 0.0.0.0", 1, true), fflog)
    local rdfp9 = play_until_logged(srv, fmt("rtmpdump -V %s -r %s -v -o /dev/null", SWF, q(url)), "rtmpdump-fp9", 2)
    assert.is_truthy(rdfp9:find("HandShake: Client digest offset:", 1, true), rdfp9)
    assert.is_truthy(rdfp9:find("FMS Version   : 0.0.0.0", 1, true), rdfp9) -- so it drops the FP9 checks
    assert.is_nil(rdfp9:find("Genuine Adobe", 1, true), rdfp9)
    -- the clients still sent digest C1s; they echoed our plain S1 as C2
    assert.are.same({ "digest1 true", "digest1 true" }, handshakes(srv.log()))
  end)
end)
