/*
 * amf0.c: the AMF0 reader and writer (see amf0.h).
 *
 * Reader invariant: start <= p <= end, and a failing read function leaves
 * p and nrefs as they were.  Every read checks `need` bytes against
 * end - p before touching them.
 */
#include "amf0.h"
#include "amf3.h"
#include "error.h"

#include <assert.h>
#include <string.h>

void rtmp_amf0_reader_init(rtmp_amf0_reader *r, const void *p, size_t len)
{
    r->start = r->p = p;
    r->end = len ? r->p + len : r->p;  /* p may be NULL when len is 0 */
    r->nrefs = 0;
    r->amf3 = NULL;
}

/* Check that the next value has marker m and that need bytes (marker
 * included) are there.  0 or a negative error; consumes nothing. */
static int expect(const rtmp_amf0_reader *r, int m, size_t need)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    if (*r->p != m)
        return RTMP_ERR_AMF_TYPE;
    if ((size_t)(r->end - r->p) < need)
        return RTMP_ERR_AMF_TRUNCATED;
    return 0;
}

int rtmp_amf0_peek_marker(const rtmp_amf0_reader *r)
{
    return r->p == r->end ? RTMP_ERR_AMF_TRUNCATED : *r->p;
}

int rtmp_amf0_read_marker(rtmp_amf0_reader *r)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    int m = *r->p;
    if (m != RTMP_AMF0_NULL && m != RTMP_AMF0_UNDEFINED && m != RTMP_AMF0_UNSUPPORTED)
        return RTMP_ERR_AMF_TYPE;
    r->p++;
    return m;
}

int rtmp_amf0_read_number(rtmp_amf0_reader *r, double *v)
{
    int rc = expect(r, RTMP_AMF0_NUMBER, 9);
    if (rc < 0)
        return rc;
    *v = rtmp_amf_get_double(r->p + 1);
    r->p += 9;
    return 0;
}

int rtmp_amf0_read_boolean(rtmp_amf0_reader *r, int *v)
{
    int rc = expect(r, RTMP_AMF0_BOOLEAN, 2);
    if (rc < 0)
        return rc;
    *v = r->p[1] != 0;
    r->p += 2;
    return 0;
}

int rtmp_amf0_read_string(rtmp_amf0_reader *r, const char **s, size_t *len)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    int m = *r->p;
    size_t left = (size_t)(r->end - r->p), head, n;
    if (m == RTMP_AMF0_STRING) {
        head = 3;
        if (left < head)
            return RTMP_ERR_AMF_TRUNCATED;
        n = rtmp_get_be16(r->p + 1);
    } else if (m == RTMP_AMF0_LONG_STRING) {
        head = 5;
        if (left < head)
            return RTMP_ERR_AMF_TRUNCATED;
        n = rtmp_get_be32(r->p + 1);
    } else {
        return RTMP_ERR_AMF_TYPE;
    }
    if (left - head < n)
        return RTMP_ERR_AMF_TRUNCATED;
    *s = (const char *)r->p + head;
    *len = n;
    r->p += head + n;
    return m;
}

int rtmp_amf0_read_xml_document(rtmp_amf0_reader *r, const char **s, size_t *len)
{
    int rc = expect(r, RTMP_AMF0_XML_DOCUMENT, 5);
    if (rc < 0)
        return rc;
    size_t n = rtmp_get_be32(r->p + 1);
    if ((size_t)(r->end - r->p) - 5 < n)
        return RTMP_ERR_AMF_TRUNCATED;
    *s = (const char *)r->p + 5;
    *len = n;
    r->p += 5 + n;
    return 0;
}

int rtmp_amf0_read_avmplus(rtmp_amf0_reader *r)
{
    int rc = expect(r, RTMP_AMF0_AVMPLUS, 1);
    if (rc < 0)
        return rc;
    r->p++;
    return 0;
}

int rtmp_amf0_read_date(rtmp_amf0_reader *r, double *ms, int16_t *tz)
{
    int rc = expect(r, RTMP_AMF0_DATE, 11);
    if (rc < 0)
        return rc;
    *ms = rtmp_amf_get_double(r->p + 1);
    *tz = (int16_t)rtmp_get_be16(r->p + 9);
    r->p += 11;
    return 0;
}

