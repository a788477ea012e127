/*
 * handshake.c: the RTMP handshake, plain and with the Flash Player 9
 * HMAC-SHA256 digest, both roles.  No I/O: bytes in, reply bytes out.
 *
 * Packet anatomy (1536 bytes each, C1/S1 and C2/S2):
 *   C1/S1: time(4) version(4) random(1528).  A digest packet hides a
 *     32-byte HMAC-SHA256 somewhere in the random part; where depends on
 *     four bytes of the packet itself (two layouts, see digest_offset).
 *     The HMAC covers the 1504 other bytes, keyed with the sender's short
 *     key ("Genuine Adobe Flash Player 001" or "... Media Server 001").
 *   C2/S2: random(1504) then HMAC-SHA256(k, those 1504 bytes) where
 *     k = HMAC-SHA256(responder's long key, the peer's 32-byte digest);
 *     or, when the peer was plain, an echo of the peer's C1/S1.
 */
#include "handshake.h"
#include "error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define HS_SIZE     RTMP_HANDSHAKE_SIZE
#define DIGEST_LEN  32
#define RTMP_VERSION_BYTE 3

/* The long keys: the short key (the ASCII text) followed by the same
 * 32-byte constant.  Short keys sign C1/S1; long keys derive the C2/S2 key. */
#define KEY_TAIL                                                         \
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0,   \
    0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80,   \
    0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE

static const uint8_t player_key[] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ',
    'F', 'l', 'a', 's', 'h', ' ', 'P', 'l', 'a', 'y', 'e', 'r', ' ',
    '0', '0', '1', KEY_TAIL
};
#define PLAYER_SHORT_KEY_LEN 30

static const uint8_t server_key[] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ',
    'F', 'l', 'a', 's', 'h', ' ', 'M', 'e', 'd', 'i', 'a', ' ',
    'S', 'e', 'r', 'v', 'e', 'r', ' ', '0', '0', '1', KEY_TAIL
};
#define SERVER_SHORT_KEY_LEN 36

/* Versions we announce in C1/S1 bytes 4..7: Flash Player 9.0.124.2 (what
 * ffmpeg and librtmp send) and the FMS-like value nginx-rtmp uses.  Peers
 * such as ffmpeg look at byte 4 (>= 3) to decide whether to check our
 * digest, so a digest packet must carry a nonzero version. */
static const uint8_t client_version[4] = { 9, 0, 124, 2 };
static const uint8_t server_version[4] = { 0x0D, 0x0E, 0x0A, 0x0D };

enum {
    ST_START,      /* client: rtmp_handshake_start not called yet */
    ST_VERSION,    /* waiting for C0/S0 */
    ST_FIRST,      /* gathering C1/S1 */
    ST_SECOND,     /* gathering C2/S2 */
    ST_DONE,
    ST_ERROR,
};

struct rtmp_handshake {
    int      role;
    unsigned flags;
    int      state;
    int      error;          /* the sticky error in ST_ERROR */
    int      peer_kind;      /* RTMP_HS_* of the peer's C1/S1 */
    int      verified;       /* the peer's C2/S2 answered our C1/S1 */
    int      own_kind;       /* RTMP_HS_* of our C1/S1 */
    size_t   have;           /* bytes of in[] gathered so far */
    uint64_t rng;            /* splitmix64 state for the filler bytes */
    uint8_t  own[HS_SIZE];   /* our C1/S1 */
    uint8_t  peer[HS_SIZE];  /* the peer's C1/S1 */
    uint8_t  in[HS_SIZE];    /* the packet being gathered */
};

/* Filler bytes need not be cryptographic: a splitmix64 stream seeded
 * once per handshake from RAND_bytes (or the clock when that fails), or
 * with a fixed seed (rtmp_handshake_seed). */
