-- Hostile bytes against a live luartmp server, Redis style: raw bytes over
-- TCP (bash's /dev/tcp), then the server's log and its other clients are
-- checked. All the cases run while one ffmpeg publisher/player pair streams
-- the fixture through the same server; at the end the player must have
-- received every frame.
--
-- For each case:
--   - the offending connection is closed, and the log says why, with the
--     connection id and our exact peer address:
--       ... conn=ID peer=127.0.0.1:PORT close: <reason>
--   - the pair's connections are not closed meanwhile;
--   - the pair is still streaming, and a fresh client still gets
--     NetConnection.Connect.Success.

local H = require "support.helpers"
local F = H.FIXTURE

local fmt = string.format

describe("bad input to a live luartmp server", function()
  local srv, pub, player, player_file
  local pair_ids = {} -- conn ids of the pair's publisher and player

  setup(function()
    -- A short handshake deadline so the truncated-handshake case is quick.
    srv = H.luartmp_start{ script = "spec/badinput/raising.lua", handshake_timeout = 2 }
    player_file = H.tmpname("pair-player.flv")
    player = H.ffmpeg_play(srv.url("live/pair"), player_file, 4)
    assert(H.wait_until(function() return srv.count("play", "pair") >= 1 end, 10),
      "the pair's player did not reach play:\n" .. srv.log())
    pub = H.ffmpeg_publish(srv.url("live/pair"))
    assert(H.wait_until(function() return srv.count("publish", "pair") >= 1 end, 10),
      "the pair's publisher did not reach publish:\n" .. srv.log())
    for line in srv.log():gmatch("[^\n]+") do
      local id = line:match(" conn=(%d+) .* play live/pair") or line:match(" conn=(%d+) .* publish live/pair")
      if id then pair_ids[id] = true end
    end
    local n = 0
    for _ in pairs(pair_ids) do n = n + 1 end
    assert(n == 2, "could not find the pair's two connection ids in the log:\n" .. srv.log())
  end)

  teardown(function() H.cleanup() end)

  -- Every "close:" line in the log as { id, peer, reason }.
  local function closes()
    local list = {}
    for line in srv.log():gmatch("[^\n]+") do
      local id, peer, reason = line:match(" conn=(%d+) peer=(%S+) close: (.*)$")
      if id then list[#list + 1] = { id = id, peer = peer, reason = reason, line = line } end
    end
    return list
  end

  -- Wait for the close line of our connection (local port `lport`); check
  -- that its reason contains `reason` and that the pair's connections were
  -- not closed.
  local function expect_close(lport, reason)
    local peer = "127.0.0.1:" .. lport
    local mine = H.wait_until(function()
      for _, c in ipairs(closes()) do
        if c.peer == peer then return c end
      end
    end, 5)
    assert(mine, fmt("no close line for peer %s in the log:\n%s", peer, srv.log()))
    assert(mine.reason:find(reason, 1, true),
      fmt("close reason for %s is %q, expected it to contain %q", peer, mine.reason, reason))
    for _, c in ipairs(closes()) do
      assert(not pair_ids[c.id], "the pair's connection was closed too: " .. c.line)
    end
    return mine
  end

  -- The pair is still streaming (the case really ran during the publish),
  -- and a new client is served.
  local function assert_still_serving()
    assert.is_nil(H.exited(pub), "the publisher ended before the case was over:\n" .. H.output(pub))
    assert.is_nil(H.exited(player), "the player ended before the case was over:\n" .. H.output(player))
    local rc, out = H.run(fmt("%s spec/interop/client_connect.lua %s 5",
      H.shquote(H.luartmp), H.shquote(srv.url("live"))), 20)
    assert.are.equal(0, rc, "a fresh client was not served:\n" .. out)
    assert.is_truthy(out:find("result NetConnection.Connect.Success", 1, true), out)
  end

  it("closes a connection whose first byte is not an RTMP version", function()
    local r = H.raw_send(srv.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", { wait = 5 })
    assert.is_true(r.connected, r.out)
    assert.is_true(r.closed, "the server kept the connection open:\n" .. r.out)
    assert(r.elapsed < 2, fmt("closed only after %.2fs", r.elapsed))
    local c = expect_close(r.lport, "unsupported handshake version")
    assert.is_truthy(c.id:match("^%d+$"))
    assert_still_serving()
  end)

  it("closes a truncated handshake at the handshake deadline", function()
    -- C0 and the first 100 bytes of C1, then silence.
    local r = H.raw_send(srv.port, "\3" .. string.rep("\0", 4) .. string.rep("x", 96), { wait = 8 })
    assert.is_true(r.connected, r.out)
    assert.is_true(r.closed, "the server kept the stalled handshake open:\n" .. r.out)
    -- --handshake-timeout 2: an absolute deadline from accept.
    assert(r.elapsed > 1.5 and r.elapsed < 4.5, fmt("closed after %.2fs, expected about 2s", r.elapsed))
    expect_close(r.lport, "handshake timeout")
    assert_still_serving()
  end)

  it("closes a connection that declares a message longer than the limit", function()
    -- The largest length a chunk header can declare, 16 MiB - 1, is over
    -- the server's 8 MiB limit; only 100 bytes of it follow.
    local bytes = H.chunk_fmt0(3, 0, 0xFFFFFF, 20, 0, string.rep("a", 100))
    local r = H.raw_send(srv.port, bytes, { handshake = true, wait = 5 })
    assert.is_true(r.handshake_ok, "plain handshake failed:\n" .. r.out)
    assert.is_true(r.closed, "the server kept the connection open:\n" .. r.out)
    assert(r.elapsed < 3, fmt("closed only after %.2fs", r.elapsed))
    expect_close(r.lport, "message longer than the limit")
    assert_still_serving()
  end)

  it("closes only the connection whose command handler raised, logging the error", function()
    local body = H.amf0("boom", 2, nil)
    local bytes = H.chunk_fmt0(3, 0, #body, 20, 0, body)
    local r = H.raw_send(srv.port, bytes, { handshake = true, wait = 5 })
    assert.is_true(r.handshake_ok, "plain handshake failed:\n" .. r.out)
    assert.is_true(r.closed, "the server kept the connection open:\n" .. r.out)
    local c = expect_close(r.lport, "script error: ")
    assert.is_truthy(c.reason:find("boom: raised on purpose", 1, true),
      "the Lua error is not in the close reason: " .. c.line)
    -- The error is also logged with its traceback, under the same
    -- connection id and peer, down to the raising function.
    local log = srv.log()
    local head = fmt(" conn=%s peer=%s ", c.id, c.peer)
    local at = 1
    local found
    while true do
      local s, e = log:find(head, at, true)
      if not s then break end
      local entry = log:sub(e + 1):match("^(.-)\n%d%d%d%d%-%d%d%-%d%d ") or log:sub(e + 1)
      if entry:find("stack traceback:", 1, true) then found = entry break end
      at = e + 1
    end
    assert(found, "no log entry with a traceback for " .. head .. ":\n" .. log)
    assert.is_truthy(found:find("boom: raised on purpose", 1, true), found)
    assert.is_truthy(found:find("raising.lua:11: in ", 1, true), "traceback without the raising frame:\n" .. found)
    assert_still_serving()
  end)

  it("meanwhile streamed every frame to the publisher/player pair", function()
    local prc = H.wait_exit(pub, F.seconds + 12)
    assert.are.equal(0, prc, "publisher exit status:\n" .. H.output(pub))
    local rc = H.wait_exit(player, 15)
    assert.are.equal(0, rc, "player exit status:\n" .. H.output(player))
    local info = assert(H.probe(player_file))
    assert.are.equal(F.video_codec, info.video and info.video.codec)
    assert.are.equal(F.audio_codec, info.audio and info.audio.codec)
    -- Subscribed before the publisher started: every frame, none missing.
    assert.are.equal(F.frames, info.video.frames, "video frames received by the pair's player")
    local src, log = srv.stop()
    assert.are.equal(0, src, "luartmp exit status after SIGTERM; log:\n" .. log)
  end)
end)
