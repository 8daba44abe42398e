//! Sigstore bundles (protobuf-specs `sigstore_bundle.proto`, in its JSON form), media types v0.1 to v0.3:
//! what cosign v3 attaches to an image as an OCI 1.1 referrer. The signed content is either a DSSE
//! envelope (cosign v3 `sign` and `attest`: an in-toto statement whose subject is the image digest) or a
//! `messageSignature` (a signature over the artifact's bytes, with their digest alongside).
//!
//! Only the signature is checked here, with configured keys. The verification material is returned, not
//! used: a certificate is neither chained nor matched to an identity, and transparency-log entries and
//! timestamps are not verified (see `docs/image-verification.md`, "What is not verified").

use serde::Deserialize;
use serde_json::Value;

use super::dsse::{self, Envelope};
use super::encoding::{decode_b64, expected_sha256_hex, hex, sha256_digest};
use super::{first_verifying_key, no_key_matched, DsseStatement, PublicKey, Verified, VerifyError};

/// The media type of a v0.3 bundle, also the `artifactType` of cosign v3's referrer manifest.
pub const BUNDLE_MEDIA_TYPE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The in-toto predicate type of an image signature made by `cosign sign` (v3, or v2 with
/// `--new-bundle-format`). Attestations carry their own predicate types.
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

const MEDIA_TYPES: &[&str] = &[
    BUNDLE_MEDIA_TYPE_V0_3,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// A verified bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleContent {
    /// The bundle's `mediaType`.
    pub media_type: String,
    /// What was signed.
    pub signed: SignedContent,
    /// The bundle's verification material, unverified (the signature was checked with configured keys).
    pub verification_material: VerificationMaterial,
    /// `verificationMaterial.tlogEntries`, unverified, as JSON.
    pub tlog_entries: Vec<Value>,
}

/// The signed content of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum SignedContent {
    /// A DSSE envelope and its in-toto statement.
    Dsse(DsseStatement),
    /// A signature over an artifact's bytes; `digest` (`sha256:<hex>`) is theirs.
    MessageSignature {
        /// The artifact's digest, equal to the SHA-256 of the bytes the signature verified over.
        digest: String,
    },
}

/// How the bundle identifies its signer. Not verified here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationMaterial {
    /// A key known out of band; cosign sets the hint to the base64 SHA-256 of the key's DER SPKI.
    PublicKey {
        /// `publicKey.hint`.
        hint: Option<String>,
    },
    /// A signing certificate (DER), as v0.3 bundles carry it.
    Certificate {
        /// The certificate, DER.
        der: Vec<u8>,
    },
    /// A certificate chain (DER, leaf first), as v0.1 and v0.2 bundles carry it.
    CertificateChain {
        /// The certificates, DER.
        der: Vec<Vec<u8>>,
    },
}

/// Verifies a bundle as an image signature for `expected_digest` (`sha256:<64 lowercase hex>`).
///
/// The content must be a DSSE envelope with payload type `application/vnd.in-toto+json`, verifying with
/// one of `keys`, whose statement has predicate type [`COSIGN_SIGN_PREDICATE_TYPE`] and a subject with
/// `digest.sha256` equal to the expected digest's hex. Attestations (other predicate types) are refused
/// with [`VerifyError::WrongPayloadType`]: an SBOM signed by a CI key is not an admission signature. Use
/// [`verify_bundle_attestation`] to accept one on purpose.
///
/// A `messageSignature` bundle signs the artifact's bytes, which are not in the bundle, and ring verifies
/// only over bytes, not over a digest; this returns [`VerifyError::ArtifactRequired`]. Use
/// [`verify_bundle_with_artifact`] with the image manifest instead.
pub fn verify_bundle(
    bundle_json: &[u8],
    keys: &[PublicKey],
    expected_digest: &str,
) -> Result<Verified<BundleContent>, VerifyError> {
    expected_sha256_hex(expected_digest)?;
    verify(
        bundle_json,
        keys,
        expected_digest,
        None,
        COSIGN_SIGN_PREDICATE_TYPE,
    )
}

