-- The late-join cache of core/group.c: what a publisher can make it hold.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;" .. package.path
local rtmp = require "rtmp"

-- An Enhanced RTMP v2 multitrack (OneTrack) video SequenceStart for track
-- `id`: frame type 1, packet Multitrack; OneTrack of SequenceStart, avc1.
local function track_config(id, size)
  return rtmp.message({ type = "video", stream = 1 },
    string.pack("BB", 0x96, 0x00) .. "avc1" .. string.char(id) .. string.rep("c", size))
end

-- A server session past a plain handshake (a publisher's or a player's).
local function session()
  local s = rtmp.session{ role = "server" }
  local c1 = string.pack(">I4 I4", 0, 0) .. string.rep("\x5a", 1528)
  assert(s:feed("\3" .. c1))
  assert(s:feed(s:output():sub(2, 1537)))
  assert.is_true(s.ready)
  return s
end

-- n bytes no two calls share.
local seed = 7
local function noise(n)
  local t = {}
  for i = 1, n do seed = (seed * 1103515245 + 12345) % 2147483648; t[i] = string.char(seed >> 16 & 255) end
  return table.concat(t)
end

describe("group cache", function()
  it("keeps what a forwarding publisher sent before anyone played as the reader's buffers, byte for byte", function()
    local g = rtmp.group{ cache = true }
    local pub = session()
    assert(pub:forward(1, g))
    local w = rtmp.writer() -- the publisher's chunks, at 128 bytes: most messages span several
    local sent = {}
    local function publish(type, ts, payload)
      sent[#sent + 1] = { type = type, timestamp = ts, payload = payload }
      assert(pub:feed(w:write{ csid = type == 8 and 4 or 6, type = type, stream = 1, timestamp = ts,
        payload = payload }))
    end
    local avc = "\23\0\0\0\0" .. noise(300)           -- a configuration of three chunks
    publish(9, 0, avc)
    publish(8, 0, "\175\0\18\16")                      -- AAC config, one chunk
    publish(9, 0, "\23\1\0\0\0" .. noise(90000))      -- keyframe: grown, over 64 KiB
    -- from here the reader hands on buffers of each message's length:
    -- carved (up to 32 KiB), its own (up to 64 KiB), grown (past it)
    for i, n in ipairs{ 5000, 300, 20000, 33000, 40000, 70000, 3000, 12000, 60000, 200 } do
      publish(8, i * 40, "\175\1" .. noise(150 + i))
      publish(9, i * 40, "\39\1\0\0\0" .. noise(n))
    end
    -- every byte as sent, in a joiner's order: configurations, then the GOP
    local want = { sent[1], sent[2] }
    for i = 3, #sent do want[#want + 1] = sent[i] end
    local function check(got, what)
      assert.are.equal(#want, #got, what)
      for i, m in ipairs(want) do
        assert.are.equal(m.type, got[i].type, what .. " " .. i)
        assert.are.equal(m.timestamp, got[i].timestamp, what .. " " .. i)
        assert.is_true(m.payload == got[i].payload, what .. ": payload " .. i .. " differs")
      end
    end
    check(g:cached(), "g:cached()")
    -- a joiner gets their chunking (made once, from the kept payloads)
    local player = session()
    assert(g:add(player, 1))
    local r = rtmp.reader()
    local got = {}
    for _, m in ipairs(assert(r:feed(player:output()))) do
      if m.type == 8 or m.type == 9 then got[#got + 1] = m end
    end
    check(got, "the joiner")
    check(g:cached(), "g:cached() after the join")
    -- a newer configuration replaces the kept one; the rest stay
    local avc2 = "\23\0\0\0\0" .. noise(400)
    publish(9, 500, avc2)
    local cached = g:cached()
    assert.are.equal(#want, #cached)
    assert.is_true(cached[1].payload == "\175\0\18\16" and cached[2].payload == avc2)
    pub:close()
    player:close()
  end)


  it("holds each track's configuration, but not past 1 MiB of them together", function()
    local g = rtmp.group{ cache = true }
    assert.is_true(track_config(0, 10).sequence_header)
    for id = 0, 31 do g:send(track_config(id, 100 * 1024)) end
    local cached, bytes = g:cached()
    -- 100 KiB each: ten fit under 1 MiB, the rest are not cached
    assert.are.equal(10, #cached)
    assert.is_true(bytes <= 1024 * 1024, tostring(bytes))
    for i, msg in ipairs(cached) do assert.are.equal(i - 1, msg.track.id) end
    -- a newer configuration of a cached track still replaces the older
    g:send(track_config(3, 50 * 1024))
    cached, bytes = g:cached()
    assert.are.equal(10, #cached)
    assert.are.equal(9 * 100 * 1024 + 50 * 1024 + 10 * 7, bytes)
  end)
end)
