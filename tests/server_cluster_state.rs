//! Cluster state fed through the `ClusterState` trait, in process (`regate::server::start` with a
//! `SharedState` the test controls): a policy that reads `data.inventory` (`requiresInventory: true`)
//! is never evaluated against missing state. Not synced and lookup failed both yield the failure mode's
//! result with the reason; once synced the decision is the normal one; readiness follows.

mod common;
mod server_common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regate::cluster::state::{SharedState, StateError};
use regate::policy::LoadOptions;
use regate::server::{self, DecisionLogTarget, FailureMode, ServeOptions, TlsSource};
use serde_json::{json, Value as Json};
use server_common::{review, Client, TestCa};

/// A bundle with one inventory policy (the namespace must be known and carry a tenant label) and the
/// basic fixture policies.
fn bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("known-namespace")).unwrap();
    std::fs::write(
        dir.path().join("known-namespace/policy.rego"),
        r#"# METADATA
# title: Namespaces belong to a tenant
# custom:
#   severity: high
#   requiresInventory: true
#   match:
#     kinds: [{apiGroups: [""], kinds: [Pod]}]
package regate.policies.known_namespace

deny contains msg if {
	not data.inventory.cluster.v1.Namespace[input.review.namespace].metadata.labels["regate.dev/tenant"]
	msg := sprintf("namespace %q has no tenant", [input.review.namespace])
}
"#,
    )
    .unwrap();
    dir
}

fn pod(uid: &str, namespace: &str) -> Vec<u8> {
    review(json!({
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "labels": {"owner": "o", "checked-by": "x"}},
                   "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}},
    }))
}

