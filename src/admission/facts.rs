//! The few request facts the engine itself reads (for match/exclude, decision logs and reports), pulled
//! from the raw request without altering it: from JSON, or from the engine's value the server reads
//! request bodies into (`crate::admission::value_json`); both readings go through [`Tree`], so they agree.

use regorus::Value;
use serde_json::{Map, Value as Json};

/// Facts about one AdmissionRequest, borrowed from it (nothing is copied: the server reads them for
/// every request, often twice). Missing fields become empty strings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestFacts<'a> {
    pub uid: &'a str,
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    pub sub_resource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub username: &'a str,
    pub dry_run: bool,
    /// Labels of the object (of the old object for DELETE, or when there is no object).
    labels: Labels<'a>,
}

/// An object's label map, in whichever tree the request was read into.
#[derive(Debug, Clone, Copy, Default)]
enum Labels<'a> {
    #[default]
    None,
    Json(&'a Map<String, Json>),
    /// The labels object, as the engine's value.
    Value(&'a Value),
}

impl<'a> Labels<'a> {
    /// The labels whose values are strings (the only ones [`RequestFacts::label`] reports), sorted.
    fn strings(self) -> std::collections::BTreeMap<&'a str, &'a str> {
        match self {
            Labels::None => Default::default(),
            Labels::Json(map) => map
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect(),
            Labels::Value(Value::Object(object)) => object
                .iter()
                .filter_map(|(k, v)| Some((k.as_text()?, v.as_text()?)))
                .collect(),
            Labels::Value(_) => Default::default(),
        }
    }
}

/// The same labels, whichever tree they were read from.
impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.strings() == other.strings()
    }
}

/// Read access to a JSON document held as `serde_json` JSON or as a regorus value: what the envelope
/// checks ([`crate::admission::review`]) and the facts need, so one reading serves both trees.
pub trait Tree {
    /// The member `key` of an object (`None` for other values or a missing key).
    fn field(&self, key: &str) -> Option<&Self>;
    fn as_text(&self) -> Option<&str>;
    fn as_flag(&self) -> Option<bool>;
    fn is_map(&self) -> bool;
    fn is_nothing(&self) -> bool;
    /// The elements of an array (empty for other values).
    fn items(&self) -> &[Self]
    where
        Self: Sized;
    fn is_text(&self) -> bool {
        self.as_text().is_some()
    }
    /// What kind of JSON value this is, for error messages ("a number", "an object", ...).
    fn type_name(&self) -> &'static str;
    /// The value for an error message: a string quoted, anything else by its type. Numbers are not
    /// printed: the two trees keep them differently (`1.0` is `1.0` in JSON and `1` as a value), and
    /// a message must not depend on which reader ran.
    fn describe(&self) -> String {
        match self.as_text() {
            Some(text) => format!("{text:?}"),
            None => self.type_name().to_owned(),
        }
    }
}

/// A label map read out of either tree.
trait LabelMap: Tree {
    fn labels(&self) -> Labels<'_>;
}

impl Tree for Json {
    fn field(&self, key: &str) -> Option<&Json> {
        self.get(key)
    }
    fn as_text(&self) -> Option<&str> {
        self.as_str()
    }
    fn as_flag(&self) -> Option<bool> {
        self.as_bool()
    }
    fn is_map(&self) -> bool {
        self.is_object()
    }
    fn is_nothing(&self) -> bool {
        self.is_null()
    }
    fn items(&self) -> &[Json] {
        self.as_array().map_or(&[], Vec::as_slice)
    }
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl LabelMap for Json {
    fn labels(&self) -> Labels<'_> {
        self.as_object().map_or(Labels::None, Labels::Json)
    }
}

impl Tree for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        // Request objects are small; a scan by string avoids building a key value per lookup.
        let Value::Object(object) = self else {
            return None;
        };
        object.iter().find_map(|(k, v)| match k {
            Value::String(s) if &**s == key => Some(v),
            _ => None,
        })
    }
    fn as_text(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    fn as_flag(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn is_map(&self) -> bool {
        matches!(self, Value::Object(_))
    }
    fn is_nothing(&self) -> bool {
        matches!(self, Value::Null)
    }
    fn items(&self) -> &[Value] {
        match self {
            Value::Array(items) => items.as_slice(),
            _ => &[],
        }
    }
    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Set(_) => "a set",
            Value::Object(_) => "an object",
            Value::Undefined => "undefined",
        }
    }
}

