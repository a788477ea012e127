/*
 * l_contain.h: contained scripts (docs/CONTAIN.md), what the executable
 * (luartmp.c) and the binding (l_net.c) share.
 *
 * Every call from the loop into Lua (handlers, timers, and through them
 * the coroutines rtmp.client resumes) runs under one protected-call
 * helper in l_net.c.  Two budgets bound such a call:
 *   - instructions: a count hook adds up the Lua instructions the call
 *     runs and raises "instruction budget exceeded" past the setting
 *     script_instructions (0 = no limit);
 *   - memory (luartmp --script-memory): the state's allocator counts the
 *     bytes the Lua state holds; while a call runs, growing past the
 *     budget makes the hook raise "memory budget exceeded" (after a full
 *     collection), and an allocation past the budget plus an eighth fails
 *     at once (a Lua memory error).
 */
#ifndef RTMP_L_CONTAIN_H
#define RTMP_L_CONTAIN_H

#include <stddef.h>

#include <lua.h>

/* The allocator's accounting.  luartmp.c owns it and puts its address in
 * the registry under RTMP_L_MEMORY_KEY (a light userdata) before
 * require "rtmp"; l_net.c reads it when the module opens. */
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

/* Install the budget hook (a count hook) on thread L unless it already
 * has a hook; threads created from L afterwards inherit it.  luartmp
 * calls it on the main thread before it creates the script's coroutine
 * when a budget is given on the command line; the binding calls it when a
 * server or connection sets script_instructions.  [-0, +0, -] */
void rtmp_l_contain_arm(lua_State *L);

#endif
