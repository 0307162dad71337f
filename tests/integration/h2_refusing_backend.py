#!/usr/bin/env python3
"""An h2c (prior knowledge) backend that refuses streams the way real
HTTP/2 servers do when they shed load or restart, written on raw frames
(RFC 9113) so the refusal is exact:

  --refuse N    the first N request streams (over all connections) get
                RST_STREAM REFUSED_STREAM (0x7): not processed;
  --goaway N    the first N connections that send a request answer it with
                GOAWAY(last_stream_id 0, NO_ERROR) and close: every stream
                on them is unprocessed.

Every other request gets 200, `x-backend: NAME` and the body "NAME\\n".
Prints one line per event on stdout ("refused 1", "goaway conn 1",
"served 3") for the test to count."""
import argparse
import socket
import struct
import sys
import threading

from h2_frames import frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
REFUSED_STREAM, NO_ERROR = 0x7, 0x0

lock = threading.Lock()
state = {"refuse": 0, "goaway": 0, "conns": 0}


def literal(name, value):   # HPACK literal without indexing, new name, no Huffman (RFC 7541 6.2.2)
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def say(text):
    with lock:
        print(text, flush=True)


def serve(sock, name):
    with lock:
        state["conns"] += 1
        conn = state["conns"]
    first_request = True
    try:
        if read_exact(sock, len(PREFACE)) != PREFACE:
            return
        sock.sendall(frame(SETTINGS, 0, 0))
        while True:
            head = read_exact(sock, 9)
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            payload = read_exact(sock, length)
            if kind == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif kind in (HEADERS, CONTINUATION) and flags & END_HEADERS:
                # A connection that sends no request (a port probe) takes no GOAWAY.
                with lock:
                    goaway = first_request and state["goaway"] > 0
                    if goaway:
                        state["goaway"] -= 1
                first_request = False
                if goaway:
                    sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
                    say("goaway conn %d" % conn)
                    return
                with lock:
                    refuse = state["refuse"] > 0
                    if refuse:
                        state["refuse"] -= 1
                if refuse:
                    sock.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", REFUSED_STREAM)))
                    say("refused %d" % stream)
                    continue
                block = b"\x88" + literal(b"x-backend", name.encode())   # :status 200 (static index 8)
                sock.sendall(frame(HEADERS, END_HEADERS, stream, block) +
                             frame(DATA, END_STREAM, stream, name.encode() + b"\n"))
                say("served %d" % stream)
    except (EOFError, ConnectionError, OSError):
        pass
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--refuse", type=int, default=0)
    p.add_argument("--goaway", type=int, default=0)
    a = p.parse_args()
    state["refuse"], state["goaway"] = a.refuse, a.goaway
    addr, port = a.listen.rsplit(":", 1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, int(port)))
    srv.listen(64)
    while True:
        sock, _ = srv.accept()
        threading.Thread(target=serve, args=(sock, a.name), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
