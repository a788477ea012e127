-- The group's chunkings (core/group.c): carved side by side from shared
-- blocks, messages over half a block and the lasting ones (metadata, track
-- configurations) in buffers of their own, and the blocks released as the
-- GOP turns over.  What is checked is what members receive: socket-free
-- client sessions decode what the group sent, for a member there from the
-- start and for joiners that come late, at the publisher's chunk size and
-- at another (the cache chunked again).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local new_member = require "support.member"

-- A member (support.member) joining group at chunk size chunk_size:
-- returns receive() (the messages its client decoded since the last call)
-- and the member's server session.
local function join(group, chunk_size)
  local m = new_member()
  assert(m.server:set_chunk_size(chunk_size))
  m.received()
  group:add(m.server, 1)
  return m.received, m.server
end

local function video(key, size, ts)
  local head = key and "\x17\1\0\0\0" or "\x27\1\0\0\0"
  return rtmp.message({ type = "video", timestamp = ts }, head .. string.char(65 + size % 26):rep(size - 5))
end

local function audio(size, ts)
  return rtmp.message({ type = "audio", timestamp = ts }, "\xaf\1" .. ("a"):rep(size - 2))
end

-- One GOP: a keyframe, then video of sizes that fill blocks unevenly
-- (some over half a 64 KiB block), audio between them.
local function gop(t0, key_size)
  local list = { video(true, key_size, t0) }
  local sizes = { 9000, 300, 17000, 4100, 40000, 12000, 31000, 33000, 7000, 20000, 5000, 16000 }
  for i, size in ipairs(sizes) do
    list[#list + 1] = audio(300 + i, t0 + i * 20)
    list[#list + 1] = video(false, size, t0 + i * 33)
  end
  return list
end

local function payloads(msgs)
  local t = {}
  for i, m in ipairs(msgs) do t[i] = m.type .. ":" .. m.timestamp .. ":" .. m.payload end
  return t
end

describe("group chunkings", function()
  it("reach a member and late joiners byte for byte, at any chunk size, GOP after GOP", function()
    local g = rtmp.group{ cache = true }
    local meta = rtmp.message({ type = "data" }, rtmp.amf0.encode("onMetaData", { width = 1280, height = 720 }))
    local vconf = rtmp.message({ type = "video" }, "\x17\0\0\0\0\1\100\0\31\255")
    local aconf = rtmp.message({ type = "audio" }, "\xaf\0\18\16")
    local live = join(g, 4096)
    g:metadata(meta)
    g:send(vconf)
    g:send(aconf)
    local want = { meta, vconf, aconf }
    for n = 1, 5 do
      local list = gop(n * 2000, 20000 + n * 9000)
      for _, msg in ipairs(list) do g:send(msg) end
      for _, msg in ipairs(list) do want[#want + 1] = msg end
      -- the member got everything as sent
      assert.are.same(payloads(want), payloads(live()))
      want = {}
      -- joiners at the members' chunk size (the cached chunkings as they
      -- are) and at others (chunked again from them) get the cache:
      -- metadata, configurations, this GOP
      local cached = { meta, vconf, aconf }
      for _, msg in ipairs(list) do cached[#cached + 1] = msg end
      for _, cs in ipairs{ 4096, 128, 60000 } do
        local joiner, srv = join(g, cs)
        assert.are.same(payloads(cached), payloads(joiner()))
        g:remove(srv)
      end
    end
  end)

  it("leave a late joiner holding what a member from the start holds once its burst is written", function()
    local g = rtmp.group{ cache = true }
    local early_recv, early = join(g, 4096)
    for i = 1, 150 do -- written as they come, as a player keeping up is
      g:send(i == 1 and video(true, 3000, i) or audio(200, i))
      assert.are.equal(1, #early_recv())
    end
    -- the joiner gets the 150 cached messages at once, one queued
    -- reference each, then both get the live ones
    local late_recv, late = join(g, 4096)
    assert.are.equal(150, #late_recv())
    for i = 151, 160 do g:send(audio(200, i)) end
    assert.are.equal(10, #early_recv())
    assert.are.equal(10, #late_recv())
    assert.is_true(late.memory <= early.memory + 256, late.memory .. " bytes held, a member from the start " .. early.memory)
  end)
end)
