//! Splitting a YAML stream into documents exactly as kubectl does: k8s.io/apimachinery's
//! `YAMLReader` (under `YAMLOrJSONDecoder`, which kubectl, Helm and ArgoCD read manifests with).
//!
//! Its rules, which differ from the YAML specification's:
//! - the text is read line by line; `\r\n` and `\n` end a line and each line is passed on with
//!   `\n` (a lone `\r` stays in the line);
//! - a line that starts with `---` ends the document before it, and is dropped, unless nothing
//!   has been collected yet (then it starts the document's text). After `---` only spaces and a
//!   comment may follow: `--- {a: 1}`, `--- |` or `----` are an error ("invalid Yaml document
//!   separator");
//! - `...` is not a separator: the document text goes to go-yaml as a whole, which reads only the
//!   first document in it, so whatever follows a `...` line before the next `---` is ignored.

/// One document's text, as kubectl hands it to go-yaml.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chunk {
    /// The lines, each ending with `\n`.
    pub text: String,
    /// 1-based line number of the first line of `text`.
    pub first_line: usize,
    /// Line of the first content line: not blank, not a comment, not a directive, not a `---`
    /// or `...` marker. `None` when there is none.
    pub content_line: Option<usize>,
    /// A `---` line with content after it, which ends this document with an error: its line
    /// and text.
    pub bad_separator: Option<(usize, String)>,
}

/// Whether a line holds YAML content (as opposed to blank, comment, directive or marker).
fn is_content(line: &str) -> bool {
    let trimmed = line.trim_start();
    let marker = |m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    !trimmed.is_empty()
        && !trimmed.starts_with('#')
        && !line.starts_with('%')
        && !marker("---")
        && !marker("...")
}

/// Splits a YAML stream (without BOM) into kubectl's documents, numbering lines from
/// `first_line`. Documents that are empty or hold only comments are included (they decode to
/// nothing).
pub(super) fn documents(text: &str, first_line: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current = Chunk {
        text: String::new(),
        first_line,
        content_line: None,
        bad_separator: None,
    };
    for (raw, n) in text.split_inclusive('\n').zip(first_line..) {
        let line = match raw.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => raw,
        };
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                current.bad_separator = Some((n, line.to_owned()));
                chunks.push(std::mem::replace(&mut current, fresh(n + 1)));
                continue;
            }
            if !current.text.is_empty() {
                chunks.push(std::mem::replace(&mut current, fresh(n + 1)));
                continue;
            }
        }
        if current.text.is_empty() {
            current.first_line = n;
        }
        if current.content_line.is_none() && is_content(line) {
            current.content_line = Some(n);
        }
        current.text.push_str(line);
        current.text.push('\n');
    }
    if !current.text.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn fresh(first_line: usize) -> Chunk {
    Chunk {
        text: String::new(),
        first_line,
        content_line: None,
        bad_separator: None,
    }
}

/// The line where the count of open brackets (`[`, `{` minus `]`, `}`, outside comment lines)
/// first exceeds `limit`, if it does.
///
/// libyaml's scanner takes time quadratic in the flow nesting depth (40,000 nested `[` take
/// seconds), and the decoder rejects nesting beyond 128 levels anyway. Refusing a document whose
/// bracket count is far beyond that limit before parsing keeps the cost linear. Brackets inside
/// scalars count too, so `limit` must stay well above 128: a real manifest would need hundreds
/// of unclosed brackets in its text to trip it.
pub(super) fn bracket_depth_exceeded(chunk: &Chunk, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (line, n) in chunk.text.lines().zip(chunk.first_line..) {
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

#[cfg(test)]
mod unit {
    use super::*;

    fn summary(text: &str) -> Vec<(usize, Option<usize>, String, Option<usize>)> {
        documents(text, 1)
            .into_iter()
            .map(|c| {
                (
                    c.first_line,
                    c.content_line,
                    c.text,
                    c.bad_separator.map(|b| b.0),
                )
            })
            .collect()
    }

    #[test]
    fn splits_like_kubectl() {
        assert_eq!(
            summary("---\na: 1\n--- # x\r\nb: 2\r\n...\nc: 3\n---\n---\n"),
            vec![
                (1, Some(2), "---\na: 1\n".to_owned(), None),
                (4, Some(4), "b: 2\n...\nc: 3\n".to_owned(), None),
                (8, None, "---\n".to_owned(), None),
            ]
        );
        assert_eq!(
            summary("a: 1\n--- {b: 2}\nc: 3"),
            vec![
                (1, Some(1), "a: 1\n".to_owned(), Some(2)),
                (3, Some(3), "c: 3\n".to_owned(), None),
            ]
        );
        assert_eq!(summary("----\n")[0].3, Some(1));
    }
}
