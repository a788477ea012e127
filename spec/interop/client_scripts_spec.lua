-- The shipped client scripts (scripts/client/publish.lua and play.lua) from
-- the command line, against real peers: nginx-rtmp with an ffmpeg player,
-- our live server, ffprobe reading what play.lua writes (a file, or stdout
-- through a pipe).

local H = require "support.helpers"
local q, fmt = H.shquote, string.format

local PUBLISH, PLAY = "scripts/client/publish.lua", "scripts/client/play.lua"

-- A 2 s H.264/AAC FLV (25 fps, a keyframe every second): 50 video frames.
local SHORT = { seconds = 2, fps = 25, frames = 50 }
local short_path
local function short_flv()
  if short_path then return short_path end
  local path = "build/test-tmp/fixture-h264-aac-320x240-25fps-g25-2s.flv"
  H.mkdir("build/test-tmp")
  if not H.file_size(path) then
    local tmp = path .. ".tmp" .. math.random(1e6)
    local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 " ..
      "-f lavfi -i sine=frequency=440:sample_rate=44100 -t 2 -c:v libx264 -preset veryfast -g 25 " ..
      "-keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv %s && mv %s %s",
      q(tmp), q(tmp), q(path)), 60)
    assert(rc == 0, "ffmpeg could not make the 2 s fixture: " .. out)
  end
  local info = assert(H.probe(path))
  assert(info.video and info.video.frames == SHORT.frames, "bad 2 s fixture: " .. (info.log or ""))
  short_path = path
  return path
end

-- ffprobe's container duration of a file, in seconds.
local function duration(file)
  local _, out = H.run("ffprobe -v error -show_entries format=duration -of csv=p=0 " .. q(file), 30)
  return tonumber(out:match("[%d.]+"))
end

-- Run a client script to completion: exit status, output, elapsed seconds.
local function run_script(script, args, timeout)
  local t0 = H.now()
  local rc, out = H.run(q(H.luartmp) .. " " .. script .. " " .. args, timeout or 30)
  return rc, out, H.now() - t0
end

-- Start play.lua in the background (extra options, URL, output).
local function spawn_play(url, out, opts)
  return H.spawn(fmt("%s %s %s %s %s", q(H.luartmp), PLAY, opts or "", q(url), q(out)), { name = "play" })
end

-- Wait until `srv` logged a player (or publisher) of `name`.
local function wait_event(srv, event, name, n)
  local ok = H.wait_event(srv, event, name, (n or 1) - 1)
  assert(ok, fmt("%s never logged %s of %s:\n%s", srv.name, event, name, srv.log()))
end

