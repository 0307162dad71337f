#!/usr/bin/env python3
"""Connections from chosen source ports, each ended with a reset.

  xdp_port_reuse.py open  VIP PORT SRC FIRST_PORT COUNT > OPENED.json
  xdp_port_reuse.py check VIP PORT SRC OPENED.json [TIMEOUT_S]

`open` connects from SRC to VIP:PORT from COUNT source ports, trying
FIRST_PORT upwards and skipping a port the client still holds (a TIME_WAIT
of an earlier test step: EADDRINUSE), reads each backend's greeting and
aborts (SO_LINGER 0: a RST, so the client keeps no TIME_WAIT and the same
4-tuple may open again at once). `check` opens the same tuples again, reads
the greeting, sends a line and reads its echo, each within TIMEOUT_S
(default 3). Each prints one JSON object:
backends by greeting, errors by kind and by port, and the ports used.
"""
import errno
import json
import socket
import struct
import sys


def attempt(vip, port, src, sport, echo, timeout):
    """Returns the backend's name, or raises OSError/ConnectionError."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.settimeout(timeout)
    try:
        s.bind((src, sport))
        s.connect((vip, port))
        f = s.makefile("rb")
        name = f.readline().decode().strip()
        if not name:
            raise ConnectionError("no greeting")
        if echo:
            s.sendall(b"ping\n")
            if f.readline() != b"ping\n":
                raise ConnectionError("no echo")
        return name
    finally:
        s.close()


def kind_of(e):
    return errno.errorcode.get(getattr(e, "errno", None) or 0, type(e).__name__)


def main():
    mode, vip, port, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    backends, errors, ports, failed = {}, {}, [], {}
    timeout = 3.0
    if mode == "open":
        first, count = int(sys.argv[5]), int(sys.argv[6])
        candidates, want = range(first, min(first + 50 * count, 65536)), count
    else:
        candidates = json.load(open(sys.argv[5]))["ports"]
        if len(sys.argv) > 6:
            timeout = float(sys.argv[6])
        want = len(candidates)
    for sport in candidates:
        if len(ports) == want:
            break
        try:
            name = attempt(vip, port, src, sport, echo=(mode == "check"), timeout=timeout)
            backends[name] = backends.get(name, 0) + 1
            ports.append(sport)
        except (OSError, ConnectionError) as e:
            if mode == "open" and getattr(e, "errno", None) in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                continue   # held by the client: try the next port
            errors[kind_of(e)] = errors.get(kind_of(e), 0) + 1
            failed[sport] = kind_of(e)
            ports.append(sport)
    print(json.dumps({"backends": backends, "errors": errors, "failed": failed, "ports": ports}))


if __name__ == "__main__":
    main()
