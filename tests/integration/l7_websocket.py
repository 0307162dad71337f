#!/usr/bin/env python3
"""WebSocket (RFC 6455) ends for the L7 proxy's upgrade test, from the
standard library only.

server: answers an upgrade with 101 (Sec-WebSocket-Accept computed), then
  sends "hello from NAME" at once (so the first frame may share a segment
  with the 101 head) and echoes every text/binary frame as "NAME:" + payload;
  answers a close frame with a close frame and closes. A path starting with
  /decline is answered 200 without upgrading; a plain request is answered
  200 with the request's header names as JSON, so a test can see which
  fields the proxy forwarded.
client: opens SESSIONS WebSocket sessions one after another; each sends
  MESSAGES frames (sizes 1 .. 70,000 bytes, so some exceed the proxy's
  buffers), waits PAUSE seconds PAUSES times on the way, checks every echo, closes
  cleanly, and prints one JSON line: backends seen, failures.
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import socketserver
import sys
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def recv_exact(sock, buf, n):
    while len(buf) < n:
        data = sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += data
    return buf[:n], buf[n:]


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError("connection closed before the end of the head")
        buf += data
    i = buf.index(b"\r\n\r\n") + 4
    lines = buf[:i].decode("latin-1").split("\r\n")
    headers = {}
    names = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
            names.append(name.strip().lower())
    return lines[0], headers, names, buf[i:]


def frame(opcode, payload, mask):
    head = bytes([0x80 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def read_frame(sock, buf):
    h, buf = recv_exact(sock, buf, 2)
    opcode = h[0] & 0x0F
    masked = h[1] & 0x80
    n = h[1] & 0x7F
    if n == 126:
        ext, buf = recv_exact(sock, buf, 2)
        n = int.from_bytes(ext, "big")
    elif n == 127:
        ext, buf = recv_exact(sock, buf, 8)
        n = int.from_bytes(ext, "big")
    key = b""
    if masked:
        key, buf = recv_exact(sock, buf, 4)
    payload, buf = recv_exact(sock, buf, n)
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload, buf


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        name = self.server.name
        sock = self.request
        buf = b""
        try:
            while True:
                line, headers, names, buf = read_head(sock, buf)
                target = line.split(" ")[1]
                upgrade = headers.get("upgrade", "").lower() == "websocket"
                if upgrade and not target.startswith("/decline"):
                    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: %s\r\nx-backend: %s\r\n\r\n"
                                  % (accept_key(headers["sec-websocket-key"]), name)).encode()
                                 + frame(1, ("hello from " + name).encode(), False))
                    while True:
                        opcode, payload, buf = read_frame(sock, buf)
                        if opcode == 8:
                            sock.sendall(frame(8, payload, False))
                            return
                        sock.sendall(frame(opcode, name.encode() + b":" + payload, False))
                body = json.dumps(names).encode()
                sock.sendall(("HTTP/1.1 200 OK\r\nx-backend: %s\r\ncontent-length: %d\r\n\r\n"
                              % (name, len(body))).encode() + body)
        except (EOFError, ConnectionError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def session(addr, messages, pause, path, pauses=1):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: productpage\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    line, headers, _, buf = read_head(sock, b"")
    if not line.startswith("HTTP/1.1 101"):
        raise RuntimeError("no 101: " + line)
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise RuntimeError("wrong Sec-WebSocket-Accept: %r" % headers.get("sec-websocket-accept"))
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        raise RuntimeError("101 without upgrade fields: %r" % headers)
    backend = headers.get("x-backend", "")
    opcode, payload, buf = read_frame(sock, buf)
    if payload != ("hello from " + backend).encode():
        raise RuntimeError("first frame %r" % payload[:80])
    sizes = [1, 125, 126, 4000, 65535, 65536, 70000]
    for i in range(messages):
        if pause > 0 and i in {(k + 1) * messages // (pauses + 1) for k in range(pauses)}:
            time.sleep(pause)
        data = (("m%d-" % i) * 70000)[: sizes[i % len(sizes)]].encode()
        sock.sendall(frame(2 if i % 2 else 1, data, True))
        opcode, payload, buf = read_frame(sock, buf)
        if payload != backend.encode() + b":" + data:
            raise RuntimeError("echo %d of %d bytes came back wrong (%d bytes)" % (i, len(data), len(payload)))
    sock.sendall(frame(8, b"\x03\xe8bye", True))
    opcode, payload, buf = read_frame(sock, buf)
    if opcode != 8:
        raise RuntimeError("no close frame back")
    if sock.recv(1) != b"":
        raise RuntimeError("data after the close frame")
    sock.close()
    return backend


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--name", required=True)
    s.add_argument("--listen", required=True)
    c = sub.add_parser("client")
    c.add_argument("--connect", required=True)
    c.add_argument("--sessions", type=int, default=1)
    c.add_argument("--messages", type=int, default=14)
    c.add_argument("--pause", type=float, default=0, help="seconds of silence in the middle of a session")
    c.add_argument("--pauses", type=int, default=1, help="how many such silences, evenly spread")
    c.add_argument("--path", default="/ws")
    c.add_argument("--parallel", type=int, default=1, help="sessions open at the same time")
    opts = p.parse_args()
    if opts.mode == "server":
        host, port = opts.listen.rsplit(":", 1)
        server = Server((host, int(port)), Handler)
        server.name = opts.name
        server.serve_forever()
        return
    backends, failures = {}, []
    lock = threading.Lock()

    def run(count):
        for _ in range(count):
            try:
                b = session(opts.connect, opts.messages, opts.pause, opts.path, opts.pauses)
                with lock:
                    backends[b] = backends.get(b, 0) + 1
            except Exception as e:  # every failure is reported, none stops the others
                with lock:
                    failures.append(str(e))

    per = [opts.sessions // opts.parallel + (1 if i < opts.sessions % opts.parallel else 0)
           for i in range(opts.parallel)]
    threads = [threading.Thread(target=run, args=(n,)) for n in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"backends": backends, "failures": failures}))
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    main()
