//! `regate audit` against a real Kubernetes API server (`tests/e2e/`): objects are stored WITHOUT the
//! webhook registered, so admission never judged them; the audit then lists them in pages of 2 and
//! judges them. Checked: which objects fail which policy (a built-in kind and a CRD kind judged by a
//! policy given with `--policies`), the `skip` entries of policies that need an admission request, the
//! summary per policy, namespace and tenant, the exit code, and that `regate check` on an object's
//! manifest denies it for the same policy with the same messages (one decision everywhere); then
//! `--namespace`, the junit format, and an API group that cannot be discovered.

mod e2e_common;
mod server_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e_common::{compliant_pod_spec, namespace, wait_for, ControlPlane};
use serde_json::{json, Value as Json};

/// A policy of the test bundle that judges a CRD kind by the object alone.
const ROUTE_POLICY: &str = r#"# METADATA
# title: Routes name their hosts
# custom:
#   severity: low
#   match:
#     kinds: [{apiGroups: [gateway.networking.k8s.io], kinds: [HTTPRoute]}]
package regate.policies.route_hostnames

import data.regate.lib.k8s

deny contains {"msg": "an HTTPRoute lists its spec.hostnames", "field": "spec.hostnames"} if {
	count(object.get(k8s.obj, ["spec", "hostnames"], [])) == 0
}
"#;

/// A Pod every object policy of the bundled library accepts, or the same Pod with a privileged
/// container.
fn pod(ns: &str, name: &str, privileged: bool) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"app.kubernetes.io/name": "app", "app.kubernetes.io/version": "1.0.0"}},
        "spec": compliant_pod_spec(privileged),
    })
}

fn route(ns: &str, name: &str, hostnames: &[&str]) -> Json {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"hostnames": hostnames}})
}

const BAD_PODS: [(&str, &str); 3] = [
    ("shop-prod", "privileged-1"),
    ("shop-prod", "privileged-2"),
    ("sandbox", "privileged-3"),
];
const GOOD_PODS: [(&str, &str); 4] = [
    ("shop-prod", "good-1"),
    ("shop-prod", "good-2"),
    ("shop-prod", "good-3"),
    ("sandbox", "good-4"),
];

/// Runs the regate binary with `args`.
fn regate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regate"))
        .args(args)
        .output()
        .expect("run regate")
}

/// `regate audit` of the control plane in pages of 2 with the bundled library and `policies`.
fn audit(cp: &ControlPlane, policies: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "audit",
        "--kubeconfig",
        cp.kubeconfig.to_str().unwrap(),
        "--page-size",
        "2",
        "--policies",
        policies.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    regate(&args)
}

