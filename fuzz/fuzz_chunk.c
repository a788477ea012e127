/*
 * fuzz_chunk.c: the chunk reader, differentially.
 *
 * Input: byte 0 picks the reader's tolerances (bits 0-1 ext_ts_fmt3
 * mode, bit 2 accept_fresh_fmt, bit 3 a small max_message), bytes 1-4
 * seed the split sizes; the rest is the chunk stream.  The stream is fed
 * once whole and once in pieces of 1 .. 64 bytes (sometimes larger)
 * drawn from the seed.  Both readers apply Set Chunk Size and Abort from
 * inside the callback as the session does.  Checks:
 *  - both deliver the same messages (every header field and the payload)
 *    and stop with the same result;
 *  - rtmp_reader_buffered stays within what chunk.h promises;
 *  - every message read, written again by an rtmp_writer at a chunk size
 *    drawn from the seed (with chunk size changes sent as the reader saw
 *    them), reads back the same with a default reader.
 */
#include "fuzz.h"
#include "../core/chunk.h"
#include "../core/control.h"
#include "../core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct msg {
    rtmp_msg_hdr h;
    size_t off;           /* the payload: log.bytes + off */
} msg;

/* The messages a reader delivered, their payloads one after the other in
 * one buffer (a malloc per message took a fifth of the time under ASan). */
typedef struct log {
    msg *m;
    size_t n, cap;
    uint8_t *bytes;
    size_t blen, bcap;
    rtmp_reader *r;
    int apply;            /* apply Set Chunk Size / Abort */
} log;

static void log_free(log *l)
{
    free(l->m);
    free(l->bytes);
}

static const uint8_t *payload_of(const log *l, size_t i)
{
    return l->bytes ? l->bytes + l->m[i].off : (const uint8_t *)""; /* only empty payloads */
}

static int on_msg(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    log *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->m = realloc(l->m, l->cap * sizeof *l->m);
        if (!l->m)
            fuzz_fail("out of memory");
    }
    if (h->length > l->bcap - l->blen) {
        size_t want = l->blen + h->length;
        l->bcap = l->bcap ? l->bcap : 4096;
        while (l->bcap < want)
            l->bcap *= 2;
        l->bytes = realloc(l->bytes, l->bcap);
        if (!l->bytes)
            fuzz_fail("out of memory");
    }
    msg *m = &l->m[l->n++];
    m->h = *h;
    m->off = l->blen;
    if (h->length)
        memcpy(l->bytes + l->blen, payload, h->length);
    l->blen += h->length;
    if (l->apply && h->stream_id == 0 && (h->type == RTMP_MSG_SET_CHUNK_SIZE || h->type == RTMP_MSG_ABORT)) {
        rtmp_control c;
        if (rtmp_control_parse(h, payload, &c) == 0) {
            if (h->type == RTMP_MSG_SET_CHUNK_SIZE)
                rtmp_reader_set_chunk_size(l->r, c.value);  /* out of range: unchanged */
            else
                rtmp_reader_abort(l->r, c.value);
        }
    }
    return 0;
}

static void same_logs(const log *a, const log *b, const char *what)
{
    if (a->n != b->n)
        fuzz_fail("%s: %zu messages against %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const rtmp_msg_hdr *x = &a->m[i].h, *y = &b->m[i].h;
        if (x->csid != y->csid || x->timestamp != y->timestamp || x->length != y->length ||
            x->stream_id != y->stream_id || x->type != y->type)
            fuzz_fail("%s: message %zu: csid %u/%u ts %u/%u len %u/%u stream %u/%u type %u/%u", what, i,
                      x->csid, y->csid, x->timestamp, y->timestamp, x->length, y->length, x->stream_id,
                      y->stream_id, x->type, y->type);
        if (x->length && memcmp(payload_of(a, i), payload_of(b, i), x->length) != 0)
            fuzz_fail("%s: message %zu: payloads differ", what, i);
    }
}

static rtmp_reader *new_reader(const rtmp_reader_config *cfg, log *l)
{
    rtmp_reader *r = rtmp_reader_new(cfg, on_msg, l);
    if (!r)
        fuzz_fail("rtmp_reader_new: out of memory");
    l->r = r;
    l->apply = 1;
    return r;
}

