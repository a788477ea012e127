/*
 * amf.h: what the AMF0 and AMF3 codecs share (amf0.h, amf3.h): the
 * nesting limits and the 8-byte big-endian doubles both encodings use.
 *
 * AMF0 embeds AMF3 (the 0x11 switch), so amf0.c calls into amf3.c; AMF3
 * never calls AMF0.  Both take what they share from here.
 */
#ifndef RTMP_AMF_H
#define RTMP_AMF_H

#include <stdint.h>
#include <string.h>

#include "buf.h"

/* Hard ceiling on any nesting bound passed to either codec: deeper
 * requests are clamped to it, so recursion stays shallow. */
#define RTMP_AMF_MAX_DEPTH 512
/* Default nesting limit for values from peers (GStreamer and FFmpeg use 16). */
#define RTMP_AMF_DEFAULT_DEPTH 32

/* The 8 bytes at p as a big-endian IEEE 754 double (AMF0 numbers and
 * dates, AMF3 doubles, dates and double vectors; FLV metadata), and
 * back.  No checks: the caller has the 8 bytes. */
static inline double rtmp_amf_get_double(const uint8_t *p)
{
    uint64_t u = (uint64_t)rtmp_get_be32(p) << 32 | rtmp_get_be32(p + 4);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline void rtmp_amf_put_double(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    rtmp_put_be32(p, (uint32_t)(u >> 32));
    rtmp_put_be32(p + 4, (uint32_t)u);
}

#endif
