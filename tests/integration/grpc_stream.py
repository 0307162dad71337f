#!/usr/bin/env python3
"""gRPC streaming client for agent_grpc_streaming (one channel, one HTTP/2
connection). Prints JSON.

grpc_stream.py down TARGET COUNT SIZE [--stall S] [--cancel-after N] [--marker FILE] [--end-code C]
    /test.Stream/Down: COUNT messages of SIZE bytes from the server (then
    gRPC status C, in the trailers, with --end-code).
    --stall: after the first message, read nothing for S seconds (the
    proxy in between must hold back, not buffer the rest); --marker FILE is
    written when the first message has arrived. --cancel-after N: cancel
    the call after N messages.
    {"code", "messages", "bytes", "in_order", "backend"}
grpc_stream.py echo TARGET COUNT SIZE
    /test.Stream/Echo: COUNT messages of SIZE bytes up, each echoed back.
    {"code", "messages", "bytes", "in_order", "backend"}
"""
import argparse
import json
import time

import grpc

p = argparse.ArgumentParser()
p.add_argument("mode", choices=("down", "echo"))
p.add_argument("target")
p.add_argument("count", type=int)
p.add_argument("size", type=int)
p.add_argument("--stall", type=float, default=0)
p.add_argument("--cancel-after", type=int, default=0)
p.add_argument("--marker")
p.add_argument("--end-code", type=int, help="down: the gRPC status the server ends the stream with")
a = p.parse_args()

channel = grpc.insecure_channel(a.target)
result = {"code": None, "messages": 0, "bytes": 0, "in_order": True, "backend": None}
if a.mode == "down":
    request = f"{a.count} {a.size}" + (f" {a.end_code}" if a.end_code is not None else "")
    call = channel.unary_stream("/test.Stream/Down")(request.encode(), timeout=120)
else:
    def requests():
        for i in range(a.count):
            yield b"%08d" % i + b"x" * max(a.size - 8, 0)
    call = channel.stream_stream("/test.Stream/Echo")(requests(), timeout=120)
try:
    for message in call:
        if message[:8] != b"%08d" % result["messages"] or len(message) != a.size:
            result["in_order"] = False
        result["messages"] += 1
        result["bytes"] += len(message)
        if result["messages"] == 1:
            if a.marker:
                open(a.marker, "w").close()
            if a.stall:
                time.sleep(a.stall)
        if a.cancel_after and result["messages"] == a.cancel_after:
            call.cancel()
            break
    result["code"] = call.code().name
    result["backend"] = dict(call.trailing_metadata() or ()).get("x-backend")
except grpc.RpcError as e:
    result["code"] = e.code().name
print(json.dumps(result))
