//! The kinds an audit lists: every resource the API server serves (API discovery, CRDs included, at
//! the version discovery recommends) that supports `list`, is not a subresource, and is matched by the
//! `kinds` and `resources` of at least one loaded policy.

use kube::api::ApiResource;
use kube::discovery::{verbs, ApiCapabilities, Discovery, Scope};
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

/// The resources among `served` that some policy of `set` selects, sorted by API version and kind.
pub fn select(set: &PolicySet, served: Vec<(ApiResource, ApiCapabilities)>) -> Vec<AuditedKind> {
    let mut kinds: Vec<AuditedKind> = served
        .into_iter()
        .filter(|(resource, caps)| {
            caps.supports_operation(verbs::LIST) && !resource.plural.contains('/')
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

/// Every resource the API server serves, at each group's recommended version.
pub fn served(discovery: &Discovery) -> Vec<(ApiResource, ApiCapabilities)> {
    discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .collect()
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
    }
}
