/*
 * mp4codec.c: the codecs MP4 and RTMP both carry (mp4.h): the one table
 * codec <-> sample entry <-> configuration box, the conversions between a
 * configuration box and an RTMP SequenceStart body, the configuration
 * boxes made from a frame (dac3, dec3; MP3's object type), and the RTMP
 * message bodies made from samples.
 */
#include "mp4.h"
#include "amf0.h"
#include "chunk.h"
#include "error.h"
#include "media.h"

#include <string.h>

#define TAG RTMP_MP4_TAG

#define SEQ_NONE RTMP_MP4_SEQ_NONE
#define SEQ_EMPTY RTMP_MP4_SEQ_EMPTY
#define SEQ_CONFIG RTMP_MP4_SEQ_CONFIG

/* codec, sample entry, another entry read, configuration box, its FullBox
 * version (-1: a plain box), esds objectTypeIndication, SequenceStart */
static const rtmp_mp4_codec rows[] = {
    { RTMP_MEDIA_AVC,  TAG('a', 'v', 'c', '1'), TAG('a', 'v', 'c', '3'), TAG('a', 'v', 'c', 'C'), -1, 0, SEQ_CONFIG },
    { RTMP_MEDIA_HEVC, TAG('h', 'v', 'c', '1'), TAG('h', 'e', 'v', '1'), TAG('h', 'v', 'c', 'C'), -1, 0, SEQ_CONFIG },
    { RTMP_MEDIA_AV1,  TAG('a', 'v', '0', '1'), 0, TAG('a', 'v', '1', 'C'), -1, 0, SEQ_CONFIG },
    { RTMP_MEDIA_VP9,  TAG('v', 'p', '0', '9'), 0, TAG('v', 'p', 'c', 'C'), 1, 0, SEQ_CONFIG },
    { RTMP_MEDIA_VP8,  TAG('v', 'p', '0', '8'), 0, TAG('v', 'p', 'c', 'C'), 1, 0, SEQ_CONFIG },
    { RTMP_MEDIA_AAC,  TAG('m', 'p', '4', 'a'), 0, TAG('e', 's', 'd', 's'), 0, 0x40, SEQ_CONFIG },
    { RTMP_MEDIA_MP3,  TAG('m', 'p', '4', 'a'), TAG('.', 'm', 'p', '3'), TAG('e', 's', 'd', 's'), 0, 0x6B, SEQ_NONE },
    { RTMP_MEDIA_OPUS, TAG('O', 'p', 'u', 's'), 0, TAG('d', 'O', 'p', 's'), -1, 0, SEQ_CONFIG },
    { RTMP_MEDIA_FLAC, TAG('f', 'L', 'a', 'C'), 0, TAG('d', 'f', 'L', 'a'), 0, 0, SEQ_CONFIG },
    { RTMP_MEDIA_AC3,  TAG('a', 'c', '-', '3'), 0, TAG('d', 'a', 'c', '3'), -1, 0, SEQ_EMPTY },
    { RTMP_MEDIA_EAC3, TAG('e', 'c', '-', '3'), 0, TAG('d', 'e', 'c', '3'), -1, 0, SEQ_EMPTY },
};
#define NROWS (sizeof rows / sizeof rows[0])

const rtmp_mp4_codec *rtmp_mp4_codec_of(int codec)
{
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].codec == codec)
            return &rows[i];
    return NULL;
}

/* esds objectTypeIndication: MPEG-4 audio and the MPEG-2 AAC profiles
 * are AAC; MPEG-1 and MPEG-2 audio are MP3. */
static int oti_codec(uint8_t oti)
{
    if (oti == 0x40 || (oti >= 0x66 && oti <= 0x68))
        return RTMP_MEDIA_AAC;
    if (oti == 0x6B || oti == 0x69)
        return RTMP_MEDIA_MP3;
    return RTMP_MEDIA_CODEC_NONE;
}

const rtmp_mp4_codec *rtmp_mp4_codec_of_entry(uint32_t entry, uint8_t oti)
{
    if (entry == TAG('m', 'p', '4', 'a'))
        return rtmp_mp4_codec_of(oti_codec(oti));
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].entry == entry || (rows[i].entry_alt && rows[i].entry_alt == entry))
            return &rows[i];
    return NULL;
}

/* ---- bits ---- */

typedef struct bits {
    const uint8_t *p;
    size_t len, pos; /* pos in bits */
    int over;        /* a read past the end (reads give 0) */
} bits;

static uint32_t getbits(bits *b, unsigned n)
{
    uint32_t v = 0;
    while (n--) {
        if (b->pos >= b->len * 8) {
            b->over = 1;
            v <<= 1;
            continue;
        }
        v = v << 1 | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
        b->pos++;
    }
    return v;
}

/* Exp-Golomb ue(v) (values past 2^31 read as UINT32_MAX: a lie). */
static uint32_t ue(bits *b)
{
    unsigned zeros = 0;
    while (!getbits(b, 1) && !b->over)
        if (++zeros > 31)
            return b->over = 1, UINT32_MAX;
    return zeros ? (uint32_t)((1ull << zeros) - 1 + getbits(b, zeros)) : 0;
}

