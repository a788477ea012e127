/*
 * net_http.c: the HTTP server's sockets and watchers (net_http.h).
 *
 * A connection reads into its own input buffer (IN_CAP bytes: a read
 * that finds it full waits until the reader has taken bytes), feeds the
 * request reader, hands each whole request to the handler and reads no
 * further until it is answered.  Answers are appended to one output
 * buffer, written at once; EAGAIN arms the write watcher.  Closing: the
 * output is written, our side shut (FIN), the peer's leftovers read and
 * dropped for up to LINGER seconds (so an answer such as 413 is not lost
 * to a reset), then the socket is closed.  Freed from a zero timer, never
 * inside the callback that is parsing.
 *
 * A streaming answer (rtmp_hconn_stream: HTTP-FLV, WS-FLV) makes the
 * connection an FLV player of a group (group.h): after the response head,
 * its output is the player's queue of references to the group's shared
 * tags, written with one sendmsg per loop iteration as net.c writes RTMP
 * players; the group bounds it (the slow-reader policy).  Input is then
 * dropped (HTTP-FLV: only the peer's close matters) or read as WebSocket
 * frames (core/ws.c): ping -> pong, close -> close, a bad frame -> close
 * 1002 or 1009.  A closing connection (a stream, or an answer the peer
 * stopped reading) whose output the peer does not take within CLOSE_WAIT
 * is dropped.
 */
#include "net_http.h"
#include "error.h"
#include "log.h"
#include "ws.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 8
#define IN_CAP  (16 * 1024)
#define LINGER  1.0
#define CLOSE_WAIT 5.0  /* seconds a closing stream may take to write what it queued */
#define STREAM_IOV 64   /* segments per sendmsg */

struct rtmp_hsrv {
    rtmp_net         *net;
    struct ev_loop   *loop;
    ev_io             io[MAX_FDS];
    int               nfds;
    int               port;
    rtmp_hsrv_config  cfg;
    rtmp_hsrv_handler h;
    void             *ud;
    rtmp_hconn       *conns;
    size_t            nconns;
};

struct rtmp_hconn {
    rtmp_hsrv     *srv;
    rtmp_hconn    *prev, *next;
    unsigned long  id;
    char           peer[64];
    int            fd;
    ev_io          rio, wio;
    ev_timer       tmo;      /* request or idle deadline; the linger's end */
    ev_timer       reap;     /* a zero timer: free at a safe point */
    rtmp_httpd    *rd;
    uint8_t       *in;       /* IN_CAP bytes; in_len unread */
    size_t         in_len;
    uint8_t       *out;
    size_t         out_len, out_off, out_cap;
    int            waiting;  /* a request is handed out and not answered */
    int            head;     /* it is a HEAD */
    int            keep;     /* it allows another request after it */
    int            closing;  /* close once the output is written */
    int            lingering;
    int            freed;    /* the close handler ran */
    char           reason[96];
    uint64_t       bytes_in, bytes_out;
    void          *ud;
    int            ws_req;   /* the request waiting asks for a WebSocket: 1, with a bad key or version: -1 */
    char           ws_key[32];
    int            stream;   /* 0; STREAM_HTTP or STREAM_WS: an FLV player (rtmp_hconn_stream) */
    int            processing; /* inside conn_process: c->in may still hold the request */
    int            ws_closing; /* STREAM_WS: our close frame is queued */
    rtmp_flv_player player;
    rtmp_ws_reader *ws;      /* STREAM_WS: the client frame reader */
};

enum { STREAM_HTTP = 1, STREAM_WS = 2 };


void rtmp_hsrv_config_default(rtmp_hsrv_config *cfg)
{
    rtmp_httpd_limits_default(&cfg->limits);
    cfg->request_timeout = 10;
    cfg->idle_timeout = 30;
    cfg->max_output = 1024 * 1024;
    cfg->max_conns = 1024;
}

static void conn_process(rtmp_hconn *c);
static void conn_flush(rtmp_hconn *c);
static void ws_close(rtmp_hconn *c, int code, const char *text);

