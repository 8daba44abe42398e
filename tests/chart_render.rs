//! The Helm chart (`charts/regate`), rendered offline by `scripts/render_chart.py` (helm-python-sdk,
//! Helm's Go SDK; no helm binary) with default and non-default values, then:
//!
//! - the webhook configurations, RBAC, cert-manager wiring, Deployment and monitoring objects are
//!   asserted field by field;
//! - the real `regate check` runs over every rendering, with the chart's own rendered `regate.yaml`
//!   layered like the Deployment layers it (`--config`): the chart passes its own bundled policies with
//!   zero findings, also in `platform-guard`, a namespace that is not in `systemNamespaces` (with a
//!   negative control proving that namespace is really checked);
//! - the examples (`examples/gitlab-ci/chart`, `examples/argocd`) pass too.
//!
//! Needs `python3` with `helm_python` (`pip install helm-python-sdk`, done by `.ci/run`). Without them
//! the tests print why and pass, unless `REGATE_REQUIRE_TOOLS` is set (CI sets it): then they fail.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{code, path, regate, stderr, stdout};
use rstest::rstest;
use serde_json::{json, Value as Json};

const CHART: &str = "charts/regate";
const DIGEST: &str = "sha256:0b3a1d9e4c5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------------------------------------
// Tools and rendering

/// Whether python3 with helm_python is available; panics when it is not and `REGATE_REQUIRE_TOOLS` is set.
fn tools() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = AVAILABLE.get_or_init(|| {
        match Command::new("python3")
            .args(["-c", "import helm_python"])
            .output()
        {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "python3 cannot import helm_python: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(err) => Err(format!("python3 not runnable: {err}")),
        }
    });
    match result {
        Ok(()) => true,
        Err(why) if std::env::var_os("REGATE_REQUIRE_TOOLS").is_some() => {
            panic!("REGATE_REQUIRE_TOOLS is set but {why}; run `pip install helm-python-sdk`")
        }
        Err(why) => {
            eprintln!("skipping chart test: {why} (set REGATE_REQUIRE_TOOLS=1 to fail instead)");
            false
        }
    }
}

fn script(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(path("scripts/render_chart.py"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("run scripts/render_chart.py")
}

/// One rendering of a chart: the YAML stream and its documents as JSON.
struct Rendered {
    namespace: String,
    yaml: String,
    docs: Vec<Json>,
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Json> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Json {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "expected one {kind}, got {}", all.len());
        all[0]
    }

    fn named(&self, kind: &str, name: &str) -> &Json {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} named {name}"))
    }

    /// The `regate.yaml` the Deployment is started with (`--config=/config/regate.yaml`).
    fn regate_yaml(&self) -> String {
        let cm = self
            .all("ConfigMap")
            .into_iter()
            .find(|c| c["data"]["regate.yaml"].is_string())
            .expect("a ConfigMap with regate.yaml");
        cm["data"]["regate.yaml"].as_str().unwrap().to_string()
    }
}

/// Splits the script's output (`---` lines between documents) and parses each document.
fn parse_stream(yaml: &str) -> Vec<Json> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in yaml.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if !current.trim().is_empty() {
                let doc: Json = yaml_serde::from_str(&current)
                    .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{current}"));
                if !doc.is_null() {
                    docs.push(doc);
                }
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

fn render_chart(
    chart: &str,
    name: &str,
    namespace: &str,
    values: &[&str],
    sets: &[&str],
) -> Rendered {
    let mut args: Vec<String> = vec![
        chart.into(),
        "--name".into(),
        name.into(),
        "-n".into(),
        namespace.into(),
    ];
    for v in values {
        args.push("-f".into());
        args.push(path(v).display().to_string());
    }
    for s in sets {
        args.push("--set".into());
        args.push((*s).into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = script(&argv);
    assert_eq!(code(&out), 0, "render failed:\n{}", stderr(&out));
    let yaml = stdout(&out);
    let docs = parse_stream(&yaml);
    assert!(!docs.is_empty(), "nothing rendered");
    Rendered {
        namespace: namespace.into(),
        yaml,
        docs,
    }
}

fn render(namespace: &str, values: &[&str], sets: &[&str]) -> Rendered {
    render_chart(CHART, "regate", namespace, values, sets)
}

/// `regate check` over a rendering, as JSON, with extra arguments.
fn check(rendered: &Rendered, extra: &[&str]) -> (i32, Json, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("rendered.yaml");
    std::fs::write(&manifests, &rendered.yaml).unwrap();
    let manifests = manifests.display().to_string();
    let mut args = vec![
        "check",
        manifests.as_str(),
        "-n",
        rendered.namespace.as_str(),
        "-f",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = regate(&args, None);
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}\n{}", stdout(&out), stderr(&out)));
    (code(&out), report, dir)
}

fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A Namespace object for cluster state: `name`, owned by `tenant`.
fn namespace_manifest(name: &str, tenant: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    regate.dev/tenant: {tenant}\n    kubernetes.io/metadata.name: {name}\n"
    )
}

/// Checks a chart rendering with its own regate.yaml layered (and `extra` arguments).
fn check_with_chart_config(rendered: &Rendered, extra: &[&str]) -> (i32, Json) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_temp(dir.path(), "regate.yaml", &rendered.regate_yaml());
    let config = config.display().to_string();
    let mut args = vec!["--config", config.as_str()];
    args.extend_from_slice(extra);
    let (code, report, _keep) = check(rendered, &args);
    (code, report)
}

fn findings(report: &Json) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}/{}: {}",
                f["action"].as_str().unwrap_or(""),
                f["policy"].as_str().unwrap_or(""),
                f["object"]["kind"].as_str().unwrap_or(""),
                f["object"]["name"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Scenarios

/// How a scenario was rendered, for the assertions.
#[derive(Debug, Clone, Copy)]
struct Expect {
    cert_manager: bool,
    failure_policy: &'static str,
    warn: bool,
    monitoring: bool,
}

const DEFAULTS: Expect = Expect {
    cert_manager: true,
    failure_policy: "Fail",
    warn: false,
    monitoring: false,
};

#[rstest]
#[case::defaults("regate-system", &[], &[], DEFAULTS)]
#[case::platform_guard("platform-guard", &["charts/regate/ci/platform-guard-values.yaml"], &[], DEFAULTS)]
#[case::bring_your_own_ca(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/byo-ca-values.yaml"],
    &[],
    Expect { cert_manager: false, ..DEFAULTS }
)]
#[case::monitoring_on(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/monitoring-values.yaml"],
    &[],
    Expect { monitoring: true, ..DEFAULTS }
)]
#[case::warn_mode_failure_policy_ignore(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/warn-ignore-values.yaml"],
    &[],
    Expect { warn: true, failure_policy: "Ignore", ..DEFAULTS }
)]
#[case::other_namespace_and_set("tenant-gatekeeping", &[], &["webhook.timeoutSeconds=3", "replicaCount=5"], DEFAULTS)]
fn chart_renders_as_specified(
    #[case] namespace: &str,
    #[case] values: &[&str],
    #[case] sets: &[&str],
    #[case] expect: Expect,
) {
    if !tools() {
        return;
    }
    let r = render(namespace, values, sets);
    assert_webhooks(&r, expect);
    assert_rbac(&r);
    assert_tls_wiring(&r, expect);
    assert_deployment(&r);
    assert_network_policies(&r);
    assert_config(&r, expect);
    assert_monitoring(&r, expect);
    // Every namespaced object is in the release namespace.
    for d in &r.docs {
        if let Some(ns) = d["metadata"]["namespace"].as_str() {
            assert_eq!(ns, namespace, "{} {}", d["kind"], d["metadata"]["name"]);
        }
    }
}

