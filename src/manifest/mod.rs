//! The manifest reader: turns files, directories and stdin holding Kubernetes YAML or JSON into
//! objects, each with the file and 1-based line where it starts.
//!
//! Every document is decoded exactly as kubectl, Helm and ArgoCD decode it (k8s.io/apimachinery's
//! `YAMLOrJSONDecoder` over sigs.k8s.io/yaml and go-yaml v2, YAML 1.1 rules), so a policy sees the
//! JSON the API server would receive: `yes`/`on` are booleans, `0777` is 511, a repeated key keeps
//! its last value, merge keys apply as go-yaml applies them, `!!binary` is decoded. The
//! differential test `tests/manifest_kubectl_differential.rs` holds regate to that against the
//! real decoder; docs/architecture.md ("Reading manifests as kubectl does") explains the choice.
//!
//! This file owns the public API ([`Document`], [`ReadResult`], [`ManifestError`],
//! [`parse_stream`], [`read_bytes`], [`read_inputs`], [`decode_stream`]) and the checks every
//! object goes through whatever its syntax: it must be a mapping with string `apiVersion` and
//! `kind`, and `List` kinds are expanded into their items. The submodules own the rest:
//! - `split`: kubectl's splitting of a YAML stream into documents;
//! - `libyaml`: the YAML event parser (libyaml, which go-yaml v2 is a port of);
//! - `goyaml`: go-yaml v2's decoding of one document and sigs.k8s.io/yaml's conversion to JSON;
//! - `yaml`: YAML streams, document by document, with absolute lines;
//! - `json`: JSON streams and where array elements start in their text;
//! - `walk`: files, directories and stdin.
//!
//! One broken document never stops the others: every problem with a single document becomes an
//! [`InputError`] in [`ReadResult::errors`]; only an input that cannot be opened at all is a
//! [`ManifestError`]. (kubectl stops a file at its first broken document; regate reports them all.)

mod goyaml;
mod json;
mod libyaml;
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
    /// `apiVersion:` line after helm's `# Source:` comment; for an item of a `List` or of a
    /// top-level array, the line where the item starts (for JSON, when the text can be scanned;
    /// otherwise the List's own line).
    pub location: Location,
    /// The object as kubectl would send it to the API server (YAML decoded by go-yaml v2's
    /// rules and converted to JSON: mapping keys are strings).
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

/// One document decoded from a stream, before regate's checks: a JSON value (never `null`) or
/// why the document could not be decoded.
pub(crate) enum Piece {
    Value {
        /// Line of the document's first content line.
        line: usize,
        value: Value,
        /// Lines of the entries of the object's `items` array, when found.
        items: Option<Vec<usize>>,
        /// For an array regate expands into its elements (a JSON array, a YAML flow sequence):
        /// each element's line and the lines of its `items` entries.
        elements: Option<Vec<(usize, Option<Vec<usize>>)>>,
    },
    Error {
        line: usize,
        message: String,
    },
}

/// One document of a stream as kubectl decodes it: the JSON it would send to the API server, or
/// why it cannot be decoded. `null` and empty documents are left out, as kubectl skips them.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedDocument {
    /// The document's first content line (for an error, the line the error points at).
    pub line: usize,
    pub value: Result<Value, String>,
}

/// Decodes a stream document by document, as kubectl's `YAMLOrJSONDecoder` does, without regate's
/// object checks and `List` expansion. Unlike kubectl, decoding goes on after a broken document.
pub fn decode_stream(text: &str) -> Vec<DecodedDocument> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    pieces(text)
        .into_iter()
        .map(|piece| match piece {
            Piece::Value { line, value, .. } => DecodedDocument {
                line,
                value: Ok(value),
            },
            Piece::Error { line, message } => DecodedDocument {
                line,
                value: Err(message),
            },
        })
        .collect()
}

