#include "media.h"
#include "buf.h"
#include "chunk.h"
#include "error.h"

#include <string.h>

#define FOURCC(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* Enhanced packet types as sent (they differ between audio and video). */
enum { V_SEQ_START, V_CODED, V_SEQ_END, V_CODED_X, V_METADATA, V_MPEG2TS, V_MULTITRACK, V_MODEX };
enum { A_SEQ_START, A_CODED, A_SEQ_END, A_RESERVED3, A_MULTICHANNEL, A_MULTITRACK, A_RESERVED6, A_MODEX };

static const struct { uint32_t fourcc; uint8_t codec; } video_fourccs[] = {
    { FOURCC('a', 'v', 'c', '1'), RTMP_MEDIA_AVC },
    { FOURCC('h', 'v', 'c', '1'), RTMP_MEDIA_HEVC },
    { FOURCC('v', 'v', 'c', '1'), RTMP_MEDIA_VVC },
    { FOURCC('v', 'p', '0', '8'), RTMP_MEDIA_VP8 },
    { FOURCC('v', 'p', '0', '9'), RTMP_MEDIA_VP9 },
    { FOURCC('a', 'v', '0', '1'), RTMP_MEDIA_AV1 },
}, audio_fourccs[] = {
    { FOURCC('m', 'p', '4', 'a'), RTMP_MEDIA_AAC },
    { FOURCC('O', 'p', 'u', 's'), RTMP_MEDIA_OPUS },
    { FOURCC('f', 'L', 'a', 'C'), RTMP_MEDIA_FLAC },
    { FOURCC('a', 'c', '-', '3'), RTMP_MEDIA_AC3 },
    { FOURCC('e', 'c', '-', '3'), RTMP_MEDIA_EAC3 },
    { FOURCC('.', 'm', 'p', '3'), RTMP_MEDIA_MP3 },
};

static const char *const codec_names[RTMP_MEDIA_CODEC_COUNT_] = {
    [RTMP_MEDIA_AVC] = "avc1", [RTMP_MEDIA_HEVC] = "hvc1", [RTMP_MEDIA_VVC] = "vvc1",
    [RTMP_MEDIA_VP8] = "vp08", [RTMP_MEDIA_VP9] = "vp09", [RTMP_MEDIA_AV1] = "av01",
    [RTMP_MEDIA_H263] = "h263", [RTMP_MEDIA_SCREEN] = "screen", [RTMP_MEDIA_VP6] = "vp6",
    [RTMP_MEDIA_VP6A] = "vp6a", [RTMP_MEDIA_SCREEN2] = "screen2",
    [RTMP_MEDIA_AAC] = "mp4a", [RTMP_MEDIA_OPUS] = "Opus", [RTMP_MEDIA_FLAC] = "fLaC",
    [RTMP_MEDIA_AC3] = "ac-3", [RTMP_MEDIA_EAC3] = "ec-3", [RTMP_MEDIA_MP3] = ".mp3",
    [RTMP_MEDIA_PCM] = "pcm", [RTMP_MEDIA_ADPCM] = "adpcm", [RTMP_MEDIA_PCM_LE] = "pcm_le",
    [RTMP_MEDIA_NELLYMOSER16] = "nellymoser16", [RTMP_MEDIA_NELLYMOSER8] = "nellymoser8",
    [RTMP_MEDIA_NELLYMOSER] = "nellymoser", [RTMP_MEDIA_G711A] = "g711a", [RTMP_MEDIA_G711U] = "g711u",
    [RTMP_MEDIA_SPEEX] = "speex", [RTMP_MEDIA_DEVICE] = "device",
};

