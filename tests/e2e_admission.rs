//! regate as the webhook of a real Kubernetes API server (v1.37, `tests/e2e/`): registered with the
//! webhook configurations rendered from `charts/regate` in URL mode, running with the chart's
//! ServiceAccount and RBAC, driven by kubectl of the same release with real RBAC and impersonation.
//!
//! One control plane and one regate serve every scenario, in order, in one test: each scenario runs
//! under `catch_unwind`, so one failure does not hide the others, and the test fails listing them all.
//! The fault scenarios (regate or the API server stopped) are in `tests/e2e_faults.rs`.

mod e2e_common;
mod server_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use e2e_common::{
    compliant_pod_spec, kind_of, namespace, shop_namespace, tenant_binding, wait_for, with,
    ControlPlane, Kubectl, Regate, Scenarios,
};
use serde_json::{json, Value as Json};

/// The platform identity (tenancy.platformGroups) and a tenant of `shop`, as kubectl impersonates them.
const PLATFORM: &[&str] = &["--as=argocd", "--as-group=platform-admins"];
const TENANT: &[&str] = &["--as=alice@example.eu", "--as-group=tenant:shop"];

/// RBAC as a platform team would set it: platform-admins are cluster admins; tenant:shop administers
/// its namespaces and may create namespaces (so that regate, not RBAC, is what refuses a tenant's
/// namespace); it is also (wrongly) given `edit` in billing-prod, so that regate's tenant isolation is
/// what stands between the tenants.
fn rbac() -> Vec<Json> {
    let binding = |name: &str, ns: &str, role: &str| {
        let owner = if ns.starts_with("billing") {
            "billing"
        } else {
            "shop"
        };
        tenant_binding(name, ns, owner, role, "shop")
    };
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "platform-admins"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "platform-admins"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "namespace-creator"},
               "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "tenant-shop-namespace-creator"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "namespace-creator"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "tenant:shop"}]}),
        binding("tenant-shop-admin", "shop-prod", "admin"),
        binding("tenant-shop-admin", "shop-staging", "admin"),
        binding("tenant-shop-admin", "shop-dev", "admin"),
        binding("tenant-shop-edit", "billing-prod", "edit"),
        // `kubectl debug` patches pods/ephemeralcontainers, which the admin role does not grant.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "pod-debugger"},
               "rules": [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "patch", "update"]}]}),
        binding("tenant-shop-debug", "shop-dev", "pod-debugger"),
    ]
}

#[test]
fn regate_as_the_webhook_of_a_real_api_server() {
    let Some(cp) = ControlPlane::start() else {
        return;
    };
    let regate = Regate::install(&cp, &[]);
    cp.apply(&[
        namespace("shop-prod", Some("shop")),
        namespace("shop-staging", Some("shop")),
        namespace("shop-dev", Some("shop")),
        namespace("billing-prod", Some("billing")),
    ]);
    cp.apply(&rbac());

    let mut s = Scenarios::default();
    s.run("cluster state reaches decisions", || {
        cluster_state_reaches_decisions(&cp, &regate)
    });
    s.run("CRD installed while regate runs is watched", || {
        crd_installed_while_running_is_watched(&cp, &regate)
    });
    s.run("compliant example as the platform identity", || {
        compliant_example_as_platform(&cp, &regate)
    });
    s.run("non-compliant twin as a tenant", || {
        noncompliant_twin_as_tenant(&cp, &regate)
    });
    s.run("mutation applied by the API server", || {
        mutation_applied_by_the_api_server(&cp, &regate)
    });
    s.run("subresources and operations", || {
        subresources_and_operations(&cp, &regate)
    });
    s.run("excluded namespaces never reach regate", || {
        excluded_namespaces_never_reach_regate(&cp, &regate)
    });
    s.run("the chart's objects pass server-side dry-run", || {
        chart_objects_pass_server_dry_run(&cp, &regate)
    });
    s.finish(&format!(
        "kube-apiserver log: {}",
        cp.log("kube-apiserver.log").display()
    ));
}

