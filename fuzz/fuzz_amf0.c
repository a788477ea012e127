/*
 * fuzz_amf0.c: the AMF0 decoder as scripts use it (rtmp.amf0, l_amf0.c
 * over core/amf0.c and, for the switch to AMF3, core/amf3.c).
 *
 * For any input: decode either gives values or nil, message, code with
 * one of the documented codes; the core's walk (validate) agrees with it
 * on success and on the count of values (except for values that
 * references would nest past the limit when written again: decode fails
 * those at the end of the input, validate only walks the bytes); and
 * decode -> encode_values -> decode -> encode_values gives the same bytes
 * twice (the first encoding may differ from the input, docs/AMF.md
 * "Bytes that do not round-trip exactly", but must then be stable), with
 * the same number of values.
 * The first input byte, when it is 0xFF, asks for a nesting limit of 4
 * (the rest is the AMF); otherwise the default (32) applies.
 */
#include "fuzz.h"

static const char check[] =
    "local amf0 = require('rtmp').amf0\n"
    "local codes = { AMF_TRUNCATED = 1, AMF_MARKER = 1, AMF_DEPTH = 1, AMF_REFERENCE = 1,\n"
    "  AMF_TYPE = 1, AMF_EXTERNALIZABLE = 1 }\n"
    "local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end\n"
    "-- decode's AMF_DEPTH at the end of the input: values that references\n"
    "-- would nest too deep when written again (validate only walks the bytes)\n"
    "local function whole(code, err, s) return code == 'AMF_DEPTH' and err:match('at byte (%d+)$') == tostring(#s) end\n"
    "return function(s)\n"
    "  local depth\n"
    "  if s:byte(1) == 0xFF then depth = 4; s = s:sub(2) end\n"
    "  local v, err, code = amf0.decode(s, depth)\n"
    "  local n, verr, vcode = amf0.validate(s, depth)\n"
    "  if not v then\n"
    "    assert(type(err) == 'string' and err:find('at byte %d+$') and codes[code], 'bad failure: ' .. tostring(err) .. ' ' .. tostring(code))\n"
    "    if n and code ~= 'AMF_EXTERNALIZABLE' and not whole(code, err, s) then\n"
    "      error('validate accepts (' .. n .. ' values) what decode refuses: ' .. err)\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  if not n and vcode ~= 'AMF_EXTERNALIZABLE' then error('decode accepts what validate refuses: ' .. verr) end\n"
    "  if n and n ~= v.n then error('validate counts ' .. n .. ', decode ' .. v.n) end\n"
    "  local b1 = amf0.encode_values(v)\n"
    "  local v2, err2 = amf0.decode(b1, depth)\n"
    "  if not v2 then error('re-encoded bytes do not decode: ' .. err2 .. ' in ' .. hex(b1)) end\n"
    "  if v2.n ~= v.n then error('value count changed: ' .. v.n .. ' -> ' .. v2.n) end\n"
    "  local b2 = amf0.encode_values(v2)\n"
    "  if b1 ~= b2 then error('encoding not stable:\\n' .. hex(b1) .. '\\n' .. hex(b2)) end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua(check);
    fuzz_lua_check(data, size);
    return 0;
}
