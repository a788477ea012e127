/*
 * l_conn.c: connections ("rtmp.conn"): accepted by a server (l_server.c)
 * or made with rtmp.connect; their events (handshake, message, close,
 * passthrough bytes) dispatched to the script's handlers, their methods
 * and fields.  The sending methods are l_send.c's, on the connection's
 * session.
 *
 * A connection's box points at the C-owned lconn (l_conn.h); C clears
 * the pointer to the C connection when it closes, and methods on a
 * closed connection return nil, "closed".  Every call into Lua runs under
 * rtmp_l_pcall (l_contain.c); an error closes only the connection it came
 * from (or drops that call: on_error = "drop").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_conn.h"
#include "l_msg.h"
#include "l_queue.h"
#include "l_send.h"
#include "l_settings.h"
#include "l_tls.h"
#include "../core/error.h"
#include "../core/log.h"
#include "../core/url.h"

/* ---- the box ---- */

void rtmp_l_conn_release(lconn *lc)
{
    if (--lc->refs == 0) {
        rtmp_l_queue_free(&lc->mq);
        free(lc);
    }
}

void rtmp_l_conn_push(lua_State *L, const lconn *lc)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->boxref);
}

/* [-0, +1, -] push handler `name` of lc (from the box's handlers table), or nil. */
static int push_handler(lua_State *L, lconn *lc, const char *name)
{
    rtmp_l_conn_push(L, lc);
    lua_getiuservalue(L, -1, 2);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int t = lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return t;
}

void rtmp_l_conn_box(lua_State *L, lconn *lc, int handlers_idx)
{
    lconn **box = lua_newuserdatauv(L, sizeof *box, 2);
    *box = lc;
    luaL_setmetatable(L, CONN_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, handlers_idx);
    lua_setiuservalue(L, -2, 2);
    lua_pushvalue(L, -1);
    lc->boxref = luaL_ref(L, LUA_REGISTRYINDEX);
}

lconn *rtmp_l_conn_new(rtmp_l_state *st, rtmp_conn *c, int role)
{
    lconn *lc = calloc(1, sizeof *lc);
    if (!lc)
        return NULL;
    lc->o.st = st;
    lc->o.c = c;
    lc->cc = rtmp_conn_get_core(c);
    lc->refs = 2; /* the box and the open connection */
    lc->role = role;
    lc->o.id = rtmp_conn_id(c);
    lc->boxref = LUA_NOREF;
    snprintf(lc->o.peer, sizeof lc->o.peer, "%s", rtmp_conn_peer(c));
    return lc;
}

/* ---- events ---- */

int rtmp_l_conn_notify(lconn *lc, const char *name)
{
    lua_State *L = lc->o.st->L;
    if (push_handler(L, lc, name) == LUA_TFUNCTION) {
        rtmp_l_conn_push(L, lc);
        return rtmp_l_pcall(L, &lc->o, 1, name);
    }
    lua_pop(L, 1);
    return 0;
}

int rtmp_l_conn_ready(rtmp_conn *c, void *ud)
{
    (void)c;
    return rtmp_l_conn_notify(ud, "on_handshake");
}

void rtmp_l_conn_closed(rtmp_conn *c, void *ud, const char *reason)
{
    lconn *lc = ud;
    if (!lc)
        return;
    lc->o.c = NULL; /* closed: methods now return nil, "closed" */
    lc->cc = NULL;  /* and groups drop it */
    lua_State *L = lc->o.st->L;
    rtmp_l_trace_free(L, rtmp_conn_session(c), &lc->trace);
    rtmp_l_queue_free(&lc->mq);
    if (!L) /* the Lua state is closing: no more calls into it */
        goto done;
    rtmp_l_forward_clear(L, &lc->fwd);
    if (push_handler(L, lc, "on_close") == LUA_TFUNCTION) {
        rtmp_l_conn_push(L, lc);
        lua_pushstring(L, reason);
        rtmp_l_pcall(L, &lc->o, 2, "on_close");
    } else {
        lua_pop(L, 1);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, lc->boxref);
done:
    lc->boxref = LUA_NOREF;
    rtmp_l_conn_release(lc);
}

