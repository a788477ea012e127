/*
 * l_amf0.c: AMF0 <-> Lua, rtmp.amf0, rtmp.null and rtmp.undefined.
 *
 * The mapping
 *
 *   AMF0                  Lua (decode)                      encode from
 *   number                float                             any number
 *   boolean               boolean                           boolean
 *   string, long string   string                            string (long string
 *                                                           above 65535 bytes)
 *   null                  rtmp.null                         rtmp.null or nil
 *   undefined             rtmp.undefined                    rtmp.undefined
 *   unsupported           rtmp.amf0.unsupported             the same
 *   object                table, metatable                  such a table, or a
 *                         { __amf = "object", __keys? }     plain table that is
 *                                                           not a sequence
 *   ECMA array            table, metatable { __amf = "ecma", __keys?,
 *                         __count?, __noend? }
 *   strict array          table 1..n plus field n,          such a table, or a
 *                         metatable { __amf = "array" }     plain sequence 1..#t
 *                                                           with #t > 0
 *   date                  table { time = ms, tz = int },
 *                         metatable { __amf = "date" }
 *   typed object          table, metatable { __amf = "typed",
 *                         __class = name, __keys? }
 *   reference             the referenced table itself
 *   XML document          { xml = text }, metatable { __amf = "xmldoc" }
 *   switch to AMF3        the AMF3 value (l_amf3.c), its position kept
 *                         in the container's __amf3[key or index] or, at
 *                         top level, in the values table's metatable
 *                         __amf3[i]; written switched again there, for
 *                         rtmp.amf3.value(v), and for the kinds AMF0
 *                         cannot express (xml, bytearray, vectors,
 *                         dictionary, external).  The switches of one
 *                         call share one AMF3 context.
 *
 * Key order.  __keys lists the keys in the order they came; a decoded
 * table whose keys came in sorted order (byte-wise) shares one metatable
 * without __keys.  Encoding writes the keys of __keys first (skipping
 * those whose value is now nil), then every other key sorted byte-wise,
 * so output is deterministic and decode-then-encode gives the same bytes.
 * Number keys are written as their string form; other key types raise.
 * An empty plain table is an empty object.
 *
 * ECMA arrays.  The declared count is a hint; __count keeps it when it
 * differs from the entries present, __noend marks an array that ended
 * with the input instead of an end marker (accepted only there).
 *
 * Strict arrays.  Encoding writes elements 1..t.n (or 1..#t without n);
 * nil elements become null.
 *
 * References.  Objects, typed objects, ECMA and strict arrays enter one
 * reference table per decode call, in the order they begin.  A reference
 * decodes as that same Lua table (possibly an enclosing one), and the
 * container it sat in records it in __refs[key or index], so re-encoding
 * writes a reference there again.  Elsewhere a table met twice is written
 * out twice (FFmpeg and librtmp do not read references), and a cycle
 * raises.
 *
 * Nesting.  Objects and arrays nest at most max_depth levels (default
 * RTMP_DEFAULT_AMF_DEPTH, at most RTMP_AMF_MAX_DEPTH): a top-level
 * object is level 1.  Deeper input fails with AMF_DEPTH; deeper tables
 * raise when encoded.
 *
 * Functions: rtmp.amf0.encode(...) -> string; rtmp.amf0.decode(s
 * [, max_depth]) -> { values..., n = count } or nil, message, code;
 * constructors object{ {k, v}, ... }, ecma{ {k, v}, ... }, array{ ... },
 * date(ms [, tz]), typed(class, { {k, v}, ... }); type(v).
 */
#include <stdlib.h>
#include <string.h>

#include "l_amf.h"
#include "../core/amf0.h"
#include "../core/error.h"

/* Decoding */

typedef struct dec {
    lua_State *L;
    rtmp_amf0_reader r;
    int refs;      /* stack index of the reference table (1-based) */
    int was_ref;   /* the value just pushed came from a reference */
    int was_amf3;  /* the value just pushed came switched to AMF3 (0x11) */
    int saw_ref;   /* a reference (0x07) was read */
    rtmp_amf3_str cls;  /* an externalizable class without a handler */
    int amf3;      /* stack index of the AMF3 context slot */
} dec;

static int dec_value(dec *d, int depth);

/* [-0, +0, m] record that entry `key` (at stack index k) of the container
 * came from a reference, in the __refs table at stack index slot. */
static void mark_ref(lua_State *L, int slot, int k)
{
    if (lua_isnil(L, slot)) {
        lua_newtable(L);
        lua_replace(L, slot);
    }
    lua_pushvalue(L, k);
    lua_pushboolean(L, 1);
    lua_rawset(L, slot);
}

/* [-0, +0, m] mark entry k in the table at slot (on), or clear a mark an
 * earlier entry with the same key left there (off). */
static void set_mark(lua_State *L, int slot, int k, int on)
{
    if (on) {
        mark_ref(L, slot, k);
    } else if (!lua_isnil(L, slot)) {
        lua_pushvalue(L, k);
        lua_pushnil(L);
        lua_rawset(L, slot);
    }
}

