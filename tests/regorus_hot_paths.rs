//! The hot paths the vendored regorus's patches 15 and 16 changed (vendor/regorus/README.md), on their
//! own: the order of values, which now compares strings inline and shared collections by pointer, must
//! stay the order `#[derive(Ord)]` gave (object lookups, sets and sorting all depend on it); small
//! objects, now searched by a scan for string keys, must find what a binary search finds; chained
//! references (`input.a.b[k].c`), now walked by reference, must find what the interpreter finds,
//! including when a step is missing; the run loop, which now looks at the instruction limit and the
//! execution timer only when one of them can fire, must stop at the same instruction as before; and
//! builtin calls, which now borrow the program and lend the VM's span instead of cloning both (patch
//! 17), must keep working after a builtin fails and keep answering cached builtins from the cache.
//! Last, two corrections to the VM's semantics (patches 18 and 19), checked against the interpreter: an
//! assignment of an undefined value fails its body, and an `else` chain moves on past a branch that ends
//! without a value.
//!
//! Calls the patched regorus's own APIs (`executed_instructions`, `Object::from_entries`, boxed VM
//! errors): only with the `regorus-fork` feature (default).
#![cfg(feature = "regorus-fork")]

use std::cmp::Ordering;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::{ExecutionMode, RegoVM, VmError};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::value::Object;
use regorus::{Engine, Value};
use rstest::rstest;

fn json(text: &str) -> Value {
    Value::from_json_str(text).expect("JSON value")
}

