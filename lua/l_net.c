/*
 * l_net.c: servers, connections, the message object (its fields,
 * rtmp.message, sending), groups, timers and socket-free sessions.
 * Message bodies (decoding, aggregates, shared objects) are in l_msg.c.
 *
 * Network objects (servers, connections) are boxes pointing at C-owned
 * state; C clears the pointer when the object closes, and methods on a
 * closed object return nil, "closed".  Timers and groups are Lua-owned.
 * Every call from C into Lua runs under lua_pcall with a traceback; an
 * error closes only the connection it came from.
 */
#include <stdlib.h>
#include <string.h>

#include "l_rtmp.h"
#include "l_contain.h"
#include "l_msg.h"
#include "l_queue.h"
#include "../core/chunk.h"
#include "../core/control.h"
#include "../core/error.h"
#include "../core/log.h"
#include "../core/media.h"
#include "../core/net.h"

#define STATE_KEY "rtmp.state"
#define CONN_MT "rtmp.conn"
#define SERVER_MT "rtmp.server"
#define GROUP_MT "rtmp.group"
#define TIMER_MT "rtmp.timer"
#define SESSION_MT "rtmp.session"

/* Per Lua state: the loop, and the call into Lua now running (its
 * budgets: docs/CONTAIN.md, l_contain.h). */
typedef struct lstate {
    lua_State     *L;      /* main thread */
    rtmp_net      *net;
    int            depth;  /* protected calls in progress (> 1: on_close from a handler...) */
    lua_Integer    budget; /* instructions the outermost call may run; 0 = no limit */
    lua_Integer    used;   /* instructions it has run, counted by the hook */
    rtmp_l_memory *mem;    /* the allocator's accounting (luartmp --script-memory), or NULL */
} lstate;

/* What a script error in a connection's handler does (setting on_error). */
enum { ON_ERROR_CLOSE, ON_ERROR_DROP };

/* A connection as the binding sees it.  refs counts the box (until its
 * __gc), the open connection, and each group membership; freed at 0. */
typedef struct lconn {
    lstate        *st;
    rtmp_conn     *c;       /* NULL once closed */
    int            boxref;  /* registry ref keeping the box alive while open */
    int            refs;
    int            role;
    unsigned long  id;
    char           peer[64];
    rtmp_l_trace  *trace;   /* message trace (l_trace.c), NULL when off */
    rtmp_mediaq   *mq;      /* slow-reader policy state (l_queue.c), NULL until used */
    lua_Integer    instructions; /* script_instructions: budget per handler call, 0 = none */
    int            on_error; /* ON_ERROR_* */
} lconn;

typedef struct lserver {
    lstate        *st;
    rtmp_listener *l;       /* NULL once closed */
    int            handlers; /* registry ref to the handlers table */
    lua_Integer    instructions; /* its connections' script_instructions and on_error */
    int            on_error;
} lserver;

typedef struct lmember {
    lconn   *lc;
    uint32_t stream_id;
} lmember;

typedef struct lgroup {
    lmember *m;
    size_t   n, cap;
} lgroup;

typedef struct ltimer {
    lstate     *st;
    rtmp_timer *t;
    int         selfref;    /* registry ref to the box while active */
    double      repeat;
} ltimer;

static lstate *get_state(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    lstate *st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st;
}

/* ---- calling into Lua ---- */

static void contain_hook(lua_State *L, lua_Debug *ar);

void rtmp_l_contain_arm(lua_State *L)
{
    if (lua_gethook(L) == NULL)
        lua_sethook(L, contain_hook, LUA_MASKCOUNT, RTMP_L_HOOK_STEP);
}

/* The count hook: every RTMP_L_HOOK_STEP instructions of a thread that
 * has it (RTMP_L_HOOK_NEAR while a call runs with the state within a
 * quarter of its memory budget).  Outside calls from the loop it does
 * nothing.  Inside, it adds up the instructions and raises once the call
 * is over its instruction budget, or once the state is over its memory
 * budget after a full collection; from then on it checks at every
 * instruction, so a script's own pcall cannot swallow the error for long. */
static void contain_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lstate *st = get_state(L);
    int count = lua_gethookcount(L);
    if (st && st->depth > 0) {
        st->used += count;
        if (st->budget > 0 && st->used > st->budget) {
            lua_sethook(L, contain_hook, LUA_MASKCOUNT, 1);
            luaL_where(L, 0); /* in a hook, level 0 is the interrupted function */
            lua_pushfstring(L, "instruction budget exceeded (%I instructions)", (LUAI_UACINT)st->budget);
            lua_concat(L, 2);
            lua_error(L);
        }
        if (st->mem && st->mem->over) {
            lua_gc(L, LUA_GCCOLLECT);
            if (st->mem->used > st->mem->limit) {
                lua_sethook(L, contain_hook, LUA_MASKCOUNT, 1);
                luaL_where(L, 0);
                lua_pushfstring(L, "memory budget exceeded (%I bytes in use, budget %I)",
                                (LUAI_UACINT)st->mem->used, (LUAI_UACINT)st->mem->limit);
                lua_concat(L, 2);
                lua_error(L);
            }
            st->mem->over = 0;
        }
    }
    int step = RTMP_L_HOOK_STEP;
    if (st && st->depth > 0 && st->mem && st->mem->limit && st->mem->used > st->mem->limit - st->mem->limit / 4)
        step = RTMP_L_HOOK_NEAR;
    if (count != step)
        lua_sethook(L, contain_hook, LUA_MASKCOUNT, step);
}

/* [-0, +0, -] field k of rtmp.options as a non-negative integer (0 when
 * missing or not one): read when a call without a connection starts. */
static lua_Integer option_integer(lua_State *L, const char *k)
{
    lua_Integer v = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.options");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, k);
        lua_Number n = lua_tonumber(L, -1);
        if (n > 0)
            v = n < (lua_Number)LUA_MAXINTEGER ? (lua_Integer)n : LUA_MAXINTEGER;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

/* [-0, +0, -] rtmp.options.on_error as ON_ERROR_* (close when unset). */
static int option_on_error(lua_State *L)
{
    int mode = ON_ERROR_CLOSE;
    lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.options");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "on_error");
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (s && !strcmp(s, "drop"))
            mode = ON_ERROR_DROP;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return mode;
}

/* [-0, +0, e] the containment settings of the table at t (0: none) over
 * *instructions and *on_error: script_instructions = N (>= 0, 0 = no
 * limit), on_error = "close" | "drop". */
static void read_contain_fields(lua_State *L, int t, lua_Integer *instructions, int *on_error)
{
    if (!t)
        return;
    if (lua_getfield(L, t, "script_instructions") != LUA_TNIL) {
        int isnum;
        lua_Number n = lua_tonumberx(L, -1, &isnum);
        if (!isnum || !(n >= 0) || n > 1e15)
            luaL_error(L, "script_instructions must be a number of instructions >= 0 (0 = no limit)");
        *instructions = (lua_Integer)n;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "on_error") != LUA_TNIL) {
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        if (!strcmp(s, "close"))
            *on_error = ON_ERROR_CLOSE;
        else if (!strcmp(s, "drop"))
            *on_error = ON_ERROR_DROP;
        else
            luaL_error(L, "on_error must be \"close\" or \"drop\"");
    }
    lua_pop(L, 1);
}

/* [-0, +0, e] a server's or connection's containment settings: the table
 * at t over rtmp.options over the defaults (no instruction limit, close).
 * A budget arms the hook on this thread and on the main thread. */
static void read_contain(lua_State *L, int t, lua_Integer *instructions, int *on_error)
{
    *instructions = 0;
    *on_error = ON_ERROR_CLOSE;
    lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.options");
    if (lua_istable(L, -1))
        read_contain_fields(L, lua_gettop(L), instructions, on_error);
    lua_pop(L, 1);
    read_contain_fields(L, t, instructions, on_error);
    if (*instructions > 0) {
        rtmp_l_contain_arm(L);
        rtmp_l_contain_arm(get_state(L)->L);
    }
}

