//! The kinds an audit lists: every resource the API server serves (API discovery, CRDs included, at
//! the version discovery recommends) that supports `list`, is not a subresource, is not a policy report
//! (an audit's own output: auditing reports would add a report of each report at every run), and is
//! matched by the `kinds` and `resources` of at least one loaded policy. Only the API groups some policy may select
//! are asked, one by one, so that one unavailable group (an aggregated API whose backend is down) is
//! reported without hiding the others.

use std::collections::BTreeSet;

use kube::api::ApiResource;
use kube::discovery::{verbs, ApiCapabilities, Scope};
use kube::Client;
use serde_json::json;

use crate::admission::RequestFacts;
use crate::policy::matcher::MatchSpec;
use crate::policy::PolicySet;

/// A resource to list.
#[derive(Debug, Clone)]
pub struct AuditedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl AuditedKind {
    /// `apps/v1 Deployment`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.resource.api_version, self.resource.kind)
    }
}

/// True when `spec`'s `kinds` and `resources` select objects of `resource` (the object itself, no
/// subresource). Operations, namespaces and labels are judged per object by the evaluator.
pub fn selects(spec: &MatchSpec, resource: &ApiResource) -> bool {
    let request = json!({
        "kind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "resource": {"group": resource.group, "version": resource.version, "resource": resource.plural},
    });
    let facts = RequestFacts::from_request(&request);
    spec.kind_matches(&facts) && spec.resource_matches(&facts)
}

/// The API groups of policy reports, never audited.
pub const REPORT_GROUPS: [&str; 2] = ["openreports.io", "wgpolicyk8s.io"];

/// The resources among `served` that some policy of `set` selects, sorted by API version and kind.
pub fn select(set: &PolicySet, served: Vec<(ApiResource, ApiCapabilities)>) -> Vec<AuditedKind> {
    let mut kinds: Vec<AuditedKind> = served
        .into_iter()
        .filter(|(resource, caps)| {
            caps.supports_operation(verbs::LIST)
                && !resource.plural.contains('/')
                && !REPORT_GROUPS.contains(&resource.group.as_str())
        })
        .filter(|(resource, _)| {
            set.policies
                .iter()
                .any(|p| selects(&p.match_spec, resource))
        })
        .map(|(resource, caps)| AuditedKind {
            namespaced: caps.scope == Scope::Namespaced,
            resource,
        })
        .collect();
    kinds.sort_by(|a, b| {
        (&a.resource.group, &a.resource.kind).cmp(&(&b.resource.group, &b.resource.kind))
    });
    kinds
}

/// The API groups the policies of `set` may select; `None` when some policy selects any group.
pub fn wanted_groups(set: &PolicySet) -> Option<BTreeSet<String>> {
    let mut groups = BTreeSet::new();
    for policy in &set.policies {
        if policy.match_spec.kinds.is_empty() {
            return None;
        }
        for selector in &policy.match_spec.kinds {
            if selector.api_groups.is_empty() || selector.api_groups.iter().any(|g| g == "*") {
                return None;
            }
            groups.extend(selector.api_groups.iter().cloned());
        }
    }
    Some(groups)
}

/// What discovery found: the resources of the groups asked, and the groups that could not be asked.
pub struct Served {
    pub resources: Vec<(ApiResource, ApiCapabilities)>,
    pub failed: Vec<(String, kube::Error)>,
}

/// Asks the API server for the resources of every served group in `wanted` (every group when `None`),
/// at each group's recommended version. Fails only when the list of groups itself cannot be read.
pub async fn discover(client: &Client, wanted: Option<&BTreeSet<String>>) -> kube::Result<Served> {
    let mut names = vec![String::new()];
    names.extend(
        client
            .list_api_groups()
            .await?
            .groups
            .into_iter()
            .map(|g| g.name),
    );
    let mut served = Served {
        resources: Vec::new(),
        failed: Vec::new(),
    };
    for name in names
        .into_iter()
        .filter(|n| wanted.is_none_or(|w| w.contains(n)))
    {
        match kube::discovery::group(client, &name).await {
            Ok(group) => served.resources.extend(group.recommended_resources()),
            Err(error) => served.failed.push((name, error)),
        }
    }
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;

    fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn spec(yaml: &str) -> MatchSpec {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn kinds_and_resources_select_what_to_list() {
        let deployments = resource("apps", "v1", "Deployment", "deployments");
        let pods = resource("", "v1", "Pod", "pods");
        let workloads = spec("{kinds: [{apiGroups: [apps], kinds: [Deployment]}]}");
        assert!(selects(&workloads, &deployments));
        assert!(!selects(&workloads, &pods));
        assert!(selects(&spec("{}"), &pods));
        assert!(selects(&spec("{resources: [pods, pods/resize]}"), &pods));
        assert!(!selects(&spec("{resources: [deployments]}"), &pods));
    }

    #[test]
    fn only_the_groups_policies_may_select_are_asked() {
        let mut set = crate::policy::load(&crate::policy::LoadOptions::default()).unwrap();
        // tenant-isolation selects every resource of every group.
        assert_eq!(wanted_groups(&set), None);
        set.policies.retain(|p| p.id == "pod-security");
        assert_eq!(
            wanted_groups(&set),
            Some(BTreeSet::from([
                "".into(),
                "apps".into(),
                "batch".into(),
                "extensions".into()
            ]))
        );
    }

    #[test]
    fn bundled_policies_select_workloads_and_custom_resources() {
        let set = crate::policy::load(&crate::policy::LoadOptions::default()).unwrap();
        let caps = |scope: Scope| ApiCapabilities {
            scope,
            subresources: vec![],
            operations: vec![verbs::LIST.to_string(), verbs::GET.to_string()],
        };
        let served = vec![
            (
                resource("apps", "v1", "Deployment", "deployments"),
                caps(Scope::Namespaced),
            ),
            (
                resource("", "v1", "Event", "events"),
                caps(Scope::Namespaced),
            ),
            (
                resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
                caps(Scope::Namespaced),
            ),
            (
                resource("", "v1", "Namespace", "namespaces"),
                caps(Scope::Cluster),
            ),
            (
                resource("openreports.io", "v1alpha1", "Report", "reports"),
                caps(Scope::Namespaced),
            ),
            (
                resource(
                    "wgpolicyk8s.io",
                    "v1alpha2",
                    "ClusterPolicyReport",
                    "clusterpolicyreports",
                ),
                caps(Scope::Cluster),
            ),
            (
                resource("", "v1", "ComponentStatus", "componentstatuses"),
                ApiCapabilities {
                    operations: vec![verbs::GET.to_string()],
                    ..caps(Scope::Cluster)
                },
            ),
        ];
        let selected: Vec<String> = select(&set, served).iter().map(|k| k.describe()).collect();
        assert!(
            selected.contains(&"apps/v1 Deployment".to_string()),
            "{selected:?}"
        );
        assert!(
            selected.contains(&"gateway.networking.k8s.io/v1 HTTPRoute".to_string()),
            "{selected:?}"
        );
        assert!(
            !selected.iter().any(|k| k.ends_with("ComponentStatus")),
            "{selected:?}"
        );
        assert!(
            !selected.iter().any(|k| k.contains("Report")),
            "reports are never audited: {selected:?}"
        );
    }
}
