-- AMF bytes produced by real peers: ffmpeg's and rtmpdump's connect with
-- extra values (-rtmp_conn / --conn), ffmpeg's and GStreamer's publish
-- sequences and @setDataFrame onMetaData, nginx-rtmp's connect _result
-- and onStatus.
-- Each message must decode to exactly the values the peer was told to
-- send, and rtmp.amf0.encode_values(msg.values) must give back the body
-- byte for byte (spec/interop/amf_peers.lua prints "same" only then).
-- None of these peers emits AMF3 (ffmpeg, librtmp, GStreamer and
-- nginx-rtmp write AMF0 only), so the AMF3 paths are covered by spec/unit/amf3_spec.lua.

local H = require "support.helpers"

local SCRIPT = "spec/interop/amf_peers.lua"
local EXTRA = 'true "hello" object{code=1.23,flag="ok"} 42 null'

-- The MSG lines of a process's stdout: { {type, name, same, rest}, ... }.
local function messages(p)
  local out = {}
  for line in (H.read_file(p.out) or ""):gmatch("[^\n]+") do
    local ty, name, same, rest = line:match("^MSG (%S+) (%S+) (%S+) (.*)$")
    if ty then out[#out + 1] = { type = ty, name = name, same = same, rest = rest, line = line } end
  end
  return out
end

local function find(list, name)
  for _, m in ipairs(list) do if m.name == name then return m end end
end

local function all_same(list)
  for _, m in ipairs(list) do
    assert.are.equal("same", m.same, "re-encoding differs from the peer's bytes: " .. m.line)
  end
end

describe("AMF from real peers", function()
  after_each(function() H.cleanup() end)

  it("ffmpeg -rtmp_conn: extra connect values, publish commands and onMetaData round-trip", function()
    local srv = H.luartmp_start{ script = SCRIPT, args = { "server" } }
    local ff = H.spawn(string.format(
      "ffmpeg -nostdin -hide_banner -v error -re -i %s -t 1 -c copy -f flv -rtmp_conn %s %s",
      H.shquote(H.fixture_flv()), H.shquote("B:1 S:hello O:1 NN:code:1.23 NS:flag:ok O:0 N:42 Z:"),
      H.shquote(srv.url("live/amf"))), { name = "ffmpeg-amf" })
    local ok = H.wait_until(function() return find(messages(srv.proc), "@setDataFrame") end, 15)
    assert.truthy(ok, "no @setDataFrame seen; server output:\n" .. H.output(srv.proc) .. "\nffmpeg:\n" .. H.output(ff))
    H.wait_exit(ff, 10)
    local msgs = messages(srv.proc)
    local connect = find(msgs, "connect")
    assert.truthy(connect)
    -- name, txn, command object, then exactly the extra values in order
    local obj, extra = connect.rest:match('^"connect" 1 (object{.-}) (.*)$')
    assert.truthy(obj, connect.line)
    assert.truthy(obj:find('app="live"', 1, true), obj)
    assert.are.equal(EXTRA, extra)
    for _, name in ipairs{ "releaseStream", "FCPublish", "createStream", "publish" } do
      assert.truthy(find(msgs, name), "missing " .. name)
    end
    assert.are.equal('"publish" 5 null "amf" "live"', find(msgs, "publish").rest)
    local meta = find(msgs, "@setDataFrame")
    assert.are.equal("data", meta.type)
    assert.truthy(meta.rest:find('^"@setDataFrame" "onMetaData" ecma{'), meta.rest)
    assert.truthy(meta.rest:find("width=320", 1, true), meta.rest)
    assert.truthy(meta.rest:find('encoder="Lavf', 1, true), meta.rest)
    all_same(msgs)
  end)

  it("rtmpdump --conn: the same extra values from librtmp", function()
    local srv = H.luartmp_start{ script = SCRIPT, args = { "server" } }
    local args = {}
    for _, c in ipairs{ "B:1", "S:hello", "O:1", "NN:code:1.23", "NS:flag:ok", "O:0", "N:42", "Z:" } do
      args[#args + 1] = "--conn " .. H.shquote(c)
    end
    local rd = H.spawn(string.format("rtmpdump -r %s %s -o /dev/null --timeout 3",
      H.shquote(srv.url("live/amf")), table.concat(args, " ")), { name = "rtmpdump-amf" })
    local ok = H.wait_until(function() return find(messages(srv.proc), "play") end, 15)
    assert.truthy(ok, "no play seen; server output:\n" .. H.output(srv.proc) .. "\nrtmpdump:\n" .. H.output(rd))
    local msgs = messages(srv.proc)
    local connect = find(msgs, "connect")
    local obj, extra = connect.rest:match('^"connect" 1 (object{.-}) (.*)$')
    assert.truthy(obj, connect.line)
    assert.truthy(obj:find('flashVer="LNX', 1, true), obj)
    assert.are.equal(EXTRA, extra)
    assert.truthy(find(msgs, "createStream"))
    all_same(msgs)
  end)

  it("GStreamer rtmp2sink: its connect, publish commands and flvmux onMetaData round-trip", function()
    local srv = H.luartmp_start{ script = SCRIPT, args = { "server" } }
    local gst = H.spawn(string.format("gst-launch-1.0 -q filesrc location=%s ! flvdemux name=d d.video ! queue ! "
      .. "h264parse ! flvmux streamable=true ! rtmp2sink location=%s", H.shquote(H.fixture_flv()),
      H.shquote(srv.url("live/gst"))), { name = "gst-amf" })
    local ok = H.wait_until(function() return find(messages(srv.proc), "@setDataFrame") end, 15)
    assert.truthy(ok, "no @setDataFrame seen; server output:\n" .. H.output(srv.proc) .. "\ngst:\n" .. H.output(gst))
    local msgs = messages(srv.proc)
    local connect = find(msgs, "connect")
    assert.truthy(connect.rest:find('app="live"', 1, true), connect.line)
    assert.truthy(connect.rest:find('tcUrl="' .. srv.url("live") .. '"', 1, true), connect.line)
    assert.are.equal('"publish" 0 null "gst" "live"', find(msgs, "publish").rest)
    local meta = find(msgs, "@setDataFrame")
    assert.truthy(meta.rest:find('encoder="GStreamer', 1, true), meta.rest)
    all_same(msgs)
  end)

  it("nginx-rtmp's connect _result and onStatus, as our client receives them", function()
    local srv = H.nginx_start()
    local cl = H.spawn(string.format("%s %s client %s", H.shquote(H.luartmp), SCRIPT,
      H.shquote(srv.url("live"))), { name = "amf-client" })
    assert.truthy(H.wait_exit(cl, 15), "client did not finish:\n" .. H.output(cl))
    local msgs = messages(cl)
    local result = find(msgs, "_result")
    assert.truthy(result, "no _result:\n" .. H.output(cl))
    assert.truthy(result.rest:find('code="NetConnection.Connect.Success"', 1, true), result.line)
    assert.truthy(result.rest:find('fmsVer="FMS/', 1, true), result.line)
    local status = find(msgs, "onStatus")
    assert.truthy(status, "no onStatus:\n" .. H.output(cl))
    assert.truthy(status.rest:find('code="NetStream.Publish.Start"', 1, true), status.line)
    assert.is_true(#msgs >= 3)
    all_same(msgs)
  end)
end)
