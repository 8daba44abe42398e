//! The outcome of evaluating one request against a policy set: per-policy results after enforcement,
//! the mutation patch, and how the result values of `deny`/`warn` rules are read.

use regorus::Value;
use serde::Serialize;
use serde_json::Value as Json;

use super::enforcement::{Action, Severity};
use crate::admission::facts::Tree;

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
    /// For each operation of `patch`, at the same position, the index in the evaluator's
    /// `PolicySet::policies` of the policy whose `patch` rule produced it (reports name the policy).
    #[serde(skip)]
    pub patch_owners: Vec<usize>,
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
/// null, `false` and empty collections mean none. Anything else is an error (the caller fails closed).
/// The engine's value is read as it is, without converting it to JSON first.
pub fn read_messages(value: &Value, title: &str) -> Result<Vec<RawMessage>, String> {
    match value {
        Value::Undefined | Value::Null | Value::Bool(false) => Ok(Vec::new()),
        Value::Bool(true) => Ok(vec![RawMessage {
            message: title.to_string(),
            field: None,
        }]),
        Value::Array(items) => items.iter().map(read_item).collect(),
        Value::Set(items) => items.iter().map(read_item).collect(),
        Value::String(_) | Value::Object(_) => Ok(vec![read_item(value)?]),
        other => Err(format!(
            "rule value must be a set of messages, got {}",
            kind_of(other)
        )),
    }
}

fn read_item(item: &Value) -> Result<RawMessage, String> {
    match item {
        // `str::to_owned` copies in one piece; `to_string` on the shared string went through `Display`.
        Value::String(s) => Ok(RawMessage {
            message: (**s).to_owned(),
            field: None,
        }),
        Value::Object(_) => {
            // Violation objects have a few entries: a scan finds a key without allocating one.
            let entry = |key: &str| item.field(key);
            let message = entry("msg")
                .or_else(|| entry("message"))
                .and_then(|v| v.as_string().ok())
                .ok_or_else(|| {
                    format!(
                        "violation object has no string \"msg\": {}",
                        truncate(&serde_json::to_string(item).unwrap_or_default(), 200)
                    )
                })?;
            let field = entry("field")
                .or_else(|| entry("path"))
                .and_then(|v| v.as_string().ok())
                .map(|f| (**f).to_owned());
            Ok(RawMessage {
                message: (**message).to_owned(),
                field,
            })
        }
        other => Err(format!(
            "violation must be a string or an object with \"msg\", got {}",
            kind_of(other)
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Undefined => "undefined",
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) | Value::Set(_) => "an array",
        Value::Object(_) => "an object",
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
    use crate::policy::evaluate::to_value;
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
        assert_eq!(read_messages(&to_value(&value), "T").unwrap().len(), count);
    }

    #[rstest]
    #[case(json!(1))]
    #[case(json!([1]))]
    #[case(json!([{"nomsg": 1}]))]
    fn rejects_other_shapes(#[case] value: Json) {
        assert!(read_messages(&to_value(&value), "T").is_err());
    }

    #[test]
    fn field_and_path_are_both_read() {
        let got = read_messages(&to_value(&json!([{"msg": "m", "path": "spec.x"}])), "T").unwrap();
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

    fn obj(entries: Vec<(Value, Value)>) -> Value {
        Value::from(crate::engine_compat::object_from_entries(entries))
    }

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    fn msg(message: &str, field: Option<&str>) -> RawMessage {
        RawMessage {
            message: message.into(),
            field: field.map(Into::into),
        }
    }

    /// Values only the engine produces (sets, non-string keys, undefined) read as their JSON form was.
    #[rstest]
    #[case::undefined(Value::Undefined, Ok(vec![]))]
    #[case::set_in_sorted_order(
        Value::from(std::collections::BTreeSet::from([
            obj(vec![(s("msg"), s("b")), (s("field"), s("spec.b"))]),
            obj(vec![(s("msg"), s("a"))]),
            s("plain"),
        ])),
        // Objects order by their sorted entries: "field" < "msg", so the object with a field is first.
        Ok(vec![msg("plain", None), msg("b", Some("spec.b")), msg("a", None)])
    )]
    #[case::msg_before_message(
        obj(vec![(s("message"), s("second")), (s("msg"), s("first"))]),
        Ok(vec![msg("first", None)])
    )]
    #[case::non_string_field_is_no_field(
        obj(vec![(s("msg"), s("m")), (s("field"), Value::from(1)), (s("path"), s("p"))]),
        Ok(vec![msg("m", None)])
    )]
    #[case::path_when_field_is_absent(
        obj(vec![(s("message"), s("m")), (s("path"), s("p"))]),
        Ok(vec![msg("m", Some("p"))])
    )]
    #[case::non_string_keys_are_passed_over(
        obj(vec![(Value::from(1), s("x")), (s("msg"), s("m"))]),
        Ok(vec![msg("m", None)])
    )]
    #[case::non_string_msg(
        obj(vec![(s("msg"), Value::from(1))]),
        Err("violation object has no string \"msg\": {\"msg\":1}".to_string())
    )]
    #[case::set_in_a_set(
        Value::from(std::collections::BTreeSet::from([Value::new_set()])),
        Err("violation must be a string or an object with \"msg\", got an array".to_string())
    )]
    #[case::number(Value::from(2), Err("rule value must be a set of messages, got a number".to_string()))]
    fn reads_engine_values(#[case] value: Value, #[case] want: Result<Vec<RawMessage>, String>) {
        assert_eq!(read_messages(&value, "T"), want);
    }
}
