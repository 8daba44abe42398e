//! The few request facts the engine itself reads (for match/exclude, decision logs and reports), pulled
//! from the raw request without altering it.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Facts about one AdmissionRequest. Missing fields become empty strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub uid: String,
    pub operation: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub resource: String,
    pub sub_resource: String,
    pub namespace: String,
    pub name: String,
    pub username: String,
    pub dry_run: bool,
    /// Labels of the object (of the old object for DELETE, or when there is no object).
    pub labels: BTreeMap<String, String>,
}

fn str_at<'a>(value: &'a Json, path: &[&str]) -> &'a str {
    let mut cur = value;
    for key in path {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

impl RequestFacts {
    /// Reads the facts from a raw AdmissionRequest.
    pub fn from_request(request: &Json) -> RequestFacts {
        let object = request.get("object").filter(|o| o.is_object());
        let old = request.get("oldObject").filter(|o| o.is_object());
        let subject = match str_at(request, &["operation"]) {
            "DELETE" => old.or(object),
            _ => object.or(old),
        };
        let labels = subject
            .and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Json::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut name = str_at(request, &["name"]).to_string();
        if name.is_empty() {
            if let Some(o) = subject {
                name = str_at(o, &["metadata", "name"]).to_string();
            }
        }
        RequestFacts {
            uid: str_at(request, &["uid"]).to_string(),
            operation: str_at(request, &["operation"]).to_string(),
            group: str_at(request, &["kind", "group"]).to_string(),
            version: str_at(request, &["kind", "version"]).to_string(),
            kind: str_at(request, &["kind", "kind"]).to_string(),
            resource: str_at(request, &["resource", "resource"]).to_string(),
            sub_resource: str_at(request, &["subResource"]).to_string(),
            namespace: str_at(request, &["namespace"]).to_string(),
            name,
            username: str_at(request, &["userInfo", "username"]).to_string(),
            dry_run: request
                .get("dryRun")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            labels,
        }
    }

    /// The namespace used for namespace matching: the request's namespace, or for a `Namespace` object its
    /// own name. `None` for other cluster-scoped objects.
    pub fn effective_namespace(&self) -> Option<&str> {
        if !self.namespace.is_empty() {
            Some(&self.namespace)
        } else if self.kind == "Namespace" && self.group.is_empty() && !self.name.is_empty() {
            Some(&self.name)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_falls_back_to_object_metadata_and_delete_reads_old_object() {
        let facts = RequestFacts::from_request(&json!({
            "uid": "u", "operation": "DELETE", "namespace": "shop",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": null,
            "oldObject": {"metadata": {"name": "web", "labels": {"a": "b", "n": 1}}}
        }));
        assert_eq!(facts.name, "web");
        assert_eq!(facts.group, "apps");
        assert_eq!(facts.labels.len(), 1);
        assert_eq!(facts.effective_namespace(), Some("shop"));
    }
}
