/*
 * net.c: sockets, libev and TLS (OpenSSL).  Nothing else in luartmp
 * includes any of them.
 */
#include "net.h"
#include "error.h"
#include "handshake.h"
#include "log.h"
#include "tlsinfo.h"
#include "tlsrec.h"
#include "url.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define READ_BUF_SIZE (64 * 1024)
#define MAX_IOV 64
#define MAX_LISTEN_FDS 8
#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_RESUME 0.5 /* seconds between accept() tries while out of descriptors */
#define ADDR_BUCKETS_MIN 64
#define TLS_RECORD 16384               /* the most plaintext one TLS record carries */
#define TLS_READ_BUDGET (256 * 1024)   /* plaintext read per wakeup before others' turn */

/* A connection's TLS (NULL on a plain one).  See "TLS" below. */
typedef struct rtmp_tls {
    SSL      *ssl;
    int       open;             /* the TLS handshake is complete */
    int       server;           /* accepted (else we connected) */
    int       peeked;           /* the peer's first byte was checked */
    int       verify;           /* client: the certificate is verified */
    int       ktls_send, ktls_recv;
    int       fatal;            /* OpenSSL failed: no close_notify, no more I/O */
    int       read_wants_write; /* SSL_read needs the socket writable */
    int       write_wants_read; /* SSL_write needs the socket readable */
    size_t    inflight;         /* length of an SSL_write that would block: it is
                                   retried with the same bytes (OpenSSL's rule),
                                   which stay queued until written */
    int       inflight_staged;  /* ... from stage (else from the queue's head) */
    uint8_t  *stage;            /* one record: small queued pieces written together */
    /* TLS 1.3 output sealed by luartmp (tlsrec.h), not by SSL_write */
    int       openssl_records;  /* asked for SSL_write's records instead */
    int       own;              /* our records: OpenSSL writes nothing more */
    int       fd;               /* the socket (SSL_get_fd is a search each time) */
    int       key_update_asked; /* the peer's KeyUpdate asked for ours */
    unsigned  tickets;          /* server: session tickets OpenSSL sent (records
                                   under our first keys before ours) */
    size_t    wsecret_len;      /* our direction's traffic secret, from the key log */
    uint8_t   wsecret[RTMP_TLSREC_MAX_SECRET];
    rtmp_tlsrec rec;
    uint8_t  *out;              /* sealed records: out[out_off .. out_len) still to send */
    size_t    out_off, out_len;
    size_t    out_plain;        /* the queued bytes they hold, consumed once all are sent */
    const uint8_t *ahead;       /* a batch sealed ahead (own_seal_ahead), ahead_len bytes */
    size_t    ahead_len;        /*   holding the first ahead_plain of the queue; sent by */
    size_t    ahead_plain;      /*   the flush in the same process_pending (out is empty) */
    char      sni[256];         /* sent (client) or received (server) */
    char      name[256];        /* client: the name verified (the SNI, or an IP address) */
} rtmp_tls;

/* A client SSL_CTX, shared by the connections made with the same CA file
 * and verification (the system store is read once per context). */
typedef struct tls_client_entry {
    struct tls_client_entry *next;
    SSL_CTX               *ctx;
    int                    insecure;
    char                   ca[]; /* "" for none */
} tls_client_entry;

/* A closed connection's socket while it finishes (cfg.linger): the output
 * queued at the close is written, then our side is shut down (the FIN
 * follows the last byte), and what the peer still sends is read and
 * dropped until it closes too or the time is up.  A plain close() with
 * unread input, or input arriving after it, makes the kernel answer with
 * a reset, and a peer that gets a reset may throw away the end of the
 * stream it had not read yet. */
typedef struct rtmp_linger {
    rtmp_net           *net;
    struct rtmp_linger *prev, *next;
    int                 fd;
    int                 peer_done;  /* the peer closed its side */
    ev_io               rio, wio;
    ev_timer            timer;
    rtmp_outq           q;          /* output still to write */
    rtmp_tls           *tls;        /* a TLS connection's: written through it,
                                       then close_notify before the FIN */
    uint64_t            written, dropped; /* bytes written / input read and dropped */
    unsigned long       id;
    uint8_t             addr_len;   /* still counted in net->addrs under addr */
    uint8_t             addr[16];
    char                peer[64];
} rtmp_linger;

/* Open accepted connections from one IP address (max_per_address). */
typedef struct addr_count {
    struct addr_count *next;
    uint8_t            len;      /* 4 or 16 bytes of a */
    uint8_t            a[16];
    unsigned           n;
} addr_count;

struct rtmp_net {
    struct ev_loop *loop;
    ev_prepare      prepare;     /* flushes output and closes connections */
    ev_signal       sigint, sigterm;
    rtmp_net_term_cb on_term;    /* SIGTERM's handler instead of the shutdown */
    void           *on_term_ud;
    ev_signal       sighup;      /* active while on_hup is set (unreferenced) */
    rtmp_net_term_cb on_hup;
    void           *on_hup_ud;
    ev_timer        run_timer;   /* rtmp_net_run's timeout */
    int             stopped;
    unsigned long   next_id;
    rtmp_conn      *conns;       /* every open connection */
    rtmp_conn      *dirty;       /* connections with output to flush */
    rtmp_conn      *closing;     /* connections to close at the safe point */
    rtmp_listener  *listeners;
    rtmp_timer     *timers;
    rtmp_linger    *lingers, *lingers_tail; /* sockets of closed connections finishing, oldest first */
    addr_count    **addrs;       /* hash table of open accepted connections per address */
    size_t          naddr_buckets, naddrs;
    tls_client_entry *tls_clients; /* client TLS contexts, one per (CA file, verification) */
    uint8_t         rbuf[READ_BUF_SIZE]; /* shared by every connection's reads */
};

struct rtmp_conn {
    rtmp_net         *net;
    rtmp_conn        *prev, *next;      /* net->conns */
    rtmp_conn        *next_dirty;       /* valid while dirty */
    rtmp_conn        *next_closing;     /* valid while closing */
    int               fd;
    int               dirty, closing, connecting;
    int               accepted;         /* by a listener (else connected) */
    int               drop_output;      /* closed as a slow reader: the queue is not written */
    rtmp_tls         *tls;              /* NULL: plain TCP */
    uint8_t           addr_len;         /* accepted: counted in net->addrs under addr */
    uint8_t           addr[16];
    ev_io             rio, wio;
    int               read_paused;      /* rtmp_conn_pause_reading */
    ev_timer          deadline;         /* armed at rtmp_conn_core_next_deadline */
    double            deadline_at;      /* when it fires; 0: not armed */
    ev_timer          merge;            /* write-merging window (media only) */
    rtmp_conn_core   *cc;               /* the session, deadlines, closing policy */
    rtmp_session     *s;                /* cc's session */
    rtmp_outq         pq;               /* passthrough output (rtmp_conn_write); the
                                           session's queue stays empty */
    rtmp_conn_handler h;
    void             *ud;
    rtmp_conn_config  cfg;
    unsigned long     id;
    uint64_t          nread, written;
    int               close_level;      /* log level of the close line: warn for errors */
    char              peer[64];
    rtmp_warm         warm;             /* what the next read will touch, noted after
                                           each delivery (warm.h) */
};

struct rtmp_listener {
    rtmp_net         *net;
    rtmp_listener    *next;
    int               nfds;
    ev_io             io[MAX_LISTEN_FDS];
    ev_timer          resume;           /* accepting paused: out of descriptors */
    ev_tstamp         starved_since;    /* when accept() first failed for want of them; 0: it did not */
    rtmp_conn_config  cfg;
    rtmp_conn_handler h;
    void             *ud;
    int               port;
    SSL_CTX          *tls_ctx;          /* rtmps:// listeners: their certificate and key */
    int               tls_openssl_records; /* rtmp_tls_config.openssl_records */
};

struct rtmp_timer {
    rtmp_net      *net;
    rtmp_timer    *prev, *next;
    ev_timer       w;
    rtmp_timer_cb  cb;
    void          *ud;
};

/* ---- connections ---- */

static void process_pending(rtmp_net *n);

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    process_pending(w->data);
}

