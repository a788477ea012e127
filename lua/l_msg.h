/*
 * l_msg.h: the message object, inside the binding only.  l_net.c owns it
 * (its metatable, fields, rtmp.message, sending); l_msg.c builds and
 * takes apart message bodies (decoding, aggregates, shared objects).
 */
#ifndef RTMP_L_MSG_H
#define RTMP_L_MSG_H

#include <string.h>

#include "l_rtmp.h"
#include "../core/chunk.h"

#define MSG_MT "rtmp.msg"          /* registered by rtmp_l_open_net */
#define BUFSLOT_MT "rtmp.bufslot"  /* owns a buffer being filled by code that may raise;
                                    * registered by rtmp_l_open_net */

/* A message: header, what the engine did about it, and the payload,
 * inside the userdata itself (Lua's collector sees its size; fan-out
 * chunks it into shared buffers of its own). */
typedef struct lmsg {
    rtmp_msg_hdr h;
    unsigned     applied;
    size_t       len;
    uint8_t      data[];
} lmsg;

/* [-0, +1, m] a new message object holding a copy of payload[0 .. len). */
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

#endif
