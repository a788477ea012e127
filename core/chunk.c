/*
 * chunk.c: the RTMP chunk layer (see chunk.h).
 *
 * Reader: a push parser with two states.  In R_HEADER the bytes of one
 * chunk header (basic header, message header, extended timestamp) gather
 * in r->hdr, a fixed 18-byte array, in up to three stages; in R_PAYLOAD
 * the chunk's payload is copied in bulk into the chunk stream's buffer,
 * or, when a whole message sits in one chunk inside the caller's input,
 * handed to the callback in place.
 *
 * Writer: one rtmp_buf_grow per message, then one memcpy per chunk.
 */
#include "chunk.h"
#include "error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define EXT_TS          0xFFFFFFu    /* 3-byte timestamp field: extended follows */
#define CHUNK_SIZE_MAX  0x7FFFFFFFu  /* 31 bits */
#define MIN_BUF         256          /* first allocation for a partial message */
#define SPARE_MAX       (64 * 1024)  /* largest buffer kept for the next message */
#define GROW_SLACK      (64 * 1024)  /* most a partial message's buffer holds past its bytes */
#define CARVE_BLOCK     (64 * 1024)  /* buffers made up front are carved from blocks of this size */

static const uint8_t msg_hdr_len[4] = { 11, 7, 3, 0 };

/* Bytes in the basic header announced by its first byte. */
static size_t basic_len_of(uint8_t b)
{
    switch (b & 0x3F) {
    case 0: return 2;
    case 1: return 3;
    default: return 1;
    }
}

/* Bytes the basic header of csid takes (the shortest form). */
static size_t basic_len(uint32_t csid)
{
    return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

static size_t put_basic(uint8_t *p, unsigned fmt, uint32_t csid)
{
    uint8_t f = (uint8_t)(fmt << 6);
    if (csid < 64) {
        p[0] = f | (uint8_t)csid;
        return 1;
    }
    if (csid < 320) {
        p[0] = f;
        p[1] = (uint8_t)(csid - 64);
        return 2;
    }
    p[0] = f | 1;
    p[1] = (uint8_t)(csid - 64);
    p[2] = (uint8_t)((csid - 64) >> 8);
    return 3;
}

void rtmp_reader_config_default(rtmp_reader_config *cfg)
{
    cfg->max_message = RTMP_DEFAULT_MAX_MESSAGE;
    cfg->max_amf_message = 0;
    cfg->max_chunk_streams = RTMP_DEFAULT_MAX_CHUNK_STREAMS;
    cfg->min_chunk_size = 1;
    cfg->max_chunk_size = CHUNK_SIZE_MAX;
    cfg->ext_ts_fmt3 = RTMP_EXT_TS_DETECT;
    cfg->accept_fresh_fmt = 0;
}

/* ---- reader ---- */

/* What the reader knows about one chunk stream. */
typedef struct rstream {
    uint32_t csid;
    uint32_t timestamp;  /* of the current (or last) message */
    uint32_t delta;      /* last timestamp delta; after fmt 0 its timestamp
                            (spec 5.3.1.2.4: a fmt 3 after a fmt 0 repeats
                            the fmt 0 timestamp as its delta) */
    uint32_t length;
    uint32_t stream_id;
    uint8_t  type;
    uint8_t  fmt;        /* fmt of the current message's first chunk */
    uint8_t  ext;        /* last fmt 0-2 header that began a message had
                            an extended timestamp (its value is delta) */
    uint8_t  busy;       /* a message is being reassembled */
    /* Invariant: busy implies received < length; buf->data[0 ..
     * received) is the payload so far; buf is NULL unless busy, and
     * buf->cap <= max(MIN_BUF, min(2 * received, received + GROW_SLACK),
     * SPARE_MAX) capped by length when it grew here (a reused spare may
     * exceed length, up to SPARE_MAX; a buffer made up front is length,
     * at most SPARE_MAX: store()). */
    uint32_t received;
    rtmp_buf *buf;
} rstream;

enum { R_HEADER, R_PAYLOAD };
enum { H_BASE, H_EXT, H_PEEK };    /* what the current header stage reads */

struct rtmp_reader {
    rtmp_reader_config cfg;
    rtmp_reader_cb     cb;
    void              *ud;
    uint32_t           chunk_size;
    int                error;      /* sticky once set */
    int                state;      /* R_* */

    /* Header in progress: hdr[0 .. hlen) gathered, hneed wanted for the
     * current stage.  3 basic + 11 message + 4 extended = 18. */
    uint8_t  hdr[18];
    uint8_t  hlen, hneed, hstage;
    uint8_t  fmt;                  /* of the chunk being read */
    uint8_t  cont;                 /* the chunk continues a busy message */
    uint32_t tsf;                  /* its 3-byte timestamp field */

    uint32_t cur;                  /* index in st of the chunk's stream */
    uint32_t left;                 /* payload bytes left in this chunk */

    rstream *st;
    uint32_t nst, capst, last;
    size_t   buffered;             /* sum of cap over all streams */

    /* One payload buffer kept between messages (at most SPARE_MAX), so a
     * steady stream of messages allocates nothing. */
    rtmp_buf *spare;
    rtmp_carver carver;            /* buffers made up front are carved from its block (store()) */
    uint32_t  ahead;               /* 1 + the index in st of the partial message started
                                      in the spare or up front (store()), 0: none */
    uint64_t  fed;                 /* bytes fed so far */
    rtmp_buf *delivering;          /* the buffer of the message being delivered */
    int       kept;                /* the callback kept the last one (rtmp_reader_payload_buf) */
};

rtmp_reader *rtmp_reader_new(const rtmp_reader_config *cfg, rtmp_reader_cb cb, void *ud)
{
    rtmp_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (cfg)
        r->cfg = *cfg;
    else
        rtmp_reader_config_default(&r->cfg);
    r->cb = cb;
    r->ud = ud;
    r->chunk_size = RTMP_DEFAULT_CHUNK_SIZE;
    r->state = R_HEADER;
    return r;
}

void rtmp_reader_free(rtmp_reader *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nst; i++)
        rtmp_buf_unref(r->st[i].buf);
    free(r->st);
    rtmp_buf_unref(r->spare);
    rtmp_carver_end(&r->carver);
    free(r);
}

