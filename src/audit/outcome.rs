//! What an audit concluded about one stored object, policy by policy: the object's identity (the owner
//! and scope of its policy report, see [`super::reports`]) and one [`PolicyResult`] per policy that
//! applies to it, `pass` included. Built from the findings of `regate check`'s evaluation, so a report
//! says exactly what `check` and `serve` decide.

use std::collections::BTreeSet;

use kube::api::DynamicObject;

use crate::policy::{Action, Policy, Severity};
use crate::report::model::Finding;

use super::summary::SKIP_RULE;

/// A policy report result, as the report CRDs spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
    Error,
    Skip,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Warn,
        Outcome::Error,
        Outcome::Skip,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Error => "error",
            Outcome::Skip => "skip",
        }
    }

    /// The outcome of a finding: a denial or a dry-run violation fails, a warning warns, a policy that
    /// could not be evaluated is an error, one not judged without a request is skipped.
    pub fn of(finding: &Finding) -> Outcome {
        match (finding.rule.as_str(), finding.action) {
            (SKIP_RULE, _) => Outcome::Skip,
            ("error", _) => Outcome::Error,
            (_, Action::Warn) => Outcome::Warn,
            (_, Action::Deny | Action::Dryrun) => Outcome::Fail,
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Outcome, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a result (pass, fail, warn, error, skip)"))
    }
}

/// The identity of an audited object: its report's owner and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// The owner of a listed object of `api_version` and `kind` (list items carry no type fields);
    /// `None` for an object without a uid (nothing stored has none).
    pub fn of(api_version: &str, kind: &str, object: &DynamicObject) -> Option<Owner> {
        Some(Owner {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: object.metadata.namespace.clone(),
            name: object.metadata.name.clone()?,
            uid: object.metadata.uid.clone()?,
        })
    }
}

/// One policy's result for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResult {
    pub policy: String,
    /// The policy's title (the report's `category`).
    pub title: String,
    /// `deny`, `warn`, `error` or `skip`; empty for a pass.
    pub rule: String,
    pub outcome: Outcome,
    pub severity: Severity,
    /// How the policy is enforced (`deny`, `warn`, `dryrun`): a dry-run violation fails in the report
    /// but is not enforced.
    pub enforcement: Action,
    pub message: String,
    pub field: Option<String>,
    pub controls: Vec<String>,
}

impl PolicyResult {
    fn from_finding(finding: &Finding) -> PolicyResult {
        PolicyResult {
            policy: finding.policy.clone(),
            title: finding.title.clone(),
            rule: finding.rule.clone(),
            outcome: Outcome::of(finding),
            severity: finding.severity,
            enforcement: finding.action,
            message: finding.message.clone(),
            field: finding.field.clone(),
            controls: finding.controls.clone(),
        }
    }

    fn pass(policy: &Policy) -> PolicyResult {
        PolicyResult {
            policy: policy.id.clone(),
            title: policy.metadata.title.clone(),
            rule: String::new(),
            outcome: Outcome::Pass,
            severity: policy.metadata.severity,
            enforcement: policy.enforcement,
            message: "no violation".to_string(),
            field: None,
            controls: policy.metadata.controls.clone(),
        }
    }
}

/// What the audit concluded about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAudit {
    pub owner: Owner,
    /// Sorted by policy, then outcome and message.
    pub results: Vec<PolicyResult>,
}

impl ObjectAudit {
    /// The results of `owner`: one per finding, and a pass for each policy of `applying` (the
    /// policies that apply to the object and are judged on stored objects) without a finding.
    pub fn new<'p>(
        owner: Owner,
        findings: &[Finding],
        applying: impl IntoIterator<Item = &'p Policy>,
    ) -> ObjectAudit {
        let found: BTreeSet<&str> = findings.iter().map(|f| f.policy.as_str()).collect();
        let mut results: Vec<PolicyResult> =
            findings.iter().map(PolicyResult::from_finding).collect();
        results.extend(
            applying
                .into_iter()
                .filter(|p| !found.contains(p.id.as_str()))
                .map(PolicyResult::pass),
        );
        results.sort_by(|a, b| {
            (&a.policy, a.outcome, &a.message, &a.field)
                .cmp(&(&b.policy, b.outcome, &b.message, &b.field))
        });
        ObjectAudit { owner, results }
    }

    /// Number of results per outcome, in [`Outcome::ALL`] order.
    pub fn counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for r in &self.results {
            counts[r.outcome as usize] += 1;
        }
        counts
    }
}
