/*
 * net_redis.h: a Redis client on the net's loop, with hiredis's
 * asynchronous API and its libev adapter: the connection's socket is
 * watched by ev_io watchers on the loop of the RTMP connections
 * (rtmp_net_loop), so a command never blocks the loop.  The host name is
 * resolved once, by rtmp_redis_new (that lookup may block; the attempts
 * connect to the address it found).  net.c's sibling,
 * like net_curl.c: one of the files with <ev.h>.  docs/REDIS.md.
 *
 * A client connects in the background and keeps connecting: when the
 * connection fails or is lost it tries again after a delay that starts at
 * retry_min and grows by retry_factor up to retry_max, and is back at
 * retry_min once a connection is up.  While it is not connected a command
 * fails at once (nothing is queued).  Commands from several callers may be
 * in flight together (hiredis pipelines them; the replies come back in
 * order).
 *
 * A command ends exactly once: its reply callback runs with the reply or
 * the reason it failed, unless it was cancelled first (rtmp_redis_cancel),
 * in which case nothing is called.  hiredis still answers a cancelled or
 * timed-out command later (its reply, or none when the connection goes):
 * the command's memory is kept until then, so nothing is used after it is
 * freed.
 */
#ifndef RTMP_NET_REDIS_H
#define RTMP_NET_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "net.h"

typedef struct rtmp_redis rtmp_redis;
typedef struct rtmp_redis_cmd rtmp_redis_cmd;

/* The defaults of the settings below (a field left 0 takes its default). */
#define RTMP_REDIS_CONNECT_TIMEOUT 2.0  /* seconds: TCP connect, AUTH and SELECT */
#define RTMP_REDIS_COMMAND_TIMEOUT 2.0  /* seconds from sending to the reply */
#define RTMP_REDIS_RETRY_MIN       0.1  /* seconds before the first new attempt */
#define RTMP_REDIS_RETRY_MAX       5.0  /* the longest wait between attempts */
#define RTMP_REDIS_RETRY_FACTOR    2.0  /* each failed attempt multiplies the wait */
#define RTMP_REDIS_MAX_URL         1024 /* the longest URL accepted */

typedef struct rtmp_redis_config {
    const char *url;             /* redis://[[user]:password@]host[:port][/db] or unix:/path */
    const char *name;            /* for the logs ("cluster"); NULL: "redis" */
    double      connect_timeout; /* > 0 */
    double      command_timeout; /* > 0 */
    double      retry_min, retry_max, retry_factor; /* > 0, min <= max, factor >= 1 */
} rtmp_redis_config;

/* The connection came up (connected 1, reason NULL) or went down
 * (connected 0, reason: "Connection reset by peer", "Server closed the
 * connection", ...).  Called once per change: up after AUTH and SELECT
 * succeeded, down only for a connection that was up.  The client may be
 * freed from inside (nothing of it is used after the callback). */
typedef void (*rtmp_redis_state_cb)(rtmp_redis *r, void *ud, int connected, const char *reason);

/* The end of a command: rc 0 and hiredis's reply (an error reply is a
 * reply: REDIS_REPLY_ERROR, its text in reply->str), or a negative
 * RTMP_ERR_* code and a message with reply NULL:
 *   RTMP_ERR_IO       "not connected: <why>" (the connection was lost
 *                     before the reply: the command may or may not have run)
 *   RTMP_ERR_TIMEOUT  "timeout" (no reply within command_timeout)
 *   RTMP_ERR_CLOSED   "closed" (rtmp_redis_close)
 * The reply is valid during the callback only; the command is freed (for
 * the caller: gone) when it returns.  The callback may send commands,
 * cancel others, or close the client. */
typedef void (*rtmp_redis_reply_cb)(rtmp_redis_cmd *c, void *ud, int rc, const char *err,
                                    const redisReply *reply);

/* Whether cfg's settings are in range (the URL is not looked at): 0, or
 * RTMP_ERR_INVAL with "connect_timeout must be ..." in err. */
int rtmp_redis_check_config(const rtmp_redis_config *cfg, char *err, size_t errlen);

/* A client of the loop n runs on, connecting at once in the background;
 * state_cb(r, ud, ...) is told when the connection comes and goes (NULL:
 * not told).  Returns NULL with a message in err for a URL that does not
 * parse ("bad Redis URL '...': ..."), a setting out of range, or no
 * memory. */
rtmp_redis *rtmp_redis_new(rtmp_net *n, const rtmp_redis_config *cfg, rtmp_redis_state_cb state_cb,
                           void *ud, char *err, size_t errlen);

/* Close: the connection goes, no new attempt is made, every command in
 * flight ends with RTMP_ERR_CLOSED (its callback runs now, when notify;
 * without, none runs: for a Lua state closing), and r is freed.  Safe
 * from inside any callback of r. */
void rtmp_redis_close(rtmp_redis *r, int notify);

/* Whether the connection is up (AUTH and SELECT done). */
int rtmp_redis_connected(const rtmp_redis *r);

/* "host:port" or the socket's path, for messages. */
const char *rtmp_redis_address(const rtmp_redis *r);

/* Commands in flight that still have a callback to run. */
size_t rtmp_redis_pending(const rtmp_redis *r);

/* Send a command (argc arguments, argv[i] of lens[i] bytes, binary-safe);
 * it ends with cb(c, ud, ...).  Returns the command, or NULL with a
 * message in err when it cannot be sent now: "not connected: <why>"
 * (connecting, or the last failure's reason; RTMP_ERR_IO), or "out of
 * memory". */
rtmp_redis_cmd *rtmp_redis_command(rtmp_redis *r, int argc, const char **argv, const size_t *lens,
                                   rtmp_redis_reply_cb cb, void *ud, char *err, size_t errlen);

/* Cancel a command in flight: its callback never runs. */
void rtmp_redis_cancel(rtmp_redis_cmd *c);

#endif