fn inventory(tenant_label: Option<&str>) -> Json {
    let mut labels = json!({});
    if let Some(t) = tenant_label {
        labels["regate.dev/tenant"] = json!(t);
    }
    json!({"cluster": {"v1": {"Namespace": {"shop": {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": labels}}}}}, "namespace": {}})
}

struct Running {
    runtime: tokio::runtime::Runtime,
    handle: Option<server::ServerHandle>,
    addr: SocketAddr,
    ca: String,
    _dirs: Vec<tempfile::TempDir>,
    log: std::path::PathBuf,
}

impl Running {
    fn client(&self) -> Client {
        Client::new(self.addr, &self.ca)
    }

    fn decide(&self, uid: &str, namespace: &str) -> Json {
        let resp = self.client().post_json("/validate", &pod(uid, namespace));
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["response"].clone()
    }

    fn ready(&self) -> bool {
        self.client().get("/readyz").status == 200
    }

    fn wait_ready(&self, want: bool) {
        let started = Instant::now();
        while self.ready() != want {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "readiness never became {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_lines(&self) -> Vec<Json> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            let _ = self.runtime.block_on(handle.wait());
        }
    }
}

fn start(state: Arc<SharedState>, mode: FailureMode) -> Running {
    let policies = bundle();
    let ca = TestCa::new("in-process CA");
    let pair = ca.issue("regate-in-process");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("decisions.jsonl");
    let load = LoadOptions {
        embedded: false,
        policy_dirs: vec![
            common::root().join("testdata/bundles/basic"),
            policies.path().to_path_buf(),
        ],
        ..LoadOptions::default()
    };
    let mut options = ServeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsSource::Pem {
            cert: pair.cert_pem.into_bytes(),
            key: pair.key_pem.into_bytes(),
        },
        load,
    );
    options.cluster_failure_mode = mode;
    options.decision_log = DecisionLogTarget::File(log.clone());
    options.state_debounce = Duration::from_millis(50);
    options.watch_policies = false;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime
        .block_on(server::start(options, state))
        .expect("server starts");
    Running {
        addr: handle.addr(),
        handle: Some(handle),
        runtime,
        ca: ca.pem(),
        _dirs: vec![policies, logs],
        log,
    }
}

fn inventory_result(response: &Json) -> Option<String> {
    let message = response["status"]["message"].as_str()?;
    message
        .split("; ")
        .find(|m| m.starts_with("[known-namespace]"))
        .map(str::to_string)
}

#[test]
fn unavailable_cluster_state_denies_with_a_reason_then_synced_state_decides() {
    let state = Arc::new(SharedState::new());
    let server = start(state.clone(), FailureMode::Deny);

    // Not synced: the inventory policy yields a deny with the reason; not ready.
    let r = server.decide("ns-1", "shop");
    assert_eq!(r["allowed"], false);
    assert_eq!(
        inventory_result(&r).as_deref(),
        Some("[known-namespace] cluster state unavailable: not yet synced with the API server")
    );
    assert!(!server.ready());
    let body = server.client().get("/readyz").json();
    assert!(body["reasons"][0]
        .as_str()
        .unwrap()
        .contains("not yet synced"));
    let metrics = server.client().get("/metrics").text();
    assert!(
        metrics.contains("regate_cluster_state_synced 0"),
        "{metrics}"
    );

    // Synced, namespace labelled: the normal decision (allowed).
    state.set_inventory(inventory(Some("shop")));
    server.wait_ready(true);
    let r = server.decide("ok-1", "shop");
    assert_eq!(r["allowed"], true, "{r}");
    // Synced, an unknown namespace: the policy itself denies (evaluated, not the failure mode).
    let r = server.decide("ok-2", "billing");
    assert_eq!(
        inventory_result(&r).as_deref(),
        Some("[known-namespace] namespace \"billing\" has no tenant")
    );

    // Lookup failed (API unreachable): never "no match"; deny with the reason, readiness false.
    state.set_error(StateError::LookupFailed(
        "API server unreachable for 61s: connection refused".into(),
    ));
    let r = server.decide("lf-1", "shop");
    assert_eq!(r["allowed"], false);
    assert_eq!(
        inventory_result(&r).as_deref(),
        Some("[known-namespace] cluster state unavailable: lookup failed: API server unreachable for 61s: connection refused")
    );
    server.wait_ready(false);

    // Recovered with a new generation where the label is gone: the new state decides.
    state.set_inventory(inventory(None));
    server.wait_ready(true);
    let started = Instant::now();
    loop {
        let r = server.decide("new-gen", "shop");
        if inventory_result(&r).as_deref()
            == Some("[known-namespace] namespace \"shop\" has no tenant")
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = server.client().get("/metrics").text();
    assert!(
        metrics.contains("regate_cluster_state_synced 1"),
        "{metrics}"
    );
    assert_eq!(
        server_common::metric_value(
            &metrics,
            "regate_cluster_state_unavailable_total{endpoint=\"validate\"}"
        ),
        2.0
    );

    // The decision log says why, and knows the tenant once state has it.
    std::thread::sleep(Duration::from_millis(200));
    let lines = server.log_lines();
    let by_uid = |uid: &str| lines.iter().find(|l| l["uid"] == uid).cloned().unwrap();
    assert!(by_uid("ns-1")["failure"]
        .as_str()
        .unwrap()
        .contains("cluster state unavailable"));
    assert_eq!(by_uid("ok-1")["tenant"], "shop");
    assert!(by_uid("ok-1").get("failure").is_none());
}

#[test]
fn failure_mode_allow_turns_the_result_into_a_warning() {
    let state = Arc::new(SharedState::new());
    let server = start(state, FailureMode::Allow);
    let r = server.decide("allow-1", "shop");
    assert_eq!(r["allowed"], true, "{r}");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("[known-namespace] cluster state unavailable")),
        "{warnings:?}"
    );
}

#[test]
fn a_missing_tls_directory_fails_start() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = ServeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsSource::Dir(Path::new("/nonexistent/regate-tls").to_path_buf()),
        LoadOptions::default(),
    );
    let err = runtime
        .block_on(server::start(options, Arc::new(SharedState::new())))
        .err()
        .expect("start must fail");
    assert!(
        err.to_string().contains("/nonexistent/regate-tls/tls.crt"),
        "{err}"
    );
}

/// A denial by a policy reading cluster state is evaluated again once the state holds what arrived up
/// to `cluster_settle` after the request (the watch lags the API server: a namespace created a moment
/// before the request reaches regate's state a moment after it). A denial the settled state confirms
/// stands; the recheck is counted either way.
#[test]
fn a_denial_on_lagging_state_is_decided_again_on_settled_state() {
    let state = Arc::new(SharedState::new());
    state.set_inventory(inventory(Some("shop")));
    let server = start(state.clone(), FailureMode::Deny);
    server.wait_ready(true);

    // The namespace `late` reaches cluster state 80 ms after the request was sent: allowed.
    let publisher = {
        let state = state.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(80));
            let mut inv = inventory(Some("shop"));
            inv["cluster"]["v1"]["Namespace"]["late"] = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "late", "labels": {"regate.dev/tenant": "shop"}}});
            state.set_inventory(inv);
        })
    };
    let r = server.decide("late-1", "late");
    publisher.join().unwrap();
    assert_eq!(r["allowed"], true, "{r}");

    // A namespace that never arrives: the denial is confirmed on the settled state.
    let started = Instant::now();
    let r = server.decide("never-1", "never");
    assert_eq!(
        inventory_result(&r).as_deref(),
        Some("[known-namespace] namespace \"never\" has no tenant")
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    let metrics = server.client().get("/metrics").text();
    let rechecked = |outcome: &str| {
        server_common::metric_value(
            &metrics,
            &format!("regate_denials_rechecked_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(rechecked("reversed"), 1.0, "{metrics}");
    assert_eq!(rechecked("confirmed"), 1.0, "{metrics}");

    // A denial by a policy that does not read cluster state is answered at once, never rechecked.
    let started = Instant::now();
    let mut bad = pod("plain-1", "shop");
    let mut doc: Json = serde_json::from_slice(&bad).unwrap();
    doc["request"]["object"]["spec"]["containers"][0]["image"] = json!("nginx:latest");
    bad = serde_json::to_vec(&doc).unwrap();
    let resp = server.client().post_json("/validate", &bad).json();
    assert_eq!(resp["response"]["allowed"], false, "{resp}");
    assert!(started.elapsed() < Duration::from_millis(250));
}
