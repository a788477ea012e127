/*
 * micro.c: micro-benchmarks of the core's chunk layer.
 *
 * For chunk sizes 128, 4096 and 60000:
 *   - reader: a realistic publishing stream (30 fps video of 2-60 KB
 *     frames, a keyframe every 2 s, interleaved with 43 AAC frames/s of
 *     about 400 bytes; video on csid 6, audio on csid 7, stream 1, headers
 *     compressed by our writer as an encoder would: fmt 0, then 1, 2, 3)
 *     fed to rtmp_reader_feed in 64 KiB pieces, as core/net.c reads;
 *   - memcpy: the same bytes copied in the same 64 KiB pieces into a
 *     64 KiB buffer (what read(2) into the network buffer costs at best);
 *   - allocations per message made by the reader (malloc, realloc and
 *     calloc counted through -Wl,--wrap);
 *   - writer: rtmp_chunk_write_fmt0 of the same messages into a fresh
 *     buffer each, as group:send does once per distinct chunk size.
 * Plus a "small commands" row: 40-byte FCPublish commands in single fmt 0
 * chunks through the bare reader and through a whole server session.
 *
 * Output: a table on stderr, one JSON object on stdout.  Each figure is
 * the best of REPS repetitions (CLOCK_MONOTONIC).  MB = 10^6 bytes; the
 * reader and memcpy count input bytes, the writer the bytes it produces.
 *
 *   micro               everything
 *   micro --small       only the small-commands row (bench/lua_call.lua)
 *   micro --reader CS   only the reader at chunk size CS, for 10 s (to run
 *                       under perf record)
 *
 * Built by `make bench-build` (build/bench/micro), or by hand:
 *   cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -I core bench/micro.c \
 *      core/{buf,chunk,handshake,amf0,control,session,error,log}.c \
 *      -Wl,--wrap=malloc,--wrap=realloc,--wrap=calloc,--wrap=free \
 *      -lcrypto -lm -o build/bench/micro
 */
#include "amf0.h"
#include "buf.h"
#include "chunk.h"
#include "error.h"
#include "handshake.h"
#include "session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_SIZE     (64 * 1024)       /* what core/net.c reads at once */
#define STREAM_TARGET (32u << 20)       /* bytes of chunked stream built */
#define RUN_TARGET    (256u << 20)      /* bytes processed per repetition */
#define REPS          15
#define VIDEO_CSID    6
#define AUDIO_CSID    7
#define MEDIA_STREAM  1
#define POOL_SIZE     65536             /* payload bytes are taken from here */
#define MAX_FRAME     60000
#define SMALL_COUNT   200000
#define SMALL_PASSES  5

/* ---- allocation counting (link with -Wl,--wrap=malloc,...) ---- */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t k, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_calloc(size_t k, size_t n);
void __wrap_free(void *p);

static int counting;
static unsigned long n_allocs;

void *__wrap_malloc(size_t n)
{
    n_allocs += (unsigned long)counting;
    return __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    n_allocs += (unsigned long)counting;
    return __real_realloc(p, n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    n_allocs += (unsigned long)counting;
    return __real_calloc(k, n);
}

/* Not counted: frees follow allocations. */
void __wrap_free(void *p)
{
    __real_free(p);
}

static void count_start(void)
{
    n_allocs = 0;
    counting = 1;
}

static unsigned long count_stop(void)
{
    counting = 0;
    return n_allocs;
}

/* ---- helpers ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

/* xorshift64*: deterministic, so every run measures the same stream. */
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Du) >> 32);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "micro: %s: %s\n", what, rc < 0 ? rtmp_strerror(rc) : "failed");
    exit(1);
}

