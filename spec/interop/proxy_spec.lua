-- The recording proxy (scripts/proxy.lua) between real peers: ffmpeg
-- publishes through it to nginx-rtmp, ffmpeg players receive the stream
-- (through the proxy, or straight from nginx).
--
-- - message mode: every message one side sent reaches the other with the
--   same csid, type, message stream id, timestamp and body (both legs of
--   the trace compared line by line), and the player decodes every frame;
-- - byte-faithful mode: a capture of both legs holds the same TCP payload
--   on each, byte for byte, both directions, handshake included;
-- - hook files: what nginx and the capture of each leg show (the renamed
--   stream key, the fourCcList in connect upstream only, no Set Peer
--   Bandwidth on the client leg, per tshark too, a delayed connect answer
--   with an inserted command and everything behind it still in order).
local H = require "support.helpers"
local C = require "support.capture"
local capture = require "rtmp.capture"
local rtmp = require "rtmp"

local fmt = string.format

-- The media is a 2 s cut of the fixture; its frame counts are measured.
-- A player subscribed before the publisher starts gets every frame but
-- perhaps the last ones in flight when the publisher leaves (as in
-- relay_spec.lua; H.FIXTURE).
local TAIL_SLACK, AUDIO_SLACK = H.FIXTURE.tail_slack, H.FIXTURE.audio_slack
local media
local function media_file()
  if media then return media end
  local path = H.tmpname("proxy-2s.flv")
  local rc, out = H.run(fmt("ffmpeg -nostdin -v error -i %s -t 2 -c copy -f flv -y %s",
    H.shquote(H.fixture_flv()), H.shquote(path)), 60)
  assert(rc == 0, "ffmpeg could not cut the fixture: " .. out)
  local info = assert(H.probe(path))
  assert(info.video and info.audio and info.video.frames >= 50, "bad cut: " .. info.log)
  -- video messages a publisher sends: every video tag (frames, the AVC
  -- sequence header, the end-of-sequence tag)
  local r, tags = assert(rtmp.flv.open(path)), 0
  while true do
    local tag = r:read()
    if not tag then break end
    if tag.type_name == "video" then tags = tags + 1 end
  end
  r:close()
  media = { path = path, video = info.video.frames, audio = info.audio.frames, video_tags = tags }
  return media
end

local function publish(url)
  return H.spawn(fmt("ffmpeg -nostdin -hide_banner -v info -re -i %s -c copy -f flv %s",
    H.shquote(media_file().path), H.shquote(url)), { name = "ffmpeg-publish" })
end

-- Start the proxy in front of `upstream` (a URL) with extra arguments.
local function proxy_start(upstream, args)
  local port = H.free_port()
  local cmd = { H.shquote(H.luartmp), "--log-level", "debug", "scripts/proxy.lua", "--upstream",
                H.shquote(upstream), "--listen", "127.0.0.1:" .. port }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = H.shquote(a) end
  local proc = H.spawn(table.concat(cmd, " "), { name = "proxy" })
  local ok, why = H.wait_port(port, 10, proc)
  assert(ok, why)
  local p = { port = port, proc = proc }
  function p.url(path) return fmt("rtmp://127.0.0.1:%d/%s", port, path) end
  function p.log() return H.read_file(proc.err) or "" end
  return p
end

-- Play `play_url` into a file from before the publisher starts: wait
-- until nginx has the player, then publish through `pub_url`.  finish()
-- waits for both to end and checks the recording: every frame.
local function start_pair(nginx, play_url, name, pub_url)
  local out = H.tmpname(name .. "-play.flv")
  -- (the player's idle limit covers the publisher's start through the
  -- proxy too: 1.5 s was not always enough with the suite's workers on
  -- two cores; it also ends the player after the stream ends)
  local player = H.ffmpeg_play(play_url, out, 4)
  assert(H.wait_until(function() return nginx.count("play", name) >= 1 end, 10),
    "nginx never saw the player:\n" .. nginx.log())
  local job = { pub = publish(pub_url) }
  function job.finish()
    assert.are.equal(0, H.wait_exit(job.pub, 30), "publisher: " .. H.output(job.pub))
    assert.are.equal(0, H.wait_exit(player, 20), "player: " .. H.output(player))
    local info = assert(H.probe(out))
    assert(info.video and info.audio, "player recorded no stream:\n" .. info.log)
    local m = media_file()
    assert(info.video.frames >= m.video - TAIL_SLACK and info.video.frames <= m.video,
      fmt("player decoded %d video frames of %d", info.video.frames, m.video))
    assert(info.audio.frames >= m.audio - AUDIO_SLACK and info.audio.frames <= m.audio,
      fmt("player decoded %d audio frames of %d", info.audio.frames, m.audio))
    return info
  end
  return job
