//! Parsing an AdmissionReview from raw bytes: the envelope is checked field by field, and the request is
//! kept as the raw JSON tree it arrived as (never round-tripped through typed structs): as `serde_json`
//! JSON ([`Review`]), or read straight into the engine's value ([`ValueReview`], the server's path, one
//! pass over the body). Both run the same checks through [`Tree`] and fail with the same errors.

use regorus::Value;
use serde_json::Value as Json;

use super::facts::Tree;
use super::RequestFacts;

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
    /// The envelope's `apiVersion`, described: a string quoted, another value by its type, or
    /// `missing`.
    #[error("apiVersion is {0}; expected admission.k8s.io/v1")]
    WrongApiVersion(String),
    /// The envelope's `kind`, described as `apiVersion` is.
    #[error("kind is {0}; expected AdmissionReview")]
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
        let value: Json = serde_json::from_slice(body).map_err(json_error)?;
        Self::from_json(value)
    }

    /// Validates an already parsed AdmissionReview.
    pub fn from_json(value: Json) -> Result<Review, ReviewError> {
        let api_version = check_envelope(&value)?;
        let Json::Object(mut envelope) = value else {
            return Err(ReviewError::NotAnObject);
        };
        let request = match envelope.remove("request") {
            Some(request @ Json::Object(_)) => request,
            _ => return Err(ReviewError::MissingRequest),
        };
        validate_request(&request)?;
        let uid = str_of(&request, "uid");
        Ok(Review {
            api_version,
            uid,
            request,
        })
    }
}

/// A validated AdmissionReview whose request was read straight into the engine's value: what the
/// server evaluates (it never builds a `serde_json` tree for the request).
#[derive(Debug, Clone)]
pub struct ValueReview {
    pub api_version: String,
    pub uid: String,
    /// The `request` object as received, as the engine's value.
    pub request: Value,
}

impl ValueReview {
    /// Parses and validates an AdmissionReview body, with the same checks and errors as [`Review::parse`].
    pub fn parse(body: &[u8]) -> Result<ValueReview, ReviewError> {
        let value = super::value_json::parse(body).map_err(json_error)?;
        let api_version = check_envelope(&value)?;
        let request = match value.field("request") {
            Some(request @ Value::Object(_)) => request.clone(),
            _ => return Err(ReviewError::MissingRequest),
        };
        validate_request(&request)?;
        let uid = str_of(&request, "uid");
        Ok(ValueReview {
            api_version,
            uid,
            request,
        })
    }
}

/// A review read for the endpoint that answers it: `/validate` reads the request straight into the
/// engine's value; `/mutate` reads JSON, since patches are computed and checked against the JSON object.
#[derive(Debug, Clone)]
pub enum ParsedReview {
    Json(Review),
    Value(ValueReview),
}

impl ParsedReview {
    /// Reads `body` as JSON (`as_json`) or straight into the engine's value.
    pub fn parse(body: &[u8], as_json: bool) -> Result<ParsedReview, ReviewError> {
        if as_json {
            Review::parse(body).map(ParsedReview::Json)
        } else {
            ValueReview::parse(body).map(ParsedReview::Value)
        }
    }

    pub fn uid(&self) -> &str {
        match self {
            ParsedReview::Json(r) => &r.uid,
            ParsedReview::Value(r) => &r.uid,
        }
    }

    pub fn api_version(&self) -> &str {
        match self {
            ParsedReview::Json(r) => &r.api_version,
            ParsedReview::Value(r) => &r.api_version,
        }
    }

    pub fn request(&self) -> RequestRef<'_> {
        match self {
            ParsedReview::Json(r) => RequestRef::Json(&r.request),
            ParsedReview::Value(r) => RequestRef::Value(&r.request),
        }
    }
}

/// A borrowed AdmissionRequest, as JSON or as the engine's value.
#[derive(Debug, Clone, Copy)]
pub enum RequestRef<'a> {
    Json(&'a Json),
    Value(&'a Value),
}

impl<'a> RequestRef<'a> {
    pub fn facts(self) -> RequestFacts<'a> {
        match self {
            RequestRef::Json(r) => RequestFacts::from_request(r),
            RequestRef::Value(r) => RequestFacts::from_value(r),
        }
    }

    /// The request's top-level string field `key` (empty when missing or not a string).
    pub fn text(self, key: &str) -> &'a str {
        let value = match self {
            RequestRef::Json(r) => r.field(key).and_then(Tree::as_text),
            RequestRef::Value(r) => r.field(key).and_then(Tree::as_text),
        };
        value.unwrap_or_default()
    }

    /// True when the request carries an `object` that is an object.
    pub fn has_object(self) -> bool {
        match self {
            RequestRef::Json(r) => r.field("object").is_some_and(Tree::is_map),
            RequestRef::Value(r) => r.field("object").is_some_and(Tree::is_map),
        }
    }

    /// The request as JSON: borrowed, or written out from the value (mutation, which computes its patches
    /// against JSON; the server reads `/mutate` bodies as JSON, so it never pays this).
    pub fn to_json(self) -> std::borrow::Cow<'a, Json> {
        match self {
            RequestRef::Json(r) => std::borrow::Cow::Borrowed(r),
            RequestRef::Value(r) => {
                std::borrow::Cow::Owned(serde_json::to_value(r).unwrap_or(Json::Null))
            }
        }
    }
}

