//! Container images: parsing image references and talking to OCI registries.
//!
//! - [`reference`]: the `registry/repository[:tag][@digest]` grammar of distribution/reference,
//!   normalised as Docker does (`nginx` → `docker.io/library/nginx`);
//! - [`registry`]: a small OCI distribution client (resolve tags, fetch manifests, blobs and
//!   referrers, push for tests and signing) with docker-config credentials and bearer tokens.
//!
//! Nothing here verifies signatures; it only fetches bytes and checks their digests.

pub mod reference;
pub mod registry;
