/*
 * amf0.h: the AMF0 codec, sans I/O and sans allocation.
 *
 * The reader walks a byte span the caller owns.  Each read function
 * takes one whole item (a value, a key, the head of a container),
 * advances the reader past it and returns >= 0; on failure it returns a
 * negative RTMP_ERR_* and leaves the reader where it was, so
 * rtmp_amf0_offset() names the byte where the bad item starts.  Strings
 * come back as pointer + length into the input, never copied.  Every
 * length and count is checked against the bytes remaining before it is
 * used.
 *
 * Containers are read piecewise: a *_start function, then for objects,
 * typed objects and ECMA arrays rtmp_amf0_read_key() + one value until it
 * returns RTMP_AMF0_END, for strict arrays `count` values.  Nesting is the
 * caller's to bound (rtmp_amf0_skip_value does it for a whole value).
 *
 * The writer appends to a growable rtmp_buf (created when *out is NULL);
 * each function returns 0, RTMP_ERR_NOMEM, or RTMP_ERR_INVAL for a
 * length the format cannot express.
 */
#ifndef RTMP_AMF0_H
#define RTMP_AMF0_H

#include <stddef.h>
#include <stdint.h>

#include "amf.h"
#include "buf.h"

/* Type markers. */
enum {
    RTMP_AMF0_NUMBER = 0x00,
    RTMP_AMF0_BOOLEAN = 0x01,
    RTMP_AMF0_STRING = 0x02,
    RTMP_AMF0_OBJECT = 0x03,
    RTMP_AMF0_MOVIECLIP = 0x04,    /* reserved, never valid */
    RTMP_AMF0_NULL = 0x05,
    RTMP_AMF0_UNDEFINED = 0x06,
    RTMP_AMF0_REFERENCE = 0x07,
    RTMP_AMF0_ECMA_ARRAY = 0x08,
    RTMP_AMF0_OBJECT_END = 0x09,
    RTMP_AMF0_STRICT_ARRAY = 0x0A,
    RTMP_AMF0_DATE = 0x0B,
    RTMP_AMF0_LONG_STRING = 0x0C,
    RTMP_AMF0_UNSUPPORTED = 0x0D,
    RTMP_AMF0_RECORDSET = 0x0E,    /* reserved, never valid */
    RTMP_AMF0_XML_DOCUMENT = 0x0F, /* 32-bit length and UTF-8 text */
    RTMP_AMF0_TYPED_OBJECT = 0x10,
    RTMP_AMF0_AVMPLUS = 0x11,      /* switch to AMF3 for one value (amf3.h) */
};

/* The nesting limits of amf.h, under the names AMF0 code uses. */
#define RTMP_AMF0_MAX_DEPTH RTMP_AMF_MAX_DEPTH
#define RTMP_AMF0_DEFAULT_DEPTH RTMP_AMF_DEFAULT_DEPTH

/* rtmp_amf0_read_key results. */
#define RTMP_AMF0_END 0  /* the end marker 00 00 09 was read */
#define RTMP_AMF0_KEY 1  /* a key was read; its value follows */

struct rtmp_amf3_reader;

typedef struct rtmp_amf0_reader {
    const uint8_t *start;  /* first byte of the input, for offsets */
    const uint8_t *p;      /* next unread byte; start <= p <= end */
    const uint8_t *end;    /* one past the last byte */
    uint32_t nrefs;        /* complex values (object, typed object, ECMA
                              and strict array) begun so far: the size of
                              the reference table a reference indexes */
    struct rtmp_amf3_reader *amf3;  /* NULL, or an AMF3 reader over the same
                              bytes whose tables carry over from one
                              switched value to the next (one message
                              body, one AMF3 context); set by the caller */
} rtmp_amf0_reader;

/* Start reading p[0 .. len).  The bytes must outlive the reader and every
 * string pointer it hands out. */
void rtmp_amf0_reader_init(rtmp_amf0_reader *r, const void *p, size_t len);

