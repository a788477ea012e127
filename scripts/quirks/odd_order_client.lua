-- odd_order_client.lua: a client that sends its commands in an unusual
-- order, and prints what the server answers.
--
-- Reproduces: encoders and players that do not wait for replies or call
-- things in another order than Flash did (PROTOCOL.md, interop trap 10).
-- Orders (the second argument):
--   pipelined  connect, createStream and publish in one burst right after
--              the handshake, publish on stream id 1 before the
--              createStream result says which id it is;
--   late_fc    connect, createStream, publish, and only then releaseStream
--              and FCPublish (encoders send those two first);
--   play_first play on stream 1 before connect, then connect and
--              createStream.
-- Everything is sent on the csids Flash uses (3 for NetConnection, 8 for
-- NetStream commands).
--
-- Run it:  build/luartmp scripts/quirks/odd_order_client.lua \
--              rtmp://127.0.0.1:1935/live/name pipelined [seconds]
-- Prints one line per command or status received
--   "recv <name> txn=<n> [code=<code>] [stream=<id>]"
-- and ends with "end closed <reason>" (the server closed) or "end quiet"
-- (still open after `seconds`, default 2).  Always exits 0: the output is
-- the observation.
--
-- What real servers did (spec/interop/quirks_spec.lua, docs/QUIRKS.md):
-- pipelined: nginx-rtmp, ffmpeg -listen 1 and live.lua all accept;
-- late_fc: nginx-rtmp never answers releaseStream/FCPublish, ffmpeg sends
-- a bare "onFCPublish"; play_first: nginx-rtmp and ffmpeg close the
-- connection, live.lua answers StreamNotFound and goes on.

local rtmp = require "rtmp"

local url, order = arg[1], arg[2] or "pipelined"
local seconds = tonumber(arg[3]) or 2
if not url then
    io.stderr:write("usage: odd_order_client.lua rtmp://host[:port]/app/name [pipelined|late_fc|play_first] [seconds]\n")
    os.exit(2)
end

local null = rtmp.null
local name = rtmp.parse_url(url).path
local done = false

local function out(fmt, ...)
    print(string.format(fmt, ...))
    io.stdout:flush()
end

local function finish(line)
    if done then return end
    done = true
    out("end %s", line)
    rtmp.stop()
end

local function connect(c)
    c:command(nil, "connect", 1, { app = c.app, type = "nonprivate", flashVer = "FMLE/3.0 (compatible; luartmp)",
        tcUrl = c.tc_url })
end

local steps = {
    pipelined = {
        on_handshake = function(c)
            connect(c)
            c:command(nil, "createStream", 2, null)
            c:command({ stream = 1, csid = 8 }, "publish", 0, null, name, "live")
        end,
    },
    late_fc = {
        on_handshake = connect,
        [1] = function(c) c:command(nil, "createStream", 2, null) end,
        [2] = function(c, sid)
            c:command({ stream = sid, csid = 8 }, "publish", 0, null, name, "live")
            c:command(nil, "releaseStream", 3, null, name)
            c:command(nil, "FCPublish", 4, null, name)
        end,
    },
    play_first = {
        on_handshake = function(c)
            c:command({ stream = 1, csid = 8 }, "play", 0, null, name, -2)
            connect(c)
        end,
        [1] = function(c) c:command(nil, "createStream", 2, null) end,
    },
}
local plan = steps[order]
if not plan then
    io.stderr:write("unknown order " .. tostring(order) .. "\n")
    os.exit(2)
end

local conn, err = rtmp.connect(url, {
    on_handshake = plan.on_handshake,
    on_message = function(c, msg)
        if msg.type_name ~= "command" and msg.type_name ~= "command3" then return end
        local info = msg.args and msg.args[2]
        local code = type(info) == "table" and info.code
        local sid = msg.name == "_result" and msg.txn == 2 and math.tointeger(msg.args[2])
        out("recv %s txn=%s%s%s", tostring(msg.name), tostring(math.tointeger(msg.txn) or msg.txn),
            code and (" code=" .. code) or "", sid and (" stream=" .. sid) or "")
        local step = (msg.name == "_result") and plan[math.tointeger(msg.txn)]
        if step then step(c, sid) end
    end,
    on_close = function(_, reason) finish("closed " .. tostring(reason)) end,
})
if not conn then
    out("end closed %s", tostring(err))
    os.exit(0)
end
rtmp.timer(seconds, function() finish("quiet") end)
rtmp.run()
if not conn.closed then conn:close("done") end
os.exit(0, true)
