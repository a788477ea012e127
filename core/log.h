/*
 * log.h: leveled logging to stderr, one line per record:
 *   2026-11-24 08:40:01.123 warn conn=3 peer=127.0.0.1:50312 close: ...
 */
#ifndef RTMP_LOG_H
#define RTMP_LOG_H

#include <stdarg.h>

enum { RTMP_LOG_ERROR = 0, RTMP_LOG_WARN, RTMP_LOG_INFO, RTMP_LOG_DEBUG, RTMP_LOG_TRACE };

extern int rtmp_log_level;

/* Level for a name ("warn"), or -1; and the name of a level. */
int rtmp_log_parse_level(const char *name);
const char *rtmp_log_level_name(int level);

/* Write one record when level <= rtmp_log_level.  conn_id 0 means the
 * record concerns no connection (peer is then ignored). */
void rtmp_log(int level, unsigned long conn_id, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rtmp_logv(int level, unsigned long conn_id, const char *peer, const char *fmt, va_list ap);

#define rtmp_log_enabled(level) ((level) <= rtmp_log_level)

#endif
