/*
 * l_settings.c: the one table of connection and server settings (see
 * l_settings.h), its Lua parser, its command-line spelling and --help,
 * rtmp.settings and rtmp.options.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "l_settings.h"
#include "../core/amf.h"
#include "../core/handshake.h"

/* C types of the fields settings fill. */
enum { T_NONE = -1, T_DOUBLE, T_INT, T_UNSIGNED, T_ULONG, T_ULLONG };

#define CTYPE(m) _Generic(((rtmp_conn_config *)0)->m, double: T_DOUBLE, int: T_INT, unsigned: T_UNSIGNED, \
                          unsigned long: T_ULONG, unsigned long long: T_ULLONG, default: T_NONE)
#define FIELD(m) RTMP_L_FOR_CONN, offsetof(rtmp_conn_config, m), CTYPE(m)
#define CONTAIN RTMP_L_FOR_CONTAIN, 0, T_NONE
#define OTHER RTMP_L_FOR_OTHER, 0, T_NONE
#define TLS(m) RTMP_L_FOR_TLS, offsetof(rtmp_tls_config, m), T_NONE

#define U32 4294967295.0
#define NEVER 1e9        /* seconds: no practical bound */
#define HUGE_BYTES 1e15  /* bytes: no practical bound */

static const char *const ext_ts_names[] = { "detect", "spec", "never", NULL };
static const int ext_ts_values[] = { RTMP_EXT_TS_DETECT, RTMP_EXT_TS_SPEC, RTMP_EXT_TS_NEVER };
static const char *const on_error_names[] = { "close", "drop", NULL };
static const int on_error_values[] = { RTMP_L_ON_ERROR_CLOSE, RTMP_L_ON_ERROR_DROP };

