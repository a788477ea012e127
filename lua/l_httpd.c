/*
 * l_httpd.c: HTTP servers ("rtmp.http.server"), over core/net_http.c.
 *
 *   local srv, err = rtmp.http.listen{
 *     listen = "127.0.0.1:8080",
 *     routes = { ["/metrics"] = fn, ["PREFIX*"] = fn },   -- and/or
 *     handler = fn,                                      -- what no route takes
 *     max_header = 16384, max_body = 65536,              -- 431, 413 past them
 *     request_timeout = 10, idle_timeout = 30,           -- 408; closing idle keep-alive
 *     max_output = 1048576, max_connections = 1024 }
 *   srv.port, srv.connections, srv:close() (also __close)
 *
 * fn(req) -> status, headers, body: req = { method, url, path, query =
 * { name = value (decoded) }, headers = { lower-case name = value }, body,
 * peer, id, websocket (true: the request asks for a WebSocket) };
 * headers = { Name = value } (or nil), body a string (or nil).
 *
 * A streamed answer: fn(req) -> 200, headers, group [, opts]: the
 * connection becomes an FLV player of the rtmp.group (core/group.h: the
 * group's shared FLV tags, its late-join cache and slow-reader policy):
 * HTTP-FLV, or WS-FLV when req.websocket (core/net_http.h,
 * rtmp_hconn_stream).  opts: legacy (a legacy member), max_frame (the
 * client's WebSocket frames, bytes), on_close (fn(reason, bytes_out,
 * dropped), called once when the streamed answer's connection closes:
 * by the peer, dropped as slow, ended by the group; its bytes written
 * and frames dropped), and the connection settings
 * max_queue_bytes, max_queue_time, max_queue_stall, max_output,
 * send_buffer over rtmp.options.  A route is a path, matched exactly, or a prefix ending in "*"
 * (the longest wins); a request no route and no handler takes gets 404.
 * A handler that raises (logged with its traceback and the connection's
 * id) or returns no status answers 500.  docs/HTTP.md.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "l_contain.h"
#include "l_group.h"
#include "l_loop.h"
#include "l_rtmp.h"
#include "l_settings.h"
#include "../core/error.h"
#include "../core/log.h"
#include "../core/net_http.h"

#define HSRV_MT "rtmp.http.server"

typedef struct lhsrv {
    rtmp_l_state *st;
    rtmp_hsrv    *s;       /* NULL once closed */
    int           routes;  /* registry ref to the options table */
} lhsrv;

/* [-0, +1, m] s[0..n) percent-decoded ('+' as a space when plus). */
static void push_decoded(lua_State *L, const char *s, size_t n, int plus)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1])
            && isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            luaL_addchar(&b, (char)strtol(hex, NULL, 16));
            i += 2;
        } else if (plus && s[i] == '+') {
            luaL_addchar(&b, ' ');
        } else {
            luaL_addchar(&b, s[i]);
        }
    }
    luaL_pushresult(&b);
}

/* [-0, +1, m] the request as a table. */
static void push_req(lua_State *L, rtmp_hconn *c, const rtmp_httpd_req *r)
{
    lua_createtable(L, 0, 9);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, r->url, r->url_len);
    lua_setfield(L, -2, "url");
    const char *q = memchr(r->url, '?', r->url_len);
    size_t plen = q ? (size_t)(q - r->url) : r->url_len;
    push_decoded(L, r->url, plen, 0);
    lua_setfield(L, -2, "path");
    lua_newtable(L);
    if (q) {
        const char *p = q + 1, *end = r->url + r->url_len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *e = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (e > p) {
                push_decoded(L, p, (size_t)((eq ? eq : e) - p), 1);
                if (eq)
                    push_decoded(L, eq + 1, (size_t)(e - eq - 1), 1);
                else
                    lua_pushliteral(L, "");
                lua_rawset(L, -3);
            }
            p = e + 1;
        }
    }
    lua_setfield(L, -2, "query");
    lua_createtable(L, 0, (int)r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (size_t k = 0; k < r->headers[i].name_len; k++)
            luaL_addchar(&b, (char)tolower((unsigned char)r->headers[i].name[k]));
        luaL_pushresult(&b);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) { /* again: "a, b" */
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, r->headers[i].value, r->headers[i].value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, r->headers[i].value, r->headers[i].value_len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, (const char *)r->body, r->body_len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, rtmp_hconn_peer(c));
    lua_setfield(L, -2, "peer");
    lua_pushinteger(L, (lua_Integer)rtmp_hconn_id(c));
    lua_setfield(L, -2, "id");
    lua_pushboolean(L, rtmp_hconn_websocket(c) != 0);
    lua_setfield(L, -2, "websocket");
}

