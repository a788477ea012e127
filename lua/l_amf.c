/*
 * l_amf.c: the one Lua value model of both AMF encodings (l_amf.h,
 * docs/AMF.md): table kinds and their shared metatables, the sentinels
 * rtmp.null, rtmp.undefined and rtmp.amf0.unsupported, key order, the
 * type names of rtmp.amf0.type / rtmp.amf3.type, and the errors both
 * codecs report.  l_amf0.c and l_amf3.c use it; it uses neither.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "l_amf.h"
#include "../core/amf0.h"
#include "../core/error.h"

/* Registry keys (their addresses). */
static const char null_key = 'n', undefined_key = 'u', unsupported_key = 'x';
static const char shared_mt_keys[RTMP_K_COUNT_];  /* their addresses */
static const char raised_key = 'r';  /* the code of the error rtmp_l_amf_raise is raising */

/* Table kinds (l_amf.h). */
const char *const rtmp_l_amf_kinds[] = {
    "object", "ecma", "array", "date", "typed", "xmldoc", "xml", "bytearray", "vector_int",
    "vector_uint", "vector_double", "vector_object", "dictionary", "external", "amf3", NULL,
};

/* ---- sentinels ---- */

static int sentinel_tostring(lua_State *L)
{
    luaL_getmetafield(L, 1, "__name");
    return 1;
}

/* [-0, +1, m] the sentinel stored under key, created on first use. */
static void push_sentinel(lua_State *L, const char *key, const char *name)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 0);
    if (luaL_newmetatable(L, name)) {
        lua_pushcfunction(L, sentinel_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void rtmp_l_push_null(lua_State *L) { push_sentinel(L, &null_key, "rtmp.null"); }
void rtmp_l_push_undefined(lua_State *L) { push_sentinel(L, &undefined_key, "rtmp.undefined"); }
void rtmp_l_amf_push_unsupported(lua_State *L) { push_sentinel(L, &unsupported_key, "rtmp.amf0.unsupported"); }

/* [-0, +0, m] which sentinel the value at idx is: the AMF0 marker, or -1. */
int rtmp_l_amf_sentinel(lua_State *L, int idx)
{
    static const struct { void (*push)(lua_State *); int marker; } s[] = {
        { rtmp_l_push_null, RTMP_AMF0_NULL },
        { rtmp_l_push_undefined, RTMP_AMF0_UNDEFINED },
        { rtmp_l_amf_push_unsupported, RTMP_AMF0_UNSUPPORTED },
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        s[i].push(L);
        int eq = lua_rawequal(L, idx, -1);
        lua_pop(L, 1);
        if (eq)
            return s[i].marker;
    }
    return -1;
}

/* [-0, +0, m] set field __amf of the table on top to the kind's name. */
void rtmp_l_amf_set_kind(lua_State *L, int kind)
{
    lua_pushstring(L, rtmp_l_amf_kinds[kind]);
    lua_setfield(L, -2, "__amf");
}

/* [-0, +1, m] the metatable shared by tables of one kind that need no
 * per-table fields. */
void rtmp_l_amf_push_mt(lua_State *L, int kind)
{
    const char *key = &shared_mt_keys[kind];
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    rtmp_l_amf_set_kind(L, kind);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Byte-wise order of keys, shorter first on a common prefix. */
int rtmp_l_amf_key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

/* [-0, +0, -] the string field f of the metatable of t, or NULL. */
const char *rtmp_l_amf_meta_string(lua_State *L, int t, const char *f, size_t *len)
{
    const char *s = NULL;
    if (luaL_getmetafield(L, t, f) != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TSTRING)
            s = lua_tolstring(L, -1, len);  /* kept alive by the metatable */
        lua_pop(L, 1);
    }
    return s;
}

/* [-0, +0, -] whether the plain table t is a sequence 1..n with n > 0;
 * *n gets its length. */
int rtmp_l_amf_is_sequence(lua_State *L, int t, lua_Integer *n)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k > max)
            max = k;
        count++;
    }
    *n = count;
    return count > 0 && max == count;
}

/* [-0, +0, -] the AMF0 kind of table t. */
int rtmp_l_amf_kind(lua_State *L, int t)
{
    const char *k = rtmp_l_amf_meta_string(L, t, "__amf", NULL);
    if (k)
        for (int i = 0; rtmp_l_amf_kinds[i]; i++)
            if (strcmp(k, rtmp_l_amf_kinds[i]) == 0)
                return i;
    lua_Integer n;
    return rtmp_l_amf_is_sequence(L, t, &n) ? K_ARRAY : K_OBJECT;
}

typedef struct other_key {
    const char *s;
    size_t len;
    lua_Integer i;  /* position in the anchor table of (key, string) pairs */
} other_key;

static int other_cmp(const void *a, const void *b)
{
    const other_key *x = a, *y = b;
    return rtmp_l_amf_key_cmp(x->s, x->len, y->s, y->len);
}

