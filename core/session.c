#include "session.h"
#include "amf0.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

struct rtmp_session {
    rtmp_session_config  cfg;
    rtmp_session_handler h;
    void                *ud;

    rtmp_handshake *hs;      /* only while the handshake runs: created at its
                                first byte (4.6 KB not spent on idle sockets) */
    int             ready;   /* the handshake is complete */
    rtmp_reader    *reader;
    rtmp_writer    *writer;
    int             error;   /* first error; no more input after it */

    /* Output.  Invariant: tail (owned, refs == 1) holds the bytes queued
     * after everything in q; held keeps messages queued before the
     * handshake completed. */
    rtmp_outq  q;
    rtmp_buf  *tail;
    rtmp_buf  *held;

    unsigned  autos;
    uint64_t  bytes_in, bytes_out; /* every byte, handshake included */
    uint64_t  received;       /* bytes after the handshake: the ack sequence number */
    uint64_t  acked_at;       /* received when we last acknowledged */
    uint32_t  ack_window;
    uint32_t  last_ack_sent, peer_ack, window_sent, peer_bandwidth;
    int       peer_bandwidth_limit;
    uint32_t  out_limit;      /* output limit in effect from the peer's Set Peer
                                 Bandwidth (0: none yet), for the reply */
    int       out_limit_type; /* limit type that set it (-1: none) */
    int       hs_kind;        /* RTMP_HS_* of the peer, kept after the handshake */
    int       hs_verified;    /* the peer's C2/S2 answered our C1/S1, kept after it */

    rtmp_session_observer observe; /* trace observer, NULL when off */
    void                 *observe_ud;
};

static const char *const auto_names[] = {
    "ack", "ping", "chunk_size", "abort", "window", "bandwidth", "bandwidth_reply",
};
#define N_AUTOS (sizeof auto_names / sizeof auto_names[0])

const char *rtmp_auto_name(unsigned bit)
{
    for (unsigned i = 0; i < N_AUTOS; i++)
        if (bit == 1u << i)
            return auto_names[i];
    return NULL;
}

unsigned rtmp_auto_bit(const char *name)
{
    for (unsigned i = 0; i < N_AUTOS; i++)
        if (strcmp(name, auto_names[i]) == 0)
            return 1u << i;
    return 0;
}

void rtmp_session_config_default(rtmp_session_config *cfg, int role)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->role = role;
    cfg->autos = RTMP_AUTO_DEFAULT;
    cfg->ack_window = RTMP_DEFAULT_ACK_WINDOW;
    cfg->max_amf_depth = RTMP_AMF0_DEFAULT_DEPTH;
    rtmp_reader_config_default(&cfg->reader);
}

static int on_chunk_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload);

rtmp_session *rtmp_session_new(const rtmp_session_config *cfg, const rtmp_session_handler *h, void *ud)
{
    rtmp_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->h = *h;
    s->ud = ud;
    s->autos = cfg->autos;
    s->ack_window = cfg->ack_window;
    s->received = s->acked_at = cfg->bytes_in_start;
    s->peer_bandwidth_limit = -1;
    s->out_limit_type = -1;
    s->reader = rtmp_reader_new(&cfg->reader, on_chunk_message, s);
    s->writer = rtmp_writer_new();
    if (!s->reader || !s->writer) {
        rtmp_session_free(s);
        return NULL;
    }
    return s;
}

void rtmp_session_free(rtmp_session *s)
{
    if (!s)
        return;
    rtmp_handshake_free(s->hs);
    rtmp_reader_free(s->reader);
    rtmp_writer_free(s->writer);
    rtmp_outq_clear(&s->q);
    rtmp_buf_unref(s->tail);
    rtmp_buf_unref(s->held);
    free(s);
}

/* Move the tail buffer into the queue, keeping byte order. */
static int flush_tail(rtmp_session *s)
{
    if (!s->tail)
        return 0;
    int rc = rtmp_outq_push(&s->q, s->tail, 0, s->tail->len);
    if (rc < 0)
        return rc;
    rtmp_buf_unref(s->tail);
    s->tail = NULL;
    return 0;
}

