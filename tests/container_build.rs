//! The container image's build inputs, checked without building the image (no container daemon is
//! needed): the Containerfile's builder stage must copy everything cargo needs to resolve the crate
//! (the patched regorus is a path dependency under vendor/) and everything the profile-guided build's
//! workload reads, and its Rust image must be new enough for every locked dependency, with Cargo.toml's
//! `rust-version` naming the same release. The image build broke both ways before (7d456ea, 3d2b03f).

use std::path::Path;
use std::process::Command;

mod common;

use common::{path, root};

fn containerfile() -> String {
    std::fs::read_to_string(path("Containerfile")).expect("Containerfile is readable")
}

/// The lines of the stage named `name` (from its `FROM … AS name` to the next `FROM`).
fn stage(text: &str, name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"FROM") {
            inside = words.len() == 4 && words[2].eq_ignore_ascii_case("AS") && words[3] == name;
            continue;
        }
        if inside {
            lines.push(line.to_string());
        }
    }
    assert!(!lines.is_empty(), "Containerfile has no stage {name}");
    lines
}

/// `(sources, destination)` of every COPY from the build context (not `--from` another stage).
fn context_copies(lines: &[String]) -> Vec<(Vec<String>, String)> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|rest| !rest.trim_start().starts_with("--from"))
        .map(|rest| {
            let mut words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            let dest = words.pop().expect("COPY has a destination");
            (words, dest)
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create directory");
        for entry in std::fs::read_dir(from).expect("read directory") {
            let entry = entry.expect("directory entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    }
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host")
}

/// `cargo metadata` of the crate in `dir`, for the host platform (what the image builds on).
fn metadata(dir: &Path) -> Result<serde_json::Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(["metadata", "--locked", "--format-version", "1"])
        .args(["--filter-platform", &host_triple()])
        .output()
        .expect("cargo runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// `1.95` from `1.95`, `1.95.0` or `1.95-bookworm`: (major, minor).
fn release(version: &str) -> (u32, u32) {
    let mut parts = version.split(['.', '-']).map(|p| {
        p.parse::<u32>()
            .unwrap_or_else(|_| panic!("not a Rust release: {version}"))
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor)
}

#[test]
fn the_builder_stage_copies_what_cargo_and_the_profile_workload_need() {
    let text = containerfile();
    let copies = context_copies(&stage(&text, "builder"));
    let work = tempfile::tempdir().expect("temporary directory");
    let mut copied = Vec::new();
    for (sources, dest) in &copies {
        for source in sources {
            let rel = source.trim_end_matches('/');
            // Every COPY lands at its own relative path under WORKDIR (`COPY a b ./` or `COPY dir/ dir/`).
            assert!(
                dest == "./" || (sources.len() == 1 && dest.trim_end_matches('/') == rel),
                "COPY {source} {dest}: this test expects each source at its own path"
            );
            copy_tree(&path(rel), &work.path().join(rel));
            copied.push(rel.to_string());
        }
    }
    // The profile-guided build runs these (scripts/build-pgo.sh's workload).
    for needed in ["scripts", "testdata", "policies", "vendor", "Cargo.lock"] {
        assert!(
            copied.iter().any(|c| c == needed),
            "the builder stage does not copy {needed}: {copied:?}"
        );
    }
    let copy = metadata(work.path()).unwrap_or_else(|stderr| {
        panic!("cargo cannot resolve the crate from the Containerfile's COPY set {copied:?}:\n{stderr}")
    });
    // cargo metadata leaves out a declared target whose file is missing, where cargo build fails on it
    // (a `[[bench]]` without benches/): every target the build parses must still be there.
    let full = metadata(&root()).unwrap_or_else(|stderr| panic!("cargo metadata: {stderr}"));
    let have = built_targets(&copy);
    let missing: Vec<(String, String)> = built_targets(&full)
        .into_iter()
        .filter(|target| !have.contains(target))
        .collect();
    assert!(
        missing.is_empty(),
        "targets missing from the Containerfile's COPY set {copied:?}: {missing:?}"
    );
}

/// The crate's own targets that cargo parses for any build: (kind, name) of its library, binaries,
/// benches and build script (tests and examples are discovered from their directories, and optional).
fn built_targets(meta: &serde_json::Value) -> Vec<(String, String)> {
    let packages = meta["packages"].as_array().expect("packages");
    let root = packages
        .iter()
        .find(|p| p["name"] == env!("CARGO_PKG_NAME"))
        .expect("the crate itself is in cargo metadata");
    let mut targets = Vec::new();
    for target in root["targets"].as_array().expect("targets") {
        let name = target["name"].as_str().unwrap_or_default().to_string();
        for kind in target["kind"].as_array().expect("target kinds") {
            let kind = kind.as_str().unwrap_or_default();
            if ["lib", "bin", "bench", "custom-build"].contains(&kind) {
                targets.push((kind.to_string(), name.clone()));
            }
        }
    }
    targets
}

#[test]
fn the_builder_rust_release_is_cargo_tomls_rust_version_and_builds_every_locked_dependency() {
    let text = containerfile();
    let image = text
        .lines()
        .find_map(|l| l.strip_prefix("ARG BUILDER_IMAGE="))
        .expect("Containerfile sets ARG BUILDER_IMAGE");
    let tag = image
        .rsplit_once("rust:")
        .map(|(_, tag)| tag)
        .unwrap_or_else(|| panic!("BUILDER_IMAGE is not a Rust image: {image}"));
    let builder = release(tag);

    let manifest = std::fs::read_to_string(path("Cargo.toml")).expect("Cargo.toml");
    let declared = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| release(v.trim_matches('"')))
        .expect("Cargo.toml declares rust-version");
    assert_eq!(
        builder, declared,
        "BUILDER_IMAGE {image} and Cargo.toml's rust-version name different Rust releases"
    );

    let meta = metadata(&root()).unwrap_or_else(|stderr| panic!("cargo metadata: {stderr}"));
    let packages = meta["packages"].as_array().expect("packages");
    assert!(
        packages.len() > 50,
        "cargo metadata listed {} packages",
        packages.len()
    );
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (release(needs) > builder)
                .then(|| format!("{} {} needs {needs}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "{image} cannot build these locked dependencies: {too_new:?}"
    );
}

#[test]
fn release_reads_rust_versions_and_image_tags() {
    assert_eq!(release("1.95"), (1, 95));
    assert_eq!(release("1.88.0"), (1, 88));
    assert_eq!(release("1.95-bookworm"), (1, 95));
    assert!(release("1.95") > release("1.89"));
}
