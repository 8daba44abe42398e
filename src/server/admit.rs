//! The admission request path, from a body the extractors read (see [`super::extract`]) to the
//! AdmissionReview answer, in steps: parse the review, verify its images, schedule the evaluation (under
//! the concurrency limit and the request's deadline), re-check a denial on settled cluster state, record
//! metrics and the decision log, answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::Value as Json;
use tokio::sync::OwnedSemaphorePermit;

use super::decision_log;
use super::extract::AdmissionRequest;
use super::metrics::{EndpointLabel, RequestLabels, ViolationLabels};
use super::rejection::{json_response, Rejection};
use super::Shared;
use crate::admission::{Endpoint, ParsedReview, RequestRef};
use crate::images::verify;
use crate::policy::response;
use crate::policy::Decision;
use crate::policy::{decide, failure_decision, Active};
use crate::report::model::Action;

/// Time allowed past the evaluation deadline for the evaluation task to report back.
pub const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// The evaluation budget: under the API server's timeout by `margin` (or half of a tiny timeout), and
/// never over the bundle's `limits.requestTimeoutMs`.
pub fn evaluation_budget(
    api_timeout: Option<Duration>,
    request_timeout: Duration,
    margin: Duration,
) -> Duration {
    match api_timeout {
        Some(t) => {
            let under = if t > margin * 2 { t - margin } else { t / 2 };
            under.min(request_timeout)
        }
        None => request_timeout,
    }
}

/// One review on its way through the steps, with the bundle it is evaluated against and its deadline.
struct Admission {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    active: Arc<Active>,
    review: Arc<ParsedReview>,
    arrived: Instant,
    budget: Duration,
    deadline: Instant,
}

/// Answers the review of `request` at `endpoint`.
pub async fn admit(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    request: AdmissionRequest,
) -> Result<Response, Rejection> {
    let AdmissionRequest {
        arrived,
        api_timeout,
        body,
    } = request;
    let review = parse_review(&body, endpoint)?;
    let body_len = body.len();
    drop(body);
    let active = loaded_bundle(shared)?;
    let budget = evaluation_budget(
        api_timeout,
        Duration::from_millis(active.bundle.set.config.limits.request_timeout_ms),
        shared.options.deadline_margin,
    );
    let admission = Admission {
        shared: shared.clone(),
        endpoint,
        active,
        review: Arc::new(review),
        arrived,
        budget,
        deadline: arrived + budget,
    };
    // Shared with a possible second evaluation (`confirm_denial`) without copying the verdicts.
    let images = admission.verify_images().await.map(Arc::new);
    let permit = admission.evaluation_slot().await?;
    let (decision, failure) = admission.evaluate(permit, body_len, images.clone()).await;
    let decision = match failure {
        None if endpoint == Endpoint::Validate => admission
            .confirm_denial(&decision, images)
            .await
            .unwrap_or(decision),
        _ => decision,
    };
    let body = response::write(
        admission.review.api_version(),
        admission.review.uid(),
        &decision,
        endpoint,
    );
    admission.record(&decision, failure.as_deref());
    Ok(json_response(StatusCode::OK, body))
}

/// The review in `body`: `/validate` reads it straight into the engine's value; `/mutate` as JSON,
/// against which its patches are computed.
fn parse_review(body: &[u8], endpoint: Endpoint) -> Result<ParsedReview, Rejection> {
    ParsedReview::parse(body, endpoint == Endpoint::Mutate)
        .map_err(|err| Rejection::new(StatusCode::BAD_REQUEST, err.reason(), err.to_string()))
}

/// The bundle in use, or a `503` while none is loaded.
fn loaded_bundle(shared: &Shared) -> Result<Arc<Active>, Rejection> {
    shared.active.load_full().ok_or_else(|| {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "policies are not loaded yet",
        )
    })
}

