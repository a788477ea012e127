/*
 * loader.c: rtmp-loader, the benchmark load generator.
 *
 * Modes (see usage below and bench/README.md):
 *   fanout  one publisher (--flv) and --players N players of the same stream
 *   ingest  --publishers M publishers, no players
 *   cycles  --cycles K connect..first-media..close cycles while --flv publishes
 *   idle    --idle N connections held at --stage
 *
 * Each mode runs through phases: the publisher connects, a warmup, a
 * ramp that opens connections at --ramp per second, then the measurement
 * window.  A deadline bounds the whole run whatever happens.  Results go
 * to stdout as one JSON object (--json) and to stderr as a short summary.
 */
#include "loader.h"
#include "url.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define SETUP_TIMEOUT 10.0   /* seconds a connection may take to reach its stage */
/* Seconds the cycles phase may last without --timeout: 30 plus 250 ms
 * per cycle and concurrent slot. */
#define CYCLES_CAP(o) (30.0 + 0.25 * (o)->cycles / (o)->concurrency)
#define READ_BUFFER   (256u << 10)

enum { PH_PUBLISHER = 0, PH_WARMUP, PH_RAMP, PH_WINDOW, PH_DONE };
static const char *const phase_names[] = { "publisher setup", "warmup", "ramp", "window", "done" };
static const char *const mode_names[] = { "fanout", "ingest", "cycles", "idle" };

static const char usage_text[] =
    "usage: rtmp-loader --url rtmp[s]://HOST:PORT/APP/STREAM [options]\n"
    "\n"
    "  --tls               TLS (as rtmps://) whatever the URL's scheme; no verification\n"
    "  --flv FILE          publish FILE to --url in real time, looping (@setDataFrame first,\n"
    "                      chunk size 4096)\n"
    "  --players N         N players of --url (fanout mode)\n"
    "  --ramp R            open connections at R per second (default 500)\n"
    "  --duration S        measurement window in seconds, from when every player plays (default 10)\n"
    "  --warmup S          seconds between the publisher's start and the first player (default 2)\n"
    "  --server-pid PID    sample the server's CPU time and VmRSS from /proc\n"
    "  --publishers M      ingest mode: M publishers of FILE to STREAM_0 .. STREAM_<M-1>\n"
    "  --cycles K          setup mode: K connect..play..first-media..close cycles\n"
    "  --concurrency C     cycles in flight at once (default 1)\n"
    "  --idle N            idle mode: N connections held at --stage for --duration\n"
    "  --stage tcp|connect|play   where idle connections hold (default play)\n"
    "  --timeout S         stop the whole run after S seconds (default: computed per mode)\n"
    "  --quickack          set TCP_QUICKACK after every read (no delayed ACKs from the loader)\n"
    "  --threads T         fanout: spread the players over T threads (default 1)\n"
    "  --json              print the results as one JSON object on stdout\n"
    "  -h, --help          this help\n";

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "rtmp-loader: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- options ---- */

static double num_arg(const char *opt, const char *s, double min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min) || isinf(v)) {
        fprintf(stderr, "rtmp-loader: bad value for --%s: %s\n", opt, s);
        exit(2);
    }
    return v;
}

static int int_arg(const char *opt, const char *s, int min)
{
    double v = num_arg(opt, s, min);
    if (v != floor(v) || v > 10000000) {
        fprintf(stderr, "rtmp-loader: bad value for --%s: %s\n", opt, s);
        exit(2);
    }
    return (int)v;
}