/* [-0, +0, m] the fields __refs and __amf3 of the metatable on top: the
 * tables at stack indexes refs and sw, when not nil. */
static void set_marks(lua_State *L, int refs, int sw)
{
    if (!lua_isnil(L, refs)) {
        lua_pushvalue(L, refs);
        lua_setfield(L, -2, "__refs");
    }
    if (!lua_isnil(L, sw)) {
        lua_pushvalue(L, sw);
        lua_setfield(L, -2, "__amf3");
    }
}

/* [-0, +0, m] keep in the key list at stack index keys only the last
 * occurrence of each key, in order: a repeated key's value is the last
 * one read, so its place is where that one was (an ECMA array whose end
 * marker is missing must stay the last value written). */
static void last_keys(lua_State *L, int keys)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, keys), m = 0;
    lua_newtable(L);  /* keys seen, walking backwards */
    lua_createtable(L, (int)(n < 1024 ? n : 1024), 0);  /* kept, reversed */
    int seen = lua_gettop(L) - 1, kept = seen + 1;
    for (lua_Integer i = n; i >= 1; i--) {
        lua_rawgeti(L, keys, i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, seen) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
            lua_rawseti(L, kept, ++m);
        } else {
            lua_pop(L, 2);
        }
    }
    for (lua_Integer i = 1; i <= n; i++) {
        if (i <= m)
            lua_rawgeti(L, kept, m + 1 - i);
        else
            lua_pushnil(L);
        lua_rawseti(L, keys, i);
    }
    lua_pop(L, 2);
}

/* The properties of the object, typed object or ECMA array on top of the
 * stack, through its end; then its metatable.  0 or an error. */
static int dec_props(dec *d, int depth, int kind, uint32_t declared, const char *cls, size_t clen)
{
    lua_State *L = d->L;
    int t = lua_gettop(L), keys = t + 1, refs = t + 2, sw = t + 3, kpos = t + 4;
    lua_newtable(L);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_Integer nkeys = 0;
    int sorted = 1, noend = 0, dups = 0;
    const char *prev = NULL;
    size_t prevn = 0;
    for (;;) {
        if (kind == K_ECMA && rtmp_amf0_ecma_end_missing(&d->r)) {
            noend = 1;
            break;
        }
        const char *k;
        size_t kn;
        int rc = rtmp_amf0_read_key(&d->r, &k, &kn);
        if (rc < 0)
            return rc;
        if (rc == RTMP_AMF0_END)
            break;
        if (prev && rtmp_l_amf_key_cmp(prev, prevn, k, kn) >= 0)
            sorted = 0;
        prev = k;
        prevn = kn;
        lua_pushlstring(L, k, kn);
        lua_pushvalue(L, kpos);
        if (lua_rawget(L, t) != LUA_TNIL)
            dups = 1;
        lua_pop(L, 1);
        if ((rc = dec_value(d, depth)) < 0)
            return rc;
        /* A repeated key: Lua keeps the last value, so its marks too. */
        set_mark(L, refs, kpos, d->was_ref);
        set_mark(L, sw, kpos, d->was_amf3);
        lua_pushvalue(L, kpos);
        lua_rawseti(L, keys, ++nkeys);
        lua_rawset(L, t);
    }
    if (dups)
        last_keys(L, keys);
    int count_differs = kind == K_ECMA && (lua_Integer)declared != nkeys;
    if (sorted && lua_isnil(L, refs) && lua_isnil(L, sw) && kind != K_TYPED && !count_differs && !noend) {
        rtmp_l_amf_push_mt(L, kind);
    } else {
        lua_createtable(L, 0, 4);
        rtmp_l_amf_set_kind(L, kind);
        if (!sorted) {
            lua_pushvalue(L, keys);
            lua_setfield(L, -2, "__keys");
        }
        set_marks(L, refs, sw);
        if (kind == K_TYPED) {
            lua_pushlstring(L, cls, clen);
            lua_setfield(L, -2, "__class");
        }
        if (count_differs) {
            lua_pushinteger(L, declared);
            lua_setfield(L, -2, "__count");
        }
        if (noend) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "__noend");
        }
    }
    lua_setmetatable(L, t);
    lua_settop(L, t);
    return 0;
}

/* The elements of the strict array on top of the stack. */
static int dec_elements(dec *d, int depth, uint32_t count)
{
    lua_State *L = d->L;
    int t = lua_gettop(L), refs = t + 1, sw = t + 2;
    lua_pushnil(L);
    lua_pushnil(L);
    for (uint32_t i = 1; i <= count; i++) {
        int rc = dec_value(d, depth);
        if (rc < 0)
            return rc;
        if (d->was_ref || d->was_amf3) {
            lua_pushinteger(L, i);
            mark_ref(L, d->was_ref ? refs : sw, lua_gettop(L));
            lua_pop(L, 1);
        }
        lua_rawseti(L, t, i);
    }
    lua_pushinteger(L, count);
    lua_setfield(L, t, "n");
    if (lua_isnil(L, refs) && lua_isnil(L, sw)) {
        rtmp_l_amf_push_mt(L, K_ARRAY);
    } else {
        lua_createtable(L, 0, 3);
        rtmp_l_amf_set_kind(L, K_ARRAY);
        set_marks(L, refs, sw);
    }
    lua_setmetatable(L, t);
    lua_settop(L, t);
    return 0;
}

