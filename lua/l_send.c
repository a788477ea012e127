/*
 * l_send.c: raw sending and per-connection tolerances.
 *
 * Methods shared by connections and socket-free sessions (they sit in
 * l_net.c's sending_methods):
 *   conn:option(name [, value])       read or set a tolerance / writer option
 *   conn:abort(csid)                  send an Abort message
 *   conn:begin(hdr, payload)          -> an outgoing message sent chunk by chunk
 *   conn:send_chunks(hdr, payload, chunks)   one message, chunk list given
 * and the outgoing message object ("rtmp.outgoing"):
 *   m:chunk([size | { size, fmt, ext_ts }]), m:rest([opts]),
 *   m:remaining(), m:done()
 *
 * What is written is what goes on the wire: each m:chunk() call queues
 * exactly one chunk, and anything sent between two calls (another csid's
 * chunks, a Set Chunk Size, an Abort) goes between them.
 */
#include <string.h>

#include "l_msg.h"
#include "l_rtmp.h"
#include "../core/chunk.h"
#include "../core/error.h"
#include "../core/net.h"
#include "../core/session.h"

#define OUTGOING_MT "rtmp.outgoing"

/* The message being sent.  User values: 1 = the payload string, 2 = the
 * connection or session it goes through. */
typedef struct loutgoing {
    rtmp_wmsg m;
} loutgoing;

/* ---- options ---- */

static const char *const ext_modes[] = { "detect", "spec", "never", NULL };

static int ext_mode_index(int mode)
{
    return mode == RTMP_EXT_TS_SPEC ? 1 : mode == RTMP_EXT_TS_NEVER ? 2 : 0;
}

/* conn:option(name [, value]) -> value (after the change, if any). */
static int conn_option(lua_State *L)
{
    static const char *const names[] = { "ext_ts_fmt3", "accept_fresh_fmt", "send_ext_ts_fmt3", NULL };
    int opt = luaL_checkoption(L, 2, NULL, names);
    int set = !lua_isnone(L, 3);
    int mode = 0;
    if (set && opt == 0) {
        int i = luaL_checkoption(L, 3, NULL, ext_modes);
        mode = i == 0 ? RTMP_EXT_TS_DETECT : i == 1 ? RTMP_EXT_TS_SPEC : RTMP_EXT_TS_NEVER;
    } else if (set) {
        luaL_checktype(L, 3, LUA_TBOOLEAN);
    }
    rtmp_conn *c;
    rtmp_session *s = rtmp_l_target(L, 1, &c);
    if (!s)
        return 2;
    rtmp_reader *r = rtmp_session_reader(s);
    rtmp_writer *w = rtmp_session_writer(s);
    switch (opt) {
    case 0:
        if (set)
            rtmp_reader_set_ext_ts_fmt3(r, mode);
        lua_pushstring(L, ext_modes[ext_mode_index(rtmp_reader_get_config(r)->ext_ts_fmt3)]);
        break;
    case 1:
        if (set)
            rtmp_reader_set_accept_fresh_fmt(r, lua_toboolean(L, 3));
        lua_pushboolean(L, rtmp_reader_get_config(r)->accept_fresh_fmt);
        break;
    default:
        if (set)
            rtmp_writer_set_ext_ts_fmt3(w, lua_toboolean(L, 3));
        lua_pushboolean(L, rtmp_writer_ext_ts_fmt3(w));
        break;
    }
    return 1;
}

/* conn:abort(csid) -> true | nil, err */
static int conn_abort(lua_State *L)
{
    lua_Integer csid = luaL_checkinteger(L, 2);
    luaL_argcheck(L, csid >= 0 && csid <= 0xFFFFFFFFLL, 2, "out of range 0..2^32-1");
    rtmp_conn *c;
    rtmp_session *s = rtmp_l_target(L, 1, &c);
    return s ? rtmp_l_sent(L, c, rtmp_session_send_abort(s, (uint32_t)csid)) : 2;
}

/* ---- outgoing messages ---- */

/* Read the chunk options at idx (none, a size, or a table) into o.
 * [-0, +0, e] */