/* Legacy ids: the codec, and the FLV spec's short name. */
static const uint8_t legacy_video_codec[16] = {
    [2] = RTMP_MEDIA_H263, [3] = RTMP_MEDIA_SCREEN, [4] = RTMP_MEDIA_VP6, [5] = RTMP_MEDIA_VP6A,
    [6] = RTMP_MEDIA_SCREEN2, [7] = RTMP_MEDIA_AVC, [12] = RTMP_MEDIA_HEVC, [13] = RTMP_MEDIA_AV1,
};
static const char *const legacy_video_names[16] = {
    [2] = "h263", [3] = "screen", [4] = "vp6", [5] = "vp6a", [6] = "screen2", [7] = "avc",
    [12] = "hevc", [13] = "av1",
};
static const uint8_t legacy_audio_codec[16] = {
    RTMP_MEDIA_PCM, RTMP_MEDIA_ADPCM, RTMP_MEDIA_MP3, RTMP_MEDIA_PCM_LE, RTMP_MEDIA_NELLYMOSER16,
    RTMP_MEDIA_NELLYMOSER8, RTMP_MEDIA_NELLYMOSER, RTMP_MEDIA_G711A, RTMP_MEDIA_G711U, 0,
    RTMP_MEDIA_AAC, RTMP_MEDIA_SPEEX, 0, 0, RTMP_MEDIA_MP3, RTMP_MEDIA_DEVICE,
};
static const char *const legacy_audio_names[16] = {
    "pcm", "adpcm", "mp3", "pcm_le", "nellymoser16", "nellymoser8", "nellymoser", "g711a", "g711u",
    NULL, "aac", "speex", NULL, NULL, "mp3_8k", "device",
};

static uint8_t codec_of(uint8_t type, uint32_t fourcc)
{
    if (type == RTMP_MSG_VIDEO) {
        for (size_t i = 0; i < sizeof video_fourccs / sizeof video_fourccs[0]; i++)
            if (video_fourccs[i].fourcc == fourcc)
                return video_fourccs[i].codec;
    } else {
        for (size_t i = 0; i < sizeof audio_fourccs / sizeof audio_fourccs[0]; i++)
            if (audio_fourccs[i].fourcc == fourcc)
                return audio_fourccs[i].codec;
    }
    return RTMP_MEDIA_CODEC_NONE;
}

/* An enhanced packet type as sent, in the model's vocabulary (-1:
 * reserved, or Multitrack/ModEx, which the caller has resolved). */
static int packet_of(uint8_t type, unsigned pt)
{
    static const int8_t video[16] = {
        RTMP_MEDIA_SEQ_START, RTMP_MEDIA_CODED_FRAMES, RTMP_MEDIA_SEQ_END, RTMP_MEDIA_CODED_FRAMES_X,
        RTMP_MEDIA_METADATA, RTMP_MEDIA_MPEG2TS_SEQ_START, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    };
    static const int8_t audio[16] = {
        RTMP_MEDIA_SEQ_START, RTMP_MEDIA_CODED_FRAMES, RTMP_MEDIA_SEQ_END, -1,
        RTMP_MEDIA_MULTICHANNEL_CONFIG, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    };
    return (type == RTMP_MSG_VIDEO ? video : audio)[pt & 15];
}

static uint8_t codec_has_cts(uint8_t codec)
{
    return codec == RTMP_MEDIA_AVC || codec == RTMP_MEDIA_HEVC || codec == RTMP_MEDIA_VVC;
}

static int32_t si24(const uint8_t *p)
{
    uint32_t v = rtmp_get_be24(p);
    return (int32_t)(v ^ 0x800000u) - 0x800000;
}

static void track_init(rtmp_media_track *t, uint32_t fourcc, uint8_t codec, uint8_t id)
{
    t->fourcc = fourcc;
    t->codec = codec;
    t->id = id;
    t->channel_order = t->channel_count = 0;
    t->cts = 0;
    t->offset = t->size = 0;
}

/* The codec data of one enhanced track, p[pos .. end): the fields this
 * model reads inside it (composition time, channel configuration). */
