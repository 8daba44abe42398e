//! The Kubernetes quantity parser, which is Rego (`policies/lib/quantity.rego`), evaluated with regorus
//! on the fuzzer's string. A reference model written from the grammar in that file's header decides
//! what must be accepted and, while the numbers stay small enough to be exact in both, what
//! `parse` (`num`/`den`) and `millicores` must return. Evaluation must never fail (only be undefined
//! for an invalid quantity) and must agree with the model.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use regorus::{Engine, Value};

const QUANTITY: &str = include_str!("../../policies/lib/quantity.rego");
const HARNESS: &str = r#"package fuzz
import data.regate.lib.quantity
parsed := quantity.parse(input.q)
milli := quantity.millicores(input.q)
"#;

thread_local! {
    static ENGINE: RefCell<Engine> = RefCell::new({
        let mut engine = Engine::new();
        engine
            .add_policy("policies/lib/quantity.rego".into(), QUANTITY.into())
            .expect("quantity.rego compiles");
        engine.add_policy("fuzz.rego".into(), HARNESS.into()).expect("harness compiles");
        engine
    });
}

/// What the grammar says of `q`: invalid, or valid with its exact `num`/`den` (as quantity.rego forms
/// them, unreduced) when those fit in an i128.
#[derive(Debug, PartialEq)]
enum Model {
    Invalid,
    Valid(Option<(i128, i128)>),
}

fn pow10(k: usize) -> Option<i128> {
    10i128.checked_pow(u32::try_from(k).ok()?)
}

fn digits_value(d: &str) -> Option<i128> {
    let d = d.trim_start_matches('0');
    if d.len() > 36 {
        return None;
    }
    Some(d.parse::<i128>().unwrap_or(0))
}

fn model(q: &str) -> Model {
    let b = q.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int = &q[int_start..i];
    let mut frac = "";
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = &q[s..i];
    }
    if int.is_empty() && frac.is_empty() {
        return Model::Invalid;
    }
    let suffix = &q[i..];
    let named: &[(&str, i128, i128)] = &[
        ("", 1, 1),
        ("n", 1, 1_000_000_000),
        ("u", 1, 1_000_000),
        ("m", 1, 1000),
        ("k", 1000, 1),
        ("M", 1_000_000, 1),
        ("G", 1_000_000_000, 1),
        ("T", 1_000_000_000_000, 1),
        ("P", 1_000_000_000_000_000, 1),
        ("E", 1_000_000_000_000_000_000, 1),
        ("Ki", 1 << 10, 1),
        ("Mi", 1 << 20, 1),
        ("Gi", 1 << 30, 1),
        ("Ti", 1 << 40, 1),
        ("Pi", 1 << 50, 1),
        ("Ei", 1 << 60, 1),
    ];
    let multiplier: Option<(i128, i128)> =
        if let Some(&(_, m0, m1)) = named.iter().find(|(s, _, _)| *s == suffix) {
            Some((m0, m1))
        } else if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
            let (negative_exp, digits) = match exp.as_bytes().first() {
                Some(b'-') => (true, &exp[1..]),
                Some(b'+') => (false, &exp[1..]),
                _ => (false, exp),
            };
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Model::Invalid;
            }
            let trimmed = digits.trim_start_matches('0');
            if trimmed.len() > 2 {
                return Model::Invalid; // exponents beyond 99 are rejected
            }
            let e: usize = trimmed.parse().unwrap_or(0);
            let p = pow10(e);
            if negative_exp {
                p.map(|p| (1, p))
            } else {
                p.map(|p| (p, 1))
            }
        } else {
            return Model::Invalid;
        };
    let exact = (|| {
        let (m0, m1) = multiplier?;
        let scale = pow10(frac.len())?;
        let magnitude = digits_value(int)?
            .checked_mul(scale)?
            .checked_add(digits_value(frac)?)?
            .checked_mul(m0)?;
        let num = if negative { -magnitude } else { magnitude };
        Some((num, scale.checked_mul(m1)?))
    })();
    Model::Valid(exact)
}

/// The most significant digits (leading zeros left out) in one run of ASCII digits of `q`.
fn longest_digit_group(q: &str) -> usize {
    q.split(|c: char| !c.is_ascii_digit())
        .map(|run| run.trim_start_matches('0').len())
        .max()
        .unwrap_or(0)
}

fn small(x: i128) -> bool {
    x.abs() < (1i128 << 50)
}

fn int_of(v: &Value) -> Option<i128> {
    let f = v.as_f64().ok()?;
    (f.fract() == 0.0 && f.abs() < 2f64.powi(52)).then_some(f as i128)
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let model = model(q);
    let evaluated = ENGINE.with(|engine| {
        let mut engine = engine.borrow().clone();
        let mut input = Value::new_object();
        input
            .as_object_mut()
            .expect("object")
            .insert(Value::from("q"), Value::from(q));
        engine.set_input(input);
        let parsed = engine.eval_rule("data.fuzz.parsed".into())?;
        let milli = engine.eval_rule("data.fuzz.milli".into())?;
        anyhow::Ok((parsed, milli))
    });
    let (parsed, milli) = match evaluated {
        Ok(values) => values,
        // Known limit (docs/security.md, "Fuzzing"): regorus numbers are 64-bit, so a digit group of
        // 309 or more significant digits fails `to_number` (also in an exponent, before `e <= 99` is
        // checked), and a value whose millicores overflow fails the multiplication; the evaluator's
        // non-strict mode reads the error as undefined (an invalid quantity). Errors are allowed only
        // for such inputs: values too large for an i128, or a digit group that long.
        Err(_) if model == Model::Valid(None) || longest_digit_group(q) >= 309 => return,
        Err(e) => panic!("evaluating {q:?} fails: {e}"),
    };
    match model {
        Model::Invalid => {
            assert_eq!(
                parsed,
                Value::Undefined,
                "{q:?} is not a quantity but parses to {parsed}"
            );
        }
        Model::Valid(exact) => {
            assert_ne!(
                parsed,
                Value::Undefined,
                "{q:?} is a quantity but does not parse"
            );
            assert_ne!(
                milli,
                Value::Undefined,
                "{q:?} parses but has no millicores"
            );
            let Some((num, den)) = exact else {
                return;
            };
            if !(small(num) && small(den) && small(num.saturating_mul(1000))) {
                return;
            }
            let got_num = int_of(&parsed[&Value::from("num")]);
            let got_den = int_of(&parsed[&Value::from("den")]);
            assert_eq!(
                (got_num, got_den),
                (Some(num), Some(den)),
                "parse({q:?}) = {parsed}"
            );
            let a = num * 1000;
            let want = a.div_euclid(den) + i128::from(a.rem_euclid(den) != 0);
            assert_eq!(int_of(&milli), Some(want), "millicores({q:?}) = {milli}");
        }
    }
});
