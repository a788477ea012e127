-- Raw sending seen from the other side: a real player (ffmpeg) decodes a
-- stream whose messages we cut into chunks by hand, interleaved across
-- chunk streams, with Set Chunk Size in the middle of messages; tshark
-- shows the fmt and csid of each chunk, the Abort, the acknowledgements;
-- nginx-rtmp's pings answered by the script; tolerances switched on a
-- live connection.
local H = require "support.helpers"
local C = require "support.client"
local R = require "support.rawsend"
local rtmp = require "rtmp"

local F = H.FIXTURE

-- Send the fixture's tags on conn/sid: metadata as it comes, then audio
-- (csid 6) and video (csid 7) in pairs (one of each), the two messages of a pair
-- interleaved chunk by chunk (video, then audio), and a Set Chunk Size
-- from `sizes` (cycled) before every video chunk. Returns the number of
-- chunks sent, and of video chunks.
local function send_interleaved(conn, sid, sizes, ts_offset)
  local tags = R.fixture_tags()
  local n, nv, k = 0, 0, 0
  local pending = {}
  local function flush()
    table.sort(pending, function(a, b) return a.type > b.type end) -- video first
    local open = {}
    for _, t in ipairs(pending) do
      open[#open + 1] = conn:begin({ type = t.type, csid = t.type == 8 and 6 or 7, stream = sid,
        timestamp = t.timestamp + (ts_offset or 0) }, t.data)
    end
    local busy = true
    while busy do
      busy = false
      for i, m in ipairs(open) do
        if not m:done() then
          if pending[i].type == 9 then
            nv = nv + 1
            k = k % #sizes + 1
            assert(conn:set_chunk_size(sizes[k]))
          end
          assert(m:chunk())
          n = n + 1
          busy = true
        end
      end
    end
    pending = {}
  end
  for _, t in ipairs(tags) do
    if t.type == 18 then
      assert(conn:send({ type = 18, csid = 5, stream = sid, timestamp = t.timestamp }, t.data))
    else
      -- one audio and one video message at most: each csid carries one
      -- message at a time
      if pending[1] and pending[1].type == t.type then flush() end
      pending[#pending + 1] = t
      if #pending == 2 then flush() end
    end
  end
  flush()
  return n, nv
end

-- The chunk stream of a fixture tag: audio 6, video 7, data 5.
local function csid_of(t) return t.type == 8 and 6 or t.type == 9 and 7 or 5 end

-- Serve on_play(conn, sid) to one player (ffmpeg, or the function given
-- as opts.player) that writes the temporary file `name`, until it exits
-- (opts.timeout s, 30 by default); with opts.capture tshark records the
-- connection. Returns the file, the player, the capture (or nil) and the
-- port.
local function play_to(name, on_play, opts)
  opts = opts or {}
  local srv = R.serve{ on_play = on_play }
  local cap = opts.capture and H.tshark_start(srv.port) or nil
  local out = H.tmpname(name)
  local player = (opts.player or H.ffmpeg_play)(srv.url("live/raw"), out)
  R.drain_and_close(srv, player)
  R.loop_until_exit(player, opts.timeout or 30)
  srv.close()
  if cap then R.capture_stop(cap) end
  return out, player, cap, srv.port
end

describe("raw sending to real peers", function()
  after_each(function() H.cleanup() end)

  it("ffmpeg decodes every frame of a stream cut at changing chunk sizes, interleaved across csids; tshark sees each chunk", function()
    local sizes = { 61, 4096, 128, 999, 7, 1500 }
    local sent, video_chunks
    local out, player, cap, port = play_to("raw-interleaved.flv", function(conn, sid)
      sent, video_chunks = send_interleaved(conn, sid, sizes)
    end, { capture = true, timeout = 60 })
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(player))
    assert.are.equal("aac", info.audio.codec)

    -- tshark reassembles every message (it lists a message when its last
    -- chunk arrives, with its first chunk's header)
    local dec = H.tshark_decode(cap.file, port)
    assert.are.equal(0, dec.malformed, table.concat(dec.errors, "\n"))
    local rows = R.tshark_fields(cap.file, port,
      { "rtmpt.header.format", "rtmpt.header.csid", "rtmpt.header.typeid", "rtmpt.scm.chunksize" }, port)
    -- (a message with a compressed header has no type field: count csids)
    local csids = R.values(rows, "rtmpt.header.csid")
    local scs = R.values(rows, "rtmpt.scm.chunksize")
    local count = {}
    for _, c in ipairs(csids) do count[c] = (count[c] or 0) + 1 end
    local tags = { [8] = 0, [9] = 0 }
    for _, t in ipairs(R.fixture_tags()) do if tags[t.type] then tags[t.type] = tags[t.type] + 1 end end
    assert.are.equal(tags[9], count["7"])
    assert.are.equal(tags[8], count["6"])
    -- one Set Chunk Size before each video chunk, with our sizes in order
    assert.are.equal(video_chunks, #scs)
    for i = 1, #scs do assert.are.equal(tostring(sizes[(i - 1) % #sizes + 1]), scs[i]) end
    -- once media flows, csid 2 carries only those Set Chunk Size messages,
    -- each followed by a video chunk: an audio message (csid 6) completing
    -- right after one proves that the video chunk left its message open
    -- and audio chunks went in between
    local first = 1     -- after the metadata (csid 5), the last non-media message
    for i, c in ipairs(csids) do if c == "5" then first = i + 1 end end
    local between, on2 = 0, 0
    for i = first, #csids - 1 do
      if csids[i] == "2" then
        on2 = on2 + 1
        if csids[i + 1] == "6" then between = between + 1 end
      end
    end
    assert.are.equal(video_chunks, on2)
    assert.is_true(between >= 50, "audio completed inside a video message " .. between .. " times")
    assert.is_true(sent > 400)
  end)

  -- The fixture with every timestamp past 2^24-1 ms (extended timestamps),
  -- sent message by message at chunk size 128, fmt 3 continuations with or
  -- without the 4 extended-timestamp bytes.
  local function play_extended(send_ext, rtmpdump)
    local out, player = play_to("ext-" .. tostring(send_ext) .. ".flv", function(conn, sid)
      assert.are.equal(send_ext, conn:option("send_ext_ts_fmt3", send_ext))
      for _, t in ipairs(R.fixture_tags()) do
        assert(conn:send({ type = t.type, csid = csid_of(t), stream = sid, timestamp = t.timestamp + 0x1000000 },
          t.data))
      end
    end, { player = rtmpdump and H.rtmpdump_play or nil })
    return H.probe(out), H.output(player), H.exited(player)
  end

  it("ffmpeg plays extended timestamps when fmt 3 chunks repeat them, and gives up when they are left out", function()
    local info = assert(play_extended(true))
    assert.are.equal(F.frames, info.video.frames)
    -- the quirk: ffmpeg reads 4 bytes after every fmt 3 basic header that
    -- follows an extended timestamp, so it takes 4 payload bytes as the
    -- timestamp and loses its place in the stream at the first video
    -- message longer than one chunk
    local quirk, log, rc = play_extended(false)
    assert.is_true(rc ~= 0, log)
    assert.truthy(log:find("Invalid data found when processing input", 1, true)
      or log:find("Connection reset", 1, true) or log:find("size mismatch", 1, true), log)
    assert.is_true(quirk == nil or quirk.video == nil or (quirk.video.frames or 0) == 0, log)
  end)

  it("rtmpdump (librtmp 2.4) likewise reads the 4 bytes on fmt 3 chunks", function()
    local info, log = play_extended(true, true)
    assert(info, log)
    assert.are.equal(F.frames, info.video.frames)
    local quirk
    quirk, log = play_extended(false, true)
    assert.truthy(log:find("failed to read RTMP packet header", 1, true), log)
    assert.is_true(quirk == nil or quirk.video == nil or (quirk.video.frames or 0) == 0, log)
  end)

  it("sends an Abort in the middle of a message: tshark shows it; ffmpeg ignores it", function()
    local aborted_at -- index (among video messages) of the aborted one
    local out, player, cap, port = play_to("abort.flv", function(conn, sid)
      local nv = 0
      for _, t in ipairs(R.fixture_tags()) do
        local h = { type = t.type, csid = csid_of(t), stream = sid, timestamp = t.timestamp }
        if t.type == 9 then nv = nv + 1 end
        if t.type == 9 and nv == 10 then
          -- first chunk only (the frame is larger than 128 bytes), then Abort
          assert(#t.data > 128)
          assert(conn:begin(h, t.data):chunk())
          assert(conn:abort(7))
          aborted_at = nv
        else
          assert(conn:send(h, t.data))
        end
      end
    end, { capture = true })
    local rows = R.tshark_fields(cap.file, port, { "rtmpt.header.typeid", "rtmpt.scm.csid" }, port)
    assert.are.same({ "7" }, R.values(rows, "rtmpt.scm.csid"))
    -- ffmpeg has no handler for Abort: it keeps the partial message and
    -- fails on the next header of csid 7 (another length), after the 8
    -- frames before the aborted one (video message 1 is the sequence header)
    local log = H.output(player)
    assert.truthy(log:find("RTMP packet size mismatch", 1, true), log)
    local info = assert(H.probe(out))
    assert.are.equal(aborted_at - 2, info.video.frames)
  end)

  it("with auto ack off no Acknowledgement reaches ffmpeg but the script's own, with any sequence number", function()
    local ours = {}
    local srv = R.serve{
      settings = { ack_window = 50000, auto = { window = false } },
      on_open = function(conn) assert.is_false(conn:auto("ack", false)) end,
      on_message = function(conn, msg)
        if (msg.type == 8 or msg.type == 9) and #ours < 5 and conn.bytes_in > (#ours + 1) * 60000 then
          local seq = 0xDEAD0000 + #ours
          assert(conn:ack(seq))
          ours[#ours + 1] = tostring(seq)
        end
      end,
    }
    local cap = H.tshark_start(srv.port)
    -- at the stream's pace (-re): unpaced, ffmpeg sends the whole file and
    -- closes within milliseconds, and an acknowledgement written after its
    -- close (it resets the connection, our last replies unread) never
    -- reaches the wire, whatever the engine does
    local pub = H.spawn(string.format("ffmpeg -nostdin -hide_banner -v info -re -i %s -c copy -f flv %s",
      H.shquote(H.fixture_flv()), H.shquote(srv.url("live/ack"))), { name = "ffmpeg-publish" })
    R.loop_until_exit(pub, 30)
    assert.are.equal(0, H.exited(pub), H.output(pub))
    C.wait_until(function() return srv.closed[srv.conns[1]] end, 3)
    srv.close()
    R.capture_stop(cap)
    assert.are.equal(5, #ours)
    local rows = R.tshark_fields(cap.file, srv.port, { "rtmpt.scm.seq" }, srv.port)
    -- ffmpeg sent over 360 kB against a 50 kB window: 7 automatic
    -- acknowledgements would have gone out; only ours did
    assert.are.same(ours, R.values(rows, "rtmpt.scm.seq"))
  end)

  -- Connect to nginx-rtmp as a client that then stays silent, with the
  -- settings given; returns { conn, pings (ping_time of each PingRequest),
  -- closed (reason once closed) }. on_ping(conn, msg) runs for each.
  local function idle_client(url, settings, on_ping)
    local st = { pings = {} }
    local handlers = {
      on_handshake = function(conn)
        conn:command(nil, "connect", 1, { app = "live", tcUrl = url, flashVer = "LNX 9,0,124,2" })
      end,
      on_message = function(conn, msg)
        if msg.event_name == "ping_request" then
          st.pings[#st.pings + 1] = msg.ping_time
          st.applied = msg.applied
          if on_ping then on_ping(conn, msg) end
        end
      end,
      on_close = function(_, reason) st.closed = reason end,
    }
    for k, v in pairs(settings) do handlers[k] = v end
    st.conn = assert(rtmp.connect(url, handlers))
    return st
  end

  it("with auto ping off nginx-rtmp's pings go unanswered unless the script answers them itself", function()
    local ngx = R.nginx_start("ping 1s; ping_timeout 1s;")
    local cap = H.tshark_start(ngx.port)
    -- nginx numbers its sessions *1, *2, *3 in accept order
    local auto = idle_client(ngx.url("live"), {})                         -- the engine answers
    assert(C.wait_until(function() return #auto.pings > 0 end, 5))
    local mute = idle_client(ngx.url("live"), { auto = { ping = false } }) -- nobody answers
    assert(C.wait_until(function() return #mute.pings > 0 end, 5))
    local own = idle_client(ngx.url("live"), { auto = { ping = false } }, function(conn, msg)
      assert(conn:user_control("ping_response", msg.ping_time ~ 0x5A5A5A5A))
    end)
    assert(C.wait_until(function() return #own.pings >= 2 and #mute.pings >= 2 end, 15),
      "pings " .. #auto.pings .. "/" .. #mute.pings .. "/" .. #own.pings)
    assert.are.same({ ping = true }, auto.applied)
    assert.is_nil(mute.applied)
    assert.is_nil(own.applied)
    for _, st in ipairs{ auto, mute, own } do st.conn:close() end
    C.wait_until(function() return auto.closed and mute.closed and own.closed end, 3)
    R.capture_stop(cap)
    -- nginx-rtmp logs each PingResponse it receives: none from the silent
    -- client, which it keeps pinging (this build never drops it)
    local log = ngx.log()
    local function count(sess, what)
      return H.count_plain(log, "*" .. sess .. " " .. what)
    end
    assert.is_true(count(1, "RTMP recv user evt ping_response") >= 1)
    assert.are.equal(0, count(2, "RTMP recv user evt ping_response"))
    assert.is_true(count(2, "create: ping_request") >= 2)
    assert.is_true(count(3, "RTMP recv user evt ping_response") >= 2)
    -- on the wire (tshark names the event but not its value: the value is
    -- the last 4 bytes of a segment holding one PingResponse): two
    -- clients answered, and the script's answers carry its own values
    local ports, flipped, want = {}, 0, {}
    for _, p in ipairs(own.pings) do want[p ~ 0x5A5A5A5A] = true end
    local _, pr = H.run(string.format("tshark -r %s -d tcp.port==%d,rtmpt -Y 'rtmpt.ucm.eventtype==7' " ..
      "-T fields -e tcp.srcport -e tcp.payload 2>/dev/null", H.shquote(cap.file), ngx.port), 60)
    for port, hex in pr:gmatch("(%d+)\t(%x+)") do
      ports[port] = true
      if want[tonumber(hex:sub(-8), 16)] then flipped = flipped + 1 end
    end
    local nports = 0
    for _ in pairs(ports) do nports = nports + 1 end
    assert.are.equal(2, nports)
    assert.are.equal(#own.pings, flipped)
  end)

  it("a tolerance switched with conn:option when the peer shows who it is takes effect at once", function()
    -- server: reads fmt 3 chunks by the spec, unless connect says the peer
    -- is the encoder known to leave the extended timestamp out
    local got, who = {}, {}
    local srv = R.serve{
      settings = { ext_ts_fmt3 = "spec" },
      on_message = function(conn, msg)
        if msg.name == "connect" then
          who[msg.args[1].flashVer] = conn
          if msg.args[1].flashVer == "QuirkyEncoder/1.0" then
            assert.are.equal("never", conn:option("ext_ts_fmt3", "never"))
          end
        elseif msg.type == 9 then
          got[conn] = got[conn] or {}
          table.insert(got[conn], msg)
        end
      end,
    }
    -- clients: luartmp with send_ext_ts_fmt3 = false, ten 300-byte video
    -- messages with extended timestamps, each with a fmt 0 header
    local function publisher(flashver)
      local st = {}
      st.conn = assert(rtmp.connect(srv.url("live"), {
        on_handshake = function(conn)
          conn:command(nil, "connect", 1, { app = "live", tcUrl = srv.url("live"), flashVer = flashver })
        end,
        on_message = function(conn, msg)
          if msg.name == "_result" then
            conn:option("send_ext_ts_fmt3", false)
            for i = 1, 10 do
              assert(conn:send({ type = 9, csid = 7, stream = 1, timestamp = 0x1000000 + 40 * i, fmt = 0 },
                string.rep(string.char(i), 300)))
            end
            st.sent = true
          end
        end,
        on_close = function(_, reason) st.closed = reason end,
      }))
      return st
    end
    local quirky = publisher("QuirkyEncoder/1.0")
    local plain = publisher("FMLE/3.0")
    local q, p
    assert(C.wait_until(function()
      q, p = who["QuirkyEncoder/1.0"], who["FMLE/3.0"]
      return quirky.sent and plain.sent and q and p and got[q] and #got[q] == 10 and srv.closed[p]
    end, 10))
    for i, m in ipairs(got[q]) do
      assert.are.equal(string.rep(string.char(i), 300), m.payload)
      assert.are.equal(0x1000000 + 40 * i, m.timestamp)
    end
    -- read by the spec, the first message loses 4 payload bytes per fmt 3
    -- chunk and the reader loses its place: the connection fails
    assert.is_true(got[p] == nil or got[p][1].payload ~= string.rep("\1", 300))
    assert.truthy(srv.closed[p])
    assert.is_nil(srv.closed[q])
    quirky.conn:close()
    srv.close()
    C.wait_until(function() return quirky.closed and plain.closed end, 3)
  end)

  it("answers Set Peer Bandwidth with Window Ack Size when bandwidth_reply is on: nginx-rtmp receives it", function()
    local ngx = R.nginx_start("")
    local cap = H.tshark_start(ngx.port)
    local function client(settings)
      local st = {}
      local handlers = {
        on_handshake = function(conn)
          conn:command(nil, "connect", 1, { app = "live", tcUrl = ngx.url("live"), flashVer = "LNX 9,0,124,2" })
        end,
        on_message = function(_, msg)
          if msg.type_name == "set_peer_bandwidth" then st.spb = msg end
          if msg.name == "_result" then st.result = true end
        end,
        on_close = function(_, reason) st.closed = reason end,
      }
      for k, v in pairs(settings) do handlers[k] = v end
      st.conn = assert(rtmp.connect(ngx.url("live"), handlers))
      return st
    end
    local off = client({})                                     -- nginx's *1
    assert(C.wait_until(function() return off.result end, 5))
    local on = client({ auto = { bandwidth_reply = true } })   -- nginx's *2
    assert(C.wait_until(function() return on.result end, 5))
    assert.is_nil(off.spb.applied.bandwidth_reply)
    assert.is_true(on.spb.applied.bandwidth_reply)
    assert.are.equal(on.spb.window, on.conn.window_sent)
    assert.are.equal(0, off.conn.window_sent)
    on.conn:close()
    off.conn:close()
    C.wait_until(function() return on.closed and off.closed end, 3)
    R.capture_stop(cap)
    local log = ngx.log()
    assert.are.equal(0, H.count_plain(log, "*1 receive ack_size="))
    assert.are.equal(1, H.count_plain(log, "*2 receive ack_size=" .. on.spb.window))
    -- tshark: one Window Acknowledgement Size from a client, with that value
    local _, out = H.run(string.format("tshark -r %s -d tcp.port==%d,rtmpt -Y 'rtmpt.scm.was && tcp.dstport==%d' " ..
      "-T fields -e rtmpt.scm.was 2>/dev/null", H.shquote(cap.file), ngx.port, ngx.port), 60)
    assert.are.same({ tostring(on.spb.window) }, { out:match("^(%d+)%s*$") })
  end)

  -- Play the fixture with each video message sent through conn:begin:
  -- first chunk with fmt `first`, second chunk (if any) with fmt `second`,
  -- the rest as the writer chooses. Returns probe info, the capture and
  -- the port.
  local function play_fmts(first, second)
    local out, _, cap, port = play_to("fmts.flv", function(conn, sid)
      for _, t in ipairs(R.fixture_tags()) do
        local h = { type = t.type, csid = csid_of(t), stream = sid, timestamp = t.timestamp }
        if t.type == 9 then
          local m = conn:begin(h, t.data)
          assert(m:chunk{ fmt = first })
          if not m:done() then assert(m:chunk{ fmt = second }) end
          assert(m:rest())
        else
          assert(conn:send(h, t.data))
        end
      end
    end, { capture = true })
    return H.probe(out), cap, port
  end

  it("forces the fmt of chunks: tshark sees fmt 0 on every video message; ffmpeg also takes a header repeated inside a message", function()
    local info, cap, port = play_fmts(0, 3)
    assert.are.equal(F.frames, info.video.frames)
    local rows = R.tshark_fields(cap.file, port, { "rtmpt.header.format", "rtmpt.header.csid" }, port)
    local fmts, csids = R.values(rows, "rtmpt.header.format"), R.values(rows, "rtmpt.header.csid")
    local video = {}
    for i = 1, #csids do
      if csids[i] == "7" then video[fmts[i]] = (video[fmts[i]] or 0) + 1 end
    end
    local tags = 0
    for _, t in ipairs(R.fixture_tags()) do if t.type == 9 then tags = tags + 1 end end
    assert.are.same({ ["0"] = tags }, video)  -- the writer alone would have used fmt 1 and 2
    -- a fmt 1 header (same length, type and delta) on the second chunk of
    -- every video message: ffmpeg keeps assembling the message
    info = play_fmts(nil, 1)
    assert.are.equal(F.frames, info.video.frames)
  end)

  -- Publish the fixture to url with our client, the 10th video message
  -- cut after its first chunk and followed by an Abort of csid 7 (when
  -- abort). Returns the client (c.closed is why it ended, if it did) and
  -- the number of video messages sent whole.
  local function publish_with_abort(url, abort)
    local c = C.connect(url)
    local sid = c:create_stream()
    c:publish(sid, "abort")
    assert(c:wait(function() return c:find{ name = "onStatus" } end, 5))
    local nv, whole = 0, 0
    for _, t in ipairs(R.fixture_tags()) do
      local h = { type = t.type, csid = t.type == 8 and 6 or 7, stream = sid, timestamp = t.timestamp }
      if t.type == 9 then nv = nv + 1 end
      if t.type == 9 and nv == 10 then
        assert(c.conn:begin(h, t.data):chunk())
        if abort then assert(c.conn:abort(7)) end
      elseif t.type ~= 18 then
        assert(c.conn:send(h, t.data))
        if t.type == 9 then whole = whole + 1 end
      end
    end
    C.wait_until(function() return c.closed end, 1)
    return c, whole
  end

  it("an Abort in the middle of a published message: luartmp drops the partial message, nginx-rtmp does not", function()
    -- luartmp as the receiver: every other video message arrives whole
    local video = {}
    local srv = R.serve{
      on_message = function(_, msg)
        if msg.type == 9 then video[#video + 1] = msg end
        if msg.type_name == "abort" then video.abort = msg end
      end,
    }
    local c, whole = publish_with_abort(srv.url("live"), true)
    assert(C.wait_until(function() return #video == whole end, 5))
    assert.are.equal(7, video.abort.abort_csid)
    assert.are.same({ abort = true }, video.abort.applied)
    assert.is_false(c.closed)
    c:close()
    srv.close()
    -- nginx-rtmp logs the Abort but keeps assembling the message: the
    -- next header on csid 7 breaks its reading and it drops the publisher,
    -- exactly as when no Abort is sent
    for _, abort in ipairs{ true, false } do
      local ngx = R.nginx_start("")
      local cn = publish_with_abort(ngx.url("live"), abort)
      assert(C.wait_until(function() return cn.closed end, 5))
      local log = ngx.log()
      assert.are.equal(abort, H.count_plain(log, "abort (2)") > 0)
      assert.truthy(log:find("in chunk stream too big", 1, true), log:sub(-2000))
      H.cleanup()
    end
  end)

  it("rtmpdump (librtmp) and GStreamer (rtmp2src) decode every frame of the same interleaved stream", function()
    local function on_play(conn, sid) send_interleaved(conn, sid, { 61, 4096, 128, 999, 7, 1500 }) end
    local out, player = play_to("raw-interleaved-rtmpdump.flv", on_play, { player = H.rtmpdump_play })
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(player))
    assert.are.equal("aac", info.audio.codec)
    local srv = R.serve{ on_play = on_play }
    local gst = H.gst_play(srv.url("live/raw"))
    R.drain_and_close(srv, gst)
    R.loop_until_exit(gst, 30)
    srv.close()
    assert.are.equal(F.frames, H.gst_frames(gst), H.output(gst):sub(-2000))
  end)
end)
