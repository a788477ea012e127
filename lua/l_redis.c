/*
 * l_redis.c: Redis clients ("rtmp.redis.client") on the loop, with
 * callbacks (core/net_redis.c: hiredis's async API and its libev adapter).
 *
 *   local r = rtmp.redis.new(url, opts, on_state)   -> client | nil, err
 *       on_state(r, connected, reason) each time the connection comes
 *       (true) or goes (false, "connection to host:port lost: ...")
 *   local cmd = r:send(fn, "SET", "k", "v")       -> command | nil, err, "IO"
 *       fn(reply) or fn(nil, "ERR ...", "REDIS") or fn(nil, err, code)
 *       (code: the core's error name, as rtmp.http's: "IO", "TIMEOUT", "CLOSED")
 *   cmd:cancel(), cmd:active()                      (cancel is also __close)
 *   r:connected(), r:address(), r:pending(), r:close()
 *   rtmp.redis.null                                  a nil reply
 *
 * rtmp.redis.connect and r:command, the forms that wait in the calling
 * coroutine, are Lua (lua/rtmp/redis.lua), and add to rtmp.redis.client,
 * the clients' method table.  Replies: a status or a string reply is a
 * string, an integer one an integer, a nil one rtmp.redis.null, an array
 * a sequence of replies; an error reply inside an array is { false,
 * "ERR ..." }.  Misuse raises (an option of the wrong type or out of
 * range, an unknown option, an argument other than a string or a number);
 * a URL that does not parse returns nil, err.  docs/REDIS.md.
 *
 * An open client keeps its box alive (a registry reference) until
 * r:close(); a command in flight keeps its box alive until it ends.  A
 * client still open when the Lua state closes is closed without calling
 * back.
 */
#include <string.h>

#include "l_contain.h"
#include "l_loop.h"
#include "../core/error.h"
#include "../core/net_redis.h"

#define CLIENT_MT "rtmp.redis.client"
#define CMD_MT "rtmp.redis.command"
#define NULL_KEY "rtmp.redis.null"

typedef struct lclient {
    rtmp_l_state *st;
    rtmp_redis   *r;        /* NULL once closed */
    int           selfref;  /* registry ref to the box while open */
    lua_State    *caller;   /* the thread running r:close(), for the callbacks it runs */
} lclient;

typedef struct lcmd {
    lclient        *client;
    rtmp_redis_cmd *c;       /* NULL once ended or cancelled */
    int             selfref; /* registry ref to the box while in flight */
} lcmd;

/* ---- replies ---- */

/* [-0, +1, m] a reply as a Lua value (an error reply: { false, text }). */
static void push_reply(lua_State *L, const redisReply *rep)
{
    luaL_checkstack(L, 4, "redis reply nested too deep");
    switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, rep->str, rep->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)rep->integer);
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)rep->elements, 0);
        for (size_t i = 0; i < rep->elements; i++) {
            push_reply(L, rep->element[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 2, 0);
        lua_pushboolean(L, 0);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, rep->str, rep->len);
        lua_rawseti(L, -2, 2);
        break;
    default: /* REDIS_REPLY_NIL */
        lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
        break;
    }
}

/* What the reply callback hands to deliver. */
typedef struct outcome {
    int               rc;
    const char       *err;
    const redisReply *reply;
} outcome;

/* fn, outcome: fn(reply), fn(nil, text, "REDIS") or fn(nil, err, code)
 * (under rtmp_l_pcall). */
static int deliver(lua_State *L)
{
    const outcome *o = lua_touserdata(L, 2);
    lua_settop(L, 1);
    if (o->rc < 0) {
        lua_call(L, rtmp_l_push_fail(L, o->err, o->rc), 0);
    } else if (o->reply->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, o->reply->str, o->reply->len);
        lua_pushliteral(L, "REDIS");
        lua_call(L, 3, 0);
    } else {
        push_reply(L, o->reply);
        lua_call(L, 1, 0);
    }
    return 0;
}

static void reply_cb(rtmp_redis_cmd *c, void *ud, int rc, const char *err, const redisReply *reply)
{
    lcmd *q = ud;
    lclient *lc = q->client;
    lua_State *L = lc->caller ? lc->caller : lc->st->L;
    q->c = NULL;
    outcome o = { rc, err, reply };
    rtmp_l_settle(L, &q->selfref, deliver, &o, "redis reply callback");
}

