//! `regate eval --review FILE|-`: answers one AdmissionReview exactly as the server would (the same
//! [`crate::policy::decide`], the same response writer), optionally explaining the rules that fired and the decoded patch.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::PolicyArgs;
use crate::admission::{Endpoint, RequestRef, Review};
use crate::cluster::Inventory;
use crate::images::verify;
use crate::policy::{self, decide, response, Active, Bundle, FailureMode};
use crate::report::model::describe_op;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EndpointArg {
    Validate,
    Mutate,
}

/// Arguments of `regate eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The AdmissionReview to answer (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub review: PathBuf,
    /// Which webhook endpoint to answer as.
    #[arg(long, value_enum, default_value = "validate")]
    pub endpoint: EndpointArg,
    /// Also print the rules that fired and the decoded patch (to stderr; stdout stays the exact response).
    #[arg(long)]
    pub explain: bool,
    /// Verify image signatures at their registries, as the webhook does when
    /// `imageVerification.enabled` is set (which also turns this on).
    #[arg(long)]
    pub verify_images: bool,
    /// Cluster state as manifests (`kubectl get ns,netpol,ingress -A -o yaml`), repeatable.
    #[arg(long, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

fn read_review(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
    }
}

/// Runs `regate eval`; returns 0 when allowed, 1 when denied, 2 for a malformed review.
pub fn run(args: &EvalArgs) -> anyhow::Result<i32> {
    let name = args.review.display().to_string();
    let body = read_review(&args.review)?;
    let review = match Review::parse(&body) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("error: {name}: {err}");
            return Ok(2);
        }
    };
    let set = policy::load(&args.policy.load_options())?;
    super::print_load_notes(&set);
    let bundle = Bundle::untested(set);
    let mut inventory = Inventory::new();
    inventory.add_manifest_files(&args.inventory, "default")?;
    let active = Active::with_inventory(Arc::new(bundle), Arc::new(inventory.to_json()), None)?;
    let set = &active.bundle.set;
    let endpoint = match args.endpoint {
        EndpointArg::Validate => Endpoint::Validate,
        EndpointArg::Mutate => Endpoint::Mutate,
    };
    let images = if args.verify_images || set.config.image_verification.enabled {
        let wanted = verify::request_images(&review.request);
        let verdicts = verify::verify_for_cli(&set.config.image_verification, &wanted)?;
        Some(verify::verdicts_for(&wanted, &verdicts))
    } else {
        None
    };
    let deadline = Instant::now() + Duration::from_millis(set.config.limits.request_timeout_ms);
    // Cluster state is what --inventory holds: never unavailable, so the failure mode never applies.
    let decision = decide(
        &active,
        RequestRef::Json(&review.request),
        endpoint,
        deadline,
        None,
        FailureMode::default(),
        images.as_ref(),
    );
    let out = response::build(&review, &decision, endpoint);
    println!("{}", serde_json::to_string_pretty(&out)?);
    if args.explain {
        eprintln!("bundle {} ({} policies)", set.digest, set.policies.len());
        eprintln!("evaluated: {}", decision.evaluated.join(", "));
        for r in &decision.results {
            let field = r
                .field
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            eprintln!(
                "  {} {} [{}]: {}{}",
                r.action.as_str(),
                r.policy,
                r.rule.as_str(),
                r.message,
                field
            );
        }
        if !decision.patch.is_empty() {
            // Which policy wrote each operation, as `regate check` reports it, then the patch itself.
            for (op, owner) in decision.patch.iter().zip(&decision.patch_owners) {
                let text = |key: &str| op.get(key).and_then(|v| v.as_str()).unwrap_or_default();
                let value = op.get("value").map(|v| v.to_string());
                eprintln!(
                    "  PATCH {}: {}",
                    set.policies.get(*owner).map_or("?", |p| p.id.as_str()),
                    describe_op(text("op"), text("path"), value.as_deref())
                );
            }
            eprintln!("patch:\n{}", serde_json::to_string_pretty(&decision.patch)?);
        }
        for e in &decision.patch_errors {
            eprintln!("patch error: {e}");
        }
    }
    Ok(if decision.allowed() { 0 } else { 1 })
}
