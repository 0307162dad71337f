#!/usr/bin/env python3
"""A small Kubernetes API server for the tests: discovery, list and watch.

Serves the objects of a fixtures directory (JSON shaped as the Kubernetes API
returns them) over the real protocol, closely enough for Debian's kubectl and
for sluiced's watcher:

  GET /version, /api, /apis, /api/v1, /apis/GROUP/VERSION      discovery
  GET .../[namespaces/NS/]PLURAL[?limit=&continue=&fieldSelector=metadata.name=X]
                                                              list (paginated)
  GET .../namespaces/NS/PLURAL/NAME                           one object
  GET ...?watch=1|true&resourceVersion=RV&timeoutSeconds=N&allowWatchBookmarks=true
      200 with a chunked body of newline-delimited events; a resourceVersion
      older than the last compaction gets an ERROR event with code 410.

The test drives a scripted sequence through control endpoints:

  POST /_control/apply      body: an object        -> ADDED or MODIFIED
  POST /_control/delete     {"kind","namespace","name"} -> DELETED
  POST /_control/bookmark   every open watch that asked for bookmarks gets one,
                            and so does one opened later from an older version
                            (a watch between its timeout and its resume would
                            miss it; a real server sends them periodically)
  POST /_control/expire     compacts history: open watches get ERROR 410 and
                            close, a later watch from an older version too
  POST /_control/fail       {"count": N}: the next N list/watch requests get 500
  GET  /_control/stats      lists, watches (with the resourceVersion each asked
                            for) and 410s per resource, and the current version

Usage: fake_apiserver.py --fixtures DIR --port-file FILE [--token T]
                         [--tls-cert PEM --tls-key PEM]
"""
import argparse
import base64
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (group, version, plural, kind, singular, namespaced, short names)
RESOURCES = [
    ("", "v1", "services", "Service", "service", True, ["svc"]),
    ("", "v1", "pods", "Pod", "pod", True, ["po"]),
    ("", "v1", "namespaces", "Namespace", "namespace", False, ["ns"]),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", "endpointslice", True, []),
    ("networking.istio.io", "v1beta1", "virtualservices", "VirtualService", "virtualservice", True, ["vs"]),
    ("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule", "destinationrule", True, ["dr"]),
    ("networking.istio.io", "v1beta1", "serviceentries", "ServiceEntry", "serviceentry", True, ["se"]),
    ("networking.istio.io", "v1beta1", "workloadentries", "WorkloadEntry", "workloadentry", True, ["we"]),
    # Known for discovery only, so `kubectl apply --dry-run=client` can map
    # the deploy/kubernetes manifests (kubectl 1.20 needs a server for that).
    ("", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", True, ["sa"]),
    ("", "v1", "configmaps", "ConfigMap", "configmap", True, ["cm"]),
    ("apps", "v1", "daemonsets", "DaemonSet", "daemonset", True, ["ds"]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "clusterrole", False, []),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", "clusterrolebinding", False, []),
]
BY_KIND = {r[3]: r for r in RESOURCES}
BY_PATH = {(r[0], r[1], r[2]): r for r in RESOURCES}


def api_version(res):
    return res[1] if not res[0] else res[0] + "/" + res[1]


def is_crd(res):
    return res[0] == "networking.istio.io"


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 100
        self.objects = {r[2]: {} for r in RESOURCES}   # plural -> {(ns, name): obj}
        self.events = []            # (rv, plural, type, obj)
        self.compacted = 0          # a watch from a version below this is 410
        self.expire_gen = 0
        self.bookmark_gen = 0
        self.bookmark_rv = 0        # STATE.rv when the last bookmark was asked for
        self.fail_next = 0
        self.stats = {"lists": {}, "watches": {}, "watch_versions": {}, "expired": {}}

    def count(self, what, plural, value=None):
        d = self.stats[what]
        if value is None:
            d[plural] = d.get(plural, 0) + 1
        else:
            d.setdefault(plural, []).append(value)

    def upsert(self, obj):
        """Stores obj; returns the event type. Caller holds cond."""
        res = BY_KIND.get(obj.get("kind"))
        if res is None:
            raise ValueError("unknown kind %r" % obj.get("kind"))
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default") if res[5] else ""
        if res[5]:
            meta["namespace"] = ns
        key = (ns, meta["name"])
        store = self.objects[res[2]]
        old = store.get(key)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        meta.setdefault("uid", old["metadata"]["uid"] if old else "%08x-0000-4000-8000-%012x" % (self.rv, self.rv))
        meta.setdefault("creationTimestamp",
                        old["metadata"]["creationTimestamp"] if old else
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        obj["apiVersion"] = api_version(res)
        store[key] = obj
        kind = "MODIFIED" if old else "ADDED"
        self.events.append((self.rv, res[2], kind, obj))
        self.cond.notify_all()
        return kind

    def delete(self, kind, ns, name):
        res = BY_KIND[kind]
        obj = self.objects[res[2]].pop((ns if res[5] else "", name), None)
        if obj is None:
            return False
        self.rv += 1
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, res[2], "DELETED", obj))
        self.cond.notify_all()
        return True


