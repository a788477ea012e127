/*
 * group.c: fan-out, the members' slow-reader policy, the late-join cache
 * (group.h).
 */
#include "group.h"
#include "error.h"
#include "flv.h"
#include "log.h"
#include "media.h"
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEND_KEYS 8     /* distinct (chunk size, stream id) chunked per message without a second chunking */
#define ENTRY_KEYS 4    /* chunkings kept per cached message */
#define MAX_CONFIGS 32  /* track configurations cached */
#define MAX_CONFIG_BYTES (1024 * 1024) /* their payloads together at most */
#define BLOCK_SIZE (64 * 1024) /* chunkings are carved from blocks of this size (carve()) */

typedef struct member {
    rtmp_conn_core *const *conn;
    rtmp_mediaq     **mq;
    uint32_t          stream_id;
    int               legacy;   /* a legacy member (group.h) */
    void             *ud;
} member;

/* One chunking of a message. */
typedef struct chunked {
    uint32_t  chunk_size, stream_id;
    rtmp_buf *buf;
} chunked;

/* A cached message: its header as published (stream id 0) and its
 * chunkings, the first one the bytes the fan-out sent; or, when no member
 * took it, none and its payload as it came (raw), until a joiner needs a
 * chunking. */
typedef struct entry {
    rtmp_msg_hdr h;
    int          legacy;   /* legacy members get it (decided when it was fanned out) */
    int          n;
    chunked      k[ENTRY_KEYS];
    rtmp_buf    *raw;      /* n == 0: the payload (the reader's buffer: group.h) */
    rtmp_buf    *flv;      /* its FLV tag (group.h), made when an FLV player first needs it */
} entry;

/* What a cached configuration configures: its type and packet kind, and
 * the (track id, codec) of each of its tracks, as id << 8 | codec,
 * ascending, each once. */
typedef struct conf_key {
    uint8_t  type, packet;
    unsigned n;
    uint16_t track[RTMP_MEDIA_MAX_TRACKS];
} conf_key;

/* What every message reads comes first: with many groups, each message
 * finds its group's lines out of the cache. */
struct rtmp_group {
    rtmp_group_config cfg;
    member  *m;
    size_t   n, cap;
    size_t   nfp;                  /* HTTP-FLV and WS-FLV players in fp (each message reads it) */
    entry   *gop;                  /* from the last keyframe */
    size_t   ngop, gop_cap, gop_bytes;
    int      gop_full;             /* past gop_max_bytes: no more until the next keyframe */
    uint32_t last_cs, last_sid;    /* the key a message was last chunked for */
    rtmp_carver carver;            /* chunkings are carved from its block (carve()) */
    /* (rtmp_group_warm notes the fields above) */
    size_t   nconf;
    rtmp_flv_player **fp;
    size_t   fp_cap;
    entry    meta;                 /* none unless holds() */
    entry    conf[MAX_CONFIGS];    /* in the order they came */
    conf_key ckey[MAX_CONFIGS];    /* what conf[i] configures */
};

rtmp_group *rtmp_group_new(const rtmp_group_config *cfg)
{
    rtmp_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = *cfg;
    g->last_cs = 4096;
    g->last_sid = 1;
    return g;
}

/* Whether e holds a message. */
static int holds(const entry *e)
{
    return e->n > 0 || e->raw;
}

static void entry_free(entry *e)
{
    for (int i = 0; i < e->n; i++)
        rtmp_buf_unref(e->k[i].buf);
    e->n = 0;
    rtmp_buf_unref(e->raw);
    e->raw = NULL;
    rtmp_buf_unref(e->flv);
    e->flv = NULL;
}

void rtmp_group_reset(rtmp_group *g)
{
    entry_free(&g->meta);
    for (size_t i = 0; i < g->nconf; i++)
        entry_free(&g->conf[i]);
    g->nconf = 0;
    for (size_t i = 0; i < g->ngop; i++)
        entry_free(&g->gop[i]);
    g->ngop = g->gop_bytes = 0;
    g->gop_full = 0;
}

static void drop(rtmp_group *g, size_t i)
{
    void *ud = g->m[i].ud;
    g->m[i] = g->m[--g->n];
    if (g->cfg.release)
        g->cfg.release(ud);
}

void rtmp_group_clear(rtmp_group *g)
{
    while (g->n)
        drop(g, g->n - 1);
}

void rtmp_group_free(rtmp_group *g)
{
    if (!g)
        return;
    rtmp_group_clear(g);
    rtmp_group_end_flv(g, "stream gone");
    rtmp_group_reset(g);
    rtmp_carver_end(&g->carver);
    free(g->fp);
    free(g->gop);
    free(g->m);
    free(g);
}

static void prune(rtmp_group *g)
{
    for (size_t i = 0; i < g->n;)
        if (!*g->m[i].conn)
            drop(g, i);
        else
            i++;
}

size_t rtmp_group_count(rtmp_group *g)
{
    prune(g);
    return g->n;
}

void *rtmp_group_member(const rtmp_group *g, size_t i)
{
    return i < g->n ? g->m[i].ud : NULL;
}

