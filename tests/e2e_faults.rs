//! Faults with a real API server (v1.37, `tests/e2e/`): regate not ready until its reflectors synced,
//! regate stopped (failurePolicy Fail refuses writes in governed namespaces, excluded namespaces are
//! unaffected, restart recovers), regate too slow for the webhook timeout, and the API server restarted
//! under a running regate (reflectors resume; decisions follow the configured failure mode while
//! unsynced). Times are measured and printed.
//!
//! The scenarios disturb the cluster, so they run in order on their own control plane, each under
//! `catch_unwind` (the test fails listing every failed scenario).

mod e2e_common;
mod server_common;

use std::process::Command;
use std::time::{Duration, Instant};

use e2e_common::{shop_namespace, wait_for, with, ControlPlane, Kubectl, Regate, Scenarios};
use serde_json::json;

const TENANT: &[&str] = &["--as=alice@example.eu", "--as-group=tenant:shop"];

/// A ConfigMap a tenant writes in its namespace: a governed write that regate admits.
fn configmap(ns: &str, name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns, "labels": {"regate.dev/tenant": "shop"}},
           "data": {"greeting": "hello"}})
    .to_string()
}

fn create_configmap(cp: &ControlPlane, ns: &str, name: &str, identity: &[&str]) -> Kubectl {
    cp.kubectl_stdin(
        &with(identity, &["create", "--dry-run=server", "-f", "-"]),
        Some(&configmap(ns, name)),
    )
}

fn setup(cp: &ControlPlane) {
    cp.apply(&shop_namespace("shop-prod"));
}

#[test]
fn faults_with_a_real_api_server() {
    let Some(cp) = ControlPlane::start() else {
        return;
    };
    setup(&cp);
    let mut s = Scenarios::default();
    // Readiness first: it starts regate against a stopped API server.
    let mut regate = None;
    s.run("ready only after the reflectors synced", || {
        regate = Some(ready_only_after_sync(&cp));
    });
    let mut regate = regate.unwrap_or_else(|| Regate::install(&cp, &[]));
    s.run("regate stopped: fail closed, then recovery", || {
        regate_stopped(&cp, &mut regate)
    });
    s.run("regate slower than timeoutSeconds", || {
        regate_too_slow(&cp, &regate)
    });
    s.run("API server restarted under a running regate", || {
        apiserver_restarted(&cp, &mut regate)
    });
    s.finish("see the scenario output above");
}

/// Scenario 1 (readiness): regate started while the API server is down is not ready (and its cluster
/// state is unsynced) until the API server is back and every reflector has listed.
fn ready_only_after_sync(cp: &ControlPlane) -> Regate {
    // Install the chart's RBAC and take a token while the API server is up, but start regate only
    // once it is down.
    let regate = {
        let mut r = Regate::start_unregistered(cp, &[], &[]);
        r.wait_ready(Duration::from_secs(60));
        r.kill();
        r
    };
    cp.stop_apiserver();
    let mut regate = regate;
    regate.start();
    // Up, healthy, but not ready: nothing synced.
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = regate.readyz();
    assert_eq!(
        status, 503,
        "not ready while the API server is down: {body}"
    );
    assert!(body.contains("cluster"), "{body}");
    let down_since = Instant::now();
    cp.start_apiserver();
    let apiserver_back = down_since.elapsed();
    let waited = regate.wait_ready(Duration::from_secs(90));
    eprintln!(
        "API server ready again after {:.1}s; regate ready {:.1}s after that",
        apiserver_back.as_secs_f64(),
        waited.as_secs_f64()
    );
    let synced = regate.server().metric("regate_cluster_state_synced");
    assert_eq!(synced, 1.0);
    regate.register(cp);
    regate
}

