//! One decision everywhere, for Gatekeeper constraints: every sample object of every template
//! directory in testdata/gatekeeper is judged by `regate serve` over TLS (its CREATE AdmissionReview,
//! as `regate check` synthesizes it) and by `regate check` on the manifest; the denials and warnings
//! must be the same.

mod common;
mod server_common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regate::admission::synthesize::{create_request, Requester};
use serde_json::{json, Value as Json};
use server_common::Server;

/// Template directories with a suite (the deliberately failing suite excluded), and their samples.
fn template_dirs() -> Vec<(String, Vec<PathBuf>)> {
    let root = common::root().join("testdata/gatekeeper");
    let mut dirs: Vec<(String, Vec<PathBuf>)> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("suite.yaml").is_file() && e.file_name() != "failing-suite")
        .map(|e| {
            let mut samples: Vec<PathBuf> = std::fs::read_dir(e.path().join("samples"))
                .map(|r| r.flatten().map(|s| s.path()).collect())
                .unwrap_or_default();
            samples.retain(|p| p.extension().is_some_and(|x| x == "yaml"));
            samples.sort();
            (
                format!("testdata/gatekeeper/{}", e.file_name().to_string_lossy()),
                samples,
            )
        })
        .collect();
    dirs.sort();
    dirs
}

/// What `regate check` finds in one manifest: deny and warn messages as `[policy] message`.
fn check_findings(dir: &str, sample: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = common::regate(
        &[
            "check",
            "--no-bundled",
            "--policies",
            dir,
            "-f",
            "json",
            sample.to_str().unwrap(),
        ],
        None,
    );
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", sample.display(), common::stderr(&out)));
    let mut deny = BTreeSet::new();
    let mut warn = BTreeSet::new();
    for f in report["findings"].as_array().unwrap() {
        let line = format!(
            "[{}] {}",
            f["policy"].as_str().unwrap(),
            f["message"].as_str().unwrap()
        );
        match f["action"].as_str() {
            Some("deny") => deny.insert(line),
            Some("warn") => warn.insert(line),
            _ => false,
        };
    }
    (deny, warn)
}

#[test]
fn serve_and_check_decide_every_sample_alike() {
    let dirs = template_dirs();
    assert!(dirs.len() >= 12, "{}", dirs.len());
    let mut judged = 0;
    let mut denied = 0;
    for (dir, samples) in dirs {
        let (server, _ca_dir) = Server::start_dev(&["--no-bundled", "--policies", &dir]);
        let mut client = server.client();
        for sample in samples {
            let text = std::fs::read_to_string(&sample).unwrap();
            let documents = regate::manifest::decode_stream(&text);
            let [document] = documents.as_slice() else {
                panic!("{}: one object per sample", sample.display());
            };
            let object = serde_json::to_value(document.value.as_ref().unwrap()).unwrap();
            let request = create_request(&object, "default", &Requester::default());
            let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
            let response = client.post_json("/validate", review.to_string().as_bytes());
            assert_eq!(
                response.status,
                200,
                "{}: {}",
                sample.display(),
                response.text()
            );
            let answer = response.json()["response"].clone();
            let (deny, warn) = check_findings(&dir, &sample);
            let name = sample.display();
            assert_eq!(
                answer["allowed"],
                deny.is_empty(),
                "{name}: serve {answer}, check {deny:?}"
            );
            let message = answer["status"]["message"].as_str().unwrap_or_default();
            for line in &deny {
                assert!(
                    message.contains(line.as_str()),
                    "{name}: {line:?} not in {message:?}"
                );
            }
            let warnings: Vec<&str> = answer["warnings"]
                .as_array()
                .map(|w| w.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            assert_eq!(
                warnings.len(),
                warn.len(),
                "{name}: serve {warnings:?}, check {warn:?}"
            );
            for line in &warn {
                // Warnings are bounded in length; the start of each must be there.
                let start: String = line.chars().take(60).collect();
                assert!(
                    warnings.iter().any(|w| w.starts_with(&start)),
                    "{name}: {line:?} not in {warnings:?}"
                );
            }
            judged += 1;
            denied += usize::from(!deny.is_empty());
        }
    }
    assert!(
        judged >= 30 && denied >= 10,
        "{judged} samples, {denied} denied"
    );
}
