//! Tenant rows: upsert, delete (with the tenant's destinations), point reads and the keyset
//! scan behind `GET /tenants`.

use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata};

use super::tables::{self, DESTINATIONS, TENANTS, TENANTS_BY_CREATED};
use super::{codec, Direction, Store, StoreError};
use crate::model::tenant::Tenant;
use crate::model::StrMap;

pub enum TenantUpsert {
    Created(Tenant),
    Updated(Tenant),
}

/// One page of a keyset scan: `(sort key, tenant)` in the requested direction.
pub type TenantPage = Vec<(Vec<u8>, Tenant)>;

impl Store {
    /// Creates the tenant, or replaces its metadata if it exists.
    pub async fn upsert_tenant(
        &self,
        id: String,
        metadata: StrMap,
        now_ms: i64,
    ) -> Result<TenantUpsert, StoreError> {
        self.writer
            .write(move |ctx| {
                let mut tenants = ctx.txn.open_table(TENANTS)?;
                let existing = match tenants.get(id.as_str())? {
                    Some(bytes) => Some(codec::decode::<Tenant>("tenants", bytes.value())?),
                    None => None,
                };
                match existing {
                    Some(mut tenant) => {
                        tenant.metadata = metadata.clone();
                        tenant.updated_at_ms = now_ms;
                        tenants
                            .insert(id.as_str(), codec::encode("tenants", &tenant)?.as_slice())?;
                        Ok(TenantUpsert::Updated(tenant))
                    }
                    None => {
                        let tenant = Tenant {
                            id: id.as_str().into(),
                            metadata: metadata.clone(),
                            created_at_ms: now_ms,
                            updated_at_ms: now_ms,
                        };
                        tenants
                            .insert(id.as_str(), codec::encode("tenants", &tenant)?.as_slice())?;
                        let mut by_created = ctx.txn.open_table(TENANTS_BY_CREATED)?;
                        by_created
                            .insert(tables::tenant_created_key(now_ms, &id).as_slice(), ())?;
                        Ok(TenantUpsert::Created(tenant))
                    }
                }
            })
            .await
    }

    /// Deletes the tenant and its destinations. `false` when it did not exist.
    pub async fn delete_tenant(&self, id: String) -> Result<bool, StoreError> {
        self.writer
            .write(move |ctx| {
                let mut tenants = ctx.txn.open_table(TENANTS)?;
                let tenant = match tenants.remove(id.as_str())? {
                    Some(bytes) => codec::decode::<Tenant>("tenants", bytes.value())?,
                    None => return Ok(false),
                };
                let mut by_created = ctx.txn.open_table(TENANTS_BY_CREATED)?;
                by_created
                    .remove(tables::tenant_created_key(tenant.created_at_ms, &id).as_slice())?;
                let mut destinations = ctx.txn.open_table(DESTINATIONS)?;
                let prefix = tables::tenant_prefix(&id);
                let keys: Vec<Vec<u8>> = match tables::prefix_end(&prefix) {
                    Some(end) => destinations
                        .range(prefix.as_slice()..end.as_slice())?
                        .map(|row| row.map(|(k, _)| k.value().to_vec()))
                        .collect::<Result<_, _>>()?,
                    None => Vec::new(),
                };
                for key in keys {
                    destinations.remove(key.as_slice())?;
                    super::outcome_effects::destination_deleted(ctx.txn, &key)?;
                }
                Ok(true)
            })
            .await
    }

    pub fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let txn = self.read()?;
        let tenants = txn.open_table(TENANTS)?;
        match tenants.get(id)? {
            Some(bytes) => Ok(Some(codec::decode("tenants", bytes.value())?)),
            None => Ok(None),
        }
    }

    pub fn tenant_count(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(TENANTS)?.len()?)
    }

    /// Up to `limit` tenants in `direction` order, strictly after the sort key `after`.
    pub fn scan_tenants(
        &self,
        direction: Direction,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<TenantPage, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(TENANTS_BY_CREATED)?;
        let tenants = txn.open_table(TENANTS)?;
        let range = match (direction, after) {
            (_, None) => index.range::<&[u8]>(..)?,
            (Direction::Asc, Some(key)) => {
                index.range::<&[u8]>((Bound::Excluded(key), Bound::Unbounded))?
            }
            (Direction::Desc, Some(key)) => index.range::<&[u8]>(..key)?,
        };
        let keys: Box<dyn Iterator<Item = _>> = match direction {
            Direction::Asc => Box::new(range),
            Direction::Desc => Box::new(range.rev()),
        };
        let mut page = Vec::new();
        for row in keys.take(limit) {
            let (key, _) = row?;
            let key = key.value().to_vec();
            let id = std::str::from_utf8(&key[8..]).map_err(|_| StoreError::Corrupt {
                table: "tenants_by_created",
                reason: "tenant id is not UTF-8".into(),
            })?;
            if let Some(bytes) = tenants.get(id)? {
                page.push((key.clone(), codec::decode("tenants", bytes.value())?));
            }
        }
        Ok(page)
    }

    /// The tenants among `ids` that exist, each with its sort key, ascending.
    pub fn tenants_by_ids(&self, ids: &[String]) -> Result<TenantPage, StoreError> {
        let txn = self.read()?;
        let tenants = txn.open_table(TENANTS)?;
        let mut found = Vec::new();
        for id in ids {
            if let Some(bytes) = tenants.get(id.as_str())? {
                let tenant: Tenant = codec::decode("tenants", bytes.value())?;
                found.push((tables::tenant_created_key(tenant.created_at_ms, id), tenant));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok(found)
    }
}
