/*
 * luartmp.c: the executable.  A Lua 5.4 interpreter with the rtmp module
 * built in: it runs a script (the live server by default), then the event
 * loop until nothing is left to do or SIGINT/SIGTERM arrives.
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

#include "../core/log.h"
#include "l_contain.h"

#ifndef LUARTMP_VERSION
#define LUARTMP_VERSION "0.0.0"
#endif
#ifndef LUARTMP_SHARE
#define LUARTMP_SHARE "/usr/local/share/luartmp"
#endif

int luaopen_rtmp(lua_State *L);

static const char usage[] =
    "usage: luartmp [options] [script.lua [args...]]\n"
    "\n"
    "Runs script.lua (default: the live server, scripts/live.lua) with the\n"
    "rtmp module available, then the event loop until nothing is left to do\n"
    "or SIGINT/SIGTERM.  A script given as a bare name (\"live\") is looked up\n"
    "in the scripts directory.\n"
    "\n"
    "options:\n"
    "  -l, --listen ADDR            where servers listen: PORT, HOST:PORT or [V6]:PORT\n"
    "                               (repeatable; default 1935 on IPv4 and IPv6)\n"
    "  --log-level LEVEL            error, warn, info (default), debug or trace\n"
    "  --handshake-timeout SECONDS  close connections that have not completed the\n"
    "                               handshake this long after connecting (default 10)\n"
    "  --connect-timeout SECONDS    close accepted connections that send no connect command\n"
    "                               this long after the handshake (default 10; 0 = never)\n"
    "  --idle-timeout SECONDS       close connections in which no whole message arrived and\n"
    "                               nothing was written this long (default 60; 0 = never)\n"
    "  --max-per-address N          connections open at once from one IP address; more are\n"
    "                               logged and closed at once (default 0 = no cap)\n"
    "  --linger SECONDS             a closed connection's socket may stay open this long to\n"
    "                               write what was queued and end with a FIN (default 30;\n"
    "                               0 = close at once)\n"
    "  --merge-window SECONDS       let media fanned out to players wait up to this long to be\n"
    "                               written together (fewer system calls; default 0 = at once)\n"
    "  --trace[=PATH]               trace every message of every connection, one line each\n"
    "                               (docs/TRACE.md): appended to PATH, or to the log\n"
    "  --script-instructions N      stop a call into the script (a handler, a timer) after\n"
    "                               N Lua instructions (default 0 = no limit)\n"
    "  --script-memory BYTES        memory budget of the script's Lua state while handlers\n"
    "                               run (suffix K, M or G; default 0 = none)\n"
    "  --on-error close|drop        a script error in a connection's handler closes the\n"
    "                               connection (default) or drops only that call\n"
    "  -h, --help                   this help\n"
    "  -v, --version                print the version\n";

/* BYTES with an optional K, M or G suffix (powers of 1024). */
static int parse_bytes(const char *s, size_t *out)
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
    if (*end || v > (SIZE_MAX >> shift) >> 1)
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

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

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "luartmp: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'luartmp --help'.\n");
    return 2;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
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

/* [-0, +0, e] prepend the project's Lua directories to package.path */
static void set_paths(lua_State *L, const char *root)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/scripts/?.lua;%s", root, root, root,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    /* make require "rtmp" find the built-in module */
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_rtmp);
    lua_setfield(L, -2, "rtmp");
    lua_pop(L, 2);
}

