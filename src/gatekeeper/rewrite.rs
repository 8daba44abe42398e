//! Rewrites a template's Rego so that every template lives in a namespace of its own, as Gatekeeper
//! does: the template's package `p` becomes `<root>.p`, its libraries' `package lib.x` becomes
//! `<root>.lib.x`, and every reference `data.lib...` becomes `data.<root>.lib...`. Two templates that
//! use the same package name (or the same library name) then never see each other's rules.
//!
//! The rewriting is lexical but Rego-aware: comments and string literals (`"..."` with escapes and
//! `` `raw` ``) are copied untouched, and only whole identifiers are matched. Gatekeeper allows a
//! template no other `data` than `data.lib` and `data.inventory`; any other `data` reference is an error
//! here too, so a template that would read data regate does not give it is rejected when the bundle
//! loads instead of being silently undefined.

/// One lexical piece of Rego source that the rewriting cares about.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    /// Code outside comments and strings.
    Code(&'a str),
    /// A comment, a string or a raw string, copied as it is.
    Verbatim(&'a str),
}

/// Splits `text` into code and verbatim pieces.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let end = match bytes[i] {
            b'#' => text[i..].find('\n').map_or(text.len(), |n| i + n),
            b'`' => text[i + 1..].find('`').map_or(text.len(), |n| i + n + 2),
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                (j + 1).min(text.len())
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if start < i {
            out.push(Piece::Code(&text[start..i]));
        }
        out.push(Piece::Verbatim(&text[i..end]));
        start = end;
        i = end;
    }
    if start < text.len() {
        out.push(Piece::Code(&text[start..]));
    }
    out
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The `data` references of a piece of code: (byte offset of `data`, the dotted path after it).
fn data_references(code: &str) -> Vec<(usize, Vec<&str>)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(at) = code[search..].find("data") {
        let at = search + at;
        search = at + 4;
        let before_ok = at == 0 || !(is_ident_char(bytes[at - 1]) || bytes[at - 1] == b'.');
        let after_ok = bytes.get(at + 4).is_none_or(|b| !is_ident_char(*b));
        if !before_ok || !after_ok {
            continue;
        }
        let mut path = Vec::new();
        let mut j = at + 4;
        while bytes.get(j) == Some(&b'.') {
            let begin = j + 1;
            let mut end = begin;
            while end < bytes.len() && is_ident_char(bytes[end]) {
                end += 1;
            }
            if end == begin {
                break;
            }
            path.push(&code[begin..end]);
            j = end;
        }
        found.push((at, path));
    }
    found
}

/// What a template's Rego may not do, found while rewriting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteError {
    /// 1-based line in the Rego text.
    pub line: usize,
    pub message: String,
}

/// Rewrites one module of a template. `root` is the template's namespace (`gatekeeper.templates.k8s…`,
/// without `data.`); `library` is true for an entry of `libs`, whose package must start with `lib.`.
/// Returns the rewritten text and the module's original package path.
pub fn rewrite_module(
    text: &str,
    root: &str,
    library: bool,
) -> Result<(String, String), RewriteError> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut package = None;
    let mut offset = 0;
    for piece in pieces(text) {
        let code = match piece {
            Piece::Verbatim(v) => {
                out.push_str(v);
                offset += v.len();
                continue;
            }
            Piece::Code(code) => code,
        };
        let line_of = |at: usize| text[..offset + at].matches('\n').count() + 1;
        let mut copied = 0;
        if package.is_none() {
            if let Some((at, path, end)) = package_clause(code) {
                if library && !path.starts_with("lib.") && path != "lib" {
                    return Err(RewriteError {
                        line: line_of(at),
                        message: format!(
                            "a library's package must be lib or start with lib. (Gatekeeper's rule); found package {path}"
                        ),
                    });
                }
                out.push_str(&code[..at]);
                out.push_str(&format!("package {root}.{path}"));
                copied = end;
                package = Some(path);
            }
        }
        for (at, path) in data_references(code) {
            if at < copied {
                continue;
            }
            match path.first().copied() {
                Some("lib") => {
                    out.push_str(&code[copied..at]);
                    out.push_str(&format!("data.{root}"));
                    copied = at + 4;
                }
                Some("inventory") => {}
                _ => {
                    return Err(RewriteError {
                        line: line_of(at),
                        message: format!(
                            "data.{} is not available to a template: Gatekeeper gives templates data.inventory and their libs (data.lib) only",
                            path.join(".")
                        ),
                    })
                }
            }
        }
        out.push_str(&code[copied..]);
        offset += code.len();
    }
    match package {
        Some(p) => Ok((out, p)),
        None => Err(RewriteError {
            line: 1,
            message: "no package clause".into(),
        }),
    }
}