static void barrier(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static uint8_t pool[POOL_SIZE];

/* ---- the media stream ---- */

typedef struct media {
    rtmp_msg_hdr *hdrs;      /* in send order; payload is always pool */
    size_t        n;
    uint64_t      payload_bytes;
} media;

/* Headers of a publishing stream whose payloads total about `bytes`:
 * video at 30 fps (keyframe every 60 frames, 40-60 KB; other frames 2-20
 * KB), AAC at 44.1 kHz / 1024 samples (43 frames/s, 370-430 bytes),
 * merged by timestamp. */
static void media_build(media *m, uint64_t bytes)
{
    size_t cap = 1024;
    m->hdrs = malloc(cap * sizeof *m->hdrs);
    m->n = 0;
    m->payload_bytes = 0;
    uint64_t vi = 0, ai = 0;
    while (m->payload_bytes < bytes) {
        uint32_t vts = (uint32_t)(vi * 1000 / 30);
        uint32_t ats = (uint32_t)(ai * 1024 * 1000 / 44100);
        rtmp_msg_hdr h = { .stream_id = MEDIA_STREAM, .fmt = RTMP_FMT_AUTO };
        if (ats <= vts) {
            h.csid = AUDIO_CSID;
            h.type = RTMP_MSG_AUDIO;
            h.timestamp = ats;
            h.length = 370 + rnd() % 61;
            ai++;
        } else {
            h.csid = VIDEO_CSID;
            h.type = RTMP_MSG_VIDEO;
            h.timestamp = vts;
            h.length = vi % 60 == 0 ? 40000 + rnd() % (MAX_FRAME - 40000 + 1) : 2000 + rnd() % 18001;
            vi++;
        }
        if (m->n == cap) {
            cap *= 2;
            m->hdrs = realloc(m->hdrs, cap * sizeof *m->hdrs);
        }
        if (!m->hdrs)
            die("media headers", RTMP_ERR_NOMEM);
        m->hdrs[m->n++] = h;
        m->payload_bytes += h.length;
    }
}

/* The stream as our writer chunks it at chunk size cs. */
static rtmp_buf *media_chunk(const media *m, uint32_t cs, unsigned fmt_count[4])
{
    rtmp_writer *w = rtmp_writer_new();
    rtmp_buf *out = rtmp_buf_new(m->payload_bytes + m->payload_bytes / 8 + 4096);
    if (!w || !out)
        die("writer", RTMP_ERR_NOMEM);
    int rc = rtmp_writer_set_chunk_size(w, cs);
    if (rc < 0)
        die("writer chunk size", rc);
    for (size_t i = 0; i < m->n; i++) {
        size_t at = out->len;
        if ((rc = rtmp_writer_write(w, &m->hdrs[i], pool, &out)) < 0)
            die("writer", rc);
        fmt_count[out->data[at] >> 6]++;
    }
    rtmp_writer_free(w);
    return out;
}

/* ---- reader runs ---- */

typedef struct sink {
    uint64_t       msgs, bytes;
    uintptr_t      mix;          /* payload pointers, so the callback has
                                    an effect (it does not read the payload:
                                    the reader's cost only) */
    const media   *check;        /* when set: compare every header and payload */
    size_t         next;
    int            bad;
} sink;

static int on_msg(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    sink *s = ud;
    s->msgs++;
    s->bytes += h->length;
    s->mix += (uintptr_t)payload;
    if (s->check) {
        const rtmp_msg_hdr *e = &s->check->hdrs[s->next++ % s->check->n];
        if (h->csid != e->csid || h->type != e->type || h->length != e->length
            || h->timestamp != e->timestamp || h->stream_id != e->stream_id
            || memcmp(payload, pool, h->length) != 0)
            s->bad++;
    }
    return 0;
}

/* Feed buf to r in READ_SIZE pieces, passes times. */
static void feed_passes(rtmp_reader *r, const rtmp_buf *buf, unsigned passes)
{
    for (unsigned p = 0; p < passes; p++)
        for (size_t off = 0; off < buf->len; off += READ_SIZE) {
            size_t n = buf->len - off < READ_SIZE ? buf->len - off : READ_SIZE;
            ssize_t rc = rtmp_reader_feed(r, buf->data + off, n);
            if (rc < 0)
                die("reader", (int)rc);
        }
}

static rtmp_reader *reader_new(uint32_t cs, sink *s)
{
    rtmp_reader *r = rtmp_reader_new(NULL, on_msg, s);
    if (!r)
        die("reader", RTMP_ERR_NOMEM);
    int rc = rtmp_reader_set_chunk_size(r, cs);
    if (rc < 0)
        die("reader chunk size", rc);
    return r;
}

typedef struct result {
    double   best;          /* seconds, best repetition */
    double   memcpy_best;   /* seconds, best memcpy repetition */
    uint64_t msgs;          /* per repetition */
    double   allocs_per_msg;
} result;

static uint8_t rbuf[READ_SIZE];

/* Copy buf in READ_SIZE pieces into one READ_SIZE buffer, passes times:
 * the floor, what read(2) into the network buffer costs at best. */
static double memcpy_passes(const rtmp_buf *buf, unsigned passes)
{
    double t0 = now();
    for (unsigned p = 0; p < passes; p++)
        for (size_t off = 0; off < buf->len; off += READ_SIZE) {
            size_t n = buf->len - off < READ_SIZE ? buf->len - off : READ_SIZE;
            memcpy(rbuf, buf->data + off, n);
            barrier(rbuf);
        }
    return now() - t0;
}

/* The reader over `passes` passes of buf, best of REPS, each repetition
 * followed by the memcpy of the same bytes (interleaved, so both see the
 * same machine load).  One reader for all repetitions, warmed up by a
 * first pass (checking every message when check is set), so allocations
 * are counted in steady state. */
static result bench_reader(const rtmp_buf *buf, uint32_t cs, unsigned passes, const media *check)
{
    sink s = { .check = check };
    rtmp_reader *r = reader_new(cs, &s);
    feed_passes(r, buf, 1);
    if (check && (s.bad || s.msgs != check->n))
        die("reader delivered wrong messages", 0);
    s.check = NULL;
    result res = { .best = 1e9, .memcpy_best = 1e9 };
    for (int rep = 0; rep < REPS; rep++) {
        s.msgs = s.bytes = 0;
        count_start();
        double t0 = now();
        feed_passes(r, buf, passes);
        double t = now() - t0;
        unsigned long allocs = count_stop();
        if (t < res.best)
            res.best = t;
        res.msgs = s.msgs;
        res.allocs_per_msg = s.msgs ? (double)allocs / (double)s.msgs : 0;
        if ((t = memcpy_passes(buf, passes)) < res.memcpy_best)
            res.memcpy_best = t;
    }
    barrier(&s.mix);
    rtmp_reader_free(r);
    return res;
}

/* rtmp_chunk_write_fmt0 of every message into a new buffer, released at
 * once: what fan-out pays per message and distinct chunk size. */
static result bench_writer(const media *m, uint32_t cs, unsigned passes, uint64_t *out_bytes)
{
    result res = { .best = 1e9 };
    for (int rep = 0; rep < REPS; rep++) {
        uint64_t bytes = 0;
        count_start();
        double t0 = now();
        for (unsigned p = 0; p < passes; p++)
            for (size_t i = 0; i < m->n; i++) {
                rtmp_buf *out = NULL;
                int rc = rtmp_chunk_write_fmt0(cs, &m->hdrs[i], pool, &out);
                if (rc < 0)
                    die("rtmp_chunk_write_fmt0", rc);
                bytes += out->len;
                barrier(out->data);
                rtmp_buf_unref(out);
            }
        double t = now() - t0;
        unsigned long allocs = count_stop();
        if (t < res.best)
            res.best = t;
        res.msgs = (uint64_t)m->n * passes;
        res.allocs_per_msg = (double)allocs / (double)res.msgs;
        *out_bytes = bytes;
    }
    return res;
}

typedef struct row {
    uint32_t chunk_size;
    double   reader_mb_s, memcpy_mb_s, ratio, allocs_per_msg, writer_mb_s, writer_allocs_per_msg;
    double   reader_ns_per_msg, writer_ns_per_msg;
    unsigned fmt_count[4];
} row;

static row bench_chunk_size(const media *m, uint32_t cs)
{
    row rw = { .chunk_size = cs };
    rtmp_buf *buf = media_chunk(m, cs, rw.fmt_count);
    unsigned passes = (unsigned)((RUN_TARGET + buf->len - 1) / buf->len);
    double bytes = (double)buf->len * passes;

    result rd = bench_reader(buf, cs, passes, m);
    uint64_t wbytes = 0;
    result wr = bench_writer(m, cs, passes, &wbytes);

    rw.reader_mb_s = bytes / rd.best / 1e6;
    rw.memcpy_mb_s = bytes / rd.memcpy_best / 1e6;
    rw.ratio = rw.reader_mb_s / rw.memcpy_mb_s;
    rw.allocs_per_msg = rd.allocs_per_msg;
    rw.reader_ns_per_msg = rd.best / (double)rd.msgs * 1e9;
    rw.writer_mb_s = (double)wbytes / wr.best / 1e6;
    rw.writer_allocs_per_msg = wr.allocs_per_msg;
    rw.writer_ns_per_msg = wr.best / (double)wr.msgs * 1e9;
    rtmp_buf_unref(buf);
    return rw;
}

/* ---- small commands ---- */

typedef struct small_row {
    uint64_t msgs;              /* per repetition */
    size_t   msg_bytes;         /* one chunk on the wire */
    double   reader_us_per_msg, reader_allocs_per_msg;
    double   session_us_per_msg, session_allocs_per_msg;
    double   memcpy_us_per_msg;
} small_row;

/* SMALL_COUNT commands FCPublish(txn, null, "key") in single fmt 0 chunks
 * on csid 3, stream 0, as rtmp.amf0.encode("FCPublish", txn, rtmp.null,
 * "key") would encode them. */
static rtmp_buf *small_build(size_t *msg_bytes)
{
    rtmp_buf *all = NULL, *p = NULL;
    for (int i = 0; i < SMALL_COUNT; i++) {
        if (p)
            p->len = 0;
        int rc = rtmp_amf0_write_string(&p, "FCPublish", 9);
        if (rc == 0)
            rc = rtmp_amf0_write_number(&p, 5 + (i % 1000));
        if (rc == 0)
            rc = rtmp_amf0_write_null(&p);
        if (rc == 0)
            rc = rtmp_amf0_write_string(&p, "key", 3);
        if (rc < 0)
            die("amf0", rc);
        rtmp_msg_hdr h = { .csid = 3, .type = RTMP_MSG_AMF0_COMMAND, .length = (uint32_t)p->len,
                           .timestamp = 0, .stream_id = 0 };
        size_t before = all ? all->len : 0;
        if ((rc = rtmp_chunk_write_fmt0(RTMP_DEFAULT_CHUNK_SIZE, &h, p->data, &all)) < 0)
            die("rtmp_chunk_write_fmt0", rc);
        *msg_bytes = all->len - before;
    }
    rtmp_buf_unref(p);
    return all;
}

typedef struct sess_sink {
    uint64_t msgs;
    uint32_t mix;
} sess_sink;

static int sess_msg(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    sess_sink *s = ud;
    s->msgs++;
    s->mix += payload[0] + h->type + applied;
    return 0;
}

/* A server session past a plain handshake, fed by a plain client. */
static rtmp_session *server_session(sess_sink *ss)
{
    rtmp_session_config cfg;
    rtmp_session_config_default(&cfg, RTMP_ROLE_SERVER);
    static const rtmp_session_handler sh = { NULL, sess_msg };
    rtmp_session *s = rtmp_session_new(&cfg, &sh, ss);
    rtmp_handshake *hs = rtmp_handshake_new(RTMP_ROLE_CLIENT, RTMP_HS_FLAG_PLAIN);
    rtmp_buf *c = NULL;
    if (!s || !hs)
        die("session", RTMP_ERR_NOMEM);
    int rc = rtmp_session_start(s);
    if (rc == 0)
        rc = rtmp_handshake_start(hs, &c);
    if (rc < 0)
        die("handshake start", rc);
    ssize_t n = rtmp_session_feed(s, c->data, c->len);
    if (n < 0)
        die("session feed C0C1", (int)n);
    /* the server's S0S1S2, as one string */
    rtmp_outq *q = rtmp_session_output(s);
    rtmp_buf *srv = NULL;
    struct iovec iov[16];
    while (q->bytes) {
        int k = rtmp_outq_iov(q, iov, 16);
        size_t total = 0;
        for (int i = 0; i < k; i++) {
            if ((rc = rtmp_buf_append(&srv, iov[i].iov_base, iov[i].iov_len)) < 0)
                die("append", rc);
            total += iov[i].iov_len;
        }
        rtmp_outq_consume(q, total);
    }
    c->len = 0;
    if (!srv || (n = rtmp_handshake_feed(hs, srv->data, srv->len, &c)) < 0 || !rtmp_handshake_done(hs))
        die("client handshake", n < 0 ? (int)n : 0);
    if ((n = rtmp_session_feed(s, c->data, c->len)) < 0 || !rtmp_session_ready(s))
        die("session feed C2", n < 0 ? (int)n : 0);
    rtmp_buf_unref(srv);
    rtmp_buf_unref(c);
    rtmp_handshake_free(hs);
    return s;
}

static small_row bench_small(void)
{
    small_row sr = { 0 };
    rtmp_buf *buf = small_build(&sr.msg_bytes);
    result rd = bench_reader(buf, RTMP_DEFAULT_CHUNK_SIZE, SMALL_PASSES, NULL);
    if (rd.msgs != (uint64_t)SMALL_COUNT * SMALL_PASSES)
        die("small commands: wrong message count", 0);
    sr.msgs = rd.msgs;
    sr.reader_allocs_per_msg = rd.allocs_per_msg;

    double best_s = 1e9;
    sess_sink ss = { 0 };
    rtmp_session *sess = server_session(&ss);
    for (int rep = 0; rep < REPS + 1; rep++) {   /* the first is a warm-up */
        ss.msgs = 0;
        count_start();
        double t0 = now();
        for (unsigned p = 0; p < SMALL_PASSES; p++)
            for (size_t off = 0; off < buf->len; off += READ_SIZE) {
                size_t n = buf->len - off < READ_SIZE ? buf->len - off : READ_SIZE;
                ssize_t rc = rtmp_session_feed(sess, buf->data + off, n);
                if (rc < 0)
                    die("session feed", (int)rc);
            }
        double t = now() - t0;
        unsigned long allocs = count_stop();
        if (ss.msgs != sr.msgs)
            die("session: wrong message count", 0);
        /* what it queued meanwhile (acknowledgements) goes unsent */
        rtmp_outq *q = rtmp_session_output(sess);
        rtmp_outq_consume(q, q->bytes);
        if (rep == 0)
            continue;
        if (t < best_s)
            best_s = t;
        sr.session_allocs_per_msg = (double)allocs / (double)ss.msgs;
    }
    rtmp_session_free(sess);

    barrier(&ss.mix);

    sr.reader_us_per_msg = rd.best / (double)sr.msgs * 1e6;
    sr.session_us_per_msg = best_s / (double)sr.msgs * 1e6;
    sr.memcpy_us_per_msg = rd.memcpy_best / (double)sr.msgs * 1e6;
    rtmp_buf_unref(buf);
    return sr;
}

/* ---- main ---- */

static void print_small(const small_row *sr, int last)
{
    printf("  \"small_commands\": { \"messages\": %llu, \"msg_bytes\": %zu, "
           "\"c_reader_us_per_msg\": %.4f, \"c_reader_msgs_per_s\": %.0f, \"reader_allocs_per_msg\": %.3f, "
           "\"c_session_us_per_msg\": %.4f, \"session_allocs_per_msg\": %.3f, "
           "\"memcpy_us_per_msg\": %.4f }%s\n",
           (unsigned long long)sr->msgs, sr->msg_bytes, sr->reader_us_per_msg, 1.0 / sr->reader_us_per_msg * 1e6,
           sr->reader_allocs_per_msg, sr->session_us_per_msg, sr->session_allocs_per_msg, sr->memcpy_us_per_msg,
           last ? "" : ",");
}

static void table_small(const small_row *sr)
{
    fprintf(stderr, "\nsmall commands (%zu-byte FCPublish chunks, %llu per repetition, 64 KiB reads):\n"
                    "  reader   %.4f us/msg (%.2f M msgs/s), %.3f allocs/msg\n"
                    "  session  %.4f us/msg (server session, no callback work), %.3f allocs/msg\n"
                    "  memcpy   %.4f us/msg (the same bytes)\n",
            sr->msg_bytes, (unsigned long long)sr->msgs, sr->reader_us_per_msg, 1.0 / sr->reader_us_per_msg,
            sr->reader_allocs_per_msg, sr->session_us_per_msg, sr->session_allocs_per_msg, sr->memcpy_us_per_msg);
}

/* The reader alone at chunk size cs for about 10 s: a profiling target. */
static void profile_reader(uint32_t cs)
{
    media m;
    media_build(&m, STREAM_TARGET);
    unsigned fmt_count[4] = { 0 };
    rtmp_buf *buf = media_chunk(&m, cs, fmt_count);
    sink s = { 0 };
    rtmp_reader *r = reader_new(cs, &s);
    double t0 = now(), t;
    unsigned passes = 0;
    do {
        feed_passes(r, buf, 1);
        passes++;
    } while ((t = now() - t0) < 10);
    fprintf(stderr, "reader, chunk size %u: %.0f MB/s over %u passes\n", cs,
            (double)buf->len * passes / t / 1e6, passes);
    rtmp_reader_free(r);
    rtmp_buf_unref(buf);
    free(m.hdrs);
}

int main(int argc, char **argv)
{
    int small_only = argc == 2 && strcmp(argv[1], "--small") == 0;
    long profile_cs = argc == 3 && strcmp(argv[1], "--reader") == 0 ? strtol(argv[2], NULL, 10) : 0;
    if (argc > 1 && !small_only && (profile_cs < 1 || profile_cs > 0x7FFFFFFF)) {
        fprintf(stderr, "usage: micro [--small | --reader CHUNK_SIZE]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof pool; i++)
        pool[i] = (uint8_t)rnd();

    if (profile_cs) {
        profile_reader((uint32_t)profile_cs);
        return 0;
    }

    if (small_only) {
        small_row sr = bench_small();
        table_small(&sr);
        printf("{\n");
        print_small(&sr, 1);
        printf("}\n");
        return 0;
    }

    double t_start = now();
    media m;
    media_build(&m, STREAM_TARGET);
    fprintf(stderr, "stream: %zu messages, %.1f MB payload, %.1f s of media (~%.1f Mbit/s); "
                    "best of %d, %.0f MB per repetition, %d-byte reads\n",
            m.n, (double)m.payload_bytes / 1e6, m.hdrs[m.n - 1].timestamp / 1000.0,
            (double)m.payload_bytes * 8 / (m.hdrs[m.n - 1].timestamp / 1000.0) / 1e6, REPS,
            (double)RUN_TARGET / 1e6, READ_SIZE);
    fprintf(stderr, "%7s %12s %12s %6s %11s %12s %12s %12s %9s  %s\n", "chunk", "reader MB/s", "memcpy MB/s",
            "ratio", "allocs/msg", "reader ns/m", "writer MB/s", "writer ns/m", "w allocs", "first-chunk fmt 0/1/2/3");

    static const uint32_t sizes[] = { 128, 4096, 60000 };
    row rows[3];
    for (int i = 0; i < 3; i++) {
        row *rw = &rows[i];
        *rw = bench_chunk_size(&m, sizes[i]);
        fprintf(stderr, "%7u %12.0f %12.0f %6.3f %11.3f %12.1f %12.0f %12.1f %9.3f  %u/%u/%u/%u\n", rw->chunk_size,
                rw->reader_mb_s, rw->memcpy_mb_s, rw->ratio, rw->allocs_per_msg, rw->reader_ns_per_msg,
                rw->writer_mb_s, rw->writer_ns_per_msg, rw->writer_allocs_per_msg, rw->fmt_count[0], rw->fmt_count[1],
                rw->fmt_count[2], rw->fmt_count[3]);
    }
    small_row sr = bench_small();
    table_small(&sr);
    fprintf(stderr, "total %.1f s\n", now() - t_start);

    printf("{\n  \"chunk\": [\n");
    for (int i = 0; i < 3; i++)
        printf("    { \"chunk_size\": %u, \"reader_mb_s\": %.1f, \"memcpy_mb_s\": %.1f, \"ratio\": %.3f, "
               "\"allocs_per_msg\": %.3f, \"writer_mb_s\": %.1f, \"writer_allocs_per_msg\": %.3f, "
               "\"reader_ns_per_msg\": %.1f, \"writer_ns_per_msg\": %.1f }%s\n",
               rows[i].chunk_size, rows[i].reader_mb_s, rows[i].memcpy_mb_s, rows[i].ratio, rows[i].allocs_per_msg,
               rows[i].writer_mb_s, rows[i].writer_allocs_per_msg, rows[i].reader_ns_per_msg,
               rows[i].writer_ns_per_msg, i < 2 ? "," : "");
    printf("  ],\n");
    print_small(&sr, 1);
    printf("}\n");
    free(m.hdrs);
    return 0;
}
