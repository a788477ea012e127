-- rtmp.flv against ffprobe: files our writer makes (copied from the
-- fixture, appended, recorded by the live server from a stream our
-- client publishes with type "record") decode with the right codecs,
-- every frame, and the right duration.
local H = require "support.helpers"
local C = require "support.client"
local rtmp = require "rtmp"
local F = H.FIXTURE

local fmt = string.format

-- ffprobe's format duration (s) and the last video packet's pts (s).
local function durations(file)
  local _, out = H.run(fmt("ffprobe -v error -show_entries format=duration -of csv=p=0 '%s'", file), 30)
  local _, pkts = H.run(fmt("ffprobe -v error -select_streams v:0 -show_entries packet=pts_time " ..
    "-of csv=p=0 '%s'", file), 30)
  local last = 0
  for v in pkts:gmatch("[%d%.]+") do last = math.max(last, tonumber(v)) end
  return tonumber(out:match("[%d%.]+")), last
end

-- Copy FLV src into a new writer (opts as rtmp.flv.create's), keeping the
-- messages keep(msg) accepts. Returns the writer (closed).
local function copy(src, dst, opts, keep)
  local r = assert(rtmp.flv.open(src))
  local w = assert(rtmp.flv.create(dst, opts))
  while true do
    local m, err = r:read()
    if not m then assert.is_nil(err) break end
    if not keep or keep(m) then assert(w:write(m)) end
  end
  r:close()
  assert(w:close())
  return w
end

local fixture_info
local function fixture()
  local src = H.fixture_flv()
  fixture_info = fixture_info or assert(H.probe(src))
  return src, fixture_info
end

describe("files written by rtmp.flv.create, read by ffprobe", function()
  it("has the fixture's codecs, frame counts and duration", function()
    local src, want = fixture()
    local file = H.tmpname("copy.flv")
    local w = copy(src, file)
    local got = assert(H.probe(file))
    assert.same({ "h264", F.frames, F.width, F.height }, { got.video.codec, got.video.frames, got.video.width, got.video.height })
    assert.same({ "aac", want.audio.frames }, { got.audio.codec, got.audio.frames })
    local dur, last = durations(file)
    assert.is_true(math.abs(dur - w.duration / 1000) < 0.001, dur .. " vs " .. w.duration)
    assert.is_true(dur >= F.seconds and dur < F.seconds + 0.1, "duration " .. dur)
    assert.is_true(last > F.seconds - 0.2 and last <= F.seconds + 0.1, "last pts " .. last)
  end)

  it("without metadata: ffprobe still finds the streams and the duration from the tags", function()
    local src, want = fixture()
    local file = H.tmpname("nometa.flv")
    copy(src, file, nil, function(m) return m.type ~= 18 end)
    local got = assert(H.probe(file))
    assert.same({ "h264", F.frames, "aac", want.audio.frames },
      { got.video.codec, got.video.frames, got.audio.codec, got.audio.frames })
    local dur = durations(file)
    assert.is_true(dur > F.seconds - 0.2 and dur < F.seconds + 0.2, "duration " .. tostring(dur))
  end)

  it("append = true gives one file whose duration is the sum", function()
    local src, want = fixture()
    local file = H.tmpname("appended.flv")
    local w1 = copy(src, file)
    local w2 = copy(src, file, { append = true })
    assert.equal(2 * w1.duration, w2.duration)
    local got = assert(H.probe(file))
    assert.same({ "h264", 2 * F.frames, "aac", 2 * want.audio.frames },
      { got.video.codec, got.video.frames, got.audio.codec, got.audio.frames })
    local dur, last = durations(file)
    assert.is_true(math.abs(dur - 2 * w1.duration / 1000) < 0.001, "duration " .. dur)
    -- the second copy's frames sit after the first's: its last frame at
    -- first duration + the fixture's last frame time
    local _, last1 = durations(src)
    assert.is_true(math.abs(last - (w1.duration / 1000 + last1)) < 0.002, last .. " vs " .. last1)
  end)
end)

describe("the live server records", function()
  local srv, dir
  before_each(function()
    dir = H.tmpname("rec")
    H.mkdir(dir)
    srv = H.luartmp_start({ script = "spec/interop/record_live.lua", args = { dir } })
  end)
  after_each(function()
    if srv then srv.stop() end
    H.cleanup()
  end)

  -- Publish the fixture as fast as the connection takes it, with type
  -- mode; return when the server has unpublished it (and so closed the
  -- recording: live.lua closes it first).
  local function publish(name, mode)
    local c = C.connect(srv.url("live"))
    local sid = c:create_stream()
    c:call({ stream = sid, csid = 8 }, "publish", rtmp.null, name, mode)
    assert(c:wait(function() return c:find{ code = "NetStream.Publish.Start" } end, 5))
    local r = assert(rtmp.flv.open(H.fixture_flv()))
    local gone = "unpublish live/" .. name
    local before = H.count_plain(srv.log(), gone)
    while true do
      local m = r:read()
      if not m then break end
      assert(c.conn:send({ stream = sid }, m))
      if c.conn.pending > 1e6 then
        assert(c:wait(function() return c.conn.pending < 2e5 end, 10))
      end
    end
    r:close()
    assert(c:wait(function() return c.conn.pending == 0 end, 10))
    c:close()
    assert(H.wait_until(function()
      return H.count_plain(srv.log(), gone) > before
    end, 10), srv.log())
  end

  it("a stream published with type record, every frame, and append adds to it", function()
    local _, want = fixture()
    publish("cam1", "record")
    local file = dir .. "/live/cam1.flv"
    assert.matches("record live/cam1 to " .. file:gsub("%p", "%%%0") .. " %(record%)", srv.log())
    local got = assert(H.probe(file))
    assert.same({ "h264", F.frames, "aac", want.audio.frames },
      { got.video.codec, got.video.frames, got.audio.codec, got.audio.frames })
    local dur = durations(file)
    assert.is_true(dur >= F.seconds and dur < F.seconds + 0.1, "duration " .. dur)

    publish("cam1", "append")
    got = assert(H.probe(file))
    assert.same({ 2 * F.frames, 2 * want.audio.frames }, { got.video.frames, got.audio.frames })
    local dur2 = durations(file)
    assert.is_true(math.abs(dur2 - 2 * dur) < 0.001, dur2 .. " vs 2 x " .. dur)

    publish("cam1", "live") -- not recorded: the file stays as it was
    assert.same({ 2 * F.frames }, { assert(H.probe(file)).video.frames })
  end)

  it("a name that tries to leave the directory stays inside it", function()
    publish("../../evil", "record")
    -- separators become "_", and a leading dot gets a "_" in front
    assert.is_not_nil(H.file_size(dir .. "/live/_.._.._evil.flv"))
    local _, found = H.run(fmt("find '%s' -name '*.flv'", dir))
    assert.equal(dir .. "/live/_.._.._evil.flv\n", found)
  end)
end)