static uint64_t next_random(rtmp_handshake *hs)
{
    uint64_t z = (hs->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_random(rtmp_handshake *hs, uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t r = next_random(hs);
        memcpy(p, &r, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t r = next_random(hs);
        memcpy(p, &r, n);
    }
}

/* Where the digest sits in layout 1 (offset from bytes 8..11, digest in
 * 12..771) or layout 2 (offset from bytes 772..775, digest in 776..1535). */
static size_t digest_offset(const uint8_t *pkt, int layout)
{
    size_t base = layout == RTMP_HS_DIGEST_1 ? 8 : 772;
    unsigned sum = (unsigned)pkt[base] + pkt[base + 1] + pkt[base + 2] + pkt[base + 3];
    return sum % 728 + base + 4;
}

/* HMAC-SHA256 of pkt[0 .. HS_SIZE) without the 32 bytes at skip. */
static int hmac_skipping(const uint8_t *key, size_t keylen, const uint8_t *pkt,
                         size_t skip, uint8_t out[DIGEST_LEN])
{
    uint8_t rest[HS_SIZE - DIGEST_LEN];
    unsigned outlen = 0;
    assert(skip <= HS_SIZE - DIGEST_LEN);
    memcpy(rest, pkt, skip);
    memcpy(rest + skip, pkt + skip + DIGEST_LEN, HS_SIZE - DIGEST_LEN - skip);
    if (!HMAC(EVP_sha256(), key, (int)keylen, rest, sizeof rest, out, &outlen)
        || outlen != DIGEST_LEN)
        return RTMP_ERR_NOMEM;
    return 0;
}

/* 1 when pkt carries a valid digest in the given layout, 0 when not, or a
 * negative error when HMAC itself failed. */
static int has_digest(const uint8_t *pkt, int layout, const uint8_t *key, size_t keylen)
{
    uint8_t d[DIGEST_LEN];
    size_t off = digest_offset(pkt, layout);
    int rc = hmac_skipping(key, keylen, pkt, off, d);
    if (rc < 0)
        return rc;
    return memcmp(d, pkt + off, DIGEST_LEN) == 0;
}

/* RTMP_HS_PLAIN or RTMP_HS_DIGEST_* for a peer's C1/S1, signed with key. */
static int classify(const uint8_t *pkt, const uint8_t *key, size_t keylen)
{
    static const uint8_t zero[4];
    if (memcmp(pkt + 4, zero, 4) == 0)
        return RTMP_HS_PLAIN;
    for (int layout = RTMP_HS_DIGEST_1; layout <= RTMP_HS_DIGEST_2; layout++) {
        int rc = has_digest(pkt, layout, key, keylen);
        if (rc != 0)
            return rc < 0 ? rc : layout;
    }
    return RTMP_HS_PLAIN;
}

/* Build our C1/S1 in own[]: plain (zero version) or signed in layout. */
static int make_first(rtmp_handshake *hs, int kind)
{
    uint8_t *p = hs->own;
    fill_random(hs, p, HS_SIZE);
    memset(p, 0, 4);                                  /* time: 0 */
    hs->own_kind = kind;
    if (kind == RTMP_HS_PLAIN) {
        memset(p + 4, 0, 4);
        return 0;
    }
    int server = hs->role == RTMP_ROLE_SERVER;
    memcpy(p + 4, server ? server_version : client_version, 4);
    size_t off = digest_offset(p, kind);
    return hmac_skipping(server ? server_key : player_key,
                         server ? SERVER_SHORT_KEY_LEN : PLAYER_SHORT_KEY_LEN,
                         p, off, p + off);
}

/* The second packet's closing HMAC: key derived from the long key of the
 * responder and the 32-byte digest it answers, over pkt[0 .. 1504). */
static int response_digest(const uint8_t *long_key, size_t keylen,
                           const uint8_t *answered, const uint8_t *pkt,
                           uint8_t out[DIGEST_LEN])
{
    uint8_t k[DIGEST_LEN];
    unsigned n1 = 0, n2 = 0;
    if (!HMAC(EVP_sha256(), long_key, (int)keylen, answered, DIGEST_LEN, k, &n1)
        || !HMAC(EVP_sha256(), k, DIGEST_LEN, pkt, HS_SIZE - DIGEST_LEN, out, &n2)
        || n1 != DIGEST_LEN || n2 != DIGEST_LEN)
        return RTMP_ERR_NOMEM;
    return 0;
}

/* Append our C2/S2 to *out: a digest response to the peer's C1/S1 when
 * respond is set (peer_kind is a digest layout), else an echo of it. */
static int append_second(rtmp_handshake *hs, int respond, rtmp_buf **out)
{
    uint8_t *w = rtmp_buf_grow(out, HS_SIZE);
    if (!w)
        return RTMP_ERR_NOMEM;
    if (respond) {
        int server = hs->role == RTMP_ROLE_SERVER;
        const uint8_t *peer_digest = hs->peer + digest_offset(hs->peer, hs->peer_kind);
        fill_random(hs, w, HS_SIZE - DIGEST_LEN);
        int rc = response_digest(server ? server_key : player_key,
                                 server ? sizeof server_key : sizeof player_key,
                                 peer_digest, w, w + HS_SIZE - DIGEST_LEN);
        if (rc < 0)
            return rc;
    } else {
        memcpy(w, hs->peer, HS_SIZE);
    }
    (*out)->len += HS_SIZE;
    return 0;
}

/* Does the peer's C2/S2 (in[]) answer our C1/S1? */
static int check_second(rtmp_handshake *hs)
{
    if (hs->own_kind == RTMP_HS_PLAIN)
        return memcmp(hs->in + 8, hs->own + 8, HS_SIZE - 8) == 0;
    /* The peer derives its key from its own long key: a server answering
     * our C1 uses the Media Server key, a client answering our S1 the
     * Player key. */
    int server = hs->role == RTMP_ROLE_SERVER;
    uint8_t d[DIGEST_LEN];
    int rc = response_digest(server ? player_key : server_key,
                             server ? sizeof player_key : sizeof server_key,
                             hs->own + digest_offset(hs->own, hs->own_kind), hs->in, d);
    if (rc < 0)
        return rc;
    return memcmp(d, hs->in + HS_SIZE - DIGEST_LEN, DIGEST_LEN) == 0;
}

static void seed(rtmp_handshake *hs)
{
    uint64_t s = 0;
    if (RAND_bytes((unsigned char *)&s, sizeof s) != 1)
        s = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)hs;
    hs->rng = s;
}

size_t rtmp_handshake_size(void)
{
    return sizeof(rtmp_handshake);
}

rtmp_handshake *rtmp_handshake_new(int role, unsigned flags)
{
    if (role != RTMP_ROLE_SERVER && role != RTMP_ROLE_CLIENT)
        return NULL;
    rtmp_handshake *hs = calloc(1, sizeof *hs);
    if (!hs)
        return NULL;
    hs->role = role;
    hs->flags = flags;
    hs->state = role == RTMP_ROLE_CLIENT ? ST_START : ST_VERSION;
    hs->peer_kind = RTMP_HS_UNKNOWN;
    hs->own_kind = RTMP_HS_UNKNOWN;
    seed(hs);
    return hs;
}

void rtmp_handshake_seed(rtmp_handshake *hs, uint64_t seed)
{
    hs->rng = seed;
}

void rtmp_handshake_free(rtmp_handshake *hs)
{
    free(hs);
}

int rtmp_handshake_start(rtmp_handshake *hs, rtmp_buf **out)
{
    if (hs->role != RTMP_ROLE_CLIENT)
        return 0;
    if (hs->state != ST_START)
        return RTMP_ERR_INVAL;
    int kind = (hs->flags & RTMP_HS_FLAG_PLAIN) ? RTMP_HS_PLAIN
             : (hs->flags & RTMP_HS_FLAG_LAYOUT2) ? RTMP_HS_DIGEST_2 : RTMP_HS_DIGEST_1;
    int rc = make_first(hs, kind);
    if (rc < 0)
        return rc;
    uint8_t *w = rtmp_buf_grow(out, 1 + HS_SIZE);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = RTMP_VERSION_BYTE;
    memcpy(w + 1, hs->own, HS_SIZE);
    (*out)->len += 1 + HS_SIZE;
    hs->state = ST_VERSION;
    return 0;
}

/* Server: C1 is in peer[]; append S0 S1 S2. */
static int server_reply(rtmp_handshake *hs, rtmp_buf **out)
{
    int kind = classify(hs->peer, player_key, PLAYER_SHORT_KEY_LEN);
    if (kind < 0)
        return kind;
    hs->peer_kind = kind;
    int digest = kind != RTMP_HS_PLAIN && !(hs->flags & RTMP_HS_FLAG_PLAIN);
    int rc = make_first(hs, digest ? kind : RTMP_HS_PLAIN);
    if (rc < 0)
        return rc;
    /* Grow once for all three so a failure appends nothing. */
    if (!rtmp_buf_grow(out, 1 + 2 * HS_SIZE))
        return RTMP_ERR_NOMEM;
    (*out)->data[(*out)->len++] = RTMP_VERSION_BYTE;
    memcpy((*out)->data + (*out)->len, hs->own, HS_SIZE);
    (*out)->len += HS_SIZE;
    return append_second(hs, digest, out);
}

/* Client: S1 is in peer[], S2 in in[]; append C2. */
static int client_reply(rtmp_handshake *hs, rtmp_buf **out)
{
    int rc = check_second(hs);
    if (rc < 0)
        return rc;
    hs->verified = rc;
    int respond = hs->peer_kind != RTMP_HS_PLAIN && !(hs->flags & RTMP_HS_FLAG_PLAIN);
    return append_second(hs, respond, out);
}

/* Move up to HS_SIZE - have bytes into in[]; 1 when the packet is whole. */
static int gather(rtmp_handshake *hs, const uint8_t *in, size_t len, size_t *used)
{
    size_t n = HS_SIZE - hs->have;
    if (n > len)
        n = len;
    memcpy(hs->in + hs->have, in, n);
    hs->have += n;
    *used = n;
    return hs->have == HS_SIZE;
}

static ssize_t fail(rtmp_handshake *hs, int err)
{
    hs->state = ST_ERROR;
    hs->error = err;
    return err;
}

ssize_t rtmp_handshake_feed(rtmp_handshake *hs, const uint8_t *in, size_t len, rtmp_buf **out)
{
    size_t off = 0;
    for (;;) {
        switch (hs->state) {
        case ST_START:
            return RTMP_ERR_INVAL;      /* a client must send C0C1 first */
        case ST_ERROR:
            return hs->error;
        case ST_DONE:
            return (ssize_t)off;
        case ST_VERSION:
            if (off == len)
                return (ssize_t)off;
            if (in[off] != RTMP_VERSION_BYTE)
                return fail(hs, RTMP_ERR_HS_VERSION);
            off++;
            hs->state = ST_FIRST;
            hs->have = 0;
            break;
        case ST_FIRST: {
            size_t used;
            int whole = gather(hs, in + off, len - off, &used);
            off += used;
            if (!whole)
                return (ssize_t)off;
            memcpy(hs->peer, hs->in, HS_SIZE);
            hs->have = 0;
            if (hs->role == RTMP_ROLE_SERVER) {
                int rc = server_reply(hs, out);
                if (rc < 0)
                    return fail(hs, rc);
            } else {
                int kind = classify(hs->peer, server_key, SERVER_SHORT_KEY_LEN);
                if (kind < 0)
                    return fail(hs, kind);
                hs->peer_kind = kind;
            }
            hs->state = ST_SECOND;
            break;
        }
        case ST_SECOND: {
            size_t used;
            int whole = gather(hs, in + off, len - off, &used);
            off += used;
            if (!whole)
                return (ssize_t)off;
            if (hs->role == RTMP_ROLE_SERVER) {
                int rc = check_second(hs);
                if (rc < 0)
                    return fail(hs, rc);
                hs->verified = rc;
            } else {
                int rc = client_reply(hs, out);
                if (rc < 0)
                    return fail(hs, rc);
            }
            hs->state = ST_DONE;
            break;
        }
        }
    }
}

int rtmp_handshake_done(const rtmp_handshake *hs)
{
    return hs->state == ST_DONE;
}

int rtmp_handshake_peer_kind(const rtmp_handshake *hs)
{
    return hs->peer_kind;
}

int rtmp_handshake_peer_verified(const rtmp_handshake *hs)
{
    return hs->verified;
}