/// `kubectl create --dry-run=server` of `object` as `identity`.
fn dry_run_create(cp: &ControlPlane, identity: &[&str], object: &Json) -> Kubectl {
    cp.kubectl_stdin(
        &with(
            identity,
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        ),
        Some(&object.to_string()),
    )
}

fn denied_by_regate(out: &Kubectl) -> bool {
    !out.ok()
        && out
            .stderr
            .contains("admission webhook \"validate.regate.dev\" denied the request")
}

fn tenant_deployment(ns: &str, name: &str) -> Json {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"regate.dev/tenant": "shop", "app.kubernetes.io/name": name,
                                "app.kubernetes.io/version": "1.0.0"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"regate.dev/tenant": "shop", "app.kubernetes.io/name": name,
                                        "app.kubernetes.io/version": "1.0.0"}},
                "spec": compliant_pod_spec(false)
            }
        }
    })
}

fn default_deny(ns: &str) -> Json {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "default-deny", "namespace": ns, "labels": {"regate.dev/tenant": "shop"}},
           "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
}

/// Scenario 1: what kubectl creates (namespace labels, NetworkPolicies, Ingresses) reaches regate's
/// decisions within a bounded time; the times are printed.
fn cluster_state_reaches_decisions(cp: &ControlPlane, _regate: &Regate) {
    // A tenant Deployment in shop-dev (no NetworkPolicy yet) is refused by network-policy-required.
    let deployment = tenant_deployment("shop-dev", "web");
    let out = dry_run_create(cp, TENANT, &deployment);
    assert!(denied_by_regate(&out), "{}", out.stderr);
    assert!(
        out.stderr.contains("network-policy-required"),
        "{}",
        out.stderr
    );

    // NetworkPolicy created with kubectl -> the Deployment is admitted once regate has seen it.
    cp.apply(&[default_deny("shop-dev")]);
    let (_, netpol_latency) = wait_for(
        Duration::from_secs(30),
        "NetworkPolicy in decisions",
        || dry_run_create(cp, TENANT, &deployment).ok().then_some(()),
    );
    eprintln!(
        "NetworkPolicy visible in decisions after {:.0} ms",
        netpol_latency.as_secs_f64() * 1000.0
    );

    // Namespace: a tenant's write into a namespace regate has not seen is refused (its tenant is
    // unknown); created by the platform with kubectl, the namespace reaches decisions.
    let qa = tenant_deployment("shop-qa", "ns-probe");
    let out = dry_run_create(cp, TENANT, &qa);
    assert!(!out.ok(), "no namespace shop-qa yet");
    let started = Instant::now();
    cp.apply(&[
        namespace("shop-qa", Some("shop")),
        default_deny("shop-qa"),
        tenant_binding("tenant-shop-admin", "shop-qa", "shop", "admin", "shop"),
    ]);
    let applied = started.elapsed();
    let (_, ns_latency) = wait_for(
        Duration::from_secs(30),
        "new namespace in decisions",
        || dry_run_create(cp, TENANT, &qa).ok().then_some(()),
    );
    eprintln!(
        "Namespace (with its NetworkPolicy) visible in decisions {:.0} ms after kubectl apply returned (apply took {:.0} ms)",
        ns_latency.as_secs_f64() * 1000.0,
        applied.as_secs_f64() * 1000.0
    );

    // Ingress host: once an Ingress of another namespace serves the host (here one in the platform's
    // exempt `ingress-nginx`, which has no tenant), shop may not claim it.
    let platform_ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "status-page", "namespace": "ingress-nginx"},
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": "status.shop.example.eu", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "status", "port": {"number": 80}}}}]}}]}
    });
    let shop = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop-dev", "labels": {"regate.dev/tenant": "shop"},
                     "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}},
        "spec": {"ingressClassName": "nginx",
                 "tls": [{"hosts": ["status.shop.example.eu"], "secretName": "web-tls"}],
                 "rules": [{"host": "status.shop.example.eu", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    });
    let out = dry_run_create(cp, TENANT, &shop);
    assert!(
        out.ok(),
        "shop's own host is admitted before the collision: {}",
        out.stderr
    );
    cp.apply(&[namespace("ingress-nginx", None)]);
    cp.apply(&[platform_ingress]);
    let (_, ingress_latency) = wait_for(Duration::from_secs(30), "Ingress in decisions", || {
        let out = dry_run_create(cp, TENANT, &shop);
        denied_by_regate(&out).then_some(out)
    });
    eprintln!(
        "Ingress visible in decisions after {:.0} ms",
        ingress_latency.as_secs_f64() * 1000.0
    );
    cp.kubectl_ok(&["delete", "ingress", "status-page", "-n", "ingress-nginx"]);
    for latency in [netpol_latency, ns_latency, ingress_latency] {
        assert!(latency < Duration::from_secs(10), "{latency:?}");
    }
}

