//! The cosign / sigstore parsers of `images::signature`. Each of them checks the signature over the
//! exact signed bytes before it reads what they say, so random bytes would never get past the signature
//! check: this target signs what the fuzzer wrote with a fixed Ed25519 key (which regate accepts as a
//! cosign key) wherever a signature is needed, so the parsers behind the check are reached.
//!
//! The first byte of the input picks what the rest is:
//! - 0: a public key or certificate, PEM or DER (`PublicKey::from_*`), then used to check a signature;
//! - 1: a simple-signing payload (`verify_simple_signing`), signed;
//! - 2: a DSSE envelope (`verify_dsse`), as is (its signatures rarely verify);
//! - 3: an in-toto statement, put in a DSSE envelope and signed (`verify_dsse`);
//! - 4: a sigstore bundle (`verify_bundle*`), as is;
//! - 5: a sigstore bundle whose DSSE payload or message signature is re-signed before verifying.
//!
//! Nothing may panic, and what verifies must be consistent with what was signed.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use regate::images::signature::encoding::{encode_b64, sha256_digest};
use regate::images::signature::{
    pae, verify_bundle, verify_bundle_attestation, verify_bundle_with_artifact, verify_dsse,
    verify_simple_signing, PublicKey, SignedContent, IN_TOTO_PAYLOAD_TYPE,
};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value as Json};

/// The image manifest a bundle's message signature is over, and whose digest is expected.
const ARTIFACT: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;

fn signer() -> &'static (Ed25519KeyPair, PublicKey) {
    static SIGNER: OnceLock<(Ed25519KeyPair, PublicKey)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("Ed25519 seed");
        // SubjectPublicKeyInfo for Ed25519 (RFC 8410): the algorithm identifier, then the raw key.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let key = PublicKey::from_spki_der(&spki).expect("regate reads an Ed25519 SPKI");
        (pair, key)
    })
}

fn sign(message: &[u8]) -> String {
    encode_b64(signer().0.sign(message).as_ref())
}

fn keys() -> &'static [PublicKey] {
    std::slice::from_ref(&signer().1)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let digest = sha256_digest(ARTIFACT);
    match mode % 6 {
        0 => keys_and_certificates(rest),
        1 => {
            let signature = sign(rest);
            if let Ok(verified) = verify_simple_signing(rest, &signature, keys(), &digest) {
                assert_eq!(verified.content.manifest_digest, digest);
                assert_eq!(verified.key_fingerprint, keys()[0].fingerprint());
            }
        }
        2 => {
            let _ = verify_dsse(rest, keys());
        }
        3 => {
            let envelope = json!({
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "payload": encode_b64(rest),
                "signatures": [{"sig": sign(&pae(IN_TOTO_PAYLOAD_TYPE, rest))}],
            });
            let bytes = serde_json::to_vec(&envelope).expect("JSON");
            if let Ok(verified) = verify_dsse(&bytes, keys()) {
                let statement = verified.content;
                assert_eq!(statement.payload_type, IN_TOTO_PAYLOAD_TYPE);
                let _ = statement.sha256_subjects();
                let matched = statement.check_subject(&digest).is_ok();
                assert_eq!(matched, statement.sha256_subjects().contains(&digest));
            }
        }
        4 => bundle(rest, &digest),
        _ => {
            let Ok(mut bundle_json) = serde_json::from_slice::<Json>(rest) else {
                return;
            };
            resign(&mut bundle_json);
            bundle(&serde_json::to_vec(&bundle_json).expect("JSON"), &digest);
        }
    }
});

fn bundle(bytes: &[u8], digest: &str) {
    let _ = verify_bundle(bytes, keys(), digest);
    let _ = verify_bundle_attestation(bytes, keys(), digest, "https://example.com/CodeReview/v1");
    if let Ok(verified) = verify_bundle_with_artifact(bytes, keys(), ARTIFACT) {
        match verified.content.signed {
            SignedContent::Dsse(statement) => assert!(statement.check_subject(digest).is_ok()),
            SignedContent::MessageSignature { digest: signed } => assert_eq!(signed, digest),
        }
    }
}

/// Replaces the signatures of a bundle's DSSE envelope or message signature by valid ones.
fn resign(bundle: &mut Json) {
    if let Some(envelope) = bundle.get_mut("dsseEnvelope").and_then(Json::as_object_mut) {
        let payload_type = envelope
            .get("payloadType")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let payload = envelope
            .get("payload")
            .and_then(Json::as_str)
            .and_then(|p| {
                base64::engine::general_purpose::STANDARD
                    .decode(p.trim())
                    .ok()
            });
        if let Some(payload) = payload {
            let sig = sign(&pae(payload_type, &payload));
            envelope.insert("signatures".into(), json!([{ "sig": sig }]));
        }
    }
    if let Some(message) = bundle
        .get_mut("messageSignature")
        .and_then(Json::as_object_mut)
    {
        message.insert("signature".into(), json!(sign(ARTIFACT)));
    }
}

fn keys_and_certificates(rest: &[u8]) {
    let mut parsed = vec![
        PublicKey::from_spki_der(rest),
        PublicKey::from_certificate_der(rest),
    ];
    if let Ok(text) = std::str::from_utf8(rest) {
        parsed.push(PublicKey::from_pem(text));
        parsed.push(PublicKey::from_certificate_pem(text));
    }
    for key in parsed.into_iter().flatten() {
        let _ = key.algorithm();
        assert!(key.fingerprint().starts_with("sha256:"));
        // Split the input into a message and a signature for the key's checks.
        let (message, signature) = rest.split_at(rest.len() / 2);
        let _ = key.check_signature_encoding(signature);
        let _ = key.verify(message, signature);
    }
}
