//! `regate serve`: the HTTPS validating and mutating admission webhook.
//!
//! - [`http`]: the routes and the probe and metrics endpoints;
//! - [`extract`]: the checks of an admission request before its review is read (content type, body size
//!   and time, the API server's timeout); [`rejection`]: the one error answer, counted per reason;
//! - [`admit`]: the admission request path: images, bounded evaluation under the deadline, the re-check
//!   of a denial on settled cluster state, metrics, the decision log;
//! - [`conn`]: accepting connections (TLS handshake, plain HTTP on the TLS port answered with a 400),
//!   HTTP/1.1 keep-alive with hyper, and graceful draining;
//! - [`tls`]: rustls (ring) with a hot-swappable serving pair, directory watching, dev certificates;
//! - [`reload`]: policy and cluster-state reloaders, off the request path, and the content fingerprint
//!   of the bundle inputs they poll;
//! - [`metrics`], [`decision_log`], [`clock`].
//!
//! Start a server with [`start`] and a [`ClusterState`]; stop it with [`ServerHandle::shutdown`] (or a
//! signal, in the CLI) and [`ServerHandle::wait`].

pub mod admit;
pub mod audit;
pub mod clock;
pub mod conn;
pub mod decision_log;
pub mod extract;
pub mod http;
pub mod inline;
pub mod metrics;
pub mod rejection;
pub mod reload;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwapOption;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::cluster::state::ClusterState;
use crate::images::config::ImageVerificationConfig;
use crate::images::verify::Verifier;
pub use crate::policy::FailureMode;
use crate::policy::{self, Active, Bundle, BundleSpec, LoadOptions};
pub use decision_log::DecisionLogTarget;
use metrics::Metrics;

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `tls.crt` and `tls.key` in a directory, watched for rotation.
    Dir(PathBuf),
    /// PEM given directly (not watched).
    Pem { cert: Vec<u8>, key: Vec<u8> },
    /// A generated CA and pair (`serve --dev`); the CA is written to `ca_file`.
    Dev {
        ca_file: PathBuf,
        names: Vec<String>,
    },
}

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TLS listener (`0.0.0.0:8443`; port 0 picks a free port, see [`ServerHandle::addr`]).
    pub addr: SocketAddr,
    /// Optional plain-HTTP listener for `/metrics`, `/healthz` and `/readyz`.
    pub metrics_addr: Option<SocketAddr>,
    pub tls: TlsSource,
    /// Verify client certificates against this CA bundle (mTLS with the API server).
    pub client_ca: Option<PathBuf>,
    /// Policies: layering as every command, plus whether tests must pass and empty sets are allowed.
    pub bundle: BundleSpec,
    /// Watch `--policies` directories and `--config` files and reload on change.
    pub watch_policies: bool,
    /// Poll interval of the policy and certificate watchers.
    pub reload_interval: Duration,
    /// Minimum time between two evaluator rebuilds for cluster-state changes.
    pub state_debounce: Duration,
    pub cluster_failure_mode: FailureMode,
    /// A denial by a policy that reads cluster state is confirmed against cluster state holding every
    /// change received up to this long after the request arrived (zero: never). See
    /// `admit::Admission::confirm_denial`.
    pub cluster_settle: Duration,
    /// Evaluations running at once.
    pub max_inflight: usize,
    /// Requests waiting for an evaluation slot at once; more are shed at once.
    pub max_queued: usize,
    /// How long a request may wait for a slot before it is shed.
    pub queue_wait: Duration,
    /// Time slice for evaluating a small review on the worker that received it (zero: always on the
    /// blocking pool); see [`inline`].
    pub inline_slice: Duration,
    /// Kept between the API server's `?timeout=` and the evaluation deadline.
    pub deadline_margin: Duration,
    /// Concurrent connections per listener; more are closed at once.
    pub max_connections: usize,
    pub decision_log: DecisionLogTarget,
    /// After SIGTERM, keep accepting (with readiness false) this long before draining.
    pub shutdown_delay: Duration,
    /// Upper bound on draining in-flight requests.
    pub shutdown_timeout: Duration,
    /// The in-server audit (`--audit-interval`), off when `None`.
    pub audit: Option<audit::AuditLoopOptions>,
}

