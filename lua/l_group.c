/*
 * l_group.c: groups ("rtmp.group"): fan-out of one message to many
 * connections without copying it per member, and the late-join cache
 * (core/group.h does both; this file is the Lua face).
 *
 *   local g = rtmp.group([{ cache = true, gop_max_bytes = N, legacy = "all" | "legacy" }])
 *   g:add(conn [, stream_id [, legacy]]), g:remove(conn), g:has(conn), g:count() / #g,
 *   g:members(), g:clear(), g:send(msg [, hdr [, legacy]]) -> members reached,
 *   g:metadata(msg [, hdr]) -> members reached, g:reset(), g:cached(),
 *   g:http_players() -> { { id, addr, websocket, legacy, bytes_out, queued, dropped } },
 *   g:end_http([reason [, id]])
 *
 * HTTP-FLV and WS-FLV players (core/group.h) join a group through an HTTP
 * handler's streamed answer (l_httpd.c); g:count() counts them too.
 *
 * A group is Lua-owned; it holds a reference to each member, a
 * connection's lconn (l_conn.h) or a session (l_session.c, kept alive by
 * a registry reference), dropped when the member is removed or found
 * closed.  conn:forward(stream_id, g) (l_conn.c) and s:forward (l_session.c)
 * fan a publisher's audio and video out through g in C, with no Lua call
 * per message.
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

#define GROUP_MT RTMP_L_GROUP_MT

typedef struct lgroup {
    rtmp_group *g;   /* first: l_forward.c reads it (l_group.h) */
} lgroup;

/* One membership, the group's ud for it: a connection's lconn, or a
 * session and the reference that keeps it alive. */
typedef struct lmember {
    lconn     *lc;   /* a connection, or NULL */
    lua_State *L;    /* a session: the main thread, and the reference */
    int        ref;
} lmember;

static void release_member(void *ud)
{
    lmember *m = ud;
    if (m->lc)
        rtmp_l_conn_release(m->lc);
    else
        luaL_unref(m->L, LUA_REGISTRYINDEX, m->ref);
    free(m);
}

/* [-0, +0, v] The member at idx, a connection (*lcp) or a session (the
 * result); raises when it is neither. */
static rtmp_l_member *member_at(lua_State *L, int idx, lconn **lcp)
{
    rtmp_l_member *sm = luaL_testudata(L, idx, RTMP_L_SESSION_MT);
    *lcp = sm ? NULL : rtmp_l_conn_check(L, idx);
    return sm;
}

/* The member's slot of its core connection (NULL once closed). */
static rtmp_conn_core *const *member_slot(rtmp_l_member *sm, lconn *lc)
{
    return sm ? &sm->cc : &lc->cc;
}

/* [-0, +0, e] The time of the group's clock (rtmp.group{ clock = f }), or the loop's. */
static double group_now(lua_State *L, int idx)
{
    if (lua_getiuservalue(L, idx, 1) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return rtmp_net_now(rtmp_l_state_get(L)->net);
    }
    lua_call(L, 0, 1);
    double now = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return now;
}

rtmp_group *rtmp_l_group_check(lua_State *L, int idx)
{
    lgroup *lg = luaL_checkudata(L, idx, GROUP_MT);
    if (!lg->g)
        luaL_argerror(L, idx, "group already finalized");
    return lg->g;
}

/* rtmp.group([opts]): opts.cache keeps the late-join cache, bounded by
 * opts.gop_max_bytes (the settings table's row); opts.legacy is what
 * legacy members get (core/group.h): "all" (the default) or "legacy"
 * (audio and video in their legacy form only); opts.clock, a function
 * giving the time in seconds, is the clock the slow-reader policy
 * measures with (the replay's virtual clock; default the loop's). */
static int l_group(lua_State *L)
{
    static const char *const legacy_names[] = { "all", "legacy", NULL };
    rtmp_group_config cfg = { .cache = 0, .gop_max_bytes = RTMP_GROUP_GOP_MAX, .legacy = RTMP_GROUP_LEGACY_ALL,
                              .release = release_member };
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_getfield(L, 1, "cache");
        cfg.cache = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (lua_getfield(L, 1, "legacy") != LUA_TNIL) {
            int i = 0;
            const char *v = lua_tostring(L, -1);
            while (v && legacy_names[i] && strcmp(v, legacy_names[i]) != 0)
                i++;
            if (!v || !legacy_names[i])
                return luaL_error(L, "rtmp.group: legacy must be \"all\" or \"legacy\", not %s", luaL_tolstring(L, -1, NULL));
            cfg.legacy = i == 0 ? RTMP_GROUP_LEGACY_ALL : RTMP_GROUP_LEGACY_FORM;
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 1, "gop_max_bytes") != LUA_TNIL)
            cfg.gop_max_bytes = (size_t)rtmp_l_setting_number(L, rtmp_l_setting_find("gop_max_bytes"), -1);
        lua_pop(L, 1);
    }
    lgroup *lg = lua_newuserdatauv(L, sizeof *lg, 1);
    lg->g = NULL;
    luaL_setmetatable(L, GROUP_MT);
    if (!lua_isnoneornil(L, 1)) {
        if (lua_getfield(L, 1, "clock") != LUA_TNIL)
            luaL_checktype(L, -1, LUA_TFUNCTION);
        lua_setiuservalue(L, -2, 1);
    }
    if (!(lg->g = rtmp_group_new(&cfg)))
        return luaL_error(L, "out of memory");
    return 1;
}

