//! [`PublicKey`]: a configured verification key (what `cosign generate-key-pair` writes as `cosign.pub`),
//! loaded from PEM, checked once at load time, and used to verify one signature over one message with
//! ring. Supported: ECDSA P-256 with SHA-256, ECDSA P-384 with SHA-384 (ASN.1 DER signatures, as cosign
//! writes them), RSA PKCS#1 v1.5 with SHA-256 (2048..=8192-bit moduli) and Ed25519.

use std::fmt;

use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};

use super::encoding::hex;
use super::spki::{self, KeyKind};
use super::{KeyError, SignatureError};

/// A public key to verify signatures with.
///
/// Equality is by key (the DER `SubjectPublicKeyInfo`), so the same key loaded from SPKI and PKCS#1 PEM
/// compares equal.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    /// The bytes ring's verifier takes for `kind` (EC point, PKCS#1 DER, raw Ed25519 key).
    key: Vec<u8>,
    /// `sha256:` + hex of the SHA-256 of the DER SubjectPublicKeyInfo.
    fingerprint: String,
}

impl PublicKey {
    /// Loads one PEM public key: a `PUBLIC KEY` block (DER SubjectPublicKeyInfo, what `cosign.pub`
    /// holds) or an `RSA PUBLIC KEY` block (PKCS#1). Text around the block is ignored; more than one
    /// block is an error, so that a file meant to hold one key cannot silently hold a second.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let block = single_pem_block(pem)?;
        match block.tag() {
            "PUBLIC KEY" => PublicKey::from_spki_der(block.contents()),
            "RSA PUBLIC KEY" => {
                spki::check_rsa_public_key(block.contents())?;
                PublicKey::from_spki_der(&spki::rsa_spki(block.contents()))
            }
            other => Err(KeyError::PemLabel {
                expected: "PUBLIC KEY\" or \"RSA PUBLIC KEY",
                found: other.to_string(),
            }),
        }
    }

    /// Loads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let decoded = spki::decode_spki(der)?;
        check_ec_point(decoded.kind, &decoded.key)?;
        Ok(PublicKey {
            kind: decoded.kind,
            key: decoded.key,
            fingerprint: format!("sha256:{}", hex(&Sha256::digest(der))),
        })
    }

    /// Takes the subject public key out of one PEM `CERTIFICATE`.
    ///
    /// This does NOT validate the certificate: no chain, validity period, key usage or identity is
    /// checked. It is for setups where a certificate file is simply how the key is distributed.
    pub fn from_certificate_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let block = single_pem_block(pem)?;
        if block.tag() != "CERTIFICATE" {
            return Err(KeyError::PemLabel {
                expected: "CERTIFICATE",
                found: block.tag().to_string(),
            });
        }
        PublicKey::from_certificate_der(block.contents())
    }

    /// Takes the subject public key out of a DER X.509 v3 certificate (see
    /// [`PublicKey::from_certificate_pem`]: the certificate is parsed, not validated).
    pub fn from_certificate_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let der = CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| KeyError::Certificate(format!("{e:?}")))?;
        PublicKey::from_spki_der(cert.subject_public_key_info().as_ref())
    }

    /// Verifies `signature` over `message`. The message is hashed by the algorithm: SHA-256, or SHA-384
    /// for P-384; Ed25519 signs the message itself. ECDSA signatures are ASN.1 DER (cosign's encoding).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        UnparsedPublicKey::new(self.ring_algorithm(), &self.key)
            .verify(message, signature)
            .map_err(|_| SignatureError {
                algorithm: self.algorithm(),
                fingerprint: self.fingerprint.clone(),
            })
    }

    /// Checks that `signature` is encoded as a signature of this key's scheme could be (DER for ECDSA,
    /// 64 bytes for Ed25519, the modulus length for RSA), without verifying it. A signature that fails
    /// this cannot have been made by this key whatever was signed: it is malformed (truncated,
    /// corrupted, or of another scheme), not a signature by some other key. Says what is wrong.
    pub fn check_signature_encoding(&self, signature: &[u8]) -> Result<(), String> {
        match self.kind {
            KeyKind::EcdsaP256 => spki::check_ecdsa_signature_der(signature, 32),
            KeyKind::EcdsaP384 => spki::check_ecdsa_signature_der(signature, 48),
            KeyKind::Ed25519 if signature.len() == 64 => Ok(()),
            KeyKind::Ed25519 => Err(format!(
                "{} bytes, an Ed25519 signature is 64",
                signature.len()
            )),
            KeyKind::Rsa => match spki::rsa_modulus_len(&self.key) {
                Some(len) if len != signature.len() => Err(format!(
                    "{} bytes, an RSA signature under a {}-bit key is {len}",
                    signature.len(),
                    len * 8
                )),
                _ => Ok(()),
            },
        }
    }

    /// `sha256:` + lowercase hex of the SHA-256 of the DER SubjectPublicKeyInfo (the same for the key
    /// whichever PEM form it was loaded from). Equal to `openssl pkey -pubin -outform DER | sha256sum`.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The signature scheme this key verifies: `ecdsa-p256-sha256`, `ecdsa-p384-sha384`,
    /// `rsa-pkcs1-sha256` or `ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            KeyKind::EcdsaP256 => "ecdsa-p256-sha256",
            KeyKind::EcdsaP384 => "ecdsa-p384-sha384",
            KeyKind::Rsa => "rsa-pkcs1-sha256",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    fn ring_algorithm(&self) -> &'static dyn VerificationAlgorithm {
        match self.kind {
            KeyKind::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
            KeyKind::EcdsaP384 => &sig::ECDSA_P384_SHA384_ASN1,
            KeyKind::Rsa => &sig::RSA_PKCS1_2048_8192_SHA256,
            KeyKind::Ed25519 => &sig::ED25519,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

fn single_pem_block(text: &str) -> Result<pem::Pem, KeyError> {
    let mut blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
    match blocks.len() {
        1 => Ok(blocks.remove(0)),
        n => Err(KeyError::PemBlockCount(n)),
    }
}

/// ring checks ECDSA public keys only when verifying, where an invalid key is indistinguishable from a
/// bad signature. An ECDH key agreement validates the peer point (on the curve, not the identity), so one
/// agreement against a throwaway key rejects an invalid key at load time, with a message that says so.
fn check_ec_point(kind: KeyKind, point: &[u8]) -> Result<(), KeyError> {
    use ring::agreement;
    let algorithm = match kind {
        KeyKind::EcdsaP256 => &agreement::ECDH_P256,
        KeyKind::EcdsaP384 => &agreement::ECDH_P384,
        KeyKind::Rsa | KeyKind::Ed25519 => return Ok(()),
    };
    let invalid = KeyError::InvalidKey {
        algorithm: "ECDSA",
        reason: "the point is not on the curve",
    };
    let rng = ring::rand::SystemRandom::new();
    let ours = agreement::EphemeralPrivateKey::generate(algorithm, &rng).map_err(|_| {
        KeyError::InvalidKey {
            algorithm: "ECDSA",
            reason: "could not generate a key to check the point with",
        }
    })?;
    agreement::agree_ephemeral(
        ours,
        &agreement::UnparsedPublicKey::new(algorithm, point),
        |_| (),
    )
    .map_err(|_| invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSYBOX_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu
OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==
-----END PUBLIC KEY-----
";

    #[test]
    fn loads_a_cosign_p256_key() {
        let key = PublicKey::from_pem(BUSYBOX_PUB).unwrap();
        assert_eq!(key.algorithm(), "ecdsa-p256-sha256");
        assert!(key.fingerprint().starts_with("sha256:"));
        assert_eq!(key.fingerprint().len(), 7 + 64);
        let debug = format!("{key:?}");
        assert!(
            debug.contains("ecdsa-p256-sha256") && debug.contains(&key.fingerprint()),
            "{debug}"
        );
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` of the given integer contents.
    fn ecdsa_der(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, r.len() as u8];
        body.extend_from_slice(r);
        body.extend([0x02, s.len() as u8]);
        body.extend_from_slice(s);
        let mut der = vec![0x30, body.len() as u8];
        der.extend(body);
        der
    }

    #[test]
    fn ecdsa_signature_encoding_is_checked_without_verifying() {
        let key = PublicKey::from_pem(BUSYBOX_PUB).unwrap();
        // Well-formed: any positive r and s of at most 32 bytes (a leading 0x00 sign byte allowed).
        let mut high = vec![0u8];
        high.extend([0xffu8; 32]);
        for ok in [ecdsa_der(&[1], &[2]), ecdsa_der(&high, &[0x7f; 32])] {
            assert_eq!(key.check_signature_encoding(&ok), Ok(()));
        }
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                vec![0; 3],
                "not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 3 bytes",
            ),
            (
                vec![],
                "not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 0 bytes",
            ),
            (
                [ecdsa_der(&[1], &[2]), vec![0]].concat(),
                "not a DER ECDSA signature (a SEQUENCE of two INTEGERs), 9 bytes",
            ),
            (
                ecdsa_der(&[0], &[2]),
                "ECDSA signature value r is not positive",
            ),
            (
                ecdsa_der(&[1], &[0x80]),
                "ECDSA signature value s is not positive",
            ),
            (
                ecdsa_der(&[0x01; 33], &[2]),
                "ECDSA signature value r is 33 bytes, longer than the curve's 32",
            ),
        ];
        for (signature, want) in cases {
            assert_eq!(
                key.check_signature_encoding(&signature),
                Err(want.to_string()),
                "{signature:02x?}"
            );
        }
    }

    #[test]
    fn rejects_a_point_off_the_curve() {
        let block = pem::parse(BUSYBOX_PUB).unwrap();
        let mut der = block.contents().to_vec();
        let last = der.len() - 1;
        der[last] ^= 1;
        assert_eq!(
            PublicKey::from_spki_der(&der),
            Err(KeyError::InvalidKey {
                algorithm: "ECDSA",
                reason: "the point is not on the curve"
            })
        );
    }

    #[test]
    fn wrong_label_and_block_count_are_named() {
        let private = BUSYBOX_PUB.replace("PUBLIC KEY", "EC PRIVATE KEY");
        assert!(
            matches!(PublicKey::from_pem(&private), Err(KeyError::PemLabel { found, .. }) if found == "EC PRIVATE KEY")
        );
        assert_eq!(
            PublicKey::from_pem("no pem here"),
            Err(KeyError::PemBlockCount(0))
        );
        let two = format!("{BUSYBOX_PUB}{BUSYBOX_PUB}");
        assert_eq!(PublicKey::from_pem(&two), Err(KeyError::PemBlockCount(2)));
        assert!(matches!(
            PublicKey::from_certificate_pem(BUSYBOX_PUB),
            Err(KeyError::PemLabel {
                expected: "CERTIFICATE",
                ..
            })
        ));
    }
}
