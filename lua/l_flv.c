/*
 * l_flv.c: rtmp.flv, FLV files read and written with stdio over the
 * core's FLV pieces (core/flv.h).
 *
 *   local r = assert(rtmp.flv.open("in.flv"))       -- r.audio, r.video, r.version
 *   local w = assert(rtmp.flv.create("out.flv"))
 *   for msg in r.read, r do assert(w:write(msg)) end -- message objects
 *   r:close(); assert(w:close())                      -- w.bytes, w.duration
 *
 * Tags come out as the message objects scripts get from on_message
 * (l_msg.h): stream 0, csid 6 (audio), 7 (video) or 5 (data), data
 * decoded into values/name.  Every tag's data size is checked against
 * the bytes left in the file before anything is allocated for it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "l_amf.h"
#include "l_msg.h"
#include "../core/aggregate.h"
#include "../core/amf.h"
#include "../core/chunk.h"
#include "../core/error.h"
#include "../core/flv.h"

#define READER_MT "rtmp.flv.reader"
#define WRITER_MT "rtmp.flv.writer"

/* ---- reading ---- */

typedef struct lreader {
    FILE           *f;        /* NULL once closed */
    uint64_t        size;     /* file size at open */
    uint64_t        pos;      /* offset of the next tag; pos <= size */
    int             lenient;
    rtmp_flv_header hdr;
    unsigned        tags;     /* tags read so far (skipped ones included) */
    int             err;      /* sticky error code, 0 if none */
    uint64_t        err_pos;  /* where it happened */
    uint8_t        *buf;      /* one tag's data; cap bytes */
    size_t          cap;
} lreader;

static lreader *check_reader(lua_State *L)
{
    return luaL_checkudata(L, 1, READER_MT);
}

static void reader_release(lreader *r)
{
    if (r->f)
        fclose(r->f);
    r->f = NULL;
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

/* [-0, +3, m] nil, "<message> (<what>)", "<NAME>" */
static int push_fail(lua_State *L, int code, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s (%s)", rtmp_strerror(code), what);
    lua_pushstring(L, rtmp_errname(code));
    return 3;
}

/* [-0, +(2|3), m] nil, "path: strerror(errno)" from a failed stdio call */
static int push_errno(lua_State *L, const char *path, int e)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushstring(L, rtmp_errname(RTMP_ERR_IO));
    return 3;
}

/* Read exactly n bytes at the current position: 0 or RTMP_ERR_IO. */
static int read_exact(FILE *f, void *p, size_t n)
{
    return n == 0 || fread(p, 1, n, f) == n ? 0 : RTMP_ERR_IO;
}

static int seek_to(FILE *f, uint64_t off)
{
    if (off > (uint64_t)0x7FFFFFFFFFFFFFFF || fseeko(f, (off_t)off, SEEK_SET) != 0)
        return RTMP_ERR_IO;
    return 0;
}

/* The file size, leaving the position at the start: 0 or RTMP_ERR_IO. */
static int file_size(FILE *f, uint64_t *size)
{
    if (fseeko(f, 0, SEEK_END) != 0)
        return RTMP_ERR_IO;
    off_t end = ftello(f);
    if (end < 0 || fseeko(f, 0, SEEK_SET) != 0)
        return RTMP_ERR_IO;
    *size = (uint64_t)end;
    return 0;
}

/* Read the header and PreviousTagSize0; leaves the file at the first tag.
 * 0 or a negative code (RTMP_ERR_IO: see errno). */
