/*
 * l_trace.h: the message trace (l_trace.c), for the types that carry one
 * (connections, socket-free sessions).  A trace is owned by the object
 * whose slot holds it.
 */
#ifndef RTMP_L_TRACE_H
#define RTMP_L_TRACE_H

#include "l_rtmp.h"

struct rtmp_session;
typedef struct rtmp_l_trace rtmp_l_trace;

/* Switch the trace of s by the value at idx: nil/false off, true to the
 * log, a path (appended to; one open file per path), or an open Lua file;
 * returns 0, or 2 after pushing nil, msg when the file cannot be opened;
 * raises for another type.  [-0, +(0|2), e] */
int rtmp_l_trace_set(lua_State *L, int idx, struct rtmp_session *s, rtmp_l_trace **slot,
                     unsigned long id, const char *peer);

/* The same from field trace of the table at t, else rtmp.options.trace;
 * failures are logged, never raised.  [-0, +0, m] */
void rtmp_l_trace_settings(lua_State *L, int t, struct rtmp_session *s, rtmp_l_trace **slot,
                           unsigned long id, const char *peer);

/* obj:trace(on [, path | file]) for the object at index 1 whose session
 * is s: switches the trace (the path or file, when given, replaces
 * true) and pushes true, or nil, err.  Returns the number pushed.
 * [-0, +(1|2), e] */
int rtmp_l_trace_method(lua_State *L, struct rtmp_session *s, rtmp_l_trace **slot, unsigned long id,
                        const char *peer);

/* Stop and free (L and s may be NULL).  [-0, +0, -] */
void rtmp_l_trace_free(lua_State *L, struct rtmp_session *s, rtmp_l_trace **slot);

#endif