static void conn_log(rtmp_conn *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void conn_log(rtmp_conn *c, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rtmp_logv(level, c->id, c->peer, fmt, ap);
    va_end(ap);
}

/* ---- open connections per address (max_per_address) ---- */

static size_t addr_hash(const uint8_t *a, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= a[i];
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

/* Where the entry for a is, or would be linked; NULL while the table is empty. */
static addr_count **addr_slot(rtmp_net *n, const uint8_t *a, uint8_t len)
{
    if (n->naddr_buckets == 0)
        return NULL;
    addr_count **pp = &n->addrs[addr_hash(a, len) % n->naddr_buckets];
    while (*pp && ((*pp)->len != len || memcmp((*pp)->a, a, len) != 0))
        pp = &(*pp)->next;
    return pp;
}

/* Connections open from a now. */
static unsigned addr_open(rtmp_net *n, const uint8_t *a, uint8_t len)
{
    addr_count **pp = addr_slot(n, a, len);
    return pp && *pp ? (*pp)->n : 0;
}

/* Count one more connection from a.  0, or -1 on OOM (not counted). */
static int addr_acquire(rtmp_net *n, const uint8_t *a, uint8_t len)
{
    if (n->naddrs >= 2 * n->naddr_buckets) { /* keep chains short: rehash into twice the buckets */
        size_t nb = n->naddr_buckets ? 2 * n->naddr_buckets : ADDR_BUCKETS_MIN;
        addr_count **t = calloc(nb, sizeof *t);
        if (t) {
            for (size_t i = 0; i < n->naddr_buckets; i++)
                for (addr_count *e = n->addrs[i], *next; e; e = next) {
                    next = e->next;
                    size_t h = addr_hash(e->a, e->len) % nb;
                    e->next = t[h];
                    t[h] = e;
                }
            free(n->addrs);
            n->addrs = t;
            n->naddr_buckets = nb;
        } else if (n->naddr_buckets == 0) {
            return -1;
        }
    }
    addr_count **pp = addr_slot(n, a, len);
    if (*pp) {
        (*pp)->n++;
        return 0;
    }
    addr_count *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->len = len;
    memcpy(e->a, a, len);
    e->n = 1;
    *pp = e;
    n->naddrs++;
    return 0;
}

static void addr_release(rtmp_net *n, const uint8_t *a, uint8_t len)
{
    addr_count **pp = addr_slot(n, a, len);
    if (!pp || !*pp)
        return;
    if (--(*pp)->n == 0) {
        addr_count *e = *pp;
        *pp = e->next;
        free(e);
        n->naddrs--;
    }
}

/* The IP address of sa as a key (4 or 16 bytes); its length, 0 if neither. */
static uint8_t addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* The core began closing c (any cause: conn.h): stop reading, and close
 * at the next safe point. */
static void on_closing(void *ud)
{
    rtmp_conn *c = ud;
    int how = rtmp_conn_core_close_how(c->cc);
    c->closing = 1;
    c->close_level = how == RTMP_CLOSE_NORMAL ? RTMP_LOG_INFO : RTMP_LOG_WARN;
    c->drop_output = how == RTMP_CLOSE_DROP;
    ev_io_stop(c->net->loop, &c->rio);
    c->next_closing = c->net->closing;
    c->net->closing = c;
}

void rtmp_conn_close(rtmp_conn *c, const char *reason)
{
    rtmp_conn_core_close(c->cc, reason, RTMP_CLOSE_NORMAL);
}

void rtmp_conn_fail(rtmp_conn *c, const char *reason)
{
    rtmp_conn_core_close(c->cc, reason, RTMP_CLOSE_FAIL);
}

void rtmp_conn_drop(rtmp_conn *c, const char *reason)
{
    rtmp_conn_core_close(c->cc, reason, RTMP_CLOSE_DROP);
}

/* After a write or writev that failed (errno): 1 to try again at once
 * (interrupted), 0 when the socket is full (wait for EV_WRITE), -1 for an
 * error, described in why. */
static int write_failed(char *why, size_t whylen)
{
    if (errno == EINTR)
        return 1;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    snprintf(why, whylen, "write: %s", strerror(errno));
    return -1;
}

/* Write from q what the socket fd takes now, counting it in *written.
 * 1: q is empty; 0: the socket is full (wait for EV_WRITE); -1: a write
 * error, described in why. */
static int write_queue(int fd, rtmp_outq *q, uint64_t *written, char *why, size_t whylen)
{
    struct iovec iov[MAX_IOV];
    while (q->bytes > 0) {
        int cnt = rtmp_outq_iov(q, iov, MAX_IOV);
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            int rc = write_failed(why, whylen);
            if (rc > 0)
                continue;
            return rc;
        }
        rtmp_outq_consume(q, (size_t)w);
        *written += (uint64_t)w;
    }
    return 1;
}

/* ---- TLS ----
 *
 * A TLS connection reads with SSL_read into the shared read buffer, and
 * writes its queue one of three ways:
 *   - kTLS send (the kernel encrypts; OpenSSL's SSL_OP_ENABLE_KTLS, when
 *     the kernel has the tls ULP and the cipher suits it): the same writev
 *     of the queue's shared buffers as a plain connection;
 *   - TLS 1.3 otherwise: records sealed here from the queue's buffers
 *     (tlsrec.h; own_write_queue below), unless openssl_records;
 *   - otherwise TLS records of up to TLS_RECORD bytes, one SSL_write_ex
 *     each: a queue piece of a record or more (a video message) is
 *     encrypted from where it lies; smaller pieces (audio, control) are
 *     copied together into the connection's one staging record.  Nothing
 *     leaves the queue before SSL_write took it, and a write that would
 *     block is retried with the same bytes, as OpenSSL requires.
 * TLS 1.3 KeyUpdate: OpenSSL answers a request itself when it writes our
 * records; with kTLS send it is sent before the next writev; with ours we
 * send it.  Renegotiation is off.  The session above sees plaintext only
 * and never knows. */

/* The reason of the OpenSSL failure e (SSL_get_error) of ssl in what it
 * was doing ("read", "write", "TLS handshake"), into out. */
static void tls_error_text(SSL *ssl, int e, const char *what, char *out, size_t len)
{
    unsigned long err = ERR_peek_last_error();
    if ((e == SSL_ERROR_SYSCALL && err == 0) || e == SSL_ERROR_ZERO_RETURN) {
        if (e == SSL_ERROR_SYSCALL && errno)
            snprintf(out, len, "%s: %s", what, strerror(errno));
        else
            snprintf(out, len, "%s: the peer closed the connection", what);
    } else {
        const char *r = ERR_reason_error_string(err);
        int alert = ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) >= SSL_AD_REASON_OFFSET;
        snprintf(out, len, alert ? "%s: the peer's TLS alert: %s" : "%s: TLS: %s", what, r ? r : "error");
    }
    (void)ssl;
}

/* ---- our own TLS 1.3 records (tlsrec.h) ----
 *
 * After a TLS 1.3 handshake without kTLS send, OpenSSL writes nothing
 * more: our records are sealed here from the traffic secret its key log
 * gave and written to the socket directly.  Our sequence starts where
 * OpenSSL's stopped: a client has sent nothing under these keys, a server
 * only its session tickets, counted as OpenSSL makes them
 * (tls_ticket_made).  OpenSSL goes on reading; a KeyUpdate from the peer
 * that asks for ours is seen by its message callback and answered with
 * our next write. */

#define OWN_RECORDS 2 /* sealed per batch at most */
#define OWN_OUT (OWN_RECORDS * (TLS_RECORD + RTMP_TLSREC_OVERHEAD) + 64)
/* AES-GCM keys are changed after this many records (RFC 8446 5.5: 2^24.5) */
#define OWN_KEY_RECORDS (1u << 24)

/* Records not sealed ahead (own_seal_ahead: what a queue holds past its
 * first batch, a connection with records still in t->out) are sealed
 * into this buffer, shared by every connection, and written at once: it
 * stays in the cache.  Only what a socket did not take is copied into
 * the connection's own t->out, allocated then and kept.  (One loop per
 * process, on one thread: nothing else seals while a batch is here, and
 * a batch never outlives own_write_queue.) */
static uint8_t own_batch[OWN_OUT];

#define OWN_SEAL_FAILED "write: TLS: sealing a record failed"

/* Write buf[0 .. len) to t's socket as far as it goes, *sent the bytes
 * that went: 1 all of them, 0 the socket is full, -1 a write error (t is
 * then fatal), described in why. */
static int own_send(rtmp_tls *t, const uint8_t *buf, size_t len, size_t *sent, char *why, size_t whylen)
{
    size_t off = 0;
    int rc = 1;
    while (off < len && rc > 0) {
        ssize_t w = write(t->fd, buf + off, len - off);
        if (w >= 0)
            off += (size_t)w;
        else if ((rc = write_failed(why, whylen)) < 0)
            t->fatal = 1;
    }
    *sent = off;
    return rc;
}

/* Seal our KeyUpdate (RFC 8446 4.6.3: update_not_requested) at out, then
 * take the next keys: the record's size, or 0 when the cipher failed. */
static size_t own_key_update(rtmp_tls *t, uint8_t *out)
{
    uint8_t msg[5] = { 24, 0, 0, 1, 0 }; /* key_update, length 1, update_not_requested */
    struct iovec v = { msg, sizeof msg };
    size_t n = rtmp_tlsrec_seal(&t->rec, RTMP_TLS_HANDSHAKE, &v, 1, 0, sizeof msg, out);
    if (n == 0 || rtmp_tlsrec_next_key(&t->rec) < 0)
        return 0;
    t->key_update_asked = 0;
    return n;
}

/* The room own_seal may take for a batch from q. */
static size_t own_seal_room(const rtmp_outq *q)
{
    size_t plain = q->bytes < OWN_RECORDS * TLS_RECORD ? q->bytes : OWN_RECORDS * TLS_RECORD;
    return 5 + RTMP_TLSREC_OVERHEAD /* a KeyUpdate */ + plain + OWN_RECORDS * RTMP_TLSREC_OVERHEAD;
}

/* Seal t's next batch into out: a KeyUpdate when one is due, then up to
 * OWN_RECORDS records of what q holds from its start.  The batch's
 * length (0: nothing to send), *plain the queued bytes it holds; or
 * SIZE_MAX when the cipher failed.  The records must then be sent, in
 * order, before any other record of t is sealed. */
static size_t own_seal(rtmp_tls *t, const rtmp_outq *q, uint8_t *out, size_t *plain)
{
    size_t len = 0;
    *plain = 0;
    if (t->key_update_asked || t->rec.seq >= OWN_KEY_RECORDS) {
        if ((len = own_key_update(t, out)) == 0)
            return SIZE_MAX;
    }
    if (q->bytes == 0)
        return len;
    struct iovec iov[MAX_IOV];
    int cnt = rtmp_outq_iov(q, iov, MAX_IOV);
    size_t have = 0;
    for (int i = 0; i < cnt; i++)
        have += iov[i].iov_len;
    for (int r = 0; r < OWN_RECORDS && *plain < have; r++) {
        size_t take = have - *plain < TLS_RECORD ? have - *plain : TLS_RECORD;
        size_t n = rtmp_tlsrec_seal(&t->rec, RTMP_TLS_APPLICATION_DATA, iov, cnt, *plain, take, out + len);
        if (n == 0)
            return SIZE_MAX;
        len += n;
        *plain += take;
    }
    return len;
}

/* Write the sealed batch buf[0 .. len), which holds the first plain bytes
 * of q: they leave q once all of it is sent; what the socket does not
 * take waits in t->out.  1, 0 or -1 as own_write_queue. */
static int own_send_batch(rtmp_tls *t, rtmp_outq *q, const uint8_t *buf, size_t len, size_t plain,
                          uint64_t *written, char *why, size_t whylen)
{
    size_t sent;
    int rc = own_send(t, buf, len, &sent, why, whylen);
    if (rc < 0)
        return rc;
    if (rc == 0) { /* sealed, so it goes later as it is */
        if (!t->out && !(t->out = malloc(OWN_OUT))) {
            snprintf(why, whylen, "write: out of memory");
            t->fatal = 1;
            return -1;
        }
        memcpy(t->out, buf + sent, len - sent);
        t->out_off = 0;
        t->out_len = len - sent;
        t->out_plain = plain;
        return 0;
    }
    rtmp_outq_consume(q, plain);
    *written += plain;
    return 1;
}

/* Write from q what the socket of t (on our own records) takes now, as
 * write_queue: what was left last time, the batch sealed ahead
 * (own_seal_ahead), then batch after batch sealed here. */
static int own_write_queue(rtmp_tls *t, rtmp_outq *q, uint64_t *written, char *why, size_t whylen)
{
    int rc;
    if (t->out_off < t->out_len) { /* what the socket did not take last time */
        size_t sent;
        assert(t->ahead_len == 0); /* (own_seal_ahead skips such a connection) */
        rc = own_send(t, t->out + t->out_off, t->out_len - t->out_off, &sent, why, whylen);
        t->out_off += sent;
        if (rc <= 0)
            return rc;
        t->out_off = t->out_len = 0;
        /* (out_plain is 0 when the queue sealed from was left behind: linger_start) */
        rtmp_outq_consume(q, t->out_plain);
        *written += t->out_plain;
        t->out_plain = 0;
    }
    if (t->ahead_len > 0) {
        size_t len = t->ahead_len;
        t->ahead_len = 0;
        if ((rc = own_send_batch(t, q, t->ahead, len, t->ahead_plain, written, why, whylen)) <= 0)
            return rc;
    }
    for (;;) {
        size_t plain, len = own_seal(t, q, own_batch, &plain);
        if (len == SIZE_MAX) {
            snprintf(why, whylen, OWN_SEAL_FAILED);
            t->fatal = 1;
            return -1;
        }
        if (len == 0)
            return 1;
        if ((rc = own_send_batch(t, q, own_batch, len, plain, written, why, whylen)) <= 0)
            return rc;
    }
}