fn json_error(err: serde_json::Error) -> ReviewError {
    if err.to_string().contains("recursion limit exceeded") {
        ReviewError::TooDeep
    } else {
        ReviewError::InvalidJson(err.to_string())
    }
}

/// The envelope's `apiVersion` and `kind`; returns the apiVersion.
fn check_envelope<T: Tree>(envelope: &T) -> Result<String, ReviewError> {
    if !envelope.is_map() {
        return Err(ReviewError::NotAnObject);
    }
    let api_version = match envelope.field("apiVersion") {
        Some(v)
            if v.as_text()
                .is_some_and(|v| SUPPORTED_API_VERSIONS.contains(&v)) =>
        {
            v.as_text().unwrap_or_default().to_owned()
        }
        Some(other) => return Err(ReviewError::WrongApiVersion(other.describe())),
        None => return Err(ReviewError::WrongApiVersion("missing".to_owned())),
    };
    match envelope.field("kind") {
        Some(k) if k.as_text() == Some("AdmissionReview") => {}
        Some(other) => return Err(ReviewError::WrongKind(other.describe())),
        None => return Err(ReviewError::WrongKind("missing".to_owned())),
    }
    Ok(api_version)
}

fn str_of<T: Tree>(request: &T, key: &str) -> String {
    request
        .field(key)
        .and_then(Tree::as_text)
        .unwrap_or_default()
        .to_string()
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ReviewError {
    ReviewError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Checks the request fields the engine relies on. Everything else is passed through untouched.
pub fn validate_request<T: Tree + ?Sized>(request: &T) -> Result<(), ReviewError> {
    match request.field("uid").and_then(Tree::as_text) {
        Some(uid) if !uid.trim().is_empty() => {}
        _ => return Err(ReviewError::MissingUid),
    }
    let operation = match request.field("operation").and_then(Tree::as_text) {
        Some(op) if OPERATIONS.contains(&op) => op,
        Some(op) => {
            return Err(invalid(
                "operation",
                format!("{op:?} is not one of CREATE, UPDATE, DELETE, CONNECT"),
            ))
        }
        None => return Err(invalid("operation", "missing or not a string")),
    };
    match request.field("kind") {
        Some(kind) if kind.is_map() => match kind.field("kind").and_then(Tree::as_text) {
            Some(k) if !k.is_empty() => {}
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
        if let Some(v) = request.field(field) {
            if !v.is_text() && !v.is_nothing() {
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
    let object = request.field("object").filter(|v| !v.is_nothing());
    let old = request.field("oldObject").filter(|v| !v.is_nothing());
    if let Some(o) = object {
        if !o.is_map() {
            return Err(invalid("object", "not an object"));
        }
    }
    if let Some(o) = old {
        if !o.is_map() {
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
        // The server's reading fails the same way, with the same message.
        assert_eq!(ValueReview::parse(body.as_bytes()).unwrap_err(), err);
    }

    /// Every review of the shared corpus and of testdata reads into the value `to_value` makes of its
    /// JSON reading, with the same uid and apiVersion and the same facts.
    #[test]
    fn both_readings_agree_on_every_review() {
        let mut files = Vec::new();
        for dir in [
            "../shared/corpus/admission/reviews",
            "testdata/policies/bypass",
        ] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                eprintln!("skipping {}: absent", dir.display());
                continue;
            };
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json")),
            );
        }
        let mut compared = 0;
        for path in &files {
            let body = std::fs::read(path).expect("readable review");
            match (Review::parse(&body), ValueReview::parse(&body)) {
                (Ok(json), Ok(value)) => {
                    assert_eq!(
                        value.request,
                        crate::admission::value_json::to_value(&json.request),
                        "{}",
                        path.display()
                    );
                    assert_eq!(
                        (&value.uid, &value.api_version),
                        (&json.uid, &json.api_version)
                    );
                    assert_eq!(
                        RequestFacts::from_value(&value.request),
                        RequestFacts::from_request(&json.request),
                        "{}",
                        path.display()
                    );
                    compared += 1;
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{}", path.display()),
                (a, b) => panic!("{}: {:?} vs {:?}", path.display(), a.err(), b.err()),
            }
        }
        assert!(files.is_empty() || compared > 0, "no review was compared");
    }

    #[test]
    fn rejects_deep_nesting_without_overflowing_the_stack() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            Review::parse(body.as_bytes()).unwrap_err(),
            ReviewError::TooDeep
        );
        assert_eq!(
            ValueReview::parse(body.as_bytes()).unwrap_err(),
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
