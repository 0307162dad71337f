#!/usr/bin/env python3
"""A gRPC (HTTP/2 cleartext) backend for the upstream HTTP/2 tests.

grpc_backend.py NAME ADDR:PORT

Any method under /test.Echo/ is a unary call whose request is a delay in
seconds (text, may be empty): the handler sleeps that long, answers NAME and
sets the trailer x-backend: NAME. /test.Echo/Big's request is a size
(space-padded: a large request) and its answer NAME, NUL and that many
bytes. /test.Echo/Stats answers JSON: calls
served, the most calls in flight at once, and for the streams below the
streams open now and the stream messages sent. Generic handlers: no
generated code.

/test.Stream/Down is server-streaming: the request "COUNT SIZE [CODE]" gets
COUNT messages of SIZE bytes, each starting with its 8-digit sequence number,
and the trailer x-backend: NAME; with CODE, the stream then ends with that
gRPC status (in the trailers, after the messages). /test.Stream/Echo is bidirectional: each
request message comes back as it is.
"""
import json
import sys
import threading
import time
from concurrent import futures

import grpc

name, address = sys.argv[1], sys.argv[2]
lock = threading.Lock()
state = {"calls": 0, "inflight": 0, "max_inflight": 0, "streams_open": 0, "stream_messages_sent": 0}


def call(request, context):
    with lock:
        state["calls"] += 1
        state["inflight"] += 1
        state["max_inflight"] = max(state["max_inflight"], state["inflight"])
    try:
        delay = float(request.decode() or 0)
        if delay > 0:
            time.sleep(min(delay, 5))
        context.set_trailing_metadata((("x-backend", name),))
        return name.encode()
    finally:
        with lock:
            state["inflight"] -= 1


def big(request, context):
    """Request: a size (text, space-padded to any length); answer: NAME, NUL, size zero bytes."""
    size = min(int(float(request.decode())), 4 << 20)
    context.set_trailing_metadata((("x-backend", name),))
    return name.encode() + b"\0" * (size + 1)


def stream_opened(context):
    """Counts the stream open until the RPC ends, however it ends (a
    cancelled stream ends when the client's RST_STREAM reaches us)."""
    def closed():
        with lock:
            state["streams_open"] -= 1
    with lock:
        state["streams_open"] += 1
    context.add_callback(closed)


def down(request, context):
    count, size, *code = (int(x) for x in request.decode().split())
    stream_opened(context)
    context.set_trailing_metadata((("x-backend", name),))
    filler = b"\0" * max(size - 8, 0)
    for i in range(count):
        if not context.is_active():
            return
        yield b"%08d" % i + filler
        with lock:
            state["stream_messages_sent"] += 1
    if code:
        status = next(c for c in grpc.StatusCode if c.value[0] == code[0])
        context.set_code(status)
        context.set_details("ended by the test backend")


def echo(requests, context):
    stream_opened(context)
    context.set_trailing_metadata((("x-backend", name),))
    for message in requests:
        with lock:
            state["stream_messages_sent"] += 1
        yield message


def stats(request, context):
    with lock:
        return json.dumps(state).encode()


class Handler(grpc.GenericRpcHandler):
    def service(self, details):
        if details.method == "/test.Echo/Stats":
            return grpc.unary_unary_rpc_method_handler(stats)
        if details.method == "/test.Echo/Big":
            return grpc.unary_unary_rpc_method_handler(big)
        if details.method == "/test.Stream/Down":
            return grpc.unary_stream_rpc_method_handler(down)
        if details.method == "/test.Stream/Echo":
            return grpc.stream_stream_rpc_method_handler(echo)
        if details.method.startswith("/test.Echo/"):
            return grpc.unary_unary_rpc_method_handler(call)
        return None


server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), handlers=[Handler()],
                     options=[("grpc.max_concurrent_streams", 1000)])
server.add_insecure_port(address)
server.start()
server.wait_for_termination()
