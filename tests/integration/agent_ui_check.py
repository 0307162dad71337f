#!/usr/bin/env python3
"""Checks the agent's /ui page as a browser renders it (agent_ui.sh): reads
the shares, notices and version the page shows from its DOM through the
DevTools protocol (ui_cdp.py) of a headless Chromium already on the page.

  agent_ui_check.py shares USER_DATA_DIR --expect v1=0.5,v2=0.5 --ports 9080,9081 --within 15 [--since UNIX_TIME]
                     [--tolerance 0.05] [--screenshot PNG]
  agent_ui_check.py refused USER_DATA_DIR --needle routing.yaml:10 --within 8
  agent_ui_check.py restarted USER_DATA_DIR --within 20
Exit 0 when the page shows it in time, 1 (with what it showed) otherwise.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ui_cdp import DevTools  # noqa: E402

READ_PORTS = """JSON.stringify([...document.querySelectorAll('.port')].map(p => ({
  port: p.dataset.port, plane: p.dataset.plane,
  observed: Object.fromEntries([...p.querySelectorAll('td.observed')].map(td => [td.dataset.subset, td.dataset.value])),
  configured: Object.fromEntries([...p.querySelectorAll('td.configured')].map(td => [td.dataset.subset, td.dataset.value]))})))"""


def shares(cdp, args) -> int:
    expect = {k: float(v) for k, v in (kv.split("=") for kv in args.expect.split(","))}
    ports = args.ports.split(",")
    # The time is counted from --since (the shift), not from this script's start.
    start = args.since or time.time()
    last = None
    while time.time() - start < args.within:
        shown = {p["port"]: p for p in json.loads(cdp.evaluate(READ_PORTS))}
        last = shown
        ok = True
        for port in ports:
            p = shown.get(port)
            for subset, want in expect.items():
                observed = p and p["observed"].get(subset)
                configured = p and p["configured"].get(subset)
                if not observed or not configured or abs(float(configured) - want) > 1e-9 or \
                        abs(float(observed) - want) > args.tolerance:
                    ok = False
        if ok:
            took = time.time() - start
            print(f"page shows {args.expect} (configured, and observed within ±{args.tolerance}) on ports "
                  f"{args.ports} {took:.1f} s after {'the change' if args.since else 'this check started'}: " +
                  "; ".join(f"{port} {p['plane']} {p['observed']}" for port, p in sorted(shown.items())))
            if args.screenshot:
                cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
                time.sleep(1.5)   # one more refresh at that size
                cdp.screenshot(args.screenshot)
                print(f"screenshot: {args.screenshot}")
            return 0
        time.sleep(0.5)
    print(f"page did not show {args.expect} within ±{args.tolerance} on ports {args.ports} within {args.within} s; "
          f"it showed: {json.dumps(last)}")
    return 1


def wait_for(cdp, expression: str, within: float, what: str) -> int:
    start = time.monotonic()
    value = None
    while time.monotonic() - start < within:
        value = cdp.evaluate(expression)
        if value and value.get("ok"):
            print(f"page shows {what} after {time.monotonic() - start:.1f} s: {value.get('text', '')[:300]}")
            return 0
        time.sleep(0.5)
    print(f"page did not show {what} within {within} s; it showed: {json.dumps(value)[:600]}")
    return 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("check", choices=["shares", "refused", "restarted"])
    ap.add_argument("user_data_dir")
    ap.add_argument("--expect", default="")
    ap.add_argument("--ports", default="9080,9081")
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--within", type=float, default=15)
    ap.add_argument("--since", type=float, default=0, help="unix time the wait starts from (default: now)")
    ap.add_argument("--needle", default="")
    ap.add_argument("--version", default="")
    ap.add_argument("--screenshot", default="")
    args = ap.parse_args()
    cdp = DevTools.attach(args.user_data_dir, timeout_s=20)
    if args.check == "shares":
        return shares(cdp, args)
    if args.check == "refused":
        needle = json.dumps(args.needle)
        return wait_for(cdp, f"""(() => {{ const r = document.getElementById('refused');
            const v = document.getElementById('agent').dataset.version;
            return {{ok: !!r && r.textContent.includes({needle}) && v === {json.dumps(args.version)},
                     text: (r ? r.textContent : 'no refusal shown') + ' | serving ' + v}}; }})()""",
                        args.within, f"the refusal ({args.needle}) with version {args.version} still serving")
    return wait_for(cdp, """(() => { const r = document.getElementById('restarted');
        const a = document.getElementById('agent');
        return {ok: !!r && !!a.dataset.version && document.querySelectorAll('td.observed').length > 0,
                text: (r ? r.textContent : 'no restart notice') + ' | ' + a.textContent}; })()""",
                    args.within, "the agent's restart and its state after it")


if __name__ == "__main__":
    sys.exit(main())