static void se(bits *b)
{
    ue(b);                              /* only skipped here */
}

/* A NAL unit's payload after its header of hdr bytes, emulation
 * prevention bytes (00 00 03) dropped, into out (at most cap bytes: the
 * fields read here are near the start). */
static size_t rbsp(const uint8_t *nal, size_t len, size_t hdr, uint8_t *out, size_t cap)
{
    size_t n = 0, zeros = 0;
    for (size_t i = hdr; i < len && n < cap; i++) {
        if (zeros >= 2 && nal[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        out[n++] = nal[i];
    }
    return n;
}

#define RBSP_CAP 256

/* H.264 SPS (ISO/IEC 14496-10 7.3.2.1.1): the cropped frame size. */
static int avc_sps_size(const uint8_t *nal, size_t len, uint32_t *w, uint32_t *h)
{
    uint8_t buf[RBSP_CAP];
    bits b = { buf, rbsp(nal, len, 1, buf, sizeof buf), 0, 0 };
    uint32_t profile = getbits(&b, 8), chroma = 1, separate = 0;
    getbits(&b, 16);                    /* constraint flags, level */
    ue(&b);                             /* seq_parameter_set_id */
    if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 || profile == 83
        || profile == 86 || profile == 118 || profile == 128 || profile == 138 || profile == 139
        || profile == 134 || profile == 135) {
        chroma = ue(&b);
        if (chroma == 3)
            separate = getbits(&b, 1);
        ue(&b);                         /* bit depths */
        ue(&b);
        getbits(&b, 1);
        if (getbits(&b, 1)) {           /* seq_scaling_matrix_present_flag: skip the lists */
            for (int i = 0; i < (chroma != 3 ? 8 : 12) && !b.over; i++) {
                if (!getbits(&b, 1))
                    continue;
                int last = 8, next = 8;
                for (int j = 0; j < (i < 6 ? 16 : 64) && next != 0 && !b.over; j++) {
                    uint32_t v = ue(&b);  /* se(v) as its ue(v) code */
                    int delta = v & 1 ? (int)((v + 1) / 2) : -(int)(v / 2);
                    next = (last + delta + 256) % 256;
                    last = next ? next : last;
                }
            }
        }
    }
    ue(&b);                             /* log2_max_frame_num_minus4 */
    uint32_t poc = ue(&b);
    if (poc == 0) {
        ue(&b);
    } else if (poc == 1) {
        getbits(&b, 1);
        se(&b);
        se(&b);
        uint32_t n = ue(&b);
        for (uint32_t i = 0; i < n && !b.over; i++)
            se(&b);
    }
    ue(&b);                             /* max_num_ref_frames */
    getbits(&b, 1);
    uint32_t mbw = ue(&b), mbh = ue(&b), frame_mbs_only = getbits(&b, 1);
    if (!frame_mbs_only)
        getbits(&b, 1);
    getbits(&b, 1);                     /* direct_8x8_inference_flag */
    uint32_t l = 0, r = 0, t = 0, bo = 0;
    if (getbits(&b, 1)) {
        l = ue(&b), r = ue(&b), t = ue(&b), bo = ue(&b);
    }
    if (b.over || mbw > 1024 || mbh > 1024 || chroma > 3)
        return RTMP_ERR_MP4_CONFIG;
    uint32_t cx = chroma == 0 || separate ? 1 : chroma == 3 ? 1 : 2;
    uint32_t cy = (chroma == 1 && !separate ? 2 : 1) * (2 - frame_mbs_only);
    uint64_t fw = (uint64_t)(mbw + 1) * 16, fh = (uint64_t)(mbh + 1) * 16 * (2 - frame_mbs_only);
    uint64_t cw = (uint64_t)cx * ((uint64_t)l + r), ch = (uint64_t)cy * ((uint64_t)t + bo);
    if (cw >= fw || ch >= fh)
        return RTMP_ERR_MP4_CONFIG;
    *w = (uint32_t)(fw - cw);
    *h = (uint32_t)(fh - ch);
    return 0;
}

/* HEVC SPS (ISO/IEC 23008-2 7.3.2.2): the conformance window's size. */
static int hevc_sps_size(const uint8_t *nal, size_t len, uint32_t *w, uint32_t *h)
{
    uint8_t buf[RBSP_CAP];
    bits b = { buf, rbsp(nal, len, 2, buf, sizeof buf), 0, 0 };
    getbits(&b, 4);                     /* sps_video_parameter_set_id */
    uint32_t sub = getbits(&b, 3);
    getbits(&b, 1);
    getbits(&b, 8);                     /* profile_tier_level: general profile space, tier, idc */
    getbits(&b, 32);                    /* compatibility flags */
    getbits(&b, 24);                    /* 4 flags and 44 reserved bits: 48 */
    getbits(&b, 24);
    getbits(&b, 8);                     /* general_level_idc */
    uint32_t present[8] = { 0 };
    for (uint32_t i = 0; i < sub; i++)
        present[i] = getbits(&b, 2);    /* sub_layer profile and level present */
    if (sub > 0)
        for (uint32_t i = sub; i < 8; i++)
            getbits(&b, 2);
    for (uint32_t i = 0; i < sub; i++) {
        if (present[i] & 2) {           /* 88 bits of profile */
            getbits(&b, 32);
            getbits(&b, 32);
            getbits(&b, 24);
        }
        if (present[i] & 1)
            getbits(&b, 8);
    }
    ue(&b);                             /* sps_seq_parameter_set_id */
    uint32_t chroma = ue(&b), separate = chroma == 3 ? getbits(&b, 1) : 0;
    uint32_t pw = ue(&b), ph = ue(&b), l = 0, r = 0, t = 0, bo = 0;
    if (getbits(&b, 1)) {
        l = ue(&b), r = ue(&b), t = ue(&b), bo = ue(&b);
    }
    if (b.over || chroma > 3 || pw > 65535 || ph > 65535)
        return RTMP_ERR_MP4_CONFIG;
    uint32_t cx = chroma == 1 || chroma == 2 ? (separate ? 1 : 2) : 1, cy = chroma == 1 && !separate ? 2 : 1;
    uint64_t cw = (uint64_t)cx * ((uint64_t)l + r), ch = (uint64_t)cy * ((uint64_t)t + bo);
    if (cw >= pw || ch >= ph)
        return RTMP_ERR_MP4_CONFIG;
    *w = (uint32_t)(pw - cw);
    *h = (uint32_t)(ph - ch);
    return 0;
}

/* The first NAL unit of type `type` in an avcC or hvcC record. */
static int record_nal(int codec, const uint8_t *c, size_t n, const uint8_t **nal, size_t *len)
{
    size_t pos;
    unsigned arrays;
    if (codec == RTMP_MEDIA_AVC) {      /* 5 bytes, then numOfSequenceParameterSets & 0x1F */
        if (n < 8 || (c[5] & 0x1F) == 0)
            return RTMP_ERR_MP4_CONFIG;
        *len = rtmp_get_be16(c + 6);
        *nal = c + 8;
        return *len <= n - 8 && *len > 1 ? 0 : RTMP_ERR_MP4_CONFIG;
    }
    if (n < 23)                         /* 22 bytes, then numOfArrays */
        return RTMP_ERR_MP4_CONFIG;
    arrays = c[22];
    pos = 23;
    for (unsigned i = 0; i < arrays; i++) {
        if (n - pos < 3)
            return RTMP_ERR_MP4_CONFIG;
        unsigned type = c[pos] & 0x3F, count = rtmp_get_be16(c + pos + 1);
        pos += 3;
        for (unsigned k = 0; k < count; k++) {
            if (n - pos < 2 || rtmp_get_be16(c + pos) > n - pos - 2)
                return RTMP_ERR_MP4_CONFIG;
            size_t l = rtmp_get_be16(c + pos);
            if (type == 33 && l > 2) {  /* SPS_NUT */
                *nal = c + pos + 2;
                *len = l;
                return 0;
            }
            pos += 2 + l;
        }
    }
    return RTMP_ERR_MP4_CONFIG;
}

/* Variable-length unsigned (AV1 4.10.3). */
static uint32_t uvlc(bits *b)
{
    unsigned zeros = 0;
    while (!getbits(b, 1) && !b->over)
        if (++zeros >= 32)
            return b->over = 1, UINT32_MAX;
    return zeros ? (uint32_t)((1ull << zeros) - 1 + getbits(b, zeros)) : 0;
}

/* The max frame size of the sequence header OBU among the
 * AV1CodecConfigurationRecord's configOBUs (AV1 5.5). */
static int av1_size(const uint8_t *c, size_t n, uint32_t *w, uint32_t *h)
{
    size_t pos = 4;
    while (pos < n) {
        uint8_t head = c[pos++];
        unsigned type = (head >> 3) & 0x0F;
        if (head & 4)
            pos++;                      /* extension header */
        uint64_t size = n - (pos < n ? pos : n);
        if (head & 2) {                 /* leb128 size */
            size = 0;
            for (int i = 0; i < 8 && pos < n; i++) {
                uint8_t v = c[pos++];
                size |= (uint64_t)(v & 0x7F) << (7 * i);
                if (!(v & 0x80))
                    break;
            }
        }
        if (pos > n || size > n - pos)
            return RTMP_ERR_MP4_CONFIG;
        if (type != 1) {                /* OBU_SEQUENCE_HEADER */
            pos += (size_t)size;
            continue;
        }
        bits b = { c + pos, (size_t)size, 0, 0 };
        getbits(&b, 3);                 /* seq_profile */
        getbits(&b, 1);                 /* still_picture */
        if (getbits(&b, 1)) {           /* reduced_still_picture_header */
            getbits(&b, 5);
        } else {
            uint32_t model = 0, delay_len = 0;
            if (getbits(&b, 1)) {       /* timing_info_present_flag */
                getbits(&b, 32);
                getbits(&b, 32);
                if (getbits(&b, 1))
                    uvlc(&b);
                if ((model = getbits(&b, 1))) {
                    delay_len = getbits(&b, 5) + 1;
                    getbits(&b, 32);
                    getbits(&b, 10);
                }
            }
            uint32_t display = getbits(&b, 1), points = getbits(&b, 5) + 1;
            for (uint32_t i = 0; i < points && !b.over; i++) {
                getbits(&b, 12);        /* operating_point_idc */
                if (getbits(&b, 5) > 7)
                    getbits(&b, 1);     /* seq_tier */
                if (model && getbits(&b, 1)) {
                    getbits(&b, delay_len);
                    getbits(&b, delay_len);
                    getbits(&b, 1);
                }
                if (display && getbits(&b, 1))
                    getbits(&b, 4);
            }
        }
        uint32_t wb = getbits(&b, 4) + 1, hb = getbits(&b, 4) + 1;
        *w = getbits(&b, wb) + 1;
        *h = getbits(&b, hb) + 1;
        return b.over ? RTMP_ERR_MP4_CONFIG : 0;
    }
    return RTMP_ERR_MP4_CONFIG;
}

/* A VP9 key frame's uncompressed header (VP9 6.2): the frame size. */
static int vp9_size(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    bits b = { p, n, 0, 0 };
    if (getbits(&b, 2) != 2)            /* frame_marker */
        return RTMP_ERR_MP4_CONFIG;
    uint32_t profile = getbits(&b, 1);
    profile |= getbits(&b, 1) << 1;
    if (profile == 3)
        getbits(&b, 1);
    if (getbits(&b, 1) || getbits(&b, 1) != 0) /* show_existing_frame; frame_type 0: a key frame */
        return RTMP_ERR_MP4_CONFIG;
    getbits(&b, 2);                     /* show_frame, error_resilient_mode */
    if (getbits(&b, 24) != 0x498342)
        return RTMP_ERR_MP4_CONFIG;
    if (profile >= 2)
        getbits(&b, 1);
    if (getbits(&b, 3) != 7) {          /* color_space other than RGB */
        getbits(&b, 1);
        if (profile == 1 || profile == 3)
            getbits(&b, 3);
    } else if (profile == 1 || profile == 3) {
        getbits(&b, 1);
    }
    *w = getbits(&b, 16) + 1;
    *h = getbits(&b, 16) + 1;
    return b.over ? RTMP_ERR_MP4_CONFIG : 0;
}

int rtmp_mp4_video_size(int codec, const uint8_t *config, size_t len, const uint8_t *frame, size_t flen,
                        uint16_t *width, uint16_t *height)
{
    uint32_t w = 0, h = 0;
    const uint8_t *nal;
    size_t nlen;
    int rc;
    switch (codec) {
    case RTMP_MEDIA_AVC:
    case RTMP_MEDIA_HEVC:
        rc = config ? record_nal(codec, config, len, &nal, &nlen) : RTMP_ERR_MP4_CONFIG;
        if (rc == 0)
            rc = codec == RTMP_MEDIA_AVC ? avc_sps_size(nal, nlen, &w, &h) : hevc_sps_size(nal, nlen, &w, &h);
        break;
    case RTMP_MEDIA_AV1:
        rc = config ? av1_size(config, len, &w, &h) : RTMP_ERR_MP4_CONFIG;
        break;
    case RTMP_MEDIA_VP9:
        rc = frame ? vp9_size(frame, flen, &w, &h) : RTMP_ERR_MP4_CONFIG;
        break;
    default:
        rc = RTMP_ERR_MP4_CODEC;
    }
    if (rc < 0 || w == 0 || h == 0 || w > 65535 || h > 65535)
        return rc < 0 ? rc : RTMP_ERR_MP4_CONFIG;
    *width = (uint16_t)w;
    *height = (uint16_t)h;
    return 0;
}

/* ---- audio parameters from configurations ---- */

static const uint32_t aac_rates[13] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
                                        16000, 12000, 11025, 8000, 7350 };

/* AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1): sampling frequency and
 * channel configuration. */
static int asc_params(const uint8_t *p, size_t len, rtmp_mp4_track *t)
{
    bits b = { p, len, 0, 0 };
    if (getbits(&b, 5) == 31)
        getbits(&b, 6);
    uint32_t idx = getbits(&b, 4);
    uint32_t rate = idx == 15 ? getbits(&b, 24) : idx < 13 ? aac_rates[idx] : 0;
    uint32_t ch = getbits(&b, 4);
    if (b.over || rate == 0)
        return RTMP_ERR_MP4_CONFIG;
    t->sample_rate = rate;
    t->channels = (uint16_t)(ch == 7 ? 8 : ch);
    return 0;
}

static const uint16_t ac3_rates[3] = { 48000, 44100, 32000 };
static const uint8_t acmod_channels[8] = { 2, 1, 2, 3, 3, 4, 4, 5 };


/* ---- RTMP SequenceStart <-> configuration box ---- */

static const uint8_t opus_magic[8] = { 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd' };

/* The fields the Opus ID header (RFC 7845 5.1, little-endian, after
 * "OpusHead" and its version) and dOps (Opus in ISOBMFF 4.3.2,
 * big-endian, after its version) share: their offsets and sizes.
 * Channels, pre-skip, input sample rate, output gain, mapping family;
 * the channel mapping table follows both (family != 0). */
static const struct { uint8_t head, dops, n; } opus_fields[] = {
    { 9, 1, 1 }, { 10, 2, 2 }, { 12, 4, 4 }, { 16, 8, 2 }, { 18, 10, 1 },
};
#define OPUS_HEAD 19
#define OPUS_DOPS 11

/* One form to the other (to_head: dOps -> ID header), appended to *out:
 * the bytes appended, RTMP_ERR_MP4_CONFIG or RTMP_ERR_NOMEM. */
static int opus_convert(const uint8_t *p, size_t len, int to_head, rtmp_buf **out)
{
    size_t from = to_head ? OPUS_DOPS : OPUS_HEAD, to = to_head ? OPUS_DOPS + 8 : OPUS_DOPS;
    if (to_head ? len < OPUS_DOPS || p[0] != 0
                : len < OPUS_HEAD || memcmp(p, opus_magic, 8) != 0 || (p[8] & 0xF0) != 0 || p[9] == 0)
        return RTMP_ERR_MP4_CONFIG;
    uint8_t channels = p[to_head ? 1 : 9], family = p[from - 1];
    size_t map = family ? 2 + (size_t)channels : 0;
    if (len < from + map)
        return RTMP_ERR_MP4_CONFIG;
    uint8_t *o = rtmp_buf_grow(out, to + map);
    if (!o)
        return RTMP_ERR_NOMEM;
    memset(o, 0, to);
    if (to_head) {
        memcpy(o, opus_magic, 8);
        o[8] = 1;                       /* version */
    }
    for (size_t i = 0; i < sizeof opus_fields / sizeof opus_fields[0]; i++) {
        size_t n = opus_fields[i].n, a = to_head ? opus_fields[i].dops : opus_fields[i].head;
        size_t b = to_head ? opus_fields[i].head : opus_fields[i].dops;
        for (size_t k = 0; k < n; k++)  /* the byte order turned round */
            o[b + k] = p[a + n - 1 - k];
    }
    memcpy(o + to, p + from, map);
    (*out)->len += to + map;
    return (int)(to + map);
}

/* The ID header -> dOps; empty: stereo, no pre-skip (the spec's default). */
static int opus_from_rtmp(const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out)
{
    static const uint8_t stereo[OPUS_HEAD] = { 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0, 0, 0x80, 0xBB };
    if (len == 0) {
        p = stereo;
        len = sizeof stereo;
    }
    int rc = opus_convert(p, len, 0, out);
    if (rc < 0)
        return rc;
    t->sample_rate = 48000;
    t->channels = p[9];
    return rc;
}

/* FLAC metadata blocks p[0 .. len): each whole, STREAMINFO (34 bytes)
 * first.  The number of blocks, or RTMP_ERR_MP4_CONFIG. */
static int flac_blocks(const uint8_t *p, size_t len)
{
    int n = 0;
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 4)
            return RTMP_ERR_MP4_CONFIG;
        size_t size = rtmp_get_be24(p + pos + 1);
        if (n == 0 && ((p[pos] & 0x7F) != 0 || size != 34))
            return RTMP_ERR_MP4_CONFIG;
        if (len - pos - 4 < size)
            return RTMP_ERR_MP4_CONFIG;
        pos += 4 + size;
        n++;
    }
    return n ? n : RTMP_ERR_MP4_CONFIG;
}

