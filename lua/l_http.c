/*
 * l_http.c: outgoing HTTP(S) requests ("rtmp.http.request", Lua-owned),
 * over core/net_curl.c: libcurl on the loop.
 *
 *   local req = rtmp.http.start({ url =, method =, headers =, body =, timeout =,
 *                                 max_body =, redirects =, tls = { ca =, insecure = } },
 *                               function(res, err, code) ... end)
 *   req:cancel()    -- the function is not called; also req's __close
 *   rtmp.http.pending() -> requests in flight
 *
 * The callback form: fn(res) with res = { status =, reason =, headers =
 * { lower-case name = value }, body = }, or fn(nil, err, code) (code:
 * "TIMEOUT", "IO", "MSG_TOO_LONG", "NOMEM"), once, under rtmp_l_pcall.
 * rtmp.http.request, the form that waits in the calling coroutine, is
 * Lua (lua/rtmp/http.lua).  A misuse raises (a field of the wrong type,
 * an unknown field, a header or method with a line break); a URL that is
 * not http(s):// returns nil, err, "INVAL".  docs/HTTP.md.
 *
 * One rtmp_http per Lua state, made at the first request and freed with
 * the state: requests still in flight then are cancelled.  A request in
 * flight keeps its box alive (a registry reference).
 */
#include <ctype.h>
#include <string.h>

#include "l_contain.h"
#include "l_loop.h"
#include "l_settings.h"
#include "../core/error.h"
#include "../core/net_curl.h"

#define HTTP_KEY "rtmp.http.state"
#define REQ_MT "rtmp.http.request"
#define MAX_HEADERS 64

/* The state's requests (the registry's HTTP_KEY). */
typedef struct lhttp {
    rtmp_http *h;   /* NULL once freed */
} lhttp;

typedef struct lreq {
    rtmp_l_state  *st;
    lhttp         *lh;
    rtmp_http_req *r;       /* NULL once done or cancelled */
    int            selfref; /* registry ref to the box while in flight */
} lreq;

static int http_gc(lua_State *L)
{
    lhttp *lh = lua_touserdata(L, 1);
    rtmp_http_free(lh->h);
    lh->h = NULL;
    return 0;
}

/* [-0, +0, e] the state's requests, made on first use. */
static lhttp *http_state(lua_State *L)
{
    lhttp *lh;
    if (lua_getfield(L, LUA_REGISTRYINDEX, HTTP_KEY) == LUA_TUSERDATA) {
        lh = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return lh;
    }
    lua_pop(L, 1);
    lh = lua_newuserdatauv(L, sizeof *lh, 0);
    lh->h = NULL;
    lua_newtable(L);
    lua_pushcfunction(L, http_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lh->h = rtmp_http_new(rtmp_l_state_get(L)->net);
    if (!lh->h)
        luaL_error(L, "rtmp.http: libcurl did not initialise");
    lua_setfield(L, LUA_REGISTRYINDEX, HTTP_KEY);
    return lh;
}

/* ---- the response ---- */

/* [-0, +1, m] the header lines as { lower-case name = value } (repeated
 * names joined with ", "); the status line's reason phrase in *reason. */
static void push_headers(lua_State *L, const char *p, size_t len, const char **reason, size_t *reason_len)
{
    const char *end = p + len;
    lua_newtable(L);
    int t = lua_gettop(L);
    *reason = "";
    *reason_len = 0;
    int first = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (first) { /* "HTTP/1.1 200 OK" */
            first = 0;
            const char *sp = memchr(p, ' ', (size_t)(le - p));
            const char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(le - sp - 1)) : NULL;
            if (sp2) {
                *reason = sp2 + 1;
                *reason_len = (size_t)(le - sp2 - 1);
            }
        } else {
            const char *colon = memchr(p, ':', (size_t)(le - p));
            if (colon && colon > p) {
                luaL_Buffer b;
                luaL_buffinit(L, &b);
                for (const char *c = p; c < colon; c++)
                    luaL_addchar(&b, (char)tolower((unsigned char)*c));
                luaL_pushresult(&b);
                const char *v = colon + 1;
                while (v < le && (*v == ' ' || *v == '\t'))
                    v++;
                const char *ve = le;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                lua_pushvalue(L, -1);
                if (lua_rawget(L, t) == LUA_TSTRING) { /* again: "a, b" */
                    lua_pushliteral(L, ", ");
                    lua_pushlstring(L, v, (size_t)(ve - v));
                    lua_concat(L, 3);
                } else {
                    lua_pop(L, 1);
                    lua_pushlstring(L, v, (size_t)(ve - v));
                }
                lua_rawset(L, t);
            }
        }
        p = next;
    }
}

