/*
 * httpd.c: the HTTP/1.x request reader (httpd.h) over libhttp-parser.
 *
 * One request at a time lives in p->buf: the URL, then each header's
 * name and value, then the body, appended as the parser hands out
 * fragments (the fragments of one item arrive in order and nothing else
 * comes between them, so each item is one region, kept as offsets: the
 * buffer may move as it grows).  The buffer is kept between requests of a
 * keep-alive connection and only grows as far as one request needed.
 */
#include "httpd.h"
#include "error.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
    size_t off, len;
} span;

struct rtmp_httpd {
    http_parser          hp;
    http_parser_settings set;
    rtmp_httpd_limits    lim;
    char                *buf;
    size_t               len, cap;
    span                 url;
    span                 name[RTMP_HTTPD_MAX_HEADERS], value[RTMP_HTTPD_MAX_HEADERS];
    size_t               nheaders;
    int                  last;       /* the last fragment: 0 the URL, 1 a name, 2 a value */
    size_t               head_bytes; /* URL and header bytes of this request */
    size_t               body_off, body_len;
    int                  partial;    /* a request has begun and is not whole */
    const char          *over;       /* the header went past a bound (431 once it ends:
                                        the same answer however the bytes were cut);
                                        what is past it is not kept */
    int                  stop;       /* the callback asked to stop */
    int                  status;     /* after a failure: what to answer */
    char                 why[96];
    rtmp_httpd_cb        cb;
    void                *ud;
};

void rtmp_httpd_limits_default(rtmp_httpd_limits *l)
{
    l->max_header = 16 * 1024;
    l->max_body = 64 * 1024;
}

static int fail(rtmp_httpd *p, int status, const char *why)
{
    p->status = status;
    snprintf(p->why, sizeof p->why, "%s", why);
    return -1; /* stops the parser (1 and 2 from on_headers_complete would not) */
}

/* Append n bytes; 0, or -1 out of memory (the caller has checked the bound). */
static int put(rtmp_httpd *p, const char *s, size_t n)
{
    if (n > p->cap - p->len) {
        size_t cap = p->cap ? p->cap : 512;
        while (cap - p->len < n)
            cap *= 2;
        char *q = realloc(p->buf, cap);
        if (!q)
            return -1;
        p->buf = q;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return 0;
}

static int head_put(rtmp_httpd *p, const char *s, size_t n)
{
    if (p->over)
        return 0;
    if (n > p->lim.max_header - p->head_bytes) {
        p->over = "bytes";
        return 0;
    }
    p->head_bytes += n;
    if (put(p, s, n) < 0)
        return fail(p, 503, "out of memory");
    return 0;
}

static rtmp_httpd *of(http_parser *hp)
{
    return hp->data;
}

static int on_begin(http_parser *hp)
{
    rtmp_httpd *p = of(hp);
    p->len = 0;
    p->url.off = p->url.len = 0;
    p->nheaders = 0;
    p->last = 0;
    p->head_bytes = 0;
    p->body_off = p->body_len = 0;
    p->partial = 1;
    p->over = NULL;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    rtmp_httpd *p = of(hp);
    p->url.len += n;
    return head_put(p, at, n);
}

static int on_field(http_parser *hp, const char *at, size_t n)
{
    rtmp_httpd *p = of(hp);
    if (p->last == 0 && head_put(p, "", 1)) /* the first header: the URL ends with a NUL */
        return -1;
    if (p->last != 1 && p->nheaders == RTMP_HTTPD_MAX_HEADERS && !p->over)
        p->over = "lines";
    if (p->over) { /* nothing more is kept: 431 when the header ends */
        p->last = 1;
        return 0;
    }
    if (p->last != 1) { /* a new header line */
        p->name[p->nheaders] = (span){ p->len, 0 };
        p->value[p->nheaders] = (span){ p->len, 0 };
        p->nheaders++;
    }
    p->last = 1;
    p->name[p->nheaders - 1].len += n;
    return head_put(p, at, n);
}

static int on_value(http_parser *hp, const char *at, size_t n)
{
    rtmp_httpd *p = of(hp);
    if (p->over) {
        p->last = 2;
        return 0;
    }
    span *v = &p->value[p->nheaders - 1];
    if (p->last != 2)
        *v = (span){ p->len, 0 };
    p->last = 2;
    v->len += n;
    return head_put(p, at, n);
}

static int on_headers(http_parser *hp)
{
    rtmp_httpd *p = of(hp);
    if (p->over) {
        char why[64];
        if (!strcmp(p->over, "lines"))
            snprintf(why, sizeof why, "more than %d header lines", RTMP_HTTPD_MAX_HEADERS);
        else
            snprintf(why, sizeof why, "request header over %zu bytes", p->lim.max_header);
        return fail(p, 431, why);
    }
    static const char *const served[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL };
    const char *m = http_method_str((enum http_method)hp->method);
    int ok = 0;
    for (int i = 0; served[i] && !ok; i++)
        ok = !strcmp(served[i], m);
    if (!ok) {
        char why[64];
        snprintf(why, sizeof why, "method %s not implemented", m);
        return fail(p, 501, why);
    }
    if (p->last == 0 && head_put(p, "", 1)) /* no header: end the URL here */
        return -1;
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->lim.max_body) {
        char why[64];
        snprintf(why, sizeof why, "request body over %zu bytes", p->lim.max_body);
        return fail(p, 413, why);
    }
    p->body_off = p->len;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    rtmp_httpd *p = of(hp);
    if (n > p->lim.max_body - p->body_len) {
        char why[64];
        snprintf(why, sizeof why, "request body over %zu bytes", p->lim.max_body);
        return fail(p, 413, why);
    }
    p->body_len += n;
    if (put(p, at, n) < 0)
        return fail(p, 503, "out of memory");
    return 0;
}

