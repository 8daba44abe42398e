//! `regate audit` against a real Kubernetes API server (`tests/e2e/`): objects are stored WITHOUT the
//! webhook registered, so admission never judged them; the audit then lists them in pages of 2 and
//! judges them. Checked: which objects fail which policy (a built-in kind and a CRD kind judged by a
//! policy given with `--policies`), the policies that need an admission request (skipped), the
//! summary per policy, namespace and tenant, the exit code, and that `regate check` on an object's
//! manifest denies it for the same policy with the same messages (one decision everywhere); then
//! `--namespace`, the junit format, and an API group that cannot be discovered. Then the policy reports
//! (`--write-reports`: owners, results, summaries, unchanged ones not rewritten, a fixed object turning
//! to pass, a deleted one's report garbage-collected, the result filter, the wgpolicyk8s API) and the
//! in-server audit of `regate serve --audit-interval` on two replicas (one audits through the Lease,
//! the other takes over when it dies; the webhook denies what the audit reported as failing).

mod e2e_common;
mod server_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e_common::{compliant_pod_spec, namespace, wait_for, ControlPlane, Regate};
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

    // Policies that read the request are never judged: stderr names each with the reason, the summary
    // counts the objects they were not judged on, and the printed report lists no line per object
    // (the policy reports carry one skip result per object, see below).
    for policy in [
        "tenant-isolation",
        "trusted-images",
        "no-plaintext-secrets",
        "network-policy-required",
    ] {
        assert!(
            stderr.contains(&format!(
                "audit: {policy}: skipped (not judged without an admission request: the policy "
            )),
            "{policy}: {stderr}"
        );
        assert!(
            report["audit"]["policies"][policy]["skip"]
                .as_u64()
                .unwrap()
                >= 7,
            "{policy}: {:#}",
            report["audit"]["policies"]
        );
        assert!(findings_of(&report, "Pod", "shop-prod", "good-1", "skip").is_empty());
    }
    assert!(
        report["audit"]["policies"]["ingress-tls"]["skip"]
            .as_u64()
            .unwrap()
            >= 2,
        "the HTTPRoutes: {:#}",
        report["audit"]["policies"]
    );
    assert!(!report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "skip"));

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

    // The text format ends with the summary tables; --output writes more formats from the same run.
    let files = tempfile::tempdir().unwrap();
    let json_file = files.path().join("audit.json");
    let junit_file = files.path().join("audit.xml");
    let text = audit(
        &cp,
        bundle.path(),
        &[
            "-f",
            "text",
            "--output",
            &format!("json={}", json_file.display()),
            "--output",
            &format!("junit={}", junit_file.display()),
        ],
    );
    assert_eq!(text.status.code(), Some(1));
    assert!(
        !String::from_utf8_lossy(&text.stderr).contains("Audit summary: "),
        "the summary is printed once, in the text report"
    );
    let from_file: Json = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    assert_eq!(
        from_file["audit"], report["audit"],
        "--output json= holds the summary"
    );
    assert_eq!(from_file["findings"], report["findings"]);
    let junit_text = std::fs::read_to_string(&junit_file).unwrap();
    assert!(
        junit_text.starts_with("<?xml") && junit_text.contains("<testcase"),
        "{junit_text}"
    );
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
    cp.kubectl_ok(&["delete", "apiservice", "v1beta1.broken.example.eu"]);

    install_report_crds(&cp);
    reports_are_written_kept_current_and_removed_with_their_objects(&cp, bundle.path());
    the_in_server_audit_runs_on_the_lease_holder_and_fails_over(&cp, bundle.path());
}

/// The report CRDs from their published schemas (testdata/crds/openreports, testdata/crds/wg-policy).
fn install_report_crds(cp: &ControlPlane) {
    for dir in ["openreports", "wg-policy"] {
        let path = e2e_common::root().join("testdata/crds").join(dir);
        cp.kubectl_ok(&["apply", "--server-side", "-f", path.to_str().unwrap()]);
    }
    for crd in [
        "reports.openreports.io",
        "clusterreports.openreports.io",
        "policyreports.wgpolicyk8s.io",
        "clusterpolicyreports.wgpolicyk8s.io",
    ] {
        cp.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=60s",
        ]);
    }
}

/// The uid of a stored object.
fn uid_of(cp: &ControlPlane, kind: &str, ns: &str, name: &str) -> String {
    cp.kubectl_ok(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
    .trim()
    .to_string()
}

/// The report `resource` (e.g. `reports.openreports.io`) named `uid` in `ns`, if there is one.
fn report_of(cp: &ControlPlane, resource: &str, ns: &str, uid: &str) -> Option<Json> {
    let out = cp.kubectl(&["get", resource, uid, "-n", ns, "-o", "json"]);
    if out.code != 0 {
        assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
        return None;
    }
    Some(serde_json::from_str(&out.stdout).unwrap())
}

/// The `result` of each result of `policy` in `report`.
fn results_of(report: &Json, policy: &str) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["policy"] == policy)
        .map(|r| r["result"].as_str().unwrap().to_string())
        .collect()
}

