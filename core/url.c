/*
 * url.c: rtmp:// and rtmps:// URLs taken apart (see url.h).
 */
#include "url.h"
#include "error.h"

#include <string.h>

static rtmp_url_part part(const char *from, const char *to)
{
    rtmp_url_part p = { from, (size_t)(to - from) };
    return p;
}

/* The first c in [p, end), or NULL. */
static const char *find(const char *p, const char *end, char c)
{
    return memchr(p, c, (size_t)(end - p));
}

size_t rtmp_url_scheme(const char *s, size_t len, int *tls)
{
    static const char plain[] = "rtmp://", secure[] = "rtmps://";
    *tls = 0;
    if (len >= sizeof plain - 1 && memcmp(s, plain, sizeof plain - 1) == 0)
        return sizeof plain - 1;
    if (len >= sizeof secure - 1 && memcmp(s, secure, sizeof secure - 1) == 0) {
        *tls = 1;
        return sizeof secure - 1;
    }
    return 0;
}

int rtmp_url_parse(const char *url, size_t len, rtmp_url *u)
{
    static const char default_port[] = RTMP_URL_DEFAULT_PORT, default_tls_port[] = RTMP_URL_DEFAULT_TLS_PORT;
    const char *end = url + len;
    int tls;
    size_t skip = rtmp_url_scheme(url, len, &tls);
    if (skip == 0)
        return RTMP_ERR_URL_SCHEME;
    const char *host = url + skip;
    const char *slash = find(host, end, '/');
    const char *hend = slash ? slash : end;
    const char *hstart = host, *hstop = hend, *port = NULL;
    if (host < hend && *host == '[') {
        const char *rb = find(host, hend, ']');
        if (!rb)
            return RTMP_ERR_URL_IPV6;
        hstart = host + 1;
        hstop = rb;
        if (rb + 1 < hend && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = find(host, hend, ':');
        if (colon) {
            hstop = colon;
            port = colon + 1;
        }
    }
    if (hstop == hstart)
        return RTMP_ERR_URL_HOST;
    u->host = part(hstart, hstop);
    u->tls = tls;
    if (port)
        u->port = part(port, hend);
    else if (tls)
        u->port = part(default_tls_port, default_tls_port + sizeof default_tls_port - 1);
    else
        u->port = part(default_port, default_port + sizeof default_port - 1);
    const char *path = slash ? slash + 1 : end; /* no path: the empty end of url */
    const char *seg = find(path, end, '/');
    const char *q = find(path, end, '?');
    if (q && (!seg || q < seg))
        seg = NULL; /* app?query: the query belongs to the app */
    u->app = part(path, seg ? seg : end);
    u->path = seg ? part(seg + 1, end) : part(end, end);
    u->tc_url = part(url, seg ? seg : end);
    return 0;
}
