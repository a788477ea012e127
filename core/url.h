/*
 * url.h: rtmp:// and rtmps:// URLs taken apart, sans I/O and sans
 * allocation.
 *
 *   rtmp://host[:port]/app[/instance...]    host may be [IPv6]
 *   rtmps://host[:port]/app[/instance...]   the same over TLS
 *
 * app is the first path segment (a query right after it, before any other
 * slash, belongs to it: "live?token=1"); path is the rest (the stream
 * name when there are two segments: FFmpeg's convention); tc_url is the
 * scheme, authority and app, as clients send tcUrl in connect.  Every
 * piece points into the caller's string.
 */
#ifndef RTMP_URL_H
#define RTMP_URL_H

#include <stddef.h>

/* The port when the URL names none: RTMP's, and RTMPS's (443, as
 * FFmpeg and librtmp use). */
#define RTMP_URL_DEFAULT_PORT     "1935"
#define RTMP_URL_DEFAULT_TLS_PORT "443"

typedef struct rtmp_url_part {
    const char *s;   /* into the URL (a static string for the default port) */
    size_t len;
} rtmp_url_part;

typedef struct rtmp_url {
    rtmp_url_part host;   /* without the brackets of an IPv6 address */
    rtmp_url_part port;   /* the scheme's default port when none is given */
    rtmp_url_part app;    /* may be empty */
    rtmp_url_part path;   /* may be empty */
    rtmp_url_part tc_url; /* a prefix of the URL */
    int tls;              /* rtmps:// */
} rtmp_url;

/* The scheme at the start of s[0 .. len): the length of "rtmp://" (7)
 * or "rtmps://" (8, and *tls = 1), or 0 when s starts with neither.
 * The one place that knows which schemes mean TLS: URLs, and listen
 * addresses written as URLs (core/net.c). */
size_t rtmp_url_scheme(const char *s, size_t len, int *tls);

/* Take url[0 .. len) apart into *u.  Returns 0, RTMP_ERR_URL_SCHEME (not
 * rtmp:// or rtmps://), RTMP_ERR_URL_IPV6 (a '[' without its ']') or
 * RTMP_ERR_URL_HOST (an empty host). */
int rtmp_url_parse(const char *url, size_t len, rtmp_url *u);

#endif