static int traceback(lua_State *L)
{
    /* the traceback itself must not fail for the memory budget */
    lstate *st = get_state(L);
    if (st && st->mem)
        st->mem->armed = 0;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL && !lua_isnoneornil(L, 1))
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Call the function below nargs arguments on top of the stack: every
 * call from the loop into Lua goes through here.  The outermost such call
 * runs under the budgets (lc's script_instructions, or rtmp.options' for
 * timers; the memory budget).  On error log it with the traceback and,
 * if lc is open and its on_error is "close", close it.  Returns 0, or -1
 * when it closed lc (without lc: on any error).  [-(nargs+1), +0, -] */
static int pcall_handler(lua_State *L, lconn *lc, int nargs, const char *what)
{
    lstate *st = lc ? lc->st : get_state(L);
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    if (st->depth++ == 0) {
        st->used = 0;
        st->budget = lc ? lc->instructions : option_integer(L, "script_instructions");
        if (st->mem)
            st->mem->over = 0;
        if (st->budget > 0 || (st->mem && st->mem->limit))
            rtmp_l_contain_arm(L);
    }
    if (st->mem)
        st->mem->armed = 1;
    int rc = lua_pcall(L, nargs, 0, base);
    st->depth--;
    if (rc == LUA_OK) {
        if (st->mem)
            st->mem->armed = st->depth > 0;
        lua_remove(L, base);
        return 0;
    }
    if (st->mem) /* nothing below may fail: not even inside an outer call */
        st->mem->armed = 0;
    int closed = 0;
    const char *err = lua_tostring(L, -1);
    if (!err)
        err = "(error object is not a string)";
    if (rc == LUA_ERRMEM && st->mem && st->mem->limit) {
        /* Lua calls no message handler for memory errors: no traceback */
        lua_pushfstring(L, "%s (the script memory budget is %I bytes; no traceback for a memory error)",
                        err, (LUAI_UACINT)st->mem->limit);
        lua_replace(L, -2);
        err = lua_tostring(L, -1);
    }
    if (lc && lc->c && lc->on_error == ON_ERROR_DROP) {
        rtmp_log(RTMP_LOG_ERROR, lc->id, lc->peer, "script error in %s (on_error = drop: connection kept): %s",
                 what, err);
    } else if (lc && lc->c) {
        closed = 1;
        rtmp_log(RTMP_LOG_ERROR, lc->id, lc->peer, "script error in %s: %s", what, err);
        /* The reason is the first line: the error itself, without the traceback. */
        char reason[200];
        size_t n = strcspn(err, "\n");
        snprintf(reason, sizeof reason, "script error: %.*s", (int)(n > 180 ? 180 : n), err);
        rtmp_conn_fail(lc->c, reason);
    } else {
        rtmp_log(RTMP_LOG_ERROR, lc ? lc->id : 0, lc ? lc->peer : NULL, "script error in %s: %s", what, err);
    }
    lua_pop(L, 2);
    if (st->mem)
        st->mem->armed = st->depth > 0;
    return closed || !lc ? -1 : 0;
}

/* ---- connections ---- */

static void lconn_release(lconn *lc)
{
    if (--lc->refs == 0) {
        rtmp_l_queue_free(&lc->mq);
        free(lc);
    }
}

/* [-0, +1, -] push the box of an open connection. */
static void push_box(lua_State *L, lconn *lc)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->boxref);
}

/* [-0, +1, -] push handler `name` of lc (from the box's handlers table), or nil. */
static int push_handler(lua_State *L, lconn *lc, const char *name)
{
    push_box(L, lc);
    lua_getiuservalue(L, -1, 2);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int t = lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return t;
}

/* [-0, +1, m] a new box for lc, with a fields table and the handlers
 * table at index handlers_idx (absolute). */
static void new_box(lua_State *L, lconn *lc, int handlers_idx)
{
    lconn **box = lua_newuserdatauv(L, sizeof *box, 2);
    *box = lc;
    luaL_setmetatable(L, CONN_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, handlers_idx);
    lua_setiuservalue(L, -2, 2);
    lua_pushvalue(L, -1);
    lc->boxref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static lconn *lconn_new(lstate *st, rtmp_conn *c, int role)
{
    lconn *lc = calloc(1, sizeof *lc);
    if (!lc)
        return NULL;
    lc->st = st;
    lc->c = c;
    lc->refs = 2; /* the box and the open connection */
    lc->role = role;
    lc->id = rtmp_conn_id(c);
    lc->boxref = LUA_NOREF;
    snprintf(lc->peer, sizeof lc->peer, "%s", rtmp_conn_peer(c));
    return lc;
}

static void h_open(rtmp_conn *c, void *ud)
{
    lserver *srv = ud; /* servers only: clients set their lconn at connect */
    lua_State *L = srv->st->L;
    lconn *lc = lconn_new(srv->st, c, RTMP_ROLE_SERVER);
    if (!lc) {
        rtmp_conn_close(c, "out of memory");
        return;
    }
    lc->instructions = srv->instructions;
    lc->on_error = srv->on_error;
    rtmp_conn_set_ud(c, lc);
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->handlers);
    new_box(L, lc, lua_gettop(L));
    rtmp_l_trace_settings(L, -2, rtmp_conn_session(c), &lc->trace, lc->id, lc->peer);
    lua_pop(L, 2);
    if (push_handler(L, lc, "on_open") == LUA_TFUNCTION) {
        push_box(L, lc);
        pcall_handler(L, lc, 1, "on_open");
    } else {
        lua_pop(L, 1);
    }
}

static int h_ready(rtmp_conn *c, void *ud)
{
    lconn *lc = ud;
    lua_State *L = lc->st->L;
    if (push_handler(L, lc, "on_handshake") == LUA_TFUNCTION) {
        push_box(L, lc);
        return pcall_handler(L, lc, 1, "on_handshake");
    }
    lua_pop(L, 1);
    return 0;
}

static void h_close(rtmp_conn *c, void *ud, const char *reason)
{
    lconn *lc = ud;
    if (!lc)
        return;
    lc->c = NULL; /* closed: methods now return nil, "closed" */
    lua_State *L = lc->st->L;
    rtmp_l_trace_free(L, rtmp_conn_session(c), &lc->trace);
    rtmp_l_queue_free(&lc->mq);
    if (!L) /* the Lua state is closing: no more calls into it */
        goto done;
    if (push_handler(L, lc, "on_close") == LUA_TFUNCTION) {
        push_box(L, lc);
        lua_pushstring(L, reason);
        pcall_handler(L, lc, 2, "on_close");
    } else {
        lua_pop(L, 1);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, lc->boxref);
done:
    lc->boxref = LUA_NOREF;
    lconn_release(lc);
}

/* Passthrough connections: the bytes just read go to on_data(conn, bytes). */
static void h_data(rtmp_conn *c, void *ud, const uint8_t *p, size_t len)
{
    lconn *lc = ud;
    lua_State *L = lc->st->L;
    if (push_handler(L, lc, "on_data") != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    push_box(L, lc);
    lua_pushlstring(L, (const char *)p, len);
    pcall_handler(L, lc, 2, "on_data");
}

/* ---- messages ---- */

static int msg_pushmsg(lua_State *L)
{
    const rtmp_msg_hdr *h = lua_touserdata(L, 1);
    const uint8_t *payload = lua_touserdata(L, 2);
    unsigned applied = (unsigned)lua_tointeger(L, 3);
    rtmp_l_push_msg(L, h, payload, applied, (int)lua_tointeger(L, 4));
    return 1;
}

static int h_message(rtmp_conn *c, void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    lconn *lc = ud;
    lua_State *L = lc->st->L;
    if (push_handler(L, lc, "on_message") != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return 0;
    }
    push_box(L, lc);
    /* Build the message under pcall: decoding allocates. */
    lua_pushcfunction(L, msg_pushmsg);
    lua_pushlightuserdata(L, (void *)h);
    lua_pushlightuserdata(L, (void *)payload);
    lua_pushinteger(L, applied);
    lua_pushinteger(L, rtmp_conn_get_config(c)->session.max_amf_depth);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        rtmp_log(RTMP_LOG_ERROR, lc->id, lc->peer, "message: %s", lua_tostring(L, -1));
        lua_pop(L, 3);
        rtmp_conn_fail(c, "out of memory");
        return RTMP_ERR_NOMEM;
    }
    return pcall_handler(L, lc, 2, "on_message");
}

/* ---- media fields: the media model (core/media.h), parsed on access ---- */

