-- Closing a connection must not cost the peer the end of what was sent:
-- the output queued at the close is still written, and the socket ends
-- with a FIN, not a reset, even when the peer keeps sending (its
-- Acknowledgements) after the close. ffmpeg decodes every frame; tshark
-- sees no reset from the server.
local H = require "support.helpers"
local R = require "support.rawsend"
local rtmp = require "rtmp"

local F = H.FIXTURE
local fmt = string.format

-- Send every fixture tag to conn/sid at once.
local function send_all(conn, sid)
  for _, t in ipairs(R.fixture_tags()) do
    assert(conn:send({ type = t.type, csid = t.type == 8 and 6 or t.type == 9 and 7 or 5, stream = sid,
      timestamp = t.timestamp }, t.data))
  end
end

-- TCP resets sent from port in the capture file.
local function resets_from(file, port)
  local rc, out = H.run(fmt("tshark -r %s -Y 'tcp.flags.reset == 1 && tcp.srcport == %d' -T fields -e frame.number 2>/dev/null",
    H.shquote(file), port), 60)
  assert(rc == 0, out)
  local n = 0
  for _ in out:gmatch("%d+") do n = n + 1 end
  return n
end

-- Serve the fixture to `player` (a function(url, out) -> process): on
-- play, on_play(conn, sid) runs; then the loop runs until the player
-- exits. Returns the recording, the player, the server and the reset
-- count seen by tshark.
local function serve_to(player, on_play, settings)
  local srv = R.serve{ on_play = on_play, settings = settings }
  local cap = H.tshark_start(srv.port)
  local out = H.tmpname("close.flv")
  local p = player(srv.url("live/raw"), out)
  R.loop_until_exit(p, 60)
  srv.close()
  R.capture_stop(cap)
  return out, p, srv, resets_from(cap.file, srv.port)
end

describe("closing a connection", function()
  after_each(function() H.cleanup() end)

  it("writes what was queued at the close: a script that sends the whole stream and closes at once loses no frame",
    function()
      local queued, lingered, player
      local out, p, srv, resets = serve_to(H.ffmpeg_play, function(conn, sid)
        conn:set_window_ack_size(16 * 1024) -- the player acknowledges all along
        send_all(conn, sid)
        queued = conn.pending
        conn:close("all queued")
        player = conn
        rtmp.timer(0.001, function() lingered = { conn.closed, conn.lingering } end)
      end, { send_buffer = 4096 })
      -- most of the stream was still queued when the script closed; the
      -- connection was gone for the script, its socket still writing
      assert.is_true(queued > 100000, "queued " .. tostring(queued))
      assert.are.same({ true, true }, lingered)
      assert.is_false(player.lingering)
      local info = assert(H.probe(out))
      assert.are.equal(F.frames, info.video.frames, H.output(p))
      assert.are.equal(0, resets)
      assert.are.equal("all queued", srv.closed[srv.player])
    end)

  it("with linger = 0 closes at once: the queued output is lost and the player's next Acknowledgement meets a reset",
    function()
      local out, p, srv, resets = serve_to(H.ffmpeg_play, function(conn, sid)
        conn:set_window_ack_size(16 * 1024)
        send_all(conn, sid)
        conn:close("all queued")
      end, { send_buffer = 4096, linger = 0 })
      local info = H.probe(out)
      assert.is_true(not info or not info.video or info.video.frames < F.frames, H.output(p))
      assert.is_true(resets > 0)
    end)

  it("ends with a FIN, not a reset, while a slow player still acknowledges what the kernel holds", function()
    -- ffmpeg -re reads at the stream's own pace (8 s): when the queue is
    -- empty and the script closes, most of the stream is still in the
    -- kernel's buffers and the player's Acknowledgements keep coming.
    local function slow_player(url, out)
      return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -re -rw_timeout 20000000 -i %s -c copy -f flv -y %s",
        H.shquote(url), H.shquote(out)), { name = "ffmpeg-re" })
    end
    local closed_at
    local out, p, srv, resets = serve_to(slow_player, function(conn, sid)
      conn:set_window_ack_size(16 * 1024)
      send_all(conn, sid)
      rtmp.timer(0.01, function(t)
        if conn.closed then return t:stop() end
        if conn.pending == 0 then
          closed_at = rtmp.now()
          conn:close("all written")
          t:stop()
        end
      end, 0.01)
    end)
    assert.is_truthy(closed_at)
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(p))
    assert.are.equal(0, resets)
    assert.are.equal("all written", srv.closed[srv.player])
  end)

  it("holds the socket of a peer that neither reads nor closes for --linger seconds, then lets it go", function()
    local function held(extra)
      local cmd = { H.shquote(H.luartmp) }
      for _, o in ipairs(extra) do cmd[#cmd + 1] = H.shquote(o) end
      cmd[#cmd + 1] = "spec/support/linger_probe.lua"
      local rc, out = H.run(table.concat(cmd, " ") .. " 2>&1", 30)
      assert(rc == 0, out)
      local secs, reason = out:match("held ([%d.]+): ([^\n]*)")
      assert(secs, out)
      assert.matches("reset", reason)
      return tonumber(secs)
    end
    local one = held{ "--linger", "1" }
    assert.is_true(one >= 0.9 and one < 3, fmt("socket let go %.2f s after the close", one))
    -- linger 0: the first byte after the close meets the reset
    local zero = held{ "--linger", "0" }
    assert.is_true(zero < 0.5, fmt("socket let go %.2f s after the close", zero))
  end)

  it("nc:close returns once the server has the whole stream: a client that exits right after loses nothing", function()
    -- ffmpeg -re -listen 1 reads at the stream's pace (8 s): the stream is
    -- still queued and in the kernel's buffers when the script closes and
    -- then exits.
    local port = H.free_port()
    local out = H.tmpname("close-listen") .. ".flv"
    local ff = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -re -listen 1 -i rtmp://127.0.0.1:%d/app/name -c copy -f flv -y %s",
      port, H.shquote(out)), { name = "ffmpeg-listen" })
    assert(H.wait_port(port, 10, ff))
    local rc, log = H.run(fmt("%s spec/support/publish_exit.lua %s rtmp://127.0.0.1:%d/app name 2>&1",
      H.shquote(H.luartmp), H.shquote(H.fixture_flv()), port), 60)
    assert.are.equal(0, rc, log)
    local queued = tonumber(log:match("queued (%d+) bytes"))
    assert.is_true(queued and queued > 100000, log)
    assert.are.equal(0, H.wait_exit(ff, 15), H.output(ff))
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(ff))
  end)
end)
