//! Image signature verification over the public API (`regate::images::signature`), against real cosign
//! signatures from the shared corpus (`../shared/corpus/cosign`, see its README) and against material
//! made by the test-side signer in `tests/common/cosign.rs`.
//!
//! Every valid vector verifies for its digest; the wrong key, any flipped byte of payload or signature,
//! and a wrong digest are refused with the error that says so (a flip that breaks a signature's encoding
//! is malformed, not "no key matched"); malformed input gives a typed error and never panics.

mod common;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use regate::images::signature::{
    verify_bundle, verify_bundle_attestation, verify_bundle_with_artifact, verify_dsse,
    verify_simple_signing, KeyError, PublicKey, SignedContent, VerificationMaterial, VerifyError,
    COSIGN_SIGN_PREDICATE_TYPE,
};
use rstest::rstest;
use sha2::{Digest as _, Sha256};

use common::cosign::{self as signer, Signer};

/// One corpus vector: its folder and the image digest it signs.
struct Vector {
    dir: PathBuf,
    digest: String,
}

impl Vector {
    fn read(&self, file: &str) -> Vec<u8> {
        let path = self.dir.join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn text(&self, file: &str) -> String {
        String::from_utf8(self.read(file)).expect("UTF-8")
    }

    /// The annotation value, with the file's trailing newline stripped (README: "strip it").
    fn signature_b64(&self) -> String {
        self.text("signature.b64").trim_end().to_string()
    }

    fn key(&self, file: &str) -> PublicKey {
        let pem = self.text(file);
        if file.ends_with("cert.pem") {
            PublicKey::from_certificate_pem(&pem).expect("certificate key")
        } else {
            PublicKey::from_pem(&pem).expect("public key")
        }
    }
}

/// The vector `id`, or `None` (with a message) when the corpus is absent.
fn vector(id: &str) -> Option<Vector> {
    let root = common::corpus("cosign")?;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("vectors.json")).expect("vectors.json"))
            .expect("JSON");
    let entry = index["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("vector {id} not in vectors.json"));
    Some(Vector {
        dir: root.join("vectors").join(id),
        digest: entry["image_digest"]
            .as_str()
            .expect("image_digest")
            .to_string(),
    })
}

fn other_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let first = if hex.starts_with('0') { '1' } else { '0' };
    format!("sha256:{first}{}", &hex[1..])
}

// ----- legacy simple signing (corpus) -----

#[rstest]
#[case::ecdsa_p256("ecdsa-p256-busybox", "cosign.pub", "ecdsa-p256-sha256")]
#[case::rsa_2048("rsa-suse-toolbox", "cosign.pub", "rsa-pkcs1-sha256")]
#[case::private_ca_cert_key("cert-kubewarden-ca-pod-privileged", "cert.pem", "ecdsa-p256-sha256")]
#[case::fulcio_cert_key("keyless-fulcio-kubewarden-nodeport", "cert.pem", "ecdsa-p256-sha256")]
fn valid_simple_signing_vectors_verify(
    #[case] id: &str,
    #[case] key_file: &str,
    #[case] algorithm: &str,
) {
    let Some(v) = vector(id) else { return };
    let key = v.key(key_file);
    assert_eq!(key.algorithm(), algorithm);
    let payload = v.read("payload.json");
    let verified = verify_simple_signing(
        &payload,
        &v.signature_b64(),
        std::slice::from_ref(&key),
        &v.digest,
    )
    .unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(verified.key_fingerprint, key.fingerprint());
    assert_eq!(verified.content.manifest_digest, v.digest);
    assert!(!verified.content.docker_reference.is_empty());
    if id == "rsa-suse-toolbox" {
        assert_eq!(verified.content.optional["creator"], "OBS");
    }
}

/// What a flipped signature byte gives: the signature no longer verifies under the key
/// (`no_match`), or, when the flip breaks its encoding (the DER structure of an ECDSA signature), it is
/// malformed, naming `field`. Anything else fails the test. Returns whether it was malformed.
fn refused_signature(
    result: Option<&VerifyError>,
    no_match: &VerifyError,
    field: &str,
    what: &str,
) -> bool {
    match result {
        Some(err) if err == no_match => false,
        Some(VerifyError::Malformed { field: f, reason }) => {
            assert_eq!(f, field, "{what}: {reason}");
            assert!(
                reason.contains("ECDSA") || reason.contains("bytes"),
                "{what}: {reason}"
            );
            true
        }
        other => panic!("{what}: {other:?}"),
    }
}