/// Scenario 1 (CRDs): the CiliumNetworkPolicy CRD, installed while regate runs, is discovered and its
/// objects count as a namespace's network policy.
fn crd_installed_while_running_is_watched(cp: &ControlPlane, regate: &Regate) {
    let crds = e2e_common::root().join("testdata/crds/cilium");
    assert!(crds.exists(), "{} is missing", crds.display());
    cp.apply(&shop_namespace("shop-cilium"));
    let deployment = tenant_deployment("shop-cilium", "web");
    let out = dry_run_create(cp, TENANT, &deployment);
    assert!(
        denied_by_regate(&out),
        "no network policy yet: {}",
        out.stderr
    );

    let started = Instant::now();
    cp.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/ciliumnetworkpolicies.cilium.io",
        "--timeout=60s",
    ]);
    let established = started.elapsed();
    regate
        .server()
        .wait_log("watching optional kind", Duration::from_secs(30));
    let cnp = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "shop-cilium", "labels": {"regate.dev/tenant": "shop"}},
        "spec": {"endpointSelector": {}, "ingress": [{}], "egress": [{}]}});
    wait_for(
        Duration::from_secs(30),
        "CiliumNetworkPolicy accepted",
        || {
            cp.kubectl_stdin(&["apply", "-f", "-"], Some(&cnp.to_string()))
                .ok()
                .then_some(())
        },
    );
    let (_, latency) = wait_for(
        Duration::from_secs(30),
        "CiliumNetworkPolicy in decisions",
        || dry_run_create(cp, TENANT, &deployment).ok().then_some(()),
    );
    eprintln!(
        "CRD established after {:.1}s; CiliumNetworkPolicy counted in decisions {:.1}s after that",
        established.as_secs_f64(),
        (started.elapsed() - established).as_secs_f64()
    );
    assert!(latency < Duration::from_secs(20));

    // The Gateway API CRDs: discovered, and listed with the chart's RBAC (a forbidden list would
    // never log "synced").
    let gateway = e2e_common::root().join("testdata/crds/gateway-api");
    cp.kubectl_ok(&["apply", "--server-side", "-f", gateway.to_str().unwrap()]);
    for kind in ["Gateway", "HTTPRoute"] {
        let line = format!("cluster state kind synced kind=\"{kind}\"");
        assert!(
            regate.server().wait_log(&line, Duration::from_secs(30)),
            "{kind} not watched:\n{}",
            regate.server().stderr_text()
        );
    }
}

