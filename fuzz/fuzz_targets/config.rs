//! `regate.yaml` parsing: one layer read with `parse_layer`, merged over an empty configuration and
//! over itself, then turned into the typed `Config` and the view policies see. Nothing may panic, and a
//! layer `parse_layer` accepts must also pass `finish` (the typed pass already checked it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::policy::config::{finish, merge, parse_layer, rego_view};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(layer) = parse_layer("regate.yaml", text) else {
        return;
    };
    let mut merged = serde_json::Value::Object(Default::default());
    merge(&mut merged, layer.clone());
    let config = finish(&merged, "regate.yaml");
    assert!(
        config.is_ok(),
        "parse_layer accepted a layer finish rejects: {config:?}"
    );
    merge(&mut merged, layer);
    let again = finish(&merged, "regate.yaml, regate.yaml");
    assert!(
        again.is_ok(),
        "a layer merged over itself is rejected: {again:?}"
    );
    let _ = rego_view(&merged);
});