/* OpenSSL's message callback, on our own records: a KeyUpdate from the
 * peer that asks for ours. */
static void own_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
                       void *arg)
{
    const uint8_t *m = buf;
    if (!write_p && content_type == RTMP_TLS_HANDSHAKE && len == 5 && m[0] == 24 && m[4] == 1)
        ((rtmp_tls *)arg)->key_update_asked = 1;
    (void)version;
    (void)ssl;
}

/* The key log callback of our contexts: keep the traffic secret of the
 * direction we write ("SERVER_TRAFFIC_SECRET_0 <client random> <hex>"). */
static void tls_keylog(const SSL *ssl, const char *line)
{
    rtmp_tls *t = SSL_get_app_data(ssl);
    const char *label = t && t->server ? "SERVER_TRAFFIC_SECRET_0 " : "CLIENT_TRAFFIC_SECRET_0 ";
    size_t ll = strlen(label);
    if (!t || strncmp(line, label, ll))
        return;
    const char *hex = strchr(line + ll, ' ');
    size_t n = 0;
    for (hex = hex ? hex + 1 : ""; hex[0] && hex[1] && n < sizeof t->wsecret; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1)
            break;
        t->wsecret[n++] = (uint8_t)v;
    }
    t->wsecret_len = hex[0] ? 0 : n; /* all of it, or none */
}

/* OpenSSL's session ticket callback (server contexts): one more ticket,
 * about to be sent under the first application keys, as one record (no
 * max_fragment_length: own_start).  OpenSSL 3.0 calls it once per ticket
 * it builds, stateless or stateful; a ticket key callback that gave up a
 * ticket would make the count wrong: set none.  1: go on. */
static int tls_ticket_made(SSL *ssl, void *arg)
{
    rtmp_tls *t = SSL_get_app_data(ssl);
    if (t)
        t->tickets++;
    (void)arg;
    return 1;
}

/* At the end of the handshake: our own records, when TLS 1.3 with a suite
 * tlsrec.h seals, no kTLS send, and not openssl_records.  1: our records;
 * 0: OpenSSL's (why says why, for the log). */
static int own_start(rtmp_tls *t, const char **why)
{
    const char *suite = SSL_CIPHER_standard_name(SSL_get_current_cipher(t->ssl));
    int ok = 0;
    if (t->ktls_send)
        *why = "kTLS send";
    else if (t->openssl_records)
        *why = "asked for (tls.openssl_records)";
    else if (SSL_version(t->ssl) != TLS1_3_VERSION)
        *why = "not TLS 1.3";
    else if (!rtmp_tlsrec_supported(suite))
        *why = "a suite luartmp does not seal";
    else if (SSL_SESSION_get_max_fragment_length(SSL_get_session(t->ssl)) != TLSEXT_max_fragment_length_DISABLED)
        *why = "the peer's max_fragment_length"; /* (records under 16 KiB, and tickets cut into several) */
    else if (!t->wsecret_len || rtmp_tlsrec_init(&t->rec, suite, t->wsecret, t->wsecret_len) < 0)
        *why = "no traffic secret";
    else {
        BIO *sink = BIO_new(BIO_s_null());
        if (!sink) {
            rtmp_tlsrec_free(&t->rec);
            *why = "out of memory";
        } else {
            /* what OpenSSL would still write (the answer to a peer's
             * KeyUpdate, which OpenSSL 3.0 sends from SSL_read; an alert)
             * would break our sequence: it goes nowhere, and ours is sent
             * instead (own_msg_cb, own_write_queue) */
            SSL_set0_wbio(t->ssl, sink);
            SSL_set_msg_callback_arg(t->ssl, t);
            SSL_set_msg_callback(t->ssl, own_msg_cb);
            t->rec.seq = t->server ? t->tickets : 0;
            t->own = ok = 1;
        }
    }
    OPENSSL_cleanse(t->wsecret, sizeof t->wsecret);
    t->wsecret_len = 0;
    return ok;
}

/* Write from q what the TLS connection t takes now (as write_queue). */
static int tls_write_queue(rtmp_tls *t, rtmp_outq *q, uint64_t *written, char *why, size_t whylen)
{
    if (t->fatal)
        return 1; /* nothing can be sent any more: the close is under way */
    if (t->own)
        return own_write_queue(t, q, written, why, whylen);
    if (t->ktls_send) {
        if (SSL_get_key_update_type(t->ssl) != SSL_KEY_UPDATE_NONE) { /* answer the peer's first */
            ERR_clear_error();
            int r = SSL_do_handshake(t->ssl);
            if (r != 1) {
                int e = SSL_get_error(t->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    return 0;
                t->fatal = 1;
                tls_error_text(t->ssl, e, "write (key update)", why, whylen);
                return -1;
            }
        }
        return write_queue(t->fd, q, written, why, whylen);
    }
    struct iovec iov[MAX_IOV];
    while (q->bytes > 0) {
        const void *p;
        size_t len;
        int cnt = rtmp_outq_iov(q, iov, MAX_IOV);
        if (t->inflight) { /* the same bytes again */
            len = t->inflight;
            p = t->inflight_staged ? t->stage : iov[0].iov_base;
        } else if (iov[0].iov_len >= TLS_RECORD || cnt == 1) {
            p = iov[0].iov_base; /* in place: OpenSSL cuts it into records */
            len = iov[0].iov_len;
        } else {
            if (!t->stage && !(t->stage = malloc(TLS_RECORD))) {
                snprintf(why, whylen, "write: out of memory");
                return -1;
            }
            len = 0;
            for (int i = 0; i < cnt && len < TLS_RECORD; i++) {
                size_t take = iov[i].iov_len < TLS_RECORD - len ? iov[i].iov_len : TLS_RECORD - len;
                memcpy(t->stage + len, iov[i].iov_base, take);
                len += take;
            }
            p = t->stage;
        }
        size_t n;
        ERR_clear_error();
        int r = SSL_write_ex(t->ssl, p, len, &n);
        if (r > 0) { /* one record or more (partial writes are on) */
            t->inflight = 0;
            rtmp_outq_consume(q, n);
            *written += n;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            t->inflight = len;
            t->inflight_staged = p == t->stage;
            t->write_wants_read = e == SSL_ERROR_WANT_READ;
            return 0;
        }
        t->fatal = 1;
        tls_error_text(t->ssl, e, "write", why, whylen);
        return -1;
    }
    return 1;
}

/* Write from q what the connection (plain fd, or t) takes now. */
static int out_write(int fd, rtmp_tls *t, rtmp_outq *q, uint64_t *written, char *why, size_t whylen)
{
    return t ? tls_write_queue(t, q, written, why, whylen) : write_queue(fd, q, written, why, whylen);
}

static void tls_free(rtmp_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->stage);
    free(t->out);
    if (t->own)
        rtmp_tlsrec_free(&t->rec);
    OPENSSL_cleanse(t->wsecret, sizeof t->wsecret);
    free(t);
}

/* Send close_notify, once, when the session is open and sound (best
 * effort: what the socket takes now). */
static void tls_close_notify(rtmp_tls *t)
{
    if (t && t->open && !t->fatal) {
        if (t->own) { /* after the records sealed, if they went: an alert of our own */
            char why[128];
            size_t sent;
            int rc = 1;
            if (t->out_off < t->out_len) {
                rc = own_send(t, t->out + t->out_off, t->out_len - t->out_off, &sent, why, sizeof why);
                t->out_off += sent;
            }
            uint8_t alert[2] = { 1, 0 }, rec[2 + RTMP_TLSREC_OVERHEAD]; /* warning, close_notify */
            struct iovec v = { alert, sizeof alert };
            size_t n = rc > 0 ? rtmp_tlsrec_seal(&t->rec, RTMP_TLS_ALERT, &v, 1, 0, sizeof alert, rec) : 0;
            if (n > 0)
                own_send(t, rec, n, &sent, why, sizeof why); /* best effort, as SSL_shutdown's */
            SSL_set_shutdown(t->ssl, SSL_get_shutdown(t->ssl) | SSL_SENT_SHUTDOWN);
        } else {
            ERR_clear_error();
            SSL_shutdown(t->ssl);
        }
        t->fatal = 1; /* nothing more goes through it */
    }
}

/* A TLS state for the socket fd, from ctx: accepted (server) or
 * connecting.  NULL when out of memory. */
static rtmp_tls *tls_new(SSL_CTX *ctx, int fd, int server, int openssl_records)
{
    rtmp_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->server = server;
    t->openssl_records = openssl_records;
    t->fd = fd;
    t->ssl = SSL_new(ctx);
    if (t->ssl)
        SSL_set_app_data(t->ssl, t); /* (tls_keylog) */
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return t;
}

/* Client: send name as SNI (unless an IP address) and, with verify,
 * check the certificate against it.  0, or -1 when out of memory. */
static int tls_client_name(rtmp_tls *t, const char *name, int verify)
{
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!is_ip) {
        snprintf(t->sni, sizeof t->sni, "%s", name);
        if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
            return -1;
    }
    t->verify = verify;
    if (verify) {
        X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
        X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, name) : X509_VERIFY_PARAM_set1_host(p, name, 0)) != 1)
            return -1;
    }
    return 0;
}

/* What every context of ours has: TLS 1.2 at least, no renegotiation,
 * kTLS when the kernel and the cipher allow it, an end without
 * close_notify taken as an end, partial writes (one record per
 * SSL_write_ex, tls_write_queue) from a buffer that may move between
 * retries. */
static void tls_ctx_common(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_ENABLE_KTLS | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_keylog_callback(ctx, tls_keylog);
}

/* "<what> '<path>': <why>" for a file OpenSSL did not load: it cannot
 * be read, or it is not kind ("a PEM certificate"). */
static void tls_file_error(const char *what, const char *path, const char *kind, char *err, size_t errlen)
{
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
    } else { /* the first error says what (no start line, ...), the last only where (PEM lib) */
        const char *r = ERR_reason_error_string(ERR_peek_error());
        snprintf(err, errlen, "%s '%s': not %s (%s)", what, path, kind, r ? r : "cannot be loaded");
    }
    ERR_clear_error();
}

