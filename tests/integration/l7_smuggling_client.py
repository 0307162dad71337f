#!/usr/bin/env python3
"""Sends each request-smuggling payload on its own raw connection to the
proxy, then checks what the recording backend received. A payload passes if
the proxy refused it (400/501 and the connection closed, nothing new at the
backend) or normalised it (the backend received exactly ONE well-formed
request). A payload fails if the backend ever sees the smuggled request.

Prints one line per case; exits 1 on any failure."""
import json
import socket
import sys
import time

PROXY = sys.argv[1]          # ADDR:PORT
RECORD = sys.argv[2]         # the backend's JSON-lines record
host, port = PROXY.rsplit(":", 1)
SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: productpage\r\n\r\n"
ADMIN = "GET /admin/smuggled HTTP/1.1\r\nHost: productpage\r\n\r\n"

CASES = [
    ("CL.TE", "POST / HTTP/1.1\r\nHost: productpage\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("TE.CL", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + SMUGGLED + "\r\n0\r\n\r\n"),
    ("duplicate CL", "POST / HTTP/1.1\r\nHost: productpage\r\nContent-Length: 0\r\nContent-Length: 47\r\n\r\n" + SMUGGLED),
    ("CL list", "POST / HTTP/1.1\r\nHost: productpage\r\nContent-Length: 0, 47\r\n\r\n" + SMUGGLED),
    ("TE chunked, chunked", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("TE identity, chunked", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: identity, chunked\r\nContent-Length: 47\r\n\r\n" + SMUGGLED),
    ("TE xchunked", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: xchunked\r\nContent-Length: 47\r\n\r\n" + SMUGGLED),
    ("TE obs-fold", "POST / HTTP/1.1\r\nHost: productpage\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 47\r\n\r\n" + SMUGGLED),
    ("space before colon", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding : chunked\r\nContent-Length: 47\r\n\r\n" + SMUGGLED),
    ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("chunk size with 0x", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("negative chunk size", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n" + SMUGGLED),
    ("overflowing chunk size", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n" + SMUGGLED),
    ("chunk size bare LF", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("bad chunk extension", "POST / HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n5;\"x\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("bare LF head", "GET / HTTP/1.1\nHost: productpage\n\n" + SMUGGLED.replace("\r\n", "\n")),
    ("bare CR in value", "GET / HTTP/1.1\r\nHost: productpage\r\nX-A: 1\rContent-Length: 47\r\n\r\n" + SMUGGLED),
    ("duplicate Host", "GET / HTTP/1.1\r\nHost: productpage\r\nHost: other\r\n\r\n"),
    ("missing Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"),
    ("absolute-form", "GET http://productpage/abs?q=1 HTTP/1.1\r\nHost: productpage\r\n\r\n"),
    # Connection naming a framing field must not strip it: the body (a GET
    # /admin that the route answers 403 for) would reach the backend as a
    # request of its own.
    ("Connection: content-length", "POST / HTTP/1.1\r\nHost: productpage\r\nConnection: content-length\r\n"
     "Content-Length: %d\r\n\r\n%s" % (len(ADMIN), ADMIN)),
    ("Connection: Content-Length, host", "POST / HTTP/1.1\r\nHost: productpage\r\nConnection: keep-alive, "
     "Content-Length, host\r\nContent-Length: %d\r\n\r\n%s" % (len(ADMIN), ADMIN)),
    ("Connection: transfer-encoding", "POST / HTTP/1.1\r\nHost: productpage\r\nConnection: transfer-encoding\r\n"
     "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(ADMIN), ADMIN)),
]


def records():
    try:
        with open(RECORD) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def exchange(payload):
    s = socket.create_connection((host, int(port)), timeout=3)
    s.sendall(payload.encode("latin-1"))
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data.decode("latin-1")


failures = 0
for name, payload in CASES:
    before = len(records())
    reply = exchange(payload)
    time.sleep(0.05)
    new = records()[before:]
    statuses = [line.split(" ")[1] for line in reply.split("\r\n") if line.startswith("HTTP/1.1 ")]
    smuggled = [r for r in new if "smuggled" in r["target"]]
    ok = False
    if smuggled:
        verdict = "SMUGGLED to the backend"
    elif statuses and statuses[0] in ("400", "501") and len(new) <= 1:
        # A body error is found while streaming: the head may have reached
        # the backend, but never a second request.
        ok = True
        verdict = f"refused {statuses[0]}" + (" (head forwarded, body cut)" if new else "")
    elif len(new) == 1 and statuses and statuses[0] == "200":
        r = new[0]
        hosts = [v for n, v in r["headers"] if n.lower() == "host"]
        ok = r["target"].startswith("/") and len(hosts) == 1
        if name.startswith("Connection:"):   # the body arrived whole, as the body
            ok = ok and r["body"] == ADMIN
        verdict = f"normalised to one request: {r['method']} {r['target']} host={hosts}"
    else:
        verdict = f"unexpected: statuses={statuses} backend_requests={len(new)}"
    print(f"{'PASS' if ok else 'FAIL'}  {name:24s} {verdict}")
    failures += 0 if ok else 1
sys.exit(1 if failures else 0)