/* Passthrough connections: the bytes just read go to on_data(conn, bytes). */
void rtmp_l_conn_data(rtmp_conn *c, void *ud, const uint8_t *p, size_t len)
{
    lconn *lc = ud;
    lua_State *L = lc->o.st->L;
    if (push_handler(L, lc, "on_data") != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    rtmp_l_conn_push(L, lc);
    lua_pushlstring(L, (const char *)p, len);
    rtmp_l_pcall(L, &lc->o, 2, "on_data");
}

/* ---- messages ---- */

static int msg_pushmsg(lua_State *L)
{
    const rtmp_msg_hdr *h = lua_touserdata(L, 1);
    const uint8_t *payload = lua_touserdata(L, 2);
    unsigned applied = (unsigned)lua_tointeger(L, 3);
    rtmp_l_push_msg(L, h, payload, applied, (int)lua_tointeger(L, 4));
    return 1;
}

void rtmp_l_conn_warm(rtmp_conn *c, void *ud, rtmp_warm *w)
{
    const lconn *lc = ud;
    if (lc && lc->fwd.n > 0) {
        rtmp_warm_add(w, lc, 1); /* its first line: what a forwarded message reads */
        rtmp_l_forward_warm(&lc->fwd, w);
    }
}

int rtmp_l_conn_message(rtmp_conn *c, void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    lconn *lc = ud;
    rtmp_group *fg = rtmp_l_forward_find(&lc->fwd, h);
    if (fg) { /* forwarded: fanned out in C, no Lua message object, at the
               * time of this read (no clock call per message) */
        rtmp_l_forward_send(fg, lc->cc, h, payload);
        return 0;
    }
    lua_State *L = lc->o.st->L;
    if (push_handler(L, lc, "on_message") != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return 0;
    }
    rtmp_l_conn_push(L, lc);
    /* Build the message under pcall: decoding allocates. */
    lua_pushcfunction(L, msg_pushmsg);
    lua_pushlightuserdata(L, (void *)h);
    lua_pushlightuserdata(L, (void *)payload);
    lua_pushinteger(L, applied);
    lua_pushinteger(L, rtmp_conn_get_config(c)->session.max_amf_depth);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        rtmp_log(RTMP_LOG_ERROR, lc->o.id, lc->o.peer, "message: %s", lua_tostring(L, -1));
        lua_pop(L, 3);
        rtmp_conn_fail(c, "out of memory");
        return RTMP_ERR_NOMEM;
    }
    return rtmp_l_pcall(L, &lc->o, 2, "on_message");
}

/* ---- methods and fields ---- */

lconn *rtmp_l_conn_check(lua_State *L, int idx)
{
    lconn **box = luaL_checkudata(L, idx, CONN_MT);
    if (!*box)
        luaL_argerror(L, idx, "connection object already finalized");
    return *box;
}

/* Returns the open conn, or pushes nil, "closed" and returns NULL. */
static rtmp_conn *open_conn(lua_State *L, lconn *lc)
{
    if (lc && lc->o.c && !rtmp_conn_closing(lc->o.c))
        return lc->o.c;
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return NULL;
}

/* The session behind an open connection (l_send.h): the sending methods
 * work on it. */
static rtmp_session *conn_session(lua_State *L, int idx, rtmp_conn **cp)
{
    rtmp_conn *c = open_conn(L, rtmp_l_conn_check(L, idx));
    *cp = c;
    return c ? rtmp_conn_session(c) : NULL;
}

static const rtmp_l_sendable conn_sendable = { conn_session };

/* conn:pause_reading(on): stop (true) or resume (false) reading from the
 * socket, as a peer that stopped reading would. */
