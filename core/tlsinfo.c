/*
 * tlsinfo.c: TLS records and the first hello of a captured direction.
 */
#include "tlsinfo.h"
#include "error.h"

#include <stddef.h>
#include <string.h>

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static size_t be24(const uint8_t *p) { return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2]; }

/* ---- record headers ---- */

/* Whether the first n (< 5 allowed) bytes of a record header can start
 * a plausible one: 1 yes (and all five given: the whole header is), 0 no. */
static int header_prefix(const uint8_t *p, size_t n)
{
    if (n >= 1 && (p[0] < RTMP_TLS_CHANGE_CIPHER_SPEC || p[0] > RTMP_TLS_HEARTBEAT))
        return 0;
    if (n >= 2 && p[1] != 3)
        return 0;
    if (n >= 3 && p[2] > 4)
        return 0;
    if (n >= 5) {
        size_t rlen = be16(p + 3);
        if (rlen > RTMP_TLS_MAX_RECORD || (rlen == 0 && p[0] != RTMP_TLS_APPLICATION_DATA))
            return 0;
    }
    return 1;
}

int rtmp_tls_record_header(const uint8_t *p, size_t len)
{
    if (len < RTMP_TLS_RECORD_HEADER)
        return -1;
    return header_prefix(p, RTMP_TLS_RECORD_HEADER);
}

size_t rtmp_tls_walk(const uint8_t *p, size_t len, rtmp_tls_walk_stats *st)
{
    memset(st, 0, sizeof *st);
    size_t off = 0;
    while (off < len) {
        size_t left = len - off;
        if (!header_prefix(p + off, left < RTMP_TLS_RECORD_HEADER ? left : RTMP_TLS_RECORD_HEADER))
            break;
        if (left < RTMP_TLS_RECORD_HEADER || left - RTMP_TLS_RECORD_HEADER < be16(p + off + 3)) {
            st->partial = 1;
            return len;
        }
        st->records++;
        st->by_type[p[off] - RTMP_TLS_CHANGE_CIPHER_SPEC]++;
        off += RTMP_TLS_RECORD_HEADER + be16(p + off + 3);
        st->bytes = off;
    }
    return off;
}

/* ---- reading a hello ---- */

/* A bounded cursor over one length-prefixed field: every read checks
 * that the bytes are there. */
typedef struct cur {
    const uint8_t *p;
    size_t         n, off;
} cur;

static size_t left_of(const cur *c) { return c->n - c->off; }

static int take8(cur *c, uint8_t *v)
{
    if (left_of(c) < 1)
        return RTMP_ERR_TLS_MALFORMED;
    *v = c->p[c->off++];
    return 0;
}

static int take16(cur *c, uint16_t *v)
{
    if (left_of(c) < 2)
        return RTMP_ERR_TLS_MALFORMED;
    *v = be16(c->p + c->off);
    c->off += 2;
    return 0;
}

/* n bytes as a cursor of their own (sub), the outer one moved past them. */
static int take_sub(cur *c, size_t n, cur *sub)
{
    if (left_of(c) < n)
        return RTMP_ERR_TLS_MALFORMED;
    sub->p = c->p + c->off;
    sub->n = n;
    sub->off = 0;
    c->off += n;
    return 0;
}

/* A field with a 1- or 2-byte length prefix, as a cursor of its own. */
static int take_vec8(cur *c, cur *sub)
{
    uint8_t n;
    int rc = take8(c, &n);
    return rc < 0 ? rc : take_sub(c, n, sub);
}

static int take_vec16(cur *c, cur *sub)
{
    uint16_t n;
    int rc = take16(c, &n);
    return rc < 0 ? rc : take_sub(c, n, sub);
}

/* A 16-bit-length field that must take all that is left of c. */
static int take_whole16(cur *c, cur *sub)
{
    if (take_vec16(c, sub) < 0 || left_of(c) != 0)
        return RTMP_ERR_TLS_MALFORMED;
    return 0;
}

static int is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* RFC 8446 4.1.3: the random of a HelloRetryRequest, SHA-256("HelloRetryRequest"). */
static const uint8_t hrr_random[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C
};

enum { EXT_SERVER_NAME = 0, EXT_ALPN = 16, EXT_SUPPORTED_VERSIONS = 43, EXT_KEY_SHARE = 51 };