/* [-0, +1, m] decode one value and push it; on error push nothing (the
 * caller resets the stack) and return the code.  depth: how many more
 * containers may open. */
static int dec_value(dec *d, int depth)
{
    lua_State *L = d->L;
    int m = rtmp_amf0_peek_marker(&d->r), rc = 0, b;
    double v;
    const char *s;
    size_t n;
    int16_t tz;
    uint16_t ref;
    uint32_t count;

    luaL_checkstack(L, 8, "AMF0 nesting");
    switch (m) {
    case RTMP_AMF0_NUMBER:
        if ((rc = rtmp_amf0_read_number(&d->r, &v)) == 0)
            lua_pushnumber(L, v);
        break;
    case RTMP_AMF0_BOOLEAN:
        if ((rc = rtmp_amf0_read_boolean(&d->r, &b)) == 0)
            lua_pushboolean(L, b);
        break;
    case RTMP_AMF0_STRING:
    case RTMP_AMF0_LONG_STRING:
        if ((rc = rtmp_amf0_read_string(&d->r, &s, &n)) >= 0)
            lua_pushlstring(L, s, n);
        break;
    case RTMP_AMF0_NULL:
    case RTMP_AMF0_UNDEFINED:
    case RTMP_AMF0_UNSUPPORTED:
        if ((rc = rtmp_amf0_read_marker(&d->r)) < 0)
            break;
        if (m == RTMP_AMF0_NULL)
            rtmp_l_push_null(L);
        else if (m == RTMP_AMF0_UNDEFINED)
            rtmp_l_push_undefined(L);
        else
            rtmp_l_amf_push_unsupported(L);
        break;
    case RTMP_AMF0_DATE:
        if ((rc = rtmp_amf0_read_date(&d->r, &v, &tz)) < 0)
            break;
        lua_createtable(L, 0, 2);
        lua_pushnumber(L, v);
        lua_setfield(L, -2, "time");
        lua_pushinteger(L, tz);
        lua_setfield(L, -2, "tz");
        rtmp_l_amf_push_mt(L, K_DATE);
        lua_setmetatable(L, -2);
        break;
    case RTMP_AMF0_REFERENCE:
        if ((rc = rtmp_amf0_read_reference(&d->r, &ref)) == 0)
            lua_rawgeti(L, d->refs, (lua_Integer)ref + 1);
        break;
    case RTMP_AMF0_XML_DOCUMENT:
        if ((rc = rtmp_amf0_read_xml_document(&d->r, &s, &n)) < 0)
            break;
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, s, n);
        lua_setfield(L, -2, "xml");
        rtmp_l_amf_push_mt(L, K_XMLDOC);
        lua_setmetatable(L, -2);
        break;
    case RTMP_AMF0_AVMPLUS: {
        /* One AMF3 value in the body's AMF3 context; it does not enter the AMF0
         * reference table.  The switch itself takes no nesting level. */
        size_t next = 0;
        d->r.p++;
        rc = rtmp_l_amf3_push_value(L, d->amf3, d->r.start, (size_t)(d->r.end - d->r.start),
                                    rtmp_amf0_offset(&d->r), depth, &next, &d->cls);
        d->r.p = d->r.start + next;
        if (rc < 0)
            return rc;
        d->was_ref = 0;
        d->was_amf3 = 1;
        return 0;
    }
    case RTMP_AMF0_OBJECT:
    case RTMP_AMF0_TYPED_OBJECT:
    case RTMP_AMF0_ECMA_ARRAY:
    case RTMP_AMF0_STRICT_ARRAY:
        if (depth <= 0)
            return RTMP_ERR_AMF_DEPTH;
        count = 0;
        s = NULL;
        n = 0;
        if (m == RTMP_AMF0_OBJECT)
            rc = rtmp_amf0_read_object_start(&d->r);
        else if (m == RTMP_AMF0_TYPED_OBJECT)
            rc = rtmp_amf0_read_typed_object_start(&d->r, &s, &n);
        else if (m == RTMP_AMF0_ECMA_ARRAY)
            rc = rtmp_amf0_read_ecma_start(&d->r, &count);
        else
            rc = rtmp_amf0_read_strict_array_start(&d->r, &count);
        if (rc < 0)
            break;
        /* Counts are the peer's word: preallocate a little, let the
         * table grow with what actually arrives. */
        if (m == RTMP_AMF0_STRICT_ARRAY)
            lua_createtable(L, count < 1024 ? (int)count : 1024, 1);
        else
            lua_createtable(L, 0, count < 16 ? (int)count : 16);
        lua_pushvalue(L, -1);
        lua_rawseti(L, d->refs, d->r.nrefs);
        if (m == RTMP_AMF0_STRICT_ARRAY)
            rc = dec_elements(d, depth - 1, count);
        else
            rc = dec_props(d, depth - 1,
                           m == RTMP_AMF0_OBJECT ? K_OBJECT : m == RTMP_AMF0_ECMA_ARRAY ? K_ECMA : K_TYPED,
                           count, s, n);
        break;
    default:
        return m < 0 ? m : RTMP_ERR_AMF_MARKER;
    }
    d->was_ref = m == RTMP_AMF0_REFERENCE;
    d->saw_ref |= d->was_ref;
    d->was_amf3 = 0;
    return rc < 0 ? rc : 0;
}

