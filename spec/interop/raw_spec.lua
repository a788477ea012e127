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

describe("raw sending to real peers", function()
  after_each(function() H.cleanup() end)

  it("ffmpeg decodes every frame of a stream cut at changing chunk sizes, interleaved across csids; tshark sees each chunk", function()
    local sizes = { 61, 4096, 128, 999, 7, 1500 }
    local sent, video_chunks
    local srv = R.serve{
      on_play = function(conn, sid)
        sent, video_chunks = send_interleaved(conn, sid, sizes)
        R.drain_and_close(conn)
      end,
    }
    local cap = H.tshark_start(srv.port)
    local out = H.tmpname("raw-interleaved.flv")
    local player = H.ffmpeg_play(srv.url("live/raw"), out)
    R.loop_until_exit(player, 60)
    srv.close()
    R.capture_stop(cap)
    local info = assert(H.probe(out))
    assert.are.equal(F.frames, info.video.frames, H.output(player))
    assert.are.equal("aac", info.audio.codec)

    -- tshark reassembles every message (it lists a message when its last
    -- chunk arrives, with its first chunk's header)
    local dec = H.tshark_decode(cap.file, srv.port)
    assert.are.equal(0, dec.malformed, table.concat(dec.errors, "\n"))
    local rows = R.tshark_fields(cap.file, srv.port,
      { "rtmpt.header.format", "rtmpt.header.csid", "rtmpt.header.typeid", "rtmpt.scm.chunksize" }, srv.port)
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
end)
