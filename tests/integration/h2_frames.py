"""HTTP/2 frames written and read by hand, for the test clients and servers
that do what no HTTP/2 library does on purpose (h2_rapid_reset.py,
h2_refusing_backend.py, tools/bench/h2_frame_flood.py)."""
import struct


def frame(ftype, flags, stream, payload=b""):
    """One frame: 9-byte header (RFC 9113 4.1) and payload."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def frames_from(sock):
    """Yields (type, flags, stream id, payload) for each whole frame read
    from sock, until the peer closes or a read fails (its timeout included)."""
    buf = b""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            yield buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + length]
            buf = buf[9 + length:]