static int dry_write(lua_State *L);

/* [-0, +1, m] decode all of p[0 .. len) into one table; on error push
 * nothing, store the failing offset in *off and return the code. */
static int decode_all(lua_State *L, const uint8_t *p, size_t len, int max_depth, size_t *off,
                      rtmp_amf3_str *cls)
{
    int base = lua_gettop(L);
    dec d = { .L = L, .refs = base + 2, .amf3 = base + 4 };
    if (max_depth > RTMP_AMF_MAX_DEPTH)
        max_depth = RTMP_AMF_MAX_DEPTH;
    rtmp_amf0_reader_init(&d.r, p, len);
    luaL_checkstack(L, 5, NULL);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushnil(L);  /* base + 3: positions switched to AMF3 */
    lua_pushnil(L);  /* base + 4: the AMF3 context, made at the first switch */
    lua_Integer n = 0;
    while (rtmp_amf0_remaining(&d.r) > 0) {
        int rc = dec_value(&d, max_depth);
        if (rc < 0) {
            *off = rtmp_amf0_offset(&d.r);
            if (cls)
                *cls = d.cls;
            rtmp_l_amf3_ctx_free(L, d.amf3);
            lua_settop(L, base);
            return rc;
        }
        lua_rawseti(L, base + 1, ++n);
        if (d.was_amf3) {
            lua_pushinteger(L, n);
            mark_ref(L, base + 3, lua_gettop(L));
            lua_pop(L, 1);
        }
    }
    if (!lua_isnil(L, base + 3)) {
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, base + 3);
        lua_setfield(L, -2, "__amf3");
        lua_setmetatable(L, base + 1);
    }
    int refs = d.saw_ref || rtmp_l_amf3_ctx_objrefs(L, d.amf3) > 0;
    rtmp_l_amf3_ctx_free(L, d.amf3);
    lua_pop(L, 3);
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    if (refs && rtmp_l_amf_too_deep(L, dry_write, max_depth)) {
        lua_settop(L, base);
        *off = len;  /* no one byte is to blame: the whole input is */
        return RTMP_ERR_AMF_DEPTH;
    }
    return 0;
}

int rtmp_l_amf0_push_values(lua_State *L, const uint8_t *p, size_t len, int max_depth)
{
    size_t off;
    return decode_all(L, p, len, max_depth, &off, NULL);
}

/* Encoding */

typedef struct enc {
    lua_State *L;
    rtmp_buf **out;
    int max_depth;
    int visiting;    /* stack index: table -> true while it is being written */
    int index;       /* stack index: table -> its reference index */
    int amf3;        /* stack index: the AMF3 context slot (l_amf.h) */
    uint32_t nrefs;  /* complex values written so far */
} enc;

/* enc_value flags: the position was a reference / a switch to AMF3. */
#define AS_REF 1
#define AS_AMF3 2

static void enc_value(enc *e, int idx, int depth, int flags);

static void enc_check(enc *e, int rc, const char *what)
{
    if (rc == RTMP_ERR_NOMEM)
        luaL_error(e->L, "not enough memory");
    if (rc < 0)
        luaL_error(e->L, "cannot encode %s as AMF0", what);
}

/* [-0, +0, -] whether the __refs table at stack index refs (0: none)
 * marks the key at stack index k as a reference. */
static int ref_marked(lua_State *L, int refs, int k)
{
    if (!refs)
        return 0;
    lua_pushvalue(L, k);
    int marked = lua_rawget(L, refs) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 1);
    return marked;
}

/* One property: the key string at stack index k, the value at v. */
static void enc_prop(enc *e, int k, int v, int depth, int refs, int sw)
{
    size_t kn;
    const char *ks = lua_tolstring(e->L, k, &kn);
    int rc = rtmp_amf0_write_key(e->out, ks, kn);
    if (rc == RTMP_ERR_INVAL)
        luaL_error(e->L, "cannot encode a key longer than 65535 bytes as AMF0");
    enc_check(e, rc, "a key");
    enc_value(e, v, depth, ref_marked(e->L, refs, k) * AS_REF | ref_marked(e->L, sw, k) * AS_AMF3);
}

