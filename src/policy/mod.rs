//! The policy engine: bundle sources, configuration, metadata, match/exclude, loading and compiling a
//! policy set, evaluating requests into decisions, writing decisions as AdmissionReview responses, and
//! the Rego unit-test runner. It reads requests through [`crate::admission`]; admission never reads it.

pub mod ast;
pub mod bundle;
pub mod config;
pub mod decide;
pub mod decision;
pub mod enforcement;
pub mod evaluate;
pub mod import_alias;
pub mod load;
pub mod loader;
pub mod matcher;
pub mod metadata;
pub mod request_dependence;
pub mod response;
pub mod rule_reuse;
pub mod testrunner;
pub mod visit;

pub use decide::{decide, failure_decision, Active, FailureMode};
pub use decision::{Decision, PolicyResult, RuleKind};
pub use enforcement::{Action, Severity};
pub use evaluate::{Evaluator, Extras};
pub use load::{BackendChoice, LoadError, LoadOptions, Policy, PolicySet};
pub use loader::{build_bundle, load, Bundle, BundleError, BundleSpec, Layers};
