//! DER decoding of public keys: X.509 `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) and PKCS#1
//! `RSAPublicKey` (RFC 8017 §A.1.1), with yasna in strict DER mode. This module only takes keys apart and
//! checks their shape; the cryptography is ring's.

use yasna::models::ObjectIdentifier;

use super::KeyError;

const ID_EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
const SECP256R1: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
const SECP384R1: &[u64] = &[1, 3, 132, 0, 34];
const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const ID_ED25519: &[u64] = &[1, 3, 101, 112];

/// The algorithm of a decoded key and the bytes ring's verifiers take for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Uncompressed SEC1 point, 65 bytes.
    EcdsaP256,
    /// Uncompressed SEC1 point, 97 bytes.
    EcdsaP384,
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa,
    /// 32-byte raw key.
    Ed25519,
}

/// A decoded `SubjectPublicKeyInfo`.
pub(crate) struct DecodedKey {
    pub kind: KeyKind,
    /// What ring's `UnparsedPublicKey` takes for `kind`.
    pub key: Vec<u8>,
}

fn malformed(structure: &'static str) -> impl Fn(yasna::ASN1Error) -> KeyError {
    move |_| KeyError::MalformedDer { structure }
}

/// Decodes a DER `SubjectPublicKeyInfo` and checks the key's shape for its algorithm.
pub(crate) fn decode_spki(der: &[u8]) -> Result<DecodedKey, KeyError> {
    let (algorithm, params, bits, bit_len) = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let (algorithm, params) = r.next().read_sequence(|r| {
                let algorithm = r.next().read_oid()?;
                let params = r.read_optional(|r| r.read_der())?;
                Ok((algorithm, params))
            })?;
            let (bits, bit_len) = r.next().read_bitvec_bytes()?;
            Ok((algorithm, params, bits, bit_len))
        })
    })
    .map_err(malformed("SubjectPublicKeyInfo"))?;
    if bit_len != bits.len() * 8 {
        return Err(KeyError::MalformedDer {
            structure: "SubjectPublicKeyInfo",
        });
    }
    let components = algorithm.components().as_slice();
    if components == ID_EC_PUBLIC_KEY {
        let params = params.ok_or(KeyError::MalformedDer {
            structure: "EC parameters",
        })?;
        let curve =
            yasna::parse_der(&params, |r| r.read_oid()).map_err(malformed("EC parameters"))?;
        let (kind, len) = match curve.components().as_slice() {
            c if c == SECP256R1 => (KeyKind::EcdsaP256, 65),
            c if c == SECP384R1 => (KeyKind::EcdsaP384, 97),
            _ => {
                return Err(KeyError::UnsupportedCurve {
                    oid: curve.to_string(),
                })
            }
        };
        if bits.len() != len || bits.first() != Some(&0x04) {
            return Err(KeyError::InvalidKey {
                algorithm: "ECDSA",
                reason: "not an uncompressed point of the curve's size",
            });
        }
        Ok(DecodedKey { kind, key: bits })
    } else if components == RSA_ENCRYPTION {
        // RFC 3279 §2.3.1: parameters MUST be NULL; some encoders omit them.
        if let Some(params) = params {
            yasna::parse_der(&params, |r| r.read_null()).map_err(malformed("RSA parameters"))?;
        }
        check_rsa_public_key(&bits)?;
        Ok(DecodedKey {
            kind: KeyKind::Rsa,
            key: bits,
        })
    } else if components == ID_ED25519 {
        if params.is_some() || bits.len() != 32 {
            return Err(KeyError::InvalidKey {
                algorithm: "Ed25519",
                reason: "expected 32 key bytes and no parameters",
            });
        }
        Ok(DecodedKey {
            kind: KeyKind::Ed25519,
            key: bits,
        })
    } else {
        Err(KeyError::UnsupportedAlgorithm {
            oid: algorithm.to_string(),
        })
    }
}

