//! gator suites (`test.gatekeeper.sh/v1alpha1` `Suite`), run by `regate test` as `gator verify` runs
//! them: each test loads a ConstraintTemplate and a Constraint (paths relative to the suite file), and
//! each case reviews one object (a manifest, or an AdmissionReview whose request is used as it is) with
//! an optional inventory, then checks the assertions (`violations: yes | no | N`, `message` a regular
//! expression the counted violations must match; no assertion means no violation). A test marked
//! `invalid` passes when the constraint does not load; `skip` skips a suite, a test or a case.
//!
//! A case is decided by the same evaluation path as every other door (a policy set holding only the
//! test's template and constraint, [`crate::policy::Evaluator::validate`]), so a suite that passes here
//! means the constraint decides so in `serve`, `eval` and `check`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::admission::synthesize::{create_request, Requester};
use crate::cluster::inventory::Inventory;
use crate::manifest;
use crate::policy::bundle::{BundleSources, FileKind, SourceFile};
use crate::policy::{load, Evaluator};
use crate::report::junit;

/// The API version of gator suites.
pub const SUITE_API_VERSION: &str = "test.gatekeeper.sh/v1alpha1";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuiteFile {
    #[serde(default)]
    tests: Vec<TestSpec>,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestSpec {
    #[serde(default)]
    name: String,
    template: String,
    constraint: String,
    #[serde(default)]
    cases: Vec<CaseSpec>,
    #[serde(default)]
    invalid: bool,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaseSpec {
    #[serde(default)]
    name: String,
    object: String,
    #[serde(default)]
    inventory: Vec<String>,
    #[serde(default)]
    assertions: Vec<AssertionSpec>,
    #[serde(default)]
    skip: bool,
}

/// `violations`: a count, `yes` or `no`. Suites are YAML read by go-yaml's rules (YAML 1.1), where an
/// unquoted `yes` or `no` is a boolean; gator reads them as the words, and so does regate.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum Violations {
    Count(u64),
    Flag(bool),
    Word(String),
}

/// What an assertion wants of the number of matching violations.
enum Wanted {
    AtLeastOne,
    Zero,
    Exactly(u64),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssertionSpec {
    #[serde(default)]
    violations: Option<Violations>,
    #[serde(default)]
    message: Option<String>,
}

/// How one test or case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// An assertion did not hold.
    Fail(String),
    /// The test could not run (a file that cannot be read, a template that does not load).
    Error(String),
    Skip,
}

/// One reported result: the suite file, the test, and the case (none for a test-level result such
/// as `invalid`, a skipped test or a test that could not load).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub suite: String,
    pub test: String,
    pub case: Option<String>,
    pub outcome: Outcome,
    pub duration: Duration,
}

impl CaseResult {
    /// `suite.yaml: test / case`.
    pub fn name(&self) -> String {
        match &self.case {
            Some(case) => format!("{}: {} / {case}", self.suite, self.test),
            None => format!("{}: {}", self.suite, self.test),
        }
    }
}

