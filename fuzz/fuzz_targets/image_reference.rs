//! Image references: `ImageReference::parse` on any string. An accepted reference must pass the
//! component validators the registry client relies on, and its canonical form must parse back to the
//! same reference (normalisation is idempotent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::images::reference::{
    validate_digest, validate_registry, validate_repository, validate_tag, ImageReference,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = validate_registry(text);
    let _ = validate_repository(text);
    let _ = validate_tag(text);
    let _ = validate_digest(text);
    let Ok(reference) = ImageReference::parse(text) else {
        return;
    };
    validate_registry(&reference.registry).expect("registry of an accepted reference");
    validate_repository(&reference.repository).expect("repository of an accepted reference");
    if let Some(tag) = &reference.tag {
        validate_tag(tag).expect("tag of an accepted reference");
    }
    if let Some(digest) = &reference.digest {
        validate_digest(digest).expect("digest of an accepted reference");
    }
    let _ = reference.api_host();
    let canonical = reference.to_string();
    let again = ImageReference::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} of {text:?} is rejected: {e}"));
    assert_eq!(
        again, reference,
        "canonical form {canonical:?} of {text:?} parses differently"
    );
});
