/*
 * l_mp4.c: rtmp.mp4, MP4 files read as the RTMP messages a publisher
 * sends and written from the messages a player gets, with stdio over the
 * core's sans-I/O reader and writer (core/mp4.h).
 *
 *   local r = assert(rtmp.mp4.open("in.mp4"))     -- r.tracks, r.duration
 *   for msg in r:messages() do ... end             -- metadata, sequence starts, media
 *   local w = assert(rtmp.mp4.writer("out.mp4"))   -- or a sink: function(bytes)
 *   assert(w:write(msg)) ... assert(w:close())      -- w.bytes, w.fragments, w.samples
 *
 * Messages come out as the message objects scripts get from on_message
 * (l_msg.h): stream 0, csid 6 (audio), 7 (video) or 5 (data).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "l_amf.h"
#include "l_msg.h"
#include "../core/aggregate.h"
#include "../core/chunk.h"
#include "../core/error.h"
#include "../core/flv.h"
#include "../core/media.h"
#include "../core/mp4.h"

#define READER_MT "rtmp.mp4.reader"
#define WRITER_MT "rtmp.mp4.writer"

/* [-0, +3, m] nil, "<what>: <message>", "<NAME>" */
static int fail3(lua_State *L, const char *what, int code)
{
    lua_pushnil(L);
    if (code == RTMP_ERR_IO)
        lua_pushfstring(L, "%s: %s", what, strerror(errno));
    else
        lua_pushfstring(L, "%s: %s", what, rtmp_strerror(code));
    lua_pushstring(L, rtmp_errname(code));
    return 3;
}

/* [-0, +2, m] nil, "closed": a method of a closed reader or writer */
static int push_closed(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
}

/* [-0, +1, m] a FourCC as its 4 characters */
static void push_tag(lua_State *L, uint32_t tag)
{
    char b[4] = { (char)(tag >> 24), (char)(tag >> 16), (char)(tag >> 8), (char)tag };
    lua_pushlstring(L, b, 4);
}

/* ---- reading ---- */

enum { P_META, P_SEQ, P_MEDIA, P_END };

typedef struct lreader {
    FILE     *f;                /* NULL once closed */
    rtmp_mp4_reader *r;
    uint64_t  size;
    int       err;              /* the first error, kept */
    uint8_t  *tmp;              /* a range fed to the reader */
    size_t    tmp_cap;
    uint8_t  *data;             /* the samples of one message */
    size_t    data_cap;
    rtmp_buf *out;              /* one message body */
    /* messages() */
    int       phase, enhanced, metadata, seq_kind;
    int       has_peek, has_origin;
    rtmp_mp4_sample peek;
    int64_t   origin;           /* microseconds of the first sample: RTMP time 0 */
    unsigned  kinds[2];         /* tracks RTMP can carry, audio and video */
} lreader;

static lreader *check_reader(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, READER_MT);
}

static void reader_release(lreader *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
    rtmp_mp4_reader_free(m->r);
    m->r = NULL;
    free(m->tmp);
    free(m->data);
    m->tmp = m->data = NULL;
    m->tmp_cap = m->data_cap = 0;
    rtmp_buf_unref(m->out);
    m->out = NULL;
}

