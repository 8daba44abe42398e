//! HTTP(S) transport for the registry client: one pooled hyper-util client over hyper-rustls (ring
//! provider, HTTP/1.1, system roots plus extra CA files). Plain HTTP only for hosts listed as insecure.
//! Every request, body included, runs under the request timeout, and every body read is bounded.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

use super::{RegistryError, RegistryOptions};
use crate::images::reference::api_host;

/// Error bodies are read up to this size, the rest is dropped (they are only used in messages).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A response with its (bounded) body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The shared connection pool and transport policy.
#[derive(Clone)]
pub struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    insecure: Arc<Vec<String>>,
    timeout: Duration,
}

impl Transport {
    pub fn new(opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A system root that rustls cannot parse is skipped, as browsers do.
            let _ = roots.add(cert);
        }
        for path in &opts.ca_files {
            let err = |detail: String| RegistryError::Config {
                path: path.clone(),
                detail,
            };
            let pem = std::fs::read(path).map_err(|e| err(format!("cannot read CA file: {e}")))?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("not a PEM certificate file: {e}")))?;
            if certs.is_empty() {
                return Err(err("no PEM certificate in the file".into()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| err(format!("unusable CA certificate: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::Config {
                path: Default::default(),
                detail: format!("TLS setup: {e}"),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(opts.request_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(4)
            .build(connector);
        Ok(Transport {
            client,
            insecure: Arc::new(
                opts.insecure
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .collect(),
            ),
            timeout: opts.request_timeout,
        })
    }

    /// True when `host_port` (`host` or `host:port`) may be reached over plain HTTP.
    pub fn is_insecure(&self, host_port: &str) -> bool {
        let host_port = host_port.to_ascii_lowercase();
        let host = strip_port(&host_port);
        self.insecure.iter().any(|h| *h == host_port || h == host)
    }

    /// `scheme://api-host` for `registry`.
    pub fn base_url(&self, registry: &str) -> String {
        let scheme = if self.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", api_host(registry))
    }

    /// Refuses a URL that is neither HTTPS nor plain HTTP to an insecure-listed host.
    pub fn check_url(&self, registry: &str, url: &Uri) -> Result<(), RegistryError> {
        match url.scheme_str() {
            Some("https") => Ok(()),
            Some("http") => {
                let authority = url.authority().map(|a| a.as_str()).unwrap_or("");
                if self.is_insecure(authority) {
                    Ok(())
                } else {
                    Err(RegistryError::InsecureNotAllowed {
                        registry: if authority.is_empty() {
                            registry.to_string()
                        } else {
                            authority.to_string()
                        },
                    })
                }
            }
            _ => Err(RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("`{url}` is not an http(s) URL"),
            }),
        }
    }

    /// Sends `req`; reads at most `limit` body bytes of a success (more is [`RegistryError::TooLarge`]
    /// for `what`), and at most 64 KiB of an error body (truncated).
    pub async fn send(
        &self,
        registry: &str,
        req: Request<Full<Bytes>>,
        limit: usize,
        what: &str,
    ) -> Result<Response, RegistryError> {
        self.check_url(registry, req.uri())?;
        let is_head = req.method() == http::Method::HEAD;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| map_client_error(registry, e))?;
            let (parts, body) = resp.into_parts();
            let ok = parts.status.is_success();
            let limit = if ok { limit } else { limit.min(MAX_ERROR_BODY) };
            if ok && !is_head {
                if let Some(len) = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    if len > limit as u64 {
                        return Err(too_large(registry, what, limit));
                    }
                }
            }
            let body = read_bounded(registry, body, limit, ok, what).await?;
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(RegistryError::Timeout {
                registry: registry.to_string(),
                timeout: self.timeout,
            }),
        }
    }
}

fn too_large(registry: &str, what: &str, limit: usize) -> RegistryError {
    RegistryError::TooLarge {
        registry: registry.to_string(),
        what: what.to_string(),
        limit,
    }
}

/// Reads up to `limit` bytes; past that fails (`strict`) or truncates.
async fn read_bounded(
    registry: &str,
    mut body: hyper::body::Incoming,
    limit: usize,
    strict: bool,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RegistryError::Unreachable {
            registry: registry.to_string(),
            source: Box::new(e),
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                if strict {
                    return Err(too_large(registry, what, limit));
                }
                let room = limit - out.len();
                out.extend_from_slice(&data[..room]);
                break;
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
fn strip_port(host_port: &str) -> &str {
    if let Some(end) = host_port.find(']') {
        return &host_port[..=end];
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// Turns a client error into Tls (with a hint) or Unreachable.
fn map_client_error(registry: &str, e: hyper_util::client::legacy::Error) -> RegistryError {
    if let Some(tls) = find_rustls_error(&e) {
        let hint = match tls {
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                " (the server did not answer in TLS: if it serves plain HTTP, list it as insecure)"
            }
            rustls::Error::InvalidCertificate(_) => {
                " (add the registry's CA certificate to the CA files if it uses a private CA)"
            }
            _ => "",
        };
        return RegistryError::Tls {
            registry: registry.to_string(),
            detail: format!("{tls}{hint}"),
        };
    }
    RegistryError::Unreachable {
        registry: registry.to_string(),
        source: Box::new(e),
    }
}

/// The rustls error somewhere in `e`'s source chain (looking inside `io::Error`s too).
fn find_rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(r);
                }
                if let Some(r) = find_rustls_error(inner) {
                    return Some(r);
                }
            }
        }
        cur = err.source();
    }
    None
}

/// A short, printable summary of an error body: the registry's `errors[].code: message` when it is
/// the distribution JSON error format, else the first 200 characters.
pub fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        if !e.errors.is_empty() {
            return e
                .errors
                .iter()
                .map(|i| format!("{}: {}", i.code, i.message))
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let clean = clean.trim().to_string();
    if clean.is_empty() {
        "(empty body)".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_prefers_registry_errors() {
        assert_eq!(
            error_detail(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
            ),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_detail(b"404 page\nnot found"), "404 page not found");
        assert_eq!(error_detail(b""), "(empty body)");
    }

    #[test]
    fn insecure_matching() {
        let t = Transport::new(&RegistryOptions {
            insecure: vec![
                "LocalHost:5000".into(),
                "plain.example".into(),
                "[::1]".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        assert!(t.is_insecure("localhost:5000"));
        assert!(!t.is_insecure("localhost:5001"));
        assert!(t.is_insecure("plain.example:8080"));
        assert!(t.is_insecure("[::1]:5000"));
        assert!(!t.is_insecure("other.example"));
        assert_eq!(t.base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(t.base_url("docker.io"), "https://registry-1.docker.io");
        let http: Uri = "http://evil.example/token".parse().unwrap();
        assert!(matches!(
            t.check_url("r", &http),
            Err(RegistryError::InsecureNotAllowed { .. })
        ));
    }

    #[test]
    fn missing_ca_file_is_a_config_error() {
        let e = Transport::new(&RegistryOptions {
            ca_files: vec!["/nonexistent/ca.pem".into()],
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