static int read_start(FILE *f, uint64_t size, int lenient, rtmp_flv_header *hdr, uint64_t *pos)
{
    uint8_t b[RTMP_FLV_HEADER_SIZE];
    size_t n = size < sizeof b ? (size_t)size : sizeof b;
    if (read_exact(f, b, n) < 0)
        return RTMP_ERR_IO;
    int rc = rtmp_flv_parse_header(b, n, hdr);
    if (rc < 0)
        return rc;
    if (hdr->data_offset > size)
        return RTMP_ERR_FLV_TRUNCATED;
    if (seek_to(f, hdr->data_offset) < 0)
        return RTMP_ERR_IO;
    *pos = hdr->data_offset;
    if (size - *pos == 0 && lenient)
        return 0;                       /* header only: an empty file */
    n = size - *pos < RTMP_FLV_BACKPTR_SIZE ? (size_t)(size - *pos) : RTMP_FLV_BACKPTR_SIZE;
    if (read_exact(f, b, n) < 0)
        return RTMP_ERR_IO;
    rc = rtmp_flv_check_backptr(b, n, 0, NULL);
    if (rc == RTMP_ERR_FLV_TRUNCATED || (rc < 0 && !lenient))
        return rc;
    *pos += RTMP_FLV_BACKPTR_SIZE;
    return 0;
}

/* rtmp.flv.open(path [, { lenient = bool }]) -> reader, or nil, err, code */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int lenient = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "lenient");
        lenient = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lreader *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    r->lenient = lenient;
    luaL_setmetatable(L, READER_MT);
    r->f = fopen(path, "rb");
    if (!r->f)
        return push_errno(L, path, errno);
    int rc = file_size(r->f, &r->size);
    if (rc == 0)
        rc = read_start(r->f, r->size, lenient, &r->hdr, &r->pos);
    if (rc < 0) {
        int e = errno;
        reader_release(r);
        if (rc == RTMP_ERR_IO)
            return push_errno(L, path, e);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, rtmp_strerror(rc));
        lua_pushstring(L, rtmp_errname(rc));
        return 3;
    }
    return 1;
}

/* [-0, +(1|2|3), m] r:read() -> message | nil (end) | nil, err, code */
static int reader_read(lua_State *L)
{
    lreader *r = check_reader(L);
    char what[64];
    if (!r->f && !r->err) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    for (;;) {
        if (r->err) {
            snprintf(what, sizeof what, "tag %u at byte %llu", r->tags + 1, (unsigned long long)r->err_pos);
            return push_fail(L, r->err, what);
        }
        uint64_t left = r->size - r->pos;
        if (left == 0)
            return 0;                   /* clean end */
        uint8_t b[RTMP_FLV_TAG_HEADER_SIZE];
        rtmp_flv_tag t;
        size_t n = left < sizeof b ? (size_t)left : sizeof b;
        int rc = read_exact(r->f, b, n);
        if (rc == 0)
            rc = rtmp_flv_parse_tag(b, n, &t);
        if (rc >= 0 && t.size > left - RTMP_FLV_TAG_HEADER_SIZE)
            rc = RTMP_ERR_FLV_TRUNCATED;  /* checked before allocating */
        if (rc >= 0 && !r->lenient)
            rc = rtmp_flv_check_tag(&t);
        if (rc >= 0 && t.size > r->cap) {
            uint8_t *nb = realloc(r->buf, t.size);
            if (!nb)
                return luaL_error(L, "out of memory");
            r->buf = nb;
            r->cap = t.size;
        }
        if (rc >= 0)
            rc = read_exact(r->f, r->buf, t.size);
        if (rc >= 0) {
            left -= RTMP_FLV_TAG_HEADER_SIZE + (uint64_t)t.size;
            if (left == 0 && r->lenient) {
                n = 0;                  /* last back pointer left out */
            } else {
                uint8_t bp[RTMP_FLV_BACKPTR_SIZE];
                n = left < sizeof bp ? (size_t)left : sizeof bp;
                rc = read_exact(r->f, bp, n);
                if (rc == 0)
                    rc = rtmp_flv_check_backptr(bp, n, RTMP_FLV_TAG_HEADER_SIZE + t.size, NULL);
                if (rc == RTMP_ERR_FLV_PREV_SIZE && r->lenient)
                    rc = 0;
            }
        }
        if (rc < 0) {
            r->err = rc;
            r->err_pos = r->pos;
            continue;
        }
        r->pos += RTMP_FLV_TAG_HEADER_SIZE + (uint64_t)t.size + n;
        r->tags++;
        if (rtmp_flv_check_tag(&t) < 0)
            continue;                   /* lenient: skipped */
        rtmp_msg_hdr h = { .csid = t.type == RTMP_FLV_AUDIO ? 6 : t.type == RTMP_FLV_VIDEO ? 7 : 5,
                           .timestamp = t.timestamp, .length = t.size, .stream_id = 0,
                           .type = t.type, .fmt = RTMP_FMT_AUTO };
        rtmp_l_push_msg(L, &h, r->buf, 0, RTMP_DEFAULT_AMF_DEPTH);
        return 1;
    }
}

