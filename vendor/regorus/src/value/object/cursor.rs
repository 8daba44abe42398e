// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! Resumable, self-owned cursor over an [`Object`]'s entries.

use core::ops::Bound;

use super::{Object, Repr};
use crate::value::set::LINEAR_CURSOR_STEPS;
use crate::value::Value;

impl Object {
    /// Create a resumable cursor over entries in implementation-defined
    /// order. Stable for the lifetime of `&self`. O(1).
    #[inline]
    pub const fn cursor(&self) -> ObjectCursor {
        ObjectCursor {
            inner: ObjectCursorInner { pos: 0, last: None },
        }
    }

    /// Advance `cursor` and yield the next entry.
    ///
    /// regate patch: frozen objects are indexed by position; B-tree objects
    /// walk from the start for their first [`LINEAR_CURSOR_STEPS`] entries
    /// and only then probe from the last-seen key, so short objects (labels,
    /// container fields) are iterated without key comparisons.
    pub fn next<'a>(&'a self, cursor: &mut ObjectCursor) -> Option<(&'a Value, &'a Value)> {
        let ObjectCursorInner { pos, last } = &mut cursor.inner;
        let (k, val) = match &self.repr {
            Repr::Empty => return None,
            Repr::Frozen(v) => {
                let (k, val) = v.get(*pos)?;
                (k, val)
            }
            Repr::BTree(m) => match last.as_ref() {
                Some(prev) if *pos >= LINEAR_CURSOR_STEPS => m
                    .range::<Value, _>((Bound::Excluded(prev), Bound::Unbounded))
                    .next()?,
                _ => m.iter().nth(*pos)?,
            },
        };
        *pos = pos.saturating_add(1);
        if *pos >= LINEAR_CURSOR_STEPS && matches!(self.repr, Repr::BTree(_)) {
            *last = Some(k.clone());
        }
        Some((k, val))
    }
}

/// Opaque resumable cursor over an [`Object`]'s entries in
/// implementation-defined order.
///
/// Self-owned: holds no borrow on the `Object`, so it can be stored as a
/// field of a long-lived state struct (e.g. an RVM iteration frame).
#[derive(Debug, Clone)]
pub struct ObjectCursor {
    inner: ObjectCursorInner,
}

#[derive(Debug, Clone)]
struct ObjectCursorInner {
    /// Entries yielded so far.
    pos: usize,
    /// The last-seen key, kept once `pos` passes [`LINEAR_CURSOR_STEPS`] (B-tree objects only).
    last: Option<Value>,
}
