#!/usr/bin/env python3
"""Writes the AdmissionReviews of tests/policies_bypass.rs (one JSON file per case, next to this script).

Every review is a full admission.k8s.io/v1 AdmissionReview as the API server sends it. Cluster state
for the cases is inventory.yaml (passed with `regate eval --inventory`). Re-run after editing:

    python3 testdata/policies/bypass/generate.py
"""

import base64
import copy
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
GOOD_IMAGE = f"harbor.example.eu/shop/storefront:1.4.2@{DIGEST}"
TENANT = "regate.dev/tenant"

CERT_MANAGER = {"username": "system:serviceaccount:cert-manager:cert-manager", "uid": "u-cm",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:cert-manager", "system:authenticated"]}
SHOP_USER = {"username": "alice@example.eu", "uid": "u-alice", "groups": ["tenant:shop", "system:authenticated"]}
PLATFORM_USER = {"username": "carol@example.eu", "uid": "u-carol", "groups": ["platform-admins", "system:authenticated"]}

GROUPS = {
    "Pod": ("", "v1", "pods"),
    "PodTemplate": ("", "v1", "podtemplates"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Deployment": ("apps", "v1", "deployments"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "Secret": ("", "v1", "secrets"),
    "ConfigMap": ("", "v1", "configmaps"),
    "Namespace": ("", "v1", "namespaces"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "GRPCRoute": ("gateway.networking.k8s.io", "v1", "grpcroutes"),
    "XListenerSet": ("gateway.networking.x-k8s.io", "v1alpha1", "xlistenersets"),
    "Certificate": ("cert-manager.io", "v1", "certificates"),
    "CiliumClusterwideNetworkPolicy": ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies"),
}

OPTIONS = {
    "CREATE": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    "UPDATE": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    "DELETE": {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"},
    "CONNECT": None,
}


def container(name="storefront", image=GOOD_IMAGE, **extra):
    c = {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
    }
    c.update(extra)
    return c


def pod_spec(containers=None, **extra):
    spec = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers or [container()],
    }
    spec.update(extra)
    return spec


def meta(name, ns="shop-prod", tenant="shop", **extra):
    m = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": {
        TENANT: tenant, "app.kubernetes.io/name": name, "app.kubernetes.io/version": "1.4.2"}}
    m.update(extra)
    return m


def workload(kind, spec, name="storefront", ns="shop-prod"):
    group, version, _ = GROUPS[kind]
    api_version = f"{group}/{version}" if group else version
    obj = {"apiVersion": api_version, "kind": kind, "metadata": meta(name, ns)}
    template = {"metadata": {"labels": {"app.kubernetes.io/name": name, TENANT: "shop"}}, "spec": spec}
    if kind == "Pod":
        obj["spec"] = spec
    elif kind == "PodTemplate":
        obj["template"] = template
    elif kind == "CronJob":
        obj["spec"] = {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        obj["spec"] = {"selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "template": template}
        if kind == "Job":
            del obj["spec"]["selector"]
            template["spec"] = dict(spec, restartPolicy="Never")
    return obj


def review(kind, operation, obj=None, old=None, ns="shop-prod", user=SHOP_USER, sub="", name=None, req_kind=None):
    group, version, resource = GROUPS.get(kind, ("", "v1", kind.lower() + "s"))
    subject = obj if obj is not None else old
    request = {
        "uid": f"bypass-{kind.lower()}-{operation.lower()}",
        "kind": req_kind or {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": req_kind or {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name if name is not None else (subject or {}).get("metadata", {}).get("name", ""),
        "operation": operation,
        "userInfo": user,
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": OPTIONS[operation],
    }
    if sub:
        request["subResource"] = sub
    if ns:
        request["namespace"] = ns
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


CASES = {}


def case(name, rev):
    CASES[name] = rev


# --- kubectl debug: UPDATE on pods/ephemeralcontainers with a bad image -------------------------------
pod = workload("Pod", pod_spec())
debugged = copy.deepcopy(pod)
debugged["spec"]["ephemeralContainers"] = [{
    "name": "debugger-x7k2p", "image": "busybox:latest", "targetContainerName": "storefront",
    "stdin": True, "tty": True}]
case("kubectl-debug-ephemeral", review("Pod", "UPDATE", debugged, pod, sub="ephemeralcontainers"))

# kubectl debug node/... --copy-to style: a new Pod sharing the host namespaces and mounting /.
node_debug = workload("Pod", pod_spec(
    [container("debugger", GOOD_IMAGE)], hostNetwork=True, hostPID=True, hostIPC=True,
    volumes=[{"name": "host-root", "hostPath": {"path": "/"}}]), name="node-debugger")
case("kubectl-debug-node", review("Pod", "CREATE", node_debug))

# --- every workload template kind: an untrusted image in an init container ----------------------------
for kind in ["Pod", "PodTemplate", "ReplicationController", "Deployment", "ReplicaSet", "StatefulSet",
             "DaemonSet", "Job", "CronJob"]:
    spec = pod_spec(initContainers=[container("setup", "docker.io/library/alpine:3.20")])
    case(f"template-{kind.lower()}", review(kind, "CREATE", workload(kind, spec)))

# --- UPDATE-only changes ---------------------------------------------------------------------------
dep = workload("Deployment", pod_spec())
swapped = copy.deepcopy(dep)
swapped["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/evil/miner:latest"
case("update-swap-image", review("Deployment", "UPDATE", swapped, dep))

escalated = copy.deepcopy(dep)
escalated["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
case("update-privileged", review("Deployment", "UPDATE", escalated, dep))

cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("storefront-config"), "data": {"LOG_LEVEL": "info"}}
unlabelled = copy.deepcopy(cm)
del unlabelled["metadata"]["labels"][TENANT]
case("update-remove-tenant-label", review("ConfigMap", "UPDATE", unlabelled, cm))

relabelled = copy.deepcopy(cm)
relabelled["metadata"]["labels"][TENANT] = "billing"
case("update-change-tenant-label", review("ConfigMap", "UPDATE", relabelled, cm))

resized = copy.deepcopy(pod)
resized["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2", "memory": "256Mi"}, "limits": {"cpu": "16", "memory": "512Mi"}}
case("pod-resize-over-limit", review("Pod", "UPDATE", resized, pod, sub="resize"))

# --- terminating objects (deletionTimestamp set) are still checked ---------------------------------------
terminating_old = copy.deepcopy(dep)
terminating_old["metadata"]["finalizers"] = ["example.eu/cleanup"]
terminating_old["metadata"]["deletionTimestamp"] = "2025-06-01T10:00:00Z"
terminating_new = copy.deepcopy(terminating_old)
terminating_new["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/evil/miner:latest"
case("terminating-deployment-image-swap", review("Deployment", "UPDATE", terminating_new, terminating_old))

terminating_secret_old = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": dict(meta("api-keys"), finalizers=["example.eu/keep"], deletionTimestamp="2025-06-01T10:00:00Z")}
terminating_secret_new = copy.deepcopy(terminating_secret_old)
terminating_secret_new["data"] = {"api-key": "c2stbGl2ZS1leGFtcGxl"}
case("terminating-secret-gets-data", review("Secret", "UPDATE", terminating_secret_new, terminating_secret_old))

# --- DELETE carries only oldObject -----------------------------------------------------------------
default_deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("default-deny"),
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
case("delete-last-default-deny", review("NetworkPolicy", "DELETE", None, default_deny))

weakened = copy.deepcopy(default_deny)
weakened["spec"]["policyTypes"] = ["Ingress"]
case("weaken-last-default-deny", review("NetworkPolicy", "UPDATE", weakened, default_deny))

ccnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "tenants-default-deny"},
        "spec": {"endpointSelector": {"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "In", "values": ["shop-dev"]}]},
                 "ingress": [{}], "egress": [{}]}}
case("delete-clusterwide-default-deny", review("CiliumClusterwideNetworkPolicy", "DELETE", None, ccnp, ns="", user=PLATFORM_USER))

billing_cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("payments-config", "billing-prod", "billing"), "data": {"a": "b"}}
case("delete-other-tenants-object", review("ConfigMap", "DELETE", None, billing_cm, ns="billing-prod"))

# --- tenancy ---------------------------------------------------------------------------------------
def namespace(name, tenant):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": f"uid-{name}", "labels": {
        TENANT: tenant, "kubernetes.io/metadata.name": name}}}