/* Bytes consumed so far (the offset of the next item). */
static inline size_t rtmp_amf0_offset(const rtmp_amf0_reader *r) { return (size_t)(r->p - r->start); }

/* Bytes left to read. */
static inline size_t rtmp_amf0_remaining(const rtmp_amf0_reader *r) { return (size_t)(r->end - r->p); }

/* The marker of the next value without consuming it: 0 .. 255 (not
 * validated), or RTMP_ERR_AMF_TRUNCATED at the end of the input. */
int rtmp_amf0_peek_marker(const rtmp_amf0_reader *r);

/* Consume a marker-only value: null, undefined or unsupported.  Returns
 * the marker, RTMP_ERR_AMF_TRUNCATED, or RTMP_ERR_AMF_TYPE when the next
 * value is of another type. */
int rtmp_amf0_read_marker(rtmp_amf0_reader *r);

/* A number (marker 0 + big-endian IEEE 754 double) into *v.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_number(rtmp_amf0_reader *r, double *v);

/* A boolean into *v (0 or 1; any nonzero byte is true).
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_boolean(rtmp_amf0_reader *r, int *v);

/* A string or a long string: *s points into the input, *len bytes, not
 * NUL-terminated.  Returns the marker it read (RTMP_AMF0_STRING or
 * RTMP_AMF0_LONG_STRING), RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_string(rtmp_amf0_reader *r, const char **s, size_t *len);

/* An XML document (marker 15, 32-bit length, text pointing into the
 * input).  0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_xml_document(rtmp_amf0_reader *r, const char **s, size_t *len);

/* The switch to AMF3 (marker 17): consumes the marker only; one AMF3
 * value follows at r->p, read with an amf3.h reader over the same bytes
 * whose reference tables carry over between the switches of one message
 * body (r->amf3).  It does not enter the AMF0 reference table.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_avmplus(rtmp_amf0_reader *r);

/* A date: milliseconds since the epoch and the (reserved) time zone.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_date(rtmp_amf0_reader *r, double *ms, int16_t *tz);

/* A reference: *index (zero-based) is below r->nrefs.
 * 0, RTMP_ERR_AMF_TRUNCATED, RTMP_ERR_AMF_REFERENCE or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_reference(rtmp_amf0_reader *r, uint16_t *index);

/* The head of an anonymous object (marker 3).  Counts one reference.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_object_start(rtmp_amf0_reader *r);

/* The head of a typed object (marker 16 and class name, pointing into the
 * input).  Counts one reference.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_typed_object_start(rtmp_amf0_reader *r, const char **cls, size_t *len);

/* The head of an ECMA array and its declared count.  The count is only a
 * hint (encoders write estimates, and the entries end with an end marker
 * like an object's), so it is returned unchecked; nothing here loops or
 * allocates by it.  Counts one reference.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_ecma_start(rtmp_amf0_reader *r, uint32_t *count);

/* The head of a strict array and its count, which is checked first: each
 * element takes at least one byte, so a count above the bytes remaining
 * fails at once.  Counts one reference.
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf0_read_strict_array_start(rtmp_amf0_reader *r, uint32_t *count);

/* Inside an object, typed object or ECMA array: the next property key
 * (*key points into the input) or the end marker.  An empty key followed
 * by the object-end marker is the end; an empty key followed by any other
 * marker is a property named "".  Returns RTMP_AMF0_KEY, RTMP_AMF0_END
 * (end marker consumed), or RTMP_ERR_AMF_TRUNCATED. */
int rtmp_amf0_read_key(rtmp_amf0_reader *r, const char **key, size_t *len);

/* Whether an ECMA array may end here without its end marker: true only
 * at the very end of the input (some encoders omit the marker on the
 * last value of a message). */
static inline int rtmp_amf0_ecma_end_missing(const rtmp_amf0_reader *r) { return r->p == r->end; }