/// The first `package a.b.c` clause of a piece of code: (offset, path, end offset).
fn package_clause(code: &str) -> Option<(usize, String, usize)> {
    let bytes = code.as_bytes();
    let mut search = 0;
    while let Some(found) = code[search..].find("package") {
        let at = search + found;
        search = at + 7;
        let line_start = code[..at].rfind('\n').map_or(0, |n| n + 1);
        if !code[line_start..at].trim().is_empty() {
            continue;
        }
        let rest = &code[at + 7..];
        let path_start = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if path_start == 0 {
            continue;
        }
        let path_end = rest[path_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(rest.len(), |n| path_start + n);
        let path = &rest[path_start..path_end];
        if path.is_empty() || !bytes[at + 7 + path_start].is_ascii_alphabetic() {
            return None;
        }
        return Some((at, path.to_string(), at + 7 + path_end));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_and_library_references_move_under_the_root() {
        let text = "package k8srequiredlabels\n\nimport data.lib.helpers\n\nviolation[{\"msg\": msg}] {\n  data.lib.helpers.missing(input.review.object)\n  msg := \"data.lib.x stays in a string\" # data.lib in a comment\n}\n";
        let (out, package) = rewrite_module(text, "gatekeeper.templates.t1", false).unwrap();
        assert_eq!(package, "k8srequiredlabels");
        assert_eq!(
            out,
            "package gatekeeper.templates.t1.k8srequiredlabels\n\nimport data.gatekeeper.templates.t1.lib.helpers\n\nviolation[{\"msg\": msg}] {\n  data.gatekeeper.templates.t1.lib.helpers.missing(input.review.object)\n  msg := \"data.lib.x stays in a string\" # data.lib in a comment\n}\n"
        );
    }

    #[test]
    fn a_library_must_be_under_lib() {
        let (out, package) = rewrite_module(
            "package lib.helpers\nx := 1\n",
            "gatekeeper.templates.t1",
            true,
        )
        .unwrap();
        assert_eq!(package, "lib.helpers");
        assert_eq!(out, "package gatekeeper.templates.t1.lib.helpers\nx := 1\n");
        let err = rewrite_module("package helpers\n", "r", true).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("lib"), "{}", err.message);
    }

    #[test]
    fn inventory_is_kept_and_other_data_is_refused() {
        let text = "package p\nx := data.inventory.cluster\ny := data.other.thing\n";
        let err = rewrite_module(text, "r", false).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("data.other.thing"), "{}", err.message);
        let (out, _) =
            rewrite_module("package p\nx := data.inventory.cluster\n", "r", false).unwrap();
        assert_eq!(out, "package r.p\nx := data.inventory.cluster\n");
    }

    #[test]
    fn identifiers_that_only_contain_data_are_not_references() {
        let text = "package p\nmetadata := input.metadata\nx := y.data.lib\nmydata := 1\n";
        let (out, _) = rewrite_module(text, "r", false).unwrap();
        assert_eq!(
            out,
            "package r.p\nmetadata := input.metadata\nx := y.data.lib\nmydata := 1\n"
        );
    }

    #[test]
    fn raw_strings_and_escaped_quotes_are_verbatim() {
        let text = "package p\na := `data.lib.x`\nb := \"\\\"data.lib\\\"\"\nc := data.lib.q\n";
        let (out, _) = rewrite_module(text, "r", false).unwrap();
        assert_eq!(
            out,
            "package r.p\na := `data.lib.x`\nb := \"\\\"data.lib\\\"\"\nc := data.r.lib.q\n"
        );
    }

    #[test]
    fn a_module_without_package_is_an_error() {
        assert!(rewrite_module("# only a comment\n", "r", false).is_err());
    }
}