static int flac_from_rtmp(const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out)
{
    static const uint8_t streaminfo_head[4] = { 0x80, 0, 0, 34 };
    size_t at = *out ? (*out)->len : 0;
    int rc;
    if (len >= 4 && memcmp(p, "fLaC", 4) == 0) {
        if (flac_blocks(p + 4, len - 4) < 0)
            return RTMP_ERR_MP4_CONFIG;
        rc = rtmp_buf_append(out, p + 4, len - 4);
    } else if (len == 34) {             /* a bare STREAMINFO */
        rc = rtmp_buf_append(out, streaminfo_head, 4);
        if (rc == 0)
            rc = rtmp_buf_append(out, p, len);
    } else {
        return RTMP_ERR_MP4_CONFIG;
    }
    if (rc < 0)
        return rc;
    uint8_t *b = (*out)->data + at;
    size_t total = (*out)->len - at;
    /* the last block carries the last-metadata-block flag, the others not */
    for (size_t pos = 0; pos < total; pos += 4 + rtmp_get_be24(b + pos + 1)) {
        size_t next = pos + 4 + rtmp_get_be24(b + pos + 1);
        b[pos] = (uint8_t)((b[pos] & 0x7F) | (next >= total ? 0x80 : 0));
    }
    rtmp_mp4_track x = { .codec = RTMP_MEDIA_FLAC, .config = b, .config_len = total };
    rtmp_mp4_config_params(&x);
    t->sample_rate = x.sample_rate;
    t->channels = x.channels;
    return (int)total;
}

