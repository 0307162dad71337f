#!/usr/bin/env python3
"""A minimal Chrome DevTools Protocol client on the Python standard library
(HTTP for /json, a WebSocket over a raw socket), for the agent_ui test: no
npm, no downloads. It drives an already started headless Chromium.

    cdp = DevTools.attach(user_data_dir, timeout_s=20)   # reads DevToolsActivePort
    cdp.call("Page.navigate", url="http://127.0.0.1:15000/ui")
    cdp.evaluate("document.title")
    cdp.screenshot("docs/ui.png")
"""
import base64
import json
import os
import socket
import struct
import time
import urllib.request


class DevTools:
    def __init__(self, ws_url: str, timeout_s: float):
        assert ws_url.startswith("ws://")
        hostport, path = ws_url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    @classmethod
    def attach(cls, user_data_dir: str, timeout_s: float = 20.0) -> "DevTools":
        """Waits (bounded) for Chromium's DevToolsActivePort file, then attaches to its first page."""
        deadline = time.monotonic() + timeout_s
        port_file = os.path.join(user_data_dir, "DevToolsActivePort")
        while True:
            try:
                port = int(open(port_file).read().split()[0])
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2))
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return cls(pages[0]["webSocketDebuggerUrl"], timeout_s)
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no DevTools page within {timeout_s} s ({port_file})")
            time.sleep(0.2)

    def _send(self, text: str) -> None:
        data = text.encode()
        header = bytes([0x81])   # FIN, text frame
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)   # a client masks every frame (RFC 6455 5.3)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _receive(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)   # server frames are not masked
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):   # ping/pong: nothing to do for this client
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def call(self, method: str, **params):
        self.next_id += 1
        my_id = self.next_id
        self._send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._receive())
            if reply.get("id") == my_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: str) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