/// One evaluation of a review, run on the receiving worker or on the blocking pool.
struct Evaluation {
    shared: Arc<Shared>,
    active: Arc<Active>,
    review: Arc<ParsedReview>,
    endpoint: Endpoint,
    /// Why cluster state cannot be used, if it cannot.
    unavailable: Option<String>,
    images: Option<Arc<Json>>,
}

impl Evaluation {
    /// The decision within `deadline`, and the time it took.
    fn run(&self, deadline: Instant) -> (Decision, Duration) {
        let metrics = &self.shared.metrics;
        metrics.inflight.inc();
        let started = Instant::now();
        let decision = decide(
            &self.active,
            self.review.request(),
            self.endpoint,
            deadline,
            self.unavailable.as_deref(),
            self.shared.options.cluster_failure_mode,
            self.images.as_deref(),
        );
        metrics.inflight.dec();
        (decision, started.elapsed())
    }
}

/// How scheduling an evaluation ended.
enum Scheduled {
    Done(Decision, Duration),
    /// The evaluation task on the blocking pool panicked or was cancelled.
    TaskFailed(tokio::task::JoinError),
    /// No answer by the deadline (and its grace).
    DeadlineExceeded,
}

impl Admission {
    /// Image signature verdicts for the policies (`None` when verification is off or the review has no
    /// images). Registry I/O, off the evaluation slots, within three quarters of the budget so
    /// evaluation keeps its share; unfinished lookups become registry-error verdicts.
    async fn verify_images(&self) -> Option<Json> {
        let config = &self.active.bundle.set.config.image_verification;
        // Read from whichever tree the body was read into (no conversion for `/validate`).
        let request_images = || match self.review.request() {
            RequestRef::Json(r) => verify::request_images(r),
            RequestRef::Value(r) => verify::request_images(r),
        };
        match self.shared.verifier(config) {
            Ok(None) => None,
            Ok(Some(verifier)) => {
                let wanted = request_images();
                if wanted.is_empty() {
                    return None;
                }
                let give_up = self.arrived + self.budget * 3 / 4;
                let verdicts = verifier.verify_all(&wanted, give_up).await;
                Some(verify::verdicts_json(&verdicts))
            }
            Err(message) => {
                let verdict = verify::Verdict::failed(message, true);
                let verdicts = request_images()
                    .into_iter()
                    .map(|image| (image, verdict.clone()))
                    .collect();
                Some(verify::verdicts_json(&verdicts))
            }
        }
    }

    /// An evaluation slot, or a `503` with `Retry-After` when every slot stayed busy.
    async fn evaluation_slot(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        self.shared.acquire_slot().await.map_err(|message| {
            self.shared.metrics.overload_rejections.inc();
            Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
                .with_header(header::RETRY_AFTER, "1")
        })
    }

    /// The decision, holding `permit` while evaluating, and why it is the failure-mode decision if it is.
    async fn evaluate(
        &self,
        permit: OwnedSemaphorePermit,
        body_len: usize,
        images: Option<Arc<Json>>,
    ) -> (Decision, Option<String>) {
        let unavailable = self.shared.unavailable_reason(&self.active);
        let evaluation = Evaluation {
            shared: self.shared.clone(),
            active: self.active.clone(),
            review: self.review.clone(),
            endpoint: self.endpoint,
            unavailable: unavailable.clone(),
            images,
        };
        let scheduled = self.schedule(evaluation, permit, body_len).await;
        self.outcome(scheduled, unavailable)
    }

