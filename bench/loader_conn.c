/*
 * loader_conn.c: one RTMP client connection of the loader.
 *
 * The socket is ours (non-blocking connect, read into the bench's shared
 * buffer, writev from the session's output queue); the protocol is an
 * rtmp_session in the client role.  A connection walks
 *   TCP -> handshake + connect -> createStream -> play/publish -> active
 * and may hold at an earlier stage (idle mode).  A publisher then sends
 * its FLV paced by the tag timestamps.
 *
 * A connection is never freed inside a callback that is parsing it: a
 * failure marks it dead, the session feed stops (RTMP_ERR_STOP), and the
 * I/O callback closes it on its way out.
 */
#include "loader.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "amf0.h"
#include "chunk.h"
#include "control.h"
#include "error.h"

/* Chunk streams, as ffmpeg uses them. */
#define CSID_COMMAND 3
#define CSID_AUDIO   4
#define CSID_DATA    5
#define CSID_VIDEO   6
#define CSID_STREAM  8   /* play / publish */

#define PUB_CHUNK_SIZE  4096
#define PUB_MAX_PENDING (64u << 20)  /* a publisher the server stopped reading from */
#define AMF_DEPTH 16

/* Transaction ids. */
enum { TXN_CONNECT = 1, TXN_RELEASE = 2, TXN_FCPUBLISH = 3, TXN_CREATE_PUB = 4, TXN_PUBLISH = 5,
       TXN_CREATE_PLAY = 2, TXN_PLAY = 3 };

static const char *const state_names[] = {
    "tcp connect", "tcp", "connect", "connected", "createStream", "play/publish", "active", "closed",
};

const char *loader_state_name(int state)
{
    if (state < 0 || state > LOADER_ST_CLOSED)
        return "?";
    return state_names[state];
}

/* ---- the live list ---- */

static void list_add(loader_worker *w, loader_conn *c)
{
    c->prev = NULL;
    c->next = w->live;
    if (w->live)
        w->live->prev = c;
    w->live = c;
}

