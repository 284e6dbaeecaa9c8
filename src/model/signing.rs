//! Webhook signatures: the HMAC primitives behind the `<prefix>signature` header.
//!
//! This module owns the byte-level signing rules of both webhook modes:
//! - default mode: `encode(HMAC-alg(key = the secret string's UTF-8 bytes, content))`, where the
//!   key includes any `whsec_` prefix, the algorithm is HMAC-SHA256 (default) or HMAC-SHA1, and the
//!   encoding is lowercase hex (default) or standard padded base64;
//! - Standard Webhooks mode: secret `whsec_<std base64>`, key = the decoded bytes, signed content
//!   `<msg_id>.<unix_seconds>.<body>`, value `v1,<base64 HMAC-SHA256>`.
//!
//! Rendering the content/header templates and choosing which secrets are current lives with the
//! webhook provider; this module is pure computation.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::hmac;

/// The prefix of Standard Webhooks secrets (and of upstream's default generated secrets).
pub const STANDARD_SECRET_PREFIX: &str = "whsec_";

/// Decoder for the base64 part of Standard Webhooks secrets: standard alphabet, padding
/// required, non-zero trailing bits tolerated (like Go's `base64.StdEncoding`).
const STANDARD_SECRET_DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// `DESTINATIONS_WEBHOOK_SIGNATURE_ALGORITHM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignatureAlgorithm {
    #[default]
    HmacSha256,
    HmacSha1,
}

impl SignatureAlgorithm {
    /// `"hmac-sha1"` → SHA-1; anything else (including `"hmac-sha256"` and unknown values) →
    /// SHA-256, as upstream does. Matching is exact.
    pub fn from_setting(value: &str) -> Self {
        match value {
            "hmac-sha1" => SignatureAlgorithm::HmacSha1,
            _ => SignatureAlgorithm::HmacSha256,
        }
    }

    /// The setting value naming this algorithm.
    #[cfg(test)]
    pub fn as_setting(self) -> &'static str {
        match self {
            SignatureAlgorithm::HmacSha256 => "hmac-sha256",
            SignatureAlgorithm::HmacSha1 => "hmac-sha1",
        }
    }

    fn ring_algorithm(self) -> hmac::Algorithm {
        match self {
            SignatureAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
            SignatureAlgorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

/// `DESTINATIONS_WEBHOOK_SIGNATURE_ENCODING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

impl SignatureEncoding {
    /// `"hex"` or `"base64"` (exact); anything else is `None` so the caller can decide.
    pub fn from_setting(value: &str) -> Option<Self> {
        match value {
            "hex" => Some(SignatureEncoding::Hex),
            "base64" => Some(SignatureEncoding::Base64),
            _ => None,
        }
    }

    /// The setting value naming this encoding.
    #[cfg(test)]
    pub fn as_setting(self) -> &'static str {
        match self {
            SignatureEncoding::Hex => "hex",
            SignatureEncoding::Base64 => "base64",
        }
    }

    /// Lowercase hex, or standard padded base64.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            SignatureEncoding::Hex => hex_lower(bytes),
            SignatureEncoding::Base64 => STANDARD.encode(bytes),
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Why a Standard Webhooks secret was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("standard webhooks secret must start with \"whsec_\"")]
    MissingPrefix,
    #[error("standard webhooks secret must be \"whsec_\" followed by standard (padded) base64")]
    InvalidBase64,
    #[error("standard webhooks secret has an empty key after \"whsec_\"")]
    EmptyKey,
}

/// One default-mode signature: encode(HMAC-alg(key = secret's UTF-8 bytes including any whsec_
/// prefix, content)). hex lowercase; base64 standard padded.
pub fn sign(
    algorithm: SignatureAlgorithm,
    encoding: SignatureEncoding,
    secret: &str,
    content: &[u8],
) -> String {
    let key = hmac::Key::new(algorithm.ring_algorithm(), secret.as_bytes());
    encoding.encode(hmac::sign(&key, content).as_ref())
}

