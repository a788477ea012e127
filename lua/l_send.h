/*
 * l_send.h: what connections and socket-free sessions share (l_send.c):
 * the session behind them, its sending methods and its state fields.
 *
 * Each type says how to find the session behind one of its objects with
 * an rtmp_l_sendable (one per type), and registers the sending methods in
 * its method table with rtmp_l_send_methods; l_send.c knows no type.
 */
#ifndef RTMP_L_SEND_H
#define RTMP_L_SEND_H

#include "l_rtmp.h"
#include "../core/net.h"
#include "../core/session.h"

typedef struct rtmp_l_sendable {
    /* The session behind the object at idx (for a connection also *cp,
     * else NULL), or NULL after pushing nil, "closed".  Raises when the
     * value at idx is not of the type.  [-0, +(0|2), v] */
    rtmp_session *(*session)(lua_State *L, int idx, rtmp_conn **cp);
} rtmp_l_sendable;

/* [-0, +0, m] Register the metatable name of a type whose objects have
 * the sending methods (send, command, data, command3, data3,
 * set_chunk_size, set_window_ack_size, set_peer_bandwidth, user_control,
 * ack, raw, auto, option, abort, begin, send_chunks) on the session that
 * type finds behind them: __index is the C closure index, whose upvalue 1
 * is the table of methods (the type's own, then the sending methods; it
 * serves them first, then its fields), and meta the other metamethods. */
void rtmp_l_send_newtype(lua_State *L, const char *name, const rtmp_l_sendable *type, const luaL_Reg *methods,
                         lua_CFunction index, const luaL_Reg *meta);

/* [-0, +(0|1), -] Push the session state field k of s (pending, ready,
 * in_chunk_size, out_chunk_size, ack_window, last_ack_sent, peer_ack,
 * window_sent, peer_bandwidth, peer_bandwidth_limit, handshake,
 * handshake_verified); returns 1, or 0 when k is not one (or has no
 * value, like a missing limit type). */
int rtmp_l_session_field(lua_State *L, rtmp_session *s, const char *k);

#endif