static void list_remove(loader_worker *w, loader_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (w->live == c)
        w->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* ---- failure and close ---- */

void loader_conn_fail(loader_conn *c, const char *fmt, ...)
{
    char reason[160];
    va_list ap;
    if (c->dead)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->dead = 1;
    if (!c->failed) {
        c->failed = 1;
        loader_on_fail(c, reason);
    }
}

void loader_conn_close(loader_conn *c)
{
    loader_worker *w = c->w;
    if (c->state == LOADER_ST_CLOSED)
        return;
    ev_io_stop(w->loop, &c->io);
    if (c->pub)
        ev_timer_stop(w->loop, &c->pub->pace);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    SSL_free(c->ssl);
    c->ssl = NULL;
    rtmp_session_free(c->s);
    c->s = NULL;
    c->state = LOADER_ST_CLOSED;
    list_remove(w, c);
    loader_on_closed(c);
    if (!c->keep) {
        free(c->pub);
        free(c);
    }
}

void loader_conn_reap(loader_conn *c)
{
    if (c->dead)
        loader_conn_close(c);
}

/* Watch exactly `events` on the socket. */
static void watch(loader_conn *c, int events)
{
    if (c->events == events)
        return;
    ev_io_stop(c->w->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    if (events)
        ev_io_start(c->w->loop, &c->io);
    c->events = events;
}

static void reach(loader_conn *c, int state)
{
    c->state = state;
    if (state == c->stop_at && !c->reached) {
        c->reached = 1;
        loader_on_reached(c);
    }
}

/* ---- output ---- */

/* The publisher's backlog: pop the messages now wholly written. */
static void pub_written(loader_conn *c)
{
    loader_pub *p = c->pub;
    while (p->bl_count && p->backlog[p->bl_head].end <= c->written) {
        p->written_ts = p->backlog[p->bl_head].ts;
        p->has_written = 1;
        p->bl_head = (p->bl_head + 1) % LOADER_BACKLOG;
        p->bl_count--;
    }
}

/* Write what the session has queued; arm the write watcher on EAGAIN.
 * -1 when the connection failed. */
static int conn_flush(loader_conn *c)
{
    if (!c->s || c->dead)
        return c->dead ? -1 : 0;
    rtmp_outq *q = rtmp_session_output(c->s);
    int want_read = 0; /* TLS: a write that needs the socket readable */
    while (q->bytes > 0) {
        struct iovec iov[64];
        int n = rtmp_outq_iov(q, iov, 64);
        ssize_t w;
        if (c->ssl) { /* one queue piece per SSL_write (a blocked one is retried with the same piece) */
            size_t done;
            int r = SSL_write_ex(c->ssl, iov[0].iov_base, iov[0].iov_len, &done);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                want_read = e == SSL_ERROR_WANT_READ;
                if (e == SSL_ERROR_WANT_WRITE || want_read)
                    break;
                loader_conn_fail(c, "TLS write (%s): error %d", loader_state_name(c->state), e);
                return -1;
            }
            w = (ssize_t)done;
        } else if ((w = writev(c->fd, iov, n)) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            loader_conn_fail(c, "write (%s): %s", loader_state_name(c->state), strerror(errno));
            return -1;
        }
        rtmp_outq_consume(q, (size_t)w);
        c->written += (uint64_t)w;
        if (c->pub) {
            if (atomic_load_explicit(&c->b->in_window, memory_order_relaxed))
                c->pub->window_bytes += (uint64_t)w;
            pub_written(c);
        }
    }
    watch(c, EV_READ | (q->bytes && !want_read ? EV_WRITE : 0));
    return 0;
}

/* ---- AMF0 command building ---- */

typedef struct amf {
    rtmp_buf *b;
    int       rc;
} amf;

static void a_str(amf *a, const char *s)
{
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_string(&a->b, s, strlen(s));
}

static void a_num(amf *a, double v)
{
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_number(&a->b, v);
}

static void a_null(amf *a)
{
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_null(&a->b);
}

static void a_key(amf *a, const char *k)
{
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_key(&a->b, k, strlen(k));
}

static void a_kstr(amf *a, const char *k, const char *v)
{
    a_key(a, k);
    a_str(a, v);
}

static void a_knum(amf *a, const char *k, double v)
{
    a_key(a, k);
    a_num(a, v);
}

static void a_kbool(amf *a, const char *k, int v)
{
    a_key(a, k);
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_boolean(&a->b, v);
}

static void a_obj(amf *a)
{
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_object_start(&a->b);
}

static void a_end(amf *a)
{
    if (a->rc >= 0)
        a->rc = rtmp_amf0_write_object_end(&a->b);
}

/* Queue the AMF0 message in a (freed here). */
static int send_amf(loader_conn *c, amf *a, uint8_t type, uint32_t csid, uint32_t stream_id)
{
    int rc = a->rc;
    if (rc >= 0) {
        rtmp_msg_hdr h = { .csid = csid, .timestamp = 0, .length = (uint32_t)a->b->len,
                           .stream_id = stream_id, .type = type, .fmt = RTMP_FMT_AUTO };
        rc = rtmp_session_send(c->s, &h, a->b->data);
    }
    rtmp_buf_unref(a->b);
    a->b = NULL;
    if (rc < 0)
        loader_conn_fail(c, "queueing a command: %s", rtmp_strerror(rc));
    return rc;
}

/* A command with a null command object and string arguments. */
static int send_call(loader_conn *c, const char *name, double txn, uint32_t csid, uint32_t sid,
                     const char *arg1, const char *arg2)
{
    amf a = { 0 };
    a_str(&a, name);
    a_num(&a, txn);
    a_null(&a);
    if (arg1)
        a_str(&a, arg1);
    if (arg2)
        a_str(&a, arg2);
    return send_amf(c, &a, RTMP_MSG_AMF0_COMMAND, csid, sid);
}

static int send_connect(loader_conn *c)
{
    loader_bench *b = c->b;
    amf a = { 0 };
    a_str(&a, "connect");
    a_num(&a, TXN_CONNECT);
    a_obj(&a);
    a_kstr(&a, "app", b->app);
    a_kstr(&a, "type", "nonprivate");
    if (c->role == LOADER_PUBLISHER) {
        a_kstr(&a, "flashVer", "FMLE/3.0 (compatible; rtmp-loader)");
        a_kstr(&a, "tcUrl", b->tcurl);
    } else {
        a_kstr(&a, "flashVer", "LNX 9,0,124,2");
        a_kstr(&a, "tcUrl", b->tcurl);
        a_kbool(&a, "fpad", 0);
        a_knum(&a, "capabilities", 15);
        a_knum(&a, "audioCodecs", 4071);
        a_knum(&a, "videoCodecs", 252);
        a_knum(&a, "videoFunction", 1);
    }
    a_end(&a);
    return send_amf(c, &a, RTMP_MSG_AMF0_COMMAND, CSID_COMMAND, 0);
}

static int send_play(loader_conn *c)
{
    amf a = { 0 };
    a_str(&a, "play");
    a_num(&a, TXN_PLAY);
    a_null(&a);
    a_str(&a, c->name);
    a_num(&a, -2000);   /* live or recorded, as ffmpeg sends it */
    if (send_amf(c, &a, RTMP_MSG_AMF0_COMMAND, CSID_STREAM, c->stream_id) < 0)
        return -1;
    int rc = rtmp_session_send_user_control(c->s, RTMP_UC_SET_BUFFER_LENGTH, 2, c->stream_id, 3000);
    if (rc < 0)
        loader_conn_fail(c, "queueing a command: %s", rtmp_strerror(rc));
    return rc;
}

/* ---- publishing ---- */

/* The @setDataFrame onMetaData payload, built once: the file's own
 * metadata after the @setDataFrame string, or a minimal onMetaData. */
static rtmp_buf *metadata(loader_bench *b)
{
    if (b->metadata)
        return b->metadata;
    amf a = { 0 };
    a_str(&a, "@setDataFrame");
    if (b->flv.meta) {
        if (a.rc >= 0)
            a.rc = rtmp_buf_append(&a.b, b->flv.meta, b->flv.meta_len);
    } else {
        a_str(&a, "onMetaData");
        if (a.rc >= 0)
            a.rc = rtmp_amf0_write_ecma_start(&a.b, 1);
        a_knum(&a, "duration", 0);
        a_end(&a);
    }
    if (a.rc < 0) {
        rtmp_buf_unref(a.b);
        return NULL;
    }
    return b->metadata = a.b;
}

double loader_pub_lag_ms(const loader_conn *c)
{
    const loader_pub *p = c->pub;
    if (!p || !p->has_sent)
        return 0;
    if (!p->has_written)
        return (double)p->last_ts;
    return (double)(int32_t)(p->last_ts - p->written_ts);
}

static void send_tag(loader_conn *c, const loader_tag *t, uint32_t ts, double now)
{
    loader_bench *b = c->b;
    loader_pub *p = c->pub;
    rtmp_msg_hdr h = { .csid = t->type == RTMP_MSG_AUDIO ? CSID_AUDIO : CSID_VIDEO,
                       .timestamp = ts, .length = t->len, .stream_id = c->stream_id,
                       .type = t->type, .fmt = RTMP_FMT_AUTO };
    int rc = rtmp_session_send(c->s, &h, t->data);
    if (rc < 0) {
        loader_conn_fail(c, "queueing media: %s", rtmp_strerror(rc));
        return;
    }
    p->last_ts = ts;
    p->has_sent = 1;
    p->sent_msgs++;
    p->sent_bytes += t->len;
    if (atomic_load_explicit(&b->in_window, memory_order_relaxed)) {
        p->window_msgs++;
        b->window_published++;
    }
    if (b->ring && c->index == 0 && b->o.mode != LOADER_INGEST)
        loader_ring_add(b->ring, t->type, ts, now);
    if (p->bl_count < LOADER_BACKLOG) {
        rtmp_session_info info;
        rtmp_session_get_info(c->s, &info);
        size_t i = (p->bl_head + p->bl_count) % LOADER_BACKLOG;
        p->backlog[i].end = info.bytes_out;
        p->backlog[i].ts = ts;
        p->bl_count++;
    }
}

/* Send every tag that is due, then sleep until the next one. */
static void pace(loader_conn *c)
{
    loader_bench *b = c->b;
    loader_pub *p = c->pub;
    const loader_flv *f = &b->flv;
    double now = loader_now(), due = now;
    while (!c->dead) {
        const loader_tag *t = &f->tags[p->next];
        uint32_t ts = p->loop * f->loop_ms + t->ts;
        due = p->t0 + ts / 1000.0;
        if (due > now)
            break;
        if (p->loop == 0 || !t->seq_header)   /* sequence headers once */
            send_tag(c, t, ts, now);
        if (++p->next == f->ntags) {
            p->next = 0;
            p->loop++;
        }
    }
    if (conn_flush(c) < 0)
        return;
    if (rtmp_session_pending(c->s) > PUB_MAX_PENDING) {
        loader_conn_fail(c, "publisher: server stopped reading (%u MiB queued)", PUB_MAX_PENDING >> 20);
        return;
    }
    ev_timer_set(&p->pace, due - now > 0 ? due - now : 0, 0);
    ev_timer_start(c->w->loop, &p->pace);
}

static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    loader_pub *p = (loader_pub *)((char *)w - offsetof(loader_pub, pace));
    loader_conn *c = p->conn;
    pace(c);
    loader_conn_reap(c);
}

