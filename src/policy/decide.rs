//! The one decision path of the front doors that answer AdmissionReviews (`regate serve` and
//! `regate eval`): a [`Bundle`] bound to one cluster-state snapshot as an [`Active`] evaluator decides a
//! request at one endpoint with [`decide`], exactly as `Evaluator::validate` / `Evaluator::mutate(..).0`
//! do when cluster state is available; otherwise every applicable `requiresInventory` policy yields the
//! failure mode's result ("cluster state unavailable: <reason>") instead of being evaluated, and the
//! remaining policies are evaluated as usual. [`failure_decision`] is the decision when evaluation
//! could not finish.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value as Json;

use super::config::OnError;
use super::decision::{PolicyResult, RuleKind};
use super::enforcement::{Action, Severity};
use super::loader::Bundle;
use super::{Decision, Evaluator, Extras, Policy};
use crate::admission::{Endpoint, RequestFacts, RequestRef};
use crate::cluster::state::{empty_inventory, StateSnapshot};

/// What to do with a policy that needs cluster state when cluster state is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// The policy's result is a deny (fail closed; the default).
    #[default]
    Deny,
    /// The policy's result is a warning (fail open, visibly).
    Allow,
}

/// A bundle bound to one cluster-state snapshot.
pub struct Active {
    pub bundle: Arc<Bundle>,
    pub evaluator: Arc<Evaluator>,
    /// The cluster-state generation loaded; `None` until a synced snapshot has been loaded.
    pub generation: Option<u64>,
    pub inventory: Arc<Json>,
}

impl Active {
    /// Binds `bundle` to `snapshot` (or to an empty, not-synced inventory).
    pub fn build(bundle: Arc<Bundle>, snapshot: Option<&StateSnapshot>) -> anyhow::Result<Active> {
        let inventory = snapshot
            .map(|s| s.inventory.clone())
            .unwrap_or_else(|| Arc::new(empty_inventory()));
        Active::with_inventory(bundle, inventory, snapshot.map(|s| s.generation))
    }

    /// Binds `bundle` to `inventory` (`data.inventory`), of cluster-state generation `generation` when
    /// it is a synced snapshot (`regate eval` reads it from manifests: no generation).
    pub fn with_inventory(
        bundle: Arc<Bundle>,
        inventory: Arc<Json>,
        generation: Option<u64>,
    ) -> anyhow::Result<Active> {
        let evaluator = Arc::new(Evaluator::new(bundle.set.clone(), (*inventory).clone())?);
        Ok(Active {
            bundle,
            evaluator,
            generation,
            inventory,
        })
    }

    /// The tenant of `namespace` from cluster state: the Namespace's `labelKey` label
    /// (`tenancy.labelKey` in regate.yaml, default `regate.dev/tenant`).
    pub fn tenant_of(&self, namespace: &str) -> Option<String> {
        let key = self.bundle.set.config.tenant_label_key();
        crate::cluster::inventory::namespace_tenant(&self.inventory, namespace, key)
    }
}

fn relevant(
    policy: &Policy,
    endpoint: Endpoint,
    facts: &RequestFacts,
    request: RequestRef,
) -> bool {
    match endpoint {
        Endpoint::Validate => policy.deny_rule.is_some() || policy.warn_rule.is_some(),
        Endpoint::Mutate => {
            policy.patch_rule.is_some()
                && matches!(facts.operation, "CREATE" | "UPDATE")
                && request.has_object()
        }
    }
}

/// The failure mode's result for a policy that cannot be evaluated for lack of cluster state.
pub fn unavailable_result(policy: &Policy, reason: &str, mode: FailureMode) -> PolicyResult {
    super::evaluate::failure_result(
        policy,
        mode == FailureMode::Deny,
        format!("cluster state unavailable: {reason}"),
    )
}