end

local function publish_and_play(nginx, play_url, name, pub_url)
  return start_pair(nginx, play_url, name, pub_url).finish()
end

-- The pairs the proxy logged: { { client = id, upstream = id }, ... }.
local function pairs_logged(log)
  local t = {}
  for c, u in log:gmatch("proxy: conn=(%d+) %-> upstream conn=(%d+)") do
    t[#t + 1] = { client = tonumber(c), upstream = tonumber(u) }
  end
  return t
end

-- Trace lines per connection and direction, without the time, the
-- connection, the direction and the fmt (which re-chunking may change):
-- "csid=3 type=command stream=0 ts=0 len=140 body={...}".  Acknowledgements
-- are left out: each leg's session sends its own.
local function trace_by_conn(path)
  local by = {}
  for line in (H.read_file(path) or ""):gmatch("[^\n]+") do
    local conn, dir, csid, rest = line:match("^%S+ conn=(%d+) (%a+) csid=(%S+) fmt=%S+ (.*)$")
    assert(conn, "not a trace line: " .. line)
    if not rest:find("^type=ack ") then
      conn = tonumber(conn)
      by[conn] = by[conn] or { ["in"] = {}, out = {} }
      table.insert(by[conn][dir], "csid=" .. csid .. " " .. rest)
    end
  end
  return by
end

-- The capture's connections to `port`, in order of their first packet.
local function legs(cap, port)
  local t = {}
  for _, c in ipairs(cap.conns) do
    if c.server == "127.0.0.1:" .. port then t[#t + 1] = c end
  end
  return t
end

-- Everything one direction of a captured connection carried.
local function stream_bytes(conn, dir)
  local parts = {}
  for _, ch in ipairs(conn.chunks) do
    if ch.dir == dir then parts[#parts + 1] = ch.data end
  end
  return table.concat(parts)
end

-- The messages of one direction of a captured connection.
local function messages(conn, dir)
  local list = capture.messages(conn)
  assert(not list.error, "capture did not decode: " .. tostring(list.error))
  local t = {}
  for _, e in ipairs(list) do
    if e.dir == dir then t[#t + 1] = e.msg end
  end
  return t
end

local function first_command(msgs, name)
  for _, m in ipairs(msgs) do
    if m.type == 20 and m.name == name then return m end
  end
end

-- Command names in order.
local function command_names(msgs)
  local t = {}
  for _, m in ipairs(msgs) do
    if m.type == 20 then t[#t + 1] = m.name end
  end
  return t
end

local function count_type(msgs, type_name)
  local n = 0
  for _, m in ipairs(msgs) do
    if m.type_name == type_name then n = n + 1 end
  end
  return n
end

describe("proxy #nginx", function()
  after_each(H.cleanup)

  it("message mode: ffmpeg publishes and plays through it to nginx-rtmp; each message goes on unchanged, traced on both legs", function()
    local nginx = H.nginx_start()
    local trace = H.tmpname("proxy-msg.trace")
    local proxy = proxy_start(nginx.url(""), { "--trace=" .. trace })
    publish_and_play(nginx, proxy.url("live/m1"), "m1", proxy.url("live/m1"))
    assert.are.equal(1, nginx.count("publish", "m1"))
    assert(H.wait_until(function() return #pairs_logged(proxy.log()) == 2
      and H.count_plain(proxy.log(), "close:") == 4 end, 10), proxy.log())
    local by = trace_by_conn(trace)
    local video = 0
    for _, pr in ipairs(pairs_logged(proxy.log())) do
      local c, u = by[pr.client], by[pr.upstream]
      assert(c and u, "a leg without trace lines")
      -- what the client sent is what the proxy sent upstream, and back
      assert.are.same(c["in"], u.out)
      assert.are.same(u["in"], c.out)
      for _, l in ipairs(c["in"]) do
        if l:find(" type=video ", 1, true) then video = video + 1 end
      end
    end
    assert.are.equal(media_file().video_tags, video, "video messages relayed from the publisher")
    assert.are.equal(0, H.kill(proxy.proc), "proxy exit status")
  end)

  it("byte-faithful mode: both legs of the capture carry the same bytes, both ways, handshake included", function()
    local nginx = H.nginx_start()
    local trace = H.tmpname("proxy-faithful.trace")
    local proxy = proxy_start(nginx.url(""), { "--faithful", "--trace=" .. trace })
    local cap = C.start(proxy.port, { filter = fmt("tcp port %d or tcp port %d", proxy.port, nginx.port) })
    publish_and_play(nginx, proxy.url("live/f1"), "f1", proxy.url("live/f1"))
    assert(H.wait_until(function() return H.count_plain(proxy.log(), "close:") == 4 end, 10), proxy.log())
    local file = C.stop(cap)
    local got = assert(capture.open(file))
    local client_legs, upstream_legs = legs(got, proxy.port), legs(got, nginx.port)
    assert.are.equal(2, #client_legs, "connections to the proxy")
    assert.are.equal(2, #upstream_legs, "connections to nginx")
    for i = 1, 2 do
      local c, u = client_legs[i], upstream_legs[i]
      assert.are.equal(0, c.gaps)
      assert.are.equal(0, u.gaps)
      assert(c.rtmp and u.rtmp)
      local c2s, s2c = stream_bytes(c, "c2s"), stream_bytes(c, "s2c")
      assert(#c2s > 3073 and #s2c > 3073, "more than a handshake each way")
      -- the client closes first: everything it sent went upstream
      assert(c2s == stream_bytes(u, "c2s"), fmt("leg pair %d: client bytes differ upstream", i))
      -- the client got what nginx sent, from the first byte, until the
      -- client closed; nginx's answers to its last commands came later
      -- and had nobody to go to
      local u_s2c = stream_bytes(u, "s2c")
      assert(s2c == u_s2c:sub(1, #s2c), fmt("leg pair %d: server bytes differ at the client", i))
      local got_at = 0
      for _, ch in ipairs(u.chunks) do
        if ch.dir == "s2c" then
          got_at = got_at + #ch.data
          if got_at > #s2c then
            assert(u.start + ch.t >= c.finish - 0.05,
              fmt("leg pair %d: server bytes at %.3f not relayed before the client left at %.3f",
                i, u.start + ch.t, c.finish))
          end
        end
      end
    end
    -- the decoded copy: the publisher's commands and every video message, on both legs
    local by = trace_by_conn(trace)
    local prs = pairs_logged(proxy.log())
    assert.are.equal(2, #prs)
    local publisher
    for _, pr in ipairs(prs) do
      for _, l in ipairs(by[pr.client]["in"]) do
        if l:find('body={"publish"', 1, true) then publisher = pr end
      end
    end
    assert(publisher, "no publish command in the trace")
    local c, u = by[publisher.client], by[publisher.upstream]
    assert.are.same(c["in"], u.out)
    assert.are.same(u["in"], c.out)
    local video = 0
    for _, l in ipairs(c["in"]) do
      if l:find(" type=video ", 1, true) then video = video + 1 end
    end
    assert.are.equal(media_file().video_tags, video)
  end)

  it("hook files: renamed key, fourCcList upstream, no Set Peer Bandwidth to the client, a delayed connect answer with an inserted command", function()
    local nginx = H.nginx_start()
    local proxy = proxy_start(nginx.url(""), {
      "--hooks", "scripts/proxy/rename_key.lua", "--set", "rename=h1=h1renamed",
      "--hooks", "scripts/proxy/fourcc_connect.lua",
      "--hooks", "scripts/proxy/drop_spb.lua",
      "--hooks", "scripts/proxy/slow_connect.lua", "--set", "delay=0.3",
      "--hooks", "spec/interop/proxy_insert.lua" })
    local cap = C.start(proxy.port, { filter = fmt("tcp port %d or tcp port %d", proxy.port, nginx.port) })
    -- the player asks nginx for the new name directly
    publish_and_play(nginx, nginx.url("live/h1renamed"), "h1renamed", proxy.url("live/h1"))
    assert.are.equal(1, nginx.count("publish", "h1renamed"))
    assert.are.equal(0, nginx.count("publish", "h1"))
    assert(H.wait_until(function() return H.count_plain(proxy.log(), "close:") == 2 end, 10), proxy.log())
    local file = C.stop(cap)
    local got = assert(capture.open(file))
    -- the player's connection to nginx came first; the proxy's upstream
    -- leg starts after its client leg
    local c, u = legs(got, proxy.port)[1], nil
    assert(c, "no client leg in the capture")
    for _, x in ipairs(legs(got, nginx.port)) do
      if x.start >= c.start then u = x end
    end
    assert(u, "no upstream leg in the capture")
    local c_in, u_out = messages(c, "c2s"), messages(u, "c2s")
    local c_out, u_in = messages(c, "s2c"), messages(u, "s2c")

    -- rename_key: the publisher said h1, nginx was told h1renamed
    assert.are.equal("h1", first_command(c_in, "publish").values[4])
    assert.are.equal("h1renamed", first_command(u_out, "publish").values[4])
    assert.are.equal("h1renamed", first_command(u_out, "FCPublish").values[4])

    -- fourcc_connect: upstream only, the rest of the connect object kept
    local c_connect, u_connect = first_command(c_in, "connect"), first_command(u_out, "connect")
    assert.is_nil(c_connect.args[1].fourCcList)
    local list = u_connect.args[1].fourCcList
    assert.are.same({ "av01", "vp09", "hvc1" }, { list[1], list[2], list[3] })
    for k, v in pairs(c_connect.args[1]) do assert.are.equal(v, u_connect.args[1][k]) end

    -- drop_spb: nginx sent it, the client never got it; tshark agrees
    assert.are.equal(1, count_type(u_in, "set_peer_bandwidth"))
    assert.are.equal(0, count_type(c_out, "set_peer_bandwidth"))
    assert.is_true(H.tshark_decode(file, nginx.port).types[6] == true, "tshark: no SPB from nginx")
    local client_leg = H.tshark_decode(file, proxy.port)
    assert.is_true(client_leg.types[20] == true, "tshark decodes commands on the client leg")
    assert.is_nil(client_leg.types[6], "tshark: SPB on the client leg")

    -- slow_connect + proxy_insert: the client got what nginx sent, in
    -- nginx's order (the delays held what came behind them), without the
    -- Set Peer Bandwidth, with onProxyNote right after the connect _result,
    -- up to when it closed (nginx's answer to its last command came later)
    local expect = {}
    for _, m in ipairs(u_in) do
      if m.type_name ~= "ack" and m.type_name ~= "set_peer_bandwidth" then
        expect[#expect + 1] = m.type_name .. (m.name and ":" .. m.name or "")
        if m.name == "_result" and m.txn == 1 then expect[#expect + 1] = "command:onProxyNote" end
      end
    end
    local seen = {}
    for _, m in ipairs(c_out) do
      if m.type_name ~= "ack" then seen[#seen + 1] = m.type_name .. (m.name and ":" .. m.name or "") end
    end
    assert.are.equal("window_ack_size", expect[1])
    assert.are.same({ table.unpack(expect, 1, #seen) }, seen)
    assert.are.equal("NetStream.Publish.Start", first_command(c_out, "onStatus").args[2].code)
    assert.are.equal("127.0.0.1:" .. nginx.port, first_command(c_out, "onProxyNote").args[2].upstream)
  end)

  it("message mode acknowledges as nginx-rtmp does: nothing to a publisher that announced no window", function()
    local function acks(url)
      local rc, out = H.run(fmt("%s spec/interop/proxy_acks.lua %s a1 7", H.shquote(H.luartmp), H.shquote(url)), 60)
      assert(rc == 0, out)
      local w, a, sent = out:match("window=(%d+) acks=(%d+) sent=(%d+)")
      assert(w, out)
      assert(tonumber(sent) > 6e6)
      return tonumber(w), tonumber(a)
    end
    -- the counting publisher sees acknowledgements where a server sends them
    local luartmp = H.luartmp_start()
    local w, a = acks(luartmp.url("live"))
    assert.are.equal(2500000, w)
    assert(a >= 2, "luartmp's live server acknowledges every 2.5 MB: " .. a)
    -- nginx-rtmp announces a window but acknowledges nothing; nor does the proxy in front of it
    local nginx = H.nginx_start()
    local proxy = proxy_start(nginx.url(""), {})
    for _, url in ipairs{ nginx.url("live"), proxy.url("live") } do
      w, a = acks(url)
      assert.are.equal(5000000, w, url .. ": Window Ack Size")
      assert.are.equal(0, a, url .. ": Acknowledgements")
    end
  end)

  it("refuses bad arguments and closes a client when the upstream is unreachable", function()
    local rc, out = H.run(fmt("%s scripts/proxy.lua --listen 127.0.0.1:1", H.shquote(H.luartmp)), 10)
    assert.are.equal(2, rc)
    assert.truthy(out:find("--upstream URL is required", 1, true))
    rc, out = H.run(fmt("%s scripts/proxy.lua --upstream rtmp://x --faithful --hooks scripts/proxy/drop_spb.lua",
      H.shquote(H.luartmp)), 10)
    assert.are.equal(2, rc)
    assert.truthy(out:find("--hooks needs message mode", 1, true))
    for _, mode in ipairs{ {}, { "--faithful" } } do
      local dead = H.free_port()
      local proxy = proxy_start(fmt("rtmp://127.0.0.1:%d", dead), mode)
      local pub = publish(proxy.url("live/x"))
      assert.are_not.equal(0, H.wait_exit(pub, 20), "the publisher ended with an error")
      assert(H.wait_until(function() return proxy.log():find("upstream: connect: Connection refused", 1, true) end, 5),
        proxy.log())
    end
  end)
end)

-- The ```lua block of docs/PROXY.md that starts with "-- NAME:".
local function doc_script(name)
  local doc = assert(H.read_file("docs/PROXY.md"))
  for block in doc:gmatch("```lua\n(.-)```") do
    if block:find("^%-%- " .. name:gsub("%.", "%%.") .. ":") then return block end
  end
  error("no " .. name .. " in docs/PROXY.md")
end

describe("docs/PROXY.md examples #nginx", function()
  after_each(H.cleanup)

  it("tee.lua relays a publish that a player gets from nginx; stamp.lua changes connect upstream and adds a command for the client", function()
    local nginx = H.nginx_start()
    local up = "127.0.0.1:" .. nginx.port
    -- tee.lua, pointed at this nginx and a free port
    local tee_port = H.free_port()
    local tee = H.tmpname("tee.lua")
    H.write_file(tee, (doc_script("tee.lua"):gsub("127%.0%.0%.1:1935", up)
      :gsub('listen = "1936"', fmt('listen = "127.0.0.1:%d"', tee_port))))
    local proc = H.spawn(fmt("%s %s", H.shquote(H.luartmp), H.shquote(tee)), { name = "tee" })
    assert(H.wait_port(tee_port, 10, proc))
    local teejob = start_pair(nginx, nginx.url("live/t1"), "t1", fmt("rtmp://127.0.0.1:%d/live/t1", tee_port))

    -- stamp.lua through proxy.lua --hooks, as the doc runs it, at the same time
    local stamp = H.tmpname("stamp.lua")
    H.write_file(stamp, doc_script("stamp.lua"))
    local trace = H.tmpname("stamp.trace")
    local proxy = proxy_start(nginx.url(""), { "--hooks", stamp, "--set", "tag=lab-3", "--trace=" .. trace })
    local stampjob = start_pair(nginx, nginx.url("live/t2"), "t2", proxy.url("live/t2"))

    teejob.finish()
    assert(H.wait_until(function() return H.output(proc):find("%d+ bytes up") end, 5), H.output(proc))
    local n = tonumber(H.output(proc):match("(%d+) bytes up"))
    assert(n > 3073 + 50000, "bytes up: " .. n)

    stampjob.finish()
    assert(H.wait_until(function() return H.count_plain(proxy.log(), "close:") == 2 end, 10), proxy.log())
    local pr = pairs_logged(proxy.log())[1]
    local by = trace_by_conn(trace)
    local function find(list, needle)
      for _, l in ipairs(list) do if l:find(needle, 1, true) then return l end end
    end
    assert.truthy(find(by[pr.upstream].out, 'proxiedBy="lab-3"'))
    assert.is_nil(find(by[pr.client]["in"], "proxiedBy"))
    assert.truthy(find(by[pr.client].out, '"onProxyNote"'))
    assert.is_nil(find(by[pr.upstream]["in"], '"onProxyNote"'))
  end)
end)
