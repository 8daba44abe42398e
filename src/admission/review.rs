//! Parsing an AdmissionReview from raw bytes: the envelope is checked field by field, and the request is
//! kept as the raw JSON tree it arrived as (never round-tripped through typed structs).

use serde_json::Value as Json;

/// The API versions of AdmissionReview regate answers; the reply uses the request's version.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Operations the API server sends to admission webhooks.
pub const OPERATIONS: [&str; 4] = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

/// Maximum JSON nesting depth accepted (serde_json's recursion limit). Kubernetes objects, CRD schemas
/// included, stay far below it.
pub const MAX_DEPTH: usize = 128;

/// Why an AdmissionReview was rejected; `Display` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("apiVersion is {0:?}; expected admission.k8s.io/v1")]
    WrongApiVersion(String),
    #[error("kind is {0:?}; expected AdmissionReview")]
    WrongKind(String),
    #[error("request is missing or not an object")]
    MissingRequest,
    #[error("request.uid is missing or empty")]
    MissingUid,
    #[error("request.{field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl ReviewError {
    /// A short, stable label for metrics (`reason` label of the bad-request counter).
    pub fn reason(&self) -> &'static str {
        match self {
            ReviewError::InvalidJson(_) => "invalid_json",
            ReviewError::TooDeep => "too_deep",
            ReviewError::NotAnObject => "not_an_object",
            ReviewError::WrongApiVersion(_) => "wrong_api_version",
            ReviewError::WrongKind(_) => "wrong_kind",
            ReviewError::MissingRequest => "missing_request",
            ReviewError::MissingUid => "missing_uid",
            ReviewError::InvalidField { .. } => "invalid_field",
        }
    }
}

/// A validated AdmissionReview: the envelope's version, the uid, and the raw request.
#[derive(Debug, Clone)]
pub struct Review {
    pub api_version: String,
    pub uid: String,
    /// The `request` object exactly as received.
    pub request: Json,
}

impl Review {
    /// Parses and validates an AdmissionReview body.
    pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
        let value: Json = serde_json::from_slice(body).map_err(|err| {
            if err.to_string().contains("recursion limit exceeded") {
                ReviewError::TooDeep
            } else {
                ReviewError::InvalidJson(err.to_string())
            }
        })?;
        Self::from_json(value)
    }

    /// Validates an already parsed AdmissionReview.
    pub fn from_json(value: Json) -> Result<Review, ReviewError> {
        let Json::Object(mut envelope) = value else {
            return Err(ReviewError::NotAnObject);
        };
        let api_version = match envelope.get("apiVersion") {
            Some(Json::String(v)) if SUPPORTED_API_VERSIONS.contains(&v.as_str()) => v.clone(),
            Some(other) => return Err(ReviewError::WrongApiVersion(display_scalar(other))),
            None => return Err(ReviewError::WrongApiVersion(String::new())),
        };
        match envelope.get("kind") {
            Some(Json::String(k)) if k == "AdmissionReview" => {}
            Some(other) => return Err(ReviewError::WrongKind(display_scalar(other))),
            None => return Err(ReviewError::WrongKind(String::new())),
        }
        let request = match envelope.remove("request") {
            Some(request @ Json::Object(_)) => request,
            _ => return Err(ReviewError::MissingRequest),
        };
        validate_request(&request)?;
        let uid = request
            .get("uid")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Review {
            api_version,
            uid,
            request,
        })
    }
}

fn display_scalar(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ReviewError {
    ReviewError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Checks the request fields the engine relies on. Everything else is passed through untouched.
pub fn validate_request(request: &Json) -> Result<(), ReviewError> {
    match request.get("uid") {
        Some(Json::String(uid)) if !uid.trim().is_empty() => {}
        _ => return Err(ReviewError::MissingUid),
    }
    let operation = match request.get("operation") {
        Some(Json::String(op)) if OPERATIONS.contains(&op.as_str()) => op.as_str(),
        Some(Json::String(op)) => {
            return Err(invalid(
                "operation",
                format!("{op:?} is not one of CREATE, UPDATE, DELETE, CONNECT"),
            ))
        }
        _ => return Err(invalid("operation", "missing or not a string")),
    };
    match request.get("kind") {
        Some(Json::Object(kind)) => match kind.get("kind") {
            Some(Json::String(k)) if !k.is_empty() => {}
            _ => return Err(invalid("kind", "kind.kind is missing or empty")),
        },
        _ => {
            return Err(invalid(
                "kind",
                "missing or not an object (want {group, version, kind})",
            ))
        }
    }
    for field in ["namespace", "name", "subResource"] {
        if let Some(v) = request.get(field) {
            if !v.is_string() && !v.is_null() {
                return Err(invalid(
                    match field {
                        "namespace" => "namespace",
                        "name" => "name",
                        _ => "subResource",
                    },
                    "not a string",
                ));
            }
        }
    }
    let object = request.get("object").filter(|v| !v.is_null());
    let old = request.get("oldObject").filter(|v| !v.is_null());
    if let Some(o) = object {
        if !o.is_object() {
            return Err(invalid("object", "not an object"));
        }
    }
    if let Some(o) = old {
        if !o.is_object() {
            return Err(invalid("oldObject", "not an object"));
        }
    }
    match operation {
        "CREATE" | "UPDATE" if object.is_none() => {
            return Err(invalid(
                "object",
                format!("{operation} requires request.object"),
            ))
        }
        "DELETE" if object.is_some() && old.is_none() => {
            return Err(invalid(
                "oldObject",
                "DELETE carries the deleted object in request.oldObject, not request.object",
            ))
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const GOOD: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","operation":"CREATE","kind":{"group":"","version":"v1","kind":"Pod"},"object":{"metadata":{"name":"p"}}}}"#;

    #[test]
    fn keeps_the_raw_request() {
        let review = Review::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(review.uid, "u1");
        assert_eq!(review.api_version, "admission.k8s.io/v1");
        assert_eq!(review.request["object"]["metadata"]["name"], "p");
    }

    #[rstest]
    #[case("", "invalid_json")]
    #[case("{", "invalid_json")]
    #[case("[]", "not_an_object")]
    #[case(
        r#"{"apiVersion":"v1","kind":"AdmissionReview","request":{}}"#,
        "wrong_api_version"
    )]
    #[case(
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}"#,
        "wrong_kind"
    )]
    #[case(
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        "missing_request"
    )]
    #[case(
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#,
        "missing_request"
    )]
    #[case(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#, "missing_uid")]
    #[case(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":"CREATE"}}"#, "missing_uid")]
    #[case(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"PATCH","kind":{"kind":"Pod"}}}"#, "invalid_field")]
    #[case(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"kind":"Pod"},"object":null}}"#, "invalid_field")]
    #[case(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":"Pod","object":{}}}"#, "invalid_field")]
    fn rejects_malformed_reviews(#[case] body: &str, #[case] reason: &str) {
        let err = Review::parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.reason(), reason, "{err}");
    }

    #[test]
    fn rejects_deep_nesting_without_overflowing_the_stack() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            Review::parse(body.as_bytes()).unwrap_err(),
            ReviewError::TooDeep
        );
    }

    #[test]
    fn error_messages_name_the_field() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"kind":"Pod"},"object":[]}}"#;
        assert_eq!(
            Review::parse(body.as_bytes()).unwrap_err().to_string(),
            "request.object is invalid: not an object"
        );
    }
}