/* Output queued and not written: the answer buffer and a stream's queue. */
static size_t pending(const rtmp_hconn *c)
{
    return c->out_len - c->out_off + c->player.q.bytes;
}

/* ---- freeing ---- */

static void conn_free(rtmp_hconn *c)
{
    rtmp_hsrv *s = c->srv;
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->tmo);
    ev_timer_stop(s->loop, &c->reap);
    if (c->fd >= 0)
        close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    rtmp_flv_player_release(&c->player);
    free(c->ws);
    rtmp_httpd_free(c->rd);
    free(c->in);
    free(c->out);
    free(c);
}

/* The close handler, once. */
static void conn_notify(rtmp_hconn *c)
{
    if (c->freed)
        return;
    c->freed = 1;
    rtmp_log(RTMP_LOG_DEBUG, 0, c->peer, "http %lu closed: %s", c->id, c->reason);
    if (c->srv->h.close)
        c->srv->h.close(c, c->srv->ud, c->reason);
}

static void linger_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_hconn *c = w->data;
    char junk[4096];
    ssize_t n = read(c->fd, junk, sizeof junk);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        conn_free(c);
}

static void linger_end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_free(w->data);
}

/* The output is written (or dropped): tell the owner, shut our side and
 * linger. */
static void conn_finish(rtmp_hconn *c)
{
    rtmp_hsrv *s = c->srv;
    conn_notify(c);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->tmo);
    c->lingering = 1;
    if (shutdown(c->fd, SHUT_WR) < 0) {
        conn_free(c);
        return;
    }
    ev_io_init(&c->rio, linger_read_cb, c->fd, EV_READ);
    c->rio.data = c;
    ev_io_start(s->loop, &c->rio);
    ev_timer_init(&c->tmo, linger_end_cb, LINGER, 0);
    c->tmo.data = c;
    ev_timer_start(s->loop, &c->tmo);
}

static void reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_hconn *c = w->data;
    if (!c->lingering && pending(c) == 0)
        conn_finish(c);
}

void rtmp_hconn_close(rtmp_hconn *c, const char *reason)
{
    if (c->closing)
        return;
    if (c->stream == STREAM_WS && !c->ws_closing) { /* a WebSocket ends with a close frame */
        ws_close(c, RTMP_WS_GOING_AWAY, reason);
        return;
    }
    c->closing = 1;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    ev_io_stop(c->srv->loop, &c->rio);
    ev_timer_stop(c->srv->loop, &c->tmo);
    rtmp_group_remove_flv(&c->player); /* nothing more is queued */
    if (pending(c) == 0) {
        ev_timer_start(c->srv->loop, &c->reap);
    } else { /* a stream's queue, or an answer the peer does not read */
        ev_timer_set(&c->tmo, CLOSE_WAIT, 0); /* the peer takes what is queued, or it is dropped */
        ev_timer_start(c->srv->loop, &c->tmo);
    }
}

/* Drop the output and close now (the peer is gone). */
static void conn_abort(rtmp_hconn *c, const char *reason)
{
    if (!c->closing)
        snprintf(c->reason, sizeof c->reason, "%s", reason);
    c->closing = 1;
    c->out_off = c->out_len;
    rtmp_flv_player_release(&c->player);
    ev_io_stop(c->srv->loop, &c->rio);
    ev_io_stop(c->srv->loop, &c->wio);
    ev_timer_stop(c->srv->loop, &c->tmo);
    ev_timer_start(c->srv->loop, &c->reap);
}

/* ---- output ---- */

