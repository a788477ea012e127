#!/usr/bin/python3
# slow_stall.py: an RTMP player that stops reading (spec/interop/slow_spec.lua).
#
#   python3 spec/interop/slow_stall.py PORT APP STREAM [STALL_AFTER [RCVBUF]]
#
# Connects to 127.0.0.1:PORT with a small socket receive buffer (RCVBUF
# bytes, default 4096, set before connecting so the TCP window stays
# small), runs a plain handshake, sends connect, createStream and play,
# reads until NetStream.Play.Start arrives and prints "playing port=P"
# (P: its local port, as the server logs it as the peer); reads
# whatever comes for STALL_AFTER more seconds (default 0), prints
# "stalled after N bytes", and from then on reads nothing: the kernel
# buffers fill and the server's queue for this player grows.  On SIGUSR1
# it reads again until the server's close and prints "eof after N bytes"
# (how it tells that the server closed the connection: the FIN waits
# behind the unread bytes), then exits 0.  Standard library only, so
# independent of the code under test: its own AMF0 and chunk headers.
import os
import select
import signal
import socket
import struct
import sys
import time


def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_num(n):
    return b"\x00" + struct.pack(">d", n)


def amf_obj(pairs):
    out = b"\x03"
    for k, v in pairs:
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + v
    return out + b"\x00\x00\x09"


def chunks(csid, mtype, stream, body, size=128):
    """One message, fmt 0 then fmt 3 continuation chunks of `size` bytes."""
    out = struct.pack(">B", csid) + struct.pack(">I", 0)[1:] + struct.pack(">I", len(body))[1:]
    out += struct.pack("<BI", mtype, stream)
    for i in range(0, len(body), size):
        if i:
            out += struct.pack(">B", 0xC0 | csid)
        out += body[i:i + size]
    return out


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        got = s.recv(n - len(buf))
        if not got:
            raise SystemExit("closed during the handshake")
        buf += got
    return buf


def main():
    port, app, stream = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    stall_after = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    rcvbuf = int(sys.argv[5]) if len(sys.argv) > 5 else 4096
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    c1 = struct.pack(">II", 0, 0) + os.urandom(1528)
    s.sendall(b"\x03" + c1)
    s0s1 = read_exact(s, 1537)
    s.sendall(s0s1[1:])          # C2 echoes S1
    read_exact(s, 1536)          # S2
    tc_url = "rtmp://127.0.0.1:%d/%s" % (port, app)
    connect = amf_str("connect") + amf_num(1) + amf_obj([
        ("app", amf_str(app)), ("flashVer", amf_str("LNX 9,0,124,2")),
        ("tcUrl", amf_str(tc_url)), ("fpad", b"\x01\x00"),
        ("audioCodecs", amf_num(3575)), ("videoCodecs", amf_num(252)),
        ("objectEncoding", amf_num(0))])
    s.sendall(chunks(3, 20, 0, connect))
    s.sendall(chunks(3, 20, 0, amf_str("createStream") + amf_num(2) + b"\x05"))
    # Stream id 1: what a fresh connection's first createStream gets from
    # luartmp's live.lua (and from nginx-rtmp).
    s.sendall(chunks(8, 20, 1, amf_str("play") + amf_num(0) + b"\x05" + amf_str(stream) + amf_num(-2000)))
    seen = b""
    deadline = time.time() + 10
    while b"NetStream.Play.Start" not in seen:
        if time.time() > deadline:
            raise SystemExit("no NetStream.Play.Start")
        got = s.recv(4096)
        if not got:
            raise SystemExit("closed before playing")
        seen = seen[-64:] + got
    print("playing port=%d" % s.getsockname()[1], flush=True)
    total = len(seen)
    until = time.time() + stall_after
    while time.time() < until:
        r, _, _ = select.select([s], [], [], max(0.0, until - time.time()))
        if r:
            got = s.recv(65536)
            if not got:
                raise SystemExit("closed before the stall")
            total += len(got)
    print("stalled after %d bytes" % total, flush=True)
    drain = []
    signal.signal(signal.SIGUSR1, lambda *_: drain.append(1))
    while not drain:
        time.sleep(0.05)
    s.settimeout(30)
    while True:
        got = s.recv(65536)
        if not got:
            break
        total += len(got)
    print("eof after %d bytes" % total, flush=True)


main()
