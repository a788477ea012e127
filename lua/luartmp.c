/*
 * luartmp.c: the executable.  A Lua 5.4 interpreter with the rtmp module
 * built in: it runs a script (the live server by default), then the event
 * loop until nothing is left to do or SIGINT/SIGTERM arrives (SIGTERM
 * drains instead with --drain-to: lua/rtmp/drain.lua).  SIGHUP loads the
 * script again without dropping a connection (lua/rtmp/reload.lua).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../core/error.h"
#include "../core/log.h"
#include "../core/tlsrec.h"
#include "../core/url.h"
#include "l_contain.h"
#include "l_rtmp.h" /* rtmp_l_failure */
#include "l_settings.h"

#ifndef LUARTMP_VERSION
#define LUARTMP_VERSION "0.0.0"
#endif
#ifndef LUARTMP_SHARE
#define LUARTMP_SHARE "/usr/local/share/luartmp"
#endif

int luaopen_rtmp_core(lua_State *L);

static const char usage_head[] =
    "usage: luartmp [options] [script.lua [args...]]\n"
    "\n"
    "Runs script.lua (default: the live server, scripts/live.lua) with the\n"
    "rtmp module available, then the event loop until nothing is left to do\n"
    "or SIGINT/SIGTERM.  A script given as a bare name (\"live\") is looked up\n"
    "in the scripts directory.  SIGHUP loads the script again in the running\n"
    "process, without dropping a connection (docs/RELOAD.md).\n"
    "\n"
    "options:\n"
    "  -l, --listen ADDR            where servers listen: PORT, HOST:PORT or [V6]:PORT,\n"
    "                               after rtmps:// for TLS (with --tls-cert and --tls-key)\n"
    "                               (repeatable, plain and TLS mixed; default 1935 on IPv4\n"
    "                               and IPv6)\n"
    "  --log-level LEVEL            error, warn, info (default), debug or trace\n";

/* Then the settings' lines (l_settings.c), then these. */
static const char usage_tail[] =
    "  --trace[=PATH]               trace every message of every connection, one line each\n"
    "                               (docs/TRACE.md): appended to PATH, or to the log\n"
    "  --script-memory BYTES        memory budget of the script's Lua state while handlers\n"
    "                               run (suffix K, M or G; default 0 = none)\n"
    "  -h, --help                   this help\n"
    "  -v, --version                print the version\n";

/* Column of the help text in the option lines. */
#define USAGE_COL 31

/* The Lua state's allocator with --script-memory: realloc and free, with
 * the bytes in use counted in rtmp_l_memory.  While the binding has armed
 * it (a call into the script runs), growing past the budget is flagged
 * for the binding's hook, which raises "memory budget exceeded" in the
 * script; growing past the budget plus an eighth fails at once, and Lua
 * raises a memory error after an emergency collection.  Unarmed (the
 * loop's own work: message objects, connection boxes), nothing fails but
 * a real out-of-memory. */
static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rtmp_l_memory *m = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        m->used -= old;
        return NULL;
    }
    if (m->armed && m->limit && nsize > old) {
        size_t after = m->used - old + nsize;
        if (after > m->limit) {
            if (after - m->limit > m->limit / 8)
                return NULL;
            m->over = 1;
        }
    }
    void *p = realloc(ptr, nsize);
    if (p)
        m->used = m->used - old + nsize;
    return p;
}

/* RTMP_NET_CHECK_MAX as a string, for fail_usage */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define LISTEN_MAX STRINGIFY(RTMP_NET_CHECK_MAX)

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "luartmp: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'luartmp --help'.\n");
    return 2;
}

/* The project root: the directory holding scripts/ and lua/.  In a build
 * tree the executable sits in <root>/build/; installed, it is LUARTMP_SHARE.
 * LUARTMP_ROOT overrides both. */
static void find_root(char *root, size_t len)
{
    const char *env = getenv("LUARTMP_ROOT");
    if (env && *env) {
        snprintf(root, len, "%s", env);
        return;
    }
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            char probe[PATH_MAX + 64];
            snprintf(probe, sizeof probe, "%s/../scripts/live.lua", exe);
            if (access(probe, R_OK) == 0) {
                snprintf(root, len, "%s/..", exe);
                return;
            }
        }
    }
    snprintf(root, len, "%s", LUARTMP_SHARE);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* [-0, +1, -] require(name): 0 with its value pushed, or -1 with the
 * error printed (and pushed) */
static int require_module(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK)
        return 0;
    fprintf(stderr, "luartmp: %s\n", lua_tostring(L, -1));
    return -1;
}

/* [-0, +0, e] prepend the project's Lua directories to package.path */
static void set_paths(lua_State *L, const char *root)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/scripts/?.lua;%s", root, root, root,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    /* the built-in C part; require "rtmp" finds lua/rtmp.lua, which requires it */
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_rtmp_core);
    lua_setfield(L, -2, "rtmp.core");
    lua_pop(L, 2);
}

