//! `regate serve` over real TLS: decisions, the AdmissionReview wire contract, probes, the decision log,
//! bad input (each case: status, JSON message, counter in /metrics, no crash), overload shedding and
//! deadlines.

mod server_common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value as Json};
use server_common::{
    basic_args, owned_args, pod_request, raw_tcp, review, tls_dir, Client, Server,
};

fn basic_server() -> (tempfile::TempDir, Server) {
    let (dir, ca, _) = tls_dir("regate-test");
    let server = Server::start(&basic_args(dir.path()), &ca.pem());
    (dir, server)
}

#[test]
fn decisions_follow_the_wire_contract() {
    let (_dir, server) = basic_server();
    let mut client = server.client();

    assert_eq!(client.get("/healthz").status, 200);
    let ready = client.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());

    // Deny: 403 status and message, uid echoed, same apiVersion.
    let resp = client.post_json(
        "/validate",
        &review(pod_request("uid-deny", "nginx:latest")),
    );
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = resp.json();
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(body["response"]["uid"], "uid-deny");
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(body["response"]["status"]["code"], 403);
    assert_eq!(
        body["response"]["status"]["message"],
        "[no-latest] container \"app\" uses the latest tag (spec.containers[0].image)"
    );
    assert!(body["response"].get("patch").is_none());

    // Allowed, on the same keep-alive connection, with the charset parameter.
    let resp = client.request(
        "POST",
        "/validate?timeout=10s",
        &[("Content-Type", "application/json; charset=utf-8")],
        &review(pod_request("uid-allow", "nginx:1.27")),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["response"]["allowed"], true, "{}", resp.text());

    // Mutate: base64 JSONPatch.
    let resp = client.post_json("/mutate", &review(pod_request("uid-mutate", "nginx:1.27")));
    let body = resp.json();
    assert_eq!(body["response"]["uid"], "uid-mutate");
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["patchType"], "JSONPatch");
    let patch: Json = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(body["response"]["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/metadata/labels/checked-by", "value": "regate"}])
    );

    // v1beta1 is answered in v1beta1.
    let mut beta: Json =
        serde_json::from_slice(&review(pod_request("uid-beta", "nginx:1"))).unwrap();
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let resp = client.post_json("/validate", &serde_json::to_vec(&beta).unwrap());
    assert_eq!(resp.json()["apiVersion"], "admission.k8s.io/v1beta1");

    // Metrics.
    let metrics = server.metrics();
    assert_eq!(
        server_common::metric_value(
            &metrics,
            "regate_admission_requests_total{endpoint=\"validate\",operation=\"CREATE\",decision=\"deny\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("regate_admission_request_duration_seconds_bucket{endpoint=\"validate\"")
    );
    assert_eq!(
        server_common::metric_value(
            &metrics,
            "regate_policy_violations_total{policy=\"no-latest\",action=\"deny\"}"
        ),
        1.0
    );
    assert!(metrics.contains("regate_bundle_info{digest=\"sha256:"));
    assert!(metrics.contains("regate_cluster_state_synced 1"));
    assert!(metrics.contains("regate_certificate_expiry_timestamp_seconds "));

    // Decision log on stdout: one JSON line per decision, no object contents.
    let started = Instant::now();
    while server.stdout_lines().len() < 4 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines = server.stdout_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let first: Json = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["uid"], "uid-deny");
    assert_eq!(first["endpoint"], "validate");
    assert_eq!(first["operation"], "CREATE");
    assert_eq!(first["kind"], "v1/Pod");
    assert_eq!(first["namespace"], "shop");
    assert_eq!(first["name"], "p");
    assert_eq!(first["user"], "alice");
    assert_eq!(first["allowed"], false);
    assert_eq!(first["dryRun"], false);
    assert!(first["bundle"].as_str().unwrap().starts_with("sha256:"));
    assert!(first["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let no_latest = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "no-latest")
        .unwrap();
    assert_eq!(no_latest["enforcement"], "deny");
    assert_eq!(no_latest["rule"], "deny");
    assert_eq!(no_latest["field"], "spec.containers[0].image");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("nginx:1.27") || l.contains("\"spec\"")),
        "object contents leaked: {lines:?}"
    );
}

