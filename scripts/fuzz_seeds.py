#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/, not committed).

Seeds come from the repository (bundled policies, regate.yaml, test configs), from small hand-written
inputs written below, and from the shared test corpus beside the repository when it is there
(../shared/corpus: AdmissionReviews, rendered charts, cosign vectors). The shared corpus is read, never
copied whole: reviews are taken as they are (1.1 MB), charts are cut into documents and sampled, and
image references and quantities are extracted from them.

Usage: scripts/fuzz_seeds.py [REPO_ROOT [OUT_DIR]]
  REPO_ROOT: default the parent of this script's directory; OUT_DIR: default REPO_ROOT/fuzz/corpus
"""

import base64
import hashlib
import json
import os
import random
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
SHARED = Path(os.environ.get("REGATE_SHARED_CORPUS", ROOT.parent / "shared" / "corpus"))
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "fuzz" / "corpus"
MAX_SEED = 16 * 1024  # larger seeds slow every execution that mutates them
rng = random.Random(20261205)  # sampling is deterministic

# Must match ARTIFACT in fuzz/fuzz_targets/signature.rs.
ARTIFACT = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
ARTIFACT_DIGEST = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED:
        return
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    # Name by content, so duplicates collapse and reruns are stable.
    digest = hashlib.sha1(data).hexdigest()[:16]
    (d / f"{name}-{digest}"[:80]).write_bytes(data)


def shared(*parts):
    p = SHARED.joinpath(*parts)
    return p if p.exists() else None


def reviews():
    d = shared("admission", "reviews")
    return sorted(d.glob("*.json")) if d else []


def chart_files():
    d = shared("charts")
    return sorted(list(d.glob("*.yaml")) + list(d.glob("extra/*.yaml"))) if d else []


def chart_documents():
    for path in chart_files():
        text = path.read_text(errors="replace")
        for doc in re.split(r"(?m)^---\s*$", text):
            if doc.strip():
                yield path.stem, doc


def admission_review():
    for path in reviews():
        write("admission_review", path.stem, path.read_bytes())
    base = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
        },
    }
    write("admission_review", "hand-minimal", json.dumps(base))
    for text in [
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","n":[1,-0,1.0,1e400,18446744073709551615,-9223372036854775808,0.1]}}',
        '{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","uid":"v","operation":"DELETE","oldObject":null}}',
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":" "}}',
        '{"apiVersion":1,"kind":"AdmissionReview"}',
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"\\ud800","operation":"CREATE"}}',
        "[" * 130 + "]" * 130,
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CONNECT","object":{"a":' * 1 + "[" * 126 + "]" * 126 + "}}}",
    ]:
        write("admission_review", "hand", text)


def manifest():
    docs = list(chart_documents())
    rng.shuffle(docs)
    for name, doc in docs[:600]:
        write("manifest", name, doc.lstrip("\n"))
    # A few multi-document streams as helm prints them.
    for path in chart_files()[:13]:
        text = path.read_text(errors="replace")
        write("manifest", path.stem + "-head", text[: MAX_SEED - 1].rsplit("\n---", 1)[0])
    for path in reviews()[:40]:
        obj = json.loads(path.read_text()).get("request", {}).get("object")
        if isinstance(obj, dict):
            write("manifest", path.stem, json.dumps(obj, indent=2))
    for p in sorted((ROOT / "testdata" / "manifests").rglob("*")):
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json"):
            write("manifest", "testdata-" + p.stem, p.read_bytes())
    for p in sorted((ROOT / "testdata" / "yaml11").rglob("*")):
        if p.is_file():
            write("manifest", "yaml11-" + p.stem, p.read_bytes())
    for text in [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  on: yes\n  octal: 0777\n  b: !!binary aGk=\n",
        "base: &b {apiVersion: v1, kind: Pod}\n---\n<<: *b\nmetadata: {name: x}\n",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n- {apiVersion: v1, kind: ConfigMap}\n",
        '[{"apiVersion":"v1","kind":"Pod"},{"apiVersion":"v1","kind":"Service"}]',
        "\ufeff---\n# Source: x\n...\n--- |\n  text\n",
        "a: &x [*x]\n",
        "? [a, b]\n: c\n1.5: x\n~: null\n",
    ]:
        write("manifest", "hand", text)


def config():
    for p in [ROOT / "policies" / "regate.yaml", *sorted((ROOT / "testdata").rglob("regate.y*ml")),
              *sorted((ROOT / "testdata" / "configs").glob("*"))]:
        if p.is_file():
            write("config", p.parent.name + "-" + p.stem, p.read_bytes())
    for text in [
        "",
        "{}",
        "apiVersion: regate.dev/v1\nkind: Config\n",
        "policies:\n  pod-security:\n    enforcement: warn\n    parameters: {level: restricted}\n",
        "settings: {a: [1, 2]}\nlimits: {}\n",
    ]:
        write("config", "hand", text)


def bundle():
    for p in sorted((ROOT / "policies").rglob("*.rego")) + sorted((ROOT / "testdata").rglob("*.rego")):
        if not p.name.endswith("_test.rego"):
            write("bundle", p.parent.name + "-" + p.stem, p.read_bytes())
    write("bundle", "hand", """# METADATA
