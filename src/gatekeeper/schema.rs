//! Checks a Constraint's `spec.parameters` against its template's `openAPIV3Schema`, as the API server
//! does when the Constraint is created (Gatekeeper turns the schema into the Constraint CRD's schema).
//!
//! What is checked: `type` (object, array, string, integer, number, boolean), `enum`, `required`,
//! `properties`, `items`, `additionalProperties` (a schema or `false`), `nullable`, `minimum`/`maximum`,
//! `minItems`/`maxItems`, `minLength`/`maxLength` and `pattern`-less string formats are left alone. Like
//! a structural CRD schema, fields the schema does not declare are pruned (dropped), unless the schema
//! says `x-kubernetes-preserve-unknown-fields: true` or gives `additionalProperties`; the template then
//! sees the same parameters it would see in a cluster.

use serde_json::{Map, Value as Json};

/// One way the parameters break the schema: the JSON path (`spec.parameters.labels[0]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What happens to fields the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Dropped, as a structural CRD schema drops them (templates.gatekeeper.sh/v1, and v1beta1 with
    /// `legacySchema: false`).
    Prune,
    /// Kept: Gatekeeper's `legacySchema` (the default of v1beta1 templates) marks the parameters
    /// `x-kubernetes-preserve-unknown-fields`.
    Keep,
}

/// Validates `value` against `schema`, dropping or keeping undeclared fields. `path` names `value` in
/// messages.
pub fn validate(
    value: &mut Json,
    schema: &Json,
    path: &str,
    unknown: Unknown,
) -> Vec<SchemaViolation> {
    let mut violations = Vec::new();
    check(value, schema, path, unknown, &mut violations);
    violations
}

/// [`validate`] with undeclared fields dropped.
pub fn validate_and_prune(value: &mut Json, schema: &Json, path: &str) -> Vec<SchemaViolation> {
    validate(value, schema, path, Unknown::Prune)
}

fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Json) -> bool {
    match (expected, value) {
        ("object", Json::Object(_)) | ("array", Json::Array(_)) | ("string", Json::String(_)) => {
            true
        }
        ("boolean", Json::Bool(_)) => true,
        ("number", Json::Number(_)) => true,
        // JSON has one number type; Kubernetes accepts 2.0 for an integer field.
        ("integer", Json::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn check(
    value: &mut Json,
    schema: &Json,
    path: &str,
    unknown: Unknown,
    out: &mut Vec<SchemaViolation>,
) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    let mut fail = |message: String| {
        out.push(SchemaViolation {
            path: path.to_string(),
            message,
        })
    };
    if value.is_null() {
        if schema.get("nullable").and_then(Json::as_bool) != Some(true)
            && schema.contains_key("type")
        {
            fail(format!(
                "must be {}, not null",
                schema["type"].as_str().unwrap_or("set")
            ));
        }
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Json::as_str) {
        if !type_matches(expected, value) {
            fail(format!("must be {expected}, not {}", type_name(value)));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Json::as_array) {
        if !allowed.contains(value) {
            let listed: Vec<String> = allowed.iter().map(Json::to_string).collect();
            fail(format!("must be one of {}, not {value}", listed.join(", ")));
        }
    }
    check_bounds(value, schema, &mut fail);
    match value {
        Json::Object(fields) => check_object(fields, schema, path, unknown, out),
        Json::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item, item_schema, &format!("{path}[{i}]"), unknown, out);
                }
            }
        }
        _ => {}
    }
}

fn check_bounds(value: &Json, schema: &Map<String, Json>, fail: &mut impl FnMut(String)) {
    let bound = |key: &str| schema.get(key).and_then(Json::as_f64);
    if let Some(n) = value.as_f64() {
        if let Some(min) = bound("minimum") {
            if n < min {
                fail(format!("must be at least {min}, not {n}"));
            }
        }
        if let Some(max) = bound("maximum") {
            if n > max {
                fail(format!("must be at most {max}, not {n}"));
            }
        }
    }
    let length = match value {
        Json::Array(items) => Some(("items", items.len(), "minItems", "maxItems")),
        Json::String(s) => Some(("characters", s.chars().count(), "minLength", "maxLength")),
        _ => None,
    };
    if let Some((unit, len, min_key, max_key)) = length {
        if let Some(min) = bound(min_key) {
            if (len as f64) < min {
                fail(format!("must have at least {min} {unit}, has {len}"));
            }
        }
        if let Some(max) = bound(max_key) {
            if (len as f64) > max {
                fail(format!("must have at most {max} {unit}, has {len}"));
            }
        }
    }
}

