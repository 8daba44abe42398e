//! Gatekeeper compatibility: ConstraintTemplates and Constraints in a bundle become regate policies.
//!
//! A template's Rego is loaded in a namespace of its own (`data.gatekeeper.templates.<name>`, see
//! [`rewrite`]), in Rego v0 syntax unless `source.version: v1`. Each Constraint becomes one policy,
//! `regate.policies.<name>` (id = the constraint's name, see [`policy_id`]): a generated module whose
//! `# METADATA` carries the constraint's `match` and `enforcementAction`, and whose `deny` reports every
//! `violation` of the template; regate tags each message with the policy id, so it reads
//! `[<constraint name>] <msg>`, as Gatekeeper writes it. The constraint's `parameters`, checked
//! against the template's schema ([`schema`]), are the policy's parameters (`input.parameters`).
//! From there on a constraint is a policy like any other: the engine matches it before Rego runs, and
//! `serve`, `eval`, `check` and `test` decide it on the same path.

pub mod constraint;
pub mod rewrite;
pub mod schema;
pub mod suite;
pub mod template;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use crate::report::model::Action;
use constraint::{read_constraint, Constraint, CONSTRAINT_GROUP};
use template::{read_template, Template, TEMPLATE_API_VERSIONS};

/// Where the templates' Rego lives under `data`.
pub const TEMPLATES_ROOT: &str = "gatekeeper.templates";

/// One document of a bundle's manifest files, with where it starts.
#[derive(Debug, Clone)]
pub struct ManifestDocument {
    pub file: String,
    pub line: usize,
    pub object: Json,
}

/// A Rego module generated from a template or a constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedModule {
    /// Names the source in messages: `<file>:<line> <Kind>/<name>` (and `libs[i]` for a library).
    pub display: String,
    pub text: String,
    /// Parse as Rego v0 (templates without `source.version: v1`).
    pub rego_v0: bool,
}

/// What the Gatekeeper documents of a bundle add to it.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    pub modules: Vec<GeneratedModule>,
    /// A configuration layer `{"policies": {<id>: {"parameters": ...}}}` with each constraint's
    /// parameters, merged under the bundle's own `regate.yaml` layers.
    pub config_layer: Json,
    /// What was skipped, for the load notes.
    pub notes: Vec<String>,
}

/// True for a ConstraintTemplate or a Constraint.
pub fn is_gatekeeper_object(object: &Json) -> bool {
    let api_version = object
        .get("apiVersion")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Json::as_str)
        .unwrap_or_default();
    (kind == "ConstraintTemplate" && TEMPLATE_API_VERSIONS.contains(&api_version))
        || api_version.split('/').next() == Some(CONSTRAINT_GROUP)
}

/// The policy id of a constraint: its name, so that messages read `[<constraint name>] <msg>` as
/// Gatekeeper writes them; `<kind, lowercased>-<name>` when constraints of several kinds share the name.
/// Dots become dashes, so the id is a Rego identifier once dashes become underscores.
pub fn policy_id(kind: &str, name: &str, shared_name: bool) -> String {
    let name = name.replace('.', "-");
    if shared_name {
        format!("{}-{name}", kind.to_lowercase())
    } else {
        name
    }
}