/* A server context with tls's certificate chain and key; NULL and err. */
static SSL_CTX *tls_server_ctx(const rtmp_tls_config *tls, char *err, size_t errlen)
{
    if (!tls || !tls->cert || !*tls->cert || !tls->key || !*tls->key) {
        snprintf(err, errlen, "an rtmps:// listener needs a certificate and its key (docs/TLS.md)");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tls_ctx_common(ctx);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_ticket_cb(ctx, tls_ticket_made, NULL, NULL); /* (own_start) */
    const char *suites = tls->ciphersuites ? tls->ciphersuites : RTMP_TLS_CIPHERSUITES;
    const char *ciphers = tls->ciphers ? tls->ciphers : RTMP_TLS_CIPHERS;
    if (!*suites) /* no TLS 1.3 suite: no TLS 1.3 (else it is chosen, then fails for want of one) */
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) { /* unknown names are skipped: none known fails */
        snprintf(err, errlen, "TLS ciphersuites '%s': not one TLS 1.3 suite OpenSSL has", suites);
        ERR_clear_error();
    } else if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        snprintf(err, errlen, "TLS ciphers '%s': not one TLS 1.2 cipher OpenSSL has", ciphers);
        ERR_clear_error();
    } else if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
        tls_file_error("TLS certificate", tls->cert, "a PEM certificate", err, errlen);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, errlen, "TLS key '%s' is not the key of the certificate '%s'", tls->key, tls->cert);
            ERR_clear_error();
        } else {
            tls_file_error("TLS key", tls->key, "a PEM private key", err, errlen);
        }
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

/* The client context for tls's CA file and verification, made at the
 * first use and kept by n; NULL and err (a CA file that does not load). */
static SSL_CTX *tls_client_ctx(rtmp_net *n, const rtmp_tls_config *tls, char *err, size_t errlen)
{
    int insecure = tls->insecure != 0;
    const char *ca = !insecure && tls->ca ? tls->ca : "";
    for (tls_client_entry *e = n->tls_clients; e; e = e->next)
        if (e->insecure == insecure && !strcmp(e->ca, ca))
            return e->ctx;
    ERR_clear_error();
    tls_client_entry *e = calloc(1, sizeof *e + strlen(ca) + 1);
    SSL_CTX *ctx = e ? SSL_CTX_new(TLS_client_method()) : NULL;
    if (!ctx) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tls_ctx_common(ctx);
    if (!insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_default_verify_paths(ctx); /* the system store (none is no error: a CA file may do) */
        ERR_clear_error();
        if (*ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            tls_file_error("TLS CA file", ca, "PEM certificates", err, errlen);
            SSL_CTX_free(ctx);
            free(e);
            return NULL;
        }
    }
    e->ctx = ctx;
    e->insecure = insecure;
    strcpy(e->ca, ca);
    e->next = n->tls_clients;
    n->tls_clients = e;
    return ctx;
}

/* Whether c's output may be written: connected, and past the TLS handshake. */
static int conn_writable(const rtmp_conn *c)
{
    return !c->connecting && c->fd >= 0 && (!c->tls || c->tls->open);
}

/* The queue c's output is written from. */
static rtmp_outq *conn_queue(rtmp_conn *c)
{
    return c->cfg.passthrough ? &c->pq : rtmp_session_output(c->s);
}

/* Write as much queued output as the socket takes now. */
static void flush(rtmp_conn *c)
{
    rtmp_outq *q = conn_queue(c);
    uint64_t before = c->written;
    char reason[300];
    int rc = out_write(c->fd, c->tls, q, &c->written, reason, sizeof reason);
    rtmp_conn_core_wrote(c->cc, (size_t)(c->written - before), ev_now(c->net->loop));
    if (rc < 0) {
        rtmp_outq_consume(q, q->bytes); /* nothing more can be sent */
        rtmp_conn_fail(c, reason);
        return;
    }
    /* the write watcher: a full socket, or TLS reading that waits for it */
    int wait_write = rc == 0 && !(c->tls && c->tls->write_wants_read);
    if (wait_write || (c->tls && c->tls->read_wants_write))
        ev_io_start(c->net->loop, &c->wio);
    else
        ev_io_stop(c->net->loop, &c->wio);
}

/* ---- lingering close ---- */

static void linger_end(rtmp_linger *g, const char *why)
{
    rtmp_net *n = g->net;
    rtmp_log(RTMP_LOG_DEBUG, g->id, g->peer, "socket closed (%s): lingered with out %llu bytes, %zu not sent,"
             " in %llu bytes dropped", why, (unsigned long long)g->written, g->q.bytes,
             (unsigned long long)g->dropped);
    ev_io_stop(n->loop, &g->rio);
    ev_io_stop(n->loop, &g->wio);
    ev_timer_stop(n->loop, &g->timer);
    close(g->fd);
    tls_free(g->tls);
    rtmp_outq_clear(&g->q);
    if (g->addr_len)
        addr_release(n, g->addr, g->addr_len);
    if (g->prev)
        g->prev->next = g->next;
    else
        n->lingers = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        n->lingers_tail = g->prev;
    free(g);
}

/* Write what the socket takes; once the queue is empty, send the FIN (and
 * end, if the peer has closed its side).  0, or -1 when g has ended. */
static int linger_flush(rtmp_linger *g)
{
    char why[300];
    int rc = out_write(g->fd, g->tls, &g->q, &g->written, why, sizeof why);
    if (rc < 0) {
        linger_end(g, why);
        return -1;
    }
    if (rc == 0) {
        ev_io_start(g->net->loop, &g->wio);
        return 0;
    }
    ev_io_stop(g->net->loop, &g->wio);
    rtmp_outq_clear(&g->q);
    tls_close_notify(g->tls);
    shutdown(g->fd, SHUT_WR);
    if (g->peer_done) {
        linger_end(g, "peer closed");
        return -1;
    }
    return 0;
}

static void linger_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    linger_flush(w->data);
}

static void linger_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_linger *g = w->data;
    ssize_t got = read(g->fd, g->net->rbuf, sizeof g->net->rbuf);
    if (got > 0) {
        g->dropped += (uint64_t)got;
        return;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (got < 0) {
        linger_end(g, strerror(errno));
        return;
    }
    /* The peer closed its side.  It may still read: finish writing first. */
    ev_io_stop(loop, w);
    g->peer_done = 1;
    if (g->q.bytes == 0)
        linger_end(g, "peer closed");
}

static void linger_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    linger_end(w->data, "linger timeout");
}

/* Take c's socket and the output still queued on it (none after
 * rtmp_conn_drop) into a linger.  Leaves c->fd alone when it cannot. */
static void linger_start(rtmp_conn *c)
{
    rtmp_net *n = c->net;
    if (c->cfg.linger <= 0 || c->fd < 0 || c->connecting)
        return;
    rtmp_linger *g = calloc(1, sizeof *g);
    if (!g)
        return;
    rtmp_outq *q = conn_queue(c);
    /* the queue goes along unless dropped, or it could only go in the clear:
     * before the TLS handshake, or after TLS failed (c->tls is then left
     * behind, and the socket would write the queue as it is) */
    if (!c->drop_output && conn_writable(c) && !(c->tls && c->tls->fatal)) {
        g->q = *q;
        memset(q, 0, sizeof *q);
    } else if (c->tls) { /* records sealed from the queue left behind: they still go, whole */
        c->tls->out_plain = 0;
    }
    if (c->tls && c->tls->open && !c->tls->fatal) { /* written through it, then close_notify */
        g->tls = c->tls;
        c->tls = NULL;
    }
    g->net = n;
    g->fd = c->fd;
    c->fd = -1;
    g->id = c->id;
    memcpy(g->peer, c->peer, sizeof g->peer);
    memcpy(g->addr, c->addr, sizeof g->addr); /* the socket still counts for its address */
    g->addr_len = c->addr_len;
    c->addr_len = 0;
    ev_io_init(&g->rio, linger_read_cb, g->fd, EV_READ);
    ev_io_init(&g->wio, linger_write_cb, g->fd, EV_WRITE);
    ev_timer_init(&g->timer, linger_timeout_cb, c->cfg.linger, 0);
    g->rio.data = g->wio.data = g->timer.data = g;
    g->prev = n->lingers_tail;
    if (n->lingers_tail)
        n->lingers_tail->next = g;
    else
        n->lingers = g;
    n->lingers_tail = g;
    ev_io_start(n->loop, &g->rio);
    ev_timer_start(n->loop, &g->timer);
    linger_flush(g);
}

int rtmp_net_lingering(const rtmp_net *n, unsigned long id)
{
    for (const rtmp_linger *g = n->lingers; g; g = g->next)
        if (g->id == id)
            return 1;
    return 0;
}

static void conn_free(rtmp_conn *c)
{
    rtmp_net *n = c->net;
    ev_io_stop(n->loop, &c->rio);
    ev_io_stop(n->loop, &c->wio);
    ev_timer_stop(n->loop, &c->deadline);
    ev_timer_stop(n->loop, &c->merge);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    linger_start(c);
    if (c->fd >= 0) {
        tls_close_notify(c->tls);
        close(c->fd);
    }
    tls_free(c->tls);
    if (c->addr_len)
        addr_release(n, c->addr, c->addr_len);
    rtmp_conn_core_free(c->cc);
    rtmp_outq_clear(&c->pq);
    free(c);
}

/* Records are sealed ahead into this buffer for the connections of one
 * window of the dirty list (own_seal_ahead), then written one connection
 * after another; what a socket does not take is copied to its t->out. */
#define OWN_AHEAD 16 /* connections in a window at most */
static uint8_t own_ahead[128 * 1024];
/* (so a window's first connection always fits: own_seal_room <= OWN_OUT) */
_Static_assert(OWN_OUT <= sizeof own_ahead, "own_ahead holds a whole batch");

/* Ask the CPU for what own_seal_ahead reads of the entries after c, each
 * line a step before it is read, in stages as fan_out's (group.c).  The
 * list is a chain of pointers, so every address here comes from lines
 * asked for one step earlier: three entries ahead, the entry's lines
 * own_seal_ahead reads (fan_out and mark_dirty touch others); two ahead, its
 * TLS state up to the names (rtmp_tls) and its queue's lines; one ahead,
 * its cipher state (rtmp_tlsrec_prefetch).  Asked for one entry ahead
 * instead, each of these misses waited for the one before it
 * (docs/TLS.md, "The I/O").  Nothing is written here. */
static void own_prefetch(const rtmp_conn *c)
{
    const rtmp_conn *c1 = c->next_dirty, *c2 = c1 ? c1->next_dirty : NULL, *c3 = c2 ? c2->next_dirty : NULL;
    if (c3) {
        __builtin_prefetch(c3);
        __builtin_prefetch(&c3->tls);
        __builtin_prefetch(&c3->s);
        __builtin_prefetch(&c3->cfg.passthrough);
    }
    if (c2 && c2->tls) {
        rtmp_prefetch_range(c2->tls, offsetof(rtmp_tls, sni));
        if (c2->cfg.passthrough)
            __builtin_prefetch(&c2->pq);
        else
            rtmp_session_prefetch(c2->s);
    }
    if (c1 && c1->tls && c1->tls->own)
        rtmp_tlsrec_prefetch(&c1->tls->rec);
}

/* Seal the next batch (own_seal) of each connection on our own TLS
 * records in the window of the dirty list that begins at c, one after
 * another into own_ahead, and return the window's length: the list
 * entries process_pending takes next (at least one: the first always fits).  Their flush sends
 * these batches first (own_write_queue).  Sealing one record after
 * another keeps the cipher's code and the buffer in the caches, where a
 * write's system call between each two would evict them; what the
 * next entries read is asked for ahead (own_prefetch).  Nothing
 * between this and the window's flushes changes the queues sealed from
 * or the list: no handler runs in process_pending's dirty loop. */
