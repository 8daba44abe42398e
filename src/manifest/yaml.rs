//! YAML streams: parses each document (as split by `split`) on its own with yaml_serde, applies
//! merge keys, converts the result to `serde_json::Value`, and turns yaml_serde errors into
//! messages with absolute line numbers.
//!
//! Behaviour inherited from yaml_serde (libyaml, YAML 1.2 core schema):
//! - Unquoted `yes`/`no`/`on`/`off` stay strings; only `true`/`false` are booleans. Kubernetes'
//!   decoder (go-yaml v2 through sigs.k8s.io/yaml) reads them as YAML 1.1 booleans in some
//!   places, so a policy may see `"yes"` where the API server would store `true`.
//! - Duplicate mapping keys are an error, as in Kubernetes' strict decoding.
//! - Aliases are expanded, but a document may replay at most 100 times its own number of parse
//!   events through aliases ("repetition limit exceeded"), which stops "billion laughs" bombs.
//! - Nesting deeper than 128 levels is an error ("recursion limit exceeded"). A document with
//!   more than 1000 unclosed `[`/`{` is refused before parsing, as libyaml's time is quadratic
//!   in flow nesting depth.
//!
//! Conversion to JSON follows sigs.k8s.io/yaml: integer, float and boolean mapping keys become
//! strings; null, sequence and mapping keys are errors. Tags (`!foo`, `!!binary`) are dropped
//! and their value kept. `.inf` and `.nan` values cannot be represented in JSON and are errors.

use serde_json::{Map, Number, Value};
use yaml_serde::Value as Yaml;

use super::{push_object, split, ReadResult};

/// Documents with more open brackets than this are refused before parsing; see
/// [`split::bracket_depth_exceeded`].
const MAX_BRACKET_DEPTH: usize = 1000;

/// Parses a YAML stream (without BOM).
pub(super) fn parse(file: &str, text: &str) -> ReadResult {
    let mut out = ReadResult::default();
    for chunk in split::documents(text) {
        let Some(content_line) = chunk.content_line else {
            continue;
        };
        if let Some(line) = split::bracket_depth_exceeded(&chunk, MAX_BRACKET_DEPTH) {
            out.push_error(
                file,
                line,
                format!(
                    "invalid YAML: brackets nested more than {MAX_BRACKET_DEPTH} levels deep at line {line}"
                ),
            );
            continue;
        }
        let mut value: Yaml = match yaml_serde::from_str(chunk.text) {
            Ok(value) => value,
            Err(err) => {
                let (line, message) = describe_error(&err, &chunk, content_line);
                out.push_error(file, line, message);
                continue;
            }
        };
        if let Err(err) = value.apply_merge() {
            out.push_error(
                file,
                content_line,
                format!("invalid YAML merge key (<<): {err}"),
            );
            continue;
        }
        let value = match to_json(value) {
            Ok(value) => value,
            Err(err) => {
                out.push_error(file, content_line, err.message());
                continue;
            }
        };
        push_object(&mut out, file, content_line, value, |n| {
            split::yaml_item_lines(&chunk, n)
        });
    }
    out
}

/// The absolute line of a yaml_serde error and a message whose `line N column M` positions are
/// absolute too. Errors without a position are placed on the document's content line. For a
/// duplicate key, yaml_serde points at the mapping; the line of the repeated key is looked up
/// and used as the error's line when it can be found.
fn describe_error(
    err: &yaml_serde::Error,
    chunk: &split::Chunk<'_>,
    content_line: usize,
) -> (usize, String) {
    let shift = chunk.first_line.saturating_sub(1);
    let text = err.to_string();
    let mut message = format!("invalid YAML: {}", shift_positions(&text, shift));
    let Some(loc) = err.location() else {
        return (content_line, message);
    };
    let line = loc.line() + shift;
    if !text.contains(" at line ") {
        message.push_str(&format!(" at line {line} column {}", loc.column()));
    }
    let repeated = duplicate_key(&text)
        .and_then(|key| split::repeated_key_line(chunk, line, loc.column().saturating_sub(1), key));
    match repeated {
        Some(repeated) => {
            message.push_str(&format!("; the key is repeated at line {repeated}"));
            (repeated, message)
        }
        None => (line, message),
    }
}

