//! Signing-secret generation for webhook destinations.
//!
//! This module owns how new webhook secrets are made: rendering the operator's
//! `DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE` (default `whsec_{{.RandomHex}}`) in default mode,
//! and `whsec_` + base64(32 random bytes) in Standard Webhooks mode. The random source is a
//! parameter so tests are deterministic; production passes [`super::random::os_random`]. A
//! failing source or a template that fails to render is an error ([`SecretError`]), never a
//! secret in some other format.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::random::RandomError;
use crate::template::{Template, TemplateError, TemplateValue};

/// Where a secret's random bytes come from (see [`super::random`]).
pub type Source<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<(), RandomError>;

/// Why no secret could be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("cannot generate a signing secret: {0}")]
    Random(#[from] RandomError),
    #[error("DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE: {0}")]
    Template(#[from] TemplateError),
}

/// Upstream's default secret template.
#[cfg(test)]
pub const DEFAULT_SECRET_TEMPLATE: &str = "whsec_{{.RandomHex}}";

/// Random bytes behind `.RandomHex` / `.RandomBase64` and the Standard Webhooks key.
const RANDOM_BYTES: usize = 32;
/// Length of `.RandomAlphanumeric`.
const ALPHANUMERIC_LENGTH: usize = 32;
/// Random bytes drawn per alphanumeric character: a 64-bit draw reduced mod 62 has a bias
/// below 2^-58, which is negligible, and needs no rejection loop.
const BYTES_PER_ALPHANUMERIC: usize = 8;
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Render a secret template (default "whsec_{{.RandomHex}}") with .RandomHex (64 lowercase hex =
/// 32 random bytes), .RandomBase64 (std base64 of the same 32 bytes), .RandomAlphanumeric (32
/// chars [a-zA-Z0-9]).
#[derive(Debug, Clone)]
pub struct SecretTemplate {
    template: Template,
}

impl SecretTemplate {
    /// Parses the template and dry-renders it, so unknown fields, bad function calls and
    /// templates that produce an empty secret are rejected at startup rather than at the first
    /// destination create.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let parsed = SecretTemplate {
            template: Template::parse(source)?,
        };
        parsed.render(
            &[0; RANDOM_BYTES],
            &[0; ALPHANUMERIC_LENGTH * BYTES_PER_ALPHANUMERIC],
        )?;
        Ok(parsed)
    }

    /// Renders a fresh secret, drawing 32 bytes (hex/base64) and then 256 bytes (alphanumeric)
    /// from `random`.
    pub fn generate(&self, random: Source<'_>) -> Result<String, SecretError> {
        let mut key = [0u8; RANDOM_BYTES];
        random(&mut key)?;
        let mut alphanumeric_source = [0u8; ALPHANUMERIC_LENGTH * BYTES_PER_ALPHANUMERIC];
        random(&mut alphanumeric_source)?;
        Ok(self.render(&key, &alphanumeric_source)?)
    }

    fn render(&self, key: &[u8], alphanumeric_source: &[u8]) -> Result<String, TemplateError> {
        let data = TemplateValue::map([
            ("RandomHex", TemplateValue::Str(hex_lower(key))),
            ("RandomBase64", TemplateValue::Str(STANDARD.encode(key))),
            (
                "RandomAlphanumeric",
                TemplateValue::Str(alphanumeric(alphanumeric_source)),
            ),
        ]);
        let secret = self.template.render(&data)?;
        if secret.is_empty() {
            return Err(TemplateError::Render {
                line: 1,
                column: 1,
                message: "the signing secret template rendered an empty secret".to_owned(),
            });
        }
        Ok(secret)
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

/// One `[A-Za-z0-9]` character per 8 bytes (big-endian u64 mod 62).
fn alphanumeric(source: &[u8]) -> String {
    source
        .chunks_exact(BYTES_PER_ALPHANUMERIC)
        .map(|chunk| {
            let draw = chunk
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            // `draw % 62` is below 62, so the index is always in range.
            char::from(ALPHANUMERIC[(draw % ALPHANUMERIC.len() as u64) as usize])
        })
        .collect()
}

/// Standard Webhooks mode secret: "whsec_" + base64(32 random bytes)
pub fn standard_secret(random: Source<'_>) -> Result<String, RandomError> {
    let mut key = [0u8; RANDOM_BYTES];
    random(&mut key)?;
    Ok(format!("whsec_{}", STANDARD.encode(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::{self, os_random};

    /// Fills successive bytes with 0, 1, 2, … (wrapping) across calls.
    fn counter() -> impl FnMut(&mut [u8]) -> Result<(), RandomError> {
        let mut next = 0u8;
        move |buf: &mut [u8]| {
            for byte in buf {
                *byte = next;
                next = next.wrapping_add(1);
            }
            Ok(())
        }
    }

    const COUNTER_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const COUNTER_BASE64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    // Computed with Python: bytes 32..288 (mod 256), 8-byte big-endian chunks mod 62.
    const COUNTER_ALPHANUMERIC: &str = "Hh7XxNnDd3TtJj9ZzPpFf5VvLlBbb1Rr";

    #[test]
    fn default_template_is_whsec_and_64_hex() {
        let template = SecretTemplate::parse(DEFAULT_SECRET_TEMPLATE).unwrap();
        assert_eq!(
            template.generate(&mut counter()).unwrap(),
            format!("whsec_{COUNTER_HEX}")
        );
    }

    #[test]
    fn all_variables_share_or_draw_randomness_deterministically() {
        let template =
            SecretTemplate::parse("{{.RandomHex}}|{{.RandomBase64}}|{{.RandomAlphanumeric}}")
                .unwrap();
        let secret = template.generate(&mut counter()).unwrap();
        assert_eq!(
            secret,
            format!("{COUNTER_HEX}|{COUNTER_BASE64}|{COUNTER_ALPHANUMERIC}")
        );
    }

    #[test]
    fn hex_and_base64_encode_the_same_bytes() {
        let template = SecretTemplate::parse("{{.RandomHex}} {{.RandomBase64}}").unwrap();
        for _ in 0..8 {
            let secret = template.generate(&mut os_random).unwrap();
            let (hex, b64) = secret.split_once(' ').unwrap();
            let decoded = STANDARD.decode(b64).unwrap();
            assert_eq!(decoded.len(), 32);
            assert_eq!(hex_lower(&decoded), hex);
        }
    }

    #[test]
    fn os_random_default_secrets_have_the_upstream_shape() {
        let template = SecretTemplate::parse(DEFAULT_SECRET_TEMPLATE).unwrap();
        let first = template.generate(&mut os_random).unwrap();
        let second = template.generate(&mut os_random).unwrap();
        for secret in [&first, &second] {
            let hex = secret.strip_prefix("whsec_").unwrap();
            assert_eq!(hex.len(), 64);
            assert!(hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        assert_ne!(first, second);
    }

    #[test]
    fn alphanumeric_is_32_characters_of_the_alphabet() {
        let template = SecretTemplate::parse("{{.RandomAlphanumeric}}").unwrap();
        for _ in 0..16 {
            let secret = template.generate(&mut os_random).unwrap();
            assert_eq!(secret.len(), 32);
            assert!(
                secret.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{secret}"
            );
        }
        let mut all_ones = |buf: &mut [u8]| {
            buf.fill(0xff);
            Ok(())
        };
        // u64::MAX % 62 == 41 → 'P'.
        assert_eq!(template.generate(&mut all_ones).unwrap(), "P".repeat(32));
    }

    #[test]
    fn alphanumeric_uses_the_whole_alphabet() {
        let source: Vec<u8> = (0u64..62).flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(alphanumeric(&source).as_bytes(), ALPHANUMERIC);
    }

    #[test]
    fn custom_templates_can_use_functions() {
        let template = SecretTemplate::parse("sk_{{.RandomHex | upper | printf \"%.8s\"}}");
        assert!(template.is_err(), "printf precision is unsupported");
        let template = SecretTemplate::parse("sk_{{slice .RandomHex 0 8 | upper}}").unwrap();
        assert_eq!(template.generate(&mut counter()).unwrap(), "sk_00010203");
        let fixed = SecretTemplate::parse("static-secret").unwrap();
        assert_eq!(fixed.generate(&mut counter()).unwrap(), "static-secret");
    }

    #[test]
    fn bad_templates_are_rejected_at_parse() {
        assert!(matches!(
            SecretTemplate::parse("whsec_{{.RandomHex"),
            Err(TemplateError::Parse { .. })
        ));
        assert!(matches!(
            SecretTemplate::parse("whsec_{{.RandomHexx}}"),
            Err(TemplateError::Render { .. })
        ));
        assert!(matches!(
            SecretTemplate::parse("{{nope}}"),
            Err(TemplateError::Parse { .. })
        ));
        let empty = SecretTemplate::parse("").unwrap_err();
        assert!(empty.to_string().contains("empty secret"), "{empty}");
        assert!(SecretTemplate::parse("{{slice .RandomHex 0 0}}").is_err());
    }

    #[test]
    fn standard_secret_is_whsec_base64_of_32_bytes() {
        assert_eq!(
            standard_secret(&mut counter()).unwrap(),
            format!("whsec_{COUNTER_BASE64}")
        );
        let secret = standard_secret(&mut os_random).unwrap();
        let key = super::super::signing::decode_standard_secret(&secret).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(secret.len(), "whsec_".len() + 44);
        assert_ne!(secret, standard_secret(&mut os_random).unwrap());
    }

    #[test]
    fn a_failing_random_source_is_an_error_in_both_modes() {
        let template = SecretTemplate::parse(DEFAULT_SECRET_TEMPLATE).unwrap();
        assert!(matches!(
            template.generate(&mut random::failing),
            Err(SecretError::Random(RandomError))
        ));
        // Even a template that uses no randomness refuses: the source failing means the
        // process cannot be trusted to make secret material.
        let fixed = SecretTemplate::parse("static-secret").unwrap();
        assert!(fixed.generate(&mut random::failing).is_err());
        assert_eq!(standard_secret(&mut random::failing), Err(RandomError));
    }
}
