/*
 * l_body.c: message bodies.  Decoding the body of a message the engine
 * hands to a script (control, commands and data in AMF0/AMF3, shared
 * objects) into the fields of the message's side table (l_msg.c calls
 * it), and building shared-object bodies (rtmp.shared_object).
 */
#include "l_body.h"
#include "l_amf.h"
#include "../core/amf0.h"
#include "../core/control.h"
#include "../core/error.h"
#include "../core/sharedobj.h"

/* ---- decoding: control, commands and data ---- */

/* [-0, +0, m] set the decoded fields of a control message into the table on top. */
static void decode_control(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *p)
{
    rtmp_control c;
    int rc = rtmp_control_parse(h, p, &c);
    if (rc < 0) {
        lua_pushstring(L, rtmp_strerror(rc));
        lua_setfield(L, -2, "decode_error");
        return;
    }
    switch (h->type) {
    case RTMP_MSG_SET_CHUNK_SIZE:
        lua_pushinteger(L, c.value);
        lua_setfield(L, -2, "chunk_size");
        break;
    case RTMP_MSG_ABORT:
        lua_pushinteger(L, c.value);
        lua_setfield(L, -2, "abort_csid");
        break;
    case RTMP_MSG_ACK:
        lua_pushinteger(L, c.value);
        lua_setfield(L, -2, "sequence");
        break;
    case RTMP_MSG_WINDOW_ACK_SIZE:
        lua_pushinteger(L, c.value);
        lua_setfield(L, -2, "window");
        break;
    case RTMP_MSG_SET_PEER_BANDWIDTH:
        lua_pushinteger(L, c.value);
        lua_setfield(L, -2, "window");
        if (c.limit >= 0) {
            lua_pushinteger(L, c.limit);
            lua_setfield(L, -2, "limit");
        }
        break;
    case RTMP_MSG_USER_CONTROL: {
        lua_pushinteger(L, c.event);
        lua_setfield(L, -2, "event");
        const char *name = rtmp_uc_name(c.event);
        if (name) {
            lua_pushstring(L, name);
            lua_setfield(L, -2, "event_name");
        }
        if (c.nfields >= 1) {
            lua_pushinteger(L, c.value);
            lua_setfield(L, -2, c.event == RTMP_UC_PING_REQUEST || c.event == RTMP_UC_PING_RESPONSE
                                    ? "ping_time" : "stream_id");
        }
        if (c.event == RTMP_UC_SET_BUFFER_LENGTH && c.nfields >= 2) {
            lua_pushinteger(L, c.value2);
            lua_setfield(L, -2, "buffer_length");
        }
        break;
    }
    }
}

/* [-0, +0, m] with the decoded values array on top and the message table
 * below it: set the table's field "name" to values[1] when it is a string,
 * and its field "args" to values[first .. n] (with its own n). */
static void set_name_args(lua_State *L, lua_Integer first)
{
    int values = lua_gettop(L);
    if (lua_geti(L, values, 1) == LUA_TSTRING)
        lua_setfield(L, values - 1, "name");
    else
        lua_pop(L, 1);
    lua_getfield(L, values, "n");
    lua_Integer n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_Integer count = n >= first ? n - first + 1 : 0;
    lua_createtable(L, (int)count, 1);
    for (lua_Integer i = first; i <= n; i++) {
        lua_geti(L, values, i);
        lua_seti(L, -2, i - first + 1);
    }
    lua_pushinteger(L, count);
    lua_setfield(L, -2, "n");
    lua_setfield(L, values - 1, "args");
}

