/*
 * l_util.c: what every part of the binding may use (l_rtmp.h): the
 * buffer slot, an integer field of an options table, a callback in
 * flight; and for scripts rtmp.isatty and rtmp.fail.
 *
 *   rtmp.isatty(2)          -- is stderr a terminal?
 *   rtmp.isatty("stdout")   -- the same, by name
 *   rtmp.fail("listen 127.0.0.1:1935: Address already in use")
 *   rtmp.failure(err)       -- its message when err is rtmp.fail's, else nil
 */
#include <string.h>
#include <unistd.h>

#include "l_contain.h"
#include "l_rtmp.h"
#include "../core/error.h"

#define SLOT_MT "rtmp.bufslot"

rtmp_buf **rtmp_l_slot_new(lua_State *L)
{
    rtmp_buf **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    luaL_setmetatable(L, SLOT_MT);
    return slot;
}

void rtmp_l_slot_push(lua_State *L, rtmp_buf **slot)
{
    if (*slot)
        lua_pushlstring(L, (const char *)(*slot)->data, (*slot)->len);
    else
        lua_pushliteral(L, "");
    rtmp_buf_unref(*slot);
    *slot = NULL;
}

rtmp_buf *rtmp_l_slot_take(rtmp_buf **slot)
{
    rtmp_buf *b = *slot;
    *slot = NULL;
    return b;
}

static int slot_gc(lua_State *L)
{
    rtmp_buf **slot = luaL_checkudata(L, 1, SLOT_MT);
    rtmp_buf_unref(*slot);
    *slot = NULL;
    return 0;
}

uint32_t rtmp_l_opt_u32(lua_State *L, int t, const char *k, uint32_t def)
{
    uint32_t v = def;
    if (t && lua_getfield(L, t, k) != LUA_TNIL) {
        lua_Integer i = luaL_checkinteger(L, -1);
        if (i < 0 || i > 0xFFFFFFFFLL)
            luaL_error(L, "field '%s' out of range", k);
        v = (uint32_t)i;
    }
    if (t)
        lua_pop(L, 1);
    return v;
}

/* rtmp.isatty(fd): true when the file descriptor fd (an integer, or one of
 * "stdin", "stdout", "stderr") refers to a terminal, false otherwise
 * (also for a closed or invalid descriptor).  Raises on a bad argument.
 * [-0, +1, -] */
static int l_isatty(lua_State *L)
{
    int fd;
    if (lua_type(L, 1) == LUA_TSTRING) {
        static const char *const names[] = { "stdin", "stdout", "stderr", NULL };
        fd = luaL_checkoption(L, 1, NULL, names);
    } else {
        lua_Integer n = luaL_checkinteger(L, 1);
        luaL_argcheck(L, n >= 0 && n <= 65535, 1, "file descriptor out of range");
        fd = (int)n;
    }
    lua_pushboolean(L, isatty(fd) == 1);
    return 1;
}

/* ---- rtmp.fail: an error for the user to read ---- */

/* Its error value is a table { message = "..." } with this metatable:
 * tostring and .. give the message, so a script that catches it reads it
 * as it would a string; luartmp, when nothing caught it, prints the
 * message alone (rtmp_l_failure). */
#define FAILURE_MT "rtmp.failure"

const char *rtmp_l_failure(lua_State *L, int idx)
{
    const char *msg = NULL;
    int top = lua_gettop(L);
    idx = lua_absindex(L, idx);
    if (lua_istable(L, idx) && lua_checkstack(L, 3) && lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, FAILURE_MT);
        if (lua_rawequal(L, -1, -2)) {
            lua_pushliteral(L, "message");
            if (lua_rawget(L, idx) == LUA_TSTRING)
                msg = lua_tostring(L, -1); /* held by the error table at idx */
        }
    }
    lua_settop(L, top);
    return msg;
}

/* rtmp.fail(message): raise it, as an rtmp.failure.  [-0, +0, v] */
static int l_fail(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_tostring(L, -1); /* (a number becomes its text) */
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, FAILURE_MT);
    return lua_error(L);
}

/* rtmp.failure(err) -> err's message when it is rtmp.fail's, else nil */
static int l_failure(lua_State *L)
{
    const char *msg = rtmp_l_failure(L, 1);
    if (msg)
        lua_pushstring(L, msg);
    else
        lua_pushnil(L);
    return 1;
}

static int failure_tostring(lua_State *L)
{
    const char *msg = rtmp_l_failure(L, 1);
    lua_pushstring(L, msg ? msg : "(rtmp.failure without a message)");
    return 1;
}

static int failure_concat(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    luaL_tolstring(L, 2, NULL);
    lua_concat(L, 2);
    return 1;
}

void rtmp_l_open_util(lua_State *L)
{
    if (luaL_newmetatable(L, SLOT_MT)) {
        lua_pushcfunction(L, slot_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, FAILURE_MT)) { /* (__name: FAILURE_MT) */
        lua_pushcfunction(L, failure_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, failure_concat);
        lua_setfield(L, -2, "__concat");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_isatty);
    lua_setfield(L, -2, "isatty");
    lua_pushcfunction(L, l_fail);
    lua_setfield(L, -2, "fail");
    lua_pushcfunction(L, l_failure);
    lua_setfield(L, -2, "failure");
}

/* ---- a callback in flight ---- */

void rtmp_l_settle(lua_State *L, int *ref, lua_CFunction deliver, void *outcome, const char *what)
{
    int r = *ref;
    if (r == LUA_NOREF)
        return;
    *ref = LUA_NOREF;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r); /* the box, kept here until the end */
    luaL_unref(L, LUA_REGISTRYINDEX, r);
    lua_pushcfunction(L, deliver);
    lua_getiuservalue(L, -2, 1);
    lua_pushlightuserdata(L, outcome);
    rtmp_l_pcall(L, NULL, 2, what);
    lua_pop(L, 1);
}

void rtmp_l_release(lua_State *L, int *ref)
{
    if (*ref == LUA_NOREF)
        return;
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    *ref = LUA_NOREF;
}

int rtmp_l_push_fail(lua_State *L, const char *err, int rc)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, rtmp_errname(rc));
    return 3;
}