static int track_body(const rtmp_media *m, rtmp_media_track *t, const uint8_t *p, size_t pos, size_t end)
{
    if (m->packet == RTMP_MEDIA_CODED_FRAMES && codec_has_cts(t->codec)) {
        if (end - pos < 3)
            return RTMP_ERR_MEDIA_TRUNCATED;
        t->cts = si24(p + pos);
        pos += 3;
    } else if (m->packet == RTMP_MEDIA_MULTICHANNEL_CONFIG) {
        if (end - pos < 2)
            return RTMP_ERR_MEDIA_TRUNCATED;
        t->channel_order = p[pos];
        t->channel_count = p[pos + 1];
        size_t need = 2 + (t->channel_order == 2 ? t->channel_count : t->channel_order == 1 ? 4 : 0);
        if (end - pos < need)
            return RTMP_ERR_MEDIA_TRUNCATED;
    }
    t->offset = pos;
    t->size = end - pos;
    return 0;
}

static int parse_legacy_audio(rtmp_media *m, const uint8_t *p, size_t len)
{
    uint8_t id = p[0] >> 4;
    m->legacy_id = id;
    m->sound_rate = (p[0] >> 2) & 3;
    m->sound_bits = (p[0] & 2) ? 16 : 8;
    m->sound_channels = (p[0] & 1) + 1;
    m->codec = legacy_audio_codec[id];
    size_t pos = 1;
    if (id == 10) { /* AAC */
        if (len < 2)
            return RTMP_ERR_MEDIA_TRUNCATED;
        m->wire_packet = p[1];
        m->packet = p[1] == 0 ? RTMP_MEDIA_SEQ_START : p[1] == 1 ? RTMP_MEDIA_CODED_FRAMES
                                                                 : RTMP_MEDIA_UNKNOWN_PACKET;
        pos = 2;
    } else {
        m->packet = RTMP_MEDIA_CODED_FRAMES;
    }
    rtmp_media_track *t = &m->track[0];
    track_init(t, 0, m->codec, 0);
    t->offset = pos;
    t->size = len - pos;
    m->ntracks = 1;
    return 0;
}

static int parse_legacy_video(rtmp_media *m, const uint8_t *p, size_t len)
{
    uint8_t id = p[0] & 0x0F;
    m->frame = p[0] >> 4;
    m->legacy_id = id;
    m->codec = legacy_video_codec[id];
    if (m->frame == 5) { /* video info / command frame: one UI8 instead of a payload */
        if (len < 2)
            return RTMP_ERR_MEDIA_TRUNCATED;
        m->command = p[1];
        m->packet = RTMP_MEDIA_COMMAND;
        return 0;
    }
    size_t pos = 1;
    int32_t cts = 0;
    if (id == 7 || id == 12) { /* AVC, legacy HEVC: packet type, SI24 composition time */
        if (len < 2)
            return RTMP_ERR_MEDIA_TRUNCATED;
        m->wire_packet = p[1];
        m->packet = p[1] == 0 ? RTMP_MEDIA_SEQ_START : p[1] == 1 ? RTMP_MEDIA_CODED_FRAMES
                  : p[1] == 2 ? RTMP_MEDIA_SEQ_END : RTMP_MEDIA_UNKNOWN_PACKET;
        if (len >= 5) {
            cts = si24(p + 2);
            pos = 5;
        } else {
            pos = len; /* the leniency in media.h */
        }
    } else {
        m->packet = RTMP_MEDIA_CODED_FRAMES;
    }
    rtmp_media_track *t = &m->track[0];
    track_init(t, 0, m->codec, 0);
    t->cts = cts;
    t->offset = pos;
    t->size = len - pos;
    m->ntracks = 1;
    return 0;
}