int rtmp_reader_set_chunk_size(rtmp_reader *r, uint32_t size)
{
    uint32_t lo = r->cfg.min_chunk_size ? r->cfg.min_chunk_size : 1;
    uint32_t hi = r->cfg.max_chunk_size < CHUNK_SIZE_MAX ? r->cfg.max_chunk_size : CHUNK_SIZE_MAX;
    if (size < lo || size > hi)
        return RTMP_ERR_CHUNK_SIZE;
    r->chunk_size = size;
    return 0;
}

uint32_t rtmp_reader_chunk_size(const rtmp_reader *r)
{
    return r->chunk_size;
}

int rtmp_reader_set_ext_ts_fmt3(rtmp_reader *r, int mode)
{
    if (mode != RTMP_EXT_TS_DETECT && mode != RTMP_EXT_TS_SPEC && mode != RTMP_EXT_TS_NEVER)
        return RTMP_ERR_INVAL;
    r->cfg.ext_ts_fmt3 = mode;
    return 0;
}

void rtmp_reader_set_accept_fresh_fmt(rtmp_reader *r, int on)
{
    r->cfg.accept_fresh_fmt = on != 0;
}

const rtmp_reader_config *rtmp_reader_get_config(const rtmp_reader *r)
{
    return &r->cfg;
}

void rtmp_reader_warm(const rtmp_reader *r, rtmp_warm *w)
{
    rtmp_warm_add(w, r, sizeof *r);
    if (r->last < r->nst) {
        const rstream *s = &r->st[r->last];
        rtmp_warm_add(w, s, sizeof *s);
        if (s->busy && s->buf)
            rtmp_warm_add(w, s->buf->data + s->received, 1);
    }
    if (r->spare)
        rtmp_warm_add(w, r->spare, sizeof *r->spare + 1);
    else if (r->carver.block && r->carver.off < r->carver.cap)
        rtmp_warm_add(w, r->carver.block->data + r->carver.off, 1);
}

rtmp_buf *rtmp_reader_payload_buf(const rtmp_reader *r)
{
    return r->delivering;
}

size_t rtmp_reader_buffered(const rtmp_reader *r)
{
    return r->buffered;
}

size_t rtmp_reader_memory(const rtmp_reader *r)
{
    return sizeof *r + (size_t)r->capst * sizeof *r->st + r->buffered + (r->spare ? r->spare->cap : 0)
         + rtmp_carver_room(&r->carver);
}

/* Index of csid in r->st, or -1.  The last one used is tried first. */
static long find_stream(rtmp_reader *r, uint32_t csid)
{
    if (r->last < r->nst && r->st[r->last].csid == csid)
        return r->last;
    for (uint32_t i = 0; i < r->nst; i++)
        if (r->st[i].csid == csid)
            return r->last = i;
    return -1;
}

/* Release s's buffer: kept as the reader's spare when it is the largest
 * one up to SPARE_MAX and nobody took it (rtmp_reader_payload_buf), its
 * room given back to the block when it was carved and nobody took it
 * (so a block holds only what was kept), let go of otherwise. */
