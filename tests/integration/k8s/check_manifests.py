#!/usr/bin/env python3
"""Schema-level checks of deploy/kubernetes/ that kubectl's offline dry run
does not make: the fields a DaemonSet and RBAC objects need, the security
settings docs/operations.md promises, and RBAC that grants exactly get, list
and watch on exactly the resources sluiced watches (userspace/k8s).

Usage: check_manifests.py SOURCE_ROOT. Prints one line per problem; exit 1 if any.
"""
import glob
import os
import re
import sys

import yaml

root = sys.argv[1]
problems = []


def problem(where, msg):
    problems.append("%s: %s" % (where, msg))


docs = []
for path in sorted(glob.glob(os.path.join(root, "deploy/kubernetes/*.yaml"))):
    with open(path) as f:
        for i, d in enumerate(yaml.safe_load_all(f)):
            if d is not None:
                docs.append(("%s[%d]" % (os.path.relpath(path, root), i), d))

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
by_kind = {}
for where, d in docs:
    for field in ("apiVersion", "kind", "metadata"):
        if field not in d:
            problem(where, "no %s" % field)
    meta = d.get("metadata") or {}
    if not meta.get("name"):
        problem(where, "no metadata.name")
    if d.get("kind") not in CLUSTER_SCOPED and meta.get("namespace") != "sluice-system":
        problem(where, "%s must be in namespace sluice-system" % d.get("kind"))
    by_kind.setdefault(d.get("kind"), []).append((where, d))

for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet", "ConfigMap"):
    if len(by_kind.get(kind, [])) != 1:
        problem("deploy/kubernetes", "expected one %s, found %d" % (kind, len(by_kind.get(kind, []))))
if problems:
    print("\n".join(problems))
    sys.exit(1)

# --- the capabilities docs/operations.md lists ---
with open(os.path.join(root, "docs/operations.md")) as f:
    ops = f.read()
m = re.search(r"^Capabilities added by the DaemonSet: (.*)$", ops, re.M)
documented = sorted(c.strip(" `.") for c in m.group(1).split(",")) if m else None
if documented is None:
    problem("docs/operations.md", "no 'Capabilities added by the DaemonSet:' line")

# --- DaemonSet ---
where, ds = by_kind["DaemonSet"][0]
if ds["apiVersion"] != "apps/v1":
    problem(where, "DaemonSet apiVersion must be apps/v1")
spec = ds.get("spec", {})
tmpl = spec.get("template", {})
selector = spec.get("selector", {}).get("matchLabels", {})
labels = tmpl.get("metadata", {}).get("labels", {})
if not selector or any(labels.get(k) != v for k, v in selector.items()):
    problem(where, "spec.selector.matchLabels must match the pod template's labels")
pod = tmpl.get("spec", {})
sa_name = by_kind["ServiceAccount"][0][1]["metadata"]["name"]
if pod.get("serviceAccountName") != sa_name:
    problem(where, "serviceAccountName must be %s" % sa_name)
if pod.get("hostNetwork") is not True:
    problem(where, "hostNetwork must be true (sluiced steers the node's own traffic)")
for bad in ("hostPID", "hostIPC"):
    if pod.get(bad):
        problem(where, "%s is not needed" % bad)
containers = pod.get("containers", [])
if len(containers) != 1:
    problem(where, "expected one container")
c = containers[0] if containers else {}
for field in ("name", "image"):
    if not c.get(field):
        problem(where, "container has no %s" % field)
sc = c.get("securityContext", {})
if sc.get("privileged") is not False:
    problem(where, "container must say privileged: false")
if sc.get("allowPrivilegeEscalation") is not False:
    problem(where, "allowPrivilegeEscalation must be false")
caps = sc.get("capabilities", {})
if caps.get("drop") != ["ALL"]:
    problem(where, "capabilities.drop must be [ALL]")
if documented is not None and sorted(caps.get("add", [])) != documented:
    problem(where, "capabilities.add %s differs from docs/operations.md %s" % (sorted(caps.get("add", [])), documented))
args = c.get("args", [])
if "--kubernetes" not in args:
    problem(where, "sluiced must run with --kubernetes")
admin = next((a.split("=", 1)[1] for a in args if a.startswith("--admin=")), "127.0.0.1:15000")
probe = c.get("readinessProbe", {}).get("httpGet", {})
if probe.get("path") != "/ready" or "%s:%s" % (probe.get("host", ""), probe.get("port")) != admin:
    problem(where, "readinessProbe must GET /ready on the admin address %s, got %s" % (admin, probe))
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
bpffs = mounts.get("/sys/fs/bpf")
if not bpffs or volumes.get(bpffs["name"], {}).get("hostPath", {}).get("path") != "/sys/fs/bpf":
    problem(where, "/sys/fs/bpf must be the host's bpffs (hostPath /sys/fs/bpf)")
for m in mounts.values():
    if m["name"] not in volumes:
        problem(where, "volumeMount %s names no volume" % m["name"])
for e in c.get("envFrom", []):
    ref = e.get("configMapRef", {}).get("name")
    if ref and ref not in [d["metadata"]["name"] for _, d in by_kind.get("ConfigMap", [])]:
        problem(where, "envFrom names ConfigMap %s, which is not in deploy/kubernetes" % ref)
cm = by_kind["ConfigMap"][0][1].get("data", {})
for a in args:
    for var in re.findall(r"\$\((\w+)\)", a):
        if var not in cm:
            problem(where, "argument %s uses $(%s), which the ConfigMap does not set" % (a, var))

# --- RBAC: exactly get/list/watch on exactly what sluiced watches ---
with open(os.path.join(root, "userspace/k8s/resource_store.cc")) as f:
    watched = set(re.findall(r'\{"([a-z0-9.]*)", "v[0-9a-z]+", "([a-z]+)", "[A-Za-z]+", (?:true|false)\}', f.read()))
if len(watched) < 7:
    problem("userspace/k8s/resource_store.cc", "could not read the watched kinds (found %s)" % sorted(watched))
where, role = by_kind["ClusterRole"][0]
granted = set()
for rule in role.get("rules", []):
    verbs = set(rule.get("verbs", []))
    if not verbs or not verbs <= {"get", "list", "watch"}:
        problem(where, "verbs must be only get, list, watch: %s" % sorted(verbs))
    for key in ("resourceNames", "nonResourceURLs"):
        if key in rule:
            problem(where, "unexpected %s" % key)
    for g in rule.get("apiGroups", []):
        for r in rule.get("resources", []):
            if "*" in (g, r):
                problem(where, "no wildcards")
            granted.add((g, r))
if granted != watched:
    problem(where, "grants %s; sluiced watches %s" % (sorted(granted), sorted(watched)))
where, binding = by_kind["ClusterRoleBinding"][0]
ref = binding.get("roleRef", {})
if ref.get("kind") != "ClusterRole" or ref.get("name") != role["metadata"]["name"]:
    problem(where, "roleRef must name ClusterRole %s" % role["metadata"]["name"])
if {"kind": "ServiceAccount", "name": sa_name, "namespace": "sluice-system"} not in binding.get("subjects", []):
    problem(where, "subjects must be the ServiceAccount sluice-system/%s" % sa_name)

print("\n".join(problems) if problems else "deploy/kubernetes: %d objects checked" % len(docs))
sys.exit(1 if problems else 0)
