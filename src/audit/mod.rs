//! Background audit of the objects already stored in a cluster (`regate audit`, and `regate serve
//! --audit-interval`): which kinds the loaded policies match ([`kinds`]), which policies cannot be
//! judged without an admission request ([`crate::policy::request_dependence`]), the paginated listing and evaluation
//! of every object ([`scan`]) at a bounded request rate ([`pace`]), the conclusion per object and
//! policy ([`outcome`]), the policy reports written into the cluster ([`reports`]), one whole audit
//! ([`run`]) and the per-policy, per-namespace and per-tenant summary ([`summary`]).

pub mod kinds;
pub mod outcome;
pub mod pace;
pub mod reports;
pub mod run;
pub mod scan;
pub mod summary;
