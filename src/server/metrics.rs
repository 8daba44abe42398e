//! Prometheus metrics of the webhook, hand-written (counters, gauges and histograms behind small locks;
//! label sets stay small: endpoints, operations, decisions, policy ids, reasons). Names follow what
//! Gatekeeper and Kyverno dashboards expect (`*_requests_total`, `*_request_duration_seconds`,
//! `*_violations_total`). [`Metrics::render`] writes the text exposition format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram buckets in seconds (request and evaluation durations).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A counter family keyed by label values.
#[derive(Debug, Default)]
pub struct CounterVec {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &[&str], n: u64) {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        *self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert(0) += n;
    }

    /// The value for `labels` (0 when never incremented).
    pub fn get(&self, labels: &[&str]) -> u64 {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

#[derive(Debug, Clone)]
struct HistogramData {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A histogram family keyed by label values.
#[derive(Debug, Default)]
pub struct HistogramVec {
    values: Mutex<BTreeMap<Vec<String>, HistogramData>>,
}

impl HistogramVec {
    pub fn observe(&self, labels: &[&str], value: Duration) {
        let seconds = value.as_secs_f64();
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let data = values.entry(key).or_insert_with(|| HistogramData {
            counts: [0; BUCKETS.len()],
            count: 0,
            sum: 0.0,
        });
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                data.counts[i] += 1;
            }
        }
        data.count += 1;
        data.sum += seconds;
    }

    /// Number of observations for `labels`.
    pub fn count(&self, labels: &[&str]) -> u64 {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .map(|d| d.count)
            .unwrap_or(0)
    }
}

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `regate_admission_requests_total{endpoint,operation,decision}`.
    pub requests: CounterVec,
    /// `regate_admission_request_duration_seconds{endpoint,operation,decision}`.
    pub request_duration: HistogramVec,
    /// `regate_policy_violations_total{policy,action}`.
    pub violations: CounterVec,
    /// `regate_policy_evaluation_duration_seconds{endpoint}`: time spent evaluating one request.
    pub evaluation_duration: HistogramVec,
    /// `regate_bad_requests_total{reason}`.
    pub bad_requests: CounterVec,
    /// `regate_overload_rejections_total`.
    pub overload_rejections: AtomicU64,
    /// `regate_inline_overruns_total`: reviews evaluated again on the blocking pool after overrunning
    /// the inline slice.
    pub inline_overruns: AtomicU64,
    /// `regate_evaluation_deadline_exceeded_total{endpoint}`.
    pub deadline_exceeded: CounterVec,
    /// `regate_cluster_state_unavailable_total{endpoint}`: decisions taken under the failure mode.
    pub cluster_unavailable: CounterVec,
    /// `regate_denials_rechecked_total{outcome}`: denials by cluster-state policies evaluated again on
    /// settled state (`confirmed`, `reversed`, or `unchanged` when no newer state arrived in time).
    pub denials_rechecked: CounterVec,
    /// `regate_inflight_evaluations`.
    pub inflight: AtomicI64,
    /// `regate_bundle_info{digest}` (one series, value 1).
    pub bundle_digest: Mutex<String>,
    /// `regate_bundle_policies`.
    pub bundle_policies: AtomicU64,
    /// `regate_bundle_reloads_total`.
    pub bundle_reloads: AtomicU64,
    /// `regate_bundle_reload_failures_total`.
    pub bundle_reload_failures: AtomicU64,
    /// `regate_certificate_expiry_timestamp_seconds`.
    pub certificate_expiry: AtomicI64,
    /// `regate_certificate_reloads_total`.
    pub certificate_reloads: AtomicU64,
    /// `regate_certificate_reload_failures_total`.
    pub certificate_reload_failures: AtomicU64,
    /// `regate_tls_handshake_failures_total`.
    pub tls_handshake_failures: AtomicU64,
    /// `regate_cluster_state_synced`.
    pub cluster_synced: AtomicBool,
    /// `regate_cluster_state_generation`.
    pub cluster_generation: AtomicU64,
    /// `regate_cluster_state_objects{kind}`.
    pub cluster_objects: Mutex<BTreeMap<String, usize>>,
    /// `regate_decision_log_dropped_total`.
    pub decision_log_dropped: AtomicU64,
    /// `regate_ready`.
    pub ready: AtomicBool,
    /// `regate_image_verifications_total{outcome}`: registry lookups of one digest's signatures.
    pub image_verifications: CounterVec,
    /// `regate_image_verification_duration_seconds{outcome}`.
    pub image_verification_duration: HistogramVec,
    /// `regate_image_verification_cache_total{result}`: verdict cache hits and misses.
    pub image_cache: CounterVec,
    /// `regate_image_registry_errors_total`.
    pub image_registry_errors: AtomicU64,
}