int rtmp_mp4_config_to_rtmp(const rtmp_mp4_track *t, rtmp_buf **out)
{
    const rtmp_mp4_codec *r = rtmp_mp4_codec_of(t->codec);
    if (!r)
        return RTMP_ERR_MP4_CODEC;
    if (r->seq_start != SEQ_CONFIG)
        return 0;
    if (!t->config || t->config_len == 0)
        return RTMP_ERR_MP4_CONFIG;
    int rc;
    switch (t->codec) {
    case RTMP_MEDIA_OPUS:
        return opus_convert(t->config, t->config_len, 1, out);
    case RTMP_MEDIA_FLAC:
        if (flac_blocks(t->config, t->config_len) < 0)
            return RTMP_ERR_MP4_CONFIG;
        rc = rtmp_buf_append(out, "fLaC", 4);
        if (rc == 0)
            rc = rtmp_buf_append(out, t->config, t->config_len);
        return rc < 0 ? rc : (int)(4 + t->config_len);
    default:
        rc = rtmp_buf_append(out, t->config, t->config_len);
        return rc < 0 ? rc : (int)t->config_len;
    }
}

int rtmp_mp4_config_from_rtmp(int codec, const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out)
{
    const rtmp_mp4_codec *r = rtmp_mp4_codec_of(codec);
    if (!r)
        return RTMP_ERR_MP4_CODEC;
    if (r->seq_start != SEQ_CONFIG)
        return 0; /* from the first frame */
    int rc;
    switch (codec) {
    case RTMP_MEDIA_OPUS:
        return opus_from_rtmp(p, len, t, out);
    case RTMP_MEDIA_FLAC:
        return flac_from_rtmp(p, len, t, out);
    case RTMP_MEDIA_AAC:
        rc = asc_params(p, len, t);
        break;
    case RTMP_MEDIA_AVC:   /* configurationVersion 1 */
    case RTMP_MEDIA_HEVC:
        rc = len >= 7 && p[0] == 1 ? 0 : RTMP_ERR_MP4_CONFIG;
        break;
    case RTMP_MEDIA_AV1:   /* marker(1) version(7) = 1 */
        rc = len >= 4 && p[0] == 0x81 ? 0 : RTMP_ERR_MP4_CONFIG;
        break;
    default:               /* VPCodecConfigurationRecord: 8 bytes and its initialization data */
        rc = len >= 8 && len == 8 + (size_t)rtmp_get_be16(p + 6) ? 0 : RTMP_ERR_MP4_CONFIG;
        break;
    }
    if (rc == 0)
        rc = rtmp_buf_append(out, p, len);
    return rc < 0 ? rc : (int)len;
}