/* Everything after byte 0 of an enhanced header (m->enhanced, frame set). */
static int parse_enhanced(rtmp_media *m, const uint8_t *p, size_t len)
{
    const uint8_t type = m->type;
    const unsigned multitrack_pt = type == RTMP_MSG_VIDEO ? V_MULTITRACK : A_MULTITRACK;
    const unsigned modex_pt = type == RTMP_MSG_VIDEO ? V_MODEX : A_MODEX;
    unsigned pt = p[0] & 0x0F;
    size_t pos = 1;

    while (pt == modex_pt) {
        if (len - pos < 1)
            return RTMP_ERR_MEDIA_TRUNCATED;
        size_t size = (size_t)p[pos++] + 1;
        if (size == 256) {
            if (len - pos < 2)
                return RTMP_ERR_MEDIA_TRUNCATED;
            size = (size_t)rtmp_get_be16(p + pos) + 1;
            pos += 2;
        }
        if (len - pos < size)
            return RTMP_ERR_MEDIA_MODEX_SIZE;
        const uint8_t *data = p + pos;
        pos += size;
        if (len - pos < 1)
            return RTMP_ERR_MEDIA_TRUNCATED;
        unsigned modex_type = p[pos] >> 4;
        pt = p[pos++] & 0x0F;
        if (m->modex < UINT8_MAX)
            m->modex++;
        if (modex_type == 0) { /* TimestampOffsetNano */
            if (size < 3)
                return RTMP_ERR_MEDIA_MODEX;
            uint32_t ns = rtmp_get_be24(data);
            if (ns > 999999)
                return RTMP_ERR_MEDIA_MODEX;
            m->nano = ns;
            m->has_nano = 1;
        } /* other ModEx types: data skipped */
    }

    if (type == RTMP_MSG_VIDEO && m->frame == 5 && pt != V_METADATA) {
        /* a command frame: one UI8, no FourCC, no body */
        m->wire_packet = (uint8_t)pt;
        if (len - pos < 1)
            return RTMP_ERR_MEDIA_TRUNCATED;
        m->command = p[pos];
        m->packet = RTMP_MEDIA_COMMAND;
        return 0;
    }

    int mode = RTMP_MEDIA_SINGLE;
    uint32_t fourcc = 0;
    if (pt == multitrack_pt) {
        if (len - pos < 1)
            return RTMP_ERR_MEDIA_TRUNCATED;
        mode = p[pos] >> 4;
        pt = p[pos++] & 0x0F;
        if (mode > RTMP_MEDIA_MANY_TRACKS_MANY_CODECS)
            return RTMP_ERR_MEDIA_MULTITRACK;
        m->multitrack = (int8_t)mode;
    }
    m->wire_packet = (uint8_t)pt;
    int packet = packet_of(type, pt);
    if (packet < 0)
        return RTMP_ERR_MEDIA_PACKET;
    if (mode != RTMP_MEDIA_MANY_TRACKS_MANY_CODECS) {
        if (len - pos < 4)
            return RTMP_ERR_MEDIA_TRUNCATED;
        fourcc = rtmp_get_be32(p + pos);
        pos += 4;
        m->fourcc = fourcc;
        m->codec = codec_of(type, fourcc);
    }
    m->packet = (uint8_t)packet;

    if (mode == RTMP_MEDIA_SINGLE) {
        rtmp_media_track *t = &m->track[0];
        track_init(t, fourcc, m->codec, 0);
        int rc = track_body(m, t, p, pos, len);
        if (rc < 0)
            return rc;
        m->ntracks = 1;
        return 0;
    }
    do {
        if (m->ntracks == RTMP_MEDIA_MAX_TRACKS)
            return RTMP_ERR_MEDIA_TRACKS;
        if (mode == RTMP_MEDIA_MANY_TRACKS_MANY_CODECS) {
            if (len - pos < 4)
                return RTMP_ERR_MEDIA_TRUNCATED;
            fourcc = rtmp_get_be32(p + pos);
            pos += 4;
        }
        if (len - pos < 1)
            return RTMP_ERR_MEDIA_TRUNCATED;
        uint8_t id = p[pos++];
        size_t end = len;
        if (mode != RTMP_MEDIA_ONE_TRACK) {
            if (len - pos < 3)
                return RTMP_ERR_MEDIA_TRUNCATED;
            size_t size = rtmp_get_be24(p + pos);
            pos += 3;
            if (len - pos < size)
                return RTMP_ERR_MEDIA_TRACK_SIZE;
            end = pos + size;
        }
        rtmp_media_track *t = &m->track[m->ntracks];
        track_init(t, fourcc, codec_of(type, fourcc), id);
        int rc = track_body(m, t, p, pos, end);
        if (rc < 0)
            return rc;
        if (m->ntracks++ == 0 && mode == RTMP_MEDIA_MANY_TRACKS_MANY_CODECS) {
            m->fourcc = fourcc;
            m->codec = t->codec;
        }
        pos = end;
    } while (mode != RTMP_MEDIA_ONE_TRACK && pos < len);
    return 0;
}