int rtmp_group_has(const rtmp_group *g, rtmp_conn_core *const *conn)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].conn == conn)
            return *conn != NULL;
    return 0;
}

int rtmp_group_remove(rtmp_group *g, rtmp_conn_core *const *conn)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].conn == conn) {
            drop(g, i);
            return 1;
        }
    return 0;
}

/* ---- chunkings ---- */

/* A buffer with room for at least min bytes carved from the group's
 * current block, or else from a new one (what the old one has left goes
 * unused: under the message's size, a few KiB of 64); NULL when the
 * message should have a buffer of its own (over half a block), or on OOM.
 * A block goes when the last buffer carved from it does (and the group no
 * longer carves from it). */
static rtmp_buf *carve(rtmp_group *g, size_t min)
{
    if (min > BLOCK_SIZE / 2)
        return NULL;
    rtmp_buf *b = rtmp_carver_cut(&g->carver, min);
    if (b)
        return b;
    if (rtmp_carver_start(&g->carver, BLOCK_SIZE) < 0)
        return NULL;
    return rtmp_carver_cut(&g->carver, min);
}

/* Chunk a message (rtmp_chunk_write_fmt0) into *out.  A passing one (the
 * GOP's, or not cached) is carved from the group's blocks (carve()): a
 * steady stream of messages then costs no allocation, and its chunkings
 * lie side by side.  A lasting one (metadata, a track's configuration:
 * kept until replaced, so it would hold its block) or one carve() leaves
 * out gets a buffer of its own.  0 or a negative RTMP_ERR_* (*out NULL). */
static int chunk(rtmp_group *g, int lasting, uint32_t cs, const rtmp_msg_hdr *h, const uint8_t *payload,
                 rtmp_buf **out)
{
    /* the chunked bytes are at least the payload */
    rtmp_buf *b = lasting ? NULL : carve(g, h->length);
    if (b) {
        int rc = rtmp_chunk_write_fmt0(cs, h, payload, &b);
        rtmp_carver_trim(&g->carver, b);
        if (rc == 0) {
            *out = b;
            return 0;
        }
        rtmp_buf_unref(b); /* short of room for the chunk headers (or invalid: said again below) */
    }
    *out = NULL;
    int rc = rtmp_chunk_write_fmt0(cs, h, payload, out);
    if (rc < 0) {
        rtmp_buf_unref(*out);
        *out = NULL;
    }
    return rc;
}

/* Whether e is one of the GOP's entries (else the metadata or a
 * configuration: lasting). */
static int in_gop(const rtmp_group *g, const entry *e)
{
    return e >= g->gop && e < g->gop + g->ngop;
}

/* The payload of e: its raw buffer's bytes, or gathered from its first
 * chunking into *copy (the caller frees it).  NULL on OOM. */
static const uint8_t *entry_payload(const entry *e, uint8_t **copy)
{
    *copy = NULL;
    if (e->raw)
        return e->raw->data;
    rtmp_msg_hdr h = e->h;
    h.stream_id = e->k[0].stream_id;
    uint8_t *p = malloc(h.length ? h.length : 1);
    if (p && rtmp_chunk_gather_fmt0(e->k[0].chunk_size, &h, e->k[0].buf, 0, p, h.length) != 0) {
        free(p);
        p = NULL;
    }
    return *copy = p;
}

/* The chunking of e for (cs, sid): a reference to one kept in e, made
 * from e's payload when missing (and kept when there is room: the raw
 * payload then goes, the chunking holds its bytes).  NULL on OOM.  The
 * caller unrefs. */
static rtmp_buf *entry_chunked(rtmp_group *g, entry *e, uint32_t cs, uint32_t sid)
{
    for (int i = 0; i < e->n; i++)
        if (e->k[i].chunk_size == cs && e->k[i].stream_id == sid)
            return rtmp_buf_ref(e->k[i].buf);
    uint8_t *copy;
    const uint8_t *p = entry_payload(e, &copy);
    rtmp_buf *buf = NULL;
    if (p) {
        rtmp_msg_hdr h = e->h;
        h.stream_id = sid;
        chunk(g, !in_gop(g, e), cs, &h, p, &buf);
    }
    free(copy);
    if (buf && e->n < ENTRY_KEYS) {
        e->k[e->n].chunk_size = cs;
        e->k[e->n].stream_id = sid;
        e->k[e->n].buf = rtmp_buf_ref(buf);
        e->n++;
        rtmp_buf_unref(e->raw);
        e->raw = NULL;
    }
    return buf;
}

/* Make e hold a message (h as published): its chunking k, or (k NULL)
 * its payload in raw; a reference is taken.  The old contents are
 * dropped, unless e is fresh (a new GOP slot: nothing of it is read, its
 * lines may be out of the cache). */
static void entry_set(entry *e, int fresh, const rtmp_msg_hdr *h, const chunked *k, rtmp_buf *raw)
{
    if (!fresh)
        entry_free(e);
    e->h = *h;
    e->h.stream_id = 0;
    e->n = 0;
    if (k) {
        e->k[e->n++] = *k;
        rtmp_buf_ref(k->buf);
    }
    e->raw = rtmp_buf_ref(raw);
    e->flv = NULL;
}

