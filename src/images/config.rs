//! `imageVerification` in `regate.yaml`: which public keys exist, how registries are reached, how long
//! verdicts are cached, and what a registry failure means. The Rust verifier uses the keys and registry
//! settings; the trusted-images policy reads the same section (`data.regate.config.imageVerification`)
//! to decide which signers a tenant or Harbor project accepts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::registry::{RegistryOptions, DEFAULT_MAX_BLOB_BYTES};
use super::signature::PublicKey;

/// The `imageVerification` section.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageVerificationConfig {
    /// Verify signatures in `regate serve` and `regate eval` (`regate check --verify-images` turns it on
    /// for one run).
    #[serde(default)]
    pub enabled: bool,
    /// Named public keys (cosign.pub PEM, inline or from a file). Names are what policies and
    /// `tenancy.tenants.<t>.signingKeys` / `projectKeys` refer to; rotating a key is adding the new name
    /// next to the old one, then removing the old one.
    #[serde(default)]
    pub keys: BTreeMap<String, KeySource>,
    /// Harbor project -> key names whose signatures that project's images may carry (shared projects
    /// such as base images). Read by the trusted-images policy.
    #[serde(default)]
    pub project_keys: BTreeMap<String, Vec<String>>,
    /// `deny` (default): a registry that cannot be asked denies the image; `allow`: admit with a warning.
    /// Read by the trusted-images policy.
    #[serde(default)]
    pub on_registry_error: OnRegistryError,
    #[serde(default)]
    pub registry: RegistrySettings,
    #[serde(default)]
    pub cache: CacheSettings,
}

/// Where a key's PEM comes from: exactly one of `pem` and `file`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySource {
    #[serde(default)]
    pub pem: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnRegistryError {
    #[default]
    Deny,
    Allow,
}

/// How registries are reached.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySettings {
    /// A docker config JSON (the image-pull-secret format, `.dockerconfigjson`) with credentials.
    #[serde(default)]
    pub docker_config: Option<PathBuf>,
    /// Extra CA certificates (PEM) for registries with a private CA.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// Registries (`host` or `host:port`) reachable over plain HTTP; every other one is HTTPS only.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Upper bound for one registry request; the request deadline bounds all of them together.
    #[serde(default = "RegistrySettings::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest signature or bundle blob fetched.
    #[serde(default = "RegistrySettings::default_max_blob_bytes")]
    pub max_blob_bytes: usize,
}

impl RegistrySettings {
    fn default_timeout_ms() -> u64 {
        1_500
    }
    fn default_max_blob_bytes() -> usize {
        DEFAULT_MAX_BLOB_BYTES
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            docker_config: None,
            ca_files: Vec::new(),
            insecure: Vec::new(),
            timeout_ms: Self::default_timeout_ms(),
            max_blob_bytes: Self::default_max_blob_bytes(),
        }
    }
}

/// Verdict cache bounds: keyed by `registry/repository@digest`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheSettings {
    /// How long a verified digest stays verified without asking the registry again.
    #[serde(default = "CacheSettings::default_positive")]
    pub positive_ttl_seconds: u64,
    /// How long "no trusted signature" is remembered (short: a signature may be pushed right after).
    #[serde(default = "CacheSettings::default_negative")]
    pub negative_ttl_seconds: u64,
    /// Entries kept at most (least recently used are dropped first).
    #[serde(default = "CacheSettings::default_entries")]
    pub max_entries: usize,
}

impl CacheSettings {
    fn default_positive() -> u64 {
        300
    }
    fn default_negative() -> u64 {
        30
    }
    fn default_entries() -> usize {
        10_000
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            positive_ttl_seconds: Self::default_positive(),
            negative_ttl_seconds: Self::default_negative(),
            max_entries: Self::default_entries(),
        }
    }
}

/// A named key that could not be loaded; `Display` names the key and file.
#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error("imageVerification.keys.{name}: set exactly one of `pem` and `file`")]
    Source { name: String },
    #[error("imageVerification.keys.{name}: cannot read {}: {source}", file.display())]
    Read {
        name: String,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("imageVerification.keys.{name}{}: {detail}", file.as_ref().map(|f| format!(" ({})", f.display())).unwrap_or_default())]
    Invalid {
        name: String,
        file: Option<PathBuf>,
        detail: String,
    },
}

/// A configured key with its name.
#[derive(Debug, Clone)]
pub struct NamedKey {
    pub name: String,
    pub key: PublicKey,
}

impl ImageVerificationConfig {
    /// Loads every configured key (files are read now, so a missing file fails at start, not at the
    /// first admission).
    pub fn load_keys(&self) -> Result<Vec<NamedKey>, KeyConfigError> {
        let mut out = Vec::new();
        for (name, source) in &self.keys {
            let (pem, file) = match (&source.pem, &source.file) {
                (Some(pem), None) => (pem.clone(), None),
                (None, Some(file)) => (
                    std::fs::read_to_string(file).map_err(|e| KeyConfigError::Read {
                        name: name.clone(),
                        file: file.clone(),
                        source: e,
                    })?,
                    Some(file.clone()),
                ),
                _ => return Err(KeyConfigError::Source { name: name.clone() }),
            };
            let key = PublicKey::from_pem(&pem).map_err(|e| KeyConfigError::Invalid {
                name: name.clone(),
                file,
                detail: e.to_string(),
            })?;
            out.push(NamedKey {
                name: name.clone(),
                key,
            });
        }
        Ok(out)
    }

    /// The registry client options.
    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            docker_config: self.registry.docker_config.clone(),
            ca_files: self.registry.ca_files.clone(),
            insecure: self.registry.insecure.clone(),
            request_timeout: Duration::from_millis(self.registry.timeout_ms.max(1)),
            max_blob_bytes: self.registry.max_blob_bytes,
        }
    }
}