/* server_name (RFC 6066 3): a list of (type, name); the first host_name (type 0). */
static int ext_server_name(rtmp_tls_hello *h, cur *e)
{
    if (h->type != RTMP_TLS_CLIENT_HELLO || left_of(e) == 0)
        return 0;                      /* a server echoes it empty */
    cur list;
    int rc = take_whole16(e, &list);
    if (rc < 0)
        return rc;
    while (left_of(&list) > 0) {
        uint8_t kind;
        cur name;
        if ((rc = take8(&list, &kind)) < 0 || (rc = take_vec16(&list, &name)) < 0)
            return rc;
        if (kind == 0 && !h->sni) {
            h->sni = name.p;
            h->sni_len = name.n;
        }
    }
    return 0;
}

/* ALPN (RFC 7301 3.1): a list of non-empty names (the server's holds one). */
static int ext_alpn(rtmp_tls_hello *h, cur *e)
{
    cur list;
    int rc = take_whole16(e, &list);
    if (rc < 0)
        return rc;
    while (left_of(&list) > 0) {
        cur name;
        if ((rc = take_vec8(&list, &name)) < 0)
            return rc;
        if (name.n == 0)
            return RTMP_ERR_TLS_MALFORMED;
        if (h->nalpn < RTMP_TLS_MAX_LIST) {
            h->alpn[h->nalpn] = name.p;
            h->alpn_len[h->nalpn] = (uint8_t)name.n;
            h->nalpn++;
        }
        h->alpn_total++;
    }
    return 0;
}

/* supported_versions (RFC 8446 4.2.1): a ClientHello's list, a ServerHello's choice. */
static int ext_versions(rtmp_tls_hello *h, cur *e)
{
    h->has_versions = 1;
    if (h->type == RTMP_TLS_SERVER_HELLO) {
        uint16_t v;
        if (take16(e, &v) < 0 || left_of(e) != 0)
            return RTMP_ERR_TLS_MALFORMED;
        h->versions[0] = v;
        h->nversions = h->versions_total = 1;
        return 0;
    }
    cur list;
    if (take_vec8(e, &list) < 0 || left_of(e) != 0 || list.n % 2 != 0)
        return RTMP_ERR_TLS_MALFORMED;
    for (; left_of(&list) > 0; list.off += 2) {   /* an even length: whole entries */
        uint16_t v = be16(list.p + list.off);
        if (h->nversions < RTMP_TLS_MAX_LIST)
            h->versions[h->nversions++] = v;
        h->versions_total++;
    }
    return 0;
}

/* key_share (RFC 8446 4.2.8): a ServerHello's group and key, a
 * HelloRetryRequest's group alone.  A ClientHello's shares are not kept. */
static int ext_key_share(rtmp_tls_hello *h, cur *e)
{
    if (h->type != RTMP_TLS_SERVER_HELLO)
        return 0;
    uint16_t g;
    if (take16(e, &g) < 0)
        return RTMP_ERR_TLS_MALFORMED;
    if (!h->hello_retry) {
        cur key;
        if (take_vec16(e, &key) < 0)
            return RTMP_ERR_TLS_MALFORMED;
    }
    if (left_of(e) != 0)
        return RTMP_ERR_TLS_MALFORMED;
    h->has_group = 1;
    h->group = g;
    return 0;
}

/* The extensions block: absent (nothing left), or a 16-bit length that
 * takes exactly what is left. */
