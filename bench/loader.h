/*
 * loader.h: the benchmark loader (rtmp-loader), shared between its files.
 *
 *   loader.c        options, modes and their phases, the measurement window, the report
 *   loader_conn.c   one RTMP client connection: socket, rtmp_session, commands, pacing
 *   loader_flv.c    the FLV file a publisher sends
 *   loader_stats.c  histograms, percentiles, /proc sampling, JSON output
 *
 * Every connection is an rtmp_session in the client role; the loader owns
 * the sockets.  With an rtmps:// URL (or --tls) every connection speaks
 * TLS (OpenSSL, no certificate verification: a load generator).  One libev loop per worker: worker 0 is the main thread
 * (publishers, orchestration, every connection outside fanout mode);
 * fanout players are spread over --threads workers.  All times come from
 * one clock, CLOCK_MONOTONIC, in seconds (loader_now).
 */
#ifndef RTMP_LOADER_H
#define RTMP_LOADER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "session.h"

/* ---- FLV ---- */

typedef struct loader_tag {
    const uint8_t *data;       /* tag body, inside the file image */
    uint32_t       len;
    uint32_t       ts;         /* ms, relative to the first tag of the file */
    uint8_t        type;       /* RTMP_MSG_AUDIO or RTMP_MSG_VIDEO */
    uint8_t        seq_header; /* AVC/AAC (or enhanced) sequence header */
} loader_tag;

typedef struct loader_flv {
    uint8_t       *image;      /* the whole file */
    size_t         size;
    loader_tag    *tags;       /* audio and video tags in file order */
    size_t         ntags;
    const uint8_t *meta;       /* body of the first onMetaData script tag, or NULL */
    uint32_t       meta_len;
    uint32_t       loop_ms;    /* timestamp advance from one loop to the next */
    uint64_t       media_bytes;/* sum of the tag bodies */
    int            has_video;
} loader_flv;

/* Read an FLV file into f.  0, or -1 with a message in err. */
int loader_flv_load(loader_flv *f, const char *path, char *err, size_t errlen);
void loader_flv_free(loader_flv *f);

/* 1 when an audio/video body is a codec sequence header. */
int loader_is_seq_header(uint8_t type, const uint8_t *p, size_t len);

/* ---- statistics ---- */

/* Latency histogram: 10 us steps below 100 ms, 1 ms steps up to 100 s,
 * one overflow bucket; the exact maximum is kept apart. */
#define LOADER_HIST_FINE   10000   /* buckets of 10 us: [0, 100 ms) */
#define LOADER_HIST_COARSE 99900   /* buckets of 1 ms: [100 ms, 100 s) */
#define LOADER_HIST_BINS   (LOADER_HIST_FINE + LOADER_HIST_COARSE + 1)

typedef struct loader_hist {
    uint32_t *bins;           /* LOADER_HIST_BINS */
    uint64_t  count;
    double    max_ms;
} loader_hist;

int loader_hist_init(loader_hist *h);
void loader_hist_free(loader_hist *h);
void loader_hist_add(loader_hist *h, double ms);
/* The value at quantile q (0 < q <= 1): the middle of its bucket; the
 * maximum for q == 1.  0 when empty. */
double loader_hist_quantile(const loader_hist *h, double q);

/* A growable array of doubles (setup times, lags). */
typedef struct loader_samples {
    double *v;
    size_t  n, cap;
} loader_samples;

int loader_samples_add(loader_samples *s, double v);
void loader_samples_free(loader_samples *s);
/* Sort the samples, then nearest-rank quantiles (q in (0, 1]). */
void loader_samples_sort(loader_samples *s);
double loader_samples_quantile(const loader_samples *s, double q);

/* /proc/PID/stat utime + stime in seconds; -1 when unreadable. */
double loader_proc_cpu(pid_t pid);
/* VmRSS from /proc/PID/status in kB; -1 when unreadable. */
long loader_proc_rss_kb(pid_t pid);
/* This process's user + system CPU seconds. */
double loader_self_cpu(void);

