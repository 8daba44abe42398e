//! Listing and judging the stored objects of one kind: pages of `--page-size` objects (`limit` and
//! `continue`), each page evaluated as it arrives through `regate check`'s own path
//! ([`crate::check::check_documents`]), its reports written, and dropped before the next is fetched, so
//! memory is bounded by a page, not by the cluster. Results of policies that need an admission request
//! are replaced by one `skip` finding per object they apply to.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, Resource};
use serde_json::Value as Json;

use super::kinds::AuditedKind;
use super::outcome::{ObjectAudit, Owner};
use super::pace::{retrying, Pacer};
use super::reports::ReportWriter;
use super::run::AuditSpec;
use super::summary::{Summary, SKIP_RULE};
use crate::admission::synthesize::{create_request, Requester};
use crate::admission::RequestFacts;
use crate::check::{check_documents, Checked};
use crate::cluster::inventory::namespace_tenant;
use crate::manifest::Document;
use crate::policy::{Evaluator, Policy, PolicySet};
use crate::report::model::{Action, Finding, InputError, Location, Report};

/// How often one list may start again after its continue token expired.
const MAX_LIST_RESTARTS: u32 = 3;

/// True when a list's continue token expired (`410 Gone`, reason `Expired`): the snapshot it paged
/// through was compacted away.
fn is_expired(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 410)
}

/// Objects and pages listed for one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub objects: usize,
    pub pages: usize,
    /// Every scope was listed to its end (no list request failed).
    pub complete: bool,
}

impl Default for Listed {
    fn default() -> Listed {
        Listed {
            objects: 0,
            pages: 0,
            complete: true,
        }
    }
}

/// What an audit keeps of the objects it judged, beyond the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// Every judged finding and patch, for the report printed at the end (`regate audit`); skips are
    /// only counted. The in-server audit keeps none, so its memory does not grow with the cluster.
    pub findings: bool,
    /// Every audited object, passing ones included (JUnit lists them).
    pub checked: bool,
}

/// Accumulates the report and summary of one audit, page by page.
pub struct Auditor<'a> {
    set: &'a Arc<PolicySet>,
    evaluator: &'a Evaluator,
    inventory: &'a Json,
    /// Policy id → why it is not judged on stored objects.
    request_policies: BTreeMap<String, String>,
    keep: Keep,
    report: Report,
    summary: Summary,
}

/// The namespace `check_documents` gives objects without one: none for cluster-scoped kinds.
fn default_namespace(kind: &AuditedKind) -> &'static str {
    if kind.namespaced {
        "default"
    } else {
        ""
    }
}

/// The API path of an object (`/apis/apps/v1/namespaces/shop/deployments/web`), its report location.
fn object_location(resource: &ApiResource, object: &DynamicObject) -> Location {
    let base = DynamicObject::url_path(resource, object.metadata.namespace.as_deref());
    Location {
        file: format!("{base}/{}", object.metadata.name.as_deref().unwrap_or("")),
        line: 1,
    }
}

/// A listed object as the document `regate check` would have read (list items carry no type fields).
fn document(resource: &ApiResource, object: DynamicObject) -> Document {
    let location = object_location(resource, &object);
    let mut json = serde_json::to_value(&object).unwrap_or(Json::Null);
    if let Json::Object(map) = &mut json {
        map.insert(
            "apiVersion".into(),
            Json::String(resource.api_version.clone()),
        );
        map.insert("kind".into(), Json::String(resource.kind.clone()));
    }
    Document {
        location,
        object: json,
    }
}

/// True when `policy` applies to `request` for some operation it matches (a policy that only matches
/// UPDATE still applies to the stored object it would judge on update).
fn applies_for_its_operations(evaluator: &Evaluator, policy: &Policy, facts: RequestFacts) -> bool {
    evaluator.applies(policy, &facts)
        || policy
            .match_spec
            .operations
            .iter()
            .any(|op| evaluator.applies(policy, &facts.with_operation(op)))
}