static int extensions(rtmp_tls_hello *h, cur *c)
{
    if (left_of(c) == 0)
        return 0;
    cur all;
    int rc = take_whole16(c, &all);
    if (rc < 0)
        return rc;
    while (left_of(&all) > 0) {
        uint16_t type;
        cur e;
        if ((rc = take16(&all, &type)) < 0 || (rc = take_vec16(&all, &e)) < 0)
            return rc;
        h->extensions++;
        switch (type) {
        case EXT_SERVER_NAME: rc = ext_server_name(h, &e); break;
        case EXT_ALPN: rc = ext_alpn(h, &e); break;
        case EXT_SUPPORTED_VERSIONS: rc = ext_versions(h, &e); break;
        case EXT_KEY_SHARE: rc = ext_key_share(h, &e); break;
        default: rc = 0;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2). */
static int client_hello(rtmp_tls_hello *h, cur *c)
{
    cur random, sid, suites, comp;
    int rc;
    if ((rc = take16(c, &h->legacy_version)) < 0 || (rc = take_sub(c, 32, &random)) < 0
        || (rc = take_vec8(c, &sid)) < 0 || (rc = take_vec16(c, &suites)) < 0
        || (rc = take_vec8(c, &comp)) < 0)
        return rc;
    if (sid.n > 32 || suites.n == 0 || suites.n % 2 != 0 || comp.n == 0)
        return RTMP_ERR_TLS_MALFORMED;
    for (; left_of(&suites) > 0; suites.off += 2) {   /* an even length: whole entries */
        uint16_t s = be16(suites.p + suites.off);
        if (h->nciphers < RTMP_TLS_MAX_LIST)
            h->ciphers[h->nciphers++] = s;
        h->ciphers_total++;
    }
    if ((rc = extensions(h, c)) < 0)
        return rc;
    h->version = h->legacy_version;
    if (h->has_versions) {
        h->version = 0;
        for (unsigned i = 0; i < h->nversions; i++)
            if (!is_grease(h->versions[i]) && h->versions[i] > h->version)
                h->version = h->versions[i];
    }
    return 1;
}

/* ServerHello (RFC 8446 4.1.3, RFC 5246 7.4.1.3). */
static int server_hello(rtmp_tls_hello *h, cur *c)
{
    cur random, sid;
    uint8_t comp;
    int rc;
    if ((rc = take16(c, &h->legacy_version)) < 0 || (rc = take_sub(c, 32, &random)) < 0
        || (rc = take_vec8(c, &sid)) < 0 || (rc = take16(c, &h->cipher)) < 0 || (rc = take8(c, &comp)) < 0)
        return rc;
    if (sid.n > 32)
        return RTMP_ERR_TLS_MALFORMED;
    h->hello_retry = memcmp(random.p, hrr_random, sizeof hrr_random) == 0;
    h->ciphers[0] = h->cipher;
    h->nciphers = h->ciphers_total = 1;
    if ((rc = extensions(h, c)) < 0)
        return rc;
    h->version = h->has_versions ? h->versions[0] : h->legacy_version;
    return 1;
}

int rtmp_tls_hello_read(rtmp_tls_hello *h, const uint8_t *p, size_t len)
{
    memset(h, 0, offsetof(rtmp_tls_hello, msg));
    size_t off = 0;      /* the record being read */
    size_t have = 0;     /* handshake bytes gathered in h->msg */
    size_t need = 0;     /* the first message's whole size, once its header is in */
    for (;;) {
        int hr = rtmp_tls_record_header(p + off, len - off);
        if (hr < 0)
            return 0;
        if (hr == 0)
            return RTMP_ERR_TLS_RECORD;
        uint8_t type = p[off];
        size_t rlen = be16(p + off + 3);
        if (off == 0)
            h->record_version = be16(p + 1);
        if (len - off - RTMP_TLS_RECORD_HEADER < rlen)
            return 0;
        const uint8_t *frag = p + off + RTMP_TLS_RECORD_HEADER;
        if (off == 0 && type == RTMP_TLS_ALERT) {
            if (rlen != 2)
                return RTMP_ERR_TLS_MALFORMED;
            h->type = RTMP_TLS_ALERT;
            h->alert_level = frag[0];
            h->alert_desc = frag[1];
            h->used = RTMP_TLS_RECORD_HEADER + 2;
            return 1;
        }
        /* handshake messages are not interleaved with other records */
        if (type != RTMP_TLS_HANDSHAKE)
            return RTMP_ERR_TLS_UNEXPECTED;
        for (size_t fo = 0; fo < rlen;) {
            size_t want = have < 4 ? 4 - have : need - have;
            size_t take = rlen - fo < want ? rlen - fo : want;
            memcpy(h->msg + have, frag + fo, take);
            have += take;
            fo += take;
            if (have == 4 && need == 0) {
                if (h->msg[0] != RTMP_TLS_CLIENT_HELLO && h->msg[0] != RTMP_TLS_SERVER_HELLO)
                    return RTMP_ERR_TLS_UNEXPECTED;
                if (be24(h->msg + 1) > RTMP_TLS_MAX_HELLO - 4)
                    return RTMP_ERR_TLS_LIMIT;
                need = 4 + be24(h->msg + 1);
            }
            if (need != 0 && have == need) {
                h->type = h->msg[0];
                h->used = off + RTMP_TLS_RECORD_HEADER + rlen;
                h->msg_len = need - 4;
                cur c = { h->msg + 4, need - 4, 0 };
                return h->type == RTMP_TLS_CLIENT_HELLO ? client_hello(h, &c) : server_hello(h, &c);
            }
        }
        off += RTMP_TLS_RECORD_HEADER + rlen;
    }
}

/* ---- names ---- */

typedef struct named {
    uint16_t    id;
    const char *name;
} named;

static const char *find(const named *t, size_t n, uint16_t id)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].id == id)
            return t[i].name;
    return NULL;
}

