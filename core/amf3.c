/*
 * amf3.c: the AMF3 reader and writer (see amf3.h).
 *
 * Reader invariant: start <= p <= end; a failing read function restores
 * p and the table sizes it found (entries past a size are garbage).
 * Every length and count is checked against end - p before use, and a
 * table grows only after the bytes that justify the entry were read.
 */
#include "amf3.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

void rtmp_amf3_reader_init(rtmp_amf3_reader *r, const void *p, size_t len)
{
    memset(r, 0, sizeof *r);
    r->start = r->p = p;
    r->end = len ? r->p + len : r->p;  /* p may be NULL when len is 0 */
}

void rtmp_amf3_reader_free(rtmp_amf3_reader *r)
{
    free(r->strings);
    free(r->traits);
    free(r->names);
    r->strings = NULL;
    r->traits = NULL;
    r->names = NULL;
    r->nstrings = r->capstrings = r->ntraits = r->captraits = r->nnames = r->capnames = 0;
    r->nobjects = 0;
}

void rtmp_amf3_reader_reset(rtmp_amf3_reader *r)
{
    r->nobjects = r->nstrings = r->ntraits = r->nnames = 0;
}

/* A saved position and table sizes, to undo a failed read. */
typedef struct mark {
    const uint8_t *p;
    uint32_t nobjects, nstrings, ntraits, nnames;
} mark;

static mark save(const rtmp_amf3_reader *r)
{
    return (mark){ r->p, r->nobjects, r->nstrings, r->ntraits, r->nnames };
}

static int undo(rtmp_amf3_reader *r, mark m, int rc)
{
    r->p = m.p;
    r->nobjects = m.nobjects;
    r->nstrings = m.nstrings;
    r->ntraits = m.ntraits;
    r->nnames = m.nnames;
    return rc;
}

/* Make room for one more entry of size sz in *arr (n used, *cap held).
 * Growth doubles; the entry count stays below 2^32 because every entry
 * costs an input byte and inputs here are far smaller. */
static int grow(void **arr, uint32_t n, uint32_t *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    if (ncap <= *cap)
        return RTMP_ERR_NOMEM;
    void *p = realloc(*arr, (size_t)ncap * sz);
    if (!p)
        return RTMP_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

int rtmp_amf3_peek_marker(const rtmp_amf3_reader *r)
{
    return r->p == r->end ? RTMP_ERR_AMF_TRUNCATED : *r->p;
}

int rtmp_amf3_read_marker(rtmp_amf3_reader *r)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    int m = *r->p;
    if (m > RTMP_AMF3_TRUE)
        return RTMP_ERR_AMF_TYPE;
    r->p++;
    return m;
}

int rtmp_amf3_read_u29(rtmp_amf3_reader *r, uint32_t *v)
{
    const uint8_t *p = r->p;
    uint32_t u = 0;
    for (int i = 0; i < 4; i++) {
        if (p == r->end)
            return RTMP_ERR_AMF_TRUNCATED;
        uint8_t b = *p++;
        if (i == 3) {
            u = u << 8 | b;
            break;
        }
        u = u << 7 | (b & 0x7F);
        if (!(b & 0x80))
            break;
    }
    *v = u;
    r->p = p;
    return 0;
}

int rtmp_amf3_read_integer(rtmp_amf3_reader *r, int32_t *v)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    if (*r->p != RTMP_AMF3_INTEGER)
        return RTMP_ERR_AMF_TYPE;
    const uint8_t *p = r->p++;
    uint32_t u;
    int rc = rtmp_amf3_read_u29(r, &u);
    if (rc < 0) {
        r->p = p;
        return rc;
    }
    *v = (u & 0x10000000) ? (int32_t)u - 0x20000000 : (int32_t)u;
    return 0;
}

int rtmp_amf3_read_double(rtmp_amf3_reader *r, double *v)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    if (*r->p != RTMP_AMF3_DOUBLE)
        return RTMP_ERR_AMF_TYPE;
    if (r->end - r->p < 9)
        return RTMP_ERR_AMF_TRUNCATED;
    *v = rtmp_amf_get_double(r->p + 1);
    r->p += 9;
    return 0;
}

