/*
 * amf3.h: the AMF3 codec, sans I/O.
 *
 * The reader walks a byte span the caller owns, one item at a time like
 * the AMF0 reader (amf0.h): each read function takes one whole item (a
 * scalar, a string, the head of a complex value, a key), advances past it
 * and returns >= 0; on failure it returns a negative RTMP_ERR_* and leaves
 * the reader as it was (position and table sizes), so rtmp_amf3_offset()
 * names the byte where the bad item starts.  Strings point into the input.
 *
 * Reference tables.  AMF3 has three: strings (every non-empty UTF-8-vr
 * read inline: string values, keys, class and member names, vector type
 * names), objects (every complex value read inline: XML documents, dates,
 * arrays, objects, XML, byte arrays, vectors, dictionaries, counted when
 * their head is read so a value may refer to an enclosing one) and traits.
 * The reader keeps the string and traits tables itself (it must hand back
 * their contents); of the object table it keeps only the count, the
 * caller holds the values.  Tables live in memory the reader allocates
 * and rtmp_amf3_reader_free() releases.  Bound: every entry is made by
 * input actually read (an inline string by >= 2 bytes, a traits entry by
 * >= 2 bytes, a sealed member name by >= 1 byte), so the tables never
 * hold more entries than the input has bytes: at most
 * sizeof(rtmp_amf3_str) (16) bytes per input byte for strings and names,
 * plus sizeof(rtmp_amf3_traits) (40) per two input bytes for traits.
 *
 * Counts and lengths (U29) are checked against the bytes remaining before
 * they are used: a dense array, object vector, dictionary or sealed
 * member list can hold no more items than there are bytes left (each
 * takes >= 1 byte, a dictionary entry >= 2); a byte array, XML text or
 * number vector must be all there.
 *
 * The writer appends to a growable rtmp_buf (created when *out is NULL);
 * each function returns 0, RTMP_ERR_NOMEM, or RTMP_ERR_INVAL for a value
 * the format cannot express (a U29 past 2^29-1, a length past 2^28-1).
 * The writer keeps no tables: deciding when to write a reference is the
 * caller's (the Lua binding keeps maps of what it wrote).
 */
#ifndef RTMP_AMF3_H
#define RTMP_AMF3_H

#include <stddef.h>
#include <stdint.h>

#include "amf.h"
#include "buf.h"

/* Type markers (AMF 3 specification, section 3.1). */
enum {
    RTMP_AMF3_UNDEFINED = 0x00,
    RTMP_AMF3_NULL = 0x01,
    RTMP_AMF3_FALSE = 0x02,
    RTMP_AMF3_TRUE = 0x03,
    RTMP_AMF3_INTEGER = 0x04,
    RTMP_AMF3_DOUBLE = 0x05,
    RTMP_AMF3_STRING = 0x06,
    RTMP_AMF3_XML_DOC = 0x07,
    RTMP_AMF3_DATE = 0x08,
    RTMP_AMF3_ARRAY = 0x09,
    RTMP_AMF3_OBJECT = 0x0A,
    RTMP_AMF3_XML = 0x0B,
    RTMP_AMF3_BYTE_ARRAY = 0x0C,
    RTMP_AMF3_VECTOR_INT = 0x0D,
    RTMP_AMF3_VECTOR_UINT = 0x0E,
    RTMP_AMF3_VECTOR_DOUBLE = 0x0F,
    RTMP_AMF3_VECTOR_OBJECT = 0x10,
    RTMP_AMF3_DICTIONARY = 0x11,
};

/* Largest U29 value, and the integer range of the integer type. */
#define RTMP_AMF3_U29_MAX 0x1FFFFFFF
#define RTMP_AMF3_INT_MIN (-0x10000000)
#define RTMP_AMF3_INT_MAX 0x0FFFFFFF
/* Largest length or count a U29 with a flag bit can carry. */
#define RTMP_AMF3_LEN_MAX 0x0FFFFFFF

