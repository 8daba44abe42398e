//! Reads regorus's parsed modules for what the engine must know before evaluating anything: each
//! module's package and rules (with lines), whether it uses `with`, and every function call that is
//! neither a builtin of this regorus build nor defined in the bundle (regorus would only fail at eval).

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Module, Rule, RuleHead, WithModifier};
use regorus::Engine;

use super::visit::{walk_expr, walk_with, Visitor};

/// A rule head as written, e.g. `deny` or `test_allows_compliant_pod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// First component of the head (`helpers` for `helpers.double(x) := ...`).
    pub name: String,
    /// The static part of the head as a dotted path (`helpers.double`); equals `name` for simple heads.
    pub path: String,
    pub line: usize,
}

/// What one module declares.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    pub file: String,
    /// `data.regate.policies.pod_security`.
    pub package: String,
    pub rules: Vec<RuleInfo>,
    pub uses_with: bool,
}

/// A call to a function that does not exist; `Display` gives file:line:column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: unknown function {name}: not a builtin of this regate build and not defined in the bundle")]
pub struct UnknownFunction {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub name: String,
}

struct Call {
    name: String,
    line: usize,
    column: usize,
}

/// The calls of one module with what is needed to resolve them.
struct ModuleCalls {
    file: String,
    package: String,
    imports: BTreeMap<String, String>,
    calls: Vec<Call>,
}

/// Inspects every module loaded into `engine`.
pub fn inspect(engine: &mut Engine) -> (Vec<ModuleInfo>, Vec<UnknownFunction>) {
    let modules = engine.get_modules().clone();
    let mut infos = Vec::new();
    let mut defined: BTreeSet<String> = BTreeSet::new();
    let mut calls_by_module: Vec<ModuleCalls> = Vec::new();
    for module in modules.iter() {
        let file = module.package.span.source.file().to_string();
        let package = format!("data.{}", module.package.refr.span().text().trim());
        let mut rules = Vec::new();
        let mut found = CallsAndWith::default();
        for rule in module.policy.iter() {
            if let Some(components) = head_components(rule) {
                let path = components.join(".");
                let name = components.first().cloned().unwrap_or_default();
                defined.insert(format!("{package}.{name}"));
                defined.insert(format!("{package}.{path}"));
                rules.push(RuleInfo {
                    name,
                    path,
                    line: rule.span().line as usize,
                });
            }
            found.visit_rule(rule);
        }
        let imports = import_aliases(module);
        calls_by_module.push(ModuleCalls {
            file: file.clone(),
            package: package.clone(),
            imports,
            calls: found.calls,
        });
        infos.push(ModuleInfo {
            file,
            package,
            rules,
            uses_with: found.uses_with,
        });
    }
    let builtins = &*regorus::unstable::BUILTINS;
    let mut unknown = Vec::new();
    for ModuleCalls {
        file,
        package,
        imports,
        calls,
    } in calls_by_module
    {
        for call in calls {
            if call.name == "print" || builtins.contains_key(call.name.as_str()) {
                continue;
            }
            let resolved = resolve(&call.name, &package, &imports);
            if resolved.iter().any(|p| defined.contains(p)) {
                continue;
            }
            unknown.push(UnknownFunction {
                file: file.clone(),
                line: call.line,
                column: call.column,
                name: call.name,
            });
        }
    }
    (infos, unknown)
}

fn resolve(name: &str, package: &str, imports: &BTreeMap<String, String>) -> Vec<String> {
    if name.starts_with("data.") {
        return vec![name.to_string()];
    }
    let mut out = vec![format!("{package}.{name}")];
    let (head, rest) = name.split_once('.').unwrap_or((name, ""));
    if let Some(target) = imports.get(head) {
        out.push(if rest.is_empty() {
            target.clone()
        } else {
            format!("{target}.{rest}")
        });
    }
    out
}

/// `alias -> data.path` for every import of a plain `data` path (`import data.x.y [as z]`).
pub(crate) fn import_aliases(module: &Module) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for import in &module.imports {
        let path = import.refr.span().text().trim().to_string();
        if !path.starts_with("data.") || path.contains('[') {
            continue;
        }
        let alias = match &import.r#as {
            Some(span) => span.text().to_string(),
            None => path.rsplit('.').next().unwrap_or_default().to_string(),
        };
        out.insert(alias, path);
    }
    out
}

/// The reference a rule's head names (`deny`, `a.b`, `f` of `f(x)`).
pub(crate) fn head_ref(rule: &Rule) -> Option<&Expr> {
    match rule {
        Rule::Spec { head, .. } => Some(match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        }),
        Rule::Default { refr, .. } => Some(refr),
    }
}