/// Values in the derived order: variants in declaration order (null, booleans, numbers, strings,
/// arrays, sets, objects, undefined), then their contents.
fn ascending() -> Vec<Value> {
    let mut set_one = Value::new_set();
    set_one
        .as_set_mut()
        .expect("set")
        .insert(Value::from(1_i64));
    let long = "k".repeat(16);
    vec![
        Value::Null,
        Value::Bool(false),
        Value::Bool(true),
        Value::from(-1_i64),
        Value::from(0_i64),
        json("1.5"),
        Value::from(2_i64),
        Value::from(""),
        Value::from("A"),
        Value::from("a"),
        Value::from("ab"),
        Value::from("abc"),
        Value::from("b"),
        Value::from(format!("{long}a").as_str()),
        Value::from(format!("{long}b").as_str()),
        Value::from(format!("{long}ba").as_str()),
        Value::from("z"),
        Value::from("é"),
        json("[]"),
        json("[1]"),
        json("[1, 2]"),
        json("[2]"),
        json(r#"["a"]"#),
        Value::new_set(),
        set_one,
        json("{}"),
        json(r#"{"a": 1}"#),
        json(r#"{"a": 2}"#),
        json(r#"{"b": 0}"#),
        Value::Undefined,
    ]
}

#[test]
fn values_keep_the_derived_order() {
    let values = ascending();
    for (i, a) in values.iter().enumerate() {
        for (j, b) in values.iter().enumerate() {
            assert_eq!(a.cmp(b), i.cmp(&j), "{a:?} against {b:?}");
            assert_eq!(a.partial_cmp(b), Some(i.cmp(&j)));
            assert_eq!(a == b, i == j, "{a:?} == {b:?}");
        }
    }
    let mut shuffled: Vec<Value> = values.iter().rev().cloned().collect();
    shuffled.sort();
    assert_eq!(shuffled, values);
}

/// Strings order as their bytes do, on both sides of the inline comparison's 16 bytes.
#[rstest]
#[case::equal("metadata", "metadata")]
#[case::first_byte("kind", "spec")]
#[case::prefix("name", "namespace")]
#[case::empty("", "a")]
#[case::upper_before_lower("Z", "a")]
#[case::multibyte("é", "e")]
#[case::sixteen_equal_bytes("securityContexts", "securityContextt")]
#[case::seventeen_bytes("allowPrivilegeEscalation", "allowPrivilegeEscalatioN")]
#[case::long_prefix("readOnlyRootFilesystem", "readOnlyRootFilesystemX")]
#[case::long_equal("ephemeralContainers", "ephemeralContainers")]
fn strings_order_as_their_bytes(#[case] a: &str, #[case] b: &str) {
    let expected = a.as_bytes().cmp(b.as_bytes());
    assert_eq!(Value::from(a).cmp(&Value::from(b)), expected);
    assert_eq!(Value::from(b).cmp(&Value::from(a)), expected.reverse());
}

/// A collection is equal to itself through a shared allocation and to an equal copy alike.
#[rstest]
#[case::array("[1, {\"a\": [2]}]")]
#[case::object("{\"a\": {\"b\": [1, 2]}, \"c\": null}")]
fn shared_and_copied_collections_compare_equal(#[case] text: &str) {
    let value = json(text);
    let shared = value.clone();
    let copy = json(text);
    assert_eq!(value.cmp(&shared), Ordering::Equal);
    assert_eq!(value.cmp(&copy), Ordering::Equal);
    let bigger = json(&format!("[{text}, 0]"));
    assert_eq!(json(&format!("[{text}]")).cmp(&bigger), Ordering::Less);
}

const CHAINS: &str = r#"
package chains

result := input.review.object.spec.containers[0].name if input.case == "object_path"

result := input.review.object.spec.containers[input.i].image if input.case == "register_key"

result := input.review.object.spec.missing.deeper if input.case == "missing_midway"

result := "absent" if {
	input.case == "negated_missing"
	not input.review.object.metadata.labels.team
}

result := input.review.object.metadata.labels["regate.dev/tenant"] if input.case == "dotted_key"

result := data.tables.limits[input.kind].cpu if input.case == "data_path"

result := input.review.object.spec.containers[5].name if input.case == "index_past_the_end"

result := input.review.object.spec.containers.name if input.case == "string_key_on_array"
"#;

const INPUT: &str = r#"{"review": {"object": {
    "metadata": {"labels": {"app": "web", "regate.dev/tenant": "shop"}},
    "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "b:2"}]}
}}}"#;

/// An interpreter with `policy` and `data`, and a VM on the program compiled from it for
/// `entry_points` (the first also names the interpreter's compile target).
fn engines(policy: &str, data: Value, entry_points: &[&str]) -> (Engine, RegoVM) {
    let mut engine = Engine::new();
    engine
        .add_policy("policy.rego".into(), policy.into())
        .expect("policy parses");
    engine.add_data(data.clone()).expect("data");
    let compiled = engine
        .compile_with_entrypoint(&entry_points[0].into())
        .expect("compiles");
    let program = Compiler::compile_from_policy(&compiled, entry_points).expect("VM program");
    let mut vm = RegoVM::new_with_policy(compiled);
    vm.load_program(Arc::clone(&program));
    vm.set_data(data).expect("data");
    (engine, vm)
}

/// `entry` of `policy` (over `data`) for `input`, from the interpreter and from the VM run in `mode`;
/// an evaluation error as its message.
fn evaluate_both(
    policy: &str,
    data: Value,
    entry: &str,
    input: Value,
    mode: ExecutionMode,
) -> (Result<Value, String>, Result<Value, String>) {
    let (mut engine, mut vm) = engines(policy, data, &[entry]);
    vm.set_execution_mode(mode);
    vm.set_input(input.clone());
    let from_vm = vm
        .execute_entry_point_by_name(entry)
        .map_err(|e| e.to_string());
    engine.set_input(input);
    let from_interpreter = engine.eval_rule(entry.into()).map_err(|e| e.to_string());
    (from_interpreter, from_vm)
}

/// What `data.chains.result` is for `case`, from the VM and from the interpreter.
fn both(case: &str) -> (Value, Value) {
    let data = json(r#"{"tables": {"limits": {"Pod": {"cpu": "2"}}}}"#);
    let mut input = json(INPUT);
    let fields = input.as_object_mut().expect("object");
    fields.insert(Value::from("case"), Value::from(case));
    fields.insert(Value::from("i"), Value::from(1_i64));
    fields.insert(Value::from("kind"), Value::from("Pod"));

    let (from_interpreter, from_vm) = evaluate_both(
        CHAINS,
        data,
        "data.chains.result",
        input,
        ExecutionMode::RunToCompletion,
    );
    (
        from_vm.expect("VM evaluates"),
        from_interpreter.expect("interpreter evaluates"),
    )
}

#[rstest]
#[case::object_path("object_path", Value::from("app"))]
#[case::register_key("register_key", Value::from("b:2"))]
#[case::missing_midway("missing_midway", Value::Undefined)]
#[case::negated_missing("negated_missing", Value::from("absent"))]
#[case::dotted_key("dotted_key", Value::from("shop"))]
#[case::data_path("data_path", Value::from("2"))]
#[case::index_past_the_end("index_past_the_end", Value::Undefined)]
#[case::string_key_on_array("string_key_on_array", Value::Undefined)]
fn chained_references_find_what_the_interpreter_finds(#[case] case: &str, #[case] expected: Value) {
    let (from_vm, from_interpreter) = both(case);
    assert_eq!(from_vm, expected, "VM");
    assert_eq!(from_interpreter, expected, "interpreter");
}

/// The entries of an object with `n` string keys `k0`..`k{n-1}`, each mapped to its own name, and,
/// when `odd_keys`, a number key and a boolean key.
fn entries(n: usize, odd_keys: bool) -> Vec<(Value, Value)> {
    let mut entries: Vec<(Value, Value)> = (0..n)
        .map(|i| {
            let name = Value::from(format!("k{i}").as_str());
            (name.clone(), name)
        })
        .collect();
    if odd_keys {
        entries.push((Value::from(7_i64), Value::from("seven")));
        entries.push((Value::Bool(true), Value::from("yes")));
    }
    entries
}

/// Lookups on both sides of the scan's 16 entries, with string keys present and absent and keys of
/// other types, find what a B-tree of the same entries finds: in regorus's frozen (sorted slice)
/// storage, which the scan serves, and in an object built by inserting.
#[rstest]
fn object_lookups_find_every_key(
    #[values(0, 1, 2, 15, 16, 17, 40)] n: usize,
    #[values(false, true)] odd_keys: bool,
) {
    let reference: std::collections::BTreeMap<Value, Value> =
        entries(n, odd_keys).into_iter().collect();
    let frozen = Value::from(Object::from_entries(entries(n, odd_keys)));
    let mut inserted = Value::new_object();
    let fields = inserted.as_object_mut().expect("object");
    for (key, value) in entries(n, odd_keys) {
        fields.insert(key, value);
    }
    let mut keys: Vec<Value> = (0..n + 2)
        .map(|i| Value::from(format!("k{i}").as_str()))
        .collect();
    keys.extend([
        Value::from("k"),
        Value::from(""),
        Value::from(7_i64),
        Value::Bool(true),
        Value::Null,
    ]);
    for key in &keys {
        let expected = reference.get(key).cloned().unwrap_or(Value::Undefined);
        assert_eq!(frozen[key], expected, "{key:?} in the frozen object");
        assert_eq!(inserted[key], expected, "{key:?} in the inserted object");
    }
}

const STEPS: &str = r#"
package steps

double(x) := x * 2

doubled contains double(x) if some x in numbers.range(1, input.n)

result := sum(doubled)
"#;

/// A VM on the STEPS program with input `{"n": n}`.
fn steps_vm(n: i64) -> RegoVM {
    let (_, mut vm) = engines(STEPS, Value::new_object(), &["data.steps.result"]);
    vm.set_input(json(&format!(r#"{{"n": {n}}}"#)));
    vm
}

/// An evaluation that needs X instructions succeeds with a limit of X and stops with X - 1 after
/// exactly X - 1 instructions, as when the limit was compared before every instruction; and again on
/// the same VM after the limit is lowered between executions.
#[rstest]
fn the_instruction_limit_stops_at_the_same_instruction(#[values(1, 7, 60)] n: i64) {
    let mut vm = steps_vm(n);
    vm.set_max_instructions(10_000_000);
    let expected = Value::from(n * (n + 1));
    assert_eq!(
        vm.execute_entry_point_by_name("data.steps.result")
            .expect("runs"),
        expected
    );
    let needed = vm.executed_instructions();
    assert!(needed > 10, "{needed} instructions");

    vm.set_max_instructions(needed);
    assert_eq!(
        vm.execute_entry_point_by_name("data.steps.result")
            .expect("runs at the limit"),
        expected
    );
    assert_eq!(vm.executed_instructions(), needed);

    vm.set_max_instructions(needed - 1);
    match vm
        .execute_entry_point_by_name("data.steps.result")
        .map_err(|e| *e)
    {
        Err(VmError::InstructionLimitExceeded {
            limit, executed, ..
        }) => {
            assert_eq!((limit, executed), (needed - 1, needed - 1));
        }
        other => panic!("expected the instruction limit, got {other:?}"),
    }
    assert_eq!(vm.executed_instructions(), needed - 1);
}

/// With a time limit of zero the first look at the clock fails: the timer is ticked once per
/// instruction, so that look comes before instruction number `interval` (counted from 1), or a
/// multiple of it when the clock had not moved yet.
#[rstest]
fn the_clock_is_read_every_interval_instructions(#[values(1, 2, 16, 100)] interval: u32) {
    let mut vm = steps_vm(200);
    vm.set_max_instructions(10_000_000);
    vm.set_execution_timer_config(Some(ExecutionTimerConfig {
        limit: Duration::ZERO,
        check_interval: NonZeroU32::new(interval).expect("non-zero"),
    }));
    match vm
        .execute_entry_point_by_name("data.steps.result")
        .map_err(|e| *e)
    {
        Err(VmError::TimeLimitExceeded { .. }) => {}
        other => panic!("expected the time limit, got {other:?}"),
    }
    let executed = vm.executed_instructions();
    let interval = usize::try_from(interval).expect("usize");
    assert_eq!(
        (executed + 1) % interval,
        0,
        "stopped after {executed} instructions, interval {interval}"
    );

    // A generous limit lets the same evaluation finish.
    vm.set_execution_timer_config(Some(ExecutionTimerConfig {
        limit: Duration::from_secs(60),
        check_interval: NonZeroU32::new(1).expect("non-zero"),
    }));
    assert_eq!(
        vm.execute_entry_point_by_name("data.steps.result")
            .expect("runs"),
        Value::from(200 * 201)
    );
}

const BUILTINS: &str = r#"
package calls

failed := to_number(input.word)

after_failure := sprintf("%s-%d", [input.word, count(input.list)])

drawn_twice := [rand.intn("k", 1000000000), rand.intn("k", 1000000000)]

joined := concat(",", [upper(w) | some w in input.list])
"#;

/// After a builtin fails (undefined, as OPA), the next builtins still run; a cached builtin
/// (`rand.intn`) answers the same within one execution; results match the interpreter.
#[test]
fn builtin_calls_survive_failures_and_keep_their_cache() {
    let (mut engine, mut vm) = engines(
        BUILTINS,
        Value::new_object(),
        &[
            "data.calls.joined",
            "data.calls.failed",
            "data.calls.after_failure",
            "data.calls.drawn_twice",
        ],
    );
    vm.set_strict_builtin_errors(false);
    let input = json(r#"{"word": "web", "list": ["a", "b"]}"#);
    vm.set_input(input.clone());
    engine.set_strict_builtin_errors(false);
    engine.set_input(input);

    for _ in 0..2 {
        assert_eq!(
            vm.execute_entry_point_by_name("data.calls.failed")
                .expect("runs"),
            Value::Undefined
        );
        assert_eq!(
            vm.execute_entry_point_by_name("data.calls.after_failure")
                .expect("runs"),
            Value::from("web-2")
        );
        let drawn = vm
            .execute_entry_point_by_name("data.calls.drawn_twice")
            .expect("runs");
        let pair = drawn.as_array().expect("array");
        assert_eq!(pair.len(), 2);
        assert_eq!(pair[0], pair[1], "rand.intn is answered from the cache");
        let joined = vm
            .execute_entry_point_by_name("data.calls.joined")
            .expect("runs");
        assert_eq!(joined, Value::from("A,B"));
        assert_eq!(
            joined,
            engine
                .eval_rule("data.calls.joined".into())
                .expect("interpreter")
        );
    }
}

const UNDEFINED: &str = r#"
package undef

import rego.v1

# Patch 18: `x := <undefined>` fails the body, so `not` never sees an undefined variable.
assign_then_not := "fired" if {
	x := input.missing
	not startswith(x, "a")
} else := "silent"

# ... and nothing after it runs on an undefined value: loops and calls below an undefined `p`.
nested_after_undefined contains h if {
	some probe in ["a", "b"]
	p := input.obj[probe]
	some h in ["x", "y"]
	defined(p[h])
}

defined(v) if v != null

# Patch 19: an else branch that iterates and finds nothing moves on to the next branch.
found(xs) := "first" if {
	some c in xs
	c == "X"
} else := "second"

first_loop := found(["a", "b"])

# ... as does one whose last assignment is undefined.
maybe(v) := "yes" if v == "never"

last(v) := p if {
	p := maybe(v)
} else := "else"

else_after_undefined := last("z")

# Separate definitions (no else): a body that finds nothing leaves the others to decide.
g(xs) := y if {
	some y in xs
	y > 5
}

g(xs) := 0 if count(xs) == 0

g_nothing := g([1])

g_empty := g([])

g_found := g([1, 7])

default d := "default"

d := x if {
	some x in ["a"]
	x == "b"
}
"#;

#[rstest]
#[case::assign_then_not("assign_then_not", Value::from("silent"))]
#[case::nested_after_undefined(
    "nested_after_undefined",
    Value::from(std::collections::BTreeSet::from([Value::from("y")]))
)]
#[case::first_loop("first_loop", Value::from("second"))]
#[case::else_after_undefined("else_after_undefined", Value::from("else"))]
#[case::g_nothing("g_nothing", Value::Undefined)]
#[case::g_empty("g_empty", Value::from(0_i64))]
#[case::g_found("g_found", Value::from(7_i64))]
#[case::default_after_empty_loop("d", Value::from("default"))]
fn undefined_values_and_else_chains_follow_rego(
    #[case] rule: &str,
    #[case] expected: Value,
    #[values(ExecutionMode::RunToCompletion, ExecutionMode::Suspendable)] mode: ExecutionMode,
) {
    let input = json(r#"{"obj": {"a": {"y": 1}}}"#);
    let entry = format!("data.undef.{rule}");
    let (from_interpreter, from_vm) =
        evaluate_both(UNDEFINED, Value::new_object(), &entry, input, mode);
    let from_interpreter = from_interpreter.expect("interpreter evaluates");
    let from_vm = from_vm.expect("VM evaluates");
    assert_eq!(from_interpreter, expected, "interpreter");
    assert_eq!(from_vm, expected, "VM ({mode:?})");
}

/// `sprintf` of `format` with `args` (a JSON array), as the interpreter and the VM answer it; `None` when
/// the call fails (an error or undefined).
fn sprintf_of(format: &str, args: &str) -> (Option<Value>, Option<Value>) {
    let policy = "package f\nimport rego.v1\nout := sprintf(input.format, input.args)\n";
    let mut input = Value::new_object();
    let fields = input.as_object_mut().expect("object");
    fields.insert(Value::from("format"), Value::from(format));
    fields.insert(Value::from("args"), json(args));
    let (from_interpreter, from_vm) = evaluate_both(
        policy,
        Value::new_object(),
        "data.f.out",
        input,
        ExecutionMode::RunToCompletion,
    );
    let defined = |v: Result<Value, String>| v.ok().filter(|v| *v != Value::Undefined);
    (defined(from_interpreter), defined(from_vm))
}

/// `sprintf` copies the text between verbs in one piece (patch 20): literal text of every kind, each
/// verb and width the bundle and common policies use, `%%`, and malformed formats.
#[rstest]
#[case::empty("", "[]", Some(""))]
#[case::plain("plain text", "[]", Some("plain text"))]
#[case::strings(
    "container %s: no %s",
    r#"["app", "probe"]"#,
    Some("container app: no probe")
)]
#[case::multibyte("é %s ✓ %d…", r#"["ü", 7]"#, Some("é ü ✓ 7…"))]
#[case::adjacent("%s%s", r#"["a", "b"]"#, Some("ab"))]
#[case::percent("100%% of %v", "[[1]]", Some("100% of [1]"))]
#[case::widths("%5d|%05d|%.2f", "[42, 42, 3.14159]", Some("   42|00042|3.14"))]
#[case::quoted("%q at %v", r#"["x", {"a": 1}]"#, Some("\"x\" at {\"a\": 1}"))]
#[case::verb_at_the_end("ends with %", "[]", None)]
#[case::width_at_the_end("ends with %5", "[]", None)]
#[case::too_few_arguments("%s and %s", r#"["one"]"#, None)]
// A digit that is not ASCII is no width: an unknown verb, which consumes its argument and prints
// nothing (the width parser took it for a digit and panicked).
#[case::non_ascii_digit("%½s|%5½d", r#"["x", "y"]"#, Some("s|d"))]
#[case::huge_width("%99999999999d", "[1]", None)]
fn sprintf_formats_as_before(
    #[case] format: &str,
    #[case] args: &str,
    #[case] expected: Option<&str>,
) {
    let (from_interpreter, from_vm) = sprintf_of(format, args);
    let expected = expected.map(Value::from);
    assert_eq!(from_interpreter, expected, "interpreter");
    assert_eq!(from_vm, expected, "VM");
}

/// `sprintf` formats in one reused buffer per thread (patch 23): results stay whole and separate
/// across calls that fail half-way, outgrow the buffer, or follow a long one with a short one.
#[test]
fn sprintf_results_do_not_share_their_buffer() {
    let long = "x".repeat(5000);
    let calls: [(&str, String, Option<String>); 6] = [
        ("%s|%s", r#"["a", "b"]"#.into(), Some("a|b".into())),
        ("%s and %s", r#"["half"]"#.into(), None),
        ("<%s>", format!(r#"["{long}"]"#), Some(format!("<{long}>"))),
        ("%d", "[7]".into(), Some("7".into())),
        ("%s-%s", r#"["c", "d"]"#.into(), Some("c-d".into())),
        ("", "[]".into(), Some(String::new())),
    ];
    let mut seen = Vec::new();
    for (format, args, expected) in &calls {
        let (from_interpreter, from_vm) = sprintf_of(format, args);
        let expected = expected.as_deref().map(Value::from);
        assert_eq!(from_interpreter, expected, "interpreter, {format}");
        assert_eq!(from_vm, expected, "VM, {format}");
        seen.push(from_vm);
    }
    // Earlier results are unchanged by later calls.
    for ((_, _, expected), got) in calls.iter().zip(&seen) {
        assert_eq!(got, &expected.as_deref().map(Value::from));
    }
}

/// Negated expressions whose operands may be undefined (patch 0024). Each rule answers "fired" when
/// its `not` succeeds and "silent" when the body is undefined; the expected answers are OPA v1.22.4's
/// (`target/opa/opa eval`, input `NEGATION_INPUT`).
const NEGATION: &str = r#"
package neg

import rego.v1

f(x) if x == 1

absent := 1 if false

builtin_arg := "fired" if { not is_object(input.missing) } else := "silent"
builtin_arg_nested := "fired" if { not is_object(input.missing.x) } else := "silent"
function_arg := "fired" if { not f(input.missing) } else := "silent"
function_arg_defined := "fired" if { not f(input.s) } else := "silent"
nested_call := "fired" if { not count(input.missing) > 0 } else := "silent"
comparison := "fired" if { not input.missing > 0 } else := "silent"
unequal := "fired" if { not input.missing != 1 } else := "silent"
equal_ref := "fired" if { not input.missing == 1 } else := "silent"
equal_refs := "fired" if { not input.obj.a == input.missing } else := "silent"
equal_call := "fired" if { not lower(input.missing) == "a" } else := "silent"
unify := "fired" if { not input.missing = 1 } else := "silent"
membership := "fired" if { not input.missing in {"a"} } else := "silent"
bare_ref := "fired" if { not input.missing } else := "silent"
ref_index := "fired" if { not input.obj[input.missing] } else := "silent"
array_arg := "fired" if { not is_object([input.missing]) } else := "silent"
arithmetic := "fired" if { not input.missing + 1 == 2 } else := "silent"
comprehension := "fired" if { not count([x | x := input.missing]) > 0 } else := "silent"
defined_arg := "fired" if { not startswith(input.s, "a") } else := "silent"
defined_ref := "fired" if { not is_string(input.obj.a) } else := "silent"
defaulted := "fired" if { not is_object(object.get(input, "missing", null)) } else := "silent"
absent_rule_equal := "fired" if { not absent == 2 } else := "silent"
absent_rule_arg := "fired" if { not is_number(absent) } else := "silent"
local_arg := "fired" if { x := input.s; not startswith(x, "a") } else := "silent"
"#;

const NEGATION_INPUT: &str = r#"{"s": "b", "obj": {"a": 1}}"#;

#[rstest]
#[case::builtin_arg("builtin_arg", "silent")]
#[case::builtin_arg_nested("builtin_arg_nested", "silent")]
#[case::function_arg("function_arg", "silent")]
#[case::function_arg_defined("function_arg_defined", "fired")]
#[case::nested_call("nested_call", "silent")]
#[case::comparison("comparison", "silent")]
#[case::unequal("unequal", "silent")]
#[case::equal_ref("equal_ref", "fired")]
#[case::equal_refs("equal_refs", "fired")]
#[case::equal_call("equal_call", "silent")]
#[case::unify("unify", "fired")]
#[case::membership("membership", "silent")]
#[case::bare_ref("bare_ref", "fired")]
#[case::ref_index("ref_index", "silent")]
#[case::array_arg("array_arg", "silent")]
#[case::arithmetic("arithmetic", "silent")]
#[case::comprehension("comprehension", "fired")]
#[case::defined_arg("defined_arg", "fired")]
#[case::defined_ref("defined_ref", "fired")]
#[case::defaulted("defaulted", "fired")]
#[case::absent_rule_equal("absent_rule_equal", "fired")]
#[case::absent_rule_arg("absent_rule_arg", "silent")]
#[case::local_arg("local_arg", "fired")]
fn negation_evaluates_call_operands_first_as_opa(
    #[case] rule: &str,
    #[case] expected: &str,
    #[values(ExecutionMode::RunToCompletion, ExecutionMode::Suspendable)] mode: ExecutionMode,
) {
    let entry = format!("data.neg.{rule}");
    assert_both_answer(NEGATION, &entry, json(NEGATION_INPUT), mode, expected);
}

/// Asserts that the interpreter and the VM (run in `mode`) both answer `expected` for `entry` of
/// `policy` on `input`.
fn assert_both_answer(
    policy: &str,
    entry: &str,
    input: Value,
    mode: ExecutionMode,
    expected: &str,
) {
    let (from_interpreter, from_vm) =
        evaluate_both(policy, Value::new_object(), entry, input, mode);
    let expected = Value::from(expected);
    assert_eq!(
        from_interpreter.expect("interpreter evaluates"),
        expected,
        "interpreter"
    );
    assert_eq!(from_vm.expect("VM evaluates"), expected, "VM ({mode:?})");
}

/// A divergence from OPA that regate keeps (docs/gatekeeper.md): OPA rejects a wildcard inside a
/// negated expression at compile time (`rego_unsafe_var_error: var _ is unsafe`); regorus accepts it
/// and iterates outside the negation, so `not is_string(xs[_])` holds when some element is not a
/// string. Interpreter and VM agree.
#[rstest]
#[case::some_element_is_not_a_string("mixed", "fired")]
#[case::every_element_is_a_string("strings", "silent")]
fn wildcard_in_negation_means_some_element(
    #[case] rule: &str,
    #[case] expected: &str,
    #[values(ExecutionMode::RunToCompletion, ExecutionMode::Suspendable)] mode: ExecutionMode,
) {
    let policy = r#"
package wild

import rego.v1

mixed := "fired" if { not is_string(input.mixed[_]) } else := "silent"
strings := "fired" if { not is_string(input.strings[_]) } else := "silent"
"#;
    let entry = format!("data.wild.{rule}");
    let input = json(r#"{"mixed": ["a", 1], "strings": ["a", "b"]}"#);
    assert_both_answer(policy, &entry, input, mode, expected);
}