# The API server (1.20+) sets request.namespace to a Namespace's own name, for every operation.
case("tenant-relabels-namespace", review("Namespace", "UPDATE", namespace("shop-prod", "billing"), namespace("shop-prod", "shop"), ns="shop-prod"))
unlabelled_ns = namespace("shop-prod", "shop")
del unlabelled_ns["metadata"]["labels"][TENANT]
case("tenant-unlabels-namespace", review("Namespace", "UPDATE", unlabelled_ns, namespace("shop-prod", "shop"), ns="shop-prod"))
case("tenant-creates-namespace", review("Namespace", "CREATE", namespace("shop-sandbox", "shop"), ns="shop-sandbox"))
case("tenant-relabels-namespace-through-status", review("Namespace", "UPDATE", namespace("shop-prod", "billing"), namespace("shop-prod", "shop"),
                                                       ns="shop-prod", sub="status"))
case("tenant-relabels-namespace-through-finalize", review("Namespace", "UPDATE", namespace("shop-prod", "billing"), namespace("shop-prod", "shop"),
                                                         ns="shop-prod", sub="finalize"))


def system_namespace(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": f"uid-{name}", "labels": {
        "kubernetes.io/metadata.name": name, **labels}}}


# A system namespace exempts what is in it, never its own Namespace object.
case("tenant-deletes-system-namespace", review("Namespace", "DELETE", None, system_namespace("cert-manager"), ns="cert-manager"))
case("tenant-relabels-system-namespace", review("Namespace", "UPDATE",
                                                system_namespace("monitoring", **{"pod-security.kubernetes.io/enforce": "privileged"}),
                                                system_namespace("monitoring"), ns="monitoring"))
