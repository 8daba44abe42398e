#!/usr/bin/env python3
"""Sanity-check the vendored upstream CRDs in testdata/crds/.

Every expected file must parse (PyYAML) into exactly one document that is an
apiextensions.k8s.io/v1 CustomResourceDefinition with the expected group,
plural and metadata.name, and that serves the expected version(s).
Any other *.yaml below this directory is reported as unexpected.
Files listed in KNOWN_MISSING are allowed to be absent (see README.md).

Usage: python3 testdata/crds/check.py      (exit status 0 = all good)
"""
import os
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check.py: PyYAML is required (pip install pyyaml)")

HERE = os.path.dirname(os.path.abspath(__file__))

# relative path -> (group, plural, versions that must be served)
EXPECTED = {
    "cert-manager/certificates.cert-manager.io.yaml": ("cert-manager.io", "certificates", ["v1"]),
    "cert-manager/issuers.cert-manager.io.yaml": ("cert-manager.io", "issuers", ["v1"]),
    "cert-manager/clusterissuers.cert-manager.io.yaml": ("cert-manager.io", "clusterissuers", ["v1"]),
    "prometheus-operator/servicemonitors.monitoring.coreos.com.yaml": ("monitoring.coreos.com", "servicemonitors", ["v1"]),
    "prometheus-operator/prometheusrules.monitoring.coreos.com.yaml": ("monitoring.coreos.com", "prometheusrules", ["v1"]),
    "victoriametrics/vmservicescrapes.operator.victoriametrics.com.yaml": ("operator.victoriametrics.com", "vmservicescrapes", ["v1beta1"]),
    "victoriametrics/vmrules.operator.victoriametrics.com.yaml": ("operator.victoriametrics.com", "vmrules", ["v1beta1"]),
    "external-secrets/externalsecrets.external-secrets.io.yaml": ("external-secrets.io", "externalsecrets", ["v1beta1"]),
    "cilium/ciliumnetworkpolicies.cilium.io.yaml": ("cilium.io", "ciliumnetworkpolicies", ["v2"]),
    "cilium/ciliumclusterwidenetworkpolicies.cilium.io.yaml": ("cilium.io", "ciliumclusterwidenetworkpolicies", ["v2"]),
    "gateway-api/gatewayclasses.gateway.networking.k8s.io.yaml": ("gateway.networking.k8s.io", "gatewayclasses", ["v1"]),
    "gateway-api/gateways.gateway.networking.k8s.io.yaml": ("gateway.networking.k8s.io", "gateways", ["v1"]),
    "gateway-api/httproutes.gateway.networking.k8s.io.yaml": ("gateway.networking.k8s.io", "httproutes", ["v1"]),
    "openreports/reports.openreports.io.yaml": ("openreports.io", "reports", ["v1alpha1"]),
    "openreports/clusterreports.openreports.io.yaml": ("openreports.io", "clusterreports", ["v1alpha1"]),
    "wg-policy/policyreports.wgpolicyk8s.io.yaml": ("wgpolicyk8s.io", "policyreports", ["v1alpha2"]),
    "wg-policy/clusterpolicyreports.wgpolicyk8s.io.yaml": ("wgpolicyk8s.io", "clusterpolicyreports", ["v1alpha2"]),
}

# Files that could not be obtained from a published upstream copy (see README.md).
# They are reported but do not fail the check while absent.
KNOWN_MISSING = {}


def check_file(rel, group, plural, versions):
    problems = []
    path = os.path.join(HERE, rel)
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except Exception as e:  # noqa: BLE001
        return ["%s: YAML parse error: %s" % (rel, e)]
    if len(docs) != 1:
        return ["%s: expected exactly 1 YAML document, found %d" % (rel, len(docs))]
    crd = docs[0]
    if not isinstance(crd, dict):
        return ["%s: document is not a mapping" % rel]
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1":
        problems.append("%s: apiVersion is %r" % (rel, crd.get("apiVersion")))
    if crd.get("kind") != "CustomResourceDefinition":
        problems.append("%s: kind is %r" % (rel, crd.get("kind")))
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    if spec.get("group") != group:
        problems.append("%s: spec.group is %r, want %r" % (rel, spec.get("group"), group))
    if names.get("plural") != plural:
        problems.append("%s: spec.names.plural is %r, want %r" % (rel, names.get("plural"), plural))
    want_name = "%s.%s" % (plural, group)
    got_name = (crd.get("metadata") or {}).get("name")
    if got_name != want_name:
        problems.append("%s: metadata.name is %r, want %r" % (rel, got_name, want_name))
    if os.path.basename(rel) != want_name + ".yaml":
        problems.append("%s: file name does not match %s.yaml" % (rel, want_name))
    vers = spec.get("versions") or []
    served = [v.get("name") for v in vers if v.get("served")]
    storage = [v.get("name") for v in vers if v.get("storage")]
    for v in versions:
        if v not in served:
            problems.append("%s: version %s not served (served: %s)" % (rel, v, served))
    if len(storage) != 1:
        problems.append("%s: expected exactly one storage version, got %s" % (rel, storage))
    for v in vers:
        if not ((v.get("schema") or {}).get("openAPIV3Schema")):
            problems.append("%s: version %s has no openAPIV3Schema" % (rel, v.get("name")))
    return problems


def main():
    problems = []
    ok = 0
    for rel, (group, plural, versions) in sorted(EXPECTED.items()):
        if not os.path.exists(os.path.join(HERE, rel)):
            if rel in KNOWN_MISSING:
                print("SKIP %s (known missing: %s)" % (rel, KNOWN_MISSING[rel]))
            else:
                problems.append("%s: missing" % rel)
            continue
        p = check_file(rel, group, plural, versions)
        if p:
            problems.extend(p)
        else:
            ok += 1
            print("ok   %s" % rel)
    for root, dirs, files in os.walk(HERE):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for fn in files:
            if fn.endswith((".yaml", ".yml")):
                rel = os.path.relpath(os.path.join(root, fn), HERE).replace(os.sep, "/")
                if rel not in EXPECTED:
                    problems.append("%s: unexpected file (add it to EXPECTED)" % rel)
    for p in problems:
        print("FAIL " + p)
    print("%d ok, %d problem(s)" % (ok, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
