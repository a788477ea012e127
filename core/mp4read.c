/*
 * mp4read.c: the sans-I/O MP4 reader (mp4.h).
 *
 * The top level is walked box header by box header (16 bytes asked for
 * each); the moov is asked for whole and kept (the sample tables are read
 * in place, through one cursor per track); after its samples, each moof
 * is asked for whole and its samples follow.  Samples of several tracks
 * (or trafs) come out by decode time on the movie's timeline.
 */
#include "mp4.h"
#include "chunk.h"
#include "error.h"
#include "media.h"

#include <stdlib.h>
#include <string.h>

#define TAG RTMP_MP4_TAG

#define DEFAULT_MAX_BOX    (64u << 20)
#define DEFAULT_MAX_SAMPLE (64u << 20)
#define MAX_TRAFS          (2 * RTMP_MP4_MAX_TRACKS)
#define MAX_IDS            64   /* track ids remembered (tracks that are not audio or video too) */
#define NON_SYNC           0x00010000u /* sample_is_non_sync_sample in sample flags */

enum { S_HEAD, S_HEAD_WAIT, S_BOX_WAIT, S_STBL, S_FRAG, S_END, S_ERROR };

/* A table of n entries starting at p (in the held moov). */
typedef struct table {
    const uint8_t *p;
    uint32_t n;
} table;

typedef struct rtrack {
    rtmp_mp4_track t;
    /* the sample tables */
    table    stts, ctts, stss, stsc, stco;
    int      co64;
    const uint8_t *stsz;      /* entries, or NULL when every sample has stsz_const bytes */
    uint32_t stsz_const, nsamples;
    uint8_t  stsz_bits;       /* 32 (stsz) or 4, 8, 16 (stz2) */
    /* the cursor: the next sample */
    uint32_t i;
    uint32_t stts_i, stts_left, ctts_i, ctts_left, stss_i, stsc_i, chunk, chunk_left;
    uint64_t dts, off;
    /* fragments */
    uint32_t trex_dur, trex_size, trex_flags;
    uint64_t frag_dts;        /* decode time after the last sample of the track read so far */
    int      has_next;
    rtmp_mp4_sample next;
} rtrack;

typedef struct rtraf {
    unsigned track;
    const uint8_t *p;         /* the traf's body in the held moof */
    size_t   len, pos;        /* pos: the next child box to look at */
    uint64_t base;            /* base data offset */
    uint32_t def_dur, def_size, def_flags;
    uint64_t dts, data;       /* the next sample's decode time and file offset */
    int      truns;           /* truns started */
    /* the trun being read */
    const uint8_t *e;
    uint32_t left, flags, first_flags, index;
    int      has_first_flags;
    int      has_next;
    rtmp_mp4_sample next;
} rtraf;

struct rtmp_mp4_reader {
    rtmp_mp4_limits lim;
    uint64_t size;
    int      state, err;
    uint32_t err_box;
    uint64_t err_off;
    uint64_t pos;             /* the next top-level box */
    uint64_t need_off;
    size_t   need_len;
    uint8_t *buf;             /* bytes fed: a header, or the box asked for */
    size_t   buf_len, buf_cap;
    int      fed;
    uint32_t want;            /* the box asked for whole: moov or moof */
    uint8_t *moov;
    size_t   moov_len;
    uint64_t moov_off, after_moov;
    uint32_t movie_ts;
    uint64_t movie_dur, frag_dur;
    int      fragmented, moov_done;
    unsigned ntracks, nids;
    uint32_t ids[MAX_IDS];    /* every trak's id, audio/video or not */
    rtrack   tr[RTMP_MP4_MAX_TRACKS];
    uint64_t moof_off, moof_body; /* where the moof starts, where its body (held in buf) starts */
    unsigned ntrafs;
    rtraf    traf[MAX_TRAFS];
};

/* ---- boxes ---- */

typedef struct box {
    uint32_t type;
    const uint8_t *head;      /* where the box starts */
    const uint8_t *body;
    size_t len;               /* body bytes */
} box;

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)rtmp_get_be32(p) << 32 | rtmp_get_be32(p + 4);
}

/* The next box in p[*pos .. len): 1 (b filled, *pos after it), 0 at the
 * end, RTMP_ERR_MP4_BOX (a size below the header or past len). */
static int next_box(const uint8_t *p, size_t len, size_t *pos, box *b)
{
    if (*pos >= len)
        return 0;
    size_t left = len - *pos;
    const uint8_t *q = p + *pos;
    b->head = q;
    b->type = 0;
    if (left < 8)
        return RTMP_ERR_MP4_BOX;
    uint64_t size = rtmp_get_be32(q);
    size_t hdr = 8;
    b->type = rtmp_get_be32(q + 4);
    if (size == 1) {
        if (left < 16)
            return RTMP_ERR_MP4_BOX;
        size = get_be64(q + 8);
        hdr = 16;
    } else if (size == 0) {
        size = left;
    }
    if (size < hdr || size > left)
        return RTMP_ERR_MP4_BOX;
    b->body = q + hdr;
    b->len = (size_t)size - hdr;
    *pos += (size_t)size;
    return 1;
}

static int fail(rtmp_mp4_reader *r, int code, uint32_t box_type, uint64_t off)
{
    if (r->state != S_ERROR) {
        r->err = code;
        r->err_box = box_type;
        r->err_off = off;
        r->state = S_ERROR;
    }
    return code;
}

/* The file offset of a pointer into the held moov or moof. */
static uint64_t off_of(const rtmp_mp4_reader *r, const uint8_t *p)
{
    if (r->moov && p >= r->moov && p <= r->moov + r->moov_len)
        return r->moov_off + (uint64_t)(p - r->moov);
    if (r->buf && p >= r->buf && p <= r->buf + r->buf_len)
        return r->moof_body + (uint64_t)(p - r->buf);
    return 0;
}

