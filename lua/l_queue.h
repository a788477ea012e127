/*
 * l_queue.h: the slow-reader policy (core/mediaq.h) as group fan-out and
 * connections use it (l_queue.c, for l_group.c and l_conn.c).
 *
 * A connection's queue state lives in a slot of the binding's connection
 * (NULL until media is first fanned out to it, or conn:queue is called).
 */
#ifndef RTMP_L_QUEUE_H
#define RTMP_L_QUEUE_H

#include <lua.h>

#include "../core/mediaq.h"

struct rtmp_conn;

/* Before queuing message h of class cls (rtmp_mediaq_class) to connection c: 1 to send
 * it, 0 to drop it, -1 when c was closed for staying over its bounds
 * (rtmp_conn_fail with the reason).  Creates *slot from c's settings on
 * first use (none when they bound nothing); logs each change of drop
 * level.  now: rtmp_net_now.  [-0, +0, -] */
int rtmp_l_queue_offer(rtmp_mediaq **slot, struct rtmp_conn *c, const rtmp_msg_hdr *h,
                       int cls, double now);

/* After queuing a message that rtmp_l_queue_offer let through. */
void rtmp_l_queue_sent(rtmp_mediaq *q, struct rtmp_conn *c, const rtmp_msg_hdr *h, int cls);

/* conn:queue([settings]) for connection c (NULL when closed) whose
 * settings table, if any, is at idx: applies max_queue_bytes,
 * max_queue_time, max_queue_stall, then pushes the state table; or
 * pushes nil, "closed".  Returns the number pushed. [-0, +(1|2), e] */
int rtmp_l_queue_method(lua_State *L, int idx, rtmp_mediaq **slot, struct rtmp_conn *c);

/* Free the slot's state (at close). */
void rtmp_l_queue_free(rtmp_mediaq **slot);

#endif