impl<'a> Auditor<'a> {
    /// An audit deciding with `evaluator` (bound to `inventory`, the cluster state).
    pub fn new(
        set: &'a Arc<PolicySet>,
        evaluator: &'a Evaluator,
        inventory: &'a Json,
        keep: Keep,
    ) -> Auditor<'a> {
        let request_policies = set.request_dependence().clone();
        Auditor {
            set,
            evaluator,
            inventory,
            request_policies,
            keep,
            report: Report::default(),
            summary: Summary::default(),
        }
    }

    /// Policy id → why it is not judged on stored objects.
    pub fn request_policies(&self) -> &BTreeMap<String, String> {
        &self.request_policies
    }

    /// The policies that apply to `document` for some operation they match: (judged on stored
    /// objects, request-dependent with the reason it is not judged).
    fn applying(
        &self,
        document: &Document,
        kind: &AuditedKind,
    ) -> (Vec<&'a Policy>, Vec<(&'a Policy, &str)>) {
        let request = create_request(&document.object, default_namespace(kind), &no_requester());
        let facts = RequestFacts::from_request(&request);
        let mut judged = Vec::new();
        let mut skipped = Vec::new();
        let set: &'a PolicySet = self.set;
        for policy in set.policies.iter() {
            if !applies_for_its_operations(self.evaluator, policy, facts) {
                continue;
            }
            match self.request_policies.get(&policy.id) {
                Some(reason) => skipped.push((policy, reason.as_str())),
                None => judged.push(policy),
            }
        }
        (judged, skipped)
    }

    /// One `skip` finding per request-dependent policy of `skipped`.
    fn skips(checked: &Checked, skipped: &[(&Policy, &str)]) -> Vec<Finding> {
        skipped
            .iter()
            .map(|(policy, reason)| Finding {
                location: checked.location.clone(),
                object: checked.object.clone(),
                policy: policy.id.clone(),
                title: policy.metadata.title.clone(),
                severity: policy.metadata.severity,
                action: Action::Dryrun,
                rule: SKIP_RULE.to_string(),
                message: format!("not judged without an admission request: the policy {reason}"),
                field: None,
                remediation: None,
                controls: policy.metadata.controls.clone(),
            })
            .collect()
    }

    /// Judges one page of listed objects of `kind`, adds them to the summary (and the report, as kept)
    /// and returns what was concluded about each object, for its policy report.
    pub fn audit_page(
        &mut self,
        kind: &AuditedKind,
        objects: Vec<DynamicObject>,
    ) -> Vec<ObjectAudit> {
        let owners: Vec<Option<Owner>> = objects
            .iter()
            .map(|o| Owner::of(&kind.resource.api_version, &kind.resource.kind, o))
            .collect();
        let documents: Vec<Document> = objects
            .into_iter()
            .map(|o| document(&kind.resource, o))
            .collect();
        let results = check_documents(
            self.set,
            self.evaluator,
            &documents,
            default_namespace(kind),
            &no_requester(),
            None,
        );
        let mut audits = Vec::with_capacity(documents.len());
        for ((mut checked, document), owner) in results.into_iter().zip(&documents).zip(owners) {
            if !kind.namespaced {
                checked.object.namespace = None;
            }
            let judged = |policy: &String| !self.request_policies.contains_key(policy);
            let mut findings: Vec<Finding> = checked
                .findings
                .drain(..)
                .filter(|f| judged(&f.policy))
                .map(|f| Finding {
                    object: checked.object.clone(),
                    ..f
                })
                .collect();
            let (applying, skipped) = self.applying(document, kind);
            findings.extend(Self::skips(&checked, &skipped));
            let tenant = checked.object.namespace.as_deref().and_then(|ns| {
                namespace_tenant(self.inventory, ns, self.set.config.tenant_label_key())
            });
            self.summary
                .record(&checked.object, tenant.as_deref(), &findings);
            if let Some(owner) = owner {
                audits.push(ObjectAudit::new(owner, &findings, applying));
            }
            self.report.objects += 1;
            if self.keep.findings {
                // Skips are counted in the summary and written to the policy reports; in the printed
                // report they would be one line per object and policy with the same reason.
                self.report
                    .findings
                    .extend(findings.into_iter().filter(|f| f.rule != SKIP_RULE));
                self.report.patches.extend(
                    checked
                        .patches
                        .into_iter()
                        .filter(|p| judged(&p.policy))
                        .map(|p| crate::report::model::Patch {
                            object: checked.object.clone(),
                            ..p
                        }),
                );
            }
            if self.keep.checked {
                self.report.checked.push((checked.location, checked.object));
            }
        }
        audits
    }

    /// Records that `kind` could not be listed (in `namespace`, when listed per namespace).
    pub fn list_failed(
        &mut self,
        kind: &AuditedKind,
        namespace: Option<&str>,
        error: &kube::Error,
    ) {
        let path = DynamicObject::url_path(&kind.resource, namespace);
        self.report.errors.push(InputError {
            location: Location {
                file: path,
                line: 1,
            },
            message: format!("cannot list {}: {error}", kind.describe()),
        });
    }

    /// Records that the API group `group` could not be discovered (its kinds are not audited).
    pub fn discovery_failed(&mut self, group: &str, error: &kube::Error) {
        let path = if group.is_empty() {
            "/api".to_string()
        } else {
            format!("/apis/{group}")
        };
        self.report.errors.push(InputError {
            location: Location {
                file: path,
                line: 1,
            },
            message: format!(
                "cannot discover API group {group:?}: {error}; its kinds are not audited"
            ),
        });
    }

    /// The sorted report and the summary.
    pub fn finish(mut self) -> (Report, Summary) {
        self.report.sort();
        (self.report, self.summary)
    }
}

