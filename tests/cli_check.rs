//! `regate check` through the real binary: exit codes, every report format parsed back, line accuracy,
//! determinism across thread counts, bad and empty input, very large documents, mutation before
//! validation, failure modes, and the rendered chart corpus.

mod common;

use common::{code, regate, stderr, stdout};
use rstest::rstest;
use serde_json::Value as Json;

const BASIC: &[&str] = &[
    "check",
    "--no-bundled",
    "--policies",
    "testdata/bundles/basic",
];

fn check(extra: &[&str]) -> std::process::Output {
    let args: Vec<&str> = BASIC.iter().chain(extra.iter()).copied().collect();
    regate(&args, None)
}

fn json_report(extra: &[&str]) -> Json {
    let mut args = extra.to_vec();
    args.extend(["-f", "json"]);
    let out = check(&args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("json: {e}\n{}", stdout(&out)))
}

#[rstest]
#[case(&["testdata/manifests/clean.yaml"], 0)]
#[case(&["testdata/manifests/mixed.yaml"], 1)]
#[case(&["testdata/manifests/broken.yaml"], 2)]
#[case(&["testdata/manifests/nope.yaml"], 2)]
#[case(&["-f", "xml", "testdata/manifests/clean.yaml"], 2)]
#[case(&["--output", "junit", "testdata/manifests/clean.yaml"], 2)]
fn exit_codes(#[case] args: &[&str], #[case] expected: i32) {
    let out = check(args);
    assert_eq!(
        code(&out),
        expected,
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn findings_name_file_line_object_policy_action_and_field() {
    let report = json_report(&["testdata/manifests/mixed.yaml"]);
    let findings = report["findings"].as_array().unwrap();
    let deny: Vec<&Json> = findings.iter().filter(|f| f["action"] == "deny").collect();
    assert_eq!(deny.len(), 2, "{findings:#?}");
    // The Pod document's content starts at line 2 (line 1 is helm's `# Source:` comment).
    assert_eq!(deny[0]["location"]["file"], "testdata/manifests/mixed.yaml");
    assert_eq!(deny[0]["location"]["line"], 2);
    assert_eq!(deny[0]["object"]["kind"], "Pod");
    assert_eq!(deny[0]["object"]["namespace"], "default");
    assert_eq!(deny[0]["policy"], "no-latest");
    assert_eq!(deny[0]["field"], "spec.containers[0].image");
    assert_eq!(
        deny[0]["remediation"],
        "Use an explicit version tag or a digest."
    );
    assert_eq!(deny[0]["controls"][0], "CRA Annex I (1)(3)");
    assert_eq!(deny[1]["location"]["line"], 14);
    assert_eq!(deny[1]["object"]["namespace"], "shop");
    assert_eq!(deny[1]["field"], "spec.template.spec.containers[1].image");
    assert_eq!(report["objects"], 3);
}

#[test]
fn mutation_runs_before_validation_as_in_the_api_server() {
    // hygiene denies objects without the `checked-by` label; no-latest's patch adds it to Pods and
    // Deployments, so only the ConfigMap (not matched by no-latest) is reported.
    let report = json_report(&["testdata/manifests/mixed.yaml"]);
    let not_checked: Vec<&Json> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["message"] == "not checked")
        .collect();
    assert_eq!(not_checked.len(), 1);
    assert_eq!(not_checked[0]["object"]["kind"], "ConfigMap");
    // hygiene's enforcement is warn, so its deny rule is reported as a warning.
    assert_eq!(not_checked[0]["action"], "warn");
}

// ----- patches: what the mutating webhook would change -----

const MIXED_PATCHES: &[&str] = &[
    "testdata/manifests/mixed.yaml:2: PATCH no-latest: Pod/default/latest-pod: add /metadata/labels/checked-by = \"regate\"",
    "testdata/manifests/mixed.yaml:14: PATCH no-latest: Deployment/shop/web: add /metadata/labels = {}",
    "testdata/manifests/mixed.yaml:14: PATCH no-latest: Deployment/shop/web: add /metadata/labels/checked-by = \"regate\"",
];

#[test]
fn text_lists_each_patch_with_policy_op_and_pointer_after_the_findings() {
    let out = check(&["testdata/manifests/mixed.yaml"]);
    assert_eq!(code(&out), 1, "patches do not change the exit code");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.contains(": PATCH "))
        .unwrap_or_else(|| panic!("no PATCH line:\n{text}"));
    assert_eq!(&lines[first..first + 3], MIXED_PATCHES, "{text}");
    assert_eq!(lines[first - 1], "", "a blank line separates the sections");
    assert!(
        lines[..first].iter().all(|l| !l.contains("PATCH")),
        "{text}"
    );
    // The ConfigMap is not matched by no-latest: nothing is patched and nothing is claimed.
    assert!(!text.contains("PATCH no-latest: ConfigMap"), "{text}");
}

