/*
 * fuzz_dispatch.c: bytes from a client to a server session, up to a stub
 * script, through the same path the live server takes (rtmp.session:
 * core/session.c with the handshake, chunk reader and the engine's
 * defaults, then l_msg.c's message objects with their decoded bodies).
 *
 * Input: byte 0 bit 0 set: a valid C0C1C2 (version 3, zero C1/C2) goes
 * first, so the rest is read as chunks; clear: the rest is all there is,
 * handshake included.  Bits 1-3: how many pieces (1 .. 8) the rest is fed
 * in, split at points drawn from bytes 1-4.
 *
 * The stub reads every field a script reads, splits aggregates, rebuilds
 * shared-object bodies (forwarding those the builder refuses), and answers each message: commands and data with
 * their values re-encoded (encode_values), media forwarded, aggregates as
 * their sub-messages.  Checks: feed fails only with nil, message, code; a
 * message's payload has its length; the server's whole output (S0S1S2,
 * the engine's own control messages and the answers) reads without error
 * in a client session, and the answers arrive with the payloads sent.
 */
#include "fuzz.h"

static const char check[] =
    "local rtmp = require('rtmp')\n"
    "local amf0 = rtmp.amf0\n"
    "local fields = { 'type', 'type_name', 'csid', 'fmt', 'stream', 'timestamp', 'length', 'name', 'txn',\n"
    "  'values', 'args', 'decode_error', 'so', 'applied', 'keyframe', 'sequence_header', 'codec',\n"
    "  'chunk_size', 'abort_csid', 'sequence', 'window', 'limit', 'event', 'event_name', 'stream_id',\n"
    "  'ping_time', 'buffer_length' }\n"
    "local function touch(m)\n"
    "  for _, f in ipairs(fields) do local _ = m[f] end\n"
    "  if #m.payload ~= m.length then error('payload of ' .. #m.payload .. ' bytes, length ' .. m.length) end\n"
    "end\n"
    "local sent\n"
    "local function answer(s, m)\n"
    "  local hdr = { csid = m.csid, stream = m.stream, timestamp = m.timestamp }\n"
    "  if m.values then\n"
    "    hdr.type = (m.type == 20 or m.type == 17) and 20 or 18\n"
    "    local body = amf0.encode_values(m.values)\n"
    "    assert(s:send(hdr, body)); sent[#sent + 1] = body\n"
    "  elseif m.so then\n"
    "    -- a decoded body is not always input the builder takes (an empty\n"
    "    -- change event has no key): then the message is forwarded\n"
    "    local ok, body = pcall(rtmp.shared_object, m.so)\n"
    "    if not ok then body = m.payload end\n"
    "    hdr.type = m.type\n"
    "    assert(s:send(hdr, body)); sent[#sent + 1] = body\n"
    "  elseif m.type == 8 or m.type == 9 then\n"
    "    assert(s:send(hdr, m)); sent[#sent + 1] = m.payload\n"
    "  end\n"
    "end\n"
    "return function()\n"
    "  local pieces = FUZZ_PIECES\n"
    "  sent = {}\n"
    "  local s = rtmp.session{ role = 'server' }\n"
    "  for _, piece in ipairs(pieces) do\n"
    "    local msgs, err, code = s:feed(piece)\n"
    "    if not msgs then\n"
    "      assert(type(err) == 'string' and type(code) == 'string', 'feed failed without a message')\n"
    "      break\n"
    "    end\n"
    "    for _, m in ipairs(msgs) do\n"
    "      touch(m)\n"
    "      if m.type == 22 then\n"
    "        local subs, serr, scode = m:split()\n"
    "        if subs then\n"
    "          for _, sub in ipairs(subs) do touch(sub); answer(s, sub) end\n"
    "        else\n"
    "          assert(type(serr) == 'string' and type(scode) == 'string')\n"
    "        end\n"
    "      else\n"
    "        answer(s, m)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local out = s:output()\n"
    "  s:close()\n"
    "  if #out == 0 then return end\n"
    "  local c = rtmp.session{ role = 'client' }\n"
    "  c:output()\n"
    "  local msgs, err = c:feed(out)\n"
    "  if not msgs then error('the server wrote what a client cannot read: ' .. err) end\n"
    "  local k = 0\n"
    "  for _, m in ipairs(msgs) do\n"
    "    if m.type ~= 1 and m.type ~= 3 and m.type ~= 5 and m.type ~= 4 then\n"
    "      k = k + 1\n"
    "      if m.payload ~= sent[k] then error('answer ' .. k .. ' arrived different') end\n"
    "    end\n"
    "  end\n"
    "  if k ~= #sent then error('sent ' .. #sent .. ' answers, ' .. k .. ' arrived') end\n"
    "  c:close()\n"
    "end\n";

static uint8_t hs_prefix[1 + 2 * 1536] = { 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    lua_State *L = fuzz_lua(check);
    int prefix = data[0] & 1;
    int npieces = ((data[0] >> 1) & 7) + 1;
    fuzz_rng g;
    fuzz_rng_seed(&g, (uint64_t)data[1] | (uint64_t)data[2] << 8 | (uint64_t)data[3] << 16 |
                      (uint64_t)data[4] << 24);
    const uint8_t *in = data + 5;
    size_t len = size - 5;

    /* The pieces as an array of strings, the handshake first. */
    lua_createtable(L, npieces + 1, 0);
    int arr = lua_gettop(L), k = 0;
    if (prefix) {
        lua_pushlstring(L, (const char *)hs_prefix, sizeof hs_prefix);
        lua_rawseti(L, arr, ++k);
    }
    size_t off = 0;
    for (int i = 0; i < npieces && off < len; i++) {
        size_t n = i == npieces - 1 ? len - off : fuzz_rng_next(&g) % (len - off + 1);
        lua_pushlstring(L, (const char *)in + off, n);
        lua_rawseti(L, arr, ++k);
        off += n;
    }
    lua_setglobal(L, "FUZZ_PIECES");
    fuzz_lua_check(data, size);
    return 0;
}