static int fail_at(rtmp_mp4_reader *r, int code, const box *b)
{
    return fail(r, code, b->type, off_of(r, b->head));
}

/* The first child of type `type` in p[0 .. len): 1 found, 0 none, < 0. */
static int find_box(const uint8_t *p, size_t len, uint32_t type, box *out)
{
    size_t pos = 0;
    box b;
    int rc;
    while ((rc = next_box(p, len, &pos, &b)) > 0) {
        if (b.type == type) {
            *out = b;
            return 1;
        }
    }
    if (rc < 0)
        *out = b;
    return rc;
}

/* A table of n entries of esize bytes at p[at ..] inside a body of len
 * bytes: 0 or RTMP_ERR_MP4_TABLE. */
static int table_at(table *t, const uint8_t *body, size_t len, size_t at, size_t esize)
{
    if (len < at + 4)
        return RTMP_ERR_MP4_TABLE;
    t->n = rtmp_get_be32(body + at);
    t->p = body + at + 4;
    if ((uint64_t)t->n * esize > len - at - 4)
        return RTMP_ERR_MP4_TABLE;
    return 0;
}

/* ---- moov ---- */

/* Ticks to microseconds (v may be negative), saturating: a lying file
 * may give any value. */
static int64_t ticks_us(int64_t v, uint32_t ts)
{
    const int64_t lim = INT64_MAX / 1000000 - 1;
    int64_t sec = v / (int64_t)ts;
    if (sec > lim || sec < -lim)
        return sec > 0 ? lim * 1000000 : -lim * 1000000;
    return sec * 1000000 + v % (int64_t)ts * 1000000 / (int64_t)ts;
}

/* dts + shift, saturating. */
static int64_t shifted(uint64_t dts, int64_t shift)
{
    int64_t v = dts > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)dts, out;
    if (__builtin_add_overflow(v, shift, &out))
        return shift > 0 ? INT64_MAX : INT64_MIN;
    return out;
}

/* esds: the objectTypeIndication and the DecoderSpecificInfo. */
static int descr_len(const uint8_t *p, size_t len, size_t *pos, size_t *out)
{
    size_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (*pos >= len)
            return RTMP_ERR_MP4_CONFIG;
        uint8_t c = p[(*pos)++];
        v = v << 7 | (c & 0x7F);
        if (!(c & 0x80)) {
            if (v > len - *pos)
                return RTMP_ERR_MP4_CONFIG;
            *out = v;
            return 0;
        }
    }
    return RTMP_ERR_MP4_CONFIG;
}

static int parse_esds(const uint8_t *p, size_t len, rtmp_mp4_track *t)
{
    size_t pos = 4, n;                  /* after the FullBox header */
    if (len < 4 || pos >= len || p[pos++] != 3 || descr_len(p, len, &pos, &n) < 0 || n < 3)
        return RTMP_ERR_MP4_CONFIG;
    size_t end = pos + n;
    uint8_t flags = p[pos + 2];
    pos += 3;                           /* ES_ID, flags */
    if (flags & 0x80)
        pos += 2;                       /* dependsOn_ES_ID */
    if (flags & 0x40) {                 /* URL */
        if (pos >= end)
            return RTMP_ERR_MP4_CONFIG;
        pos += 1 + (size_t)p[pos];
    }
    if (flags & 0x20)
        pos += 2;                       /* OCR_ES_Id */
    if (pos >= end || p[pos++] != 4 || descr_len(p, end, &pos, &n) < 0 || n < 13)
        return RTMP_ERR_MP4_CONFIG;
    t->oti = p[pos];
    size_t dend = pos + n;
    pos += 13;
    if (pos < dend && p[pos] == 5) {
        pos++;
        if (descr_len(p, dend, &pos, &n) < 0)
            return RTMP_ERR_MP4_CONFIG;
        t->config = p + pos;
        t->config_len = n;
    }
    return 0;
}

/* stsd's first sample entry: codec, dimensions or audio format, the
 * configuration box. */
