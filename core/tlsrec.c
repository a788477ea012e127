/*
 * tlsrec.c: TLS 1.3 application records sealed by luartmp (tlsrec.h).
 */
#include "tlsrec.h"
#include "error.h"
#include "tlsinfo.h"
#include "warm.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

typedef struct suite_info {
    const char *name;
    const char *cipher;   /* OpenSSL's name of the AEAD */
    const char *md;
    size_t      keylen;
} suite_info;

static const suite_info SUITES[] = {
    { "TLS_AES_128_GCM_SHA256", "AES-128-GCM", "SHA256", 16 },
    { "TLS_AES_256_GCM_SHA384", "AES-256-GCM", "SHA384", 32 },
    { "TLS_CHACHA20_POLY1305_SHA256", "ChaCha20-Poly1305", "SHA256", 32 },
};

static const suite_info *suite_of(const char *name)
{
    for (size_t i = 0; name && i < sizeof SUITES / sizeof SUITES[0]; i++)
        if (!strcmp(SUITES[i].name, name))
            return &SUITES[i];
    return NULL;
}

int rtmp_tlsrec_supported(const char *suite)
{
    return suite_of(suite) != NULL;
}

int rtmp_tlsrec_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
                             uint8_t *out, size_t out_len)
{
    /* HkdfLabel: length (2), "tls13 " + label (1 + n), context "" (1);
     * then the counter byte of HKDF-Expand's first (and only) block */
    uint8_t info[2 + 1 + 6 + 32 + 1 + 1];
    size_t n = strlen(label), hlen = (size_t)EVP_MD_get_size(md);
    if (n > 32 || out_len > hlen)
        return -1;
    size_t i = 0;
    info[i++] = (uint8_t)(out_len >> 8);
    info[i++] = (uint8_t)out_len;
    info[i++] = (uint8_t)(6 + n);
    memcpy(info + i, "tls13 ", 6);
    i += 6;
    memcpy(info + i, label, n);
    i += n;
    info[i++] = 0;
    info[i++] = 1;
    uint8_t block[EVP_MAX_MD_SIZE];
    unsigned blen = 0;
    if (!HMAC(md, secret, (int)slen, info, i, block, &blen) || blen < out_len)
        return -1;
    memcpy(out, block, out_len);
    OPENSSL_cleanse(block, sizeof block);
    return 0;
}

/* Key and IV from r->secret; the cipher context keyed. */
static int rekey(rtmp_tlsrec *r)
{
    uint8_t key[32];
    if (rtmp_tlsrec_expand_label(r->md, r->secret, r->hlen, "key", key, r->keylen) < 0
        || rtmp_tlsrec_expand_label(r->md, r->secret, r->hlen, "iv", r->iv, sizeof r->iv) < 0
        || EVP_EncryptInit_ex(r->ctx, NULL, NULL, key, NULL) != 1) {
        OPENSSL_cleanse(key, sizeof key);
        return RTMP_ERR_NOMEM;
    }
    OPENSSL_cleanse(key, sizeof key);
    r->seq = 0;
    return 0;
}

/* ---- the cipher state's memory ----
 *
 * A TLS fan-out seals a record for each player in turn, every player
 * with its own keys: by the time a connection's next record is sealed
 * (about 13 ms later at 100 players and 75 records a second each), its
 * cipher state (an EVP context of about 200 bytes, the provider's of
 * about 1 KB: key schedule, GHASH table) is out of the caches, and
 * waiting for it cost about 0.5 us of the 2.5 a 4 KB record took here
 * (docs/TLS.md).  The provider's part is reached only through OpenSSL's
 * private structures; its allocation is where it can be seen. */

static _Thread_local rtmp_tlsrec *tracking; /* the context being made */

static void *track_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n);
    for (int i = 0; tracking && p && n > 0 && i < RTMP_TLSREC_MEM; i++)
        if (!tracking->mem[i].p) {
            tracking->mem[i].p = p;
            tracking->mem[i].len = n < 4096 ? n : 4096;
            break;
        }
    (void)file;
    (void)line;
    return p;
}

