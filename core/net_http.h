/*
 * net_http.h: the HTTP server's connections on the net's loop.  net.c's
 * sibling (as net_curl.c is for outgoing requests): its listening sockets
 * come from net.c (rtmp_net_listen_sockets: one address parser), its
 * watchers ride the same libev loop (rtmp_net_loop), and requests are
 * read by the one request reader, core/httpd.c.  docs/HTTP.md.
 *
 * Per connection: keep-alive; one request is answered before the next
 * pipelined one is read, and reading stops while more than max_output
 * bytes of answers wait for the peer (a pipelined flood holds at most
 * the read buffer and that much output); a request must be whole within
 * request_timeout of its first byte (else 408 and close); an idle
 * keep-alive connection closes after idle_timeout.  A request the
 * reader refuses is answered with its status (400, 413, 431, 501) and
 * the connection closes; the refusal is logged with the connection's id
 * and peer.  Output is written at once and the write watcher armed only
 * on EAGAIN; connections are freed at a safe point.
 */
#ifndef RTMP_NET_HTTP_H
#define RTMP_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "group.h"
#include "httpd.h"
#include "net.h"

typedef struct rtmp_hsrv rtmp_hsrv;
typedef struct rtmp_hconn rtmp_hconn;

typedef struct rtmp_hsrv_config {
    rtmp_httpd_limits limits;
    double request_timeout;  /* seconds from a request's first byte to its end (10) */
    double idle_timeout;     /* seconds a keep-alive connection may wait idle (30) */
    size_t max_output;       /* answer bytes waiting before reading stops (1 MiB) */
    size_t max_conns;        /* open connections; past it new ones get 503 (1024) */
} rtmp_hsrv_config;

void rtmp_hsrv_config_default(rtmp_hsrv_config *cfg);

typedef struct rtmp_hsrv_handler {
    /* A whole request.  Answer it with rtmp_hconn_respond, now or later:
     * nothing more is read from c until it is answered. */
    void (*request)(rtmp_hconn *c, void *ud, const rtmp_httpd_req *r);
    /* The connection closes (last call; c is freed after it).  May be NULL. */
    void (*close)(rtmp_hconn *c, void *ud, const char *reason);
} rtmp_hsrv_handler;

/* Listen on addr (rtmp_net_listen's forms, without TLS).  NULL and a
 * message in err on failure. */
rtmp_hsrv *rtmp_hsrv_listen(rtmp_net *n, const char *addr, const rtmp_hsrv_config *cfg,
                            const rtmp_hsrv_handler *h, void *ud, char *err, size_t errlen);

/* Stop listening and close every connection (their close handlers run
 * now, reason "server closed"), then free s. */
void rtmp_hsrv_close(rtmp_hsrv *s);

int rtmp_hsrv_port(const rtmp_hsrv *s);

/* Open connections. */
size_t rtmp_hsrv_conns(const rtmp_hsrv *s);

/* Answer the request c waits on: a status line, the header lines
 * headers ("Name: value\r\n" each, or NULL), Content-Length and, when the
 * connection is not kept alive, Connection: close, then body (not sent
 * for HEAD).  0, RTMP_ERR_INVAL (no request waits), RTMP_ERR_CLOSED,
 * RTMP_ERR_NOMEM. */
int rtmp_hconn_respond(rtmp_hconn *c, int status, const char *headers, const uint8_t *body, size_t len);

/* Whether the request c waits on asks for a WebSocket (GET, Connection:
 * Upgrade, Upgrade: websocket): 1; -1 when it does with a missing key or
 * a version other than 13; 0 when not. */
int rtmp_hconn_websocket(const rtmp_hconn *c);

typedef struct rtmp_hconn_stream_opts {
    int                legacy;       /* a legacy member of the group (group.h) */
    rtmp_mediaq_config policy;       /* the slow-reader bounds */
    size_t             max_output;   /* queued bytes past which it is closed as a slow reader; 0 = none */
    size_t             send_buffer;  /* SO_SNDBUF; 0 = the kernel's autotuning */
    uint64_t           max_frame;    /* WebSocket: client frame payload bytes accepted (0: 64 KiB) */
} rtmp_hconn_stream_opts;

/* Answer the request c waits on with g's FLV, as long as g has it
 * (group.h: the FLV player): when the request asks for a WebSocket, the
 * handshake (101, Sec-WebSocket-Accept) and then one binary frame per
 * tag (WS-FLV); else 200 with headers, Connection: close and no length,
 * the body the FLV stream until the connection closes (HTTP-FLV).  HEAD
 * gets the head only.  The stream ends when the group ends it (the
 * rest of the queue is written; WS-FLV then sends close 1000), drops it
 * (a slow reader: closed at once), or the peer closes.  0,
 * RTMP_ERR_INVAL (no request waits, or a bad WebSocket handshake:
 * answered 400 and closed), RTMP_ERR_CLOSED, RTMP_ERR_NOMEM. */
int rtmp_hconn_stream(rtmp_hconn *c, const char *headers, rtmp_group *g, const rtmp_hconn_stream_opts *o);

/* Close the connection at a safe point (the output queued is written
 * first).  Later calls keep the first reason. */
void rtmp_hconn_close(rtmp_hconn *c, const char *reason);

unsigned long rtmp_hconn_id(const rtmp_hconn *c);   /* the net's (rtmp_net_new_id: RTMP's sequence) */
const char *rtmp_hconn_peer(const rtmp_hconn *c);   /* "127.0.0.1:5555" */
void rtmp_hconn_set_ud(rtmp_hconn *c, void *ud);
void *rtmp_hconn_get_ud(const rtmp_hconn *c);
uint64_t rtmp_hconn_bytes_in(const rtmp_hconn *c);
uint64_t rtmp_hconn_bytes_out(const rtmp_hconn *c);
uint64_t rtmp_hconn_dropped(const rtmp_hconn *c);   /* frames its stream dropped (slow reader) */
size_t rtmp_hconn_pending(const rtmp_hconn *c);     /* output not written yet */
size_t rtmp_hconn_memory(const rtmp_hconn *c);      /* heap bytes it holds */

#endif
