/*
 * net_redis.c: a Redis client with hiredis's asynchronous API, driven by
 * the net's libev loop through hiredis's libev adapter (net_redis.h).
 *
 * A connection goes: connecting (hiredis's non-blocking connect, bounded
 * by connect_timeout) -> handshake (AUTH when the URL has a password,
 * SELECT when it names a database, then PING: the connection is up when
 * the PING's answer arrives, so the server answers and the step that
 * announces it runs inside a reply callback, where hiredis defers a free)
 * -> up -> lost (hiredis ends every command in flight with no reply, then
 * calls the disconnect callback) -> a new attempt after the backoff.
 *
 * hiredis 0.14 frees a context safely from inside a reply callback (it
 * marks it and frees it once the callback returns) but not from inside
 * the connect callback (hiredis goes on using it) or the disconnect
 * callback (it is being freed): no user code runs from the connect
 * callback, and the disconnect callback lets go of the context (r->ac
 * NULL) before it tells the user, so a close from there leaves it alone.
 *
 * Who owns what: hiredis holds each command's privdata (an rtmp_redis_cmd)
 * until it calls the command's callback, exactly once, with the reply or
 * NULL.  A command the caller gave up (timeout, cancel) stays allocated
 * until then without a callback of its own; one whose client is gone
 * (closed, or the connection dropped here) has c->r NULL and is only
 * freed.
 */
#include "net_redis.h"
#include "error.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

struct rtmp_redis_cmd {
    rtmp_redis          *r;        /* NULL once orphaned: only freed when hiredis answers */
    rtmp_redis_cmd      *prev, *next;
    ev_timer             timer;    /* command_timeout */
    rtmp_redis_reply_cb  cb;       /* NULL once ended (timeout, cancel, close) */
    void                *ud;
    int                  hs;       /* a handshake step: 1 (AUTH, SELECT) or 2 (the last: PING) */
};

struct rtmp_redis {
    struct ev_loop      *loop;
    redisAsyncContext   *ac;       /* the connection (connecting, handshake, up); NULL: none */
    int                  up;       /* handshake done */
    int                  lost;     /* was up, found lost by a command: on_disconnect to tell */
    int                  closing;
    int                  ever_up;  /* for the log: "connected" or "connection regained" */
    unsigned long        attempts; /* since the last time it was up */
    /* the URL's parts */
    char                 host[256];
    char                 ip[64];    /* host's address, resolved once by rtmp_redis_new */
    int                  port;
    char                 path[256]; /* unix socket; host unused */
    char                 user[128];
    char                 pass[256];
    int                  has_pass;
    int                  db;        /* -1: no SELECT */
    char                 addr[280]; /* host:port or the path, for messages */
    char                 name[64];
    double               connect_timeout, command_timeout, retry_min, retry_max, retry_factor;
    double               delay;     /* before the next attempt */
    ev_timer             retry;
    ev_timer             conn_timer;
    char                 reason[700]; /* why not up: "connecting", the last failure */
    rtmp_redis_cmd      *cmds;     /* sent on ac, answer not yet in (some given up) */
    size_t               npending; /* of those, with a callback */
    rtmp_redis_state_cb  state_cb;
    void                *ud;
};

#define LOG(level, ...) rtmp_log((level), 0, NULL, __VA_ARGS__)

static void attempt(rtmp_redis *r);

/* ---- the URL ---- */

