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
#   TEST_JOBS      workers run at once, each taking the next spec file as
#                  it becomes free and running busted on it alone (default 3:
#                  most specs wait on real-time peers, and on 2 cores three
#                  workers take no longer per file than two)
#   LUARTMP_TEST_DIR  the run directory the specs write into (default
#                  build/test-tmp/run-PID-TIME-WORKER)
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
# Older run directories go (one per worker); the last few runs' stay for
# post-mortems.
ls -dt build/test-tmp/run-* 2>/dev/null | tail -n +10 | xargs -r rm -rf

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

# The spec files go longest first, by spec/support/durations.txt (seconds
# per file, written by an earlier full run into build/test-tmp/durations.txt;
# files it does not list go first). TEST_JOBS workers each take the next
# file as they become free and run busted on it alone, so the last files
# to end are short ones; each file's output is printed whole when it ends.
jobs=${TEST_JOBS:-3}
files=$(for d in "$@"; do
    if [ -d "$d" ]; then find "$d" -name '*_spec.lua'; else echo "$d"; fi
done | sort)
[ -n "$files" ] || { echo "test.sh: no spec files in $*" >&2; echo "0 passed, 1 failed"; exit 1; }
count=$(printf '%s\n' "$files" | wc -l)
[ "$count" -lt "$jobs" ] && jobs=$count
[ "$jobs" -ge 1 ] || jobs=1
stamp=$$-$(date +%s)
base=build/test-tmp/run-$stamp       # + -K: worker K's run directory
state=build/test-tmp/queue-$stamp    # the queue, its counter and lock, each file's log
durations=spec/support/durations.txt
[ -r "$durations" ] || durations=/dev/null
printf '%s\n' "$files" | awk -v known="$durations" '
    BEGIN { while ((getline line < known) > 0) { split(line, w, " "); d[w[2]] = w[1] } }
    { print (($0 in d) ? d[$0] : 1000000), $0 }' |
    sort -k1,1rn -k2,2 | cut -d' ' -f2- >"$state.queue"
echo 0 >"$state.next"

# The next spec file of the queue, or nothing when it is empty.
take() {
    (
        flock 9
        n=$(($(cat "$state.next") + 1))
        echo "$n" >"$state.next"
        sed -n "${n}p" "$state.queue"
    ) 9>"$state.lock"
}

# Worker k: busted on one file at a time, each file's output into its own
# log and, once it ends, onto standard output (a line says when it starts);
# "rc seconds file" into $log.rc. Each worker has its own run directory and
# its own slice of the test ports (spec/support/helpers.lua): workers may
# draw the same random numbers. TERM stops the file's busted and what it
# started (its children), then the worker.
run_worker() {
    LUARTMP_TEST_DIR=${LUARTMP_TEST_DIR:-$base-$1}
    LUARTMP_TEST_SHARD="$1 $jobs"
    LUARTMP_TEST_PER_FILE=1   # a file none of whose tests match a filter is no error
    export LUARTMP_TEST_DIR LUARTMP_TEST_SHARD LUARTMP_TEST_PER_FILE
    bpid=
    trap '[ -n "$bpid" ] && { pkill -TERM -P "$bpid"; kill -TERM "$bpid"; } 2>/dev/null; exit 130' TERM
    i=0
    while f=$(take) && [ -n "$f" ]; do
        i=$((i + 1))
        log=$state.out.$1.$i
        ( flock 9; echo "-> $f" ) 9>"$state.lock"
        t0=$(date +%s)
        # shellcheck disable=SC2086
        $runner -o spec/support/summary.lua ${BUSTED_ARGS:-} "$f" >"$log" 2>&1 &
        bpid=$!
        wait "$bpid"
        rc=$?
        bpid=
        echo "$rc $(($(date +%s) - t0)) $f" >"$log.rc"
        ( flock 9; echo "== $f"; cat "$log" ) 9>"$state.lock"
    done
}
# Interrupted (INT reaches only this shell: background jobs ignore it):
# stop the workers, which stop their specs.
workers=
trap 'kill -TERM $workers 2>/dev/null; wait; rm -f "$state".*; exit 130' INT TERM
k=0
while [ "$k" -lt "$jobs" ]; do
    run_worker "$k" &
    workers="$workers $!"
    k=$((k + 1))
done
wait

passed=0 failed=0 skipped=0 any_skipped=
pattern='^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$'
: >"$state.durations"
ran=0
for log in $(ls "$state".out.*.* 2>/dev/null | grep -v '\.rc$'); do
    ran=$((ran + 1))
    if read -r rc secs f <"$log.rc" 2>/dev/null; then
        echo "$secs $f" >>"$state.durations"
    else
        rc=1 f=$log
    fi
    last=$(tail -n 1 "$log")
    summary=$(grep -E "$pattern" "$log" | tail -n 1)
    # A sanitizer report from the busted process itself (ASan mode).
    sanitizer=$(grep -E -m 1 '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log")
    rm -f "$log" "$log.rc"
    if [ -z "$summary" ]; then
        echo "test.sh: $f: busted ended without a summary (exit status $rc)${sanitizer:+: $sanitizer}" >&2
        failed=$((failed + 1))
        continue
    fi
    p=$(printf '%s\n' "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
    fl=$(printf '%s\n' "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    sk=$(printf '%s\n' "$summary" | sed -nE 's/.*, ([0-9]+) skipped$/\1/p')
    passed=$((passed + p))
    failed=$((failed + fl))
    [ -n "$sk" ] && { skipped=$((skipped + sk)); any_skipped=1; }
    if [ -n "$sanitizer" ] && [ "$LUARTMP_ASAN" = 1 ] && [ "$fl" -eq 0 ]; then
        echo "test.sh: $f: $sanitizer" >&2
        failed=$((failed + 1))   # a report from busted's own process: not clean
    elif [ "$last" != "$summary" ] || { [ "$rc" -ne 0 ] && [ "$fl" -eq 0 ]; }; then
        # Something went wrong after the specs ran (a sanitizer report at
        # exit, a crash, a leaked process writing late): one failure.
        echo "test.sh: $f: busted exited with status $rc after its summary${sanitizer:+: $sanitizer}; see its output above" >&2
        failed=$((failed + 1))
    fi
done
# Under ASan, a report from any process a spec started (their output is in
# the run directories) is a failure too.
if [ "$LUARTMP_ASAN" = 1 ]; then
    k=0
    while [ "$k" -lt "$jobs" ]; do
        dir=${LUARTMP_TEST_DIR:-$base-$k}
        reports=$([ -d "$dir" ] && grep -l -r -E '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' \
            --include='*.err' --include='*.out' --include='*.log' "$dir" 2>/dev/null)
        if [ -n "$reports" ]; then
            echo "test.sh: sanitizer reports in: $(echo $reports)" >&2
            failed=$((failed + 1))
        fi
        k=$((k + 1))
    done
fi
if [ "$ran" -ne "$count" ]; then
    echo "test.sh: $((count - ran)) of $count spec files did not run" >&2
    failed=$((failed + count - ran))
fi
# The time of every file that ran, for a later run's order (after a full
# run, copy it over spec/support/durations.txt when the specs changed).
sort -k2,2 "$state.durations" >build/test-tmp/durations.txt
rm -f "$state.queue" "$state.next" "$state.lock" "$state.durations"
if [ $((passed + failed)) -eq 0 ]; then
    echo "test.sh: no test ran: check the spec paths and BUSTED_ARGS" >&2
    failed=1
fi
line="$passed passed, $failed failed"
[ -n "$any_skipped" ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