static int out_add(rtmp_hconn *c, const void *p, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (n > c->out_cap - c->out_len) {
        if (c->out_off) { /* move what is left to the front first */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap - c->out_len < n)
            cap *= 2;
        if (cap != c->out_cap) {
            uint8_t *q = realloc(c->out, cap);
            if (!q)
                return RTMP_ERR_NOMEM;
            c->out = q;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void read_on(rtmp_hconn *c)
{
    if (!c->closing && !c->waiting && pending(c) <= c->srv->cfg.max_output
        && c->in_len < IN_CAP)
        ev_io_start(c->srv->loop, &c->rio);
    else
        ev_io_stop(c->srv->loop, &c->rio);
}

static void conn_flush(rtmp_hconn *c)
{
    /* the answer buffer, then a stream's queue (references to the group's
     * tags): one sendmsg for both */
    while (pending(c)) {
        struct iovec iov[1 + STREAM_IOV];
        size_t head = c->out_len - c->out_off;
        int n = 0;
        if (head)
            iov[n++] = (struct iovec){ c->out + c->out_off, head };
        n += rtmp_outq_iov(&c->player.q, iov + n, STREAM_IOV);
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(c->srv->loop, &c->wio);
                read_on(c);
                return;
            }
            conn_abort(c, strerror(errno));
            return;
        }
        size_t k = (size_t)w < head ? (size_t)w : head;
        c->out_off += k;
        if ((size_t)w > k)
            rtmp_flv_player_wrote(&c->player, (size_t)w - k);
        c->bytes_out += (uint64_t)w;
    }
    ev_io_stop(c->srv->loop, &c->wio);
    c->out_off = c->out_len = 0;
    if (c->closing) {
        ev_timer_start(c->srv->loop, &c->reap);
        return;
    }
    read_on(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_hconn *c = w->data;
    conn_flush(c);
    if (!c->closing && !c->waiting && c->in_len)
        conn_process(c); /* pipelined requests held back by the output bound */
}

static void arm(rtmp_hconn *c, double after)
{
    ev_timer_stop(c->srv->loop, &c->tmo);
    ev_timer_set(&c->tmo, after, 0);
    ev_timer_start(c->srv->loop, &c->tmo);
}

int rtmp_hconn_respond(rtmp_hconn *c, int status, const char *headers, const uint8_t *body, size_t len)
{
    if (c->freed || c->closing)
        return RTMP_ERR_CLOSED;
    if (!c->waiting)
        return RTMP_ERR_INVAL;
    c->waiting = 0;
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s", status,
                     rtmp_httpd_reason(status), len, c->keep ? "" : "Connection: close\r\n");
    if (out_add(c, head, (size_t)n) || (headers && out_add(c, headers, strlen(headers)))
        || out_add(c, "\r\n", 2) || (!c->head && len && out_add(c, body, len))) {
        conn_abort(c, "out of memory");
        return RTMP_ERR_NOMEM;
    }
    if (!c->keep) {
        rtmp_hconn_close(c, "answered (no keep-alive)");
        conn_flush(c);
        return 0;
    }
    arm(c, c->srv->cfg.idle_timeout);
    conn_flush(c);
    if (!c->closing && c->in_len && !ev_is_active(&c->wio))
        ev_feed_event(c->srv->loop, &c->wio, EV_WRITE); /* read on the next request from the loop */
    return 0;
}

/* Answer a refusal of ours (the reader's, a timeout) and close. */
static void refuse(rtmp_hconn *c, int status, const char *why)
{
    rtmp_log(RTMP_LOG_WARN, 0, c->peer, "http %lu: %d %s", c->id, status, why);
    c->waiting = 1;
    c->keep = 0;
    c->head = 0;
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, rtmp_httpd_reason(status), why);
    rtmp_hconn_respond(c, status, "Content-Type: text/plain\r\n", (const uint8_t *)body, (size_t)n);
    snprintf(c->reason, sizeof c->reason, "%d %s", status, why);
}

/* ---- input ---- */

/* Whether a request asks for a WebSocket (RFC 6455 4.2.1): GET with
 * Connection: Upgrade and Upgrade: websocket; then its key and version 13
 * (else c->ws_req -1, no key: answered 400 if it is to stream; -2, another
 * version: 426 with the version we speak, RFC 6455 4.4). */
