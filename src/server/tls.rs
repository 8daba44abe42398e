//! TLS for the webhook: rustls with the ring provider only (TLS 1.3 and 1.2, ALPN `http/1.1`), the
//! serving pair held by a [`CertResolver`] that every new handshake reads, so a rotated pair applies to
//! new connections without a restart. [`watch_dir`] polls a certificate directory (a Kubernetes Secret
//! mount: `tls.crt`/`tls.key` symlinks into a `..data` directory that cert-manager swaps atomically),
//! compares content hashes, and swaps in a new pair only when it parses and the key matches the
//! certificate; anything else keeps the old pair and is reported (log and metric). Optional client
//! certificate verification (`--client-ca`). `serve --dev` gets a generated CA and ECDSA P-256 pair.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};

use super::clock;
use super::metrics::Metrics;

/// File names inside a certificate directory (the keys of a `kubernetes.io/tls` Secret).
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// A certificate or key that cannot be used; `Display` says which file and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: cannot read: {1}")]
    Read(String, String),
    #[error("certificate: no PEM CERTIFICATE block")]
    NoCertificate,
    #[error("certificate: {0}")]
    BadCertificate(String),
    #[error("private key: {0}")]
    BadKey(String),
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    #[error("client CA {0}: {1}")]
    ClientCa(String, String),
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("generating the development certificate: {0}")]
    Generate(String),
}

/// The crypto provider of the whole server: ring.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A parsed, consistent serving pair.
#[derive(Debug, Clone)]
pub struct CertPair {
    pub key: Arc<CertifiedKey>,
    /// notAfter of the leaf certificate, Unix seconds.
    pub not_after: Option<i64>,
    /// SHA-256 of the leaf certificate (DER), hex.
    pub fingerprint: String,
}

