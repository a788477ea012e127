/*
 * mp4write.c: the fragmented-MP4 writer (mp4.h).
 *
 * Samples wait in per-track queues until a fragment is cut; a sample's
 * duration is known when the next sample of its track comes, so each
 * track's last sample stays queued for the next fragment (at the end it
 * takes its predecessor's duration).  The moov is written with the first
 * fragment: a track whose sequence start comes after that is left out
 * (counted as late).  Timescales: 90 kHz for video, the sample rate for
 * audio (RTMP's milliseconds convert exactly or to the nearest tick).
 */
#include "mp4.h"
#include "chunk.h"
#include "error.h"
#include "media.h"

#include <stdlib.h>
#include <string.h>

#define TAG RTMP_MP4_TAG

#define DEFAULT_FRAGMENT_MS  1000
#define DEFAULT_MAX_FRAGMENT (32u << 20)
#define VIDEO_TIMESCALE      90000
#define FLAGS_SYNC           0x02000000u /* sample_depends_on 2 (no other sample) */
#define FLAGS_NON_SYNC       0x01010000u /* sample_depends_on 1, sample_is_non_sync_sample */

typedef struct wsample {
    uint64_t dts;             /* ticks */
    uint32_t dur, size;
    int32_t  cts;             /* ticks */
    uint8_t  key;
} wsample;

typedef struct wtrack {
    rtmp_mp4_track t;
    rtmp_buf *config;         /* the configuration box's content (t.config points into it) */
    int      in_moov, started;
    wsample *s;               /* queued samples: s[0 .. n), their bytes in data */
    uint32_t n, cap;
    rtmp_buf *data;
} wtrack;

struct rtmp_mp4_writer {
    rtmp_mp4_writer_opts o;
    unsigned ntracks;
    wtrack   tr[RTMP_MP4_MAX_TRACKS];
    int      moov_written;
    uint32_t seq;             /* mfhd sequence_number of the last moof */
    uint16_t width, height;
    uint32_t frag_start;      /* ms of the fragment's first sample (audio only) */
    int      frag_open;
    size_t   held;            /* bytes queued */
    rtmp_mp4_writer_stats st;
};

/* ---- box writing: appends to *b, the first error kept ---- */

typedef struct bw {
    rtmp_buf **b;
    int err;
} bw;

static size_t bw_pos(const bw *w)
{
    return *w->b ? (*w->b)->len : 0;
}

static void put(bw *w, const void *p, size_t n)
{
    if (!w->err && n && rtmp_buf_append(w->b, p, n) < 0)
        w->err = RTMP_ERR_NOMEM;
}

static void zeros(bw *w, size_t n)
{
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(w, z, k);
        n -= k;
    }
}

static void u8(bw *w, uint32_t v) { uint8_t b = (uint8_t)v; put(w, &b, 1); }
static void u16(bw *w, uint32_t v) { uint8_t b[2]; rtmp_put_be16(b, v); put(w, b, 2); }
static void u24(bw *w, uint32_t v) { uint8_t b[3]; rtmp_put_be24(b, v); put(w, b, 3); }
static void u32(bw *w, uint32_t v) { uint8_t b[4]; rtmp_put_be32(b, v); put(w, b, 4); }
static void u64(bw *w, uint64_t v) { u32(w, (uint32_t)(v >> 32)); u32(w, (uint32_t)v); }

static size_t box_open(bw *w, uint32_t type)
{
    size_t at = bw_pos(w);
    u32(w, 0);
    u32(w, type);
    return at;
}

static size_t full_open(bw *w, uint32_t type, uint8_t version, uint32_t flags)
{
    size_t at = box_open(w, type);
    u8(w, version);
    u24(w, flags);
    return at;
}

static void box_close(bw *w, size_t at)
{
    if (!w->err)
        rtmp_put_be32((*w->b)->data + at, (uint32_t)((*w->b)->len - at));
}

static void matrix(bw *w)
{
    static const uint32_t m[9] = { 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000 };
    for (int i = 0; i < 9; i++)
        u32(w, m[i]);
}

