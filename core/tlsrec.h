/*
 * tlsrec.h: TLS 1.3 application records sealed by luartmp, for the
 * output of a connection without kernel TLS.
 *
 * OpenSSL keeps the handshake, the keys' schedule up to the application
 * traffic secret, and all of the reading.  What it would cost per record
 * to write through SSL_write (its record layer, BIO and state machine:
 * about as much again as the cipher itself at the record sizes fan-out
 * writes) is left out: given the sending direction's traffic secret, a
 * record is the cipher's calls and nothing else (RFC 8446 5.2), sealed
 * straight from the output queue's shared buffers into the bytes a write
 * sends, as the kernel does with kTLS.
 *
 * Sans-I/O: the secret comes in (net.c takes it from OpenSSL's key log
 * callback), sealed records come out.  The caller owns the sequence: it
 * sets seq to the records already sent under these keys; a record sealed
 * is a record that must be sent, in order; a key update
 * (rtmp_tlsrec_next_key) follows the KeyUpdate record sealed under the
 * key before it.  AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 (the
 * suites TLS 1.3 defines with 12-byte nonces and 16-byte tags); any
 * other suite stays with OpenSSL's record layer.
 */
#ifndef RTMP_TLSREC_H
#define RTMP_TLSREC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <openssl/types.h>

#define RTMP_TLSREC_MAX_PLAIN 16384    /* plaintext per record (RFC 8446 5.1) */
#define RTMP_TLSREC_TAG 16
/* header + inner content type + tag */
#define RTMP_TLSREC_OVERHEAD (5 + 1 + RTMP_TLSREC_TAG)
#define RTMP_TLSREC_MAX_SECRET 64
#define RTMP_TLSREC_MEM 4              /* the cipher state's allocations noted */

typedef struct rtmp_tlsrec {
    EVP_CIPHER_CTX *ctx;           /* keyed; the nonce is set per record */
    const EVP_MD   *md;            /* the suite's hash (HKDF) */
    size_t          hlen;          /* its length: the secret's */
    size_t          keylen;
    uint8_t         secret[RTMP_TLSREC_MAX_SECRET]; /* the current traffic secret */
    uint8_t         iv[12];
    uint64_t        seq;           /* the next record's sequence number */
    unsigned        generation;    /* key updates so far */
    /* where OpenSSL put the cipher context's state (the EVP context, the
     * provider's), seen as it was allocated (rtmp_tlsrec_track_memory);
     * none when that was not in place */
    struct { const void *p; size_t len; } mem[RTMP_TLSREC_MEM];
} rtmp_tlsrec;

/* Have OpenSSL allocate through functions of ours that only pass the
 * calls on to malloc, realloc and free, and note where rtmp_tlsrec_init's
 * cipher context is allocated, so that rtmp_tlsrec_prefetch knows it.
 * OpenSSL takes them only before its first allocation in the process:
 * call this first thing in main().  1 when in place, else 0 (prefetching
 * then does nothing).  Not for a module that may be unloaded before
 * OpenSSL is (the functions must outlive every OpenSSL call). */
int rtmp_tlsrec_track_memory(void);

/* Ask the CPU for the memory of r's cipher state, for a record sealed
 * soon: a fan-out seals for one connection after another, and by a
 * connection's next record its state has left the caches (each prefetch
 * is a hint; nothing is read). */
void rtmp_tlsrec_prefetch(const rtmp_tlsrec *r);

/* Whether suite (its IANA name, "TLS_AES_128_GCM_SHA256") is one this
 * file seals. */
int rtmp_tlsrec_supported(const char *suite);

/* Key r for suite from a traffic secret (secret[0 .. len), the suite's
 * hash length), sequence 0.  0; RTMP_ERR_INVAL for a suite not supported,
 * a secret of the wrong length, or a cipher OpenSSL does not provide;
 * RTMP_ERR_NOMEM. */
int rtmp_tlsrec_init(rtmp_tlsrec *r, const char *suite, const uint8_t *secret, size_t len);

/* The next generation of keys (RFC 8446 7.2: the secret's "traffic upd"),
 * sequence 0: after the KeyUpdate record.  0 or RTMP_ERR_NOMEM. */
int rtmp_tlsrec_next_key(rtmp_tlsrec *r);

/* Seal one record of content type type (RTMP_TLS_APPLICATION_DATA,
 * _HANDSHAKE, _ALERT) whose plaintext is the len bytes at offset off of
 * what iov[0 .. cnt) holds end to end (len <= RTMP_TLSREC_MAX_PLAIN and
 * within it) into out, which has room for len + RTMP_TLSREC_OVERHEAD.
 * Returns the record's length (len + RTMP_TLSREC_OVERHEAD), or 0 when
 * len is over RTMP_TLSREC_MAX_PLAIN or past what iov holds, or the cipher
 * failed (nothing usable in out; the sequence did not move). */
size_t rtmp_tlsrec_seal(rtmp_tlsrec *r, uint8_t type, const struct iovec *iov, int cnt, size_t off, size_t len,
                        uint8_t *out);

/* HKDF-Expand-Label(secret, label, "", out_len) of RFC 8446 7.1 with
 * hash md.  0; -1 for a label over 32 bytes, out_len over the hash's
 * length, or a MAC that failed. */
int rtmp_tlsrec_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
                             uint8_t *out, size_t out_len);

/* The cipher context freed and the keys wiped; r may be initialised again. */
void rtmp_tlsrec_free(rtmp_tlsrec *r);

#endif
