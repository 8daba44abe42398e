//! The `json` format: the stable machine-readable report.
//!
//! One pretty-printed object with a trailing newline, keys in this order:
//! `{"version", "objects", "summary": {"deny", "warn", "dryrun", "errors", "patches"}, "findings",
//! "patches", "errors"}`.
//! `findings`, `patches` and `errors` are the model's [`Finding`]s, [`Patch`]es and
//! [`InputError`]s exactly as serde serializes them (file `-` stays
//! `-`), in report order. Optional finding fields (`field`, `remediation`, `controls`) are left
//! out when empty. A patch is `{"location", "object", "policy", "title", "op", "path", "value"}`: one
//! JSON Patch operation the mutating webhook would apply before validation (`value` is the JSON value
//! written, left out for `remove`). `summary.patches` counts them; they never change the exit code.

use std::io::{self, Write};

use serde::Serialize;

use super::model::{Action, Finding, InputError, Patch, Report};

#[derive(Serialize)]
struct JsonReport<'a> {
    version: &'a str,
    objects: usize,
    summary: Summary,
    findings: &'a [Finding],
    patches: &'a [Patch],
    errors: &'a [InputError],
}

#[derive(Serialize)]
struct Summary {
    deny: usize,
    warn: usize,
    dryrun: usize,
    errors: usize,
    patches: usize,
}

/// Writes `report` as JSON; `tool_version` becomes the top-level `version`.
pub fn write(report: &Report, tool_version: &str, out: &mut dyn Write) -> io::Result<()> {
    let doc = JsonReport {
        version: tool_version,
        objects: report.objects,
        summary: Summary {
            deny: report.count(Action::Deny),
            warn: report.count(Action::Warn),
            dryrun: report.count(Action::Dryrun),
            errors: report.errors.len(),
            patches: report.patches.len(),
        },
        findings: &report.findings,
        patches: &report.patches,
        errors: &report.errors,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Format;
    use super::*;
    use rstest::rstest;
    use serde_json::{json, Value};

    fn parse(report: &Report) -> Value {
        let out = render(report, Format::Json);
        assert!(out.ends_with("}\n"));
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[rstest]
    #[case::empty(empty(), 0, [0, 0, 0, 0], 0)]
    #[case::mixed(mixed(), 4, [3, 2, 1, 1], 6)]
    #[case::errors_only(errors_only(), 0, [0, 0, 0, 2], 0)]
    fn header_and_summary(
        #[case] report: Report,
        #[case] objects: u64,
        #[case] summary: [u64; 4],
        #[case] findings: usize,
    ) {
        let v = parse(&report);
        assert_eq!(v["version"], "1.2.3");
        assert_eq!(v["objects"], objects);
        assert_eq!(
            v["summary"],
            json!({"deny": summary[0], "warn": summary[1], "dryrun": summary[2], "errors": summary[3], "patches": 0})
        );
        assert_eq!(v["findings"].as_array().map(Vec::len), Some(findings));
        assert_eq!(
            v["errors"].as_array().map(Vec::len),
            Some(summary[3] as usize)
        );
    }

    #[test]
    fn keys_are_in_documented_order() {
        let out = render(&empty(), Format::Json);
        assert_eq!(
            out,
            "{\n  \"version\": \"1.2.3\",\n  \"objects\": 0,\n  \"summary\": {\n    \"deny\": 0,\n    \"warn\": 0,\n    \"dryrun\": 0,\n    \"errors\": 0,\n    \"patches\": 0\n  },\n  \"findings\": [],\n  \"patches\": [],\n  \"errors\": []\n}\n"
        );
    }

    #[test]
    fn findings_and_errors_serialize_as_the_model() {
        let v = parse(&mixed());
        assert_eq!(
            v["findings"][3],
            json!({
                "location": {"file": "deploy/web.yaml", "line": 1},
                "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "team-a", "name": "web"},
                "policy": "pod-security",
                "title": "Pod security baseline",
                "severity": "high",
                "action": "deny",
                "rule": "deny",
                "message": "container web runs as root",
                "field": "spec.template.spec.containers[0].securityContext",
                "remediation": "Set securityContext.runAsNonRoot: true.",
                "controls": ["NIS-2 Art. 21(2)", "CIS 5.2.6"],
            })
        );
        // Cluster-scoped object, no field, no remediation, no controls: keys left out.
        assert_eq!(
            v["findings"][5],
            json!({
                "location": {"file": "namespaces.yaml", "line": 1},
                "object": {"apiVersion": "v1", "kind": "Namespace", "name": "team-a"},
                "policy": "labels",
                "title": "Labels",
                "severity": "low",
                "action": "warn",
                "rule": "warn",
                "message": "missing label owner",
            })
        );
        assert_eq!(
            v["errors"],
            json!([{"location": {"file": "deploy/broken.yaml", "line": 7}, "message": "mapping values are not allowed here"}])
        );
    }

    #[test]
    fn patches_are_listed_sorted_with_their_json_value_and_counted() {
        let v = parse(&patched());
        assert_eq!(v["summary"]["patches"], 4);
        assert_eq!(v["summary"]["deny"], 3, "patches are not findings");
        let patches = v["patches"].as_array().expect("patches array");
        let got: Vec<(&str, &str, &str)> = patches
            .iter()
            .map(|p| {
                (
                    p["policy"].as_str().unwrap_or_default(),
                    p["op"].as_str().unwrap_or_default(),
                    p["path"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "resource-limits",
                    "add",
                    "/spec/template/spec/containers/0/resources/limits/cpu"
                ),
                (
                    "resource-limits",
                    "add",
                    "/spec/template/spec/containers/0/resources/limits/memory"
                ),
                ("labels", "remove", "/metadata/annotations/old"),
                ("labels", "add", "/metadata/labels/team"),
            ]
        );
        assert_eq!(
            patches[0],
            json!({
                "location": {"file": "deploy/web.yaml", "line": 1},
                "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "team-a", "name": "web"},
                "policy": "resource-limits",
                "title": "Resource limits",
                "op": "add",
                "path": "/spec/template/spec/containers/0/resources/limits/cpu",
                "value": "400m",
            })
        );
        // `remove` has no value.
        assert!(patches[2].get("value").is_none(), "{}", patches[2]);
        // An object value stays an object, not JSON text in a string.
        let v = parse(&patches_only());
        assert_eq!(
            v["patches"][0]["value"],
            json!({"limits": {"cpu": "400m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}})
        );
        assert_eq!(v["patches"][0]["location"]["file"], "-");
        assert_eq!(v["summary"]["patches"], 1);
    }

    #[test]
    fn stdin_stays_dash_and_control_characters_round_trip() {
        let v = parse(&errors_only());
        assert_eq!(v["errors"][0]["location"]["file"], "-");
        let nasty = nasty();
        let v = parse(&nasty);
        assert_eq!(
            v["findings"][0]["message"],
            nasty.findings[0].message.as_str()
        );
        assert_eq!(v["errors"][0]["message"], "unexpected ]]> and \u{0}");
    }
}