static int is_media_msg(const lmsg *m)
{
    return m->h.type == RTMP_MSG_AUDIO || m->h.type == RTMP_MSG_VIDEO;
}

/* [-0, +1, m] a codec's name; an unlisted FourCC as its 4 bytes; nil when none. */
static void push_codec(lua_State *L, uint8_t codec, uint32_t fourcc)
{
    const char *name = rtmp_media_codec_name(codec);
    if (name) {
        lua_pushstring(L, name);
    } else if (fourcc) {
        char b[4] = { (char)(fourcc >> 24), (char)(fourcc >> 16), (char)(fourcc >> 8), (char)fourcc };
        lua_pushlstring(L, b, 4);
    } else {
        lua_pushnil(L);
    }
}

/* [-0, +1, m] a packet kind's name, or nil. */
static void push_packet(lua_State *L, int packet)
{
    const char *name = rtmp_media_packet_name(packet);
    if (name)
        lua_pushstring(L, name);
    else
        lua_pushnil(L);
}

/* [-0, +1, m] { id, codec, packet, keyframe, sequence_header, size, cts } for track i. */
static void push_track(lua_State *L, const rtmp_media *md, unsigned i)
{
    const rtmp_media_track *t = &md->track[i];
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, t->id);
    lua_setfield(L, -2, "id");
    push_codec(L, t->codec, t->fourcc);
    lua_setfield(L, -2, "codec");
    push_packet(L, md->packet);
    lua_setfield(L, -2, "packet");
    lua_pushboolean(L, rtmp_media_is_keyframe(md));
    lua_setfield(L, -2, "keyframe");
    lua_pushboolean(L, rtmp_media_is_sequence_header(md));
    lua_setfield(L, -2, "sequence_header");
    lua_pushinteger(L, (lua_Integer)t->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, t->cts);
    lua_setfield(L, -2, "cts");
}

/* [-0, +(0|1), m] the media field k of an audio or video message; returns
 * the number of values pushed, or -1 when k is not a media field. */
static int media_field(lua_State *L, const lmsg *m, const char *k)
{
    static const char *const keys[] = { "keyframe", "sequence_header", "sequence_end", "codec",
                                        "codec_id", "packet", "tracks", "track", "command",
                                        "nano_offset", "multitrack", "decode_error", NULL };
    int which = 0;
    while (keys[which] && strcmp(keys[which], k))
        which++;
    if (!keys[which])
        return -1;
    rtmp_media md;
    int rc = rtmp_media_parse(&md, m->h.type, m->data, m->len);
    switch (which) {
    case 0: lua_pushboolean(L, rtmp_media_is_keyframe(&md)); return 1;
    case 1: lua_pushboolean(L, rtmp_media_is_sequence_header(&md)); return 1;
    case 2: lua_pushboolean(L, rtmp_media_is_sequence_end(&md)); return 1;
    case 3:
        if (md.codec == RTMP_MEDIA_CODEC_NONE && !md.fourcc)
            return 0;
        push_codec(L, md.codec, md.fourcc);
        return 1;
    case 4: /* the legacy codec id or sound format */
        if (md.enhanced || rc == RTMP_ERR_MEDIA_EMPTY)
            return 0;
        lua_pushinteger(L, md.legacy_id);
        return 1;
    case 5:
        push_packet(L, md.packet);
        return 1;
    case 6:
        lua_createtable(L, (int)md.ntracks, 0);
        for (unsigned i = 0; i < md.ntracks; i++) {
            push_track(L, &md, i);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    case 7:
        if (md.ntracks == 0)
            return 0;
        push_track(L, &md, 0);
        return 1;
    case 8:
        if (md.packet != RTMP_MEDIA_COMMAND)
            return 0;
        lua_pushinteger(L, md.command);
        return 1;
    case 9:
        if (!md.has_nano)
            return 0;
        lua_pushinteger(L, md.nano);
        return 1;
    case 10: {
        const char *name = rtmp_media_multitrack_name(md.multitrack);
        if (!name)
            return 0;
        lua_pushstring(L, name);
        return 1;
    }
    default: /* decode_error */
        if (rc >= 0)
            return 0;
        lua_pushstring(L, rtmp_strerror(rc));
        return 1;
    }
}

static int msg_index(lua_State *L)
{
    lmsg *m = check_msg(L, 1);
    const char *k = lua_tostring(L, 2);
    if (k) {
        if (!strcmp(k, "type")) { lua_pushinteger(L, m->h.type); return 1; }
        if (!strcmp(k, "type_name")) { lua_pushstring(L, rtmp_msg_type_name(m->h.type)); return 1; }
        if (!strcmp(k, "csid")) { lua_pushinteger(L, m->h.csid); return 1; }
        if (!strcmp(k, "fmt")) { lua_pushinteger(L, m->h.fmt); return 1; }
        if (!strcmp(k, "stream")) { lua_pushinteger(L, m->h.stream_id); return 1; }
        if (!strcmp(k, "timestamp")) { lua_pushinteger(L, m->h.timestamp); return 1; }
        if (!strcmp(k, "length")) { lua_pushinteger(L, m->h.length); return 1; }
        if (!strcmp(k, "payload")) {
            lua_pushlstring(L, (const char *)m->data, m->len);
            return 1;
        }
        if (!strcmp(k, "applied")) {
            if (!m->applied)
                return 0;
            lua_newtable(L);
            for (unsigned bit = 1; bit <= RTMP_AUTO_ALL; bit <<= 1)
                if (m->applied & bit) {
                    lua_pushboolean(L, 1);
                    lua_setfield(L, -2, rtmp_auto_name(bit));
                }
            return 1;
        }
        if (is_media_msg(m)) {
            int n = media_field(L, m, k);
            if (n >= 0)
                return n;
        } else if (!strcmp(k, "keyframe") || !strcmp(k, "sequence_header")) {
            lua_pushboolean(L, 0);
            return 1;
        }
        if (!strcmp(k, "split")) {
            lua_pushcfunction(L, rtmp_l_msg_split);
            return 1;
        }
    }
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
        return 0;
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
}

static int msg_newindex(lua_State *L)
{
    check_msg(L, 1);
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 1);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_settable(L, -3);
    return 0;
}

static int msg_tostring(lua_State *L)
{
    lmsg *m = check_msg(L, 1);
    lua_pushfstring(L, "rtmp.msg(%s csid=%d stream=%d ts=%d len=%d)", rtmp_msg_type_name(m->h.type),
                    (int)m->h.csid, (int)m->h.stream_id, (int)m->h.timestamp, (int)m->h.length);
    return 1;
}

/* rtmp.message{ type=, csid=, stream=, timestamp= } (payload) -> msg:
 * build a message to send or forward (tests, tools, caches). */
static int l_message(lua_State *L);

/* ---- sending ---- */

static lconn *check_lconn(lua_State *L, int idx)
{
    lconn **box = luaL_checkudata(L, idx, CONN_MT);
    if (!*box)
        luaL_argerror(L, idx, "connection object already finalized");
    return *box;
}

/* Returns the open conn, or pushes nil, "closed" and returns NULL. */
static rtmp_conn *open_conn(lua_State *L, lconn *lc)
{
    if (lc && lc->c && !rtmp_conn_closing(lc->c))
        return lc->c;
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return NULL;
}

/* A Lua-owned session with no socket (rtmp.session): the same sending
 * methods as a connection, plus feed and output. */
typedef struct lsession {
    rtmp_session *s;
    lua_State    *L;      /* during feed: where messages go */
    int           out;    /* during feed: stack index of the message array */
    int           max_amf_depth;
    rtmp_l_trace *trace;  /* message trace (l_trace.c), NULL when off */
} lsession;

/* The session behind a connection or a session object at idx; for a
 * connection also *cp.  Pushes nil, "closed" and returns NULL when the
 * connection is closed. */
static rtmp_session *target(lua_State *L, int idx, rtmp_conn **cp)
{
    lsession *ls = luaL_testudata(L, idx, SESSION_MT);
    *cp = NULL;
    if (ls) {
        if (!ls->s) {
            lua_pushnil(L);
            lua_pushliteral(L, "closed");
        }
        return ls->s;
    }
    rtmp_conn *c = open_conn(L, check_lconn(L, idx));
    *cp = c;
    return c ? rtmp_conn_session(c) : NULL;
}