/* A tiny JSON writer: one object, keys in order, nesting by hand. */
typedef struct loader_json {
    FILE *f;
    int   first;  /* no member written yet in the current object/array */
} loader_json;

void loader_json_begin(loader_json *j, FILE *f);
void loader_json_end(loader_json *j);
void loader_json_key(loader_json *j, const char *key);        /* "key": */
void loader_json_open(loader_json *j, const char *key, char c); /* "key": { or [ */
void loader_json_close(loader_json *j, char c);
void loader_json_int(loader_json *j, const char *key, long long v);
/* A number, or null when v is NaN. */
void loader_json_num(loader_json *j, const char *key, double v);
void loader_json_str(loader_json *j, const char *key, const char *s); /* key NULL: array element */

/* ---- connections ---- */

enum { LOADER_PLAYER = 0, LOADER_PUBLISHER };

/* How far a connection got. */
enum {
    LOADER_ST_TCP = 0,    /* TCP connect in progress */
    LOADER_ST_TCP_UP,     /* TCP connected, nothing sent (idle --stage tcp holds here) */
    LOADER_ST_CONNECT,    /* handshake and connect sent, waiting for _result */
    LOADER_ST_CONNECTED,  /* connect accepted (idle --stage connect holds here) */
    LOADER_ST_CREATE,     /* createStream sent */
    LOADER_ST_START,      /* play/publish sent, waiting for onStatus */
    LOADER_ST_ACTIVE,     /* playing / publishing */
    LOADER_ST_CLOSED,
};

/* Where a connection stops and holds: the state it reaches. */
enum { LOADER_STAGE_TCP = LOADER_ST_TCP_UP, LOADER_STAGE_CONNECT = LOADER_ST_CONNECTED,
       LOADER_STAGE_PLAY = LOADER_ST_ACTIVE };

/* Name of a state, for reasons ("connect", "play", ...). */
const char *loader_state_name(int state);

/* The publisher's record of recent media sends, for latency matching:
 * a ring of (type, timestamp, time) and a direct-mapped index on
 * (type, timestamp) pointing into it.  Written by the main thread, read
 * by every worker: each entry is a small seqlock (key 0 while it is
 * being rewritten). */
#define LOADER_RING 16384
#define LOADER_RING_INDEX 65536

typedef struct loader_send {
    _Atomic uint64_t key;   /* 1 << 40 | type << 32 | timestamp; 0: being written */
    _Atomic double   t;
} loader_send;

typedef struct loader_ring {
    loader_send      ring[LOADER_RING];
    _Atomic uint32_t index[LOADER_RING_INDEX];  /* ring slot + 1, 0 when empty */
    uint32_t         seq;                       /* sends recorded so far (writer only) */
} loader_ring;

void loader_ring_add(loader_ring *r, uint8_t type, uint32_t ts, double t);
/* Time the message (type, ts) was sent, or a negative value when unknown
 * (never recorded, or overwritten since). */
double loader_ring_find(const loader_ring *r, uint8_t type, uint32_t ts);

/* Publisher state (pacing and the write backlog). */
#define LOADER_BACKLOG 4096

struct loader_conn;

typedef struct loader_pub {
    ev_timer  pace;
    struct loader_conn *conn;
    double    t0;            /* monotonic time of media timestamp 0 */
    size_t    next;          /* next tag */
    uint32_t  loop;          /* loops completed */
    uint32_t  last_ts;       /* timestamp of the latest media message queued */
    int       has_sent;
    uint64_t  sent_msgs;     /* media messages queued */
    uint64_t  sent_bytes;    /* media payload bytes queued */
    uint64_t  window_msgs;   /* media messages queued inside the window */
    uint64_t  window_bytes;  /* bytes written to the socket inside the window */
    /* Media messages queued but not yet wholly written: (end offset in
     * the byte stream, timestamp), oldest first. */
    struct { uint64_t end; uint32_t ts; } backlog[LOADER_BACKLOG];
    size_t    bl_head, bl_count;
    uint32_t  written_ts;    /* timestamp of the latest message wholly written */
    int       has_written;
    double    lag_at_end;    /* loader_pub_lag_ms at the window's end (NaN: not measured) */
} loader_pub;

