//! One YAML document decoded exactly as kubectl, Helm and ArgoCD decode it: go-yaml v2
//! (`go.yaml.in/yaml/v2`, YAML 1.1 rules) unmarshalling into `interface{}`, then
//! `sigs.k8s.io/yaml` converting the result to JSON (`yamlToJSONTarget` without a target type).
//!
//! The events come from libyaml (`super::libyaml`), the parser go-yaml v2 is a port of; the
//! node tree, scalar resolution (`resolve.go`), merge keys, aliases and the conversion to JSON are
//! ports of go-yaml's `decode.go`/`resolve.go` and sigs.k8s.io/yaml's `yaml.go`:
//! - plain scalars resolve by go-yaml's table: `y Y yes Yes YES on On ON true True TRUE` are
//!   `true`, `n N no No NO off Off OFF false False FALSE` are `false`, `~ null Null NULL` and
//!   the empty scalar are null; integers in Go syntax (`0x1F`, `0o17`, `017` octal, `0b101`,
//!   `+1`, `1_000`); floats by `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` and `.inf`,
//!   `.nan`; timestamps stay strings; `1:30` (sexagesimal) stays a string;
//! - quoted and block scalars are strings; `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` and
//!   `!!timestamp` force (and check) a type; `!!binary` is base64-decoded; other tags are ignored;
//! - a repeated key replaces the earlier value (go-yaml is not strict here);
//! - merge keys (`<<: *a`, `<<: [*a, *b]`, `<<: {..}`) insert the merged entries at the place of
//!   the `<<` key, so whatever comes later in the mapping wins, including a merged value over an
//!   explicit key written before `<<`; in a list of merged mappings the earlier ones win;
//! - JSON keys: integers and booleans as text, floats with 32-bit precision (`%g`), null and
//!   unsigned 64-bit keys are errors; two keys that become the same text are an error here (Go
//!   keeps one of them at random);
//! - numbers print as Go's `encoding/json` prints them (a float without fraction below 1e21 is an
//!   integer), `.inf` and `.nan` values are errors, invalid UTF-8 (from `!!binary`) becomes U+FFFD;
//! - aliases are bounded by go-yaml's "excessive aliasing" ratio.
//!
//! Two bounds are regate's own: collections nest at most [`MAX_DEPTH`] levels in the text and the
//! decoder recurses at most [`MAX_DECODE_DEPTH`] levels (aliases and merges included). go-yaml
//! allows 10,000 levels; no manifest comes near either bound.

use std::collections::HashMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use super::libyaml::{Event, Mark, ParseError, Parser, Style};

/// Deepest nesting of collections in a document's text.
pub(super) const MAX_DEPTH: usize = 128;
/// Deepest recursion of the decoder (collections, aliases and merges).
const MAX_DECODE_DEPTH: usize = 512;

const PREFIX: &str = "tag:yaml.org,2002:";
const STR: &str = "tag:yaml.org,2002:str";
const BOOL: &str = "tag:yaml.org,2002:bool";
const INT: &str = "tag:yaml.org,2002:int";
const FLOAT: &str = "tag:yaml.org,2002:float";
const NULL: &str = "tag:yaml.org,2002:null";
const TIMESTAMP: &str = "tag:yaml.org,2002:timestamp";
const BINARY: &str = "tag:yaml.org,2002:binary";
const MERGE: &str = "tag:yaml.org,2002:merge";

#[derive(Debug)]
enum Kind {
    Scalar {
        value: String,
        tag: Option<String>,
        implicit: bool,
    },
    Sequence {
        items: Vec<usize>,
        flow: bool,
    },
    /// Keys and values alternating.
    Mapping(Vec<usize>),
    Alias {
        name: String,
        target: usize,
    },
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    mark: Mark,
}

/// Why a document could not be decoded.
#[derive(Debug)]
pub(super) enum Failure {
    /// libyaml rejected the text.
    Parse(ParseError),
    /// go-yaml rejected the document (unknown anchor, bad merge, bad `!!binary`, ...).
    Yaml { mark: Mark, what: String },
    /// sigs.k8s.io/yaml or encoding/json could not turn it into JSON.
    Json {
        mark: Mark,
        reversed_path: Vec<String>,
        what: String,
    },
}

impl Failure {
    fn yaml(mark: Mark, what: impl Into<String>) -> Self {
        Failure::Yaml {
            mark,
            what: what.into(),
        }
    }

    fn json(mark: Mark, what: impl Into<String>) -> Self {
        Failure::Json {
            mark,
            reversed_path: Vec::new(),
            what: what.into(),
        }
    }

    fn within(mut self, segment: impl FnOnce() -> String) -> Self {
        if let Failure::Json { reversed_path, .. } = &mut self {
            reversed_path.push(segment());
        }
        self
    }

    /// Counts lines by `\n` alone, as kubectl and editors do (libyaml also breaks lines at a lone
    /// `\r`, U+0085, U+2028 and U+2029), from each position's byte offset in `text`.
    pub fn count_lines_in(&mut self, text: &str) {
        let fix = |mark: &mut Mark| {
            if let Some(before) = text.get(..mark.index) {
                mark.line = before.bytes().filter(|&b| b == b'\n').count();
            }
        };
        match self {
            Failure::Parse(err) => {
                fix(&mut err.problem_mark);
                fix(&mut err.context_mark);
            }
            Failure::Yaml { mark, .. } | Failure::Json { mark, .. } => fix(mark),
        }
    }

