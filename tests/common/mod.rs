//! Helpers shared by the integration tests: run the real `regate` binary and locate fixtures and the
//! shared corpus.
#![allow(dead_code)]

pub mod cosign;
pub mod registry;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The ids of the bundled policies (`policies/<id>/`).
pub const BUNDLED_POLICIES: &[&str] = &[
    "tenant-isolation",
    "no-plaintext-secrets",
    "trusted-images",
    "resource-limits",
    "network-policy-required",
    "ingress-tls",
    "pod-security",
    "workload-hygiene",
];

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path below the repository root.
pub fn path(rel: &str) -> PathBuf {
    root().join(rel)
}

/// The shared corpus folder, or `None` (with a message) when it is absent.
pub fn corpus(rel: &str) -> Option<PathBuf> {
    let p = root().join("../shared/corpus").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: corpus folder {} is absent", p.display());
        None
    }
}

/// The rendered chart corpus (`charts/*.yaml` and `charts/extra/*.yaml`) as `regate check` reads it,
/// with every object also in an inventory (namespace `default`, as `regate check` defaults it); `None`
/// (with a message) when the corpus is absent.
pub fn chart_corpus() -> Option<(regate::manifest::ReadResult, regate::cluster::Inventory)> {
    let dir = corpus("charts")?;
    let mut paths = files(&dir, "yaml");
    paths.extend(files(&dir.join("extra"), "yaml"));
    let read = regate::manifest::read_inputs(&paths).expect("read the chart corpus");
    let mut inventory = regate::cluster::Inventory::new();
    for doc in &read.documents {
        inventory.add(&doc.object, "default");
    }
    Some((read, inventory))
}

/// Runs `regate ARGS` with `stdin` piped in; returns the output.
pub fn regate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regate"));
    cmd.args(args).current_dir(root());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn regate");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(bytes).expect("write stdin");
    }
    child.wait_with_output().expect("wait regate")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Files with the given extension directly in `dir`, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}