static void publish_start(loader_conn *c)
{
    loader_bench *b = c->b;
    rtmp_buf *meta = metadata(b);
    if (!meta) {
        loader_conn_fail(c, "out of memory");
        return;
    }
    rtmp_msg_hdr h = { .csid = CSID_DATA, .timestamp = 0, .length = (uint32_t)meta->len,
                       .stream_id = c->stream_id, .type = RTMP_MSG_AMF0_DATA, .fmt = RTMP_FMT_AUTO };
    int rc = rtmp_session_send(c->s, &h, meta->data);
    if (rc < 0) {
        loader_conn_fail(c, "queueing metadata: %s", rtmp_strerror(rc));
        return;
    }
    c->pub->t0 = loader_now();
    pace(c);
}

/* ---- incoming messages ---- */

static void on_media(loader_conn *c, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    loader_bench *b = c->b;
    loader_worker *w = c->w;
    if (c->role != LOADER_PLAYER || atomic_load_explicit(&b->window_over, memory_order_relaxed))
        return;   /* after the window every counter stays as it was at its end */
    if (!c->got_media) {
        c->got_media = 1;
        c->t_media = w->t_read;
        c->last_ts = h->timestamp;
        loader_on_media(c);
        if (c->dead)
            return;
    } else if ((int32_t)(h->timestamp - c->last_ts) > 0) {
        c->last_ts = h->timestamp;
    }
    if (h->type == RTMP_MSG_VIDEO && !c->got_video) {
        c->got_video = 1;
        loader_on_video(c);
    }
    /* Inside the window: only what was read after it began (the read
     * that started it may carry more messages). */
    if (!atomic_load_explicit(&b->in_window, memory_order_acquire)
        || w->t_read < atomic_load_explicit(&b->t_window, memory_order_relaxed))
        return;
    c->msgs++;
    if (b->ring && c->t_status > 0 && !loader_is_seq_header(h->type, payload, h->length)) {
        double t = loader_ring_find(b->ring, h->type, h->timestamp);
        if (t < 0)
            w->unmatched++;
        else if (t >= c->t_status)   /* not a replay of what was sent before we played */
            loader_hist_add(&w->latency, (w->t_read - t) * 1000.0);
    }
}