    /// The 0-based line in the document's text.
    pub fn line(&self) -> usize {
        match self {
            Failure::Parse(err) => err.line(),
            Failure::Yaml { mark, .. } | Failure::Json { mark, .. } => mark.line,
        }
    }

    /// The message, with `shift` added to every line number in it.
    pub fn message(&self, shift: usize) -> String {
        match self {
            Failure::Parse(err) => format!("invalid YAML: {}", err.message(shift)),
            Failure::Yaml { mark, what } => format!(
                "invalid YAML: {what} at line {} column {}",
                mark.line + 1 + shift,
                mark.column + 1
            ),
            Failure::Json {
                reversed_path,
                what,
                ..
            } => {
                if reversed_path.is_empty() {
                    return format!("cannot convert YAML to JSON: {what}");
                }
                let mut path = String::new();
                for segment in reversed_path.iter().rev() {
                    if !segment.starts_with('[') && !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(segment);
                }
                format!("cannot convert YAML to JSON at {path}: {what}")
            }
        }
    }
}

/// A decoded document.
#[derive(Debug)]
pub(super) struct Decoded {
    pub value: Value,
    /// Where the root node starts (0-based, in the document's text).
    pub mark: Mark,
    /// For a root mapping: the lines (0-based) of the entries of its `items` sequence.
    pub items: Option<Vec<usize>>,
    /// For a root flow sequence (`[...]`, e.g. a JSON array): each element's line and the lines
    /// of its `items` entries.
    pub elements: Option<Vec<(usize, Option<Vec<usize>>)>>,
}

/// Decodes the first document of `text` as go-yaml's `Unmarshal` does (the rest of the text, e.g.
/// after a `...` line, is never looked at). `None` when the text holds no document.
pub(super) fn decode(text: &str) -> Result<Option<Decoded>, Failure> {
    let Some(tree) = parse_tree(text)? else {
        return Ok(None);
    };
    let mut decoder = Decoder {
        nodes: &tree.nodes,
        decode_count: 1, // go-yaml counts the document node too
        alias_count: 0,
        alias_depth: 0,
        active: vec![false; tree.nodes.len()],
        nan_keys: 0,
    };
    let value = decoder.value(tree.root, 0)?;
    let mut tree = tree;
    tree.count_lines_in(text);
    let root = &tree.nodes[tree.root];
    let (items, elements) = match &root.kind {
        Kind::Mapping(_) => (tree.items_lines(tree.root), None),
        Kind::Sequence { items, flow: true } => (
            None,
            Some(
                items
                    .iter()
                    .map(|&id| (tree.nodes[id].mark.line, tree.items_lines(id)))
                    .collect(),
            ),
        ),
        _ => (None, None),
    };
    Ok(Some(Decoded {
        value,
        mark: root.mark,
        items,
        elements,
    }))
}

/// How many `\'` escapes [`parse_tree`] rewrites before giving up.
const MAX_REWRITES: usize = 100;

/// The node tree of the first document in `text`.
///
/// go-yaml's scanner accepts `\'` in a double-quoted scalar (a single quote), which libyaml 0.2.5
/// rejects ("found unknown escape character"); the escape is rewritten to `\x27`, which both read
/// as the same quote, on the same line, and the text parsed again.
fn parse_tree(text: &str) -> Result<Option<Tree>, Failure> {
    let mut rewritten: Option<String> = None;
    for _ in 0..MAX_REWRITES {
        let current = rewritten.as_deref().unwrap_or(text);
        match Tree::parse(current) {
            Err(Failure::Parse(err))
                if err.problem == "found unknown escape character"
                    && current
                        .get(err.problem_mark.index..)
                        .is_some_and(|rest| rest.starts_with("\\'")) =>
            {
                let mut next = current.to_owned();
                let at = err.problem_mark.index;
                next.replace_range(at..at + 2, "\\x27");
                rewritten = Some(next);
            }
            other => return other,
        }
    }
    Tree::parse(rewritten.as_deref().unwrap_or(text))
}

/// Whether a double-quoted scalar's source text uses the `\/` escape, which libyaml 0.2.5 reads
/// as `/` and go-yaml v2 rejects.
fn has_slash_escape(raw: &str) -> bool {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next() == Some('/') {
            return true;
        }
    }
    false
}

/// go-yaml's node tree of one document.
struct Tree {
    nodes: Vec<Node>,
    root: usize,
}

