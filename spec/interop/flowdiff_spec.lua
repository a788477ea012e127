-- Differential replay (scripts/tools/flowdiff.lua): the client side of a
-- captured ffmpeg player (nginx-rtmp serving), written by capture2lua.lua,
-- run against our live server, nginx-rtmp and ffmpeg -listen 1, each with
-- a stream to serve; the tool prints how their answers differ.
local H = require "support.helpers"
local C = require "support.capture"

local fmt, q = string.format, H.shquote

-- Publish the fixture (8 s) in real time as live/s on `srv` (H.nginx_start
-- or H.luartmp_start) and return once the server has logged the publish
-- and `settle` seconds more (1 unless given) have passed: the flow's player
-- then finds the stream active, whatever the machine's load (a fixed sleep
-- alone can let ffmpeg come late, and nginx-rtmp answers an idle stream in
-- another order).
local function publish(srv, settle)
  local before = srv.count("publish", "s")
  local p = H.ffmpeg_publish(srv.url("live/s"))
  assert(H.wait_event(srv, "publish", "s", before, 20),
    srv.name .. " never logged the publish: " .. H.output(p))
  H.sleep(settle or 1)
  return p
end

local function flowdiff(flow, targets, extra)
  return H.run(fmt("%s scripts/tools/flowdiff.lua %s %s --linger 1 --duration 2 %s", q(H.luartmp), q(flow),
    table.concat(targets, " "), extra or ""), 90)
end

describe("flowdiff.lua", function()
  local flow
  after_each(H.cleanup)

  setup(function()
    -- capture ffmpeg playing from nginx-rtmp, turn its client side into a flow
    local ng = H.nginx_start()
    local cap = C.start(ng.port)
    publish(ng)
    local out = H.tmpname("fd-play.flv")
    local play = H.spawn(fmt("ffmpeg -nostdin -v error -t 1 -i %s -c copy -f flv -y %s", q(ng.url("live/s")), q(out)),
      { name = "ffmpeg-play" })
    assert.are.equal(0, H.wait_exit(play, 20), H.output(play))
    local path = C.stop(cap)
    flow = H.tmpname("fd-play-flow.lua")
    local rc, msg = H.run(fmt("%s scripts/tools/capture2lua.lua %s --strict --side client --connection 2 -o %s",
      q(H.luartmp), q(path), q(flow)), 30)
    assert(rc == 0, msg)
    H.cleanup()
  end)

  it("prints where nginx-rtmp and ffmpeg -listen answer the flow differently from luartmp", function()
    local ng = H.nginx_start()
    local lr = H.luartmp_start()
    local fport = H.free_port()
    H.spawn(fmt("ffmpeg -nostdin -v error -re -i %s -c copy -f flv -listen 1 rtmp://127.0.0.1:%d/live/s",
      q(H.fixture_flv()), fport), { name = "ffmpeg-listen" })
    publish(ng, 0)   -- the three runs follow each other within the fixture's 8 s
    publish(lr)
    assert(H.wait_port(fport, 10))
    local rc, out = flowdiff(flow, { "luartmp=" .. lr.url("live"), "nginx=" .. ng.url("live"),
      fmt("ffmpeg=rtmp://127.0.0.1:%d/live", fport) })
    assert.are.equal(1, rc, out)
    -- the header of each server's run
    assert.truthy(out:find("== luartmp " .. lr.url("live") .. ": ", 1, true), out)
    -- nginx: a 5000000-byte window where we say 2500000, its own Play.Start
    local nginx = out:match("%-%-%- luartmp\n%+%+%+ nginx(\n.-)\nnginx: %d+ lines differ from luartmp")
    assert.truthy(nginx, out)
    assert.truthy(nginx:find("\n- window_ack_size csid=2 stream=0 {window=2500000}", 1, true), nginx)
    assert.truthy(nginx:find("\n+ window_ack_size csid=2 stream=0 {window=5000000}", 1, true), nginx)
    assert.truthy(nginx:find('+ command csid=5 stream=1 {"onStatus", 0, rtmp.null, {level="status", code="NetStream.Play.Start", description="Start live"}}', 1, true), nginx)
    -- unchanged lines are shown without a sign
    assert.truthy(nginx:find('\n  command csid=3 stream=0 {"_result", 2, rtmp.null, 1}', 1, true), nginx)
    -- ffmpeg -listen: onBWDone, and no Set Chunk Size 4096
    local ff = out:match("%-%-%- luartmp\n%+%+%+ ffmpeg(\n.-)\nffmpeg: %d+ lines differ from luartmp")
    assert.truthy(ff, out)
    assert.truthy(ff:find('+ command csid=3 stream=0 {"onBWDone", 0, rtmp.null, 8192}', 1, true), ff)
    assert.truthy(ff:find("- set_chunk_size csid=2 stream=0 {chunk_size=4096}", 1, true), ff)
  end)

  it("says a server answered as the first one, and exits 0", function()
    local ng = H.nginx_start()
    publish(ng)
    local rc, out = flowdiff(flow, { "a=" .. ng.url("live"), "b=" .. ng.url("live") })
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("\nb answered as a\n", 1, true), out)
    assert.truthy(out:find("media audio video", 1, true) == nil)   -- folded runs are not printed when equal
  end)

  it("exits 2 and names the server when a run gets nothing", function()
    local dead = H.free_port()
    local ng = H.nginx_start()
    local rc, out = flowdiff(flow, { "nginx=" .. ng.url("live"), fmt("dead=rtmp://127.0.0.1:%d/live", dead) })
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("dead (rtmp://127.0.0.1:" .. dead .. "/live)", 1, true), out)
  end)
end)
