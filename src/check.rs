//! Checking manifest documents as `regate check` does: every object becomes the CREATE request the API
//! server would send and goes through the admission chain (mutate, then validate the mutated object,
//! `Evaluator::admit_with`); the results become report findings, and the patch operations the mutating
//! webhook would apply become report patches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::admission::synthesize::{create_request, Requester};
use crate::images::verify::{self, Verdict};
use crate::manifest::Document;
use crate::policy::{self, Decision, Evaluator, Extras, PolicySet};
use crate::report::model::{Finding, Location, ObjectRef, Patch};

/// The object a document holds, as reports name it (namespace defaulted as `kubectl apply -n` does).
fn object_ref(doc: &Document, default_namespace: &str) -> ObjectRef {
    let o = &doc.object;
    let kind = o
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let namespace = if crate::admission::synthesize::is_cluster_scoped(&kind) {
        None
    } else {
        Some(
            o.pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(default_namespace)
                .to_string(),
        )
    };
    ObjectRef {
        api_version: o
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        kind,
        namespace,
        name: o
            .pointer("/metadata/name")
            .or_else(|| o.pointer("/metadata/generateName"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    }
}

/// What checking one document found: its findings and the patch operations the mutating webhook
/// would apply to it before validation.
#[derive(Debug, Clone)]
pub struct Checked {
    pub location: Location,
    pub object: ObjectRef,
    pub findings: Vec<Finding>,
    pub patches: Vec<Patch>,
}

/// The report entries of a decision's patch, each named after the policy that produced it.
pub fn patches_of(
    set: &PolicySet,
    decision: &Decision,
    location: &Location,
    object: &ObjectRef,
) -> Vec<Patch> {
    decision
        .patch
        .iter()
        .zip(&decision.patch_owners)
        .map(|(op, owner)| {
            let policy = set.policies.get(*owner);
            Patch {
                location: location.clone(),
                object: object.clone(),
                policy: policy.map(|p| p.id.clone()).unwrap_or_default(),
                title: policy.map(|p| p.metadata.title.clone()).unwrap_or_default(),
                op: op
                    .get("op")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                path: op
                    .get("path")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                value: op.get("value").map(|v| v.to_string()),
            }
        })
        .collect()
}

/// Evaluates every document (mutate, then validate the mutated object, as admission does).
pub fn check_documents(
    set: &Arc<PolicySet>,
    evaluator: &Evaluator,
    documents: &[Document],
    default_namespace: &str,
    requester: &Requester,
    verdicts: Option<&BTreeMap<String, Verdict>>,
) -> Vec<Checked> {
    let policies: BTreeMap<&str, &policy::Policy> =
        set.policies.iter().map(|p| (p.id.as_str(), p)).collect();
    let timeout = Duration::from_millis(set.config.limits.request_timeout_ms);
    documents
        .par_iter()
        .map(|doc| {
            let request = create_request(&doc.object, default_namespace, requester);
            let images =
                verdicts.map(|all| verify::verdicts_for(&verify::request_images(&request), all));
            let extras = Extras {
                images: images.as_ref(),
                object_only: true,
                ..Extras::default()
            };
            let mut decision = evaluator.admit_with(&request, extras, Instant::now() + timeout);
            let object = object_ref(doc, default_namespace);
            let patches = patches_of(set, &decision, &doc.location, &object);
            let findings = std::mem::take(&mut decision.results)
                .into_iter()
                .map(|r| {
                    let meta = policies.get(r.policy.as_str()).map(|p| &p.metadata);
                    Finding {
                        location: doc.location.clone(),
                        object: object.clone(),
                        policy: r.policy,
                        title: r.title,
                        severity: r.severity,
                        action: r.action,
                        rule: r.rule.as_str().to_string(),
                        message: r.message,
                        field: r.field,
                        remediation: meta
                            .map(|m| m.remediation.clone())
                            .filter(|s| !s.is_empty()),
                        controls: meta.map(|m| m.controls.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            Checked {
                location: doc.location.clone(),
                object,
                findings,
                patches,
            }
        })
        .collect()
}
