/*
 * l_queue.c: the slow-reader policy for group fan-out (core/mediaq.c
 * decides; this file creates the state from a connection's settings, logs
 * what the policy did, closes a stalled connection, and gives scripts
 * conn:queue).
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "l_queue.h"
#include "l_settings.h"
#include "../core/log.h"
#include "../core/net.h"

static rtmp_mediaq *slot_get(rtmp_mediaq **slot, rtmp_conn *c)
{
    if (!*slot) {
        const rtmp_conn_config *cc = rtmp_conn_get_config(c);
        rtmp_mediaq_config cfg = { cc->max_queue_bytes, cc->max_queue_time, cc->max_queue_stall };
        rtmp_mediaq *q = malloc(sizeof *q);
        if (!q)
            return NULL;
        rtmp_mediaq_init(q, &cfg);
        *slot = q;
    }
    return *slot;
}

int rtmp_l_queue_offer(rtmp_mediaq **slot, rtmp_conn *c, const rtmp_msg_hdr *h, int cls, double now)
{
    rtmp_mediaq *q = *slot;
    if (!q) {
        const rtmp_conn_config *cc = rtmp_conn_get_config(c);
        if (cc->max_queue_bytes == 0 && cc->max_queue_time <= 0)
            return 1; /* no policy for this connection */
        if (!(q = slot_get(slot, c)))
            return 1; /* out of memory: fan out as without a policy */
    }
    int rc = rtmp_mediaq_offer(q, h, cls, rtmp_conn_bytes_written(c), rtmp_conn_pending(c), now);
    if (rc == RTMP_MEDIAQ_SEND && q->event == RTMP_MEDIAQ_EV_NONE)
        return 1; /* the usual case */
    unsigned long id = rtmp_conn_id(c);
    const char *peer = rtmp_conn_peer(c);
    if (rc == RTMP_MEDIAQ_STALL) {
        char reason[256];
        snprintf(reason, sizeof reason,
                 "slow reader: over the queue bounds for %.1f s (queue %zu bytes, %.2f s of media;"
                 " bounds %zu bytes, %.2f s; dropped %llu messages, %llu bytes)",
                 now - q->over_since, q->bytes, q->time, q->cfg.max_bytes, q->cfg.max_time,
                 (unsigned long long)q->dropped, (unsigned long long)q->dropped_bytes);
        rtmp_conn_drop(c, reason);
        return -1;
    }
    switch (q->event) {
    case RTMP_MEDIAQ_EV_INTER:
    case RTMP_MEDIAQ_EV_GOP:
        rtmp_log(RTMP_LOG_WARN, id, peer,
                 "slow reader: queue %zu bytes, %.2f s of media (bounds %zu bytes, %.2f s): %s",
                 q->bytes, q->time, q->cfg.max_bytes, q->cfg.max_time,
                 q->event == RTMP_MEDIAQ_EV_INTER ? "dropping non-key video until the next keyframe"
                                                  : "dropping audio and video until a keyframe finds the queue under its bounds");
        break;
    case RTMP_MEDIAQ_EV_RECOVERED:
        rtmp_log(RTMP_LOG_INFO, id, peer,
                 "slow reader caught up after %.1f s: dropped %llu messages (%llu bytes); queue %zu bytes",
                 now - q->level_since, (unsigned long long)q->run_dropped,
                 (unsigned long long)q->run_dropped_bytes, q->bytes);
        break;
    default:
        break;
    }
    return rc == RTMP_MEDIAQ_SEND;
}

void rtmp_l_queue_sent(rtmp_mediaq *q, rtmp_conn *c, const rtmp_msg_hdr *h, int cls)
{
    if (q && cls != RTMP_MEDIAQ_KEEP)
        rtmp_mediaq_queued(q, h, cls, rtmp_conn_bytes_written(c) + rtmp_conn_pending(c));
}

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
    rtmp_mediaq *q = slot_get(slot, c);
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
