/*
 * l_trace.c: the per-connection message trace (conn:trace, the trace
 * setting, luartmp --trace).
 *
 * The session's observer (session.h) reports each message received and
 * each message queued; this file turns one into one line:
 *
 *   <time> conn=<id> <in|out> csid=<n> fmt=<n> type=<name> stream=<n> ts=<n> len=<n> body=<lua>
 *
 * and appends it to a file or writes it to the log.  Bodies are Lua table
 * constructors (AMF values as Lua literals, rtmp.null / rtmp.undefined
 * for null and undefined; control fields; media codec and frame type),
 * formatted here in C from the core decoders into a fixed buffer: long
 * strings, deep values and long bodies are cut with a --[[...]] marker and
 * the result is still a valid constructor.  docs/TRACE.md has the format.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "l_rtmp.h"
#include "l_msg.h"
#include "../core/amf0.h"
#include "../core/chunk.h"
#include "../core/control.h"
#include "../core/error.h"
#include "../core/log.h"
#include "../core/media.h"
#include "../core/session.h"

#define TRACEFILE_MT "rtmp.tracefile"
#define TRACEFILES_KEY "rtmp.tracefiles"

#define BODY_MAX   3000   /* body characters before the cut */
#define RESERVE    512    /* room after BODY_MAX for markers and closers */
#define STR_MAX    200    /* string bytes shown */
#define TRACE_DEPTH 8     /* nesting shown */

/* A file opened by path, shared by every trace that names the same path. */
typedef struct tracefile {
    FILE *f;
} tracefile;

struct rtmp_l_trace {
    lua_State   *L;
    tracefile   *own;     /* the file opened by path, or NULL */
    luaL_Stream *stream;  /* a Lua file given by the script, or NULL */
    int          fileref; /* registry ref keeping that file object alive */
    unsigned long id;
    char         peer[64];
};

/* ---- the body ---- */

typedef struct tbuf {
    char  *p;
    size_t n, lim, cap;   /* lim: the budget; cap: lim plus the reserve */
} tbuf;

/* Append unless past the budget: 0, or -1 (nothing appended). */
static int put(tbuf *t, const char *s, size_t n)
{
    if (t->n + n > t->lim)
        return -1;
    memcpy(t->p + t->n, s, n);
    t->n += n;
    return 0;
}

static int puts_(tbuf *t, const char *s) { return put(t, s, strlen(s)); }

/* Append from the reserve (markers, closers): never fails, cut at cap. */
static void force(tbuf *t, const char *s)
{
    size_t n = strlen(s);
    if (t->n + n > t->cap)
        n = t->cap - t->n;
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

static int putf(tbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int putf(tbuf *t, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return put(t, tmp, n < 0 ? 0 : (size_t)n >= sizeof tmp ? sizeof tmp - 1 : (size_t)n);
}

/* A Lua string literal of s[0 .. min(len, STR_MAX)), with a marker for
 * the bytes left out. */
static int put_string(tbuf *t, const char *s, size_t len)
{
    size_t shown = len > STR_MAX ? STR_MAX : len;
    char tmp[STR_MAX * 4 + 64];
    size_t k = 0;
    tmp[k++] = '"';
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            tmp[k++] = '\\';
            tmp[k++] = (char)c;
        } else if (c == '\n') {
            tmp[k++] = '\\';
            tmp[k++] = 'n';
        } else if (c < 0x20 || c >= 0x7F) {
            k += (size_t)snprintf(tmp + k, 5, "\\x%02X", c);
        } else {
            tmp[k++] = (char)c;
        }
    }
    tmp[k++] = '"';
    if (shown < len)
        k += (size_t)snprintf(tmp + k, 40, " --[[+%zu bytes]]", len - shown);
    return put(t, tmp, k);
}

static int is_name(const char *s, size_t len)
{
    static const char *const kw[] = { "and", "break", "do", "else", "elseif", "end", "false", "for",
        "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
        "true", "until", "while" };
    if (len == 0 || len > 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_'))
            return 0;
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strlen(kw[i]) == len && memcmp(kw[i], s, len) == 0)
            return 0;
    return 1;
}