/* Where writers append: the held buffer until the handshake is done. */
static rtmp_buf **out_buf(rtmp_session *s)
{
    return s->ready ? &s->tail : &s->held;
}

/* The handshake state, created on first use. */
static rtmp_handshake *handshake(rtmp_session *s)
{
    if (!s->hs && !s->ready) {
        s->hs = rtmp_handshake_new(s->cfg.role, s->cfg.hs_flags);
        if (s->hs && s->cfg.hs_seeded)
            rtmp_handshake_seed(s->hs, s->cfg.hs_seed);
    }
    return s->hs;
}

int rtmp_session_start(rtmp_session *s)
{
    if (s->cfg.role != RTMP_ROLE_CLIENT || s->ready)
        return 0;
    if (!handshake(s))
        return RTMP_ERR_NOMEM;
    size_t before = s->tail ? s->tail->len : 0;
    int rc = rtmp_handshake_start(s->hs, &s->tail);
    if (rc >= 0 && s->tail)
        s->bytes_out += s->tail->len - before;
    return rc;
}

static int finish_handshake(rtmp_session *s)
{
    s->hs_kind = rtmp_handshake_peer_kind(s->hs);
    s->hs_verified = rtmp_handshake_peer_verified(s->hs);
    rtmp_handshake_free(s->hs);
    s->hs = NULL;
    s->ready = 1;
    if (s->held) {
        size_t n = s->held->len;
        int rc = rtmp_buf_append(&s->tail, s->held->data, n);
        rtmp_buf_unref(s->held);
        s->held = NULL;
        if (rc < 0)
            return rc;
    }
    return s->h.handshake_done ? s->h.handshake_done(s->ud) : 0;
}

/* Acknowledge when the peer's window has been reached since the last ack. */
static int maybe_ack(rtmp_session *s)
{
    if (!(s->autos & RTMP_AUTO_ACK) || s->ack_window == 0 || !s->ready)
        return 0;
    if (s->received - s->acked_at < s->ack_window)
        return 0;
    s->acked_at = s->received;
    return rtmp_session_send_ack(s, (uint32_t)s->received);
}

/* RTMP 1.0 5.4.5: the limit a Set Peer Bandwidth puts in effect (hard:
 * its window; soft: the smaller of its window and the limit in effect;
 * dynamic: as hard if the previous limit was hard, else ignored; a
 * missing limit-type byte counts as hard; the first message sets the
 * limit whatever its type, there being none in effect to keep), answered
 * with Window Ack Size when it differs from the last window we sent.  1
 * when a reply was queued, 0 when none was due, or a negative error. */
static int bandwidth_reply(rtmp_session *s, const rtmp_control *c)
{
    int type = c->limit < 0 ? 0 : c->limit;
    uint32_t limit;
    if (type == 0)
        limit = c->value;
    else if (type == 1)
        limit = s->out_limit && s->out_limit < c->value ? s->out_limit : c->value;
    else if (type == 2 && s->out_limit_type <= 0)
        limit = c->value, type = 0;
    else
        return 0;
    s->out_limit = limit;
    s->out_limit_type = type;
    if (limit == s->window_sent)
        return 0;
    int rc = rtmp_session_send_window(s, limit);
    return rc < 0 ? rc : 1;
}