/* What the done callback hands to deliver. */
typedef struct outcome {
    int                       rc;
    const char               *err;
    const rtmp_http_response *res;
} outcome;

/* fn, outcome: fn(res) or fn(nil, err, code) (under rtmp_l_pcall). */
static int deliver(lua_State *L)
{
    const outcome *o = lua_touserdata(L, 2);
    lua_settop(L, 1);
    if (o->rc < 0) {
        lua_call(L, rtmp_l_push_fail(L, o->err, o->rc), 0);
        return 0;
    }
    const rtmp_http_response *res = o->res;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, res->status);
    lua_setfield(L, -2, "status");
    const char *reason;
    size_t reason_len;
    push_headers(L, res->headers, res->headers_len, &reason, &reason_len);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, reason, reason_len);
    lua_setfield(L, -2, "reason");
    lua_pushlstring(L, (const char *)res->body, res->body_len);
    lua_setfield(L, -2, "body");
    lua_call(L, 1, 0);
    return 0;
}

static void done_cb(rtmp_http_req *r, void *ud, int rc, const char *err, const rtmp_http_response *res)
{
    (void)r;
    lreq *q = ud;
    q->r = NULL;
    outcome o = { rc, err, res };
    rtmp_l_settle(q->st->L, &q->selfref, deliver, &o, "http request callback");
}

/* ---- the request ---- */

/* [-0, +0, e] raise "rtmp.http.request: <msg>" without a position (the
 * Lua form adds the caller's). */
static int misuse(lua_State *L, const char *fmt, const char *arg)
{
    lua_pushliteral(L, "rtmp.http.request: ");
    lua_pushfstring(L, fmt, arg);
    lua_concat(L, 2);
    return lua_error(L);
}

static const char *const FIELDS[] = { "url", "method", "headers", "body", "timeout", "max_body", "redirects",
                                      "tls", NULL };

/* [-0, +0, e] the string field k of t (NULL when nil); raises for another type. */
static const char *opt_string(lua_State *L, int t, const char *k, size_t *len)
{
    int kind = lua_getfield(L, t, k);
    const char *s = NULL;
    if (kind == LUA_TSTRING)
        s = lua_tolstring(L, -1, len);
    else if (kind != LUA_TNIL)
        misuse(L, "%s must be a string", k);
    lua_pop(L, 1); /* still referenced by t */
    return s;
}

/* Whether s holds a character that would end an HTTP line. */
static int has_break(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 1;
    return 0;
}

