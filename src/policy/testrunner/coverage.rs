//! Line coverage: what one evaluation reached (from regorus's report), which lines of a module are
//! coverable (from the AST, through the shared visitor, the same walk as regorus's report), and the
//! merge of every test's coverage over the modules measured.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, Module, WithModifier};

use crate::policy::bundle::FileKind;
use crate::policy::load::PolicySet;
use crate::policy::visit::{walk_expr, walk_literal, Visitor};

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

pub(super) fn hits_of(report: regorus::coverage::Report) -> BTreeMap<String, LineHits> {
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
pub(super) fn coverage_targets(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testrunner::test_fixtures::{lines, quick, set_of};
    use crate::policy::testrunner::{run_tests, TestSelection};
    use regorus::{Engine, Value};
    use rstest::rstest;

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
}
