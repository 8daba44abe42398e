//! The server and `regate eval` agree: every AdmissionReview of the shared corpus, posted to
//! `regate serve --dev` (bundled library, empty synced cluster state) over TLS, gets exactly the JSON
//! `regate eval --review FILE [--endpoint mutate]` prints; reviews eval rejects as malformed (exit 2)
//! get a 400 from the server.

mod common;
mod server_common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use server_common::{Client, Server};

/// `regate eval` for one file and endpoint: (exit code, stdout JSON if any).
fn eval(file: &PathBuf, endpoint: &str) -> (i32, Option<Json>) {
    let out = Command::new(env!("CARGO_BIN_EXE_regate"))
        .args(["eval", "--endpoint", endpoint, "--review"])
        .arg(file)
        .current_dir(common::root())
        .output()
        .expect("run regate eval");
    let code = out.status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&out.stdout).ok();
    (code, json)
}

#[test]
fn every_corpus_review_is_answered_as_eval_answers_it() {
    let Some(dir) = common::corpus("admission/reviews") else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 189);

    // Equivalence is under test here, not the bundled library's own tests.
    let (server, _ca_dir) = Server::start_dev(&["--skip-bundle-tests"]);
    let addr = server.addr;
    let ca = server.ca_pem.clone();

    // Evaluate with the CLI on two threads while the server answers.
    let queue = Arc::new(Mutex::new(files.clone()));
    let mismatches = Arc::new(Mutex::new(Vec::<String>::new()));
    let counts = Arc::new(Mutex::new((0usize, 0usize)));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (queue, mismatches, counts, ca) =
                (queue.clone(), mismatches.clone(), counts.clone(), ca.clone());
            std::thread::spawn(move || {
                let mut client = Client::new(addr, &ca);
                loop {
                    let Some(file) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let name = file.file_name().unwrap().to_string_lossy().to_string();
                    let body = std::fs::read(&file).unwrap();
                    for endpoint in ["validate", "mutate"] {
                        let (code, expected) = eval(&file, endpoint);
                        let resp = client.post_json(&format!("/{endpoint}"), &body);
                        match code {
                            0 | 1 => {
                                counts.lock().unwrap().0 += 1;
                                let got = (resp.status == 200).then(|| resp.json());
                                if got != expected {
                                    mismatches.lock().unwrap().push(format!(
                                        "{name} /{endpoint}: server {} {}\n  eval {}",
                                        resp.status,
                                        resp.text(),
                                        expected.map(|e| e.to_string()).unwrap_or_default()
                                    ));
                                }
                            }
                            2 => {
                                counts.lock().unwrap().1 += 1;
                                if resp.status != 400 {
                                    mismatches.lock().unwrap().push(format!(
                                        "{name} /{endpoint}: eval rejects it, server answered {} {}",
                                        resp.status,
                                        resp.text()
                                    ));
                                } else {
                                    let reason = resp.json()["reason"].clone();
                                    assert!(reason.is_string(), "{name}: {}", resp.text());
                                }
                            }
                            other => mismatches
                                .lock()
                                .unwrap()
                                .push(format!("{name}: eval exited {other}")),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mismatches = mismatches.lock().unwrap();
    let (answered, rejected) = *counts.lock().unwrap();
    eprintln!("corpus over TLS: {answered} answers equal to eval, {rejected} rejected as malformed by both");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(answered >= 2 * 91, "{answered}");
    // --dev holds static cluster state, which never changes: no denial by a policy that reads it
    // waits to be confirmed on newer state (the corpus has many such denials: namespaces the empty
    // state does not know).
    let metrics = Client::new(addr, &ca).get("/metrics").text();
    for outcome in ["reversed", "confirmed", "unchanged"] {
        let series = format!("regate_denials_rechecked_total{{outcome=\"{outcome}\"}}");
        assert_eq!(
            server_common::metric_value(&metrics, &series),
            0.0,
            "{series}"
        );
    }
}
