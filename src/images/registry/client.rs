//! [`RegistryClient`]: the OCI distribution operations. Every name, tag and digest is validated
//! before it goes into a URL, every body is bounded, and every manifest and blob is checked against
//! its sha256 digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;

use super::auth::{self, AuthScheme, TokenCache};
use super::docker_config::{Credential, DockerConfig};
use super::transport::{error_detail, Response, Transport};
use super::{
    referrers, sha256_digest, Descriptor, Manifest, ManifestRef, RegistryError, RegistryOptions,
    MANIFEST_ACCEPT, MAX_MANIFEST_BYTES,
};
use crate::images::reference::{
    api_host, validate_digest, validate_registry, validate_repository, validate_tag, ImageReference,
};

/// Blob redirects (e.g. to object storage) followed at most this many times.
const MAX_REDIRECTS: usize = 5;
/// Largest body read from a push response (they are normally empty).
const MAX_PUSH_RESPONSE: usize = 64 * 1024;

/// An OCI registry client. Cheap to clone (shared connection pool, credentials and token cache);
/// `Send + Sync`.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    credentials: DockerConfig,
    tokens: TokenCache,
    /// What each registry asked for last time, so later requests authenticate up front.
    schemes: Mutex<HashMap<String, AuthScheme>>,
    max_blob_bytes: usize,
}

/// What a request needs beyond its URL.
struct Call<'a> {
    registry: &'a str,
    repository: &'a str,
    push: bool,
    method: Method,
    url: String,
    headers: Vec<(http::HeaderName, String)>,
    body: Bytes,
    limit: usize,
    what: &'a str,
}

