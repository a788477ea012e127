/*
 * rtmp.c: luaopen_rtmp, the entry point of `require "rtmp"`.
 */
#include "l_rtmp.h"
#include "../core/error.h"

#ifndef LUARTMP_VERSION
#define LUARTMP_VERSION "0.0.0"
#endif

static int l_strerror(lua_State *L)
{
    int code = (int)luaL_checkinteger(L, 1);
    lua_pushstring(L, rtmp_strerror(code));
    lua_pushstring(L, rtmp_errname(code));
    return 2;
}

int luaopen_rtmp(lua_State *L);
int luaopen_rtmp(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, LUARTMP_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushcfunction(L, l_strerror);
    lua_setfield(L, -2, "strerror");
    lua_newtable(L);
    lua_setfield(L, -2, "options");
    rtmp_l_open_log(L);
    rtmp_l_open_amf0(L);
    rtmp_l_open_amf3(L);
    rtmp_l_open_chunk(L);
    rtmp_l_open_handshake(L);
    rtmp_l_open_net(L);
    rtmp_l_open_msg(L);
    rtmp_l_open_send(L);
    rtmp_l_open_flv(L);
    rtmp_l_open_util(L);
    rtmp_l_open_pcap(L);
    rtmp_l_open_trace(L);
    return 1;
}
