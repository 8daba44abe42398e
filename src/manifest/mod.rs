//! The manifest reader: turns files, directories and stdin holding Kubernetes YAML or JSON into
//! objects, each with the file and 1-based line where it starts.
//!
//! This file owns the public API ([`Document`], [`ReadResult`], [`ManifestError`],
//! [`parse_stream`], [`read_bytes`], [`read_inputs`]) and the checks every object goes through
//! whatever its syntax: it must be a mapping with string `apiVersion` and `kind`, and `List`
//! kinds are expanded into their items. The submodules own the rest:
//! - `split`: line-level scanning of a YAML stream (document markers, `items:` entry lines);
//! - `yaml`: parsing one YAML document and converting it to JSON;
//! - `json`: parsing a JSON stream and locating array elements in its text;
//! - `walk`: files, directories and stdin.
//!
//! One broken document never stops the others: every problem with a single document becomes an
//! [`InputError`] in [`ReadResult::errors`]; only an input that cannot be opened at all is a
//! [`ManifestError`].

mod json;
mod split;
mod walk;
mod yaml;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::report::model::{InputError, Location};

pub use walk::read_inputs;

/// One Kubernetes object read from a manifest, with where its document starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file (`-` for stdin) and the line of the object's first content line, e.g. its
    /// `apiVersion:` line after helm's `# Source:` comment; for an item of a `List`, the line of
    /// its `- ` entry when that can be found, otherwise the List's own line.
    pub location: Location,
    /// The object, with YAML converted to JSON (mapping keys are strings).
    pub object: Value,
}

/// What reading produced: every object that could be read, and one error per unreadable document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadResult {
    /// Objects in input order (inputs in the order given, files of a directory sorted by path).
    pub documents: Vec<Document>,
    /// One entry per document (or file) that could not be read.
    pub errors: Vec<InputError>,
}

impl ReadResult {
    /// Appends everything `other` read after what this one holds.
    pub fn extend(&mut self, other: ReadResult) {
        self.documents.extend(other.documents);
        self.errors.extend(other.errors);
    }

    fn push_error(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.errors.push(InputError {
            location: location(file, line),
            message: message.into(),
        });
    }

    fn push_document(&mut self, file: &str, line: usize, object: Map<String, Value>) {
        self.documents.push(Document {
            location: location(file, line),
            object: Value::Object(object),
        });
    }
}

/// Typed error for failures that stop reading a whole input (cannot open a file/dir, stdin unreadable).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A path given on the command line does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound { path: PathBuf },
    /// A path given on the command line (or the directory it names) cannot be inspected or listed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Standard input (`-`) could not be read.
    #[error("cannot read standard input (-): {source}")]
    Stdin {
        #[source]
        source: std::io::Error,
    },
}

/// Parse one multi-document YAML or JSON text. `file` is the display name used in locations.
///
/// A name ending in `.json` is parsed as a JSON stream (one or more values, a top-level array is a
/// list of objects). Otherwise a text whose first non-space character is `{` or `[` is tried as
/// JSON first; if that is not valid JSON but is valid YAML, the YAML reading is used, and if it
/// is neither, the JSON error is reported. Everything else is a YAML stream. A leading UTF-8 BOM
/// is ignored.
pub fn parse_stream(file: &str, text: &str) -> ReadResult {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if has_json_extension(file) {
        return json::parse(file, text).result;
    }
    if text.trim_start().starts_with(['{', '[']) {
        let from_json = json::parse(file, text);
        if from_json.syntax_ok {
            return from_json.result;
        }
        let from_yaml = yaml::parse(file, text);
        if from_yaml.errors.is_empty() {
            return from_yaml;
        }
        return from_json.result;
    }
    yaml::parse(file, text)
}

/// Like [`parse_stream`] for raw bytes: a leading UTF-8 BOM is dropped, and text that is not
/// UTF-8 gives one [`InputError`] naming the byte offset and line of the first bad byte.
pub fn read_bytes(file: &str, bytes: &[u8]) -> ReadResult {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let (skipped, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, bytes),
    };
    match std::str::from_utf8(body) {
        Ok(text) => parse_stream(file, text),
        Err(err) => {
            let mut out = ReadResult::default();
            if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
                out.push_error(
                    file,
                    1,
                    "file is UTF-16 encoded (it starts with a UTF-16 byte order mark); only UTF-8 is supported",
                );
                return out;
            }
            let offset = skipped + err.valid_up_to();
            let before = bytes.get(..offset).unwrap_or(bytes);
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            out.push_error(
                file,
                line,
                format!("file is not valid UTF-8: invalid byte at offset {offset} (line {line})"),
            );
            out
        }
    }
}

