/*
 * l_amf.h: AMF values in Lua.  One value model for both encodings
 * (l_amf.c, docs/AMF.md), what l_amf0.c and l_amf3.c share; the AMF0
 * codec as the rest of the binding uses it (l_amf0.c); AMF3 inside AMF0
 * (l_amf3.c, for l_amf0.c).
 */
#ifndef RTMP_L_AMF_H
#define RTMP_L_AMF_H

#include "l_rtmp.h"
#include "../core/amf.h"
#include "../core/amf3.h"

/* Nesting of AMF values from Lua and of values the binding decodes
 * without a connection's setting (rtmp.message, rtmp.flv, msg:split). */
#define RTMP_DEFAULT_AMF_DEPTH RTMP_AMF_DEFAULT_DEPTH

/* ---- the AMF0 codec (l_amf0.c) ---- */

/* Decode every AMF0 value in p[0 .. len) and push one array table
 * holding them, with field n.  Values nest at most max_depth levels.
 * [-0, +1, m] on success returns 0; on malformed input pushes nothing and
 * returns a negative RTMP_ERR_* code. */
int rtmp_l_amf0_push_values(lua_State *L, const uint8_t *p, size_t len, int max_depth);

/* Encode the Lua values at stack indexes first..last (absolute) as AMF0,
 * appending to *out.  [-0, +0, e]: raises a Lua error for values that
 * have no AMF0 form (functions, threads, cycles, nesting past max_depth). */
void rtmp_l_amf0_encode_values(lua_State *L, int first, int last, rtmp_buf **out, int max_depth);

/* ---- the value model (l_amf.c) ---- */

/* [-0, +1, -] push the rtmp.null / rtmp.undefined / rtmp.amf0.unsupported
 * sentinels (made on first use). */
void rtmp_l_push_null(lua_State *L);
void rtmp_l_push_undefined(lua_State *L);
void rtmp_l_amf_push_unsupported(lua_State *L);

/* Table kinds: the value of the metatable's __amf field.  Tables of a
 * kind that needs no per-table metatable field share one metatable. */
enum {
    RTMP_K_OBJECT,        /* AMF0 object, AMF3 anonymous dynamic object */
    RTMP_K_ECMA,          /* AMF0 ECMA array */
    RTMP_K_ARRAY,         /* AMF0 strict array, AMF3 array */
    RTMP_K_DATE,          /* { time = ms [, tz = minutes] } */
    RTMP_K_TYPED,         /* AMF0 typed object, AMF3 object with traits */
    RTMP_K_XMLDOC,        /* { xml = text }: AMF0 0x0F, AMF3 0x07 */
    RTMP_K_XML,           /* { xml = text }: AMF3 0x0B (E4X) */
    RTMP_K_BYTEARRAY,     /* { data = bytes } */
    RTMP_K_VECTOR_INT,    /* { 1..n, n = n }, __fixed */
    RTMP_K_VECTOR_UINT,
    RTMP_K_VECTOR_DOUBLE,
    RTMP_K_VECTOR_OBJECT, /* and __type */
    RTMP_K_DICTIONARY,    /* { {key, value}, ... }, __weak */
    RTMP_K_EXTERNAL,      /* { value = body }, __class */
    RTMP_K_AMF3,          /* rtmp.amf3.value(v): { value = v }, write v switched */
    RTMP_K_COUNT_
};

/* Short names inside l_amf0.c and l_amf3.c. */
#define K_OBJECT RTMP_K_OBJECT
#define K_ECMA RTMP_K_ECMA
#define K_ARRAY RTMP_K_ARRAY
#define K_DATE RTMP_K_DATE
#define K_TYPED RTMP_K_TYPED
#define K_XMLDOC RTMP_K_XMLDOC
#define K_XML RTMP_K_XML
#define K_BYTEARRAY RTMP_K_BYTEARRAY
#define K_VINT RTMP_K_VECTOR_INT
#define K_VUINT RTMP_K_VECTOR_UINT
#define K_VDOUBLE RTMP_K_VECTOR_DOUBLE
#define K_VOBJECT RTMP_K_VECTOR_OBJECT
#define K_DICT RTMP_K_DICTIONARY
#define K_EXTERNAL RTMP_K_EXTERNAL
#define K_AMF3 RTMP_K_AMF3

extern const char *const rtmp_l_amf_kinds[];  /* names, NULL-terminated */

/* [-0, +1, m] the metatable shared by tables of kind that need no
 * per-table fields. */
void rtmp_l_amf_push_mt(lua_State *L, int kind);

/* [-0, +0, -] the kind of table t: its __amf, else array for a plain
 * sequence 1..n (n > 0), else object. */
int rtmp_l_amf_kind(lua_State *L, int t);

/* [-0, +0, -] the string field f of the metatable of t (*len: its
 * length, when len is not NULL), or NULL. */
const char *rtmp_l_amf_meta_string(lua_State *L, int t, const char *f, size_t *len);

/* [-0, +0, -] whether plain table t is a sequence 1..n, n > 0 (*n: its
 * number of keys). */