struct loader_bench;

#define LOADER_MAX_REASONS 8

typedef struct loader_reason {
    char text[192];
    int  count;
} loader_reason;

/* One event loop and the connections it serves.  Its fields belong to its
 * thread, except the atomic progress counters, which the main thread
 * polls; the results are read by the main thread once the worker stopped. */
typedef struct loader_worker {
    struct loader_bench *b;
    struct ev_loop *loop;
    int             id;
    int             threaded;    /* has its own thread (id > 0) */
    pthread_t       thread;
    ev_async        stop;
    ev_timer        tick;
    uint8_t        *rbuf;        /* one read buffer for all its connections */
    size_t          rbuf_size;
    double          t_read;      /* time of the read being parsed */
    struct loader_conn *live;    /* its open connections */
    double          last_scan;   /* last scan for stuck connections */
    int             next;        /* next ramp index it opens */
    /* progress of the connections the ramp opens */
    atomic_int      launched, reached, failed_early;
    atomic_int      video;       /* fanout players that got video */
    atomic_int      lost;        /* fanout players closed after play, before video */
    /* results */
    loader_hist     latency;
    uint64_t        unmatched;
    uint64_t        reads;       /* read() calls that returned bytes, inside the window */
    loader_samples  setup_status, setup_media;
    int             errors;
    loader_reason   reasons[LOADER_MAX_REASONS];
    int             nreasons;
} loader_worker;

typedef struct loader_conn {
    ev_io          io;
    struct loader_bench *b;
    loader_worker *w;
    rtmp_session  *s;
    loader_pub    *pub;          /* publishers only */
    const char    *name;         /* stream name (not owned) */
    int            fd;
    SSL           *ssl;          /* TLS: NULL until TCP connects */
    int            tls_open;     /* the TLS handshake is done */
    int            role;         /* LOADER_PLAYER / LOADER_PUBLISHER */
    int            state;        /* LOADER_ST_* */
    int            stop_at;      /* state at which it holds (idle mode) */
    int            index;
    int            events;       /* EV_READ/EV_WRITE currently watched */
    int            failed;       /* counted as an error */
    int            dead;         /* to be closed once the current callback returns */
    int            reached;      /* reached its stop state */
    int            got_media;
    int            got_video;
    uint32_t       stream_id;
    uint32_t       create_txn;
    double         t_start;      /* TCP connect started */
    double         t_status;     /* play/publish onStatus *.Start */
    double         t_media;      /* first media message */
    uint64_t       written;      /* bytes written to the socket */
    /* players, counted inside the window only */
    uint64_t       bytes;
    uint64_t       msgs;
    uint32_t       last_ts;      /* latest media timestamp received (any time) */
    int            keep;         /* the struct outlives the close (the bench frees it) */
    struct loader_conn *prev, *next;  /* the worker's list of open connections */
} loader_conn;

/* Start a connection on worker w (from w's thread): non-blocking connect
 * to the bench's address; it
 * goes on by itself to stop_at (LOADER_STAGE_*) and holds there.  keep:
 * the struct stays after the connection closes, for the bench to read
 * and free with loader_conn_free.  On an immediate failure the
 * connection is failed (loader_on_fail) and closed at once: the result is
 * then NULL, or the closed struct when keep.  NULL also on OOM. */
loader_conn *loader_conn_start(loader_worker *w, int role, int index, const char *name,
                               int stop_at, int keep);

