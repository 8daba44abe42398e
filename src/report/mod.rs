//! Report writers: turn one `regate check` run's [`Report`] into the formats humans and CI
//! systems read (`text`, `json`, `junit`, `sarif`, `gitlab`).
//!
//! This module owns the [`Format`] names, the [`write_report`] entry point, and the pieces the
//! formats share: the displayed path of a location (`-` is shown as `stdin`) and the stable,
//! line-independent finding fingerprints used by SARIF and GitLab Code Quality.
//! The findings model itself lives in [`model`]; each format lives in its own submodule.

pub mod gitlab;
pub mod json;
pub mod junit;
pub mod model;
pub mod sarif;
pub mod text;
pub(crate) mod xml;

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use model::{Finding, InputError, ObjectRef, Patch, Report};

/// An output format of `regate check --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per finding plus a summary, for terminals and CI logs.
    Text,
    /// Stable machine-readable JSON.
    Json,
    /// JUnit XML test report (GitLab, Jenkins).
    Junit,
    /// SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).
    Sarif,
    /// GitLab Code Quality (CodeClimate subset).
    Gitlab,
}

impl Format {
    /// Every format, in the order they are listed in help and error messages.
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Json,
        Format::Junit,
        Format::Sarif,
        Format::Gitlab,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Sarif => "sarif",
            Format::Gitlab => "gitlab",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `--format` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format `{given}`; valid formats: text, json, junit, sarif, gitlab")]
pub struct ParseFormatError {
    /// The name that was given.
    pub given: String,
}

impl FromStr for Format {
    type Err = ParseFormatError;

    /// Parses a format name; ASCII case is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseFormatError {
                given: s.to_string(),
            })
    }
}

/// Writes `report` (already sorted) in `format`. `tool_version` goes into SARIF's driver.version and JSON.
pub fn write_report(
    report: &Report,
    format: Format,
    tool_version: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    match format {
        Format::Text => text::write(report, &mut out)?,
        Format::Json => json::write(report, tool_version, &mut out)?,
        Format::Junit => junit::write(report, &mut out)?,
        Format::Sarif => sarif::write(report, tool_version, &mut out)?,
        Format::Gitlab => gitlab::write(report, &mut out)?,
    }
    out.flush()
}

/// The path shown for a location's file: as given, except `-` (stdin) becomes `stdin`.
pub(crate) fn display_path(file: &str) -> &str {
    if file == "-" {
        "stdin"
    } else {
        file
    }
}

/// Stable fingerprints for every finding, patch and input error of a report, in report order.
///
/// A fingerprint is the first 32 hex digits of a SHA-256 over length-prefixed stable fields:
/// for a finding the file, the object's kind, namespace and name, the policy, the rule, the
/// message and the field; for a patch the file, the object, the policy, the operation, the path and
/// the value; for an input error the file and the message. The line number is left
/// out so that a fingerprint survives unrelated edits that move a document. When two entries
/// hash alike (a duplicate finding), the 2nd, 3rd, ... occurrence is re-hashed with its
/// occurrence number, so fingerprints are unique within one report and deterministic for a
/// sorted report.
pub(crate) struct Fingerprints {
    pub findings: Vec<String>,
    pub patches: Vec<String>,
    pub errors: Vec<String>,
}

impl Fingerprints {
    pub(crate) fn of(report: &Report) -> Self {
        let mut seen = HashSet::new();
        let findings = report
            .findings
            .iter()
            .map(|f| unique(finding_digest(f), &mut seen))
            .collect();
        let patches = report
            .patches
            .iter()
            .map(|p| unique(patch_digest(p), &mut seen))
            .collect();
        let errors = report
            .errors
            .iter()
            .map(|e| unique(error_digest(e), &mut seen))
            .collect();
        Fingerprints {
            findings,
            patches,
            errors,
        }
    }
}

