//! JSON streams: one or more JSON values (as `kubectl get -o json` or `jq` print them) parsed
//! with serde_json, plus a small structural scanner that finds where the elements of a top-level
//! array, or of an object's `items` array, start in the text so each gets its own line.
//!
//! The scanner only runs on text serde_json has already accepted, and any surprise makes it
//! return `None` (callers then fall back to the enclosing value's line). Duplicate keys in a JSON
//! object are not detected: serde_json keeps the last one.

use serde_json::Value;

use super::Piece;

/// What reading a JSON stream gave.
pub(super) struct JsonRead {
    /// One piece per value read (null values skipped), in order.
    pub pieces: Vec<Piece>,
    /// How many values were read (null values included).
    pub values: usize,
    /// Byte offset just past the last value read.
    pub consumed: usize,
    /// The syntax error that stopped reading, with its line, if any.
    pub error: Option<(usize, String)>,
}

/// Reads a JSON stream (without BOM) as Go's `json.Decoder` does, value after value, up to the
/// end or the first syntax error.
pub(super) fn parse(text: &str) -> JsonRead {
    let mut read = JsonRead {
        pieces: Vec::new(),
        values: 0,
        consumed: 0,
        error: None,
    };
    let bytes = text.as_bytes();
    let index = LineIndex::new(text);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let before = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                read.values += 1;
                read.consumed = stream.byte_offset();
                let start = skip_whitespace(bytes, before);
                let line = index.line(start);
                let piece = match value {
                    Value::Null => continue,
                    Value::Array(items) => {
                        let starts = array_elements(bytes, start)
                            .filter(|starts| starts.len() == items.len());
                        let elements = (0..items.len())
                            .map(|i| {
                                let item_start = starts.as_ref().and_then(|s| s.get(i).copied());
                                let item_line = item_start.map_or(line, |s| index.line(s));
                                let items = item_start.and_then(|s| items_lines(bytes, s, &index));
                                (item_line, items)
                            })
                            .collect();
                        Piece::Value {
                            line,
                            value: Value::Array(items),
                            items: None,
                            elements: Some(elements),
                        }
                    }
                    value => Piece::Value {
                        line,
                        value,
                        items: items_lines(bytes, start, &index),
                        elements: None,
                    },
                };
                read.pieces.push(piece);
            }
            Some(Err(err)) => {
                read.error = Some((err.line().max(1), format!("invalid JSON: {err}")));
                break;
            }
        }
    }
    read
}

/// Maps byte offsets to 1-based line numbers.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// Offset just past the string starting at `i` (which must be `"`).
fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match bytes.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// Offset just past the JSON value starting at `i`.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while bytes
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            Some(j)
        }
    }
}

/// Start offsets of the elements of the array starting at `open` (which must be `[`).
fn array_elements(bytes: &[u8], open: usize) -> Option<Vec<usize>> {
    if bytes.get(open) != Some(&b'[') {
        return None;
    }
    let mut starts = Vec::new();
    let mut i = skip_whitespace(bytes, open + 1);
    if bytes.get(i) == Some(&b']') {
        return Some(starts);
    }
    loop {
        starts.push(i);
        i = skip_whitespace(bytes, value_end(bytes, i)?);
        match bytes.get(i)? {
            b',' => i = skip_whitespace(bytes, i + 1),
            b']' => return Some(starts),
            _ => return None,
        }
    }
}

/// Start offset of the value of member `key` of the object starting at `open` (must be `{`).
/// Keys are compared as written, so an escaped spelling of `key` is not found.
fn member(bytes: &[u8], open: usize, key: &str) -> Option<usize> {
    if bytes.get(open) != Some(&b'{') {
        return None;
    }
    let mut i = skip_whitespace(bytes, open + 1);
    loop {
        if bytes.get(i)? != &b'"' {
            return None;
        }
        let key_end = string_end(bytes, i)?;
        let name = bytes.get(i + 1..key_end - 1)?;
        i = skip_whitespace(bytes, key_end);
        if bytes.get(i)? != &b':' {
            return None;
        }
        let value = skip_whitespace(bytes, i + 1);
        if name == key.as_bytes() {
            return Some(value);
        }
        i = skip_whitespace(bytes, value_end(bytes, value)?);
        match bytes.get(i)? {
            b',' => i = skip_whitespace(bytes, i + 1),
            _ => return None,
        }
    }
}

/// Lines of the elements of the `items` array of the object starting at `open`.
fn items_lines(bytes: &[u8], open: usize, index: &LineIndex) -> Option<Vec<usize>> {
    let items = member(bytes, open, "items")?;
    let starts = array_elements(bytes, items)?;
    Some(starts.into_iter().map(|s| index.line(s)).collect())
}
