/*
 * conn.h: one connection, sans I/O: a session (session.h) plus its
 * deadlines, connect detection and closing policy.
 *
 * Nothing here reads a clock or touches a socket: the owner passes the
 * time into every call that may move a deadline (now, in seconds on any
 * epoch), and asks when the connection next needs to be woken
 * (rtmp_conn_core_next_deadline).  core/net.c drives it with libev and
 * sockets; the replay (lua/rtmp/replay.lua, through rtmp.session) drives
 * it with a virtual clock.  The same code decides for both:
 *
 *   deadlines   handshake   handshake_timeout from the start (absolute);
 *               connect     accepted connections: connect_timeout from the
 *                           handshake's end until a connect command whose
 *                           body decodes (absolute);
 *               idle        idle_timeout with no whole message in and no
 *                           byte of output taken by the peer (passthrough:
 *                           no byte either way);
 *   connect     a connect command (AMF0, or AMF3 with its format byte)
 *               whose body decodes (rtmp_amf0_check_body, with the
 *               session's max_amf_depth) ends the connect deadline; one
 *               whose body does not still goes to the message handler
 *               (which may answer it with _error), then the connection
 *               closes as a failure: "undecodable connect: <why>";
 *   closing     the first reason wins; a protocol error closes with its
 *               message ("handshake: " before the handshake ends); a
 *               deadline with "handshake timeout", "connect timeout",
 *               "idle timeout"; the owner closes for its own reasons
 *               (rtmp_conn_core_close).  The owner learns of every close
 *               from the closing handler, once, and then frees the
 *               connection at a safe point of its own.
 *
 * The owner's handlers run from inside rtmp_conn_core_feed (and the
 * closing handler from any call that closes); none may free the
 * connection.
 */
#ifndef RTMP_CONN_H
#define RTMP_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "session.h"
#include "warm.h"

/* A connection's settings: the session's, its deadlines and bounds, and
 * (read by core/net.c only) its socket's. */
typedef struct rtmp_conn_config {
    /* the fields each read consults first (the deadlines, conn.c) */
    double   handshake_timeout;  /* seconds from the start (accept/connect) to handshake done
                                    (absolute); 0 = none */
    double   connect_timeout;    /* accepted connections: seconds from handshake done until
                                    a connect command whose body decodes arrives (absolute);
                                    0 = none.  A connect whose body does not decode (AMF
                                    truncated, nested deeper than session.max_amf_depth, ...)
                                    goes to the message handler, which may answer it, and
                                    then closes the connection as a failure: "undecodable
                                    connect: <the error's message>" (connect_timeout 0 too) */
    double   idle_timeout;       /* seconds in which no whole message arrived and the peer
                                    took no byte of output (passthrough: no byte either
                                    way), so bytes trickled without completing a message
                                    do not count; 0 = none */
    int      passthrough;        /* a byte pipe, no RTMP: no handshake is started or awaited
                                    (handshake_timeout does not apply; idle_timeout does),
                                    bytes read go to the data handler (the session never
                                    sees them, so ready and message never run), and
                                    rtmp_conn_write queues bytes to send */
    rtmp_session_config session;
    unsigned max_per_address;    /* listeners: connections open at once from one IP
                                    address (over every listener of the loop); a new one
                                    past it is logged and closed at once; 0 = no cap */
    size_t   max_output;         /* bytes queued before the connection is closed as a slow reader */
    size_t   max_queue_bytes;    /* media fan-out (group:send) to this connection: drop media
                                    while more than this is queued (core/mediaq.h); 0 = no bound */
    double   max_queue_time;     /* ... or more than this many seconds of media; 0 = no bound */
    double   max_queue_stall;    /* close a connection over either bound this long; 0 = never */
    size_t   send_buffer;        /* SO_SNDBUF for the socket; 0 = the kernel's autotuning (which
                                    lets a stalled reader hold up to net.ipv4.tcp_wmem's maximum,
                                    4 MiB by default, of kernel memory besides the queue) */
    size_t   recv_buffer;        /* SO_RCVBUF for the socket (set before connecting, so the
                                    window stays small); 0 = the kernel's autotuning */
    double   merge_window;       /* seconds media output may wait to be written together with
                                    what follows (rtmp_conn_output_media); 0 = at once */
    double   linger;             /* seconds a closed connection's socket may stay open to
                                    write the output queued at the close (not after
                                    rtmp_conn_drop), send its FIN after the last byte, and
                                    read and drop the peer's input until the peer closes
                                    too; 0 = close() at once, which drops unwritten output
                                    and answers late input with a reset */
} rtmp_conn_config;