/// The suite files under `dirs` (recursively), in path order: YAML files whose documents include a
/// `Suite` of `test.gatekeeper.sh/v1alpha1`.
pub fn find_suites(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if is_yaml(&path) && is_suite_file(&path) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn is_suite_file(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    text.contains("test.gatekeeper.sh")
        && manifest::decode_stream(&text).iter().any(|d| {
            d.value
                .as_ref()
                .is_ok_and(|v| v["kind"] == "Suite" && v["apiVersion"] == SUITE_API_VERSION)
        })
}

/// Runs every test of one suite file.
pub fn run_suite(path: &Path, timeout: Duration) -> Vec<CaseResult> {
    let suite_name = path.display().to_string();
    let single = |test: &str, outcome: Outcome| CaseResult {
        suite: suite_name.clone(),
        test: test.to_string(),
        case: None,
        outcome,
        duration: Duration::ZERO,
    };
    let suite = match read_suite(path) {
        Ok(s) => s,
        Err(e) => return vec![single("(suite)", Outcome::Error(e))],
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut results = Vec::new();
    for (t, test) in suite.tests.iter().enumerate() {
        let test_name = if test.name.is_empty() {
            format!("tests[{t}]")
        } else {
            test.name.clone()
        };
        if suite.skip || test.skip {
            results.push(single(&test_name, Outcome::Skip));
            continue;
        }
        let started = Instant::now();
        let evaluator = match load_test(dir, test) {
            Ok(evaluator) if test.invalid => {
                drop(evaluator);
                results.push(single(
                    &test_name,
                    Outcome::Fail("the constraint loaded, but the test says it is invalid".into()),
                ));
                continue;
            }
            Err(TestLoadError::Constraint(_)) if test.invalid => {
                results.push(single(&test_name, Outcome::Pass));
                continue;
            }
            Err(TestLoadError::Constraint(e) | TestLoadError::Other(e)) => {
                results.push(single(&test_name, Outcome::Error(e)));
                continue;
            }
            Ok(evaluator) => evaluator,
        };
        let load_time = started.elapsed();
        for (c, case) in test.cases.iter().enumerate() {
            let case_name = if case.name.is_empty() {
                format!("cases[{c}]")
            } else {
                case.name.clone()
            };
            let started = Instant::now();
            let outcome = if case.skip {
                Outcome::Skip
            } else {
                run_case(dir, &evaluator, case, timeout)
            };
            results.push(CaseResult {
                suite: suite_name.clone(),
                test: test_name.clone(),
                case: Some(case_name),
                outcome,
                duration: started.elapsed() + if c == 0 { load_time } else { Duration::ZERO },
            });
        }
    }
    results
}

fn read_suite(path: &Path) -> Result<SuiteFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc = manifest::decode_stream(&text)
        .into_iter()
        .find_map(|d| {
            let value = d.value.ok()?;
            (value["kind"] == "Suite").then_some(value)
        })
        .ok_or("no Suite document")?;
    let json = serde_json::to_value(&doc).map_err(|e| e.to_string())?;
    serde_json::from_value(json).map_err(|e| format!("invalid Suite: {e}"))
}

enum TestLoadError {
    /// The template and constraint files were read, but do not load together.
    Constraint(String),
    Other(String),
}

/// A policy set of the test's template and constraint alone, with an evaluator for it.
struct TestPolicies {
    set: Arc<load::PolicySet>,
}

impl TestPolicies {
    fn evaluator(&self, inventory: Json) -> anyhow::Result<Evaluator> {
        Evaluator::new(self.set.clone(), inventory)
    }
}

/// The test's template and constraint, loaded together. The template must load on its own first: a
/// test marked `invalid` means that the constraint does not fit the template, not that the template is
/// broken (gator fails such a test too).
fn load_test(dir: &Path, test: &TestSpec) -> Result<TestPolicies, TestLoadError> {
    let template = [(&test.template, "template")];
    load::compile(test_sources(dir, &template)?, &[], false)
        .map_err(|e| TestLoadError::Other(format!("the template does not load: {e}")))?;
    let both = [
        (&test.template, "template"),
        (&test.constraint, "constraint"),
    ];
    let set = load::compile(test_sources(dir, &both)?, &[], false)
        .map_err(|e| TestLoadError::Constraint(e.to_string()))?;
    if set.policies.is_empty() {
        return Err(TestLoadError::Constraint(
            "the template and constraint give no policy".into(),
        ));
    }
    Ok(TestPolicies { set: Arc::new(set) })
}

/// A bundle of the given files (paths relative to the suite's directory), read as manifests.
fn test_sources(dir: &Path, files: &[(&String, &str)]) -> Result<BundleSources, TestLoadError> {
    let mut sources = BundleSources::default();
    for &(rel, what) in files {
        let path = dir.join(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TestLoadError::Other(format!("{what} {}: {e}", path.display())))?;
        sources.files.insert(
            format!("{what}/{rel}"),
            SourceFile {
                display: path.display().to_string(),
                rel: format!("{what}/{rel}"),
                kind: FileKind::Manifest,
                text,
                layer: 0,
            },
        );
    }
    Ok(sources)
}

/// Reviews the case's object and checks the assertions.
fn run_case(dir: &Path, policies: &TestPolicies, case: &CaseSpec, timeout: Duration) -> Outcome {
    let (request, object_only) = match read_request(&dir.join(&case.object)) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let mut inventory = Inventory::new();
    for rel in &case.inventory {
        let path = dir.join(rel);
        let read = manifest::read_inputs(std::slice::from_ref(&path));
        let read = match read {
            Ok(r) => r,
            Err(e) => return Outcome::Error(format!("inventory {}: {e}", path.display())),
        };
        if let Some(err) = read.errors.first() {
            return Outcome::Error(format!(
                "inventory {}:{}: {}",
                err.location.file, err.location.line, err.message
            ));
        }
        for doc in &read.documents {
            inventory.add(
                &serde_json::to_value(&doc.object).unwrap_or_default(),
                "default",
            );
        }
    }
    let evaluator = match policies.evaluator(inventory.to_json()) {
        Ok(e) => e,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let extras = crate::policy::Extras {
        object_only,
        ..Default::default()
    };
    let decision = evaluator.validate_with(&request, extras, Instant::now() + timeout);
    if decision.deadline_exceeded {
        return Outcome::Error(format!("over the time budget of {timeout:?}"));
    }
    let mut messages = Vec::new();
    for result in &decision.results {
        if result.rule == crate::policy::RuleKind::Error {
            return Outcome::Error(result.message.clone());
        }
        messages.push(result.message.as_str());
    }
    check_assertions(&case.assertions, &messages)
}

/// The AdmissionRequest of an AdmissionReview file, or the CREATE request of a manifest; true for the
/// latter (an object that came from no admission request).
fn read_request(path: &Path) -> Result<(Json, bool), String> {
    let read = manifest::read_inputs(&[path.to_path_buf()])
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(err) = read.errors.first() {
        return Err(format!(
            "{}:{}: {}",
            err.location.file, err.location.line, err.message
        ));
    }
    let [doc] = read.documents.as_slice() else {
        return Err(format!(
            "{}: a case object must be one document, found {}",
            path.display(),
            read.documents.len()
        ));
    };
    let object = serde_json::to_value(&doc.object).map_err(|e| e.to_string())?;
    let is_review = object["kind"] == "AdmissionReview"
        && object["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("admission.k8s.io/"));
    if is_review {
        return object
            .get("request")
            .cloned()
            .map(|request| (request, false))
            .ok_or_else(|| format!("{}: the AdmissionReview has no request", path.display()));
    }
    Ok((
        create_request(&object, "default", &Requester::default()),
        true,
    ))
}

/// Checks every assertion against the violation messages (gator's rules; none means "no violations").
fn check_assertions(assertions: &[AssertionSpec], messages: &[&str]) -> Outcome {
    if assertions.is_empty() && !messages.is_empty() {
        return Outcome::Fail(format!(
            "got {} violations but want none: {messages:?}",
            messages.len()
        ));
    }
    for (a, assertion) in assertions.iter().enumerate() {
        let regex = match assertion.message.as_deref().map(Regex::new).transpose() {
            Ok(r) => r,
            Err(e) => return Outcome::Error(format!("assertions[{a}].message: {e}")),
        };
        let matching = messages
            .iter()
            .filter(|m| regex.as_ref().is_none_or(|r| r.is_match(m)))
            .count() as u64;
        let containing = assertion
            .message
            .as_deref()
            .map(|m| format!(" matching {m:?}"))
            .unwrap_or_default();
        let wanted = match &assertion.violations {
            None | Some(Violations::Flag(true)) => Wanted::AtLeastOne,
            Some(Violations::Flag(false)) => Wanted::Zero,
            Some(Violations::Count(n)) => Wanted::Exactly(*n),
            Some(Violations::Word(w)) if w == "yes" => Wanted::AtLeastOne,
            Some(Violations::Word(w)) if w == "no" => Wanted::Zero,
            Some(Violations::Word(w)) => {
                return Outcome::Error(format!(
                "assertions[{a}].violations must be a nonnegative integer, yes or no; found {w:?}"
            ))
            }
        };
        let failure = match wanted {
            Wanted::Exactly(n) if matching != n => Some(format!(
                "got {matching} violations{containing} but want exactly {n}"
            )),
            Wanted::AtLeastOne if matching == 0 => {
                Some(format!("got 0 violations{containing} but want at least 1"))
            }
            Wanted::Zero if matching > 0 => Some(format!(
                "got {matching} violations{containing} but want none"
            )),
            _ => None,
        };
        if let Some(failure) = failure {
            return Outcome::Fail(format!(
                "assertions[{a}]: {failure}; got messages {messages:?}"
            ));
        }
    }
    Outcome::Pass
}

impl Outcome {
    /// `pass`, `fail`, `error` or `skip`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Error(_) => "error",
            Outcome::Skip => "skip",
        }
    }

    /// Why it failed, erred or was skipped.
    fn message(&self) -> Option<&str> {
        match self {
            Outcome::Fail(m) | Outcome::Error(m) => Some(m),
            Outcome::Pass | Outcome::Skip => None,
        }
    }
}

/// The results as JSON, for `regate test --format json`: `[{suite, test, case?, result,
/// duration_ms, message?}]`.
pub fn to_json(results: &[CaseResult]) -> Json {
    Json::Array(
        results
            .iter()
            .map(|r| {
                let mut entry = serde_json::json!({
                    "suite": r.suite,
                    "test": r.test,
                    "result": r.outcome.as_str(),
                    "duration_ms": (r.duration.as_secs_f64() * 1_000_000.0).round() / 1_000.0,
                });
                if let Some(case) = &r.case {
                    entry["case"] = Json::String(case.clone());
                }
                if let Some(message) = r.outcome.message() {
                    entry["message"] = Json::String(message.to_string());
                }
                entry
            })
            .collect(),
    )
}

/// The results as JUnit test suites, one per suite file: each case a `<testcase>` named
/// `test / case` with the suite file as its class name.
pub fn junit_suites(results: &[CaseResult]) -> Vec<junit::TestSuite> {
    let mut by_file: Vec<junit::TestSuite> = Vec::new();
    for r in results {
        let problem = |kind: &str, message: &str| junit::Problem {
            message: message.lines().next().unwrap_or_default().to_string(),
            kind: kind.to_string(),
            text: message.to_string(),
        };
        let case = junit::TestCase {
            name: match &r.case {
                Some(case) => format!("{} / {case}", r.test),
                None => r.test.clone(),
            },
            classname: r.suite.clone(),
            file: r.suite.clone(),
            line: 1,
            time: r.duration,
            result: match &r.outcome {
                Outcome::Pass => junit::CaseResult::Passed,
                Outcome::Fail(m) => junit::CaseResult::Failure(problem("fail", m)),
                Outcome::Error(m) => junit::CaseResult::Error(problem("error", m)),
                Outcome::Skip => junit::CaseResult::Skipped {
                    message: "skip: true".to_string(),
                },
            },
            system_out: None,
        };
        match by_file.last_mut() {
            Some(suite) if suite.name == r.suite => suite.cases.push(case),
            _ => by_file.push(junit::TestSuite {
                name: r.suite.clone(),
                cases: vec![case],
            }),
        }
    }
    by_file
}

/// The text report: one line per failed or erroring case (every case with `verbose`), then
/// [`write_summary`]'s line.
pub fn write_text(
    results: &[CaseResult],
    verbose: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for result in results {
        let shown = verbose || matches!(result.outcome, Outcome::Fail(_) | Outcome::Error(_));
        if !shown {
            continue;
        }
        match &result.outcome {
            Outcome::Pass => writeln!(out, "PASS {} ({:?})", result.name(), result.duration)?,
            Outcome::Skip => writeln!(out, "SKIP {}", result.name())?,
            Outcome::Fail(why) => writeln!(out, "FAIL {}: {why}", result.name())?,
            Outcome::Error(why) => writeln!(out, "ERROR {}: {why}", result.name())?,
        }
    }
    write_summary(results, out)
}

/// `gator suites: P passed, F failed, E errors, S skipped`.
pub fn write_summary(results: &[CaseResult], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let count = |label: &str| {
        results
            .iter()
            .filter(|r| r.outcome.as_str() == label)
            .count()
    };
    writeln!(
        out,
        "gator suites: {} passed, {} failed, {} errors, {} skipped",
        count("pass"),
        count("fail"),
        count("error"),
        count("skip")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assertion(violations: Option<Violations>, message: Option<&str>) -> AssertionSpec {
        AssertionSpec {
            violations,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn assertions_follow_gator() {
        let two = ["missing label owner", "missing label team"];
        assert_eq!(check_assertions(&[], &[]), Outcome::Pass);
        assert!(matches!(check_assertions(&[], &two), Outcome::Fail(_)));
        assert_eq!(
            check_assertions(&[assertion(None, None)], &two),
            Outcome::Pass
        );
        assert!(matches!(
            check_assertions(&[assertion(None, None)], &[]),
            Outcome::Fail(_)
        ));
        assert_eq!(
            check_assertions(&[assertion(Some(Violations::Count(2)), None)], &two),
            Outcome::Pass
        );
        assert_eq!(
            check_assertions(
                &[assertion(Some(Violations::Count(1)), Some("owner$"))],
                &two
            ),
            Outcome::Pass
        );
        assert_eq!(
            check_assertions(
                &[assertion(
                    Some(Violations::Word("no".into())),
                    Some("^team")
                )],
                &two
            ),
            Outcome::Pass
        );
        let Outcome::Fail(why) =
            check_assertions(&[assertion(Some(Violations::Count(3)), None)], &two)
        else {
            panic!("a wrong count fails");
        };
        assert!(why.contains("got 2 violations but want exactly 3"), "{why}");
        assert!(matches!(
            check_assertions(
                &[assertion(Some(Violations::Word("maybe".into())), None)],
                &two
            ),
            Outcome::Error(_)
        ));
        assert!(matches!(
            check_assertions(&[assertion(None, Some("("))], &two),
            Outcome::Error(_)
        ));
    }
}
