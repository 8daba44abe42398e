//! The `sarif` format: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.
//!
//! One run whose `tool.driver` is `regate` with the tool version and one rule per policy that
//! fired, sorted by policy id (`id` = policy, `name` and `shortDescription` = title, `help.text` =
//! remediation when there is one, `properties.tags` = controls then severity), followed by the
//! rule `regate/input-error` when there are input errors.
//!
//! Each finding is a result with `ruleId`, `ruleIndex`, `level` (deny → `error`, warn →
//! `warning`, dry-run → `note`), `message.text` = `Kind/ns/name: message (field: path)`, a physical
//! location (`uri` = the file as given, percent-encoded where URI syntax needs it, `-` → `stdin`;
//! `region.startLine` = the document's line), a logical location naming the object, and
//! `partialFingerprints["regate/v1"]`, the same line-independent fingerprint as the GitLab
//! format. Each patch operation the mutating webhook would apply is a `note`-level result of its
//! policy's rule with `message.text` = `Kind/ns/name: mutating webhook would apply: op /path = value`
//! and `properties` `{"patch": {"op", "path", "value"}}` (a policy that only patches still gets a rule,
//! tagged `mutation`). Input errors are `error`-level results of `regate/input-error`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value as Json;

use super::model::{Action, Finding, Location, Patch, Report};
use super::{display_path, Fingerprints};

/// The rule id of input errors.
pub const INPUT_ERROR_RULE: &str = "regate/input-error";
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/regate/regate";
const FINGERPRINT_KEY: &str = "regate/v1";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
struct Run<'a> {
    tool: Tool<'a>,
    results: Vec<SarifResult>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    version: &'a str,
    information_uri: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<Text<'a>>,
    properties: RuleProperties<'a>,
}

#[derive(Serialize)]
struct RuleProperties<'a> {
    tags: Vec<&'a str>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: OwnedText,
    locations: [ResultLocation; 1],
    partial_fingerprints: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<ResultProperties>,
}

#[derive(Serialize)]
struct ResultProperties {
    patch: PatchProperty,
}

#[derive(Serialize)]
struct PatchProperty {
    op: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Json>,
}

#[derive(Serialize)]
struct OwnedText {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultLocation {
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logical_locations: Vec<LogicalLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation {
    fully_qualified_name: String,
    kind: &'static str,
}

/// SARIF `level` of a patch operation: informational.
pub const PATCH_LEVEL: &str = "note";

/// SARIF `level` of an action.
pub fn level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Warn => "warning",
        Action::Dryrun => "note",
    }
}