static int reader_close(lua_State *L)
{
    lreader *r = check_reader(L);
    reader_release(r);
    return 0;
}

static int reader_index(lua_State *L)
{
    lreader *r = check_reader(L);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "audio")) { lua_pushboolean(L, r->hdr.flags & RTMP_FLV_FLAG_AUDIO); return 1; }
    if (!strcmp(k, "video")) { lua_pushboolean(L, r->hdr.flags & RTMP_FLV_FLAG_VIDEO); return 1; }
    if (!strcmp(k, "version")) { lua_pushinteger(L, r->hdr.version); return 1; }
    if (!strcmp(k, "offset")) { lua_pushinteger(L, (lua_Integer)r->pos); return 1; }
    if (!strcmp(k, "size")) { lua_pushinteger(L, (lua_Integer)r->size); return 1; }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
    return 1;
}

/* ---- writing ---- */

typedef struct lwriter {
    FILE     *f;              /* NULL once closed */
    uint64_t  bytes;          /* file size so far */
    int       flags_given;    /* header flags from the options: kept */
    uint8_t   flags;          /* header flags written (or found, appending) */
    uint8_t   seen;           /* RTMP_FLV_FLAG_* of the tags written */
    uint32_t  base;           /* added to every timestamp (appending) */
    int       has_meta;       /* an onMetaData tag is in the file */
    uint64_t  dur_off, size_off;  /* file offsets of its duration and filesize doubles */
    rtmp_flv_clock clock;         /* the duration of what the file holds */
} lwriter;

static lwriter *check_writer(lua_State *L)
{
    return luaL_checkudata(L, 1, WRITER_MT);
}

/* Account for an audio or video tag written (or scanned) at ts: the
 * header flags it makes, the duration (core/flv.h). */
static void writer_track(lwriter *w, uint8_t type, uint32_t ts, const uint8_t *p, size_t len)
{
    w->seen |= type == RTMP_FLV_AUDIO ? RTMP_FLV_FLAG_AUDIO : RTMP_FLV_FLAG_VIDEO;
    rtmp_flv_clock_add(&w->clock, type, ts, p, len);
}

/* Note the onMetaData payload p[0 .. len) whose data starts at file
 * offset at: where its duration and filesize are, for close. */
static void writer_note_meta(lwriter *w, const uint8_t *p, size_t len, uint64_t at)
{
    size_t d, s;
    if (rtmp_flv_meta_find(p, len, &d, &s) != 1)
        return;
    w->has_meta = 1;
    w->dur_off = d ? at + d : 0;
    w->size_off = s ? at + s : 0;
}

/* Write one tag (type 8, 9 or 18; timestamp before the base is added).
 * 0, RTMP_ERR_IO (errno set) or RTMP_ERR_INVAL (too long). */
