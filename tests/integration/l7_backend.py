#!/usr/bin/env python3
"""A raw-socket HTTP/1.1 backend for the L7 integration tests.

It answers every request with `x-backend: NAME` (optionally after a delay or
with another status) and, with --record, appends one JSON line per request
it parsed — method, target, headers and body exactly as they arrived, and
the connection's peer address and serial number — so a test can check what
the proxy really forwarded, and on which upstream connection. Its parser is
deliberately simple and literal: a request smuggled past the proxy shows up
here as a second record.
"""
import argparse
import itertools
import json
import socket
import socketserver
import threading
import time

lock = threading.Lock()
# Serial numbers of accepted connections: a loopback address:port the proxy
# freed can come back on a later connection, so tests tell connections
# apart by `connection`, not by `peer` alone.
connections = itertools.count(1)


def read_until(sock, buf, marker):
    while marker not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    i = buf.index(marker) + len(marker)
    return buf[:i], buf[i:]


def read_exact(sock, buf, n):
    parts, have = [buf], len(buf)
    while have < n:
        data = sock.recv(1 << 20)
        if not data:
            return None, b"".join(parts)
        parts.append(data)
        have += len(data)
    joined = b"".join(parts)
    return joined[:n], joined[n:]


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        opts = self.server.opts
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        serial = next(connections)
        buf = b""
        while True:
            head, buf = read_until(sock, buf, b"\r\n\r\n")
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
            headers = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers.append([name, value.strip()])
            lower = {n.lower(): v for n, v in headers}
            body = b""
            trailers = []
            if "content-length" in lower:
                body, buf = read_exact(sock, buf, int(lower["content-length"]))
                if body is None:
                    return
            elif lower.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    line, buf = read_until(sock, buf, b"\r\n")
                    if line is None:
                        return
                    size = int(line.split(b";")[0], 16)
                    if size == 0:   # trailer fields up to the empty line, recorded
                        while True:
                            line, buf = read_until(sock, buf, b"\r\n")
                            if line is None:
                                return
                            if line == b"\r\n":
                                break
                            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
                            trailers.append([name, value.strip()])
                        break
                    chunk, buf = read_exact(sock, buf, size + 2)
                    if chunk is None:
                        return
                    body += chunk[:size]
            if opts.record:
                with lock, open(opts.record, "a") as f:
                    f.write(json.dumps({"method": method, "target": target, "headers": headers,
                                        "body": body.decode("latin-1"), "trailers": trailers,
                                        "peer": "%s:%d" % self.client_address[:2],
                                        "connection": serial}) + "\n")
            if opts.delay_ms:
                time.sleep(opts.delay_ms / 1000)
            payload = (opts.name + "\n").encode()
            close = lower.get("connection", "").lower() == "close"
            response = (f"HTTP/1.1 {opts.status} X\r\nx-backend: {opts.name}\r\n"
                        f"content-length: {len(payload)}\r\n" + ("connection: close\r\n" if close else "") +
                        "\r\n").encode() + (b"" if method == "HEAD" else payload)
            sock.sendall(response)
            if close:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--record")
    opts = p.parse_args()
    host, port = opts.listen.rsplit(":", 1)
    server = Server((host, int(port)), Handler)
    server.opts = opts
    server.serve_forever()


if __name__ == "__main__":
    main()