fn location(file: &str, line: usize) -> Location {
    Location {
        file: file.to_owned(),
        line,
    }
}

fn has_json_extension(file: &str) -> bool {
    file.len() >= 5
        && file
            .get(file.len() - 5..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".json"))
}

/// A short description of a value's type, for error messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Checks that `object` has non-empty string `apiVersion` and `kind`; returns the kind.
fn type_meta(object: &Map<String, Value>) -> Result<String, String> {
    let mut missing = Vec::new();
    let mut kind = String::new();
    for field in ["apiVersion", "kind"] {
        match object.get(field) {
            None | Some(Value::Null) => missing.push(format!("{field:?}")),
            Some(Value::String(s)) if s.is_empty() => missing.push(format!("{field:?}")),
            Some(Value::String(s)) => {
                if field == "kind" {
                    kind.clone_from(s);
                }
            }
            Some(other) => {
                return Err(format!(
                    "{field:?} must be a string, found {}",
                    describe(other)
                ))
            }
        }
    }
    if missing.is_empty() {
        Ok(kind)
    } else {
        Err(format!("missing {}", missing.join(" and ")))
    }
}

/// Adds one parsed document (already converted to JSON) to `out`.
///
/// `null` documents are skipped. A `List` kind (`kind: List`, or any kind ending in `List` with an
/// `items` sequence, e.g. `PodList`) is replaced by its items; `item_lines(n)` is asked for the
/// start lines of the `n` items and may return `None` (or a wrong count) to use the List's line.
/// Items of a typed list (`PodList`) that carry neither `apiVersion` nor `kind` get the List's
/// `apiVersion` and the kind without `List`, as the API server omits them there.
fn push_object(
    out: &mut ReadResult,
    file: &str,
    line: usize,
    value: Value,
    item_lines: impl FnOnce(usize) -> Option<Vec<usize>>,
) {
    let mut object = match value {
        Value::Null => return,
        Value::Object(object) => object,
        other => {
            out.push_error(
                file,
                line,
                format!(
                    "document is not a Kubernetes object: expected a mapping, found {}",
                    describe(&other)
                ),
            );
            return;
        }
    };
    let kind = match type_meta(&object) {
        Ok(kind) => kind,
        Err(why) => {
            out.push_error(
                file,
                line,
                format!("document is not a Kubernetes object: {why}"),
            );
            return;
        }
    };
    let is_list = kind == "List"
        || (kind.ends_with("List") && matches!(object.get("items"), Some(Value::Array(_))));
    if !is_list {
        out.push_document(file, line, object);
        return;
    }
    let items = match object.remove("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            out.push_error(
                file,
                line,
                format!(
                    "{kind} \"items\" must be a sequence, found {}",
                    describe(&other)
                ),
            );
            return;
        }
    };
    let lines = item_lines(items.len()).filter(|lines| lines.len() == items.len());
    let api_version = object.get("apiVersion").cloned();
    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
    for (i, item) in items.into_iter().enumerate() {
        let item_line = lines
            .as_ref()
            .and_then(|lines| lines.get(i).copied())
            .unwrap_or(line);
        let mut item = match item {
            Value::Object(item) => item,
            other => {
                out.push_error(
                    file,
                    item_line,
                    format!(
                        "{kind} items[{i}] is not a Kubernetes object: expected a mapping, found {}",
                        describe(&other)
                    ),
                );
                continue;
            }
        };
        if let (Some(item_kind), Some(api_version)) = (item_kind, &api_version) {
            if !item.contains_key("apiVersion") && !item.contains_key("kind") {
                item.insert("apiVersion".to_owned(), api_version.clone());
                item.insert("kind".to_owned(), Value::String(item_kind.to_owned()));
            }
        }
        match type_meta(&item) {
            Ok(_) => out.push_document(file, item_line, item),
            Err(why) => out.push_error(
                file,
                item_line,
                format!("{kind} items[{i}] is not a Kubernetes object: {why}"),
            ),
        }
    }
}