static void drop_buffer(rtmp_reader *r, rstream *s)
{
    rtmp_buf *b = s->buf;
    if (!b)
        return;
    if (r->ahead == 1 + (uint32_t)(s - r->st))
        r->ahead = 0;
    r->buffered -= b->cap;
    if (b->refs == 1 && !b->block && b->cap <= SPARE_MAX && (!r->spare || b->cap > r->spare->cap)) {
        rtmp_buf_unref(r->spare);
        r->spare = b;
    } else if (!b->block || !rtmp_carver_unwind(&r->carver, b)) {
        rtmp_buf_unref(b);
    }
    s->buf = NULL;
}

int rtmp_reader_abort(rtmp_reader *r, uint32_t csid)
{
    long i = find_stream(r, csid);
    if (i < 0)
        return 0;
    rstream *s = &r->st[i];
    if (s->busy) {
        s->busy = 0;
        s->received = 0;
        drop_buffer(r, s);
        /* if a chunk of it is still arriving, R_PAYLOAD skips its bytes */
    }
    return 0;
}

/* Hand a complete message to the callback. */
static int deliver(rtmp_reader *r, rstream *s, const uint8_t *payload)
{
    static const uint8_t empty[1];
    rtmp_msg_hdr h = {
        .csid = s->csid, .timestamp = s->timestamp, .length = s->length,
        .stream_id = s->stream_id, .type = s->type, .fmt = s->fmt,
    };
    s->busy = 0;
    s->received = 0;
    if (payload && s->buf && payload == s->buf->data) {
        s->buf->len = s->length;
        r->delivering = s->buf;
    }
    int rc = r->cb ? r->cb(r->ud, &h, payload ? payload : empty) : 0;
    if (r->delivering)
        r->kept = r->delivering->refs > 1;
    r->delivering = NULL;
    drop_buffer(r, s);   /* after the callback: payload may point into it */
    return rc < 0 ? rc : 0;
}

/* A buffer of exactly len bytes (at most SPARE_MAX), carved from the
 * reader's block when it is at most half a block (a new block when the
 * room left is short; a carved buffer nobody kept gives its room back:
 * drop_buffer()), else of its own; NULL on OOM. */
static rtmp_buf *up_front(rtmp_reader *r, size_t len)
{
    if (len > CARVE_BLOCK / 2)
        return rtmp_buf_new(len);
    rtmp_buf *b = rtmp_carver_cut(&r->carver, len);
    if (!b && rtmp_carver_start(&r->carver, CARVE_BLOCK) == 0)
        b = rtmp_carver_cut(&r->carver, len);
    if (b) {
        b->len = len;
        rtmp_carver_trim(&r->carver, b);
    }
    return b;
}

/* Append n payload bytes to s, growing its buffer geometrically but never
 * past the message length, so memory follows the bytes received.  A
 * message starts in the spare buffer; without one, when the callback
 * kept the last buffer (rtmp_reader_payload_buf), a message of at most
 * SPARE_MAX bytes, when no other is partial and it is at most half of
 * what the peer sent so far, gets a buffer of its length at once
 * (up_front()): a steady stream of messages the callback keeps then
 * neither grows nor copies a buffer.  Either way the message holds the
 * reader's one allowance (ahead) until it goes. */
static int store(rtmp_reader *r, rstream *s, const uint8_t *p, uint32_t n)
{
    size_t need = (size_t)s->received + n;
    if (!s->buf && !r->ahead) {
        if (r->spare) { /* start the message in the spare buffer */
            s->buf = r->spare;
            r->spare = NULL;
        } else if (r->kept && s->length <= SPARE_MAX && r->buffered == 0 && s->length <= r->fed / 2) {
            if (!(s->buf = up_front(r, s->length)))
                return RTMP_ERR_NOMEM;
        }
        if (s->buf) {
            r->ahead = 1 + (uint32_t)(s - r->st);
            s->buf->len = 0;
            r->buffered += s->buf->cap;
        }
    }
    size_t have = s->buf ? s->buf->cap : 0;
    if (need > have) {
        /* doubling, but never more than GROW_SLACK past the bytes that
         * are there: a peer that stalls in a long message costs what it
         * sent plus a constant */
        size_t cap = have * 2;
        if (cap < MIN_BUF)
            cap = MIN_BUF;
        if (cap > need + GROW_SLACK)
            cap = need + GROW_SLACK;
        if (cap > s->length)
            cap = s->length;
        if (cap < need)
            cap = need;
        rtmp_buf *b = rtmp_buf_resize(s->buf, cap);
        if (!b)
            return RTMP_ERR_NOMEM;
        r->buffered += cap - have;
        s->buf = b;
    }
    memcpy(s->buf->data + s->received, p, n);
    s->received += n;
    return 0;
}