describe("client scripts", function()
  after_each(H.cleanup)

  it("publish.lua paces a 2 s file in real time to nginx-rtmp, and an ffmpeg player gets every frame", function()
    local file = short_flv()
    local srv = H.nginx_start()
    local out = H.tmpname("ffmpeg-from-nginx.flv")
    local player = H.ffmpeg_play(srv.url("live/paced"), out, 1.5)
    wait_event(srv, "play", "paced")
    local rc, text, elapsed = run_script(PUBLISH, q(file) .. " " .. q(srv.url("live/paced")))
    assert.are.equal(0, rc, text)
    assert.are.equal("", text, "nothing on stderr when it is not a terminal")
    -- Real time: the last frame is due 1.96 s after the first.
    assert.is_true(elapsed >= 1.8, "published 2 s of media in " .. elapsed .. " s")
    assert.is_truthy(H.wait_exit(player, 15), "ffmpeg player did not end")
    local info = assert(H.probe(out))
    assert.are.equal(SHORT.frames, info.video.frames, info.log)
    assert.are.equal("h264", info.video.codec)
    assert.are.equal("aac", info.audio and info.audio.codec)
    assert.are.equal(1, srv.count("publish", "paced"))
    assert.is_nil(srv.log():find("%[error%]"), srv.log())
  end)

  it("play.lua records from nginx-rtmp while ffmpeg publishes, and ends when the stream does", function()
    local file = short_flv()
    local srv = H.nginx_start()
    local out = H.tmpname("play-from-nginx.flv")
    local player = spawn_play(srv.url("live/fromff"), out, "--timeout 10")
    wait_event(srv, "play", "fromff")
    local ff = H.ffmpeg_publish(srv.url("live/fromff"), file)
    assert.are.equal(0, H.wait_exit(ff, 15), H.output(ff))
    -- nginx tells players the stream ended (StreamEOF, UnpublishNotify)
    assert.are.equal(0, H.wait_exit(player, 10), H.output(player))
    assert.are.equal("", H.output(player))
    local info = assert(H.probe(out))
    assert.are.equal(SHORT.frames, info.video.frames, info.log)
    assert.are.equal("aac", info.audio and info.audio.codec)
    local d = duration(out)
    assert.is_true(d and d > 1.9 and d < 2.2, "duration " .. tostring(d))
  end)

  it("publish.lua --fast to our live server, play.lua into a file: every frame, the right duration", function()
    local file = short_flv()
    local srv = H.luartmp_start()
    local out = H.tmpname("played.flv")
    local player = spawn_play(srv.url("live/fast"), out, "--timeout 10")
    wait_event(srv, "play", "fast")
    local rc, text = run_script(PUBLISH, "--fast " .. q(file) .. " " .. q(srv.url("live/fast")))
    assert.are.equal(0, rc, text)
    assert.are.equal(0, H.wait_exit(player, 10), H.output(player))
    assert.are.equal("", H.output(player))
    local info = assert(H.probe(out))
    assert.are.equal(SHORT.frames, info.video.frames, info.log)
    assert.are.equal("aac", info.audio and info.audio.codec)
    local d = duration(out)
    assert.is_true(d and d > 1.9 and d < 2.2, "duration " .. tostring(d))
    assert.is_truthy(srv.log():find("publish live/fast", 1, true))
  end)

  it("publish.lua --loop 2 sends the file twice with continuing timestamps", function()
    local file = short_flv()
    local srv = H.luartmp_start()
    local out = H.tmpname("looped.flv")
    local player = spawn_play(srv.url("live/loop"), out, "--timeout 10")
    wait_event(srv, "play", "loop")
    local rc, text, elapsed = run_script(PUBLISH, "--fast --loop 2 " .. q(file) .. " " .. q(srv.url("live/loop")))
    assert.are.equal(0, rc, text)
    -- --fast does not pace: 4 s of media go out in less than real time
    -- would take (the only bound above: what --fast means)
    assert.is_true(elapsed < 2 * SHORT.seconds, "--fast --loop 2 took " .. elapsed .. " s")
    assert.are.equal(0, H.wait_exit(player, 10), H.output(player))
    local info = assert(H.probe(out))
    assert.are.equal(2 * SHORT.frames, info.video.frames, info.log)
    local d = duration(out)
    assert.is_true(d and d > 3.9 and d < 4.3, "duration " .. tostring(d))
    -- decoding timestamps never go back, the second pass follows the first
    local _, pts = H.run("ffprobe -v error -select_streams v:0 -show_entries packet=dts_time -of csv=p=0 " .. q(out), 30)
    local last, n = -1, 0
    for t in pts:gmatch("[%d.]+") do
      t = tonumber(t)
      assert.is_true(t > last, "video timestamp " .. t .. " after " .. last)
      last, n = t, n + 1
    end
    assert.are.equal(2 * SHORT.frames, n)
  end)

  it("publish.lua --type record, then append: the live server records the file twice over", function()
    local file = short_flv()
    local dir = H.mkdir(H.tmpname("rec"))
    local srv = H.luartmp_start({ script = "spec/interop/record_live.lua", args = { dir } })
    local url, rec = srv.url("live/rec"), dir .. "/live/rec.flv"
    local rc, text = run_script(PUBLISH, "--fast --type record " .. q(file) .. " " .. q(url))
    assert.are.equal(0, rc, text)
    local info = H.wait_until(function()
      local i = H.probe(rec)
      return i and i.video and i.video.frames == SHORT.frames and i
    end, 5)
    assert.is_truthy(info, "the recording never had every frame: " .. srv.log())
    rc, text = run_script(PUBLISH, "--fast --type append " .. q(file) .. " " .. q(url))
    assert.are.equal(0, rc, text)
    info = H.wait_until(function()
      local i = H.probe(rec)
      return i and i.video and i.video.frames == 2 * SHORT.frames and i
    end, 5)
    assert.is_truthy(info, "the appended recording never had every frame: " .. srv.log())
    local d = duration(rec)
    assert.is_true(d and d > 3.9 and d < 4.3, "duration " .. tostring(d))
  end)

  it("play.lua writes to stdout for a pipe (ffprobe -)", function()
    local file = short_flv()
    local srv = H.luartmp_start()
    local rcfile = H.tmpname("play.rc")
    -- (in sh -c: H.spawn's </dev/null goes to sh, not to ffprobe)
    local pipe = H.spawn("sh -c " .. q(fmt("{ %s %s --timeout 10 %s -; echo $? >%s; } | ffprobe -v error " ..
      "-count_frames -show_entries stream=codec_type,codec_name,nb_read_frames -of compact -i pipe:0",
      q(H.luartmp), PLAY, q(srv.url("live/pipe")), q(rcfile))), { name = "play-pipe" })
    -- a reader that goes away early (ffplay closed): play.lua ends quietly, status 0
    local rcfile2 = H.tmpname("play2.rc")
    local short = H.spawn("sh -c " .. q(fmt("{ %s %s %s -; echo $? >%s; } | head -c 1000 >/dev/null",
      q(H.luartmp), PLAY, q(srv.url("live/pipe")), q(rcfile2))), { name = "play-head" })
    wait_event(srv, "play", "pipe", 2)
    local rc, text = run_script(PUBLISH, "--fast " .. q(file) .. " " .. q(srv.url("live/pipe")))
    assert.are.equal(0, rc, text)
    assert.are.equal(0, H.wait_exit(pipe, 15), H.output(pipe))
    assert.are.equal("0", (H.read_file(rcfile) or ""):match("%d+"), H.output(pipe))
    assert.are.equal(0, H.wait_exit(short, 10), H.output(short))
    assert.are.equal("0", (H.read_file(rcfile2) or ""):match("%d+"), H.output(short))
    assert.are.equal("", H.output(short))
    local probe = H.read_file(pipe.out)
    assert.is_truthy(probe:find("stream|codec_name=h264|codec_type=video|nb_read_frames=" .. SHORT.frames, 1, true),
      H.output(pipe))
    assert.is_truthy(probe:find("stream|codec_name=aac|codec_type=audio|", 1, true), probe)
  end)

  it("play.lua stops at --frames and at --duration, and ends with a valid FLV on SIGINT", function()
    local file = short_flv()
    local srv = H.luartmp_start()
    local url = srv.url("live/limits")
    local by_frames, by_time, by_signal = H.tmpname("frames.flv"), H.tmpname("duration.flv"), H.tmpname("sigint.flv")
    local p1 = spawn_play(url, by_frames, "--frames 30")
    local p2 = spawn_play(url, by_time, "--duration 1")
    local p3 = spawn_play(url, by_signal)
    wait_event(srv, "play", "limits", 3)
    local publisher = H.spawn(fmt("%s %s --loop 0 %s %s", q(H.luartmp), PUBLISH, q(file), q(url)), { name = "publish" })
    assert.are.equal(0, H.wait_exit(p1, 10), H.output(p1))
    assert.are.equal(0, H.wait_exit(p2, 10), H.output(p2))
    assert.are.equal(30, assert(H.probe(by_frames)).video.frames)
    assert.are.equal(25, assert(H.probe(by_time)).video.frames)
    -- the third player runs until interrupted, once it has what the first got
    assert.is_nil(H.exited(p3))
    H.wait_until(function() return (H.file_size(by_signal) or 0) >= H.file_size(by_frames) end, 5)
    H.signal(p3, "INT")
    assert.are.equal(0, H.wait_exit(p3, 10), H.output(p3))
    local info = assert(H.probe(by_signal))
    assert.is_true(info.video.frames >= 30, info.log)
    local complaints = info.log:gsub("stream|[^\n]*", "")
    assert.is_nil(complaints:find("%a"), "ffprobe complained: " .. complaints)
    assert.is_nil(H.exited(publisher), "--loop 0 keeps publishing")
    -- an interrupt is how --loop 0 ends: exit 0
    H.signal(publisher, "INT")
    assert.are.equal(0, H.wait_exit(publisher, 10), H.output(publisher))
    assert.are.equal("", H.output(publisher))
  end)

  it("publish.lua interrupted before the end of the file says so and exits 1", function()
    local srv = H.luartmp_start()
    local publisher = H.spawn(fmt("%s %s %s %s", q(H.luartmp), PUBLISH, q(H.fixture_flv()),
      q(srv.url("live/cut"))), { name = "publish" })
    wait_event(srv, "publish", "cut")
    H.signal(publisher, "INT")
    assert.are.equal(1, H.wait_exit(publisher, 10), H.output(publisher))
    assert.is_truthy(H.output(publisher):match("^publish%.lua: interrupted at 00:00:0%d%.%d%d%d of media\n$"),
      H.output(publisher))
  end)

  it("fails with a one-line reason: refused stream, nothing listening, unreadable file, no media", function()
    local file = short_flv()
    local srv = H.luartmp_start()
    local url = srv.url("live/taken")
    H.ffmpeg_publish(url)
    wait_event(srv, "publish", "taken")
    local rc, text = run_script(PUBLISH, q(file) .. " " .. q(url))
    assert.are.equal(1, rc, text)
    assert.is_truthy(text:match("^publish%.lua: [^\n]*NetStream%.Publish%.BadName[^\n]*\n$"), text)

    local port = H.free_port()
    rc, text = run_script(PUBLISH, q(file) .. " rtmp://127.0.0.1:" .. port .. "/live/x")
    assert.are.equal(1, rc, text)
    assert.is_truthy(text:match("^publish%.lua: rtmp://127%.0%.0%.1:%d+/live/x: closed[^\n]*\n$"), text)
    rc, text = run_script(PLAY, "rtmp://127.0.0.1:" .. port .. "/live/x " .. q(H.tmpname("none.flv")))
    assert.are.equal(1, rc, text)
    assert.is_truthy(text:match("^play%.lua: [^\n]*closed[^\n]*\n$"), text)

    local missing = H.tmpname("missing.flv")
    rc, text = run_script(PUBLISH, q(missing) .. " " .. q(srv.url("live/other")))
    assert.are.equal(1, rc, text)
    assert.are.equal("publish.lua: " .. missing .. ": No such file or directory\n", text)
    local notflv = H.tmpname("not.flv")
    H.write_file(notflv, "this is not an FLV file\n")
    rc, text = run_script(PUBLISH, q(notflv) .. " " .. q(srv.url("live/other")))
    assert.are.equal(1, rc, text)
    assert.is_truthy(text:match("^publish%.lua: [^\n]+\n$"), text)
    assert.are.equal(0, srv.count("publish", "other"), "nothing published for a bad file")
    -- a file cut short: what is whole is sent, then the error
    local cut = H.tmpname("cut.flv")
    H.write_file(cut, H.read_file(file):sub(1, 50000))
    rc, text = run_script(PUBLISH, "--fast " .. q(cut) .. " " .. q(srv.url("live/cut")))
    assert.are.equal(1, rc, text)
    assert.is_truthy(text:match("^publish%.lua: [^\n]*cut%.flv: [^\n]*truncated[^\n]*\n$"), text)
    assert.are.equal(1, srv.count("publish", "cut"))

    local nomedia = H.tmpname("nomedia.flv")
    rc, text = run_script(PLAY, "--timeout 1 " .. q(srv.url("live/nobody")) .. " " .. q(nomedia))
    assert.are.equal(1, rc, text)
    assert.is_truthy(text:match("^play%.lua: [^\n]*no media for 1 s\n$"), text)
    assert.is_nil(H.file_size(nomedia), "an empty output is removed")
  end)
end)