impl ServeOptions {
    /// Defaults for a server of `bundle` with `tls` on `addr`.
    pub fn new(addr: SocketAddr, tls: TlsSource, load: LoadOptions) -> ServeOptions {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        ServeOptions {
            addr,
            metrics_addr: None,
            tls,
            client_ca: None,
            bundle: BundleSpec {
                load,
                run_tests: true,
                allow_empty: false,
            },
            watch_policies: true,
            reload_interval: Duration::from_secs(1),
            state_debounce: Duration::from_millis(200),
            cluster_failure_mode: FailureMode::Deny,
            cluster_settle: Duration::from_millis(250),
            max_inflight: 2 * cores,
            max_queued: 8 * cores,
            queue_wait: Duration::from_millis(100),
            inline_slice: Duration::from_millis(2),
            deadline_margin: Duration::from_millis(200),
            max_connections: 4096,
            decision_log: DecisionLogTarget::Stdout,
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
            audit: None,
        }
    }
}

/// Resolves once `rx` holds `true` (or its sender is gone). Holds no borrow across awaits.
pub(crate) async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// State shared by handlers and background tasks.
pub struct Shared {
    pub options: ServeOptions,
    pub metrics: Arc<Metrics>,
    pub active: ArcSwapOption<Active>,
    pub cluster: Arc<dyn ClusterState>,
    pub decision_log: decision_log::DecisionLog,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Which reviews are evaluated on the receiving worker.
    pub inline: inline::InlineGate,
    shutting_down: AtomicBool,
    /// Serialises evaluator rebuilds (policy reloads and cluster-state changes).
    rebuild: Mutex<()>,
    /// The image verifier for the bundle's current `imageVerification` settings (rebuilt, with an
    /// empty cache, when a reload changes them).
    verifier: Mutex<Option<(ImageVerificationConfig, Verifier)>>,
}

struct WaitGuard<'a>(&'a AtomicUsize);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// The verifier for `config`, `None` when verification is off, or why it cannot be built (a key
    /// file vanished since the bundle loaded), which denies like a registry error.
    pub fn verifier(&self, config: &ImageVerificationConfig) -> Result<Option<Verifier>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let mut current = self.verifier.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, v)) = current.as_ref() {
            if c == config {
                return Ok(Some(v.clone()));
            }
        }
        let metrics = self.metrics.clone();
        let observer: crate::images::verify::Observer =
            Arc::new(move |event| metrics.observe_image(event));
        let verifier = Verifier::new(config, Some(observer))
            .map_err(|e| format!("image verification is misconfigured: {e}"))?;
        *current = Some((config.clone(), verifier.clone()));
        Ok(Some(verifier))
    }

    /// An evaluation slot, or why none is available (shed with 503).
    pub async fn acquire_slot(&self) -> Result<OwnedSemaphorePermit, String> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = WaitGuard(&self.waiting);
        if waiting > self.options.max_queued {
            return Err(format!(
                "overloaded: {} evaluations running and {} requests waiting; retry later",
                self.options.max_inflight,
                waiting - 1
            ));
        }
        match tokio::time::timeout(self.options.queue_wait, self.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(format!(
                "overloaded: no evaluation slot free within {} ms ({} evaluations running); retry later",
                self.options.queue_wait.as_millis(),
                self.options.max_inflight
            )),
        }
    }

    /// Why cluster state cannot be used for this request, if it cannot.
    pub fn unavailable_reason(&self, active: &Active) -> Option<String> {
        match self.cluster.snapshot() {
            Err(err) => Some(err.to_string()),
            Ok(_) if active.generation.is_none() => {
                Some("synced but not yet loaded into the evaluator".to_string())
            }
            Ok(_) => None,
        }
    }

    /// Why `/readyz` is not 200 (empty when ready).
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.shutting_down.load(Ordering::SeqCst) {
            reasons.push("shutting down".to_string());
        }
        match self.active.load_full() {
            None => reasons.push("policies not loaded".to_string()),
            Some(active) => {
                if let Some(r) = self.unavailable_reason(&active) {
                    reasons.push(format!("cluster state: {r}"));
                }
            }
        }
        self.metrics.ready.set(i64::from(reasons.is_empty()));
        reasons
    }

    /// Updates the gauges read at scrape time.
    pub fn refresh_gauges(&self) {
        let _ = self.not_ready_reasons();
        let synced = match self.active.load_full() {
            Some(active) => self.unavailable_reason(&active).is_none(),
            None => false,
        };
        self.metrics.cluster_synced.set(i64::from(synced));
        self.metrics
            .replaced
            .set_cluster_objects(self.cluster.object_counts());
    }

    /// Binds `bundle` to the current cluster state and swaps it in (blocking: call off the runtime).
    pub fn install_bundle(&self, bundle: Arc<Bundle>) -> anyhow::Result<()> {
        let _lock = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        // While cluster state is unavailable, keep the state the current evaluator was built with.
        let snapshot = self.cluster.snapshot().ok().or_else(|| {
            let current = self.active.load_full()?;
            Some(crate::cluster::state::StateSnapshot {
                generation: current.generation?,
                inventory: current.inventory.clone(),
            })
        });
        let active = Active::build(bundle.clone(), snapshot.as_ref())?;
        self.publish(active);
        Ok(())
    }

    /// Rebuilds the evaluators for a new cluster-state generation, if it is new (blocking).
    pub fn refresh_state(&self) -> anyhow::Result<bool> {
        let _lock = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(snapshot) = self.cluster.snapshot() else {
            return Ok(false);
        };
        let Some(current) = self.active.load_full() else {
            return Ok(false);
        };
        if current.generation == Some(snapshot.generation) {
            return Ok(false);
        }
        let active = Active::build(current.bundle.clone(), Some(&snapshot))?;
        self.publish(active);
        Ok(true)
    }

    fn publish(&self, active: Active) {
        let set = &active.bundle.set;
        self.metrics.replaced.set_bundle_digest(&set.digest);
        self.metrics.bundle_policies.set(set.policies.len() as i64);
        if let Some(g) = active.generation {
            self.metrics.cluster_generation.set(g as i64);
        }
        self.active.store(Some(Arc::new(active)));
    }

    /// True once SIGTERM (or [`ServerHandle::shutdown`]) was received.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    begin: watch::Sender<bool>,
    done: JoinHandle<()>,
    ca_file: Option<PathBuf>,
}

