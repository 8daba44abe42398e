//! The `gitlab` format: a GitLab Code Quality report (the CodeClimate subset GitLab reads).
//!
//! A pretty-printed JSON array, one issue per finding, per patch operation the mutating webhook would
//! apply, and per input error, in report order (findings, patches, errors):
//! `{"description", "check_name", "fingerprint", "severity", "location": {"path", "lines": {"begin"}}}`.
//!
//! - `description`: `ACTION policy: Kind/ns/name: message (field)`; patches:
//!   `PATCH policy: Kind/ns/name: op /path = value`; input errors: `input error: message`.
//! - `check_name`: the policy id; input errors: `regate/input-error`.
//! - `fingerprint`: 32 hex digits of SHA-256 over the file, the object, policy, rule, message and
//!   field, but not the line (see `Fingerprints` in the module root), so an issue keeps its identity when
//!   unrelated lines move; duplicates are disambiguated by occurrence, so it is unique per report.
//! - `severity` (GitLab knows info, minor, major, critical, blocker):
//!
//!   | action | policy severity | GitLab severity |
//!   | --- | --- | --- |
//!   | deny | critical | blocker |
//!   | deny | high | critical |
//!   | deny | medium | major |
//!   | deny | low, info | minor |
//!   | warn | any | minor |
//!   | dryrun | any | info |
//!   | patch | — | info |
//!   | input error | — | critical |
//!
//! - `location.path`: the file as given (`-` → `stdin`); `lines.begin`: the document's line.

use std::io::{self, Write};

use serde::Serialize;

use super::model::{Action, Finding, Location, Report, Severity};
use super::{display_path, Fingerprints};

/// The check name of input errors.
pub const INPUT_ERROR_CHECK: &str = "regate/input-error";

#[derive(Serialize)]
struct Issue<'a> {
    description: String,
    check_name: &'a str,
    fingerprint: &'a str,
    severity: &'static str,
    location: IssueLocation<'a>,
}

#[derive(Serialize)]
struct IssueLocation<'a> {
    path: &'a str,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: usize,
}

/// The GitLab Code Quality severity of a finding.
pub fn severity(action: Action, severity: Severity) -> &'static str {
    match (action, severity) {
        (Action::Deny, Severity::Critical) => "blocker",
        (Action::Deny, Severity::High) => "critical",
        (Action::Deny, Severity::Medium) => "major",
        (Action::Deny, Severity::Low | Severity::Info) => "minor",
        (Action::Warn, _) => "minor",
        (Action::Dryrun, _) => "info",
    }
}

/// The GitLab Code Quality severity of a patch operation.
pub const PATCH_SEVERITY: &str = "info";

/// The GitLab Code Quality severity of an input error.
pub const INPUT_ERROR_SEVERITY: &str = "critical";

fn location(l: &Location) -> IssueLocation<'_> {
    IssueLocation {
        path: display_path(&l.file),
        lines: Lines {
            begin: l.line.max(1),
        },
    }
}

fn description(f: &Finding) -> String {
    let mut d = format!(
        "{} {}: {}: {}",
        f.action.as_str().to_ascii_uppercase(),
        f.policy,
        f.object.display(),
        f.message
    );
    if let Some(field) = &f.field {
        d.push_str(&format!(" ({field})"));
    }
    d
}

