//! The bundled policies decide in regate as they do in OPA: for every AdmissionReview of the shared
//! corpus and every object of the rendered chart corpus (as the review `regate check` synthesizes for
//! it), each bundled policy's `deny` and `warn` findings from regate's evaluator (the compiled VM, as
//! served) equal those of the pinned OPA release (`tests/opa`, built into `target/opa/opa` by
//! `bash tests/opa/build.sh`) on the same Rego (the bundle's modules as written), the same `input`
//! (`{"parameters": ..., "review": <the request>}`) and the same `data` (regate's data documents,
//! configuration view and inventory). Compared per request, policy and rule, as the sorted list of
//! (message, field) that regate reads from the rule's value; a policy is compared on the requests its
//! match selects (those regate evaluates it on).
//!
//! OPA runs once per corpus: every request, the policies' parameters and which policy applies to which
//! request go into `data`, and one generated module evaluates each policy's rules on each of its
//! requests `with input as` that request.
//!
//! The bundle's own Rego tests (`policies/**/*_test.rego`, 318 with `regate test`) also run under OPA
//! (`opa test policies`): all pass there except the two that pin OPA's number builtins
//! (docs/gatekeeper.md), which are listed here so that a new failure, or one of them passing, shows.
//!
//! Without the OPA binary the tests print why and pass, unless `REGATE_REQUIRE_TOOLS=1` (CI), where
//! they fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regate::admission::synthesize::{create_request, Requester};
use regate::admission::Review;
use regate::cluster::Inventory;
use regate::policy::bundle::FileKind;
use regate::policy::decision::read_messages;
use regate::policy::evaluate::to_value;
use regate::policy::{self, Evaluator, Extras, LoadOptions, Policy, RuleKind};
use serde_json::{json, Value as Json};

/// Where regate's policies' rules and OPA's answers meet in `data` and in the generated module.
const INPUTS_KEY: &str = "regate_differential_inputs";
const DIFFERENTIAL_PACKAGE: &str = "regate_differential";

/// The OPA binary `tests/opa/build.sh` builds: `<target dir>/opa/opa`.
fn opa_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regate"))
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("target"))
        .join("opa")
        .join("opa")
}

/// The OPA binary; None (the test passes) when it is missing, a failure under `REGATE_REQUIRE_TOOLS=1`.
fn opa() -> Option<PathBuf> {
    let path = opa_path();
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} is missing (build it with `bash tests/opa/build.sh`)",
        path.display()
    );
    if std::env::var("REGATE_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("OPA is required (REGATE_REQUIRE_TOOLS=1) but {why}");
    }
    eprintln!("skipping the OPA differential: {why} (set REGATE_REQUIRE_TOOLS=1 to fail instead)");
    None
}

/// One rule's findings for one request: (message, field), sorted.
type Findings = Vec<(String, Option<String>)>;

/// (request index, policy id, rule: "deny", "warn" or "error") → findings.
type Answers = BTreeMap<(usize, String, String), Findings>;

/// A policy's rules that the differential compares: ("deny" | "warn", rule path).
fn compared_rules(policy: &Policy) -> Vec<(&'static str, &str)> {
    [("deny", &policy.deny_rule), ("warn", &policy.warn_rule)]
        .into_iter()
        .filter_map(|(kind, rule)| rule.as_deref().map(|r| (kind, r)))
        .collect()
}

/// regate's findings for each request, and for each policy the requests it was evaluated on. The
/// requests from `object_only_from` on were synthesized for objects (as `regate check` does).
fn regate_answers(
    evaluator: &Evaluator,
    requests: &[(String, Json)],
    object_only_from: usize,
) -> (Answers, BTreeMap<String, Vec<usize>>) {
    let mut answers = Answers::new();
    let mut jobs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, request)) in requests.iter().enumerate() {
        let extras = Extras {
            object_only: i >= object_only_from,
            ..Extras::default()
        };
        let decision =
            evaluator.validate_with(request, extras, Instant::now() + Duration::from_secs(30));
        for id in &decision.evaluated {
            jobs.entry(id.clone()).or_default().push(i);
        }
        for result in decision.results {
            let kind = match result.rule {
                RuleKind::Deny => "deny",
                RuleKind::Warn => "warn",
                RuleKind::Error => "error",
            };
            answers
                .entry((i, result.policy, kind.to_string()))
                .or_default()
                .push((result.message, result.field));
        }
    }
    for findings in answers.values_mut() {
        findings.sort();
    }
    (answers, jobs)
}

