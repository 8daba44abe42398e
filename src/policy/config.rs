//! `regate.yaml`: the bundle configuration (tenancy, registries, failure modes, limits, and per-policy
//! enforcement, match/exclude and parameters), read with file:line errors and merged across layers.
//!
//! Layers are merged in order (embedded defaults, each `--policies DIR`'s `regate.yaml`, then `--config FILE`):
//! mappings merge key by key, everything else (lists, scalars) is replaced by the later layer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use super::enforcement::Action;
use super::matcher::MatchSpec;

/// What happens when a policy cannot be evaluated (runtime error, timeout, instruction limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Deny the request with reason "policy error" (fail closed; the default).
    #[default]
    Deny,
    /// Admit with a warning naming the failed policy.
    Warn,
}

/// Bounds for one policy evaluation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget for one policy evaluation, in milliseconds (regorus execution timer and own deadline).
    #[serde(default = "Limits::default_policy_timeout_ms")]
    pub policy_timeout_ms: u64,
    /// Wall-clock budget for one whole request (all policies), in milliseconds.
    #[serde(default = "Limits::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Instruction limit for the compiled VM (regorus's default is 25,000).
    #[serde(default = "Limits::default_max_instructions")]
    pub max_instructions: usize,
    /// When true, an error raised by a builtin (`to_number("x")`, a type mismatch) fails the policy, which
    /// then follows `onError` (deny by default), and every policy runs on the interpreter (regorus's VM
    /// treats such errors as undefined). When false (the default), builtin errors make the expression
    /// undefined, as in OPA and Gatekeeper, on both evaluators alike.
    #[serde(default)]
    pub strict_builtin_errors: bool,
}

impl Limits {
    fn default_policy_timeout_ms() -> u64 {
        500
    }
    fn default_request_timeout_ms() -> u64 {
        2_000
    }
    fn default_max_instructions() -> usize {
        5_000_000
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            policy_timeout_ms: Self::default_policy_timeout_ms(),
            request_timeout_ms: Self::default_request_timeout_ms(),
            max_instructions: Self::default_max_instructions(),
            strict_builtin_errors: false,
        }
    }
}

/// Per-policy settings under `policies.<id>`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySettings {
    /// `false` removes the policy from evaluation.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Overrides the enforcement action from the policy's metadata.
    #[serde(default)]
    pub enforcement: Option<Action>,
    /// Replaces the policy's default match from its metadata.
    #[serde(default, rename = "match")]
    pub match_spec: Option<MatchSpec>,
    /// Added to the policy's exclusions (and the global system namespaces).
    #[serde(default)]
    pub exclude: Option<MatchSpec>,
    /// Available to the policy as `input.parameters`.
    #[serde(default)]
    pub parameters: Option<Json>,
    /// Overrides the global `onError` for this policy.
    #[serde(default)]
    pub on_error: Option<OnError>,
}

/// The typed view of a merged `regate.yaml`. Sections the engine does not interpret (`tenancy`,
/// `registries`, and anything under `settings`) reach Rego unchanged as `data.regate.config`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespaces exempt from every policy, matched by namespace name only (never by a label). A trailing
    /// `*` matches a prefix.
    #[serde(default)]
    pub system_namespaces: Vec<String>,
    #[serde(default)]
    pub on_error: OnError,
    /// Replaces every policy's enforcement from its metadata: the rollout switch (`enforcement: warn`
    /// admits everything and shows each finding as a warning). `policies.<id>.enforcement` still wins for
    /// that policy.
    #[serde(default)]
    pub enforcement: Option<Action>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub tenancy: Json,
    #[serde(default)]
    pub registries: Json,
    /// Cosign signature verification of images (keys, registry access, cache); also readable by
    /// policies as `data.regate.config.imageVerification`.
    #[serde(default)]
    pub image_verification: crate::images::config::ImageVerificationConfig,
    /// Free-form settings for custom policies.
    #[serde(default)]
    pub settings: Json,
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySettings>,
}

