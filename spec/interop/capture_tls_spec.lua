-- Captures of RTMPS: stunnel4 (OpenSSL) as a TLS front for luartmp's
-- live server, ffmpeg (GnuTLS) publishing to rtmps:// through it, and
-- openssl s_client offering ALPN, then TLS 1.2 only; dumpcap captures
-- both the TLS side and the plain side of the front.  decode.lua,
-- capture2lua and their --list say which connections are TLS and what
-- the cleartext handshake negotiated (SNI, ALPN, versions offered; the
-- version, cipher suite and group chosen), exactly as tshark's TLS
-- dissector reads the same capture; they refuse to decode the RTMP
-- inside (exit 1, the reason, what to capture instead; capture2lua
-- writes nothing), and the plain side of the front decodes.
local H = require "support.helpers"
local C = require "support.capture"
local T = require "support.tls"
local MX = require "support.matrix"
local capture = require "rtmp.capture"

local fmt, q = string.format, H.shquote

local function tool(name, args)
  return H.run(fmt("%s scripts/tools/%s %s", q(H.luartmp), name, args), 60)
end

local function split(s, sep)
  local out = {}
  for v in (s or ""):gmatch("[^" .. sep .. "]+") do out[#out + 1] = v end
  return out
end

-- tshark's TLS dissector on the front's port: per client port, the
-- ClientHello's SNI, ALPN, offered versions and cipher suites, and the
-- ServerHello's cipher suite (number and name) and version.
local function tshark_hellos(path, port)
  local base = fmt("tshark -r %s -d tcp.port==%d,tls ", q(path), port)
  local rc, out = H.run(base .. "-Y 'tls.handshake.type == 1 || tls.handshake.type == 2' -T fields " ..
    "-E separator=/t -e tcp.srcport -e tcp.dstport -e tls.handshake.type " ..
    "-e tls.handshake.extensions_server_name -e tls.handshake.ciphersuite " ..
    "-e tls.handshake.extensions.supported_version -e tls.handshake.extensions_alpn_str " ..
    "-e tls.handshake.version 2>/dev/null", 60)
  assert.equal(0, rc, out)
  local res = {}
  local function of(cport)
    res[cport] = res[cport] or {}
    return res[cport]
  end
  for line in out:gmatch("[^\n]+") do
    local f = {}
    for v in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = v end
    local sport, dport, types = tonumber(f[1]), tonumber(f[2]), split(f[3], ",")
    if types[1] == "1" then
      local c = of(sport)
      c.sni, c.alpn, c.versions = f[4] ~= "" and f[4] or nil, f[7] ~= "" and f[7] or nil, split(f[6], ",")
      c.ciphers = {}
      for i, h in ipairs(split(f[5], ",")) do c.ciphers[i] = tonumber(h) end
    elseif types[1] == "2" then
      local s = of(dport)
      s.cipher = tonumber(f[5])
      -- TLS 1.3: supported_versions; TLS 1.2: the ServerHello's version
      s.version = tonumber(f[6] ~= "" and f[6] or split(f[8], ",")[1])
    end
  end
  -- the names Wireshark gives the chosen suites and versions
  rc, out = H.run(base .. "-Y 'tls.handshake.type == 2' -V 2>/dev/null", 60)
  assert.equal(0, rc, out)
  local dport
  for line in out:gmatch("[^\n]+") do
    dport = tonumber(line:match("Transmission Control Protocol, Src Port: %d+, Dst Port: (%d+)")) or dport
    local name, hex = line:match("^%s+Cipher Suite: (%S+) %((0x%x+)%)")
    if name then of(dport).cipher_name, of(dport).cipher_hex = name, tonumber(hex) end
  end
  return res
end

-- The line of text that starts with prefix.
local function line_of(text, prefix)
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #prefix) == prefix then return line end
  end
  error("no line starting with " .. prefix .. " in:\n" .. text)
end

-- Wireshark's names of TLS versions, for its "0x0304" fields.
local VERSION = { [0x0301] = "TLS 1.0", [0x0302] = "TLS 1.1", [0x0303] = "TLS 1.2", [0x0304] = "TLS 1.3" }

describe("captures of RTMPS through a TLS front #tls", function()
  local dir, both, tls_only, front, srv

  setup(function()
    dir = H.mkdir(H.tmpname("tls-capture"))
    srv = H.luartmp_start{ log_level = "info" }
    front = T.stunnel_start(srv.port)
    -- one capture of both sides of the front, one of the TLS side alone
    local cap = C.start(front.port, { filter = fmt("tcp port %d or tcp port %d", front.port, srv.port) })
    local cap2 = C.start(front.port, { name = "tls-only" })
    local rc, out = H.run(fmt("ffmpeg -nostdin -hide_banner -v error -re -i %s -c copy -f flv %s",
      q(MX.fixture()), q(front.url("live/tlscap"))), 60)
    assert(rc == 0, out)
    rc, out = H.run(fmt("openssl s_client -connect 127.0.0.1:%d -servername sni.example -alpn rtmp,x-other " ..
      "</dev/null", front.port), 20)
    assert(rc == 0, out)
    rc, out = H.run(fmt("openssl s_client -connect 127.0.0.1:%d -servername old.example -tls1_2 </dev/null",
      front.port), 20)
    assert(rc == 0, out)
    both = C.stop(cap)
    -- (no tshark agreement check: the TLS side holds no RTMP tshark or we could decode)
    tls_only = C.stop(cap2, { agree = false })
  end)
  teardown(function() H.cleanup() end)

  it("--list shows each TLS connection's handshake as tshark reads it", function()
    local theirs = tshark_hellos(both, front.port)
    local cap = assert(capture.open(both))
    local rc, out = tool("decode.lua", q(both) .. " --list")
    assert.equal(0, rc, out)
    local rc2, out2 = tool("capture2lua.lua", q(both) .. " --list")
    assert.equal(0, rc2, out2)
    local seen, snis = 0, {}
    for _, c in ipairs(cap.conns) do
      local cport = tonumber(c.client:match(":(%d+)$"))
      if c.server:match(":(%d+)$") == tostring(front.port) then
        seen = seen + 1
        local t, want = c.tls, theirs[cport]
        assert.truthy(t and want, "connection " .. c.id)
        assert.is_false(c.rtmp)
        local ch, sh = t.client, t.server
        assert.equal("client", ch.hello)
        assert.equal(want.sni, ch.sni)
        assert.equal(want.alpn, ch.alpn and table.concat(ch.alpn, ","))
        assert.same(want.ciphers, ch.ciphers)
        local versions = {}
        for i, v in ipairs(want.versions) do versions[i] = VERSION[tonumber(v)] end
        assert.same(versions, ch.versions or {})
        assert.equal("server", sh.hello)
        assert.equal(want.cipher, sh.cipher)
        assert.equal(want.cipher_name, sh.cipher_name)
        assert.equal(want.version, sh.version_id)
        snis[#snis + 1] = ch.sni
        -- the same facts in both tools' lines for the connection
        local line = line_of(out, c.id .. " ")
        assert.truthy(line:find(fmt(" tls %d/%d bytes (server chose %s, %s", c.bytes.c2s, c.bytes.s2c,
          VERSION[want.version], want.cipher_name), 1, true), line)
        assert.truthy(line:find(fmt("client offered SNI %s, ALPN %s", want.sni,
          want.alpn and want.alpn:gsub(",", " ") or "none"), 1, true), line)
        assert.truthy(line:find("; encrypted)", 1, true), line)
        local line2 = line_of(out2, c.id .. "  ")
        assert.truthy(line2:find("TLS (" .. capture.tls_summary(c) .. "; encrypted)", 1, true), line2)
      else
        assert.is_nil(c.tls)
      end
    end
    assert.equal(3, seen, out)
    table.sort(snis)
    assert.same({ "localhost", "old.example", "sni.example" }, snis)
    -- what each peer negotiated: ffmpeg and s_client TLS 1.3, -tls1_2 TLS 1.2 with an ECDHE suite
    assert.truthy(out:find("SNI localhost, ALPN none, versions TLS 1.3", 1, true), out)
    assert.truthy(out:find("ALPN rtmp x-other", 1, true), out)
    assert.truthy(out:find("server chose TLS 1.2, TLS_ECDHE_", 1, true), out)
    -- the plain side of the front is RTMP, and says what was published
    assert.truthy(out2:find("  RTMP  connect releaseStream FCPublish createStream publish", 1, true), out2)
  end)

  it("decode.lua refuses the TLS connections with the reason and decodes the plain side", function()
    local cap = assert(capture.open(both))
    local tls_id, plain_id
    for _, c in ipairs(cap.conns) do
      if c.tls and c.tls.client.sni == "localhost" then tls_id = c.id end
      if c.rtmp then plain_id = c.id end
    end
    assert.truthy(tls_id and plain_id)
    local rc, out = tool("decode.lua", fmt("%s --connection %d", q(both), tls_id))
    assert.equal(1, rc, out)
    assert.truthy(out:find(fmt("decode.lua: connection %d: TLS: server chose TLS 1.3", tls_id), 1, true), out)
    assert.truthy(out:find("The RTMP inside (RTMPS) is encrypted and cannot be decoded from this capture; " ..
      "for a capture that decodes, capture on the plain side of the TLS front", 1, true), out)
    assert.falsy(out:find(" conn=", 1, true), out)
    -- the whole capture: the plain connection decodes (ffmpeg's publish), the TLS ones are refused
    rc, out = tool("decode.lua", q(both))
    assert.equal(1, rc, out)
    assert.truthy(out:find(fmt('conn=%d in csid=%%d+ fmt=%%d type=command stream=1 ts=0 len=%%d+ body={"publish", %%d+, ' ..
      'rtmp.null, "tlscap", "live"}', plain_id)), out)
    assert.equal(3, H.count_plain(out, "is encrypted and cannot be decoded"), out)
  end)

  it("capture2lua writes no script for a TLS connection, nor for a capture of the TLS side only", function()
    local cap = assert(capture.open(tls_only))
    assert.equal(0, #capture.rtmp_conns(cap))
    local script = dir .. "/tls.lua"
    local rc, out = tool("capture2lua.lua", fmt("%s -o %s", q(tls_only), q(script)))
    assert.equal(1, rc, out)
    assert.truthy(out:find("): TLS: server chose TLS 1.3", 1, true), out)
    assert.truthy(out:find("is encrypted and cannot be decoded from this capture", 1, true), out)
    assert.truthy(out:find("; nothing written", 1, true), out)
    assert.is_nil(H.file_size(script))
    rc, out = tool("capture2lua.lua", fmt("%s --connection 2 --side client -o %s", q(tls_only), q(script)))
    assert.equal(1, rc, out)
    assert.truthy(out:find("capture2lua: connection 2 (", 1, true), out)
    assert.is_nil(H.file_size(script))
    rc, out = tool("decode.lua", q(tls_only))
    assert.equal(1, rc, out)
    assert.equal(3, H.count_plain(out, "is encrypted and cannot be decoded"), out)
  end)
end)
