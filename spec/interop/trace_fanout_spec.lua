-- The trace of what a live server fans out, against what the player
-- received: ffmpeg publishes a stream with keyframes over 200 kB and
-- metadata longer than a trace body to `luartmp --trace=FILE
-- scripts/live.lua`; a player (luartmp's client API, spec/interop/
-- trace_player.lua) traces every message as it received it, whole.  The
-- server formats what its group sends from the first bytes of the shared
-- chunks (core/session.c), never from a copy of the message per player;
-- its lines for the player must be the player's own, message for message.
local H = require "support.helpers"
local T = require "support.tracelines"

local q = H.shquote
local BIG = 200000   -- bytes of a keyframe in the fixture, at least
local HEAD = 9000    -- RTMP_TRACE_HEAD (core/session.h): bytes the fan-out trace reads

-- An H.264/AAC FLV whose keyframes are over BIG bytes (a fixed noise
-- pattern over testsrc2 at CRF 12: inter frames stay small) and whose
-- metadata carries 80 tags of 150 bytes, so onMetaData is over HEAD bytes
-- long; made with ffmpeg once, cached in build/test-tmp.
local function big_flv()
  local path = "build/test-tmp/trace-fanout-big-keyframes-meta80.flv"
  if not H.file_size(path) then
    H.mkdir("build/test-tmp")
    local tags = {}
    for i = 1, 80 do tags[#tags + 1] = string.format("-metadata k%02d=%s", i, ("m"):rep(150)) end
    local tmp = path .. ".tmp" .. math.random(1e6)
    local rc, out = H.run(string.format("ffmpeg -nostdin -v error -y "
      .. "-f lavfi -i testsrc2=size=640x360:rate=25,noise=alls=40 -f lavfi -i sine=frequency=440:sample_rate=44100 "
      .. "-t 8 -c:v libx264 -preset veryfast -crf 12 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p "
      .. "-c:a aac -b:a 64k %s -f flv %s && mv %s %s", table.concat(tags, " "), q(tmp), q(tmp), q(path)), 120)
    assert(rc == 0, "ffmpeg could not make the fixture: " .. out)
  end
  return path
end

describe("trace of live fan-out (interop)", function()
  after_each(H.cleanup)

  it("shows a player's large video and metadata messages as the player decodes them", function()
    local flv = big_flv()
    local path = H.tmpname("fanout.trace")
    local srv = H.luartmp_start({ log_level = "info", extra = { "--trace=" .. path } })
    local pub = H.ffmpeg_publish(srv.url("live/big"), flv)
    assert.is_true(H.wait_until(function() return srv.count("publish", "big") > 0 end, 15))
    local ptrace = H.tmpname("player.trace")
    -- two keyframes: the one the group's cache holds when the player joins,
    -- and one sent live
    local player = H.spawn(string.format("%s spec/interop/trace_player.lua %s big %s 2 %d",
      q(H.luartmp), q(srv.url("live")), q(ptrace), BIG), { name = "trace-player" })
    assert.is_truthy(H.wait_until(function() return H.exited(player) end, 30), "the player did not finish")
    assert.equal(0, H.exited(player), H.read_file(player.err))
    H.kill(pub)
    srv.stop()

    local server = T.by_conn(H.read_file(path))
    local pconn
    for conn, d in pairs(server) do
      for _, rest in ipairs(d["in"]) do
        if rest:find('type=command .* body={"play", ', 1) then pconn = conn end
      end
    end
    assert.is_truthy(pconn, "no play in the server's trace")
    local theirs = select(2, next(T.by_conn(H.read_file(ptrace))))["in"]
    local ours = server[pconn].out

    -- every message the player received, the server's line for it the same
    assert.is_true(#theirs > 20, #theirs .. " messages")
    for i, line in ipairs(theirs) do
      assert.equal(line, ours[i], "message " .. i)
    end

    -- among them: keyframes over BIG bytes and onMetaData over HEAD bytes,
    -- cut for length where the whole message's line is
    local keyframes, meta = 0, nil
    for _, line in ipairs(theirs) do
      local m = T.parse("0.0 conn=0 in " .. line)
      assert.falsy(m.text:find("more bytes", 1, true), line)
      if m.type == "video" and m.len >= BIG then
        keyframes = keyframes + 1
        assert.same({ codec = "avc", frame = "key", packet = "nalu" }, m.body)
      elseif m.type == "data" and m.body[1] == "onMetaData" then
        meta = m
      end
    end
    assert.equal(2, keyframes)
    assert.is_truthy(meta, "no onMetaData sent to the player")
    assert.is_true(meta.len > HEAD, "onMetaData of " .. meta.len .. " bytes")
    assert.equal(640, meta.body[2].width)
    assert.equal(360, meta.body[2].height)
    assert.equal(("m"):rep(150), meta.body[2].k01)
    assert.truthy(meta.text:find("--[[cut]]}}", 1, true))
    assert.is_true(#meta.text > 2700 and #meta.text < 3600, #meta.text .. " characters")
  end)
end)
