/*
 * conn.c: one connection, sans I/O: a session plus its deadlines,
 * connect detection and closing policy (conn.h).
 */
#include "conn.h"
#include "amf0.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What every message and every read touches comes first (the handler's
 * message call, the deadlines' fields, then the config, whose deadline
 * fields lead): with many connections, each read finds these lines out of
 * the cache, so the fewer the better. */
struct rtmp_conn_core {
    rtmp_session          *s;
    void                  *ud;
    double                 now;          /* the time of the call in progress */
    double                 last_active;  /* a whole message in, or output the peer
                                            took (passthrough: any byte either way) */
    int                    got_connect;  /* accepted: a connect whose body decodes arrived */
    int                    closing;
    rtmp_conn_core_handler h;
    double                 started;      /* rtmp_conn_core_new */
    double                 ready_at;     /* handshake done */
    rtmp_conn_config       cfg;
    int                    how;          /* RTMP_CLOSE_* */
    uint64_t               written;      /* output the peer took */
    uint64_t               exempt_end;   /* written + pending at rtmp_conn_core_exempt_queued */
    unsigned long          id;           /* rtmp_conn_core_set_label */
    const char            *peer;         /* rtmp_conn_core_set_label: the owner's, not copied */
    char                  *reason;       /* the close's, on the heap (NULL before, or on OOM) */
};

void rtmp_conn_config_default(rtmp_conn_config *cfg, int role)
{
    memset(cfg, 0, sizeof *cfg);
    rtmp_session_config_default(&cfg->session, role);
    cfg->handshake_timeout = 10;
    cfg->connect_timeout = 10;
    cfg->session.reader.max_amf_message = 1u << 20; /* decoded into Lua: keep it small */
    cfg->idle_timeout = 60;
    cfg->max_output = 16 * 1024 * 1024;
    cfg->max_queue_bytes = 4 * 1024 * 1024;
    cfg->max_queue_time = 10;
    cfg->max_queue_stall = 30;
    cfg->linger = 30;
}

void rtmp_conn_core_close(rtmp_conn_core *cc, const char *reason, int how)
{
    if (cc->closing)
        return;
    cc->closing = 1;
    cc->how = how;
    cc->reason = strdup(reason ? reason : "closed");
    if (cc->h.closing)
        cc->h.closing(cc->ud);
}

void rtmp_conn_core_peer_closed(rtmp_conn_core *cc)
{
    rtmp_conn_core_close(cc, RTMP_CLOSE_PEER, RTMP_CLOSE_NORMAL);
}

static int on_ready(void *ud)
{
    rtmp_conn_core *cc = ud;
    cc->ready_at = cc->last_active = cc->now;
    if (cc->h.ready && cc->h.ready(cc->ud) < 0)
        return RTMP_ERR_STOP;
    return cc->closing ? RTMP_ERR_STOP : 0;
}

/* A connect command: AMF0 (type 20), or AMF3 (type 17: a format byte,
 * then the name as an AMF0 string). */
static int is_connect(const rtmp_msg_hdr *h, const uint8_t *p)
{
    static const uint8_t name[10] = { 0x02, 0x00, 0x07, 'c', 'o', 'n', 'n', 'e', 'c', 't' };
    size_t off = h->type == RTMP_MSG_AMF0_COMMAND ? 0 : h->type == RTMP_MSG_AMF3_COMMAND ? 1 : SIZE_MAX;
    return off != SIZE_MAX && h->length >= off + sizeof name && memcmp(p + off, name, sizeof name) == 0;
}

static int on_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    rtmp_conn_core *cc = ud;
    if (cc->closing)
        return RTMP_ERR_STOP;
    cc->last_active = cc->now; /* a whole message: the peer is alive */
    /* Connect detection (accepted connections): a connect whose body
     * decodes ends the connect deadline; one that does not still goes to
     * the handler (which may answer it with _error), then closes the
     * connection. */
    int undecodable = 0;
    if (!cc->got_connect && cc->cfg.session.role == RTMP_ROLE_SERVER && is_connect(h, payload)) {
        size_t off = h->type == RTMP_MSG_AMF3_COMMAND ? 1 : 0; /* the format byte */
        undecodable = rtmp_amf0_check_body(payload + off, h->length - off, cc->cfg.session.max_amf_depth);
        cc->got_connect = undecodable == 0;
    }
    int rc = cc->h.message ? cc->h.message(cc->ud, h, payload, applied) : 0;
    if (undecodable < 0) {
        char reason[80];
        snprintf(reason, sizeof reason, "undecodable connect: %s", rtmp_strerror(undecodable));
        rtmp_conn_core_close(cc, reason, RTMP_CLOSE_FAIL); /* after the handler's answer */
    }
    return rc < 0 || cc->closing ? RTMP_ERR_STOP : 0;
}

