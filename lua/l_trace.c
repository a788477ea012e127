/*
 * l_trace.c: the per-connection message trace (conn:trace, the trace
 * setting, luartmp --trace, rtmp.trace_line).
 *
 * The session's observer (session.h) reports each message received and
 * each message queued; core/trace.c turns one into one line (docs/TRACE.md)
 * and this file appends it to a file (opened by path, shared by every
 * trace naming the same path, or a Lua file the script gives) or writes
 * it to the log.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "l_trace.h"
#include "l_msg.h"
#include "l_settings.h"
#include "../core/log.h"
#include "../core/session.h"
#include "../core/trace.h"

#define TRACEFILE_MT "rtmp.tracefile"
#define TRACEFILES_KEY "rtmp.tracefiles"

/* A file opened by path, shared by every trace that names the same path. */
typedef struct tracefile {
    FILE *f;
} tracefile;

struct rtmp_l_trace {
    lua_State   *L;
    tracefile   *own;     /* the file opened by path, or NULL */
    luaL_Stream *stream;  /* a Lua file given by the script, or NULL */
    int          fileref; /* registry ref keeping that file object alive */
    unsigned long id;
    char         peer[64];
};

/* ---- output ---- */

static FILE *trace_file(const rtmp_l_trace *tr)
{
    if (tr->own)
        return tr->own->f;
    if (tr->stream)
        return tr->stream->closef ? tr->stream->f : NULL; /* the script may have closed it */
    return NULL;
}

/* The session's observer: payload holds the message's first len bytes,
 * not always all h->length of them (session.h), as rtmp_trace_format
 * takes them. */
static void observe(void *ud, int dir, int fmt, const rtmp_msg_hdr *h, const uint8_t *payload, size_t len)
{
    rtmp_l_trace *tr = ud;
    char line[RTMP_TRACE_LINE_MAX + 1];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    size_t n = rtmp_trace_format(line, (long long)tv.tv_sec, (long)tv.tv_usec, tr->id, dir, fmt, h, payload, len);
    if (!tr->own && !tr->stream) {
        /* to the log, whatever its level: tracing was asked for */
        int level = rtmp_log_level;
        rtmp_log_level = RTMP_LOG_TRACE;
        /* the log's prefix has the time, and conn= peer= for a connection */
        const char *rest = strchr(line, ' ') + 1;
        if (tr->id)
            rest = strchr(rest, ' ') + 1;
        rtmp_log(RTMP_LOG_TRACE, tr->id, tr->peer, "%s", rest);
        rtmp_log_level = level;
        return;
    }
    FILE *f = trace_file(tr);
    if (!f)
        return;
    line[n++] = '\n';
    fwrite(line, 1, n, f);
    fflush(f);
}

static int tracefile_gc(lua_State *L)
{
    tracefile *tf = luaL_checkudata(L, 1, TRACEFILE_MT);
    if (tf->f)
        fclose(tf->f);
    tf->f = NULL;
    return 0;
}

/* [-0, +1, m] the shared file for path, opened for appending, or nil
 * and an error message (+2). */