static void read_chunk_opts(lua_State *L, int idx, rtmp_chunk_opts *o)
{
    o->size = 0;
    o->fmt = RTMP_FMT_AUTO;
    o->ext = -1;
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_isinteger(L, idx)) {
        lua_Integer n = lua_tointeger(L, idx);
        luaL_argcheck(L, n >= 1 && n <= 0xFFFFFF, idx, "chunk size out of range 1..2^24-1");
        o->size = (uint32_t)n;
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lua_getfield(L, idx, "size") != LUA_TNIL) {
        lua_Integer n = luaL_checkinteger(L, -1);
        if (n < 1 || n > 0xFFFFFF)
            luaL_error(L, "field 'size' out of range 1..2^24-1");
        o->size = (uint32_t)n;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "fmt") != LUA_TNIL) {
        lua_Integer f = luaL_checkinteger(L, -1);
        if (f < 0 || f > 3)
            luaL_error(L, "field 'fmt' out of range 0..3");
        o->fmt = (uint8_t)f;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "ext_ts") != LUA_TNIL) {
        if (!lua_isboolean(L, -1))
            luaL_error(L, "field 'ext_ts' must be a boolean");
        o->ext = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
}

static loutgoing *check_outgoing(lua_State *L)
{
    return luaL_checkudata(L, 1, OUTGOING_MT);
}

static int outgoing_done(const loutgoing *o)
{
    return o->m.started && o->m.sent == o->m.h.length;
}

/* Send one chunk of o (its payload at user value 1, its target at user
 * value 2).  Returns 0 and pushes nothing, or pushes nil, err and
 * returns 2.  [-0, +(0|2), e] */
static int send_one(lua_State *L, int oidx, loutgoing *o, const rtmp_chunk_opts *co)
{
    lua_getiuservalue(L, oidx, 1);
    const uint8_t *p = (const uint8_t *)lua_tostring(L, -1);
    lua_getiuservalue(L, oidx, 2);
    rtmp_conn *c;
    rtmp_session *s = rtmp_l_target(L, lua_gettop(L), &c);
    if (!s) {
        lua_rotate(L, -4, 2); /* nil, "closed" below payload and target */
        lua_pop(L, 2);
        return 2;
    }
    int rc = rtmp_session_chunk(s, &o->m, p, co);
    lua_pop(L, 2);
    if (rtmp_l_sent(L, c, rc) == 2)
        return 2;
    lua_pop(L, 1);
    return 0;
}

/* m:chunk([size | opts]) -> true | nil, err: the next chunk. */
static int outgoing_chunk(lua_State *L)
{
    loutgoing *o = check_outgoing(L);
    rtmp_chunk_opts co;
    read_chunk_opts(L, 2, &co);
    if (outgoing_done(o))
        return luaL_error(L, "message already sent whole");
    if (send_one(L, 1, o, &co))
        return 2;
    lua_pushboolean(L, 1);
    return 1;
}

/* m:rest([size | opts]) -> true | nil, err: every chunk left, each with opts. */
static int outgoing_rest(lua_State *L)
{
    loutgoing *o = check_outgoing(L);
    rtmp_chunk_opts co;
    read_chunk_opts(L, 2, &co);
    while (!outgoing_done(o))
        if (send_one(L, 1, o, &co))
            return 2;
    lua_pushboolean(L, 1);
    return 1;
}

static int outgoing_remaining(lua_State *L)
{
    loutgoing *o = check_outgoing(L);
    lua_pushinteger(L, (lua_Integer)(o->m.h.length - o->m.sent));
    return 1;
}

static int outgoing_isdone(lua_State *L)
{
    lua_pushboolean(L, outgoing_done(check_outgoing(L)));
    return 1;
}

static int outgoing_tostring(lua_State *L)
{
    loutgoing *o = check_outgoing(L);
    lua_pushfstring(L, "rtmp.outgoing(csid %d, %d of %d bytes sent)", (int)o->m.h.csid,
                    (int)o->m.sent, (int)o->m.h.length);
    return 1;
}

