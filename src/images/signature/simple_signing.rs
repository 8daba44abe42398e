//! cosign's legacy image signature: the "simple signing" payload stored as the layer of the
//! `sha256-<digest>.sig` manifest (media type `application/vnd.dev.cosign.simplesigning.v1+json`), signed
//! over its raw bytes, with the base64 signature in the layer annotation
//! `dev.cosignproject.cosign/signature`. Format: cosign `specs/SIGNATURE_SPEC.md`.

use serde_json::Value;

use super::encoding::{decode_b64, expected_sha256_hex};
use super::{first_verifying_key, no_key_matched, PublicKey, Verified, VerifyError};

/// The `critical.type` of a cosign image signature.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// A verified simple-signing payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`: the repository the signer named. Informational: cosign does
    /// not require it to match the admitted image's repository (images are copied between registries), and
    /// neither does this check.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`, equal to the expected digest.
    pub manifest_digest: String,
    /// `optional`: the signer's annotations (`cosign sign -a`), or `null`.
    pub optional: Value,
}

/// Verifies cosign's legacy `.sig` layer.
///
/// `signature_b64` (the `dev.cosignproject.cosign/signature` annotation: base64 of a DER ECDSA, PKCS#1
/// v1.5 RSA or Ed25519 signature) must verify over the RAW `payload` bytes with one of `keys`; only then
/// is the payload parsed. Its `critical.type` must be [`SIMPLE_SIGNING_TYPE`] and
/// `critical.image.docker-manifest-digest` must equal `expected_digest` (`sha256:<64 lowercase hex>`).
pub fn verify_simple_signing(
    payload: &[u8],
    signature_b64: &str,
    keys: &[PublicKey],
    expected_digest: &str,
) -> Result<Verified<SimpleSigning>, VerifyError> {
    expected_sha256_hex(expected_digest)?;
    const FIELD: &str = "signature (dev.cosignproject.cosign/signature)";
    let signature = decode_b64(FIELD, signature_b64)?;
    let key = first_verifying_key(keys, payload, &signature)
        .ok_or_else(|| no_key_matched(keys, &[(FIELD, &signature)]))?;
    let content = parse_payload(payload)?;
    if content.manifest_digest != expected_digest {
        return Err(VerifyError::DigestMismatch {
            signed: vec![content.manifest_digest],
            expected: expected_digest.to_string(),
        });
    }
    Ok(Verified {
        key_fingerprint: key.fingerprint(),
        content,
    })
}

/// Parses a simple-signing payload and checks its type. The digest is not compared here.
fn parse_payload(payload: &[u8]) -> Result<SimpleSigning, VerifyError> {
    let doc: Value = serde_json::from_slice(payload)
        .map_err(|e| VerifyError::malformed("simple-signing payload", format!("not JSON ({e})")))?;
    let critical = doc
        .get("critical")
        .filter(|c| c.is_object())
        .ok_or_else(|| VerifyError::malformed("critical", "missing or not an object"))?;
    let kind = string_at(critical, &["type"], "critical.type")?;
    if kind != SIMPLE_SIGNING_TYPE {
        return Err(VerifyError::WrongPayloadType {
            field: "critical.type",
            found: kind.to_string(),
            expected: format!("{SIMPLE_SIGNING_TYPE:?}"),
        });
    }
    let manifest_digest = string_at(
        critical,
        &["image", "docker-manifest-digest"],
        "critical.image.docker-manifest-digest",
    )?;
    let docker_reference = string_at(
        critical,
        &["identity", "docker-reference"],
        "critical.identity.docker-reference",
    )?;
    Ok(SimpleSigning {
        docker_reference: docker_reference.to_string(),
        manifest_digest: manifest_digest.to_string(),
        optional: doc.get("optional").cloned().unwrap_or(Value::Null),
    })
}

fn string_at<'v>(value: &'v Value, path: &[&str], field: &str) -> Result<&'v str, VerifyError> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| VerifyError::malformed(field, "missing or not a string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";

    #[test]
    fn parses_the_cosign_payload() {
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/busybox"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":{{"creator":"OBS"}}}}"#
        );
        let parsed = parse_payload(payload.as_bytes()).unwrap();
        assert_eq!(parsed.docker_reference, "r/busybox");
        assert_eq!(parsed.manifest_digest, DIGEST);
        assert_eq!(parsed.optional["creator"], "OBS");
    }

    #[test]
    fn names_the_missing_or_wrong_field() {
        let cases: &[(&str, &str)] = &[
            ("not json", "simple-signing payload"),
            ("{}", "critical"),
            (r#"{"critical":[]}"#, "critical"),
            (r#"{"critical":{}}"#, "critical.type"),
            (
                r#"{"critical":{"type":"cosign container image signature"}}"#,
                "critical.image.docker-manifest-digest",
            ),
            (
                r#"{"critical":{"type":"cosign container image signature","image":{"docker-manifest-digest":"x"}}}"#,
                "critical.identity.docker-reference",
            ),
        ];
        for (payload, field) in cases {
            match parse_payload(payload.as_bytes()) {
                Err(VerifyError::Malformed { field: f, .. }) => assert_eq!(&f, field, "{payload}"),
                other => panic!("{payload}: {other:?}"),
            }
        }
        let other_type = r#"{"critical":{"type":"atomic container signature"}}"#;
        assert!(matches!(
            parse_payload(other_type.as_bytes()),
            Err(VerifyError::WrongPayloadType {
                field: "critical.type",
                ..
            })
        ));
    }
}
