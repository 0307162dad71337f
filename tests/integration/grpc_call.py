#!/usr/bin/env python3
"""A real gRPC client (python3-grpcio, generic calls: no generated code).

    grpc_call.py TARGET METHOD [--stream] [--timeout S] [--message BYTES]

calls METHOD (/package.Service/Method) on TARGET (host:port, h2c) once,
unary or server-streaming, with the raw bytes of --message (default
b"ping"), and prints one line: the status code's name, the number of
messages received and the status details, e.g. "OK 1 " or
"RESOURCE_EXHAUSTED 0 fault filter abort".
"""
import argparse
import sys

import grpc


def main():
    p = argparse.ArgumentParser()
    p.add_argument("target")
    p.add_argument("method")
    p.add_argument("--stream", action="store_true", help="server-streaming call")
    p.add_argument("--timeout", type=float, default=None, help="deadline in seconds (sent as grpc-timeout)")
    p.add_argument("--message", default="ping")
    a = p.parse_args()
    # No proxy from the environment: the call goes to TARGET itself.
    with grpc.insecure_channel(a.target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        received = 0
        try:
            if a.stream:
                call = channel.unary_stream(a.method)(a.message.encode(), timeout=a.timeout)
                for _ in call:
                    received += 1
                code, details = call.code(), call.details()
            else:
                _, call = channel.unary_unary(a.method).with_call(a.message.encode(), timeout=a.timeout)
                received = 1
                code, details = call.code(), call.details()
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
    print(f"{code.name} {received} {details or ''}".rstrip() if details else f"{code.name} {received}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