static int put_key(tbuf *t, const char *k, size_t len)
{
    if (is_name(k, len))
        return put(t, k, len) < 0 || put(t, "=", 1) < 0 ? -1 : 0;
    if (put(t, "[", 1) < 0 || put_string(t, k, len) < 0)
        return -1;
    return put(t, "]=", 2);
}

/* A number as Lua reads it back: integers without a fraction, others
 * with the fewest digits that round-trip, nan and infinities as
 * expressions. */
static int put_number(tbuf *t, double v)
{
    if (isnan(v))
        return puts_(t, "0/0");
    if (isinf(v))
        return puts_(t, v > 0 ? "1/0" : "-1/0");
    if (v == 0 && signbit(v))
        return puts_(t, "-0.0");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return putf(t, "%.0f", v);
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return puts_(t, tmp);
}

/* Results of the value formatter. */
enum { V_OK = 0, V_STOP, V_OVER, V_BAD };

static int fmt_value(tbuf *t, rtmp_amf0_reader *r, int depth, int *err);

/* The entries of a container after its head: keyed (object, typed
 * object, ECMA array) or count values (strict array).  Writes the
 * closing brace; V_OK, V_STOP (cut for length, still valid) or V_BAD. */
static int fmt_entries(tbuf *t, rtmp_amf0_reader *r, int depth, int keyed, uint32_t count, int ecma,
                       int *err)
{
    int rc = V_OK;
    for (uint32_t i = 0; keyed || i < count; i++) {
        size_t mark = t->n;
        const char *k = NULL;
        size_t klen = 0;
        if (keyed) {
            if (ecma && rtmp_amf0_ecma_end_missing(r))
                break;
            int kr = rtmp_amf0_read_key(r, &k, &klen);
            if (kr < 0) {
                *err = kr;
                rc = V_BAD;
                break;
            }
            if (kr == RTMP_AMF0_END)
                break;
        }
        int vr = (i > 0 && put(t, ", ", 2) < 0) || (keyed && put_key(t, k, klen) < 0)
               ? V_OVER : fmt_value(t, r, depth + 1, err);
        if (vr == V_OK)
            continue;
        if (vr == V_OVER || vr == V_BAD)
            t->n = mark;
        if (vr == V_OVER)
            force(t, i > 0 ? ", --[[cut]]" : "--[[cut]]");
        rc = vr == V_BAD ? V_BAD : V_STOP;
        break;
    }
    force(t, "}");
    return rc;
}