static int parse_stsd(rtmp_mp4_reader *r, rtrack *tr, const box *stsd)
{
    rtmp_mp4_track *t = &tr->t;
    if (stsd->len < 8 || rtmp_get_be32(stsd->body + 4) == 0)
        return fail_at(r, RTMP_ERR_MP4_CONFIG, stsd);
    size_t pos = 8;
    box e;
    int rc = next_box(stsd->body, stsd->len, &pos, &e);
    if (rc <= 0)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_CONFIG, rc < 0 ? &e : stsd);
    t->entry = e.type;
    size_t kids;
    if (t->type == RTMP_MSG_VIDEO) {
        if (e.len < 78)
            return fail_at(r, RTMP_ERR_MP4_CONFIG, &e);
        t->width = (uint16_t)rtmp_get_be16(e.body + 24);
        t->height = (uint16_t)rtmp_get_be16(e.body + 26);
        kids = 78;
    } else {
        if (e.len < 28)
            return fail_at(r, RTMP_ERR_MP4_CONFIG, &e);
        unsigned version = rtmp_get_be16(e.body + 8);
        t->channels = (uint16_t)rtmp_get_be16(e.body + 16);
        t->sample_rate = rtmp_get_be32(e.body + 24) >> 16;
        kids = version == 1 ? 44 : version == 2 ? 64 : 28;
        if (e.len < kids)
            return fail_at(r, RTMP_ERR_MP4_CONFIG, &e);
    }
    const uint8_t *cp = e.body + kids;
    size_t clen = e.len - kids;
    box c;
    if (e.type == TAG('m', 'p', '4', 'a')) {
        rc = find_box(cp, clen, TAG('e', 's', 'd', 's'), &c);
        if (rc < 0)
            return fail_at(r, rc, &c);
        if (rc > 0 && parse_esds(c.body, c.len, t) < 0)
            return fail_at(r, RTMP_ERR_MP4_CONFIG, &c);
    }
    const rtmp_mp4_codec *codec = rtmp_mp4_codec_of_entry(e.type, t->oti);
    if (!codec || rtmp_media_codec_type(codec->codec) != t->type)
        return 0;                       /* listed as an unknown codec */
    t->codec = codec->codec;
    if (codec->box == TAG('e', 's', 'd', 's')) {
        rtmp_mp4_config_params(t);      /* the AudioSpecificConfig over the template fields */
        return 0;
    }
    rc = find_box(cp, clen, codec->box, &c);
    if (rc < 0)
        return fail_at(r, rc, &c);
    if (rc == 0)
        return 0;                       /* no configuration: said when it is needed */
    size_t skip = codec->box_version >= 0 ? 4 : 0;
    if (c.len < skip)
        return fail_at(r, RTMP_ERR_MP4_CONFIG, &c);
    t->config = c.body + skip;
    t->config_len = c.len - skip;
    if (t->codec == RTMP_MEDIA_OPUS && rtmp_mp4_config_params(t) < 0)
        return fail_at(r, RTMP_ERR_MP4_CONFIG, &c);
    rtmp_mp4_config_params(t);          /* the configuration over the sample entry's template fields */
    return 0;
}

/* The tables of one stbl, checked against each other. */
static int parse_stbl(rtmp_mp4_reader *r, rtrack *tr, const box *stbl)
{
    size_t pos = 0;
    box b;
    int rc, have_stsz = 0;
    while ((rc = next_box(stbl->body, stbl->len, &pos, &b)) > 0) {
        int trc = 0;
        switch (b.type) {
        case TAG('s', 't', 's', 'd'):
            if ((rc = parse_stsd(r, tr, &b)) < 0)
                return rc;
            break;
        case TAG('s', 't', 't', 's'): trc = table_at(&tr->stts, b.body, b.len, 4, 8); break;
        case TAG('c', 't', 't', 's'): trc = table_at(&tr->ctts, b.body, b.len, 4, 8); break;
        case TAG('s', 't', 's', 's'): trc = table_at(&tr->stss, b.body, b.len, 4, 4); break;
        case TAG('s', 't', 's', 'c'): trc = table_at(&tr->stsc, b.body, b.len, 4, 12); break;
        case TAG('s', 't', 'c', 'o'): trc = table_at(&tr->stco, b.body, b.len, 4, 4); tr->co64 = 0; break;
        case TAG('c', 'o', '6', '4'): trc = table_at(&tr->stco, b.body, b.len, 4, 8); tr->co64 = 1; break;
        case TAG('s', 't', 's', 'z'): {
            table t;
            if (b.len < 8 || (trc = table_at(&t, b.body, b.len, 8, 0)) < 0)
                break;
            tr->stsz_const = rtmp_get_be32(b.body + 4);
            tr->nsamples = t.n;
            tr->stsz_bits = 32;
            tr->stsz = tr->stsz_const ? NULL : t.p;
            if (!tr->stsz_const && (uint64_t)t.n * 4 > b.len - 12)
                trc = RTMP_ERR_MP4_TABLE;
            have_stsz = 1;
            break;
        }
        case TAG('s', 't', 'z', '2'): {
            table t;
            if (b.len < 8 || (trc = table_at(&t, b.body, b.len, 8, 0)) < 0)
                break;
            tr->stsz_bits = b.body[7];
            tr->stsz_const = 0;
            tr->nsamples = t.n;
            tr->stsz = t.p;
            if ((tr->stsz_bits != 4 && tr->stsz_bits != 8 && tr->stsz_bits != 16)
                || ((uint64_t)t.n * tr->stsz_bits + 7) / 8 > b.len - 12)
                trc = RTMP_ERR_MP4_TABLE;
            have_stsz = 1;
            break;
        }
        default:
            break;
        }
        if (trc < 0)
            return fail_at(r, trc, &b);
    }
    if (rc < 0)
        return fail_at(r, rc, &b);
    if (tr->t.entry == 0)
        return fail(r, RTMP_ERR_MP4_BOX, TAG('s', 't', 's', 'd'), off_of(r, stbl->head));
    uint32_t n = tr->nsamples;
    if (!have_stsz || n == 0)
        return 0;                       /* no samples here (a fragmented file) */
    uint64_t off = off_of(r, stbl->head);
    if (!tr->stts.p || !tr->stsc.p || !tr->stco.p)
        return fail(r, RTMP_ERR_MP4_TABLE, !tr->stts.p ? TAG('s', 't', 't', 's') : !tr->stsc.p
                    ? TAG('s', 't', 's', 'c') : TAG('s', 't', 'c', 'o'), off);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < tr->stts.n; i++)
        sum += rtmp_get_be32(tr->stts.p + 8 * (size_t)i);
    if (sum != n)
        return fail(r, RTMP_ERR_MP4_TABLE, TAG('s', 't', 't', 's'), off);
    if (tr->ctts.p) {
        sum = 0;
        for (uint32_t i = 0; i < tr->ctts.n; i++)
            sum += rtmp_get_be32(tr->ctts.p + 8 * (size_t)i);
        if (sum != n)
            return fail(r, RTMP_ERR_MP4_TABLE, TAG('c', 't', 't', 's'), off);
    }
    for (uint32_t i = 0, last = 0; tr->stss.p && i < tr->stss.n; i++) {
        uint32_t s = rtmp_get_be32(tr->stss.p + 4 * (size_t)i);
        if (s <= last || s > n)
            return fail(r, RTMP_ERR_MP4_TABLE, TAG('s', 't', 's', 's'), off);
        last = s;
    }
    /* stsc: runs of chunks from chunk 1, each chunk holding samples, that
     * hold at least every sample */
    uint64_t capacity = 0;
    uint32_t nchunks = tr->stco.n;
    for (uint32_t i = 0; i < tr->stsc.n; i++) {
        const uint8_t *e = tr->stsc.p + 12 * (size_t)i;
        uint32_t first = rtmp_get_be32(e), spc = rtmp_get_be32(e + 4);
        uint32_t next = i + 1 < tr->stsc.n ? rtmp_get_be32(e + 12) : nchunks + 1;
        if ((i == 0 && first != 1) || first > nchunks || next <= first || next > nchunks + 1 || spc == 0)
            return fail(r, RTMP_ERR_MP4_TABLE, TAG('s', 't', 's', 'c'), off);
        capacity += (uint64_t)(next - first) * spc;
    }
    if (capacity < n)
        return fail(r, RTMP_ERR_MP4_TABLE, TAG('s', 't', 's', 'c'), off);
    return 0;
}