static int own_seal_ahead(rtmp_conn *c)
{
    size_t used = 0;
    int k = 0;
    if (!c->tls) /* (a plain connection: no window) */
        return 1;
    for (; c && k < OWN_AHEAD; c = c->next_dirty, k++) {
        own_prefetch(c);
        rtmp_tls *t = c->tls;
        if (!t || !t->own || t->fatal || !conn_writable(c) || t->out_off < t->out_len)
            continue; /* (its flush seals what it sends, if anything) */
        assert(t->ahead_len == 0); /* (every batch sealed ahead was sent by its flush) */
        rtmp_outq *q = conn_queue(c);
        if (used + own_seal_room(q) > sizeof own_ahead)
            break;
        size_t plain, len = own_seal(t, q, own_ahead + used, &plain);
        if (len == SIZE_MAX) { /* (its flush then writes nothing: t is fatal) */
            t->fatal = 1;
            rtmp_conn_fail(c, OWN_SEAL_FAILED);
            continue;
        }
        t->ahead = own_ahead + used;
        t->ahead_len = len;
        t->ahead_plain = plain;
        used += len;
    }
    return k;
}

static void process_pending(rtmp_net *n)
{
    while (n->dirty || n->closing) {
        int ahead = 0; /* dirty list entries left in the window sealed ahead */
        while (n->dirty) {
            if (ahead == 0)
                ahead = own_seal_ahead(n->dirty);
            ahead--;
            rtmp_conn *c = n->dirty;
            n->dirty = c->next_dirty;
            c->dirty = 0;
            if (conn_writable(c))
                flush(c);
        }
        if (n->closing) {
            rtmp_conn *c = n->closing;
            n->closing = c->next_closing;
            if (conn_writable(c))
                flush(c); /* best effort: what the socket takes now */
            if (c->dirty) { /* unlink from the dirty list */
                rtmp_conn **pp = &n->dirty;
                while (*pp != c)
                    pp = &(*pp)->next_dirty;
                *pp = c->next_dirty;
            }
            const char *reason = rtmp_conn_core_reason(c->cc);
            conn_log(c, c->close_level, "close: %s (in %llu bytes, out %llu bytes)", reason,
                     (unsigned long long)c->nread, (unsigned long long)c->written);
            if (c->h.close)
                c->h.close(c, c->ud, reason);
            conn_free(c);
        }
    }
}

/* The output bound (max_output, conn.h): 0, or < 0 when c is closing or
 * was just closed as a slow reader. */
static int check_output_bound(rtmp_conn *c)
{
    return rtmp_conn_core_check_output(c->cc, rtmp_conn_pending(c));
}

/* Write c's output before the loop next waits. */
static void mark_dirty(rtmp_conn *c)
{
    ev_timer_stop(c->net->loop, &c->merge); /* everything goes out now */
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = c->net->dirty;
        c->net->dirty = c;
    }
}

/* Media: within the merge window, unless something flushes it sooner. */
static void mark_media(rtmp_conn *c)
{
    if (c->cfg.merge_window <= 0) {
        mark_dirty(c);
        return;
    }
    if (!c->dirty && !ev_is_active(&c->merge)) {
        ev_timer_set(&c->merge, c->cfg.merge_window, 0);
        ev_timer_start(c->net->loop, &c->merge);
    }
}

/* The core's output handler (rtmp_conn_core_output: the bound held). */
static void on_output(void *ud, int media)
{
    if (media)
        mark_media(ud);
    else
        mark_dirty(ud);
}

int rtmp_conn_output_media(rtmp_conn *c)
{
    int rc = check_output_bound(c);
    if (rc < 0)
        return rc;
    mark_media(c);
    return 0;
}

static void merge_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_conn_output(w->data);
}

int rtmp_conn_write(rtmp_conn *c, const uint8_t *p, size_t n)
{
    if (!c->cfg.passthrough)
        return RTMP_ERR_INVAL;
    if (c->closing)
        return RTMP_ERR_CLOSED;
    if (n == 0)
        return 0;
    rtmp_buf *b = rtmp_buf_new(n);
    if (!b)
        return RTMP_ERR_NOMEM;
    memcpy(b->data, p, n);
    b->len = n;
    int rc = rtmp_outq_push(&c->pq, b, 0, n);
    rtmp_buf_unref(b); /* the queue holds its own reference */
    return rc < 0 ? rc : rtmp_conn_output(c);
}

size_t rtmp_conn_pending(const rtmp_conn *c)
{
    return c->cfg.passthrough ? c->pq.bytes : rtmp_session_pending(c->s);
}

void rtmp_conn_exempt_queued(rtmp_conn *c)
{
    rtmp_conn_core_exempt_queued(c->cc);
}

size_t rtmp_conn_exempt(const rtmp_conn *c)
{
    return rtmp_conn_core_exempt(c->cc);
}

int rtmp_conn_output(rtmp_conn *c)
{
    int rc = check_output_bound(c);
    if (rc < 0)
        return rc;
    mark_dirty(c);
    return 0;
}

static int on_ready(void *ud)
{
    rtmp_conn *c = ud;
    static const char *const kinds[] = { "unknown", "plain", "digest layout 1", "digest layout 2" };
    rtmp_session_info info;
    rtmp_session_get_info(c->s, &info);
    conn_log(c, RTMP_LOG_DEBUG, "handshake done (peer: %s)",
             info.hs_peer_kind >= 0 && info.hs_peer_kind <= 3 ? kinds[info.hs_peer_kind] : "?");
    if (c->h.ready && c->h.ready(c, c->ud) < 0)
        return RTMP_ERR_STOP;
    return 0;
}

static int on_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    rtmp_conn *c = ud;
    return c->h.message ? c->h.message(c, c->ud, h, payload, applied) : 0;
}

/* Arm the deadline timer at the core's next deadline, unless it is armed
 * no later (conn.h: a timer that fires early asks again). */
static void arm_deadline(rtmp_conn *c, int always)
{
    double next = rtmp_conn_core_next_deadline(c->cc);
    if (!always && c->deadline_at > 0 && (next == 0 || next >= c->deadline_at))
        return;
    ev_timer_stop(c->net->loop, &c->deadline);
    c->deadline_at = next;
    if (next > 0) {
        double now = ev_now(c->net->loop);
        ev_timer_set(&c->deadline, next > now ? next - now : 0.001, 0);
        ev_timer_start(c->net->loop, &c->deadline);
    }
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_conn *c = w->data;
    c->deadline_at = 0;
    if (!rtmp_conn_core_tick(c->cc, ev_now(loop)))
        arm_deadline(c, 1);
}

/* Bytes read (plaintext on a TLS connection): to the data handler of a
 * passthrough connection, else into the connection's session. */
static void deliver(rtmp_conn *c, const uint8_t *p, size_t len)
{
    ev_tstamp now = ev_now(c->net->loop);
    c->nread += (uint64_t)len;
    if (c->cfg.passthrough) { /* a byte pipe: any byte is activity */
        rtmp_conn_core_activity(c->cc, now);
        if (c->h.data && !c->closing)
            c->h.data(c, c->ud, p, len);
        return;
    }
    rtmp_conn_core_feed(c->cc, p, len, now); /* an error closes c */
    if (rtmp_session_pending(c->s))
        rtmp_conn_output(c);
    if (c->closing)
        return;
    arm_deadline(c, 0);
    c->warm.n = 0; /* the core's lines first: the owner's are left out past the bound */
    rtmp_conn_core_warm(c->cc, &c->warm);
    if (c->h.warm)
        c->h.warm(c, c->ud, &c->warm);
}

/* Whether b is what an RTMP peer sends first (C0, S0), as the handshake
 * decides it. */
static int is_rtmp_c0(uint8_t b)
{
    rtmp_handshake *hs = rtmp_handshake_new(RTMP_ROLE_SERVER, 0);
    rtmp_buf *out = NULL;
    int yes = hs && rtmp_handshake_feed(hs, &b, 1, &out) == 1;
    rtmp_buf_unref(out);
    rtmp_handshake_free(hs);
    return yes;
}

static void tls_read(rtmp_conn *c);

/* The TLS handshake is complete: log what was negotiated, then start
 * what waited for it (a client's RTMP handshake, queued output). */
static void tls_ready(rtmp_conn *c)
{
    rtmp_tls *t = c->tls;
    rtmp_net *n = c->net;
    t->open = 1;
    t->ktls_send = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) ? 1 : 0;
    t->ktls_recv = BIO_get_ktls_recv(SSL_get_rbio(t->ssl)) ? 1 : 0;
    const char *not_own = "";
    own_start(t, &not_own);
    if (t->server) {
        const char *sn = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(t->sni, sizeof t->sni, "%s", sn ? sn : "");
    }
    conn_log(c, RTMP_LOG_INFO, "TLS: %s %s, SNI %s, %s, output %s%s%s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl), t->sni[0] ? t->sni : "none",
             t->server ? "no client certificate asked"
                       : t->verify ? "certificate verified" : "certificate NOT verified (insecure)",
             t->ktls_send ? "kTLS send (writev of shared buffers)"
             : t->own ? "TLS records of up to 16 KiB sealed by luartmp (no kTLS send)"
                      : "TLS records of up to 16 KiB by SSL_write (no kTLS send; not sealed by luartmp: ",
             t->own || t->ktls_send ? "" : not_own, t->own || t->ktls_send ? "" : ")");
    ev_io_stop(n->loop, &c->wio); /* (paused: the read watcher stays, to see the peer close: paused_peek) */
    if (!c->accepted && !c->cfg.passthrough && rtmp_conn_core_start(c->cc) < 0) {
        rtmp_conn_close(c, "handshake: out of memory");
        return;
    }
    if (rtmp_conn_pending(c) > 0)
        rtmp_conn_output(c);
    tls_read(c); /* what came with the handshake's last flight */
}

/* The peer's first byte, before OpenSSL reads it: a TLS peer's first
 * record is a handshake (or an alert); anything else is closed with a
 * clear reason (a plain RTMP peer sends C0, or answers with S0).
 * 1: go on with the TLS handshake; 0: wait (a server has nothing yet);
 * -1: c was closed. */