int rtmp_media_parse(rtmp_media *m, uint8_t type, const uint8_t *p, size_t len)
{
    m->type = type;
    m->enhanced = 0;
    m->frame = 0;
    m->packet = RTMP_MEDIA_NO_PACKET;
    m->wire_packet = 0xFF;
    m->legacy_id = 0;
    m->sound_rate = m->sound_bits = m->sound_channels = 0;
    m->codec = RTMP_MEDIA_CODEC_NONE;
    m->fourcc = 0;
    m->multitrack = RTMP_MEDIA_SINGLE;
    m->command = 0;
    m->modex = 0;
    m->has_nano = 0;
    m->nano = 0;
    m->ntracks = 0;
    if (type != RTMP_MSG_AUDIO && type != RTMP_MSG_VIDEO)
        return RTMP_ERR_INVAL;
    if (len == 0)
        return RTMP_ERR_MEDIA_EMPTY;
    if (type == RTMP_MSG_AUDIO) {
        if (p[0] >> 4 != 9)
            return parse_legacy_audio(m, p, len);
        m->legacy_id = 9;
    } else {
        if (!(p[0] & 0x80))
            return parse_legacy_video(m, p, len);
        m->frame = (p[0] >> 4) & 7;
    }
    m->enhanced = 1;
    return parse_enhanced(m, p, len);
}

int rtmp_media_is_keyframe(const rtmp_media *m)
{
    return m->type == RTMP_MSG_VIDEO && (m->frame == 1 || m->frame == 4);
}

int rtmp_media_is_sequence_header(const rtmp_media *m)
{
    return m->packet == RTMP_MEDIA_SEQ_START || m->packet == RTMP_MEDIA_MPEG2TS_SEQ_START
        || m->packet == RTMP_MEDIA_MULTICHANNEL_CONFIG;
}

int rtmp_media_is_sequence_end(const rtmp_media *m)
{
    return m->packet == RTMP_MEDIA_SEQ_END;
}

int rtmp_media_class(const rtmp_media *m)
{
    if (m->type == RTMP_MSG_AUDIO) {
        if (m->packet == RTMP_MEDIA_CODED_FRAMES
            || (!m->enhanced && m->packet == RTMP_MEDIA_UNKNOWN_PACKET)) /* AAC: all but 0 went */
            return RTMP_MEDIA_CLASS_AUDIO;
        return RTMP_MEDIA_CLASS_KEEP;
    }
    if (m->type != RTMP_MSG_VIDEO)
        return RTMP_MEDIA_CLASS_KEEP;
    if (m->packet != RTMP_MEDIA_CODED_FRAMES && m->packet != RTMP_MEDIA_CODED_FRAMES_X)
        return RTMP_MEDIA_CLASS_KEEP;
    switch (m->frame) {
    case 1: case 4: return RTMP_MEDIA_CLASS_KEY;     /* keyframe, generated keyframe */
    case 2: case 3: return RTMP_MEDIA_CLASS_INTER;   /* inter, disposable inter */
    default: return RTMP_MEDIA_CLASS_KEEP;           /* undefined frame types */
    }
}

