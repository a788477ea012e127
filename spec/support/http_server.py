#!/usr/bin/env python3
"""A small HTTP(S) server for the specs: the peer of rtmp.http.request, and
an authorisation backend written the way people write them for nginx-rtmp's
notify module (on_publish, on_play, ... POST a form; 2xx allows, 3xx with a
Location redirects, anything else refuses).

    http_server.py PORT LOG [--tls CERT KEY] [--key KEY]
                   [--redirect NAME=LOCATION]... [--refuse-update PREFIX]

Every request is appended to LOG as one JSON line: method, path, query,
headers (lower-case names), body, and its fields in order: the query's,
then an application/x-www-form-urlencoded body's.

Paths:
  /echo                 200, the request as JSON (X-Echo: yes, X-Multi twice)
  /status/NNN           status NNN; ?location=URL adds a Location header
  /slow?delay=S         waits S seconds, then 200 "slow"
  /big?bytes=N          200 with N bytes
  /notify (any other)   the backend: nginx-rtmp's own relay sessions
                        (flashver ngx-local-relay) pass; call=publish/play
                        with name in --redirect answer 302 Location; with key=KEY (the
                        stream's query argument) 200, else 403; an update
                        of a name starting with --refuse-update's prefix 403;
                        everything else 200
"""
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

PORT = int(sys.argv[1])
LOG = sys.argv[2]
opts = sys.argv[3:]
TLS = None
KEY = None
REDIRECTS = {}
REFUSE_UPDATE = None
i = 0
while i < len(opts):
    if opts[i] == "--tls":
        TLS = (opts[i + 1], opts[i + 2])
        i += 3
    elif opts[i] == "--key":
        KEY = opts[i + 1]
        i += 2
    elif opts[i] == "--redirect":
        name, loc = opts[i + 1].split("=", 1)
        REDIRECTS[name] = loc
        i += 2
    elif opts[i] == "--refuse-update":
        REFUSE_UPDATE = opts[i + 1]
        i += 2
    else:
        sys.exit("unknown option " + opts[i])

lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self, body, fields):
        u = urlsplit(self.path)
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": u.path,
            "query": u.query,
            "version": self.request_version,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
            "body_hex": body.hex(),
            "fields": fields,
        }
        with lock, open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        u = urlsplit(self.path)
        query = dict(parse_qsl(u.query, keep_blank_values=True))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        # the query's fields, then a form body's (as PHP's $_REQUEST has them)
        fields = parse_qsl(u.query, keep_blank_values=True)
        if ctype == "application/x-www-form-urlencoded":
            fields += parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        self.record(body, fields)
        if u.path == "/echo":
            echo = {
                "method": self.command, "path": u.path, "query": u.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"),
            }
            self.reply(200, json.dumps(echo).encode(), [("Content-Type", "application/json"),
                       ("X-Echo", "yes"), ("X-Multi", "a"), ("X-Multi", "b")])
        elif u.path.startswith("/status/"):
            code = int(u.path[len("/status/"):])
            headers = [("Location", query["location"])] if "location" in query else []
            bodyless = code in (204, 304) or code < 200
            self.reply(code, b"" if bodyless else ("status %d" % code).encode(), headers)
        elif u.path == "/slow":
            time.sleep(float(query.get("delay", "2")))
            self.reply(200, b"slow")
        elif u.path == "/big":
            self.reply(200, b"x" * int(query.get("bytes", "0")))
        else:
            self.notify(dict(fields))

    def notify(self, f):
        call = f.get("call", "")
        name = f.get("name", "")
        if f.get("flashver") == "ngx-local-relay":
            # nginx-rtmp notifies its own relay sessions too: a backend for
            # it lets them through
            self.reply(200, b"relay")
        elif call in ("publish", "play") and name in REDIRECTS:
            self.reply(302, b"", [("Location", REDIRECTS[name])])
        elif call in ("publish", "play"):
            if KEY is None or f.get("key") == KEY:
                self.reply(200, b"ok")
            else:
                self.reply(403, b"bad key")
        elif call.startswith("update") and REFUSE_UPDATE and name.startswith(REFUSE_UPDATE):
            self.reply(403, b"no more")
        else:
            self.reply(200, b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
if TLS:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(TLS[0], TLS[1])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", PORT, flush=True)
server.serve_forever()
