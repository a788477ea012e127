-- Browser playback (docs/HTTP.md "The player page"): live.lua --http
-- serves scripts/www/ and mpegts.js; ffmpeg publishes a moving test
-- pattern; headless Chromium, driven over the DevTools protocol
-- (spec/support/cdp_page.js with node and the `ws` package of
-- tools/node), opens /?play=live/NAME: the video's current time advances
-- and a screenshot of the player shows the picture, over HTTP-FLV and
-- over WS-FLV (&ws=1).
local H = require "support.helpers"
local C = require "support.chromium"

local fmt, q = string.format, H.shquote

-- What the player page needs beyond Chromium, node and ws (C.missing).
local NEEDS = {
  ["tools/node/node_modules/mpegts.js/dist/mpegts.js"] = "mpegts.js is missing in tools/node (" .. C.NODE_INSTALL .. ")",
}

-- lavfi's signalstats of a picture: { YMIN =, YMAX =, YAVG =, SATAVG = ... }.
local function signalstats(png)
  local _, out = H.run(fmt("ffmpeg -nostdin -v error -i %s -vf signalstats,metadata=print:file=- -f null -", q(png)), 30)
  local t = {}
  for k, v in out:gmatch("lavfi%.signalstats%.(%u+)=([%d.]+)") do t[k] = tonumber(v) end
  return t, out
end

-- Open url in the browser listening on devtools; returns what cdp_page.js
-- printed as a table, and the screenshot's path.
local function open_page(devtools, url)
  local shot = H.tmpname("player.png")
  local rc, out = H.run(fmt("node spec/support/cdp_page.js %d %s %s 20", devtools, q(url), q(shot)), 40)
  assert.are.equal(0, rc, "cdp_page.js: " .. out)
  local t = {}
  for k, v in out:gmatch("(%w+)=(%S*)") do t[k] = tonumber(v) or v end
  return t, shot
end

describe("the player page", function()
  after_each(function() H.cleanup() end)

  local why = C.missing(NEEDS)
  if why then
    pending("in headless Chromium: " .. why)
    return
  end

  it("plays a live stream in headless Chromium over HTTP-FLV and WS-FLV", function()
    local hport = H.free_port()
    local srv = H.luartmp_start{ extra = { "--http", "127.0.0.1:" .. hport }, log_level = "info" }
    assert(H.wait_port(hport, 10), "no HTTP listener")
    -- a test pattern with motion (its counter and colour bar move), in real time
    local pub = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v error -re -f lavfi -i testsrc=size=320x240:rate=25 " ..
      "-t 14 -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p -f flv %s",
      q(srv.url("live/page"))), { name = "ffmpeg-publish" })
    assert(H.wait_until(function() return srv.count("publish", "page") >= 1 end, 10), srv.log())

    local devtools = C.start()

    for _, variant in ipairs({ { "", "HTTP-FLV", "http://" }, { "&ws=1", "WS-FLV", "ws://" } }) do
      local page = fmt("http://127.0.0.1:%d/?play=live/page%s", hport, variant[1])
      local got, shot = open_page(devtools, page)
      assert.are.equal("live/page", got.playing, variant[2])
      assert.are.equal(fmt("%s127.0.0.1:%d/live/page.flv", variant[3], hport), got.url, variant[2])
      assert.are.equal("null", got.error, variant[2])
      -- the video plays: its clock moved by about the 2 s waited
      assert.is_true(got.t2 - got.t1 > 1, fmt("%s: currentTime %s then %s", variant[2], got.t1, got.t2))
      assert.are.equal(320, got.width, variant[2])
      assert.are.equal(240, got.height, variant[2])
      -- the player shows the picture: bright and dark, and colour
      local st, out = signalstats(shot)
      assert.is_true(st.YMAX and st.YMAX - st.YMIN > 100, variant[2] .. ": luma range " .. out)
      assert.is_true(st.SATAVG and st.SATAVG > 20, variant[2] .. ": saturation " .. out)
      assert.matches(fmt("http %%d+: %s stream", (variant[2]:gsub("%p", "%%%0"))), srv.log())
    end
    assert(not H.exited(pub), "the publisher stopped before the pages were checked: " .. H.output(pub))
  end)
end)

describe("the player page without mpegts.js", function()
  after_each(function() H.cleanup() end)
  local why = C.missing(NEEDS)
  if why then
    pending("in headless Chromium: " .. why)
    return
  end

  it("is served and says how to install mpegts.js", function()
    local hport = H.free_port()
    H.luartmp_start{ extra = { "--http", "127.0.0.1:" .. hport }, script = "spec/interop/www_nompegts.lua" }
    assert(H.wait_port(hport, 10), "no HTTP listener")
    local base = fmt("http://127.0.0.1:%d", hport)
    local _, page = H.run(fmt("curl -s -w '\n%%{http_code}' %s/", base), 10)
    assert.matches("\n200$", page)
    assert.matches("<video id=\"player\"", page, 1, true)
    local _, js = H.run(fmt("curl -s -w '\n%%{http_code}' %s/www/mpegts.js", base), 10)
    assert.matches("^mpegts.js is not installed: run tools/deps.sh %(npm ci %-%-prefix tools/node%)", js)
    assert.matches("\n404$", js)
    -- in the browser, the page shows the notice
    local devtools = C.start()
    local rc, out = H.run(fmt("node spec/support/cdp_page.js %d %s --eval %s", devtools, q(base .. "/"),
      q("getComputedStyle(document.getElementById('missing')).display")), 40)
    assert.are.equal(0, rc, out)
    assert.are.equal('value="block"\n', out)
  end)
end)