static int on_complete(http_parser *hp)
{
    rtmp_httpd *p = of(hp);
    rtmp_httpd_header h[RTMP_HTTPD_MAX_HEADERS];
    for (size_t i = 0; i < p->nheaders; i++) {
        const char *v = p->buf + p->value[i].off;
        size_t vl = p->value[i].len;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        h[i].name = p->buf + p->name[i].off;
        h[i].name_len = p->name[i].len;
        h[i].value = v;
        h[i].value_len = vl;
    }
    rtmp_httpd_req r = {
        .method = http_method_str((enum http_method)hp->method),
        .url = p->buf + p->url.off,
        .url_len = p->url.len,
        .headers = h,
        .nheaders = p->nheaders,
        .body = (const uint8_t *)p->buf + p->body_off,
        .body_len = p->body_len,
        .http_minor = hp->http_major == 1 ? hp->http_minor : 0,
        .keep_alive = http_should_keep_alive(hp),
        .upgrade = hp->upgrade,
    };
    p->partial = 0;
    if (p->cb(p->ud, &r) || hp->upgrade) {
        p->stop = 1;
        http_parser_pause(hp, 1);
    }
    return 0;
}

rtmp_httpd *rtmp_httpd_new(const rtmp_httpd_limits *limits)
{
    rtmp_httpd *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (limits)
        p->lim = *limits;
    else
        rtmp_httpd_limits_default(&p->lim);
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    http_parser_settings_init(&p->set);
    p->set.on_message_begin = on_begin;
    p->set.on_url = on_url;
    p->set.on_header_field = on_field;
    p->set.on_header_value = on_value;
    p->set.on_headers_complete = on_headers;
    p->set.on_body = on_body;
    p->set.on_message_complete = on_complete;
    return p;
}

void rtmp_httpd_free(rtmp_httpd *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p);
}

ssize_t rtmp_httpd_feed(rtmp_httpd *p, const uint8_t *in, size_t len, rtmp_httpd_cb cb, void *ud)
{
    if (p->status)
        return RTMP_ERR_INVAL;
    if (len == 0)
        return 0; /* 0 would tell the parser the peer closed */
    p->cb = cb;
    p->ud = ud;
    p->stop = 0;
    size_t n = http_parser_execute(&p->hp, &p->set, (const char *)in, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e == HPE_PAUSED) {
        http_parser_pause(&p->hp, 0);
        return (ssize_t)n;
    }
    if (p->stop) /* an upgrade: the parser stops by itself */
        return (ssize_t)n;
    if (e == HPE_OK)
        return (ssize_t)n;
    if (!p->status) {
        if (e == HPE_INVALID_METHOD)
            fail(p, 501, "unknown method");
        else if (e == HPE_HEADER_OVERFLOW)
            fail(p, 431, "request header too long");
        else {
            char why[96];
            snprintf(why, sizeof why, "malformed request: %s", http_errno_description(e));
            fail(p, 400, why);
        }
    }
    switch (p->status) {
    case 413: case 431: return RTMP_ERR_MSG_TOO_LONG;
    case 503: return RTMP_ERR_NOMEM;
    default: return RTMP_ERR_INVAL;
    }
}

int rtmp_httpd_status(const rtmp_httpd *p)
{
    return p->status;
}

const char *rtmp_httpd_error(const rtmp_httpd *p)
{
    return p->why;
}

int rtmp_httpd_partial(const rtmp_httpd *p)
{
    return p->partial;
}

size_t rtmp_httpd_memory(const rtmp_httpd *p)
{
    return sizeof *p + p->cap;
}

const char *rtmp_httpd_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "";
    }
}