impl Tree {
    fn parse(text: &str) -> Result<Option<Tree>, Failure> {
        let mut parser = Parser::new(text.as_bytes());
        let mut next = || parser.next().map_err(Failure::Parse);
        let (first, mark) = next()?;
        if !matches!(first, Event::StreamStart) {
            return Err(Failure::yaml(mark, "expected the stream to start"));
        }
        match next()? {
            (Event::StreamEnd, _) => return Ok(None),
            (Event::DocumentStart, _) => {}
            (_, mark) => return Err(Failure::yaml(mark, "expected a document")),
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut anchors: HashMap<String, usize> = HashMap::new();
        // Open collections, and whether each is a flow collection.
        let mut open: Vec<(usize, bool)> = Vec::new();
        let root = loop {
            let (event, mark) = next()?;
            let in_flow = open.last().is_some_and(|&(_, flow)| flow);
            let (kind, anchor, opens) = match event {
                Event::Scalar {
                    anchor,
                    tag,
                    value,
                    implicit,
                    style,
                    end,
                } => {
                    // libyaml 0.2.5 lets a plain scalar in a flow collection contain `?`; go-yaml
                    // ends the scalar there and then fails on the `?`.
                    if style == Style::Plain && in_flow && value.contains('?') {
                        return Err(Failure::yaml(
                            mark,
                            "did not find expected ',' or the end of the collection: kubectl's YAML parser ends a plain scalar at '?' inside [...] or {...} (quote the value)",
                        ));
                    }
                    if style == Style::DoubleQuoted
                        && text
                            .get(mark.index..end.index)
                            .is_some_and(has_slash_escape)
                    {
                        return Err(Failure::yaml(
                            mark,
                            "found unknown escape character: kubectl's YAML parser has no \\/ escape (write / alone)",
                        ));
                    }
                    (
                        Kind::Scalar {
                            value,
                            tag,
                            implicit,
                        },
                        anchor,
                        None,
                    )
                }
                Event::SequenceStart { anchor, flow } => (
                    Kind::Sequence {
                        items: Vec::new(),
                        flow,
                    },
                    anchor,
                    Some(flow),
                ),
                Event::MappingStart { anchor, flow } => {
                    (Kind::Mapping(Vec::new()), anchor, Some(flow))
                }
                Event::Alias { anchor } => {
                    let Some(&target) = anchors.get(&anchor) else {
                        return Err(Failure::yaml(
                            mark,
                            format!("unknown anchor '{anchor}' referenced"),
                        ));
                    };
                    (
                        Kind::Alias {
                            name: anchor,
                            target,
                        },
                        None,
                        None,
                    )
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some((done, _)) = open.pop() else {
                        return Err(Failure::yaml(mark, "unexpected end of a collection"));
                    };
                    if open.is_empty() {
                        break done;
                    }
                    continue;
                }
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart
                | Event::DocumentEnd => {
                    return Err(Failure::yaml(mark, "unexpected event in a document"));
                }
            };
            let id = nodes.len();
            nodes.push(Node { kind, mark });
            if let Some(anchor) = anchor {
                anchors.insert(anchor, id);
            }
            if let Some(&(parent, _)) = open.last() {
                match &mut nodes[parent].kind {
                    Kind::Sequence { items, .. } => items.push(id),
                    Kind::Mapping(children) => children.push(id),
                    _ => {}
                }
            }
            if let Some(flow) = opens {
                open.push((id, flow));
                if open.len() > MAX_DEPTH {
                    return Err(Failure::yaml(
                        mark,
                        format!("collections nested more than {MAX_DEPTH} levels deep"),
                    ));
                }
            } else if open.is_empty() {
                break id;
            }
        };
        match next()? {
            (Event::DocumentEnd, _) => Ok(Some(Tree { nodes, root })),
            (_, mark) => Err(Failure::yaml(mark, "expected the document to end")),
        }
    }

    /// Counts node lines by `\n` alone (see [`Failure::count_lines_in`]).
    fn count_lines_in(&mut self, text: &str) {
        if !text.contains(['\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            return; // libyaml saw the same line breaks
        }
        let newlines: Vec<usize> = text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        for node in &mut self.nodes {
            node.mark.line = newlines.partition_point(|&p| p < node.mark.index);
        }
    }

    fn target(&self, id: usize) -> usize {
        match self.nodes[id].kind {
            Kind::Alias { target, .. } => target,
            _ => id,
        }
    }

    /// Lines of the entries of the `items` sequence of mapping `id` (the last `items` key).
    fn items_lines(&self, id: usize) -> Option<Vec<usize>> {
        let Kind::Mapping(children) = &self.nodes[self.target(id)].kind else {
            return None;
        };
        let value = children.chunks(2).rev().find_map(|pair| {
            let [key, value] = pair else { return None };
            match &self.nodes[self.target(*key)].kind {
                Kind::Scalar { value: k, .. } if k == "items" => Some(*value),
                _ => None,
            }
        })?;
        match &self.nodes[self.target(value)].kind {
            Kind::Sequence { items, .. } => {
                Some(items.iter().map(|&i| self.nodes[i].mark.line).collect())
            }
            _ => None,
        }
    }
}

/// A mapping key as go-yaml holds it in a `map[interface{}]interface{}`: typed, so `1` and `"1"`
/// are different keys.
#[derive(Debug, Clone)]
enum Key {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    /// The value, and a serial number that tells NaN keys apart (a NaN never equals a key).
    Float(f64, u64),
    Str(String),
}

/// Go's map key equality: `0.0 == -0.0`, NaN equals nothing (here: only itself).
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Key::Null, Key::Null) => true,
            (Key::Bool(a), Key::Bool(b)) => a == b,
            (Key::Int(a), Key::Int(b)) => a == b,
            (Key::Uint(a), Key::Uint(b)) => a == b,
            (Key::Float(a, x), Key::Float(b, y)) => {
                if a.is_nan() || b.is_nan() {
                    a.is_nan() && b.is_nan() && x == y
                } else {
                    a == b
                }
            }
            (Key::Str(a), Key::Str(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Key::Null => {}
            Key::Bool(b) => b.hash(state),
            Key::Int(i) => i.hash(state),
            Key::Uint(u) => u.hash(state),
            Key::Float(f, serial) => {
                if f.is_nan() {
                    serial.hash(state);
                } else if *f == 0.0 {
                    0u64.hash(state);
                } else {
                    f.to_bits().hash(state);
                }
            }
            Key::Str(s) => s.hash(state),
        }
    }
}

