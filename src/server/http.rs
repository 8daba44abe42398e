//! The HTTP surface: `POST /validate` and `POST /mutate` (AdmissionReview in, AdmissionReview out),
//! `GET /healthz`, `GET /readyz`, `GET /metrics`. Bad input is answered with a 4xx and a JSON body
//! `{"error": ..., "reason": ...}` (and counted per reason) before any evaluation; evaluation runs on the
//! blocking pool behind a bounded semaphore, under the request's deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value as Json};

use super::decision_log;
use super::Shared;
use crate::admission::{Endpoint, ParsedReview, RequestRef};
use crate::images::verify;
use crate::policy::response;
use crate::policy::Action;
use crate::policy::Decision;
use crate::policy::{decide, failure_decision, Active};

/// Largest AdmissionReview body accepted: 7 MiB. The API server refuses request bodies over 3 MiB, and
/// an UPDATE review carries the object twice (`object` and `oldObject`), re-encoded as JSON, plus the
/// envelope (userInfo, options): 2 × 3 MiB + 1 MiB of headroom.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// How long a client may take to send a whole body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed past the evaluation deadline for the evaluation task to report back.
pub const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// The router of the TLS port (`webhook`: admission endpoints too) or of the plain metrics port.
pub fn router(shared: Arc<Shared>, webhook: bool) -> Router {
    let mut router = Router::new()
        .route("/healthz", any(healthz))
        .route("/readyz", any(readyz))
        .route("/metrics", any(metrics));
    if webhook {
        router = router
            .route("/validate", any(validate))
            .route("/mutate", any(mutate));
    }
    router.fallback(not_found).with_state(shared)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    json_text_response(status, body.to_string())
}

/// [`json_response`] for a body already serialised.
fn json_text_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A 4xx/5xx answer with a JSON body, counted in `regate_bad_requests_total{reason}` for 4xx.
fn reject(
    shared: &Shared,
    status: StatusCode,
    reason: &str,
    message: impl Into<String>,
) -> Response {
    let message = message.into();
    if status.is_client_error() {
        shared.metrics.bad_requests.inc(&[reason]);
    }
    tracing::debug!(status = status.as_u16(), reason, %message, "request rejected");
    json_response(
        status,
        json!({"error": message, "reason": reason, "status": status.as_u16()}),
    )
}

