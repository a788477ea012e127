/*
 * loader_flv.c: read an FLV file for a publisher to send.
 *
 * The whole file stays in memory (one image shared by every publisher);
 * the tag list points into it.  Audio and video tags are kept, the first
 * onMetaData script tag is remembered, other tags are skipped.
 */
#include "loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chunk.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int loader_is_seq_header(uint8_t type, const uint8_t *p, size_t len)
{
    if (len < 2)
        return 0;
    if (type == RTMP_MSG_VIDEO) {
        if (p[0] & 0x80)                /* enhanced RTMP: packet type in the low 4 bits */
            return (p[0] & 0x0F) == 0;  /* SequenceStart */
        return (p[0] & 0x0F) == 7 && p[1] == 0;  /* AVC sequence header */
    }
    if (type == RTMP_MSG_AUDIO)
        return (p[0] >> 4) == 10 && p[1] == 0;   /* AAC sequence header */
    return 0;
}

/* Whether a script tag body is onMetaData: AMF0 string "onMetaData" first. */
static int is_metadata(const uint8_t *p, size_t len)
{
    static const char name[] = "onMetaData";
    size_t n = sizeof name - 1;
    return len >= 3 + n && p[0] == 0x02 && rtmp_get_be16(p + 1) == n && memcmp(p + 3, name, n) == 0;
}

static int read_file(const char *path, uint8_t **out, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 20, len = 0;
    uint8_t *p = malloc(cap);
    while (p) {
        size_t n = fread(p + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        uint8_t *np = realloc(p, cap * 2);
        if (!np) {
            free(p);
            p = NULL;
            break;
        }
        p = np;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!p)
        return fail(err, errlen, "%s: out of memory", path);
    if (bad) {
        free(p);
        return fail(err, errlen, "%s: read error", path);
    }
    *out = p;
    *size = len;
    return 0;
}

int loader_flv_load(loader_flv *f, const char *path, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (read_file(path, &f->image, &f->size, err, errlen) < 0)
        return -1;
    const uint8_t *p = f->image, *end = f->image + f->size;
    if (f->size < 13 || memcmp(p, "FLV", 3) != 0) {
        loader_flv_free(f);
        return fail(err, errlen, "%s: not an FLV file", path);
    }
    size_t off = rtmp_get_be32(p + 5);   /* header size, then PreviousTagSize0 */
    if (off < 9 || off + 4 > f->size) {
        loader_flv_free(f);
        return fail(err, errlen, "%s: bad FLV header", path);
    }
    p += off + 4;

    size_t cap = 1024;
    f->tags = malloc(cap * sizeof *f->tags);
    if (!f->tags) {
        loader_flv_free(f);
        return fail(err, errlen, "out of memory");
    }
    int have_first = 0;
    uint32_t first = 0, max_ts = 0, nvideo = 0, naudio = 0;
    while (end - p >= 11) {
        uint8_t type = p[0] & 0x1F;              /* filter bit and reserved bits off */
        uint32_t len = rtmp_get_be24(p + 1);
        uint32_t ts = rtmp_get_be24(p + 4) | (uint32_t)p[7] << 24;
        const uint8_t *body = p + 11;
        if ((size_t)(end - body) < len)
            break;                               /* truncated last tag: stop there */
        p = body + len;
        p = (size_t)(end - p) >= 4 ? p + 4 : end; /* PreviousTagSize */
        if (type == RTMP_MSG_AMF0_DATA) {
            if (!f->meta && is_metadata(body, len)) {
                f->meta = body;
                f->meta_len = len;
            }
            continue;
        }
        if ((type != RTMP_MSG_AUDIO && type != RTMP_MSG_VIDEO) || len == 0)
            continue;
        if (!have_first) {
            first = ts;
            have_first = 1;
        }
        if (f->ntags == cap) {
            loader_tag *nt = realloc(f->tags, 2 * cap * sizeof *nt);
            if (!nt) {
                loader_flv_free(f);
                return fail(err, errlen, "out of memory");
            }
            f->tags = nt;
            cap *= 2;
        }
        loader_tag *t = &f->tags[f->ntags++];
        t->data = body;
        t->len = len;
        t->ts = ts >= first ? ts - first : 0;
        t->type = type;
        t->seq_header = (uint8_t)loader_is_seq_header(type, body, len);
        if (t->ts > max_ts)
            max_ts = t->ts;
        if (!t->seq_header)
            type == RTMP_MSG_VIDEO ? nvideo++ : naudio++;
        f->media_bytes += len;
    }
    if (f->ntags == 0) {
        loader_flv_free(f);
        return fail(err, errlen, "%s: no audio or video tags", path);
    }
    /* One loop lasts the last timestamp plus one average frame interval,
     * so the next loop's first frame does not collide with the last. */
    uint32_t frames = nvideo > 1 ? nvideo : naudio;
    uint32_t step = frames > 1 ? (max_ts + frames / 2) / (frames - 1) : 40;
    f->loop_ms = max_ts + (step ? step : 1);
    f->has_video = nvideo > 0;
    return 0;
}

void loader_flv_free(loader_flv *f)
{
    free(f->tags);
    free(f->image);
    memset(f, 0, sizeof *f);
}
