#include "buf.h"
#include "error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

rtmp_buf *rtmp_buf_new(size_t cap)
{
    rtmp_buf *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = 0;
    b->cap = cap;
    b->block = NULL;
    return b;
}

/* Carved buffers' headers start at this alignment within their block. */
#define CARVE_ALIGN (_Alignof(rtmp_buf))
/* References a carver takes on its block at once. */
#define CARVE_BATCH 64

int rtmp_carver_start(rtmp_carver *c, size_t cap)
{
    rtmp_carver_end(c);
    rtmp_buf *b = rtmp_buf_new(cap);
    if (!b)
        return RTMP_ERR_NOMEM;
    *c = (rtmp_carver){ b, 0, cap, 0 };
    return 0;
}

size_t rtmp_carver_room(const rtmp_carver *c)
{
    size_t off = (c->off + CARVE_ALIGN - 1) & ~(size_t)(CARVE_ALIGN - 1);
    return c->block && off + sizeof(rtmp_buf) <= c->cap ? c->cap - off - sizeof(rtmp_buf) : 0;
}

rtmp_buf *rtmp_carver_cut(rtmp_carver *c, size_t min)
{
    size_t room = rtmp_carver_room(c);
    if (!c->block || room < min)
        return NULL;
    if (c->spare == 0) {
        c->block->refs += CARVE_BATCH;
        c->spare = CARVE_BATCH;
    }
    c->spare--;
    rtmp_buf *b = (rtmp_buf *)(void *)(c->block->data + c->cap - room - sizeof(rtmp_buf));
    b->refs = 1;
    b->len = 0;
    b->cap = room;
    b->block = c->block;
    c->off = c->cap;
    return b;
}

void rtmp_carver_trim(rtmp_carver *c, rtmp_buf *b)
{
    assert(b->block == c->block && b->data + b->cap == c->block->data + c->cap && c->off == c->cap);
    c->off = (size_t)(b->data - c->block->data) + b->len;
    b->cap = b->len;
}

int rtmp_carver_unwind(rtmp_carver *c, rtmp_buf *b)
{
    if (!c->block || b->block != c->block || b->refs != 1
        || (size_t)(b->data - c->block->data) + b->cap != c->off)
        return 0;
    c->off = (size_t)((uint8_t *)b - c->block->data);
    c->spare++; /* b's reference on the block goes back to the batch */
    return 1;
}

void rtmp_carver_end(rtmp_carver *c)
{
    if (c->block) {
        c->block->refs -= c->spare;
        rtmp_buf_unref(c->block);
    }
    *c = (rtmp_carver){ 0 };
}

rtmp_buf *rtmp_buf_ref(rtmp_buf *b)
{
    if (b)
        b->refs++;
    return b;
}

void rtmp_buf_unref(rtmp_buf *b)
{
    if (b && --b->refs == 0) {
        if (b->block)
            rtmp_buf_unref(b->block);
        else
            free(b);
    }
}

rtmp_buf *rtmp_buf_resize(rtmp_buf *b, size_t cap)
{
    if (!b)
        return rtmp_buf_new(cap);
    assert(b->refs == 1 && !b->block);
    rtmp_buf *nb = realloc(b, sizeof *b + cap);
    if (!nb)
        return NULL;
    nb->cap = cap;
    if (nb->len > cap)
        nb->len = cap;
    return nb;
}

uint8_t *rtmp_buf_grow(rtmp_buf **bp, size_t extra)
{
    rtmp_buf *b = *bp;
    if (!b) {
        b = rtmp_buf_new(extra < 256 ? 256 : extra);
        if (!b)
            return NULL;
        *bp = b;
        return b->data;
    }
    assert(b->refs == 1);
    if (b->cap - b->len < extra) {
        if (b->block)
            return NULL; /* carved: it cannot move */
        size_t cap = b->cap * 2;
        if (cap < b->len + extra)
            cap = b->len + extra;
        rtmp_buf *nb = rtmp_buf_resize(b, cap);
        if (!nb)
            return NULL;
        *bp = b = nb;
    }
    return b->data + b->len;
}

int rtmp_buf_append(rtmp_buf **bp, const void *p, size_t n)
{
    uint8_t *w = rtmp_buf_grow(bp, n);
    if (!w)
        return RTMP_ERR_NOMEM;
    if (n)
        memcpy(w, p, n);
    (*bp)->len += n;
    return 0;
}

/* Segments a queue starts with, and keeps when it empties: a burst (a
 * late joiner's cache, one segment per message) grows the array, and the
 * array goes once the burst is written, so an idle or steady player does
 * not keep it. */
#define OUTQ_SEGS 8

int rtmp_outq_push(rtmp_outq *q, rtmp_buf *buf, size_t off, size_t len)
{
    if (len == 0)
        return 0;
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : OUTQ_SEGS;
        rtmp_seg *s = malloc(cap * sizeof *s);
        if (!s)
            return RTMP_ERR_NOMEM;
        for (size_t i = 0; i < q->count; i++)
            s[i] = q->segs[(q->head + i) % q->cap];
        free(q->segs);
        q->segs = s;
        q->cap = cap;
        q->head = 0;
    }
    rtmp_seg *s = &q->segs[(q->head + q->count) % q->cap];
    s->buf = rtmp_buf_ref(buf);
    s->off = off;
    s->len = len;
    q->count++;
    q->bytes += len;
    return 0;
}

int rtmp_outq_iov(const rtmp_outq *q, struct iovec *iov, int max)
{
    int n = 0;
    for (size_t i = 0; i < q->count && n < max; i++, n++) {
        const rtmp_seg *s = &q->segs[(q->head + i) % q->cap];
        iov[n].iov_base = s->buf->data + s->off;
        iov[n].iov_len = s->len;
    }
    return n;
}

void rtmp_outq_consume(rtmp_outq *q, size_t n)
{
    assert(n <= q->bytes);
    q->bytes -= n;
    while (n > 0) {
        rtmp_seg *s = &q->segs[q->head];
        if (n < s->len) {
            s->off += n;
            s->len -= n;
            return;
        }
        n -= s->len;
        rtmp_buf_unref(s->buf);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    if (q->count == 0 && q->cap > OUTQ_SEGS) { /* a burst went out */
        free(q->segs);
        q->segs = NULL;
        q->head = q->cap = 0;
    }
}

void rtmp_outq_clear(rtmp_outq *q)
{
    while (q->count > 0) {
        rtmp_buf_unref(q->segs[q->head].buf);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->segs);
    *q = (rtmp_outq){0};
}
