//! The manifest reader's public entry points on arbitrary bytes: `read_bytes` (what `regate check`
//! runs on every file and stdin) and `decode_stream` (kubectl's decoding without regate's checks).
//! Nothing may panic or hang, and every document `read_bytes` returns must be what its contract says:
//! an object with string `apiVersion` and `kind`, at a line inside the input (an error: at most one
//! line past it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::manifest::{decode_stream, read_bytes};

fuzz_target!(|data: &[u8]| {
    let read = read_bytes("fuzz.yaml", data);
    let lines = 1 + data.iter().filter(|&&b| b == b'\n').count();
    for doc in &read.documents {
        let object = doc.object.as_object().expect("a document is an object");
        assert!(
            object.get("apiVersion").is_some_and(|v| v.is_string()),
            "apiVersion: {object:?}"
        );
        assert!(
            object.get("kind").is_some_and(|v| v.is_string()),
            "kind: {object:?}"
        );
        assert!(
            doc.location.line >= 1 && doc.location.line <= lines,
            "line {} of {lines}",
            doc.location.line
        );
    }
    // An error may point one line past the end: at the end of a text without a final newline, libyaml
    // (and go-yaml, so kubectl) puts the end-of-stream mark on the next line.
    for err in &read.errors {
        assert!(
            err.location.line >= 1 && err.location.line <= lines + 1,
            "error line {} of {lines}: {}",
            err.location.line,
            err.message
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for doc in decode_stream(text) {
            assert!(
                doc.line >= 1 && doc.line <= lines + 1,
                "decoded line {} of {lines}",
                doc.line
            );
            if let Ok(value) = doc.value {
                assert!(!value.is_null(), "decode_stream returned a null document");
            }
        }
    }
});
