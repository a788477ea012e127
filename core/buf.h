/*
 * buf.h: refcounted byte buffers and the output queue built from them.
 *
 * A buffer is growable while it has one owner (refs == 1); once shared
 * (one chunked media message queued to many players) it is read-only.
 *
 * A buffer may be carved out of a larger one, its block (rtmp_carver):
 * header and bytes then lie inside the block, which stays allocated while
 * any buffer carved from it lives.  Many small buffers of one owner (a
 * group's chunked messages) so cost one allocation per block, not one
 * each.
 */
#ifndef RTMP_BUF_H
#define RTMP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct rtmp_buf {
    uint32_t refs;
    size_t   len;   /* bytes used, data[0 .. len) */
    size_t   cap;   /* bytes allocated for data */
    struct rtmp_buf *block; /* carved: the buffer this one lies in (holding a
                               reference on it); NULL: allocated on its own */
    uint8_t  data[];
} rtmp_buf;

/* New buffer with refs = 1, len = 0 and room for cap bytes; NULL on OOM. */
rtmp_buf *rtmp_buf_new(size_t cap);

/* Take one more reference; returns b.  b may be NULL. */
rtmp_buf *rtmp_buf_ref(rtmp_buf *b);

/* Drop one reference, freeing at zero (a carved buffer: dropping its
 * reference on its block).  b may be NULL. */
void rtmp_buf_unref(rtmp_buf *b);

/* Ensure room for extra more bytes in *bp (creating it when *bp is NULL)
 * and return a pointer to data + len, where the caller writes and then
 * adds to len.  *bp must have refs == 1.  NULL on OOM (*bp unchanged);
 * a carved buffer never moves: NULL when its room is short. */
uint8_t *rtmp_buf_grow(rtmp_buf **bp, size_t extra);

/*
 * Carving: the owner of a block cuts buffers out of it one after another.
 * The cursor is the carver's, and the references the buffers hold on the
 * block are taken ahead in batches, so cutting a buffer touches only the
 * memory it hands out, not the block's header (with many owners, each
 * block's header is mostly out of the cache).  Invariant: block->refs
 * counts the carver's own reference, spare more taken ahead, and one per
 * carved buffer alive.
 */
typedef struct rtmp_carver {
    rtmp_buf *block;   /* NULL: none */
    size_t    off;     /* where the next buffer's header goes in block->data */
    size_t    cap;     /* block->cap */
    uint32_t  spare;   /* references on block taken for buffers to come */
} rtmp_carver;

/* Carve from a new block of cap bytes from now on (the one before is
 * released: rtmp_carver_end).  0 or RTMP_ERR_NOMEM (then none). */
int rtmp_carver_start(rtmp_carver *c, size_t cap);

/* A new buffer (refs 1, len 0) cut from the block, with all the room left
 * as its cap; NULL when that is under min bytes (or no block). */
rtmp_buf *rtmp_carver_cut(rtmp_carver *c, size_t min);

/* Give the room b does not use (cap - len) back to the block: b is the
 * buffer cut last. */
void rtmp_carver_trim(rtmp_carver *c, rtmp_buf *b);

/* Bytes a buffer cut now could hold. */
size_t rtmp_carver_room(const rtmp_carver *c);

/* Take back b, the buffer cut last, when nothing else holds it (refs 1):
 * its room returns to the block.  1 when taken back (b is gone), else 0
 * (b is as it was: the caller unrefs it as usual). */
int rtmp_carver_unwind(rtmp_carver *c, rtmp_buf *b);

/* Stop carving: the block goes with the last buffer cut from it. */
void rtmp_carver_end(rtmp_carver *c);

/* Give b (refs 1, not carved; NULL: a new buffer) room for exactly cap
 * bytes: its bytes up to the smaller capacity are kept, len is cut to
 * cap; NULL on OOM (b unchanged). */
rtmp_buf *rtmp_buf_resize(rtmp_buf *b, size_t cap);

/* Append n bytes; 0 or RTMP_ERR_NOMEM. */
int rtmp_buf_append(rtmp_buf **bp, const void *p, size_t n);

/* Big-endian and little-endian writers over a raw pointer. */
static inline void rtmp_put_be16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void rtmp_put_be24(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; }
static inline void rtmp_put_be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static inline void rtmp_put_le32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static inline uint32_t rtmp_get_be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static inline uint32_t rtmp_get_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t rtmp_get_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline uint32_t rtmp_get_le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

/*
 * The output queue: an ordered list of (buffer, offset, length) segments.
 * Bytes are counted so the owner can bound it.  Invariant: bytes is the
 * sum of the len of the live segments; segs[head .. head+count) (mod cap)
 * are live.
 */
typedef struct rtmp_seg {
    rtmp_buf *buf;
    size_t    off, len;
} rtmp_seg;

typedef struct rtmp_outq {
    rtmp_seg *segs;
    size_t    head, count, cap;
    size_t    bytes;
} rtmp_outq;

/* Append a segment referencing buf[off .. off+len); takes a new reference
 * on buf.  0 or RTMP_ERR_NOMEM.  len == 0 is a no-op. */
int rtmp_outq_push(rtmp_outq *q, rtmp_buf *buf, size_t off, size_t len);

/* Fill up to max iovecs from the front of the queue; returns how many. */
int rtmp_outq_iov(const rtmp_outq *q, struct iovec *iov, int max);

/* Drop n bytes from the front (n <= q->bytes).  A segment array grown
 * past its first size by a burst is freed once the queue empties. */
void rtmp_outq_consume(rtmp_outq *q, size_t n);

/* Release every segment and the segment array. */
void rtmp_outq_clear(rtmp_outq *q);

#endif
