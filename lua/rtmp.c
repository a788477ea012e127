/*
 * rtmp.c: luaopen_rtmp_core, the C part of the rtmp module ("rtmp.core").
 *
 * `require "rtmp"` loads lua/rtmp.lua, which requires "rtmp.core" and
 * adds what is written in Lua (rtmp.spawn, rtmp.sleep and the coroutine
 * form of rtmp.connect, from rtmp.client): C never loads a Lua module.
 * Both names give the same table.  The luartmp executable preloads
 * "rtmp.core"; the lua5.4 interpreter finds it in rtmp.so (its
 * all-in-one loader: luaopen_rtmp_core).  luaopen_rtmp answers
 * `require "rtmp"` from rtmp.so alone, when lua/rtmp.lua is not on
 * package.path (the C part only: fuzz targets, tools that need codecs).
 */
#include "l_rtmp.h"
#include "../core/error.h"

#ifndef LUARTMP_VERSION
#define LUARTMP_VERSION "0.0.0"
#endif

/* The module table, once per Lua state: one loop per state however often
 * and under whichever name the module is opened. */
#define MODULE_KEY "rtmp.core"

static int l_strerror(lua_State *L)
{
    int code = (int)luaL_checkinteger(L, 1);
    lua_pushstring(L, rtmp_strerror(code));
    lua_pushstring(L, rtmp_errname(code));
    return 2;
}

int luaopen_rtmp_core(lua_State *L);
int luaopen_rtmp_core(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, MODULE_KEY) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushliteral(L, LUARTMP_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushcfunction(L, l_strerror);
    lua_setfield(L, -2, "strerror");
    rtmp_l_open_util(L);
    rtmp_l_open_log(L);
    rtmp_l_open_settings(L);
    rtmp_l_open_amf0(L);
    rtmp_l_open_amf3(L);
    rtmp_l_open_chunk(L);
    rtmp_l_open_handshake(L);
    rtmp_l_open_loop(L);
    rtmp_l_open_msg(L);
    rtmp_l_open_body(L);
    rtmp_l_open_send(L);
    rtmp_l_open_conn(L);
    rtmp_l_open_server(L);
    rtmp_l_open_session(L);
    rtmp_l_open_group(L);
    rtmp_l_open_timer(L);
    rtmp_l_open_url(L);
    rtmp_l_open_flv(L);
    rtmp_l_open_mp4(L);
    rtmp_l_open_media(L);
    rtmp_l_open_pcap(L);
    rtmp_l_open_trace(L);
    rtmp_l_open_digest(L);
    rtmp_l_open_http(L);
    rtmp_l_open_httpd(L);
    rtmp_l_open_redis(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, MODULE_KEY);
    return 1;
}

int luaopen_rtmp(lua_State *L);
int luaopen_rtmp(lua_State *L)
{
    return luaopen_rtmp_core(L);
}