/* [-0, +1, -] the function for path in the options table at t: routes[path],
 * else the longest routes["PREFIX*"] with path under PREFIX, else
 * handler; nil when none. */
static void find_route(lua_State *L, int t, const char *path)
{
    if (lua_getfield(L, t, "routes") == LUA_TTABLE) {
        int rt = lua_gettop(L);
        if (lua_getfield(L, rt, path) == LUA_TFUNCTION) {
            lua_remove(L, rt);
            return;
        }
        lua_pop(L, 1);
        lua_pushnil(L); /* the best so far, at rt + 1 */
        size_t best = 0;
        lua_pushnil(L);
        while (lua_next(L, rt)) {
            size_t kl;
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
            if (k && kl && k[kl - 1] == '*' && lua_type(L, -1) == LUA_TFUNCTION && (kl > best || best == 0)
                && !strncmp(path, k, kl - 1)) {
                best = kl;
                lua_replace(L, rt + 1);
            } else {
                lua_pop(L, 1);
            }
        }
        lua_remove(L, rt);
        if (!lua_isnil(L, -1))
            return;
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "handler");
}

/* [-0, +0, e] the headers table at idx as "Name: value\r\n" lines in b;
 * raises for a name or value that would break a line. */
static void add_headers(lua_State *L, int idx, luaL_Buffer *b)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t kl, vl;
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            luaL_error(L, "response headers must be { name = string }");
        const char *k = lua_tolstring(L, -2, &kl);
        lua_pushvalue(L, -1);
        const char *v = lua_tolstring(L, -1, &vl);
        if (!kl || strpbrk(k, "\r\n:") || strpbrk(v, "\r\n") || strlen(k) != kl || strlen(v) != vl)
            luaL_error(L, "response header '%s': a name without ':' and a value without line breaks", k);
        if (!strcasecmp(k, "content-length") || !strcasecmp(k, "connection"))
            luaL_error(L, "response header '%s' is the server's", k);
        luaL_addlstring(b, k, kl);
        luaL_addstring(b, ": ");
        luaL_addlstring(b, v, vl);
        luaL_addstring(b, "\r\n");
        lua_pop(L, 2);
    }
}

/* [-0, +0, e] Stream the group at index 3 to c (a handler's 200, headers
 * (pushed string at 5), group, opts at 4). */
static void stream_group(lua_State *L, rtmp_hconn *c)
{
    rtmp_group *g = *(rtmp_group **)lua_touserdata(L, 3); /* l_group.h: the box begins with it */
    if (!g)
        luaL_error(L, "an HTTP handler streams a group that is finalized");
    if (lua_tointeger(L, 1) != 200)
        luaL_error(L, "an HTTP handler streaming a group answers 200, not %d", (int)lua_tointeger(L, 1));
    int opts = lua_istable(L, 4) ? 4 : 0;
    if (!opts && !lua_isnil(L, 4))
        luaL_error(L, "stream options must be a table or nil");
    rtmp_conn_config cc;
    rtmp_l_settings_read(L, opts, &cc, RTMP_ROLE_SERVER);
    rtmp_hconn_stream_opts o = {
        .policy = { cc.max_queue_bytes, cc.max_queue_time, cc.max_queue_stall },
        .max_output = cc.max_output,
        .send_buffer = cc.send_buffer,
    };
    if (opts) {
        lua_getfield(L, opts, "legacy");
        o.legacy = lua_toboolean(L, -1);
        if (lua_getfield(L, opts, "max_frame") != LUA_TNIL) {
            lua_Integer v = luaL_checkinteger(L, -1);
            if (v < 1)
                luaL_error(L, "rtmp.http: max_frame must be at least 1 byte, not %I", v);
            o.max_frame = (uint64_t)v;
        }
        if (lua_getfield(L, opts, "on_close") != LUA_TNIL && !lua_isfunction(L, -1))
            luaL_error(L, "stream option on_close must be a function");
        lua_pop(L, 3);
    }
    if (rtmp_hconn_stream(c, lua_tostring(L, 5), g, &o) == 0 && opts
        && lua_getfield(L, opts, "on_close") == LUA_TFUNCTION) {
        /* the connection's ud: the registry reference of its on_close (h_close) */
        rtmp_hconn_set_ud(c, (void *)(intptr_t)luaL_ref(L, LUA_REGISTRYINDEX));
    }
}

