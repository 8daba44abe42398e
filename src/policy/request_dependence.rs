//! Which policies cannot be judged on a stored object: those whose decision depends on the admission
//! request rather than on the object (`input.review.operation`, `userInfo`, `oldObject`, `dryRun`,
//! `options`). An audit has no request, so their results would be guesses; they are reported as `skip`.
//!
//! The decision is static and conservative. Every rule of the bundle is read (its source text, comments
//! and string literals aside for references) for direct reads of those fields and for references to other
//! rules (same package, imported aliases, `data.` paths); a rule depends on the request when it reads a
//! request field or refers to a rule that does. A policy depends on the request when any rule of its
//! package does, or when its `match.operations` leaves out `CREATE` (it only judges updates, deletes or
//! connects). The one exception is [`OBJECT_SELECTORS`]: rules that read the operation only to judge the
//! old object of a DELETE, which for a stored object is always its own object.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use crate::policy::ast::{head_components, import_aliases};
use crate::policy::{Policy, PolicySet};

/// Fields of an AdmissionRequest that describe the request, not the object.
pub const REQUEST_FIELDS: &[&str] = &["operation", "userInfo", "oldObject", "dryRun", "options"];

/// Rules that read the request only to pick the object a DELETE judges (`oldObject`); for a stored
/// object, which no DELETE is about, their value is `input.review.object`.
pub const OBJECT_SELECTORS: &[&str] = &["data.regate.lib.k8s.obj"];

/// Why a policy is not judged on stored objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDependence {
    pub reason: String,
}

/// What one rule reads: request fields directly, and the rules it refers to.
#[derive(Debug, Default)]
struct RuleReads {
    fields: BTreeSet<String>,
    references: BTreeSet<String>,
}

/// Every rule of the bundle's (non-test) modules, by full path (`data.regate.lib.k8s.operation`).
#[derive(Debug, Default)]
pub struct RuleGraph {
    rules: BTreeMap<String, RuleReads>,
}

