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
void rtmp_l_open_chunk(lua_State *L);     /* rtmp.reader, rtmp.writer (Lua-owned, for tests and tools) */
void rtmp_l_open_handshake(lua_State *L); /* rtmp.handshake (Lua-owned, for tests and tools) */
void rtmp_l_open_net(lua_State *L);       /* rtmp.listen, rtmp.connect, rtmp.run, rtmp.timer, rtmp.group, ... */
void rtmp_l_open_log(lua_State *L);       /* rtmp.log */



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
