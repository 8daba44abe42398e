//! A safe, minimal wrapper around the event parser of `libyaml-rs` (libyaml 0.2.5 transpiled to
//! Rust, already in the tree under yaml_serde). go-yaml v2, which kubectl, Helm and ArgoCD decode
//! manifests with, is a Go port of the same libyaml parser, so both see the same events (scalar
//! values with their style and tag, anchors, aliases, collection starts and ends) for the same text.
//!
//! Only what `goyaml` needs is exposed: events in order with their start positions, and the
//! parser's error (problem and context with positions) when the text is not valid YAML.

use core::ffi::CStr;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// A 0-based position in the parsed text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Mark {
    /// Byte offset.
    pub index: usize,
    pub line: usize,
    /// In characters.
    pub column: usize,
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// One parser event, copied out of libyaml.
#[derive(Debug)]
pub(super) enum Event {
    StreamStart,
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias {
        anchor: String,
    },
    Scalar {
        anchor: Option<String>,
        /// The resolved tag (`tag:yaml.org,2002:str` for `!!str`, `!foo` for `!foo`).
        tag: Option<String>,
        value: String,
        /// libyaml's `plain_implicit`: plain style without a tag, or the `!` tag.
        implicit: bool,
        style: Style,
        /// Where the scalar's text ends.
        end: Mark,
    },
    SequenceStart {
        anchor: Option<String>,
        /// `[a, b]` rather than `- a`.
        flow: bool,
    },
    SequenceEnd,
    MappingStart {
        anchor: Option<String>,
        /// `{a: b}` rather than `a: b`.
        flow: bool,
    },
    MappingEnd,
}

/// libyaml's description of invalid input.
#[derive(Debug, Clone)]
pub(super) struct ParseError {
    pub problem: String,
    pub problem_mark: Mark,
    pub problem_offset: usize,
    pub context: Option<String>,
    pub context_mark: Mark,
}

impl ParseError {
    /// `problem at line L column C, context at line L2 column C2`, with `shift` added to lines
    /// (yaml_serde's wording, so messages stay familiar).
    pub fn message(&self, shift: usize) -> String {
        let at = |m: Mark| format!("line {} column {}", m.line + 1 + shift, m.column + 1);
        let mut out = self.problem.clone();
        if self.problem_mark.line != 0 || self.problem_mark.column != 0 {
            out.push_str(&format!(" at {}", at(self.problem_mark)));
        } else if self.problem_offset != 0 {
            out.push_str(&format!(" at position {}", self.problem_offset));
        }
        if let Some(context) = &self.context {
            out.push_str(&format!(", {context}"));
            if (self.context_mark.line != 0 || self.context_mark.column != 0)
                && (self.context_mark.line, self.context_mark.column)
                    != (self.problem_mark.line, self.problem_mark.column)
            {
                out.push_str(&format!(" at {}", at(self.context_mark)));
            }
        }
        out
    }

    /// The line (0-based) the error is reported at.
    pub fn line(&self) -> usize {
        if self.problem_mark.line != 0 || self.problem_mark.column != 0 {
            self.problem_mark.line
        } else {
            self.context_mark.line
        }
    }
}

/// An event parser over borrowed UTF-8 text.
pub(super) struct Parser<'input> {
    /// Boxed so its address never changes: libyaml keeps pointers into it (its read handler's
    /// data is the parser itself).
    raw: Box<MaybeUninit<sys::yaml_parser_t>>,
    failed: Option<ParseError>,
    input: PhantomData<&'input [u8]>,
}

impl<'input> Parser<'input> {
    pub fn new(input: &'input [u8]) -> Self {
        let mut raw = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
        let parser = raw.as_mut_ptr();
        // SAFETY: `parser` points to writable memory for a `yaml_parser_t`, which
        // `yaml_parser_initialize` fully initialises (it fails only when allocation fails, which
        // aborts in libyaml-rs). The input outlives the parser (`'input`), and the parser never
        // moves (boxed) while libyaml holds pointers to it.
        unsafe {
            if sys::yaml_parser_initialize(parser).fail {
                panic!("libyaml parser initialisation failed (out of memory)");
            }
            sys::yaml_parser_set_input_string(parser, input.as_ptr(), input.len() as u64);
        }
        Parser {
            raw,
            failed: None,
            input: PhantomData,
        }
    }

