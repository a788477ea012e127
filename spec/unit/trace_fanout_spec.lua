-- The trace of group fan-out (core/session.c rtmp_session_send_chunked):
-- the line of a message a group sends is formatted from its first
-- RTMP_TRACE_HEAD (9000) bytes, gathered from the shared chunks, never
-- from a copy of the whole message.  Socket-free sessions: a traced server
-- session is the group's member; a client session receives what the group
-- sent and traces it as received, whole, for comparison.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"
local T = require "support.tracelines"
local member = require "support.member"

local HEAD = 9000  -- RTMP_TRACE_HEAD (core/session.h)

-- A member session in a group and a client session reading it; both trace
-- into their own temporary file.  send(msg) fans msg out through the group
-- and returns the member's line and the client's line for it (without the
-- time, conn and direction) and the message the client received.
local function fanout()
  local m = member()
  local srv, cli = m.server, m.client
  local sf, cf = io.tmpfile(), io.tmpfile()
  assert.is_true(srv:trace(true, sf))
  assert.is_true(cli:trace(true, cf))
  local group = rtmp.group()
  group:add(srv, 1)
  local function last(f)
    f:seek("set")
    local line
    for l in f:lines() do line = l end
    f:seek("end")
    return assert(line:match("^%d+%.%d+ conn=0 %a+ (.*)$"), line)
  end
  m.received()
  return function(msg)
    assert.equal(1, group:send(msg))
    local got = m.received()
    assert.equal(1, #got)
    return last(sf), last(cf), got[1]
  end
end

-- A line's body (a line as send returns it), loaded as the Lua
-- constructor it is.
local function body_of(line)
  return T.parse("0.0 conn=0 out " .. line).body
end

describe("trace of group fan-out", function()
  it("shows a 200 kB video message as the whole message does", function()
    local send = fanout()
    local payload = "\x17\1\0\0\0" .. ("v"):rep(200000)
    local out, seen, msg = send(rtmp.message({ type = "video", timestamp = 40 }, payload))
    assert.equal(payload, msg.payload)
    assert.equal('csid=7 fmt=0 type=video stream=1 ts=40 len=200005 body={codec="avc", frame="key", packet="nalu"}', out)
    assert.equal(out, seen)
  end)

  it("cuts metadata longer than the bytes gathered where the whole message's line is cut", function()
    local send = fanout()
    local props = {}
    for i = 1, 1000 do props["key" .. i] = i * 1.5 end
    local body = rtmp.amf0.encode("onMetaData", props)
    assert.is_true(#body > HEAD)
    local out, seen = send(rtmp.message({ type = "data" }, body))
    assert.equal(seen, out)
    assert.truthy(out:find("len=" .. #body .. " ", 1, true))
    assert.truthy(out:find(", --[[cut]]}}", 1, true))
    assert.falsy(out:find("more bytes", 1, true))
    assert.equal("onMetaData", body_of(out)[1])
  end)

  it("shows an AMF body cut short up to the bytes gathered, with the bytes left, not a decode error", function()
    local send = fanout()
    local body = rtmp.amf0.encode("onTextData", { a = 1, b = 2, text = ("x"):rep(20000) })
    local rest = #body - body:find("\0\4text", 1, true) + 1   -- from the key that is not shown
    local out, seen, msg = send(rtmp.message({ type = "data" }, body))
    assert.equal(body, msg.payload)
    assert.equal('csid=5 fmt=0 type=data stream=1 ts=0 len=' .. #body
      .. ' body={"onTextData", {a=1, b=2, --[[... (' .. rest .. ' more bytes)]]}}', out)
    assert.same({ "onTextData", { a = 1, b = 2 } }, body_of(out))
    assert.falsy(out:find("decode_error", 1, true))
    -- the receiver, given the whole body, shows the string
    assert.truthy(seen:find('text="' .. ("x"):rep(200) .. '" --[[+19800 bytes]]}}', 1, true))
  end)

  it("marks where the bytes gathered end between two values, and inside an ECMA array", function()
    local send = fanout()
    -- a string that ends exactly at the last byte gathered, then a number
    local s = ("s"):rep(HEAD - 3)
    local body = string.pack(">Bs2", 2, s) .. string.pack(">Bd", 0, 7)
    local out = send(rtmp.message({ type = "data" }, body))
    assert.equal('csid=5 fmt=0 type=data stream=1 ts=0 len=' .. #body .. ' body={"' .. ("s"):rep(200)
      .. '" --[[+' .. (HEAD - 203) .. ' bytes]], --[[... (9 more bytes)]]}', out)
    -- an ECMA array whose first property ends at the last byte gathered:
    -- where the whole body ends, an ECMA array may end without its end
    -- marker, but here the array goes on
    local head = string.pack(">Bs2", 2, "onMetaData") .. string.pack(">BI4", 8, 2)
    local v = ("m"):rep(HEAD - #head - 4 - 3)
    local ecma = head .. string.pack(">s2Bs2", "p1", 2, v) .. string.pack(">s2Bd", "p2", 0, 1) .. "\0\0\9"
    assert.equal(HEAD, #head + 4 + 3 + #v)
    local out2, seen2 = send(rtmp.message({ type = "data" }, ecma))
    assert.equal('csid=5 fmt=0 type=data stream=1 ts=0 len=' .. #ecma .. ' body={"onMetaData", {p1="'
      .. ("m"):rep(200) .. '" --[[+' .. (#v - 200) .. ' bytes]], --[[... (16 more bytes)]]}}', out2)
    assert.truthy(seen2:find(", p2=1}}", 1, true))
  end)

  it("shows Enhanced RTMP multitrack headers from the bytes gathered", function()
    local send = fanout()
    -- OneTrack: the track runs to the end of the body, whose size it shows
    local one = "\x96\x01av01\3" .. ("a"):rep(20000)
    local out, seen = send(rtmp.message({ type = "video" }, one))
    assert.equal(seen, out)
    assert.truthy(out:find('body={codec="av01", frame="key", packet="coded_frames", multitrack="one_track", '
      .. 'tracks={{id=3, codec="av01", size=20000}}}', 1, true))
    -- ManyTracks: the tracks before the end of the bytes gathered, then the
    -- bytes not gathered; the second track's size lies past them
    local many = "\x96\x11av01" .. string.pack(">BI3", 1, 5000) .. ("b"):rep(5000)
      .. string.pack(">BI3", 2, 10000) .. ("c"):rep(10000)
    out, seen = send(rtmp.message({ type = "video" }, many))
    assert.equal('csid=7 fmt=0 type=video stream=1 ts=0 len=' .. #many .. ' body={codec="av01", frame="key", '
      .. 'packet="coded_frames", multitrack="many_tracks", tracks={{id=1, codec="av01", size=5000}}, --[[... ('
      .. (#many - HEAD) .. ' more bytes)]]}', out)
    assert.truthy(seen:find('tracks={{id=1, codec="av01", size=5000}, {id=2, codec="av01", size=10000}}}', 1, true))
    assert.falsy(out:find("decode_error", 1, true))
    -- a body no longer than the bytes gathered is shown whole
    local small = "\x96\x11av01" .. string.pack(">BI3", 1, 10) .. ("b"):rep(10) .. string.pack(">BI3", 2, 4) .. "cccc"
    out, seen = send(rtmp.message({ type = "video" }, small))
    assert.equal(seen, out)
    assert.truthy(out:find("{id=2, codec=\"av01\", size=4}}}", 1, true))
  end)
end)
