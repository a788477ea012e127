-- Late join from the core group's cache (core/group.c): a joiner gets
-- references to the chunked buffers the live path sent, first the
-- metadata and every track's configuration, then the GOP; its first burst
-- is bounded by gop_max_bytes, not by max_output.
local H = require "support.helpers"

local MiB = 1024 * 1024

-- The "late join: N cached messages (B bytes ..." lines of a server log.
local function late_joins(log)
  local t = {}
  for n, b in log:gmatch("late join: (%d+) cached messages %((%d+) bytes") do
    t[#t + 1] = { messages = tonumber(n), bytes = tonumber(b) }
  end
  return t
end

-- A kernel-reported memory figure of a process, in bytes.
local function proc_kb(pid, field)
  local s = H.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match(field .. ":%s+(%d+) kB")) * 1024
end

-- Run body as a luartmp client script against a fresh live server (url:
-- its "live" app; msg(type, timestamp, payload) makes a message): the
-- server and what the script printed.
local function client(name, body)
  local srv = H.luartmp_start{}
  local script = H.tmpname(name) .. ".lua"
  H.write_file(script, [[
    local rtmp = require "rtmp"
    local url = ...
    local function msg(t, ts, payload) return rtmp.message({ type = t, timestamp = ts }, payload) end
  ]] .. body)
  local p = H.spawn(string.format("%s %s %s", H.luartmp, H.shquote(script), H.shquote(srv.url("live"))),
    { name = name })
  assert.are.equal(0, H.wait_exit(p, 30), H.read_file(p.err))
  return srv, H.read_file(p.out) or ""
end

