/*
 * l_chunk.c: Lua-owned chunk readers and writers, for tests and tools.
 *
 *   rtmp.reader([opts]) -> reader     (metatable "rtmp.reader")
 *     r:feed(bytes)       -> { {csid=, fmt=, type=, stream=, timestamp=,
 *                              length=, payload=}, ... }
 *                          | nil, message, code, messages-before-the-error
 *     r:set_chunk_size(n) -> true | nil, message, code
 *     r:chunk_size()      -> n
 *     r:buffered()        -> bytes held for partial messages
 *     r:abort(csid)       -> true
 *     r:close()
 *   rtmp.writer() -> writer           (metatable "rtmp.writer")
 *     w:write{csid=, type=, stream=0, timestamp=0, payload="", fmt=nil}
 *                         -> bytes
 *     w:note{csid=, type=, stream=0, timestamp=0, length=0}
 *     w:set_chunk_size(n) -> true | nil, message, code
 *     w:chunk_size()      -> n
 *     w:close()
 *   rtmp.chunk_fmt0(chunk_size, msg) -> bytes
 *
 * Reader options: the chunk reader's settings (l_settings.c: max_message,
 * max_amf_message, max_chunk_streams, min_chunk_size, max_chunk_size,
 * ext_ts_fmt3, accept_fresh_fmt), auto_chunk_size (boolean, default true: a
 * Set Chunk Size message sets the reader's chunk size and an Abort
 * message aborts, right after the message, as a session would).
 */
#include "l_rtmp.h"
#include "l_settings.h"
#include "../core/chunk.h"
#include "../core/error.h"

#include <string.h>

#define READER_MT "rtmp.reader"
#define WRITER_MT "rtmp.writer"
#define BUFBOX_MT "rtmp.chunkbuf"

#define SCRATCH_KEEP (64u << 10)   /* writer output buffer kept between writes */

typedef struct lreader {
    rtmp_reader *r;        /* NULL once closed */
    int          auto_cs;
    lua_State   *L;        /* set during feed */
    lua_Integer  n;        /* messages in the result table (top of L's stack) */
} lreader;

typedef struct lwriter {
    rtmp_writer *w;        /* NULL once closed */
    rtmp_buf    *scratch;  /* output of the last write, reused */
} lwriter;

/* [-0, +3, -] nil, message, code for a negative RTMP_ERR_* code. */
static int push_fail(lua_State *L, int err)
{
    luaL_pushfail(L);
    lua_pushstring(L, rtmp_strerror(err));
    lua_pushstring(L, rtmp_errname(err));
    return 3;
}

/* Integer field k of table t in lo..hi, or def when absent (def < 0:
 * required).  [-0, +0, e] */
static lua_Integer field_int(lua_State *L, int t, const char *k, lua_Integer lo, lua_Integer hi, lua_Integer def)
{
    lua_Integer v = def;
    int isint;
    if (lua_getfield(L, t, k) != LUA_TNIL) {
        v = lua_tointegerx(L, -1, &isint);
        if (!isint)
            luaL_error(L, "field '%s' must be an integer", k);
        if (v < lo || v > hi)
            luaL_error(L, "field '%s' out of range %I..%I", k, lo, hi);
    } else if (def < 0) {
        luaL_error(L, "field '%s' missing", k);
    }
    lua_pop(L, 1);
    return v;
}

/* ---- reader ---- */

static lreader *check_reader(lua_State *L)
{
    lreader *lr = luaL_checkudata(L, 1, READER_MT);
    if (!lr->r)
        luaL_error(L, "attempt to use a closed reader");
    return lr;
}

/* Append one message table to the result table on top of the stack, then
 * apply Set Chunk Size / Abort when asked.  [-0, +0, m] */