int main(int argc, char **argv)
{
    double hs_timeout = -1, idle_timeout = -1, merge_window = -1, connect_timeout = -1, linger = -1;
    long max_per_address = -1;
    double script_instructions = -1;
    const char *on_error = NULL;
    static rtmp_l_memory memory; /* the allocator's accounting (--script-memory) */
    const char *log_level = NULL;
    const char *trace = NULL;   /* --trace: "" to the log, else a path */
    const char *listen[16];
    int nlisten = 0, i;

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
            fputs(usage, stdout);
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
        int takes = strcmp(a, "-l") == 0 || strcmp(a, "--listen") == 0 || strcmp(a, "--log-level") == 0
                 || strcmp(a, "--handshake-timeout") == 0 || strcmp(a, "--idle-timeout") == 0
                 || strcmp(a, "--merge-window") == 0 || strcmp(a, "--connect-timeout") == 0
                 || strcmp(a, "--linger") == 0
                 || strcmp(a, "--max-per-address") == 0 || strcmp(a, "--script-instructions") == 0
                 || strcmp(a, "--script-memory") == 0 || strcmp(a, "--on-error") == 0;
        if (!takes)
            return fail_usage("unknown option '%s'", argv[i]);
        if (!val) {
            if (i + 1 >= argc)
                return fail_usage("option '%s' needs a value", a);
            val = argv[++i];
        }
        if (strcmp(a, "-l") == 0 || strcmp(a, "--listen") == 0) {
            if (nlisten == (int)(sizeof listen / sizeof listen[0]))
                return fail_usage("too many --listen options (at most 16)%s", "");
            listen[nlisten++] = val;
        } else if (strcmp(a, "--log-level") == 0) {
            if (rtmp_log_parse_level(val) < 0)
                return fail_usage("bad log level '%s' (want error, warn, info, debug or trace)", val);
            log_level = val;
        } else if (strcmp(a, "--handshake-timeout") == 0) {
            if (parse_seconds(val, &hs_timeout) < 0)
                return fail_usage("bad --handshake-timeout '%s' (want seconds >= 0)", val);
        } else if (strcmp(a, "--idle-timeout") == 0) {
            if (parse_seconds(val, &idle_timeout) < 0)
                return fail_usage("bad --idle-timeout '%s' (want seconds >= 0)", val);
        } else if (strcmp(a, "--connect-timeout") == 0) {
            if (parse_seconds(val, &connect_timeout) < 0)
                return fail_usage("bad --connect-timeout '%s' (want seconds >= 0)", val);
        } else if (strcmp(a, "--linger") == 0) {
            if (parse_seconds(val, &linger) < 0)
                return fail_usage("bad --linger '%s' (want seconds >= 0)", val);
        } else if (strcmp(a, "--max-per-address") == 0) {
            char *end;
            errno = 0;
            max_per_address = strtol(val, &end, 10);
            if (errno || end == val || *end || max_per_address < 0 || max_per_address > 1000000000)
                return fail_usage("bad --max-per-address '%s' (want a whole number >= 0)", val);
        } else if (strcmp(a, "--merge-window") == 0) {
            if (parse_seconds(val, &merge_window) < 0 || merge_window > 5)
                return fail_usage("bad --merge-window '%s' (want seconds, 0 to 5)", val);
        } else if (strcmp(a, "--script-instructions") == 0) {
            char *end;
            errno = 0;
            script_instructions = strtod(val, &end);
            if (errno || end == val || *end || !(script_instructions >= 0) || script_instructions > 1e15)
                return fail_usage("bad --script-instructions '%s' (want a number >= 0)", val);
        } else if (strcmp(a, "--script-memory") == 0) {
            if (parse_bytes(val, &memory.limit) < 0)
                return fail_usage("bad --script-memory '%s' (want bytes, with an optional K, M or G)", val);
        } else if (strcmp(a, "--on-error") == 0) {
            if (strcmp(val, "close") != 0 && strcmp(val, "drop") != 0)
                return fail_usage("bad --on-error '%s' (want close or drop)", val);
            on_error = val;
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

    /* rtmp.options from the command line */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rtmp");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "luartmp: %s\n", lua_tostring(L, -1));
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
    if (hs_timeout >= 0) {
        lua_pushnumber(L, hs_timeout);
        lua_setfield(L, -2, "handshake_timeout");
    }
    if (idle_timeout >= 0) {
        lua_pushnumber(L, idle_timeout);
        lua_setfield(L, -2, "idle_timeout");
    }
    if (connect_timeout >= 0) {
        lua_pushnumber(L, connect_timeout);
        lua_setfield(L, -2, "connect_timeout");
    }
    if (linger >= 0) {
        lua_pushnumber(L, linger);
        lua_setfield(L, -2, "linger");
    }
    if (max_per_address >= 0) {
        lua_pushinteger(L, max_per_address);
        lua_setfield(L, -2, "max_per_address");
    }
    if (merge_window >= 0) {
        lua_pushnumber(L, merge_window);
        lua_setfield(L, -2, "merge_window");
    }
    if (script_instructions >= 0) {
        lua_pushinteger(L, (lua_Integer)script_instructions);
        lua_setfield(L, -2, "script_instructions");
    }
    if (on_error) {
        lua_pushstring(L, on_error);
        lua_setfield(L, -2, "on_error");
    }
    lua_pushstring(L, root);
    lua_setfield(L, -2, "root");
    lua_pop(L, 1);
    /* budgets: the hook on this thread, inherited by the script's coroutine */
    if (script_instructions > 0 || memory.limit)
        rtmp_l_contain_arm(L);
    int rtmp_idx = lua_gettop(L);

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