int rtmp_amf3_read_string_vr(rtmp_amf3_reader *r, const char **s, size_t *len)
{
    mark m = save(r);
    uint32_t u;
    int rc = rtmp_amf3_read_u29(r, &u);
    if (rc < 0)
        return rc;
    if (!(u & 1)) {
        if ((u >> 1) >= r->nstrings)
            return undo(r, m, RTMP_ERR_AMF_REFERENCE);
        *s = r->strings[u >> 1].s;
        *len = r->strings[u >> 1].len;
        return RTMP_AMF3_REF;
    }
    size_t n = u >> 1;
    if (rtmp_amf3_remaining(r) < n)
        return undo(r, m, RTMP_ERR_AMF_TRUNCATED);
    if (n > 0) {
        if ((rc = grow((void **)&r->strings, r->nstrings, &r->capstrings, sizeof *r->strings)) < 0)
            return undo(r, m, rc);
        r->strings[r->nstrings++] = (rtmp_amf3_str){ (const char *)r->p, n };
    }
    *s = (const char *)r->p;
    *len = n;
    r->p += n;
    return RTMP_AMF3_INLINE;
}

int rtmp_amf3_read_string(rtmp_amf3_reader *r, const char **s, size_t *len)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    if (*r->p != RTMP_AMF3_STRING)
        return RTMP_ERR_AMF_TYPE;
    r->p++;
    int rc = rtmp_amf3_read_string_vr(r, s, len);
    if (rc < 0)
        r->p--;
    return rc;
}

int rtmp_amf3_read_key(rtmp_amf3_reader *r, const char **key, size_t *len)
{
    int rc = rtmp_amf3_read_string_vr(r, key, len);
    if (rc < 0)
        return rc;
    return *len > 0;
}

/* Inline traits after U29 u (low bits 11 already seen). */
static int read_traits(rtmp_amf3_reader *r, uint32_t u, rtmp_amf3_head *h)
{
    rtmp_amf3_traits t = { .external = (u & 4) != 0 };
    t.dynamic = !t.external && (u & 8) != 0;
    t.nsealed = t.external ? 0 : u >> 4;
    int rc = rtmp_amf3_read_string_vr(r, &t.cls.s, &t.cls.len);
    if (rc < 0)
        return rc;
    /* Each sealed name takes a byte, and so does each sealed value. */
    if ((size_t)t.nsealed * 2 > rtmp_amf3_remaining(r))
        return RTMP_ERR_AMF_TRUNCATED;
    t.first = r->nnames;
    for (uint32_t i = 0; i < t.nsealed; i++) {
        rtmp_amf3_str s;
        if ((rc = rtmp_amf3_read_string_vr(r, &s.s, &s.len)) < 0)
            return rc;
        if ((rc = grow((void **)&r->names, r->nnames, &r->capnames, sizeof *r->names)) < 0)
            return rc;
        r->names[r->nnames++] = s;
    }
    if ((rc = grow((void **)&r->traits, r->ntraits, &r->captraits, sizeof *r->traits)) < 0)
        return rc;
    h->traits = r->ntraits;
    r->traits[r->ntraits++] = t;
    return 0;
}

