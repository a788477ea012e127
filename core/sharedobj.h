/*
 * sharedobj.h: shared-object message bodies (types 19 and 16), read and
 * built.  Pure functions of bytes; the values inside events are AMF0 and
 * are decoded by the caller (the Lua binding).
 *
 * Body (RTMP 1.0 section 7.1.3; field meanings as Red5 and FluorineFx
 * read and write them):
 *   name length(2) name, version(4), flags(4: 2 = persistent, 0 = not),
 *   reserved(4, written 0), then events until the end of the body:
 *   event type(1) data length(4) data.
 * Type 16 (the AMF3 variant) puts one encoding byte in front of that same
 * body.  Flash Player and Red5 write 0 there and keep the rest AMF0; Red5
 * also reads 3 as "the values are AMF3", which we refuse
 * (RTMP_ERR_SO_ENCODING) rather than guess.
 *
 * Event data by type, as Red5 reads it (the spec names the events but
 * not their layout; Wireshark does not dissect them):
 *   1 use, 2 release, 8 clear, 11 use_success: nothing
 *   3 request_change, 4 change: pairs of key (2-byte length + UTF-8, no
 *       marker) and one AMF value, until the data ends
 *   5 success, 9 remove, 10 request_remove: a key (the same string form),
 *       sometimes followed by one AMF value
 *   6 send_message: AMF values, the first the handler's name (a string
 *       with its marker), then the arguments
 *   7 status: code and level, two keys' string form
 */
#ifndef RTMP_SHAREDOBJ_H
#define RTMP_SHAREDOBJ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
    RTMP_SO_USE = 1,
    RTMP_SO_RELEASE = 2,
    RTMP_SO_REQUEST_CHANGE = 3,
    RTMP_SO_CHANGE = 4,
    RTMP_SO_SUCCESS = 5,
    RTMP_SO_SEND_MESSAGE = 6,
    RTMP_SO_STATUS = 7,
    RTMP_SO_CLEAR = 8,
    RTMP_SO_REMOVE = 9,
    RTMP_SO_REQUEST_REMOVE = 10,
    RTMP_SO_USE_SUCCESS = 11,
};

#define RTMP_SO_PERSISTENT 2  /* the flags value for a persistent object */

typedef struct rtmp_so_header {
    const char *name;      /* points into the body; not NUL-terminated */
    size_t      name_len;
    uint32_t    version, flags, reserved;
    int         encoding;  /* type 16: the leading byte; type 19: -1 */
} rtmp_so_header;

typedef struct rtmp_so_event {
    uint8_t        type;
    uint32_t       len;
    const uint8_t *data;   /* points into the body */
} rtmp_so_event;

/* Parse the header of a shared-object body p[0 .. len); amf3 is true for
 * type 16 (leading encoding byte).  Returns the offset of the first event,
 * or RTMP_ERR_SO_TRUNCATED (header cut short) or RTMP_ERR_SO_ENCODING
 * (type 16 with an encoding byte other than 0; h->encoding is set). */
int rtmp_so_parse_header(const uint8_t *p, size_t len, int amf3, rtmp_so_header *h);

/* The event at *off into *ev, advancing *off past it: 1, 0 at the end of
 * the body, or RTMP_ERR_SO_TRUNCATED when the event's header or its
 * declared data length runs past the end (*off unchanged). */
int rtmp_so_next_event(const uint8_t *p, size_t len, size_t *off, rtmp_so_event *ev);

/* A key/code string (2-byte big-endian length, then bytes) at *off in
 * p[0 .. len): 0 with *s, *slen set and *off advanced, or
 * RTMP_ERR_SO_TRUNCATED. */
int rtmp_so_read_string(const uint8_t *p, size_t len, size_t *off, const char **s, size_t *slen);

/* "use", "release", "request_change", "change", "success",
 * "send_message", "status", "clear", "remove", "request_remove",
 * "use_success", or NULL; and the type for a name, or -1. */
const char *rtmp_so_event_name(unsigned type);
int rtmp_so_event_type(const char *name);

/* Builders, appending to *out: 0, RTMP_ERR_NOMEM, or RTMP_ERR_INVAL for
 * a string longer than 65535 bytes or data longer than 2^32-1.
 * put_header writes the encoding byte 0 first when amf3 is true. */
int rtmp_so_put_header(rtmp_buf **out, int amf3, const char *name, size_t name_len,
                       uint32_t version, uint32_t flags, uint32_t reserved);
int rtmp_so_put_event(rtmp_buf **out, uint8_t type, const uint8_t *data, size_t len);
int rtmp_so_put_string(rtmp_buf **out, const char *s, size_t len);

#endif