/* The settings, in the order --help lists them. */
static const rtmp_l_setting settings[] = {
    { "listen", NULL, "ADDR", RTMP_L_SET_ADDRESS, OTHER, 0, 0, 0, NULL, NULL,
      "where a server listens: PORT, HOST:PORT or [V6]:PORT (a bare port: IPv4 and IPv6), after "
      "rtmps:// for TLS (with tls.cert and tls.key), or an array of one" },
    { "tls.cert", "--tls-cert", "FILE", RTMP_L_SET_STRING, TLS(cert), 0, 0, 0, NULL, NULL,
      "rtmps:// listeners: the certificate chain (PEM), the server's first" },
    { "tls.key", "--tls-key", "FILE", RTMP_L_SET_STRING, TLS(key), 0, 0, 0, NULL, NULL,
      "rtmps:// listeners: the certificate's private key (PEM)" },
    { "tls.ciphersuites", "--tls-ciphersuites", "LIST", RTMP_L_SET_STRING, TLS(ciphersuites), 0, 0, 0, NULL, NULL,
      "rtmps:// listeners: TLS 1.3 suites, the one preferred first (OpenSSL's names, ':' between; "
      "\"\" = no TLS 1.3)" },
    { "tls.ciphers", "--tls-ciphers", "LIST", RTMP_L_SET_STRING, TLS(ciphers), 0, 0, 0, NULL, NULL,
      "rtmps:// listeners: TLS 1.2 ciphers, the one preferred first (OpenSSL's cipher-list syntax)" },
    { "tls.ca", "--tls-ca", "FILE", RTMP_L_SET_STRING, TLS(ca), 0, 0, 0, NULL, NULL,
      "rtmps:// connections: CA certificates (PEM) trusted besides the system store" },
    { "tls.insecure", "--tls-insecure", NULL, RTMP_L_SET_BOOLEAN, TLS(insecure), 0, 0, 0, NULL, NULL,
      "rtmps:// connections: do not verify the server's certificate (tests only)" },
    { "tls.sni", NULL, "NAME", RTMP_L_SET_STRING, TLS(sni), 0, 0, 0, NULL, NULL,
      "rtmps:// connections: the server name sent and verified instead of the URL's host" },
    { "tls.openssl_records", "--tls-openssl-records", NULL, RTMP_L_SET_BOOLEAN, TLS(openssl_records), 0, 0, 0,
      NULL, NULL,
      "rtmps://: TLS 1.3 output as records OpenSSL's SSL_write makes, not sealed by luartmp (docs/TLS.md)" },
    { "handshake_timeout", "--handshake-timeout", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(handshake_timeout), 0, 0, NEVER, NULL, NULL,
      "close connections that have not completed the handshake this long after connecting" },
    { "connect_timeout", "--connect-timeout", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(connect_timeout), 0, 0, NEVER, NULL, NULL,
      "close accepted connections that send no connect command this long after the handshake; "
      "0 = never" },
    { "idle_timeout", "--idle-timeout", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(idle_timeout), 0, 0, NEVER, NULL, NULL,
      "close connections in which no whole message arrived and nothing was written this long; "
      "0 = never" },
    { "max_per_address", "--max-per-address", "N", RTMP_L_SET_COUNT,
      FIELD(max_per_address), 0, 0, 1e9, NULL, NULL,
      "connections open at once from one IP address; more are logged and closed at once; "
      "0 = no cap" },
    { "linger", "--linger", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(linger), 0, 0, NEVER, NULL, NULL,
      "a closed connection's socket may stay open this long to write what was queued and end "
      "with a FIN; 0 = close at once" },
    { "merge_window", "--merge-window", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(merge_window), 0, 0, 5, NULL, NULL,
      "let media fanned out to players wait up to this long to be written together, in fewer "
      "system calls; 0 = at once" },
    { "max_output", "--max-output", "BYTES", RTMP_L_SET_BYTES,
      FIELD(max_output), 0, 0, HUGE_BYTES, NULL, NULL,
      "output queued to a connection before it is closed as a slow reader" },
    { "max_queue_bytes", "--max-queue-bytes", "BYTES", RTMP_L_SET_BYTES,
      FIELD(max_queue_bytes), 0, 0, HUGE_BYTES, NULL, NULL,
      "drop media fanned out to a player while more than this is queued (the slow-reader policy); "
      "0 = no bound" },
    { "max_queue_time", "--max-queue-time", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(max_queue_time), 0, 0, NEVER, NULL, NULL,
      "... or while more than this many seconds of media are queued; 0 = no bound" },
    { "max_queue_stall", "--max-queue-stall", "SECONDS", RTMP_L_SET_SECONDS,
      FIELD(max_queue_stall), 0, 0, NEVER, NULL, NULL,
      "close a player that stays over either bound this long; 0 = never" },
    { "send_buffer", NULL, "BYTES", RTMP_L_SET_BYTES,
      FIELD(send_buffer), 0, 0, 2147483647.0, NULL, NULL,
      "SO_SNDBUF of the socket; 0 = the kernel's autotuning" },
    { "recv_buffer", NULL, "BYTES", RTMP_L_SET_BYTES,
      FIELD(recv_buffer), 0, 0, 2147483647.0, NULL, NULL,
      "SO_RCVBUF of the socket (set before connecting); 0 = the kernel's autotuning" },
    { "max_message", "--max-message", "BYTES", RTMP_L_SET_BYTES,
      FIELD(session.reader.max_message), 0, 0, U32, NULL, NULL,
      "longest message accepted from a peer" },
    { "max_amf_message", NULL, "BYTES", RTMP_L_SET_BYTES,
      FIELD(session.reader.max_amf_message), 0, 0, U32, NULL, NULL,
      "longest command, data or shared-object message accepted (they are decoded into Lua "
      "values); 0 = max_message" },
    { "max_chunk_streams", NULL, "N", RTMP_L_SET_COUNT,
      FIELD(session.reader.max_chunk_streams), 0, 0, U32, NULL, NULL,
      "chunk streams a peer may use" },
    { "min_chunk_size", NULL, "BYTES", RTMP_L_SET_COUNT,
      FIELD(session.reader.min_chunk_size), 0, 1, 2147483647.0, NULL, NULL,
      "smallest chunk size a peer may set" },
    { "max_chunk_size", NULL, "BYTES", RTMP_L_SET_COUNT,
      FIELD(session.reader.max_chunk_size), 0, 1, 2147483647.0, NULL, NULL,
      "largest chunk size a peer may set" },
    { "ext_ts_fmt3", NULL, "MODE", RTMP_L_SET_CHOICE,
      FIELD(session.reader.ext_ts_fmt3), 0, 0, 0, ext_ts_names, ext_ts_values,
      "whether a fmt 3 chunk after an extended timestamp repeats it: detect (tolerant), spec "
      "(always), never" },
    { "accept_fresh_fmt", NULL, "BOOLEAN", RTMP_L_SET_BOOLEAN,
      FIELD(session.reader.accept_fresh_fmt), 0, 0, 0, NULL, NULL,
      "a new chunk stream may start with a fmt 1-3 header (the fields it lacks are zero)" },
    { "ack_window", NULL, "BYTES", RTMP_L_SET_BYTES,
      FIELD(session.ack_window), 0, 0, U32, NULL, NULL,
      "acknowledgement window used until the peer sends one" },
    { "max_amf_depth", NULL, "N", RTMP_L_SET_COUNT,
      FIELD(session.max_amf_depth), 0, 1, RTMP_AMF_MAX_DEPTH, NULL, NULL,
      "nesting accepted in AMF values from a peer" },
    { "bytes_in_start", NULL, "BYTES", RTMP_L_SET_BYTES,
      FIELD(session.bytes_in_start), 0, 0, 9007199254740992.0, NULL, NULL,
      "initial count of bytes received, the acknowledgement sequence (resuming a session; tests "
      "of the 2^32 wrap)" },
    { "plain_handshake", NULL, "BOOLEAN", RTMP_L_SET_BOOLEAN,
      FIELD(session.hs_flags), RTMP_HS_FLAG_PLAIN, 0, 0, NULL, NULL,
      "a plain handshake: no digest in our C1/S1" },
    { "handshake_seed", NULL, "N", RTMP_L_SET_INTEGER,
      FIELD(session.hs_seed), 0, 0, 0, NULL, NULL,
      "seed of the handshake's filler bytes, so the output is a function of the input (replay, "
      "tests); none: random" },
    { "auto", NULL, "TABLE", RTMP_L_SET_AUTOS,
      FIELD(session.autos), 0, 0, 0, NULL, NULL,
      "the engine's automatic behaviours, each on or off: { ack =, ping =, chunk_size =, "
      "abort =, window =, bandwidth =, bandwidth_reply = }" },
    { "passthrough", NULL, "BOOLEAN", RTMP_L_SET_BOOLEAN,
      FIELD(passthrough), 0, 0, 0, NULL, NULL,
      "a byte pipe, no RTMP: the bytes read go to on_data (docs/PROXY.md)" },
    { "script_instructions", "--script-instructions", "N", RTMP_L_SET_COUNT,
      CONTAIN, 0, 0, 1e15, NULL, NULL,
      "stop a call into the script (a handler, a timer) after this many Lua instructions; "
      "0 = no limit" },
    { "on_error", "--on-error", "close|drop", RTMP_L_SET_CHOICE,
      CONTAIN, 0, 0, 0, on_error_names, on_error_values,
      "a script error in a connection's handler closes the connection (close) or drops only "
      "that call (drop)" },
    { "gop_max_bytes", NULL, "BYTES", RTMP_L_SET_BYTES, OTHER, 0, 0, HUGE_BYTES, NULL, NULL,
      "a group's late-join cache (rtmp.group{cache = true}) keeps the current GOP while it holds "
      "at most this much payload (default 32 MiB); a joiner's first burst is bounded by it, "
      "not by max_output" },
    { "drain_to", "--drain-to", "URL", RTMP_L_SET_STRING, OTHER, 0, 0, 0, NULL, NULL,
      "SIGTERM drains instead of shutting down (rtmp.drain, docs/DRAIN.md): stop accepting, ask "
      "every client that can reconnect to reconnect to this rtmp[s]:// URL, close the rest at "
      "drain_timeout" },
    { "drain_timeout", "--drain-timeout", "SECONDS", RTMP_L_SET_SECONDS, OTHER, 0, 0, NEVER, NULL, NULL,
      "how long a drain waits for the connections to leave before it closes them" },
    { "http_timeout", "--http-timeout", "SECONDS", RTMP_L_SET_SECONDS, OTHER, 0, 0.001, NEVER, NULL, NULL,
      "an outgoing HTTP request (rtmp.http.request, notifications) that has no complete response "
      "this long fails" },
    { "http_max_body", "--http-max-body", "BYTES", RTMP_L_SET_BYTES, OTHER, 0, 0, HUGE_BYTES, NULL, NULL,
      "an outgoing HTTP request whose response body is longer fails" },
    { "notify", "--notify", "EVENT=URL", RTMP_L_SET_STRINGS, OTHER, 0, 0, 0, NULL, NULL,
      "live.lua: POST nginx-rtmp's notification EVENT (on_connect, on_publish, on_play, on_done, "
      "on_update, ...) to URL, with its semantics (scripts/notify.lua, docs/NOTIFY.md); repeatable" },
    { "http", "--http", "ADDR", RTMP_L_SET_STRING, OTHER, 0, 0, 0, NULL, NULL,
      "live.lua: serve HTTP on ADDR (HOST:PORT): /metrics, /api/streams, /api/clients, /api/drop, "
      "each stream as HTTP-FLV and WS-FLV at /APP/NAME.flv, the player page at / "
      "(scripts/http_api.lua, docs/HTTP.md)" },
    { "cluster_redis", "--cluster-redis", "URL", RTMP_L_SET_STRING, OTHER, 0, 0, 0, NULL, NULL,
      "live.lua: cluster mode, the stream directory in the Redis at URL (redis://HOST:PORT): a "
      "publish registers app/name -> this node, a play of a stream live elsewhere pulls it from "
      "there (scripts/cluster.lua, docs/CLUSTER.md)" },
    { "cluster_node", "--cluster-node", "URL", RTMP_L_SET_STRING, OTHER, 0, 0, 0, NULL, NULL,
      "live.lua: cluster mode, this node's address as the other nodes reach it (rtmp://HOST:PORT)" },
    { "cluster_ttl", "--cluster-ttl", "SECONDS", RTMP_L_SET_SECONDS, OTHER, 0, 0.1, NEVER, NULL, NULL,
      "live.lua: cluster mode, a directory entry expires this long after its node's last "
      "heartbeat (every third of it)" },
    { "trace", NULL, "PATH", RTMP_L_SET_TRACE, OTHER, 0, 0, 0, NULL, NULL,
      "trace every message, one line each (docs/TRACE.md): true (to the log), a path (appended "
      "to) or an open file" },
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* The defaults no core field holds: numbers (the others': 0) and the
 * strings that have one (the others': none). */
static const struct { const char *name; double value; const char *text; } other_defaults[] = {
    { "drain_timeout", 30, NULL },
    { "http_timeout", 10, NULL },
    { "http_max_body", 1 << 20, NULL },
    { "cluster_ttl", 10, NULL },
    { "tls.ciphersuites", 0, RTMP_TLS_CIPHERSUITES },
    { "tls.ciphers", 0, RTMP_TLS_CIPHERS },
};

/* The index of s in other_defaults, or -1. */
static int other_default_at(const rtmp_l_setting *s)
{
    for (size_t i = 0; i < sizeof other_defaults / sizeof other_defaults[0]; i++)
        if (!strcmp(other_defaults[i].name, s->name))
            return (int)i;
    return -1;
}

static double other_default(const rtmp_l_setting *s)
{
    int i = other_default_at(s);
    return i < 0 ? 0 : other_defaults[i].value;
}

static const char *string_default(const rtmp_l_setting *s)
{
    int i = other_default_at(s);
    return i < 0 ? NULL : other_defaults[i].text;
}

static const char *const type_names[] = { "seconds", "count", "bytes", "boolean", "choice", "integer",
                                          "table", "trace", "address", "string", "strings" };

const rtmp_l_setting *rtmp_l_settings(size_t *n)
{
    *n = NSETTINGS;
    return settings;
}

const rtmp_l_setting *rtmp_l_setting_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].name, name))
            return &settings[i];
    return NULL;
}

