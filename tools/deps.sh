#!/bin/sh
# Install the Debian packages luartmp needs to build and test, if missing.
# As root: apt-get installs them.  Otherwise: print the command and fail.
set -e
PKGS="build-essential pkg-config lua5.4 liblua5.4-dev libev-dev libssl-dev lua-busted lua-dkjson
ffmpeg rtmpdump gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad gstreamer1.0-libav nginx-light libnginx-mod-rtmp tshark libpcap-dev clang libclang-rt-14-dev
stunnel4 libcurl4-openssl-dev libhttp-parser-dev prometheus chromium redis-server libhiredis-dev haproxy"

missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done
if [ -n "$missing" ]; then
    cmd="apt-get install -y --no-install-recommends$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "luartmp: missing Debian packages:$missing" >&2
        echo "luartmp: run as root:  apt-get update && $cmd" >&2
        exit 1
    fi
    echo "luartmp: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
fi

# The npm peers (tools/node/package.json: node-media-server, mpegts.js), into
# tools/node/node_modules, never globally; again only when the lock file changed.
node_dir=$(dirname "$0")/node
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
   [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "luartmp: npm is missing (Node.js 20 or later with npm); then: npm ci --prefix $node_dir" >&2
        exit 1
    fi
    echo "luartmp: installing the npm peers into $node_dir/node_modules"
    npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
fi