/* The info object of an onStatus or _error: copy its code and level. */
static void read_status(rtmp_amf0_reader *r, char *code, size_t codelen, char *level, size_t levlen)
{
    code[0] = level[0] = 0;
    if (rtmp_amf0_skip_value(r, AMF_DEPTH) < 0)   /* the command object (null) */
        return;
    if (rtmp_amf0_read_object_start(r) < 0)
        return;
    for (;;) {
        const char *k, *v;
        size_t klen, vlen;
        if (rtmp_amf0_read_key(r, &k, &klen) != RTMP_AMF0_KEY)
            return;
        int is_code = klen == 4 && memcmp(k, "code", 4) == 0;
        int is_level = klen == 5 && memcmp(k, "level", 5) == 0;
        if ((is_code || is_level) && rtmp_amf0_read_string(r, &v, &vlen) >= 0) {
            char *dst = is_code ? code : level;
            size_t cap = is_code ? codelen : levlen;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(dst, v, vlen);
            dst[vlen] = 0;
        } else if (rtmp_amf0_skip_value(r, AMF_DEPTH) < 0) {
            return;
        }
    }
}

static void after_connect(loader_conn *c)
{
    if (c->stop_at == LOADER_ST_CONNECTED) {
        reach(c, LOADER_ST_CONNECTED);
        return;
    }
    if (c->role == LOADER_PUBLISHER) {
        c->create_txn = TXN_CREATE_PUB;
        if (send_call(c, "releaseStream", TXN_RELEASE, CSID_COMMAND, 0, c->name, NULL) < 0
            || send_call(c, "FCPublish", TXN_FCPUBLISH, CSID_COMMAND, 0, c->name, NULL) < 0)
            return;
    } else {
        c->create_txn = TXN_CREATE_PLAY;
    }
    if (send_call(c, "createStream", c->create_txn, CSID_COMMAND, 0, NULL, NULL) < 0)
        return;
    reach(c, LOADER_ST_CREATE);
}