/* ---- values ---- */

static void *field(const rtmp_l_setting *s, rtmp_conn_config *cfg)
{
    return (char *)cfg + s->offset;
}

static double get_field(const rtmp_l_setting *s, const rtmp_conn_config *cfg)
{
    const void *p = (const char *)cfg + s->offset;
    switch (s->ctype) {
    case T_DOUBLE: return *(const double *)p;
    case T_INT: return *(const int *)p;
    case T_UNSIGNED: return *(const unsigned *)p;
    case T_ULONG: return (double)*(const unsigned long *)p;
    case T_ULLONG: return (double)*(const unsigned long long *)p;
    default: return 0;
    }
}

static void set_field(const rtmp_l_setting *s, rtmp_conn_config *cfg, double v)
{
    void *p = field(s, cfg);
    switch (s->ctype) {
    case T_DOUBLE: *(double *)p = v; break;
    case T_INT: *(int *)p = (int)v; break;
    case T_UNSIGNED: *(unsigned *)p = (unsigned)v; break;
    case T_ULONG: *(unsigned long *)p = (unsigned long)v; break;
    case T_ULLONG: *(unsigned long long *)p = (unsigned long long)v; break;
    default: break;
    }
}

/* What a value of s must be, for an error message: "a number of seconds
 * >= 0", "\"close\" or \"drop\"" (lua: the Lua form; else the command
 * line's, "seconds >= 0", "close or drop"). */
