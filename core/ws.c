/*
 * ws.c: WebSocket handshake value, frame headers, the client frame reader
 * (ws.h).
 */
#include "ws.h"
#include "error.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int rtmp_ws_accept(const char *key, size_t len, char out[RTMP_WS_ACCEPT_LEN + 1])
{
    uint8_t raw[18];
    /* 24 characters of base64 that decode to 16 bytes */
    if (len != 24 || EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18 || key[22] != '='
        || key[23] != '=')
        return RTMP_ERR_INVAL;
    uint8_t buf[24 + sizeof GUID - 1];
    memcpy(buf, key, 24);
    memcpy(buf + 24, GUID, sizeof GUID - 1);
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA1(buf, sizeof buf, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
    out[RTMP_WS_ACCEPT_LEN] = '\0';
    return 0;
}

size_t rtmp_ws_frame_header(uint8_t out[10], unsigned op, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (op & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void rtmp_ws_reader_init(rtmp_ws_reader *r, uint64_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame ? max_frame : RTMP_WS_MAX_FRAME_DEFAULT;
    r->head_need = 2;
}

static ssize_t fail(rtmp_ws_reader *r, int code, const char *why)
{
    r->failed = code;
    snprintf(r->why, sizeof r->why, "%s", why);
    return code == RTMP_WS_TOO_BIG ? RTMP_ERR_MSG_TOO_LONG : RTMP_ERR_INVAL;
}

/* The first two header bytes are in: check them and size the header. */
static ssize_t first_two(rtmp_ws_reader *r)
{
    unsigned b0 = r->head[0], b1 = r->head[1], op = b0 & 0x0F, len7 = b1 & 0x7F;
    if (b0 & 0x70)
        return fail(r, RTMP_WS_PROTOCOL, "reserved bits set in a client frame");
    if (!(b1 & 0x80))
        return fail(r, RTMP_WS_PROTOCOL, "client frame not masked");
    if (op != RTMP_WS_CONT && op != RTMP_WS_TEXT && op != RTMP_WS_BINARY && op != RTMP_WS_CLOSE
        && op != RTMP_WS_PING && op != RTMP_WS_PONG)
        return fail(r, RTMP_WS_PROTOCOL, "unknown opcode in a client frame");
    if (op >= RTMP_WS_CLOSE && (!(b0 & 0x80) || len7 > 125))
        return fail(r, RTMP_WS_PROTOCOL, "control frame fragmented or over 125 bytes");
    r->head_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    return 0;
}

/* The whole header is in: the length, and the message rules. */
static ssize_t header_done(rtmp_ws_reader *r)
{
    unsigned op = r->head[0] & 0x0F, len7 = r->head[1] & 0x7F;
    int fin = (r->head[0] & 0x80) != 0;
    uint64_t len = len7;
    if (len7 == 126)
        len = (uint64_t)r->head[2] << 8 | r->head[3];
    else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | r->head[2 + i];
        if (len >> 63)
            return fail(r, RTMP_WS_PROTOCOL, "frame length with its top bit set");
    }
    if (len > r->max_frame) {
        char why[80];
        snprintf(why, sizeof why, "client frame of %llu bytes, over %llu", (unsigned long long)len,
                 (unsigned long long)r->max_frame);
        return fail(r, RTMP_WS_TOO_BIG, why);
    }
    if (op < RTMP_WS_CLOSE) {
        if (op == RTMP_WS_CONT && !r->in_message)
            return fail(r, RTMP_WS_PROTOCOL, "continuation frame outside a fragmented message");
        if (op != RTMP_WS_CONT && r->in_message)
            return fail(r, RTMP_WS_PROTOCOL, "new message inside a fragmented one");
        r->in_message = !fin;
    }
    r->len = r->left = len;
    r->at = 0;
    return 0;
}

ssize_t rtmp_ws_feed(rtmp_ws_reader *r, const uint8_t *in, size_t len, rtmp_ws_cb cb, void *ud)
{
    if (r->failed)
        return r->failed == RTMP_WS_TOO_BIG ? RTMP_ERR_MSG_TOO_LONG : RTMP_ERR_INVAL;
    size_t off = 0;
    for (;;) {
        /* the header */
        while (r->head_len < r->head_need) {
            if (off == len)
                return (ssize_t)off;
            r->head[r->head_len++] = in[off++];
            ssize_t rc = 0;
            if (r->head_len == 2)
                rc = first_two(r);
            if (rc == 0 && r->head_len == r->head_need)
                rc = header_done(r);
            if (rc < 0)
                return rc;
        }
        /* the payload: a control frame's unmasked into ctl, a data frame's skipped */
        unsigned op = r->head[0] & 0x0F;
        size_t n = len - off < r->left ? len - off : (size_t)r->left;
        if (op >= RTMP_WS_CLOSE) {
            const uint8_t *mask = r->head + r->head_need - 4;
            for (size_t i = 0; i < n; i++, r->at++)
                r->ctl[r->at] = in[off + i] ^ mask[r->at & 3];
        }
        off += n;
        r->left -= n;
        if (r->left)
            return (ssize_t)off; /* wants more */
        rtmp_ws_frame f = { op, (r->head[0] & 0x80) != 0, op >= RTMP_WS_CLOSE ? r->ctl : NULL, r->len };
        r->head_len = 0;
        r->head_need = 2;
        if (cb(ud, &f))
            return (ssize_t)off;
    }
}

int rtmp_ws_reader_close_code(const rtmp_ws_reader *r)
{
    return r->failed;
}

const char *rtmp_ws_reader_error(const rtmp_ws_reader *r)
{
    return r->why;
}
