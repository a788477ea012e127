-- Bad input on HTTP (docs/HTTP.md), against luartmp scripts/live.lua
-- --http while ffmpeg publishes the fixture and an ffmpeg player records
-- it over RTMP: slow headers (408), a 1 MB header (431), a body past the
-- bound (413), an unknown method (501), a pipelined flood from a peer
-- that does not read (every request answered once it reads, reading
-- stopped meanwhile), WS-FLV clients that send a frame past the bound
-- (close 1009) or an unmasked frame (close 1002); each logged with the
-- connection id, the server's memory bounded, and the RTMP player gets
-- every frame.
local H = require "support.helpers"
local R = require "support.http_raw"
local flv_client = require "support.flv_client"
local F = H.FIXTURE

local fmt, q = string.format, H.shquote

local function rss(pid) return H.rss_kb(pid) * 1024 end

local raw = R.start

local function statuses(s)
  local list = {}
  for _, r in ipairs(R.responses(s)) do list[#list + 1] = r.status end
  return list
end

describe("HTTP bad input", function()
  after_each(function() H.cleanup() end)

  it("gets its 4xx or a close, memory stays bounded, and an RTMP player loses nothing", function()
    local hport = H.free_port()
    local srv = H.luartmp_start{ extra = { "--http", "127.0.0.1:" .. hport }, log_level = "info" }
    assert(H.wait_port(hport, 10), "no HTTP listener")
    local player_file = H.tmpname("http-bad-player.flv")
    local player = H.ffmpeg_play(srv.url("live/hb"), player_file, 4)
    assert(H.wait_until(function() return srv.count("play", "hb") >= 1 end, 10), srv.log())
    local pub = H.ffmpeg_publish(srv.url("live/hb"))
    assert(H.wait_until(function() return srv.count("publish", "hb") >= 1 end, 10), srv.log())
    H.sleep(1)
    local before = rss(srv.proc.pid)

    local flood_n = 20000
    local peers = {
      slow = raw(hport, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " .. string.rep("s", 200) .. "\r\n\r\n",
        { drip = 1, wait = 3 }),
      big_header = raw(hport, "GET /metrics HTTP/1.1\r\nX-Big: " .. string.rep("a", 1024 * 1024) .. "\r\n\r\n"),
      big_body = raw(hport, "POST /api/drop HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" .. string.rep("b", 1000000)),
      method = raw(hport, "BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
      flood = raw(hport, string.rep("GET /api/streams HTTP/1.1\r\nHost: x\r\n\r\n", flood_n)
        .. "GET /api/streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", { pause = 3, wait = 10 }),
    }
    local ws_big, ws_unmasked = H.tmpname("ws-big.flv"), H.tmpname("ws-unmasked.flv")
    peers.ws_big = flv_client(hport, "/live/hb.flv", ws_big, "--send big --after 0.5 --timeout 20")
    peers.ws_unmasked = flv_client(hport, "/live/hb.flv", ws_unmasked, "--send unmasked --after 0.5 --timeout 20")
    -- while the flood's peer does not read, the server holds at most its
    -- buffers (max_output and the read buffer), not the answers to 20000 requests
    H.sleep(2)
    -- (ASan's quarantine keeps freed memory, ~375 MB here: RSS says nothing
    -- under it, as in slow_spec and limits_spec)
    local during = rss(srv.proc.pid)
    assert.is_true(H.asan or during - before < 16 * 1024 * 1024,
      fmt("RSS grew by %d bytes with a pipelined flood unread", during - before))

    for name, p in pairs(peers) do assert(H.wait_exit(p, 30), name .. " did not end") end
    local function check(name, want)
      local out, state = peers[name].result()
      local got = statuses(out)
      assert.are.same({ want }, got, name .. ": " .. out:sub(1, 200))
      assert.are.equal("closed", state, name)
    end
    check("slow", 408)
    check("big_header", 431)
    check("big_body", 413)
    check("method", 501)
    -- the WebSocket peers: closed with their code once they broke the rules
    for name, want in pairs({ ws_big = { 1009, "client frame of 1048576 bytes, over 65536" },
                              ws_unmasked = { 1002, "client frame not masked" } }) do
      local st = peers[name].state()
      assert.are.equal(101, st.status, name)
      assert.are.equal(want[1], st.close, name)
      assert.are.equal((want[2]:gsub(" ", "_")), st.reason, name)
      assert.are.equal("closed", st["end"], name)
      assert.matches(fmt("warn http %%d+: WebSocket: %s %%(close %d%%)", (want[2]:gsub("%p", "%%%0")), want[1]), srv.log())
    end
    local out, state = peers.flood.result()
    local got = statuses(out)
    assert.are.equal(flood_n + 1, #got, "every pipelined request answered")
    for i = 1, #got do if got[i] ~= 200 then error("answer " .. i .. " is " .. got[i]) end end
    assert.are.equal("closed", state)
    local log = srv.log()
    for _, line in ipairs({ "408 request not whole within 10 s", "431 request header", "413 request body over",
                            "501 unknown method" }) do
      assert.matches("warn http %d+: " .. line:gsub("%p", "%%%0"), log)
    end
    assert.is_true(H.asan or rss(srv.proc.pid) - before < 16 * 1024 * 1024, "RSS after the bad peers")

    -- Meanwhile the RTMP pair streamed every frame.
    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher:\n" .. H.output(pub))
    assert.are.equal(0, H.wait_exit(player, 15), "player:\n" .. H.output(player))
    local info = assert(H.probe(player_file))
    assert.are.equal(F.frames, info.video and info.video.frames, "video frames received by the player")
    -- and the server still answers
    local rc, metrics = H.run(fmt("curl -s -m 5 http://127.0.0.1:%d/metrics", hport), 10)
    assert.matches("\nluartmp_connections ", metrics)
  end)

  it("answers a WebSocket version other than 13 with 426, and a ping sent with the handshake at once", function()
    local hport = H.free_port()
    local srv = H.luartmp_start{ extra = { "--http", "127.0.0.1:" .. hport }, log_level = "info" }
    assert(H.wait_port(hport, 10), "no HTTP listener")
    -- nobody publishes live/early: the WebSocket player waits, and only the pong can come back
    local v8 = flv_client(hport, "/live/early.flv", H.tmpname("ws-v8.flv"), "--version 8 --timeout 3")
    local early = flv_client(hport, "/live/early.flv", H.tmpname("ws-early.flv"), "--early-ping --timeout 2")
    assert(H.wait_exit(v8, 10) and H.wait_exit(early, 10), "a client did not end")
    local st = v8.state()
    assert.are.equal(426, st.status)
    assert.are.equal(13, st.version, "426 names the version spoken (RFC 6455 4.4)")
    assert.matches("warn http %d+: 426 WebSocket version other than 13", srv.log())
    st = early.state()
    assert.are.equal(101, st.status)
    assert.are.equal("pong", st.ping, "the ping that came with the handshake is answered without more input")
  end)
end)
