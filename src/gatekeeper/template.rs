//! Reading a ConstraintTemplate (`templates.gatekeeper.sh/v1` and `v1beta1`): its kind, its parameter
//! schema and the Rego of the `admission.k8s.gatekeeper.sh` target, from `targets[].rego` + `libs` or
//! from `code[]` with `engine: Rego` (`source.rego`, `source.libs`, `source.version`).

use serde_json::Value as Json;

/// The target regate implements (Gatekeeper's admission target).
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// The API versions of ConstraintTemplate regate reads.
pub const TEMPLATE_API_VERSIONS: [&str; 2] = [
    "templates.gatekeeper.sh/v1",
    "templates.gatekeeper.sh/v1beta1",
];

/// A template's Rego for the admission target.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRego {
    pub main: String,
    pub libs: Vec<String>,
    /// `source.version: v1` (Rego v1 syntax); templates are Rego v0 otherwise, as in Gatekeeper.
    pub v1: bool,
}

/// One ConstraintTemplate as regate uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// `metadata.name` (Gatekeeper requires it to be the lowercased kind).
    pub name: String,
    /// `spec.crd.spec.names.kind`: the kind of its Constraints.
    pub kind: String,
    /// `spec.crd.spec.validation.openAPIV3Schema`, when given.
    pub schema: Option<Json>,
    /// `spec.crd.spec.validation.legacySchema`: undeclared parameters are kept, not pruned. Gatekeeper
    /// defaults it to true for `v1beta1` templates and to false for `v1`.
    pub legacy_schema: bool,
    pub rego: TemplateRego,
    /// What was left out, for the load notes (a CEL `code[]` entry, another target).
    pub notes: Vec<String>,
}

fn text<'a>(doc: &'a Json, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(doc, |v, key| v.get(key))?.as_str()
}

fn strings(value: Option<&Json>, what: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what}[{i}] must be a string"))
            })
            .collect(),
        Some(_) => Err(format!("{what} must be a list of strings")),
    }
}

/// Reads a ConstraintTemplate document. Errors name the field.
pub fn read_template(doc: &Json) -> Result<Template, String> {
    let name = text(doc, &["metadata", "name"])
        .ok_or("metadata.name is missing")?
        .to_string();
    let kind = text(doc, &["spec", "crd", "spec", "names", "kind"])
        .ok_or("spec.crd.spec.names.kind is missing")?
        .to_string();
    if name != kind.to_lowercase() {
        return Err(format!(
            "metadata.name must be the lowercased kind ({}), as Gatekeeper requires; found {name}",
            kind.to_lowercase()
        ));
    }
    let schema = ["spec", "crd", "spec", "validation", "openAPIV3Schema"]
        .iter()
        .try_fold(doc, |v, key| v.get(key))
        .cloned();
    let v1beta1 =
        doc.get("apiVersion").and_then(Json::as_str) == Some("templates.gatekeeper.sh/v1beta1");
    let legacy_schema = ["spec", "crd", "spec", "validation", "legacySchema"]
        .iter()
        .try_fold(doc, |v, key| v.get(key))
        .and_then(Json::as_bool)
        .unwrap_or(v1beta1);
    let targets = doc
        .get("spec")
        .and_then(|s| s.get("targets"))
        .and_then(Json::as_array)
        .ok_or("spec.targets is missing")?;
    let mut notes = Vec::new();
    let mut found = None;
    for (t, target) in targets.iter().enumerate() {
        let target_name = target
            .get("target")
            .and_then(Json::as_str)
            .unwrap_or_default();
        if target_name != ADMISSION_TARGET {
            notes.push(format!(
                "spec.targets[{t}]: target {target_name:?} is not {ADMISSION_TARGET}; skipped"
            ));
            continue;
        }
        if found.is_some() {
            return Err(format!(
                "spec.targets[{t}]: a second {ADMISSION_TARGET} target"
            ));
        }
        found = Some(read_target(target, t, &mut notes)?);
    }
    let rego = found.ok_or_else(|| {
        format!(
            "spec.targets has no {ADMISSION_TARGET} target with Rego (regate runs Rego templates)"
        )
    })?;
    Ok(Template {
        name,
        kind,
        schema,
        legacy_schema,
        rego,
        notes,
    })
}

