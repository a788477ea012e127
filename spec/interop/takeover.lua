-- The live server with takeover on: a new publisher of a name replaces the old one.
local live = require "live"
live.start{ takeover = true }