static int writer_tag(lwriter *w, uint8_t type, uint32_t ts, const uint8_t *p, size_t len)
{
    if (type == RTMP_FLV_SCRIPT) {
        size_t skip = rtmp_flv_set_data_frame_len(p, len);
        p += skip;
        len -= skip;
        size_t d, s;
        if (rtmp_flv_meta_find(p, len, &d, &s) == 1) {
            if (w->has_meta)
                return 0;               /* one onMetaData per file: the first */
            writer_note_meta(w, p, len, w->bytes + RTMP_FLV_TAG_HEADER_SIZE);
        }
    }
    if (len > RTMP_FLV_MAX_DATA)
        return RTMP_ERR_INVAL;
    uint32_t out_ts = w->base + ts;
    uint8_t h[RTMP_FLV_TAG_HEADER_SIZE], bp[RTMP_FLV_BACKPTR_SIZE];
    rtmp_flv_put_tag(h, type, (uint32_t)len, out_ts);
    rtmp_flv_put_backptr(bp, (uint32_t)len);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h || (len && fwrite(p, 1, len, w->f) != len)
        || fwrite(bp, 1, sizeof bp, w->f) != sizeof bp)
        return RTMP_ERR_IO;
    w->bytes += sizeof h + len + sizeof bp;
    if (type != RTMP_FLV_SCRIPT)
        writer_track(w, type, out_ts, p, len);
    return 0;
}

/* Scan an existing file opened for appending: flags, metadata, the
 * timestamps (for the base), size.  0 or a negative code. */
static int writer_scan(lwriter *w)
{
    uint64_t size, pos;
    rtmp_flv_header hdr;
    int rc = file_size(w->f, &size);
    if (rc == 0)
        rc = read_start(w->f, size, 0, &hdr, &pos);
    if (rc < 0)
        return rc;
    if (!w->flags_given)
        w->flags = hdr.flags;
    while (pos < size) {
        uint64_t left = size - pos;
        uint8_t b[RTMP_FLV_TAG_HEADER_SIZE];
        rtmp_flv_tag t;
        if (left < RTMP_FLV_TAG_HEADER_SIZE + RTMP_FLV_BACKPTR_SIZE)
            return RTMP_ERR_FLV_TRUNCATED;
        if (read_exact(w->f, b, sizeof b) < 0)
            return RTMP_ERR_IO;
        rtmp_flv_parse_tag(b, sizeof b, &t);
        if (t.size > left - RTMP_FLV_TAG_HEADER_SIZE - RTMP_FLV_BACKPTR_SIZE)
            return RTMP_ERR_FLV_TRUNCATED;
        uint64_t data_at = pos + RTMP_FLV_TAG_HEADER_SIZE;
        if (t.type == RTMP_FLV_SCRIPT && !t.filter && !w->has_meta) {
            uint8_t *p = malloc(t.size ? t.size : 1);  /* size checked above */
            if (!p)
                return RTMP_ERR_NOMEM;
            rc = read_exact(w->f, p, t.size);
            if (rc == 0)
                writer_note_meta(w, p, t.size, data_at);
            free(p);
            if (rc < 0)
                return rc;
        }
        if ((t.type == RTMP_FLV_AUDIO || t.type == RTMP_FLV_VIDEO) && !t.filter) {
            uint8_t head[RTMP_FLV_CLOCK_PEEK];
            size_t n = t.size < sizeof head ? t.size : sizeof head;
            if (read_exact(w->f, head, n) < 0)
                return RTMP_ERR_IO;
            writer_track(w, t.type, t.timestamp, head, n);
        }
        pos = data_at + t.size + RTMP_FLV_BACKPTR_SIZE;
        if (seek_to(w->f, pos) < 0)
            return RTMP_ERR_IO;
    }
    w->bytes = size;
    w->base = rtmp_flv_clock_ms(&w->clock);
    return fseeko(w->f, 0, SEEK_END) == 0 ? 0 : RTMP_ERR_IO;
}

/* Create the missing parent directories of path. */
static void make_parents(lua_State *L, const char *path)
{
    size_t n = strlen(path);
    char *p = lua_newuserdatauv(L, n + 1, 0);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (p[i] != '/')
            continue;
        p[i] = '\0';
        mkdir(p, 0777);                 /* EEXIST and the rest: fopen reports */
        p[i] = '/';
    }
    lua_pop(L, 1);
}

static int opt_bool(lua_State *L, int t, const char *k, int *given)
{
    int v = 0;
    if (t && lua_getfield(L, t, k) != LUA_TNIL) {
        v = lua_toboolean(L, -1);
        if (given)
            *given = 1;
    }
    if (t)
        lua_pop(L, 1);
    return v;
}

