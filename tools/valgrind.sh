#!/bin/sh
# Run specs with every luartmp process the specs start under valgrind
# (memcheck: invalid accesses, uninitialised values, definite leaks), then
# read every valgrind log and print one line:
#   valgrind: N processes, N errors, N definitely lost bytes
# Exit status non-zero when a spec failed or valgrind reported anything.
#
#   tools/valgrind.sh [spec files ...]    (default: a set of interop specs)
#
# The busted process itself runs under plain lua5.4 (the specs' own code);
# the servers, clients, proxies and tools they start are build/luartmp
# wrapped by build/luartmp-valgrind.
set -u
cd "$(dirname "$0")/.." || exit 1
[ -x build/luartmp ] || { echo "valgrind.sh: build/luartmp is missing (make)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

logs=build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
wrapper=build/luartmp-valgrind
cat >"$wrapper" <<EOW
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
    --log-file=$PWD/$logs/vg-%p.log $PWD/build/luartmp "\$@"
EOW
chmod +x "$wrapper"

if [ $# -eq 0 ]; then
    set -- spec/interop/live_flow_spec.lua spec/interop/client_api_spec.lua spec/interop/proxy_spec.lua \
        spec/interop/capture2lua_spec.lua spec/interop/walkthrough_spec.lua spec/interop/faults_spec.lua \
        spec/badinput/badinput_spec.lua spec/interop/close_spec.lua
fi
LUARTMP=$wrapper tools/test.sh "$@"
rc=$?

procs=$(ls "$logs" | wc -l)
# with --quiet a log holds only what valgrind found
errors=$(grep -h -c -E '^==[0-9]+== (Invalid|Conditional|Use of uninitialised|Syscall param|Mismatched|Source and destination)' "$logs"/*.log 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
lost=$(grep -h -E 'definitely lost in' "$logs"/*.log 2>/dev/null | sed -E 's/.*== *([0-9,]+) bytes.*/\1/' | tr -d , | awk '{ s += $1 } END { print s + 0 }')
echo "valgrind: $procs processes, $errors errors, $lost definitely lost bytes (logs in $logs)"
if [ "$errors" -ne 0 ] || [ "$lost" -ne 0 ]; then
    grep -l -E '^==[0-9]+== ' "$logs"/*.log | head -5
    exit 1
fi
exit $rc
