// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! regate patches 11 and 12: results of function calls, kept by one VM.
//!
//! Across executions (patch 11): the caller names the function rules whose result depends on nothing
//! but their arguments, the program and the data document (`RegoVM::set_function_memo`): they read no
//! input and call no builtin whose result can change between calls. A call of such a function whose
//! arguments are all small scalars (null, booleans, integers, strings of at most [`MAX_STRING`] bytes)
//! or short arrays of them is answered from the memo when the same function was called with the same
//! arguments before, in this execution or an earlier one. Results larger than [`MAX_RESULT_NODES`]
//! values are not kept, and the memo is emptied when it would grow past [`MAX_BYTES`], so its memory
//! stays bounded. Loading another program, other data or another set of functions empties it.
//! Arguments are compared strictly (a float never matches an integer), so a hit returns exactly what
//! the call would have computed.
//!
//! Within one execution (patch 12): the caller also names the functions that call no such builtin
//! (they may read the input). Within one execution the input and data do not change, so such a
//! function called again with the same arguments returns the same result, as a rule's cached value
//! does. Scalars are compared by value (floats by their bits) and collections by identity: the entry
//! holds the argument values, so an address cannot be reused by another collection while its entry
//! lives. This memo is emptied when each execution starts and holds at most
//! [`MAX_EXECUTION_ENTRIES`] calls.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::number::Number;
use crate::value::Value;

/// Longest string argument or result string that is kept, in bytes.
pub(super) const MAX_STRING: usize = 256;
/// Longest array argument that is kept, in elements.
const MAX_ARRAY_ARG: usize = 16;
/// Largest result that is kept, in values (every element, key and nested value counts).
pub(super) const MAX_RESULT_NODES: usize = 64;
/// Approximate memory of one VM's memo, in bytes, after which it is emptied.
pub(super) const MAX_BYTES: usize = 256 * 1024;
/// Calls kept by the memo of one execution.
pub(super) const MAX_EXECUTION_ENTRIES: usize = 1024;
/// Bytes counted per value and per entry besides string contents.
const NODE_BYTES: usize = 48;

/// Memoized function results of one VM.
#[derive(Debug, Default)]
pub(super) struct FunctionMemo {
    /// Indexed like the program's rules: true for the functions that may be memoized across executions.
    functions: Vec<bool>,
    entries: BTreeMap<(u16, Vec<Value>), Value>,
    /// Approximate memory of `entries`.
    bytes: usize,
    /// Argument vector reused for lookups that hit.
    scratch: Vec<Value>,
    /// Indexed like the program's rules: true for the functions that may be memoized within one
    /// execution.
    stable_functions: Vec<bool>,
    /// Calls of this execution: key -> (the argument values, pinned; the result).
    execution: BTreeMap<(u16, Vec<ArgKey>), (Vec<Value>, Value)>,
    /// Key vector reused for lookups that hit.
    execution_scratch: Vec<ArgKey>,
}

/// One argument of a call within an execution: a scalar by value, a collection by identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ArgKey {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// The float's bits: `1.0` is not `1`, and `-0.0` is not `0.0`.
    Float(u64),
    Str(Value),
    /// A collection, a big integer or a long string: its kind and address.
    Shared(u8, usize),
}

/// What a lookup found.
pub(super) enum Probe {
    /// The function is not memoized, or an argument cannot be part of a key.
    Skip,
    /// The result of an earlier call with the same arguments.
    Hit(Value),
    /// Not seen yet: the key (and its approximate memory) to [`FunctionMemo::record`] the result under.
    Miss((u16, Vec<Value>), usize),
    /// Not seen yet in this execution: the key and the arguments to pin, for [`FunctionMemo::record`].
    MissInExecution((u16, Vec<ArgKey>), Vec<Value>),
}

impl FunctionMemo {
    /// Sets which functions may be memoized across executions (`functions`) and within one
    /// (`stable_functions`), and forgets every kept result.
    pub(super) fn set_functions(&mut self, functions: &[bool], stable_functions: &[bool]) {
        self.functions.clear();
        self.functions.extend_from_slice(functions);
        self.stable_functions.clear();
        self.stable_functions.extend_from_slice(stable_functions);
        self.clear();
        self.start_execution();
    }

    /// Forgets every result kept across executions.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Forgets the calls of the previous execution.
    pub(super) fn start_execution(&mut self) {
        self.execution.clear();
    }