#[test]
fn patches_appear_in_json_sarif_junit_and_gitlab() {
    let report = json_report(&["testdata/manifests/mixed.yaml"]);
    assert_eq!(report["summary"]["patches"], 3);
    let patches = report["patches"].as_array().unwrap();
    let got: Vec<(u64, &str, &str, &str, &Json)> = patches
        .iter()
        .map(|p| {
            (
                p["location"]["line"].as_u64().unwrap(),
                p["policy"].as_str().unwrap(),
                p["op"].as_str().unwrap(),
                p["path"].as_str().unwrap(),
                &p["value"],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                2,
                "no-latest",
                "add",
                "/metadata/labels/checked-by",
                &Json::from("regate")
            ),
            (
                14,
                "no-latest",
                "add",
                "/metadata/labels",
                &serde_json::json!({})
            ),
            (
                14,
                "no-latest",
                "add",
                "/metadata/labels/checked-by",
                &Json::from("regate")
            ),
        ]
    );
    assert_eq!(patches[0]["title"], "No latest tag");
    assert_eq!(patches[1]["object"]["namespace"], "shop");

    let sarif: Json =
        serde_json::from_slice(&check(&["-f", "sarif", "testdata/manifests/mixed.yaml"]).stdout)
            .unwrap();
    let notes: Vec<&Json> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["properties"]["patch"].is_object())
        .collect();
    assert_eq!(notes.len(), 3);
    assert!(notes
        .iter()
        .all(|r| r["level"] == "note" && r["ruleId"] == "no-latest"));
    assert_eq!(
        notes[1]["message"]["text"],
        "Deployment/shop/web: mutating webhook would apply: add /metadata/labels = {}"
    );

    let gitlab: Json =
        serde_json::from_slice(&check(&["-f", "gitlab", "testdata/manifests/mixed.yaml"]).stdout)
            .unwrap();
    let info: Vec<&str> = gitlab
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["severity"] == "info")
        .map(|i| i["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        info,
        [
            "PATCH no-latest: Pod/default/latest-pod: add /metadata/labels/checked-by = \"regate\"",
            "PATCH no-latest: Deployment/shop/web: add /metadata/labels = {}",
            "PATCH no-latest: Deployment/shop/web: add /metadata/labels/checked-by = \"regate\"",
        ]
    );

    let junit = stdout(&check(&["-f", "junit", "testdata/manifests/mixed.yaml"]));
    let doc = roxmltree::Document::parse(&junit).expect("well-formed JUnit");
    let pod = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("testcase") && n.attribute("name") == Some("Pod/default/latest-pod")
        })
        .expect("pod testcase");
    let system_out = pod
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .and_then(|n| n.text())
        .unwrap_or_default();
    assert_eq!(
        system_out,
        "PATCH no-latest: add /metadata/labels/checked-by = \"regate\"\n"
    );
    // Failures still come from deny findings only.
    assert_eq!(doc.root_element().attribute("failures"), Some("2"));
}

