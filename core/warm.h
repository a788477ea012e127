/*
 * warm.h: the memory a connection's next input will touch, noted after
 * one delivery and prefetched before the next read system call.
 *
 * With many connections each one's state (its reader, session, group and
 * the group's next cache entry) has left the CPU caches by the time its
 * next bytes arrive, and each first touch stalls in turn.  Prefetched
 * together before the read, the misses overlap each other and the system
 * call instead of following it one by one (docs/ARCHITECTURE.md, "Warm
 * state").  An address noted may be freed before the prefetch: a
 * prefetch never faults and reads nothing the program sees.
 */
#ifndef RTMP_WARM_H
#define RTMP_WARM_H

#include <stddef.h>
#include <stdint.h>

#define RTMP_WARM_MAX  32   /* cache lines noted per connection */
#define RTMP_WARM_LINE 64

/* Lines are kept as integers: the memory they name may be freed before
 * the prefetch. */
typedef struct rtmp_warm {
    int       n;
    uintptr_t line[RTMP_WARM_MAX];
} rtmp_warm;

/* Note the cache lines of p[0 .. len), as many as there is room for (the
 * hottest first: past RTMP_WARM_MAX lines, the rest are left out); a line
 * just noted is not noted again. */
static inline void rtmp_warm_add(rtmp_warm *w, const void *p, size_t len)
{
    if (!p || len == 0)
        return;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(RTMP_WARM_LINE - 1);
    uintptr_t end = (uintptr_t)p + len;
    if (w->n > 0 && w->line[w->n - 1] == a)
        a += RTMP_WARM_LINE;
    for (; a < end && w->n < RTMP_WARM_MAX; a += RTMP_WARM_LINE)
        w->line[w->n++] = a;
}

/* Prefetch every line noted (for writing: most are written). */
static inline void rtmp_warm_prefetch(const rtmp_warm *w)
{
    for (int i = 0; i < w->n; i++)
        __builtin_prefetch((const void *)w->line[i], 1, 3);
}

/* Prefetch every line of p[0 .. len) (for reading), now: memory read
 * soon that was not noted in a rtmp_warm. */
static inline void rtmp_prefetch_range(const void *p, size_t len)
{
    if (len == 0)
        return;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(RTMP_WARM_LINE - 1);
    for (uintptr_t end = (uintptr_t)p + len; a < end; a += RTMP_WARM_LINE)
        __builtin_prefetch((const void *)a);
}

#endif
