//! `regate test` end to end: the real binary over the fixtures in `testdata/rego-tests/`, always with
//! `--no-bundled` so that the results do not depend on the bundled library.
//!
//! Fixtures:
//! - `pass/`: policy `regate.policies.sample` and three passing tests; coverage is exactly 6 of 9 lines
//!   (the `warn` rule, lines 24-26, is never exercised);
//! - `fail/`: one passing, one failing (with a `print`) and one erroring test (`to_number("x")`);
//! - `broken/`: a module that does not parse;
//! - `slow/`: a fast test and a runaway one;
//! - `notests/`: a module and no tests (an error unless `--allow-no-tests`).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value as Json;

const PASS: &str = "testdata/rego-tests/pass";
const FAIL: &str = "testdata/rego-tests/fail";
const BROKEN: &str = "testdata/rego-tests/broken";
const SLOW: &str = "testdata/rego-tests/slow";
const NOTESTS: &str = "testdata/rego-tests/notests";
const POLICY: &str = "testdata/rego-tests/pass/sample/policy.rego";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn regate_test(args: &[&str]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_regate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("test")
        .arg("--no-bundled")
        .args(args)
        .output()
        .expect("regate runs");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or_default()
}

#[test]
fn passing_tests_exit_0_with_the_summary_last() {
    let run = regate_test(&[PASS]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Without -v only failures are listed.
    assert!(!run.stdout.contains("test_owner_label"), "{}", run.stdout);
    assert!(run.stdout.contains("PASS: 3/3\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL:"), "{}", run.stdout);
    assert_eq!(last_line(&run.stdout), "3 passed, 0 failed");
}

#[test]
fn verbose_lists_every_test_with_timing_and_location() {
    let run = regate_test(&["-v", PASS]);
    assert_eq!(run.code, 0);
    let line = Regex::new(
        r"(?m)^PASS: data\.regate\.policies\.sample_test\.test_latest_tag_is_denied \([0-9.]+(µs|ms|s)\) testdata/rego-tests/pass/sample/policy_test\.rego:16$",
    )
    .expect("regex");
    assert!(line.is_match(&run.stdout), "{}", run.stdout);
    // (file, line) order.
    let order: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PASS: data.regate.policies.sample_test."))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        [
            "test_owner_label_missing_is_denied",
            "test_latest_tag_is_denied",
            "test_compliant_pod_is_allowed"
        ]
    );
}

#[test]
fn failures_and_errors_exit_1_and_are_reported() {
    let run = regate_test(&[FAIL]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("FAIL: data.regate.lib.util_test.test_double_fails ("),
        "{out}"
    );
    assert!(
        out.contains("testdata/rego-tests/fail/lib/util_test.rego:9\n"),
        "{out}"
    );
    // Prints of a failing test show without -v.
    assert!(
        out.contains("print: testdata/rego-tests/fail/lib/util_test.rego:10: double(2) is 4"),
        "{out}"
    );
    assert!(
        out.contains("ERROR: data.regate.lib.util_test.test_number_errors ("),
        "{out}"
    );
    // Strict builtin errors, with the position of the failing call.
    assert!(
        out.contains(
            "testdata/rego-tests/fail/lib/util_test.rego:16:16: could not parse string as number"
        ),
        "{out}"
    );
    assert!(!out.contains("test_double_passes"), "{out}");
    assert!(out.contains("PASS: 1/3\nFAIL: 1/3\nERROR: 1/3\n"), "{out}");
    assert_eq!(last_line(out), "1 passed, 2 failed");
}

