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
#define RTMP_HS_FLAG_PLAIN 0x1  /* client: send a plain C1, no digest;
                                   server: never answer with a digest */

typedef struct rtmp_handshake rtmp_handshake;

rtmp_handshake *rtmp_handshake_new(int role, unsigned flags);
void rtmp_handshake_free(rtmp_handshake *hs);

/* Client: append C0C1 to *out.  Server: no-op.  0 or negative error. */
int rtmp_handshake_start(rtmp_handshake *hs, rtmp_buf **out);

/* Consume handshake bytes from in, appending any reply to *out.  Never
 * consumes past the end of the handshake: bytes after it (the first
 * chunks) are left for the chunk reader.  Returns bytes consumed, or
 * RTMP_ERR_HS_VERSION for a C0/S0 other than 3 (6 is RTMPE, refused). */
ssize_t rtmp_handshake_feed(rtmp_handshake *hs, const uint8_t *in, size_t len, rtmp_buf **out);

/* 1 when complete (and *out holds the last reply), else 0. */
int rtmp_handshake_done(const rtmp_handshake *hs);

/* RTMP_HS_* of the peer's first packet. */
int rtmp_handshake_peer_kind(const rtmp_handshake *hs);

/* Client role: 1 when S2 carried a valid digest response to our C1
 * (or 0 when it did not or the server was plain).  For logging only: real
 * servers send S2s that do not verify and clients go on regardless. */
int rtmp_handshake_peer_verified(const rtmp_handshake *hs);

#endif