/// A resolved scalar.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

struct Decoder<'a> {
    nodes: &'a [Node],
    decode_count: u64,
    alias_count: u64,
    alias_depth: usize,
    /// Alias nodes being expanded (go-yaml's `d.aliases`).
    active: Vec<bool>,
    nan_keys: u64,
}

/// go-yaml's `allowedAliasRatio`.
fn allowed_alias_ratio(decode_count: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decode_count <= LOW {
        0.99
    } else if decode_count >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decode_count - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

impl Decoder<'_> {
    /// go-yaml's bookkeeping at the start of every `unmarshal`.
    fn count(&mut self, id: usize, depth: usize) -> Result<(), Failure> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
        }
        if self.alias_count > 100
            && self.decode_count > 1000
            && self.alias_count as f64 / self.decode_count as f64
                > allowed_alias_ratio(self.decode_count)
        {
            return Err(Failure::yaml(
                self.nodes[id].mark,
                "document contains excessive aliasing",
            ));
        }
        if depth > MAX_DECODE_DEPTH {
            return Err(Failure::yaml(
                self.nodes[id].mark,
                format!(
                    "collections, aliases and merge keys nested more than {MAX_DECODE_DEPTH} levels deep"
                ),
            ));
        }
        Ok(())
    }

    /// Runs `f` on an alias's target, refusing an alias that contains itself.
    fn through_alias<T>(
        &mut self,
        id: usize,
        f: impl FnOnce(&mut Self) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        if self.active[id] {
            let name = match &self.nodes[id].kind {
                Kind::Alias { name, .. } => name.as_str(),
                _ => "",
            };
            return Err(Failure::yaml(
                self.nodes[id].mark,
                format!("anchor '{name}' value contains itself"),
            ));
        }
        self.active[id] = true;
        self.alias_depth += 1;
        let out = f(self);
        self.alias_depth -= 1;
        self.active[id] = false;
        out
    }

    fn value(&mut self, id: usize, depth: usize) -> Result<Value, Failure> {
        self.count(id, depth)?;
        let node = &self.nodes[id];
        match &node.kind {
            Kind::Alias { target, .. } => {
                let target = *target;
                self.through_alias(id, |d| d.value(target, depth + 1))
            }
            Kind::Scalar {
                value,
                tag,
                implicit,
            } => {
                let scalar = scalar(value, tag.as_deref(), *implicit)
                    .map_err(|what| Failure::yaml(node.mark, what))?;
                scalar_json(scalar).map_err(|what| Failure::json(node.mark, what))
            }
            Kind::Sequence { items, .. } => {
                let mut out = Vec::with_capacity(items.len());
                for (i, &item) in items.iter().enumerate() {
                    out.push(
                        self.value(item, depth + 1)
                            .map_err(|e| e.within(|| format!("[{i}]")))?,
                    );
                }
                Ok(Value::Array(out))
            }
            Kind::Mapping(_) => {
                let mut map = IndexMap::new();
                self.fill_map(id, &mut map, depth)?;
                self.map_json(map, node.mark)
            }
        }
    }

    /// go-yaml's `mapping` into an existing map: entries in order, later ones replacing earlier.
    fn fill_map(
        &mut self,
        id: usize,
        map: &mut IndexMap<Key, Value>,
        depth: usize,
    ) -> Result<(), Failure> {
        let Kind::Mapping(children) = &self.nodes[id].kind else {
            return Ok(());
        };
        for pair in children.chunks(2) {
            let [key, value] = *pair else { continue };
            if self.is_merge(key) {
                self.merge(value, map, depth + 1)?;
                continue;
            }
            let key = self.key(key, depth + 1)?;
            let value = self
                .value(value, depth + 1)
                .map_err(|e| e.within(|| key_label(&key)))?;
            if let Key::Float(..) = key {
                // Go replaces the stored key too (`-0` after `0` is printed `-0`).
                map.swap_remove(&key);
            }
            map.insert(key, value);
        }
        Ok(())
    }

    fn is_merge(&self, id: usize) -> bool {
        matches!(&self.nodes[id].kind,
            Kind::Scalar { value, tag, implicit }
                if value == "<<" && (*implicit || tag.as_deref() == Some(MERGE)))
    }

    /// go-yaml's `merge`.
    fn merge(
        &mut self,
        id: usize,
        map: &mut IndexMap<Key, Value>,
        depth: usize,
    ) -> Result<(), Failure> {
        let want_map = |mark| {
            Failure::yaml(
                mark,
                "map merge requires map or sequence of maps as the value",
            )
        };
        let is_mapping = |d: &Self, id: usize| match &d.nodes[id].kind {
            Kind::Mapping(_) => true,
            Kind::Alias { target, .. } => matches!(d.nodes[*target].kind, Kind::Mapping(_)),
            _ => false,
        };
        match &self.nodes[id].kind {
            Kind::Mapping(_) | Kind::Alias { .. } => {
                if !is_mapping(self, id) {
                    return Err(want_map(self.nodes[id].mark));
                }
                self.merge_into(id, map, depth)
            }
            Kind::Sequence { items, .. } => {
                for &item in items.iter().rev() {
                    if !is_mapping(self, item) {
                        return Err(want_map(self.nodes[item].mark));
                    }
                    self.merge_into(item, map, depth)?;
                }
                Ok(())
            }
            Kind::Scalar { .. } => Err(want_map(self.nodes[id].mark)),
        }
    }

    /// go-yaml's `unmarshal` of a mapping (or an alias of one) into an existing map.
    fn merge_into(
        &mut self,
        id: usize,
        map: &mut IndexMap<Key, Value>,
        depth: usize,
    ) -> Result<(), Failure> {
        self.count(id, depth)?;
        match &self.nodes[id].kind {
            Kind::Alias { target, .. } => {
                let target = *target;
                self.through_alias(id, |d| d.merge_into(target, map, depth + 1))
            }
            _ => self.fill_map(id, map, depth),
        }
    }

    /// A mapping key, decoded like any node; collections cannot be keys.
    fn key(&mut self, id: usize, depth: usize) -> Result<Key, Failure> {
        self.count(id, depth)?;
        let node = &self.nodes[id];
        match &node.kind {
            Kind::Alias { target, .. } => {
                let target = *target;
                self.through_alias(id, |d| d.key(target, depth + 1))
            }
            Kind::Scalar {
                value,
                tag,
                implicit,
            } => {
                let scalar = scalar(value, tag.as_deref(), *implicit)
                    .map_err(|what| Failure::yaml(node.mark, what))?;
                Ok(match scalar {
                    Scalar::Null => Key::Null,
                    Scalar::Bool(b) => Key::Bool(b),
                    Scalar::Int(i) => Key::Int(i),
                    Scalar::Uint(u) => Key::Uint(u),
                    Scalar::Float(f) if f.is_nan() => {
                        self.nan_keys += 1;
                        Key::Float(f, self.nan_keys)
                    }
                    Scalar::Float(f) => Key::Float(f, 0),
                    Scalar::Str(s) => Key::Str(s),
                })
            }
            Kind::Sequence { .. } | Kind::Mapping(_) => Err(Failure::yaml(
                node.mark,
                "invalid map key: a sequence or mapping cannot be a key",
            )),
        }
    }

    /// sigs.k8s.io/yaml's conversion of a decoded map to a JSON object.
    fn map_json(&self, map: IndexMap<Key, Value>, mark: Mark) -> Result<Value, Failure> {
        let mut out = Map::new();
        let mut typed: HashMap<String, Key> = HashMap::new();
        let check_collisions = map.keys().any(|k| !matches!(k, Key::Str(_)));
        for (key, value) in map {
            let text = key_json(&key).map_err(|what| Failure::json(mark, what))?;
            if check_collisions {
                if let Some(first) = typed.get(&text) {
                    return Err(Failure::json(
                        mark,
                        format!(
                            "mapping keys {} and {} both become the JSON key {text:?} (kubectl keeps either)",
                            describe_key(first),
                            describe_key(&key)
                        ),
                    ));
                }
                typed.insert(text.clone(), key);
            }
            out.insert(text, value);
        }
        Ok(Value::Object(out))
    }
}

