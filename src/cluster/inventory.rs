//! `data.inventory` in Gatekeeper's layout: `cluster[groupVersion][kind][name]` for cluster-scoped
//! objects and `namespace[ns][groupVersion][kind][name]` for namespaced ones.

use std::path::PathBuf;

use serde_json::{Map, Value as Json};

use crate::admission::synthesize::is_cluster_scoped;
use crate::manifest;

/// A cluster-state snapshot being assembled.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    cluster: Map<String, Json>,
    namespace: Map<String, Json>,
    objects: usize,
}

fn slot<'a>(map: &'a mut Map<String, Json>, key: &str) -> &'a mut Map<String, Json> {
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Json::Object(Map::new()));
    if !entry.is_object() {
        *entry = Json::Object(Map::new());
    }
    match entry {
        Json::Object(m) => m,
        _ => unreachable!("entry was just made an object"),
    }
}

impl Inventory {
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Adds every object of the manifest `files` (the `--inventory` of the CLI doors); any unreadable
    /// document is an error (cluster state must be exact). `default_namespace` as for [`Inventory::add`].
    pub fn add_manifest_files(
        &mut self,
        files: &[PathBuf],
        default_namespace: &str,
    ) -> anyhow::Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let read = manifest::read_inputs(files)?;
        if let Some(err) = read.errors.first() {
            anyhow::bail!(
                "inventory {}:{}: {}",
                err.location.file,
                err.location.line,
                err.message
            );
        }
        for doc in &read.documents {
            self.add(&doc.object, default_namespace);
        }
        Ok(())
    }

    /// Adds one object. `default_namespace` places namespaced objects that carry no namespace. Objects
    /// without apiVersion, kind or name are ignored (they cannot be looked up).
    pub fn add(&mut self, object: &Json, default_namespace: &str) {
        let (Some(api_version), Some(kind), Some(name)) = (
            object.get("apiVersion").and_then(Json::as_str),
            object.get("kind").and_then(Json::as_str),
            object.pointer("/metadata/name").and_then(Json::as_str),
        ) else {
            return;
        };
        let target = if is_cluster_scoped(kind) {
            &mut self.cluster
        } else {
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(default_namespace);
            slot(&mut self.namespace, ns)
        };
        let kinds = slot(target, api_version);
        let names = slot(kinds, kind);
        let mut stored = object.clone();
        if !is_cluster_scoped(kind) {
            if let Some(meta) = stored.get_mut("metadata").and_then(Json::as_object_mut) {
                if !meta.contains_key("namespace") {
                    let ns = default_namespace.to_string();
                    meta.insert("namespace".into(), Json::String(ns));
                }
            }
        }
        names.insert(name.to_string(), stored);
        self.objects += 1;
    }

    /// Number of objects added.
    pub fn len(&self) -> usize {
        self.objects
    }

    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }

    /// The `data.inventory` document.
    pub fn to_json(&self) -> Json {
        let mut root = Map::new();
        root.insert("cluster".into(), Json::Object(self.cluster.clone()));
        root.insert("namespace".into(), Json::Object(self.namespace.clone()));
        Json::Object(root)
    }
}

/// The tenant of `namespace` in an inventory document: the Namespace's `label_key` label, when set
/// and not empty.
pub fn namespace_tenant(inventory: &Json, namespace: &str, label_key: &str) -> Option<String> {
    inventory
        .pointer("/cluster/v1/Namespace")
        .and_then(|m| m.get(namespace))
        .and_then(|ns| ns.pointer("/metadata/labels"))
        .and_then(|l| l.get(label_key))
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_namespace_tenant_is_its_label() {
        let inventory = json!({"cluster": {"v1": {"Namespace": {
            "shop": {"metadata": {"name": "shop", "labels": {"regate.dev/tenant": "shop"}}},
            "bare": {"metadata": {"name": "bare", "labels": {"regate.dev/tenant": ""}}}}}}});
        let key = "regate.dev/tenant";
        assert_eq!(
            namespace_tenant(&inventory, "shop", key).as_deref(),
            Some("shop")
        );
        assert_eq!(namespace_tenant(&inventory, "bare", key), None);
        assert_eq!(namespace_tenant(&inventory, "absent", key), None);
    }

    #[test]
    fn gatekeeper_layout() {
        let mut inv = Inventory::new();
        inv.add(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            "default",
        );
        inv.add(
            &json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"}}),
            "shop",
        );
        inv.add(&json!({"kind": "Broken"}), "shop");
        let v = inv.to_json();
        assert_eq!(inv.len(), 2);
        assert_eq!(
            v["cluster"]["v1"]["Namespace"]["shop"]["metadata"]["name"],
            "shop"
        );
        assert_eq!(
            v["namespace"]["shop"]["networking.k8s.io/v1"]["NetworkPolicy"]["deny"]["metadata"]
                ["namespace"],
            "shop"
        );
    }
}
