/*
 * l_group.c: groups ("rtmp.group"): fan-out of one message to many
 * connections without copying it per member, and the late-join cache
 * (core/group.h does both; this file is the Lua face).
 *
 *   local g = rtmp.group([{ cache = true, gop_max_bytes = N }])
 *   g:add(conn [, stream_id]), g:remove(conn), g:has(conn), g:count() / #g,
 *   g:members(), g:clear(), g:send(msg [, hdr]) -> members reached,
 *   g:metadata(msg [, hdr]) -> members reached, g:reset(), g:cached()
 *
 * A group is Lua-owned; it holds a reference to each member's lconn
 * (l_conn.h), dropped when the member is removed or found closed.
 * conn:forward(stream_id, g) (l_conn.c) fans a publisher's audio and
 * video out through g in C, with no Lua call per message.
 */
#include <stdlib.h>
#include <string.h>

#include "l_conn.h"
#include "l_group.h"
#include "l_msg.h"
#include "l_settings.h"
#include "../core/error.h"
#include "../core/amf.h"
#include "../core/group.h"

#define GROUP_MT "rtmp.group"

typedef struct lgroup {
    rtmp_group *g;
} lgroup;

static void release_member(void *ud)
{
    rtmp_l_conn_release(ud);
}

rtmp_group *rtmp_l_group_check(lua_State *L, int idx)
{
    lgroup *lg = luaL_checkudata(L, idx, GROUP_MT);
    if (!lg->g)
        luaL_argerror(L, idx, "group already finalized");
    return lg->g;
}

/* rtmp.group([opts]): opts.cache keeps the late-join cache, bounded by
 * opts.gop_max_bytes (the settings table's row). */
static int l_group(lua_State *L)
{
    rtmp_group_config cfg = { 0, RTMP_GROUP_GOP_MAX, release_member };
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_getfield(L, 1, "cache");
        cfg.cache = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (lua_getfield(L, 1, "gop_max_bytes") != LUA_TNIL)
            cfg.gop_max_bytes = (size_t)rtmp_l_setting_number(L, rtmp_l_setting_find("gop_max_bytes"), -1);
        lua_pop(L, 1);
    }
    lgroup *lg = lua_newuserdatauv(L, sizeof *lg, 0);
    lg->g = NULL;
    luaL_setmetatable(L, GROUP_MT);
    if (!(lg->g = rtmp_group_new(&cfg)))
        return luaL_error(L, "out of memory");
    return 1;
}

/* g:add(conn, stream_id): (re)join with the message stream id media goes
 * out on; a group with a cache sends it to a new member at once. */
static int group_add(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lconn *lc = rtmp_l_conn_check(L, 2);
    uint32_t sid = (uint32_t)luaL_optinteger(L, 3, 1);
    lc->refs++; /* the membership's, given back by release_member */
    int rc = rtmp_group_add(g, &lc->o.c, &lc->mq, sid, lc);
    if (rc != 0)
        lc->refs--; /* a member already, or not added */
    if (rc < 0 && rc != RTMP_ERR_CLOSED)
        return luaL_error(L, "%s", rtmp_strerror(rc));
    if (rc == RTMP_ERR_CLOSED) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int group_remove(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lconn *lc = rtmp_l_conn_check(L, 2);
    lua_pushboolean(L, rtmp_group_remove(g, &lc->o.c));
    return 1;
}

static int group_has(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lconn *lc = rtmp_l_conn_check(L, 2);
    lua_pushboolean(L, rtmp_group_has(g, &lc->o.c));
    return 1;
}

static int group_len(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lua_pushinteger(L, (lua_Integer)rtmp_group_count(g));
    return 1;
}

/* g:members() -> array of the open connections. */
static int group_members(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    size_t n = rtmp_group_count(g);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        rtmp_l_conn_push(L, rtmp_group_member(g, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int group_clear(lua_State *L)
{
    rtmp_group_clear(rtmp_l_group_check(L, 1));
    return 0;
}

/* The header of g:send(msg [, hdr]) / g:metadata: the message's, with
 * hdr's fields, and the type's default chunk stream unless hdr names one. */
static lmsg *send_args(lua_State *L, rtmp_msg_hdr *h)
{
    lmsg *m = check_msg(L, 2);
    *h = m->h;
    h->csid = 0;
    rtmp_l_read_hdr(L, lua_isnoneornil(L, 3) ? 0 : 3, h);
    h->length = (uint32_t)m->len;
    return m;
}

/* g:send(msg [, hdr]) -> members reached.  The message is chunked once
 * per distinct (outgoing chunk size, stream id) among the members, with a
 * fmt 0 first chunk, and the same bytes are queued to each of them,
 * except to members whose slow-reader policy drops it; with a cache,
 * audio and video are cached (core/group.h). */
static int group_send(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    rtmp_msg_hdr h;
    lmsg *m = send_args(L, &h);
    lua_pushinteger(L, rtmp_group_send(g, &h, m->data, rtmp_net_now(rtmp_l_state_get(L)->net)));
    return 1;
}

/* g:metadata(msg [, hdr]) -> members reached: the same, and a group with a
 * cache keeps msg as the stream's metadata for joiners. */
static int group_metadata(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    rtmp_msg_hdr h;
    lmsg *m = send_args(L, &h);
    lua_pushinteger(L, rtmp_group_metadata(g, &h, m->data, rtmp_net_now(rtmp_l_state_get(L)->net)));
    return 1;
}

/* g:reset(): empty the cache. */
static int group_reset(lua_State *L)
{
    rtmp_group_reset(rtmp_l_group_check(L, 1));
    return 0;
}

static int push_cached(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    lua_State *L = ud;
    rtmp_l_push_msg(L, h, payload, 0, RTMP_AMF_MAX_DEPTH);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

/* g:cached() -> array of message objects: what a joiner gets, in order
 * (copies: for a relay starting up, not for players), and the payload
 * bytes they hold. */
static int group_cached(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    size_t n;
    size_t bytes = rtmp_group_cached_bytes(g, &n);
    lua_createtable(L, (int)n, 0);
    if (rtmp_group_each_cached(g, push_cached, L) < 0)
        return luaL_error(L, "out of memory");
    lua_pushinteger(L, (lua_Integer)bytes);
    return 2;
}

static int group_gc(lua_State *L)
{
    lgroup *lg = luaL_checkudata(L, 1, GROUP_MT);
    rtmp_group_free(lg->g);
    lg->g = NULL;
    return 0;
}

static const luaL_Reg group_methods[] = {
    { "add", group_add }, { "remove", group_remove }, { "has", group_has },
    { "count", group_len }, { "members", group_members }, { "clear", group_clear },
    { "send", group_send }, { "metadata", group_metadata }, { "reset", group_reset },
    { "cached", group_cached }, { NULL, NULL },
};

void rtmp_l_open_group(lua_State *L)
{
    luaL_newmetatable(L, GROUP_MT);
    lua_newtable(L);
    luaL_setfuncs(L, group_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, group_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, group_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_group);
    lua_setfield(L, -2, "group");
}
