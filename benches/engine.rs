//! Engine benchmarks over the shared corpora: parsing, evaluation per object and per review on the compiled
//! VM and on the interpreter, and `check` throughput (objects/s on one core) over the rendered chart corpus.
//!
//! Run: `cargo bench --bench engine` (figures and commands are recorded in docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use regate::admission::synthesize::{create_request, Requester};
use regate::admission::Review;
use regate::cluster::Inventory;
use regate::manifest::{self, Document};
use regate::policy::{self, BackendChoice, Evaluator, LoadOptions};

fn corpus(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [dir.to_path_buf(), dir.join("extra")]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn evaluator(backend: BackendChoice, docs: &[Document]) -> Evaluator {
    let set = policy::load(&LoadOptions {
        backend,
        ..LoadOptions::default()
    })
    .expect("bundled policies load");
    let mut inventory = Inventory::new();
    for d in docs {
        inventory.add(&d.object, "default");
    }
    Evaluator::new(Arc::new(set), inventory.to_json()).expect("evaluator")
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn benches(c: &mut Criterion) {
    let Some(charts) = corpus("charts") else {
        return;
    };
    let files = yaml_files(&charts);
    let read = manifest::read_inputs(&files).expect("corpus");
    let docs = read.documents;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();

    let mut parse = c.benchmark_group("parse");
    parse.throughput(Throughput::Bytes(bytes));
    parse.sample_size(10);
    parse.bench_function("chart_corpus_yaml", |b| {
        b.iter(|| manifest::read_inputs(&files).expect("read"))
    });
    parse.finish();

    let requester = Requester::default();
    let requests: Vec<serde_json::Value> = docs
        .iter()
        .map(|d| create_request(&d.object, "default", &requester))
        .collect();
    let backends = [
        ("rvm", BackendChoice::Auto),
        ("interpreter", BackendChoice::Interpreter),
    ];

    // Per-object evaluation on a representative object of each kind that policies look at.
    let mut per_object = c.benchmark_group("admit_object");
    for kind in [
        "Deployment",
        "StatefulSet",
        "Secret",
        "Ingress",
        "ConfigMap",
    ] {
        let Some(request) = requests.iter().find(|r| r["kind"]["kind"] == kind) else {
            continue;
        };
        for (name, backend) in backends {
            let ev = evaluator(backend, &docs);
            per_object.bench_with_input(BenchmarkId::new(name, kind), request, |b, r| {
                b.iter(|| ev.admit(r, far()))
            });
        }
    }
    per_object.finish();

    // Validate one captured Pod CREATE review, as the webhook does per request (parse + validate + response).
    if let Some(dir) = corpus("admission/reviews") {
        let body = std::fs::read(dir.join("kube-rs__gke_pod_create.json")).expect("review");
        let mut review_group = c.benchmark_group("validate_review");
        for (name, backend) in backends {
            let ev = evaluator(backend, &[]);
            review_group.bench_function(name, |b| {
                b.iter(|| {
                    let review = Review::parse(&body).expect("parse");
                    let d = ev.validate(&review.request, far());
                    regate::policy::response::build(
                        &review,
                        &d,
                        regate::admission::Endpoint::Validate,
                    )
                })
            });
        }
        review_group.finish();
    }

    // `check` throughput: every corpus object through admit on one thread.
    let mut check = c.benchmark_group("check_corpus_one_core");
    check.throughput(Throughput::Elements(requests.len() as u64));
    check.sample_size(10);
    check.measurement_time(Duration::from_secs(20));
    for (name, backend) in backends {
        let ev = evaluator(backend, &docs);
        check.bench_function(name, |b| {
            b.iter(|| {
                for r in &requests {
                    std::hint::black_box(ev.admit(r, far()));
                }
            })
        });
    }
    check.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
