#!/usr/bin/env python3
"""A gRPC-shaped HTTP/1.1 backend: sluice's upstream connections are
HTTP/1.1, so this stands where a gRPC server's trailers-only answers would
(HTTP 200, content-type application/grpc, grpc-status in the head).

    grpc_h1_backend.py ADDR PORT LOG

Per request (one per connection), after reading its head and body, and
appending "METHOD PATH" to LOG:
  /test.Retry/*   the first such request gets grpc-status 14 (UNAVAILABLE),
                  the next 0 (OK), alternately;
  /test.Slow/*    grpc-status 0 after 3 s;
  anything else   grpc-status 0.
"""
import socket
import socketserver
import sys
import threading
import time

lock = threading.Lock()
retry_calls = 0


def read_request(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            if not data:
                break
            rest += data
    elif "content-length" in fields:
        while len(rest) < int(fields["content-length"]):
            data = sock.recv(65536)
            if not data:
                break
            rest += data
    return lines[0].split(" ")[:2]


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        global retry_calls
        req = read_request(self.request)
        if req is None:
            return
        method, path = req
        with open(sys.argv[3], "a") as log:
            log.write(f"{method} {path}\n")
        status = 0
        if path.startswith("/test.Retry/"):
            with lock:
                retry_calls += 1
                status = 14 if retry_calls % 2 == 1 else 0
        elif path.startswith("/test.Slow/"):
            time.sleep(3)
        try:
            self.request.sendall(
                f"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: {status}\r\n"
                f"content-length: 0\r\nconnection: close\r\n\r\n".encode())
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
