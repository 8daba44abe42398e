//! The HTTP surface: the routes, `POST /validate` and `POST /mutate` (AdmissionReview in, AdmissionReview
//! out, see [`super::admit`]), `GET /healthz`, `GET /readyz`, `GET /metrics`. Bad input is answered with a
//! 4xx and a JSON body `{"error": ..., "reason": ...}` before any evaluation: a method a path does not
//! serve by its method router's fallback, an unknown path by the router's, and a bad body by the
//! extractors ([`super::extract`]); every [`Rejection`] is counted per reason by one middleware.

use std::sync::Arc;

use axum::extract::State;
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde_json::json;

use super::admit::admit;
use super::extract::AdmissionRequest;
use super::rejection::{count_rejections, json_response, Rejection};
use super::Shared;
use crate::admission::Endpoint;

/// The router of the TLS port (`webhook`: admission endpoints too) or of the plain metrics port.
pub fn router(shared: Arc<Shared>, webhook: bool) -> Router {
    let mut router = Router::new()
        .route("/healthz", probe(healthz))
        .route("/readyz", probe(readyz))
        .route("/metrics", probe(metrics));
    if webhook {
        router = router
            .route("/validate", admission(validate))
            .route("/mutate", admission(mutate));
    }
    router
        .fallback(not_found)
        .layer(middleware::map_response_with_state(
            shared.clone(),
            count_rejections,
        ))
        .with_state(shared)
}

/// `GET` (and `HEAD`) of `handler`; any other method is refused with a `405`.
fn probe<H, T>(handler: H) -> MethodRouter<Arc<Shared>>
where
    H: Handler<T, Arc<Shared>>,
    T: 'static,
{
    refuse_other_methods(get(handler), "GET, HEAD", " here; use GET")
}

/// `POST` of `handler`; any other method is refused with a `405`.
fn admission<H, T>(handler: H) -> MethodRouter<Arc<Shared>>
where
    H: Handler<T, Arc<Shared>>,
    T: 'static,
{
    refuse_other_methods(
        post(handler),
        "POST",
        "; send the AdmissionReview with POST",
    )
}

/// `methods`, answering any other method with a `405` that lists `allow` and says `advice`.
fn refuse_other_methods(
    methods: MethodRouter<Arc<Shared>>,
    allow: &'static str,
    advice: &'static str,
) -> MethodRouter<Arc<Shared>> {
    methods.fallback(move |method: Method| async move {
        Rejection::method_not_allowed(allow, format!("method {method} is not allowed{advice}"))
    })
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}).to_string())
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let reasons = shared.not_ready_reasons();
    if reasons.is_empty() {
        json_response(StatusCode::OK, json!({"ready": true}).to_string())
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reasons": reasons}).to_string(),
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.refresh_gauges();
    let mut resp = (StatusCode::OK, shared.metrics.render()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    resp
}

async fn not_found(uri: Uri) -> Rejection {
    Rejection::body_unread(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no such path {:?}; the webhook serves POST /validate and POST /mutate",
            uri.path()
        ),
    )
}

async fn validate(
    State(shared): State<Arc<Shared>>,
    request: AdmissionRequest,
) -> Result<Response, Rejection> {
    admit(&shared, Endpoint::Validate, request).await
}

async fn mutate(
    State(shared): State<Arc<Shared>>,
    request: AdmissionRequest,
) -> Result<Response, Rejection> {
    admit(&shared, Endpoint::Mutate, request).await
}
