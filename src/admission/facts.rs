//! The few request facts the engine itself reads (for match/exclude, decision logs and reports), pulled
//! from the raw request without altering it.

use serde_json::{Map, Value as Json};

/// Facts about one AdmissionRequest, borrowed from it (nothing is copied: the server reads them for
/// every request, often twice). Missing fields become empty strings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestFacts<'a> {
    pub uid: &'a str,
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    pub sub_resource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub username: &'a str,
    pub dry_run: bool,
    /// Labels of the object (of the old object for DELETE, or when there is no object).
    labels: Option<&'a Map<String, Json>>,
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

impl<'a> RequestFacts<'a> {
    /// Reads the facts from a raw AdmissionRequest.
    pub fn from_request(request: &'a Json) -> RequestFacts<'a> {
        let object = request.get("object").filter(|o| o.is_object());
        let old = request.get("oldObject").filter(|o| o.is_object());
        let subject = match str_at(request, &["operation"]) {
            "DELETE" => old.or(object),
            _ => object.or(old),
        };
        let labels = subject
            .and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Json::as_object);
        let mut name = str_at(request, &["name"]);
        if name.is_empty() {
            if let Some(o) = subject {
                name = str_at(o, &["metadata", "name"]);
            }
        }
        RequestFacts {
            uid: str_at(request, &["uid"]),
            operation: str_at(request, &["operation"]),
            group: str_at(request, &["kind", "group"]),
            version: str_at(request, &["kind", "version"]),
            kind: str_at(request, &["kind", "kind"]),
            resource: str_at(request, &["resource", "resource"]),
            sub_resource: str_at(request, &["subResource"]),
            namespace: str_at(request, &["namespace"]),
            name,
            username: str_at(request, &["userInfo", "username"]),
            dry_run: request
                .get("dryRun")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            labels,
        }
    }

    /// The object's label `key`, when it is set to a string (other values count as unset).
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.labels?.get(key)?.as_str()
    }

    /// The namespace used for namespace matching: the request's namespace, or for a `Namespace` object its
    /// own name. `None` for other cluster-scoped objects.
    pub fn effective_namespace(&self) -> Option<&'a str> {
        if !self.namespace.is_empty() {
            Some(self.namespace)
        } else if self.kind == "Namespace" && self.group.is_empty() && !self.name.is_empty() {
            Some(self.name)
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
        let request = json!({
            "uid": "u", "operation": "DELETE", "namespace": "shop",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": null,
            "oldObject": {"metadata": {"name": "web", "labels": {"a": "b", "n": 1}}}
        });
        let facts = RequestFacts::from_request(&request);
        assert_eq!(facts.name, "web");
        assert_eq!(facts.group, "apps");
        assert_eq!(facts.label("a"), Some("b"));
        assert_eq!(
            facts.label("n"),
            None,
            "a label that is not a string counts as unset"
        );
        assert_eq!(facts.label("absent"), None);
        assert_eq!(facts.effective_namespace(), Some("shop"));
    }
}
