/*
 * fuzz.h: what the fuzz targets share (fuzz/README.md).
 *
 * Each fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput.  Built with
 * -fsanitize=fuzzer it is a libFuzzer target (build-fuzz/fuzz_<name>);
 * linked with fuzz/replay_main.c it is a plain program that runs the same
 * checks over the files named on its command line (the regression
 * runner).  A finding is a sanitizer report or an abort() from a check
 * (fuzz_fail), which prints what differed first.
 */
#ifndef RTMP_FUZZ_H
#define RTMP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Print "finding: <what>" to stderr and abort(). */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
void fuzz_fail(const char *fmt, ...);

/* A Lua state with the standard libraries and `require "rtmp"` loaded
 * (luaopen_rtmp), made on first call and kept for the whole run.  When
 * check is not NULL it is a Lua chunk returning a function, run once;
 * the function is kept and fuzz_lua_check calls it. */
lua_State *fuzz_lua(const char *check);

/* Call the check function with the input as a string (and extra, when
 * not NULL, as a second string).  A Lua error is a finding (fuzz_fail
 * with the message and traceback).  Collects garbage now and then so a
 * long run holds no more than a few inputs' worth of Lua values. */
void fuzz_lua_check(const uint8_t *data, size_t size);

/* A small deterministic generator for split points and choices drawn
 * from the input (xorshift64*, never seeded with 0). */
typedef struct fuzz_rng { uint64_t s; } fuzz_rng;
static inline void fuzz_rng_seed(fuzz_rng *g, uint64_t seed) { g->s = seed ? seed : 0x9E3779B97F4A7C15ull; }
static inline uint32_t fuzz_rng_next(fuzz_rng *g)
{
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return (uint32_t)((g->s * 0x2545F4914F6CDD1Dull) >> 32);
}

#endif
