//! The registry client against a scripted in-test HTTP server, for what distribution 2.8 cannot show:
//! the bearer-token flow and its cache, the OCI 1.1 referrers API, lying digests, hanging and
//! oversized responses, server errors.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use regate::images::registry::{
    sha256_digest, RegistryClient, RegistryError, RegistryOptions, MAX_MANIFEST_BYTES, OCI_INDEX,
    OCI_MANIFEST,
};

/// What the handler saw: method, path and query, Authorization header.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A scripted answer; `None` hangs for a minute.
type Answer = Option<(u16, Vec<(&'static str, String)>, Vec<u8>)>;

struct Mock {
    addr: SocketAddr,
    seen: Seen,
}

impl Mock {
    async fn start<F>(handler: F) -> Mock
    where
        F: Fn(&str, &str, &str, SocketAddr) -> Answer + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let handler = Arc::new(handler);
        let seen2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, seen) = (handler.clone(), seen2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (handler, seen) = (handler.clone(), seen.clone());
                        async move {
                            let method = req.method().to_string();
                            let pq = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            seen.lock()
                                .unwrap()
                                .push((method.clone(), pq.clone(), auth.clone()));
                            let answer = handler(&method, &pq, &auth, addr);
                            let Some((status, headers, body)) = answer else {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                return Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())));
                            };
                            let mut resp = Response::new(Full::new(Bytes::from(body)));
                            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                            for (k, v) in headers {
                                resp.headers_mut().append(k, v.parse().unwrap());
                            }
                            Ok(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Mock { addr, seen }
    }

    fn registry(&self) -> String {
        self.addr.to_string()
    }

    fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p, _)| p.starts_with(prefix))
            .count()
    }

    fn client(
        &self,
        timeout: Duration,
        docker_config: Option<std::path::PathBuf>,
    ) -> RegistryClient {
        RegistryClient::new(RegistryOptions {
            insecure: vec!["127.0.0.1".into()],
            request_timeout: timeout,
            docker_config,
            ..Default::default()
        })
        .unwrap()
    }
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

fn manifest_ok() -> Answer {
    Some((
        200,
        vec![
            ("content-type", OCI_MANIFEST.into()),
            ("docker-content-digest", sha256_digest(MANIFEST)),
        ],
        MANIFEST.to_vec(),
    ))
}

#[tokio::test]
async fn bearer_tokens_are_fetched_with_basic_credentials_and_cached() {
    let mock = Mock::start(|_, path, auth, addr| {
        if path.starts_with("/token") {
            let expected = format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:pw")
            );
            if auth != expected {
                return Some((401, vec![], b"bad creds".to_vec()));
            }
            return Some((200, vec![], br#"{"access_token":"T1","expires_in":300}"#.to_vec()));
        }
        if auth == "Bearer T1" {
            return manifest_ok();
        }
        let challenge = format!(
            r#"Bearer realm="http://{addr}/token",service="mock registry",scope="repository:app:pull""#
        );
        Some((401, vec![("www-authenticate", challenge)], b"{}".to_vec()))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:pw");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            mock.registry()
        ),
    )
    .unwrap();
    let c = mock.client(Duration::from_secs(5), Some(cfg));
    for _ in 0..3 {
        let m = c.get_manifest(&mock.registry(), "app", "v1").await.unwrap();
        assert_eq!(m.bytes, MANIFEST);
        assert_eq!(m.media_type, OCI_MANIFEST);
    }
    assert_eq!(mock.count("/token"), 1, "token cached");
    // One anonymous 401, then three authorised requests.
    assert_eq!(mock.count("/v2/app/manifests/v1"), 4);
    let seen = mock.seen.lock().unwrap().clone();
    let token_req = seen
        .iter()
        .find(|(_, p, _)| p.starts_with("/token"))
        .unwrap();
    assert!(
        token_req.1.contains("service=mock%20registry")
            && token_req.1.contains("scope=repository%3Aapp%3Apull"),
        "{token_req:?}"
    );

    // Without credentials the token service refuses: Unauthorized, naming the repository.
    let anonymous = mock.client(Duration::from_secs(5), None);
    let e = anonymous
        .get_manifest(&mock.registry(), "app", "v1")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("app"), "{e}");
}