/// Source text without comments; string literals kept or blanked.
fn strip(text: &str, keep_strings: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut in_raw = false;
    let mut in_comment = false;
    let mut escaped = false;
    for ch in text.chars() {
        if in_comment {
            if ch == '\n' {
                in_comment = false;
                out.push(ch);
            }
            continue;
        }
        if in_string || in_raw {
            let closes = if in_raw {
                ch == '`'
            } else {
                !escaped && ch == '"'
            };
            escaped = in_string && !escaped && ch == '\\';
            if closes {
                in_string = false;
                in_raw = false;
                out.push(ch);
            } else {
                out.push(if keep_strings { ch } else { ' ' });
            }
            continue;
        }
        match ch {
            '#' => in_comment = true,
            '"' => {
                in_string = true;
                out.push(ch);
            }
            '`' => {
                in_raw = true;
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

/// The request fields `code` reads through `input.review`. A use of `input.review` (or `input`) as a
/// whole counts as reading every field.
fn request_fields_read(code: &str) -> BTreeSet<String> {
    static ACCESS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let access = ACCESS.get_or_init(|| {
        Regex::new(r#"\binput(?:\s*\.\s*review|\s*\[\s*"review"\s*\])?(\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*"([^"]*)"|,\s*\[?\s*"([^"]*)")|[^\w.\[])?"#)
            .expect("valid regex")
    });
    let mut fields = BTreeSet::new();
    for caps in access.captures_iter(code) {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        if !whole.contains("review") {
            // `input.parameters` and the like; `input` alone is the whole input.
            let rest = whole.trim_start_matches("input").trim_start();
            if rest.starts_with('.') || rest.starts_with('[') {
                continue;
            }
            fields.insert("input".to_string());
            continue;
        }
        let field = caps
            .get(2)
            .or_else(|| caps.get(3))
            .or_else(|| caps.get(4))
            .map(|m| m.as_str().to_string());
        match field {
            Some(f) if REQUEST_FIELDS.contains(&f.as_str()) => {
                fields.insert(f);
            }
            Some(_) => {}
            None => {
                fields.insert("review".to_string());
            }
        }
    }
    fields
}

impl RuleGraph {
    /// Reads every non-test module of `set`.
    pub fn of(set: &PolicySet) -> RuleGraph {
        let mut template = set
            .template
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut graph = RuleGraph::default();
        let mut parsed = Vec::new();
        for module in template.get_modules().iter() {
            let package = format!("data.{}", module.package.refr.span().text().trim());
            let aliases = import_aliases(module);
            for rule in module.policy.iter() {
                let Some(components) = head_components(rule) else {
                    continue;
                };
                let path = format!("{package}.{}", components.join("."));
                parsed.push((
                    path,
                    package.clone(),
                    aliases.clone(),
                    rule.span().text().to_string(),
                ));
            }
        }
        for (path, _, _, _) in &parsed {
            graph.rules.entry(path.clone()).or_default();
        }
        for (path, package, aliases, text) in parsed {
            let fields = request_fields_read(&strip(&text, true));
            let references = graph.references(&strip(&text, false), &package, &aliases);
            let reads = graph.rules.entry(path).or_default();
            reads.fields.extend(fields);
            reads.references.extend(references);
        }
        graph
    }

    /// The longest known rule path that `components` starts with.
    fn resolve(&self, components: &[&str]) -> Option<String> {
        (1..=components.len())
            .rev()
            .map(|n| components[..n].join("."))
            .find(|candidate| self.rules.contains_key(candidate))
    }

    /// The rules `code` (comments and strings blanked) refers to.
    fn references(
        &self,
        code: &str,
        package: &str,
        aliases: &BTreeMap<String, String>,
    ) -> BTreeSet<String> {
        static TOKEN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let token = TOKEN
            .get_or_init(|| Regex::new(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*").expect("valid regex"));
        let mut out = BTreeSet::new();
        for m in token.find_iter(code) {
            if code[..m.start()].ends_with('.') {
                continue;
            }
            let parts: Vec<&str> = m.as_str().split('.').collect();
            let expanded: Vec<String> = match parts[0] {
                "data" => parts.iter().map(|p| p.to_string()).collect(),
                first => match aliases.get(first) {
                    Some(path) => std::iter::once(path.clone())
                        .chain(parts[1..].iter().map(|p| p.to_string()))
                        .collect(),
                    None => std::iter::once(package.to_string())
                        .chain(parts.iter().map(|p| p.to_string()))
                        .collect(),
                },
            };
            let joined = expanded.join(".");
            let components: Vec<&str> = joined.split('.').collect();
            if let Some(path) = self.resolve(&components) {
                out.insert(path);
            }
        }
        out
    }

    /// Why the rule at `path` depends on the request (`field (via a → b)`), or `None`.
    fn dependence(&self, path: &str, visiting: &mut BTreeSet<String>) -> Option<String> {
        if OBJECT_SELECTORS.contains(&path) || !visiting.insert(path.to_string()) {
            return None;
        }
        let reads = self.rules.get(path)?;
        let found = match reads.fields.iter().next() {
            Some(field) => Some(format!("reads input.review.{field} ({path})")),
            None => reads
                .references
                .iter()
                .filter(|r| r.as_str() != path)
                .find_map(|r| self.dependence(r, visiting)),
        };
        visiting.remove(path);
        found
    }

    /// The rules that read a request field directly.
    pub fn direct_readers(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .filter(|(_, reads)| !reads.fields.is_empty())
            .map(|(path, _)| path.as_str())
            .collect()
    }

    /// Why `policy` cannot be judged on a stored object, or `None` when it can.
    pub fn policy_dependence(&self, policy: &Policy) -> Option<RequestDependence> {
        let operations = &policy.match_spec.operations;
        if !operations.is_empty()
            && !operations
                .iter()
                .any(|op| op == "*" || op.eq_ignore_ascii_case("CREATE"))
        {
            return Some(RequestDependence {
                reason: format!("matches only {} requests", operations.join("/")),
            });
        }
        let prefix = format!("{}.", policy.package);
        self.rules
            .keys()
            .filter(|path| path.starts_with(&prefix))
            .find_map(|path| self.dependence(path, &mut BTreeSet::new()))
            .map(|reason| RequestDependence { reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{build_bundle, load, BundleSpec, LoadOptions};

    #[test]
    fn the_servers_bundle_keeps_the_analysis_after_its_template_is_released() {
        // `regate serve` empties the interpreter template of an all-VM set; the in-server audit must
        // still skip what `regate audit` skips.
        let spec = BundleSpec {
            load: LoadOptions::default(),
            run_tests: false,
            allow_empty: false,
        };
        let bundle = build_bundle(&spec, None).unwrap();
        let released = bundle.set.request_dependence();
        let fresh = load(&LoadOptions::default()).unwrap();
        assert_eq!(released, fresh.request_dependence());
        assert!(released.contains_key("tenant-isolation"), "{released:?}");
        assert!(!released.contains_key("pod-security"), "{released:?}");
    }

    #[test]
    fn request_fields_are_found_in_every_spelling() {
        let read = |code: &str| request_fields_read(code).into_iter().collect::<Vec<_>>();
        assert_eq!(read("x := input.review.operation"), vec!["operation"]);
        assert_eq!(
            read(r#"x := input.review["userInfo"].username"#),
            vec!["userInfo"]
        );
        assert_eq!(
            read(r#"x := object.get(input.review, ["oldObject", "spec"], {})"#),
            vec!["oldObject"]
        );
        assert_eq!(read("x := input.review.object.spec"), Vec::<String>::new());
        assert_eq!(read("x := input.parameters.max"), Vec::<String>::new());
        assert_eq!(read("x := input.review\n"), vec!["review"]);
        assert_eq!(read("x := input\n"), vec!["input"]);
    }

    #[test]
    fn comments_and_strings_are_not_code() {
        let code = "x := 1 # input.review.operation\ny := \"k8s.operation\"";
        assert!(request_fields_read(&strip(code, true)).is_empty());
        assert!(!strip(code, false).contains("k8s.operation"));
    }

    #[test]
    fn the_library_reads_the_request_in_known_rules_only() {
        // Adding a library rule that reads the request is a decision for the audit: either it is an
        // accessor (and every policy using it is skipped), or it only selects the object of a DELETE
        // and belongs in OBJECT_SELECTORS.
        let set = load(&LoadOptions::default()).unwrap();
        let graph = RuleGraph::of(&set);
        let library: Vec<&str> = graph
            .direct_readers()
            .into_iter()
            .filter(|p| p.starts_with("data.regate.lib."))
            .collect();
        assert_eq!(
            library,
            vec![
                "data.regate.lib.k8s.groups",
                "data.regate.lib.k8s.obj",
                "data.regate.lib.k8s.old_obj",
                "data.regate.lib.k8s.operation",
                "data.regate.lib.k8s.username",
            ]
        );
    }

    #[test]
    fn bundled_policies_split_into_object_and_request_policies() {
        let set = load(&LoadOptions::default()).unwrap();
        let graph = RuleGraph::of(&set);
        let judged: Vec<&str> = set
            .policies
            .iter()
            .filter(|p| graph.policy_dependence(p).is_none())
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(
            judged,
            vec!["pod-security", "resource-limits", "workload-hygiene"]
        );
        let tenant = set
            .policies
            .iter()
            .find(|p| p.id == "tenant-isolation")
            .unwrap();
        let reason = graph.policy_dependence(tenant).unwrap().reason;
        assert!(reason.starts_with("reads input.review."), "{reason}");
    }
}
