//! The one bundle loader of every entry point (`regate serve`, `eval`, `check` and `test`): the
//! embedded library, the `--policies` directories and the `--config` files layered in that order
//! ([`Layers`]), compiled into a policy set ([`load`]), and, for the server, accepted as a [`Bundle`]
//! only once the bundle's own Rego tests pass ([`build_bundle`]).

use std::sync::Arc;

use super::bundle::{BundleSources, FileKind, SourceError};
use super::load::{self, LoadError, LoadOptions};
use super::testrunner::{self, Outcome, TestRun, TestSelection};
use super::PolicySet;

/// A bundle's sources, layered as [`LoadOptions`] say.
#[derive(Debug, Clone)]
pub struct Layers {
    /// Every bundle file, later layers over earlier ones.
    pub sources: BundleSources,
    /// The `--config` files as `(name, text)`, in order; layered over the bundles' `regate.yaml`.
    pub config: Vec<(String, String)>,
    /// The layer of the first policy directory.
    pub first_dir_layer: usize,
    /// Whether any policy directory was given.
    has_dirs: bool,
}

impl Layers {
    /// Reads the embedded library (when asked for), every policy directory and every `--config` file.
    pub fn read(options: &LoadOptions) -> Result<Layers, LoadError> {
        let mut sources = if options.embedded {
            BundleSources::embedded()
        } else {
            BundleSources::default()
        };
        let first_dir_layer = sources.layers;
        for dir in &options.policy_dirs {
            sources.add_dir(dir)?;
        }
        let mut config = Vec::new();
        for file in &options.config_files {
            let text = std::fs::read_to_string(file).map_err(|source| SourceError::Io {
                path: file.display().to_string(),
                source,
            })?;
            config.push((file.display().to_string(), text));
        }
        Ok(Layers {
            sources,
            config,
            first_dir_layer,
            has_dirs: !options.policy_dirs.is_empty(),
        })
    }

    /// The first layer whose Rego tests run: the first policy directory's, or the embedded library's
    /// when no directory is given.
    pub fn first_tested_layer(&self) -> usize {
        if self.has_dirs {
            self.first_dir_layer
        } else {
            0
        }
    }

    /// The sources the Rego tests compile from: every module, and the tests of the tested layers only
    /// ([`testrunner::drop_unselected_tests`]).
    pub fn test_sources(&self) -> BundleSources {
        let mut sources = self.sources.clone();
        testrunner::drop_unselected_tests(&mut sources, self.first_tested_layer());
        sources
    }
}

/// Reads, checks and compiles a policy set.
pub fn load(options: &LoadOptions) -> Result<PolicySet, LoadError> {
    let layers = Layers::read(options)?;
    load::compile_with(layers.sources, &layers.config, false, options.backend)
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

impl Bundle {
    /// A policy set taken as it is, its Rego tests not run (`regate eval`, which answers with whatever
    /// the bundle says).
    pub fn untested(set: PolicySet) -> Bundle {
        Bundle {
            set: Arc::new(set),
            tests_passed: 0,
        }
    }
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("digest", &self.set.digest)
            .field("policies", &self.set.policies.len())
            .finish()
    }
}

/// Reads, compiles and tests a bundle exactly as [`load`] reads and compiles it (same layering, same
/// digest). `test_threads` bounds the test run's parallelism.
pub fn build_bundle(spec: &BundleSpec, test_threads: Option<usize>) -> Result<Bundle, BundleError> {
    let layers = Layers::read(&spec.load)?;
    let mut set = load::compile_with(
        layers.sources.clone(),
        &layers.config,
        false,
        spec.load.backend,
    )?;
    if set.policies.is_empty() && !spec.allow_empty {
        return Err(BundleError::one(
            "the bundle has no policies; refusing an empty policy set (use --allow-empty for benchmarks)",
        ));
    }
    let tests_passed = if spec.run_tests {
        run_bundle_tests(&layers, test_threads)?
    } else {
        0
    };
    // The server only evaluates this set: an interpreter template no policy uses is dropped.
    set.release_unused_template();
    Ok(Bundle {
        set: Arc::new(set),
        tests_passed,
    })
}

/// Runs the Rego tests of the tested layers; returns how many passed, or every failing test as
/// `file:line: OUTCOME id: message`.
fn run_bundle_tests(layers: &Layers, test_threads: Option<usize>) -> Result<usize, BundleError> {
    let test_sources = layers.test_sources();
    if test_sources.of_kind(FileKind::Test).next().is_none() {
        return Ok(0);
    }
    let test_set = load::compile(test_sources, &layers.config, true)?;
    let selection = TestSelection {
        min_layer: layers.first_tested_layer(),
        ..TestSelection::default()
    };
    let run = crate::workers::run_on(test_threads, || {
        testrunner::run_tests(&test_set, &selection)
    })
    .map_err(|e| BundleError::one(format!("starting test threads: {e}")))?;
    if !run.all_passed() {
        return Err(failed_tests(&run));
    }
    Ok(run.passed())
}

/// The error of a test run that did not pass: the summary, then one line per test that did not pass.
fn failed_tests(run: &TestRun) -> BundleError {
    let mut lines = vec![format!(
        "the bundle's Rego tests fail: {}",
        testrunner::summary_line(run)
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
    BundleError { lines }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// `testdata/bundles/basic` alone, with its tests.
    pub(crate) fn basic() -> BundleSpec {
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
}