#[tokio::test]
async fn token_realm_over_plain_http_needs_an_insecure_host() {
    let mock = Mock::start(|_, _, _, addr| {
        let challenge = format!(r#"Bearer realm="http://localhost:{}/token""#, addr.port());
        Some((401, vec![("www-authenticate", challenge)], vec![]))
    })
    .await;
    let c = RegistryClient::new(RegistryOptions {
        insecure: vec![mock.registry()],
        ..Default::default()
    })
    .unwrap();
    let e = c
        .get_manifest(&mock.registry(), "app", "v1")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::InsecureNotAllowed { .. }), "{e}");
}

#[tokio::test]
async fn referrers_api_is_used_and_filtered_client_side() {
    let digest = sha256_digest(MANIFEST);
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256_digest(b"a"), "size": 1, "artifactType": "type/a",
             "annotations": {"k": "v"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256_digest(b"b"), "size": 2, "artifactType": "type/b"},
        ]
    })
    .to_string();
    let mock = Mock::start(move |_, path, _, _| {
        if path.starts_with("/v2/app/referrers/") {
            // Ignores artifactType (no OCI-Filters-Applied): the client must filter.
            return Some((
                200,
                vec![("content-type", OCI_INDEX.into())],
                index.clone().into_bytes(),
            ));
        }
        Some((404, vec![], vec![]))
    })
    .await;
    let c = mock.client(Duration::from_secs(5), None);
    let all = c
        .referrers(&mock.registry(), "app", &digest, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let a = c
        .referrers(&mock.registry(), "app", &digest, Some("type/a"))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].digest, sha256_digest(b"a"));
    assert_eq!(a[0].annotations, BTreeMap::from([("k".into(), "v".into())]));
    assert_eq!(
        mock.count("/v2/app/manifests/"),
        0,
        "no fallback when the API answers"
    );
    let seen = mock.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(_, p, _)| p.ends_with("?artifactType=type%2Fa")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn lying_digests_are_rejected() {
    let mock = Mock::start(|_, path, _, _| {
        let lie = sha256_digest(b"something else");
        if path.starts_with("/v2/app/blobs/") {
            return Some((200, vec![], b"tampered".to_vec()));
        }
        Some((
            200,
            vec![
                ("content-type", OCI_MANIFEST.into()),
                ("docker-content-digest", lie),
            ],
            MANIFEST.to_vec(),
        ))
    })
    .await;
    let (c, r) = (mock.client(Duration::from_secs(5), None), mock.registry());
    let e = c.get_manifest(&r, "app", "v1").await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    let wanted = sha256_digest(b"wanted");
    let e = c.get_manifest(&r, "app", &wanted).await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    let e = c.get_blob(&r, "app", &wanted).await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
}

#[tokio::test]
async fn hanging_registry_times_out() {
    let mock = Mock::start(|_, _, _, _| None).await;
    let c = mock.client(Duration::from_secs(1), None);
    let t = Instant::now();
    let e = c
        .get_manifest(&mock.registry(), "app", "v1")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains(&mock.registry()), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn oversized_manifests_and_server_errors() {
    let mock = Mock::start(|_, path, _, _| {
        if path.contains("/manifests/big") {
            return Some((200, vec![], vec![b' '; MAX_MANIFEST_BYTES + 1]));
        }
        Some((500, vec![], b"internal trouble".to_vec()))
    })
    .await;
    let (c, r) = (mock.client(Duration::from_secs(5), None), mock.registry());
    let e = c.get_manifest(&r, "app", "big").await.unwrap_err();
    assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    let e = c.get_manifest(&r, "app", "v1").await.unwrap_err();
    assert!(matches!(e, RegistryError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("internal trouble"), "{e}");
}