int rtmp_amf0_read_reference(rtmp_amf0_reader *r, uint16_t *index)
{
    int rc = expect(r, RTMP_AMF0_REFERENCE, 3);
    if (rc < 0)
        return rc;
    uint16_t i = (uint16_t)rtmp_get_be16(r->p + 1);
    if (i >= r->nrefs)
        return RTMP_ERR_AMF_REFERENCE;
    *index = i;
    r->p += 3;
    return 0;
}

int rtmp_amf0_read_object_start(rtmp_amf0_reader *r)
{
    int rc = expect(r, RTMP_AMF0_OBJECT, 1);
    if (rc < 0)
        return rc;
    r->p++;
    r->nrefs++;
    return 0;
}

int rtmp_amf0_read_typed_object_start(rtmp_amf0_reader *r, const char **cls, size_t *len)
{
    int rc = expect(r, RTMP_AMF0_TYPED_OBJECT, 3);
    if (rc < 0)
        return rc;
    size_t n = rtmp_get_be16(r->p + 1);
    if ((size_t)(r->end - r->p) - 3 < n)
        return RTMP_ERR_AMF_TRUNCATED;
    *cls = (const char *)r->p + 3;
    *len = n;
    r->p += 3 + n;
    r->nrefs++;
    return 0;
}

int rtmp_amf0_read_ecma_start(rtmp_amf0_reader *r, uint32_t *count)
{
    int rc = expect(r, RTMP_AMF0_ECMA_ARRAY, 5);
    if (rc < 0)
        return rc;
    *count = rtmp_get_be32(r->p + 1);
    r->p += 5;
    r->nrefs++;
    return 0;
}

int rtmp_amf0_read_strict_array_start(rtmp_amf0_reader *r, uint32_t *count)
{
    int rc = expect(r, RTMP_AMF0_STRICT_ARRAY, 5);
    if (rc < 0)
        return rc;
    uint32_t n = rtmp_get_be32(r->p + 1);
    if ((size_t)(r->end - r->p) - 5 < n)
        return RTMP_ERR_AMF_TRUNCATED;
    *count = n;
    r->p += 5;
    r->nrefs++;
    return 0;
}

int rtmp_amf0_read_key(rtmp_amf0_reader *r, const char **key, size_t *len)
{
    size_t left = (size_t)(r->end - r->p);
    if (left < 2)
        return RTMP_ERR_AMF_TRUNCATED;
    size_t n = rtmp_get_be16(r->p);
    if (n == 0) {
        /* An empty key: the end marker, or a property named "" whose
         * value follows.  Either way a marker byte must be there. */
        if (left < 3)
            return RTMP_ERR_AMF_TRUNCATED;
        if (r->p[2] == RTMP_AMF0_OBJECT_END) {
            r->p += 3;
            return RTMP_AMF0_END;
        }
    } else if (left - 2 < n) {
        return RTMP_ERR_AMF_TRUNCATED;
    }
    *key = (const char *)r->p + 2;
    *len = n;
    r->p += 2 + n;
    return RTMP_AMF0_KEY;
}

/* Skip the key/value pairs of an object-like container up to and
 * including its end (marker, or the end of input for an ECMA array). */
static int skip(rtmp_amf0_reader *r, int depth);

static int skip_properties(rtmp_amf0_reader *r, int depth, int ecma)
{
    for (;;) {
        if (ecma && rtmp_amf0_ecma_end_missing(r))
            return 0;
        const char *k;
        size_t n;
        int rc = rtmp_amf0_read_key(r, &k, &n);
        if (rc <= 0)
            return rc;
        if ((rc = skip(r, depth)) < 0)
            return rc;
    }
}