/* dac3 (ETSI TS 102 366 F.4) from an AC-3 syncframe. */
static int ac3_config(const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out)
{
    bits b = { p, len, 0, 0 };
    if (getbits(&b, 16) != 0x0B77)
        return RTMP_ERR_MP4_CONFIG;
    getbits(&b, 16);                         /* crc1 */
    uint32_t fscod = getbits(&b, 2), frmsizecod = getbits(&b, 6);
    uint32_t bsid = getbits(&b, 5), bsmod = getbits(&b, 3), acmod = getbits(&b, 3);
    if ((acmod & 1) && acmod != 1)
        getbits(&b, 2);                      /* cmixlev */
    if (acmod & 4)
        getbits(&b, 2);                      /* surmixlev */
    if (acmod == 2)
        getbits(&b, 2);                      /* dsurmod */
    uint32_t lfeon = getbits(&b, 1);
    if (b.over || fscod == 3 || (frmsizecod >> 1) >= 19 || bsid > 8) /* 19 bit rate codes (A/52 5.4.1.4) */
        return RTMP_ERR_MP4_CONFIG;
    uint8_t *o = rtmp_buf_grow(out, 3);
    if (!o)
        return RTMP_ERR_NOMEM;
    uint32_t v = fscod << 22 | bsid << 17 | bsmod << 14 | acmod << 11 | lfeon << 10 | (frmsizecod >> 1) << 5;
    rtmp_put_be24(o, v);
    (*out)->len += 3;
    t->sample_rate = ac3_rates[fscod];
    t->channels = (uint16_t)(acmod_channels[acmod] + lfeon);
    return 3;
}

/* dec3 (ETSI TS 102 366 F.6) from an E-AC-3 syncframe: one independent
 * substream, no dependent ones. */
