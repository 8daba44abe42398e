//! Differential target: the two AdmissionReview readers must agree on every input.
//!
//! `Review::parse` reads a `serde_json` tree; `ValueReview::parse` reads straight into regorus values
//! (`admission::value_json`), as the server does on `/validate`. Both must accept and reject the same bodies
//! with the same error, and when they accept, the request they hold must be the same value: the JSON
//! tree converted with `evaluate::to_value` (what every other front door does) equals the value read
//! directly, and both write back to the same JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::admission::{Review, ValueReview};
use regate::policy::evaluate::to_value;

fuzz_target!(|data: &[u8]| {
    let json = Review::parse(data);
    let value = ValueReview::parse(data);
    match (json, value) {
        (Ok(json), Ok(value)) => {
            assert_eq!(json.api_version, value.api_version, "apiVersion differs");
            assert_eq!(json.uid, value.uid, "uid differs");
            let converted = to_value(&json.request);
            assert_eq!(converted, value.request, "request value differs");
            let back = serde_json::to_value(&value.request).expect("a parsed value writes as JSON");
            assert_eq!(back, json.request, "request JSON differs");
        }
        (Err(json), Err(value)) => {
            assert_eq!(json, value, "the readers reject with different errors")
        }
        (json, value) => panic!(
            "the readers disagree: Review::parse gave {:?}, ValueReview::parse gave {:?}",
            json.map(|r| r.uid),
            value.map(|r| r.uid)
        ),
    }
});