/* Close the socket, free the session; not counted as an error.  Frees c
 * (and its publisher state) too unless c->keep.  A no-op on a closed connection. */
void loader_conn_close(loader_conn *c);

/* Close c if it was failed (outside any callback of c). */
void loader_conn_reap(loader_conn *c);

/* Close (if open) and free a kept connection; NULL is fine. */
void loader_conn_free(loader_conn *c);

/* Mark c failed with a reason (counted once) and schedule its close. */
void loader_conn_fail(loader_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The publisher's media backlog in ms (latest queued - latest written). */
double loader_pub_lag_ms(const loader_conn *c);

/* ---- the bench ---- */

enum { LOADER_FANOUT = 0, LOADER_INGEST, LOADER_CYCLES, LOADER_IDLE };

typedef struct loader_opts {
    const char *url, *flv;
    int         players, publishers, cycles, concurrency, idle;
    double      ramp, duration, warmup, timeout;
    int         stage;           /* LOADER_STAGE_* */
    pid_t       server_pid;
    int         json;
    int         quickack;        /* TCP_QUICKACK after every read */
    int         tls;             /* --tls: TLS whatever the URL's scheme */
    int         threads;         /* fanout: workers the players are spread over */
    int         mode;
} loader_opts;

typedef struct loader_bench {
    struct ev_loop *loop;       /* the main thread's (worker 0's) */
    loader_opts     o;
    loader_flv      flv;
    int             have_flv;

    /* where to connect */
    char            host[256], port[16], app[256], stream[512], tcurl[1024];
    struct sockaddr_storage addr;
    socklen_t       addrlen;
    SSL_CTX        *tls_ctx;   /* rtmps:// or --tls: every connection over TLS */

    /* publishers (fanout/cycles: one) and players */
    loader_conn   **pubs;
    int             npubs;
    loader_conn   **players;   /* fanout and idle: one slot per player */
    int             nplayers;
    char          **pub_names; /* ingest: STREAM_<i> */
    rtmp_buf       *metadata;  /* @setDataFrame onMetaData payload */

    loader_ring    *ring;      /* sends of the (single) fanout publisher */

    loader_worker  *workers;   /* workers[0] is the main thread */
    int             nworkers;

    /* progress (main thread, except the atomics) */
    int             phase;
    int             publishing;
    int             inflight, completed, filling, launched;  /* cycles */
    double          t_begin, t_ramp, t_ramp_done, t_window_end;
    atomic_int      ramp_on;      /* workers may open their share (t_ramp is set) */
    _Atomic double  t_window;     /* window start (set before in_window) */
    atomic_int      in_window;
    atomic_int      window_over;  /* players freeze their counters */
    uint64_t        window_published;   /* media messages the publisher(s) queued in the window */

    /* results, merged from the workers */
    loader_hist     latency;
    uint64_t        unmatched, reads;
    loader_samples  setup_status, setup_media, lags;
    uint64_t        bytes, messages;
    int             behind;
    int             cycles_ok;
    double          cpu0, cpu1, self_cpu0, self_cpu1;
    long            rss_before, rss_after;
    int             errors;
    loader_reason   reasons[LOADER_MAX_REASONS];
    int             nreasons;
    int             fatal;      /* the run could not measure (publisher failed, ...) */
    int             timed_out;  /* the run deadline fired */

    ev_timer        tick, phase_timer, deadline;
} loader_bench;

/* Seconds on CLOCK_MONOTONIC. */
double loader_now(void);

/* Events from connections to the bench (loader.c), in the connection's
 * worker thread. */
void loader_on_reached(loader_conn *c);      /* reached its stop state */
void loader_on_media(loader_conn *c);        /* first media message (players) */
void loader_on_video(loader_conn *c);        /* first video message (players) */
void loader_on_fail(loader_conn *c, const char *reason); /* first failure of c */
void loader_on_closed(loader_conn *c);       /* c is closed (and freed after, unless kept) */

#endif