/// One bad-input case: what is sent, and the status and reason expected.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
    message: &'static str,
}

#[test]
fn bad_input_gets_a_clear_4xx_and_a_counter() {
    let (_dir, server) = basic_server();
    let good = review(pod_request("u", "nginx:1"));
    let json_ct = Some("application/json");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes();
    let cases = vec![
        Case { name: "GET on /validate", method: "GET", path: "/validate", content_type: None, body: vec![], status: 405, reason: "method_not_allowed", message: "POST" },
        Case { name: "PUT on /mutate", method: "PUT", path: "/mutate", content_type: json_ct, body: good.clone(), status: 405, reason: "method_not_allowed", message: "POST" },
        Case { name: "text/plain", method: "POST", path: "/validate", content_type: Some("text/plain"), body: good.clone(), status: 415, reason: "unsupported_media_type", message: "application/json" },
        Case { name: "no content type", method: "POST", path: "/validate", content_type: None, body: good.clone(), status: 415, reason: "unsupported_media_type", message: "Content-Type" },
        Case { name: "not JSON", method: "POST", path: "/validate", content_type: json_ct, body: b"{\"apiVersion\":".to_vec(), status: 400, reason: "invalid_json", message: "not valid JSON" },
        Case { name: "invalid UTF-8", method: "POST", path: "/validate", content_type: json_ct, body: b"{\"a\":\"\xff\xfe\"}".to_vec(), status: 400, reason: "invalid_json", message: "not valid JSON" },
        Case { name: "deep nesting", method: "POST", path: "/validate", content_type: json_ct, body: deep, status: 400, reason: "too_deep", message: "deeper than 128" },
        Case { name: "wrong apiVersion", method: "POST", path: "/validate", content_type: json_ct, body: br#"{"apiVersion":"v1","kind":"AdmissionReview","request":{}}"#.to_vec(), status: 400, reason: "wrong_api_version", message: "apiVersion is \"v1\"" },
        Case { name: "wrong kind", method: "POST", path: "/mutate", content_type: json_ct, body: br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}"#.to_vec(), status: 400, reason: "wrong_kind", message: "expected AdmissionReview" },
        Case { name: "missing request", method: "POST", path: "/validate", content_type: json_ct, body: br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), status: 400, reason: "missing_request", message: "request is missing" },
        Case { name: "missing uid", method: "POST", path: "/validate", content_type: json_ct, body: br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.to_vec(), status: 400, reason: "missing_uid", message: "request.uid" },
        Case { name: "empty uid", method: "POST", path: "/validate", content_type: json_ct, body: br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":" ","operation":"CREATE"}}"#.to_vec(), status: 400, reason: "missing_uid", message: "request.uid" },
        Case { name: "null object", method: "POST", path: "/validate", content_type: json_ct, body: br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"kind":"Pod"},"object":null}}"#.to_vec(), status: 400, reason: "invalid_field", message: "request.object" },
        Case { name: "unknown path", method: "POST", path: "/admit", content_type: json_ct, body: good.clone(), status: 404, reason: "not_found", message: "/validate" },
        Case { name: "POST on /healthz", method: "POST", path: "/healthz", content_type: json_ct, body: vec![], status: 405, reason: "method_not_allowed", message: "GET" },
    ];
    let mut client = server.client();
    for case in &cases {
        let mut headers = Vec::new();
        if let Some(ct) = case.content_type {
            headers.push(("Content-Type", ct));
        }
        let resp = client.request(case.method, case.path, &headers, &case.body);
        assert_eq!(resp.status, case.status, "{}: {}", case.name, resp.text());
        if matches!(case.status, 404 | 405 | 415) {
            // The body was not read: the server closes the connection rather than guess.
            assert_eq!(resp.header("connection"), Some("close"), "{}", case.name);
        }
        if case.status == 405 {
            let allow = match case.path {
                "/validate" | "/mutate" => "POST",
                _ => "GET, HEAD",
            };
            let allowed: Vec<&str> = resp
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("allow"))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(allowed, [allow], "{}", case.name);
        }
        let body = resp.json();
        assert_eq!(body["reason"], case.reason, "{}", case.name);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(case.message), "{}: {message}", case.name);
    }

    // A declared body over 7 MiB is refused before it is read.
    let mut big = server.client();
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        7 * 1024 * 1024 + 1
    );
    let resp = big.send_raw(head.as_bytes()).unwrap();
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(resp.json()["reason"], "body_too_large");
    assert!(resp.json()["error"].as_str().unwrap().contains("7 MiB"));

    // A body just over 7 MiB, actually sent, is refused too.
    let mut body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","pad":""#.to_vec();
    body.resize(7 * 1024 * 1024 + 10, b'a');
    body.extend_from_slice(b"\"}}");
    // The server answers as soon as the limit is crossed and closes; the client may see the 413 or,
    // still writing, a reset. Either way the counter below shows the limit was applied.
    let mut big = server.client();
    if let Ok(resp) = big.try_chunked("/validate", &body) {
        assert_eq!(resp.status, 413, "{}", resp.text());
    }

    // Plain HTTP on the TLS port: a plain 400, no crash.
    let reply = raw_tcp(
        server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("plain HTTP"), "{reply}");
    // Garbage that is neither HTTP nor TLS: the handshake fails, the server carries on.
    let _ = raw_tcp(server.addr, b"\x16\x03\x01\x00\x05garbagegarbage");
    let _ = raw_tcp(server.addr, b"\x00\x01\x02");

    // Still serving; every reason counted.
    let resp = server
        .client()
        .post_json("/validate", &review(pod_request("after", "nginx:1")));
    assert_eq!(resp.json()["response"]["allowed"], true);
    let metrics = server.metrics();
    for (reason, n) in [
        ("method_not_allowed", 3.0),
        ("unsupported_media_type", 2.0),
        ("invalid_json", 2.0),
        ("too_deep", 1.0),
        ("wrong_api_version", 1.0),
        ("wrong_kind", 1.0),
        ("missing_request", 1.0),
        ("missing_uid", 2.0),
        ("invalid_field", 1.0),
        ("not_found", 1.0),
        ("body_too_large", 2.0),
        ("plain_http", 1.0),
    ] {
        let series = format!("regate_bad_requests_total{{reason=\"{reason}\"}}");
        assert_eq!(
            server_common::metric_value(&metrics, &series),
            n,
            "{series}\n{metrics}"
        );
    }
    assert!(server_common::metric_value(&metrics, "regate_tls_handshake_failures_total") >= 2.0);
}