static void ws_request(rtmp_hconn *c, const rtmp_httpd_req *r)
{
    c->ws_req = 0;
    c->ws_key[0] = '\0';
    if (!r->upgrade || strcmp(r->method, "GET") != 0)
        return;
    int websocket = 0, version = 0, asked = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const rtmp_httpd_header *h = &r->headers[i];
        if (h->name_len == 7 && !strncasecmp(h->name, "upgrade", 7))
            websocket = h->value_len == 9 && !strncasecmp(h->value, "websocket", 9);
        else if (h->name_len == 17 && !strncasecmp(h->name, "sec-websocket-key", 17) && h->value_len < sizeof c->ws_key)
            snprintf(c->ws_key, sizeof c->ws_key, "%.*s", (int)h->value_len, h->value);
        else if (h->name_len == 21 && !strncasecmp(h->name, "sec-websocket-version", 21))
        {
            asked = 1;
            version = h->value_len == 2 && !strncmp(h->value, "13", 2);
        }
    }
    if (websocket)
        c->ws_req = !c->ws_key[0] || !asked ? -1 : version ? 1 : -2;
}

static int on_request(void *ud, const rtmp_httpd_req *r)
{
    rtmp_hconn *c = ud;
    c->waiting = 1;
    c->head = !strcmp(r->method, "HEAD");
    c->keep = r->keep_alive && !r->upgrade;
    ws_request(c, r);
    ev_timer_stop(c->srv->loop, &c->tmo);
    c->srv->h.request(c, c->srv->ud, r);
    return 1; /* one request at a time */
}

static void stream_input(rtmp_hconn *c);

static void conn_process(rtmp_hconn *c)
{
    if (c->stream) {
        stream_input(c);
        return;
    }
    c->processing = 1;
    while (c->in_len && !c->waiting && !c->closing && !c->stream && c->out_len - c->out_off <= c->srv->cfg.max_output) {
        int was_partial = rtmp_httpd_partial(c->rd);
        ssize_t n = rtmp_httpd_feed(c->rd, c->in, c->in_len, on_request, c);
        if (n < 0) {
            c->processing = 0;
            refuse(c, rtmp_httpd_status(c->rd), rtmp_httpd_error(c->rd));
            return;
        }
        if (n == 0) /* an upgrade the handler did not take */
            break;
        memmove(c->in, c->in + n, c->in_len - (size_t)n);
        c->in_len -= (size_t)n;
        if (!was_partial && rtmp_httpd_partial(c->rd) && !c->waiting)
            arm(c, c->srv->cfg.request_timeout); /* a request began */
    }
    c->processing = 0;
    if (c->stream) /* the handler streamed at once: what came after the request is the stream's input */
        stream_input(c);
    else if (!c->closing)
        read_on(c);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_hconn *c = w->data;
    ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_abort(c, strerror(errno));
        return;
    }
    if (n == 0) {
        conn_abort(c, rtmp_httpd_partial(c->rd) ? "peer closed in the middle of a request" : "peer closed");
        return;
    }
    c->bytes_in += (uint64_t)n;
    c->in_len += (size_t)n;
    conn_process(c);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_hconn *c = w->data;
    if (c->closing) { /* output not taken within CLOSE_WAIT */
        conn_abort(c, c->reason);
        return;
    }
    if (c->waiting)
        return;
    if (rtmp_httpd_partial(c->rd) || c->in_len) {
        char why[64];
        snprintf(why, sizeof why, "request not whole within %g s", c->srv->cfg.request_timeout);
        refuse(c, 408, why);
    } else {
        rtmp_hconn_close(c, "idle");
    }
}

/* ---- streams: FLV players (rtmp_hconn_stream) ---- */

static void player_output(void *ud)
{
    rtmp_hconn *c = ud;
    if (!c->closing && !ev_is_active(&c->wio) && !ev_is_pending(&c->wio))
        ev_feed_event(c->srv->loop, &c->wio, EV_WRITE); /* written once per loop iteration */
}

