/*
 * l_rtmp.h: the C part of the rtmp Lua module (rtmp.core, rtmp.c) and
 * what every file of the binding may use.
 *
 * One file per Lua type or function family, as luv has tcp.c, timer.c
 * and one lhandle.c for what they share.  Each part fills in its fields
 * of the module table with an rtmp_l_open_<part>(L) function that expects
 * the module table on top of the stack and leaves the stack as it found
 * it.  Who calls whom (no cycle: no part calls back into one that calls it):
 *
 *   rtmp.c ──> each part's rtmp_l_open_*
 *   l_server ──> l_conn ──> l_send ──> l_msg ──> l_body ──> l_amf0 ──> l_amf3 ──> l_amf
 *   l_group ──> l_conn, l_msg, l_queue       l_session ──> l_send, l_msg, l_forward
 *   l_conn ──> l_forward, l_queue, l_url, l_log   l_flv, l_mp4 ──> l_msg     l_chunk ──> l_settings
 *   l_forward ──> core/group (a group's box read by its layout, l_group.h: no call back)
 *   l_server, l_conn, l_timer ──> l_contain ──> l_loop
 *   l_server, l_conn, l_session, l_send, l_contain ──> l_settings
 *   l_server, l_conn, l_session ──> l_trace
 *   every part ──> l_util (below), core/
 */
#ifndef RTMP_L_RTMP_H
#define RTMP_L_RTMP_H

#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>

#include "../core/buf.h"

/* Parts of the module; luaopen_rtmp_core calls each. */
void rtmp_l_open_util(lua_State *L);      /* rtmp.isatty, rtmp.fail; the buffer slot (l_util.c) */
void rtmp_l_open_log(lua_State *L);       /* rtmp.log (l_log.c) */
void rtmp_l_open_amf0(lua_State *L);      /* rtmp.amf0, rtmp.null, rtmp.undefined (l_amf0.c) */
void rtmp_l_open_amf3(lua_State *L);      /* rtmp.amf3, after rtmp_l_open_amf0 (l_amf3.c) */
void rtmp_l_open_chunk(lua_State *L);     /* rtmp.reader, rtmp.writer (l_chunk.c) */
void rtmp_l_open_handshake(lua_State *L); /* rtmp.handshake (l_handshake.c) */
void rtmp_l_open_loop(lua_State *L);      /* the loop; rtmp.run, stop, now, shutdown, handle_signals (l_loop.c) */
void rtmp_l_open_settings(lua_State *L);  /* rtmp.settings, rtmp.options (l_settings.c) */
void rtmp_l_open_msg(lua_State *L);       /* message objects; rtmp.message, rtmp.aggregate (l_msg.c) */
void rtmp_l_open_body(lua_State *L);      /* rtmp.shared_object (l_body.c) */
void rtmp_l_open_send(lua_State *L);      /* the rtmp.outgoing metatable (l_send.c) */
void rtmp_l_open_conn(lua_State *L);      /* connections; rtmp.connect (l_conn.c) */
void rtmp_l_open_server(lua_State *L);    /* rtmp.listen (l_server.c) */
void rtmp_l_open_session(lua_State *L);   /* rtmp.session (l_session.c) */
void rtmp_l_open_group(lua_State *L);     /* rtmp.group (l_group.c) */
void rtmp_l_open_timer(lua_State *L);     /* rtmp.timer (l_timer.c) */
void rtmp_l_open_url(lua_State *L);       /* rtmp.parse_url (l_url.c) */
void rtmp_l_open_flv(lua_State *L);       /* rtmp.flv: FLV files (l_flv.c) */
void rtmp_l_open_mp4(lua_State *L);       /* rtmp.mp4: MP4 files (l_mp4.c) */
void rtmp_l_open_media(lua_State *L);     /* rtmp.media: the codecs luartmp knows (l_media.c) */
void rtmp_l_open_pcap(lua_State *L);      /* rtmp.pcap: captured TCP (l_pcap.c) */
void rtmp_l_open_trace(lua_State *L);     /* rtmp.trace_line (l_trace.c) */
void rtmp_l_open_digest(lua_State *L);    /* rtmp.sha256 from libcrypto (l_digest.c) */
void rtmp_l_open_http(lua_State *L);      /* rtmp.http: outgoing HTTP requests (l_http.c) */
void rtmp_l_open_httpd(lua_State *L);     /* rtmp.http.listen, after rtmp_l_open_http (l_httpd.c) */
void rtmp_l_open_redis(lua_State *L);     /* rtmp.redis: Redis clients (l_redis.c) */

/* ---- l_util.c ---- */

/* The buffer slot: a userdata owning an rtmp_buf while code that may raise
 * fills it (encoders); the buffer is released when the slot is collected.
 * rtmp_l_slot_new: [-0, +1, m] a new slot, *slot NULL.
 * rtmp_l_slot_push: [-0, +1, m] the slot's bytes as a string ("" when
 * none); the buffer is released and *slot set to NULL.
 * rtmp_l_slot_take: [-0, +0, -] the buffer, now the caller's (*slot NULL). */
rtmp_buf **rtmp_l_slot_new(lua_State *L);
void rtmp_l_slot_push(lua_State *L, rtmp_buf **slot);
rtmp_buf *rtmp_l_slot_take(rtmp_buf **slot);

/* [-0, +0, e] field k of the table at t as an integer in 0 .. 2^32-1;
 * def when it is nil or t is 0; raises otherwise ("field 'k' out of
 * range"). */
uint32_t rtmp_l_opt_u32(lua_State *L, int t, const char *k, uint32_t def);

/* A callback in flight (rtmp.http.start, r:send): its box is a full
 * userdata whose user value 1 is the function, held by a registry
 * reference *ref while the operation runs.
 * rtmp_l_settle: [-0, +0, -] the operation ended: the box leaves the
 * registry (*ref = LUA_NOREF) and deliver(fn, outcome) runs under
 * rtmp_l_pcall (what names it in an error's log line); the box stays
 * alive until deliver returns.  Nothing when *ref holds no box.
 * rtmp_l_release: [-0, +0, -] let go of the box without calling it
 * (cancel).
 * rtmp_l_push_fail: [-0, +3, m] nil, err and the error table's name of
 * rc ("IO", "TIMEOUT", ...): a failure as the binding's callbacks and
 * calls report it; returns 3. */
void rtmp_l_settle(lua_State *L, int *ref, lua_CFunction deliver, void *outcome, const char *what);
void rtmp_l_release(lua_State *L, int *ref);
int rtmp_l_push_fail(lua_State *L, const char *err, int rc);

/* [-0, +0, -] The message of the rtmp.fail error at idx (an error for the
 * user to read, printed alone), or NULL for any other value.  The string
 * lives as long as that error value does. */
const char *rtmp_l_failure(lua_State *L, int idx);

/* ---- l_url.c ---- */

struct rtmp_url;

/* [-0, +0, m] Set the parts of u as fields of the table on top: app, path,
 * tc_url, and with address also host and port. */
void rtmp_l_url_set(lua_State *L, const struct rtmp_url *u, int address);

/* [-0, +2, m] nil and the message of URL error rc (core/url.h) for url:
 * "not an rtmp:// URL: <url>", "no host in URL", ...; returns 2. */
int rtmp_l_url_fail(lua_State *L, int rc, const char *url);

/* ---- l_log.c ---- */

/* [-0, +1, e] Format the values from stack index first to the top the way
 * string.format does (a single value is converted with tostring). */
void rtmp_l_format(lua_State *L, int first);

#endif
