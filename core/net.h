/*
 * net.h: the network layer, the only part of luartmp that touches
 * sockets and libev.
 *
 * Listeners accept connections; each connection owns a socket-free
 * connection (conn.h: a session, its deadlines and closing policy) and
 * feeds it what it reads (into one read buffer shared by all
 * connections), on libev's clock.  Output is flushed once per loop iteration with one
 * writev per connection; the write watcher is armed only on EAGAIN.
 * Connections are closed at a safe point, never inside the callback that
 * is parsing them.
 *
 * TLS (OpenSSL) lives here too, and only here: a listener whose address
 * is rtmps://ADDR:PORT, or a connection made with a TLS configuration,
 * reads through SSL_read and writes either with the same writev (the
 * kernel encrypts: kTLS send) or as TLS records of up to 16 KiB; the
 * session above never knows.  docs/TLS.md.
 */
#ifndef RTMP_NET_H
#define RTMP_NET_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "warm.h"

typedef struct rtmp_net rtmp_net;
typedef struct rtmp_conn rtmp_conn;
typedef struct rtmp_listener rtmp_listener;
typedef struct rtmp_timer rtmp_timer;

/* What a connection tells its owner.  Each may be NULL. */
typedef struct rtmp_conn_handler {
    void (*open)(rtmp_conn *c, void *ud);       /* accepted / connected (before the handshake) */
    int  (*ready)(rtmp_conn *c, void *ud);      /* handshake complete; < 0 stops reading */
    int  (*message)(rtmp_conn *c, void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied);
    void (*close)(rtmp_conn *c, void *ud, const char *reason); /* last call; c is freed after it */
    /* Passthrough connections only (cfg.passthrough): the bytes just read,
     * valid until return, instead of feeding the session. */
    void (*data)(rtmp_conn *c, void *ud, const uint8_t *p, size_t len);
    /* Note what the owner's part of the next message will touch (warm.h):
     * after each delivery of input that leaves c open (not passthrough),
     * and prefetched before the next read. */
    void (*warm)(rtmp_conn *c, void *ud, rtmp_warm *w);
} rtmp_conn_handler;

/* TLS for a listener (cert, key, ciphersuites, ciphers) or an outgoing
 * connection (the rest).  The strings are read during the call that
 * takes the configuration; none is kept. */
typedef struct rtmp_tls_config {
    const char *cert;     /* listeners: the certificate chain, PEM (required) */
    const char *key;      /* listeners: its private key, PEM (required) */
    const char *ca;       /* connections: a CA file (PEM) trusted besides the
                             system store; NULL: the system store only */
    const char *sni;      /* connections: the server name sent (SNI) and
                             verified; NULL: the host connected to */
    int         insecure; /* connections: do not verify the certificate */
    const char *ciphers;  /* listeners: TLS 1.2 ciphers in preference order
                             (OpenSSL's cipher-list syntax); NULL: ours,
                             RTMP_TLS_CIPHERS */
    const char *ciphersuites; /* listeners: TLS 1.3 suites in preference
                             order ("": no TLS 1.3); NULL: ours,
                             RTMP_TLS_CIPHERSUITES */
    int         openssl_records; /* TLS 1.3 output through SSL_write's records,
                             not sealed by luartmp (tlsrec.h) */
} rtmp_tls_config;

/* A listener's choice of cipher, where the client offers several: ours,
 * not the client's.  AES-128-GCM first: as safe, and about a fifth
 * cheaper per byte than AES-256-GCM, OpenSSL's first (docs/TLS.md).
 * The TLS 1.2 list is OpenSSL 3's DEFAULT spelt out (a DEFAULT anywhere
 * but first in a list is ignored), with ECDHE AES-128-GCM moved first. */
#define RTMP_TLS_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define RTMP_TLS_CIPHERS      "ECDHE+AES128+AESGCM:ALL:!COMPLEMENTOFDEFAULT:!eNULL"