/* ---- the cache ---- */

/* The key of a configuration message (h, its parsed body m). */
static void conf_key_of(conf_key *k, const rtmp_msg_hdr *h, const rtmp_media *m)
{
    k->type = h->type;
    k->packet = m->packet;
    k->n = 0;
    unsigned n = m->ntracks ? m->ntracks : 1;
    for (unsigned i = 0; i < n; i++) {
        uint16_t t = m->ntracks ? (uint16_t)(m->track[i].id << 8 | m->track[i].codec) : m->codec;
        unsigned j = k->n;
        while (j > 0 && k->track[j - 1] > t)
            j--;
        if (j > 0 && k->track[j - 1] == t)
            continue; /* a track id given twice */
        memmove(k->track + j + 1, k->track + j, (k->n - j) * sizeof *k->track);
        k->track[j] = t;
        k->n++;
    }
}

/* Whether b configures again all that a configures. */
static int conf_covered(const conf_key *a, const conf_key *b)
{
    if (a->type != b->type || a->packet != b->packet)
        return 0;
    unsigned j = 0;
    for (unsigned i = 0; i < a->n; i++) {
        while (j < b->n && b->track[j] < a->track[i])
            j++;
        if (j == b->n || b->track[j] != a->track[i])
            return 0;
    }
    return 1;
}

/* The cache's slot for a message, or NULL when it is not cached.  m is
 * the parsed body (rc its parse result). */
static entry *cache_slot(rtmp_group *g, const rtmp_msg_hdr *h, const rtmp_media *m, int rc)
{
    if (rc < 0 && m->packet == RTMP_MEDIA_NO_PACKET)
        return NULL;
    int config = rtmp_media_is_sequence_header(m) || m->packet == RTMP_MEDIA_METADATA;
    if (config) {
        conf_key key;
        conf_key_of(&key, h, m);
        /* configurations are small (an avcC is under 1 KB): all of them
         * together stay under MAX_CONFIG_BYTES, so a publisher cannot make
         * every joiner's burst 32 x max_message */
        size_t others = 0;
        for (size_t i = 0; i < g->nconf; i++)
            if (holds(&g->conf[i]) && !conf_covered(&g->ckey[i], &key))
                others += g->conf[i].h.length;
        if (others + h->length > MAX_CONFIG_BYTES)
            return NULL;
        /* the ones this configures again go; the rest keep their order */
        size_t kept = 0;
        for (size_t i = 0; i < g->nconf; i++) {
            if (conf_covered(&g->ckey[i], &key)) {
                entry_free(&g->conf[i]);
                continue;
            }
            if (kept != i) {
                g->conf[kept] = g->conf[i];
                g->ckey[kept] = g->ckey[i];
            }
            kept++;
        }
        g->nconf = kept;
        if (g->nconf == MAX_CONFIGS)
            return NULL;
        g->conf[g->nconf].n = 0;
        g->conf[g->nconf].raw = NULL;
        g->conf[g->nconf].flv = NULL;
        g->ckey[g->nconf] = key;
        return &g->conf[g->nconf++];
    }
    if (h->type == RTMP_MSG_VIDEO && rtmp_media_class(m) == RTMP_MEDIA_CLASS_KEY) {
        for (size_t i = 0; i < g->ngop; i++)
            entry_free(&g->gop[i]);
        g->ngop = g->gop_bytes = 0;
        g->gop_full = 0;
    } else if (g->ngop == 0 || g->gop_full) {
        return NULL; /* no keyframe yet, or the GOP is over its bound */
    }
    if (g->gop_bytes + h->length > g->cfg.gop_max_bytes) {
        g->gop_full = 1;
        return NULL;
    }
    if (g->ngop == g->gop_cap) {
        size_t cap = g->gop_cap ? g->gop_cap * 2 : 256;
        entry *e = realloc(g->gop, cap * sizeof *e);
        if (!e)
            return NULL;
        g->gop = e;
        g->gop_cap = cap;
    }
    g->gop_bytes += h->length;
    g->gop[g->ngop].n = 0;
    g->gop[g->ngop].raw = NULL;
    g->gop[g->ngop].flv = NULL;
    return &g->gop[g->ngop++];
}

size_t rtmp_group_cached_bytes(const rtmp_group *g, size_t *messages)
{
    size_t bytes = g->gop_bytes, n = g->ngop;
    if (holds(&g->meta)) {
        bytes += g->meta.h.length;
        n++;
    }
    for (size_t i = 0; i < g->nconf; i++)
        if (holds(&g->conf[i])) {
            bytes += g->conf[i].h.length;
            n++;
        }
    if (messages)
        *messages = n;
    return bytes;
}

