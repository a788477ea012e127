-- HTTP-FLV and WS-FLV (docs/HTTP.md) from scripts/live.lua --http, fed
-- from the stream's group (its shared tags, late-join cache and
-- slow-reader policy): ffmpeg publishes the fixture; ffmpeg (before anyone
-- asked for the name), ffprobe and a WebSocket client that start before
-- the publish get every frame; a
-- late HTTP joiner starts at a keyframe and decodes cleanly; a reader
-- that reads nothing is dropped by the slow-reader policy while an RTMP
-- player gets every frame.
local H = require "support.helpers"
local flv_client = require "support.flv_client"
local rtmp = require "rtmp"
local json = require "dkjson"
local F = H.FIXTURE

local fmt, q = string.format, H.shquote

-- The audio and video tags of an FLV file read strictly (every
-- PreviousTagSize checked), as { type, payload } in order, and the
-- reader's audio/video header flags.
local function av_tags(path)
  local r = assert(rtmp.flv.open(path))
  local list = {}
  while true do
    local m, err = r:read()
    if not m then assert.is_nil(err, path) break end
    if m.type == 8 or m.type == 9 then list[#list + 1] = { m.type, m.payload } end
  end
  local flags = { audio = r.audio, video = r.video }
  r:close()
  return list, flags
end

-- Whether tags a[i ..] equal b[j ..] to their ends, and as many.
local function same_tail(a, i, b, j)
  if #a - i ~= #b - j then return false end
  for k = 0, #a - i do
    if a[i + k][1] ~= b[j + k][1] or a[i + k][2] ~= b[j + k][2] then return false end
  end
  return true
end

-- ffmpeg's decoder on a file: its complaints (nothing for a clean decode).
local function decode_errors(file)
  local _, out = H.run(fmt("ffmpeg -nostdin -v error -i %s -f null -", q(file)), 60)
  return out
end

describe("HTTP-FLV and WS-FLV", function()
  after_each(function() H.cleanup() end)

  it("every frame to readers that came first, a keyframe start to a late one, slow readers dropped", function()
    local fixture = assert(H.probe(H.fixture_flv()))
    local hport = H.free_port()
    -- live.lua with 1 s of media queued at most, 2 s over it before a drop,
    -- and a 4 KiB SO_SNDBUF, so that the kernel does not soak up the stream
    local srv = H.luartmp_start{ log_level = "info", extra = { "--http", "127.0.0.1:" .. hport },
      script = "spec/interop/slow_server.lua", args = { "0", "1", "2", "4096" } }
    assert(H.wait_port(hport, 10), "no HTTP listener")
    local hurl = fmt("http://127.0.0.1:%d/live/hf.flv", hport)

    -- nobody publishes or plays it yet: an HTTP-FLV player waits for it;
    -- an RTMP player and the other HTTP readers join it
    local rtmp_file, early_file = H.tmpname("hf-rtmp.flv"), H.tmpname("hf-http.flv")
    local ws_file, late_file, slow_file = H.tmpname("hf-ws.flv"), H.tmpname("hf-late.flv"), H.tmpname("hf-slow.flv")
    local early = H.ffmpeg_play(hurl, early_file, 6)
    assert(H.wait_until(function() return H.count_plain(srv.log(), "HTTP-FLV stream") >= 1 end, 10), srv.log())
    local rtmp_player = H.ffmpeg_play(srv.url("live/hf"), rtmp_file, 6)
    assert(H.wait_until(function() return srv.count("play", "hf") >= 1 end, 10), srv.log())
    local ws = flv_client(hport, "/live/hf.flv", ws_file, "--ping --timeout 30")
    local slow = flv_client(hport, "/live/hf.flv", slow_file, "--http --stall 12 --timeout 30")
    local late = flv_client(hport, "/live/hf.flv", late_file, "--http --delay 3.5 --timeout 30")
    assert(H.wait_until(function() return H.count_plain(srv.log(), "-FLV stream") >= 3 end, 10), srv.log())
    -- /api/streams lists them with the RTMP player, and counts them
    local _, body = H.run(fmt("curl -s -m 5 http://127.0.0.1:%d/api/streams", hport), 10)
    local st = assert(json.decode(body), body).streams[1]
    assert.are.equal("hf", st.name)
    assert.are.equal(4, st.players)
    local protocols = {}
    for _, c in ipairs(st.clients) do protocols[#protocols + 1] = c.protocol .. ":" .. c.role end
    table.sort(protocols)
    assert.are.same({ "http-flv:player", "http-flv:player", "rtmp:player", "ws-flv:player" }, protocols)

    local pub = H.ffmpeg_publish(srv.url("live/hf"))
    -- ffprobe on the URL, from before the first frame to the stream's end
    local probed = assert(H.probe(hurl))
    assert.are.equal(F.frames, probed.video and probed.video.frames, "ffprobe on the URL: video frames")
    assert.are.equal(fixture.audio.frames, probed.audio and probed.audio.frames, "ffprobe on the URL: audio frames")

    assert.are.equal(0, H.wait_exit(pub, F.seconds + 15), "publisher:\n" .. H.output(pub))
    for name, p in pairs({ rtmp = rtmp_player, early = early, ws = ws, late = late, slow = slow }) do
      assert(H.wait_exit(p, 30), name .. " did not end")
    end
    local log = srv.log()

    -- ffmpeg on the URL from before the publish: every frame
    local info = assert(H.probe(early_file))
    assert.are.equal(F.frames, info.video and info.video.frames, "ffmpeg HTTP-FLV: video frames\n" .. H.output(early))
    assert.are.equal(fixture.audio.frames, info.audio and info.audio.frames, "ffmpeg HTTP-FLV: audio frames")
    assert.are.equal("", decode_errors(early_file))

    -- the WebSocket client: every frame, its ping answered, the end a close 1000
    local st = ws.state()
    assert.are.equal(101, st.status)
    assert.are.equal("pong", st.ping)
    assert.are.equal(1000, st.close, "the stream's end closes the WebSocket: " .. H.read_file(ws_file .. ".state"))
    info = assert(H.probe(ws_file))
    assert.are.equal(F.frames, info.video and info.video.frames, "WS-FLV: video frames")
    assert.are.equal(fixture.audio.frames, info.audio and info.audio.frames, "WS-FLV: audio frames")
    -- byte for byte: the server's FLV (the WebSocket payloads) reads strictly and
    -- holds the fixture's audio and video tags, every one, in order
    local want = av_tags(H.fixture_flv())
    local got, flags = av_tags(ws_file)
    assert.is_true(same_tail(want, 1, got, 1), fmt("WS-FLV: %d audio/video tags, the fixture %d, or they differ",
      #got, #want))
    assert.are.same({ audio = true, video = true }, flags)

    -- the late joiner: from a cached keyframe to the end, so whole GOPs
    assert.are.equal("closed", late.state()["end"])
    info = assert(H.probe(late_file))
    local n = info.video and info.video.frames or 0
    assert.is_true(n >= F.frames - 3 * F.gop and n < F.frames and n % F.gop == 0,
      fmt("the late joiner decoded %d frames: not whole GOPs from a keyframe", n))
    assert.matches("^K", H.first_video_flags(late_file))
    assert.are.equal("", decode_errors(late_file))
    -- its tags: the two sequence headers, then the fixture's from a keyframe on
    local late_tags = av_tags(late_file)
    local first = late_tags[3]
    local at
    for k = 3, #want do if want[k][1] == first[1] and want[k][2] == first[2] then at = k break end end
    assert(at and first[1] == 9, "the late joiner's first frame is not a video frame of the fixture")
    assert.is_true(same_tail(want, at, late_tags, 3), "the late joiner's tags from its keyframe on")
    assert.are.same({ want[1], want[2] }, { late_tags[1], late_tags[2] })

    -- the reader that read nothing: dropped by the slow-reader policy
    assert.matches("warn http %d+: slow reader: over the queue bounds for", log)
    assert.are.equal("closed", slow.state()["end"])

    -- and the RTMP player got every frame meanwhile
    info = assert(H.probe(rtmp_file))
    assert.are.equal(F.frames, info.video and info.video.frames, "RTMP player: video frames")

    -- the frames the slow HTTP reader lost are in the metrics' total (no RTMP player lost any)
    local _, metrics = H.run(fmt("curl -s -m 5 http://127.0.0.1:%d/metrics", hport), 10)
    local dropped = tonumber(metrics:match("\nluartmp_dropped_frames_total (%d+)"))
    assert.is_true(dropped and dropped > 0, metrics)
  end)
end)
