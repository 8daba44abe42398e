//! Synthetic AdmissionRequests for `regate check`: each manifest object becomes the CREATE request the
//! API server would send for it (namespace filled in, request kind and resource derived, user from the
//! command line), so that CI goes through exactly the webhook's evaluation path.

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// Kinds that are cluster-scoped in Kubernetes and the common add-ons of the platform.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "CiliumClusterwideNetworkPolicy",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterSecretStore",
    "ClusterExternalSecret",
    "ComponentStatus",
    "CustomResourceDefinition",
    "FlowSchema",
    "GatewayClass",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeSnapshotClass",
    "VolumeSnapshotContent",
];

/// True for kinds known to be cluster-scoped.
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// The resource name (plural, lowercase) the API server uses for `kind`.
pub fn resource_for(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.as_str() {
        "endpoints" => return lower,
        "ingress" => return "ingresses".into(),
        "networkpolicy" => return "networkpolicies".into(),
        _ => {}
    }
    if let Some(stem) = lower.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    if lower.ends_with('s')
        || lower.ends_with("x")
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Who `regate check` pretends to be.
#[derive(Debug, Clone)]
pub struct Requester {
    pub username: String,
    pub groups: Vec<String>,
}

impl Default for Requester {
    fn default() -> Self {
        Requester {
            username: "regate-check".into(),
            groups: vec!["system:authenticated".into()],
        }
    }
}

/// Builds the CREATE request for `object`. `default_namespace` is used for namespaced objects without
/// `metadata.namespace` (as kubectl would), and written into the object as the API server does.
pub fn create_request(object: &Json, default_namespace: &str, requester: &Requester) -> Json {
    let api_version = object
        .get("apiVersion")
        .and_then(Json::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Json::as_str).unwrap_or("");
    let (group, version) = split_api_version(api_version);
    let mut object = object.clone();
    let name = object
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let namespace = if is_cluster_scoped(kind) {
        String::new()
    } else {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(default_namespace)
            .to_string();
        if let Some(meta) = object.get_mut("metadata").and_then(Json::as_object_mut) {
            meta.insert("namespace".into(), Json::String(ns.clone()));
        }
        ns
    };
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource_for(kind)});
    // Deterministic per object identity; hashing the identity, not the whole object, keeps it cheap.
    let mut hasher = Sha256::new();
    for part in [api_version, kind, namespace.as_str(), name.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let uid = format!(
        "check-{}",
        digest
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut request = json!({
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": name,
        "operation": "CREATE",
        "userInfo": {"username": requester.username, "groups": requester.groups},
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    });
    if !namespace.is_empty() {
        request["namespace"] = Json::String(namespace);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("Pod", "pods")]
    #[case("Ingress", "ingresses")]
    #[case("NetworkPolicy", "networkpolicies")]
    #[case("PodSecurityPolicy", "podsecuritypolicies")]
    #[case("StorageClass", "storageclasses")]
    #[case("Gateway", "gateways")]
    #[case("Endpoints", "endpoints")]
    fn plural_resources(#[case] kind: &str, #[case] resource: &str) {
        assert_eq!(resource_for(kind), resource);
    }

    #[test]
    fn namespace_is_filled_for_namespaced_objects_only() {
        let r = create_request(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
            "shop",
            &Requester::default(),
        );
        assert_eq!(r["namespace"], "shop");
        assert_eq!(r["object"]["metadata"]["namespace"], "shop");
        assert_eq!(r["kind"]["group"], "apps");
        assert_eq!(r["resource"]["resource"], "deployments");
        let ns = create_request(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            "default",
            &Requester::default(),
        );
        assert!(ns.get("namespace").is_none());
        assert!(ns["object"]["metadata"].get("namespace").is_none());
    }

    #[test]
    fn uid_is_deterministic() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}});
        let a = create_request(&obj, "x", &Requester::default());
        let b = create_request(&obj, "x", &Requester::default());
        assert_eq!(a["uid"], b["uid"]);
    }
}