static int apply_control(rtmp_session *s, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned *applied)
{
    rtmp_control c;
    if (rtmp_control_parse(h, payload, &c) < 0)
        return 0; /* malformed: the script sees it with a decode error */
    switch (h->type) {
    case RTMP_MSG_SET_CHUNK_SIZE:
        if (s->autos & RTMP_AUTO_CHUNK_SIZE) {
            int rc = rtmp_reader_set_chunk_size(s->reader, c.value);
            if (rc < 0)
                return rc;
            *applied |= RTMP_AUTO_CHUNK_SIZE;
        }
        break;
    case RTMP_MSG_ABORT:
        if (s->autos & RTMP_AUTO_ABORT) {
            rtmp_reader_abort(s->reader, c.value);
            *applied |= RTMP_AUTO_ABORT;
        }
        break;
    case RTMP_MSG_ACK:
        s->peer_ack = c.value;
        break;
    case RTMP_MSG_WINDOW_ACK_SIZE:
        if (s->autos & RTMP_AUTO_WINDOW) {
            s->ack_window = c.value;
            *applied |= RTMP_AUTO_WINDOW;
        }
        break;
    case RTMP_MSG_SET_PEER_BANDWIDTH:
        if (s->autos & RTMP_AUTO_BANDWIDTH_REPLY) {
            int rc = bandwidth_reply(s, &c);
            if (rc < 0)
                return rc;
            if (rc > 0)
                *applied |= RTMP_AUTO_BANDWIDTH_REPLY;
        }
        if (s->autos & RTMP_AUTO_BANDWIDTH) {
            s->peer_bandwidth = c.value;
            s->peer_bandwidth_limit = c.limit;
            *applied |= RTMP_AUTO_BANDWIDTH;
        }
        break;
    case RTMP_MSG_USER_CONTROL:
        if (c.event == RTMP_UC_PING_REQUEST && (s->autos & RTMP_AUTO_PING)) {
            int rc = rtmp_session_send_user_control(s, RTMP_UC_PING_RESPONSE, 1, c.value, 0);
            if (rc < 0)
                return rc;
            *applied |= RTMP_AUTO_PING;
        }
        break;
    }
    return 0;
}

static int on_chunk_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    rtmp_session *s = ud;
    unsigned applied = 0;
    if (s->observe)
        s->observe(s->observe_ud, RTMP_TRACE_IN, h->fmt, h, payload, h->length);
    if (rtmp_is_control(h->type)) {
        int rc = apply_control(s, h, payload, &applied);
        if (rc < 0)
            return rc;
    }
    return s->h.message ? s->h.message(s->ud, h, payload, applied) : 0;
}

ssize_t rtmp_session_feed(rtmp_session *s, const uint8_t *in, size_t len)
{
    size_t off = 0;
    if (s->error)
        return s->error;
    if (!s->ready && len > 0) {
        if (!handshake(s))
            return s->error = RTMP_ERR_NOMEM;
        size_t before = s->tail ? s->tail->len : 0;
        ssize_t n = rtmp_handshake_feed(s->hs, in, len, &s->tail);
        if (n < 0)
            return s->error = (int)n;
        if (s->tail)
            s->bytes_out += s->tail->len - before;
        off = (size_t)n;
        s->bytes_in += (size_t)n;
        if (rtmp_handshake_done(s->hs)) {
            int rc = finish_handshake(s);
            if (rc < 0)
                return s->error = rc;
        }
    }
    if (off < len && s->ready) {
        /* Count bytes as they are parsed so an Acknowledgement can go out
         * at the window even within one large read. */
        while (off < len) {
            size_t step = len - off;
            if (s->ack_window && (s->autos & RTMP_AUTO_ACK)) {
                uint64_t room = s->acked_at + s->ack_window > s->received
                              ? s->acked_at + s->ack_window - s->received : 1;
                if (room < step)
                    step = (size_t)room;
            }
            ssize_t n = rtmp_reader_feed(s->reader, in + off, step);
            if (n < 0)
                return s->error = (int)n;
            off += step;
            s->bytes_in += step;
            s->received += step;
            int rc = maybe_ack(s);
            if (rc < 0)
                return s->error = rc;
        }
    }
    return (ssize_t)len;
}

int rtmp_session_ready(const rtmp_session *s)
{
    return s->ready;
}

static int count_out(rtmp_session *s, rtmp_buf **b, size_t before, int rc)
{
    if (rc >= 0 && *b)
        s->bytes_out += (*b)->len - before;
    return rc;
}

/* Tell the observer about a message just appended to *b at offset
 * before: the first chunk's fmt is the top bits of its first byte. */
