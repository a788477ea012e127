-- publisher_no_ext_ts.lua: a client that publishes an FLV file with
-- timestamps past 0xFFFFFF and leaves the extended timestamp out of its
-- fmt 3 chunks.
--
-- Reproduces: the "stream dies after 4 h 39 m" bug.  Past 0xFFFFFF ms a
-- message header carries 0xFFFFFF and a 4-byte extended timestamp; the
-- spec (and the errata) say every fmt 3 chunk of that message repeats it.
-- Some encoders do not.  Here every message starts with a fmt 0 header
-- (timestamps from 0xFFFF00 on, so after 255 ms they need the extended
-- field), the chunk size stays 128 so media spans many fmt 3 chunks, and
-- conn:option("send_ext_ts_fmt3", false) drops the 4 bytes from them.
--
-- Run it:  build/luartmp scripts/quirks/publisher_no_ext_ts.lua \
--              rtmp://127.0.0.1:1935/live/name file.flv [seconds] [spec]
--   seconds: stop after this much media (default: the whole file);
--   "spec" as the 4th argument sends the extended timestamps as the spec
--   says (the control case).  Prints "published N" and exits 0 when done,
--   "failed <reason>" and exits 1 otherwise.
--
-- What real peers did with it (spec/interop/quirks_spec.lua, docs/QUIRKS.md):
-- nginx-rtmp reads the first 4 payload bytes of every continuation chunk
-- as a timestamp, so its players get broken media; luartmp with
-- ext_ts_fmt3 = "detect" (the default) plays it cleanly, with "spec" it
-- drops the connection.

local rtmp = require "rtmp"

local url, path = arg[1], arg[2]
local seconds = tonumber(arg[3])
local per_spec = arg[4] == "spec"
if not url or not path then
    io.stderr:write("usage: publisher_no_ext_ts.lua rtmp://host[:port]/app/name file.flv [seconds] [spec]\n")
    os.exit(2)
end

local BASE = 0xFFFF00 -- the first timestamp; 0xFFFFFF is reached 255 ms in

-- The tags of an FLV file: { type, timestamp, data }.
local function flv_tags(file)
    local f = assert(io.open(file, "rb"))
    local s = f:read("a")
    f:close()
    assert(s:sub(1, 3) == "FLV", file .. ": not an FLV file")
    local pos = string.unpack(">I4", s, 6) + 5 -- past the header and PreviousTagSize0
    local tags = {}
    while pos + 11 <= #s do
        local ttype, size, ts, tsx = string.unpack(">B I3 I3 B", s, pos)
        if pos + 11 + size > #s + 1 then break end
        tags[#tags + 1] = { type = ttype, timestamp = ts | (tsx << 24), data = s:sub(pos + 11, pos + 10 + size) }
        pos = pos + 11 + size + 4
    end
    return tags
end

local tags = flv_tags(path)
local name = rtmp.parse_url(url).path
local outcome, sent, sid, timer

local function finish(what, conn)
    if outcome then return end
    outcome = what
    print(what)
    io.stdout:flush()
    if timer then timer:stop() end
    if conn and not conn.closed then conn:close("done") end
    rtmp.stop()
end

-- Send every tag due by now (real time from the first one).
local function start_media(conn)
    conn:option("send_ext_ts_fmt3", per_spec)
    local t0, i = rtmp.now(), 1
    sent = 0
    timer = rtmp.timer(0, function()
        local now_ms = (rtmp.now() - t0) * 1000
        while i <= #tags and tags[i].timestamp <= now_ms do
            local tag = tags[i]
            if seconds and tag.timestamp > seconds * 1000 then i = #tags + 1 break end
            if tag.type == 8 or tag.type == 9 or tag.type == 18 then
                local ok, err = conn:send({ type = tag.type, stream = sid, fmt = 0,
                    timestamp = (BASE + tag.timestamp) & 0xFFFFFFFF }, tag.data)
                if not ok then return finish("failed " .. tostring(err), conn) end
                sent = sent + 1
            end
            i = i + 1
        end
        if i > #tags then
            timer:stop()
            conn:command({ stream = sid, csid = 8 }, "deleteStream", 0, rtmp.null, sid)
            rtmp.timer(0.5, function() finish("published " .. sent, conn) end)
        end
    end, 0.02)
end

local conn, err = rtmp.connect(url, {
    on_handshake = function(c)
        c:command(nil, "connect", 1, { app = c.app, type = "nonprivate", flashVer = "FMLE/3.0 (compatible; luartmp)",
            tcUrl = c.tc_url })
    end,
    on_message = function(c, msg)
        if msg.name == "_result" and msg.txn == 1 then
            c:command(nil, "createStream", 2, rtmp.null)
        elseif msg.name == "_result" and msg.txn == 2 then
            sid = math.tointeger(msg.args[2])
            c:command({ stream = sid, csid = 8 }, "publish", 0, rtmp.null, name, "live")
        elseif msg.name == "_error" then
            finish("failed _error " .. tostring(type(msg.args[2]) == "table" and msg.args[2].code), c)
        elseif msg.name == "onStatus" and type(msg.args[2]) == "table" then
            local code = msg.args[2].code
            if code == "NetStream.Publish.Start" and not sent then
                start_media(c)
            elseif msg.args[2].level == "error" then
                finish("failed " .. tostring(code), c)
            end
        end
    end,
    on_close = function(_, reason) finish("failed closed: " .. tostring(reason)) end,
})
if not conn then
    print("failed " .. tostring(err))
    os.exit(1)
end
rtmp.run()
os.exit(outcome and outcome:match("^published") and 0 or 1, true)
