//! Bundle loading: the input is the one Rego module of a bundle (`fuzz/policy.rego`, with its
//! `# METADATA` annotation), compiled as `regate check` and `regate serve` compile a bundle directory.
//! The `# METADATA` reader is also run on its own. Nothing may panic; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::policy::bundle::BundleSources;
use regate::policy::load::compile;
use regate::policy::metadata::parse_package_annotation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_package_annotation("fuzz/policy.rego", text);
    let _ = compile(
        BundleSources::one_module("fuzz/policy.rego", text.to_string()),
        &[],
        false,
    );
});