static void observe_out(rtmp_session *s, rtmp_buf **b, size_t before, const rtmp_msg_hdr *h,
                        const uint8_t *payload)
{
    int fmt = *b && (*b)->len > before ? (*b)->data[before] >> 6 : -1;
    s->observe(s->observe_ud, RTMP_TRACE_OUT, fmt, h, payload, h->length);
}

int rtmp_session_send(rtmp_session *s, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    rtmp_buf **b = out_buf(s);
    size_t before = *b ? (*b)->len : 0;
    int rc = count_out(s, b, before, rtmp_writer_write(s->writer, h, payload, b));
    if (rc >= 0 && s->observe)
        observe_out(s, b, before, h, payload);
    return rc;
}

int rtmp_session_send_chunked(rtmp_session *s, const rtmp_msg_hdr *h, rtmp_buf *buf)
{
    if (!s->ready) {
        int rc = rtmp_buf_append(&s->held, buf->data, buf->len);
        if (rc < 0)
            return rc;
    } else {
        int rc = flush_tail(s);
        if (rc < 0 || (rc = rtmp_outq_push(&s->q, buf, 0, buf->len)) < 0)
            return rc;
    }
    s->bytes_out += buf->len;
    if (s->observe) { /* the first bytes only (session.h): no copy of the message per member */
        uint8_t head[RTMP_TRACE_HEAD];
        size_t n = h->length < sizeof head ? h->length : sizeof head;
        if (rtmp_chunk_gather_fmt0(rtmp_writer_chunk_size(s->writer), h, buf, 0, head, n) < 0)
            n = 0; /* bytes of another shape than the contract says: the line without its body */
        s->observe(s->observe_ud, RTMP_TRACE_OUT, 0, h, head, n);
    }
    return rtmp_writer_note(s->writer, h);
}

int rtmp_session_send_raw(rtmp_session *s, const uint8_t *p, size_t n)
{
    rtmp_buf **b = out_buf(s);
    size_t before = *b ? (*b)->len : 0;
    int rc = count_out(s, b, before, rtmp_buf_append(b, p, n));
    if (rc >= 0 && s->observe)
        s->observe(s->observe_ud, RTMP_TRACE_OUT, -1, NULL, p, n);
    return rc;
}

static int send_control(rtmp_session *s, uint8_t type, const uint8_t *p, int n)
{
    rtmp_msg_hdr h = { .csid = 2, .timestamp = 0, .length = (uint32_t)n,
                       .stream_id = 0, .type = type, .fmt = RTMP_FMT_AUTO };
    return rtmp_session_send(s, &h, p);
}

int rtmp_session_set_chunk_size(rtmp_session *s, uint32_t size)
{
    uint8_t p[4];
    if (size < 1 || size > 0x7FFFFFFF)
        return RTMP_ERR_CHUNK_SIZE;
    int rc = send_control(s, RTMP_MSG_SET_CHUNK_SIZE, p, rtmp_control_u32(p, size));
    return rc < 0 ? rc : rtmp_writer_set_chunk_size(s->writer, size);
}

int rtmp_session_send_ack(rtmp_session *s, uint32_t sequence)
{
    uint8_t p[4];
    s->last_ack_sent = sequence;
    return send_control(s, RTMP_MSG_ACK, p, rtmp_control_u32(p, sequence));
}

int rtmp_session_send_window(rtmp_session *s, uint32_t window)
{
    uint8_t p[4];
    s->window_sent = window;
    return send_control(s, RTMP_MSG_WINDOW_ACK_SIZE, p, rtmp_control_u32(p, window));
}

int rtmp_session_send_peer_bandwidth(rtmp_session *s, uint32_t window, int limit)
{
    uint8_t p[5];
    return send_control(s, RTMP_MSG_SET_PEER_BANDWIDTH, p, rtmp_control_peer_bandwidth(p, window, limit));
}

int rtmp_session_send_user_control(rtmp_session *s, uint16_t event, int nfields, uint32_t v1, uint32_t v2)
{
    uint8_t p[10];
    return send_control(s, RTMP_MSG_USER_CONTROL, p, rtmp_control_user(p, event, nfields, v1, v2));
}