static void parse_options(loader_opts *o, int argc, char **argv)
{
    enum { O_URL = 256, O_FLV, O_PLAYERS, O_RAMP, O_DURATION, O_WARMUP, O_PID, O_PUBLISHERS,
           O_CYCLES, O_CONCURRENCY, O_IDLE, O_STAGE, O_TIMEOUT, O_JSON, O_QUICKACK, O_THREADS, O_TLS };
    static const struct option longopts[] = {
        { "url", required_argument, NULL, O_URL },
        { "flv", required_argument, NULL, O_FLV },
        { "players", required_argument, NULL, O_PLAYERS },
        { "ramp", required_argument, NULL, O_RAMP },
        { "duration", required_argument, NULL, O_DURATION },
        { "warmup", required_argument, NULL, O_WARMUP },
        { "server-pid", required_argument, NULL, O_PID },
        { "publishers", required_argument, NULL, O_PUBLISHERS },
        { "cycles", required_argument, NULL, O_CYCLES },
        { "concurrency", required_argument, NULL, O_CONCURRENCY },
        { "idle", required_argument, NULL, O_IDLE },
        { "stage", required_argument, NULL, O_STAGE },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "json", no_argument, NULL, O_JSON },
        { "quickack", no_argument, NULL, O_QUICKACK },
        { "threads", required_argument, NULL, O_THREADS },
        { "tls", no_argument, NULL, O_TLS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(o, 0, sizeof *o);
    o->ramp = 500;
    o->duration = 10;
    o->warmup = 2;
    o->concurrency = 1;
    o->stage = LOADER_STAGE_PLAY;
    o->players = -1;
    o->threads = 1;
    int ch, modes = 0;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_URL: o->url = optarg; break;
        case O_FLV: o->flv = optarg; break;
        case O_PLAYERS: o->players = int_arg("players", optarg, 0); break;
        case O_RAMP: o->ramp = num_arg("ramp", optarg, 0.001); break;
        case O_DURATION: o->duration = num_arg("duration", optarg, 0.001); break;
        case O_WARMUP: o->warmup = num_arg("warmup", optarg, 0); break;
        case O_PID: o->server_pid = (pid_t)int_arg("server-pid", optarg, 1); break;
        case O_PUBLISHERS: o->publishers = int_arg("publishers", optarg, 1); modes |= 1; break;
        case O_CYCLES: o->cycles = int_arg("cycles", optarg, 1); modes |= 2; break;
        case O_CONCURRENCY: o->concurrency = int_arg("concurrency", optarg, 1); break;
        case O_IDLE: o->idle = int_arg("idle", optarg, 1); modes |= 4; break;
        case O_STAGE:
            if (strcmp(optarg, "tcp") == 0)
                o->stage = LOADER_STAGE_TCP;
            else if (strcmp(optarg, "connect") == 0)
                o->stage = LOADER_STAGE_CONNECT;
            else if (strcmp(optarg, "play") == 0)
                o->stage = LOADER_STAGE_PLAY;
            else
                die("--stage must be tcp, connect or play, not %s", optarg);
            break;
        case O_TIMEOUT: o->timeout = num_arg("timeout", optarg, 0.001); break;
        case O_JSON: o->json = 1; break;
        case O_QUICKACK: o->quickack = 1; break;
        case O_THREADS: o->threads = int_arg("threads", optarg, 1); break;
        case O_TLS: o->tls = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        default: fputs(usage_text, stderr); exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument: %s", argv[optind]);
    if (!o->url)
        die("%s", "--url is required (try --help)");
    if (modes & (modes - 1))
        die("%s", "--publishers, --cycles and --idle are different modes: give one");
    o->mode = modes & 1 ? LOADER_INGEST : modes & 2 ? LOADER_CYCLES : modes & 4 ? LOADER_IDLE : LOADER_FANOUT;
    if ((o->mode == LOADER_INGEST || o->mode == LOADER_CYCLES) && !o->flv)
        die("%s mode needs --flv", mode_names[o->mode]);
    if (o->mode == LOADER_FANOUT && o->players < 0 && !o->flv)
        die("%s", "nothing to do: give --players, --flv, --publishers, --cycles or --idle");
    if (o->mode == LOADER_IDLE && o->flv) {
        fprintf(stderr, "rtmp-loader: idle mode publishes nothing; --flv ignored\n");
        o->flv = NULL;
    }
    if (o->players < 0)
        o->players = 0;
    if (o->threads > 64)
        die("%s", "--threads: at most 64");
    if (o->threads > 1 && o->mode != LOADER_FANOUT) {
        fprintf(stderr, "rtmp-loader: --threads applies to fanout players only; one thread here\n");
        o->threads = 1;
    }
}

/* rtmp[s]://HOST[:PORT]/APP[/STREAM], taken apart by the core (url.h);
 * HOST may be [v6].  TLS for rtmps:// or --tls: one client context, no
 * verification. */
static void parse_url(loader_bench *b, const char *url)
{
    rtmp_url u;
    if (rtmp_url_parse(url, strlen(url), &u) < 0)
        die("--url must be rtmp[s]://HOST[:PORT]/APP[/STREAM]: %s", url);
    if (u.app.len == 0)
        die("no application in %s", url);
    if (u.host.len >= sizeof b->host || u.port.len >= sizeof b->port || u.app.len >= sizeof b->app
        || u.path.len >= sizeof b->stream || u.tc_url.len >= sizeof b->tcurl)
        die("URL too long: %s", url);
    memcpy(b->host, u.host.s, u.host.len);
    memcpy(b->port, u.port.s, u.port.len);
    memcpy(b->app, u.app.s, u.app.len);
    memcpy(b->stream, u.path.s, u.path.len);
    memcpy(b->tcurl, u.tc_url.s, u.tc_url.len);
    if (u.tls || b->o.tls) {
        b->tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!b->tls_ctx)
            die("%s", "cannot make a TLS context");
        SSL_CTX_set_verify(b->tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(b->tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_options(b->tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    }

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int rc = getaddrinfo(b->host, b->port, &hints, &ai);
    if (rc != 0)
        die("cannot resolve the host: %s", gai_strerror(rc));
    memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
    b->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            fprintf(stderr, "rtmp-loader: cannot raise the open file limit: %s\n", strerror(errno));
    }
}

/* ---- phases ---- */

static void window_begin(loader_bench *b);
static void window_end(loader_bench *b);
static void cycles_fill(loader_bench *b);

static void no_memory(void)
{
    fprintf(stderr, "rtmp-loader: out of memory\n");
    exit(1);
}

/* Stop the run now (after the window or instead of it). */
static void finish(loader_bench *b)
{
    if (b->phase == PH_DONE)
        return;
    if (b->phase == PH_WINDOW) {
        window_end(b);
        return;
    }
    b->phase = PH_DONE;
    b->t_window_end = loader_now();
    b->t_window = b->t_window_end;
    atomic_store(&b->window_over, 1);
    ev_break(b->loop, EVBREAK_ALL);
}

static void fatal(loader_bench *b, const char *why)
{
    fprintf(stderr, "rtmp-loader: %s\n", why);
    b->fatal = 1;
    finish(b);
}

static void add_reason(loader_reason *reasons, int *n, const char *reason, int count)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(reasons[i].text, reason) == 0) {
            reasons[i].count += count;
            return;
        }
    if (*n < LOADER_MAX_REASONS) {
        snprintf(reasons[*n].text, sizeof reasons[0].text, "%s", reason);
        reasons[(*n)++].count = count;
    }
}