describe("late join (core group cache)", function()
  after_each(H.cleanup)

  it("an ffmpeg player joining a stream with a 20 MiB GOP gets all of it and stays", function()
    -- one 12 s GOP of noisy 240p at about 3.5 MB/s
    local big = H.tmpname("biggop") .. ".flv"
    assert.are.equal(0, H.run(string.format("ffmpeg -nostdin -v error -y -f lavfi -i %s -t 12 " ..
      "-c:v libx264 -preset ultrafast -qp 12 -g 300 -pix_fmt yuv420p -f flv %s",
      H.shquote("testsrc2=size=426x240:rate=25,noise=alls=60:allf=t"), H.shquote(big)), 120))
    local srv = H.luartmp_start{}
    local pub = H.ffmpeg_publish(srv.url("live/big"), big)
    assert(H.wait_until(function() return srv.count("publish", "big") >= 1 end, 10))
    H.sleep(7.5) -- about 25 MiB of GOP cached
    local out = H.tmpname("biggop-play") .. ".flv"
    local player = H.ffmpeg_play(srv.url("live/big"), out, 4)
    assert.are.equal(0, H.wait_exit(pub, 30))
    assert.are.equal(0, H.wait_exit(player, 30))
    local log = srv.log()
    local joins = late_joins(log)
    assert.are.equal(1, #joins, log)
    assert.is_true(joins[1].bytes > 20 * MiB, "burst of " .. joins[1].bytes .. " bytes")
    assert.is_true(joins[1].bytes <= 32 * MiB, "burst of " .. joins[1].bytes .. " bytes")
    assert.is_nil(log:find("slow reader", 1, true), "the joiner was taken for a slow reader")
    local info = assert(H.probe(out))
    assert.is_truthy(info.video)
    -- every cached frame, then the rest of the GOP live: 300 frames in all
    assert.is_true(info.video.frames >= joins[1].messages - 1, "frames " .. info.video.frames)
    assert.is_true(info.video.frames >= 290, "frames " .. info.video.frames)
  end)

  it("N joiners of a 5 MiB GOP share its buffers: the server's peak memory does not grow by N x 5 MiB", function()
    local srv = H.luartmp_start{}
    local script = H.tmpname("gop5") .. ".lua"
    H.write_file(script, [[
      local rtmp = require "rtmp"
      local url, mode, n = ...
      local function msg(t, ts, payload) return rtmp.message({ type = t, timestamp = ts }, payload) end
      if mode == "publish" then
        local nc = assert(rtmp.connect(url))
        local ns = assert(nc:create_stream())
        assert(ns:publish("gop5"))
        assert(ns:send(msg("video", 0, "\23\0\0\0\0" .. ("\1"):rep(40))))  -- AVC sequence header
        local frame = ("\7"):rep(100 * 1024)
        assert(ns:send(msg("video", 0, "\23\1\0\0\0" .. frame)))          -- keyframe
        for i = 1, 49 do assert(ns:send(msg("video", i * 40, "\39\1\0\0\0" .. frame))) end
        print("published") io.stdout:flush()
        rtmp.sleep(60)
      else
        local done = 0
        for i = 1, tonumber(n) do
          rtmp.spawn(function()
            local nc = assert(rtmp.connect(url))
            local ns = assert(nc:create_stream())
            assert(ns:play("gop5"))
            local got = 0
            while got < 51 do
              local m = ns:read(10)
              if not m then break end
              if m.type == 9 then got = got + 1 end
            end
            done = done + (got == 51 and 1 or 0)
            nc:close()
          end)
        end
        while done < tonumber(n) do rtmp.sleep(0.05) end
        print("played " .. done)
      end
    ]])
    local pub = H.spawn(string.format("%s %s %s publish", H.luartmp, H.shquote(script),
      H.shquote(srv.url("live"))), { name = "gop5-pub" })
    assert(H.wait_until(function() return (H.read_file(pub.out) or ""):find("published") end, 20))
    H.sleep(0.5)
    local function play(n)
      local players = H.spawn(string.format("%s %s %s play %d", H.luartmp, H.shquote(script),
        H.shquote(srv.url("live")), n), { name = "gop5-play" })
      assert.are.equal(0, H.wait_exit(players, 60), H.read_file(players.err))
      assert.truthy((H.read_file(players.out) or ""):find("played " .. n, 1, true))
    end
    -- nobody played while the GOP came, so the cache holds the payloads as
    -- they were read: the first joiner makes their chunking, once (the
    -- payloads it replaces are freed as it goes)
    local before = proc_kb(srv.proc.pid, "VmHWM")
    play(1)
    local first = proc_kb(srv.proc.pid, "VmHWM") - before
    assert.is_true(first < 2 * 5 * MiB, "peak memory grew by " .. first .. " bytes for the first joiner")
    before = proc_kb(srv.proc.pid, "VmHWM")
    local N = 8
    play(N)
    local grown = proc_kb(srv.proc.pid, "VmHWM") - before
    local joins = late_joins(srv.log())
    assert.are.equal(1 + N, #joins)
    -- the sequence header and the 50 frames of the GOP
    for _, j in ipairs(joins) do assert.are.equal(51, j.messages) end
    -- copies would take N x 5 MiB at the peak; references take next to nothing
    assert.is_true(grown < 5 * MiB, "peak memory grew by " .. grown .. " bytes for " .. N .. " joiners")
  end)

  it("a joiner gets a GOP nobody played while it came, byte for byte, at every message size", function()
    -- with no member, the cache keeps the reader's own buffers (no chunked
    -- copy): messages of one chunk, of a buffer carved at once (up to 32
    -- KiB), of one allocated at once (up to 64 KiB) and grown (past it)
    local srv, out = client("rawgop", [[
      local seed = 7
      local function noise(n) -- bytes no two frames share
        local t = {}
        for i = 1, n do seed = (seed * 1103515245 + 12345) % 2147483648; t[i] = string.char(seed >> 16 & 255) end
        return table.concat(t)
      end
      local sent = { { 9, 0, "\23\0\0\0\0" .. noise(40) }, { 9, 0, "\23\1\0\0\0" .. noise(90000) } }
      local sizes = { 300, 5000, 20000, 33000, 40000, 70000, 150000, 3000, 12000, 60000 }
      for i, n in ipairs(sizes) do
        sent[#sent + 1] = { 8, i * 40, "\175\1" .. noise(200 + i) }
        sent[#sent + 1] = { 9, i * 40, "\39\1\0\0\0" .. noise(n) }
      end
      local nc = assert(rtmp.connect(url))
      local ns = assert(nc:create_stream())
      assert(ns:publish("raw"))
      for _, m in ipairs(sent) do assert(ns:send(msg(m[1] == 8 and "audio" or "video", m[2], m[3]))) end
      rtmp.sleep(0.5)
      local pc = assert(rtmp.connect(url))
      local ps = assert(pc:create_stream())
      assert(ps:play("raw"))
      local got = {}
      while #got < #sent do
        local m = ps:read(5)
        if not m then break end
        if m.type == 8 or m.type == 9 then got[#got + 1] = m end
      end
      for i, m in ipairs(sent) do
        local g = got[i]
        print(string.format("%d %d %s %s", m[1], m[2], rtmp.sha256(m[3]),
          g and string.format("%d %d %s", g.type, g.timestamp, rtmp.sha256(g.payload)) or "missing"))
      end
      pc:close()
      nc:close()
    ]])
    local lines = 0
    for line in out:gmatch("[^\n]+") do
      lines = lines + 1
      local sent, got = line:match("^(%d+ %d+ %x+) (.*)$")
      assert.are.equal(sent, got, line)
    end
    assert.are.equal(22, lines, out)
    local joins = late_joins(srv.log())
    assert.are.equal(1, #joins)
    assert.are.equal(22, joins[1].messages)
  end)

  it("an enhanced RTMP joiner gets the metadata and every track's configuration before the GOP, byte for byte", function()
    local _, out = client("ertmp", [[
      local sent = {
        { "audio", 0, "\x90OpusOpusHead\1\2\0\0\128\187\0\0\0\0\0" },                 -- SequenceStart
        { "video", 0, "\x96\x10avc1\0\0\0\5\1\2\3\4\5\1\0\0\3abc" },                  -- Multitrack ManyTracks SequenceStart, tracks 0 and 1
        { "audio", 10, "\x91Opusframe-before-key" },                                  -- not cached: before the keyframe
        { "video", 40, "\x96\x11avc1\0\0\0\7\0\0\0KEY0\1\0\0\7\0\0\0KEY1" },          -- keyframe, both tracks
        { "audio", 50, "\x91Opusframe-after-key" },
        { "video", 80, "\xA6\x11avc1\0\0\0\7\0\0\0INT0\1\0\0\7\0\0\0INT1" },          -- inter frame
      }
      local nc = assert(rtmp.connect(url))
      local ns = assert(nc:create_stream())
      assert(ns:publish("e"))
      assert(ns:send(msg("data", 0, rtmp.amf0.encode("@setDataFrame", "onMetaData", { width = 2 }))))
      for _, m in ipairs(sent) do assert(ns:send(msg(m[1], m[2], m[3]))) end
      rtmp.sleep(0.5)
      local pc = assert(rtmp.connect(url))
      local ps = assert(pc:create_stream())
      assert(ps:play("e"))
      while true do
        local m = ps:read(1)
        if not m then break end
        print(string.format("%d %d %s", m.type, m.timestamp, (m.payload:gsub(".", function(c)
          return string.format("%02x", c:byte()) end))))
      end
      pc:close()
      nc:close()
    ]])
    local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
    local got = {}
    for line in out:gmatch("[^\n]+") do got[#got + 1] = line end
    local want = {
      -- onMetaData { width = 2 }, as players get it (no @setDataFrame)
      "18 0 " .. hex("\2\0\10onMetaData\3\0\5width\0\64\0\0\0\0\0\0\0\0\0\9"),
      "8 0 " .. hex("\x90OpusOpusHead\1\2\0\0\128\187\0\0\0\0\0"),
      "9 0 " .. hex("\x96\x10avc1\0\0\0\5\1\2\3\4\5\1\0\0\3abc"),
      "9 40 " .. hex("\x96\x11avc1\0\0\0\7\0\0\0KEY0\1\0\0\7\0\0\0KEY1"),
      "8 50 " .. hex("\x91Opusframe-after-key"),
      "9 80 " .. hex("\xA6\x11avc1\0\0\0\7\0\0\0INT0\1\0\0\7\0\0\0INT1"),
    }
    -- |RtmpSampleAccess and other data the play reply sends are not the cache's
    local media = {}
    for _, l in ipairs(got) do
      if not l:match("^18 ") or l:find(hex("onMetaData"), 1, true) then media[#media + 1] = l end
    end
    assert.are.same(want, media)
  end)
end)