static int eac3_config(const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out)
{
    static const uint16_t half_rates[3] = { 24000, 22050, 16000 };
    static const uint8_t blocks[4] = { 1, 2, 3, 6 };
    bits b = { p, len, 0, 0 };
    if (getbits(&b, 16) != 0x0B77)
        return RTMP_ERR_MP4_CONFIG;
    getbits(&b, 2);                          /* strmtyp */
    getbits(&b, 3);                          /* substreamid */
    uint32_t frmsiz = getbits(&b, 11), fscod = getbits(&b, 2), numblks = 6, rate;
    if (fscod == 3) {
        uint32_t fscod2 = getbits(&b, 2);
        if (fscod2 == 3)
            return RTMP_ERR_MP4_CONFIG;
        rate = half_rates[fscod2];
    } else {
        numblks = blocks[getbits(&b, 2)];
        rate = ac3_rates[fscod];
    }
    uint32_t acmod = getbits(&b, 3), lfeon = getbits(&b, 1), bsid = getbits(&b, 5);
    if (b.over || bsid <= 10 || bsid > 16)
        return RTMP_ERR_MP4_CONFIG;
    uint64_t kbps = (uint64_t)(frmsiz + 1) * 2 * 8 * rate / (numblks * 256u) / 1000;
    uint8_t *o = rtmp_buf_grow(out, 5);
    if (!o)
        return RTMP_ERR_NOMEM;
    rtmp_put_be16(o, (uint32_t)(kbps > 0x1FFF ? 0x1FFF : kbps) << 3 | 0); /* data_rate, num_ind_sub - 1 = 0 */
    /* fscod(2) bsid(5) reserved(1) asvc(1) bsmod(3) acmod(3) lfeon(1) reserved(3) num_dep_sub(4) reserved(1) */
    uint32_t v = (fscod == 3 ? 0 : fscod) << 22 | bsid << 17 | acmod << 9 | lfeon << 8;
    rtmp_put_be24(o + 2, v);
    (*out)->len += 5;
    t->sample_rate = rate;
    t->channels = (uint16_t)(acmod_channels[acmod] + lfeon);
    return 5;
}

/* MPEG audio frame header: rate, channels, objectTypeIndication. */
static int mp3_params(const uint8_t *p, size_t len, rtmp_mp4_track *t)
{
    static const uint32_t rates[3] = { 44100, 48000, 32000 };
    if (len < 4 || p[0] != 0xFF || (p[1] & 0xE0) != 0xE0)
        return RTMP_ERR_MP4_CONFIG;
    unsigned version = (p[1] >> 3) & 3, idx = (p[2] >> 2) & 3;
    if (version == 1 || idx == 3)
        return RTMP_ERR_MP4_CONFIG;
    t->sample_rate = rates[idx] >> (version == 3 ? 0 : version == 2 ? 1 : 2);
    t->channels = (p[3] >> 6) == 3 ? 1 : 2;
    t->oti = version == 3 ? 0x6B : 0x69;
    return 0;
}

int rtmp_mp4_config_params(rtmp_mp4_track *t)
{
    const uint8_t *c = t->config;
    size_t n = t->config_len;
    bits b = { c, n, 0, 0 };
    uint32_t fscod, acmod, lfeon;
    switch (t->codec) {
    case RTMP_MEDIA_AAC: {
        rtmp_mp4_track x = *t;
        if (!c || asc_params(c, n, &x) < 0)
            return RTMP_ERR_MP4_CONFIG;
        t->sample_rate = x.sample_rate;
        t->channels = x.channels ? x.channels : t->channels;   /* 0: in a program_config_element */
        return 0;
    }
    case RTMP_MEDIA_OPUS:
        if (!c || n < 11)
            return RTMP_ERR_MP4_CONFIG;
        t->channels = c[1];
        t->sample_rate = 48000;
        return 0;
    case RTMP_MEDIA_FLAC:
        if (!c || flac_blocks(c, n) < 0)
            return RTMP_ERR_MP4_CONFIG;
        b.p = c + 14;                   /* STREAMINFO's rate and channels */
        b.len = 4;
        t->sample_rate = getbits(&b, 20);
        t->channels = (uint16_t)(getbits(&b, 3) + 1);
        return 0;
    case RTMP_MEDIA_AC3:                /* fscod(2) bsid(5) bsmod(3) acmod(3) lfeon(1) */
    case RTMP_MEDIA_EAC3:               /* data_rate(13) num_ind_sub(3) fscod(2) bsid(5) (1) (1) bsmod(3) acmod(3) lfeon(1) */
        if (t->codec == RTMP_MEDIA_EAC3)
            getbits(&b, 16);
        fscod = getbits(&b, 2);
        getbits(&b, t->codec == RTMP_MEDIA_EAC3 ? 10 : 8);
        acmod = getbits(&b, 3);
        lfeon = getbits(&b, 1);
        if (!c || b.over || fscod == 3)
            return RTMP_ERR_MP4_CONFIG;
        t->sample_rate = ac3_rates[fscod];
        t->channels = (uint16_t)(acmod_channels[acmod] + lfeon);
        return 0;
    default:
        return 0;
    }
}

int rtmp_mp4_config_from_frame(int codec, const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out)
{
    switch (codec) {
    case RTMP_MEDIA_AC3: return ac3_config(p, len, t, out);
    case RTMP_MEDIA_EAC3: return eac3_config(p, len, t, out);
    case RTMP_MEDIA_MP3: return mp3_params(p, len, t);
    default: return RTMP_ERR_MP4_CODEC;
    }
}

/* ---- RTMP messages ---- */

/* The low nibble of a legacy audio byte 0: rate, 16-bit, channels (AAC:
 * always 44 kHz stereo, as the FLV spec has it). */
static uint8_t sound_of(const rtmp_mp4_track *t)
{
    if (t->codec == RTMP_MEDIA_AAC)
        return 0x0F;
    uint32_t r = t->sample_rate;
    uint8_t rate = r >= 44100 ? 3 : r >= 22050 ? 2 : r >= 11025 ? 1 : 0;
    return (uint8_t)(rate << 2 | 2 | (t->channels == 1 ? 0 : 1));
}