const char *rtmp_media_codec_name(int codec)
{
    return codec > 0 && codec < RTMP_MEDIA_CODEC_COUNT_ ? codec_names[codec] : NULL;
}

const char *rtmp_media_packet_name(int packet)
{
    static const char *const names[] = { "seq_start", "coded_frames", "seq_end", "coded_frames_x",
                                         "metadata", "mpeg2ts_seq_start", "multichannel_config",
                                         "command" };
    return packet >= 0 && packet < (int)(sizeof names / sizeof names[0]) ? names[packet] : NULL;
}

const char *rtmp_media_legacy_name(uint8_t type, unsigned id)
{
    if (id > 15)
        return NULL;
    return type == RTMP_MSG_VIDEO ? legacy_video_names[id] : type == RTMP_MSG_AUDIO ? legacy_audio_names[id] : NULL;
}

const char *rtmp_media_multitrack_name(int mode)
{
    static const char *const names[] = { "one_track", "many_tracks", "many_tracks_many_codecs" };
    return mode >= 0 && mode <= 2 ? names[mode] : NULL;
}

uint32_t rtmp_media_fourcc(int codec)
{
    for (size_t i = 0; i < sizeof video_fourccs / sizeof video_fourccs[0]; i++)
        if (video_fourccs[i].codec == codec)
            return video_fourccs[i].fourcc;
    for (size_t i = 0; i < sizeof audio_fourccs / sizeof audio_fourccs[0]; i++)
        if (audio_fourccs[i].codec == codec)
            return audio_fourccs[i].fourcc;
    return 0;
}

int rtmp_media_legacy_id(int codec)
{
    for (int id = 0; id < 16; id++)
        if (codec != RTMP_MEDIA_CODEC_NONE && (legacy_video_codec[id] == codec || legacy_audio_codec[id] == codec))
            return id;
    return -1;
}

int rtmp_media_legacy_form(int codec)
{
    return codec == RTMP_MEDIA_AVC || codec == RTMP_MEDIA_AAC || codec == RTMP_MEDIA_MP3;
}

int rtmp_media_codec_type(int codec)
{
    if (codec >= RTMP_MEDIA_AVC && codec <= RTMP_MEDIA_SCREEN2)
        return RTMP_MSG_VIDEO;
    if (codec >= RTMP_MEDIA_AAC && codec < RTMP_MEDIA_CODEC_COUNT_)
        return RTMP_MSG_AUDIO;
    return 0;
}

/* The enhanced packet type byte value of a packet kind (-1: none). */
static int wire_of(uint8_t type, int packet)
{
    for (unsigned pt = 0; pt < 16; pt++)
        if (pt != (type == RTMP_MSG_VIDEO ? V_MULTITRACK : A_MULTITRACK) && packet_of(type, pt) == packet)
            return (int)pt;
    return -1;
}

static int cts_fits(int32_t cts)
{
    return cts >= -0x800000 && cts <= 0x7FFFFF;
}