const LEGACY_FIELD: &str = "signature (dev.cosignproject.cosign/signature)";

#[test]
fn the_wrong_key_is_no_key_matched_and_lists_its_fingerprint() {
    let Some(v) = vector("ecdsa-p256-busybox-wrong-key") else {
        return;
    };
    let wrong = v.key("wrong.pub");
    let err = verify_simple_signing(
        &v.read("payload.json"),
        &v.signature_b64(),
        std::slice::from_ref(&wrong),
        &v.digest,
    )
    .unwrap_err();
    assert_eq!(
        err,
        VerifyError::NoKeyMatched {
            tried: vec![wrong.fingerprint()]
        }
    );
    assert!(err.to_string().contains(&wrong.fingerprint()), "{err}");
}

#[test]
fn the_right_key_among_wrong_ones_is_reported() {
    let (Some(good), Some(bad), Some(rsa)) = (
        vector("ecdsa-p256-busybox"),
        vector("ecdsa-p256-busybox-wrong-key"),
        vector("rsa-suse-toolbox"),
    ) else {
        return;
    };
    let right = good.key("cosign.pub");
    let keys = [bad.key("wrong.pub"), rsa.key("cosign.pub"), right.clone()];
    let verified = verify_simple_signing(
        &good.read("payload.json"),
        &good.signature_b64(),
        &keys,
        &good.digest,
    )
    .expect("verifies with the third key");
    assert_eq!(verified.key_fingerprint, right.fingerprint());
    assert_eq!(
        verify_simple_signing(
            &good.read("payload.json"),
            &good.signature_b64(),
            &[],
            &good.digest
        ),
        Err(VerifyError::NoKeys)
    );
}

#[rstest]
#[case("ecdsa-p256-busybox", "cosign.pub")]
#[case("rsa-suse-toolbox", "cosign.pub")]
#[case("cert-kubewarden-ca-pod-privileged", "cert.pem")]
fn every_flipped_payload_or_signature_byte_is_refused(#[case] id: &str, #[case] key_file: &str) {
    let Some(v) = vector(id) else { return };
    let keys = [v.key(key_file)];
    let payload = v.read("payload.json");
    let signature = STANDARD.decode(v.signature_b64()).expect("base64");
    let no_match = VerifyError::NoKeyMatched {
        tried: vec![keys[0].fingerprint()],
    };
    for i in 0..payload.len() {
        let mut flipped = payload.clone();
        flipped[i] ^= 0x01;
        let result = verify_simple_signing(&flipped, &v.signature_b64(), &keys, &v.digest);
        assert_eq!(
            result.as_ref().err(),
            Some(&no_match),
            "{id}: payload byte {i}"
        );
    }
    let mut malformed = 0;
    for i in 0..signature.len() {
        let mut flipped = signature.clone();
        flipped[i] ^= 0x01;
        let result = verify_simple_signing(&payload, &STANDARD.encode(&flipped), &keys, &v.digest);
        malformed += usize::from(refused_signature(
            result.as_ref().err(),
            &no_match,
            LEGACY_FIELD,
            &format!("{id}: signature byte {i}"),
        ));
    }
    // An RSA signature has no structure to break; a DER ECDSA signature does (its SEQUENCE tag, for one).
    if keys[0].algorithm() == "rsa-pkcs1-sha256" {
        assert_eq!(malformed, 0, "{id}");
    } else {
        assert!(
            malformed > 0 && malformed < signature.len(),
            "{id}: {malformed}"
        );
    }
}

#[rstest]
#[case("ecdsa-p256-busybox", "cosign.pub")]
#[case("rsa-suse-toolbox", "cosign.pub")]
fn a_valid_signature_for_another_image_is_a_digest_mismatch(
    #[case] id: &str,
    #[case] key_file: &str,
) {
    let Some(v) = vector(id) else { return };
    let admitted = other_digest(&v.digest);
    let err = verify_simple_signing(
        &v.read("payload.json"),
        &v.signature_b64(),
        &[v.key(key_file)],
        &admitted,
    )
    .unwrap_err();
    assert_eq!(
        err,
        VerifyError::DigestMismatch {
            signed: vec![v.digest.clone()],
            expected: admitted.clone()
        }
    );
    let message = err.to_string();
    assert!(
        message.contains(&v.digest) && message.contains(&admitted),
        "{message}"
    );
}