static void phase_timer(loader_bench *b, double after, void (*cb)(struct ev_loop *, ev_timer *, int))
{
    ev_timer_stop(b->loop, &b->phase_timer);
    ev_timer_init(&b->phase_timer, cb, after, 0);
    b->phase_timer.data = b;
    ev_timer_start(b->loop, &b->phase_timer);
}

/* Connections the ramp opens: players (fanout, idle) or publishers (ingest). */
static int ramp_total(const loader_bench *b)
{
    switch (b->o.mode) {
    case LOADER_FANOUT: return b->o.players;
    case LOADER_INGEST: return b->o.publishers;
    case LOADER_IDLE: return b->o.idle;
    default: return 0;
    }
}

static int is_ramp_conn(const loader_conn *c)
{
    const loader_bench *b = c->b;
    if (b->o.mode == LOADER_INGEST)
        return c->role == LOADER_PUBLISHER;
    return (b->o.mode == LOADER_FANOUT || b->o.mode == LOADER_IDLE) && c->role == LOADER_PLAYER;
}

static void ingest_warm(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    window_begin(w->data);
}

/* Main thread: is every ramp connection where it should be? */
static void check_ramp_done(loader_bench *b)
{
    if (b->phase != PH_RAMP)
        return;
    int total = ramp_total(b), launched = 0, reached = 0, failed = 0, video = 0, lost = 0;
    for (int i = 0; i < b->nworkers; i++) {
        loader_worker *w = &b->workers[i];
        launched += atomic_load(&w->launched);
        reached += atomic_load(&w->reached);
        failed += atomic_load(&w->failed_early);
        video += atomic_load(&w->video);
        lost += atomic_load(&w->lost);
    }
    if (launched < total || reached + failed < total)
        return;
    if (total > 0 && reached == 0) {
        fatal(b, "no connection reached its stage");
        return;
    }
    if (b->t_ramp_done == 0)
        b->t_ramp_done = loader_now();
    /* Fanout: players count as started once they get video (a server may
     * hold video back until the next keyframe); give them one setup
     * timeout for it. */
    if (b->o.mode == LOADER_FANOUT && b->flv.has_video && video + lost < reached
        && loader_now() - b->t_ramp_done < SETUP_TIMEOUT)
        return;
    if (b->o.mode == LOADER_INGEST) {
        b->phase = PH_WARMUP;
        phase_timer(b, b->o.warmup, ingest_warm);
    } else {
        window_begin(b);
    }
}

/* Worker thread: open ramp connection i. */
static void launch_one(loader_worker *w, int i)
{
    loader_bench *b = w->b;
    loader_conn *c;
    atomic_fetch_add(&w->launched, 1);
    if (b->o.mode == LOADER_INGEST) {
        c = loader_conn_start(w, LOADER_PUBLISHER, i, b->pub_names[i], LOADER_ST_ACTIVE, 1);
        b->pubs[i] = c;
    } else {
        int stop = b->o.mode == LOADER_IDLE ? b->o.stage : LOADER_STAGE_PLAY;
        c = loader_conn_start(w, LOADER_PLAYER, i, b->stream, stop, 1);
        b->players[i] = c;
    }
    if (!c)
        no_memory();
}

static void ramp_begin(loader_bench *b)
{
    b->phase = PH_RAMP;
    b->t_ramp = loader_now();
    atomic_store(&b->ramp_on, 1);   /* publishes t_ramp to the workers */
    check_ramp_done(b);             /* nothing to open */
}

static void warmup_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    loader_bench *b = w->data;
    if (b->o.server_pid)
        b->rss_before = loader_proc_rss_kb(b->o.server_pid);
    if (b->o.mode == LOADER_CYCLES) {
        window_begin(b);
        cycles_fill(b);
    } else {
        ramp_begin(b);
    }
}

static void window_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    window_end(w->data);
}

static void window_begin(loader_bench *b)
{
    b->phase = PH_WINDOW;
    b->t_window = loader_now();
    atomic_store(&b->in_window, 1);
    if (b->o.server_pid)
        b->cpu0 = loader_proc_cpu(b->o.server_pid);
    b->self_cpu0 = loader_self_cpu();
    if (b->o.mode != LOADER_CYCLES)
        phase_timer(b, b->o.duration, window_done);
    else
        ev_timer_stop(b->loop, &b->phase_timer);
}

