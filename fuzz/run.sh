#!/bin/sh
# fuzz/run.sh short|long SECONDS TARGET...: run each target for SECONDS
# (one after the other, one process each) over its corpus, its seeds
# (build-fuzz/seeds/<target>) and its regression inputs
# (spec/fuzz/<target>).  Prints one line per target: executions, speed,
# and "ok" or the finding's artifact; exits 1 when anything was found.
#   short: a fresh corpus in a temp dir (what make test runs)
#   long:  the corpus kept in build-fuzz/corpus/<target>, at nice 19,
#          and without allocation stacks in ASan reports
#          (malloc_context_size=0: about a tenth faster on the chunk
#          target; run the target on the artifact for the full report)
set -u
mode=$1 secs=$2
shift 2
cd "$(dirname "$0")/.." || exit 2
bin=build-fuzz
mkdir -p "$bin/logs" "$bin/artifacts"
status=0
for t in "$@"; do
    if [ "$mode" = long ]; then
        corpus=$bin/corpus/$t
        nice="nice -n 19 env ASAN_OPTIONS=malloc_context_size=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    else
        corpus=$(mktemp -d "${TMPDIR:-/tmp}/luartmp-fuzz-$t.XXXXXX")
        nice=
    fi
    mkdir -p "$corpus" "spec/fuzz/$t" "$bin/seeds/$t"  # seeds made before the target existed: none
    case $t in
    chunk) maxlen=16400 ;;
    dispatch|flv) maxlen=8192 ;;
    *) maxlen=4096 ;;
    esac
    log=$bin/logs/$t-$mode.log
    started=$(date +%s)
    $nice "$bin/fuzz_$t" "$corpus" "$bin/seeds/$t" "spec/fuzz/$t" -max_total_time="$secs" -max_len=$maxlen \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$bin/artifacts/$t-" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - started ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        result=ok
    elif [ "$rc" -eq 72 ] && grep -q 'libFuzzer: run interrupted' "$log"; then
        result=interrupted  # SIGINT: libFuzzer's -interrupted_exit_code
    else
        status=1
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="FINDING (exit $rc) ${art:-see $log}"
        grep -m1 -E '^finding:|ERROR: AddressSanitizer|runtime error|ERROR: libFuzzer' "$log" | sed 's/^/    /'
    fi
    printf 'fuzz_%-10s %10s execs in %4ss (%s/s): %s\n' "$t" "${execs:-?}" "$took" "${speed:-?}" "$result"
    [ "$mode" = long ] || rm -rf "$corpus"
done
exit $status
