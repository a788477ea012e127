-- Our capture decoder (rtmp.capture, scripts/tools/decode.lua) against an
-- independent one, tshark's RTMPT dissector, on loopback captures of real
-- peers: both must list the same messages per direction (chunk stream
-- id, type, length, message stream id, command names; support/agree.lua
-- says where the dissector shows less).  Every capture made through
-- support/capture.lua in the other specs is checked the same way when it
-- stops; this file adds sessions chosen for their variety.
local H = require "support.helpers"
local C = require "support.capture"
local A = require "support.agree"
local capture = require "rtmp.capture"

local fmt, q = string.format, H.shquote

local function ffmpeg_publish_fast(url, seconds)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v error -re -t %d -i %s -c copy -f flv %s",
    seconds, q(H.fixture_flv()), q(url)), { name = "ffmpeg-publish" })
end

describe("capture decoder agrees with tshark", function()
  after_each(H.cleanup)

  it("ffmpeg publishing to nginx-rtmp and ffmpeg playing from it: two connections", function()
    local ng = H.nginx_start()
    local cap = C.start(ng.port)
    local pub = ffmpeg_publish_fast(ng.url("live/agree"), 3)
    H.sleep(1)
    local out = H.tmpname("agree-play.flv")
    local play = H.ffmpeg_play(ng.url("live/agree"), out, 2)
    assert.are.equal(0, H.wait_exit(pub, 30))
    H.wait_exit(play, 20)
    local path = C.stop(cap, { agree = false })
    local n, named = A.check(path, 100)
    assert.is_true(named >= 10, "command names compared: " .. named)
    local c = assert(capture.open(path))
    assert.are.equal(2, #capture.rtmp_conns(c))
  end)

  it("rtmpdump playing from and GStreamer publishing to our live server", function()
    local srv = H.luartmp_start()
    local cap = C.start(srv.port)
    local gst = H.spawn(fmt("gst-launch-1.0 -q filesrc location=%s ! flvdemux name=d d.video ! queue ! "
      .. "h264parse ! flvmux streamable=true ! rtmp2sink location=%s", q(H.fixture_flv()),
      q(srv.url("live/gst"))), { name = "gst-publish" })
    assert.truthy(H.wait_until(function() return srv.count("publish", "gst") > 0 end, 15), srv.log())
    local out = H.tmpname("agree-rtmpdump.flv")
    local dump = H.spawn(fmt("rtmpdump -q -v -r %s -o %s -B 2", q(srv.url("live/gst")), q(out)),
      { name = "rtmpdump" })
    H.wait_exit(dump, 20)
    H.kill(gst, 5)
    local path = C.stop(cap, { agree = false })
    local n, named = A.check(path, 50)
    assert.is_true(named >= 8, "command names compared: " .. named)
  end)

  it("chunk-layer corners: 1-3 byte basic headers, chunk size changes, interleaving, extended timestamps", function()
    local srv = H.luartmp_start()
    local cap = C.start(srv.port)
    local p = H.spawn(fmt("%s spec/interop/agree_client.lua %s corners", q(H.luartmp), q(srv.url("live"))),
      { name = "agree-client" })
    assert.are.equal(0, H.wait_exit(p, 20), H.output(p))
    local path = C.stop(cap, { agree = false })
    local c = assert(capture.open(path)).conns[1]
    local list = capture.messages(c)
    assert.is_nil(list.error)
    local csids, ext, sizes = {}, 0, {}
    for _, e in ipairs(list) do
      if e.dir == "c2s" then
        csids[e.msg.csid] = true
        if e.msg.timestamp >= 0xFFFFFF then ext = ext + 1 end
        sizes[e.chunk_size] = true
      end
    end
    for _, id in ipairs({ 64, 319, 320, 65599 }) do assert.is_true(csids[id], "csid " .. id) end
    for _, s in ipairs({ 1, 77, 4096, 65536 }) do assert.is_true(sizes[s], "chunk size " .. s) end
    assert.are.equal(7, ext)   -- 2 interleaved pairs and 3 fmt 2/3 messages past 0xFFFFFE
    A.check(path, 60)
  end)

  it("decode.lua prints one trace line per message and lists the connections", function()
    local srv = H.luartmp_start()
    local cap = C.start(srv.port)
    local p = H.spawn(fmt("%s spec/interop/agree_client.lua %s listed", q(H.luartmp), q(srv.url("live"))),
      { name = "agree-client" })
    assert.are.equal(0, H.wait_exit(p, 20), H.output(p))
    local path = C.stop(cap)
    local rc, out = H.run(fmt("%s scripts/tools/decode.lua %s --from-start", q(H.luartmp), q(path)), 30)
    assert.are.equal(0, rc, out)
    local lines, publish = 0, nil
    for line in out:gmatch("[^\n]+") do
      if not line:match("^%-%- ") then
        lines = lines + 1
        assert.truthy(line:match("^%d+%.%d+ conn=1 [io][nu]t? csid=%d+ fmt=%d type=%S+ stream=%d+ ts=%d+ len=%d+ body=.*$"), line)
        if line:find('body={"publish"', 1, true) then publish = line end
      end
    end
    local c = assert(capture.open(path)).conns[1]
    assert.are.equal(#capture.messages(c), lines)
    assert.truthy(publish and publish:find('"listed", "live"}', 1, true), publish)
    rc, out = H.run(fmt("%s scripts/tools/decode.lua %s --list", q(H.luartmp), q(path)), 30)
    assert.are.equal(0, rc)
    assert.truthy(out:match("^1 127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:" .. srv.port .. " rtmp %d+/%d+ bytes\n$"), out)
    rc, out = H.run(fmt("%s scripts/tools/decode.lua /nonexistent.pcap", q(H.luartmp)), 30)
    assert.are.equal(1, rc)
    assert.truthy(out:find("/nonexistent.pcap", 1, true), out)
  end)

  it("every recorded flow shipped under spec/flows", function()
    local rc, out = H.run("ls spec/flows/*.pcap spec/flows/*.pcapng spec/flows/*/*.pcap spec/flows/*/*.pcapng 2>/dev/null", 10)
    local files = {}
    for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
    assert.is_true(#files > 0, "no recorded flows under spec/flows")
    for _, f in ipairs(files) do A.check(f, 10) end
  end)
end)
