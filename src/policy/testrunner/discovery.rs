//! Finding the tests: the `test_` rules of the `*_test.rego` modules of the selected layers, one per
//! package and name, and which of them are functions (reported as errors, never evaluated).

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Rule, RuleHead};

use super::{TestCase, TEST_PREFIX};
use crate::policy::bundle::{BundleSources, FileKind};
use crate::policy::load::PolicySet;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testrunner::test_fixtures::{add_source, set_of};

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
            add_source(&mut sources, rel, layer, kind, "");
        }
        drop_unselected_tests(&mut sources, 1);
        let kept: Vec<&str> = sources.files.keys().map(String::as_str).collect();
        assert_eq!(kept, ["a/policy.rego", "b/policy_test.rego", "regate.yaml"]);
        drop_unselected_tests(&mut sources, 0);
        assert_eq!(sources.files.len(), 3);
    }
}