int rtmp_session_send_abort(rtmp_session *s, uint32_t csid)
{
    uint8_t p[4];
    int rc = send_control(s, RTMP_MSG_ABORT, p, rtmp_control_u32(p, csid));
    if (rc == 0)
        rtmp_writer_reset(s->writer, csid);
    return rc;
}

int rtmp_session_begin(rtmp_session *s, const rtmp_msg_hdr *h, rtmp_wmsg *m)
{
    return rtmp_writer_begin(s->writer, h, m);
}

int rtmp_session_chunk(rtmp_session *s, rtmp_wmsg *m, const uint8_t *payload, const rtmp_chunk_opts *o)
{
    rtmp_buf **b = out_buf(s);
    size_t before = *b ? (*b)->len : 0;
    int first = !m->started;
    int rc = count_out(s, b, before, rtmp_writer_chunk(s->writer, m, payload, o, b));
    if (rc >= 0 && first && s->observe) /* the message, once, at its first chunk */
        observe_out(s, b, before, &m->h, payload);
    return rc;
}

rtmp_outq *rtmp_session_output(rtmp_session *s)
{
    flush_tail(s); /* on OOM the bytes stay in tail and go out next time */
    return &s->q;
}

size_t rtmp_session_pending(const rtmp_session *s)
{
    return s->q.bytes + (s->tail ? s->tail->len : 0);
}

size_t rtmp_session_memory(const rtmp_session *s)
{
    size_t n = sizeof *s + rtmp_reader_memory(s->reader) + rtmp_writer_memory(s->writer);
    if (s->hs)
        n += rtmp_handshake_size();
    n += s->q.cap * sizeof *s->q.segs;
    for (size_t i = 0; i < s->q.count; i++) {
        const rtmp_buf *b = s->q.segs[(s->q.head + i) % s->q.cap].buf;
        n += sizeof *b + b->cap;
    }
    if (s->tail)
        n += sizeof *s->tail + s->tail->cap;
    if (s->held)
        n += sizeof *s->held + s->held->cap;
    return n;
}

unsigned rtmp_session_autos(const rtmp_session *s)
{
    return s->autos;
}

void rtmp_session_set_autos(rtmp_session *s, unsigned autos)
{
    s->autos = autos & RTMP_AUTO_ALL;
}

void rtmp_session_get_info(const rtmp_session *s, rtmp_session_info *info)
{
    info->bytes_in = s->bytes_in;
    info->bytes_out = s->bytes_out;
    info->received = s->received;
    info->in_chunk_size = rtmp_reader_chunk_size(s->reader);
    info->out_chunk_size = rtmp_writer_chunk_size(s->writer);
    info->ack_window = s->ack_window;
    info->last_ack_sent = s->last_ack_sent;
    info->peer_ack = s->peer_ack;
    info->window_sent = s->window_sent;
    info->peer_bandwidth = s->peer_bandwidth;
    info->peer_bandwidth_limit = s->peer_bandwidth_limit;
    info->hs_peer_kind = s->hs ? rtmp_handshake_peer_kind(s->hs) : s->hs_kind;
    info->hs_peer_verified = s->hs ? rtmp_handshake_peer_verified(s->hs) : s->hs_verified;
}

void rtmp_session_set_observer(rtmp_session *s, rtmp_session_observer fn, void *ud)
{
    s->observe = fn;
    s->observe_ud = fn ? ud : NULL;
}

void rtmp_session_prefetch(const rtmp_session *s)
{
    __builtin_prefetch(&s->ready, 0);
    __builtin_prefetch(&s->q, 1);
    __builtin_prefetch(&s->bytes_out, 1);
    __builtin_prefetch(&s->observe, 0);
}

void rtmp_session_warm(const rtmp_session *s, rtmp_warm *w)
{
    if (s->reader)
        rtmp_reader_warm(s->reader, w);
    rtmp_warm_add(w, s, sizeof *s);
}

rtmp_reader *rtmp_session_reader(rtmp_session *s)
{
    return s->reader;
}

rtmp_writer *rtmp_session_writer(rtmp_session *s)
{
    return s->writer;
}
