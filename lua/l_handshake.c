/*
 * l_handshake.c: rtmp.handshake, the sans-I/O handshake as a Lua-owned
 * object (for tests and tools; connections run their own in C).
 *
 *   local hs = rtmp.handshake("client", { layout = 2 })
 *   send(hs:start())                         -- C0C1
 *   local n, reply = hs:feed(bytes)          -- n bytes used; reply to send
 *   if hs:done() then ... bytes:sub(n + 1) are the first chunks ... end
 */
#include "l_rtmp.h"
#include "../core/error.h"
#include "../core/handshake.h"

#define HANDSHAKE_MT "rtmp.handshake"

typedef struct lhandshake {
    rtmp_handshake *hs;    /* NULL once closed */
    rtmp_buf       *out;   /* replies gather here; emptied after each call */
    int             role;
} lhandshake;

static lhandshake *check_open(lua_State *L)
{
    lhandshake *lh = luaL_checkudata(L, 1, HANDSHAKE_MT);
    if (!lh->hs)
        luaL_error(L, "attempt to use a closed handshake");
    return lh;
}

/* [-0, +3, -] nil, message, code for a negative RTMP_ERR_* code. */
static int push_fail(lua_State *L, int err)
{
    luaL_pushfail(L);
    lua_pushstring(L, rtmp_strerror(err));
    lua_pushstring(L, rtmp_errname(err));
    return 3;
}

/* [-0, +1, m] push the gathered reply bytes ("" when none) and empty the
 * buffer, keeping it for the next call. */
static void push_out(lua_State *L, lhandshake *lh)
{
    if (lh->out) {
        lua_pushlstring(L, (const char *)lh->out->data, lh->out->len);
        lh->out->len = 0;
    } else {
        lua_pushliteral(L, "");
    }
}

/* rtmp.handshake(role [, opts]) -> handshake.  role "server" | "client";
 * opts { plain = boolean, layout = 1 | 2 (client: where C1's digest goes) }. */
static int l_handshake_new(lua_State *L)
{
    static const char *const roles[] = { "server", "client", NULL };
    static const int role_ids[] = { RTMP_ROLE_SERVER, RTMP_ROLE_CLIENT };
    int role = role_ids[luaL_checkoption(L, 1, NULL, roles)];
    unsigned flags = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "plain") != LUA_TNIL && lua_toboolean(L, -1))
            flags |= RTMP_HS_FLAG_PLAIN;
        lua_pop(L, 1);
        if (lua_getfield(L, 2, "layout") != LUA_TNIL) {
            int isint;
            lua_Integer layout = lua_tointegerx(L, -1, &isint);
            if (!isint || (layout != 1 && layout != 2))
                return luaL_error(L, "field 'layout' must be 1 or 2");
            if (layout == 2)
                flags |= RTMP_HS_FLAG_LAYOUT2;
        }
        lua_pop(L, 1);
    }
    lhandshake *lh = lua_newuserdatauv(L, sizeof *lh, 0);
    lh->hs = NULL;
    lh->out = NULL;
    lh->role = role;
    luaL_setmetatable(L, HANDSHAKE_MT);
    lh->hs = rtmp_handshake_new(role, flags);
    if (!lh->hs)
        return luaL_error(L, "not enough memory");
    return 1;
}

/* hs:start() -> bytes (client: C0C1; server: "") | nil, msg, code */
static int l_handshake_start(lua_State *L)
{
    lhandshake *lh = check_open(L);
    int rc = rtmp_handshake_start(lh->hs, &lh->out);
    if (rc < 0)
        return push_fail(L, rc);
    push_out(L, lh);
    return 1;
}

/* hs:feed(bytes) -> consumed, reply | nil, msg, code.  Bytes past the end
 * of the handshake are not consumed. */
static int l_handshake_feed(lua_State *L)
{
    lhandshake *lh = check_open(L);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    ssize_t n = rtmp_handshake_feed(lh->hs, (const uint8_t *)p, len, &lh->out);
    if (n < 0) {
        if (lh->out)
            lh->out->len = 0;
        return push_fail(L, (int)n);
    }
    lua_pushinteger(L, (lua_Integer)n);
    push_out(L, lh);
    return 2;
}

static int l_handshake_done(lua_State *L)
{
    lhandshake *lh = check_open(L);
    lua_pushboolean(L, rtmp_handshake_done(lh->hs));
    return 1;
}

/* hs:peer_kind() -> "unknown" | "plain" | "digest1" | "digest2" */
static int l_handshake_peer_kind(lua_State *L)
{
    lhandshake *lh = check_open(L);
    switch (rtmp_handshake_peer_kind(lh->hs)) {
    case RTMP_HS_PLAIN:    lua_pushliteral(L, "plain"); break;
    case RTMP_HS_DIGEST_1: lua_pushliteral(L, "digest1"); break;
    case RTMP_HS_DIGEST_2: lua_pushliteral(L, "digest2"); break;
    default:               lua_pushliteral(L, "unknown"); break;
    }
    return 1;
}

static int l_handshake_peer_verified(lua_State *L)
{
    lhandshake *lh = check_open(L);
    lua_pushboolean(L, rtmp_handshake_peer_verified(lh->hs));
    return 1;
}

/* __gc, __close and close: idempotent. */
static int l_handshake_close(lua_State *L)
{
    lhandshake *lh = luaL_checkudata(L, 1, HANDSHAKE_MT);
    rtmp_handshake_free(lh->hs);
    lh->hs = NULL;
    rtmp_buf_unref(lh->out);
    lh->out = NULL;
    return 0;
}

static int l_handshake_tostring(lua_State *L)
{
    lhandshake *lh = luaL_checkudata(L, 1, HANDSHAKE_MT);
    if (lh->hs)
        lua_pushfstring(L, "rtmp.handshake (%s, %p)",
                        lh->role == RTMP_ROLE_SERVER ? "server" : "client", (void *)lh);
    else
        lua_pushliteral(L, "rtmp.handshake (closed)");
    return 1;
}

static const luaL_Reg handshake_methods[] = {
    { "start", l_handshake_start },
    { "feed", l_handshake_feed },
    { "done", l_handshake_done },
    { "peer_kind", l_handshake_peer_kind },
    { "peer_verified", l_handshake_peer_verified },
    { "close", l_handshake_close },
    { NULL, NULL },
};

static const luaL_Reg handshake_meta[] = {
    { "__index", NULL },     /* placeholder, filled below */
    { "__gc", l_handshake_close },
    { "__close", l_handshake_close },
    { "__tostring", l_handshake_tostring },
    { NULL, NULL },
};

/* [-0, +0, m] the metatable, with the method table as __index. */
static void createmeta(lua_State *L)
{
    luaL_newmetatable(L, HANDSHAKE_MT);
    luaL_setfuncs(L, handshake_meta, 0);
    lua_createtable(L, 0, sizeof handshake_methods / sizeof handshake_methods[0] - 1);
    luaL_setfuncs(L, handshake_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void rtmp_l_open_handshake(lua_State *L)
{
    createmeta(L);
    lua_pushcfunction(L, l_handshake_new);
    lua_setfield(L, -2, "handshake");
}
