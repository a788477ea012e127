/*
 * l_amf3.c: AMF3 <-> Lua, rtmp.amf3; the AMF3 half of the AMF0 switch.
 *
 * One Lua value model serves AMF0 and AMF3 (docs/AMF.md has the tables):
 *
 *   AMF3               Lua (decode)                         encode from
 *   undefined          rtmp.undefined                       the same
 *   null               rtmp.null                            rtmp.null or nil
 *   false, true        boolean                              boolean
 *   integer            integer (math.type "integer")        an integer in
 *                                                           -2^28 .. 2^28-1
 *   double             float                                a float, or an
 *                                                           integer outside
 *   string             string                               string
 *   XMLDocument        { xml = text }, __amf "xmldoc"       the same
 *   date               { time = ms }, __amf "date"          the same (tz is
 *                                                           not written)
 *   array              dense only: { 1..n, n = n },         the same, a plain
 *                      __amf "array"; with an associative   sequence, or an
 *                      part: dense 1..n, string keys,       "ecma" table (all
 *                      metatable { __amf = "array",         keys associative)
 *                      __n = n, __keys? }
 *   object             anonymous dynamic: as an AMF0        such tables, plain
 *                      object ({ __amf = "object",          tables that are
 *                      __keys? }); with a class, sealed     not sequences
 *                      members or not dynamic: metatable
 *                      { __amf = "typed" (or "object" for
 *                      class ""), __class, __sealed =
 *                      {names} (when any), __dynamic = false
 *                      (when not), __keys? (dynamic order) }
 *   externalizable     { value = body }, { __amf = "external", __class }
 *   XML                { xml = text }, __amf "xml"
 *   ByteArray          { data = bytes }, __amf "bytearray"
 *   Vector.<int>,      { 1..n, n = n }, __amf "vector_int",
 *   <uint>, <Number>   "vector_uint", "vector_double"; __fixed = true
 *                      for fixed-length vectors
 *   Vector.<T>         the same, "vector_object", __type = T
 *   Dictionary         { {key, value}, ... } in wire order, __amf
 *                      "dictionary", __weak = true for weak keys
 *   reference          the same Lua table (cycles included)
 *
 * Key order as in AMF0: __keys (and __sealed for sealed members) first,
 * then the other keys sorted byte-wise.  Encoding writes a reference
 * wherever AMF3 allows one, so such encoders' bytes round-trip: a
 * non-empty string written before becomes a string reference, a table written before an object
 * reference, traits equal to earlier ones (class, sealed names, dynamic,
 * externalizable) a traits reference.
 *
 * Externalizable objects have no generic body: a class needs a handler,
 * rtmp.amf3.register(class, "value") for a body that is one AMF3 value
 * (flex.messaging.io.ArrayCollection and ObjectProxy come registered) or
 * { read = function(bytes, pos) return value, next_pos end, write =
 * function(value) return bytes end } for any other body (read gets the
 * bytes of the AMF3 input and the position of the body; it cannot see
 * the reference tables).  Without a handler, decoding fails with
 * AMF_EXTERNALIZABLE.
 *
 * One message body is one AMF3 context: the reference tables start empty
 * for each call of rtmp.amf3.decode/encode (shared by all its values) and
 * for each AMF0 message, whose 0x11 switches all continue the same tables
 * (Red5 reads and writes command bodies so).  Nesting is bounded as in
 * AMF0 (max_depth container levels: arrays, objects, object vectors,
 * dictionaries), across an AMF0 -> AMF3 switch too.
 *
 * Functions: rtmp.amf3.encode(...) -> string; rtmp.amf3.decode(s
 * [, max_depth]) -> { values..., n = count } or nil, message, code;
 * constructors object, array, date, typed(class, pairs [, sealed
 * [, dynamic]]), xmldoc, xml, bytearray, vector(kind, items [, fixed
 * [, type]]), dictionary(pairs [, weak]), external(class, value),
 * value(v) (write v switched to AMF3 inside AMF0); register; type.
 */
#include <stdlib.h>
#include <string.h>

#include "l_amf.h"
#include "../core/amf0.h"
#include "../core/amf3.h"
#include "../core/error.h"

#define READER_MT "rtmp.amf3.reader"
#define ENC_MT "rtmp.amf3.enc"

static const char handlers_key = 'h';

/* [-0, +1, m] the handler of class cls (nil when none); returns its type. */
static int push_handler(lua_State *L, const char *cls, size_t len)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &handlers_key);
    lua_pushlstring(L, cls, len);
    int t = lua_rawget(L, -2);
    lua_remove(L, -2);
    return t;
}

/* Decoding */

typedef struct dec3 {
    lua_State *L;
    rtmp_amf3_reader *r;
    int objects;      /* stack index: object table, 1-based */
    int strings;      /* stack index: input pointer -> Lua string, for long
                         strings (a 1-byte reference must not copy a long
                         string again) and the whole input (slot 0) */
    const char *cls;  /* an externalizable class that failed */
    size_t clen;
} dec3;

/* [-0, +1, m] the string s[0 .. n) of the input as a Lua string.  Short
 * strings are interned by Lua; a long one is made once per input
 * position and shared by every reference to it. */
static void push_str(dec3 *d, const char *s, size_t n)
{
    lua_State *L = d->L;
    if (n <= 40) {
        lua_pushlstring(L, s, n);
        return;
    }
    if (lua_rawgetp(L, d->strings, s) == LUA_TSTRING)
        return;
    lua_pop(L, 1);
    lua_pushlstring(L, s, n);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, d->strings, s);
}

static int d3_value(dec3 *d, int depth);

static int is_container(int m)
{
    return m == RTMP_AMF3_ARRAY || m == RTMP_AMF3_OBJECT || m == RTMP_AMF3_VECTOR_OBJECT
           || m == RTMP_AMF3_DICTIONARY;
}

/* Key + value pairs up to the empty key into table t; keys in order are
 * appended to table keys.  *sorted cleared when they came unsorted.
 * *nkeys counts them. */
static int d3_members(dec3 *d, int t, int keys, int depth, lua_Integer *nkeys, int *sorted)
{
    lua_State *L = d->L;
    const char *prev = NULL;
    size_t prevn = 0;
    for (;;) {
        const char *k;
        size_t kn;
        int rc = rtmp_amf3_read_key(d->r, &k, &kn);
        if (rc <= 0)
            return rc;
        if (prev && rtmp_l_amf_key_cmp(prev, prevn, k, kn) >= 0)
            *sorted = 0;
        prev = k;
        prevn = kn;
        push_str(d, k, kn);
        if ((rc = d3_value(d, depth)) < 0)
            return rc;
        lua_pushvalue(L, -2);
        lua_rawseti(L, keys, ++*nkeys);
        lua_rawset(L, t);
    }
}

