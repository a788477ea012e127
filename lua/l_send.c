/*
 * l_send.c: what connections and socket-free sessions share (l_send.h):
 * the sending methods of the session behind them, raw sending and
 * per-connection tolerances, and the session's state fields.
 *
 *   conn:send(hdr, payload | msg), conn:command(hdr, name, txn, ...),
 *   conn:data(hdr, ...), conn:command3, conn:data3, conn:set_chunk_size(n),
 *   conn:set_window_ack_size(n), conn:set_peer_bandwidth(n, limit),
 *   conn:user_control(event, ...), conn:ack(n), conn:raw(bytes),
 *   conn:auto(name [, on])            read or switch an automatic behaviour
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

#include "l_send.h"
#include "l_amf.h"
#include "l_msg.h"
#include "l_settings.h"
#include "../core/chunk.h"
#include "../core/control.h"
#include "../core/error.h"

/* The session behind the object at idx, through the type of the method
 * running (its upvalue 1); for a connection also *cp.  Pushes nil,
 * "closed" and returns NULL when it is closed. */
static rtmp_session *target(lua_State *L, int idx, rtmp_conn **cp)
{
    const rtmp_l_sendable *type = lua_touserdata(L, lua_upvalueindex(1));
    return type->session(L, idx, cp);
}

/* After queuing: tell the loop (connections only); results for Lua:
 * true, or nil, err.  Returns the number pushed.  [-0, +(1|2), -] */