static int open_path(lua_State *L, const char *path)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TRACEFILES_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, TRACEFILES_KEY);
    }
    if (lua_getfield(L, -1, path) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 1);
    tracefile *tf = lua_newuserdatauv(L, sizeof *tf, 0);
    tf->f = NULL;
    if (luaL_newmetatable(L, TRACEFILE_MT)) {
        lua_pushcfunction(L, tracefile_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    tf->f = fopen(path, "a");
    if (!tf->f) {
        lua_pop(L, 2);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open trace file %s", path);
        return 2;
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, path);
    lua_remove(L, -2);
    return 1;
}

void rtmp_l_trace_free(lua_State *L, rtmp_session *s, rtmp_l_trace **slot)
{
    rtmp_l_trace *tr = *slot;
    if (!tr)
        return;
    if (s)
        rtmp_session_set_observer(s, NULL, NULL);
    if (L && tr->fileref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, tr->fileref);
    free(tr);
    *slot = NULL;
}

int rtmp_l_trace_set(lua_State *L, int idx, rtmp_session *s, rtmp_l_trace **slot, unsigned long id,
                     const char *peer)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    luaL_Stream *stream = NULL;
    if (t == LUA_TUSERDATA) {
        stream = luaL_testudata(L, idx, LUA_FILEHANDLE);
        if (!stream)
            return luaL_typeerror(L, idx, "boolean, path or file");
        if (!stream->closef)
            return luaL_argerror(L, idx, "attempt to use a closed file");
    } else if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TSTRING) {
        return luaL_typeerror(L, idx, "boolean, path or file");
    }
    rtmp_l_trace_free(L, s, slot);
    if (t == LUA_TNONE || t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx)))
        return 0;
    tracefile *own = NULL;
    int ref = LUA_NOREF;
    if (t == LUA_TSTRING) {
        if (open_path(L, lua_tostring(L, idx)) == 2)
            return 2;
        own = lua_touserdata(L, -1);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (stream) {
        lua_pushvalue(L, idx);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    rtmp_l_trace *tr = calloc(1, sizeof *tr);
    if (!tr) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    tr->L = L;
    tr->own = own;
    tr->stream = stream;
    tr->fileref = ref;
    tr->id = id;
    snprintf(tr->peer, sizeof tr->peer, "%s", peer ? peer : "-");
    *slot = tr;
    rtmp_session_set_observer(s, observe, tr);
    return 0;
}

void rtmp_l_trace_settings(lua_State *L, int t, rtmp_session *s, rtmp_l_trace **slot, unsigned long id,
                           const char *peer)
{
    t = lua_absindex(L, t);
    if (!lua_istable(L, t) || lua_getfield(L, t, "trace") == LUA_TNIL) {
        if (lua_istable(L, t))
            lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY);
        if (lua_istable(L, -1))
            lua_getfield(L, -1, "trace");
        else
            lua_pushnil(L);
        lua_remove(L, -2);
    }
    int top = lua_gettop(L), vt = lua_type(L, top);
    if (vt != LUA_TNIL && vt != LUA_TBOOLEAN && vt != LUA_TSTRING && !luaL_testudata(L, top, LUA_FILEHANDLE)) {
        /* no error here: this runs where nothing catches one */
        rtmp_log(RTMP_LOG_WARN, id, peer, "trace: expected a boolean, path or file, got %s", luaL_typename(L, top));
    } else if (vt != LUA_TNIL && rtmp_l_trace_set(L, top, s, slot, id, peer) == 2) {
        rtmp_log(RTMP_LOG_WARN, id, peer, "trace: %s", lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_settop(L, top - 1);
}

int rtmp_l_trace_method(lua_State *L, rtmp_session *s, rtmp_l_trace **slot, unsigned long id,
                        const char *peer)
{
    lua_settop(L, 3);
    if (lua_toboolean(L, 2) && !lua_isnil(L, 3))
        lua_copy(L, 3, 2); /* where to: the path or file replaces true */
    if (rtmp_l_trace_set(L, 2, s, slot, id, peer) == 2)
        return 2;
    lua_pushboolean(L, 1);
    return 1;
}

/* rtmp.trace_line(msg [, { dir = "in"|"out", conn = id, time = seconds, fmt = n }])
 * -> the trace line for a message object, as a trace file would hold it
 * (no newline).  Defaults: dir "in", conn 0, time now, fmt msg.fmt. */
static int l_trace_line(lua_State *L)
{
    lmsg *m = check_msg(L, 1);
    int dir = RTMP_TRACE_IN, fmt = m->h.fmt;
    unsigned long id = 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "dir") != LUA_TNIL) {
            const char *d = luaL_checkstring(L, -1);
            if (!strcmp(d, "out"))
                dir = RTMP_TRACE_OUT;
            else if (strcmp(d, "in"))
                return luaL_error(L, "dir must be \"in\" or \"out\"");
        }
        if (lua_getfield(L, 2, "conn") != LUA_TNIL)
            id = (unsigned long)luaL_checkinteger(L, -1);
        if (lua_getfield(L, 2, "fmt") != LUA_TNIL)
            fmt = (int)luaL_checkinteger(L, -1);
        if (lua_getfield(L, 2, "time") != LUA_TNIL) {
            double t = luaL_checknumber(L, -1);
            luaL_argcheck(L, t >= 0 && t < 1e15, 2, "time out of range");
            double sec = floor(t);
            long usec = lround((t - sec) * 1e6);
            if (usec >= 1000000) {
                sec += 1;
                usec -= 1000000;
            }
            tv.tv_sec = (time_t)sec;
            tv.tv_usec = usec;
        }
        lua_pop(L, 4);
    }
    char line[RTMP_TRACE_LINE_MAX];
    size_t n = rtmp_trace_format(line, (long long)tv.tv_sec, (long)tv.tv_usec, id, dir, fmt, &m->h, m->data,
                                 m->len);
    lua_pushlstring(L, line, n);
    return 1;
}

void rtmp_l_open_trace(lua_State *L)
{
    lua_pushcfunction(L, l_trace_line);
    lua_setfield(L, -2, "trace_line");
}