static int conn_pause_reading(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    int on = lua_toboolean(L, 2);
    rtmp_conn *c = open_conn(L, lc);
    if (!c)
        return 2;
    rtmp_conn_pause_reading(c, on);
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_close(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    const char *reason = luaL_optstring(L, 2, "closed by script");
    rtmp_conn *c = open_conn(L, lc);
    if (!c)
        return 2;
    rtmp_conn_close(c, reason);
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_log(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    int level = rtmp_log_parse_level(luaL_checkstring(L, 2));
    if (level < 0)
        return luaL_argerror(L, 2, "expected error, warn, info, debug or trace");
    if (!rtmp_log_enabled(level))
        return 0;
    rtmp_l_format(L, 3);
    rtmp_log(level, lc->o.id, lc->o.peer, "%s", lua_tostring(L, -1));
    return 0;
}

/* conn:trace(on [, path | file]) -> true | nil, err: switch the message
 * trace (l_trace.c). */
static int conn_trace(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    rtmp_conn *c = open_conn(L, lc);
    if (!c)
        return 2;
    return rtmp_l_trace_method(L, rtmp_conn_session(c), &lc->trace, lc->o.id, lc->o.peer);
}

/* conn:forward(stream_id, group) -> true: from now on, the audio and
 * video the peer sends on that message stream go to the group in C (its
 * fan-out and cache), not to on_message; conn:forward(stream_id) or
 * conn:forward(stream_id, nil) ends it.  Data, commands and aggregates
 * still go to on_message.  At most RTMP_L_FORWARDS streams at once. */
static int conn_forward(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    if (!open_conn(L, lc))
        return 2;
    return rtmp_l_forward_method(L, &lc->fwd);
}

/* conn:queue([settings]) -> the slow-reader policy's settings and state (l_queue.c). */
static int conn_queue(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    return rtmp_l_queue_method(L, 2, &lc->mq, lc->o.c && !rtmp_conn_closing(lc->o.c) ? lc->o.c : NULL);
}

static const luaL_Reg conn_methods[] = {
    { "close", conn_close },
    { "trace", conn_trace },
    { "log", conn_log },
    { "queue", conn_queue },
    { "forward", conn_forward },
    { "pause_reading", conn_pause_reading },
    { NULL, NULL },
};

static int conn_index(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    const char *k = lua_tostring(L, 2);
    if (k) {
        if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
            return 1; /* a method */
        lua_pop(L, 1);
        if (!strcmp(k, "id")) { lua_pushinteger(L, (lua_Integer)lc->o.id); return 1; }
        if (!strcmp(k, "peer")) { lua_pushstring(L, lc->o.peer); return 1; }
        if (!strcmp(k, "role")) { lua_pushstring(L, lc->role == RTMP_ROLE_CLIENT ? "client" : "server"); return 1; }
        if (!strcmp(k, "closed")) { lua_pushboolean(L, !lc->o.c || rtmp_conn_closing(lc->o.c)); return 1; }
        if (!strcmp(k, "lingering")) {
            lua_pushboolean(L, !lc->o.c && rtmp_net_lingering(lc->o.st->net, lc->o.id));
            return 1;
        }
        if (!strcmp(k, "on_error")) {
            lua_pushstring(L, rtmp_l_setting_choice_name(rtmp_l_setting_find("on_error"), lc->o.on_error));
            return 1;
        }
        if (!strcmp(k, "script_instructions")) { lua_pushinteger(L, lc->o.instructions); return 1; }
        if (lc->o.c) {
            /* bytes as the socket saw them; the rest from the session */
            if (!strcmp(k, "bytes_in")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_bytes_in(lc->o.c)); return 1; }
            if (!strcmp(k, "bytes_out")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_bytes_written(lc->o.c)); return 1; }
            if (!strcmp(k, "pending")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_pending(lc->o.c)); return 1; }
            if (!strcmp(k, "tls")) return rtmp_l_push_tls(L, lc->o.c); /* what TLS negotiated, or false */
            if (!strcmp(k, "local_addr")) {
                char a[80];
                rtmp_conn_local(lc->o.c, a, sizeof a);
                lua_pushstring(L, a);
                return 1;
            }
            /* heap bytes the C side holds for the connection, and those in partial messages */
            if (!strcmp(k, "memory")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_memory(lc->o.c)); return 1; }
            if (!strcmp(k, "buffered")) {
                lua_pushinteger(L, (lua_Integer)rtmp_reader_buffered(rtmp_session_reader(rtmp_conn_session(lc->o.c))));
                return 1;
            }
            if (rtmp_l_session_field(L, rtmp_conn_session(lc->o.c), k))
                return 1;
        }
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
}

