/*
 * httpd.h: the HTTP/1.x request reader of the HTTP server, sans I/O.
 *
 * Bytes in (rtmp_httpd_feed), whole requests out through a callback, as
 * the chunk reader hands out messages.  Parsing is Debian's
 * libhttp-parser (nodejs/http-parser); this file adds the bounds a
 * server needs before anything is allocated for a peer: header bytes
 * (431), body bytes (413, from Content-Length at once, or as chunks
 * arrive), header count (431), methods (501), and keeps one request's
 * URL, headers and body in one buffer that grows only as far as the peer
 * actually sent.  The one parser path: the server (net_http.c) and the
 * fuzz target (fuzz/fuzz_http.c) both feed it.  docs/HTTP.md.
 */
#ifndef RTMP_HTTPD_H
#define RTMP_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RTMP_HTTPD_MAX_HEADERS 64          /* header lines per request; more: 431 */

typedef struct rtmp_httpd_limits {
    size_t max_header;   /* request line + header bytes (default 16 KiB): 431 past it */
    size_t max_body;     /* body bytes (default 64 KiB): 413 past it */
} rtmp_httpd_limits;

void rtmp_httpd_limits_default(rtmp_httpd_limits *l);

typedef struct rtmp_httpd_header {
    const char *name;    /* as sent (compare without case) */
    size_t      name_len;
    const char *value;   /* leading and trailing blanks removed */
    size_t      value_len;
} rtmp_httpd_header;

/* One request, valid during the callback only. */
typedef struct rtmp_httpd_req {
    const char              *method;   /* "GET", "POST", ... */
    const char              *url;      /* the request target as sent, NUL-terminated */
    size_t                   url_len;
    const rtmp_httpd_header *headers;
    size_t                   nheaders;
    const uint8_t           *body;     /* chunked bodies already de-chunked */
    size_t                   body_len;
    int                      http_minor; /* 1.0 or 1.1 */
    int                      keep_alive; /* the connection may carry another request */
    int                      upgrade;    /* Connection: Upgrade with an Upgrade header */
} rtmp_httpd_req;

typedef struct rtmp_httpd rtmp_httpd;

/* A whole request.  Return 0 to read on (the next pipelined request, if
 * any, is handed out in the same feed), 1 to stop after this one (the
 * feed returns the bytes up to its end; an upgrade, a response that
 * streams, a connection to be closed). */
typedef int (*rtmp_httpd_cb)(void *ud, const rtmp_httpd_req *r);

/* A reader with these limits (NULL: the defaults); NULL when out of memory. */
rtmp_httpd *rtmp_httpd_new(const rtmp_httpd_limits *limits);
void rtmp_httpd_free(rtmp_httpd *p);

/* Feed len bytes.  Returns the bytes consumed (all of them, unless the
 * callback asked to stop), or a negative RTMP_ERR_* code after which the
 * reader is spent; rtmp_httpd_status then says what to answer:
 *   RTMP_ERR_MSG_TOO_LONG  headers (431) or body (413) past their bound
 *   RTMP_ERR_INVAL         malformed request (400), unknown method (501)
 *   RTMP_ERR_NOMEM         (503)
 */
ssize_t rtmp_httpd_feed(rtmp_httpd *p, const uint8_t *in, size_t len, rtmp_httpd_cb cb, void *ud);

/* After a failed feed: the status to answer (400, 413, 431, 501, 503)
 * and a short reason ("header over 16384 bytes"). */
int rtmp_httpd_status(const rtmp_httpd *p);
const char *rtmp_httpd_error(const rtmp_httpd *p);

/* Whether bytes of a request not yet whole have been read (the request
 * timer runs from its first byte). */
int rtmp_httpd_partial(const rtmp_httpd *p);

/* Heap bytes held now. */
size_t rtmp_httpd_memory(const rtmp_httpd *p);

/* The reason phrase of a status ("Not Found"; "" for one unknown). */
const char *rtmp_httpd_reason(int status);

#endif