#[test]
fn a_bundle_that_does_not_load_exits_2_with_file_line_col() {
    let run = regate_test(&[BROKEN]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("testdata/rego-tests/broken/bad.rego:6:1: expecting `]`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_runaway_test_is_an_error_within_its_timeout() {
    let started = Instant::now();
    let run = regate_test(&["--timeout", "200ms", SLOW]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("ERROR: data.regate.slow_test.test_runaway ("),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "testdata/rego-tests/slow/slow_test.rego:8: test exceeded its time limit of 200ms"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(last_line(&run.stdout), "1 passed, 1 failed");
}

#[test]
fn junit_is_well_formed_with_one_suite_per_package() {
    let run = regate_test(&["--format", "junit", FAIL, PASS]);
    assert_eq!(run.code, 1);
    let doc = roxmltree::Document::parse(&run.stdout).expect("well-formed JUnit XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("6"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("errors"), Some("1"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
    assert_eq!(
        names,
        [
            "data.regate.lib.util_test",
            "data.regate.policies.sample_test"
        ]
    );
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no testcase {name}"))
    };
    let failing = case("test_double_fails");
    assert_eq!(
        failing.attribute("classname"),
        Some("data.regate.lib.util_test")
    );
    assert!(failing.children().any(|n| n.has_tag_name("failure")));
    let erroring = case("test_number_errors");
    let error = erroring
        .children()
        .find(|n| n.has_tag_name("error"))
        .expect("error element");
    assert!(error
        .attribute("message")
        .is_some_and(|m| m.contains("could not parse string as number")));
    let passing = case("test_compliant_pod_is_allowed");
    assert_eq!(passing.children().filter(|n| n.is_element()).count(), 0);
    let time: f64 = passing
        .attribute("time")
        .and_then(|t| t.parse().ok())
        .expect("time in seconds");
    assert!(time < 5.0);
    // The summary line still reaches CI, on stderr.
    assert_eq!(last_line(&run.stderr), "4 passed, 2 failed");
}

#[test]
fn json_has_every_test_and_the_counts() {
    let run = regate_test(&["--format", "json", FAIL]);
    assert_eq!(run.code, 1);
    let doc: Json = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["passed"], 1);
    assert_eq!(doc["failed"], 1);
    assert_eq!(doc["errors"], 1);
    assert_eq!(doc["total"], 3);
    let tests = doc["tests"].as_array().expect("tests array");
    let results: Vec<(&str, &str)> = tests
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default(),
                t["result"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("test_double_passes", "pass"),
            ("test_double_fails", "fail"),
            ("test_number_errors", "error")
        ]
    );
    assert_eq!(
        tests[1]["prints"][0],
        "testdata/rego-tests/fail/lib/util_test.rego:10: double(2) is 4"
    );
    assert_eq!(
        tests[1]["id"],
        "data.regate.lib.util_test.test_double_fails"
    );
    assert_eq!(tests[1]["package"], "data.regate.lib.util_test");
    assert_eq!(
        tests[1]["file"],
        "testdata/rego-tests/fail/lib/util_test.rego"
    );
    assert_eq!(tests[1]["line"], 9);
    assert!(tests[2]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("testdata/rego-tests/fail/lib/util_test.rego:16:16:")));
    assert!(tests[0]["duration_ms"].is_number());
    assert!(doc.get("coverage").is_none());
}

