//! Image signature verification end to end: a real OCI registry (Debian's `docker-registry`, started by
//! the test on 127.0.0.1), images and cosign signatures built in the test in both storage layouts
//! (legacy `sha256-<hex>.sig` tag and OCI 1.1 referrer with a sigstore bundle), and the real `regate`
//! binary answering over TLS (`serve`) and in CI (`check --verify-images`, `verify-image`).

mod common;
mod server_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cosign::{cosign_v3_bundle, legacy_signature, Signer};
use common::registry::{PushedImage, TestRegistry};
use serde_json::{json, Value};
use server_common::{review, tls_dir, Server};

const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Everything the tests push, by tag.
struct World {
    registry: TestRegistry,
    images: BTreeMap<&'static str, PushedImage>,
    shop: Signer,
    billing: Signer,
}

impl World {
    fn image(&self, tag: &str) -> String {
        format!("{}/shop/app:{tag}", self.registry.registry())
    }

    fn pinned(&self, tag: &str) -> String {
        format!("{}@{}", self.image(tag), self.images[tag].digest)
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Starts the registry and pushes: `legacy` (shop key, .sig tag), `bundle` (shop key, referrer),
/// `unsigned`, `billing` (signed by the other tenant's key), `mismatch` (carries a signature made for
/// another digest), `moved` (signed, then the tag moved to an unsigned image), `tampered` (shop
/// signature, payload altered afterwards), `garbled` (a signature annotation that is no signature).
fn world() -> Option<World> {
    let registry = TestRegistry::start()?;
    let shop = Signer::p256();
    let billing = Signer::p256();
    let repo = "shop/app";
    let docker_ref = format!("{}/{repo}", registry.registry());
    let images = block_on(async {
        let mut images = BTreeMap::new();
        for tag in [
            "legacy", "bundle", "unsigned", "billing", "mismatch", "moved", "tampered", "garbled",
        ] {
            let img = registry.push_random_image(repo, 512).await.expect("push");
            registry.push_tag(repo, tag, &img).await.expect("tag");
            images.insert(tag, img);
        }
        let (payload, sig) = legacy_signature(&shop, &docker_ref, &images["legacy"].digest);
        registry
            .push_legacy_signature(repo, &images["legacy"].digest, &payload, &sig)
            .await
            .expect("legacy sig");
        let bundle = cosign_v3_bundle(&shop, &images["bundle"].digest);
        registry
            .push_referrer(
                repo,
                &images["bundle"].digest,
                BUNDLE_TYPE,
                BUNDLE_TYPE,
                &bundle,
                &BTreeMap::new(),
            )
            .await
            .expect("referrer");
        let (payload, sig) = legacy_signature(&billing, &docker_ref, &images["billing"].digest);
        registry
            .push_legacy_signature(repo, &images["billing"].digest, &payload, &sig)
            .await
            .expect("billing sig");
        // A valid shop signature over the `legacy` image, attached to the `mismatch` image.
        let (payload, sig) = legacy_signature(&shop, &docker_ref, &images["legacy"].digest);
        registry
            .push_legacy_signature(repo, &images["mismatch"].digest, &payload, &sig)
            .await
            .expect("mismatch sig");
        // A shop signature whose payload was altered after signing (still naming the right digest).
        let (payload, sig) = legacy_signature(&shop, &docker_ref, &images["tampered"].digest);
        let altered = String::from_utf8(payload)
            .expect("utf8")
            .replace(&docker_ref, &format!("{docker_ref}-evil"));
        registry
            .push_legacy_signature(repo, &images["tampered"].digest, altered.as_bytes(), &sig)
            .await
            .expect("tampered sig");
        // A signature annotation that is base64, but of bytes no key's scheme allows.
        let (payload, _) = legacy_signature(&shop, &docker_ref, &images["garbled"].digest);
        registry
            .push_legacy_signature(
                repo,
                &images["garbled"].digest,
                &payload,
                &base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    b"not a signature",
                ),
            )
            .await
            .expect("garbled sig");
        // Sign `moved`, then move the tag to a fresh unsigned image.
        let (payload, sig) = legacy_signature(&shop, &docker_ref, &images["moved"].digest);
        registry
            .push_legacy_signature(repo, &images["moved"].digest, &payload, &sig)
            .await
            .expect("moved sig");
        let other = registry.push_random_image(repo, 512).await.expect("push");
        registry
            .move_tag(repo, "moved", &other)
            .await
            .expect("move");
        images
    });
    Some(World {
        registry,
        images,
        shop,
        billing,
    })
}

/// A regate.yaml layer: only trusted-images enabled, the test registry as the Harbor, both tenants'
/// keys, verification on.
fn config(world: &World, dir: &Path) -> std::path::PathBuf {
    let host = world.registry.registry();
    let mut policies = serde_json::Map::new();
    for p in common::BUNDLED_POLICIES
        .iter()
        .filter(|p| **p != "trusted-images")
    {
        policies.insert(p.to_string(), json!({"enabled": false}));
    }
    let cfg = json!({
        "registries": {"harbor": [host], "sharedProjects": []},
        "tenancy": {"tenants": {
            "shop": {"groups": ["tenant:shop"], "harborProjects": ["shop"], "domains": [], "signingKeys": ["shop-ci"]},
            "billing": {"groups": ["tenant:billing"], "harborProjects": ["billing"], "domains": [], "signingKeys": ["billing-ci"]},
        }},
        "imageVerification": {
            "enabled": true,
            "keys": {
                "shop-ci": {"pem": world.shop.public_key_pem()},
                "billing-ci": {"pem": world.billing.public_key_pem()},
            },
            "registry": {"insecure": [host], "timeoutMs": 1000},
        },
        "policies": policies,
    });
    let path = dir.join("regate-images.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).expect("json")).expect("write");
    path
}

const NAMESPACE: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    regate.dev/tenant: shop
"#;

fn pod_request(uid: &str, image: &str) -> Value {
    json!({
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["tenant:shop"]},
        "object": {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "shop"},
                   "spec": {"containers": [{"name": "app", "image": image}]}},
        "oldObject": null,
        "dryRun": false
    })
}

