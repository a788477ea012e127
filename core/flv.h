/*
 * flv.h: FLV files, read and built piece by piece.  Pure functions of
 * bytes; the file I/O is the caller's (lua/l_flv.c uses stdio).
 *
 * Layout (FLV version 1, Adobe's FLV and F4V file format spec, annex E):
 *   header: "FLV" version(1) flags(1: 0x04 audio, 0x01 video)
 *           data offset(4, the header's own length, 9)
 *   then, from the data offset: PreviousTagSize0(4, = 0), and per tag
 *   reserved(2 bits) filter(1 bit) type(5 bits) data size(3)
 *   timestamp(3) timestamp extended(1: bits 24-31) stream id(3, = 0),
 *   data size bytes of data, PreviousTagSize(4) = 11 + data size.
 * A tag is laid out like a sub-message of an aggregate (aggregate.h).
 *
 * Strict and lenient reading (the caller applies the rules; these
 * functions report what they see).  Strict: PreviousTagSize0 must be 0,
 * every back pointer must be 11 + data size (RTMP_ERR_FLV_PREV_SIZE), the
 * last tag must have its back pointer, tag types must be 8, 9 or 18
 * (RTMP_ERR_FLV_TAG_TYPE) and the filter (encryption) bit must be clear
 * (RTMP_ERR_FLV_ENCRYPTED).  Lenient, what FFmpeg's reader accepts: back
 * pointers are not checked, the last one may be missing, and tags of
 * other types or with the filter bit are skipped.  Both refuse a header
 * without the signature (RTMP_ERR_FLV_SIGNATURE), a data offset below 9
 * (RTMP_ERR_FLV_HEADER) and a tag whose header or data runs past the end
 * of the file (RTMP_ERR_FLV_TRUNCATED).  The stream id is read, never
 * checked.
 */
#ifndef RTMP_FLV_H
#define RTMP_FLV_H

#include <stddef.h>
#include <stdint.h>

#define RTMP_FLV_HEADER_SIZE 9      /* signature, version, flags, data offset */
#define RTMP_FLV_TAG_HEADER_SIZE 11 /* type, size, timestamp, ext, stream id */
#define RTMP_FLV_BACKPTR_SIZE 4     /* PreviousTagSize */
#define RTMP_FLV_MAX_DATA 0xFFFFFFu /* a tag's data size is 24 bits */

/* Header flags. */
#define RTMP_FLV_FLAG_AUDIO 0x04
#define RTMP_FLV_FLAG_VIDEO 0x01

/* Tag types. */
enum {
    RTMP_FLV_AUDIO = 8,
    RTMP_FLV_VIDEO = 9,
    RTMP_FLV_SCRIPT = 18,
};

typedef struct rtmp_flv_header {
    uint8_t  version;
    uint8_t  flags;        /* as written (reserved bits included) */
    uint32_t data_offset;  /* where PreviousTagSize0 starts, >= 9 */
} rtmp_flv_header;

typedef struct rtmp_flv_tag {
    uint8_t  type;         /* low 5 bits of the first byte */
    uint8_t  filter;       /* 1 when the filter (encryption) bit is set */
    uint32_t size;         /* data size, <= RTMP_FLV_MAX_DATA */
    uint32_t timestamp;    /* ms, the extended byte as bits 24-31 */
    uint32_t stream_id;    /* 24 bits as written (0 in every real file) */
} rtmp_flv_tag;

/* Parse the file header from p[0 .. len).  Returns 9 (bytes used), or
 * RTMP_ERR_FLV_TRUNCATED (len < 9), RTMP_ERR_FLV_SIGNATURE (not "FLV"),
 * RTMP_ERR_FLV_HEADER (data offset below 9).  Any version is returned. */
int rtmp_flv_parse_header(const uint8_t *p, size_t len, rtmp_flv_header *h);

/* Parse a tag header from p[0 .. len).  Returns 11, or
 * RTMP_ERR_FLV_TRUNCATED when len < 11.  Type and filter are reported,
 * not judged: rtmp_flv_check_tag does that. */
int rtmp_flv_parse_tag(const uint8_t *p, size_t len, rtmp_flv_tag *t);