static void want(const rtmp_l_setting *s, int lua, char *out, size_t len)
{
    static const char *const lua_kind[] = { "a number of seconds", "a whole number", "a whole number of bytes" };
    static const char *const cli_kind[] = { "seconds", "a whole number", "bytes" };
    if (s->type == RTMP_L_SET_CHOICE) {
        size_t n = 0;
        out[0] = '\0';
        for (int i = 0; s->choices[i]; i++) {
            const char *sep = i == 0 ? "" : s->choices[i + 1] ? ", " : " or ";
            n += (size_t)snprintf(out + n, n < len ? len - n : 0, lua ? "%s\"%s\"" : "%s%s", sep, s->choices[i]);
        }
        return;
    }
    if (s->type > RTMP_L_SET_BYTES) {
        snprintf(out, len, "a %s", type_names[s->type]);
        return;
    }
    const char *kind = (lua ? lua_kind : cli_kind)[s->type];
    const char *suffix = !lua && s->type == RTMP_L_SET_BYTES ? ", with an optional K, M or G" : "";
    if (s->max == NEVER || s->max >= 1e12) /* no practical bound: not shown */
        snprintf(out, len, "%s >= %.15g%s", kind, s->min, suffix);
    else
        snprintf(out, len, "%s, %.15g to %.15g%s", kind, s->min, s->max, suffix);
}