/* g:add(conn [, stream_id [, legacy]]): (re)join with the message stream
 * id media goes out on, as a legacy member when legacy is true (a player
 * that announced no Enhanced RTMP FourCC); a group with a cache sends it
 * to a new member at once. */
static int group_add(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lconn *lc;
    rtmp_l_member *sm = member_at(L, 2, &lc);
    uint32_t sid = (uint32_t)luaL_optinteger(L, 3, 1);
    int legacy = lua_toboolean(L, 4);
    lmember *m = calloc(1, sizeof *m);
    if (!m)
        return luaL_error(L, "out of memory");
    if (lc) {
        m->lc = lc;
        lc->refs++; /* the membership's, given back by release_member */
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
        m->L = lua_tothread(L, -1);
        lua_pop(L, 1);
        lua_pushvalue(L, 2);
        m->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    int rc = rtmp_group_add(g, member_slot(sm, lc), sm ? &sm->mq : &lc->mq, sid, legacy, m);
    if (rc != 0)
        release_member(m); /* a member already, or not added */
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
    lconn *lc;
    rtmp_l_member *sm = member_at(L, 2, &lc);
    lua_pushboolean(L, rtmp_group_remove(g, member_slot(sm, lc)));
    return 1;
}

static int group_has(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lconn *lc;
    rtmp_l_member *sm = member_at(L, 2, &lc);
    lua_pushboolean(L, rtmp_group_has(g, member_slot(sm, lc)));
    return 1;
}

/* g:count() / #g: the open members, FLV players included. */
static int group_len(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    lua_pushinteger(L, (lua_Integer)(rtmp_group_count(g) + rtmp_group_flv_count(g)));
    return 1;
}

/* g:http_players() -> array of the HTTP-FLV and WS-FLV players: { id (the
 * HTTP connection's), addr, websocket, legacy, bytes_out (taken by the
 * peer), queued (not yet), dropped (frames, by the slow-reader policy) }. */
static int group_http_players(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    size_t n = rtmp_group_flv_count(g);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const rtmp_flv_player *p = rtmp_group_flv_player(g, i);
        lua_createtable(L, 0, 7);
        lua_pushinteger(L, (lua_Integer)p->id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, p->peer);
        lua_setfield(L, -2, "addr");
        lua_pushboolean(L, p->ws);
        lua_setfield(L, -2, "websocket");
        lua_pushboolean(L, p->legacy);
        lua_setfield(L, -2, "legacy");
        lua_pushinteger(L, (lua_Integer)p->written);
        lua_setfield(L, -2, "bytes_out");
        lua_pushinteger(L, (lua_Integer)p->q.bytes);
        lua_setfield(L, -2, "queued");
        lua_pushinteger(L, (lua_Integer)p->mq.dropped);
        lua_setfield(L, -2, "dropped");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* g:end_http([reason [, id]]) -> how many: end every HTTP-FLV and WS-FLV
 * player's response, or the one whose id is id (the stream ended, or
 * /api/drop: what is queued is written first). */
static int group_end_http(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    const char *reason = luaL_optstring(L, 2, "stream ended");
    if (lua_isnoneornil(L, 3))
        lua_pushinteger(L, (lua_Integer)rtmp_group_end_flv(g, reason));
    else
        lua_pushinteger(L, rtmp_group_end_flv_id(g, (unsigned long)luaL_checkinteger(L, 3), reason));
    return 1;
}

/* g:members() -> array of the open members (connections, sessions). */
static int group_members(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    size_t n = rtmp_group_count(g);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const lmember *m = rtmp_group_member(g, i);
        if (m->lc)
            rtmp_l_conn_push(L, m->lc);
        else
            lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
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

/* g:send(msg [, hdr [, legacy]]) -> members reached.  The message is
 * chunked once per distinct (outgoing chunk size, stream id) among the
 * members, with a fmt 0 first chunk, and the same bytes are queued to each
 * of them, except to members whose slow-reader policy drops it, and to
 * legacy members when legacy is false (nil: the group's legacy policy
 * decides); with a cache, audio and video are cached (core/group.h). */
static int group_send(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    rtmp_msg_hdr h;
    lmsg *m = send_args(L, &h);
    int legacy = lua_isnoneornil(L, 4) ? -1 : lua_toboolean(L, 4);
    lua_pushinteger(L, rtmp_group_send_to(g, &h, m->data, group_now(L, 1), legacy));
    return 1;
}

/* g:metadata(msg [, hdr]) -> members reached: the same, and a group with a
 * cache keeps msg as the stream's metadata for joiners. */
static int group_metadata(lua_State *L)
{
    rtmp_group *g = rtmp_l_group_check(L, 1);
    rtmp_msg_hdr h;
    lmsg *m = send_args(L, &h);
    lua_pushinteger(L, rtmp_group_metadata(g, &h, m->data, group_now(L, 1)));
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
    { "cached", group_cached }, { "http_players", group_http_players }, { "end_http", group_end_http },
    { NULL, NULL },
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
