/*
 * net_curl.c: HTTP(S) requests with libcurl's multi interface, driven by
 * the net's libev loop (net_curl.h).  curl says which sockets it wants
 * watched for what (CURLMOPT_SOCKETFUNCTION: one ev_io each) and when it
 * next needs to run (CURLMOPT_TIMERFUNCTION: one ev_timer); the watchers
 * call curl_multi_socket_action, and finished transfers are collected
 * after each call, outside curl, so a done callback may start or cancel
 * requests.
 */
#include "net_curl.h"
#include "error.h"
#include "log.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#ifndef LUARTMP_VERSION
#define LUARTMP_VERSION "0.0.0"
#endif

struct rtmp_http {
    struct ev_loop *loop;
    CURLM          *multi;
    ev_timer        timer;      /* curl's next timeout */
    rtmp_http_req  *reqs;       /* in flight */
    size_t          nreqs;
};

/* A socket curl asked us to watch (curl_multi_assign'd to it). */
typedef struct http_sock {
    ev_io      io;
    rtmp_http *h;
} http_sock;

/* A growing byte buffer with a bound. */
typedef struct http_bytes {
    char   *p;
    size_t  len, cap, max;
    int     over;               /* a write past max was refused */
} http_bytes;

struct rtmp_http_req {
    rtmp_http         *h;
    rtmp_http_req     *prev, *next;
    CURL              *easy;
    struct curl_slist *headers;
    rtmp_http_done_cb  cb;
    void              *ud;
    double             timeout;
    http_bytes         head, body;
    char               errbuf[CURL_ERROR_SIZE];
};

/* ---- buffers ---- */

/* Append n bytes; 0, or -1 (over the bound: b->over set; no memory). */
static int bytes_add(http_bytes *b, const char *p, size_t n)
{
    if (n > b->max - b->len) {
        b->over = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static size_t write_body(char *p, size_t size, size_t n, void *ud)
{
    rtmp_http_req *r = ud;
    return bytes_add(&r->body, p, size * n) == 0 ? size * n : 0; /* 0 ends the transfer */
}

/* Header lines: a status line starts a new response (after a redirect or
 * a 100 Continue), so only the last one's are kept; the blank line that
 * ends them is left out. */
static size_t write_header(char *p, size_t size, size_t n, void *ud)
{
    rtmp_http_req *r = ud;
    size_t len = size * n;
    if (len >= 5 && !memcmp(p, "HTTP/", 5))
        r->head.len = 0;
    if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n'))
        return len;
    return bytes_add(&r->head, p, len) == 0 ? len : 0;
}

/* ---- the requests ---- */

static void req_free(rtmp_http_req *r)
{
    rtmp_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    h->nreqs--;
    curl_multi_remove_handle(h->multi, r->easy); /* may call sock_cb and timer_cb */
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->head.p);
    free(r->body.p);
    free(r);
}

/* What failed, as the code and the message the callback gets. */
static int failure(rtmp_http_req *r, CURLcode res, char *msg, size_t len)
{
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
    if (r->body.over || res == CURLE_FILESIZE_EXCEEDED) {
        snprintf(msg, len, "response body over %zu bytes (max_body)", r->body.max);
        return RTMP_ERR_MSG_TOO_LONG;
    }
    if (r->head.over) {
        snprintf(msg, len, "response headers over %zu bytes", r->head.max);
        return RTMP_ERR_MSG_TOO_LONG;
    }
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(msg, len, "timeout: no complete response within %g s (%s)", r->timeout, detail);
        return RTMP_ERR_TIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        snprintf(msg, len, "out of memory");
        return RTMP_ERR_NOMEM;
    case CURLE_WRITE_ERROR: /* bytes_add failed for want of memory */
        snprintf(msg, len, "out of memory for the response");
        return RTMP_ERR_NOMEM;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(msg, len, "cannot resolve host: %s", detail);
        return RTMP_ERR_IO;
    case CURLE_COULDNT_CONNECT:
        snprintf(msg, len, "connection refused: %s", detail);
        return RTMP_ERR_IO;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
        snprintf(msg, len, "TLS: %s", detail);
        return RTMP_ERR_IO;
    default:
        snprintf(msg, len, "%s: %s", curl_easy_strerror(res), detail);
        return RTMP_ERR_IO;
    }
}

static void finish(rtmp_http_req *r, CURLcode res)
{
    char msg[CURL_ERROR_SIZE + 200];
    if (res == CURLE_OK) {
        rtmp_http_response resp = { 0 };
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        resp.headers = r->head.p ? r->head.p : "";
        resp.headers_len = r->head.len;
        resp.body = (const uint8_t *)(r->body.p ? r->body.p : "");
        resp.body_len = r->body.len;
        r->cb(r, r->ud, 0, NULL, &resp);
    } else {
        int rc = failure(r, res, msg, sizeof msg);
        r->cb(r, r->ud, rc, msg, NULL);
    }
    req_free(r);
}

/* Collect what curl finished (after each curl_multi_socket_action). */
static void check_done(rtmp_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        rtmp_http_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r)
            finish(r, m->data.result); /* may start or cancel others: info_read copes */
    }
}

