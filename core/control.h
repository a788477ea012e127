/*
 * control.h: protocol control messages (types 1-6) and user-control
 * events, parsed from and built into payloads.  Pure functions.
 */
#ifndef RTMP_CONTROL_H
#define RTMP_CONTROL_H

#include <stdint.h>

#include "buf.h"
#include "chunk.h"

/* User-control event types. */
enum {
    RTMP_UC_STREAM_BEGIN = 0,
    RTMP_UC_STREAM_EOF = 1,
    RTMP_UC_STREAM_DRY = 2,
    RTMP_UC_SET_BUFFER_LENGTH = 3,
    RTMP_UC_STREAM_IS_RECORDED = 4,
    RTMP_UC_PING_REQUEST = 6,
    RTMP_UC_PING_RESPONSE = 7,
    RTMP_UC_SWF_VERIFY_REQUEST = 26,
    RTMP_UC_SWF_VERIFY_RESPONSE = 27,
    RTMP_UC_BUFFER_EMPTY = 31,
    RTMP_UC_BUFFER_READY = 32,
};

/* A parsed control message.  Which fields are set depends on type:
 *   SET_CHUNK_SIZE: value = chunk size (31 bits; bit 31 is reported in high_bit)
 *   ABORT: value = csid;  ACK: value = sequence number
 *   WINDOW_ACK_SIZE: value = window
 *   SET_PEER_BANDWIDTH: value = window, limit = 0/1/2 or -1 when the
 *       limit-type byte is missing (a known peer quirk)
 *   USER_CONTROL: event, value = stream id / timestamp (first field),
 *       value2 = buffer length (SET_BUFFER_LENGTH); nfields = 0, 1 or 2
 *       fields present; for SWF verification the raw bytes follow. */
typedef struct rtmp_control {
    uint8_t  type;
    uint16_t event;
    int      limit;
    int      high_bit;
    int      nfields;
    uint32_t value, value2;
} rtmp_control;

/* 1 when type is a protocol control message (1-6) or user control (4). */
static inline int rtmp_is_control(uint8_t type) { return type >= 1 && type <= 6; }

/* Parse a control message.  0, or RTMP_ERR_CONTROL when the payload is
 * too short for its type. */
int rtmp_control_parse(const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_control *out);

/* Name of a user-control event ("stream_begin", "ping_request", ...) or
 * NULL; and the event for a name, or -1. */
const char *rtmp_uc_name(unsigned event);
int rtmp_uc_event(const char *name);

/* Name of a message type ("set_chunk_size", "audio", "command", ...);
 * "unknown" for types without one. */
const char *rtmp_msg_type_name(unsigned type);

/* Payload builders: write the payload of a control message into p
 * (at least 10 bytes) and return its length. */
int rtmp_control_u32(uint8_t *p, uint32_t v);                        /* types 1, 2, 3, 5 */
int rtmp_control_peer_bandwidth(uint8_t *p, uint32_t window, int limit); /* limit < 0: no limit byte */
int rtmp_control_user(uint8_t *p, uint16_t event, int nfields, uint32_t v1, uint32_t v2);

#endif
