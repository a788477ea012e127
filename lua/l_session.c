/*
 * l_session.c: socket-free connections ("rtmp.session"), Lua-owned: the
 * core's connection (core/conn.h: a session plus its deadlines, connect
 * detection and closing policy) with no socket, on a clock the caller
 * passes in.  Bytes in with s:feed(bytes [, now]) -> array of messages
 * (or nil, message, code), bytes out with s:output([now]) -> string, the
 * deadlines with s.deadline and s:tick(now), the close the core decided
 * in s.closed; the sending methods and state fields of a connection
 * (l_send.c) work on it, a group (l_group.c) may hold it, and
 * s:forward(stream_id, group) fans its peer's media out through a group
 * in C, as conn:forward does.  The replay (lua/rtmp/replay.lua) drives
 * these with its virtual clock, as core/net.c drives the same code with
 * libev.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "l_forward.h"
#include "l_group.h"
#include "l_msg.h"
#include "l_send.h"
#include "l_settings.h"
#include "l_trace.h"
#include "../core/conn.h"
#include "../core/error.h"

#define SESSION_MT RTMP_L_SESSION_MT

/* A Lua-owned connection with no socket. */
typedef struct lsession {
    rtmp_l_member m;      /* first (l_group.h): m.cc, NULL once freed (s:close,
                             __gc), and the slow-reader state of a group member */
    rtmp_session *s;      /* m.cc's session */
    lua_State    *L;      /* during feed: where messages go */
    int           out;    /* during feed: stack index of the message array */
    int           max_amf_depth;
    rtmp_l_trace *trace;  /* message trace (l_trace.c), NULL when off */
    rtmp_l_forwards fwd;  /* s:forward */
} lsession;

static int ls_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    lsession *ls = ud;
    lua_State *L = ls->L;
    rtmp_group *fg = rtmp_l_forward_find(&ls->fwd, h);
    if (fg) /* s:forward: fanned out in C, at the time of this feed */
        rtmp_l_forward_send(fg, ls->m.cc, h, payload);
    rtmp_l_push_msg(L, h, payload, applied, ls->max_amf_depth);
    lua_Integer i = (lua_Integer)luaL_len(L, ls->out) + 1;
    lua_rawseti(L, ls->out, i);
    if (fg) { /* the array's field forwarded: { [i] = true } */
        if (lua_getfield(L, ls->out, "forwarded") != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, ls->out, "forwarded");
        }
        lua_pushboolean(L, 1);
        lua_rawseti(L, -2, i);
        lua_pop(L, 1);
    }
    return 0;
}

/* rtmp.session(settings [, now]) -> a connection with no socket:
 * settings as rtmp.listen's (over rtmp.options) with role = "server" or
 * "client"; now: the time it starts at on the caller's clock [0], from
 * which the handshake deadline runs.  A client's C0C1 is queued at once. */
static int l_session(lua_State *L)
{
    static const char *const roles[] = { "server", "client", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    double now = luaL_optnumber(L, 2, 0);
    lua_getfield(L, 1, "role");
    int role = luaL_checkoption(L, -1, "server", roles);
    lua_pop(L, 1);
    rtmp_conn_config cfg;
    rtmp_l_settings_read(L, 1, &cfg, role);
    cfg.passthrough = 0; /* a session is RTMP: it has no data handler */
    lsession *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    memset(ls, 0, sizeof *ls);
    luaL_setmetatable(L, SESSION_MT);
    static const rtmp_conn_core_handler ch = { NULL, ls_message, NULL, NULL };
    ls->max_amf_depth = cfg.session.max_amf_depth;
    ls->m.cc = rtmp_conn_core_new(&cfg, &ch, ls, now);
    if (!ls->m.cc)
        return luaL_error(L, "out of memory");
    ls->s = rtmp_conn_core_session(ls->m.cc);
    rtmp_l_trace_settings(L, 1, ls->s, &ls->trace, 0, NULL);
    if (rtmp_conn_core_start(ls->m.cc) < 0)
        return luaL_error(L, "out of memory");
    return 1;
}

static lsession *check_session(lua_State *L)
{
    lsession *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (!ls->m.cc)
        luaL_argerror(L, 1, "session already closed");
    return ls;
}

/* [-0, +0, v] the optional time at idx, else the last one passed in. */
static double opt_now(lua_State *L, int idx, const lsession *ls)
{
    return luaL_optnumber(L, idx, rtmp_conn_core_now(ls->m.cc));
}

/* The session behind a session object (l_send.h). */
static rtmp_session *session_session(lua_State *L, int idx, rtmp_conn **cp)
{
    lsession *ls = luaL_checkudata(L, idx, SESSION_MT);
    *cp = NULL;
    if (!ls->s) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
    }
    return ls->s;
}

static const rtmp_l_sendable session_sendable = { session_session };

/* s:trace(on [, path | file]) -> true | nil, err (l_trace.c). */
static int session_trace(lua_State *L)
{
    rtmp_conn *c;
    rtmp_session *s = session_session(L, 1, &c);
    if (!s)
        return 2;
    lsession *ls = lua_touserdata(L, 1);
    return rtmp_l_trace_method(L, s, &ls->trace, 0, NULL);
}

