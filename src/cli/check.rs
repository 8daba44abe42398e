//! `regate check [FILES|DIRS|-]`: the CI dry-run. Every object read from the manifests becomes the CREATE
//! request the API server would send and goes through the webhook's own path (mutate, then validate;
//! [`crate::check`]); findings, and the patch operations the mutating webhook would apply, are written in one or more
//! report formats. Findings are summarised in the exit code; patches are informational.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::PolicyArgs;
use crate::admission::synthesize::{create_request, Requester};
use crate::check::check_documents;
use crate::cluster::Inventory;
use crate::images::verify;
use crate::manifest;
use crate::policy::{self, Evaluator};
use crate::report::model::Report;
use crate::report::{write_report, Format};
use crate::workers;

/// Arguments of `regate check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest files or directories (recursive); `-` reads stdin. Defaults to stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Format written to stdout: text, json, junit, sarif, gitlab.
    #[arg(short, long, default_value = "text")]
    pub format: Format,
    /// Also write FORMAT to FILE (repeatable), e.g. `--output junit=report.xml --output gitlab=cq.json`.
    #[arg(short, long, value_name = "FORMAT=FILE", value_parser = parse_output)]
    pub output: Vec<(Format, PathBuf)>,
    /// Namespace for namespaced objects that have none (as `kubectl apply -n`).
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// User name the synthetic requests come from.
    #[arg(long, default_value = "regate-check")]
    pub user: String,
    /// Groups of that user (repeatable); defaults to system:authenticated.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Extra cluster state (manifests) for lookups, besides the objects being checked (repeatable).
    #[arg(long, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    /// Verify image signatures at their registries (keys and registry access from
    /// `imageVerification` in regate.yaml), so CI decides like the webhook with verification on.
    #[arg(long)]
    pub verify_images: bool,
    /// Worker threads (default: all cores). Output does not depend on it.
    #[arg(short, long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Parses `--output FORMAT=FILE`.
pub(super) fn parse_output(value: &str) -> Result<(Format, PathBuf), String> {
    let (format, path) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?}: expected FORMAT=FILE, e.g. junit=report.xml"))?;
    let format: Format = format.parse().map_err(|e| format!("{e}"))?;
    if path.is_empty() {
        return Err(format!("{value:?}: missing file name after '='"));
    }
    Ok((format, PathBuf::from(path)))
}

/// Runs `regate check`; returns the exit code (0 clean, 1 deny-level findings, 2 input errors).
pub fn run(args: &CheckArgs) -> anyhow::Result<i32> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    let read = manifest::read_inputs(&paths)?;
    let set = Arc::new(policy::load(&args.policy.load_options())?);
    super::print_load_notes(&set);
    let mut inventory = Inventory::new();
    inventory.add_manifest_files(&args.inventory, &args.namespace)?;
    for doc in &read.documents {
        inventory.add(&doc.object, &args.namespace);
    }
    let evaluator = Evaluator::new(set.clone(), inventory.to_json())?;
    let requester = Requester {
        username: args.user.clone(),
        groups: if args.groups.is_empty() {
            Requester::default().groups
        } else {
            args.groups.clone()
        },
    };
    let verdicts = if args.verify_images {
        let mut images = std::collections::BTreeSet::new();
        for doc in &read.documents {
            let request = create_request(&doc.object, &args.namespace, &requester);
            images.extend(verify::request_images(&request));
        }
        let images: Vec<String> = images.into_iter().collect();
        Some(verify::verify_for_cli(
            &set.config.image_verification,
            &images,
        )?)
    } else {
        None
    };
    let run = || {
        check_documents(
            &set,
            &evaluator,
            &read.documents,
            &args.namespace,
            &requester,
            verdicts.as_ref(),
        )
    };
    let results = workers::run_on(args.jobs, run).context("starting worker threads")?;
    let mut report = Report {
        objects: results.len(),
        errors: read.errors,
        ..Default::default()
    };
    for checked in results {
        report.checked.push((checked.location, checked.object));
        report.findings.extend(checked.findings);
        report.patches.extend(checked.patches);
    }
    report.sort();
    let version = env!("CARGO_PKG_VERSION");
    for (format, path) in &args.output {
        let mut file = std::fs::File::create(path)
            .with_context(|| format!("{}: cannot create", path.display()))?;
        write_report(&report, *format, version, &mut file)
            .with_context(|| format!("{}: write failed", path.display()))?;
    }
    let stdout = std::io::stdout();
    write_report(&report, args.format, version, &mut stdout.lock())
        .context("writing report to stdout")?;
    Ok(report.exit_code())
}