/// The static components of a rule's head: `[deny]` for `deny contains msg if ...`, `[a, b]` for
/// `a.b := 1` and `a["b"] := 1`; a variable index ends the static part (`a[x] := 1` gives `[a]`).
pub(crate) fn head_components(rule: &Rule) -> Option<Vec<String>> {
    let mut expr = head_ref(rule)?;
    let mut reversed = Vec::new();
    loop {
        match expr {
            Expr::Var { span, .. } => {
                reversed.push(span.text().to_string());
                break;
            }
            Expr::RefDot { refr, field, .. } => {
                reversed.push(field.0.text().to_string());
                expr = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                match index.as_ref() {
                    Expr::String { span, .. } => {
                        reversed.push(span.text().trim_matches('"').to_string())
                    }
                    _ => reversed.clear(),
                }
                expr = refr;
            }
            _ => return None,
        }
    }
    reversed.reverse();
    Some(reversed)
}

/// Every call in a module's rules, and whether any statement has a `with` modifier.
#[derive(Default)]
struct CallsAndWith {
    calls: Vec<Call>,
    uses_with: bool,
}

impl Visitor for CallsAndWith {
    fn visit_with(&mut self, modifier: &WithModifier) {
        self.uses_with = true;
        walk_with(self, modifier);
    }

    fn visit_expr(&mut self, expr: &Expr) {
        if let Expr::Call { fcn, .. } = expr {
            // The position of a call is where its name starts: the innermost variable of the reference.
            let mut head: &Expr = fcn;
            while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = head {
                head = refr;
            }
            let span = head.span();
            self.calls.push(Call {
                name: fcn.span().text().trim().to_string(),
                line: span.line as usize,
                column: span.col as usize,
            });
        }
        walk_expr(self, expr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(files: &[(&str, &str)]) -> Engine {
        let mut e = Engine::new();
        for (name, src) in files {
            e.add_policy(name.to_string(), src.to_string()).unwrap();
        }
        e
    }

    #[test]
    fn lists_rules_and_packages() {
        let mut e = engine(&[(
            "a.rego",
            "package regate.policies.a\nimport rego.v1\n\ndeny contains \"x\" if { true }\nwarn contains \"y\" if { false }\n",
        )]);
        let (infos, unknown) = inspect(&mut e);
        assert!(unknown.is_empty());
        assert_eq!(infos[0].package, "data.regate.policies.a");
        let names: Vec<_> = infos[0]
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.line))
            .collect();
        assert_eq!(names, vec![("deny", 4), ("warn", 5)]);
        assert!(!infos[0].uses_with);
    }

    #[test]
    fn finds_unknown_functions_and_accepts_defined_ones() {
        let mut e = engine(&[
            (
                "lib.rego",
                "package regate.lib.k8s\nimport rego.v1\ncontainers(o) := o.spec.containers\n",
            ),
            (
                "p.rego",
                "package regate.policies.p\nimport rego.v1\nimport data.regate.lib.k8s\nlocal(x) := x\n\
                 deny contains m if {\n  some c in k8s.containers(input.review.object)\n  m := sprintf(\"%v\", [local(c)])\n  time.now_ns() > 0\n  data.regate.lib.k8s.containers(input) == 1\n  crypto.nope(1)\n}\n",
            ),
        ]);
        let (_, unknown) = inspect(&mut e);
        let names: Vec<_> = unknown.iter().map(|u| (u.name.as_str(), u.line)).collect();
        // time.now_ns is not built into this regorus build (no `time` feature), crypto.nope never exists.
        assert_eq!(names, vec![("time.now_ns", 8), ("crypto.nope", 10)]);
        let text = unknown[1].to_string();
        assert!(
            text.starts_with("p.rego:10:3: unknown function crypto.nope"),
            "{text}"
        );
    }

    #[test]
    fn ref_head_functions_are_defined() {
        let mut e = engine(&[(
            "h.rego",
            "package p\nhelpers.double(x) := x * 2\nobj[\"k\"].v := 1\ny := helpers.double(2)\n",
        )]);
        let (infos, unknown) = inspect(&mut e);
        assert!(unknown.is_empty(), "{unknown:?}");
        let paths: Vec<_> = infos[0].rules.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, vec!["helpers.double", "obj.k.v", "y"]);
    }

    #[test]
    fn detects_with() {
        let mut e = engine(&[(
            "t.rego",
            "package t\nimport rego.v1\ntest_x if { input.a == 1 with input as {\"a\": 1} }\n",
        )]);
        let (infos, _) = inspect(&mut e);
        assert!(infos[0].uses_with);
    }
}
