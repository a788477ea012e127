-- Enhanced RTMP in captures: luartmp's client publishes hand-built media
-- in every form of the media model (spec/support/enhanced_media.lua:
-- ExVideoTagHeader / ExAudioTagHeader with every FourCC and packet type,
-- ModEx TimestampOffsetNano, Multitrack OneTrack / ManyTracks /
-- ManyTracksManyCodecs, command frames, and two messages of 20-70 kB) to
-- luartmp's live server while a luartmp player plays it and dumpcap
-- captures the port.  Then:
--   1. decode.lua prints, for every message of both connections, the
--      fields the vectors say a script must see (codec FourCC, packet,
--      command, nano_offset, multitrack, tracks);
--   2. capture2lua's client script of the publisher, run against another
--      live server (captured too), sends the same messages byte for byte,
--      and a player there receives them;
--   3. capture2lua's server script of the player serves a luartmp player
--      exactly the bytes the recorded player received.
local H = require "support.helpers"
local C = require "support.capture"
local E = require "support.enhanced_media"
local capture = require "rtmp.capture"

local fmt, q = string.format, H.shquote
local MSGS = E.messages()

local function tool(name, args)
  return H.run(fmt("%s scripts/tools/%s %s", q(H.luartmp), name, args), 60)
end

local function media_cmd(args)
  return fmt("%s spec/support/enhanced_media.lua %s", q(H.luartmp), args)
end

