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
#   4. ffmpeg writes the mp4 target's seeds: 0.2 s files of every codec
#      rtmp.mp4 carries, moov first (faststart) so each fits in the 4 KiB
#      a short run takes, one fragmented, one with two video tracks.
#   5. openssl s_client talks TLS 1.3 and 1.2 to an rtmps:// listener,
#      captured; fuzz/seeds_tls.lua cuts the tlsinfo target's seeds.
#   6. curl and ffprobe send requests to a socket server that keeps them:
#      the http target's seeds.
#   7. The ws target's seeds: what a WS-FLV client sends after the
#      handshake, masked as RFC 6455 wants (python3's standard library).
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

# Wait until dumpcap (its stderr in $1) captures, or a listener is on port $1.
wait_capture() {
    i=0
    until grep -q "Capturing on" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "dumpcap did not start" >&2; exit 1; }
        sleep 0.1
    done
}
wait_listen() {
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "luartmp did not listen on $1" >&2; exit 1; }
        sleep 0.1
    done
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x120:rate=15 \
    -f lavfi -i sine=frequency=440:sample_rate=44100 -t 2 -c:v libx264 -preset veryfast \
    -g 15 -pix_fmt yuv420p -c:a aac -b:a 32k -f flv "$work/in.flv"

dumpcap -q -i lo -f "tcp port $port" -w "$work/cap.pcapng" 2>"$work/dumpcap.err" &
cap=$!; pids="$pids $cap"
wait_capture "$work/dumpcap.err"

"$here/build/luartmp" --listen "127.0.0.1:$port" "$here/scripts/live.lua" >"$work/server.log" 2>&1 &
srv=$!; pids="$pids $srv"
wait_listen "$port"

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

mkdir -p "$out/mp4"
v="-f lavfi -i testsrc2=size=32x24:rate=10"
a16="-f lavfi -i sine=frequency=440:sample_rate=16000"
a32="-f lavfi -i sine=frequency=440:sample_rate=32000"
mp4() {
    name=$1
    shift
    ffmpeg -nostdin -v error -y "$@" -t 0.2 "$out/mp4/$name.mp4"
}
mp4 h264-aac $v $a16 -c:v libx264 -preset ultrafast -g 2 -c:a aac -b:a 8k -movflags +faststart
mp4 hevc-opus $v $a16 -c:v libx265 -preset ultrafast -x265-params log-level=none:info=0:keyint=2 \
    -c:a libopus -b:a 8k -movflags +faststart
mp4 av1-flac $v $a16 -c:v libaom-av1 -cpu-used 8 -usage realtime -g 2 -c:a flac -strict -2 -movflags +faststart
mp4 vp9-ac3 $v $a32 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 2 -c:a ac3 -b:a 32k -movflags +faststart
mp4 eac3-mp3 $a32 $a16 -map 0:a -map 1:a -c:a:0 eac3 -b:a:0 32k -c:a:1 libmp3lame -b:a:1 8k -movflags +faststart
mp4 h264-aac-frag $v $a16 -c:v libx264 -preset ultrafast -g 2 -c:a aac -b:a 8k \
    -movflags +frag_keyframe+empty_moov+default_base_moof
mp4 h264x2 $v -f lavfi -i testsrc=size=16x16:rate=10 -map 0:v -map 1:v -c:v libx264 -preset ultrafast -g 2 \
    -movflags +faststart

# The tlsinfo target's seeds: a real TLS session, openssl s_client (with
# SNI and ALPN) to an rtmps:// listener of luartmp, captured on loopback.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dumpcap -q -i lo -f "tcp port $tport" -w "$work/tls.pcapng" 2>"$work/dumpcap-tls.err" &
cap=$!; pids="$pids $cap"
wait_capture "$work/dumpcap-tls.err"
"$here/build/luartmp" --listen "rtmps://127.0.0.1:$tport" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
    "$here/scripts/live.lua" >"$work/server-tls.log" 2>&1 &
srv=$!; pids="$pids $srv"
wait_listen "$tport"
for v in -tls1_3 -tls1_2; do
    printf '\003' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$tport" -servername localhost \
        -alpn rtmp $v >/dev/null 2>&1 || true
done
sleep 0.3
kill "$srv" "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
"$here/build/luartmp" "$here/fuzz/seeds_tls.lua" "$out" "$work/tls.pcapng" >/dev/null
# The http target's seeds: what curl and ffprobe send, captured by a
# socket server that answers each request and keeps the bytes.
mkdir -p "$out/http"
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$hport" "$out/http" <<'PY' &
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8); srv.settimeout(15)
for i in range(6):
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(0.5); got = b""
    try:
        while b"\r\n\r\n" not in got or len(got) < 64:
            b = c.recv(65536)
            if not b: break
            got += b
    except socket.timeout:
        pass
    open("%s/req%d" % (sys.argv[2], i), "wb").write(got)
    c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); c.close()
PY
hsrv=$!; pids="$pids $hsrv"
sleep 0.3
hurl="http://127.0.0.1:$hport"
curl -s "$hurl/api/streams?app=live&name=a%20b" >/dev/null || true
curl -s -d 'app=live&name=cam&clientid=3' "$hurl/api/drop" >/dev/null || true
curl -s -H 'Transfer-Encoding: chunked' --data-binary 'chunked body' "$hurl/echo" >/dev/null || true
curl -s -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$hurl/live/cam.flv" >/dev/null || true
ffprobe -v quiet -rw_timeout 2000000 "$hurl/live/cam.flv" >/dev/null 2>&1 || true
curl -s --http1.0 -I "$hurl/metrics" >/dev/null || true
wait "$hsrv" 2>/dev/null || true
# The ws target's seeds: client frames (ping, pong, binary, fragmented
# text, close), masked; one unmasked and one too long for the bound.
mkdir -p "$out/ws"
python3 - "$out/ws" <<'PY'
import os, struct, sys
def frame(op, payload, fin=True, masked=True):
    n = len(payload); b1 = 0x80 if masked else 0
    head = bytes([(0x80 if fin else 0) | op])
    head += bytes([b1 | n]) if n < 126 else bytes([b1 | 126]) + struct.pack(">H", n) if n < 65536 \
        else bytes([b1 | 127]) + struct.pack(">Q", n)
    if not masked: return head + payload
    key = bytes([0x12, 0x34, 0x56, 0x78])
    return head + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))
seeds = {
    "ping": frame(9, b"luartmp") + frame(10, b""),
    "binary": frame(2, b"\x00" * 300) + frame(2, b"\x01" * 70000),
    "fragmented": frame(1, b"hel", fin=False) + frame(0, b"lo", fin=False) + frame(0, b"!"),
    "close": frame(8, struct.pack(">H", 1000) + b"bye"),
    "unmasked": frame(2, b"not masked", masked=False),
    "mixed": frame(9, b"a") + frame(2, b"x" * 130) + frame(8, b""),
}
for name, data in seeds.items():
    open(os.path.join(sys.argv[1], name), "wb").write(data)
PY
touch "$out/.done"