static int tls_check_first_byte(rtmp_conn *c)
{
    rtmp_tls *t = c->tls;
    uint8_t b;
    ssize_t got = recv(c->fd, &b, 1, MSG_PEEK);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return t->server ? 0 : 1; /* a client has its ClientHello to send */
    if (got == 0 && t->server) { /* gone before a word: as on a plain port */
        rtmp_conn_core_peer_closed(c->cc);
        return -1;
    }
    if (got <= 0)
        return 1; /* OpenSSL reports it */
    t->peeked = 1;
    if (b == RTMP_TLS_HANDSHAKE || b == RTMP_TLS_ALERT) /* a record's content type (tlsinfo.h) */
        return 1;
    char reason[200];
    int rtmp = is_rtmp_c0(b);
    if (t->server)
        snprintf(reason, sizeof reason, rtmp ? "plain RTMP on a TLS port (first byte 0x%02x, not a TLS handshake):"
                 " the client must use rtmps://" : "not a TLS handshake (first byte 0x%02x)", b);
    else
        snprintf(reason, sizeof reason, rtmp ? "TLS handshake: the server answered in plain RTMP (first byte 0x%02x):"
                 " not an rtmps:// port" : "TLS handshake: the server's answer is not TLS (first byte 0x%02x)", b);
    t->fatal = 1;
    rtmp_conn_fail(c, reason);
    return -1;
}

/* Why the TLS handshake failed (SSL_get_error e), into out. */
static void tls_handshake_error(rtmp_conn *c, int e, char *out, size_t len)
{
    rtmp_tls *t = c->tls;
    long v = t->verify ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        char subject[256] = "?";
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl); /* the server's first */
        X509 *cert = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
        if (cert)
            X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
        snprintf(out, len, "TLS handshake: certificate verify failed: %s (certificate %.150s%s%.100s)",
                 X509_verify_cert_error_string(v), subject,
                 v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH ? ", wanted " : "",
                 v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH ? t->name : "");
        return;
    }
    if (!t->server && !t->peeked && ERR_peek_last_error() == 0) /* closed without a word */
        snprintf(out, len, "TLS handshake: the server closed the connection without answering"
                 " (not an rtmps:// port?)");
    else
        tls_error_text(t->ssl, e, "TLS handshake", out, len);
}

/* Drive the TLS handshake as far as the socket allows. */
static void tls_handshake(rtmp_conn *c)
{
    rtmp_tls *t = c->tls;
    if (!t->peeked && tls_check_first_byte(c) <= 0)
        return;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        tls_ready(c);
        return;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        ev_io_stop(c->net->loop, &c->wio); /* the read watcher runs during the handshake */
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        ev_io_start(c->net->loop, &c->wio);
        return;
    }
    char reason[512];
    tls_handshake_error(c, e, reason, sizeof reason);
    t->fatal = 1;
    rtmp_conn_fail(c, reason);
}

/* Read and decrypt what there is (up to TLS_READ_BUDGET, then libev
 * comes back while the socket has more; OpenSSL's buffered records are
 * read first, the socket would not announce them). */
static void tls_read(rtmp_conn *c)
{
    rtmp_tls *t = c->tls;
    rtmp_net *n = c->net;
    if (!t->open) {
        tls_handshake(c);
        return;
    }
    if (t->write_wants_read) { /* an SSL_write waited for this */
        t->write_wants_read = 0;
        mark_dirty(c);
    }
    size_t total = 0;
    while (!c->closing && !c->read_paused && !t->fatal) {
        size_t got;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, n->rbuf, sizeof n->rbuf, &got);
        if (r > 0) {
            deliver(c, n->rbuf, got);
            total += got;
            if (total >= TLS_READ_BUDGET && !SSL_pending(t->ssl) && !SSL_has_pending(t->ssl))
                break;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) { /* (a KeyUpdate answer, say): go on once writable */
            t->read_wants_write = 1;
            ev_io_start(n->loop, &c->wio);
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify, or an end without it */
            rtmp_conn_core_peer_closed(c->cc);
            break;
        }
        char reason[300];
        t->fatal = 1;
        tls_error_text(t->ssl, e, "read", reason, sizeof reason);
        rtmp_conn_fail(c, reason);
        break;
    }
    if (t->key_update_asked && !c->closing) /* our KeyUpdate goes out now, not with the next media */
        mark_dirty(c);
}

/* Readable while reading is paused: whether the peer closed (a FIN with
 * nothing before it), without taking a byte.  Bytes waiting stop the
 * watch until reading resumes (the kernel's buffer holds them; a close
 * behind them is seen then). */
static void paused_peek(rtmp_conn *c)
{
    uint8_t b;
    ssize_t got = recv(c->fd, &b, 1, MSG_PEEK);
    if (got == 0) {
        rtmp_conn_core_peer_closed(c->cc);
    } else if (got > 0) {
        ev_io_stop(c->net->loop, &c->rio);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        char reason[128];
        snprintf(reason, sizeof reason, "read: %s", strerror(errno));
        rtmp_conn_fail(c, reason);
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_conn *c = w->data;
    rtmp_net *n = c->net;
    rtmp_warm_prefetch(&c->warm); /* the misses then overlap the read */
    if (c->read_paused && (!c->tls || c->tls->open)) {
        paused_peek(c);
        return;
    }
    if (c->tls) {
        tls_read(c);
        return;
    }
    ssize_t got = read(c->fd, n->rbuf, sizeof n->rbuf);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        char reason[128];
        snprintf(reason, sizeof reason, "read: %s", strerror(errno));
        rtmp_conn_fail(c, reason);
        return;
    }
    if (got == 0) {
        rtmp_conn_core_peer_closed(c->cc);
        return;
    }
    if (c->nread == 0 && c->accepted && !c->cfg.passthrough && n->rbuf[0] == RTMP_TLS_HANDSHAKE) {
        c->nread += (uint64_t)got;
        rtmp_conn_fail(c, "a TLS handshake on a plain RTMP port (first byte 0x16): this listener is rtmp://,"
                          " not rtmps://");
        return;
    }
    deliver(c, n->rbuf, (size_t)got);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_conn *c = w->data;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            char reason[128];
            snprintf(reason, sizeof reason, "connect: %s", strerror(err));
            ev_io_stop(loop, w);
            c->connecting = 0;
            close(c->fd);
            c->fd = -1;
            rtmp_conn_fail(c, reason);
            return;
        }
        c->connecting = 0;
        ev_io_stop(loop, w);
        conn_log(c, RTMP_LOG_DEBUG, "connected");
        if (c->tls) { /* first the TLS handshake, reading whatever the pause */
            ev_io_start(loop, &c->rio);
            tls_handshake(c);
            return;
        }
        if (!c->read_paused)
            ev_io_start(loop, &c->rio);
        if (c->cfg.passthrough) { /* no handshake: send what was queued meanwhile */
            if (c->pq.bytes > 0)
                rtmp_conn_output(c);
            return;
        }
        if (rtmp_conn_core_start(c->cc) < 0) {
            rtmp_conn_close(c, "handshake: out of memory");
            return;
        }
        rtmp_conn_output(c);
        return;
    }
    if (c->tls && !c->tls->open) {
        tls_handshake(c);
        return;
    }
    if (c->tls && c->tls->read_wants_write) {
        c->tls->read_wants_write = 0;
        tls_read(c);
    }
    flush(c);
}

static rtmp_conn *conn_new(rtmp_net *n, int fd, const rtmp_conn_config *cfg, const rtmp_conn_handler *h, void *ud)
{
    rtmp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    static const rtmp_conn_core_handler ch = { on_ready, on_message, on_closing, on_output };
    c->cc = rtmp_conn_core_new(cfg, &ch, c, ev_now(n->loop));
    if (!c->cc) {
        free(c);
        return NULL;
    }
    c->s = rtmp_conn_core_session(c->cc);
    c->net = n;
    c->fd = fd;
    c->cfg = *cfg;
    c->h = *h;
    c->ud = ud;
    c->id = rtmp_net_new_id(n);
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    ev_init(&c->deadline, deadline_cb);
    ev_init(&c->merge, merge_cb);
    c->rio.data = c->wio.data = c->deadline.data = c->merge.data = c;
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    arm_deadline(c, 1);
    return c;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, len, "[%s]:%d", host, port);
    } else {
        snprintf(out, len, "?");
    }
}

static void tune_socket(int fd, const rtmp_conn_config *cfg)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cfg->send_buffer > 0) { /* a fixed kernel send buffer (no autotuning) */
        int size = cfg->send_buffer > (1 << 30) ? 1 << 30 : (int)cfg->send_buffer;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    if (cfg->recv_buffer > 0) {
        int size = cfg->recv_buffer > (1 << 30) ? 1 << 30 : (int)cfg->recv_buffer;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
}

void rtmp_conn_pause_reading(rtmp_conn *c, int paused)
{
    if (c->closing || c->fd < 0)
        return;
    c->read_paused = paused != 0;
    if (paused) {
        /* the read watcher stays, to see the peer close: paused_peek */
    } else if (!c->connecting) {
        ev_io_start(c->net->loop, &c->rio);
        /* decrypted bytes OpenSSL holds: the socket will not announce them */
        if (c->tls && c->tls->open && (SSL_pending(c->tls->ssl) > 0 || SSL_has_pending(c->tls->ssl)))
            ev_feed_event(c->net->loop, &c->rio, EV_READ);
    }
}

/* ---- out of descriptors ---- */

static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_listener *l = w->data;
    for (int i = 0; i < l->nfds; i++)
        ev_io_start(loop, &l->io[i]);
}

/* accept() failed with err for want of a descriptor (or of kernel memory).
 * Make room by ending the oldest linger (1: try again), or stop accepting
 * on l for ACCEPT_RESUME seconds (0): the pending connection keeps the
 * listening socket readable, and trying again at once would spin the loop
 * (and the log) at full speed until some connection ends. */
static int accept_starved(rtmp_listener *l, int err)
{
    rtmp_net *n = l->net;
    if (n->lingers) {
        linger_end(n->lingers, "its descriptor is needed");
        return 1;
    }
    if (l->starved_since == 0) {
        unsigned open = 0;
        for (const rtmp_conn *c = n->conns; c; c = c->next)
            open++;
        l->starved_since = ev_now(n->loop);
        rtmp_log(RTMP_LOG_WARN, 0, NULL, "accept: %s: %u connections open, none lingering;"
                 " not accepting until one ends (trying every %.1f s)", strerror(err), open, ACCEPT_RESUME);
    }
    for (int i = 0; i < l->nfds; i++)
        ev_io_stop(n->loop, &l->io[i]);
    ev_timer_set(&l->resume, ACCEPT_RESUME, 0);
    ev_timer_start(n->loop, &l->resume);
    return 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rtmp_listener *l = w->data;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                if (accept_starved(l, err))
                    continue;
                return;
            }
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED)
                rtmp_log(RTMP_LOG_WARN, 0, NULL, "accept: %s", strerror(err));
            return;
        }
        if (l->starved_since) {
            rtmp_log(RTMP_LOG_INFO, 0, NULL, "accept: accepting again after %.1f s without descriptors",
                     ev_now(loop) - l->starved_since);
            l->starved_since = 0;
        }
        uint8_t key[16];
        uint8_t klen = addr_key((struct sockaddr *)&ss, key);
        unsigned open_now = klen ? addr_open(l->net, key, klen) : 0;
        if (l->cfg.max_per_address > 0 && open_now >= l->cfg.max_per_address) {
            char peer[64], host[INET6_ADDRSTRLEN] = "?";
            format_addr((struct sockaddr *)&ss, peer, sizeof peer);
            inet_ntop(ss.ss_family, key, host, sizeof host);
            rtmp_log(RTMP_LOG_WARN, 0, NULL, "refused %s: %u connections open from %s (max_per_address %u)",
                     peer, open_now, host, l->cfg.max_per_address);
            close(fd);
            continue;
        }
        tune_socket(fd, &l->cfg);
        rtmp_tls *t = NULL;
        rtmp_conn *c = NULL;
        if (!l->tls_ctx || (t = tls_new(l->tls_ctx, fd, 1, l->tls_openssl_records)) != NULL)
            c = conn_new(l->net, fd, &l->cfg, &l->h, l->ud);
        if (!c) {
            rtmp_log(RTMP_LOG_ERROR, 0, NULL, "accept: out of memory");
            tls_free(t);
            close(fd);
            continue;
        }
        c->tls = t;
        c->accepted = 1;
        if (klen && addr_acquire(l->net, key, klen) == 0) {
            memcpy(c->addr, key, klen);
            c->addr_len = klen;
        }
        format_addr((struct sockaddr *)&ss, c->peer, sizeof c->peer);
        rtmp_conn_core_set_label(c->cc, c->id, c->peer);
        conn_log(c, RTMP_LOG_DEBUG, "accepted%s", t ? " (TLS)" : "");
        ev_io_start(loop, &c->rio);
        if (c->h.open)
            c->h.open(c, c->ud);
    }
}