/* The cache in a joiner's order: metadata, configurations, the GOP. */
static entry *cache_at(const rtmp_group *g, size_t i)
{
    if (i == 0)
        return holds(&g->meta) ? (entry *)&g->meta : NULL;
    i--;
    if (i < g->nconf)
        return holds(&g->conf[i]) ? (entry *)&g->conf[i] : NULL;
    i -= g->nconf;
    return i < g->ngop ? &g->gop[i] : NULL;
}

#define CACHE_SLOTS(g) (1 + (g)->nconf + (g)->ngop)

int rtmp_group_each_cached(const rtmp_group *g,
                           int (*fn)(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload), void *ud)
{
    for (size_t i = 0; i < CACHE_SLOTS(g); i++) {
        entry *e = cache_at(g, i);
        if (!e)
            continue;
        /* fn gets its own copy of the header and a reference on the
         * payload: what it does to the cache cannot pull them away */
        rtmp_msg_hdr h = e->h;
        rtmp_buf *raw = rtmp_buf_ref(e->raw);
        uint8_t *copy;
        const uint8_t *p = entry_payload(e, &copy);
        int rc = p ? fn(ud, &h, p) : RTMP_ERR_NOMEM;
        free(copy);
        rtmp_buf_unref(raw);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- members ---- */

static int open_ready(rtmp_conn_core *c)
{
    return c && !rtmp_conn_core_closing(c) && rtmp_session_ready(rtmp_conn_core_session(c));
}

int rtmp_group_add(rtmp_group *g, rtmp_conn_core *const *conn, rtmp_mediaq **mq, uint32_t stream_id, int legacy,
                   void *ud)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].conn == conn) {
            g->m[i].stream_id = stream_id;
            g->m[i].legacy = legacy;
            return 1;
        }
    rtmp_conn_core *c = *conn;
    if (!c || rtmp_conn_core_closing(c))
        return RTMP_ERR_CLOSED;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        member *m = realloc(g->m, cap * sizeof *m);
        if (!m)
            return RTMP_ERR_NOMEM;
        g->m = m;
        g->cap = cap;
    }
    g->m[g->n++] = (member){ conn, mq, stream_id, legacy, ud };
    if (!g->cfg.cache || !rtmp_session_ready(rtmp_conn_core_session(c)))
        return 0;
    /* the late-join burst: references to the cached chunkings */
    rtmp_session *s = rtmp_conn_core_session(c);
    uint32_t cs = rtmp_writer_chunk_size(rtmp_session_writer(s));
    size_t sent = 0;
    for (size_t i = 0; i < CACHE_SLOTS(g); i++) {
        entry *e = cache_at(g, i);
        if (!e || (legacy && !e->legacy))
            continue;
        rtmp_buf *buf = entry_chunked(g, e, cs, stream_id);
        if (!buf)
            break;
        rtmp_msg_hdr h = e->h;
        h.stream_id = stream_id;
        int rc = rtmp_session_send_chunked(s, &h, buf);
        rtmp_buf_unref(buf);
        if (rc < 0)
            break;
        sent++;
    }
    if (sent) {
        rtmp_conn_core_exempt_queued(c);
        rtmp_conn_core_output(c, 0);
        rtmp_log(RTMP_LOG_DEBUG, rtmp_conn_core_id(c), rtmp_conn_core_peer(c),
                 "late join: %zu cached messages (%zu bytes of payload)", sent,
                 rtmp_group_cached_bytes(g, NULL));
    }
    return 0;
}

/* ---- the slow-reader policy of one member ---- */

rtmp_mediaq *rtmp_group_queue(rtmp_mediaq **slot, rtmp_conn_core *c)
{
    if (!*slot) {
        const rtmp_conn_config *cc = rtmp_conn_core_config(c);
        rtmp_mediaq_config cfg = { cc->max_queue_bytes, cc->max_queue_time, cc->max_queue_stall };
        rtmp_mediaq *q = malloc(sizeof *q);
        if (!q)
            return NULL;
        rtmp_mediaq_init(q, &cfg);
        *slot = q;
    }
    return *slot;
}

/* What an offer that was not the usual case (rc and q->event, from
 * rtmp_mediaq_offer) means for the member id/peer: 1 send, 0 drop (the
 * change logged), -1 close it as a stalled slow reader, with reason. */
static int verdict(rtmp_mediaq *q, int rc, double now, unsigned long id, const char *peer, char *reason,
                   size_t reason_len)
{
    if (rc == RTMP_MEDIAQ_STALL) {
        snprintf(reason, reason_len,
                 "slow reader: over the queue bounds for %.1f s (queue %zu bytes, %.2f s of media;"
                 " bounds %zu bytes, %.2f s; dropped %llu messages, %llu bytes)",
                 now - q->over_since, q->bytes, q->time, q->cfg.max_bytes, q->cfg.max_time,
                 (unsigned long long)q->dropped, (unsigned long long)q->dropped_bytes);
        return -1;
    }
    switch (q->event) {
    case RTMP_MEDIAQ_EV_INTER:
    case RTMP_MEDIAQ_EV_GOP:
        rtmp_log(RTMP_LOG_WARN, id, peer,
                 "slow reader: queue %zu bytes, %.2f s of media (bounds %zu bytes, %.2f s): %s",
                 q->bytes, q->time, q->cfg.max_bytes, q->cfg.max_time,
                 q->event == RTMP_MEDIAQ_EV_INTER ? "dropping non-key video until the next keyframe"
                                                  : "dropping audio and video until a keyframe finds the queue under its bounds");
        break;
    case RTMP_MEDIAQ_EV_RECOVERED:
        rtmp_log(RTMP_LOG_INFO, id, peer,
                 "slow reader caught up after %.1f s: dropped %llu messages (%llu bytes); queue %zu bytes",
                 now - q->level_since, (unsigned long long)q->run_dropped,
                 (unsigned long long)q->run_dropped_bytes, q->bytes);
        break;
    default:
        break;
    }
    return rc == RTMP_MEDIAQ_SEND;
}