/* edts/elst: the ticks added to every decode time. */
static void parse_elst(rtmp_mp4_reader *r, rtrack *tr, const box *edts)
{
    box b;
    if (find_box(edts->body, edts->len, TAG('e', 'l', 's', 't'), &b) <= 0 || b.len < 8)
        return;
    int v1 = b.body[0] == 1;
    table t;
    if (table_at(&t, b.body, b.len, 4, v1 ? 20 : 12) < 0)
        return;
    double delay = 0;
    for (uint32_t i = 0; i < t.n; i++) {
        const uint8_t *e = t.p + (size_t)i * (v1 ? 20 : 12);
        uint64_t dur = v1 ? get_be64(e) : rtmp_get_be32(e);
        int64_t media_time = v1 ? (int64_t)get_be64(e + 8) : (int32_t)rtmp_get_be32(e + 4);
        if (media_time == -1) {         /* an empty edit: the track starts later */
            if (r->movie_ts)
                delay += (double)dur * tr->t.timescale / r->movie_ts;
            continue;
        }
        tr->t.shift = (int64_t)delay - media_time;
        return;
    }
}

static int parse_trak(rtmp_mp4_reader *r, const box *trak)
{
    box tkhd, mdia, b;
    int rc = find_box(trak->body, trak->len, TAG('t', 'k', 'h', 'd'), &tkhd);
    if (rc <= 0)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc < 0 ? &tkhd : trak);
    if (tkhd.len < 4 || tkhd.len < (tkhd.body[0] == 1 ? 24u : 16u))
        return fail_at(r, RTMP_ERR_MP4_BOX, &tkhd);
    uint32_t id = rtmp_get_be32(tkhd.body + (tkhd.body[0] == 1 ? 20 : 12));
    if (r->nids < MAX_IDS)
        r->ids[r->nids++] = id;
    rc = find_box(trak->body, trak->len, TAG('m', 'd', 'i', 'a'), &mdia);
    if (rc <= 0)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc < 0 ? &mdia : trak);
    rc = find_box(mdia.body, mdia.len, TAG('h', 'd', 'l', 'r'), &b);
    if (rc <= 0 || b.len < 12)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc < 0 || rc > 0 ? &b : &mdia);
    uint32_t handler = rtmp_get_be32(b.body + 8);
    if (handler != TAG('v', 'i', 'd', 'e') && handler != TAG('s', 'o', 'u', 'n'))
        return 0;                       /* not audio or video: left out */
    if (r->ntracks == RTMP_MP4_MAX_TRACKS)
        return fail_at(r, RTMP_ERR_MP4_LIMIT, trak);
    rtrack *tr = &r->tr[r->ntracks];
    memset(tr, 0, sizeof *tr);
    tr->t.id = id;
    tr->t.type = handler == TAG('v', 'i', 'd', 'e') ? RTMP_MSG_VIDEO : RTMP_MSG_AUDIO;
    rc = find_box(mdia.body, mdia.len, TAG('m', 'd', 'h', 'd'), &b);
    if (rc <= 0 || b.len < 4 || b.len < (b.body[0] == 1 ? 32u : 20u))
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc < 0 || rc > 0 ? &b : &mdia);
    if (b.body[0] == 1) {
        tr->t.timescale = rtmp_get_be32(b.body + 20);
        tr->t.duration = get_be64(b.body + 24);
    } else {
        tr->t.timescale = rtmp_get_be32(b.body + 12);
        tr->t.duration = rtmp_get_be32(b.body + 16);
    }
    if (tr->t.timescale == 0)
        return fail_at(r, RTMP_ERR_MP4_BOX, &b);
    box minf, stbl;
    rc = find_box(mdia.body, mdia.len, TAG('m', 'i', 'n', 'f'), &minf);
    if (rc <= 0)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc < 0 ? &minf : &mdia);
    rc = find_box(minf.body, minf.len, TAG('s', 't', 'b', 'l'), &stbl);
    if (rc <= 0)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc < 0 ? &stbl : &minf);
    if ((rc = parse_stbl(r, tr, &stbl)) < 0)
        return rc;
    if (find_box(trak->body, trak->len, TAG('e', 'd', 't', 's'), &b) > 0)
        parse_elst(r, tr, &b);
    /* the RTMP track id: the rank among the tracks of its kind */
    for (unsigned i = 0; i < r->ntracks; i++)
        if (r->tr[i].t.type == tr->t.type)
            tr->t.rtmp_id++;
    r->ntracks++;
    return 0;
}