static void window_end(loader_bench *b)
{
    if (b->phase != PH_WINDOW)
        return;
    b->t_window_end = loader_now();
    atomic_store(&b->in_window, 0);
    atomic_store(&b->window_over, 1);
    if (b->o.server_pid) {
        b->cpu1 = loader_proc_cpu(b->o.server_pid);
        b->rss_after = loader_proc_rss_kb(b->o.server_pid);
    }
    b->self_cpu1 = loader_self_cpu();
    /* The publishers' backlog is read now, while they are open (they all
     * live in the main thread). */
    for (int i = 0; i < b->npubs; i++) {
        loader_conn *c = b->pubs[i];
        if (c && c->pub && c->reached)
            c->pub->lag_at_end = c->state == LOADER_ST_CLOSED ? NAN : loader_pub_lag_ms(c);
    }
    b->phase = PH_DONE;
    ev_break(b->loop, EVBREAK_ALL);
}

/* Cycles mode (main thread only): keep --concurrency cycles in flight
 * until --cycles are done. */
static void cycles_fill(loader_bench *b)
{
    if (b->filling)
        return;
    b->filling = 1;
    while (b->phase == PH_WINDOW && b->inflight < b->o.concurrency && b->launched < b->o.cycles) {
        b->launched++;
        b->inflight++;
        loader_conn_start(&b->workers[0], LOADER_PLAYER, b->launched - 1, b->stream, LOADER_STAGE_PLAY, 0);
    }
    b->filling = 0;
    if (b->phase == PH_WINDOW && b->completed >= b->o.cycles)
        window_end(b);
}

/* ---- events from connections (in their worker's thread) ---- */

void loader_on_reached(loader_conn *c)
{
    loader_bench *b = c->b;
    loader_worker *w = c->w;
    if (c->role == LOADER_PUBLISHER && b->o.mode != LOADER_INGEST) {
        /* the one publisher of fanout/cycles: warm up, then players */
        b->publishing = 1;
        if (b->phase == PH_PUBLISHER) {
            b->phase = PH_WARMUP;
            phase_timer(b, b->o.warmup, warmup_done);
        }
        return;
    }
    if (c->role == LOADER_PUBLISHER)
        b->publishing++;   /* ingest: main thread */
    if (c->stop_at == LOADER_ST_ACTIVE)   /* play or publish start */
        loader_samples_add(&w->setup_status, (c->t_status - c->t_start) * 1000.0);
    if (is_ramp_conn(c))
        atomic_fetch_add(&w->reached, 1);
}

void loader_on_media(loader_conn *c)
{
    loader_bench *b = c->b;
    loader_samples_add(&c->w->setup_media, (c->t_media - c->t_start) * 1000.0);
    if (b->o.mode == LOADER_CYCLES) {
        b->cycles_ok++;
        c->dead = 1;   /* done: closed once the read callback returns */
    }
}

void loader_on_video(loader_conn *c)
{
    if (c->b->o.mode == LOADER_FANOUT && c->reached)
        atomic_fetch_add(&c->w->video, 1);
}

void loader_on_fail(loader_conn *c, const char *reason)
{
    loader_bench *b = c->b;
    loader_worker *w = c->w;
    char text[192];
    w->errors++;
    snprintf(text, sizeof text, "%s: %s", c->role == LOADER_PUBLISHER ? "publisher" : "player", reason);
    add_reason(w->reasons, &w->nreasons, text, 1);
    if (c->role == LOADER_PUBLISHER && b->o.mode != LOADER_INGEST) {
        b->publishing = 0;
        /* Without it nothing can be measured, except in an ongoing fanout window. */
        if (b->phase != PH_WINDOW || b->o.mode == LOADER_CYCLES) {
            if (b->phase != PH_WINDOW)
                b->fatal = 1;
            finish(b);
        }
        return;
    }
    if (is_ramp_conn(c) && !c->reached)
        atomic_fetch_add(&w->failed_early, 1);
}

void loader_on_closed(loader_conn *c)
{
    loader_bench *b = c->b;
    if (b->o.mode == LOADER_FANOUT && c->role == LOADER_PLAYER && c->reached && !c->got_video)
        atomic_fetch_add(&c->w->lost, 1);
    if (b->o.mode == LOADER_CYCLES && c->role == LOADER_PLAYER) {
        b->inflight--;
        b->completed++;
        cycles_fill(b);
    }
}

/* ---- workers ---- */

/* A worker's periodic work: open its share of the ramp, fail connections
 * stuck before their stage. */
static void worker_tick(loader_worker *w)
{
    loader_bench *b = w->b;
    double now = loader_now();
    if (atomic_load(&b->ramp_on) && !atomic_load(&b->window_over)) {
        int total = ramp_total(b);
        double due = floor(b->o.ramp * (now - b->t_ramp)) + 1;
        int target = due < total ? (int)due : total;
        while (w->next < target) {
            launch_one(w, w->next);
            w->next += b->nworkers;
        }
    }
    if (now - w->last_scan >= 0.1) {
        w->last_scan = now;
        loader_conn *c = w->live, *next;
        for (; c; c = next) {
            next = c->next;
            int waiting = !c->reached
                       || (b->o.mode == LOADER_CYCLES && c->role == LOADER_PLAYER && !c->got_media);
            if (waiting && !c->dead && now - c->t_start > SETUP_TIMEOUT) {
                loader_conn_fail(c, "setup timeout (%.0f s) in %s%s", SETUP_TIMEOUT, loader_state_name(c->state),
                                 c->reached ? ", no media" : "");
                loader_conn_close(c);
            }
        }
    }
}