/* The integer in [s, e), 0 .. max; -1 when not all digits or too big. */
static long parse_num(const char *s, const char *e, long max)
{
    if (s == e)
        return -1;
    long v = 0;
    for (; s < e; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    return v;
}

/* Copy [s, e) into dst (size n); -1 when it does not fit. */
static int copy_part(char *dst, size_t n, const char *s, const char *e)
{
    if ((size_t)(e - s) >= n)
        return -1;
    memcpy(dst, s, (size_t)(e - s));
    dst[e - s] = '\0';
    return 0;
}

/* redis://[[user]:password@]host[:port][/db] or unix:/path into r. */
static int parse_url(rtmp_redis *r, const char *url, char *err, size_t errlen)
{
#define BAD(why) do { snprintf(err, errlen, "bad Redis URL '%.200s': %s", url, why); return RTMP_ERR_INVAL; } while (0)
    size_t len = strlen(url);
    if (len > RTMP_REDIS_MAX_URL)
        BAD("longer than 1024 bytes");
    r->db = -1;
    r->port = 6379;
    if (!strncmp(url, "unix:", 5)) {
        const char *p = url + 5;
        if (!strncmp(p, "//", 2))
            p += 2;
        if (*p != '/')
            BAD("want unix:/path/to/socket");
        if (copy_part(r->path, sizeof r->path, p, url + len) < 0)
            BAD("socket path too long");
        snprintf(r->addr, sizeof r->addr, "%s", r->path);
        return 0;
    }
    if (!strncmp(url, "rediss://", 9))
        BAD("TLS (rediss://) is not supported");
    if (strncmp(url, "redis://", 8))
        BAD("want redis://[:password@]host[:port][/db] or unix:/path");
    const char *p = url + 8, *end = url + len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hend = slash ? slash : end;
    const char *at = NULL;
    for (const char *q = p; q < hend; q++)
        if (*q == '@')
            at = q; /* the last one: a password may hold '@' */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            BAD("user without a password (want [user]:password@)");
        if (copy_part(r->user, sizeof r->user, p, colon) < 0 || copy_part(r->pass, sizeof r->pass, colon + 1, at) < 0)
            BAD("user or password too long");
        r->has_pass = 1;
        p = at + 1;
    }
    const char *hs = p, *he;
    if (*p == '[') { /* [::1] */
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb)
            BAD("unterminated [IPv6 address]");
        hs = p + 1;
        he = rb;
        p = rb + 1;
    } else {
        he = memchr(p, ':', (size_t)(hend - p));
        if (!he)
            he = hend;
        p = he;
    }
    if (hs == he)
        BAD("no host");
    if (copy_part(r->host, sizeof r->host, hs, he) < 0)
        BAD("host name too long");
    if (p < hend) {
        if (*p != ':')
            BAD("junk after the host");
        long port = parse_num(p + 1, hend, 65535);
        if (port <= 0)
            BAD("port must be 1 to 65535");
        r->port = (int)port;
    }
    if (slash && slash + 1 < end) {
        long db = parse_num(slash + 1, end, 1000000);
        if (db < 0)
            BAD("database must be a number (/0, /1, ...)");
        r->db = (int)db;
    }
    snprintf(r->addr, sizeof r->addr, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host, r->port);
    return 0;
#undef BAD
}

/* ---- commands ---- */

static void cmd_unlink(rtmp_redis *r, rtmp_redis_cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        r->cmds = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* The command's callback, taken (it runs at most once). */
static rtmp_redis_reply_cb cmd_take(rtmp_redis_cmd *c)
{
    rtmp_redis_reply_cb cb = c->cb;
    if (cb) {
        c->cb = NULL;
        c->r->npending--;
    }
    return cb;
}

static void cmd_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_redis_cmd *c = w->data;
    rtmp_redis_reply_cb cb = cmd_take(c);
    /* c stays on the list until hiredis answers: the reply is dropped then */
    if (cb)
        cb(c, c->ud, RTMP_ERR_TIMEOUT, "timeout", NULL);
}

/* Orphan every command sent on the connection now going (they are freed
 * when hiredis answers them); the caller took their callbacks first. */
static void cmds_orphan(rtmp_redis *r)
{
    for (rtmp_redis_cmd *c = r->cmds, *next; c; c = next) {
        next = c->next;
        ev_timer_stop(r->loop, &c->timer);
        c->r = NULL;
        c->cb = NULL;
        c->prev = c->next = NULL;
    }
    r->cmds = NULL;
    r->npending = 0;
}

static void handshake_reply(rtmp_redis *r, rtmp_redis_cmd *c, redisReply *reply);

/* hiredis: the answer to a command (reply NULL: the connection went). */
static void reply_cb(redisAsyncContext *ac, void *reply_, void *privdata)
{
    rtmp_redis_cmd *c = privdata;
    redisReply *reply = reply_;
    rtmp_redis *r = c->r;
    if (!r) {
        free(c);
        return;
    }
    cmd_unlink(r, c);
    ev_timer_stop(r->loop, &c->timer);
    if (!reply && r->up) { /* lost: later commands fail at once, on_disconnect tells */
        r->up = 0;
        r->lost = 1;
        snprintf(r->reason, sizeof r->reason, "connection to %s lost: %s", r->addr,
                 ac->errstr ? ac->errstr : "closed");
    }
    if (c->hs) {
        handshake_reply(r, c, reply);
        free(c);
        return;
    }
    rtmp_redis_reply_cb cb = cmd_take(c);
    if (cb) {
        if (reply) {
            cb(c, c->ud, 0, NULL, reply);
        } else {
            char msg[760];
            snprintf(msg, sizeof msg, "not connected: %s", r->reason);
            cb(c, c->ud, RTMP_ERR_IO, msg, NULL); /* may close r: not used below */
        }
    }
    free(c);
}