/* fn, req, conn (light): call fn(req) and answer with what it returns
 * (under rtmp_l_pcall). */
static int dispatch(lua_State *L)
{
    rtmp_hconn *c = lua_touserdata(L, 3);
    lua_settop(L, 2);
    lua_call(L, 1, 4);
    if (!lua_isinteger(L, 1) || lua_tointeger(L, 1) < 100 || lua_tointeger(L, 1) > 999)
        return luaL_error(L, "an HTTP handler returns status (100-999), headers, body; got %s",
                          luaL_typename(L, 1));
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (lua_type(L, 2) == LUA_TTABLE)
        add_headers(L, 2, &b);
    else if (!lua_isnil(L, 2))
        return luaL_error(L, "response headers must be a table or nil");
    luaL_pushresult(&b); /* at 5 */
    if (luaL_testudata(L, 3, RTMP_L_GROUP_MT)) {
        stream_group(L, c);
        return 0;
    }
    size_t len = 0;
    const char *body = NULL;
    if (!lua_isnil(L, 3) && !(body = lua_tolstring(L, 3, &len)))
        return luaL_error(L, "response body must be a string, a group or nil");
    rtmp_hconn_respond(c, (int)lua_tointeger(L, 1), lua_tostring(L, 5), (const uint8_t *)body, len);
    return 0;
}

static void h_request(rtmp_hconn *c, void *ud, const rtmp_httpd_req *r)
{
    lhsrv *srv = ud;
    lua_State *L = srv->st->L;
    if (!L) {
        rtmp_hconn_respond(c, 503, NULL, NULL, 0);
        return;
    }
    lua_pushcfunction(L, dispatch);
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->routes);
    int t = lua_gettop(L);
    push_req(L, c, r);
    lua_getfield(L, -1, "path");
    find_route(L, t, lua_tostring(L, -1));
    lua_remove(L, -2); /* path */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 4);
        static const char nf[] = "404 Not Found\n";
        rtmp_hconn_respond(c, 404, "Content-Type: text/plain\r\n", (const uint8_t *)nf, sizeof nf - 1);
        return;
    }
    /* dispatch, t, req, fn -> dispatch, fn, req, conn */
    lua_remove(L, t);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, c);
    char what[64];
    snprintf(what, sizeof what, "http %lu %s handler", rtmp_hconn_id(c), rtmp_hconn_peer(c));
    rtmp_l_pcall(L, NULL, 3, what);
    static const char ie[] = "500 Internal Server Error\n";
    if (rtmp_hconn_respond(c, 500, "Content-Type: text/plain\r\n", (const uint8_t *)ie, sizeof ie - 1) == 0)
        rtmp_log(RTMP_LOG_WARN, 0, rtmp_hconn_peer(c), "http %lu: %s %s answered 500 (handler failed)",
                 rtmp_hconn_id(c), r->method, r->url);
}

/* A streamed answer's connection closes: its on_close (stream_group),
 * if any, gets reason, bytes_out, dropped. */
