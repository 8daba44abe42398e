//! Line-level scanning of a YAML stream: splitting it into documents on `---` and `...` markers
//! with the line each document's content starts on, and finding the lines where the entries of a
//! List's top-level `items:` sequence start.
//!
//! Splitting on lines is exact for YAML: a line starting with `---` or `...` followed by a space,
//! a tab or the line end is a document marker in every context (YAML 1.2 "c-forbidden"), even
//! inside block or quoted scalars. Lines end at `\n`; a `\r` before it is ignored, so CRLF files
//! count lines like libyaml does (a lone `\r` line break, as on classic Mac OS, is not supported).

/// One document's slice of the stream.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chunk<'a> {
    /// Text for the YAML parser: from the `---` line that opens it (if any) to the line before
    /// the next `---`, or through the `...` line that closes it.
    pub text: &'a str,
    /// 1-based line number of the first line of `text`.
    pub first_line: usize,
    /// Line of the first content line: not blank, not a comment, not a directive, not a bare
    /// marker. `None` when the document is empty, which is skipped without an error.
    pub content_line: Option<usize>,
}

/// A line's role as a document marker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Marker {
    /// `---`, with `content` true when a node follows on the same line (`--- {a: 1}`, `--- |`).
    Start { content: bool },
    /// `...`
    End,
    /// Not a marker.
    None,
}

fn marker(line: &str) -> Marker {
    let after = |prefix: &str| {
        line.strip_prefix(prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    if let Some(rest) = after("---") {
        let rest = rest.trim();
        return Marker::Start {
            content: !rest.is_empty() && !rest.starts_with('#'),
        };
    }
    if after("...").is_some() {
        return Marker::End;
    }
    Marker::None
}

/// Whether a non-marker line holds YAML content (as opposed to blank, comment or directive).
fn is_content(line: &str) -> bool {
    let trimmed = line.trim_start();
    !trimmed.is_empty() && !trimmed.starts_with('#') && !line.starts_with('%')
}

/// The lines of `text` as `(line number, line without its line break)`, numbered from `first`.
fn numbered_lines(text: &str, first: usize) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').zip(first..).map(|(raw, n)| {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        (n, line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Splits a YAML stream (without BOM) into its documents, in order. Empty documents are
/// included with `content_line: None`.
pub(super) fn documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut content_line = None;
    let mut offset = 0;
    let mut close = |from: usize, to: usize, first_line: usize, content_line: Option<usize>| {
        if let Some(text) = text.get(from..to).filter(|t| !t.is_empty()) {
            chunks.push(Chunk {
                text,
                first_line,
                content_line,
            });
        }
    };
    for (raw, n) in text.split_inclusive('\n').zip(1..) {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        match marker(line) {
            Marker::Start { content } => {
                close(start, offset, first_line, content_line);
                start = offset;
                first_line = n;
                content_line = content.then_some(n);
            }
            Marker::End => {
                close(start, offset + raw.len(), first_line, content_line);
                start = offset + raw.len();
                first_line = n + 1;
                content_line = None;
            }
            Marker::None => {
                if content_line.is_none() && is_content(line) {
                    content_line = Some(n);
                }
            }
        }
        offset += raw.len();
    }
    close(start, text.len(), first_line, content_line);
    chunks
}

fn indent(line: &str) -> usize {
    line.bytes().take_while(|&b| b == b' ').count()
}

/// `items:` (plain or quoted key) with nothing but a comment after the colon.
fn is_items_key(rest: &str) -> bool {
    let Some(after) = ["items", "\"items\"", "'items'"]
        .iter()
        .find_map(|key| rest.strip_prefix(key))
    else {
        return false;
    };
    let Some(value) = after.trim_start_matches([' ', '\t']).strip_prefix(':') else {
        return false;
    };
    let value = value.trim();
    value.is_empty() || value.starts_with('#')
}

/// A block sequence entry: `-` followed by a space, a tab or the line end.
fn is_entry(rest: &str) -> bool {
    rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t")
}

/// The lines where the entries of the document's top-level `items:` block sequence start, if
/// the document is a block mapping with such a key and exactly `expected` entries are found.
/// A flow sequence (`items: [...]`) or anything unusual gives `None`.
pub(super) fn yaml_item_lines(chunk: &Chunk<'_>, expected: usize) -> Option<Vec<usize>> {
    let content_line = chunk.content_line?;
    let mut lines =
        numbered_lines(chunk.text, chunk.first_line).skip_while(|&(n, _)| n < content_line);
    let (_, first) = lines.next()?;
    if marker(first) != Marker::None {
        return None;
    }
    let top = indent(first);
    let at_top = |line: &str| indent(line) == top && line.get(top..).is_some_and(is_items_key);
    if !at_top(first) {
        lines.find(|&(_, line)| at_top(line))?;
    }
    let mut entry_indent = None;
    let mut found = Vec::new();
    for (n, line) in lines {
        if !is_content(line) {
            // Blank and comment lines, and comment-like lines inside block scalars, never
            // start an entry.
            continue;
        }
        let ind = indent(line);
        let rest = line.get(ind..).unwrap_or_default();
        match entry_indent {
            None if ind >= top && is_entry(rest) => {
                entry_indent = Some(ind);
                found.push(n);
            }
            None => break,
            Some(e) if ind > e => {}
            Some(e) if ind == e && is_entry(rest) => found.push(n),
            Some(_) => break,
        }
    }
    (found.len() == expected).then_some(found)
}

/// `key` (plain, or in double or single quotes) followed by `:` and a space or the line end.
fn starts_with_key(rest: &str, key: &str) -> bool {
    let after = rest
        .strip_prefix(key)
        .or_else(|| {
            rest.strip_prefix('"')
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix('"'))
        })
        .or_else(|| {
            rest.strip_prefix('\'')
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix('\''))
        });
    after
        .map(|a| a.trim_start_matches([' ', '\t']))
        .and_then(|a| a.strip_prefix(':'))
        .is_some_and(|a| a.is_empty() || a.starts_with([' ', '\t']))
}