/* Queue a WebSocket control frame of ours (between the group's whole
 * frames).  0 or RTMP_ERR_NOMEM. */
static int ws_control(rtmp_hconn *c, unsigned op, const uint8_t *payload, size_t len)
{
    rtmp_buf *b = rtmp_buf_new(10 + len);
    if (!b)
        return RTMP_ERR_NOMEM;
    b->len = rtmp_ws_frame_header(b->data, op, len);
    if (len)
        memcpy(b->data + b->len, payload, len);
    b->len += len;
    int rc = rtmp_outq_push(&c->player.q, b, 0, b->len);
    rtmp_buf_unref(b);
    player_output(c);
    return rc;
}

/* Close a WebSocket stream with a close frame (code, text) after what is
 * queued. */
static void ws_close(rtmp_hconn *c, int code, const char *text)
{
    c->ws_closing = 1;
    rtmp_group_remove_flv(&c->player); /* the close frame is the last one */
    uint8_t p[125];
    size_t n = strlen(text) > sizeof p - 2 ? sizeof p - 2 : strlen(text);
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, text, n);
    ws_control(c, RTMP_WS_CLOSE, p, n + 2);
    conn_flush(c);
    if (!c->closing)
        rtmp_hconn_close(c, text);
}

static void player_close(void *ud, const char *reason, int how)
{
    rtmp_hconn *c = ud;
    if (how == RTMP_FLV_DROP) {
        rtmp_log(RTMP_LOG_WARN, 0, c->peer, "http %lu: %s", c->id, reason);
        conn_abort(c, reason);
    } else if (c->stream == STREAM_WS) {
        ws_close(c, RTMP_WS_NORMAL, reason);
    } else {
        rtmp_hconn_close(c, reason);
        conn_flush(c);
    }
}

static int on_ws_frame(void *ud, const rtmp_ws_frame *f)
{
    rtmp_hconn *c = ud;
    if (f->opcode == RTMP_WS_PING) {
        if (ws_control(c, RTMP_WS_PONG, f->payload, (size_t)f->len) < 0) {
            conn_abort(c, "out of memory");
            return 1;
        }
    } else if (f->opcode == RTMP_WS_CLOSE) {
        /* answer with the peer's code (none: none), then close */
        rtmp_group_remove_flv(&c->player);
        c->ws_closing = 1;
        ws_control(c, RTMP_WS_CLOSE, f->payload, f->len >= 2 ? 2 : 0);
        rtmp_hconn_close(c, "peer closed the WebSocket");
        return 1;
    }
    return 0; /* pong, and the client's data frames: nothing to do */
}

/* Input on a stream: HTTP-FLV drops it (only the peer's close matters),
 * WS-FLV reads it as frames. */
static void stream_input(rtmp_hconn *c)
{
    if (c->stream == STREAM_WS && !c->closing) {
        ssize_t n = rtmp_ws_feed(c->ws, c->in, c->in_len, on_ws_frame, c);
        if (n < 0) {
            int code = rtmp_ws_reader_close_code(c->ws);
            rtmp_log(RTMP_LOG_WARN, 0, c->peer, "http %lu: WebSocket: %s (close %d)", c->id,
                     rtmp_ws_reader_error(c->ws), code);
            c->in_len = 0;
            ws_close(c, code, rtmp_ws_reader_error(c->ws));
            return;
        }
        memmove(c->in, c->in + n, c->in_len - (size_t)n);
        c->in_len -= (size_t)n;
    } else {
        c->in_len = 0;
    }
    if (!c->closing)
        read_on(c);
}

int rtmp_hconn_websocket(const rtmp_hconn *c)
{
    return c->waiting ? c->ws_req : 0;
}

