//! Container image trust: parsing references, fetching from OCI registries, verifying cosign signatures.
//!
//! - [`reference`]: the `registry/repository[:tag][@digest]` grammar of distribution/reference,
//!   normalised as Docker does (`nginx` → `docker.io/library/nginx`);
//! - [`registry`]: a small OCI distribution client (resolve tags, fetch manifests, blobs and
//!   referrers, push for tests and signing) with docker-config credentials and bearer tokens; it only
//!   fetches bytes and checks their digests;
//! - [`signature`]: the pure, offline layer that checks signature material the registry client fetched;
//!   no I/O, no state.

pub mod config;
pub mod reference;
pub mod registry;
pub mod signature;
pub mod verify;
