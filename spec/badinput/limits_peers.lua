-- Hostile peers for spec/badinput/limits_spec.lua, run inside luartmp:
--
--   luartmp limits_peers.lua PORT COUNT [DECLARED [SENT]]
--
-- COUNT connections to 127.0.0.1:PORT, each a passthrough connection that
-- speaks RTMP by hand: a plain handshake (C2 echoes S1), a connect
-- command (app "live"), then one chunk header on csid 4 declaring a video
-- message of DECLARED bytes (default 0xFFFFFF, the largest a header can
-- declare) followed by only SENT bytes of it (default 100; more than 128
-- are preceded by a Set Chunk Size so they are one chunk); then it
-- stalls, reading and dropping whatever the server sends. Prints
-- "stalled N BYTES" once all N have sent everything (BYTES: what each
-- sent), "closed N" when the server closes some, and keeps running until
-- killed.

local rtmp = require "rtmp"

local port, count, declared, sent = ...
port = assert(tonumber(port), "usage: limits_peers.lua PORT COUNT [DECLARED [SENT]]")
count = assert(tonumber(count))
declared = tonumber(declared) or 0xFFFFFF
sent = tonumber(sent) or 100

local pack = string.pack

-- C0 + C1: version 3, time 0, zero, 1528 filler bytes.
local c0c1 = { "\3", pack(">I4I4", 0, 0) }
for i = 1, 1528 // 8 do c0c1[#c0c1 + 1] = pack("<I8", (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) end
c0c1 = table.concat(c0c1)

-- connect("connect", 1, { app = "live" }) in AMF0, in one fmt 0 chunk on csid 3.
local body = pack(">B s2", 2, "connect") .. pack(">B d", 0, 1)
  .. "\3" .. pack(">s2 B s2", "app", 2, "live") .. "\0\0\9"
local connect = pack(">B I3 I3 B <I4", 3, 0, #body, 20, 0) .. body
-- The declaration: fmt 0 on csid 4, video, stream 1, then `sent` bytes
-- (after a Set Chunk Size of 1 MiB when they would not fit in one chunk
-- of the default 128 bytes).
local stall = pack(">B I3 I3 B <I4", 4, 0, declared, 9, 1) .. string.rep("v", sent)
if sent > 128 then stall = pack(">B I3 I3 B <I4 >I4", 2, 0, 4, 1, 0, 1 << 20) .. stall end

local per_peer = #c0c1 + 1536 + #connect + #stall
local done, closed = 0, 0

for _ = 1, count do
  local got, stage = {}, 0
  local conn, err = rtmp.connect("rtmp://127.0.0.1:" .. port .. "/live", {
    passthrough = true, idle_timeout = 0,
    on_data = function(conn, bytes)
      if stage ~= 0 then return end -- stalled: drop what the server sends
      got[#got + 1] = bytes
      local s = table.concat(got)
      got = { s }
      if #s >= 1537 then
        stage = 1
        conn:raw(s:sub(2, 1537)) -- C2 = S1
        conn:raw(connect)
        conn:raw(stall)
        done = done + 1
        if done == count then
          io.stdout:write(string.format("stalled %d %d\n", count, per_peer))
          io.stdout:flush()
        end
      end
    end,
    on_close = function()
      closed = closed + 1
      io.stdout:write(string.format("closed %d\n", closed))
      io.stdout:flush()
    end,
  })
  assert(conn, err)
  conn:raw(c0c1)
end
