//! Reloaders, off the request path. [`watch_policies`] polls the bundle inputs' content fingerprint;
//! a change that holds still for a moment is compiled and tested on the blocking pool (one test thread,
//! so requests keep their cores), and swapped in atomically; a broken bundle, failing tests or an empty
//! set keep the last good bundle, count `regate_bundle_reload_failures_total` and log every problem
//! with its file and line. [`watch_state`] rebuilds the evaluators when the cluster-state generation
//! changes, at most once per debounce interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::engine;
use super::Shared;

/// How long a changed bundle must stay unchanged before it is loaded (half-written files).
pub const SETTLE: Duration = Duration::from_millis(300);

/// Polls the policy inputs and reloads on change until `close` turns true.
pub async fn watch_policies(
    shared: Arc<Shared>,
    mut current: [u8; 32],
    mut close: watch::Receiver<bool>,
) {
    let interval = shared.options.reload_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = super::signalled(&mut close) => return,
        }
        let load = shared.options.bundle.load.clone();
        let Ok(seen) = tokio::task::spawn_blocking(move || engine::fingerprint(&load)).await else {
            continue;
        };
        if seen == current {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        let load = shared.options.bundle.load.clone();
        let Ok(settled) = tokio::task::spawn_blocking(move || engine::fingerprint(&load)).await
        else {
            continue;
        };
        if settled != seen {
            continue; // still being written; look again next round
        }
        current = settled;
        tracing::info!("policy bundle changed on disk; compiling and testing");
        let s = shared.clone();
        let result = tokio::task::spawn_blocking(move || {
            let attempt = (|| {
                let bundle = Arc::new(engine::build_bundle(&s.options.bundle, Some(1))?);
                s.install_bundle(bundle.clone())
                    .map_err(|e| engine::BundleError {
                        lines: vec![format!("binding the bundle to cluster state: {e}")],
                    })?;
                Ok::<_, engine::BundleError>(bundle)
            })();
            // Whatever the outcome, compiling and testing allocated and freed a lot (and a replaced
            // bundle may just have been dropped): give it back once.
            crate::memory::release_freed_heap();
            attempt
        })
        .await;
        match result {
            Ok(Ok(bundle)) => {
                shared.metrics.bundle_reloads.inc();
                tracing::info!(
                    digest = %bundle.set.digest,
                    policies = bundle.set.policies.len(),
                    tests_passed = bundle.tests_passed,
                    "policy bundle reloaded"
                );
            }
            Ok(Err(err)) => {
                shared.metrics.bundle_reload_failures.inc();
                let keeping = shared
                    .active
                    .load_full()
                    .map(|a| a.bundle.set.digest.clone())
                    .unwrap_or_default();
                tracing::error!(keeping = %keeping, "policy bundle rejected; keeping the last good bundle");
                for line in &err.lines {
                    tracing::error!(problem = %line, "policy bundle problem");
                }
            }
            Err(err) => {
                shared.metrics.bundle_reload_failures.inc();
                tracing::error!(error = %err, "policy reload task failed; keeping the last good bundle");
            }
        }
    }
}

/// Rebuilds the evaluators when cluster state moves to a new generation, until `close` turns true.
pub async fn watch_state(shared: Arc<Shared>, mut close: watch::Receiver<bool>) {
    let mut was_available: Option<bool> = None;
    loop {
        let s = shared.clone();
        match tokio::task::spawn_blocking(move || s.refresh_state()).await {
            Ok(Ok(true)) => {
                let generation = shared
                    .active
                    .load_full()
                    .and_then(|a| a.generation)
                    .unwrap_or(0);
                tracing::debug!(generation, "evaluators rebuilt for new cluster state");
            }
            Ok(Ok(false)) => {}
            Ok(Err(err)) => {
                tracing::error!(error = %err, "rebuilding evaluators for cluster state failed")
            }
            Err(err) => tracing::error!(error = %err, "cluster state task failed"),
        }
        let reason = shared
            .active
            .load_full()
            .and_then(|a| shared.unavailable_reason(&a));
        let available = reason.is_none();
        shared.metrics.cluster_synced.set(i64::from(available));
        if was_available != Some(available) {
            match &reason {
                None => tracing::info!(
                    source = shared.cluster.describe(),
                    "cluster state available"
                ),
                Some(r) => {
                    tracing::warn!(source = shared.cluster.describe(), reason = %r, "cluster state unavailable")
                }
            }
            was_available = Some(available);
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.options.state_debounce) => {}
            _ = super::signalled(&mut close) => return,
        }
    }
}