fn unique(base: Sha256, seen: &mut HashSet<String>) -> String {
    let first = hex32(base.clone().finalize().as_slice());
    if seen.insert(first.clone()) {
        return first;
    }
    let mut occurrence: u64 = 1;
    loop {
        let mut h = base.clone();
        h.update(b"occurrence");
        h.update(occurrence.to_le_bytes());
        let candidate = hex32(h.finalize().as_slice());
        if seen.insert(candidate.clone()) {
            return candidate;
        }
        occurrence += 1;
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn finding_digest(f: &Finding) -> Sha256 {
    let mut h = Sha256::new();
    field(&mut h, b"regate-finding-v1");
    field(&mut h, f.location.file.as_bytes());
    object_fields(&mut h, &f.object);
    field(&mut h, f.policy.as_bytes());
    field(&mut h, f.rule.as_bytes());
    field(&mut h, f.message.as_bytes());
    match &f.field {
        Some(path) => {
            h.update([1u8]);
            field(&mut h, path.as_bytes());
        }
        None => h.update([0u8]),
    }
    h
}

fn object_fields(h: &mut Sha256, object: &ObjectRef) {
    field(h, object.kind.as_bytes());
    match &object.namespace {
        Some(ns) => {
            h.update([1u8]);
            field(h, ns.as_bytes());
        }
        None => h.update([0u8]),
    }
    field(h, object.name.as_bytes());
}

fn patch_digest(p: &Patch) -> Sha256 {
    let mut h = Sha256::new();
    field(&mut h, b"regate-patch-v1");
    field(&mut h, p.location.file.as_bytes());
    object_fields(&mut h, &p.object);
    field(&mut h, p.policy.as_bytes());
    field(&mut h, p.op.as_bytes());
    field(&mut h, p.path.as_bytes());
    match &p.value {
        Some(value) => {
            h.update([1u8]);
            field(&mut h, value.as_bytes());
        }
        None => h.update([0u8]),
    }
    h
}

fn error_digest(e: &InputError) -> Sha256 {
    let mut h = Sha256::new();
    field(&mut h, b"regate-input-error-v1");
    field(&mut h, e.location.file.as_bytes());
    field(&mut h, e.message.as_bytes());
    h
}

fn hex32(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .take(16)
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// Shared fixtures for the format tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::model::{Action, Finding, InputError, Location, ObjectRef, Patch, Report, Severity};
    use super::{write_report, Format};

    pub fn loc(file: &str, line: usize) -> Location {
        Location {
            file: file.to_string(),
            line,
        }
    }

    pub fn obj(kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: if kind == "Deployment" {
                "apps/v1"
            } else {
                "v1"
            }
            .to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// A finding with the usual metadata for `policy`; adjust fields afterwards as needed.
    pub fn finding(
        location: Location,
        object: ObjectRef,
        policy: &str,
        action: Action,
        message: &str,
    ) -> Finding {
        let (title, severity, remediation, controls): (&str, Severity, Option<&str>, &[&str]) =
            match policy {
                "pod-security" => (
                    "Pod security baseline",
                    Severity::High,
                    Some("Set securityContext.runAsNonRoot: true."),
                    &["NIS-2 Art. 21(2)", "CIS 5.2.6"],
                ),
                "image-registry" => (
                    "Images from the approved registry",
                    Severity::Critical,
                    Some("Pull images from registry.example.com only."),
                    &[],
                ),
                "resource-limits" => (
                    "Resource limits",
                    Severity::Medium,
                    Some("Set resources.limits.cpu and resources.limits.memory."),
                    &[],
                ),
                _ => ("Labels", Severity::Low, None, &[]),
            };
        Finding {
            location,
            object,
            policy: policy.to_string(),
            title: title.to_string(),
            severity,
            action,
            rule: match action {
                Action::Deny => "deny",
                Action::Warn | Action::Dryrun => "warn",
            }
            .to_string(),
            message: message.to_string(),
            field: None,
            remediation: remediation.map(str::to_string),
            controls: controls.iter().map(|c| c.to_string()).collect(),
        }
    }

    pub fn patch(
        location: Location,
        object: ObjectRef,
        policy: &str,
        op: &str,
        path: &str,
        value: Option<&str>,
    ) -> Patch {
        Patch {
            location,
            object,
            policy: policy.to_string(),
            title: match policy {
                "resource-limits" => "Resource limits",
                "labels" => "Labels",
                _ => "",
            }
            .to_string(),
            op: op.to_string(),
            path: path.to_string(),
            value: value.map(str::to_string),
        }
    }

    /// [`mixed`] plus what the mutating webhook would do: `resource-limits` adds two limits to
    /// `web` (listed here out of order), `labels` adds a label to the clean `settings` ConfigMap and
    /// removes an annotation from it.
    pub fn patched() -> Report {
        let mut report = mixed();
        let web = obj("Deployment", Some("team-a"), "web");
        let cm = obj("ConfigMap", Some("team-a"), "settings");
        report.patches = vec![
            patch(
                loc("deploy/web.yaml", 30),
                cm.clone(),
                "labels",
                "remove",
                "/metadata/annotations/old",
                None,
            ),
            patch(
                loc("deploy/web.yaml", 1),
                web.clone(),
                "resource-limits",
                "add",
                "/spec/template/spec/containers/0/resources/limits/memory",
                Some("\"256Mi\""),
            ),
            patch(
                loc("deploy/web.yaml", 1),
                web,
                "resource-limits",
                "add",
                "/spec/template/spec/containers/0/resources/limits/cpu",
                Some("\"400m\""),
            ),
            patch(
                loc("deploy/web.yaml", 30),
                cm,
                "labels",
                "add",
                "/metadata/labels/team",
                Some("\"team-a\""),
            ),
        ];
        report.sort();
        report
    }

    /// Only patches: a clean run in which the mutating webhook fills in defaults.
    pub fn patches_only() -> Report {
        let pod = obj("Pod", Some("shop"), "api");
        let mut report = Report {
            objects: 1,
            checked: vec![(loc("-", 1), pod.clone())],
            patches: vec![patch(
                loc("-", 1),
                pod,
                "resource-limits",
                "add",
                "/spec/containers/0/resources",
                Some(
                    r#"{"limits":{"cpu":"400m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}"#,
                ),
            )],
            ..Report::default()
        };
        report.sort();
        report
    }

    pub fn error(location: Location, message: &str) -> InputError {
        InputError {
            location,
            message: message.to_string(),
        }
    }

    pub fn empty() -> Report {
        Report::default()
    }

    /// Four objects: `web` with two deny findings and a warning, `api` with a deny finding and a
    /// dry-run finding, a clean `ConfigMap`, and a cluster-scoped `Namespace` with a warning;
    /// plus one input error.
    pub fn mixed() -> Report {
        let web = obj("Deployment", Some("team-a"), "web");
        let api = obj("Deployment", Some("team-b"), "api");
        let cm = obj("ConfigMap", Some("team-a"), "settings");
        let ns = obj("Namespace", None, "team-a");
        let mut root = finding(
            loc("deploy/web.yaml", 1),
            web.clone(),
            "pod-security",
            Action::Deny,
            "container web runs as root",
        );
        root.field = Some("spec.template.spec.containers[0].securityContext".to_string());
        let mut report = Report {
            objects: 4,
            checked: vec![
                (loc("deploy/web.yaml", 1), web.clone()),
                (loc("deploy/web.yaml", 30), cm.clone()),
                (loc("deploy/api.yaml", 1), api.clone()),
                (loc("namespaces.yaml", 1), ns.clone()),
            ],
            findings: vec![
                root,
                finding(
                    loc("deploy/web.yaml", 1),
                    web.clone(),
                    "image-registry",
                    Action::Deny,
                    "image docker.io/nginx is not from registry.example.com",
                ),
                finding(
                    loc("deploy/web.yaml", 1),
                    web,
                    "resource-limits",
                    Action::Warn,
                    "container web has no memory limit",
                ),
                finding(
                    loc("deploy/api.yaml", 1),
                    api.clone(),
                    "pod-security",
                    Action::Deny,
                    "container api runs as root",
                ),
                finding(
                    loc("deploy/api.yaml", 1),
                    api,
                    "labels",
                    Action::Dryrun,
                    "missing label team",
                ),
                finding(
                    loc("namespaces.yaml", 1),
                    ns,
                    "labels",
                    Action::Warn,
                    "missing label owner",
                ),
            ],
            patches: vec![],
            errors: vec![error(
                loc("deploy/broken.yaml", 7),
                "mapping values are not allowed here",
            )],
        };
        report.sort();
        report
    }

    /// Only input errors, no objects; one from stdin.
    pub fn errors_only() -> Report {
        let mut report = Report {
            objects: 0,
            checked: vec![],
            findings: vec![],
            patches: vec![],
            errors: vec![
                error(loc("bad.yaml", 3), "did not find expected key"),
                error(loc("-", 1), "document has no kind"),
            ],
        };
        report.sort();
        report
    }

    /// Messages full of markup characters and control characters.
    pub fn nasty() -> Report {
        let o = obj("Pod", Some("a&b"), "x<y>");
        let mut f = finding(
            loc("we<ird>&\"file'.yaml", 2),
            o.clone(),
            "pod-security",
            Action::Deny,
            "bad <&>\"' value\u{1}\u{1b}[31m\r\nsecond line\u{fffe}",
        );
        f.field = Some("spec.containers[0].env[?(@.name==\"A&B\")]".to_string());
        let mut report = Report {
            objects: 1,
            checked: vec![(loc("we<ird>&\"file'.yaml", 2), o)],
            findings: vec![f],
            patches: vec![],
            errors: vec![error(loc("in]]>put.yaml", 1), "unexpected ]]> and \u{0}")],
        };
        report.sort();
        report
    }

    pub fn render(report: &Report, format: Format) -> String {
        let mut out = Vec::new();
        match write_report(report, format, "1.2.3", &mut out) {
            Ok(()) => {}
            Err(e) => panic!("writing {format} failed: {e}"),
        }
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => panic!("{format} output is not UTF-8: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("text", Format::Text)]
    #[case("json", Format::Json)]
    #[case("junit", Format::Junit)]
    #[case("sarif", Format::Sarif)]
    #[case("gitlab", Format::Gitlab)]
    #[case("SARIF", Format::Sarif)]
    fn format_parses(#[case] name: &str, #[case] want: Format) {
        assert_eq!(name.parse::<Format>(), Ok(want));
        assert_eq!(want.as_str(), name.to_ascii_lowercase());
        assert_eq!(want.to_string(), name.to_ascii_lowercase());
    }

    #[rstest]
    #[case("xml")]
    #[case("")]
    #[case("codeclimate")]
    fn unknown_format_lists_valid_names(#[case] name: &str) {
        let err = name.parse::<Format>().expect_err("must not parse");
        assert_eq!(err.given, name);
        assert_eq!(
            err.to_string(),
            format!(
                "unknown report format `{name}`; valid formats: text, json, junit, sarif, gitlab"
            )
        );
    }

    #[test]
    fn all_lists_every_format_once_and_round_trips() {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names, ["text", "json", "junit", "sarif", "gitlab"]);
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
    }

    #[rstest]
    fn output_is_deterministic(
        #[values(
            Format::Text,
            Format::Json,
            Format::Junit,
            Format::Sarif,
            Format::Gitlab
        )]
        format: Format,
        #[values(empty(), mixed(), errors_only(), nasty(), patched(), patches_only())]
        report: Report,
    ) {
        let first = render(&report, format);
        let second = render(&report.clone(), format);
        assert_eq!(first, second);
        assert!(
            first.ends_with('\n'),
            "{format} output lacks a final newline"
        );
    }

    #[test]
    fn stdin_is_displayed_as_stdin() {
        assert_eq!(display_path("-"), "stdin");
        assert_eq!(display_path("./-"), "./-");
        assert_eq!(display_path("a/b.yaml"), "a/b.yaml");
    }

    #[test]
    fn fingerprints_are_32_hex_digits_and_unique() {
        let report = mixed();
        let fp = Fingerprints::of(&report);
        assert_eq!(fp.findings.len(), 6);
        assert_eq!(fp.errors.len(), 1);
        let all: HashSet<&String> = fp.findings.iter().chain(&fp.errors).collect();
        assert_eq!(all.len(), 7);
        for f in all {
            assert_eq!(f.len(), 32);
            assert!(f
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn fingerprint_ignores_line_but_not_namespace_presence() {
        let mut a = mixed();
        let before = Fingerprints::of(&a);
        for f in &mut a.findings {
            f.location.line += 40;
        }
        for e in &mut a.errors {
            e.location.line += 40;
        }
        assert_eq!(Fingerprints::of(&a).findings, before.findings);
        assert_eq!(Fingerprints::of(&a).errors, before.errors);

        // `Kind/ns/name` with no namespace must not hash like an empty namespace.
        let mut cluster = mixed();
        let mut empty_ns = mixed();
        cluster.findings.truncate(1);
        empty_ns.findings.truncate(1);
        cluster.findings[0].object.namespace = None;
        empty_ns.findings[0].object.namespace = Some(String::new());
        assert_ne!(
            Fingerprints::of(&cluster).findings,
            Fingerprints::of(&empty_ns).findings
        );
    }
}
