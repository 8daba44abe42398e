//! Three deviations of regorus 0.14's compiled VM from Rego semantics, which the bundled policies were
//! written around (see docs/policies.md). The vendored regorus fixes them (patches 18 and 19 in
//! vendor/regorus/README.md): both evaluators must allow the reproducers' review.

use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn eval(extra: &[&str]) -> Value {
    let dir = format!("{ROOT}/testdata/policies/rvm-quirks");
    let out = Command::new(env!("CARGO_BIN_EXE_regate"))
        .args([
            "eval",
            "--no-bundled",
            "--policies",
            &format!("{dir}/quirks"),
        ])
        .args(["--review", &format!("{dir}/review.json")])
        .args(extra)
        .output()
        .expect("run regate");
    serde_json::from_slice(&out.stdout).expect("JSON response")
}

#[test]
fn the_interpreter_follows_rego_semantics() {
    assert_eq!(eval(&["--interpreter"])["response"]["allowed"], true);
}

/// The published regorus's VM has the deviations (`--no-default-features` builds on it, see
/// vendor/regorus/README.md): only with the `regorus-fork` feature.
#[cfg(feature = "regorus-fork")]
#[test]
fn the_compiled_vm_follows_rego_semantics() {
    let response = eval(&[]);
    assert_eq!(response["response"]["allowed"], true, "{response:#}");
}