# title: Fuzz
# description: A policy
# custom:
#   enforcement: deny
#   match:
#     kinds: [Pod]
package regate.policies.fuzz

import rego.v1

deny contains msg if {
\tsome c in input.review.object.spec.containers
\tnot c.securityContext.runAsNonRoot
\tmsg := sprintf("%s runs as root", [c.name])
}
""")


def image_reference():
    seen = set()
    pattern = re.compile(r"""^\s*-?\s*image:\s*["']?([^"'\s]+)""", re.M)
    for _, doc in chart_documents():
        seen.update(pattern.findall(doc))
    for path in reviews():
        seen.update(pattern.findall(json.dumps(json.loads(path.read_text()), indent=1).replace('"image": ', "image: ")))
    for ref in sorted(seen)[:800]:
        write("image_reference", "ref", ref)
    for ref in [
        "nginx", "nginx:1.27", "library/nginx@sha256:" + "a" * 64, "localhost:5000/a/b:c",
        "[::1]:5000/x", "Registry.Example.COM/team/app:v1@sha256:" + "0" * 64, "a/b/c/d/e:latest",
        "ghcr.io/x/y:" + "t" * 128, "docker.io/library/busybox", "index.docker.io/busybox",
    ]:
        write("image_reference", "hand", ref)


def signature():
    vectors = shared("cosign", "vectors")
    files = sorted(p for p in vectors.rglob("*") if p.is_file()) if vectors else []
    for p in files:
        data = p.read_bytes()
        if p.name.endswith((".pub", ".pem")):
            write("signature", "key-" + p.parent.name, b"\x00" + data)
            try:
                der = base64.b64decode("".join(l for l in data.decode().splitlines() if not l.startswith("-----")))
                write("signature", "der-" + p.parent.name, b"\x00" + der)
            except Exception:
                pass
        elif p.name == "payload.json":
            write("signature", "simple-" + p.parent.name, b"\x01" + data)
        elif p.name == "envelope.json":
            write("signature", "dsse-" + p.parent.name, b"\x02" + data)
        elif p.name == "statement.json":
            write("signature", "statement-" + p.parent.name, b"\x03" + data)
        elif p.name == "bundle.json":
            write("signature", "bundle-" + p.parent.name, b"\x04" + data)
    hexd = ARTIFACT_DIGEST.split(":", 1)[1]
    simple = {"critical": {"identity": {"docker-reference": "ghcr.io/x/y"},
                           "image": {"docker-manifest-digest": ARTIFACT_DIGEST},
                           "type": "cosign container image signature"}, "optional": None}
    write("signature", "hand-simple", b"\x01" + json.dumps(simple).encode())
    statement = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "ghcr.io/x/y", "digest": {"sha256": hexd}}],
                 "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}}
    write("signature", "hand-statement", b"\x03" + json.dumps(statement).encode())
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    for media in ["application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle+json;version=0.1"]:
        for material in [{"publicKey": {"hint": "abc"}}, {"certificate": {"rawBytes": "MIIB"}},
                         {"x509CertificateChain": {"certificates": [{"rawBytes": "MIIB"}]}, "tlogEntries": [{"logIndex": "1"}]}]:
            dsse = {"mediaType": media, "verificationMaterial": material,
                    "dsseEnvelope": {"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": [{"sig": "AAAA"}]}}
            write("signature", "hand-bundle-dsse", b"\x05" + json.dumps(dsse).encode())
            write("signature", "hand-bundle-dsse-raw", b"\x04" + json.dumps(dsse).encode())
            message = {"mediaType": media, "verificationMaterial": material,
                       "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(bytes.fromhex(hexd)).decode()},
                                            "signature": "AAAA"}}
            write("signature", "hand-bundle-message", b"\x05" + json.dumps(message).encode())