/// Length in bytes of the modulus of a PKCS#1 `RSAPublicKey` (what a signature under it is long).
pub(crate) fn rsa_modulus_len(der: &[u8]) -> Option<usize> {
    let modulus = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let (n, _) = r.next().read_bigint_bytes()?;
            r.next().read_bigint_bytes()?;
            Ok(n)
        })
    })
    .ok()?;
    Some(modulus.iter().skip_while(|b| **b == 0).count())
}

/// Checks that `signature` is a DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3: a SEQUENCE of two positive
/// INTEGERs `r` and `s`) whose integers fit the curve's `scalar_len` bytes. Says what is wrong.
pub(crate) fn check_ecdsa_signature_der(signature: &[u8], scalar_len: usize) -> Result<(), String> {
    let (r, s) = yasna::parse_der(signature, |reader| {
        reader.read_sequence(|reader| {
            let r = reader.next().read_bigint_bytes()?;
            let s = reader.next().read_bigint_bytes()?;
            Ok((r, s))
        })
    })
    .map_err(|_| {
        format!(
            "not a DER ECDSA signature (a SEQUENCE of two INTEGERs), {} bytes",
            signature.len()
        )
    })?;
    for (name, (bytes, positive)) in [("r", r), ("s", s)] {
        let magnitude = bytes.iter().skip_while(|b| **b == 0).count();
        if !positive || magnitude == 0 {
            return Err(format!("ECDSA signature value {name} is not positive"));
        }
        if magnitude > scalar_len {
            return Err(format!(
                "ECDSA signature value {name} is {magnitude} bytes, longer than the curve's {scalar_len}"
            ));
        }
    }
    Ok(())
}

/// Checks a PKCS#1 `RSAPublicKey` and that its modulus is 2048..=8192 bits (ring's range for
/// PKCS#1 v1.5 verification).
pub(crate) fn check_rsa_public_key(der: &[u8]) -> Result<(), KeyError> {
    let (modulus, modulus_positive, exponent, exponent_positive) = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let (n, n_pos) = r.next().read_bigint_bytes()?;
            let (e, e_pos) = r.next().read_bigint_bytes()?;
            Ok((n, n_pos, e, e_pos))
        })
    })
    .map_err(malformed("RSAPublicKey"))?;
    if !modulus_positive || !exponent_positive {
        return Err(KeyError::InvalidKey {
            algorithm: "RSA",
            reason: "negative modulus or exponent",
        });
    }
    let bits = bit_length(&modulus);
    if !(2048..=8192).contains(&bits) {
        return Err(KeyError::RsaKeySize { bits });
    }
    if exponent.last().is_none_or(|b| b & 1 == 0)
        || bit_length(&exponent) < 2
        || bit_length(&exponent) > 33
    {
        return Err(KeyError::InvalidKey {
            algorithm: "RSA",
            reason: "public exponent must be odd and in 3..2^33",
        });
    }
    Ok(())
}

/// Wraps a PKCS#1 `RSAPublicKey` in a `SubjectPublicKeyInfo` (rsaEncryption, NULL parameters).
pub(crate) fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next()
                    .write_oid(&ObjectIdentifier::from_slice(RSA_ENCRYPTION));
                w.next().write_null();
            });
            w.next().write_bitvec_bytes(pkcs1, pkcs1.len() * 8);
        })
    })
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
fn bit_length(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    while let [0, tail @ ..] = rest {
        rest = tail;
    }
    match rest.first() {
        Some(first) => rest.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[1, 0, 1]), 17);
    }

    #[test]
    fn truncated_and_garbage_spki_are_malformed_not_panics() {
        use base64::Engine as _;
        // The busybox cosign.pub of the corpus (sigstore-rs tests).
        let p256 = base64::engine::general_purpose::STANDARD
            .decode(
                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu\
                 OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==",
            )
            .unwrap();
        assert_eq!(decode_spki(&p256).unwrap().kind, KeyKind::EcdsaP256);
        for len in 0..p256.len() {
            assert!(decode_spki(&p256[..len]).is_err(), "prefix of {len} bytes");
        }
        assert!(matches!(
            decode_spki(b"\x30\x00"),
            Err(KeyError::MalformedDer { .. })
        ));
    }
}
