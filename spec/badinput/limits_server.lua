-- scripts/live.lua for spec/badinput/limits_spec.lua: the live server as
-- it ships, started with the rtmp.listen settings given as NAME=VALUE
-- arguments, plus a report every 0.25 s of what its open connections
-- hold, from the connection fields the spec checks:
--
--   memory conns=N memory=BYTES lua=BYTES idle=K idle_memory=BYTES
--          idle_buffered=BYTES idle_max=BYTES idle_in=BYTES
--
-- memory: sum of conn.memory over open connections; lua: the Lua heap;
-- the idle_* sums are over connections that created no stream (neither
-- publisher nor player): idle_buffered sums conn.buffered (bytes in
-- partial messages), idle_max is the largest conn.memory among them,
-- idle_in sums conn.bytes_in.

local rtmp = require "rtmp"
local live = require "live"

local opts = {}
for _, a in ipairs{ ... } do
  local k, v = a:match("^([%w_]+)=(.*)$")
  assert(k, "want NAME=VALUE, got " .. a)
  opts[k] = tonumber(v) or v
end

local open = {}
opts.on_open = function(conn) open[conn] = true end
live.hooks.on_close = function(conn) open[conn] = nil end
live.start(opts)

rtmp.timer(0.25, function()
  local n, mem, idle, imem, ibuf, imax, iin = 0, 0, 0, 0, 0, 0, 0
  for conn in pairs(open) do
    if not conn.closed then
      local m = conn.memory
      n, mem = n + 1, mem + m
      if next(conn.streams or {}) == nil then
        idle, imem, ibuf, iin = idle + 1, imem + m, ibuf + conn.buffered, iin + conn.bytes_in
        if m > imax then imax = m end
      end
    end
  end
  rtmp.log.info("memory conns=%d memory=%d lua=%d idle=%d idle_memory=%d idle_buffered=%d idle_max=%d idle_in=%d",
    n, mem, math.floor(collectgarbage("count") * 1024), idle, imem, ibuf, imax, iin)
end, 0.25)