/* (l_amf.h) */
void rtmp_l_amf_other_keys(lua_State *L, int t, int seen, int res, lua_Integer dense, int skip_n, int amf3)
{
    lua_Integer nres = (lua_Integer)lua_rawlen(L, res), nothers = 0;
    lua_newtable(L);  /* others: original key, key string, ... */
    int others = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        int kt = lua_type(L, -1);
        if (kt == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1
            && lua_tointeger(L, -1) <= dense)
            continue;
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
            luaL_error(L, "cannot encode a %s key as %s", luaL_typename(L, -1), amf3 ? "AMF3" : "AMF0");
        if (skip_n && kt == LUA_TSTRING && strcmp(lua_tostring(L, -1), "n") == 0)
            continue;
        lua_pushvalue(L, -1);
        lua_tolstring(L, -1, NULL);  /* numbers become their string form */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, seen) != LUA_TNIL) {
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, -2);
        lua_rawseti(L, others, ++nothers);  /* original key */
        lua_rawseti(L, others, ++nothers);  /* its string */
    }
    if (nothers > 0) {
        size_t count = (size_t)nothers / 2;
        other_key *ok = lua_newuserdatauv(L, count * sizeof *ok, 0);
        for (size_t i = 0; i < count; i++) {
            lua_rawgeti(L, others, (lua_Integer)(2 * i + 2));
            ok[i].s = lua_tolstring(L, -1, &ok[i].len);  /* anchored in others */
            ok[i].i = (lua_Integer)(2 * i + 1);
            lua_pop(L, 1);
        }
        qsort(ok, count, sizeof *ok, other_cmp);
        for (size_t i = 0; i < count; i++) {
            lua_rawgeti(L, others, ok[i].i + 1);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, seen) != LUA_TNIL) {  /* 1 and "1" */
                lua_pop(L, 2);
                continue;
            }
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
            lua_rawseti(L, res, ++nres);
            lua_rawgeti(L, others, ok[i].i);
            lua_rawseti(L, res, ++nres);
        }
    }
    lua_settop(L, others - 1);
}

void rtmp_l_amf_push_type(lua_State *L, int idx, int amf3)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        lua_pushliteral(L, "null");
        break;
    case LUA_TBOOLEAN:
        lua_pushliteral(L, "boolean");
        break;
    case LUA_TNUMBER:
        if (!amf3)
            lua_pushliteral(L, "number");
        else if (lua_isinteger(L, idx) && lua_tointeger(L, idx) >= RTMP_AMF3_INT_MIN
                 && lua_tointeger(L, idx) <= RTMP_AMF3_INT_MAX)
            lua_pushliteral(L, "integer");
        else
            lua_pushliteral(L, "double");
        break;
    case LUA_TSTRING:
        lua_pushliteral(L, "string");
        break;
    case LUA_TTABLE:
        lua_pushstring(L, rtmp_l_amf_kinds[rtmp_l_amf_kind(L, idx)]);
        break;
    case LUA_TUSERDATA:
        switch (rtmp_l_amf_sentinel(L, idx)) {
        case RTMP_AMF0_NULL: lua_pushliteral(L, "null"); break;
        case RTMP_AMF0_UNDEFINED: lua_pushliteral(L, "undefined"); break;
        case RTMP_AMF0_UNSUPPORTED:
            if (amf3)
                luaL_pushfail(L);  /* no AMF3 form */
            else
                lua_pushliteral(L, "unsupported");
            break;
        default: luaL_pushfail(L); break;
        }
        break;
    default:
        luaL_pushfail(L);
        break;
    }
}

int rtmp_l_amf_new_text(lua_State *L, int kind, const char *f)
{
    luaL_checkstring(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, f);
    rtmp_l_amf_push_mt(L, kind);
    lua_setmetatable(L, -2);
    return 1;
}

int rtmp_l_amf_opt_depth(lua_State *L, int arg)
{
    lua_Integer depth = luaL_optinteger(L, arg, RTMP_AMF_DEFAULT_DEPTH);
    luaL_argcheck(L, depth >= 0 && depth <= RTMP_AMF_MAX_DEPTH, arg, "out of range");
    return (int)depth;
}

int rtmp_l_amf_fail(lua_State *L, int rc, size_t off, const char *cls, size_t clen)
{
    luaL_pushfail(L);
    if (cls) {
        lua_pushlstring(L, cls, clen);
        lua_pushfstring(L, "%s (%s) at byte %I", rtmp_strerror(rc), lua_tostring(L, -1), (lua_Integer)off);
        lua_remove(L, -2);
    } else {
        lua_pushfstring(L, "%s at byte %I", rtmp_strerror(rc), (lua_Integer)off);
    }
    lua_pushstring(L, rtmp_errname(rc));
    return 3;
}

int rtmp_l_amf_raise(lua_State *L, int code, const char *fmt, ...)
{
    lua_pushinteger(L, code);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &raised_key);
    va_list ap;
    va_start(ap, fmt);
    luaL_where(L, 1);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

int rtmp_l_amf_too_deep(lua_State *L, lua_CFunction write, int max_depth)
{
    luaL_checkstack(L, 3, NULL);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &raised_key);
    lua_pushcfunction(L, write);
    lua_pushvalue(L, -2);
    lua_pushinteger(L, max_depth);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK)
        return 0;
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &raised_key);
    int deep = lua_tointeger(L, -1) == RTMP_ERR_AMF_DEPTH;
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &raised_key);
    return deep;
}