int rtmp_media_put_head(uint8_t out[RTMP_MEDIA_HEAD_MAX], const rtmp_media_head *h)
{
    const uint8_t type = h->type;
    if (type != RTMP_MSG_AUDIO && type != RTMP_MSG_VIDEO)
        return RTMP_ERR_INVAL;
    if (h->multitrack != RTMP_MEDIA_MANY_TRACKS_MANY_CODECS && rtmp_media_codec_type(h->codec) != type)
        return RTMP_ERR_INVAL;
    int legacy = !h->enhanced && h->multitrack == RTMP_MEDIA_SINGLE && rtmp_media_legacy_form(h->codec);
    if (!cts_fits(h->cts))
        return RTMP_ERR_INVAL;
    if (legacy && h->codec == RTMP_MEDIA_AVC) {
        if (h->packet > RTMP_MEDIA_SEQ_END)
            return RTMP_ERR_INVAL;
        out[0] = (uint8_t)((h->frame & 0x0F) << 4 | 7);
        out[1] = h->packet; /* SEQ_START 0, CODED_FRAMES 1, SEQ_END 2: the AVC packet types */
        rtmp_put_be24(out + 2, (uint32_t)h->cts & 0xFFFFFF);
        return 5;
    }
    if (legacy && h->codec == RTMP_MEDIA_AAC) {
        if (h->packet != RTMP_MEDIA_SEQ_START && h->packet != RTMP_MEDIA_CODED_FRAMES)
            return RTMP_ERR_INVAL;
        out[0] = (uint8_t)(10 << 4 | (h->sound & 0x0F));
        out[1] = h->packet;
        return 2;
    }
    if (legacy) { /* MP3 */
        if (h->packet != RTMP_MEDIA_CODED_FRAMES)
            return RTMP_ERR_INVAL;
        out[0] = (uint8_t)(2 << 4 | (h->sound & 0x0F));
        return 1;
    }
    int pt = wire_of(type, h->packet);
    uint32_t fourcc = rtmp_media_fourcc(h->codec);
    if (pt < 0 || (h->multitrack != RTMP_MEDIA_MANY_TRACKS_MANY_CODECS && !fourcc))
        return RTMP_ERR_INVAL;
    size_t n = 0;
    if (h->multitrack != RTMP_MEDIA_SINGLE) {
        if (h->multitrack < RTMP_MEDIA_ONE_TRACK || h->multitrack > RTMP_MEDIA_MANY_TRACKS_MANY_CODECS)
            return RTMP_ERR_INVAL;
        out[n++] = type == RTMP_MSG_VIDEO ? (uint8_t)(0x80 | (h->frame & 7) << 4 | V_MULTITRACK)
                                          : (uint8_t)(0x90 | A_MULTITRACK);
        out[n++] = (uint8_t)(h->multitrack << 4 | pt);
        if (h->multitrack != RTMP_MEDIA_MANY_TRACKS_MANY_CODECS) {
            rtmp_put_be32(out + n, fourcc);
            n += 4;
        }
        return (int)n;
    }
    out[n++] = type == RTMP_MSG_VIDEO ? (uint8_t)(0x80 | (h->frame & 7) << 4 | pt) : (uint8_t)(0x90 | pt);
    rtmp_put_be32(out + n, fourcc);
    n += 4;
    if (h->packet == RTMP_MEDIA_CODED_FRAMES && codec_has_cts(h->codec)) {
        rtmp_put_be24(out + n, (uint32_t)h->cts & 0xFFFFFF);
        n += 3;
    }
    return (int)n;
}

int rtmp_media_put_track(uint8_t out[RTMP_MEDIA_TRACK_HEAD_MAX], const rtmp_media_head *h, uint8_t codec,
                         uint8_t id, int32_t cts, size_t size)
{
    size_t n = 0;
    int has_cts = h->packet == RTMP_MEDIA_CODED_FRAMES && codec_has_cts(codec);
    if (!cts_fits(cts) || h->multitrack < RTMP_MEDIA_ONE_TRACK || h->multitrack > RTMP_MEDIA_MANY_TRACKS_MANY_CODECS)
        return RTMP_ERR_INVAL;
    if (h->multitrack == RTMP_MEDIA_MANY_TRACKS_MANY_CODECS) {
        uint32_t fourcc = rtmp_media_fourcc(codec);
        if (!fourcc)
            return RTMP_ERR_INVAL;
        rtmp_put_be32(out, fourcc);
        n = 4;
    }
    out[n++] = id;
    if (h->multitrack != RTMP_MEDIA_ONE_TRACK) {
        size_t total = size + (has_cts ? 3 : 0);
        if (total > 0xFFFFFF)
            return RTMP_ERR_INVAL;
        rtmp_put_be24(out + n, (uint32_t)total);
        n += 3;
    }
    if (has_cts) {
        rtmp_put_be24(out + n, (uint32_t)cts & 0xFFFFFF);
        n += 3;
    }
    return (int)n;
}