int rtmp_amf3_read_head(rtmp_amf3_reader *r, rtmp_amf3_head *h)
{
    if (r->p == r->end)
        return RTMP_ERR_AMF_TRUNCATED;
    int m = *r->p;
    if (m < RTMP_AMF3_XML_DOC || m > RTMP_AMF3_DICTIONARY || m == RTMP_AMF3_STRING)
        return RTMP_ERR_AMF_TYPE;
    mark saved = save(r);
    memset(h, 0, sizeof *h);
    h->marker = m;
    r->p++;
    uint32_t u;
    int rc = rtmp_amf3_read_u29(r, &u);
    if (rc < 0)
        return undo(r, saved, rc);
    if (!(u & 1)) {
        if ((u >> 1) >= r->nobjects)
            return undo(r, saved, RTMP_ERR_AMF_REFERENCE);
        h->ref = u >> 1;
        r->nobjrefs++;
        return RTMP_AMF3_REF;
    }
    size_t left;
    uint32_t n = u >> 1;
    switch (m) {
    case RTMP_AMF3_XML_DOC:
    case RTMP_AMF3_XML:
    case RTMP_AMF3_BYTE_ARRAY:
        if (rtmp_amf3_remaining(r) < n)
            return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
        h->count = n;
        h->bytes = r->p;
        r->p += n;
        break;
    case RTMP_AMF3_DATE:
        if (rtmp_amf3_remaining(r) < 8)
            return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
        h->date = rtmp_amf_get_double(r->p);
        r->p += 8;
        break;
    case RTMP_AMF3_ARRAY:
        /* The associative part ends with at least the empty key. */
        if (rtmp_amf3_remaining(r) < (size_t)n + 1)
            return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
        h->count = n;
        break;
    case RTMP_AMF3_OBJECT:
        if ((u & 3) == 1) {
            if ((u >> 2) >= r->ntraits)
                return undo(r, saved, RTMP_ERR_AMF_REFERENCE);
            h->traits = u >> 2;
            h->traits_ref = 1;
        } else if ((rc = read_traits(r, u, h)) < 0) {
            return undo(r, saved, rc);
        }
        if (r->traits[h->traits].nsealed > rtmp_amf3_remaining(r))
            return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
        break;
    case RTMP_AMF3_VECTOR_INT:
    case RTMP_AMF3_VECTOR_UINT:
    case RTMP_AMF3_VECTOR_DOUBLE:
    case RTMP_AMF3_VECTOR_OBJECT:
    case RTMP_AMF3_DICTIONARY:
        if (rtmp_amf3_remaining(r) < 1)
            return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
        h->fixed = *r->p++ != 0;
        h->count = n;
        if (m == RTMP_AMF3_VECTOR_OBJECT
            && (rc = rtmp_amf3_read_string_vr(r, &h->type.s, &h->type.len)) < 0)
            return undo(r, saved, rc);
        left = rtmp_amf3_remaining(r);
        if (m == RTMP_AMF3_VECTOR_INT || m == RTMP_AMF3_VECTOR_UINT || m == RTMP_AMF3_VECTOR_DOUBLE) {
            size_t size = m == RTMP_AMF3_VECTOR_DOUBLE ? 8 : 4;
            if (left / size < n)
                return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
            h->bytes = r->p;
            r->p += (size_t)n * size;
        } else if (left < (size_t)n * (m == RTMP_AMF3_DICTIONARY ? 2 : 1)) {
            return undo(r, saved, RTMP_ERR_AMF_TRUNCATED);
        }
        break;
    }
    r->nobjects++;
    return RTMP_AMF3_INLINE;
}

int32_t rtmp_amf3_vector_int(const uint8_t *bytes, uint32_t i)
{
    return (int32_t)rtmp_get_be32(bytes + (size_t)i * 4);
}

uint32_t rtmp_amf3_vector_uint(const uint8_t *bytes, uint32_t i)
{
    return rtmp_get_be32(bytes + (size_t)i * 4);
}

double rtmp_amf3_vector_double(const uint8_t *bytes, uint32_t i)
{
    return rtmp_amf_get_double(bytes + (size_t)i * 8);
}

/* depth: how many more complex values may open inside this value. */
static int skip(rtmp_amf3_reader *r, int depth);

/* Key + value pairs up to the empty key. */
static int skip_members(rtmp_amf3_reader *r, int depth)
{
    for (;;) {
        const char *k;
        size_t n;
        int rc = rtmp_amf3_read_key(r, &k, &n);
        if (rc <= 0)
            return rc;
        if ((rc = skip(r, depth)) < 0)
            return rc;
    }
}

