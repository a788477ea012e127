/*
 * net_curl.h: outgoing HTTP and HTTPS requests on the net's loop, with
 * libcurl's multi interface: curl's sockets are watched by libev ev_io
 * watchers and its timeouts by one ev_timer on the same loop as the RTMP
 * connections (rtmp_net_loop), so a request never blocks the loop and a
 * slow server delays nobody else.  net.c's sibling: the only other file
 * with sockets (libcurl's) and <ev.h>.  docs/HTTP.md.
 *
 * One rtmp_http per loop holds the requests in flight.  A request ends
 * exactly once: its done callback runs with the response or the reason it
 * failed, unless it was cancelled first (rtmp_http_cancel, or
 * rtmp_http_free for all), in which case nothing is called.
 */
#ifndef RTMP_NET_CURL_H
#define RTMP_NET_CURL_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

typedef struct rtmp_http rtmp_http;
typedef struct rtmp_http_req rtmp_http_req;

/* The most bytes of response headers kept (the last response's, after
 * redirects); more fails the request as too long. */
#define RTMP_HTTP_MAX_HEADERS (64 * 1024)

/* A request.  The strings and the body are read during rtmp_http_start
 * (curl copies what it keeps); none is held afterwards. */
typedef struct rtmp_http_request {
    const char         *url;       /* http:// or https:// */
    const char         *method;    /* "GET", "POST", ... ; NULL: GET, or POST with a body */
    const char *const  *headers;   /* "Name: value" lines added to (or replacing) curl's */
    size_t              nheaders;
    const uint8_t      *body;      /* NULL: no body */
    size_t              body_len;
    double              timeout;   /* seconds for the whole exchange, > 0 */
    size_t              max_body;  /* response body bytes accepted; more fails the request */
    long                redirects; /* 3xx Location answers followed; 0: the 3xx is the response */
    const char         *ca;        /* https: a CA file (PEM) trusted besides the system store */
    int                 insecure;  /* https: do not verify the server's certificate */
} rtmp_http_request;

/* What came back.  Valid during the done callback only. */
typedef struct rtmp_http_response {
    long            status;        /* 200, 302, 404, ... */
    const char     *headers;       /* the header lines of the last response, each ending in
                                      CRLF (or LF), status line first, without the blank line */
    size_t          headers_len;
    const uint8_t  *body;
    size_t          body_len;
} rtmp_http_response;

/* The end of a request: rc 0 and the response, or a negative RTMP_ERR_*
 * code and a message naming the failure first ("timeout: ...",
 * "connection refused: ...", "cannot resolve host: ...", "TLS: ...",
 * "response body over N bytes", ...) with res NULL:
 *   RTMP_ERR_TIMEOUT       no complete response within the timeout
 *   RTMP_ERR_MSG_TOO_LONG  the body (or the headers) past their bound
 *   RTMP_ERR_IO            resolution, connection, TLS (verification
 *                          included), the HTTP exchange
 *   RTMP_ERR_NOMEM
 * The request is freed when the callback returns. */
typedef void (*rtmp_http_done_cb)(rtmp_http_req *r, void *ud, int rc, const char *err,
                                  const rtmp_http_response *res);

/* The requests of the loop n runs on.  NULL when out of memory or when
 * libcurl does not initialise. */
rtmp_http *rtmp_http_new(rtmp_net *n);

/* Cancel every request in flight (no callback runs) and free h.  Not from
 * inside a done callback. */
void rtmp_http_free(rtmp_http *h);

/* Requests in flight. */
size_t rtmp_http_pending(const rtmp_http *h);

/* Start a request; it goes on in the loop and ends with cb(r, ud, ...).
 * Returns the request, or NULL with a message in err: a URL that is not
 * http:// or https:// or does not parse (RTMP_ERR_INVAL), no memory. */
rtmp_http_req *rtmp_http_start(rtmp_http *h, const rtmp_http_request *q, rtmp_http_done_cb cb,
                               void *ud, char *err, size_t errlen);

/* Cancel a request in flight: its connection is closed (or returned to
 * curl's cache), its callback never runs, r is freed. */
void rtmp_http_cancel(rtmp_http_req *r);

#endif