static void worker_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    worker_tick(t->data);
}

static void worker_stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *worker_main(void *arg)
{
    loader_worker *w = arg;
    ev_run(w->loop, 0);
    return NULL;
}

static void worker_init(loader_bench *b, loader_worker *w, int id)
{
    w->b = b;
    w->id = id;
    w->next = id;
    w->rbuf_size = READ_BUFFER;
    w->rbuf = malloc(w->rbuf_size);
    if (!w->rbuf || loader_hist_init(&w->latency) < 0)
        no_memory();
    w->loop = id == 0 ? b->loop : ev_loop_new(EVFLAG_AUTO);
    if (!w->loop)
        die("%s", "cannot start a libev loop");
    if (id > 0) {
        ev_timer_init(&w->tick, worker_tick_cb, 0.01, 0.01);
        w->tick.data = w;
        ev_timer_start(w->loop, &w->tick);
        ev_async_init(&w->stop, worker_stop_cb);
        ev_async_start(w->loop, &w->stop);
    }
}

/* Start the threads of workers 1 .. n-1, with every signal blocked (the
 * main thread takes SIGINT/SIGTERM). */
static void workers_start(loader_bench *b)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 1; i < b->nworkers; i++) {
        loader_worker *w = &b->workers[i];
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0)
            die("cannot start a thread: %s", strerror(rc));
        w->threaded = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void workers_stop(loader_bench *b)
{
    for (int i = 1; i < b->nworkers; i++) {
        loader_worker *w = &b->workers[i];
        if (!w->threaded)
            continue;
        ev_async_send(w->loop, &w->stop);
        pthread_join(w->thread, NULL);
        w->threaded = 0;
    }
}

/* ---- timers ---- */

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    loader_bench *b = w->data;
    worker_tick(&b->workers[0]);
    check_ramp_done(b);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    loader_bench *b = w->data;
    char why[128];
    snprintf(why, sizeof why, "run deadline (%.0f s) reached during the %s", w->repeat, phase_names[b->phase]);
    fprintf(stderr, "rtmp-loader: %s\n", why);
    b->timed_out = 1;
    if (b->phase != PH_WINDOW)
        b->fatal = 1;
    finish(b);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    loader_bench *b = w->data;
    fprintf(stderr, "rtmp-loader: interrupted during the %s\n", phase_names[b->phase]);
    b->fatal = 1;   /* results so far are printed, marked incomplete */
    finish(b);
}

static double run_deadline(const loader_opts *o)
{
    if (o->timeout > 0)
        return o->timeout;
    double pub = o->flv ? SETUP_TIMEOUT + o->warmup : 0;
    switch (o->mode) {
    case LOADER_FANOUT: return pub + o->players / o->ramp + 2 * SETUP_TIMEOUT + o->duration + 5;
    case LOADER_INGEST: return o->publishers / o->ramp + SETUP_TIMEOUT + o->warmup + o->duration + 5;
    case LOADER_CYCLES: return pub + CYCLES_CAP(o) + 5;
    default: return o->idle / o->ramp + SETUP_TIMEOUT + o->duration + 5;
    }
}

/* ---- results ---- */

typedef struct results {
    int      players, playing, publishers, publishing;
    int      open;      /* of those, still open at the window's end */
    double   window_s, setups_per_s, cpu, self_cpu, pub_lag;
} results;

/* Fold every worker's results into the bench (workers stopped). */
static void merge_workers(loader_bench *b)
{
    for (int i = 0; i < b->nworkers; i++) {
        loader_worker *w = &b->workers[i];
        for (size_t k = 0; k < LOADER_HIST_BINS; k++)
            b->latency.bins[k] += w->latency.bins[k];
        b->latency.count += w->latency.count;
        if (w->latency.max_ms > b->latency.max_ms)
            b->latency.max_ms = w->latency.max_ms;
        b->unmatched += w->unmatched;
        b->reads += w->reads;
        for (size_t k = 0; k < w->setup_status.n; k++)
            loader_samples_add(&b->setup_status, w->setup_status.v[k]);
        for (size_t k = 0; k < w->setup_media.n; k++)
            loader_samples_add(&b->setup_media, w->setup_media.v[k]);
        b->errors += w->errors;
        for (int k = 0; k < w->nreasons; k++)
            add_reason(b->reasons, &b->nreasons, w->reasons[k].text, w->reasons[k].count);
    }
}

