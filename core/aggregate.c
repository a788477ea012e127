#include "aggregate.h"
#include "chunk.h"
#include "control.h"
#include "error.h"

#include <string.h>

void rtmp_agg_init(rtmp_agg_iter *it, const uint8_t *p, size_t len, uint32_t agg_timestamp, int strict)
{
    it->p = p;
    it->len = len;
    it->off = 0;
    it->agg_timestamp = agg_timestamp;
    it->first_timestamp = 0;
    it->started = 0;
    it->strict = strict;
    it->count = 0;
}

int rtmp_agg_next(rtmp_agg_iter *it, rtmp_agg_sub *sub)
{
    for (;;) {
        size_t left = it->len - it->off;
        if (left == 0)
            return 0;
        if (left < RTMP_AGG_SUB_HEADER)
            return RTMP_ERR_AGG_TRUNCATED;
        const uint8_t *h = it->p + it->off;
        uint32_t size = rtmp_get_be24(h + 1);
        if (size > left - RTMP_AGG_SUB_HEADER)
            return RTMP_ERR_AGG_TRUNCATED;
        size_t end = RTMP_AGG_SUB_HEADER + (size_t)size;  /* <= left */
        size_t step;
        if (left - end >= RTMP_AGG_BACKPTR) {
            if (it->strict && rtmp_get_be32(h + end) != RTMP_AGG_SUB_HEADER + size)
                return RTMP_ERR_AGG_BACKPTR;
            step = end + RTMP_AGG_BACKPTR;
        } else if (left == end && !it->strict) {
            step = end;                 /* last one, back pointer left out */
        } else {
            return RTMP_ERR_AGG_TRUNCATED;
        }
        uint8_t type = h[0];
        if (type == RTMP_MSG_AGGREGATE)
            return RTMP_ERR_AGG_NESTED;
        if (rtmp_is_control(type) && it->strict)
            return RTMP_ERR_AGG_CONTROL;
        uint32_t ts = rtmp_get_be24(h + 4) | (uint32_t)h[7] << 24;
        if (!it->started) {
            it->first_timestamp = ts;
            it->started = 1;
        }
        size_t at = it->off;
        it->off += step;
        it->count++;
        if (rtmp_is_control(type))
            continue;                   /* lenient: skipped */
        sub->type = type;
        sub->size = size;
        sub->raw_timestamp = ts;
        sub->timestamp = it->agg_timestamp + (ts - it->first_timestamp);
        sub->raw_stream_id = rtmp_get_be24(h + 8);
        sub->data = h + RTMP_AGG_SUB_HEADER;
        sub->offset = at;
        return 1;
    }
}

int rtmp_agg_put(rtmp_buf **out, uint8_t type, uint32_t timestamp, uint32_t stream_id,
                 const uint8_t *data, size_t len)
{
    if (type == RTMP_MSG_AGGREGATE || len > 0xFFFFFF)
        return RTMP_ERR_INVAL;
    uint8_t *w = rtmp_buf_grow(out, RTMP_AGG_SUB_HEADER + len + RTMP_AGG_BACKPTR);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = type;
    rtmp_put_be24(w + 1, (uint32_t)len);
    rtmp_put_be24(w + 4, timestamp & 0xFFFFFF);
    w[7] = (uint8_t)(timestamp >> 24);
    rtmp_put_be24(w + 8, stream_id & 0xFFFFFF);
    if (len)
        memcpy(w + RTMP_AGG_SUB_HEADER, data, len);
    rtmp_put_be32(w + RTMP_AGG_SUB_HEADER + len, (uint32_t)(RTMP_AGG_SUB_HEADER + len));
    (*out)->len += RTMP_AGG_SUB_HEADER + len + RTMP_AGG_BACKPTR;
    return 0;
}
