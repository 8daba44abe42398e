//! Reading a Constraint (`constraints.gatekeeper.sh/v1beta1`, `v1alpha1`, `v1`): its template kind,
//! name, `enforcementAction`, `match` and `parameters`, translated into what a regate policy has.

use serde_json::{Map, Value as Json};

use crate::policy::matcher::MatchSpec;
use crate::report::model::Action;

/// The API group of Constraints.
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";

/// The `match` keys of a Constraint (all are applied by the engine before Rego runs).
const MATCH_KEYS: [&str; 8] = [
    "kinds",
    "scope",
    "namespaces",
    "excludedNamespaces",
    "labelSelector",
    "namespaceSelector",
    "name",
    "source",
];

/// One Constraint as regate uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The template's kind (`K8sRequiredLabels`).
    pub kind: String,
    /// `metadata.name`: what messages and reports name.
    pub name: String,
    pub enforcement: Action,
    /// The engine-side match, in regate's terms (Gatekeeper's semantics, see [`MatchSpec`]).
    pub match_spec: MatchSpec,
    /// The same match as the METADATA of the generated policy spells it.
    pub match_json: Json,
    /// `spec.parameters` (`{}` when absent), before schema checking.
    pub parameters: Json,
    /// `match.source: Generated`: the constraint only judges objects Gatekeeper's expansion generates,
    /// which regate does not do, so it never applies.
    pub generated_only: bool,
}

/// Reads a Constraint document (its `kind` is the template kind). Errors name the field.
pub fn read_constraint(doc: &Json) -> Result<Constraint, String> {
    let kind = doc
        .get("kind")
        .and_then(Json::as_str)
        .ok_or("kind is missing")?
        .to_string();
    let name = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Json::as_str)
        .ok_or("metadata.name is missing")?
        .to_string();
    let spec = doc.get("spec").cloned().unwrap_or(Json::Object(Map::new()));
    let enforcement = match spec.get("enforcementAction").and_then(Json::as_str) {
        None | Some("deny") => Action::Deny,
        Some("warn") => Action::Warn,
        Some("dryrun") => Action::Dryrun,
        Some(other) => {
            return Err(format!(
                "spec.enforcementAction {other:?} is not supported (deny, warn or dryrun; scoped enforcement actions are not)"
            ))
        }
    };
    let (match_spec, match_json, generated_only) = read_match(spec.get("match"))?;
    let parameters = match spec.get("parameters") {
        None | Some(Json::Null) => Json::Object(Map::new()),
        Some(p) => p.clone(),
    };
    Ok(Constraint {
        kind,
        name,
        enforcement,
        match_spec,
        match_json,
        parameters,
        generated_only,
    })
}

/// Translates `spec.match`: Gatekeeper's keys are regate's, plus the operations a constraint sees
/// (CREATE, UPDATE and DELETE, as Gatekeeper's webhook) and Gatekeeper's reading of `namespaces` for
/// cluster-scoped objects.
fn read_match(value: Option<&Json>) -> Result<(MatchSpec, Json, bool), String> {
    let mut fields = match value {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(m)) => m.clone(),
        Some(_) => return Err("spec.match must be an object".into()),
    };
    if let Some(key) = fields.keys().find(|k| !MATCH_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "spec.match.{key} is not a Gatekeeper match field ({})",
            MATCH_KEYS.join(", ")
        ));
    }
    let generated_only = match fields.remove("source").as_ref().map(|s| s.as_str()) {
        None | Some(Some("All" | "Original")) => false,
        Some(Some("Generated")) => true,
        Some(other) => {
            return Err(format!(
                "spec.match.source must be All, Original or Generated, not {}",
                other.unwrap_or("a non-string")
            ))
        }
    };
    if fields.get("name").and_then(Json::as_str) == Some("") {
        fields.remove("name");
    }
    fields.insert(
        "operations".into(),
        serde_json::json!(["CREATE", "UPDATE", "DELETE"]),
    );
    fields.insert("gatekeeperNamespaces".into(), Json::Bool(true));
    let json = Json::Object(fields);
    let spec: MatchSpec =
        serde_json::from_value(json.clone()).map_err(|e| format!("spec.match: {e}"))?;
    Ok((spec, json, generated_only))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn constraint(spec: Json) -> Json {
        json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo",
               "metadata": {"name": "must-have-owner"}, "spec": spec})
    }

    #[test]
    fn fields_are_read() {
        let c = read_constraint(&constraint(json!({"enforcementAction": "warn",
            "match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}], "excludedNamespaces": ["kube-*"],
                      "namespaceSelector": {"matchLabels": {"tier": "tenant"}}, "name": "shop-*"},
            "parameters": {"labels": ["owner"]}})))
        .unwrap();
        assert_eq!(c.kind, "K8sDemo");
        assert_eq!(c.name, "must-have-owner");
        assert_eq!(c.enforcement, Action::Warn);
        assert_eq!(c.parameters, json!({"labels": ["owner"]}));
        assert_eq!(c.match_spec.name.as_deref(), Some("shop-*"));
        assert!(c.match_spec.namespace_selector.is_some());
        assert!(c.match_spec.gatekeeper_namespaces);
        assert_eq!(c.match_spec.operations, vec!["CREATE", "UPDATE", "DELETE"]);
        assert!(!c.generated_only);
    }

    #[test]
    fn defaults_and_errors() {
        let c = read_constraint(&constraint(json!({}))).unwrap();
        assert_eq!(c.enforcement, Action::Deny);
        assert_eq!(c.parameters, json!({}));
        let err = read_constraint(&constraint(json!({"enforcementAction": "scoped"}))).unwrap_err();
        assert!(err.contains("scoped"), "{err}");
        let err = read_constraint(&constraint(json!({"match": {"kind": []}}))).unwrap_err();
        assert!(err.contains("spec.match.kind"), "{err}");
        let err = read_constraint(&constraint(json!({"match": {"scope": 3}}))).unwrap_err();
        assert!(err.starts_with("spec.match:"), "{err}");
        let c = read_constraint(&constraint(json!({"match": {"source": "Generated"}}))).unwrap();
        assert!(c.generated_only);
    }
}