#define FIND(t, id) find(t, sizeof t / sizeof t[0], id)

static const named versions[] = {
    { 0x0300, "SSL 3.0" }, { 0x0301, "TLS 1.0" }, { 0x0302, "TLS 1.1" }, { 0x0303, "TLS 1.2" },
    { 0x0304, "TLS 1.3" },
};

/* The suites OpenSSL, GnuTLS, BoringSSL and NSS offer by default, and
 * the classic ones a server may still pick (IANA TLS Cipher Suites). */
static const named ciphers[] = {
    { 0x1301, "TLS_AES_128_GCM_SHA256" },
    { 0x1302, "TLS_AES_256_GCM_SHA384" },
    { 0x1303, "TLS_CHACHA20_POLY1305_SHA256" },
    { 0x1304, "TLS_AES_128_CCM_SHA256" },
    { 0x1305, "TLS_AES_128_CCM_8_SHA256" },
    { 0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
    { 0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
    { 0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
    { 0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
    { 0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" },
    { 0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA" },
    { 0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" },
    { 0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" },
    { 0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" },
    { 0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384" },
    { 0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256" },
    { 0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384" },
    { 0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM" },
    { 0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM" },
    { 0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" },
    { 0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384" },
    { 0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256" },
    { 0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256" },
    { 0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA" },
    { 0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA" },
    { 0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256" },
    { 0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384" },
    { 0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256" },
    { 0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256" },
    { 0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA" },
    { 0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA" },
    { 0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA" },
    { 0x00FF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV" },
    { 0x5600, "TLS_FALLBACK_SCSV" },
};

static const named groups[] = {
    { 0x0017, "secp256r1" }, { 0x0018, "secp384r1" }, { 0x0019, "secp521r1" }, { 0x001D, "x25519" },
    { 0x001E, "x448" }, { 0x0100, "ffdhe2048" }, { 0x0101, "ffdhe3072" }, { 0x0102, "ffdhe4096" },
    { 0x0103, "ffdhe6144" }, { 0x0104, "ffdhe8192" }, { 0x0200, "MLKEM512" }, { 0x0201, "MLKEM768" },
    { 0x0202, "MLKEM1024" }, { 0x11EB, "SecP256r1MLKEM768" }, { 0x11EC, "X25519MLKEM768" },
    { 0x11ED, "SecP384r1MLKEM1024" }, { 0x6399, "X25519Kyber768Draft00" },
};

static const named alerts[] = {
    { 0, "close_notify" }, { 10, "unexpected_message" }, { 20, "bad_record_mac" },
    { 22, "record_overflow" }, { 40, "handshake_failure" }, { 42, "bad_certificate" },
    { 43, "unsupported_certificate" }, { 44, "certificate_revoked" }, { 45, "certificate_expired" },
    { 46, "certificate_unknown" }, { 47, "illegal_parameter" }, { 48, "unknown_ca" },
    { 49, "access_denied" }, { 50, "decode_error" }, { 51, "decrypt_error" },
    { 70, "protocol_version" }, { 71, "insufficient_security" }, { 80, "internal_error" },
    { 86, "inappropriate_fallback" }, { 90, "user_canceled" }, { 100, "no_renegotiation" },
    { 109, "missing_extension" }, { 110, "unsupported_extension" }, { 112, "unrecognized_name" },
    { 113, "bad_certificate_status_response" }, { 115, "unknown_psk_identity" },
    { 116, "certificate_required" }, { 120, "no_application_protocol" },
};

const char *rtmp_tls_version_name(uint16_t v) { return FIND(versions, v); }
const char *rtmp_tls_cipher_name(uint16_t c) { return FIND(ciphers, c); }
const char *rtmp_tls_group_name(uint16_t g) { return FIND(groups, g); }
const char *rtmp_tls_alert_name(uint8_t desc) { return FIND(alerts, desc); }