#[test]
fn a_bad_signature_annotation_is_malformed_and_names_it() {
    let Some(v) = vector("ecdsa-p256-busybox") else {
        return;
    };
    let keys = [v.key("cosign.pub")];
    for bad in ["", "   ", "not base64!", "MEUCIQD6q/CO*"] {
        match verify_simple_signing(&v.read("payload.json"), bad, &keys, &v.digest) {
            Err(VerifyError::Malformed { field, .. }) => {
                assert!(field.contains("signature"), "{field}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // Valid base64 that cannot be an ECDSA signature is malformed, saying why: no key made it, so it
    // is not reported as "signed by another key".
    let short = STANDARD.encode([0u8; 3]);
    assert_eq!(
        verify_simple_signing(&v.read("payload.json"), &short, &keys, &v.digest),
        Err(VerifyError::Malformed {
            field: LEGACY_FIELD.into(),
            reason: "not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 3 bytes".into(),
        })
    );
}

#[test]
fn a_signature_no_configured_scheme_allows_is_malformed_otherwise_no_key_matched() {
    let (Some(ec), Some(rsa)) = (vector("ecdsa-p256-busybox"), vector("rsa-suse-toolbox")) else {
        return;
    };
    let (ec_key, rsa_key) = (ec.key("cosign.pub"), rsa.key("cosign.pub"));
    let payload = ec.read("payload.json");
    let run = |sig: &[u8], keys: &[PublicKey]| {
        verify_simple_signing(&payload, &STANDARD.encode(sig), keys, &ec.digest).unwrap_err()
    };
    let malformed = |reason: &str| VerifyError::Malformed {
        field: LEGACY_FIELD.into(),
        reason: reason.into(),
    };
    // 3 bytes: neither a DER ECDSA signature nor one of the RSA key's 256 bytes. Each key's reason, in
    // key order.
    assert_eq!(
        run(&[1, 2, 3], &[rsa_key.clone(), ec_key.clone()]),
        malformed(
            "3 bytes, an RSA signature under a 2048-bit key is 256; \
             not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 3 bytes"
        )
    );
    assert_eq!(
        run(&[1, 2, 3], std::slice::from_ref(&ec_key)),
        malformed("not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 3 bytes")
    );
    // 256 bytes could be an RSA signature under the RSA key: only "no key matched" is honest.
    assert_eq!(
        run(&[7u8; 256], &[ec_key.clone(), rsa_key.clone()]),
        VerifyError::NoKeyMatched {
            tried: vec![ec_key.fingerprint(), rsa_key.fingerprint()]
        }
    );
    assert_eq!(
        run(&[7u8; 256], std::slice::from_ref(&ec_key)),
        malformed("not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 256 bytes")
    );
    // The RSA vector's real signature under the wrong (ECDSA) key alone: malformed for that scheme.
    let rsa_sig = STANDARD.decode(rsa.signature_b64()).expect("base64");
    assert!(matches!(
        run(&rsa_sig, std::slice::from_ref(&ec_key)),
        VerifyError::Malformed { .. }
    ));
    // A well-formed ECDSA signature by another key is "no key matched", not malformed.
    let ec_sig = STANDARD.decode(ec.signature_b64()).expect("base64");
    let Some(wrong) = vector("ecdsa-p256-busybox-wrong-key") else {
        return;
    };
    let wrong_key = wrong.key("wrong.pub");
    assert_eq!(
        run(&ec_sig, std::slice::from_ref(&wrong_key)),
        VerifyError::NoKeyMatched {
            tried: vec![wrong_key.fingerprint()]
        }
    );
}

// ----- keys -----

#[test]
fn fingerprint_is_sha256_of_the_der_spki() {
    let Some(v) = vector("ecdsa-p256-busybox") else {
        return;
    };
    let pem = v.text("cosign.pub");
    let der = pem::parse(&pem).expect("PEM").into_contents();
    let expected: String = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        PublicKey::from_pem(&pem).unwrap().fingerprint(),
        format!("sha256:{expected}")
    );
}

#[test]
fn rsa_public_key_pkcs1_pem_is_the_same_key() {
    let Some(v) = vector("rsa-suse-toolbox") else {
        return;
    };
    let spki_key = v.key("cosign.pub");
    let spki = pem::parse(v.text("cosign.pub")).unwrap().into_contents();
    // The SPKI's BIT STRING holds the PKCS#1 RSAPublicKey; it starts after the 24-byte header of a
    // 2048-bit key (SEQUENCE, AlgorithmIdentifier, BIT STRING header and unused-bits byte).
    let pkcs1 = &spki[24..];
    assert_eq!(pkcs1[0], 0x30, "PKCS#1 SEQUENCE");
    let pkcs1_pem = pem::encode(&pem::Pem::new("RSA PUBLIC KEY", pkcs1.to_vec()));
    let pkcs1_key = PublicKey::from_pem(&pkcs1_pem).expect("PKCS#1 key");
    assert_eq!(pkcs1_key, spki_key);
    assert_eq!(pkcs1_key.fingerprint(), spki_key.fingerprint());
    verify_simple_signing(
        &v.read("payload.json"),
        &v.signature_b64(),
        &[pkcs1_key],
        &v.digest,
    )
    .expect("verifies with the PKCS#1-loaded key");
}

#[test]
fn malformed_pem_gives_a_typed_error_and_never_panics() {
    let Some(v) = vector("ecdsa-p256-busybox") else {
        return;
    };
    let good = v.text("cosign.pub");
    assert!(matches!(
        PublicKey::from_pem(""),
        Err(KeyError::PemBlockCount(0))
    ));
    assert!(matches!(
        PublicKey::from_pem("garbage"),
        Err(KeyError::PemBlockCount(0))
    ));
    let corrupt = good.replacen("MFkw", "M*kw", 1);
    assert!(
        matches!(PublicKey::from_pem(&corrupt), Err(KeyError::Pem(_))),
        "{:?}",
        PublicKey::from_pem(&corrupt)
    );
    let cert = vector("cert-kubewarden-ca-pod-privileged")
        .map(|c| c.text("cert.pem"))
        .unwrap_or_default();
    if !cert.is_empty() {
        assert!(matches!(
            PublicKey::from_pem(&cert),
            Err(KeyError::PemLabel { .. })
        ));
    }
    // Every truncation of the text, and every truncation of the DER, fails without panicking.
    for len in 0..good.len() {
        let _ = PublicKey::from_pem(&good[..len]);
    }
    let der = pem::parse(&good).unwrap().into_contents();
    for len in 0..der.len() {
        let truncated = pem::encode(&pem::Pem::new("PUBLIC KEY", der[..len].to_vec()));
        assert!(
            PublicKey::from_pem(&truncated).is_err(),
            "DER truncated to {len} bytes"
        );
    }
    // Every single-byte corruption of the DER is either refused or a different, still valid key.
    for i in 0..der.len() {
        let mut flipped = der.clone();
        flipped[i] ^= 0x01;
        if let Ok(key) = PublicKey::from_spki_der(&flipped) {
            assert_ne!(
                key.fingerprint(),
                PublicKey::from_spki_der(&der).unwrap().fingerprint()
            );
        }
    }
    // An unsupported algorithm (Ed448, OID 1.3.101.113) is named.
    let ed448 = [
        0x30, 0x43, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00,
    ]
    .iter()
    .copied()
    .chain([0u8; 57])
    .collect::<Vec<u8>>();
    assert_eq!(
        PublicKey::from_spki_der(&ed448),
        Err(KeyError::UnsupportedAlgorithm {
            oid: "1.3.101.113".into()
        })
    );
}

#[test]
fn short_rsa_keys_are_refused_with_their_size() {
    // A 1024-bit RSA SPKI (generated with OpenSSL for this test).
    let pem = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDB5B+T2bAfIU9Gaheg1RvG0NQB
Y0Dh/CqLoxmi7EcjULbQOnvAhuPP/W8T8aqJ5ehLIagy1EY26EpKhjbi5qTak4vW
xw0g3Yi0KRtO1BGEi0SYWsZhETQk0aZ8bKq3Tuj5twB3Hdb0952IrMv/6aAW/+9H
0/vVnIBg4NhMId5wTwIDAQAB
-----END PUBLIC KEY-----
";
    assert_eq!(
        PublicKey::from_pem(pem),
        Err(KeyError::RsaKeySize { bits: 1024 })
    );
}

// ----- DSSE (corpus) -----

#[rstest]
#[case(
    "dsse-attestation-kyverno-pause2-1",
    "https://example.com/CodeReview/v1"
)]
#[case(
    "dsse-attestation-kyverno-pause2-2",
    "cosign.sigstore.dev/attestation/v1"
)]
#[case(
    "dsse-attestation-kyverno-pause2-3",
    "https://example.com/CodeReview/v1"
)]
fn valid_dsse_vectors_verify(#[case] id: &str, #[case] predicate_type: &str) {
    let Some(v) = vector(id) else { return };
    let key = v.key("cosign.pub");
    let verified = verify_dsse(&v.read("envelope.json"), std::slice::from_ref(&key))
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(verified.key_fingerprint, key.fingerprint());
    let statement = verified.content;
    assert_eq!(statement.predicate_type, predicate_type);
    assert_eq!(
        statement.payload_type, predicate_type,
        "these old cosign envelopes put the predicate type there"
    );
    assert_eq!(
        statement.statement_type,
        "https://in-toto.io/Statement/v0.1"
    );
    assert_eq!(
        statement.subjects[0].name.as_deref(),
        Some("ghcr.io/jimbugwadia/pause2")
    );
    statement
        .check_subject(&v.digest)
        .expect("subject is the image");
    assert!(matches!(
        statement.check_subject(&other_digest(&v.digest)),
        Err(VerifyError::DigestMismatch { .. })
    ));
    let expected: serde_json::Value = serde_json::from_slice(&v.read("statement.json")).unwrap();
    assert_eq!(statement.predicate, expected["predicate"]);
}

