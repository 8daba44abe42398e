//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse>, `envelope.md` and `protocol.md`): the
//! signature is over the pre-authentication encoding (PAE) of the payload type and the decoded payload,
//! never over the JSON. The payload is decoded as an in-toto statement (v0.1 or v1), whose subjects name
//! the artifacts it is about. Used on its own (`cosign attest`, `.att` layers) and inside sigstore bundles.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::encoding::{decode_b64, expected_sha256_hex};
use super::{first_verifying_key, no_key_matched, PublicKey, Verified, VerifyError};

/// The DSSE `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

const STATEMENT_TYPES: &[&str] = &[
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// A verified DSSE envelope and the in-toto statement it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DsseStatement {
    /// The envelope's `payloadType` (signed, through PAE).
    pub payload_type: String,
    /// The statement's `_type`.
    pub statement_type: String,
    /// The statement's `predicateType`.
    pub predicate_type: String,
    /// The statement's subjects.
    pub subjects: Vec<Subject>,
    /// The statement's `predicate` (`null` when absent, as in cosign v3 before 3.0.5).
    pub predicate: Value,
}

/// One in-toto subject: an artifact named by its digests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subject {
    /// Optional in in-toto v1; cosign's image signatures leave it out.
    #[serde(default)]
    pub name: Option<String>,
    /// Algorithm name (`sha256`) to lowercase hex.
    pub digest: BTreeMap<String, String>,
}

impl DsseStatement {
    /// The subjects' SHA-256 digests, as `sha256:<hex>`.
    pub fn sha256_subjects(&self) -> Vec<String> {
        self.subjects
            .iter()
            .filter_map(|s| s.digest.get("sha256"))
            .map(|hex| format!("sha256:{hex}"))
            .collect()
    }

    /// Checks that some subject's `digest.sha256` equals `expected_digest` (`sha256:<64 lowercase hex>`).
    pub fn check_subject(&self, expected_digest: &str) -> Result<(), VerifyError> {
        let expected_hex = expected_sha256_hex(expected_digest)?;
        if self
            .subjects
            .iter()
            .any(|s| s.digest.get("sha256").map(String::as_str) == Some(expected_hex))
        {
            Ok(())
        } else {
            Err(VerifyError::DigestMismatch {
                signed: self.sha256_subjects(),
                expected: expected_digest.to_string(),
            })
        }
    }
}

/// The DSSE v1 pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`,
/// lengths as ASCII decimal byte counts.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope as JSON spells it. Fields are optional here so that a missing one is reported by name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    payload_type: Option<String>,
    payload: Option<String>,
    signatures: Option<Vec<EnvelopeSignature>>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeSignature {
    sig: Option<String>,
}

/// Verifies a DSSE envelope (JSON) with `keys` and decodes its in-toto statement.
///
/// Succeeds when any of the envelope's signatures verifies over the PAE with any key. The payload type
/// is returned, not constrained (cosign's older attestations used the predicate type there); check
/// [`DsseStatement::payload_type`] and [`DsseStatement::predicate_type`] for what you accept, and
/// [`DsseStatement::check_subject`] for the image.
pub fn verify_dsse(
    envelope_json: &[u8],
    keys: &[PublicKey],
) -> Result<Verified<DsseStatement>, VerifyError> {
    let envelope: Envelope = serde_json::from_slice(envelope_json).map_err(|e| {
        VerifyError::malformed("DSSE envelope", format!("not a JSON envelope ({e})"))
    })?;
    verify_envelope(&envelope, keys, "")
}