fn rule_resources(rules: &Json) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for res in strings(&rule["resources"]) {
                out.insert(format!("{group}/{res}"));
            }
        }
    }
    out
}

fn assert_webhooks(r: &Rendered, expect: Expect) {
    let service = r.one("Service");
    let svc_name = service["metadata"]["name"].as_str().unwrap();
    for (kind, path) in [
        ("ValidatingWebhookConfiguration", "/validate"),
        ("MutatingWebhookConfiguration", "/mutate"),
    ] {
        let cfg = r.one(kind);
        let hooks = cfg["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 1);
        let h = &hooks[0];
        assert_eq!(h["admissionReviewVersions"], json!(["v1"]), "{kind}");
        assert_eq!(h["failurePolicy"], expect.failure_policy, "{kind}");
        assert_eq!(h["sideEffects"], "None", "{kind}");
        let timeout = h["timeoutSeconds"].as_i64().unwrap();
        assert!(
            (1..=5).contains(&timeout),
            "{kind} timeoutSeconds {timeout}"
        );
        assert_eq!(h["matchPolicy"], "Equivalent", "{kind}");
        let svc = &h["clientConfig"]["service"];
        assert_eq!(svc["name"], svc_name);
        assert_eq!(svc["namespace"], r.namespace.as_str());
        assert_eq!(svc["path"], path);
        assert_eq!(svc["port"], 443);
        // The Service's 443 reaches the container's webhook port.
        let port = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == 443)
            .expect("Service port 443");
        assert_eq!(port["targetPort"], "webhook");
        // Never the release namespace (regate cannot block its own restart) nor kube-system.
        let exprs = h["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap();
        let not_in = exprs
            .iter()
            .find(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
            .expect("NotIn on kubernetes.io/metadata.name");
        let excluded = strings(&not_in["values"]);
        assert!(excluded.contains(&r.namespace), "{excluded:?}");
        assert!(
            excluded.contains(&"kube-system".to_string()),
            "{excluded:?}"
        );
        for rule in h["rules"].as_array().unwrap() {
            assert_eq!(strings(&rule["apiVersions"]).len(), 1, "{rule}");
            assert!(!strings(&rule["operations"]).is_empty(), "{rule}");
        }
        let resources = rule_resources(&h["rules"]);
        for needed in [
            "/pods",
            "/pods/ephemeralcontainers",
            "/secrets",
            "/configmaps",
            "/services",
            "/namespaces",
            "/replicationcontrollers/scale",
            "apps/deployments",
            "apps/deployments/scale",
            "apps/statefulsets",
            "apps/statefulsets/scale",
            "apps/replicasets",
            "apps/replicasets/scale",
            "apps/daemonsets",
            "batch/jobs",
            "batch/cronjobs",
            "networking.k8s.io/ingresses",
            "networking.k8s.io/networkpolicies",
            "cilium.io/ciliumnetworkpolicies",
            "gateway.networking.k8s.io/httproutes",
        ] {
            assert!(
                resources.contains(needed),
                "{kind} misses {needed}: {resources:?}"
            );
        }
        if kind == "MutatingWebhookConfiguration" {
            assert_eq!(h["reinvocationPolicy"], "IfNeeded");
            for rule in h["rules"].as_array().unwrap() {
                for op in strings(&rule["operations"]) {
                    assert!(op == "CREATE" || op == "UPDATE", "mutating {op}: {rule}");
                }
            }
        } else {
            // tenant-isolation judges DELETE and CONNECT (kubectl exec) too.
            let ops: BTreeSet<String> = h["rules"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|rule| strings(&rule["operations"]))
                .collect();
            for op in ["CREATE", "UPDATE", "DELETE", "CONNECT"] {
                assert!(ops.contains(op), "validating misses {op}");
            }
            assert!(resources.contains("/pods/exec"));
        }
    }
}

fn assert_rbac(r: &Rendered) {
    let role = r.one("ClusterRole");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        assert_eq!(strings(&rule["verbs"]), ["get", "list", "watch"], "{rule}");
        assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
        for group in strings(&rule["apiGroups"]) {
            for res in strings(&rule["resources"]) {
                granted.insert(format!("{group}/{res}"));
            }
        }
    }
    // Exactly what src/cluster/kube_source.rs watches.
    let expected: BTreeSet<String> = [
        "/namespaces",
        "networking.k8s.io/networkpolicies",
        "networking.k8s.io/ingresses",
        "cilium.io/ciliumnetworkpolicies",
        "cilium.io/ciliumclusterwidenetworkpolicies",
        "gateway.networking.k8s.io/gateways",
        "gateway.networking.k8s.io/httproutes",
        "gateway.networking.k8s.io/grpcroutes",
        "gateway.networking.k8s.io/tlsroutes",
        "gateway.networking.k8s.io/listenersets",
        "gateway.networking.x-k8s.io/xlistenersets",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(granted, expected);
    let source = std::fs::read_to_string(path("src/cluster/kube_source.rs")).unwrap();
    for res in &expected {
        let plural = res.rsplit('/').next().unwrap();
        assert!(
            source.contains(&format!("plural: \"{plural}\"")),
            "{plural} is not watched"
        );
    }
    assert!(r.all("Role").is_empty() && r.all("RoleBinding").is_empty());
    let binding = r.one("ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let sa = r.one("ServiceAccount");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], r.namespace.as_str());
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(
        pod["automountServiceAccountToken"], true,
        "cluster state needs the token"
    );
}

fn tls_secret_of_deployment(r: &Rendered) -> String {
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    let tls_dir = args
        .iter()
        .find_map(|a| a.strip_prefix("--tls-dir="))
        .expect("--tls-dir");
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == tls_dir)
        .expect("a volume mounted at --tls-dir");
    assert_eq!(mount["readOnly"], true);
    assert!(
        mount.get("subPath").is_none(),
        "subPath mounts never see rotation"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    volume["secret"]["secretName"].as_str().unwrap().to_string()
}

fn assert_tls_wiring(r: &Rendered, expect: Expect) {
    let certs = r.all("Certificate");
    let issuers = r.all("Issuer");
    let validating = r.one("ValidatingWebhookConfiguration");
    let mutating = r.one("MutatingWebhookConfiguration");
    if !expect.cert_manager {
        assert!(certs.is_empty() && issuers.is_empty());
        assert_eq!(tls_secret_of_deployment(r), "regate-serving-tls");
        for cfg in [validating, mutating] {
            assert!(cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_null());
            assert!(cfg["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .unwrap()
                .starts_with("LS0tLS1CRUdJTi"));
        }
        return;
    }
    assert_eq!(certs.len(), 2);
    assert_eq!(issuers.len(), 2);
    let self_signed = issuers
        .iter()
        .find(|i| i["spec"]["selfSigned"].is_object())
        .expect("self-signed Issuer");
    let ca_issuer = issuers
        .iter()
        .find(|i| i["spec"]["ca"].is_object())
        .expect("CA Issuer");
    let ca_cert = certs
        .iter()
        .find(|c| c["spec"]["isCA"] == true)
        .expect("CA Certificate");
    let serving = certs
        .iter()
        .find(|c| c["spec"]["isCA"] != true)
        .expect("serving Certificate");
    assert_eq!(
        ca_cert["spec"]["issuerRef"]["name"],
        self_signed["metadata"]["name"]
    );
    assert_eq!(ca_cert["spec"]["issuerRef"]["kind"], "Issuer");
    assert_eq!(
        ca_issuer["spec"]["ca"]["secretName"],
        ca_cert["spec"]["secretName"]
    );
    assert_eq!(
        serving["spec"]["issuerRef"]["name"],
        ca_issuer["metadata"]["name"]
    );
    assert_eq!(serving["spec"]["issuerRef"]["kind"], "Issuer");
    for cert in [ca_cert, serving] {
        assert_eq!(cert["spec"]["privateKey"]["algorithm"], "ECDSA");
        assert_eq!(cert["spec"]["privateKey"]["size"], 256);
        assert_eq!(cert["spec"]["privateKey"]["rotationPolicy"], "Always");
        assert!(cert["spec"]["renewBefore"].is_string());
    }
    let svc = r.one("Service")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let ns = &r.namespace;
    assert_eq!(
        strings(&serving["spec"]["dnsNames"]),
        [
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local")
        ]
    );
    let inject = format!("{ns}/{}", serving["metadata"]["name"].as_str().unwrap());
    for cfg in [validating, mutating] {
        assert_eq!(
            cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            inject.as_str()
        );
        assert!(cfg["webhooks"][0]["clientConfig"]["caBundle"].is_null());
    }
    assert_eq!(
        tls_secret_of_deployment(r),
        serving["spec"]["secretName"].as_str().unwrap()
    );
}

fn seconds_arg(args: &[String], flag: &str) -> i64 {
    let v = args
        .iter()
        .find_map(|a| a.strip_prefix(&format!("{flag}=")))
        .unwrap_or_else(|| panic!("{flag} missing"));
    v.strip_suffix('s').unwrap().parse().unwrap()
}

fn assert_deployment(r: &Rendered) {
    let deploy = r.one("Deployment");
    assert!(deploy["spec"]["replicas"].as_i64().unwrap() >= 3);
    let pod = &deploy["spec"]["template"]["spec"];
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert!(psc["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert!(c["image"]
        .as_str()
        .unwrap()
        .starts_with("harbor.example.eu/platform/regate:"));
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert!(sc["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(
                !c["resources"][kind][res].is_null(),
                "resources.{kind}.{res}"
            );
        }
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["scheme"], "HTTPS", "{probe}");
        assert_eq!(get["port"], "webhook", "{probe}");
    }
    let args = strings(&c["args"]);
    assert!(
        args.iter().all(|a| a != "serve"),
        "the image's entrypoint is `regate serve`"
    );
    for flag in [
        "--addr=0.0.0.0:8443",
        "--metrics-addr=0.0.0.0:9090",
        "--config=/config/regate.yaml",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }
    // The grace period covers the readiness-false delay plus the drain bound.
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    let drain = seconds_arg(&args, "--shutdown-delay") + seconds_arg(&args, "--shutdown-timeout");
    assert!(seconds_arg(&args, "--shutdown-delay") > 0);
    assert!(grace >= drain, "grace {grace} < drain {drain}");
    // The config volume is the policies ConfigMap, mounted as a directory.
    let config_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/config")
        .expect("/config mount");
    assert!(config_mount.get("subPath").is_none());
    // Spread: anti-affinity and topology spread constraints on the pod's own labels.
    let selector = &deploy["spec"]["selector"]["matchLabels"];
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
            ["podAffinityTerm"]["labelSelector"]["matchLabels"],
        *selector
    );
    let spread = pod["topologySpreadConstraints"].as_array().unwrap();
    assert!(spread
        .iter()
        .any(|t| t["topologyKey"] == "topology.kubernetes.io/zone"));
    let pdb = r.one("PodDisruptionBudget");
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *selector);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
}

fn assert_network_policies(r: &Rendered) {
    let policies = r.all("NetworkPolicy");
    let default_deny = policies
        .iter()
        .find(|p| p["spec"]["podSelector"] == json!({}))
        .expect("default-deny NetworkPolicy");
    assert_eq!(
        default_deny["spec"]["policyTypes"],
        json!(["Ingress", "Egress"])
    );
    assert!(default_deny["spec"]["ingress"].is_null() && default_deny["spec"]["egress"].is_null());
    let own = policies
        .iter()
        .find(|p| p["spec"]["podSelector"] != json!({}))
        .expect("regate's NetworkPolicy");
    let ingress = own["spec"]["ingress"].as_array().unwrap();
    assert!(ingress.iter().any(|i| i["ports"][0]["port"] == "webhook"));
    let metrics = ingress
        .iter()
        .find(|i| i["ports"][0]["port"] == "metrics")
        .expect("metrics ingress");
    assert_eq!(
        metrics["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    let egress = own["spec"]["egress"].as_array().unwrap();
    assert!(egress.iter().any(|e| e["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["port"] == 443)));
    assert!(egress.iter().any(|e| e["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["port"] == 53)));
}

fn assert_config(r: &Rendered, expect: Expect) {
    let config: Json = yaml_serde::from_str(&r.regate_yaml()).unwrap();
    assert_eq!(config["apiVersion"], "regate.dev/v1alpha1");
    assert_eq!(config["kind"], "Config");
    if expect.warn {
        assert_eq!(config["onError"], "warn");
        assert_eq!(config["enforcement"], "warn");
    } else {
        assert!(config["onError"].is_null());
        assert!(config["enforcement"].is_null());
    }
    for id in common::BUNDLED_POLICIES {
        assert!(config["policies"][id]["enforcement"].is_null(), "{id}");
    }
}

/// Metric names regate exports (src/server/metrics.rs).
fn exported_metrics() -> BTreeSet<String> {
    let source = std::fs::read_to_string(path("src/server/metrics.rs")).unwrap();
    let re = regex::Regex::new(r#""(regate_[a-z_]+)""#).unwrap();
    re.captures_iter(&source)
        .map(|c| c[1].to_string())
        .collect()
}

/// Every `regate_*` metric an expression uses must exist (histograms: minus _bucket/_sum/_count).
fn assert_metrics_exist(expr: &str, exported: &BTreeSet<String>) {
    let re = regex::Regex::new(r"regate_[a-z_]+").unwrap();
    let mut found = false;
    for m in re.find_iter(expr) {
        found = true;
        let name = m.as_str();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            exported.contains(name) || exported.contains(base),
            "{name} is not exported by regate ({expr})"
        );
    }
    assert!(found, "no regate metric in {expr}");
}

fn assert_monitoring(r: &Rendered, expect: Expect) {
    let kinds = [
        "ServiceMonitor",
        "VMServiceScrape",
        "PrometheusRule",
        "VMRule",
    ];
    if !expect.monitoring {
        for k in kinds {
            assert!(r.all(k).is_empty(), "{k} is off by default");
        }
        assert!(r
            .all("ConfigMap")
            .iter()
            .all(|c| c["data"]["regate.json"].is_null()));
        return;
    }
    let selector = &r.one("Service")["metadata"]["labels"];
    for k in ["ServiceMonitor", "VMServiceScrape"] {
        let s = r.one(k);
        let endpoint = &s["spec"]["endpoints"][0];
        assert_eq!(endpoint["port"], "metrics", "{k}");
        assert_eq!(endpoint["path"], "/metrics", "{k}");
        for (key, value) in s["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&selector[key], value, "{k} selects the Service");
        }
    }
    let exported = exported_metrics();
    for k in ["PrometheusRule", "VMRule"] {
        let rules: Vec<&Json> = r.one(k)["spec"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        let by_name = |name: &str| -> &Json {
            rules
                .iter()
                .find(|rule| rule["alert"] == name)
                .unwrap_or_else(|| panic!("{k} has no alert {name}"))
        };
        assert!(by_name("RegateAdmissionErrorRate")["expr"]
            .as_str()
            .unwrap()
            .contains("regate_admission_requests_total"));
        assert!(by_name("RegateAdmissionLatencyHigh")["expr"]
            .as_str()
            .unwrap()
            .contains("histogram_quantile(0.99"));
        assert!(by_name("RegatePolicyReloadFailing")["expr"]
            .as_str()
            .unwrap()
            .contains("regate_bundle_reload_failures_total"));
        let expiry = by_name("RegateCertificateExpiringSoon")["expr"]
            .as_str()
            .unwrap();
        assert!(expiry.contains("regate_certificate_expiry_timestamp_seconds"));
        assert!(expiry.contains(&(14 * 86400).to_string()), "{expiry}");
        for rule in &rules {
            assert_metrics_exist(rule["expr"].as_str().unwrap(), &exported);
            assert!(rule["labels"]["severity"].is_string());
        }
    }
    let dashboard_cm = r
        .all("ConfigMap")
        .into_iter()
        .find(|c| c["data"]["regate.json"].is_string())
        .expect("dashboard ConfigMap");
    assert_eq!(dashboard_cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: Json =
        serde_json::from_str(dashboard_cm["data"]["regate.json"].as_str().unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            assert_metrics_exist(target["expr"].as_str().unwrap(), &exported);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The chart against its own policies

#[rstest]
#[case::defaults_in_regate_system("regate-system", &[])]
#[case::platform_guard("platform-guard", &["charts/regate/ci/platform-guard-values.yaml"])]
#[case::platform_guard_byo_ca(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/byo-ca-values.yaml"]
)]
#[case::platform_guard_monitoring(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/monitoring-values.yaml"]
)]
#[case::platform_guard_warn(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/warn-ignore-values.yaml"]
)]
#[case::platform_guard_audit(
    "platform-guard",
    &["charts/regate/ci/platform-guard-values.yaml", "charts/regate/ci/audit-values.yaml"]
)]
fn chart_passes_its_own_policies_with_zero_findings(
    #[case] namespace: &str,
    #[case] values: &[&str],
) {
    if !tools() {
        return;
    }
    let r = render(namespace, values, &[]);
    let dir = tempfile::tempdir().unwrap();
    let ns = write_temp(
        dir.path(),
        "ns.yaml",
        &namespace_manifest(namespace, "platform"),
    );
    let ns = ns.display().to_string();
    let (code, report) = check_with_chart_config(&r, &["--inventory", &ns]);
    assert_eq!(
        findings(&report),
        Vec::<String>::new(),
        "{namespace} {values:?}"
    );
    assert_eq!(code, 0);
    assert_eq!(report["objects"].as_u64().unwrap() as usize, r.docs.len());
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{}",
        report["errors"]
    );
}

/// platform-guard is really checked: without the digest the image is denied, and without the namespace
/// in cluster state every object is (tenant-isolation; a missing tenant label would merely be patched in
/// by its mutation).
#[test]
fn platform_guard_is_not_exempt() {
    if !tools() {
        return;
    }
    let values = ["charts/regate/ci/platform-guard-values.yaml"];
    let r = render("platform-guard", &values, &["image.digest="]);
    let dir = tempfile::tempdir().unwrap();
    let ns = write_temp(
        dir.path(),
        "ns.yaml",
        &namespace_manifest("platform-guard", "platform"),
    );
    let ns = ns.display().to_string();
    let (code, report) = check_with_chart_config(&r, &["--inventory", &ns]);
    let found = findings(&report);
    assert_eq!(code, 1, "{found:#?}");
    assert_eq!(
        found,
        ["deny trusted-images Deployment/regate: container regate: image is not pinned by digest (@sha256:...)"]
    );

    let r = render("platform-guard", &values, &[]);
    let (code, report) = check_with_chart_config(&r, &[]);
    let found = findings(&report);
    assert_eq!(code, 1);
    let unknown = found
        .iter()
        .filter(|f| {
            f.contains("namespace \"platform-guard\" is not known to regate's cluster state")
        })
        .count();
    assert_eq!(
        unknown,
        r.docs
            .iter()
            .filter(|d| d["metadata"]["namespace"].is_string())
            .count()
    );
}

/// Warn mode's rendered regate.yaml really turns every denial into a warning (the non-compliant tenant
/// app: denied under enforce, admitted with warnings under warn).
#[test]
fn warn_mode_config_turns_denials_into_warnings() {
    if !tools() {
        return;
    }
    let noncompliant = path("examples/tenant-app/noncompliant")
        .display()
        .to_string();
    let inventory = path("examples/tenant-app/cluster-state/billing.yaml")
        .display()
        .to_string();
    let run = |mode: &str| -> (i32, Json) {
        let r = render("regate-system", &[], &[&format!("webhook.mode={mode}")]);
        let dir = tempfile::tempdir().unwrap();
        let config = write_temp(dir.path(), "regate.yaml", &r.regate_yaml());
        let out = regate(
            &[
                "check",
                &noncompliant,
                "--user",
                "alice@example.eu",
                "--group",
                "tenant:shop",
                "--inventory",
                &inventory,
                "--config",
                &config.display().to_string(),
                "-f",
                "json",
            ],
            None,
        );
        (code(&out), serde_json::from_slice(&out.stdout).unwrap())
    };
    let (enforce_code, enforce) = run("enforce");
    assert_eq!(enforce_code, 1);
    let denied = enforce["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "deny")
        .count();
    assert!(denied > 10, "{denied}");
    let (warn_code, warn) = run("warn");
    assert_eq!(warn_code, 0, "{:#?}", findings(&warn));
    let all = warn["findings"].as_array().unwrap();
    assert!(all.len() >= denied);
    assert!(
        all.iter().all(|f| f["action"] == "warn"),
        "{:#?}",
        findings(&warn)
    );
}

/// Custom policies from values: their own ConfigMap, mounted at their bundle paths, loaded with
/// `--policies`; the rendered files load in regate and the policy works.
#[test]
fn custom_policies_are_mounted_as_a_bundle_directory() {
    if !tools() {
        return;
    }
    let r = render(
        "regate-system",
        &["charts/regate/ci/custom-policy-values.yaml"],
        &[],
    );
    let cm = r.named("ConfigMap", "regate-policies");
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    let args = strings(&pod["containers"][0]["args"]);
    assert!(args.contains(&"--policies=/policies".to_string()));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == "regate-policies")
        .expect("policies volume");
    let dir = tempfile::tempdir().unwrap();
    for item in volume["configMap"]["items"].as_array().unwrap() {
        let text = cm["data"][item["key"].as_str().unwrap()]
            .as_str()
            .expect("item key in data");
        let target = dir.path().join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    assert!(dir.path().join("no-default-namespace/policy.rego").exists());
    let bundle = dir.path().display().to_string();
    let config = write_temp(dir.path(), "config.yaml", &r.regate_yaml());
    let pod_yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: c, image: x}]\n";
    let input = write_temp(dir.path(), "pod.yaml", pod_yaml);
    let out = regate(
        &[
            "check",
            &input.display().to_string(),
            "--policies",
            &bundle,
            "--config",
            &config.display().to_string(),
            "-f",
            "json",
        ],
        None,
    );
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    assert!(
        findings(&report)
            .iter()
            .any(|f| f.contains("no-default-namespace") && f.starts_with("warn")),
        "{:#?}",
        findings(&report)
    );
}

// ---------------------------------------------------------------------------------------------------
// Values schema and lint

#[rstest]
#[case(&["webhook.timeoutSeconds=6"], "timeoutSeconds")]
#[case(&["webhook.mode=audit"], "mode")]
#[case(&["webhook.failurePolicy=Deny"], "failurePolicy")]
#[case(&["replicaCount=0"], "replicaCount")]
#[case(&["image.digest=latest"], "digest")]
#[case(&["certManager.enabled=false"], "existingSecret")]
#[case(&["unknownKey=1"], "unknownKey")]
#[case(&["terminationGracePeriodSeconds=10"], "terminationGracePeriodSeconds")]
#[case(&["webhook.url=https://127.0.0.1:9443"], "tls.caBundle is required with webhook.url")]
#[case(&["webhook.url=http://127.0.0.1:9443", "tls.caBundle=QUJD"], "url")]
fn bad_values_are_rejected(#[case] sets: &[&str], #[case] mentions: &str) {
    if !tools() {
        return;
    }
    let mut args = vec![CHART];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = script(&args);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stderr(&out).contains(mentions), "{}", stderr(&out));
}

/// URL mode (regate outside the cluster): both webhooks call `<url>/validate` and `<url>/mutate` with
/// `tls.caBundle`, no cert-manager injection; no in-cluster workload is rendered, the ServiceAccount, its
/// RBAC and the policies ConfigMap are. The e2e tests register regate with exactly this rendering.
#[test]
fn the_background_audit_gets_its_flags_rbac_lease_and_alerts() {
    if !tools() {
        return;
    }
    let r = render(
        "regate-system",
        &[
            "charts/regate/ci/audit-values.yaml",
            "charts/regate/ci/monitoring-values.yaml",
        ],
        &[],
    );
    let container = &r.one("Deployment")["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&container["args"]);
    for flag in [
        "--audit-interval=30m",
        "--audit-page-size=500",
        "--audit-api-qps=20",
        "--audit-reports=openreports",
        "--audit-report-results=fail,warn",
        "--audit-lease-name=regate-audit",
        "--audit-lease-duration=15s",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag}: {args:?}");
    }
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);
    // Read access to every kind (never watch), the reports, and the Lease in the release namespace.
    let rules = r.one("ClusterRole")["rules"].as_array().unwrap().clone();
    let rule_for = |group: &str| {
        rules
            .iter()
            .find(|rule| strings(&rule["apiGroups"]) == [group])
            .unwrap_or_else(|| panic!("no rule for {group}"))
    };
    assert_eq!(strings(&rule_for("*")["resources"]), ["*"]);
    assert_eq!(strings(&rule_for("*")["verbs"]), ["get", "list"]);
    let reports = rule_for("openreports.io");
    assert_eq!(
        strings(&reports["resources"]),
        ["reports", "clusterreports"]
    );
    assert!(strings(&reports["verbs"]).contains(&"patch".to_string()));
    let role = r.one("Role");
    assert_eq!(role["metadata"]["namespace"], "regate-system");
    assert_eq!(strings(&role["rules"][0]["resources"]), ["leases"]);
    let binding = r.one("RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["name"],
        r.one("ServiceAccount")["metadata"]["name"]
    );
    // The audit alerts, on exported metrics.
    let exported = exported_metrics();
    let rules: Vec<&Json> = r.one("PrometheusRule")["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for name in ["RegateAuditStale", "RegateAuditNoLeader"] {
        let rule = rules
            .iter()
            .find(|rule| rule["alert"] == name)
            .unwrap_or_else(|| panic!("no alert {name}"));
        assert_metrics_exist(rule["expr"].as_str().unwrap(), &exported);
    }
    // Off (the default): none of it.
    let off = render(
        "regate-system",
        &["charts/regate/ci/monitoring-values.yaml"],
        &[],
    );
    let args = strings(&off.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(!args.iter().any(|a| a.starts_with("--audit")), "{args:?}");
    assert!(off.all("Role").is_empty());
    assert!(!off.yaml.contains("RegateAuditStale"));
}

#[test]
fn url_mode_points_the_webhooks_at_a_url_and_renders_no_workload() {
    if !tools() {
        return;
    }
    let r = render(
        "regate-system",
        &["charts/regate/ci/outside-cluster-values.yaml"],
        &[],
    );
    let ca = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqakNDQVRXZ0F3SUJBZ0lVZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2V3Q2dZSUtvWkl6ajBFQXdJd0ZqRVVNQklHQTFVRUF3d0xjbVZuWVhSbExXUmxkZz09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";
    let kinds: BTreeSet<&str> = r.docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for absent in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Certificate",
        "Issuer",
        "ServiceMonitor",
        "VMServiceScrape",
    ] {
        assert!(
            !kinds.contains(absent),
            "{absent} rendered in URL mode: {kinds:?}"
        );
    }
    for present in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
    ] {
        assert!(
            kinds.contains(present),
            "{present} missing in URL mode: {kinds:?}"
        );
    }
    for (kind, path) in [
        ("ValidatingWebhookConfiguration", "/validate"),
        ("MutatingWebhookConfiguration", "/mutate"),
    ] {
        let config = r
            .docs
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} rendered"));
        assert!(config["metadata"]["annotations"]
            .get("cert-manager.io/inject-ca-from")
            .is_none());
        let client = &config["webhooks"][0]["clientConfig"];
        assert_eq!(
            client,
            &serde_json::json!({"url": format!("https://127.0.0.1:9443{path}"), "caBundle": ca}),
            "{kind}"
        );
    }
}

