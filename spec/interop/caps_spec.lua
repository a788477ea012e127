-- Enhanced RTMP v2 capabilities in connect, both ways (docs/ENHANCED.md):
-- publish.lua, play.lua and the client API announce fourCcList, the info
-- maps and capsEx; live.lua (rtmp.app) reads them into conn.caps and
-- answers a client that announced with its own in the _result; a legacy
-- client (ffmpeg 5.1) announces nothing and gets the plain _result.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local H = require "support.helpers"
local C = require "support.client"
local M = require "support.mp4media"

local q, fmt = H.shquote, string.format

-- live.lua logging what each connection announced (conn.caps).
local function start()
  return H.luartmp_start{ script = "spec/interop/caps_server.lua", log_level = "info" }
end

-- What a connection announcing the FourCCs for which pick(row) gives a
-- flag letter makes the server log, from luartmp's own table (rtmp.caps).
local function expected(pick)
  local caps = require "rtmp.caps"
  local list, video, audio = {}, {}, {}
  for _, fcc in ipairs(caps.fourccs) do
    local row = caps.luartmp[fcc]
    local f = pick(row)
    if f then
      list[#list + 1] = fcc
      local map = row.kind == "video" and video or audio
      map[#map + 1] = fcc .. ":" .. f
    end
  end
  table.sort(video)
  table.sort(audio)
  return fmt("fourccs=%s video=%s audio=%s", table.concat(list, ","), table.concat(video, ","),
    table.concat(audio, ","))
end

-- The capsEx of the one connection whose announcement the server logged as
-- `what`; fails when there is not exactly one.
local function caps_ex(log, what)
  local found = {}
  for line in log:gmatch("caps ([^\n]*)") do
    local w, ex = line:match("^(.*) ex=(%d+)$")
    if w == what then found[#found + 1] = tonumber(ex) end
  end
  assert(#found == 1, fmt("%d connections announced %s:\n%s", #found, what, log))
  return found[1]
end

-- capsEx as luartmp's clients send it: Reconnect (the client API follows
-- ReconnectRequest), Multitrack, ModEx and TimestampNanoOffset.
local function luartmp_caps_ex(ex)
  assert.are.equal(1 | 2 | 4 | 8, ex)
end

local function wait_log(srv, text, n)
  local ok = H.wait_until(function() return H.count_plain(srv.log(), text) >= (n or 1) end, 20)
  assert(ok, fmt("%s never logged %q:\n%s", srv.name, text, srv.log()))
end

-- Run fn in a coroutine (the client API) and the loop until it returns.
local function in_coroutine(fn)
  local res
  rtmp.spawn(function() res = table.pack(pcall(fn)) end)
  assert(C.wait_until(function() return res end, 20), "the client coroutine did not finish")
  assert(res[1], res[2])
  return table.unpack(res, 2, res.n)
end

describe("Enhanced RTMP capabilities in connect", function()
  after_each(H.cleanup)

  it("publish.lua, play.lua and ffmpeg announce what they do; live.lua sees it in conn.caps", function()
    local srv = start()
    local mp4_out, flv_out = H.tmpname("caps-play.mp4"), H.tmpname("caps-play.flv")
    local play_mp4 = H.spawn(fmt("%s scripts/client/play.lua %s %s", q(H.luartmp), q(srv.url("live/caps")),
      q(mp4_out)), { name = "play-mp4" })
    wait_log(srv, " play live/caps")
    local play_flv = H.spawn(fmt("%s scripts/client/play.lua --enhanced %s %s", q(H.luartmp),
      q(srv.url("live/caps")), q(flv_out)), { name = "play-flv" })
    wait_log(srv, " play live/caps", 2)
    local ff_out = H.tmpname("caps-ffmpeg.flv")
    local ff = H.ffmpeg_play(srv.url("live/caps"), ff_out, 3)
    wait_log(srv, " play live/caps", 3)
    local clip = M.clip("hevc-opus")
    local rc, out = H.run(fmt("%s scripts/client/publish.lua %s %s", q(H.luartmp), q(clip), q(srv.url("live/caps"))), 30)
    assert.are.equal(0, rc, out)
    for _, p in ipairs({ play_mp4, play_flv }) do assert.are.equal(0, H.wait_exit(p, 20), H.output(p)) end
    H.wait_exit(ff, 20)
    local log = srv.log()
    -- play.lua writing MP4: CanDecode for what rtmp.mp4 writes
    luartmp_caps_ex(caps_ex(log, expected(function(r) return r.decode and "d" end)))
    -- play.lua --enhanced writing FLV: CanForward for every FourCC
    luartmp_caps_ex(caps_ex(log, expected(function() return "f" end)))
    -- publish.lua: CanEncode for the file's codecs
    luartmp_caps_ex(caps_ex(log, "fourccs=hvc1,Opus video=hvc1:e audio=Opus:e"))
    -- ffmpeg 5.1: nothing, a legacy player
    assert.are.equal(1, H.count_plain(log, "caps legacy"), log)
    -- the capable players got the HEVC stream whole
    local want = M.streams(clip)
    local got = M.streams(mp4_out)
    assert.same({ want[1].codec, want[1].packets, want[2].codec, want[2].packets },
      { got[1].codec, got[1].frames, got[2].codec, got[2].frames })
  end)

  it("the _result states the server's capabilities to a client that announced its own, not to a legacy one", function()
    local srv = start()
    -- the client API: nc.caps is what the server's _result said
    local server_caps = in_coroutine(function()
      local nc = assert(rtmp.connect(srv.url("live"), { caps = { decode = true } }))
      local c = nc.caps
      nc:close()
      -- a connection that does not follow ReconnectRequest does not announce Reconnect
      nc = assert(rtmp.connect(srv.url("live"), { caps = { encode = { "av01" } }, reconnect = false }))
      nc:close()
      return c
    end)
    wait_log(srv, "caps fourccs=av01 ")
    assert.are.equal(2 | 4 | 8, caps_ex(srv.log(), "fourccs=av01 video=av01:e audio="))
    local caps = require "rtmp.caps"
    assert.same(caps.fourccs, server_caps.fourccs)
    for _, fcc in ipairs(caps.fourccs) do
      local map = caps.luartmp[fcc].kind == "video" and server_caps.video or server_caps.audio
      assert.same({ decode = false, encode = false, forward = true }, map[fcc], fcc)
    end
    assert.same({ reconnect = true, multitrack = true, modex = true, timestamp_nano_offset = true }, server_caps.caps_ex)
    -- a legacy client's _result, as received: the properties of a Flash-era server only
    local c = C.connect(srv.url("live"))
    local res = c:find{ name = "_result", txn = 1 }
    local keys = {}
    for k in pairs(res.args[1]) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "capabilities", "fmsVer" }, keys)
    c:close()
    wait_log(srv, "caps legacy")
  end)

  it("conn:reconnect_request sends NetConnection.Connect.ReconnectRequest on stream 0 with the tcUrl and description", function()
    local srv = H.luartmp_start{ script = "spec/interop/caps_server.lua", log_level = "info",
      args = { "all", "-", "reconnect" } }
    local c = C.connect(srv.url("live"))
    local msg = c:wait(function() return c:find{ name = "onStatus" } end, 5)
    assert.truthy(msg, "no onStatus came")
    assert.are.equal(0, msg.stream)
    assert.are.equal(0, msg.txn)
    local info = msg.args[2]
    assert.same({ level = "status", code = "NetConnection.Connect.ReconnectRequest", description = "moving to other",
      tcUrl = "rtmp://127.0.0.1:1/other" }, info)
    c:close()
  end)

  it("a malformed announcement is warned about with the connection id, and the connect goes on", function()
    local srv = start()
    local ok = in_coroutine(function()
      local nc = assert(rtmp.connect(srv.url("live"), { properties = {
        fourCcList = 5, videoFourCcInfoMap = { hvc1 = "all", av01 = 4 }, capsEx = "x" } }))
      nc:close()
      return true
    end)
    assert.is_true(ok)
    wait_log(srv, "caps fourccs= video=av01:f audio= ex=0")
    local log = srv.log()
    for _, why in ipairs({ "fourCcList is not an array", "videoFourCcInfoMap: entry hvc1 is no FourCC with a mask",
                           "capsEx is not a number" }) do
      assert.truthy(log:find("warn conn=%d+ peer=[^ ]+ connect: Enhanced RTMP capabilities: " .. why:gsub("%p", "%%%0")),
        log)
    end
    assert.truthy(log:find("connect app=live", 1, true), log)
  end)
end)