impl Metrics {
    /// Records an image verifier event.
    pub fn observe_image(&self, event: crate::images::verify::Event) {
        use crate::images::verify::Event;
        match event {
            Event::CacheHit => self.image_cache.inc(&["hit"]),
            Event::CacheMiss => self.image_cache.inc(&["miss"]),
            Event::Lookup { outcome, duration } => {
                self.image_verifications.inc(&[outcome]);
                self.image_verification_duration
                    .observe(&[outcome], duration);
            }
            Event::RegistryError => {
                self.image_registry_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter_vec(out: &mut String, name: &str, help: &str, names: &[&str], c: &CounterVec) {
    header(out, name, "counter", help);
    for (values, v) in c.snapshot() {
        let _ = writeln!(out, "{name}{} {v}", labels(names, &values));
    }
}

fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn histogram_vec(out: &mut String, name: &str, help: &str, names: &[&str], h: &HistogramVec) {
    header(out, name, "histogram", help);
    let values: Vec<(Vec<String>, HistogramData)> = h
        .values
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (values, data) in values {
        let base: Vec<String> = names
            .iter()
            .zip(&values)
            .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
            .collect();
        for (i, bound) in BUCKETS.iter().enumerate() {
            let mut l = base.clone();
            l.push(format!("le=\"{bound}\""));
            let _ = writeln!(out, "{name}_bucket{{{}}} {}", l.join(","), data.counts[i]);
        }
        let mut l = base.clone();
        l.push("le=\"+Inf\"".to_string());
        let _ = writeln!(out, "{name}_bucket{{{}}} {}", l.join(","), data.count);
        let suffix = if base.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", base.join(","))
        };
        let _ = writeln!(out, "{name}_sum{suffix} {}", data.sum);
        let _ = writeln!(out, "{name}_count{suffix} {}", data.count);
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let o = &mut out;
        counter_vec(
            o,
            "regate_admission_requests_total",
            "Admission reviews answered, by endpoint, operation and decision (allow or deny).",
            &["endpoint", "operation", "decision"],
            &self.requests,
        );
        histogram_vec(
            o,
            "regate_admission_request_duration_seconds",
            "Time from a review's arrival to its answer, by endpoint, operation and decision.",
            &["endpoint", "operation", "decision"],
            &self.request_duration,
        );
        counter_vec(
            o,
            "regate_policy_violations_total",
            "Policy results, by policy and enforced action (deny, warn, dryrun).",
            &["policy", "action"],
            &self.violations,
        );
        histogram_vec(
            o,
            "regate_policy_evaluation_duration_seconds",
            "Time spent evaluating the policies of one review, by endpoint.",
            &["endpoint"],
            &self.evaluation_duration,
        );
        counter_vec(
            o,
            "regate_bad_requests_total",
            "Requests rejected with a 4xx before evaluation, by reason.",
            &["reason"],
            &self.bad_requests,
        );
        scalar(
            o,
            "regate_overload_rejections_total",
            "counter",
            "Reviews shed with 503 because every evaluation slot stayed busy.",
            self.overload_rejections.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_inline_overruns_total",
            "counter",
            "Reviews evaluated again on the blocking pool because they overran the inline time slice.",
            self.inline_overruns.load(Ordering::Relaxed),
        );
        counter_vec(
            o,
            "regate_evaluation_deadline_exceeded_total",
            "Reviews answered with the failure-mode decision because evaluation missed its deadline.",
            &["endpoint"],
            &self.deadline_exceeded,
        );
        counter_vec(
            o,
            "regate_cluster_state_unavailable_total",
            "Reviews where policies needing cluster state got the failure-mode result.",
            &["endpoint"],
            &self.cluster_unavailable,
        );
        counter_vec(
            o,
            "regate_denials_rechecked_total",
            "Denials by policies reading cluster state, evaluated again once the state settled.",
            &["outcome"],
            &self.denials_rechecked,
        );
        scalar(
            o,
            "regate_inflight_evaluations",
            "gauge",
            "Evaluations running now.",
            self.inflight.load(Ordering::Relaxed),
        );
        counter_vec(
            o,
            "regate_image_verifications_total",
            "Signature lookups of one image digest at its registry, by outcome (verified, unverified, error).",
            &["outcome"],
            &self.image_verifications,
        );
        histogram_vec(
            o,
            "regate_image_verification_duration_seconds",
            "Time to find and verify one digest's signatures at its registry, by outcome.",
            &["outcome"],
            &self.image_verification_duration,
        );
        counter_vec(
            o,
            "regate_image_verification_cache_total",
            "Image verdict cache lookups, by result (hit, miss).",
            &["result"],
            &self.image_cache,
        );
        scalar(
            o,
            "regate_image_registry_errors_total",
            "counter",
            "Registry calls that failed (unreachable, timeout, TLS, auth, protocol).",
            self.image_registry_errors.load(Ordering::Relaxed),
        );
        header(
            o,
            "regate_bundle_info",
            "gauge",
            "The policy bundle in use (value 1), by content digest.",
        );
        let digest = self
            .bundle_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !digest.is_empty() {
            let _ = writeln!(o, "regate_bundle_info{{digest=\"{}\"}} 1", escape(&digest));
        }
        scalar(
            o,
            "regate_bundle_policies",
            "gauge",
            "Policies in the bundle in use.",
            self.bundle_policies.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_bundle_reloads_total",
            "counter",
            "Policy bundles loaded and swapped in after a change on disk.",
            self.bundle_reloads.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_bundle_reload_failures_total",
            "counter",
            "Changed bundles rejected (compile errors, failing tests, empty); the last good one stays.",
            self.bundle_reload_failures.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_certificate_expiry_timestamp_seconds",
            "gauge",
            "notAfter of the serving certificate, in Unix seconds.",
            self.certificate_expiry.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_certificate_reloads_total",
            "counter",
            "Serving certificates swapped in after a change on disk.",
            self.certificate_reloads.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_certificate_reload_failures_total",
            "counter",
            "Changed certificate pairs rejected (unparsable, key does not match); the old pair stays.",
            self.certificate_reload_failures.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_tls_handshake_failures_total",
            "counter",
            "Connections closed because the TLS handshake failed or timed out.",
            self.tls_handshake_failures.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_cluster_state_synced",
            "gauge",
            "1 when cluster state is synced and loaded into the evaluator.",
            u8::from(self.cluster_synced.load(Ordering::Relaxed)),
        );
        scalar(
            o,
            "regate_cluster_state_generation",
            "gauge",
            "Generation of the cluster state the evaluator uses.",
            self.cluster_generation.load(Ordering::Relaxed),
        );
        header(
            o,
            "regate_cluster_state_objects",
            "gauge",
            "Objects held in cluster state, by kind.",
        );
        let objects = self
            .cluster_objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (kind, n) in objects {
            let _ = writeln!(
                o,
                "regate_cluster_state_objects{{kind=\"{}\"}} {n}",
                escape(&kind)
            );
        }
        scalar(
            o,
            "regate_decision_log_dropped_total",
            "counter",
            "Decision log lines dropped because the writer fell behind.",
            self.decision_log_dropped.load(Ordering::Relaxed),
        );
        scalar(
            o,
            "regate_ready",
            "gauge",
            "1 when /readyz answers 200.",
            u8::from(self.ready.load(Ordering::Relaxed)),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_escapes_labels() {
        let m = Metrics::default();
        m.requests.inc(&["validate", "CREATE", "deny"]);
        m.requests.inc(&["validate", "CREATE", "deny"]);
        m.request_duration
            .observe(&["validate", "CREATE", "deny"], Duration::from_millis(3));
        m.bad_requests.inc(&["a\"b"]);
        *m.bundle_digest.lock().unwrap() = "sha256:ab".into();
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
}
