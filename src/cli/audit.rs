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
use crate::audit::reports::{ReportApi, ReportOptions, ResultFilter};
use crate::audit::run::{audit, AuditOutcome, AuditSpec};
use crate::audit::scan::Keep;
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
    /// Requests per second against the API server (list pages, report writes); 0: no limit.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub api_qps: u32,
    /// Write a policy report per audited object into the cluster (server-side apply; unchanged
    /// reports are not rewritten). See docs/audit.md.
    #[arg(long)]
    pub write_reports: bool,
    /// Report API written by --write-reports: openreports (Report, ClusterReport) or wgpolicyk8s
    /// (PolicyReport, ClusterPolicyReport).
    #[arg(long, value_enum, default_value = "openreports", value_name = "API")]
    pub report_api: ReportApi,
    /// Results stored in reports, comma-separated (pass, fail, warn, error, skip); default: all.
    #[arg(long, value_name = "RESULTS")]
    pub report_results: Option<ResultFilter>,
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

impl AuditArgs {
    /// The audit these arguments ask for.
    fn spec(&self) -> AuditSpec {
        AuditSpec {
            page_size: self.page_size,
            namespaces: self.namespaces.clone(),
            qps: self.api_qps,
            reports: self.write_reports.then(|| ReportOptions {
                api: self.report_api,
                filter: self.report_results.clone().unwrap_or_default(),
            }),
            keep: Keep {
                findings: true,
                checked: self.format == Format::Junit,
            },
            stop: None,
        }
    }
}

/// Progress on stderr: policies not judged, objects and pages per kind, what happened to reports.
fn print_progress(outcome: &AuditOutcome) {
    for (policy, reason) in &outcome.skipped_policies {
        eprintln!("audit: {policy}: skipped (not judged without an admission request: the policy {reason})");
    }
    for (kind, listed) in &outcome.kinds {
        eprintln!(
            "audit: {}: {} objects in {} pages",
            kind.describe(),
            listed.objects,
            listed.pages
        );
    }
    if let Some((stats, errors)) = &outcome.reports {
        eprintln!(
            "audit: reports: {} written, {} unchanged, {} deleted, {} failed",
            stats.written, stats.unchanged, stats.deleted, stats.failed
        );
        for error in errors {
            eprintln!("audit: {error}");
        }
    }
}

/// Runs `regate audit`; returns `check`'s exit codes (0 clean, 1 deny-level findings, 2 when an API
/// group could not be discovered, a kind could not be listed or a report could not be written).
pub fn run(args: &AuditArgs) -> anyhow::Result<i32> {
    let set = Arc::new(policy::load(&args.policy.load_options())?);
    super::print_load_notes(&set);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the kubernetes client runtime")?;
    let outcome = runtime.block_on(async {
        let client = client(args).await?;
        let state = cluster_state(client.clone(), args.state_timeout).await?;
        let evaluator = Evaluator::new(set.clone(), (*state.inventory).clone())?;
        audit(&client, &set, &evaluator, &state.inventory, &args.spec()).await
    })?;
    print_progress(&outcome);
    write_audit(&outcome.report, &outcome.summary, args.format)?;
    let reports_failed = outcome
        .reports
        .as_ref()
        .is_some_and(|(stats, _)| stats.failed > 0);
    Ok(match outcome.report.exit_code() {
        0 | 1 if reports_failed => 2,
        code => code,
    })
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