/* Before queuing message h of class cls to member mb: 1 to send it, 0 to
 * drop it, -1 when the connection was closed for staying over its bounds.
 * The bytes measured leave out a late joiner's exempt burst. */
static int offer(member *mb, rtmp_conn_core *c, const rtmp_msg_hdr *h, int cls, double now)
{
    rtmp_mediaq *q = *mb->mq;
    if (!q) {
        const rtmp_conn_config *cc = rtmp_conn_core_config(c);
        if (cc->max_queue_bytes == 0 && cc->max_queue_time <= 0)
            return 1; /* no policy for this connection */
        if (!(q = rtmp_group_queue(mb->mq, c)))
            return 1; /* out of memory: fan out as without a policy */
    }
    size_t exempt = rtmp_conn_core_exempt(c);
    int rc = rtmp_mediaq_offer(q, h, cls, rtmp_conn_core_written(c) + exempt, rtmp_conn_core_pending(c) - exempt, now);
    if (rc == RTMP_MEDIAQ_SEND && q->event == RTMP_MEDIAQ_EV_NONE)
        return 1; /* the usual case */
    char reason[256];
    int v = verdict(q, rc, now, rtmp_conn_core_id(c), rtmp_conn_core_peer(c), reason, sizeof reason);
    if (v < 0)
        rtmp_conn_core_close(c, reason, RTMP_CLOSE_DROP);
    return v;
}

/* ---- HTTP-FLV and WS-FLV players (group.h) ---- */

/* The FLV tag of a message (h as published, its whole payload), after
 * RTMP_GROUP_WS_ROOM bytes whose end holds the tag's WebSocket frame
 * header: carved like a chunking unless lasting.  NULL when the message
 * has no tag (not audio, video or script data, or over a tag's 24-bit
 * size) or on OOM. */
static rtmp_buf *flv_tag(rtmp_group *g, int lasting, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    if (h->type != RTMP_FLV_AUDIO && h->type != RTMP_FLV_VIDEO && h->type != RTMP_FLV_SCRIPT)
        return NULL;
    const uint8_t *p = payload;
    size_t len = h->length;
    if (h->type == RTMP_FLV_SCRIPT) { /* a file's script data has no @setDataFrame */
        size_t skip = rtmp_flv_set_data_frame_len(p, len);
        p += skip;
        len -= skip;
    }
    if (len > RTMP_FLV_MAX_DATA)
        return NULL;
    size_t tag = RTMP_FLV_TAG_HEADER_SIZE + len + RTMP_FLV_BACKPTR_SIZE, total = RTMP_GROUP_WS_ROOM + tag;
    rtmp_buf *b = lasting ? NULL : carve(g, total);
    int carved = b != NULL;
    if (!b && !(b = rtmp_buf_new(total)))
        return NULL;
    uint8_t ws[10];
    size_t wl = rtmp_ws_frame_header(ws, RTMP_WS_BINARY, tag);
    uint8_t *t = b->data + RTMP_GROUP_WS_ROOM;
    memcpy(t - wl, ws, wl);
    rtmp_flv_put_tag(t, h->type, (uint32_t)len, h->timestamp);
    memcpy(t + RTMP_FLV_TAG_HEADER_SIZE, p, len);
    rtmp_flv_put_backptr(t + RTMP_FLV_TAG_HEADER_SIZE + len, (uint32_t)len);
    b->len = total;
    if (carved)
        rtmp_carver_trim(&g->carver, b);
    return b;
}

/* The tag of cached message e: a reference to the one kept with it, made
 * from its payload when missing.  NULL when it has none, or on
 * OOM.  The caller unrefs. */
static rtmp_buf *entry_flv(rtmp_group *g, entry *e)
{
    if (e->flv)
        return rtmp_buf_ref(e->flv);
    uint8_t *copy;
    const uint8_t *p = entry_payload(e, &copy);
    if (p)
        e->flv = flv_tag(g, !in_gop(g, e), &e->h, p);
    free(copy);
    return rtmp_buf_ref(e->flv);
}

/* Queue tag b (a buffer of flv_tag's, or of the FLV header) to p: the
 * tag, or for a WebSocket player its frame. */
