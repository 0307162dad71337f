#!/usr/bin/env python3
"""Client-side HTTP/1.1 behaviour of the proxy over raw sockets, one case per
line: pipelining answered in order, Connection: close honoured, HTTP/1.0,
chunked and Content-Length bodies streamed to the backend, Expect:
100-continue, limits (431, 414) and the request-head timeout (408).
Exits 1 if any case fails."""
import json
import socket
import sys
import time

PROXY = sys.argv[1]
RECORD = sys.argv[2]
host, port = PROXY.rsplit(":", 1)
failures = 0


def connect():
    return socket.create_connection((host, int(port)), timeout=5)


def read_all(s, idle=1.0):
    s.settimeout(idle)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data.decode("latin-1")


def records():
    with open(RECORD) as f:
        return [json.loads(line) for line in f if line.strip()]


def case(name, ok, detail=""):
    global failures
    print(f"{'PASS' if ok else 'FAIL'}  {name:34s} {detail}")
    failures += 0 if ok else 1


# Pipelining: three requests in one write, answered in order on one connection.
s = connect()
s.sendall(b"".join(f"GET /pipe/{i} HTTP/1.1\r\nHost: productpage\r\n\r\n".encode() for i in range(3)))
reply = read_all(s)
s.close()
n = reply.count("HTTP/1.1 200")
paths = [r["target"] for r in records() if r["target"].startswith("/pipe/")]
case("pipelining in order", n == 3 and paths == ["/pipe/0", "/pipe/1", "/pipe/2"], f"responses={n} backend={paths}")

# Connection: close: the proxy answers with connection: close and closes.
s = connect()
s.sendall(b"GET /close HTTP/1.1\r\nHost: productpage\r\nConnection: close\r\n\r\n")
t0 = time.time()
reply = read_all(s, idle=3)
case("Connection: close", "connection: close" in reply.lower() and time.time() - t0 < 2.5, reply.split("\r\n")[0])

# HTTP/1.0 without keep-alive: response, then close.
s = connect()
s.sendall(b"GET /ten HTTP/1.0\r\n\r\n")
t0 = time.time()
reply = read_all(s, idle=3)
case("HTTP/1.0 closes", reply.startswith("HTTP/1.1 200") and time.time() - t0 < 2.5, reply.split("\r\n")[0])

# Chunked request body, sent in pieces: the backend gets the whole body.
s = connect()
s.sendall(b"POST /chunked HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
time.sleep(0.2)
s.sendall(b"6\r\n world\r\n0\r\n\r\n")
reply = read_all(s)
got = [r for r in records() if r["target"] == "/chunked"]
case("chunked body streamed", reply.startswith("HTTP/1.1 200") and got and got[-1]["body"] == "hello world",
     repr(got[-1]["body"]) if got else "nothing at backend: " + repr(reply[:80]))

# Content-Length body of 1 MiB streams through (larger than any proxy buffer).
body = b"x" * (8 << 20)
s = connect()
s.sendall(b"POST /big HTTP/1.1\r\nHost: productpage\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
reply = read_all(s, idle=10)   # generous: the python backend is slow to take 8 MiB on a loaded machine
got = [r for r in records() if r["target"] == "/big"]
case("8 MiB Content-Length body", reply.startswith("HTTP/1.1 200") and got and len(got[-1]["body"]) == len(body),
     f"backend got {len(got[-1]['body']) if got else 0} bytes")

# Expect: 100-continue: 100 first, then the final response once the body is sent.
s = connect()
s.sendall(b"PUT /expect HTTP/1.1\r\nHost: productpage\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
first = read_all(s, idle=0.5)
s.sendall(b"data")
final = read_all(s)
expect_fwd = [r for r in records() if r["target"] == "/expect"]
case("Expect: 100-continue", first.startswith("HTTP/1.1 100") and "HTTP/1.1 200" in final and expect_fwd and
     not any(n.lower() == "expect" for n, _ in expect_fwd[-1]["headers"]), first.split("\r\n")[0])

# Limits: 431 for too many header bytes, 414 for a long URI.
s = connect()
s.sendall(b"GET / HTTP/1.1\r\nHost: productpage\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
reply = read_all(s)
case("header bytes limit → 431", reply.startswith("HTTP/1.1 431"), reply.split("\r\n")[0])
s = connect()
s.sendall(b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: productpage\r\n\r\n")
reply = read_all(s)
case("URI limit → 414", reply.startswith("HTTP/1.1 414"), reply.split("\r\n")[0])

# Request-head timeout: a partial head gets 408 and the connection closes.
s = connect()
s.sendall(b"GET / HTTP/1.1\r\nHost: produ")
t0 = time.time()
reply = read_all(s, idle=4)
case("partial head → 408", reply.startswith("HTTP/1.1 408") and time.time() - t0 < 3.5,
     f"{reply.split(chr(13))[0]!r} after {time.time() - t0:.1f}s")

sys.exit(1 if failures else 0)
