/*
 * fuzz_flv.c: the FLV reader and writer as scripts use them (rtmp.flv,
 * l_flv.c over core/flv.c; each tag becomes a message object, so data
 * tags go through the AMF0 decoder).
 *
 * The input is written to a file (in /dev/shm when it exists) and read
 * strictly and leniently.  Checks: failures are nil, message, code with
 * an FLV_* code; the strict reader's messages are a prefix of the
 * lenient reader's (strict stops where lenient skips or accepts); and
 * the lenient reader's messages written to a new file with
 * rtmp.flv.create read back strictly without error, with the same audio
 * and video tags (type, timestamp, payload) in the same order.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char check[] =
    "local flv = require('rtmp').flv\n"
    "local function read_all(path, lenient)\n"
    "  local r, err, code = flv.open(path, { lenient = lenient })\n"
    "  if not r then\n"
    "    assert(type(err) == 'string' and type(code) == 'string' and code:find('^FLV_'), tostring(code))\n"
    "    return {}, code\n"
    "  end\n"
    "  local list = {}\n"
    "  while true do\n"
    "    local m, e, c = r:read()\n"
    "    if not m then\n"
    "      r:close()\n"
    "      if e then assert(type(e) == 'string' and type(c) == 'string' and c:find('^FLV_'), tostring(c)) end\n"
    "      return list, c\n"
    "    end\n"
    "    assert(m.type == 8 or m.type == 9 or m.type == 18, 'tag type ' .. tostring(m.type))\n"
    "    assert(#m.payload == m.length)\n"
    "    list[#list + 1] = { type = m.type, timestamp = m.timestamp, payload = m.payload, msg = m }\n"
    "  end\n"
    "end\n"
    "local function same(a, b, what, i)\n"
    "  if a.type ~= b.type or a.timestamp ~= b.timestamp or a.payload ~= b.payload then\n"
    "    error(string.format('%s: tag %d differs: type %d/%d ts %d/%d len %d/%d', what, i, a.type, b.type,\n"
    "      a.timestamp, b.timestamp, #a.payload, #b.payload))\n"
    "  end\n"
    "end\n"
    "return function(s)\n"
    "  local inp, outp = FUZZ_FLV_IN, FUZZ_FLV_OUT\n"
    "  local f = assert(io.open(inp, 'wb')); f:write(s); f:close()\n"
    "  local strict, serr = read_all(inp, false)\n"
    "  local lenient, lerr = read_all(inp, true)\n"
    "  if #strict > #lenient then error('strict read ' .. #strict .. ' tags, lenient ' .. #lenient) end\n"
    "  for i = 1, #strict do same(strict[i], lenient[i], 'strict against lenient', i) end\n"
    "  if not serr and lerr then error('lenient fails (' .. lerr .. ') where strict does not') end\n"
    "  local w = assert(flv.create(outp))\n"
    "  local av = {}\n"
    "  for _, t in ipairs(lenient) do\n"
    "    assert(w:write(t.msg))\n"
    "    if t.type ~= 18 then av[#av + 1] = t end\n"
    "  end\n"
    "  assert(w:close())\n"
    "  local back, berr = read_all(outp, false)\n"
    "  if berr then error('the file written does not read back: ' .. berr) end\n"
    "  local k = 0\n"
    "  for _, t in ipairs(back) do\n"
    "    if t.type ~= 18 then k = k + 1; same(av[k] or { type = -1, timestamp = -1, payload = '' }, t, 'written and read back', k) end\n"
    "  end\n"
    "  if k ~= #av then error('wrote ' .. #av .. ' audio/video tags, read back ' .. k) end\n"
    "end\n";

static char in_path[256], out_path[256];

static void remove_files(void)
{
    unlink(in_path);
    unlink(out_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua(check);
    static int ready;
    if (!ready) {
        /* The two files, one pair per process, removed at exit. */
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(in_path, sizeof in_path, "%s/luartmp-fuzz-flv-%ld-in.flv", dir, (long)getpid());
        snprintf(out_path, sizeof out_path, "%s/luartmp-fuzz-flv-%ld-out.flv", dir, (long)getpid());
        lua_pushstring(L, in_path);
        lua_setglobal(L, "FUZZ_FLV_IN");
        lua_pushstring(L, out_path);
        lua_setglobal(L, "FUZZ_FLV_OUT");
        atexit(remove_files);
        ready = 1;
    }
    fuzz_lua_check(data, size);
    return 0;
}
