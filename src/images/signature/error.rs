//! The typed errors of signature verification: [`KeyError`] (loading a configured key), [`SignatureError`]
//! (one key, one signature) and [`VerifyError`] (checking cosign material against a set of keys and an
//! image digest). Every `Display` names the field or the check that failed, because these messages reach
//! users in admission denials and logs.

/// A public key (or the certificate holding it) could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not PEM, or the base64 inside the PEM block is corrupt.
    #[error("public key PEM: {0}")]
    Pem(String),
    /// The text holds no PEM block, or more than one.
    #[error("public key PEM: expected exactly one PEM block, found {0}")]
    PemBlockCount(usize),
    /// The PEM block has a label this loader does not take.
    #[error("public key PEM: expected a \"{expected}\" block, found \"{found}\"")]
    PemLabel {
        /// What the loader takes.
        expected: &'static str,
        /// The label in the text.
        found: String,
    },
    /// The DER inside is not a well-formed structure of the named kind.
    #[error("public key: malformed {structure} DER")]
    MalformedDer {
        /// `SubjectPublicKeyInfo`, `RSAPublicKey`, `EC parameters`.
        structure: &'static str,
    },
    /// The key algorithm is not one we verify with.
    #[error("public key: unsupported algorithm OID {oid} (supported: ECDSA P-256/P-384, RSA 2048..=8192 bits, Ed25519)")]
    UnsupportedAlgorithm {
        /// Dotted OID from the SubjectPublicKeyInfo.
        oid: String,
    },
    /// An EC key on a curve other than P-256 or P-384.
    #[error("public key: unsupported elliptic curve OID {oid} (supported: P-256, P-384)")]
    UnsupportedCurve {
        /// Dotted OID of the named curve.
        oid: String,
    },
    /// The key bytes are not a valid public key of the named algorithm (for EC: not a point on the curve).
    #[error("public key: the {algorithm} public key value is invalid ({reason})")]
    InvalidKey {
        /// The algorithm the key claims.
        algorithm: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An RSA modulus outside the range we accept.
    #[error("public key: RSA modulus is {bits} bits; supported are 2048..=8192")]
    RsaKeySize {
        /// Bit length of the modulus.
        bits: usize,
    },
    /// The X.509 certificate could not be parsed.
    #[error("certificate: not a well-formed X.509 v3 certificate ({0})")]
    Certificate(String),
}

/// One signature did not verify under one key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify with {algorithm} key {fingerprint}")]
pub struct SignatureError {
    /// The key's algorithm, as [`super::PublicKey::algorithm`].
    pub algorithm: &'static str,
    /// The key's fingerprint, as [`super::PublicKey::fingerprint`].
    pub fingerprint: String,
}

/// Verifying cosign signature material failed.
///
/// The variants are what a caller branches on: [`VerifyError::Malformed`] (the material is broken: a
/// registry or signer problem), [`VerifyError::NoKeyMatched`] (well-formed, but not signed by any trusted
/// key), [`VerifyError::DigestMismatch`] (signed, but for another image: a replayed signature),
/// [`VerifyError::WrongPayloadType`] (signed, but not an image signature, e.g. an attestation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A field of the signature material is missing or not what its format requires.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The field, in the format's own spelling (`dsseEnvelope.signatures[0].sig`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No configured key verifies the signature (or any of the signatures).
    #[error("signature does not verify with any configured key (tried {})", list_or_none(.tried))]
    NoKeyMatched {
        /// Fingerprints of the keys tried, in order.
        tried: Vec<String>,
    },
    /// There were no keys to try.
    #[error("no public keys configured to verify the signature with")]
    NoKeys,
    /// The signed content names other digests than the image being admitted.
    #[error("digest mismatch: the signed payload names {}, the admitted image is {expected}", list_or_none(.signed))]
    DigestMismatch {
        /// Digests named by the signed content (`sha256:<hex>`).
        signed: Vec<String>,
        /// The digest of the image being admitted.
        expected: String,
    },
    /// Validly signed content of another kind than the one asked for.
    #[error("wrong payload type: {field} is {found:?}, expected {expected}")]
    WrongPayloadType {
        /// The field holding the type.
        field: &'static str,
        /// Its value.
        found: String,
        /// What is accepted.
        expected: String,
    },
    /// The media type or digest algorithm is one this verifier does not handle.
    #[error("unsupported {field}: {found:?} (supported: {supported})")]
    Unsupported {
        /// The field.
        field: &'static str,
        /// Its value.
        found: String,
        /// What is supported.
        supported: &'static str,
    },
    /// The caller's expected digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("expected image digest {0:?} is not sha256:<64 lowercase hex digits>")]
    InvalidExpectedDigest(String),
    /// A `messageSignature` bundle signs the artifact's bytes; it can only be checked with them.
    #[error(
        "the bundle holds a messageSignature over the artifact bytes (messageDigest {digest}); \
         verify it with verify_bundle_with_artifact and the image manifest bytes"
    )]
    ArtifactRequired {
        /// The bundle's `messageDigest`, as `sha256:<hex>`.
        digest: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

impl VerifyError {
    /// Shorthand for [`VerifyError::Malformed`].
    pub(crate) fn malformed(field: impl Into<String>, reason: impl Into<String>) -> Self {
        VerifyError::Malformed {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
