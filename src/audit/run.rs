//! One audit from start to end, the same for `regate audit` and the in-server audit of `regate serve
//! --audit-interval`: discover the kinds the policies match, list and judge each in pages, write the
//! policy reports of what changed and delete the reports of objects no longer reported on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::Value as Json;

use super::kinds::{self, AuditedKind};
use super::pace::Pacer;
use super::reports::{ReportOptions, ReportWriter, WriteStats};
use super::scan::{scan_kind, Auditor, Keep, Listed};
use super::summary::Summary;
use crate::policy::{Evaluator, PolicySet};
use crate::report::model::Report;

/// How an audit runs.
#[derive(Debug, Clone)]
pub struct AuditSpec {
    /// Objects per list request.
    pub page_size: u32,
    /// Audit only these namespaces (cluster-scoped kinds are then left out); empty: everything.
    pub namespaces: Vec<String>,
    /// Requests per second against the API server (`0`: no limit).
    pub qps: u32,
    /// Write policy reports, and how.
    pub reports: Option<ReportOptions>,
    pub keep: Keep,
    /// Set from elsewhere to stop the audit at the next page (the in-server audit's replica lost
    /// its lease); a stopped audit is incomplete.
    pub stop: Option<Arc<AtomicBool>>,
}

/// What one audit found and did.
#[derive(Debug)]
pub struct AuditOutcome {
    pub report: Report,
    pub summary: Summary,
    /// Policy id → why it is not judged on stored objects.
    pub skipped_policies: BTreeMap<String, String>,
    /// Each audited kind and what was listed of it.
    pub kinds: Vec<(AuditedKind, Listed)>,
    /// What was done to the reports, when they are written, and the first failures.
    pub reports: Option<(WriteStats, Vec<String>)>,
    /// Every API group was discovered and every kind listed to its end.
    pub complete: bool,
    pub duration: Duration,
}

impl AuditOutcome {
    /// Objects judged.
    pub fn objects(&self) -> usize {
        self.kinds.iter().map(|(_, l)| l.objects).sum()
    }
}

/// Runs one audit of the cluster behind `client` with `set`, deciding with `evaluator` (bound to
/// `inventory`, the cluster state).
pub async fn audit(
    client: &Client,
    set: &Arc<PolicySet>,
    evaluator: &Evaluator,
    inventory: &Json,
    spec: &AuditSpec,
) -> anyhow::Result<AuditOutcome> {
    let started = Instant::now();
    let mut pacer = Pacer::per_second(spec.qps);
    pacer.wait().await;
    let served = kinds::discover(client, kinds::wanted_groups(set).as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("API discovery: {e}"))?;
    let audited = kinds::select(set, served.resources);
    let mut auditor = Auditor::new(set, evaluator, inventory, spec.keep);
    let mut complete = served.failed.is_empty();
    for (group, error) in &served.failed {
        auditor.discovery_failed(group, error);
    }
    let mut writer = match &spec.reports {
        Some(options) => Some(
            ReportWriter::new(client.clone(), options.clone(), spec.page_size, &mut pacer).await?,
        ),
        None => None,
    };
    let mut kinds = Vec::with_capacity(audited.len());
    let stopped = || spec.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    for kind in audited {
        if stopped() {
            complete = false;
            break;
        }
        let listed = scan_kind(
            client,
            &kind,
            spec,
            &mut pacer,
            &mut auditor,
            writer.as_mut(),
        )
        .await;
        complete &= listed.complete;
        kinds.push((kind, listed));
    }
    let scope = (!spec.namespaces.is_empty()).then(|| {
        spec.namespaces
            .iter()
            .cloned()
            .collect::<BTreeSet<String>>()
    });
    let reports = match writer {
        Some(writer) => Some(writer.finish(complete, &scope, &mut pacer).await),
        None => None,
    };
    let skipped_policies = auditor.request_policies().clone();
    let (report, summary) = auditor.finish();
    Ok(AuditOutcome {
        report,
        summary,
        skipped_policies,
        kinds,
        reports,
        complete,
        duration: started.elapsed(),
    })
}
