/*
 * loader_stats.c: what the loader measures with, and how it reports.
 */
#include "loader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double loader_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- latency histogram ---- */


int loader_hist_init(loader_hist *h)
{
    memset(h, 0, sizeof *h);
    h->bins = calloc(LOADER_HIST_BINS, sizeof *h->bins);
    return h->bins ? 0 : -1;
}

void loader_hist_free(loader_hist *h)
{
    free(h->bins);
    h->bins = NULL;
}

void loader_hist_add(loader_hist *h, double ms)
{
    size_t i;
    if (ms < 0)
        ms = 0;
    if (ms < 100.0)
        i = (size_t)(ms * 100.0);                       /* 10 us steps */
    else if (ms < 100000.0)
        i = LOADER_HIST_FINE + (size_t)(ms - 100.0);    /* 1 ms steps */
    else
        i = LOADER_HIST_BINS - 1;
    if (i >= LOADER_HIST_BINS)
        i = LOADER_HIST_BINS - 1;
    h->bins[i]++;
    h->count++;
    if (ms > h->max_ms)
        h->max_ms = ms;
}

double loader_hist_quantile(const loader_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max_ms;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LOADER_HIST_BINS; i++) {
        seen += h->bins[i];
        if (seen < rank)
            continue;
        double mid;
        if (i < LOADER_HIST_FINE)
            mid = ((double)i + 0.5) / 100.0;
        else if (i < LOADER_HIST_BINS - 1)
            mid = 100.0 + (double)(i - LOADER_HIST_FINE) + 0.5;
        else
            return h->max_ms;
        return mid < h->max_ms ? mid : h->max_ms;
    }
    return h->max_ms;
}

/* ---- plain samples ---- */

int loader_samples_add(loader_samples *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return 0;
}

void loader_samples_free(loader_samples *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void loader_samples_sort(loader_samples *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, cmp_double);
}

double loader_samples_quantile(const loader_samples *s, double q)
{
    if (s->n == 0)
        return NAN;
    size_t rank = (size_t)ceil(q * (double)s->n);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return s->v[rank - 1];
}

/* ---- the publisher's send record ---- */

static inline uint32_t ring_slot(uint8_t type, uint32_t ts)
{
    uint32_t k = ts * 2654435761u ^ (uint32_t)type * 0x9E3779B9u;
    return (k ^ k >> 16) & (LOADER_RING_INDEX - 1);
}

static inline uint64_t ring_key(uint8_t type, uint32_t ts)
{
    return (uint64_t)1 << 40 | (uint64_t)type << 32 | ts;
}

void loader_ring_add(loader_ring *r, uint8_t type, uint32_t ts, double t)
{
    uint32_t slot = r->seq++ % LOADER_RING;
    loader_send *e = &r->ring[slot];
    atomic_store_explicit(&e->key, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->t, t, memory_order_relaxed);
    atomic_store_explicit(&e->key, ring_key(type, ts), memory_order_release);
    atomic_store_explicit(&r->index[ring_slot(type, ts)], slot + 1, memory_order_relaxed);
}

double loader_ring_find(const loader_ring *r, uint8_t type, uint32_t ts)
{
    uint32_t s = atomic_load_explicit(&r->index[ring_slot(type, ts)], memory_order_relaxed);
    if (s == 0)
        return -1;
    const loader_send *e = &r->ring[s - 1];
    uint64_t want = ring_key(type, ts);
    if (atomic_load_explicit(&e->key, memory_order_acquire) != want)
        return -1;   /* another message now, or being rewritten */
    double t = atomic_load_explicit(&e->t, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->key, memory_order_relaxed) != want)
        return -1;
    return t;
}

/* ---- /proc ---- */

double loader_proc_cpu(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    /* The command name may hold spaces and parentheses: fields count
     * from the last ')'.  utime and stime are fields 14 and 15. */
    char *p = strrchr(line, ')');
    if (!p)
        return -1;
    unsigned long utime, stime;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
}

long loader_proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

double loader_self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6
         + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- JSON ---- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void loader_json_begin(loader_json *j, FILE *f)
{
    j->f = f;
    j->first = 1;
    fputc('{', f);
}

void loader_json_end(loader_json *j)
{
    fputs("}\n", j->f);
}

void loader_json_key(loader_json *j, const char *key)
{
    if (!j->first)
        fputc(',', j->f);
    j->first = 0;
    if (key) {
        json_string(j->f, key);
        fputc(':', j->f);
    }
}

void loader_json_open(loader_json *j, const char *key, char c)
{
    loader_json_key(j, key);
    fputc(c, j->f);
    j->first = 1;
}

void loader_json_close(loader_json *j, char c)
{
    fputc(c, j->f);
    j->first = 0;
}

void loader_json_int(loader_json *j, const char *key, long long v)
{
    loader_json_key(j, key);
    fprintf(j->f, "%lld", v);
}

void loader_json_num(loader_json *j, const char *key, double v)
{
    loader_json_key(j, key);
    if (isnan(v) || isinf(v))
        fputs("null", j->f);
    else
        fprintf(j->f, "%.3f", v);
}

void loader_json_str(loader_json *j, const char *key, const char *s)
{
    loader_json_key(j, key);
    json_string(j->f, s);
}