static void *track_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n == 0) { /* (CRYPTO_realloc's own rule) */
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static void track_free(void *p, const char *file, int line)
{
    for (int i = 0; tracking && p && i < RTMP_TLSREC_MEM; i++)
        if (tracking->mem[i].p == p) /* (made and freed while the context was) */
            tracking->mem[i].p = NULL, tracking->mem[i].len = 0;
    (void)file;
    (void)line;
    free(p);
}

int rtmp_tlsrec_track_memory(void)
{
    return CRYPTO_set_mem_functions(track_malloc, track_realloc, track_free);
}

void rtmp_tlsrec_prefetch(const rtmp_tlsrec *r)
{
    for (int i = 0; i < RTMP_TLSREC_MEM; i++)
        if (r->mem[i].p)
            rtmp_prefetch_range(r->mem[i].p, r->mem[i].len);
}

int rtmp_tlsrec_init(rtmp_tlsrec *r, const char *suite, const uint8_t *secret, size_t len)
{
    memset(r, 0, sizeof *r);
    const suite_info *s = suite_of(suite);
    if (!s)
        return RTMP_ERR_INVAL;
    r->md = EVP_get_digestbyname(s->md);
    if (!r->md || (size_t)EVP_MD_get_size(r->md) != len || len > sizeof r->secret)
        return RTMP_ERR_INVAL;
    r->hlen = len;
    r->keylen = s->keylen;
    memcpy(r->secret, secret, len);
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, s->cipher, NULL);
    if (!c) {
        rtmp_tlsrec_free(r);
        return RTMP_ERR_INVAL; /* not in this OpenSSL's providers */
    }
    tracking = r; /* (mem[] is zeroed above) */
    r->ctx = EVP_CIPHER_CTX_new();
    int ok = r->ctx && EVP_EncryptInit_ex(r->ctx, c, NULL, NULL, NULL) == 1;
    tracking = NULL;
    EVP_CIPHER_free(c); /* the context holds its own reference */
    if (!ok || rekey(r) < 0) {
        rtmp_tlsrec_free(r);
        return RTMP_ERR_NOMEM;
    }
    return 0;
}

int rtmp_tlsrec_next_key(rtmp_tlsrec *r)
{
    uint8_t next[RTMP_TLSREC_MAX_SECRET];
    if (rtmp_tlsrec_expand_label(r->md, r->secret, r->hlen, "traffic upd", next, r->hlen) < 0)
        return RTMP_ERR_NOMEM;
    memcpy(r->secret, next, r->hlen);
    OPENSSL_cleanse(next, sizeof next);
    r->generation++;
    return rekey(r);
}

size_t rtmp_tlsrec_seal(rtmp_tlsrec *r, uint8_t type, const struct iovec *iov, int cnt, size_t off, size_t len,
                        uint8_t *out)
{
    if (len > RTMP_TLSREC_MAX_PLAIN)
        return 0;
    size_t rlen = len + 1 + RTMP_TLSREC_TAG; /* TLSInnerPlaintext's type, the tag */
    /* the record header: opaque_type application_data, legacy version 3.3 */
    out[0] = RTMP_TLS_APPLICATION_DATA;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(rlen >> 8);
    out[4] = (uint8_t)rlen;
    /* the nonce: the IV with the sequence number XORed into its end */
    uint8_t nonce[12];
    memcpy(nonce, r->iv, sizeof nonce);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(r->seq >> (8 * i));
    int n;
    if (EVP_EncryptInit_ex(r->ctx, NULL, NULL, NULL, nonce) != 1
        || EVP_EncryptUpdate(r->ctx, NULL, &n, out, 5) != 1) /* the header is the additional data */
        return 0;
    uint8_t *p = out + 5;
    size_t left = len;
    for (int i = 0; i < cnt && left > 0; i++) {
        size_t have = iov[i].iov_len;
        if (off >= have) {
            off -= have;
            continue;
        }
        size_t take = have - off < left ? have - off : left;
        if (EVP_EncryptUpdate(r->ctx, p, &n, (const uint8_t *)iov[i].iov_base + off, (int)take) != 1)
            return 0;
        p += n;
        left -= take;
        off = 0;
    }
    if (left > 0 || EVP_EncryptUpdate(r->ctx, p, &n, &type, 1) != 1)
        return 0;
    p += n;
    if (EVP_EncryptFinal_ex(r->ctx, p, &n) != 1)
        return 0;
    p += n;
    if (p != out + 5 + len + 1 /* (stream ciphers: every byte out as it went in) */
        || EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_GET_TAG, RTMP_TLSREC_TAG, p) != 1)
        return 0;
    r->seq++;
    return 5 + rlen;
}

void rtmp_tlsrec_free(rtmp_tlsrec *r)
{
    EVP_CIPHER_CTX_free(r->ctx);
    OPENSSL_cleanse(r, sizeof *r);
}