/* Defaults: handshake, connect timeouts 10 s, idle 60 s, max_output
 * 16 MiB, max_amf_message 1 MiB (the session's reader), the session's
 * and reader's other defaults. */
void rtmp_conn_config_default(rtmp_conn_config *cfg, int role);

/* How a connection closes: normally; as a failure (a deadline, bad
 * input: the owner logs it as a warning); or as a failure whose queued
 * output is dropped, not written (a slow reader would not read it). */
enum { RTMP_CLOSE_NORMAL = 0, RTMP_CLOSE_FAIL = 1, RTMP_CLOSE_DROP = 2 };

/* Reasons the core gives, for owners and tests that compare. */
#define RTMP_CLOSE_HANDSHAKE_TIMEOUT "handshake timeout"
#define RTMP_CLOSE_CONNECT_TIMEOUT   "connect timeout"
#define RTMP_CLOSE_IDLE_TIMEOUT      "idle timeout"
#define RTMP_CLOSE_PEER              "peer closed the connection"

typedef struct rtmp_conn_core rtmp_conn_core;

/* What the connection tells its owner.  Each may be NULL. */
typedef struct rtmp_conn_core_handler {
    /* The handshake is complete.  Return < 0 to stop feeding. */
    int  (*ready)(void *ud);
    /* One whole message (as rtmp_session_handler.message), after the
     * connection counted it (activity, connect detection).  Return < 0
     * to stop feeding. */
    int  (*message)(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied);
    /* The connection began closing (rtmp_conn_core_reason says why);
     * called once, from whichever call closed it. */
    void (*closing)(void *ud);
    /* Output was queued and is within the bound (rtmp_conn_core_output):
     * write it before the loop next waits, or, for media, within
     * cfg.merge_window. */
    void (*output)(void *ud, int media);
} rtmp_conn_core_handler;

/* A new connection starting at time now, with a session made from
 * cfg->session; NULL on OOM.  cfg and h are copied.  Nothing is sent:
 * a client's C0C1 waits for rtmp_conn_core_start. */
rtmp_conn_core *rtmp_conn_core_new(const rtmp_conn_config *cfg, const rtmp_conn_core_handler *h, void *ud,
                                   double now);
void rtmp_conn_core_free(rtmp_conn_core *cc);

rtmp_session *rtmp_conn_core_session(rtmp_conn_core *cc);
const rtmp_conn_config *rtmp_conn_core_config(const rtmp_conn_core *cc);

/* Note what the connection's next input will touch (warm.h): its
 * session's lines (rtmp_session_warm), then the core connection. */
void rtmp_conn_core_warm(const rtmp_conn_core *cc, rtmp_warm *w);

/* Prefetch the lines of cc a fan-out to it reads (group.c, a few members
 * ahead); then, once they came (a couple of members later), what they
 * point to: its session's lines (rtmp_session_prefetch) and its owner's.
 * Hints: they change nothing. */
void rtmp_conn_core_prefetch(const rtmp_conn_core *cc);
void rtmp_conn_core_prefetch_next(const rtmp_conn_core *cc);

/* Client: queue C0C1 (once connected).  Server: nothing.  0 or
 * RTMP_ERR_NOMEM. */
int rtmp_conn_core_start(rtmp_conn_core *cc);

/* Bytes received at time now.  Returns len; or a negative RTMP_ERR_*
 * when not all was taken: RTMP_ERR_CLOSED when the connection is closing
 * (before the call, or closed by a handler or by the connect policy
 * during it: the rest is not read), RTMP_ERR_STOP when a handler
 * stopped the feed without closing, or the protocol error, with which
 * the connection was closed as a failure. */
ssize_t rtmp_conn_core_feed(rtmp_conn_core *cc, const uint8_t *in, size_t len, double now);

/* The peer took n bytes of our output at time now (n > 0: the
 * connection is not idle). */