/// Whether kubectl reads `text` as a JSON stream: its first non-space character, within the
/// first 4096 bytes (what `GuessJSONStream` peeks at), is `{`.
fn sniffs_as_json(text: &str) -> bool {
    text.char_indices()
        .find(|&(_, c)| !c.is_whitespace())
        .is_some_and(|(i, c)| c == '{' && i < 4096)
}

/// The documents of a stream, as `YAMLOrJSONDecoder` finds them.
///
/// A stream that sniffs as JSON is read as JSON values one after another. If a value is not valid
/// JSON after at most one good value, kubectl switches to YAML for the rest of the text (from just
/// after the good value, having skipped spaces through the first line break); after two or more
/// good values the syntax error is final. Every other stream is YAML, whatever the file's name.
fn pieces(text: &str) -> Vec<Piece> {
    if !sniffs_as_json(text) {
        return yaml::parse(text, 1);
    }
    let read = json::parse(text);
    let Some((line, message)) = read.error else {
        return read.pieces;
    };
    let mut out = read.pieces;
    if read.values > 1 {
        out.push(Piece::Error { line, message });
        return out;
    }
    // apimachinery's consumeWhitespace: spaces up to and including the first line break.
    let mut rest = read.consumed;
    for (i, c) in text.get(rest..).unwrap_or_default().char_indices() {
        if !c.is_whitespace() {
            rest = read.consumed + i;
            break;
        }
        rest = read.consumed + i + c.len_utf8();
        if c == '\n' {
            break;
        }
    }
    let rest_text = text.get(rest..).unwrap_or_default();
    let first_line = 1 + text.as_bytes()[..rest]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    let mut from_yaml = yaml::parse(rest_text, first_line).into_iter().peekable();
    // When the rest fails as YAML too, kubectl reports the JSON error (which names the problem
    // better for a file meant as JSON).
    if let Some(Piece::Error { .. }) = from_yaml.peek() {
        from_yaml.next();
        out.push(Piece::Error { line, message });
    }
    out.extend(from_yaml);
    out
}

/// Parse one multi-document YAML or JSON text. `file` is the display name used in locations.
///
/// The text is read as kubectl reads it (see [`pieces`]): JSON when it starts with `{`, YAML
/// otherwise, whatever the file's extension; numbers end as kubectl's objects hold them
/// ([`unstructured_numbers`]). A top-level JSON array or YAML flow sequence is
/// read as a list of objects (kubectl would refuse it). A leading UTF-8 BOM is ignored.
pub fn parse_stream(file: &str, text: &str) -> ReadResult {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = ReadResult::default();
    for mut piece in pieces(text) {
        if let Piece::Value { value, .. } = &mut piece {
            unstructured_numbers(value);
        }
        match piece {
            Piece::Error { line, message } => out.push_error(file, line, message),
            Piece::Value {
                line,
                value: Value::Array(values),
                elements: Some(elements),
                ..
            } => {
                let mut elements = elements.into_iter();
                for value in values {
                    let (element_line, items) = elements.next().unwrap_or((line, None));
                    push_object(&mut out, file, element_line, value, |_| items);
                }
            }
            Piece::Value {
                line, value, items, ..
            } => push_object(&mut out, file, line, value, |_| items),
        }
    }
    out
}

/// Numbers as kubectl holds them once the decoded JSON is an object (apimachinery's
/// `unstructured`, through `util/json`): an integer that fits 64 signed bits stays one, anything
/// else is a float64, which is what kubectl sends on (`1.0` and `-0` become `1` and `0`,
/// 18446744073709551615 becomes 1.8446744073709552e19).
fn unstructured_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() => {
            let f = n.as_f64().unwrap_or_default();
            *n = if f == 0.0 {
                0i64.into()
            } else {
                goyaml::float_json(f).unwrap_or_else(|| n.clone())
            };
        }
        Value::Array(items) => items.iter_mut().for_each(unstructured_numbers),
        Value::Object(map) => map.values_mut().for_each(unstructured_numbers),
        _ => {}
    }
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
