/*
 * l_timer.c: timers ("rtmp.timer"), Lua-owned, on the loop's clock.
 *
 *   local t = rtmp.timer(after, fn [, repeat])   fn(t) after `after` seconds,
 *                                                then every `repeat` seconds
 *   t:stop(), t:active()
 *
 * An active timer keeps its box alive (a registry reference); its
 * function runs under rtmp_l_pcall (l_contain.c) with rtmp.options'
 * budgets.
 */
#include "l_contain.h"
#include "l_loop.h"
#include "l_settings.h"
#include "../core/log.h"

#define TIMER_MT "rtmp.timer"

typedef struct ltimer {
    rtmp_l_state *st;
    rtmp_timer *t;
    int         selfref;    /* registry ref to the box while active */
    double      repeat;
} ltimer;

static void timer_fire(rtmp_timer *t, void *ud)
{
    ltimer *lt = ud;
    lua_State *L = lt->st->L;
    int ref = lt->selfref;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);      /* the timer box, kept here until the end */
    lua_getiuservalue(L, -1, 1);                 /* its function */
    lua_pushvalue(L, -2);                        /* its argument */
    if (lt->repeat <= 0) {                       /* one-shot: no longer active */
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        lt->selfref = LUA_NOREF;
    }
    /* A repeating timer whose function failed stops, unless
     * rtmp.options.on_error is "drop" (or fn stopped it already). */
    if (rtmp_l_pcall(L, NULL, 1, "timer") < 0 && lt->repeat > 0 && rtmp_l_contain_on_error(L) == RTMP_L_ON_ERROR_CLOSE
        && lt->selfref != LUA_NOREF) {
        rtmp_log(RTMP_LOG_WARN, 0, NULL, "repeating timer stopped after a script error");
        lt->repeat = 0;
        if (lt->t)
            rtmp_timer_stop(lt->t);
        luaL_unref(L, LUA_REGISTRYINDEX, lt->selfref);
        lt->selfref = LUA_NOREF;
    }
    lua_pop(L, 1);
}

/* rtmp.timer(after, fn [, repeat]) -> timer: fn(timer) runs after `after`
 * seconds, then every `repeat` seconds if given.  timer:stop() cancels. */
static int l_timer(lua_State *L)
{
    rtmp_l_state *st = rtmp_l_state_get(L);
    double after = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    double repeat = luaL_optnumber(L, 3, 0);
    luaL_argcheck(L, after >= 0, 1, "negative delay");
    luaL_argcheck(L, repeat >= 0, 3, "negative interval");
    ltimer *lt = lua_newuserdatauv(L, sizeof *lt, 1);
    lt->st = st;
    lt->selfref = LUA_NOREF;
    lt->repeat = repeat;
    lt->t = NULL;
    luaL_setmetatable(L, TIMER_MT);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1);
    lt->t = rtmp_timer_new(st->net, timer_fire, lt);
    if (!lt->t)
        return luaL_error(L, "out of memory");
    rtmp_timer_start(lt->t, after, repeat);
    lua_pushvalue(L, -1);
    lt->selfref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int timer_stop(lua_State *L)
{
    ltimer *lt = luaL_checkudata(L, 1, TIMER_MT);
    if (lt->t)
        rtmp_timer_stop(lt->t);
    if (lt->selfref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, lt->selfref);
        lt->selfref = LUA_NOREF;
    }
    return 0;
}

static int timer_active(lua_State *L)
{
    ltimer *lt = luaL_checkudata(L, 1, TIMER_MT);
    lua_pushboolean(L, lt->t && rtmp_timer_active(lt->t));
    return 1;
}

static int timer_gc(lua_State *L)
{
    ltimer *lt = luaL_checkudata(L, 1, TIMER_MT);
    if (lt->t) {
        rtmp_timer_free(lt->t);
        lt->t = NULL;
    }
    return 0;
}

static const luaL_Reg timer_methods[] = {
    { "stop", timer_stop }, { "active", timer_active }, { NULL, NULL },
};

void rtmp_l_open_timer(lua_State *L)
{
    luaL_newmetatable(L, TIMER_MT);
    lua_newtable(L);
    luaL_setfuncs(L, timer_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, timer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_timer);
    lua_setfield(L, -2, "timer");
}
