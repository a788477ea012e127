/*
 * handshake.h: the RTMP handshake as a state machine, both roles, sans I/O.
 *
 * Server: reads C0C1, answers S0S1S2 in one piece, reads C2.  A C1 that
 * carries a valid HMAC-SHA256 digest (either layout) gets a digest S1 and
 * an S2 keyed from the client's digest; otherwise S1 is plain and S2
 * echoes C1.  Client: sends C0C1 (with a digest unless asked for plain),
 * reads S0S1S2, answers C2 (digest-keyed when S1 carries a valid digest,
 * else an echo of S1).
 */
#ifndef RTMP_HANDSHAKE_H
#define RTMP_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define RTMP_HANDSHAKE_SIZE 1536

enum { RTMP_ROLE_SERVER = 0, RTMP_ROLE_CLIENT = 1 };

/* What the peer's C1/S1 turned out to be. */
enum {
    RTMP_HS_UNKNOWN = 0,   /* not seen yet */
    RTMP_HS_PLAIN,         /* no valid digest */
    RTMP_HS_DIGEST_1,      /* digest in the first layout (offset from bytes 8..11) */
    RTMP_HS_DIGEST_2,      /* digest in the second layout (offset from bytes 772..775) */
};

/* Flags for rtmp_handshake_new. */
#define RTMP_HS_FLAG_PLAIN   0x1  /* client: send a plain C1, no digest, and
                                     echo S1 as C2 whatever it holds;
                                     server: never answer with a digest */
#define RTMP_HS_FLAG_LAYOUT2 0x2  /* client: put the C1 digest in the second
                                     layout (the first is the default) */

typedef struct rtmp_handshake rtmp_handshake;

/* New handshake for role (RTMP_ROLE_*) with RTMP_HS_FLAG_* flags.  NULL
 * for an unknown role or when out of memory. */
rtmp_handshake *rtmp_handshake_new(int role, unsigned flags);

/* Bytes one handshake state holds (for accounting: three 1536-byte
 * packets and a few fields). */
size_t rtmp_handshake_size(void);

/* Seed the generator of hs's filler bytes (the random part of C1/S1 and
 * of a digest C2/S2) with seed instead of RAND_bytes, so that the bytes hs
 * sends are a pure function of seed and of the bytes it receives (C1/S1's
 * time field is always 0).  For deterministic replay and tests; call it
 * before rtmp_handshake_start or the first rtmp_handshake_feed. */
void rtmp_handshake_seed(rtmp_handshake *hs, uint64_t seed);

/* Free hs; NULL is fine. */
void rtmp_handshake_free(rtmp_handshake *hs);

/* Client: append C0C1 to *out (*out may be NULL: a buffer is created).
 * Server: no-op.  0, RTMP_ERR_INVAL when called twice, RTMP_ERR_NOMEM. */
int rtmp_handshake_start(rtmp_handshake *hs, rtmp_buf **out);

/* Consume handshake bytes from in, appending any reply to *out (the
 * server's S0S1S2 once C1 is whole, the client's C2 once S2 is whole).
 * Any split of the input works.  Never consumes past the end of the
 * handshake: bytes after it (the first chunks) are left for the chunk
 * reader, and after the end every call returns 0.  Returns bytes
 * consumed, or RTMP_ERR_HS_VERSION for a C0/S0 other than 3 (6 is RTMPE,
 * refused; an HTTP request starts with 'G'), RTMP_ERR_INVAL for a client
 * not started, RTMP_ERR_NOMEM.  Errors are sticky: later calls return
 * the same code. */
ssize_t rtmp_handshake_feed(rtmp_handshake *hs, const uint8_t *in, size_t len, rtmp_buf **out);

/* 1 when complete (and *out holds the last reply), else 0. */
int rtmp_handshake_done(const rtmp_handshake *hs);

/* RTMP_HS_* of the peer's first packet. */
int rtmp_handshake_peer_kind(const rtmp_handshake *hs);

/* 1 when the peer's second packet answered our first one: when ours
 * carried a digest (client C1, server S1 to a digest client), it must end
 * with the matching digest response; when ours was plain, it must echo
 * our random bytes (8 .. 1535).  So a client whose digest C1 met a plain
 * server that echoed it gets 0.  For logging only: real peers send S2s
 * and C2s that do not verify and their partners go on regardless. */
int rtmp_handshake_peer_verified(const rtmp_handshake *hs);

#endif
