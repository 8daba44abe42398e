//! The in-server audit (`regate serve --audit-interval`): every interval, the replica holding the audit
//! Lease (`coordination.k8s.io`, through `kube-lease-manager`) runs the same audit as `regate audit`
//! ([`crate::audit::run::audit`]) with the bundle and cluster state the webhook decides with, writes
//! the policy reports and publishes the audit metrics. The other replicas only wait for the lease.
//!
//! Off the admission path: the audit runs on a thread of its own, at the lowest CPU priority (nice 19)
//! and with a time slice that lets a review preempt it at once, with its own evaluator, Kubernetes
//! client and a one-thread evaluation pool, so a review never waits behind it; its requests to the API
//! server are paced (`--audit-api-qps`); it keeps no findings, only counts. Losing the lease stops a
//! running audit at the next page; at shutdown the lease is released, so another replica takes over at
//! once instead of after the lease expires.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::sync::{oneshot, watch};

use super::metrics::{AuditMetrics, AuditViolationLabels, ResultLabel};
use super::{signalled, Shared};
use crate::audit::run::{audit, AuditOutcome, AuditSpec};
use crate::policy::Evaluator;

/// How the in-server audit runs.
#[derive(Debug, Clone)]
pub struct AuditLoopOptions {
    /// Time from the end of one audit to the start of the next.
    pub interval: Duration,
    pub spec: AuditSpec,
    /// The Lease electing the auditing replica.
    pub lease_name: String,
    pub lease_namespace: String,
    /// This replica's name in the Lease (`holderIdentity`).
    pub identity: String,
    /// How long a lease holder that stopped renewing keeps it.
    pub lease_duration: Duration,
}

/// This replica's lease identity: `POD_NAME` when set (the chart sets it), else host name and process
/// id (two replicas on one host stay apart).
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "regate".to_string());
    format!("{host}-{}", std::process::id())
}

/// The namespace of the audit Lease by default: `POD_NAMESPACE`, the service account's namespace, or
/// `default`.
pub fn default_lease_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|ns| ns.trim().to_string())
        })
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// The audit thread's time slice: the longest Linux grants a normal thread (`sched_attr.sched_runtime`,
/// clamped by the kernel to 0.1-100 ms). A long slice makes the audit the thread every other one may
/// preempt: see [`lower_thread_priority`].
#[cfg(target_os = "linux")]
const AUDIT_SLICE_NS: u64 = 100_000_000;

/// Lowers the calling thread's CPU priority to the lowest nice level (19) and, on kernels with EEVDF
/// custom slices (Linux 6.12 and later), gives it the longest time slice (100 ms); Linux applies both
/// per thread. The nice level keeps the audit to a small share of a busy core. The slice decides how
/// soon a review woken on the audit's core runs: the scheduler lets a running thread finish a protected
/// part of its slice before a woken thread of the same slice or longer preempts it, which delayed
/// reviews behind the audit by up to the default slice (1.4 ms on two CPUs) or, with a short audit
/// slice, until the next scheduler tick; a woken thread whose slice is shorter than the running one's
/// cancels that protection (`PREEMPT_SHORT`), and every thread of the default slice is shorter than
/// 100 ms. So the review preempts the audit at once, and where no thread wants the core the audit's
/// long slice costs nothing. Older kernels ignore the slice and keep the nice level; where
/// `sched_setattr` is refused, `setpriority` still lowers the nice level.
/// Not `SCHED_IDLE`: reviews preempt it as readily (measured: docs/benchmarks.md, "Audit"), but on a
/// busy core it gets a fifth of nice 19's share (weight 3 against 15), so the audit of a loaded
/// replica would take five times as long.
#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: 19,
        sched_priority: 0,
        sched_runtime: AUDIT_SLICE_NS,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: pid 0 is the calling thread; the kernel reads `attr.size` bytes of a live `sched_attr`.
    let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) };
    if set == 0 {
        return;
    }
    let refused = std::io::Error::last_os_error();
    // SAFETY: gettid has no preconditions; setpriority only reads its arguments.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19)
    };
    if result != 0 {
        tracing::debug!(
            sched_setattr = %refused,
            error = %std::io::Error::last_os_error(),
            "audit thread keeps its CPU priority"
        );
    }
}

/// Elsewhere a priority would apply to the whole process: the audit thread keeps the default.
#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

