//! The findings model that every report format writes: one [`Report`] per `regate check` run.

use serde::{Deserialize, Serialize};

/// How a finding is enforced, after the policy's configured enforcement action is applied.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Blocks admission; makes `regate check` exit 1.
    #[default]
    Deny,
    /// Admitted with a warning shown to the user.
    Warn,
    /// Recorded only (audit); neither blocks nor warns.
    Dryrun,
}

impl Action {
    /// The lowercase name used in every report and in `regate.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Dryrun => "dryrun",
        }
    }
}

/// Severity declared in a policy's metadata.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

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
    pub errors: Vec<InputError>,
}

impl Report {
    /// Sorts findings, objects and errors into their canonical order.
    pub fn sort(&mut self) {
        self.checked.sort();
        self.findings.sort();
        self.errors.sort();
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