impl LabelMap for Value {
    fn labels(&self) -> Labels<'_> {
        match self {
            Value::Object(_) => Labels::Value(self),
            _ => Labels::None,
        }
    }
}

fn str_at<'a, T: Tree + ?Sized>(value: &'a T, path: &[&str]) -> &'a str {
    let mut cur = value;
    for key in path {
        match cur.field(key) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_text().unwrap_or("")
}

impl<'a> RequestFacts<'a> {
    /// The same facts for another operation (the audit asks whether a policy matching only UPDATE
    /// applies to a stored object), without reading the request again.
    pub fn with_operation(self, operation: &'a str) -> RequestFacts<'a> {
        RequestFacts { operation, ..self }
    }

    /// Reads the facts from a raw AdmissionRequest.
    pub fn from_request(request: &'a Json) -> RequestFacts<'a> {
        Self::read(request)
    }

    /// Reads the facts from an AdmissionRequest held as the engine's value.
    pub fn from_value(request: &'a Value) -> RequestFacts<'a> {
        Self::read(request)
    }

    fn read<T: LabelMap>(request: &'a T) -> RequestFacts<'a> {
        let object = request.field("object").filter(|o| o.is_map());
        let old = request.field("oldObject").filter(|o| o.is_map());
        let subject = match str_at(request, &["operation"]) {
            "DELETE" => old.or(object),
            _ => object.or(old),
        };
        let labels = subject
            .and_then(|o| o.field("metadata"))
            .and_then(|m| m.field("labels"))
            .map_or(Labels::None, LabelMap::labels);
        let mut name = str_at(request, &["name"]);
        if name.is_empty() {
            if let Some(o) = subject {
                name = str_at(o, &["metadata", "name"]);
            }
        }
        RequestFacts {
            uid: str_at(request, &["uid"]),
            operation: str_at(request, &["operation"]),
            group: str_at(request, &["kind", "group"]),
            version: str_at(request, &["kind", "version"]),
            kind: str_at(request, &["kind", "kind"]),
            resource: str_at(request, &["resource", "resource"]),
            sub_resource: str_at(request, &["subResource"]),
            namespace: str_at(request, &["namespace"]),
            name,
            username: str_at(request, &["userInfo", "username"]),
            dry_run: request
                .field("dryRun")
                .and_then(Tree::as_flag)
                .unwrap_or(false),
            labels,
        }
    }

    /// The object's label `key`, when it is set to a string (other values count as unset).
    pub fn label(&self, key: &str) -> Option<&'a str> {
        match self.labels {
            Labels::None => None,
            Labels::Json(map) => map.get(key)?.as_str(),
            Labels::Value(labels) => labels.field(key)?.as_text(),
        }
    }

    /// The namespace used for namespace matching: the request's namespace, or for a `Namespace` object its
    /// own name. `None` for other cluster-scoped objects.
    pub fn effective_namespace(&self) -> Option<&'a str> {
        if !self.namespace.is_empty() {
            Some(self.namespace)
        } else if self.kind == "Namespace" && self.group.is_empty() && !self.name.is_empty() {
            Some(self.name)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn another_operation_keeps_every_other_fact() {
        let request = json!({
            "uid": "u", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"metadata": {"name": "web", "labels": {"app": "web"}}}
        });
        let facts = RequestFacts::from_request(&request);
        let update = facts.with_operation("UPDATE");
        assert_eq!(update.operation, "UPDATE");
        assert_eq!(update.with_operation("CREATE"), facts);
        assert_eq!((update.name, update.kind), ("web", "Pod"));
        assert_eq!(update.label("app"), Some("web"));
    }

    #[test]
    fn name_falls_back_to_object_metadata_and_delete_reads_old_object() {
        let request = json!({
            "uid": "u", "operation": "DELETE", "namespace": "shop",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": null,
            "oldObject": {"metadata": {"name": "web", "labels": {"a": "b", "n": 1}}}
        });
        let facts = RequestFacts::from_request(&request);
        assert_eq!(facts.name, "web");
        assert_eq!(facts.group, "apps");
        assert_eq!(facts.label("a"), Some("b"));
        assert_eq!(
            facts.label("n"),
            None,
            "a label that is not a string counts as unset"
        );
        assert_eq!(facts.label("absent"), None);
        assert_eq!(facts.effective_namespace(), Some("shop"));
    }
}