static void collect(loader_bench *b, results *r)
{
    memset(r, 0, sizeof *r);
    merge_workers(b);
    r->window_s = b->t_window_end - b->t_window;
    r->setups_per_s = NAN;
    r->pub_lag = NAN;
    r->cpu = b->o.server_pid && b->cpu0 >= 0 && b->cpu1 >= 0 ? b->cpu1 - b->cpu0 : NAN;
    r->self_cpu = b->self_cpu1 - b->self_cpu0;
    const loader_pub *fp = b->o.mode != LOADER_INGEST && b->npubs && b->pubs[0] ? b->pubs[0]->pub : NULL;
    if (fp && b->pubs[0]->reached)
        r->pub_lag = fp->lag_at_end;

    switch (b->o.mode) {
    case LOADER_FANOUT:
    case LOADER_IDLE:
        r->players = ramp_total(b);
        for (int i = 0; i < b->nplayers; i++) {
            loader_conn *c = b->players[i];
            if (!c || !c->reached)
                continue;
            r->playing++;
            r->open += c->state != LOADER_ST_CLOSED;
            b->bytes += c->bytes;
            b->messages += c->msgs;
            if (b->o.mode == LOADER_IDLE)
                continue;
            int behind = 0;
            if (fp && fp->has_sent) {
                if (c->got_media) {
                    double lag = (double)(int32_t)(fp->last_ts - c->last_ts);
                    if (lag < 0)
                        lag = 0;
                    loader_samples_add(&b->lags, lag);
                    behind = lag > 1000;
                } else {
                    behind = 1;
                }
            }
            if ((double)c->msgs < 0.95 * (double)b->window_published)
                behind = 1;
            if (c->state == LOADER_ST_CLOSED)   /* the server dropped it */
                behind = 1;
            b->behind += behind;
        }
        break;
    case LOADER_INGEST:
        r->publishers = b->o.publishers;
        for (int i = 0; i < b->npubs; i++) {
            loader_conn *c = b->pubs[i];
            if (!c || !c->reached)
                continue;
            r->publishing++;
            r->open += c->state != LOADER_ST_CLOSED;
            b->bytes += c->pub->window_bytes;
            b->messages += c->pub->window_msgs;
            double lag = c->pub->lag_at_end;
            if (!isnan(lag))
                loader_samples_add(&b->lags, lag);
            if (isnan(lag) || lag > 1000)
                b->behind++;
        }
        break;
    case LOADER_CYCLES:
        r->players = b->o.cycles;
        r->playing = (int)b->setup_status.n;
        if (r->window_s > 0)
            r->setups_per_s = b->cycles_ok / r->window_s;
        break;
    }
    loader_samples_sort(&b->setup_status);
    loader_samples_sort(&b->setup_media);
    loader_samples_sort(&b->lags);
}

static void json_quantiles(loader_json *j, const char *key, const loader_samples *s, int p99)
{
    loader_json_open(j, key, '{');
    loader_json_num(j, "p50", loader_samples_quantile(s, 0.5));
    if (p99)
        loader_json_num(j, "p99", loader_samples_quantile(s, 0.99));
    loader_json_num(j, "max", loader_samples_quantile(s, 1.0));
    loader_json_close(j, '}');
}

static void print_json(loader_bench *b, const results *r)
{
    loader_json j;
    int lat = b->latency.count > 0;
    loader_json_begin(&j, stdout);
    loader_json_str(&j, "mode", mode_names[b->o.mode]);
    loader_json_str(&j, "url", b->o.url);
    loader_json_int(&j, "players", r->players);
    loader_json_int(&j, "playing", r->playing);
    if (b->o.mode == LOADER_INGEST) {
        loader_json_int(&j, "publishers", r->publishers);
        loader_json_int(&j, "publishing", r->publishing);
    }
    if (b->o.mode != LOADER_CYCLES)
        loader_json_int(&j, "open", r->open);
    loader_json_int(&j, "behind", b->behind);
    loader_json_int(&j, "bytes", (long long)b->bytes);
    loader_json_int(&j, "messages", (long long)b->messages);
    loader_json_int(&j, "published_messages", (long long)b->window_published);
    loader_json_num(&j, "window_s", r->window_s);
    loader_json_num(&j, "mbps", r->window_s > 0 ? (double)b->bytes * 8 / r->window_s / 1e6 : NAN);
    loader_json_open(&j, "latency_ms", '{');
    loader_json_num(&j, "p50", lat ? loader_hist_quantile(&b->latency, 0.5) : NAN);
    loader_json_num(&j, "p99", lat ? loader_hist_quantile(&b->latency, 0.99) : NAN);
    loader_json_num(&j, "max", lat ? b->latency.max_ms : NAN);
    loader_json_int(&j, "samples", (long long)b->latency.count);
    loader_json_close(&j, '}');
    loader_json_int(&j, "unmatched", (long long)b->unmatched);
    json_quantiles(&j, "lag_ms", &b->lags, 0);
    loader_json_num(&j, "publisher_lag_ms", r->pub_lag);
    json_quantiles(&j, "setup_status_ms", &b->setup_status, 1);
    json_quantiles(&j, "setup_media_ms", &b->setup_media, 1);
    loader_json_num(&j, "setups_per_s", r->setups_per_s);
    loader_json_num(&j, "cpu_seconds", r->cpu);
    loader_json_num(&j, "rss_before_kb", b->o.server_pid && b->rss_before >= 0 ? (double)b->rss_before : NAN);
    loader_json_num(&j, "rss_kb", b->o.server_pid && b->rss_after >= 0 ? (double)b->rss_after : NAN);
    loader_json_num(&j, "loader_cpu_seconds", r->self_cpu);
    loader_json_int(&j, "loader_reads", (long long)b->reads);
    loader_json_int(&j, "errors", b->errors);
    loader_json_open(&j, "error_samples", '[');
    for (int i = 0; i < b->nreasons && i < 5; i++) {
        char text[240];
        snprintf(text, sizeof text, "%s (x%d)", b->reasons[i].text, b->reasons[i].count);
        loader_json_str(&j, NULL, text);
    }
    loader_json_close(&j, ']');
    loader_json_key(&j, "timed_out");
    fputs(b->timed_out ? "true" : "false", stdout);
    loader_json_key(&j, "completed");
    fputs(b->fatal ? "false" : "true", stdout);
    loader_json_end(&j);
    fflush(stdout);
}

