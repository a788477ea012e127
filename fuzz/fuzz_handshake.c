/*
 * fuzz_handshake.c: the handshake state machine, both roles.
 *
 * Input: byte 0 picks the role (bit 0: client) and the flags (bit 1
 * RTMP_HS_FLAG_PLAIN, bit 2 RTMP_HS_FLAG_LAYOUT2), bytes 1-4 seed the
 * split sizes, the rest is what the peer sends.  Fed once whole and once
 * in pieces, two handshakes with the same filler seed
 * (rtmp_handshake_seed) must agree on bytes consumed, result,
 * completion, the peer's kind and verification, and every byte they
 * answer.  Given a
 * whole C0C1C2 (S0S1S2) with version 3, the handshake completes having
 * consumed exactly 3073 bytes, whatever C1/C2 hold.
 */
#include "fuzz.h"
#include "../core/error.h"
#include "../core/handshake.h"

#include <string.h>

typedef struct run {
    rtmp_handshake *hs;
    rtmp_buf *out;
    ssize_t consumed;
    int rc;
} run;

static void start(run *r, int role, unsigned flags, uint64_t seed)
{
    r->hs = rtmp_handshake_new(role, flags);
    if (!r->hs)
        fuzz_fail("rtmp_handshake_new: out of memory");
    rtmp_handshake_seed(r->hs, seed);
    r->out = NULL;
    r->consumed = 0;
    r->rc = 0;
    int rc = rtmp_handshake_start(r->hs, &r->out);
    if (rc < 0)
        fuzz_fail("rtmp_handshake_start: %s", rtmp_errname(rc));
    if (rtmp_handshake_start(r->hs, &r->out) != (role == RTMP_ROLE_CLIENT ? RTMP_ERR_INVAL : 0))
        fuzz_fail("a second rtmp_handshake_start did not fail");
}

static void feed(run *r, const uint8_t *p, size_t n)
{
    if (r->rc < 0)
        return;
    ssize_t got = rtmp_handshake_feed(r->hs, p, n, &r->out);
    if (got < 0) {
        r->rc = (int)got;
        if (rtmp_handshake_feed(r->hs, p, n, &r->out) != got)
            fuzz_fail("handshake error not sticky");
        return;
    }
    if ((size_t)got > n)
        fuzz_fail("consumed %zd of %zu", got, n);
    if ((size_t)got < n && !rtmp_handshake_done(r->hs))
        fuzz_fail("left %zu bytes before the end of the handshake", n - (size_t)got);
    r->consumed += got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int role = data[0] & 1 ? RTMP_ROLE_CLIENT : RTMP_ROLE_SERVER;
    unsigned flags = (data[0] >> 1) & 3;
    fuzz_rng g;
    fuzz_rng_seed(&g, (uint64_t)data[1] | (uint64_t)data[2] << 8 | (uint64_t)data[3] << 16 |
                      (uint64_t)data[4] << 24);
    const uint8_t *in = data + 5;
    size_t len = size - 5;

    run whole, split;
    start(&whole, role, flags, g.s);
    start(&split, role, flags, g.s);
    feed(&whole, in, len);
    for (size_t off = 0; off < len && split.rc == 0;) {
        uint32_t x = fuzz_rng_next(&g);
        size_t piece = (x & 3) == 0 ? (x >> 2) % 1600 + 1 : (x >> 2) % 16 + 1;
        if (piece > len - off)
            piece = len - off;
        ssize_t before = split.consumed;
        feed(&split, in + off, piece);
        if (split.rc == 0 && rtmp_handshake_done(split.hs) && (size_t)(split.consumed - before) < piece)
            break;  /* the rest belongs to the chunk stream */
        off += piece;
    }

    if (whole.rc != split.rc)
        fuzz_fail("whole: %s, split: %s", rtmp_errname(whole.rc), rtmp_errname(split.rc));
    if (whole.rc == 0 && whole.consumed != split.consumed)
        fuzz_fail("consumed whole %zd, split %zd", whole.consumed, split.consumed);
    if (rtmp_handshake_done(whole.hs) != rtmp_handshake_done(split.hs) ||
        rtmp_handshake_peer_kind(whole.hs) != rtmp_handshake_peer_kind(split.hs) ||
        rtmp_handshake_peer_verified(whole.hs) != rtmp_handshake_peer_verified(split.hs))
        fuzz_fail("state differs: done %d/%d kind %d/%d verified %d/%d", rtmp_handshake_done(whole.hs),
                  rtmp_handshake_done(split.hs), rtmp_handshake_peer_kind(whole.hs),
                  rtmp_handshake_peer_kind(split.hs), rtmp_handshake_peer_verified(whole.hs),
                  rtmp_handshake_peer_verified(split.hs));
    size_t lw = whole.out ? whole.out->len : 0, ls = split.out ? split.out->len : 0;
    if (lw != ls || (lw && memcmp(whole.out->data, split.out->data, lw) != 0))
        fuzz_fail("answers differ (%zu and %zu bytes)", lw, ls);
    if (len >= 1 + 2 * RTMP_HANDSHAKE_SIZE && in[0] == 3) {
        if (!rtmp_handshake_done(whole.hs) || whole.consumed != 1 + 2 * RTMP_HANDSHAKE_SIZE)
            fuzz_fail("a whole version 3 handshake: done %d, consumed %zd", rtmp_handshake_done(whole.hs),
                      whole.consumed);
        /* S0S1S2, or C0C1 and C2 */
        if (lw != 1 + 2 * RTMP_HANDSHAKE_SIZE)
            fuzz_fail("a whole handshake wrote %zu bytes", lw);
        if (rtmp_handshake_feed(whole.hs, in, len, &whole.out) != 0)
            fuzz_fail("feed after the end consumed bytes");
    }
    rtmp_handshake_free(whole.hs);
    rtmp_handshake_free(split.hs);
    rtmp_buf_unref(whole.out);
    rtmp_buf_unref(split.out);
    return 0;
}