-- Start the enhanced player on url (app) for stream name, writing to out;
-- returns once it plays.
local function start_player(url, name, out)
  local p = H.spawn(media_cmd(fmt("play %s %s %s %d", q(url), name, q(out), #MSGS)), { name = "enh-play" })
  H.wait_until(function() return H.output(p):find("playing", 1, true) or H.exited(p) end, 15)
  assert(H.output(p):find("playing", 1, true), "the player did not start: " .. H.output(p))
  return p
end

-- The audio and video messages connection id carried in dir, in order.
local function captured_media(path, id, dir)
  local cap = assert(capture.open(path))
  local out = {}
  local list = capture.messages(cap.conns[id])
  assert(not list.error, list.error)
  for _, e in ipairs(list) do
    if e.dir == dir and (e.msg.type == 8 or e.msg.type == 9) then
      out[#out + 1] = { type = e.msg.type, timestamp = e.msg.timestamp, payload = e.msg.payload }
    end
  end
  return out
end

-- What the enhanced player wrote.
local function received(path)
  local s = assert(H.read_file(path), "nothing received: " .. path)
  local out, pos = {}, 1
  while pos <= #s do
    local t, ts, p
    t, ts, p, pos = string.unpack(">B I4 s4", s, pos)
    out[#out + 1] = { type = t, timestamp = ts, payload = p }
  end
  return out
end

-- The same messages, in order: type, timestamp, every payload byte.
local function same_media(want, got, what)
  assert.equal(#want, #got, what .. ": message count")
  for i, w in ipairs(want) do
    local g = got[i]
    assert(g.type == w.type and g.timestamp == w.timestamp,
      fmt("%s: message %d is type %d ts %d, want type %d ts %d", what, i, g.type, g.timestamp, w.type, w.timestamp))
    assert(g.payload == w.payload, fmt("%s: message %d (ts %d): %d payload bytes differ from the %d wanted",
      what, i, w.timestamp, #g.payload, #w.payload))
  end
end

-- The bodies of decode.lua's media lines, loaded (the trace format is a
-- Lua table constructor), with their direction and timestamp.
local function decoded_media(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local dir, typ, ts, body = line:match(" (%a+) csid=%d+ fmt=%d type=(%a+) stream=%d+ ts=(%d+) len=%d+ body=(.*)$")
    if typ == "audio" or typ == "video" then
      local f = assert(load("return " .. body, "body", "t", {}), line)
      out[#out + 1] = { dir = dir, type = typ, ts = tonumber(ts), body = f(), line = line }
    end
  end
  return out
end

-- The Enhanced RTMP counts capture2lua's header must give for MSGS: from
-- the messages' own bytes and the vectors' expected fields.
local function enhanced_counts()
  local n = { enhanced = 0, nano = 0, command = 0, one_track = 0, many_tracks = 0, many_tracks_many_codecs = 0 }
  for _, m in ipairs(MSGS) do
    if m.enhanced then
      n.enhanced = n.enhanced + 1
      -- the two large ones (no want): a ManyTracks message, a ModEx nano offset
      local w = m.want or { multitrack = m.payload:byte(1) & 0x0F == 6 and "many_tracks" or nil,
                            nano_offset = m.payload:byte(1) & 0x0F == 7 or nil }
      if w.nano_offset then n.nano = n.nano + 1 end
      if w.packet == "command" then n.command = n.command + 1 end
      local mt = w.multitrack
      if mt then n[mt] = n[mt] + 1 end
    end
  end
  return n
end

describe("Enhanced RTMP through captures #enhanced", function()
  local dir, path, pub_id, play_id

  setup(function() dir = H.mkdir(H.tmpname("enh-capture")) end)
  teardown(function() H.cleanup() end)

  -- capture2lua on connection id of the capture (options extra) into
  -- dir/name: its path and text.
  local function convert(id, extra, name)
    assert(path and id, "needs the capture")
    local script = dir .. "/" .. name
    local rc, out = tool("capture2lua.lua", fmt("%s --connection %d %s -o %s", q(path), id, extra, q(script)))
    assert.equal(0, rc, out)
    return script, H.read_file(script)
  end

  it("decode.lua shows the FourCC, packet, ModEx and multitrack fields of every message published and played", function()
    local srv = H.luartmp_start{ log_level = "info" }
    local cap = C.start(srv.port)
    local got = dir .. "/player.bin"
    local pl = start_player(srv.url("live"), "enh", got)
    local rc, out = H.run(media_cmd(fmt("publish %s enh", q(srv.url("live")))), 30)
    assert.equal(0, rc, out)
    assert.equal(0, H.wait_exit(pl, 20), H.output(pl))
    path = C.stop(cap)
    same_media(MSGS, received(got), "the live player")

    for _, c in ipairs(assert(capture.open(path)).conns) do
      if #captured_media(path, c.id, "c2s") > 0 then pub_id = c.id end
      if #captured_media(path, c.id, "s2c") > 0 then play_id = c.id end
    end
    assert.truthy(pub_id and play_id and pub_id ~= play_id)

    for _, conn in ipairs({ { id = pub_id, dir = "in" }, { id = play_id, dir = "out" } }) do
      rc, out = tool("decode.lua", fmt("%s --connection %d", q(path), conn.id))
      assert.equal(0, rc, out)
      local lines = decoded_media(out)
      assert.equal(#MSGS, #lines, out)
      local checked = 0
      for i, m in ipairs(MSGS) do
        local l, w = lines[i], m.want
        assert.equal(conn.dir, l.dir, l.line)
        assert.equal(m.timestamp, l.ts, l.line)
        if m.enhanced and w then
          local b = l.body
          assert.equal(w.codec, b.codec, l.line)
          assert.equal(w.packet, b.packet, l.line)
          assert.equal(w.command, b.command, l.line)
          assert.equal(w.nano_offset, b.nano_offset, l.line)
          assert.equal(w.multitrack, b.multitrack, l.line)
          if w.multitrack then
            assert.equal(#w.tracks, #b.tracks, l.line)
            for k, t in ipairs(w.tracks) do
              assert.same({ id = t.id, codec = t.codec, size = t.size }, b.tracks[k], l.line)
            end
          end
          checked = checked + 1
        end
      end
      assert.truthy(checked >= 50, "enhanced vectors checked: " .. checked)
      -- the two large messages: 3 hvc1 tracks in 70 kB (each a composition
      -- time and its frame: the size is the frame's), a nano offset before av01
      local big, modex = lines[#MSGS - 1].body, lines[#MSGS].body
      assert.equal("many_tracks", big.multitrack)
      assert.same({ 23000, 23100, 23200 }, { big.tracks[1].size, big.tracks[2].size, big.tracks[3].size })
      assert.equal("hvc1", big.tracks[3].codec)
      assert.same({ "av01", "coded_frames", 250000 }, { modex.codec, modex.packet, modex.nano_offset })
    end
  end)

  it("capture2lua's client script of the publisher sends the same bytes to another live server", function()
    local script, text = convert(pub_id, "--side client", "publisher.lua")
    local n = enhanced_counts()
    assert.truthy(text:find(fmt("-- The client's media (sent from the companion FLV, byte for byte): %d messages, " ..
      "video avc1 hvc1", #MSGS), 1, true), text)
    assert.truthy(text:find(fmt("--   Enhanced RTMP: %d of them (%d with a ModEx nanosecond offset, %d multitrack " ..
      "one_track, %d multitrack many_tracks, %d multitrack many_tracks_many_codecs, %d command frames).",
      n.enhanced, n.nano, n.one_track, n.many_tracks, n.many_tracks_many_codecs, n.command), 1, true), text)

    local srv = H.luartmp_start{ log_level = "info" }
    local cap = C.start(srv.port)
    local got = dir .. "/player2.bin"
    local pl = start_player(srv.url("live"), "enh", got)
    local rc, out = H.run(fmt("%s %s %s --fast", q(H.luartmp), q(script), q(srv.url("live"))), 30)
    assert.equal(0, rc, out)
    assert.equal(0, H.wait_exit(pl, 20), H.output(pl))
    local replayed = C.stop(cap)
    local again
    for _, c in ipairs(assert(capture.open(replayed)).conns) do
      local m = captured_media(replayed, c.id, "c2s")
      if #m > 0 then again = m end
    end
    assert.truthy(again, "no publisher in the second capture")
    same_media(captured_media(path, pub_id, "c2s"), again, "the replayed publisher")
    same_media(MSGS, received(got), "the player of the replayed publisher")
  end)

  it("capture2lua's server script of the player serves a player exactly what the recorded one received", function()
    local script, text = convert(play_id, "", "player_server.lua")
    assert.truthy(text:find("-- The server's media (sent from the companion FLV, byte for byte): " ..
      #MSGS .. " messages", 1, true), text)
    local srv = H.luartmp_start{ script = script, log_level = "info", args = { "--once", "--fast" } }
    local got = dir .. "/player3.bin"
    local pl = start_player(srv.url("live"), "enh", got)
    assert.equal(0, H.wait_exit(pl, 20), H.output(pl))
    assert.equal(0, H.wait_exit(srv.proc, 10), srv.log())
    same_media(captured_media(path, play_id, "s2c"), received(got), "the player of the generated server")
  end)
end)
