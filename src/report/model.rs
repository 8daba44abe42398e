//! The findings model that every report format writes: one [`Report`] per `regate check` run.

use serde::Serialize;

pub use crate::policy::{Action, Severity};

/// Where an object came from: the file (or `-` for stdin) and the 1-based line where its document starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// `Kind/namespace/name` or `Kind/name` for cluster-scoped objects.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// One policy result about one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Finding {
    pub location: Location,
    pub object: ObjectRef,
    /// Policy id, e.g. `pod-security`.
    pub policy: String,
    /// Policy title from its metadata.
    pub title: String,
    pub severity: Severity,
    pub action: Action,
    /// Which rule produced it: `deny`, `warn`, or `error` (the policy failed to evaluate).
    pub rule: String,
    pub message: String,
    /// Field path inside the object, e.g. `spec.template.spec.containers[0].image`, when the policy names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Remediation text from the policy's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// Compliance controls from the policy's metadata, e.g. `NIS-2 Art. 21(2)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
}

/// One JSON Patch operation the mutating webhook would apply to an object before validation
/// (`regate check` mutates, then validates, as the API server's admission chain does). Informational:
/// patches never change the exit code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Patch {
    pub location: Location,
    pub object: ObjectRef,
    /// Id of the policy whose `patch` rule produced the operation.
    pub policy: String,
    /// Policy title from its metadata.
    pub title: String,
    /// RFC 6902 operation: `add`, `replace`, `remove` or `test`.
    pub op: String,
    /// RFC 6901 JSON pointer into the object, e.g. `/spec/containers/0/resources/limits/cpu`.
    pub path: String,
    /// The value written, as compact JSON text (absent for `remove`); serialized as the JSON value.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_json_text"
    )]
    pub value: Option<String>,
}

/// Writes JSON text as the value it holds (text that is not JSON is written as a string).
fn serialize_json_text<S: serde::Serializer>(
    value: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        Some(Ok(json)) => json.serialize(serializer),
        Some(Err(_)) => value.serialize(serializer),
        None => serializer.serialize_none(),
    }
}

impl Patch {
    /// `op path`, followed by ` = value` (the value cut to 80 characters) when there is one.
    pub fn describe(&self) -> String {
        describe_op(&self.op, &self.path, self.value.as_deref())
    }
}

/// How reports show one patch operation: `op path`, followed by ` = value` (the value's JSON text cut
/// to 80 characters) when there is one.
pub fn describe_op(op: &str, path: &str, value: Option<&str>) -> String {
    match value {
        Some(value) => format!(
            "{op} {path} = {}",
            crate::policy::decision::truncate(value, 80)
        ),
        None => format!("{op} {path}"),
    }
}

/// A document that could not be read or evaluated; `regate check` exits 2 when there is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct InputError {
    pub location: Location,
    pub message: String,
}

/// Everything one `regate check` run found, sorted so output is deterministic.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Number of objects evaluated.
    pub objects: usize,
    /// Every object evaluated, so test-style formats (JUnit) can list passing objects too.
    #[serde(skip)]
    pub checked: Vec<(Location, ObjectRef)>,
    pub findings: Vec<Finding>,
    /// Operations the mutating webhook would apply; sorted by object, policy and JSON pointer.
    pub patches: Vec<Patch>,
    pub errors: Vec<InputError>,
}

impl Report {
    /// Sorts findings, objects and errors into their canonical order.
    pub fn sort(&mut self) {
        self.checked.sort();
        self.findings.sort();
        // Per object and policy by JSON pointer, so the operations on one field are listed together.
        self.patches.sort_by(|a, b| {
            (&a.location, &a.object, &a.policy, &a.path, &a.op, &a.value).cmp(&(
                &b.location,
                &b.object,
                &b.policy,
                &b.path,
                &b.op,
                &b.value,
            ))
        });
        self.errors.sort();
    }

    /// Number of distinct objects with at least one patch.
    pub fn patched_objects(&self) -> usize {
        let objects: std::collections::BTreeSet<_> = self
            .patches
            .iter()
            .map(|p| (&p.location, &p.object))
            .collect();
        objects.len()
    }

    /// Number of findings with the given action.
    pub fn count(&self, action: Action) -> usize {
        self.findings.iter().filter(|f| f.action == action).count()
    }

    /// The exit code `regate check` uses: 2 for input errors, 1 for deny-level findings, 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.count(Action::Deny) > 0 {
            1
        } else {
            0
        }
    }
}
