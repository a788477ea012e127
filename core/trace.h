/*
 * trace.h: one message as one trace line (docs/TRACE.md), sans I/O:
 *
 *   <time> conn=<id> <in|out> csid=<n> fmt=<n> type=<name> stream=<n> ts=<n> len=<n> body=<lua>
 *
 * Bodies are Lua table constructors: AMF values as Lua literals
 * (rtmp.null / rtmp.undefined for null and undefined), control fields,
 * the media model's codec, frame and packet (media.h).  Long strings,
 * deep values and long bodies are cut with a --[[...]] marker and the
 * result is still a valid constructor.  The binding (lua/l_trace.c)
 * writes the lines to files or the log.
 */
#ifndef RTMP_TRACE_H
#define RTMP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "session.h"  /* RTMP_TRACE_IN, RTMP_TRACE_OUT: the observer's directions */

/* Body characters before the cut, and the room a whole line needs. */
#define RTMP_TRACE_BODY_MAX 3000
#define RTMP_TRACE_LINE_MAX (RTMP_TRACE_BODY_MAX + 512 + 600)

/* Write the line for one message into line (RTMP_TRACE_LINE_MAX bytes),
 * NUL-terminated, no newline; returns its length.  sec.usec is the time
 * shown; dir RTMP_TRACE_IN or RTMP_TRACE_OUT; fmt the first chunk's fmt (shown
 * as "-" outside 0..3).  h NULL: raw bytes (len of them) with no message
 * header.  Otherwise payload holds the body's first len bytes (len <=
 * h->length, shown as len=): no byte past them is read.  Given at least
 * min(h->length, RTMP_TRACE_HEAD) bytes (what an observer gets,
 * session.h), the line is the whole body's unless a string over 200 bytes
 * or a value shown in part lies across their end.  Where the bytes given
 * end before what the line would show, the body ends with
 * --[[... (N more bytes)]] (N: the bytes from the first not shown to the
 * body's end; for audio and video, the bytes not given) in place of a
 * decode error. */
size_t rtmp_trace_format(char *line, long long sec, long usec, unsigned long id, int dir, int fmt,
                         const rtmp_msg_hdr *h, const uint8_t *payload, size_t len);

#endif
