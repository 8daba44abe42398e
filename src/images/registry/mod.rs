//! A small OCI distribution client: resolve tags to digests, fetch manifests, blobs and referrers,
//! and push blobs and manifests (for tests and signing).
//!
//! - [`client`]: [`RegistryClient`], the operations, each bounded in size and checked against its digest;
//! - [`transport`]: HTTPS (rustls/ring, native roots plus extra CA files) or, for listed hosts, plain
//!   HTTP; timeouts, bounded body reads, error mapping;
//! - [`auth`]: `WWW-Authenticate` parsing, Basic and Bearer (token service) flows, the token cache;
//! - [`docker_config`]: credentials from a docker `config.json` / `.dockerconfigjson`;
//! - [`referrers`]: the OCI 1.1 referrers API and its tag-schema fallback.
//!
//! Errors are typed: callers tell [`RegistryError::NotFound`] (e.g. no signature tag → unsigned) from
//! everything else (registry trouble → fail closed).

pub mod auth;
pub mod client;
pub mod docker_config;
pub mod referrers;
pub mod transport;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use client::RegistryClient;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The manifest media types this client asks for, in its `Accept` header.
pub const MANIFEST_ACCEPT: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];
/// Largest manifest (or index) accepted.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Default for [`RegistryOptions::max_blob_bytes`].
pub const DEFAULT_MAX_BLOB_BYTES: usize = 4 * 1024 * 1024;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// A docker `config.json` (or `.dockerconfigjson`) with `auths`; `None` means anonymous only.
    pub docker_config: Option<PathBuf>,
    /// Extra PEM CA certificates trusted in addition to the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Registries (`host` or `host:port`) that may be reached over plain HTTP; all others are HTTPS only.
    pub insecure: Vec<String>,
    /// Upper bound for one request, connect to last body byte (token requests included).
    pub request_timeout: Duration,
    /// Largest blob [`RegistryClient::get_blob`] accepts.
    pub max_blob_bytes: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            docker_config: None,
            ca_files: Vec::new(),
            insecure: Vec::new(),
            request_timeout: Duration::from_secs(10),
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        }
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: unreachable: {source}")]
    Unreachable {
        registry: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("registry {registry}: no answer within {timeout:?}")]
    Timeout { registry: String, timeout: Duration },
    #[error("registry {registry}: TLS failed: {detail}")]
    Tls { registry: String, detail: String },
    #[error("registry {registry}: unauthorized for repository {repository}: {detail}")]
    Unauthorized {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("registry {registry}: protocol error: {detail}")]
    Protocol { registry: String, detail: String },
    #[error("registry {registry}: {what} is larger than the limit of {limit} bytes")]
    TooLarge {
        registry: String,
        what: String,
        limit: usize,
    },
    #[error("registry {registry}: digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "registry {registry}: plain HTTP is not allowed for this host (list it as insecure to allow it)"
    )]
    InsecureNotAllowed { registry: String },
    #[error("registry {registry}: invalid request: {detail}")]
    InvalidInput { registry: String, detail: String },
    #[error("registry configuration {}: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
}

impl RegistryError {
    /// True for [`RegistryError::NotFound`]: the thing asked for does not exist (as opposed to the
    /// registry failing to answer).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}

/// A manifest's identity, as [`RegistryClient::resolve`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// `sha256:<hex>`.
    pub digest: String,
    /// The manifest's media type (from `Content-Type`), possibly empty when the registry sent none.
    pub media_type: String,
}

/// A fetched manifest: the exact bytes, whose sha256 is `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// An OCI content descriptor (as found in an image index or referrers response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn descriptor_json_roundtrip() {
        let d: Descriptor = serde_json::from_str(
            r#"{"mediaType":"m","digest":"sha256:x","size":3,"artifactType":"a","annotations":{"k":"v"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(d.artifact_type.as_deref(), Some("a"));
        assert_eq!(d.annotations.get("k").map(String::as_str), Some("v"));
    }
}
