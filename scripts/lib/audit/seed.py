#!/usr/bin/env python3
"""Seeds a control plane with the Pods of scripts/bench-audit.sh, straight through the API server.

kubectl is not used for the Pods: it sends one request per object, rate-limited by client-go's default
of 5 requests per second, so 100,000 Pods would take hours. This client keeps THREADS keep-alive TLS
connections (HTTP/1.1) and POSTs one Pod per request with the kubeconfig's client certificate.

  seed.py KUBECONFIG START END [--namespaces N] [--privileged-every K] [--threads T]
  seed.py KUBECONFIG --probe PATH     one GET of PATH, no retry: exit 0 on 200, 1 otherwise

Creates the namespaces audit-bench-00 .. audit-bench-(N-1) when missing (the even ones labelled
regate.dev/tenant: team-<i/2>, the odd ones without a tenant), waits for their default ServiceAccount
(the ServiceAccount admission plugin rejects Pods until it exists), then Pods p-START .. p-(END-1):
Pod i goes to namespace i mod N, and is privileged (pod-security denies it) when (i div N) mod K == 0,
so one Pod in K in every namespace. The others are the e2e tests' compliant Pod (tests/e2e_audit.rs,
`pod`), which every judged policy of the bundled library accepts. A Pod that already exists (409) is
counted as such and left alone, so seeding to a larger size adds only the missing Pods.

Prints one line: "created C existing E seconds S". Traffic goes only to the kubeconfig's server, which
the caller starts on 127.0.0.1.
"""

import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

import yaml

DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def namespace_name(i):
    return f"audit-bench-{i:02d}"


def namespace(i):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace_name(i)}}
    if i % 2 == 0:
        ns["metadata"]["labels"] = {"regate.dev/tenant": f"team-{i // 2}"}
    return ns


def pod(ns, name, privileged):
    """tests/e2e_audit.rs `pod` with tests/e2e_common `compliant_pod_spec`."""
    context = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
               "capabilities": {"drop": ["ALL"]}}
    if privileged:
        context["allowPrivilegeEscalation"] = True
        context["privileged"] = True
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"app.kubernetes.io/name": "app", "app.kubernetes.io/version": "1.0.0"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app",
                "image": f"harbor.example.eu/shop/app:1.0.0@{DIGEST}",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "200m", "memory": "256Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                "securityContext": context,
            }],
        },
    }


class Client:
    """One keep-alive TLS connection to the API server with the kubeconfig's client certificate."""

    def __init__(self, host, port, context):
        self.host, self.port, self.context = host, port, context
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(8):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)
            try:
                data = json.dumps(body).encode() if body is not None else None
                headers = {"Content-Type": "application/json", "Accept": "application/json"}
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status == 429 or response.status >= 500:
                time.sleep(0.2 * (attempt + 1))
                continue
            return response.status, payload
        raise SystemExit(f"{method} {path}: no answer after 8 attempts")


def tls_context(kubeconfig, scratch):
    config = yaml.safe_load(open(kubeconfig))
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])

    def material(entry, key):
        if f"{key}-data" in entry:
            path = os.path.join(scratch, key)
            with open(path, "wb") as f:
                f.write(base64.b64decode(entry[f"{key}-data"]))
            return path
        return entry[key]

    ctx = ssl.create_default_context(cafile=material(cluster, "certificate-authority"))
    ctx.load_cert_chain(material(user, "client-certificate"), material(user, "client-key"))
    server = urllib.parse.urlsplit(cluster["server"])
    if server.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to seed {server.hostname}: the benchmark only talks to 127.0.0.1")
    return ctx, server.hostname, server.port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kubeconfig")
    parser.add_argument("start", type=int, nargs="?")
    parser.add_argument("end", type=int, nargs="?")
    parser.add_argument("--probe", metavar="PATH")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--privileged-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        ctx, host, port = tls_context(args.kubeconfig, scratch)
        if args.probe:
            conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
            conn.request("GET", args.probe)
            return 0 if conn.getresponse().status == 200 else 1
        main_client = Client(host, port, ctx)
        for i in range(args.namespaces):
            status, payload = main_client.request("POST", "/api/v1/namespaces", namespace(i))
            if status not in (201, 409):
                raise SystemExit(f"namespace {namespace_name(i)}: {status} {payload[:300]!r}")
        deadline = time.monotonic() + 120
        for i in range(args.namespaces):
            path = f"/api/v1/namespaces/{namespace_name(i)}/serviceaccounts/default"
            while main_client.request("GET", path)[0] != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no default ServiceAccount in {namespace_name(i)} after 120 s")
                time.sleep(0.1)

        lock = threading.Lock()
        counts = {"created": 0, "existing": 0}
        failures = []
        next_index = [args.start]

        def work():
            client = Client(host, port, ctx)
            while True:
                with lock:
                    if failures or next_index[0] >= args.end:
                        return
                    i = next_index[0]
                    next_index[0] += 1
                ns = namespace_name(i % args.namespaces)
                privileged = (i // args.namespaces) % args.privileged_every == 0
                status, payload = client.request(
                    "POST", f"/api/v1/namespaces/{ns}/pods", pod(ns, f"p-{i:06d}", privileged))
                with lock:
                    if status == 201:
                        counts["created"] += 1
                    elif status == 409:
                        counts["existing"] += 1
                    else:
                        failures.append(f"pod p-{i:06d}: {status} {payload[:300]!r}")

        started = time.monotonic()
        threads = [threading.Thread(target=work) for _ in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise SystemExit(failures[0])
        print(f"created {counts['created']} existing {counts['existing']} seconds {time.monotonic() - started:.1f}")


if __name__ == "__main__":
    sys.exit(main())