case("tenant-claims-system-namespace", review("Namespace", "UPDATE", system_namespace("velero", **{TENANT: "shop"}),
                                              system_namespace("velero"), ns="velero", sub="status"))
case("write-in-other-tenants-namespace", review("ConfigMap", "CREATE", billing_cm, ns="billing-prod"))
sa_user = {"username": "system:serviceaccount:shop-prod:deployer", "uid": "u-sa", "groups": ["system:serviceaccounts", "system:serviceaccounts:shop-prod", "system:authenticated"]}
case("service-account-writes-other-tenant", review("ConfigMap", "CREATE", billing_cm, ns="billing-prod", user=sa_user))
ghost = copy.deepcopy(cm)
ghost["metadata"]["namespace"] = "ghost"
case("unknown-namespace", review("ConfigMap", "CREATE", ghost, ns="ghost"))
scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "payments", "namespace": "billing-prod"}, "spec": {"replicas": 0}}
scale_old = dict(scale, spec={"replicas": 3})
case("scale-other-tenants-deployment", review("Deployment", "UPDATE", scale, scale_old, ns="billing-prod", sub="scale",
                                              req_kind={"group": "autoscaling", "version": "v1", "kind": "Scale"}))
exec_opts = {"apiVersion": "v1", "kind": "PodExecOptions", "stdin": True, "tty": True, "container": "payments", "command": ["sh"]}
case("exec-into-other-tenants-pod", review("Pod", "CONNECT", exec_opts, None, ns="billing-prod", sub="exec", name="payments-0",
                                           req_kind={"group": "", "version": "v1", "kind": "PodExecOptions"}))
crb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "shop-admin"},
       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
       "subjects": [{"kind": "Group", "name": "tenant:shop", "apiGroup": "rbac.authorization.k8s.io"}]}
case("tenant-writes-cluster-scoped", review("ClusterRoleBinding", "CREATE", crb, ns=""))

