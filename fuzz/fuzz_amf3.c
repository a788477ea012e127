/*
 * fuzz_amf3.c: the AMF3 decoder as scripts use it (rtmp.amf3, l_amf3.c
 * over core/amf3.c).
 *
 * For any input: decode gives values or nil, message, code with one of
 * the documented codes; the core's walk (validate) agrees with it (an
 * externalizable class with a registered handler decodes but does not
 * validate; values that references would nest past the limit when
 * written again fail decode only, at the end of the input); and decode -> encode -> decode -> encode gives the same
 * bytes twice, with the same number of values.  The first input byte,
 * when it is 0xFF, asks for a nesting limit of 4.
 */
#include "fuzz.h"

static const char check[] =
    "local amf3 = require('rtmp').amf3\n"
    "local codes = { AMF_TRUNCATED = 1, AMF_MARKER = 1, AMF_DEPTH = 1, AMF_REFERENCE = 1,\n"
    "  AMF_TYPE = 1, AMF_EXTERNALIZABLE = 1 }\n"
    "local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end\n"
    "-- decode's AMF_DEPTH at the end of the input: values that references\n"
    "-- would nest too deep when written again (validate only walks the bytes)\n"
    "local function whole(code, err, s) return code == 'AMF_DEPTH' and err:match('at byte (%d+)$') == tostring(#s) end\n"
    "return function(s)\n"
    "  local depth\n"
    "  if s:byte(1) == 0xFF then depth = 4; s = s:sub(2) end\n"
    "  local v, err, code = amf3.decode(s, depth)\n"
    "  local n, verr, vcode = amf3.validate(s, depth)\n"
    "  if not v then\n"
    "    assert(type(err) == 'string' and err:find('at byte %d+$') and codes[code], 'bad failure: ' .. tostring(err) .. ' ' .. tostring(code))\n"
    "    if n and not whole(code, err, s) then error('validate accepts (' .. n .. ' values) what decode refuses: ' .. err) end\n"
    "    return\n"
    "  end\n"
    "  if not n and vcode ~= 'AMF_EXTERNALIZABLE' then error('decode accepts what validate refuses: ' .. verr) end\n"
    "  if n and n ~= v.n then error('validate counts ' .. n .. ', decode ' .. v.n) end\n"
    "  local b1 = amf3.encode(table.unpack(v, 1, v.n))\n"
    "  local v2, err2 = amf3.decode(b1, depth)\n"
    "  if not v2 then error('re-encoded bytes do not decode: ' .. err2 .. ' in ' .. hex(b1)) end\n"
    "  if v2.n ~= v.n then error('value count changed: ' .. v.n .. ' -> ' .. v2.n) end\n"
    "  local b2 = amf3.encode(table.unpack(v2, 1, v2.n))\n"
    "  if b1 ~= b2 then error('encoding not stable:\\n' .. hex(b1) .. '\\n' .. hex(b2)) end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua(check);
    fuzz_lua_check(data, size);
    return 0;
}
