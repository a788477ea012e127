-- capture2lua: captures of real peers (dumpcap on loopback) turned into
-- Lua scripts (scripts/tools/capture2lua.lua) that play one side, run with
-- build/luartmp against real peers again.  Tests 1-4 use --strict (the
-- transcript); the last ones the default handler scripts, played to peers
-- other than the recorded one.
--
--   1. ffmpeg publishes to nginx-rtmp (captured); the generated server
--      side takes a publish from ffmpeg, which sends it the same commands
--      in the same order as in the capture;
--   2. one reply edited in the text changes what ffmpeg does; the client
--      side of the same capture publishes to nginx-rtmp for an ffmpeg player;
--   3. ffmpeg plays from nginx-rtmp while another ffmpeg publishes
--      (captured: two connections, --list); the generated client side
--      plays from nginx-rtmp and saves a stream ffprobe decodes;
--   4. the generated server side of that player serves the recorded media
--      (companion FLV) to an ffmpeg player.
local H = require "support.helpers"
local C = require "support.capture"
local capture = require "rtmp.capture"

local fmt, q = string.format, H.shquote

-- A 2 s H.264/AAC FLV (50 video frames), made once per build directory:
-- the matrix's fixture (spec/support/matrix.lua).
local MX = require "support.matrix"
local FRAMES = MX.FIXTURE_FRAMES
local fixture = MX.fixture

local function c2l(args)
  return H.run(fmt("%s scripts/tools/capture2lua.lua %s", q(H.luartmp), args), 30)
end

-- Command names in the order `dir` sent them, from a capture's connection.
local function capture_commands(path, id, dir)
  local cap = assert(capture.open(path))
  local names = {}
  for _, e in ipairs(capture.messages(cap.conns[id])) do
    if e.dir == dir and e.msg.type_name == "command" then names[#names + 1] = e.msg.name end
  end
  return names
end

-- Command names the luartmp trace shows received ("in"), and their streams.
local function trace_commands(path)
  local names, streams = {}, {}
  for line in (H.read_file(path) or ""):gmatch("[^\n]+") do
    local stream, name = line:match(' in csid=%S+ fmt=%S+ type=command stream=(%d+) .- body={"([^"]*)"')
    if name then
      names[#names + 1] = name
      streams[name] = tonumber(stream)
    end
  end
  return names, streams
end

-- The last "frame=" count in ffmpeg's output.
local function ffmpeg_frames(text)
  local n
  for f in text:gmatch("frame=%s*(%d+)") do n = tonumber(f) end
  return n
end

local function publish(url, realtime)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info %s -i %s -c copy -f flv %s",
    realtime and "-re" or "", q(fixture()), q(url)), { name = "ffmpeg-publish" })
end

-- Start a real-time ffmpeg publish of live/`name` to `nginx` and return once
-- nginx-rtmp has logged the publish and ffmpeg has sent media (its first
-- progress line): the stream is then active. A player that comes sooner
-- joins an idle stream, and nginx-rtmp then sends Play.Start before
-- Stream Begin: another order than the capture's.
local function publish_live(nginx, name)
  local before = nginx.count("publish", name)
  local p = publish(nginx.url("live/" .. name), true)
  assert(H.wait_event(nginx, "publish", name, before, 20),
    "nginx-rtmp never logged the publish of " .. name .. ": " .. H.output(p))
  assert(H.wait_until(function() return (ffmpeg_frames(H.output(p)) or 0) > 0 end, 20),
    "ffmpeg sent no frame to " .. name .. ": " .. H.output(p))
  return p
end

-- Start a generated server script (luartmp --listen PORT --trace=PATH SCRIPT ARGS).
local function run_server(script, trace, args)
  return H.luartmp_start{ script = script, log_level = "info", args = args or { "--once" },
                          extra = { "--trace=" .. trace } }
end