/* Queue a command on the connection; the command, or NULL (no memory, or
 * hiredis refuses: the connection is going). */
static rtmp_redis_cmd *cmd_send(rtmp_redis *r, int argc, const char **argv, const size_t *lens, int hs)
{
    rtmp_redis_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->r = r;
    c->hs = hs;
    if (redisAsyncCommandArgv(r->ac, reply_cb, c, argc, argv, lens) != REDIS_OK) {
        free(c);
        return NULL;
    }
    c->next = r->cmds;
    if (r->cmds)
        r->cmds->prev = c;
    r->cmds = c;
    ev_init(&c->timer, cmd_timeout);
    c->timer.data = c;
    if (!hs) {
        ev_timer_set(&c->timer, r->command_timeout, 0);
        ev_timer_start(r->loop, &c->timer);
    }
    return c;
}

/* ---- the connection ---- */

/* Try again after the backoff, which grows. */
static void schedule_retry(rtmp_redis *r)
{
    if (r->closing)
        return;
    ev_timer_stop(r->loop, &r->retry);
    ev_timer_set(&r->retry, r->delay, 0);
    ev_timer_start(r->loop, &r->retry);
    r->delay *= r->retry_factor;
    if (r->delay > r->retry_max)
        r->delay = r->retry_max;
}

/* End the connection from here (a connect timeout, a failed handshake):
 * never from the connect or disconnect callback.  Nothing was up. */
static void conn_drop(rtmp_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->up = 0;
    ev_timer_stop(r->loop, &r->conn_timer);
    snprintf(r->reason, sizeof r->reason, "%s: %s", r->addr, why);
    cmds_orphan(r);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* deferred by hiredis inside a reply callback */
    }
    schedule_retry(r);
}

static void handshake_reply(rtmp_redis *r, rtmp_redis_cmd *c, redisReply *reply)
{
    if (!reply)
        return; /* the connection went: on_disconnect schedules the retry */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "%s", reply->str);
        LOG(RTMP_LOG_WARN, "redis %s: %s refused the connection: %s", r->name, r->addr, why);
        conn_drop(r, why);
        return;
    }
    if (c->hs != 2)
        return;
    ev_timer_stop(r->loop, &r->conn_timer);
    r->up = 1;
    r->delay = r->retry_min;
    r->attempts = 0;
    r->reason[0] = '\0';
    if (r->ever_up)
        LOG(RTMP_LOG_INFO, "redis %s: connection to %s regained", r->name, r->addr);
    else
        LOG(RTMP_LOG_INFO, "redis %s: connected to %s", r->name, r->addr);
    r->ever_up = 1;
    if (r->state_cb)
        r->state_cb(r, r->ud, 1, NULL); /* inside a reply callback: r may be closed */
}

/* hiredis: the TCP (or unix) connection is made, or failed.  No user code
 * from here: hiredis goes on using the context after it returns. */
