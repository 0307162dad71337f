#!/usr/bin/env python3
"""The demo's report: turns sluice-loadgen's JSON answers into the demo's
lines and keeps the running totals (a small JSON file in the demo's work
directory), so the shell script only runs things and this file only counts
and formats.

  report.py tick   TOTALS LABEL L4.json L7.json       one line per second of a canary step
  report.py step   TOTALS LABEL W1 L4.json... -- L7.json...   the step's split against its weight
  report.py spread TOTALS L4.json... -- L7.json...   per-backend spread inside each subset
  report.py pinned TOTALS SRC=L4.json,L7.json...      backends seen per client source address
  report.py held   TOTALS HOLD.json                   the long-lived connections' report
  report.py stats  TOTALS < `sluicectl stats`          the agent's Istio counters next to the clients' counts
  report.py miss   TOTALS TEXT                        record something that did not happen as configured
  report.py summary TOTALS                            totals; exit 1 if any error or mismatch was seen

tick, spread and pinned exit 1 when what they report had errors (the demo
then shows the agent's log lines from that moment).

Errors are everything that did not end in a backend's answer: loadgen's
reset/timeout/refused/closed/other, HTTP answers that are not 2xx or carry no
x-backend header, and requests the run's time limit left unsent.
"""
import json
import math
import os
import sys


def load(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def errors_of(run):
    """(count, {kind: n}) for one loadgen answer; a missing or empty answer
    (the loadgen died) counts as one error of kind 'no-report'."""
    if not run:
        return 1, {"no-report": 1}
    kinds = {k: v for k, v in (run.get("errors") or {}).items() if v}
    non_2xx = 0
    for code, n in (run.get("status") or {}).items():
        if not code.startswith("2") and n:
            kinds["http-" + code] = kinds.get("http-" + code, 0) + n
            non_2xx += n
    # A non-2xx answer made by the proxy itself carries no x-backend header:
    # count it once, as its status.
    no_backend = (run.get("backends") or {}).get("(none)", 0) - non_2xx
    if no_backend > 0:
        kinds["2xx-without-x-backend"] = no_backend
    unsent = run.get("requested", 0) - run.get("total", 0)
    if unsent > 0:
        kinds["unsent"] = unsent
    return sum(kinds.values()), kinds


def answered(run):
    """{backend: answers} without the '(none)' pseudo-backend."""
    return {b: n for b, n in (run.get("backends") or {}).items() if b != "(none)"}


def subset_of(backend):
    # WorkloadEntry names carry their version: productpage-v1-a -> v1.
    parts = backend.split("-")
    return parts[-2] if len(parts) >= 3 else backend


def short(backend):
    parts = backend.split("-")
    return "-".join(parts[-2:]) if len(parts) >= 3 else backend


def share(tally, subset):
    n = sum(tally.values())
    return (100.0 * sum(c for b, c in tally.items() if subset_of(b) == subset) / n) if n else 0.0


def fmt_errors(kinds_by_plane):
    total = sum(sum(k.values()) for k in kinds_by_plane.values())
    if total == 0:
        return "errors: 0"
    detail = ", ".join(f"{plane} {k} {n}" for plane, kinds in kinds_by_plane.items()
                       for k, n in sorted(kinds.items()))
    return f"errors: {total}  <-- {detail}"


class Totals:
    def __init__(self, path):
        self.path = path
        self.data = load(path) or {"conns": 0, "reqs": 0, "errors": 0, "error_kinds": {},
                                   "misses": [], "held": 0, "held_problems": 0}

    def add(self, plane, run):
        n = sum(answered(run).values())
        self.data["conns" if plane == "L4" else "reqs"] += n
        count, kinds = errors_of(run)
        self.data["errors"] += count
        for k, v in kinds.items():
            key = f"{plane} {k}"
            self.data["error_kinds"][key] = self.data["error_kinds"].get(key, 0) + v
        return n, kinds

    def miss(self, what):
        """An observation that contradicts the configuration."""
        self.data["misses"].append(what)

    def save(self):
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.data, f)
        os.replace(self.path + ".tmp", self.path)


def cmd_tick(totals, label, l4_path, l7_path):
    l4, l7 = load(l4_path), load(l7_path)
    n4, k4 = totals.add("L4", l4)
    n7, k7 = totals.add("L7", l7)
    t4, t7 = answered(l4), answered(l7)
    print(f"  [{label:>6}]  L4 (XDP): v1 {share(t4, 'v1'):5.1f}%  v2 {share(t4, 'v2'):5.1f}%  ({n4:,} conns)"
          f"   L7 (proxy): v1 {share(t7, 'v1'):5.1f}%  v2 {share(t7, 'v2'):5.1f}%  ({n7:,} reqs)"
          f"   {fmt_errors({'L4': k4, 'L7': k7})}", flush=True)
    return 1 if k4 or k7 else 0


