//! Record encoding: one record-version byte, then the postcard encoding of the record. Old
//! record versions keep decoding after an upgrade; an unknown version is a corrupt record.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// The version byte written in front of every record this binary writes.
pub const RECORD_VERSION: u8 = 1;

/// The stored bytes of `record`, bound for `table`. A record postcard cannot encode is an error
/// naming the table, never a stored empty record.
pub fn encode<T: Serialize>(table: &'static str, record: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(record, vec![RECORD_VERSION]).map_err(|e| StoreError::Encode {
        table,
        reason: e.to_string(),
    })
}

pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| StoreError::Corrupt {
                table,
                reason: e.to_string(),
            })
        }
        Some((version, _)) => Err(StoreError::Corrupt {
            table,
            reason: format!("unknown record version {version}"),
        }),
        None => Err(StoreError::Corrupt {
            table,
            reason: "empty record".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tenant::Tenant;

    #[test]
    fn round_trips_with_version_byte() {
        let tenant = Tenant {
            id: "t1".into(),
            metadata: [("k".to_string(), "v".to_string())].into_iter().collect(),
            created_at_ms: 5,
            updated_at_ms: 6,
        };
        let bytes = encode("tenants", &tenant).unwrap();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(decode::<Tenant>("tenants", &bytes).unwrap(), tenant);
    }

    #[test]
    fn a_record_postcard_cannot_encode_is_an_error_naming_the_table() {
        /// Serializes as a map of unknown length, which postcard does not support.
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                serializer.serialize_map(None)?.end()
            }
        }
        let error = encode("tenants", &Unsized).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Encode {
                    table: "tenants",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("tenants"), "{error}");
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        assert!(decode::<Tenant>("tenants", &[]).is_err());
        assert!(decode::<Tenant>("tenants", &[9, 1, 2]).is_err());
        assert!(decode::<Tenant>("tenants", &[RECORD_VERSION, 0xff]).is_err());
    }
}
