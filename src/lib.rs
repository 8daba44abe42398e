//! regate: a policy-as-code admission webhook and CI checker for multi-tenant Kubernetes, built on the
//! regorus Rego engine. One engine, three front doors that always agree:
//!
//! - [`cli::check`]: CI dry-run over manifests (`helm template ... | regate check -`), evaluated by
//!   [`check`];
//! - [`cli::eval`] and [`cli::test`]: replay one AdmissionReview; unit-test Rego with coverage;
//! - `regate serve`: the HTTPS validating and mutating webhook.
//!
//! Data flows one way: request ([`admission`]) → input → evaluation ([`policy`], with cluster state from
//! [`cluster`]) → decision → AdmissionReview response ([`policy::response`]) or report ([`report`]).

pub mod admission;
pub mod audit;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod duration;
mod engine_compat;
pub mod gatekeeper;
pub mod images;
pub mod manifest;
pub mod memory;
pub mod policy;
pub mod report;
pub mod server;
pub mod workers;