#[test]
fn coverage_counts_exactly_the_lines_the_tests_reached() {
    let run = regate_test(&["--coverage", PASS]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "  {POLICY}: 6/9 lines (66.67%)\n  total: 6/9 lines (66.67%)\n"
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Uncovered lines"), "{}", run.stdout);
    assert_eq!(last_line(&run.stdout), "3 passed, 0 failed");

    let verbose = regate_test(&["--coverage", "-v", PASS]);
    assert!(
        verbose
            .stdout
            .contains(&format!("Uncovered lines:\n  {POLICY}: 24-26\n")),
        "{}",
        verbose.stdout
    );

    let json = regate_test(&["--coverage", "--format", "json", PASS]);
    let doc: Json = serde_json::from_str(&json.stdout).expect("JSON");
    let cov = &doc["coverage"];
    assert_eq!(cov["percent"], 66.67);
    assert_eq!(cov["covered"], 6);
    assert_eq!(cov["total"], 9);
    // Only the DIR's non-test modules.
    assert_eq!(cov["files"].as_array().map(Vec::len), Some(1));
    assert_eq!(cov["files"][0]["file"], POLICY);
    assert_eq!(
        cov["files"][0]["uncovered"],
        serde_json::json!([24, 25, 26])
    );
}

#[test]
fn threshold_passes_and_fails_on_the_total() {
    let met = regate_test(&["--threshold", "60", PASS]);
    assert_eq!(met.code, 0, "{}{}", met.stdout, met.stderr);
    // --threshold implies --coverage.
    assert!(
        met.stdout.contains("total: 6/9 lines (66.67%)"),
        "{}",
        met.stdout
    );

    let missed = regate_test(&["--threshold", "70", PASS]);
    assert_eq!(missed.code, 1, "{}{}", missed.stdout, missed.stderr);
    assert!(
        missed
            .stderr
            .contains("coverage 66.67% (6/9 lines) is below the threshold 70%"),
        "{}",
        missed.stderr
    );
    assert_eq!(last_line(&missed.stdout), "3 passed, 0 failed");
}

#[test]
fn run_selects_tests_by_id() {
    let run = regate_test(&["-v", "--run", r"sample_test\.test_latest", PASS]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout.matches("PASS: data.").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(last_line(&run.stdout), "1 passed, 0 failed");

    // Selecting only the passing test of a failing directory passes.
    assert_eq!(regate_test(&["--run", "passes$", FAIL]).code, 0);

    // A --run that selects nothing is a usage error (exit 2), unless --allow-no-tests.
    let none = regate_test(&["--run", "nomatch", PASS]);
    assert_eq!(none.code, 2, "{}{}", none.stdout, none.stderr);
    assert!(
        none.stderr
            .contains("error: no tests matched --run nomatch"),
        "{}",
        none.stderr
    );
    assert_eq!(last_line(&none.stdout), "0 passed, 0 failed");
    let allowed = regate_test(&["--allow-no-tests", "--run", "nomatch", PASS]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert!(
        allowed.stderr.contains("no tests matched --run nomatch")
            && !allowed.stderr.contains("error:"),
        "{}",
        allowed.stderr
    );
}

#[test]
fn a_dir_without_tests_is_an_error_naming_it_after_the_other_tests_ran() {
    let run = regate_test(&[PASS, NOTESTS]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    // The tests of the other directory still ran and were reported.
    assert_eq!(last_line(&run.stdout), "3 passed, 0 failed");
    assert_eq!(
        run.stderr,
        "error: no tests found in testdata/rego-tests/notests (no `test_*` rule in a `*_test.rego` file, no gator Suite)\n\
         pass --allow-no-tests to accept running no tests there\n"
    );
}

#[test]
fn only_a_dir_without_tests_exits_2_in_every_format() {
    for format in ["text", "json", "junit"] {
        let run = regate_test(&["--format", format, NOTESTS]);
        assert_eq!(run.code, 2, "{format}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("error: no tests found in testdata/rego-tests/notests"),
            "{format}: {}",
            run.stderr
        );
    }
    // The machine-readable report is still written, and says that nothing ran.
    let json: Json = serde_json::from_str(&regate_test(&["--format", "json", NOTESTS]).stdout)
        .expect("JSON report");
    assert_eq!(json["tests"].as_array().map(Vec::len), Some(0), "{json}");
}

#[test]
fn allow_no_tests_accepts_a_dir_without_tests() {
    let run = regate_test(&["--allow-no-tests", PASS, NOTESTS]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr,
        "no tests found in testdata/rego-tests/notests (no `test_*` rule in a `*_test.rego` file, no gator Suite)\n"
    );
    assert_eq!(last_line(&run.stdout), "3 passed, 0 failed");
    // It does not hide failures.
    assert_eq!(regate_test(&["--allow-no-tests", FAIL, NOTESTS]).code, 1);
    // A failing test and an empty directory: the usage error wins, as in `regate check`.
    assert_eq!(regate_test(&[FAIL, NOTESTS]).code, 2);
}

#[test]
fn no_bundled_library_and_no_dir_is_nothing_to_run() {
    let run = regate_test(&[]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("error: no tests to run: --no-bundled and no DIR given\n"),
        "{}",
        run.stderr
    );
    assert_eq!(regate_test(&["--allow-no-tests"]).code, 0);
}

#[test]
fn fail_on_empty_is_still_accepted_and_is_the_default() {
    let run = regate_test(&["--fail-on-empty", PASS, NOTESTS]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(regate_test(&["--fail-on-empty", PASS]).code, 0);
    let both = regate_test(&["--fail-on-empty", "--allow-no-tests", PASS]);
    assert_eq!(both.code, 2, "contradictory flags: {}", both.stderr);
}

#[test]
fn a_path_that_does_not_exist_or_is_a_file_is_named() {
    let missing = regate_test(&[PASS, "testdata/rego-tests/does-not-exist"]);
    assert_eq!(missing.code, 2);
    assert_eq!(
        missing.stderr,
        "error: testdata/rego-tests/does-not-exist: no such directory\n"
    );
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    let file = regate_test(&[POLICY]);
    assert_eq!(file.code, 2);
    assert_eq!(file.stderr, format!("error: {POLICY}: not a directory\n"));
    // --allow-no-tests does not excuse a path that is not there.
    assert_eq!(
        regate_test(&["--allow-no-tests", "testdata/rego-tests/does-not-exist"]).code,
        2
    );
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        vec!["testdata/rego-tests/does-not-exist"],
        vec!["--run", "(unclosed", PASS],
        vec!["--threshold", "150", PASS],
        vec!["--timeout", "soon", PASS],
        vec!["--format", "xml", PASS],
    ] {
        let run = regate_test(&args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
    }
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let durations = Regex::new(r"\([0-9.]+(µs|ms|s)\)").expect("regex");
    let text = |jobs: &str| {
        let run = regate_test(&["-v", "--coverage", "--jobs", jobs, FAIL, PASS]);
        durations.replace_all(&run.stdout, "(T)").into_owned()
    };
    let one = text("1");
    assert_eq!(text("4"), one);
    assert_eq!(text("3"), one);
}
