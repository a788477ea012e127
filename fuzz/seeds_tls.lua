-- fuzz/seeds_tls.lua OUT CAPTURE...: the seed corpus of fuzz_tlsinfo
-- from real TLS sessions.  For every TLS connection in the captures
-- (rtmp.capture: RTMPS, or any TLS), the first 8 KiB each way (the
-- ClientHello, the ServerHello and what follows them) go to
-- OUT/tlsinfo/<capture>-c<N>-<dir>.  Run with luartmp (or lua5.4 with
-- build/rtmp.so and lua/ on the paths).
local capture = require "rtmp.capture"

local out = assert(arg[1], "usage: seeds_tls.lua OUT CAPTURE...")
os.execute("mkdir -p '" .. out .. "/tlsinfo'")
local n = 0
for i = 2, #arg do
  local cap = assert(capture.open(arg[i]))
  local base = arg[i]:match("([^/]+)$"):gsub("%.pcapng?$", "")
  for _, c in ipairs(cap.conns) do
    if c.tls then
      for _, dir in ipairs({ "c2s", "s2c" }) do
        local parts = {}
        for _, ch in ipairs(c.chunks) do
          if ch.dir == dir then parts[#parts + 1] = ch.data end
        end
        local bytes = table.concat(parts):sub(1, 8192)
        if #bytes > 0 then
          local f = assert(io.open(string.format("%s/tlsinfo/%s-c%d-%s", out, base, c.id, dir), "wb"))
          f:write(bytes)
          f:close()
          n = n + 1
        end
      end
    end
  end
end
io.stderr:write(string.format("tlsinfo: %d seeds\n", n))