int main(int argc, char **argv)
{
    /* settings given on the command line, in order, set into rtmp.options */
    struct { const rtmp_l_setting *s; const char *val; } set[64];
    int nset = 0;
    static rtmp_l_memory memory; /* the allocator's accounting (--script-memory) */
    const char *log_level = NULL;
    const char *trace = NULL;   /* --trace: "" to the log, else a path */
    const char *listen[RTMP_NET_CHECK_MAX]; /* --listen, all checked at once */
    int nlisten = 0, i;

    rtmp_tlsrec_track_memory(); /* before anything makes OpenSSL allocate */

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0)
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        char name[64];
        if (eq && a[1] == '-' && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            val = eq + 1;
            a = name;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_head, stdout);
            rtmp_l_settings_help(stdout, USAGE_COL);
            fputs(usage_tail, stdout);
            return 0;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("luartmp %s (%s)\n", LUARTMP_VERSION, LUA_RELEASE);
            return 0;
        }
        if (strcmp(a, "--trace") == 0) {
            if (val && !*val)
                return fail_usage("option '%s' needs a file name after '='", a);
            trace = val ? val : "";
            continue;
        }
        const rtmp_l_setting *setting = rtmp_l_setting_cli(a);
        int takes = setting || strcmp(a, "-l") == 0 || strcmp(a, "--listen") == 0
                 || strcmp(a, "--log-level") == 0 || strcmp(a, "--script-memory") == 0;
        if (!takes)
            return fail_usage("unknown option '%s'", argv[i]);
        if (setting && rtmp_l_setting_is_flag(setting)) { /* --tls-insecure */
            if (val)
                return fail_usage("option '%s' takes no value", a);
            if (nset == (int)(sizeof set / sizeof set[0]))
                return fail_usage("too many options%s", "");
            set[nset].s = setting;
            set[nset++].val = NULL;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return fail_usage("option '%s' needs a value", a);
            val = argv[++i];
        }
        if (setting) {
            char want[160], msg[400];
            if (rtmp_l_setting_parse(setting, val, want, sizeof want) < 0) {
                snprintf(msg, sizeof msg, "bad %s '%.200s' (want %s)", setting->cli, val, want);
                return fail_usage("%s", msg);
            }
            if (nset == (int)(sizeof set / sizeof set[0]))
                return fail_usage("too many options%s", "");
            set[nset].s = setting;
            set[nset++].val = val;
        } else if (strcmp(a, "-l") == 0 || strcmp(a, "--listen") == 0) {
            if (nlisten == (int)(sizeof listen / sizeof listen[0]))
                return fail_usage("too many --listen options (at most %s)", LISTEN_MAX);
            listen[nlisten++] = val;
        } else if (strcmp(a, "--log-level") == 0) {
            if (rtmp_log_parse_level(val) < 0)
                return fail_usage("bad log level '%s' (want error, warn, info, debug or trace)", val);
            log_level = val;
        } else {
            double bytes; /* --script-memory */
            if (rtmp_l_parse_bytes(val, &bytes) < 0 || bytes > (double)(SIZE_MAX >> 1))
                return fail_usage("bad --script-memory '%s' (want bytes, with an optional K, M or G)", val);
            memory.limit = (size_t)bytes;
        }
    }
    if (log_level)
        rtmp_log_level = rtmp_log_parse_level(log_level);

    char root[PATH_MAX];
    find_root(root, sizeof root);

    /* the script: a path, or a bare name looked up in <root>/scripts */
    char script[PATH_MAX + 64];
    int script_idx = i < argc ? i : -1;
    if (script_idx < 0)
        snprintf(script, sizeof script, "%s/scripts/live.lua", root);
    else if (access(argv[script_idx], R_OK) == 0 || strchr(argv[script_idx], '/'))
        snprintf(script, sizeof script, "%s", argv[script_idx]);
    else
        snprintf(script, sizeof script, "%s/scripts/%s.lua", root, argv[script_idx]);

    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "luartmp: cannot create a Lua state\n");
        return 1;
    }
    if (memory.limit) {
        /* count from here: what the state holds already came from the
         * same realloc/free */
        memory.used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
        lua_setallocf(L, budget_alloc, &memory);
        lua_pushlightuserdata(L, &memory);
        lua_setfield(L, LUA_REGISTRYINDEX, RTMP_L_MEMORY_KEY);
    }
    luaL_openlibs(L);
    /* Message objects carry their payload, so the heap is mostly media:
     * start a cycle when it has grown 20 % past what the last one kept
     * (Lua's default waits for 100 %), which keeps a server's memory near
     * its live data (GOP caches) at little CPU cost. */
    lua_gc(L, LUA_GCINC, 120, 0, 0);
    set_paths(L, root);

    /* arg, as lua(1) builds it: arg[0] the script, arg[1..] its arguments */
    lua_createtable(L, argc, 1);
    int first = script_idx < 0 ? argc : script_idx;
    for (int k = 0; k < argc; k++) {
        lua_pushstring(L, k == first ? script : argv[k]);
        lua_rawseti(L, -2, k - first);
    }
    if (script_idx < 0) {
        lua_pushstring(L, script);
        lua_rawseti(L, -2, 0);
    }
    lua_setglobal(L, "arg");

    /* rtmp.options from the command line (in the module's C part: its
     * table is the one require "rtmp" gives) */
    if (require_module(L, "rtmp.core") < 0) {
        lua_close(L);
        return 1;
    }
    lua_getfield(L, -1, "options");
    if (nlisten == 1) {
        lua_pushstring(L, listen[0]);
        lua_setfield(L, -2, "listen");
    } else if (nlisten > 1) {
        lua_createtable(L, nlisten, 0);
        for (int k = 0; k < nlisten; k++) {
            lua_pushstring(L, listen[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "listen");
    }
    if (trace) {
        if (*trace)
            lua_pushstring(L, trace);
        else
            lua_pushboolean(L, 1);
        lua_setfield(L, -2, "trace");
    }
    for (int k = 0; k < nset; k++)
        rtmp_l_setting_set(L, -1, set[k].s, set[k].val);
    lua_pushstring(L, root);
    lua_setfield(L, -2, "root");
    lua_pop(L, 1);
    /* what cannot listen says so now (exit 1, as a script that failed),
     * not from inside the script: a bad address, rtmps:// without a
     * certificate and key that load, an address that cannot be bound
     * (taken, or by an earlier --listen) */
    rtmp_tls_config tls;
    rtmp_l_settings_read_tls(L, 0, &tls);
    char err[600];
    if (rtmp_net_check_listen(listen, nlisten, &tls, err, sizeof err) < 0) {
        fprintf(stderr, "luartmp: %s\n", err);
        lua_close(L);
        return 1;
    }
    /* --drain-to: where a drain sends clients must be a URL they can use */
    lua_getfield(L, -1, "options");
    if (lua_getfield(L, -1, "drain_to") == LUA_TSTRING) {
        size_t len;
        const char *url = lua_tolstring(L, -1, &len);
        rtmp_url u;
        int rc = rtmp_url_parse(url, len, &u);
        if (rc < 0) {
            fprintf(stderr, "luartmp: bad --drain-to '%s': %s\n", url, rtmp_strerror(rc));
            lua_close(L);
            return 2;
        }
    }
    lua_pop(L, 2);
    /* budgets: the hook on this thread, inherited by the script's coroutine */
    lua_getfield(L, -1, "options");
    int budget = lua_getfield(L, -1, "script_instructions") == LUA_TNUMBER && lua_tonumber(L, -1) > 0;
    lua_pop(L, 2);
    if (budget || memory.limit)
        rtmp_l_contain_arm(L);
    int rtmp_idx = lua_gettop(L);

    /* rtmp.reload() and SIGHUP run this script again, with its arguments,
     * in this state (lua/rtmp/reload.lua, docs/RELOAD.md) */
    if (require_module(L, "rtmp.reload") < 0) {
        lua_close(L);
        return 1;
    }
    lua_getfield(L, -1, "main");
    lua_pushstring(L, script);
    int nmain = 1;
    if (script_idx >= 0)
        for (int k = script_idx + 1; k < argc; k++, nmain++)
            lua_pushstring(L, argv[k]);
    if (lua_pcall(L, nmain, 0, 0) != LUA_OK) {
        fprintf(stderr, "luartmp: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_pop(L, 1);

    /* run the script with its arguments, in a coroutine (registry
     * "rtmp.main"): when it yields, waiting on the network (the client
     * API, rtmp.sleep), the loop below runs and rtmp.client resumes it;
     * an error after a yield is reported there and stops the loop. */
    lua_pushcfunction(L, traceback);
    int status = luaL_loadfile(L, script);
    if (status != LUA_OK) {
        fprintf(stderr, "luartmp: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "rtmp.main");
    lua_insert(L, -2);
    lua_xmove(L, co, 1);
    int nargs = 0, nres = 0;
    if (script_idx >= 0)
        for (int k = script_idx + 1; k < argc; k++, nargs++)
            lua_pushstring(co, argv[k]);
    status = lua_resume(co, L, nargs, &nres);
    if (status != LUA_OK && status != LUA_YIELD) {
        const char *failed = rtmp_l_failure(co, -1); /* rtmp.fail: one line */
        if (failed) {
            fprintf(stderr, "luartmp: %s\n", failed);
            lua_close(L);
            return 1;
        }
        const char *msg = lua_tostring(co, -1);
        luaL_traceback(L, co, msg ? msg : "(error object is not a string)", 0);
        fprintf(stderr, "luartmp: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_pop(co, nres);

    /* then the loop, until nothing is left or a signal stops it */
    lua_getfield(L, rtmp_idx, "handle_signals");
    lua_call(L, 0, 0);
    lua_getfield(L, rtmp_idx, "run");
    if (lua_pcall(L, 0, 0, rtmp_idx + 1) != LUA_OK) {
        fprintf(stderr, "luartmp: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    /* the main coroutine failed after a yield (already reported) */
    status = lua_status(co);
    lua_close(L);
    return status == LUA_OK || status == LUA_YIELD ? 0 : 1;
}