/* rtmp_amf3_read_head and rtmp_amf3_read_string_vr results. */
#define RTMP_AMF3_INLINE 0  /* the value follows */
#define RTMP_AMF3_REF 1     /* a reference to an earlier one */

/* A string in the input. */
typedef struct rtmp_amf3_str {
    const char *s;
    size_t len;
} rtmp_amf3_str;

/* One traits entry.  Sealed member names are names[first .. first+nsealed)
 * of the reader's name list (rtmp_amf3_sealed_name). */
typedef struct rtmp_amf3_traits {
    rtmp_amf3_str cls;   /* class name, "" for anonymous objects */
    uint32_t nsealed;    /* sealed member count */
    uint32_t first;      /* index of the first sealed name */
    uint8_t dynamic;     /* dynamic members follow the sealed values */
    uint8_t external;    /* externalizable: the body is the class's own */
} rtmp_amf3_traits;

typedef struct rtmp_amf3_reader {
    const uint8_t *start;   /* first byte of the input, for offsets */
    const uint8_t *p;       /* next unread byte; start <= p <= end */
    const uint8_t *end;     /* one past the last byte */
    uint32_t nobjects;      /* complex values begun: the object table size */
    uint32_t nobjrefs;      /* references to complex values read */
    rtmp_amf3_str *strings; /* the string table, nstrings used */
    uint32_t nstrings, capstrings;
    rtmp_amf3_traits *traits; /* the traits table, ntraits used */
    uint32_t ntraits, captraits;
    rtmp_amf3_str *names;   /* sealed member names of every traits entry */
    uint32_t nnames, capnames;
} rtmp_amf3_reader;

/* The head of a complex value (markers 0x07 .. 0x11), or of a reference
 * to one.  Which fields are set depends on the marker; see
 * rtmp_amf3_read_head. */
typedef struct rtmp_amf3_head {
    int marker;
    uint32_t ref;          /* RTMP_AMF3_REF: index into the object table */
    uint32_t count;        /* array: dense count; vector: length;
                              dictionary: entries; byte array, XML: bytes */
    const uint8_t *bytes;  /* byte array, XML, XML document: the bytes;
                              int/uint/double vectors: the first element */
    double date;           /* date: milliseconds since the epoch, UTC */
    int fixed;             /* vector: fixed length; dictionary: weak keys */
    rtmp_amf3_str type;    /* object vector: the element type name */
    uint32_t traits;       /* object: index into the traits table */
    int traits_ref;        /* object: the traits came as a reference */
} rtmp_amf3_head;

/* Start reading p[0 .. len) with empty tables.  The bytes must outlive
 * the reader and every string it hands out. */
void rtmp_amf3_reader_init(rtmp_amf3_reader *r, const void *p, size_t len);

/* Release the tables (the reader may be initialized again). */
void rtmp_amf3_reader_free(rtmp_amf3_reader *r);

/* Empty the three tables, keeping their memory (a new AMF3 context). */
void rtmp_amf3_reader_reset(rtmp_amf3_reader *r);

static inline size_t rtmp_amf3_offset(const rtmp_amf3_reader *r) { return (size_t)(r->p - r->start); }
static inline size_t rtmp_amf3_remaining(const rtmp_amf3_reader *r) { return (size_t)(r->end - r->p); }

/* The marker of the next value without consuming it: 0 .. 255 (not
 * validated), or RTMP_ERR_AMF_TRUNCATED at the end of the input. */
int rtmp_amf3_peek_marker(const rtmp_amf3_reader *r);

/* Consume a marker-only value: undefined, null, false or true.  Returns
 * the marker, RTMP_ERR_AMF_TRUNCATED, or RTMP_ERR_AMF_TYPE. */
int rtmp_amf3_read_marker(rtmp_amf3_reader *r);

/* A bare U29 (1 to 4 bytes, no marker) into *v.
 * 0 or RTMP_ERR_AMF_TRUNCATED. */