static int skip(rtmp_amf3_reader *r, int depth)
{
    int m = rtmp_amf3_peek_marker(r), rc;
    const char *s;
    size_t n;
    double d;
    int32_t i;
    rtmp_amf3_head h;

    switch (m) {
    case RTMP_AMF3_UNDEFINED:
    case RTMP_AMF3_NULL:
    case RTMP_AMF3_FALSE:
    case RTMP_AMF3_TRUE:
        rc = rtmp_amf3_read_marker(r);
        return rc < 0 ? rc : 0;
    case RTMP_AMF3_INTEGER:
        return rtmp_amf3_read_integer(r, &i);
    case RTMP_AMF3_DOUBLE:
        return rtmp_amf3_read_double(r, &d);
    case RTMP_AMF3_STRING:
        rc = rtmp_amf3_read_string(r, &s, &n);
        return rc < 0 ? rc : 0;
    default:
        if (m < 0)
            return m;
        if (m > RTMP_AMF3_DICTIONARY)
            return RTMP_ERR_AMF_MARKER;
        break;
    }
    /* Containers take a nesting level; references and leaves (dates,
     * XML, byte arrays, number vectors) do not. */
    if ((rc = rtmp_amf3_read_head(r, &h)) != RTMP_AMF3_INLINE)
        return rc < 0 ? rc : 0;
    int container = m == RTMP_AMF3_ARRAY || m == RTMP_AMF3_OBJECT || m == RTMP_AMF3_VECTOR_OBJECT
                    || m == RTMP_AMF3_DICTIONARY;
    if (container && depth <= 0)
        return RTMP_ERR_AMF_DEPTH;
    switch (m) {
    case RTMP_AMF3_ARRAY:
        if ((rc = skip_members(r, depth - 1)) < 0)
            return rc;
        for (uint32_t k = 0; k < h.count; k++)
            if ((rc = skip(r, depth - 1)) < 0)
                return rc;
        return 0;
    case RTMP_AMF3_OBJECT: {
        const rtmp_amf3_traits *t = rtmp_amf3_get_traits(r, h.traits);
        if (t->external)
            return RTMP_ERR_AMF_EXTERNALIZABLE;
        int dynamic = t->dynamic;
        uint32_t nsealed = t->nsealed;  /* t may move as tables grow */
        for (uint32_t k = 0; k < nsealed; k++)
            if ((rc = skip(r, depth - 1)) < 0)
                return rc;
        return dynamic ? skip_members(r, depth - 1) : 0;
    }
    case RTMP_AMF3_VECTOR_OBJECT:
        for (uint32_t k = 0; k < h.count; k++)
            if ((rc = skip(r, depth - 1)) < 0)
                return rc;
        return 0;
    case RTMP_AMF3_DICTIONARY:
        for (uint32_t k = 0; k < h.count; k++)
            if ((rc = skip(r, depth - 1)) < 0 || (rc = skip(r, depth - 1)) < 0)
                return rc;
        return 0;
    default:
        return 0;
    }
}

int rtmp_amf3_skip_value(rtmp_amf3_reader *r, int max_depth)
{
    mark m = save(r);
    if (max_depth > RTMP_AMF_MAX_DEPTH)
        max_depth = RTMP_AMF_MAX_DEPTH;
    int rc = skip(r, max_depth);
    return rc < 0 ? undo(r, m, rc) : 0;
}

int rtmp_amf3_walk(const uint8_t *p, size_t len, int max_depth, size_t *count, size_t *offset)
{
    rtmp_amf3_reader r;
    rtmp_amf3_reader_init(&r, p, len);
    int rc = 0;
    size_t n = 0;
    while (rc == 0 && rtmp_amf3_remaining(&r) > 0)
        if ((rc = rtmp_amf3_skip_value(&r, max_depth)) == 0)
            n++;
    if (count)
        *count = n;
    if (offset)
        *offset = rtmp_amf3_offset(&r);
    rtmp_amf3_reader_free(&r);
    return rc;
}

/* Writers. */

int rtmp_amf3_write_u29(rtmp_buf **out, uint32_t v)
{
    uint8_t b[4];
    size_t n;
    if (v < 0x80) {
        b[0] = (uint8_t)v;
        n = 1;
    } else if (v < 0x4000) {
        b[0] = (uint8_t)(v >> 7 | 0x80);
        b[1] = v & 0x7F;
        n = 2;
    } else if (v < 0x200000) {
        b[0] = (uint8_t)(v >> 14 | 0x80);
        b[1] = (uint8_t)((v >> 7 & 0x7F) | 0x80);
        b[2] = v & 0x7F;
        n = 3;
    } else if (v <= RTMP_AMF3_U29_MAX) {
        b[0] = (uint8_t)(v >> 22 | 0x80);
        b[1] = (uint8_t)((v >> 15 & 0x7F) | 0x80);
        b[2] = (uint8_t)((v >> 8 & 0x7F) | 0x80);
        b[3] = (uint8_t)v;
        n = 4;
    } else {
        return RTMP_ERR_INVAL;
    }
    return rtmp_buf_append(out, b, n);
}

int rtmp_amf3_write_u8(rtmp_buf **out, uint8_t v)
{
    return rtmp_buf_append(out, &v, 1);
}

int rtmp_amf3_write_marker(rtmp_buf **out, int marker)
{
    if (marker < RTMP_AMF3_UNDEFINED || marker > RTMP_AMF3_TRUE)
        return RTMP_ERR_INVAL;
    return rtmp_amf3_write_u8(out, (uint8_t)marker);
}

