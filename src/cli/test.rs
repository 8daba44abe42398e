//! `regate test [DIR]...`: runs the Rego unit tests (`test_*` rules in `*_test.rego` files) of the given
//! bundle directories, like `opa test`. The bundled library's modules are loaded underneath (unless
//! `--no-bundled`), but its tests only run, and are only loaded, when no DIR is given. Arguments are
//! wired to [`crate::policy::testrunner`], which runs the tests and writes the reports.
//!
//! Exit codes: 0 every test passed (and coverage met `--threshold`); 1 a test failed or errored, or
//! coverage is below the threshold; 2 bad arguments (a DIR that does not exist or is not a directory,
//! a DIR without tests, a `--run` that selects no test) or a bundle that does not load (every problem
//! listed as `file:line:col: message`). 2 wins over 1.
//!
//! A DIR without tests is almost always a mistyped path, and a runner that passes when it ran nothing
//! lets that mistake pass CI: it is an error (`error: no tests found in DIR`) unless `--allow-no-tests`
//! is given, which turns it into a note on stderr. The same holds for `--run REGEX` matching no test,
//! and for the bundled library when no DIR is given. The tests of the other DIRs still run and are
//! reported either way.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use regex::Regex;

use crate::duration::parse_timeout;
use crate::gatekeeper;
use crate::policy::bundle::FileKind;
use crate::policy::load::{self, LoadOptions};
use crate::policy::testrunner::{self, TestSelection};
use crate::policy::Layers;
use crate::workers;

/// Output format of `regate test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// `PASS`/`FAIL`/`ERROR` lines and counts, like `opa test`.
    Text,
    /// One JSON object with every test, the counts and coverage.
    Json,
    /// JUnit XML, one testsuite per package.
    Junit,
}

/// Arguments of `regate test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Bundle directories whose `*_test.rego` tests run, layered over the bundled library in order.
    /// Without any, the bundled library's own tests run.
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Do not load the bundled policy library.
    #[arg(long = "no-bundled")]
    pub no_bundled: bool,
    /// Only run tests whose id (`data.pkg.test_name`) matches this regular expression.
    #[arg(short, long, value_name = "REGEX", value_parser = parse_regex)]
    pub run: Option<Regex>,
    /// List every test with its timing, and show `print()` output of passing tests and uncovered lines.
    #[arg(short, long)]
    pub verbose: bool,
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = TestFormat::Text)]
    pub format: TestFormat,
    /// Report line coverage of the DIRs' modules (test files excluded).
    #[arg(short, long)]
    pub coverage: bool,
    /// Fail (exit 1) when total coverage is below PERCENT; implies --coverage.
    #[arg(long, value_name = "PERCENT", value_parser = parse_threshold)]
    pub threshold: Option<f64>,
    /// Time budget of each test (`500ms`, `5s`, `1m`); a test over it is an error.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Accept a DIR without tests, or a --run that matches none (by default either exits 2: a
    /// mistyped path must not pass CI).
    #[arg(long)]
    pub allow_no_tests: bool,
    /// Former opt-in to failing when no test ran; that is now the default (see --allow-no-tests).
    #[arg(long, hide = true, conflicts_with = "allow_no_tests")]
    pub fail_on_empty: bool,
    /// Worker threads (default: all cores). Output does not depend on it.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

fn parse_regex(value: &str) -> Result<Regex, String> {
    Regex::new(value).map_err(|e| e.to_string())
}

fn parse_threshold(value: &str) -> Result<f64, String> {
    let n: f64 = value
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("{value} is not a percentage between 0 and 100"));
    }
    Ok(n)
}