# --- image reference evasions -----------------------------------------------------------------------
EVASIONS = {
    "image-implicit-docker-hub": "nginx",
    "image-suffix-host": f"harbor.example.eu.evil.io/shop/storefront@{DIGEST}",
    "image-at-host": "harbor.example.eu@evil",
    "image-userinfo": f"shop@harbor.example.eu/shop/storefront@{DIGEST}",
    "image-port": f"harbor.example.eu:443/shop/storefront@{DIGEST}",
    "image-uppercase-repository": f"harbor.example.eu/Shop/storefront@{DIGEST}",
    "image-host-in-path": f"evil.io/harbor.example.eu/shop/storefront@{DIGEST}",
    "image-other-tenant-project": f"harbor.example.eu/billing/payments@{DIGEST}",
    "image-project-prefix": f"harbor.example.eu/shopping/storefront@{DIGEST}",
    "image-tag-only": "harbor.example.eu/shop/storefront:1.4.2",
    "image-short-digest": "harbor.example.eu/shop/storefront@sha256:9f86d081",
    "image-path-traversal": f"harbor.example.eu/shop/../billing/payments@{DIGEST}",
}
for name, image in EVASIONS.items():
    case(name, review("Pod", "CREATE", workload("Pod", pod_spec([container(image=image)]))))
case("image-volume", review("Pod", "CREATE", workload("Pod", pod_spec(volumes=[{"name": "models", "image": {"reference": "ghcr.io/evil/models:latest"}}]))))

# --- plaintext secrets ------------------------------------------------------------------------------
def secret(name, **extra):
    s = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta(name)}
    s.update(extra)
    return s

case("secret-string-data", review("Secret", "CREATE", secret("storefront-db", stringData={"password": "correct-horse-battery-staple"})))
case("secret-data", review("Secret", "CREATE", secret("storefront-db", data={"password": "Y29ycmVjdC1ob3JzZQ=="})))
forged = secret("storefront-db", data={"password": "Y29ycmVjdC1ob3JzZQ=="})
forged["metadata"]["labels"]["reconcile.external-secrets.io/managed"] = "true"
forged["metadata"]["annotations"] = {"reconcile.external-secrets.io/data-hash": "0d3b8f"}
forged["metadata"]["ownerReferences"] = [{"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret", "name": "storefront-db", "uid": "x", "controller": True}]
case("secret-forged-eso-markers", review("Secret", "CREATE", forged))
fake_helm = secret("sh.helm.release.v1.storefront.v1", type="helm.sh/release.v1", data={"release": "cGFzc3dvcmQ9aHVudGVyMg=="})
fake_helm["metadata"]["labels"]["owner"] = "helm"
case("secret-fake-helm-release", review("Secret", "CREATE", fake_helm))
case("secret-fake-tls-cert-manager", review("Secret", "CREATE", secret(
    "storefront-tls", type="kubernetes.io/tls", data={"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
    metadata=dict(meta("storefront-tls"), annotations={"cert-manager.io/certificate-name": "storefront-tls"}))))

literal = pod_spec([container(env=[{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "value": "correct-horse-battery-staple"}])])
case("env-literal-password", review("Deployment", "CREATE", workload("Deployment", literal)))
ref = pod_spec([container(env=[{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "storefront-db", "key": "password"}}}])])
case("env-secret-key-ref", review("Deployment", "CREATE", workload("Deployment", ref)))
jwt = pod_spec([container(env=[{"name": "UPSTREAM_HEADER", "value": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzaG9wIn0.4pcPyMD09olPSyXnrXCjTwXyr4BsezdI1AVTmud2fU4"}])])
case("env-literal-jwt-innocent-name", review("Deployment", "CREATE", workload("Deployment", jwt)))
case("env-camelcase-password", review("Deployment", "CREATE", workload("Deployment", pod_spec([container(env=[
    {"name": "dbPassword", "value": "correct-horse-battery-staple"}])]))))
case("configmap-camelcase-credential", review("ConfigMap", "CREATE", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("storefront-config"),
                                                                      "data": {"dbPassword": "correct-horse-battery-staple"}}))
# `dbPassword: |` (a block scalar) ends in a newline.
case("configmap-block-scalar-credential", review("ConfigMap", "CREATE", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("storefront-config"),
                                                                         "data": {"db-password": "correct-horse-battery-staple\n"}}))
# base64 of a PEM private key wrapped at 76 columns, as `base64` prints it; the API server's decoder skips
# the line breaks.
_pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
_b64 = base64.b64encode(_pem.encode()).decode()
case("configmap-wrapped-binary-private-key", review("ConfigMap", "CREATE", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("signing"),
    "binaryData": {"signing.der": "\n".join(_b64[i:i + 12] for i in range(0, len(_b64), 12))}}))
case("configmap-private-key", review("ConfigMap", "CREATE", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("signing"),
                                                             "data": {"signing.pem": "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBg...\n-----END PRIVATE KEY-----\n"}}))

# --- ingress ----------------------------------------------------------------------------------------
def ingress(hosts, tls=True, issuer=True, ns="shop-prod", name="storefront"):
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(name, ns), "spec": {
        "ingressClassName": "nginx",
        "rules": [{"host": h, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"number": 80}}}}]}} for h in hosts]}}
    if tls:
        ing["spec"]["tls"] = [{"hosts": hosts, "secretName": f"{name}-tls"}]
    if issuer:
        ing["metadata"]["annotations"] = {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}
    return ing

