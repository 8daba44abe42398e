//! The reports of a run: text (like `opa test`), JSON and JUnit XML (through [`crate::report::junit`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::{CoverageReport, FileCoverage, Outcome, TestResult, TestRun};
use crate::report::junit;

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

/// The JUnit document [`write_junit`] writes, for a caller that adds suites of its own (gator suites).
pub fn junit_document(run: &TestRun) -> junit::TestSuites {
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
    use crate::policy::testrunner::test_fixtures::lines;
    use crate::policy::testrunner::TestCase;
    use rstest::rstest;

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
    #[case(Duration::from_micros(850), "850µs")]
    #[case(Duration::from_micros(1234), "1.2ms")]
    #[case(Duration::from_millis(2346), "2.35s")]
    fn durations(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(format_duration(d), want);
    }
}