#[test]
fn a_clean_object_that_is_patched_passes_and_says_so() {
    // no-latest's patch adds the checked-by label; hygiene is satisfied, nothing else fires.
    let input = b"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {owner: o}, annotations: {description: d}}\nspec: {containers: [{name: c, image: nginx:1.25}]}\n";
    let out = regate(&[BASIC, &["-"]].concat(), Some(input));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        "stdin:1: PATCH no-latest: Pod/default/p: add /metadata/labels/checked-by = \"regate\"\n\n\
         1 object checked: no violations, 1 patch (1 object) by the mutating webhook\n"
    );
    let out = regate(&[BASIC, &["-", "-f", "junit"]].concat(), Some(input));
    assert_eq!(code(&out), 0);
    let junit = stdout(&out);
    assert!(junit.contains(r#"failures="0" errors="0""#), "{junit}");
    assert!(
        junit.contains("<system-out>PATCH no-latest: add /metadata/labels/checked-by"),
        "{junit}"
    );
}

#[test]
fn bundled_defaults_are_reported_for_a_chart_without_resource_limits() {
    let out = regate(
        &[
            "check",
            "-n",
            "shop",
            "--config",
            "testdata/manifests/defaults/regate.yaml",
            "--inventory",
            "testdata/manifests/defaults/cluster.yaml",
            "testdata/manifests/defaults/chart.yaml",
        ],
        None,
    );
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    let prefix = "testdata/manifests/defaults/chart.yaml:5: PATCH resource-limits: Deployment/shop/web: add /spec/template/spec/containers/0/resources/";
    for want in [
        "limits/cpu = \"400m\"",
        "limits/memory = \"256Mi\"",
        "requests/cpu = \"100m\"",
        "requests/memory = \"128Mi\"",
    ] {
        assert!(
            text.contains(&format!("{prefix}{want}\n")),
            "{want}:\n{text}"
        );
    }
    assert!(
        text.trim_end().ends_with(
            "1 object checked: no violations, 8 patches (1 object) by the mutating webhook"
        ),
        "{text}"
    );
}

#[test]
fn broken_document_is_reported_and_the_others_are_still_checked() {
    let report = json_report(&[
        "testdata/manifests/broken.yaml",
        "testdata/manifests/mixed.yaml",
    ]);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0]["location"]["file"],
        "testdata/manifests/broken.yaml"
    );
    assert_eq!(errors[0]["location"]["line"], 9, "{errors:?}");
    // Two good documents of broken.yaml plus three of mixed.yaml.
    assert_eq!(report["objects"], 5);
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["policy"] == "no-latest"));
}

#[test]
fn text_report_is_the_default() {
    let out = check(&["testdata/manifests/mixed.yaml"]);
    let text = stdout(&out);
    assert!(text.contains(
        "testdata/manifests/mixed.yaml:2: DENY no-latest: Pod/default/latest-pod: container \"app\" uses the latest tag (spec.containers[0].image)"
    ));
    assert!(
        text.trim_end().ends_with(
            "3 objects checked: 2 denied (2 objects), 3 warnings, 0 dry-run, 0 input errors, 3 patches (2 objects) by the mutating webhook"
        ),
        "{text}"
    );
}

#[test]
fn several_formats_in_one_run_each_to_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let sarif = dir.path().join("report.sarif");
    let gitlab = dir.path().join("cq.json");
    let out = check(&[
        "testdata/manifests/mixed.yaml",
        "--output",
        &format!("junit={}", junit.display()),
        "--output",
        &format!("sarif={}", sarif.display()),
        "--output",
        &format!("gitlab={}", gitlab.display()),
    ]);
    assert_eq!(code(&out), 1);

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit");
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("2"));

    let sarif: Json = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    // 5 findings and 3 patch notes.
    assert_eq!(results.len(), 8);
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(
            loc["artifactLocation"]["uri"],
            "testdata/manifests/mixed.yaml"
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    let errors: Vec<&Json> = results.iter().filter(|r| r["level"] == "error").collect();
    assert_eq!(errors.len(), 2);

    let cq: Json = serde_json::from_str(&std::fs::read_to_string(&gitlab).unwrap()).unwrap();
    let fingerprints: Vec<&str> = cq
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints.len(), 8);
    let mut unique = fingerprints.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "fingerprints must be unique");
}

#[test]
fn gitlab_fingerprints_are_stable_across_runs() {
    let a = check(&["-f", "gitlab", "testdata/manifests/mixed.yaml"]);
    let b = check(&["-f", "gitlab", "testdata/manifests/mixed.yaml"]);
    assert_eq!(a.stdout, b.stdout);
}

