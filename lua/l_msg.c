/*
 * l_msg.c: the message object ("rtmp.msg"): what the engine hands to
 * on_message and what scripts build with rtmp.message, rtmp.aggregate
 * and msg:split.  Header fields, the decoded body (l_body.c) in a side
 * table, the media fields from the media model (core/media.h, parsed on
 * access), and header tables as conn:send and group:send take them.
 */
#include <string.h>

#include "l_msg.h"
#include "l_body.h"
#include "l_amf.h"
#include "../core/aggregate.h"
#include "../core/control.h"
#include "../core/error.h"
#include "../core/media.h"
#include "../core/session.h"

/* ---- message objects with their decoded body ---- */

/* (l_msg.h) The payload is copied once into the userdata (media is then
 * forwarded from there without further copies). */
void rtmp_l_push_msg(lua_State *L, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied,
                     int max_depth)
{
    lmsg *m = new_msg(L, h, payload, h->length);
    m->applied = applied;
    if (h->type != RTMP_MSG_AUDIO && h->type != RTMP_MSG_VIDEO && h->type != RTMP_MSG_AGGREGATE) {
        lua_newtable(L);
        rtmp_l_body_decode(L, h, payload, max_depth);
        lua_setiuservalue(L, -2, 1);
    }
}


/* ---- aggregates (22) ---- */

/* msg:split([opts]) -> array of the sub-messages of an aggregate, or
 * nil, message, code.  opts.strict: strict reading (core/aggregate.h).
 * Each sub-message is a message object with the aggregate's csid, fmt
 * and stream id and its adjusted timestamp; data is decoded as usual. */
static int msg_split(lua_State *L)
{
    lmsg *m = check_msg(L, 1);
    int strict = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "strict");
        strict = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (m->h.type != RTMP_MSG_AGGREGATE)
        return luaL_argerror(L, 1, "not an aggregate message");
    lua_newtable(L);
    rtmp_agg_iter it;
    rtmp_agg_sub sub;
    rtmp_agg_init(&it, m->data, m->len, m->h.timestamp, strict);
    int rc;
    lua_Integer n = 0;
    while ((rc = rtmp_agg_next(&it, &sub)) > 0) {
        rtmp_msg_hdr h = m->h;
        h.type = sub.type;
        h.timestamp = sub.timestamp;
        h.length = sub.size;
        rtmp_l_push_msg(L, &h, sub.data, 0, RTMP_DEFAULT_AMF_DEPTH);
        lua_rawseti(L, -2, ++n);
    }
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s (sub-message %d at byte %d)", rtmp_strerror(rc), (int)it.count + 1, (int)it.off);
        lua_pushstring(L, rtmp_errname(rc));
        return 3;
    }
    return 1;
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
            lua_pushcfunction(L, msg_split);
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

void rtmp_l_read_hdr(lua_State *L, int t, rtmp_msg_hdr *h)
{
    if (t && !lua_istable(L, t))
        luaL_typeerror(L, t, "table or nil");
    if (t && lua_getfield(L, t, "type") != LUA_TNIL)
        h->type = (uint8_t)type_from_value(L, lua_gettop(L));
    if (t)
        lua_pop(L, 1);
    h->csid = rtmp_l_opt_u32(L, t, "csid", h->csid ? h->csid : rtmp_chunk_default_csid(h->type));
    h->stream_id = rtmp_l_opt_u32(L, t, "stream", h->stream_id);
    h->timestamp = rtmp_l_opt_u32(L, t, "timestamp", h->timestamp);
    uint32_t fmt = rtmp_l_opt_u32(L, t, "fmt", RTMP_FMT_AUTO);
    if (h->csid < RTMP_MIN_CSID || h->csid > RTMP_MAX_CSID)
        luaL_error(L, "csid %d out of range 2..65599", (int)h->csid);
    if (fmt != RTMP_FMT_AUTO && fmt > 3)
        luaL_error(L, "fmt %d out of range 0..3", (int)fmt);
    h->fmt = (uint8_t)fmt;
}

/* rtmp.message{ type=, csid=, stream=, timestamp= } (payload) -> msg:
 * build a message to send or forward (tests, tools, caches). */
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
    rtmp_l_read_hdr(L, 1, &h);
    if (len > 0xFFFFFF)
        return luaL_argerror(L, 2, "payload longer than 16777215 bytes");
    h.length = (uint32_t)len;
    rtmp_l_push_msg(L, &h, (const uint8_t *)p, 0, RTMP_DEFAULT_AMF_DEPTH);
    return 1;
}

/* rtmp.aggregate(msgs [, hdr]) -> one aggregate message holding msgs (an
 * array of message objects) in order.  Its timestamp and stream default
 * to the first message's; each sub-message carries its own timestamp, so
 * a reader adjusting against the aggregate's gets them back unchanged. */
static int l_aggregate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n > 0, 1, "no messages");
    size_t total = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lmsg *s = luaL_testudata(L, -1, MSG_MT);
        if (!s)
            return luaL_error(L, "bad message #%d (message object expected)", (int)i);
        if (s->h.type == RTMP_MSG_AGGREGATE)
            return luaL_error(L, "bad message #%d (an aggregate cannot hold an aggregate)", (int)i);
        total += RTMP_AGG_SUB_HEADER + s->len + RTMP_AGG_BACKPTR;
        if (total > 0xFFFFFF)
            return luaL_error(L, "aggregate longer than 16777215 bytes");
        lua_pop(L, 1);
    }
    lua_geti(L, 1, 1);
    lmsg *first = lua_touserdata(L, -1);
    rtmp_msg_hdr h = { .type = RTMP_MSG_AGGREGATE, .timestamp = first->h.timestamp,
                       .stream_id = first->h.stream_id };
    lua_pop(L, 1);
    rtmp_l_read_hdr(L, lua_isnoneornil(L, 2) ? 0 : 2, &h);
    h.type = RTMP_MSG_AGGREGATE;
    rtmp_buf **slot = rtmp_l_slot_new(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lmsg *s = lua_touserdata(L, -1);
        if (rtmp_agg_put(slot, s->h.type, s->h.timestamp, 0, s->data, s->len) < 0)
            return luaL_error(L, "out of memory");
        lua_pop(L, 1);
    }
    h.length = (uint32_t)(*slot)->len;
    new_msg(L, &h, (*slot)->data, (*slot)->len);
    rtmp_buf_unref(*slot);
    *slot = NULL;
    return 1;
}

static const luaL_Reg msg_funcs[] = {
    { "message", l_message },
    { "aggregate", l_aggregate },
    { NULL, NULL },
};

void rtmp_l_open_msg(lua_State *L)
{
    luaL_newmetatable(L, MSG_MT);
    lua_pushcfunction(L, msg_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, msg_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, msg_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_setfuncs(L, msg_funcs, 0);
}
