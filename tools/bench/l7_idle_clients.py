#!/usr/bin/env python3
"""Idle keep-alive connections against an HTTP/1.1 proxy, and the proxy's RSS.

Opens COUNT connections to ADDR:PORT, BATCH at a time; each sends one GET and
reads its whole response, then stays open and idle. Reads the proxy's VmRSS
(/proc/PID/status) before, with every connection open and idle, and SETTLE
seconds after they were all closed. Prints one JSON object:
  baseline_kib, open_kib, closed_kib, opened (got a 200 and stayed open),
  refused (closed by the proxy before a response), failed (other errors).
Bounded: every socket operation has a deadline (--timeout seconds overall).
"""
import argparse
import json
import resource
import selectors
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_batch(addr, port, n, host, deadline):
    """n connections, one request each; returns (open sockets, refused, failed)."""
    sel = selectors.DefaultSelector()
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    state = {}
    failed = refused = 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((addr, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            failed += 1
            continue
        state[s] = {"sent": False, "buf": b""}
        sel.register(s, selectors.EVENT_WRITE)
    done = []
    while state and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.2):
            s = key.fileobj
            st = state[s]
            try:
                if not st["sent"]:
                    s.send(request)
                    st["sent"] = True
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                data = s.recv(65536)
            except OSError:
                data = None
            if not data:   # closed (or reset) before a whole response: the proxy refused it
                sel.unregister(s)
                s.close()
                del state[s]
                refused += 1
                continue
            st["buf"] += data
            head, sep, body = st["buf"].partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) < length:
                continue
            sel.unregister(s)
            del state[s]
            if head.startswith(b"HTTP/1.1 200"):
                done.append(s)
            else:
                s.close()
                failed += 1
    for s in state:
        s.close()
        failed += 1
    sel.close()
    return done, refused, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True, help="ADDR:PORT")
    ap.add_argument("--host", default="productpage")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--pid", type=int, required=True, help="the proxy's pid")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait before each RSS reading")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    addr, port = a.connect.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    deadline = time.monotonic() + a.timeout
    baseline = rss_kib(a.pid)
    conns, refused, failed = [], 0, 0
    while len(conns) + refused + failed < a.count and time.monotonic() < deadline:
        n = min(a.batch, a.count - len(conns) - refused - failed)
        got, r, f = open_batch(addr, int(port), n, a.host, deadline)
        conns += got
        refused += r
        failed += f
    time.sleep(a.settle)
    # Still open? A connection the proxy closed reads EOF without blocking.
    alive = []
    for s in conns:
        s.setblocking(False)
        try:
            still = s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            still = True
        except OSError:
            still = False
        (alive.append(s) if still else s.close())
    open_rss = rss_kib(a.pid)
    for s in alive:
        s.close()
    time.sleep(a.settle)
    closed_rss = rss_kib(a.pid)
    print(json.dumps({"baseline_kib": baseline, "open_kib": open_rss, "closed_kib": closed_rss,
                      "opened": len(alive), "refused": refused, "failed": failed + len(conns) - len(alive)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