fn check_object(
    fields: &mut Map<String, Json>,
    schema: &Map<String, Json>,
    path: &str,
    unknown: Unknown,
    out: &mut Vec<SchemaViolation>,
) {
    let properties = schema.get("properties").and_then(Json::as_object);
    for required in schema
        .get("required")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        if !fields.contains_key(required) {
            out.push(SchemaViolation {
                path: format!("{path}.{required}"),
                message: "is required".into(),
            });
        }
    }
    let preserve = unknown == Unknown::Keep
        || schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Json::as_bool)
            == Some(true);
    let additional = schema.get("additionalProperties");
    let mut pruned = Vec::new();
    for (key, field) in fields.iter_mut() {
        let field_path = format!("{path}.{key}");
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(field_schema), _) => check(field, field_schema, &field_path, unknown, out),
            (None, Some(Json::Bool(false))) => out.push(SchemaViolation {
                path: field_path,
                message: "is not allowed (additionalProperties: false)".into(),
            }),
            (None, Some(additional @ Json::Object(_))) => {
                check(field, additional, &field_path, unknown, out)
            }
            (None, _) if preserve || properties.is_none() && schema.get("type").is_none() => {}
            (None, _) => pruned.push(key.clone()),
        }
    }
    for key in pruned {
        fields.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Json {
        json!({
            "type": "object",
            "properties": {
                "labels": {"type": "array", "items": {"type": "object", "required": ["key"],
                    "properties": {"key": {"type": "string"}, "allowedRegex": {"type": "string"}}}},
                "mode": {"type": "string", "enum": ["strict", "lax"]},
                "max": {"type": "integer", "minimum": 1},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        })
    }

    #[test]
    fn valid_parameters_pass_and_unknown_fields_are_pruned() {
        let mut params = json!({"labels": [{"key": "owner", "junk": 1}], "mode": "lax", "max": 2,
            "unknown": true, "extra": {"anything": [1]}});
        let violations = validate_and_prune(&mut params, &schema(), "spec.parameters");
        assert_eq!(violations, vec![]);
        assert_eq!(
            params,
            json!({"labels": [{"key": "owner"}], "mode": "lax", "max": 2, "extra": {"anything": [1]}})
        );
    }

    #[test]
    fn each_violation_names_its_path() {
        let mut params = json!({"labels": [{"allowedRegex": 3}], "mode": "other", "max": 0.5});
        let violations = validate_and_prune(&mut params, &schema(), "spec.parameters");
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "spec.parameters.labels[0].key: is required",
                "spec.parameters.labels[0].allowedRegex: must be string, not integer",
                "spec.parameters.max: must be integer, not number",
                "spec.parameters.mode: must be one of \"strict\", \"lax\", not \"other\"",
            ]
        );
    }

    #[test]
    fn a_legacy_schema_keeps_undeclared_fields_and_still_checks_declared_ones() {
        let mut params = json!({"mode": "lax", "undeclared": {"x": 1}, "max": "two"});
        let text: Vec<String> = validate(&mut params, &schema(), "p", Unknown::Keep)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(text, vec!["p.max: must be integer, not string"]);
        assert_eq!(params["undeclared"], json!({"x": 1}));
    }

    #[test]
    fn bounds_and_closed_objects() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 3},
                           "names": {"type": "array", "maxItems": 1, "items": {"type": "string", "minLength": 2}}}});
        let mut params = json!({"n": 4, "names": ["a", "bb"], "x": 1});
        let text: Vec<String> = validate_and_prune(&mut params, &schema, "p")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            vec![
                "p.n: must be at most 3, not 4",
                "p.names: must have at most 1 items, has 2",
                "p.names[0]: must have at least 2 characters, has 1",
                "p.x: is not allowed (additionalProperties: false)",
            ]
        );
    }
}
