//! `regate serve` over time: certificate rotation while requests flow (Kubernetes `..data` symlink swap,
//! zero failed requests, new connections get the new certificate), bad pairs kept out, client
//! certificates (mTLS), policy hot reload (a broken bundle and failing tests keep the last good one; a
//! good one takes effect), and draining on SIGTERM.

mod common;
mod server_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use server_common::{
    basic_args, client_config, pod_request, review, tls_dir, write_k8s_secret_dir, Client, Pair,
    Server, TestCa,
};

#[test]
fn certificate_rotation_while_requests_flow() {
    let (dir, ca, _) = tls_dir("cert-a");
    let server = Server::start(&basic_args(dir.path()), &ca.pem());
    let addr = server.addr;
    let ca_pem = ca.pem();

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    // One loop opens a new connection per request (sees the rotation), one keeps its connection alive
    // (must not be disturbed by it).
    let loops: Vec<_> = [true, false]
        .into_iter()
        .map(|fresh| {
            let (stop, failures, seen, done, ca_pem) = (
                stop.clone(),
                failures.clone(),
                seen.clone(),
                done.clone(),
                ca_pem.clone(),
            );
            std::thread::spawn(move || {
                let mut client = Client::new(addr, &ca_pem);
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    if fresh {
                        client.reset();
                        match client.connect() {
                            Ok(()) => seen.lock().unwrap().push(client.peer_common_name()),
                            Err(e) => {
                                failures.lock().unwrap().push(format!("connect: {e}"));
                                continue;
                            }
                        }
                    }
                    let body = review(pod_request(&format!("rot-{fresh}-{i}"), "nginx:1"));
                    match client.try_request(
                        "POST",
                        "/validate",
                        &[("Content-Type", "application/json")],
                        &body,
                    ) {
                        Ok(r) if r.status == 200 && r.json()["response"]["allowed"] == true => {
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "status {}: {}",
                            r.status,
                            r.text()
                        )),
                        Err(e) => failures.lock().unwrap().push(format!("request: {e}")),
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(800));
    let cert_b = ca.issue("cert-b");
    write_k8s_secret_dir(dir.path(), &cert_b, "v2");
    let started = Instant::now();
    let mut rotated = false;
    while started.elapsed() < Duration::from_secs(10) {
        if seen.lock().unwrap().last().map(String::as_str) == Some("cert-b") {
            rotated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        l.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    let tail: Vec<&String> = seen.iter().rev().take(5).collect();
    assert!(
        rotated,
        "new connections never presented cert-b (last: {tail:?}):\n{}",
        server.stderr_text()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(seen.first().map(String::as_str) == Some("cert-a"));
    // After the swap, every new connection presents cert-b.
    let first_b = seen.iter().position(|s| s == "cert-b").unwrap();
    assert!(
        seen[first_b..].iter().all(|s| s == "cert-b"),
        "cert-a presented after cert-b"
    );
    assert!(done.load(Ordering::SeqCst) > 10);
    assert_eq!(server.metric("regate_certificate_reloads_total"), 1.0);

    // A pair whose key does not match, then an unparsable one: reported, the old pair stays.
    let cert_c = ca.issue("cert-c");
    let mismatched = Pair {
        cert_pem: cert_c.cert_pem.clone(),
        key_pem: cert_b.key_pem.clone(),
    };
    write_k8s_secret_dir(dir.path(), &mismatched, "v3");
    assert!(server.wait_log("does not match the certificate", Duration::from_secs(10)));
    let garbage = Pair {
        cert_pem: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into(),
        key_pem: cert_c.key_pem.clone(),
    };
    write_k8s_secret_dir(dir.path(), &garbage, "v4");
    let started = Instant::now();
    while server.metric("regate_certificate_reload_failures_total") < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut client = server.client();
    assert_eq!(client.peer_common_name(), "cert-b");
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(server.metric("regate_certificate_reloads_total"), 1.0);
}

#[test]
fn client_certificates_are_verified_when_a_client_ca_is_given() {
    let (dir, ca, _) = tls_dir("regate-mtls");
    let client_ca = TestCa::new("api server client CA");
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, client_ca.pem()).unwrap();
    let mut args = basic_args(dir.path());
    args.extend([
        "--client-ca".to_string(),
        ca_file.display().to_string(),
        "--metrics-addr".to_string(),
        "127.0.0.1:0".to_string(),
    ]);
    let server = Server::start(&args, &ca.pem());

    // Without a client certificate: no service.
    let mut anonymous = server.client();
    assert!(anonymous.try_request("GET", "/healthz", &[], b"").is_err());
    // With one from another CA: no service either.
    let stranger = TestCa::new("someone else").issue_client("intruder");
    let mut wrong = Client::with_config(server.addr, client_config(&ca.pem(), Some(&stranger)));
    assert!(wrong.try_request("GET", "/healthz", &[], b"").is_err());
    // With the API server's client certificate: served.
    let apiserver = client_ca.issue_client("kube-apiserver");
    let mut good = Client::with_config(server.addr, client_config(&ca.pem(), Some(&apiserver)));
    let resp = good.post_json("/validate", &review(pod_request("m", "nginx:latest")));
    assert_eq!(resp.json()["response"]["allowed"], false);
    // Probes and metrics on the plain port need no certificate.
    let metrics_addr = server.metrics_addr.expect("metrics address logged");
    let reply = server_common::raw_tcp(
        metrics_addr,
        b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
    let reply = server_common::raw_tcp(
        metrics_addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains("regate_tls_handshake_failures_total 2"),
        "{text}"
    );
    assert!(!String::from_utf8_lossy(&server_common::raw_tcp(
        metrics_addr,
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    ))
    .starts_with("HTTP/1.1 200"));
}

/// Writes a complete bundle version into `dir` the way the kubelet updates a ConfigMap volume: files
/// under `..<version>/`, `..data` swapped to it atomically, top-level entries as symlinks into `..data`.
fn write_configmap_dir(dir: &std::path::Path, files: &[(&str, String)], version: u32) {
    let versioned = dir.join(format!("..v{version}"));
    for (rel, text) in files {
        let path = versioned.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..v{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    let tops: std::collections::BTreeSet<String> = files
        .iter()
        .map(|(rel, _)| rel.split('/').next().unwrap().to_string())
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link).unwrap();
        }
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if !name.starts_with('.') && !tops.contains(&name) {
            std::fs::remove_file(dir.join(&name)).unwrap();
        }
    }
}

fn wait_metric(server: &Server, series: &str, at_least: f64) {
    let started = Instant::now();
    while server.metric(series) < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{series} never reached {at_least}:\n{}",
            server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn policy_reload_keeps_the_last_good_bundle() {
    let basic = common::root().join("testdata/bundles/basic");
    let read = |rel: &str| std::fs::read_to_string(basic.join(rel)).unwrap();
    let policy = read("no-latest/policy.rego");
    let hygiene = read("hygiene/policy.rego");
    let config = read("regate.yaml");
    let test_of = |name: &str, want: usize| {
        format!(
            "package regate.policies.no_latest_test\n\nimport data.regate.policies.no_latest\n\n{name} if {{\n\tcount(no_latest.deny) == {want} with input as {{\"review\": {{\"kind\": {{\"kind\": \"Pod\"}}, \"object\": {{\"spec\": {{\"containers\": [{{\"name\": \"a\", \"image\": \"x:latest\"}}]}}}}}}}}\n}}\n"
        )
    };

    let (tls, ca, _) = tls_dir("regate-reload");
    let bundle = tempfile::tempdir().unwrap();
    write_configmap_dir(
        bundle.path(),
        &[
            ("no-latest/policy.rego", policy.clone()),
            (
                "no-latest/policy_test.rego",
                test_of("test_latest_is_denied", 1),
            ),
            ("hygiene/policy.rego", hygiene.clone()),
            ("regate.yaml", config.clone()),
        ],
        1,
    );
    let mut args = basic_args(tls.path());
    let at = args
        .iter()
        .position(|a| a == "testdata/bundles/basic")
        .unwrap();
    args[at] = bundle.path().display().to_string();
    args.extend(["--reload-interval".to_string(), "200ms".to_string()]);
    let server = Server::start(&args, &ca.pem());
    let latest = review(pod_request("r", "nginx:latest"));
    let decide = || server.client().post_json("/validate", &latest).json();
    assert_eq!(decide()["response"]["allowed"], false);
    let digest = |s: &Server| {
        let m = s.metrics();
        m.lines()
            .find(|l| l.starts_with("regate_bundle_info{"))
            .unwrap()
            .to_string()
    };
    let first_digest = digest(&server);

    // 1. A syntax error: rejected with file:line, old decisions continue.
    write_configmap_dir(
        bundle.path(),
        &[
            (
                "no-latest/policy.rego",
                policy.replace("endswith(c.image, \":latest\")", "endswith(c.image, "),
            ),
            (
                "no-latest/policy_test.rego",
                test_of("test_latest_is_denied", 1),
            ),
            ("hygiene/policy.rego", hygiene.clone()),
            ("regate.yaml", config.clone()),
        ],
        2,
    );
    wait_metric(&server, "regate_bundle_reload_failures_total", 1.0);
    assert!(
        server.wait_log("no-latest/policy.rego:", Duration::from_secs(5)),
        "the log must name the file and line:\n{}",
        server.stderr_text()
    );
    assert_eq!(decide()["response"]["allowed"], false);
    assert_eq!(digest(&server), first_digest);

    // 2. Compiles, but a test fails: rejected too, naming the test.
    write_configmap_dir(
        bundle.path(),
        &[
            ("no-latest/policy.rego", policy.clone()),
            (
                "no-latest/policy_test.rego",
                test_of("test_latest_is_allowed", 0),
            ),
            ("hygiene/policy.rego", hygiene.clone()),
            ("regate.yaml", config.clone()),
        ],
        3,
    );
    wait_metric(&server, "regate_bundle_reload_failures_total", 2.0);
    assert!(server.wait_log("test_latest_is_allowed", Duration::from_secs(5)));
    assert_eq!(decide()["response"]["allowed"], false);
    assert_eq!(digest(&server), first_digest);

    // 3. A good bundle (tests pass, no-latest now only warns): takes effect.
    write_configmap_dir(
        bundle.path(),
        &[
            ("no-latest/policy.rego", policy.clone()),
            (
                "no-latest/policy_test.rego",
                test_of("test_latest_is_denied", 1),
            ),
            ("hygiene/policy.rego", hygiene.clone()),
            (
                "regate.yaml",
                format!("{config}  no-latest:\n    enforcement: warn\n"),
            ),
        ],
        4,
    );
    wait_metric(&server, "regate_bundle_reloads_total", 1.0);
    let resp = decide();
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    assert!(resp["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with("[no-latest]")));
    assert_ne!(digest(&server), first_digest);
    assert_eq!(server.metric("regate_bundle_reload_failures_total"), 2.0);

    // 4. Emptied (a ConfigMap that lost its keys): never an empty policy set.
    write_configmap_dir(bundle.path(), &[("regate.yaml", "{}\n".to_string())], 5);
    wait_metric(&server, "regate_bundle_reload_failures_total", 3.0);
    assert!(server.wait_log("no policies", Duration::from_secs(5)));
    assert_eq!(decide()["response"]["allowed"], true);
    assert_eq!(server.metric("regate_bundle_policies"), 2.0);
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    // A policy that spins until its 2 s budget (the instruction limit lifted): a slow but bounded request.
    let bundle = tempfile::tempdir().unwrap();
    std::fs::create_dir(bundle.path().join("spin")).unwrap();
    std::fs::write(
        bundle.path().join("spin/policy.rego"),
        "# METADATA\n# title: Spins\npackage regate.policies.spin\n\ndeny contains \"impossible\" if {\n\tsome x in numbers.range(1, 100000)\n\tsome y in numbers.range(1, 100000)\n\tx * y == -1\n}\n",
    )
    .unwrap();
    std::fs::write(
        bundle.path().join("regate.yaml"),
        "limits:\n  policyTimeoutMs: 2000\n  requestTimeoutMs: 5000\n  maxInstructions: 1000000000000\n",
    )
    .unwrap();
    let (tls, ca, _) = tls_dir("regate-drain");
    let args: Vec<String> = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--tls-dir",
        tls.path().to_str().unwrap(),
        "--no-bundled",
        "--policies",
        bundle.path().to_str().unwrap(),
        "--cluster-state",
        "static",
        "--shutdown-delay",
        "500ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut server = Server::start(&args, &ca.pem());

    // An idle keep-alive connection must not keep the process alive.
    let mut idle = server.client();
    assert_eq!(idle.get("/readyz").status, 200);

    let addr = server.addr;
    let ca_pem = ca.pem();
    let slow = std::thread::spawn(move || {
        let mut c = Client::new(addr, &ca_pem);
        let started = Instant::now();
        let r = c.post_json("/validate", &review(pod_request("slow-1", "nginx:1")));
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(400));
    let sent = Instant::now();
    server.sigterm();
    std::thread::sleep(Duration::from_millis(150));
    // During the shutdown delay: still accepting, but not ready.
    let ready = server.client().get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("shutting down"));

    let (resp, took) = slow.join().unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["response"]["uid"], "slow-1");
    assert!(took >= Duration::from_millis(1500), "{took:?} {body}");
    let code = server.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{}", server.stderr_text());
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "exit took {:?}",
        sent.elapsed()
    );
    assert!(server.stderr_text().contains("stopped"));
    // The decision of the drained request was logged.
    assert!(server.stdout_lines().iter().any(|l| l.contains("slow-1")));
}
