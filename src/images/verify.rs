//! Image signature verification at admission time: for each image of a request, resolve the reference
//! to a digest, find its cosign signatures (legacy `sha256-<hex>.sig` tag and OCI 1.1 referrers with
//! sigstore bundles), verify them against every configured key, and report a verdict per image that
//! the trusted-images policy reads as `input.images[<image as written>]`.
//!
//! The verifier states facts (digest, which named keys signed it, why not); the policy decides which
//! signers a tenant or Harbor project accepts. Verdicts are cached by `registry/repository@digest`
//! (positive and negative TTLs, bounded LRU); concurrent lookups of the same digest share one registry
//! round trip; every lookup is bounded by the request deadline. Registry failures are never cached and
//! are reported as `registryError`, which the policy turns into a denial unless configured otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::{json, Value as Json};

use super::config::{ImageVerificationConfig, KeyConfigError, NamedKey};
use super::reference::ImageReference;
use super::registry::{referrers::referrers_tag, RegistryClient, RegistryError};
use super::signature::{
    verify_bundle, verify_simple_signing, PublicKey, VerifyError, BUNDLE_MEDIA_TYPE_V0_3,
};
use crate::admission::facts::Tree;

/// Media type of cosign's legacy simple-signing layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding a legacy signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Signatures examined per layout and digest: a registry (or an attacker with push rights) listing
/// thousands cannot turn one admission into thousands of fetches.
pub const MAX_SIGNATURES: usize = 32;

/// The verdict for one image reference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// At least one signature over this digest verified with a configured key.
    pub verified: bool,
    /// The digest the reference resolved to (`sha256:<hex>`), empty when it could not be resolved.
    pub digest: String,
    /// Names of the configured keys whose signatures verified.
    pub signers: Vec<String>,
    /// Why the image is not verified (or a summary of what verified it).
    pub reason: String,
    /// The registry could not be asked (unreachable, timeout, auth, protocol): the configured
    /// `onRegistryError` applies.
    pub registry_error: bool,
    /// Served from the verdict cache.
    pub cached: bool,
    /// What was looked at, one line per signature found (for `verify-image` and logs).
    pub details: Vec<String>,
}

impl Verdict {
    /// A verdict that is not verified, for `reason` (a registry error when `registry_error`).
    pub fn failed(reason: impl Into<String>, registry_error: bool) -> Verdict {
        Verdict {
            reason: reason.into(),
            registry_error,
            ..Default::default()
        }
    }

    /// The policy-input form (`input.images[ref]`).
    pub fn to_json(&self) -> Json {
        json!({
            "verified": self.verified,
            "digest": self.digest,
            "signers": self.signers,
            "reason": self.reason,
            "registryError": self.registry_error,
        })
    }
}

/// What the verifier reports to whoever keeps metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    CacheHit,
    CacheMiss,
    /// A registry round trip for one digest finished: verified, unverified or error, and how long.
    Lookup {
        outcome: &'static str,
        duration: Duration,
    },
    /// A registry call failed (resolve or signature fetch).
    RegistryError,
}

/// Receives [`Event`]s (the server's metrics).
pub type Observer = Arc<dyn Fn(Event) + Send + Sync>;

/// What signature discovery found for one digest (shared by concurrent lookups, cached).
#[derive(Debug, Clone)]
struct Signatures {
    signers: Vec<String>,
    /// One line per signature looked at, with where it was found.
    details: Vec<String>,
    /// Why signatures did not verify, short and without locations (deduplicated).
    problems: Vec<String>,
    /// Set when the registry failed; such results are not cached.
    registry_error: Option<String>,
}

struct CacheEntry {
    signatures: Signatures,
    expires: Instant,
}

struct Inner {
    client: RegistryClient,
    keys: Vec<NamedKey>,
    public_keys: Vec<PublicKey>,
    /// `(fingerprint, name)` of every configured key, computed once.
    fingerprints: Vec<(String, String)>,
    positive_ttl: Duration,
    negative_ttl: Duration,
    cache: Mutex<lru::LruCache<String, CacheEntry>>,
    in_flight: Mutex<HashMap<String, Shared<BoxFuture<'static, Signatures>>>>,
    observer: Option<Observer>,
}