/* After queuing: tell the loop (connections only); results for Lua. */
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

static int type_from_value(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        for (int t = 1; t < 32; t++)
            if (strcmp(rtmp_msg_type_name((unsigned)t), name) == 0)
                return t;
        return luaL_error(L, "unknown message type '%s'", name);
    }
    lua_Integer t = luaL_checkinteger(L, idx);
    if (t < 0 || t > 255)
        return luaL_error(L, "message type %d out of range", (int)t);
    return (int)t;
}

static uint32_t opt_field_u32(lua_State *L, int t, const char *k, uint32_t def)
{
    uint32_t v = def;
    if (t && lua_getfield(L, t, k) != LUA_TNIL) {
        lua_Integer i = luaL_checkinteger(L, -1);
        if (i < 0 || i > 0xFFFFFFFFLL)
            luaL_error(L, "field '%s' out of range", k);
        v = (uint32_t)i;
    }
    if (t)
        lua_pop(L, 1);
    return v;
}

static int default_csid(uint8_t type)
{
    switch (type) {
    case RTMP_MSG_SET_CHUNK_SIZE: case RTMP_MSG_ABORT: case RTMP_MSG_ACK:
    case RTMP_MSG_USER_CONTROL: case RTMP_MSG_WINDOW_ACK_SIZE: case RTMP_MSG_SET_PEER_BANDWIDTH:
        return 2;
    case RTMP_MSG_AUDIO: return 6;
    case RTMP_MSG_VIDEO: case RTMP_MSG_AGGREGATE: return 7;
    case RTMP_MSG_AMF0_DATA: case RTMP_MSG_AMF3_DATA: return 5;
    default: return 3;
    }
}

/* Fill h from the optional header table at index t (0 = none) over defaults. */
static void read_hdr(lua_State *L, int t, rtmp_msg_hdr *h)
{
    if (t && !lua_istable(L, t))
        luaL_typeerror(L, t, "table or nil");
    if (t && lua_getfield(L, t, "type") != LUA_TNIL)
        h->type = (uint8_t)type_from_value(L, lua_gettop(L));
    if (t)
        lua_pop(L, 1);
    h->csid = opt_field_u32(L, t, "csid", h->csid ? h->csid : (uint32_t)default_csid(h->type));
    h->stream_id = opt_field_u32(L, t, "stream", h->stream_id);
    h->timestamp = opt_field_u32(L, t, "timestamp", h->timestamp);
    uint32_t fmt = opt_field_u32(L, t, "fmt", RTMP_FMT_AUTO);
    if (h->csid < RTMP_MIN_CSID || h->csid > RTMP_MAX_CSID)
        luaL_error(L, "csid %d out of range 2..65599", (int)h->csid);
    if (fmt != RTMP_FMT_AUTO && fmt > 3)
        luaL_error(L, "fmt %d out of range 0..3", (int)fmt);
    h->fmt = (uint8_t)fmt;
}

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
    read_hdr(L, t, &h);
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
    read_hdr(L, t, &h);
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
        rtmp_buf **slot = lua_newuserdatauv(L, sizeof *slot, 0);
        *slot = NULL;
        luaL_setmetatable(L, BUFSLOT_MT);
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

/* conn:pause_reading(on): stop (true) or resume (false) reading from the
 * socket, as a peer that stopped reading would. */
static int conn_pause_reading(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    int on = lua_toboolean(L, 2);
    rtmp_conn *c = open_conn(L, lc);
    if (!c)
        return 2;
    rtmp_conn_pause_reading(c, on);
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_close(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    const char *reason = luaL_optstring(L, 2, "closed by script");
    rtmp_conn *c = open_conn(L, lc);
    if (!c)
        return 2;
    rtmp_conn_close(c, reason);
    lua_pushboolean(L, 1);
    return 1;
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

/* conn:trace(on [, path | file]) -> true | nil, err: switch the message
 * trace (l_trace.c) of a connection or socket-free session. */
static int conn_trace(lua_State *L)
{
    rtmp_conn *c;
    rtmp_session *s = target(L, 1, &c);
    if (!s)
        return 2;
    lsession *ls = luaL_testudata(L, 1, SESSION_MT);
    lconn *lc = ls ? NULL : check_lconn(L, 1);
    lua_settop(L, 3);
    if (lua_toboolean(L, 2) && !lua_isnil(L, 3))
        lua_copy(L, 3, 2); /* where to: the path or file replaces true */
    if (rtmp_l_trace_set(L, 2, s, ls ? &ls->trace : &lc->trace, lc ? lc->id : 0, lc ? lc->peer : NULL) == 2)
        return 2;
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_log(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    int level = rtmp_log_parse_level(luaL_checkstring(L, 2));
    if (level < 0)
        return luaL_argerror(L, 2, "expected error, warn, info, debug or trace");
    if (!rtmp_log_enabled(level))
        return 0;
    rtmp_l_format(L, 3);
    rtmp_log(level, lc->id, lc->peer, "%s", lua_tostring(L, -1));
    return 0;
}

/* Sending and the automatic behaviours: connections and socket-free
 * sessions share these (see target()). */
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
    { "option", rtmp_l_conn_option },
    { "abort", rtmp_l_conn_abort },
    { "begin", rtmp_l_conn_begin },
    { "send_chunks", rtmp_l_conn_send_chunks },
    { "trace", conn_trace },
    { NULL, NULL },
};

/* For the other parts of the binding (declared in l_rtmp.h). */
rtmp_session *rtmp_l_target(lua_State *L, int idx, rtmp_conn **cp) { return target(L, idx, cp); }
int rtmp_l_sent(lua_State *L, rtmp_conn *c, int rc) { return sent(L, c, rc); }
void rtmp_l_read_hdr(lua_State *L, int t, rtmp_msg_hdr *h) { read_hdr(L, t, h); }
uint32_t rtmp_l_opt_field_u32(lua_State *L, int t, const char *k, uint32_t def) { return opt_field_u32(L, t, k, def); }

/* conn:queue([settings]) -> the slow-reader policy's settings and state (l_queue.c). */
static int conn_queue(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    return rtmp_l_queue_method(L, 2, &lc->mq, lc->c && !rtmp_conn_closing(lc->c) ? lc->c : NULL);
}

static const luaL_Reg conn_methods[] = {
    { "close", conn_close },
    { "log", conn_log },
    { "queue", conn_queue },
    { "pause_reading", conn_pause_reading },
    { NULL, NULL },
};

/* [-0, +(0|1), -] push the session state field k (the same for a
 * connection and a socket-free session); returns 1, or 0 when k is not
 * one (or has no value, like a missing limit type). */
static int push_session_field(lua_State *L, rtmp_session *s, const char *k)
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

static int conn_index(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    const char *k = lua_tostring(L, 2);
    if (k) {
        if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
            return 1; /* a method */
        lua_pop(L, 1);
        if (!strcmp(k, "id")) { lua_pushinteger(L, (lua_Integer)lc->id); return 1; }
        if (!strcmp(k, "peer")) { lua_pushstring(L, lc->peer); return 1; }
        if (!strcmp(k, "role")) { lua_pushstring(L, lc->role == RTMP_ROLE_CLIENT ? "client" : "server"); return 1; }
        if (!strcmp(k, "closed")) { lua_pushboolean(L, !lc->c || rtmp_conn_closing(lc->c)); return 1; }
        if (!strcmp(k, "lingering")) {
            lua_pushboolean(L, !lc->c && rtmp_net_lingering(lc->st->net, lc->id));
            return 1;
        }
        if (!strcmp(k, "on_error")) { lua_pushstring(L, lc->on_error == ON_ERROR_DROP ? "drop" : "close"); return 1; }
        if (!strcmp(k, "script_instructions")) { lua_pushinteger(L, lc->instructions); return 1; }
        if (lc->c) {
            /* bytes as the socket saw them; the rest from the session */
            if (!strcmp(k, "bytes_in")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_bytes_in(lc->c)); return 1; }
            if (!strcmp(k, "bytes_out")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_bytes_written(lc->c)); return 1; }
            if (!strcmp(k, "pending")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_pending(lc->c)); return 1; }
            if (!strcmp(k, "local_addr")) {
                char a[80];
                rtmp_conn_local(lc->c, a, sizeof a);
                lua_pushstring(L, a);
                return 1;
            }
            /* heap bytes the C side holds for the connection, and those in partial messages */
            if (!strcmp(k, "memory")) { lua_pushinteger(L, (lua_Integer)rtmp_conn_memory(lc->c)); return 1; }
            if (!strcmp(k, "buffered")) {
                lua_pushinteger(L, (lua_Integer)rtmp_reader_buffered(rtmp_session_reader(rtmp_conn_session(lc->c))));
                return 1;
            }
            if (push_session_field(L, rtmp_conn_session(lc->c), k))
                return 1;
        }
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
}