/* The header is complete: start reading the chunk's payload.  A chunk of
 * a zero-length message is the whole message. */
static int chunk_begin(rtmp_reader *r)
{
    rstream *s = &r->st[r->cur];
    r->hlen = 0;
    uint32_t rest = s->length - s->received;
    r->left = rest < r->chunk_size ? rest : r->chunk_size;
    if (r->left == 0) {
        r->state = R_HEADER;
        return deliver(r, s, NULL);
    }
    r->state = R_PAYLOAD;
    return 0;
}

/* Apply the timestamp of a chunk that begins a message; v is the value of
 * the extended timestamp when one was read, else the 3-byte field. */
static void begin_message(rtmp_reader *r, rstream *s, uint32_t v, int have_ext)
{
    switch (r->fmt) {
    case 0:
        s->timestamp = v;
        s->delta = v;
        s->ext = r->tsf == EXT_TS;
        break;
    case 1:
    case 2:
        s->delta = v;
        s->timestamp += v;
        s->ext = r->tsf == EXT_TS;
        break;
    default:
        if (have_ext)
            s->delta = v;
        s->timestamp += s->delta;
        break;
    }
    s->fmt = r->fmt;
    s->busy = 1;
    s->received = 0;
}

/* Basic and message header gathered: find the chunk stream, check the
 * limits, and decide whether an extended timestamp follows. */
static int header_base(rtmp_reader *r)
{
    const uint8_t *b = r->hdr;
    uint8_t fmt = b[0] >> 6;
    uint32_t csid = b[0] & 0x3F;
    size_t bl = 1;
    if (csid == 0) {
        csid = 64 + (uint32_t)b[1];
        bl = 2;
    } else if (csid == 1) {
        csid = 64 + (uint32_t)b[1] + ((uint32_t)b[2] << 8);
        bl = 3;
    }
    const uint8_t *m = b + bl;

    long i = find_stream(r, csid);
    if (i < 0) {
        if (fmt != 0 && !r->cfg.accept_fresh_fmt)
            return RTMP_ERR_FRESH_CSID;
        if (r->nst >= r->cfg.max_chunk_streams)
            return RTMP_ERR_TOO_MANY_CSID;
        if (r->nst == r->capst) {
            uint32_t cap = r->capst ? r->capst * 2 : 8;
            rstream *st = realloc(r->st, cap * sizeof *st);
            if (!st)
                return RTMP_ERR_NOMEM;
            r->st = st;
            r->capst = cap;
        }
        i = r->nst++;
        memset(&r->st[i], 0, sizeof r->st[i]);
        r->st[i].csid = csid;
        r->last = (uint32_t)i;
    }
    rstream *s = &r->st[i];
    r->cur = (uint32_t)i;
    r->fmt = fmt;
    r->cont = s->busy;
    r->tsf = fmt <= 2 ? rtmp_get_be24(m) : 0;

    if (fmt <= 1) {
        uint32_t length = rtmp_get_be24(m + 3);
        if (s->busy) {
            /* A header in the middle of a message may not change its
             * length (CVE-2016-10191); with the same length its fields
             * are ignored and the chunk continues the message. */
            if (length != s->length)
                return RTMP_ERR_LENGTH_CHANGED;
        } else {
            uint8_t type = m[6];
            if (length > r->cfg.max_message
                || (type >= RTMP_MSG_AMF3_DATA && type <= RTMP_MSG_AMF0_COMMAND && r->cfg.max_amf_message
                    && length > r->cfg.max_amf_message))
                return RTMP_ERR_MSG_TOO_LONG;
            s->length = length;
            s->type = m[6];
            if (fmt == 0)
                s->stream_id = rtmp_get_le32(m + 7);
        }
    }

    int ext;
    if (fmt <= 2)
        ext = r->tsf == EXT_TS ? H_EXT : H_BASE;
    else if (!s->ext || r->cfg.ext_ts_fmt3 == RTMP_EXT_TS_NEVER)
        ext = H_BASE;
    else
        ext = r->cfg.ext_ts_fmt3 == RTMP_EXT_TS_SPEC ? H_EXT : H_PEEK;
    if (ext != H_BASE) {
        r->hstage = (uint8_t)ext;
        r->hneed = (uint8_t)(r->hneed + 4);
        return 0;
    }
    if (!r->cont)
        begin_message(r, s, r->tsf, 0);
    return chunk_begin(r);
}

static ssize_t parse(rtmp_reader *r, const uint8_t *p, size_t n);