/* [-0, +1, e] rtmp.http.start(t, fn) -> request | nil, err, code */
static int l_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    /* a misspelt field is an error, not silence */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int known = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = 0; FIELDS[i] && !known; i++)
                known = !strcmp(FIELDS[i], lua_tostring(L, -2));
        if (!known)
            misuse(L, "unknown field '%s' (want url, method, headers, body, timeout, max_body, redirects or tls)",
                   luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
    rtmp_http_request q;
    memset(&q, 0, sizeof q);
    size_t n;
    q.url = opt_string(L, 1, "url", &n);
    if (!q.url)
        misuse(L, "url must be a string%s", "");
    q.method = opt_string(L, 1, "method", &n);
    if (q.method) {
        for (size_t i = 0; i < n; i++)
            if (!isupper((unsigned char)q.method[i]))
                misuse(L, "method must be an upper-case HTTP method (GET, POST, ...), not '%s'", q.method);
        if (n == 0)
            misuse(L, "method must not be empty%s", "");
    }
    q.body = (const uint8_t *)opt_string(L, 1, "body", &q.body_len);
    lua_getfield(L, 1, "timeout");
    q.timeout = rtmp_l_setting_get(L, lua_gettop(L), "http_timeout");
    lua_pop(L, 1);
    if (q.timeout <= 0)
        misuse(L, "timeout must be a number of seconds > 0%s", "");
    lua_getfield(L, 1, "max_body");
    q.max_body = (size_t)rtmp_l_setting_get(L, lua_gettop(L), "http_max_body");
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "redirects") != LUA_TNIL) {
        lua_Integer k = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
        if (k < 0 || k > 50)
            misuse(L, "redirects must be a whole number, 0 to 50%s", "");
        q.redirects = (long)k;
    }
    lua_pop(L, 1);
    /* headers: { Name = "value" }, each a line "Name: value" kept alive by
     * the table `held` until the request has started (curl copies them) */
    const char *lines[MAX_HEADERS];
    lua_newtable(L);
    int held = lua_gettop(L);
    int kind = lua_getfield(L, 1, "headers");
    int ht = lua_gettop(L);
    if (kind == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, ht)) {
            size_t kl, vl;
            if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
                misuse(L, "headers must be a table of name = string value%s", "");
            const char *k = lua_tolstring(L, -2, &kl);
            lua_pushvalue(L, -1); /* a number converted in a copy: lua_next needs the key alone */
            const char *v = lua_tolstring(L, -1, &vl);
            if (kl == 0 || has_break(k, kl) || memchr(k, ':', kl) || has_break(v, vl))
                misuse(L, "header '%s': a name without ':' and a value without line breaks", k);
            if (q.nheaders == MAX_HEADERS)
                misuse(L, "more than 64 headers%s", "");
            lua_pushfstring(L, "%s: %s", k, v);
            lines[q.nheaders] = lua_tostring(L, -1);
            lua_rawseti(L, held, (lua_Integer)++q.nheaders);
            lua_pop(L, 2);
        }
    } else if (kind != LUA_TNIL) {
        misuse(L, "headers must be a table%s", "");
    }
    q.headers = lines;
    /* the request's own tls table may not hold RTMP's fields; the command
     * line's (--tls-cert ... of the server's listeners) are not its own */
    static const char *const rtmp_only[] = { "cert", "key", "ciphersuites", "ciphers", "sni", "openssl_records" };
    if (lua_getfield(L, 1, "tls") == LUA_TTABLE)
        for (size_t i = 0; i < sizeof rtmp_only / sizeof rtmp_only[0]; i++) {
            if (lua_getfield(L, -1, rtmp_only[i]) != LUA_TNIL)
                misuse(L, "tls takes ca and insecure here (%s is for RTMP)", rtmp_only[i]);
            lua_pop(L, 1);
        }
    lua_pop(L, 1);
    rtmp_tls_config tls;
    rtmp_l_settings_read_tls(L, 1, &tls);
    q.ca = tls.ca;
    q.insecure = tls.insecure;

    lhttp *lh = http_state(L);
    lreq *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->st = rtmp_l_state_get(L);
    b->lh = lh;
    b->r = NULL;
    b->selfref = LUA_NOREF;
    luaL_setmetatable(L, REQ_MT);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1);
    char err[512];
    b->r = rtmp_http_start(lh->h, &q, done_cb, b, err, sizeof err);
    if (!b->r) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushstring(L, rtmp_errname(strstr(err, "out of memory") ? RTMP_ERR_NOMEM : RTMP_ERR_INVAL));
        return 3;
    }
    lua_pushvalue(L, -1);
    b->selfref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* req:cancel(): stop a request in flight; its function is not called. */
static int req_cancel(lua_State *L)
{
    lreq *b = luaL_checkudata(L, 1, REQ_MT);
    if (b->r && b->lh->h)
        rtmp_http_cancel(b->r);
    b->r = NULL;
    rtmp_l_release(L, &b->selfref);
    return 0;
}

/* req:active() -> whether the request is still in flight. */
static int req_active(lua_State *L)
{
    lreq *b = luaL_checkudata(L, 1, REQ_MT);
    lua_pushboolean(L, b->r != NULL && b->lh->h != NULL);
    return 1;
}

/* A box in flight is collected only when the state closes: http_gc then
 * cancels every request (and says how many), whichever goes first. */
static int req_gc(lua_State *L)
{
    lreq *b = lua_touserdata(L, 1);
    b->r = NULL;
    return 0;
}

/* rtmp.http.pending() -> requests in flight (0 before the first). */
static int l_pending(lua_State *L)
{
    lua_Integer n = 0;
    if (lua_getfield(L, LUA_REGISTRYINDEX, HTTP_KEY) == LUA_TUSERDATA) {
        lhttp *lh = lua_touserdata(L, -1);
        n = lh->h ? (lua_Integer)rtmp_http_pending(lh->h) : 0;
    }
    lua_pushinteger(L, n);
    return 1;
}

static const luaL_Reg req_methods[] = {
    { "cancel", req_cancel }, { "active", req_active }, { NULL, NULL },
};

void rtmp_l_open_http(lua_State *L)
{
    luaL_newmetatable(L, REQ_MT);
    lua_newtable(L);
    luaL_setfuncs(L, req_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, req_cancel);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_start);
    lua_setfield(L, -2, "start");
    lua_pushcfunction(L, l_pending);
    lua_setfield(L, -2, "pending");
    lua_setfield(L, -2, "http");
}
