-- The handshake object: client/server pairs in every combination, fed at
-- every split size; digests checked independently of our C code by the
-- openssl command line; bad versions; nothing consumed past the end.
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local SIZE = 1536
local KEY_TAIL = string.char(
  0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0,
  0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80,
  0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE)
local PLAYER_KEY = "Genuine Adobe Flash Player 001"
local SERVER_KEY = "Genuine Adobe Flash Media Server 001"

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

-- HMAC-SHA256 by the openssl command line, over a temporary file.
local function openssl_hmac(key, data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local p = assert(io.popen(("openssl dgst -sha256 -mac HMAC -macopt hexkey:%s -binary %s")
    :format(hex(key), path), "r"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  assert(#out == 32, "openssl did not give a 32-byte HMAC")
  return out
end

-- Digest offset (1-based index into the 1536-byte packet) in layout 1 or 2.
local function digest_pos(pkt, layout)
  local base = layout == 1 and 8 or 772
  local a, b, c, d = pkt:byte(base + 1, base + 4)
  return (a + b + c + d) % 728 + base + 4 + 1
end

-- The digest at layout, and what openssl says it should be.
local function digest_check(pkt, layout, short_key)
  local at = digest_pos(pkt, layout)
  local digest = pkt:sub(at, at + 31)
  local rest = pkt:sub(1, at - 1) .. pkt:sub(at + 32)
  return digest, openssl_hmac(short_key, rest)
end

-- Last 32 bytes of a C2/S2, and what openssl says the response to
-- `answered` (a 32-byte digest) keyed with long_key should be.
local function response_check(pkt, long_key, answered)
  local k = openssl_hmac(long_key, answered)
  return pkt:sub(SIZE - 31), openssl_hmac(k, pkt:sub(1, SIZE - 32))
end

-- Feed bytes to hs in pieces of size k.  Returns the total consumed,
-- the concatenated replies and the index (in pieces) of each reply.
local function feed_pieces(hs, bytes, k)
  local used, replies, when = 0, {}, {}
  local i = 1
  while i <= #bytes do
    local piece = bytes:sub(i, i + k - 1)
    local n, reply = hs:feed(piece)
    assert(n, reply)
    assert(n <= #piece)
    used = used + n
    if #reply > 0 then
      replies[#replies + 1] = reply
      when[#when + 1] = i + n - 1       -- last input byte that completed it
    end
    i = i + #piece
  end
  return used, table.concat(replies), when
end

-- One whole exchange with the given options, every stream fed in pieces
-- of size k, trailing bytes after C2.  Returns a record of what happened.
local function exchange(copts, sopts, k, trailer)
  local c = rtmp.handshake("client", copts)
  local s = rtmp.handshake("server", sopts)
  local c01 = c:start()
  assert.are.equal(1 + SIZE, #c01)
  assert.are.equal(3, c01:byte(1))

  local n, s012, when = feed_pieces(s, c01, k)
  assert.are.equal(1 + SIZE, n)
  assert.are.equal(1 + 2 * SIZE, #s012)
  assert.are.same({ 1 + SIZE }, when)             -- answered as C1 completed
  assert.is_false(s:done())

  local n2, c2, when2 = feed_pieces(c, s012, k)
  assert.are.equal(1 + 2 * SIZE, n2)
  assert.are.equal(SIZE, #c2)
  assert.are.same({ 1 + 2 * SIZE }, when2)
  assert.is_true(c:done())

  local n3, none = feed_pieces(s, c2 .. (trailer or ""), k)
  assert.are.equal(SIZE, n3)                       -- the trailer is left alone
  assert.are.equal("", none)
  assert.is_true(s:done())

  return {
    c1 = c01:sub(2), s1 = s012:sub(2, 1 + SIZE), s2 = s012:sub(2 + SIZE), c2 = c2,
    client_sees = c:peer_kind(), server_sees = s:peer_kind(),
    client_verified = c:peer_verified(), server_verified = s:peer_verified(),
  }
end

-- Every split size: from one byte at a time up to the longest stream
-- (S0S1S2, 3073 bytes) plus one.
local function split_sizes()
  local sizes = {}
  for k = 1, 1 + 2 * SIZE + 1 do sizes[k] = k end
  return sizes
end

local pairs_under_test = {
  { name = "digest layout 1 client vs server", c = {}, s = {},
    client_sees = "digest1", server_sees = "digest1", client_verified = true, server_verified = true },
  { name = "digest layout 2 client vs server", c = { layout = 2 }, s = {},
    client_sees = "digest2", server_sees = "digest2", client_verified = true, server_verified = true },
  { name = "plain client vs server", c = { plain = true }, s = {},
    client_sees = "plain", server_sees = "plain", client_verified = true, server_verified = true },
  { name = "digest client vs plain-only server", c = {}, s = { plain = true },
    client_sees = "plain", server_sees = "digest1", client_verified = false, server_verified = true },
  { name = "layout 2 client vs plain-only server", c = { layout = 2 }, s = { plain = true },
    client_sees = "plain", server_sees = "digest2", client_verified = false, server_verified = true },
  { name = "plain client vs plain-only server", c = { plain = true }, s = { plain = true },
    client_sees = "plain", server_sees = "plain", client_verified = true, server_verified = true },
}

describe("rtmp.handshake", function()
  for _, p in ipairs(pairs_under_test) do
    it(p.name .. ", fed at every split size", function()
      for _, k in ipairs(split_sizes()) do
        local r = exchange(p.c, p.s, k, "\3\0\0\0trailing chunk bytes")
        assert.are.equal(p.client_sees, r.client_sees, "split " .. k)
        assert.are.equal(p.server_sees, r.server_sees, "split " .. k)
        assert.are.equal(p.client_verified, r.client_verified, "split " .. k)
        assert.are.equal(p.server_verified, r.server_verified, "split " .. k)
      end
    end)
  end

  it("splits C0C1 at every byte boundary (two pieces)", function()
    local c = rtmp.handshake("client")
    local c01 = c:start()
    for cut = 0, #c01 do
      local s = rtmp.handshake("server")
      local n1, r1 = s:feed(c01:sub(1, cut))
      local n2, r2 = s:feed(c01:sub(cut + 1))
      assert.are.equal(cut, n1)
      assert.are.equal(#c01 - cut, n2)
      assert.are.equal(cut == #c01 and 1 + 2 * SIZE or 0, #r1)
      assert.are.equal(cut == #c01 and 0 or 1 + 2 * SIZE, #r2)
      assert.are.equal("digest1", s:peer_kind())
    end
  end)

  describe("digests checked by the openssl command line", function()
    for layout = 1, 2 do
      it("client C1 carries a layout " .. layout .. " digest and the version 9.0.124.2", function()
        local c1 = rtmp.handshake("client", { layout = layout }):start():sub(2)
        assert.are.same({ 9, 0, 124, 2 }, { c1:byte(5, 8) })
        local digest, expected = digest_check(c1, layout, PLAYER_KEY)
        assert.are.equal(hex(expected), hex(digest))
      end)

      it("server answers a layout " .. layout .. " client with a digest S1 and S2", function()
        local r = exchange({ layout = layout }, {}, 4096)
        assert.are_not.same({ 0, 0, 0, 0 }, { r.s1:byte(5, 8) })
        assert.is_true(r.s1:byte(5) >= 3)          -- ffmpeg checks S1 only then
        local digest, expected = digest_check(r.s1, layout, SERVER_KEY)
        assert.are.equal(hex(expected), hex(digest))
        -- S2: keyed from the client's C1 digest with the server's long key.
        local at = digest_pos(r.c1, layout)
        local tail, want = response_check(r.s2, SERVER_KEY .. KEY_TAIL, r.c1:sub(at, at + 31))
        assert.are.equal(hex(want), hex(tail))
        -- C2: keyed from the server's S1 digest with the player's long key.
        local at1 = digest_pos(r.s1, layout)
        local tail2, want2 = response_check(r.c2, PLAYER_KEY .. KEY_TAIL, r.s1:sub(at1, at1 + 31))
        assert.are.equal(hex(want2), hex(tail2))
      end)
    end

    it("recognizes a C1 signed outside our code (layout 2)", function()
      -- Build a C1 by hand: time, a version, filler, digest by openssl.
      local filler = {}
      for i = 1, SIZE - 8 do filler[i] = string.char((i * 7 + 13) % 256) end
      local c1 = string.pack(">I4", 1234) .. "\10\0\45\2" .. table.concat(filler)
      local at = digest_pos(c1, 2)
      local rest = c1:sub(1, at - 1) .. c1:sub(at + 32)
      c1 = c1:sub(1, at - 1) .. openssl_hmac(PLAYER_KEY, rest) .. c1:sub(at + 32)
      local s = rtmp.handshake("server")
      local n, reply = s:feed("\3" .. c1)
      assert.are.equal(1 + SIZE, n)
      assert.are.equal("digest2", s:peer_kind())
      local s1 = reply:sub(2, 1 + SIZE)
      local digest, expected = digest_check(s1, 2, SERVER_KEY)
      assert.are.equal(hex(expected), hex(digest))
    end)

    it("a server takes a C2 signed outside our code as verified", function()
      local c1 = rtmp.handshake("client"):start()
      local s = rtmp.handshake("server")
      local _, s012 = s:feed(c1)
      local s1 = s012:sub(2, 1 + SIZE)
      local at = digest_pos(s1, 1)
      local body = ("\90"):rep(SIZE - 32)
      local k = openssl_hmac(PLAYER_KEY .. KEY_TAIL, s1:sub(at, at + 31))
      local n = s:feed(body .. openssl_hmac(k, body))
      assert.are.equal(SIZE, n)
      assert.is_true(s:done())
      assert.is_true(s:peer_verified())
    end)
  end)

  describe("plain peers", function()
    it("a plain C1 gets a plain S1 and an S2 that echoes C1", function()
      local r = exchange({ plain = true }, {}, 4096)
      assert.are.same({ 0, 0, 0, 0 }, { r.c1:byte(5, 8) })
      assert.are.same({ 0, 0, 0, 0 }, { r.s1:byte(5, 8) })
      assert.are.equal(r.c1, r.s2)
      assert.are.equal(r.s1, r.c2)                  -- the client echoes S1
    end)

    it("a C1 with a version but no valid digest is plain", function()
      local c1 = "\0\0\0\0\9\0\124\2" .. ("\171"):rep(SIZE - 8)
      local s = rtmp.handshake("server")
      local _, reply = s:feed("\3" .. c1)
      assert.are.equal("plain", s:peer_kind())
      assert.are.same({ 0, 0, 0, 0 }, { reply:byte(6, 9) })
      assert.are.equal(c1, reply:sub(2 + SIZE))
    end)

    it("a C1 with a valid digest but a zero version is plain", function()
      local body = ("\7"):rep(SIZE - 8)
      local c1 = "\0\0\0\0\0\0\0\0" .. body
      local at = digest_pos(c1, 1)
      c1 = c1:sub(1, at - 1) .. openssl_hmac(PLAYER_KEY, c1:sub(1, at - 1) .. c1:sub(at + 32)) .. c1:sub(at + 32)
      local s = rtmp.handshake("server")
      local _, reply = s:feed("\3" .. c1)
      assert.are.equal("plain", s:peer_kind())
      assert.are.equal(c1, reply:sub(2 + SIZE))
    end)

    it("a server does not reject a junk C2 but records it did not verify", function()
      for _, copts in ipairs { {}, { plain = true } } do
        local c = rtmp.handshake("client", copts)
        local s = rtmp.handshake("server")
        s:feed(c:start())
        local n = s:feed(("\0"):rep(SIZE))
        assert.are.equal(SIZE, n)
        assert.is_true(s:done())
        assert.is_false(s:peer_verified())
      end
    end)

    it("a client whose S2 does not verify goes on, recording it", function()
      local c = rtmp.handshake("client")
      local s = rtmp.handshake("server")
      local _, s012 = s:feed(c:start())
      local n, c2 = c:feed(s012:sub(1, 1 + SIZE) .. ("\1"):rep(SIZE))
      assert.are.equal("digest1", c:peer_kind())
      assert.are.equal(1 + 2 * SIZE, n)
      assert.are.equal(SIZE, #c2)
      assert.is_true(c:done())
      assert.is_false(c:peer_verified())
    end)
  end)

  describe("versions", function()
    local function expect_version_error(hs, bytes)
      local n, msg, code = hs:feed(bytes)
      assert.is_nil(n)
      assert.are.equal("HS_VERSION", code)
      assert.are.equal("unsupported handshake version", msg)
      -- sticky
      local n2, _, code2 = hs:feed("\3")
      assert.is_nil(n2)
      assert.are.equal("HS_VERSION", code2)
      assert.is_false(hs:done())
    end

    it("refuses C0 = 6 (RTMPE)", function()
      expect_version_error(rtmp.handshake("server"), "\6" .. ("\0"):rep(SIZE))
    end)

    it("refuses an HTTP request", function()
      expect_version_error(rtmp.handshake("server"), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    end)

    it("refuses an S0 other than 3", function()
      local c = rtmp.handshake("client")
      c:start()
      expect_version_error(c, "\6")
    end)

    it("takes nothing before C0 arrives", function()
      local s = rtmp.handshake("server")
      local n, reply = s:feed("")
      assert.are.equal(0, n)
      assert.are.equal("", reply)
      assert.are.equal("unknown", s:peer_kind())
    end)
  end)

  describe("the end of the handshake", function()
    it("consumes nothing after C2, and nothing on later calls", function()
      local c = rtmp.handshake("client")
      local s = rtmp.handshake("server")
      local _, s012 = s:feed(c:start())
      local _, c2 = c:feed(s012)
      local chunks = "\2\0\0\0\0\0\4\1\0\0\0\0\0\0\16\0"
      local n, reply = s:feed(c2 .. chunks)
      assert.are.equal(SIZE, n)
      assert.are.equal("", reply)
      assert.is_true(s:done())
      assert.are.equal(0, (s:feed(chunks)))
      assert.are.equal(0, (c:feed(chunks)))
    end)

    it("a client consumes nothing after S2", function()
      local c = rtmp.handshake("client")
      local _, s012 = rtmp.handshake("server"):feed(c:start())
      local n, c2 = c:feed(s012 .. "\3more")
      assert.are.equal(1 + 2 * SIZE, n)
      assert.are.equal(SIZE, #c2)
    end)
  end)

  describe("the object", function()
    it("sends random bytes: two C1s differ", function()
      local a = rtmp.handshake("client"):start()
      local b = rtmp.handshake("client"):start()
      assert.are_not.equal(a:sub(10), b:sub(10))
    end)

    it("a server's start sends nothing", function()
      assert.are.equal("", rtmp.handshake("server"):start())
    end)

    it("a client must start before it is fed, and only once", function()
      local c = rtmp.handshake("client")
      local n, _, code = c:feed("\3")
      assert.is_nil(n)
      assert.are.equal("INVAL", code)
      local c2 = rtmp.handshake("client")
      c2:start()
      local s, _, code2 = c2:start()
      assert.is_nil(s)
      assert.are.equal("INVAL", code2)
    end)

    it("raises on misuse", function()
      assert.has_error(function() rtmp.handshake("peer") end)
      assert.has_error(function() rtmp.handshake("client", { layout = 3 }) end)
      assert.has_error(function() rtmp.handshake("client", 5) end)
      assert.has_error(function() rtmp.handshake("server"):feed() end)
    end)

    it("closes idempotently; a closed object raises", function()
      local hs = rtmp.handshake("server")
      assert.matches("^rtmp.handshake %(server", tostring(hs))
      hs:close()
      hs:close()
      assert.are.equal("rtmp.handshake (closed)", tostring(hs))
      assert.has_error(function() hs:feed("\3") end, "attempt to use a closed handshake")
      do
        local scoped <close> = rtmp.handshake("client")
        scoped:start()
      end
    end)
  end)
end)