/* The 4 bytes after the header are in hdr[hneed-4 .. hneed).  Take them
 * as the extended timestamp, or (H_PEEK, not the expected value) give
 * them back as input. */
static int header_ext(rtmp_reader *r)
{
    rstream *s = &r->st[r->cur];
    uint32_t v = rtmp_get_be32(r->hdr + r->hneed - 4);
    if (r->hstage == H_PEEK && v != s->delta) {
        uint8_t again[4];
        memcpy(again, r->hdr + r->hneed - 4, 4);
        if (!r->cont)
            begin_message(r, s, 0, 0);
        int rc = chunk_begin(r);
        if (rc < 0)
            return rc;
        /* hdr is free again; the replay can start at most one new header
         * (1 basic byte + 4 peeked would not fit), so no deeper recursion */
        ssize_t k = parse(r, again, sizeof again);
        return k < 0 ? (int)k : 0;
    }
    if (!r->cont)
        begin_message(r, s, v, 1);
    return chunk_begin(r);
}

static ssize_t parse(rtmp_reader *r, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        if (r->state == R_PAYLOAD) {
            rstream *s = &r->st[r->cur];
            size_t avail = n - off;
            uint32_t take = avail < r->left ? (uint32_t)avail : r->left;
            if (!s->busy) {
                /* aborted from outside while its chunk was arriving */
                off += take;
                r->left -= take;
                if (r->left == 0)
                    r->state = R_HEADER;
                continue;
            }
            if (s->received == 0 && r->left == s->length && take == r->left) {
                /* the whole message is here: no copy */
                off += take;
                r->left = 0;
                r->state = R_HEADER;
                int rc = deliver(r, s, p + off - take);
                if (rc < 0)
                    return rc;
                continue;
            }
            int rc = store(r, s, p + off, take);
            if (rc < 0)
                return rc;
            off += take;
            r->left -= take;
            if (r->left == 0) {
                r->state = R_HEADER;
                if (s->received == s->length && (rc = deliver(r, s, s->buf->data)) < 0)
                    return rc;
            }
            continue;
        }

        if (r->hlen == 0) {
            r->hstage = H_BASE;
            r->hneed = (uint8_t)(basic_len_of(p[off]) + msg_hdr_len[p[off] >> 6]);
        }
        size_t want = (size_t)(r->hneed - r->hlen);
        size_t take = n - off < want ? n - off : want;
        memcpy(r->hdr + r->hlen, p + off, take);
        r->hlen = (uint8_t)(r->hlen + take);
        off += take;
        if (r->hlen < r->hneed)
            break;
        int rc = r->hstage == H_BASE ? header_base(r) : header_ext(r);
        if (rc < 0)
            return rc;
    }
    return (ssize_t)n;
}

ssize_t rtmp_reader_feed(rtmp_reader *r, const uint8_t *in, size_t len)
{
    if (r->error)
        return r->error;
    r->fed += len;
    ssize_t rc = parse(r, in, len);
    if (rc < 0) {
        r->error = (int)rc;
        return rc;
    }
    return (ssize_t)len;
}

/* ---- writer ---- */

/* What the peer's reader will believe about one chunk stream. */
typedef struct wstream {
    uint32_t csid;
    uint32_t timestamp;
    uint32_t delta;      /* as the reader infers it (after fmt 0: the timestamp) */
    uint32_t length;
    uint32_t stream_id;
    uint8_t  type;
    uint8_t  ext;        /* last message-starting header had an extended timestamp */
    uint8_t  delta_ok;   /* delta came from a fmt 1/2 header: fmt 3 may repeat it */
    uint8_t  reset;      /* readers may disagree about this stream
                            (rtmp_writer_reset, a fmt 0-2 header inside a
                            message): the next automatic header is fmt 0 */
} wstream;

struct rtmp_writer {
    uint32_t chunk_size;
    int      ext_fmt3;   /* fmt 3 chunks repeat the extended timestamp */
    wstream *st;
    uint32_t n, cap, last;
};

rtmp_writer *rtmp_writer_new(void)
{
    rtmp_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->chunk_size = RTMP_DEFAULT_CHUNK_SIZE;
        w->ext_fmt3 = 1;
    }
    return w;
}

void rtmp_writer_free(rtmp_writer *w)
{
    if (!w)
        return;
    free(w->st);
    free(w);
}

size_t rtmp_writer_memory(const rtmp_writer *w)
{
    return sizeof *w + (size_t)w->cap * sizeof *w->st;
}

int rtmp_writer_set_chunk_size(rtmp_writer *w, uint32_t size)
{
    if (size < 1 || size > CHUNK_SIZE_MAX)
        return RTMP_ERR_CHUNK_SIZE;
    w->chunk_size = size;
    return 0;
}

