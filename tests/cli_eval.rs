//! `regate eval` through the real binary: every AdmissionReview of the shared corpus answered without a
//! crash (uid echoed, same apiVersion) or rejected with exit 2 naming what is wrong; malformed reviews;
//! the mutate endpoint's base64 JSONPatch; `--explain`.

mod common;

use base64::Engine as _;
use common::{code, regate, stderr, stdout};
use rstest::rstest;
use serde_json::Value as Json;

fn eval_file(path: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["eval", "--review", path];
    args.extend(extra);
    regate(&args, None)
}

fn review(request: Json) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
    .unwrap()
}

fn pod_request(image: &str) -> Json {
    serde_json::json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["tenant:shop"]},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                   "spec": {"containers": [{"name": "app", "image": image}]}},
        "oldObject": null,
        "dryRun": false
    })
}

const BASIC: [&str; 3] = ["--no-bundled", "--policies", "testdata/bundles/basic"];

#[test]
fn every_corpus_review_is_answered_or_rejected_precisely() {
    let Some(dir) = common::corpus("admission/reviews") else {
        return;
    };
    let files = common::files(&dir, "json");
    assert_eq!(files.len(), 189);
    let (mut answered, mut rejected) = (0, 0);
    for file in &files {
        let path = file.display().to_string();
        let out = eval_file(&path, &[]);
        let raw: Json = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        match code(&out) {
            0 | 1 => {
                answered += 1;
                let resp: Json = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("{path}: {e}: {}", stdout(&out)));
                assert_eq!(resp["apiVersion"], raw["apiVersion"], "{path}");
                assert_eq!(resp["kind"], "AdmissionReview", "{path}");
                assert_eq!(resp["response"]["uid"], raw["request"]["uid"], "{path}");
                let allowed = resp["response"]["allowed"].as_bool().unwrap();
                assert_eq!(allowed, code(&out) == 0, "{path}");
                if !allowed {
                    assert_eq!(resp["response"]["status"]["code"], 403, "{path}");
                    assert!(!resp["response"]["status"]["message"]
                        .as_str()
                        .unwrap()
                        .is_empty());
                }
                for w in resp["response"]["warnings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    assert!(w.as_str().unwrap().len() <= 120, "{path}: {w}");
                }
            }
            2 => {
                rejected += 1;
                let err = stderr(&out);
                assert!(
                    err.starts_with(&format!("error: {path}: ")),
                    "{path}: {err}"
                );
                assert!(
                    err.contains("request.") || err.contains("apiVersion") || err.contains("kind"),
                    "{path}: message must name the field: {err}"
                );
            }
            other => panic!("{path}: exit {other}: {}", stderr(&out)),
        }
    }
    eprintln!("corpus: {answered} answered, {rejected} rejected as malformed");
    assert!(
        answered >= 91,
        "every captured review must be answered: {answered}"
    );
}

#[rstest]
#[case(b"not json" as &[u8], "body is not valid JSON")]
#[case(
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    "request is missing"
)]
#[case(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#, "request.uid is missing")]
#[case(
    br#"{"apiVersion":"v1","kind":"AdmissionReview","request":{}}"#,
    "apiVersion is \"v1\""
)]
fn malformed_reviews_exit_2_naming_the_problem(#[case] body: &[u8], #[case] needle: &str) {
    let out = regate(
        &[&["eval", "--review", "-"][..], &BASIC[..]].concat(),
        Some(body),
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn deny_response_matches_the_wire_contract() {
    let body = review(pod_request("nginx:latest"));
    let out = regate(
        &[&["eval", "--review", "-"][..], &BASIC[..]].concat(),
        Some(&body),
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let resp: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        resp["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(resp["response"]["allowed"], false);
    assert_eq!(resp["response"]["status"]["code"], 403);
    // hygiene's deny is enforced as a warning, so only no-latest is in the message.
    assert_eq!(
        resp["response"]["status"]["message"],
        "[no-latest] container \"app\" uses the latest tag (spec.containers[0].image)"
    );
    assert!(resp["response"]["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("[hygiene] "));
    assert!(
        resp["response"].get("patch").is_none(),
        "validate never patches"
    );
}

#[test]
fn mutate_endpoint_sends_base64_jsonpatch_that_applies() {
    let body = review(pod_request("nginx:1.27"));
    let out = regate(
        &[
            &["eval", "--endpoint", "mutate", "--review", "-"][..],
            &BASIC[..],
        ]
        .concat(),
        Some(&body),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let resp: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resp["response"]["allowed"], true);
    assert_eq!(resp["response"]["patchType"], "JSONPatch");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(resp["response"]["patch"].as_str().unwrap())
        .unwrap();
    let ops: Json = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(
        ops,
        serde_json::json!([
            {"op": "add", "path": "/metadata/labels", "value": {}},
            {"op": "add", "path": "/metadata/labels/checked-by", "value": "regate"}
        ])
    );
}

#[test]
fn explain_goes_to_stderr_and_leaves_stdout_exact() {
    let body = review(pod_request("nginx:latest"));
    let plain = regate(
        &[
            &["eval", "--endpoint", "mutate", "--review", "-"][..],
            &BASIC[..],
        ]
        .concat(),
        Some(&body),
    );
    let explained = regate(
        &[
            &["eval", "--endpoint", "mutate", "--explain", "--review", "-"][..],
            &BASIC[..],
        ]
        .concat(),
        Some(&body),
    );
    assert_eq!(plain.stdout, explained.stdout);
    let err = stderr(&explained);
    assert!(err.contains("evaluated: no-latest"), "{err}");
    assert!(
        err.contains("\"path\": \"/metadata/labels/checked-by\""),
        "{err}"
    );
    // Each operation is attributed to its policy, as `regate check` reports it.
    assert!(
        err.contains("  PATCH no-latest: add /metadata/labels/checked-by = \"regate\"\n"),
        "{err}"
    );
}

#[test]
fn warnings_are_bounded_and_echo_version() {
    let mut req = pod_request("nginx:1");
    req["object"]["metadata"]["name"] = Json::String("x".repeat(300));
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": req}))
    .unwrap();
    let out = regate(
        &[&["eval", "--review", "-"][..], &BASIC[..]].concat(),
        Some(&body),
    );
    let resp: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resp["apiVersion"], "admission.k8s.io/v1beta1");
    let warnings = resp["response"]["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty());
    assert!(warnings.iter().all(|w| w.as_str().unwrap().len() <= 120));
}

#[test]
fn creating_a_system_namespace_is_not_exempt() {
    // `velero` is a system namespace in the bundled configuration; a tenant creating it must still meet
    // tenant-isolation (only platform identities create namespaces), while objects inside it stay exempt.
    let request = serde_json::json!({
        "uid": "ns-1",
        "kind": {"group": "", "version": "v1", "kind": "Namespace"},
        "resource": {"group": "", "version": "v1", "resource": "namespaces"},
        "name": "velero",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["tenant:shop", "system:authenticated"]},
        "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "velero"}},
        "oldObject": null
    });
    let out = regate(&["eval", "--review", "-"], Some(&review(request)));
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let resp: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        resp["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[tenant-isolation]"),
        "{resp}"
    );
    let mut pod = pod_request("nginx:latest");
    pod["namespace"] = Json::String("velero".into());
    let out = regate(&["eval", "--review", "-"], Some(&review(pod)));
    assert_eq!(
        code(&out),
        0,
        "objects inside a system namespace stay exempt: {}",
        stdout(&out)
    );
}
