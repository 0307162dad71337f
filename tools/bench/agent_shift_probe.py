#!/usr/bin/env python3
"""Weight-shift latency of a running sluiced, for tools/bench/agent_shift_latency.sh.

Three roles, each its own process so no timing waits on another's GIL; they
share CLOCK_MONOTONIC (system-wide, the same in every network namespace):

  probe l4|l7 ADDR PORT OUT --duration-s S --stop-file F
      (client namespace) back-to-back probes through the VIP until the stop
      file appears or S seconds pass, then one line per probe in OUT:
      "start_ns end_ns backend". l4: a new TCP connection each time, the
      backend named by its greeting (the XDP plane decides at the SYN). l7:
      GET / on one keep-alive HTTP/1.1 connection, the backend named by its
      x-backend header (the proxy decides per request).
  shift ctl|file OUT --shifts N --admin A --sluicectl BIN --config-dir D --settle-ms M
      (node namespace) N weight flips v1/v2 100/0 <-> 0/100, through
      `sluicectl weights` or an atomic rename of routing.yaml into D. Per
      shift: "t0_ns cli_return_ns status_ns version target" in OUT, where
      status_ns is when GET /status first shows a version above the one
      before the shift. Waits M ms after that before the next shift, so the
      probes can see every shift.
  report SHIFTS PROBES_L4 PROBES_L7
      Matches each shift with the first probe that completed after t0 and
      landed on the target subset; prints p50/p99/max per column and the
      median probe round trip (the baseline: one plain connect or request
      through the VIP).
"""
import argparse
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time

ROUTING = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: productpage, namespace: default}}
spec:
  hosts: [productpage]
  http:
  - name: primary
    route:
    - destination: {{host: productpage, subset: v1}}
      weight: {v1}
    - destination: {{host: productpage, subset: v2}}
      weight: {v2}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {{name: productpage, namespace: default}}