static void state_cb(rtmp_redis *r, void *ud, int connected, const char *reason)
{
    lclient *lc = ud;
    lua_State *L = lc->st->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->selfref); /* the box, kept here until the end */
    if (lua_getiuservalue(L, -1, 1) != LUA_TFUNCTION) {
        lua_pop(L, 2);
        return;
    }
    lua_pushvalue(L, -2);
    lua_pushboolean(L, connected);
    if (reason)
        lua_pushstring(L, reason);
    else
        lua_pushnil(L);
    rtmp_l_pcall(L, NULL, 3, "redis connection callback");
    lua_pop(L, 1);
}

/* ---- clients ---- */

static const char *const OPTIONS[] = { "connect_timeout", "command_timeout", "retry_min", "retry_max",
                                       "retry_factor", "name", NULL };

/* [-0, +0, e] the number field k of t (0 when nil); raises for another type. */
static double opt_number(lua_State *L, int t, const char *k)
{
    int kind = lua_getfield(L, t, k);
    double v = 0;
    if (kind == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (kind != LUA_TNIL)
        luaL_error(L, "rtmp.redis: %s must be a number of seconds", k);
    lua_pop(L, 1);
    return v;
}

/* rtmp.redis.new(url, opts, on_state) -> client | nil, err */
static int l_new(lua_State *L)
{
    rtmp_redis_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            int known = 0;
            if (lua_type(L, -2) == LUA_TSTRING)
                for (int i = 0; OPTIONS[i] && !known; i++)
                    known = !strcmp(OPTIONS[i], lua_tostring(L, -2));
            if (!known)
                luaL_error(L, "rtmp.redis: unknown option '%s' (want connect_timeout, command_timeout, "
                              "retry_min, retry_max, retry_factor or name)", luaL_tolstring(L, -2, NULL));
            lua_pop(L, 1);
        }
        cfg.connect_timeout = opt_number(L, 2, "connect_timeout");
        cfg.command_timeout = opt_number(L, 2, "command_timeout");
        cfg.retry_min = opt_number(L, 2, "retry_min");
        cfg.retry_max = opt_number(L, 2, "retry_max");
        cfg.retry_factor = opt_number(L, 2, "retry_factor");
        int kind = lua_getfield(L, 2, "name");
        if (kind == LUA_TSTRING)
            cfg.name = lua_tostring(L, -1); /* kept alive by opts */
        else if (kind != LUA_TNIL)
            luaL_error(L, "rtmp.redis: name must be a string");
        lua_pop(L, 1);
    }
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TFUNCTION);
    char err[512];
    if (rtmp_redis_check_config(&cfg, err, sizeof err) < 0)
        return luaL_error(L, "rtmp.redis: %s", err);
    lclient *lc = lua_newuserdatauv(L, sizeof *lc, 1);
    lc->st = rtmp_l_state_get(L);
    lc->r = NULL;
    lc->selfref = LUA_NOREF;
    lc->caller = NULL;
    luaL_setmetatable(L, CLIENT_MT);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    lc->selfref = luaL_ref(L, LUA_REGISTRYINDEX);
    lc->r = rtmp_redis_new(lc->st->net, &cfg, state_cb, lc, err, sizeof err);
    if (!lc->r) {
        luaL_unref(L, LUA_REGISTRYINDEX, lc->selfref);
        lc->selfref = LUA_NOREF;
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static lclient *check_client(lua_State *L)
{
    return luaL_checkudata(L, 1, CLIENT_MT);
}

/* r:send(fn, cmd, arg...) -> command | nil, err, "IO" | "CLOSED" */
static int client_send(lua_State *L)
{
    lclient *lc = check_client(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int argc = lua_gettop(L) - 2;
    if (argc < 1)
        return luaL_error(L, "rtmp.redis: a command needs its name (\"GET\", \"SET\", ...)");
    if (!lc->r) {
        return rtmp_l_push_fail(L, "closed", RTMP_ERR_CLOSED);
    }
    const char **argv = lua_newuserdatauv(L, (size_t)argc * (sizeof *argv + sizeof(size_t)), 0);
    size_t *lens = (size_t *)(argv + argc);
    for (int i = 0; i < argc; i++) {
        int t = lua_type(L, 3 + i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return luaL_error(L, "rtmp.redis: argument %d of the command is a %s (want a string or a number)",
                              i + 1, lua_typename(L, t));
        argv[i] = lua_tolstring(L, 3 + i, &lens[i]); /* a number becomes its string in place */
    }
    lcmd *q = lua_newuserdatauv(L, sizeof *q, 1);
    q->client = lc;
    q->c = NULL;
    q->selfref = LUA_NOREF;
    luaL_setmetatable(L, CMD_MT);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    q->selfref = luaL_ref(L, LUA_REGISTRYINDEX); /* before the core holds q: this may raise */
    char err[800];
    q->c = rtmp_redis_command(lc->r, argc, argv, lens, reply_cb, q, err, sizeof err);
    if (!q->c) {
        rtmp_l_release(L, &q->selfref);
        return rtmp_l_push_fail(L, err, RTMP_ERR_IO);
    }
    return 1;
}

/* r:connected() -> boolean */
static int client_connected(lua_State *L)
{
    lclient *lc = check_client(L);
    lua_pushboolean(L, lc->r && rtmp_redis_connected(lc->r));
    return 1;
}

/* r:address() -> "host:port" or the socket path (nil once closed) */
static int client_address(lua_State *L)
{
    lclient *lc = check_client(L);
    if (!lc->r)
        return 0;
    lua_pushstring(L, rtmp_redis_address(lc->r));
    return 1;
}

/* r:pending() -> commands in flight */
static int client_pending(lua_State *L)
{
    lclient *lc = check_client(L);
    lua_pushinteger(L, lc->r ? (lua_Integer)rtmp_redis_pending(lc->r) : 0);
    return 1;
}

/* r:close(): commands in flight end with nil, "closed", "CLOSED" now. */
static int client_close(lua_State *L)
{
    lclient *lc = check_client(L);
    rtmp_redis *r = lc->r;
    if (!r)
        return 0;
    lc->r = NULL;
    lc->caller = L;
    rtmp_redis_close(r, 1);
    lc->caller = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, lc->selfref);
    lc->selfref = LUA_NOREF;
    return 0;
}

/* Collected only once closed, or when the state closes: then without
 * calling back. */
static int client_gc(lua_State *L)
{
    lclient *lc = lua_touserdata(L, 1);
    if (lc->r)
        rtmp_redis_close(lc->r, 0);
    lc->r = NULL;
    return 0;
}

/* ---- commands ---- */

/* cmd:cancel(): its function is not called; the reply, when it comes, is
 * dropped. */
static int cmd_cancel(lua_State *L)
{
    lcmd *q = luaL_checkudata(L, 1, CMD_MT);
    if (q->c)
        rtmp_redis_cancel(q->c);
    q->c = NULL;
    rtmp_l_release(L, &q->selfref);
    return 0;
}

/* cmd:active() -> whether it waits for its reply */
static int cmd_active(lua_State *L)
{
    lcmd *q = luaL_checkudata(L, 1, CMD_MT);
    lua_pushboolean(L, q->c != NULL);
    return 1;
}

/* A box in flight is collected only when the state closes (its client
 * closes without calling back). */
static int cmd_gc(lua_State *L)
{
    lcmd *q = lua_touserdata(L, 1);
    q->c = NULL;
    return 0;
}

static int null_tostring(lua_State *L)
{
    lua_pushliteral(L, "rtmp.redis.null");
    return 1;
}

static const luaL_Reg client_methods[] = {
    { "send", client_send },       { "connected", client_connected }, { "address", client_address },
    { "pending", client_pending }, { "close", client_close },         { NULL, NULL },
};

static const luaL_Reg cmd_methods[] = {
    { "cancel", cmd_cancel }, { "active", cmd_active }, { NULL, NULL },
};

void rtmp_l_open_redis(lua_State *L)
{
    lua_newtable(L); /* rtmp.redis */
    luaL_newmetatable(L, CLIENT_MT);
    lua_newtable(L);
    luaL_setfuncs(L, client_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "client"); /* rtmp.redis.client: redis.lua adds command, on_connect */
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newmetatable(L, CMD_MT);
    lua_newtable(L);
    luaL_setfuncs(L, cmd_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, cmd_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cmd_cancel);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    /* the nil reply: one value, so arrays keep their length */
    if (lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        lua_newuserdatauv(L, 0, 0);
        lua_newtable(L);
        lua_pushcfunction(L, null_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "rtmp.redis.null");
        lua_setfield(L, -2, "__name");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
    }
    lua_setfield(L, -2, "null");
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
    lua_setfield(L, -2, "redis");
}
