//! `regate check [FILES|DIRS|-]`: the CI dry-run. Every object read from the manifests becomes the CREATE
//! request the API server would send and goes through the webhook's own path (mutate, then validate);
//! findings, and the patch operations the mutating webhook would apply, are written in one or more
//! report formats. Findings are summarised in the exit code; patches are informational.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;

use super::eval::load_inventory;
use super::PolicyArgs;
use crate::admission::synthesize::{create_request, Requester};
use crate::cluster::Inventory;
use crate::images::verify::{self, Verdict};
use crate::manifest::{self, Document};
use crate::policy::{self, Decision, Evaluator, Extras, PolicySet};
use crate::report::model::{Finding, Location, ObjectRef, Patch, Report};
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

fn parse_output(value: &str) -> Result<(Format, PathBuf), String> {
    let (format, path) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?}: expected FORMAT=FILE, e.g. junit=report.xml"))?;
    let format: Format = format.parse().map_err(|e| format!("{e}"))?;
    if path.is_empty() {
        return Err(format!("{value:?}: missing file name after '='"));
    }
    Ok((format, PathBuf::from(path)))
}

fn object_ref(doc: &Document, default_namespace: &str) -> ObjectRef {
    let o = &doc.object;
    let kind = o
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let namespace = if crate::admission::synthesize::is_cluster_scoped(&kind) {
        None
    } else {
        Some(
            o.pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(default_namespace)
                .to_string(),
        )
    };
    ObjectRef {
        api_version: o
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        kind,
        namespace,
        name: o
            .pointer("/metadata/name")
            .or_else(|| o.pointer("/metadata/generateName"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    }
}

/// What checking one document found: its findings and the patch operations the mutating webhook
/// would apply to it before validation.
#[derive(Debug, Clone)]
pub struct Checked {
    pub location: Location,
    pub object: ObjectRef,
    pub findings: Vec<Finding>,
    pub patches: Vec<Patch>,
}

/// The report entries of a decision's patch, each named after the policy that produced it.
pub fn patches_of(
    set: &PolicySet,
    decision: &Decision,
    location: &Location,
    object: &ObjectRef,
) -> Vec<Patch> {
    decision
        .patch
        .iter()
        .zip(&decision.patch_owners)
        .map(|(op, owner)| {
            let policy = set.policies.get(*owner);
            Patch {
                location: location.clone(),
                object: object.clone(),
                policy: policy.map(|p| p.id.clone()).unwrap_or_default(),
                title: policy.map(|p| p.metadata.title.clone()).unwrap_or_default(),
                op: op
                    .get("op")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                path: op
                    .get("path")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                value: op.get("value").map(|v| v.to_string()),
            }
        })
        .collect()
}

/// Evaluates every document (mutate, then validate the mutated object, as admission does).
pub fn check_documents(
    set: &Arc<PolicySet>,
    evaluator: &Evaluator,
    documents: &[Document],
    default_namespace: &str,
    requester: &Requester,
    verdicts: Option<&BTreeMap<String, Verdict>>,
) -> Vec<Checked> {
    let policies: BTreeMap<&str, &policy::Policy> =
        set.policies.iter().map(|p| (p.id.as_str(), p)).collect();
    let timeout = Duration::from_millis(set.config.limits.request_timeout_ms);
    documents
        .par_iter()
        .map(|doc| {
            let request = create_request(&doc.object, default_namespace, requester);
            let images =
                verdicts.map(|all| verify::verdicts_for(&verify::request_images(&request), all));
            let extras = Extras {
                images: images.as_ref(),
                ..Extras::default()
            };
            let mut decision = evaluator.admit_with(&request, extras, Instant::now() + timeout);
            let object = object_ref(doc, default_namespace);
            let patches = patches_of(set, &decision, &doc.location, &object);
            let findings = std::mem::take(&mut decision.results)
                .into_iter()
                .map(|r| {
                    let meta = policies.get(r.policy.as_str()).map(|p| &p.metadata);
                    Finding {
                        location: doc.location.clone(),
                        object: object.clone(),
                        policy: r.policy,
                        title: r.title,
                        severity: r.severity,
                        action: r.action,
                        rule: r.rule.as_str().to_string(),
                        message: r.message,
                        field: r.field,
                        remediation: meta
                            .map(|m| m.remediation.clone())
                            .filter(|s| !s.is_empty()),
                        controls: meta.map(|m| m.controls.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            Checked {
                location: doc.location.clone(),
                object,
                findings,
                patches,
            }
        })
        .collect()
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
    let mut inventory = Inventory::new();
    load_inventory(&args.inventory, &mut inventory, &args.namespace)?;
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
        Some(super::verify_image::verdicts_for_cli(&set, &images)?)
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
