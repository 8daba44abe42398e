//! RFC 6902 JSON Patch as policies emit it: validated, applied to a copy of the object, missing parent
//! objects created with explicit `add` operations, no-op operations dropped (so mutation is idempotent),
//! and the result encoded for the AdmissionReview response.

use base64::Engine as _;
use serde_json::{Map, Value as Json};

/// Why one patch operation could not be used; `Display` names the operation and path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("patch operation is not an object with string \"op\" and \"path\": {0}")]
    Malformed(String),
    #[error("patch op {0:?} is not supported (use add, remove, replace or test)")]
    UnsupportedOp(String),
    #[error("patch path {0:?} is not a JSON pointer (must start with '/')")]
    BadPointer(String),
    #[error("patch {op} {path}: {reason}")]
    Inapplicable {
        op: String,
        path: String,
        reason: String,
    },
}

/// Splits a JSON pointer into unescaped tokens (`~1` is `/`, `~0` is `~`).
pub fn parse_pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| PatchError::BadPointer(path.to_string()))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Escapes one token for a JSON pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn pointer_of(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", escape_token(t)))
        .collect()
}

fn inapplicable(op: &str, path: &str, reason: impl Into<String>) -> PatchError {
    PatchError::Inapplicable {
        op: op.to_string(),
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The result of normalising a policy's patch against an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// Operations to send, valid RFC 6902 against the original object, in order.
    pub ops: Vec<Json>,
    /// The object after applying them.
    pub patched: Json,
}

/// Applies `ops` in order to a copy of `object`. `add` creates missing parent objects (emitting the extra
/// `add` operations), operations that would change nothing are dropped, and an operation that cannot apply
/// is an error (the caller reports it and keeps the rest).
pub fn normalize(object: &Json, ops: &[Json]) -> (Normalized, Vec<PatchError>) {
    let mut patched = object.clone();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for op in ops {
        match apply_one(&mut patched, op) {
            Ok(mut emitted) => out.append(&mut emitted),
            Err(err) => errors.push(err),
        }
    }
    (Normalized { ops: out, patched }, errors)
}

fn apply_one(doc: &mut Json, op: &Json) -> Result<Vec<Json>, PatchError> {
    let (Some(kind), Some(path)) = (
        op.get("op").and_then(Json::as_str),
        op.get("path").and_then(Json::as_str),
    ) else {
        return Err(PatchError::Malformed(op.to_string()));
    };
    let tokens = parse_pointer(path)?;
    match kind {
        "add" | "replace" => {
            let value = op
                .get("value")
                .cloned()
                .ok_or_else(|| inapplicable(kind, path, "missing \"value\""))?;
            if kind == "add" {
                add(doc, &tokens, path, value)
            } else {
                replace(doc, &tokens, path, value)
            }
        }
        "remove" => remove(doc, &tokens, path),
        "test" => {
            let value = op
                .get("value")
                .ok_or_else(|| inapplicable(kind, path, "missing \"value\""))?;
            match lookup(doc, &tokens) {
                Some(found) if found == value => Ok(vec![op.clone()]),
                _ => Err(inapplicable(kind, path, "test failed")),
            }
        }
        other => Err(PatchError::UnsupportedOp(other.to_string())),
    }
}

fn lookup<'a>(doc: &'a Json, tokens: &[String]) -> Option<&'a Json> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Json::Object(m) => m.get(t)?,
            Json::Array(a) => a.get(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn lookup_mut<'a>(doc: &'a mut Json, tokens: &[String]) -> Option<&'a mut Json> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Json::Object(m) => m.get_mut(t)?,
            Json::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn op_json(op: &str, tokens: &[String], value: Option<Json>) -> Json {
    let mut m = Map::new();
    m.insert("op".into(), Json::String(op.into()));
    m.insert("path".into(), Json::String(pointer_of(tokens)));
    if let Some(v) = value {
        m.insert("value".into(), v);
    }
    Json::Object(m)
}

fn add(
    doc: &mut Json,
    tokens: &[String],
    path: &str,
    value: Json,
) -> Result<Vec<Json>, PatchError> {
    let Some((last, parents)) = tokens.split_last() else {
        return Err(inapplicable(
            "add",
            path,
            "replacing the whole object is not allowed",
        ));
    };
    let mut emitted = Vec::new();
    // Create missing parent objects, one explicit op each, so the patch applies on the original object.
    for depth in 0..parents.len() {
        let parent_path = &parents[..depth];
        let token = &parents[depth];
        let parent = lookup_mut(doc, parent_path)
            .ok_or_else(|| inapplicable("add", path, "parent is missing"))?;
        match parent {
            Json::Object(m) => {
                let missing = matches!(m.get(token), None | Some(Json::Null));
                if missing {
                    m.insert(token.clone(), Json::Object(Map::new()));
                    emitted.push(op_json(
                        "add",
                        &parents[..=depth],
                        Some(Json::Object(Map::new())),
                    ));
                }
            }
            Json::Array(a) => {
                let ok = token.parse::<usize>().map(|i| i < a.len()).unwrap_or(false);
                if !ok {
                    return Err(inapplicable(
                        "add",
                        path,
                        format!("array index {token:?} out of range"),
                    ));
                }
            }
            _ => {
                return Err(inapplicable(
                    "add",
                    path,
                    "parent is not an object or array",
                ))
            }
        }
    }
    let parent =
        lookup_mut(doc, parents).ok_or_else(|| inapplicable("add", path, "parent is missing"))?;
    match parent {
        Json::Object(m) => {
            if m.get(last) == Some(&value) {
                return Ok(emitted);
            }
            m.insert(last.clone(), value.clone());
        }
        Json::Array(a) => {
            let index = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| {
                        inapplicable("add", path, format!("array index {last:?} out of range"))
                    })?
            };
            a.insert(index, value.clone());
        }
        _ => {
            return Err(inapplicable(
                "add",
                path,
                "parent is not an object or array",
            ))
        }
    }
    emitted.push(op_json("add", tokens, Some(value)));
    Ok(emitted)
}