/* The table on top: an array after its head. */
static int d3_array(dec3 *d, const rtmp_amf3_head *h, int depth)
{
    lua_State *L = d->L;
    int t = lua_gettop(L), keys = t + 1;
    lua_newtable(L);
    lua_Integer nkeys = 0;
    int sorted = 1, rc;
    if ((rc = d3_members(d, t, keys, depth, &nkeys, &sorted)) < 0)
        return rc;
    for (uint32_t i = 1; i <= h->count; i++) {
        if ((rc = d3_value(d, depth)) < 0)
            return rc;
        lua_rawseti(L, t, i);
    }
    if (nkeys == 0) {
        lua_pushinteger(L, h->count);
        lua_setfield(L, t, "n");
        rtmp_l_amf_push_mt(L, K_ARRAY);
    } else {
        lua_createtable(L, 0, 3);
        rtmp_l_amf_set_kind(L, K_ARRAY);
        lua_pushinteger(L, h->count);
        lua_setfield(L, -2, "__n");
        if (!sorted) {
            lua_pushvalue(L, keys);
            lua_setfield(L, -2, "__keys");
        }
    }
    lua_setmetatable(L, t);
    lua_settop(L, t);
    return 0;
}

/* The table on top: an object after its head. */
static int d3_object(dec3 *d, const rtmp_amf3_head *h, int depth, const uint8_t *start)
{
    lua_State *L = d->L;
    int t = lua_gettop(L), rc;
    /* Copy the traits: the tables may move while members are read. */
    rtmp_amf3_traits tr = *rtmp_amf3_get_traits(d->r, h->traits);
    if (tr.external) {
        int ht = push_handler(L, tr.cls.s, tr.cls.len);
        if (ht == LUA_TSTRING) {
            lua_pop(L, 1);
            if ((rc = d3_value(d, depth)) < 0)
                return rc;
            lua_setfield(L, t, "value");
        } else if (ht == LUA_TTABLE && lua_getfield(L, -1, "read") == LUA_TFUNCTION) {
            /* read(input, pos) -> value, next pos: the whole input is one
             * Lua string per decode, made on first use. */
            size_t off = rtmp_amf3_offset(d->r), left = rtmp_amf3_remaining(d->r);
            push_str(d, (const char *)d->r->start, off + left);
            lua_pushinteger(L, (lua_Integer)off + 1);
            if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
                d->cls = tr.cls.s;
                d->clen = tr.cls.len;
                d->r->p = start;
                return RTMP_ERR_AMF_EXTERNALIZABLE;
            }
            int isnum;
            lua_Integer next = lua_tointegerx(L, -1, &isnum);
            if (!isnum || next < (lua_Integer)off + 1 || (size_t)(next - 1 - (lua_Integer)off) > left)
                return RTMP_ERR_AMF_TRUNCATED;
            d->r->p += next - 1 - (lua_Integer)off;
            lua_pop(L, 1);
            lua_setfield(L, t, "value");
            lua_pop(L, 1);
        } else {
            d->cls = tr.cls.s;
            d->clen = tr.cls.len;
            d->r->p = start;  /* the error names the object */
            return RTMP_ERR_AMF_EXTERNALIZABLE;
        }
        lua_createtable(L, 0, 2);
        rtmp_l_amf_set_kind(L, K_EXTERNAL);
        push_str(d, tr.cls.s, tr.cls.len);
        lua_setfield(L, -2, "__class");
        lua_setmetatable(L, t);
        lua_settop(L, t);
        return 0;
    }
    int sealed = t + 1, keys = t + 2;
    lua_createtable(L, (int)(tr.nsealed < 64 ? tr.nsealed : 64), 0);
    lua_newtable(L);
    for (uint32_t i = 0; i < tr.nsealed; i++) {
        rtmp_amf3_str name = rtmp_amf3_sealed_name(d->r, &tr, i);
        push_str(d, name.s, name.len);
        lua_pushvalue(L, -1);
        lua_rawseti(L, sealed, (lua_Integer)i + 1);
        if ((rc = d3_value(d, depth)) < 0)
            return rc;
        lua_rawset(L, t);
    }
    lua_Integer nkeys = 0;
    int sorted = 1;
    if (tr.dynamic && (rc = d3_members(d, t, keys, depth, &nkeys, &sorted)) < 0)
        return rc;
    if (tr.cls.len == 0 && tr.dynamic && tr.nsealed == 0 && sorted) {
        rtmp_l_amf_push_mt(L, K_OBJECT);
    } else {
        lua_createtable(L, 0, 5);
        rtmp_l_amf_set_kind(L, tr.cls.len ? K_TYPED : K_OBJECT);
        if (tr.cls.len) {
            push_str(d, tr.cls.s, tr.cls.len);
            lua_setfield(L, -2, "__class");
        }
        if (tr.nsealed) {
            lua_pushvalue(L, sealed);
            lua_setfield(L, -2, "__sealed");
        }
        if (!tr.dynamic) {
            lua_pushboolean(L, 0);
            lua_setfield(L, -2, "__dynamic");
        }
        if (!sorted) {
            lua_pushvalue(L, keys);
            lua_setfield(L, -2, "__keys");
        }
    }
    lua_setmetatable(L, t);
    lua_settop(L, t);
    return 0;
}

/* [-0, +1, m] a table holding field f = the bytes, with kind's shared metatable. */
static void push_text(lua_State *L, int kind, const char *f, const uint8_t *p, size_t n)
{
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, (const char *)p, n);
    lua_setfield(L, -2, f);
    rtmp_l_amf_push_mt(L, kind);
    lua_setmetatable(L, -2);
}

