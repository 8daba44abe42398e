//! The one walk over regorus's parsed rules. Every analysis of the AST (unknown functions and `with` in
//! [`super::ast`], alias uses in [`super::import_alias`], rule dependencies in [`super::rule_reuse`],
//! coverable lines in the test runner) implements [`Visitor`] and overrides only the nodes it cares
//! about; the default methods walk every child, so a caller that overrides a method and still wants the
//! children calls the matching `walk_*` function.
//!
//! What the default walk reaches: a rule's value (`:= value`, a set rule's key, a function's result),
//! its bodies and their `else` values; in a query, every statement's `with` modifiers (target and
//! value) and its literal; in a literal, `some … in` keys, values and collections, `every` domains and
//! bodies; in an expression, every sub-expression (a call's function reference included). Not reached:
//! rule heads' references and function arguments (they name, they do not evaluate), and the names that
//! `some x` / `every k, v` declare (they are spans, not expressions).

use regorus::unstable::{Expr, Literal, Query, Rule, RuleHead, WithModifier};

/// A walk over rules, queries, literals and expressions; see the module documentation.
pub trait Visitor {
    fn visit_rule(&mut self, rule: &Rule) {
        walk_rule(self, rule);
    }

    /// The value of an `else` branch (`else := value`).
    fn visit_else_value(&mut self, value: &Expr) {
        self.visit_expr(value);
    }

    fn visit_query(&mut self, query: &Query) {
        walk_query(self, query);
    }

    /// One `with target as value` modifier of a statement.
    fn visit_with(&mut self, modifier: &WithModifier) {
        walk_with(self, modifier);
    }

    fn visit_literal(&mut self, literal: &Literal) {
        walk_literal(self, literal);
    }

    fn visit_expr(&mut self, expr: &Expr) {
        walk_expr(self, expr);
    }
}

/// The rule's value (or set key), then each body: its `else` value, then its query.
pub fn walk_rule<V: Visitor + ?Sized>(visitor: &mut V, rule: &Rule) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            let value = match head {
                RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                    assign.as_ref().map(|a| &a.value)
                }
                RuleHead::Set { key, .. } => key.as_ref(),
            };
            if let Some(value) = value {
                visitor.visit_expr(value);
            }
            for body in bodies {
                if let Some(assign) = &body.assign {
                    visitor.visit_else_value(&assign.value);
                }
                visitor.visit_query(&body.query);
            }
        }
        Rule::Default { value, .. } => visitor.visit_expr(value),
    }
}

/// Each statement in order: its `with` modifiers, then its literal.
pub fn walk_query<V: Visitor + ?Sized>(visitor: &mut V, query: &Query) {
    for stmt in &query.stmts {
        for modifier in &stmt.with_mods {
            visitor.visit_with(modifier);
        }
        visitor.visit_literal(&stmt.literal);
    }
}

