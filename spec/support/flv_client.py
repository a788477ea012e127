#!/usr/bin/env python3
"""An HTTP-FLV / WS-FLV client for the specs, standard library only.

    flv_client.py PORT PATH OUT [--http] [--delay S] [--stall S] [--ping]
                  [--early-ping] [--version V] [--send big|unmasked]
                  [--after S] [--timeout S]

Connects to ws://127.0.0.1:PORT/PATH (RFC 6455 handshake, checking
Sec-WebSocket-Accept), writes the payload of every binary frame the
server sends to OUT (the FLV stream), and writes OUT.state: one line
"status=101 frames=N ping=pong|none close=CODE|none reason=TEXT end=closed|timeout
version=V|none" (version: the answer's Sec-WebSocket-Version).

--http          a plain GET instead (HTTP-FLV): OUT gets the body;
--delay S       connects S seconds after it starts (a late joiner);
--stall S       a slow reader: a 4 KiB receive buffer, and nothing read
                for S seconds after the response head;

--ping          sends a masked ping ("luartmp") once the first frame came,
                and records whether the pong echoed it;
--early-ping    sends that ping in the same write as the handshake request
                (before any answer);
--version V     asks for WebSocket version V (default 13);
--send big      after --after seconds (default 1), sends the header of a
                masked binary frame of 1 MiB and then keeps sending its
                payload while the server reads;
--send unmasked after --after seconds, sends an unmasked binary frame.
"""
import base64
import hashlib
import os
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(op, payload, masked=True):
    head = bytes([0x80 | op])
    n = len(payload)
    mbit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def main():
    port, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    ping = "--ping" in args
    http = "--http" in args
    stall = float(args[args.index("--stall") + 1]) if "--stall" in args else 0.0
    send = args[args.index("--send") + 1] if "--send" in args else None
    after = float(args[args.index("--after") + 1]) if "--after" in args else 1.0
    timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 30.0
    early = "--early-ping" in args
    version = args[args.index("--version") + 1].encode() if "--version" in args else b"13"

    state = {"status": 0, "frames": 0, "ping": "none", "close": "none", "reason": "", "end": "timeout",
             "version": "none"}
    if "--delay" in args:
        time.sleep(float(args[args.index("--delay") + 1]))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if stall:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16))
    if http:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    else:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: " + version
                  + b"\r\n\r\n" + (frame(9, b"luartmp") if early else b""))
    buf = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    state["status"] = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    state["version"] = headers.get("sec-websocket-version", "none")
    want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    if state["status"] == 101 and headers.get("sec-websocket-accept") != want:
        state["status"] = -101  # a wrong accept value
    f = open(out, "wb")
    if http:  # the body until the server closes
        time.sleep(stall)
        f.write(buf)
        s.settimeout(1)
        while time.time() < deadline:
            try:
                chunk = s.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                state["end"] = "closed"
                break
            f.write(chunk)
        f.close()
        with open(out + ".state", "w") as st:
            st.write("status=%d end=%s\n" % (state["status"], state["end"]))
        return
    start = time.time()
    sent_ping, sent_bad = early, False
    big_left = 0
    s.settimeout(0.05)
    while state["status"] == 101 and time.time() < deadline:
        if send and not sent_bad and time.time() - start >= after:
            sent_bad = True
            if send == "unmasked":
                s.sendall(frame(2, b"not masked", masked=False))
            elif send == "big":
                n = 1024 * 1024
                s.sendall(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", n) + os.urandom(4))
                big_left = n
        if big_left:
            try:
                big_left -= s.send(b"\0" * min(big_left, 65536))
            except (BlockingIOError, socket.timeout):
                pass
            except OSError:
                big_left = 0
        try:
            chunk = s.recv(262144)
        except socket.timeout:
            chunk = None
        except OSError:
            chunk = b""
        if chunk == b"":
            state["end"] = "closed"
            break
        if chunk:
            buf += chunk
        # whole frames out of buf
        while len(buf) >= 2:
            op, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if buf[1] & 0x80:
                state["reason"] = "server frame masked"
                break
            if n == 126:
                if len(buf) < 4:
                    break
                n, at = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, at = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) < at + n:
                break
            payload, buf = buf[at:at + n], buf[at + n:]
            if op == 2:
                f.write(payload)
                state["frames"] += 1
                if ping and not sent_ping:
                    sent_ping = True
                    s.sendall(frame(9, b"luartmp"))
            elif op == 10:
                state["ping"] = "pong" if payload == b"luartmp" else "bad-pong"
            elif op == 8:
                state["close"] = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else "empty"
                state["reason"] = payload[2:].decode("utf-8", "replace").replace(" ", "_")
                try:
                    s.sendall(frame(8, payload[:2]))
                except OSError:
                    pass
    f.close()
    with open(out + ".state", "w") as st:
        st.write(" ".join("%s=%s" % (k, state[k]) for k in ("status", "frames", "ping", "close", "reason", "end", "version")) + "\n")


if __name__ == "__main__":
    main()