static int flv_push(rtmp_flv_player *p, rtmp_buf *b)
{
    size_t tag = b->len - RTMP_GROUP_WS_ROOM;
    size_t off = RTMP_GROUP_WS_ROOM - (p->ws ? rtmp_ws_frame_header_len(tag) : 0);
    return rtmp_outq_push(&p->q, b, off, b->len - off);
}

/* The FLV header's flags: audio and video as the cached configurations
 * and GOP have them; both when the cache holds neither yet. */
static uint8_t flv_flags(const rtmp_group *g)
{
    uint8_t f = 0;
    for (size_t i = 1; i < CACHE_SLOTS(g); i++) {
        const entry *e = cache_at(g, i);
        if (e)
            f |= e->h.type == RTMP_MSG_AUDIO ? RTMP_FLV_FLAG_AUDIO : e->h.type == RTMP_MSG_VIDEO ? RTMP_FLV_FLAG_VIDEO : 0;
    }
    return f ? f : RTMP_FLV_FLAG_AUDIO | RTMP_FLV_FLAG_VIDEO;
}

/* Let go of the i-th player (p->close with how and reason). */
static void flv_drop(rtmp_group *g, size_t i, const char *reason, int how)
{
    rtmp_flv_player *p = g->fp[i];
    g->fp[i] = g->fp[--g->nfp];
    p->group = NULL;
    if (p->close)
        p->close(p->ud, reason, how);
}

/* The bytes of p's late-join burst it has not taken yet. */
static size_t flv_exempt(const rtmp_flv_player *p)
{
    if (p->exempt_end <= p->written)
        return 0;
    uint64_t e = p->exempt_end - p->written;
    return e < p->q.bytes ? (size_t)e : p->q.bytes;
}

int rtmp_group_add_flv(rtmp_group *g, rtmp_flv_player *p)
{
    if (g->nfp == g->fp_cap) {
        size_t cap = g->fp_cap ? g->fp_cap * 2 : 4;
        rtmp_flv_player **fp = realloc(g->fp, cap * sizeof *fp);
        if (!fp)
            return RTMP_ERR_NOMEM;
        g->fp = fp;
        g->fp_cap = cap;
    }
    /* the FLV header: the player's own 13 bytes (no media in them) */
    rtmp_buf *start = rtmp_buf_new(RTMP_GROUP_WS_ROOM + RTMP_FLV_START_SIZE);
    if (!start)
        return RTMP_ERR_NOMEM;
    uint8_t ws[10];
    size_t wl = rtmp_ws_frame_header(ws, RTMP_WS_BINARY, RTMP_FLV_START_SIZE);
    memcpy(start->data + RTMP_GROUP_WS_ROOM - wl, ws, wl);
    rtmp_flv_put_start(start->data + RTMP_GROUP_WS_ROOM, flv_flags(g));
    start->len = RTMP_GROUP_WS_ROOM + RTMP_FLV_START_SIZE;
    int rc = flv_push(p, start);
    rtmp_buf_unref(start);
    if (rc < 0)
        return rc;
    rtmp_mediaq_init(&p->mq, &p->policy);
    size_t sent = 0;
    for (size_t i = 0; g->cfg.cache && i < CACHE_SLOTS(g); i++) {
        entry *e = cache_at(g, i);
        if (!e || (p->legacy && !e->legacy))
            continue;
        rtmp_buf *b = entry_flv(g, e);
        if (b && flv_push(p, b) == 0)
            sent++;
        rtmp_buf_unref(b);
    }
    p->exempt_end = p->written + p->q.bytes;
    p->group = g;
    g->fp[g->nfp++] = p;
    if (sent)
        rtmp_log(RTMP_LOG_DEBUG, p->id, p->peer, "late join (FLV): %zu cached messages", sent);
    if (p->output)
        p->output(p->ud);
    return 0;
}

void rtmp_group_remove_flv(rtmp_flv_player *p)
{
    rtmp_group *g = p->group;
    if (!g)
        return;
    for (size_t i = 0; i < g->nfp; i++)
        if (g->fp[i] == p) {
            g->fp[i] = g->fp[--g->nfp];
            break;
        }
    p->group = NULL;
}

size_t rtmp_group_flv_count(const rtmp_group *g)
{
    return g->nfp;
}

const rtmp_flv_player *rtmp_group_flv_player(const rtmp_group *g, size_t i)
{
    return i < g->nfp ? g->fp[i] : NULL;
}

size_t rtmp_group_end_flv(rtmp_group *g, const char *reason)
{
    size_t n = g->nfp;
    while (g->nfp)
        flv_drop(g, g->nfp - 1, reason, RTMP_FLV_END);
    return n;
}

int rtmp_group_end_flv_id(rtmp_group *g, unsigned long id, const char *reason)
{
    for (size_t i = 0; i < g->nfp; i++)
        if (g->fp[i]->id == id) {
            flv_drop(g, i, reason, RTMP_FLV_END);
            return 1;
        }
    return 0;
}

void rtmp_flv_player_wrote(rtmp_flv_player *p, size_t n)
{
    rtmp_outq_consume(&p->q, n);
    p->written += n;
}