/* depth: how many more containers may open inside this value. */
static int skip(rtmp_amf0_reader *r, int depth)
{
    int m = rtmp_amf0_peek_marker(r), rc;
    const char *s;
    size_t n;
    uint32_t count;
    double d;
    int b;
    int16_t tz;
    uint16_t ref;

    switch (m) {
    case RTMP_AMF0_NUMBER:
        return rtmp_amf0_read_number(r, &d);
    case RTMP_AMF0_BOOLEAN:
        return rtmp_amf0_read_boolean(r, &b);
    case RTMP_AMF0_STRING:
    case RTMP_AMF0_LONG_STRING:
        rc = rtmp_amf0_read_string(r, &s, &n);
        return rc < 0 ? rc : 0;
    case RTMP_AMF0_NULL:
    case RTMP_AMF0_UNDEFINED:
    case RTMP_AMF0_UNSUPPORTED:
        rc = rtmp_amf0_read_marker(r);
        return rc < 0 ? rc : 0;
    case RTMP_AMF0_DATE:
        return rtmp_amf0_read_date(r, &d, &tz);
    case RTMP_AMF0_REFERENCE:
        return rtmp_amf0_read_reference(r, &ref);
    case RTMP_AMF0_XML_DOCUMENT:
        return rtmp_amf0_read_xml_document(r, &s, &n);
    case RTMP_AMF0_AVMPLUS: {
        if ((rc = rtmp_amf0_read_avmplus(r)) < 0)
            return rc;
        if (r->amf3) {
            assert(r->amf3->start == r->start && r->amf3->end == r->end);
            r->amf3->p = r->p;
            rc = rtmp_amf3_skip_value(r->amf3, depth);
            r->p = r->amf3->p;
            return rc;
        }
        rtmp_amf3_reader r3;
        rtmp_amf3_reader_init(&r3, r->p, rtmp_amf0_remaining(r));
        rc = rtmp_amf3_skip_value(&r3, depth);
        r->p += rtmp_amf3_offset(&r3);
        rtmp_amf3_reader_free(&r3);
        return rc;
    }
    case RTMP_AMF0_OBJECT:
    case RTMP_AMF0_TYPED_OBJECT:
    case RTMP_AMF0_ECMA_ARRAY:
    case RTMP_AMF0_STRICT_ARRAY:
        if (depth <= 0)
            return RTMP_ERR_AMF_DEPTH;
        if (m == RTMP_AMF0_OBJECT)
            rc = rtmp_amf0_read_object_start(r);
        else if (m == RTMP_AMF0_TYPED_OBJECT)
            rc = rtmp_amf0_read_typed_object_start(r, &s, &n);
        else if (m == RTMP_AMF0_ECMA_ARRAY)
            rc = rtmp_amf0_read_ecma_start(r, &count);
        else
            rc = rtmp_amf0_read_strict_array_start(r, &count);
        if (rc < 0)
            return rc;
        if (m != RTMP_AMF0_STRICT_ARRAY)
            return skip_properties(r, depth - 1, m == RTMP_AMF0_ECMA_ARRAY);
        for (uint32_t i = 0; i < count; i++)
            if ((rc = skip(r, depth - 1)) < 0)
                return rc;
        return 0;
    default:
        return m < 0 ? m : RTMP_ERR_AMF_MARKER;
    }
}

int rtmp_amf0_skip_value(rtmp_amf0_reader *r, int max_depth)
{
    rtmp_amf0_reader saved = *r;
    if (max_depth > RTMP_AMF0_MAX_DEPTH)
        max_depth = RTMP_AMF0_MAX_DEPTH;
    int rc = skip(r, max_depth);
    if (rc < 0)
        *r = saved;
    return rc;
}

int rtmp_amf0_walk(const uint8_t *p, size_t len, int max_depth, size_t *count, size_t *offset)
{
    rtmp_amf0_reader r;
    rtmp_amf3_reader r3;
    rtmp_amf0_reader_init(&r, p, len);
    rtmp_amf3_reader_init(&r3, p, len);
    r.amf3 = &r3;
    int rc = 0;
    size_t n = 0;
    while (rc == 0 && rtmp_amf0_remaining(&r) > 0)
        if ((rc = rtmp_amf0_skip_value(&r, max_depth)) == 0)
            n++;
    rtmp_amf3_reader_free(&r3);
    if (count)
        *count = n;
    if (offset)
        *offset = rtmp_amf0_offset(&r);
    return rc;
}

int rtmp_amf0_check_body(const uint8_t *p, size_t len, int max_depth)
{
    int rc = rtmp_amf0_walk(p, len, max_depth, NULL, NULL);
    return rc == RTMP_ERR_AMF_EXTERNALIZABLE || rc == RTMP_ERR_NOMEM ? 0 : rc;
}

/* Writers. */

int rtmp_amf0_write_number(rtmp_buf **out, double v)
{
    uint8_t *w = rtmp_buf_grow(out, 9);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = RTMP_AMF0_NUMBER;
    rtmp_amf_put_double(w + 1, v);
    (*out)->len += 9;
    return 0;
}

int rtmp_amf0_write_boolean(rtmp_buf **out, int v)
{
    uint8_t b[2] = { RTMP_AMF0_BOOLEAN, v ? 1 : 0 };
    return rtmp_buf_append(out, b, 2);
}

