/*
 * l_rtmp.h: what the parts of the "rtmp" Lua binding share.
 *
 * Each part fills in its fields of the module table with an
 * rtmp_l_open_<part>(L) function that expects the module table on top of
 * the stack and leaves the stack as it found it.
 */
#ifndef RTMP_L_RTMP_H
#define RTMP_L_RTMP_H

#include <lua.h>
#include <lauxlib.h>

#include "../core/amf0.h"
#include "../core/buf.h"

/* Parts of the module; luaopen_rtmp calls each. */
void rtmp_l_open_amf0(lua_State *L);      /* rtmp.amf0, rtmp.null, rtmp.undefined */
void rtmp_l_open_amf3(lua_State *L);      /* rtmp.amf3 (after rtmp_l_open_amf0) */
void rtmp_l_open_chunk(lua_State *L);     /* rtmp.reader, rtmp.writer (Lua-owned, for tests and tools) */
void rtmp_l_open_handshake(lua_State *L); /* rtmp.handshake (Lua-owned, for tests and tools) */
void rtmp_l_open_net(lua_State *L);       /* rtmp.listen, rtmp.connect, rtmp.run, rtmp.timer, rtmp.group, ... */
void rtmp_l_open_msg(lua_State *L);       /* rtmp.aggregate, rtmp.shared_object (l_msg.c) */
void rtmp_l_open_log(lua_State *L);       /* rtmp.log */
void rtmp_l_open_send(lua_State *L);      /* the rtmp.outgoing metatable (l_send.c) */
void rtmp_l_open_flv(lua_State *L);       /* rtmp.flv: FLV files (l_flv.c) */
void rtmp_l_open_util(lua_State *L);      /* rtmp.isatty (l_util.c) */
void rtmp_l_open_pcap(lua_State *L);      /* rtmp.pcap: captured TCP (l_pcap.c) */
void rtmp_l_open_trace(lua_State *L);     /* rtmp.trace_line (l_trace.c) */

/* Raw sending and tolerances (l_send.c), in l_net.c's sending_methods:
 * conn:option, conn:abort, conn:begin, conn:send_chunks. */
int rtmp_l_conn_option(lua_State *L);
int rtmp_l_conn_abort(lua_State *L);
int rtmp_l_conn_begin(lua_State *L);
int rtmp_l_conn_send_chunks(lua_State *L);

/* From l_net.c, for the other parts.  rtmp_l_target: the session behind
 * the connection or socket-free session at idx (for a connection also
 * *cp), or NULL after pushing nil, "closed" [-0, +(0|2), e].  rtmp_l_sent:
 * after queuing, wake the connection's writer and push true, or nil, err
 * when rc < 0; returns the number pushed [-0, +(1|2), -].  rtmp_l_read_hdr:
 * fill h from the header table at t (0: none) as conn:send does [-0, +0, e].
 * rtmp_l_opt_field_u32: field k of the table at t as an integer in
 * 0 .. 2^32-1, def when it is nil or t is 0; raises otherwise [-0, +0, e]. */
struct rtmp_session;
struct rtmp_conn;
struct rtmp_msg_hdr;
struct rtmp_session *rtmp_l_target(lua_State *L, int idx, struct rtmp_conn **cp);
int rtmp_l_sent(lua_State *L, struct rtmp_conn *c, int rc);
void rtmp_l_read_hdr(lua_State *L, int t, struct rtmp_msg_hdr *h);
uint32_t rtmp_l_opt_field_u32(lua_State *L, int t, const char *k, uint32_t def);

/* The message trace (l_trace.c), for l_net.c.  A trace is owned by the
 * connection or session whose slot holds it.  rtmp_l_trace_set: switch the
 * trace of s by the value at idx: nil/false off, true to the log, a path
 * (appended to; one open file per path), or an open Lua file; returns 0,
 * or 2 after pushing nil, msg when the file cannot be opened; raises for
 * another type [-0, +(0|2), e].  rtmp_l_trace_settings: the same from
 * field trace of the table at t, else rtmp.options.trace; failures are
 * logged, never raised [-0, +0, m].  rtmp_l_trace_free: stop and free (L
 * and s may be NULL) [-0, +0, -]. */
typedef struct rtmp_l_trace rtmp_l_trace;
int rtmp_l_trace_set(lua_State *L, int idx, struct rtmp_session *s, rtmp_l_trace **slot,
                     unsigned long id, const char *peer);
void rtmp_l_trace_settings(lua_State *L, int t, struct rtmp_session *s, rtmp_l_trace **slot,
                           unsigned long id, const char *peer);
void rtmp_l_trace_free(lua_State *L, struct rtmp_session *s, rtmp_l_trace **slot);

/* Message bodies (l_msg.c), for l_net.c. */

/* [-0, +1, m] push a new message object holding a copy of the header h
 * and of payload[0 .. h->length), with applied (RTMP_AUTO_* bits) as
 * msg.applied.  Unless it is media (audio, video, aggregate), its body
 * is decoded into its side table: control fields, values/name/txn/args
 * for commands and data, so for shared objects (AMF values nest at most
 * max_depth levels); a body that does not decode gives a decode_error
 * field, never an error.  Raises only on memory errors. */
void rtmp_l_push_msg(lua_State *L, const struct rtmp_msg_hdr *h, const uint8_t *payload,
                     unsigned applied, int max_depth);

/* msg:split([opts]), a lua_CFunction: the sub-messages of the aggregate
 * message at index 1, as an array of message objects (each pushed as
 * rtmp_l_push_msg does), or nil, message, code for a malformed
 * aggregate.  Raises when the message is not an aggregate. */
int rtmp_l_msg_split(lua_State *L);



/* AMF0 <-> Lua (l_amf0.c). */

/* Decode every AMF0 value in p[0 .. len) and push one array table
 * holding them, with field n.  Values nest at most max_depth levels.
 * [-0, +1, m] on success returns 0; on malformed input pushes nothing and
 * returns a negative RTMP_ERR_* code. */
int rtmp_l_amf0_push_values(lua_State *L, const uint8_t *p, size_t len, int max_depth);

/* Encode the Lua values at stack indexes first..last (absolute) as AMF0,
 * appending to *out.  [-0, +0, e]: raises a Lua error for values that
 * have no AMF0 form (functions, threads, cycles, nesting past max_depth). */
void rtmp_l_amf0_encode_values(lua_State *L, int first, int last, rtmp_buf **out, int max_depth);

/* [-0, +1, -] push the rtmp.null / rtmp.undefined sentinels. */
void rtmp_l_push_null(lua_State *L);
void rtmp_l_push_undefined(lua_State *L);

#define RTMP_DEFAULT_AMF_DEPTH RTMP_AMF0_DEFAULT_DEPTH

/* [-0, +1, e] Format the values from stack index first to the top the way
 * string.format does (a single value is converted with tostring). */
void rtmp_l_format(lua_State *L, int first);

#endif
