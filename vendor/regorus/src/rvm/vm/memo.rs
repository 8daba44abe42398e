// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! regate patch 11: results of pure functions, kept by one VM across executions.
//!
//! The caller names the function rules whose result depends on nothing but their arguments, the
//! program and the data document (`RegoVM::set_function_memo`): they read no input and call no
//! builtin whose result can change between calls. A call of such a function whose arguments are all
//! small scalars (null, booleans, integers, strings of at most [`MAX_STRING`] bytes) or short arrays of
//! them is answered from the memo when the same function was called with the same arguments before,
//! in this execution or an earlier one. Results larger than [`MAX_RESULT_NODES`] values are not kept,
//! and the memo is emptied when it would grow past [`MAX_BYTES`], so its memory stays bounded. Loading
//! another program, other data or another set of functions empties it.
//!
//! Arguments are compared strictly (a float never matches an integer), so a hit returns exactly what
//! the call would have computed.

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
/// Bytes counted per value and per entry besides string contents.
const NODE_BYTES: usize = 48;

/// Memoized function results of one VM.
#[derive(Debug, Default)]
pub(super) struct FunctionMemo {
    /// Indexed like the program's rules: true for the functions that may be memoized.
    functions: Vec<bool>,
    entries: BTreeMap<(u16, Vec<Value>), Value>,
    /// Approximate memory of `entries`.
    bytes: usize,
    /// Argument vector reused for lookups that hit.
    scratch: Vec<Value>,
}

/// What a lookup found.
pub(super) enum Probe {
    /// The function is not memoized, or an argument is not a small scalar.
    Skip,
    /// The result of an earlier call with the same arguments.
    Hit(Value),
    /// Not seen yet: the key to [`FunctionMemo::store`] the result under.
    Miss((u16, Vec<Value>), usize),
}

impl FunctionMemo {
    /// Sets which functions may be memoized and forgets every kept result.
    pub(super) fn set_functions(&mut self, functions: &[bool]) {
        self.functions.clear();
        self.functions.extend_from_slice(functions);
        self.clear();
    }

    /// Forgets every kept result.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Looks up a call of function `rule` with `args`.
    pub(super) fn probe<'a>(
        &mut self,
        rule: u16,
        args: impl Iterator<Item = Option<&'a Value>>,
    ) -> Probe {
        if !self
            .functions
            .get(usize::from(rule))
            .copied()
            .unwrap_or(false)
        {
            return Probe::Skip;
        }
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

    /// Keeps `result` for the call that missed with `key`, unless it is too large.
    pub(super) fn store(&mut self, key: (u16, Vec<Value>), key_bytes: usize, result: &Value) {
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