/* The properties of object-like table t and its end marker. */
static void enc_props(enc *e, int t, int depth, int kind)
{
    lua_State *L = e->L;
    luaL_checkstack(L, 12, "AMF0 nesting");
    int base = lua_gettop(L);
    int keys = base + 1, refs = base + 2, seen = base + 3, others = base + 4;
    if (!lua_getmetatable(L, t))
        lua_pushnil(L);
    int mt = lua_gettop(L);
    if (lua_istable(L, mt)) {
        lua_getfield(L, mt, "__keys");
        lua_getfield(L, mt, "__refs");
    } else {
        lua_pushnil(L);
        lua_pushnil(L);
    }
    lua_remove(L, mt);
    if (!lua_istable(L, refs))
        refs = 0;
    lua_newtable(L);  /* seen */
    lua_newtable(L);  /* others: key string, original key, ... */
    int sw = base + 5, sealed = base + 6;
    if (luaL_getmetafield(L, t, "__amf3") == LUA_TNIL)
        lua_pushnil(L);
    if (luaL_getmetafield(L, t, "__sealed") == LUA_TNIL)
        lua_pushnil(L);
    if (!lua_istable(L, sw))
        sw = 0;

    size_t count_pos = 0;
    if (kind == K_ECMA) {
        count_pos = (*e->out ? (*e->out)->len : 0) + 1;
        enc_check(e, rtmp_amf0_write_ecma_start(e->out, 0), "an ECMA array");
    } else if (kind == K_TYPED) {
        size_t cn;
        const char *cls = rtmp_l_amf_meta_string(L, t, "__class", &cn);
        if (!cls)
            luaL_error(L, "typed object without a string __class");
        int rc = rtmp_amf0_write_typed_object_start(e->out, cls, cn);
        if (rc == RTMP_ERR_INVAL)
            luaL_error(L, "cannot encode a class name longer than 65535 bytes as AMF0");
        enc_check(e, rc, "a typed object");
    } else {
        enc_check(e, rtmp_amf0_write_object_start(e->out), "an object");
    }

    /* AMF3 sealed member names first (in their order), then __keys. */
    lua_Integer written = 0;
    for (int li = 0; li < 2; li++) {
        int list = li == 0 ? sealed : keys;
        if (!lua_istable(L, list))
            continue;
        lua_Integer n = (lua_Integer)lua_rawlen(L, list);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, list, i) != LUA_TSTRING)
                luaL_error(L, "%s entry %d is not a string", li == 0 ? "__sealed" : "__keys", (int)i);
            int k = lua_gettop(L);
            lua_pushvalue(L, k);
            if (lua_rawget(L, seen) != LUA_TNIL || (lua_pushvalue(L, k), lua_rawget(L, t)) == LUA_TNIL) {
                lua_settop(L, k - 1);
                continue;
            }
            /* stack: k, nil (seen), value */
            lua_pushvalue(L, k);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
            enc_prop(e, k, k + 2, depth, refs, sw);
            written++;
            lua_settop(L, k - 1);
        }
    }

    /* Every other key, as a string, sorted. */
    rtmp_l_amf_other_keys(L, t, seen, others, 0, 0, 0);
    lua_Integer n = (lua_Integer)lua_rawlen(L, others);
    for (lua_Integer i = 1; i <= n; i += 2) {
        lua_rawgeti(L, others, i);  /* the key string */
        int k = lua_gettop(L);
        lua_rawgeti(L, others, i + 1);
        lua_rawget(L, t);
        enc_prop(e, k, k + 1, depth, refs, sw);
        written++;
        lua_settop(L, k - 1);
    }

    int noend = 0;
    if (kind == K_ECMA) {
        lua_Integer declared = written;
        if (luaL_getmetafield(L, t, "__count") != LUA_TNIL) {
            int isnum;
            declared = lua_tointegerx(L, -1, &isnum);
            if (!isnum || declared < 0 || declared > 0xFFFFFFFFLL)
                luaL_error(L, "__count is not an integer in 0 .. 2^32-1");
            lua_pop(L, 1);
        }
        rtmp_put_be32((*e->out)->data + count_pos, (uint32_t)declared);
        if (luaL_getmetafield(L, t, "__noend") != LUA_TNIL) {
            noend = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
    }
    if (!noend)
        enc_check(e, rtmp_amf0_write_object_end(e->out), "an object end");
    lua_settop(L, base);
}

