/*
 * l_tls.c: conn.tls, what a TLS connection negotiated (core/net.c
 * decides and logs it; this only shows it to Lua).
 */
#include "l_tls.h"

int rtmp_l_push_tls(lua_State *L, const rtmp_conn *c)
{
    rtmp_tls_info info;
    if (rtmp_conn_tls(c, &info) < 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_createtable(L, 0, 8);
    lua_pushboolean(L, info.done);
    lua_setfield(L, -2, "handshake");
    lua_pushstring(L, info.sni);
    lua_setfield(L, -2, "sni");
    if (info.done) {
        lua_pushstring(L, info.version);
        lua_setfield(L, -2, "version");
        lua_pushstring(L, info.cipher);
        lua_setfield(L, -2, "cipher");
        lua_pushboolean(L, info.ktls_send);
        lua_setfield(L, -2, "ktls_send");
        lua_pushboolean(L, info.ktls_recv);
        lua_setfield(L, -2, "ktls_recv");
        lua_pushstring(L, info.ktls_send ? "kernel" : info.own_records ? "luartmp" : "openssl");
        lua_setfield(L, -2, "records");
        lua_pushboolean(L, info.peer_verified);
        lua_setfield(L, -2, "peer_verified");
    }
    return 1;
}