    /// The next event with its start position, or the parse error (returned again on every call
    /// after the first failure).
    pub fn next(&mut self) -> Result<(Event, Mark), ParseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let parser = self.raw.as_mut_ptr();
        let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new` and has not failed; on success libyaml
        // initialises `event`, which is read (copying every string out) and then deleted once.
        unsafe {
            if sys::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                let err = parse_error(parser);
                self.failed = Some(err.clone());
                return Err(err);
            }
            let event = event.as_mut_ptr();
            let mark = convert_mark((*event).start_mark);
            let converted = convert(&*event);
            sys::yaml_event_delete(event);
            Ok((converted, mark))
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`; deleted exactly once.
        unsafe { sys::yaml_parser_delete(self.raw.as_mut_ptr()) }
    }
}

/// A NUL-terminated libyaml string, or `None` for a null pointer.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string.
unsafe fn optional_string(ptr: *const u8) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: per the function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr.cast()) }.to_bytes();
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// # Safety
/// `event` must be an event libyaml has just produced.
unsafe fn convert(event: &sys::yaml_event_t) -> Event {
    // SAFETY: each union field is read only for the event type that libyaml fills it for.
    unsafe {
        match event.type_ {
            sys::YAML_STREAM_START_EVENT => Event::StreamStart,
            sys::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
            sys::YAML_DOCUMENT_END_EVENT => Event::DocumentEnd,
            sys::YAML_ALIAS_EVENT => Event::Alias {
                anchor: optional_string(event.data.alias.anchor).unwrap_or_default(),
            },
            sys::YAML_SCALAR_EVENT => {
                let scalar = event.data.scalar;
                let bytes = if scalar.value.is_null() {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(scalar.value, scalar.length as usize)
                };
                Event::Scalar {
                    anchor: optional_string(scalar.anchor),
                    tag: optional_string(scalar.tag),
                    value: String::from_utf8_lossy(bytes).into_owned(),
                    implicit: scalar.plain_implicit,
                    style: match scalar.style {
                        sys::YAML_SINGLE_QUOTED_SCALAR_STYLE => Style::SingleQuoted,
                        sys::YAML_DOUBLE_QUOTED_SCALAR_STYLE => Style::DoubleQuoted,
                        sys::YAML_LITERAL_SCALAR_STYLE => Style::Literal,
                        sys::YAML_FOLDED_SCALAR_STYLE => Style::Folded,
                        _ => Style::Plain,
                    },
                    end: convert_mark(event.end_mark),
                }
            }
            sys::YAML_SEQUENCE_START_EVENT => Event::SequenceStart {
                anchor: optional_string(event.data.sequence_start.anchor),
                flow: event.data.sequence_start.style == sys::YAML_FLOW_SEQUENCE_STYLE,
            },
            sys::YAML_SEQUENCE_END_EVENT => Event::SequenceEnd,
            sys::YAML_MAPPING_START_EVENT => Event::MappingStart {
                anchor: optional_string(event.data.mapping_start.anchor),
                flow: event.data.mapping_start.style == sys::YAML_FLOW_MAPPING_STYLE,
            },
            sys::YAML_MAPPING_END_EVENT => Event::MappingEnd,
            _ => Event::StreamEnd,
        }
    }
}

fn convert_mark(m: sys::yaml_mark_t) -> Mark {
    Mark {
        index: m.index as usize,
        line: m.line as usize,
        column: m.column as usize,
    }
}

/// # Safety
/// `parser` must be an initialised parser whose last call failed.
unsafe fn parse_error(parser: *const sys::yaml_parser_t) -> ParseError {
    // SAFETY: per the function's contract; problem and context are static C strings or null.
    unsafe {
        let p = &*parser;
        let mark = convert_mark;
        ParseError {
            problem: optional_string(p.problem.cast())
                .unwrap_or_else(|| "unknown problem parsing YAML content".to_owned()),
            problem_mark: mark(p.problem_mark),
            problem_offset: p.problem_offset as usize,
            context: optional_string(p.context.cast()),
            context_mark: mark(p.context_mark),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn events_and_errors() {
        let mut p = Parser::new(b"a: &x yes\nb: *x\nc: 'q'\n");
        let mut seen = Vec::new();
        loop {
            let (event, mark) = p.next().unwrap();
            let end = matches!(event, Event::StreamEnd);
            seen.push(format!("{event:?}@{}", mark.line));
            if end {
                break;
            }
        }
        assert_eq!(seen.len(), 12, "{seen:?}");
        assert!(seen[4].contains("Some(\"x\")") && seen[4].contains("implicit: true"));
        assert!(seen[8].contains("implicit: false"));

        let mut bad = Parser::new(b"a: [1\n");
        let err = loop {
            match bad.next() {
                Ok((Event::StreamEnd, _)) => panic!("no error"),
                Ok(_) => {}
                Err(err) => break err,
            }
        };
        assert!(
            err.message(0).contains("flow sequence"),
            "{}",
            err.message(0)
        );
        assert!(bad.next().is_err());
    }
}
