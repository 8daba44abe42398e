//! The AdmissionReview wire contract shared by all three entry points: parsing reviews from raw JSON,
//! the request facts the engine reads, synthetic requests for `regate check`, JSON Patch handling, and
//! writing responses.

pub mod facts;
pub mod patch;
pub mod response;
pub mod review;
pub mod synthesize;

pub use facts::RequestFacts;
pub use response::Endpoint;
pub use review::{ParsedReview, RequestRef, Review, ReviewError, ValueReview};