STATE = State()
TOKEN = None


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def resource_list(group, version):
    out = []
    for r in RESOURCES:
        if r[0] == group and r[1] == version:
            out.append({"name": r[2], "singularName": r[4], "namespaced": r[5], "kind": r[3],
                        "verbs": ["get", "list", "watch"], "shortNames": r[6]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": version if not group else group + "/" + version, "resources": out}


def for_list(res, obj):
    # Built-in lists carry no per-item apiVersion/kind; custom resources do.
    if is_crd(res):
        return obj
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-apiserver: %s %s\n" % (self.command, self.path))

    def send_json(self, code, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if TOKEN is None or self.path.startswith("/_control/"):
            return True
        if self.headers.get("Authorization", "") == "Bearer " + TOKEN:
            return True
        self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        return False

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with STATE.cond:
            if self.path == "/_control/apply":
                try:
                    kind = STATE.upsert(body)
                except (ValueError, KeyError) as e:
                    return self.send_json(400, {"error": str(e)})
                return self.send_json(200, {"type": kind, "resourceVersion": str(STATE.rv)})
            if self.path == "/_control/delete":
                ok = STATE.delete(body["kind"], body.get("namespace", "default"), body["name"])
                return self.send_json(200 if ok else 404, {"resourceVersion": str(STATE.rv)})
            if self.path == "/_control/bookmark":
                STATE.bookmark_gen += 1
                STATE.bookmark_rv = STATE.rv
                STATE.cond.notify_all()
                return self.send_json(200, {"resourceVersion": str(STATE.rv)})
            if self.path == "/_control/expire":
                STATE.compacted = STATE.rv   # watching from the current version stays valid
                STATE.events = []
                STATE.expire_gen += 1
                STATE.cond.notify_all()
                return self.send_json(200, {"compacted": str(STATE.compacted)})
            if self.path == "/_control/fail":
                STATE.fail_next = int(body.get("count", 1))
                return self.send_json(200, {})
        self.send_json(404, status(404, "NotFound", "no such control endpoint"))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/_control/stats":
            with STATE.cond:
                return self.send_json(200, dict(STATE.stats, resourceVersion=str(STATE.rv)))
        if not self.authorized():
            return
        if url.path == "/version":
            return self.send_json(200, {"major": "1", "minor": "20", "gitVersion": "v1.20.2-sluice-fake",
                                        "platform": "linux/amd64"})
        if parts == ["api"]:
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0", "serverAddress": self.headers.get("Host")}]})
        if parts == ["apis"]:
            groups = []
            for g, v in sorted({(r[0], r[1]) for r in RESOURCES if r[0]}):
                gv = {"groupVersion": g + "/" + v, "version": v}
                groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if parts == ["api", "v1"]:
            return self.send_json(200, resource_list("", "v1"))
        if len(parts) == 3 and parts[0] == "apis":
            if any(r[0] == parts[1] and r[1] == parts[2] for r in RESOURCES):
                return self.send_json(200, resource_list(parts[1], parts[2]))
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        # /api/v1/... or /apis/G/V/...
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0] if rest else ""))
        if res is None or len(rest) > 2:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        with STATE.cond:
            if STATE.fail_next > 0:
                STATE.fail_next -= 1
                return self.send_json(500, status(500, "InternalError", "injected failure"))
        if len(rest) == 2:
            with STATE.cond:
                obj = STATE.objects[res[2]].get((ns or "", rest[1]))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (res[2], rest[1])))
            return self.send_json(200, obj)
        if query.get("watch") in ("1", "true"):
            return self.watch(res, ns, query)
        return self.list(res, ns, query)

    def matches(self, res, ns, query, obj):
        meta = obj["metadata"]
        if ns is not None and meta.get("namespace", "") != ns:
            return False
        sel = query.get("fieldSelector", "")
        if sel.startswith("metadata.name="):
            return meta["name"] == sel[len("metadata.name="):]
        return True

    def list(self, res, ns, query):
        with STATE.cond:
            STATE.count("lists", res[2])
            items = [o for k, o in sorted(STATE.objects[res[2]].items()) if self.matches(res, ns, query, o)]
            rv = str(STATE.rv)
        start = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        limit = int(query.get("limit") or 0) or len(items) or 1
        page = items[start:start + limit]
        meta = {"resourceVersion": rv}
        if start + limit < len(items):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
        self.send_json(200, {"kind": res[3] + "List", "apiVersion": api_version(res), "metadata": meta,
                             "items": [for_list(res, o) for o in page]})

    def chunk(self, event):
        data = (json.dumps(event) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, res, ns, query):
        timeout = min(int(query.get("timeoutSeconds") or 1800), 1800)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        since = query.get("resourceVersion", "")
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            with STATE.cond:
                STATE.count("watches", res[2])
                STATE.count("watch_versions", res[2], since)
                expire_gen, bookmark_gen = STATE.expire_gen, STATE.bookmark_gen
                if since not in ("", "0") and int(since) < STATE.compacted:
                    STATE.count("expired", res[2])
                    self.chunk({"type": "ERROR", "object": status(
                        410, "Expired", "too old resource version: %s (%d)" % (since, STATE.compacted - 1))})
                    return
                if since in ("", "0"):
                    for k, o in sorted(STATE.objects[res[2]].items()):
                        if self.matches(res, ns, query, o):
                            self.chunk({"type": "ADDED", "object": o})
                    cursor = STATE.rv
                else:
                    cursor = int(since)
                if bookmarks and STATE.bookmark_gen > 0 and cursor < STATE.bookmark_rv:
                    bookmark_gen = -1   # asked for while this watch was not open: it gets one now
                while True:
                    for rv, plural, kind, obj in STATE.events:
                        if rv > cursor and plural == res[2] and self.matches(res, ns, query, obj):
                            self.chunk({"type": kind, "object": obj})
                    cursor = max(cursor, STATE.rv)
                    if STATE.expire_gen != expire_gen:
                        STATE.count("expired", res[2])
                        self.chunk({"type": "ERROR", "object": status(
                            410, "Expired", "too old resource version: %d (%d)" % (cursor, STATE.compacted - 1))})
                        return
                    if STATE.bookmark_gen != bookmark_gen:
                        bookmark_gen = STATE.bookmark_gen
                        if bookmarks:
                            self.chunk({"type": "BOOKMARK", "object": {
                                "kind": res[3], "apiVersion": api_version(res),
                                "metadata": {"resourceVersion": str(STATE.rv)}}})
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    STATE.cond.wait(min(left, 1.0))
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass


def load_fixtures(directory):
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(directory, name)) as f:
            doc = json.load(f)
        items = doc["items"] if doc.get("kind", "").endswith("List") and "items" in doc else [doc]
        for obj in items:
            STATE.upsert(obj)
    STATE.events = []   # the fixtures are the initial state, not history


def main():
    global TOKEN
    p = argparse.ArgumentParser()
    p.add_argument("--fixtures", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--token")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    TOKEN = a.token
    with STATE.cond:
        load_fixtures(a.fixtures)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