/* rtmp.flv.create(path [, { audio =, video =, append =, mkdir = }])
 * -> writer, or nil, err, code */
static int l_create(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int t = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        t = 2;
    }
    int given = 0;
    int audio = opt_bool(L, t, "audio", &given);
    int video = opt_bool(L, t, "video", &given);
    int append = opt_bool(L, t, "append", NULL);
    if (opt_bool(L, t, "mkdir", NULL))
        make_parents(L, path);
    lwriter *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WRITER_MT);
    w->flags_given = given;
    w->flags = (uint8_t)((audio ? RTMP_FLV_FLAG_AUDIO : 0) | (video ? RTMP_FLV_FLAG_VIDEO : 0));
    if (append) {
        w->f = fopen(path, "r+b");
        if (!w->f && errno != ENOENT)
            return push_errno(L, path, errno);
        if (w->f) {
            int rc = writer_scan(w);
            if (rc < 0) {
                int e = errno;
                fclose(w->f);
                w->f = NULL;
                if (rc == RTMP_ERR_IO)
                    return push_errno(L, path, e);
                lua_pushnil(L);
                lua_pushfstring(L, "%s: cannot append: %s", path, rtmp_strerror(rc));
                lua_pushstring(L, rtmp_errname(rc));
                return 3;
            }
            return 1;
        }
    }
    w->f = fopen(path, "wb");
    if (!w->f)
        return push_errno(L, path, errno);
    uint8_t start[RTMP_FLV_START_SIZE];
    rtmp_flv_put_start(start, w->flags);
    if (fwrite(start, 1, sizeof start, w->f) != sizeof start) {
        int e = errno;
        fclose(w->f);
        w->f = NULL;
        return push_errno(L, path, e);
    }
    w->bytes = sizeof start;
    return 1;
}

/* [-0, +0, e] type, timestamp and payload of the message object or
 * table at idx; the payload stays valid while the value is on the stack. */
static void write_arg(lua_State *L, int idx, uint8_t *type, uint32_t *ts, const uint8_t **p, size_t *len)
{
    lmsg *m = luaL_testudata(L, idx, MSG_MT);
    if (m) {
        *type = m->h.type;
        *ts = m->h.timestamp;
        *p = m->data;
        *len = m->len;
        return;
    }
    luaL_argexpected(L, lua_istable(L, idx), idx, "message or table");
    rtmp_msg_hdr h = { .csid = 3 };
    lua_getfield(L, idx, "type");
    if (lua_isnil(L, -1))
        luaL_argerror(L, idx, "message needs a type");
    lua_pop(L, 1);
    rtmp_l_read_hdr(L, idx, &h);
    *type = h.type;
    *ts = h.timestamp;
    lua_getfield(L, idx, "payload");
    *p = (const uint8_t *)luaL_optlstring(L, -1, "", len);
    lua_replace(L, idx);                /* keeps the payload string alive */
}

/* w:write(msg [, timestamp]) -> true, or nil, err, code; timestamp (ms)
 * replaces the message's own (an aggregate's sub-messages move with it). */