rtmp_conn_core *rtmp_conn_core_new(const rtmp_conn_config *cfg, const rtmp_conn_core_handler *h, void *ud,
                                   double now)
{
    rtmp_conn_core *cc = calloc(1, sizeof *cc);
    if (!cc)
        return NULL;
    static const rtmp_session_handler sh = { on_ready, on_message };
    cc->s = rtmp_session_new(&cfg->session, &sh, cc);
    if (!cc->s) {
        free(cc);
        return NULL;
    }
    cc->cfg = *cfg;
    if (h)
        cc->h = *h;
    cc->ud = ud;
    cc->now = cc->started = cc->last_active = now;
    return cc;
}

void rtmp_conn_core_free(rtmp_conn_core *cc)
{
    if (!cc)
        return;
    rtmp_session_free(cc->s);
    free(cc->reason);
    free(cc);
}

void rtmp_conn_core_warm(const rtmp_conn_core *cc, rtmp_warm *w)
{
    rtmp_session_warm(cc->s, w);
    rtmp_warm_add(w, cc, sizeof *cc);
}

void rtmp_conn_core_prefetch(const rtmp_conn_core *cc)
{
    /* the first line (s, ud, usually closing; not always the output
     * handler, which starts past 64 bytes), the output and queue bounds,
     * and the counters */
    __builtin_prefetch(cc);
    __builtin_prefetch(&cc->cfg.max_queue_bytes);
    __builtin_prefetch(&cc->written);
}

void rtmp_conn_core_prefetch_next(const rtmp_conn_core *cc)
{
    rtmp_session_prefetch(cc->s);
    __builtin_prefetch(cc->ud, 1); /* the owner's (net.c's output handler marks it) */
}

rtmp_session *rtmp_conn_core_session(rtmp_conn_core *cc) { return cc->s; }
const rtmp_conn_config *rtmp_conn_core_config(const rtmp_conn_core *cc) { return &cc->cfg; }
int rtmp_conn_core_closing(const rtmp_conn_core *cc) { return cc->closing; }
const char *rtmp_conn_core_reason(const rtmp_conn_core *cc)
{
    return cc->reason ? cc->reason : cc->closing ? "closed" : "";
}
int rtmp_conn_core_close_how(const rtmp_conn_core *cc) { return cc->how; }
int rtmp_conn_core_got_connect(const rtmp_conn_core *cc) { return cc->got_connect; }
double rtmp_conn_core_now(const rtmp_conn_core *cc) { return cc->now; }

size_t rtmp_conn_core_memory(const rtmp_conn_core *cc)
{
    return sizeof *cc + rtmp_session_memory(cc->s);
}

int rtmp_conn_core_start(rtmp_conn_core *cc)
{
    return rtmp_session_start(cc->s);
}

ssize_t rtmp_conn_core_feed(rtmp_conn_core *cc, const uint8_t *in, size_t len, double now)
{
    if (cc->closing)
        return RTMP_ERR_CLOSED;
    cc->now = now;
    ssize_t rc = rtmp_session_feed(cc->s, in, len);
    if (cc->closing)
        return RTMP_ERR_CLOSED;
    if (rc < 0 && rc != RTMP_ERR_STOP) {
        char reason[200];
        snprintf(reason, sizeof reason, "%s%s", rtmp_session_ready(cc->s) ? "" : "handshake: ",
                 rtmp_strerror((int)rc));
        rtmp_conn_core_close(cc, reason, RTMP_CLOSE_FAIL);
    }
    return rc;
}

void rtmp_conn_core_wrote(rtmp_conn_core *cc, size_t n, double now)
{
    cc->now = now;
    cc->written += n;
    if (n > 0)
        cc->last_active = now;
}

