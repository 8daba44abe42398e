//! The example tenant application against the bundled policy library, through the real binary:
//! `examples/tenant-app/compliant` has no finding at all (not even a warning), and its non-compliant twin
//! triggers every policy with the expected messages.
//!
//! The policies are loaded from `policies/` on disk (`--no-bundled --policies policies`), so the test
//! always sees the files as they are in the tree, whatever the embedded copy in the binary.

mod common;

use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check(args: &[&str]) -> (i32, Value) {
    let policies = format!("{ROOT}/policies");
    let out = Command::new(env!("CARGO_BIN_EXE_regate"))
        .current_dir(ROOT)
        .args([
            "check",
            "--no-bundled",
            "--policies",
            &policies,
            "-f",
            "json",
        ])
        .args(args)
        .output()
        .expect("run regate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "regate check printed no JSON ({err}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), report)
}

/// `(policy, action, message)` of every finding.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("policy"), s("action"), s("message"))
        })
        .collect()
}

#[test]
fn compliant_app_has_zero_findings_as_the_platform_gitops_identity() {
    let (code, report) = check(&[
        "examples/tenant-app/compliant",
        "--user",
        "argocd",
        "--group",
        "platform-admins",
    ]);
    assert_eq!(findings(&report), vec![], "{report:#}");
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    assert_eq!(report["objects"], 10);
    assert_eq!(code, 0);
}

#[test]
fn compliant_app_has_zero_findings_as_the_tenant_once_its_namespace_exists() {
    let files: Vec<String> = std::fs::read_dir(format!("{ROOT}/examples/tenant-app/compliant"))
        .expect("example directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.ends_with("00-namespace.yaml"))
        .map(|p| p.display().to_string())
        .collect();
    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.extend([
        "--user",
        "alice@example.eu",
        "--group",
        "tenant:shop",
        "--inventory",
        "examples/tenant-app/compliant/00-namespace.yaml",
    ]);
    let (code, report) = check(&args);
    assert_eq!(findings(&report), vec![], "{report:#}");
    assert_eq!(report["objects"], 9);
    assert_eq!(code, 0);
}

#[test]
fn compliant_namespace_is_denied_to_a_tenant() {
    let (code, report) = check(&[
        "examples/tenant-app/compliant/00-namespace.yaml",
        "--group",
        "tenant:shop",
    ]);
    assert_eq!(code, 1);
    let f = findings(&report);
    assert!(
        f.iter().any(|(p, _, m)| p == "tenant-isolation"
            && m.contains("only platform identities may create namespaces")),
        "{f:#?}"
    );
}

/// Every expected finding of the non-compliant twin: (policy, action, part of the message).
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "tenant-isolation",
        "deny",
        "only platform identities may create namespaces",
    ),
    (
        "tenant-isolation",
        "deny",
        r#"label regate.dev/tenant="billing" does not match tenant "shop" of namespace "shop-staging""#,
    ),
    (
        "tenant-isolation",
        "deny",
        r#"tenant shop may not write in namespace "billing-prod" of another tenant"#,
    ),
    (
        "no-plaintext-secrets",
        "deny",
        "Secret holds a plaintext value at stringData.password",
    ),
    (
        "no-plaintext-secrets",
        "deny",
        "ConfigMap holds a PEM private key at data.signing.key",
    ),
    (
        "no-plaintext-secrets",
        "deny",
        "container storefront: env DB_PASSWORD has a literal value; use valueFrom.secretKeyRef",
    ),
    (
        "no-plaintext-secrets",
        "deny",
        "container fetch: env SETTING holds a literal AWS access key",
    ),
    (
        "trusted-images",
        "deny",
        r#"container storefront: Harbor project "billing" is not allowed for tenant "shop""#,
    ),
    (
        "trusted-images",
        "deny",
        "container storefront: image is not pinned by digest",
    ),
    (
        "trusted-images",
        "deny",
        "container metrics: registry docker.io is not an allowed Harbor (harbor.example.eu)",
    ),
    (
        "trusted-images",
        "deny",
        "container fetch: registry harbor.example.eu.evil.io is not an allowed Harbor",
    ),
    (
        "resource-limits",
        "deny",
        "container storefront: limits.cpu 8 exceeds the maximum 4",
    ),
    (
        "resource-limits",
        "deny",
        "container report: limits.memory is 16 x requests.memory, above the allowed ratio 4",
    ),
    (
        "network-policy-required",
        "deny",
        r#"namespace "shop-staging" has no default-deny egress network policy"#,
    ),
    (
        "ingress-tls",
        "deny",
        "host pay.billing.example.eu is not covered by spec.tls[].hosts",
    ),
    (
        "ingress-tls",
        "deny",
        "Ingress needs a cert-manager.io/cluster-issuer or cert-manager.io/issuer annotation",
    ),
    (
        "ingress-tls",
        "deny",
        r#"host pay.billing.example.eu is outside the domains of tenant "shop" (shop.example.eu)"#,
    ),
    (
        "ingress-tls",
        "deny",
        "host pay.billing.example.eu is already served for another tenant",
    ),
    ("pod-security", "deny", "spec.hostNetwork must not be true"),
    (
        "pod-security",
        "deny",
        "container storefront: privileged must not be true",
    ),
    (
        "pod-security",
        "deny",
        "container storefront: allowPrivilegeEscalation must be false",
    ),
    (
        "pod-security",
        "deny",
        "container storefront: runAsNonRoot must be true",
    ),
    (
        "pod-security",
        "deny",
        "container storefront: capabilities.drop must include ALL",
    ),
    (
        "pod-security",
        "deny",
        "container storefront: seccompProfile.type must be RuntimeDefault or Localhost",
    ),
    (
        "pod-security",
        "warn",
        "container report: readOnlyRootFilesystem should be true",
    ),
    (
        "workload-hygiene",
        "warn",
        "container storefront has no livenessProbe",
    ),
    (
        "workload-hygiene",
        "warn",
        "container metrics has no readinessProbe",
    ),
    (
        "workload-hygiene",
        "warn",
        "missing label app.kubernetes.io/version (needed for auditing)",
    ),
];