/* The table on top: a vector or dictionary after its head. */
static int d3_sequence(dec3 *d, const rtmp_amf3_head *h, int depth)
{
    lua_State *L = d->L;
    int t = lua_gettop(L), rc, kind;
    for (uint32_t i = 0; i < h->count; i++) {
        switch (h->marker) {
        case RTMP_AMF3_VECTOR_INT:
            lua_pushinteger(L, rtmp_amf3_vector_int(h->bytes, i));
            break;
        case RTMP_AMF3_VECTOR_UINT:
            lua_pushinteger(L, rtmp_amf3_vector_uint(h->bytes, i));
            break;
        case RTMP_AMF3_VECTOR_DOUBLE:
            lua_pushnumber(L, rtmp_amf3_vector_double(h->bytes, i));
            break;
        case RTMP_AMF3_VECTOR_OBJECT:
            if ((rc = d3_value(d, depth)) < 0)
                return rc;
            break;
        default: /* dictionary */
            lua_createtable(L, 2, 0);
            if ((rc = d3_value(d, depth)) < 0)
                return rc;
            lua_rawseti(L, -2, 1);
            if ((rc = d3_value(d, depth)) < 0)
                return rc;
            lua_rawseti(L, -2, 2);
            break;
        }
        lua_rawseti(L, t, (lua_Integer)i + 1);
    }
    kind = h->marker == RTMP_AMF3_DICTIONARY ? K_DICT : K_VINT + (h->marker - RTMP_AMF3_VECTOR_INT);
    if (kind != K_DICT) {
        lua_pushinteger(L, h->count);
        lua_setfield(L, t, "n");
    }
    if (!h->fixed && kind != K_VOBJECT) {
        rtmp_l_amf_push_mt(L, kind);
    } else {
        lua_createtable(L, 0, 3);
        rtmp_l_amf_set_kind(L, kind);
        if (h->fixed) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, kind == K_DICT ? "__weak" : "__fixed");
        }
        if (kind == K_VOBJECT) {
            push_str(d, h->type.s, h->type.len);
            lua_setfield(L, -2, "__type");
        }
    }
    lua_setmetatable(L, t);
    return 0;
}

/* [-0, +1, m] decode one value and push it; on error push nothing useful
 * (the caller resets the stack) and return the code with the reader at
 * the failing item.  depth: how many more containers may open. */
static int d3_value(dec3 *d, int depth)
{
    lua_State *L = d->L;
    rtmp_amf3_reader *r = d->r;
    int m = rtmp_amf3_peek_marker(r), rc;
    int32_t i;
    double v;
    const char *s;
    size_t n;
    rtmp_amf3_head h;

    luaL_checkstack(L, 12, "AMF3 nesting");
    switch (m) {
    case RTMP_AMF3_UNDEFINED:
    case RTMP_AMF3_NULL:
    case RTMP_AMF3_FALSE:
    case RTMP_AMF3_TRUE:
        r->p++;
        if (m == RTMP_AMF3_UNDEFINED)
            rtmp_l_push_undefined(L);
        else if (m == RTMP_AMF3_NULL)
            rtmp_l_push_null(L);
        else
            lua_pushboolean(L, m == RTMP_AMF3_TRUE);
        return 0;
    case RTMP_AMF3_INTEGER:
        if ((rc = rtmp_amf3_read_integer(r, &i)) == 0)
            lua_pushinteger(L, i);
        return rc;
    case RTMP_AMF3_DOUBLE:
        if ((rc = rtmp_amf3_read_double(r, &v)) == 0)
            lua_pushnumber(L, v);
        return rc;
    case RTMP_AMF3_STRING:
        if ((rc = rtmp_amf3_read_string(r, &s, &n)) < 0)
            return rc;
        push_str(d, s, n);
        return 0;
    default:
        if (m < 0)
            return m;
        if (m > RTMP_AMF3_DICTIONARY)
            return RTMP_ERR_AMF_MARKER;
        break;
    }
    const uint8_t *start = r->p;
    if ((rc = rtmp_amf3_read_head(r, &h)) < 0)
        return rc;
    if (rc == RTMP_AMF3_REF) {
        lua_rawgeti(L, d->objects, (lua_Integer)h.ref + 1);
        return 0;
    }
    if (is_container(m) && depth <= 0) {
        r->p = start;
        return RTMP_ERR_AMF_DEPTH;
    }
    switch (m) {
    case RTMP_AMF3_XML_DOC:
        push_text(L, K_XMLDOC, "xml", h.bytes, h.count);
        break;
    case RTMP_AMF3_XML:
        push_text(L, K_XML, "xml", h.bytes, h.count);
        break;
    case RTMP_AMF3_BYTE_ARRAY:
        push_text(L, K_BYTEARRAY, "data", h.bytes, h.count);
        break;
    case RTMP_AMF3_DATE:
        lua_createtable(L, 0, 1);
        lua_pushnumber(L, h.date);
        lua_setfield(L, -2, "time");
        rtmp_l_amf_push_mt(L, K_DATE);
        lua_setmetatable(L, -2);
        break;
    default:
        /* Counts are the peer's word, checked against the bytes left:
         * preallocate a little, let tables grow with what arrives. */
        lua_createtable(L, h.count < 1024 ? (int)h.count : 1024, 1);
        break;
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->objects, r->nobjects);
    switch (m) {
    case RTMP_AMF3_ARRAY:
        return d3_array(d, &h, depth - 1);
    case RTMP_AMF3_OBJECT:
        return d3_object(d, &h, depth - 1, start);
    case RTMP_AMF3_VECTOR_INT:
    case RTMP_AMF3_VECTOR_UINT:
    case RTMP_AMF3_VECTOR_DOUBLE:
    case RTMP_AMF3_VECTOR_OBJECT:
    case RTMP_AMF3_DICTIONARY:
        return d3_sequence(d, &h, depth - 1);
    default:
        return 0;
    }
}

static int reader_gc(lua_State *L)
{
    rtmp_amf3_reader *r = luaL_checkudata(L, 1, READER_MT);
    rtmp_amf3_reader_free(r);
    return 0;
}

/* [-0, +1, m] a decoding context over p[0 .. len): the reader (its
 * tables freed by __gc), user values 1 the object table, 2 the string
 * cache (dec3). */
static rtmp_amf3_reader *push_reader(lua_State *L, const uint8_t *p, size_t len)
{
    rtmp_amf3_reader *r = lua_newuserdatauv(L, sizeof *r, 2);
    rtmp_amf3_reader_init(r, p, len);
    luaL_setmetatable(L, READER_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 2);
    return r;
}

/* [-0, +2, m] the object table and string cache of the context at ctx;
 * d->objects and d->strings name them. */
static void open_ctx(lua_State *L, dec3 *d, int ctx)
{
    d->r = lua_touserdata(L, ctx);
    lua_getiuservalue(L, ctx, 1);
    d->objects = lua_gettop(L);
    lua_getiuservalue(L, ctx, 2);
    d->strings = lua_gettop(L);
}