impl ServerHandle {
    /// The TLS listener's address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plain metrics listener's address, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The development CA file (`serve --dev`).
    pub fn ca_file(&self) -> Option<&PathBuf> {
        self.ca_file.as_ref()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Starts a graceful shutdown: readiness false, then (after the shutdown delay) stop accepting,
    /// finish in-flight requests, close keep-alive connections.
    pub fn shutdown(&self) {
        let _ = self.begin.send(true);
    }

    /// Waits until the server has drained and stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("server task failed")?;
        Ok(())
    }
}

/// Loads certificates and policies, binds the listeners and starts serving. Returns once the server
/// accepts connections (policies compiled and tested, certificates loaded); readiness additionally
/// waits for cluster state.
pub async fn start(
    options: ServeOptions,
    cluster: Arc<dyn ClusterState>,
) -> anyhow::Result<ServerHandle> {
    let metrics = Arc::new(Metrics::default());

    // Certificates.
    let mut ca_file = None;
    let (pair, watched) = match &options.tls {
        TlsSource::Dir(dir) => {
            let (cert, key) = tls::read_dir_pair(dir)?;
            let pair = tls::parse_pair(&cert, &key)
                .with_context(|| format!("serving certificate in {}", dir.display()))?;
            (pair, Some((dir.clone(), (cert, key))))
        }
        TlsSource::Pem { cert, key } => (tls::parse_pair(cert, key)?, None),
        TlsSource::Dev {
            ca_file: path,
            names,
        } => {
            let dev = tls::generate_dev(names)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(path, &dev.ca_pem)
                .with_context(|| format!("writing the development CA to {}", path.display()))?;
            ca_file = Some(path.clone());
            (
                tls::parse_pair(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes())?,
                None,
            )
        }
    };
    tls::record_pair(&metrics, &pair);
    let resolver = Arc::new(tls::CertResolver::new(pair));
    let tls_config = tls::server_config(resolver.clone(), options.client_ca.as_deref())?;

    // Policies: compiled and tested before anything is served.
    let fingerprint = {
        let load = options.bundle.load.clone();
        tokio::task::spawn_blocking(move || reload::fingerprint(&load)).await?
    };
    let decision_log = decision_log::DecisionLog::start(&options.decision_log, metrics.clone())?;
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(options.max_inflight.max(1))),
        waiting: AtomicUsize::new(0),
        inline: inline::InlineGate::new(options.inline_slice),
        shutting_down: AtomicBool::new(false),
        rebuild: Mutex::new(()),
        verifier: Mutex::new(None),
        active: ArcSwapOption::empty(),
        metrics: metrics.clone(),
        cluster,
        decision_log,
        options,
    });
    let bundle = {
        let s = shared.clone();
        // The bundle's tests run on a pool of their own that ends with them (rayon's global pool
        // would keep its threads, and their memory, for the life of the server).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Built and installed on one thread, as a reload is: mimalloc collects per thread, and when
        // the build ran on another blocking thread than the collection, 2.1 MiB of what it freed
        // stayed resident in an idle `serve --dev` (measured as in docs/benchmarks.md, "Idle memory").
        tokio::task::spawn_blocking(move || {
            let attempt = (|| {
                let bundle = Arc::new(
                    policy::build_bundle(&s.options.bundle, Some(threads))
                        .map_err(|e| anyhow::anyhow!("the policy bundle is not usable:\n{e}"))?,
                );
                s.install_bundle(bundle.clone())?;
                Ok::<_, anyhow::Error>(bundle)
            })();
            // Compiling, testing and binding allocated and freed a lot; give it back once.
            crate::memory::release_freed_heap();
            attempt
        })
        .await??
    };
    log_bundle(&bundle, "policy bundle loaded");

    // Listeners.
    let listener = TcpListener::bind(shared.options.addr)
        .await
        .with_context(|| format!("binding {}", shared.options.addr))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match shared.options.metrics_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the metrics address {a}"))?,
        ),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };

    // Background tasks.
    let (begin_tx, begin_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(false);
    let mut background = Vec::new();
    if let Some((dir, initial)) = watched {
        background.push(tokio::spawn(tls::watch_dir(
            dir,
            resolver.clone(),
            metrics.clone(),
            shared.options.reload_interval,
            initial,
            close_rx.clone(),
        )));
    }
    let load = &shared.options.bundle.load;
    if shared.options.watch_policies
        && (!load.policy_dirs.is_empty() || !load.config_files.is_empty())
    {
        background.push(tokio::spawn(reload::watch_policies(
            shared.clone(),
            fingerprint,
            close_rx.clone(),
        )));
    }
    background.push(tokio::spawn(reload::watch_state(
        shared.clone(),
        close_rx.clone(),
    )));
    // Awaited at shutdown (not aborted): it releases the audit Lease so another replica takes over.
    let audit_task = shared
        .options
        .audit
        .clone()
        .map(|options| tokio::spawn(audit::run(shared.clone(), options, close_rx.clone())));

    // Accept loops.
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut loops = vec![tokio::spawn(conn::accept_loop(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(tls_config)),
        http::router(shared.clone(), true),
        shared.clone(),
        close_rx.clone(),
        conn_tx.clone(),
    ))];
    if let Some(l) = metrics_listener {
        loops.push(tokio::spawn(conn::accept_loop(
            l,
            None,
            http::router(shared.clone(), false),
            shared.clone(),
            close_rx.clone(),
            conn_tx.clone(),
        )));
    }
    drop(conn_tx);

    tracing::info!(
        %addr,
        metrics_addr = metrics_addr.map(|a| a.to_string()).unwrap_or_default(),
        cluster_state = shared.cluster.describe(),
        max_inflight = shared.options.max_inflight,
        "regate serve listening"
    );

    let done = tokio::spawn(coordinate(
        shared.clone(),
        begin_rx,
        close_tx,
        loops,
        conn_rx,
        background,
        audit_task,
    ));
    Ok(ServerHandle {
        addr,
        metrics_addr,
        shared,
        begin: begin_tx,
        done,
        ca_file,
    })
}