/* [-0, +0, m] decode AMF values into fields values/name/txn/args of the table on top. */
static void decode_amf(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *p, int max_depth)
{
    size_t off = (h->type == RTMP_MSG_AMF3_COMMAND || h->type == RTMP_MSG_AMF3_DATA) && h->length > 0 ? 1 : 0;
    int rc = rtmp_l_amf0_push_values(L, off ? p + off : p, h->length - off, max_depth);  /* p may be NULL when empty */
    if (rc < 0) {
        lua_pushstring(L, rtmp_strerror(rc));
        lua_setfield(L, -2, "decode_error");
        return;
    }
    int values = lua_gettop(L);
    lua_pushvalue(L, values);
    lua_setfield(L, -3, "values");
    if (h->type == RTMP_MSG_AMF0_COMMAND || h->type == RTMP_MSG_AMF3_COMMAND) {
        lua_geti(L, values, 2);
        lua_setfield(L, -3, "txn");
        set_name_args(L, 3);
    } else if (lua_geti(L, values, 1) == LUA_TSTRING) {
        lua_setfield(L, -3, "name");
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* ---- decoding: shared objects (19, 16) ---- */

/* [-0, +1, m] decode the one AMF0 value at the start of p[0 .. len) and
 * push it; *used gets its length.  On malformed input pushes nothing and
 * returns a negative RTMP_ERR_* code. */
static int push_one_value(lua_State *L, const uint8_t *p, size_t len, size_t *used, int max_depth)
{
    rtmp_amf0_reader r;
    rtmp_amf0_reader_init(&r, p, len);
    int rc = rtmp_amf0_skip_value(&r, max_depth);
    if (rc < 0)
        return rc;
    *used = rtmp_amf0_offset(&r);
    rc = rtmp_l_amf0_push_values(L, p, *used, max_depth);
    if (rc < 0)
        return rc;
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
    return 0;
}

/* [-0, +0, m] set the string p[*off ..] (2-byte length form) as field k
 * of the table on top. */
static int so_string_field(lua_State *L, const rtmp_so_event *ev, size_t *off, const char *k)
{
    const char *s;
    size_t n;
    int rc = rtmp_so_read_string(ev->data, ev->len, off, &s, &n);
    if (rc < 0)
        return rc;
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, k);
    return 0;
}

/* [-0, +0, m] the fields of one event into the table on top; a negative
 * code when its data does not have the shape of its type. */
static int decode_so_event(lua_State *L, const rtmp_so_event *ev, int max_depth)
{
    size_t off = 0, used;
    int rc = 0;
    switch (ev->type) {
    case RTMP_SO_REQUEST_CHANGE:
    case RTMP_SO_CHANGE: {
        /* key/value pairs; key and value are those of the first, pairs
         * holds them all when there are several */
        lua_newtable(L);
        lua_Integer n = 0;
        while (off < ev->len) {
            lua_createtable(L, 2, 0);
            if ((rc = so_string_field(L, ev, &off, "key")) < 0)
                break;
            if ((rc = push_one_value(L, ev->data + off, ev->len - off, &used, max_depth)) < 0)
                break;
            off += used;
            lua_setfield(L, -2, "value");
            if (n == 0) {
                lua_getfield(L, -1, "key");
                lua_setfield(L, -4, "key");
                lua_getfield(L, -1, "value");
                lua_setfield(L, -4, "value");
            }
            lua_rawseti(L, -2, ++n);
        }
        if (rc < 0) {
            lua_pop(L, 2);
            return rc;
        }
        if (n > 1)
            lua_setfield(L, -2, "pairs");
        else
            lua_pop(L, 1);
        return 0;
    }
    case RTMP_SO_SUCCESS:
    case RTMP_SO_REMOVE:
    case RTMP_SO_REQUEST_REMOVE:
        if (ev->len == 0)
            return 0;
        if ((rc = so_string_field(L, ev, &off, "key")) < 0)
            return rc;
        if (off < ev->len) {
            if ((rc = push_one_value(L, ev->data + off, ev->len - off, &used, max_depth)) < 0)
                return rc;
            lua_setfield(L, -2, "value");
            if (off + used != ev->len)
                return RTMP_ERR_SO_TRUNCATED;
        }
        return 0;
    case RTMP_SO_SEND_MESSAGE: {
        if ((rc = rtmp_l_amf0_push_values(L, ev->data, ev->len, max_depth)) < 0)
            return rc;
        set_name_args(L, 2);
        lua_pop(L, 1);
        return 0;
    }
    case RTMP_SO_STATUS:
        if ((rc = so_string_field(L, ev, &off, "code")) < 0
            || (rc = so_string_field(L, ev, &off, "level")) < 0)
            return rc;
        return off == ev->len ? 0 : RTMP_ERR_SO_TRUNCATED;
    default: /* use, release, clear, use_success, unknown: raw data if any */
        if (ev->len) {
            lua_pushlstring(L, (const char *)ev->data, ev->len);
            lua_setfield(L, -2, "data");
        }
        return 0;
    }
}

/* [-0, +0, m] msg.so = { name, version, flags, persistent, reserved,
 * events } for the table on top, or msg.decode_error. */
static void decode_so(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *p, int max_depth)
{
    rtmp_so_header sh;
    int rc = rtmp_so_parse_header(p, h->length, h->type == RTMP_MSG_AMF3_SHARED_OBJECT, &sh);
    if (rc < 0) {
        lua_pushstring(L, rtmp_strerror(rc));
        lua_setfield(L, -2, "decode_error");
        return;
    }
    size_t off = (size_t)rc;
    lua_createtable(L, 0, 7);
    lua_pushlstring(L, sh.name, sh.name_len);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, sh.version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, sh.flags);
    lua_setfield(L, -2, "flags");
    lua_pushboolean(L, sh.flags == RTMP_SO_PERSISTENT);
    lua_setfield(L, -2, "persistent");
    lua_pushinteger(L, sh.reserved);
    lua_setfield(L, -2, "reserved");
    lua_newtable(L);
    rtmp_so_event ev;
    lua_Integer n = 0;
    while ((rc = rtmp_so_next_event(p, h->length, &off, &ev)) > 0) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, ev.type);
        lua_setfield(L, -2, "type");
        const char *name = rtmp_so_event_name(ev.type);
        if (name) {
            lua_pushstring(L, name);
            lua_setfield(L, -2, "type_name");
        }
        int erc = decode_so_event(L, &ev, max_depth);
        if (erc < 0) {
            lua_pushstring(L, rtmp_strerror(erc));
            lua_setfield(L, -2, "decode_error");
            lua_pushlstring(L, (const char *)ev.data, ev.len);
            lua_setfield(L, -2, "data");
        }
        lua_rawseti(L, -2, ++n);
    }
    lua_setfield(L, -2, "events");
    if (rc < 0) {
        lua_pop(L, 1);
        lua_pushstring(L, rtmp_strerror(rc));
        lua_setfield(L, -2, "decode_error");
        return;
    }
    lua_setfield(L, -2, "so");
}