spec:
  host: productpage
  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"""


def probe_l4(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Close with RST: tens of thousands of probe connections must not pile
    # up in TIME_WAIT and run the client out of ports.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.settimeout(2)
    try:
        s.connect((addr, port))
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace").strip() or "?empty"
    finally:
        s.close()


class L7Prober:
    def __init__(self, addr, port):
        self.conn = http.client.HTTPConnection(addr, port, timeout=2)
        self.reconnects = 0

    def __call__(self):
        try:
            self.conn.request("GET", "/")
            r = self.conn.getresponse()
            r.read()
        except (OSError, http.client.HTTPException):
            # Counted and reported: the keep-alive connection should survive every shift.
            self.reconnects += 1
            self.conn.close()
            raise
        if r.getheader("connection", "").lower() == "close":
            self.reconnects += 1
            self.conn.close()
        return r.getheader("x-backend") or "?status%d" % r.status


def run_probe(args):
    probe = (lambda: probe_l4(args.addr, args.port)) if args.plane == "l4" else L7Prober(args.addr, args.port)
    deadline = time.monotonic() + args.duration_s
    records = []
    errors = 0
    n = 0
    while True:
        n += 1
        if n % 64 == 0 and (os.path.exists(args.stop_file) or time.monotonic() > deadline):
            break
        start = time.monotonic_ns()
        try:
            who = probe()
        except OSError as e:
            who = "?error:" + type(e).__name__
            errors += 1
        records.append((start, time.monotonic_ns(), who))
    with open(args.out, "w") as f:
        for r in records:
            f.write("%d %d %s\n" % r)
    extra = ", %d reconnects" % probe.reconnects if args.plane == "l7" else ""
    print("probe %s: %d probes, %d errors%s" % (args.plane, len(records), errors, extra), file=sys.stderr)


def admin_version(admin):
    # A new connection per request: sluiced's admin server serves one
    # connection at a time, and a client that keeps one open blocks every
    # other (sluicectl included) until it closes.
    conn = http.client.HTTPConnection(*admin.rsplit(":", 1), timeout=5)
    try:
        conn.request("GET", "/status", headers={"Connection": "close"})
        return json.loads(conn.getresponse().read())["version"]
    finally:
        conn.close()


def run_shift(args):
    out = open(args.out, "w")
    misses = 0
    for i in range(args.shifts):
        target = "v2" if i % 2 == 0 else "v1"
        w = {"v1": 0, "v2": 100} if target == "v2" else {"v1": 100, "v2": 0}
        before = admin_version(args.admin)
        if args.how == "file":
            tmp = os.path.join(args.config_dir, ".routing.yaml.tmp")
            with open(tmp, "w") as f:
                f.write(ROUTING.format(**w))
            t0 = time.monotonic_ns()
            os.rename(tmp, os.path.join(args.config_dir, "routing.yaml"))
            t_cli = t0
        else:
            t0 = time.monotonic_ns()
            subprocess.run([args.sluicectl, "weights", "productpage", "v1=%d" % w["v1"], "v2=%d" % w["v2"],
                            "--admin", args.admin], check=True, stdout=subprocess.DEVNULL)
            t_cli = time.monotonic_ns()
        deadline = t0 + 10 * 10**9
        while True:
            v = admin_version(args.admin)
            if v > before:
                t_status = time.monotonic_ns()
                break
            if time.monotonic_ns() > deadline:
                t_status = -1
                misses += 1
                break
            time.sleep(0.0005)
        out.write("%d %d %d %d %s\n" % (t0, t_cli, t_status, v, target))
        out.flush()
        time.sleep(args.settle_ms / 1000)
    if misses:
        print("shift %s: %d shifts not applied within 10 s" % (args.how, misses), file=sys.stderr)


STALL_MS = 20


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    # Nearest rank: with 50 samples p99 is the largest, stated as such.
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def read_probes(path):
    out = []
    for line in open(path):
        a, b, who = line.split(" ", 2)
        out.append((int(a), int(b), who.strip()))
    return out


def run_report(args):
    shifts = []
    for line in open(args.shifts):
        t0, tc, ts, v, target = line.split()
        shifts.append((int(t0), int(tc), int(ts), target))
    planes = {"l4": read_probes(args.probes_l4), "l7": read_probes(args.probes_l7)}
    cols = {"cli return": [], "/status version": []}
    for plane in planes:
        cols[plane + " first probe on new subset"] = []
    missing = {p: [] for p in planes}
    stale = {p: 0 for p in planes}
    for i, (t0, tc, ts, target) in enumerate(shifts):
        cols["cli return"].append((tc - t0) / 1e6)
        if ts > 0:
            cols["/status version"].append((ts - t0) / 1e6)
        t_next = shifts[i + 1][0] if i + 1 < len(shifts) else float("inf")
        for plane, probes in planes.items():
            window = [p for p in probes if t0 < p[1] < t_next]
            if args.detail:
                runs = []
                for p in window:
                    if runs and runs[-1][0] == p[2]:
                        runs[-1][1] += 1
                    else:
                        runs.append([p[2], 1, (p[1] - t0) / 1e6])
                print("  shift %d -> %s %s: status +%.1f ms, %s" % (i, target, plane, (ts - t0) / 1e6, " ".join(
                    "%s x%d @%.1f" % tuple(r) for r in runs[:12])))
            # Only probes sent after the call count: a request stalled from an
            # earlier shift may complete on the new subset without having seen
            # this one. That adds at most one probe round trip.
            first = next((k for k, p in enumerate(window) if p[0] > t0 and ("-%s-" % target) in p[2]), None)
            if first is None:
                missing[plane].append(i)
                continue
            cols[plane + " first probe on new subset"].append((window[first][1] - t0) / 1e6)
            # Probes that started after the first hit but still went to the old subset: must be 0.
            stale[plane] += sum(1 for p in window[first + 1:] if ("-%s-" % target) not in p[2])
    rtt = {plane: pct([(b - a) / 1e6 for a, b, w in probes if not w.startswith("?")], 50)
           for plane, probes in planes.items()}
    print("  %-34s %9s %9s %9s %5s" % ("latency from the call (ms)", "p50", "p99", "max", "n"))
    for name, vals in cols.items():
        if name == "cli return" and args.how == "file":
            continue
        print("  %-34s %9.2f %9.2f %9.2f %5d" % (name, pct(vals, 50), pct(vals, 99), max(vals or [float("nan")]),
                                                 len(vals)))
    for plane in planes:
        base = rtt[plane]
        p50 = pct(cols[plane + " first probe on new subset"], 50)
        what = "TCP connect+greeting" if plane == "l4" else "keep-alive HTTP request"
        print("  %s baseline: median %s through the VIP %.3f ms (%d probes); p50 shift / baseline = %.1fx"
              % (plane, what, base, len(planes[plane]), p50 / base))
    # Stalls: probes that took over STALL_MS, split by whether they overlap
    # an apply (from a call to 50 ms after /status showed it) or not.
    applying = [(t0, (ts if ts > 0 else t0) + 50 * 10**6) for t0, tc, ts, target in shifts]
    for plane, probes in planes.items():
        slow = [p for p in probes if (p[1] - p[0]) > STALL_MS * 10**6]
        during = [p for p in slow if any(a <= p[1] and p[0] <= b for a, b in applying)]
        worst = max([(p[1] - p[0]) / 1e6 for p in slow] or [0])
        print("  %s probes over %d ms: %d during an apply, %d outside (longest %.1f ms)"
              % (plane, STALL_MS, len(during), len(slow) - len(during), worst))
    for plane in planes:
        errors = sum(1 for p in planes[plane] if p[2].startswith("?"))
        print("  %s: %d shifts never seen by the prober %s, %d probes on the old subset after the first on the new, "
              "%d probe errors" % (plane, len(missing[plane]), missing[plane] or "", stale[plane], errors))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="role", required=True)
    pr = sub.add_parser("probe")
    pr.add_argument("plane", choices=["l4", "l7"])
    pr.add_argument("addr")
    pr.add_argument("port", type=int)
    pr.add_argument("out")
    pr.add_argument("--duration-s", type=float, required=True)
    pr.add_argument("--stop-file", required=True)
    sh = sub.add_parser("shift")
    sh.add_argument("how", choices=["ctl", "file"])
    sh.add_argument("out")
    sh.add_argument("--shifts", type=int, default=50)
    sh.add_argument("--admin", required=True)
    sh.add_argument("--sluicectl", required=True)
    sh.add_argument("--config-dir", required=True)
    sh.add_argument("--settle-ms", type=float, default=150)
    rp = sub.add_parser("report")
    rp.add_argument("how", choices=["ctl", "file"])
    rp.add_argument("shifts")
    rp.add_argument("probes_l4")
    rp.add_argument("probes_l7")
    rp.add_argument("--detail", action="store_true", help="per shift: the probes' backends in order")
    args = p.parse_args()
    {"probe": run_probe, "shift": run_shift, "report": run_report}[args.role](args)


if __name__ == "__main__":
    main()