#[rstest]
#[case("dsse-attestation-kyverno-pause2-1")]
#[case("dsse-attestation-kyverno-pause2-2")]
fn every_flipped_dsse_payload_type_payload_or_signature_byte_is_refused(#[case] id: &str) {
    let Some(v) = vector(id) else { return };
    let keys = [v.key("cosign.pub")];
    let envelope: serde_json::Value = serde_json::from_slice(&v.read("envelope.json")).unwrap();
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let sig = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let payload_type = envelope["payloadType"].as_str().unwrap().to_string();
    let no_match = VerifyError::NoKeyMatched {
        tried: vec![keys[0].fingerprint()],
    };
    let check = |e: serde_json::Value, what: String| {
        let result = verify_dsse(&serde_json::to_vec(&e).unwrap(), &keys);
        assert_eq!(result.err().as_ref(), Some(&no_match), "{id}: {what}");
    };
    for i in 0..payload.len() {
        let mut flipped = payload.clone();
        flipped[i] ^= 0x01;
        let mut e = envelope.clone();
        e["payload"] = STANDARD.encode(&flipped).into();
        check(e, format!("payload byte {i}"));
    }
    let mut malformed = 0;
    for i in 0..sig.len() {
        let mut flipped = sig.clone();
        flipped[i] ^= 0x01;
        let mut e = envelope.clone();
        e["signatures"][0]["sig"] = STANDARD.encode(&flipped).into();
        let result = verify_dsse(&serde_json::to_vec(&e).unwrap(), &keys);
        malformed += usize::from(refused_signature(
            result.as_ref().err(),
            &no_match,
            "signatures[0].sig",
            &format!("{id}: signature byte {i}"),
        ));
    }
    if keys[0].algorithm() != "rsa-pkcs1-sha256" {
        assert!(malformed > 0, "{id}");
    }
    for i in 0..payload_type.len() {
        let mut bytes = payload_type.clone().into_bytes();
        bytes[i] ^= 0x01;
        let mut e = envelope.clone();
        e["payloadType"] = String::from_utf8_lossy(&bytes).into_owned().into();
        check(e, format!("payloadType byte {i}"));
    }
}