/// Verifies a bundle as an image signature for the image whose manifest is `artifact` (the exact bytes
/// the registry served, whose SHA-256 is the image digest).
///
/// As [`verify_bundle`] with the expected digest computed from `artifact`, and also accepts a
/// `messageSignature`: its signature must verify over `artifact` with one of `keys`, and its
/// `messageDigest` must be SHA2_256 and equal the artifact's digest.
pub fn verify_bundle_with_artifact(
    bundle_json: &[u8],
    keys: &[PublicKey],
    artifact: &[u8],
) -> Result<Verified<BundleContent>, VerifyError> {
    let digest = sha256_digest(artifact);
    verify(
        bundle_json,
        keys,
        &digest,
        Some(artifact),
        COSIGN_SIGN_PREDICATE_TYPE,
    )
}

/// Verifies a bundle holding an attestation: a DSSE in-toto statement with predicate type
/// `predicate_type` about the image `expected_digest`. The predicate itself is returned, not judged.
pub fn verify_bundle_attestation(
    bundle_json: &[u8],
    keys: &[PublicKey],
    expected_digest: &str,
    predicate_type: &str,
) -> Result<Verified<BundleContent>, VerifyError> {
    expected_sha256_hex(expected_digest)?;
    verify(bundle_json, keys, expected_digest, None, predicate_type)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: Option<String>,
    verification_material: Option<RawMaterial>,
    message_signature: Option<RawMessageSignature>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    public_key: Option<RawPublicKeyIdentifier>,
    certificate: Option<RawCertificate>,
    x509_certificate_chain: Option<RawChain>,
    #[serde(default)]
    tlog_entries: Vec<Value>,
}

#[derive(Deserialize)]
struct RawPublicKeyIdentifier {
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    raw_bytes: Option<String>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Option<Vec<RawCertificate>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessageSignature {
    message_digest: Option<RawDigest>,
    signature: Option<String>,
}

#[derive(Deserialize)]
struct RawDigest {
    algorithm: Option<String>,
    digest: Option<String>,
}

fn verify(
    bundle_json: &[u8],
    keys: &[PublicKey],
    expected_digest: &str,
    artifact: Option<&[u8]>,
    predicate_type: &str,
) -> Result<Verified<BundleContent>, VerifyError> {
    let bundle: RawBundle = serde_json::from_slice(bundle_json).map_err(|e| {
        VerifyError::malformed("sigstore bundle", format!("not a JSON bundle ({e})"))
    })?;
    let media_type = bundle
        .media_type
        .ok_or_else(|| VerifyError::malformed("mediaType", "missing"))?;
    if !MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(VerifyError::Unsupported {
            field: "mediaType",
            found: media_type,
            supported: "sigstore bundle v0.1, v0.2, v0.3",
        });
    }
    let material = bundle
        .verification_material
        .ok_or_else(|| VerifyError::malformed("verificationMaterial", "missing"))?;
    let (verification_material, tlog_entries) = read_material(material)?;

