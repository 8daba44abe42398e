//! The OCI registry client against a real registry (Debian's docker-registry, distribution 2.8):
//! tag resolution, manifests and blobs checked against digests, referrers through the tag-schema
//! fallback, TLS with a private CA, plain-HTTP policy, Basic auth, a stopped registry, size limits.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::registry::*;
use regate::images::reference::ImageReference;
use regate::images::registry::{RegistryClient, RegistryError, RegistryOptions, OCI_MANIFEST};
use rstest::rstest;

macro_rules! registry_or_skip {
    ($e:expr) => {
        match $e {
            Some(r) => r,
            None => return,
        }
    };
}

fn image_ref(reg: &TestRegistry, rest: &str) -> ImageReference {
    ImageReference::parse(&format!("{}/{rest}", reg.registry())).expect("valid reference")
}

#[tokio::test]
async fn resolves_tags_and_digests_to_the_pushed_manifest() {
    let reg = registry_or_skip!(TestRegistry::start());
    let c = reg.client();
    let r = reg.registry();
    let img = reg.push_random_image("team/app", 64).await.unwrap();
    reg.push_tag("team/app", "v1", &img).await.unwrap();

    let by_tag = c.resolve(&image_ref(&reg, "team/app:v1")).await.unwrap();
    assert_eq!(by_tag.digest, img.digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);

    let pinned = image_ref(&reg, "team/app:v1").with_digest(&img.digest);
    assert_eq!(c.resolve(&pinned).await.unwrap().digest, img.digest);
    let by_digest = image_ref(&reg, &format!("team/app@{}", img.digest));
    assert_eq!(c.resolve(&by_digest).await.unwrap().digest, img.digest);

    let m = c.get_manifest(&r, "team/app", "v1").await.unwrap();
    assert_eq!(m.bytes, img.manifest);
    assert_eq!(m.digest, img.digest);
    let m = c.get_manifest(&r, "team/app", &img.digest).await.unwrap();
    assert_eq!(m.bytes, img.manifest);

    assert_eq!(
        c.get_blob(&r, "team/app", &img.layer_digest).await.unwrap(),
        img.layer
    );
}

