//! Running the tests: each on its own clone of the warm interpreter template, in parallel, bounded by
//! a timer, with panics caught; the value decides the outcome.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use regorus::unstable::Module;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::LimitError;
use regorus::{Engine, Value};

use super::coverage::{coverage_targets, hits_of, merge_coverage, LineHits};
use super::discovery::discover;
use super::{Outcome, TestCase, TestResult, TestRun, TestSelection, TEST_PREFIX};
use crate::policy::load::{format_rego_error, PolicySet};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::PolicySet;
    use crate::policy::testrunner::test_fixtures::{quick, set_of};
    use regex::Regex;
    use rstest::rstest;

    /// A set with one test module `t_test.rego` of package `t` holding `body`.
    fn one_test(body: &str) -> PolicySet {
        set_of(&[("t_test.rego", 0, &format!("package t\n\n{body}\n"))])
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
}