void rtmp_conn_core_activity(rtmp_conn_core *cc, double now)
{
    cc->now = cc->last_active = now;
}

/* The handshake deadline runs: an RTMP connection whose handshake is not done. */
static int awaits_handshake(const rtmp_conn_core *cc)
{
    return !cc->cfg.passthrough && cc->cfg.handshake_timeout > 0 && !rtmp_session_ready(cc->s);
}

/* The connect deadline runs: an accepted RTMP connection after its
 * handshake, waiting for its first connect command. */
static int awaits_connect(const rtmp_conn_core *cc)
{
    return !cc->cfg.passthrough && cc->cfg.session.role == RTMP_ROLE_SERVER && cc->cfg.connect_timeout > 0
        && !cc->got_connect && rtmp_session_ready(cc->s);
}

double rtmp_conn_core_next_deadline(const rtmp_conn_core *cc)
{
    double next = 0;
    if (cc->closing)
        return 0;
    if (awaits_handshake(cc))
        next = cc->started + cc->cfg.handshake_timeout;
    if (awaits_connect(cc))
        next = cc->ready_at + cc->cfg.connect_timeout;
    if (cc->cfg.idle_timeout > 0) {
        double idle = cc->last_active + cc->cfg.idle_timeout;
        if (next == 0 || idle < next)
            next = idle;
    }
    return next;
}

int rtmp_conn_core_tick(rtmp_conn_core *cc, double now)
{
    if (cc->closing)
        return 1;
    cc->now = now;
    if (awaits_handshake(cc) && now >= cc->started + cc->cfg.handshake_timeout)
        rtmp_conn_core_close(cc, RTMP_CLOSE_HANDSHAKE_TIMEOUT, RTMP_CLOSE_FAIL);
    else if (awaits_connect(cc) && now >= cc->ready_at + cc->cfg.connect_timeout)
        rtmp_conn_core_close(cc, RTMP_CLOSE_CONNECT_TIMEOUT, RTMP_CLOSE_FAIL);
    else if (cc->cfg.idle_timeout > 0 && now >= cc->last_active + cc->cfg.idle_timeout)
        rtmp_conn_core_close(cc, RTMP_CLOSE_IDLE_TIMEOUT, RTMP_CLOSE_FAIL);
    return cc->closing;
}

/* ---- output ---- */

void rtmp_conn_core_set_label(rtmp_conn_core *cc, unsigned long id, const char *peer)
{
    cc->id = id;
    cc->peer = peer;
}

unsigned long rtmp_conn_core_id(const rtmp_conn_core *cc) { return cc->id; }
const char *rtmp_conn_core_peer(const rtmp_conn_core *cc) { return cc->peer ? cc->peer : ""; }
uint64_t rtmp_conn_core_written(const rtmp_conn_core *cc) { return cc->written; }
size_t rtmp_conn_core_pending(const rtmp_conn_core *cc) { return rtmp_session_pending(cc->s); }

void rtmp_conn_core_exempt_queued(rtmp_conn_core *cc)
{
    cc->exempt_end = cc->written + rtmp_session_pending(cc->s);
}

size_t rtmp_conn_core_exempt(const rtmp_conn_core *cc)
{
    size_t left = cc->exempt_end > cc->written ? (size_t)(cc->exempt_end - cc->written) : 0;
    size_t pending = rtmp_session_pending(cc->s);
    return left < pending ? left : pending;
}

int rtmp_conn_core_check_output(rtmp_conn_core *cc, size_t pending)
{
    if (cc->closing)
        return RTMP_ERR_CLOSED;
    size_t exempt = rtmp_conn_core_exempt(cc);
    if (pending - (exempt < pending ? exempt : pending) > cc->cfg.max_output) {
        char reason[128];
        snprintf(reason, sizeof reason, "output queue over %zu bytes (slow reader)", cc->cfg.max_output);
        rtmp_conn_core_close(cc, reason, RTMP_CLOSE_DROP);
        return RTMP_ERR_QUEUE_FULL;
    }
    return 0;
}

int rtmp_conn_core_output(rtmp_conn_core *cc, int media)
{
    int rc = rtmp_conn_core_check_output(cc, rtmp_session_pending(cc->s));
    if (rc < 0)
        return rc;
    if (cc->h.output)
        cc->h.output(cc->ud, media);
    return 0;
}
