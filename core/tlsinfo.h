/*
 * tlsinfo.h: what a TLS connection negotiated, read from the cleartext
 * start of a captured byte stream.
 *
 * Sans-I/O: the capture tools (lua/l_pcap.c, lua/rtmp/capture.lua) put a
 * direction of a TCP connection back together and hand its first bytes
 * here.  rtmp_tls_hello_read walks the TLS records (RFC 8446 5.1: type,
 * version, 16-bit length), gathers the handshake records' fragments and
 * reads the first handshake message: a ClientHello (legacy version,
 * cipher suites offered, SNI, ALPN, supported_versions) or a ServerHello
 * (the version chosen, supported_versions for TLS 1.3, the cipher suite,
 * the key_share group, ALPN for TLS 1.2, HelloRetryRequest).  A
 * direction that begins with an alert instead gives the alert.  Every
 * length is checked against what holds it; nothing is allocated.
 * rtmp_tls_walk follows record headers, for a capture that began after
 * the handshake (only encrypted records to see).
 *
 * What comes after the hellos is encrypted (all of it in TLS 1.3; from
 * ChangeCipherSpec on in TLS 1.2): this is all a capture shows of it.
 */
#ifndef RTMP_TLSINFO_H
#define RTMP_TLSINFO_H

#include <stddef.h>
#include <stdint.h>

/* Record content types (RFC 8446 5.1). */
enum {
    RTMP_TLS_CHANGE_CIPHER_SPEC = 20,
    RTMP_TLS_ALERT = 21,
    RTMP_TLS_HANDSHAKE = 22,
    RTMP_TLS_APPLICATION_DATA = 23,
    RTMP_TLS_HEARTBEAT = 24
};

/* Handshake message types the reader knows. */
enum { RTMP_TLS_CLIENT_HELLO = 1, RTMP_TLS_SERVER_HELLO = 2 };

/* A record's plaintext may be 2^14 bytes, a TLS 1.2 ciphertext 2048 more. */
#define RTMP_TLS_MAX_RECORD (16384 + 2048)
/* A hello gathered from several records is held up to this size. */
#define RTMP_TLS_MAX_HELLO 32768
/* Cipher suites, versions and ALPN names kept from one hello, at most. */
#define RTMP_TLS_MAX_LIST 32
/* The record header. */
#define RTMP_TLS_RECORD_HEADER 5

/* What one hello (or the alert in its place) says.  sni and alpn point
 * into msg.  Lists keep the first RTMP_TLS_MAX_LIST entries, in the
 * order sent; the *_total counts say how many there were. */
typedef struct rtmp_tls_hello {
    int            type;             /* RTMP_TLS_CLIENT_HELLO, RTMP_TLS_SERVER_HELLO, or
                                        RTMP_TLS_ALERT (alert_level, alert_desc) */
    uint16_t       record_version;   /* the first record's version field */
    uint16_t       legacy_version;   /* the hello's legacy_version */
    /* ServerHello: the version chosen (supported_versions when present,
     * else legacy_version); ClientHello: the highest one offered
     * (supported_versions without GREASE when present, else legacy_version) */
    uint16_t       version;
    int            has_versions;     /* a supported_versions extension was sent */
    uint16_t       versions[RTMP_TLS_MAX_LIST];
    unsigned       nversions, versions_total;
    uint16_t       ciphers[RTMP_TLS_MAX_LIST];   /* ClientHello: offered; ServerHello: the one */
    unsigned       nciphers, ciphers_total;
    uint16_t       cipher;           /* ServerHello: the cipher suite chosen */
    int            has_group;        /* ServerHello: a key_share extension named a group */
    uint16_t       group;
    int            hello_retry;      /* ServerHello: a HelloRetryRequest (RFC 8446 4.1.3) */
    const uint8_t *sni;              /* ClientHello: the first host_name of server_name, or NULL */
    size_t         sni_len;
    const uint8_t *alpn[RTMP_TLS_MAX_LIST];      /* ALPN protocol names */
    uint8_t        alpn_len[RTMP_TLS_MAX_LIST];
    unsigned       nalpn, alpn_total;
    unsigned       extensions;       /* extensions in the hello */
    uint8_t        alert_level, alert_desc;
    size_t         used;             /* input bytes up to the end of the record that completed it */
    size_t         msg_len;          /* the hello's body, in msg */
    uint8_t        msg[RTMP_TLS_MAX_HELLO];
} rtmp_tls_hello;

/* Whether p[0 .. len) begins with a plausible record header: a known
 * content type, version 3.0 to 3.4 (SSL 3.0 .. TLS 1.3 on the wire), a
 * length up to RTMP_TLS_MAX_RECORD (0 only for application data).
 * Returns 1, 0 (not one), or -1 when len < RTMP_TLS_RECORD_HEADER. */
int rtmp_tls_record_header(const uint8_t *p, size_t len);

/* Read the first handshake message (or alert) of one direction's bytes
 * p[0 .. len).  Returns 1 and fills *h; 0 when the bytes end before it
 * is complete; RTMP_ERR_TLS_RECORD when the bytes are not TLS records,
 * RTMP_ERR_TLS_UNEXPECTED when the first record or handshake message is
 * neither a hello nor an alert, RTMP_ERR_TLS_MALFORMED when a length in
 * the hello runs past what holds it (or leaves bytes over),
 * RTMP_ERR_TLS_LIMIT for a hello over RTMP_TLS_MAX_HELLO bytes.  A
 * prefix of an input that gives 1 gives 0. */
int rtmp_tls_hello_read(rtmp_tls_hello *h, const uint8_t *p, size_t len);

/* Counts of a run of records. */
typedef struct rtmp_tls_walk_stats {
    unsigned records;                /* whole records */
    unsigned by_type[5];             /* of them, per content type 20 .. 24 */
    size_t   bytes;                  /* input bytes in whole records */
    int      partial;                /* the input ends inside a record whose header is plausible */
} rtmp_tls_walk_stats;

/* Follow record headers from p while they are plausible.  Returns the
 * bytes walked (whole records plus a plausible last one cut short), so
 * len when every byte is in a record. */
size_t rtmp_tls_walk(const uint8_t *p, size_t len, rtmp_tls_walk_stats *st);

/* Names: "TLS 1.3"; the IANA name of a cipher suite
 * ("TLS_AES_128_GCM_SHA256"); a named group ("x25519"); an alert
 * description ("handshake_failure").  NULL for a value not in the
 * tables (GREASE, private, new). */
const char *rtmp_tls_version_name(uint16_t v);
const char *rtmp_tls_cipher_name(uint16_t c);
const char *rtmp_tls_group_name(uint16_t g);
const char *rtmp_tls_alert_name(uint8_t desc);

#endif
