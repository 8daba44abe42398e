//! The AdmissionReview wire contract shared by all three entry points: parsing reviews from raw JSON,
//! the endpoints, the request facts the engine reads, JSON read into the engine's values, synthetic
//! requests for `regate check` and JSON Patch handling. It does not read the policy engine; the engine
//! reads it, and writes decisions back as responses ([`crate::policy::response`]).

pub mod endpoint;
pub mod facts;
pub mod patch;
pub mod review;
pub mod synthesize;
pub mod value_json;

pub use endpoint::Endpoint;
pub use facts::RequestFacts;
pub use review::{ParsedReview, RequestRef, Review, ReviewError, ValueReview};