def binomial_check(tally, weight_v1):
    """(n, observed v1 %, tolerance in points, ok). 4.5 standard deviations
    of a binomial at this n: a false alarm is below 1 in 100,000 per check,
    while a split that is off by a few points at n in the thousands fails."""
    n = sum(tally.values())
    p = weight_v1 / 100.0
    got = share(tally, "v1")
    tol = 0.0 if p in (0.0, 1.0) else 100.0 * 4.5 * math.sqrt(p * (1 - p) / n) if n else 0.0
    return n, got, tol, n > 0 and abs(got - 100.0 * p) <= tol + 1e-9


def merge(paths):
    tally = {}
    for p in paths:
        for b, n in answered(load(p)).items():
            tally[b] = tally.get(b, 0) + n
    return tally


def cmd_step(totals, label, w1, rest):
    sep = rest.index("--")
    planes = {"L4": merge(rest[:sep]), "L7": merge(rest[sep + 1:])}
    parts = []
    for plane, tally in planes.items():
        n, got, tol, ok = binomial_check(tally, float(w1))
        if not ok:
            totals.miss(f"{plane} at {label}: v1 {got:.1f}% of {n:,}, expected {float(w1):g}")
        verdict = "ok" if ok else "OFF"
        within = "exactly" if tol == 0 else f"± {tol:.1f} (4.5σ)"
        parts.append(f"{plane} v1 {got:.1f}% of {n:,}, expected {float(w1):g} {within}: {verdict}")
    print(f"           step {label}: " + "   ".join(parts), flush=True)


def spread_line(tally):
    out = []
    for subset in ("v1", "v2"):
        members = sorted(b for b in tally if subset_of(b) == subset)
        n = sum(tally[b] for b in members)
        if not members:
            out.append(f"{subset}: -")
            continue
        out.append(f"{subset}: " + "  ".join(f"{short(b)} {100.0 * tally[b] / n:5.1f}%" for b in members))
    return "   ".join(out)


def add_runs(totals, plane, paths):
    """Counts several runs of one plane: (answers, error kinds, merged tally)."""
    n, kinds, tally = 0, {}, {}
    for p in paths:
        run = load(p)
        got, k = totals.add(plane, run)
        n += got
        for kk, v in k.items():
            kinds[kk] = kinds.get(kk, 0) + v
        for b, c in answered(run).items():
            tally[b] = tally.get(b, 0) + c
    return n, kinds, tally


def cmd_spread(totals, rest):
    sep = rest.index("--")
    n4, k4, t4 = add_runs(totals, "L4", rest[:sep])
    n7, k7, t7 = add_runs(totals, "L7", rest[sep + 1:])
    print(f"      L4 (XDP)    {spread_line(t4)}   ({n4:,} conns)", flush=True)
    print(f"      L7 (proxy)  {spread_line(t7)}   ({n7:,} reqs)   {fmt_errors({'L4': k4, 'L7': k7})}", flush=True)
    return 1 if k4 or k7 else 0


def backends_by_subset(tally):
    """'v1-a v2-b' when each subset's answers came from one backend; a subset
    answered by several shows them joined with '+' (not pinned)."""
    per_subset = {}
    for b in sorted(tally):
        per_subset.setdefault(subset_of(b), []).append(short(b))
    text = "  ".join("+".join(v) for _, v in sorted(per_subset.items()))
    return text, all(len(v) == 1 for v in per_subset.values())