impl RegistryClient {
    /// Builds a client: loads the docker config and CA files now, so bad configuration fails early.
    pub fn new(opts: RegistryOptions) -> Result<Self, RegistryError> {
        let credentials = match &opts.docker_config {
            Some(path) => DockerConfig::load(path)?,
            None => DockerConfig::default(),
        };
        let transport = Transport::new(&opts)?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                transport,
                credentials,
                tokens: TokenCache::default(),
                schemes: Mutex::new(HashMap::new()),
                max_blob_bytes: opts.max_blob_bytes,
            }),
        })
    }

    /// The digest and media type of `r`'s manifest (its digest if it has one, else its tag, else
    /// `latest`): `HEAD` first, `GET` when the registry sends no usable `Docker-Content-Digest`.
    pub async fn resolve(&self, r: &ImageReference) -> Result<ManifestRef, RegistryError> {
        let reference = r.reference();
        let what = format!("manifest {}/{}:{reference}", r.registry, r.repository);
        let url = self.manifest_url(&r.registry, &r.repository, reference)?;
        let resp = self
            .call(Call {
                registry: &r.registry,
                repository: &r.repository,
                push: false,
                method: Method::HEAD,
                url,
                headers: vec![(ACCEPT, MANIFEST_ACCEPT.join(", "))],
                body: Bytes::new(),
                limit: 0,
                what: &what,
            })
            .await?;
        if resp.status == StatusCode::OK {
            if let Some(digest) = resp.header("docker-content-digest") {
                if validate_digest(digest).is_ok() {
                    if let Some(want) = &r.digest {
                        if want != digest {
                            return Err(RegistryError::DigestMismatch {
                                registry: r.registry.clone(),
                                what,
                                expected: want.clone(),
                                actual: digest.to_string(),
                            });
                        }
                    }
                    return Ok(ManifestRef {
                        digest: digest.to_string(),
                        media_type: media_type(&resp, b""),
                    });
                }
            }
        } else if resp.status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound { what });
        }
        // No usable digest header (or HEAD refused): fetch and hash the manifest.
        let m = self
            .get_manifest(&r.registry, &r.repository, reference)
            .await?;
        Ok(ManifestRef {
            digest: m.digest,
            media_type: m.media_type,
        })
    }

    /// The manifest `reference` (tag or digest) of `registry/repository`, at most 4 MiB. Its digest is
    /// the sha256 of the bytes; it must equal `reference` when that is a digest, and the registry's
    /// `Docker-Content-Digest` header when sent.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let what = format!("manifest {registry}/{repository}:{reference}");
        let url = self.manifest_url(registry, repository, reference)?;
        let resp = self
            .call(Call {
                registry,
                repository,
                push: false,
                method: Method::GET,
                url,
                headers: vec![(ACCEPT, MANIFEST_ACCEPT.join(", "))],
                body: Bytes::new(),
                limit: MAX_MANIFEST_BYTES,
                what: &what,
            })
            .await?;
        if !resp.status.is_success() {
            return Err(status_error(registry, repository, &what, &resp));
        }
        let digest = sha256_digest(&resp.body);
        let expected = if reference.contains(':') {
            Some(reference)
        } else {
            resp.header("docker-content-digest")
        };
        if let Some(expected) = expected {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    registry: registry.to_string(),
                    what,
                    expected: expected.to_string(),
                    actual: digest,
                });
            }
        }
        let media_type = media_type(&resp, &resp.body);
        Ok(Manifest {
            bytes: resp.body,
            media_type,
            digest,
        })
    }

    /// The blob `digest` of `registry/repository`, at most `max_blob_bytes`, checked against the
    /// digest. Redirects (object storage) are followed, without credentials to other hosts.
    pub async fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        self.check_name(registry, repository)?;
        check(registry, validate_digest(digest))?;
        let what = format!("blob {registry}/{repository}@{digest}");
        let limit = self.inner.max_blob_bytes;
        let mut url = format!(
            "{}/v2/{repository}/blobs/{digest}",
            self.inner.transport.base_url(registry)
        );
        let mut resp = None;
        for _ in 0..=MAX_REDIRECTS {
            let same_host = url_authority(&url).is_some_and(|a| a == api_host(registry));
            let r = if same_host {
                self.call(Call {
                    registry,
                    repository,
                    push: false,
                    method: Method::GET,
                    url: url.clone(),
                    headers: vec![],
                    body: Bytes::new(),
                    limit,
                    what: &what,
                })
                .await?
            } else {
                let req = build(registry, Method::GET, &url, &[], Bytes::new())?;
                self.inner
                    .transport
                    .send(registry, req, limit, &what)
                    .await?
            };
            if r.status.is_redirection() {
                let Some(location) = r.header("location") else {
                    return Err(status_error(registry, repository, &what, &r));
                };
                url = self.absolute(registry, location)?;
                continue;
            }
            resp = Some(r);
            break;
        }
        let Some(resp) = resp else {
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("{what}: more than {MAX_REDIRECTS} redirects"),
            });
        };
        if !resp.status.is_success() {
            return Err(status_error(registry, repository, &what, &resp));
        }
        let actual = sha256_digest(&resp.body);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                registry: registry.to_string(),
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(resp.body)
    }

    /// Manifests whose `subject` is `digest`: the OCI 1.1 referrers API, or — when the registry
    /// answers 404 there — the referrers tag `sha256-<hex>`. Filtered to `artifact_type` when given.
    pub async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        referrers::list(self, registry, repository, digest, artifact_type).await
    }

    /// Uploads `bytes` as one blob (monolithic upload: `POST` then `PUT ?digest=`); returns its digest.
    pub async fn put_blob(
        &self,
        registry: &str,
        repository: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        self.check_name(registry, repository)?;
        let digest = sha256_digest(bytes);
        let what = format!("blob upload {registry}/{repository}@{digest}");
        let start = self
            .call(Call {
                registry,
                repository,
                push: true,
                method: Method::POST,
                url: format!(
                    "{}/v2/{repository}/blobs/uploads/",
                    self.inner.transport.base_url(registry)
                ),
                headers: vec![(CONTENT_LENGTH, "0".into())],
                body: Bytes::new(),
                limit: MAX_PUSH_RESPONSE,
                what: &what,
            })
            .await?;
        if start.status != StatusCode::ACCEPTED && start.status != StatusCode::CREATED {
            return Err(status_error(registry, repository, &what, &start));
        }
        let Some(location) = start.header("location") else {
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("{what}: upload started without a Location header"),
            });
        };
        let location = self.absolute(registry, location)?;
        if url_authority(&location).is_none_or(|a| a != api_host(registry)) {
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("{what}: upload location `{location}` is on another host"),
            });
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = self
            .call(Call {
                registry,
                repository,
                push: true,
                method: Method::PUT,
                url: format!("{location}{sep}digest={}", auth::percent_encode(&digest)),
                headers: vec![
                    (CONTENT_TYPE, "application/octet-stream".into()),
                    (CONTENT_LENGTH, bytes.len().to_string()),
                ],
                body: Bytes::copy_from_slice(bytes),
                limit: MAX_PUSH_RESPONSE,
                what: &what,
            })
            .await?;
        if done.status != StatusCode::CREATED {
            return Err(status_error(registry, repository, &what, &done));
        }
        Ok(digest)
    }

    /// Stores `bytes` (media type `media_type`) as manifest `reference` (tag or digest); returns its
    /// digest.
    pub async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(bytes);
        let what = format!("manifest upload {registry}/{repository}:{reference}");
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                registry: registry.to_string(),
                what,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        if reference.contains(':') && reference != digest {
            return Err(RegistryError::DigestMismatch {
                registry: registry.to_string(),
                what,
                expected: reference.to_string(),
                actual: digest,
            });
        }
        let url = self.manifest_url(registry, repository, reference)?;
        let resp = self
            .call(Call {
                registry,
                repository,
                push: true,
                method: Method::PUT,
                url,
                headers: vec![
                    (CONTENT_TYPE, media_type.to_string()),
                    (CONTENT_LENGTH, bytes.len().to_string()),
                ],
                body: Bytes::copy_from_slice(bytes),
                limit: MAX_PUSH_RESPONSE,
                what: &what,
            })
            .await?;
        if resp.status != StatusCode::CREATED {
            return Err(status_error(registry, repository, &what, &resp));
        }
        if let Some(sent) = resp.header("docker-content-digest") {
            if sent != digest {
                return Err(RegistryError::DigestMismatch {
                    registry: registry.to_string(),
                    what,
                    expected: digest,
                    actual: sent.to_string(),
                });
            }
        }
        Ok(digest)
    }

    /// Low-level GET for the referrers module: returns the response whatever its status.
    pub(crate) async fn get_raw(
        &self,
        registry: &str,
        repository: &str,
        path_and_query: &str,
        accept: &str,
        limit: usize,
        what: &str,
    ) -> Result<Response, RegistryError> {
        self.check_name(registry, repository)?;
        self.call(Call {
            registry,
            repository,
            push: false,
            method: Method::GET,
            url: format!(
                "{}{path_and_query}",
                self.inner.transport.base_url(registry)
            ),
            headers: vec![(ACCEPT, accept.to_string())],
            body: Bytes::new(),
            limit,
            what,
        })
        .await
    }

    fn check_name(&self, registry: &str, repository: &str) -> Result<(), RegistryError> {
        check(registry, validate_registry(registry))?;
        check(registry, validate_repository(repository))
    }

    fn manifest_url(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<String, RegistryError> {
        self.check_name(registry, repository)?;
        if reference.contains(':') {
            check(registry, validate_digest(reference))?;
        } else {
            check(registry, validate_tag(reference))?;
        }
        Ok(format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.inner.transport.base_url(registry)
        ))
    }

    /// Resolves a `Location` (absolute, or a path on the registry) to an absolute URL.
    fn absolute(&self, registry: &str, location: &str) -> Result<String, RegistryError> {
        if location.starts_with('/') {
            return Ok(format!(
                "{}{location}",
                self.inner.transport.base_url(registry)
            ));
        }
        let uri: Uri = location.parse().map_err(|_| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!("unusable Location `{location}`"),
        })?;
        self.inner.transport.check_url(registry, &uri)?;
        Ok(location.to_string())
    }

    /// Sends a request, authenticating as the registry asks (at most one challenge round).
    async fn call(&self, c: Call<'_>) -> Result<Response, RegistryError> {
        let scope = format!(
            "repository:{}:{}",
            c.repository,
            if c.push { "pull,push" } else { "pull" }
        );
        let credential = self.inner.credentials.credential(c.registry);
        let known = self
            .inner
            .schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(c.registry)
            .cloned();
        let first_auth = match known {
            Some(AuthScheme::Basic) => basic_for(credential),
            Some(AuthScheme::Bearer(_)) => self
                .inner
                .tokens
                .get(c.registry, &scope)
                .map(|t| format!("Bearer {t}")),
            None => None,
        };
        let resp = self.send_once(&c, first_auth.as_deref()).await?;
        if resp.status != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let unauthorized = |detail: String| RegistryError::Unauthorized {
            registry: c.registry.to_string(),
            repository: c.repository.to_string(),
            detail,
        };
        let challenges = resp
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(auth::parse_www_authenticate)
            .collect::<Vec<_>>();
        let Some(scheme) = auth::choose_scheme(&challenges) else {
            return Err(unauthorized(format!(
                "401 without a usable WWW-Authenticate challenge: {}",
                error_detail(&resp.body)
            )));
        };
        let retry_auth = match &scheme {
            AuthScheme::Basic => match basic_for(credential) {
                Some(h) if first_auth.as_deref() != Some(h.as_str()) => h,
                Some(_) => return Err(unauthorized("credentials were rejected".into())),
                None => {
                    return Err(unauthorized(
                        "registry requires credentials, none configured for it".into(),
                    ))
                }
            },
            AuthScheme::Bearer(ch) => {
                self.inner.tokens.remove(c.registry, &scope);
                let token_scope = ch.scope.clone().unwrap_or_else(|| scope.clone());
                let (token, ttl) = auth::fetch_token(
                    &self.inner.transport,
                    c.registry,
                    c.repository,
                    ch,
                    &token_scope,
                    credential,
                )
                .await?;
                self.inner
                    .tokens
                    .insert(c.registry, &scope, token.clone(), ttl);
                format!("Bearer {token}")
            }
        };
        self.inner
            .schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.registry.to_string(), scheme);
        let resp = self.send_once(&c, Some(&retry_auth)).await?;
        if resp.status == StatusCode::UNAUTHORIZED {
            return Err(unauthorized(format!(
                "authenticated request refused: {}",
                error_detail(&resp.body)
            )));
        }
        Ok(resp)
    }

    async fn send_once(
        &self,
        c: &Call<'_>,
        authorization: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let mut headers = c.headers.clone();
        if let Some(a) = authorization {
            headers.push((AUTHORIZATION, a.to_string()));
        }
        let req = build(
            c.registry,
            c.method.clone(),
            &c.url,
            &headers,
            c.body.clone(),
        )?;
        self.inner
            .transport
            .send(c.registry, req, c.limit, c.what)
            .await
    }
}