/* One AMF0 value at r as a Lua expression. */
static int fmt_value(tbuf *t, rtmp_amf0_reader *r, int depth, int *err)
{
    int m = rtmp_amf0_peek_marker(r);
    int rc = 0;
    double d;
    int b;
    const char *s;
    size_t len;
    uint32_t count;
    if (m < 0) {
        *err = m;
        return V_BAD;
    }
    if ((m == RTMP_AMF0_OBJECT || m == RTMP_AMF0_TYPED_OBJECT || m == RTMP_AMF0_ECMA_ARRAY
         || m == RTMP_AMF0_STRICT_ARRAY) && depth >= TRACE_DEPTH) {
        size_t at = rtmp_amf0_offset(r);
        if ((rc = rtmp_amf0_skip_value(r, RTMP_AMF0_MAX_DEPTH)) < 0) {
            *err = rc;
            return V_BAD;
        }
        return putf(t, "{--[[%zu bytes deeper]]}", rtmp_amf0_offset(r) - at) < 0 ? V_OVER : V_OK;
    }
    switch (m) {
    case RTMP_AMF0_NUMBER:
        if ((rc = rtmp_amf0_read_number(r, &d)) < 0)
            break;
        return put_number(t, d) < 0 ? V_OVER : V_OK;
    case RTMP_AMF0_BOOLEAN:
        if ((rc = rtmp_amf0_read_boolean(r, &b)) < 0)
            break;
        return puts_(t, b ? "true" : "false") < 0 ? V_OVER : V_OK;
    case RTMP_AMF0_STRING:
    case RTMP_AMF0_LONG_STRING:
        if ((rc = rtmp_amf0_read_string(r, &s, &len)) < 0)
            break;
        return put_string(t, s, len) < 0 ? V_OVER : V_OK;
    case RTMP_AMF0_XML_DOCUMENT:
        if ((rc = rtmp_amf0_read_xml_document(r, &s, &len)) < 0)
            break;
        return put_string(t, s, len) < 0 ? V_OVER : V_OK;
    case RTMP_AMF0_NULL:
    case RTMP_AMF0_UNDEFINED:
    case RTMP_AMF0_UNSUPPORTED:
        if ((rc = rtmp_amf0_read_marker(r)) < 0)
            break;
        return puts_(t, m == RTMP_AMF0_NULL ? "rtmp.null" : "rtmp.undefined") < 0 ? V_OVER : V_OK;
    case RTMP_AMF0_DATE: {
        int16_t tz;
        if ((rc = rtmp_amf0_read_date(r, &d, &tz)) < 0)
            break;
        if (puts_(t, "{date=") < 0 || put_number(t, d) < 0 || putf(t, ", tz=%d}", tz) < 0)
            return V_OVER;
        return V_OK;
    }
    case RTMP_AMF0_REFERENCE: {
        uint16_t idx;
        if ((rc = rtmp_amf0_read_reference(r, &idx)) < 0)
            break;
        return putf(t, "nil --[[reference %u]]", (unsigned)idx) < 0 ? V_OVER : V_OK;
    }
    case RTMP_AMF0_AVMPLUS: {
        size_t at = rtmp_amf0_offset(r);
        if ((rc = rtmp_amf0_skip_value(r, TRACE_DEPTH)) < 0)
            break;
        return putf(t, "nil --[[amf3 value, %zu bytes]]", rtmp_amf0_offset(r) - at) < 0 ? V_OVER : V_OK;
    }
    case RTMP_AMF0_OBJECT:
    case RTMP_AMF0_ECMA_ARRAY:
    case RTMP_AMF0_TYPED_OBJECT:
    case RTMP_AMF0_STRICT_ARRAY: {
        size_t mark = t->n;
        if (m == RTMP_AMF0_OBJECT)
            rc = rtmp_amf0_read_object_start(r);
        else if (m == RTMP_AMF0_ECMA_ARRAY)
            rc = rtmp_amf0_read_ecma_start(r, &count);
        else if (m == RTMP_AMF0_STRICT_ARRAY)
            rc = rtmp_amf0_read_strict_array_start(r, &count);
        else
            rc = rtmp_amf0_read_typed_object_start(r, &s, &len);
        if (rc < 0)
            break;
        if (m == RTMP_AMF0_TYPED_OBJECT) {
            if (puts_(t, "--[[class ") < 0 || put_string(t, s, len > 64 ? 64 : len) < 0 || puts_(t, "]] ") < 0) {
                t->n = mark;
                return V_OVER;
            }
        }
        if (put(t, "{", 1) < 0) {
            t->n = mark;
            return V_OVER;
        }
        return fmt_entries(t, r, depth, m != RTMP_AMF0_STRICT_ARRAY, count, m == RTMP_AMF0_ECMA_ARRAY, err);
    }
    default:
        rc = RTMP_ERR_AMF_MARKER;
        break;
    }
    *err = rc;
    return V_BAD;
}

/* A body of AMF0 values: {v1, v2, ...}, with decode_error="..." when the
 * bytes do not decode (the values before the bad one are shown). */
static void fmt_amf_body(tbuf *t, const uint8_t *p, size_t len)
{
    rtmp_amf0_reader r;
    rtmp_amf0_reader_init(&r, p, len);
    put(t, "{", 1);
    int err = 0, rc = V_OK;
    for (int i = 0; rtmp_amf0_remaining(&r) > 0; i++) {
        size_t mark = t->n;
        rc = i > 0 && put(t, ", ", 2) < 0 ? V_OVER : fmt_value(t, &r, 0, &err);
        if (rc == V_OK)
            continue;
        if (rc == V_OVER || rc == V_BAD)
            t->n = mark;
        if (rc == V_OVER)
            force(t, i > 0 ? ", --[[cut]]" : "--[[cut]]");
        if (rc == V_BAD) {
            char tmp[120];
            snprintf(tmp, sizeof tmp, "%sdecode_error=\"%s at byte %zu\"", i > 0 ? ", " : "",
                     rtmp_errname(err), rtmp_amf0_offset(&r));
            force(t, tmp);
        }
        break;
    }
    force(t, "}");
}