static int parse_moov(rtmp_mp4_reader *r)
{
    size_t pos = 0;
    box b;
    int rc;
    struct { uint32_t id, dur, size, flags; } trex[RTMP_MP4_MAX_TRACKS];
    unsigned ntrex = 0;
    while ((rc = next_box(r->moov, r->moov_len, &pos, &b)) > 0) {
        if (b.type == TAG('m', 'v', 'h', 'd')) {
            if (b.len < 4 || b.len < (b.body[0] == 1 ? 32u : 20u))
                return fail_at(r, RTMP_ERR_MP4_BOX, &b);
            r->movie_ts = rtmp_get_be32(b.body + (b.body[0] == 1 ? 20 : 12));
            r->movie_dur = b.body[0] == 1 ? get_be64(b.body + 24) : rtmp_get_be32(b.body + 16);
        } else if (b.type == TAG('t', 'r', 'a', 'k')) {
            if ((rc = parse_trak(r, &b)) < 0)
                return rc;
        } else if (b.type == TAG('m', 'v', 'e', 'x')) {
            size_t p2 = 0;
            box x;
            r->fragmented = 1;
            while ((rc = next_box(b.body, b.len, &p2, &x)) > 0) {
                if (x.type == TAG('t', 'r', 'e', 'x')) {
                    if (x.len < 24)
                        return fail_at(r, RTMP_ERR_MP4_BOX, &x);
                    if (ntrex < RTMP_MP4_MAX_TRACKS) {
                        trex[ntrex].id = rtmp_get_be32(x.body + 4);
                        trex[ntrex].dur = rtmp_get_be32(x.body + 12);
                        trex[ntrex].size = rtmp_get_be32(x.body + 16);
                        trex[ntrex].flags = rtmp_get_be32(x.body + 20);
                        ntrex++;
                    }
                } else if (x.type == TAG('m', 'e', 'h', 'd') && x.len >= 8) {
                    r->frag_dur = x.body[0] == 1 && x.len >= 12 ? get_be64(x.body + 4) : rtmp_get_be32(x.body + 4);
                }
            }
            if (rc < 0)
                return fail_at(r, rc, &x);
        }
    }
    if (rc < 0)
        return fail_at(r, rc, &b);
    for (unsigned i = 0; i < ntrex; i++) {
        for (unsigned k = 0; k < r->ntracks; k++) {
            rtrack *tr = &r->tr[k];
            if (tr->t.id == trex[i].id) {
                tr->trex_dur = trex[i].dur;
                tr->trex_size = trex[i].size;
                tr->trex_flags = trex[i].flags;
            }
        }
    }
    return 0;
}

/* ---- samples from the sample tables ---- */

static uint32_t stsz_get(const rtrack *tr, uint32_t i)
{
    if (!tr->stsz)
        return tr->stsz_const;
    switch (tr->stsz_bits) {
    case 4: return (tr->stsz[i / 2] >> (i % 2 ? 0 : 4)) & 0x0F;
    case 8: return tr->stsz[i];
    case 16: return rtmp_get_be16(tr->stsz + 2 * (size_t)i);
    default: return rtmp_get_be32(tr->stsz + 4 * (size_t)i);
    }
}

/* Check a sample and fill in its times: 0 or an error code. */
static int finish_sample(rtmp_mp4_reader *r, const rtrack *tr, rtmp_mp4_sample *s)
{
    uint32_t ts = tr->t.timescale;
    if (s->size > r->lim.max_sample)
        return RTMP_ERR_MP4_LIMIT;
    if (s->offset > r->size || s->size > r->size - s->offset)
        return RTMP_ERR_MP4_TRUNCATED;
    s->time_us = ticks_us(shifted(s->dts, tr->t.shift), ts);
    s->cts_us = ticks_us(s->cts, ts);
    return 0;
}

/* The next sample of track k from its tables into tr->next. */
static int stbl_fill(rtmp_mp4_reader *r, unsigned k)
{
    rtrack *tr = &r->tr[k];
    tr->has_next = 0;
    if (tr->i >= tr->nsamples)
        return 0;
    rtmp_mp4_sample *s = &tr->next;
    uint64_t where = r->moov_off;
    if (tr->chunk_left == 0) {
        if (tr->chunk >= tr->stco.n)
            return fail(r, RTMP_ERR_MP4_TABLE, TAG('s', 't', 'c', 'o'), where);
        tr->off = tr->co64 ? get_be64(tr->stco.p + 8 * (size_t)tr->chunk)
                           : rtmp_get_be32(tr->stco.p + 4 * (size_t)tr->chunk);
        tr->chunk++;                    /* 1-based from here */
        while (tr->stsc_i + 1 < tr->stsc.n && tr->chunk >= rtmp_get_be32(tr->stsc.p + 12 * (size_t)(tr->stsc_i + 1)))
            tr->stsc_i++;
        tr->chunk_left = rtmp_get_be32(tr->stsc.p + 12 * (size_t)tr->stsc_i + 4);
    }
    s->track = k;
    s->size = stsz_get(tr, tr->i);
    s->offset = tr->off;
    tr->off += s->size;
    tr->chunk_left--;
    while (tr->stts_left == 0) {        /* the sums were checked: an entry with samples follows */
        tr->stts_left = rtmp_get_be32(tr->stts.p + 8 * (size_t)tr->stts_i);
        tr->stts_i++;
    }
    s->dts = tr->dts;
    s->duration = rtmp_get_be32(tr->stts.p + 8 * (size_t)(tr->stts_i - 1) + 4);
    tr->dts += s->duration;
    tr->stts_left--;
    s->cts = 0;
    if (tr->ctts.p) {
        while (tr->ctts_left == 0) {
            tr->ctts_left = rtmp_get_be32(tr->ctts.p + 8 * (size_t)tr->ctts_i);
            tr->ctts_i++;
        }
        s->cts = (int32_t)rtmp_get_be32(tr->ctts.p + 8 * (size_t)(tr->ctts_i - 1) + 4);
        tr->ctts_left--;
    }
    s->key = 1;
    if (tr->stss.p) {
        s->key = tr->stss_i < tr->stss.n && rtmp_get_be32(tr->stss.p + 4 * (size_t)tr->stss_i) == tr->i + 1;
        if (s->key)
            tr->stss_i++;
    }
    tr->i++;
    tr->frag_dts = tr->dts;
    int rc = finish_sample(r, tr, s);
    if (rc < 0)
        return fail(r, rc, rc == RTMP_ERR_MP4_LIMIT ? TAG('s', 't', 's', 'z') : TAG('s', 't', 'c', 'o'), where);
    tr->has_next = 1;
    return 0;
}