static int grow(uint8_t **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    uint8_t *q = realloc(*p, n);
    if (!q)
        return RTMP_ERR_NOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* Read len bytes at off into *p (grown): the bytes read (fewer at the
 * end of the file), or RTMP_ERR_IO / RTMP_ERR_NOMEM. */
static long read_at(lreader *m, uint64_t off, size_t len, uint8_t **p, size_t *cap)
{
    if (grow(p, cap, len ? len : 1) < 0)
        return RTMP_ERR_NOMEM;
    if (off > (uint64_t)INT64_MAX || fseeko(m->f, (off_t)off, SEEK_SET) != 0)
        return RTMP_ERR_IO;
    size_t n = len ? fread(*p, 1, len, m->f) : 0;
    if (n < len && ferror(m->f))
        return RTMP_ERR_IO;
    return (long)n;
}

/* The reader's next step with the ranges it asks for fed: what
 * rtmp_mp4_read returns, never RTMP_MP4_NEED. */
static int step(lreader *m, rtmp_mp4_sample *s)
{
    for (;;) {
        int rc = rtmp_mp4_read(m->r, s);
        if (rc != RTMP_MP4_NEED)
            return rc;
        uint64_t off;
        size_t len;
        rtmp_mp4_reader_need(m->r, &off, &len);
        long n = read_at(m, off, len, &m->tmp, &m->tmp_cap);
        if (n < 0)
            return (int)n;
        rc = rtmp_mp4_reader_feed(m->r, m->tmp, (size_t)n);
        if (m->tmp_cap > (1u << 20)) {  /* a moov or moof: the reader has its copy */
            free(m->tmp);
            m->tmp = NULL;
            m->tmp_cap = 0;
        }
        if (rc < 0)
            return rc;
    }
}

/* [-0, +3, m] nil, "path: message (box at offset N)", code */
static int reader_fail(lua_State *L, lreader *m, const char *path, int code)
{
    uint32_t box;
    uint64_t off;
    rtmp_mp4_reader_where(m->r, &box, &off);
    if (box) {
        char b[5] = { (char)(box >> 24), (char)(box >> 16), (char)(box >> 8), (char)box, 0 };
        for (int i = 0; i < 4; i++)
            if (b[i] < 32 || b[i] > 126)
                b[i] = '?';
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s (%s box at offset %I)", path, rtmp_strerror(code), b, (lua_Integer)off);
        lua_pushstring(L, rtmp_errname(code));
        return 3;
    }
    return fail3(L, path, code);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* [-0, +1, m] the tracks as Lua tables */
static void push_tracks(lua_State *L, lreader *m)
{
    unsigned n = rtmp_mp4_reader_ntracks(m->r);
    lua_createtable(L, (int)n, 0);
    for (unsigned i = 0; i < n; i++) {
        const rtmp_mp4_track *t = rtmp_mp4_reader_track(m->r, i);
        lua_createtable(L, 0, 14);
        set_int(L, "id", t->id);
        set_int(L, "rtmp_id", t->rtmp_id);
        lua_pushstring(L, t->type == RTMP_MSG_VIDEO ? "video" : "audio");
        lua_setfield(L, -2, "kind");
        const char *name = rtmp_media_codec_name(t->codec);
        if (name && rtmp_mp4_codec_of(t->codec)) {
            lua_pushstring(L, name);
            lua_setfield(L, -2, "codec");
            m->kinds[t->type == RTMP_MSG_VIDEO]++;
        }
        push_tag(L, t->entry);
        lua_setfield(L, -2, "entry");
        set_int(L, "timescale", t->timescale);
        set_int(L, "shift", t->shift);
        lua_pushnumber(L, (double)t->duration / t->timescale);
        lua_setfield(L, -2, "duration");
        if (t->type == RTMP_MSG_VIDEO) {
            set_int(L, "width", t->width);
            set_int(L, "height", t->height);
        } else {
            set_int(L, "sample_rate", t->sample_rate);
            set_int(L, "channels", t->channels);
        }
        if (t->oti)
            set_int(L, "object_type", t->oti);
        if (t->config) {
            lua_pushlstring(L, (const char *)t->config, t->config_len);
            lua_setfield(L, -2, "box");
        }
        rtmp_buf *b = NULL;
        int rc = rtmp_mp4_config_to_rtmp(t, &b);
        if (rc >= 0 && rtmp_mp4_codec_of(t->codec)) {
            lua_pushlstring(L, b ? (const char *)b->data : "", b ? b->len : 0);
            lua_setfield(L, -2, "config");
        } else if (rc < 0 && rtmp_mp4_codec_of(t->codec)) {
            lua_pushstring(L, rtmp_strerror(rc));
            lua_setfield(L, -2, "config_error");
        }
        rtmp_buf_unref(b);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static size_t opt_size(lua_State *L, int t, const char *k)
{
    if (!t)
        return 0;
    lua_getfield(L, t, k);
    lua_Integer v = luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    if (v < 0)
        luaL_error(L, "option '%s' must not be negative", k);
    return (size_t)v;
}

/* rtmp.mp4.open(path [, { max_box =, max_sample = }]) -> reader, or nil, err, code */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int t = lua_istable(L, 2) ? 2 : 0;
    rtmp_mp4_limits lim = { opt_size(L, t, "max_box"), (uint32_t)opt_size(L, t, "max_sample") };
    lreader *m = lua_newuserdatauv(L, sizeof *m, 1);
    memset(m, 0, sizeof *m);
    luaL_setmetatable(L, READER_MT);
    m->f = fopen(path, "rb");
    if (!m->f)
        return fail3(L, path, RTMP_ERR_IO);
    if (fseeko(m->f, 0, SEEK_END) != 0 || ftello(m->f) < 0) {
        int e = errno;
        reader_release(m);
        errno = e;
        return fail3(L, path, RTMP_ERR_IO);
    }
    m->size = (uint64_t)ftello(m->f);
    m->r = rtmp_mp4_reader_new(m->size, &lim);
    if (!m->r) {
        reader_release(m);
        return fail3(L, path, RTMP_ERR_NOMEM);
    }
    rtmp_mp4_sample s;
    int rc = step(m, &s);
    if (rc != RTMP_MP4_TRACKS) {
        int ret = reader_fail(L, m, path, rc < 0 ? rc : RTMP_ERR_MP4_NO_MOOV);
        reader_release(m);
        return ret;
    }
    lua_pushvalue(L, -1);
    lua_createtable(L, 0, 2);
    push_tracks(L, m);
    lua_setfield(L, -2, "tracks");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_setiuservalue(L, -2, 1);
    lua_pop(L, 1);
    return 1;
}

/* The next sample of a track RTMP can carry into *s: 1, 0 at the end,
 * or a negative code (kept in m->err). */
static int next_sample(lreader *m, rtmp_mp4_sample *s)
{
    if (m->err)
        return m->err;
    if (m->has_peek) {
        *s = m->peek;
        m->has_peek = 0;
        return 1;
    }
    for (;;) {
        int rc = step(m, s);
        if (rc < 0)
            return m->err = rc;
        if (rc == RTMP_MP4_END)
            return 0;
        if (rc == RTMP_MP4_SAMPLE && rtmp_mp4_codec_of(rtmp_mp4_reader_track(m->r, s->track)->codec))
            return 1;
    }
}

/* [-0, +1, m] the sample s with its bytes as a table */
static int push_sample(lua_State *L, lreader *m, const rtmp_mp4_sample *s)
{
    long n = read_at(m, s->offset, s->size, &m->data, &m->data_cap);
    if (n < 0 || (size_t)n < s->size)
        return n < 0 ? (int)n : RTMP_ERR_MP4_TRUNCATED;
    lua_createtable(L, 0, 10);
    set_int(L, "track", (lua_Integer)s->track + 1);
    set_int(L, "dts", (lua_Integer)s->dts);
    set_int(L, "cts", s->cts);
    set_int(L, "duration", s->duration);
    lua_pushboolean(L, s->key);
    lua_setfield(L, -2, "key");
    lua_pushnumber(L, s->time_us / 1000.0);
    lua_setfield(L, -2, "time");
    set_int(L, "offset", (lua_Integer)s->offset);
    set_int(L, "size", s->size);
    lua_pushlstring(L, (const char *)m->data, s->size);
    lua_setfield(L, -2, "data");
    return 0;
}

/* r:read() -> sample { track, dts, cts, duration, key, time (ms), offset,
 * size, data }, nil at the end, or nil, err, code */
static int reader_read(lua_State *L)
{
    lreader *m = check_reader(L, 1);
    if (!m->r)
        return push_closed(L);
    rtmp_mp4_sample s;
    int rc = m->err ? m->err : step(m, &s);
    if (rc == RTMP_MP4_END)
        return 0;
    if (rc == RTMP_MP4_SAMPLE && (rc = push_sample(L, m, &s)) == 0)
        return 1;
    m->err = rc;
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "path");
    return reader_fail(L, m, lua_tostring(L, -1), rc);
}

/* [-0, +1, m] a message object of type with the body in m->out */
static void push_body(lua_State *L, lreader *m, uint8_t type, uint32_t ts)
{
    rtmp_msg_hdr h = { .csid = type == RTMP_MSG_AUDIO ? 6 : type == RTMP_MSG_VIDEO ? 7 : 5,
                       .timestamp = ts, .length = (uint32_t)m->out->len, .stream_id = 0,
                       .type = type, .fmt = RTMP_FMT_AUTO };
    rtmp_l_push_msg(L, &h, m->out->data, 0, RTMP_DEFAULT_AMF_DEPTH);
    m->out->len = 0;
}

/* Microseconds (a difference of two sample times: taken as a double, a
 * lying file's times cannot overflow) to RTMP's milliseconds, rounded. */
static int64_t rtmp_ms(double us)
{
    double ms = us / 1000;
    if (ms > 4e18 || ms < -4e18)
        return ms > 0 ? (int64_t)4e18 : -(int64_t)4e18;
    return (int64_t)(ms < 0 ? ms - 0.5 : ms + 0.5);
}

/* A composition time offset in SI24's range (a lying file's may not be). */
static int32_t clamp_cts(int64_t v)
{
    return v > 0x7FFFFF ? 0x7FFFFF : v < -0x800000 ? -0x800000 : (int32_t)v;
}

/* The sequence start of the tracks of one kind (video, then audio): 1
 * with the body in m->out, 0 when that kind has none, or a negative code. */
static int seq_message(lreader *m, uint8_t type)
{
    rtmp_mp4_part parts[RTMP_MEDIA_MAX_TRACKS];
    size_t at[RTMP_MEDIA_MAX_TRACKS];
    unsigned n = 0;
    rtmp_buf *cfg = NULL;
    int rc = 0;
    for (unsigned i = 0; i < rtmp_mp4_reader_ntracks(m->r) && n < RTMP_MEDIA_MAX_TRACKS; i++) {
        const rtmp_mp4_track *t = rtmp_mp4_reader_track(m->r, i);
        const rtmp_mp4_codec *c = rtmp_mp4_codec_of(t->codec);
        if (t->type != type || !c || c->seq_start == RTMP_MP4_SEQ_NONE)
            continue;
        at[n] = cfg ? cfg->len : 0;
        if ((rc = rtmp_mp4_config_to_rtmp(t, &cfg)) < 0)
            break;
        parts[n] = (rtmp_mp4_part){ .track = t, .len = (size_t)rc };
        n++;
    }
    for (unsigned i = 0; rc >= 0 && i < n; i++)
        parts[i].data = cfg ? cfg->data + at[i] : (const uint8_t *)"";
    if (rc >= 0 && n)
        rc = rtmp_mp4_put_message(&m->out, RTMP_MEDIA_SEQ_START, 1, m->enhanced, m->kinds[type == RTMP_MSG_VIDEO] > 1,
                                  parts, n);
    rtmp_buf_unref(cfg);
    return rc < 0 ? rc : n > 0;
}

/* One media message from the next sample and, for a kind with several
 * tracks, the samples of its other tracks at the same time and frame
 * type: 1 (body in m->out, *type, *ts), 0 at the end, or a code. */
static int media_message(lreader *m, uint8_t *type, uint32_t *ts)
{
    rtmp_mp4_sample s[RTMP_MEDIA_MAX_TRACKS];
    rtmp_mp4_part parts[RTMP_MEDIA_MAX_TRACKS];
    int rc = next_sample(m, &s[0]);
    if (rc <= 0)
        return rc;
    const rtmp_mp4_track *t0 = rtmp_mp4_reader_track(m->r, s[0].track);
    int multi = m->kinds[t0->type == RTMP_MSG_VIDEO] > 1;
    if (!m->has_origin) {
        m->origin = s[0].time_us;
        m->has_origin = 1;
    }
    int64_t ms = rtmp_ms((double)s[0].time_us - (double)m->origin);
    unsigned n = 1;
    while (multi && n < RTMP_MEDIA_MAX_TRACKS) {
        if ((rc = next_sample(m, &s[n])) < 0)
            return rc;
        if (rc == 0)
            break;
        const rtmp_mp4_track *t = rtmp_mp4_reader_track(m->r, s[n].track);
        int same = t->type == t0->type && s[n].key == s[0].key
                && rtmp_ms((double)s[n].time_us - (double)m->origin) == ms;
        for (unsigned i = 0; same && i < n; i++)
            same = s[i].track != s[n].track;
        if (!same) {
            m->peek = s[n];
            m->has_peek = 1;
            break;
        }
        n++;
    }
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += s[i].size;
    if (grow(&m->data, &m->data_cap, total ? total : 1) < 0)
        return RTMP_ERR_NOMEM;
    size_t pos = 0;
    for (unsigned i = 0; i < n; i++) {
        if (s[i].size) {
            if (s[i].offset > (uint64_t)INT64_MAX || fseeko(m->f, (off_t)s[i].offset, SEEK_SET) != 0
                || fread(m->data + pos, 1, s[i].size, m->f) != s[i].size)
                return ferror(m->f) ? RTMP_ERR_IO : RTMP_ERR_MP4_TRUNCATED;
        }
        int64_t pts = rtmp_ms((double)s[i].time_us + (double)s[i].cts_us - (double)m->origin);
        parts[i] = (rtmp_mp4_part){ .track = rtmp_mp4_reader_track(m->r, s[i].track), .len = s[i].size,
                                    .cts = clamp_cts(pts - ms) };
        pos += s[i].size;
    }
    for (unsigned i = 0, off = 0; i < n; off += (unsigned)parts[i].len, i++)
        parts[i].data = m->data + off;
    rc = rtmp_mp4_put_message(&m->out, RTMP_MEDIA_CODED_FRAMES, s[0].key, m->enhanced, multi, parts, n);
    if (rc < 0)
        return rc;
    *type = t0->type;
    *ts = ms > 0 ? (uint32_t)ms : 0;
    return 1;
}

/* The iterator of r:messages(): the next message, nil at the end, or
 * nil, err, code (the error is kept: r.error). */
static int messages_next(lua_State *L)
{
    lreader *m = check_reader(L, lua_upvalueindex(1));
    int rc = 0;
    if (!m->r)
        return push_closed(L);
    if (m->err)
        goto failed;
    while (m->phase != P_END) {
        if (m->phase == P_META) {
            m->phase = P_SEQ;
            if (!m->metadata)
                continue;
            rtmp_mp4_track tracks[RTMP_MP4_MAX_TRACKS];
            unsigned n = rtmp_mp4_reader_ntracks(m->r);
            for (unsigned i = 0; i < n; i++)
                tracks[i] = *rtmp_mp4_reader_track(m->r, i);
            if ((rc = rtmp_mp4_put_metadata(&m->out, tracks, n, rtmp_mp4_reader_duration(m->r), m->enhanced)) < 0)
                break;
            push_body(L, m, RTMP_MSG_AMF0_DATA, 0);
            return 1;
        }
        if (m->phase == P_SEQ) {
            uint8_t type = m->seq_kind++ == 0 ? RTMP_MSG_VIDEO : RTMP_MSG_AUDIO;
            if (m->seq_kind == 2)
                m->phase = P_MEDIA;
            if ((rc = seq_message(m, type)) < 0)
                break;
            if (rc > 0) {
                push_body(L, m, type, 0);
                return 1;
            }
            continue;
        }
        uint8_t type;
        uint32_t ts;
        if ((rc = media_message(m, &type, &ts)) < 0)
            break;
        if (rc == 0) {
            m->phase = P_END;
            break;
        }
        push_body(L, m, type, ts);
        return 1;
    }
    if (rc >= 0)
        return 0;
    m->err = rc;
failed:
    lua_getiuservalue(L, lua_upvalueindex(1), 1);
    lua_getfield(L, -1, "path");
    return reader_fail(L, m, lua_tostring(L, -1), m->err);
}

static int opt_flag(lua_State *L, int t, const char *k, int def)
{
    if (!t)
        return def;
    int v = lua_getfield(L, t, k) == LUA_TNIL ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* r:messages([{ enhanced = false, metadata = true }]) -> iterator */
static int reader_messages(lua_State *L)
{
    lreader *m = check_reader(L, 1);
    int t = lua_istable(L, 2) ? 2 : 0;
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    m->enhanced = opt_flag(L, t, "enhanced", 0);
    m->metadata = opt_flag(L, t, "metadata", 1);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, messages_next, 1);
    return 1;
}

static int reader_close(lua_State *L)
{
    reader_release(check_reader(L, 1));
    return 0;
}

static int reader_index(lua_State *L)
{
    lreader *m = check_reader(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "tracks") || !strcmp(k, "path")) {
        lua_getiuservalue(L, 1, 1);
        lua_getfield(L, -1, k);
        return 1;
    }
    if (!strcmp(k, "size")) { lua_pushinteger(L, (lua_Integer)m->size); return 1; }
    if (m->r && !strcmp(k, "duration")) { lua_pushnumber(L, rtmp_mp4_reader_duration(m->r)); return 1; }
    if (m->r && !strcmp(k, "fragmented")) { lua_pushboolean(L, rtmp_mp4_reader_fragmented(m->r)); return 1; }
    if (!strcmp(k, "error")) {
        if (!m->err)
            return 0;
        lua_pushstring(L, rtmp_strerror(m->err));
        return 1;
    }
    lua_getfield(L, lua_upvalueindex(1), k);
    return 1;
}

/* ---- writing ---- */

typedef struct lwriter {
    rtmp_mp4_writer *w;         /* NULL once closed */
    FILE     *f;                /* the file, or NULL: the sink (user value 1) */
    rtmp_buf *out;              /* bytes made, not yet written */
    uint64_t  bytes;
    int       has_media;
    uint32_t  first_ts, last_ts;
} lwriter;

static lwriter *check_writer(lua_State *L)
{
    return luaL_checkudata(L, 1, WRITER_MT);
}

/* Write what the core made: 0, or pushes nil, err and returns 2 (sink
 * refused) / RTMP_ERR_IO (file). */
static int drain(lua_State *L, lwriter *w)
{
    if (!w->out || w->out->len == 0)
        return 0;
    size_t n = w->out->len;
    w->out->len = 0;
    if (w->f) {
        if (fwrite(w->out->data, 1, n, w->f) != n)
            return RTMP_ERR_IO;
    } else {
        lua_getiuservalue(L, 1, 1);
        int callable = lua_type(L, -1) == LUA_TFUNCTION;
        if (!callable) {                /* an object with a write method: sink:write(bytes) */
            lua_getfield(L, -1, "write");
            lua_insert(L, -2);
        }
        lua_pushlstring(L, (const char *)w->out->data, n);
        lua_call(L, callable ? 1 : 2, 2);
        if (!lua_toboolean(L, -2)) {
            lua_remove(L, -2);
            lua_pushnil(L);
            lua_insert(L, -2);
            return 2;
        }
        lua_pop(L, 2);
    }
    w->bytes += n;
    return 0;
}

/* [-0, +0, -] width and height from an onMetaData payload */
static void note_metadata(lua_State *L, lwriter *w, const uint8_t *p, size_t len)
{
    size_t skip = rtmp_flv_set_data_frame_len(p, len);
    int top = lua_gettop(L);
    if (rtmp_l_amf0_push_values(L, p + skip, len - skip, RTMP_DEFAULT_AMF_DEPTH) >= 0
        && lua_geti(L, -1, 1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "onMetaData")
        && lua_geti(L, -2, 2) == LUA_TTABLE) {
        lua_getfield(L, -1, "width");
        lua_getfield(L, -2, "height");
        lua_Number wd = lua_tonumber(L, -2), ht = lua_tonumber(L, -1);
        if (wd > 0 && wd < 65536 && ht > 0 && ht < 65536)
            rtmp_mp4_writer_dimensions(w->w, (uint16_t)wd, (uint16_t)ht);
    }
    lua_settop(L, top);
}

/* One message: 0, or a negative code. */
static int write_one(lua_State *L, lwriter *w, uint8_t type, uint32_t ts, const uint8_t *p, size_t len)
{
    if (type == RTMP_MSG_AMF0_DATA) {
        note_metadata(L, w, p, len);
        return 0;
    }
    if (type != RTMP_MSG_AUDIO && type != RTMP_MSG_VIDEO)
        return 0;
    if (!w->has_media || ts < w->first_ts)
        w->first_ts = ts;
    if (!w->has_media || ts > w->last_ts)
        w->last_ts = ts;
    w->has_media = 1;
    return rtmp_mp4_writer_message(w->w, type, ts, p, len, &w->out);
}

/* w:write(msg [, timestamp]) -> true, or nil, err, code */
static int writer_write(lua_State *L)
{
    lwriter *w = check_writer(L);
    lmsg *msg = luaL_testudata(L, 2, MSG_MT);
    if (!msg) {                         /* a table: made a message by rtmp.message */
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.core");
        lua_getfield(L, -1, "message");
        lua_pushvalue(L, 2);
        lua_getfield(L, 2, "payload");
        lua_call(L, 2, 1);
        lua_replace(L, 2);
        lua_pop(L, 1);
        msg = check_msg(L, 2);
    }
    lua_Integer ts = luaL_optinteger(L, 3, msg->h.timestamp); /* one that replaces the message's */
    luaL_argcheck(L, ts >= 0 && ts <= 0xFFFFFFFFLL, 3, "timestamp out of range 0 .. 2^32-1");
    if (!w->w)
        return push_closed(L);
    int rc = 0;
    if (msg->h.type == RTMP_MSG_AGGREGATE) {
        rtmp_agg_iter it;
        rtmp_agg_sub sub;
        rtmp_agg_init(&it, msg->data, msg->len, (uint32_t)ts, 0);
        while (rc >= 0 && (rc = rtmp_agg_next(&it, &sub)) > 0)
            rc = write_one(L, w, sub.type, sub.timestamp, sub.data, sub.size);
    } else {
        rc = write_one(L, w, msg->h.type, (uint32_t)ts, msg->data, msg->len);
    }
    int drc = drain(L, w);
    if (drc == 2)
        return 2;
    if (drc < 0)
        return fail3(L, "write", drc);
    if (rc < 0)
        return fail3(L, "write", rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* Finish the file: 0, 2 (a sink's nil, err pushed) or a negative code. */
static int writer_finish(lua_State *L, lwriter *w)
{
    int rc = rtmp_mp4_writer_finish(w->w, &w->out);
    int drc = rc < 0 ? 0 : drain(L, w);
    if (w->f && fclose(w->f) != 0 && rc >= 0 && drc == 0)
        drc = RTMP_ERR_IO;
    w->f = NULL;
    return rc < 0 ? rc : drc;
}

static void writer_release(lwriter *w)
{
    if (w->f)
        fclose(w->f);
    w->f = NULL;
    rtmp_mp4_writer_free(w->w);
    w->w = NULL;
    rtmp_buf_unref(w->out);
    w->out = NULL;
}

/* w:close() -> true, or nil, err, code (closing twice: true) */
static int writer_close(lua_State *L)
{
    lwriter *w = check_writer(L);
    if (!w->w) {
        lua_pushboolean(L, 1);
        return 1;
    }
    int rc = writer_finish(L, w);
    rtmp_mp4_writer_stats st;
    rtmp_mp4_writer_stats_get(w->w, &st);
    lua_pushvalue(L, 1);                /* keep the final counts for the fields */
    lua_getiuservalue(L, 1, 2);
    lua_pushinteger(L, (lua_Integer)st.fragments);
    lua_setfield(L, -2, "fragments");
    lua_pushinteger(L, (lua_Integer)st.samples);
    lua_setfield(L, -2, "samples");
    lua_pushinteger(L, (lua_Integer)st.dropped);
    lua_setfield(L, -2, "dropped");
    lua_pushinteger(L, (lua_Integer)st.late);
    lua_setfield(L, -2, "late");
    lua_pushinteger(L, st.tracks);
    lua_setfield(L, -2, "tracks");
    lua_pop(L, 2);
    rtmp_mp4_writer_free(w->w);
    w->w = NULL;
    if (rc == 2)
        return 2;
    if (rc < 0)
        return fail3(L, "close", rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* Collected unclosed: a file gets its last fragment (a sink nothing:
 * no Lua call from a finalizer). */
static int writer_gc(lua_State *L)
{
    lwriter *w = check_writer(L);
    if (w->w && w->f && rtmp_mp4_writer_finish(w->w, &w->out) == 0 && w->out)
        fwrite(w->out->data, 1, w->out->len, w->f);
    writer_release(w);
    return 0;
}

/* Create the missing directories of path (mkdir option); 0 or
 * RTMP_ERR_NOMEM. */
static int mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return RTMP_ERR_NOMEM;
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(p, 0777);                 /* errors: fopen says */
        *s = '/';
    }
    free(p);
    return 0;
}

/* rtmp.mp4.writer(path | sink [, { fragment_ms =, max_fragment =, mkdir = }])
 * -> writer, or nil, err, code.  A sink is a function(bytes) or an object
 * with a write method (io.stdout); nil, err from it fails the write. */
static int l_writer(lua_State *L)
{
    int t = lua_istable(L, 2) ? 2 : 0;
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    int is_path = lua_type(L, 1) == LUA_TSTRING;
    luaL_argexpected(L, is_path || !lua_isnoneornil(L, 1), 1, "path or sink");
    rtmp_mp4_writer_opts o = { (uint32_t)opt_size(L, t, "fragment_ms"), opt_size(L, t, "max_fragment") };
    lwriter *w = lua_newuserdatauv(L, sizeof *w, 2);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WRITER_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 2);
    if (is_path) {
        const char *path = lua_tostring(L, 1);
        if (opt_flag(L, t, "mkdir", 0) && mkdirs(path) < 0)
            return fail3(L, path, RTMP_ERR_NOMEM);
        w->f = fopen(path, "wb");
        if (!w->f)
            return fail3(L, path, RTMP_ERR_IO);
    } else {
        lua_pushvalue(L, 1);
        lua_setiuservalue(L, -2, 1);
    }
    w->w = rtmp_mp4_writer_new(&o);
    if (!w->w) {
        writer_release(w);
        return fail3(L, "rtmp.mp4.writer", RTMP_ERR_NOMEM);
    }
    return 1;
}

static int writer_index(lua_State *L)
{
    lwriter *w = check_writer(L);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "bytes")) { lua_pushinteger(L, (lua_Integer)w->bytes); return 1; }
    if (!strcmp(k, "duration")) {
        lua_pushinteger(L, w->has_media ? (lua_Integer)(w->last_ts - w->first_ts) : 0);
        return 1;
    }
    static const char *const stats[] = { "fragments", "samples", "dropped", "late", "tracks", NULL };
    for (int i = 0; stats[i]; i++) {
        if (strcmp(k, stats[i]))
            continue;
        if (!w->w) {                    /* closed: the final counts */
            lua_getiuservalue(L, 1, 2);
            lua_getfield(L, -1, k);
            return 1;
        }
        rtmp_mp4_writer_stats st;
        rtmp_mp4_writer_stats_get(w->w, &st);
        uint64_t v[] = { st.fragments, st.samples, st.dropped, st.late, st.tracks };
        lua_pushinteger(L, (lua_Integer)v[i]);
        return 1;
    }
    lua_getfield(L, lua_upvalueindex(1), k);
    return 1;
}

/* ---- registration ---- */

static const luaL_Reg reader_methods[] = {
    { "read", reader_read }, { "messages", reader_messages }, { "close", reader_close }, { NULL, NULL },
};
static const luaL_Reg reader_meta[] = { { "__gc", reader_close }, { "__close", reader_close }, { NULL, NULL } };

static const luaL_Reg writer_methods[] = {
    { "write", writer_write }, { "close", writer_close }, { NULL, NULL },
};
static const luaL_Reg writer_meta[] = { { "__gc", writer_gc }, { "__close", writer_gc }, { NULL, NULL } };

static const luaL_Reg mp4_funcs[] = {
    { "open", l_open },
    { "writer", l_writer },
    { NULL, NULL },
};

void rtmp_l_open_mp4(lua_State *L)
{
    luaL_newmetatable(L, READER_MT);
    luaL_setfuncs(L, reader_meta, 0);
    luaL_newlib(L, reader_methods);     /* __index: the fields, then these (its upvalue) */
    lua_pushcclosure(L, reader_index, 1);
    lua_setfield(L, -2, "__index");
    luaL_newmetatable(L, WRITER_MT);
    luaL_setfuncs(L, writer_meta, 0);
    luaL_newlib(L, writer_methods);
    lua_pushcclosure(L, writer_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 2);
    luaL_newlib(L, mp4_funcs);
    lua_setfield(L, -2, "mp4");
}