/// Scenario 6: regate stopped. failurePolicy Fail refuses writes in governed namespaces; excluded
/// namespaces are unaffected; after a restart on the same address, writes are admitted again.
fn regate_stopped(cp: &ControlPlane, regate: &mut Regate) {
    let out = create_configmap(cp, "shop-prod", "before", TENANT);
    assert!(out.ok(), "admitted while regate runs: {}", out.stderr);
    regate.kill();
    let out = create_configmap(cp, "shop-prod", "while-down", TENANT);
    assert!(!out.ok(), "refused while regate is down");
    assert!(
        out.stderr.contains("failed calling webhook") && out.stderr.contains("regate.dev"),
        "the API server names the webhook it could not call: {}",
        out.stderr
    );
    // Excluded namespaces do not depend on regate.
    let out = create_configmap(cp, "kube-system", "while-down", &[]);
    assert!(out.ok(), "kube-system is excluded: {}", out.stderr);
    let restarted = Instant::now();
    regate.start();
    let (_, took) = wait_for(Duration::from_secs(60), "admitted after restart", || {
        create_configmap(cp, "shop-prod", "after", TENANT)
            .ok()
            .then_some(())
    });
    eprintln!(
        "writes admitted {:.1}s after regate was restarted ({:.1}s until ready)",
        restarted.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
}

/// Scenario 6: regate slower than the webhook's timeoutSeconds (the process frozen with SIGSTOP):
/// the API server gives up with its timeout error, and the write is refused (failurePolicy Fail).
fn regate_too_slow(cp: &ControlPlane, regate: &Regate) {
    let pid = regate.server().child.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let out = create_configmap(cp, "shop-prod", "frozen", TENANT);
    let took = started.elapsed();
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    assert!(!out.ok(), "refused when regate does not answer in time");
    assert!(
        out.stderr.contains("context deadline exceeded") || out.stderr.contains("timeout"),
        "the API server's timeout error: {}",
        out.stderr
    );
    // timeoutSeconds is 5 (the chart's default); the API server waits that long, not longer.
    eprintln!("the API server gave up after {:.1}s", took.as_secs_f64());
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    wait_for(Duration::from_secs(30), "admitted after SIGCONT", || {
        create_configmap(cp, "shop-prod", "thawed", TENANT)
            .ok()
            .then_some(())
    });
}

/// A ConfigMap CREATE by the tenant in `ns`, as the API server would send it to /validate.
fn configmap_review(ns: &str, uid: &str) -> Vec<u8> {
    server_common::review(json!({
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "namespace": ns,
        "name": "direct",
        "operation": "CREATE",
        "userInfo": {"username": "alice@example.eu", "groups": ["tenant:shop", "system:authenticated"]},
        "object": {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "direct", "namespace": ns, "labels": {"regate.dev/tenant": "shop"}},
                   "data": {"greeting": "hello"}},
        "oldObject": null,
        "dryRun": false
    }))
}

/// Scenario 6: the API server restarted while regate runs (here with `--cluster-stale-after=3s`).
/// While it is away for longer than that, regate's decisions that need cluster state follow the failure
/// mode (deny, with the reason); when it is back, the reflectors resume, decisions are normal again
/// within a bounded window (measured), and objects created after the restart reach decisions.
fn apiserver_restarted(cp: &ControlPlane, regate: &mut Regate) {
    regate.kill();
    regate.extra_args = vec!["--cluster-stale-after=3s".into()];
    regate.start();
    regate.wait_ready(Duration::from_secs(60));
    let resumed_before = regate
        .server()
        .stderr_text()
        .matches("cluster state kind synced")
        .count();
    let mut client = regate.server().client();
    let answer = client
        .post_json("/validate", &configmap_review("shop-prod", "up"))
        .json();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");

    let stopped = Instant::now();
    cp.stop_apiserver();
    // Within the stale window regate answers from its last state; past it, the failure mode decides.
    let (denied, unavailable_after) = wait_for(Duration::from_secs(30), "failure mode", || {
        let answer = client
            .post_json("/validate", &configmap_review("shop-prod", "down"))
            .json();
        (answer["response"]["allowed"] == false).then_some(answer)
    });
    let message = denied["response"]["status"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    eprintln!(
        "API server down: regate's failure mode after {:.1}s: {message}",
        unavailable_after.as_secs_f64()
    );
    assert!(message.contains("cluster state"), "{message}");
    std::thread::sleep(Duration::from_secs(1));
    cp.start_apiserver();
    let down_for = stopped.elapsed();
    // The window between the API server's return and normal decisions again.
    let (_, window) = wait_for(Duration::from_secs(30), "normal decisions again", || {
        let answer = client
            .post_json("/validate", &configmap_review("shop-prod", "back"))
            .json();
        (answer["response"]["allowed"] == true).then_some(())
    });
    let (_, resync) = wait_for(Duration::from_secs(60), "reflectors resumed", || {
        (regate
            .server()
            .stderr_text()
            .matches("cluster state kind synced")
            .count()
            > resumed_before)
            .then_some(())
    });
    // A namespace created after the restart is known to regate: a tenant may write into it.
    cp.apply(&shop_namespace("shop-after-restart"));
    let (_, visible) = wait_for(
        Duration::from_secs(30),
        "new namespace in decisions",
        || {
            create_configmap(cp, "shop-after-restart", "x", TENANT)
                .ok()
                .then_some(())
        },
    );
    eprintln!(
        "API server away {:.1}s; failure-mode window after its return {:.1}s; reflectors resynced after {:.1}s; a new namespace in decisions {:.0} ms after its creation",
        down_for.as_secs_f64(),
        window.as_secs_f64(),
        resync.as_secs_f64(),
        visible.as_secs_f64() * 1000.0
    );
    assert!(window < Duration::from_secs(5), "{window:?}");
}