static int in_bounds(const rtmp_l_setting *s, double v)
{
    return v >= s->min && v <= s->max && (s->type == RTMP_L_SET_SECONDS || v == floor(v));
}

/* Raise "<name> must be <what>, not <the value at idx>". */
static int raise_bad(lua_State *L, const rtmp_l_setting *s, int idx)
{
    char w[160];
    want(s, 1, w, sizeof w);
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING)
        lua_pushfstring(L, "\"%s\"", lua_tostring(L, idx));
    else
        luaL_tolstring(L, idx, NULL);
    return luaL_error(L, "%s must be %s, not %s", s->name, w, lua_tostring(L, -1));
}

double rtmp_l_setting_number(lua_State *L, const rtmp_l_setting *s, int idx)
{
    int isnum;
    lua_Number v = lua_tonumberx(L, idx, &isnum);
    if (!isnum || !in_bounds(s, v))
        raise_bad(L, s, idx);
    return v;
}

int rtmp_l_setting_choice(lua_State *L, const rtmp_l_setting *s, int idx)
{
    const char *name = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    for (int i = 0; name && s->choices[i]; i++)
        if (!strcmp(name, s->choices[i]))
            return s->values ? s->values[i] : i;
    return raise_bad(L, s, idx);
}

const char *rtmp_l_setting_choice_name(const rtmp_l_setting *s, int value)
{
    for (int i = 0; s->choices[i]; i++)
        if ((s->values ? s->values[i] : i) == value)
            return s->choices[i];
    return s->choices[0];
}

double rtmp_l_setting_get(lua_State *L, int idx, const char *name)
{
    const rtmp_l_setting *s = rtmp_l_setting_find(name);
    if (!lua_isnoneornil(L, idx))
        return rtmp_l_setting_number(L, s, idx);
    double v = other_default(s);
    if (lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY) == LUA_TTABLE) {
        if (lua_getfield(L, -1, name) != LUA_TNIL)
            v = rtmp_l_setting_number(L, s, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

/* [-0, +0, e] Setting s of cfg from the value at idx (not nil). */
static void store(lua_State *L, const rtmp_l_setting *s, int idx, rtmp_conn_config *cfg)
{
    switch (s->type) {
    case RTMP_L_SET_SECONDS:
    case RTMP_L_SET_COUNT:
    case RTMP_L_SET_BYTES:
        set_field(s, cfg, rtmp_l_setting_number(L, s, idx));
        break;
    case RTMP_L_SET_CHOICE:
        set_field(s, cfg, rtmp_l_setting_choice(L, s, idx));
        break;
    case RTMP_L_SET_BOOLEAN:
        if (s->flag) {
            unsigned *u = field(s, cfg);
            *u = lua_toboolean(L, idx) ? *u | s->flag : *u & ~s->flag;
        } else {
            set_field(s, cfg, lua_toboolean(L, idx));
        }
        break;
    case RTMP_L_SET_INTEGER: /* handshake_seed */
        cfg->session.hs_seeded = 1;
        cfg->session.hs_seed = (uint64_t)luaL_checkinteger(L, idx);
        break;
    case RTMP_L_SET_AUTOS:
        if (!lua_istable(L, idx))
            raise_bad(L, s, idx);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            unsigned bit = rtmp_auto_bit(name);
            if (!bit)
                luaL_error(L, "unknown automatic behaviour '%s'", name);
            if (lua_toboolean(L, -1))
                cfg->session.autos |= bit;
            else
                cfg->session.autos &= ~bit;
            lua_pop(L, 1);
        }
        break;
    default:
        break;
    }
}

/* Whether s is one of the chunk reader's settings. */
static int for_reader(const rtmp_l_setting *s)
{
    size_t at = offsetof(rtmp_conn_config, session.reader);
    return s->user == RTMP_L_FOR_CONN && s->offset >= at && s->offset < at + sizeof(rtmp_reader_config);
}

/* [-0, +0, e] the connection settings (reader_only: the reader's) of the
 * table at src over cfg. */
static void apply(lua_State *L, int src, rtmp_conn_config *cfg, int reader_only)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const rtmp_l_setting *s = &settings[i];
        if (s->user != RTMP_L_FOR_CONN || (reader_only && !for_reader(s)))
            continue;
        if (lua_getfield(L, src, s->name) != LUA_TNIL)
            store(L, s, lua_gettop(L), cfg);
        lua_pop(L, 1);
    }
}

