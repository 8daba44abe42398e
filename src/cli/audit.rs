//! `regate audit`: one background audit of the objects stored in a cluster (CI, cron, a laptop). The
//! kinds the loaded policies match are found by API discovery and listed in pages; each object is judged
//! as `regate check` judges a manifest, with cluster state from the API server as `regate serve
//! --cluster-state kube` sees it. Output formats and exit codes are `check`'s, with a summary per
//! policy, namespace and tenant. See docs/audit.md.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::PolicyArgs;
use crate::audit::kinds;
use crate::audit::scan::{scan_kind, Auditor};
use crate::audit::summary::Summary;
use crate::cluster::kube_source::{KubeSource, KubeSourceOptions};
use crate::cluster::state::{ClusterState, StateError, StateSnapshot};
use crate::duration::parse_flag;
use crate::policy::{self, Evaluator};
use crate::report::model::Report;
use crate::report::{write_report, Format};

/// Arguments of `regate audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Kubeconfig file (default: `KUBECONFIG`, `~/.kube/config`, or the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Objects fetched per list request (`limit`); memory grows with it, not with the cluster.
    #[arg(long, default_value_t = 500, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Audit only these namespaces (repeatable); cluster-scoped kinds are then left out.
    #[arg(short, long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Format written to stdout: text, json, junit, sarif, gitlab.
    #[arg(short, long, default_value = "text")]
    pub format: Format,
    /// How long to wait for the cluster state policies read (namespaces, network policies, ...).
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_flag)]
    pub state_timeout: Duration,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// A client for the kubeconfig and context given, or the default configuration.
async fn client(args: &AuditArgs) -> anyhow::Result<Client> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("{}: cannot read kubeconfig", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options).await?,
        (None, None) => Config::infer().await?,
    };
    Client::try_from(config).context("kubernetes client configuration")
}

/// The cluster state `regate serve --cluster-state kube` would decide with, once every watched kind
/// has been listed.
async fn cluster_state(client: Client, timeout: Duration) -> anyhow::Result<StateSnapshot> {
    let source = KubeSource::start(client, KubeSourceOptions::default());
    let started = Instant::now();
    loop {
        match source.snapshot() {
            Ok(snapshot) => return Ok(snapshot),
            Err(StateError::LookupFailed(why)) => anyhow::bail!("cluster state: {why}"),
            Err(StateError::NotSynced) if started.elapsed() >= timeout => {
                anyhow::bail!("cluster state not synced within {timeout:?}")
            }
            Err(StateError::NotSynced) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Writes `document` (one pretty-printed JSON object and a newline, as the json writer writes it) with
/// `key` added last, set to `value`; the document is not parsed again (it holds every finding).
fn write_with_last_key(
    document: &[u8],
    key: &str,
    value: &impl serde::Serialize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let close = document
        .iter()
        .rposition(|b| *b == b'}')
        .context("the json report is not an object")?;
    out.write_all(document[..close].trim_ascii_end())?;
    let value = serde_json::to_string_pretty(value)?.replace('\n', "\n  ");
    writeln!(out, ",\n  {}: {value}\n}}", serde_json::to_string(key)?)?;
    Ok(())
}

/// Writes the report in `format` with the summary: after the text report, inside the JSON report (as
/// `audit`), and on stderr beside the formats whose schema has no place for it.
fn write_audit(report: &Report, summary: &Summary, format: Format) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Text => {
            write_report(report, format, version, &mut out)?;
            summary.write_text(&mut out)?;
        }
        Format::Json => {
            let mut buffer = Vec::new();
            write_report(report, format, version, &mut buffer)?;
            write_with_last_key(&buffer, "audit", summary, &mut out)?;
        }
        Format::Junit | Format::Sarif | Format::Gitlab => {
            write_report(report, format, version, &mut out)?;
            summary.write_text(&mut std::io::stderr().lock())?;
        }
    }
    Ok(())
}

/// Runs `regate audit`; returns `check`'s exit codes (0 clean, 1 deny-level findings, 2 when an API
/// group could not be discovered or a kind could not be listed).
pub fn run(args: &AuditArgs) -> anyhow::Result<i32> {
    let set = Arc::new(policy::load(&args.policy.load_options())?);
    super::print_load_notes(&set);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the kubernetes client runtime")?;
    let client = runtime.block_on(client(args))?;
    let served = runtime
        .block_on(kinds::discover(
            &client,
            kinds::wanted_groups(&set).as_ref(),
        ))
        .context("API discovery")?;
    let audited = kinds::select(&set, served.resources);
    let state = runtime.block_on(cluster_state(client.clone(), args.state_timeout))?;
    let evaluator = Evaluator::new(set.clone(), (*state.inventory).clone())?;
    let mut auditor = Auditor::new(
        &set,
        &evaluator,
        &state.inventory,
        args.format == Format::Junit,
    );
    for (group, error) in &served.failed {
        auditor.discovery_failed(group, error);
    }
    for (policy, reason) in auditor.request_policies() {
        eprintln!("audit: {policy}: skipped (not judged without an admission request: the policy {reason})");
    }
    for kind in &audited {
        let listed = scan_kind(
            &runtime,
            &client,
            kind,
            &args.namespaces,
            args.page_size,
            &mut auditor,
        );
        eprintln!(
            "audit: {}: {} objects in {} pages",
            kind.describe(),
            listed.objects,
            listed.pages
        );
    }
    let (report, summary) = auditor.finish();
    write_audit(&report, &summary, args.format)?;
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_last_key_of_the_json_report() {
        let mut report = Vec::new();
        write_report(&Report::default(), Format::Json, "1", &mut report).unwrap();
        let summary = Summary::default();
        let mut joined = Vec::new();
        write_with_last_key(&report, "audit", &summary, &mut joined).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&joined).unwrap();
        assert_eq!(json["audit"], serde_json::to_value(&summary).unwrap());
        assert_eq!(json["objects"], 0);
        assert!(joined.ends_with(b"}\n"));
    }
}
