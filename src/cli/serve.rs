//! `regate serve`: runs the HTTPS admission webhook ([`crate::server`]) until SIGTERM or SIGINT, then
//! drains and exits 0. Argument handling, logging setup, the tokio runtime and the cluster-state
//! source choice live here; everything else is in the server module.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::PolicyArgs;
use crate::audit::reports::{ReportApi, ReportOptions, ResultFilter};
use crate::audit::run::AuditSpec;
use crate::audit::scan::Keep;
use crate::cluster::kube_source::{KubeSource, KubeSourceOptions};
use crate::cluster::state::{ClusterState, StaticState};
use crate::cluster::Inventory;
use crate::duration::parse_flag;
use crate::server::audit::{default_identity, default_lease_namespace, AuditLoopOptions};
use crate::server::{self, DecisionLogTarget, FailureMode, ServeOptions, TlsSource};

/// What a policy needing cluster state yields when cluster state is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailureModeArg {
    /// Deny (fail closed).
    Deny,
    /// Admit with a warning.
    Allow,
}

/// Where cluster state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterSourceArg {
    /// The API server, through kube reflectors (in-cluster service account or kubeconfig).
    Kube,
    /// A fixed inventory: empty, or `--inventory` manifests; always synced.
    Static,
}

/// Which reports the in-server audit writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditReportsArg {
    /// `openreports.io/v1alpha1` Report and ClusterReport.
    Openreports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    Wgpolicyk8s,
    /// No reports: metrics and logs only.
    Off,
}

/// Arguments of the in-server audit.
#[derive(Debug, Args)]
#[command(next_help_heading = "Background audit")]
pub struct AuditServeArgs {
    /// Audit the objects stored in the cluster every DURATION on one replica (a Lease elects it) and
    /// write policy reports; needs --cluster-state kube. Off by default. See docs/audit.md.
    #[arg(long, value_name = "DURATION", value_parser = parse_flag)]
    pub audit_interval: Option<Duration>,
    /// Objects per list request of the audit.
    #[arg(long, default_value_t = 500, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_page_size: u32,
    /// Requests per second the audit sends to the API server (0: no limit).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub audit_api_qps: u32,
    /// Reports the audit writes.
    #[arg(long, value_enum, default_value = "openreports", value_name = "API")]
    pub audit_reports: AuditReportsArg,
    /// Results stored in reports, comma-separated (pass, fail, warn, error, skip); default: all.
    #[arg(long, value_name = "RESULTS")]
    pub audit_report_results: Option<ResultFilter>,
    /// Name of the Lease electing the auditing replica.
    #[arg(long, default_value = "regate-audit", value_name = "NAME")]
    pub audit_lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, the service account's namespace, or default).
    #[arg(long, value_name = "NS")]
    pub audit_lease_namespace: Option<String>,
    /// How long a replica that stopped renewing keeps the lease (another takes over after it).
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_flag)]
    pub audit_lease_duration: Duration,
}