fn basic_for(credential: Option<&Credential>) -> Option<String> {
    match credential {
        Some(Credential::Basic { username, password }) => {
            Some(auth::basic_header(username, password))
        }
        _ => None,
    }
}

fn build(
    registry: &str,
    method: Method,
    url: &str,
    headers: &[(http::HeaderName, String)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, RegistryError> {
    let mut b = Request::builder().method(method).uri(url).header(
        http::header::USER_AGENT,
        concat!("regate/", env!("CARGO_PKG_VERSION")),
    );
    for (name, value) in headers {
        b = b.header(name, value);
    }
    b.body(Full::new(body))
        .map_err(|e| RegistryError::InvalidInput {
            registry: registry.to_string(),
            detail: format!("cannot build request for `{url}`: {e}"),
        })
}

fn check(registry: &str, r: Result<(), String>) -> Result<(), RegistryError> {
    r.map_err(|detail| RegistryError::InvalidInput {
        registry: registry.to_string(),
        detail,
    })
}

fn url_authority(url: &str) -> Option<String> {
    url.parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_ascii_lowercase()))
}

/// The manifest media type: `Content-Type` (without parameters), else the body's `mediaType`.
fn media_type(resp: &Response, body: &[u8]) -> String {
    if let Some(ct) = resp.header("content-type") {
        let ct = ct.split(';').next().unwrap_or("").trim();
        if !ct.is_empty() && ct != "application/octet-stream" {
            return ct.to_string();
        }
    }
    #[derive(serde::Deserialize)]
    struct Mt {
        #[serde(default, rename = "mediaType")]
        media_type: String,
    }
    serde_json::from_slice::<Mt>(body)
        .map(|m| m.media_type)
        .unwrap_or_default()
}

