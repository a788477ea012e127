/*
 * l_log.c: rtmp.log, leveled logging for scripts.
 *
 *   rtmp.log.info("player %s joined", name)   -- string.format arguments
 *   rtmp.log.level() -> "info";  rtmp.log.level("debug")
 */
#include <string.h>

#include "l_rtmp.h"
#include "../core/log.h"

/* [-0, +1, e] format the arguments from index first as string.format does. */
void rtmp_l_format(lua_State *L, int first)
{
    int top = lua_gettop(L);
    if (top < first) {
        lua_pushliteral(L, "");
        return;
    }
    if (top == first) {
        luaL_tolstring(L, first, NULL);
        return;
    }
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    lua_remove(L, -2);
    for (int i = first; i <= top; i++)
        lua_pushvalue(L, i);
    lua_call(L, top - first + 1, 1);
}

static int log_at(lua_State *L, int level)
{
    if (!rtmp_log_enabled(level))
        return 0;
    rtmp_l_format(L, 1);
    rtmp_log(level, 0, NULL, "%s", lua_tostring(L, -1));
    return 0;
}

static int l_error(lua_State *L) { return log_at(L, RTMP_LOG_ERROR); }
static int l_warn(lua_State *L) { return log_at(L, RTMP_LOG_WARN); }
static int l_info(lua_State *L) { return log_at(L, RTMP_LOG_INFO); }
static int l_debug(lua_State *L) { return log_at(L, RTMP_LOG_DEBUG); }
static int l_trace(lua_State *L) { return log_at(L, RTMP_LOG_TRACE); }

static int l_level(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        const char *name = luaL_checkstring(L, 1);
        int level = rtmp_log_parse_level(name);
        if (level < 0)
            return luaL_argerror(L, 1, "expected error, warn, info, debug or trace");
        rtmp_log_level = level;
    }
    lua_pushstring(L, rtmp_log_level_name(rtmp_log_level));
    return 1;
}

static const luaL_Reg log_funcs[] = {
    { "error", l_error }, { "warn", l_warn }, { "info", l_info },
    { "debug", l_debug }, { "trace", l_trace }, { "level", l_level },
    { NULL, NULL },
};

void rtmp_l_open_log(lua_State *L)
{
    luaL_newlib(L, log_funcs);
    lua_setfield(L, -2, "log");
}