/* ---- fragments ---- */

static int known_id(const rtmp_mp4_reader *r, uint32_t id)
{
    for (unsigned i = 0; i < r->nids; i++)
        if (r->ids[i] == id)
            return 1;
    return 0;
}

/* The fields of a trun header: 0, or RTMP_ERR_MP4_TABLE when its entries
 * run past the box.  *hdr: bytes before the entries. */
static int trun_head(const box *b, uint32_t *flags, uint32_t *count, size_t *hdr, size_t *esize)
{
    if (b->len < 8)
        return RTMP_ERR_MP4_TABLE;
    *flags = rtmp_get_be24(b->body + 1);
    *count = rtmp_get_be32(b->body + 4);
    *hdr = 8 + (*flags & 0x1 ? 4 : 0) + (*flags & 0x4 ? 4 : 0);
    *esize = 4 * (size_t)(!!(*flags & 0x100) + !!(*flags & 0x200) + !!(*flags & 0x400) + !!(*flags & 0x800));
    if (b->len < *hdr || (uint64_t)*count * *esize > b->len - *hdr)
        return RTMP_ERR_MP4_TABLE;
    return 0;
}

/* One traf: its defaults, its decode time, and a pass over its truns
 * that checks them and finds where its data ends (*implicit: the base
 * of the next traf without one). */
static int parse_traf(rtmp_mp4_reader *r, const box *traf, uint64_t *implicit)
{
    box tfhd, b;
    int rc = find_box(traf->body, traf->len, TAG('t', 'f', 'h', 'd'), &tfhd);
    if (rc <= 0 || tfhd.len < 8)
        return fail_at(r, rc < 0 ? rc : RTMP_ERR_MP4_BOX, rc > 0 || rc < 0 ? &tfhd : traf);
    uint32_t flags = rtmp_get_be24(tfhd.body + 1), id = rtmp_get_be32(tfhd.body + 4);
    size_t need = 8 + (flags & 0x1 ? 8 : 0) + (flags & 0x2 ? 4 : 0) + (flags & 0x8 ? 4 : 0)
                + (flags & 0x10 ? 4 : 0) + (flags & 0x20 ? 4 : 0);
    if (tfhd.len < need)
        return fail_at(r, RTMP_ERR_MP4_BOX, &tfhd);
    unsigned k = 0;
    while (k < r->ntracks && r->tr[k].t.id != id)
        k++;
    if (k == r->ntracks)
        return known_id(r, id) ? 0 : fail_at(r, RTMP_ERR_MP4_TABLE, &tfhd);
    if (r->ntrafs == MAX_TRAFS)
        return fail_at(r, RTMP_ERR_MP4_LIMIT, traf);
    rtrack *tr = &r->tr[k];
    rtraf *f = &r->traf[r->ntrafs];
    memset(f, 0, sizeof *f);
    f->track = k;
    f->p = traf->body;
    f->len = traf->len;
    const uint8_t *q = tfhd.body + 8;
    f->base = *implicit;
    if (flags & 0x1) {
        f->base = get_be64(q);
        q += 8;
    } else if (flags & 0x20000) {       /* default-base-is-moof */
        f->base = r->moof_off;
    }
    if (flags & 0x2)
        q += 4;                         /* sample_description_index: one entry is read */
    f->def_dur = flags & 0x8 ? rtmp_get_be32(q) : tr->trex_dur;
    q += flags & 0x8 ? 4 : 0;
    f->def_size = flags & 0x10 ? rtmp_get_be32(q) : tr->trex_size;
    q += flags & 0x10 ? 4 : 0;
    f->def_flags = flags & 0x20 ? rtmp_get_be32(q) : tr->trex_flags;
    f->dts = tr->frag_dts;
    rc = find_box(traf->body, traf->len, TAG('t', 'f', 'd', 't'), &b);
    if (rc < 0)
        return fail_at(r, rc, &b);
    if (rc > 0) {
        if (b.len < 8 || (b.body[0] == 1 && b.len < 12))
            return fail_at(r, RTMP_ERR_MP4_BOX, &b);
        f->dts = b.body[0] == 1 ? get_be64(b.body + 4) : rtmp_get_be32(b.body + 4);
    }
    /* the truns: entries inside their boxes, data inside the file */
    size_t pos = 0;
    uint64_t data = f->base, dts = f->dts;
    int first = 1;
    while ((rc = next_box(traf->body, traf->len, &pos, &b)) > 0) {
        if (b.type != TAG('t', 'r', 'u', 'n'))
            continue;
        uint32_t tflags, count;
        size_t hdr, esize;
        if (trun_head(&b, &tflags, &count, &hdr, &esize) < 0)
            return fail_at(r, RTMP_ERR_MP4_TABLE, &b);
        if (tflags & 0x1) {
            int64_t at = (int64_t)f->base + (int32_t)rtmp_get_be32(b.body + 8);
            if (at < 0)
                return fail_at(r, RTMP_ERR_MP4_TABLE, &b);
            data = (uint64_t)at;
        } else if (first) {
            data = f->base;
        }
        first = 0;
        const uint8_t *e = b.body + hdr;
        for (uint32_t i = 0; i < count; i++, e += esize) {
            const uint8_t *x = e;
            uint32_t dur = f->def_dur, size = f->def_size;
            if (tflags & 0x100)
                dur = rtmp_get_be32(x), x += 4;
            if (tflags & 0x200)
                size = rtmp_get_be32(x);
            dts += dur;
            data += size;
            if (data > r->size)
                return fail_at(r, RTMP_ERR_MP4_TRUNCATED, &b);
        }
    }
    if (rc < 0)
        return fail_at(r, rc, &b);
    tr->frag_dts = dts;
    *implicit = data;
    r->ntrafs++;
    return 0;
}