/// Writes `report` as SARIF 2.1.0; `tool_version` becomes `tool.driver.version`.
pub fn write(report: &Report, tool_version: &str, out: &mut dyn Write) -> io::Result<()> {
    let fingerprints = Fingerprints::of(report);

    // One rule per policy that fired or patched, sorted by id; the first finding of a policy gives
    // title, remediation and severity, controls are collected from all of its findings. A policy
    // that only patched takes its title from the patch and is tagged `mutation`.
    let mut by_policy: BTreeMap<&str, (Vec<&Finding>, Option<&Patch>)> = BTreeMap::new();
    for f in &report.findings {
        by_policy.entry(f.policy.as_str()).or_default().0.push(f);
    }
    for p in &report.patches {
        by_policy
            .entry(p.policy.as_str())
            .or_default()
            .1
            .get_or_insert(p);
    }
    let mut rules = Vec::with_capacity(by_policy.len() + 1);
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    for (policy, (findings, patch)) in &by_policy {
        let mut tags: Vec<&str> = Vec::new();
        for control in findings.iter().flat_map(|f| &f.controls) {
            if !tags.contains(&control.as_str()) {
                tags.push(control);
            }
        }
        let (title, help) = match (findings.first(), patch) {
            (Some(first), _) => {
                tags.push(first.severity.as_str());
                (first.title.as_str(), first.remediation.as_deref())
            }
            (None, Some(p)) => {
                tags.push("mutation");
                (p.title.as_str(), None)
            }
            (None, None) => continue,
        };
        let title = if title.is_empty() { policy } else { title };
        rule_index.insert(policy, rules.len());
        rules.push(Rule {
            id: policy,
            name: title,
            short_description: Text { text: title },
            help: help.map(|text| Text { text }),
            properties: RuleProperties { tags },
        });
    }
    let input_error_index = rules.len();
    if !report.errors.is_empty() {
        rules.push(Rule {
            id: INPUT_ERROR_RULE,
            name: "Input error",
            short_description: Text {
                text: "A document could not be read or evaluated",
            },
            help: Some(Text {
                text:
                    "Fix the document so it is valid YAML or JSON describing a Kubernetes object.",
            }),
            properties: RuleProperties { tags: vec![] },
        });
    }

    let mut results =
        Vec::with_capacity(report.findings.len() + report.patches.len() + report.errors.len());
    for (f, fingerprint) in report.findings.iter().zip(&fingerprints.findings) {
        let object = f.object.display();
        let text = match &f.field {
            Some(field) => format!("{object}: {} (field: {field})", f.message),
            None => format!("{object}: {}", f.message),
        };
        results.push(SarifResult {
            rule_id: f.policy.clone(),
            rule_index: rule_index.get(f.policy.as_str()).copied().unwrap_or(0),
            level: level(f.action),
            message: OwnedText { text },
            locations: [ResultLocation {
                physical_location: physical(&f.location),
                logical_locations: vec![LogicalLocation {
                    fully_qualified_name: object,
                    kind: "resource",
                }],
            }],
            partial_fingerprints: BTreeMap::from([(FINGERPRINT_KEY, fingerprint.clone())]),
            properties: None,
        });
    }
    for (p, fingerprint) in report.patches.iter().zip(&fingerprints.patches) {
        let object = p.object.display();
        results.push(SarifResult {
            rule_id: p.policy.clone(),
            rule_index: rule_index.get(p.policy.as_str()).copied().unwrap_or(0),
            level: PATCH_LEVEL,
            message: OwnedText {
                text: format!("{object}: mutating webhook would apply: {}", p.describe()),
            },
            locations: [ResultLocation {
                physical_location: physical(&p.location),
                logical_locations: vec![LogicalLocation {
                    fully_qualified_name: object,
                    kind: "resource",
                }],
            }],
            partial_fingerprints: BTreeMap::from([(FINGERPRINT_KEY, fingerprint.clone())]),
            properties: Some(ResultProperties {
                patch: PatchProperty {
                    op: p.op.clone(),
                    path: p.path.clone(),
                    value: p
                        .value
                        .as_deref()
                        .map(|v| serde_json::from_str(v).unwrap_or_else(|_| Json::from(v))),
                },
            }),
        });
    }
    for (e, fingerprint) in report.errors.iter().zip(&fingerprints.errors) {
        results.push(SarifResult {
            rule_id: INPUT_ERROR_RULE.to_string(),
            rule_index: input_error_index,
            level: "error",
            message: OwnedText {
                text: e.message.clone(),
            },
            locations: [ResultLocation {
                physical_location: physical(&e.location),
                logical_locations: vec![],
            }],
            partial_fingerprints: BTreeMap::from([(FINGERPRINT_KEY, fingerprint.clone())]),
            properties: None,
        });
    }

    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "regate",
                    version: tool_version,
                    information_uri: INFORMATION_URI,
                    rules,
                },
            },
            results,
        }],
    };
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn physical(location: &Location) -> PhysicalLocation {
    PhysicalLocation {
        artifact_location: ArtifactLocation {
            uri: uri(display_path(&location.file)),
        },
        // SARIF lines are 1-based; the model's are too, but never emit an invalid 0.
        region: Region {
            start_line: location.line.max(1),
        },
    }
}