/// The Rego of one admission target: `code[]` with `engine: Rego` wins over `rego`, as in Gatekeeper.
fn read_target(target: &Json, t: usize, notes: &mut Vec<String>) -> Result<TemplateRego, String> {
    let mut from_code = None;
    for (c, code) in target
        .get("code")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("spec.targets[{t}].code[{c}]");
        match code.get("engine").and_then(Json::as_str) {
            Some("Rego") => {
                let source = code.get("source").ok_or(format!("{at}.source is missing"))?;
                let main = source
                    .get("rego")
                    .and_then(Json::as_str)
                    .ok_or(format!("{at}.source.rego is missing"))?;
                let version = source.get("version").and_then(Json::as_str).unwrap_or("v0");
                if !matches!(version, "v0" | "v1") {
                    return Err(format!("{at}.source.version must be v0 or v1, not {version}"));
                }
                from_code = Some(TemplateRego {
                    main: main.to_string(),
                    libs: strings(source.get("libs"), &format!("{at}.source.libs"))?,
                    v1: version == "v1",
                });
            }
            Some(engine) => notes.push(format!(
                "{at}: engine {engine} is not run by regate (only Rego); the template's Rego decides alone"
            )),
            None => return Err(format!("{at}.engine is missing")),
        }
    }
    if let Some(rego) = from_code {
        return Ok(rego);
    }
    let main = target.get("rego").and_then(Json::as_str).ok_or(format!(
        "spec.targets[{t}] has neither rego nor a code entry with engine Rego"
    ))?;
    Ok(TemplateRego {
        main: main.to_string(),
        libs: strings(target.get("libs"), &format!("spec.targets[{t}].libs"))?,
        v1: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(target: Json) -> Json {
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
               "metadata": {"name": "k8sdemo"},
               "spec": {"crd": {"spec": {"names": {"kind": "K8sDemo"},
                        "validation": {"openAPIV3Schema": {"type": "object"}}}},
                        "targets": [target]}})
    }

    #[test]
    fn rego_and_libs_of_the_admission_target() {
        let t = read_template(&template(json!({"target": ADMISSION_TARGET,
            "rego": "package k8sdemo\n", "libs": ["package lib.a\n"]})))
        .unwrap();
        assert_eq!(t.kind, "K8sDemo");
        assert_eq!(t.schema, Some(json!({"type": "object"})));
        assert!(!t.legacy_schema, "v1 templates prune");
        let mut v1beta1 =
            template(json!({"target": ADMISSION_TARGET, "rego": "package k8sdemo\n"}));
        v1beta1["apiVersion"] = json!("templates.gatekeeper.sh/v1beta1");
        assert!(
            read_template(&v1beta1).unwrap().legacy_schema,
            "v1beta1 defaults to legacySchema"
        );
        v1beta1["spec"]["crd"]["spec"]["validation"]["legacySchema"] = json!(false);
        assert!(!read_template(&v1beta1).unwrap().legacy_schema);
        assert_eq!(
            t.rego,
            TemplateRego {
                main: "package k8sdemo\n".into(),
                libs: vec!["package lib.a\n".into()],
                v1: false
            }
        );
    }

    #[test]
    fn code_with_engine_rego_and_version_v1_and_cel_is_noted() {
        let t = read_template(&template(json!({"target": ADMISSION_TARGET, "code": [
            {"engine": "K8sNativeValidation", "source": {"validations": []}},
            {"engine": "Rego", "source": {"rego": "package k8sdemo\n", "version": "v1"}}]})))
        .unwrap();
        assert!(t.rego.v1);
        assert_eq!(t.notes.len(), 1);
        assert!(t.notes[0].contains("K8sNativeValidation"), "{:?}", t.notes);
    }

    #[test]
    fn errors_name_the_field() {
        let mut doc = template(json!({"target": ADMISSION_TARGET}));
        assert!(read_template(&doc)
            .unwrap_err()
            .contains("neither rego nor"));
        doc["metadata"]["name"] = json!("other");
        assert!(read_template(&doc).unwrap_err().contains("lowercased kind"));
        let cel_only = template(
            json!({"target": ADMISSION_TARGET, "code": [{"engine": "K8sNativeValidation"}]}),
        );
        assert!(read_template(&cel_only)
            .unwrap_err()
            .contains("neither rego nor"));
    }
}