/// The target, then the value.
pub fn walk_with<V: Visitor + ?Sized>(visitor: &mut V, modifier: &WithModifier) {
    visitor.visit_expr(&modifier.refr);
    visitor.visit_expr(&modifier.r#as);
}

pub fn walk_literal<V: Visitor + ?Sized>(visitor: &mut V, literal: &Literal) {
    match literal {
        Literal::SomeVars { .. } => {}
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => walk_membership(visitor, key.as_deref(), value, collection),
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => visitor.visit_expr(expr),
        Literal::Every { domain, query, .. } => {
            visitor.visit_expr(domain);
            visitor.visit_query(query);
        }
    }
}

/// The direct sub-expressions (and comprehension queries) of `expr`.
pub fn walk_expr<V: Visitor + ?Sized>(visitor: &mut V, expr: &Expr) {
    match expr {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::Var { .. } => {}
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for item in items {
                visitor.visit_expr(item);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                visitor.visit_expr(key);
                visitor.visit_expr(value);
            }
        }
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            visitor.visit_expr(term);
            visitor.visit_query(query);
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => {
            visitor.visit_expr(key);
            visitor.visit_expr(value);
            visitor.visit_query(query);
        }
        Expr::Call { fcn, params, .. } => {
            visitor.visit_expr(fcn);
            for param in params {
                visitor.visit_expr(param);
            }
        }
        Expr::UnaryExpr { expr, .. } => visitor.visit_expr(expr),
        Expr::RefDot { refr, .. } => visitor.visit_expr(refr),
        Expr::RefBrack { refr, index, .. } => {
            visitor.visit_expr(refr);
            visitor.visit_expr(index);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            visitor.visit_expr(lhs);
            visitor.visit_expr(rhs);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => walk_membership(visitor, key.as_deref(), value, collection),
    }
}

/// `[key,] value in collection`, as a `some … in` literal or a membership expression.
fn walk_membership<V: Visitor + ?Sized>(
    visitor: &mut V,
    key: Option<&Expr>,
    value: &Expr,
    collection: &Expr,
) {
    if let Some(key) = key {
        visitor.visit_expr(key);
    }
    visitor.visit_expr(value);
    visitor.visit_expr(collection);
}

/// The variables a pattern binds (`x`, `[a, b]`, `{"k": v}`): its variables, looking into arrays, sets
/// and objects only.
pub fn pattern_vars(pattern: &Expr) -> Vec<String> {
    struct PatternVars(Vec<String>);
    impl Visitor for PatternVars {
        fn visit_expr(&mut self, expr: &Expr) {
            match expr {
                Expr::Var { span, .. } => self.0.push(span.text().to_string()),
                Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } => {
                    walk_expr(self, expr)
                }
                _ => {}
            }
        }
    }
    let mut vars = PatternVars(Vec::new());
    vars.visit_expr(pattern);
    vars.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use regorus::Engine;

    /// Every variable name the default walk reaches in the rules of `src`, in walk order.
    fn vars_reached(src: &str) -> Vec<String> {
        struct Vars(Vec<String>);
        impl Visitor for Vars {
            fn visit_expr(&mut self, expr: &Expr) {
                if let Expr::Var { span, .. } = expr {
                    self.0.push(span.text().to_string());
                }
                walk_expr(self, expr);
            }
        }
        let mut engine = Engine::new();
        engine
            .add_policy("v.rego".into(), src.into())
            .expect("parses");
        let mut vars = Vars(Vec::new());
        for module in engine.get_modules().iter() {
            for rule in &module.policy {
                vars.visit_rule(rule);
            }
        }
        vars.0
    }

    #[test]
    fn the_default_walk_reaches_every_evaluated_expression() {
        let src = "package v\nimport rego.v1\n\
            f(arg) := a if { a := b } else := c if { d }\n\
            s contains e if { some k, v in g; every x in h { x == i } }\n\
            o := {j: m | some p in q(r).t[u]} if { w with input as y }\n\
            default z := zz\n";
        assert_eq!(
            vars_reached(src),
            [
                "a", "a", "b", "c", "d", "e", "k", "v", "g", "h", "x", "i", "j", "m", "p", "q",
                "r", "u", "input", "y", "w", "zz"
            ]
        );
    }

    #[test]
    fn pattern_vars_looks_into_collections_only() {
        let mut engine = Engine::new();
        engine
            .add_policy(
                "p.rego".into(),
                "package p\nf([a, {\"k\": b}], {c}, d, 1) := 1\n".into(),
            )
            .expect("parses");
        let modules = engine.get_modules().clone();
        let Rule::Spec {
            head: RuleHead::Func { args, .. },
            ..
        } = modules[0].policy[0].as_ref()
        else {
            panic!("a function rule");
        };
        let vars: Vec<String> = args.iter().flat_map(|a| pattern_vars(a)).collect();
        assert_eq!(vars, ["a", "b", "c", "d"]);
    }
}
