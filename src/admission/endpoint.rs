//! The two webhook endpoints a review is answered at, shared by the decision path and the response writer.

/// Which webhook endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Validating webhook: allowed or denied, with warnings; never a patch.
    Validate,
    /// Mutating webhook: always allowed unless a mutation policy failed closed; carries the patch.
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}
