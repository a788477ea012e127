-- The live server that the publisher moves to, for drain_spec.lua:
--
--   luartmp --listen PORT spec/interop/drain_edge.lua [PULL_URL]
--
-- scripts/live.lua (whose rtmp.drain.adopt lets a publisher that moves
-- here take its stream over from the pull relay at a keyframe) and, with
-- PULL_URL, a pull relay from there (the server being drained).
local live = require "live"
if arg[1] then live.config.pull = arg[1] end
live.start()
