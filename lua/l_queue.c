/*
 * l_queue.c: conn:queue, the slow-reader policy's settings and state as a
 * script sees them (core/mediaq.c decides; core/group.c applies it to
 * each member of a fan-out).
 */
#include <stdlib.h>

#include <lauxlib.h>

#include "l_queue.h"
#include "l_settings.h"
#include "../core/group.h"

/* [-0, +0, e] setting k of the table at t (checked as l_settings.c
 * describes it), def when absent. */
static double opt_setting(lua_State *L, int t, const char *k, double def)
{
    double v = def;
    if (lua_getfield(L, t, k) != LUA_TNIL)
        v = rtmp_l_setting_number(L, rtmp_l_setting_find(k), -1);
    lua_pop(L, 1);
    return v;
}

int rtmp_l_queue_method(lua_State *L, int idx, rtmp_mediaq **slot, rtmp_conn *c)
{
    if (!lua_isnoneornil(L, idx))
        luaL_checktype(L, idx, LUA_TTABLE);
    if (!c) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    rtmp_mediaq *q = rtmp_group_queue(slot, rtmp_conn_get_core(c));
    if (!q)
        return luaL_error(L, "out of memory");
    if (!lua_isnoneornil(L, idx)) {
        q->cfg.max_bytes = (size_t)opt_setting(L, idx, "max_queue_bytes", (double)q->cfg.max_bytes);
        q->cfg.max_time = opt_setting(L, idx, "max_queue_time", q->cfg.max_time);
        q->cfg.max_stall = opt_setting(L, idx, "max_queue_stall", q->cfg.max_stall);
    }
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, (lua_Integer)q->cfg.max_bytes);
    lua_setfield(L, -2, "max_queue_bytes");
    lua_pushnumber(L, q->cfg.max_time);
    lua_setfield(L, -2, "max_queue_time");
    lua_pushnumber(L, q->cfg.max_stall);
    lua_setfield(L, -2, "max_queue_stall");
    lua_pushinteger(L, (lua_Integer)rtmp_conn_pending(c));
    lua_setfield(L, -2, "bytes");
    lua_pushnumber(L, q->time);
    lua_setfield(L, -2, "time");
    lua_pushstring(L, rtmp_mediaq_level_name(q->level));
    lua_setfield(L, -2, "state");
    lua_pushinteger(L, (lua_Integer)q->dropped);
    lua_setfield(L, -2, "dropped");
    lua_pushinteger(L, (lua_Integer)q->dropped_bytes);
    lua_setfield(L, -2, "dropped_bytes");
    return 1;
}

void rtmp_l_queue_free(rtmp_mediaq **slot)
{
    if (*slot) {
        rtmp_mediaq_free(*slot);
        free(*slot);
        *slot = NULL;
    }
}