#[test]
fn truncated_envelopes_and_bundles_never_panic() {
    let Some(v) = vector("dsse-attestation-kyverno-pause2-1") else {
        return;
    };
    let keys = [v.key("cosign.pub")];
    let file = v.read("envelope.json");
    // The file ends with a newline; cutting only that still leaves the whole JSON.
    let envelope = file.trim_ascii_end();
    for len in 0..envelope.len() {
        assert!(
            verify_dsse(&envelope[..len], &keys).is_err(),
            "truncated to {len}"
        );
    }
    let bundle = bundle_around(envelope);
    for len in 0..bundle.len() {
        assert!(
            verify_bundle(&bundle[..len], &keys, &v.digest).is_err(),
            "truncated to {len}"
        );
    }
}

/// A v0.3 bundle around a corpus DSSE envelope.
fn bundle_around(envelope: &[u8]) -> Vec<u8> {
    let envelope: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        "dsseEnvelope": envelope,
    }))
    .unwrap()
}

#[test]
fn an_old_attestation_envelope_in_a_bundle_is_not_an_image_signature() {
    let Some(v) = vector("dsse-attestation-kyverno-pause2-2") else {
        return;
    };
    let bundle = bundle_around(&v.read("envelope.json"));
    // The signature verifies, but the payload type is not in-toto JSON: refused as the wrong type.
    let err = verify_bundle(&bundle, &[v.key("cosign.pub")], &v.digest).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::WrongPayloadType {
                field: "dsseEnvelope.payloadType",
                ..
            }
        ),
        "{err:?}"
    );
}