def json_patch():
    ops = [
        [{"op": "add", "path": "/metadata/labels/team", "value": "a"}],
        [{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1"}, {"op": "test", "path": "/kind", "value": "Pod"}],
        [{"op": "remove", "path": "/metadata/annotations"}, {"op": "add", "path": "/spec/x~1y~0z/-", "value": [1]}],
        [{"op": "add", "path": "", "value": {}}, {"op": "move", "from": "/a", "path": "/b"}],
        [{"op": "add", "path": "/spec/containers/-", "value": {"name": "s"}}, {"op": "remove", "path": "/spec/containers/0"}],
    ]
    objects = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}]
    for path in reviews()[:60]:
        obj = json.loads(path.read_text()).get("request", {}).get("object")
        if isinstance(obj, dict):
            objects.append(obj)
    for i, obj in enumerate(objects):
        write("json_patch", "patch", json.dumps([obj, ops[i % len(ops)]]))
    for o in ops:
        write("json_patch", "ops", json.dumps(o))
    for text in ["/a/b", "/a~1b/~0c", "", "a", "/"]:
        write("json_patch", "pointer", text)


def duration():
    for text in ["10s", "1m0s", "2.5s", "500ms", "1h2m3.5s", "300us", "1µs", "7ns", ".5s", "5.s", "0", "1.5",
                 "2m", "250ms", "99999999999999999999h", "1e3s", " 3s "]:
        write("duration", "hand", text)


def quantity():
    found = set()
    pattern = re.compile(r"""^\s*(?:cpu|memory|ephemeral-storage|storage):\s*["']?([^"'\s#]+)""", re.M)
    for _, doc in chart_documents():
        found.update(pattern.findall(doc))
    for q in sorted(found)[:300]:
        write("quantity", "q", q)
    for q in ["500m", "1.5", "512Mi", "1e3", "2G", "0.05", "007", "+3", "-1.5Gi", ".5", "5.", "1E", "1Ei",
              "1e-3", "1E+99", "1e100", "0000000000001", "1.0000000000000000000001", "12345678901234567890k"]:
        write("quantity", "hand", q)


TARGETS = {
    "admission_review": admission_review,
    "manifest": manifest,
    "config": config,
    "bundle": bundle,
    "image_reference": image_reference,
    "signature": signature,
    "json_patch": json_patch,
    "duration": duration,
    "quantity": quantity,
}

if __name__ == "__main__":
    if not SHARED.exists():
        print(f"fuzz_seeds: {SHARED} not found; hand-written and repository seeds only", file=sys.stderr)
    for name, make in TARGETS.items():
        make()
        n = len(list((OUT / name).glob("*"))) if (OUT / name).exists() else 0
        print(f"fuzz_seeds: {name}: {n} seeds")
