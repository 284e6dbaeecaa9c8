//! Masking of sensitive credential values in API responses for the non-webhook types.

use super::schema::TypeMetadata;
use crate::model::StrMap;

/// Values shorter than this many bytes are replaced entirely, so their length is not revealed.
const MIN_PARTIAL_MASK_LEN: usize = 10;

/// How many leading characters of a long value stay visible.
const VISIBLE_PREFIX_CHARS: usize = 4;

/// Masks one sensitive value: `****` when shorter than 10 bytes, otherwise the first four
/// characters followed by one `*` per remaining character.
pub fn mask_value(value: &str) -> String {
    if value.len() < MIN_PARTIAL_MASK_LEN {
        return "****".to_string();
    }
    value
        .chars()
        .enumerate()
        .map(|(index, c)| if index < VISIBLE_PREFIX_CHARS { c } else { '*' })
        .collect()
}

/// All credentials, with the ones declared `sensitive` in the metadata masked.
pub(super) fn display(metadata: &TypeMetadata, credentials: &StrMap) -> StrMap {
    credentials
        .iter()
        .map(|(key, value)| {
            let sensitive = metadata
                .credential_fields
                .iter()
                .any(|field| field.key == *key && field.is_sensitive());
            let shown = if sensitive {
                mask_value(value)
            } else {
                value.clone()
            };
            (key.clone(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(mask_value(""), "****");
        assert_eq!(mask_value("guest"), "****");
        assert_eq!(mask_value("123456789"), "****");
    }

    #[test]
    fn long_values_keep_a_prefix() {
        assert_eq!(mask_value("1234567890"), "1234******");
        assert_eq!(mask_value("AKIAIOSFODNN7EXAMPLE"), "AKIA****************");
    }
}
