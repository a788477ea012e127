/*
 * l_contain.h: contained scripts (docs/CONTAIN.md): every call from the
 * loop into Lua (handlers, timers, and through them the coroutines
 * rtmp.client resumes) runs under one protected call (l_contain.c) with
 * a traceback, and two budgets bound it:
 *   - instructions: a count hook adds up the Lua instructions the call
 *     runs and raises "instruction budget exceeded" past the setting
 *     script_instructions (0 = no limit);
 *   - memory (luartmp --script-memory): the state's allocator counts the
 *     bytes the Lua state holds; while a call runs, growing past the
 *     budget makes the hook raise "memory budget exceeded" (after a full
 *     collection), and an allocation past the budget plus an eighth fails
 *     at once (a Lua memory error).
 * The executable (luartmp.c) owns the allocator and shares its accounting
 * through the registry.
 */
#ifndef RTMP_L_CONTAIN_H
#define RTMP_L_CONTAIN_H

#include <stddef.h>

#include <lua.h>

/* The allocator's accounting.  luartmp.c owns it and puts its address in
 * the registry under RTMP_L_MEMORY_KEY (a light userdata) before
 * require "rtmp"; the binding reads it when the module opens. */
typedef struct rtmp_l_memory {
    size_t used;   /* bytes the Lua state has allocated now */
    size_t limit;  /* the budget in bytes; 0 = none */
    int    armed;  /* set by the binding while a call into Lua runs: only
                      then does the budget apply */
    int    over;   /* set by the allocator: an armed allocation took used
                      past limit; the hook checks it and clears it */
} rtmp_l_memory;

#define RTMP_L_MEMORY_KEY "rtmp.memory"

/* The Lua instructions between two checks of the budgets: the granularity
 * of script_instructions. */
#define RTMP_L_HOOK_STEP 1000

/* The step while the state is within a quarter of its memory budget: a
 * loop that allocates fast would otherwise run 1000 instructions past the
 * point where it crossed the budget, enough to hit the hard limit (an
 * eighth past it) first and get Lua's bare memory error instead of the
 * budget's error with a traceback. */
#define RTMP_L_HOOK_NEAR 20

struct rtmp_conn;
struct rtmp_l_state;

/* Who a call into Lua is for: a connection (the binding's connection
 * embeds this) with its containment settings.  Calls for no connection
 * (timers) pass NULL and take the settings from rtmp.options. */
typedef struct rtmp_l_owner {
    struct rtmp_l_state *st;
    struct rtmp_conn    *c;            /* NULL once closed */
    unsigned long        id;
    char                 peer[64];
    lua_Integer          instructions; /* script_instructions: budget per call, 0 = none */
    int                  on_error;     /* RTMP_L_ON_ERROR_* (l_settings.h) */
} rtmp_l_owner;

/* Install the budget hook (a count hook) on thread L unless it already
 * has a hook; threads created from L afterwards inherit it.  luartmp
 * calls it on the main thread before it creates the script's coroutine
 * when a budget is given on the command line; the binding calls it when a
 * server or connection sets script_instructions.  [-0, +0, -] */
void rtmp_l_contain_arm(lua_State *L);

/* Call the function below nargs arguments on top of the stack, under the
 * budgets (o's script_instructions, or rtmp.options' without o; the
 * memory budget) when it is the outermost such call.  On error log it
 * with the traceback (what names the handler) and, if o's connection is
 * open and its on_error is "close", close it.  Returns 0, or -1 when it
 * closed the connection (without o: on any error).  [-(nargs+1), +0, -] */
int rtmp_l_pcall(lua_State *L, rtmp_l_owner *o, int nargs, const char *what);

/* [-0, +0, e] The containment settings of the table at t (0: none) over
 * *instructions and *on_error: script_instructions = N (>= 0, 0 = no
 * limit), on_error = "close" | "drop"; raises for a bad value. */
void rtmp_l_contain_fields(lua_State *L, int t, lua_Integer *instructions, int *on_error);

/* [-0, +0, e] A server's or connection's containment settings: the table
 * at t over rtmp.options over the defaults (no instruction limit,
 * close).  A budget arms the hook on this thread and on the main thread. */
void rtmp_l_contain_read(lua_State *L, int t, lua_Integer *instructions, int *on_error);

/* [-0, +0, -] rtmp.options.on_error as RTMP_L_ON_ERROR_* (close when unset). */
int rtmp_l_contain_on_error(lua_State *L);

#endif
