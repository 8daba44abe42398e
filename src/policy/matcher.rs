//! Match and exclude: which requests a policy sees, decided by the engine outside Rego so that no policy
//! author can forget them (operations, kinds, resources and subresources, namespaces by name, scope,
//! object label selectors).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::admission::RequestFacts;

/// Selects requests by `request.kind` (the kind of the object sent, which for `pods/ephemeralcontainers`
/// is `Pod` and for `*/scale` is `Scale`).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindSelector {
    /// API groups; `""` is the core group, `"*"` any group. Empty means any group.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Kinds; `"*"` any kind.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelExpression {
    pub key: String,
    pub operator: LabelOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum LabelOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// Namespaced or cluster-scoped objects.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
    #[serde(rename = "*")]
    Any,
}

/// Match criteria, in the spirit of Gatekeeper's `match` and Kyverno's resource descriptions. Every
/// criterion that is set must hold; an empty list means "any".
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchSpec {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `*`.
    #[serde(default)]
    pub operations: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<KindSelector>,
    /// Resources as in webhook rules: `pods`, `pods/ephemeralcontainers`, `*/scale`, `*` (any resource
    /// without a subresource), `*/*` (anything). When empty, every resource matches except the `status`
    /// subresource.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Namespace names; a trailing `*` matches a prefix. For a `Namespace` object its own name counts.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// Selects on the object's labels (the old object's for DELETE). Not allowed in `exclude`, because a
    /// tenant can set labels.
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    #[serde(default)]
    pub scope: Option<Scope>,
    /// The object's name; `*` globs at the front or the end (Gatekeeper's `match.name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Selects on the labels of the object's namespace (of the object itself for a Namespace), which
    /// come from cluster state (Gatekeeper's `match.namespaceSelector`). Cluster-scoped objects other
    /// than Namespaces pass. When the namespace's labels are unknown, the selector passes too: the policy
    /// is evaluated rather than skipped, so that missing state can never exempt an object.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// Gatekeeper's reading of `namespaces`: a cluster-scoped object that is not a Namespace passes the
    /// `namespaces` criterion instead of failing it. Set for policies generated from Constraints.
    #[serde(default)]
    pub gatekeeper_namespaces: bool,
}