/// [`reject`] for a request whose body was not read: the connection is closed after the answer
/// (`Connection: close`), since an unread body cannot be skipped reliably on a keep-alive connection.
fn reject_unread(
    shared: &Shared,
    status: StatusCode,
    reason: &str,
    message: impl Into<String>,
) -> Response {
    let mut resp = reject(shared, status, reason, message);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn probe_method(shared: &Shared, method: &Method) -> Option<Response> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut resp = reject_unread(
        shared,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("method {method} is not allowed here; use GET"),
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(resp)
}

async fn healthz(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if let Some(r) = probe_method(&shared, req.method()) {
        return r;
    }
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

async fn readyz(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if let Some(r) = probe_method(&shared, req.method()) {
        return r;
    }
    let reasons = shared.not_ready_reasons();
    if reasons.is_empty() {
        json_response(StatusCode::OK, json!({"ready": true}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reasons": reasons}),
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if let Some(r) = probe_method(&shared, req.method()) {
        return r;
    }
    shared.refresh_gauges();
    let mut resp = (StatusCode::OK, shared.metrics.render()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn not_found(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    reject_unread(
        &shared,
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no such path {:?}; the webhook serves POST /validate and POST /mutate",
            req.uri().path()
        ),
    )
}

async fn validate(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    admit(shared, Endpoint::Validate, req).await
}

async fn mutate(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    admit(shared, Endpoint::Mutate, req).await
}

/// True for `application/json`, with any parameters (`; charset=utf-8`), case-insensitive.
pub fn is_json_content_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .map(|m| m.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

/// The `timeout` query parameter, if present and valid.
pub fn query_timeout(query: Option<&str>) -> Option<Duration> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "timeout")
        .and_then(|(_, v)| crate::duration::parse(v).ok())
}

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

async fn admit(shared: Arc<Shared>, endpoint: Endpoint, req: Request) -> Response {
    let started = Instant::now();
    if req.method() != Method::POST {
        let mut resp = reject_unread(
            &shared,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "method {} is not allowed; send the AdmissionReview with POST",
                req.method()
            ),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    match req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        Some(Ok(ct)) if is_json_content_type(ct) => {}
        Some(Ok(ct)) => {
            let ct = ct.to_string();
            return reject_unread(
                &shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("content type {ct:?} is not supported; send application/json"),
            );
        }
        _ => {
            return reject_unread(
                &shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "missing or unreadable Content-Type; send application/json",
            )
        }
    }
    let too_large = || {
        reject_unread(
            &shared,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body is larger than {MAX_BODY_BYTES} bytes (7 MiB)"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > MAX_BODY_BYTES as u64 {
            return too_large();
        }
    }
    let (parts, body) = req.into_parts();
    let api_timeout = query_timeout(parts.uri.query());
    let bytes = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(err)) => {
            return reject_unread(
                &shared,
                StatusCode::BAD_REQUEST,
                "body_read_error",
                format!("reading the body failed: {err}"),
            )
        }
        Err(_) => {
            return reject_unread(
                &shared,
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
            )
        }
    };
    // `/validate` reads the request straight into the engine's value; `/mutate` as JSON, against which
    // its patches are computed.
    let review = match ParsedReview::parse(&bytes, endpoint == Endpoint::Mutate) {
        Ok(r) => r,
        Err(err) => {
            return reject(
                &shared,
                StatusCode::BAD_REQUEST,
                err.reason(),
                err.to_string(),
            );
        }
    };
    let body_len = bytes.len();
    drop(bytes);
    let Some(active) = shared.active.load_full() else {
        return reject(
            &shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "policies are not loaded yet",
        );
    };
    let set = active.bundle.set.clone();
    let budget = evaluation_budget(
        api_timeout,
        Duration::from_millis(set.config.limits.request_timeout_ms),
        shared.options.deadline_margin,
    );
    let deadline = started + budget;

    // Image signatures (registry I/O, off the evaluation slots), within three quarters of the budget so
    // evaluation keeps its share; unfinished lookups become registry-error verdicts.
    // Read from whichever tree the body was read into (no conversion for `/validate`).
    let request_images = || match review.request() {
        RequestRef::Json(r) => verify::request_images(r),
        RequestRef::Value(r) => verify::request_images(r),
    };
    let images = match shared.verifier(&set.config.image_verification) {
        Ok(None) => None,
        Ok(Some(verifier)) => {
            let wanted = request_images();
            if wanted.is_empty() {
                None
            } else {
                let verdicts = verifier.verify_all(&wanted, started + budget * 3 / 4).await;
                Some(verify::verdicts_json(&verdicts))
            }
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
    // Shared with a possible second evaluation (`confirm_denial`) without copying the verdicts.
    .map(Arc::new);

    let permit = match shared.acquire_slot().await {
        Ok(p) => p,
        Err(message) => {
            shared
                .metrics
                .overload_rejections
                .fetch_add(1, Ordering::Relaxed);
            let mut resp = reject(
                &shared,
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                message,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
    };

    let unavailable = shared.unavailable_reason(&active);
    let mode = shared.options.cluster_failure_mode;
    let review = Arc::new(review);
    let recheck_images = images.clone();
    let evaluate = {
        let review = review.clone();
        let active = active.clone();
        let unavailable = unavailable.clone();
        let shared = shared.clone();
        move |deadline: Instant| {
            shared.metrics.inflight.fetch_add(1, Ordering::Relaxed);
            let t = Instant::now();
            let decision = decide(
                &active,
                review.request(),
                endpoint,
                deadline,
                unavailable.as_deref(),
                mode,
                images.as_deref(),
            );
            shared.metrics.inflight.fetch_sub(1, Ordering::Relaxed);
            (decision, t.elapsed())
        }
    };
    // A small review is evaluated right here within the inline slice (see `super::inline`); one that
    // overruns it is evaluated again, with the full budget, on the blocking pool.
    let now = Instant::now();
    let inline = match shared.inline.slice_deadline(body_len, now, deadline) {
        Some(slice_deadline) => {
            let (decision, took) = evaluate(slice_deadline);
            if decision.deadline_exceeded && slice_deadline < deadline {
                shared.inline.overran(Instant::now());
                shared
                    .metrics
                    .inline_overruns
                    .fetch_add(1, Ordering::Relaxed);
                None
            } else {
                Some((decision, took))
            }
        }
        None => None,
    };
    let outcome = match inline {
        Some(done) => {
            drop(permit);
            Ok(Ok(done))
        }
        None => {
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                evaluate(deadline)
            });
            let wait = deadline.saturating_duration_since(Instant::now()) + DEADLINE_GRACE;
            tokio::time::timeout(wait, task).await
        }
    };
    let (decision, failure) = match outcome {
        Ok(Ok((decision, took))) => {
            shared
                .metrics
                .evaluation_duration
                .observe(&[endpoint.as_str()], took);
            if unavailable.is_some() {
                shared.metrics.cluster_unavailable.inc(&[endpoint.as_str()]);
            }
            let failure = unavailable.map(|r| format!("cluster state unavailable: {r}"));
            (decision, failure)
        }
        Ok(Err(err)) => {
            tracing::error!(uid = %review.uid(), error = %err, "evaluation task failed");
            let message = "evaluation failed: the evaluation task did not complete";
            (
                failure_decision(set.config.on_error, message),
                Some(message.to_string()),
            )
        }
        Err(_) => {
            shared.metrics.deadline_exceeded.inc(&[endpoint.as_str()]);
            let message = format!("evaluation deadline exceeded ({} ms)", budget.as_millis());
            tracing::warn!(uid = %review.uid(), budget_ms = budget.as_millis() as u64, "evaluation deadline exceeded");
            (
                failure_decision(set.config.on_error, &message),
                Some(message),
            )
        }
    };
    let decision = if endpoint == Endpoint::Validate && failure.is_none() {
        confirm_denial(
            &shared,
            &active,
            &decision,
            &review,
            recheck_images,
            started,
            deadline,
        )
        .await
        .unwrap_or(decision)
    } else {
        decision
    };
    let body = response::write(review.api_version(), review.uid(), &decision, endpoint);
    let allowed = decision.allowed();
    let verdict = if allowed { "allow" } else { "deny" };
    let elapsed = started.elapsed();
    // The metrics need only the operation; the request's other facts are read for the decision log.
    let operation = review.request().text("operation");
    let labels = [endpoint.as_str(), operation, verdict];
    shared.metrics.requests.inc(&labels);
    shared.metrics.request_duration.observe(&labels, elapsed);
    for r in &decision.results {
        shared
            .metrics
            .violations
            .inc(&[r.policy.as_str(), r.action.as_str()]);
    }
    if shared.decision_log.enabled() {
        let facts = review.request().facts();
        let tenant = facts
            .effective_namespace()
            .and_then(|ns| active.tenant_of(ns));
        shared.decision_log.write(decision_log::line(
            &decision_log::Entry {
                time_millis: super::clock::now_millis(),
                endpoint: endpoint.as_str(),
                facts: &facts,
                tenant: tenant.as_deref(),
                allowed,
                bundle: &set.digest,
                latency_ms: elapsed.as_secs_f64() * 1000.0,
                failure: failure.as_deref(),
            },
            &decision,
        ));
    }
    if !allowed {
        tracing::debug!(uid = %review.uid(), endpoint = endpoint.as_str(), denied = decision.with_action(Action::Deny).count(), "denied");
    }
    json_text_response(StatusCode::OK, body)
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

/// A denial by a policy that reads cluster state may come from state that lags the API server: the
/// watch delivers a change some milliseconds after the API server stored it, and `kubectl apply` of a
/// NetworkPolicy and a Deployment sends the second request right after the first was stored. Such a
/// denial is evaluated again once regate holds every change it received up to `cluster_settle` after
/// the request arrived and the evaluators are rebuilt for it, within the request's deadline. Returns
/// the new decision, or `None` when the first one stands (not such a denial, no newer state, no time).
async fn confirm_denial(
    shared: &Arc<Shared>,
    first: &Arc<Active>,
    decision: &Decision,
    review: &Arc<ParsedReview>,
    images: Option<Arc<Json>>,
    arrived: Instant,
    deadline: Instant,
) -> Option<Decision> {
    let settle = shared.options.cluster_settle;
    if settle.is_zero()
        || first.generation.is_none()
        || decision.allowed()
        || !denied_by_cluster_state(decision, first)
    {
        return None;
    }
    let settled_at = arrived + settle;
    // Leave a quarter of the budget for the second evaluation.
    let give_up = deadline - deadline.saturating_duration_since(arrived) / 4;
    if settled_at >= give_up {
        return None;
    }
    tokio::time::sleep_until(settled_at.into()).await;
    let active = loop {
        if let Some(generation) = shared.cluster.generation_covering(settled_at) {
            if let Some(active) = shared.active.load_full() {
                if active.generation.is_some_and(|g| g >= generation) {
                    break active;
                }
            }
        }
        if Instant::now() >= give_up {
            shared.metrics.denials_rechecked.inc(&["unchanged"]);
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    if active.generation == first.generation {
        shared.metrics.denials_rechecked.inc(&["confirmed"]);
        return None;
    }
    let permit = shared.acquire_slot().await.ok()?;
    let review = review.clone();
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
    shared.metrics.denials_rechecked.inc(&[outcome]);
    Some(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn timeout_query_and_budget() {
        assert_eq!(
            query_timeout(Some("timeout=10s")),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            query_timeout(Some("a=b&timeout=3s")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(query_timeout(Some("timeout=x")), None);
        assert_eq!(query_timeout(None), None);
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

    #[rstest]
    #[case("application/json", true)]
    #[case("application/json; charset=utf-8", true)]
    #[case("Application/JSON;charset=UTF-8", true)]
    #[case("text/plain", false)]
    #[case("application/jsonx", false)]
    #[case("application/yaml", false)]
    fn content_types(#[case] ct: &str, #[case] ok: bool) {
        assert_eq!(is_json_content_type(ct), ok);
    }
}