int rtmp_l_amf3_push_value(lua_State *L, int ctx, const uint8_t *start, size_t len, size_t at, int depth,
                           size_t *next, rtmp_amf3_str *cls)
{
    luaL_checkstack(L, 4, NULL);
    if (lua_isnil(L, ctx)) {
        push_reader(L, start, len);
        lua_replace(L, ctx);
    }
    int base = lua_gettop(L);
    dec3 d = { .L = L };
    open_ctx(L, &d, ctx);
    d.r->p = d.r->start + at;
    int rc = d3_value(&d, depth > RTMP_AMF_MAX_DEPTH ? RTMP_AMF_MAX_DEPTH : depth);
    *next = rtmp_amf3_offset(d.r);
    if (rc < 0) {
        if (cls)
            *cls = (rtmp_amf3_str){ d.cls, d.clen };
        lua_settop(L, base);
        return rc;
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 0;
}

uint32_t rtmp_l_amf3_ctx_objrefs(lua_State *L, int ctx)
{
    rtmp_amf3_reader *r = luaL_testudata(L, ctx, READER_MT);
    return r ? r->nobjrefs : 0;
}

void rtmp_l_amf3_ctx_free(lua_State *L, int ctx)
{
    rtmp_amf3_reader *r = luaL_testudata(L, ctx, READER_MT);
    if (r)
        rtmp_amf3_reader_free(r);
}

static void encode_range(lua_State *L, int ctx, int first, int last, rtmp_buf **out, int depth);

/* (values, max_depth): encode values[1 .. values.n], one after the other
 * in one context (as rtmp.amf3.encode writes them), into a buffer that is
 * dropped. */
static int dry_write(lua_State *L)
{
    int depth = (int)lua_tointeger(L, 2);
    lua_getfield(L, 1, "n");
    lua_Integer n = lua_tointeger(L, -1);
    lua_settop(L, 1);
    rtmp_buf **slot = rtmp_l_slot_new(L);  /* 2 */
    lua_pushnil(L);                            /* 3: the context */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        encode_range(L, 3, 4, 4, slot, depth);
        lua_pop(L, 1);
    }
    rtmp_buf_unref(*slot);
    *slot = NULL;
    return 0;
}

/* rtmp.amf3.decode(s [, max_depth]) -> values | nil, message, code */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int depth = rtmp_l_amf_opt_depth(L, 2);
    lua_settop(L, 1);
    dec3 d = { .L = L };
    push_reader(L, (const uint8_t *)s, len);  /* 2: one context for all values */
    lua_newtable(L);                          /* 3: values */
    open_ctx(L, &d, 2);                       /* 4, 5 */
    lua_Integer n = 0;
    int rc = 0;
    while (rtmp_amf3_remaining(d.r) > 0) {
        if ((rc = d3_value(&d, depth)) < 0)
            break;
        lua_rawseti(L, 3, ++n);
    }
    size_t off = rtmp_amf3_offset(d.r);
    uint32_t refs = d.r->nobjrefs;
    rtmp_amf3_reader_free(d.r);
    if (rc == 0) {
        lua_settop(L, 3);
        lua_pushinteger(L, n);
        lua_setfield(L, 3, "n");
        if (refs == 0 || !rtmp_l_amf_too_deep(L, dry_write, depth))
            return 1;
        rc = RTMP_ERR_AMF_DEPTH;
        off = len;  /* no one byte is to blame: the whole input is */
    }
    lua_settop(L, 1);
    int named = rc == RTMP_ERR_AMF_EXTERNALIZABLE && d.cls;
    return rtmp_l_amf_fail(L, rc, off, named ? d.cls : NULL, d.clen);
}

/* rtmp.amf3.validate(s [, max_depth]) -> count | nil, message, code:
 * the core's walk (rtmp_amf3_walk; no Lua values built; an
 * externalizable object fails, handlers are not consulted). */
static int l_validate(lua_State *L)
{
    size_t len, n, off;
    const char *s = luaL_checklstring(L, 1, &len);
    int rc = rtmp_amf3_walk((const uint8_t *)s, len, rtmp_l_amf_opt_depth(L, 2), &n, &off);
    if (rc < 0)
        return rtmp_l_amf_fail(L, rc, off, NULL, 0);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* Encoding */

/* The tables' sizes of an encoding context; the context userdata's user
 * values 1, 2, 3 map strings, tables and traits signatures to indexes. */
typedef struct enc3_count {
    uint32_t nstrings, nobjects, ntraits;
} enc3_count;

typedef struct enc3 {
    lua_State *L;
    rtmp_buf **out;
    int strings, objects, traits;  /* stack indexes: value -> index */
    enc3_count *c;
} enc3;

static void e3_value(enc3 *e, int idx, int depth);

static void e3_check(enc3 *e, int rc, const char *what)
{
    if (rc == RTMP_ERR_NOMEM)
        luaL_error(e->L, "not enough memory");
    if (rc < 0)
        luaL_error(e->L, "cannot encode %s as AMF3", what);
}

/* A UTF-8-vr from the string at idx: a reference when written before. */
static void e3_string(enc3 *e, int idx)
{
    lua_State *L = e->L;
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len == 0) {
        e3_check(e, rtmp_amf3_write_string_vr(e->out, s, 0), "a string");
        return;
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, e->strings) != LUA_TNIL) {
        uint32_t i = (uint32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        e3_check(e, rtmp_amf3_write_string_ref(e->out, i), "a string reference");
        return;
    }
    lua_pop(L, 1);
    if (len > RTMP_AMF3_LEN_MAX)
        luaL_error(L, "cannot encode a string longer than 2^28-1 bytes as AMF3");
    if (e->c->nstrings <= RTMP_AMF3_LEN_MAX) {
        lua_pushvalue(L, idx);
        lua_pushinteger(L, e->c->nstrings);
        lua_rawset(L, e->strings);
    }
    e->c->nstrings++;
    e3_check(e, rtmp_amf3_write_string_vr(e->out, s, len), "a string");
}

/* [-0, +1, e] the member keys of table t in writing order, as a table
 * { key string, original key, ... }: the string entries of the list
 * tables at list1, list2 (0: none) that are set in t, then every other
 * key sorted byte-wise.  Skipped: integer keys 1..dense, the key "n" when
 * skip_n, and the names in table exclude (0: none).  Keys must be
 * strings or numbers (their string form is written). */