/// Runs one audit with the server's current bundle and cluster state on a low-priority thread of its
/// own, stopping at the next page once `stop` is set.
async fn audit_once(
    shared: &Arc<Shared>,
    spec: &AuditSpec,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<AuditOutcome> {
    let active = shared
        .active
        .load_full()
        .ok_or_else(|| anyhow::anyhow!("no policy bundle is loaded"))?;
    anyhow::ensure!(
        active.generation.is_some(),
        "cluster state is not synced yet"
    );
    let mut spec = spec.clone();
    spec.stop = Some(stop);
    let (tx, rx) = oneshot::channel();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "regate-audit".to_string())
        .start_handler(|_| lower_thread_priority())
        .build()?;
    pool.spawn(move || {
        let result = (|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // An evaluator of its own, bound to the same bundle and cluster state: reviews never wait
            // for an evaluation slot or engine the audit holds.
            let set = &active.bundle.set;
            let evaluator = Evaluator::new(set.clone(), (*active.inventory).clone())?;
            runtime.block_on(async {
                let client = Client::try_default().await?;
                audit(&client, set, &evaluator, &active.inventory, &spec).await
            })
        })();
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| anyhow::anyhow!("the audit thread ended without a result"))?
}

/// Publishes what one audit found.
fn record(metrics: &AuditMetrics, result: &anyhow::Result<AuditOutcome>) {
    let Ok(outcome) = result else {
        metrics
            .runs
            .get_or_create(&ResultLabel { result: "failure" })
            .inc();
        return;
    };
    let result = if outcome.complete {
        "success"
    } else {
        "failure"
    };
    metrics.runs.get_or_create(&ResultLabel { result }).inc();
    metrics.duration.set(outcome.duration.as_secs_f64());
    metrics.objects.set(outcome.objects() as i64);
    metrics.violations.clear();
    for ((policy, namespace), n) in &outcome.summary.violations {
        let labels = AuditViolationLabels {
            policy: policy.clone(),
            namespace: namespace.clone(),
        };
        metrics.violations.get_or_create(&labels).set(*n as i64);
    }
    if outcome.complete {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        metrics.last_success.set(now.as_secs() as i64);
    }
}

/// Logs what one audit found and did.
fn log(result: &anyhow::Result<AuditOutcome>) {
    match result {
        Ok(outcome) => {
            let reports = outcome
                .reports
                .as_ref()
                .map(|(s, _)| *s)
                .unwrap_or_default();
            if let Some((_, errors)) = &outcome.reports {
                for error in errors {
                    tracing::warn!(error = %error, "audit report not written");
                }
            }
            for error in &outcome.report.errors {
                tracing::warn!(location = %error.location.file, error = %error.message, "audit incomplete");
            }
            tracing::info!(
                objects = outcome.objects(),
                findings = outcome.summary.violations.values().sum::<usize>(),
                complete = outcome.complete,
                duration_ms = outcome.duration.as_millis() as u64,
                reports_written = reports.written,
                reports_unchanged = reports.unchanged,
                reports_deleted = reports.deleted,
                reports_failed = reports.failed,
                "audit finished"
            );
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "audit failed"),
    }
}

/// Resolves when this replica stops holding the lease (or the lease task ended).
async fn lost(leader: &mut watch::Receiver<bool>) {
    let _ = leader.wait_for(|held| !*held).await;
}