/* An MPEG-4 descriptor tag and its length in the four-byte form. */
static void descr(bw *w, uint8_t tag, size_t len)
{
    u8(w, tag);
    u8(w, 0x80 | (uint32_t)(len >> 21 & 0x7F));
    u8(w, 0x80 | (uint32_t)(len >> 14 & 0x7F));
    u8(w, 0x80 | (uint32_t)(len >> 7 & 0x7F));
    u8(w, (uint32_t)(len & 0x7F));
}

static void esds(bw *w, const wtrack *tr)
{
    size_t dsi = tr->t.config_len;
    size_t dcd = 13 + (dsi ? 5 + dsi : 0);
    size_t at = full_open(w, TAG('e', 's', 'd', 's'), 0, 0);
    descr(w, 3, 3 + 5 + dcd + 5 + 1);   /* ES_Descriptor */
    u16(w, tr->t.id);
    u8(w, 0);
    descr(w, 4, dcd);                   /* DecoderConfigDescriptor */
    u8(w, tr->t.oti);
    u8(w, 0x15);                        /* streamType 5 (audio) << 2 | reserved 1 */
    u24(w, 0);                          /* bufferSizeDB */
    u32(w, 0);                          /* maxBitrate */
    u32(w, 0);                          /* avgBitrate */
    if (dsi) {
        descr(w, 5, dsi);               /* DecoderSpecificInfo */
        put(w, tr->t.config, dsi);
    }
    descr(w, 6, 1);                     /* SLConfigDescriptor: predefined 2 (MP4) */
    u8(w, 2);
    box_close(w, at);
}

static void sample_entry(bw *w, const wtrack *tr)
{
    const rtmp_mp4_codec *c = rtmp_mp4_codec_of(tr->t.codec);
    size_t at = box_open(w, c->entry);
    zeros(w, 6);
    u16(w, 1);                          /* data_reference_index */
    if (tr->t.type == RTMP_MSG_VIDEO) {
        zeros(w, 16);
        u16(w, tr->t.width);
        u16(w, tr->t.height);
        u32(w, 0x00480000);             /* 72 dpi */
        u32(w, 0x00480000);
        u32(w, 0);
        u16(w, 1);                      /* frame_count */
        zeros(w, 32);                   /* compressorname */
        u16(w, 0x0018);                 /* depth */
        u16(w, 0xFFFF);                 /* pre_defined = -1 */
    } else {
        zeros(w, 8);
        u16(w, tr->t.channels);
        u16(w, 16);                     /* samplesize */
        u32(w, 0);
        u32(w, tr->t.sample_rate <= 0xFFFF ? tr->t.sample_rate << 16 : 0);
    }
    if (c->box == TAG('e', 's', 'd', 's')) {
        esds(w, tr);
    } else if (tr->t.config_len) {
        size_t cb = c->box_version >= 0 ? full_open(w, c->box, (uint8_t)c->box_version, 0) : box_open(w, c->box);
        put(w, tr->t.config, tr->t.config_len);
        box_close(w, cb);
    }
    box_close(w, at);
}