static void fmt_control(tbuf *t, const rtmp_msg_hdr *h, const uint8_t *p)
{
    rtmp_control c;
    if (rtmp_control_parse(h, p, &c) < 0) {
        putf(t, "{decode_error=\"%s\"}", rtmp_errname(RTMP_ERR_CONTROL));
        return;
    }
    switch (h->type) {
    case RTMP_MSG_SET_CHUNK_SIZE: putf(t, "{chunk_size=%lu}", (unsigned long)c.value); break;
    case RTMP_MSG_ABORT: putf(t, "{abort_csid=%lu}", (unsigned long)c.value); break;
    case RTMP_MSG_ACK: putf(t, "{sequence=%lu}", (unsigned long)c.value); break;
    case RTMP_MSG_WINDOW_ACK_SIZE: putf(t, "{window=%lu}", (unsigned long)c.value); break;
    case RTMP_MSG_SET_PEER_BANDWIDTH:
        if (c.limit >= 0)
            putf(t, "{window=%lu, limit=%d}", (unsigned long)c.value, c.limit);
        else
            putf(t, "{window=%lu}", (unsigned long)c.value);
        break;
    case RTMP_MSG_USER_CONTROL: {
        const char *name = rtmp_uc_name(c.event);
        putf(t, "{event=%u", (unsigned)c.event);
        if (name)
            putf(t, ", event_name=\"%s\"", name);
        if (c.nfields >= 1)
            putf(t, ", %s=%lu", c.event == RTMP_UC_PING_REQUEST || c.event == RTMP_UC_PING_RESPONSE
                                    ? "ping_time" : "stream_id", (unsigned long)c.value);
        if (c.event == RTMP_UC_SET_BUFFER_LENGTH && c.nfields >= 2)
            putf(t, ", buffer_length=%lu", (unsigned long)c.value2);
        put(t, "}", 1);
        break;
    }
    }
}

/* A FourCC as a Lua string literal (escaped: the peer chose the bytes). */
static void put_fourcc(tbuf *t, uint32_t fourcc)
{
    const char b[4] = { (char)(fourcc >> 24), (char)(fourcc >> 16), (char)(fourcc >> 8), (char)fourcc };
    put_string(t, b, 4);
}

/* The parts of an enhanced header after codec and frame: packet, command,
 * ModEx nanoseconds, multitrack mode and tracks, then any fault. */
static void put_enhanced(tbuf *t, const rtmp_media *m, int rc)
{
    const char *packet = rtmp_media_packet_name(m->packet);
    if (packet)
        putf(t, ", packet=\"%s\"", packet);
    else if (m->wire_packet != 0xFF)
        putf(t, ", packet=%d", m->wire_packet);
    if (m->packet == RTMP_MEDIA_COMMAND)
        putf(t, ", command=%d", m->command);
    if (m->has_nano)
        putf(t, ", nano_offset=%lu", (unsigned long)m->nano);
    const char *mode = rtmp_media_multitrack_name(m->multitrack);
    if (mode) {
        putf(t, ", multitrack=\"%s\", tracks={", mode);
        for (unsigned i = 0; i < m->ntracks; i++) {
            putf(t, "%s{id=%d, codec=", i ? ", " : "", m->track[i].id);
            put_fourcc(t, m->track[i].fourcc);
            putf(t, ", size=%zu}", m->track[i].size);
        }
        put(t, "}", 1);
    }
    if (rc < 0)
        putf(t, ", decode_error=\"%s\"", rtmp_errname(rc));
}

