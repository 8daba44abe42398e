//! YAML streams, read as kubectl reads them: split into documents by `split` (apimachinery's
//! `YAMLReader` rules), each document decoded by `goyaml` (go-yaml v2 and sigs.k8s.io/yaml, YAML
//! 1.1 rules), errors placed at absolute lines.

use super::{goyaml, split, Piece};

/// Documents with more open brackets than this are refused before parsing; see
/// [`split::bracket_depth_exceeded`].
const MAX_BRACKET_DEPTH: usize = 1000;

/// Decodes a YAML stream (without BOM) whose first line is line `first_line` of the input.
pub(super) fn parse(text: &str, first_line: usize) -> Vec<Piece> {
    let mut out = Vec::new();
    for chunk in split::documents(text, first_line) {
        if let Some((line, separator)) = &chunk.bad_separator {
            out.push(Piece::Error {
                line: *line,
                message: format!(
                    "invalid document separator {separator:?} at line {line}: kubectl accepts only a comment after \"---\" (put the content on the next line)"
                ),
            });
            continue;
        }
        if let Some(line) = split::bracket_depth_exceeded(&chunk, MAX_BRACKET_DEPTH) {
            out.push(Piece::Error {
                line,
                message: format!(
                    "invalid YAML: brackets nested more than {MAX_BRACKET_DEPTH} levels deep at line {line}"
                ),
            });
            continue;
        }
        let shift = chunk.first_line - 1;
        match goyaml::decode(&chunk.text) {
            Ok(None) => {}
            Ok(Some(doc)) => {
                if doc.value.is_null() {
                    continue;
                }
                let line = chunk
                    .content_line
                    .unwrap_or(doc.mark.line + chunk.first_line);
                let absolute =
                    |lines: Vec<usize>| lines.into_iter().map(|l| l + chunk.first_line).collect();
                out.push(Piece::Value {
                    line,
                    value: doc.value,
                    items: doc.items.map(absolute),
                    elements: doc.elements.map(|elements| {
                        elements
                            .into_iter()
                            .map(|(l, items)| (l + chunk.first_line, items.map(absolute)))
                            .collect()
                    }),
                });
            }
            Err(mut failure) => {
                failure.count_lines_in(&chunk.text);
                out.push(Piece::Error {
                    line: failure.line() + chunk.first_line,
                    message: failure.message(shift),
                });
            }
        }
    }
    out
}
