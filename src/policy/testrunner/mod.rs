//! The Rego unit-test runner behind `regate test`, modelled on `opa test`.
//!
//! A test is a rule whose name starts with `test_` in a `*_test.rego` module; its id is
//! `<package>.<rule>` (`data.regate.policies.non_root_test.test_root_denied`), and a rule defined
//! several times in one package (Rego's incremental definitions) is one test. Each test is evaluated on
//! its own clone of the set's warm interpreter template with an empty input, bounded by a wall-clock
//! timer: `true` passes; `false`, undefined or any other value fails (as in OPA, a test whose body is
//! undefined fails); an evaluation error, an exceeded timer or a panic is an error. `print()` output is
//! gathered per test.
//!
//! With coverage, every clone records which lines it evaluated; the per-test reports are merged (a line
//! is covered when any test covered it) over the non-test modules of the selected layers. Modules no
//! test touched at all are absent from regorus's reports, so their coverable lines are computed here
//! from the AST, the same way regorus does, and count as uncovered. "Covered" means evaluated, as in
//! regorus: note that a reference through an import alias (`import data.regate.policies.x` then
//! `x.deny`) makes regorus evaluate every rule of that package, so the first expressions of rules a
//! test never meant to exercise count as covered; full references (`data.regate.policies.x.deny`) do
//! not.
//!
//! Unlike `opa test`, which runs each definition of a repeated test name separately, a repeated name is
//! one Rego rule here and passes when any of its definitions is true.
//!
//! Results are always ordered by (file, line, id), whatever the number of worker threads. The text, JSON
//! and JUnit writers are part of the runner too, so `cli::test` only wires arguments to them.
//!
//! This module owns the public types (selection, cases, outcomes, results, the run); `discovery` finds
//! the tests, `run` evaluates them, `coverage` measures and merges line coverage and `report` writes
//! the results. Everything callers use is re-exported here.

use std::time::Duration;

use regex::Regex;

mod coverage;
mod discovery;
mod report;
mod run;

pub use coverage::{coverable_lines, merge_coverage, CoverageReport, FileCoverage, LineHits};
pub use discovery::{discover, drop_unselected_tests};
pub use report::{
    coverage_json, format_duration, junit_document, summary_line, to_json, write_json, write_junit,
    write_text,
};
pub use run::run_tests;

/// Name prefix of a test rule.
pub const TEST_PREFIX: &str = "test_";

/// Default per-test time budget (as `opa test --timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which tests to run and how.
#[derive(Debug, Clone)]
pub struct TestSelection {
    /// Only files of bundle layers `>= min_layer` (see [`super::bundle::SourceFile::layer`]) count: their
    /// `*_test.rego` files provide the tests and their other modules are measured for coverage.
    /// `0` selects every layer.
    pub min_layer: usize,
    /// Only tests whose id matches (unanchored, as `opa test --run`).
    pub run: Option<Regex>,
    /// Wall-clock budget of each test; a test over it is an error.
    pub timeout: Duration,
    /// Record and merge line coverage.
    pub coverage: bool,
}

impl Default for TestSelection {
    fn default() -> Self {
        TestSelection {
            min_layer: 0,
            run: None,
            timeout: DEFAULT_TIMEOUT,
            coverage: false,
        }
    }
}

/// One discovered test. Ordered by file, line, then id: the order of every report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TestCase {
    /// The module's display path (first definition when the rule is defined several times).
    pub file: String,
    /// 1-based line of the (first) definition.
    pub line: usize,
    /// `data.<package>.<rule>`.
    pub id: String,
    /// `data.regate.policies.non_root_test`.
    pub package: String,
    /// `test_root_denied`.
    pub name: String,
    /// The bundle layer the file came from.
    pub layer: usize,
    /// Defined as a function (`test_x(a) := ...`): reported as an error, never evaluated.
    pub function: bool,
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The rule is `true`.
    Pass,
    /// The rule is `false`, undefined, or another value.
    Fail,
    /// Evaluation failed: builtin error, time budget exceeded, panic.
    Error,
}

impl Outcome {
    /// `pass`, `fail` or `error` (JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    /// `PASS`, `FAIL` or `ERROR` (text).
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
        }
    }
}

/// The result of one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub case: TestCase,
    pub outcome: Outcome,
    /// Evaluation time (without cloning the engine).
    pub duration: Duration,
    /// Why it failed or errored (`file:line:col: message` for evaluation errors).
    pub message: Option<String>,
    /// `print()` output, in order.
    pub prints: Vec<String>,
}

/// Everything one `regate test` run produced.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// In (file, line, id) order.
    pub results: Vec<TestResult>,
    /// Tests discovered but not selected by `run`.
    pub filtered_out: usize,
    /// Present when coverage was requested.
    pub coverage: Option<CoverageReport>,
}

impl TestRun {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }

    pub fn passed(&self) -> usize {
        self.count(Outcome::Pass)
    }

    /// Failed or errored tests (what the final `N passed, N failed` line counts as failed).
    pub fn not_passed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// True when every test that ran passed.
    pub fn all_passed(&self) -> bool {
        self.not_passed() == 0
    }
}

/// Policy sets and selections the tests of every part of the runner share.
#[cfg(test)]
mod test_fixtures {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::TestSelection;
    use crate::policy::bundle::{BundleSources, FileKind, SourceFile};
    use crate::policy::load::{self, PolicySet};

    /// A policy set from `(path, layer, text)` files, tests included.
    pub(super) fn set_of(files: &[(&str, usize, &str)]) -> PolicySet {
        let mut sources = BundleSources::default();
        for (rel, layer, text) in files {
            let kind = if rel.ends_with("_test.rego") {
                FileKind::Test
            } else {
                FileKind::Module
            };
            add_source(&mut sources, rel, *layer, kind, text);
            sources.layers = sources.layers.max(layer + 1);
        }
        match load::compile(sources, &[], true) {
            Ok(set) => set,
            Err(e) => panic!("fixture does not load:\n{e}"),
        }
    }

    /// Adds the file `rel` (also its display path) to `sources`.
    pub(super) fn add_source(
        sources: &mut BundleSources,
        rel: &str,
        layer: usize,
        kind: FileKind,
        text: &str,
    ) {
        sources.files.insert(
            rel.to_string(),
            SourceFile {
                display: rel.to_string(),
                rel: rel.to_string(),
                kind,
                text: text.to_string(),
                layer,
            },
        );
    }

    /// The default selection with an explicit five-second budget.
    pub(super) fn quick() -> TestSelection {
        TestSelection {
            timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    /// A set of line numbers.
    pub(super) fn lines(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }
}
