//! The JSONPatch applier: `admission::patch::normalize` on an object and a list of operations, read
//! from the input as the JSON array `[object, [op, ...]]` (anything else is used as the operations
//! against an empty object, or skipped). Nothing may panic, and the contract must hold: the emitted
//! operations are valid RFC 6902 against the original object, so replaying them from the original
//! applies every one of them and gives the same patched object; `encode` takes any emitted list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::admission::patch::{encode, normalize, parse_pointer};
use serde_json::Value as Json;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_pointer(text);
    }
    let Ok(input) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    let (object, ops) = match input {
        Json::Array(mut pair) if pair.len() == 2 && pair[1].is_array() => {
            let Json::Array(ops) = pair.pop().unwrap() else {
                unreachable!()
            };
            (pair.pop().unwrap(), ops)
        }
        Json::Array(ops) => (Json::Object(Default::default()), ops),
        _ => return,
    };
    let (normalized, _errors) = normalize(&object, &ops);
    let _ = encode(&normalized.ops);
    let (replayed, errors) = normalize(&object, &normalized.ops);
    assert!(
        errors.is_empty(),
        "emitted operations {:?} fail against the original object: {errors:?}",
        normalized.ops
    );
    assert_eq!(
        replayed.patched, normalized.patched,
        "replaying the emitted operations gives another object"
    );
});