static void trak(bw *w, const wtrack *tr)
{
    int video = tr->t.type == RTMP_MSG_VIDEO;
    size_t at = box_open(w, TAG('t', 'r', 'a', 'k'));
    size_t b = full_open(w, TAG('t', 'k', 'h', 'd'), 0, 3); /* enabled, in movie */
    u32(w, 0);
    u32(w, 0);
    u32(w, tr->t.id);
    u32(w, 0);
    u32(w, 0);                          /* duration: the fragments say */
    zeros(w, 8);
    u16(w, 0);                          /* layer */
    u16(w, 0);                          /* alternate_group */
    u16(w, video ? 0 : 0x0100);         /* volume */
    u16(w, 0);
    matrix(w);
    u32(w, (uint32_t)tr->t.width << 16);
    u32(w, (uint32_t)tr->t.height << 16);
    box_close(w, b);
    size_t mdia = box_open(w, TAG('m', 'd', 'i', 'a'));
    b = full_open(w, TAG('m', 'd', 'h', 'd'), 0, 0);
    u32(w, 0);
    u32(w, 0);
    u32(w, tr->t.timescale);
    u32(w, 0);
    u16(w, 0x55C4);                     /* language "und" */
    u16(w, 0);
    box_close(w, b);
    b = full_open(w, TAG('h', 'd', 'l', 'r'), 0, 0);
    u32(w, 0);
    u32(w, video ? TAG('v', 'i', 'd', 'e') : TAG('s', 'o', 'u', 'n'));
    zeros(w, 12);
    put(w, video ? "VideoHandler" : "SoundHandler", 13);
    box_close(w, b);
    size_t minf = box_open(w, TAG('m', 'i', 'n', 'f'));
    if (video) {
        b = full_open(w, TAG('v', 'm', 'h', 'd'), 0, 1);
        zeros(w, 8);
    } else {
        b = full_open(w, TAG('s', 'm', 'h', 'd'), 0, 0);
        zeros(w, 4);
    }
    box_close(w, b);
    size_t dinf = box_open(w, TAG('d', 'i', 'n', 'f'));
    b = full_open(w, TAG('d', 'r', 'e', 'f'), 0, 0);
    u32(w, 1);
    box_close(w, full_open(w, TAG('u', 'r', 'l', ' '), 0, 1)); /* self-contained */
    box_close(w, b);
    box_close(w, dinf);
    size_t stbl = box_open(w, TAG('s', 't', 'b', 'l'));
    b = full_open(w, TAG('s', 't', 's', 'd'), 0, 0);
    u32(w, 1);
    sample_entry(w, tr);
    box_close(w, b);
    static const uint32_t empty[] = { TAG('s', 't', 't', 's'), TAG('s', 't', 's', 'c'), TAG('s', 't', 'c', 'o') };
    for (size_t i = 0; i < 3; i++) {
        b = full_open(w, empty[i], 0, 0);
        u32(w, 0);
        box_close(w, b);
    }
    b = full_open(w, TAG('s', 't', 's', 'z'), 0, 0);
    u32(w, 0);
    u32(w, 0);
    box_close(w, b);
    box_close(w, stbl);
    box_close(w, minf);
    box_close(w, mdia);
    box_close(w, at);
}

static void init_segment(rtmp_mp4_writer *wr, bw *w)
{
    int av1 = 0;
    for (unsigned i = 0; i < wr->ntracks; i++)
        av1 |= wr->tr[i].t.codec == RTMP_MEDIA_AV1;
    size_t at = box_open(w, TAG('f', 't', 'y', 'p'));
    u32(w, TAG('i', 's', 'o', 'm'));
    u32(w, 0x200);
    u32(w, TAG('i', 's', 'o', 'm'));
    u32(w, TAG('i', 's', 'o', '6'));
    u32(w, TAG('m', 'p', '4', '1'));
    if (av1)
        u32(w, TAG('a', 'v', '0', '1'));
    box_close(w, at);
    size_t moov = box_open(w, TAG('m', 'o', 'o', 'v'));
    size_t b = full_open(w, TAG('m', 'v', 'h', 'd'), 0, 0);
    u32(w, 0);
    u32(w, 0);
    u32(w, 1000);                       /* timescale */
    u32(w, 0);                          /* duration */
    u32(w, 0x00010000);                 /* rate 1.0 */
    u16(w, 0x0100);                     /* volume 1.0 */
    zeros(w, 10);
    matrix(w);
    zeros(w, 24);
    u32(w, wr->ntracks + 1);            /* next_track_ID */
    box_close(w, b);
    for (unsigned i = 0; i < wr->ntracks; i++)
        trak(w, &wr->tr[i]);
    size_t mvex = box_open(w, TAG('m', 'v', 'e', 'x'));
    for (unsigned i = 0; i < wr->ntracks; i++) {
        b = full_open(w, TAG('t', 'r', 'e', 'x'), 0, 0);
        u32(w, wr->tr[i].t.id);
        u32(w, 1);                      /* default_sample_description_index */
        u32(w, 0);
        u32(w, 0);
        u32(w, 0);
        box_close(w, b);
    }
    box_close(w, mvex);
    box_close(w, moov);
}