#[rstest]
#[case::missing_tag("team/app:nope")]
#[case::missing_repository("team/nothing:v1")]
#[case::missing_digest(
    "team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
)]
#[tokio::test]
async fn missing_things_are_not_found(#[case] rest: &str) {
    let reg = registry_or_skip!(TestRegistry::start());
    let c = reg.client();
    let img = reg.push_random_image("team/app", 16).await.unwrap();
    reg.push_tag("team/app", "v1", &img).await.unwrap();
    let e = c.resolve(&image_ref(&reg, rest)).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let r = image_ref(&reg, rest);
    let e = c
        .get_manifest(&r.registry, &r.repository, r.reference())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = c
        .get_blob(
            &reg.registry(),
            "team/app",
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[tokio::test]
async fn moving_a_tag_changes_what_it_resolves_to() {
    let reg = registry_or_skip!(TestRegistry::start());
    let c = reg.client();
    let a = reg.push_random_image("app", 16).await.unwrap();
    let b = reg.push_random_image("app", 16).await.unwrap();
    reg.push_tag("app", "stable", &a).await.unwrap();
    let reference = image_ref(&reg, "app:stable");
    assert_eq!(c.resolve(&reference).await.unwrap().digest, a.digest);
    reg.move_tag("app", "stable", &b).await.unwrap();
    assert_eq!(c.resolve(&reference).await.unwrap().digest, b.digest);
}

#[tokio::test]
async fn oversized_blobs_are_rejected() {
    let reg = registry_or_skip!(TestRegistry::start());
    let r = reg.registry();
    let img = reg.push_random_image("big", 8192).await.unwrap();
    let small = RegistryClient::new(RegistryOptions {
        max_blob_bytes: 4096,
        ..reg.options()
    })
    .unwrap();
    let e = small
        .get_blob(&r, "big", &img.layer_digest)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains(&r), "{e}");
    // The config blob is small enough.
    small.get_blob(&r, "big", &img.config_digest).await.unwrap();
}

#[tokio::test]
async fn referrers_come_from_the_tag_schema_fallback() {
    let reg = registry_or_skip!(TestRegistry::start());
    let (c, r) = (reg.client(), reg.registry());
    let img = reg.push_random_image("signed", 16).await.unwrap();
    let other = reg.push_random_image("signed", 16).await.unwrap();

    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let sbom_type = "application/spdx+json";
    let ann = BTreeMap::from([("org.example.k".to_string(), "v".to_string())]);
    let sig = reg
        .push_referrer(
            "signed",
            &img.digest,
            bundle_type,
            bundle_type,
            b"{\"b\":1}",
            &ann,
        )
        .await
        .unwrap();
    let sbom = reg
        .push_referrer(
            "signed",
            &img.digest,
            sbom_type,
            sbom_type,
            b"{}",
            &BTreeMap::new(),
        )
        .await
        .unwrap();

    let all = c.referrers(&r, "signed", &img.digest, None).await.unwrap();
    let mut digests: Vec<_> = all.iter().map(|d| d.digest.clone()).collect();
    digests.sort();
    let mut want = vec![sig.clone(), sbom.clone()];
    want.sort();
    assert_eq!(digests, want);

    let sigs = c
        .referrers(&r, "signed", &img.digest, Some(bundle_type))
        .await
        .unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].digest, sig);
    assert_eq!(sigs[0].artifact_type.as_deref(), Some(bundle_type));
    assert_eq!(sigs[0].annotations, ann);
    assert_eq!(sigs[0].media_type, OCI_MANIFEST);

    // The referrer manifest and its blob are fetchable and checked.
    let m = c.get_manifest(&r, "signed", &sig).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    assert_eq!(v["subject"]["digest"], img.digest.as_str());
    let layer = v["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(c.get_blob(&r, "signed", layer).await.unwrap(), b"{\"b\":1}");

    assert!(c
        .referrers(&r, "signed", &other.digest, None)
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .referrers(&r, "signed", &img.digest, Some("application/none"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn legacy_cosign_signatures_are_plain_tags() {
    let reg = registry_or_skip!(TestRegistry::start());
    let (c, r) = (reg.client(), reg.registry());
    let img = reg.push_random_image("legacy", 16).await.unwrap();
    let tag = signature_tag(&img.digest);
    let e = c.get_manifest(&r, "legacy", &tag).await.unwrap_err();
    assert!(e.is_not_found(), "unsigned image: {e}");

    reg.push_legacy_signature("legacy", &img.digest, b"payload-1", "c2lnMQ==")
        .await
        .unwrap();
    reg.push_legacy_signature("legacy", &img.digest, b"payload-2", "c2lnMg==")
        .await
        .unwrap();
    let m = c.get_manifest(&r, "legacy", &tag).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["mediaType"], SIMPLESIGNING);
    assert_eq!(
        layers[1]["annotations"][COSIGN_SIGNATURE_ANNOTATION],
        "c2lnMg=="
    );
    let payload = c
        .get_blob(&r, "legacy", layers[0]["digest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(payload, b"payload-1");
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    let reg = registry_or_skip!(TestRegistry::start_tls());
    let (c, r) = (reg.client(), reg.registry());
    let img = reg.push_random_image("tls", 16).await.unwrap();
    reg.push_tag("tls", "v1", &img).await.unwrap();
    assert_eq!(
        c.resolve(&image_ref(&reg, "tls:v1")).await.unwrap().digest,
        img.digest
    );

    let no_ca = RegistryClient::new(RegistryOptions {
        ca_files: vec![],
        ..reg.options()
    })
    .unwrap();
    let e = no_ca.resolve(&image_ref(&reg, "tls:v1")).await.unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&r) && msg.contains("certificate"), "{msg}");
}

#[tokio::test]
async fn plain_http_only_for_listed_hosts() {
    let reg = registry_or_skip!(TestRegistry::start());
    let strict = RegistryClient::new(RegistryOptions {
        insecure: vec![],
        ..reg.options()
    })
    .unwrap();
    let e = strict.resolve(&image_ref(&reg, "x:v1")).await.unwrap_err();
    assert!(!e.is_not_found(), "{e}");
    assert!(matches!(e, RegistryError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("insecure"), "{e}");
    // Listing it (here by host only, any port) allows plain HTTP.
    let listed = RegistryClient::new(RegistryOptions {
        insecure: vec!["127.0.0.1".into()],
        ..reg.options()
    })
    .unwrap();
    let e = listed.resolve(&image_ref(&reg, "x:v1")).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[tokio::test]
async fn stopped_registry_fails_fast_and_recovers_after_restart() {
    let mut reg = registry_or_skip!(TestRegistry::start());
    let r = reg.registry();
    let img = reg.push_random_image("up", 16).await.unwrap();
    let c = RegistryClient::new(RegistryOptions {
        request_timeout: Duration::from_secs(1),
        ..reg.options()
    })
    .unwrap();
    let pinned = image_ref(&reg, &format!("up@{}", img.digest));
    c.resolve(&pinned).await.unwrap();

    reg.stop();
    let t = Instant::now();
    let e = c.resolve(&pinned).await.unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::Unreachable { .. } | RegistryError::Timeout { .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains(&r), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );

    reg.restart();
    assert_eq!(c.resolve(&pinned).await.unwrap().digest, img.digest);
}

#[tokio::test]
async fn basic_auth_uses_docker_config_credentials() {
    let reg = registry_or_skip!(TestRegistry::start_basic_auth("alice", "s3cret"));
    let (c, r) = (reg.client(), reg.registry());
    let img = reg.push_random_image("private/app", 16).await.unwrap();
    reg.push_tag("private/app", "v1", &img).await.unwrap();
    let reference = image_ref(&reg, "private/app:v1");
    assert_eq!(c.resolve(&reference).await.unwrap().digest, img.digest);
    c.get_blob(&r, "private/app", &img.layer_digest)
        .await
        .unwrap();

    let anonymous = RegistryClient::new(reg.options()).unwrap();
    let e = anonymous.resolve(&reference).await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("private/app"), "{e}");

    let wrong = RegistryClient::new(RegistryOptions {
        docker_config: Some(reg.docker_config("alice", "wrong")),
        ..reg.options()
    })
    .unwrap();
    let e = wrong.resolve(&reference).await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
}