static int writer_write(lua_State *L)
{
    lwriter *w = check_writer(L);
    uint8_t type;
    uint32_t ts;
    const uint8_t *p;
    size_t len;
    write_arg(L, 2, &type, &ts, &p, &len);
    if (!lua_isnoneornil(L, 3)) {
        lua_Integer t = luaL_checkinteger(L, 3);
        luaL_argcheck(L, t >= 0 && t <= 0xFFFFFFFFLL, 3, "timestamp out of range 0 .. 2^32-1");
        ts = (uint32_t)t;
    }
    if (!w->f) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    int rc = 0;
    switch (type) {
    case RTMP_MSG_AUDIO:
    case RTMP_MSG_VIDEO:
    case RTMP_MSG_AMF0_DATA:
        rc = writer_tag(w, type, ts, p, len);
        break;
    case RTMP_MSG_AMF3_DATA:            /* a format byte (0), then AMF0 */
        if (len > 0)
            rc = writer_tag(w, RTMP_FLV_SCRIPT, ts, p + 1, len - 1);
        break;
    case RTMP_MSG_AGGREGATE: {
        rtmp_agg_iter it;
        rtmp_agg_sub sub;
        rtmp_agg_init(&it, p, len, ts, 0);
        while (rc >= 0 && (rc = rtmp_agg_next(&it, &sub)) > 0) {
            if (sub.type == RTMP_MSG_AUDIO || sub.type == RTMP_MSG_VIDEO || sub.type == RTMP_MSG_AMF0_DATA)
                rc = writer_tag(w, sub.type, sub.timestamp, sub.data, sub.size);
        }
        if (rc < 0 && rc != RTMP_ERR_IO)
            return push_fail(L, rc, "aggregate");
        break;
    }
    default:
        lua_pushnil(L);
        lua_pushfstring(L, "cannot write a message of type %d to an FLV file", (int)type);
        lua_pushstring(L, rtmp_errname(RTMP_ERR_INVAL));
        return 3;
    }
    if (rc == RTMP_ERR_IO)
        return push_errno(L, "write", errno);
    if (rc < 0)
        return push_fail(L, rc, "write");
    lua_pushboolean(L, 1);
    return 1;
}

/* Patch the header flags and the metadata, then close.  0 or RTMP_ERR_IO. */
static int writer_finish(lwriter *w)
{
    int rc = 0;
    uint8_t flags = w->flags_given ? w->flags : (uint8_t)(w->flags | w->seen);
    uint8_t b[8];
    if (fflush(w->f) != 0 || seek_to(w->f, 4) < 0 || fwrite(&flags, 1, 1, w->f) != 1)
        rc = RTMP_ERR_IO;
    if (rc == 0 && w->dur_off) {
        rtmp_amf_put_double(b, rtmp_flv_clock_ms(&w->clock) / 1000.0);
        if (seek_to(w->f, w->dur_off) < 0 || fwrite(b, 1, 8, w->f) != 8)
            rc = RTMP_ERR_IO;
    }
    if (rc == 0 && w->size_off) {
        rtmp_amf_put_double(b, (double)w->bytes);
        if (seek_to(w->f, w->size_off) < 0 || fwrite(b, 1, 8, w->f) != 8)
            rc = RTMP_ERR_IO;
    }
    if (fclose(w->f) != 0)
        rc = RTMP_ERR_IO;
    w->f = NULL;
    return rc;
}

/* w:close() -> true, or nil, err, code (closing twice: true) */
static int writer_close(lua_State *L)
{
    lwriter *w = check_writer(L);
    if (w->f && writer_finish(w) < 0)
        return push_errno(L, "close", errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int writer_gc(lua_State *L)
{
    lwriter *w = check_writer(L);
    if (w->f)
        writer_finish(w);
    return 0;
}

static int writer_index(lua_State *L)
{
    lwriter *w = check_writer(L);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "bytes")) { lua_pushinteger(L, (lua_Integer)w->bytes); return 1; }
    if (!strcmp(k, "duration")) { lua_pushinteger(L, rtmp_flv_clock_ms(&w->clock)); return 1; }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
    return 1;
}

/* ---- registration ---- */

static const luaL_Reg reader_methods[] = {
    { "read", reader_read },
    { "close", reader_close },
    { NULL, NULL },
};

static const luaL_Reg writer_methods[] = {
    { "write", writer_write },
    { "close", writer_close },
    { NULL, NULL },
};

/* [-0, +0, m] one metatable: methods, __index, __gc and __close. */
static void createmeta(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction index,
                       lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}

static const luaL_Reg flv_funcs[] = {
    { "open", l_open },
    { "create", l_create },
    { NULL, NULL },
};

void rtmp_l_open_flv(lua_State *L)
{
    createmeta(L, READER_MT, reader_methods, reader_index, reader_close);
    createmeta(L, WRITER_MT, writer_methods, writer_index, writer_gc);
    luaL_newlib(L, flv_funcs);
    lua_setfield(L, -2, "flv");
}
