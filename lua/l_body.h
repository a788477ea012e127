/*
 * l_body.h: message bodies decoded into Lua (l_body.c), for the message
 * object (l_msg.c).
 */
#ifndef RTMP_L_BODY_H
#define RTMP_L_BODY_H

#include "l_rtmp.h"
#include "../core/chunk.h"

/* [-0, +0, m] Decode the body payload[0 .. h->length) of a control,
 * command, data or shared-object message into fields of the table on
 * top: control fields; values/name/txn/args for commands and data
 * (AMF values nest at most max_depth levels); so for shared objects.  A
 * body that does not decode gives a decode_error field, never an error.
 * Other types set nothing. */
void rtmp_l_body_decode(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *payload, int max_depth);

#endif