static void after_create(loader_conn *c, rtmp_amf0_reader *r)
{
    double sid;
    if (rtmp_amf0_skip_value(r, AMF_DEPTH) < 0 || rtmp_amf0_read_number(r, &sid) < 0
        || !(sid >= 0 && sid <= 0xFFFFFFFFu)) {
        loader_conn_fail(c, "createStream: _result without a stream id");
        return;
    }
    c->stream_id = (uint32_t)sid;
    int rc = c->role == LOADER_PUBLISHER
           ? send_call(c, "publish", TXN_PUBLISH, CSID_STREAM, c->stream_id, c->name, "live")
           : send_play(c);
    if (rc >= 0)
        reach(c, LOADER_ST_START);
}

static void on_status(loader_conn *c, const char *code, const char *level)
{
    if (strcmp(level, "error") == 0) {
        loader_conn_fail(c, "onStatus %s (%s)", code, loader_state_name(c->state));
        return;
    }
    if (c->state != LOADER_ST_START)
        return;
    const char *want = c->role == LOADER_PUBLISHER ? "NetStream.Publish.Start" : "NetStream.Play.Start";
    if (strcmp(code, want) != 0)
        return;
    c->t_status = c->w->t_read;
    reach(c, LOADER_ST_ACTIVE);
    if (!c->dead && c->role == LOADER_PUBLISHER)
        publish_start(c);
}

