-- slow_players.lua: N players of one stream in one luartmp process, each
-- counting what it receives (spec/interop/slow_spec.lua).
--
--   luartmp spec/interop/slow_players.lua URL NAME N FLV
--
-- URL is the application's (rtmp://host:port/app), NAME the stream.
-- Prints "expected video=V audio=A digest=D" for the audio and video tags
-- of FLV (the file the publisher sends), then, once every player is
-- playing, "ready N"; each player reads until the stream ends (StreamEOF /
-- UnpublishNotify) and prints "player I video=V audio=A digest=D" (digest:
-- a hash of the (type, timestamp, length) sequence, so a missing,
-- repeated or reordered frame changes it), or "player I failed: reason".
-- Exits once every player has printed.
local rtmp = require "rtmp"

local url, name, n, flv = arg[1], arg[2], tonumber(arg[3]), arg[4]
io.stdout:setvbuf("line")

local function digest_add(d, msg)
  -- FNV-1a over the three fields, 64-bit wrapping
  for _, v in ipairs({ msg.type, msg.timestamp, msg.length }) do
    d = (d ~ v) * 0x100000001b3
  end
  return d
end

local OFFSET = -3750763034362895579 -- 0xcbf29ce484222325 as a Lua integer

do
  local r = assert(rtmp.flv.open(flv))
  local v, a, d = 0, 0, OFFSET
  while true do
    local msg, err = r:read()
    if not msg then assert(not err, err) break end
    if msg.type == 9 or msg.type == 8 then
      if msg.type == 9 then v = v + 1 else a = a + 1 end
      d = digest_add(d, msg)
    end
  end
  r:close()
  print(string.format("expected video=%d audio=%d digest=%x", v, a, d))
end

local playing, done = 0, 0
for i = 1, n do
  rtmp.spawn(function()
    local nc, err = rtmp.connect(url, { timeout = 20 })
    local ns
    if nc then ns, err = nc:create_stream() end
    if ns then
      local ok
      ok, err = ns:play(name)
      if not ok then ns = nil end
    end
    if not ns then
      print(string.format("player %d failed: %s", i, err))
      done = done + 1
      if done == n then rtmp.stop() end
      return
    end
    playing = playing + 1
    if playing == n then print("ready " .. n) end
    local v, a, d = 0, 0, OFFSET
    while true do
      local msg, rerr = ns:read(30)
      if not msg then err = rerr break end
      if msg.type == 9 or msg.type == 8 then
        if msg.type == 9 then v = v + 1 else a = a + 1 end
        d = digest_add(d, msg)
      end
    end
    if err == "eof" then
      print(string.format("player %d video=%d audio=%d digest=%x", i, v, a, d))
    else
      print(string.format("player %d failed: %s after video=%d audio=%d", i, err, v, a))
    end
    nc:close()
    done = done + 1
    if done == n then rtmp.stop() end
  end)
end