/// Scenario 2: `examples/tenant-app/compliant` applied by the platform identity is created, and the
/// Pods the controllers make for its Deployment are admitted by regate.
fn compliant_example_as_platform(cp: &ControlPlane, regate: &Regate) {
    let crds = e2e_common::root().join("testdata/crds/external-secrets");
    cp.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/externalsecrets.external-secrets.io",
        "--timeout=60s",
    ]);
    let out = cp.kubectl(&with(
        PLATFORM,
        &["apply", "-f", "examples/tenant-app/compliant"],
    ));
    assert!(out.ok(), "{}{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("Warning:"),
        "the compliant example draws no warning: {}",
        out.stderr
    );
    // The ReplicaSet controller creates 3 Pods (replicas: 3); regate admits them.
    let (pods, took) = wait_for(Duration::from_secs(60), "storefront Pods created", || {
        let pods = cp
            .kubectl(&[
                "get",
                "pods",
                "-n",
                "shop-prod",
                "-l",
                "app.kubernetes.io/name=storefront",
                "-o",
                "json",
            ])
            .json();
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 3).then_some(items)
    });
    eprintln!(
        "3 controller-made Pods admitted {:.1}s after apply",
        took.as_secs_f64()
    );
    let pod_decisions: Vec<Json> = regate
        .decisions()
        .into_iter()
        .filter(|d| {
            d["kind"] == "v1/Pod" && d["namespace"] == "shop-prod" && d["operation"] == "CREATE"
        })
        .collect();
    assert!(
        pod_decisions.iter().any(|d| d["user"]
            == "system:serviceaccount:kube-system:replicaset-controller"
            && d["allowed"] == true),
        "regate saw the replicaset controller's Pod creations: {pod_decisions:?}"
    );
    for pod in &pods {
        assert_eq!(pod["metadata"]["labels"]["regate.dev/tenant"], "shop");
    }
}