uint32_t rtmp_writer_chunk_size(const rtmp_writer *w)
{
    return w->chunk_size;
}

void rtmp_writer_set_ext_ts_fmt3(rtmp_writer *w, int on)
{
    w->ext_fmt3 = on != 0;
}

int rtmp_writer_ext_ts_fmt3(const rtmp_writer *w)
{
    return w->ext_fmt3;
}

/* The state of csid, created blank (*fresh = 1) when unknown; NULL on OOM. */
static wstream *wstream_get(rtmp_writer *w, uint32_t csid, int *fresh)
{
    *fresh = 0;
    if (w->last < w->n && w->st[w->last].csid == csid)
        return &w->st[w->last];
    for (uint32_t i = 0; i < w->n; i++)
        if (w->st[i].csid == csid) {
            w->last = i;
            return &w->st[i];
        }
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 8;
        wstream *st = realloc(w->st, cap * sizeof *st);
        if (!st)
            return NULL;
        w->st = st;
        w->cap = cap;
    }
    wstream *s = &w->st[w->n];
    memset(s, 0, sizeof *s);
    s->csid = csid;
    w->last = w->n++;
    *fresh = 1;
    return s;
}

/* Append one message as chunks: first chunk of the given fmt carrying
 * tsv (timestamp or delta) in its timestamp field, extended when ext (for
 * fmt 3: the 4 bytes follow the basic header); fmt 3 continuations repeat
 * tsv in 4 bytes when cext. */
static int emit(rtmp_buf **out, uint32_t cs, unsigned fmt, const rtmp_msg_hdr *h,
                uint32_t tsv, int ext, int cext, const uint8_t *payload)
{
    size_t bl = basic_len(h->csid);
    size_t xl = ext ? 4 : 0, cxl = cext ? 4 : 0;
    size_t nchunks = h->length ? (h->length - 1) / cs + 1 : 1;
    size_t total = bl + msg_hdr_len[fmt] + xl + h->length + (nchunks - 1) * (bl + cxl);
    uint8_t *start = rtmp_buf_grow(out, total);
    if (!start)
        return RTMP_ERR_NOMEM;
    uint8_t *p = start + put_basic(start, fmt, h->csid);
    if (fmt <= 2) {
        rtmp_put_be24(p, ext ? EXT_TS : tsv);
        p += 3;
    }
    if (fmt <= 1) {
        rtmp_put_be24(p, h->length);
        p[3] = h->type;
        p += 4;
    }
    if (fmt == 0) {
        rtmp_put_le32(p, h->stream_id);
        p += 4;
    }
    if (ext) {
        rtmp_put_be32(p, tsv);
        p += 4;
    }
    uint32_t done = 0;
    for (;;) {
        uint32_t k = h->length - done < cs ? h->length - done : cs;
        if (k) {
            memcpy(p, payload + done, k);
            p += k;
            done += k;
        }
        if (done == h->length)
            break;
        p += put_basic(p, 3, h->csid);
        if (cext) {
            rtmp_put_be32(p, tsv);
            p += 4;
        }
    }
    assert((size_t)(p - start) == total);
    (*out)->len += total;
    return 0;
}

static void note_fmt0(wstream *s, const rtmp_msg_hdr *h)
{
    s->timestamp = h->timestamp;
    s->delta = h->timestamp;
    s->delta_ok = 0;
    s->ext = h->timestamp >= EXT_TS;
    s->length = h->length;
    s->type = h->type;
    s->stream_id = h->stream_id;
    s->reset = 0;
}

static int valid_hdr(const rtmp_msg_hdr *h, const uint8_t *payload)
{
    return h->csid >= RTMP_MIN_CSID && h->csid <= RTMP_MAX_CSID && (payload || h->length == 0);
}

/* The fmt a reader-compatible writer picks for h's first chunk on s. */
static unsigned pick_fmt(const wstream *s, const rtmp_msg_hdr *h, int fresh)
{
    if (fresh || s->reset || h->stream_id != s->stream_id || h->timestamp < s->timestamp)
        return 0;
    if (h->type != s->type || h->length != s->length)
        return 1;
    if (!s->delta_ok || h->timestamp - s->timestamp != s->delta)
        return 2;
    return 3;
}

/* What the first header of h in fmt says: the value of its timestamp
 * field (*tsv) and whether that is extended (*ext; force_ext writes the
 * extended form even for a small value).  For fmt 3 the value is the
 * delta the reader repeats and *ext whether the stream's last header was
 * extended (the 4 bytes the spec puts after a fmt 3 basic header). */