/// The key named by yaml_serde's `duplicate entry with key "..."` message, if it is a string
/// without escapes.
fn duplicate_key(message: &str) -> Option<&str> {
    const MARK: &str = "duplicate entry with key \"";
    let start = message.find(MARK)? + MARK.len();
    let rest = message.get(start..)?;
    let key = rest.get(..rest.find('"')?)?;
    (!key.contains('\\')).then_some(key)
}

/// Adds `shift` to the line of every ` at line N column ` in a yaml_serde message.
fn shift_positions(message: &str, shift: usize) -> String {
    const PREFIX: &str = " at line ";
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    while let Some(pos) = rest.find(PREFIX) {
        let (head, tail) = rest.split_at(pos + PREFIX.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = tail.split_at(digits);
        match number.parse::<usize>() {
            Ok(n) if after.starts_with(" column ") => out.push_str(&(n + shift).to_string()),
            _ => out.push_str(number),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Why a YAML value could not be converted, with the path to it (innermost segment first).
#[derive(Debug)]
struct ConvertError {
    reversed_path: Vec<String>,
    what: String,
}

impl ConvertError {
    fn new(what: String) -> Self {
        ConvertError {
            reversed_path: Vec::new(),
            what,
        }
    }

    fn within(mut self, segment: String) -> Self {
        self.reversed_path.push(segment);
        self
    }

    fn message(&self) -> String {
        if self.reversed_path.is_empty() {
            return format!("cannot convert YAML to JSON: {}", self.what);
        }
        let mut path = String::new();
        for segment in self.reversed_path.iter().rev() {
            if !segment.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
        format!("cannot convert YAML to JSON at {path}: {}", self.what)
    }
}

/// Converts a parsed YAML value to JSON. Recursion depth is bounded by yaml_serde's limit of 128.
fn to_json(value: Yaml) -> Result<Value, ConvertError> {
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::String(s) => Value::String(s),
        Yaml::Number(n) => Value::Number(number(&n)?),
        Yaml::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.push(to_json(item).map_err(|e| e.within(format!("[{i}]")))?);
            }
            Value::Array(out)
        }
        Yaml::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, value) in mapping {
                let key = key_string(key)?;
                let value = to_json(value).map_err(|e| e.within(key.clone()))?;
                if out.contains_key(&key) {
                    return Err(ConvertError::new(format!(
                        "duplicate mapping key {key:?} after converting keys to strings"
                    )));
                }
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value)?,
    })
}

fn number(n: &yaml_serde::Number) -> Result<Number, ConvertError> {
    if let Some(i) = n.as_i64() {
        return Ok(Number::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Number::from(u));
    }
    n.as_f64()
        .and_then(Number::from_f64)
        .ok_or_else(|| ConvertError::new(format!("{n} cannot be represented in JSON")))
}

/// A mapping key as a JSON object key, as sigs.k8s.io/yaml converts it.
fn key_string(key: Yaml) -> Result<String, ConvertError> {
    match key {
        Yaml::String(s) => Ok(s),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Tagged(tagged) => key_string(tagged.value),
        Yaml::Null => Err(ConvertError::new(
            "a mapping key is null; keys must be strings, numbers or booleans".to_owned(),
        )),
        Yaml::Sequence(_) | Yaml::Mapping(_) => Err(ConvertError::new(
            "a mapping key is a sequence or mapping; keys must be strings, numbers or booleans"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod unit {
    use super::shift_positions;

    #[test]
    fn shifts_every_position() {
        assert_eq!(
            shift_positions(
                "did not find expected key at line 3 column 1, while parsing a block mapping at line 1 column 1",
                10
            ),
            "did not find expected key at line 13 column 1, while parsing a block mapping at line 11 column 1"
        );
        assert_eq!(shift_positions("at line x", 4), "at line x");
        assert_eq!(shift_positions("a at line 7 only", 4), "a at line 7 only");
    }
}