/// A key as written in messages.
fn key_label(key: &Key) -> String {
    match key {
        Key::Str(s) => s.clone(),
        Key::Null => "null".to_owned(),
        Key::Bool(b) => b.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Float(f, _) => float_key(*f),
    }
}

/// A key with its type, for messages.
fn describe_key(key: &Key) -> String {
    match key {
        Key::Str(s) => format!("{s:?} (a string)"),
        Key::Null => "null".to_owned(),
        Key::Bool(b) => format!("{b} (a boolean)"),
        Key::Int(_) | Key::Uint(_) => format!("{} (an integer)", key_label(key)),
        Key::Float(..) => format!("{} (a float)", key_label(key)),
    }
}

/// sigs.k8s.io/yaml's key conversion.
fn key_json(key: &Key) -> Result<String, String> {
    match key {
        Key::Str(s) => Ok(s.clone()),
        Key::Bool(b) => Ok(b.to_string()),
        Key::Int(i) => Ok(i.to_string()),
        Key::Float(f, _) => Ok(float_key(*f)),
        Key::Null => Err(
            "a mapping key is null; keys must be strings, numbers or booleans".to_owned(),
        ),
        Key::Uint(u) => Err(format!(
            "mapping key {u} is beyond the signed 64-bit range, which sigs.k8s.io/yaml does not accept as a key"
        )),
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 32)` with `.inf`, `-.inf` and `.nan` as go-yaml spells them.
fn float_key(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    let f = f as f32;
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Shortest digits that round-trip as f32, e.g. "1.2345679e8".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let dp = exp + 1; // digits before the decimal point
    let nd = digits.len() as i32;
    let mut out = String::from(sign);
    if dp <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-dp) as usize));
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        out.push_str(&"0".repeat((dp - nd) as usize));
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// A scalar value as JSON, as encoding/json prints it and serde_json reads it back.
fn scalar_json(scalar: Scalar) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::Number(i.into()),
        Scalar::Uint(u) => Value::Number(u.into()),
        Scalar::Str(s) => Value::String(s),
        Scalar::Float(f) => Value::Number(float_json(f).ok_or_else(|| {
            let name = if f.is_nan() {
                ".nan"
            } else if f > 0.0 {
                ".inf"
            } else {
                "-.inf"
            };
            format!("{name} cannot be represented in JSON")
        })?),
    })
}

/// The number a JSON reader sees where encoding/json printed float `f`: below 1e21 a float without
/// fraction is printed as an integer made of its shortest digits and zeros (`1e3` → `1000`,
/// 2^63 → `9223372036854776000`), which is an integer when it fits 64 bits; `-0` stays a float.
pub(super) fn float_json(f: f64) -> Option<Number> {
    if !f.is_finite() {
        return None;
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            Number::from_f64(f)
        } else {
            Some(0u64.into())
        };
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let sci = format!("{:e}", f.abs());
        let (mantissa, exp) = sci.split_once('e')?;
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let zeros = usize::try_from(exp.parse::<i64>().ok()? + 1).ok()?;
        let text = format!("{digits:0<zeros$}");
        let integer = if f > 0.0 {
            text.parse::<u64>().ok().map(Number::from)
        } else {
            format!("-{text}").parse::<i64>().ok().map(Number::from)
        };
        if integer.is_some() {
            return integer;
        }
    }
    Number::from_f64(f)
}

/// go-yaml's `decoder.scalar` into an `interface{}`.
fn scalar(value: &str, tag: Option<&str>, implicit: bool) -> Result<Scalar, String> {
    if tag.is_none() && !implicit {
        return Ok(Scalar::Str(value.to_owned()));
    }
    let (rtag, resolved) = resolve(tag.unwrap_or(""), value)?;
    if rtag == BINARY {
        return binary(value).map(Scalar::Str);
    }
    Ok(resolved)
}

/// `!!binary`: base64 as Go's `StdEncoding.DecodeString` reads it (padding required, line breaks
/// ignored), the bytes as a Go string that encoding/json later prints with U+FFFD for each byte
/// that is not UTF-8.
fn binary(value: &str) -> Result<String, String> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let compact: String = value.chars().filter(|&c| c != '\r' && c != '\n').collect();
    let bytes = ENGINE
        .decode(compact)
        .map_err(|_| "!!binary value contains invalid base64 data".to_owned())?;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{fffd}');
        }
    }
    Ok(out)
}

fn short_tag(tag: &str) -> String {
    match tag.strip_prefix(PREFIX) {
        Some(rest) => format!("!!{rest}"),
        None => tag.to_owned(),
    }
}

/// go-yaml's `resolve`: the tag a scalar resolves to and its value. `tag` is `""` for a plain
/// scalar without a tag.
fn resolve(tag: &str, input: &str) -> Result<(&'static str, Scalar), String> {
    let resolvable = matches!(tag, "" | STR | BOOL | INT | FLOAT | NULL | TIMESTAMP);
    if !resolvable {
        let rtag = if tag == BINARY { BINARY } else { "" };
        return Ok((rtag, Scalar::Str(input.to_owned())));
    }
    let (rtag, out) = resolve_value(tag, input);
    if tag.is_empty() || tag == rtag || tag == STR {
        return Ok((rtag, out));
    }
    if tag == FLOAT && rtag == INT {
        if let Scalar::Int(i) = out {
            return Ok((FLOAT, Scalar::Float(i as f64)));
        }
    }
    Err(format!(
        "cannot decode {} `{input}` as a {}",
        short_tag(rtag),
        short_tag(tag)
    ))
}

fn resolve_value(tag: &str, input: &str) -> (&'static str, Scalar) {
    let hint = match input.as_bytes().first() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => 0,
    };
    if hint != 0 && tag != STR {
        if let Some(found) = resolve_map(input) {
            return found;
        }
        match hint {
            b'.' => {
                if let Some(f) = parse_float(input) {
                    return (FLOAT, Scalar::Float(f));
                }
            }
            b'D' | b'S' => {
                if (tag.is_empty() || tag == TIMESTAMP) && is_timestamp(input) {
                    return (TIMESTAMP, Scalar::Str(input.to_owned()));
                }
                let plain = input.replace('_', "");
                if let Ok(i) = parse_int(&plain, 0) {
                    return (INT, Scalar::Int(i));
                }
                if let Ok(u) = parse_uint(&plain, 0) {
                    return (INT, Scalar::Uint(u));
                }
                if yaml_style_float(&plain) {
                    if let Some(f) = parse_float(&plain) {
                        return (FLOAT, Scalar::Float(f));
                    }
                }
                if let Some(bits) = plain.strip_prefix("0b") {
                    if let Ok(i) = parse_int(bits, 2) {
                        return (INT, Scalar::Int(i));
                    }
                    if let Ok(u) = parse_uint(bits, 2) {
                        return (INT, Scalar::Uint(u));
                    }
                } else if let Some(bits) = plain.strip_prefix("-0b") {
                    if let Ok(i) = parse_int(&format!("-{bits}"), 2) {
                        return (INT, Scalar::Int(i));
                    }
                }
            }
            _ => {}
        }
    }
    (STR, Scalar::Str(input.to_owned()))
}

/// go-yaml's `resolveMap`.
fn resolve_map(input: &str) -> Option<(&'static str, Scalar)> {
    Some(match input {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            (BOOL, Scalar::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            (BOOL, Scalar::Bool(false))
        }
        "" | "~" | "null" | "Null" | "NULL" => (NULL, Scalar::Null),
        ".nan" | ".NaN" | ".NAN" => (FLOAT, Scalar::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            (FLOAT, Scalar::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => (FLOAT, Scalar::Float(f64::NEG_INFINITY)),
        "<<" => (MERGE, Scalar::Str("<<".to_owned())),
        _ => return None,
    })
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `underscoreOK`.
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if matches!(b.first(), Some(b'+' | b'-')) {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text (the only kind resolve passes it): `None`
/// for bad syntax or a value out of range.
fn parse_float(s: &str) -> Option<f64> {
    let ok_chars = s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'));
    if !ok_chars || !s.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let f: f64 = s.replace('_', "").parse().ok()?;
    f.is_finite().then_some(f)
}

#[derive(Debug, PartialEq)]
enum IntError {
    Syntax,
    Range,
}

/// Go's `strconv.ParseUint(s, base, 64)` (base 0: prefix `0x`, `0o`, `0b` or `0`), for text
/// without underscores.
fn parse_uint(s: &str, base: u32) -> Result<u64, IntError> {
    if s.is_empty() {
        return Err(IntError::Syntax);
    }
    let (base, digits) = if base == 0 {
        let b = s.as_bytes();
        if b[0] == b'0' {
            match b.get(1).map(u8::to_ascii_lowercase) {
                Some(b'b') if b.len() >= 3 => (2, &s[2..]),
                Some(b'o') if b.len() >= 3 => (8, &s[2..]),
                Some(b'x') if b.len() >= 3 => (16, &s[2..]),
                _ => (8, &s[1..]),
            }
        } else {
            (10, s)
        }
    } else {
        (base, s)
    };
    let mut n: u64 = 0;
    let mut overflow = false;
    for c in digits.bytes() {
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u32::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return Err(IntError::Syntax),
        };
        if d >= base {
            return Err(IntError::Syntax);
        }
        if !overflow {
            match n
                .checked_mul(u64::from(base))
                .and_then(|n| n.checked_add(u64::from(d)))
            {
                Some(next) => n = next,
                None => overflow = true,
            }
        }
    }
    if overflow {
        Err(IntError::Range)
    } else {
        Ok(n)
    }
}

/// Go's `strconv.ParseInt(s, base, 64)`.
fn parse_int(s: &str, base: u32) -> Result<i64, IntError> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let un = parse_uint(rest, base)?;
    if negative {
        if un > 1 << 63 {
            return Err(IntError::Range);
        }
        Ok((un as i64).wrapping_neg())
    } else {
        i64::try_from(un).map_err(|_| IntError::Range)
    }
}

/// Whether go-yaml's `parseTimestamp` accepts `s`: one of Go's layouts
/// `2006-1-2T15:4:5.999999999Z07:00` (also with `t`), `2006-1-2 15:4:5.999999999`, `2006-1-2`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    // One or two digits within a range (Go's getnum without a fixed width).
    fn num(b: &[u8], i: &mut usize, max: u32) -> Option<u32> {
        let first = *b.get(*i).filter(|c| c.is_ascii_digit())?;
        let mut n = u32::from(first - b'0');
        *i += 1;
        if let Some(c) = b.get(*i).filter(|c| c.is_ascii_digit()) {
            n = n * 10 + u32::from(c - b'0');
            *i += 1;
        }
        (n <= max).then_some(n)
    }
    fn lit(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
        (b.get(*i) == Some(&c)).then(|| *i += 1)
    }
    let date = |i: &mut usize| -> Option<()> {
        let year: u32 = s[..4].parse().ok()?;
        *i = 5;
        let month = num(b, i, 12).filter(|&m| m >= 1)?;
        lit(b, i, b'-')?;
        let day = num(b, i, 31).filter(|&d| d >= 1)?;
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        (day <= days).then_some(())
    };
    let time = |i: &mut usize| -> Option<()> {
        num(b, i, 23)?;
        lit(b, i, b':')?;
        num(b, i, 59)?;
        lit(b, i, b':')?;
        num(b, i, 59)?;
        if matches!(b.get(*i), Some(b'.' | b',')) && b.get(*i + 1).is_some_and(u8::is_ascii_digit) {
            *i += 1;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
        }
        Some(())
    };
    let zone = |i: &mut usize| -> Option<()> {
        if lit(b, i, b'Z').is_some() {
            return Some(());
        }
        let rest = b.get(*i..*i + 6)?;
        let ok = matches!(rest[0], b'+' | b'-')
            && rest[1].is_ascii_digit()
            && rest[2].is_ascii_digit()
            && rest[3] == b':'
            && rest[4].is_ascii_digit()
            && rest[5].is_ascii_digit()
            && (rest[1] - b'0') * 10 + (rest[2] - b'0') <= 24;
        ok.then(|| *i += 6)
    };
    type Layout<'a> = &'a dyn Fn(&mut usize) -> Option<()>;
    let layouts: [Layout<'_>; 4] = [
        &|i| {
            date(i)?;
            lit(b, i, b'T')?;
            time(i)?;
            zone(i)
        },
        &|i| {
            date(i)?;
            lit(b, i, b't')?;
            time(i)?;
            zone(i)
        },
        &|i| {
            date(i)?;
            lit(b, i, b' ')?;
            time(i)
        },
        &|i| date(i),
    ];
    layouts.iter().any(|layout| {
        let mut i = 0;
        layout(&mut i).is_some() && i == b.len()
    })
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        decode(text).unwrap().unwrap().value
    }

    #[test]
    fn scalars_resolve_like_go_yaml_v2() {
        let cases: &[(&str, Value)] = &[
            ("yes", json!(true)),
            ("Off", json!(false)),
            ("y", json!(true)),
            ("yES", json!("yES")),
            ("'yes'", json!("yes")),
            ("~", json!(null)),
            ("NULL", json!(null)),
            ("0777", json!(511)),
            ("0o17", json!(15)),
            ("0x1F", json!(31)),
            ("0b101", json!(5)),
            ("-0b101", json!(-5)),
            ("09", json!(9)),
            ("1_000", json!(1000)),
            ("+1", json!(1)),
            ("-0", json!(0)),
            ("-0.0", json!(-0.0)),
            (".5", json!(0.5)),
            ("1e3", json!(1000)),
            ("1.5", json!(1.5)),
            ("1:30", json!("1:30")),
            ("2001-12-14", json!("2001-12-14")),
            ("18446744073709551615", json!(18_446_744_073_709_551_615u64)),
            ("99999999999999999999", json!(1e20)),
            ("+9223372036854775808", json!(9_223_372_036_854_776_000u64)),
            ("-9223372036854775809", json!(-9.223_372_036_854_776e18)),
            ("1e400", json!("1e400")),
            ("!!str 1", json!("1")),
            ("!!float 1", json!(1)),
            ("!!binary aGk=", json!("hi")),
            ("!custom 3", json!("3")),
            ("<<", json!("<<")),
        ];
        for (text, want) in cases {
            assert_eq!(&one(text), want, "{text}");
        }
    }

    #[test]
    fn keys_and_errors() {
        assert_eq!(
            one("1: a\ntrue: b\n1.5: c\n1e7: d\n0.0001: e\n123456789.0: f\n"),
            json!({"1": "a", "true": "b", "1.5": "c", "1e+07": "d", "0.0001": "e", "1.2345679e+08": "f"})
        );
        let err = |text: &str| decode(text).unwrap_err().message(0);
        assert!(err("a: !!int x").contains("cannot decode !!str `x` as a !!int"));
        assert!(err("a: *nope").contains("unknown anchor 'nope' referenced"));
        assert!(err("a: .inf").contains(".inf cannot be represented in JSON"));
        assert!(err("~: a").contains("a mapping key is null"));
        assert!(err("a: !!binary '%%'").contains("invalid base64"));
        assert!(err("a: &x [*x]").contains("anchor 'x' value contains itself"));
        assert!(err("<<: 1").contains("map merge requires map"));
    }

    #[test]
    fn merges_are_positional() {
        assert_eq!(
            one("a: &a {x: 1, w: 1}\nb: &b {x: 2, z: 2}\nc:\n  w: 0\n  <<: [*a, *b]\n  z: 9\n")
                ["c"],
            json!({"x": 1, "w": 1, "z": 9})
        );
        assert_eq!(
            one("a: &a {x: 1}\ne:\n  x: 5\n  <<: *a\nd:\n  <<: *a\n  x: 5\n"),
            json!({"a": {"x": 1}, "e": {"x": 1}, "d": {"x": 5}})
        );
        assert_eq!(one("y: 1\n"), json!({"true": 1}));
        assert_eq!(one("k: 1\nk: 2\n"), json!({"k": 2}));
    }

    #[test]
    fn alias_and_merge_chains_are_bounded_not_a_stack_overflow() {
        let mut aliases = String::from("a0: &a0 [x]\n");
        let mut merges = String::from("m0: &m0 {k: v}\n");
        for i in 1..2000 {
            aliases.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
            merges.push_str(&format!("m{i}: &m{i} {{<<: *m{}}}\n", i - 1));
        }
        for text in [aliases, merges] {
            let err = decode(&text).unwrap_err().message(0);
            assert!(
                err.contains("nested more than 512 levels") || err.contains("excessive aliasing"),
                "{err}"
            );
        }
    }

    #[test]
    fn float_keys_format_like_go() {
        assert_eq!(float_key(1000.0), "1000");
        assert_eq!(float_key(1e-5), "1e-05");
        assert_eq!(float_key(0.1), "0.1");
        assert_eq!(float_key(-2.5), "-2.5");
        assert_eq!(float_key(123456.7), "123456.7");
        assert_eq!(float_key(1234567.0), "1.234567e+06");
    }
}
