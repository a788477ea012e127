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
#define KEPT 1024 /* frames kept per feeding for the comparison (a 4 KiB input has fewer) */

/* The frames one feeding handed out: the first KEPT of them whole. */
typedef struct frame_copy {
    unsigned opcode;
    int      fin;
    uint64_t len;
    uint8_t  payload[125];
} frame_copy;

typedef struct flog {
    frame_copy f[KEPT];
    size_t     n;
} flog;

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
    } else if (f->len > MAX_FRAME || f->payload) {
        fuzz_fail("data frame of %llu bytes", (unsigned long long)f->len);
    }
    uint8_t head[10];
    if (rtmp_ws_frame_header(head, op, f->len) != rtmp_ws_frame_header_len(f->len))
        fuzz_fail("frame header length for %llu", (unsigned long long)f->len);
    if (l->n < KEPT) {
        frame_copy *c = &l->f[l->n];
        memset(c, 0, sizeof *c);
        c->opcode = op;
        c->fin = f->fin;
        c->len = f->len;
        if (f->payload)
            memcpy(c->payload, f->payload, (size_t)f->len);
    }
    l->n++;
    return 0;
}

/* Feed whole (no g) or in pieces of 1 to 64 bytes drawn from g.
 * Returns the final code and sets *close_code. */
static int feed(const uint8_t *data, size_t size, fuzz_rng *g, flog *l, int *close_code)
{
    rtmp_ws_reader r;
    rtmp_ws_reader_init(&r, MAX_FRAME);
    size_t off = 0;
    int rc = 0;
    while (off < size) {
        size_t piece = size - off, cut = g ? 1 + fuzz_rng_next(g) % 64 : piece;
        if (piece > cut)
            piece = cut;
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

static flog whole, cut; /* large: not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    whole.n = cut.n = 0;
    int c1, c2;
    int rc1 = feed(data, size, NULL, &whole, &c1);
    uint64_t seed = 0; /* the cut points: drawn from the input's first bytes */
    memcpy(&seed, data, size < sizeof seed ? size : sizeof seed);
    fuzz_rng g;
    fuzz_rng_seed(&g, seed);
    int rc2 = feed(data, size, &g, &cut, &c2);
    if (whole.n != cut.n)
        fuzz_fail("whole: %zu frames, in pieces: %zu", whole.n, cut.n);
    for (size_t i = 0; i < whole.n && i < KEPT; i++)
        if (memcmp(&whole.f[i], &cut.f[i], sizeof whole.f[i]) != 0)
            fuzz_fail("frame %zu differs whole and in pieces", i);
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