/* The elements of array table t. */
static void enc_elements(enc *e, int t, int depth)
{
    lua_State *L = e->L;
    luaL_checkstack(L, 6, "AMF0 nesting");
    int base = lua_gettop(L), refs = 0, sw = 0;
    lua_Integer n;
    if (luaL_getmetafield(L, t, "__amf") != LUA_TNIL) {
        lua_pop(L, 1);
        if (luaL_getmetafield(L, t, "__refs") != LUA_TNIL) {
            if (lua_istable(L, -1))
                refs = lua_gettop(L);
            else
                lua_pop(L, 1);
        }
        if (luaL_getmetafield(L, t, "__amf3") != LUA_TNIL) {
            if (lua_istable(L, -1))
                sw = lua_gettop(L);
            else
                lua_pop(L, 1);
        }
        int isnum = 0;
        /* An AMF3 array with an associative part keeps its dense length
         * in __n (its field n may be a member); the members are not
         * written in AMF0. */
        if (luaL_getmetafield(L, t, "__n") == LUA_TNIL) {
            lua_pushliteral(L, "n");
            lua_rawget(L, t);
        }
        n = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum)
            n = (lua_Integer)lua_rawlen(L, t);
        if (n < 0)
            luaL_error(L, "array field n is negative");
    } else {
        rtmp_l_amf_is_sequence(L, t, &n);
    }
    if (n > 0xFFFFFFFFLL)
        luaL_error(L, "cannot encode an array longer than 2^32-1 as AMF0");
    enc_check(e, rtmp_amf0_write_strict_array_start(e->out, (uint32_t)n), "an array");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        int marked = 0;
        if (refs || sw) {
            lua_pushinteger(L, i);
            marked = ref_marked(L, refs, lua_gettop(L)) * AS_REF | ref_marked(L, sw, lua_gettop(L)) * AS_AMF3;
            lua_pop(L, 1);
        }
        enc_value(e, lua_gettop(L), depth, marked);
        lua_pop(L, 1);
    }
    lua_settop(L, base);
}

static void enc_table(enc *e, int t, int depth, int as_ref)
{
    lua_State *L = e->L;
    int kind = rtmp_l_amf_kind(L, t);
    if (kind == K_XMLDOC) {
        size_t len;
        lua_getfield(L, t, "xml");
        const char *x = lua_tolstring(L, -1, &len);
        if (!x || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "xmldoc without a string field xml");
        enc_check(e, rtmp_amf0_write_xml_document(e->out, x, len), "an XML document");
        lua_pop(L, 1);
        return;
    }
    if (kind == K_DATE) {
        lua_getfield(L, t, "time");
        int isnum;
        double ms = lua_tonumberx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "date without a number field time");
        lua_getfield(L, t, "tz");
        lua_Integer tz = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isnum);
        if (!isnum || tz < -32768 || tz > 32767)
            luaL_error(L, "date field tz is not an integer in -32768 .. 32767");
        lua_pop(L, 2);
        enc_check(e, rtmp_amf0_write_date(e->out, ms, (int16_t)tz), "a date");
        return;
    }

    luaL_checkstack(L, 4, "AMF0 nesting");
    lua_pushvalue(L, t);
    int has_index = lua_rawget(L, e->index) != LUA_TNIL;
    lua_Integer ix = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (has_index && as_ref) {
        enc_check(e, rtmp_amf0_write_reference(e->out, (uint16_t)ix), "a reference");
        return;
    }
    lua_pushvalue(L, t);
    if (lua_rawget(L, e->visiting) != LUA_TNIL)
        luaL_error(L, "cannot encode a cycle as AMF0");
    lua_pop(L, 1);
    if (depth >= e->max_depth)
        rtmp_l_amf_raise(L, RTMP_ERR_AMF_DEPTH, "cannot encode tables nested deeper than %d as AMF0", e->max_depth);

    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, e->visiting);
    if (!has_index && e->nrefs <= 0xFFFF) {
        lua_pushvalue(L, t);
        lua_pushinteger(L, e->nrefs);
        lua_rawset(L, e->index);
    }
    e->nrefs++;

    if (kind == K_ARRAY)
        enc_elements(e, t, depth + 1);
    else
        enc_props(e, t, depth + 1, kind);

    lua_pushvalue(L, t);
    lua_pushnil(L);
    lua_rawset(L, e->visiting);
}

/* Encode the value at absolute index idx, inside depth containers. */
/* [-0, +0, -] whether the value at idx has a metatable (plain tables,
 * the common case, have none and need no kind lookup here). */
static int has_meta(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    lua_pop(L, 1);
    return 1;
}

