/*
 * l_session.c: socket-free sessions ("rtmp.session"): a protocol session
 * with no socket and no clock, Lua-owned.  Bytes in with s:feed(bytes) ->
 * array of messages (or nil, message, code), bytes out with s:output() ->
 * string; the sending methods and state fields of a connection (l_send.c)
 * work on it.
 */
#include <string.h>
#include <sys/uio.h>

#include "l_msg.h"
#include "l_send.h"
#include "l_settings.h"
#include "l_trace.h"
#include "../core/error.h"

#define SESSION_MT "rtmp.session"

/* A Lua-owned session with no socket. */
typedef struct lsession {
    rtmp_session *s;
    lua_State    *L;      /* during feed: where messages go */
    int           out;    /* during feed: stack index of the message array */
    int           max_amf_depth;
    rtmp_l_trace *trace;  /* message trace (l_trace.c), NULL when off */
} lsession;

static int ls_ready(void *ud) { (void)ud; return 0; }

static int ls_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    lsession *ls = ud;
    lua_State *L = ls->L;
    rtmp_l_push_msg(L, h, payload, applied, ls->max_amf_depth);
    lua_rawseti(L, ls->out, (lua_Integer)luaL_len(L, ls->out) + 1);
    return 0;
}

/* rtmp.session{ role = "server"|"client", <settings as rtmp.listen> } ->
 * a protocol session with no socket and no clock: bytes in with
 * s:feed(bytes) -> array of messages (or nil, message, code), bytes out with
 * s:output() -> string.  The sending methods of a connection work on it. */
static int l_session(lua_State *L)
{
    static const char *const roles[] = { "server", "client", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "role");
    int role = luaL_checkoption(L, -1, "server", roles);
    lua_pop(L, 1);
    rtmp_conn_config cfg;
    rtmp_l_settings_read(L, 1, &cfg, role);
    lsession *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    memset(ls, 0, sizeof *ls);
    luaL_setmetatable(L, SESSION_MT);
    static const rtmp_session_handler sh = { ls_ready, ls_message };
    ls->max_amf_depth = cfg.session.max_amf_depth;
    ls->s = rtmp_session_new(&cfg.session, &sh, ls);
    if (!ls->s)
        return luaL_error(L, "out of memory");
    rtmp_l_trace_settings(L, 1, ls->s, &ls->trace, 0, NULL);
    if (rtmp_session_start(ls->s) < 0)
        return luaL_error(L, "out of memory");
    return 1;
}

static lsession *check_session(lua_State *L)
{
    lsession *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (!ls->s)
        luaL_argerror(L, 1, "session already closed");
    return ls;
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

static int session_feed(lua_State *L)
{
    lsession *ls = check_session(L);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    lua_newtable(L);
    ls->L = L;
    ls->out = lua_gettop(L);
    ssize_t rc = rtmp_session_feed(ls->s, (const uint8_t *)p, len);
    ls->L = NULL;
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, rtmp_strerror((int)rc));
        lua_pushstring(L, rtmp_errname((int)rc));
        return 3;
    }
    return 1;
}

static int session_output(lua_State *L)
{
    lsession *ls = check_session(L);
    rtmp_outq *q = rtmp_session_output(ls->s);
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
    return 1;
}

static int session_index(lua_State *L)
{
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
        return 1; /* a method: it reports "closed" itself */
    lsession *ls = check_session(L);
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
    rtmp_l_trace_free(L, ls->s, &ls->trace);
    rtmp_session_free(ls->s);
    ls->s = NULL;
    return 0;
}

static const luaL_Reg session_methods[] = {
    { "feed", session_feed },
    { "output", session_output },
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