void rtmp_conn_core_wrote(rtmp_conn_core *cc, size_t n, double now);

/* Passthrough connections: a byte went either way at time now. */
void rtmp_conn_core_activity(rtmp_conn_core *cc, double now);

/* Run the deadlines at time now: a deadline that has passed closes the
 * connection as a failure with its reason.  Returns 1 when the
 * connection is closing (now or before), else 0. */
int rtmp_conn_core_tick(rtmp_conn_core *cc, double now);

/* When the connection next needs rtmp_conn_core_tick: the earliest
 * deadline still running, as a time on the clock passed in; 0 when none
 * (no deadline set, or closing).  A tick before it does nothing, so an
 * owner may wake early and ask again; the time only moves earlier after
 * the handshake ends (the connect deadline begins), so an owner that
 * keeps one timer need only re-arm it then, or whenever it finds this
 * earlier than the time it armed. */
double rtmp_conn_core_next_deadline(const rtmp_conn_core *cc);

/* Close with reason (NULL: "closed") and how (RTMP_CLOSE_*).  Later
 * calls keep the first reason; the closing handler runs on the first. */
void rtmp_conn_core_close(rtmp_conn_core *cc, const char *reason, int how);

/* The peer ended the connection: closes normally with
 * RTMP_CLOSE_PEER. */
void rtmp_conn_core_peer_closed(rtmp_conn_core *cc);

/* 1 once closing; its reason ("" before) and how (RTMP_CLOSE_*). */
int rtmp_conn_core_closing(const rtmp_conn_core *cc);
const char *rtmp_conn_core_reason(const rtmp_conn_core *cc);
int rtmp_conn_core_close_how(const rtmp_conn_core *cc);

/* The time the last call passed in (rtmp_conn_core_new's at first). */
double rtmp_conn_core_now(const rtmp_conn_core *cc);

/* ---- output: what a fan-out (group.h) asks of a member ----
 *
 * The output bound: a connection with more than cfg.max_output bytes
 * queued and not taken by the peer, leaving out an exempt first burst
 * (a late joiner's cache, bounded by its group instead), is closed as a
 * slow reader, its queue dropped: "output queue over N bytes (slow
 * reader)". */

/* Name the connection in the log lines others write about it (the
 * group's slow-reader lines): its id and peer address (not copied: the
 * owner's string, valid while the connection lives). */
void rtmp_conn_core_set_label(rtmp_conn_core *cc, unsigned long id, const char *peer);
unsigned long rtmp_conn_core_id(const rtmp_conn_core *cc);
const char *rtmp_conn_core_peer(const rtmp_conn_core *cc);   /* "" when unnamed */

/* Bytes of output the peer took (rtmp_conn_core_wrote), and bytes the
 * session has queued that it has not. */
uint64_t rtmp_conn_core_written(const rtmp_conn_core *cc);
size_t rtmp_conn_core_pending(const rtmp_conn_core *cc);

/* Exempt what is queued now from the bound: the bound then applies to
 * the bytes queued after it.  rtmp_conn_core_exempt: the exempt bytes
 * the peer has not taken yet (at most the pending). */
void rtmp_conn_core_exempt_queued(rtmp_conn_core *cc);
size_t rtmp_conn_core_exempt(const rtmp_conn_core *cc);

/* The bound, for an owner whose queue holds pending bytes (its own for a
 * passthrough connection): 0; RTMP_ERR_CLOSED when closing; or
 * RTMP_ERR_QUEUE_FULL after closing the connection as a slow reader. */
int rtmp_conn_core_check_output(rtmp_conn_core *cc, size_t pending);

/* The session has new output (media: fanned-out audio or video, which
 * may wait the merge window): the bound on the session's queue, then the
 * output handler.  0, RTMP_ERR_CLOSED or RTMP_ERR_QUEUE_FULL. */
int rtmp_conn_core_output(rtmp_conn_core *cc, int media);

/* Accepted connections: 1 once a connect command whose body decodes
 * has arrived. */
int rtmp_conn_core_got_connect(const rtmp_conn_core *cc);

/* Bytes the core holds on the heap: itself and its session
 * (rtmp_session_memory). */
size_t rtmp_conn_core_memory(const rtmp_conn_core *cc);

#endif