/// `regate audit --write-reports`: a report per object, owned by it, with scope, results and summary;
/// an unchanged report is not rewritten; a fixed object's report turns to pass; a deleted object's
/// report is removed by the garbage collector; the result filter and the wgpolicyk8s API.
fn reports_are_written_kept_current_and_removed_with_their_objects(
    cp: &ControlPlane,
    bundle: &Path,
) {
    let out = audit(cp, bundle, &["-f", "json", "--write-reports"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(" 0 failed"), "{stderr}");

    let bad = uid_of(cp, "pod", "shop-prod", "privileged-1");
    let report = report_of(cp, "reports.openreports.io", "shop-prod", &bad)
        .unwrap_or_else(|| panic!("no report for privileged-1:\n{stderr}"));
    assert_eq!(report["source"], "regate");
    assert_eq!(
        report["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "privileged-1", "uid": bad}])
    );
    assert_eq!(report["scope"]["name"], "privileged-1");
    assert_eq!(report["scope"]["namespace"], "shop-prod");
    assert_eq!(results_of(&report, "pod-security")[0], "fail");
    assert!(results_of(&report, "tenant-isolation").contains(&"skip".to_string()));
    assert!(
        report["summary"]["fail"].as_u64().unwrap() >= 1,
        "{report:#}"
    );
    let fail = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "pod-security")
        .unwrap();
    assert_eq!(fail["source"], "regate");
    assert_eq!(fail["properties"]["enforcement"], "deny");
    assert!(fail["timestamp"]["seconds"].as_u64().unwrap() > 0);

    let good = uid_of(cp, "pod", "shop-prod", "good-1");
    let report = report_of(cp, "reports.openreports.io", "shop-prod", &good).unwrap();
    assert_eq!(results_of(&report, "pod-security"), ["pass"]);
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
    let listed = cp.kubectl_ok(&["get", "reports", "-A"]);
    assert!(listed.contains(&bad) && listed.contains(&good), "{listed}");

    // Nothing changed: nothing is written again.
    let version = |uid: &str| {
        report_of(cp, "reports.openreports.io", "shop-prod", uid).unwrap()["metadata"]
            ["resourceVersion"]
            .clone()
    };
    let before = version(&bad);
    let again = audit(cp, bundle, &["-f", "json", "--write-reports"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("reports: 0 written"), "{stderr}");
    assert_eq!(version(&bad), before);

    // Fixed: the route's report turns to pass.
    let route = uid_of(cp, "httproute", "shop-prod", "catch-all");
    let before = report_of(cp, "reports.openreports.io", "shop-prod", &route).unwrap();
    assert_eq!(results_of(&before, "route-hostnames"), ["fail"]);
    cp.kubectl_ok(&[
        "patch",
        "httproute",
        "catch-all",
        "-n",
        "shop-prod",
        "--type=merge",
        "-p",
        r#"{"spec":{"hostnames":["fixed.shop.example.eu"]}}"#,
    ]);
    let fixed = audit(cp, bundle, &["-f", "json", "--write-reports"]);
    let stderr = String::from_utf8_lossy(&fixed.stderr);
    assert!(stderr.contains("reports: 1 written"), "{stderr}");
    let after = report_of(cp, "reports.openreports.io", "shop-prod", &route).unwrap();
    assert_eq!(results_of(&after, "route-hostnames"), ["pass"]);

    // Deleted: the garbage collector removes the report with its owner.
    let gone = uid_of(cp, "pod", "sandbox", "privileged-3");
    assert!(report_of(cp, "reports.openreports.io", "sandbox", &gone).is_some());
    cp.kubectl_ok(&[
        "delete",
        "pod",
        "privileged-3",
        "-n",
        "sandbox",
        "--wait=true",
    ]);
    let (_, took) = wait_for(
        Duration::from_secs(60),
        "report removed with its pod",
        || {
            report_of(cp, "reports.openreports.io", "sandbox", &gone)
                .is_none()
                .then_some(())
        },
    );
    eprintln!(
        "report garbage-collected {:.1}s after its pod",
        took.as_secs_f64()
    );

    // Only fail and warn stored: the passing pod's report goes, the failing one keeps its failures.
    let filtered = audit(
        cp,
        bundle,
        &[
            "-f",
            "json",
            "--write-reports",
            "--report-results",
            "fail,warn",
        ],
    );
    let stderr = String::from_utf8_lossy(&filtered.stderr);
    assert_eq!(filtered.status.code(), Some(1), "{stderr}");
    assert!(
        report_of(cp, "reports.openreports.io", "shop-prod", &good).is_none(),
        "{stderr}"
    );
    let report = report_of(cp, "reports.openreports.io", "shop-prod", &bad).unwrap();
    assert!(report["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result"] == "fail" || r["result"] == "warn"));
    assert_eq!(report["summary"]["pass"], 0);

    // The wgpolicyk8s API, as Kyverno and older Policy Reporter releases read it.
    let wg = audit(
        cp,
        bundle,
        &[
            "-f",
            "json",
            "--write-reports",
            "--report-api",
            "wgpolicyk8s",
        ],
    );
    assert_eq!(
        wg.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&wg.stderr)
    );
    let report = report_of(cp, "policyreports.wgpolicyk8s.io", "shop-prod", &bad).unwrap();
    assert_eq!(report["kind"], "PolicyReport");
    assert_eq!(results_of(&report, "pod-security")[0], "fail");
    assert!(cp
        .kubectl_ok(&["get", "policyreports", "-A"])
        .contains(&bad));
}

