/*
 * trace.c: one message as one trace line (see trace.h).
 *
 * Bodies are formatted from the core decoders into a fixed buffer: each
 * piece is appended within a budget (BODY_MAX), and what closes a cut
 * value (markers, braces) comes from a reserve after it, so a cut body is
 * still a valid Lua table constructor.
 *
 * A body may be given short (its first bytes, session.h): nothing is read
 * past the bytes given, and where they end before what the line shows,
 * the line says so with a "(N more bytes)" marker instead of a decode
 * error, since the bytes are not known to be malformed.
 */
#include "trace.h"
#include "amf0.h"
#include "control.h"
#include "error.h"
#include "media.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX   RTMP_TRACE_BODY_MAX /* body characters before the cut */
#define RESERVE    512    /* room after BODY_MAX for markers and closers */
#define STR_MAX    200    /* string bytes shown */
#define TRACE_DEPTH 8     /* nesting shown */

/* Every AMF value shown takes at most 3 body bytes per character of the
 * line (a number: 9 bytes, at least "0, "), but for strings over STR_MAX
 * bytes and values deeper than TRACE_DEPTH or switched to AMF3, which are
 * shown in part anyway.  So a body given its first RTMP_TRACE_HEAD bytes
 * fills the budget as the whole body would, unless one of those values
 * lies across the end of the bytes given. */
_Static_assert(RTMP_TRACE_HEAD >= 3 * BODY_MAX, "RTMP_TRACE_HEAD too small for a whole trace body");

/* ---- the body ---- */