/// Waits for the shutdown signal, then drains: readiness false, the shutdown delay, stop accepting,
/// graceful close of every connection (bounded by the shutdown timeout), decision log flushed.
async fn coordinate(
    shared: Arc<Shared>,
    mut begin: watch::Receiver<bool>,
    close: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    mut conns: tokio::sync::mpsc::Receiver<()>,
    background: Vec<JoinHandle<()>>,
    audit_task: Option<JoinHandle<()>>,
) {
    signalled(&mut begin).await;
    shared.shutting_down.store(true, Ordering::SeqCst);
    shared.metrics.ready.set(0);
    tracing::info!(
        delay_ms = shared.options.shutdown_delay.as_millis() as u64,
        "shutting down: readiness is false"
    );
    tokio::time::sleep(shared.options.shutdown_delay).await;
    let _ = close.send(true);
    for l in loops {
        let _ = l.await;
    }
    tracing::info!("listeners closed; draining connections");
    let drained = tokio::time::timeout(shared.options.shutdown_timeout, async {
        while conns.recv().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown timeout reached with connections still open");
    }
    for b in background {
        b.abort();
    }
    if let Some(task) = audit_task {
        // The task saw `close` and is releasing the Lease (bounded inside by 5 s).
        if tokio::time::timeout(Duration::from_secs(6), task)
            .await
            .is_err()
        {
            tracing::warn!("the audit did not stop in time");
        }
    }
    shared.decision_log.close();
    tracing::info!("stopped");
}

/// Logs a bundle that was just installed: its notes (what loading left out) as warnings, then `what`
/// with its digest, policy count and tests.
fn log_bundle(bundle: &Bundle, what: &str) {
    for note in &bundle.set.notes {
        tracing::warn!(note = %note, "policy bundle note");
    }
    tracing::info!(
        digest = %bundle.set.digest,
        policies = bundle.set.policies.len(),
        tests_passed = bundle.tests_passed,
        "{what}"
    );
}
