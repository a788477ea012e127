/*
 * fuzz_ws.c: the WebSocket client frame reader (core/ws.c), the one
 * decoder of what a WS-FLV player sends (core/net_http.c feeds it the
 * same way), and the handshake's accept value.
 *
 * The input is what a client sends after the handshake.  It is fed whole
 * and again in pieces cut at points drawn from the input.  Checks: a feed
 * consumes at most what it was given; a failure is RTMP_ERR_INVAL with
 * close code 1002 or RTMP_ERR_MSG_TOO_LONG with 1009, and the reader then
 * stays spent; every frame handed out has a known opcode, a control frame
 * is final with at most 125 bytes of payload, a data frame is within
 * max_frame and has no payload pointer; both feedings hand out the same
 * frames (opcode, fin, length, control payload) and end the same way.
 * The input's first 24 bytes as a Sec-WebSocket-Key: accepted only as 16
 * bytes of base64, the answer 28 characters of base64; a frame header
 * written for each length read is as long as rtmp_ws_frame_header_len says.
 */
#include "fuzz.h"

#include <string.h>

#include "../core/error.h"
#include "../core/ws.h"

#define MAX_FRAME 4096

typedef struct flog {
    uint64_t h;
    size_t   n;
} flog;

static void mix(flog *l, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        l->h = (l->h ^ b[i]) * 1099511628211ULL;
    l->h = (l->h ^ n) * 1099511628211ULL;
}

static int on_frame(void *ud, const rtmp_ws_frame *f)
{
    flog *l = ud;
    unsigned op = f->opcode;
    if (op != RTMP_WS_CONT && op != RTMP_WS_TEXT && op != RTMP_WS_BINARY && op != RTMP_WS_CLOSE
        && op != RTMP_WS_PING && op != RTMP_WS_PONG)
        fuzz_fail("opcode %u handed out", op);
    if (op >= RTMP_WS_CLOSE) {
        if (!f->fin || f->len > 125 || !f->payload)
            fuzz_fail("control frame fin %d len %llu", f->fin, (unsigned long long)f->len);
        mix(l, f->payload, (size_t)f->len);
    } else if (f->len > MAX_FRAME || f->payload) {
        fuzz_fail("data frame of %llu bytes", (unsigned long long)f->len);
    }
    uint8_t head[10];
    if (rtmp_ws_frame_header(head, op, f->len) != rtmp_ws_frame_header_len(f->len))
        fuzz_fail("frame header length for %llu", (unsigned long long)f->len);
    mix(l, &op, sizeof op);
    mix(l, &f->fin, sizeof f->fin);
    mix(l, &f->len, sizeof f->len);
    l->n++;
    return 0;
}

/* Feed whole (seed 0) or in pieces of 1 to 64 bytes drawn from seed.
 * Returns the final code and sets *close_code. */
static int feed(const uint8_t *data, size_t size, uint64_t seed, flog *l, int *close_code)
{
    rtmp_ws_reader r;
    rtmp_ws_reader_init(&r, MAX_FRAME);
    size_t off = 0;
    int rc = 0;
    uint64_t s = seed;
    while (off < size) {
        size_t piece = size - off;
        if (seed) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            if (piece > 1 + s % 64)
                piece = (size_t)(1 + s % 64);
        }
        ssize_t n = rtmp_ws_feed(&r, data + off, piece, on_frame, l);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if ((size_t)n != piece)
            fuzz_fail("consumed %zd of %zu", n, piece);
        off += piece;
    }
    *close_code = rtmp_ws_reader_close_code(&r);
    if (rc == RTMP_ERR_INVAL ? *close_code != RTMP_WS_PROTOCOL
        : rc == RTMP_ERR_MSG_TOO_LONG ? *close_code != RTMP_WS_TOO_BIG
        : rc != 0 || *close_code != 0)
        fuzz_fail("code %d with close code %d", rc, *close_code);
    if (rc && rtmp_ws_feed(&r, (const uint8_t *)"", 0, on_frame, l) != rc)
        fuzz_fail("a spent reader read on");
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flog whole = { 1469598103934665603ULL, 0 }, cut = whole;
    int c1, c2;
    int rc1 = feed(data, size, 0, &whole, &c1);
    uint64_t seed = 88172645463325252ULL;
    for (size_t i = 0; i < size && i < 8; i++)
        seed = (seed ^ data[i]) * 0x9E3779B97F4A7C15ULL;
    int rc2 = feed(data, size, seed | 1, &cut, &c2);
    if (whole.n != cut.n || whole.h != cut.h)
        fuzz_fail("whole: %zu frames, in pieces: %zu (or they differ)", whole.n, cut.n);
    if (rc1 != rc2 || c1 != c2)
        fuzz_fail("whole ends %d/%d, in pieces %d/%d", rc1, c1, rc2, c2);
    if (size >= 24) {
        char accept[RTMP_WS_ACCEPT_LEN + 1];
        memset(accept, 0, sizeof accept);
        int rc = rtmp_ws_accept((const char *)data, 24, accept);
        if (rc != 0 && rc != RTMP_ERR_INVAL)
            fuzz_fail("accept: code %d", rc);
        if (rc == 0 && (strlen(accept) != RTMP_WS_ACCEPT_LEN || accept[27] != '='))
            fuzz_fail("accept value '%s'", accept);
    }
    return 0;
}
