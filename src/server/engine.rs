//! What the server decides with: a [`Bundle`] (the compiled policy set, checked by its own Rego tests)
//! bound to one cluster-state snapshot as an [`Active`] evaluator, swapped atomically by the reloaders. [`decide`] is the one
//! evaluation path: exactly `regate eval`'s (`Evaluator::validate` / `Evaluator::mutate(..).0`) when
//! cluster state is available; otherwise every applicable `requiresInventory` policy yields the failure
//! mode's result ("cluster state unavailable: <reason>") instead of being evaluated, and the remaining
//! policies are evaluated as usual.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::admission::{Endpoint, RequestFacts, RequestRef};
use crate::cluster::state::{empty_inventory, StateSnapshot};
use crate::policy::bundle::{BundleSources, FileKind};
use crate::policy::config::OnError;
use crate::policy::decision::{PolicyResult, RuleKind};
use crate::policy::load::{self, LoadError, LoadOptions};
use crate::policy::testrunner::{self, Outcome, TestSelection};
use crate::policy::{Decision, Evaluator, Extras, Policy, PolicySet};
use crate::report::model::{Action, Severity};

/// What to do with a policy that needs cluster state when cluster state is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// The policy's result is a deny (fail closed; the default).
    #[default]
    Deny,
    /// The policy's result is a warning (fail open, visibly).
    Allow,
}

/// How a bundle is read and checked.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    pub load: LoadOptions,
    /// Run the bundle's Rego tests (`*_test.rego`) before accepting it.
    pub run_tests: bool,
    /// Accept a bundle without policies (benchmarks of the bare server).
    pub allow_empty: bool,
}

/// A bundle that was not accepted; each line is one problem (`file:line:col: message` where known).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .lines.join("\n"))]
pub struct BundleError {
    pub lines: Vec<String>,
}

impl BundleError {
    fn one(line: impl Into<String>) -> BundleError {
        BundleError {
            lines: vec![line.into()],
        }
    }
}

impl From<LoadError> for BundleError {
    fn from(err: LoadError) -> Self {
        BundleError {
            lines: err.to_string().lines().map(str::to_string).collect(),
        }
    }
}

/// A compiled, tested policy set.
pub struct Bundle {
    pub set: Arc<PolicySet>,
    /// Rego tests that ran and passed.
    pub tests_passed: usize,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("digest", &self.set.digest)
            .field("policies", &self.set.policies.len())
            .finish()
    }
}

fn read_config_files(options: &LoadOptions) -> Result<Vec<(String, String)>, BundleError> {
    options
        .config_files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .map(|text| (file.display().to_string(), text))
                .map_err(|e| BundleError::one(format!("{}: {e}", file.display())))
        })
        .collect()
}