/* ---- fragments ---- */

static uint64_t ms_ticks(int64_t ms, uint32_t timescale)
{
    return ms <= 0 ? 0 : (uint64_t)ms * timescale / 1000;
}

/* Write a moof + mdat of the first done[i] samples of each track, then
 * drop them from the queues. */
static int fragment(rtmp_mp4_writer *wr, const uint32_t *done, rtmp_buf **out)
{
    bw w = { out, 0 };
    if (!wr->moov_written) {
        init_segment(wr, &w);
        if (w.err)
            return w.err;
        wr->moov_written = 1;
        wr->st.tracks = wr->ntracks;
        for (unsigned i = 0; i < wr->ntracks; i++)
            wr->tr[i].in_moov = 1;
    }
    size_t data_at[RTMP_MP4_MAX_TRACKS], bytes[RTMP_MP4_MAX_TRACKS], total = 0;
    int any = 0;
    for (unsigned i = 0; i < wr->ntracks; i++) {
        bytes[i] = 0;
        for (uint32_t k = 0; k < done[i]; k++)
            bytes[i] += wr->tr[i].s[k].size;
        any |= done[i] > 0;
    }
    if (!any)
        return 0;
    size_t moof = box_open(&w, TAG('m', 'o', 'o', 'f'));
    size_t b = full_open(&w, TAG('m', 'f', 'h', 'd'), 0, 0);
    u32(&w, ++wr->seq);
    box_close(&w, b);
    for (unsigned i = 0; i < wr->ntracks; i++) {
        const wtrack *tr = &wr->tr[i];
        if (!done[i])
            continue;
        int video = tr->t.type == RTMP_MSG_VIDEO;
        size_t traf = box_open(&w, TAG('t', 'r', 'a', 'f'));
        b = full_open(&w, TAG('t', 'f', 'h', 'd'), 0, 0x020000); /* default-base-is-moof */
        u32(&w, tr->t.id);
        box_close(&w, b);
        b = full_open(&w, TAG('t', 'f', 'd', 't'), 1, 0);
        u64(&w, tr->s[0].dts);
        box_close(&w, b);
        b = full_open(&w, TAG('t', 'r', 'u', 'n'), 1, 0x000701 | (video ? 0x800 : 0));
        u32(&w, done[i]);
        data_at[i] = bw_pos(&w);
        u32(&w, 0);                     /* data_offset, patched below */
        for (uint32_t k = 0; k < done[i]; k++) {
            const wsample *s = &tr->s[k];
            u32(&w, s->dur);
            u32(&w, s->size);
            u32(&w, s->key ? FLAGS_SYNC : FLAGS_NON_SYNC);
            if (video)
                u32(&w, (uint32_t)s->cts);
        }
        box_close(&w, b);
        box_close(&w, traf);
    }
    box_close(&w, moof);
    if (w.err)
        return w.err;
    size_t moof_size = bw_pos(&w) - moof, off = moof_size + 8;
    for (unsigned i = 0; i < wr->ntracks; i++) {
        if (!done[i])
            continue;
        rtmp_put_be32((*out)->data + data_at[i], (uint32_t)off);
        off += bytes[i];
        total += bytes[i];
    }
    u32(&w, (uint32_t)(8 + total));
    u32(&w, TAG('m', 'd', 'a', 't'));
    for (unsigned i = 0; i < wr->ntracks; i++)
        if (bytes[i])
            put(&w, wr->tr[i].data->data, bytes[i]);
    if (w.err)
        return w.err;
    for (unsigned i = 0; i < wr->ntracks; i++) {
        wtrack *tr = &wr->tr[i];
        if (!done[i])
            continue;
        tr->n -= done[i];
        memmove(tr->s, tr->s + done[i], tr->n * sizeof *tr->s);
        if (bytes[i]) {
            tr->data->len -= bytes[i];
            memmove(tr->data->data, tr->data->data + bytes[i], tr->data->len);
        }
        wr->held -= bytes[i];
        wr->st.samples += done[i];
    }
    wr->st.fragments++;
    return 0;
}