    /// Looks up a call of function `rule` with `args`: across executions when the function and its
    /// arguments allow it, else within this execution.
    pub(super) fn probe<'a>(
        &mut self,
        rule: u16,
        args: impl Iterator<Item = Option<&'a Value>> + Clone,
    ) -> Probe {
        let index = usize::from(rule);
        if self.functions.get(index).copied().unwrap_or(false) {
            match self.probe_across(rule, args.clone()) {
                Probe::Skip => {}
                found => return found,
            }
        }
        if self.stable_functions.get(index).copied().unwrap_or(false) {
            return self.probe_execution(rule, args);
        }
        Probe::Skip
    }

    fn probe_execution<'a>(
        &mut self,
        rule: u16,
        args: impl Iterator<Item = Option<&'a Value>> + Clone,
    ) -> Probe {
        let mut key = core::mem::take(&mut self.execution_scratch);
        key.clear();
        for arg in args.clone() {
            let Some(arg_key) = arg.and_then(arg_key) else {
                key.clear();
                self.execution_scratch = key;
                return Probe::Skip;
            };
            key.push(arg_key);
        }
        let key = (rule, key);
        match self.execution.get(&key) {
            Some((_, value)) => {
                let value = value.clone();
                let (_, mut scratch) = key;
                scratch.clear();
                self.execution_scratch = scratch;
                Probe::Hit(value)
            }
            None => Probe::MissInExecution(key, args.flatten().cloned().collect()),
        }
    }

    /// Keeps `result` for the call whose [`FunctionMemo::probe`] missed with `miss`: across executions
    /// unless it is too large, within this execution while there is room.
    pub(super) fn record(&mut self, miss: Probe, result: &Value) {
        match miss {
            Probe::Miss(key, key_bytes) => self.store(key, key_bytes, result),
            Probe::MissInExecution(key, pinned) => {
                if self.execution.len() < MAX_EXECUTION_ENTRIES {
                    self.execution.insert(key, (pinned, result.clone()));
                }
            }
            Probe::Skip | Probe::Hit(_) => {}
        }
    }

    /// Calls kept in this execution.
    pub(super) fn execution_len(&self) -> usize {
        self.execution.len()
    }

    fn probe_across<'a>(
        &mut self,
        rule: u16,
        args: impl Iterator<Item = Option<&'a Value>>,
    ) -> Probe {
        let mut key = core::mem::take(&mut self.scratch);
        key.clear();
        let mut bytes = NODE_BYTES;
        for arg in args {
            match arg.and_then(argument_bytes) {
                Some(b) => bytes = bytes.saturating_add(b),
                None => {
                    key.clear();
                    self.scratch = key;
                    return Probe::Skip;
                }
            }
            key.push(arg.cloned().unwrap_or(Value::Undefined));
        }
        let key = (rule, key);
        match self.entries.get(&key) {
            Some(value) => {
                let value = value.clone();
                let (_, mut args) = key;
                args.clear();
                self.scratch = args;
                Probe::Hit(value)
            }
            None => Probe::Miss(key, bytes),
        }
    }

    /// Keeps `result` for the call that missed across executions with `key`, unless it is too large.
    fn store(&mut self, key: (u16, Vec<Value>), key_bytes: usize, result: &Value) {
        let mut budget = MAX_RESULT_NODES;
        let Some(result_bytes) = result_bytes(result, &mut budget) else {
            return;
        };
        let bytes = key_bytes.saturating_add(result_bytes);
        if self.bytes.saturating_add(bytes) > MAX_BYTES {
            self.clear();
        }
        self.bytes = self.bytes.saturating_add(bytes);
        self.entries.insert(key, result.clone());
    }

    /// Number of kept results.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The key of one argument within an execution, or `None` for `Undefined`.
fn arg_key(value: &Value) -> Option<ArgKey> {
    let shared = |kind: u8, address: usize| Some(ArgKey::Shared(kind, address));
    match value {
        Value::Null => Some(ArgKey::Null),
        Value::Bool(b) => Some(ArgKey::Bool(*b)),
        Value::Number(Number::Int(i)) => Some(ArgKey::Int(*i)),
        Value::Number(Number::UInt(u)) => Some(ArgKey::UInt(*u)),
        Value::Number(Number::Float(f)) => Some(ArgKey::Float(f.to_bits())),
        Value::Number(Number::BigInt(b)) => shared(0, crate::Rc::as_ptr(b).addr()),
        Value::String(s) if s.len() <= MAX_STRING => Some(ArgKey::Str(value.clone())),
        Value::String(s) => shared(1, s.as_ptr().addr()),
        Value::Array(a) => shared(2, crate::Rc::as_ptr(a).addr()),
        Value::Set(s) => shared(3, crate::Rc::as_ptr(s).addr()),
        Value::Object(o) => shared(4, crate::Rc::as_ptr(o).addr()),
        Value::Undefined => None,
    }
}

/// Memory of a scalar argument, or `None` when it may not be part of a key.
fn scalar_bytes(value: &Value) -> Option<usize> {
    match value {
        Value::Null | Value::Bool(_) => Some(NODE_BYTES),
        Value::Number(Number::Int(_) | Number::UInt(_)) => Some(NODE_BYTES),
        Value::String(s) if s.len() <= MAX_STRING => Some(NODE_BYTES.saturating_add(s.len())),
        _ => None,
    }
}

/// Memory of an argument (a scalar, or a short array of scalars), or `None` when it may not be part
/// of a key.
fn argument_bytes(value: &Value) -> Option<usize> {
    match value {
        Value::Array(items) if items.len() <= MAX_ARRAY_ARG => items
            .iter()
            .try_fold(NODE_BYTES, |sum, item| Some(sum.saturating_add(scalar_bytes(item)?))),
        other => scalar_bytes(other),
    }
}

/// Memory of a result, or `None` when it has more than `budget` values or a long string.
fn result_bytes(value: &Value, budget: &mut usize) -> Option<usize> {
    *budget = budget.checked_sub(1)?;
    let mut sum = NODE_BYTES;
    let mut add = |item: &Value, budget: &mut usize| -> Option<()> {
        sum = sum.saturating_add(result_bytes(item, budget)?);
        Some(())
    };
    match value {
        Value::String(s) if s.len() > MAX_STRING => return None,
        Value::String(s) => return Some(NODE_BYTES.saturating_add(s.len())),
        Value::Array(items) => {
            for item in items.iter() {
                add(item, budget)?;
            }
        }
        Value::Set(items) => {
            for item in items.iter() {
                add(item, budget)?;
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields.iter() {
                add(key, budget)?;
                add(item, budget)?;
            }
        }
        _ => {}
    }
    Some(sum)
}