/// The labels of a namespace, from cluster state, for `namespaceSelector`.
pub trait NamespaceLabels {
    /// `None` when the namespace is unknown.
    fn labels_of(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

/// Knows no namespace (every `namespaceSelector` passes, see [`MatchSpec::namespace_selector`]).
pub struct NoNamespaces;

impl NamespaceLabels for NoNamespaces {
    fn labels_of(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// True when `name` matches `pattern`: exact, a prefix when the pattern ends in `*`, a suffix when it
/// starts with `*` (Gatekeeper's wildcards; `*` alone matches everything).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        name.starts_with(prefix)
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        name.ends_with(suffix)
    } else {
        pattern == name
    }
}

fn any_glob(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

impl MatchSpec {
    /// Whether the request satisfies every criterion that is set, knowing no namespace labels.
    pub fn matches(&self, req: &RequestFacts) -> bool {
        self.matches_in(req, &NoNamespaces)
    }

    /// Whether the request satisfies every criterion that is set; `namespaces` gives the labels
    /// `namespaceSelector` reads.
    pub fn matches_in(&self, req: &RequestFacts, namespaces: &dyn NamespaceLabels) -> bool {
        self.operation_matches(req)
            && self.kind_matches(req)
            && self.resource_matches(req)
            && self.namespace_matches(req)
            && self.scope_matches(req)
            && self.labels_match(req)
            && self.name.as_deref().is_none_or(|p| glob_match(p, req.name))
            && self.namespace_selector_matches(req, namespaces)
    }

    fn namespace_selector_matches(
        &self,
        req: &RequestFacts,
        namespaces: &dyn NamespaceLabels,
    ) -> bool {
        let Some(selector) = &self.namespace_selector else {
            return true;
        };
        if req.kind == "Namespace" && req.group.is_empty() {
            return selector_matches(selector, |key| req.label(key));
        }
        if req.namespace.is_empty() {
            return true;
        }
        match namespaces.labels_of(req.namespace) {
            Some(labels) => selector_matches(selector, |key| labels.get(key).map(String::as_str)),
            None => true,
        }
    }

    fn operation_matches(&self, req: &RequestFacts) -> bool {
        self.operations.is_empty()
            || self
                .operations
                .iter()
                .any(|op| op == "*" || op.eq_ignore_ascii_case(req.operation))
    }

    pub(crate) fn kind_matches(&self, req: &RequestFacts) -> bool {
        self.kinds.is_empty()
            || self.kinds.iter().any(|sel| {
                let group_ok = sel.api_groups.is_empty()
                    || sel.api_groups.iter().any(|g| g == "*" || *g == req.group);
                let kind_ok =
                    sel.kinds.is_empty() || sel.kinds.iter().any(|k| k == "*" || *k == req.kind);
                group_ok && kind_ok
            })
    }

    pub(crate) fn resource_matches(&self, req: &RequestFacts) -> bool {
        if self.resources.is_empty() {
            return req.sub_resource != "status";
        }
        self.resources.iter().any(|spec| {
            let (res, sub) = spec.split_once('/').unwrap_or((spec.as_str(), ""));
            let res_ok = res == "*" || res == req.resource;
            let sub_ok = sub == "*" || sub == req.sub_resource;
            res_ok && sub_ok
        })
    }

    fn namespace_matches(&self, req: &RequestFacts) -> bool {
        let ns = req.effective_namespace();
        if !self.namespaces.is_empty() {
            match ns {
                Some(ns) if any_glob(&self.namespaces, ns) => {}
                None if self.gatekeeper_namespaces => {}
                _ => return false,
            }
        }
        match ns {
            Some(ns) => !any_glob(&self.excluded_namespaces, ns),
            None => true,
        }
    }

    fn scope_matches(&self, req: &RequestFacts) -> bool {
        // A Namespace object is cluster-scoped, although the API server (1.20+) puts its own name in
        // request.namespace for every operation on it.
        let namespace_object = req.kind == "Namespace" && req.group.is_empty();
        let namespaced = !req.namespace.is_empty() && !namespace_object;
        match self.scope {
            None | Some(Scope::Any) => true,
            Some(Scope::Namespaced) => namespaced,
            Some(Scope::Cluster) => !namespaced,
        }
    }

    fn labels_match(&self, req: &RequestFacts) -> bool {
        self.label_selector
            .as_ref()
            .is_none_or(|selector| selector_matches(selector, |key| req.label(key)))
    }
}

/// Whether the labels `label` looks up satisfy `selector`.
fn selector_matches<'a>(selector: &LabelSelector, label: impl Fn(&str) -> Option<&'a str>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .all(|(k, v)| label(k).is_some_and(|actual| actual == v));
    let by_expressions = selector.match_expressions.iter().all(|expr| {
        let actual = label(&expr.key);
        let listed = |a: &str| expr.values.iter().any(|v| v == a);
        match expr.operator {
            LabelOperator::In => actual.is_some_and(listed),
            LabelOperator::NotIn => !actual.is_some_and(listed),
            LabelOperator::Exists => actual.is_some(),
            LabelOperator::DoesNotExist => actual.is_none(),
        }
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn pod_create(ns: &str) -> serde_json::Value {
        json!({"uid": "1", "operation": "CREATE", "namespace": ns,
               "kind": {"group": "", "version": "v1", "kind": "Pod"},
               "resource": {"group": "", "version": "v1", "resource": "pods"},
               "object": {"metadata": {"name": "p", "labels": {"team": "a"}}}})
    }

    fn spec(yaml: &str) -> MatchSpec {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[rstest]
    #[case("{}", true)]
    #[case("{operations: [UPDATE]}", false)]
    #[case("{operations: ['*']}", true)]
    #[case("{kinds: [{apiGroups: [''], kinds: [Pod]}]}", true)]
    #[case("{kinds: [{apiGroups: [apps], kinds: [Pod]}]}", false)]
    #[case("{kinds: [{apiGroups: ['*'], kinds: ['*']}]}", true)]
    #[case("{namespaces: [shop-*]}", true)]
    #[case("{namespaces: [shop]}", false)]
    #[case("{excludedNamespaces: [shop-prod]}", false)]
    #[case("{scope: Cluster}", false)]
    #[case("{scope: Namespaced}", true)]
    #[case("{labelSelector: {matchLabels: {team: a}}}", true)]
    #[case(
        "{labelSelector: {matchExpressions: [{key: team, operator: NotIn, values: [a]}]}}",
        false
    )]
    #[case(
        "{labelSelector: {matchExpressions: [{key: x, operator: DoesNotExist}]}}",
        true
    )]
    #[case("{resources: [pods]}", true)]
    #[case("{resources: [deployments]}", false)]
    fn pod_create_in_shop_prod(#[case] yaml: &str, #[case] expected: bool) {
        assert_eq!(
            spec(yaml).matches(&RequestFacts::from_request(&pod_create("shop-prod"))),
            expected,
            "{yaml}"
        );
    }

    #[rstest]
    #[case("{}", "ephemeralcontainers", true)]
    #[case("{}", "status", false)]
    #[case("{resources: [pods]}", "ephemeralcontainers", false)]
    #[case(
        "{resources: [pods, pods/ephemeralcontainers]}",
        "ephemeralcontainers",
        true
    )]
    #[case("{resources: ['*/*']}", "status", true)]
    fn subresources(#[case] yaml: &str, #[case] sub: &str, #[case] expected: bool) {
        let mut req = pod_create("shop");
        req["operation"] = json!("UPDATE");
        req["subResource"] = json!(sub);
        assert_eq!(
            spec(yaml).matches(&RequestFacts::from_request(&req)),
            expected
        );
    }

    #[test]
    fn namespace_object_counts_its_own_name() {
        let req = json!({"operation": "UPDATE", "kind": {"group": "", "version": "v1", "kind": "Namespace"},
                         "resource": {"resource": "namespaces"}, "name": "kube-system",
                         "object": {"metadata": {"name": "kube-system"}}});
        assert!(
            !spec("{excludedNamespaces: [kube-system]}").matches(&RequestFacts::from_request(&req))
        );
        assert!(spec("{namespaces: [kube-*]}").matches(&RequestFacts::from_request(&req)));
    }

    #[test]
    fn namespace_object_is_cluster_scoped_with_or_without_request_namespace() {
        for ns in ["shop-prod", ""] {
            let req = json!({"operation": "UPDATE", "namespace": ns, "name": "shop-prod",
                             "kind": {"group": "", "version": "v1", "kind": "Namespace"},
                             "resource": {"resource": "namespaces"},
                             "object": {"metadata": {"name": "shop-prod"}}});
            let facts = RequestFacts::from_request(&req);
            assert!(spec("{scope: Cluster}").matches(&facts), "{ns:?}");
            assert!(!spec("{scope: Namespaced}").matches(&facts), "{ns:?}");
            assert!(spec("{namespaces: [shop-*]}").matches(&facts), "{ns:?}");
        }
    }

    #[test]
    fn delete_uses_old_object_labels() {
        let req = json!({"operation": "DELETE", "namespace": "a", "kind": {"group": "", "kind": "Pod"},
                         "object": null, "oldObject": {"metadata": {"labels": {"team": "b"}}}});
        assert!(spec("{labelSelector: {matchLabels: {team: b}}}")
            .matches(&RequestFacts::from_request(&req)));
    }

    #[test]
    fn cluster_scoped_object_does_not_match_a_namespace_list() {
        let req = json!({"operation": "CREATE", "kind": {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"},
                         "object": {"metadata": {"name": "x"}}});
        assert!(!spec("{namespaces: ['*']}").matches(&RequestFacts::from_request(&req)));
        assert!(spec("{excludedNamespaces: ['*']}").matches(&RequestFacts::from_request(&req)));
    }
}