/* Cut a fragment of every sample whose duration is known: all of cur's
 * (the track whose next sample came), all but the last of the others;
 * all of them when final (each last sample takes its predecessor's
 * duration). */
static int cut(rtmp_mp4_writer *wr, const wtrack *cur, int final, rtmp_buf **out)
{
    uint32_t done[RTMP_MP4_MAX_TRACKS];
    for (unsigned i = 0; i < wr->ntracks; i++) {
        wtrack *tr = &wr->tr[i];
        done[i] = tr == cur ? tr->n : tr->n ? tr->n - 1 : 0;
        if (final && tr->n) {
            wsample *last = &tr->s[tr->n - 1];
            last->dur = tr->n > 1 ? tr->s[tr->n - 2].dur
                                  : tr->t.type == RTMP_MSG_VIDEO ? VIDEO_TIMESCALE / 25 : tr->t.timescale / 50;
            done[i] = tr->n;
        }
    }
    wr->frag_open = 0;
    return fragment(wr, done, out);
}

static wtrack *find_track(rtmp_mp4_writer *wr, uint8_t type, uint8_t id)
{
    for (unsigned i = 0; i < wr->ntracks; i++)
        if (wr->tr[i].t.type == type && wr->tr[i].t.rtmp_id == id)
            return &wr->tr[i];
    return NULL;
}

/* The video track that cuts fragments: the first one. */
static const wtrack *cutter(const rtmp_mp4_writer *wr)
{
    for (unsigned i = 0; i < wr->ntracks; i++)
        if (wr->tr[i].t.type == RTMP_MSG_VIDEO)
            return &wr->tr[i];
    return NULL;
}

static int add_sample(rtmp_mp4_writer *wr, wtrack *tr, uint32_t ms, int32_t cts_ms, int key, const uint8_t *p,
                      size_t len, rtmp_buf **out)
{
    if (len > UINT32_MAX)
        return RTMP_ERR_MP4_LIMIT;
    if (tr->t.type == RTMP_MSG_VIDEO && !tr->started && !key) {
        wr->st.dropped++;               /* nothing decodes before the first keyframe */
        return 0;
    }
    tr->started = 1;
    if (tr->t.type == RTMP_MSG_VIDEO && key && !tr->in_moov && tr->t.codec == RTMP_MEDIA_VP9)
        rtmp_mp4_video_size(tr->t.codec, NULL, 0, p, len, &tr->t.width, &tr->t.height); /* in its key frames */
    uint64_t dts = ms_ticks(ms, tr->t.timescale);
    if (tr->n) {
        wsample *last = &tr->s[tr->n - 1];
        last->dur = dts > last->dts ? (uint32_t)(dts - last->dts) : 0;
    }
    int rc = 0;
    if ((tr == cutter(wr) && key && tr->n)
        || (!cutter(wr) && wr->frag_open && (int64_t)ms - wr->frag_start >= (int64_t)wr->o.fragment_ms)
        || wr->held + len > wr->o.max_fragment)
        rc = cut(wr, tr, 0, out);
    if (rc < 0)
        return rc;
    if (!wr->frag_open) {
        wr->frag_open = 1;
        wr->frag_start = ms;
    }
    if (tr->n == tr->cap) {
        uint32_t cap = tr->cap ? tr->cap * 2 : 64;
        wsample *s = realloc(tr->s, cap * sizeof *s);
        if (!s)
            return RTMP_ERR_NOMEM;
        tr->s = s;
        tr->cap = cap;
    }
    if (rtmp_buf_append(&tr->data, p, len) < 0)
        return RTMP_ERR_NOMEM;
    wsample *s = &tr->s[tr->n++];
    s->dts = dts;
    s->dur = 0;
    s->size = (uint32_t)len;
    uint64_t pts = ms_ticks((int64_t)ms + cts_ms, tr->t.timescale);
    s->cts = (int32_t)((int64_t)pts - (int64_t)dts);
    s->key = (uint8_t)key;
    wr->held += len;
    return 0;
}