/// The lease holder's identity in `regate serve`: host name and process id.
fn identity_of(regate: &Regate) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("{}-{}", host.trim(), regate.server().child.id())
}

fn lease_holder(cp: &ControlPlane) -> String {
    cp.kubectl(&[
        "get",
        "lease",
        "regate-audit",
        "-n",
        "regate-system",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .stdout
    .trim()
    .to_string()
}

/// `regate serve --audit-interval` on two replicas with the chart's RBAC (`audit.enabled`): the one
/// holding the Lease audits, publishes the audit metrics and writes reports (of an object stored after
/// it started, which admission never saw); killed, the other takes over.
fn the_in_server_audit_runs_on_the_lease_holder_and_fails_over(cp: &ControlPlane, bundle: &Path) {
    let policies = format!("--policies={}", bundle.display());
    let args = [
        "--audit-interval=2s",
        "--audit-lease-duration=4s",
        "--audit-lease-namespace=regate-system",
        "--audit-page-size=2",
        policies.as_str(),
    ];
    let mut first = Regate::start_unregistered(cp, &args, &["audit.enabled=true"]);
    let mut second = Regate::start_unregistered(cp, &args, &["audit.enabled=true"]);
    first.wait_ready(Duration::from_secs(60));
    second.wait_ready(Duration::from_secs(60));
    let audited = |r: &Regate| {
        r.server()
            .metric("regate_audit_runs_total{result=\"success\"}")
    };
    let leader_flag = |r: &Regate| r.server().metric("regate_audit_leader");
    let ((leader_is_first, _), took) =
        wait_for(Duration::from_secs(60), "one replica audits", || {
            match (leader_flag(&first), leader_flag(&second)) {
                (1.0, 0.0) if audited(&first) >= 1.0 => Some((true, ())),
                (0.0, 1.0) if audited(&second) >= 1.0 => Some((false, ())),
                _ => None,
            }
        });
    eprintln!(
        "first in-server audit done {:.1}s after start",
        took.as_secs_f64()
    );
    let (leader, follower) = if leader_is_first {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert_eq!(lease_holder(cp), identity_of(leader));
    assert_eq!(audited(follower), 0.0, "{}", follower.server().metrics());
    let metrics = leader.server().metrics();
    assert!(
        server_common::metric_value(&metrics, "regate_audit_objects") >= 7.0,
        "{metrics}"
    );
    assert!(
        server_common::metric_value(
            &metrics,
            "regate_audit_violations{policy=\"pod-security\",namespace=\"shop-prod\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert!(
        server_common::metric_value(&metrics, "regate_audit_last_success_timestamp_seconds") > 0.0
    );

    // An object stored now, no webhook registered: only the audit sees it.
    cp.apply(&[pod("shop-prod", "privileged-late", true)]);
    let late = uid_of(cp, "pod", "shop-prod", "privileged-late");
    let (report, _) = wait_for(
        Duration::from_secs(60),
        "report of a pod stored later",
        || report_of(cp, "reports.openreports.io", "shop-prod", &late),
    );
    assert_eq!(results_of(&report, "pod-security")[0], "fail");
    // What needs an admission request is skipped in the server as in `regate audit`, not guessed.
    assert_eq!(
        results_of(&report, "tenant-isolation"),
        ["skip"],
        "{report:#}"
    );

    // The leader dies without releasing the lease: the other takes over once it expires.
    leader.kill();
    let (_, took) = wait_for(Duration::from_secs(60), "the other replica audits", || {
        (leader_flag(follower) == 1.0 && audited(follower) >= 1.0).then_some(())
    });
    eprintln!(
        "failover: the other replica audited {:.1}s after the leader died",
        took.as_secs_f64()
    );
    assert_eq!(lease_holder(cp), identity_of(follower));

    // One decision everywhere: registered as the webhook, the same replica denies a copy of the
    // object the audit reported as failing, for the same policy with the same message.
    follower.register(cp);
    let message = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "pod-security" && r["result"] == "fail")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    let copy = pod("shop-prod", "privileged-copy", true);
    let denied = cp.kubectl_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&copy.to_string()),
    );
    assert_ne!(denied.code, 0);
    assert!(
        denied.stderr.contains("denied") && denied.stderr.contains(&message),
        "the webhook's answer does not carry the audit's message {message:?}:\n{}",
        denied.stderr
    );

    // Shut down gracefully, a replica releases the lease at once.
    follower.server().sigterm();
    let (_, took) = wait_for(Duration::from_secs(30), "lease released", || {
        (lease_holder(cp) != identity_of(follower)).then_some(())
    });
    eprintln!("lease released {:.1}s after SIGTERM", took.as_secs_f64());
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