int rtmp_amf3_read_u29(rtmp_amf3_reader *r, uint32_t *v);

/* An integer (marker 4, U29 read as 29-bit two's complement).
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf3_read_integer(rtmp_amf3_reader *r, int32_t *v);

/* A double (marker 5 and 8 bytes big-endian).
 * 0, RTMP_ERR_AMF_TRUNCATED or RTMP_ERR_AMF_TYPE. */
int rtmp_amf3_read_double(rtmp_amf3_reader *r, double *v);

/* A UTF-8-vr (no marker): inline (a non-empty one enters the string
 * table) or a reference into the string table.  Returns RTMP_AMF3_INLINE
 * or RTMP_AMF3_REF, RTMP_ERR_AMF_TRUNCATED, RTMP_ERR_AMF_REFERENCE,
 * RTMP_ERR_NOMEM. */
int rtmp_amf3_read_string_vr(rtmp_amf3_reader *r, const char **s, size_t *len);

/* A string value (marker 6 and a UTF-8-vr).  Returns as
 * rtmp_amf3_read_string_vr, or RTMP_ERR_AMF_TYPE. */
int rtmp_amf3_read_string(rtmp_amf3_reader *r, const char **s, size_t *len);

/* The head of a complex value (markers 7 .. 0x11).  Returns RTMP_AMF3_REF
 * with h->ref < r->nobjects for a reference, or RTMP_AMF3_INLINE with the
 * value counted in the object table and h filled in:
 *   XML document, XML, byte array: count bytes at bytes (consumed);
 *   date: date;
 *   array: count dense elements; the associative part comes first: keys
 *     (rtmp_amf3_read_key) each followed by a value, up to the empty key,
 *     then count values;
 *   object: traits (rtmp_amf3_get_traits).  Unless externalizable, the
 *     nsealed sealed values follow in name order, then if dynamic the
 *     dynamic members as key + value up to the empty key.  An
 *     externalizable body has no generic form: the caller reads it (or
 *     fails with RTMP_ERR_AMF_EXTERNALIZABLE);
 *   int, uint and double vectors: fixed, count elements at bytes (4, 4
 *     and 8 bytes each, consumed: rtmp_amf3_vector_*);
 *   object vector: fixed, type, then count values;
 *   dictionary: fixed (weak keys), then count key + value pairs.
 * Errors: RTMP_ERR_AMF_TRUNCATED (counts beyond the input included),
 * RTMP_ERR_AMF_REFERENCE (object, string or traits index out of range),
 * RTMP_ERR_AMF_TYPE (not a complex marker), RTMP_ERR_NOMEM. */
int rtmp_amf3_read_head(rtmp_amf3_reader *r, rtmp_amf3_head *h);

/* Inside an array's associative part or an object's dynamic members: the
 * next key (a UTF-8-vr).  Returns 1 for a key, 0 for the empty key that
 * ends the list (consumed), or an error as rtmp_amf3_read_string_vr. */
int rtmp_amf3_read_key(rtmp_amf3_reader *r, const char **key, size_t *len);

/* The traits entry idx (< r->ntraits) and its sealed name i. */
static inline const rtmp_amf3_traits *rtmp_amf3_get_traits(const rtmp_amf3_reader *r, uint32_t idx)
{
    return &r->traits[idx];
}
static inline rtmp_amf3_str rtmp_amf3_sealed_name(const rtmp_amf3_reader *r, const rtmp_amf3_traits *t,
                                                  uint32_t i)
{
    return r->names[t->first + i];
}

/* Element i of a number vector whose head gave bytes. */
int32_t rtmp_amf3_vector_int(const uint8_t *bytes, uint32_t i);
uint32_t rtmp_amf3_vector_uint(const uint8_t *bytes, uint32_t i);
double rtmp_amf3_vector_double(const uint8_t *bytes, uint32_t i);

