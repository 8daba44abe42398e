//! Bypass attempts against the bundled policy library (see /work/shared/design/threats.md): each
//! AdmissionReview in `testdata/policies/bypass/` (written by `generate.py` there) goes through
//! `regate eval --review`, exactly as the webhook answers it, against the cluster state in
//! `inventory.yaml`. Every attempt must be denied (exit 1, `allowed: false`) by the named policy with
//! the named reason; the compliant controls must be allowed.
//!
//! Policies are loaded from `policies/` on disk (`--no-bundled --policies policies`).

use std::process::Command;

use base64::Engine;
use rstest::rstest;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn eval(case: &str, extra: &[&str]) -> (i32, Value) {
    let (code, stdout) = eval_raw(case, extra);
    let response: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("{case}: regate eval printed no JSON ({err}):\n{stdout}"));
    (code, response)
}

fn eval_raw(case: &str, extra: &[&str]) -> (i32, String) {
    let dir = format!("{ROOT}/testdata/policies/bypass");
    let out = Command::new(env!("CARGO_BIN_EXE_regate"))
        .current_dir(ROOT)
        .args([
            "eval",
            "--no-bundled",
            "--policies",
            &format!("{ROOT}/policies"),
        ])
        .args(["--review", &format!("{dir}/{case}.json")])
        .args(["--inventory", &format!("{dir}/inventory.yaml")])
        .args(extra)
        .output()
        .expect("run regate");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 1),
        "{case}: regate eval failed:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().expect("exit code"), stdout)
}

