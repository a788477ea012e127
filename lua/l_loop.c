/*
 * l_loop.c: the binding's state per Lua state (l_loop.h) and the loop's
 * functions:
 *
 *   rtmp.run([seconds]) -> stopped    run until nothing is left to do,
 *                                     rtmp.stop(), a signal, or seconds
 *   rtmp.stop()
 *   rtmp.now() -> seconds             the loop's clock
 *   rtmp.shutdown([reason])           close every server and connection now
 *   rtmp.handle_signals()             SIGINT/SIGTERM close everything and end rtmp.run
 *   rtmp.on_sigterm(fn | nil)         SIGTERM calls fn() instead (a drain); SIGINT still
 *                                     closes everything
 *   rtmp.on_sighup(fn | nil)          SIGHUP calls fn() from the loop (luartmp: rtmp.reload,
 *                                     docs/RELOAD.md); nil: SIGHUP's default again
 *   rtmp.stop_listening()             every server stops accepting; connections go on
 *   rtmp.connections() -> { conn, ... }  the open connections, newest first
 */
#include <stdlib.h>
#include <string.h>

#include "l_conn.h"
#include "l_loop.h"
#include "../core/log.h"

#define STATE_KEY "rtmp.state"

rtmp_l_state *rtmp_l_state_get(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    rtmp_l_state *st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st;
}

static int l_run(lua_State *L)
{
    rtmp_l_state *st = rtmp_l_state_get(L);
    double timeout = luaL_optnumber(L, 1, 0);
    lua_pushboolean(L, rtmp_net_run(st->net, timeout));
    return 1;
}

static int l_stop(lua_State *L)
{
    rtmp_net_stop(rtmp_l_state_get(L)->net);
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, rtmp_net_now(rtmp_l_state_get(L)->net));
    return 1;
}

static int l_shutdown(lua_State *L)
{
    rtmp_net_shutdown(rtmp_l_state_get(L)->net, luaL_optstring(L, 1, "shutdown"));
    return 0;
}

static int l_handle_signals(lua_State *L)
{
    rtmp_net_handle_signals(rtmp_l_state_get(L)->net);
    return 0;
}

#define ON_SIGTERM_KEY "rtmp.on_sigterm"

/* SIGTERM with a handler: fn() under rtmp_l_pcall (an error is logged). */
static void term_fire(rtmp_net *n, void *ud)
{
    (void)n;
    rtmp_l_state *st = ud;
    lua_State *L = st->L;
    if (!L)
        return;
    if (lua_getfield(L, LUA_REGISTRYINDEX, ON_SIGTERM_KEY) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    rtmp_l_pcall(L, NULL, 0, "on_sigterm");
}

/* rtmp.on_sigterm(fn | nil): what SIGTERM does once rtmp.handle_signals
 * catches it: fn() (the loop goes on), or with nil the shutdown again. */
static int l_on_sigterm(lua_State *L)
{
    rtmp_l_state *st = rtmp_l_state_get(L);
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    int set = !lua_isnil(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, ON_SIGTERM_KEY);
    rtmp_net_on_term(st->net, set ? term_fire : NULL, st);
    return 0;
}

#define ON_SIGHUP_KEY "rtmp.on_sighup"

/* SIGHUP with a handler: fn() under rtmp_l_pcall (an error is logged). */
static void hup_fire(rtmp_net *n, void *ud)
{
    (void)n;
    rtmp_l_state *st = ud;
    lua_State *L = st->L;
    if (!L)
        return;
    if (lua_getfield(L, LUA_REGISTRYINDEX, ON_SIGHUP_KEY) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    rtmp_l_pcall(L, NULL, 0, "on_sighup");
}

/* rtmp.on_sighup(fn | nil): SIGHUP calls fn() from the loop (never inside
 * a call into Lua); with nil, SIGHUP has its default action again (the
 * process ends). */
static int l_on_sighup(lua_State *L)
{
    rtmp_l_state *st = rtmp_l_state_get(L);
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    int set = !lua_isnil(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, ON_SIGHUP_KEY);
    rtmp_net_on_hup(st->net, set ? hup_fire : NULL, st);
    return 0;
}

static int l_stop_listening(lua_State *L)
{
    rtmp_net_stop_listening(rtmp_l_state_get(L)->net);
    return 0;
}

/* rtmp.connections() -> the open connections' boxes, newest first. */
static int l_connections(lua_State *L)
{
    rtmp_net *net = rtmp_l_state_get(L)->net;
    size_t n = rtmp_net_conns(net, NULL, 0);
    rtmp_conn **all = n ? malloc(n * sizeof *all) : NULL;
    if (n && !all)
        return luaL_error(L, "out of memory");
    n = rtmp_net_conns(net, all, n);
    lua_createtable(L, (int)n, 0);
    lua_Integer k = 0;
    for (size_t i = 0; i < n; i++) {
        lconn *lc = rtmp_conn_get_ud(all[i]);
        if (!lc) /* not the binding's: no box */
            continue;
        rtmp_l_conn_push(L, lc);
        if (lua_isnil(L, -1))
            lua_pop(L, 1);
        else
            lua_rawseti(L, -2, ++k);
    }
    free(all);
    return 1;
}

/* The state's __gc: the loop goes with the Lua state. */
static int state_gc(lua_State *L)
{
    rtmp_l_state *st = lua_touserdata(L, 1);
    st->L = NULL;
    if (st->net) {
        rtmp_net_free(st->net);
        st->net = NULL;
    }
    return 0;
}

static const luaL_Reg loop_funcs[] = {
    { "run", l_run },
    { "stop", l_stop },
    { "now", l_now },
    { "shutdown", l_shutdown },
    { "handle_signals", l_handle_signals },
    { "on_sigterm", l_on_sigterm },
    { "on_sighup", l_on_sighup },
    { "stop_listening", l_stop_listening },
    { "connections", l_connections },
    { NULL, NULL },
};

void rtmp_l_open_loop(lua_State *L)
{
    /* the loop, freed when the Lua state closes */
    rtmp_l_state *st = lua_newuserdatauv(L, sizeof *st, 0);
    memset(st, 0, sizeof *st);
    st->L = L;
    /* the allocator's accounting, when luartmp runs with --script-memory */
    lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_MEMORY_KEY);
    st->mem = lua_touserdata(L, -1);
    lua_pop(L, 1);
    st->net = rtmp_net_new();
    if (!st->net)
        luaL_error(L, "cannot create the event loop");
    lua_newtable(L);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    luaL_setfuncs(L, loop_funcs, 0);
}