/* Write every message of a again and read it back: the same messages. */
static void rewrite(const log *a, fuzz_rng *g)
{
    rtmp_writer *w = rtmp_writer_new();
    rtmp_buf *out = NULL;
    if (!w)
        fuzz_fail("rtmp_writer_new: out of memory");
    static const uint32_t sizes[] = { 1, 2, 7, 128, 4096, 0x7FFFFFFF };
    rtmp_writer_set_chunk_size(w, sizes[fuzz_rng_next(g) % 6]);
    for (size_t i = 0; i < a->n; i++) {
        rtmp_msg_hdr h = a->m[i].h;
        h.fmt = RTMP_FMT_AUTO;
        int rc = rtmp_writer_write(w, &h, payload_of(a, i), &out);
        if (rc < 0)
            fuzz_fail("rewrite: rtmp_writer_write: %s", rtmp_errname(rc));
    }
    log b = { 0 };
    rtmp_reader_config cfg;
    rtmp_reader_config_default(&cfg);
    rtmp_reader *r = rtmp_reader_new(&cfg, on_msg, &b);
    if (!r)
        fuzz_fail("rtmp_reader_new: out of memory");
    b.r = r;
    /* The reader must not act on the messages it reads back: the writer
     * did not change its own chunk size for them. */
    b.apply = 0;
    rtmp_reader_set_chunk_size(r, rtmp_writer_chunk_size(w));
    ssize_t n = out ? rtmp_reader_feed(r, out->data, out->len) : 0;
    if (getenv("FUZZ_DEBUG")) {
        for (size_t i = 0; i < a->n; i++)
            fprintf(stderr, "msg %zu: csid %u ts %u len %u type %u stream %u fmt %u\n", i, a->m[i].h.csid,
                    a->m[i].h.timestamp, a->m[i].h.length, a->m[i].h.type, a->m[i].h.stream_id, a->m[i].h.fmt);
        for (size_t i = 0; out && i < out->len; i++)
            fprintf(stderr, "%02x%s", out->data[i], i + 1 == out->len ? "\n" : " ");
    }
    if (out && n != (ssize_t)out->len)
        fuzz_fail("rewrite: reading back failed: %s", rtmp_errname((int)n));
    same_logs(a, &b, "rewrite");
    rtmp_reader_free(r);
    log_free(&b);
    rtmp_buf_unref(out);
    rtmp_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    rtmp_reader_config cfg;
    rtmp_reader_config_default(&cfg);
    cfg.ext_ts_fmt3 = data[0] & 3;
    if (cfg.ext_ts_fmt3 > RTMP_EXT_TS_NEVER)
        cfg.ext_ts_fmt3 = RTMP_EXT_TS_DETECT;
    cfg.accept_fresh_fmt = (data[0] >> 2) & 1;
    if (data[0] & 8)
        cfg.max_message = 300;
    fuzz_rng g;
    fuzz_rng_seed(&g, (uint64_t)data[1] | (uint64_t)data[2] << 8 | (uint64_t)data[3] << 16 |
                      (uint64_t)data[4] << 24);
    const uint8_t *in = data + 5;
    size_t len = size - 5;

    log whole = { 0 }, split = { 0 };
    rtmp_reader *rw = new_reader(&cfg, &whole);
    rtmp_reader *rs = new_reader(&cfg, &split);

    ssize_t rc_whole = rtmp_reader_feed(rw, in, len);
    if (rc_whole >= 0 && rc_whole != (ssize_t)len)
        fuzz_fail("feed consumed %zd of %zu", rc_whole, len);

    ssize_t rc_split = 0;
    size_t off = 0;
    while (off < len) {
        uint32_t x = fuzz_rng_next(&g);
        size_t piece = (x & 0xF00) == 0 ? (x >> 12) % 4096 + 1 : (x % 64) + 1;
        if (piece > len - off)
            piece = len - off;
        rc_split = rtmp_reader_feed(rs, in + off, piece);
        if (rc_split < 0)
            break;
        if (rc_split != (ssize_t)piece)
            fuzz_fail("feed consumed %zd of %zu", rc_split, piece);
        off += piece;
        /* Per partial message at most max(256, 2 * received); a spare of
         * 64 KiB is not counted. */
        size_t bound = (size_t)cfg.max_chunk_streams * 256 + 2 * off;
        if (rtmp_reader_buffered(rs) > bound)
            fuzz_fail("reader holds %zu bytes after %zu fed", rtmp_reader_buffered(rs), off);
    }
    if ((rc_whole < 0) != (rc_split < 0) || (rc_whole < 0 && rc_whole != rc_split))
        fuzz_fail("whole: %s, split: %s", rc_whole < 0 ? rtmp_errname((int)rc_whole) : "ok",
                  rc_split < 0 ? rtmp_errname((int)rc_split) : "ok");
    same_logs(&whole, &split, "whole against split");
    /* An error is sticky. */
    if (rc_whole < 0 && rtmp_reader_feed(rw, in, len ? 1 : 0) != rc_whole && len)
        fuzz_fail("error not sticky");

    rewrite(&whole, &g);

    rtmp_reader_free(rw);
    rtmp_reader_free(rs);
    log_free(&whole);
    log_free(&split);
    return 0;
}