/// The generated module: one `results` rule per compared policy rule, evaluating it on each of the
/// policy's requests with that request as `input`.
fn differential_module(policies: &[&Policy]) -> String {
    let mut module = format!("package {DIFFERENTIAL_PACKAGE}\n\nimport rego.v1\n");
    for policy in policies {
        let id = Json::from(policy.id.as_str());
        for (kind, rule) in compared_rules(policy) {
            write!(
                module,
                "\nresults contains [i, {id}, \"{kind}\", v] if {{\n\
                 \tsome i in data.{INPUTS_KEY}.jobs[{id}]\n\
                 \tv := {rule} with input as {{\"parameters\": data.{INPUTS_KEY}.parameters[{id}], \
                 \"review\": data.{INPUTS_KEY}.reviews[i]}}\n}}\n"
            )
            .expect("write to a string");
        }
    }
    module
}

/// OPA's findings: the bundle's modules as written, regate's `data` plus the requests, evaluated by
/// one `opa eval`.
fn opa_answers(
    opa: &Path,
    evaluator: &Evaluator,
    requests: &[(String, Json)],
    jobs: &BTreeMap<String, Vec<usize>>,
) -> Answers {
    let set = evaluator.policy_set();
    let dir = tempfile::tempdir().expect("temporary directory");
    for file in set.sources.of_kind(FileKind::Module) {
        let path = dir.path().join("bundle").join(&file.rel);
        std::fs::create_dir_all(path.parent().expect("a file's directory")).expect("mkdir");
        std::fs::write(&path, &file.text).expect("write module");
    }
    let policies: Vec<&Policy> = set
        .policies
        .iter()
        .filter(|p| jobs.contains_key(&p.id))
        .collect();
    std::fs::write(
        dir.path().join("bundle").join("differential.rego"),
        differential_module(&policies),
    )
    .expect("write the differential module");

    let mut data = serde_json::to_value(evaluator.data()).expect("data as JSON");
    let parameters: serde_json::Map<String, Json> = policies
        .iter()
        .map(|p| (p.id.clone(), p.parameters.clone()))
        .collect();
    let reviews: Vec<&Json> = requests.iter().map(|(_, r)| r).collect();
    data.as_object_mut().expect("data is an object").insert(
        INPUTS_KEY.into(),
        json!({"reviews": reviews, "parameters": parameters, "jobs": jobs}),
    );
    std::fs::write(
        dir.path().join("bundle").join("data.json"),
        serde_json::to_vec(&data).expect("data JSON"),
    )
    .expect("write data");

    let output = Command::new(opa)
        .args(["eval", "--format", "json", "--data"])
        .arg(dir.path().join("bundle"))
        .arg(format!("data.{DIFFERENTIAL_PACKAGE}.results"))
        .output()
        .expect("run opa");
    assert!(
        output.status.success(),
        "opa eval failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Json = serde_json::from_slice(&output.stdout).expect("opa's JSON output");
    let results = out["result"][0]["expressions"][0]["value"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no results in opa's output: {out}"));

    let titles: BTreeMap<&str, &str> = set
        .policies
        .iter()
        .map(|p| (p.id.as_str(), p.metadata.title.as_str()))
        .collect();
    let mut answers = Answers::new();
    for row in results {
        let (Some(i), Some(id), Some(kind)) = (row[0].as_u64(), row[1].as_str(), row[2].as_str())
        else {
            panic!("unexpected row from opa: {row}");
        };
        let findings = match read_messages(&to_value(&row[3]), titles[id]) {
            Ok(messages) => messages.into_iter().map(|m| (m.message, m.field)).collect(),
            Err(err) => vec![(format!("unreadable rule value: {err}"), None)],
        };
        let i = usize::try_from(i).expect("index");
        answers.insert((i, id.to_string(), kind.to_string()), findings);
    }
    for findings in answers.values_mut() {
        findings.sort();
    }
    answers.retain(|_, findings| !findings.is_empty());
    answers
}

/// Every (request, policy, rule) whose findings differ, described.
fn differences(requests: &[(String, Json)], regate: &Answers, opa: &Answers) -> Vec<String> {
    let keys: BTreeSet<&(usize, String, String)> = regate.keys().chain(opa.keys()).collect();
    let none = Findings::new();
    keys.into_iter()
        .filter_map(|key| {
            let (ours, theirs) = (
                regate.get(key).unwrap_or(&none),
                opa.get(key).unwrap_or(&none),
            );
            (ours != theirs).then(|| {
                let (i, id, kind) = key;
                format!(
                    "{} {id}.{kind}:\n    regate: {ours:?}\n    opa:    {theirs:?}",
                    requests[*i].0
                )
            })
        })
        .collect()
}

/// Runs both sides on `requests` (with `inventory` as `data.inventory`) and asserts they agree.
fn assert_decides_as_opa(
    opa: &Path,
    requests: &[(String, Json)],
    object_only_from: usize,
    inventory: &Inventory,
) {
    let set = policy::load(&LoadOptions::default()).expect("bundled policies load");
    let evaluator = Evaluator::new(Arc::new(set), inventory.to_json()).expect("evaluator");
    let started = Instant::now();
    let (regate, jobs) = regate_answers(&evaluator, requests, object_only_from);
    let regate_time = started.elapsed();
    let started = Instant::now();
    let opa_answers = opa_answers(opa, &evaluator, requests, &jobs);
    let evaluations: usize = jobs.values().map(Vec::len).sum();
    eprintln!(
        "{} requests, {evaluations} policy evaluations, {} findings: regate {regate_time:?}, opa {:?}",
        requests.len(),
        regate.values().map(Vec::len).sum::<usize>(),
        started.elapsed()
    );
    let differences = differences(requests, &regate, &opa_answers);
    assert!(
        differences.is_empty(),
        "{} differences between regate and OPA:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

#[test]
fn admission_corpus_decides_as_opa() {
    let Some(opa) = opa() else {
        return;
    };
    let Some(dir) = common::corpus("admission/reviews") else {
        return;
    };
    let requests: Vec<(String, Json)> = common::files(&dir, "json")
        .into_iter()
        .filter_map(|file| {
            let review = Review::parse(&std::fs::read(&file).expect("read")).ok()?;
            Some((file.display().to_string(), review.request))
        })
        .collect();
    assert_eq!(requests.len(), 188);
    assert_decides_as_opa(&opa, &requests, usize::MAX, &Inventory::new());
}

#[test]
fn chart_corpus_decides_as_opa() {
    let Some(opa) = opa() else {
        return;
    };
    let Some((read, inventory)) = common::chart_corpus() else {
        return;
    };
    let requester = Requester::default();
    let requests: Vec<(String, Json)> = read
        .documents
        .iter()
        .map(|doc| {
            (
                format!("{}:{}", doc.location.file, doc.location.line),
                create_request(&doc.object, "default", &requester),
            )
        })
        .collect();
    assert_eq!(requests.len(), 3050);
    assert_decides_as_opa(&opa, &requests, 0, &inventory);
}

/// The bundle's Rego tests that fail under OPA v1.22.4 and pass in regate, each pinning a difference
/// of docs/gatekeeper.md: `ceil` of a negative fraction (OPA: `ceil(-0.05)` is 1) and the precision of
/// big numbers after `/` and `ceil` (OPA: `bytes("1e99") != pow10(99)`).
const FAILING_UNDER_OPA: [&str; 2] = [
    "data.regate.lib.quantity_test.test_exponent_bound",
    "data.regate.lib.quantity_test.test_quantity_table_valid",
];

#[test]
fn bundle_rego_tests_pass_under_opa_but_the_number_builtin_pins() {
    let Some(opa) = opa() else {
        return;
    };
    let output = Command::new(opa)
        .args(["test", "--format", "json"])
        .arg(common::path("policies"))
        .output()
        .expect("run opa test");
    let results: Json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "opa test gave no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let results = results.as_array().expect("opa test results");
    let failing: BTreeSet<String> = results
        .iter()
        .filter(|r| r["fail"] == Json::Bool(true) || r.get("error").is_some())
        .map(|r| {
            format!(
                "{}.{}",
                r["package"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(results.len(), 318, "the bundle's Rego tests");
    assert_eq!(
        failing,
        FAILING_UNDER_OPA.iter().map(ToString::to_string).collect(),
        "Rego tests failing under OPA"
    );
}

/// One ConstraintTemplate of testdata/gatekeeper with the policies (constraints) made from it.
struct TemplateCase {
    dir: String,
    template: regate::gatekeeper::template::Template,
    /// The ids of its constraints' policies.
    policies: Vec<String>,
}

/// The templates and constraints of every example directory of testdata/gatekeeper (the failing suite
/// and the deliberately broken bundles left out), read as Gatekeeper reads them.
fn gatekeeper_examples() -> Vec<TemplateCase> {
    use regate::gatekeeper::{constraint, is_gatekeeper_object, template};
    let root = common::path("testdata/gatekeeper");
    let mut cases = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("testdata/gatekeeper")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("suite.yaml").is_file() && !p.ends_with("failing-suite"))
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut templates = Vec::new();
        let mut constraints = Vec::new();
        for file in std::fs::read_dir(&dir)
            .expect("a template directory")
            .flatten()
        {
            let path = file.path();
            if path.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            for doc in regate::manifest::decode_stream(&text) {
                let object =
                    serde_json::to_value(doc.value.expect("a decodable document")).unwrap();
                if !is_gatekeeper_object(&object) {
                    continue;
                }
                if object["kind"] == "ConstraintTemplate" {
                    templates.push(template::read_template(&object).expect("a valid template"));
                } else {
                    constraints
                        .push(constraint::read_constraint(&object).expect("a valid constraint"));
                }
            }
        }
        for template in templates {
            let policies = constraints
                .iter()
                .filter(|c| c.kind == template.kind)
                .map(|c| regate::gatekeeper::policy_id(&c.kind, &c.name, false))
                .collect();
            cases.push(TemplateCase {
                dir: dir.display().to_string(),
                template,
                policies,
            });
        }
    }
    cases
}

/// The review a Gatekeeper template sees for `request` (what regate's engine gives it, written here
/// from Gatekeeper's contract): on DELETE the old object is `object`; a namespaced object's Namespace
/// from the inventory is `namespaceObject`; for an object that came from no admission request
/// (`object_only`), the AdmissionRequest Gatekeeper's audit and gator encode for the object alone.
fn gatekeeper_review(request: &Json, inventory: &Json, object_only: bool) -> Json {
    let mut review = if object_only {
        // The AdmissionRequest Go encodes for an object alone (fields without omitempty stay).
        let mut review = json!({"uid": "", "kind": request["kind"], "operation": "",
            "resource": {"group": "", "version": "", "resource": ""}, "userInfo": {},
            "object": request["object"], "oldObject": null, "options": null});
        for key in ["name", "namespace"] {
            if request[key].as_str().is_some_and(|v| !v.is_empty()) {
                review[key] = request[key].clone();
            }
        }
        review
    } else {
        request.clone()
    };
    if request["operation"] == "DELETE" && !request["oldObject"].is_null() {
        review["object"] = request["oldObject"].clone();
    }
    if let Some(namespace) = request["namespace"]
        .as_str()
        .and_then(|ns| inventory.pointer(&format!("/cluster/v1/Namespace/{ns}")))
    {
        review["namespaceObject"] = namespace.clone();
    }
    review
}

/// OPA's findings for one template, written as Gatekeeper holds it (its own package and `data.lib`
/// libraries, Rego v0 unless `source.version: v1`): its `violation` set for each request its
/// constraints' policies were evaluated on by regate, with that constraint's parameters.
fn opa_template_answers(
    opa: &Path,
    case: &TemplateCase,
    set: &policy::PolicySet,
    requests: &[(String, Json)],
    inventory: &Json,
    object_only_from: usize,
    jobs: &BTreeMap<String, Vec<usize>>,
) -> Answers {
    let dir = tempfile::tempdir().expect("temporary directory");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).expect("mkdir");
    let rego = &case.template.rego;
    std::fs::write(bundle.join("template.rego"), &rego.main).expect("write the template");
    for (i, lib) in rego.libs.iter().enumerate() {
        std::fs::write(bundle.join(format!("lib{i}.rego")), lib).expect("write a library");
    }
    let package = rego
        .main
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .expect("a package line")
        .trim()
        .to_string();
    let mut module = format!("package {DIFFERENTIAL_PACKAGE}\n\nimport rego.v1\n");
    let mut parameters = serde_json::Map::new();
    let mut reviews = BTreeMap::new();
    for id in &case.policies {
        let Some(indices) = jobs.get(id) else {
            continue;
        };
        let policy = set
            .policies
            .iter()
            .find(|p| &p.id == id)
            .expect("the policy");
        parameters.insert(id.clone(), policy.parameters.clone());
        for &i in indices {
            reviews.insert(
                i.to_string(),
                gatekeeper_review(&requests[i].1, inventory, i >= object_only_from),
            );
        }
        let quoted = Json::from(id.as_str());
        write!(
            module,
            "\nresults contains [i, {quoted}, \"deny\", v] if {{\n\
             \tsome i in data.{INPUTS_KEY}.jobs[{quoted}]\n\
             \tv := data.{package}.violation with input as {{\"parameters\": data.{INPUTS_KEY}.parameters[{quoted}], \
             \"review\": data.{INPUTS_KEY}.reviews[sprintf(\"%d\", [i])]}}\n}}\n"
        )
        .expect("write to a string");
    }
    std::fs::write(bundle.join("differential.rego"), module).expect("write the module");
    let data = json!({
        "inventory": inventory,
        INPUTS_KEY: {"reviews": reviews, "parameters": parameters, "jobs": jobs},
    });
    std::fs::write(bundle.join("data.json"), serde_json::to_vec(&data).unwrap())
        .expect("write data");
    let mut command = Command::new(opa);
    command.args(["eval", "--format", "json"]);
    if !rego.v1 {
        command.arg("--v0-compatible");
    }
    let output = command
        .arg("--data")
        .arg(&bundle)
        .arg(format!("data.{DIFFERENTIAL_PACKAGE}.results"))
        .output()
        .expect("run opa");
    assert!(
        output.status.success(),
        "{}: opa eval failed ({}):\n{}{}",
        case.dir,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Json = serde_json::from_slice(&output.stdout).expect("opa's JSON output");
    let rows = out["result"][0]["expressions"][0]["value"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut answers = Answers::new();
    for row in rows {
        let (Some(i), Some(id)) = (row[0].as_u64(), row[1].as_str()) else {
            panic!("unexpected row from opa: {row}");
        };
        let findings = match read_messages(&to_value(&row[3]), "") {
            Ok(messages) => messages.into_iter().map(|m| (m.message, m.field)).collect(),
            Err(err) => vec![(format!("unreadable rule value: {err}"), None)],
        };
        let i = usize::try_from(i).expect("index");
        answers.insert((i, id.to_string(), "deny".to_string()), findings);
    }
    for findings in answers.values_mut() {
        findings.sort();
    }
    answers.retain(|_, findings| !findings.is_empty());
    answers
}

/// The example Gatekeeper templates decide in regate (rewritten into their own namespace, wrapped as
/// policies, matched by the engine, on the compiled VM) as the same templates do in OPA, as written,
/// on every corpus review and chart object their constraints match, with the chart objects as
/// inventory. regate reports `violation` messages untagged (the tag is added in the answer), so the
/// findings compare directly.
#[test]
fn gatekeeper_templates_decide_as_opa() {
    let Some(opa) = opa() else {
        return;
    };
    let Some((read, inventory)) = common::chart_corpus() else {
        return;
    };
    let Some(reviews_dir) = common::corpus("admission/reviews") else {
        return;
    };
    let requester = Requester::default();
    let mut requests: Vec<(String, Json)> = common::files(&reviews_dir, "json")
        .into_iter()
        .filter_map(|file| {
            let review = Review::parse(&std::fs::read(&file).expect("read")).ok()?;
            Some((file.display().to_string(), review.request))
        })
        .collect();
    let object_only_from = requests.len();
    requests.extend(read.documents.iter().map(|doc| {
        (
            format!("{}:{}", doc.location.file, doc.location.line),
            create_request(&doc.object, "default", &requester),
        )
    }));
    let inventory_json = inventory.to_json();
    let cases = gatekeeper_examples();
    assert!(cases.len() >= 12, "{} templates", cases.len());
    let mut problems = Vec::new();
    let mut evaluations = 0;
    let mut findings = 0;
    let mut dirs: Vec<&str> = cases.iter().map(|c| c.dir.as_str()).collect();
    dirs.dedup();
    for dir in dirs {
        let set = policy::load(&LoadOptions {
            embedded: false,
            policy_dirs: vec![PathBuf::from(dir)],
            ..LoadOptions::default()
        })
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
        let set = Arc::new(set);
        let evaluator = Evaluator::new(set.clone(), inventory_json.clone()).expect("evaluator");
        let (mut regate, jobs) = regate_answers(&evaluator, &requests, object_only_from);
        // Compared as OPA reports a violation: the message alone.
        for findings in regate.values_mut() {
            for finding in findings.iter_mut() {
                finding.1 = None;
            }
        }
        evaluations += jobs.values().map(Vec::len).sum::<usize>();
        findings += regate.values().map(Vec::len).sum::<usize>();
        for case in cases.iter().filter(|c| c.dir == dir) {
            let theirs = opa_template_answers(
                &opa,
                case,
                &set,
                &requests,
                &inventory_json,
                object_only_from,
                &jobs,
            );
            let ours: Answers = regate
                .iter()
                .filter(|((_, id, _), _)| case.policies.contains(id))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            problems.extend(differences(&requests, &ours, &theirs));
        }
    }
    eprintln!(
        "{} templates: {evaluations} constraint evaluations, {findings} findings",
        cases.len()
    );
    assert!(
        evaluations > 1000 && findings > 100,
        "{evaluations} evaluations, {findings} findings"
    );
    assert!(
        problems.is_empty(),
        "{} differences between regate and OPA:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
