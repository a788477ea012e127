#!/bin/sh
# fuzz/seeds.sh DIR: build the seed corpora DIR/<target>/ for the fuzz
# targets (fuzz/README.md).  Nothing here is committed: the seeds come
# from a real session captured now and from values our encoders write.
#
#   1. ffmpeg makes a 2 s H.264 + AAC FLV; ffmpeg publishes it to
#      build/luartmp scripts/live.lua on a free loopback port while
#      another ffmpeg and rtmpdump (librtmp) play it; dumpcap captures
#      the port.
#   2. tshark reassembles each TCP connection (follow,tcp,raw) into the
#      client's bytes and the server's bytes.
#   3. fuzz/seeds.lua (lua5.4 with build/rtmp.so) cuts those streams into
#      seeds for each target and adds encoded AMF values and FLV files.
set -eu
out=${1:?usage: fuzz/seeds.sh DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/luartmp-seeds.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x120:rate=15 \
    -f lavfi -i sine=frequency=440:sample_rate=44100 -t 2 -c:v libx264 -preset veryfast \
    -g 15 -pix_fmt yuv420p -c:a aac -b:a 32k -f flv "$work/in.flv"

dumpcap -q -i lo -f "tcp port $port" -w "$work/cap.pcapng" 2>"$work/dumpcap.err" &
cap=$!; pids="$pids $cap"
i=0
until grep -q "Capturing on" "$work/dumpcap.err" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "dumpcap did not start" >&2; exit 1; }
    sleep 0.1
done

"$here/build/luartmp" --listen "127.0.0.1:$port" "$here/scripts/live.lua" >"$work/server.log" 2>&1 &
srv=$!; pids="$pids $srv"
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "luartmp did not listen" >&2; exit 1; }
    sleep 0.1
done

ffmpeg -nostdin -v error -rw_timeout 3000000 -i "rtmp://127.0.0.1:$port/live/seed" -c copy -f flv \
    -y "$work/play.flv" >"$work/play.log" 2>&1 &
ply=$!; pids="$pids $ply"
timeout 8 rtmpdump -q -v -r "rtmp://127.0.0.1:$port/live/seed" -o /dev/null >"$work/rtmpdump.log" 2>&1 &
dump=$!; pids="$pids $dump"
sleep 0.5
ffmpeg -nostdin -v error -re -i "$work/in.flv" -c copy -f flv "rtmp://127.0.0.1:$port/live/seed" \
    >"$work/publish.log" 2>&1
wait "$ply" || true
wait "$dump" || true
sleep 0.3
kill "$srv" "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true

# Each connection: the client's bytes and the server's, as hex.
n=$(tshark -r "$work/cap.pcapng" -T fields -e tcp.stream 2>/dev/null | sort -un | wc -l)
mkdir -p "$work/streams"
s=0
while [ "$s" -lt "$n" ]; do
    tshark -r "$work/cap.pcapng" -q -z "follow,tcp,raw,$s" 2>/dev/null >"$work/streams/$s.txt"
    s=$((s + 1))
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
LUA_CPATH="$here/build/?.so;;" lua5.4 "$here/fuzz/seeds.lua" "$out" "$work/streams" "$work/in.flv"
touch "$out/.done"