/// Scenario 2: the non-compliant twin, applied as a tenant: every object regate's `check` denies is
/// refused by the API server with regate's messages (the same decision in both doors); warnings reach
/// kubectl as `Warning:` lines.
fn noncompliant_twin_as_tenant(cp: &ControlPlane, regate: &Regate) {
    // The other tenant's Ingress the twin collides with, as in examples/tenant-app/cluster-state.
    cp.kubectl_ok(&[
        "apply",
        "-f",
        "examples/tenant-app/cluster-state/billing.yaml",
    ]);
    // Give regate's reflectors a moment to see it (bounded by scenario 1's measurement).
    wait_for(
        Duration::from_secs(10),
        "billing Ingress in regate's state",
        || {
            let out = regate.server().client().get("/metrics").text();
            (server_common::metric_value(&out, "regate_cluster_state_objects{kind=\"Ingress\"}")
                >= 1.0)
                .then_some(())
        },
    );
    let seen_before = regate.decisions().len();
    let out = cp.kubectl(&with(
        TENANT,
        &["create", "-f", "examples/tenant-app/noncompliant"],
    ));
    assert!(!out.ok(), "the twin is refused");
    // Which objects regate's CI door denies for the same identity and cluster state.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_regate"))
        .current_dir(e2e_common::root())
        .args([
            "check",
            "examples/tenant-app/noncompliant",
            "--user",
            "alice@example.eu",
            "--group",
            "tenant:shop",
            "--inventory",
            "examples/tenant-app/cluster-state/billing.yaml",
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    let report: Json = serde_json::from_slice(&check.stdout).expect("check JSON");
    let mut check_denied: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut check_warned: BTreeSet<String> = BTreeSet::new();
    for f in report["findings"].as_array().unwrap() {
        let key = format!(
            "{}/{}",
            f["object"]["kind"].as_str().unwrap_or(""),
            f["object"]["name"].as_str().unwrap_or("")
        );
        match f["action"].as_str() {
            Some("deny") => {
                check_denied
                    .entry(key)
                    .or_default()
                    .insert(f["policy"].as_str().unwrap().to_string());
            }
            Some("warn") => {
                check_warned.insert(key);
            }
            _ => {}
        }
    }
    // What the webhook decided, from its decision log (validate endpoint, these objects).
    let mut serve_denied: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &regate.decisions()[seen_before..] {
        if d["endpoint"] != "validate" || d["user"] != "alice@example.eu" {
            continue;
        }
        let kind = d["kind"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let key = format!("{kind}/{}", d["name"].as_str().unwrap_or(""));
        if d["allowed"] == false {
            let policies: BTreeSet<String> = d["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["enforcement"] == "deny")
                .map(|r| r["policy"].as_str().unwrap().to_string())
                .collect();
            serve_denied.insert(key, policies);
        }
    }
    eprintln!("check denied: {check_denied:?}\nserve denied: {serve_denied:?}");
    assert_eq!(
        serve_denied, check_denied,
        "the webhook and `regate check` deny the same objects for the same policies"
    );
    // kubectl shows regate's messages for each refused object.
    assert!(
        out.stderr.matches("denied the request: [").count() >= check_denied.len(),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[tenant-isolation]"), "{}", out.stderr);
    assert!(out.stderr.contains("[pod-security]"), "{}", out.stderr);
    if !check_warned.is_empty() {
        assert!(
            out.stderr.contains("Warning: "),
            "warnings appear as kubectl Warning: lines: {}",
            out.stderr
        );
    }
}

/// Scenario 3: the mutating webhook's JSONPatch is applied by the API server; the stored object carries
/// regate's defaults, and re-invocation (`reinvocationPolicy: IfNeeded`) adds nothing.
fn mutation_applied_by_the_api_server(cp: &ControlPlane, regate: &Regate) {
    let mut deployment = tenant_deployment("shop-dev", "defaults");
    // No resources at all: resource-limits fills in the defaults from regate.yaml.
    deployment["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("resources");
    // regate's mutating webhook registered a second time, after the first (configurations run in name
    // order): its call sees the object the first call patched, so it must find nothing to add.
    let mut again = regate
        .webhook_configurations()
        .into_iter()
        .find(|d| kind_of(d) == "MutatingWebhookConfiguration")
        .unwrap();
    again["metadata"] = json!({"name": "regate-zz-again"});
    again["webhooks"][0]["name"] = json!("mutate-again.regate.dev");
    cp.apply(&[again]);
    std::thread::sleep(Duration::from_secs(1));
    let out = cp.kubectl_stdin(
        &with(TENANT, &["create", "-o", "json", "-f", "-"]),
        Some(&deployment.to_string()),
    );
    cp.kubectl_ok(&["delete", "mutatingwebhookconfiguration", "regate-zz-again"]);
    assert!(out.ok(), "{}", out.stderr);
    let stored = cp
        .kubectl(&[
            "get",
            "deployment",
            "defaults",
            "-n",
            "shop-dev",
            "-o",
            "json",
        ])
        .json();
    let resources = &stored["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources,
        &json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "400m", "memory": "256Mi"}}),
        "the stored object carries regate's defaults"
    );
    let mutations: Vec<Json> = regate
        .decisions()
        .into_iter()
        .filter(|d| {
            d["endpoint"] == "mutate"
                && d["name"] == "defaults"
                && d["kind"] == "apps/v1/Deployment"
        })
        .collect();
    assert!(
        mutations.len() >= 2,
        "both registrations were called: {mutations:?}"
    );
    assert!(mutations[0]["patch_ops"].as_u64().unwrap() > 0);
    // A second call (re-invocation or a later UPDATE) finds nothing to add.
    for later in &mutations[1..] {
        assert_eq!(later["patch_ops"], 0, "re-invocation adds nothing: {later}");
    }
    // An UPDATE of the stored object: nothing to patch either, and the object is unchanged by regate.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "annotate",
            "deployment",
            "defaults",
            "-n",
            "shop-dev",
            "e2e/touched=1",
        ],
    ));
    assert!(out.ok(), "{}", out.stderr);
    let updates: Vec<Json> = regate
        .decisions()
        .into_iter()
        .filter(|d| {
            d["endpoint"] == "mutate" && d["name"] == "defaults" && d["operation"] == "UPDATE"
        })
        .collect();
    assert!(!updates.is_empty());
    assert!(updates.iter().all(|d| d["patch_ops"] == 0), "{updates:?}");
    // The Pods the controller makes from the defaulted template pass validation.
    wait_for(Duration::from_secs(60), "defaulted Pod created", || {
        let pods = cp
            .kubectl(&[
                "get",
                "pods",
                "-n",
                "shop-dev",
                "-l",
                "app.kubernetes.io/name=defaults",
                "-o",
                "json",
            ])
            .json();
        (pods["items"].as_array().map(|a| a.len()).unwrap_or(0) == 1).then_some(())
    });
}

