#!/usr/bin/env python3
"""Writes a synthetic Istio config for the config-compile benchmark.

N services, each: a ServiceEntry with one VIP, an HTTP and a TCP port and E
endpoints (half labelled version v1, half v2), a DestinationRule with
subsets v1 and v2, and a VirtualService sending 90/10 to them. Services are
spread over files of PER_FILE services each, as a large config directory
would be.

usage: config_compile_gen.py OUT_DIR [--services N] [--endpoints E] [--per-file K]
"""
import argparse
import os


def service_yaml(i, endpoints):
    name = f"svc-{i:05d}"
    vip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256}"
    lines = [
        "apiVersion: networking.istio.io/v1",
        "kind: ServiceEntry",
        f"metadata: {{name: {name}, namespace: bench}}",
        "spec:",
        f"  hosts: [{name}.bench.svc.cluster.local]",
        f"  addresses: [{vip}]",
        "  ports:",
        "  - {number: 8080, name: http, protocol: HTTP}",
        "  - {number: 9090, name: tcp, protocol: TCP}",
        "  resolution: STATIC",
        "  endpoints:",
    ]
    for e in range(endpoints):
        n = i * endpoints + e
        addr = f"10.{128 + n // 65536}.{(n // 256) % 256}.{n % 256}"
        version = "v1" if e < endpoints // 2 else "v2"
        lines.append(f"  - {{address: {addr}, labels: {{app: {name}, version: {version}}}}}")
    lines += [
        "---",
        "apiVersion: networking.istio.io/v1",
        "kind: DestinationRule",
        f"metadata: {{name: {name}, namespace: bench}}",
        "spec:",
        f"  host: {name}",
        "  trafficPolicy:",
        "    loadBalancer: {simple: LEAST_REQUEST}",
        "  subsets:",
        "  - {name: v1, labels: {version: v1}}",
        "  - {name: v2, labels: {version: v2}}",
        "---",
        "apiVersion: networking.istio.io/v1",
        "kind: VirtualService",
        f"metadata: {{name: {name}, namespace: bench}}",
        "spec:",
        f"  hosts: [{name}]",
        "  http:",
        "  - route:",
        f"    - destination: {{host: {name}, subset: v1}}",
        "      weight: 90",
        f"    - destination: {{host: {name}, subset: v2}}",
        "      weight: 10",
    ]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--per-file", type=int, default=1000)
    args = p.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for start in range(0, args.services, args.per_file):
        docs = [service_yaml(i, args.endpoints) for i in range(start, min(start + args.per_file, args.services))]
        with open(os.path.join(args.out_dir, f"services-{start // args.per_file:03d}.yaml"), "w") as f:
            f.write("---\n".join(docs))


if __name__ == "__main__":
    main()
