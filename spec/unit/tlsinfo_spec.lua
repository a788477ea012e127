-- rtmp.pcap.tls and rtmp.pcap.tls_walk (core/tlsinfo.c): the hellos of
-- a TLS connection read from the first bytes of each direction, built
-- here with string.pack from the layouts of RFC 8446 (4.1.2, 4.1.3,
-- 4.2.1, 4.2.8), RFC 6066 (server_name) and RFC 7301 (ALPN); and what
-- rtmp.capture makes of a connection that is TLS.  The same readers meet
-- real peers (GnuTLS in ffmpeg, OpenSSL in stunnel and s_client) in
-- spec/interop/capture_tls_spec.lua.
local rtmp = require "rtmp"
local capture = require "rtmp.capture"

local pack, rep, concat = string.pack, string.rep, table.concat
local tls, walk = rtmp.pcap.tls, rtmp.pcap.tls_walk

local function vec8(s) return pack("s1", s) end
local function vec16(s) return pack(">s2", s) end
local function u16s(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = pack(">I2", v) end
  return concat(t)
end
local function ext(typ, data) return pack(">I2", typ) .. vec16(data) end

local HRR = "\xCF\x21\xAD\x74\xE5\x9A\x61\x11\xBE\x1D\x8C\x02\x1E\x65\xB8\x91" ..
            "\xC2\xA2\x11\x16\x7A\xBB\x8C\x5E\x07\x9E\x09\xE2\xC8\xA8\x33\x9C"

-- A handshake message: type, 24-bit length, body.
local function handshake(typ, body) return pack(">B I3", typ, #body) .. body end

-- A ClientHello; o: legacy, sid, ciphers, sni, alpn, versions, exts (more), no_ext.
local function client_hello(o)
  o = o or {}
  local exts = {}
  if o.sni then exts[#exts + 1] = ext(0, vec16("\0" .. vec16(o.sni))) end
  if o.alpn then
    local l = {}
    for i, a in ipairs(o.alpn) do l[i] = vec8(a) end
    exts[#exts + 1] = ext(16, vec16(concat(l)))
  end
  if o.versions then exts[#exts + 1] = ext(43, vec8(u16s(o.versions))) end
  for _, e in ipairs(o.exts or {}) do exts[#exts + 1] = e end
  local body = pack(">I2", o.legacy or 0x0303) .. rep("\1", 32) .. vec8(o.sid or rep("\7", 32))
    .. vec16(u16s(o.ciphers or { 0x1302, 0x1301 })) .. vec8("\0")
    .. (o.no_ext and "" or vec16(concat(exts)))
  return handshake(1, body)
end

-- A ServerHello; o: legacy, cipher, version (supported_versions), group,
-- hrr, alpn (one name), exts.
local function server_hello(o)
  o = o or {}
  local exts = {}
  if o.version then exts[#exts + 1] = ext(43, pack(">I2", o.version)) end
  if o.group then
    exts[#exts + 1] = ext(51, pack(">I2", o.group) .. (o.hrr and "" or vec16(rep("\9", 32))))
  end
  if o.alpn then exts[#exts + 1] = ext(16, vec16(vec8(o.alpn))) end
  for _, e in ipairs(o.exts or {}) do exts[#exts + 1] = e end
  local body = pack(">I2", o.legacy or 0x0303) .. (o.hrr and HRR or rep("\2", 32)) .. vec8(rep("\7", 32))
    .. pack(">I2", o.cipher or 0x1302) .. "\0" .. (#exts > 0 and vec16(concat(exts)) or "")
  return handshake(2, body)
end

-- Records of content type typ (default handshake) holding data, at most
-- size bytes each.
local function records(data, size, typ, version)
  local out = {}
  size = size or 16384
  for i = 1, #data, size do
    local frag = data:sub(i, i + size - 1)
    out[#out + 1] = pack(">B I2", typ or 22, version or 0x0301) .. vec16(frag)
  end
  return concat(out)
end

describe("rtmp.pcap.tls: a ClientHello", function()
  local hello = client_hello{ sni = "live.example.com", alpn = { "rtmp", "h2" },
    versions = { 0x3a3a, 0x0304, 0x0303 }, ciphers = { 0x1302, 0x1303, 0xC02F, 0xabcd } }
  local bytes = records(hello) .. records("\20\0\0\0", nil, 23)   -- what follows does not matter

  it("gives SNI, ALPN, the versions and cipher suites offered, the highest version", function()
    local h = assert(tls(bytes))
    assert.equal("client", h.hello)
    assert.equal("live.example.com", h.sni)
    assert.same({ "rtmp", "h2" }, h.alpn)
    -- GREASE and unknown values are shown as numbers, and GREASE is never the highest
    assert.same({ "0x3a3a", "TLS 1.3", "TLS 1.2" }, h.versions)
    assert.equal("TLS 1.3", h.version)
    assert.equal(0x0304, h.version_id)
    assert.equal("TLS 1.2", h.legacy_version)
    assert.equal("TLS 1.0", h.record_version)
    assert.same({ 0x1302, 0x1303, 0xC02F, 0xabcd }, h.ciphers)
    assert.equal(4, h.ciphers_total)
    assert.equal(3, h.extensions)
    assert.equal(5 + #hello, h.bytes)
  end)

  it("is cut short (false) at every prefix, and the same split into records of any size", function()
    for k = 0, 5 + #hello - 1 do
      assert.equal(false, tls(bytes:sub(1, k)), "prefix " .. k)
    end
    local whole = tls(bytes)
    for size = 1, #hello, 7 do
      local h = assert(tls(records(hello, size)))
      whole.bytes = h.bytes
      assert.same(whole, h, "records of " .. size)
    end
  end)

  it("without supported_versions offers up to its legacy version, and may have no extensions", function()
    local h = assert(tls(records(client_hello{ legacy = 0x0302, no_ext = true })))
    assert.equal("TLS 1.1", h.version)
    assert.is_nil(h.versions)
    assert.is_nil(h.sni)
    assert.is_nil(h.alpn)
    assert.equal(0, h.extensions)
  end)

  it("takes the first host_name of server_name", function()
    local sn = vec16("\1" .. vec16("not-a-host") .. "\0" .. vec16("first.example") .. "\0" .. vec16("second"))
    local h = assert(tls(records(client_hello{ exts = { ext(0, sn) } })))
    assert.equal("first.example", h.sni)
  end)
end)

describe("rtmp.pcap.tls: a ServerHello", function()
  it("TLS 1.3: the version from supported_versions, the cipher suite, the key_share group", function()
    local h = assert(tls(records(server_hello{ version = 0x0304, cipher = 0x1301, group = 0x001D }, nil, 22, 0x0303)))
    assert.equal("server", h.hello)
    assert.equal("TLS 1.3", h.version)
    assert.same({ "TLS 1.3" }, h.versions)
    assert.equal("TLS 1.2", h.legacy_version)
    assert.equal(0x1301, h.cipher)
    assert.equal("TLS_AES_128_GCM_SHA256", h.cipher_name)
    assert.equal("x25519", h.group)
    assert.is_false(h.hello_retry)
  end)

  it("TLS 1.2: the legacy version, the ALPN chosen, followed by more handshake messages in the record", function()
    local sh = server_hello{ cipher = 0xC030, alpn = "rtmp" }
    local h = assert(tls(records(sh .. handshake(11, rep("c", 900)) .. handshake(14, ""))))
    assert.equal("TLS 1.2", h.version)
    assert.equal("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", h.cipher_name)
    assert.same({ "rtmp" }, h.alpn)
    assert.is_nil(h.group)
    assert.is_nil(h.versions)
  end)

  it("a HelloRetryRequest: flagged, with the group asked for", function()
    local h = assert(tls(records(server_hello{ hrr = true, version = 0x0304, group = 0x0017 })))
    assert.is_true(h.hello_retry)
    assert.equal("secp256r1", h.group)
    assert.equal("TLS 1.3", h.version)
  end)

  it("names a cipher suite it does not know by its number", function()
    local h = assert(tls(records(server_hello{ cipher = 0x0a0b })))
    assert.equal("0x0a0b", h.cipher_name)
  end)
end)

describe("rtmp.pcap.tls: an alert, and what is not a hello", function()
  it("an alert in place of the hello", function()
    local h = assert(tls(pack(">B I2 s2", 21, 0x0303, "\2\40")))
    assert.equal("handshake_failure", h.alert)
    assert.equal(40, h.alert_id)
    assert.equal("fatal", h.level)
    assert.is_nil(h.hello)
    assert.equal(7, h.bytes)
  end)

  local function fails(bytes, code)
    local h, err, name = tls(bytes)
    assert.is_nil(h)
    assert.equal(code, name)
    assert.equal("string", type(err))
  end

  it("RTMP's C0 C1, and records of an unknown type, version or length, are not TLS", function()
    fails("\3" .. rep("\0", 1536), "TLS_RECORD")
    fails(pack(">B I2 s2", 25, 0x0301, "x"), "TLS_RECORD")
    fails(pack(">B I2 s2", 22, 0x0305, "x"), "TLS_RECORD")
    fails(pack(">B I2 I2", 22, 0x0301, 16384 + 2049) .. rep("x", 16384 + 2049), "TLS_RECORD")
    fails(pack(">B I2 I2", 22, 0x0301, 0), "TLS_RECORD")   -- an empty handshake record
    -- a plausible first record, then bytes that are not a record
    fails(records(client_hello():sub(1, 10)) .. "\3\0\0\0\0\0", "TLS_RECORD")
  end)

  it("a direction that starts with application data, another handshake message, or interleaves records", function()
    fails(records("secret", nil, 23), "TLS_UNEXPECTED")
    fails(records(handshake(11, "cert")), "TLS_UNEXPECTED")
    local ch = client_hello()
    fails(records(ch:sub(1, 20)) .. records("\1", nil, 20) .. records(ch:sub(21)), "TLS_UNEXPECTED")
  end)

  it("a length that runs past what holds it, or leaves bytes over", function()
    local function body_of(h) return h:sub(5) end
    local function with_body(typ, body) return records(handshake(typ, body)) end
    local ch = body_of(client_hello{ sni = "a.example", alpn = { "rtmp" }, versions = { 0x0304 } })
    -- cut after the random, inside the session id, inside the cipher suites, before compression
    for _, n in ipairs{ 34, 40, 70, 73 } do fails(with_body(1, ch:sub(1, n)), "TLS_MALFORMED") end
    -- the extensions' length one more, one less, than what is left
    local head = body_of(client_hello{ no_ext = true })
    local exts = ext(0, vec16("\0" .. vec16("a.example")))
    fails(with_body(1, head .. pack(">I2", #exts + 1) .. exts), "TLS_MALFORMED")
    fails(with_body(1, head .. pack(">I2", #exts - 1) .. exts), "TLS_MALFORMED")
    -- inside extensions: an SNI name past its list, an empty ALPN name, an odd versions list
    fails(with_body(1, head .. vec16(ext(0, vec16("\0" .. pack(">I2", 50) .. "short")))), "TLS_MALFORMED")
    fails(with_body(1, head .. vec16(ext(16, vec16("\0" .. vec8("rtmp"))))), "TLS_MALFORMED")
    fails(with_body(1, head .. vec16(ext(43, vec8("\3\4\3")))), "TLS_MALFORMED")
    -- an odd cipher suite list, no compression method, a session id over 32 bytes
    fails(with_body(1, pack(">I2", 0x0303) .. rep("\1", 32) .. vec8("") .. vec16("\19\1\19") .. vec8("\0")), "TLS_MALFORMED")
    fails(with_body(1, pack(">I2", 0x0303) .. rep("\1", 32) .. vec8("") .. vec16("\19\1") .. vec8("")), "TLS_MALFORMED")
    fails(with_body(1, pack(">I2", 0x0303) .. rep("\1", 32) .. vec8(rep("s", 33)) .. vec16("\19\1") .. vec8("\0")),
      "TLS_MALFORMED")
    -- a ServerHello's supported_versions of 4 bytes, a key_share without its key
    fails(records(server_hello{ exts = { ext(43, "\3\4\3\3") } }), "TLS_MALFORMED")
    fails(records(server_hello{ exts = { ext(51, "\0\29") } }), "TLS_MALFORMED")
    -- an alert of 3 bytes
    fails(pack(">B I2 s2", 21, 0x0303, "\2\40\0"), "TLS_MALFORMED")
  end)

  it("a hello longer than the reader holds", function()
    fails(records(pack(">B I3", 1, 40000) .. rep("x", 100)), "TLS_LIMIT")
  end)
end)

describe("rtmp.pcap.tls_walk", function()
  it("follows whole records and counts them by type; a cut last record is partial", function()
    local data = records(client_hello()) .. records("\1", nil, 20) .. records(rep("e", 300), 100, 23)
    local w = walk(data)
    assert.same({ records = 5, bytes = #data, partial = false, handshake = 1, change_cipher_spec = 1,
                  application_data = 3, alert = 0, heartbeat = 0 }, w)
    w = walk(data:sub(1, -50))
    assert.equal(4, w.records)
    assert.is_true(w.partial)
    assert.equal(#data - 49, w.bytes)
  end)

  it("stops at the first byte that is not a record header", function()
    local data = records(rep("e", 10), nil, 23)
    local w = walk(data .. "\3junk")
    assert.equal(1, w.records)
    assert.equal(#data, w.bytes)
    assert.equal(0, walk("\3" .. rep("\0", 100)).records)
  end)
end)

describe("rtmp.capture: a TLS connection", function()
  local files = {}
  local function raw_pair(c2s, s2c)
    local a, b = os.tmpname(), os.tmpname()
    files[#files + 1], files[#files + 2] = a, b
    local f = assert(io.open(a, "wb")); f:write(c2s); f:close()
    f = assert(io.open(b, "wb")); f:write(s2c); f:close()
    return assert(capture.open_raw(a, b))
  end
  teardown(function() for _, p in ipairs(files) do os.remove(p) end end)

  it("is TLS, not RTMP, says what was negotiated and why nothing decodes", function()
    local cap = raw_pair(
      records(client_hello{ sni = "rtmp.example", alpn = { "rtmp" }, versions = { 0x0304, 0x0303 } })
        .. records(rep("x", 200), nil, 23, 0x0303),
      records(server_hello{ version = 0x0304, cipher = 0x1303, group = 0x11EC }, nil, 22, 0x0303)
        .. records(rep("y", 900), nil, 23, 0x0303))
    local c = cap.conns[1]
    assert.is_false(c.rtmp)
    assert.truthy(c.tls)
    assert.equal("rtmp.example", c.tls.client.sni)
    assert.equal("TLS_CHACHA20_POLY1305_SHA256", c.tls.server.cipher_name)
    assert.equal("server chose TLS 1.3, TLS_CHACHA20_POLY1305_SHA256, group X25519MLKEM768; client offered " ..
      "SNI rtmp.example, ALPN rtmp, versions TLS 1.3 TLS 1.2, 2 cipher suites", capture.tls_summary(c))
    local list = capture.messages(c)
    assert.equal(0, #list)
    assert.equal(capture.tls_reason(c), list.error)
    assert.truthy(list.error:find("The RTMP inside (RTMPS) is encrypted and cannot be decoded", 1, true))
    assert.truthy(list.error:find(capture.TLS_ADVICE, 1, true))
    assert.same({}, capture.rtmp_conns(cap))
  end)

  it("a server that answers with an alert, a capture that ends inside the hello", function()
    local c = raw_pair(records(client_hello{ sni = "x.example" }), pack(">B I2 s2", 21, 0x0303, "\2\70")).conns[1]
    assert.equal("server answered with alert protocol_version (fatal)",
      capture.tls_summary(c):match("^the (server answered with alert [^;]+)"))
    c = raw_pair(records(client_hello{ sni = "x.example" }):sub(1, 30), "").conns[1]
    assert.truthy(c.tls)
    assert.truthy(capture.tls_summary(c):find("no ClientHello: the capture ends inside the client's hello", 1, true))
    assert.truthy(capture.tls_summary(c):find("no ServerHello: the server sent nothing", 1, true))
  end)

  it("a capture that began after the handshake: records both ways, nothing negotiated to show", function()
    local c = raw_pair(records(rep("a", 500), 100, 23, 0x0303), records(rep("b", 70), nil, 23, 0x0303)).conns[1]
    assert.truthy(c.tls and c.tls.midstream)
    assert.is_false(c.rtmp)
    assert.equal("the capture began after the TLS handshake: what was negotiated is not in it",
      capture.tls_summary(c))
  end)

  it("RTMP stays RTMP", function()
    local c0c1 = "\3" .. rep("\0", 1536)
    local c = raw_pair(c0c1 .. rep("\0", 1536), "\3" .. rep("\0", 3072)).conns[1]
    assert.is_nil(c.tls)
  end)
end)