case("ingress-host-collision", review("Ingress", "CREATE", ingress(["promo.shared.example.eu"])))
case("ingress-without-tls", review("Ingress", "CREATE", ingress(["shop.example.eu"], tls=False)))
case("ingress-without-issuer", review("Ingress", "CREATE", ingress(["shop.example.eu"], issuer=False)))
case("ingress-foreign-domain", review("Ingress", "CREATE", ingress(["evilshop.example.eu"])))
catch_all = ingress(["shop.example.eu"])
catch_all["spec"]["rules"].append({"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "storefront", "port": {"number": 80}}}}]}})
case("ingress-catch-all-rule", review("Ingress", "CREATE", catch_all))

def annotated(hosts, **annotations):
    ing = ingress(hosts)
    ing["metadata"]["annotations"].update(annotations)
    ing["metadata"]["annotations"] = {k: v for k, v in ing["metadata"]["annotations"].items() if v is not None}
    return ing


# cert-manager annotations that change the issuer or add names, and ingress-nginx aliases.
case("ingress-issuer-kind-cluster-issuer", review("Ingress", "CREATE", annotated(["shop.example.eu"], **{
    "cert-manager.io/cluster-issuer": None, "cert-manager.io/issuer": "internal-ca", "cert-manager.io/issuer-kind": "ClusterIssuer"})))
case("ingress-external-issuer-group", review("Ingress", "CREATE", annotated(["shop.example.eu"], **{
    "cert-manager.io/issuer-kind": "AWSPCAClusterIssuer", "cert-manager.io/issuer-group": "awspca.cert-manager.io"})))
case("ingress-common-name-foreign", review("Ingress", "CREATE", annotated(["shop.example.eu"], **{"cert-manager.io/common-name": "pay.billing.example.eu"})))
case("ingress-alt-names-foreign", review("Ingress", "CREATE", annotated(["shop.example.eu"], **{"cert-manager.io/alt-names": "www.shop.example.eu,pay.billing.example.eu"})))
case("ingress-server-alias-foreign", review("Ingress", "CREATE", annotated(["shop.example.eu"], **{"nginx.ingress.kubernetes.io/server-alias": "pay.billing.example.eu"})))


def route(kind, hostnames, parent):
    group, version, _ = GROUPS[kind]
    return {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": meta("storefront"), "spec": {
        "parentRefs": [parent], "hostnames": hostnames,
        "rules": [{"backendRefs": [{"name": "storefront", "port": 80}]}]}}


# Routes whose parent is not a Gateway, other route kinds, tenant ListenerSets.
case("httproute-listenerset-parent", review("HTTPRoute", "CREATE", route("HTTPRoute", ["shop.example.eu"], {
    "group": "gateway.networking.x-k8s.io", "kind": "XListenerSet", "name": "extra"})))
case("httproute-custom-parent", review("HTTPRoute", "CREATE", route("HTTPRoute", ["shop.example.eu"], {
    "group": "proxy.example.io", "kind": "Proxy", "name": "edge"})))
case("grpcroute-foreign-hostname", review("GRPCRoute", "CREATE", route("GRPCRoute", ["pay.billing.example.eu"], {
    "name": "public", "namespace": "gateway-system", "sectionName": "https"})))
case("listenerset-foreign-hostname", review("XListenerSet", "CREATE", {
    "apiVersion": "gateway.networking.x-k8s.io/v1alpha1", "kind": "XListenerSet", "metadata": meta("extra"), "spec": {
        "parentRef": {"name": "public", "namespace": "gateway-system"},
        "listeners": [{"name": "pay", "protocol": "HTTPS", "port": 443, "hostname": "pay.billing.example.eu",
                       "tls": {"certificateRefs": [{"name": "pay-tls"}]}}]}}))


# A Certificate ordered directly from the platform's ClusterIssuer (whose DNS-01 solver would prove any
# name of the zone) for another tenant's host.
case("certificate-foreign-dns-name", review("Certificate", "CREATE", {
    "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta("storefront-tls"), "spec": {
        "secretName": "storefront-tls", "dnsNames": ["shop.example.eu", "pay.billing.example.eu"],
        "issuerRef": {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}))


# cert-manager's HTTP-01 solver Ingress (pkg/issuer/acme/http/ingress.go), after the mutating webhook
# added the tenant label.
def solver_ingress(host):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
        "name": "cm-acme-http-solver-x7k2p", "generateName": "cm-acme-http-solver-", "namespace": "shop-prod", "uid": "uid-solver",
        "labels": {"acme.cert-manager.io/http-domain": "1152784535", "acme.cert-manager.io/http-token": "1049581337",
                   "acme.cert-manager.io/http01-solver": "true", TENANT: "shop"},
        "annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "0.0.0.0/0,::/0"},
        "ownerReferences": [{"apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge", "name": "storefront-tls-1-2837-0",
                             "uid": "uid-challenge", "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [{
            "path": "/.well-known/acme-challenge/yEaH8kq_3Wv-Ty9nZ0sPqL2xR4cB7mN1oD5fG6hJ8kM", "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": "cm-acme-http-solver-b9lpm", "port": {"number": 8089}}}}]}}]}}


