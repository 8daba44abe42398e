//! Known deviations of regorus's compiled VM from Rego semantics, which the bundled policies are written
//! around (see docs/policies.md). The first test documents today's behaviour; the ignored one is the
//! check to run after a regorus upgrade (`cargo test --test policies_rvm_quirks -- --ignored`): once it
//! passes, the quirks are gone.

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

#[test]
#[ignore = "regorus 0.14 compiled VM quirks; run after upgrading regorus"]
fn the_compiled_vm_follows_rego_semantics() {
    let response = eval(&[]);
    assert_eq!(response["response"]["allowed"], true, "{response:#}");
}