void rtmp_l_settings_read(lua_State *L, int t, rtmp_conn_config *cfg, int role)
{
    t = t ? lua_absindex(L, t) : 0;
    rtmp_conn_config_default(cfg, role);
    /* rtmp.options (set by the luartmp command line) come first, t overrides */
    if (lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY) == LUA_TTABLE)
        apply(L, lua_gettop(L), cfg, 0);
    lua_pop(L, 1);
    if (t)
        apply(L, t, cfg, 0);
}

/* The part of a dotted name after the dot ("cert" of "tls.cert"). */
static const char *subkey(const rtmp_l_setting *s)
{
    const char *dot = strchr(s->name, '.');
    return dot ? dot + 1 : s->name;
}

/* [-0, +0, e] the TLS fields of the table src.tls (if any) over *tls */
static void apply_tls(lua_State *L, int src, rtmp_tls_config *tls)
{
    int kind = lua_getfield(L, src, "tls");
    if (kind == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    int t = lua_gettop(L);
    if (kind != LUA_TTABLE)
        luaL_error(L, "tls must be a table { cert =, key =, ciphersuites =, ciphers =, ca =, sni =, insecure =, openssl_records = }, not %s",
                   luaL_tolstring(L, t, NULL));
    lua_pushnil(L);
    while (lua_next(L, t)) { /* a misspelt key is an error, not silence */
        const rtmp_l_setting *s = NULL;
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushfstring(L, "tls.%s", lua_tostring(L, -2));
            s = rtmp_l_setting_find(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        if (!s)
            luaL_error(L, "unknown TLS setting '%s' (want cert, key, ciphersuites, ciphers, ca, sni, insecure or openssl_records)",
                       luaL_tolstring(L, -2, NULL));
        if (s->type == RTMP_L_SET_STRING) {
            if (lua_type(L, -1) != LUA_TSTRING)
                raise_bad(L, s, -1);
            *(const char **)((char *)tls + s->offset) = lua_tostring(L, -1);
        } else {
            *(int *)((char *)tls + s->offset) = lua_toboolean(L, -1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void rtmp_l_settings_read_tls(lua_State *L, int t, rtmp_tls_config *tls)
{
    t = t ? lua_absindex(L, t) : 0;
    memset(tls, 0, sizeof *tls);
    if (lua_getfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY) == LUA_TTABLE)
        apply_tls(L, lua_gettop(L), tls);
    lua_pop(L, 1);
    if (t)
        apply_tls(L, t, tls);
}

void rtmp_l_settings_read_reader(lua_State *L, int t, rtmp_reader_config *cfg)
{
    rtmp_conn_config c;
    memset(&c, 0, sizeof c);
    c.session.reader = *cfg;
    apply(L, lua_absindex(L, t), &c, 1);
    *cfg = c.session.reader;
}

/* ---- the command line ---- */

const rtmp_l_setting *rtmp_l_setting_cli(const char *opt)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].cli && !strcmp(settings[i].cli, opt))
            return &settings[i];
    return NULL;
}

int rtmp_l_parse_bytes(const char *s, double *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end || v > (1ull << 53) >> shift)
        return -1;
    *out = (double)(v << shift);
    return 0;
}

/* text as s's number: 0, or -1. */
static int parse_number(const rtmp_l_setting *s, const char *text, double *v)
{
    if (s->type == RTMP_L_SET_BYTES) {
        if (rtmp_l_parse_bytes(text, v) < 0)
            return -1;
    } else {
        char *end;
        errno = 0;
        *v = strtod(text, &end);
        if (errno || end == text || *end)
            return -1;
    }
    return in_bounds(s, *v) ? 0 : -1;
}

int rtmp_l_setting_is_flag(const rtmp_l_setting *s)
{
    return s->type == RTMP_L_SET_BOOLEAN;
}

int rtmp_l_setting_parse(const rtmp_l_setting *s, const char *text, char *w, size_t wlen)
{
    int ok = 0;
    double v;
    if (s->type == RTMP_L_SET_STRING || s->type == RTMP_L_SET_STRINGS) {
        ok = text[0] != '\0' || string_default(s); /* "" replaces a default ("" ciphersuites: no TLS 1.3) */
    } else if (s->type == RTMP_L_SET_CHOICE) {
        for (int i = 0; s->choices[i]; i++)
            ok |= !strcmp(text, s->choices[i]);
    } else if (s->type <= RTMP_L_SET_BYTES) {
        ok = parse_number(s, text, &v) == 0;
    }
    if (ok)
        return 0;
    want(s, 0, w, wlen);
    return -1;
}

void rtmp_l_setting_set(lua_State *L, int t, const rtmp_l_setting *s, const char *text)
{
    t = lua_absindex(L, t);
    const char *dot = strchr(s->name, '.');
    if (dot) { /* a field of the table setting named before the dot */
        lua_pushlstring(L, s->name, (size_t)(dot - s->name));
        if (lua_getfield(L, t, lua_tostring(L, -1)) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_settable(L, t);
        }
        t = lua_gettop(L);
    }
    double v = 0;
    if (s->type == RTMP_L_SET_STRINGS) { /* one more: appended to the array */
        if (lua_getfield(L, t, subkey(s)) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, t, subkey(s));
        }
        lua_pushstring(L, text);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, dot ? 2 : 1);
        return;
    }
    if (s->type == RTMP_L_SET_BOOLEAN)
        lua_pushboolean(L, 1);
    else if (s->type == RTMP_L_SET_CHOICE || s->type == RTMP_L_SET_STRING)
        lua_pushstring(L, text);
    else if (parse_number(s, text, &v) == 0 && s->type == RTMP_L_SET_SECONDS)
        lua_pushnumber(L, v);
    else
        lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, t, subkey(s));
    if (dot)
        lua_pop(L, 2);
}

