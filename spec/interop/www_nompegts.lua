-- live.lua where mpegts.js is nowhere to be found (browser_spec: the page
-- is still served and says how to install it).
require("http_api").mpegts = {}
require("live").start()