int rtmp_hconn_stream(rtmp_hconn *c, const char *headers, rtmp_group *g, const rtmp_hconn_stream_opts *o)
{
    if (c->freed || c->closing)
        return RTMP_ERR_CLOSED;
    if (!c->waiting || c->stream)
        return RTMP_ERR_INVAL;
    if (c->ws_req == -2) {
        static const char why[] = "426 Upgrade Required: WebSocket version 13 only\n";
        rtmp_log(RTMP_LOG_WARN, 0, c->peer, "http %lu: 426 WebSocket version other than 13", c->id);
        c->keep = 0;
        c->head = 0;
        rtmp_hconn_respond(c, 426, "Content-Type: text/plain\r\nSec-WebSocket-Version: 13\r\n",
                           (const uint8_t *)why, sizeof why - 1);
        snprintf(c->reason, sizeof c->reason, "426 WebSocket version");
        return RTMP_ERR_INVAL;
    }
    if (c->ws_req < 0) {
        refuse(c, 400, "bad WebSocket handshake (want Sec-WebSocket-Key and Sec-WebSocket-Version: 13)");
        return RTMP_ERR_INVAL;
    }
    if (c->head) /* the head of what a GET would get */
        return rtmp_hconn_respond(c, 200, headers, NULL, 0);
    char head[512];
    int n;
    if (c->ws_req > 0) {
        char accept[RTMP_WS_ACCEPT_LEN + 1];
        if (rtmp_ws_accept(c->ws_key, strlen(c->ws_key), accept) < 0) {
            refuse(c, 400, "bad Sec-WebSocket-Key (want 16 bytes in base64)");
            return RTMP_ERR_INVAL;
        }
        if (!(c->ws = malloc(sizeof *c->ws))) {
            conn_abort(c, "out of memory");
            return RTMP_ERR_NOMEM;
        }
        rtmp_ws_reader_init(c->ws, o->max_frame);
        n = snprintf(head, sizeof head, "HTTP/1.1 101 %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", rtmp_httpd_reason(101), accept);
        headers = NULL;
    } else {
        /* no length: the body runs until the connection closes */
        n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n");
    }
    c->waiting = 0;
    c->keep = 0;
    if (out_add(c, head, (size_t)n) || (headers && out_add(c, headers, strlen(headers)))
        || (c->ws_req == 0 && out_add(c, "Connection: close\r\n\r\n", 21))) {
        conn_abort(c, "out of memory");
        return RTMP_ERR_NOMEM;
    }
    c->stream = c->ws_req > 0 ? STREAM_WS : STREAM_HTTP;
    ev_timer_stop(c->srv->loop, &c->tmo); /* no idle deadline: the group bounds a stream */
    if (o->send_buffer) {
        int sb = o->send_buffer > 0x7fffffff ? 0x7fffffff : (int)o->send_buffer;
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    }
    rtmp_flv_player *p = &c->player;
    p->ws = c->stream == STREAM_WS;
    p->legacy = o->legacy;
    p->policy = o->policy;
    p->max_output = o->max_output;
    p->id = c->id;
    p->peer = c->peer;
    p->output = player_output;
    p->close = player_close;
    p->ud = c;
    int rc = rtmp_group_add_flv(g, p);
    if (rc < 0) {
        conn_abort(c, "out of memory");
        return rc;
    }
    rtmp_log(RTMP_LOG_INFO, 0, c->peer, "http %lu: %s stream", c->id, p->ws ? "WS-FLV" : "HTTP-FLV");
    conn_flush(c);
    /* what came after the request (WebSocket frames sent with it): read
     * now, unless conn_process, which called us, still holds the request
     * in c->in (it reads them once the request is taken out) */
    if (!c->processing && !c->closing && !c->freed)
        stream_input(c);
    return 0;
}