fn start_server(world: &World, dir: &Path) -> (Server, tempfile::TempDir) {
    let (tls, ca, _) = tls_dir("regate-images");
    let inventory = dir.join("namespace.yaml");
    std::fs::write(&inventory, NAMESPACE).expect("write");
    let cfg = config(world, dir);
    let args: Vec<String> = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--tls-dir",
        tls.path().to_str().expect("utf8"),
        "--config",
        cfg.to_str().expect("utf8"),
        "--cluster-state",
        "static",
        "--inventory",
        inventory.to_str().expect("utf8"),
        "--skip-bundle-tests",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    (Server::start(&args, &ca.pem()), tls)
}

fn answer(server: &Server, endpoint: &str, uid: &str, image: &str) -> Value {
    let resp = server.client().post_json(
        &format!("/{endpoint}?timeout=5s"),
        &review(pod_request(uid, image)),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["response"].clone()
}

fn message(resp: &Value) -> String {
    resp["status"]["message"].as_str().unwrap_or("").to_string()
}

#[test]
fn admission_verifies_signatures_pins_digests_and_fails_closed() {
    let Some(mut world) = world() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _tls) = start_server(&world, dir.path());

    // Signed with the tenant's key, either layout: the mutating webhook pins the verified digest, and
    // the validating webhook (which sees the pinned reference, as the API server chains them) allows.
    // A tag alone is denied by validation (requireDigest), so the mutation must come first.
    for tag in ["legacy", "bundle"] {
        let m = answer(&server, "mutate", tag, &world.image(tag));
        assert_eq!(m["allowed"], true, "{tag}: {m}");
        assert_eq!(m["patchType"], "JSONPatch", "{tag}: {m}");
        let patch: Value =
            serde_json::from_slice(&base64_decode(m["patch"].as_str().expect("patch")))
                .expect("patch json");
        assert_eq!(
            patch,
            json!([{"op": "replace", "path": "/spec/containers/0/image", "value": world.pinned(tag)}]),
            "{tag}"
        );
        // What the validating webhook then sees: the pinned reference, also allowed.
        let v = answer(&server, "validate", tag, &world.pinned(tag));
        assert_eq!(v["allowed"], true, "{tag} pinned: {v}");
    }

    // Denials, each with a reason a user can act on.
    let cases = [
        ("unsigned", "no cosign signature found"),
        ("billing", "billing-ci"),
        ("mismatch", "another image"),
        ("moved", "no cosign signature found"),
    ];
    for (tag, expected) in cases {
        let v = answer(&server, "validate", tag, &world.image(tag));
        assert_eq!(v["allowed"], false, "{tag}: {v}");
        assert_eq!(v["status"]["code"], 403, "{tag}: {v}");
        assert!(message(&v).contains(expected), "{tag}: {}", message(&v));
        // Nothing is pinned for an image that is not trusted.
        let m = answer(&server, "mutate", tag, &world.image(tag));
        assert!(m.get("patch").is_none(), "{tag}: {m}");
    }

    // A cache hit does not touch the registry: with the registry stopped, a digest verified before is
    // still answered from the cache.
    let hits = server.metric("regate_image_verification_cache_total{result=\"hit\"}");
    world.registry.stop();
    let v = answer(&server, "validate", "cached", &world.pinned("legacy"));
    assert_eq!(v["allowed"], true, "{v}");
    assert!(server.metric("regate_image_verification_cache_total{result=\"hit\"}") > hits);

    // Registry down and nothing cached: denied (fail closed) within the request's deadline.
    let started = Instant::now();
    let resp = server.client().post_json(
        "/validate?timeout=3s",
        &review(pod_request("down", &world.image("never-seen"))),
    );
    let took = started.elapsed();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json()["response"].clone();
    assert_eq!(v["allowed"], false, "{v}");
    assert!(message(&v).contains("registry"), "{}", message(&v));
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(server.metric("regate_image_registry_errors_total") >= 1.0);
}

