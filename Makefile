# luartmp: a scriptable RTMP engine (C core, Lua 5.4 scripts).
#
#   make run     install missing Debian packages, build, start the live server on :1935
#   make test    install missing Debian packages, build, run every test
#   make asan    build with ASan/UBSan into build-asan/ and run every test under it
#                (the busted process and every luartmp the specs start)
#   make fuzz    long libFuzzer runs (fuzz/fuzz.mk; make fuzz-short: 10 s per target)
#   make valgrind  integration specs with every luartmp they start under valgrind
#   make bench   build the loader and micro-benchmarks, run the suite against nginx-rtmp,
#                write docs/BENCHMARKS.md (BENCH_ARGS=--quick for a short run)

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

CC      ?= cc
PKGS     = lua5.4 libssl libcrypto libpcap libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs libssl libcrypto libpcap libcurl hiredis 2>/dev/null)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null)

WARN     = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  ?= $(OPT)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(PKG_CFLAGS) $(CFLAGS) \
             -DLUARTMP_VERSION=\"$(VERSION)\" -DLUARTMP_SHARE=\"$(PREFIX)/share/luartmp\"
LIBS     = $(PKG_LIBS) -lev -lhttp_parser -lm

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

CORE_SRC := $(wildcard core/*.c)
LUA_SRC  := $(filter-out lua/luartmp.c,$(wildcard lua/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
LUA_OBJ  := $(LUA_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/lua/luartmp.o
HEADERS  := $(wildcard core/*.h lua/*.h)

BUSTED   = lua5.4 /usr/bin/busted
# make asan runs these specs (all by default; ASAN_SPECS=spec/unit for a quick run)
ASAN_SPECS ?= spec

.PHONY: all run test test-unit asan valgrind bench bench-build deps install clean

all: $(BUILD)/luartmp $(BUILD)/rtmp.so

$(BUILD)/obj/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The binding's C part as a Lua module, for the lua5.4 interpreter (busted):
# require "rtmp.core" finds luaopen_rtmp_core in it; require "rtmp" finds
# lua/rtmp.lua on package.path, which requires "rtmp.core".
$(BUILD)/rtmp.so: $(CORE_OBJ) $(LUA_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LIBS)

# The executable: the same objects plus an embedded interpreter.
$(BUILD)/luartmp: $(MAIN_OBJ) $(CORE_OBJ) $(LUA_OBJ)
	$(CC) $(CFLAGS) -rdynamic -o $@ $^ $(LUA_LIBS) $(LIBS)

# Benchmarks: tools built from bench/ with the sans-I/O core (no net.c).
SANS_IO_OBJ  := $(filter-out $(BUILD)/obj/core/net.o $(BUILD)/obj/core/net_curl.o $(BUILD)/obj/core/net_redis.o $(BUILD)/obj/core/net_http.o $(BUILD)/obj/core/group.o,$(CORE_OBJ))
LOADER_SRC   := $(wildcard bench/loader*.c)

$(BUILD)/bench/rtmp-loader: $(LOADER_SRC) $(SANS_IO_OBJ) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icore -o $@ $(LOADER_SRC) $(SANS_IO_OBJ) $(LIBS)

$(BUILD)/bench/micro: bench/micro.c $(SANS_IO_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icore -o $@ bench/micro.c $(SANS_IO_OBJ) $(LIBS) \
	    -Wl,--wrap=malloc,--wrap=realloc,--wrap=calloc,--wrap=free

bench-build: all $(BUILD)/bench/rtmp-loader $(BUILD)/bench/micro

bench: deps
	@$(MAKE) --no-print-directory bench-build
	lua5.4 bench/run.lua $(BENCH_ARGS)

deps:
	@tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/luartmp --listen 1935 scripts/live.lua

test: deps
	@$(MAKE) --no-print-directory all fuzz-build $(FUZZ_DIR)/seeds/.done
	@LUARTMP=$(BUILD)/luartmp tools/test.sh

test-unit: all
	@LUARTMP=$(BUILD)/luartmp tools/test.sh spec/unit

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan \
	    OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	@ASAN_OPTIONS=detect_leaks=1 LUARTMP=build-asan/luartmp LUARTMP_ASAN=1 tools/test.sh $(ASAN_SPECS)

# every luartmp the specs start under valgrind memcheck (VALGRIND_SPECS: which specs)
valgrind: all
	@tools/valgrind.sh $(VALGRIND_SPECS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/luartmp/scripts \
	    $(DESTDIR)$(PREFIX)/lib/lua/5.4
	install -m 755 $(BUILD)/luartmp $(DESTDIR)$(PREFIX)/bin/luartmp
	install -m 644 $(BUILD)/rtmp.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/rtmp.so
	cp -R scripts/. $(DESTDIR)$(PREFIX)/share/luartmp/scripts/
	install -d $(DESTDIR)$(PREFIX)/share/luartmp/lua/rtmp $(DESTDIR)$(PREFIX)/share/lua/5.4/rtmp
	install -m 644 lua/rtmp.lua $(DESTDIR)$(PREFIX)/share/luartmp/lua/rtmp.lua
	install -m 644 lua/rtmp.lua $(DESTDIR)$(PREFIX)/share/lua/5.4/rtmp.lua
	install -m 644 lua/rtmp/*.lua $(DESTDIR)$(PREFIX)/share/luartmp/lua/rtmp/
	install -m 644 lua/rtmp/*.lua $(DESTDIR)$(PREFIX)/share/lua/5.4/rtmp/

clean:
	rm -rf build build-asan build-fuzz

include fuzz/fuzz.mk