/// Writes `report` as a GitLab Code Quality report.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let fingerprints = Fingerprints::of(report);
    let mut issues =
        Vec::with_capacity(report.findings.len() + report.patches.len() + report.errors.len());
    for (f, fingerprint) in report.findings.iter().zip(&fingerprints.findings) {
        issues.push(Issue {
            description: description(f),
            check_name: &f.policy,
            fingerprint,
            severity: severity(f.action, f.severity),
            location: location(&f.location),
        });
    }
    for (p, fingerprint) in report.patches.iter().zip(&fingerprints.patches) {
        issues.push(Issue {
            description: format!(
                "PATCH {}: {}: {}",
                p.policy,
                p.object.display(),
                p.describe()
            ),
            check_name: &p.policy,
            fingerprint,
            severity: PATCH_SEVERITY,
            location: location(&p.location),
        });
    }
    for (e, fingerprint) in report.errors.iter().zip(&fingerprints.errors) {
        issues.push(Issue {
            description: format!("input error: {}", e.message),
            check_name: INPUT_ERROR_CHECK,
            fingerprint,
            severity: INPUT_ERROR_SEVERITY,
            location: location(&e.location),
        });
    }
    serde_json::to_writer_pretty(&mut *out, &issues)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Format;
    use super::*;
    use rstest::rstest;
    use serde_json::{json, Value};

    fn issues(report: &Report) -> Vec<Value> {
        let out = render(report, Format::Gitlab);
        match serde_json::from_str(&out) {
            Ok(Value::Array(items)) => items,
            other => panic!("not a JSON array: {other:?}"),
        }
    }

    fn fingerprints(report: &Report) -> Vec<String> {
        issues(report)
            .iter()
            .map(|i| i["fingerprint"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn empty_report_is_an_empty_array() {
        assert_eq!(render(&empty(), Format::Gitlab), "[]\n");
    }

    #[test]
    fn mixed_report_issues() {
        let items = issues(&mixed());
        let got: Vec<(&str, &str, &str, u64)> = items
            .iter()
            .map(|i| {
                (
                    i["check_name"].as_str().unwrap_or_default(),
                    i["severity"].as_str().unwrap_or_default(),
                    i["location"]["path"].as_str().unwrap_or_default(),
                    i["location"]["lines"]["begin"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("labels", "info", "deploy/api.yaml", 1),
                ("pod-security", "critical", "deploy/api.yaml", 1),
                ("image-registry", "blocker", "deploy/web.yaml", 1),
                ("pod-security", "critical", "deploy/web.yaml", 1),
                ("resource-limits", "minor", "deploy/web.yaml", 1),
                ("labels", "minor", "namespaces.yaml", 1),
                (INPUT_ERROR_CHECK, "critical", "deploy/broken.yaml", 7),
            ]
        );
        let fp = items[3]["fingerprint"].as_str().unwrap_or_default();
        assert_eq!(fp.len(), 32);
        assert_eq!(
            items[3],
            json!({
                "description": "DENY pod-security: Deployment/team-a/web: container web runs as root (spec.template.spec.containers[0].securityContext)",
                "check_name": "pod-security",
                "fingerprint": fp,
                "severity": "critical",
                "location": {"path": "deploy/web.yaml", "lines": {"begin": 1}},
            })
        );
        assert_eq!(
            items[6]["description"],
            "input error: mapping values are not allowed here"
        );
    }

    #[test]
    fn patches_are_info_issues_between_findings_and_errors() {
        let items = issues(&patched());
        assert_eq!(items.len(), 11);
        let got: Vec<(&str, &str, &str, u64)> = items[6..10]
            .iter()
            .map(|i| {
                (
                    i["check_name"].as_str().unwrap_or_default(),
                    i["severity"].as_str().unwrap_or_default(),
                    i["description"].as_str().unwrap_or_default(),
                    i["location"]["lines"]["begin"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("resource-limits", "info", "PATCH resource-limits: Deployment/team-a/web: add /spec/template/spec/containers/0/resources/limits/cpu = \"400m\"", 1),
                ("resource-limits", "info", "PATCH resource-limits: Deployment/team-a/web: add /spec/template/spec/containers/0/resources/limits/memory = \"256Mi\"", 1),
                ("labels", "info", "PATCH labels: ConfigMap/team-a/settings: remove /metadata/annotations/old", 30),
                ("labels", "info", "PATCH labels: ConfigMap/team-a/settings: add /metadata/labels/team = \"team-a\"", 30),
            ]
        );
        assert_eq!(items[10]["check_name"], INPUT_ERROR_CHECK);
        // Findings keep their fingerprints when patches are added; all are unique.
        let before = fingerprints(&mixed());
        let after = fingerprints(&patched());
        assert_eq!(after[..6], before[..6]);
        assert_eq!(after[10], before[6]);
        let mut unique = after.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 11);
    }

    #[test]
    fn patch_fingerprints_ignore_the_line_but_not_the_value() {
        let base = fingerprints(&patches_only());
        let mut moved = patches_only();
        moved.patches[0].location.line = 40;
        assert_eq!(fingerprints(&moved), base);
        let mut other = patches_only();
        other.patches[0].value = Some("{}".into());
        assert_ne!(fingerprints(&other), base);
    }

    #[test]
    fn errors_only_report() {
        let items = issues(&errors_only());
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["check_name"], INPUT_ERROR_CHECK);
        // The report sorts `-` (stdin) before `bad.yaml`.
        assert_eq!(items[0]["location"]["path"], "stdin");
        assert_eq!(items[0]["location"]["lines"]["begin"], 1);
        assert_eq!(items[0]["severity"], "critical");
        assert_eq!(items[0]["description"], "input error: document has no kind");
        assert_eq!(items[1]["location"]["path"], "bad.yaml");
        assert_eq!(items[1]["location"]["lines"]["begin"], 3);
    }

    #[rstest]
    #[case(Action::Deny, Severity::Critical, "blocker")]
    #[case(Action::Deny, Severity::High, "critical")]
    #[case(Action::Deny, Severity::Medium, "major")]
    #[case(Action::Deny, Severity::Low, "minor")]
    #[case(Action::Deny, Severity::Info, "minor")]
    #[case(Action::Warn, Severity::Critical, "minor")]
    #[case(Action::Warn, Severity::Info, "minor")]
    #[case(Action::Dryrun, Severity::Critical, "info")]
    #[case(Action::Dryrun, Severity::Low, "info")]
    fn severity_mapping(#[case] action: Action, #[case] sev: Severity, #[case] want: &str) {
        assert_eq!(severity(action, sev), want);
        let mut f = finding(
            loc("a.yaml", 1),
            obj("Pod", None, "p"),
            "labels",
            action,
            "m",
        );
        f.severity = sev;
        let report = Report {
            objects: 1,
            findings: vec![f],
            ..Report::default()
        };
        assert_eq!(issues(&report)[0]["severity"], want);
    }

    #[test]
    fn fingerprints_are_stable_across_runs() {
        assert_eq!(fingerprints(&mixed()), fingerprints(&mixed()));
        assert_eq!(fingerprints(&errors_only()), fingerprints(&errors_only()));
    }

    #[test]
    fn fingerprint_unchanged_when_only_the_line_moves() {
        let before = fingerprints(&mixed());
        let mut moved = mixed();
        for f in &mut moved.findings {
            f.location.line += 12;
        }
        for e in &mut moved.errors {
            e.location.line += 3;
        }
        moved.sort();
        assert_eq!(fingerprints(&moved), before);
        assert_eq!(issues(&moved)[0]["location"]["lines"]["begin"], 13);
    }

    #[rstest]
    #[case::other_name("Pod", Some("ns"), "q", "a.yaml")]
    #[case::other_namespace("Pod", Some("other"), "p", "a.yaml")]
    #[case::cluster_scoped("Pod", None, "p", "a.yaml")]
    #[case::other_kind("Job", Some("ns"), "p", "a.yaml")]
    #[case::other_file("Pod", Some("ns"), "p", "b.yaml")]
    fn identical_looking_findings_at_different_objects_differ(
        #[case] kind: &str,
        #[case] namespace: Option<&str>,
        #[case] name: &str,
        #[case] file: &str,
    ) {
        let mut report = Report {
            objects: 2,
            findings: vec![
                finding(
                    loc("a.yaml", 1),
                    obj("Pod", Some("ns"), "p"),
                    "labels",
                    Action::Deny,
                    "missing label team",
                ),
                finding(
                    loc(file, 20),
                    obj(kind, namespace, name),
                    "labels",
                    Action::Deny,
                    "missing label team",
                ),
            ],
            ..Report::default()
        };
        report.sort();
        let fps = fingerprints(&report);
        assert_eq!(fps.len(), 2);
        assert_ne!(fps[0], fps[1]);
    }

    #[test]
    fn duplicate_findings_get_distinct_deterministic_fingerprints() {
        let f = finding(
            loc("a.yaml", 1),
            obj("Pod", Some("ns"), "p"),
            "labels",
            Action::Deny,
            "dup",
        );
        let single = Report {
            objects: 1,
            findings: vec![f.clone()],
            ..Report::default()
        };
        let triple = Report {
            objects: 1,
            findings: vec![f.clone(), f.clone(), f],
            ..Report::default()
        };
        let fps = fingerprints(&triple);
        assert_eq!(fps.len(), 3);
        assert_ne!(fps[0], fps[1]);
        assert_ne!(fps[1], fps[2]);
        assert_ne!(fps[0], fps[2]);
        // The first occurrence keeps the plain fingerprint; later ones are stable too.
        assert_eq!(fps[0], fingerprints(&single)[0]);
        assert_eq!(fps, fingerprints(&triple.clone()));
    }

    #[test]
    fn duplicate_input_errors_get_distinct_fingerprints() {
        let report = Report {
            errors: vec![
                error(loc("a.yaml", 1), "bad"),
                error(loc("a.yaml", 5), "bad"),
            ],
            ..Report::default()
        };
        let fps = fingerprints(&report);
        assert_eq!(fps.len(), 2);
        assert_ne!(fps[0], fps[1]);
    }
}
