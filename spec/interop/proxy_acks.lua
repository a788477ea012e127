-- A publisher for proxy_spec.lua that counts what the server acknowledges:
--   luartmp spec/interop/proxy_acks.lua rtmp://HOST:PORT/APP NAME MEGABYTES
-- sends MEGABYTES of video messages as fast as the connection takes them,
-- announces no Window Ack Size itself, waits a moment after the last byte
-- is written, and prints "window=N acks=N sent=BYTES" (window: the Window
-- Ack Size the server announced, 0 for none).
local rtmp = require "rtmp"
local url, name, mb = ...

local acks = 0
-- ack_window 0: conn.ack_window stays 0 unless the server announces one
local nc = assert(rtmp.connect(url, { ack_window = 0 }))
nc.on_message = function(_, msg)
    if msg.type_name == "ack" then acks = acks + 1 end
end
local ns = assert(nc:create_stream())
assert(ns:publish(name))
local frame = "\x27\x01\0\0\0" .. string.rep("proxy acks ", 5000) -- an AVC inter frame, 55 kB
local total = math.floor(tonumber(mb) * 1e6)
local sent, ts = 0, 0
while sent < total do
    assert(ns:send(rtmp.message({ type = "video", timestamp = ts }, frame)))
    sent, ts = sent + #frame, ts + 40
    while nc.conn.pending > 1e6 do rtmp.sleep(0.01) end
end
while nc.conn.pending > 0 do rtmp.sleep(0.01) end
rtmp.sleep(0.5)
io.stdout:write(string.format("window=%d acks=%d sent=%d\n", nc.conn.ack_window, acks, sent))
ns:close()
nc:close()