static void enc_value(enc *e, int idx, int depth, int flags)
{
    lua_State *L = e->L;
    int rc;
    /* Kinds with no AMF0 form, and positions that came switched, are
     * written as 0x11 and one AMF3 value. */
    if ((flags & AS_AMF3) || (lua_istable(L, idx) && has_meta(L, idx) && rtmp_l_amf_kind(L, idx) > K_XMLDOC)) {
        enc_check(e, rtmp_amf0_write_avmplus(e->out), "a switch to AMF3");
        rtmp_l_amf3_encode_value(L, e->amf3, idx, e->out, e->max_depth - depth);
        return;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        rc = rtmp_amf0_write_null(e->out);
        break;
    case LUA_TBOOLEAN:
        rc = rtmp_amf0_write_boolean(e->out, lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        rc = rtmp_amf0_write_number(e->out, (double)lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        rc = rtmp_amf0_write_string(e->out, s, len);
        break;
    }
    case LUA_TUSERDATA: {
        int m = rtmp_l_amf_sentinel(L, idx);
        if (m == RTMP_AMF0_NULL)
            rc = rtmp_amf0_write_null(e->out);
        else if (m == RTMP_AMF0_UNDEFINED)
            rc = rtmp_amf0_write_undefined(e->out);
        else if (m == RTMP_AMF0_UNSUPPORTED)
            rc = rtmp_amf0_write_unsupported(e->out);
        else
            return (void)luaL_error(L, "cannot encode a userdata as AMF0");
        break;
    }
    case LUA_TTABLE:
        enc_table(e, idx, depth, flags & AS_REF);
        return;
    default:
        return (void)luaL_error(L, "cannot encode a %s as AMF0", luaL_typename(L, idx));
    }
    enc_check(e, rc, "a value");
}

void rtmp_l_amf0_encode_values(lua_State *L, int first, int last, rtmp_buf **out, int max_depth)
{
    luaL_checkstack(L, 5, NULL);
    enc e = { .L = L, .out = out, .max_depth = max_depth };
    if (e.max_depth > RTMP_AMF_MAX_DEPTH)
        e.max_depth = RTMP_AMF_MAX_DEPTH;
    lua_newtable(L);
    e.visiting = lua_gettop(L);
    lua_newtable(L);
    e.index = lua_gettop(L);
    lua_pushnil(L);
    e.amf3 = lua_gettop(L);
    for (int i = first; i <= last; i++)
        enc_value(&e, i, 0, 0);
    lua_pop(L, 3);
}

/* rtmp.amf0.encode(...) -> string */
static int l_encode(lua_State *L)
{
    int n = lua_gettop(L);
    rtmp_buf **slot = rtmp_l_slot_new(L);
    rtmp_l_amf0_encode_values(L, 1, n, slot, RTMP_DEFAULT_AMF_DEPTH);
    rtmp_l_slot_push(L, slot);
    return 1;
}

/* [-0, +0, e] write values[1 .. values.n] (or #values) of the table at
 * absolute index t to *out, nesting at most max_depth levels, with the
 * switch to AMF3 at the positions that rtmp.amf0.decode recorded in the
 * __amf3 field of the metatable. */
static void encode_values(lua_State *L, int t, rtmp_buf **out, int max_depth)
{
    int base = lua_gettop(L);
    lua_getfield(L, t, "n");
    int isnum;
    lua_Integer n = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum)
        n = (lua_Integer)lua_rawlen(L, t);
    luaL_argcheck(L, n >= 0 && n <= 0xFFFFFF, t, "bad field n");
    int sw = 0;
    if (luaL_getmetafield(L, t, "__amf3") != LUA_TNIL)
        sw = lua_gettop(L);
    luaL_checkstack(L, 6, NULL);
    enc e = { .L = L, .out = out, .max_depth = max_depth };
    lua_newtable(L);
    e.visiting = lua_gettop(L);
    lua_newtable(L);
    e.index = lua_gettop(L);
    lua_pushnil(L);
    e.amf3 = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        int flags = 0;
        if (sw) {
            lua_pushinteger(L, i);
            flags = ref_marked(L, lua_istable(L, sw) ? sw : 0, lua_gettop(L)) * AS_AMF3;
            lua_pop(L, 1);
        }
        enc_value(&e, lua_gettop(L), 0, flags);
        lua_pop(L, 1);
    }
    lua_settop(L, base);
}

/* rtmp.amf0.encode_values(values) -> string */
static int l_encode_values(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    rtmp_buf **slot = rtmp_l_slot_new(L);
    encode_values(L, 1, slot, RTMP_DEFAULT_AMF_DEPTH);
    rtmp_l_slot_push(L, slot);
    return 1;
}

/* (values, max_depth): encode_values into a buffer that is dropped. */
static int dry_write(lua_State *L)
{
    rtmp_buf **slot = rtmp_l_slot_new(L);
    encode_values(L, 1, slot, (int)lua_tointeger(L, 2));
    rtmp_buf_unref(*slot);
    *slot = NULL;
    return 0;
}

/* rtmp.amf0.decode(s [, max_depth]) -> values | nil, message, code */
static int l_decode(lua_State *L)
{
    size_t len, off = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    int depth = rtmp_l_amf_opt_depth(L, 2);
    rtmp_amf3_str cls = { NULL, 0 };
    int rc = decode_all(L, (const uint8_t *)s, len, depth, &off, &cls);
    if (rc == 0)
        return 1;
    int named = rc == RTMP_ERR_AMF_EXTERNALIZABLE && cls.s;
    return rtmp_l_amf_fail(L, rc, off, named ? cls.s : NULL, cls.len);
}

/* [-0, +1, e] a new table of kind with the pairs { {k, v}, ... } of the
 * table at arg (and its string-keyed fields); metatable with __keys. */