/// The audit's request carries no user.
fn no_requester() -> Requester {
    Requester {
        username: String::new(),
        groups: Vec::new(),
    }
}

/// Lists every object of `kind` (in the spec's namespaces when given; cluster-scoped kinds are then
/// left out) in pages of its page size, following `continue` tokens, each request paced by `pacer`;
/// hands each page to `auditor` and its conclusions to `reports`, when reports are written. Stops
/// before the next page once the spec's `stop` is set.
pub async fn scan_kind(
    client: &Client,
    kind: &AuditedKind,
    spec: &AuditSpec,
    pacer: &mut Pacer,
    auditor: &mut Auditor<'_>,
    mut reports: Option<&mut ReportWriter>,
) -> Listed {
    let (namespaces, page_size) = (&spec.namespaces, spec.page_size);
    let scopes: Vec<Option<&str>> = match (kind.namespaced, namespaces.is_empty()) {
        (_, true) => vec![None],
        (true, false) => namespaces.iter().map(|ns| Some(ns.as_str())).collect(),
        (false, false) => vec![],
    };
    let mut listed = Listed::default();
    for namespace in scopes {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
            None => Api::all_with(client.clone(), &kind.resource),
        };
        let mut token: Option<String> = None;
        // The uids judged so far in this scope (a multi-page list only), so that a list that has to
        // start again judges each object once: about 60 bytes per object listed.
        let mut judged: HashSet<String> = HashSet::new();
        let mut restarts = 0;
        loop {
            if spec.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                listed.complete = false;
                return listed;
            }
            let mut params = ListParams::default().limit(page_size);
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            pacer.wait().await;
            let mut page = match retrying(|| api.list(&params)).await {
                Ok(page) => page,
                Err(error) if is_expired(&error) && restarts < MAX_LIST_RESTARTS => {
                    // The list outlived its snapshot (etcd compacted it; about 5 minutes): list again
                    // from the start, judging only the objects not judged yet.
                    restarts += 1;
                    token = None;
                    tracing::info!(kind = %kind.describe(), restarts, "audit: list expired; listing again");
                    continue;
                }
                Err(error) => {
                    auditor.list_failed(kind, namespace, &error);
                    listed.complete = false;
                    break;
                }
            };
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if restarts > 0 {
                page.items.retain(|o| {
                    o.metadata
                        .uid
                        .as_ref()
                        .is_none_or(|uid| !judged.contains(uid))
                });
            }
            if token.is_some() || restarts > 0 {
                judged.extend(page.items.iter().filter_map(|o| o.metadata.uid.clone()));
            }
            listed.pages += 1;
            listed.objects += page.items.len();
            let audits = auditor.audit_page(kind, page.items);
            if let Some(writer) = reports.as_deref_mut() {
                writer.write(&audits, pacer).await;
            }
            if token.is_none() {
                break;
            }
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::outcome::Outcome;
    use crate::policy::{load, LoadOptions};
    use kube::api::GroupVersionKind;
    use serde_json::json;

    fn pods() -> AuditedKind {
        AuditedKind {
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("", "v1", "Pod"),
                "pods",
            ),
            namespaced: true,
        }
    }

    /// A Pod that every object policy accepts, or the same Pod with a privileged container.
    fn pod(name: &str, privileged: bool) -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop-prod", "managedFields": [], "uid": format!("uid-{name}"),
                "labels": {"app.kubernetes.io/name": "app", "app.kubernetes.io/version": "1"}},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "app", "image": "harbor.example.eu/shop/app:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "200m", "memory": "256Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}, "privileged": privileged},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap()
    }

    #[test]
    fn a_page_is_judged_by_object_policies_and_request_policies_are_skipped() {
        let set = Arc::new(load(&LoadOptions::default()).unwrap());
        let inventory = json!({"cluster": {"v1": {"Namespace": {"shop-prod": {
            "metadata": {"name": "shop-prod", "labels": {"regate.dev/tenant": "shop"}}}}}},
            "namespace": {}});
        let evaluator = Evaluator::new(set.clone(), inventory.clone()).unwrap();
        let keep = Keep {
            findings: true,
            checked: true,
        };
        let mut auditor = Auditor::new(&set, &evaluator, &inventory, keep);
        let audits = auditor.audit_page(&pods(), vec![pod("bad", true), pod("good", false)]);
        let (report, summary) = auditor.finish();
        assert_eq!(report.objects, 2);
        assert_eq!(report.checked.len(), 2);
        let denied: Vec<(&str, &str)> = report
            .findings
            .iter()
            .filter(|f| f.action == Action::Deny)
            .map(|f| (f.object.name.as_str(), f.policy.as_str()))
            .collect();
        assert!(denied.contains(&("bad", "pod-security")), "{denied:?}");
        assert!(
            !denied.iter().any(|(name, _)| *name == "good"),
            "{denied:?}"
        );
        assert!(!report.findings.iter().any(|f| f.rule == SKIP_RULE));
        assert_eq!(summary.policies["tenant-isolation"].skip, 2);
        assert_eq!(summary.policies["trusted-images"].skip, 2);
        assert_eq!(summary.policies["pod-security"].skip, 0);
        assert_eq!(
            report.findings[0].location.file,
            "/api/v1/namespaces/shop-prod/pods/bad"
        );
        assert_eq!(summary.tenants["shop"].objects, 2);
        assert_eq!(summary.tenants["shop"].denied_objects, 1);
        assert_eq!(report.exit_code(), 1);
        // The conclusions for the reports: per policy, fail / pass / skip, owned by the object's uid.
        let outcome = |name: &str, policy: &str| -> Vec<Outcome> {
            let audit = audits.iter().find(|a| a.owner.name == name).unwrap();
            audit
                .results
                .iter()
                .filter(|r| r.policy == policy)
                .map(|r| r.outcome)
                .collect()
        };
        assert_eq!(audits.len(), 2);
        assert_eq!(audits[0].owner.uid, "uid-bad");
        assert_eq!(audits[0].owner.namespace.as_deref(), Some("shop-prod"));
        assert!(outcome("bad", "pod-security").contains(&Outcome::Fail));
        assert_eq!(outcome("good", "pod-security"), [Outcome::Pass]);
        assert_eq!(outcome("good", "tenant-isolation"), [Outcome::Skip]);
        assert_eq!(outcome("bad", "ingress-tls"), []);
    }
}