static void print_summary(loader_bench *b, const results *r)
{
    FILE *f = stderr;
    const char *what = b->o.mode == LOADER_INGEST ? "publishing" : b->o.mode == LOADER_IDLE ? "at stage" : "playing";
    int total = b->o.mode == LOADER_INGEST ? r->publishers : r->players;
    fprintf(f, "rtmp-loader %s %s: %d/%d %s, %d behind, %d errors, window %.1f s%s\n",
            mode_names[b->o.mode], b->o.url, b->o.mode == LOADER_INGEST ? r->publishing : r->playing, total, what,
            b->behind, b->errors, r->window_s, b->fatal ? " (incomplete)" : "");
    if (b->o.mode != LOADER_CYCLES && r->open < (b->o.mode == LOADER_INGEST ? r->publishing : r->playing))
        fprintf(f, "  %d still open at the window's end\n", r->open);
    if (b->o.mode == LOADER_FANOUT || b->o.mode == LOADER_INGEST)
        fprintf(f, "  %s %.1f Mbit/s (%llu messages; publisher sent %llu)\n",
                b->o.mode == LOADER_INGEST ? "sent" : "received",
                r->window_s > 0 ? (double)b->bytes * 8 / r->window_s / 1e6 : 0.0,
                (unsigned long long)b->messages, (unsigned long long)b->window_published);
    if (b->latency.count)
        fprintf(f, "  latency p50 %.2f p99 %.2f max %.2f ms (%llu samples, %llu unmatched)\n",
                loader_hist_quantile(&b->latency, 0.5), loader_hist_quantile(&b->latency, 0.99),
                b->latency.max_ms, (unsigned long long)b->latency.count, (unsigned long long)b->unmatched);
    if (b->lags.n)
        fprintf(f, "  lag p50 %.0f max %.0f ms\n", loader_samples_quantile(&b->lags, 0.5),
                loader_samples_quantile(&b->lags, 1));
    if (b->setup_status.n)
        fprintf(f, "  setup to %s start p50 %.2f p99 %.2f max %.2f ms\n",
                b->o.mode == LOADER_INGEST ? "publish" : "play", loader_samples_quantile(&b->setup_status, 0.5), loader_samples_quantile(&b->setup_status, 0.99),
                loader_samples_quantile(&b->setup_status, 1));
    if (b->setup_media.n)
        fprintf(f, "  setup to first media p50 %.2f p99 %.2f max %.2f ms\n",
                loader_samples_quantile(&b->setup_media, 0.5), loader_samples_quantile(&b->setup_media, 0.99),
                loader_samples_quantile(&b->setup_media, 1));
    if (!isnan(r->setups_per_s))
        fprintf(f, "  %.1f setups/s (%d of %d cycles reached media)\n", r->setups_per_s, b->cycles_ok, b->o.cycles);
    if (!isnan(r->cpu))
        fprintf(f, "  server cpu %.2f s (%.0f%% of one core), rss %ld -> %ld kB\n", r->cpu,
                r->window_s > 0 ? 100 * r->cpu / r->window_s : 0.0, b->rss_before, b->rss_after);
    fprintf(f, "  loader cpu %.2f s, %llu reads%s", r->self_cpu, (unsigned long long)b->reads,
            isnan(r->pub_lag) ? "\n" : "");
    if (!isnan(r->pub_lag))
        fprintf(f, ", publisher backlog %.0f ms\n", r->pub_lag);
    for (int i = 0; i < b->nreasons; i++)
        fprintf(f, "  error: %s (x%d)\n", b->reasons[i].text, b->reasons[i].count);
}

/* ---- main ---- */

