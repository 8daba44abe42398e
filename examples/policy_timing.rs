//! Per-policy evaluation cost: validates one captured Pod CREATE review (the shared corpus's
//! `kube-rs__gke_pod_create.json`) 300 times with only one bundled policy enabled at a time, on the compiled
//! VM (default) or the interpreter (`INTERP=1`). Figures are recorded in docs/benchmarks.md.
//!
//! Run: `cargo run --release --example policy_timing` (and `INTERP=1 cargo run ...`); `POLICY=<id>` times
//! one policy only (`POLICY=all` the whole set only) and `N=<count>` sets the number of reviews (for profilers); `POLICIES=<dir>` layers a bundle
//! directory over the embedded one (probe policies); `REVIEW=<file>` times another review;
//! `EXCEPT=<id>` times the whole set without that policy (its marginal cost is the difference to `all`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use regate::policy::{self, BackendChoice, Evaluator, LoadOptions};

fn main() -> anyhow::Result<()> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/admission/reviews/kube-rs__gke_pod_create.json"
    );
    let path = std::env::var("REVIEW").unwrap_or_else(|_| path.to_string());
    let Ok(body) = std::fs::read(&path) else {
        eprintln!("skipping: {path} is absent");
        return Ok(());
    };
    let review = regate::admission::Review::parse(&body)?;
    let backend = if std::env::var_os("INTERP").is_some() {
        BackendChoice::Interpreter
    } else {
        BackendChoice::Auto
    };
    let policy_dirs: Vec<std::path::PathBuf> = std::env::var_os("POLICIES")
        .map(Into::into)
        .into_iter()
        .collect();
    let all = policy::load(&LoadOptions {
        policy_dirs: policy_dirs.clone(),
        ..Default::default()
    })?;
    let ids: Vec<String> = all.policies.iter().map(|p| p.id.clone()).collect();
    let config = std::env::temp_dir().join("regate-policy-timing.yaml");
    let only = std::env::var("POLICY").ok();
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let except = std::env::var("EXCEPT").ok();
    let all = match &except {
        Some(e) => format!("(all but {e})"),
        None => "(all policies)".to_string(),
    };
    // With EXCEPT, only the whole set (less that policy) is timed.
    let only = if except.is_some() {
        Some("all".to_string())
    } else {
        only
    };
    let runs: Vec<&String> = ids
        .iter()
        .filter(|id| only.as_deref().is_none_or(|o| o == id.as_str()))
        .chain(only.as_deref().is_none_or(|o| o == "all").then_some(&all))
        .collect();
    for keep in runs {
        let mut cfg = match &except {
            Some(_) => "policies:\n".to_string(),
            None => format!("policies:\n  {}: {{enabled: true}}\n", ids[0]),
        };
        let off = |p: &&String| match &except {
            Some(e) => *p == e,
            None => *p != keep && keep != &all,
        };
        for p in ids.iter().filter(off) {
            cfg.push_str(&format!("  {p}: {{enabled: false}}\n"));
        }
        std::fs::write(&config, cfg)?;
        let set = policy::load(&LoadOptions {
            config_files: vec![config.clone()],
            policy_dirs: policy_dirs.clone(),
            backend,
            ..Default::default()
        })?;
        let ev = Evaluator::new(
            Arc::new(set),
            serde_json::json!({"cluster": {}, "namespace": {}}),
        )?;
        // The machine is shared: report the fastest batch of 25 (the least disturbed), and the mean.
        let mut best = Duration::MAX;
        let start = Instant::now();
        for _ in 0..n.div_ceil(25) {
            let t = Instant::now();
            for _ in 0..25 {
                std::hint::black_box(
                    ev.validate(&review.request, Instant::now() + Duration::from_secs(5)),
                );
            }
            best = best.min(t.elapsed() / 25);
        }
        let mean = start.elapsed() / n.div_ceil(25).saturating_mul(25).max(1);
        println!("{keep:28} {best:>10.1?}/review (fastest batch)  {mean:>10.1?} (mean)");
    }
    Ok(())
}