/// The in-server audit: elects a leader through the Lease, audits every interval while leading, and
/// releases the lease when the server closes (`close`).
pub async fn run(shared: Arc<Shared>, options: AuditLoopOptions, mut close: watch::Receiver<bool>) {
    let metrics = &shared.metrics.audit;
    let manager = loop {
        let built = async {
            let client = Client::try_default().await?;
            let seconds = options.lease_duration.as_secs().max(2);
            let params = LeaseParams::new(&options.identity, seconds, (seconds / 3).max(1));
            Ok::<_, anyhow::Error>(
                LeaseManagerBuilder::new(client, &options.lease_name)
                    .with_namespace(&options.lease_namespace)
                    .with_parameters(params)
                    .build()
                    .await?,
            )
        };
        tokio::select! {
            _ = signalled(&mut close) => return,
            result = built => match result {
                Ok(manager) => break manager,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), lease = %options.lease_name, "audit lease unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    };
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(identity = %options.identity, lease = %options.lease_name,
                   namespace = %options.lease_namespace, "audit: waiting for the lease");
    'serving: loop {
        tokio::select! {
            _ = signalled(&mut close) => break 'serving,
            held = leader.wait_for(|held| *held) => if held.is_err() { break 'serving },
        }
        metrics.leader.set(1);
        tracing::info!(identity = %options.identity, "audit: lease acquired; this replica audits");
        while *leader.borrow() {
            let stop = Arc::new(AtomicBool::new(false));
            let result = tokio::select! {
                result = audit_once(&shared, &options.spec, stop.clone()) => result,
                _ = lost(&mut leader) => {
                    stop.store(true, Ordering::SeqCst);
                    tracing::info!("audit: lease lost; the running audit stops");
                    break;
                }
                _ = signalled(&mut close) => {
                    stop.store(true, Ordering::SeqCst);
                    break 'serving;
                }
            };
            log(&result);
            record(metrics, &result);
            tokio::select! {
                _ = tokio::time::sleep(options.interval) => {}
                _ = lost(&mut leader) => {}
                _ = signalled(&mut close) => break 'serving,
            }
        }
        // The new leader publishes the counts from now on; stale ones here would be counted twice.
        metrics.leader.set(0);
        metrics.violations.clear();
        tracing::info!("audit: lease lost; waiting for it");
    }
    metrics.leader.set(0);
    // Closing the channel makes the lease task release the lease before it ends.
    drop(leader);
    match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
        Ok(Ok(Ok(_))) => tracing::info!("audit: lease released"),
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "audit: releasing the lease failed"),
        _ => tracing::warn!("audit: the lease was not released in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::summary::Summary;
    use crate::report::model::Report;

    /// The kernel's release as (major, minor), e.g. (6, 18) for `6.18.44-fc`.
    #[cfg(target_os = "linux")]
    fn kernel_release() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
    }

    /// The calling thread's nice level and time slice (ns) as `sched_getattr` reports them; the slice
    /// is the kernel's (default or custom) on Linux 6.12 and later, 0 before.
    #[cfg(target_os = "linux")]
    fn nice_and_slice() -> (i32, u64) {
        // SAFETY: all-zero is a valid `sched_attr` (plain integers).
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::sched_attr>() as libc::c_uint;
        // SAFETY: pid 0 is the calling thread; the kernel writes at most `size` bytes into `attr`.
        let result = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
        assert_eq!(
            result,
            0,
            "sched_getattr: {}",
            std::io::Error::last_os_error()
        );
        (attr.sched_nice, attr.sched_runtime)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_audit_thread_runs_at_nice_19_with_the_longest_slice_the_kernel_grants() {
        let caller = nice_and_slice();
        let (nice, slice) = std::thread::spawn(|| {
            lower_thread_priority();
            nice_and_slice()
        })
        .join()
        .unwrap();
        assert_eq!(
            nice_and_slice(),
            caller,
            "only the audit thread is changed, not the thread that started it"
        );
        assert_eq!(nice, 19);
        if kernel_release() >= (6, 12) {
            assert_eq!(
                slice, AUDIT_SLICE_NS,
                "custom slices are honoured since Linux 6.12"
            );
        }
    }

    fn outcome(complete: bool, violations: &[(&str, &str, usize)]) -> AuditOutcome {
        let mut summary = Summary::default();
        for (policy, namespace, n) in violations {
            summary
                .violations
                .insert((policy.to_string(), namespace.to_string()), *n);
        }
        AuditOutcome {
            report: Report::default(),
            summary,
            skipped_policies: Default::default(),
            kinds: Vec::new(),
            reports: None,
            complete,
            duration: Duration::from_millis(1500),
        }
    }

    /// The sorted sample lines of `metrics` starting with `name`.
    fn series(metrics: &super::super::metrics::Metrics, name: &str) -> Vec<String> {
        let mut lines: Vec<String> = metrics
            .render()
            .lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn each_audit_replaces_the_published_counts() {
        let metrics = super::super::metrics::Metrics::default();
        record(
            &metrics.audit,
            &Ok(outcome(
                true,
                &[("pod-security", "shop", 3), ("hygiene", "", 1)],
            )),
        );
        assert_eq!(
            series(&metrics, "regate_audit_violations{"),
            [
                r#"regate_audit_violations{policy="hygiene",namespace=""} 1"#,
                r#"regate_audit_violations{policy="pod-security",namespace="shop"} 3"#,
            ]
        );
        assert_eq!(
            series(&metrics, "regate_audit_duration_seconds "),
            ["regate_audit_duration_seconds 1.5"]
        );
        assert!(metrics.audit.last_success.get() > 0);
        // A later audit finds the hygiene violation fixed: its series goes.
        record(
            &metrics.audit,
            &Ok(outcome(true, &[("pod-security", "shop", 2)])),
        );
        assert_eq!(
            series(&metrics, "regate_audit_violations{"),
            [r#"regate_audit_violations{policy="pod-security",namespace="shop"} 2"#]
        );
        // An incomplete audit and one that could not run count as failures; the last success stays.
        metrics.audit.last_success.set(7);
        record(&metrics.audit, &Ok(outcome(false, &[])));
        record(&metrics.audit, &Err(anyhow::anyhow!("no cluster state")));
        assert_eq!(metrics.audit.last_success.get(), 7);
        assert_eq!(
            series(&metrics, "regate_audit_runs_total{"),
            [
                r#"regate_audit_runs_total{result="failure"} 2"#,
                r#"regate_audit_runs_total{result="success"} 2"#,
            ]
        );
    }

    #[test]
    fn the_identity_is_the_pod_name_or_host_and_process() {
        let identity = default_identity();
        match std::env::var("POD_NAME") {
            Ok(pod) if !pod.is_empty() => assert_eq!(identity, pod),
            _ => assert!(
                identity.ends_with(&format!("-{}", std::process::id())),
                "{identity}"
            ),
        }
    }
}
