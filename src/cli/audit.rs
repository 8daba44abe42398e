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
    /// Also write FORMAT to FILE (repeatable), e.g. `--output junit=audit.xml --output json=audit.json`.
    #[arg(short, long, value_name = "FORMAT=FILE", value_parser = super::check::parse_output)]
    pub output: Vec<(Format, PathBuf)>,
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

/// The end of a JSON report as the json writer writes it: the object's closing brace and a newline.
const JSON_CLOSE: &[u8] = b"\n}\n";

/// Passes a JSON report through to `out` except its closing [`JSON_CLOSE`], so that a last key can be
/// added without holding the rendered report (it holds every finding) in memory.
struct OpenJsonObject<'a> {
    out: &'a mut dyn Write,
    /// The last bytes written, at most `JSON_CLOSE.len()`.
    tail: Vec<u8>,
}

impl<'a> OpenJsonObject<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            tail: Vec::with_capacity(JSON_CLOSE.len()),
        }
    }

    /// Adds `key`, set to `value`, as the object's last key and closes it.
    fn close_with_key(self, key: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.tail == JSON_CLOSE,
            "the json report does not end with its object's closing brace"
        );
        let value = serde_json::to_string_pretty(value)?.replace('\n', "\n  ");
        writeln!(
            self.out,
            ",\n  {}: {value}\n}}",
            serde_json::to_string(key)?
        )?;
        Ok(())
    }
}

impl Write for OpenJsonObject<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let keep = JSON_CLOSE.len();
        if buf.len() >= keep {
            let split = buf.len() - keep;
            self.out.write_all(&self.tail)?;
            self.out.write_all(&buf[..split])?;
            self.tail.clear();
            self.tail.extend_from_slice(&buf[split..]);
        } else {
            self.tail.extend_from_slice(buf);
            let excess = self.tail.len().saturating_sub(keep);
            self.out.write_all(&self.tail[..excess])?;
            self.tail.drain(..excess);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes the report in `format` to `out` with the summary: after the text report, inside the JSON
/// report (as `audit`, its last key). The other formats' schemas have no place for it
/// ([`summary_fits`]).
fn write_audit(
    report: &Report,
    summary: &Summary,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    match format {
        Format::Text => {
            write_report(report, format, version, out)?;
            summary.write_text(out)?;
        }
        Format::Json => {
            let mut json = OpenJsonObject::new(out);
            write_report(report, format, version, &mut json)?;
            json.close_with_key("audit", summary)?;
        }
        Format::Junit | Format::Sarif | Format::Gitlab => {
            write_report(report, format, version, out)?
        }
    }
    Ok(())
}

/// Whether [`write_audit`] writes the summary into a report of `format`.
fn summary_fits(format: Format) -> bool {
    matches!(format, Format::Text | Format::Json)
}

/// Writes the report and summary to each `--output` file, then to stdout; the summary goes to stderr
/// when the stdout format has no place for it.
fn write_outputs(args: &AuditArgs, report: &Report, summary: &Summary) -> anyhow::Result<()> {
    for (format, path) in &args.output {
        let file = std::fs::File::create(path)
            .with_context(|| format!("{}: cannot create", path.display()))?;
        let mut file = std::io::BufWriter::new(file);
        write_audit(report, summary, *format, &mut file)
            .and_then(|()| Ok(file.flush()?))
            .with_context(|| format!("{}: write failed", path.display()))?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write_audit(report, summary, args.format, &mut out)
        .and_then(|()| Ok(out.flush()?))
        .context("writing the report to stdout")?;
    if !summary_fits(args.format) {
        summary.write_text(&mut std::io::stderr().lock())?;
    }
    Ok(())
}

impl AuditArgs {
    /// Every format written: stdout's and the `--output` files'.
    fn formats(&self) -> impl Iterator<Item = Format> + '_ {
        std::iter::once(self.format).chain(self.output.iter().map(|(format, _)| *format))
    }

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
                // JUnit lists the objects that passed too.
                checked: self.formats().any(|format| format == Format::Junit),
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
    write_outputs(args, &outcome.report, &outcome.summary)?;
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

    /// The report with the summary added through [`OpenJsonObject`], written `chunk` bytes at a time.
    fn json_with_summary(report: &Report, summary: &Summary, chunk: usize) -> Vec<u8> {
        let mut rendered = Vec::new();
        write_report(report, Format::Json, "1", &mut rendered).unwrap();
        let mut joined = Vec::new();
        let mut json = OpenJsonObject::new(&mut joined);
        for piece in rendered.chunks(chunk) {
            json.write_all(piece).unwrap();
        }
        json.close_with_key("audit", summary).unwrap();
        joined
    }

    #[test]
    fn the_summary_is_the_last_key_of_the_json_report() {
        let summary = Summary::default();
        let whole = json_with_summary(&Report::default(), &summary, usize::MAX);
        let json: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(json["audit"], serde_json::to_value(&summary).unwrap());
        assert_eq!(json["objects"], 0);
        let mut rendered = Vec::new();
        write_report(&Report::default(), Format::Json, "1", &mut rendered).unwrap();
        let report_keys = &rendered[..rendered.len() - JSON_CLOSE.len()];
        assert!(
            whole.starts_with(report_keys),
            "the report's keys come first, unchanged"
        );
        assert!(whole[report_keys.len()..].starts_with(b",\n  \"audit\": {"));
        assert!(whole.ends_with(b"\n}\n"));
        for chunk in [1, 2, 3, 4, 7] {
            assert_eq!(
                json_with_summary(&Report::default(), &summary, chunk),
                whole,
                "written {chunk} bytes at a time"
            );
        }
    }

    #[test]
    fn the_summary_goes_into_text_and_json_reports_only() {
        let summary = Summary::default();
        for format in Format::ALL {
            let mut out = Vec::new();
            write_audit(&Report::default(), &summary, format, &mut out).unwrap();
            let written = String::from_utf8(out).unwrap();
            let has_summary = match format {
                Format::Json => serde_json::from_str::<serde_json::Value>(&written).unwrap()
                    ["audit"]
                    .is_object(),
                _ => written.contains("Audit summary: "),
            };
            assert_eq!(has_summary, summary_fits(format), "{format:?}:\n{written}");
        }
    }

    #[test]
    fn a_document_that_is_not_a_closed_object_gets_no_key() {
        let mut out = Vec::new();
        let mut json = OpenJsonObject::new(&mut out);
        json.write_all(b"[1, 2]\n").unwrap();
        let error = json.close_with_key("audit", &1).unwrap_err();
        assert!(error.to_string().contains("closing brace"), "{error}");
    }
}