static int on_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    lreader *lr = ud;
    lua_State *L = lr->L;
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, h->csid);
    lua_setfield(L, -2, "csid");
    lua_pushinteger(L, h->fmt);
    lua_setfield(L, -2, "fmt");
    lua_pushinteger(L, h->type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, h->stream_id);
    lua_setfield(L, -2, "stream");
    lua_pushinteger(L, h->timestamp);
    lua_setfield(L, -2, "timestamp");
    lua_pushinteger(L, h->length);
    lua_setfield(L, -2, "length");
    lua_pushlstring(L, (const char *)payload, h->length);
    lua_setfield(L, -2, "payload");
    lua_rawseti(L, -2, ++lr->n);

    if (!lr->auto_cs || (h->type != RTMP_MSG_SET_CHUNK_SIZE && h->type != RTMP_MSG_ABORT))
        return 0;
    if (h->length < 4)
        return RTMP_ERR_CONTROL;
    uint32_t v = rtmp_get_be32(payload);
    if (h->type == RTMP_MSG_SET_CHUNK_SIZE)
        return rtmp_reader_set_chunk_size(lr->r, v);
    return rtmp_reader_abort(lr->r, v);
}

static int l_reader_feed(lua_State *L)
{
    lreader *lr = check_reader(L);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    lua_settop(L, 2);
    lua_newtable(L);
    lr->L = L;
    lr->n = 0;
    ssize_t rc = rtmp_reader_feed(lr->r, (const uint8_t *)p, len);
    lr->L = NULL;
    if (rc < 0) {
        push_fail(L, (int)rc);
        lua_pushvalue(L, 3);   /* what was delivered before the error */
        return 4;
    }
    return 1;
}