static void fmt_video(tbuf *t, const uint8_t *p, size_t len)
{
    static const char *const frames[] = { NULL, "key", "inter", "disposable", "generated", "command" };
    rtmp_media m;
    int rc = rtmp_media_parse(&m, RTMP_MSG_VIDEO, p, len);
    if (rc == RTMP_ERR_MEDIA_EMPTY) {
        put(t, "{}", 2);
        return;
    }
    put(t, "{codec=", 7);
    const char *legacy = m.enhanced ? NULL : rtmp_media_legacy_name(RTMP_MSG_VIDEO, m.legacy_id);
    if (m.enhanced && m.fourcc)
        put_fourcc(t, m.fourcc);
    else if (m.enhanced)
        put(t, "nil", 3);
    else if (legacy)
        putf(t, "\"%s\"", legacy);
    else
        putf(t, "%d", m.legacy_id);
    if (m.frame >= 1 && m.frame <= 5)
        putf(t, ", frame=\"%s\"", frames[m.frame]);
    else
        putf(t, ", frame=%d", m.frame);
    if (m.enhanced) {
        put_enhanced(t, &m, rc);
    } else if (m.packet == RTMP_MEDIA_COMMAND) {
        putf(t, ", command=%d", m.command);
    } else if (m.wire_packet != 0xFF) { /* AVC, legacy HEVC */
        static const char *const avc[] = { "seq", "nalu", "eos" };
        if (m.wire_packet < 3)
            putf(t, ", packet=\"%s\"", avc[m.wire_packet]);
        else
            putf(t, ", packet=%d", m.wire_packet);
    }
    if (rc < 0 && !m.enhanced) /* put_enhanced shows it for enhanced headers */
        putf(t, ", decode_error=\"%s\"", rtmp_errname(rc));
    put(t, "}", 1);
}

static void fmt_audio(tbuf *t, const uint8_t *p, size_t len)
{
    static const int rates[] = { 5512, 11025, 22050, 44100 };
    rtmp_media m;
    int rc = rtmp_media_parse(&m, RTMP_MSG_AUDIO, p, len);
    if (rc == RTMP_ERR_MEDIA_EMPTY) {
        put(t, "{}", 2);
        return;
    }
    put(t, "{codec=", 7);
    if (m.enhanced) {
        if (m.fourcc)
            put_fourcc(t, m.fourcc);
        else
            put(t, "nil", 3);
        put_enhanced(t, &m, rc);
        put(t, "}", 1);
        return;
    }
    const char *legacy = rtmp_media_legacy_name(RTMP_MSG_AUDIO, m.legacy_id);
    if (legacy)
        putf(t, "\"%s\"", legacy);
    else
        putf(t, "%d", m.legacy_id); /* reserved sound formats 12, 13 */
    putf(t, ", rate=%d, bits=%d, channels=%d", rates[m.sound_rate], m.sound_bits, m.sound_channels);
    if (m.wire_packet != 0xFF) { /* AAC */
        if (m.wire_packet < 2)
            putf(t, ", packet=\"%s\"", m.wire_packet == 0 ? "seq" : "raw");
        else
            putf(t, ", packet=%d", m.wire_packet);
    }
    if (rc < 0)
        putf(t, ", decode_error=\"%s\"", rtmp_errname(rc));
    put(t, "}", 1);
}

/* The whole line for one message (NUL-terminated, no newline); returns
 * its length.  line holds at least 4096 bytes. */
static size_t format_line(char *line, const struct timeval *tv, unsigned long id, int dir, int fmt,
                          const rtmp_msg_hdr *h, const uint8_t *payload, size_t len)
{
    int n = snprintf(line, 256, "%lld.%06ld conn=%lu %s ", (long long)tv->tv_sec, (long)tv->tv_usec, id,
                     dir == RTMP_TRACE_IN ? "in" : "out");
    if (!h) {
        n += snprintf(line + n, 256, "csid=- fmt=- type=raw stream=- ts=- len=%zu body={}", len);
        return (size_t)n;
    }
    char fmts[8], types[8];
    snprintf(fmts, sizeof fmts, "%d", fmt);
    const char *tname = rtmp_msg_type_name(h->type);
    if (!strcmp(tname, "unknown")) {
        snprintf(types, sizeof types, "%u", (unsigned)h->type);
        tname = types;
    }
    n += snprintf(line + n, 256, "csid=%lu fmt=%s type=%s stream=%lu ts=%lu len=%lu body=",
                  (unsigned long)h->csid, fmt >= 0 && fmt <= 3 ? fmts : "-", tname,
                  (unsigned long)h->stream_id, (unsigned long)h->timestamp, (unsigned long)h->length);
    tbuf t = { line + n, 0, BODY_MAX, BODY_MAX + RESERVE };
    if (rtmp_is_control(h->type)) {
        fmt_control(&t, h, payload);
    } else if (h->type == RTMP_MSG_AMF0_COMMAND || h->type == RTMP_MSG_AMF0_DATA) {
        fmt_amf_body(&t, payload, len);
    } else if (h->type == RTMP_MSG_AMF3_COMMAND || h->type == RTMP_MSG_AMF3_DATA) {
        fmt_amf_body(&t, payload + (len > 0), len - (len > 0)); /* after the format byte */
    } else if (h->type == RTMP_MSG_VIDEO) {
        fmt_video(&t, payload, len);
    } else if (h->type == RTMP_MSG_AUDIO) {
        fmt_audio(&t, payload, len);
    } else {
        put(&t, "{}", 2);
    }
    n += (int)t.n;
    line[n] = '\0';
    return (size_t)n;
}