/* What a TLS connection negotiated (rtmp_conn_tls).  The strings stay
 * valid while the connection is open. */
typedef struct rtmp_tls_info {
    int         done;          /* the TLS handshake is complete (else only sni
                                  of a client is set) */
    const char *version;       /* "TLSv1.3" */
    const char *cipher;        /* "TLS_AES_256_GCM_SHA384" */
    const char *sni;           /* the server name sent (client) or received
                                  (server); "" when none */
    int         ktls_send;     /* the kernel encrypts our output: one writev of
                                  shared buffers per flush, as without TLS */
    int         ktls_recv;     /* the kernel decrypts our input */
    int         own_records;   /* our output records are sealed by luartmp
                                  (TLS 1.3 without kTLS send), not SSL_write */
    int         peer_verified; /* client: the server's certificate chain and
                                  name were verified (0 with insecure) */
} rtmp_tls_info;

/* A connection's settings (rtmp_conn_config) and their defaults
 * (rtmp_conn_config_default) are conn.h's: the socket-free connection
 * each rtmp_conn drives. */

/* The loop.  One per process is the usual case (uses libev's default loop). */
rtmp_net *rtmp_net_new(void);
void rtmp_net_free(rtmp_net *n);

/* Run the loop until nothing is active, rtmp_net_stop is called, or
 * (timeout > 0) timeout seconds have passed.  Returns 1 when stopped by
 * rtmp_net_stop or a signal, 0 otherwise. */
int rtmp_net_run(rtmp_net *n, double timeout);
void rtmp_net_stop(rtmp_net *n);

/* Catch SIGINT and SIGTERM: close every listener and connection (reason
 * "shutdown"), stop every timer, and make rtmp_net_run return.  With a
 * SIGTERM handler set (rtmp_net_on_term), SIGTERM calls it instead and
 * the loop goes on; SIGINT always shuts down.  Calling it again does
 * nothing. */
void rtmp_net_handle_signals(rtmp_net *n);

/* What SIGTERM does once rtmp_net_handle_signals catches it: cb(n, ud)
 * runs in the loop (a drain: stop accepting, let connections leave)
 * instead of the shutdown; cb NULL restores the shutdown. */
typedef void (*rtmp_net_term_cb)(rtmp_net *n, void *ud);
void rtmp_net_on_term(rtmp_net *n, rtmp_net_term_cb cb, void *ud);

/* What SIGHUP does: cb(n, ud) runs in the loop, between events (a reload:
 * docs/RELOAD.md); the watcher does not keep the loop running.  cb NULL
 * stops catching it: SIGHUP's default action (the process ends) again. */
void rtmp_net_on_hup(rtmp_net *n, rtmp_net_term_cb cb, void *ud);

/* Stop accepting: every listener's sockets are closed (their owners still
 * close the listeners themselves); open connections go on. */
void rtmp_net_stop_listening(rtmp_net *n);

/* The open connections (not closing), newest first: at most max of them
 * in out; returns how many there are. */
size_t rtmp_net_conns(rtmp_net *n, rtmp_conn **out, size_t max);

/* Close everything now: listeners stop accepting (their owners still close
 * them), connections close with reason; timers stay. */
void rtmp_net_shutdown(rtmp_net *n, const char *reason);

/* Seconds since an arbitrary epoch, as the loop sees it. */
double rtmp_net_now(rtmp_net *n);

/* The libev loop the net runs on, for what rides the same loop with
 * sockets of its own (net_curl.c: libcurl's).  Not for anything above
 * core/. */
struct ev_loop;
struct ev_loop *rtmp_net_loop(rtmp_net *n);

/* A new connection id: 1, 2, ... per net, one sequence for every
 * protocol on it (RTMP connections, net_http.c's HTTP ones), so an id
 * names one connection whatever it speaks. */
unsigned long rtmp_net_new_id(rtmp_net *n);