    let (key_fingerprint, signed) = match (bundle.dsse_envelope, bundle.message_signature) {
        (Some(envelope), None) => {
            let verified = dsse::verify_envelope(&envelope, keys, "dsseEnvelope.")?;
            let statement = verified.content;
            if statement.payload_type != dsse::IN_TOTO_PAYLOAD_TYPE {
                return Err(VerifyError::WrongPayloadType {
                    field: "dsseEnvelope.payloadType",
                    found: statement.payload_type,
                    expected: format!("{:?}", dsse::IN_TOTO_PAYLOAD_TYPE),
                });
            }
            if statement.predicate_type != predicate_type {
                return Err(VerifyError::WrongPayloadType {
                    field: "predicateType",
                    found: statement.predicate_type,
                    expected: format!("{predicate_type:?}"),
                });
            }
            statement.check_subject(expected_digest)?;
            (verified.key_fingerprint, SignedContent::Dsse(statement))
        }
        (None, Some(message)) => {
            let (claimed, signature) = read_message_signature(message)?;
            if predicate_type != COSIGN_SIGN_PREDICATE_TYPE {
                return Err(VerifyError::WrongPayloadType {
                    field: "content",
                    found: "messageSignature".into(),
                    expected: format!("a dsseEnvelope with predicate type {predicate_type:?}"),
                });
            }
            let Some(artifact) = artifact else {
                return Err(VerifyError::ArtifactRequired { digest: claimed });
            };
            let key = first_verifying_key(keys, artifact, &signature).ok_or_else(|| {
                no_key_matched(keys, &[("messageSignature.signature", &signature)])
            })?;
            if claimed != expected_digest {
                return Err(VerifyError::malformed(
                    "messageSignature.messageDigest",
                    format!(
                        "{claimed} is not the digest of the signed artifact, {expected_digest}"
                    ),
                ));
            }
            (
                key.fingerprint(),
                SignedContent::MessageSignature { digest: claimed },
            )
        }
        (Some(_), Some(_)) => {
            return Err(VerifyError::malformed(
                "content",
                "both dsseEnvelope and messageSignature are present",
            ))
        }
        (None, None) => {
            return Err(VerifyError::malformed(
                "content",
                "neither dsseEnvelope nor messageSignature is present",
            ))
        }
    };
    Ok(Verified {
        key_fingerprint,
        content: BundleContent {
            media_type,
            signed,
            verification_material,
            tlog_entries,
        },
    })
}

fn read_material(material: RawMaterial) -> Result<(VerificationMaterial, Vec<Value>), VerifyError> {
    let certificate = |c: &RawCertificate, field: &str| -> Result<Vec<u8>, VerifyError> {
        let raw = c
            .raw_bytes
            .as_deref()
            .ok_or_else(|| VerifyError::malformed(field, "missing"))?;
        decode_b64(field, raw)
    };
    let kind = match (
        material.public_key,
        material.certificate,
        material.x509_certificate_chain,
    ) {
        (Some(key), None, None) => VerificationMaterial::PublicKey { hint: key.hint },
        (None, Some(cert), None) => VerificationMaterial::Certificate {
            der: certificate(&cert, "verificationMaterial.certificate.rawBytes")?,
        },
        (None, None, Some(chain)) => {
            let certs = chain.certificates.unwrap_or_default();
            if certs.is_empty() {
                return Err(VerifyError::malformed(
                    "verificationMaterial.x509CertificateChain.certificates",
                    "missing or empty",
                ));
            }
            let der = certs
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    certificate(
                        c,
                        &format!(
                            "verificationMaterial.x509CertificateChain.certificates[{i}].rawBytes"
                        ),
                    )
                })
                .collect::<Result<_, _>>()?;
            VerificationMaterial::CertificateChain { der }
        }
        (None, None, None) => {
            return Err(VerifyError::malformed(
                "verificationMaterial",
                "none of publicKey, certificate, x509CertificateChain",
            ))
        }
        _ => {
            return Err(VerifyError::malformed(
                "verificationMaterial",
                "more than one of publicKey, certificate, x509CertificateChain",
            ))
        }
    };
    Ok((kind, material.tlog_entries))
}