/// Scenario 4: subresources and operations as the API server sends them.
fn subresources_and_operations(cp: &ControlPlane, regate: &Regate) {
    // A compliant Pod to work on (created by the tenant).
    let (pods, _) = wait_for(Duration::from_secs(60), "a shop-dev Pod", || {
        let pods = cp
            .kubectl(&["get", "pods", "-n", "shop-dev", "-o", "json"])
            .json();
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    });
    let pod = pods[0]["metadata"]["name"].as_str().unwrap().to_string();

    // kubectl debug with a privileged profile: pods/ephemeralcontainers, refused.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "debug",
            &pod,
            "-n",
            "shop-dev",
            "--image=harbor.example.eu/shop/debug:1.0@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "--profile=sysadmin",
            "--container=dbg",
        ],
    ));
    assert!(
        denied_by_regate(&out),
        "privileged debug container: {}{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stderr.contains("[pod-security]"), "{}", out.stderr);
    let debug = regate
        .decisions()
        .into_iter()
        .rev()
        .find(|d| d["subResource"] == "ephemeralcontainers")
        .expect("regate saw the ephemeralcontainers subresource");
    assert_eq!(debug["allowed"], false);

    // kubectl scale: deployments/scale reaches regate and is admitted.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "scale",
            "deployment",
            "web",
            "-n",
            "shop-dev",
            "--replicas=2",
        ],
    ));
    if !out.ok() && out.stderr.contains("NotFound") {
        // scenario 1 only dry-ran `web`: create it for real
        cp.kubectl_stdin(
            &with(TENANT, &["create", "-f", "-"]),
            Some(&tenant_deployment("shop-dev", "web").to_string()),
        );
    }
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "scale",
            "deployment",
            "web",
            "-n",
            "shop-dev",
            "--replicas=2",
        ],
    ));
    assert!(out.ok(), "{}", out.stderr);
    assert!(
        regate
            .decisions()
            .iter()
            .any(|d| d["subResource"] == "scale" && d["name"] == "web" && d["allowed"] == true),
        "regate saw deployments/scale"
    );

    // UPDATE removing the tenant label: refused.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "label",
            "deployment",
            "web",
            "-n",
            "shop-dev",
            "regate.dev/tenant-",
        ],
    ));
    // The mutating webhook (tenant-isolation's patch) puts the label back before validation, so the
    // API server stores the Deployment with it; were it not restored, validation would refuse it.
    assert!(out.ok() || denied_by_regate(&out), "{}", out.stderr);
    let stored = cp
        .kubectl(&["get", "deployment", "web", "-n", "shop-dev", "-o", "json"])
        .json();
    assert_eq!(
        stored["metadata"]["labels"]["regate.dev/tenant"], "shop",
        "the tenant label survives its removal"
    );
    assert!(
        regate.decisions().iter().any(|d| d["endpoint"] == "mutate"
            && d["operation"] == "UPDATE"
            && d["name"] == "web"
            && d["patch_ops"].as_u64().unwrap_or(0) > 0),
        "the mutating webhook restored the label"
    );
    // Relabelling to another tenant cannot be restored by a patch: refused.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "label",
            "--overwrite",
            "deployment",
            "web",
            "-n",
            "shop-dev",
            "regate.dev/tenant=billing",
        ],
    ));
    assert!(denied_by_regate(&out), "{}", out.stderr);
    assert!(out.stderr.contains("[tenant-isolation]"), "{}", out.stderr);

    // --dry-run=server: the decision log marks it.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "delete",
            "deployment",
            "web",
            "-n",
            "shop-dev",
            "--dry-run=server",
        ],
    ));
    assert!(out.ok(), "{}", out.stderr);
    assert!(
        regate
            .decisions()
            .iter()
            .any(|d| d["operation"] == "DELETE" && d["name"] == "web" && d["dryRun"] == true),
        "dry-run DELETE logged with dryRun: true"
    );
    // DELETE for real: admitted, the object is gone.
    let out = cp.kubectl(&with(
        TENANT,
        &[
            "delete",
            "deployment",
            "web",
            "-n",
            "shop-dev",
            "--wait=false",
        ],
    ));
    assert!(out.ok(), "{}", out.stderr);
    assert!(regate.decisions().iter().any(|d| d["operation"] == "DELETE"
        && d["name"] == "web"
        && d["dryRun"] == false
        && d["allowed"] == true));
    // A tenant deleting another tenant's object: refused by regate.
    cp.kubectl_ok(&[
        "create",
        "configmap",
        "ledger",
        "-n",
        "billing-prod",
        "--from-literal=a=b",
    ]);
    let out = cp.kubectl(&with(
        TENANT,
        &["delete", "configmap", "ledger", "-n", "billing-prod"],
    ));
    assert!(denied_by_regate(&out), "{}", out.stderr);
}