#[rstest]
#[case("text")]
#[case("json")]
#[case("junit")]
#[case("sarif")]
#[case("gitlab")]
fn output_is_deterministic_and_independent_of_threads(#[case] format: &str) {
    let files = [
        "testdata/manifests/mixed.yaml",
        "testdata/manifests/broken.yaml",
        "testdata/manifests/clean.yaml",
    ];
    let mut one: Vec<&str> = vec!["-f", format, "--jobs", "1"];
    one.extend(files);
    let mut four: Vec<&str> = vec!["-f", format, "--jobs", "4"];
    four.extend(files);
    let a = check(&one);
    let b = check(&four);
    assert_eq!(stdout(&a), stdout(&b));
    assert!(!a.stdout.is_empty());
}

#[test]
fn reads_stdin() {
    let input = std::fs::read("testdata/manifests/mixed.yaml").unwrap();
    let out = regate(
        &[
            "check",
            "--no-bundled",
            "--policies",
            "testdata/bundles/basic",
            "-",
            "-f",
            "json",
        ],
        Some(&input),
    );
    assert_eq!(code(&out), 1);
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["location"]["file"], "-");
    assert_eq!(report["objects"], 3);
}

#[rstest]
#[case(b"" as &[u8])]
#[case(b"---\n---\n# only a comment\n")]
fn empty_input_checks_nothing_and_passes(#[case] input: &[u8]) {
    let out = regate(
        &[
            "check",
            "--no-bundled",
            "--policies",
            "testdata/bundles/basic",
            "-",
        ],
        Some(input),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("0 objects checked"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_json_is_reported_with_its_line() {
    let out = regate(
        &["check", "--no-bundled", "--policies", "testdata/bundles/basic", "-f", "json", "-"],
        Some(b"{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"x\"\n"),
    );
    assert_eq!(code(&out), 2);
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"].as_array().unwrap().len(), 1);
    assert_eq!(report["errors"][0]["location"]["file"], "-");
    assert!(report["errors"][0]["location"]["line"].as_u64().unwrap() >= 4);
}

#[test]
fn very_large_document_is_checked() {
    // A ConfigMap of about 12 MB: more than any API server accepts, still read and checked.
    let mut doc = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, labels: {owner: x}, annotations: {description: d}}\ndata:\n");
    for i in 0..200_000 {
        doc.push_str(&format!("  key{i}: \"{}\"\n", "v".repeat(40)));
    }
    doc.push_str("---\napiVersion: v1\nkind: Pod\nmetadata: {name: after}\nspec: {containers: [{name: c, image: \"x:latest\"}]}\n");
    let out = regate(
        &[
            "check",
            "--no-bundled",
            "--policies",
            "testdata/bundles/basic",
            "-f",
            "json",
            "-",
        ],
        Some(doc.as_bytes()),
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objects"], 2);
    let deny = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["action"] == "deny")
        .unwrap();
    assert_eq!(deny["location"]["line"], 200_006);
}

#[test]
fn policy_errors_fail_closed_in_strict_mode_and_follow_on_error() {
    let base = [
        "check",
        "--no-bundled",
        "--policies",
        "testdata/bundles/erroring",
        "-f",
        "json",
    ];
    // Default: builtin errors make the rule undefined, as in OPA and Gatekeeper.
    let lenient = regate(
        &[&base[..], &["testdata/manifests/clean.yaml"]].concat(),
        None,
    );
    assert_eq!(code(&lenient), 0, "{}", stdout(&lenient));
    let strict = regate(
        &[
            &base[..],
            &[
                "--config",
                "testdata/configs/strict.yaml",
                "testdata/manifests/clean.yaml",
            ],
        ]
        .concat(),
        None,
    );
    assert_eq!(code(&strict), 1, "{}", stderr(&strict));
    let report: Json = serde_json::from_slice(&strict.stdout).unwrap();
    let f = &report["findings"][0];
    assert_eq!(f["rule"], "error");
    assert_eq!(f["action"], "deny");
    assert!(
        f["message"].as_str().unwrap().starts_with("policy error: "),
        "{f}"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("could not parse string as number"),
        "{f}"
    );
    let warn = regate(
        &[
            &base[..],
            &[
                "--config",
                "testdata/configs/warn-on-error.yaml",
                "testdata/manifests/clean.yaml",
            ],
        ]
        .concat(),
        None,
    );
    assert_eq!(code(&warn), 0);
    let report: Json = serde_json::from_slice(&warn.stdout).unwrap();
    assert_eq!(report["findings"][0]["action"], "warn");
}

#[rstest]
#[case(false)]
#[case(true)]
fn runaway_policy_ends_in_a_policy_error_not_a_hang(#[case] interpreter: bool) {
    let mut args = vec![
        "check",
        "--no-bundled",
        "--policies",
        "testdata/bundles/slow",
        "-f",
        "json",
    ];
    if interpreter {
        args.push("--interpreter");
    }
    args.push("testdata/manifests/clean.yaml");
    let out = regate(&args, None);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    let f = &report["findings"][0];
    assert_eq!(f["policy"], "spin");
    assert_eq!(f["rule"], "error");
    let msg = f["message"].as_str().unwrap().to_lowercase();
    assert!(
        msg.contains("time limit") || msg.contains("instruction limit"),
        "{msg}"
    );
}

#[rstest]
#[case(
    "testdata/bundles/unknown-builtin",
    "testdata/bundles/unknown-builtin/bad/policy.rego:7:5: unknown function time.now_ns"
)]
#[case(
    "testdata/bundles/syntax-error",
    "testdata/bundles/syntax-error/bad/policy.rego:7:1:"
)]
fn bad_bundles_are_rejected_at_load_with_file_line_and_column(
    #[case] bundle: &str,
    #[case] needle: &str,
) {
    let out = regate(
        &[
            "check",
            "--no-bundled",
            "--policies",
            bundle,
            "testdata/manifests/clean.yaml",
        ],
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(needle), "{}", stderr(&out));
}

