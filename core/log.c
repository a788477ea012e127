#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int rtmp_log_level = RTMP_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

int rtmp_log_parse_level(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *rtmp_log_level_name(int level)
{
    return level >= 0 && level < 5 ? level_names[level] : "?";
}

void rtmp_logv(int level, unsigned long conn_id, const char *peer, const char *fmt, va_list ap)
{
    if (!rtmp_log_enabled(level))
        return;
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03d %s ", (int)(tv.tv_usec / 1000),
                  rtmp_log_level_name(level));
    if (conn_id)
        n += snprintf(line + n, sizeof line - (size_t)n, "conn=%lu peer=%s ", conn_id, peer ? peer : "-");
    if (n < (int)sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (n >= (int)sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

void rtmp_log(int level, unsigned long conn_id, const char *peer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rtmp_logv(level, conn_id, peer, fmt, ap);
    va_end(ap);
}
