//! Small encodings shared by the formats: lenient base64 for signature fields, lowercase hex, and the
//! `sha256:<hex>` image digest that every check compares against.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};
use sha2::{Digest as _, Sha256};

use super::VerifyError;

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Decodes `value` as base64 (standard alphabet, else URL-safe, as DSSE allows; padding optional;
/// surrounding whitespace ignored). The encoding is not signed, only the decoded bytes are, so accepting
/// either alphabet adds no malleability. An error names `field`.
pub(crate) fn decode_b64(field: &str, value: &str) -> Result<Vec<u8>, VerifyError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(VerifyError::malformed(field, "empty"));
    }
    STANDARD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .map_err(|e| VerifyError::malformed(field, format!("not base64 ({e})")))
}

/// Standard base64 with padding, as cosign and protobuf JSON write it.
pub fn encode_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `sha256:` + hex SHA-256 of `bytes`: the OCI digest of a blob or manifest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Checks the caller's expected digest is `sha256:<64 lowercase hex>` and returns its hex part.
///
/// Only SHA-256 is accepted: it is what cosign signs and what every registry uses for manifests. The
/// comparison against signed content is exact, so a non-canonical expected digest is a caller bug and is
/// rejected rather than silently failing every comparison.
pub(crate) fn expected_sha256_hex(expected_digest: &str) -> Result<&str, VerifyError> {
    let invalid = || VerifyError::InvalidExpectedDigest(expected_digest.to_string());
    let hex = expected_digest
        .strip_prefix("sha256:")
        .ok_or_else(invalid)?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_both_alphabets_and_missing_padding() {
        assert_eq!(decode_b64("f", "+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_b64("f", "-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_b64("f", " +/8=\n").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn base64_errors_name_the_field() {
        let e = decode_b64("messageSignature.signature", "!!!").unwrap_err();
        assert!(
            matches!(&e, VerifyError::Malformed { field, .. } if field == "messageSignature.signature")
        );
        assert!(e.to_string().contains("messageSignature.signature"), "{e}");
        assert!(matches!(
            decode_b64("f", "  "),
            Err(VerifyError::Malformed { .. })
        ));
    }

    #[test]
    fn expected_digest_must_be_canonical_sha256() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(expected_sha256_hex(&good).unwrap(), "a".repeat(64));
        for bad in [
            "a".repeat(64),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{}", "a".repeat(64)),
            format!("sha256:{}g", "a".repeat(63)),
            String::new(),
        ] {
            assert!(
                matches!(
                    expected_sha256_hex(&bad),
                    Err(VerifyError::InvalidExpectedDigest(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn digest_of_empty_blob() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
