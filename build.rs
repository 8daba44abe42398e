//! Rebuilds the crate when the bundled policy library changes: `include_dir!` embeds `policies/` but does
//! not tell cargo to watch it.

fn main() {
    println!("cargo:rerun-if-changed=policies");
}
