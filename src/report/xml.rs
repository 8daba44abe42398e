//! XML 1.0 escaping for the hand-written JUnit writer.
//!
//! Escapes `& < > " '` everywhere, and replaces every character that XML 1.0 forbids
//! (C0 controls other than tab, newline and carriage return; U+FFFE; U+FFFF) with U+FFFD, so
//! the output is always well-formed whatever a policy message or file name contains.
//! In attribute values tab, newline and carriage return are written as character references
//! so parsers do not normalise them to spaces; in text only carriage return is.

use std::fmt::Write as _;

/// The character written in place of one XML 1.0 forbids.
const REPLACEMENT: char = '\u{FFFD}';

fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' if attribute => {
                // Infallible: writing to a String.
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if allowed(c) => out.push(c),
            _ => out.push(REPLACEMENT),
        }
    }
    out
}

/// Escapes `s` for use as element text.
pub(crate) fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes `s` for use inside a double- or single-quoted attribute value.
pub(crate) fn attr(s: &str) -> String {
    escape(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("plain", "plain", "plain")]
    #[case("<&>\"'", "&lt;&amp;&gt;&quot;&apos;", "&lt;&amp;&gt;&quot;&apos;")]
    #[case("a\nb\tc", "a\nb\tc", "a&#10;b&#9;c")]
    #[case("a\r\nb", "a&#13;\nb", "a&#13;&#10;b")]
    #[case(
        "nul\u{0}esc\u{1b}",
        "nul\u{FFFD}esc\u{FFFD}",
        "nul\u{FFFD}esc\u{FFFD}"
    )]
    #[case(
        "\u{FFFE}\u{FFFF}\u{FFFD}",
        "\u{FFFD}\u{FFFD}\u{FFFD}",
        "\u{FFFD}\u{FFFD}\u{FFFD}"
    )]
    #[case("]]>", "]]&gt;", "]]&gt;")]
    #[case("ünï 🚀 \u{7f}", "ünï 🚀 \u{7f}", "ünï 🚀 \u{7f}")]
    fn escapes(#[case] input: &str, #[case] want_text: &str, #[case] want_attr: &str) {
        assert_eq!(text(input), want_text);
        assert_eq!(attr(input), want_attr);
    }

    #[test]
    fn escaped_values_parse_back() {
        let input = "x<&>\"'\t\r\ny\u{1}";
        let doc = format!(
            "<a v=\"{}\" w='{}'>{}</a>",
            attr(input),
            attr(input),
            text(input)
        );
        let parsed = roxmltree::Document::parse(&doc).expect("well-formed");
        let root = parsed.root_element();
        let want = "x<&>\"'\t\r\ny\u{FFFD}";
        assert_eq!(root.attribute("v"), Some(want));
        assert_eq!(root.attribute("w"), Some(want));
        assert_eq!(root.text(), Some(want));
    }
}