/* The header and payload of conn:begin / conn:send_chunks: hdr at index 2
 * (nil or a table), payload at 3 (a string, or a received message whose
 * type, stream and timestamp fill what hdr leaves out).  Leaves the
 * payload string on top.  [-0, +1, e] */
static void read_message(lua_State *L, rtmp_msg_hdr *h)
{
    int t = lua_isnoneornil(L, 2) ? 0 : 2;
    memset(h, 0, sizeof *h);
    lmsg *m = luaL_testudata(L, 3, MSG_MT);
    if (m) {
        h->type = m->h.type;
        h->stream_id = m->h.stream_id;
        h->timestamp = m->h.timestamp;
        lua_pushlstring(L, (const char *)m->data, m->len);
    } else {
        luaL_checkstring(L, 3);
        if (!t)
            luaL_argerror(L, 2, "header table expected for a string payload");
        if (lua_getfield(L, t, "type") == LUA_TNIL)
            luaL_argerror(L, 2, "header needs a type");
        lua_pop(L, 1);
        lua_pushvalue(L, 3);
    }
    rtmp_l_read_hdr(L, t, h);
    size_t len = lua_rawlen(L, -1);
    if (len > 0xFFFFFF)
        luaL_argerror(L, 3, "payload longer than 16777215 bytes");
    h->length = (uint32_t)len;
}

/* [-1, +1, e] a new outgoing message of h through s (the target at index
 * 1), replacing the payload string on top. */
static loutgoing *new_outgoing(lua_State *L, rtmp_session *s, const rtmp_msg_hdr *h)
{
    loutgoing *o = lua_newuserdatauv(L, sizeof *o, 2);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, OUTGOING_MT);
    lua_rotate(L, -2, 1);           /* outgoing, payload */
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 2);
    if (rtmp_session_begin(s, h, &o->m) < 0)  /* read_hdr checked csid and fmt */
        luaL_error(L, "invalid message header");
    return o;
}

/* conn:begin(hdr, payload) -> m | nil, "closed" */
static int conn_begin(lua_State *L)
{
    rtmp_msg_hdr h;
    read_message(L, &h);
    rtmp_conn *c;
    rtmp_session *s = rtmp_l_target(L, 1, &c);
    if (!s)
        return 2;
    new_outgoing(L, s, &h);
    return 1;
}

/* conn:send_chunks(hdr, payload, chunks) -> true | nil, err: one message,
 * chunk i shaped by chunks[i] (a size or a table as m:chunk takes), the
 * rest with the writer's defaults. */
static int conn_send_chunks(lua_State *L)
{
    luaL_checktype(L, 4, LUA_TTABLE);
    rtmp_msg_hdr h;
    read_message(L, &h);
    rtmp_conn *c;
    rtmp_session *s = rtmp_l_target(L, 1, &c);
    if (!s)
        return 2;
    loutgoing *o = new_outgoing(L, s, &h);
    int oidx = lua_gettop(L);
    lua_Integer n = luaL_len(L, 4);
    rtmp_chunk_opts co;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 4, i);
        read_chunk_opts(L, lua_gettop(L), &co);
        lua_pop(L, 1);
        if (outgoing_done(o))
            return luaL_error(L, "chunk %d: the message is already sent whole", (int)i);
        if (send_one(L, oidx, o, &co))
            return 2;
    }
    co.size = 0;
    co.fmt = RTMP_FMT_AUTO;
    co.ext = -1;
    while (!outgoing_done(o))
        if (send_one(L, oidx, o, &co))
            return 2;
    lua_pushboolean(L, 1);
    return 1;
}

int rtmp_l_conn_option(lua_State *L) { return conn_option(L); }
int rtmp_l_conn_abort(lua_State *L) { return conn_abort(L); }
int rtmp_l_conn_begin(lua_State *L) { return conn_begin(L); }
int rtmp_l_conn_send_chunks(lua_State *L) { return conn_send_chunks(L); }

void rtmp_l_open_send(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "chunk", outgoing_chunk },
        { "rest", outgoing_rest },
        { "remaining", outgoing_remaining },
        { "done", outgoing_isdone },
        { NULL, NULL },
    };
    luaL_newmetatable(L, OUTGOING_MT);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, outgoing_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}
