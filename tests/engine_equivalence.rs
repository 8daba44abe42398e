//! The compiled VM and the interpreter decide identically: every AdmissionReview of the shared corpus
//! (validate and mutate) and every object of the rendered chart corpus (mutate then validate, as
//! `regate check` does) gets the same decision from the bundled library on both evaluators.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use regate::admission::synthesize::{create_request, Requester};
use regate::admission::Review;
use regate::cluster::Inventory;
use regate::policy::{self, BackendChoice, Decision, Evaluator, LoadOptions};

fn evaluator(backend: BackendChoice, inventory: &Inventory) -> Evaluator {
    let set = policy::load(&LoadOptions {
        backend,
        ..LoadOptions::default()
    })
    .expect("bundled policies load");
    Evaluator::new(Arc::new(set), inventory.to_json()).expect("evaluator")
}

fn summary(d: &Decision) -> String {
    serde_json::to_string(&(d.allowed(), &d.results, &d.patch, &d.evaluated)).expect("json")
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[test]
fn the_bundled_library_uses_the_compiled_vm() {
    let set = policy::load(&LoadOptions::default()).expect("bundled policies load");
    for p in &set.policies {
        assert_eq!(
            p.backend_name(),
            "rvm",
            "{}: {:?}",
            p.id,
            p.interpreter_reason()
        );
    }
}

#[test]
fn admission_corpus_gets_identical_decisions() {
    let Some(dir) = common::corpus("admission/reviews") else {
        return;
    };
    let inventory = Inventory::new();
    let rvm = evaluator(BackendChoice::Auto, &inventory);
    let interp = evaluator(BackendChoice::Interpreter, &inventory);
    let mut compared = 0;
    for file in common::files(&dir, "json") {
        let Ok(review) = Review::parse(&std::fs::read(&file).expect("read")) else {
            continue;
        };
        let a = rvm.validate(&review.request, deadline());
        let b = interp.validate(&review.request, deadline());
        assert_eq!(summary(&a), summary(&b), "validate {}", file.display());
        let (a, pa) = rvm.mutate(&review.request, deadline());
        let (b, pb) = interp.mutate(&review.request, deadline());
        assert_eq!(summary(&a), summary(&b), "mutate {}", file.display());
        assert_eq!(pa, pb, "patched object {}", file.display());
        compared += 1;
    }
    assert_eq!(compared, 188);
}

#[test]
fn chart_corpus_gets_identical_decisions() {
    let Some((read, inventory)) = common::chart_corpus() else {
        return;
    };
    let rvm = evaluator(BackendChoice::Auto, &inventory);
    let interp = evaluator(BackendChoice::Interpreter, &inventory);
    let requester = Requester::default();
    let mut differences = Vec::new();
    for doc in &read.documents {
        let request = create_request(&doc.object, "default", &requester);
        let a = rvm.admit(&request, deadline());
        let b = interp.admit(&request, deadline());
        if summary(&a) != summary(&b) {
            differences.push(format!(
                "{}:{}\n  rvm: {}\n  int: {}",
                doc.location.file,
                doc.location.line,
                summary(&a),
                summary(&b)
            ));
        }
    }
    assert_eq!(read.documents.len(), 3050);
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
