//! Per-policy evaluation cost: validates one captured Pod CREATE review (the shared corpus's
//! `kube-rs__gke_pod_create.json`) 300 times with only one bundled policy enabled at a time, on the compiled
//! VM (default) or the interpreter (`INTERP=1`). Figures are recorded in docs/benchmarks.md.
//!
//! Run: `cargo run --release --example policy_timing` (and `INTERP=1 cargo run ...`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use regate::policy::{self, BackendChoice, Evaluator, LoadOptions};

fn main() -> anyhow::Result<()> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/admission/reviews/kube-rs__gke_pod_create.json"
    );
    let Ok(body) = std::fs::read(path) else {
        eprintln!("skipping: {path} is absent");
        return Ok(());
    };
    let review = regate::admission::Review::parse(&body)?;
    let backend = if std::env::var_os("INTERP").is_some() {
        BackendChoice::Interpreter
    } else {
        BackendChoice::Auto
    };
    let all = policy::load(&LoadOptions::default())?;
    let ids: Vec<String> = all.policies.iter().map(|p| p.id.clone()).collect();
    let config = std::env::temp_dir().join("regate-policy-timing.yaml");
    for keep in &ids {
        let mut cfg = String::from("policies:\n");
        for p in ids.iter().filter(|p| *p != keep) {
            cfg.push_str(&format!("  {p}: {{enabled: false}}\n"));
        }
        std::fs::write(&config, cfg)?;
        let set = policy::load(&LoadOptions {
            config_files: vec![config.clone()],
            backend,
            ..Default::default()
        })?;
        let ev = Evaluator::new(
            Arc::new(set),
            serde_json::json!({"cluster": {}, "namespace": {}}),
        )?;
        let n = 300;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                ev.validate(&review.request, Instant::now() + Duration::from_secs(5)),
            );
        }
        println!("{keep:28} {:?}/review", t.elapsed() / n);
    }
    Ok(())
}
