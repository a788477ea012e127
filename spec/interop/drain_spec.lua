-- Draining a live server (luartmp --drain-to, rtmp.drain) with Enhanced
-- RTMP's ReconnectRequest, and luartmp's client API following it
-- (lua/rtmp/drain.lua, lua/rtmp/client.lua; docs/DRAIN.md).
--
-- Two luartmp live servers: A, drained with SIGTERM toward B; B pulls the
-- stream from A (live.config.pull) for its players and adopts a publisher
-- that moves in (spec/interop/drain_edge.lua).  "Every frame once" is
-- measured by ffprobe on what the players wrote: per stream, the decode
-- timestamps of the source file's packets, in order, none missing, none
-- twice (so strictly increasing), and ffprobe -count_frames decoding as
-- many frames as the source.

local H = require "support.helpers"

local fmt = string.format

-- The packets of a file: per stream index, the list of decode timestamps.
local function dts_lists(file)
  local rc, out = H.run("ffprobe -v error -show_entries packet=stream_index,dts -of compact=p=0:nk=1 "
    .. H.shquote(file), 60)
  assert(rc == 0, "ffprobe " .. file .. ": " .. out)
  local lists = {}
  for idx, dts in out:gmatch("(%d+)|(%-?%d+)") do
    local l = lists[tonumber(idx)] or {}
    lists[tonumber(idx)] = l
    l[#l + 1] = tonumber(dts)
  end
  return lists
end

-- The first place two lists differ, described.
local function first_difference(want, got)
  for i = 1, math.max(#want, #got) do
    if want[i] ~= got[i] then
      return fmt("packet %d: want dts %s, got %s (%d packets wanted, %d got)", i, tostring(want[i]),
        tostring(got[i]), #want, #got)
    end
  end
end

-- file holds every packet of the source once, in order, and decodes to
-- as many frames.
local function assert_every_frame(label, source, file)
  assert.is_truthy(H.file_size(file), label .. ": nothing written to " .. file)
  local want, got = dts_lists(source), dts_lists(file)
  for idx = 0, 1 do
    assert.is_truthy(want[idx] and #want[idx] > 0, "the source has no stream " .. idx)
    local diff = first_difference(want[idx], got[idx] or {})
    assert(not diff, fmt("%s, stream %d: %s", label, idx, tostring(diff)))
    for i = 2, #got[idx] do assert(got[idx][i] > got[idx][i - 1], label .. ": timestamps not increasing") end
  end
  local src, info = assert(H.probe(source)), assert(H.probe(file))
  assert.are.equal(src.video.frames, info.video.frames, label .. ": decoded video frames")
  assert.are.equal(src.audio.frames, info.audio.frames, label .. ": decoded audio frames")
end

local function has(text, needle) return text:find(needle, 1, true) ~= nil end

local function client(url, name, mode, seconds)
  return H.spawn(fmt("%s --log-level debug spec/interop/drain_client.lua %s %s %s %d", H.shquote(H.luartmp),
    H.shquote(url), name, mode, seconds), { name = "drain-client-" .. mode })
end

-- "end SECONDS WHY URL" of a drain_client.lua
local function client_end(p)
  local s, why, url = (H.read_file(p.out) or ""):match("\nend (%S+) (.-) (%S+)\n")
  if not s then s, why, url = (H.read_file(p.out) or ""):match("^end (%S+) (.-) (%S+)\n") end
  return tonumber(s), why, url
end

describe("drain", function()
  after_each(function() H.cleanup() end)

  it("moves luartmp's publisher and player from A to B at a keyframe: B's players and the moved one get every frame once",
    function()
    local source = H.fixture_flv()
    local pb = H.free_port()
    local b_url = fmt("rtmp://127.0.0.1:%d/live", pb)
    local A = H.luartmp_start{ extra = { "--drain-to", b_url, "--drain-timeout", "3" } }
    local B = H.luartmp_start{ port = pb, script = "spec/interop/drain_edge.lua", args = { A.url("live") } }
    local function play(url, out)
      return H.spawn(fmt("%s --log-level debug scripts/client/play.lua %s %s", H.shquote(H.luartmp),
        H.shquote(url), H.shquote(out)), { name = "play" })
    end
    local outs = { H.tmpname("drain-b1.flv"), H.tmpname("drain-b2.flv"), H.tmpname("drain-a.flv") }
    local players = { play(B.url("live/cam"), outs[1]), play(B.url("live/cam"), outs[2]),
                      play(A.url("live/cam"), outs[3]) }
    -- B's two players, A's player and B's pull relay wait for the publisher
    assert(H.wait_until(function() return B.count("play", "cam") >= 2 and A.count("play", "cam") >= 2 end, 10),
      "the players did not start:\n" .. B.log() .. "\n" .. A.log())
    local pub = H.spawn(fmt("%s --log-level debug scripts/client/publish.lua %s %s", H.shquote(H.luartmp),
      H.shquote(source), H.shquote(A.url("live/cam"))), { name = "publish" })
    assert(H.wait_until(function() return A.count("publish", "cam") >= 1 end, 10), A.log())
    H.sleep(3) -- about 3 s of the 8 s file published on A
    local t_term = H.now()
    H.signal(A.proc, "TERM")
    -- A stops accepting at once
    assert(H.wait_until(function() return not H.port_listening(A.port) end, 2), "A still accepts:\n" .. A.log())

    assert.are.equal(0, H.wait_exit(pub, 20), "publisher:\n" .. H.output(pub))
    for i, p in ipairs(players) do assert.are.equal(0, H.wait_exit(p, 20), "player " .. i .. ":\n" .. H.output(p)) end
    -- A ends once the pull relay, which does not follow, is closed at the timeout
    assert.are.equal(0, H.wait_exit(A.proc, 10), A.log())
    local alog, blog = A.log(), B.log()
    assert(H.now() - t_term >= 2.5, "A ended before its drain timeout:\n" .. alog)
    assert(has(alog, fmt("drain: not accepting; 3 client(s) asked to reconnect to %s, 0 that cannot", b_url)), alog)
    assert(has(alog, "drain: timeout: closing the 1 connection(s) left"), alog)

    -- the publisher moved at a keyframe, A's player moved, B's stream passed from the relay to the publisher
    local plog = H.output(pub)
    assert(plog:find("stream cam moved at keyframe %d+ ms"), plog)
    assert(has(plog, "moved to " .. b_url), plog)
    assert(has(H.output(players[3]), "moved to " .. b_url), H.output(players[3]))
    assert(has(blog, "publish live/cam: takes the stream over from the pull relay"), blog)
    assert(has(blog, "NetConnection.Connect.ReconnectRequest not followed"), blog) -- the relay
    -- B's stream ended once, with the file: the switch was no end for its players
    assert.are.equal(1, H.count_plain(blog, "unpublish live/cam"), blog)

    assert_every_frame("B's player 1", source, outs[1])
    assert_every_frame("B's player 2", source, outs[2])
    assert_every_frame("A's player, moved to B", source, outs[3])
  end)

  it("asks only the clients that announced Reconnect; the others (ffmpeg too) are closed at the timeout, then it exits",
    function()
    local B = H.luartmp_start()
    local A = H.luartmp_start{ extra = { "--drain-to", B.url("live"), "--drain-timeout", "2" } }
    local ff = H.ffmpeg_publish(A.url("live/cam"))
    assert(H.wait_until(function() return A.count("publish", "cam") >= 1 end, 10), A.log())
    local stay = client(A.url("live"), "cam", "stay", 20)
    local follow = client(A.url("live"), "-", "follow", 6)
    assert(H.wait_until(function() return A.count("play", "cam") >= 1 and H.count_plain(A.log(), "connect app=live") >= 3 end,
      10), A.log())
    local t_term = H.now()
    H.signal(A.proc, "TERM")
    assert.are.equal(0, H.wait_exit(A.proc, 10), A.log())
    local took = H.now() - t_term
    assert(took >= 1.8 and took < 4, "A took " .. took .. " s to end a drain of 2 s:\n" .. A.log())
    assert(has(A.log(), fmt("drain: not accepting; 1 client(s) asked to reconnect to %s, 2 that cannot", B.url("live"))),
      A.log())
    assert(has(A.log(), "drain: timeout: closing the 2 connection(s) left"), A.log())

    -- the client that did not announce Reconnect got nothing, and was closed at the timeout
    assert.are.equal(0, H.wait_exit(stay, 10), H.output(stay))
    local out = H.read_file(stay.out) or ""
    assert.is_nil(out:find("ReconnectRequest"), out)
    local s, why = client_end(stay)
    assert(s and why ~= "time", out) -- closed (or its stream ended as the publisher was closed)
    local elapsed_at_term = t_term - stay.started
    assert(s - elapsed_at_term >= 1.5 and s - elapsed_at_term < 4,
      fmt("closed %.2f s after SIGTERM:\n%s", s - elapsed_at_term, out))

    -- the one that did, with nothing to move, went to B at once and stayed there
    assert.are.equal(0, H.wait_exit(follow, 10), H.output(follow))
    out = H.read_file(follow.out) or ""
    assert(has(out, "status NetConnection.Connect.ReconnectRequest " .. B.url("live")), out)
    local _, fwhy, furl = client_end(follow)
    assert.are.equal("time", fwhy, out)
    assert.are.equal(B.url("live"), furl, out)
    assert(H.count_plain(B.log(), "connect app=live") >= 1, B.log())

    -- ffmpeg, publishing, was closed at the timeout too
    assert(H.wait_exit(ff, 10), "ffmpeg still runs:\n" .. H.output(ff))
  end)

  it("ends at once on SIGINT, and on a second SIGTERM during the drain", function()
    for _, signals in ipairs({ { "INT" }, { "TERM", "TERM" } }) do
      local A = H.luartmp_start{ extra = { "--drain-to", "rtmp://127.0.0.1:1/live", "--drain-timeout", "30" } }
      local stay = client(A.url("live"), "-", "stay", 20)
      assert(H.wait_until(function() return H.count_plain(A.log(), "connect app=live") >= 1 end, 10), A.log())
      local t0 = H.now()
      for i, sig in ipairs(signals) do
        if i > 1 then
          assert(H.wait_until(function() return has(A.log(), "drain: not accepting") end, 5), A.log())
        end
        H.signal(A.proc, sig)
      end
      assert.are.equal(0, H.wait_exit(A.proc, 5), A.log())
      assert(H.now() - t0 < 3, table.concat(signals, ", ") .. ": A took " .. (H.now() - t0) .. " s:\n" .. A.log())
      assert.are.equal(0, H.wait_exit(stay, 10), H.output(stay))
      local _, why = client_end(stay)
      assert.are_not.equal("time", why, H.output(stay))
    end
  end)
end)

describe("drain, in the script", function()
  local rtmp = require "rtmp"
  local client = require "rtmp.client"

  it("resolves a ReconnectRequest's tcUrl against the connection's, as the spec's examples", function()
    local base = "rtmp://127.0.0.1:1935/live"
    assert.are.equal("rtmp://foo.mydomain.com:1935/realtimeapp",
      client.resolve_url(base, "rtmp://foo.mydomain.com:1935/realtimeapp"))
    assert.are.equal("rtmp://192.0.2.0/realtimeapp", client.resolve_url(base, "//192.0.2.0/realtimeapp"))
    assert.are.equal("rtmp://127.0.0.1:1935/realtimeapp", client.resolve_url(base, "/realtimeapp"))
    assert.are.equal("rtmp://127.0.0.1:1935/other", client.resolve_url(base, "other"))
    assert.are.equal("rtmp://h/app/inst2", client.resolve_url("rtmp://h/app/inst", "inst2"))
    assert.are.equal("rtmps://h:443/live", client.resolve_url("rtmps://h:443/live", nil))
    assert.are.equal("rtmps://h:443/live", client.resolve_url("rtmps://h:443/live", ""))
    assert.are.equal("rtmps://other/live", client.resolve_url("rtmps://h:443/live", "//other/live"))
  end)

  it("refuses a drain it cannot do, before it stops anything", function()
    assert.has_error(function() rtmp.drain(5) end, "rtmp.drain: table expected")
    assert.has_error(function() rtmp.drain{ to = 5 } end, "rtmp.drain: to must be a URL")
    assert.has_error(function() rtmp.drain{ to = "http://h/live" } end,
      "rtmp.drain: to is not an rtmp[s]:// URL: http://h/live")
    assert.has_error(function() rtmp.drain{ to = "rtmp://h/live", timeout = -1 } end,
      "rtmp.drain: timeout must be seconds >= 0")
    assert.is_false(require("rtmp.drain").draining())
  end)
end)
