//! `regate verify-image IMAGE... [--key FILE]...`: resolves each image at its registry, finds its cosign
//! signatures (legacy `.sig` tag and sigstore-bundle referrers) and says whether it is trusted and why.
//! Also the shared wiring that lets `check --verify-images` and `eval` feed verdicts to the policies.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use super::PolicyArgs;
use crate::images::config::{ImageVerificationConfig, NamedKey};
use crate::images::signature::PublicKey;
use crate::images::verify::{self, Verdict, Verifier};
use crate::policy::{self, PolicySet};

/// Arguments of `regate verify-image`.
#[derive(Debug, Args)]
pub struct VerifyImageArgs {
    /// Image references, as written in a pod spec.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Public key (cosign.pub PEM) to verify with, repeatable; named after the file. Without `--key`,
    /// the keys of `imageVerification.keys` in the configuration are used.
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// Print JSON (one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// How long the CLI waits for registries in total.
const CLI_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `regate verify-image`; 0 when every image verified, 1 otherwise, 2 on errors.
pub fn run(args: &VerifyImageArgs) -> anyhow::Result<i32> {
    let set = policy::load(&args.policy.load_options())?;
    let config = &set.config.image_verification;
    let verifier = if args.keys.is_empty() {
        Verifier::new(config, None)?
    } else {
        let keys = args
            .keys
            .iter()
            .map(|path| {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let key =
                    PublicKey::from_pem(&pem).with_context(|| format!("{}", path.display()))?;
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string());
                Ok(NamedKey { name, key })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Verifier::with_keys(config, keys, None)?
    };
    if verifier.key_names().is_empty() {
        anyhow::bail!("no keys: pass --key FILE or configure imageVerification.keys");
    }
    let verdicts =
        verify::verify_all_blocking(&verifier, &args.images, Instant::now() + CLI_DEADLINE)
            .context("starting the registry client runtime")?;
    let mut all_verified = true;
    for image in &args.images {
        let Some(v) = verdicts.get(image) else {
            continue;
        };
        all_verified &= v.verified;
        if args.json {
            let mut j = v.to_json();
            j["image"] = image.clone().into();
            j["details"] = v.details.clone().into();
            println!("{j}");
        } else {
            print_verdict(image, v);
        }
    }
    Ok(if all_verified { 0 } else { 1 })
}

fn print_verdict(image: &str, v: &Verdict) {
    let status = if v.verified {
        "TRUSTED"
    } else if v.registry_error {
        "UNKNOWN (registry error)"
    } else {
        "NOT TRUSTED"
    };
    println!("{image}: {status}");
    if !v.digest.is_empty() {
        println!("  digest:  {}", v.digest);
    }
    if !v.signers.is_empty() {
        println!("  signers: {}", v.signers.join(", "));
    }
    for d in &v.details {
        println!("  - {d}");
    }
    println!("  reason:  {}", v.reason);
}

/// Verdicts for `images` under the bundle's `imageVerification` settings, for the CLI doors.
pub fn verdicts_for_cli(
    set: &PolicySet,
    images: &[String],
) -> anyhow::Result<BTreeMap<String, Verdict>> {
    let config: &ImageVerificationConfig = &set.config.image_verification;
    let verifier = Verifier::new(config, None)?;
    verify::verify_all_blocking(&verifier, images, Instant::now() + CLI_DEADLINE)
        .context("starting the registry client runtime")
}