/// (policy, message) of the findings of `report` (json format) about `kind` `ns/name` with `rule`.
fn findings_of(
    report: &Json,
    kind: &str,
    ns: &str,
    name: &str,
    rule: &str,
) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["object"]["kind"] == kind
                && f["object"]["namespace"] == ns
                && f["object"]["name"] == name
                && f["rule"] == rule
        })
        .map(|f| {
            (
                f["policy"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn policies_of(findings: &BTreeSet<(String, String)>) -> BTreeSet<&str> {
    findings.iter().map(|(p, _)| p.as_str()).collect()
}

/// Stores the namespaces, Pods and HTTPRoutes (no webhook is registered).
fn seed(cp: &ControlPlane) {
    cp.apply(&[
        namespace("shop-prod", Some("shop")),
        namespace("sandbox", None),
    ]);
    for ns in ["shop-prod", "sandbox"] {
        wait_for(Duration::from_secs(60), "default ServiceAccount", || {
            cp.kubectl(&["get", "serviceaccount", "default", "-n", ns])
                .ok()
                .then_some(())
        });
    }
    let gateway = e2e_common::root().join("testdata/crds/gateway-api");
    cp.kubectl_ok(&["apply", "--server-side", "-f", gateway.to_str().unwrap()]);
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/httproutes.gateway.networking.k8s.io",
        "--timeout=60s",
    ]);
    let mut objects: Vec<Json> = BAD_PODS.iter().map(|(ns, n)| pod(ns, n, true)).collect();
    objects.extend(GOOD_PODS.iter().map(|(ns, n)| pod(ns, n, false)));
    objects.push(route("shop-prod", "catch-all", &[]));
    objects.push(route("shop-prod", "named", &["www.shop.example.eu"]));
    cp.apply(&objects);
}

#[test]
fn audit_judges_stored_objects_page_by_page_as_check_does() {
    let Some(cp) = ControlPlane::start() else {
        return;
    };
    seed(&cp);
    let bundle = tempfile::tempdir().unwrap();
    let policies = bundle.path().join("route-hostnames");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("policy.rego"), ROUTE_POLICY).unwrap();

    let out = audit(&cp, bundle.path(), &["-f", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deny findings exit 1:\n{stderr}"
    );
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("audit json ({e}):\n{stderr}"));

    // Pagination: 7 Pods in pages of 2; the CRD kind is discovered and listed.
    assert!(
        stderr.contains("audit: v1 Pod: 7 objects in 4 pages"),
        "{stderr}"
    );
    assert!(
        stderr.contains("audit: gateway.networking.k8s.io/v1 HTTPRoute: 2 objects in 1 pages"),
        "{stderr}"
    );

    // Which objects fail which policy.
    for (ns, name) in BAD_PODS {
        let denied = findings_of(&report, "Pod", ns, name, "deny");
        assert_eq!(
            policies_of(&denied),
            BTreeSet::from(["pod-security"]),
            "{ns}/{name}"
        );
    }
    for (ns, name) in GOOD_PODS {
        let denied = findings_of(&report, "Pod", ns, name, "deny");
        assert!(denied.is_empty(), "{ns}/{name}: {denied:?}");
    }
    assert_eq!(
        policies_of(&findings_of(
            &report,
            "HTTPRoute",
            "shop-prod",
            "catch-all",
            "deny"
        )),
        BTreeSet::from(["route-hostnames"])
    );
    assert!(findings_of(&report, "HTTPRoute", "shop-prod", "named", "deny").is_empty());

    // Policies that read the request are reported as skip, with the reason, never judged.
    let skipped = findings_of(&report, "Pod", "shop-prod", "good-1", "skip");
    let skipped_policies = policies_of(&skipped);
    for policy in [
        "tenant-isolation",
        "trusted-images",
        "no-plaintext-secrets",
        "network-policy-required",
    ] {
        assert!(skipped_policies.contains(policy), "{policy}: {skipped:?}");
    }
    assert!(
        skipped
            .iter()
            .all(|(_, m)| m.starts_with("not judged without an admission request")),
        "{skipped:?}"
    );
    let route_skips = findings_of(&report, "HTTPRoute", "shop-prod", "named", "skip");
    assert!(
        policies_of(&route_skips).contains("ingress-tls"),
        "{route_skips:?}"
    );
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "skip")
        .all(|f| f["action"] == "dryrun"));

    // The summary per policy, namespace and tenant.
    let summary = &report["audit"];
    for (table, row, denied) in [
        ("policies", "pod-security", 3),
        ("policies", "route-hostnames", 1),
        ("namespaces", "shop-prod", 3),
        ("namespaces", "sandbox", 1),
        ("tenants", "shop", 3),
        ("tenants", "(no tenant)", 1),
    ] {
        assert_eq!(
            summary[table][row]["denied_objects"], denied,
            "{table} {row}: {summary:#}"
        );
    }
    assert!(
        summary["tenants"]["shop"]["objects"].as_u64().unwrap() >= 7,
        "{summary:#}"
    );

    // One decision everywhere: `regate check` on the stored objects' manifests denies them for the
    // same policies with the same messages.
    for (kind, ns, name, policy) in [
        ("pod", "shop-prod", "privileged-1", "pod-security"),
        ("httproute", "shop-prod", "catch-all", "route-hostnames"),
    ] {
        let manifest = bundle.path().join(format!("{name}.json"));
        let object = cp.kubectl_ok(&["get", kind, name, "-n", ns, "-o", "json"]);
        std::fs::write(&manifest, object).unwrap();
        let check = regate(&[
            "check",
            "--policies",
            bundle.path().to_str().unwrap(),
            "-f",
            "json",
            manifest.to_str().unwrap(),
        ]);
        assert_eq!(
            check.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let checked: Json = serde_json::from_slice(&check.stdout).unwrap();
        let kind_name = checked["findings"][0]["object"]["kind"]
            .as_str()
            .unwrap()
            .to_string();
        let by_check: BTreeSet<_> = findings_of(&checked, &kind_name, ns, name, "deny")
            .into_iter()
            .filter(|(p, _)| p == policy)
            .collect();
        let by_audit: BTreeSet<_> = findings_of(&report, &kind_name, ns, name, "deny")
            .into_iter()
            .filter(|(p, _)| p == policy)
            .collect();
        assert!(!by_audit.is_empty(), "{name}");
        assert_eq!(by_check, by_audit, "{name}: check and audit disagree");
    }

    // The text format ends with the summary tables.
    let text = audit(&cp, bundle.path(), &["-f", "text"]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Audit summary: "), "{text}");
    let tables = &text[text.find("Audit summary: ").unwrap()..];
    let row: Vec<&str> = tables
        .lines()
        .find(|l| l.trim_start().starts_with("pod-security "))
        .unwrap_or_else(|| panic!("no pod-security row:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], ["pod-security", "3", "3"], "{text}");

    // Namespaces given: only their objects, no cluster-scoped kind.
    let out = audit(&cp, bundle.path(), &["-f", "json", "-n", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let sandbox: Json = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces: Vec<&String> = sandbox["audit"]["namespaces"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(namespaces, ["sandbox"]);
    assert_eq!(
        sandbox["audit"]["namespaces"]["sandbox"]["denied_objects"],
        1
    );
    assert!(sandbox["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["object"]["namespace"] == "sandbox"));

    // Formats without a place for the summary: the report on stdout, the tables on stderr.
    let junit = audit(&cp, bundle.path(), &["-f", "junit"]);
    assert_eq!(junit.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&junit.stdout).starts_with("<?xml"));
    assert!(String::from_utf8_lossy(&junit.stderr).contains("Audit summary: "));

    // An API group that cannot be discovered (an aggregated API without a backend) is reported and
    // exits 2; every other group is still audited.
    cp.apply(&[json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.broken.example.eu"},
        "spec": {"group": "broken.example.eu", "version": "v1beta1", "groupPriorityMinimum": 100,
                 "versionPriority": 100, "insecureSkipTLSVerify": true,
                 "service": {"name": "absent", "namespace": "default", "port": 443}}
    })]);
    let out = audit(&cp, bundle.path(), &["-f", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partial: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let errors = partial["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot discover API group \"broken.example.eu\"")),
        "{errors:?}"
    );
    assert_eq!(
        partial["audit"]["policies"]["pod-security"]["denied_objects"],
        3
    );
}

#[test]
fn an_unreadable_kubeconfig_ends_the_audit_with_exit_code_2() {
    let out = regate(&["audit", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/kubeconfig: cannot read kubeconfig"),
        "{stderr}"
    );
}
