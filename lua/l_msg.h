/*
 * l_msg.h: the message object (l_msg.c), for the parts that make, read
 * or send messages.
 */
#ifndef RTMP_L_MSG_H
#define RTMP_L_MSG_H

#include <string.h>

#include "l_rtmp.h"
#include "../core/chunk.h"

#define MSG_MT "rtmp.msg"

/* A message: header, what the engine did about it, and the payload,
 * inside the userdata itself (Lua's collector sees its size; fan-out
 * chunks it into shared buffers of its own).  User value 1: the side
 * table of decoded fields (commands, data, control), or nil (media). */
typedef struct lmsg {
    rtmp_msg_hdr h;
    unsigned     applied;
    size_t       len;
    uint8_t      data[];
} lmsg;

/* [-0, +1, m] a new message object holding a copy of payload[0 .. len),
 * with no side table. */
static inline lmsg *new_msg(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *payload, size_t len)
{
    lmsg *m = lua_newuserdatauv(L, sizeof *m + len, 1);
    m->h = *h;
    m->applied = 0;
    m->len = len;
    if (len)
        memcpy(m->data, payload, len);
    luaL_setmetatable(L, MSG_MT);
    return m;
}

/* [-0, +0, v] the message object at idx; raises if it is not one. */
static inline lmsg *check_msg(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, MSG_MT);
}

/* [-0, +1, m] push a new message object holding a copy of the header h
 * and of payload[0 .. h->length), with applied (RTMP_AUTO_* bits) as
 * msg.applied.  Unless it is media (audio, video, aggregate), its body
 * is decoded into its side table (l_body.c; AMF values nest at most
 * max_depth levels); a body that does not decode gives a decode_error
 * field, never an error.  Raises only on memory errors. */
void rtmp_l_push_msg(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied,
                     int max_depth);

/* [-0, +0, e] Fill h from the header table at t (0: none) over what h
 * holds: type (a number or a name), csid (default: the type's usual chunk
 * stream when h has none), stream, timestamp, fmt; raises for a bad
 * field. */
void rtmp_l_read_hdr(lua_State *L, int t, rtmp_msg_hdr *h);

#endif
