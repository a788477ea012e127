# fuzz/fuzz.mk: libFuzzer targets (clang, ASan + UBSan), included by the
# top-level Makefile.  See fuzz/README.md.
#
#   make fuzz-build        build build-fuzz/fuzz_<target> for every target
#   make fuzz-seeds        (re)build the seed corpora in build-fuzz/seeds/
#   make fuzz-short        FUZZ_SHORT (10) s per target: each over its seeds
#                          and regression inputs, one line per target;
#                          exits non-zero on a finding
#   make fuzz              long runs, one target after the other,
#                          FUZZ_TIME seconds each (default 600);
#                          FUZZ_TARGETS narrows the list
#   make fuzz-replay-build the regression runner: the same target sources
#                          with a plain main(), built with $(CC) from the
#                          normal objects in $(BUILD)/ (spec/unit/fuzz_regress_spec.lua)

ifndef FUZZ_MK_INCLUDED
FUZZ_MK_INCLUDED := 1

FUZZ_CC      ?= clang
FUZZ_DIR     := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
                -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -DLUARTMP_VERSION=\"$(VERSION)\"
FUZZ_TARGETS ?= handshake chunk amf0 amf3 flv dispatch media mp4 tlsinfo http ws
FUZZ_TIME    ?= 600
FUZZ_SHORT   ?= 10
FUZZ_LIBS     = $(LUA_LIBS) $(LIBS)

FUZZ_CORE_OBJ := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LUA_OBJ  := $(LUA_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_HDRS     := $(HEADERS) fuzz/fuzz.h

REPLAY_DIR    := $(BUILD)/fuzz-replay
REPLAY_BINS   := $(FUZZ_TARGETS:%=$(REPLAY_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-short fuzz-replay-build

$(FUZZ_DIR)/obj/%.o: %.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_lua.c $(FUZZ_CORE_OBJ) $(FUZZ_LUA_OBJ) $(FUZZ_HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ fuzz/fuzz_$*.c fuzz/fuzz_lua.c \
	    $(FUZZ_CORE_OBJ) $(FUZZ_LUA_OBJ) $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BINS)

# The objects are only prerequisites of a pattern rule: keep them, so a
# change to one target does not rebuild the whole core.
.SECONDARY: $(FUZZ_CORE_OBJ) $(FUZZ_LUA_OBJ)

fuzz-seeds: all
	@fuzz/seeds.sh $(FUZZ_DIR)/seeds

# Made again when what makes them changes (a new target's seeds).
$(FUZZ_DIR)/seeds/.done: fuzz/seeds.sh fuzz/seeds.lua spec/support/media_vectors.lua
	@$(MAKE) --no-print-directory all
	@fuzz/seeds.sh $(FUZZ_DIR)/seeds

fuzz-short: fuzz-build $(FUZZ_DIR)/seeds/.done
	@fuzz/run.sh short $(FUZZ_SHORT) $(FUZZ_TARGETS)

fuzz: fuzz-build $(FUZZ_DIR)/seeds/.done
	@fuzz/run.sh long $(FUZZ_TIME) $(FUZZ_TARGETS)

# The regression runner: plain $(CC), the objects of the normal build.
$(REPLAY_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_lua.c fuzz/replay_main.c $(CORE_OBJ) $(LUA_OBJ) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ fuzz/fuzz_$*.c fuzz/fuzz_lua.c fuzz/replay_main.c \
	    $(CORE_OBJ) $(LUA_OBJ) $(FUZZ_LIBS)

fuzz-replay-build: $(REPLAY_BINS)

endif
