/*
 * fuzz_http.c: the HTTP request reader (core/httpd.c), the one parser path
 * of the HTTP server (core/net_http.c feeds it the same way).
 *
 * The input is what a peer sends on one connection.  It is fed whole and
 * again in pieces cut at points drawn from the input.  Checks: a feed
 * consumes at most what it was given; a failure is a negative code with a
 * status of 400, 413, 431, 501 or 503; every request handed out stays
 * within the bounds (header lines, body bytes, a NUL-terminated URL of
 * url_len bytes); and both feedings hand out the same requests (method,
 * URL, headers, body) and end the same way.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/httpd.h"

#define MAX_BODY 4096

/* A digest of the requests handed out, to compare two feedings. */
typedef struct rlog {
    uint64_t h;
    size_t   n;
    int      upgraded; /* an upgrade request came: the rest is not HTTP */
} rlog;

static void mix(rlog *l, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        l->h = (l->h ^ b[i]) * 1099511628211ULL;
    l->h = (l->h ^ n) * 1099511628211ULL;
}

static int on_req(void *ud, const rtmp_httpd_req *r)
{
    rlog *l = ud;
    if (r->nheaders > RTMP_HTTPD_MAX_HEADERS)
        fuzz_fail("%zu header lines", r->nheaders);
    if (r->body_len > MAX_BODY)
        fuzz_fail("body of %zu bytes", r->body_len);
    if (r->url[r->url_len] != '\0' || strlen(r->url) > r->url_len)
        fuzz_fail("URL not NUL-terminated at %zu", r->url_len);
    mix(l, r->method, strlen(r->method));
    mix(l, r->url, r->url_len);
    for (size_t i = 0; i < r->nheaders; i++) {
        mix(l, r->headers[i].name, r->headers[i].name_len);
        mix(l, r->headers[i].value, r->headers[i].value_len);
    }
    mix(l, r->body, r->body_len);
    mix(l, &r->keep_alive, sizeof r->keep_alive);
    l->n++;
    l->upgraded = r->upgrade;
    return r->upgrade; /* the server stops at an upgrade */
}

/* Feed data whole (seed 0) or in pieces of 1 to 64 bytes drawn from
 * seed, handing the reader again what it left (after a request) with
 * the next piece added.  Returns the final code (0: all read, or stopped
 * at an upgrade) and the status to answer. */
static int feed(const uint8_t *data, size_t size, uint64_t seed, rlog *l, int *status)
{
    rtmp_httpd_limits lim;
    rtmp_httpd_limits_default(&lim);
    lim.max_body = MAX_BODY;
    rtmp_httpd *p = rtmp_httpd_new(&lim);
    if (!p)
        fuzz_fail("no memory");
    size_t off = 0, avail = 0; /* consumed; offered beyond off */
    int rc = 0;
    uint64_t s = seed;
    while (!l->upgraded) {
        if (avail == 0 || off + avail < size) {
            size_t piece = size - off - avail;
            if (seed) {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                if (piece > 1 + s % 64)
                    piece = (size_t)(1 + s % 64);
            }
            if (avail == 0 && piece == 0)
                break; /* all read */
            avail += piece;
        }
        ssize_t n = rtmp_httpd_feed(p, data + off, avail, on_req, l);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if ((size_t)n > avail)
            fuzz_fail("consumed %zd of %zu", n, avail);
        if (n == 0 && off + avail == size && !l->upgraded)
            fuzz_fail("no progress with %zu bytes left", avail);
        off += (size_t)n;
        avail -= (size_t)n;
    }
    *status = rc ? rtmp_httpd_status(p) : 0;
    if (rc && !(*status == 400 || *status == 413 || *status == 431 || *status == 501 || *status == 503))
        fuzz_fail("code %d with status %d", rc, *status);
    if (rc && rc != RTMP_ERR_INVAL && rc != RTMP_ERR_MSG_TOO_LONG && rc != RTMP_ERR_NOMEM)
        fuzz_fail("code %d", rc);
    rtmp_httpd_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rlog whole = { 1469598103934665603ULL, 0, 0 }, cut = whole;
    int st1, st2;
    int rc1 = feed(data, size, 0, &whole, &st1);
    uint64_t seed = 88172645463325252ULL;
    for (size_t i = 0; i < size && i < 8; i++)
        seed = (seed ^ data[i]) * 0x9E3779B97F4A7C15ULL;
    int rc2 = feed(data, size, seed | 1, &cut, &st2);
    if (whole.n != cut.n || whole.h != cut.h)
        fuzz_fail("whole: %zu requests, in pieces: %zu (or they differ)", whole.n, cut.n);
    if (rc1 != rc2 || st1 != st2)
        fuzz_fail("whole ends %d/%d, in pieces %d/%d", rc1, st1, rc2, st2);
    return 0;
}
