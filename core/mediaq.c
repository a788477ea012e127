#include "mediaq.h"
#include "error.h"
#include "media.h"

#include <stdlib.h>
#include <string.h>

void rtmp_mediaq_init(rtmp_mediaq *q, const rtmp_mediaq_config *cfg)
{
    memset(q, 0, sizeof *q);
    q->cfg = *cfg;
    q->over_since = -1;
}

void rtmp_mediaq_free(rtmp_mediaq *q)
{
    free(q->e);
    q->e = NULL;
    q->head = q->count = q->cap = 0;
}

const char *rtmp_mediaq_level_name(int level)
{
    static const char *const names[] = { "ok", "drop_inter", "drop_gop" };
    return level >= 0 && level <= 2 ? names[level] : "?";
}

/* cap is 0 or a power of two */
static rtmp_mediaq_entry *entry(const rtmp_mediaq *q, uint32_t i)
{
    return &q->e[(q->head + i) & (q->cap - 1)];
}

static void set_level(rtmp_mediaq *q, int level, double now)
{
    if (q->level == RTMP_MEDIAQ_OK) { /* a new run of drops */
        q->level_since = now;
        q->run_dropped = q->run_dropped_bytes = 0;
    }
    q->level = level;
    q->event = level == RTMP_MEDIAQ_DROP_INTER ? RTMP_MEDIAQ_EV_INTER : RTMP_MEDIAQ_EV_GOP;
}

static int drop(rtmp_mediaq *q, const rtmp_msg_hdr *h)
{
    q->dropped++;
    q->dropped_bytes += h->length;
    q->run_dropped++;
    q->run_dropped_bytes += h->length;
    return RTMP_MEDIAQ_DROP;
}

static int recover(rtmp_mediaq *q)
{
    q->level = RTMP_MEDIAQ_OK;
    q->event = RTMP_MEDIAQ_EV_RECOVERED;
    return RTMP_MEDIAQ_SEND;
}

int rtmp_mediaq_offer(rtmp_mediaq *q, const rtmp_msg_hdr *h, int cls,
                      uint64_t written, size_t pending, double now)
{
    q->event = RTMP_MEDIAQ_EV_NONE;
    q->now = now;
    if (q->cfg.max_bytes == 0 && q->cfg.max_time <= 0) { /* no bound: no policy, nothing tracked */
        q->level = RTMP_MEDIAQ_OK;
        q->over_since = -1;
        q->head = q->count = 0;
        return RTMP_MEDIAQ_SEND;
    }
    while (q->count > 0 && q->e[q->head].end <= written) { /* sent */
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
    if (q->count == 0 && q->cap > 64) { /* a backlog went out: its ring goes too */
        free(q->e);
        q->e = NULL;
        q->head = q->cap = 0;
    }
    /* media time: from the oldest unsent message of the same stream */
    q->bytes = pending;
    q->time = 0;
    for (uint32_t i = 0; i < q->count; i++) {
        const rtmp_mediaq_entry *e = entry(q, i);
        if (e->stream_id == h->stream_id) {
            int32_t d = (int32_t)(h->timestamp - e->timestamp);
            if (d > 0) {
                double span = d / 1000.0, waited = now - e->at;
                q->time = span > waited + RTMP_MEDIAQ_JUMP ? waited : span;
            }
            break;
        }
    }
    int full = q->count >= RTMP_MEDIAQ_MAX_MSGS;
    int over_bytes = full || (q->cfg.max_bytes > 0 && pending > q->cfg.max_bytes);
    int over = over_bytes || (q->cfg.max_time > 0 && q->time > q->cfg.max_time);
    if (!over) {
        q->over_since = -1;
    } else if (q->over_since < 0) {
        q->over_since = now;
    } else if (q->cfg.max_stall > 0 && now - q->over_since >= q->cfg.max_stall) {
        return RTMP_MEDIAQ_STALL;
    }

    if (cls == RTMP_MEDIAQ_KEEP)
        return RTMP_MEDIAQ_SEND;
    switch (q->level) {
    case RTMP_MEDIAQ_OK:
        if (!over)
            return RTMP_MEDIAQ_SEND;
        if (cls == RTMP_MEDIAQ_KEY) { /* its GOP cannot be decoded without it */
            set_level(q, RTMP_MEDIAQ_DROP_GOP, now);
            return drop(q, h);
        }
        set_level(q, RTMP_MEDIAQ_DROP_INTER, now);
        if (cls == RTMP_MEDIAQ_INTER)
            return drop(q, h);
        if (over_bytes) { /* audio, and the bytes bound is passed */
            set_level(q, RTMP_MEDIAQ_DROP_GOP, now);
            return drop(q, h);
        }
        return RTMP_MEDIAQ_SEND;
    case RTMP_MEDIAQ_DROP_INTER:
        if (cls == RTMP_MEDIAQ_INTER)
            return drop(q, h);
        if (cls == RTMP_MEDIAQ_KEY) {
            if (!over)
                return recover(q);
            set_level(q, RTMP_MEDIAQ_DROP_GOP, now);
            return drop(q, h);
        }
        if (over_bytes) {
            set_level(q, RTMP_MEDIAQ_DROP_GOP, now);
            return drop(q, h);
        }
        return RTMP_MEDIAQ_SEND;
    default: /* RTMP_MEDIAQ_DROP_GOP */
        if (cls == RTMP_MEDIAQ_KEY && !over)
            return recover(q);
        return drop(q, h);
    }
}

int rtmp_mediaq_queued(rtmp_mediaq *q, const rtmp_msg_hdr *h, int cls, uint64_t end)
{
    if ((q->cfg.max_bytes == 0 && q->cfg.max_time <= 0) || cls == RTMP_MEDIAQ_KEEP)
        return 0; /* metadata and headers carry no media time of their own */
    if (q->count == q->cap) {
        if (q->cap >= RTMP_MEDIAQ_MAX_MSGS)
            return 0; /* full: offers count as over the bounds */
        uint32_t cap = q->cap ? q->cap * 2 : 4; /* a player written at once has one or two unsent */
        rtmp_mediaq_entry *e = malloc(cap * sizeof *e);
        if (!e)
            return RTMP_ERR_NOMEM;
        for (uint32_t i = 0; i < q->count; i++)
            e[i] = *entry(q, i);
        free(q->e);
        q->e = e;
        q->cap = cap;
        q->head = 0;
    }
    rtmp_mediaq_entry *e = entry(q, q->count);
    e->end = end;
    e->timestamp = h->timestamp;
    e->stream_id = h->stream_id;
    e->at = q->now;
    q->count++;
    return 0;
}