/// The `[policy] message (field)` parts of the deny message.
fn reasons(response: &Value) -> Vec<String> {
    response["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .split("; [")
        .map(|s| {
            if s.starts_with('[') {
                s.to_string()
            } else {
                format!("[{s}")
            }
        })
        .collect()
}

#[rstest]
// Ephemeral containers: `kubectl debug` is an UPDATE on pods/ephemeralcontainers (CVE-2023-2727).
#[case::kubectl_debug_image("kubectl-debug-ephemeral", &[], "trusted-images", "container debugger-x7k2p: registry docker.io is not an allowed Harbor (harbor.example.eu) (spec.ephemeralContainers[0].image)")]
#[case::kubectl_debug_security("kubectl-debug-ephemeral", &[], "pod-security", "container debugger-x7k2p: allowPrivilegeEscalation must be false (spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation)")]
// `kubectl debug node/...`: a new pod in the host namespaces with the host's root mounted.
#[case::kubectl_debug_node_network("kubectl-debug-node", &[], "pod-security", "spec.hostNetwork must not be true")]
#[case::kubectl_debug_node_pid("kubectl-debug-node", &[], "pod-security", "spec.hostPID must not be true")]
#[case::kubectl_debug_node_hostpath("kubectl-debug-node", &[], "pod-security", "volume host-root: type hostPath is not allowed")]
// Every workload template: a rule written for spec.containers must not pass templates.
#[case::template_pod("template-pod", &[], "trusted-images", "(spec.initContainers[0].image)")]
#[case::template_podtemplate("template-podtemplate", &[], "trusted-images", "(template.spec.initContainers[0].image)")]
#[case::template_replicationcontroller("template-replicationcontroller", &[], "trusted-images", "(spec.template.spec.initContainers[0].image)")]
#[case::template_deployment("template-deployment", &[], "trusted-images", "(spec.template.spec.initContainers[0].image)")]
#[case::template_replicaset("template-replicaset", &[], "trusted-images", "(spec.template.spec.initContainers[0].image)")]
#[case::template_statefulset("template-statefulset", &[], "trusted-images", "(spec.template.spec.initContainers[0].image)")]
#[case::template_daemonset("template-daemonset", &[], "trusted-images", "(spec.template.spec.initContainers[0].image)")]
#[case::template_job("template-job", &[], "trusted-images", "(spec.template.spec.initContainers[0].image)")]
#[case::template_cronjob("template-cronjob", &[], "trusted-images", "(spec.jobTemplate.spec.template.spec.initContainers[0].image)")]
// UPDATE-only changes: created compliant, then changed.
#[case::update_swap_image("update-swap-image", &[], "trusted-images", "container storefront: registry ghcr.io is not an allowed Harbor")]
#[case::update_privileged("update-privileged", &[], "pod-security", "container storefront: privileged must not be true")]
#[case::update_remove_label("update-remove-tenant-label", &[], "tenant-isolation", "missing label regate.dev/tenant")]
#[case::update_change_label("update-change-tenant-label", &[], "tenant-isolation", r#"label regate.dev/tenant="billing" does not match tenant "shop""#)]
#[case::pod_resize("pod-resize-over-limit", &[], "resource-limits", "container storefront: limits.cpu 16 exceeds the maximum 4")]
// Terminating objects are never skipped (CVE-2023-34091).
#[case::terminating_deployment("terminating-deployment-image-swap", &[], "trusted-images", "registry docker.io is not an allowed Harbor")]
#[case::terminating_secret("terminating-secret-gets-data", &[], "no-plaintext-secrets", "Secret holds a plaintext value at data.api-key")]
// DELETE carries only oldObject.
#[case::delete_last_default_deny("delete-last-default-deny", &[], "network-policy-required", r#"deleting NetworkPolicy default-deny leaves namespace "shop-prod" without default-deny egress"#)]
#[case::weaken_last_default_deny("weaken-last-default-deny", &[], "network-policy-required", r#"changing NetworkPolicy default-deny leaves namespace "shop-prod" without default-deny egress"#)]
#[case::delete_clusterwide_default_deny("delete-clusterwide-default-deny", &[], "network-policy-required", r#"leaves namespace "shop-dev" without default-deny ingress"#)]
#[case::delete_other_tenants_object("delete-other-tenants-object", &[], "tenant-isolation", r#"tenant shop may not write in namespace "billing-prod""#)]
// Tenancy.
#[case::tenant_relabels_namespace("tenant-relabels-namespace", &[], "tenant-isolation", r#"only platform identities may change the tenant of namespace "shop-prod""#)]
#[case::tenant_unlabels_namespace("tenant-unlabels-namespace", &[], "tenant-isolation", r#"only platform identities may change the tenant of namespace "shop-prod""#)]
#[case::tenant_creates_namespace("tenant-creates-namespace", &[], "tenant-isolation", "only platform identities may create namespaces")]
#[case::write_in_other_tenant("write-in-other-tenants-namespace", &[], "tenant-isolation", r#"may not write in namespace "billing-prod" of another tenant"#)]
#[case::service_account_other_tenant("service-account-writes-other-tenant", &[], "tenant-isolation", r#"tenant shop may not write in namespace "billing-prod" of another tenant (user "system:serviceaccount:shop-prod:deployer")"#)]
#[case::unknown_namespace("unknown-namespace", &[], "tenant-isolation", r#"namespace "ghost" is not known to regate's cluster state"#)]
#[case::scale_other_tenant("scale-other-tenants-deployment", &[], "tenant-isolation", r#"may not write in namespace "billing-prod""#)]
#[case::exec_other_tenant("exec-into-other-tenants-pod", &[], "tenant-isolation", r#"may not write in namespace "billing-prod""#)]
#[case::cluster_scoped("tenant-writes-cluster-scoped", &[], "tenant-isolation", "may not write cluster-scoped ClusterRoleBinding objects")]
// A system namespace exempts what is in it, never its own Namespace object; Namespace labels change
// through the status and finalize subresources too.
#[case::tenant_deletes_system_namespace("tenant-deletes-system-namespace", &[], "tenant-isolation", r#"tenant shop may not modify system namespace "cert-manager""#)]
#[case::tenant_relabels_system_namespace("tenant-relabels-system-namespace", &[], "tenant-isolation", r#"tenant shop may not modify system namespace "monitoring""#)]
#[case::tenant_claims_system_namespace("tenant-claims-system-namespace", &[], "tenant-isolation", r#"only platform identities may assign namespace "velero" to a tenant"#)]
#[case::relabel_through_status("tenant-relabels-namespace-through-status", &[], "tenant-isolation", r#"only platform identities may change the tenant of namespace "shop-prod""#)]
#[case::relabel_through_finalize("tenant-relabels-namespace-through-finalize", &[], "tenant-isolation", r#"only platform identities may change the tenant of namespace "shop-prod""#)]
// Image references are parsed, never string-prefixed.
#[case::image_implicit_docker_hub("image-implicit-docker-hub", &[], "trusted-images", "registry docker.io is not an allowed Harbor")]
#[case::image_suffix_host("image-suffix-host", &[], "trusted-images", "registry harbor.example.eu.evil.io is not an allowed Harbor")]
#[case::image_at_host("image-at-host", &[], "trusted-images", "container storefront: invalid image reference: digest must be sha256:<64 hex> or sha512:<128 hex>")]
#[case::image_userinfo("image-userinfo", &[], "trusted-images", "invalid image reference: more than one @")]
#[case::image_port("image-port", &[], "trusted-images", "registry port 443 is not allowed; use harbor.example.eu")]
#[case::image_uppercase("image-uppercase-repository", &[], "trusted-images", r#"invalid image reference: repository component "Shop" must be lower-case"#)]
#[case::image_host_in_path("image-host-in-path", &[], "trusted-images", "registry evil.io is not an allowed Harbor")]
#[case::image_other_tenant_project("image-other-tenant-project", &[], "trusted-images", r#"Harbor project "billing" is not allowed for tenant "shop""#)]
#[case::image_project_prefix("image-project-prefix", &[], "trusted-images", r#"Harbor project "shopping" is not allowed"#)]
#[case::image_tag_only("image-tag-only", &[], "trusted-images", "container storefront: image is not pinned by digest")]
#[case::image_short_digest("image-short-digest", &[], "trusted-images", "invalid image reference: digest must be sha256:<64 hex>")]
#[case::image_path_traversal("image-path-traversal", &[], "trusted-images", r#"invalid image reference: invalid repository component "..""#)]
#[case::image_volume("image-volume", &[], "trusted-images", "volume models: registry ghcr.io is not an allowed Harbor (harbor.example.eu) (spec.volumes[0].image.reference)")]
// Plaintext secrets.
#[case::secret_string_data("secret-string-data", &[], "no-plaintext-secrets", "Secret holds a plaintext value at stringData.password")]
#[case::secret_data("secret-data", &[], "no-plaintext-secrets", "Secret holds a plaintext value at data.password")]
#[case::secret_forged_eso("secret-forged-eso-markers", &[], "no-plaintext-secrets", "Secret holds a plaintext value at data.password")]
#[case::secret_fake_helm("secret-fake-helm-release", &[], "no-plaintext-secrets", "(not valid Helm release storage)")]
#[case::secret_fake_cert_manager("secret-fake-tls-cert-manager", &[], "no-plaintext-secrets", "Secret holds a plaintext value at data.tls.key")]
#[case::env_literal("env-literal-password", &[], "no-plaintext-secrets", "container storefront: env DB_PASSWORD has a literal value; use valueFrom.secretKeyRef (spec.template.spec.containers[0].env[1].value)")]
#[case::env_jwt("env-literal-jwt-innocent-name", &[], "no-plaintext-secrets", "container storefront: env UPSTREAM_HEADER holds a literal JWT")]
#[case::configmap_private_key("configmap-private-key", &[], "no-plaintext-secrets", "ConfigMap holds a PEM private key at data.signing.pem")]
#[case::env_camel_case("env-camelcase-password", &[], "no-plaintext-secrets", "container storefront: env dbPassword has a literal value")]
#[case::configmap_camel_case("configmap-camelcase-credential", &[], "no-plaintext-secrets", "ConfigMap key dbPassword holds a literal credential")]
#[case::configmap_block_scalar("configmap-block-scalar-credential", &[], "no-plaintext-secrets", "ConfigMap key db-password holds a literal credential")]
#[case::configmap_wrapped_base64("configmap-wrapped-binary-private-key", &[], "no-plaintext-secrets", "ConfigMap holds a PEM private key at binaryData.signing.der")]
// Ingress hosts and TLS.
#[case::ingress_host_collision("ingress-host-collision", &["--config", "testdata/policies/bypass/shared-domain.yaml"], "ingress-tls", "host promo.shared.example.eu is already served for another tenant")]
#[case::ingress_without_tls("ingress-without-tls", &[], "ingress-tls", "host shop.example.eu is not covered by spec.tls[].hosts")]
#[case::ingress_without_issuer("ingress-without-issuer", &[], "ingress-tls", "Ingress needs a cert-manager.io/cluster-issuer or cert-manager.io/issuer annotation")]
#[case::ingress_foreign_domain("ingress-foreign-domain", &[], "ingress-tls", r#"host evilshop.example.eu is outside the domains of tenant "shop""#)]
#[case::ingress_catch_all("ingress-catch-all-rule", &[], "ingress-tls", "Ingress rule 1 has no host")]
// cert-manager and ingress-nginx annotations that change the issuer or serve and certify more names.
#[case::issuer_kind("ingress-issuer-kind-cluster-issuer", &[], "ingress-tls", r#"ClusterIssuer "internal-ca" is not allowed (use letsencrypt-prod, letsencrypt-staging) (metadata.annotations[cert-manager.io/issuer])"#)]
#[case::issuer_group("ingress-external-issuer-group", &[], "ingress-tls", r#"issuer group "awspca.cert-manager.io" is not allowed"#)]
#[case::common_name("ingress-common-name-foreign", &[], "ingress-tls", "host pay.billing.example.eu is outside the domains of tenant \"shop\" (shop.example.eu) (metadata.annotations[cert-manager.io/common-name])")]
#[case::alt_names("ingress-alt-names-foreign", &[], "ingress-tls", "host pay.billing.example.eu is outside the domains of tenant \"shop\" (shop.example.eu) (metadata.annotations[cert-manager.io/alt-names])")]
#[case::server_alias("ingress-server-alias-foreign", &[], "ingress-tls", "(metadata.annotations[nginx.ingress.kubernetes.io/server-alias])")]
// Gateway API: parents that are not Gateways, other route kinds, tenant ListenerSets.
#[case::listenerset_parent("httproute-listenerset-parent", &[], "ingress-tls", "XListenerSet shop-prod/extra is not known to regate's cluster state")]
#[case::custom_parent("httproute-custom-parent", &[], "ingress-tls", r#"HTTPRoute parentRef kind Proxy (group "proxy.example.io") is not allowed"#)]
#[case::grpcroute_hostname("grpcroute-foreign-hostname", &[], "ingress-tls", "host pay.billing.example.eu is outside the domains of tenant \"shop\" (shop.example.eu) (spec.hostnames[0])")]
#[case::listenerset_hostname("listenerset-foreign-hostname", &[], "ingress-tls", "host pay.billing.example.eu is outside the domains of tenant \"shop\" (shop.example.eu) (spec.listeners[0].hostname)")]
#[case::certificate_foreign_name("certificate-foreign-dns-name", &[], "ingress-tls", "host pay.billing.example.eu is outside the domains of tenant \"shop\" (shop.example.eu) (spec.dnsNames[1])")]
// cert-manager's HTTP-01 solver shape exempts only cert-manager, and only from TLS and issuer.
#[case::solver_shape_by_tenant("http01-solver-shape-by-tenant", &[], "ingress-tls", "host shop.example.eu is not covered by spec.tls[].hosts")]
#[case::solver_foreign_host("http01-solver-foreign-host", &[], "ingress-tls", "host pay.billing.example.eu is outside the domains of tenant \"shop\"")]
fn bypass_attempt_is_denied(
    #[case] case: &str,
    #[case] extra: &[&str],
    #[case] policy: &str,
    #[case] reason: &str,
) {
    let (code, response) = eval(case, extra);
    assert_eq!(
        response["response"]["allowed"], false,
        "{case}: {response:#}"
    );
    assert_eq!(code, 1, "{case}: {response:#}");
    let reasons = reasons(&response);
    let prefix = format!("[{policy}] ");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with(&prefix) && r.contains(reason)),
        "{case}: no `{prefix}...{reason}` among:\n{}",
        reasons.join("\n")
    );
    assert!(
        !reasons.iter().any(|r| r.contains("policy error")),
        "{case}: a policy failed to evaluate:\n{}",
        reasons.join("\n")
    );
}