#[test]
fn interpreter_fallback_for_with_gives_the_same_decisions() {
    let args = [
        "check",
        "--no-bundled",
        "--policies",
        "testdata/bundles/with",
        "-f",
        "json",
        "testdata/manifests/mixed.yaml",
    ];
    let auto = regate(&args, None);
    let forced = regate(&[&args[..], &["--interpreter"]].concat(), None);
    assert_eq!(code(&auto), 1);
    assert_eq!(auto.stdout, forced.stdout);
}

#[test]
fn chart_corpus_is_checked_without_a_crash() {
    let Some(dir) = common::corpus("charts") else {
        return;
    };
    let mut files = common::files(&dir, "yaml");
    files.extend(common::files(&dir.join("extra"), "yaml"));
    let mut args: Vec<String> = vec!["check".into(), "-f".into(), "json".into()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = regate(&refs, None);
    // Every document is read as kubectl reads it: kube-prometheus-stack writes `logFormat` twice
    // into two specs, and the last value wins, as in kubectl. No input errors; violations exist.
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objects"], 3050);
    let errors = report["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn yaml_1_1_booleans_are_judged_as_kubectl_sends_them() {
    // kubectl (go-yaml v2) sends `privileged: yes` and `hostNetwork: on` as `true`; the
    // bundled pod-security policy must deny them, not see the strings "yes" and "on".
    let manifest = b"apiVersion: v1
kind: Pod
metadata:
  name: yes-means-true
spec:
  hostNetwork: on
  containers:
  - name: app
    image: harbor.example.eu/shop/app:1.4.2
    securityContext:
      privileged: yes
";
    let out = regate(
        &[
            "check",
            "-f",
            "json",
            "-n",
            "shop",
            "--config",
            "testdata/manifests/defaults/regate.yaml",
            "--inventory",
            "testdata/manifests/defaults/cluster.yaml",
            "-",
        ],
        Some(manifest),
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    let denied: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "deny" && f["policy"] == "pod-security")
        .filter_map(|f| f["field"].as_str())
        .collect();
    for field in [
        "spec.containers[0].securityContext.privileged",
        "spec.hostNetwork",
    ] {
        assert!(denied.contains(&field), "{field} not denied: {denied:?}");
    }
}
