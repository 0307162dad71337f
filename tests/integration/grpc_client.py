#!/usr/bin/env python3
"""gRPC client for the upstream HTTP/2 tests: one channel (one HTTP/2
connection) per run. Prints JSON.

grpc_client.py calls TARGET METHOD COUNT CONCURRENCY DELAY
    COUNT unary calls of /test.Echo/METHOD, at most CONCURRENCY in flight:
    {"backends": {name: n}, "codes": {code: n}, "trailers": n, "bytes": n}, where
    trailers counts OK calls whose x-backend trailer names the backend
    that answered (the trailers reached the client), and bytes sums the
    answers' sizes. METHOD Big: DELAY is the answer's size, and the request
    is padded to 256 KiB.
grpc_client.py stats TARGET
    the backend's /test.Echo/Stats.
"""
import collections
import json
import sys
import threading

import grpc

mode, target = sys.argv[1], sys.argv[2]
channel = grpc.insecure_channel(target)

if mode == "stats":
    print(channel.unary_unary("/test.Echo/Stats")(b"", timeout=5).decode())
    sys.exit(0)

method, count, concurrency, delay = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
stub = channel.unary_unary("/test.Echo/" + method)
backends, codes = collections.Counter(), collections.Counter()
trailers = 0
received = 0
lock = threading.Lock()
slots = threading.Semaphore(concurrency)
done = threading.Event()
finished = 0


def on_done(future):
    global trailers, finished, received
    code = future.code()
    with lock:
        codes[code.name] += 1
        if code == grpc.StatusCode.OK:
            result = future.result()
            received += len(result)
            answer = result.split(b"\0")[0].decode()
            backends[answer] += 1
            if ("x-backend", answer) in tuple(future.trailing_metadata() or ()):
                trailers += 1
        finished += 1
        if finished == count:
            done.set()
    slots.release()


payload = delay.encode().ljust(256 << 10) if method == "Big" else delay.encode()
for _ in range(count):
    slots.acquire()
    stub.future(payload, timeout=20).add_done_callback(on_done)
done.wait(60)
print(json.dumps({"backends": dict(backends), "codes": dict(codes), "trailers": trailers, "bytes": received}))
