/*
 * aggregate.h: aggregate messages (type 22), read and built.  Pure
 * functions of bytes.
 *
 * An aggregate's payload is a run of sub-messages, each laid out like an
 * FLV tag: type(1) size(3) timestamp(3) timestamp-high(1) stream id(3),
 * size bytes of data, then a back pointer(4) holding 11 + size.
 *
 * Timestamps.  RTMP 1.0 (section 7.1.6) says the difference between the
 * aggregate's timestamp and its first sub-message's timestamp is an
 * offset added to every sub-message's timestamp, and the aggregate's
 * message stream id replaces the sub-messages' own.  nginx-rtmp and
 * FFmpeg do the same arithmetic in their own words: nginx-rtmp keeps the
 * first sub-message's timestamp as a base and gives each sub-message
 * aggregate + (own - base); FFmpeg's reader walks the tags and adds each
 * tag's step from the previous tag to a running time started at the
 * aggregate's timestamp, which sums to the same value.  Here:
 *     adjusted = aggregate + (own - first)   (all modulo 2^32)
 * so the first sub-message lands exactly on the aggregate's timestamp.
 * Where the peers differ from this (and from the spec): FFmpeg treats a
 * first sub-message timestamp of 0 as "not seen yet", so in an aggregate
 * whose first sub-message is at 0 it puts the second one on the
 * aggregate's time too and every later one early by the same step;
 * nginx-rtmp gives each sub-message its own 3-byte stream id instead of
 * the aggregate's, and hands a sub-message of type 22 back to its own
 * message dispatcher (recursion bounded only by the message size).
 *
 * Strict and lenient reading.  Both refuse a sub-message whose header or
 * data runs past the payload (AGG_TRUNCATED) and a nested aggregate
 * (AGG_NESTED: never recursed).  Strict reading also refuses a back
 * pointer that is not 11 + size (AGG_BACKPTR), a missing back pointer
 * after the last sub-message (AGG_TRUNCATED) and protocol control
 * messages (types 1-6: they act on the chunk layer, which an aggregate's
 * contents are above; AGG_CONTROL).  Lenient reading, what nginx-rtmp and
 * FFmpeg accept (neither reads the back pointer), ignores the back
 * pointer's value, accepts a last sub-message without one, and skips
 * control sub-messages.
 */
#ifndef RTMP_AGGREGATE_H
#define RTMP_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RTMP_AGG_SUB_HEADER 11   /* type, size, timestamp, ext, stream id */
#define RTMP_AGG_BACKPTR 4

/* One sub-message.  data points into the aggregate's payload. */
typedef struct rtmp_agg_sub {
    uint8_t        type;
    uint32_t       size;
    uint32_t       raw_timestamp;  /* as written in the sub-message */
    uint32_t       timestamp;      /* adjusted against the aggregate's */
    uint32_t       raw_stream_id;  /* 24 bits as written (overridden) */
    const uint8_t *data;
    size_t         offset;         /* of the sub-message's header in the payload */
} rtmp_agg_sub;

/* Iterator state; no allocation. */
typedef struct rtmp_agg_iter {
    const uint8_t *p;
    size_t         len, off;
    uint32_t       agg_timestamp, first_timestamp;
    int            started;
    int            strict;
    unsigned       count;          /* sub-messages read so far, skipped ones included */
} rtmp_agg_iter;

/* Start iterating over the aggregate payload p[0 .. len) whose own
 * message timestamp is agg_timestamp; strict selects strict reading. */
void rtmp_agg_init(rtmp_agg_iter *it, const uint8_t *p, size_t len, uint32_t agg_timestamp, int strict);

/* Next sub-message into *sub: 1, or 0 at the end of the payload, or
 * RTMP_ERR_AGG_TRUNCATED, RTMP_ERR_AGG_NESTED, RTMP_ERR_AGG_BACKPTR,
 * RTMP_ERR_AGG_CONTROL (see the head comment).  After an error the
 * iterator stays at the offending sub-message: it->off is its offset and
 * it->count + 1 its position. */
int rtmp_agg_next(rtmp_agg_iter *it, rtmp_agg_sub *sub);

/* Append one sub-message (header, data, back pointer) to *out.  type 22
 * and sizes above 0xFFFFFF give RTMP_ERR_INVAL; 0 or RTMP_ERR_NOMEM. */
int rtmp_agg_put(rtmp_buf **out, uint8_t type, uint32_t timestamp, uint32_t stream_id,
                 const uint8_t *data, size_t len);

#endif