/// Parses a PEM chain (leaf first) and a PEM private key (PKCS#8, SEC1 or PKCS#1) and checks that the
/// key belongs to the leaf.
pub fn parse_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertPair, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey(e.to_string()))?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => return Err(TlsError::BadCertificate(e.to_string())),
    }
    let leaf = certified.cert[0].as_ref();
    let not_after = not_after(leaf);
    let fingerprint = hex(&Sha256::digest(leaf));
    Ok(CertPair {
        key: Arc::new(certified),
        not_after,
        fingerprint,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `tls.crt` and `tls.key` of `dir`. When the directory is a Kubernetes volume (`..data` present),
/// both are read through the resolved `..data` target so that a concurrent swap cannot pair a new
/// certificate with an old key.
pub fn read_dir_pair(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let data = dir.join("..data");
    let base = match std::fs::canonicalize(&data) {
        Ok(resolved) if resolved.is_dir() => resolved,
        _ => dir.to_path_buf(),
    };
    let read = |name: &str| -> Result<Vec<u8>, TlsError> {
        let path = base.join(name);
        std::fs::read(&path)
            .map_err(|e| TlsError::Read(dir.join(name).display().to_string(), e.to_string()))
    };
    Ok((read(CERT_FILE)?, read(KEY_FILE)?))
}

/// Hands the current pair to every new handshake.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertPair>,
}

impl CertResolver {
    pub fn new(pair: CertPair) -> CertResolver {
        CertResolver {
            current: ArcSwap::from_pointee(pair),
        }
    }

    /// Swaps in `pair` for new connections.
    pub fn set(&self, pair: CertPair) {
        self.current.store(Arc::new(pair));
    }

    /// The pair new connections get.
    pub fn current(&self) -> Arc<CertPair> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// The rustls server configuration: TLS 1.3 and 1.2, ring, ALPN `http/1.1`, the pair from `resolver`,
/// and client certificates verified against `client_ca` when given (mTLS with the API server).
pub fn server_config(
    resolver: Arc<CertResolver>,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        Some(path) => {
            let display = path.display().to_string();
            let pem = std::fs::read(path)
                .map_err(|e| TlsError::ClientCa(display.clone(), e.to_string()))?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| TlsError::ClientCa(display.clone(), e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa(display.clone(), e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::ClientCa(
                    display,
                    "no PEM CERTIFICATE block".into(),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa(display, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Records a newly loaded pair in the metrics.
pub fn record_pair(metrics: &Metrics, pair: &CertPair) {
    metrics.certificate_expiry.set(pair.not_after.unwrap_or(0));
}

fn content_hash(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((cert.len() as u64).to_le_bytes());
    h.update(cert);
    h.update(key);
    h.finalize().into()
}

/// Polls `dir` every `interval` until `shutdown` turns true; swaps in changed pairs that are valid and
/// reports the others. `initial` is the content the resolver was started with.
pub async fn watch_dir(
    dir: PathBuf,
    resolver: Arc<CertResolver>,
    metrics: Arc<Metrics>,
    interval: Duration,
    initial: (Vec<u8>, Vec<u8>),
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last = content_hash(&initial.0, &initial.1);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = super::signalled(&mut shutdown) => return,
        }
        let d = dir.clone();
        let read = tokio::task::spawn_blocking(move || read_dir_pair(&d)).await;
        let (cert, key) = match read {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => {
                // A missing file is reported once per distinct state, like a bad pair.
                let h = content_hash(err.to_string().as_bytes(), b"\0error");
                if h != last {
                    last = h;
                    metrics.certificate_reload_failures.inc();
                    tracing::error!(dir = %dir.display(), error = %err, "certificate reload failed; keeping the current pair");
                }
                continue;
            }
            Err(_) => continue,
        };
        let h = content_hash(&cert, &key);
        if h == last {
            continue;
        }
        last = h;
        match parse_pair(&cert, &key) {
            Ok(pair) => {
                tracing::info!(
                    dir = %dir.display(),
                    fingerprint = %pair.fingerprint,
                    not_after = pair.not_after.map(|t| clock::rfc3339_millis(t * 1000)).unwrap_or_default(),
                    "serving certificate reloaded"
                );
                record_pair(&metrics, &pair);
                resolver.set(pair);
                metrics.certificate_reloads.inc();
            }
            Err(err) => {
                metrics.certificate_reload_failures.inc();
                tracing::error!(dir = %dir.display(), error = %err, "certificate reload failed; keeping the current pair");
            }
        }
    }
}

/// A generated development CA and serving pair (PEM).
#[derive(Debug, Clone)]
pub struct DevCertificates {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and an ECDSA P-256 serving certificate for `names` (DNS names or IP addresses), valid
/// from yesterday for one year.
pub fn generate_dev(names: &[String]) -> Result<DevCertificates, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let g = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let today = clock::now_millis().div_euclid(86_400_000);
    let (y, m, d) = clock::civil_from_days(today - 1);
    let not_before = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    let not_after = rcgen::date_time_ymd(y as i32 + 1, m as u8, d.min(28) as u8);

    let ca_key = KeyPair::generate().map_err(g)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(g)?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "regate development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca = ca_params.self_signed(&ca_key).map_err(g)?;

    let key = KeyPair::generate().map_err(g)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(g)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "regate");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(g)?;
    Ok(DevCertificates {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

// --- a minimal DER reader for the certificate's notAfter -------------------------------------------

fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')))
}

fn der_time(tag: u8, value: &[u8]) -> Option<i64> {
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(value.get(..2)?)?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                value.get(2..)?,
            )
        }
        0x18 => (digits(value.get(..4)?)?, value.get(4..)?),
        _ => return None,
    };
    let month = digits(rest.get(0..2)?)? as u32;
    let day = digits(rest.get(2..4)?)? as u32;
    let hour = digits(rest.get(4..6)?)?;
    let minute = digits(rest.get(6..8)?)?;
    let second = digits(rest.get(8..10)?)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(clock::days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// notAfter of a DER certificate, Unix seconds; `None` when the DER cannot be read.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    // [0] version (optional), then the serial number.
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        (_, _, rest) = tlv(rest)?;
    }
    let (_, _, rest) = tlv(rest)?; // signature algorithm
    let (_, _, rest) = tlv(rest)?; // issuer
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after) = tlv(validity)?; // notBefore
    let (tag, value, _) = tlv(after)?;
    der_time(tag, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DevCertificates {
        generate_dev(&["localhost".into(), "127.0.0.1".into()]).unwrap()
    }

    #[test]
    fn generated_pair_parses_and_expires_in_about_a_year() {
        let d = dev();
        let pair = parse_pair(d.cert_pem.as_bytes(), d.key_pem.as_bytes()).unwrap();
        let now = clock::now_millis() / 1000;
        let after = pair.not_after.unwrap();
        assert!(
            after > now + 300 * 86_400 && after < now + 400 * 86_400,
            "{after}"
        );
        assert_eq!(pair.fingerprint.len(), 64);
    }

    #[test]
    fn mismatched_and_garbage_pairs_are_rejected() {
        let a = dev();
        let b = dev();
        assert_eq!(
            parse_pair(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err(),
            TlsError::KeyMismatch
        );
        assert_eq!(
            parse_pair(b"garbage", a.key_pem.as_bytes()).unwrap_err(),
            TlsError::NoCertificate
        );
        assert!(matches!(
            parse_pair(a.cert_pem.as_bytes(), b"nope").unwrap_err(),
            TlsError::BadKey(_)
        ));
    }

    #[test]
    fn der_times() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x18, b"20240229120000Z"), Some(1_709_208_000));
        assert_eq!(der_time(0x17, b"49123123595Z"), None);
        assert_eq!(not_after(b"\x30\x03\x02\x01\x00"), None);
    }

    #[cfg(unix)]
    #[test]
    fn kubernetes_volume_layout_is_read_through_data() {
        let d = dev();
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("..2024_01_01");
        std::fs::create_dir(&ts).unwrap();
        std::fs::write(ts.join(CERT_FILE), &d.cert_pem).unwrap();
        std::fs::write(ts.join(KEY_FILE), &d.key_pem).unwrap();
        std::os::unix::fs::symlink("..2024_01_01", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/tls.crt", dir.path().join(CERT_FILE)).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.path().join(KEY_FILE)).unwrap();
        let (c, k) = read_dir_pair(dir.path()).unwrap();
        assert_eq!(c, d.cert_pem.as_bytes());
        assert_eq!(k, d.key_pem.as_bytes());
    }
}
