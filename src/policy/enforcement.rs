//! How a policy's results are enforced ([`Action`]) and how severe they are ([`Severity`]): declared in
//! policy metadata and `regate.yaml`, carried by every decision, and written by every report.

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