/* ---- output ---- */

static FILE *trace_file(const rtmp_l_trace *tr)
{
    if (tr->own)
        return tr->own->f;
    if (tr->stream)
        return tr->stream->closef ? tr->stream->f : NULL; /* the script may have closed it */
    return NULL;
}

static void observe(void *ud, int dir, int fmt, const rtmp_msg_hdr *h, const uint8_t *payload, size_t len)
{
    rtmp_l_trace *tr = ud;
    char line[BODY_MAX + RESERVE + 600];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    size_t n = format_line(line, &tv, tr->id, dir, fmt, h, payload, len);
    if (!tr->own && !tr->stream) {
        /* to the log, whatever its level: tracing was asked for */
        int level = rtmp_log_level;
        rtmp_log_level = RTMP_LOG_TRACE;
        /* the log's prefix has the time, and conn= peer= for a connection */
        const char *rest = strchr(line, ' ') + 1;
        if (tr->id)
            rest = strchr(rest, ' ') + 1;
        rtmp_log(RTMP_LOG_TRACE, tr->id, tr->peer, "%s", rest);
        rtmp_log_level = level;
        return;
    }
    FILE *f = trace_file(tr);
    if (!f)
        return;
    line[n++] = '\n';
    fwrite(line, 1, n, f);
    fflush(f);
}

static int tracefile_gc(lua_State *L)
{
    tracefile *tf = luaL_checkudata(L, 1, TRACEFILE_MT);
    if (tf->f)
        fclose(tf->f);
    tf->f = NULL;
    return 0;
}

/* [-0, +1, m] the shared file for path, opened for appending, or nil
 * and an error message (+2). */