/* Listen on addr ("1935", "127.0.0.1:1935", "[::1]:1935", "*:1935"; a bare
 * port listens on IPv4 and IPv6), optionally after "rtmp://", or after
 * "rtmps://" for a TLS listener, which takes tls->cert and tls->key (tls
 * is ignored otherwise; NULL: none).  Returns NULL and writes a message
 * into err on failure: a bad address, an rtmps:// one without a
 * certificate and key, a certificate or key that does not load, an
 * address that cannot be bound. */
rtmp_listener *rtmp_net_listen(rtmp_net *n, const char *addr, const rtmp_conn_config *cfg,
                               const rtmp_tls_config *tls, const rtmp_conn_handler *h, void *ud,
                               char *err, size_t errlen);

/* What rtmp_net_listen would refuse for any of n addresses, found now:
 * each address's form, for rtmps:// the certificate and key (loaded,
 * then dropped), and whether it can be bound beside the ones before it
 * (listening sockets made and held until all are checked, then closed:
 * in use, given twice, not a local address, a port below 1024 without
 * the right).  0, or -1 with the first failure's message in err.  For a
 * command line to refuse what cannot work before anything runs (another
 * process may still take the port in between).  At most
 * RTMP_NET_CHECK_MAX addresses. */
#define RTMP_NET_CHECK_MAX 16
int rtmp_net_check_listen(const char *const *addrs, int n, const rtmp_tls_config *tls, char *err, size_t errlen);
void rtmp_listener_close(rtmp_listener *l);

/* For a sibling of this file that accepts connections of its own
 * (net_http.c): non-blocking listening sockets for addr in the forms of
 * rtmp_net_listen without TLS, at most max of them into fds: how many,
 * or -1 with the message in err.  And a socket address written as
 * rtmp_conn_peer writes it. */
struct sockaddr;
int rtmp_net_listen_sockets(const char *addr, int *fds, int max, char *err, size_t errlen);
void rtmp_net_format_addr(const struct sockaddr *sa, char *out, size_t len);
/* Local port the listener is bound to (useful with port 0). */
int rtmp_listener_port(const rtmp_listener *l);

/* Connect to host:port (numeric or resolvable; resolution blocks).
 * The handshake starts once TCP connects; with tls (not NULL), once the
 * TLS handshake that follows is complete: SNI from tls->sni or host
 * (none for an IP address), the certificate verified against the system
 * store and tls->ca, for that name, unless tls->insecure.  NULL and err
 * on failure (a CA file that does not load, resolution, socket); what
 * fails later (the TLS handshake, verification) closes the connection
 * with the reason. */
rtmp_conn *rtmp_net_connect(rtmp_net *n, const char *host, const char *port, const rtmp_conn_config *cfg,
                            const rtmp_tls_config *tls, const rtmp_conn_handler *h, void *ud,
                            char *err, size_t errlen);

/* Connection accessors. */
rtmp_session *rtmp_conn_session(rtmp_conn *c);
rtmp_conn_core *rtmp_conn_get_core(rtmp_conn *c);   /* its socket-free part (conn.h) */
unsigned long rtmp_conn_id(const rtmp_conn *c);
const char *rtmp_conn_peer(const rtmp_conn *c);   /* "127.0.0.1:5555", "[::1]:5555" */
/* Our end of the socket, in the same form, written into out (empty when
 * unknown: not connected yet, or closed). */
void rtmp_conn_local(const rtmp_conn *c, char *out, size_t len);
uint64_t rtmp_conn_bytes_written(const rtmp_conn *c); /* bytes the socket took (TLS: before
                                                         encryption, as the session sent them) */
uint64_t rtmp_conn_bytes_in(const rtmp_conn *c);      /* bytes read from the socket (TLS: after
                                                         decryption) */