#[test]
fn check_and_verify_image_agree_with_the_webhook() {
    let Some(world) = world() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&world, dir.path());
    let inventory = dir.path().join("namespace.yaml");
    std::fs::write(&inventory, NAMESPACE).expect("write");
    let manifests = dir.path().join("pods.yaml");
    let pods: Vec<String> = ["legacy", "bundle", "unsigned", "billing"]
        .iter()
        .map(|tag| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {tag}, namespace: shop}}\nspec:\n  containers:\n  - name: app\n    image: {}\n",
                world.image(tag)
            )
        })
        .collect();
    std::fs::write(&manifests, pods.join("---\n")).expect("write");
    let out = common::regate(
        &[
            "check",
            "--verify-images",
            "--config",
            cfg.to_str().expect("utf8"),
            "--inventory",
            inventory.to_str().expect("utf8"),
            "--group",
            "tenant:shop",
            "-f",
            "json",
            manifests.to_str().expect("utf8"),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let denied: std::collections::BTreeSet<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["action"] == "deny")
        .map(|f| f["object"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        denied,
        ["billing", "unsigned"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "{report}"
    );

    // verify-image: trusted with the shop key, not trusted with the billing key only.
    let shop_key = dir.path().join("shop.pub");
    std::fs::write(&shop_key, world.shop.public_key_pem()).expect("write");
    let out = common::regate(
        &[
            "verify-image",
            "--config",
            cfg.to_str().expect("utf8"),
            "--key",
            shop_key.to_str().expect("utf8"),
            &world.image("legacy"),
            &world.image("bundle"),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("TRUSTED") && text.contains(&world.images["bundle"].digest),
        "{text}"
    );
    let out = common::regate(
        &[
            "verify-image",
            "--config",
            cfg.to_str().expect("utf8"),
            "--key",
            shop_key.to_str().expect("utf8"),
            &world.image("billing"),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NOT TRUSTED")
            && text.contains("signature invalid under key shop (")
            && text.contains("made with a key that is not configured"),
        "{text}"
    );
}

/// Runs `regate ARGS`; returns the exit code and stdout.
fn run(args: &[&str]) -> (i32, String) {
    let out = common::regate(args, None);
    (
        out.status.code().expect("exit code"),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn verify_image_says_what_failed_instead_of_blaming_another_key() {
    let Some(world) = world() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&world, dir.path());
    let cfg = cfg.to_str().expect("utf8");

    let (code, text) = run(&["verify-image", "--config", cfg, &world.image("tampered")]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "signature invalid under keys billing-ci, shop-ci (the signed payload or the signature \
             was altered, or it was made with a key that is not configured)"
        ),
        "{text}"
    );
    assert!(
        !text.contains("signed by a key that is not configured"),
        "{text}"
    );

    let (code, text) = run(&["verify-image", "--config", cfg, &world.image("garbled")]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "malformed signature: not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 15 bytes \
             (signature (dev.cosignproject.cosign/signature))"
        ),
        "{text}"
    );

    // Admission says the same to a tenant deploying them.
    let (server, _tls) = start_server(&world, dir.path());
    for (tag, expected) in [
        (
            "tampered",
            "signature invalid under keys billing-ci, shop-ci",
        ),
        ("garbled", "malformed signature: not a DER ECDSA signature"),
    ] {
        let v = answer(&server, "validate", tag, &world.image(tag));
        assert_eq!(v["allowed"], false, "{tag}: {v}");
        assert!(message(&v).contains(expected), "{tag}: {}", message(&v));
    }
}

#[test]
fn verify_image_answers_as_admission_for_a_tenant_or_namespace() {
    let Some(world) = world() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&world, dir.path());
    let cfg = cfg.to_str().expect("utf8");
    let inventory = dir.path().join("namespace.yaml");
    std::fs::write(&inventory, NAMESPACE).expect("write");
    let inventory = inventory.to_str().expect("utf8");
    let billing = world.image("billing");
    let legacy = world.image("legacy");

    // A valid signature by the billing key on a shop image: the signature is fine, but no tenant
    // admits it, and the output says so for each tenant.
    let (code, text) = run(&["verify-image", "--config", cfg, &billing]);
    assert_eq!(
        code, 0,
        "without a scope the exit code is about the signature: {text}"
    );
    assert!(
        text.starts_with(&format!("{billing}: TRUSTED (signed by billing-ci)\n")),
        "{text}"
    );
    assert!(
        text.contains("  admission: REFUSED for tenant \"shop\"\n")
            && text.contains(
                "image signed by [billing-ci], but tenant \"shop\" accepts [shop-ci] for project \"shop\""
            )
            && text.contains("  admission: REFUSED for tenant \"billing\"\n"),
        "{text}"
    );

    // For one tenant the answer is admission's, exit code included.
    let (code, text) = run(&[
        "verify-image",
        "--config",
        cfg,
        "--tenant",
        "shop",
        &billing,
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with(&format!(
            "{billing}: REFUSED for tenant \"shop\"\n  signature: TRUSTED (signed by billing-ci)\n"
        )),
        "{text}"
    );
    let (code, text) = run(&["verify-image", "--config", cfg, "--tenant", "shop", &legacy]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(&format!("{legacy}: ADMITTED for tenant \"shop\"\n")),
        "{text}"
    );
    let (code, text) = run(&[
        "verify-image",
        "--config",
        cfg,
        "--tenant",
        "billing",
        &legacy,
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Harbor project \"shop\" is not allowed for tenant \"billing\""),
        "{text}"
    );

    // A namespace takes its tenant from the inventory, as the webhook takes it from the cluster.
    let args = [
        "verify-image",
        "--config",
        cfg,
        "--inventory",
        inventory,
        "-n",
        "shop",
        "--json",
    ];
    let (code, text) = run(&[&args[..], &[legacy.as_str(), billing.as_str()]].concat());
    assert_eq!(code, 1, "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per image"))
        .collect();
    assert_eq!(lines[0]["admission"][0]["admitted"], true, "{}", lines[0]);
    assert_eq!(lines[0]["admission"][0]["tenant"], "shop");
    assert_eq!(lines[1]["verified"], true);
    assert_eq!(lines[1]["admission"][0]["admitted"], false, "{}", lines[1]);

    // --key verifies with other keys than admission: no admission answer, and no scope allowed.
    let shop_key = dir.path().join("shop.pub");
    std::fs::write(&shop_key, world.shop.public_key_pem()).expect("write");
    let key = shop_key.to_str().expect("utf8");
    let (code, text) = run(&["verify-image", "--config", cfg, "--key", key, &legacy]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "admission: not evaluated (admission verifies with the configured keys, not --key)"
        ),
        "{text}"
    );
    let (code, text) = run(&[
        "verify-image",
        "--config",
        cfg,
        "--key",
        key,
        "--tenant",
        "shop",
        &legacy,
    ]);
    assert_eq!(code, 2, "{text}");
    // An unknown tenant is named before any registry is asked.
    let (code, text) = run(&["verify-image", "--config", cfg, "--tenant", "shpo", &legacy]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("tenant \"shpo\" is not configured (tenancy.tenants: billing, shop)"),
        "{text}"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// Concurrent lookups of one digest share a single registry round trip, and the cache then answers.
#[test]
fn concurrent_lookups_of_one_digest_share_one_registry_round_trip() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use regate::images::config::ImageVerificationConfig;
    use regate::images::verify::{Event, Verifier};

    let Some(world) = world() else { return };
    let mut config = ImageVerificationConfig::default();
    config.registry.insecure = vec![world.registry.registry()];
    config.keys.insert(
        "shop-ci".into(),
        regate::images::config::KeySource {
            pem: Some(world.shop.public_key_pem()),
            file: None,
        },
    );
    let lookups = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(AtomicUsize::new(0));
    let (l, h) = (lookups.clone(), hits.clone());
    let observer: regate::images::verify::Observer = Arc::new(move |e| match e {
        Event::Lookup { .. } => {
            l.fetch_add(1, Ordering::SeqCst);
        }
        Event::CacheHit => {
            h.fetch_add(1, Ordering::SeqCst);
        }
        _ => {}
    });
    let verifier = Verifier::new(&config, Some(observer)).expect("verifier");
    let pinned = world.pinned("bundle");
    let verdicts = block_on(async {
        let all = (0..16).map(|_| {
            let v = verifier.clone();
            let image = pinned.clone();
            tokio::spawn(async move { v.verify(&image).await })
        });
        futures::future::join_all(all).await
    });
    for v in &verdicts {
        let v = v.as_ref().expect("task");
        assert!(v.verified, "{v:?}");
        assert_eq!(v.signers, vec!["shop-ci".to_string()]);
    }
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        1,
        "one registry round trip for 16 lookups"
    );
    let again = block_on(verifier.verify(&pinned));
    assert!(again.verified && again.cached, "{again:?}");
    assert!(hits.load(Ordering::SeqCst) >= 1);
}
