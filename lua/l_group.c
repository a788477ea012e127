/*
 * l_group.c: groups ("rtmp.group"): fan-out of one message to many
 * connections without copying it per member.
 *
 *   local g = rtmp.group()
 *   g:add(conn [, stream_id]), g:remove(conn), g:has(conn), g:count() / #g,
 *   g:members(), g:clear(), g:send(msg [, hdr]) -> members reached
 *
 * A group is Lua-owned; it holds a reference to each member's lconn
 * (l_conn.h), dropped when the member is removed or found closed.
 */
#include <stdlib.h>
#include <string.h>

#include "l_conn.h"
#include "l_msg.h"
#include "l_queue.h"
#include "../core/chunk.h"
#include "../core/mediaq.h"

#define GROUP_MT "rtmp.group"

typedef struct lmember {
    lconn   *lc;
    uint32_t stream_id;
} lmember;

typedef struct lgroup {
    lmember *m;
    size_t   n, cap;
} lgroup;

static lgroup *check_group(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, GROUP_MT);
}

static int l_group(lua_State *L)
{
    lgroup *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    luaL_setmetatable(L, GROUP_MT);
    return 1;
}

static void group_drop(lgroup *g, size_t i)
{
    rtmp_l_conn_release(g->m[i].lc);
    g->m[i] = g->m[--g->n];
}

/* Remove members whose connection has closed. */
static void group_prune(lgroup *g)
{
    for (size_t i = 0; i < g->n;)
        if (!g->m[i].lc->o.c)
            group_drop(g, i);
        else
            i++;
}

/* g:add(conn, stream_id): (re)join with the message stream id media goes out on. */
static int group_add(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lconn *lc = rtmp_l_conn_check(L, 2);
    uint32_t sid = (uint32_t)luaL_optinteger(L, 3, 1);
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].lc == lc) {
            g->m[i].stream_id = sid;
            lua_pushboolean(L, 1);
            return 1;
        }
    if (!lc->o.c) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        lmember *m = realloc(g->m, cap * sizeof *m);
        if (!m)
            return luaL_error(L, "out of memory");
        g->m = m;
        g->cap = cap;
    }
    g->m[g->n].lc = lc;
    g->m[g->n].stream_id = sid;
    g->n++;
    lc->refs++;
    lua_pushboolean(L, 1);
    return 1;
}

static int group_remove(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lconn *lc = rtmp_l_conn_check(L, 2);
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].lc == lc) {
            group_drop(g, i);
            lua_pushboolean(L, 1);
            return 1;
        }
    lua_pushboolean(L, 0);
    return 1;
}

static int group_has(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lconn *lc = rtmp_l_conn_check(L, 2);
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].lc == lc) {
            lua_pushboolean(L, lc->o.c != NULL);
            return 1;
        }
    lua_pushboolean(L, 0);
    return 1;
}

static int group_len(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    group_prune(g);
    lua_pushinteger(L, (lua_Integer)g->n);
    return 1;
}

/* g:members() -> array of the open connections. */
static int group_members(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    group_prune(g);
    lua_createtable(L, (int)g->n, 0);
    for (size_t i = 0; i < g->n; i++) {
        rtmp_l_conn_push(L, g->m[i].lc);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int group_clear(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    while (g->n)
        group_drop(g, g->n - 1);
    return 0;
}

#define GROUP_CACHE 8

/* g:send(msg [, hdr]) -> members reached.  The message is chunked once
 * per distinct (outgoing chunk size, stream id) among the members, with a
 * fmt 0 first chunk, and the same bytes are queued to each of them,
 * except to members whose slow-reader policy drops it (l_queue.c). */
static int group_send(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lmsg *m = check_msg(L, 2);
    rtmp_msg_hdr h = m->h;
    h.csid = 0;
    rtmp_l_read_hdr(L, lua_isnoneornil(L, 3) ? 0 : 3, &h);
    h.fmt = RTMP_FMT_AUTO;
    h.length = (uint32_t)m->len;

    struct { uint32_t chunk_size, stream_id; rtmp_buf *buf; } cache[GROUP_CACHE];
    int ncache = 0, reached = 0;
    int cls = rtmp_mediaq_class(h.type, m->data, m->len); /* for the slow-reader policy */
    double now = -1;
    for (size_t i = 0; i < g->n;) {
        lconn *lc = g->m[i].lc;
        if (!lc->o.c) {
            group_drop(g, i);
            continue;
        }
        i++;
        rtmp_session *s = rtmp_conn_session(lc->o.c);
        if (rtmp_conn_closing(lc->o.c) || !rtmp_session_ready(s))
            continue;
        h.stream_id = g->m[i - 1].stream_id;
        if (now < 0)
            now = rtmp_net_now(lc->o.st->net);
        if (rtmp_l_queue_offer(&lc->mq, lc->o.c, &h, cls, now) <= 0)
            continue; /* dropped, or closed as a stalled reader */
        uint32_t cs = rtmp_writer_chunk_size(rtmp_session_writer(s));
        rtmp_buf *buf = NULL, *uncached = NULL;
        for (int k = 0; k < ncache && !buf; k++)
            if (cache[k].chunk_size == cs && cache[k].stream_id == h.stream_id)
                buf = cache[k].buf;
        if (!buf) {
            if (rtmp_chunk_write_fmt0(cs, &h, m->data, &buf) < 0) {
                rtmp_buf_unref(buf);
                continue;
            }
            if (ncache < GROUP_CACHE) {
                cache[ncache].chunk_size = cs;
                cache[ncache].stream_id = h.stream_id;
                cache[ncache].buf = buf;
                ncache++;
            } else {
                uncached = buf; /* more distinct keys than the cache holds */
            }
        }
        if (rtmp_session_send_chunked(s, &h, buf) >= 0) {
            rtmp_l_queue_sent(lc->mq, lc->o.c, &h, cls);
            if (rtmp_conn_output_media(lc->o.c) >= 0)
                reached++;
        }
        rtmp_buf_unref(uncached);
    }
    for (int k = 0; k < ncache; k++)
        rtmp_buf_unref(cache[k].buf);
    lua_pushinteger(L, reached);
    return 1;
}

static int group_gc(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    while (g->n)
        group_drop(g, g->n - 1);
    free(g->m);
    g->m = NULL;
    g->cap = 0;
    return 0;
}

static const luaL_Reg group_methods[] = {
    { "add", group_add }, { "remove", group_remove }, { "has", group_has },
    { "count", group_len }, { "members", group_members }, { "clear", group_clear },
    { "send", group_send }, { NULL, NULL },
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