/// The line of the second occurrence of `key` in the block mapping whose first key is at
/// `mapping_line`, 0-based column `column` (where yaml_serde places a duplicate-key error).
pub(super) fn repeated_key_line(
    chunk: &Chunk<'_>,
    mapping_line: usize,
    column: usize,
    key: &str,
) -> Option<usize> {
    let mut seen = false;
    let lines = numbered_lines(chunk.text, chunk.first_line).skip_while(|&(n, _)| n < mapping_line);
    for (n, line) in lines {
        if !is_content(line) {
            continue;
        }
        let ind = indent(line);
        let rest = if n == mapping_line || ind == column {
            // The first key may follow a `- ` entry marker, so use its column, not the indent.
            line.get(column..)?
        } else if ind < column {
            return None;
        } else {
            continue;
        };
        if starts_with_key(rest, key) {
            if seen {
                return Some(n);
            }
            seen = true;
        }
    }
    None
}

/// The line where the count of open brackets (`[`, `{` minus `]`, `}`, outside comment lines)
/// first exceeds `limit`, if it does.
///
/// libyaml's scanner takes time quadratic in the flow nesting depth (40,000 nested `[` take
/// seconds), and yaml_serde rejects nesting beyond 128 levels anyway, only after the whole
/// document is scanned. Refusing a document whose bracket count is far beyond that limit before
/// parsing keeps the cost linear. Brackets inside scalars count too, so `limit` must stay well
/// above 128: a real manifest would need hundreds of unclosed brackets in its text to trip it.
pub(super) fn bracket_depth_exceeded(chunk: &Chunk<'_>, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (n, line) in numbered_lines(chunk.text, chunk.first_line) {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for b in line.bytes() {
            match b {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return Some(n);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}