static void ordered_keys(lua_State *L, int t, int list1, int list2, lua_Integer dense, int skip_n, int exclude)
{
    luaL_checkstack(L, 10, "AMF3 nesting");
    lua_newtable(L);
    int res = lua_gettop(L), seen = res + 1;
    lua_newtable(L);
    lua_Integer nres = 0;
    if (exclude) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, exclude);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, exclude, i);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
        }
    }
    int lists[2] = { list1, list2 };
    for (int li = 0; li < 2; li++) {
        if (!lists[li])
            continue;
        lua_Integer n = (lua_Integer)lua_rawlen(L, lists[li]);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, lists[li], i) != LUA_TSTRING)
                luaL_error(L, "%s entry %d is not a string", li == 0 ? "__sealed" : "__keys", (int)i);
            int k = lua_gettop(L);
            lua_pushvalue(L, k);
            int dup = lua_rawget(L, seen) != LUA_TNIL;
            lua_pushvalue(L, k);
            int absent = lua_rawget(L, t) == LUA_TNIL;
            lua_pop(L, 2);
            if (!dup && !absent) {
                lua_pushvalue(L, k);
                lua_pushboolean(L, 1);
                lua_rawset(L, seen);
                lua_pushvalue(L, k);
                lua_rawseti(L, res, ++nres);
                lua_rawseti(L, res, ++nres);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    rtmp_l_amf_other_keys(L, t, seen, res, dense, skip_n, 1);
    lua_settop(L, res);
}

/* Key + value pairs from an ordered_keys table at keys, then the empty key. */
static void e3_members(enc3 *e, int t, int keys, int depth)
{
    lua_State *L = e->L;
    lua_Integer n = (lua_Integer)lua_rawlen(L, keys);
    for (lua_Integer i = 1; i <= n; i += 2) {
        lua_rawgeti(L, keys, i);
        if (lua_rawlen(L, -1) == 0)
            luaL_error(L, "cannot encode an empty key as AMF3 (the empty key ends the members)");
        e3_string(e, lua_gettop(L));
        lua_rawgeti(L, keys, i + 1);
        lua_rawget(L, t);
        e3_value(e, lua_gettop(L), depth);
        lua_pop(L, 2);
    }
    e3_check(e, rtmp_amf3_write_string_vr(e->out, "", 0), "an end of members");
}

/* [-0, +0, -] the metafield f of t if it is a table: its index, else 0
 * (nothing pushed). */
static int meta_table(lua_State *L, int t, const char *f)
{
    if (luaL_getmetafield(L, t, f) == LUA_TNIL)
        return 0;
    if (lua_istable(L, -1))
        return lua_gettop(L);
    lua_pop(L, 1);
    return 0;
}

/* [-0, +0, -] the integer length of a sequence-like table: __n, else
 * field n, else its raw length.  *from_n: it came from field n. */
static lua_Integer seq_length(lua_State *L, int t, int *from_n)
{
    int isnum = 0;
    lua_Integer n = 0;
    *from_n = 0;
    if (luaL_getmetafield(L, t, "__n") != LUA_TNIL) {
        n = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || n < 0)
            luaL_error(L, "array __n is not a non-negative integer");
        return n;
    }
    lua_pushliteral(L, "n");
    lua_rawget(L, t);
    n = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (isnum) {
        if (n < 0)
            luaL_error(L, "array field n is negative");
        *from_n = 1;
        return n;
    }
    return (lua_Integer)lua_rawlen(L, t);
}

static void e3_object(enc3 *e, int t, int depth, int kind)
{
    lua_State *L = e->L;
    int base = lua_gettop(L);
    size_t clen = 0;
    const char *cls = "";
    if (kind != K_OBJECT) {
        if (luaL_getmetafield(L, t, "__class") != LUA_TSTRING)
            luaL_error(L, "%s table without a string __class", rtmp_l_amf_kinds[kind]);
        cls = lua_tolstring(L, -1, &clen);  /* anchored by the metatable */
        lua_pop(L, 1);
    }
    int sealed = kind == K_EXTERNAL ? 0 : meta_table(L, t, "__sealed");
    int dynamic = 1;
    if (kind == K_EXTERNAL) {
        dynamic = 0;
    } else if (luaL_getmetafield(L, t, "__dynamic") != LUA_TNIL) {
        dynamic = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_Integer nsealed = sealed ? (lua_Integer)lua_rawlen(L, sealed) : 0;
    if (nsealed > (RTMP_AMF3_U29_MAX >> 4))
        luaL_error(L, "too many sealed members for AMF3");

    /* The traits, or a reference to equal ones. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, kind == K_EXTERNAL ? 'E' : dynamic ? 'D' : 'S');
    luaL_addlstring(&b, (const char *)&clen, sizeof clen);
    luaL_addlstring(&b, cls, clen);
    for (lua_Integer i = 1; i <= nsealed; i++) {
        if (lua_rawgeti(L, sealed, i) != LUA_TSTRING)
            luaL_error(L, "__sealed entry %d is not a string", (int)i);
        size_t nl;
        const char *ns = lua_tolstring(L, -1, &nl);
        lua_pop(L, 1);  /* anchored in sealed */
        luaL_addlstring(&b, (const char *)&nl, sizeof nl);
        luaL_addlstring(&b, ns, nl);
    }
    luaL_pushresult(&b);
    int sig = lua_gettop(L);
    lua_pushvalue(L, sig);
    if (lua_rawget(L, e->traits) != LUA_TNIL) {
        e3_check(e, rtmp_amf3_write_traits_ref(e->out, (uint32_t)lua_tointeger(L, -1)), "a traits reference");
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        if (e->c->ntraits <= (RTMP_AMF3_U29_MAX >> 2)) {
            lua_pushvalue(L, sig);
            lua_pushinteger(L, e->c->ntraits);
            lua_rawset(L, e->traits);
        }
        e->c->ntraits++;
        e3_check(e, rtmp_amf3_write_traits(e->out, (uint32_t)nsealed, dynamic, kind == K_EXTERNAL), "traits");
        lua_pushlstring(L, cls, clen);
        e3_string(e, lua_gettop(L));
        lua_pop(L, 1);
        for (lua_Integer i = 1; i <= nsealed; i++) {
            lua_rawgeti(L, sealed, i);
            e3_string(e, lua_gettop(L));
            lua_pop(L, 1);
        }
    }

    if (kind == K_EXTERNAL) {
        int ht = push_handler(L, cls, clen);
        if (ht == LUA_TSTRING) {
            lua_getfield(L, t, "value");
            e3_value(e, lua_gettop(L), depth);
        } else if (ht == LUA_TTABLE && lua_getfield(L, -1, "write") == LUA_TFUNCTION) {
            lua_getfield(L, t, "value");
            lua_call(L, 1, 1);
            size_t n;
            const char *body = lua_tolstring(L, -1, &n);
            if (!body || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "the write handler of %s did not return a string", cls);
            e3_check(e, rtmp_buf_append(e->out, body, n), "an externalizable body");
        } else {
            luaL_error(L, "no handler registered for externalizable class %s", cls);
        }
        lua_settop(L, base);
        return;
    }

    for (lua_Integer i = 1; i <= nsealed; i++) {
        lua_rawgeti(L, sealed, i);
        lua_rawget(L, t);
        e3_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
    }
    int keys_list = meta_table(L, t, "__keys");
    ordered_keys(L, t, keys_list, 0, 0, 0, sealed);
    int keys = lua_gettop(L);
    if (dynamic) {
        e3_members(e, t, keys, depth);
    } else if (lua_rawlen(L, keys) > 0) {
        lua_rawgeti(L, keys, 1);
        luaL_error(L, "member %s is not sealed and the object is not dynamic", lua_tostring(L, -1));
    }
    lua_settop(L, base);
}

