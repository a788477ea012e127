/*
 * l_forward.h: forwarding (l_forward.c), shared by connections (l_conn.c)
 * and socket-free sessions (l_session.c).
 */
#ifndef RTMP_L_FORWARD_H
#define RTMP_L_FORWARD_H

#include "l_rtmp.h"
#include "../core/chunk.h"
#include "../core/group.h"

/* ---- forwarding: audio and video of a message stream go to a group in
 * C (its fan-out and cache), without a call into Lua ---- */

/* Most message streams one connection or session forwards at once. */
#define RTMP_L_FORWARDS 4

typedef struct rtmp_l_forwards {
    int n;
    struct {
        rtmp_group *g;
        uint32_t    stream_id;
        int         ref;   /* registry ref keeping the group's box alive */
    } f[RTMP_L_FORWARDS];
} rtmp_l_forwards;

/* [-0, +1, e] x:forward(stream_id [, group]) with the arguments at 2
 * and 3: forward the stream to the group, or (no group) end it.  Pushes
 * true; raises past RTMP_L_FORWARDS streams. */
int rtmp_l_forward_method(lua_State *L, rtmp_l_forwards *fw);

/* The group a message (h) is forwarded to, or NULL: audio or video on
 * a forwarded stream. */
rtmp_group *rtmp_l_forward_find(const rtmp_l_forwards *fw, const rtmp_msg_hdr *h);

/* Note what the next forwarded message will touch (core/warm.h): the
 * forwards and their groups. */
void rtmp_l_forward_warm(const rtmp_l_forwards *fw, rtmp_warm *w);

/* Fan a message cc read out through g, at the time of that read (the
 * type's default chunk stream; an empty message has nothing to forward).
 * Called from cc's message callback: the reader's buffer holding the
 * payload goes to the cache as it is when no member takes the message. */
void rtmp_l_forward_send(rtmp_group *g, rtmp_conn_core *cc, const rtmp_msg_hdr *h, const uint8_t *payload);

/* [-0, +0, -] End every forward (L NULL: the Lua state is closing, the
 * references go with it). */
void rtmp_l_forward_clear(lua_State *L, rtmp_l_forwards *fw);

#endif