static void first_header(const wstream *s, const rtmp_msg_hdr *h, unsigned fmt, int force_ext,
                         uint32_t *tsv, int *ext)
{
    switch (fmt) {
    case 0:
        *tsv = h->timestamp;
        break;
    case 1:
    case 2:
        *tsv = h->timestamp - s->timestamp;
        break;
    default:
        *tsv = s->delta;
        *ext = s->ext;
        return;
    }
    *ext = force_ext || *tsv >= EXT_TS;
}

/* Record on s what a reader infers from h's first header in fmt. */
static void commit(wstream *s, const rtmp_msg_hdr *h, unsigned fmt, uint32_t tsv, int ext)
{
    switch (fmt) {
    case 0:
        note_fmt0(s, h);
        s->ext = (uint8_t)ext;
        break;
    case 1:
    case 2:
        s->timestamp = h->timestamp;
        s->delta = tsv;
        s->delta_ok = 1;
        s->ext = (uint8_t)ext;
        if (fmt == 1) {
            s->length = h->length;
            s->type = h->type;
        }
        break;
    default:
        /* the reader repeats the previous delta whatever h says */
        s->timestamp += s->delta;
        break;
    }
}

int rtmp_writer_write(rtmp_writer *w, const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_buf **out)
{
    if (!valid_hdr(h, payload) || (h->fmt > 3 && h->fmt != RTMP_FMT_AUTO))
        return RTMP_ERR_INVAL;
    int fresh;
    wstream *s = wstream_get(w, h->csid, &fresh);
    if (!s)
        return RTMP_ERR_NOMEM;
    unsigned fmt = h->fmt == RTMP_FMT_AUTO ? pick_fmt(s, h, fresh) : h->fmt;
    uint32_t tsv;
    int ext;
    first_header(s, h, fmt, 0, &tsv, &ext);
    int cext = ext && w->ext_fmt3;
    if (fmt == 3)
        ext = cext;
    int rc = emit(out, w->chunk_size, fmt, h, tsv, ext, cext, payload);
    if (rc == 0)
        commit(s, h, fmt, tsv, ext);
    else if (fresh)
        w->n--;
    return rc;
}

int rtmp_chunk_write_fmt0(uint32_t chunk_size, const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_buf **out)
{
    if (chunk_size < 1 || chunk_size > CHUNK_SIZE_MAX || !valid_hdr(h, payload))
        return RTMP_ERR_INVAL;
    int ext = h->timestamp >= EXT_TS;
    return emit(out, chunk_size, 0, h, h->timestamp, ext, ext, payload);
}

uint32_t rtmp_chunk_default_csid(uint8_t type)
{
    switch (type) {
    case RTMP_MSG_SET_CHUNK_SIZE: case RTMP_MSG_ABORT: case RTMP_MSG_ACK:
    case RTMP_MSG_USER_CONTROL: case RTMP_MSG_WINDOW_ACK_SIZE: case RTMP_MSG_SET_PEER_BANDWIDTH:
        return 2;
    case RTMP_MSG_AUDIO: return 6;
    case RTMP_MSG_VIDEO: case RTMP_MSG_AGGREGATE: return 7;
    case RTMP_MSG_AMF0_DATA: case RTMP_MSG_AMF3_DATA: return 5;
    default: return 3;
    }
}

int rtmp_chunk_gather_fmt0(uint32_t chunk_size, const rtmp_msg_hdr *h, const rtmp_buf *buf,
                           size_t from, uint8_t *out, size_t n)
{
    if (chunk_size < 1 || from > h->length || n > h->length - from)
        return RTMP_ERR_INVAL;
    size_t basic = h->csid < 64 ? 1 : h->csid < 320 ? 2 : 3;
    size_t ext = h->timestamp >= EXT_TS ? 4 : 0;
    size_t first = basic + 11 + ext, cont = basic + ext;
    while (n > 0) {
        size_t chunk = from / chunk_size, in = from % chunk_size;
        size_t off = first + chunk * (chunk_size + cont) + in;
        size_t take = chunk_size - in < n ? chunk_size - in : n;
        if (off > buf->len || take > buf->len - off)
            return RTMP_ERR_INVAL;
        memcpy(out, buf->data + off, take);
        out += take;
        from += take;
        n -= take;
    }
    return 0;
}

int rtmp_writer_note(rtmp_writer *w, const rtmp_msg_hdr *h)
{
    if (h->csid < RTMP_MIN_CSID || h->csid > RTMP_MAX_CSID)
        return RTMP_ERR_INVAL;
    int fresh;
    wstream *s = wstream_get(w, h->csid, &fresh);
    if (!s)
        return RTMP_ERR_NOMEM;
    note_fmt0(s, h);
    return 0;
}