static void e3_array(enc3 *e, int t, int depth, int kind)
{
    lua_State *L = e->L;
    int base = lua_gettop(L), from_n = 0;
    lua_Integer n = kind == K_ECMA ? 0 : seq_length(L, t, &from_n);
    if (n > RTMP_AMF3_LEN_MAX)
        luaL_error(L, "cannot encode an array longer than 2^28-1 as AMF3");
    int keys_list = meta_table(L, t, "__keys");
    ordered_keys(L, t, keys_list, 0, n, from_n, 0);
    int keys = lua_gettop(L);
    e3_check(e, rtmp_amf3_write_inline(e->out, RTMP_AMF3_ARRAY, (uint32_t)n), "an array");
    e3_members(e, t, keys, depth);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        e3_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
    }
    lua_settop(L, base);
}

/* [-0, +0, e] the integer value of the number at idx, within lo .. hi. */
static lua_Integer int_in(lua_State *L, int idx, lua_Integer lo, lua_Integer hi, const char *what)
{
    int isnum;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || v < lo || v > hi)
        luaL_error(L, "%s element is not an integer in %I .. %I", what, lo, hi);
    return v;
}

static void e3_sequence(enc3 *e, int t, int depth, int kind)
{
    lua_State *L = e->L;
    int from_n, rc = 0;
    lua_Integer n = kind == K_DICT ? (lua_Integer)lua_rawlen(L, t) : seq_length(L, t, &from_n);
    if (n > RTMP_AMF3_LEN_MAX)
        luaL_error(L, "cannot encode a %s longer than 2^28-1 as AMF3", rtmp_l_amf_kinds[kind]);
    int marker = kind == K_DICT ? RTMP_AMF3_DICTIONARY : RTMP_AMF3_VECTOR_INT + (kind - K_VINT);
    int flag = 0;
    if (luaL_getmetafield(L, t, kind == K_DICT ? "__weak" : "__fixed") != LUA_TNIL) {
        flag = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    e3_check(e, rtmp_amf3_write_inline(e->out, marker, (uint32_t)n), "a vector");
    e3_check(e, rtmp_amf3_write_u8(e->out, (uint8_t)flag), "a vector");
    if (kind == K_VOBJECT) {
        if (luaL_getmetafield(L, t, "__type") == LUA_TNIL)
            lua_pushliteral(L, "");
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "vector __type is not a string");
        e3_string(e, lua_gettop(L));
        lua_pop(L, 1);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        int ty = lua_rawgeti(L, t, i);
        int v = lua_gettop(L);
        switch (kind) {
        case K_VINT:
            rc = rtmp_amf3_write_vector_int(e->out, (int32_t)int_in(L, v, INT32_MIN, INT32_MAX, "vector_int"));
            break;
        case K_VUINT:
            rc = rtmp_amf3_write_vector_uint(e->out, (uint32_t)int_in(L, v, 0, UINT32_MAX, "vector_uint"));
            break;
        case K_VDOUBLE:
            if (ty != LUA_TNUMBER)
                luaL_error(L, "vector_double element %d is not a number", (int)i);
            rc = rtmp_amf3_write_vector_double(e->out, (double)lua_tonumber(L, v));
            break;
        case K_VOBJECT:
            e3_value(e, v, depth);
            break;
        default:
            if (ty != LUA_TTABLE)
                luaL_error(L, "dictionary entry %d is not a {key, value} pair", (int)i);
            lua_rawgeti(L, v, 1);
            e3_value(e, lua_gettop(L), depth);
            lua_rawgeti(L, v, 2);
            e3_value(e, lua_gettop(L), depth);
            lua_pop(L, 2);
            break;
        }
        e3_check(e, rc, "a vector element");
        lua_pop(L, 1);
    }
}

/* [-0, +0, e] the string field f of t, raising when it is not one. */
static const char *field_string(lua_State *L, int t, const char *f, size_t *len, const char *kind)
{
    if (lua_getfield(L, t, f) != LUA_TSTRING)
        luaL_error(L, "%s without a string field %s", kind, f);
    const char *s = lua_tolstring(L, -1, len);
    lua_pop(L, 1);  /* anchored in t for the caller's use right away */
    return s;
}

