//! Base64 decoding that accepts exactly what Go's `base64.StdEncoding` accepts (standard
//! alphabet, padding required, stray trailing bits and embedded CR/LF tolerated), used for
//! Standard Webhooks secrets and Hookdeck tokens.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

const STD_BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes standard, padded base64, or `None` if the text is not valid.
pub(super) fn decode_std_base64(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    STD_BASE64_LENIENT.decode(cleaned).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_padded_standard_base64() {
        assert_eq!(decode_std_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_std_base64("aGVs\r\nbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_std_base64(""), Some(Vec::new()));
    }

    #[test]
    fn rejects_unpadded_and_url_safe() {
        assert_eq!(decode_std_base64("aGVsbG8"), None);
        assert_eq!(decode_std_base64("-_-_"), None);
        assert_eq!(decode_std_base64("a b="), None);
    }
}