static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rtmp_redis *r = ac->data;
    if (!r)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac when this returns */
        r->ac = NULL;
        ac->data = NULL;
        ev_timer_stop(r->loop, &r->conn_timer);
        snprintf(r->reason, sizeof r->reason, "%s: %s", r->addr, ac->errstr ? ac->errstr : "connect failed");
        LOG(RTMP_LOG_DEBUG, "redis %s: connecting to %s failed: %s", r->name, r->addr,
            ac->errstr ? ac->errstr : "?");
        schedule_retry(r);
        return;
    }
    if (!r->path[0]) {
        redisEnableKeepAlive(&ac->c);
        /* a host that stops answering (no RST) ends the connection once data
         * waits unacknowledged that long, instead of TCP's ~15 minutes: its
         * commands time out meanwhile, then the client reconnects */
        unsigned int ms = (unsigned int)(r->command_timeout * 4000 > 10000 ? r->command_timeout * 4000 : 10000);
        setsockopt(ac->c.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    char dbs[16];
    const char *argv[3];
    size_t lens[3];
    int ok = 1;
    if (r->has_pass) {
        int n = 0;
        argv[n] = "AUTH";
        lens[n++] = 4;
        if (r->user[0]) {
            argv[n] = r->user;
            lens[n++] = strlen(r->user);
        }
        argv[n] = r->pass;
        lens[n++] = strlen(r->pass);
        ok = ok && cmd_send(r, n, argv, lens, 1);
    }
    if (r->db >= 0) {
        snprintf(dbs, sizeof dbs, "%d", r->db);
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = dbs;
        lens[1] = strlen(dbs);
        ok = ok && cmd_send(r, 2, argv, lens, 1);
    }
    argv[0] = "PING";
    lens[0] = 4;
    ok = ok && cmd_send(r, 1, argv, lens, 2);
    if (!ok) /* out of memory: the connect timer ends this attempt */
        LOG(RTMP_LOG_WARN, "redis %s: out of memory for the handshake with %s", r->name, r->addr);
}

/* hiredis: a connection that was made has gone (called after every
 * command in flight got its NULL reply, just before hiredis frees ac). */
static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rtmp_redis *r = ac->data;
    if (!r)
        return; /* dropped or closed here */
    r->ac = NULL;
    ev_timer_stop(r->loop, &r->conn_timer);
    int was_up = r->up || r->lost;
    r->up = 0;
    r->lost = 0;
    const char *why = ac->err && ac->errstr ? ac->errstr : "closed";
    if (was_up) {
        if (!r->reason[0])
            snprintf(r->reason, sizeof r->reason, "connection to %s lost: %s", r->addr, why);
        LOG(RTMP_LOG_WARN, "redis %s: %s", r->name, r->reason);
    } else {
        snprintf(r->reason, sizeof r->reason, "%s: %s", r->addr, why);
        LOG(RTMP_LOG_DEBUG, "redis %s: %s", r->name, r->reason);
    }
    schedule_retry(r);
    if (was_up && r->state_cb)
        r->state_cb(r, r->ud, 0, r->reason); /* r->ac is NULL: a close from here leaves ac to hiredis */
}

static void conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    rtmp_redis *r = w->data;
    char why[100];
    snprintf(why, sizeof why, "no connection within %g s (connect_timeout)", r->connect_timeout);
    LOG(RTMP_LOG_DEBUG, "redis %s: %s: %s", r->name, r->addr, why);
    conn_drop(r, why);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    attempt(w->data);
}

