//! The function memo of the patched regorus VM (vendor/regorus, patches 11 and 12) on its own: which
//! calls it keeps across executions, that a kept result is returned unchanged, that its memory stays
//! bounded however many distinct calls a policy makes, and that calls memoized within one execution do
//! not outlive it. `src/policy/evaluate.rs` tests which functions regate lets it keep.
//!
//! Calls the patched regorus's own APIs (`set_function_memo`, `memoized_results`): only with the
//! `regorus-fork` feature (default).
#![cfg(feature = "regorus-fork")]

use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::RegoVM;
use regorus::{Engine, Value};
use rstest::rstest;

const POLICY: &str = r#"
package memo

twice(x) := x * 2

big(n) := numbers.range(1, n)

shout(s) := upper(s)

joined(a) := concat(",", a)

field_names(o) := [k | some k, _ in o]

result := twice(input.arg) if input.call == "twice"

result := big(input.arg) if input.call == "big"

result := shout(input.arg) if input.call == "shout"

result := joined(input.arg) if input.call == "joined"

result := field_names(input.arg) if input.call == "field_names"

result := [shout(s) | some s in input.arg] if input.call == "shout_each"

tagged(s) := concat("", [s, input.suffix])

result := [tagged(s) | some s in input.arg] if input.call == "tagged_each"
"#;

/// A VM on the test program that may memoize every function of it across executions.
fn vm() -> RegoVM {
    vm_with(|every_function| (every_function.to_vec(), Vec::new()))
}

/// A VM on the test program with the memo masks `masks` makes from an all-true mask.
fn vm_with(masks: impl Fn(&[bool]) -> (Vec<bool>, Vec<bool>)) -> RegoVM {
    let mut engine = Engine::new();
    engine
        .add_policy("memo.rego".into(), POLICY.into())
        .expect("policy parses");
    let compiled = engine
        .compile_with_entrypoint(&"data.memo.result".into())
        .expect("compiles");
    let program =
        Compiler::compile_from_policy(&compiled, &["data.memo.result"]).expect("VM program");
    let every_function = vec![true; program.rule_infos.len()];
    let mut vm = RegoVM::new_with_policy(compiled);
    vm.load_program(Arc::clone(&program));
    vm.set_data(Value::new_object()).expect("data");
    vm.set_max_instructions(10_000_000);
    let (functions, stable_functions) = masks(&every_function);
    vm.set_function_memo(&functions, &stable_functions);
    vm
}

fn run(vm: &mut RegoVM, call: &str, arg: serde_json::Value) -> serde_json::Value {
    run_input(vm, serde_json::json!({"call": call, "arg": arg}))
}

fn run_input(vm: &mut RegoVM, input: serde_json::Value) -> serde_json::Value {
    vm.set_input(Value::from_json_str(&input.to_string()).expect("input"));
    let value = vm
        .execute_entry_point_by_name("data.memo.result")
        .expect("evaluates");
    serde_json::from_str(&value.to_json_str().expect("JSON")).expect("JSON value")
}

#[rstest]
#[case::integer_argument("twice", serde_json::json!(21), serde_json::json!(42), 1)]
#[case::float_argument_is_never_a_key("twice", serde_json::json!(1.5), serde_json::json!(3), 0)]
#[case::string_argument("shout", serde_json::json!("web"), serde_json::json!("WEB"), 1)]
#[case::long_string_argument("shout", serde_json::json!("x".repeat(257)), serde_json::json!("X".repeat(257)), 0)]
#[case::short_array_argument("joined", serde_json::json!(["a", "b"]), serde_json::json!("a,b"), 1)]
#[case::long_array_argument("joined", serde_json::json!(vec!["a"; 17]), serde_json::json!(vec!["a"; 17].join(",")), 0)]
#[case::object_argument("field_names", serde_json::json!({"a": 1}), serde_json::json!(["a"]), 0)]
#[case::small_result("big", serde_json::json!(3), serde_json::json!([1, 2, 3]), 1)]
#[case::large_result_is_not_kept("big", serde_json::json!(100), serde_json::json!((1..=100).collect::<Vec<_>>()), 0)]
fn which_calls_are_kept(
    #[case] call: &str,
    #[case] arg: serde_json::Value,
    #[case] expected: serde_json::Value,
    #[case] kept: usize,
) {
    let mut vm = vm();
    // The second execution is answered from the memo when the call was kept, and must not differ.
    for _ in 0..2 {
        assert_eq!(run(&mut vm, call, arg.clone()), expected);
        assert_eq!(vm.memoized_results(), kept);
    }
}

#[test]
fn memory_stays_bounded_over_many_distinct_calls() {
    let mut vm = vm();
    let names: Vec<String> = (0..5_000).map(|i| format!("{i:0>200}")).collect();
    let shouted = run(&mut vm, "shout_each", serde_json::json!(names));
    assert_eq!(shouted.as_array().map(Vec::len), Some(5_000));
    assert_eq!(
        shouted[4_999],
        serde_json::json!(names[4_999].to_uppercase())
    );
    // Each entry holds a 200-byte key and a 200-byte result: 256 KiB allow at most ~650 of them.
    let kept = vm.memoized_results();
    assert!((1..=650).contains(&kept), "{kept} results kept");
}

#[test]
fn loading_data_forgets_every_result() {
    let mut vm = vm();
    run(&mut vm, "shout", serde_json::json!("web"));
    assert_eq!(vm.memoized_results(), 1);
    vm.set_data(Value::new_object()).expect("data");
    assert_eq!(vm.memoized_results(), 0);
}

#[test]
fn calls_memoized_within_an_execution_do_not_outlive_it() {
    // `tagged` reads the input: it may only be memoized within one execution.
    let mut vm = vm_with(|every_function| (Vec::new(), every_function.to_vec()));
    for suffix in ["1", "2"] {
        let input = serde_json::json!({"call": "tagged_each", "arg": ["a", "b", "a", "a"], "suffix": suffix});
        let expected: Vec<String> = ["a", "b", "a", "a"]
            .iter()
            .map(|s| format!("{s}{suffix}"))
            .collect();
        assert_eq!(run_input(&mut vm, input), serde_json::json!(expected));
        // Two distinct calls kept (the repeated `tagged("a")` was answered from the memo)...
        assert_eq!(vm.memoized_calls_in_execution(), 2);
        // ...and nothing across executions.
        assert_eq!(vm.memoized_results(), 0);
    }
}