/* The default of s as text (a byte count in KiB, MiB or GiB when whole). */
static void default_text(const rtmp_l_setting *s, const rtmp_conn_config *d, char *out, size_t len)
{
    if (s->type == RTMP_L_SET_STRING || s->type == RTMP_L_SET_STRINGS) {
        const char *v = string_default(s);
        snprintf(out, len, "%s", v ? v : "none");
    } else if (s->type == RTMP_L_SET_BOOLEAN && s->user != RTMP_L_FOR_CONN) {
        snprintf(out, len, "off");
    } else if (s->type == RTMP_L_SET_CHOICE && s->user == RTMP_L_FOR_CONN) {
        snprintf(out, len, "%s", rtmp_l_setting_choice_name(s, (int)get_field(s, d)));
    } else if (s->type == RTMP_L_SET_CHOICE) {
        snprintf(out, len, "%s", s->choices[0]);
    } else {
        double v = s->user == RTMP_L_FOR_CONN ? get_field(s, d) : other_default(s);
        static const char units[] = "KMG";
        int u = -1;
        while (s->type == RTMP_L_SET_BYTES && u < 2 && v >= 1024 && fmod(v, 1024) == 0) {
            v /= 1024;
            u++;
        }
        if (u >= 0)
            snprintf(out, len, "%.15g%c", v, units[u]);
        else
            snprintf(out, len, "%.15g", v);
    }
}