/* A new connection attempt. */
static void attempt(rtmp_redis *r)
{
    r->attempts++;
    LOG(RTMP_LOG_DEBUG, "redis %s: connecting to %s (attempt %lu)", r->name, r->addr, r->attempts);
    redisAsyncContext *ac = r->path[0] ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->ip, r->port);
    if (!ac || ac->err) {
        snprintf(r->reason, sizeof r->reason, "%s: %s", r->addr, ac ? ac->errstr : "out of memory");
        LOG(RTMP_LOG_DEBUG, "redis %s: connecting to %s failed: %s", r->name, r->addr,
            ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    if (redisLibevAttach(r->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        snprintf(r->reason, sizeof r->reason, "%s: cannot attach to the loop", r->addr);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect); /* after the attach: it arms the write watcher */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    ev_timer_set(&r->conn_timer, r->connect_timeout, 0);
    ev_timer_start(r->loop, &r->conn_timer);
}

/* ---- public ---- */

/* A setting of cfg: its default when 0; -1 when below lo. */
static double setting(double v, double def, double lo)
{
    if (v == 0)
        return def;
    return v >= lo ? v : -1;
}

/* The settings of cfg with their defaults into r; a message for the
 * first out of range, or NULL. */
static const char *settings(rtmp_redis *r, const rtmp_redis_config *cfg)
{
    r->connect_timeout = setting(cfg->connect_timeout, RTMP_REDIS_CONNECT_TIMEOUT, 1e-3);
    r->command_timeout = setting(cfg->command_timeout, RTMP_REDIS_COMMAND_TIMEOUT, 1e-3);
    r->retry_min = setting(cfg->retry_min, RTMP_REDIS_RETRY_MIN, 1e-3);
    r->retry_max = setting(cfg->retry_max, RTMP_REDIS_RETRY_MAX, 1e-3);
    r->retry_factor = setting(cfg->retry_factor, RTMP_REDIS_RETRY_FACTOR, 1);
    return r->connect_timeout < 0 ? "connect_timeout must be at least 0.001 s"
         : r->command_timeout < 0 ? "command_timeout must be at least 0.001 s"
         : r->retry_min < 0 || r->retry_max < 0 ? "retry_min and retry_max must be at least 0.001 s"
         : r->retry_min > r->retry_max ? "retry_min must not exceed retry_max"
         : r->retry_factor < 0 ? "retry_factor must be >= 1" : NULL;
}

int rtmp_redis_check_config(const rtmp_redis_config *cfg, char *err, size_t errlen)
{
    rtmp_redis r;
    const char *bad = settings(&r, cfg);
    if (!bad)
        return 0;
    snprintf(err, errlen, "%s", bad);
    return RTMP_ERR_INVAL;
}

/* The host's address into r->ip, once: hiredis would look the name up
 * with a blocking getaddrinfo at every attempt, on the loop.  A name is
 * resolved here, when the client is made (a script's start, usually). */
static int resolve(rtmp_redis *r, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(r->host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve Redis host '%s': %s", r->host, rc ? gai_strerror(rc) : "no address");
        return RTMP_ERR_IO;
    }
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, r->ip, sizeof r->ip, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve Redis host '%s': %s", r->host, gai_strerror(rc));
        return RTMP_ERR_IO;
    }
    return 0;
}

rtmp_redis *rtmp_redis_new(rtmp_net *n, const rtmp_redis_config *cfg, rtmp_redis_state_cb state_cb,
                           void *ud, char *err, size_t errlen)
{
    rtmp_redis *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *bad = settings(r, cfg);
    if (bad || !cfg->url || parse_url(r, cfg->url, err, errlen) < 0) {
        if (bad || !cfg->url)
            snprintf(err, errlen, "%s", bad ? bad : "no Redis URL");
        free(r);
        return NULL;
    }
    if (!r->path[0] && resolve(r, err, errlen) < 0) {
        free(r);
        return NULL;
    }
    snprintf(r->name, sizeof r->name, "%s", cfg->name ? cfg->name : "redis");
    r->loop = rtmp_net_loop(n);
    r->delay = r->retry_min;
    r->state_cb = state_cb;
    r->ud = ud;
    snprintf(r->reason, sizeof r->reason, "connecting to %s", r->addr);
    ev_init(&r->retry, retry_cb);
    r->retry.data = r;
    ev_init(&r->conn_timer, conn_timeout);
    r->conn_timer.data = r;
    attempt(r);
    return r;
}

void rtmp_redis_close(rtmp_redis *r, int notify)
{
    if (!r || r->closing)
        return;
    r->closing = 1;
    r->state_cb = NULL;
    ev_timer_stop(r->loop, &r->retry);
    ev_timer_stop(r->loop, &r->conn_timer);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->up = 0;
    if (notify) { /* the callbacks may cancel other commands, or send (refused: closing) */
        for (rtmp_redis_cmd *c = r->cmds; c; c = c->next) {
            ev_timer_stop(r->loop, &c->timer);
            rtmp_redis_reply_cb cb = cmd_take(c);
            if (cb)
                cb(c, c->ud, RTMP_ERR_CLOSED, "closed", NULL);
        }
    }
    cmds_orphan(r);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* runs the orphans' callbacks: they are freed */
    }
    free(r);
}

int rtmp_redis_connected(const rtmp_redis *r) { return r->up; }

const char *rtmp_redis_address(const rtmp_redis *r) { return r->addr; }

size_t rtmp_redis_pending(const rtmp_redis *r) { return r->npending; }

rtmp_redis_cmd *rtmp_redis_command(rtmp_redis *r, int argc, const char **argv, const size_t *lens,
                                   rtmp_redis_reply_cb cb, void *ud, char *err, size_t errlen)
{
    if (r->closing) {
        snprintf(err, errlen, "closed");
        return NULL;
    }
    if (!r->up || !r->ac) {
        snprintf(err, errlen, "not connected: %s", r->reason);
        return NULL;
    }
    errno = 0;
    rtmp_redis_cmd *c = cmd_send(r, argc, argv, lens, 0);
    if (!c) {
        snprintf(err, errlen, "%s", errno == ENOMEM ? "out of memory" : "not connected: the connection is closing");
        return NULL;
    }
    c->cb = cb;
    c->ud = ud;
    r->npending++;
    return c;
}

void rtmp_redis_cancel(rtmp_redis_cmd *c)
{
    if (!c->cb)
        return;
    if (c->r) {
        ev_timer_stop(c->r->loop, &c->timer);
        c->r->npending--;
    }
    c->cb = NULL; /* freed when hiredis answers */
}
