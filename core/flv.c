#include "flv.h"
#include "amf0.h"
#include "buf.h"
#include "error.h"
#include "media.h"

#include <string.h>

int rtmp_flv_parse_header(const uint8_t *p, size_t len, rtmp_flv_header *h)
{
    if (len < RTMP_FLV_HEADER_SIZE)
        return RTMP_ERR_FLV_TRUNCATED;
    if (p[0] != 'F' || p[1] != 'L' || p[2] != 'V')
        return RTMP_ERR_FLV_SIGNATURE;
    h->version = p[3];
    h->flags = p[4];
    h->data_offset = rtmp_get_be32(p + 5);
    if (h->data_offset < RTMP_FLV_HEADER_SIZE)
        return RTMP_ERR_FLV_HEADER;
    return RTMP_FLV_HEADER_SIZE;
}

int rtmp_flv_parse_tag(const uint8_t *p, size_t len, rtmp_flv_tag *t)
{
    if (len < RTMP_FLV_TAG_HEADER_SIZE)
        return RTMP_ERR_FLV_TRUNCATED;
    t->type = p[0] & 0x1F;
    t->filter = (p[0] >> 5) & 1;
    t->size = rtmp_get_be24(p + 1);
    t->timestamp = rtmp_get_be24(p + 4) | (uint32_t)p[7] << 24;
    t->stream_id = rtmp_get_be24(p + 8);
    return RTMP_FLV_TAG_HEADER_SIZE;
}

int rtmp_flv_check_tag(const rtmp_flv_tag *t)
{
    if (t->filter)
        return RTMP_ERR_FLV_ENCRYPTED;
    if (t->type != RTMP_FLV_AUDIO && t->type != RTMP_FLV_VIDEO && t->type != RTMP_FLV_SCRIPT)
        return RTMP_ERR_FLV_TAG_TYPE;
    return 0;
}

int rtmp_flv_check_backptr(const uint8_t *p, size_t len, uint32_t expected, uint32_t *got)
{
    if (len < RTMP_FLV_BACKPTR_SIZE)
        return RTMP_ERR_FLV_TRUNCATED;
    uint32_t v = rtmp_get_be32(p);
    if (got)
        *got = v;
    return v == expected ? RTMP_FLV_BACKPTR_SIZE : RTMP_ERR_FLV_PREV_SIZE;
}

void rtmp_flv_put_start(uint8_t out[RTMP_FLV_START_SIZE], uint8_t flags)
{
    out[0] = 'F';
    out[1] = 'L';
    out[2] = 'V';
    out[3] = 1;
    out[4] = flags;
    rtmp_put_be32(out + 5, RTMP_FLV_HEADER_SIZE);
    rtmp_put_be32(out + 9, 0);
}

int rtmp_flv_put_tag(uint8_t out[RTMP_FLV_TAG_HEADER_SIZE], uint8_t type, uint32_t size, uint32_t timestamp)
{
    if (size > RTMP_FLV_MAX_DATA)
        return RTMP_ERR_INVAL;
    out[0] = type & 0x1F;
    rtmp_put_be24(out + 1, size);
    rtmp_put_be24(out + 4, timestamp & 0xFFFFFF);
    out[7] = (uint8_t)(timestamp >> 24);
    rtmp_put_be24(out + 8, 0);
    return RTMP_FLV_TAG_HEADER_SIZE;
}

void rtmp_flv_put_backptr(uint8_t out[RTMP_FLV_BACKPTR_SIZE], uint32_t size)
{
    rtmp_put_be32(out, RTMP_FLV_TAG_HEADER_SIZE + size);
}

static const char set_data_frame[] = "\x02\x00\x0D@setDataFrame";
#define SET_DATA_FRAME_LEN (sizeof set_data_frame - 1)

size_t rtmp_flv_set_data_frame_len(const uint8_t *p, size_t len)
{
    if (len >= SET_DATA_FRAME_LEN && memcmp(p, set_data_frame, SET_DATA_FRAME_LEN) == 0)
        return SET_DATA_FRAME_LEN;
    return 0;
}

int rtmp_flv_meta_find(const uint8_t *p, size_t len, size_t *duration_off, size_t *filesize_off)
{
    *duration_off = *filesize_off = 0;
    rtmp_amf0_reader r;
    rtmp_amf0_reader_init(&r, p, len);
    const char *s;
    size_t n;
    if (rtmp_amf0_read_string(&r, &s, &n) < 0 || n != 10 || memcmp(s, "onMetaData", 10) != 0)
        return 0;
    int marker = rtmp_amf0_peek_marker(&r);
    int rc;
    if (marker == RTMP_AMF0_ECMA_ARRAY) {
        uint32_t count;
        rc = rtmp_amf0_read_ecma_start(&r, &count);
    } else if (marker == RTMP_AMF0_OBJECT) {
        rc = rtmp_amf0_read_object_start(&r);
    } else {
        return marker < 0 ? marker : 1;  /* onMetaData without an array: nothing to patch */
    }
    if (rc < 0)
        return rc;
    for (;;) {
        if (marker == RTMP_AMF0_ECMA_ARRAY && rtmp_amf0_ecma_end_missing(&r))
            return 1;
        rc = rtmp_amf0_read_key(&r, &s, &n);
        if (rc < 0)
            return rc;
        if (rc == RTMP_AMF0_END)
            return 1;
        size_t *slot = NULL;
        if (n == 8 && memcmp(s, "duration", 8) == 0)
            slot = duration_off;
        else if (n == 8 && memcmp(s, "filesize", 8) == 0)
            slot = filesize_off;
        if (slot && *slot == 0 && rtmp_amf0_peek_marker(&r) == RTMP_AMF0_NUMBER
            && rtmp_amf0_remaining(&r) >= 9)
            *slot = rtmp_amf0_offset(&r) + 1;
        rc = rtmp_amf0_skip_value(&r, RTMP_AMF0_DEFAULT_DEPTH);
        if (rc < 0)
            return rc;
    }
}

void rtmp_flv_clock_add(rtmp_flv_clock *c, uint8_t type, uint32_t ts, const uint8_t *p, size_t len)
{
    int i = type == RTMP_FLV_AUDIO ? 0 : 1;
    rtmp_media m;
    rtmp_media_parse(&m, type, p, len); /* a fault after the header still has its class */
    if (rtmp_media_class(&m) == RTMP_MEDIA_CLASS_KEEP)
        return;
    int64_t pts = ts;
    if (m.ntracks > 0)
        pts += m.track[0].cts;
    if (c->count[i] && ts >= c->last[i])
        c->step[i] = ts - c->last[i];
    if (!c->count[i] || ts >= c->last[i])
        c->last[i] = ts;
    if (pts > 0 && (!c->count[i] || (uint32_t)pts > c->top[i]))
        c->top[i] = (uint32_t)pts;
    c->count[i]++;
}

uint32_t rtmp_flv_clock_ms(const rtmp_flv_clock *c)
{
    uint32_t d = 0;
    for (int i = 0; i < 2; i++)
        if (c->count[i] && c->top[i] + c->step[i] > d)
            d = c->top[i] + c->step[i];
    return d;
}
