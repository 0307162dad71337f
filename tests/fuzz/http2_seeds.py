#!/usr/bin/env python3
"""Writes the seed corpus of the http2 fuzz target (tests/fuzz/corpus/http2/):
a client's frames after the connection preface (the target sends the
preface itself), header blocks in plain HPACK (static-table indexes and
literals without Huffman coding).

  tests/fuzz/http2_seeds.py tests/fuzz/corpus/http2
"""
import os
import struct
import sys

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def integer(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value):   # literal without indexing, new name, no Huffman
    name, value = name.encode(), value.encode()
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value


def block(*fields):
    out = b""
    for f in fields:
        out += f if isinstance(f, bytes) else literal(*f)
    return out


GET, POST, PATH_ROOT, SCHEME_HTTP = b"\x82", b"\x83", b"\x84", b"\x86"
settings = frame(SETTINGS, 0, 0)
seeds = {
    "get": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                            block(GET, SCHEME_HTTP, PATH_ROOT, (":authority", "productpage"))),
    "post_length": settings + frame(HEADERS, END_HEADERS, 1, block(
        POST, SCHEME_HTTP, (":path", "/api"), (":authority", "productpage"), ("content-length", "5"))) +
        frame(DATA, END_STREAM, 1, b"hello"),
    "post_chunked": settings + frame(HEADERS, END_HEADERS, 1, block(
        POST, SCHEME_HTTP, (":path", "/api"), (":authority", "productpage"), ("content-type", "application/grpc"))) +
        frame(DATA, 0, 1, b"\x00\x00\x00\x00\x01x") + frame(DATA, END_STREAM, 1, b""),
    "cookies_host": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, PATH_ROOT, (":authority", "a.example"), ("host", "b.example"),
        ("cookie", "a=1"), ("cookie", "b=2"), ("x-request-id", "abc"))),
    "path_dots": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, (":path", "/a/../b//c%2Fd/./e?q=/../x"), (":authority", "productpage"))),
    "bad_percent": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, (":path", "/a%00b%zz"), (":authority", "productpage"))),
    "continuation": settings + frame(HEADERS, 0, 1, block(GET, SCHEME_HTTP)) +
        frame(CONTINUATION, END_HEADERS, 1, block(PATH_ROOT, (":authority", "productpage"))),
    "rapid_reset": settings + b"".join(
        frame(HEADERS, END_STREAM | END_HEADERS, s, block(GET, SCHEME_HTTP, PATH_ROOT, (":authority", "p"))) +
        frame(RST_STREAM, 0, s, struct.pack(">I", 8)) for s in range(1, 40, 2)),
    "connect": settings + frame(HEADERS, END_HEADERS, 1, block(("\x3amethod", "CONNECT"), (":authority", "db:5432"))),
    "options_star": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        ("\x3amethod", "OPTIONS"), SCHEME_HTTP, (":path", "*"), (":authority", "productpage"))),
    "te_expect": settings + frame(HEADERS, END_HEADERS, 1, block(
        POST, SCHEME_HTTP, PATH_ROOT, (":authority", "p"), ("te", "trailers"), ("expect", "100-continue"),
        ("content-length", "2"))) + frame(DATA, END_STREAM, 1, b"ok"),
    "connection_field": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, PATH_ROOT, (":authority", "p"), ("connection", "close"), ("transfer-encoding", "chunked"))),
    "upper_case": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, PATH_ROOT, (":authority", "p"), ("X-Upper", "1"))),
    "many_fields": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, PATH_ROOT, (":authority", "p"), *[("x-f%d" % i, "v") for i in range(40)])),
    "big_value": settings + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(
        GET, SCHEME_HTTP, PATH_ROOT, (":authority", "p"), ("x-big", "v" * 5000))),
    "two_lengths": settings + frame(HEADERS, END_HEADERS, 1, block(
        POST, SCHEME_HTTP, PATH_ROOT, (":authority", "p"), ("content-length", "1"), ("content-length", "2"))),
    "ping_window_goaway": settings + frame(PING, 0, 0, b"12345678") + frame(WINDOW_UPDATE, 0, 0,
        struct.pack(">I", 1000)) + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)),
    "trailers": settings + frame(HEADERS, END_HEADERS, 1, block(
        POST, SCHEME_HTTP, PATH_ROOT, (":authority", "p"))) + frame(DATA, 0, 1, b"x") +
        frame(HEADERS, END_STREAM | END_HEADERS, 1, block(("grpc-status", "0"))),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