int rtmp_l_amf_is_sequence(lua_State *L, int t, lua_Integer *n);

/* [-0, +0, m] which sentinel the value at idx is: RTMP_AMF0_NULL,
 * RTMP_AMF0_UNDEFINED, RTMP_AMF0_UNSUPPORTED, or -1. */
int rtmp_l_amf_sentinel(lua_State *L, int idx);

/* Byte-wise order of two keys, shorter first on a common prefix. */
int rtmp_l_amf_key_cmp(const char *a, size_t an, const char *b, size_t bn);

/* [-0, +0, e] append to table res the keys of table t not in table seen
 * (marking them there), as key string, original key, ...: sorted
 * byte-wise by string form, 1 and "1" once.  Skipped: integer keys
 * 1..dense and the key "n" when skip_n.  Keys must be strings or numbers;
 * amf3 names the encoding in the error. */
void rtmp_l_amf_other_keys(lua_State *L, int t, int seen, int res, lua_Integer dense, int skip_n, int amf3);

/* [-0, +0, m] set field __amf of the table on top to kind's name. */
void rtmp_l_amf_set_kind(lua_State *L, int kind);

/* [-0, +1, m] rtmp.amf0.type / rtmp.amf3.type of the value at idx: the
 * name of the type it is written as, or fail when it has none.  amf3:
 * numbers are "integer" or "double" (else "number"), and the AMF0-only
 * unsupported sentinel has none. */
void rtmp_l_amf_push_type(lua_State *L, int idx, int amf3);

/* [-0, +1, e] a new table of kind with the kind's shared metatable and
 * field f = the string argument 1 (rtmp.amf0.xmldoc, rtmp.amf3.xml ...). */
int rtmp_l_amf_new_text(lua_State *L, int kind, const char *f);

/* [-0, +0, v] the optional max_depth argument at arg of decode and
 * validate (default RTMP_DEFAULT_AMF_DEPTH, at most RTMP_AMF_MAX_DEPTH). */
int rtmp_l_amf_opt_depth(lua_State *L, int arg);

/* [-0, +3, m] the failure of decode and validate: fail, "<message>
 * [(<cls>)] at byte <off>", the error name; returns 3.  cls may be NULL. */
int rtmp_l_amf_fail(lua_State *L, int rc, size_t off, const char *cls, size_t clen);

/* [-0, +0, v] raise the error fmt (lua_pushfstring's formats) with the
 * position, as luaL_error does, and remember code (an RTMP_ERR_*) as the
 * code of the error being raised: rtmp_l_amf_too_deep tells a nesting
 * error (RTMP_ERR_AMF_DEPTH) from any other by it. */
int rtmp_l_amf_raise(lua_State *L, int code, const char *fmt, ...);

/* [-0, +0, -] After a decode that followed references, with its values
 * table at the top of the stack: 1 when they cannot be written again
 * within max_depth.  A reference can bring back a value whose first place
 * a repeated key dropped (the key keeps its last value), deeper than
 * where it was read; writing it there would nest past the limit.  write
 * is a C function taking (values, max_depth) that encodes them and
 * raises; only a nesting error (raised by rtmp_l_amf_raise with
 * RTMP_ERR_AMF_DEPTH) counts: any other is left to show when the values
 * are encoded. */
int rtmp_l_amf_too_deep(lua_State *L, lua_CFunction write, int max_depth);

/* ---- AMF3 inside AMF0 (l_amf3.c, for l_amf0.c) ----
 *
 * AMF3 inside AMF0.  One message body is one AMF3 context: the reference
 * tables continue from one 0x11 switch to the next.  The caller keeps a
 * stack slot for the context, nil until the first switch. */

/* [-0, +1, m] Decode the AMF3 value at start[at] (a switch's value; the
 * context at stack index ctx covers start[0 .. len) and is made there on
 * first use), nesting at most depth levels; push it and set *next to the
 * offset after it.  On failure push nothing and return a negative
 * RTMP_ERR_*; *next is then the offset of the failing item, and for
 * RTMP_ERR_AMF_EXTERNALIZABLE *cls (when cls is not NULL) the class
 * name, pointing into start. */
int rtmp_l_amf3_push_value(lua_State *L, int ctx, const uint8_t *start, size_t len, size_t at, int depth,
                           size_t *next, rtmp_amf3_str *cls);

/* The number of references to complex values the decoding context at
 * ctx has read (nil: 0). */
uint32_t rtmp_l_amf3_ctx_objrefs(lua_State *L, int ctx);

/* [-0, +0, -] Release a decoding context's tables now (nil: nothing). */
void rtmp_l_amf3_ctx_free(lua_State *L, int ctx);

/* [-0, +0, e] Encode the value at absolute index idx as AMF3 in the
 * encoding context at stack index ctx (made there on first use),
 * nesting at most depth levels, appending to *out. */
void rtmp_l_amf3_encode_value(lua_State *L, int ctx, int idx, rtmp_buf **out, int depth);

#endif