typedef struct tbuf {
    char  *p;
    size_t n, lim, cap;   /* lim: the budget; cap: lim plus the reserve */
    size_t missing;       /* body bytes after those given (0: the whole body) */
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

/* From the reserve: the marker of a body given short, with n the bytes of
 * the body after what the line shows. */
static void force_more(tbuf *t, int comma, size_t n)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s--[[... (%zu more bytes)]]", comma ? ", " : "", n);
    force(t, tmp);
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

/* Results of the value formatter: shown; cut and closed (still valid);
 * past the budget, nothing shown; ran out of the bytes given while the
 * body has more, nothing shown; does not decode (*err). */
enum { V_OK = 0, V_STOP, V_OVER, V_SHORT, V_BAD };

/* A failed read rc: V_SHORT when the bytes given ran out and the body
 * has more, else V_BAD with *err = rc. */
static int failed(const tbuf *t, int rc, int *err)
{
    if (rc == RTMP_ERR_AMF_TRUNCATED && t->missing > 0)
        return V_SHORT;
    *err = rc;
    return V_BAD;
}

/* After a value that was not shown (V_OVER or V_SHORT, the output back at
 * its start, at byte `at`): its marker; V_STOP. */
static int mark_unshown(tbuf *t, const rtmp_amf0_reader *r, int vr, int comma, size_t at)
{
    if (vr == V_OVER)
        force(t, comma ? ", --[[cut]]" : "--[[cut]]");
    else
        force_more(t, comma, rtmp_amf0_offset(r) + rtmp_amf0_remaining(r) - at + t->missing);
    return V_STOP;
}

static int fmt_value(tbuf *t, rtmp_amf0_reader *r, int depth, int *err);

/* The entries of a container after its head: keyed (object, typed
 * object, ECMA array) or count values (strict array).  Writes the
 * closing brace; V_OK, V_STOP (cut for length, still valid) or V_BAD. */
static int fmt_entries(tbuf *t, rtmp_amf0_reader *r, int depth, int keyed, uint32_t count, int ecma,
                       int *err)
{
    int vr = V_OK;
    for (uint32_t i = 0; keyed || i < count; i++) {
        size_t mark = t->n, at = rtmp_amf0_offset(r);
        const char *k = NULL;
        size_t klen = 0;
        if (keyed) {
            if (ecma && rtmp_amf0_ecma_end_missing(r)) {
                if (t->missing == 0)
                    break;     /* the body's end ends the array (amf0.h) */
                vr = V_SHORT;  /* the bytes given end: the array may go on */
            } else {
                int kr = rtmp_amf0_read_key(r, &k, &klen);
                if (kr < 0)
                    vr = failed(t, kr, err);
                else if (kr == RTMP_AMF0_END)
                    break;
            }
        }
        if (vr == V_OK)
            vr = (i > 0 && put(t, ", ", 2) < 0) || (keyed && put_key(t, k, klen) < 0)
               ? V_OVER : fmt_value(t, r, depth + 1, err);
        if (vr == V_OK)
            continue;
        if (vr != V_STOP)
            t->n = mark;
        if (vr == V_OVER || vr == V_SHORT)
            vr = mark_unshown(t, r, vr, i > 0, at);
        break;
    }
    force(t, "}");
    return vr;
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
    if (m < 0)
        return failed(t, m, err);
    if ((m == RTMP_AMF0_OBJECT || m == RTMP_AMF0_TYPED_OBJECT || m == RTMP_AMF0_ECMA_ARRAY
         || m == RTMP_AMF0_STRICT_ARRAY) && depth >= TRACE_DEPTH) {
        size_t at = rtmp_amf0_offset(r);
        if ((rc = rtmp_amf0_skip_value(r, RTMP_AMF_MAX_DEPTH)) < 0)
            return failed(t, rc, err);
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
    return failed(t, rc, err);
}

/* A body of AMF0 values: {v1, v2, ...}, with decode_error="..." when the
 * bytes do not decode (the values before the bad one are shown), or the
 * "more bytes" marker where the bytes given end. */
static void fmt_amf_body(tbuf *t, const uint8_t *p, size_t len)
{
    rtmp_amf0_reader r;
    rtmp_amf0_reader_init(&r, p, len);
    put(t, "{", 1);
    int err = 0, rc = V_OK, i;
    for (i = 0; rtmp_amf0_remaining(&r) > 0; i++) {
        size_t mark = t->n, at = rtmp_amf0_offset(&r);
        rc = i > 0 && put(t, ", ", 2) < 0 ? V_OVER : fmt_value(t, &r, 0, &err);
        if (rc == V_OK)
            continue;
        if (rc != V_STOP)
            t->n = mark;
        if (rc == V_OVER || rc == V_SHORT)
            rc = mark_unshown(t, &r, rc, i > 0, at);
        if (rc == V_BAD) {
            char tmp[120];
            snprintf(tmp, sizeof tmp, "%sdecode_error=\"%s at byte %zu\"", i > 0 ? ", " : "",
                     rtmp_errname(err), rtmp_amf0_offset(&r));
            force(t, tmp);
        }
        break;
    }
    if (rc == V_OK && t->missing > 0) /* every value given shown: the body goes on */
        force_more(t, i > 0, t->missing);
    force(t, "}");
}

static void fmt_control(tbuf *t, const rtmp_msg_hdr *h, const uint8_t *p, size_t len)
{
    rtmp_msg_hdr given = *h;
    given.length = (uint32_t)len; /* read only the bytes given */
    rtmp_control c;
    if (rtmp_control_parse(&given, p, &c) < 0) {
        if (t->missing > 0) {
            put(t, "{", 1);
            force_more(t, 0, t->missing);
            force(t, "}");
        } else {
            putf(t, "{decode_error=\"%s\"}", rtmp_errname(RTMP_ERR_CONTROL));
        }
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

/* The media model of the len bytes given of a body (t->missing more
 * follow): rtmp_media_parse's result, or MEDIA_SHORT when what the line shows
 * ends where the bytes given end while the body goes on: a header cut
 * short there, or the tracks of a many-tracks message so far (more may
 * follow).  A one-track message's track runs to the body's end, so its
 * size counts the bytes not given. */
enum { MEDIA_SHORT = 1 };
static int parse_media(const tbuf *t, rtmp_media *m, uint8_t type, const uint8_t *p, size_t len)
{
    int rc = rtmp_media_parse(m, type, p, len);
    if (t->missing == 0)
        return rc;
    if (rc == RTMP_ERR_MEDIA_EMPTY || rc == RTMP_ERR_MEDIA_TRUNCATED || rc == RTMP_ERR_MEDIA_MODEX_SIZE
        || rc == RTMP_ERR_MEDIA_TRACK_SIZE)
        return MEDIA_SHORT;
    if (rc == 0 && m->multitrack == RTMP_MEDIA_ONE_TRACK)
        m->track[0].size += t->missing;
    else if (rc == 0 && m->multitrack != RTMP_MEDIA_SINGLE)
        return MEDIA_SHORT;
    return rc;
}

/* An empty audio or video body "{}", or one given no byte. */
static int put_empty_media(tbuf *t, size_t len)
{
    if (len > 0)
        return 0;
    put(t, "{", 1);
    if (t->missing > 0)
        force_more(t, 0, t->missing);
    force(t, "}");
    return 1;
}

static void fmt_video(tbuf *t, const uint8_t *p, size_t len)
{
    static const char *const frames[] = { NULL, "key", "inter", "disposable", "generated", "command" };
    if (put_empty_media(t, len))
        return;
    rtmp_media m;
    int rc = parse_media(t, &m, RTMP_MSG_VIDEO, p, len);
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
    if (rc == MEDIA_SHORT)
        force_more(t, 1, t->missing);
    force(t, "}");
}

static void fmt_audio(tbuf *t, const uint8_t *p, size_t len)
{
    static const int rates[] = { 5512, 11025, 22050, 44100 };
    if (put_empty_media(t, len))
        return;
    rtmp_media m;
    int rc = parse_media(t, &m, RTMP_MSG_AUDIO, p, len);
    put(t, "{codec=", 7);
    if (m.enhanced) {
        if (m.fourcc)
            put_fourcc(t, m.fourcc);
        else
            put(t, "nil", 3);
        put_enhanced(t, &m, rc);
        if (rc == MEDIA_SHORT)
            force_more(t, 1, t->missing);
        force(t, "}");
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
    if (rc == MEDIA_SHORT)
        force_more(t, 1, t->missing);
    force(t, "}");
}

/* (trace.h) */
size_t rtmp_trace_format(char *line, long long sec, long usec, unsigned long id, int dir, int fmt,
                         const rtmp_msg_hdr *h, const uint8_t *payload, size_t len)
{
    int n = snprintf(line, 256, "%lld.%06ld conn=%lu %s ", sec, usec, id,
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
    if (len > h->length)
        len = h->length;
    tbuf t = { line + n, 0, BODY_MAX, BODY_MAX + RESERVE, h->length - len };
    if (rtmp_is_control(h->type)) {
        fmt_control(&t, h, payload, len);
    } else if (h->type == RTMP_MSG_AMF0_COMMAND || h->type == RTMP_MSG_AMF0_DATA) {
        fmt_amf_body(&t, payload, len);
    } else if (h->type == RTMP_MSG_AMF3_COMMAND || h->type == RTMP_MSG_AMF3_DATA) {
        if (len == 0 && t.missing > 0) /* the format byte not given */
            t.missing--;
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
