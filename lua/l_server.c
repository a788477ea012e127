/*
 * l_server.c: servers ("rtmp.server"): rtmp.listen and what a server does
 * with each connection it accepts (l_conn.c takes it from there).
 *
 *   rtmp.listen{ listen = "ADDR", on_open, on_handshake, on_message,
 *                on_close, on_data, <settings> } -> server | nil, err
 *   rtmp.listen{ listen = "rtmps://ADDR", tls = { cert =, key = }, ... }
 *   server.port, server.tls, server:close() (also __close)
 */
#include <string.h>

#include "l_conn.h"
#include "l_settings.h"
#include "../core/url.h"

#define SERVER_MT "rtmp.server"

typedef struct lserver {
    rtmp_l_state  *st;
    rtmp_listener *l;       /* NULL once closed */
    int            tls;     /* an rtmps:// listener */
    int            handlers; /* registry ref to the handlers table */
    lua_Integer    instructions; /* its connections' script_instructions and on_error */
    int            on_error;
} lserver;

/* A connection accepted: its lconn and box, with the server's handlers
 * and containment settings; then on_open. */
static void h_open(rtmp_conn *c, void *ud)
{
    lserver *srv = ud;
    lua_State *L = srv->st->L;
    lconn *lc = rtmp_l_conn_new(srv->st, c, RTMP_ROLE_SERVER);
    if (!lc) {
        rtmp_conn_close(c, "out of memory");
        return;
    }
    lc->o.instructions = srv->instructions;
    lc->o.on_error = srv->on_error;
    rtmp_conn_set_ud(c, lc);
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->handlers);
    rtmp_l_conn_box(L, lc, lua_gettop(L));
    rtmp_l_trace_settings(L, -2, rtmp_conn_session(c), &lc->trace, lc->o.id, lc->o.peer);
    lua_pop(L, 2);
    rtmp_l_conn_notify(lc, "on_open");
}

static const rtmp_conn_handler server_handler = { h_open, rtmp_l_conn_ready, rtmp_l_conn_message,
                                                  rtmp_l_conn_closed, rtmp_l_conn_data, rtmp_l_conn_warm };

/* rtmp.listen{ listen = "ADDR" | {"ADDR", ...}, on_open, on_handshake,
 *              on_message, on_close, <settings> } -> server | nil, err */
static int l_listen(lua_State *L)
{
    rtmp_l_state *st = rtmp_l_state_get(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    rtmp_conn_config cfg;
    rtmp_l_settings_read(L, 1, &cfg, RTMP_ROLE_SERVER);
    lua_Integer instructions;
    int on_error;
    rtmp_l_contain_read(L, 1, &instructions, &on_error);
    rtmp_tls_config tls;
    rtmp_l_settings_read_tls(L, 1, &tls);

    /* collect addresses: opts.listen, else rtmp.options.listen, else the default */
    lua_getfield(L, 1, "listen");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY);
        lua_getfield(L, -1, "listen");
        lua_remove(L, -2);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, RTMP_L_DEFAULT_LISTEN);
    }
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    }
    int addrs = lua_gettop(L);

    lserver *srv = lua_newuserdatauv(L, sizeof *srv, 1);
    srv->st = st;
    srv->l = NULL;
    srv->handlers = LUA_NOREF;
    srv->instructions = instructions;
    srv->on_error = on_error;
    luaL_setmetatable(L, SERVER_MT);
    lua_pushvalue(L, 1);
    srv->handlers = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_Integer n = luaL_len(L, addrs);
    if (n != 1)
        return luaL_error(L, "one listen address per rtmp.listen call (got %d)", (int)n);
    lua_geti(L, addrs, 1);
    const char *addr = luaL_checkstring(L, -1);
    char err[300];
    srv->l = rtmp_net_listen(st->net, addr, &cfg, &tls, &server_handler, srv, err, sizeof err);
    int scheme_tls;
    srv->tls = rtmp_url_scheme(addr, strlen(addr), &scheme_tls) > 0 && scheme_tls;
    lua_pop(L, 1);
    if (!srv->l) {
        luaL_unref(L, LUA_REGISTRYINDEX, srv->handlers);
        srv->handlers = LUA_NOREF;
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    /* keep the server reachable while it listens */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    return 1;
}

static int server_close(lua_State *L)
{
    lserver *srv = luaL_checkudata(L, 1, SERVER_MT);
    if (srv->l) {
        rtmp_listener_close(srv->l);
        srv->l = NULL;
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    }
    /* the handlers stay referenced while connections may use them; they
     * hold their own reference through their boxes */
    if (srv->handlers != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, srv->handlers);
        srv->handlers = LUA_NOREF;
    }
    return 0;
}

static int server_index(lua_State *L)
{
    lserver *srv = luaL_checkudata(L, 1, SERVER_MT);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "port")) {
        if (!srv->l)
            return 0;
        lua_pushinteger(L, rtmp_listener_port(srv->l));
        return 1;
    }
    if (!strcmp(k, "tls")) {
        lua_pushboolean(L, srv->tls);
        return 1;
    }
    if (!strcmp(k, "close")) {
        lua_pushcfunction(L, server_close);
        return 1;
    }
    return 0;
}

void rtmp_l_open_server(lua_State *L)
{
    luaL_newmetatable(L, SERVER_MT);
    lua_pushcfunction(L, server_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, server_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_listen);
    lua_setfield(L, -2, "listen");
}