/* ---- accepting ---- */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_hsrv *s = w->data;
    for (int k = 0; k < 32; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                rtmp_log(RTMP_LOG_WARN, 0, NULL, "http accept: %s", strerror(errno));
            return;
        }
        rtmp_hconn *c = calloc(1, sizeof *c);
        if (c) {
            c->in = malloc(IN_CAP);
            c->rd = rtmp_httpd_new(&s->cfg.limits);
        }
        if (!c || !c->in || !c->rd) {
            if (c) {
                free(c->in);
                rtmp_httpd_free(c->rd);
            }
            free(c);
            close(fd);
            rtmp_log(RTMP_LOG_WARN, 0, NULL, "http accept: out of memory");
            continue;
        }
        c->srv = s;
        c->fd = fd;
        c->id = rtmp_net_new_id(s->net);
        rtmp_net_format_addr((struct sockaddr *)&ss, c->peer, sizeof c->peer);
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        ev_timer_init(&c->tmo, timeout_cb, 0, 0);
        ev_timer_init(&c->reap, reap_cb, 0, 0);
        c->rio.data = c->wio.data = c->tmo.data = c->reap.data = c;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        if (s->nconns > s->cfg.max_conns) {
            refuse(c, 503, "too many HTTP connections");
            continue;
        }
        arm(c, s->cfg.idle_timeout);
        ev_io_start(loop, &c->rio);
    }
}

rtmp_hsrv *rtmp_hsrv_listen(rtmp_net *n, const char *addr, const rtmp_hsrv_config *cfg,
                            const rtmp_hsrv_handler *h, void *ud, char *err, size_t errlen)
{
    rtmp_hsrv *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int fds[MAX_FDS];
    s->nfds = rtmp_net_listen_sockets(addr, fds, MAX_FDS, err, errlen);
    if (s->nfds < 0) {
        free(s);
        return NULL;
    }
    s->net = n;
    s->loop = rtmp_net_loop(n);
    if (cfg)
        s->cfg = *cfg;
    else
        rtmp_hsrv_config_default(&s->cfg);
    s->h = *h;
    s->ud = ud;
    for (int i = 0; i < s->nfds; i++) {
        ev_io_init(&s->io[i], accept_cb, fds[i], EV_READ);
        s->io[i].data = s;
        ev_io_start(s->loop, &s->io[i]);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char where[80];
        getsockname(fds[i], (struct sockaddr *)&ss, &sl);
        rtmp_net_format_addr((struct sockaddr *)&ss, where, sizeof where);
        if (i == 0) {
            const char *colon = strrchr(where, ':');
            s->port = colon ? atoi(colon + 1) : 0;
        }
        rtmp_log(RTMP_LOG_INFO, 0, NULL, "listening on %s (http)", where);
    }
    return s;
}

void rtmp_hsrv_close(rtmp_hsrv *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nfds; i++) {
        ev_io_stop(s->loop, &s->io[i]);
        close(s->io[i].fd);
    }
    while (s->conns) {
        rtmp_hconn *c = s->conns;
        if (!c->closing)
            snprintf(c->reason, sizeof c->reason, "server closed");
        conn_notify(c);
        conn_free(c);
    }
    free(s);
}

int rtmp_hsrv_port(const rtmp_hsrv *s) { return s->port; }
size_t rtmp_hsrv_conns(const rtmp_hsrv *s) { return s->nconns; }
unsigned long rtmp_hconn_id(const rtmp_hconn *c) { return c->id; }
const char *rtmp_hconn_peer(const rtmp_hconn *c) { return c->peer; }
void rtmp_hconn_set_ud(rtmp_hconn *c, void *ud) { c->ud = ud; }
void *rtmp_hconn_get_ud(const rtmp_hconn *c) { return c->ud; }
uint64_t rtmp_hconn_bytes_in(const rtmp_hconn *c) { return c->bytes_in; }
uint64_t rtmp_hconn_bytes_out(const rtmp_hconn *c) { return c->bytes_out; }
uint64_t rtmp_hconn_dropped(const rtmp_hconn *c) { return c->player.mq.dropped; }
size_t rtmp_hconn_pending(const rtmp_hconn *c) { return pending(c); }

size_t rtmp_hconn_memory(const rtmp_hconn *c)
{
    return sizeof *c + IN_CAP + c->out_cap + rtmp_httpd_memory(c->rd) + (c->ws ? sizeof *c->ws : 0)
           + c->player.q.cap * sizeof(rtmp_seg);
}