static void setup(loader_bench *b)
{
    const loader_opts *o = &b->o;
    char err[256];
    if (o->flv) {
        if (loader_flv_load(&b->flv, o->flv, err, sizeof err) < 0)
            die("%s", err);
        b->have_flv = 1;
    }
    if (o->mode != LOADER_IDLE && o->mode != LOADER_INGEST && !b->stream[0])
        die("no stream name in %s", o->url);
    if (o->mode == LOADER_IDLE && o->stage == LOADER_STAGE_PLAY && !b->stream[0])
        die("no stream name in %s", o->url);
    if (o->mode == LOADER_INGEST && !b->stream[0])
        die("no stream name in %s", o->url);
    if (loader_hist_init(&b->latency) < 0)
        no_memory();
    if (b->have_flv && o->mode != LOADER_INGEST) {
        b->ring = calloc(1, sizeof *b->ring);
        if (!b->ring)
            no_memory();
    }
    b->npubs = o->mode == LOADER_INGEST ? o->publishers : b->have_flv ? 1 : 0;
    b->pubs = calloc((size_t)b->npubs + 1, sizeof *b->pubs);
    b->nplayers = o->mode == LOADER_FANOUT ? o->players : o->mode == LOADER_IDLE ? o->idle : 0;
    b->players = calloc((size_t)b->nplayers + 1, sizeof *b->players);
    if (!b->pubs || !b->players)
        no_memory();
    if (o->mode == LOADER_INGEST) {
        b->pub_names = calloc((size_t)o->publishers, sizeof *b->pub_names);
        if (!b->pub_names)
            no_memory();
        for (int i = 0; i < o->publishers; i++) {
            size_t n = strlen(b->stream) + 16;
            b->pub_names[i] = malloc(n);
            if (!b->pub_names[i])
                no_memory();
            snprintf(b->pub_names[i], n, "%s_%d", b->stream, i);
        }
    }
}

static void teardown(loader_bench *b)
{
    /* Every worker thread has stopped: their loops are ours now. */
    for (int i = 0; i < b->nworkers; i++)
        while (b->workers[i].live)
            loader_conn_close(b->workers[i].live);   /* kept ones stay in their slots */
    for (int i = 0; i < b->nplayers; i++)
        loader_conn_free(b->players[i]);
    for (int i = 0; i < b->npubs; i++)
        loader_conn_free(b->pubs[i]);
    if (b->pub_names)
        for (int i = 0; i < b->o.publishers; i++)
            free(b->pub_names[i]);
    free(b->pub_names);
    free(b->players);
    free(b->pubs);
    rtmp_buf_unref(b->metadata);
    free(b->ring);
    for (int i = 0; i < b->nworkers; i++) {
        loader_worker *w = &b->workers[i];
        if (i > 0) {
            ev_timer_stop(w->loop, &w->tick);
            ev_async_stop(w->loop, &w->stop);
            ev_loop_destroy(w->loop);
        }
        free(w->rbuf);
        loader_hist_free(&w->latency);
        loader_samples_free(&w->setup_status);
        loader_samples_free(&w->setup_media);
    }
    free(b->workers);
    loader_hist_free(&b->latency);
    loader_samples_free(&b->setup_status);
    loader_samples_free(&b->setup_media);
    loader_samples_free(&b->lags);
    if (b->have_flv)
        loader_flv_free(&b->flv);
    SSL_CTX_free(b->tls_ctx);
}

int main(int argc, char **argv)
{
    static loader_bench bench;
    loader_bench *b = &bench;
    parse_options(&b->o, argc, argv);
    parse_url(b, b->o.url);
    setup(b);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    rtmp_log_level = RTMP_LOG_ERROR;

    b->loop = ev_default_loop(EVFLAG_AUTO);
    if (!b->loop)
        die("%s", "cannot start libev");
    b->rss_before = b->rss_after = -1;
    b->cpu0 = b->cpu1 = -1;
    b->nworkers = b->o.mode == LOADER_FANOUT ? b->o.threads : 1;
    b->workers = calloc((size_t)b->nworkers, sizeof *b->workers);
    if (!b->workers)
        no_memory();
    for (int i = 0; i < b->nworkers; i++)
        worker_init(b, &b->workers[i], i);
    workers_start(b);

    ev_timer_init(&b->tick, tick_cb, 0.01, 0.01);
    b->tick.data = b;
    ev_timer_start(b->loop, &b->tick);
    double limit = run_deadline(&b->o);
    ev_timer_init(&b->deadline, deadline_cb, limit, 0);
    b->deadline.repeat = limit;   /* remembered for the message; one-shot all the same */
    b->deadline.data = b;
    ev_timer_start(b->loop, &b->deadline);
    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, signal_cb, SIGINT);
    ev_signal_init(&sigterm, signal_cb, SIGTERM);
    sigint.data = sigterm.data = b;
    ev_signal_start(b->loop, &sigint);
    ev_signal_start(b->loop, &sigterm);
    b->t_begin = loader_now();

    if (b->have_flv && b->o.mode != LOADER_INGEST) {
        b->phase = PH_PUBLISHER;
        b->pubs[0] = loader_conn_start(&b->workers[0], LOADER_PUBLISHER, 0, b->stream, LOADER_ST_ACTIVE, 1);
        if (!b->pubs[0])
            no_memory();
    } else {
        if (b->o.server_pid)
            b->rss_before = loader_proc_rss_kb(b->o.server_pid);
        ramp_begin(b);
    }
    if (b->phase != PH_DONE)
        ev_run(b->loop, 0);
    atomic_store(&b->window_over, 1);
    workers_stop(b);

    results r;
    collect(b, &r);
    if (b->o.json)
        print_json(b, &r);
    print_summary(b, &r);

    ev_timer_stop(b->loop, &b->tick);
    ev_timer_stop(b->loop, &b->deadline);
    ev_timer_stop(b->loop, &b->phase_timer);
    ev_signal_stop(b->loop, &sigint);
    ev_signal_stop(b->loop, &sigterm);
    teardown(b);
    ev_loop_destroy(b->loop);
    return b->fatal ? 1 : 0;
}
