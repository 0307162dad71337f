#!/usr/bin/env python3
"""Sends N requests on ONE keep-alive connection (http.client) and prints the
x-backend of each response, one per line, with the response status. With
--pause-after K --pause-file F it stops after K requests, creates F, and waits
until F is removed, so a test can change the proxy's config in between —
still on the same connection."""
import argparse
import http.client
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--addr", required=True)
p.add_argument("--count", type=int, required=True)
p.add_argument("--header", action="append", default=[], help="NAME:VALUE")
p.add_argument("--pause-after", type=int, default=-1)
p.add_argument("--pause-file")
p.add_argument("--path", default="/")
args = p.parse_args()
host, port = args.addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=30)
headers = dict(h.split(":", 1) for h in args.header)
sock_ids = set()
for i in range(args.count):
    if i == args.pause_after:
        open(args.pause_file, "w").close()
        while os.path.exists(args.pause_file):
            time.sleep(0.02)
    conn.request("GET", args.path, headers=headers)
    r = conn.getresponse()
    r.read()
    sock_ids.add(id(conn.sock))
    print(r.status, r.getheader("x-backend"), flush=True)
print("connections", len(sock_ids), file=sys.stderr)