static int sent(lua_State *L, rtmp_conn *c, int rc)
{
    if (rc >= 0 && c)
        rc = rtmp_conn_output(c);
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, rtmp_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- sending ---- */

/* conn:send(hdr, payload): payload is a string or a message (whose header
 * fills what hdr leaves out). */
static int conn_send(lua_State *L)
{
    int t = lua_isnoneornil(L, 2) ? 0 : 2;
    rtmp_msg_hdr h = { 0 };
    const uint8_t *p;
    size_t len;
    lmsg *m = luaL_testudata(L, 3, MSG_MT);
    if (m) {
        h = m->h;
        h.csid = 0;
        p = m->data;
        len = m->len;
    } else {
        p = (const uint8_t *)luaL_checklstring(L, 3, &len);
        if (!t)
            return luaL_argerror(L, 2, "header table expected for a string payload");
        lua_getfield(L, t, "type");
        if (lua_isnil(L, -1))
            return luaL_argerror(L, 2, "header needs a type");
        lua_pop(L, 1);
    }
    rtmp_l_read_hdr(L, t, &h);
    if (len > 0xFFFFFF)
        return luaL_argerror(L, 3, "payload longer than 16777215 bytes");
    h.length = (uint32_t)len;
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    return ss ? sent(L, c, rtmp_session_send(ss, &h, p)) : 2;
}

/* conn:command(hdr, name, txn, ...) and conn:data(hdr, ...): AMF0 values;
 * conn:command3 / conn:data3 (types 17 / 15, or hdr.type 17 / 15 on the
 * former): the same values after the format byte 0. */
static int send_amf(lua_State *L, uint8_t type)
{
    int t = lua_isnoneornil(L, 2) ? 0 : 2;
    rtmp_msg_hdr h = { .type = type };
    rtmp_l_read_hdr(L, t, &h);
    int top = lua_gettop(L);
    if (type == RTMP_MSG_AMF0_COMMAND || type == RTMP_MSG_AMF3_COMMAND) {
        luaL_checkstring(L, 3);
        luaL_checknumber(L, 4);
    }
    int format_byte = h.type == RTMP_MSG_AMF3_COMMAND || h.type == RTMP_MSG_AMF3_DATA;
    rtmp_buf *out = NULL;
    if (top >= 3 || format_byte) {
        /* Encode into a buffer owned by a to-be-closed slot so an
         * encoding error (it raises) does not leak it. */
        rtmp_buf **slot = rtmp_l_slot_new(L);
        static const uint8_t format0 = 0;
        if (format_byte && rtmp_buf_append(slot, &format0, 1) < 0)
            return luaL_error(L, "out of memory");
        if (top >= 3)
            rtmp_l_amf0_encode_values(L, 3, top, slot, RTMP_DEFAULT_AMF_DEPTH);
        out = *slot;
        *slot = NULL;
        lua_pop(L, 1);
    }
    h.length = out ? (uint32_t)out->len : 0;
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    if (!ss) {
        rtmp_buf_unref(out);
        return 2;
    }
    int rc = h.length > 0xFFFFFF ? RTMP_ERR_INVAL : rtmp_session_send(ss, &h, out ? out->data : NULL);
    rtmp_buf_unref(out);
    return sent(L, c, rc);
}

static int conn_command(lua_State *L) { return send_amf(L, RTMP_MSG_AMF0_COMMAND); }
static int conn_data(lua_State *L) { return send_amf(L, RTMP_MSG_AMF0_DATA); }
static int conn_command3(lua_State *L) { return send_amf(L, RTMP_MSG_AMF3_COMMAND); }
static int conn_data3(lua_State *L) { return send_amf(L, RTMP_MSG_AMF3_DATA); }

static uint32_t check_u32(lua_State *L, int idx)
{
    lua_Integer v = luaL_checkinteger(L, idx);
    luaL_argcheck(L, v >= 0 && v <= 0xFFFFFFFFLL, idx, "out of range 0..2^32-1");
    return (uint32_t)v;
}

static int conn_set_chunk_size(lua_State *L)
{
    uint32_t size = check_u32(L, 2);
    luaL_argcheck(L, size >= 1 && size <= 0x7FFFFFFF, 2, "chunk size out of range 1..2^31-1");
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    return ss ? sent(L, c, rtmp_session_set_chunk_size(ss, size)) : 2;
}

static int conn_window_ack_size(lua_State *L)
{
    uint32_t size = check_u32(L, 2);
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    return ss ? sent(L, c, rtmp_session_send_window(ss, size)) : 2;
}

/* conn:set_peer_bandwidth(window, limit): limit 0/1/2, "hard"/"soft"/"dynamic",
 * or false to leave the limit-type byte out (a real peer's quirk). */
static int conn_peer_bandwidth(lua_State *L)
{
    static const char *const limits[] = { "hard", "soft", "dynamic", NULL };
    uint32_t size = check_u32(L, 2);
    int limit;
    if (lua_isboolean(L, 3) && !lua_toboolean(L, 3))
        limit = -1;
    else if (lua_type(L, 3) == LUA_TSTRING)
        limit = luaL_checkoption(L, 3, NULL, limits);
    else
        limit = (int)luaL_optinteger(L, 3, 2);
    luaL_argcheck(L, limit >= -1 && limit <= 255, 3, "limit type out of range");
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    return ss ? sent(L, c, rtmp_session_send_peer_bandwidth(ss, size, limit)) : 2;
}

/* conn:user_control(event, [v1, [v2]]): event is a number or a name
 * ("stream_begin", "stream_eof", "set_buffer_length", "ping_request", ...). */
static int conn_user_control(lua_State *L)
{
    int event;
    if (lua_type(L, 2) == LUA_TSTRING) {
        event = rtmp_uc_event(lua_tostring(L, 2));
        if (event < 0)
            return luaL_argerror(L, 2, "unknown user control event");
    } else {
        lua_Integer e = luaL_checkinteger(L, 2);
        luaL_argcheck(L, e >= 0 && e <= 0xFFFF, 2, "event out of range");
        event = (int)e;
    }
    int nfields = lua_isnoneornil(L, 3) ? 0 : lua_isnoneornil(L, 4) ? 1 : 2;
    uint32_t v1 = nfields >= 1 ? check_u32(L, 3) : 0;
    uint32_t v2 = nfields >= 2 ? check_u32(L, 4) : 0;
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    return ss ? sent(L, c, rtmp_session_send_user_control(ss, (uint16_t)event, nfields, v1, v2))
             : 2;
}

static int conn_ack(lua_State *L)
{
    uint32_t seq = check_u32(L, 2);
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    return ss ? sent(L, c, rtmp_session_send_ack(ss, seq)) : 2;
}

/* conn:raw(bytes): queue bytes exactly as given, no chunking (on a
 * passthrough connection, straight to the socket's queue). */
static int conn_raw(lua_State *L)
{
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    rtmp_conn *c;
    rtmp_session *ss = target(L, 1, &c);
    if (ss && c && rtmp_conn_get_config(c)->passthrough)
        return sent(L, NULL, rtmp_conn_write(c, (const uint8_t *)p, len));
    return ss ? sent(L, c, rtmp_session_send_raw(ss, (const uint8_t *)p, len)) : 2;
}

/* conn:auto(name [, on]) -> on: read or switch one automatic behaviour. */
static int conn_auto(lua_State *L)
{
    const char *name = luaL_checkstring(L, 2);
    unsigned bit = rtmp_auto_bit(name);
    if (!bit)
        return luaL_argerror(L, 2, "expected ack, ping, chunk_size, abort, window, bandwidth or bandwidth_reply");
    rtmp_conn *c;
    rtmp_session *s = target(L, 1, &c);
    if (!s)
        return 2;
    unsigned autos = rtmp_session_autos(s);
    if (!lua_isnoneornil(L, 3)) {
        autos = lua_toboolean(L, 3) ? autos | bit : autos & ~bit;
        rtmp_session_set_autos(s, autos);
    }
    lua_pushboolean(L, (autos & bit) != 0);
    return 1;
}


int rtmp_l_session_field(lua_State *L, rtmp_session *s, const char *k)
{
    static const char *const kinds[] = { "unknown", "plain", "digest1", "digest2" };
    rtmp_session_info info;
    rtmp_session_get_info(s, &info);
    if (!strcmp(k, "pending")) { lua_pushinteger(L, (lua_Integer)rtmp_session_pending(s)); return 1; }
    if (!strcmp(k, "ready")) { lua_pushboolean(L, rtmp_session_ready(s)); return 1; }
    if (!strcmp(k, "in_chunk_size")) { lua_pushinteger(L, info.in_chunk_size); return 1; }
    if (!strcmp(k, "out_chunk_size")) { lua_pushinteger(L, info.out_chunk_size); return 1; }
    if (!strcmp(k, "ack_window")) { lua_pushinteger(L, info.ack_window); return 1; }
    if (!strcmp(k, "last_ack_sent")) { lua_pushinteger(L, info.last_ack_sent); return 1; }
    if (!strcmp(k, "peer_ack")) { lua_pushinteger(L, info.peer_ack); return 1; }
    if (!strcmp(k, "window_sent")) { lua_pushinteger(L, info.window_sent); return 1; }
    if (!strcmp(k, "peer_bandwidth")) { lua_pushinteger(L, info.peer_bandwidth); return 1; }
    if (!strcmp(k, "peer_bandwidth_limit")) {
        if (info.peer_bandwidth_limit < 0)
            return 0;
        lua_pushinteger(L, info.peer_bandwidth_limit);
        return 1;
    }
    if (!strcmp(k, "handshake")) {
        lua_pushstring(L, kinds[info.hs_peer_kind >= 0 && info.hs_peer_kind <= 3 ? info.hs_peer_kind : 0]);
        return 1;
    }
    if (!strcmp(k, "handshake_verified")) { lua_pushboolean(L, info.hs_peer_verified); return 1; }
    return 0;
}

#define OUTGOING_MT "rtmp.outgoing"

/* The message being sent.  User values: 1 = the payload string, 2 = the
 * connection or session it goes through (of type via). */
typedef struct loutgoing {
    rtmp_wmsg              m;
    const rtmp_l_sendable *via;
} loutgoing;

/* ---- options ---- */

/* conn:option(name [, value]) -> value (after the change, if any). */
static int conn_option(lua_State *L)
{
    static const char *const names[] = { "ext_ts_fmt3", "accept_fresh_fmt", "send_ext_ts_fmt3", NULL };
    int opt = luaL_checkoption(L, 2, NULL, names);
    const rtmp_l_setting *ext = rtmp_l_setting_find("ext_ts_fmt3");
    int set = !lua_isnone(L, 3);
    int mode = 0;
    if (set && opt == 0) {
        mode = rtmp_l_setting_choice(L, ext, 3);
    } else if (set) {
        luaL_checktype(L, 3, LUA_TBOOLEAN);
    }
    rtmp_conn *c;
    rtmp_session *s = target(L, 1, &c);
    if (!s)
        return 2;
    rtmp_reader *r = rtmp_session_reader(s);
    rtmp_writer *w = rtmp_session_writer(s);
    switch (opt) {
    case 0:
        if (set)
            rtmp_reader_set_ext_ts_fmt3(r, mode);
        lua_pushstring(L, rtmp_l_setting_choice_name(ext, rtmp_reader_get_config(r)->ext_ts_fmt3));
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
    rtmp_session *s = target(L, 1, &c);
    return s ? sent(L, c, rtmp_session_send_abort(s, (uint32_t)csid)) : 2;
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
    rtmp_session *s = o->via->session(L, lua_gettop(L), &c);
    if (!s) {
        lua_rotate(L, -4, 2); /* nil, "closed" below payload and target */
        lua_pop(L, 2);
        return 2;
    }
    int rc = rtmp_session_chunk(s, &o->m, p, co);
    lua_pop(L, 2);
    if (sent(L, c, rc) == 2)
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
    o->via = lua_touserdata(L, lua_upvalueindex(1));
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
    rtmp_session *s = target(L, 1, &c);
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
    rtmp_session *s = target(L, 1, &c);
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

static const luaL_Reg sending_methods[] = {
    { "send", conn_send },
    { "command", conn_command },
    { "data", conn_data },
    { "command3", conn_command3 },
    { "data3", conn_data3 },
    { "set_chunk_size", conn_set_chunk_size },
    { "set_window_ack_size", conn_window_ack_size },
    { "set_peer_bandwidth", conn_peer_bandwidth },
    { "user_control", conn_user_control },
    { "ack", conn_ack },
    { "raw", conn_raw },
    { "auto", conn_auto },
    { "option", conn_option },
    { "abort", conn_abort },
    { "begin", conn_begin },
    { "send_chunks", conn_send_chunks },
    { NULL, NULL },
};

void rtmp_l_send_newtype(lua_State *L, const char *name, const rtmp_l_sendable *type, const luaL_Reg *methods,
                         lua_CFunction index, const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushlightuserdata(L, (void *)type);
    luaL_setfuncs(L, sending_methods, 1);
    lua_pushcclosure(L, index, 1);
    lua_setfield(L, -2, "__index");
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
}

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