#[test]
fn helm_lint_passes_with_defaults_and_every_ci_values_file() {
    if !tools() {
        return;
    }
    let out = script(&["--lint", CHART]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ci_files = common::files(&path("charts/regate/ci"), "yaml").len();
    assert!(
        stderr(&out).contains(&format!("linted {} value sets: ok", ci_files + 1)),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------------
// Examples

#[test]
fn gitlab_ci_example_chart_passes_as_its_tenant() {
    if !tools() {
        return;
    }
    let r = render_chart(
        "examples/gitlab-ci/chart",
        "storefront",
        "shop-prod",
        &[],
        &[],
    );
    assert!(r.docs.len() >= 5);
    let dir = tempfile::tempdir().unwrap();
    let ns = write_temp(
        dir.path(),
        "ns.yaml",
        &namespace_manifest("shop-prod", "shop"),
    );
    let ns = ns.display().to_string();
    let (code, report, _keep) = check(
        &r,
        &[
            "--user",
            "gitlab-ci@shop.example.eu",
            "--group",
            "tenant:shop",
            "--inventory",
            &ns,
        ],
    );
    assert_eq!(findings(&report), Vec::<String>::new());
    assert_eq!(code, 0);
}

#[test]
fn gitlab_ci_job_publishes_the_reports_regate_writes() {
    let text = std::fs::read_to_string(path("examples/gitlab-ci/.gitlab-ci.yml")).unwrap();
    let ci: Json = yaml_serde::from_str(&text).unwrap();
    let job = &ci["regate-check"];
    let script = strings(&job["script"]).join("\n");
    assert!(script.contains("helm template"));
    assert!(script.contains("--output junit=regate-junit.xml"));
    assert!(script.contains("--output gitlab=gl-code-quality-report.json"));
    assert_eq!(job["artifacts"]["reports"]["junit"], "regate-junit.xml");
    assert_eq!(
        job["artifacts"]["reports"]["codequality"],
        "gl-code-quality-report.json"
    );
    assert_eq!(job["artifacts"]["when"], "always");
    // The flags exist in this regate.
    let help = stdout(&regate(&["check", "--help"], None));
    for flag in [
        "--output",
        "--namespace",
        "--user",
        "--group",
        "--inventory",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}

#[test]
fn argocd_application_passes_and_ignores_the_injected_ca_bundle() {
    let file = path("examples/argocd/regate-application.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let app: Json = yaml_serde::from_str(&text).unwrap();
    assert_eq!(app["spec"]["source"]["path"], "charts/regate");
    let ignored = app["spec"]["ignoreDifferences"].as_array().unwrap();
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let entry = ignored.iter().find(|i| i["kind"] == kind).expect(kind);
        assert!(entry.to_string().contains("caBundle"));
    }
    assert_eq!(
        app["spec"]["source"]["helm"]["valuesObject"]["image"]["digest"],
        DIGEST
    );
    let out = regate(&["check", &file.display().to_string(), "-f", "json"], None);
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings(&report), Vec::<String>::new());
    assert_eq!(code(&out), 0);
}

/// Image verification on: keys, credentials and CA are mounted where the rendered regate.yaml points,
/// the NetworkPolicy opens egress to the registries, and the rendered configuration loads in regate
/// (with the key file present, as the Secret mount provides it).
#[test]
fn image_verification_mounts_keys_and_opens_registry_egress() {
    if !tools() {
        return;
    }
    let r = render(
        "regate-system",
        &["charts/regate/ci/image-verification-values.yaml"],
        &[],
    );
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    let mounts: Vec<(String, String)> = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, path) in [
        ("signing-keys", "/etc/regate/keys"),
        ("registry-credentials", "/etc/regate/registry"),
        ("registry-ca", "/etc/regate/registry-ca"),
    ] {
        assert!(
            mounts.contains(&(name.to_string(), path.to_string())),
            "{name} at {path}: {mounts:?}"
        );
    }
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = |name: &str| volumes.iter().find(|v| v["name"] == name).unwrap().clone();
    assert_eq!(
        volume("signing-keys")["secret"]["secretName"],
        "regate-signing-keys"
    );
    assert_eq!(
        volume("registry-credentials")["secret"]["secretName"],
        "harbor-pull"
    );
    assert_eq!(volume("registry-ca")["configMap"]["name"], "harbor-ca");

    let np = r.named("NetworkPolicy", "regate");
    let egress = np["spec"]["egress"].as_array().unwrap();
    assert!(
        egress.iter().any(
            |e| e["to"][0]["ipBlock"]["cidr"] == "10.20.0.0/16" && e["ports"][0]["port"] == 443
        ),
        "{egress:?}"
    );
    // Without verification, no registry egress.
    let plain = render("regate-system", &[], &[]);
    let egress = plain.named("NetworkPolicy", "regate")["spec"]["egress"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(egress.len(), 2, "{egress:?}");

    // The rendered configuration loads once the key file exists where the Secret would mount it.
    let config = r.regate_yaml();
    let dir = tempfile::tempdir().unwrap();
    let key_dir = dir.path().join("keys");
    std::fs::create_dir_all(&key_dir).unwrap();
    std::fs::copy(
        path("testdata/keys/rsa2048-test.pub.pem"),
        key_dir.join("platform-2026.pub"),
    )
    .unwrap();
    let config = config.replace("/etc/regate/keys", &key_dir.display().to_string());
    let config_path = write_temp(dir.path(), "regate.yaml", &config);
    let out = regate(
        &["check", "--config", &config_path.display().to_string(), "-"],
        Some(b""),
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // And a missing key file is a load error naming the key.
    std::fs::remove_file(key_dir.join("platform-2026.pub")).unwrap();
    let out = regate(
        &["check", "--config", &config_path.display().to_string(), "-"],
        Some(b""),
    );
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("imageVerification.keys.platform-2026"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------------
// The webhook rules send what the policies match

/// Whether one rendered webhook rule sends a request for `group`/`resource` (`pods`, `pods/status`) with
/// `operation` on an object of the given scope, as the API server matches rules.
fn rule_sends(rule: &Json, group: &str, resource: &str, operation: &str, cluster: bool) -> bool {
    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let group_ok = strings(&rule["apiGroups"])
        .iter()
        .any(|g| g == "*" || g == group);
    let resource_ok = strings(&rule["resources"]).iter().any(|spec| {
        let (r, s) = spec.split_once('/').unwrap_or((spec.as_str(), ""));
        (r == "*" || r == res) && (s == "*" || s == sub)
    });
    let op_ok = strings(&rule["operations"])
        .iter()
        .any(|o| o == "*" || o == operation);
    let scope = rule["scope"].as_str().unwrap_or("*");
    let scope_ok = scope == "*" || (scope == "Cluster") == cluster;
    group_ok && resource_ok && op_ok && scope_ok
}

fn webhook_sends(
    rules: &[Json],
    group: &str,
    resource: &str,
    operation: &str,
    cluster: bool,
) -> bool {
    rules
        .iter()
        .any(|r| rule_sends(r, group, resource, operation, cluster))
}

/// The resource (and whether it is cluster-scoped) of every kind a bundled policy names. Kinds of the
/// legacy `extensions` group, which no supported Kubernetes serves any more, are checked under the group
/// the API server converts them to (the webhooks use `matchPolicy: Equivalent`).
fn kind_resource(group: &str, kind: &str) -> (&'static str, &'static str, bool) {
    match (group, kind) {
        ("", "Pod") => ("", "pods", false),
        ("", "PodTemplate") => ("", "podtemplates", false),
        ("", "ReplicationController") => ("", "replicationcontrollers", false),
        ("", "Secret") => ("", "secrets", false),
        ("", "ConfigMap") => ("", "configmaps", false),
        ("", "Namespace") => ("", "namespaces", true),
        ("apps" | "extensions", "Deployment") => ("apps", "deployments", false),
        ("apps" | "extensions", "ReplicaSet") => ("apps", "replicasets", false),
        // extensions never served StatefulSets; the policies' kind selectors cross groups and kinds.
        ("apps" | "extensions", "StatefulSet") => ("apps", "statefulsets", false),
        ("apps" | "extensions", "DaemonSet") => ("apps", "daemonsets", false),
        ("batch", "Job") => ("batch", "jobs", false),
        ("batch", "CronJob") => ("batch", "cronjobs", false),
        ("networking.k8s.io" | "extensions", "Ingress") => {
            ("networking.k8s.io", "ingresses", false)
        }
        ("networking.k8s.io", "NetworkPolicy") => ("networking.k8s.io", "networkpolicies", false),
        ("cilium.io", "CiliumNetworkPolicy") => ("cilium.io", "ciliumnetworkpolicies", false),
        ("cilium.io", "CiliumClusterwideNetworkPolicy") => {
            ("cilium.io", "ciliumclusterwidenetworkpolicies", true)
        }
        ("gateway.networking.k8s.io", "HTTPRoute") => {
            ("gateway.networking.k8s.io", "httproutes", false)
        }
        ("gateway.networking.k8s.io", "GRPCRoute") => {
            ("gateway.networking.k8s.io", "grpcroutes", false)
        }
        ("gateway.networking.k8s.io", "TLSRoute") => {
            ("gateway.networking.k8s.io", "tlsroutes", false)
        }
        ("gateway.networking.k8s.io", "ListenerSet") => {
            ("gateway.networking.k8s.io", "listenersets", false)
        }
        ("cert-manager.io", "Certificate") => ("cert-manager.io", "certificates", false),
        ("cert-manager.io", "CertificateRequest") => {
            ("cert-manager.io", "certificaterequests", false)
        }
        ("gateway.networking.x-k8s.io", "XListenerSet") => {
            ("gateway.networking.x-k8s.io", "xlistenersets", false)
        }
        _ => panic!("a bundled policy matches {group}/{kind}: add its resource to kind_resource"),
    }
}

/// Every kind a bundled policy matches, with every operation the policy judges, is sent by the rendered
/// validating webhook (and CREATE/UPDATE by the mutating one); so is every subresource a policy lists and
/// every request the tenant-isolation rules are documented to judge (Namespace subresources, cluster-
/// scoped objects, CONNECT). A rule the API server never sends cannot fire in a cluster.
#[test]
fn every_kind_a_policy_matches_is_sent_by_the_webhooks() {
    if !tools() {
        return;
    }
    let r = render("regate-system", &[], &[]);
    let validating = r.one("ValidatingWebhookConfiguration")["webhooks"][0]["rules"]
        .as_array()
        .unwrap()
        .clone();
    let mutating = r.one("MutatingWebhookConfiguration")["webhooks"][0]["rules"]
        .as_array()
        .unwrap()
        .clone();
    let set = regate::policy::load(&regate::policy::LoadOptions::default())
        .expect("bundled policies load");
    let mut checked = 0;
    for policy in &set.policies {
        let m = &policy.match_spec;
        let ops: Vec<&str> = if m.operations.is_empty() || m.operations.iter().any(|o| o == "*") {
            vec!["CREATE", "UPDATE", "DELETE", "CONNECT"]
        } else {
            m.operations.iter().map(String::as_str).collect()
        };
        for sel in &m.kinds {
            for group in &sel.api_groups {
                for kind in &sel.kinds {
                    let (g, resource, cluster) = kind_resource(group, kind);
                    for op in &ops {
                        if *op == "CONNECT" {
                            continue;
                        }
                        assert!(
                            webhook_sends(&validating, g, resource, op, cluster),
                            "{}: validating webhook never sends {op} {g}/{resource} ({group}/{kind})",
                            policy.id
                        );
                        if matches!(*op, "CREATE" | "UPDATE") {
                            assert!(
                                webhook_sends(&mutating, g, resource, op, cluster),
                                "{}: mutating webhook never sends {op} {g}/{resource}",
                                policy.id
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
        // Subresources a policy names (pods/resize, pods/ephemeralcontainers): sent under the group of
        // one of its kinds.
        for spec in &m.resources {
            if spec.starts_with('*') || !spec.contains('/') {
                continue;
            }
            let sent = m.kinds.iter().flat_map(|s| s.api_groups.iter()).any(|g| {
                ops.iter()
                    .any(|op| webhook_sends(&validating, g, spec, op, false))
            });
            assert!(sent, "{}: the webhook never sends {spec}", policy.id);
        }
    }
    assert!(checked > 100, "{checked}");

    // tenant-isolation matches every kind: what its documented rules judge must be sent.
    let namespace_requests = [
        ("namespaces", "CREATE"),
        ("namespaces", "UPDATE"),
        ("namespaces", "DELETE"),
        ("namespaces/status", "UPDATE"),
        ("namespaces/finalize", "UPDATE"),
    ];
    for (resource, op) in namespace_requests {
        assert!(
            webhook_sends(&validating, "", resource, op, true),
            "{op} {resource}"
        );
    }
    assert!(webhook_sends(
        &validating,
        "",
        "pods/exec",
        "CONNECT",
        false
    ));
    assert!(webhook_sends(
        &validating,
        "apps",
        "deployments/scale",
        "UPDATE",
        false
    ));
    for (group, resource) in [
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
        ),
        ("", "persistentvolumes"),
        ("storage.k8s.io", "storageclasses"),
        ("scheduling.k8s.io", "priorityclasses"),
        ("networking.k8s.io", "ingressclasses"),
        ("gateway.networking.k8s.io", "gatewayclasses"),
        ("cert-manager.io", "clusterissuers"),
        ("external-secrets.io", "clustersecretstores"),
        ("storage.k8s.io", "csidrivers"),
        ("certificates.k8s.io", "clustertrustbundles"),
        ("resource.k8s.io", "deviceclasses"),
        ("node.k8s.io", "runtimeclasses"),
    ] {
        for op in ["CREATE", "UPDATE", "DELETE"] {
            assert!(
                webhook_sends(&validating, group, resource, op, true),
                "cluster-scoped {op} {group}/{resource} is not sent"
            );
        }
    }
    // Deliberately not sent: the review APIs (one per authenticated kubelet or webhook call, allowed by
    // tenant-isolation anyway) and what controllers, kubelets and the API server write on every node
    // start, volume attach, Service or certificate rotation.
    for (group, resource) in [
        ("authorization.k8s.io", "subjectaccessreviews"),
        ("authentication.k8s.io", "tokenreviews"),
        ("", "nodes"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "volumeattachments"),
        ("networking.k8s.io", "ipaddresses"),
        ("resource.k8s.io", "resourceslices"),
        ("certificates.k8s.io", "certificatesigningrequests"),
        ("cilium.io", "ciliumidentities"),
    ] {
        assert!(
            !webhook_sends(&validating, group, resource, "CREATE", true),
            "{group}/{resource} is sent"
        );
    }
}