/// A bundle whose one policy spins until its time budget (`policyTimeoutMs`) stops it (the instruction
/// limit lifted so that time, not instructions, ends it).
pub fn slow_bundle(policy_timeout_ms: u64, request_timeout_ms: u64) -> tempfile::TempDir {
    // Only the time budget stops it.
    looping_bundle(100_000, -1, policy_timeout_ms, request_timeout_ms)
}

/// A bundle of one policy `loop` that looks through `n`² pairs for a product equal to `target` (denying
/// with "found the product" if there is one), with the given limits and no instruction limit.
fn looping_bundle(
    n: u64,
    target: i64,
    policy_timeout_ms: u64,
    request_timeout_ms: u64,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("loop")).unwrap();
    std::fs::write(
        dir.path().join("loop/policy.rego"),
        format!("# METADATA\n# title: Loops\npackage regate.policies.loop\n\ndeny contains \"found the product\" if {{\n\tsome x in numbers.range(1, {n})\n\tsome y in numbers.range(1, {n})\n\tx * y == {target}\n}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("regate.yaml"),
        format!("limits:\n  policyTimeoutMs: {policy_timeout_ms}\n  requestTimeoutMs: {request_timeout_ms}\n  maxInstructions: 1000000000000\n"),
    )
    .unwrap();
    dir
}

