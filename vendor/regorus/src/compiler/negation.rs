// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! The operands of a negated expression that Rego evaluates before the negation.
//!
//! OPA's compiler binds the dynamic operands of a call (references, nested calls, arithmetic,
//! membership tests) to generated variables in front of the expression that uses them
//! (`rewriteDynamics` and `rewriteExprTerms` in OPA's `ast/compile.go`). For a negated expression the
//! generated bindings stand outside the `not`: in `not is_object(input.missing)` the reference
//! `input.missing` is evaluated first, and when it is undefined the body is undefined; `not` never
//! sees the call. The two sides of `==` and `=` are the exception: a reference there stays inside the
//! negation (`not input.missing == 1` is true), only the dynamic parts nested in it (a reference used
//! as an index, a call) are bound first. A bare reference (`not input.missing`) stays inside as well.
//!
//! [`operands_evaluated_before_negation`] lists those operands; the interpreter and the RVM compiler
//! require each to be defined before they evaluate the negation.

use crate::ast::{BoolOp, Expr, ExprRef};
use crate::value::Value;
use alloc::vec::Vec;

/// The subexpressions of `expr` (the expression of a `not`) that must be defined for `not expr` to
/// be evaluated at all. Variables are listed too (a rule of the package is referred to by name);
/// callers skip local variables, which are always defined. `data` and `_` are never listed.
pub fn operands_evaluated_before_negation(expr: &ExprRef) -> Vec<&ExprRef> {
    let mut operands = Vec::new();
    match expr.as_ref() {
        Expr::Call { params, .. } => {
            for param in params {
                collect_bound_first(param, &mut operands);
            }
        }
        Expr::BoolExpr { op, lhs, rhs, .. } if *op == BoolOp::Eq => {
            collect_unification_side(lhs, &mut operands);
            collect_unification_side(rhs, &mut operands);
        }
        Expr::AssignExpr { lhs, rhs, .. } => {
            collect_unification_side(lhs, &mut operands);
            collect_unification_side(rhs, &mut operands);
        }
        Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. } => {
            collect_bound_first(lhs, &mut operands);
            collect_bound_first(rhs, &mut operands);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(key) = key {
                collect_bound_first(key, &mut operands);
            }
            collect_bound_first(value, &mut operands);
            collect_bound_first(collection, &mut operands);
        }
        Expr::UnaryExpr { expr, .. } => collect_bound_first(expr, &mut operands),
        Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
            collect_reference_indices(expr, &mut operands)
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for item in items {
                collect_bound_first(item, &mut operands);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                collect_bound_first(key, &mut operands);
                collect_bound_first(value, &mut operands);
            }
        }
        _ => {}
    }
    operands
}

/// An operand of a call: a reference, a call or an operator is bound to a variable before the call
/// (so it is listed); a collection literal has its elements bound; comprehensions (always defined)
/// and scalars need nothing.
fn collect_bound_first<'a>(expr: &'a ExprRef, operands: &mut Vec<&'a ExprRef>) {
    match expr.as_ref() {
        Expr::Var {
            value: Value::String(name),
            ..
        } if matches!(name.as_ref(), "_" | "data") => {}
        Expr::Var { .. } => operands.push(expr),
        Expr::RefDot { .. }
        | Expr::RefBrack { .. }
        | Expr::Call { .. }
        | Expr::BoolExpr { .. }
        | Expr::ArithExpr { .. }
        | Expr::BinExpr { .. }
        | Expr::Membership { .. }
        | Expr::UnaryExpr { .. } => operands.push(expr),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for item in items {
                collect_bound_first(item, operands);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                collect_bound_first(key, operands);
                collect_bound_first(value, operands);
            }
        }
        _ => {}
    }
}

/// A side of `==` or `=`: a reference stays in place (only its dynamic indices are bound first), a
/// comprehension too; anything else is bound as a call operand is.
fn collect_unification_side<'a>(expr: &'a ExprRef, operands: &mut Vec<&'a ExprRef>) {
    match expr.as_ref() {
        Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
            collect_reference_indices(expr, operands)
        }
        Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {}
        _ => collect_bound_first(expr, operands),
    }
}

/// The dynamic parts of a reference: each bracket index, and a head that is not a variable.
fn collect_reference_indices<'a>(expr: &'a ExprRef, operands: &mut Vec<&'a ExprRef>) {
    match expr.as_ref() {
        Expr::RefDot { refr, .. } => collect_reference_indices(refr, operands),
        Expr::RefBrack { refr, index, .. } => {
            collect_reference_indices(refr, operands);
            collect_bound_first(index, operands);
        }
        Expr::Var { .. } => {}
        _ => collect_bound_first(expr, operands),
    }
}