/* A marker then a U29. */
static int marker_u29(rtmp_buf **out, int marker, uint32_t v)
{
    if (v > RTMP_AMF3_U29_MAX)
        return RTMP_ERR_INVAL;
    int rc = rtmp_amf3_write_u8(out, (uint8_t)marker);
    return rc < 0 ? rc : rtmp_amf3_write_u29(out, v);
}

int rtmp_amf3_write_integer(rtmp_buf **out, int32_t v)
{
    if (v < RTMP_AMF3_INT_MIN || v > RTMP_AMF3_INT_MAX)
        return RTMP_ERR_INVAL;
    return marker_u29(out, RTMP_AMF3_INTEGER, (uint32_t)v & RTMP_AMF3_U29_MAX);
}

int rtmp_amf3_write_double(rtmp_buf **out, double v)
{
    uint8_t *w = rtmp_buf_grow(out, 9);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = RTMP_AMF3_DOUBLE;
    rtmp_amf_put_double(w + 1, v);
    (*out)->len += 9;
    return 0;
}

int rtmp_amf3_write_string_vr(rtmp_buf **out, const char *s, size_t len)
{
    if (len > RTMP_AMF3_LEN_MAX)
        return RTMP_ERR_INVAL;
    int rc = rtmp_amf3_write_u29(out, (uint32_t)len << 1 | 1);
    return rc < 0 || len == 0 ? rc : rtmp_buf_append(out, s, len);
}

int rtmp_amf3_write_string_ref(rtmp_buf **out, uint32_t index)
{
    if (index > RTMP_AMF3_LEN_MAX)
        return RTMP_ERR_INVAL;
    return rtmp_amf3_write_u29(out, index << 1);
}

int rtmp_amf3_write_object_ref(rtmp_buf **out, int marker, uint32_t index)
{
    if (index > RTMP_AMF3_LEN_MAX)
        return RTMP_ERR_INVAL;
    return marker_u29(out, marker, index << 1);
}

int rtmp_amf3_write_inline(rtmp_buf **out, int marker, uint32_t n)
{
    if (n > RTMP_AMF3_LEN_MAX)
        return RTMP_ERR_INVAL;
    return marker_u29(out, marker, n << 1 | 1);
}

int rtmp_amf3_write_bytes(rtmp_buf **out, int marker, const void *p, size_t len)
{
    if (len > RTMP_AMF3_LEN_MAX)
        return RTMP_ERR_INVAL;
    int rc = rtmp_amf3_write_inline(out, marker, (uint32_t)len);
    return rc < 0 || len == 0 ? rc : rtmp_buf_append(out, p, len);
}

int rtmp_amf3_write_date(rtmp_buf **out, double ms)
{
    uint8_t *w = rtmp_buf_grow(out, 10);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = RTMP_AMF3_DATE;
    w[1] = 1;
    rtmp_amf_put_double(w + 2, ms);
    (*out)->len += 10;
    return 0;
}

int rtmp_amf3_write_traits(rtmp_buf **out, uint32_t nsealed, int dynamic, int external)
{
    if (external)
        return marker_u29(out, RTMP_AMF3_OBJECT, 7);
    if (nsealed > (RTMP_AMF3_U29_MAX >> 4))
        return RTMP_ERR_INVAL;
    return marker_u29(out, RTMP_AMF3_OBJECT, nsealed << 4 | (dynamic ? 8u : 0u) | 3);
}

int rtmp_amf3_write_traits_ref(rtmp_buf **out, uint32_t index)
{
    if (index > (RTMP_AMF3_U29_MAX >> 2))
        return RTMP_ERR_INVAL;
    return marker_u29(out, RTMP_AMF3_OBJECT, index << 2 | 1);
}

int rtmp_amf3_write_vector_int(rtmp_buf **out, int32_t v)
{
    uint8_t b[4];
    rtmp_put_be32(b, (uint32_t)v);
    return rtmp_buf_append(out, b, 4);
}

int rtmp_amf3_write_vector_uint(rtmp_buf **out, uint32_t v)
{
    uint8_t b[4];
    rtmp_put_be32(b, v);
    return rtmp_buf_append(out, b, 4);
}

int rtmp_amf3_write_vector_double(rtmp_buf **out, double v)
{
    uint8_t b[8];
    rtmp_amf_put_double(b, v);
    return rtmp_buf_append(out, b, 8);
}