describe("capture2lua with real peers #nginx", function()
  local nginx, dir
  local pub_capture, play_capture, player_id

  setup(function()
    dir = H.mkdir(H.tmpname("c2l"))
    nginx = H.nginx_start()
  end)
  teardown(function() H.cleanup() end)

  it("the server side of an ffmpeg publish takes the same publish from ffmpeg", function()
    local cap = C.start(nginx.port)
    local p = publish(nginx.url("live/c2lpub"))
    assert.equal(0, H.wait_exit(p, 30), H.output(p))
    pub_capture = C.stop(cap)

    local script = dir .. "/pub_server.lua"
    local rc, out = c2l(fmt("%s --strict --side server -o %s", q(pub_capture), q(script)))
    assert.equal(0, rc, out)
    assert.truthy(loadfile(script), "the generated script does not load")
    local text = H.read_file(script)
    assert.truthy(text:find('expect { "command", "connect", txn = 1 }', 1, true), text)
    assert.truthy(text:find('send { "set_chunk_size", chunk_size = 4096 }', 1, true), text)
    assert.truthy(text:find('"NetStream.Publish.Start"', 1, true), text)
    -- the same capture gives the same text
    local rc2, out2 = c2l(fmt("%s --strict --side server", q(pub_capture)))
    assert.equal(0, rc2, out2)
    assert.truthy(out2:find(text, 1, true), "a second run wrote another text")

    local trace = dir .. "/pub_server.trace"
    local srv = run_server(script, trace)
    local f = publish(srv.url("live/c2lpub"))
    assert.equal(0, H.wait_exit(f, 30), H.output(f))
    assert.equal(FRAMES, ffmpeg_frames(H.output(f)), H.output(f))
    assert.equal(0, H.wait_exit(srv.proc, 10), srv.log())   -- --once: ends with the connection
    assert.truthy(srv.log():find("after the last step", 1, true), srv.log())
    assert.falsy(srv.log():find("unexpected", 1, true), srv.log())

    local recorded = capture_commands(pub_capture, 1, "c2s")
    local live, streams = trace_commands(trace)
    assert.same({ "connect", "releaseStream", "FCPublish", "createStream", "publish" },
      { table.unpack(recorded, 1, 5) })
    assert.same(recorded, live)
    assert.equal(1, streams.publish)
  end)

  it("one reply edited in the script changes what ffmpeg does", function()
    assert(pub_capture, "needs the publish capture")
    local script = dir .. "/pub_server_edited.lua"
    local rc, out = c2l(fmt("%s --strict -o %s", q(pub_capture), q(script)))
    assert.equal(0, rc, out)
    -- createStream answers stream id 7 instead of the recorded 1
    local text, n = H.read_file(script):gsub('values = { "_result", 4, null, 1 }', 'values = { "_result", 4, null, 7 }')
    assert.equal(1, n)
    H.write_file(script, text)
    local trace = dir .. "/pub_server_edited.trace"
    local srv = run_server(script, trace)
    local f = publish(srv.url("live/c2lpub"))
    H.wait_exit(f, 30)
    H.wait_exit(srv.proc, 10)
    local _, streams = trace_commands(trace)
    assert.equal(7, streams.publish)       -- ffmpeg published on the stream we gave it
    -- and deleted that stream at the end
    assert.truthy(H.read_file(trace):find('body={"deleteStream", %d+, rtmp.null, 7}'), H.read_file(trace))
  end)

  it("the client side of an ffmpeg publish publishes the recorded media to nginx-rtmp", function()
    assert(pub_capture, "needs the publish capture")
    local script = dir .. "/pub_client.lua"
    local rc, out = c2l(fmt("%s --strict --side client -o %s", q(pub_capture), q(script)))
    assert.equal(0, rc, out)
    local text = H.read_file(script)
    assert.truthy(text:find('media = "pub_client.flv"', 1, true), text)
    assert.truthy(text:find('values = { "@setDataFrame",%s+"onMetaData",%s+ecma{'), text)
    -- a player waits for the stream, then the generated publisher sends it
    local got = dir .. "/from_flow_client.flv"
    local plays = nginx.count("play", "c2lpub")
    local pl = H.ffmpeg_play(nginx.url("live/c2lpub"), got, 2)
    -- the player must be there before the first frame: nginx-rtmp keeps no GOP
    assert(H.wait_event(nginx, "play", "c2lpub", plays, 20), nginx.log())
    H.sleep(0.2)
    local cl = H.spawn(fmt("%s %s %s --linger 0.5", q(H.luartmp), q(script), q(nginx.url("live"))),
      { name = "flow-publisher" })
    assert.equal(0, H.wait_exit(cl, 20), H.output(cl))
    assert.truthy(H.output(cl):find("sent media tags 1..", 1, true), H.output(cl))
    H.wait_exit(pl, 15)
    local info = assert(H.probe(got))
    assert.truthy(info.video and (info.video.frames or 0) > 0, info.log)
    assert.truthy(info.audio and (info.audio.frames or 0) > 0, info.log)
  end)

  it("the client side of an ffmpeg player plays from nginx-rtmp", function()
    local cap = C.start(nginx.port)
    local p = publish_live(nginx, "c2lplay")
    local got = dir .. "/recorded_player.flv"
    local pl = H.ffmpeg_play(nginx.url("live/c2lplay"), got, 2)
    assert.equal(0, H.wait_exit(p, 30), H.output(p))
    H.wait_exit(pl, 15)
    play_capture = C.stop(cap)

    -- --list: both connections, their commands
    local rc, out = c2l(q(play_capture) .. " --list")
    assert.equal(0, rc, out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(2, #lines, out)
    for _, l in ipairs(lines) do
      assert.truthy(l:find(" RTMP ", 1, true), l)
      assert.truthy(l:find(":" .. nginx.port .. " ", 1, true), l)
      local id = tonumber(l:match("^(%d+) "))
      if l:find(" play", 1, true) then player_id = id end
    end
    assert.truthy(out:find("connect releaseStream FCPublish createStream publish", 1, true), out)
    assert.truthy(player_id, out)

    local script = dir .. "/player_client.lua"
    rc, out = c2l(fmt("%s --strict --connection %d --side client -o %s", q(play_capture), player_id, q(script)))
    assert.equal(0, rc, out)
    assert.truthy(loadfile(script))
    assert.truthy(H.read_file(script):find('send { "command", csid = 8, stream = 1, values = { "play"', 1, true))

    local p2 = publish_live(nginx, "c2lplay")
    local saved = dir .. "/flow_client_saved.flv"
    local cl = H.spawn(fmt("%s %s %s --save %s --linger 1.5", q(H.luartmp), q(script),
      q(nginx.url("live")), q(saved)), { name = "flow-client" })
    assert.equal(0, H.wait_exit(p2, 30), H.output(p2))
    assert.equal(0, H.wait_exit(cl, 20), H.output(cl))
    local log = H.output(cl)
    assert.truthy(log:find("got command onStatus", 1, true), log)
    assert.falsy(log:find("unexpected", 1, true), log)
    local info = assert(H.probe(saved))
    assert.truthy(info.video and (info.video.frames or 0) > 0, info.log)
    assert.equal("h264", info.video.codec)
    assert.truthy(info.audio and (info.audio.frames or 0) > 0, info.log)
  end)

  it("the server side of an ffmpeg player serves the recorded media", function()
    assert(play_capture and player_id, "needs the play capture")
    local script = dir .. "/player_server.lua"
    local rc, out = c2l(fmt("%s --strict --connection %d -o %s", q(play_capture), player_id, q(script)))
    assert.equal(0, rc, out)
    local text = H.read_file(script)
    assert.truthy(text:find('media = "player_server.flv"', 1, true), text)
    local from, to = text:match("media { from = (%d+), to = (%d+), stream = 1")
    assert.truthy(from, text)
    local companion = assert(H.probe(dir .. "/player_server.flv"))
    assert.truthy(companion.video and (companion.video.frames or 0) > 0, companion.log)

    local trace = dir .. "/player_server.trace"
    local srv = run_server(script, trace, { "--once", "--fast" })
    local got = dir .. "/from_flow_server.flv"
    local pl = H.ffmpeg_play(srv.url("live/c2lplay"), got, 2)
    assert.equal(0, H.wait_exit(pl, 20), H.output(pl))
    assert.equal(0, H.wait_exit(srv.proc, 10), srv.log())
    assert.truthy(srv.log():find(fmt("sent media tags %s..%s", from, to), 1, true), srv.log())
    local info = assert(H.probe(got))
    assert.truthy(info.video and (info.video.frames or 0) > 0, info.log)
    assert.equal(companion.video.frames, info.video.frames)
    local recorded = capture_commands(play_capture, player_id, "c2s")
    assert.same(recorded, (trace_commands(trace)))
  end)
  it("the handler server of an ffmpeg player serves rtmpdump, which was never recorded", function()
    assert(play_capture and player_id, "needs the play capture")
    local script = dir .. "/player_handlers.lua"
    local rc, out = c2l(fmt("%s --connection %d -o %s", q(play_capture), player_id, q(script)))
    assert.equal(0, rc, out)
    local text = H.read_file(script)
    assert.truthy(text:find('on { "command", "play"', 1, true), text)
    assert.falsy(text:find("expect {", 1, true), text)
    local companion = assert(H.probe(dir .. "/player_handlers.flv"))
    -- rtmpdump sends its own commands in its own order (no getStreamLength,
    -- FCSubscribe, other buffer lengths); the answers follow what it asks
    local srv = run_server(script, dir .. "/player_handlers.trace", { "--once", "--fast", "--idle", "1" })
    local got = dir .. "/rtmpdump_from_handlers.flv"
    local rd = H.rtmpdump_play(srv.url("live/c2lplay"), got)
    H.wait_exit(rd, 30)
    assert.equal(0, H.wait_exit(srv.proc, 15), srv.log())    -- every request it has a handler for came
    local log = srv.log()
    assert.truthy(log:find("sent media tags 1..", 1, true), log)
    local info = assert(H.probe(got))
    assert.truthy(info.video, info.log)
    assert.equal(companion.video.frames, info.video.frames)
  end)

  it("the handler client of an ffmpeg player plays from nginx-rtmp and reaches its outcome", function()
    assert(play_capture and player_id, "needs the play capture")
    local script = dir .. "/player_client_handlers.lua"
    local rc, out = c2l(fmt("%s --connection %d --side client -o %s", q(play_capture), player_id, q(script)))
    assert.equal(0, rc, out)
    local text = H.read_file(script)
    assert.truthy(text:find('await { "onStatus", stream = 1', 1, true), text)
    assert.truthy(text:find("receive { audio = %d+, video = %d+ }"), text)
    local p = publish_live(nginx, "c2lplay")
    local saved = dir .. "/handler_client_saved.flv"
    local cl = H.spawn(fmt("%s %s %s --save %s", q(H.luartmp), q(script), q(nginx.url("live")), q(saved)),
      { name = "flow-client" })
    assert.equal(0, H.wait_exit(cl, 30), H.output(cl))
    H.wait_exit(p, 30)
    local info = assert(H.probe(saved))
    assert.truthy(info.video and (info.video.frames or 0) > 0, info.log)
    assert.truthy(info.audio and (info.audio.frames or 0) > 0, info.log)
  end)
end)

describe("capture2lua inputs", function()
  teardown(function() H.cleanup() end)

  it("reads a raw stream pair (--raw CLIENT SERVER) and refuses what does not decode, writing nothing", function()
    local dir = H.mkdir(H.tmpname("c2lraw"))
    -- the two directions of a committed capture, as Wireshark's "Save as Raw" writes them
    local cap = assert(capture.open("spec/flows/nginx_serves_play_lua.pcapng"))
    local parts = { c2s = {}, s2c = {} }
    for _, ch in ipairs(cap.conns[2].chunks) do table.insert(parts[ch.dir], ch.data) end
    H.write_file(dir .. "/c.raw", table.concat(parts.c2s))
    H.write_file(dir .. "/s.raw", table.concat(parts.s2c))
    local script = dir .. "/raw_server.lua"
    local rc, out = c2l(fmt("--raw %s %s -o %s", q(dir .. "/c.raw"), q(dir .. "/s.raw"), q(script)))
    assert.equal(0, rc, out)
    local text = H.read_file(script)
    assert.truthy(text:find('on { "command", "play", txn = 0, stream = 1,', 1, true), text)
    assert.truthy(text:find("media { from = 1, to = 50, stream = 1", 1, true), text)
    -- bytes that are no RTMP: exit 1, a reason, no script
    H.write_file(dir .. "/junk_c", string.rep("\x03", 1537) .. string.rep("\xAB\x01", 2000))
    H.write_file(dir .. "/junk_s", string.rep("\x03", 3073) .. string.rep("\xEF", 500))
    local bad = dir .. "/junk.lua"
    rc, out = c2l(fmt("--raw %s %s -o %s", q(dir .. "/junk_c"), q(dir .. "/junk_s"), q(bad)))
    assert.equal(1, rc, out)
    assert.truthy(out:find("capture2lua: ", 1, true), out)
    assert.truthy(out:find("nothing written", 1, true), out)
    assert.is_nil(H.file_size(bad))
  end)
end)
