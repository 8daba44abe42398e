//! The outcome of evaluating one request against a policy set: per-policy results after enforcement,
//! the mutation patch, and how the result values of `deny`/`warn` rules are read.

use serde::Serialize;
use serde_json::Value as Json;

use crate::report::model::{Action, Severity};

/// Which rule produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Deny,
    Warn,
    /// The policy failed to evaluate (error, timeout, bad result); enforced per `onError`.
    Error,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Deny => "deny",
            RuleKind::Warn => "warn",
            RuleKind::Error => "error",
        }
    }
}

/// One message from one policy, with the action the engine enforces for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    pub title: String,
    pub severity: Severity,
    pub action: Action,
    pub rule: RuleKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The decision for one request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decision {
    /// Results in policy order, then in the order the rule produced them (sorted set order).
    pub results: Vec<PolicyResult>,
    /// Normalised RFC 6902 operations (mutation only).
    pub patch: Vec<Json>,
    /// Policies that matched the request and were evaluated.
    pub evaluated: Vec<String>,
    /// Patch operations that could not be applied, reported but not sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patch_errors: Vec<String>,
    /// True when a policy failed after the request's deadline had passed: its result is an evaluation
    /// error that more time might have avoided (the server then evaluates the request again off its
    /// time slice, see `server::inline`).
    #[serde(skip)]
    pub deadline_exceeded: bool,
}

impl Decision {
    /// False when any result is enforced as `deny`.
    pub fn allowed(&self) -> bool {
        !self.results.iter().any(|r| r.action == Action::Deny)
    }

    /// Results enforced with `action`.
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &PolicyResult> {
        self.results.iter().filter(move |r| r.action == action)
    }
}

/// A message read from a `deny` or `warn` rule's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub message: String,
    pub field: Option<String>,
}

/// Reads a `deny`/`warn` value: a set or array of strings or of objects with `msg` (or `message`) and an
/// optional `field` (or `path`); `true` means one violation described by the policy title; undefined,
/// `false` and empty collections mean none. Anything else is an error (the caller fails closed).
pub fn read_messages(value: &Json, title: &str) -> Result<Vec<RawMessage>, String> {
    match value {
        Json::Null | Json::Bool(false) => Ok(Vec::new()),
        Json::Bool(true) => Ok(vec![RawMessage {
            message: title.to_string(),
            field: None,
        }]),
        Json::Array(items) => items.iter().map(read_item).collect(),
        Json::String(_) | Json::Object(_) => Ok(vec![read_item(value)?]),
        other => Err(format!(
            "rule value must be a set of messages, got {}",
            kind_of(other)
        )),
    }
}

fn read_item(item: &Json) -> Result<RawMessage, String> {
    match item {
        Json::String(s) => Ok(RawMessage {
            message: s.clone(),
            field: None,
        }),
        Json::Object(m) => {
            let message = m
                .get("msg")
                .or_else(|| m.get("message"))
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    format!(
                        "violation object has no string \"msg\": {}",
                        truncate(&item.to_string(), 200)
                    )
                })?;
            let field = m
                .get("field")
                .or_else(|| m.get("path"))
                .and_then(Json::as_str)
                .map(str::to_string);
            Ok(RawMessage {
                message: message.to_string(),
                field,
            })
        }
        other => Err(format!(
            "violation must be a string or an object with \"msg\", got {}",
            kind_of(other)
        )),
    }
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = '…';
    let budget = max.saturating_sub(ellipsis.len_utf8());
    let mut end = budget;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &text[..end], ellipsis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!(null), 0)]
    #[case(json!(false), 0)]
    #[case(json!([]), 0)]
    #[case(json!(true), 1)]
    #[case(json!(["a", "b"]), 2)]
    #[case(json!([{"msg": "a", "field": "spec"}]), 1)]
    #[case(json!({"message": "a"}), 1)]
    fn reads_valid_shapes(#[case] value: Json, #[case] count: usize) {
        assert_eq!(read_messages(&value, "T").unwrap().len(), count);
    }

    #[rstest]
    #[case(json!(1))]
    #[case(json!([1]))]
    #[case(json!([{"nomsg": 1}]))]
    fn rejects_other_shapes(#[case] value: Json) {
        assert!(read_messages(&value, "T").is_err());
    }

    #[test]
    fn field_and_path_are_both_read() {
        let got = read_messages(&json!([{"msg": "m", "path": "spec.x"}]), "T").unwrap();
        assert_eq!(got[0].field.as_deref(), Some("spec.x"));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "ééééé";
        let t = truncate(s, 6);
        assert!(t.len() <= 6, "{t}");
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }
}