fn replace(
    doc: &mut Json,
    tokens: &[String],
    path: &str,
    value: Json,
) -> Result<Vec<Json>, PatchError> {
    if tokens.is_empty() {
        return Err(inapplicable(
            "replace",
            path,
            "replacing the whole object is not allowed",
        ));
    }
    let target = lookup_mut(doc, tokens)
        .ok_or_else(|| inapplicable("replace", path, "target does not exist"))?;
    if *target == value {
        return Ok(Vec::new());
    }
    *target = value.clone();
    Ok(vec![op_json("replace", tokens, Some(value))])
}

fn remove(doc: &mut Json, tokens: &[String], path: &str) -> Result<Vec<Json>, PatchError> {
    let Some((last, parents)) = tokens.split_last() else {
        return Err(inapplicable(
            "remove",
            path,
            "removing the whole object is not allowed",
        ));
    };
    let Some(parent) = lookup_mut(doc, parents) else {
        return Ok(Vec::new());
    };
    let removed = match parent {
        Json::Object(m) => m.remove(last).is_some(),
        Json::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    };
    Ok(if removed {
        vec![op_json("remove", tokens, None)]
    } else {
        Vec::new()
    })
}

/// Encodes operations as the base64 JSON text the AdmissionReview `patch` field carries.
pub fn encode(ops: &[Json]) -> String {
    let text = Json::Array(ops.to_vec()).to_string();
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[test]
    fn creates_missing_parents_explicitly() {
        let obj = json!({"metadata": {"name": "x"}});
        let (n, errs) = normalize(
            &obj,
            &[json!({"op": "add", "path": "/metadata/labels/a~1b", "value": "v"})],
        );
        assert!(errs.is_empty());
        assert_eq!(
            n.ops,
            vec![
                json!({"op": "add", "path": "/metadata/labels", "value": {}}),
                json!({"op": "add", "path": "/metadata/labels/a~1b", "value": "v"}),
            ]
        );
        assert_eq!(n.patched["metadata"]["labels"]["a/b"], "v");
    }

    #[test]
    fn is_idempotent() {
        let obj = json!({"metadata": {"name": "x"}});
        let ops = [json!({"op": "add", "path": "/metadata/labels/t", "value": "a"})];
        let (first, _) = normalize(&obj, &ops);
        let (second, errs) = normalize(&first.patched, &ops);
        assert!(errs.is_empty());
        assert!(second.ops.is_empty());
    }

    #[rstest]
    #[case(json!({"op": "move", "path": "/a", "from": "/b"}), "not supported")]
    #[case(json!({"op": "add", "path": "a", "value": 1}), "JSON pointer")]
    #[case(json!({"op": "replace", "path": "/nope", "value": 1}), "does not exist")]
    #[case(json!({"op": "add", "path": "/list/9", "value": 1}), "out of range")]
    #[case(json!({"op": "add", "path": "", "value": 1}), "whole object")]
    #[case(json!({"path": "/a"}), "not an object")]
    #[case(json!({"op": "add", "path": "/a"}), "missing")]
    fn rejects_bad_operations(#[case] op: Json, #[case] needle: &str) {
        let obj = json!({"list": [1]});
        let (n, errs) = normalize(&obj, &[op]);
        assert!(n.ops.is_empty());
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains(needle), "{}", errs[0]);
    }

    #[test]
    fn array_append_and_remove() {
        let obj = json!({"list": [1, 2]});
        let (n, errs) = normalize(
            &obj,
            &[
                json!({"op": "add", "path": "/list/-", "value": 3}),
                json!({"op": "remove", "path": "/list/0"}),
            ],
        );
        assert!(errs.is_empty());
        assert_eq!(n.patched, json!({"list": [2, 3]}));
        assert_eq!(n.ops.len(), 2);
    }

    #[test]
    fn encodes_base64_json() {
        let encoded = encode(&[json!({"op": "remove", "path": "/a"})]);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, br#"[{"op":"remove","path":"/a"}]"#);
    }
}
