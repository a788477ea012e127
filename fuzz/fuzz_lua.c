/*
 * fuzz_lua.c: the Lua side of the fuzz targets (fuzz.h): one state per
 * process with `rtmp` loaded, and a check function written in Lua.
 */
#include "fuzz.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_rtmp(lua_State *L);

static lua_State *fuzz_L;
static int check_ref = LUA_NOREF;
static unsigned calls;

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("finding: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

lua_State *fuzz_lua(const char *check)
{
    if (fuzz_L)
        return fuzz_L;
    lua_State *L = luaL_newstate();
    if (!L)
        fuzz_fail("luaL_newstate: out of memory");
    luaL_openlibs(L);
    luaL_requiref(L, "rtmp", luaopen_rtmp, 0);
    lua_pop(L, 1);
    if (check) {
        lua_pushcfunction(L, traceback);
        if (luaL_loadstring(L, check) != LUA_OK || lua_pcall(L, 0, 1, -2) != LUA_OK)
            fuzz_fail("check script: %s", lua_tostring(L, -1));
        if (!lua_isfunction(L, -1))
            fuzz_fail("check script does not return a function");
        check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    fuzz_L = L;
    return L;
}

void fuzz_lua_check(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_L;
    if (!L || check_ref == LUA_NOREF)
        fuzz_fail("fuzz_lua_check before fuzz_lua(check)");
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK)
        fuzz_fail("%s", lua_tostring(L, -1));
    lua_settop(L, top);
    if (++calls % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT);
}