/// Runs `regate test`; returns the exit code.
pub fn run(args: &TestArgs) -> anyhow::Result<i32> {
    let layers = Layers::read(&LoadOptions {
        embedded: !args.no_bundled,
        policy_dirs: args.dirs.clone(),
        ..LoadOptions::default()
    })?;
    let mut sources = layers.test_sources();
    // Gatekeeper templates and constraints are tested by their gator suites, each test on its own
    // template and constraint; a suite directory holds many sample constraints that never form one
    // bundle.
    sources.files.retain(|_, f| f.kind != FileKind::Manifest);
    let suites = gatekeeper::suite::find_suites(&args.dirs);
    let set = match load::compile(sources, &layers.config, true) {
        Ok(set) => set,
        Err(err) => {
            eprintln!("error: the policy bundle does not load:");
            eprintln!("{err}");
            return Ok(2);
        }
    };
    let selection = TestSelection {
        min_layer: layers.first_tested_layer(),
        run: args.run.clone(),
        timeout: args.timeout,
        coverage: args.coverage || args.threshold.is_some(),
    };

    // Directories without tests: reported after the run, an error unless --allow-no-tests.
    let discovered = testrunner::discover(&set, selection.min_layer);
    let mut nothing_to_run = Vec::new();
    if args.dirs.is_empty() {
        if discovered.is_empty() {
            nothing_to_run.push(if args.no_bundled {
                "no tests to run: --no-bundled and no DIR given".to_string()
            } else {
                "no tests found in the bundled library".to_string()
            });
        }
    } else {
        for (i, dir) in args.dirs.iter().enumerate() {
            let layer = layers.first_dir_layer + i;
            let has_suite = suites.iter().any(|s| s.starts_with(dir));
            if !has_suite && !discovered.iter().any(|c| c.layer == layer) {
                nothing_to_run.push(format!(
                    "no tests found in {} (no `test_*` rule in a `*_test.rego` file, no gator Suite)",
                    dir.display()
                ));
            }
        }
    }

    let run = workers::run_on(args.jobs, || testrunner::run_tests(&set, &selection))
        .context("starting worker threads")?;
    if run.results.is_empty() && run.filtered_out > 0 {
        if let Some(re) = &args.run {
            nothing_to_run.push(format!("no tests matched --run {}", re.as_str()));
        }
    }

    // Gator suites run after the Rego tests and are reported with them.
    let suite_results: Vec<_> = suites
        .iter()
        .flat_map(|suite| gatekeeper::suite::run_suite(suite, args.timeout))
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        TestFormat::Text => testrunner::write_text(&run, args.verbose, &mut out).and_then(|()| {
            if suite_results.is_empty() {
                Ok(())
            } else {
                gatekeeper::suite::write_text(&suite_results, args.verbose, &mut out)
            }
        }),
        TestFormat::Json => {
            let mut doc = testrunner::to_json(&run);
            if !suite_results.is_empty() {
                doc["suites"] = gatekeeper::suite::to_json(&suite_results);
            }
            serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
        TestFormat::Junit => {
            let mut doc = testrunner::junit_document(&run);
            doc.suites
                .extend(gatekeeper::suite::junit_suites(&suite_results));
            doc.write(&mut out)
        }
    }
    .and_then(|()| out.flush())
    .context("writing the test report to stdout")?;
    if args.format != TestFormat::Text {
        // stdout stays machine-readable; CI still finds the summary lines.
        eprintln!("{}", testrunner::summary_line(&run));
        if !suite_results.is_empty() {
            gatekeeper::suite::write_summary(&suite_results, &mut std::io::stderr())
                .context("writing the suite summary")?;
        }
    }
    let suites_passed = suite_results.iter().all(|r| {
        matches!(
            r.outcome,
            gatekeeper::suite::Outcome::Pass | gatekeeper::suite::Outcome::Skip
        )
    });

    let mut code = if run.all_passed() && suites_passed {
        0
    } else {
        1
    };
    if let (Some(threshold), Some(coverage)) = (args.threshold, &run.coverage) {
        let percent = coverage.percent();
        if percent < threshold {
            eprintln!(
                "coverage {percent:.2}% ({}/{} lines) is below the threshold {threshold}%",
                coverage.covered(),
                coverage.total()
            );
            code = 1;
        }
    }
    // Last on stderr, after the report, so that it is what a CI log ends with.
    for problem in &nothing_to_run {
        if args.allow_no_tests {
            eprintln!("{problem}");
        } else {
            eprintln!("error: {problem}");
        }
    }
    if !nothing_to_run.is_empty() && !args.allow_no_tests {
        eprintln!("pass --allow-no-tests to accept running no tests there");
        code = 2;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("90", Some(90.0))]
    #[case("87.5%", Some(87.5))]
    #[case("0", Some(0.0))]
    #[case("100", Some(100.0))]
    #[case("101", None)]
    #[case("-3", None)]
    #[case("lots", None)]
    fn thresholds(#[case] text: &str, #[case] want: Option<f64>) {
        assert_eq!(parse_threshold(text).ok(), want);
    }
}
