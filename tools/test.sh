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
#   TEST_JOBS      busted processes run at once, each with a share of the
#                  spec files (default 2; 1 runs them in one process)
#   LUARTMP_TEST_DIR  the run directory the specs write into (default
#                  build/test-tmp/run-PID-TIME-SHARD)
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
# Older run directories go; the newest few stay for post-mortems.
ls -dt build/test-tmp/run-* 2>/dev/null | tail -n +7 | xargs -r rm -rf

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

# Shards: the spec files are dealt round-robin to TEST_JOBS busted processes
# that run at the same time (most specs wait on real-time peers), each with
# its own run directory; their outputs are printed one after the other.
jobs=${TEST_JOBS:-2}
files=$(for d in "$@"; do
    if [ -d "$d" ]; then find "$d" -name '*_spec.lua'; else echo "$d"; fi
done | sort)
[ -n "$files" ] || { echo "test.sh: no spec files in $*" >&2; echo "0 passed, 1 failed"; exit 1; }
count=$(printf '%s\n' "$files" | wc -l)
[ "$count" -lt "$jobs" ] && jobs=$count
[ "$jobs" -ge 1 ] || jobs=1
base=build/test-tmp/run-$$-$(date +%s)

# Shard k: busted over its files, output into its log, exit status into
# $log.rc.
run_shard() {
    shard=$(printf '%s\n' "$files" | awk -v j="$jobs" -v k="$1" '(NR - 1) % j == k')
    log=build/test-tmp/busted-output.$$.$1
    LUARTMP_TEST_DIR=${LUARTMP_TEST_DIR:-$base-$1}
    # each shard takes its ports from its own slice (spec/support/helpers.lua):
    # shards may draw the same random numbers
    LUARTMP_TEST_SHARD="$1 $jobs"
    export LUARTMP_TEST_DIR LUARTMP_TEST_SHARD
    # shellcheck disable=SC2086
    $runner -o spec/support/summary.lua ${BUSTED_ARGS:-} $shard >"$log" 2>&1
    echo $? >"$log.rc"
}
k=0
while [ "$k" -lt "$jobs" ]; do
    : >build/test-tmp/busted-output.$$.$k
    k=$((k + 1))
done
# Interrupted: stop the shards too (their specs stop what they started).
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
k=1
while [ "$k" -lt "$jobs" ]; do
    ( run_shard "$k" ) &
    k=$((k + 1))
done
# shard 0 in the foreground, its lines shown as they come
( run_shard 0 ) &
tail -n +1 -f build/test-tmp/busted-output.$$.0 & tail_pid=$!
wait_shards() {
    k=0
    while [ "$k" -lt "$jobs" ]; do
        while [ ! -e build/test-tmp/busted-output.$$.$k.rc ]; do sleep 0.5; done
        k=$((k + 1))
    done
}
wait_shards
sleep 0.3
kill "$tail_pid" 2>/dev/null
wait 2>/dev/null

passed=0 failed=0 skipped=0 any_skipped=
pattern='^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$'
k=0
while [ "$k" -lt "$jobs" ]; do
    log=build/test-tmp/busted-output.$$.$k
    [ "$k" -gt 0 ] && cat "$log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    last=$(tail -n 1 "$log")
    summary=$(grep -E "$pattern" "$log" | tail -n 1)
    # A sanitizer report from the busted process itself (ASan mode), if any,
    # or from any process a spec started (their output is in the run directory).
    sanitizer=$(grep -E -m 1 '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log")
    dir=${LUARTMP_TEST_DIR:-$base-$k}
    if [ -z "$sanitizer" ] && [ "$LUARTMP_ASAN" = 1 ] && [ -d "$dir" ]; then
        reports=$(grep -l -r -E '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' \
            --include='*.err' --include='*.out' --include='*.log' "$dir" 2>/dev/null)
        if [ -n "$reports" ]; then
            sanitizer="sanitizer reports in: $(echo $reports)"
            echo "test.sh: $sanitizer" >&2
        fi
    fi
    rm -f "$log" "$log.rc"
    if [ -z "$summary" ]; then
        echo "test.sh: busted ended without a summary (exit status $rc)${sanitizer:+: $sanitizer}" >&2
        failed=$((failed + 1))
    else
        p=$(printf '%s\n' "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(printf '%s\n' "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        sk=$(printf '%s\n' "$summary" | sed -nE 's/.*, ([0-9]+) skipped$/\1/p')
        passed=$((passed + p))
        failed=$((failed + f))
        [ -n "$sk" ] && { skipped=$((skipped + sk)); any_skipped=1; }
        if [ -n "$sanitizer" ] && [ "$LUARTMP_ASAN" = 1 ] && [ "$f" -eq 0 ]; then
            failed=$((failed + 1))   # a report from a spawned process: not clean
        elif [ "$last" != "$summary" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
            # Something went wrong after the specs ran (a sanitizer report at
            # exit, a crash, a leaked process writing late): one failure.
            echo "test.sh: busted exited with status $rc after its summary${sanitizer:+: $sanitizer}; see the output above" >&2
            failed=$((failed + 1))
        fi
    fi
    k=$((k + 1))
done
if [ $((passed + failed)) -eq 0 ]; then
    failed=1   # nothing ran
fi
line="$passed passed, $failed failed"
[ -n "$any_skipped" ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
