//! The checks every admission request passes before its review is read, as axum extractors, in the order
//! [`AdmissionRequest`] applies them: the API server's `?timeout=` ([`ApiServerTimeout`]), the content
//! type ([`JsonContentType`], else `415`), and the body, bounded in size and in time ([`ReviewBody`],
//! else `413`, `408` or `400`).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::rejection::Rejection;

/// Largest AdmissionReview body accepted: 7 MiB. The API server refuses request bodies over 3 MiB, and
/// an UPDATE review carries the object twice (`object` and `oldObject`), re-encoded as JSON, plus the
/// envelope (userInfo, options): 2 × 3 MiB + 1 MiB of headroom.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// How long a client may take to send a whole body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// An admission request that passed every check, with its body read.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    /// When it reached its handler, before its body was read: the start of its deadline and of
    /// `regate_admission_request_duration_seconds`.
    pub arrived: Instant,
    pub api_timeout: Option<Duration>,
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for AdmissionRequest {
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let arrived = Instant::now();
        let (mut parts, body) = req.into_parts();
        let Ok(ApiServerTimeout(api_timeout)) =
            ApiServerTimeout::from_request_parts(&mut parts, state).await;
        JsonContentType::from_request_parts(&mut parts, state).await?;
        let ReviewBody(body) =
            ReviewBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(AdmissionRequest {
            arrived,
            api_timeout,
            body,
        })
    }
}

/// The API server's `?timeout=` for this review, if present and valid.
#[derive(Debug, Clone, Copy)]
pub struct ApiServerTimeout(pub Option<Duration>);

impl<S: Send + Sync> FromRequestParts<S> for ApiServerTimeout {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiServerTimeout(query_timeout(parts.uri.query())))
    }
}

/// The `timeout` query parameter, if present and valid.
pub fn query_timeout(query: Option<&str>) -> Option<Duration> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "timeout")
        .and_then(|(_, v)| crate::duration::parse(v).ok())
}

/// A request declared as `application/json`; anything else is refused with `415`.
#[derive(Debug, Clone, Copy)]
pub struct JsonContentType;

impl<S: Send + Sync> FromRequestParts<S> for JsonContentType {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let unsupported = |message: String| {
            Rejection::body_unread(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            )
        };
        match parts.headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
            Some(Ok(ct)) if is_json_content_type(ct) => Ok(JsonContentType),
            Some(Ok(ct)) => Err(unsupported(format!(
                "content type {ct:?} is not supported; send application/json"
            ))),
            _ => Err(unsupported(
                "missing or unreadable Content-Type; send application/json".to_string(),
            )),
        }
    }
}

/// True for `application/json`, with any parameters (`; charset=utf-8`), case-insensitive.
pub fn is_json_content_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .map(|m| m.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

/// The whole body, at most [`MAX_BODY_BYTES`] (a larger declared `Content-Length` is refused before
/// reading), arrived within [`BODY_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct ReviewBody(pub Bytes);

fn body_too_large() -> Rejection {
    Rejection::body_unread(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("body is larger than {MAX_BODY_BYTES} bytes (7 MiB)"),
    )
}

impl<S: Send + Sync> FromRequest<S> for ReviewBody {
    type Rejection = Rejection;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(body_too_large());
        }
        let limited = Limited::new(req.into_body(), MAX_BODY_BYTES);
        match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
            Ok(Ok(collected)) => Ok(ReviewBody(collected.to_bytes())),
            Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
                Err(body_too_large())
            }
            Ok(Err(err)) => Err(Rejection::body_unread(
                StatusCode::BAD_REQUEST,
                "body_read_error",
                format!("reading the body failed: {err}"),
            )),
            Err(_) => Err(Rejection::body_unread(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn timeout_query() {
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