fn slow_server(bundle: &tempfile::TempDir, extra: &[&str]) -> (tempfile::TempDir, Server) {
    let (dir, ca, _) = tls_dir("regate-test");
    let args = owned_args(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--tls-dir",
            dir.path().to_str().unwrap(),
            "--no-bundled",
            "--policies",
            bundle.path().to_str().unwrap(),
            "--cluster-state",
            "static",
            "--decision-log",
            "off",
        ],
        extra,
    );
    let server = Server::start(&args, &ca.pem());
    (dir, server)
}

#[test]
fn the_api_server_timeout_bounds_evaluation() {
    let bundle = slow_bundle(5000, 10000);
    let (_dir, server) = slow_server(&bundle, &[]);
    let mut client = server.client();
    client.connect().unwrap();
    let started = Instant::now();
    let resp = client.post_json(
        "/validate?timeout=1s",
        &review(pod_request("slow", "nginx:1")),
    );
    let took = started.elapsed();
    assert_eq!(resp.status, 200);
    let body = resp.json();
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    // Fail closed: the looping policy could not finish, so the request is denied.
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert_eq!(body["response"]["status"]["code"], 403);
}

#[test]
fn a_review_that_overruns_the_inline_slice_is_decided_on_the_blocking_pool() {
    // 250,000 loop steps: far beyond the 2 ms inline slice, well within the policy's own budget.
    let bundle = looping_bundle(500, 250_000, 20_000, 25_000);
    let (_dir, server) = slow_server(&bundle, &[]);
    let mut client = server.client();
    for i in 0..2 {
        let resp = client.post_json(
            "/validate?timeout=30s",
            &review(pod_request(&format!("p{i}"), "nginx:1")),
        );
        assert_eq!(resp.status, 200);
        let body = resp.json();
        assert_eq!(body["response"]["allowed"], false, "{body}");
        let message = body["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("found the product"), "{message}");
        assert!(!message.contains("deadline"), "{message}");
    }
    // The first review overran its slice; the second came during the pause and went to the pool directly.
    assert_eq!(server.metric("regate_inline_overruns_total"), 1.0);
}

#[test]
fn overload_is_shed_fast_with_503() {
    let bundle = slow_bundle(1500, 3000);
    let (_dir, server) = slow_server(
        &bundle,
        &[
            "--max-inflight",
            "1",
            "--max-queued",
            "1",
            "--queue-wait",
            "50ms",
        ],
    );
    let addr = server.addr;
    let ca = server.ca_pem.clone();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let ca = ca.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 200 }));
                let mut c = Client::new(addr, &ca);
                let started = Instant::now();
                let r = c.post_json(
                    "/validate",
                    &review(pod_request(&format!("o{i}"), "nginx:1")),
                );
                (r, started.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let shed: Vec<_> = results.iter().filter(|(r, _)| r.status == 503).collect();
    let answered: Vec<_> = results.iter().filter(|(r, _)| r.status == 200).collect();
    assert!(!shed.is_empty(), "nothing was shed");
    assert!(!answered.is_empty());
    for (r, took) in &shed {
        assert!(*took < Duration::from_millis(1000), "shed slowly: {took:?}");
        assert_eq!(r.json()["reason"], "overloaded");
        assert!(r.json()["error"].as_str().unwrap().contains("overloaded"));
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    assert_eq!(
        server.metric("regate_overload_rejections_total"),
        shed.len() as f64
    );
}
