//! Gatekeeper ConstraintTemplates and Constraints in a bundle, through `regate check` (the real binary):
//! Rego v0 and v1 templates, libraries, two templates with one package name, `data.inventory`,
//! `namespaceSelector`, name globs, enforcement actions, and a parameter that breaks the schema.

mod common;

use common::{code, regate, stderr, stdout};

fn check(bundles: &[&str], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["check", "--no-bundled"];
    for bundle in bundles {
        args.extend(["--policies", bundle]);
    }
    args.extend(extra);
    regate(&args, None)
}

/// The finding lines of a text report (without the summary).
fn findings(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.contains(": DENY ") || l.contains(": WARN ") || l.contains(": DRYRUN "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_v0_template_with_parameters_and_a_regex() {
    let out = check(
        &["testdata/gatekeeper/requiredlabels"],
        &["testdata/gatekeeper/cases/namespaces.yaml"],
    );
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        findings(&out),
        vec![
            "testdata/gatekeeper/cases/namespaces.yaml:8: DENY ns-must-have-owner: Namespace/shop2: you must provide labels: {\"owner\"}",
            "testdata/gatekeeper/cases/namespaces.yaml:13: DENY ns-must-have-owner: Namespace/shop3: Label <owner: JaneDoe> does not satisfy allowed regex: ^[a-z]+\\.[a-z]+$",
        ]
    );
}

#[test]
fn templates_sharing_a_package_and_a_library_name_stay_apart() {
    let out = check(
        &["testdata/gatekeeper/samepackage"],
        &[
            "--inventory",
            "testdata/gatekeeper/cases/namespaces-inventory.yaml",
            "testdata/gatekeeper/cases/configmaps.yaml",
        ],
    );
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        findings(&out),
        vec![
            // K8sBlockedName's `blocked` is equality: `test` only, not `tmp-x`.
            "testdata/gatekeeper/cases/configmaps.yaml:1: DENY no-test-configmap: ConfigMap/shop/test: name test is blocked",
            // K8sBlockedPrefix's `blocked` is a prefix test, enforced as a warning; `*-sandbox` is excluded.
            "testdata/gatekeeper/cases/configmaps.yaml:7: WARN no-tmp-configmaps: ConfigMap/shop/tmp-x: name tmp-x has a blocked prefix",
            // namespaceSelector: `shop` is tier=tenant, `infra` is not (debug-b passes) ...
            "testdata/gatekeeper/cases/configmaps.yaml:25: DENY no-debug-in-tenants: ConfigMap/shop/debug-a: name debug-a has a blocked prefix",
            // ... and a namespace nobody knows is judged, not exempted.
            "testdata/gatekeeper/cases/configmaps.yaml:37: DENY no-debug-in-tenants: ConfigMap/ghost/debug-c: name debug-c has a blocked prefix",
        ]
    );
}

#[test]
fn a_v1_template_reads_the_inventory_and_dryrun_does_not_fail_the_check() {
    let with_conflict = check(
        &["testdata/gatekeeper/uniquehost"],
        &[
            "--inventory",
            "testdata/gatekeeper/cases/ingress-inventory.yaml",
            "testdata/gatekeeper/cases/ingress.yaml",
        ],
    );
    assert_eq!(
        code(&with_conflict),
        0,
        "{}{}",
        stdout(&with_conflict),
        stderr(&with_conflict)
    );
    assert_eq!(
        findings(&with_conflict),
        vec!["testdata/gatekeeper/cases/ingress.yaml:1: DRYRUN unique-ingress-host: Ingress/shop/web: ingress host conflicts with an existing ingress <blog/other>"]
    );
    let alone = check(
        &["testdata/gatekeeper/uniquehost"],
        &["testdata/gatekeeper/cases/ingress.yaml"],
    );
    assert_eq!(code(&alone), 0);
    assert_eq!(findings(&alone), Vec::<String>::new());
}