/// A non-success response as an error: 404 → NotFound, 401/403 → Unauthorized, else Protocol.
pub(crate) fn status_error(
    registry: &str,
    repository: &str,
    what: &str,
    resp: &Response,
) -> RegistryError {
    match resp.status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            what: what.to_string(),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
            registry: registry.to_string(),
            repository: repository.to_string(),
            detail: format!("{what}: {}: {}", resp.status, error_detail(&resp.body)),
        },
        s => RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!("{what}: unexpected {s}: {}", error_detail(&resp.body)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn client_is_send_sync_clone() {
        assert_send_sync::<RegistryClient>();
    }

    #[tokio::test]
    async fn bad_names_are_refused_before_any_request() {
        let c = RegistryClient::new(RegistryOptions::default()).unwrap();
        for (repo, reference) in [
            ("UPPER", "latest"),
            ("a/../b", "latest"),
            ("ok", "bad tag"),
            ("ok", "sha256:short"),
            ("ok", "../../x"),
        ] {
            let e = c
                .get_manifest("r.invalid", repo, reference)
                .await
                .unwrap_err();
            assert!(matches!(e, RegistryError::InvalidInput { .. }), "{e}");
        }
        let e = c
            .get_blob("r.invalid", "ok", "sha256:zz")
            .await
            .unwrap_err();
        assert!(matches!(e, RegistryError::InvalidInput { .. }), "{e}");
        let e = c.get_manifest("r.invalid/x", "ok", "t").await.unwrap_err();
        assert!(matches!(e, RegistryError::InvalidInput { .. }), "{e}");
    }

    #[tokio::test]
    async fn missing_docker_config_fails_early() {
        let e = RegistryClient::new(RegistryOptions {
            docker_config: Some("/nonexistent/config.json".into()),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(matches!(e, RegistryError::Config { .. }), "{e}");
    }
}