/* ---- the body of a received message ---- */

void rtmp_l_body_decode(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *payload, int max_depth)
{
    if (rtmp_is_control(h->type))
        decode_control(L, h, payload);
    else if (h->type == RTMP_MSG_AMF0_COMMAND || h->type == RTMP_MSG_AMF0_DATA
             || h->type == RTMP_MSG_AMF3_COMMAND || h->type == RTMP_MSG_AMF3_DATA)
        decode_amf(L, h, payload, max_depth);
    else if (h->type == RTMP_MSG_AMF0_SHARED_OBJECT || h->type == RTMP_MSG_AMF3_SHARED_OBJECT)
        decode_so(L, h, payload, max_depth);
}

/* ---- shared objects built by scripts ---- */

/* rtmp.shared_object{ name=, version=, persistent= | flags=, reserved=,
 * amf3 = (type 16: leading encoding byte), events = { {type=, ...}, ... } }
 * -> the message body, to send with conn:send({ type = "shared_object" }
 * (or "shared_object3" when amf3), body).  Event fields as msg.so has
 * them (key, value, pairs, name, args, code, level); data = raw bytes
 * replaces what the fields would give. */
static int l_shared_object(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    rtmp_buf **slot = rtmp_l_slot_new(L);  /* 2 */
    rtmp_buf **ev = rtmp_l_slot_new(L);    /* 3: one event's data */

    lua_getfield(L, 1, "amf3");
    int amf3 = lua_toboolean(L, -1);
    lua_getfield(L, 1, "name");
    size_t nlen;
    const char *name = luaL_optlstring(L, -1, "", &nlen);
    lua_getfield(L, 1, "persistent");
    uint32_t flags = lua_toboolean(L, -1) ? RTMP_SO_PERSISTENT : 0;
    lua_pop(L, 1);
    flags = rtmp_l_opt_u32(L, 1, "flags", flags);
    uint32_t version = rtmp_l_opt_u32(L, 1, "version", 0);
    uint32_t reserved = rtmp_l_opt_u32(L, 1, "reserved", 0);
    int rc = rtmp_so_put_header(slot, amf3, name, nlen, version, flags, reserved);
    if (rc == RTMP_ERR_INVAL)
        return luaL_error(L, "shared object name longer than 65535 bytes");
    if (rc < 0)
        return luaL_error(L, "out of memory");
    lua_pop(L, 2);

    if (lua_getfield(L, 1, "events") != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TTABLE);
        int events = lua_gettop(L);
        lua_Integer n = luaL_len(L, events);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, events, i);
            int e = lua_gettop(L);
            if (!lua_istable(L, e))
                return luaL_error(L, "bad event #%d (table expected)", (int)i);
            lua_getfield(L, e, "type");
            int type = lua_type(L, -1) == LUA_TSTRING ? rtmp_so_event_type(lua_tostring(L, -1))
                                                      : (int)luaL_optinteger(L, -1, -1);
            if (type < 0 || type > 255)
                return luaL_error(L, "bad event #%d (unknown type)", (int)i);
            lua_pop(L, 1);
            if ((*ev))
                (*ev)->len = 0;
            int w = 0;
            if (lua_getfield(L, e, "data") != LUA_TNIL) {
                size_t dl;
                const char *d = luaL_checklstring(L, -1, &dl);
                w = rtmp_buf_append(ev, d, dl);
            } else {
                switch (type) {
                case RTMP_SO_REQUEST_CHANGE:
                case RTMP_SO_CHANGE:
                    if (lua_getfield(L, e, "pairs") != LUA_TNIL) {
                        lua_Integer np = luaL_len(L, -1);
                        for (lua_Integer j = 1; j <= np && w >= 0; j++) {
                            lua_geti(L, -1, j);
                            luaL_checktype(L, -1, LUA_TTABLE);
                            lua_getfield(L, -1, "key");
                            size_t kl;
                            const char *k = luaL_checklstring(L, -1, &kl);
                            w = rtmp_so_put_string(ev, k, kl);
                            lua_getfield(L, -2, "value");
                            int top = lua_gettop(L);
                            rtmp_l_amf0_encode_values(L, top, top, ev, RTMP_DEFAULT_AMF_DEPTH);
                            lua_pop(L, 3);
                        }
                        lua_pop(L, 1);
                        break;
                    }
                    lua_pop(L, 1);
                    /* fall through */ /* to one key and its value */
                case RTMP_SO_SUCCESS:
                case RTMP_SO_REMOVE:
                case RTMP_SO_REQUEST_REMOVE: {
                    lua_getfield(L, e, "key");
                    size_t kl;
                    const char *k = luaL_checklstring(L, -1, &kl);
                    w = rtmp_so_put_string(ev, k, kl);
                    if (lua_getfield(L, e, "value") != LUA_TNIL || type == RTMP_SO_CHANGE
                        || type == RTMP_SO_REQUEST_CHANGE) {
                        int top = lua_gettop(L);
                        rtmp_l_amf0_encode_values(L, top, top, ev, RTMP_DEFAULT_AMF_DEPTH);
                    }
                    lua_pop(L, 2);
                    break;
                }
                case RTMP_SO_SEND_MESSAGE: {
                    lua_getfield(L, e, "name");
                    int first = lua_gettop(L);
                    luaL_checkstring(L, first);
                    if (lua_getfield(L, e, "args") != LUA_TNIL) {
                        luaL_checktype(L, -1, LUA_TTABLE);
                        lua_getfield(L, -1, "n");
                        lua_Integer na = lua_isnil(L, -1) ? luaL_len(L, -2) : luaL_checkinteger(L, -1);
                        lua_pop(L, 1);
                        luaL_checkstack(L, (int)na + 2, "too many arguments");
                        int args = lua_gettop(L);
                        for (lua_Integer j = 1; j <= na; j++)
                            lua_geti(L, args, j);
                        lua_remove(L, args);
                    } else {
                        lua_pop(L, 1);
                    }
                    rtmp_l_amf0_encode_values(L, first, lua_gettop(L), ev, RTMP_DEFAULT_AMF_DEPTH);
                    lua_settop(L, first - 1);
                    break;
                }
                case RTMP_SO_STATUS: {
                    lua_getfield(L, e, "code");
                    lua_getfield(L, e, "level");
                    size_t cl, ll;
                    const char *c = luaL_checklstring(L, -2, &cl);
                    const char *l = luaL_checklstring(L, -1, &ll);
                    w = rtmp_so_put_string(ev, c, cl);
                    if (w >= 0)
                        w = rtmp_so_put_string(ev, l, ll);
                    lua_pop(L, 2);
                    break;
                }
                default:
                    break;
                }
            }
            lua_settop(L, e);
            if (w == RTMP_ERR_INVAL)
                return luaL_error(L, "bad event #%d (string longer than 65535 bytes)", (int)i);
            if (w < 0 || rtmp_so_put_event(slot, (uint8_t)type, *ev ? (*ev)->data : NULL,
                                           *ev ? (*ev)->len : 0) < 0)
                return luaL_error(L, "out of memory");
            lua_pop(L, 1);
        }
    }
    lua_pushlstring(L, (const char *)(*slot)->data, (*slot)->len);
    return 1;
}

static const luaL_Reg body_funcs[] = {
    { "shared_object", l_shared_object },
    { NULL, NULL },
};

void rtmp_l_open_body(lua_State *L)
{
    luaL_setfuncs(L, body_funcs, 0);
}