/// Returns the claimed digest (`sha256:<hex>`) and the decoded signature.
fn read_message_signature(message: RawMessageSignature) -> Result<(String, Vec<u8>), VerifyError> {
    let digest = message
        .message_digest
        .ok_or_else(|| VerifyError::malformed("messageSignature.messageDigest", "missing"))?;
    let algorithm = digest.algorithm.ok_or_else(|| {
        VerifyError::malformed("messageSignature.messageDigest.algorithm", "missing")
    })?;
    if algorithm != "SHA2_256" {
        return Err(VerifyError::Unsupported {
            field: "messageSignature.messageDigest.algorithm",
            found: algorithm,
            supported: "SHA2_256",
        });
    }
    let field = "messageSignature.messageDigest.digest";
    let raw = digest
        .digest
        .ok_or_else(|| VerifyError::malformed(field, "missing"))?;
    let bytes = decode_b64(field, &raw)?;
    if bytes.len() != 32 {
        return Err(VerifyError::malformed(
            field,
            format!("{} bytes, a SHA-256 digest has 32", bytes.len()),
        ));
    }
    let signature_field = "messageSignature.signature";
    let signature = message
        .signature
        .ok_or_else(|| VerifyError::malformed(signature_field, "missing"))?;
    Ok((
        format!("sha256:{}", hex(&bytes)),
        decode_b64(signature_field, &signature)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "a".repeat(64))
    }

    fn err(json: &str) -> VerifyError {
        verify_bundle(json.as_bytes(), &[], &digest()).unwrap_err()
    }

    fn field_of(e: VerifyError) -> String {
        match e {
            VerifyError::Malformed { field, .. } => field,
            other => panic!("not Malformed: {other:?}"),
        }
    }

    const MT: &str = r#""mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json""#;
    const PK: &str = r#""verificationMaterial":{"publicKey":{"hint":"x"}}"#;

    #[test]
    fn structural_errors_name_the_field() {
        assert_eq!(field_of(err("{")), "sigstore bundle");
        assert_eq!(field_of(err("{}")), "mediaType");
        assert_eq!(field_of(err(&format!("{{{MT}}}"))), "verificationMaterial");
        assert_eq!(
            field_of(err(&format!(r#"{{{MT},"verificationMaterial":{{}}}}"#))),
            "verificationMaterial"
        );
        assert_eq!(field_of(err(&format!("{{{MT},{PK}}}"))), "content");
        assert_eq!(
            field_of(err(&format!(
                r#"{{{MT},"verificationMaterial":{{"certificate":{{"rawBytes":"!"}}}},"dsseEnvelope":{{}}}}"#
            ))),
            "verificationMaterial.certificate.rawBytes"
        );
        assert_eq!(
            field_of(err(&format!(
                r#"{{{MT},{PK},"dsseEnvelope":{{"payload":"e30="}}}}"#
            ))),
            "dsseEnvelope.payloadType"
        );
        assert_eq!(
            field_of(err(&format!(
                r#"{{{MT},{PK},"messageSignature":{{"signature":"AA=="}}}}"#
            ))),
            "messageSignature.messageDigest"
        );
        assert_eq!(
            field_of(err(&format!(
                r#"{{{MT},{PK},"messageSignature":{{"messageDigest":{{"algorithm":"SHA2_256","digest":"AA=="}},"signature":"AA=="}}}}"#
            ))),
            "messageSignature.messageDigest.digest"
        );
    }

    #[test]
    fn unknown_media_type_and_digest_algorithm_are_unsupported() {
        let e = err(r#"{"mediaType":"application/json"}"#);
        assert!(
            matches!(
                e,
                VerifyError::Unsupported {
                    field: "mediaType",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = err(&format!(
            r#"{{{MT},{PK},"messageSignature":{{"messageDigest":{{"algorithm":"SHA2_384","digest":"AA=="}},"signature":"AA=="}}}}"#
        ));
        assert!(matches!(
            e,
            VerifyError::Unsupported {
                field: "messageSignature.messageDigest.algorithm",
                ..
            }
        ));
    }

    #[test]
    fn message_signature_without_the_artifact_is_refused() {
        let json = format!(
            r#"{{{MT},{PK},"messageSignature":{{"messageDigest":{{"algorithm":"SHA2_256","digest":"{}"}},"signature":"AA=="}}}}"#,
            crate::images::signature::encoding::encode_b64(&[0xaa; 32])
        );
        assert_eq!(
            err(&json),
            VerifyError::ArtifactRequired { digest: digest() }
        );
    }

    #[test]
    fn expected_digest_is_checked_first() {
        let e = verify_bundle(b"{}", &[], "sha256:short").unwrap_err();
        assert_eq!(e, VerifyError::InvalidExpectedDigest("sha256:short".into()));
    }
}
