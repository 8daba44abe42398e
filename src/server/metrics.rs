//! Prometheus metrics of the webhook, on `prometheus-client`: counters, gauges and histograms, families
//! keyed by typed label sets (endpoints, operations, decisions, policy ids, reasons; no allocation for a
//! label known in advance), registered in one [`Registry`]. Names follow what Gatekeeper and Kyverno
//! dashboards expect (`*_requests_total`, `*_request_duration_seconds`, `*_violations_total`), and the
//! chart's dashboard and alerts (`charts/regate`) query them. [`Metrics::render`] writes the Prometheus
//! text exposition format 0.0.4.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};

use crate::admission::review::OPERATIONS;

/// Histogram buckets in seconds (request and evaluation durations).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A histogram with [`BUCKETS`].
fn duration_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// A family of histograms with [`BUCKETS`].
pub type DurationFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_family<L: Clone + std::hash::Hash + Eq>() -> DurationFamily<L> {
    Family::new_with_constructor(duration_histogram)
}

/// Labels of a reviewed request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT` without an allocation; anything else as sent.
    pub operation: Cow<'static, str>,
    /// `allow` or `deny`.
    pub decision: &'static str,
}

impl RequestLabels {
    pub fn new(endpoint: &'static str, operation: &str, decision: &'static str) -> RequestLabels {
        let operation = match OPERATIONS.iter().find(|known| **known == operation) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(operation.to_string()),
        };
        RequestLabels {
            endpoint,
            operation,
            decision,
        }
    }
}