static int conn_newindex(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (k && (!strcmp(k, "on_error") || !strcmp(k, "script_instructions"))) {
        /* containment settings of this connection (read_contain_fields) */
        lua_settop(L, 3);
        lua_newtable(L);
        lua_pushvalue(L, 3);
        lua_setfield(L, -2, k);
        read_contain_fields(L, 4, &lc->instructions, &lc->on_error);
        if (lc->instructions > 0) {
            rtmp_l_contain_arm(L);
            rtmp_l_contain_arm(lc->st->L);
        }
        return 0;
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_settable(L, -3);
    return 0;
}

static int conn_gc(lua_State *L)
{
    lconn **box = luaL_checkudata(L, 1, CONN_MT);
    if (*box) {
        lconn_release(*box);
        *box = NULL;
    }
    return 0;
}

static int conn_eq(lua_State *L)
{
    lconn **a = luaL_testudata(L, 1, CONN_MT), **b = luaL_testudata(L, 2, CONN_MT);
    lua_pushboolean(L, a && b && *a == *b);
    return 1;
}

static int conn_tostring(lua_State *L)
{
    lconn *lc = check_lconn(L, 1);
    lua_pushfstring(L, "rtmp.conn(%d %s%s)", (int)lc->id, lc->peer, lc->c ? "" : " closed");
    return 1;
}

/* ---- configuration from Lua tables ---- */

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    double v = def;
    if (lua_getfield(L, t, k) != LUA_TNIL)
        v = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Read connection settings from table t (missing fields: rtmp.options,
 * then built-in defaults). */
static void read_conn_config(lua_State *L, int t, rtmp_conn_config *cfg, int role)
{
    rtmp_conn_config_default(cfg, role);
    /* rtmp.options (set by the luartmp command line) come first, t overrides */
    int opts = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.options");
    if (lua_istable(L, -1))
        opts = lua_gettop(L);
    for (int pass = 0; pass < 2; pass++) {
        int src = pass == 0 ? opts : t;
        if (!src)
            continue;
        cfg->handshake_timeout = opt_number(L, src, "handshake_timeout", cfg->handshake_timeout);
        cfg->idle_timeout = opt_number(L, src, "idle_timeout", cfg->idle_timeout);
        cfg->connect_timeout = opt_number(L, src, "connect_timeout", cfg->connect_timeout);
        double mpa = opt_number(L, src, "max_per_address", cfg->max_per_address);
        if (mpa < 0 || mpa > 1e9 || mpa != (double)(unsigned)mpa)
            luaL_error(L, "max_per_address must be a whole number >= 0");
        cfg->max_per_address = (unsigned)mpa;
        cfg->max_output = (size_t)opt_number(L, src, "max_output", (double)cfg->max_output);
        cfg->merge_window = opt_number(L, src, "merge_window", cfg->merge_window);
        cfg->linger = opt_number(L, src, "linger", cfg->linger);
        if (!(cfg->linger >= 0))
            luaL_error(L, "linger must be a number of seconds >= 0");
        cfg->max_queue_bytes = (size_t)opt_number(L, src, "max_queue_bytes", (double)cfg->max_queue_bytes);
        cfg->max_queue_time = opt_number(L, src, "max_queue_time", cfg->max_queue_time);
        cfg->max_queue_stall = opt_number(L, src, "max_queue_stall", cfg->max_queue_stall);
        cfg->send_buffer = (size_t)opt_number(L, src, "send_buffer", (double)cfg->send_buffer);
        cfg->recv_buffer = (size_t)opt_number(L, src, "recv_buffer", (double)cfg->recv_buffer);
        rtmp_reader_config *r = &cfg->session.reader;
        r->max_message = (uint32_t)opt_number(L, src, "max_message", r->max_message);
        r->max_amf_message = (uint32_t)opt_number(L, src, "max_amf_message", r->max_amf_message);
        r->max_chunk_streams = (uint32_t)opt_number(L, src, "max_chunk_streams", r->max_chunk_streams);
        r->min_chunk_size = (uint32_t)opt_number(L, src, "min_chunk_size", r->min_chunk_size);
        r->max_chunk_size = (uint32_t)opt_number(L, src, "max_chunk_size", r->max_chunk_size);
        cfg->session.ack_window = (uint32_t)opt_number(L, src, "ack_window", cfg->session.ack_window);
        cfg->session.max_amf_depth = (int)opt_number(L, src, "max_amf_depth", cfg->session.max_amf_depth);
        if (cfg->session.max_amf_depth < 1 || cfg->session.max_amf_depth > RTMP_AMF0_MAX_DEPTH)
            luaL_error(L, "max_amf_depth out of range 1..%d", RTMP_AMF0_MAX_DEPTH);
        cfg->session.bytes_in_start = (uint64_t)opt_number(L, src, "bytes_in_start", (double)cfg->session.bytes_in_start);
        if (lua_getfield(L, src, "ext_ts_fmt3") == LUA_TSTRING) {
            static const char *const modes[] = { "detect", "spec", "never", NULL };
            r->ext_ts_fmt3 = luaL_checkoption(L, -1, NULL, modes);
        }
        lua_pop(L, 1);
        if (lua_getfield(L, src, "accept_fresh_fmt") != LUA_TNIL)
            r->accept_fresh_fmt = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (lua_getfield(L, src, "passthrough") != LUA_TNIL)
            cfg->passthrough = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (lua_getfield(L, src, "plain_handshake") != LUA_TNIL)
            cfg->session.hs_flags = lua_toboolean(L, -1) ? RTMP_HS_FLAG_PLAIN : 0;
        lua_pop(L, 1);
        /* handshake_seed = N: fixed handshake filler bytes (deterministic replay) */
        if (lua_getfield(L, src, "handshake_seed") != LUA_TNIL) {
            cfg->session.hs_seeded = 1;
            cfg->session.hs_seed = (uint64_t)luaL_checkinteger(L, -1);
        }
        lua_pop(L, 1);
        /* auto = { ack = false, ping = false, ... } */
        if (lua_getfield(L, src, "auto") == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
                unsigned bit = rtmp_auto_bit(name);
                if (!bit)
                    luaL_error(L, "unknown automatic behaviour '%s'", name);
                if (lua_toboolean(L, -1))
                    cfg->session.autos |= bit;
                else
                    cfg->session.autos &= ~bit;
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* ---- servers ---- */

static const rtmp_conn_handler server_handler = { h_open, h_ready, h_message, h_close, h_data };

/* rtmp.listen{ listen = "ADDR" | {"ADDR", ...}, on_open, on_handshake,
 *              on_message, on_close, <settings> } -> server | nil, err */
static int l_listen(lua_State *L)
{
    lstate *st = get_state(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    rtmp_conn_config cfg;
    read_conn_config(L, 1, &cfg, RTMP_ROLE_SERVER);
    lua_Integer instructions;
    int on_error;
    read_contain(L, 1, &instructions, &on_error);

    /* collect addresses: opts.listen, else rtmp.options.listen, else "1935" */
    lua_getfield(L, 1, "listen");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, "rtmp.options");
        lua_getfield(L, -1, "listen");
        lua_remove(L, -2);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "1935");
    }
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    }
    int addrs = lua_gettop(L);

    lserver *srv = lua_newuserdatauv(L, sizeof *srv, 1);
    srv->st = st;
    srv->l = NULL;
    srv->handlers = LUA_NOREF;
    srv->instructions = instructions;
    srv->on_error = on_error;
    luaL_setmetatable(L, SERVER_MT);
    lua_pushvalue(L, 1);
    srv->handlers = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_Integer n = luaL_len(L, addrs);
    if (n != 1)
        return luaL_error(L, "one listen address per rtmp.listen call (got %d)", (int)n);
    lua_geti(L, addrs, 1);
    const char *addr = luaL_checkstring(L, -1);
    char err[300];
    srv->l = rtmp_net_listen(st->net, addr, &cfg, &server_handler, srv, err, sizeof err);
    lua_pop(L, 1);
    if (!srv->l) {
        luaL_unref(L, LUA_REGISTRYINDEX, srv->handlers);
        srv->handlers = LUA_NOREF;
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    /* keep the server reachable while it listens */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    return 1;
}

static int server_close(lua_State *L)
{
    lserver *srv = luaL_checkudata(L, 1, SERVER_MT);
    if (srv->l) {
        rtmp_listener_close(srv->l);
        srv->l = NULL;
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    }
    /* the handlers stay referenced while connections may use them; they
     * hold their own reference through their boxes */
    if (srv->handlers != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, srv->handlers);
        srv->handlers = LUA_NOREF;
    }
    return 0;
}

static int server_index(lua_State *L)
{
    lserver *srv = luaL_checkudata(L, 1, SERVER_MT);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "port")) {
        if (!srv->l)
            return 0;
        lua_pushinteger(L, rtmp_listener_port(srv->l));
        return 1;
    }
    if (!strcmp(k, "close")) {
        lua_pushcfunction(L, server_close);
        return 1;
    }
    return 0;
}