#[rstest]
#[case::compliant_deployment("allowed-compliant-deployment")]
#[case::compliant_ingress("allowed-compliant-ingress")]
#[case::env_secret_key_ref("env-secret-key-ref")]
#[case::http01_solver_ingress("allowed-http01-solver-ingress")]
#[case::platform_creates_namespace("allowed-platform-creates-namespace")]
#[case::platform_labels_system_namespace("allowed-platform-labels-system-namespace")]
#[case::leading_zero_quantities("allowed-leading-zero-quantities")]
fn compliant_control_is_allowed(#[case] case: &str) {
    let (code, response) = eval(case, &[]);
    assert_eq!(
        response["response"]["allowed"], true,
        "{case}: {response:#}"
    );
    assert_eq!(code, 0, "{case}: {response:#}");
    assert!(
        response["response"].get("warnings").is_none(),
        "{case}: {response:#}"
    );
}

/// The mutating webhook re-adds a removed tenant label from the namespace (so the validating webhook
/// after it sees the label), and is idempotent on an object that carries it.
#[test]
fn mutation_restores_the_tenant_label() {
    let (code, response) = eval("update-remove-tenant-label", &["--endpoint", "mutate"]);
    assert_eq!(code, 0, "{response:#}");
    assert_eq!(
        response["response"]["patchType"], "JSONPatch",
        "{response:#}"
    );
    let patch = response["response"]["patch"].as_str().expect("patch");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .expect("base64 patch");
    let ops: Value = serde_json::from_slice(&decoded).expect("patch is JSON");
    assert_eq!(
        ops,
        serde_json::json!([{"op": "add", "path": "/metadata/labels/regate.dev~1tenant", "value": "shop"}])
    );
    let (_, unchanged) = eval("update-change-tenant-label", &["--endpoint", "mutate"]);
    assert!(
        unchanged["response"].get("patch").is_none(),
        "a wrong label is denied, not rewritten: {unchanged:#}"
    );
}

/// regorus's compiled VM and its interpreter give byte-identical responses on every review, at both
/// endpoints (the bundle avoids the constructs on which they disagree; see docs/policies.md).
#[test]
fn compiled_vm_and_interpreter_agree_on_every_review() {
    let mut cases: Vec<String> = std::fs::read_dir(format!("{ROOT}/testdata/policies/bypass"))
        .expect("bypass directory")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().to_string_lossy().to_string();
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 50, "{cases:?}");
    let config = ["--config", "testdata/policies/bypass/shared-domain.yaml"];
    for case in &cases {
        for endpoint in ["validate", "mutate"] {
            let args = [&config[..], &["--endpoint", endpoint]].concat();
            let vm = eval_raw(case, &args);
            let interpreter = eval_raw(case, &[&args[..], &["--interpreter"]].concat());
            assert_eq!(
                vm, interpreter,
                "{case} ({endpoint}): compiled VM and interpreter disagree"
            );
        }
    }
}