/// A relative-reference URI for `path`: `\` becomes `/`, and every byte outside the unreserved
/// set, `/` and a few safe sub-delimiters is percent-encoded (so spaces, `%`, `#`, `?` and `:`
/// cannot change the URI's meaning).
fn uri(path: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'@' => out.push(char::from(b)),
            b'\\' => out.push('/'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Format;
    use super::*;
    use rstest::rstest;
    use serde_json::{json, Value};

    fn parse(report: &Report) -> Value {
        let out = render(report, Format::Sarif);
        serde_json::from_str(&out).expect("valid JSON")
    }

    fn results(v: &Value) -> &Vec<Value> {
        v["runs"][0]["results"].as_array().expect("results array")
    }

    fn rules(v: &Value) -> &Vec<Value> {
        v["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules array")
    }

    #[test]
    fn header_and_driver() {
        let v = parse(&empty());
        assert_eq!(v["$schema"], SCHEMA);
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(v["runs"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            v["runs"][0]["tool"]["driver"],
            json!({"name": "regate", "version": "1.2.3", "informationUri": INFORMATION_URI, "rules": []})
        );
        assert_eq!(v["runs"][0]["results"], json!([]));
    }

    #[rstest]
    #[case::empty(empty(), vec![], vec![])]
    #[case::mixed(mixed(), vec![
        ("labels", "note", "deploy/api.yaml", 1),
        ("pod-security", "error", "deploy/api.yaml", 1),
        ("image-registry", "error", "deploy/web.yaml", 1),
        ("pod-security", "error", "deploy/web.yaml", 1),
        ("resource-limits", "warning", "deploy/web.yaml", 1),
        ("labels", "warning", "namespaces.yaml", 1),
        (INPUT_ERROR_RULE, "error", "deploy/broken.yaml", 7),
    ], vec!["image-registry", "labels", "pod-security", "resource-limits", INPUT_ERROR_RULE])]
    #[case::errors_only(errors_only(), vec![
        (INPUT_ERROR_RULE, "error", "stdin", 1),
        (INPUT_ERROR_RULE, "error", "bad.yaml", 3),
    ], vec![INPUT_ERROR_RULE])]
    fn results_and_rules(
        #[case] report: Report,
        #[case] want: Vec<(&str, &str, &str, u64)>,
        #[case] want_rules: Vec<&str>,
    ) {
        let v = parse(&report);
        let got: Vec<(&str, &str, &str, u64)> = results(&v)
            .iter()
            .map(|r| {
                let phys = &r["locations"][0]["physicalLocation"];
                (
                    r["ruleId"].as_str().unwrap_or_default(),
                    r["level"].as_str().unwrap_or_default(),
                    phys["artifactLocation"]["uri"].as_str().unwrap_or_default(),
                    phys["region"]["startLine"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(got, want);

        let rule_ids: Vec<&str> = rules(&v)
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(rule_ids, want_rules);
        for r in results(&v) {
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules(&v)[index]["id"], r["ruleId"], "ruleIndex of {r}");
        }
    }

    #[test]
    fn patches_are_note_results_of_their_policy_rule() {
        let v = parse(&patched());
        let notes: Vec<&Value> = results(&v)
            .iter()
            .filter(|r| r["properties"]["patch"].is_object())
            .collect();
        assert_eq!(notes.len(), 4);
        for r in &notes {
            assert_eq!(r["level"], "note");
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules(&v)[index]["id"], r["ruleId"]);
        }
        assert_eq!(notes[0]["ruleId"], "resource-limits");
        assert_eq!(
            notes[0]["message"]["text"],
            "Deployment/team-a/web: mutating webhook would apply: add /spec/template/spec/containers/0/resources/limits/cpu = \"400m\""
        );
        assert_eq!(
            notes[0]["properties"]["patch"],
            json!({"op": "add", "path": "/spec/template/spec/containers/0/resources/limits/cpu", "value": "400m"})
        );
        assert_eq!(
            notes[2]["properties"]["patch"],
            json!({"op": "remove", "path": "/metadata/annotations/old"})
        );
        assert_eq!(
            notes[2]["locations"][0]["physicalLocation"]["region"]["startLine"],
            30
        );
        // Findings are not given properties.
        assert!(results(&v)[0].get("properties").is_none());
        // The input error stays last.
        assert_eq!(results(&v)[10]["ruleId"], INPUT_ERROR_RULE);
    }

    #[test]
    fn a_policy_that_only_patches_gets_a_rule_tagged_mutation() {
        let v = parse(&patches_only());
        assert_eq!(
            rules(&v),
            &vec![json!({
                "id": "resource-limits",
                "name": "Resource limits",
                "shortDescription": {"text": "Resource limits"},
                "properties": {"tags": ["mutation"]},
            })]
        );
        assert_eq!(results(&v)[0]["level"], "note");
        assert_eq!(results(&v)[0]["ruleIndex"], 0);
        assert_eq!(
            results(&v)[0]["properties"]["patch"]["value"]["limits"]["cpu"],
            "400m"
        );
        // In the mixed report resource-limits also warned: the rule keeps the finding's metadata.
        let v = parse(&patched());
        let rule = rules(&v)
            .iter()
            .find(|r| r["id"] == "resource-limits")
            .expect("rule");
        assert_eq!(rule["properties"]["tags"], json!(["medium"]));
        assert_eq!(rules(&v).len(), 5);
    }

    #[rstest]
    #[case(Action::Deny, "error")]
    #[case(Action::Warn, "warning")]
    #[case(Action::Dryrun, "note")]
    fn level_mapping(#[case] action: Action, #[case] want: &str) {
        assert_eq!(level(action), want);
    }

    #[test]
    fn rule_metadata() {
        let v = parse(&mixed());
        assert_eq!(
            rules(&v)[2],
            json!({
                "id": "pod-security",
                "name": "Pod security baseline",
                "shortDescription": {"text": "Pod security baseline"},
                "help": {"text": "Set securityContext.runAsNonRoot: true."},
                "properties": {"tags": ["NIS-2 Art. 21(2)", "CIS 5.2.6", "high"]},
            })
        );
        // No remediation: no help.
        assert_eq!(
            rules(&v)[1],
            json!({
                "id": "labels",
                "name": "Labels",
                "shortDescription": {"text": "Labels"},
                "properties": {"tags": ["low"]},
            })
        );
        assert_eq!(rules(&v)[4]["id"], INPUT_ERROR_RULE);
        assert_eq!(rules(&v)[4]["name"], "Input error");
    }

    #[test]
    fn result_message_names_object_and_field() {
        let v = parse(&mixed());
        let r = &results(&v)[3];
        assert_eq!(
            r["message"]["text"],
            "Deployment/team-a/web: container web runs as root (field: spec.template.spec.containers[0].securityContext)"
        );
        assert_eq!(
            r["locations"][0]["logicalLocations"],
            json!([{"fullyQualifiedName": "Deployment/team-a/web", "kind": "resource"}])
        );
        assert_eq!(
            results(&v)[5]["message"]["text"],
            "Namespace/team-a: missing label owner"
        );
        assert_eq!(
            results(&v)[6]["message"]["text"],
            "mapping values are not allowed here"
        );
    }

    #[test]
    fn partial_fingerprints_are_unique_and_match_gitlab() {
        let report = mixed();
        let v = parse(&report);
        let fps: Vec<&str> = results(&v)
            .iter()
            .map(|r| {
                r["partialFingerprints"]["regate/v1"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        let gitlab: Value =
            serde_json::from_str(&render(&report, Format::Gitlab)).expect("valid JSON");
        let gitlab_fps: Vec<&str> = gitlab
            .as_array()
            .expect("array")
            .iter()
            .map(|i| i["fingerprint"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(fps, gitlab_fps);
        let mut unique = fps.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 7);
    }

    #[rstest]
    #[case("deploy/web.yaml", "deploy/web.yaml")]
    #[case("-", "stdin")]
    #[case("my dir/a#b?.yaml", "my%20dir/a%23b%3F.yaml")]
    #[case("c:\\k8s\\x.yaml", "c%3A/k8s/x.yaml")]
    #[case("100%/ünï.yaml", "100%25/%C3%BCn%C3%AF.yaml")]
    fn uris(#[case] file: &str, #[case] want: &str) {
        assert_eq!(uri(display_path(file)), want);
        let mut report = empty();
        report.errors.push(error(loc(file, 0), "x"));
        let v = parse(&report);
        let phys = &results(&v)[0]["locations"][0]["physicalLocation"];
        assert_eq!(phys["artifactLocation"]["uri"], want);
        assert_eq!(phys["region"]["startLine"], 1);
    }
}
