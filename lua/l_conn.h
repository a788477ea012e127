/*
 * l_conn.h: the connection object (l_conn.c), for the parts that make
 * connections (l_server.c) or hold them (l_group.c).
 *
 * A connection's box ("rtmp.conn", a userdata) points at the C-owned
 * lconn; C clears the pointer to the C connection on close, and methods
 * on a closed connection return nil, "closed".  The box's user values:
 * 1 = its fields table, 2 = its handlers table.
 */
#ifndef RTMP_L_CONN_H
#define RTMP_L_CONN_H

#include "l_rtmp.h"
#include "l_contain.h"
#include "l_forward.h"
#include "l_loop.h"
#include "l_trace.h"
#include "../core/mediaq.h"
#include "../core/net.h"

#define CONN_MT "rtmp.conn"

/* A connection as the binding sees it.  refs counts the box (until its
 * __gc), the open connection, and each group membership; freed at 0. */
typedef struct lconn {
    /* first what a forwarded message reads */
    rtmp_conn_core *cc;     /* o.c's core connection, NULL once closed (a group's member slot) */
    rtmp_l_forwards fwd;    /* conn:forward: streams fanned out through groups in C */
    rtmp_l_owner   o;       /* o.st, o.c (NULL once closed), o.id, o.peer, containment */
    int            boxref;  /* registry ref keeping the box alive while open */
    int            refs;
    int            role;
    rtmp_l_trace  *trace;   /* message trace (l_trace.c), NULL when off */
    rtmp_mediaq   *mq;      /* slow-reader policy state (core/group.c), NULL until used */
} lconn;

/* A new lconn for c (refs 2: the box to come, and the open connection);
 * NULL when out of memory. */
lconn *rtmp_l_conn_new(rtmp_l_state *st, rtmp_conn *c, int role);

/* [-0, +1, m] a new box for lc, with a fields table and the handlers
 * table at index handlers_idx (absolute), kept alive while open. */
void rtmp_l_conn_box(lua_State *L, lconn *lc, int handlers_idx);

/* [-0, +1, -] push the box of an open connection. */
void rtmp_l_conn_push(lua_State *L, const lconn *lc);

/* Drop one reference (a group membership); frees lc at 0. */
void rtmp_l_conn_release(lconn *lc);

/* [-0, +0, v] the connection at idx; raises when it is not one. */
lconn *rtmp_l_conn_check(lua_State *L, int idx);

/* Call handler name of lc (on_open, on_handshake) with its box, if it
 * has one.  Returns what rtmp_l_pcall returns, or 0 without a handler. */
int rtmp_l_conn_notify(lconn *lc, const char *name);

/* The connection events of every connection, for rtmp_conn_handler
 * (l_server.c adds its own open): handshake done, a whole message, the
 * close, the bytes of a passthrough connection; what a forwarded message
 * will touch (core/warm.h). */
int rtmp_l_conn_ready(rtmp_conn *c, void *ud);
int rtmp_l_conn_message(rtmp_conn *c, void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied);
void rtmp_l_conn_closed(rtmp_conn *c, void *ud, const char *reason);
void rtmp_l_conn_data(rtmp_conn *c, void *ud, const uint8_t *p, size_t len);
void rtmp_l_conn_warm(rtmp_conn *c, void *ud, rtmp_warm *w);

#endif
