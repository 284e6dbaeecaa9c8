//! How a destination row is stored. Record version 2 (written whenever the store has an
//! encryption key) keeps everything but the secrets in the clear and the credentials and
//! delivery metadata sealed together (`secrets.rs`), bound to the row's key. Version 1 — the
//! plain `Destination` of earlier releases, and of a store opened without a key (tests, the
//! bench's fill) — still decodes; a store opened with a key seals every such row at open.

use serde::{Deserialize, Serialize};

use super::codec;
use super::secrets::SecretBox;
use super::StoreError;
use crate::model::destination::Destination;
use crate::model::identifiers::{DestinationId, TenantId};
use crate::model::StrMap;

const TABLE: &str = "destinations";
/// The record version of a destination with sealed secrets.
pub const SEALED_VERSION: u8 = 2;

/// A destination as version 2 stores it.
#[derive(Serialize, Deserialize)]
struct SealedDestination {
    id: DestinationId,
    tenant_id: TenantId,
    kind: String,
    topics: Vec<String>,
    filter: Option<String>,
    config: StrMap,
    metadata: StrMap,
    created_at_ms: i64,
    updated_at_ms: i64,
    disabled_at_ms: Option<i64>,
    stored_at_nanos: i64,
    /// `secrets.rs` seal of the postcard encoding of [`Secrets`].
    sealed: Vec<u8>,
}

/// What is sealed.
#[derive(Serialize, Deserialize)]
struct Secrets {
    credentials: StrMap,
    delivery_metadata: StrMap,
}

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table: TABLE,
        reason: reason.to_string(),
    }
}

/// The stored bytes of `destination` under row key `key`: sealed with `cipher`, or plain
/// (version 1) without one.
pub fn encode(
    destination: &Destination,
    key: &[u8],
    cipher: Option<&SecretBox>,
) -> Result<Vec<u8>, StoreError> {
    let Some(cipher) = cipher else {
        return codec::encode(TABLE, destination);
    };
    let secrets = postcard::to_stdvec(&Secrets {
        credentials: destination.credentials.clone(),
        delivery_metadata: destination.delivery_metadata.clone(),
    })
    .map_err(|e| StoreError::Encode {
        table: TABLE,
        reason: e.to_string(),
    })?;
    let record = SealedDestination {
        id: destination.id.clone(),
        tenant_id: destination.tenant_id.clone(),
        kind: destination.kind.clone(),
        topics: destination.topics.clone(),
        filter: destination.filter.clone(),
        config: destination.config.clone(),
        metadata: destination.metadata.clone(),
        created_at_ms: destination.created_at_ms,
        updated_at_ms: destination.updated_at_ms,
        disabled_at_ms: destination.disabled_at_ms,
        stored_at_nanos: destination.stored_at_nanos,
        sealed: cipher.seal(key, &secrets)?,
    };
    postcard::to_extend(&record, vec![SEALED_VERSION]).map_err(|e| StoreError::Encode {
        table: TABLE,
        reason: e.to_string(),
    })
}

/// Whether the stored bytes hold sealed secrets.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&SEALED_VERSION)
}

fn sealed_record(bytes: &[u8]) -> Result<SealedDestination, StoreError> {
    postcard::from_bytes(&bytes[1..]).map_err(corrupt)
}

/// The destination stored under row key `key`.
pub fn decode(
    bytes: &[u8],
    key: &[u8],
    cipher: Option<&SecretBox>,
) -> Result<Destination, StoreError> {
    if !is_sealed(bytes) {
        return codec::decode(TABLE, bytes);
    }
    let record = sealed_record(bytes)?;
    let cipher = cipher.ok_or(StoreError::EncryptionSecretMissing)?;
    let secrets: Secrets =
        postcard::from_bytes(&cipher.open(key, &record.sealed)?).map_err(corrupt)?;
    Ok(Destination {
        id: record.id,
        tenant_id: record.tenant_id,
        kind: record.kind,
        topics: record.topics,
        filter: record.filter,
        config: record.config,
        credentials: secrets.credentials,
        delivery_metadata: secrets.delivery_metadata,
        metadata: record.metadata,
        created_at_ms: record.created_at_ms,
        updated_at_ms: record.updated_at_ms,
        disabled_at_ms: record.disabled_at_ms,
        stored_at_nanos: record.stored_at_nanos,
    })
}

/// Whose destination a row is, read without the key (for checks of a stopped server's file).
pub fn owner(bytes: &[u8]) -> Result<(DestinationId, TenantId), StoreError> {
    if is_sealed(bytes) {
        let record = sealed_record(bytes)?;
        return Ok((record.id, record.tenant_id));
    }
    let destination: Destination = codec::decode(TABLE, bytes)?;
    Ok((destination.id, destination.tenant_id))
}

/// When the destination stored in a row was created, read without the key.
pub fn created_at_ms(bytes: &[u8]) -> Result<i64, StoreError> {
    if is_sealed(bytes) {
        return Ok(sealed_record(bytes)?.created_at_ms);
    }
    let destination: Destination = codec::decode(TABLE, bytes)?;
    Ok(destination.created_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> Destination {
        let mut d = Destination::sample("t1", "d1", "webhook");
        d.credentials
            .insert("secret".into(), "whsec_topsecret".into());
        d.delivery_metadata
            .insert("x-token".into(), "meta-secret".into());
        d.config
            .insert("url".into(), "https://example.com/hook".into());
        d
    }

    #[test]
    fn sealed_rows_hold_no_secret_and_decode_with_the_key() {
        let cipher = SecretBox::new("k").unwrap();
        let bytes = encode(&destination(), b"row", Some(&cipher)).unwrap();
        assert!(is_sealed(&bytes));
        for secret in ["whsec_topsecret", "meta-secret"] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
        assert_eq!(
            decode(&bytes, b"row", Some(&cipher)).unwrap(),
            destination()
        );
        assert!(matches!(
            decode(&bytes, b"row", None),
            Err(StoreError::EncryptionSecretMissing)
        ));
        assert!(decode(&bytes, b"other row", Some(&cipher)).is_err());
        assert_eq!(owner(&bytes).unwrap(), ("d1".into(), "t1".into()));
    }

    #[test]
    fn plain_rows_of_earlier_releases_still_decode() {
        let plain = codec::encode(TABLE, &destination()).unwrap();
        assert!(!is_sealed(&plain));
        let cipher = SecretBox::new("k").unwrap();
        assert_eq!(
            decode(&plain, b"row", Some(&cipher)).unwrap(),
            destination()
        );
        assert_eq!(encode(&destination(), b"row", None).unwrap(), plain);
        assert_eq!(owner(&plain).unwrap(), ("d1".into(), "t1".into()));
    }
}
