/*
 * l_contain.c: contained scripts (l_contain.h, docs/CONTAIN.md): the one
 * protected call every call from the loop into Lua goes through, the
 * budget hook, and the containment settings (script_instructions,
 * on_error; described in l_settings.c).
 */
#include <stdio.h>
#include <string.h>

#include "l_contain.h"
#include "l_loop.h"
#include "l_settings.h"
#include "../core/log.h"

static void contain_hook(lua_State *L, lua_Debug *ar);

void rtmp_l_contain_arm(lua_State *L)
{
    if (lua_gethook(L) == NULL)
        lua_sethook(L, contain_hook, LUA_MASKCOUNT, RTMP_L_HOOK_STEP);
}

/* The count hook: every RTMP_L_HOOK_STEP instructions of a thread that
 * has it (RTMP_L_HOOK_NEAR while a call runs with the state within a
 * quarter of its memory budget).  Outside calls from the loop it does
 * nothing.  Inside, it adds up the instructions and raises once the call
 * is over its instruction budget, or once the state is over its memory
 * budget after a full collection; from then on it checks at every
 * instruction, so a script's own pcall cannot swallow the error for long. */
static void contain_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    rtmp_l_state *st = rtmp_l_state_get(L);
    int count = lua_gethookcount(L);
    if (st && st->depth > 0) {
        st->used += count;
        if (st->budget > 0 && st->used > st->budget) {
            lua_sethook(L, contain_hook, LUA_MASKCOUNT, 1);
            luaL_where(L, 0); /* in a hook, level 0 is the interrupted function */
            lua_pushfstring(L, "instruction budget exceeded (%I instructions)", (LUAI_UACINT)st->budget);
            lua_concat(L, 2);
            lua_error(L);
        }
        if (st->mem && st->mem->over) {
            lua_gc(L, LUA_GCCOLLECT);
            if (st->mem->used > st->mem->limit) {
                lua_sethook(L, contain_hook, LUA_MASKCOUNT, 1);
                luaL_where(L, 0);
                lua_pushfstring(L, "memory budget exceeded (%I bytes in use, budget %I)",
                                (LUAI_UACINT)st->mem->used, (LUAI_UACINT)st->mem->limit);
                lua_concat(L, 2);
                lua_error(L);
            }
            st->mem->over = 0;
        }
    }
    int step = RTMP_L_HOOK_STEP;
    if (st && st->depth > 0 && st->mem && st->mem->limit && st->mem->used > st->mem->limit - st->mem->limit / 4)
        step = RTMP_L_HOOK_NEAR;
    if (count != step)
        lua_sethook(L, contain_hook, LUA_MASKCOUNT, step);
}

/* [-0, +0, -] field k of rtmp.options as a non-negative integer (0 when
 * missing or not one): read when a call without a connection starts. */
static lua_Integer option_integer(lua_State *L, const char *k)
{
    lua_Integer v = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, k);
        lua_Number n = lua_tonumber(L, -1);
        if (n > 0)
            v = n < (lua_Number)LUA_MAXINTEGER ? (lua_Integer)n : LUA_MAXINTEGER;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

int rtmp_l_contain_on_error(lua_State *L)
{
    int mode = RTMP_L_ON_ERROR_CLOSE;
    lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "on_error");
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (s && !strcmp(s, "drop"))
            mode = RTMP_L_ON_ERROR_DROP;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return mode;
}

void rtmp_l_contain_fields(lua_State *L, int t, lua_Integer *instructions, int *on_error)
{
    if (!t)
        return;
    if (lua_getfield(L, t, "script_instructions") != LUA_TNIL)
        *instructions = (lua_Integer)rtmp_l_setting_number(L, rtmp_l_setting_find("script_instructions"), -1);
    lua_pop(L, 1);
    if (lua_getfield(L, t, "on_error") != LUA_TNIL)
        *on_error = rtmp_l_setting_choice(L, rtmp_l_setting_find("on_error"), -1);
    lua_pop(L, 1);
}

void rtmp_l_contain_read(lua_State *L, int t, lua_Integer *instructions, int *on_error)
{
    *instructions = 0;
    *on_error = RTMP_L_ON_ERROR_CLOSE;
    lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY);
    if (lua_istable(L, -1))
        rtmp_l_contain_fields(L, lua_gettop(L), instructions, on_error);
    lua_pop(L, 1);
    rtmp_l_contain_fields(L, t, instructions, on_error);
    if (*instructions > 0) {
        rtmp_l_contain_arm(L);
        rtmp_l_contain_arm(rtmp_l_state_get(L)->L);
    }
}

static int traceback(lua_State *L)
{
    /* the traceback itself must not fail for the memory budget */
    rtmp_l_state *st = rtmp_l_state_get(L);
    if (st && st->mem)
        st->mem->armed = 0;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL && !lua_isnoneornil(L, 1))
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

int rtmp_l_pcall(lua_State *L, rtmp_l_owner *o, int nargs, const char *what)
{
    rtmp_l_state *st = o ? o->st : rtmp_l_state_get(L);
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    if (st->depth++ == 0) {
        st->used = 0;
        st->budget = o ? o->instructions : option_integer(L, "script_instructions");
        if (st->mem)
            st->mem->over = 0;
        if (st->budget > 0 || (st->mem && st->mem->limit))
            rtmp_l_contain_arm(L);
    }
    if (st->mem)
        st->mem->armed = 1;
    int rc = lua_pcall(L, nargs, 0, base);
    st->depth--;
    if (rc == LUA_OK) {
        if (st->mem)
            st->mem->armed = st->depth > 0;
        lua_remove(L, base);
        return 0;
    }
    if (st->mem) /* nothing below may fail: not even inside an outer call */
        st->mem->armed = 0;
    int closed = 0;
    const char *err = lua_tostring(L, -1);
    if (!err)
        err = "(error object is not a string)";
    if (rc == LUA_ERRMEM && st->mem && st->mem->limit) {
        /* Lua calls no message handler for memory errors: no traceback */
        lua_pushfstring(L, "%s (the script memory budget is %I bytes; no traceback for a memory error)",
                        err, (LUAI_UACINT)st->mem->limit);
        lua_replace(L, -2);
        err = lua_tostring(L, -1);
    }
    if (o && o->c && o->on_error == RTMP_L_ON_ERROR_DROP) {
        rtmp_log(RTMP_LOG_ERROR, o->id, o->peer, "script error in %s (on_error = drop: connection kept): %s",
                 what, err);
    } else if (o && o->c) {
        closed = 1;
        rtmp_log(RTMP_LOG_ERROR, o->id, o->peer, "script error in %s: %s", what, err);
        /* The reason is the first line: the error itself, without the traceback. */
        char reason[200];
        size_t n = strcspn(err, "\n");
        snprintf(reason, sizeof reason, "script error: %.*s", (int)(n > 180 ? 180 : n), err);
        rtmp_conn_fail(o->c, reason);
    } else {
        rtmp_log(RTMP_LOG_ERROR, o ? o->id : 0, o ? o->peer : NULL, "script error in %s: %s", what, err);
    }
    lua_pop(L, 2);
    if (st->mem)
        st->mem->armed = st->depth > 0;
    return closed || !o ? -1 : 0;
}

