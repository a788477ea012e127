/*
 * l_media.c: rtmp.media, what luartmp knows of each codec, as Lua reads it.
 * The rows come from the two C tables that decide it, never from a list of
 * their own: the media model's codecs (core/media.h: name, FourCC, legacy
 * id, audio or video) and rtmp.mp4's codec table (core/mp4.h: which of them
 * an MP4 file carries, so publish.lua can send and play.lua can write).
 *
 *   rtmp.media.codecs -> array, in the media model's order, of
 *     { name = "hvc1", kind = "video", fourcc = "hvc1" | nil,
 *       legacy = 12 | nil, legacy_form = true | false, mp4 = true | false }
 *
 * rtmp.caps (lua/rtmp/caps.lua) builds the Enhanced RTMP connect
 * capabilities from it.
 */
#include "l_rtmp.h"
#include "../core/chunk.h"
#include "../core/media.h"
#include "../core/mp4.h"

/* [-0, +1, m] the row of one codec */
static void push_codec(lua_State *L, int codec)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, rtmp_media_codec_name(codec));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, rtmp_media_codec_type(codec) == RTMP_MSG_VIDEO ? "video" : "audio");
    lua_setfield(L, -2, "kind");
    uint32_t fourcc = rtmp_media_fourcc(codec);
    if (fourcc) {
        char b[4] = { (char)(fourcc >> 24), (char)(fourcc >> 16), (char)(fourcc >> 8), (char)fourcc };
        lua_pushlstring(L, b, 4);
        lua_setfield(L, -2, "fourcc");
    }
    int legacy = rtmp_media_legacy_id(codec);
    if (legacy >= 0) {
        lua_pushinteger(L, legacy);
        lua_setfield(L, -2, "legacy");
    }
    lua_pushboolean(L, rtmp_media_legacy_form(codec));
    lua_setfield(L, -2, "legacy_form");
    lua_pushboolean(L, rtmp_mp4_codec_of(codec) != NULL);
    lua_setfield(L, -2, "mp4");
}

void rtmp_l_open_media(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_createtable(L, RTMP_MEDIA_CODEC_COUNT_ - 1, 0);
    for (int codec = 1; codec < RTMP_MEDIA_CODEC_COUNT_; codec++) {
        push_codec(L, codec);
        lua_rawseti(L, -2, codec);
    }
    lua_setfield(L, -2, "codecs");
    lua_setfield(L, -2, "media");
}
