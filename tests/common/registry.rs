//! A real OCI registry for integration tests: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with filesystem storage in a temp dir, in three flavours (plain HTTP, TLS with a CA
//! made here, htpasswd Basic auth), plus helpers that push images, tags, cosign-style legacy
//! signatures and OCI 1.1 referrers (maintaining the referrers tag, since distribution 2.8 has no
//! referrers API).
//!
//! When the binary (or `htpasswd`, for the auth flavour) is missing, `start*` print a skip message
//! and return `None`, unless `REGATE_REQUIRE_TOOLS=1` (CI), where they panic.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regate::images::registry::referrers::referrers_tag;
use regate::images::registry::{
    sha256_digest, RegistryClient, RegistryError, RegistryOptions, OCI_INDEX, OCI_MANIFEST,
};
use serde_json::{json, Value};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Which registry flavour to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavour {
    Plain,
    Tls,
    BasicAuth { user: String, password: String },
}

/// A running `docker-registry`, killed on drop.
pub struct TestRegistry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    pub flavour: Flavour,
    /// The CA that signed the TLS flavour's certificate (PEM file).
    pub ca_file: Option<PathBuf>,
    /// The client the push helpers use (with credentials for the auth flavour).
    admin: RegistryClient,
}

/// Skips (None) or, with `REGATE_REQUIRE_TOOLS=1`, panics.
fn missing(what: &str) -> Option<TestRegistry> {
    if std::env::var("REGATE_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{what} is required (REGATE_REQUIRE_TOOLS=1); install it (see .ci/run)");
    }
    eprintln!("skipping: {what} is not installed (apt-get install docker-registry apache2-utils)");
    None
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl TestRegistry {
    /// Plain HTTP registry.
    pub fn start() -> Option<Self> {
        Self::start_flavour(Flavour::Plain)
    }

    /// HTTPS registry; its CA is in [`TestRegistry::ca_file`].
    pub fn start_tls() -> Option<Self> {
        Self::start_flavour(Flavour::Tls)
    }

    /// Plain HTTP registry requiring Basic auth as `user`/`password` (bcrypt htpasswd).
    pub fn start_basic_auth(user: &str, password: &str) -> Option<Self> {
        Self::start_flavour(Flavour::BasicAuth {
            user: user.into(),
            password: password.into(),
        })
    }

    pub fn start_flavour(flavour: Flavour) -> Option<Self> {
        if !Path::new(REGISTRY_BIN).exists() {
            return missing(REGISTRY_BIN);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut extra = String::new();
        let mut ca_file = None;
        match &flavour {
            Flavour::Plain => {}
            Flavour::Tls => {
                let certs = regate::server::tls::generate_dev(&[
                    "127.0.0.1".to_string(),
                    "localhost".to_string(),
                ])
                .expect("generate test CA");
                let ca = dir.path().join("ca.pem");
                std::fs::write(&ca, &certs.ca_pem).expect("write ca");
                std::fs::write(dir.path().join("tls.crt"), &certs.cert_pem).expect("write crt");
                std::fs::write(dir.path().join("tls.key"), &certs.key_pem).expect("write key");
                extra.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.path().join("tls.crt").display(),
                    dir.path().join("tls.key").display()
                ));
                ca_file = Some(ca);
            }
            Flavour::BasicAuth { user, password } => {
                let out = match Command::new("htpasswd")
                    .args(["-nbB", user, password])
                    .output()
                {
                    Ok(o) if o.status.success() => o,
                    _ => return missing("htpasswd (apache2-utils)"),
                };
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("write htpasswd");
            }
        }
        let auth = match &flavour {
            Flavour::BasicAuth { .. } => format!(
                "auth:\n  htpasswd:\n    realm: regate-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ),
            _ => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: \
             127.0.0.1:{port}\n  secret: regate-test-secret\n{extra}{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config.yml");
        let mut reg = TestRegistry {
            child: None,
            dir,
            port,
            flavour,
            ca_file,
            admin: RegistryClient::new(RegistryOptions::default()).expect("registry client"),
        };
        reg.admin = reg.client();
        reg.spawn();
        Some(reg)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).expect("log file");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until `/v2/` answers (200, or 401 with auth), for at most 20 s.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().expect("addr");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("docker-registry exited ({status}): {}", self.log());
                }
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                if self.flavour == Flavour::Tls {
                    // The listener only opens once TLS is configured.
                    return;
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut buf = [0u8; 32];
                if let Ok(n) = s.read(&mut buf) {
                    let head = String::from_utf8_lossy(&buf[..n]);
                    if head.contains(" 200") || head.contains(" 401") {
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("docker-registry did not become ready: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Kills the registry (the storage stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Options that reach this registry: insecure for plain HTTP, the CA for TLS, 5 s timeout.
    pub fn options(&self) -> RegistryOptions {
        let mut o = RegistryOptions {
            request_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        match self.flavour {
            Flavour::Tls => o.ca_files = self.ca_file.iter().cloned().collect(),
            _ => o.insecure = vec![self.registry()],
        }
        o
    }

    /// A client built from [`TestRegistry::options`], with a docker config for the auth flavour.
    pub fn client(&self) -> RegistryClient {
        let mut o = self.options();
        if let Flavour::BasicAuth { user, password } = &self.flavour {
            o.docker_config = Some(self.docker_config(user, password));
        }
        RegistryClient::new(o).expect("registry client")
    }

    /// Writes a docker config.json with `user:password` for this registry; returns its path.
    pub fn docker_config(&self, user: &str, password: &str) -> PathBuf {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let path = self
            .dir
            .path()
            .join(format!("config-{user}-{}.json", password.len()));
        let cfg = json!({"auths": {self.registry(): {"auth": auth}}});
        std::fs::write(&path, cfg.to_string()).expect("write docker config");
        path
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A pushed image: manifest digest and bytes, and its blobs.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub digest: String,
    pub manifest: Vec<u8>,
    pub config_digest: String,
    pub layer_digest: String,
    pub layer: Vec<u8>,
}

/// `n` pseudo-random bytes (distinct per call; not cryptographic).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut out = Vec::with_capacity(n + 8);
    let mut i = 0u64;
    while out.len() < n {
        let mut h = state.build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.extend_from_slice(&h.finish().to_le_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cosign legacy signature tag for `image_digest`: `sha256-<hex>.sig`.
pub fn signature_tag(image_digest: &str) -> String {
    format!("{}.sig", referrers_tag(image_digest))
}

impl TestRegistry {
    /// Pushes a small random OCI image (config + one `layer_size`-byte layer + manifest) by digest.
    pub async fn push_random_image(
        &self,
        repo: &str,
        layer_size: usize,
    ) -> Result<PushedImage, RegistryError> {
        let (client, registry) = (&self.admin, &self.registry());
        let layer = random_bytes(layer_size);
        let layer_digest = client.put_blob(registry, repo, &layer).await?;
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {"Labels": {"regate.test/nonce": hex(&random_bytes(8))}},
        })
        .to_string()
        .into_bytes();
        let config_digest = client.put_blob(registry, repo, &config).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config_digest, config.len()),
            "layers": [descriptor(OCI_LAYER, &layer_digest, layer.len())],
        })
        .to_string()
        .into_bytes();
        let digest = sha256_digest(&manifest);
        client
            .put_manifest(registry, repo, &digest, OCI_MANIFEST, &manifest)
            .await?;
        Ok(PushedImage {
            digest,
            manifest,
            config_digest,
            layer_digest,
            layer,
        })
    }

    /// Points `tag` at `image` (creating or moving the tag).
    pub async fn push_tag(
        &self,
        repo: &str,
        tag: &str,
        image: &PushedImage,
    ) -> Result<String, RegistryError> {
        self.admin
            .put_manifest(&self.registry(), repo, tag, OCI_MANIFEST, &image.manifest)
            .await
    }

    /// Moves `tag` to a different image (same as [`push_tag`]; named for readability in tests).
    pub async fn move_tag(
        &self,
        repo: &str,
        tag: &str,
        to: &PushedImage,
    ) -> Result<String, RegistryError> {
        self.push_tag(repo, tag, to).await
    }

    /// Pushes a cosign-style legacy signature for `image_digest`, as cosign does: the simple-signing
    /// `payload` as a layer of media type `application/vnd.dev.cosign.simplesigning.v1+json`, annotated
    /// with `dev.cosignproject.cosign/signature: <sig_b64>`, in an OCI manifest tagged
    /// `sha256-<hex>.sig`. An existing signature manifest gets the new layer appended (several
    /// signatures on one image). Returns the signature manifest's digest.
    pub async fn push_legacy_signature(
        &self,
        repo: &str,
        image_digest: &str,
        payload: &[u8],
        sig_b64: &str,
    ) -> Result<String, RegistryError> {
        self.push_legacy_signature_with(repo, image_digest, payload, sig_b64, &BTreeMap::new())
            .await
    }

    /// [`push_legacy_signature`] with extra layer annotations (e.g. `dev.sigstore.cosign/bundle`,
    /// `dev.sigstore.cosign/certificate`).
    pub async fn push_legacy_signature_with(
        &self,
        repo: &str,
        image_digest: &str,
        payload: &[u8],
        sig_b64: &str,
        extra_annotations: &BTreeMap<String, String>,
    ) -> Result<String, RegistryError> {
        let (client, registry) = (&self.admin, &self.registry());
        let tag = signature_tag(image_digest);
        let payload_digest = client.put_blob(registry, repo, payload).await?;
        let mut annotations = extra_annotations.clone();
        annotations.insert(COSIGN_SIGNATURE_ANNOTATION.into(), sig_b64.into());
        let mut layer = descriptor(SIMPLESIGNING, &payload_digest, payload.len());
        layer["annotations"] = json!(annotations);

        let mut layers: Vec<Value> = match client.get_manifest(registry, repo, &tag).await {
            Ok(m) => serde_json::from_slice::<Value>(&m.bytes)
                .ok()
                .and_then(|v| v.get("layers").and_then(Value::as_array).cloned())
                .unwrap_or_default(),
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e),
        };
        layers.push(layer);
        let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
        let config = json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string()
        .into_bytes();
        let config_digest = client.put_blob(registry, repo, &config).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config_digest, config.len()),
            "layers": layers,
        })
        .to_string()
        .into_bytes();
        client
            .put_manifest(registry, repo, &tag, OCI_MANIFEST, &manifest)
            .await
    }

    /// Pushes an OCI 1.1 referrer of `subject_digest`: an artifact manifest (`artifactType`, empty
    /// config, one layer `blob` of `layer_media_type`, `subject`, `annotations` on the manifest), by
    /// digest; then, as cosign/oras do against a registry without the referrers API, adds its descriptor
    /// to the image index under the referrers tag `sha256-<hex>`. Returns the referrer's digest.
    pub async fn push_referrer(
        &self,
        repo: &str,
        subject_digest: &str,
        artifact_type: &str,
        layer_media_type: &str,
        blob: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<String, RegistryError> {
        let (client, registry) = (&self.admin, &self.registry());
        let subject = client.get_manifest(registry, repo, subject_digest).await?;
        let blob_digest = client.put_blob(registry, repo, blob).await?;
        let empty_digest = client.put_blob(registry, repo, b"{}").await?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor(OCI_EMPTY, &empty_digest, 2),
            "layers": [descriptor(layer_media_type, &blob_digest, blob.len())],
            "subject": descriptor(&subject.media_type, &subject.digest, subject.bytes.len()),
        });
        if !annotations.is_empty() {
            manifest["annotations"] = json!(annotations);
        }
        let manifest = manifest.to_string().into_bytes();
        let digest = sha256_digest(&manifest);
        client
            .put_manifest(registry, repo, &digest, OCI_MANIFEST, &manifest)
            .await?;

        // Maintain the referrers tag schema index.
        let tag = referrers_tag(subject_digest);
        let mut entries: Vec<Value> = match client.get_manifest(registry, repo, &tag).await {
            Ok(m) => serde_json::from_slice::<Value>(&m.bytes)
                .ok()
                .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
                .unwrap_or_default(),
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut entry = descriptor(OCI_MANIFEST, &digest, manifest.len());
        entry["artifactType"] = json!(artifact_type);
        if !annotations.is_empty() {
            entry["annotations"] = json!(annotations);
        }
        entries.retain(|e| e["digest"] != json!(digest));
        entries.push(entry);
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
            .to_string()
            .into_bytes();
        client
            .put_manifest(registry, repo, &tag, OCI_INDEX, &index)
            .await?;
        Ok(digest)
    }
}
