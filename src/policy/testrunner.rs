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
//! and JUnit writers live here too, so `cli::test` only wires arguments to them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use regex::Regex;
use regorus::unstable::{Expr, Literal, Module, Rule, RuleHead, WithModifier};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::LimitError;
use regorus::{Engine, Value};
use serde_json::{json, Value as Json};

use super::bundle::{BundleSources, FileKind};
use super::load::{format_rego_error, PolicySet};
use super::visit::{walk_expr, walk_literal, Visitor};
use crate::report::junit;

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

/// Lines one evaluation reached in one file (regorus's per-file coverage without the source text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineHits {
    pub covered: BTreeSet<u32>,
    pub not_covered: BTreeSet<u32>,
}

/// Merged coverage of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCoverage {
    pub file: String,
    pub covered: BTreeSet<u32>,
    pub uncovered: BTreeSet<u32>,
}

impl FileCoverage {
    /// Coverable lines.
    pub fn total(&self) -> usize {
        self.covered.len() + self.uncovered.len()
    }

    /// Covered share in percent, rounded to two decimals; 0 when nothing is coverable (as OPA).
    pub fn percent(&self) -> f64 {
        percent(self.covered.len(), self.total())
    }

    /// Uncovered lines as inclusive runs of consecutive line numbers.
    pub fn uncovered_ranges(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for &line in &self.uncovered {
            match out.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(line) => *end = line,
                _ => out.push((line, line)),
            }
        }
        out
    }

    /// `12-14, 20`.
    pub fn uncovered_text(&self) -> String {
        self.uncovered_ranges()
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Merged coverage of a run, per file in path order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageReport {
    pub files: Vec<FileCoverage>,
}

impl CoverageReport {
    pub fn covered(&self) -> usize {
        self.files.iter().map(|f| f.covered.len()).sum()
    }

    pub fn total(&self) -> usize {
        self.files.iter().map(FileCoverage::total).sum()
    }

    /// Total covered share in percent, rounded to two decimals; 0 when nothing is coverable.
    pub fn percent(&self) -> f64 {
        percent(self.covered(), self.total())
    }
}

fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let raw = 100.0 * covered as f64 / total as f64;
    (raw * 100.0).round() / 100.0
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

/// The tests of `*_test.rego` files from layers `>= min_layer`, in (file, line, id) order, each rule name
/// once per package.
pub fn discover(set: &PolicySet, min_layer: usize) -> Vec<TestCase> {
    let files: BTreeMap<&str, (FileKind, usize)> = set
        .sources
        .files
        .values()
        .map(|f| (f.display.as_str(), (f.kind, f.layer)))
        .collect();
    let functions = function_ids(set);
    let mut by_id: BTreeMap<String, TestCase> = BTreeMap::new();
    for module in &set.modules {
        let Some(&(FileKind::Test, layer)) = files.get(module.file.as_str()) else {
            continue;
        };
        if layer < min_layer {
            continue;
        }
        for rule in &module.rules {
            if !rule.name.starts_with(TEST_PREFIX) {
                continue;
            }
            let id = format!("{}.{}", module.package, rule.path);
            let case = TestCase {
                file: module.file.clone(),
                line: rule.line,
                function: functions.contains(&id),
                id,
                package: module.package.clone(),
                name: rule.path.clone(),
                layer,
            };
            match by_id.get_mut(&case.id) {
                Some(first) if (&case.file, case.line) < (&first.file, first.line) => *first = case,
                Some(_) => {}
                None => {
                    by_id.insert(case.id.clone(), case);
                }
            }
        }
    }
    let mut cases: Vec<TestCase> = by_id.into_values().collect();
    cases.sort();
    cases
}

/// Removes the `*_test.rego` files of layers below `min_layer` before compiling: they would not run, and
/// a bundled test written against a bundled policy that a DIR replaces must not stop the DIR's tests
/// from loading.
pub fn drop_unselected_tests(sources: &mut BundleSources, min_layer: usize) {
    sources
        .files
        .retain(|_, f| f.kind != FileKind::Test || f.layer >= min_layer);
}

/// `data.<package>.<name>` of every function (a rule head with arguments) in the set.
fn function_ids(set: &PolicySet) -> BTreeSet<String> {
    let mut engine = match set.template.lock() {
        Ok(e) => e,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = BTreeSet::new();
    for module in engine.get_modules().iter() {
        let package = format!("data.{}", module.package.refr.span().text().trim());
        for rule in &module.policy {
            if let Rule::Spec {
                head: RuleHead::Func { refr, .. },
                ..
            } = rule.as_ref()
            {
                let mut expr: &Expr = refr;
                while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = expr {
                    expr = refr;
                }
                if let Expr::Var { span, .. } = expr {
                    out.insert(format!("{package}.{}", span.text()));
                }
            }
        }
    }
    out
}

/// Runs the selected tests of `set` in parallel (on the current rayon pool) and merges coverage.
pub fn run_tests(set: &PolicySet, selection: &TestSelection) -> TestRun {
    let all = discover(set, selection.min_layer);
    let discovered = all.len();
    let cases: Vec<TestCase> = all
        .into_iter()
        .filter(|c| selection.run.as_ref().is_none_or(|re| re.is_match(&c.id)))
        .collect();
    let filtered_out = discovered - cases.len();

    let mut base = match set.template.lock() {
        Ok(engine) => engine.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    // Prepare the interpreter once (schedules, rule tables) so that clones start warm. The path does
    // not exist, so nothing is evaluated; only the preparation before the lookup matters.
    let _ = base.eval_rule("data.regate.__regate_test_warmup__".to_string());
    let modules: Vec<regorus::unstable::NodeRef<Module>> = base.get_modules().clone();
    let base = Mutex::new(base);

    let timer = ExecutionTimerConfig {
        limit: selection.timeout,
        check_interval: NonZeroU32::MIN,
    };
    let outputs: Vec<(TestResult, BTreeMap<String, LineHits>)> = cases
        .into_par_iter()
        .map(|case| run_one(&base, case, timer, selection.coverage))
        .collect();

    let mut results = Vec::with_capacity(outputs.len());
    let mut hits = Vec::with_capacity(outputs.len());
    for (result, h) in outputs {
        results.push(result);
        hits.push(h);
    }
    let coverage = selection.coverage.then(|| {
        let targets = coverage_targets(set, selection.min_layer, &modules);
        merge_coverage(&targets, hits)
    });
    TestRun {
        results,
        filtered_out,
        coverage,
    }
}

fn run_one(
    base: &Mutex<Engine>,
    case: TestCase,
    timer: ExecutionTimerConfig,
    coverage: bool,
) -> (TestResult, BTreeMap<String, LineHits>) {
    if case.function {
        let message = format!(
            "{}:{}: {} takes arguments: a test is a rule without arguments (helper functions must not start with {TEST_PREFIX})",
            case.file, case.line, case.name
        );
        let result = TestResult {
            case,
            outcome: Outcome::Error,
            duration: Duration::ZERO,
            message: Some(message),
            prints: Vec::new(),
        };
        return (result, BTreeMap::new());
    }
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut engine = match base.lock() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        engine.set_gather_prints(true);
        if coverage {
            engine.set_enable_coverage(true);
        }
        engine.set_execution_timer_config(timer);
        engine.set_input(Value::new_object());
        let eval_started = Instant::now();
        let value = engine.eval_rule(case.id.clone());
        let duration = eval_started.elapsed();
        let prints = engine.take_prints().unwrap_or_default();
        let hits = if coverage {
            engine
                .get_coverage_report()
                .map(hits_of)
                .unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        (value, duration, prints, hits)
    }));
    let (outcome, message, duration, prints, hits) = match outcome {
        Ok((value, duration, prints, hits)) => {
            let (outcome, message) = judge(value, &case);
            (outcome, message, duration, prints, hits)
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            (
                Outcome::Error,
                Some(format!(
                    "{}:{}: evaluation panicked: {what}",
                    case.file, case.line
                )),
                started.elapsed(),
                Vec::new(),
                BTreeMap::new(),
            )
        }
    };
    (
        TestResult {
            case,
            outcome,
            duration,
            message,
            prints,
        },
        hits,
    )
}

/// Pass only for `true`; a message for everything else. Error messages always start with a location:
/// regorus's own (`file:line:col: `) or, when it has none (time limit, invalid rule path), the test's.
fn judge(value: anyhow::Result<Value>, case: &TestCase) -> (Outcome, Option<String>) {
    match value {
        Ok(Value::Bool(true)) => (Outcome::Pass, None),
        Ok(Value::Bool(false)) => (Outcome::Fail, Some("test is false".to_string())),
        Ok(Value::Undefined) => (
            Outcome::Fail,
            Some("test is undefined: an expression in its body is false or undefined".to_string()),
        ),
        Ok(other) => {
            let shown = serde_json::to_string(&other).unwrap_or_else(|_| format!("{other:?}"));
            (Outcome::Fail, Some(format!("test is {shown}, not true")))
        }
        Err(err) => {
            let message = match err.downcast_ref::<LimitError>() {
                Some(LimitError::TimeLimitExceeded { limit, .. }) => {
                    format!("test exceeded its time limit of {limit:?}")
                }
                _ => format_rego_error(&err),
            };
            let message = if has_location(&message) {
                message
            } else {
                format!("{}:{}: {message}", case.file, case.line)
            };
            (Outcome::Error, Some(message))
        }
    }
}

/// True when the first line starts `file:line:col: ` (or `file:line: `).
fn has_location(message: &str) -> bool {
    let first = message.lines().next().unwrap_or_default();
    let Some((head, _)) = first.split_once(": ") else {
        return false;
    };
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let Some((rest, line_or_col)) = head.rsplit_once(':') else {
        return false;
    };
    if !numeric(line_or_col) {
        return false;
    }
    let file = match rest.rsplit_once(':') {
        Some((file, line)) if numeric(line) => file,
        _ => rest,
    };
    !file.is_empty()
}

fn hits_of(report: regorus::coverage::Report) -> BTreeMap<String, LineHits> {
    report
        .files
        .into_iter()
        .map(|f| {
            (
                f.path,
                LineHits {
                    covered: f.covered,
                    not_covered: f.not_covered,
                },
            )
        })
        .collect()
}

/// The files coverage is measured over (non-test modules of the selected layers) with their coverable
/// lines.
fn coverage_targets(
    set: &PolicySet,
    min_layer: usize,
    modules: &[regorus::unstable::NodeRef<Module>],
) -> BTreeMap<String, BTreeSet<u32>> {
    let wanted: BTreeSet<&str> = set
        .sources
        .files
        .values()
        .filter(|f| f.kind == FileKind::Module && f.layer >= min_layer)
        .map(|f| f.display.as_str())
        .collect();
    let mut out = BTreeMap::new();
    for module in modules {
        let file = module.package.span.source.file().to_string();
        if wanted.contains(file.as_str()) {
            out.insert(file, coverable_lines(module));
        }
    }
    out
}

/// Merges per-test coverage over `targets` (file → coverable lines from the AST). A line is covered
/// when any test covered it. A file some test reached takes its coverable lines from regorus's reports;
/// a file no test reached has all its AST lines uncovered. Files outside `targets` are ignored.
pub fn merge_coverage(
    targets: &BTreeMap<String, BTreeSet<u32>>,
    per_test: impl IntoIterator<Item = BTreeMap<String, LineHits>>,
) -> CoverageReport {
    let mut merged: BTreeMap<&str, (BTreeSet<u32>, BTreeSet<u32>)> = BTreeMap::new();
    for hits in per_test {
        for (file, h) in hits {
            let Some((key, _)) = targets.get_key_value(&file) else {
                continue;
            };
            let (covered, seen) = merged.entry(key.as_str()).or_default();
            covered.extend(h.covered.iter().copied());
            seen.extend(h.covered);
            seen.extend(h.not_covered);
        }
    }
    let files = targets
        .iter()
        .map(|(file, lines)| {
            let (covered, seen) = merged
                .remove(file.as_str())
                .unwrap_or_else(|| (BTreeSet::new(), lines.clone()));
            let uncovered = seen.difference(&covered).copied().collect();
            FileCoverage {
                file: file.clone(),
                covered,
                uncovered,
            }
        })
        .collect();
    CoverageReport { files }
}

/// The lines regorus's coverage report lists for `module` (covered or not): the same walk as
/// `Interpreter::get_coverage_report` (rule head values and keys, body queries, default values; every
/// expression except comprehensions, whose queries are walked instead; not function names, `with`
/// modifiers, `some ... in` keys or `else` values).
pub fn coverable_lines(module: &Module) -> BTreeSet<u32> {
    let mut coverable = CoverableLines::default();
    for rule in &module.policy {
        coverable.visit_rule(rule);
    }
    coverable.lines.remove(&0);
    coverable.lines
}

/// The lines of the expressions regorus's coverage report lists.
#[derive(Default)]
struct CoverableLines {
    lines: BTreeSet<u32>,
}

impl Visitor for CoverableLines {
    fn visit_else_value(&mut self, _: &Expr) {}

    fn visit_with(&mut self, _: &WithModifier) {}

    fn visit_literal(&mut self, literal: &Literal) {
        match literal {
            Literal::SomeIn {
                value, collection, ..
            } => {
                self.visit_expr(value);
                self.visit_expr(collection);
            }
            _ => walk_literal(self, literal),
        }
    }

    fn visit_expr(&mut self, expr: &Expr) {
        match expr {
            Expr::ArrayCompr { query, .. }
            | Expr::SetCompr { query, .. }
            | Expr::ObjectCompr { query, .. } => self.visit_query(query),
            Expr::Call { span, params, .. } => {
                self.lines.insert(span.line);
                for param in params {
                    self.visit_expr(param);
                }
            }
            _ => {
                self.lines.insert(expr.span().line);
                walk_expr(self, expr);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------------

/// `850µs`, `1.2ms`, `2.35s`.
pub fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", d.as_secs_f64() * 1_000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// The last line of every text report, read by CI: `N passed, N failed` (errors count as failed).
pub fn summary_line(run: &TestRun) -> String {
    format!("{} passed, {} failed", run.passed(), run.not_passed())
}

/// The text report, like `opa test`: with `verbose` one line per test (else only failures and errors),
/// each followed by its message and `print()` output (prints of passing tests only when verbose); then
/// coverage, the `PASS: n/m` (`FAIL: ...`, `ERROR: ...`) counts and, last, [`summary_line`].
pub fn write_text(run: &TestRun, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut listed = 0;
    for r in &run.results {
        if !verbose && r.outcome == Outcome::Pass {
            continue;
        }
        listed += 1;
        writeln!(
            out,
            "{}: {} ({}) {}:{}",
            r.outcome.label(),
            r.case.id,
            format_duration(r.duration),
            r.case.file,
            r.case.line
        )?;
        if let Some(message) = &r.message {
            for line in message.lines() {
                writeln!(out, "    {line}")?;
            }
        }
        for p in &r.prints {
            for line in p.lines() {
                writeln!(out, "    print: {line}")?;
            }
        }
    }
    if listed > 0 {
        writeln!(out, "{}", "-".repeat(80))?;
    }
    if let Some(cov) = &run.coverage {
        writeln!(out, "Coverage:")?;
        for f in &cov.files {
            writeln!(
                out,
                "  {}: {}/{} lines ({:.2}%)",
                f.file,
                f.covered.len(),
                f.total(),
                f.percent()
            )?;
        }
        writeln!(
            out,
            "  total: {}/{} lines ({:.2}%)",
            cov.covered(),
            cov.total(),
            cov.percent()
        )?;
        let gaps: Vec<&FileCoverage> = cov
            .files
            .iter()
            .filter(|f| !f.uncovered.is_empty())
            .collect();
        if verbose && !gaps.is_empty() {
            writeln!(out, "Uncovered lines:")?;
            for f in gaps {
                writeln!(out, "  {}: {}", f.file, f.uncovered_text())?;
            }
        }
        writeln!(out, "{}", "-".repeat(80))?;
    }
    let total = run.results.len();
    writeln!(out, "PASS: {}/{total}", run.passed())?;
    for outcome in [Outcome::Fail, Outcome::Error] {
        let n = run.count(outcome);
        if n > 0 {
            writeln!(out, "{}: {n}/{total}", outcome.label())?;
        }
    }
    writeln!(out, "{}", summary_line(run))
}

/// JSON object of a coverage report.
pub fn coverage_json(cov: &CoverageReport) -> Json {
    json!({
        "files": cov.files.iter().map(|f| json!({
            "file": f.file,
            "covered": f.covered.len(),
            "total": f.total(),
            "percent": f.percent(),
            "uncovered": f.uncovered,
        })).collect::<Vec<_>>(),
        "covered": cov.covered(),
        "total": cov.total(),
        "percent": cov.percent(),
    })
}

/// The JSON report: `{"tests": [{id, package, name, file, line, result, duration_ms, message?,
/// prints?}], "passed", "failed", "errors", "total", "coverage"?}`.
pub fn to_json(run: &TestRun) -> Json {
    let tests: Vec<Json> = run
        .results
        .iter()
        .map(|r| {
            let mut t = json!({
                "id": r.case.id,
                "package": r.case.package,
                "name": r.case.name,
                "file": r.case.file,
                "line": r.case.line,
                "result": r.outcome.as_str(),
                "duration_ms": (r.duration.as_secs_f64() * 1_000_000.0).round() / 1_000.0,
            });
            if let Json::Object(m) = &mut t {
                if let Some(message) = &r.message {
                    m.insert("message".into(), json!(message));
                }
                if !r.prints.is_empty() {
                    m.insert("prints".into(), json!(r.prints));
                }
            }
            t
        })
        .collect();
    let mut doc = json!({
        "tests": tests,
        "passed": run.passed(),
        "failed": run.count(Outcome::Fail),
        "errors": run.count(Outcome::Error),
        "total": run.results.len(),
    });
    if let (Some(cov), Json::Object(m)) = (&run.coverage, &mut doc) {
        m.insert("coverage".into(), coverage_json(cov));
    }
    doc
}

/// Writes [`to_json`] pretty-printed with a final newline.
pub fn write_json(run: &TestRun, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_json(run))?;
    writeln!(out)
}

/// JUnit XML: one `<testsuite>` per package (in name order), one `<testcase>` per test with
/// `name` = rule, `classname` = package, `file`, `line` and `time` in seconds; `<failure>` or `<error>`
/// carries the message (its first line as the `message` attribute), `<system-out>` the prints.
pub fn write_junit(run: &TestRun, out: &mut dyn Write) -> io::Result<()> {
    junit_document(run).write(out)
}

fn junit_document(run: &TestRun) -> junit::TestSuites {
    let mut suites: BTreeMap<&str, Vec<junit::TestCase>> = BTreeMap::new();
    for r in &run.results {
        suites
            .entry(r.case.package.as_str())
            .or_default()
            .push(junit_case(r));
    }
    junit::TestSuites {
        name: "regate test".to_string(),
        timed: true,
        suites: suites
            .into_iter()
            .map(|(package, cases)| junit::TestSuite {
                name: package.to_string(),
                cases,
            })
            .collect(),
    }
}

fn junit_case(r: &TestResult) -> junit::TestCase {
    let problem = || {
        let message = r.message.as_deref().unwrap_or_default();
        junit::Problem {
            message: message.lines().next().unwrap_or_default().to_string(),
            kind: r.outcome.as_str().to_string(),
            text: message.to_string(),
        }
    };
    junit::TestCase {
        name: r.case.name.clone(),
        classname: r.case.package.clone(),
        file: r.case.file.clone(),
        line: r.case.line,
        time: r.duration,
        result: match r.outcome {
            Outcome::Pass => junit::CaseResult::Passed,
            Outcome::Fail => junit::CaseResult::Failure(problem()),
            Outcome::Error => junit::CaseResult::Error(problem()),
        },
        system_out: (!r.prints.is_empty()).then(|| r.prints.join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::bundle::SourceFile;
    use crate::policy::load;
    use rstest::rstest;

    /// A policy set from `(path, layer, text)` files, tests included.
    fn set_of(files: &[(&str, usize, &str)]) -> PolicySet {
        let mut sources = BundleSources::default();
        for (rel, layer, text) in files {
            let kind = if rel.ends_with("_test.rego") {
                FileKind::Test
            } else {
                FileKind::Module
            };
            sources.files.insert(
                rel.to_string(),
                SourceFile {
                    display: rel.to_string(),
                    rel: rel.to_string(),
                    kind,
                    text: text.to_string(),
                    layer: *layer,
                },
            );
            sources.layers = sources.layers.max(layer + 1);
        }
        match load::compile(sources, &[], true) {
            Ok(set) => set,
            Err(e) => panic!("fixture does not load:\n{e}"),
        }
    }

    fn one_test(body: &str) -> PolicySet {
        set_of(&[("t_test.rego", 0, &format!("package t\n\n{body}\n"))])
    }

    fn quick() -> TestSelection {
        TestSelection {
            timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    #[rstest]
    #[case::true_body("test_x if { 1 == 1 }", Outcome::Pass, "")]
    #[case::constant_true("test_x := true", Outcome::Pass, "")]
    #[case::false_body("test_x if { 1 == 2 }", Outcome::Fail, "undefined")]
    #[case::missing_input("test_x if { input.nothing }", Outcome::Fail, "undefined")]
    #[case::constant_false("test_x := false", Outcome::Fail, "test is false")]
    #[case::other_value("test_x := {\"a\": 1}", Outcome::Fail, "test is {\"a\":1}, not true")]
    #[case::builtin_error(
        "test_x if { to_number(\"x\") == 1 }",
        Outcome::Error,
        "t_test.rego:3:"
    )]
    #[case::function(
        "test_x(a) := a\ntest_y if { test_x(1) == 1 }",
        Outcome::Error,
        "t_test.rego:3: test_x takes arguments"
    )]
    #[case::incremental_one_true("test_x if { false }\ntest_x if { true }", Outcome::Pass, "")]
    fn outcomes(#[case] body: &str, #[case] want: Outcome, #[case] message: &str) {
        let set = one_test(body);
        let selection = TestSelection {
            run: Some(Regex::new(r"\.test_x$").expect("regex")),
            ..quick()
        };
        let run = run_tests(&set, &selection);
        assert_eq!(run.results.len(), 1, "{:?}", run.results);
        let r = &run.results[0];
        assert_eq!(r.case.id, "data.t.test_x");
        assert_eq!(r.outcome, want, "{r:?}");
        match &r.message {
            None => assert!(message.is_empty(), "no message, wanted {message:?}"),
            Some(m) => assert!(
                !message.is_empty() && m.contains(message),
                "{m:?} lacks {message:?}"
            ),
        }
    }

    #[test]
    fn runaway_test_is_an_error_within_its_budget() {
        let set = one_test(
            "test_slow if {\n  some i in numbers.range(1, 20000)\n  some j in numbers.range(1, 20000)\n  i * j < 0\n}",
        );
        let selection = TestSelection {
            timeout: Duration::from_millis(100),
            ..Default::default()
        };
        let started = Instant::now();
        let run = run_tests(&set, &selection);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(run.results[0].outcome, Outcome::Error);
        assert_eq!(
            run.results[0].message.as_deref(),
            Some("t_test.rego:3: test exceeded its time limit of 100ms")
        );
    }

    #[test]
    fn prints_are_gathered() {
        let set = one_test("test_x if {\n  print(\"hello\", 1)\n  false\n}");
        let run = run_tests(&set, &quick());
        let r = &run.results[0];
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.prints.len(), 1, "{:?}", r.prints);
        assert!(r.prints[0].contains("hello 1"), "{:?}", r.prints);
    }

    #[rstest]
    #[case::all(None, &["data.a.test_one", "data.a.test_two", "data.b.test_one"])]
    #[case::by_name(Some("test_one"), &["data.a.test_one", "data.b.test_one"])]
    #[case::by_package(Some(r"^data\.b\."), &["data.b.test_one"])]
    #[case::none(Some("nomatch"), &[])]
    fn run_filter(#[case] pattern: Option<&str>, #[case] want: &[&str]) {
        let set = set_of(&[
            (
                "a_test.rego",
                0,
                "package a\ntest_one if { true }\ntest_two if { true }\nhelper if { true }\n",
            ),
            ("b_test.rego", 0, "package b\ntest_one if { true }\n"),
        ]);
        let selection = TestSelection {
            run: pattern.map(|p| Regex::new(p).expect("valid regex")),
            ..quick()
        };
        let run = run_tests(&set, &selection);
        let ids: Vec<&str> = run.results.iter().map(|r| r.case.id.as_str()).collect();
        assert_eq!(ids, want);
        assert_eq!(run.filtered_out, 3 - want.len());
    }

    #[test]
    fn discovery_is_ordered_deduplicated_and_limited_to_test_files_of_selected_layers() {
        let set = set_of(&[
            // A rule named test_ outside a test file is not a test.
            ("lib.rego", 0, "package lib\ntest_not_a_test := true\n"),
            (
                "base/x_test.rego",
                0,
                "package base\ntest_base if { true }\n",
            ),
            (
                "dir/z_test.rego",
                1,
                "package p\n\ntest_b if { true }\ntest_a if { true }\ntest_a if { false }\n",
            ),
            ("dir/a_test.rego", 1, "package q\n\n\ntest_c if { true }\n"),
            ("dir/b_test.rego", 1, "package p\ntest_b if { 1 == 1 }\n"),
        ]);
        let ids = |min_layer| -> Vec<(String, String, usize)> {
            discover(&set, min_layer)
                .into_iter()
                .map(|c| (c.id, c.file, c.line))
                .collect()
        };
        let want_dir = vec![
            (
                "data.q.test_c".to_string(),
                "dir/a_test.rego".to_string(),
                4,
            ),
            ("data.p.test_b".into(), "dir/b_test.rego".into(), 2),
            ("data.p.test_a".into(), "dir/z_test.rego".into(), 4),
        ];
        assert_eq!(ids(1), want_dir);
        let mut all = vec![(
            "data.base.test_base".to_string(),
            "base/x_test.rego".to_string(),
            2,
        )];
        all.extend(want_dir);
        assert_eq!(ids(0), all);
    }

    #[test]
    fn tests_of_lower_layers_are_not_compiled() {
        let mut sources = BundleSources::default();
        for (rel, layer, kind) in [
            ("a/policy.rego", 0, FileKind::Module),
            ("a/policy_test.rego", 0, FileKind::Test),
            ("b/policy_test.rego", 1, FileKind::Test),
            ("regate.yaml", 0, FileKind::Config),
        ] {
            sources.files.insert(
                rel.to_string(),
                SourceFile {
                    display: rel.to_string(),
                    rel: rel.to_string(),
                    kind,
                    text: String::new(),
                    layer,
                },
            );
        }
        drop_unselected_tests(&mut sources, 1);
        let kept: Vec<&str> = sources.files.keys().map(String::as_str).collect();
        assert_eq!(kept, ["a/policy.rego", "b/policy_test.rego", "regate.yaml"]);
        drop_unselected_tests(&mut sources, 0);
        assert_eq!(sources.files.len(), 3);
    }

    #[test]
    fn results_are_in_file_line_order_whatever_the_thread_count() {
        let mut files = Vec::new();
        let texts: Vec<String> = (0..6)
            .map(|i| {
                let mut t = format!("package p{i}\n");
                for j in (0..8).rev() {
                    t.push_str(&format!(
                        "test_{j} if {{ count([x | some x in numbers.range(1, {})]) > 0 }}\n",
                        (j + 1) * 50
                    ));
                }
                t
            })
            .collect();
        for (i, t) in texts.iter().enumerate() {
            files.push((format!("f{}_test.rego", 5 - i), t.as_str()));
        }
        let files: Vec<(&str, usize, &str)> =
            files.iter().map(|(n, t)| (n.as_str(), 0, *t)).collect();
        let set = set_of(&files);
        let order = |threads: usize| -> Vec<String> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| run_tests(&set, &quick()))
                .results
                .into_iter()
                .map(|r| format!("{}:{}:{}", r.case.file, r.case.line, r.case.id))
                .collect()
        };
        let one = order(1);
        assert_eq!(one.len(), 48);
        let mut sorted = one.clone();
        sorted.sort_by_key(|s| {
            let mut parts = s.splitn(3, ':');
            let file = parts.next().unwrap_or_default().to_string();
            let line: usize = parts
                .next()
                .and_then(|l| l.parse().ok())
                .unwrap_or_default();
            (file, line)
        });
        assert_eq!(one, sorted);
        assert!(
            one[0].starts_with("f0_test.rego:2:data.p5.test_7"),
            "{}",
            one[0]
        );
        assert_eq!(order(4), one);
        assert_eq!(order(3), one);
    }

    fn lines(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    fn hits(file: &str, covered: &[u32], not_covered: &[u32]) -> BTreeMap<String, LineHits> {
        BTreeMap::from([(
            file.to_string(),
            LineHits {
                covered: lines(covered),
                not_covered: lines(not_covered),
            },
        )])
    }

    #[rstest]
    // One test: its figures as reported.
    #[case::single(vec![hits("a.rego", &[3, 4], &[5, 6])], &[3, 4], &[5, 6])]
    // A line covered by any test is covered.
    #[case::union(
        vec![hits("a.rego", &[3, 4], &[5, 6]), hits("a.rego", &[3, 5], &[4, 6])],
        &[3, 4, 5],
        &[6]
    )]
    // No test reached the file: every coverable line from the AST is uncovered.
    #[case::untouched(vec![hits("other.rego", &[1], &[])], &[], &[3, 4, 5, 6, 9])]
    #[case::no_tests(vec![], &[], &[3, 4, 5, 6, 9])]
    // Reported lines win over the AST lines for a file a test reached.
    #[case::reported_lines(vec![hits("a.rego", &[3], &[])], &[3], &[])]
    fn coverage_merging(
        #[case] per_test: Vec<BTreeMap<String, LineHits>>,
        #[case] covered: &[u32],
        #[case] uncovered: &[u32],
    ) {
        let targets = BTreeMap::from([("a.rego".to_string(), lines(&[3, 4, 5, 6, 9]))]);
        let report = merge_coverage(&targets, per_test);
        assert_eq!(report.files.len(), 1);
        let f = &report.files[0];
        assert_eq!(f.file, "a.rego");
        assert_eq!(f.covered, lines(covered));
        assert_eq!(f.uncovered, lines(uncovered));
        assert_eq!(report.covered(), covered.len());
        assert_eq!(report.total(), covered.len() + uncovered.len());
    }

    #[rstest]
    #[case(0, 0, 0.0)]
    #[case(1, 3, 33.33)]
    #[case(2, 3, 66.67)]
    #[case(3, 3, 100.0)]
    #[case(7, 8, 87.5)]
    fn percent_rounds_to_two_decimals(
        #[case] covered: usize,
        #[case] total: usize,
        #[case] want: f64,
    ) {
        assert_eq!(percent(covered, total), want);
    }

    #[test]
    fn total_percent_weighs_lines_not_files() {
        let report = CoverageReport {
            files: vec![
                FileCoverage {
                    file: "a".into(),
                    covered: lines(&[1]),
                    uncovered: lines(&[]),
                },
                FileCoverage {
                    file: "b".into(),
                    covered: lines(&[1]),
                    uncovered: lines(&[2, 3]),
                },
            ],
        };
        assert_eq!(report.percent(), 50.0);
    }

    #[rstest]
    #[case(&[], "")]
    #[case(&[7], "7")]
    #[case(&[12, 13, 14, 20], "12-14, 20")]
    #[case(&[1, 3, 4, 6, 7, 8], "1, 3-4, 6-8")]
    fn uncovered_ranges(#[case] uncovered: &[u32], #[case] want: &str) {
        let f = FileCoverage {
            file: "x".into(),
            covered: BTreeSet::new(),
            uncovered: lines(uncovered),
        };
        assert_eq!(f.uncovered_text(), want);
    }

    const POLICY: &str = "package pol\n\
        \n\
        allow if {\n\
        \tinput.a == 1\n\
        \tinput.b == 2\n\
        }\n\
        \n\
        names := [n | some n in input.names; n != \"x\"]\n\
        \n\
        other if {\n\
        \tinput.c == 3\n\
        }\n";

    #[test]
    fn coverage_of_a_run_counts_reached_and_unreached_files() {
        let set = set_of(&[
            ("pol.rego", 0, POLICY),
            // Never reached by a test.
            ("unused.rego", 0, "package unused\n\nu if {\n\tinput.z\n}\n"),
            (
                "pol_test.rego",
                0,
                // Full references: through an import alias regorus evaluates every rule of the module.
                "package pol_test\n\
                 test_allow if { data.pol.allow with input as {\"a\": 1, \"b\": 2} }\n\
                 test_names if { data.pol.names == [\"y\"] with input as {\"names\": [\"x\", \"y\"]} }\n",
            ),
        ]);
        let run = run_tests(
            &set,
            &TestSelection {
                coverage: true,
                ..quick()
            },
        );
        assert!(run.all_passed(), "{:?}", run.results);
        let cov = run.coverage.expect("coverage requested");
        let files: Vec<(&str, Vec<u32>, Vec<u32>)> = cov
            .files
            .iter()
            .map(|f| {
                (
                    f.file.as_str(),
                    f.covered.iter().copied().collect(),
                    f.uncovered.iter().copied().collect(),
                )
            })
            .collect();
        assert_eq!(
            files,
            vec![
                ("pol.rego", vec![4, 5, 8], vec![11]),
                ("unused.rego", vec![], vec![4]),
            ]
        );
        assert_eq!(cov.percent(), 60.0);
    }

    #[test]
    fn ast_lines_match_regorus_for_a_fully_walked_module() {
        // Every rule evaluated by one query: regorus lists every coverable line, covered or not.
        let mut engine = Engine::new();
        engine
            .add_policy("pol.rego".into(), POLICY.into())
            .expect("parses");
        engine.set_enable_coverage(true);
        engine.set_input(Value::new_object());
        let _ = engine.eval_rule("data.pol.allow".into());
        let report = engine.get_coverage_report().expect("report");
        let file = report.files.first().expect("pol.rego reached");
        let reported: BTreeSet<u32> = file.covered.union(&file.not_covered).copied().collect();
        let module = engine.get_modules()[0].clone();
        assert_eq!(coverable_lines(&module), reported);
    }

    fn sample_run() -> TestRun {
        let case = |file: &str, line, package: &str, name: &str| TestCase {
            file: file.into(),
            line,
            id: format!("{package}.{name}"),
            package: package.into(),
            name: name.into(),
            layer: 0,
            function: false,
        };
        TestRun {
            results: vec![
                TestResult {
                    case: case("a_test.rego", 3, "data.a", "test_ok"),
                    outcome: Outcome::Pass,
                    duration: Duration::from_micros(1200),
                    message: None,
                    prints: vec!["a_test.rego:4: hi".into()],
                },
                TestResult {
                    case: case("a_test.rego", 7, "data.a", "test_bad"),
                    outcome: Outcome::Fail,
                    duration: Duration::from_micros(300),
                    message: Some("test is false".into()),
                    prints: vec![],
                },
                TestResult {
                    case: case("b_test.rego", 2, "data.b", "test_<&>"),
                    outcome: Outcome::Error,
                    duration: Duration::from_millis(2),
                    message: Some("b_test.rego:2:13: bad \"thing\" \u{1}\nsnippet".into()),
                    prints: vec![],
                },
            ],
            filtered_out: 0,
            coverage: Some(CoverageReport {
                files: vec![FileCoverage {
                    file: "a.rego".into(),
                    covered: lines(&[3, 4, 5]),
                    uncovered: lines(&[7, 8, 12]),
                }],
            }),
        }
    }

    fn render(f: impl Fn(&mut dyn Write) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn text_report() {
        let run = sample_run();
        let quiet = render(|o| write_text(&run, false, o));
        assert!(!quiet.contains("test_ok"), "{quiet}");
        assert!(quiet.contains("FAIL: data.a.test_bad (300µs) a_test.rego:7\n    test is false\n"));
        assert!(quiet.contains("ERROR: data.b.test_<&> (2.0ms) b_test.rego:2\n"));
        assert!(quiet.contains("  a.rego: 3/6 lines (50.00%)\n  total: 3/6 lines (50.00%)\n"));
        assert!(!quiet.contains("Uncovered"));
        assert!(
            quiet.ends_with("PASS: 1/3\nFAIL: 1/3\nERROR: 1/3\n1 passed, 2 failed\n"),
            "{quiet}"
        );
        let verbose = render(|o| write_text(&run, true, o));
        assert!(verbose.contains(
            "PASS: data.a.test_ok (1.2ms) a_test.rego:3\n    print: a_test.rego:4: hi\n"
        ));
        assert!(verbose.contains("Uncovered lines:\n  a.rego: 7-8, 12\n"));
        assert!(verbose.ends_with("1 passed, 2 failed\n"));
    }

    #[test]
    fn json_report() {
        let doc: Json =
            serde_json::from_str(&render(|o| write_json(&sample_run(), o))).expect("json");
        assert_eq!(doc["passed"], 1);
        assert_eq!(doc["failed"], 1);
        assert_eq!(doc["errors"], 1);
        assert_eq!(doc["tests"][0]["id"], "data.a.test_ok");
        assert_eq!(doc["tests"][0]["result"], "pass");
        assert_eq!(doc["tests"][0]["prints"][0], "a_test.rego:4: hi");
        assert!(doc["tests"][0].get("message").is_none());
        assert_eq!(doc["tests"][1]["message"], "test is false");
        assert_eq!(doc["tests"][2]["result"], "error");
        assert_eq!(doc["coverage"]["percent"], 50.0);
        assert_eq!(doc["coverage"]["files"][0]["uncovered"], json!([7, 8, 12]));
    }

    #[test]
    fn junit_report_is_well_formed() {
        let xml = render(|o| write_junit(&sample_run(), o));
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let root = doc.root_element();
        assert_eq!(root.attribute("tests"), Some("3"));
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[0].attribute("name"), Some("data.a"));
        assert_eq!(suites[0].attribute("failures"), Some("1"));
        let cases: Vec<_> = suites[1]
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases[0].attribute("name"), Some("test_<&>"));
        assert_eq!(cases[0].attribute("classname"), Some("data.b"));
        let error = cases[0]
            .children()
            .find(|n| n.has_tag_name("error"))
            .expect("error element");
        assert_eq!(
            error.attribute("message"),
            Some("b_test.rego:2:13: bad \"thing\" \u{FFFD}")
        );
        assert_eq!(
            error.text(),
            Some("b_test.rego:2:13: bad \"thing\" \u{FFFD}\nsnippet")
        );
    }

    #[rstest]
    #[case("a.rego:3:7: boom", true)]
    #[case("dir/a_test.rego:12: boom\nsnippet", true)]
    #[case("execution exceeded time limit", false)]
    #[case("not a valid rule path", false)]
    #[case("note: a: b", false)]
    #[case(":3: x", false)]
    fn locations(#[case] message: &str, #[case] want: bool) {
        assert_eq!(has_location(message), want);
    }

    #[rstest]
    #[case(Duration::from_micros(850), "850µs")]
    #[case(Duration::from_micros(1234), "1.2ms")]
    #[case(Duration::from_millis(2346), "2.35s")]
    fn durations(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(format_duration(d), want);
    }
}