static void e3_table(enc3 *e, int t, int depth)
{
    lua_State *L = e->L;
    int kind = rtmp_l_amf_kind(L, t);
    luaL_checkstack(L, 12, "AMF3 nesting");
    if (kind == K_AMF3) {  /* already AMF3: the wrapper is transparent */
        lua_getfield(L, t, "value");
        e3_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
        return;
    }
    static const int markers[] = {
        [K_OBJECT] = RTMP_AMF3_OBJECT, [K_ECMA] = RTMP_AMF3_ARRAY, [K_ARRAY] = RTMP_AMF3_ARRAY,
        [K_DATE] = RTMP_AMF3_DATE, [K_TYPED] = RTMP_AMF3_OBJECT, [K_XMLDOC] = RTMP_AMF3_XML_DOC,
        [K_XML] = RTMP_AMF3_XML, [K_BYTEARRAY] = RTMP_AMF3_BYTE_ARRAY,
        [K_VINT] = RTMP_AMF3_VECTOR_INT, [K_VUINT] = RTMP_AMF3_VECTOR_UINT,
        [K_VDOUBLE] = RTMP_AMF3_VECTOR_DOUBLE, [K_VOBJECT] = RTMP_AMF3_VECTOR_OBJECT,
        [K_DICT] = RTMP_AMF3_DICTIONARY, [K_EXTERNAL] = RTMP_AMF3_OBJECT,
    };
    int marker = markers[kind];
    lua_pushvalue(L, t);
    if (lua_rawget(L, e->objects) != LUA_TNIL) {
        e3_check(e, rtmp_amf3_write_object_ref(e->out, marker, (uint32_t)lua_tointeger(L, -1)), "a reference");
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (is_container(marker) && depth <= 0)
        rtmp_l_amf_raise(L, RTMP_ERR_AMF_DEPTH, "cannot encode tables nested deeper than the AMF limit as AMF3");
    if (e->c->nobjects <= RTMP_AMF3_LEN_MAX) {
        lua_pushvalue(L, t);
        lua_pushinteger(L, e->c->nobjects);
        lua_rawset(L, e->objects);
    }
    e->c->nobjects++;

    size_t len;
    const char *s;
    int isnum;
    switch (kind) {
    case K_DATE: {
        lua_getfield(L, t, "time");
        double ms = lua_tonumberx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "date without a number field time");
        lua_pop(L, 1);
        e3_check(e, rtmp_amf3_write_date(e->out, ms), "a date");
        break;
    }
    case K_XMLDOC:
    case K_XML:
        s = field_string(L, t, "xml", &len, rtmp_l_amf_kinds[kind]);
        e3_check(e, rtmp_amf3_write_bytes(e->out, marker, s, len), "XML");
        break;
    case K_BYTEARRAY:
        s = field_string(L, t, "data", &len, "bytearray");
        e3_check(e, rtmp_amf3_write_bytes(e->out, marker, s, len), "a byte array");
        break;
    case K_ARRAY:
    case K_ECMA:
        e3_array(e, t, depth - 1, kind);
        break;
    case K_OBJECT:
    case K_TYPED:
    case K_EXTERNAL:
        e3_object(e, t, depth - 1, kind);
        break;
    default:
        e3_sequence(e, t, depth - 1, kind);
        break;
    }
}

/* Encode the value at absolute index idx; depth: container levels left. */
static void e3_value(enc3 *e, int idx, int depth)
{
    lua_State *L = e->L;
    int rc;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        rc = rtmp_amf3_write_marker(e->out, RTMP_AMF3_NULL);
        break;
    case LUA_TBOOLEAN:
        rc = rtmp_amf3_write_marker(e->out, lua_toboolean(L, idx) ? RTMP_AMF3_TRUE : RTMP_AMF3_FALSE);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx) && lua_tointeger(L, idx) >= RTMP_AMF3_INT_MIN
            && lua_tointeger(L, idx) <= RTMP_AMF3_INT_MAX)
            rc = rtmp_amf3_write_integer(e->out, (int32_t)lua_tointeger(L, idx));
        else
            rc = rtmp_amf3_write_double(e->out, (double)lua_tonumber(L, idx));
        break;
    case LUA_TSTRING:
        e3_check(e, rtmp_amf3_write_u8(e->out, RTMP_AMF3_STRING), "a string");
        e3_string(e, idx);
        return;
    case LUA_TUSERDATA: {
        int m = rtmp_l_amf_sentinel(L, idx);
        if (m == RTMP_AMF0_NULL)
            rc = rtmp_amf3_write_marker(e->out, RTMP_AMF3_NULL);
        else if (m == RTMP_AMF0_UNDEFINED)
            rc = rtmp_amf3_write_marker(e->out, RTMP_AMF3_UNDEFINED);
        else
            return (void)luaL_error(L, "cannot encode a userdata as AMF3");
        break;
    }
    case LUA_TTABLE:
        e3_table(e, idx, depth);
        return;
    default:
        return (void)luaL_error(L, "cannot encode a %s as AMF3", luaL_typename(L, idx));
    }
    e3_check(e, rc, "a value");
}

/* [-0, +0, e] encode the values at first..last in the encoding context
 * at stack index ctx (made there when nil). */
static void encode_range(lua_State *L, int ctx, int first, int last, rtmp_buf **out, int depth)
{
    luaL_checkstack(L, 6, NULL);
    int base = lua_gettop(L);
    if (depth > RTMP_AMF_MAX_DEPTH)
        depth = RTMP_AMF_MAX_DEPTH;
    if (lua_isnil(L, ctx)) {
        enc3_count *c = lua_newuserdatauv(L, sizeof *c, 3);
        memset(c, 0, sizeof *c);
        luaL_setmetatable(L, ENC_MT);
        for (int i = 1; i <= 3; i++) {
            lua_newtable(L);
            lua_setiuservalue(L, -2, i);
        }
        lua_replace(L, ctx);
    }
    enc3 e = { .L = L, .out = out, .c = lua_touserdata(L, ctx) };
    lua_getiuservalue(L, ctx, 1);
    e.strings = lua_gettop(L);
    lua_getiuservalue(L, ctx, 2);
    e.objects = lua_gettop(L);
    lua_getiuservalue(L, ctx, 3);
    e.traits = lua_gettop(L);
    for (int i = first; i <= last; i++)
        e3_value(&e, i, depth);
    lua_settop(L, base);
}

void rtmp_l_amf3_encode_value(lua_State *L, int ctx, int idx, rtmp_buf **out, int depth)
{
    encode_range(L, ctx, idx, idx, out, depth);
}

/* The Lua functions */

/* rtmp.amf3.encode(...) -> string */
static int l_encode(lua_State *L)
{
    int n = lua_gettop(L);
    rtmp_buf **slot = rtmp_l_slot_new(L);
    lua_pushnil(L);  /* one context for all values */
    encode_range(L, lua_gettop(L), 1, n, slot, RTMP_DEFAULT_AMF_DEPTH);
    lua_pop(L, 1);
    rtmp_l_slot_push(L, slot);
    return 1;
}

static int l_xml(lua_State *L) { return rtmp_l_amf_new_text(L, K_XML, "xml"); }
static int l_xmldoc(lua_State *L) { return rtmp_l_amf_new_text(L, K_XMLDOC, "xml"); }
static int l_bytearray(lua_State *L) { return rtmp_l_amf_new_text(L, K_BYTEARRAY, "data"); }

