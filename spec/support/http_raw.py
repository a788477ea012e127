#!/usr/bin/env python3
# A raw HTTP peer for the server specs: send the bytes of IN to
# 127.0.0.1:PORT (all at once, or DRIP bytes every 0.1 s), then read
# until the server closes or WAIT seconds pass with nothing new (after
# PAUSE seconds of not reading: a peer that pipelines and does not read);
# the bytes received go to OUT, and "closed" or "open" to OUT.state.
#   http_raw.py PORT IN OUT [DRIP] [WAIT] [PAUSE]
import socket, sys, time

port, inp, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
drip = int(sys.argv[4]) if len(sys.argv) > 4 else 0
wait = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
data = open(inp, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
got, state = b"", "open"
try:
    if drip:
        s.settimeout(0.1)
        for i in range(0, len(data), drip):
            s.sendall(data[i:i + drip])
            try:
                b = s.recv(65536)
                if not b:
                    state = "closed"
                    break
                got += b
            except socket.timeout:
                pass
    else:
        s.sendall(data)
    time.sleep(pause)
    s.settimeout(wait)
    while state == "open":
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            state = "closed"
            break
        got += b
except (ConnectionResetError, BrokenPipeError):
    state = "closed"
open(out, "wb").write(got)
open(out + ".state", "w").write(state + "\n")