void rtmp_flv_player_release(rtmp_flv_player *p)
{
    rtmp_group_remove_flv(p);
    rtmp_outq_clear(&p->q);
    rtmp_mediaq_free(&p->mq);
}

/* Fan a message out to the FLV players (after the RTMP members: h, cls
 * and legacy_ok as they had it); kept: the cache entry that holds it, if
 * any, which keeps its tag.  The tag is made once, for the first player
 * that takes it. */
static void flv_fan_out(rtmp_group *g, const rtmp_msg_hdr *hin, const uint8_t *payload, int cls, int legacy_ok,
                        entry *kept, double now)
{
    rtmp_msg_hdr h = *hin;
    h.stream_id = 1; /* the policy measures media time per stream id: one here */
    rtmp_buf *tag = NULL;
    int made = 0;
    for (size_t i = 0; i < g->nfp;) {
        rtmp_flv_player *p = g->fp[i];
        if (p->legacy && !legacy_ok) {
            i++;
            continue;
        }
        if (p->policy.max_bytes || p->policy.max_time > 0) {
            size_t exempt = flv_exempt(p);
            int rc = rtmp_mediaq_offer(&p->mq, &h, cls, p->written + exempt, p->q.bytes - exempt, now);
            if (rc != RTMP_MEDIAQ_SEND || p->mq.event != RTMP_MEDIAQ_EV_NONE) {
                char reason[256];
                int v = verdict(&p->mq, rc, now, p->id, p->peer, reason, sizeof reason);
                if (v < 0) {
                    flv_drop(g, i, reason, RTMP_FLV_DROP);
                    continue;
                }
                if (v == 0) {
                    i++;
                    continue;
                }
            }
        }
        if (!made) {
            made = 1;
            if (kept && !kept->flv) /* the cache keeps the tag, made from the payload at hand */
                kept->flv = flv_tag(g, !in_gop(g, kept), &h, payload);
            tag = kept ? rtmp_buf_ref(kept->flv) : flv_tag(g, 0, &h, payload);
        }
        if (!tag)
            break; /* no tag for this message (or OOM): none of them gets it */
        if (flv_push(p, tag) < 0) {
            i++;
            continue;
        }
        if (cls != RTMP_MEDIA_CLASS_KEEP && (p->policy.max_bytes || p->policy.max_time > 0))
            rtmp_mediaq_queued(&p->mq, &h, cls, p->written + p->q.bytes);
        if (p->max_output && p->q.bytes - flv_exempt(p) > p->max_output) {
            char reason[96];
            snprintf(reason, sizeof reason, "output queue over %zu bytes (slow reader)", p->max_output);
            flv_drop(g, i, reason, RTMP_FLV_DROP);
            continue;
        }
        if (p->output)
            p->output(p->ud);
        i++;
    }
    rtmp_buf_unref(tag);
}

/* ---- fan-out ---- */

/* Prefetch ahead of member i, in three steps so that each reads only what
 * an earlier step fetched: member i + 8's pointer to its connection,
 * i + 4's connection and slow-reader queue pointer, i + 2's session, the
 * connection's owner and the queue.  (The first members of a message get
 * nothing: small groups gain little.)  With hundreds of players each
 * one's state has left the caches since the last message; fetched one by
 * one, each first touch stalls in turn.  A member dropped meanwhile only
 * makes a prefetch useless: a slot stays readable while its member is in
 * the group, and a prefetch never faults. */
static void fan_prefetch(const rtmp_group *g, size_t i)
{
    if (i + 8 < g->n)
        __builtin_prefetch(g->m[i + 8].conn);
    if (i + 4 < g->n) {
        const rtmp_conn_core *c = *g->m[i + 4].conn;
        if (c)
            rtmp_conn_core_prefetch(c);
        __builtin_prefetch(g->m[i + 4].mq);
    }
    if (i + 2 < g->n) {
        const rtmp_conn_core *c = *g->m[i + 2].conn;
        if (c)
            rtmp_conn_core_prefetch_next(c);
        if (*g->m[i + 2].mq)
            __builtin_prefetch(*g->m[i + 2].mq);
    }
}