/* Skip one whole value of any supported type, with at most max_depth
 * levels of nested containers (0: scalars only; clamped to
 * RTMP_AMF0_MAX_DEPTH).  References are checked against r->nrefs.  A
 * switched AMF3 value is skipped with the levels left (the switch takes
 * none) in r->amf3's context, or when r->amf3 is NULL in a context of
 * its own (allocated and freed here: references to earlier switches
 * then fail).  0, or RTMP_ERR_AMF_TRUNCATED / _MARKER / _DEPTH / _REFERENCE
 * (and for AMF3 _TYPE / _EXTERNALIZABLE / NOMEM) with the reader left
 * where the value started. */
int rtmp_amf0_skip_value(rtmp_amf0_reader *r, int max_depth);

/* Walk every value of p[0 .. len) (AMF0 values, each maybe switched to
 * AMF3, one AMF3 context for all) with rtmp_amf0_skip_value: 0, or its
 * first error.  *count (may be NULL): the values walked whole; *offset
 * (may be NULL): where the walk stopped (the failing value's first
 * byte, or len). */
int rtmp_amf0_walk(const uint8_t *p, size_t len, int max_depth, size_t *count, size_t *offset);

/* Whether the body p[0 .. len) of a command or data message (AMF0
 * values, each maybe switched to AMF3, with one AMF3 context for the
 * whole body) decodes: every value whole, nesting at most max_depth
 * levels.  0, or the first RTMP_ERR_AMF_* code.  An externalizable AMF3
 * object ends the walk as decodable: its body is its class's own, read
 * by a handler a script may have registered, so its end cannot be found
 * here.  Out of memory for the AMF3 tables says nothing about the bytes:
 * 0 as well. */
int rtmp_amf0_check_body(const uint8_t *p, size_t len, int max_depth);

/* Writers: append one item to *out. */

/* Marker 0 and the double, big-endian. */
int rtmp_amf0_write_number(rtmp_buf **out, double v);

/* Marker 1 and 0x00 or 0x01. */
int rtmp_amf0_write_boolean(rtmp_buf **out, int v);

/* A string: marker 2 with a 16-bit length up to 65535 bytes, above that
 * marker 12 with a 32-bit length.  RTMP_ERR_INVAL past 2^32-1 bytes. */
int rtmp_amf0_write_string(rtmp_buf **out, const char *s, size_t len);

/* Marker-only values: 5, 6 and 13. */
int rtmp_amf0_write_null(rtmp_buf **out);
int rtmp_amf0_write_undefined(rtmp_buf **out);
int rtmp_amf0_write_unsupported(rtmp_buf **out);

/* Marker 3.  Follow with key/value pairs and rtmp_amf0_write_object_end. */
int rtmp_amf0_write_object_start(rtmp_buf **out);

/* Marker 16 and the class name (RTMP_ERR_INVAL past 65535 bytes). */
int rtmp_amf0_write_typed_object_start(rtmp_buf **out, const char *cls, size_t len);

/* Marker 8 and the count (written as given; the entries and the end
 * marker follow as for an object). */
int rtmp_amf0_write_ecma_start(rtmp_buf **out, uint32_t count);

/* Marker 10 and the count; exactly count values must follow. */
int rtmp_amf0_write_strict_array_start(rtmp_buf **out, uint32_t count);

/* A property key: 16-bit length and bytes (RTMP_ERR_INVAL past 65535). */
int rtmp_amf0_write_key(rtmp_buf **out, const char *key, size_t len);

/* The end of an object, typed object or ECMA array: 00 00 09. */
int rtmp_amf0_write_object_end(rtmp_buf **out);

/* Marker 11, the milliseconds as a double, the 16-bit time zone. */
int rtmp_amf0_write_date(rtmp_buf **out, double ms, int16_t tz);

/* Marker 15, the 32-bit length and the text (RTMP_ERR_INVAL past 2^32-1). */
int rtmp_amf0_write_xml_document(rtmp_buf **out, const char *s, size_t len);

/* Marker 17: one AMF3 value must follow. */
int rtmp_amf0_write_avmplus(rtmp_buf **out);

/* Marker 7 and the zero-based index of an earlier complex value. */
int rtmp_amf0_write_reference(rtmp_buf **out, uint16_t index);

#endif
