/*
 * fuzz_lua.c: the Lua side of the fuzz targets (fuzz.h): one state per
 * process with `rtmp` loaded, and a check function written in Lua.
 */
#include "fuzz.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

int luaopen_rtmp(lua_State *L);

static lua_State *fuzz_L;
static int check_ref = LUA_NOREF;
static unsigned calls;

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("finding: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/*
 * The state's allocator keeps freed small blocks for reuse, one list per
 * exact size.  Under ASan a block from malloc() and free() costs a stack
 * trace and a trip through the quarantine, and the AMF targets make and
 * drop thousands of tables and strings per input; reusing blocks of the
 * same size keeps the runs fast without losing a check: a kept block is
 * poisoned (a read or write of it is reported as use-after-poison), and
 * a reused one is unpoisoned for exactly its size, so its redzone from
 * the original malloc() still catches an overflow.
 */
#define CACHE_SIZES 512 /* sizes 1..512 bytes */
#define CACHE_DEPTH 256 /* blocks kept per size */

static struct {
    void *slot[CACHE_DEPTH];
    unsigned n;
} cache[CACHE_SIZES + 1];

static void *cache_get(size_t size)
{
    if (size <= CACHE_SIZES && cache[size].n > 0) {
        void *p = cache[size].slot[--cache[size].n];
        ASAN_UNPOISON_MEMORY_REGION(p, size);
        return p;
    }
    return malloc(size);
}

static void cache_put(void *p, size_t size)
{
    if (size <= CACHE_SIZES && cache[size].n < CACHE_DEPTH) {
        ASAN_POISON_MEMORY_REGION(p, size);
        cache[size].slot[cache[size].n++] = p;
        return;
    }
    free(p);
}

static void *fuzz_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        if (ptr)
            cache_put(ptr, osize);
        return NULL;
    }
    if (!ptr)
        return cache_get(nsize);
    if (osize > CACHE_SIZES && nsize > CACHE_SIZES)
        return realloc(ptr, nsize);
    void *np = cache_get(nsize);
    if (!np)
        return NULL;
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    cache_put(ptr, osize);
    return np;
}

static int panic(lua_State *L)
{
    fuzz_fail("Lua panic: %s", lua_tostring(L, -1));
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

lua_State *fuzz_lua(const char *check)
{
    if (fuzz_L)
        return fuzz_L;
    lua_State *L = lua_newstate(fuzz_alloc, NULL);
    if (!L)
        fuzz_fail("lua_newstate: out of memory");
    lua_atpanic(L, panic);
    luaL_openlibs(L);
    luaL_requiref(L, "rtmp", luaopen_rtmp, 0);
    lua_pop(L, 1);
    if (check) {
        lua_pushcfunction(L, traceback);
        if (luaL_loadstring(L, check) != LUA_OK || lua_pcall(L, 0, 1, -2) != LUA_OK)
            fuzz_fail("check script: %s", lua_tostring(L, -1));
        if (!lua_isfunction(L, -1))
            fuzz_fail("check script does not return a function");
        check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    fuzz_L = L;
    return L;
}

void fuzz_lua_check(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_L;
    if (!L || check_ref == LUA_NOREF)
        fuzz_fail("fuzz_lua_check before fuzz_lua(check)");
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK)
        fuzz_fail("%s", lua_tostring(L, -1));
    lua_settop(L, top);
    if (++calls % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT);
}