/* TLS: 0 and what was negotiated in *info; -1 for a plain connection. */
int rtmp_conn_tls(const rtmp_conn *c, rtmp_tls_info *info);
int rtmp_conn_closing(const rtmp_conn *c);
void rtmp_conn_set_ud(rtmp_conn *c, void *ud);
void *rtmp_conn_get_ud(const rtmp_conn *c);
const rtmp_conn_config *rtmp_conn_get_config(const rtmp_conn *c);

/* Every byte the connection holds on the heap now: its own state, the
 * session's (rtmp_session_memory: handshake state, partial messages,
 * chunk-stream tables, output queue) and a passthrough output queue.
 * The binding's and the script's own state are not included. */
size_t rtmp_conn_memory(const rtmp_conn *c);

/* Tell the loop the session has new output; it is written before the
 * loop next waits.  Returns RTMP_ERR_QUEUE_FULL (and closes the
 * connection) when more than max_output bytes are waiting. */
int rtmp_conn_output(rtmp_conn *c);

/* The same for media fanned out to players: with a merge window, the
 * write waits up to merge_window seconds so that many messages go out in
 * one writev (fewer system calls per byte, at the cost of latency).
 * Anything queued with rtmp_conn_output meanwhile flushes it all. */
int rtmp_conn_output_media(rtmp_conn *c);

/* Passthrough connections: queue n bytes to be written unchanged, in
 * order, before the loop next waits (bytes queued while a client is still
 * connecting go out once it connects).  0, RTMP_ERR_NOMEM, RTMP_ERR_CLOSED
 * (closing), RTMP_ERR_INVAL (not a passthrough connection), or
 * RTMP_ERR_QUEUE_FULL (and the connection is closed as a slow reader)
 * when more than max_output bytes are waiting. */
int rtmp_conn_write(rtmp_conn *c, const uint8_t *p, size_t n);

/* Bytes queued and not yet written (the session's output, or for a
 * passthrough connection, what rtmp_conn_write queued). */
size_t rtmp_conn_pending(const rtmp_conn *c);

/* Exempt what is queued now from max_output (a late joiner's first
 * burst, bounded by its group's GOP bound instead): the bound then
 * applies to the bytes queued after it. */
void rtmp_conn_exempt_queued(rtmp_conn *c);

/* Bytes of the exempt output not written yet (at most the pending). */
size_t rtmp_conn_exempt(const rtmp_conn *c);

/* Stop (paused non-zero) or resume reading from the socket: while paused
 * the kernel's receive buffer fills and the peer's sends stall, as with a
 * reader that stopped reading.  Output and deadlines go on, and a peer
 * that closes with nothing unread is seen (closed at once); one that
 * closes behind unread bytes is seen when reading resumes. */
void rtmp_conn_pause_reading(rtmp_conn *c, int paused);

/* Close at the next safe point: the close handler runs with reason, and
 * the socket lingers (cfg.linger) to write the output still queued and end
 * with a FIN.  Later calls keep the first reason. */
void rtmp_conn_close(rtmp_conn *c, const char *reason);

/* The same, for a failure: the close line is logged as a warning. */
void rtmp_conn_fail(rtmp_conn *c, const char *reason);

/* A failure whose queued output is dropped, not written during the
 * linger (a slow reader: it would not read it). */
void rtmp_conn_drop(rtmp_conn *c, const char *reason);

/* Whether the socket of the closed connection with this id still
 * lingers (cfg.linger). */
int rtmp_net_lingering(const rtmp_net *n, unsigned long id);

/* Timers. */
typedef void (*rtmp_timer_cb)(rtmp_timer *t, void *ud);
rtmp_timer *rtmp_timer_new(rtmp_net *n, rtmp_timer_cb cb, void *ud);
void rtmp_timer_start(rtmp_timer *t, double after, double repeat);
void rtmp_timer_stop(rtmp_timer *t);
int rtmp_timer_active(const rtmp_timer *t);
void rtmp_timer_free(rtmp_timer *t);

#endif
