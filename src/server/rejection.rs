//! Requests refused before (or instead of) an evaluation: [`Rejection`], the one error type of the request
//! path, answered as `{"error": ..., "reason": ..., "status": ...}` with its status, and counted per
//! reason in `regate_bad_requests_total` by the [`count_rejections`] middleware when it is a 4xx.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Shared;

/// A request answered with an error status instead of an AdmissionReview.
#[derive(Debug)]
pub struct Rejection {
    status: StatusCode,
    /// The `reason` label of `regate_bad_requests_total` and the body's `reason`.
    reason: &'static str,
    message: String,
    /// The body was not read: the connection is closed after the answer (`Connection: close`), since an
    /// unread body cannot be skipped reliably on a keep-alive connection.
    body_unread: bool,
    /// One more header of the answer (`Allow` of a 405, `Retry-After` of a shed request).
    header: Option<(HeaderName, &'static str)>,
}

/// The reason of a rejection, left on its response for [`count_rejections`].
#[derive(Debug, Clone, Copy)]
struct RejectedFor(&'static str);

impl Rejection {
    /// A rejection of a request whose body was read.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            reason,
            message: message.into(),
            body_unread: false,
            header: None,
        }
    }

    /// A rejection of a request whose body was not read (the connection closes after it).
    pub fn body_unread(
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Rejection {
            body_unread: true,
            ..Rejection::new(status, reason, message)
        }
    }

    /// A `405` for a method the path does not serve; `allow` lists the methods it does.
    pub fn method_not_allowed(allow: &'static str, message: String) -> Rejection {
        Rejection::body_unread(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
        .with_header(header::ALLOW, allow)
    }

    /// The rejection with one more header on its answer.
    pub fn with_header(self, name: HeaderName, value: &'static str) -> Rejection {
        Rejection {
            header: Some((name, value)),
            ..self
        }
    }
}

/// A JSON answer: `body` with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.status;
        tracing::debug!(status = status.as_u16(), reason = self.reason, message = %self.message, "request rejected");
        let body = json!({"error": self.message, "reason": self.reason, "status": status.as_u16()});
        let mut resp = json_response(status, body.to_string());
        let headers = resp.headers_mut();
        if self.body_unread {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some((name, value)) = self.header {
            headers.insert(name, HeaderValue::from_static(value));
        }
        resp.extensions_mut().insert(RejectedFor(self.reason));
        resp
    }
}

/// Middleware of every route: counts a 4xx [`Rejection`] in `regate_bad_requests_total{reason}`.
pub async fn count_rejections(State(shared): State<Arc<Shared>>, response: Response) -> Response {
    if response.status().is_client_error() {
        if let Some(RejectedFor(reason)) = response.extensions().get::<RejectedFor>() {
            shared.metrics.bad_request(reason);
        }
    }
    response
}