/// The HMAC key of a Standard Webhooks secret: the base64-decoded part after `whsec_`.
/// Also the validation rule behind `credentials.secret failed pattern validation`.
pub fn decode_standard_secret(secret: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = secret
        .strip_prefix(STANDARD_SECRET_PREFIX)
        .ok_or(SigningError::MissingPrefix)?;
    let key = STANDARD_SECRET_DECODER
        .decode(encoded)
        .map_err(|_| SigningError::InvalidBase64)?;
    if key.is_empty() {
        return Err(SigningError::EmptyKey);
    }
    Ok(key)
}

/// Standard Webhooks: secret "whsec_<std base64>"; key = decoded bytes; signed content
/// "<msg_id>.<unix_seconds>.<body>"; returns "v1,<base64 HMAC-SHA256>". Err if the secret isn't
/// whsec_+valid base64 (or decodes to an empty key).
pub fn standard_webhooks_signature(
    secret: &str,
    msg_id: &str,
    unix_seconds: i64,
    body: &[u8],
) -> Result<String, SigningError> {
    let key_bytes = decode_standard_secret(secret)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
    let mut context = hmac::Context::with_key(&key);
    context.update(msg_id.as_bytes());
    context.update(b".");
    context.update(unix_seconds.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    Ok(format!("v1,{}", STANDARD.encode(context.sign().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JEFE_DATA: &[u8] = b"what do ya want for nothing?";

    #[test]
    fn rfc4231_case_2_hmac_sha256_hex() {
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha256,
                SignatureEncoding::Hex,
                "Jefe",
                JEFE_DATA
            ),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc4231_case_2_hmac_sha256_base64() {
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha256,
                SignatureEncoding::Base64,
                "Jefe",
                JEFE_DATA
            ),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn rfc4231_case_1_hmac_sha256() {
        let key = "\u{0b}".repeat(20);
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha256,
                SignatureEncoding::Hex,
                &key,
                b"Hi There"
            ),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn rfc2202_hmac_sha1() {
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha1,
                SignatureEncoding::Hex,
                "Jefe",
                JEFE_DATA
            ),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let key = "\u{0b}".repeat(20);
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha1,
                SignatureEncoding::Hex,
                &key,
                b"Hi There"
            ),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha1,
                SignatureEncoding::Base64,
                "Jefe",
                JEFE_DATA
            ),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn default_mode_key_includes_the_whsec_prefix() {
        // Expected values computed with Python's hmac/hashlib over b"whsec_abc123".
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha256,
                SignatureEncoding::Hex,
                "whsec_abc123",
                br#"{"id":1}"#
            ),
            "2662513368709da0c27c2d1b8462b63a700e00804d4c77386950f3605b0130fa"
        );
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha256,
                SignatureEncoding::Base64,
                "whsec_abc123",
                br#"{"id":1}"#
            ),
            "JmJRM2hwnaDCfC0bhGK2OnAOAIBNTHc4aVDzYFsBMPo="
        );
        assert_eq!(
            sign(
                SignatureAlgorithm::HmacSha1,
                SignatureEncoding::Base64,
                "whsec_abc123",
                br#"1717230216.{"id":1}"#
            ),
            "dOd8wTGZoa2J1IzJxfI8mofC+pQ="
        );
    }

    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(
            SignatureEncoding::Hex.encode(&[0x00, 0x0f, 0xa0, 0xff]),
            "000fa0ff"
        );
        assert_eq!(SignatureEncoding::Hex.encode(&[]), "");
        assert_eq!(SignatureEncoding::Base64.encode(&[0xff]), "/w==");
    }

    #[test]
    fn algorithm_settings() {
        assert_eq!(
            SignatureAlgorithm::from_setting("hmac-sha256"),
            SignatureAlgorithm::HmacSha256
        );
        assert_eq!(
            SignatureAlgorithm::from_setting("hmac-sha1"),
            SignatureAlgorithm::HmacSha1
        );
        for unknown in ["", "sha512", "HMAC-SHA1", "hmac-md5"] {
            assert_eq!(
                SignatureAlgorithm::from_setting(unknown),
                SignatureAlgorithm::HmacSha256
            );
        }
        assert_eq!(
            SignatureAlgorithm::default(),
            SignatureAlgorithm::HmacSha256
        );
        for algorithm in [SignatureAlgorithm::HmacSha256, SignatureAlgorithm::HmacSha1] {
            assert_eq!(
                SignatureAlgorithm::from_setting(algorithm.as_setting()),
                algorithm
            );
        }
    }

    #[test]
    fn encoding_settings() {
        assert_eq!(
            SignatureEncoding::from_setting("hex"),
            Some(SignatureEncoding::Hex)
        );
        assert_eq!(
            SignatureEncoding::from_setting("base64"),
            Some(SignatureEncoding::Base64)
        );
        assert_eq!(SignatureEncoding::from_setting("HEX"), None);
        assert_eq!(SignatureEncoding::from_setting("base32"), None);
        assert_eq!(SignatureEncoding::from_setting(""), None);
        assert_eq!(SignatureEncoding::default(), SignatureEncoding::Hex);
        for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
            assert_eq!(
                SignatureEncoding::from_setting(encoding.as_setting()),
                Some(encoding)
            );
        }
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The Standard Webhooks / Svix reference vector, re-computed with Python's hmac module.
        assert_eq!(
            standard_webhooks_signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            )
            .unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn standard_webhooks_event_vectors() {
        // key = bytes 0..32; expected values computed with Python's hmac/hashlib/base64.
        let secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(
            decode_standard_secret(secret).unwrap(),
            (0u8..32).collect::<Vec<u8>>()
        );
        assert_eq!(
            standard_webhooks_signature(secret, "evt_123", 1_717_230_216, br#"{"id":1}"#).unwrap(),
            "v1,5YIPNWSnkmzoY/3srS8qmsTa1P/YNZyImlka7iRN6qw="
        );
        assert_eq!(
            standard_webhooks_signature(secret, "evt_123", -5, b"").unwrap(),
            "v1,NOcOyg3e1yD+QYSS20Hddblx8TF6ukZR5CYmNViLsPI="
        );
    }

    #[test]
    fn standard_webhooks_rejects_bad_secrets() {
        let sign_with = |secret| standard_webhooks_signature(secret, "m", 1, b"{}");
        assert_eq!(
            sign_with("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SigningError::MissingPrefix)
        );
        assert_eq!(
            sign_with("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SigningError::MissingPrefix)
        );
        assert_eq!(
            sign_with("whsec_not base64!"),
            Err(SigningError::InvalidBase64)
        );
        // URL-safe alphabet is not the standard one.
        assert_eq!(sign_with("whsec_ab-_"), Err(SigningError::InvalidBase64));
        // Padding is required, as with Go's StdEncoding.
        assert_eq!(sign_with("whsec_YWJj ZA"), Err(SigningError::InvalidBase64));
        assert_eq!(sign_with("whsec_YWJjZA"), Err(SigningError::InvalidBase64));
        assert_eq!(sign_with("whsec_"), Err(SigningError::EmptyKey));
        assert!(sign_with("whsec_YWJjZA==").is_ok());
    }

    #[test]
    fn standard_secret_tolerates_non_canonical_trailing_bits_like_go() {
        // "YWJjZB==" decodes to "abcd" with non-zero trailing bits; Go's StdEncoding accepts it.
        assert_eq!(decode_standard_secret("whsec_YWJjZB==").unwrap(), b"abcd");
    }

    #[test]
    fn signing_error_messages_are_readable() {
        assert_eq!(
            SigningError::MissingPrefix.to_string(),
            "standard webhooks secret must start with \"whsec_\""
        );
    }
}
