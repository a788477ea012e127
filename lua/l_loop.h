/*
 * l_loop.h: the binding's state per Lua state (l_loop.c): the event loop
 * and the accounting of the call into Lua now running (l_contain.c).
 * Made when the module opens, freed with the Lua state.
 */
#ifndef RTMP_L_LOOP_H
#define RTMP_L_LOOP_H

#include "l_rtmp.h"
#include "l_contain.h"
#include "../core/net.h"

typedef struct rtmp_l_state {
    lua_State     *L;      /* main thread; NULL once the Lua state closes */
    rtmp_net      *net;
    int            depth;  /* protected calls in progress (> 1: on_close from a handler...) */
    lua_Integer    budget; /* instructions the outermost call may run; 0 = no limit */
    lua_Integer    used;   /* instructions it has run, counted by the hook */
    rtmp_l_memory *mem;    /* the allocator's accounting (luartmp --script-memory), or NULL */
} rtmp_l_state;

/* [-0, +0, -] the state of L's Lua state (NULL before the module opened). */
rtmp_l_state *rtmp_l_state_get(lua_State *L);

#endif