/* rtmp.amf3.value(v): write v switched to AMF3 inside AMF0. */
static int l_value(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "value");
    rtmp_l_amf_push_mt(L, K_AMF3);
    lua_setmetatable(L, -2);
    return 1;
}

/* rtmp.amf3.vector(kind, items [, fixed [, type]]) */
static int l_vector(lua_State *L)
{
    static const char *const kinds[] = { "int", "uint", "double", "object", NULL };
    int k = luaL_checkoption(L, 1, NULL, kinds);
    luaL_checktype(L, 2, LUA_TTABLE);
    int fixed = lua_toboolean(L, 3);
    const char *type = luaL_optstring(L, 4, "");
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    lua_getfield(L, 2, "n");
    if (lua_isinteger(L, -1))
        n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, n >= 0 && n <= RTMP_AMF3_LEN_MAX, 2, "bad length");
    lua_createtable(L, n < 0x10000 ? (int)n : 0, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        int ty = lua_rawgeti(L, 2, i);
        if (k < 3 && ty != LUA_TNUMBER)
            luaL_error(L, "bad element %d (number expected)", (int)i);
        if (ty == LUA_TNIL) {
            lua_pop(L, 1);
            rtmp_l_push_null(L);
        }
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    if (!fixed && k != 3) {
        rtmp_l_amf_push_mt(L, K_VINT + k);
    } else {
        lua_createtable(L, 0, 3);
        rtmp_l_amf_set_kind(L, K_VINT + k);
        if (fixed) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "__fixed");
        }
        if (k == 3) {
            lua_pushstring(L, type);
            lua_setfield(L, -2, "__type");
        }
    }
    lua_setmetatable(L, -2);
    return 1;
}

/* rtmp.amf3.dictionary({ {key, value}, ... } [, weak]) */
static int l_dictionary(lua_State *L)
{
    lua_Integer n = 0;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        n = (lua_Integer)lua_rawlen(L, 1);
    }
    int weak = lua_toboolean(L, 2);
    lua_createtable(L, n < 0x10000 ? (int)n : 0, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
            luaL_error(L, "bad entry %d (a {key, value} pair expected)", (int)i);
        lua_createtable(L, 2, 0);
        for (int j = 1; j <= 2; j++) {
            if (lua_rawgeti(L, -2, j) == LUA_TNIL) {
                lua_pop(L, 1);
                rtmp_l_push_null(L);
            }
            lua_rawseti(L, -2, j);
        }
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
    }
    if (!weak) {
        rtmp_l_amf_push_mt(L, K_DICT);
    } else {
        lua_createtable(L, 0, 2);
        rtmp_l_amf_set_kind(L, K_DICT);
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "__weak");
    }
    lua_setmetatable(L, -2);
    return 1;
}

/* rtmp.amf3.external(class, value) */
static int l_external(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "value");
    lua_createtable(L, 0, 2);
    rtmp_l_amf_set_kind(L, K_EXTERNAL);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "__class");
    lua_setmetatable(L, -2);
    return 1;
}

/* rtmp.amf3.typed(class, pairs [, sealed [, dynamic]]): rtmp.amf0.typed
 * (upvalue 1) plus AMF3 traits. */
static int l_typed(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    lua_getmetatable(L, -1);
    if (!lua_isnil(L, 3)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
        lua_createtable(L, (int)(n < 256 ? n : 256), 0);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, 3, i) != LUA_TSTRING)
                luaL_error(L, "bad sealed name %d (string expected)", (int)i);
            lua_rawseti(L, -2, i);
        }
        lua_setfield(L, -2, "__sealed");
    }
    if (!lua_isnil(L, 4)) {
        lua_pushboolean(L, lua_toboolean(L, 4));
        lua_setfield(L, -2, "__dynamic");
    }
    lua_pop(L, 1);
    return 1;
}

/* rtmp.amf3.register(class, handler): handler "value", a table with
 * read and write functions, or nil to remove. */
static int l_register(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        luaL_argcheck(L, strcmp(lua_tostring(L, 2), "value") == 0, 2, "\"value\" expected");
    } else if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "read");
        lua_getfield(L, 2, "write");
        luaL_argcheck(L, lua_isfunction(L, -2) && lua_isfunction(L, -1), 2, "read and write functions expected");
        lua_pop(L, 2);
    } else if (!lua_isnoneornil(L, 2)) {
        luaL_argerror(L, 2, "\"value\", a {read, write} table or nil expected");
    }
    lua_settop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &handlers_key);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
    return 0;
}

/* rtmp.amf3.type(v): the AMF3 type v is written as ("integer", "double",
 * "string", "null", ..., or a table kind), nil when it has none. */
static int l_type(lua_State *L)
{
    luaL_checkany(L, 1);
    rtmp_l_amf_push_type(L, 1, 1);
    return 1;
}

static const luaL_Reg amf3_funcs[] = {
    { "encode", l_encode },
    { "decode", l_decode },
    { "value", l_value },
    { "xml", l_xml },
    { "xmldoc", l_xmldoc },
    { "bytearray", l_bytearray },
    { "vector", l_vector },
    { "dictionary", l_dictionary },
    { "external", l_external },
    { "register", l_register },
    { "validate", l_validate },
    { "type", l_type },
    { NULL, NULL },
};

void rtmp_l_open_amf3(lua_State *L)
{
    if (luaL_newmetatable(L, READER_MT)) {
        lua_pushcfunction(L, reader_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, ENC_MT);
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &handlers_key) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushliteral(L, "value");
        lua_setfield(L, -2, "flex.messaging.io.ArrayCollection");
        lua_pushliteral(L, "value");
        lua_setfield(L, -2, "flex.messaging.io.ObjectProxy");
        lua_rawsetp(L, LUA_REGISTRYINDEX, &handlers_key);
    } else {
        lua_pop(L, 1);
    }

    luaL_newlib(L, amf3_funcs);
    lua_getfield(L, -2, "amf0");
    if (!lua_istable(L, -1))
        luaL_error(L, "rtmp.amf0 must be opened before rtmp.amf3");
    static const char *const shared[] = { "object", "array", "date", NULL };
    for (int i = 0; shared[i]; i++) {
        lua_getfield(L, -1, shared[i]);
        lua_setfield(L, -3, shared[i]);
    }
    lua_getfield(L, -1, "typed");
    lua_pushcclosure(L, l_typed, 1);
    lua_setfield(L, -3, "typed");
    lua_pop(L, 1);
    lua_setfield(L, -2, "amf3");
}