/* ---- clients ---- */

static const rtmp_conn_handler client_handler = { NULL, h_ready, h_message, h_close, h_data };

/* rtmp.parse_url("rtmp://host[:port]/app[/instance...]") ->
 *   { host=, port=, app=, path=, tc_url= } or nil, err.
 * app is the first path segment; path is the rest (the stream name when
 * there are two segments: FFmpeg's convention). */
static int l_parse_url(lua_State *L)
{
    size_t len;
    const char *url = luaL_checklstring(L, 1, &len);
    if (strncmp(url, "rtmp://", 7) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "not an rtmp:// URL: %s", url);
        return 2;
    }
    const char *host = url + 7, *slash = strchr(host, '/');
    const char *hend = slash ? slash : url + len;
    const char *port = NULL;
    const char *hstart = host, *hstop = hend;
    if (*host == '[') {
        const char *rb = memchr(host, ']', (size_t)(hend - host));
        if (!rb) {
            lua_pushnil(L);
            lua_pushliteral(L, "bad IPv6 host in URL");
            return 2;
        }
        hstart = host + 1;
        hstop = rb;
        if (rb + 1 < hend && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(host, ':', (size_t)(hend - host));
        if (colon) {
            hstop = colon;
            port = colon + 1;
        }
    }
    if (hstop == hstart) {
        lua_pushnil(L);
        lua_pushliteral(L, "no host in URL");
        return 2;
    }
    lua_newtable(L);
    lua_pushlstring(L, hstart, (size_t)(hstop - hstart));
    lua_setfield(L, -2, "host");
    if (port)
        lua_pushlstring(L, port, (size_t)(hend - port));
    else
        lua_pushliteral(L, "1935");
    lua_setfield(L, -2, "port");
    const char *path = slash ? slash + 1 : url + len; /* no path: the empty end of url */
    const char *seg = strchr(path, '/');
    const char *q = strchr(path, '?');
    if (q && (!seg || q < seg))
        seg = NULL; /* app?query: the query belongs to the app */
    lua_pushlstring(L, path, seg ? (size_t)(seg - path) : strlen(path));
    lua_setfield(L, -2, "app");
    lua_pushstring(L, seg ? seg + 1 : "");
    lua_setfield(L, -2, "path");
    /* tcUrl: scheme, authority and app */
    size_t tclen = (size_t)((seg ? seg : path + strlen(path)) - url);
    lua_pushlstring(L, url, tclen);
    lua_setfield(L, -2, "tc_url");
    return 1;
}

static int call_client_done(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* [-n, +r, e] call require("rtmp.client")[fname] with this function's
 * arguments; its results are ours (the coroutine client API, in Lua).
 * The callee may yield: the continuation hands its results back. */
static int call_client(lua_State *L, const char *fname)
{
    int n = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rtmp.client");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, fname);
    lua_remove(L, -2);
    lua_insert(L, 1);
    lua_callk(L, n, LUA_MULTRET, 0, call_client_done);
    return lua_gettop(L);
}

/* Whether the table at idx has a handler function (callback mode). */
static int has_handlers(lua_State *L, int idx)
{
    static const char *const names[] = { "on_open", "on_handshake", "on_message", "on_close", "on_data" };
    int found = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++) {
        found = lua_getfield(L, idx, names[i]) == LUA_TFUNCTION;
        lua_pop(L, 1);
    }
    return found;
}

/* rtmp.connect(url, handlers) -> conn | nil, err.  The handshake runs in
 * the loop; handlers.on_handshake(conn) follows, then on_message for
 * every message, and on_close(conn, reason) at the end.  Without handler
 * functions (no table, or settings only): rtmp.client.connect, the
 * coroutine API, which waits for the connect _result. */
static int l_connect(lua_State *L)
{
    lstate *st = get_state(L);
    luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2) || (lua_istable(L, 2) && !has_handlers(L, 2)))
        return call_client(L, "connect");
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushcfunction(L, l_parse_url);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2))
        return 2;
    lua_pop(L, 1);
    int u = lua_gettop(L);
    lua_getfield(L, u, "host");
    lua_getfield(L, u, "port");
    rtmp_conn_config cfg;
    read_conn_config(L, 2, &cfg, RTMP_ROLE_CLIENT);
    lua_Integer instructions;
    int on_error;
    read_contain(L, 2, &instructions, &on_error);
    char err[300];
    rtmp_conn *c = rtmp_net_connect(st->net, lua_tostring(L, -2), lua_tostring(L, -1), &cfg, &client_handler,
                                    NULL, err, sizeof err);
    if (!c) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lconn *lc = lconn_new(st, c, RTMP_ROLE_CLIENT);
    if (!lc) {
        rtmp_conn_close(c, "out of memory");
        return luaL_error(L, "out of memory");
    }
    lc->instructions = instructions;
    lc->on_error = on_error;
    rtmp_conn_set_ud(c, lc);
    new_box(L, lc, 2);
    rtmp_l_trace_settings(L, 2, rtmp_conn_session(c), &lc->trace, lc->id, lc->peer);
    /* remember the URL parts in the connection's fields */
    lua_getiuservalue(L, -1, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "url");
    lua_getfield(L, u, "app");
    lua_setfield(L, -2, "app");
    lua_getfield(L, u, "path");
    lua_setfield(L, -2, "path");
    lua_getfield(L, u, "tc_url");
    lua_setfield(L, -2, "tc_url");
    lua_pop(L, 1);
    return 1;
}

/* rtmp.spawn(fn, ...) -> coroutine; rtmp.sleep(seconds): in rtmp.client. */
static int l_spawn(lua_State *L) { return call_client(L, "spawn"); }
static int l_sleep(lua_State *L) { return call_client(L, "sleep"); }

/* ---- messages built by scripts ---- */

static int l_message(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t len = 0;
    const char *p = luaL_optlstring(L, 2, "", &len);
    rtmp_msg_hdr h = { 0 };
    lua_getfield(L, 1, "type");
    if (lua_isnil(L, -1))
        return luaL_argerror(L, 1, "message needs a type");
    lua_pop(L, 1);
    read_hdr(L, 1, &h);
    if (len > 0xFFFFFF)
        return luaL_argerror(L, 2, "payload longer than 16777215 bytes");
    h.length = (uint32_t)len;
    rtmp_l_push_msg(L, &h, (const uint8_t *)p, 0, RTMP_DEFAULT_AMF_DEPTH);
    return 1;
}

/* ---- groups: fan-out without copying per member ---- */

static lgroup *check_group(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, GROUP_MT);
}

static int l_group(lua_State *L)
{
    lgroup *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    luaL_setmetatable(L, GROUP_MT);
    return 1;
}

static void group_drop(lgroup *g, size_t i)
{
    lconn_release(g->m[i].lc);
    g->m[i] = g->m[--g->n];
}

/* Remove members whose connection has closed. */
static void group_prune(lgroup *g)
{
    for (size_t i = 0; i < g->n;)
        if (!g->m[i].lc->c)
            group_drop(g, i);
        else
            i++;
}