#[test]
fn a_parameter_that_breaks_the_schema_fails_the_load_naming_file_line_and_field() {
    let out = check(
        &[
            "testdata/gatekeeper/samepackage",
            "testdata/gatekeeper/bad-parameters",
        ],
        &["testdata/gatekeeper/cases/configmaps.yaml"],
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("testdata/gatekeeper/bad-parameters/constraint.yaml:3: K8sBlockedName wrong-parameters: spec.parameters.names: must be array, not string (schema of ConstraintTemplate k8sblockedname)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gatekeeper_policies_mix_with_the_bundled_library() {
    let out = regate(
        &[
            "check",
            "--policies",
            "testdata/gatekeeper/requiredlabels",
            "testdata/gatekeeper/cases/namespaces.yaml",
        ],
        None,
    );
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("DENY ns-must-have-owner: Namespace/shop2"),
        "{text}"
    );
    assert!(
        text.contains("DENY tenant-isolation: Namespace/shop2"),
        "{text}"
    );
}

/// Gatekeeper's review: on DELETE the old object is `input.review.object`, and `namespaceObject` is the
/// object's Namespace from cluster state. The answer is tagged with the constraint's name, as
/// Gatekeeper's is.
#[test]
fn delete_reviews_carry_the_old_object_and_the_namespace_object() {
    // `regate eval` exits 1 when the answer denies, 0 when it allows.
    let eval = |inventory: bool, expected_code: i32| {
        let mut args = vec![
            "eval",
            "--no-bundled",
            "--policies",
            "testdata/gatekeeper/namespaceobject",
            "--review",
            "testdata/gatekeeper/cases/delete-configmap-review.json",
        ];
        if inventory {
            args.extend([
                "--inventory",
                "testdata/gatekeeper/cases/shop-namespace-inventory.yaml",
            ]);
        }
        let out = regate(&args, None);
        assert_eq!(code(&out), expected_code, "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let denied = eval(true, 1);
    assert_eq!(denied["response"]["allowed"], false);
    assert_eq!(
        denied["response"]["status"]["message"],
        "[payments-objects] ConfigMap/ledger belongs to team payments; only alice may delete it"
    );
    // Without the Namespace in cluster state, namespaceObject is undefined and the rule does not fire.
    assert_eq!(eval(false, 0)["response"]["allowed"], true);
}

#[test]
fn a_constraint_named_like_a_regate_policy_is_refused() {
    let out = regate(
        &[
            "check",
            "--policies",
            "testdata/gatekeeper/clash",
            "testdata/gatekeeper/cases/namespaces.yaml",
        ],
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("the constraint's policy id tenant-isolation is already the id of the policy in policies/tenant-isolation/"),
        "{}",
        stderr(&out)
    );
}

/// Every template directory of testdata/gatekeeper with a suite, except the deliberately failing one.
fn suite_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(common::root().join("testdata/gatekeeper"))
        .expect("testdata/gatekeeper")
        .flatten()
        .filter(|e| e.path().join("suite.yaml").is_file() && e.file_name() != "failing-suite")
        .map(|e| format!("testdata/gatekeeper/{}", e.file_name().to_string_lossy()))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn gator_suites_pass_through_regate_test() {
    let dirs = suite_dirs();
    assert!(dirs.len() >= 4, "{dirs:?}");
    let mut args = vec!["test", "--no-bundled", "-v"];
    args.extend(dirs.iter().map(String::as_str));
    let out = regate(&args, None);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    let summary = text
        .lines()
        .find(|l| l.starts_with("gator suites: "))
        .unwrap_or_else(|| panic!("no suite summary in:\n{text}"));
    assert!(
        summary.ends_with(" passed, 0 failed, 0 errors, 1 skipped"),
        "{summary}"
    );
    assert!(
        text.contains("PASS testdata/gatekeeper/namespaceobject/suite.yaml: protected-team-deletes / delete-by-someone-else"),
        "{text}"
    );
    assert!(
        text.contains(
            "SKIP testdata/gatekeeper/samepackage/suite.yaml: namespace-selector / skipped-case"
        ),
        "{text}"
    );
}

#[test]
fn a_failing_gator_suite_fails_regate_test_naming_suite_test_and_case() {
    let out = regate(
        &["test", "--no-bundled", "testdata/gatekeeper/failing-suite"],
        None,
    );
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}{}", stderr(&out));
    for line in [
        "FAIL testdata/gatekeeper/failing-suite/suite.yaml: wrong-expectations / expects-a-violation-that-is-not-there: assertions[0]: got 0 violations but want at least 1",
        "FAIL testdata/gatekeeper/failing-suite/suite.yaml: wrong-expectations / expects-none-but-gets-one: got 1 violations but want none",
        "FAIL testdata/gatekeeper/failing-suite/suite.yaml: not-invalid: the constraint loaded, but the test says it is invalid",
        "ERROR testdata/gatekeeper/failing-suite/suite.yaml: broken-template-is-not-invalid-constraint: the template does not load: testdata/gatekeeper/failing-suite/broken/template.yaml:2 K8sBroken/rego:3:24: expecting `]`",
        "gator suites: 0 passed, 3 failed, 1 errors, 0 skipped",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// Templates run on the compiled VM, like the bundled policies: none of the example templates needs
/// the interpreter. (Each directory is its own bundle: as layers, their `template.yaml` files would
/// replace one another.)
#[test]
fn templates_run_on_the_compiled_vm() {
    let mut backends = Vec::new();
    for dir in suite_dirs() {
        let options = regate::policy::LoadOptions {
            embedded: false,
            policy_dirs: vec![common::root().join(&dir)],
            ..Default::default()
        };
        let set = regate::policy::load(&options).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(!set.policies.is_empty(), "{dir}");
        backends.extend(
            set.policies
                .iter()
                .map(|p| (p.id.clone(), p.backend_name())),
        );
    }
    assert!(
        backends.iter().all(|(_, backend)| *backend == "rvm"),
        "{backends:?}"
    );
}

/// What loading leaves out is said, not hidden: a template's CEL entry is skipped with a note on stderr.
#[test]
fn load_notes_are_printed() {
    let out = check(
        &["testdata/gatekeeper/uniquehost"],
        &["testdata/gatekeeper/cases/ingress.yaml"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: testdata/gatekeeper/uniquehost/template.yaml:3: ConstraintTemplate k8suniqueingresshost: spec.targets[0].code[0]: engine K8sNativeValidation is not run by regate (only Rego)"),
        "{}",
        stderr(&out)
    );
}

/// Suite results are in the machine-readable reports too, as Rego test results are: a `suites` array
/// in JSON, one `<testsuite>` per suite file in JUnit; the summary lines go to stderr.
#[test]
fn suite_results_are_in_the_json_and_junit_reports() {
    let json = regate(
        &[
            "test",
            "--no-bundled",
            "--format",
            "json",
            "testdata/gatekeeper/failing-suite",
        ],
        None,
    );
    assert_eq!(code(&json), 1);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let results: Vec<(&str, &str)> = report["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["test"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        vec![
            ("wrong-expectations", "fail"),
            ("wrong-expectations", "fail"),
            ("not-invalid", "fail"),
            ("broken-template-is-not-invalid-constraint", "error"),
        ]
    );
    assert!(stderr(&json).contains("gator suites: 0 passed, 3 failed, 1 errors, 0 skipped"));

    let junit = regate(
        &[
            "test",
            "--no-bundled",
            "--format",
            "junit",
            "testdata/gatekeeper/failing-suite",
        ],
        None,
    );
    assert_eq!(code(&junit), 1);
    let xml = stdout(&junit);
    assert!(
        xml.contains(r#"<testsuite name="testdata/gatekeeper/failing-suite/suite.yaml" tests="4" failures="3" errors="1" skipped="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="wrong-expectations / expects-none-but-gets-one" classname="testdata/gatekeeper/failing-suite/suite.yaml""#),
        "{xml}"
    );
}
