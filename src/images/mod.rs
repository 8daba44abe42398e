//! Container image trust: verifying that an image admitted to the cluster was signed by a configured key.
//!
//! [`signature`] is the pure, offline layer: it checks signature material that something else fetched from
//! the registry. It does no I/O and holds no state.

pub mod signature;