static void h_close(rtmp_hconn *c, void *ud, const char *reason)
{
    lhsrv *srv = ud;
    lua_State *L = srv->st->L;
    int ref = (int)(intptr_t)rtmp_hconn_get_ud(c);
    if (!ref || !L)
        return;
    rtmp_hconn_set_ud(c, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    lua_pushstring(L, reason);
    lua_pushinteger(L, (lua_Integer)rtmp_hconn_bytes_out(c));
    lua_pushinteger(L, (lua_Integer)rtmp_hconn_dropped(c));
    char what[64];
    snprintf(what, sizeof what, "http %lu %s on_close", rtmp_hconn_id(c), rtmp_hconn_peer(c));
    rtmp_l_pcall(L, NULL, 3, what);
}

static const rtmp_hsrv_handler hsrv_handler = { h_request, h_close };

/* [-0, +0, e] a number option of t, > 0, else def. */
static double opt_pos(lua_State *L, int t, const char *k, double def)
{
    int kind = lua_getfield(L, t, k);
    double v = def;
    if (kind != LUA_TNIL) {
        if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) <= 0)
            luaL_error(L, "rtmp.http.listen: %s must be a number > 0", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static const char *const FIELDS[] = { "listen", "routes", "handler", "max_header", "max_body", "request_timeout",
                                      "idle_timeout", "max_output", "max_connections", NULL };

/* rtmp.http.listen{ ... } -> server | nil, err */
static int l_listen(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int known = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = 0; FIELDS[i] && !known; i++)
                known = !strcmp(FIELDS[i], lua_tostring(L, -2));
        if (!known)
            return luaL_error(L, "rtmp.http.listen: unknown field '%s'", luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "listen");
    const char *addr = lua_tostring(L, -1);
    if (!addr)
        return luaL_error(L, "rtmp.http.listen: listen must be an address (\"127.0.0.1:8080\")");
    int rk = lua_getfield(L, 1, "routes"), hk = lua_getfield(L, 1, "handler");
    if ((rk != LUA_TNIL && rk != LUA_TTABLE) || (hk != LUA_TNIL && hk != LUA_TFUNCTION) || (rk == LUA_TNIL && hk == LUA_TNIL))
        return luaL_error(L, "rtmp.http.listen: routes (a table of path = function) and/or handler (a function)");
    lua_pop(L, 2);
    rtmp_hsrv_config cfg;
    rtmp_hsrv_config_default(&cfg);
    cfg.limits.max_header = (size_t)opt_pos(L, 1, "max_header", (double)cfg.limits.max_header);
    cfg.limits.max_body = (size_t)opt_pos(L, 1, "max_body", (double)cfg.limits.max_body);
    cfg.request_timeout = opt_pos(L, 1, "request_timeout", cfg.request_timeout);
    cfg.idle_timeout = opt_pos(L, 1, "idle_timeout", cfg.idle_timeout);
    cfg.max_output = (size_t)opt_pos(L, 1, "max_output", (double)cfg.max_output);
    cfg.max_conns = (size_t)opt_pos(L, 1, "max_connections", (double)cfg.max_conns);

    lhsrv *srv = lua_newuserdatauv(L, sizeof *srv, 0);
    srv->st = rtmp_l_state_get(L);
    srv->s = NULL;
    srv->routes = LUA_NOREF;
    luaL_setmetatable(L, HSRV_MT);
    char err[300];
    srv->s = rtmp_hsrv_listen(srv->st->net, addr, &cfg, &hsrv_handler, srv, err, sizeof err);
    if (!srv->s) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushvalue(L, 1);
    srv->routes = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1); /* reachable while it listens */
    lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    return 1;
}

static int hsrv_close(lua_State *L)
{
    lhsrv *srv = luaL_checkudata(L, 1, HSRV_MT);
    if (srv->s) {
        rtmp_hsrv_close(srv->s);
        srv->s = NULL;
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    }
    if (srv->routes != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, srv->routes);
        srv->routes = LUA_NOREF;
    }
    return 0;
}

static int hsrv_index(lua_State *L)
{
    lhsrv *srv = luaL_checkudata(L, 1, HSRV_MT);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "port") && srv->s) {
        lua_pushinteger(L, rtmp_hsrv_port(srv->s));
        return 1;
    }
    if (!strcmp(k, "connections")) {
        lua_pushinteger(L, srv->s ? (lua_Integer)rtmp_hsrv_conns(srv->s) : 0);
        return 1;
    }
    if (!strcmp(k, "close")) {
        lua_pushcfunction(L, hsrv_close);
        return 1;
    }
    return 0;
}

void rtmp_l_open_httpd(lua_State *L)
{
    luaL_newmetatable(L, HSRV_MT);
    lua_pushcfunction(L, hsrv_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hsrv_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "http") != LUA_TTABLE)
        luaL_error(L, "rtmp_l_open_httpd: rtmp.http first (rtmp_l_open_http)");
    lua_pushcfunction(L, l_listen);
    lua_setfield(L, -2, "listen");
    lua_pop(L, 1);
}