#[test]
fn noncompliant_twin_triggers_every_policy() {
    let (code, report) = check(&[
        "examples/tenant-app/noncompliant",
        "--user",
        "alice@example.eu",
        "--group",
        "tenant:shop",
        "--inventory",
        "examples/tenant-app/cluster-state/billing.yaml",
    ]);
    assert_eq!(code, 1, "{report:#}");
    let found = findings(&report);
    let mut missing = Vec::new();
    for (policy, action, fragment) in EXPECTED {
        if !found
            .iter()
            .any(|(p, a, m)| p == policy && a == action && m.contains(fragment))
        {
            missing.push(format!("{policy} {action}: {fragment}"));
        }
    }
    assert!(
        missing.is_empty(),
        "missing findings:\n{}\n\nall findings:\n{found:#?}",
        missing.join("\n")
    );
    for policy in common::BUNDLED_POLICIES {
        assert!(
            found.iter().any(|(p, _, _)| p == policy),
            "no finding from {policy}"
        );
    }
    // No evaluation errors: every policy produced a clean answer.
    assert!(
        !found.iter().any(|(_, _, m)| m.starts_with("policy error")),
        "{found:#?}"
    );
    // No secret value ever appears in a message.
    assert!(
        !found
            .iter()
            .any(|(_, _, m)| m.contains("correct-horse") || m.contains("AKIAIOSFODNN7EXAMPLE")),
        "{found:#?}"
    );
}

/// The compiled VM and the interpreter report the same findings for both example directories.
#[test]
fn compiled_vm_and_interpreter_agree_on_the_examples() {
    let noncompliant = [
        "examples/tenant-app/noncompliant",
        "--group",
        "tenant:shop",
        "--inventory",
        "examples/tenant-app/cluster-state/billing.yaml",
    ];
    let compliant = [
        "examples/tenant-app/compliant",
        "--group",
        "platform-admins",
    ];
    for args in [&noncompliant[..], &compliant[..]] {
        let vm = check(args);
        let interpreter = check(&[args, &["--interpreter"]].concat());
        assert_eq!(vm, interpreter, "{args:?}");
    }
}