/// Turns the Gatekeeper documents among `documents` into modules and parameters. Errors carry
/// `file:line:` and name the template or constraint and the field.
pub fn translate(documents: &[ManifestDocument]) -> Result<Translation, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Translation::default();
    let mut templates: BTreeMap<String, (Template, String)> = BTreeMap::new();
    let mut constraints = Vec::new();
    for doc in documents.iter().filter(|d| is_gatekeeper_object(&d.object)) {
        let at = format!("{}:{}", doc.file, doc.line);
        if doc.object.get("kind").and_then(Json::as_str) == Some("ConstraintTemplate") {
            match read_template(&doc.object) {
                Ok(t) => {
                    let name = t.name.clone();
                    out.notes.extend(
                        t.notes
                            .iter()
                            .map(|n| format!("{at}: ConstraintTemplate {name}: {n}")),
                    );
                    if let Some((_, first)) = templates.get(&t.kind) {
                        errors.push(format!("{at}: ConstraintTemplate {name}: kind {} is already defined at {first}", t.kind));
                    } else {
                        templates.insert(t.kind.clone(), (t, at));
                    }
                }
                Err(e) => errors.push(format!("{at}: ConstraintTemplate: {e}")),
            }
        } else {
            match read_constraint(&doc.object) {
                Ok(c) => constraints.push((c, at)),
                Err(e) => errors.push(format!("{at}: Constraint: {e}")),
            }
        }
    }
    let mut packages = BTreeMap::new();
    for (template, at) in templates.values() {
        match template_modules(template, at) {
            Ok((modules, package)) => {
                out.modules.extend(modules);
                packages.insert(template.kind.clone(), package);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut policies = Map::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut name_count: BTreeMap<String, usize> = BTreeMap::new();
    for (c, _) in &constraints {
        *name_count.entry(c.name.replace('.', "-")).or_default() += 1;
    }
    for (mut constraint, at) in constraints {
        let label = format!("{at}: {} {}", constraint.kind, constraint.name);
        let Some((template, _)) = templates.get(&constraint.kind) else {
            errors.push(format!(
                "{label}: no ConstraintTemplate defines kind {}",
                constraint.kind
            ));
            continue;
        };
        if constraint.generated_only {
            out.notes.push(format!(
                "{label}: match.source is Generated (objects Gatekeeper's expansion generates); regate does not expand, so the constraint never applies"
            ));
            continue;
        }
        if let Some(schema) = &template.schema {
            let violations =
                schema::validate_and_prune(&mut constraint.parameters, schema, "spec.parameters");
            if !violations.is_empty() {
                for v in violations {
                    errors.push(format!(
                        "{label}: {v} (schema of ConstraintTemplate {})",
                        template.name
                    ));
                }
                continue;
            }
        }
        let shared_name = name_count[&constraint.name.replace('.', "-")] > 1;
        let id = policy_id(&constraint.kind, &constraint.name, shared_name);
        if let Some(first) = seen.insert(id.clone(), at.clone()) {
            errors.push(format!(
                "{label}: policy id {id} is already used by the constraint at {first}"
            ));
            continue;
        }
        let Some(package) = packages.get(&constraint.kind) else {
            continue; // the template failed; its error is reported
        };
        let requires_inventory = template.rego.main.contains("data.inventory")
            || template
                .rego
                .libs
                .iter()
                .any(|l| l.contains("data.inventory"));
        out.modules.push(constraint_module(
            &constraint,
            template,
            package,
            &id,
            &at,
            requires_inventory,
        ));
        policies.insert(id, json!({"parameters": constraint.parameters}));
    }
    out.config_layer = json!({"policies": policies});
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The template's modules, rewritten into its namespace, and the package its `violation` is in.
fn template_modules(
    template: &Template,
    at: &str,
) -> Result<(Vec<GeneratedModule>, String), String> {
    let root = format!("{TEMPLATES_ROOT}.{}", template.name);
    let label = format!("{at}: ConstraintTemplate {}", template.name);
    let (main, package) = rewrite::rewrite_module(&template.rego.main, &root, false)
        .map_err(|e| format!("{label}: rego line {}: {}", e.line, e.message))?;
    let mut modules = vec![GeneratedModule {
        display: format!("{at} {}/rego", template.kind),
        text: main,
        rego_v0: !template.rego.v1,
    }];
    for (i, lib) in template.rego.libs.iter().enumerate() {
        let (text, _) = rewrite::rewrite_module(lib, &root, true)
            .map_err(|e| format!("{label}: libs[{i}] line {}: {}", e.line, e.message))?;
        modules.push(GeneratedModule {
            display: format!("{at} {}/libs[{i}]", template.kind),
            text,
            rego_v0: !template.rego.v1,
        });
    }
    Ok((modules, format!("{root}.{package}")))
}

/// The policy module of one constraint (Rego v1).
fn constraint_module(
    constraint: &Constraint,
    template: &Template,
    package: &str,
    id: &str,
    at: &str,
    requires_inventory: bool,
) -> GeneratedModule {
    let enforcement = match constraint.enforcement {
        Action::Deny => "deny",
        Action::Warn => "warn",
        Action::Dryrun => "dryrun",
    };
    let quoted = |s: &str| Json::String(s.to_string()).to_string();
    let text = format!(
        "# METADATA\n\
         # title: {title}\n\
         # description: {description}\n\
         # custom:\n\
         #   severity: medium\n\
         #   enforcement: {enforcement}\n\
         #   requiresInventory: {requires_inventory}\n\
         #   gatekeeper: true\n\
         #   match: {match_json}\n\
         package regate.policies.{segment}\n\n\
         deny contains {{\"msg\": violation.msg, \"details\": object.get(violation, \"details\", {{}})}} if {{\n\
         \tsome violation in data.{package}.violation\n\
         }}\n",
        title = quoted(&format!("{} {}", constraint.kind, constraint.name)),
        description = quoted(&format!(
            "Gatekeeper constraint {} of ConstraintTemplate {} ({at})",
            constraint.name, template.name
        )),
        match_json = constraint.match_json,
        segment = id.replace('-', "_"),
    );
    GeneratedModule {
        display: format!("{at} {}/{}", constraint.kind, constraint.name),
        text,
        rego_v0: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(object: Json) -> ManifestDocument {
        ManifestDocument {
            file: "gk.yaml".into(),
            line: 1,
            object,
        }
    }

    fn template() -> Json {
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "k8srequiredlabels"},
            "spec": {"crd": {"spec": {"names": {"kind": "K8sRequiredLabels"},
                "validation": {"openAPIV3Schema": {"type": "object", "properties": {
                    "labels": {"type": "array", "items": {"type": "string"}}}}}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh",
                    "rego": "package k8srequiredlabels\nviolation[{\"msg\": msg}] {\n  some l in input.parameters.labels\n  not input.review.object.metadata.labels[l]\n  msg := sprintf(\"missing %v\", [l])\n}\n"}]}})
    }

    fn constraint(parameters: Json) -> Json {
        json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
            "metadata": {"name": "ns-must-have-owner"},
            "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]},
                     "parameters": parameters}})
    }

    #[test]
    fn a_constraint_becomes_a_policy_module_with_its_parameters() {
        let t = translate(&[
            doc(template()),
            doc(constraint(json!({"labels": ["owner"]}))),
        ])
        .unwrap();
        assert_eq!(t.modules.len(), 2);
        assert!(t.modules[0].rego_v0);
        assert!(t.modules[0]
            .text
            .starts_with("package gatekeeper.templates.k8srequiredlabels.k8srequiredlabels\n"));
        let policy = &t.modules[1];
        assert!(!policy.rego_v0);
        assert!(
            policy
                .text
                .contains("package regate.policies.ns_must_have_owner\n"),
            "{}",
            policy.text
        );
        assert!(policy
            .text
            .contains("data.gatekeeper.templates.k8srequiredlabels.k8srequiredlabels.violation"));
        assert_eq!(
            t.config_layer,
            json!({"policies": {"ns-must-have-owner": {"parameters": {"labels": ["owner"]}}}})
        );
    }

    #[test]
    fn a_parameter_against_the_schema_is_an_error_with_file_line_and_path() {
        let errors =
            translate(&[doc(template()), doc(constraint(json!({"labels": "owner"})))]).unwrap_err();
        assert_eq!(
            errors,
            vec!["gk.yaml:1: K8sRequiredLabels ns-must-have-owner: spec.parameters.labels: must be array, not string (schema of ConstraintTemplate k8srequiredlabels)"]
        );
    }

    #[test]
    fn a_constraint_without_its_template_is_an_error() {
        let errors = translate(&[doc(constraint(json!({})))]).unwrap_err();
        assert!(
            errors[0].contains("no ConstraintTemplate defines kind K8sRequiredLabels"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_name_shared_by_two_kinds_is_qualified_by_kind() {
        let mut second = template();
        second["metadata"]["name"] = json!("k8sother");
        second["spec"]["crd"]["spec"]["names"]["kind"] = json!("K8sOther");
        let mut other = constraint(json!({}));
        other["kind"] = json!("K8sOther");
        let t = translate(&[
            doc(template()),
            doc(second),
            doc(constraint(json!({}))),
            doc(other),
        ])
        .unwrap();
        let ids: Vec<&String> = t.config_layer["policies"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            ids,
            [
                "k8sother-ns-must-have-owner",
                "k8srequiredlabels-ns-must-have-owner"
            ]
        );
    }

    #[test]
    fn other_documents_are_ignored() {
        let t = translate(&[doc(json!({"apiVersion": "v1", "kind": "ConfigMap"}))]).unwrap();
        assert!(t.modules.is_empty());
    }
}