int rtmp_amf0_write_string(rtmp_buf **out, const char *s, size_t len)
{
    size_t head = len > 0xFFFF ? 5 : 3;
    if (len > 0xFFFFFFFFu)
        return RTMP_ERR_INVAL;
    uint8_t *w = rtmp_buf_grow(out, head + len);
    if (!w)
        return RTMP_ERR_NOMEM;
    if (head == 3) {
        w[0] = RTMP_AMF0_STRING;
        rtmp_put_be16(w + 1, (uint32_t)len);
    } else {
        w[0] = RTMP_AMF0_LONG_STRING;
        rtmp_put_be32(w + 1, (uint32_t)len);
    }
    if (len)
        memcpy(w + head, s, len);
    (*out)->len += head + len;
    return 0;
}

static int write_byte(rtmp_buf **out, uint8_t m)
{
    return rtmp_buf_append(out, &m, 1);
}

int rtmp_amf0_write_null(rtmp_buf **out) { return write_byte(out, RTMP_AMF0_NULL); }
int rtmp_amf0_write_undefined(rtmp_buf **out) { return write_byte(out, RTMP_AMF0_UNDEFINED); }
int rtmp_amf0_write_unsupported(rtmp_buf **out) { return write_byte(out, RTMP_AMF0_UNSUPPORTED); }
int rtmp_amf0_write_object_start(rtmp_buf **out) { return write_byte(out, RTMP_AMF0_OBJECT); }

/* A 16-bit length-prefixed name, optionally after a marker byte. */
static int write_name(rtmp_buf **out, int marker, const char *s, size_t len)
{
    size_t head = marker >= 0 ? 3 : 2;
    if (len > 0xFFFF)
        return RTMP_ERR_INVAL;
    uint8_t *w = rtmp_buf_grow(out, head + len);
    if (!w)
        return RTMP_ERR_NOMEM;
    if (marker >= 0)
        *w++ = (uint8_t)marker;
    rtmp_put_be16(w, (uint32_t)len);
    if (len)
        memcpy(w + 2, s, len);
    (*out)->len += head + len;
    return 0;
}

int rtmp_amf0_write_typed_object_start(rtmp_buf **out, const char *cls, size_t len)
{
    return write_name(out, RTMP_AMF0_TYPED_OBJECT, cls, len);
}

int rtmp_amf0_write_key(rtmp_buf **out, const char *key, size_t len)
{
    return write_name(out, -1, key, len);
}

static int write_count(rtmp_buf **out, uint8_t marker, uint32_t count)
{
    uint8_t b[5] = { marker };
    rtmp_put_be32(b + 1, count);
    return rtmp_buf_append(out, b, 5);
}

int rtmp_amf0_write_ecma_start(rtmp_buf **out, uint32_t count)
{
    return write_count(out, RTMP_AMF0_ECMA_ARRAY, count);
}

int rtmp_amf0_write_strict_array_start(rtmp_buf **out, uint32_t count)
{
    return write_count(out, RTMP_AMF0_STRICT_ARRAY, count);
}

int rtmp_amf0_write_object_end(rtmp_buf **out)
{
    static const uint8_t end[3] = { 0, 0, RTMP_AMF0_OBJECT_END };
    return rtmp_buf_append(out, end, 3);
}

int rtmp_amf0_write_date(rtmp_buf **out, double ms, int16_t tz)
{
    uint8_t *w = rtmp_buf_grow(out, 11);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = RTMP_AMF0_DATE;
    rtmp_amf_put_double(w + 1, ms);
    rtmp_put_be16(w + 9, (uint16_t)tz);
    (*out)->len += 11;
    return 0;
}

int rtmp_amf0_write_xml_document(rtmp_buf **out, const char *s, size_t len)
{
    if (len > 0xFFFFFFFFu)
        return RTMP_ERR_INVAL;
    uint8_t *w = rtmp_buf_grow(out, 5 + len);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = RTMP_AMF0_XML_DOCUMENT;
    rtmp_put_be32(w + 1, (uint32_t)len);
    if (len)
        memcpy(w + 5, s, len);
    (*out)->len += 5 + len;
    return 0;
}

int rtmp_amf0_write_avmplus(rtmp_buf **out) { return write_byte(out, RTMP_AMF0_AVMPLUS); }

int rtmp_amf0_write_reference(rtmp_buf **out, uint16_t index)
{
    uint8_t b[3] = { RTMP_AMF0_REFERENCE };
    rtmp_put_be16(b + 1, index);
    return rtmp_buf_append(out, b, 3);
}