/* s:feed(bytes [, now]) -> array of the whole messages the bytes
 * completed | nil, message, code.  Audio and video of a forwarded stream
 * (s:forward) went to their group during the feed; they are in the array
 * too, their indexes marked true in its field forwarded.  A protocol error closes the
 * connection (s.closed says why) and returns it; a connection that was
 * closed before the call returns nil, "closed", "CLOSED".  One the core
 * closes while reading the bytes (an undecodable connect: after the
 * message) returns the messages up to the close; the rest is not read. */
static int session_feed(lua_State *L)
{
    lsession *ls = check_session(L);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    double now = opt_now(L, 3, ls);
    int was_closing = rtmp_conn_core_closing(ls->m.cc);
    lua_newtable(L);
    ls->L = L;
    ls->out = lua_gettop(L);
    ssize_t rc = rtmp_conn_core_feed(ls->m.cc, (const uint8_t *)p, len, now);
    ls->L = NULL;
    if (rc == RTMP_ERR_CLOSED && !was_closing)
        return 1; /* closed while reading: what came before the close */
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, rtmp_strerror((int)rc));
        lua_pushstring(L, rtmp_errname((int)rc));
        return 3;
    }
    return 1;
}

/* s:output([now]) -> the bytes queued since the last call, taken by
 * the peer at now (which keeps the connection from being idle). */
static int session_output(lua_State *L)
{
    lsession *ls = check_session(L);
    double now = opt_now(L, 2, ls);
    rtmp_outq *q = rtmp_session_output(ls->s);
    size_t taken = q->bytes;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    struct iovec iov[16];
    while (q->bytes > 0) {
        int n = rtmp_outq_iov(q, iov, 16);
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            luaL_addlstring(&b, iov[i].iov_base, iov[i].iov_len);
            total += iov[i].iov_len;
        }
        rtmp_outq_consume(q, total);
    }
    luaL_pushresult(&b);
    rtmp_conn_core_wrote(ls->m.cc, taken, now);
    return 1;
}

/* s:forward(stream_id [, group]) -> true: the audio and video the peer
 * sends on that stream go to the group during s:feed (as conn:forward's,
 * l_group.h); without a group, that ends. */
static int session_forward(lua_State *L)
{
    lsession *ls = check_session(L);
    return rtmp_l_forward_method(L, &ls->fwd);
}

/* s:tick(now) -> the reason the connection closes, or nil: runs the
 * deadlines (handshake, connect, idle) at now. */
static int session_tick(lua_State *L)
{
    lsession *ls = check_session(L);
    double now = luaL_checknumber(L, 2);
    if (!rtmp_conn_core_tick(ls->m.cc, now))
        return 0;
    lua_pushstring(L, rtmp_conn_core_reason(ls->m.cc));
    return 1;
}

static int session_index(lua_State *L)
{
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
        return 1; /* a method: it reports "closed" itself */
    lsession *ls = check_session(L);
    if (!strcmp(k, "closed")) { /* the reason, or false */
        if (rtmp_conn_core_closing(ls->m.cc))
            lua_pushstring(L, rtmp_conn_core_reason(ls->m.cc));
        else
            lua_pushboolean(L, 0);
        return 1;
    }
    if (!strcmp(k, "deadline")) { /* when s:tick is next due, or nil */
        double next = rtmp_conn_core_next_deadline(ls->m.cc);
        if (next <= 0)
            return 0;
        lua_pushnumber(L, next);
        return 1;
    }
    if (!strcmp(k, "memory")) { /* heap bytes the core holds for it (conn.memory's C side) */
        lua_pushinteger(L, (lua_Integer)rtmp_conn_core_memory(ls->m.cc));
        return 1;
    }
    if (!strcmp(k, "bytes_in") || !strcmp(k, "bytes_out")) {
        rtmp_session_info info;
        rtmp_session_get_info(ls->s, &info);
        lua_pushinteger(L, (lua_Integer)(k[6] == 'i' ? info.bytes_in : info.bytes_out));
        return 1;
    }
    return rtmp_l_session_field(L, ls->s, k);
}

static int session_gc(lua_State *L)
{
    lsession *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (!ls->m.cc)
        return 0;
    rtmp_l_trace_free(L, ls->s, &ls->trace);
    rtmp_l_forward_clear(L, &ls->fwd);
    rtmp_conn_core_free(ls->m.cc);
    ls->m.cc = NULL; /* a group holding it drops it */
    ls->s = NULL;
    if (ls->m.mq) {
        rtmp_mediaq_free(ls->m.mq);
        free(ls->m.mq);
        ls->m.mq = NULL;
    }
    return 0;
}

static const luaL_Reg session_methods[] = {
    { "feed", session_feed },
    { "output", session_output },
    { "tick", session_tick },
    { "forward", session_forward },
    { "trace", session_trace },
    { "close", session_gc },
    { NULL, NULL },
};

void rtmp_l_open_session(lua_State *L)
{
    static const luaL_Reg meta[] = { { "__gc", session_gc }, { "__close", session_gc }, { NULL, NULL } };
    rtmp_l_send_newtype(L, SESSION_MT, &session_sendable, session_methods, session_index, meta);
    lua_pushcfunction(L, l_session);
    lua_setfield(L, -2, "session");
}