// ----- bundles made by the test signer -----

const DIGEST: &str = "sha256:b31bfb4d0213f254d361e0079deaaebefa4f82ba7aa76ef82e90b4935ad5b105";

#[rstest]
#[case::p256(Signer::p256())]
#[case::rsa(Signer::rsa())]
fn cosign_v3_bundles_verify(#[case] signer: Signer) {
    let key = PublicKey::from_pem(&signer.public_key_pem()).expect("signer key");
    assert_eq!(key.fingerprint(), signer.fingerprint());
    let bundle = signer::cosign_v3_bundle(&signer, DIGEST);
    let verified = verify_bundle(&bundle, std::slice::from_ref(&key), DIGEST).expect("verifies");
    assert_eq!(verified.key_fingerprint, key.fingerprint());
    let content = verified.content;
    assert_eq!(
        content.media_type,
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(
        content.verification_material,
        VerificationMaterial::PublicKey {
            hint: Some(signer.hint())
        }
    );
    let SignedContent::Dsse(statement) = content.signed else {
        panic!("DSSE content")
    };
    assert_eq!(statement.predicate_type, COSIGN_SIGN_PREDICATE_TYPE);
    assert_eq!(statement.sha256_subjects(), vec![DIGEST.to_string()]);

    let other = other_digest(DIGEST);
    assert_eq!(
        verify_bundle(&bundle, &[key], &other).unwrap_err(),
        VerifyError::DigestMismatch {
            signed: vec![DIGEST.into()],
            expected: other
        }
    );
}

#[test]
fn legacy_signatures_from_the_test_signer_verify() {
    for signer in [Signer::p256(), Signer::rsa()] {
        let key = PublicKey::from_pem(&signer.public_key_pem()).unwrap();
        let (payload, sig) = signer::legacy_signature(&signer, "harbor.example/team/app", DIGEST);
        let verified = verify_simple_signing(&payload, &sig, std::slice::from_ref(&key), DIGEST)
            .expect("verifies");
        assert_eq!(verified.content.docker_reference, "harbor.example/team/app");
        let (stranger, _) = Signer::p256_with_pem();
        let (payload, sig) = signer::legacy_signature(&stranger, "harbor.example/team/app", DIGEST);
        let rsa = key.algorithm() == "rsa-pkcs1-sha256";
        match verify_simple_signing(&payload, &sig, &[key], DIGEST) {
            // Another P-256 key's signature is well formed: it just does not verify.
            Err(VerifyError::NoKeyMatched { .. }) if !rsa => {}
            // A P-256 signature cannot be an RSA signature at all: its length says so.
            Err(VerifyError::Malformed { field, reason }) if rsa => {
                assert_eq!(field, LEGACY_FIELD);
                assert!(
                    reason.ends_with("bytes, an RSA signature under a 2048-bit key is 256"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn every_flipped_byte_of_a_v3_bundle_signature_or_statement_is_refused() {
    let signer = Signer::p256();
    let keys = [PublicKey::from_pem(&signer.public_key_pem()).unwrap()];
    let bundle: serde_json::Value =
        serde_json::from_slice(&signer::cosign_v3_bundle(&signer, DIGEST)).unwrap();
    let env = &bundle["dsseEnvelope"];
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let no_match = VerifyError::NoKeyMatched {
        tried: vec![keys[0].fingerprint()],
    };
    for (field, bytes) in [("payload", &payload), ("sig", &sig)] {
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            let mut b = bundle.clone();
            if field == "payload" {
                b["dsseEnvelope"]["payload"] = STANDARD.encode(&flipped).into();
            } else {
                b["dsseEnvelope"]["signatures"][0]["sig"] = STANDARD.encode(&flipped).into();
            }
            let result = verify_bundle(&serde_json::to_vec(&b).unwrap(), &keys, DIGEST);
            if field == "payload" {
                assert_eq!(result.err().as_ref(), Some(&no_match), "{field} byte {i}");
            } else {
                refused_signature(
                    result.as_ref().err(),
                    &no_match,
                    "dsseEnvelope.signatures[0].sig",
                    &format!("{field} byte {i}"),
                );
            }
        }
    }
}

#[test]
fn an_attestation_is_not_an_image_signature_unless_asked_for() {
    let signer = Signer::p256();
    let keys = [PublicKey::from_pem(&signer.public_key_pem()).unwrap()];
    let hex = DIGEST.strip_prefix("sha256:").unwrap();
    let statement = serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "harbor.example/team/app", "digest": {"sha256": hex}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {"bomFormat": "CycloneDX"},
    }))
    .unwrap();
    let bundle = signer::bundle_for_statement(&signer, &statement);
    let err = verify_bundle(&bundle, &keys, DIGEST).unwrap_err();
    assert_eq!(
        err,
        VerifyError::WrongPayloadType {
            field: "predicateType",
            found: "https://cyclonedx.org/bom".into(),
            expected: format!("{COSIGN_SIGN_PREDICATE_TYPE:?}"),
        }
    );
    let verified = verify_bundle_attestation(&bundle, &keys, DIGEST, "https://cyclonedx.org/bom")
        .expect("attestation");
    let SignedContent::Dsse(statement) = verified.content.signed else {
        panic!("DSSE")
    };
    assert_eq!(statement.predicate["bomFormat"], "CycloneDX");
}

#[test]
fn a_message_signature_verifies_only_over_the_artifact_bytes() {
    let signer = Signer::p256();
    let keys = [PublicKey::from_pem(&signer.public_key_pem()).unwrap()];
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let digest = format!(
        "sha256:{}",
        Sha256::digest(manifest)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let bundle = signer::message_signature_bundle(&signer, manifest);

    // Without the bytes, a matching messageDigest proves nothing: refused.
    assert_eq!(
        verify_bundle(&bundle, &keys, &digest).unwrap_err(),
        VerifyError::ArtifactRequired {
            digest: digest.clone()
        }
    );
    let verified =
        verify_bundle_with_artifact(&bundle, &keys, manifest).expect("verifies over the manifest");
    assert_eq!(
        verified.content.signed,
        SignedContent::MessageSignature {
            digest: digest.clone()
        }
    );

    // Other bytes: the signature does not verify over them.
    let mut other = manifest.to_vec();
    other.push(b' ');
    assert!(matches!(
        verify_bundle_with_artifact(&bundle, &keys, &other),
        Err(VerifyError::NoKeyMatched { .. })
    ));

    // A messageDigest that lies about the (correctly signed) bytes is malformed.
    let mut lying: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    lying["messageSignature"]["messageDigest"]["digest"] = STANDARD.encode([0u8; 32]).into();
    match verify_bundle_with_artifact(&serde_json::to_vec(&lying).unwrap(), &keys, manifest) {
        Err(VerifyError::Malformed { field, .. }) => {
            assert_eq!(field, "messageSignature.messageDigest")
        }
        other => panic!("{other:?}"),
    }

    // A cosign v3 DSSE bundle also verifies through the artifact entry point.
    let dsse = signer::cosign_v3_bundle(&signer, &digest);
    verify_bundle_with_artifact(&dsse, &keys, manifest)
        .expect("DSSE bundle for the manifest digest");
}

#[test]
fn older_bundle_media_types_and_certificate_material_are_read() {
    let signer = Signer::p256();
    let keys = [PublicKey::from_pem(&signer.public_key_pem()).unwrap()];
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&signer::cosign_v3_bundle(&signer, DIGEST)).unwrap();
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2".into();
    bundle["verificationMaterial"] = serde_json::json!({
        "x509CertificateChain": {"certificates": [{"rawBytes": STANDARD.encode(b"leaf")}, {"rawBytes": STANDARD.encode(b"ca")}]},
        "tlogEntries": [{"logIndex": "1"}],
    });
    let verified =
        verify_bundle(&serde_json::to_vec(&bundle).unwrap(), &keys, DIGEST).expect("v0.2 bundle");
    assert_eq!(
        verified.content.verification_material,
        VerificationMaterial::CertificateChain {
            der: vec![b"leaf".to_vec(), b"ca".to_vec()]
        }
    );
    assert_eq!(verified.content.tlog_entries.len(), 1);
}