/// Verifies a parsed envelope; `prefix` is put before field names in errors (`dsseEnvelope.`).
pub(crate) fn verify_envelope(
    envelope: &Envelope,
    keys: &[PublicKey],
    prefix: &str,
) -> Result<Verified<DsseStatement>, VerifyError> {
    let field = |name: &str| format!("{prefix}{name}");
    let payload_type = envelope
        .payload_type
        .as_deref()
        .ok_or_else(|| VerifyError::malformed(field("payloadType"), "missing"))?;
    let payload_b64 = envelope
        .payload
        .as_deref()
        .ok_or_else(|| VerifyError::malformed(field("payload"), "missing"))?;
    let payload = decode_b64(&field("payload"), payload_b64)?;
    let signatures = match envelope.signatures.as_deref() {
        Some(s) if !s.is_empty() => s,
        _ => {
            return Err(VerifyError::malformed(
                field("signatures"),
                "missing or empty",
            ))
        }
    };
    let message = pae(payload_type, &payload);
    let mut verified_by = None;
    let mut tried = Vec::new();
    for (i, signature) in signatures.iter().enumerate() {
        let name = field(&format!("signatures[{i}].sig"));
        let sig_b64 = signature
            .sig
            .as_deref()
            .ok_or_else(|| VerifyError::malformed(&name, "missing"))?;
        let sig = decode_b64(&name, sig_b64)?;
        if let Some(key) = first_verifying_key(keys, &message, &sig) {
            verified_by = Some(key);
            break;
        }
        tried.push((name, sig));
    }
    let key = verified_by.ok_or_else(|| {
        let tried: Vec<(&str, &[u8])> = tried
            .iter()
            .map(|(name, sig)| (name.as_str(), sig.as_slice()))
            .collect();
        no_key_matched(keys, &tried)
    })?;
    let content = parse_statement(payload_type, &payload, &field("payload"))?;
    Ok(Verified {
        key_fingerprint: key.fingerprint(),
        content,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<Subject>,
    predicate_type: String,
    #[serde(default)]
    predicate: Value,
}

fn parse_statement(
    payload_type: &str,
    payload: &[u8],
    field: &str,
) -> Result<DsseStatement, VerifyError> {
    let raw: RawStatement = serde_json::from_slice(payload)
        .map_err(|e| VerifyError::malformed(field, format!("not an in-toto statement ({e})")))?;
    if !STATEMENT_TYPES.contains(&raw.statement_type.as_str()) {
        return Err(VerifyError::WrongPayloadType {
            field: "_type",
            found: raw.statement_type,
            expected: STATEMENT_TYPES.join(" or "),
        });
    }
    Ok(DsseStatement {
        payload_type: payload_type.to_string(),
        statement_type: raw.statement_type,
        predicate_type: raw.predicate_type,
        subjects: raw.subject,
        predicate: raw.predicate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // protocol.md test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn missing_fields_are_named() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"payload":"e30=","signatures":[{"sig":"AA=="}]}"#,
                "payloadType",
            ),
            (
                r#"{"payloadType":"t","signatures":[{"sig":"AA=="}]}"#,
                "payload",
            ),
            (r#"{"payloadType":"t","payload":"e30="}"#, "signatures"),
            (
                r#"{"payloadType":"t","payload":"e30=","signatures":[]}"#,
                "signatures",
            ),
            (
                r#"{"payloadType":"t","payload":"e30=","signatures":[{}]}"#,
                "signatures[0].sig",
            ),
            (
                r#"{"payloadType":"t","payload":"***","signatures":[{"sig":"AA=="}]}"#,
                "payload",
            ),
            (
                r#"{"payloadType":"t","payload":"e30=","signatures":[{"sig":"%"}]}"#,
                "signatures[0].sig",
            ),
            ("[]", "DSSE envelope"),
        ];
        for (json, field) in cases {
            match verify_dsse(json.as_bytes(), &[]) {
                Err(VerifyError::Malformed { field: f, .. }) => assert_eq!(&f, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn subject_check_compares_hex_without_prefix() {
        let statement = parse_statement(
            IN_TOTO_PAYLOAD_TYPE,
            br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}},{"digest":{"sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}}],"predicateType":"p"}"#,
            "payload",
        )
        .unwrap();
        assert_eq!(statement.predicate, Value::Null);
        assert!(statement
            .check_subject(&format!("sha256:{}", "b".repeat(64)))
            .is_ok());
        assert_eq!(
            statement.check_subject(&format!("sha256:{}", "c".repeat(64))),
            Err(VerifyError::DigestMismatch {
                signed: vec!["sha256:aa".into(), format!("sha256:{}", "b".repeat(64))],
                expected: format!("sha256:{}", "c".repeat(64)),
            })
        );
    }

    #[test]
    fn non_statement_type_is_wrong_payload_type() {
        let r = parse_statement(
            "t",
            br#"{"_type":"x","subject":[],"predicateType":"p"}"#,
            "payload",
        );
        assert!(matches!(
            r,
            Err(VerifyError::WrongPayloadType { field: "_type", .. })
        ));
    }
}
