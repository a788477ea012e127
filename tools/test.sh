#!/bin/sh
# Run the busted specs under Lua 5.4 and end with one summary line:
#   N passed, N failed[, N skipped]
# Errors count as failures; the exit status is non-zero on any failure, when
# no test ran, or when busted ended without a summary.
#
#   tools/test.sh [spec dir or file ...]      (default: spec/)
#
# Environment:
#   LUARTMP        the luartmp executable under test (default build/luartmp);
#                  the rtmp module is taken from the same build directory
#   LUARTMP_ASAN=1 run busted inside $LUARTMP itself (an ASan/UBSan build):
#                  the module is preloaded there, so it runs in an ASan process
#   BUSTED_ARGS    extra busted options (e.g. "--filter=nginx")
set -u
cd "$(dirname "$0")/.." || exit 1

LUARTMP=${LUARTMP:-build/luartmp}
LUARTMP_ASAN=${LUARTMP_ASAN:-0}
# An ASan build's module cannot be loaded into lua5.4 (the ASan runtime must
# come first): when $LUARTMP links libasan, run busted inside it anyway.
if [ "$LUARTMP_ASAN" != 1 ] && [ -x "$LUARTMP" ] && ldd "$LUARTMP" 2>/dev/null | grep -q libasan; then
    echo "test.sh: $LUARTMP is an ASan build: running busted inside it (LUARTMP_ASAN=1)" >&2
    LUARTMP_ASAN=1
fi
export LUARTMP LUARTMP_ASAN
builddir=$(dirname "$LUARTMP")

# The Lua paths: the project first, then the interpreter's system paths
# (";;" expands to the defaults).
LUA_PATH="./?.lua;./?/init.lua;./lua/?.lua;./scripts/?.lua;./spec/?.lua;;"
LUA_CPATH="$builddir/?.so;;"
export LUA_PATH LUA_CPATH
unset LUA_PATH_5_4 LUA_CPATH_5_4

if [ $# -eq 0 ]; then
    set -- spec
fi
for d in "$@"; do
    if [ ! -e "$d" ]; then
        echo "test.sh: no such spec directory or file: $d" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
done

mkdir -p build/test-tmp
log=build/test-tmp/busted-output.$$
# The run's temporary directory (support/helpers.lua): the processes the
# specs start write their output there.
LUARTMP_TEST_DIR=${LUARTMP_TEST_DIR:-build/test-tmp/run-$$-$(date +%s)}
export LUARTMP_TEST_DIR
if [ "$LUARTMP_ASAN" = 1 ]; then
    if [ ! -x "$LUARTMP" ]; then
        echo "test.sh: LUARTMP_ASAN=1 but $LUARTMP is not an executable" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    runner="$LUARTMP /usr/bin/busted"
else
    runner="lua5.4 /usr/bin/busted"
fi

# busted's own exit status, carried out of the pipe through a file.
# shellcheck disable=SC2086
{ $runner -o spec/support/summary.lua --pattern=_spec \
      ${BUSTED_ARGS:-} "$@" 2>&1; echo $? >"$log.rc"; } | tee "$log"
rc=$(cat "$log.rc" 2>/dev/null || echo 1)
pattern='^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$'
last=$(tail -n 1 "$log")
summary=$(grep -E "$pattern" "$log" | tail -n 1)
# A sanitizer report from the busted process itself (ASan mode), if any,
# or from any process a spec started (their stderr is in the run directory).
sanitizer=$(grep -E -m 1 '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log")
if [ -z "$sanitizer" ] && [ "$LUARTMP_ASAN" = 1 ] && [ -d "$LUARTMP_TEST_DIR" ]; then
    reports=$(grep -l -r -E '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' \
        --include='*.err' --include='*.out' --include='*.log' "$LUARTMP_TEST_DIR" 2>/dev/null)
    if [ -n "$reports" ]; then
        sanitizer="sanitizer reports in: $(echo $reports)"
        echo "test.sh: $sanitizer" >&2
    fi
fi
rm -f "$log" "$log.rc"

if [ -z "$summary" ]; then
    echo "test.sh: busted ended without a summary (exit status $rc)${sanitizer:+: $sanitizer}" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
passed=$(printf '%s\n' "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
failed=$(printf '%s\n' "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
skipped=$(printf '%s\n' "$summary" | sed -nE 's/.*, ([0-9]+) skipped$/\1/p')
if [ -n "$sanitizer" ] && [ "$LUARTMP_ASAN" = 1 ] && [ "$failed" -eq 0 ]; then
    failed=1   # a report from a spawned server: the suite is not clean
elif [ "$last" != "$summary" ] || { [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; }; then
    # Something went wrong after the specs ran (a sanitizer report at exit,
    # a crash, a leaked process writing late): count it as one failure.
    echo "test.sh: busted exited with status $rc after its summary${sanitizer:+: $sanitizer}; see the output above" >&2
    failed=$((failed + 1))
fi
line="$passed passed, $failed failed"
[ -n "$skipped" ] && line="$line, $skipped skipped"
if [ "$last" != "$summary" ] || [ "$line" != "$summary" ]; then
    echo "$line"
fi
[ "$failed" -eq 0 ]