int rtmp_mp4_put_message(rtmp_buf **out, int packet, int key, int enhanced, int multitrack,
                         const rtmp_mp4_part *parts, unsigned n)
{
    if (n == 0 || n > RTMP_MEDIA_MAX_TRACKS)
        return RTMP_ERR_INVAL;
    const rtmp_mp4_track *t0 = parts[0].track;
    int same = 1;
    for (unsigned i = 1; i < n; i++) {
        if (parts[i].track->type != t0->type)
            return RTMP_ERR_INVAL;
        same &= parts[i].track->codec == t0->codec;
    }
    rtmp_media_head h = {
        .type = t0->type, .codec = t0->codec, .packet = (uint8_t)packet,
        .frame = t0->type == RTMP_MSG_VIDEO ? (key ? 1 : 2) : 0, .enhanced = (uint8_t)enhanced,
        .multitrack = RTMP_MEDIA_SINGLE, .sound = sound_of(t0), .cts = parts[0].cts,
    };
    if (multitrack || n > 1)
        h.multitrack = same ? RTMP_MEDIA_MANY_TRACKS : RTMP_MEDIA_MANY_TRACKS_MANY_CODECS;
    uint8_t head[RTMP_MEDIA_HEAD_MAX];
    int hn = rtmp_media_put_head(head, &h);
    if (hn < 0)
        return hn;
    size_t total = (size_t)hn;
    int rc = rtmp_buf_append(out, head, (size_t)hn);
    if (h.multitrack == RTMP_MEDIA_SINGLE) {
        if (rc == 0)
            rc = rtmp_buf_append(out, parts[0].data, parts[0].len);
        return rc < 0 ? rc : (int)(total + parts[0].len);
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        uint8_t th[RTMP_MEDIA_TRACK_HEAD_MAX];
        int tn = rtmp_media_put_track(th, &h, parts[i].track->codec, parts[i].track->rtmp_id, parts[i].cts,
                                      parts[i].len);
        if (tn < 0)
            return tn;
        rc = rtmp_buf_append(out, th, (size_t)tn);
        if (rc == 0)
            rc = rtmp_buf_append(out, parts[i].data, parts[i].len);
        total += (size_t)tn + parts[i].len;
    }
    return rc < 0 ? rc : (int)total;
}

static int meta_number(rtmp_buf **out, const char *key, double v, int *count)
{
    int rc = rtmp_amf0_write_key(out, key, strlen(key));
    if (rc >= 0)
        rc = rtmp_amf0_write_number(out, v);
    (*count)++;
    return rc < 0 ? rc : 0;
}

/* videocodecid / audiocodecid: the legacy id where the legacy form is
 * sent, else the FourCC as a number (Enhanced RTMP v1, onMetaData). */
static double codec_id(const rtmp_mp4_track *t, int enhanced)
{
    if (!enhanced && rtmp_media_legacy_form(t->codec))
        return rtmp_media_legacy_id(t->codec);
    return rtmp_media_fourcc(t->codec);
}

int rtmp_mp4_put_metadata(rtmp_buf **out, const rtmp_mp4_track *tracks, unsigned n, double duration, int enhanced)
{
    const rtmp_mp4_track *v = NULL, *a = NULL;
    for (unsigned i = 0; i < n; i++) {
        if (!v && tracks[i].type == RTMP_MSG_VIDEO && rtmp_mp4_codec_of(tracks[i].codec))
            v = &tracks[i];
        if (!a && tracks[i].type == RTMP_MSG_AUDIO && rtmp_mp4_codec_of(tracks[i].codec))
            a = &tracks[i];
    }
    int count = 0, rc = rtmp_amf0_write_string(out, "@setDataFrame", 13);
    if (rc >= 0)
        rc = rtmp_amf0_write_string(out, "onMetaData", 10);
    size_t count_at = *out ? (*out)->len + 1 : 0;
    if (rc >= 0)
        rc = rtmp_amf0_write_ecma_start(out, 0);
    if (rc >= 0)
        rc = meta_number(out, "duration", duration, &count);
    if (rc >= 0 && v) {
        rc = meta_number(out, "width", v->width, &count);
        if (rc >= 0)
            rc = meta_number(out, "height", v->height, &count);
        if (rc >= 0)
            rc = meta_number(out, "videocodecid", codec_id(v, enhanced), &count);
    }
    if (rc >= 0 && a) {
        rc = meta_number(out, "audiocodecid", codec_id(a, enhanced), &count);
        if (rc >= 0)
            rc = meta_number(out, "audiosamplerate", a->sample_rate, &count);
        if (rc >= 0)
            rc = meta_number(out, "audiochannels", a->channels, &count);
        if (rc >= 0) {
            rc = rtmp_amf0_write_key(out, "stereo", 6);
            if (rc >= 0)
                rc = rtmp_amf0_write_boolean(out, a->channels >= 2);
            count++;
        }
    }
    if (rc >= 0)
        rc = rtmp_amf0_write_object_end(out);
    if (rc < 0)
        return rc;
    rtmp_put_be32((*out)->data + count_at, (uint32_t)count);
    return 0;
}