/// Labels of a policy result.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub policy: String,
    /// The enforced action: `deny`, `warn` or `dryrun`.
    pub action: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DigestLabel {
    digest: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Labels of an audit violation count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuditViolationLabels {
    pub policy: String,
    /// The object's namespace; empty for cluster-scoped objects.
    pub namespace: String,
}

/// Metrics of the in-server audit (`regate serve --audit-interval`, see `super::audit`).
#[derive(Debug, Default)]
pub struct AuditMetrics {
    /// `regate_audit_runs_total{result}`: audits finished, `success` or `failure`.
    pub runs: Family<ResultLabel, Counter>,
    /// `regate_audit_duration_seconds`: how long the last audit took.
    pub duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `regate_audit_objects`: objects judged by the last audit.
    pub objects: Gauge,
    /// `regate_audit_violations{policy,namespace}`: failing and warning results of the last audit.
    pub violations: Family<AuditViolationLabels, Gauge>,
    /// `regate_audit_last_success_timestamp_seconds`.
    pub last_success: Gauge,
    /// `regate_audit_leader`: 1 on the replica holding the audit lease.
    pub leader: Gauge,
}

/// Gauges whose series are replaced as a whole (the bundle's digest, the object count per kind),
/// written out at scrape time as they were last set.
#[derive(Debug, Default)]
pub struct ReplacedSeries {
    bundle_digest: Mutex<String>,
    cluster_objects: Mutex<BTreeMap<String, usize>>,
}

impl ReplacedSeries {
    /// `regate_bundle_info{digest}`: the bundle in use.
    pub fn set_bundle_digest(&self, digest: &str) {
        let mut current = self.bundle_digest.lock().unwrap_or_else(|p| p.into_inner());
        current.clear();
        current.push_str(digest);
    }

    /// `regate_cluster_state_objects{kind}`: objects held in cluster state.
    pub fn set_cluster_objects(&self, counts: BTreeMap<String, usize>) {
        *self
            .cluster_objects
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = counts;
    }
}

impl Collector for ReplacedSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let digest = self
            .bundle_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        {
            let mut family = encoder.encode_descriptor(
                "regate_bundle_info",
                "The policy bundle in use (value 1), by content digest.",
                None,
                MetricType::Gauge,
            )?;
            if !digest.is_empty() {
                ConstGauge::new(1i64).encode(family.encode_family(&DigestLabel { digest })?)?;
            }
        }
        let objects = self
            .cluster_objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut family = encoder.encode_descriptor(
            "regate_cluster_state_objects",
            "Objects held in cluster state, by kind.",
            None,
            MetricType::Gauge,
        )?;
        for (kind, n) in objects {
            ConstGauge::new(n as i64).encode(family.encode_family(&KindLabel { kind })?)?;
        }
        Ok(())
    }
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    /// `regate_admission_requests_total{endpoint,operation,decision}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `regate_admission_request_duration_seconds{endpoint,operation,decision}`.
    pub request_duration: DurationFamily<RequestLabels>,
    /// `regate_policy_violations_total{policy,action}`.
    pub violations: Family<ViolationLabels, Counter>,
    /// `regate_policy_evaluation_duration_seconds{endpoint}`: time spent evaluating one request.
    pub evaluation_duration: DurationFamily<EndpointLabel>,
    /// `regate_bad_requests_total{reason}`.
    pub bad_requests: Family<ReasonLabel, Counter>,
    /// `regate_overload_rejections_total`.
    pub overload_rejections: Counter,
    /// `regate_inline_overruns_total`: reviews evaluated again on the blocking pool after overrunning
    /// the inline slice.
    pub inline_overruns: Counter,
    /// `regate_evaluation_deadline_exceeded_total{endpoint}`.
    pub deadline_exceeded: Family<EndpointLabel, Counter>,
    /// `regate_cluster_state_unavailable_total{endpoint}`: decisions taken under the failure mode.
    pub cluster_unavailable: Family<EndpointLabel, Counter>,
    /// `regate_denials_rechecked_total{outcome}`: denials by cluster-state policies evaluated again on
    /// settled state (`confirmed`, `reversed`, or `unchanged` when no newer state arrived in time).
    pub denials_rechecked: Family<OutcomeLabel, Counter>,
    /// `regate_inflight_evaluations`.
    pub inflight: Gauge,
    /// `regate_image_verifications_total{outcome}`: registry lookups of one digest's signatures.
    pub image_verifications: Family<OutcomeLabel, Counter>,
    /// `regate_image_verification_duration_seconds{outcome}`.
    pub image_verification_duration: DurationFamily<OutcomeLabel>,
    /// `regate_image_verification_cache_total{result}`: verdict cache hits and misses.
    pub image_cache: Family<ResultLabel, Counter>,
    /// `regate_image_registry_errors_total`.
    pub image_registry_errors: Counter,
    /// `regate_bundle_policies`.
    pub bundle_policies: Gauge,
    /// `regate_bundle_reloads_total`.
    pub bundle_reloads: Counter,
    /// `regate_bundle_reload_failures_total`.
    pub bundle_reload_failures: Counter,
    /// `regate_certificate_expiry_timestamp_seconds`.
    pub certificate_expiry: Gauge,
    /// `regate_certificate_reloads_total`.
    pub certificate_reloads: Counter,
    /// `regate_certificate_reload_failures_total`.
    pub certificate_reload_failures: Counter,
    /// `regate_tls_handshake_failures_total`.
    pub tls_handshake_failures: Counter,
    /// `regate_cluster_state_synced` (0 or 1).
    pub cluster_synced: Gauge,
    /// `regate_cluster_state_generation`.
    pub cluster_generation: Gauge,
    /// `regate_decision_log_dropped_total`.
    pub decision_log_dropped: Counter,
    /// `regate_ready` (0 or 1).
    pub ready: Gauge,
    /// `regate_bundle_info{digest}` and `regate_cluster_state_objects{kind}`.
    pub replaced: Arc<ReplacedSeries>,
    pub audit: AuditMetrics,
    registry: Registry,
}

/// A metric whose `# HELP` and `# TYPE` lines are written even before its first series, as the
/// exposition always showed them (the registry leaves out a family without series).
#[derive(Debug)]
struct AlwaysDescribed<M>(M);

impl<M: EncodeMetric> EncodeMetric for AlwaysDescribed<M> {
    fn encode(&self, encoder: MetricEncoder) -> fmt::Result {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// Registers `metric` under the name and help text it is exposed with: the registry appends `_total`
/// to a counter's name and a `.` to every help text itself.
fn register<M: Metric>(registry: &mut Registry, exposed_name: &str, help: &str, metric: M) {
    let name = match metric.metric_type() {
        MetricType::Counter => exposed_name.strip_suffix("_total"),
        _ => Some(exposed_name),
    }
    .expect("a counter's exposed name ends in _total");
    let help = help.strip_suffix('.').unwrap_or(help);
    registry.register(name, help, AlwaysDescribed(metric));
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            requests: Family::default(),
            request_duration: duration_family(),
            violations: Family::default(),
            evaluation_duration: duration_family(),
            bad_requests: Family::default(),
            overload_rejections: Counter::default(),
            inline_overruns: Counter::default(),
            deadline_exceeded: Family::default(),
            cluster_unavailable: Family::default(),
            denials_rechecked: Family::default(),
            inflight: Gauge::default(),
            image_verifications: Family::default(),
            image_verification_duration: duration_family(),
            image_cache: Family::default(),
            image_registry_errors: Counter::default(),
            bundle_policies: Gauge::default(),
            bundle_reloads: Counter::default(),
            bundle_reload_failures: Counter::default(),
            certificate_expiry: Gauge::default(),
            certificate_reloads: Counter::default(),
            certificate_reload_failures: Counter::default(),
            tls_handshake_failures: Counter::default(),
            cluster_synced: Gauge::default(),
            cluster_generation: Gauge::default(),
            decision_log_dropped: Counter::default(),
            ready: Gauge::default(),
            replaced: Arc::default(),
            audit: AuditMetrics::default(),
            registry: Registry::default(),
        };
        metrics.registered()
    }
}