/// Scenario 5: kube-system and the release namespace never reach regate (namespaceSelector).
fn excluded_namespaces_never_reach_regate(cp: &ControlPlane, regate: &Regate) {
    let before = regate.decisions().len();
    for ns in ["kube-system", "regate-system"] {
        cp.kubectl_ok(&[
            "create",
            "configmap",
            "e2e-excluded",
            "-n",
            ns,
            "--from-literal=password=hunter2",
        ]);
        cp.kubectl_ok(&["delete", "configmap", "e2e-excluded", "-n", ns]);
    }
    // A governed namespace for comparison: regate sees it.
    cp.kubectl_ok(&[
        "create",
        "configmap",
        "e2e-governed",
        "-n",
        "shop-dev",
        "--from-literal=a=b",
    ]);
    let after = regate.decisions();
    let new = &after[before..];
    assert!(
        new.iter()
            .all(|d| d["namespace"] != "kube-system" && d["namespace"] != "regate-system"),
        "{new:?}"
    );
    assert!(new
        .iter()
        .any(|d| d["namespace"] == "shop-dev" && d["name"] == "e2e-governed"));
}

/// Scenario 7: every object the chart renders (default values, in-cluster mode) passes
/// `kubectl apply --dry-run=server`, with the CRDs it needs installed from their published schemas.
fn chart_objects_pass_server_dry_run(cp: &ControlPlane, _regate: &Regate) {
    for project in ["cert-manager", "prometheus-operator", "victoriametrics"] {
        let dir = e2e_common::root().join("testdata/crds").join(project);
        cp.kubectl_ok(&["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    }
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ]);
    let docs = e2e_common::render_chart(&[
        "metrics.serviceMonitor.enabled=true".into(),
        "metrics.prometheusRule.enabled=true".into(),
        "metrics.vmServiceScrape.enabled=true".into(),
        "metrics.vmRule.enabled=true".into(),
        "metrics.dashboard.enabled=true".into(),
        "image.digest=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            .into(),
    ]);
    let kinds: BTreeSet<&str> = docs.iter().map(kind_of).collect();
    eprintln!("chart kinds: {kinds:?}");
    for doc in &docs {
        let out = cp.kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&doc.to_string()),
        );
        assert!(
            out.ok(),
            "{} {} refused by the API server: {}",
            kind_of(doc),
            doc["metadata"]["name"],
            out.stderr
        );
    }
}