static void make_props(lua_State *L, int arg, int kind)
{
    lua_newtable(L);
    int t = lua_gettop(L);
    lua_newtable(L);
    int keys = t + 1;
    lua_Integer nkeys = 0, n = 0;
    if (!lua_isnoneornil(L, arg)) {
        luaL_checktype(L, arg, LUA_TTABLE);
        n = (lua_Integer)lua_rawlen(L, arg);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, arg, i) != LUA_TTABLE)
                luaL_error(L, "bad entry %d (a {key, value} pair expected)", (int)i);
            if (lua_rawgeti(L, -1, 1) != LUA_TSTRING)
                luaL_error(L, "bad entry %d (string key expected)", (int)i);
            lua_rawgeti(L, -2, 2);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                rtmp_l_push_null(L);
            }
            lua_pushvalue(L, -2);
            if (lua_rawget(L, t) == LUA_TNIL) {
                lua_pushvalue(L, -3);
                lua_rawseti(L, keys, ++nkeys);
            }
            lua_pop(L, 1);
            lua_rawset(L, t);
            lua_pop(L, 1);
        }
        lua_pushnil(L);
        while (lua_next(L, arg)) {
            if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= n) {
                lua_pop(L, 1);
                continue;
            }
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "bad field (string key expected, got %s)", luaL_typename(L, -2));
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        }
    }
    lua_createtable(L, 0, 3);
    rtmp_l_amf_set_kind(L, kind);
    lua_pushvalue(L, keys);
    lua_setfield(L, -2, "__keys");
    lua_remove(L, keys);
    lua_setmetatable(L, t);
}

/* rtmp.amf0.object{ {k, v}, ... } */
static int l_object(lua_State *L)
{
    make_props(L, 1, K_OBJECT);
    return 1;
}

/* rtmp.amf0.ecma{ {k, v}, ... } */
static int l_ecma(lua_State *L)
{
    make_props(L, 1, K_ECMA);
    return 1;
}

/* rtmp.amf0.typed(class, { {k, v}, ... }) */
static int l_typed(lua_State *L)
{
    luaL_checkstring(L, 1);
    make_props(L, 2, K_TYPED);
    lua_getmetatable(L, -1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "__class");
    lua_pop(L, 1);
    return 1;
}

/* rtmp.amf0.array{ v1, v2, ... [, n = count] } */
static int l_array(lua_State *L)
{
    lua_Integer n = 0;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        int isnum;
        lua_getfield(L, 1, "n");
        n = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum)
            n = (lua_Integer)lua_rawlen(L, 1);
        luaL_argcheck(L, n >= 0 && n <= 0xFFFFFFFFLL, 1, "bad field n");
    }
    lua_createtable(L, n < 0x10000 ? (int)n : 0, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) == LUA_TNIL) {
            lua_pop(L, 1);
            rtmp_l_push_null(L);
        }
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    rtmp_l_amf_push_mt(L, K_ARRAY);
    lua_setmetatable(L, -2);
    return 1;
}

/* rtmp.amf0.date(ms [, tz]) */
static int l_date(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    lua_Integer tz = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, tz >= -32768 && tz <= 32767, 2, "out of range -32768 .. 32767");
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, ms);
    lua_setfield(L, -2, "time");
    lua_pushinteger(L, tz);
    lua_setfield(L, -2, "tz");
    rtmp_l_amf_push_mt(L, K_DATE);
    lua_setmetatable(L, -2);
    return 1;
}

/* rtmp.amf0.validate(s [, max_depth]) -> count | nil, message, code:
 * the core's walk (rtmp_amf0_walk; no Lua values built). */
static int l_validate(lua_State *L)
{
    size_t len, n, off;
    const char *s = luaL_checklstring(L, 1, &len);
    int rc = rtmp_amf0_walk((const uint8_t *)s, len, rtmp_l_amf_opt_depth(L, 2), &n, &off);
    if (rc < 0)
        return rtmp_l_amf_fail(L, rc, off, NULL, 0);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* rtmp.amf0.xmldoc(text) */
static int l_xmldoc(lua_State *L)
{
    return rtmp_l_amf_new_text(L, K_XMLDOC, "xml");
}

/* rtmp.amf0.type(v) -> "number", ..., or nil for values with no AMF0 form */
static int l_type(lua_State *L)
{
    luaL_checkany(L, 1);
    rtmp_l_amf_push_type(L, 1, 0);
    return 1;
}

static const luaL_Reg amf0_funcs[] = {
    { "encode", l_encode },
    { "encode_values", l_encode_values },
    { "decode", l_decode },
    { "xmldoc", l_xmldoc },
    { "validate", l_validate },
    { "object", l_object },
    { "ecma", l_ecma },
    { "array", l_array },
    { "date", l_date },
    { "typed", l_typed },
    { "type", l_type },
    { NULL, NULL },
};

void rtmp_l_open_amf0(lua_State *L)
{
    for (int k = K_OBJECT; k < K_TYPED; k++) {
        rtmp_l_amf_push_mt(L, k);
        lua_pop(L, 1);
    }

    luaL_newlib(L, amf0_funcs);
    rtmp_l_amf_push_unsupported(L);
    lua_setfield(L, -2, "unsupported");
    lua_setfield(L, -2, "amf0");
    rtmp_l_push_null(L);
    lua_setfield(L, -2, "null");
    rtmp_l_push_undefined(L);
    lua_setfield(L, -2, "undefined");
}