void rtmp_l_settings_help(FILE *f, int col)
{
    rtmp_conn_config d;
    rtmp_conn_config_default(&d, RTMP_ROLE_SERVER);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const rtmp_l_setting *s = &settings[i];
        if (!s->cli)
            continue;
        char head[96], def[96], text[480];
        int n = snprintf(head, sizeof head, "  %s%s%s", s->cli, s->arg ? " " : "", s->arg ? s->arg : "");
        default_text(s, &d, def, sizeof def);
        /* "..., this long; 0 = never" reads "... this long (default 60; 0 = never)" */
        const char *note = strstr(s->help, "; 0 = ");
        if (note)
            snprintf(text, sizeof text, "%.*s (default %s; %s)", (int)(note - s->help), s->help, def, note + 2);
        else
            snprintf(text, sizeof text, "%s (default %s)", s->help, def);
        /* the help text from column col, wrapped before column 89 */
        fputs(head, f);
        int at = n;
        if (at >= col - 1) {
            fputc('\n', f);
            at = 0;
        }
        const char *p = text;
        while (*p) {
            fprintf(f, "%*s", col - at, "");
            size_t room = (size_t)(89 - col), take = strlen(p);
            if (take > room) {
                take = room;
                /* at a space, or after the ':' of a list (not a URL's "rtmp://") */
                while (take > 0 && p[take] != ' ' && (p[take - 1] != ':' || p[take] == '/'))
                    take--;
                if (take == 0)
                    take = room;
            }
            fprintf(f, "%.*s\n", (int)take, p);
            p += take;
            while (*p == ' ')
                p++;
            at = 0;
        }
    }
}

/* ---- rtmp.settings ---- */

/* [-0, +1, m] the default of s as a Lua value (nothing: nil). */
static void push_default(lua_State *L, const rtmp_l_setting *s, const rtmp_conn_config *d)
{
    switch (s->type) {
    case RTMP_L_SET_SECONDS:
        lua_pushnumber(L, s->user == RTMP_L_FOR_CONN ? get_field(s, d) : other_default(s));
        break;
    case RTMP_L_SET_COUNT:
    case RTMP_L_SET_BYTES:
        lua_pushinteger(L, s->user == RTMP_L_FOR_CONN ? (lua_Integer)get_field(s, d) : (lua_Integer)other_default(s));
        break;
    case RTMP_L_SET_CHOICE:
        if (s->user == RTMP_L_FOR_CONN)
            lua_pushstring(L, rtmp_l_setting_choice_name(s, (int)get_field(s, d)));
        else
            lua_pushstring(L, s->choices[0]);
        break;
    case RTMP_L_SET_BOOLEAN: {
        double v = get_field(s, d);
        lua_pushboolean(L, s->flag ? ((unsigned)v & s->flag) != 0 : v != 0);
        break;
    }
    case RTMP_L_SET_AUTOS:
        lua_newtable(L);
        for (unsigned bit = 1; bit <= RTMP_AUTO_ALL; bit <<= 1) {
            lua_pushboolean(L, (d->session.autos & bit) != 0);
            lua_setfield(L, -2, rtmp_auto_name(bit));
        }
        break;
    case RTMP_L_SET_TRACE:
        lua_pushboolean(L, 0);
        break;
    case RTMP_L_SET_ADDRESS:
        lua_pushliteral(L, RTMP_L_DEFAULT_LISTEN);
        break;
    case RTMP_L_SET_STRING:
        lua_pushstring(L, string_default(s)); /* nil: none */
        break;
    default: /* handshake_seed: none */
        lua_pushnil(L);
        break;
    }
}

void rtmp_l_open_settings(lua_State *L)
{
    /* rtmp.options, shared with the registry so C can read it */
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, RTMP_L_OPTIONS_KEY);
    lua_setfield(L, -2, "options");

    rtmp_conn_config d;
    rtmp_conn_config_default(&d, RTMP_ROLE_SERVER);
    lua_createtable(L, 0, (int)NSETTINGS);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const rtmp_l_setting *s = &settings[i];
        lua_createtable(L, 0, 7);
        push_default(L, s, &d);
        lua_setfield(L, -2, "default");
        lua_pushstring(L, type_names[s->type]);
        lua_setfield(L, -2, "type");
        if (s->type <= RTMP_L_SET_BYTES) {
            if (s->type == RTMP_L_SET_SECONDS) {
                lua_pushnumber(L, s->min);
                lua_setfield(L, -2, "min");
                lua_pushnumber(L, s->max);
            } else {
                lua_pushinteger(L, (lua_Integer)s->min);
                lua_setfield(L, -2, "min");
                lua_pushinteger(L, (lua_Integer)s->max);
            }
            lua_setfield(L, -2, "max");
        }
        if (s->choices) {
            lua_newtable(L);
            for (int k = 0; s->choices[k]; k++) {
                lua_pushstring(L, s->choices[k]);
                lua_rawseti(L, -2, k + 1);
            }
            lua_setfield(L, -2, "choices");
        }
        lua_pushstring(L, s->help);
        lua_setfield(L, -2, "help");
        if (s->cli) {
            lua_pushstring(L, s->cli);
            lua_setfield(L, -2, "cli");
        }
        lua_setfield(L, -2, s->name);
    }
    lua_setfield(L, -2, "settings");
}