/* ---- libev <-> curl ---- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    http_sock *s = w->data;
    rtmp_http *h = s->h;
    int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, w->fd, flags, &running); /* may free s */
    check_done(h);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_http *h = w->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

/* curl: watch socket fd for what (or stop: CURL_POLL_REMOVE). */
static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    rtmp_http *h = userp;
    http_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(h->loop, &s->io);
            free(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1; /* curl fails the transfer */
        s->h = h;
        ev_init(&s->io, io_cb);
        s->io.data = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    ev_io_stop(h->loop, &s->io);
    ev_io_set(&s->io, fd, events);
    ev_io_start(h->loop, &s->io);
    return 0;
}

/* curl: call curl_multi_socket_action(TIMEOUT) after ms (-1: never).
 * Never from here: from the loop, so 0 means the next iteration. */
static int timer_set_cb(CURLM *multi, long ms, void *userp)
{
    rtmp_http *h = userp;
    ev_timer_stop(h->loop, &h->timer);
    if (ms >= 0) {
        ev_timer_set(&h->timer, (double)ms / 1000.0, 0);
        ev_timer_start(h->loop, &h->timer);
    }
    return 0;
}

/* ---- public ---- */

rtmp_http *rtmp_http_new(rtmp_net *n)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = 1;
    }
    rtmp_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = rtmp_net_loop(n);
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return NULL;
    }
    ev_init(&h->timer, timer_cb);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_set_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void rtmp_http_free(rtmp_http *h)
{
    if (!h)
        return;
    if (h->nreqs)
        rtmp_log(RTMP_LOG_INFO, 0, NULL, "http: %zu request%s in flight cancelled", h->nreqs,
                 h->nreqs == 1 ? "" : "s");
    while (h->reqs)
        req_free(h->reqs);
    curl_multi_cleanup(h->multi); /* closes cached connections: sock_cb frees their watchers */
    ev_timer_stop(h->loop, &h->timer);
    free(h);
}

size_t rtmp_http_pending(const rtmp_http *h) { return h->nreqs; }

/* Whether the URL is http:// or https:// and parses (curl's parser). */
static int check_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return RTMP_ERR_NOMEM;
    }
    char *scheme = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    int rc = 0;
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "bad URL '%.200s': %s", url, curl_url_strerror(uc));
        rc = RTMP_ERR_INVAL;
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
               || (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
        snprintf(err, errlen, "not an http:// or https:// URL: '%.200s'", url);
        rc = RTMP_ERR_INVAL;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* Whether a header line of the request names `name` ("Expect"). */
static int has_header(const rtmp_http_request *q, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < q->nheaders; i++)
        if (!strncasecmp(q->headers[i], name, n) && (q->headers[i][n] == ':' || q->headers[i][n] == ';'))
            return 1;
    return 0;
}

rtmp_http_req *rtmp_http_start(rtmp_http *h, const rtmp_http_request *q, rtmp_http_done_cb cb,
                               void *ud, char *err, size_t errlen)
{
    if (check_url(q->url, err, errlen) < 0)
        return NULL;
    rtmp_http_req *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->h = h;
    r->cb = cb;
    r->ud = ud;
    r->timeout = q->timeout;
    r->body.max = q->max_body;
    r->head.max = RTMP_HTTP_MAX_HEADERS;
    CURL *e = r->easy;
    int ok = 1;
    for (size_t i = 0; ok && i < q->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(r->headers, q->headers[i]);
        ok = l != NULL;
        if (ok)
            r->headers = l;
    }
    /* no "Expect: 100-continue" wait before a large body, unless asked */
    if (ok && q->body && !has_header(q, "Expect")) {
        struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
        ok = l != NULL;
        if (ok)
            r->headers = l;
    }
    const char *method = q->method ? q->method : q->body ? "POST" : "GET";
    ok = ok && curl_easy_setopt(e, CURLOPT_URL, q->url) == CURLE_OK;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, write_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(q->timeout * 1000.0 + 0.5));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max_body);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "luartmp/" LUARTMP_VERSION);
    if (q->redirects > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, q->redirects);
    }
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") || q->body) {
        if (strcmp(method, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (q->body || !strcmp(method, "POST")) { /* a POST without a body sends an empty one */
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
            ok = ok && curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, q->body ? (const char *)q->body : "")
                           == CURLE_OK;
        }
    }
    if (q->ca) {
        /* the file besides the system store: CAINFO replaces the default
         * bundle, CAPATH keeps the system's directory */
        curl_easy_setopt(e, CURLOPT_CAINFO, q->ca);
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        if (v->capath)
            curl_easy_setopt(e, CURLOPT_CAPATH, v->capath);
        else
            curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    if (q->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (r->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    if (!ok) {
        curl_easy_cleanup(e);
        curl_slist_free_all(r->headers);
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->nreqs++;
    CURLMcode mc = curl_multi_add_handle(h->multi, e); /* sets curl's timer: it starts from the loop */
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "cannot start the request: %s", curl_multi_strerror(mc));
        r->cb = NULL;
        req_free(r);
        return NULL;
    }
    rtmp_log(RTMP_LOG_DEBUG, 0, NULL, "http: %s %s", method, q->url);
    return r;
}

void rtmp_http_cancel(rtmp_http_req *r)
{
    req_free(r);
}