static int parse_moof(rtmp_mp4_reader *r)
{
    size_t pos = 0;
    box b;
    int rc;
    uint64_t implicit = r->moof_off;
    r->ntrafs = 0;
    while ((rc = next_box(r->buf, r->buf_len, &pos, &b)) > 0)
        if (b.type == TAG('t', 'r', 'a', 'f') && (rc = parse_traf(r, &b, &implicit)) < 0)
            return rc;
    return rc < 0 ? fail_at(r, rc, &b) : 0;
}

/* The next sample of traf j into f->next. */
static int frag_fill(rtmp_mp4_reader *r, unsigned j)
{
    rtraf *f = &r->traf[j];
    f->has_next = 0;
    box b;
    while (f->left == 0) {
        int rc;
        do {
            rc = next_box(f->p, f->len, &f->pos, &b);
        } while (rc > 0 && b.type != TAG('t', 'r', 'u', 'n'));
        if (rc <= 0)
            return 0;                   /* checked by parse_traf: the end */
        size_t hdr, esize;
        trun_head(&b, &f->flags, &f->left, &hdr, &esize);
        const uint8_t *q = b.body + 8;
        if (f->flags & 0x1) {
            f->data = (uint64_t)((int64_t)f->base + (int32_t)rtmp_get_be32(q));
            q += 4;
        } else if (f->truns == 0) {
            f->data = f->base;
        }
        f->has_first_flags = !!(f->flags & 0x4);
        f->first_flags = f->has_first_flags ? rtmp_get_be32(q) : 0;
        f->e = b.body + hdr;
        f->index = 0;
        f->truns++;
    }
    rtrack *tr = &r->tr[f->track];
    rtmp_mp4_sample *s = &f->next;
    const uint8_t *x = f->e;
    uint32_t dur = f->def_dur, size = f->def_size, flags = f->def_flags;
    int32_t cts = 0;
    if (f->flags & 0x100)
        dur = rtmp_get_be32(x), x += 4;
    if (f->flags & 0x200)
        size = rtmp_get_be32(x), x += 4;
    if (f->flags & 0x400)
        flags = rtmp_get_be32(x), x += 4;
    else if (f->index == 0 && f->has_first_flags)
        flags = f->first_flags;
    if (f->flags & 0x800)
        cts = (int32_t)rtmp_get_be32(x), x += 4;
    f->e = x;
    f->index++;
    f->left--;
    s->track = f->track;
    s->dts = f->dts;
    s->cts = cts;
    s->duration = dur;
    s->key = !(flags & NON_SYNC);
    s->offset = f->data;
    s->size = size;
    f->dts += dur;
    f->data += size;
    int rc = finish_sample(r, tr, s);
    if (rc < 0)
        return fail(r, rc, TAG('t', 'r', 'u', 'n'), r->moof_off);
    f->has_next = 1;
    return 0;
}

/* ---- the steps ---- */

rtmp_mp4_reader *rtmp_mp4_reader_new(uint64_t file_size, const rtmp_mp4_limits *lim)
{
    rtmp_mp4_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->size = file_size;
    r->lim.max_box = lim && lim->max_box ? lim->max_box : DEFAULT_MAX_BOX;
    r->lim.max_sample = lim && lim->max_sample ? lim->max_sample : DEFAULT_MAX_SAMPLE;
    r->state = S_HEAD;
    return r;
}

void rtmp_mp4_reader_free(rtmp_mp4_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r->moov);
    free(r);
}

static int need(rtmp_mp4_reader *r, int state, uint64_t off, size_t len)
{
    r->state = state;
    r->need_off = off;
    r->need_len = len;
    r->fed = 0;
    r->buf_len = 0;
    return RTMP_MP4_NEED;
}

/* The top-level box header fed: skip it, or ask for it whole. */
static int top_box(rtmp_mp4_reader *r)
{
    const uint8_t *q = r->buf;
    uint64_t left = r->size - r->pos;
    if (r->buf_len < 8)
        return fail(r, RTMP_ERR_MP4_TRUNCATED, 0, r->pos);
    uint64_t size = rtmp_get_be32(q);
    uint32_t type = rtmp_get_be32(q + 4);
    size_t hdr = 8;
    if (size == 1) {
        if (r->buf_len < 16)
            return fail(r, RTMP_ERR_MP4_TRUNCATED, type, r->pos);
        size = get_be64(q + 8);
        hdr = 16;
    } else if (size == 0) {
        size = left;
    }
    if (size < hdr)
        return fail(r, RTMP_ERR_MP4_BOX, type, r->pos);
    if (size > left)
        return fail(r, RTMP_ERR_MP4_TRUNCATED, type, r->pos);
    uint64_t at = r->pos;
    r->pos += size;
    if ((type == TAG('m', 'o', 'o', 'v') && !r->moov_done) || (type == TAG('m', 'o', 'o', 'f') && r->moov_done)) {
        if (size - hdr > r->lim.max_box)
            return fail(r, RTMP_ERR_MP4_LIMIT, type, at);
        r->want = type;
        if (type == TAG('m', 'o', 'o', 'v'))
            r->moov_off = at + hdr;
        else
            r->moof_off = at, r->moof_body = at + hdr;
        return need(r, S_BOX_WAIT, at + hdr, (size_t)(size - hdr));
    }
    r->state = S_HEAD;
    return 0;
}

