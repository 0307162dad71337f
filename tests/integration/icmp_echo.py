#!/usr/bin/env python3
"""ICMP / ICMPv6 echo, for tests on hosts without iputils-ping (root: raw socket).

icmp_echo.py ADDRESS [COUNT] [TIMEOUT_S]: sends COUNT echo requests 100 ms
apart, prints "sent received" (replies with our identifier and a sent
sequence number), exits 0 when every request was answered within TIMEOUT_S.
"""
import os
import select
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main() -> int:
    address = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    timeout_s = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    v6 = ":" in address
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    request_type, reply_type = (128, 129) if v6 else (8, 0)
    ident = os.getpid() & 0xFFFF
    sock = socket.socket(family, socket.SOCK_RAW, proto)
    answered = set()
    deadline = time.monotonic() + timeout_s
    for seq in range(count):
        payload = b"sluice-icmp-echo"
        header = struct.pack("!BBHHH", request_type, 0, 0, ident, seq)
        # The kernel fills in the ICMPv6 checksum (it covers a pseudo-header).
        csum = 0 if v6 else checksum(header + payload)
        sock.sendto(struct.pack("!BBHHH", request_type, 0, csum, ident, seq) + payload, (address, 0))
        next_send = time.monotonic() + 0.1
        while time.monotonic() < (next_send if seq + 1 < count else deadline) and len(answered) < count:
            ready, _, _ = select.select([sock], [], [], 0.02)
            if not ready:
                continue
            data, _ = sock.recvfrom(2048)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]   # raw IPv4 sockets include the IP header
            if len(icmp) >= 8:
                typ, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                if typ == reply_type and rid == ident and rseq < count:
                    answered.add(rseq)
    print(count, len(answered))
    return 0 if len(answered) == count else 1


if __name__ == "__main__":
    sys.exit(main())