/* g:add(conn, stream_id): (re)join with the message stream id media goes out on. */
static int group_add(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lconn *lc = check_lconn(L, 2);
    uint32_t sid = (uint32_t)luaL_optinteger(L, 3, 1);
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].lc == lc) {
            g->m[i].stream_id = sid;
            lua_pushboolean(L, 1);
            return 1;
        }
    if (!lc->c) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        lmember *m = realloc(g->m, cap * sizeof *m);
        if (!m)
            return luaL_error(L, "out of memory");
        g->m = m;
        g->cap = cap;
    }
    g->m[g->n].lc = lc;
    g->m[g->n].stream_id = sid;
    g->n++;
    lc->refs++;
    lua_pushboolean(L, 1);
    return 1;
}

static int group_remove(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lconn *lc = check_lconn(L, 2);
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].lc == lc) {
            group_drop(g, i);
            lua_pushboolean(L, 1);
            return 1;
        }
    lua_pushboolean(L, 0);
    return 1;
}

static int group_has(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lconn *lc = check_lconn(L, 2);
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].lc == lc) {
            lua_pushboolean(L, lc->c != NULL);
            return 1;
        }
    lua_pushboolean(L, 0);
    return 1;
}

static int group_len(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    group_prune(g);
    lua_pushinteger(L, (lua_Integer)g->n);
    return 1;
}

/* g:members() -> array of the open connections. */
static int group_members(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    group_prune(g);
    lua_createtable(L, (int)g->n, 0);
    for (size_t i = 0; i < g->n; i++) {
        push_box(L, g->m[i].lc);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int group_clear(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    while (g->n)
        group_drop(g, g->n - 1);
    return 0;
}

#define GROUP_CACHE 8

/* g:send(msg [, hdr]) -> members reached.  The message is chunked once
 * per distinct (outgoing chunk size, stream id) among the members, with a
 * fmt 0 first chunk, and the same bytes are queued to each of them,
 * except to members whose slow-reader policy drops it (l_queue.c). */
static int group_send(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    lmsg *m = check_msg(L, 2);
    rtmp_msg_hdr h = m->h;
    h.csid = 0;
    read_hdr(L, lua_isnoneornil(L, 3) ? 0 : 3, &h);
    h.fmt = RTMP_FMT_AUTO;
    h.length = (uint32_t)m->len;

    struct { uint32_t chunk_size, stream_id; rtmp_buf *buf; } cache[GROUP_CACHE];
    int ncache = 0, reached = 0;
    int cls = rtmp_mediaq_class(h.type, m->data, m->len); /* for the slow-reader policy */
    double now = -1;
    for (size_t i = 0; i < g->n;) {
        lconn *lc = g->m[i].lc;
        if (!lc->c) {
            group_drop(g, i);
            continue;
        }
        i++;
        rtmp_session *s = rtmp_conn_session(lc->c);
        if (rtmp_conn_closing(lc->c) || !rtmp_session_ready(s))
            continue;
        h.stream_id = g->m[i - 1].stream_id;
        if (now < 0)
            now = rtmp_net_now(lc->st->net);
        if (rtmp_l_queue_offer(&lc->mq, lc->c, &h, cls, now) <= 0)
            continue; /* dropped, or closed as a stalled reader */
        uint32_t cs = rtmp_writer_chunk_size(rtmp_session_writer(s));
        rtmp_buf *buf = NULL, *uncached = NULL;
        for (int k = 0; k < ncache && !buf; k++)
            if (cache[k].chunk_size == cs && cache[k].stream_id == h.stream_id)
                buf = cache[k].buf;
        if (!buf) {
            if (rtmp_chunk_write_fmt0(cs, &h, m->data, &buf) < 0) {
                rtmp_buf_unref(buf);
                continue;
            }
            if (ncache < GROUP_CACHE) {
                cache[ncache].chunk_size = cs;
                cache[ncache].stream_id = h.stream_id;
                cache[ncache].buf = buf;
                ncache++;
            } else {
                uncached = buf; /* more distinct keys than the cache holds */
            }
        }
        if (rtmp_session_send_chunked(s, &h, buf) >= 0) {
            rtmp_l_queue_sent(lc->mq, lc->c, &h, cls);
            if (rtmp_conn_output_media(lc->c) >= 0)
                reached++;
        }
        rtmp_buf_unref(uncached);
    }
    for (int k = 0; k < ncache; k++)
        rtmp_buf_unref(cache[k].buf);
    lua_pushinteger(L, reached);
    return 1;
}

static int group_gc(lua_State *L)
{
    lgroup *g = check_group(L, 1);
    while (g->n)
        group_drop(g, g->n - 1);
    free(g->m);
    g->m = NULL;
    g->cap = 0;
    return 0;
}

/* ---- timers ---- */

static void timer_fire(rtmp_timer *t, void *ud)
{
    ltimer *lt = ud;
    lua_State *L = lt->st->L;
    int ref = lt->selfref;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);      /* the timer box, kept here until the end */
    lua_getiuservalue(L, -1, 1);                 /* its function */
    lua_pushvalue(L, -2);                        /* its argument */
    if (lt->repeat <= 0) {                       /* one-shot: no longer active */
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        lt->selfref = LUA_NOREF;
    }
    /* A repeating timer whose function failed stops, unless
     * rtmp.options.on_error is "drop" (or fn stopped it already). */
    if (pcall_handler(L, NULL, 1, "timer") < 0 && lt->repeat > 0 && option_on_error(L) == ON_ERROR_CLOSE
        && lt->selfref != LUA_NOREF) {
        rtmp_log(RTMP_LOG_WARN, 0, NULL, "repeating timer stopped after a script error");
        lt->repeat = 0;
        if (lt->t)
            rtmp_timer_stop(lt->t);
        luaL_unref(L, LUA_REGISTRYINDEX, lt->selfref);
        lt->selfref = LUA_NOREF;
    }
    lua_pop(L, 1);
}

/* rtmp.timer(after, fn [, repeat]) -> timer: fn(timer) runs after `after`
 * seconds, then every `repeat` seconds if given.  timer:stop() cancels. */
static int l_timer(lua_State *L)
{
    lstate *st = get_state(L);
    double after = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    double repeat = luaL_optnumber(L, 3, 0);
    luaL_argcheck(L, after >= 0, 1, "negative delay");
    luaL_argcheck(L, repeat >= 0, 3, "negative interval");
    ltimer *lt = lua_newuserdatauv(L, sizeof *lt, 1);
    lt->st = st;
    lt->selfref = LUA_NOREF;
    lt->repeat = repeat;
    lt->t = NULL;
    luaL_setmetatable(L, TIMER_MT);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1);
    lt->t = rtmp_timer_new(st->net, timer_fire, lt);
    if (!lt->t)
        return luaL_error(L, "out of memory");
    rtmp_timer_start(lt->t, after, repeat);
    lua_pushvalue(L, -1);
    lt->selfref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int timer_stop(lua_State *L)
{
    ltimer *lt = luaL_checkudata(L, 1, TIMER_MT);
    if (lt->t)
        rtmp_timer_stop(lt->t);
    if (lt->selfref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, lt->selfref);
        lt->selfref = LUA_NOREF;
    }
    return 0;
}

static int timer_active(lua_State *L)
{
    ltimer *lt = luaL_checkudata(L, 1, TIMER_MT);
    lua_pushboolean(L, lt->t && rtmp_timer_active(lt->t));
    return 1;
}

static int timer_gc(lua_State *L)
{
    ltimer *lt = luaL_checkudata(L, 1, TIMER_MT);
    if (lt->t) {
        rtmp_timer_free(lt->t);
        lt->t = NULL;
    }
    return 0;
}

/* ---- the loop ---- */

/* rtmp.run([seconds]) -> stopped: run the loop until nothing is left to
 * do, rtmp.stop(), a signal, or `seconds` have passed. */
static int l_run(lua_State *L)
{
    lstate *st = get_state(L);
    double timeout = luaL_optnumber(L, 1, 0);
    lua_pushboolean(L, rtmp_net_run(st->net, timeout));
    return 1;
}

static int l_stop(lua_State *L)
{
    rtmp_net_stop(get_state(L)->net);
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, rtmp_net_now(get_state(L)->net));
    return 1;
}