static int l_reader_set_chunk_size(lua_State *L)
{
    lreader *lr = check_reader(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    int rc = n < 0 || n > 0xFFFFFFFF ? RTMP_ERR_CHUNK_SIZE : rtmp_reader_set_chunk_size(lr->r, (uint32_t)n);
    if (rc < 0)
        return push_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_reader_chunk_size(lua_State *L)
{
    lua_pushinteger(L, rtmp_reader_chunk_size(check_reader(L)->r));
    return 1;
}

static int l_reader_buffered(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rtmp_reader_buffered(check_reader(L)->r));
    return 1;
}

static int l_reader_abort(lua_State *L)
{
    lreader *lr = check_reader(L);
    lua_Integer csid = luaL_checkinteger(L, 2);
    luaL_argcheck(L, csid >= 0 && csid <= 0xFFFFFFFF, 2, "csid out of range");
    rtmp_reader_abort(lr->r, (uint32_t)csid);
    lua_pushboolean(L, 1);
    return 1;
}

/* __gc, __close and close: idempotent. */
static int l_reader_close(lua_State *L)
{
    lreader *lr = luaL_checkudata(L, 1, READER_MT);
    rtmp_reader_free(lr->r);
    lr->r = NULL;
    return 0;
}

static int l_reader_tostring(lua_State *L)
{
    lreader *lr = luaL_checkudata(L, 1, READER_MT);
    if (lr->r)
        lua_pushfstring(L, "rtmp.reader (%p)", (void *)lr);
    else
        lua_pushliteral(L, "rtmp.reader (closed)");
    return 1;
}

/* The reader settings of the table at t (l_settings.c describes them, as
 * for connections) and auto_chunk_size. */
static void read_reader_opts(lua_State *L, int t, rtmp_reader_config *cfg, int *auto_cs)
{
    rtmp_l_settings_read_reader(L, t, cfg);
    if (lua_getfield(L, t, "auto_chunk_size") != LUA_TNIL)
        *auto_cs = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* rtmp.reader([opts]) */
static int l_reader_new(lua_State *L)
{
    rtmp_reader_config cfg;
    int auto_cs = 1;
    rtmp_reader_config_default(&cfg);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        read_reader_opts(L, 1, &cfg, &auto_cs);
    }
    lreader *lr = lua_newuserdatauv(L, sizeof *lr, 0);
    memset(lr, 0, sizeof *lr);
    luaL_setmetatable(L, READER_MT);
    lr->auto_cs = auto_cs;
    lr->r = rtmp_reader_new(&cfg, on_message, lr);
    if (!lr->r)
        return luaL_error(L, "not enough memory");
    return 1;
}

/* ---- writer ---- */

static lwriter *check_writer(lua_State *L)
{
    lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
    if (!lw->w)
        luaL_error(L, "attempt to use a closed writer");
    return lw;
}

/* Read a message table at index t into h; returns its payload (NULL when
 * with_payload is 0: the length comes from field length).  [-0, +0, e] */
static const uint8_t *read_msg(lua_State *L, int t, rtmp_msg_hdr *h, int with_payload)
{
    luaL_checktype(L, t, LUA_TTABLE);
    memset(h, 0, sizeof *h);
    h->csid = (uint32_t)field_int(L, t, "csid", RTMP_MIN_CSID, RTMP_MAX_CSID, -1);
    h->type = (uint8_t)field_int(L, t, "type", 0, 255, -1);
    h->stream_id = (uint32_t)field_int(L, t, "stream", 0, 0xFFFFFFFF, 0);
    h->timestamp = (uint32_t)field_int(L, t, "timestamp", 0, 0xFFFFFFFF, 0);
    h->fmt = RTMP_FMT_AUTO;
    if (!with_payload) {
        h->length = (uint32_t)field_int(L, t, "length", 0, 0xFFFFFFFF, 0);
        return NULL;
    }
    h->fmt = (uint8_t)field_int(L, t, "fmt", 0, 3, RTMP_FMT_AUTO);
    size_t len = 0;
    const char *p = "";
    int ty = lua_getfield(L, t, "payload");
    if (ty != LUA_TNIL) {
        if (ty != LUA_TSTRING)
            luaL_error(L, "field 'payload' must be a string");
        p = lua_tolstring(L, -1, &len);
    }
    lua_pop(L, 1);   /* the string stays alive in the table */
    if (len > 0xFFFFFFFF)
        luaL_error(L, "payload longer than 2^32-1 bytes");
    h->length = (uint32_t)len;
    return (const uint8_t *)p;
}

/* w:write(msg) -> bytes */
static int l_writer_write(lua_State *L)
{
    lwriter *lw = check_writer(L);
    rtmp_msg_hdr h;
    const uint8_t *payload = read_msg(L, 2, &h, 1);
    if (lw->scratch)
        lw->scratch->len = 0;
    int rc = rtmp_writer_write(lw->w, &h, payload, &lw->scratch);
    if (rc < 0)
        return rc == RTMP_ERR_NOMEM ? luaL_error(L, "not enough memory") : push_fail(L, rc);
    lua_pushlstring(L, (const char *)lw->scratch->data, lw->scratch->len);
    if (lw->scratch->cap > SCRATCH_KEEP) {
        rtmp_buf_unref(lw->scratch);
        lw->scratch = NULL;
    }
    return 1;
}

/* w:note(msg): msg was sent as fmt 0 by other means (rtmp.chunk_fmt0). */
static int l_writer_note(lua_State *L)
{
    lwriter *lw = check_writer(L);
    rtmp_msg_hdr h;
    read_msg(L, 2, &h, 0);
    int rc = rtmp_writer_note(lw->w, &h);
    if (rc < 0)
        return push_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_writer_set_chunk_size(lua_State *L)
{
    lwriter *lw = check_writer(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    int rc = n < 0 || n > 0xFFFFFFFF ? RTMP_ERR_CHUNK_SIZE : rtmp_writer_set_chunk_size(lw->w, (uint32_t)n);
    if (rc < 0)
        return push_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_writer_chunk_size(lua_State *L)
{
    lua_pushinteger(L, rtmp_writer_chunk_size(check_writer(L)->w));
    return 1;
}

static int l_writer_close(lua_State *L)
{
    lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
    rtmp_writer_free(lw->w);
    lw->w = NULL;
    rtmp_buf_unref(lw->scratch);
    lw->scratch = NULL;
    return 0;
}

static int l_writer_tostring(lua_State *L)
{
    lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
    if (lw->w)
        lua_pushfstring(L, "rtmp.writer (%p)", (void *)lw);
    else
        lua_pushliteral(L, "rtmp.writer (closed)");
    return 1;
}

/* rtmp.writer() */
static int l_writer_new(lua_State *L)
{
    lwriter *lw = lua_newuserdatauv(L, sizeof *lw, 0);
    memset(lw, 0, sizeof *lw);
    luaL_setmetatable(L, WRITER_MT);
    lw->w = rtmp_writer_new();
    if (!lw->w)
        return luaL_error(L, "not enough memory");
    return 1;
}

/* ---- rtmp.chunk_fmt0 ---- */

static int l_bufbox_gc(lua_State *L)
{
    rtmp_buf **b = luaL_checkudata(L, 1, BUFBOX_MT);
    rtmp_buf_unref(*b);
    *b = NULL;
    return 0;
}

/* rtmp.chunk_fmt0(chunk_size, msg) -> bytes */
static int l_chunk_fmt0(lua_State *L)
{
    lua_Integer cs = luaL_checkinteger(L, 1);
    luaL_argcheck(L, cs >= 1 && cs <= 0x7FFFFFFF, 1, "chunk size out of range 1..2^31-1");
    rtmp_msg_hdr h;
    const uint8_t *payload = read_msg(L, 2, &h, 1);
    /* the buffer lives in a collectable box until the string is made */
    rtmp_buf **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, BUFBOX_MT);
    int rc = rtmp_chunk_write_fmt0((uint32_t)cs, &h, payload, box);
    if (rc < 0)
        return rc == RTMP_ERR_NOMEM ? luaL_error(L, "not enough memory") : push_fail(L, rc);
    lua_pushlstring(L, (const char *)(*box)->data, (*box)->len);
    rtmp_buf_unref(*box);
    *box = NULL;
    return 1;
}

/* ---- registration ---- */

static const luaL_Reg reader_methods[] = {
    { "feed", l_reader_feed },
    { "set_chunk_size", l_reader_set_chunk_size },
    { "chunk_size", l_reader_chunk_size },
    { "buffered", l_reader_buffered },
    { "abort", l_reader_abort },
    { "close", l_reader_close },
    { NULL, NULL },
};

static const luaL_Reg reader_meta[] = {
    { "__index", NULL },
    { "__gc", l_reader_close },
    { "__close", l_reader_close },
    { "__tostring", l_reader_tostring },
    { NULL, NULL },
};

static const luaL_Reg writer_methods[] = {
    { "write", l_writer_write },
    { "note", l_writer_note },
    { "set_chunk_size", l_writer_set_chunk_size },
    { "chunk_size", l_writer_chunk_size },
    { "close", l_writer_close },
    { NULL, NULL },
};

static const luaL_Reg writer_meta[] = {
    { "__index", NULL },
    { "__gc", l_writer_close },
    { "__close", l_writer_close },
    { "__tostring", l_writer_tostring },
    { NULL, NULL },
};

/* One metatable with its method table as __index.  [-0, +0, m] */
static void createmeta(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void rtmp_l_open_chunk(lua_State *L)
{
    createmeta(L, READER_MT, reader_meta, reader_methods);
    createmeta(L, WRITER_MT, writer_meta, writer_methods);
    luaL_newmetatable(L, BUFBOX_MT);
    lua_pushcfunction(L, l_bufbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_reader_new);
    lua_setfield(L, -2, "reader");
    lua_pushcfunction(L, l_writer_new);
    lua_setfield(L, -2, "writer");
    lua_pushcfunction(L, l_chunk_fmt0);
    lua_setfield(L, -2, "chunk_fmt0");
}