/// The decision for one request. `unavailable` is why cluster state cannot be used, if it cannot;
/// `images` are the image signature verdicts (`input.images`) when verification is on.
pub fn decide(
    active: &Active,
    request: RequestRef,
    endpoint: Endpoint,
    deadline: Instant,
    unavailable: Option<&str>,
    mode: FailureMode,
    images: Option<&Json>,
) -> Decision {
    let run = |skip_inventory: bool| {
        // An admission request, never an object without one.
        let extras = Extras {
            images,
            skip_inventory,
            object_only: false,
        };
        match (endpoint, request) {
            (Endpoint::Validate, RequestRef::Json(r)) => {
                active.evaluator.validate_with(r, extras, deadline)
            }
            (Endpoint::Validate, RequestRef::Value(r)) => {
                active.evaluator.validate_value(r, extras, deadline)
            }
            (Endpoint::Mutate, request) => {
                active
                    .evaluator
                    .mutate_with(&request.to_json(), extras, deadline)
                    .0
            }
        }
    };
    let Some(reason) = unavailable else {
        return run(false);
    };
    let facts = request.facts();
    let affected: Vec<&Policy> = active
        .bundle
        .set
        .policies
        .iter()
        .filter(|p| p.metadata.requires_inventory)
        .filter(|p| relevant(p, endpoint, &facts, request))
        .filter(|p| active.evaluator.applies(p, &facts))
        .collect();
    if affected.is_empty() {
        return run(false);
    }
    // The policies that need cluster state are left out and replaced by their failure-mode results.
    let mut decision = run(true);
    for policy in affected {
        decision.evaluated.push(policy.id.clone());
        decision
            .results
            .push(unavailable_result(policy, reason, mode));
    }
    decision
}

/// The decision when evaluation could not finish (deadline missed, evaluation task failed): one result
/// from `regate` itself, enforced per the bundle's `onError` (deny by default).
pub fn failure_decision(on_error: OnError, message: &str) -> Decision {
    let action = match on_error {
        OnError::Deny => Action::Deny,
        OnError::Warn => Action::Warn,
    };
    Decision {
        results: vec![PolicyResult {
            policy: "regate".into(),
            title: "Evaluation failed".into(),
            severity: Severity::High,
            action,
            rule: RuleKind::Error,
            message: message.to_string(),
            field: None,
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::build_bundle;
    use crate::policy::loader::tests::basic;
    use std::time::Duration;

    #[test]
    fn unavailable_state_replaces_requires_inventory_policies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("inv")).unwrap();
        std::fs::write(
            dir.path().join("inv/policy.rego"),
            "# METADATA\n# title: Inv\n# custom:\n#   requiresInventory: true\npackage regate.policies.inv\n\ndeny contains \"namespace unknown\" if not data.inventory.cluster.v1.Namespace[input.review.namespace]\n\npatch contains {\"op\": \"add\", \"path\": \"/metadata/labels/inv\", \"value\": \"x\"} if true\n",
        )
        .unwrap();
        let mut spec = basic();
        spec.load.policy_dirs.push(dir.path().to_path_buf());
        let bundle = Arc::new(build_bundle(&spec, Some(1)).unwrap());
        let active = Active::build(bundle, None).unwrap();
        let request = serde_json::json!({"uid": "u", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"metadata": {"name": "p", "labels": {"owner": "x", "checked-by": "y"}},
                       "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}});
        // Both readings of the request (JSON, and the value the server reads `/validate` bodies into).
        let value = crate::policy::evaluate::to_value(&request);
        for request in [RequestRef::Json(&request), RequestRef::Value(&value)] {
            let deadline = Instant::now() + Duration::from_secs(2);
            let normal = decide(
                &active,
                request,
                Endpoint::Validate,
                deadline,
                None,
                FailureMode::Deny,
                None,
            );
            assert_eq!(
                normal.results.iter().filter(|r| r.policy == "inv").count(),
                1
            );
            assert_eq!(
                normal
                    .results
                    .iter()
                    .find(|r| r.policy == "inv")
                    .unwrap()
                    .message,
                "namespace unknown"
            );
            let failed = decide(
                &active,
                request,
                Endpoint::Validate,
                deadline,
                Some("not yet synced"),
                FailureMode::Deny,
                None,
            );
            let inv: Vec<_> = failed
                .results
                .iter()
                .filter(|r| r.policy == "inv")
                .collect();
            assert_eq!(inv.len(), 1);
            assert_eq!(inv[0].message, "cluster state unavailable: not yet synced");
            assert_eq!(inv[0].action, Action::Deny);
            assert!(!failed.allowed());
            let open = decide(
                &active,
                request,
                Endpoint::Validate,
                deadline,
                Some("not yet synced"),
                FailureMode::Allow,
                None,
            );
            assert!(open.allowed());
            // Mutation: the inventory policy's patch is not applied while state is unavailable.
            let m = decide(
                &active,
                request,
                Endpoint::Mutate,
                deadline,
                Some("x"),
                FailureMode::Allow,
                None,
            );
            assert!(
                m.patch
                    .iter()
                    .all(|op| op["path"] != "/metadata/labels/inv"),
                "{:?}",
                m.patch
            );
            let m = decide(
                &active,
                request,
                Endpoint::Mutate,
                deadline,
                None,
                FailureMode::Allow,
                None,
            );
            assert!(m
                .patch
                .iter()
                .any(|op| op["path"] == "/metadata/labels/inv"));
        }
    }
}