/* Skip one whole value with at most max_depth levels of nested
 * containers (arrays, objects, object vectors, dictionaries; 0: none;
 * clamped to RTMP_AMF_MAX_DEPTH), entering
 * strings, objects and traits in the tables as a full read would.
 * 0, or RTMP_ERR_AMF_TRUNCATED / _MARKER / _DEPTH / _REFERENCE / _TYPE /
 * _EXTERNALIZABLE (an externalizable object: its body has no generic
 * form) / NOMEM, with the reader left where the value started. */
int rtmp_amf3_skip_value(rtmp_amf3_reader *r, int max_depth);

/* Walk every value of p[0 .. len) (AMF3 values, one context for all) with
 * rtmp_amf3_skip_value: 0, or its first error.  *count (may be NULL): the
 * values walked whole; *offset (may be NULL): where the walk stopped (the
 * failing value's first byte, or len).  The reader's tables live only
 * during the call. */
int rtmp_amf3_walk(const uint8_t *p, size_t len, int max_depth, size_t *count, size_t *offset);

/* Writers: append one item to *out. */

/* A bare U29 (RTMP_ERR_INVAL past 2^29-1). */
int rtmp_amf3_write_u29(rtmp_buf **out, uint32_t v);

/* Marker-only values: undefined, null, false, true (any of 0 .. 3). */
int rtmp_amf3_write_marker(rtmp_buf **out, int marker);

/* Marker 4 and v as a 29-bit U29 (RTMP_ERR_INVAL outside
 * RTMP_AMF3_INT_MIN .. RTMP_AMF3_INT_MAX). */
int rtmp_amf3_write_integer(rtmp_buf **out, int32_t v);

/* Marker 5 and the double, big-endian. */
int rtmp_amf3_write_double(rtmp_buf **out, double v);

/* An inline UTF-8-vr, no marker (RTMP_ERR_INVAL past 2^28-1 bytes). */
int rtmp_amf3_write_string_vr(rtmp_buf **out, const char *s, size_t len);

/* A string-table reference, no marker (RTMP_ERR_INVAL past 2^28-1). */
int rtmp_amf3_write_string_ref(rtmp_buf **out, uint32_t index);

/* A marker followed by an object-table reference (U29 index << 1). */
int rtmp_amf3_write_object_ref(rtmp_buf **out, int marker, uint32_t index);

/* A marker and an inline length-or-count U29 ((n << 1) | 1) with no
 * payload: the head of an array (dense count), vector (length) or
 * dictionary (entries); a date takes n = 0. */
int rtmp_amf3_write_inline(rtmp_buf **out, int marker, uint32_t n);

/* A marker, the inline length and the bytes: XML document, XML, byte array. */
int rtmp_amf3_write_bytes(rtmp_buf **out, int marker, const void *p, size_t len);

/* Marker 8, U29 1 and the milliseconds. */
int rtmp_amf3_write_date(rtmp_buf **out, double ms);

/* The object marker and inline traits: U29 (nsealed << 4 | dynamic << 3 |
 * 3), or 7 for externalizable traits.  The class name, then the sealed
 * names, follow as UTF-8-vr (inline or reference) from the caller. */
int rtmp_amf3_write_traits(rtmp_buf **out, uint32_t nsealed, int dynamic, int external);

/* The object marker and a traits reference: U29 (index << 2 | 1). */
int rtmp_amf3_write_traits_ref(rtmp_buf **out, uint32_t index);

/* Raw vector elements: 4 bytes signed, 4 bytes unsigned, 8 bytes double. */
int rtmp_amf3_write_vector_int(rtmp_buf **out, int32_t v);
int rtmp_amf3_write_vector_uint(rtmp_buf **out, uint32_t v);
int rtmp_amf3_write_vector_double(rtmp_buf **out, double v);

/* One raw byte (a vector's fixed flag, a dictionary's weak-keys flag). */
int rtmp_amf3_write_u8(rtmp_buf **out, uint8_t v);

#endif
