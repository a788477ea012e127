-- Capture inputs other than a plain pcap of the whole session, made at
-- test time from a real loopback capture (dumpcap) of ffmpeg publishing
-- to nginx-rtmp while ffmpeg plays:
-- - the packets re-wrapped (string.pack) in GTP-U, GRE, VXLAN and a nest
--   of them: tshark must see the tunnel and the RTMP inside, and
--   rtmp.capture every session with the same messages as the plain file;
-- - the raw stream pairs tshark's "follow,tcp,raw" writes (what Wireshark's
--   "Follow TCP Stream -> Save as Raw" saves): the same messages per
--   direction, and decode.lua --raw reads them;
-- - the capture cut to begin after the publisher's handshake, and in the
--   middle of its media: decoded from the first message, or from the next
--   chunk header with the bytes skipped counted.
local H = require "support.helpers"
local C = require "support.capture"
local capture = require "rtmp.capture"

local fmt, q, pack, unpack = string.format, H.shquote, string.pack, string.unpack

-- The frames of a capture: { t (seconds), data } per packet, and the link
-- type (editcap turns the pcapng into a classic pcap first).
local function frames_of(path)
  local pcap = H.tmpname("inputs-plain.pcap")
  local rc, out = H.run(fmt("editcap -F pcap %s %s", q(path), q(pcap)), 30)
  assert(rc == 0, out)
  local data = assert(H.read_file(pcap))
  local magic, _, _, _, _, _, linktype = unpack("<I4I2I2i4I4I4I4", data)
  assert(magic == 0xa1b2c3d4, "a little-endian microsecond pcap expected")
  local list, pos = {}, 25
  while pos <= #data do
    local sec, usec, caplen = unpack("<I4I4I4", data, pos)
    list[#list + 1] = { t = sec + usec / 1e6, sec = sec, usec = usec, data = data:sub(pos + 16, pos + 16 + caplen - 1) }
    pos = pos + 16 + caplen
  end
  return list, linktype
end

local function write_pcap(name, frames)
  local out = { pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1) }
  for _, f in ipairs(frames) do
    out[#out + 1] = pack("<I4I4I4I4", f.sec, f.usec, #f.data, #f.data) .. f.data
  end
  local path = H.tmpname(name)
  H.write_file(path, table.concat(out))
  return path
end

-- Outer headers.
local function ipv4(proto, payload)
  return pack(">BBI2I2I2BBI2", 0x45, 0, 20 + #payload, 0, 0x4000, 64, proto, 0) .. "\10\1\0\1\10\1\0\2" .. payload
end
local function udp(dport, payload) return pack(">I2I2I2I2", 50000, dport, 8 + #payload, 0) .. payload end
local function ether(ethertype, payload) return "\2\0\0\0\0\2\2\0\0\0\0\1" .. pack(">I2", ethertype) .. payload end
local function gtpu(teid, inner, ext)
  if not ext then return pack(">BBI2I4", 0x30, 255, #inner, teid) .. inner end
  -- sequence number, then one 4-byte extension header (PDU session container)
  local rest = pack(">I2BB", 7, 0, 0x85) .. "\1\0\1\0" .. inner
  return pack(">BBI2I4", 0x36, 255, #rest, teid) .. rest
end
local function gre(inner, key) -- key and sequence number
  return pack(">I2I2I4I4", 0x3000, 0x0800, key, 1) .. inner
end
local function vxlan(vni, frame) return pack(">BBI2I4", 0x08, 0, 0, vni << 8) .. frame end

-- The inner IPv4 packet of a loopback Ethernet frame and its TCP ports.
local function inner_ip(frame)
  local ip = frame:sub(15)
  if unpack(">I2", frame, 13) ~= 0x0800 then return ip end
  local hl = (ip:byte(1) & 0x0F) * 4
  local sport, dport = unpack(">I2I2", ip, hl + 1)
  return ip, sport, dport
end

-- Every frame re-wrapped by wrap(ip, sport, dport, frame).
local function rewrap(frames, name, wrap)
  local out = {}
  for _, f in ipairs(frames) do
    local ip, sport, dport = inner_ip(f.data)
    out[#out + 1] = { sec = f.sec, usec = f.usec, data = wrap(ip, sport, dport, f.data) }
  end
  return write_pcap(name, out)
end

-- A connection's messages, comparable: dir, type, csid, stream, timestamp, payload.
local function msgs(conn, fields)
  local list = capture.messages(conn)
  local out = { c2s = {}, s2c = {} }
  for _, e in ipairs(list) do
    local m = e.msg
    local key = fields == "body" and { m.type, m.length, m.payload }
      or { m.type, m.csid, m.stream, m.timestamp, m.payload }
    out[e.dir][#out[e.dir] + 1] = table.concat(key, "|")
  end
  return out, list
end

-- tshark's frame.protocols lines.
local function protocols(path, port)
  local rc, out = H.run(fmt("tshark -r %s -d tcp.port==%d,rtmpt -T fields -e frame.protocols 2>/dev/null",
    q(path), port), 60)
  assert(rc == 0, out)
  local set = {}
  for line in out:gmatch("[^\n]+") do set[line] = (set[line] or 0) + 1 end
  return set
end

describe("capture inputs from a real session", function()
  local plain, port, frames, ref
  after_each(H.cleanup)

  setup(function()
    local ng = H.nginx_start()
    port = ng.port
    local cap = C.start(ng.port)
    local pub = H.spawn(fmt("ffmpeg -nostdin -hide_banner -v error -re -t 3 -i %s -c copy -f flv %s",
      q(H.fixture_flv()), q(ng.url("live/inputs"))), { name = "ffmpeg-publish" })
    H.sleep(1)
    local play = H.ffmpeg_play(ng.url("live/inputs"), H.tmpname("inputs-play.flv"), 2)
    assert.are.equal(0, H.wait_exit(pub, 30), H.output(pub))
    H.wait_exit(play, 20)
    plain = C.stop(cap)
    H.cleanup()
    frames = assert(frames_of(plain))
    local c = assert(capture.open(plain))
    ref = capture.rtmp_conns(c)
    assert.are.equal(2, #ref)
    for _, conn in ipairs(ref) do
      local m, list = msgs(conn)
      assert.is_nil(list.error)
      conn.ref = m
    end
  end)

  -- tunnels: name, wrap, what tshark must show, conn.encap pattern
  local tunnels = {
    { "GTP-U, one tunnel id per session and direction", function(ip, sport, dport)
        local teid = ((sport or 0) % 4096) * 2 + (dport == port and 0 or 1)
        return ether(0x0800, ipv4(17, udp(2152, gtpu(teid, ip))))
      end, "ip:udp:gtp:ip:tcp:rtmpt", "^GTP%-U teid=0x%x+ %(server: GTP%-U teid=0x%x+%)$" },
    { "GTP-U with a sequence number and an extension header", function(ip)
        return ether(0x0800, ipv4(17, udp(2152, gtpu(0x1a2b, ip, true))))
      end, ":gtp:ip:tcp:rtmpt", "^GTP%-U teid=0x1a2b$" },
    { "GRE with key and sequence number", function(ip)
        return ether(0x0800, ipv4(47, gre(ip, 0x5)))
      end, "ip:gre:ip:tcp:rtmpt", "^GRE key=0x5$" },
    { "VXLAN", function(_, _, _, frame)
        return ether(0x0800, ipv4(17, udp(4789, vxlan(42, frame))))
      end, "udp:vxlan:eth:ethertype:ip:tcp:rtmpt", "^VXLAN vni=42$" },
    { "VXLAN inside GRE inside GTP-U", function(_, _, _, frame)
        local v = ipv4(17, udp(4789, vxlan(7, frame)))
        return ether(0x0800, ipv4(17, udp(2152, gtpu(9, ipv4(47, gre(v, 3))))))
      end, "gtp:ip:gre:ip:udp:vxlan:eth:ethertype:ip:tcp:rtmpt", "^GTP%-U teid=0x9 / GRE key=0x3 / VXLAN vni=7$" },
  }
  for _, tun in ipairs(tunnels) do
    it("lists and decodes every session in " .. tun[1] .. ", as tshark sees it", function()
      local path = rewrap(frames, "inputs-tunnel.pcap", tun[2])
      -- (a) tshark reads the file and finds the tunnel and RTMP inside it
      local seen = 0
      for line, n in pairs(protocols(path, port)) do
        if line:find(tun[3], 1, true) then seen = seen + n end
      end
      assert.is_true(seen >= 20, "frames with " .. tun[3] .. ": " .. seen)
      -- (b) every session, the same messages as the plain capture
      local cap = assert(capture.open(path))
      local conns = capture.rtmp_conns(cap)
      assert.are.equal(#ref, #conns)
      for i, conn in ipairs(conns) do
        assert.are.equal(ref[i].client, conn.client)
        assert.are.equal(ref[i].server, conn.server)
        assert.truthy(conn.encap and conn.encap:match(tun[4]), tostring(conn.encap))
        local m, list = msgs(conn)
        assert.is_nil(list.error)
        assert.are.same(ref[i].ref, m)
      end
      -- decode.lua --list names the tunnel
      local rc, out = H.run(fmt("%s scripts/tools/decode.lua %s --list", q(H.luartmp), q(path)), 30)
      assert.are.equal(0, rc, out)
      assert.are.equal(2, H.count_plain(out, " rtmp "), out)
      assert.truthy(out:find("(in " .. cap.conns[1].encap, 1, true), out)
    end)
  end

  it("reads the raw stream pairs tshark's follow,tcp,raw writes, with --raw in decode.lua", function()
    for i, conn in ipairs(ref) do
      local rc, out = H.run(fmt("tshark -r %s -q -z follow,tcp,raw,%d 2>/dev/null", q(plain), i - 1), 60)
      assert(rc == 0, out)
      local node0 = out:match("Node 0: (%S+)")
      assert.are.equal(conn.client, node0)
      local parts = { c = {}, s = {} }
      local body = out:match("Node 1: [^\n]*\n(.*)\n=+")
      for line in body:gmatch("[^\n]+") do
        local side = line:sub(1, 1) == "\t" and "s" or "c"
        local hex = line:gsub("%s", "")
        parts[side][#parts[side] + 1] = (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
      end
      local cfile, sfile = H.tmpname("inputs-client.raw"), H.tmpname("inputs-server.raw")
      H.write_file(cfile, table.concat(parts.c))
      H.write_file(sfile, table.concat(parts.s))
      local cap = assert(capture.open_raw(cfile, sfile))
      local c = cap.conns[1]
      assert.is_true(c.rtmp and c.raw_pair)
      assert.are.same(conn.bytes, c.bytes)
      local m, list = msgs(c)
      assert.is_nil(list.error)
      assert.are.same(conn.ref, m)
      -- every _result comes after the request it answers
      local asked = {}
      for _, e in ipairs(list) do
        local v = e.msg.values
        if e.dir == "c2s" and e.msg.name and v and type(v[2]) == "number" then asked[v[2]] = true end
        if e.dir == "s2c" and e.msg.name == "_result" then
          assert.is_true(asked[v[2]], "_result " .. tostring(v[2]) .. " before its request")
        end
      end
      local drc, dout = H.run(fmt("%s scripts/tools/decode.lua --raw %s %s", q(H.luartmp), q(cfile), q(sfile)), 30)
      assert.are.equal(0, drc, dout)
      assert.are.equal(#list, H.count_plain(dout, " conn=1 "))
      -- a raw file given as a capture: the error says to use --raw
      drc, dout = H.run(fmt("%s scripts/tools/decode.lua %s", q(H.luartmp), q(cfile)), 30)
      assert.are.equal(1, drc)
      assert.truthy(dout:find("use --raw CLIENT_FILE SERVER_FILE", 1, true), dout)
    end
  end)

  -- The publisher's packets with those before `keep` (given the stream
  -- offsets the packet starts at per direction) left out; the player's
  -- connection is left out too.
  local function cut(name, keep)
    local pub = ref[1]
    local cport = tonumber(pub.client:match(":(%d+)$"))
    local isn, out = {}, {}
    for _, f in ipairs(frames) do
      local ip, sport, dport = inner_ip(f.data)
      if sport == cport or dport == cport then
        local hl = (ip:byte(1) & 0x0F) * 4
        local seq, flags = unpack(">I4", ip, hl + 5), ip:byte(hl + 14)
        local dir = sport == cport and "c2s" or "s2c"
        if flags & 0x02 ~= 0 then isn[dir] = seq + 1 end
        local off = isn[dir] and (seq - isn[dir]) % 2^32 or 0
        local plen = #ip - hl - (ip:byte(hl + 13) >> 4) * 4
        local k = keep(dir, off, plen, f)
        if k then out[#out + 1] = k == true and f or k end
      end
    end
    return write_pcap(name, out)
  end

  it("decodes the publisher from its first message when the capture starts after the handshake", function()
    local started = false
    local path = cut("inputs-after-handshake.pcap", function(dir, off, plen)
      -- from the first packet holding bytes past either handshake (3073 bytes each way)
      if not started and plen > 0 and off + plen > 3073 then started = true end
      return started and not (plen > 0 and off + plen <= 3073)
    end)
    local cap = assert(capture.open(path))
    assert.are.equal(1, #cap.conns)
    local c = cap.conns[1]
    assert.is_true(c.rtmp)
    assert.is_true(c.handshake_missing)
    local m, list = msgs(c)
    assert.is_nil(list.error)
    assert.are.same(ref[1].ref, m)
    local rc, out = H.run(fmt("%s scripts/tools/decode.lua %s --list", q(H.luartmp), q(path)), 30)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("no handshake in the capture", 1, true), out)
  end)

  -- The frame with the first n bytes of its TCP payload left out (the
  -- IPv4 length and the sequence number follow).
  local function trim(f, n)
    local ip = f.data:sub(15)
    local hl = (ip:byte(1) & 0x0F) * 4
    local thl = (ip:byte(hl + 13) >> 4) * 4
    local seq = unpack(">I4", ip, hl + 5)
    local payload = ip:sub(hl + thl + 1 + n)
    local tcp = ip:sub(hl + 1, hl + 4) .. pack(">I4", (seq + n) % 2^32) .. ip:sub(hl + 9, hl + thl)
    ip = ip:sub(1, 2) .. pack(">I2", hl + #tcp + #payload) .. ip:sub(5, hl) .. tcp .. payload
    return { sec = f.sec, usec = f.usec, t = f.t, data = f.data:sub(1, 14) .. ip }
  end

  it("resynchronises on the publisher's media when the capture starts mid-message", function()
    -- from the middle of the first big client packet 60 % into its
    -- stream, and every packet after it
    local total, from_t = ref[1].bytes.c2s, nil
    local path = cut("inputs-mid-media.pcap", function(dir, off, plen, f)
      if not from_t and dir == "c2s" and plen >= 400 and off >= total * 0.6 then
        from_t = f.t
        return trim(f, plen // 2)
      end
      return from_t ~= nil and f.t >= from_t
    end)
    local c = assert(capture.open(path)).conns[1]
    assert.is_true(c.rtmp and c.handshake_missing)
    local m, list = msgs(c, "body")
    assert.is_nil(list.error)
    assert.is_true(list.skipped.c2s > 0, "bytes skipped: " .. list.skipped.c2s)
    -- what is decoded is the end of what the publisher sent, message for message
    local want = {}
    for _, e in ipairs(capture.messages(ref[1])) do
      if e.dir == "c2s" then want[#want + 1] = table.concat({ e.msg.type, e.msg.length, e.msg.payload }, "|") end
    end
    local got = m.c2s
    assert.is_true(#got >= 20 and #got < #want * 0.5, #got .. " of " .. #want)
    local off = #want - #got
    for i = 1, #got do assert.are.equal(want[off + i], got[i], "message " .. i) end
    local rc, out = H.run(fmt("%s scripts/tools/decode.lua %s", q(H.luartmp), q(path)), 30)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find(fmt("%d bytes of the client's stream skipped", list.skipped.c2s), 1, true), out)
  end)
end)