static void on_command(loader_conn *c, const uint8_t *p, size_t len)
{
    rtmp_amf0_reader r;
    const char *name;
    size_t nlen;
    double txn = 0;
    char code[96], level[32];
    rtmp_amf0_reader_init(&r, p, len);
    if (rtmp_amf0_read_string(&r, &name, &nlen) < 0)
        return;
    if (rtmp_amf0_read_number(&r, &txn) < 0)
        txn = 0;
    if (nlen == 7 && memcmp(name, "_result", 7) == 0) {
        if (txn == TXN_CONNECT && c->state == LOADER_ST_CONNECT)
            after_connect(c);
        else if (txn == c->create_txn && c->state == LOADER_ST_CREATE)
            after_create(c, &r);
    } else if (nlen == 6 && memcmp(name, "_error", 6) == 0) {
        read_status(&r, code, sizeof code, level, sizeof level);
        loader_conn_fail(c, "_error in %s: %s", loader_state_name(c->state), code[0] ? code : "(no code)");
    } else if (nlen == 8 && memcmp(name, "onStatus", 8) == 0) {
        read_status(&r, code, sizeof code, level, sizeof level);
        on_status(c, code, level);
    }
}

static int on_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    (void)applied;
    loader_conn *c = ud;
    switch (h->type) {
    case RTMP_MSG_AUDIO:
    case RTMP_MSG_VIDEO:
        on_media(c, h, payload);
        break;
    case RTMP_MSG_AMF0_COMMAND:
        on_command(c, payload, h->length);
        break;
    case RTMP_MSG_AMF3_COMMAND:
        if (h->length > 0)
            on_command(c, payload + 1, h->length - 1);
        break;
    default:
        break;
    }
    return c->dead ? RTMP_ERR_STOP : 0;
}

/* ---- socket events ---- */

static void start_session(loader_conn *c);

/* Drive the TLS handshake; the RTMP session starts once it is done. */
static void tls_handshake(loader_conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_open = 1;
        start_session(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        watch(c, EV_READ);
    else if (e == SSL_ERROR_WANT_WRITE)
        watch(c, EV_READ | EV_WRITE);
    else
        loader_conn_fail(c, "TLS handshake: error %d", e);
}

static void on_connected(loader_conn *c)
{
    reach(c, LOADER_ST_TCP_UP);
    if (c->dead || c->stop_at == LOADER_ST_TCP_UP) {
        watch(c, EV_READ);   /* to see the server close it */
        return;
    }
    if (c->b->tls_ctx) {
        if (!(c->ssl = SSL_new(c->b->tls_ctx)) || SSL_set_fd(c->ssl, c->fd) != 1) {
            loader_conn_fail(c, "out of memory");
            return;
        }
        SSL_set_connect_state(c->ssl);
        SSL_set_tlsext_host_name(c->ssl, c->b->host);
        tls_handshake(c);
        return;
    }
    start_session(c);
}

/* The RTMP session: handshake, then connect (held until it is done). */
static void start_session(loader_conn *c)
{
    rtmp_session_config cfg;
    rtmp_session_config_default(&cfg, RTMP_ROLE_CLIENT);
    rtmp_session_handler h = { .handshake_done = NULL, .message = on_message };
    c->s = rtmp_session_new(&cfg, &h, c);
    if (!c->s) {
        loader_conn_fail(c, "out of memory");
        return;
    }
    int rc = rtmp_session_start(c->s);
    if (rc >= 0 && c->role == LOADER_PUBLISHER)
        rc = rtmp_session_set_chunk_size(c->s, PUB_CHUNK_SIZE);
    if (rc < 0) {
        loader_conn_fail(c, "starting the session: %s", rtmp_strerror(rc));
        return;
    }
    if (send_connect(c) < 0)   /* held by the session until the handshake is done */
        return;
    c->state = LOADER_ST_CONNECT;
    conn_flush(c);
}

/* read(), or SSL_read_ex on a TLS connection with its errors mapped to
 * read()'s: bytes, 0 at the end, -1 with errno (EAGAIN: nothing now). */
static ssize_t conn_read(loader_conn *c, uint8_t *buf, size_t size)
{
    if (!c->ssl)
        return read(c->fd, buf, size);
    size_t got;
    int r = SSL_read_ex(c->ssl, buf, size, &got);
    if (r > 0)
        return (ssize_t)got;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        if (errno == 0 || errno == EAGAIN)
            errno = EPROTO;
        return -1;
    }
}

