//! Policy metadata, written as OPA's `# METADATA` annotation above a policy's `package` line and parsed
//! here (regorus does not read annotations). OPA's own fields (`title`, `description`) keep their meaning;
//! regate's fields live under `custom:` so the same file still passes `opa check`.
//!
//! ```rego
//! # METADATA
//! # title: Pod security (restricted)
//! # description: Pods follow the Kubernetes "restricted" Pod Security Standard.
//! # custom:
//! #   severity: high
//! #   remediation: Set runAsNonRoot, drop ALL capabilities, ...
//! #   controls: ["NIS-2 Art. 21(2)(d)", "CRA Annex I (1)(3)"]
//! #   enforcement: deny
//! #   match:
//! #     kinds: [{apiGroups: ["", apps, batch], kinds: [Pod, Deployment]}]
//! package regate.policies.pod_security
//! ```

use serde::Deserialize;

use super::enforcement::{Action, Severity};
use super::matcher::MatchSpec;

/// What a policy says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyMetadata {
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub remediation: String,
    pub controls: Vec<String>,
    /// Default enforcement; `regate.yaml` may override it.
    pub enforcement: Action,
    /// Default match; `regate.yaml` may replace it.
    pub match_spec: MatchSpec,
    /// Default exclusions; `regate.yaml` may add to them.
    pub exclude: Option<MatchSpec>,
    /// The policy reads `data.inventory`; when cluster state cannot be read, the engine applies the
    /// failure mode instead of evaluating it.
    pub requires_inventory: bool,
    /// The policy is a Gatekeeper constraint (`crate::gatekeeper`): its `input.review` is shaped as
    /// Gatekeeper shapes it (`object` is the old object on DELETE; `namespaceObject` is the object's
    /// Namespace from cluster state).
    pub gatekeeper: bool,
    /// 1-based line of the `# METADATA` annotation, for messages.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotation {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    custom: Custom,
    // OPA fields regate accepts and ignores.
    #[serde(default)]
    authors: Option<serde_json::Value>,
    #[serde(default)]
    organizations: Option<serde_json::Value>,
    #[serde(default)]
    related_resources: Option<serde_json::Value>,
    #[serde(default)]
    schemas: Option<serde_json::Value>,
    #[serde(default)]
    entrypoint: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Custom {
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    remediation: Option<String>,
    #[serde(default)]
    controls: Vec<String>,
    #[serde(default)]
    enforcement: Option<Action>,
    #[serde(default, rename = "match")]
    match_spec: Option<MatchSpec>,
    #[serde(default)]
    exclude: Option<MatchSpec>,
    #[serde(default)]
    requires_inventory: bool,
    #[serde(default)]
    gatekeeper: bool,
}

/// A `# METADATA` block that could not be read; `Display` gives file:line:column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: invalid METADATA annotation: {message}")]
pub struct MetadataError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Finds the `# METADATA` block that directly precedes the `package` line of `source` and parses it.
/// Returns `Ok(None)` when the module has no package annotation.
pub fn parse_package_annotation(
    file: &str,
    source: &str,
) -> Result<Option<PolicyMetadata>, MetadataError> {
    let lines: Vec<&str> = source.lines().collect();
    let Some(package_idx) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("package ") || l.trim() == "package")
    else {
        return Ok(None);
    };
    // Walk up over the contiguous comment block above `package`.
    let mut start = package_idx;
    while start > 0 && lines[start - 1].trim_start().starts_with('#') {
        start -= 1;
    }
    let Some(marker) = (start..package_idx).find(|&i| lines[i].trim() == "# METADATA") else {
        return Ok(None);
    };
    let body: Vec<&str> = lines[marker + 1..package_idx]
        .iter()
        .map(|l| {
            let t = l.trim_start();
            let t = t.strip_prefix('#').unwrap_or(t);
            t.strip_prefix(' ').unwrap_or(t)
        })
        .collect();
    let yaml = body.join("\n");
    let first_body_line = marker + 2; // 1-based line of the first YAML line
    let annotation: Annotation = yaml_serde::from_str(&yaml).map_err(|err| {
        let (line, column) = err
            .location()
            .map(|l| (l.line() + first_body_line - 1, l.column() + 2))
            .unwrap_or((marker + 1, 1));
        MetadataError {
            file: file.to_string(),
            line,
            column,
            message: err.to_string(),
        }
    })?;
    if let Some(scope) = &annotation.scope {
        if scope != "package" {
            return Err(MetadataError {
                file: file.to_string(),
                line: marker + 1,
                column: 1,
                message: format!(
                    "scope {scope:?}: the annotation above `package` must have scope package"
                ),
            });
        }
    }
    let _ = (
        &annotation.authors,
        &annotation.organizations,
        &annotation.related_resources,
        &annotation.schemas,
        &annotation.entrypoint,
    );
    let custom = annotation.custom;
    Ok(Some(PolicyMetadata {
        title: annotation.title.unwrap_or_default(),
        description: annotation.description.unwrap_or_default(),
        severity: custom.severity.unwrap_or_default(),
        remediation: custom.remediation.unwrap_or_default(),
        controls: custom.controls,
        enforcement: custom.enforcement.unwrap_or(Action::Deny),
        match_spec: custom.match_spec.unwrap_or_default(),
        exclude: custom.exclude,
        requires_inventory: custom.requires_inventory,
        gatekeeper: custom.gatekeeper,
        line: marker + 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "# Copyright\n\n# METADATA\n# title: No root\n# description: >-\n#   Containers run as non-root.\n# custom:\n#   severity: high\n#   controls: [\"NIS-2 Art. 21(2)\"]\n#   enforcement: warn\n#   match:\n#     operations: [CREATE]\npackage regate.policies.no_root\n";

    #[test]
    fn reads_opa_fields_and_custom_section() {
        let md = parse_package_annotation("p.rego", SOURCE).unwrap().unwrap();
        assert_eq!(md.title, "No root");
        assert_eq!(md.description, "Containers run as non-root.");
        assert_eq!(md.severity, Severity::High);
        assert_eq!(md.enforcement, Action::Warn);
        assert_eq!(md.controls, vec!["NIS-2 Art. 21(2)"]);
        assert_eq!(md.match_spec.operations, vec!["CREATE"]);
        assert_eq!(md.line, 3);
    }

    #[test]
    fn no_annotation_is_none() {
        assert_eq!(
            parse_package_annotation("p.rego", "package a\nx := 1\n").unwrap(),
            None
        );
    }

    #[test]
    fn errors_point_into_the_comment_block() {
        let src = "# METADATA\n# title: x\n# custom:\n#   severty: high\npackage a\n";
        let err = parse_package_annotation("p.rego", src).unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        assert!(err.to_string().starts_with("p.rego:4:"), "{err}");
        assert!(err.message.contains("severty"), "{err}");
    }

    #[test]
    fn rule_scope_above_package_is_rejected() {
        let src = "# METADATA\n# scope: rule\npackage a\n";
        assert!(parse_package_annotation("p.rego", src).is_err());
    }
}