/* rtmp.shutdown([reason]): close every server and connection now. */
static int l_shutdown(lua_State *L)
{
    rtmp_net_shutdown(get_state(L)->net, luaL_optstring(L, 1, "shutdown"));
    return 0;
}

/* rtmp.handle_signals(): SIGINT/SIGTERM close everything and end rtmp.run. */
static int l_handle_signals(lua_State *L)
{
    rtmp_net_handle_signals(get_state(L)->net);
    return 0;
}

static int bufslot_gc(lua_State *L)
{
    rtmp_buf **slot = lua_touserdata(L, 1);
    rtmp_buf_unref(*slot);
    *slot = NULL;
    return 0;
}

static int state_gc(lua_State *L)
{
    lstate *st = lua_touserdata(L, 1);
    st->L = NULL;
    if (st->net) {
        rtmp_net_free(st->net);
        st->net = NULL;
    }
    return 0;
}

/* ---- sessions without sockets ---- */

static int ls_ready(void *ud) { (void)ud; return 0; }

static int ls_message(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied)
{
    lsession *ls = ud;
    lua_State *L = ls->L;
    rtmp_l_push_msg(L, h, payload, applied, ls->max_amf_depth);
    lua_rawseti(L, ls->out, (lua_Integer)luaL_len(L, ls->out) + 1);
    return 0;
}

/* rtmp.session{ role = "server"|"client", <settings as rtmp.listen> } ->
 * a protocol session with no socket and no clock: bytes in with
 * s:feed(bytes) -> array of messages (or nil, message, code), bytes out with
 * s:output() -> string.  The sending methods of a connection work on it. */
static int l_session(lua_State *L)
{
    static const char *const roles[] = { "server", "client", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "role");
    int role = luaL_checkoption(L, -1, "server", roles);
    lua_pop(L, 1);
    rtmp_conn_config cfg;
    read_conn_config(L, 1, &cfg, role);
    lsession *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    memset(ls, 0, sizeof *ls);
    luaL_setmetatable(L, SESSION_MT);
    static const rtmp_session_handler sh = { ls_ready, ls_message };
    ls->max_amf_depth = cfg.session.max_amf_depth;
    ls->s = rtmp_session_new(&cfg.session, &sh, ls);
    if (!ls->s)
        return luaL_error(L, "out of memory");
    rtmp_l_trace_settings(L, 1, ls->s, &ls->trace, 0, NULL);
    if (rtmp_session_start(ls->s) < 0)
        return luaL_error(L, "out of memory");
    return 1;
}

static lsession *check_session(lua_State *L)
{
    lsession *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (!ls->s)
        luaL_argerror(L, 1, "session already closed");
    return ls;
}

static int session_feed(lua_State *L)
{
    lsession *ls = check_session(L);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    lua_newtable(L);
    ls->L = L;
    ls->out = lua_gettop(L);
    ssize_t rc = rtmp_session_feed(ls->s, (const uint8_t *)p, len);
    ls->L = NULL;
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, rtmp_strerror((int)rc));
        lua_pushstring(L, rtmp_errname((int)rc));
        return 3;
    }
    return 1;
}

static int session_output(lua_State *L)
{
    lsession *ls = check_session(L);
    rtmp_outq *q = rtmp_session_output(ls->s);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    struct iovec iov[16];
    while (q->bytes > 0) {
        int n = rtmp_outq_iov(q, iov, 16);
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            luaL_addlstring(&b, iov[i].iov_base, iov[i].iov_len);
            total += iov[i].iov_len;
        }
        rtmp_outq_consume(q, total);
    }
    luaL_pushresult(&b);
    return 1;
}

static int session_index(lua_State *L)
{
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
        return 1; /* a method: it reports "closed" itself */
    lsession *ls = check_session(L);
    if (!strcmp(k, "bytes_in") || !strcmp(k, "bytes_out")) {
        rtmp_session_info info;
        rtmp_session_get_info(ls->s, &info);
        lua_pushinteger(L, (lua_Integer)(k[6] == 'i' ? info.bytes_in : info.bytes_out));
        return 1;
    }
    return push_session_field(L, ls->s, k);
}

static int session_gc(lua_State *L)
{
    lsession *ls = luaL_checkudata(L, 1, SESSION_MT);
    rtmp_l_trace_free(L, ls->s, &ls->trace);
    rtmp_session_free(ls->s);
    ls->s = NULL;
    return 0;
}

static const luaL_Reg session_methods[] = {
    { "feed", session_feed },
    { "output", session_output },
    { "close", session_gc },
    { NULL, NULL },
};

static const luaL_Reg net_funcs[] = {
    { "session", l_session },
    { "listen", l_listen },
    { "connect", l_connect },
    { "spawn", l_spawn },
    { "sleep", l_sleep },
    { "parse_url", l_parse_url },
    { "message", l_message },
    { "group", l_group },
    { "timer", l_timer },
    { "run", l_run },
    { "stop", l_stop },
    { "now", l_now },
    { "shutdown", l_shutdown },
    { "handle_signals", l_handle_signals },
    { NULL, NULL },
};

static const luaL_Reg group_methods[] = {
    { "add", group_add }, { "remove", group_remove }, { "has", group_has },
    { "count", group_len }, { "members", group_members }, { "clear", group_clear },
    { "send", group_send }, { NULL, NULL },
};

static const luaL_Reg timer_methods[] = {
    { "stop", timer_stop }, { "active", timer_active }, { NULL, NULL },
};

void rtmp_l_open_net(lua_State *L)
{
    /* the loop, freed when the Lua state closes */
    lstate *st = lua_newuserdatauv(L, sizeof *st, 0);
    memset(st, 0, sizeof *st);
    st->L = L;
    /* the allocator's accounting, when luartmp runs with --script-memory */
    lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_MEMORY_KEY);
    st->mem = lua_touserdata(L, -1);
    lua_pop(L, 1);
    st->net = rtmp_net_new();
    if (!st->net)
        luaL_error(L, "cannot create the event loop");
    lua_newtable(L);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);

    /* rtmp.options is shared with the registry so C can read it */
    lua_getfield(L, -1, "options");
    lua_setfield(L, LUA_REGISTRYINDEX, "rtmp.options");

    /* metatables: name, methods (the __index table, or the closure's
     * upvalue when a C __index also serves fields), metamethods */
    static const struct {
        const char *name;
        const luaL_Reg *methods;
        int sending;            /* also the sending methods */
        lua_CFunction index;
        luaL_Reg meta[5];
    } metas[] = {
        { CONN_MT, conn_methods, 1, conn_index,
          { { "__newindex", conn_newindex }, { "__gc", conn_gc }, { "__eq", conn_eq },
            { "__tostring", conn_tostring }, { NULL, NULL } } },
        { SERVER_MT, NULL, 0, server_index, { { "__close", server_close }, { NULL, NULL } } },
        { MSG_MT, NULL, 0, msg_index,
          { { "__newindex", msg_newindex }, { "__tostring", msg_tostring },
            { NULL, NULL } } },
        { GROUP_MT, group_methods, 0, NULL, { { "__len", group_len }, { "__gc", group_gc }, { NULL, NULL } } },
        { SESSION_MT, session_methods, 1, session_index,
          { { "__gc", session_gc }, { "__close", session_gc }, { NULL, NULL } } },
        { BUFSLOT_MT, NULL, 0, NULL, { { "__gc", bufslot_gc }, { NULL, NULL } } },
        { TIMER_MT, timer_methods, 0, NULL, { { "__gc", timer_gc }, { NULL, NULL } } },
    };
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        luaL_newmetatable(L, metas[i].name);
        if (metas[i].methods) {
            lua_newtable(L);
            luaL_setfuncs(L, metas[i].methods, 0);
            if (metas[i].sending)
                luaL_setfuncs(L, sending_methods, 0);
        }
        if (metas[i].index)
            lua_pushcclosure(L, metas[i].index, metas[i].methods ? 1 : 0);
        if (metas[i].methods || metas[i].index)
            lua_setfield(L, -2, "__index");
        luaL_setfuncs(L, metas[i].meta, 0);
        lua_pop(L, 1);
    }

    luaL_setfuncs(L, net_funcs, 0);
}