/* ---- accessors ---- */

rtmp_session *rtmp_conn_session(rtmp_conn *c) { return c->s; }
rtmp_conn_core *rtmp_conn_get_core(rtmp_conn *c) { return c->cc; }
unsigned long rtmp_conn_id(const rtmp_conn *c) { return c->id; }
const char *rtmp_conn_peer(const rtmp_conn *c) { return c->peer; }

void rtmp_conn_local(const rtmp_conn *c, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    out[0] = '\0';
    if (c->fd >= 0 && !c->connecting && getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0)
        format_addr((struct sockaddr *)&ss, out, len);
}
uint64_t rtmp_conn_bytes_written(const rtmp_conn *c) { return c->written; }
int rtmp_conn_closing(const rtmp_conn *c) { return c->closing; }
void rtmp_conn_set_ud(rtmp_conn *c, void *ud) { c->ud = ud; }
void *rtmp_conn_get_ud(const rtmp_conn *c) { return c->ud; }
const rtmp_conn_config *rtmp_conn_get_config(const rtmp_conn *c) { return &c->cfg; }

uint64_t rtmp_conn_bytes_in(const rtmp_conn *c) { return c->nread; }

int rtmp_conn_tls(const rtmp_conn *c, rtmp_tls_info *info)
{
    const rtmp_tls *t = c->tls;
    if (!t)
        return -1;
    memset(info, 0, sizeof *info);
    info->done = t->open;
    info->sni = t->sni;
    if (t->open) {
        info->version = SSL_get_version(t->ssl);
        info->cipher = SSL_get_cipher_name(t->ssl);
        info->ktls_send = t->ktls_send;
        info->ktls_recv = t->ktls_recv;
        info->own_records = t->own;
        info->peer_verified = !t->server && t->verify && SSL_get_verify_result(t->ssl) == X509_V_OK;
    }
    return 0;
}

size_t rtmp_conn_memory(const rtmp_conn *c)
{
    size_t n = sizeof *c + rtmp_conn_core_memory(c->cc) + c->pq.cap * sizeof *c->pq.segs;
    if (c->tls) /* ours; OpenSSL's own buffers (about two records) are not counted */
        n += sizeof *c->tls + (c->tls->stage ? TLS_RECORD : 0) + (c->tls->out ? OWN_OUT : 0);
    for (size_t i = 0; i < c->pq.count; i++) /* each a buffer of its own (rtmp_conn_write) */
        n += sizeof(rtmp_buf) + c->pq.segs[(c->pq.head + i) % c->pq.cap].buf->cap;
    return n;
}

/* ---- listening and connecting ---- */

/* Split "host:port", "[v6]:port", "*:port" or "port" into host (NULL for
 * any) and port.  0 or -1. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, int *any)
{
    const char *colon;
    *any = 0;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= hostlen)
            return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = 0;
        colon = end + 1;
    } else if ((colon = strrchr(addr, ':')) != NULL) {
        if ((size_t)(colon - addr) >= hostlen)
            return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        if (strcmp(host, "*") == 0 || host[0] == 0)
            *any = 1;
    } else {
        *any = 1;
        colon = addr - 1;
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
        return -1;
    strcpy(port, colon + 1);
    return 0;
}

/* A listen address: the forms of split_addr, after rtmp:// or rtmps://
 * (*tls = 1) or none.  0, or -1 with the message in err. */
static int parse_listen(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, int *any,
                        int *tls, char *err, size_t errlen)
{
    size_t skip = rtmp_url_scheme(addr, strlen(addr), tls);
    const char *rest = addr + skip;
    if ((skip == 0 && strstr(addr, "://")) || strchr(rest, '/')
        || split_addr(rest, host, hostlen, port, portlen, any) < 0) {
        snprintf(err, errlen, "bad listen address '%s' (want PORT, HOST:PORT or [V6]:PORT; after rtmps:// for TLS)",
                 addr);
        return -1;
    }
    return 0;
}

/* A listening socket for one address, or -1 with why in err and the
 * cause in errno. */
static int listen_one(const struct addrinfo *ai, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    char where[80];
    format_addr(ai->ai_addr, where, sizeof where);
    snprintf(err, errlen, "listen %s: %s", where, strerror(e));
    if (fd >= 0)
        close(fd);
    errno = e;
    return -1;
}

/* Listening sockets for host:port (any: every local address) into fds
 * (at most MAX_LISTEN_FDS): how many, or -1 with why in err.  An address
 * that fails beside one that works is left out (a host without IPv6),
 * unless it is in use: a port that another socket holds on one of the
 * addresses fails all of them, rather than serve the others alone. */
static int listen_fds(const char *addr, const char *host, const char *port, int any, int *fds, char *err,
                      size_t errlen)
{
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res;
    int gai = getaddrinfo(any ? NULL : host, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "listen %s: %s", addr, gai_strerror(gai));
        return -1;
    }
    int nfds = 0, taken = 0;
    char firsterr[256] = "", scratch[256];
    const struct addrinfo *bound[MAX_LISTEN_FDS];
    for (struct addrinfo *ai = res; ai && nfds < MAX_LISTEN_FDS && !taken; ai = ai->ai_next) {
        int again = 0; /* the resolver may name one address twice (/etc/hosts) */
        for (int i = 0; i < nfds && !again; i++)
            again = bound[i]->ai_addrlen == ai->ai_addrlen && !memcmp(bound[i]->ai_addr, ai->ai_addr, ai->ai_addrlen);
        if (again)
            continue;
        int fd = listen_one(ai, scratch, sizeof scratch);
        if (fd >= 0) {
            bound[nfds] = ai;
            fds[nfds++] = fd;
            continue;
        }
        taken = errno == EADDRINUSE;
        if (!firsterr[0] || taken)
            snprintf(firsterr, sizeof firsterr, "%s", scratch);
    }
    freeaddrinfo(res);
    if (taken)
        while (nfds > 0)
            close(fds[--nfds]);
    if (nfds == 0) {
        snprintf(err, errlen, "%s", firsterr[0] ? firsterr : "no address to listen on");
        return -1;
    }
    return nfds;
}

/* One address of rtmp_net_check_listen: its sockets stay open in fds
 * (how many in *nfds), so that the next address is bound beside them. */
static int check_one(const char *addr, const rtmp_tls_config *tls, int *fds, int *nfds, char *err, size_t errlen)
{
    char host[256], port[32], why[400];
    int any, use_tls;
    if (parse_listen(addr, host, sizeof host, port, sizeof port, &any, &use_tls, err, errlen) < 0)
        return -1;
    if (use_tls) {
        SSL_CTX *ctx = tls_server_ctx(tls, why, sizeof why);
        if (!ctx) {
            snprintf(err, errlen, "listen %s: %s", addr, why);
            return -1;
        }
        SSL_CTX_free(ctx);
    }
    int n = listen_fds(addr, host, port, any, fds, err, errlen); /* can it be bound now? */
    if (n < 0)
        return -1;
    *nfds = n;
    return 0;
}

int rtmp_net_check_listen(const char *const *addrs, int n, const rtmp_tls_config *tls, char *err, size_t errlen)
{
    int fds[RTMP_NET_CHECK_MAX][MAX_LISTEN_FDS], nfds[RTMP_NET_CHECK_MAX] = { 0 }, rc = 0, k;
    if (n > RTMP_NET_CHECK_MAX) {
        snprintf(err, errlen, "more than %d listen addresses", RTMP_NET_CHECK_MAX);
        return -1;
    }
    for (k = 0; k < n && rc == 0; k++)
        rc = check_one(addrs[k], tls, fds[k], &nfds[k], err, errlen);
    while (k-- > 0)
        for (int i = 0; i < nfds[k]; i++)
            close(fds[k][i]);
    return rc;
}

int rtmp_net_listen_sockets(const char *addr, int *fds, int max, char *err, size_t errlen)
{
    char host[256], port[32];
    int any, use_tls, all[MAX_LISTEN_FDS];
    if (parse_listen(addr, host, sizeof host, port, sizeof port, &any, &use_tls, err, errlen) < 0)
        return -1;
    if (use_tls) {
        snprintf(err, errlen, "listen %s: no TLS here", addr);
        return -1;
    }
    int nfds = listen_fds(addr, host, port, any, all, err, errlen);
    for (int i = 0; i < nfds; i++)
        if (i < max)
            fds[i] = all[i];
        else
            close(all[i]);
    return nfds < 0 ? -1 : nfds < max ? nfds : max;
}

void rtmp_net_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    format_addr(sa, out, len);
}