impl Config {
    /// The label that names a Namespace's tenant (`tenancy.labelKey`, default `regate.dev/tenant`).
    pub fn tenant_label_key(&self) -> &str {
        self.tenancy
            .get("labelKey")
            .and_then(Json::as_str)
            .unwrap_or("regate.dev/tenant")
    }
}

/// A `regate.yaml` layer that failed to read; `Display` names the file, line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },
}

/// Parses one layer: validates it against the typed schema (so errors carry a line) and returns the raw
/// JSON tree for merging.
pub fn parse_layer(file: &str, text: &str) -> Result<Json, ConfigError> {
    let located = |err: yaml_serde::Error| {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            message: err.to_string(),
        }
    };
    // Typed pass for errors with positions (unknown fields, wrong types).
    let _: Config = yaml_serde::from_str(text).map_err(located)?;
    let raw: Json = yaml_serde::from_str(text).map_err(located)?;
    let raw = match raw {
        Json::Null => Json::Object(Default::default()),
        Json::Object(_) => raw,
        _ => {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                line: 1,
                column: 1,
                message: "regate.yaml must be a mapping".to_string(),
            })
        }
    };
    // The typed pass reads scalars by the type it expects (an empty list item `- ` is the string ""),
    // the tree keeps YAML's own reading (`null`), and the configuration is built from the tree: check the
    // tree as [`finish`] will read it, so that a layer accepted here is never rejected there.
    finish(&raw, file)?;
    Ok(raw)
}

/// Merges `overlay` into `base`: mappings key by key, anything else replaced.
pub fn merge(base: &mut Json, overlay: Json) {
    match (base, overlay) {
        (Json::Object(base_map), Json::Object(overlay_map)) => {
            for (key, value) in overlay_map {
                match base_map.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base_map.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Turns the merged tree into the typed configuration. `origin` names the layers for the error message.
///
/// The tree is read with the YAML rules [`parse_layer`] checked each layer with, not serde_json's: YAML
/// reads an empty value (`limits:`, `policies:\n  my-policy:`) as an empty mapping or list where the
/// schema expects one, JSON reads `null` there as an error. Read as JSON, a layer that passed
/// `parse_layer` failed here with an error naming no line (found by fuzzing; `tests/fuzz_regressions.rs`).
pub fn finish(merged: &Json, origin: &str) -> Result<Config, ConfigError> {
    let invalid = |err: yaml_serde::Error| ConfigError::Unreadable {
        file: origin.to_string(),
        message: format!("merged configuration is invalid: {err}"),
    };
    yaml_serde::from_value(yaml_serde::to_value(merged).map_err(invalid)?).map_err(invalid)
}

/// The part of the configuration policies see as `data.regate.config` (everything but `policies`).
pub fn rego_view(merged: &Json) -> Json {
    let mut view = merged.clone();
    if let Json::Object(map) = &mut view {
        map.remove("policies");
        map.remove("apiVersion");
        map.remove("kind");
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_for_maps_and_replaces_lists() {
        let mut base = json!({"a": {"x": 1, "l": [1, 2]}, "b": 1});
        merge(&mut base, json!({"a": {"y": 2, "l": [3]}, "c": 3}));
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": 2, "l": [3]}, "b": 1, "c": 3})
        );
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let text =
            "systemNamespaces: [kube-system]\npolicies:\n  pod-security:\n    enforcment: warn\n";
        let err = parse_layer("regate.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("regate.yaml:4:"), "{err}");
        assert!(err.contains("enforcment"), "{err}");
    }

    #[test]
    fn enforcement_parses_and_rego_view_drops_policies() {
        let raw = parse_layer(
            "r.yaml",
            "tenancy: {labelKey: t}\npolicies:\n  x: {enforcement: dryrun}\n",
        )
        .unwrap();
        let cfg = finish(&raw, "r.yaml").unwrap();
        assert_eq!(cfg.policies["x"].enforcement, Some(Action::Dryrun));
        assert_eq!(rego_view(&raw), json!({"tenancy": {"labelKey": "t"}}));
    }

    #[test]
    fn empty_file_is_an_empty_layer() {
        assert_eq!(parse_layer("r.yaml", "").unwrap(), json!({}));
    }
}