/// Reads, compiles and tests a bundle exactly as `policy::load` reads and compiles it (same layering,
/// same digest). `test_threads` bounds the test run's parallelism.
pub fn build_bundle(spec: &BundleSpec, test_threads: Option<usize>) -> Result<Bundle, BundleError> {
    let options = &spec.load;
    let mut sources = if options.embedded {
        BundleSources::embedded()
    } else {
        BundleSources::default()
    };
    let first_dir_layer = sources.layers;
    for dir in &options.policy_dirs {
        sources.add_dir(dir).map_err(LoadError::from)?;
    }
    let extra = read_config_files(options)?;
    let mut set = load::compile_with(sources.clone(), &extra, false, options.backend)?;
    if set.policies.is_empty() && !spec.allow_empty {
        return Err(BundleError::one(
            "the bundle has no policies; refusing an empty policy set (use --allow-empty for benchmarks)",
        ));
    }

    let mut tests_passed = 0;
    if spec.run_tests {
        let min_layer = if options.policy_dirs.is_empty() {
            0
        } else {
            first_dir_layer
        };
        let mut test_sources = sources.clone();
        testrunner::drop_unselected_tests(&mut test_sources, min_layer);
        if test_sources.of_kind(FileKind::Test).next().is_some() {
            let test_set = load::compile(test_sources, &extra, true)?;
            let selection = TestSelection {
                min_layer,
                ..TestSelection::default()
            };
            let execute = || testrunner::run_tests(&test_set, &selection);
            let run = match test_threads {
                Some(n) => rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .build()
                    .map_err(|e| BundleError::one(format!("starting test threads: {e}")))?
                    .install(execute),
                None => execute(),
            };
            if !run.all_passed() {
                let mut lines = vec![format!(
                    "the bundle's Rego tests fail: {}",
                    testrunner::summary_line(&run)
                )];
                for r in run.results.iter().filter(|r| r.outcome != Outcome::Pass) {
                    lines.push(format!(
                        "{}:{}: {} {}{}",
                        r.case.file,
                        r.case.line,
                        r.outcome.label(),
                        r.case.id,
                        r.message
                            .as_deref()
                            .map(|m| format!(": {}", m.lines().next().unwrap_or("")))
                            .unwrap_or_default()
                    ));
                }
                return Err(BundleError { lines });
            }
            tests_passed = run.passed();
        }
    }

    // The server only evaluates this set: an interpreter template no policy uses is dropped.
    set.release_unused_template();
    Ok(Bundle {
        set: Arc::new(set),
        tests_passed,
    })
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

/// A bundle bound to one cluster-state snapshot.
pub struct Active {
    pub bundle: Arc<Bundle>,
    pub evaluator: Arc<Evaluator>,
    /// The cluster-state generation loaded; `None` until a synced snapshot has been loaded.
    pub generation: Option<u64>,
    pub inventory: Arc<Json>,
}

impl Active {
    /// Binds `bundle` to `snapshot` (or to an empty, not-synced inventory).
    pub fn build(bundle: Arc<Bundle>, snapshot: Option<&StateSnapshot>) -> anyhow::Result<Active> {
        let inventory = snapshot
            .map(|s| s.inventory.clone())
            .unwrap_or_else(|| Arc::new(empty_inventory()));
        let evaluator = Arc::new(Evaluator::new(bundle.set.clone(), (*inventory).clone())?);
        Ok(Active {
            bundle,
            evaluator,
            generation: snapshot.map(|s| s.generation),
            inventory,
        })
    }

    /// The tenant of `namespace` from cluster state: the Namespace's `labelKey` label
    /// (`tenancy.labelKey` in regate.yaml, default `regate.dev/tenant`).
    pub fn tenant_of(&self, namespace: &str) -> Option<String> {
        let key = self.bundle.set.config.tenant_label_key();
        crate::cluster::inventory::namespace_tenant(&self.inventory, namespace, key)
    }
}

fn relevant(
    policy: &Policy,
    endpoint: Endpoint,
    facts: &RequestFacts,
    request: RequestRef,
) -> bool {
    match endpoint {
        Endpoint::Validate => policy.deny_rule.is_some() || policy.warn_rule.is_some(),
        Endpoint::Mutate => {
            policy.patch_rule.is_some()
                && matches!(facts.operation, "CREATE" | "UPDATE")
                && request.has_object()
        }
    }
}

/// The failure mode's result for a policy that cannot be evaluated for lack of cluster state.
pub fn unavailable_result(policy: &Policy, reason: &str, mode: FailureMode) -> PolicyResult {
    crate::policy::evaluate::failure_result(
        policy,
        mode == FailureMode::Deny,
        format!("cluster state unavailable: {reason}"),
    )
}

/// The decision for one request. `unavailable` is why cluster state cannot be used, if it cannot;
/// `images` are the image signature verdicts (`input.images`) when verification is on.
pub fn decide(
    active: &Active,
    request: RequestRef,
    endpoint: Endpoint,
    deadline: Instant,
    unavailable: Option<&str>,
    mode: FailureMode,
    images: Option<&Json>,
) -> Decision {
    let run = |skip_inventory: bool| {
        let extras = Extras {
            images,
            skip_inventory,
        };
        match (endpoint, request) {
            (Endpoint::Validate, RequestRef::Json(r)) => {
                active.evaluator.validate_with(r, extras, deadline)
            }
            (Endpoint::Validate, RequestRef::Value(r)) => {
                active.evaluator.validate_value(r, extras, deadline)
            }
            (Endpoint::Mutate, request) => {
                active
                    .evaluator
                    .mutate_with(&request.to_json(), extras, deadline)
                    .0
            }
        }
    };
    let Some(reason) = unavailable else {
        return run(false);
    };
    let facts = request.facts();
    let affected: Vec<&Policy> = active
        .bundle
        .set
        .policies
        .iter()
        .filter(|p| p.metadata.requires_inventory)
        .filter(|p| relevant(p, endpoint, &facts, request))
        .filter(|p| active.evaluator.applies(p, &facts))
        .collect();
    if affected.is_empty() {
        return run(false);
    }
    // The policies that need cluster state are left out and replaced by their failure-mode results.
    let mut decision = run(true);
    for policy in affected {
        decision.evaluated.push(policy.id.clone());
        decision
            .results
            .push(unavailable_result(policy, reason, mode));
    }
    decision
}

/// The decision when evaluation could not finish (deadline missed, evaluation task failed): one result
/// from `regate` itself, enforced per the bundle's `onError` (deny by default).
pub fn failure_decision(on_error: OnError, message: &str) -> Decision {
    let action = match on_error {
        OnError::Deny => Action::Deny,
        OnError::Warn => Action::Warn,
    };
    Decision {
        results: vec![PolicyResult {
            policy: "regate".into(),
            title: "Evaluation failed".into(),
            severity: Severity::High,
            action,
            rule: RuleKind::Error,
            message: message.to_string(),
            field: None,
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn basic() -> BundleSpec {
        BundleSpec {
            load: LoadOptions {
                embedded: false,
                policy_dirs: vec![PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/testdata/bundles/basic"
                ))],
                ..LoadOptions::default()
            },
            run_tests: true,
            allow_empty: false,
        }
    }

    #[test]
    fn same_digest_as_policy_load() {
        let spec = basic();
        let bundle = build_bundle(&spec, Some(1)).unwrap();
        let loaded = crate::policy::load(&spec.load).unwrap();
        assert_eq!(bundle.set.digest, loaded.digest);
    }

    #[test]
    fn empty_bundles_are_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = basic();
        spec.load.policy_dirs = vec![dir.path().to_path_buf()];
        let err = build_bundle(&spec, Some(1)).unwrap_err();
        assert!(err.to_string().contains("no policies"), "{err}");
        spec.allow_empty = true;
        assert!(build_bundle(&spec, Some(1))
            .unwrap()
            .set
            .policies
            .is_empty());
    }

    #[test]
    fn failing_tests_reject_the_bundle_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(
            dir.path().join("p/policy.rego"),
            "# METADATA\n# title: P\npackage regate.policies.p\n\ndeny contains \"x\" if input.review.operation == \"DELETE\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p/policy_test.rego"),
            "package regate.policies.p_test\n\nimport data.regate.policies.p\n\ntest_fires if {\n\tcount(p.deny) == 1 with input as {\"review\": {\"operation\": \"CREATE\"}}\n}\n",
        )
        .unwrap();
        let mut spec = basic();
        spec.load.policy_dirs = vec![dir.path().to_path_buf()];
        let err = build_bundle(&spec, Some(1)).unwrap_err();
        assert!(err.lines[0].contains("Rego tests fail"), "{err}");
        assert!(err.lines[1].contains("policy_test.rego:5: FAIL"), "{err}");
        spec.run_tests = false;
        assert!(build_bundle(&spec, Some(1)).is_ok());
    }

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

    #[test]
    fn unavailable_state_replaces_requires_inventory_policies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("inv")).unwrap();
        std::fs::write(
            dir.path().join("inv/policy.rego"),
            "# METADATA\n# title: Inv\n# custom:\n#   requiresInventory: true\npackage regate.policies.inv\n\ndeny contains \"namespace unknown\" if not data.inventory.cluster.v1.Namespace[input.review.namespace]\n\npatch contains {\"op\": \"add\", \"path\": \"/metadata/labels/inv\", \"value\": \"x\"} if true\n",
        )
        .unwrap();
        let mut spec = basic();
        spec.load.policy_dirs.push(dir.path().to_path_buf());
        let bundle = Arc::new(build_bundle(&spec, Some(1)).unwrap());
        let active = Active::build(bundle, None).unwrap();
        let request = serde_json::json!({"uid": "u", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"metadata": {"name": "p", "labels": {"owner": "x", "checked-by": "y"}},
                       "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}});
        // Both readings of the request (JSON, and the value the server reads `/validate` bodies into).
        let value = crate::policy::evaluate::to_value(&request);
        for request in [RequestRef::Json(&request), RequestRef::Value(&value)] {
            let deadline = Instant::now() + Duration::from_secs(2);
            let normal = decide(
                &active,
                request,
                Endpoint::Validate,
                deadline,
                None,
                FailureMode::Deny,
                None,
            );
            assert_eq!(
                normal.results.iter().filter(|r| r.policy == "inv").count(),
                1
            );
            assert_eq!(
                normal
                    .results
                    .iter()
                    .find(|r| r.policy == "inv")
                    .unwrap()
                    .message,
                "namespace unknown"
            );
            let failed = decide(
                &active,
                request,
                Endpoint::Validate,
                deadline,
                Some("not yet synced"),
                FailureMode::Deny,
                None,
            );
            let inv: Vec<_> = failed
                .results
                .iter()
                .filter(|r| r.policy == "inv")
                .collect();
            assert_eq!(inv.len(), 1);
            assert_eq!(inv[0].message, "cluster state unavailable: not yet synced");
            assert_eq!(inv[0].action, Action::Deny);
            assert!(!failed.allowed());
            let open = decide(
                &active,
                request,
                Endpoint::Validate,
                deadline,
                Some("not yet synced"),
                FailureMode::Allow,
                None,
            );
            assert!(open.allowed());
            // Mutation: the inventory policy's patch is not applied while state is unavailable.
            let m = decide(
                &active,
                request,
                Endpoint::Mutate,
                deadline,
                Some("x"),
                FailureMode::Allow,
                None,
            );
            assert!(
                m.patch
                    .iter()
                    .all(|op| op["path"] != "/metadata/labels/inv"),
                "{:?}",
                m.patch
            );
            let m = decide(
                &active,
                request,
                Endpoint::Mutate,
                deadline,
                None,
                FailureMode::Allow,
                None,
            );
            assert!(m
                .patch
                .iter()
                .any(|op| op["path"] == "/metadata/labels/inv"));
        }
    }
}