impl Metrics {
    /// The metrics, registered (metrics share their values with their registered clones).
    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        register(
            r,
            "regate_admission_requests_total",
            "Admission reviews answered, by endpoint, operation and decision (allow or deny).",
            self.requests.clone(),
        );
        register(
            r,
            "regate_admission_request_duration_seconds",
            "Time from a review's arrival to its answer, by endpoint, operation and decision.",
            self.request_duration.clone(),
        );
        register(
            r,
            "regate_policy_violations_total",
            "Policy results, by policy and enforced action (deny, warn, dryrun).",
            self.violations.clone(),
        );
        register(
            r,
            "regate_policy_evaluation_duration_seconds",
            "Time spent evaluating the policies of one review, by endpoint.",
            self.evaluation_duration.clone(),
        );
        register(
            r,
            "regate_bad_requests_total",
            "Requests rejected with a 4xx before evaluation, by reason.",
            self.bad_requests.clone(),
        );
        register(
            r,
            "regate_overload_rejections_total",
            "Reviews shed with 503 because every evaluation slot stayed busy.",
            self.overload_rejections.clone(),
        );
        register(
            r,
            "regate_inline_overruns_total",
            "Reviews evaluated again on the blocking pool because they overran the inline time slice.",
            self.inline_overruns.clone(),
        );
        register(
            r,
            "regate_evaluation_deadline_exceeded_total",
            "Reviews answered with the failure-mode decision because evaluation missed its deadline.",
            self.deadline_exceeded.clone(),
        );
        register(
            r,
            "regate_cluster_state_unavailable_total",
            "Reviews where policies needing cluster state got the failure-mode result.",
            self.cluster_unavailable.clone(),
        );
        register(
            r,
            "regate_denials_rechecked_total",
            "Denials by policies reading cluster state, evaluated again once the state settled.",
            self.denials_rechecked.clone(),
        );
        register(
            r,
            "regate_inflight_evaluations",
            "Evaluations running now.",
            self.inflight.clone(),
        );
        register(
            r,
            "regate_image_verifications_total",
            "Signature lookups of one image digest at its registry, by outcome (verified, unverified, error).",
            self.image_verifications.clone(),
        );
        register(
            r,
            "regate_image_verification_duration_seconds",
            "Time to find and verify one digest's signatures at its registry, by outcome.",
            self.image_verification_duration.clone(),
        );
        register(
            r,
            "regate_image_verification_cache_total",
            "Image verdict cache lookups, by result (hit, miss).",
            self.image_cache.clone(),
        );
        register(
            r,
            "regate_image_registry_errors_total",
            "Registry calls that failed (unreachable, timeout, TLS, auth, protocol).",
            self.image_registry_errors.clone(),
        );
        register(
            r,
            "regate_bundle_policies",
            "Policies in the bundle in use.",
            self.bundle_policies.clone(),
        );
        register(
            r,
            "regate_bundle_reloads_total",
            "Policy bundles loaded and swapped in after a change on disk.",
            self.bundle_reloads.clone(),
        );
        register(
            r,
            "regate_bundle_reload_failures_total",
            "Changed bundles rejected (compile errors, failing tests, empty); the last good one stays.",
            self.bundle_reload_failures.clone(),
        );
        register(
            r,
            "regate_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, in Unix seconds.",
            self.certificate_expiry.clone(),
        );
        register(
            r,
            "regate_certificate_reloads_total",
            "Serving certificates swapped in after a change on disk.",
            self.certificate_reloads.clone(),
        );
        register(
            r,
            "regate_certificate_reload_failures_total",
            "Changed certificate pairs rejected (unparsable, key does not match); the old pair stays.",
            self.certificate_reload_failures.clone(),
        );
        register(
            r,
            "regate_tls_handshake_failures_total",
            "Connections closed because the TLS handshake failed or timed out.",
            self.tls_handshake_failures.clone(),
        );
        register(
            r,
            "regate_cluster_state_synced",
            "1 when cluster state is synced and loaded into the evaluator.",
            self.cluster_synced.clone(),
        );
        register(
            r,
            "regate_cluster_state_generation",
            "Generation of the cluster state the evaluator uses.",
            self.cluster_generation.clone(),
        );
        register(
            r,
            "regate_decision_log_dropped_total",
            "Decision log lines dropped because the writer fell behind.",
            self.decision_log_dropped.clone(),
        );
        register(
            r,
            "regate_ready",
            "1 when /readyz answers 200.",
            self.ready.clone(),
        );
        let a = &self.audit;
        register(
            r,
            "regate_audit_runs_total",
            "Background audits finished, by result (success or failure).",
            a.runs.clone(),
        );
        register(
            r,
            "regate_audit_duration_seconds",
            "How long the last background audit took.",
            a.duration.clone(),
        );
        register(
            r,
            "regate_audit_objects",
            "Objects judged by the last background audit.",
            a.objects.clone(),
        );
        register(
            r,
            "regate_audit_violations",
            "Failing and warning results of the last background audit, by policy and namespace.",
            a.violations.clone(),
        );
        register(
            r,
            "regate_audit_last_success_timestamp_seconds",
            "Unix time the last successful background audit ended.",
            a.last_success.clone(),
        );
        register(
            r,
            "regate_audit_leader",
            "1 on the replica holding the audit lease (the one that audits).",
            a.leader.clone(),
        );
        r.register_collector(Box::new(self.replaced.clone()));
        self
    }

    /// Counts a request rejected with a 4xx.
    pub fn bad_request(&self, reason: &'static str) {
        self.bad_requests
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a denial evaluated again on settled cluster state.
    pub fn denial_rechecked(&self, outcome: &'static str) {
        self.denials_rechecked
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Records an image verifier event.
    pub fn observe_image(&self, event: crate::images::verify::Event) {
        use crate::images::verify::Event;
        let cache = |result| {
            self.image_cache
                .get_or_create(&ResultLabel { result })
                .inc()
        };
        match event {
            Event::CacheHit => {
                cache("hit");
            }
            Event::CacheMiss => {
                cache("miss");
            }
            Event::Lookup { outcome, duration } => {
                let labels = OutcomeLabel { outcome };
                self.image_verifications.get_or_create(&labels).inc();
                self.image_verification_duration
                    .get_or_create(&labels)
                    .observe(duration.as_secs_f64());
            }
            Event::RegistryError => {
                self.image_registry_errors.inc();
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %err, "writing the metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_escapes_labels() {
        let m = Metrics::default();
        let labels = RequestLabels::new("validate", "CREATE", "deny");
        m.requests.get_or_create(&labels).inc();
        m.requests.get_or_create(&labels).inc();
        m.request_duration.get_or_create(&labels).observe(0.003);
        m.bad_request("a\"b");
        m.replaced.set_bundle_digest("sha256:ab");
        let text = m.render();
        assert!(text.contains(
            "regate_admission_requests_total{endpoint=\"validate\",operation=\"CREATE\",decision=\"deny\"} 2"
        ));
        assert!(text.contains("regate_admission_request_duration_seconds_bucket{endpoint=\"validate\",operation=\"CREATE\",decision=\"deny\",le=\"0.0025\"} 0"));
        assert!(text.contains("regate_admission_request_duration_seconds_bucket{endpoint=\"validate\",operation=\"CREATE\",decision=\"deny\",le=\"0.005\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
        assert!(text.contains("regate_bad_requests_total{reason=\"a\\\"b\"} 1"));
        assert!(text.contains("regate_bundle_info{digest=\"sha256:ab\"} 1"));
        assert!(text.contains("# TYPE regate_bundle_reload_failures_total counter"));
    }

    #[test]
    fn operations_outside_the_known_four_keep_their_value() {
        let known = RequestLabels::new("validate", "UPDATE", "allow");
        assert!(matches!(known.operation, Cow::Borrowed("UPDATE")));
        let other = RequestLabels::new("mutate", "PATCH", "allow");
        assert_eq!(other.operation, "PATCH");
    }
}