impl AuditServeArgs {
    /// The in-server audit asked for, `None` when off.
    fn options(&self) -> Option<AuditLoopOptions> {
        let interval = self.audit_interval.filter(|i| !i.is_zero())?;
        let api = match self.audit_reports {
            AuditReportsArg::Openreports => Some(ReportApi::OpenReports),
            AuditReportsArg::Wgpolicyk8s => Some(ReportApi::WgPolicy),
            AuditReportsArg::Off => None,
        };
        Some(AuditLoopOptions {
            interval,
            spec: AuditSpec {
                page_size: self.audit_page_size,
                namespaces: Vec::new(),
                qps: self.audit_api_qps,
                reports: api.map(|api| ReportOptions {
                    api,
                    filter: self.audit_report_results.clone().unwrap_or_default(),
                }),
                keep: Keep::default(),
                stop: None,
            },
            lease_name: self.audit_lease_name.clone(),
            lease_namespace: self
                .audit_lease_namespace
                .clone()
                .unwrap_or_else(default_lease_namespace),
            identity: default_identity(),
            lease_duration: self.audit_lease_duration,
        })
    }
}

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Arguments of `regate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTPS listen address (port 0 picks a free port; the bound address is logged as `addr=`).
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Plain-HTTP listener for /metrics, /healthz and /readyz (they are served on the HTTPS port too).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Development mode: a self-signed CA and serving certificate generated at start, the CA written to
    /// --dev-ca-file (printed), static empty cluster state.
    #[arg(long)]
    pub dev: bool,
    /// Where --dev writes its CA certificate.
    #[arg(long, value_name = "FILE")]
    pub dev_ca_file: Option<PathBuf>,
    /// Extra DNS names or IPs for the --dev certificate (localhost, 127.0.0.1 and ::1 are always in).
    #[arg(long = "dev-san", value_name = "NAME")]
    pub dev_san: Vec<String>,
    /// Directory with tls.crt and tls.key (a mounted kubernetes.io/tls Secret), watched for rotation.
    #[arg(long, value_name = "DIR", required_unless_present = "dev")]
    pub tls_dir: Option<PathBuf>,
    /// Require client certificates signed by this CA bundle (mTLS with the API server).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Do not watch --policies and --config for changes.
    #[arg(long)]
    pub no_watch: bool,
    /// Poll interval of the policy and certificate watchers.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_flag)]
    pub reload_interval: Duration,
    /// Accept bundles whose Rego tests fail (at start and on reload).
    #[arg(long)]
    pub skip_bundle_tests: bool,
    /// Accept a bundle without policies (benchmarks of the bare server).
    #[arg(long)]
    pub allow_empty: bool,
    /// Where cluster state comes from (default: kube; static with --dev).
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub cluster_state: Option<ClusterSourceArg>,
    /// Manifests making up a static cluster state (`kubectl get ns,netpol,ingress -A -o yaml`).
    #[arg(long, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    /// Result of a policy needing cluster state when cluster state is unavailable.
    #[arg(long, value_enum, default_value = "deny", value_name = "MODE")]
    pub cluster_failure_mode: FailureModeArg,
    /// How long the API server may be unreachable before cluster lookups fail.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_flag)]
    pub cluster_stale_after: Duration,
    /// How often the API groups of optional kinds (Cilium, Gateway API CRDs) are discovered again, so a
    /// CRD installed while regate runs is watched.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_flag)]
    pub cluster_rediscover_interval: Duration,
    /// A denial by a policy that reads cluster state is evaluated again once regate holds every change it
    /// received up to this long after the request arrived (the watch lags the API server: `kubectl apply`
    /// of a NetworkPolicy and a Deployment sends the second a few milliseconds after the first). `0`: never;
    /// with `--cluster-state static` (and `--dev`) there is nothing to wait for, so never either.
    #[arg(long, default_value = "250ms", value_name = "DURATION", value_parser = parse_flag)]
    pub cluster_settle: Duration,
    /// Evaluations running at once (default: 2 × cores).
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,
    /// Requests waiting for an evaluation slot at once (default: 4 × --max-inflight); more are shed.
    #[arg(long, value_name = "N")]
    pub max_queued: Option<usize>,
    /// How long a request may wait for an evaluation slot before a 503.
    #[arg(long, default_value = "100ms", value_name = "DURATION", value_parser = parse_flag)]
    pub queue_wait: Duration,
    /// Time slice for evaluating a small review (up to 64 KiB) on the thread that received it; one
    /// that needs longer is evaluated again on the blocking pool. `0` always uses the blocking pool.
    #[arg(long, default_value = "2ms", value_name = "DURATION", value_parser = parse_flag)]
    pub inline_slice: Duration,
    /// Kept between the API server's ?timeout= and the evaluation deadline.
    #[arg(long, default_value = "200ms", value_name = "DURATION", value_parser = parse_flag)]
    pub deadline_margin: Duration,
    /// Concurrent connections per listener.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub max_connections: usize,
    /// Decision log: `-` for stdout, `off`, or a file to append to.
    #[arg(long, default_value = "-", value_name = "FILE")]
    pub decision_log: String,
    /// After SIGTERM, keep serving with readiness false this long before draining.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_flag)]
    pub shutdown_delay: Duration,
    /// Upper bound on draining in-flight requests at shutdown.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_flag)]
    pub shutdown_timeout: Duration,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, default_value = "info", value_name = "FILTER")]
    pub log_level: String,
    #[command(flatten)]
    pub audit: AuditServeArgs,
}

fn init_logging(args: &ServeArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&args.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn default_dev_ca_file() -> PathBuf {
    std::env::temp_dir().join("regate-dev").join("ca.crt")
}

/// Builds the server options from the arguments.
pub fn options(args: &ServeArgs) -> anyhow::Result<ServeOptions> {
    let tls = match (&args.tls_dir, args.dev) {
        (Some(dir), _) => TlsSource::Dir(dir.clone()),
        (None, true) => {
            let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            for n in &args.dev_san {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            TlsSource::Dev {
                ca_file: args.dev_ca_file.clone().unwrap_or_else(default_dev_ca_file),
                names,
            }
        }
        (None, false) => {
            anyhow::bail!("--tls-dir is required (or --dev for a generated certificate)")
        }
    };
    let mut o = ServeOptions::new(args.addr, tls, args.policy.load_options());
    o.metrics_addr = args.metrics_addr;
    o.client_ca = args.client_ca.clone();
    o.bundle.run_tests = !args.skip_bundle_tests;
    o.bundle.allow_empty = args.allow_empty;
    o.watch_policies = !args.no_watch;
    o.reload_interval = args.reload_interval;
    o.cluster_failure_mode = match args.cluster_failure_mode {
        FailureModeArg::Deny => FailureMode::Deny,
        FailureModeArg::Allow => FailureMode::Allow,
    };
    if let Some(n) = args.max_inflight {
        anyhow::ensure!(n > 0, "--max-inflight must be at least 1");
        o.max_inflight = n;
        o.max_queued = 4 * n;
    }
    if let Some(n) = args.max_queued {
        o.max_queued = n;
    }
    // Static state never changes: waiting to confirm a denial could only delay the same answer.
    o.cluster_settle = match cluster_source(args) {
        ClusterSourceArg::Static => Duration::ZERO,
        ClusterSourceArg::Kube => args.cluster_settle,
    };
    o.queue_wait = args.queue_wait;
    o.inline_slice = args.inline_slice;
    o.deadline_margin = args.deadline_margin;
    o.max_connections = args.max_connections.max(1);
    o.decision_log = match args.decision_log.as_str() {
        "-" => DecisionLogTarget::Stdout,
        "off" => DecisionLogTarget::Off,
        path => DecisionLogTarget::File(PathBuf::from(path)),
    };
    o.shutdown_delay = args.shutdown_delay;
    o.shutdown_timeout = args.shutdown_timeout;
    o.audit = args.audit.options();
    anyhow::ensure!(
        o.audit.is_none() || cluster_source(args) == ClusterSourceArg::Kube,
        "--audit-interval needs --cluster-state kube (the audit lists the cluster's objects)"
    );
    Ok(o)
}

/// Where cluster state comes from: `--cluster-state`, by default the API server (static with `--dev`).
fn cluster_source(args: &ServeArgs) -> ClusterSourceArg {
    args.cluster_state.unwrap_or(if args.dev {
        ClusterSourceArg::Static
    } else {
        ClusterSourceArg::Kube
    })
}

async fn cluster_state(args: &ServeArgs) -> anyhow::Result<Arc<dyn ClusterState>> {
    match cluster_source(args) {
        ClusterSourceArg::Static => {
            let mut inventory = Inventory::new();
            inventory.add_manifest_files(&args.inventory, "default")?;
            Ok(Arc::new(StaticState::new(inventory.to_json())))
        }
        ClusterSourceArg::Kube => {
            anyhow::ensure!(
                args.inventory.is_empty(),
                "--inventory needs --cluster-state static"
            );
            let source = KubeSource::start_default(KubeSourceOptions {
                stale_after: args.cluster_stale_after,
                rediscover_interval: args.cluster_rediscover_interval.max(Duration::from_secs(1)),
                ..KubeSourceOptions::default()
            })
            .await?;
            Ok(source)
        }
    }
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// Runs `regate serve`; returns 0 after a graceful shutdown.
pub fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    init_logging(args);
    let options = options(args)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .max_blocking_threads(options.max_inflight + 16)
        .thread_name("regate")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Check the serving pair before connecting to a cluster, so a bad mount is the error reported.
    if let TlsSource::Dir(dir) = &options.tls {
        let (cert, key) = crate::server::tls::read_dir_pair(dir)?;
        crate::server::tls::parse_pair(&cert, &key)
            .with_context(|| format!("serving certificate in {}", dir.display()))?;
    }
    let result = runtime.block_on(async {
        let cluster = cluster_state(args).await?;
        let handle = server::start(options, cluster).await?;
        if let Some(ca) = handle.ca_file() {
            tracing::info!(ca_file = %ca.display(), "development CA written (trust it to call the webhook)");
            if args.log_format == LogFormat::Text {
                eprintln!("regate: development CA certificate: {}", ca.display());
            }
        }
        let signal = wait_for_signal().await;
        tracing::info!(signal, "signal received");
        handle.shutdown();
        handle.wait().await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.map(|()| 0)
}