/* A new track of codec for (type, id): its configuration from an RTMP
 * sequence start (seq) or from a frame. */
static int new_track(rtmp_mp4_writer *wr, uint8_t type, uint8_t id, int codec, const uint8_t *p, size_t len,
                     int seq, wtrack **out)
{
    if (wr->ntracks == RTMP_MP4_MAX_TRACKS)
        return RTMP_ERR_MP4_LIMIT;
    wtrack *tr = &wr->tr[wr->ntracks];
    memset(tr, 0, sizeof *tr);
    tr->t.type = type;
    tr->t.rtmp_id = id;
    tr->t.codec = (uint8_t)codec;
    const rtmp_mp4_codec *c = rtmp_mp4_codec_of(codec);
    if (c) {
        tr->t.entry = c->entry;
        tr->t.oti = c->oti;
    }
    int rc = seq ? rtmp_mp4_config_from_rtmp(codec, p, len, &tr->t, &tr->config)
                 : rtmp_mp4_config_from_frame(codec, p, len, &tr->t, &tr->config);
    if (rc < 0) {
        rtmp_buf_unref(tr->config);
        return rc;
    }
    tr->t.config = tr->config ? tr->config->data : NULL;
    tr->t.config_len = tr->config ? tr->config->len : 0;
    tr->t.id = wr->ntracks + 1;
    tr->t.timescale = type == RTMP_MSG_VIDEO ? VIDEO_TIMESCALE : tr->t.sample_rate ? tr->t.sample_rate : 1000;
    /* the picture size: from the configuration, else onMetaData's (the first video track) */
    if (type == RTMP_MSG_VIDEO
        && rtmp_mp4_video_size(codec, tr->t.config, tr->t.config_len, NULL, 0, &tr->t.width, &tr->t.height) < 0
        && !cutter(wr)) {
        tr->t.width = wr->width;
        tr->t.height = wr->height;
    }
    wr->ntracks++;
    *out = tr;
    return 0;
}

/* A sequence start for track (type, id). */
static int seq_start(rtmp_mp4_writer *wr, uint8_t type, uint8_t id, int codec, const uint8_t *p, size_t len)
{
    const rtmp_mp4_codec *c = rtmp_mp4_codec_of(codec);
    if (!c)
        return RTMP_ERR_MP4_CODEC;
    if (c->seq_start != RTMP_MP4_SEQ_CONFIG)
        return 0;                       /* the track begins with its first frame, which configures it */
    wtrack *tr = find_track(wr, type, id);
    if (tr && tr->t.codec == codec) {
        rtmp_mp4_track t = tr->t;
        rtmp_buf *cfg = NULL;
        int rc = rtmp_mp4_config_from_rtmp(codec, p, len, &t, &cfg);
        int same = rc >= 0 && (cfg ? cfg->len : 0) == tr->t.config_len
                && (!cfg || memcmp(cfg->data, tr->t.config, cfg->len) == 0);
        if (rc >= 0 && !same && !tr->in_moov && !tr->n) {
            rtmp_buf_unref(tr->config);     /* not written yet: the new one counts */
            tr->config = cfg;
            tr->t = t;
            tr->t.config = cfg ? cfg->data : NULL;
            tr->t.config_len = cfg ? cfg->len : 0;
            return 0;
        }
        rtmp_buf_unref(cfg);
        if (rc < 0)
            return rc;
        if (!same)
            wr->st.ignored++;           /* a new configuration once written: kept the first */
        return 0;
    }
    if (tr || wr->moov_written) {
        wr->st.ignored++;
        return 0;
    }
    return new_track(wr, type, id, codec, p, len, 1, &tr);
}