    /// Runs `evaluation`: a small review right here within the inline slice (see `super::inline`); one
    /// that overruns it, or a large one, with the full budget on the blocking pool.
    async fn schedule(
        &self,
        evaluation: Evaluation,
        permit: OwnedSemaphorePermit,
        body_len: usize,
    ) -> Scheduled {
        let shared = &self.shared;
        let deadline = self.deadline;
        if let Some(slice_deadline) =
            shared
                .inline
                .slice_deadline(body_len, Instant::now(), deadline)
        {
            let (decision, took) = evaluation.run(slice_deadline);
            if !(decision.deadline_exceeded && slice_deadline < deadline) {
                drop(permit);
                return Scheduled::Done(decision, took);
            }
            shared.inline.overran(Instant::now());
            shared.metrics.inline_overruns.inc();
        }
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            evaluation.run(deadline)
        });
        let wait = deadline.saturating_duration_since(Instant::now()) + DEADLINE_GRACE;
        match tokio::time::timeout(wait, task).await {
            Ok(Ok((decision, took))) => Scheduled::Done(decision, took),
            Ok(Err(err)) => Scheduled::TaskFailed(err),
            Err(_) => Scheduled::DeadlineExceeded,
        }
    }

    /// The decision of a scheduled evaluation, counted, and the failure behind a failure-mode decision.
    fn outcome(
        &self,
        scheduled: Scheduled,
        unavailable: Option<String>,
    ) -> (Decision, Option<String>) {
        let metrics = &self.shared.metrics;
        let endpoint = EndpointLabel {
            endpoint: self.endpoint.as_str(),
        };
        let on_error = self.active.bundle.set.config.on_error;
        match scheduled {
            Scheduled::Done(decision, took) => {
                metrics
                    .evaluation_duration
                    .get_or_create(&endpoint)
                    .observe(took.as_secs_f64());
                if unavailable.is_some() {
                    metrics.cluster_unavailable.get_or_create(&endpoint).inc();
                }
                let failure = unavailable.map(|r| format!("cluster state unavailable: {r}"));
                (decision, failure)
            }
            Scheduled::TaskFailed(err) => {
                tracing::error!(uid = %self.review.uid(), error = %err, "evaluation task failed");
                let message = "evaluation failed: the evaluation task did not complete";
                (
                    failure_decision(on_error, message),
                    Some(message.to_string()),
                )
            }
            Scheduled::DeadlineExceeded => {
                metrics.deadline_exceeded.get_or_create(&endpoint).inc();
                let budget_ms = self.budget.as_millis();
                let message = format!("evaluation deadline exceeded ({budget_ms} ms)");
                tracing::warn!(uid = %self.review.uid(), budget_ms = budget_ms as u64, "evaluation deadline exceeded");
                (failure_decision(on_error, &message), Some(message))
            }
        }
    }

    /// Records the answered review: request metrics, violations, the decision log line.
    fn record(&self, decision: &Decision, failure: Option<&str>) {
        let metrics = &self.shared.metrics;
        let allowed = decision.allowed();
        let verdict = if allowed { "allow" } else { "deny" };
        let elapsed = self.arrived.elapsed();
        // The metrics need only the operation; the request's other facts are read for the decision log.
        let operation = self.review.request().text("operation");
        let labels = RequestLabels::new(self.endpoint.as_str(), operation, verdict);
        metrics.requests.get_or_create(&labels).inc();
        metrics
            .request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        for r in &decision.results {
            let labels = ViolationLabels {
                policy: r.policy.clone(),
                action: r.action.as_str(),
            };
            metrics.violations.get_or_create(&labels).inc();
        }
        self.log_decision(decision, failure, elapsed);
        if !allowed {
            tracing::debug!(uid = %self.review.uid(), endpoint = self.endpoint.as_str(), denied = decision.with_action(Action::Deny).count(), "denied");
        }
    }

    /// Writes the decision log line, when the log is on.
    fn log_decision(&self, decision: &Decision, failure: Option<&str>, elapsed: Duration) {
        let log = &self.shared.decision_log;
        if !log.enabled() {
            return;
        }
        let facts = self.review.request().facts();
        let tenant = facts
            .effective_namespace()
            .and_then(|ns| self.active.tenant_of(ns));
        log.write(decision_log::line(
            &decision_log::Entry {
                time_millis: super::clock::now_millis(),
                endpoint: self.endpoint.as_str(),
                facts: &facts,
                tenant: tenant.as_deref(),
                allowed: decision.allowed(),
                bundle: &self.active.bundle.set.digest,
                latency_ms: elapsed.as_secs_f64() * 1000.0,
                failure,
            },
            decision,
        ));
    }

    /// A denial by a policy that reads cluster state may come from state that lags the API server: the
    /// watch delivers a change some milliseconds after the API server stored it, and `kubectl apply` of
    /// a NetworkPolicy and a Deployment sends the second request right after the first was stored. Such
    /// a denial is evaluated again once regate holds every change it received up to `cluster_settle`
    /// after the request arrived and the evaluators are rebuilt for it, within the request's deadline.
    /// Returns the new decision, or `None` when the first one stands (not such a denial, no newer state,
    /// no time).
    async fn confirm_denial(
        &self,
        decision: &Decision,
        images: Option<Arc<Json>>,
    ) -> Option<Decision> {
        let shared = &self.shared;
        let first = &self.active;
        let settle = shared.options.cluster_settle;
        if settle.is_zero()
            || first.generation.is_none()
            || decision.allowed()
            || !denied_by_cluster_state(decision, first)
        {
            return None;
        }
        let (arrived, deadline) = (self.arrived, self.deadline);
        let settled_at = arrived + settle;
        // Leave a quarter of the budget for the second evaluation.
        let give_up = deadline - deadline.saturating_duration_since(arrived) / 4;
        if settled_at >= give_up {
            return None;
        }
        tokio::time::sleep_until(settled_at.into()).await;
        let Some(active) = settled_bundle(shared, settled_at, give_up).await else {
            shared.metrics.denial_rechecked("unchanged");
            return None;
        };
        if active.generation == first.generation {
            shared.metrics.denial_rechecked("confirmed");
            return None;
        }
        let permit = shared.acquire_slot().await.ok()?;
        let review = self.review.clone();
        let mode = shared.options.cluster_failure_mode;
        let evaluation = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            decide(
                &active,
                review.request(),
                Endpoint::Validate,
                deadline,
                None,
                mode,
                images.as_deref(),
            )
        });
        let wait = deadline.saturating_duration_since(Instant::now()) + DEADLINE_GRACE;
        let decision = tokio::time::timeout(wait, evaluation).await.ok()?.ok()?;
        if decision.deadline_exceeded {
            return None;
        }
        let outcome = if decision.allowed() {
            "reversed"
        } else {
            "confirmed"
        };
        shared.metrics.denial_rechecked(outcome);
        Some(decision)
    }
}