static void on_readable(loader_conn *c)
{
    loader_bench *b = c->b;
    loader_worker *w = c->w;
    /* TLS: up to 16 records (one per SSL_read) per wakeup, as plain reads 4 buffers */
    for (int i = 0; i < (c->ssl ? 16 : 4); i++) {
        ssize_t n = conn_read(c, w->rbuf, w->rbuf_size);
        if (n > 0) {
            w->t_read = loader_now();
            if (b->o.quickack) {
                int one = 1;
                setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
            }
            if (c->role == LOADER_PLAYER && atomic_load_explicit(&b->in_window, memory_order_relaxed)) {
                c->bytes += (uint64_t)n;
                w->reads++;
            }
            if (!c->s)
                continue;   /* bytes before we spoke: ignore them */
            ssize_t rc = rtmp_session_feed(c->s, w->rbuf, (size_t)n);
            if (c->dead)
                return;
            if (rc < 0) {
                loader_conn_fail(c, "protocol error in %s: %s", loader_state_name(c->state), rtmp_strerror((int)rc));
                return;
            }
            if ((size_t)n < w->rbuf_size && !c->ssl)
                break;
        } else if (n == 0) {
            loader_conn_fail(c, "closed by server in %s", loader_state_name(c->state));
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            loader_conn_fail(c, "read in %s: %s", loader_state_name(c->state), strerror(errno));
            return;
        }
    }
    conn_flush(c);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    loader_conn *c = (loader_conn *)w;
    if (c->state == LOADER_ST_TCP) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err)
            loader_conn_fail(c, "tcp connect: %s", strerror(err));
        else
            on_connected(c);
    } else if (c->ssl && !c->tls_open) {
        tls_handshake(c);
    } else {
        if (revents & EV_READ)
            on_readable(c);
        if (!c->dead && (revents & EV_WRITE))
            conn_flush(c);
    }
    loader_conn_reap(c);
}

loader_conn *loader_conn_start(loader_worker *w, int role, int index, const char *name, int stop_at, int keep)
{
    loader_bench *b = w->b;
    loader_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->b = b;
    c->w = w;
    c->fd = -1;
    c->role = role;
    c->index = index;
    c->name = name;
    c->stop_at = stop_at;
    c->keep = keep;
    c->state = LOADER_ST_TCP;
    ev_io_init(&c->io, io_cb, -1, 0);
    if (role == LOADER_PUBLISHER) {
        c->pub = calloc(1, sizeof *c->pub);
        if (!c->pub) {
            free(c);
            return NULL;
        }
        c->pub->conn = c;
        c->pub->lag_at_end = NAN;
        ev_timer_init(&c->pub->pace, pace_cb, 0, 0);
        ev_set_priority(&c->pub->pace, EV_MAXPRI);
        ev_set_priority(&c->io, EV_MAXPRI);
    }
    list_add(w, c);
    c->t_start = loader_now();
    c->fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        loader_conn_fail(c, "socket: %s", strerror(errno));
    } else {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (const struct sockaddr *)&b->addr, b->addrlen) == 0)
            on_connected(c);
        else if (errno == EINPROGRESS)
            watch(c, EV_WRITE);
        else
            loader_conn_fail(c, "tcp connect: %s", strerror(errno));
    }
    if (c->dead) {
        loader_conn_close(c);
        return keep ? c : NULL;
    }
    return c;
}

void loader_conn_free(loader_conn *c)
{
    if (!c)
        return;
    c->keep = 1;
    loader_conn_close(c);
    free(c->pub);
    free(c);
}