/* to_legacy: whether legacy members get it (1, 0), or -1: cfg.legacy decides. */
static int fan_out(rtmp_group *g, const rtmp_msg_hdr *hin, const uint8_t *payload, rtmp_buf *held, double now,
                   int is_meta, int to_legacy)
{
    rtmp_msg_hdr h = *hin;
    h.fmt = RTMP_FMT_AUTO;
    rtmp_media m;
    int media = h.type == RTMP_MSG_AUDIO || h.type == RTMP_MSG_VIDEO;
    int prc = -1, cls = RTMP_MEDIA_CLASS_KEEP;
    if (media) {
        prc = rtmp_media_parse(&m, h.type, payload, h.length);
        cls = rtmp_media_class(&m); /* the same for every member: once per message */
    }
    /* legacy members get it: decided once per message (the media model
     * says whether it is audio or video in an enhanced form) */
    int legacy_ok = to_legacy >= 0 ? to_legacy
                  : g->cfg.legacy == RTMP_GROUP_LEGACY_ALL || !media || !m.enhanced;
    entry *slot = NULL, *stored = NULL; /* stored: slot, once it holds this message */
    if (g->cfg.cache) {
        if (is_meta)
            slot = &g->meta;
        else if (media)
            slot = cache_slot(g, &h, &m, prc);
    }
    int lasting = slot && !in_gop(g, slot);

    chunked keys[SEND_KEYS];
    int nkeys = 0, reached = 0;
    for (size_t i = 0; i < g->n;) {
        member *mb = &g->m[i];
        rtmp_conn_core *c = *mb->conn;
        if (!c) {
            drop(g, i);
            continue;
        }
        fan_prefetch(g, i);
        i++;
        if (!open_ready(c) || (mb->legacy && !legacy_ok))
            continue;
        h.stream_id = mb->stream_id;
        if (offer(mb, c, &h, cls, now) <= 0)
            continue; /* dropped, or closed as a stalled reader */
        rtmp_session *s = rtmp_conn_core_session(c);
        uint32_t cs = rtmp_writer_chunk_size(rtmp_session_writer(s));
        rtmp_buf *buf = NULL, *uncached = NULL;
        for (int k = 0; k < nkeys && !buf; k++)
            if (keys[k].chunk_size == cs && keys[k].stream_id == h.stream_id)
                buf = keys[k].buf;
        if (!buf) {
            if (chunk(g, lasting, cs, &h, payload, &buf) < 0)
                continue;
            if (nkeys < SEND_KEYS)
                keys[nkeys++] = (chunked){ cs, h.stream_id, buf };
            else
                uncached = buf; /* more distinct keys than the array holds */
        }
        if (rtmp_session_send_chunked(s, &h, buf) >= 0) {
            rtmp_mediaq *q = *mb->mq;
            if (q && cls != RTMP_MEDIA_CLASS_KEEP)
                rtmp_mediaq_queued(q, &h, cls, rtmp_conn_core_written(c) + rtmp_conn_core_pending(c));
            if (rtmp_conn_core_output(c, 1) >= 0)
                reached++;
        }
        rtmp_buf_unref(uncached);
    }
    if (slot && nkeys == 0 && held && held->data == payload && held->len == h.length
        && held->cap - held->len <= held->len / 4 && (!lasting || !held->block)) {
        /* no member took it: the cache keeps the payload's own buffer, not
         * a chunked copy (unless the buffer is much larger than it, or a
         * lasting entry would hold the block it was carved from).  A
         * reader's block holds only what was kept (chunk.c), so the GOP's
         * memory follows gop_bytes as the chunked copies did, plus at most
         * a block */
        entry_set(slot, !lasting, &h, NULL, held);
        stored = slot;
    } else if (slot) {
        /* the cache keeps the chunking the members got (or one of its own) */
        if (nkeys == 0) {
            h.stream_id = g->last_sid;
            rtmp_buf *buf = NULL;
            if (chunk(g, lasting, g->last_cs, &h, payload, &buf) == 0)
                keys[nkeys++] = (chunked){ g->last_cs, g->last_sid, buf };
        }
        if (nkeys > 0) {
            entry_set(slot, !lasting, &h, &keys[0], NULL);
            stored = slot;
            for (int k = 1; k < nkeys && slot->n < ENTRY_KEYS; k++) {
                slot->k[slot->n] = keys[k];
                rtmp_buf_ref(keys[k].buf);
                slot->n++;
            }
            g->last_cs = keys[0].chunk_size;
            g->last_sid = keys[0].stream_id;
        } else if (slot != &g->meta) {
            /* nothing to keep: forget the slot (the GOP's newest, or a configuration) */
            if (!lasting) {
                g->ngop--;
                g->gop_bytes -= h.length;
            }
        }
    }
    if (stored)
        stored->legacy = legacy_ok;
    for (int k = 0; k < nkeys; k++)
        rtmp_buf_unref(keys[k].buf);
    if (g->nfp)
        flv_fan_out(g, &h, payload, cls, legacy_ok, stored, now);
    return reached;
}

int rtmp_group_send(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, double now)
{
    return fan_out(g, h, payload, NULL, now, 0, -1);
}

int rtmp_group_send_held(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_buf *held, double now)
{
    return fan_out(g, h, payload, held, now, 0, -1);
}

int rtmp_group_send_to(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, double now, int legacy)
{
    return fan_out(g, h, payload, NULL, now, 0, legacy);
}

int rtmp_group_metadata(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, double now)
{
    return fan_out(g, h, payload, NULL, now, 1, -1);
}

void rtmp_group_warm(const rtmp_group *g, rtmp_warm *w)
{
    rtmp_warm_add(w, g, offsetof(rtmp_group, nconf));
    if (g->cfg.cache && !g->gop_full && g->ngop < g->gop_cap)
        rtmp_warm_add(w, &g->gop[g->ngop], sizeof g->gop[0]);
}