/// Whether a policy that reads cluster state (`requiresInventory`) denies.
fn denied_by_cluster_state(decision: &Decision, active: &Active) -> bool {
    decision
        .results
        .iter()
        .filter(|r| r.action == Action::Deny)
        .any(|r| {
            active
                .bundle
                .set
                .policies
                .iter()
                .any(|p| p.id == r.policy && p.metadata.requires_inventory)
        })
}

/// The evaluators built for every cluster-state change received up to `settled_at`, once they are in
/// use, or `None` if that has not happened by `give_up`.
async fn settled_bundle(
    shared: &Shared,
    settled_at: Instant,
    give_up: Instant,
) -> Option<Arc<Active>> {
    loop {
        if let Some(generation) = shared.cluster.generation_covering(settled_at) {
            if let Some(active) = shared.active.load_full() {
                if active.generation.is_some_and(|g| g >= generation) {
                    return Some(active);
                }
            }
        }
        if Instant::now() >= give_up {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stays_under_the_api_server_timeout_and_the_bundle_limit() {
        let m = Duration::from_millis(200);
        let req = Duration::from_secs(2);
        assert_eq!(evaluation_budget(None, req, m), req);
        assert_eq!(
            evaluation_budget(Some(Duration::from_secs(10)), req, m),
            req
        );
        assert_eq!(
            evaluation_budget(Some(Duration::from_secs(1)), req, m),
            Duration::from_millis(800)
        );
        assert_eq!(
            evaluation_budget(Some(Duration::from_millis(300)), req, m),
            Duration::from_millis(150)
        );
    }
}