def cmd_pinned(totals, pairs):
    kinds = {"L4": {}, "L7": {}}
    n = {"L4": 0, "L7": 0}
    unpinned = {"L4": 0, "L7": 0}
    print(f"      {'client':<12} {'L4 (XDP): backends seen':<28} L7 (proxy): backends seen", flush=True)
    for pair in pairs:
        src, paths = pair.split("=", 1)
        cells = []
        for plane, path in zip(("L4", "L7"), paths.split(",")):
            run = load(path)
            got, k = totals.add(plane, run)
            n[plane] += got
            for kk, v in k.items():
                kinds[plane][kk] = kinds[plane].get(kk, 0) + v
            text, pinned = backends_by_subset(answered(run))
            if not pinned:
                unpinned[plane] += 1
            cells.append(text + ("" if pinned else "  (not pinned)"))
        print(f"      {src:<12} {cells[0]:<28} {cells[1]}", flush=True)
    verdicts = []
    for plane in ("L4", "L7"):
        if unpinned[plane]:
            totals.miss(f"consistentHash by source IP, {plane}: {unpinned[plane]} of {len(pairs)} "
                        "client addresses reached more than one backend of a subset")
        verdicts.append(f"{plane} {'yes' if unpinned[plane] == 0 else 'NO'}")
    print(f"      each client address stays on one backend per subset: {', '.join(verdicts)}   "
          f"({n['L4']:,} conns, {n['L7']:,} reqs)   {fmt_errors(kinds)}", flush=True)
    return 1 if kinds["L4"] or kinds["L7"] else 0


def cmd_held(totals, path):
    run = load(path)
    s = run.get("summary") or {}
    conns = s.get("connections", 0)
    problems = s.get("resets", 0) + s.get("echo_timeouts", 0) + s.get("changed_backend", 0)
    if not run:
        problems = 1
    totals.data["held"] += conns
    totals.data["held_problems"] += problems
    totals.data["errors"] += problems
    if problems:
        totals.data["error_kinds"]["L4 held-connection problems"] = \
            totals.data["error_kinds"].get("L4 held-connection problems", 0) + problems
    print(f"  {conns} long-lived TCP connections held through every shift: "
          f"{s.get('resets', '?')} resets, {s.get('echo_timeouts', '?')} echo timeouts, "
          f"{s.get('changed_backend', '?')} changed backend"
          f"{'' if problems == 0 else '  <-- conntrack should keep each on its backend'}", flush=True)


def cmd_stats(totals, text):
    """Keeps the two Istio counters a platform engineer checks first, with the
    labels that tell the samples apart, and sets their sums next to what the
    clients counted (TCP: plus the held connections)."""
    keep = ("istio_tcp_connections_opened_total", "istio_requests_total")
    shown = ("destination_port", "destination_version", "destination_workload", "response_code")
    sums = {k: 0.0 for k in keep}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] not in keep:
            continue
        name, value = fields[0], fields[-1]
        labels = dict(kv.split("=", 1) for kv in (fields[1].split(",") if len(fields) > 2 else []) if "=" in kv)
        try:
            sums[name] += float(value)
        except ValueError:
            continue
        brief = ",".join(f"{k}={labels[k]}" for k in shown if k in labels)
        print(f"  {name}{{{brief}}} {float(value):,.0f}")
    d = totals.data
    tcp_clients = d["conns"] + d["held"]
    print(f"  the agent counted {sums[keep[0]]:,.0f} TCP connections "
          f"(clients: {d['conns']:,} + {d['held']} held = {tcp_clients:,}) and "
          f"{sums[keep[1]]:,.0f} HTTP requests (clients: {d['reqs']:,} answered)", flush=True)


def cmd_summary(totals):
    d = totals.data
    print(f"  {d['conns']:,} TCP connections through XDP (+ {d['held']} held through the shifts), "
          f"{d['reqs']:,} HTTP requests through the proxy, errors: {d['errors']}", flush=True)
    for kind, n in sorted(d["error_kinds"].items()):
        print(f"    {kind}: {n}")
    for what in d["misses"]:
        print(f"  does not match the configuration: {what}")
    failed = d["errors"] or d["misses"]
    print(f"  result: {'FAIL (exit 1)' if failed else 'OK'}")
    return 1 if failed else 0


def main(argv):
    cmd, path = argv[1], argv[2]
    totals = Totals(path)
    rc = 0
    if cmd == "tick":
        rc = cmd_tick(totals, argv[3], argv[4], argv[5])
    elif cmd == "step":
        cmd_step(totals, argv[3], argv[4], argv[5:])
    elif cmd == "spread":
        rc = cmd_spread(totals, argv[3:])
    elif cmd == "pinned":
        rc = cmd_pinned(totals, argv[3:])
    elif cmd == "held":
        cmd_held(totals, argv[3])
    elif cmd == "miss":
        totals.miss(" ".join(argv[3:]))
    elif cmd == "stats":
        cmd_stats(totals, sys.stdin.read())
    elif cmd == "summary":
        rc = cmd_summary(totals)
    else:
        print(f"report.py: unknown command '{cmd}'", file=sys.stderr)
        return 2
    totals.save()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
