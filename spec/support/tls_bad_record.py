"""A TLS 1.3 client that sends C0C1 and then a record no key opens, in one
write, and reports whether anything it then receives holds C1 in the
clear (the server's S2 echoes C1): "sealed N" or "leaked N", N the bytes
received.  For spec/interop/tls_spec.lua.

    python3 tls_bad_record.py PORT
"""
import socket
import ssl
import struct
import sys

MARKER = b"luartmp-plaintext-check-"

def main():
    port = int(sys.argv[1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            s.sendall(outgoing.read())
            data = s.recv(65536)
            if not data:
                sys.exit("closed during the TLS handshake")
            incoming.write(data)
    c1 = struct.pack(">II", 0, 0) + (MARKER * 64)[:1528]
    tls.write(b"\x03" + c1)
    bogus = bytes([23, 3, 3, 0, 32]) + bytes(32)  # application data under no key
    s.sendall(outgoing.read() + bogus)
    raw = b""
    s.settimeout(5)
    while True:
        try:
            data = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            break
        raw += data
    print("leaked" if MARKER in raw else "sealed", len(raw))

main()
