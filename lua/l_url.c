/*
 * l_url.c: rtmp.parse_url, the URL parser of the core (core/url.h) for
 * Lua.
 *
 *   rtmp.parse_url("rtmp[s]://host[:port]/app[/instance...]")
 *     -> { host =, port =, app =, path =, tc_url =, tls = } | nil, err
 */
#include "l_rtmp.h"
#include "../core/error.h"
#include "../core/url.h"

int rtmp_l_url_fail(lua_State *L, int rc, const char *url)
{
    lua_pushnil(L);
    if (rc == RTMP_ERR_URL_SCHEME)
        lua_pushfstring(L, "%s: %s", rtmp_strerror(rc), url);
    else
        lua_pushstring(L, rtmp_strerror(rc));
    return 2;
}

void rtmp_l_url_set(lua_State *L, const rtmp_url *u, int address)
{
    const struct { const char *k; rtmp_url_part p; } parts[] = {
        { "host", u->host }, { "port", u->port }, { "app", u->app }, { "path", u->path }, { "tc_url", u->tc_url },
    };
    for (size_t i = address ? 0 : 2; i < sizeof parts / sizeof parts[0]; i++) {
        lua_pushlstring(L, parts[i].p.s, parts[i].p.len);
        lua_setfield(L, -2, parts[i].k);
    }
}

static int l_parse_url(lua_State *L)
{
    size_t len;
    const char *url = luaL_checklstring(L, 1, &len);
    rtmp_url u;
    int rc = rtmp_url_parse(url, len, &u);
    if (rc < 0)
        return rtmp_l_url_fail(L, rc, url);
    lua_createtable(L, 0, 6);
    rtmp_l_url_set(L, &u, 1);
    lua_pushboolean(L, u.tls); /* rtmps:// */
    lua_setfield(L, -2, "tls");
    return 1;
}

void rtmp_l_open_url(lua_State *L)
{
    lua_pushcfunction(L, l_parse_url);
    lua_setfield(L, -2, "parse_url");
}
