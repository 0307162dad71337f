#!/usr/bin/env python3
"""Sends spoofed TCP segments to a VIP:port from random source addresses and
ports, through a raw IPv4 socket (IP_HDRINCL), bounded in count and time.
For the test namespaces only: the destination must be a test VIP."""
import argparse
import random
import socket
import struct
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dst", required=True)
    p.add_argument("--dport", type=int, required=True)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--max-count", type=int, default=200000)
    p.add_argument("--seconds", type=float, default=20.0, help="stop after this long whatever the count")
    p.add_argument("--flags", default="ACK", choices=["ACK", "RST", "SYN", "SYNACK", "FIN", "DATA"],
                   help="FIN is FIN+ACK, DATA is PSH+ACK with 64 bytes of payload")
    p.add_argument("--source-net", default="172.30", help="first two octets of the spoofed sources")
    a = p.parse_args()
    count = min(a.count, a.max_count)
    flags = {"ACK": 0x10, "RST": 0x14, "SYN": 0x02, "SYNACK": 0x12, "FIN": 0x11, "DATA": 0x18}[a.flags]
    payload = b"x" * 64 if a.flags == "DATA" else b""
    dst = socket.inet_aton(a.dst)
    o1, o2 = (int(x) for x in a.source_net.split("."))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    rng = random.Random(7)
    deadline = time.monotonic() + a.seconds
    sent = 0
    for i in range(count):
        if i % 1024 == 0 and time.monotonic() > deadline:
            break
        src = bytes((o1, o2, rng.randrange(256), rng.randrange(1, 255)))
        # IPv4 header without checksum (the kernel fills it for IP_HDRINCL),
        # TCP header without options; the TCP checksum is left 0.
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), i & 0xFFFF, 0, 64, 6, 0, src, dst)
        tcp = struct.pack("!HHIIBBHHH", rng.randrange(1024, 65535), a.dport, rng.getrandbits(32),
                          rng.getrandbits(32), 5 << 4, flags, 65535, 0, 0) + payload
        try:
            s.sendto(ip + tcp, (a.dst, 0))
            sent += 1
        except OSError:
            pass   # a full queue drops one segment, as a real flood would lose some
    print(sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
