/*
 * l_queue.h: conn:queue (l_queue.c, for l_conn.c).
 *
 * A connection's queue state lives in a slot of the binding's connection
 * (NULL until media is first fanned out to it by a group, core/group.c,
 * or conn:queue is called).
 */
#ifndef RTMP_L_QUEUE_H
#define RTMP_L_QUEUE_H

#include <lua.h>

#include "../core/mediaq.h"

struct rtmp_conn;

/* conn:queue([settings]) for connection c (NULL when closed) whose
 * settings table, if any, is at idx: applies max_queue_bytes,
 * max_queue_time, max_queue_stall, then pushes the state table; or
 * pushes nil, "closed".  Returns the number pushed. [-0, +(1|2), e] */
int rtmp_l_queue_method(lua_State *L, int idx, rtmp_mediaq **slot, struct rtmp_conn *c);

/* Free the slot's state (at close). */
void rtmp_l_queue_free(rtmp_mediaq **slot);

#endif
