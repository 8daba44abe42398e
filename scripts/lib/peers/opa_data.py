#!/usr/bin/env python3
"""Lays out the OPA server's copy of regate's bundled library for scripts/bench-peers.sh.

Usage: opa_data.py OPA BUNDLE_DIR OUT_DIR [INVENTORY.yaml ...]

OUT_DIR receives what regate's engine hands its policies (src/policy/load.rs):
  policies/...               the bundle's modules (`*_test.rego` left out, as `serve` leaves them out)
  regate/config/data.json    data.regate.config: the merged regate.yaml without policies, apiVersion, kind
  regate_peer/data.json      data.regate_peer.policies: per policy package, what regate reads from the
                             package's METADATA (`opa inspect -a`) and regate.yaml's `policies.<id>`:
                             id, title, enforcement, match (operations defaulted to CREATE, UPDATE),
                             exclude and parameters, read by peer.rego
  inventory/data.json        data.inventory in Gatekeeper's layout, built from the manifests as
                             `regate serve --cluster-state static --inventory FILE` builds it
                             (src/cluster/inventory.rs: whole objects, namespaced ones under their namespace)
Fails on a match field peer.rego does not implement (labelSelector), so a difference cannot go unnoticed.
"""
import json
import os
import shutil
import subprocess
import sys

import yaml

# src/admission/synthesize.rs CLUSTER_SCOPED: kinds stored under `cluster` rather than `namespace`.
CLUSTER_SCOPED = {
    "APIService", "CSIDriver", "CSINode", "CertificateSigningRequest", "CiliumClusterwideNetworkPolicy",
    "ClusterIssuer", "ClusterRole", "ClusterRoleBinding", "ClusterSecretStore", "ClusterExternalSecret",
    "ComponentStatus", "CustomResourceDefinition", "FlowSchema", "GatewayClass", "IngressClass",
    "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PodSecurityPolicy",
    "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "StorageClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
    "VolumeAttachment", "VolumeSnapshotClass", "VolumeSnapshotContent",
}
POLICY_PREFIX = ["data", "regate", "policies"]


def write(out, rel, doc):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, sort_keys=True)


def main():
    opa, bundle, out = sys.argv[1:4]
    inventories = sys.argv[4:]
    with open(os.path.join(bundle, "regate.yaml")) as f:
        config = yaml.safe_load(f) or {}
    settings = config.get("policies") or {}
    view = {k: v for k, v in config.items() if k not in ("policies", "apiVersion", "kind")}
    write(out, "regate/config/data.json", view)

    for root, dirs, files in os.walk(bundle):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".rego") and not name.endswith("_test.rego"):
                src = os.path.join(root, name)
                dst = os.path.join(out, "policies", os.path.relpath(src, bundle))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)

    inspected = json.loads(subprocess.run([opa, "inspect", "-a", "--format", "json", os.path.join(out, "policies")],
                                          check=True, capture_output=True, text=True).stdout)
    policies = {}
    for entry in inspected.get("annotations") or []:
        ann = entry["annotations"]
        path = [p["value"] for p in entry["path"]]
        if ann.get("scope") != "package" or path[:3] != POLICY_PREFIX or len(path) != 4:
            continue
        package = path[3]
        pid = package.replace("_", "-")
        custom = ann.get("custom") or {}
        own = settings.get(pid) or {}
        if own.get("enabled") is False:
            continue
        match = dict(own.get("match") or custom.get("match") or {})
        if not match.get("operations"):
            match["operations"] = ["CREATE", "UPDATE"]
        exclude = [e for e in (custom.get("exclude") or []) + (own.get("exclude") or []) if e]
        for spec in [match, *exclude]:
            if "labelSelector" in spec:
                sys.exit(f"opa_data.py: policy {pid}: match.labelSelector is not implemented by peer.rego")
        policies[package] = {
            "id": pid,
            "title": ann.get("title", ""),
            "enforcement": own.get("enforcement") or config.get("enforcement")
                           or custom.get("enforcement") or "deny",
            "match": match,
            "exclude": exclude,
            "parameters": own.get("parameters") or {},
        }
    if not policies:
        sys.exit("opa_data.py: no policy packages found")
    write(out, "regate_peer/data.json", {"policies": policies})

    inventory = {"cluster": {}, "namespace": {}}
    for file in inventories:
        with open(file) as f:
            for obj in yaml.safe_load_all(f):
                items = obj.get("items", []) if obj and obj.get("kind", "").endswith("List") else [obj]
                for o in items:
                    if not o or not all((o.get("apiVersion"), o.get("kind"), (o.get("metadata") or {}).get("name"))):
                        continue
                    if o["kind"] in CLUSTER_SCOPED:
                        target = inventory["cluster"]
                    else:
                        ns = o["metadata"].get("namespace") or "default"
                        o["metadata"]["namespace"] = ns
                        target = inventory["namespace"].setdefault(ns, {})
                    target.setdefault(o["apiVersion"], {}).setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    write(out, "inventory/data.json", inventory)


if __name__ == "__main__":
    main()
