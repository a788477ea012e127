-- fms.lua: a live server that answers like Adobe Flash Media Server 3.5.
--
-- Imitates: FMS 3.5.7 (build 7009), the reply most RTMP clients were
-- written against.  Its connect `_result` carries the properties object
-- { fmsVer = "FMS/3,5,7,7009", capabilities = 31, mode = 1 } and an
-- information object whose `data` is an ECMA array { version = "3,5,7,7009" },
-- plus `clientid` and `objectEncoding`.  Right after the `_result` FMS calls
-- the client's `onBWDone` (transaction 0, null); clients answer with
-- `_checkbw`, which this profile answers with `_result` and logs.  A play
-- gets FMS's order: StreamBegin, NetStream.Play.Reset, StreamEOF (the end
-- of the reset), StreamBegin, NetStream.Play.Start, |RtmpSampleAccess,
-- then the media.  The rest (publish, fan-out) is scripts/live.lua.
--
-- Run it:  build/luartmp --listen 1935 scripts/quirks/fms.lua
--
-- What real peers did with it (spec/interop/quirks_spec.lua, docs/QUIRKS.md):
-- ffmpeg (publisher and player) and rtmpdump answer onBWDone with
-- `_checkbw`; rtmpdump -V prints the fmsVer, data.version and the
-- onBWDone call; both stream as they do from live.lua, and so does
-- scripts/client/play.lua, which goes on past the early StreamEOF.

local rtmp = require "rtmp"
local live = require "live"

local null = rtmp.null
local VERSION = "3,5,7,7009"
local next_client_id = 1

live.replies.result = function(conn, msg, app, encoding)
    next_client_id = next_client_id + 1
    conn.fms_clientid = next_client_id * 1.0
    conn:command(nil, "_result", msg.txn,
        rtmp.amf0.object{ { "fmsVer", "FMS/" .. VERSION }, { "capabilities", 31.0 }, { "mode", 1.0 } },
        rtmp.amf0.object{
            { "level", "status" },
            { "code", "NetConnection.Connect.Success" },
            { "description", "Connection succeeded." },
            { "data", rtmp.amf0.ecma{ { "version", VERSION } } },
            { "clientid", next_client_id * 1.0 },
            { "objectEncoding", encoding * 1.0 },
        })
    conn:command(nil, "onBWDone", 0, null)
    conn:log("info", "connect app=%s (FMS reply, onBWDone sent)", app)
end

local function on_status(conn, sid, code, description, name)
    conn:command({ stream = sid, csid = 5 }, "onStatus", 0, null, rtmp.amf0.object{
        { "level", "status" }, { "code", code }, { "description", description },
        { "details", name }, { "clientid", conn.fms_clientid or 0.0 },
    })
end

live.replies.play = function(conn, msg, sid, name, send_cache)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "NetStream.Play.Reset", "Playing and resetting " .. name .. ".", name)
    conn:user_control("stream_eof", sid)
    conn:user_control("stream_begin", sid)
    on_status(conn, sid, "NetStream.Play.Start", "Started playing " .. name .. ".", name)
    conn:data({ stream = sid }, "|RtmpSampleAccess", true, true)
    send_cache()
end

live.commands._checkbw = function(conn, msg)
    conn:log("info", "_checkbw txn=%s", tostring(msg.txn))
    conn:command(nil, "_result", msg.txn, null)
end

live.start()