case("http01-solver-shape-by-tenant", review("Ingress", "CREATE", solver_ingress("shop.example.eu")))
case("http01-solver-foreign-host", review("Ingress", "CREATE", solver_ingress("pay.billing.example.eu"), user=CERT_MANAGER))

# --- allowed controls: the compliant twins must pass -------------------------------------------------
case("allowed-compliant-deployment", review("Deployment", "CREATE", workload("Deployment", pod_spec())))
case("allowed-compliant-ingress", review("Ingress", "CREATE", ingress(["shop.example.eu", "www.shop.example.eu"])))
case("allowed-http01-solver-ingress", review("Ingress", "CREATE", solver_ingress("www.shop.example.eu"), user=CERT_MANAGER))
case("allowed-platform-creates-namespace", review("Namespace", "CREATE", namespace("shop-sandbox", "shop"), ns="shop-sandbox", user=PLATFORM_USER))
case("allowed-platform-labels-system-namespace", review("Namespace", "UPDATE",
                                                       system_namespace("monitoring", **{"pod-security.kubernetes.io/enforce": "privileged"}),
                                                       system_namespace("monitoring"), ns="monitoring", user=PLATFORM_USER))
# Digit groups starting with zero are valid Kubernetes quantities.
zeros = container(resources={"requests": {"cpu": "0.05", "memory": "0.50Gi"}, "limits": {"cpu": "0.150", "memory": "1.05Gi"}})
case("allowed-leading-zero-quantities", review("Deployment", "CREATE", workload("Deployment", pod_spec([zeros]))))

for old in HERE.glob("*.json"):
    old.unlink()
for name, rev in CASES.items():
    (HERE / f"{name}.json").write_text(json.dumps(rev, indent=2) + "\n")
print(f"{len(CASES)} reviews written to {HERE}")
