//! Offline verification of cosign image signatures against configured public keys.
//!
//! Three formats, one entry point each, all taking the raw bytes fetched from the registry:
//!
//! - [`verify_simple_signing`]: cosign's legacy `sha256-<digest>.sig` tag (a simple-signing JSON payload
//!   plus the `dev.cosignproject.cosign/signature` annotation);
//! - [`verify_dsse`]: a DSSE envelope around an in-toto statement (`cosign attest`, `.att` tags);
//! - [`verify_bundle`] / [`verify_bundle_with_artifact`]: a sigstore bundle (v0.1 to v0.3), what cosign v3
//!   attaches as an OCI 1.1 referrer by default.
//!
//! Every check verifies the signature over the exact signed bytes first and only then reads what they
//! say, and every success returns [`Verified`]: the content plus the fingerprint of the key that
//! verified it. Nothing here does I/O, keeps state, or checks a transparency log or certificate chain;
//! see `docs/image-verification.md`.

mod bundle;
mod dsse;
pub mod encoding;
mod error;
mod key;
mod simple_signing;
mod spki;

pub use bundle::{
    verify_bundle, verify_bundle_attestation, verify_bundle_with_artifact, BundleContent,
    SignedContent, VerificationMaterial, BUNDLE_MEDIA_TYPE_V0_3, COSIGN_SIGN_PREDICATE_TYPE,
};
pub use dsse::{pae, verify_dsse, DsseStatement, Subject, IN_TOTO_PAYLOAD_TYPE};
pub use error::{KeyError, SignatureError, VerifyError};
pub use key::PublicKey;
pub use simple_signing::{verify_simple_signing, SimpleSigning, SIMPLE_SIGNING_TYPE};

/// Content whose signature verified, and which key verified it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    /// [`PublicKey::fingerprint`] of the first configured key that verified the signature.
    pub key_fingerprint: String,
    /// What was signed.
    pub content: T,
}

/// Returns the first key in `keys` under which `signature` verifies over `message`.
fn first_verifying_key<'k>(
    keys: &'k [PublicKey],
    message: &[u8],
    signature: &[u8],
) -> Option<&'k PublicKey> {
    keys.iter()
        .find(|key| key.verify(message, signature).is_ok())
}

/// The error for "none of `keys` verified any of `signatures` (field name, decoded bytes)":
/// [`VerifyError::NoKeys`] when there were none to try; [`VerifyError::Malformed`], naming the first
/// signature, when every signature is malformed for every key's scheme (no key could have made it,
/// whatever was signed); otherwise [`VerifyError::NoKeyMatched`] (altered signed content or signature,
/// or made with another key: cryptography cannot tell these apart).
fn no_key_matched(keys: &[PublicKey], signatures: &[(&str, &[u8])]) -> VerifyError {
    if keys.is_empty() {
        return VerifyError::NoKeys;
    }
    let malformed = |signature: &[u8]| -> Option<String> {
        let mut reasons: Vec<String> = Vec::new();
        for key in keys {
            let reason = key.check_signature_encoding(signature).err()?;
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        Some(reasons.join("; "))
    };
    let reasons: Option<Vec<String>> = signatures.iter().map(|(_, s)| malformed(s)).collect();
    match (reasons, signatures.first()) {
        (Some(reasons), Some((field, _))) => VerifyError::Malformed {
            field: (*field).to_string(),
            reason: reasons.into_iter().next().unwrap_or_default(),
        },
        _ => VerifyError::NoKeyMatched {
            tried: keys.iter().map(PublicKey::fingerprint).collect(),
        },
    }
}