void rtmp_writer_reset(rtmp_writer *w, uint32_t csid)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->st[i].csid == csid)
            w->st[i].reset = 1;
}

/* ---- one message, chunk by chunk ---- */

int rtmp_writer_begin(rtmp_writer *w, const rtmp_msg_hdr *h, rtmp_wmsg *m)
{
    (void)w; /* the writer's state changes with the first chunk, not here */
    if (h->csid < RTMP_MIN_CSID || h->csid > RTMP_MAX_CSID || h->length > 0xFFFFFF
        || (h->fmt > 3 && h->fmt != RTMP_FMT_AUTO))
        return RTMP_ERR_INVAL;
    memset(m, 0, sizeof *m);
    m->h = *h;
    return 0;
}

/* Write one chunk header into p (at least 18 bytes); returns its length.
 * fmt 0-2 carry the fields of m's message, their timestamp field being
 * tsv (extended when ext); fmt 3 carries tsv in 4 bytes when ext. */
static size_t put_chunk_header(uint8_t *p, unsigned fmt, const rtmp_msg_hdr *h, uint32_t tsv, int ext)
{
    uint8_t *q = p + put_basic(p, fmt, h->csid);
    if (fmt <= 2) {
        rtmp_put_be24(q, ext ? EXT_TS : tsv);
        q += 3;
    }
    if (fmt <= 1) {
        rtmp_put_be24(q, h->length);
        q[3] = h->type;
        q += 4;
    }
    if (fmt == 0) {
        rtmp_put_le32(q, h->stream_id);
        q += 4;
    }
    if (ext) {
        rtmp_put_be32(q, tsv);
        q += 4;
    }
    return (size_t)(q - p);
}

int rtmp_writer_chunk(rtmp_writer *w, rtmp_wmsg *m, const uint8_t *payload,
                      const rtmp_chunk_opts *o, rtmp_buf **out)
{
    const rtmp_msg_hdr *h = &m->h;
    if (m->started && m->sent == h->length)
        return RTMP_ERR_INVAL;          /* already complete */
    if ((o->fmt > 3 && o->fmt != RTMP_FMT_AUTO) || (!payload && h->length > m->sent))
        return RTMP_ERR_INVAL;
    uint32_t size = o->size ? o->size : w->chunk_size;
    uint32_t k = h->length - m->sent < size ? h->length - m->sent : size;
    uint8_t hdr[18];
    size_t hl;
    int fresh = 0;
    wstream *s = wstream_get(w, h->csid, &fresh);
    if (!s)
        return RTMP_ERR_NOMEM;
    unsigned fmt;
    uint32_t tsv;
    int ext;
    if (!m->started) {
        fmt = o->fmt != RTMP_FMT_AUTO ? o->fmt : h->fmt != RTMP_FMT_AUTO ? h->fmt : pick_fmt(s, h, fresh);
        first_header(s, h, fmt, o->ext > 0 && fmt <= 2, &tsv, &ext);
        int hdr_ext = ext;             /* what the stream's state records */
        if (fmt == 3)
            ext = o->ext >= 0 ? o->ext : ext && w->ext_fmt3;
        hl = put_chunk_header(hdr, fmt, h, tsv, ext);
        uint8_t *p = rtmp_buf_grow(out, hl + k);
        if (!p) {
            if (fresh)
                w->n--;
            return RTMP_ERR_NOMEM;
        }
        m->tsv = tsv;
        m->ext = (uint8_t)hdr_ext;
        commit(s, h, fmt, tsv, hdr_ext);
        m->delta = s->delta;
        m->started = 1;
        memcpy(p, hdr, hl);
        if (k)
            memcpy(p + hl, payload + m->sent, k);
    } else {
        fmt = o->fmt != RTMP_FMT_AUTO ? o->fmt : 3;
        switch (fmt) {
        case 0:
            tsv = h->timestamp;
            ext = o->ext > 0 || tsv >= EXT_TS;
            break;
        case 1:
        case 2:
            tsv = m->delta;
            ext = o->ext > 0 || tsv >= EXT_TS;
            break;
        default:
            tsv = m->tsv;
            ext = o->ext >= 0 ? o->ext : m->ext && w->ext_fmt3;
            break;
        }
        hl = put_chunk_header(hdr, fmt, h, tsv, ext);
        uint8_t *p = rtmp_buf_grow(out, hl + k);
        if (!p)
            return RTMP_ERR_NOMEM;
        if (fmt != 3)
            s->reset = 1;   /* readers differ on a header inside a message */
        memcpy(p, hdr, hl);
        memcpy(p + hl, payload + m->sent, k);
    }
    (*out)->len += hl + k;
    m->sent += k;
    return (int)k;
}