rtmp_listener *rtmp_net_listen(rtmp_net *n, const char *addr, const rtmp_conn_config *cfg,
                               const rtmp_tls_config *tls, const rtmp_conn_handler *h, void *ud,
                               char *err, size_t errlen)
{
    char host[256], port[32], why[400];
    int any, use_tls;
    if (parse_listen(addr, host, sizeof host, port, sizeof port, &any, &use_tls, err, errlen) < 0)
        return NULL;
    SSL_CTX *ctx = NULL;
    if (use_tls && !(ctx = tls_server_ctx(tls, why, sizeof why))) {
        snprintf(err, errlen, "listen %s: %s", addr, why);
        return NULL;
    }
    rtmp_listener *l = calloc(1, sizeof *l);
    int fds[MAX_LISTEN_FDS], nfds = l ? listen_fds(addr, host, port, any, fds, err, errlen) : -1;
    if (nfds < 0) {
        if (!l)
            snprintf(err, errlen, "out of memory");
        SSL_CTX_free(ctx);
        free(l);
        return NULL;
    }
    l->tls_ctx = ctx;
    l->tls_openssl_records = tls && tls->openssl_records;
    for (int i = 0; i < nfds; i++) {
        ev_io_init(&l->io[i], accept_cb, fds[i], EV_READ);
        l->io[i].data = l;
    }
    l->nfds = nfds;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(l->io[0].fd, (struct sockaddr *)&ss, &sl) == 0)
        l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    l->net = n;
    ev_timer_init(&l->resume, accept_resume_cb, ACCEPT_RESUME, 0);
    l->resume.data = l;
    l->cfg = *cfg;
    l->h = *h;
    l->ud = ud;
    for (int i = 0; i < l->nfds; i++) {
        ev_io_start(n->loop, &l->io[i]);
        char where[80];
        struct sockaddr_storage s2;
        socklen_t l2 = sizeof s2;
        getsockname(l->io[i].fd, (struct sockaddr *)&s2, &l2);
        format_addr((struct sockaddr *)&s2, where, sizeof where);
        rtmp_log(RTMP_LOG_INFO, 0, NULL, "listening on %s%s", where, l->tls_ctx ? " (rtmps: TLS)" : "");
    }
    l->next = n->listeners;
    n->listeners = l;
    return l;
}

/* Stop accepting and close the sockets; the struct stays for its owner. */
static void listener_stop(rtmp_listener *l)
{
    ev_timer_stop(l->net->loop, &l->resume);
    for (int i = 0; i < l->nfds; i++) {
        ev_io_stop(l->net->loop, &l->io[i]);
        close(l->io[i].fd);
    }
    l->nfds = 0;
}

void rtmp_listener_close(rtmp_listener *l)
{
    rtmp_net *n = l->net;
    for (rtmp_listener **pp = &n->listeners; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    listener_stop(l);
    SSL_CTX_free(l->tls_ctx); /* its connections hold their own references */
    free(l);
}

int rtmp_listener_port(const rtmp_listener *l) { return l->port; }

rtmp_conn *rtmp_net_connect(rtmp_net *n, const char *host, const char *port, const rtmp_conn_config *cfg,
                            const rtmp_tls_config *tls, const rtmp_conn_handler *h, void *ud,
                            char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    if (tls && !(ctx = tls_client_ctx(n, tls, err, errlen)))
        return NULL;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(gai));
        return NULL;
    }
    int fd = -1, rc = -1;
    struct addrinfo *ai;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        tune_socket(fd, cfg); /* before connect: the receive buffer sets the window scale */
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0 || errno == EINPROGRESS)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        snprintf(err, errlen, "connect %s:%s: %s", host, port, strerror(errno));
        freeaddrinfo(res);
        return NULL;
    }
    ev_now_update(n->loop); /* deadlines count from now, also when called outside the loop */
    rtmp_tls *t = NULL;
    rtmp_conn *c = NULL;
    if (!ctx || ((t = tls_new(ctx, fd, 0, tls->openssl_records)) != NULL
                 && tls_client_name(t, tls->sni && *tls->sni ? tls->sni : host, !tls->insecure) == 0))
        c = conn_new(n, fd, cfg, h, ud);
    if (!c) {
        tls_free(t);
        close(fd);
        freeaddrinfo(res);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->tls = t;
    format_addr(ai->ai_addr, c->peer, sizeof c->peer);
    rtmp_conn_core_set_label(c->cc, c->id, c->peer);
    freeaddrinfo(res);
    c->connecting = 1;
    ev_io_start(n->loop, &c->wio); /* writable = connected (or failed) */
    if (c->h.open)
        c->h.open(c, c->ud);
    return c;
}

/* ---- the loop ---- */

static void run_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_ref(loop); /* balance the unref in rtmp_net_run: the timer has stopped */
    ev_break(loop, EVBREAK_ONE);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    rtmp_net *n = w->data;
    if (w->signum == SIGTERM && n->on_term) {
        rtmp_log(RTMP_LOG_INFO, 0, NULL, "signal %d: handed to the script", w->signum);
        n->on_term(n, n->on_term_ud);
        return;
    }
    rtmp_log(RTMP_LOG_INFO, 0, NULL, "signal %d: shutting down", w->signum);
    rtmp_net_shutdown(n, "shutdown");
    for (rtmp_timer *t = n->timers; t; t = t->next)
        ev_timer_stop(loop, &t->w);
    n->stopped = 1;
    ev_break(loop, EVBREAK_ALL);
}

rtmp_net *rtmp_net_new(void)
{
    rtmp_net *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->loop = ev_default_loop(EVFLAG_AUTO);
    if (!n->loop) {
        free(n);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    /* a server holds many sockets: use all the descriptors we may */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ev_prepare_init(&n->prepare, prepare_cb);
    n->prepare.data = n;
    ev_prepare_start(n->loop, &n->prepare);
    ev_unref(n->loop); /* the prepare watcher alone does not keep the loop running */
    ev_init(&n->run_timer, run_timeout_cb);
    return n;
}

void rtmp_net_handle_signals(rtmp_net *n)
{
    if (ev_is_active(&n->sigint)) /* again (a script, then luartmp): an active watcher is not set again */
        return;
    ev_signal_init(&n->sigint, signal_cb, SIGINT);
    ev_signal_init(&n->sigterm, signal_cb, SIGTERM);
    n->sigint.data = n->sigterm.data = n;
    ev_signal_start(n->loop, &n->sigint);
    ev_signal_start(n->loop, &n->sigterm);
    ev_unref(n->loop);
    ev_unref(n->loop);
}

void rtmp_net_on_term(rtmp_net *n, rtmp_net_term_cb cb, void *ud)
{
    n->on_term = cb;
    n->on_term_ud = ud;
}

static void hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    rtmp_net *n = w->data;
    if (!n->on_hup)
        return;
    rtmp_log(RTMP_LOG_INFO, 0, NULL, "signal %d: handed to the script", w->signum);
    n->on_hup(n, n->on_hup_ud);
}

static void hup_stop(rtmp_net *n)
{
    if (ev_is_active(&n->sighup)) {
        ev_ref(n->loop);
        ev_signal_stop(n->loop, &n->sighup);
    }
}

void rtmp_net_on_hup(rtmp_net *n, rtmp_net_term_cb cb, void *ud)
{
    n->on_hup = cb;
    n->on_hup_ud = ud;
    if (!cb) {
        hup_stop(n);
        signal(SIGHUP, SIG_DFL);
    } else if (!ev_is_active(&n->sighup)) {
        ev_signal_init(&n->sighup, hup_cb, SIGHUP);
        n->sighup.data = n;
        ev_signal_start(n->loop, &n->sighup);
        ev_unref(n->loop); /* a SIGHUP handler alone does not keep the loop running */
    }
}

void rtmp_net_stop_listening(rtmp_net *n)
{
    for (rtmp_listener *l = n->listeners; l; l = l->next)
        listener_stop(l); /* their owners still hold them: stopped, not freed */
}

size_t rtmp_net_conns(rtmp_net *n, rtmp_conn **out, size_t max)
{
    size_t count = 0;
    for (rtmp_conn *c = n->conns; c; c = c->next)
        if (!c->closing) {
            if (count < max)
                out[count] = c;
            count++;
        }
    return count;
}

void rtmp_net_shutdown(rtmp_net *n, const char *reason)
{
    rtmp_net_stop_listening(n);
    for (rtmp_conn *c = n->conns; c; c = c->next)
        rtmp_conn_close(c, reason);
    process_pending(n);
}

void rtmp_net_free(rtmp_net *n)
{
    if (!n)
        return;
    rtmp_net_shutdown(n, "shutdown");
    while (n->lingers)
        linger_end(n->lingers, "the loop is freed");
    while (n->listeners)
        rtmp_listener_close(n->listeners);
    while (n->timers)
        rtmp_timer_free(n->timers);
    free(n->addrs); /* every entry went with its connection */
    while (n->tls_clients) { /* connections hold their own references */
        tls_client_entry *e = n->tls_clients;
        n->tls_clients = e->next;
        SSL_CTX_free(e->ctx);
        free(e);
    }
    hup_stop(n);
    if (ev_is_active(&n->sigint)) {
        ev_ref(n->loop);
        ev_ref(n->loop);
        ev_signal_stop(n->loop, &n->sigint);
        ev_signal_stop(n->loop, &n->sigterm);
    }
    ev_ref(n->loop);
    ev_prepare_stop(n->loop, &n->prepare);
    ev_timer_stop(n->loop, &n->run_timer);
    free(n);
}

int rtmp_net_run(rtmp_net *n, double timeout)
{
    n->stopped = 0;
    if (timeout > 0) {
        ev_now_update(n->loop);
        ev_timer_set(&n->run_timer, timeout, 0);
        ev_timer_start(n->loop, &n->run_timer);
        ev_unref(n->loop); /* the timeout alone does not keep the loop running */
    }
    process_pending(n); /* output queued outside the loop */
    ev_run(n->loop, 0);
    if (ev_is_active(&n->run_timer)) {
        ev_ref(n->loop);
        ev_timer_stop(n->loop, &n->run_timer);
    }
    process_pending(n);
    return n->stopped;
}

void rtmp_net_stop(rtmp_net *n)
{
    n->stopped = 1;
    ev_break(n->loop, EVBREAK_ALL);
}

struct ev_loop *rtmp_net_loop(rtmp_net *n) { return n->loop; }
unsigned long rtmp_net_new_id(rtmp_net *n) { return ++n->next_id; }

double rtmp_net_now(rtmp_net *n)
{
    ev_now_update(n->loop); /* the cached loop time is stale outside callbacks */
    return ev_now(n->loop);
}

/* ---- timers ---- */

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_timer *t = w->data;
    t->cb(t, t->ud);
}

rtmp_timer *rtmp_timer_new(rtmp_net *n, rtmp_timer_cb cb, void *ud)
{
    rtmp_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->net = n;
    t->cb = cb;
    t->ud = ud;
    ev_init(&t->w, timer_cb);
    t->w.data = t;
    t->next = n->timers;
    if (n->timers)
        n->timers->prev = t;
    n->timers = t;
    return t;
}

void rtmp_timer_start(rtmp_timer *t, double after, double repeat)
{
    ev_now_update(t->net->loop); /* `after` counts from now, not from the last loop wakeup */
    ev_timer_stop(t->net->loop, &t->w);
    ev_timer_set(&t->w, after, repeat);
    ev_timer_start(t->net->loop, &t->w);
}

void rtmp_timer_stop(rtmp_timer *t)
{
    ev_timer_stop(t->net->loop, &t->w);
}

int rtmp_timer_active(const rtmp_timer *t)
{
    return ev_is_active(&t->w);
}

void rtmp_timer_free(rtmp_timer *t)
{
    rtmp_net *n = t->net;
    ev_timer_stop(n->loop, &t->w);
    if (t->prev)
        t->prev->next = t->next;
    else
        n->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
}
