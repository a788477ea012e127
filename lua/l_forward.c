/*
 * l_forward.c: x:forward(stream_id, group) for connections (l_conn.c) and
 * socket-free sessions (l_session.c): the audio and video of a message
 * stream go to a group's fan-out and cache in C, with no Lua message
 * object and no call into Lua.  It reads a group's box (l_group.h) but
 * never calls l_group.c, which calls l_conn.c.
 */
#include "l_forward.h"
#include "l_group.h"
#include "../core/chunk.h"
#include "../core/group.h"
#include "../core/session.h"

/* [-0, +0, v] the group at idx (its box's first field). */
static rtmp_group *group_at(lua_State *L, int idx)
{
    rtmp_group **g = luaL_checkudata(L, idx, RTMP_L_GROUP_MT);
    if (!*g)
        luaL_argerror(L, idx, "group already finalized");
    return *g;
}

int rtmp_l_forward_method(lua_State *L, rtmp_l_forwards *fw)
{
    lua_Integer sid = luaL_checkinteger(L, 2);
    luaL_argcheck(L, sid >= 0 && sid <= 0xFFFFFFFF, 2, "stream id out of range");
    rtmp_group *g = lua_isnoneornil(L, 3) ? NULL : group_at(L, 3);
    int i = 0;
    while (i < fw->n && fw->f[i].stream_id != (uint32_t)sid)
        i++;
    if (i < fw->n) { /* replace or end */
        luaL_unref(L, LUA_REGISTRYINDEX, fw->f[i].ref);
        fw->f[i] = fw->f[--fw->n];
    }
    if (g) {
        if (fw->n == RTMP_L_FORWARDS)
            return luaL_error(L, "forward: at most %d streams at once", RTMP_L_FORWARDS);
        lua_pushvalue(L, 3);
        fw->f[fw->n].ref = luaL_ref(L, LUA_REGISTRYINDEX);
        fw->f[fw->n].stream_id = (uint32_t)sid;
        fw->f[fw->n].g = g;
        fw->n++;
    }
    lua_pushboolean(L, 1);
    return 1;
}

rtmp_group *rtmp_l_forward_find(const rtmp_l_forwards *fw, const rtmp_msg_hdr *h)
{
    if (fw->n && (h->type == RTMP_MSG_AUDIO || h->type == RTMP_MSG_VIDEO))
        for (int i = 0; i < fw->n; i++)
            if (fw->f[i].stream_id == h->stream_id)
                return fw->f[i].g;
    return NULL;
}

void rtmp_l_forward_warm(const rtmp_l_forwards *fw, rtmp_warm *w)
{
    if (fw->n == 0)
        return;
    rtmp_warm_add(w, fw->f, sizeof fw->f[0] * (size_t)fw->n);
    for (int i = 0; i < fw->n; i++)
        rtmp_group_warm(fw->f[i].g, w);
}

void rtmp_l_forward_send(rtmp_group *g, rtmp_conn_core *cc, const rtmp_msg_hdr *h, const uint8_t *payload)
{
    rtmp_msg_hdr out = *h;
    out.csid = rtmp_chunk_default_csid(h->type);
    rtmp_buf *held = rtmp_reader_payload_buf(rtmp_session_reader(rtmp_conn_core_session(cc)));
    if (h->length > 0)
        rtmp_group_send_held(g, &out, payload, held, rtmp_conn_core_now(cc));
}

void rtmp_l_forward_clear(lua_State *L, rtmp_l_forwards *fw)
{
    while (fw->n > 0) {
        fw->n--;
        if (L)
            luaL_unref(L, LUA_REGISTRYINDEX, fw->f[fw->n].ref);
    }
}
