//! Test-side cosign signing: throwaway keys and the exact material `cosign sign --key` produces, for
//! tests that need signed images without the cosign binary (registry fixtures, admission tests).
//!
//! - [`Signer::p256`]: a fresh ECDSA P-256 key (what `cosign generate-key-pair` makes), or
//!   [`Signer::rsa`]: the fixed RSA-2048 key in `testdata/keys/`;
//! - [`legacy_signature`]: the simple-signing payload and `dev.cosignproject.cosign/signature` value of a
//!   `sha256-<digest>.sig` layer (cosign v2 default);
//! - [`cosign_v3_bundle`]: the sigstore bundle v0.3 JSON that cosign v3 attaches as an OCI referrer (a DSSE
//!   envelope around an in-toto statement with predicate type `https://sigstore.dev/cosign/sign/v1`).
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, RSA_PKCS1_SHA256,
};
use sha2::{Digest as _, Sha256};

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes);
/// the 65-byte uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

enum KeyPair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs like cosign: ECDSA P-256 with SHA-256 (ASN.1 DER signature) or RSA PKCS#1
/// v1.5 with SHA-256.
pub struct Signer {
    pair: KeyPair,
    spki_der: Vec<u8>,
    rng: SystemRandom,
}

impl Signer {
    /// A fresh P-256 key pair.
    pub fn p256() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("generate P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("load generated P-256 key");
        let mut spki_der = P256_SPKI_PREFIX.to_vec();
        spki_der.extend_from_slice(pair.public_key().as_ref());
        Signer {
            pair: KeyPair::Ecdsa(pair),
            spki_der,
            rng,
        }
    }

    /// The fixed RSA-2048 test key (`testdata/keys/rsa2048-test.pk8.pem`).
    pub fn rsa() -> Signer {
        let read = |name: &str| {
            let path = super::path(&format!("testdata/keys/{name}"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            pem::parse(text).expect("PEM").into_contents()
        };
        let pair = RsaKeyPair::from_pkcs8(&read("rsa2048-test.pk8.pem")).expect("RSA PKCS#8 key");
        Signer {
            pair: KeyPair::Rsa(pair),
            spki_der: read("rsa2048-test.pub.pem"),
            rng: SystemRandom::new(),
        }
    }

    /// A fresh P-256 key pair and its `cosign.pub`-style PEM public key.
    pub fn p256_with_pem() -> (Signer, String) {
        let signer = Signer::p256();
        let pem = signer.public_key_pem();
        (signer, pem)
    }

    /// The public key as `cosign.pub` holds it (PEM `PUBLIC KEY`, DER SPKI).
    pub fn public_key_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der.clone()))
    }

    /// `sha256:` + hex SHA-256 of the DER SPKI: what `PublicKey::fingerprint` reports for this key.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex(&Sha256::digest(&self.spki_der)))
    }

    /// cosign's `publicKey.hint` in a bundle: base64 of the SHA-256 of the DER SPKI.
    pub fn hint(&self) -> String {
        STANDARD.encode(Sha256::digest(&self.spki_der))
    }

    /// Signs `message` (hashed with SHA-256 by the scheme).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            KeyPair::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
            KeyPair::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .expect("RSA sign");
                sig
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The simple-signing payload cosign writes for `repo@digest` (compact JSON, keys in cosign's order,
/// `optional: null`), as the layer blob of a `.sig` manifest.
pub fn simple_signing_payload(repo: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repo},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .expect("serialize payload")
}

/// A legacy cosign signature of `repo@digest`: the payload (layer blob) and the base64 signature
/// (`dev.cosignproject.cosign/signature` annotation).
pub fn legacy_signature(signer: &Signer, repo: &str, digest: &str) -> (Vec<u8>, String) {
    let payload = simple_signing_payload(repo, digest);
    let signature = STANDARD.encode(signer.sign(&payload));
    (payload, signature)
}

/// The in-toto statement of `cosign sign` v3 for an image digest `sha256:<hex>`: one subject with only a
/// digest, predicate type `https://sigstore.dev/cosign/sign/v1`, empty predicate.
pub fn cosign_v3_statement(digest: &str) -> Vec<u8> {
    let (algorithm, hex) = digest.split_once(':').expect("digest is algorithm:hex");
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {algorithm: hex}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }))
    .expect("serialize statement")
}

/// A DSSE envelope (JSON value) of `payload` with `payload_type`, signed over the PAE.
pub fn dsse_envelope(signer: &Signer, payload_type: &str, payload: &[u8]) -> serde_json::Value {
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(payload);
    serde_json::json!({
        "payload": STANDARD.encode(payload),
        "payloadType": payload_type,
        "signatures": [{"sig": STANDARD.encode(signer.sign(&pae))}],
    })
}

/// A sigstore bundle v0.3 around an arbitrary in-toto statement (e.g. an attestation).
pub fn bundle_for_statement(signer: &Signer, statement: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": signer.hint()}},
        "dsseEnvelope": dsse_envelope(signer, "application/vnd.in-toto+json", statement),
    }))
    .expect("serialize bundle")
}

/// The bundle cosign v3 `sign --key --tlog-upload=false` attaches for an image digest: the blob of the
/// referrer's single layer (media type `application/vnd.dev.sigstore.bundle.v0.3+json`). Without Rekor
/// there are no `tlogEntries`; with Rekor cosign adds one, which the offline verifier does not check.
pub fn cosign_v3_bundle(signer: &Signer, digest: &str) -> Vec<u8> {
    bundle_for_statement(signer, &cosign_v3_statement(digest))
}

/// A `messageSignature` bundle over `artifact` (e.g. an image manifest): what sigstore clients write
/// when they sign bytes rather than a statement.
pub fn message_signature_bundle(signer: &Signer, artifact: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": signer.hint()}},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(Sha256::digest(artifact))},
            "signature": STANDARD.encode(signer.sign(artifact)),
        },
    }))
    .expect("serialize bundle")
}
