//! Expands references made through `import data.x.y [as z]` to the full `data.x.y` path in a module's
//! source before regorus compiles it.
//!
//! Why: regorus 0.14 (interpreter and compiled VM alike) resolves `z.rule` by evaluating the whole imported
//! package `data.x.y` as one document and then selecting `rule` from it. Every reference through an alias
//! therefore evaluates every rule of the library package, where `data.x.y.rule` evaluates just that rule.
//! Measured with `examples/policy_timing.rs` on a captured Pod review: a policy reading only
//! `k8s.kind` took ~110 µs, the same policy written `data.regate.lib.k8s.kind` ~3 µs. The two spellings
//! mean the same thing in Rego, so the rewrite changes cost, never results (the Rego tests and the
//! engine-equivalence suite run on the rewritten sources).
//!
//! The rewrite is conservative: an alias is left alone in a module that declares a local variable, a
//! function argument or a rule of the same name (there the name may not mean the import). Lines never
//! move, so coverage and `file:line` diagnostics stay true; columns after a rewritten reference on the
//! same line shift, which only matters for runtime error positions.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, Rule, RuleHead};
use regorus::Engine;

use super::visit::{pattern_vars, walk_expr, walk_literal, walk_rule, Visitor};

/// Returns `text` with every reference through a `data.*` import alias spelled out in full, or `None`
/// when nothing needs rewriting or the module does not parse (the caller then loads the original, so
/// parse errors are reported against what the author wrote).
pub fn expand(file: &str, text: &str) -> Option<String> {
    let mut scratch = Engine::new();
    scratch
        .add_policy(file.to_string(), text.to_string())
        .ok()?;
    let modules = scratch.get_modules().clone();
    let module = modules.first()?;
    let aliases = super::ast::import_aliases(module);
    if aliases.is_empty() {
        return None;
    }
    let mut walk = Walk {
        aliases: &aliases,
        uses: Vec::new(),
        declared: BTreeSet::new(),
    };
    for rule in module.policy.iter() {
        walk.visit_rule(rule);
    }
    let mut edits: Vec<(usize, usize, &str)> = walk
        .uses
        .iter()
        .filter(|(_, _, alias)| !walk.declared.contains(*alias))
        .filter_map(|(start, end, alias)| {
            let target = aliases.get(*alias)?;
            (text.get(*start..*end) == Some(alias.as_str())).then_some((
                *start,
                *end,
                target.as_str(),
            ))
        })
        .collect();
    if edits.is_empty() {
        return None;
    }
    edits.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    edits.dedup_by_key(|e| e.0);
    let mut out = text.to_string();
    for (start, end, target) in edits {
        out.replace_range(start..end, target);
    }
    Some(out)
}

struct Walk<'a> {
    aliases: &'a BTreeMap<String, String>,
    /// Byte range and alias of every variable reference that names an alias.
    uses: Vec<(usize, usize, &'a String)>,
    /// Aliases that some declaration in the module shadows.
    declared: BTreeSet<&'a String>,
}

impl<'a> Walk<'a> {
    fn alias(&self, name: &str) -> Option<&'a String> {
        self.aliases.get_key_value(name).map(|(k, _)| k)
    }

    /// Every variable inside a pattern that declares variables (`x`, `[a, b]`, `{"k": v}`).
    fn declare_pattern(&mut self, pattern: &Expr) {
        for name in pattern_vars(pattern) {
            self.declare_name(&name);
        }
    }

    fn declare_name(&mut self, name: &str) {
        if let Some(a) = self.alias(name) {
            self.declared.insert(a);
        }
    }
}

impl Visitor for Walk<'_> {
    fn visit_rule(&mut self, rule: &Rule) {
        if let Some(name) = super::ast::head_components(rule).and_then(|c| c.into_iter().next()) {
            self.declare_name(&name);
        }
        if let Rule::Spec {
            head: RuleHead::Func { args, .. },
            ..
        } = rule
        {
            for arg in args {
                self.declare_pattern(arg);
            }
        }
        walk_rule(self, rule);
    }

    fn visit_literal(&mut self, literal: &Literal) {
        match literal {
            Literal::SomeVars { vars, .. } => {
                for v in vars {
                    self.declare_name(v.text());
                }
            }
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.declare_pattern(k);
                }
                self.declare_pattern(value);
                self.visit_expr(collection);
            }
            Literal::Every { key, value, .. } => {
                if let Some(k) = key {
                    self.declare_name(k.text());
                }
                self.declare_name(value.text());
                walk_literal(self, literal);
            }
            Literal::Expr { .. } | Literal::NotExpr { .. } => walk_literal(self, literal),
        }
    }

    fn visit_expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Var { span, .. } => {
                if let Some(a) = self.alias(span.text()) {
                    self.uses.push((span.start as usize, span.end as usize, a));
                }
            }
            Expr::AssignExpr { lhs, rhs, .. } => {
                self.declare_pattern(lhs);
                self.visit_expr(rhs);
            }
            _ => walk_expr(self, expr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const LIB: &str = "package lib.k8s\n\nkind := input.kind\n\nf(x) := x + 1\n";

    #[rstest]
    #[case::value_ref(
        "package p\nimport data.lib.k8s\nallow if k8s.kind == \"Pod\"\n",
        Some("package p\nimport data.lib.k8s\nallow if data.lib.k8s.kind == \"Pod\"\n")
    )]
    #[case::function_call_and_alias(
        "package p\nimport data.lib.k8s as q\nv := q.f(1)\n",
        Some("package p\nimport data.lib.k8s as q\nv := data.lib.k8s.f(1)\n")
    )]
    #[case::inside_comprehension(
        "package p\nimport data.lib.k8s\ns := {x | some x in k8s.items}\n",
        Some("package p\nimport data.lib.k8s\ns := {x | some x in data.lib.k8s.items}\n")
    )]
    #[case::shadowed_by_local(
        "package p\nimport data.lib.k8s\nv if { k8s := 1; k8s == 1 }\n",
        None
    )]
    #[case::shadowed_by_some_in(
        "package p\nimport data.lib.k8s\nv if { some k8s in [1]; k8s == 1 }\n",
        None
    )]
    #[case::shadowed_by_argument("package p\nimport data.lib.k8s\nf(k8s) := k8s\n", None)]
    #[case::shadowed_by_rule("package p\nimport data.lib.k8s\nk8s := 1\n", None)]
    #[case::field_named_like_alias("package p\nv := input.k8s\n", None)]
    #[case::input_import_untouched("package p\nimport input.review\nv := review.x\n", None)]
    #[case::does_not_parse("package p\nimport data.lib.k8s\nv := k8s.kind +\n", None)]
    fn expands_aliases(#[case] src: &str, #[case] expected: Option<&str>) {
        assert_eq!(expand("p.rego", src).as_deref(), expected);
    }

    #[test]
    fn rewritten_module_evaluates_like_the_original() {
        let src = "package p\nimport data.lib.k8s\nv := [k8s.kind, k8s.f(1)]\n";
        let mut results = Vec::new();
        for text in [src.to_string(), expand("p.rego", src).expect("rewritten")] {
            let mut e = Engine::new();
            e.add_policy("lib.rego".into(), LIB.into()).expect("lib");
            e.add_policy("p.rego".into(), text).expect("policy");
            e.set_input(regorus::Value::from_json_str(r#"{"kind":"Pod"}"#).expect("input"));
            results.push(e.eval_rule("data.p.v".into()).expect("eval"));
        }
        assert_eq!(results[0], results[1]);
        assert_eq!(
            results[0],
            regorus::Value::from_json_str(r#"["Pod", 2]"#).expect("json")
        );
    }
}
