#!/usr/bin/env python3
"""One HTTP/2 connection that floods the proxy with frames that carry no
work: empty DATA frames (no END_STREAM), PRIORITY frames or WINDOW_UPDATE
frames of increment 1, all on one open POST stream, COUNT of them; then a GET
on a second stream, whose answer shows the connection still serves. Frames
are written by hand. Prints one line:

  KIND FRAMES SENDER_CPU_S ANSWER_S STATUS

SENDER_CPU_S is this process's own CPU (user + system) for the flood,
ANSWER_S the time from the last flood frame to the GET's response HEADERS,
STATUS "served", or "goaway CODE" / "closed" if the proxy ended the
connection instead.

usage: h2_frame_flood.py HOST PORT KIND COUNT   (KIND: empty-data, priority, window-update)
"""
import os
import resource
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from h2_frames import frame, frames_from  # noqa: E402


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    host, port, kind, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    one = {"empty-data": frame(0, 0, 1),
           "priority": frame(2, 0, 1, struct.pack(">IB", 0, 16)),
           "window-update": frame(8, 0, 1, struct.pack(">I", 1))}[kind]
    s = socket.create_connection((host, port), timeout=30)
    # POST and GET http / with :authority productpage (HPACK static indexes).
    post, get = b"\x83\x86\x84\x41\x0bproductpage", b"\x82\x86\x84\x41\x0bproductpage"
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(1, 0x4, 1, post))
    chunk, c0 = one * 1000, cpu()
    try:
        for _ in range(count // 1000):
            s.sendall(chunk)
        sent_at = time.monotonic()
        s.sendall(frame(1, 0x5, 3, get))
    except OSError:
        print(kind, count, "%.3f" % (cpu() - c0), "-", "closed")
        return
    spent, status = cpu() - c0, "closed"
    for ftype, _, stream, payload in frames_from(s):
        if ftype == 7:
            status = "goaway %d" % int.from_bytes(payload[4:8], "big")
            break
        if ftype == 1 and stream == 3:
            status = "served"
            break
    print(kind, count, "%.3f" % spent, "%.3f" % (time.monotonic() - sent_at) if status == "served" else "-", status)


if __name__ == "__main__":
    main()