static int open_path(lua_State *L, const char *path)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TRACEFILES_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, TRACEFILES_KEY);
    }
    if (lua_getfield(L, -1, path) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 1);
    tracefile *tf = lua_newuserdatauv(L, sizeof *tf, 0);
    tf->f = NULL;
    if (luaL_newmetatable(L, TRACEFILE_MT)) {
        lua_pushcfunction(L, tracefile_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    tf->f = fopen(path, "a");
    if (!tf->f) {
        lua_pop(L, 2);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open trace file %s", path);
        return 2;
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, path);
    lua_remove(L, -2);
    return 1;
}

void rtmp_l_trace_free(lua_State *L, rtmp_session *s, rtmp_l_trace **slot)
{
    rtmp_l_trace *tr = *slot;
    if (!tr)
        return;
    if (s)
        rtmp_session_set_observer(s, NULL, NULL);
    if (L && tr->fileref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, tr->fileref);
    free(tr);
    *slot = NULL;
}

int rtmp_l_trace_set(lua_State *L, int idx, rtmp_session *s, rtmp_l_trace **slot, unsigned long id,
                     const char *peer)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    luaL_Stream *stream = NULL;
    if (t == LUA_TUSERDATA) {
        stream = luaL_testudata(L, idx, LUA_FILEHANDLE);
        if (!stream)
            return luaL_typeerror(L, idx, "boolean, path or file");
        if (!stream->closef)
            return luaL_argerror(L, idx, "attempt to use a closed file");
    } else if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TSTRING) {
        return luaL_typeerror(L, idx, "boolean, path or file");
    }
    rtmp_l_trace_free(L, s, slot);
    if (t == LUA_TNONE || t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx)))
        return 0;
    tracefile *own = NULL;
    int ref = LUA_NOREF;
    if (t == LUA_TSTRING) {
        if (open_path(L, lua_tostring(L, idx)) == 2)
            return 2;
        own = lua_touserdata(L, -1);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (stream) {
        lua_pushvalue(L, idx);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    rtmp_l_trace *tr = calloc(1, sizeof *tr);
    if (!tr) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    tr->L = L;
    tr->own = own;
    tr->stream = stream;
    tr->fileref = ref;
    tr->id = id;
    snprintf(tr->peer, sizeof tr->peer, "%s", peer ? peer : "-");
    *slot = tr;
    rtmp_session_set_observer(s, observe, tr);
    return 0;
}

void rtmp_l_trace_settings(lua_State *L, int t, rtmp_session *s, rtmp_l_trace **slot, unsigned long id,
                           const char *peer)
{
    t = lua_absindex(L, t);
    if (!lua_istable(L, t) || lua_getfield(L, t, "trace") == LUA_TNIL) {
        if (lua_istable(L, t))
            lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.options");
        if (lua_istable(L, -1))
            lua_getfield(L, -1, "trace");
        else
            lua_pushnil(L);
        lua_remove(L, -2);
    }
    int top = lua_gettop(L), vt = lua_type(L, top);
    if (vt != LUA_TNIL && vt != LUA_TBOOLEAN && vt != LUA_TSTRING && !luaL_testudata(L, top, LUA_FILEHANDLE)) {
        /* no error here: this runs where nothing catches one */
        rtmp_log(RTMP_LOG_WARN, id, peer, "trace: expected a boolean, path or file, got %s", luaL_typename(L, top));
    } else if (vt != LUA_TNIL && rtmp_l_trace_set(L, top, s, slot, id, peer) == 2) {
        rtmp_log(RTMP_LOG_WARN, id, peer, "trace: %s", lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_settop(L, top - 1);
}

/* rtmp.trace_line(msg [, { dir = "in"|"out", conn = id, time = seconds, fmt = n }])
 * -> the trace line for a message object, as a trace file would hold it
 * (no newline).  Defaults: dir "in", conn 0, time now, fmt msg.fmt. */
static int l_trace_line(lua_State *L)
{
    lmsg *m = check_msg(L, 1);
    int dir = RTMP_TRACE_IN, fmt = m->h.fmt;
    unsigned long id = 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "dir") != LUA_TNIL) {
            const char *d = luaL_checkstring(L, -1);
            if (!strcmp(d, "out"))
                dir = RTMP_TRACE_OUT;
            else if (strcmp(d, "in"))
                return luaL_error(L, "dir must be \"in\" or \"out\"");
        }
        if (lua_getfield(L, 2, "conn") != LUA_TNIL)
            id = (unsigned long)luaL_checkinteger(L, -1);
        if (lua_getfield(L, 2, "fmt") != LUA_TNIL)
            fmt = (int)luaL_checkinteger(L, -1);
        if (lua_getfield(L, 2, "time") != LUA_TNIL) {
            double t = luaL_checknumber(L, -1);
            luaL_argcheck(L, t >= 0 && t < 1e15, 2, "time out of range");
            double sec = floor(t);
            long usec = lround((t - sec) * 1e6);
            if (usec >= 1000000) {
                sec += 1;
                usec -= 1000000;
            }
            tv.tv_sec = (time_t)sec;
            tv.tv_usec = usec;
        }
        lua_pop(L, 4);
    }
    char line[BODY_MAX + RESERVE + 600];
    size_t n = format_line(line, &tv, id, dir, fmt, &m->h, m->data, m->len);
    lua_pushlstring(L, line, n);
    return 1;
}

void rtmp_l_open_trace(lua_State *L)
{
    lua_pushcfunction(L, l_trace_line);
    lua_setfield(L, -2, "trace_line");
}