/* Whether a parsed tag is one a strict reader takes: 0, or
 * RTMP_ERR_FLV_ENCRYPTED (filter bit) or RTMP_ERR_FLV_TAG_TYPE (not 8,
 * 9 or 18). */
int rtmp_flv_check_tag(const rtmp_flv_tag *t);

/* Read the back pointer at p[0 .. len) and compare it with expected
 * (11 + the data size of the tag before it; 0 for PreviousTagSize0).
 * Returns 4, RTMP_ERR_FLV_TRUNCATED (len < 4) or RTMP_ERR_FLV_PREV_SIZE;
 * *got (may be NULL) receives the value read when there were 4 bytes. */
int rtmp_flv_check_backptr(const uint8_t *p, size_t len, uint32_t expected, uint32_t *got);

/* Write the 9-byte header (version 1, flags, data offset 9) and
 * PreviousTagSize0 into out[0 .. 13). */
#define RTMP_FLV_START_SIZE (RTMP_FLV_HEADER_SIZE + RTMP_FLV_BACKPTR_SIZE)
void rtmp_flv_put_start(uint8_t out[RTMP_FLV_START_SIZE], uint8_t flags);

/* Write a tag header into out[0 .. 11): type, size, timestamp (24 bits
 * and the extended byte), stream id 0.  RTMP_ERR_INVAL when size is above
 * RTMP_FLV_MAX_DATA, else 11. */
int rtmp_flv_put_tag(uint8_t out[RTMP_FLV_TAG_HEADER_SIZE], uint8_t type, uint32_t size, uint32_t timestamp);

/* The back pointer after a tag of data size `size`: 11 + size, big-endian. */
void rtmp_flv_put_backptr(uint8_t out[RTMP_FLV_BACKPTR_SIZE], uint32_t size);

/* Bytes at the start of a script-data payload p[0 .. len) that are the
 * AMF0 string "@setDataFrame" (16), or 0 when it does not start with it.
 * What follows is the data as a file holds it ("onMetaData", values). */
size_t rtmp_flv_set_data_frame_len(const uint8_t *p, size_t len);

/* Where the numbers "duration" and "filesize" sit in an onMetaData
 * payload p[0 .. len) (string "onMetaData", then an ECMA array or an
 * object): the offsets of their 8-byte doubles, or 0 when absent (the
 * first of each key counts; a key whose value is not a number is
 * absent).  Returns 1 for an onMetaData payload, 0 for other data, or a
 * negative RTMP_ERR_AMF_* code when the values do not decode (nesting
 * bounded by RTMP_AMF0_DEFAULT_DEPTH). */
int rtmp_flv_meta_find(const uint8_t *p, size_t len, size_t *duration_off, size_t *filesize_off);

/* The duration of what an FLV file holds, from its audio and video tags
 * as they are written (or scanned, to append): the latest presentation
 * time of a frame of either kind plus the step between the last two
 * frames of that kind (one frame's length, as far as the timestamps
 * tell).  Only frames count (the media model's slow-reader class: not
 * sequence headers, ends, metadata or commands); a frame with a
 * composition time offset (AVC, HEVC, VVC) is presented at its timestamp
 * plus that offset.  Zeroed: no frame yet. */
typedef struct rtmp_flv_clock {
    uint32_t last[2], step[2]; /* audio, video frames: last timestamp and the step to it */
    uint32_t top[2];           /* latest presentation time */
    unsigned count[2];
} rtmp_flv_clock;

/* The bytes of a tag's data the clock needs (the media header, also an
 * enhanced one with its composition time): a prefix this long is enough. */
#define RTMP_FLV_CLOCK_PEEK 32

/* Account for the audio or video tag (type 8 or 9) with data p[0 .. len)
 * at timestamp ts; p may be a prefix of the data (RTMP_FLV_CLOCK_PEEK
 * bytes). */
void rtmp_flv_clock_add(rtmp_flv_clock *c, uint8_t type, uint32_t ts, const uint8_t *p, size_t len);

/* The duration in ms (0 before any frame). */
uint32_t rtmp_flv_clock_ms(const rtmp_flv_clock *c);

#endif
