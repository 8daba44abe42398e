//! The regorus calls that only regate's patched regorus (`vendor/regorus`, see its `README.md`) has,
//! behind the `regorus-fork` cargo feature (on by default), with a stand-in on the published API for
//! builds without it (`--no-default-features`, `scripts/stock-regorus.sh`).
//!
//! This module owns every fork-only call of `src/`: rule values reused across the policies of one
//! request and seeded across requests (`execute_entry_point_by_name_seeded` / `_retaining`,
//! `computed_rule_values`, patches 0016 and 0019), the per-VM function memo (`set_function_memo`,
//! 0020 and 0021), and objects built from their entries in one piece (`Object::from_entries`, 0023).
//! On the published crate each entry point is executed from scratch with plain
//! `execute_entry_point_by_name`, nothing is memoized, and objects are built with the public
//! `FromIterator`: slower, same values. The rest of the crate calls these functions and has no `cfg`
//! of its own for the fork.

use regorus::rvm::vm::RegoVM;
use regorus::value::Object;
use regorus::Value;

/// An object of `entries`: sorted, and the last value of a repeated key kept (as inserting them one
/// by one keeps it).
pub(crate) fn object_from_entries(entries: Vec<(Value, Value)>) -> Object {
    #[cfg(feature = "regorus-fork")]
    {
        Object::from_entries(entries)
    }
    #[cfg(not(feature = "regorus-fork"))]
    {
        entries.into_iter().collect()
    }
}

/// Sets a new VM's function memo: `functions` may be memoized across executions, `stable` within one
/// (indexed like the program's rules). Nothing on the published crate.
pub(crate) fn set_function_memo(vm: &mut RegoVM, functions: &[bool], stable: &[bool]) {
    #[cfg(feature = "regorus-fork")]
    vm.set_function_memo(functions, stable);
    #[cfg(not(feature = "regorus-fork"))]
    let _ = (vm, functions, stable);
}

/// Executes a policy's first entry point, starting from `seeds` (rule values recorded on earlier
/// requests) and keeping the rules of `retain` the previous execution computed (`None`: keep none).
/// The published crate computes every rule again.
pub(crate) fn execute_seeded(
    vm: &mut RegoVM,
    rule: &str,
    retain: Option<&[bool]>,
    seeds: &[(usize, Value)],
) -> Result<Value, String> {
    #[cfg(feature = "regorus-fork")]
    let result = vm.execute_entry_point_by_name_seeded(rule, retain, seeds);
    #[cfg(not(feature = "regorus-fork"))]
    let result = {
        let _ = (retain, seeds);
        vm.execute_entry_point_by_name(rule)
    };
    result.map_err(|e| e.to_string())
}

/// Executes a later entry point of the same policy (same input), keeping the rules of `retain` the
/// previous execution computed. The published crate computes every rule again.
pub(crate) fn execute_retaining(
    vm: &mut RegoVM,
    rule: &str,
    retain: &[bool],
) -> Result<Value, String> {
    #[cfg(feature = "regorus-fork")]
    let result = vm.execute_entry_point_by_name_retaining(rule, retain);
    #[cfg(not(feature = "regorus-fork"))]
    let result = {
        let _ = retain;
        vm.execute_entry_point_by_name(rule)
    };
    result.map_err(|e| e.to_string())
}

/// The values of the rules of `mask` the last execution computed, to seed later executions with.
/// Empty on the published crate (nothing is seeded).
pub(crate) fn computed_rule_values(vm: &RegoVM, mask: &[bool]) -> Vec<(usize, Value)> {
    #[cfg(feature = "regorus-fork")]
    {
        vm.computed_rule_values(mask)
    }
    #[cfg(not(feature = "regorus-fork"))]
    {
        let _ = (vm, mask);
        Vec::new()
    }
}