/* The smallest next sample among n candidates (tracks or trafs). */
static int pick(rtmp_mp4_reader *r, rtmp_mp4_sample *s, int frag)
{
    int best = -1;
    unsigned n = frag ? r->ntrafs : r->ntracks;
    for (unsigned i = 0; i < n; i++) {
        int has = frag ? r->traf[i].has_next : r->tr[i].has_next;
        const rtmp_mp4_sample *c = frag ? &r->traf[i].next : &r->tr[i].next;
        if (has && (best < 0 || c->time_us < (frag ? r->traf[best].next.time_us : r->tr[best].next.time_us)))
            best = (int)i;
    }
    if (best < 0)
        return 0;
    *s = frag ? r->traf[best].next : r->tr[best].next;
    int rc = frag ? frag_fill(r, (unsigned)best) : stbl_fill(r, (unsigned)best);
    return rc < 0 ? rc : RTMP_MP4_SAMPLE;
}

int rtmp_mp4_read(rtmp_mp4_reader *r, rtmp_mp4_sample *s)
{
    for (;;) {
        int rc;
        switch (r->state) {
        case S_ERROR:
            return r->err;
        case S_END:
            return RTMP_MP4_END;
        case S_HEAD:
            if (r->pos >= r->size) {
                if (!r->moov_done)
                    return fail(r, RTMP_ERR_MP4_NO_MOOV, 0, r->pos);
                r->state = S_END;
                return RTMP_MP4_END;
            }
            return need(r, S_HEAD_WAIT, r->pos, r->size - r->pos < 16 ? (size_t)(r->size - r->pos) : 16);
        case S_HEAD_WAIT:
            if (!r->fed)
                return RTMP_MP4_NEED;
            if ((rc = top_box(r)) != 0)
                return rc;
            break;
        case S_BOX_WAIT:
            if (!r->fed)
                return RTMP_MP4_NEED;
            if (r->buf_len < r->need_len)
                return fail(r, RTMP_ERR_MP4_TRUNCATED, r->want, r->need_off);
            if (r->want == TAG('m', 'o', 'o', 'v')) {
                r->moov = r->buf;
                r->moov_len = r->buf_len;
                r->buf = NULL;
                r->buf_len = r->buf_cap = 0;
                r->moov_done = 1;
                r->after_moov = r->pos;
                if ((rc = parse_moov(r)) < 0)
                    return rc;
                for (unsigned k = 0; k < r->ntracks; k++)
                    if ((rc = stbl_fill(r, k)) < 0)
                        return rc;
                r->state = S_STBL;
                return RTMP_MP4_TRACKS;
            }
            if ((rc = parse_moof(r)) < 0)
                return rc;
            for (unsigned j = 0; j < r->ntrafs; j++)
                if ((rc = frag_fill(r, j)) < 0)
                    return rc;
            r->state = S_FRAG;
            break;
        case S_STBL:
        case S_FRAG:
            rc = pick(r, s, r->state == S_FRAG);
            if (rc != 0)
                return rc;
            if (r->state == S_STBL)
                r->pos = r->after_moov;
            r->state = S_HEAD;
            break;
        default:
            return fail(r, RTMP_ERR_INVAL, 0, 0);
        }
    }
}

void rtmp_mp4_reader_need(const rtmp_mp4_reader *r, uint64_t *offset, size_t *len)
{
    *offset = r->need_off;
    *len = r->need_len;
}

int rtmp_mp4_reader_feed(rtmp_mp4_reader *r, const uint8_t *p, size_t len)
{
    if (len > r->need_len)
        len = r->need_len;
    if (len > r->buf_cap) {
        uint8_t *nb = realloc(r->buf, len);
        if (!nb)
            return fail(r, RTMP_ERR_NOMEM, 0, r->need_off);
        r->buf = nb;
        r->buf_cap = len;
    }
    if (len)
        memcpy(r->buf, p, len);
    r->buf_len = len;
    r->fed = 1;
    return 0;
}

unsigned rtmp_mp4_reader_ntracks(const rtmp_mp4_reader *r)
{
    return r->ntracks;
}

const rtmp_mp4_track *rtmp_mp4_reader_track(const rtmp_mp4_reader *r, unsigned i)
{
    return i < r->ntracks ? &r->tr[i].t : NULL;
}

double rtmp_mp4_reader_duration(const rtmp_mp4_reader *r)
{
    uint64_t d = r->frag_dur > r->movie_dur ? r->frag_dur : r->movie_dur;
    return r->movie_ts ? (double)d / r->movie_ts : 0;
}

int rtmp_mp4_reader_fragmented(const rtmp_mp4_reader *r)
{
    return r->fragmented;
}

void rtmp_mp4_reader_where(const rtmp_mp4_reader *r, uint32_t *box_type, uint64_t *offset)
{
    *box_type = r->state == S_ERROR ? r->err_box : 0;
    *offset = r->state == S_ERROR ? r->err_off : 0;
}