/// The image verifier; cheap to clone (shared state inside).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// A verifier that could not be built; names the key or registry setting.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error(transparent)]
    Key(#[from] KeyConfigError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Verifier {
    /// Builds a verifier from the `imageVerification` section (keys are read now).
    pub fn new(
        config: &ImageVerificationConfig,
        observer: Option<Observer>,
    ) -> Result<Verifier, VerifierError> {
        let keys = config.load_keys()?;
        Self::with_keys(config, keys, observer)
    }

    /// Like [`Verifier::new`] with keys given explicitly (`verify-image --key`).
    pub fn with_keys(
        config: &ImageVerificationConfig,
        keys: Vec<NamedKey>,
        observer: Option<Observer>,
    ) -> Result<Verifier, VerifierError> {
        let client = RegistryClient::new(config.registry_options())?;
        let entries =
            NonZeroUsize::new(config.cache.max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Verifier {
            inner: Arc::new(Inner {
                client,
                public_keys: keys.iter().map(|k| k.key.clone()).collect(),
                fingerprints: keys
                    .iter()
                    .map(|k| (k.key.fingerprint(), k.name.clone()))
                    .collect(),
                keys,
                positive_ttl: Duration::from_secs(config.cache.positive_ttl_seconds),
                negative_ttl: Duration::from_secs(config.cache.negative_ttl_seconds),
                cache: Mutex::new(lru::LruCache::new(entries)),
                in_flight: Mutex::new(HashMap::new()),
                observer,
            }),
        })
    }

    /// The configured key names.
    pub fn key_names(&self) -> Vec<String> {
        self.inner.keys.iter().map(|k| k.name.clone()).collect()
    }

    fn emit(&self, event: Event) {
        if let Some(o) = &self.inner.observer {
            o(event);
        }
    }

    /// Verdicts for every image in `images`, looked up concurrently; whatever is not finished at
    /// `deadline` gets a registry-error verdict naming the deadline. Besides each reference as written,
    /// a verified reference without a digest is also reported under `reference@digest`, the form the
    /// trusted-images mutation pins it to (so validation after mutation finds the same verdict).
    pub async fn verify_all(
        &self,
        images: &[String],
        deadline: Instant,
    ) -> BTreeMap<String, Verdict> {
        let unique: BTreeSet<&String> = images.iter().collect();
        let lookups = unique.into_iter().map(|image| {
            let this = self.clone();
            async move {
                let verdict =
                    match tokio::time::timeout_at(deadline.into(), this.verify(image)).await {
                        Ok(v) => v,
                        Err(_) => Verdict::failed(
                            "registry lookups did not finish within the request deadline",
                            true,
                        ),
                    };
                (image.clone(), verdict)
            }
        });
        let mut out = BTreeMap::new();
        for (image, verdict) in futures::future::join_all(lookups).await {
            if verdict.verified && !image.contains('@') && !verdict.digest.is_empty() {
                out.insert(format!("{image}@{}", verdict.digest), verdict.clone());
            }
            out.insert(image, verdict);
        }
        out
    }

    /// The verdict for one image reference as written in a pod spec.
    pub async fn verify(&self, image: &str) -> Verdict {
        let reference = match ImageReference::parse(image) {
            Ok(r) => r,
            Err(e) => return Verdict::failed(format!("invalid image reference: {e}"), false),
        };
        let digest = match &reference.digest {
            Some(d) => d.clone(),
            None => match self.inner.client.resolve(&reference).await {
                Ok(m) => m.digest,
                Err(e) if e.is_not_found() => {
                    return Verdict::failed(format!("image not found in the registry: {e}"), false)
                }
                Err(e) => {
                    self.emit(Event::RegistryError);
                    return Verdict::failed(
                        format!("cannot resolve the tag to a digest: {e}"),
                        true,
                    );
                }
            },
        };
        let (signatures, cached) = self
            .signatures(&reference.registry, &reference.repository, &digest)
            .await;
        let mut verdict = Verdict {
            verified: !signatures.signers.is_empty(),
            digest,
            signers: signatures.signers.clone(),
            registry_error: signatures.registry_error.is_some() && signatures.signers.is_empty(),
            cached,
            details: signatures.details.clone(),
            reason: String::new(),
        };
        verdict.reason = if verdict.verified {
            format!("signed by {}", verdict.signers.join(", "))
        } else if let Some(err) = &signatures.registry_error {
            format!("cannot read signatures: {err}")
        } else if signatures.details.is_empty() {
            "no cosign signature found (neither a .sig tag nor a sigstore bundle referrer)".into()
        } else {
            signatures.problems.join("; ")
        };
        verdict
    }

    /// Signature discovery for one digest: from the cache, from a lookup already in flight, or from a
    /// new registry round trip (which finishes and fills the cache even if the asking request gives up).
    async fn signatures(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> (Signatures, bool) {
        let key = format!("{registry}/{repository}@{digest}");
        {
            let mut cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = cache.get(&key) {
                if entry.expires > Instant::now() {
                    self.emit(Event::CacheHit);
                    return (entry.signatures.clone(), true);
                }
                cache.pop(&key);
            }
        }
        self.emit(Event::CacheMiss);
        let shared = {
            let mut in_flight = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            in_flight
                .entry(key.clone())
                .or_insert_with(|| {
                    let this = self.clone();
                    let (registry, repository, digest, key) = (
                        registry.to_string(),
                        repository.to_string(),
                        digest.to_string(),
                        key.clone(),
                    );
                    let task = tokio::spawn(async move {
                        let started = Instant::now();
                        let found = this.discover(&registry, &repository, &digest).await;
                        let outcome = if !found.signers.is_empty() {
                            "verified"
                        } else if found.registry_error.is_some() {
                            "error"
                        } else {
                            "unverified"
                        };
                        this.emit(Event::Lookup {
                            outcome,
                            duration: started.elapsed(),
                        });
                        this.store(&key, &found);
                        found
                    });
                    async move {
                        task.await.unwrap_or_else(|e| Signatures {
                            signers: Vec::new(),
                            details: Vec::new(),
                            problems: Vec::new(),
                            registry_error: Some(format!("signature lookup failed: {e}")),
                        })
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        (shared.await, false)
    }

    fn store(&self, key: &str, found: &Signatures) {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        if found.registry_error.is_some() && found.signers.is_empty() {
            return;
        }
        let ttl = if found.signers.is_empty() {
            self.inner.negative_ttl
        } else {
            self.inner.positive_ttl
        };
        if ttl.is_zero() {
            return;
        }
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(
                key.to_string(),
                CacheEntry {
                    signatures: found.clone(),
                    expires: Instant::now() + ttl,
                },
            );
    }

    /// Reads both signature layouts from the registry and verifies what it finds.
    async fn discover(&self, registry: &str, repository: &str, digest: &str) -> Signatures {
        let mut found = Findings::default();
        self.legacy_signatures(registry, repository, digest, &mut found)
            .await;
        self.referrer_bundles(registry, repository, digest, &mut found)
            .await;
        Signatures {
            signers: found.signers.into_iter().collect(),
            details: found.details,
            problems: found.problems.into_iter().collect(),
            registry_error: found.registry_error,
        }
    }

    /// The legacy layout: tag `sha256-<hex>.sig`, one simple-signing layer per signature.
    async fn legacy_signatures(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        found: &mut Findings,
    ) {
        let client = &self.inner.client;
        let sig_tag = format!("{}.sig", referrers_tag(digest));
        let manifest = match client.get_manifest(registry, repository, &sig_tag).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return,
            Err(e) => return self.registry_failed(found, &e),
        };
        let Ok(doc) = serde_json::from_slice::<Json>(&manifest.bytes) else {
            return found.malformed(
                &sig_tag,
                "manifest is not JSON",
                "malformed signature manifest",
            );
        };
        let layers = doc["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        found.note_excess(&sig_tag, layers.len());
        for (i, layer) in layers.iter().take(MAX_SIGNATURES).enumerate() {
            if layer["mediaType"].as_str() != Some(SIMPLE_SIGNING_MEDIA_TYPE) {
                continue;
            }
            let what = format!("{sig_tag} layer {i}");
            let (Some(blob), Some(sig)) = (
                layer["digest"].as_str(),
                layer["annotations"][SIGNATURE_ANNOTATION].as_str(),
            ) else {
                found.malformed(
                    &what,
                    "no digest or signature annotation",
                    "malformed signature layer",
                );
                continue;
            };
            match client.get_blob(registry, repository, blob).await {
                Ok(payload) => {
                    let outcome =
                        verify_simple_signing(&payload, sig, &self.inner.public_keys, digest)
                            .map(|v| v.key_fingerprint);
                    self.record(found, &what, outcome);
                }
                Err(e) => self.registry_failed(found, &e),
            }
        }
    }

    /// OCI 1.1 referrers (the API, or the `sha256-<hex>` index tag) carrying sigstore bundles.
    async fn referrer_bundles(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        found: &mut Findings,
    ) {
        let client = &self.inner.client;
        let descriptors = match client
            .referrers(registry, repository, digest, Some(BUNDLE_MEDIA_TYPE_V0_3))
            .await
        {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return,
            Err(e) => return self.registry_failed(found, &e),
        };
        found.note_excess("signature referrers", descriptors.len());
        for d in descriptors.iter().take(MAX_SIGNATURES) {
            let what = format!("referrer {}", short(&d.digest));
            let manifest = match client.get_manifest(registry, repository, &d.digest).await {
                Ok(m) => m,
                Err(e) => {
                    self.registry_failed(found, &e);
                    continue;
                }
            };
            let Ok(doc) = serde_json::from_slice::<Json>(&manifest.bytes) else {
                found.malformed(&what, "manifest is not JSON", "malformed referrer manifest");
                continue;
            };
            let layers = doc["layers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            for layer in layers.iter().take(MAX_SIGNATURES) {
                let is_bundle = layer["mediaType"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("application/vnd.dev.sigstore.bundle"));
                let Some(blob) = layer["digest"].as_str().filter(|_| is_bundle) else {
                    continue;
                };
                match client.get_blob(registry, repository, blob).await {
                    Ok(bundle) => {
                        let outcome = verify_bundle(&bundle, &self.inner.public_keys, digest)
                            .map(|v| v.key_fingerprint);
                        self.record(found, &what, outcome);
                    }
                    Err(e) => self.registry_failed(found, &e),
                }
            }
        }
    }

    /// Records one signature's outcome: the key names that verified it, or why it did not.
    fn record(&self, found: &mut Findings, what: &str, outcome: Result<String, VerifyError>) {
        match outcome {
            Ok(fingerprint) => {
                let names: Vec<String> = self
                    .inner
                    .fingerprints
                    .iter()
                    .filter(|(f, _)| *f == fingerprint)
                    .map(|(_, name)| name.clone())
                    .collect();
                found
                    .details
                    .push(format!("{what}: verified by {}", names.join(", ")));
                found.signers.extend(names);
            }
            Err(e) => {
                let why = describe(&e, &self.inner.fingerprints);
                found.details.push(format!("{what}: {why}"));
                found.problems.insert(why);
            }
        }
    }

    fn registry_failed(&self, found: &mut Findings, err: &RegistryError) {
        self.emit(Event::RegistryError);
        found.registry_error.get_or_insert(err.to_string());
    }
}

/// What signature discovery collects for one digest across both layouts.
#[derive(Default)]
struct Findings {
    signers: BTreeSet<String>,
    details: Vec<String>,
    problems: BTreeSet<String>,
    registry_error: Option<String>,
}

impl Findings {
    fn malformed(&mut self, what: &str, detail: &str, problem: &str) {
        self.details.push(format!("{what}: {detail}"));
        self.problems.insert(problem.to_string());
    }

    fn note_excess(&mut self, what: &str, count: usize) {
        if count > MAX_SIGNATURES {
            self.details.push(format!(
                "{what}: {count} signatures, only the first {MAX_SIGNATURES} are examined"
            ));
        }
    }
}

/// A verification failure in words a user acts on; `fingerprints` are `(fingerprint, name)` of the
/// configured keys. A signature that verifies under none of the keys is not claimed to be "by another
/// key": the signed payload or the signature may as well have been altered, and cryptography cannot
/// tell these apart, so the message names the keys tried and both causes. A signature whose encoding
/// no key's scheme allows is reported as malformed, with what is wrong.
fn describe(err: &VerifyError, fingerprints: &[(String, String)]) -> String {
    match err {
        VerifyError::NoKeyMatched { tried } => {
            let mut names: Vec<&str> = Vec::new();
            for fingerprint in tried {
                let mut named = fingerprints
                    .iter()
                    .filter(|(f, _)| f == fingerprint)
                    .map(|(_, n)| n.as_str())
                    .peekable();
                if named.peek().is_none() {
                    names.push(fingerprint);
                }
                for name in named {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
            format!(
                "signature invalid under {} {} (the signed payload or the signature was altered, \
                 or it was made with a key that is not configured)",
                if names.len() == 1 { "key" } else { "keys" },
                names.join(", ")
            )
        }
        // What is wrong first: admission messages cut a reason at about 60 characters.
        VerifyError::Malformed { field, reason } if is_signature_field(field) => {
            format!("malformed signature: {reason} ({field})")
        }
        VerifyError::NoKeys => "no keys are configured".into(),
        VerifyError::DigestMismatch { .. } => "signature is for another image".into(),
        other => other.to_string(),
    }
}

/// The fields that hold signature bytes: the legacy annotation, a bundle's `messageSignature`, and a
/// DSSE envelope's `signatures[i].sig`.
fn is_signature_field(field: &str) -> bool {
    field.starts_with("signature (")
        || field.ends_with("messageSignature.signature")
        || field.ends_with(".sig")
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// Every image a request runs, as written: the containers, init containers and ephemeral containers of
/// every pod spec of the object (Pod, PodTemplate and the workload templates), and `image` volumes.
/// Mirrors `regate.lib.k8s.images`, keyed by the request kind like the policy library.
pub fn request_images<T: Tree>(request: &T) -> Vec<String> {
    let kind = request
        .field("kind")
        .and_then(|k| k.field("kind"))
        .and_then(Tree::as_text)
        .unwrap_or("");
    let spec_path: &[&str] = match kind {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        _ => return Vec::new(),
    };
    let object = if request.field("operation").and_then(Tree::as_text) == Some("DELETE") {
        request.field("oldObject")
    } else {
        request.field("object")
    };
    let spec = object.and_then(|o| spec_path.iter().try_fold(o, |at, p| at.field(p)));
    let mut out = BTreeSet::new();
    if let Some(spec) = spec {
        let image = |v: &T, path: &[&str]| {
            path.iter()
                .try_fold(v, |at, p| at.field(p))
                .and_then(Tree::as_text)
                .map(str::to_string)
        };
        for field in ["containers", "initContainers", "ephemeralContainers"] {
            let containers = spec.field(field).map_or(&[][..], Tree::items);
            out.extend(containers.iter().filter_map(|c| image(c, &["image"])));
        }
        let volumes = spec.field("volumes").map_or(&[][..], Tree::items);
        out.extend(
            volumes
                .iter()
                .filter_map(|v| image(v, &["image", "reference"])),
        );
    }
    out.into_iter().collect()
}

/// The policy-input object for `verdicts`.
pub fn verdicts_json(verdicts: &BTreeMap<String, Verdict>) -> Json {
    Json::Object(
        verdicts
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// The policy-input object for one request's `images` out of verdicts for many (`regate check`): each
/// image's verdict and, for a verified image without a digest, the verdict of its pinned form.
pub fn verdicts_for(images: &[String], all: &BTreeMap<String, Verdict>) -> Json {
    let mut out = serde_json::Map::new();
    for image in images {
        if let Some(v) = all.get(image) {
            out.insert(image.clone(), v.to_json());
            let pinned = format!("{image}@{}", v.digest);
            if let Some(p) = all.get(&pinned) {
                out.insert(pinned, p.to_json());
            }
        }
    }
    Json::Object(out)
}

/// [`Verifier::verify_all`] for synchronous callers (the CLI): runs on a private runtime.
pub fn verify_all_blocking(
    verifier: &Verifier,
    images: &[String],
    deadline: Instant,
) -> std::io::Result<BTreeMap<String, Verdict>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(verifier.verify_all(images, deadline)))
}

/// How long the CLI doors wait for registries in total.
pub const CLI_DEADLINE: Duration = Duration::from_secs(120);

/// Verdicts for `images` under `config` (a bundle's `imageVerification`), for the CLI doors (`eval`,
/// `check --verify-images`, `verify-image`).
pub fn verify_for_cli(
    config: &ImageVerificationConfig,
    images: &[String],
) -> anyhow::Result<BTreeMap<String, Verdict>> {
    use anyhow::Context as _;
    let verifier = Verifier::new(config, None)?;
    verify_all_blocking(&verifier, images, Instant::now() + CLI_DEADLINE)
        .context("starting the registry client runtime")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::pod(json!({"kind": {"kind": "Pod"}, "operation": "CREATE", "object": {"spec": {
        "containers": [{"image": "a"}], "initContainers": [{"image": "b"}],
        "ephemeralContainers": [{"image": "c"}], "volumes": [{"image": {"reference": "d"}}]}}}), vec!["a", "b", "c", "d"])]
    #[case::cronjob(json!({"kind": {"kind": "CronJob"}, "operation": "CREATE", "object": {"spec": {"jobTemplate":
        {"spec": {"template": {"spec": {"containers": [{"image": "x"}, {"image": "x"}]}}}}}}}), vec!["x"])]
    #[case::deployment_delete_reads_old_object(json!({"kind": {"kind": "Deployment"}, "operation": "DELETE",
        "oldObject": {"spec": {"template": {"spec": {"containers": [{"image": "old"}]}}}}}), vec!["old"])]
    #[case::scale_has_none(json!({"kind": {"kind": "Scale"}, "operation": "UPDATE", "object": {"spec": {"replicas": 2}}}), vec![])]
    #[case::malformed_is_empty(json!({"kind": {"kind": "Pod"}, "operation": "CREATE", "object": {"spec": {"containers": "x"}}}), vec![])]
    fn finds_every_image(#[case] request: Json, #[case] expected: Vec<&str>) {
        assert_eq!(request_images(&request), expected);
        // The same from the engine's value the server reads `/validate` bodies into.
        let value = crate::policy::evaluate::to_value(&request);
        assert_eq!(request_images(&value), expected);
    }

    fn keys(names: &[(&str, &str)]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|(f, n)| (f.to_string(), n.to_string()))
            .collect()
    }

    #[rstest]
    #[case::one_key(&["sha256:aa"], &[("sha256:aa", "shop-ci")], "signature invalid under key shop-ci (")]
    #[case::two_keys(
        &["sha256:aa", "sha256:bb"],
        &[("sha256:aa", "shop-ci"), ("sha256:bb", "platform-2026")],
        "signature invalid under keys shop-ci, platform-2026 ("
    )]
    #[case::one_key_two_names(
        &["sha256:aa"],
        &[("sha256:aa", "old-name"), ("sha256:aa", "new-name")],
        "signature invalid under keys old-name, new-name ("
    )]
    #[case::unnamed_key_shows_its_fingerprint(&["sha256:cc"], &[], "signature invalid under key sha256:cc (")]
    fn no_key_matched_names_the_keys_tried_and_both_causes(
        #[case] tried: &[&str],
        #[case] configured: &[(&str, &str)],
        #[case] start: &str,
    ) {
        let err = VerifyError::NoKeyMatched {
            tried: tried.iter().map(|f| f.to_string()).collect(),
        };
        let text = describe(&err, &keys(configured));
        assert!(text.starts_with(start), "{text}");
        assert!(
            text.ends_with(
                "(the signed payload or the signature was altered, or it was made with a key that is not configured)"
            ),
            "{text}"
        );
        assert!(!text.contains("signed by a key"), "{text}");
    }

    #[rstest]
    #[case::malformed(
        VerifyError::Malformed { field: "signature (dev.cosignproject.cosign/signature)".into(), reason: "not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 3 bytes".into() },
        "malformed signature: not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 3 bytes (signature (dev.cosignproject.cosign/signature))"
    )]
    #[case::malformed_dsse_signature(
        VerifyError::Malformed { field: "dsseEnvelope.signatures[0].sig".into(), reason: "3 bytes, an Ed25519 signature is 64".into() },
        "malformed signature: 3 bytes, an Ed25519 signature is 64 (dsseEnvelope.signatures[0].sig)"
    )]
    #[case::malformed_other_field(
        VerifyError::Malformed { field: "critical.type".into(), reason: "missing or not a string".into() },
        "malformed critical.type: missing or not a string"
    )]
    #[case::no_keys(VerifyError::NoKeys, "no keys are configured")]
    #[case::replayed(
        VerifyError::DigestMismatch { signed: vec!["sha256:aa".into()], expected: "sha256:bb".into() },
        "signature is for another image"
    )]
    fn other_failures_say_what_failed(#[case] err: VerifyError, #[case] want: &str) {
        assert_eq!(describe(&err, &keys(&[("sha256:aa", "shop-ci")])), want);
    }

    #[test]
    fn verdict_json_has_the_policy_fields() {
        let v = Verdict {
            verified: true,
            digest: "sha256:00".into(),
            signers: vec!["shop".into()],
            reason: "signed by shop".into(),
            ..Default::default()
        };
        assert_eq!(
            v.to_json(),
            json!({"verified": true, "digest": "sha256:00", "signers": ["shop"],
                   "reason": "signed by shop", "registryError": false})
        );
    }
}
