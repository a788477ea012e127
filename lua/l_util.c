/*
 * l_util.c: small process-level helpers for command-line scripts.
 *
 *   rtmp.isatty(2)          -- is stderr a terminal?
 *   rtmp.isatty("stdout")   -- the same, by name
 */
#include <string.h>
#include <unistd.h>

#include "l_rtmp.h"

/* rtmp.isatty(fd): true when the file descriptor fd (an integer, or one of
 * "stdin", "stdout", "stderr") refers to a terminal, false otherwise
 * (also for a closed or invalid descriptor).  Raises on a bad argument.
 * [-0, +1, -] */
static int l_isatty(lua_State *L)
{
    int fd;
    if (lua_type(L, 1) == LUA_TSTRING) {
        static const char *const names[] = { "stdin", "stdout", "stderr", NULL };
        fd = luaL_checkoption(L, 1, NULL, names);
    } else {
        lua_Integer n = luaL_checkinteger(L, 1);
        luaL_argcheck(L, n >= 0 && n <= 65535, 1, "file descriptor out of range");
        fd = (int)n;
    }
    lua_pushboolean(L, isatty(fd) == 1);
    return 1;
}

void rtmp_l_open_util(lua_State *L)
{
    lua_pushcfunction(L, l_isatty);
    lua_setfield(L, -2, "isatty");
}