int rtmp_mp4_writer_message(rtmp_mp4_writer *wr, uint8_t type, uint32_t timestamp, const uint8_t *p,
                            size_t len, rtmp_buf **out)
{
    if (type != RTMP_MSG_AUDIO && type != RTMP_MSG_VIDEO)
        return 0;
    rtmp_media m;
    int rc = rtmp_media_parse(&m, type, p, len);
    if (rc < 0)
        return rc;
    if (m.packet == RTMP_MEDIA_SEQ_START) {
        for (unsigned i = 0; i < m.ntracks; i++) {
            const rtmp_media_track *t = &m.track[i];
            rc = seq_start(wr, type, t->id, t->codec, p + t->offset, t->size);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (m.packet != RTMP_MEDIA_CODED_FRAMES && m.packet != RTMP_MEDIA_CODED_FRAMES_X) {
        wr->st.ignored++;
        return 0;
    }
    int key = type == RTMP_MSG_AUDIO || rtmp_media_is_keyframe(&m);
    for (unsigned i = 0; i < m.ntracks; i++) {
        const rtmp_media_track *t = &m.track[i];
        const uint8_t *data = p + t->offset;
        wtrack *tr = find_track(wr, type, t->id);
        const rtmp_mp4_codec *c = rtmp_mp4_codec_of(t->codec);
        if (!tr && c && c->seq_start != RTMP_MP4_SEQ_CONFIG && !wr->moov_written && t->size) {
            rc = new_track(wr, type, t->id, t->codec, data, t->size, 0, &tr);
            if (rc == RTMP_ERR_MP4_CONFIG) {
                wr->st.dropped++;       /* no frame header there: wait for one */
                continue;
            }
            if (rc < 0)
                return rc;
        }
        if (!tr || tr->t.codec != t->codec) {
            if (!c)
                wr->st.ignored++;
            else if (wr->moov_written)
                wr->st.late++;
            else
                wr->st.dropped++;
            continue;
        }
        if (!tr->in_moov && wr->moov_written) {
            wr->st.late++;
            continue;
        }
        if ((rc = add_sample(wr, tr, timestamp, t->cts, key, data, t->size, out)) < 0)
            return rc;
    }
    return 0;
}

rtmp_mp4_writer *rtmp_mp4_writer_new(const rtmp_mp4_writer_opts *opts)
{
    rtmp_mp4_writer *wr = calloc(1, sizeof *wr);
    if (!wr)
        return NULL;
    wr->o.fragment_ms = opts && opts->fragment_ms ? opts->fragment_ms : DEFAULT_FRAGMENT_MS;
    wr->o.max_fragment = opts && opts->max_fragment ? opts->max_fragment : DEFAULT_MAX_FRAGMENT;
    return wr;
}

void rtmp_mp4_writer_free(rtmp_mp4_writer *wr)
{
    if (!wr)
        return;
    for (unsigned i = 0; i < wr->ntracks; i++) {
        free(wr->tr[i].s);
        rtmp_buf_unref(wr->tr[i].data);
        rtmp_buf_unref(wr->tr[i].config);
    }
    free(wr);
}

void rtmp_mp4_writer_dimensions(rtmp_mp4_writer *wr, uint16_t width, uint16_t height)
{
    wr->width = width;
    wr->height = height;
    for (unsigned i = 0; i < wr->ntracks; i++) {
        wtrack *tr = &wr->tr[i];
        if (tr->t.type == RTMP_MSG_VIDEO && !tr->in_moov && tr == cutter(wr) && tr->t.width == 0) {
            tr->t.width = width;
            tr->t.height = height;
        }
    }
}

int rtmp_mp4_writer_finish(rtmp_mp4_writer *wr, rtmp_buf **out)
{
    if (wr->ntracks == 0)
        return 0;
    return cut(wr, NULL, 1, out);
}

void rtmp_mp4_writer_stats_get(const rtmp_mp4_writer *wr, rtmp_mp4_writer_stats *st)
{
    *st = wr->st;
}
