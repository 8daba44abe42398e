//! Reloaders, off the request path. [`watch_policies`] polls the bundle inputs' content fingerprint;
//! a change that holds still for a moment is compiled and tested on the blocking pool (one test thread,
//! so requests keep their cores), and swapped in atomically; a broken bundle, failing tests or an empty
//! set keep the last good bundle, count `regate_bundle_reload_failures_total` and log every problem
//! with its file and line. [`watch_state`] rebuilds the evaluators when the cluster-state generation
//! changes, at most once per debounce interval.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::Shared;
use crate::policy::{self, LoadOptions};

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
        let Ok(seen) = tokio::task::spawn_blocking(move || fingerprint(&load)).await else {
            continue;
        };
        if seen == current {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        let load = shared.options.bundle.load.clone();
        let Ok(settled) = tokio::task::spawn_blocking(move || fingerprint(&load)).await else {
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
                let bundle = Arc::new(policy::build_bundle(&s.options.bundle, Some(1))?);
                s.install_bundle(bundle.clone())
                    .map_err(|e| policy::BundleError {
                        lines: vec![format!("binding the bundle to cluster state: {e}")],
                    })?;
                Ok::<_, policy::BundleError>(bundle)
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
                super::log_bundle(&bundle, "policy bundle reloaded");
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

/// A content fingerprint of everything a bundle is read from (policy directories, followed through
/// symlinks, skipping dot entries like the loader does, and `--config` files). Unreadable entries are
/// part of the fingerprint, so their appearance and disappearance count as changes.
pub fn fingerprint(options: &LoadOptions) -> [u8; 32] {
    fn walk(root: &Path, dir: &Path, h: &mut Sha256) {
        let mut entries: Vec<_> = match std::fs::read_dir(dir) {
            Ok(e) => e.filter_map(Result::ok).collect(),
            Err(e) => {
                h.update(format!("\0err {}: {e}", dir.display()).as_bytes());
                return;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
            if path.is_dir() {
                walk(root, &path, h);
            } else {
                h.update(rel.as_bytes());
                h.update([0]);
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        h.update((bytes.len() as u64).to_le_bytes());
                        h.update(&bytes);
                    }
                    Err(e) => h.update(format!("\0err {e}").as_bytes()),
                }
            }
        }
    }
    let mut h = Sha256::new();
    for dir in &options.policy_dirs {
        h.update(b"\0dir ");
        h.update(dir.to_string_lossy().as_bytes());
        walk(dir, dir, &mut h);
    }
    for file in &options.config_files {
        h.update(b"\0config ");
        h.update(file.to_string_lossy().as_bytes());
        match std::fs::read(file) {
            Ok(bytes) => h.update(&bytes),
            Err(e) => h.update(format!("\0err {e}").as_bytes()),
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.rego"), "package a").unwrap();
        let options = LoadOptions {
            embedded: false,
            policy_dirs: vec![dir.path().to_path_buf()],
            ..LoadOptions::default()
        };
        let one = fingerprint(&options);
        assert_eq!(one, fingerprint(&options));
        std::fs::write(dir.path().join("..ignored"), "x").unwrap();
        assert_eq!(one, fingerprint(&options));
        std::fs::write(dir.path().join("a.rego"), "package b").unwrap();
        assert_ne!(one, fingerprint(&options));
    }
}