static int conn_newindex(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (k && (!strcmp(k, "on_error") || !strcmp(k, "script_instructions"))) {
        /* containment settings of this connection (l_contain.c) */
        lua_settop(L, 3);
        lua_newtable(L);
        lua_pushvalue(L, 3);
        lua_setfield(L, -2, k);
        rtmp_l_contain_fields(L, 4, &lc->o.instructions, &lc->o.on_error);
        if (lc->o.instructions > 0) {
            rtmp_l_contain_arm(L);
            rtmp_l_contain_arm(lc->o.st->L);
        }
        return 0;
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_settable(L, -3);
    return 0;
}

static int conn_gc(lua_State *L)
{
    lconn **box = luaL_checkudata(L, 1, CONN_MT);
    if (*box) {
        rtmp_l_conn_release(*box);
        *box = NULL;
    }
    return 0;
}

static int conn_eq(lua_State *L)
{
    lconn **a = luaL_testudata(L, 1, CONN_MT), **b = luaL_testudata(L, 2, CONN_MT);
    lua_pushboolean(L, a && b && *a == *b);
    return 1;
}

static int conn_tostring(lua_State *L)
{
    lconn *lc = rtmp_l_conn_check(L, 1);
    lua_pushfstring(L, "rtmp.conn(%d %s%s)", (int)lc->o.id, lc->o.peer, lc->o.c ? "" : " closed");
    return 1;
}

/* rtmp.connect(url, handlers) -> conn | nil, err: the callback form (the
 * Lua module's rtmp.connect without handler functions is rtmp.client's,
 * the coroutine form: lua/rtmp.lua).  The handshake runs in the loop;
 * handlers.on_handshake(conn) follows, then on_message for every
 * message, and on_close(conn, reason) at the end. */
static int l_connect(lua_State *L)
{
    static const rtmp_conn_handler client_handler = { NULL, rtmp_l_conn_ready, rtmp_l_conn_message,
                                                      rtmp_l_conn_closed, rtmp_l_conn_data, rtmp_l_conn_warm };
    rtmp_l_state *st = rtmp_l_state_get(L);
    size_t len;
    const char *url = luaL_checklstring(L, 1, &len);
    luaL_checktype(L, 2, LUA_TTABLE);
    rtmp_url u;
    int rc = rtmp_url_parse(url, len, &u);
    if (rc < 0)
        return rtmp_l_url_fail(L, rc, url);
    lua_pushlstring(L, u.host.s, u.host.len);
    lua_pushlstring(L, u.port.s, u.port.len);
    rtmp_conn_config cfg;
    rtmp_l_settings_read(L, 2, &cfg, RTMP_ROLE_CLIENT);
    rtmp_tls_config tls; /* rtmps:// */
    rtmp_l_settings_read_tls(L, 2, &tls);
    lua_Integer instructions;
    int on_error;
    rtmp_l_contain_read(L, 2, &instructions, &on_error);
    char err[300];
    rtmp_conn *c = rtmp_net_connect(st->net, lua_tostring(L, -2), lua_tostring(L, -1), &cfg, u.tls ? &tls : NULL,
                                    &client_handler, NULL, err, sizeof err);
    if (!c) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lconn *lc = rtmp_l_conn_new(st, c, RTMP_ROLE_CLIENT);
    if (!lc) {
        rtmp_conn_close(c, "out of memory");
        return luaL_error(L, "out of memory");
    }
    lc->o.instructions = instructions;
    lc->o.on_error = on_error;
    rtmp_conn_set_ud(c, lc);
    rtmp_l_conn_box(L, lc, 2);
    rtmp_l_trace_settings(L, 2, rtmp_conn_session(c), &lc->trace, lc->o.id, lc->o.peer);
    /* remember the URL and its parts in the connection's fields */
    lua_getiuservalue(L, -1, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "url");
    rtmp_l_url_set(L, &u, 0);
    lua_pop(L, 1);
    return 1;
}

void rtmp_l_open_conn(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__newindex", conn_newindex }, { "__gc", conn_gc }, { "__eq", conn_eq },
        { "__tostring", conn_tostring }, { NULL, NULL },
    };
    rtmp_l_send_newtype(L, CONN_MT, &conn_sendable, conn_methods, conn_index, meta);
    lua_pushcfunction(L, l_connect);
    lua_setfield(L, -2, "connect");
}
