/*
 * ws.h: the WebSocket (RFC 6455) pieces of the HTTP server, sans I/O:
 * the handshake's accept value, server frame headers, and the reader of
 * client frames.
 *
 * The server only sends (WS-FLV: FLV in binary frames, docs/HTTP.md), so
 * the reader keeps no client data: a text or binary frame is checked and
 * its payload skipped (reported by length), a control frame (close, ping,
 * pong: at most 125 bytes, never fragmented) is unmasked into a small
 * fixed buffer and handed out whole.  Memory is constant whatever the
 * peer sends.  Refused, after which the reader is spent
 * (rtmp_ws_reader_close_code says what to close with):
 *   an unmasked frame, reserved bits, an unknown opcode, a fragmented or
 *   long control frame, a 64-bit length with the top bit set,
 *   a continuation without a message to continue, a new message inside
 *   a fragmented one                                           1002
 *   a frame payload over max_frame                              1009
 * The server (core/net_http.c) and the fuzz target (fuzz/fuzz_ws.c) feed
 * the same reader.
 */
#ifndef RTMP_WS_H
#define RTMP_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Opcodes. */
enum {
    RTMP_WS_CONT = 0x0, RTMP_WS_TEXT = 0x1, RTMP_WS_BINARY = 0x2,
    RTMP_WS_CLOSE = 0x8, RTMP_WS_PING = 0x9, RTMP_WS_PONG = 0xA,
};

/* Close codes the server sends. */
enum {
    RTMP_WS_NORMAL = 1000, RTMP_WS_GOING_AWAY = 1001, RTMP_WS_PROTOCOL = 1002,
    RTMP_WS_TOO_BIG = 1009,
};

#define RTMP_WS_MAX_FRAME_DEFAULT (64 * 1024) /* client frame payload bytes accepted */
#define RTMP_WS_ACCEPT_LEN 28                 /* base64 of a SHA-1 */

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (key[0 ..
 * len)): base64(SHA-1(key + the RFC's GUID)), NUL-terminated into out.
 * 0, or RTMP_ERR_INVAL for a key that is not 24 characters of base64 (16
 * bytes, as the RFC wants). */
int rtmp_ws_accept(const char *key, size_t len, char out[RTMP_WS_ACCEPT_LEN + 1]);

/* The header of a final, unmasked frame of opcode op and len payload
 * bytes into out; returns its length (2, 4 or 10). */
size_t rtmp_ws_frame_header(uint8_t out[10], unsigned op, uint64_t len);

/* The length rtmp_ws_frame_header gives for len payload bytes. */
static inline size_t rtmp_ws_frame_header_len(uint64_t len)
{
    return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

/* A frame handed out: a control frame's payload (unmasked, at most 125
 * bytes; valid during the callback), or a data frame's length with
 * payload NULL (its bytes are skipped). */
typedef struct rtmp_ws_frame {
    unsigned       opcode;
    int            fin;
    const uint8_t *payload;
    uint64_t       len;
} rtmp_ws_frame;

/* Return 0 to read on, 1 to stop after this frame (the feed returns the
 * bytes up to its end). */
typedef int (*rtmp_ws_cb)(void *ud, const rtmp_ws_frame *f);

typedef struct rtmp_ws_reader {
    uint64_t max_frame;
    /* the frame being read */
    uint8_t  head[14];
    size_t   head_len;      /* header bytes gathered */
    size_t   head_need;     /* header bytes this frame has (2 until known) */
    uint64_t left;          /* payload bytes still to read */
    uint64_t len;
    size_t   at;            /* payload bytes read (for the mask's phase) */
    uint8_t  ctl[125];      /* a control frame's payload */
    int      in_message;    /* a fragmented data message is open */
    int      failed;        /* the close code (1002, 1009), or 0 */
    char     why[80];
} rtmp_ws_reader;

/* A reader accepting client frames of at most max_frame payload bytes (0:
 * RTMP_WS_MAX_FRAME_DEFAULT). */
void rtmp_ws_reader_init(rtmp_ws_reader *r, uint64_t max_frame);

/* Feed len bytes.  Returns the bytes consumed (all, unless the callback
 * asked to stop), or after a refusal RTMP_ERR_INVAL (protocol error:
 * close 1002) or RTMP_ERR_MSG_TOO_LONG (a frame over max_frame: 1009);
 * the reader is then spent. */
ssize_t rtmp_ws_feed(rtmp_ws_reader *r, const uint8_t *in, size_t len, rtmp_ws_cb cb, void *ud);

/* After a refusal: the close code to send (1002, 1009) and why ("client
 * frame not masked"). */
int rtmp_ws_reader_close_code(const rtmp_ws_reader *r);
const char *rtmp_ws_reader_error(const rtmp_ws_reader *r);

#endif
